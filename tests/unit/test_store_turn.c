/*
 * The TURN part of the SQLite store (store_turn.h): the USERHASH index of
 * migration 7. A user's hashes are replaced as a whole, found by hash,
 * deleted with the user; users with TURN keys but no hashes are listed for
 * the backfill; a locked database is STORE_UNAVAILABLE, never NOTFOUND.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store/store.h"
#include "store/store_turn.h"

struct fx {
	char dir[64];
	char path[128];
	struct store *s;
	struct store_user alice, bob;
};

static void add_user(struct store *s, const char *uri, struct store_user *out)
{
	char user[STORE_URI_MAX], domain[STORE_URI_MAX];

	memset(out, 0, sizeof(*out));
	assert_int_equal(store_uri_normalise(uri, out->uri, user, domain), STORE_OK);
	out->enabled = true;
	assert_int_equal(store_user_add(s, out), STORE_OK);
	assert_true(out->id > 0);
}

static void set_key(struct store *s, int64_t id, const char *mech)
{
	struct store_cred c;

	memset(&c, 0, sizeof(c));
	snprintf(c.mech, sizeof(c.mech), "%s", mech);
	snprintf(c.variant, sizeof(c.variant), "user");
	c.key_len = 16;
	memset(c.key, 0x5a, 16);
	assert_int_equal(store_cred_replace(s, id, &c, 1), STORE_OK);
}

static void hash_of(uint8_t h[STORE_TURN_USERHASH_LEN], uint8_t b)
{
	memset(h, b, STORE_TURN_USERHASH_LEN);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/rtc-storeturn-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/store.db", f->dir);
	assert_int_equal(store_open(f->path, STORE_CREATE, 50, &f->s, err, sizeof(err)), STORE_OK);
	add_user(f->s, "sip:alice@example.test", &f->alice);
	add_user(f->s, "sip:bob@example.test", &f->bob);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char p[200];

	store_close(f->s);
	unlink(f->path);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", f->path);
	unlink(p);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void test_store_turn_userhash_put_then_find_gives_the_user(void **state)
{
	struct fx *f = *state;
	uint8_t h[2][STORE_TURN_USERHASH_LEN];
	struct store_user u;
	int n;

	hash_of(h[0], 1);
	hash_of(h[1], 2);
	assert_int_equal(store_turn_userhash_put(f->s, f->alice.id,
						 (const uint8_t(*)[STORE_TURN_USERHASH_LEN])h, 2),
			 STORE_OK);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(store_turn_userhash_find(f->s, h[i], &u), STORE_OK);
		assert_int_equal(u.id, f->alice.id);
		assert_string_equal(u.uri, "sip:alice@example.test");
		assert_string_equal(u.user, "alice");
		assert_string_equal(u.domain, "example.test");
		assert_true(u.enabled);
	}
	assert_int_equal(store_turn_userhash_count(f->s, f->alice.id, &n), STORE_OK);
	assert_int_equal(n, 2);
}

static void test_store_turn_userhash_unknown_hash_is_notfound(void **state)
{
	struct fx *f = *state;
	uint8_t h[STORE_TURN_USERHASH_LEN];
	struct store_user u;

	hash_of(h, 9);
	assert_int_equal(store_turn_userhash_find(f->s, h, &u), STORE_NOTFOUND);
	assert_int_equal(u.id, 0);
	assert_string_equal(u.uri, "");
}

static void test_store_turn_userhash_put_replaces_the_users_hashes(void **state)
{
	struct fx *f = *state;
	uint8_t h[3][STORE_TURN_USERHASH_LEN];
	struct store_user u;
	int n;

	hash_of(h[0], 1);
	hash_of(h[1], 2);
	hash_of(h[2], 3);
	assert_int_equal(store_turn_userhash_put(f->s, f->alice.id,
						 (const uint8_t(*)[STORE_TURN_USERHASH_LEN])h, 2),
			 STORE_OK);
	assert_int_equal(store_turn_userhash_put(f->s, f->alice.id,
						 (const uint8_t(*)[STORE_TURN_USERHASH_LEN]) & h[2],
						 1),
			 STORE_OK);
	assert_int_equal(store_turn_userhash_find(f->s, h[0], &u), STORE_NOTFOUND);
	assert_int_equal(store_turn_userhash_find(f->s, h[1], &u), STORE_NOTFOUND);
	assert_int_equal(store_turn_userhash_find(f->s, h[2], &u), STORE_OK);
	assert_int_equal(store_turn_userhash_count(f->s, f->alice.id, &n), STORE_OK);
	assert_int_equal(n, 1);
	/* none: every hash gone */
	assert_int_equal(store_turn_userhash_put(f->s, f->alice.id, NULL, 0), STORE_OK);
	assert_int_equal(store_turn_userhash_count(f->s, f->alice.id, &n), STORE_OK);
	assert_int_equal(n, 0);
}

static void test_store_turn_userhash_of_other_user_is_untouched(void **state)
{
	struct fx *f = *state;
	uint8_t a[STORE_TURN_USERHASH_LEN], b[STORE_TURN_USERHASH_LEN];
	struct store_user u;

	hash_of(a, 1);
	hash_of(b, 2);
	assert_int_equal(store_turn_userhash_put(f->s, f->alice.id,
						 (const uint8_t(*)[STORE_TURN_USERHASH_LEN])a, 1),
			 STORE_OK);
	assert_int_equal(store_turn_userhash_put(f->s, f->bob.id,
						 (const uint8_t(*)[STORE_TURN_USERHASH_LEN])b, 1),
			 STORE_OK);
	assert_int_equal(store_turn_userhash_put(f->s, f->alice.id, NULL, 0), STORE_OK);
	assert_int_equal(store_turn_userhash_find(f->s, b, &u), STORE_OK);
	assert_int_equal(u.id, f->bob.id);
}

static void test_store_turn_userhash_put_for_unknown_user_is_notfound(void **state)
{
	struct fx *f = *state;
	uint8_t h[STORE_TURN_USERHASH_LEN];
	struct store_user u;

	hash_of(h, 7);
	assert_int_equal(store_turn_userhash_put(f->s, f->bob.id + 1000,
						 (const uint8_t(*)[STORE_TURN_USERHASH_LEN])h, 1),
			 STORE_NOTFOUND);
	assert_int_equal(store_turn_userhash_find(f->s, h, &u), STORE_NOTFOUND);
}

static void test_store_turn_userhash_put_refuses_too_many(void **state)
{
	struct fx *f = *state;
	uint8_t h[STORE_TURN_USERHASH_MAX + 1][STORE_TURN_USERHASH_LEN];

	memset(h, 0, sizeof(h));
	assert_int_equal(store_turn_userhash_put(f->s, f->alice.id,
						 (const uint8_t(*)[STORE_TURN_USERHASH_LEN])h,
						 STORE_TURN_USERHASH_MAX + 1),
			 STORE_INVALID);
	assert_int_equal(store_turn_userhash_put(f->s, f->alice.id, NULL, 1), STORE_INVALID);
}

static void test_store_turn_userhash_goes_with_the_user(void **state)
{
	struct fx *f = *state;
	uint8_t h[STORE_TURN_USERHASH_LEN];
	struct store_user u;

	hash_of(h, 4);
	assert_int_equal(store_turn_userhash_put(f->s, f->alice.id,
						 (const uint8_t(*)[STORE_TURN_USERHASH_LEN])h, 1),
			 STORE_OK);
	assert_int_equal(store_user_del(f->s, "sip:alice@example.test"), STORE_OK);
	assert_int_equal(store_turn_userhash_find(f->s, h, &u), STORE_NOTFOUND);
}

static void test_store_turn_userhash_disabled_user_is_found_disabled(void **state)
{
	struct fx *f = *state;
	uint8_t h[STORE_TURN_USERHASH_LEN];
	struct store_user u;

	hash_of(h, 5);
	assert_int_equal(store_turn_userhash_put(f->s, f->bob.id,
						 (const uint8_t(*)[STORE_TURN_USERHASH_LEN])h, 1),
			 STORE_OK);
	assert_int_equal(store_user_set_enabled(f->s, "sip:bob@example.test", false), STORE_OK);
	assert_int_equal(store_turn_userhash_find(f->s, h, &u), STORE_OK);
	assert_false(u.enabled);
}

static void test_store_turn_missing_lists_users_with_keys_but_no_hash(void **state)
{
	struct fx *f = *state;
	struct store_user more[40], out[16];
	uint8_t h[STORE_TURN_USERHASH_LEN];
	size_t n = 0, total = 0;
	int64_t after = 0;
	char uri[64];

	set_key(f->s, f->alice.id, "digest-md5");
	set_key(f->s, f->bob.id, "nt"); /* no TURN key: not listed */
	for (int i = 0; i < 40; i++) {
		snprintf(uri, sizeof(uri), "sip:u%02d@example.test", i);
		add_user(f->s, uri, &more[i]);
		set_key(f->s, more[i].id, "digest-md5");
	}
	hash_of(h, 6); /* u00 has its hash already */
	assert_int_equal(store_turn_userhash_put(f->s, more[0].id,
						 (const uint8_t(*)[STORE_TURN_USERHASH_LEN])h, 1),
			 STORE_OK);
	do {
		assert_int_equal(store_turn_userhash_missing(f->s, after, out, 16, &n), STORE_OK);
		for (size_t i = 0; i < n; i++) {
			assert_true(out[i].id > after);
			assert_int_not_equal(out[i].id, f->bob.id);
			assert_int_not_equal(out[i].id, more[0].id);
			assert_string_equal(out[i].domain, "example.test");
			after = out[i].id;
		}
		total += n;
	} while (n == 16);
	assert_int_equal(total, 40); /* alice and u01..u39 */
}

static void test_store_turn_locked_database_is_unavailable(void **state)
{
	struct fx *f = *state;
	uint8_t h[STORE_TURN_USERHASH_LEN];
	sqlite3 *db;

	hash_of(h, 8);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(store_turn_userhash_put(f->s, f->alice.id,
						 (const uint8_t(*)[STORE_TURN_USERHASH_LEN])h, 1),
			 STORE_UNAVAILABLE);
	assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_turn_userhash_put(f->s, f->alice.id,
						 (const uint8_t(*)[STORE_TURN_USERHASH_LEN])h, 1),
			 STORE_OK);
}

#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_store_turn_userhash_put_then_find_gives_the_user),
	    T(test_store_turn_userhash_unknown_hash_is_notfound),
	    T(test_store_turn_userhash_put_replaces_the_users_hashes),
	    T(test_store_turn_userhash_of_other_user_is_untouched),
	    T(test_store_turn_userhash_put_for_unknown_user_is_notfound),
	    T(test_store_turn_userhash_put_refuses_too_many),
	    T(test_store_turn_userhash_goes_with_the_user),
	    T(test_store_turn_userhash_disabled_user_is_found_disabled),
	    T(test_store_turn_missing_lists_users_with_keys_but_no_hash),
	    T(test_store_turn_locked_database_is_unavailable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
