/*
 * The SQLite store (store.h): schema and migrations, users, keys, the Digest
 * lookup, registrations, audit, and the rule that an outage is
 * STORE_UNAVAILABLE, never NOTFOUND.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store/store.h"

struct fx {
	char dir[64];
	char path[128];
	struct store *s;
};

static void rm_db(const char *path)
{
	char p[200];

	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-journal", path);
	unlink(p);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/rtc-store-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/store.db", f->dir);
	assert_int_equal(store_open(f->path, STORE_CREATE, 1000, &f->s, err, sizeof(err)),
			 STORE_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char p[200];

	store_close(f->s);
	rm_db(f->path);
	snprintf(p, sizeof(p), "%s/copy.db", f->dir);
	rm_db(p);
	snprintf(p, sizeof(p), "%s/garbage.db", f->dir);
	rm_db(p);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void add_user(struct store *s, const char *uri, struct store_user *out)
{
	struct store_user u;
	char user[STORE_URI_MAX], domain[STORE_URI_MAX];

	memset(&u, 0, sizeof(u));
	assert_int_equal(store_uri_normalise(uri, u.uri, user, domain), STORE_OK);
	u.enabled = true;
	assert_int_equal(store_user_add(s, &u), STORE_OK);
	if (out)
		*out = u;
}

static struct store_cred mkcred(const char *mech, const char *variant, uint8_t fill, size_t len)
{
	struct store_cred c;

	memset(&c, 0, sizeof(c));
	snprintf(c.mech, sizeof(c.mech), "%s", mech);
	snprintf(c.variant, sizeof(c.variant), "%s", variant);
	memset(c.key, fill, len);
	c.key_len = len;
	return c;
}

/* A raw second connection, as another process would hold it. */
static sqlite3 *raw_open(const char *path)
{
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	return db;
}

static void raw_exec(sqlite3 *db, const char *sql)
{
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
}

/* ---- schema ---- */

static void test_store_migrates_empty_database_to_latest(void **state)
{
	struct fx *f = *state;
	sqlite3 *db = raw_open(f->path);
	sqlite3_stmt *st;
	int n = 0;

	assert_true(store_schema_latest() >= 1);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), store_schema_latest());
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT count(*) FROM sqlite_master WHERE type='table'"
					    " AND name IN ('users','credentials','registrations',"
					    "'audit')",
					    -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	assert_int_equal(n, 4);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void test_store_reopen_is_idempotent_and_keeps_data(void **state)
{
	struct fx *f = *state;
	struct store_user u;
	char err[256];

	add_user(f->s, "sip:alice@example.test", NULL);
	store_close(f->s);
	f->s = NULL;
	assert_int_equal(store_open(f->path, STORE_CREATE, 1000, &f->s, err, sizeof(err)),
			 STORE_OK);
	store_close(f->s);
	assert_int_equal(store_open(f->path, 0, 1000, &f->s, err, sizeof(err)), STORE_OK);
	assert_int_equal(store_user_get(f->s, "sip:alice@example.test", &u), STORE_OK);
}

static void test_store_refuses_newer_schema_with_message(void **state)
{
	struct fx *f = *state;
	struct store *s2 = (struct store *)1;
	sqlite3 *db;
	char err[256], want[128];

	store_close(f->s);
	f->s = NULL;
	db = raw_open(f->path);
	raw_exec(db, "PRAGMA user_version = 999");
	sqlite3_close(db);
	assert_int_equal(store_open(f->path, STORE_CREATE, 1000, &s2, err, sizeof(err)),
			 STORE_TOO_NEW);
	assert_null(s2);
	snprintf(want, sizeof(want),
		 "database schema version 999 is newer than this rtcauth (%d); upgrade rtcauth",
		 store_schema_latest());
	assert_non_null(strstr(err, want));
}

static void test_store_refuses_garbage_file_as_corrupt(void **state)
{
	struct fx *f = *state;
	struct store *s2 = (struct store *)1;
	char path[200], err[256], junk[8192];
	int fd;

	snprintf(path, sizeof(path), "%s/garbage.db", f->dir);
	memset(junk, 'x', sizeof(junk));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	assert_int_equal(store_open(path, STORE_CREATE, 100, &s2, err, sizeof(err)), STORE_CORRUPT);
	assert_null(s2);
	assert_non_null(strstr(err, "is not an rtcauth database"));
	assert_int_equal(store_open(path, STORE_READONLY, 100, &s2, err, sizeof(err)),
			 STORE_CORRUPT);
}

static void test_store_refuses_foreign_sqlite_database_as_corrupt(void **state)
{
	struct fx *f = *state;
	struct store *s2 = (struct store *)1;
	char path[200], err[256];
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/garbage.db", f->dir);
	db = raw_open(path);
	raw_exec(db, "CREATE TABLE moz_places (id INTEGER)");
	sqlite3_close(db);
	assert_int_equal(store_open(path, STORE_CREATE, 100, &s2, err, sizeof(err)), STORE_CORRUPT);
	assert_null(s2);
	assert_non_null(strstr(err, "not an rtcauth one"));
}

static void test_store_open_missing_file_without_create_fails(void **state)
{
	struct fx *f = *state;
	struct store *s2 = (struct store *)1;
	char path[200], err[256];

	snprintf(path, sizeof(path), "%s/copy.db", f->dir);
	assert_int_equal(store_open(path, 0, 100, &s2, err, sizeof(err)), STORE_UNAVAILABLE);
	assert_null(s2);
	assert_non_null(strstr(err, path));
}

/* ---- URIs ---- */

static void test_store_uri_normalise_lowers_host_keeps_user(void **state)
{
	char uri[STORE_URI_MAX], user[STORE_URI_MAX], domain[STORE_URI_MAX];

	assert_int_equal(store_uri_normalise("sip:Alice@Example.TEST", uri, user, domain), 0);
	assert_string_equal(uri, "sip:Alice@example.test");
	assert_string_equal(user, "Alice");
	assert_string_equal(domain, "example.test");
}

static void test_store_uri_normalise_stores_sips_as_sip(void **state)
{
	char uri[STORE_URI_MAX], user[STORE_URI_MAX], domain[STORE_URI_MAX];

	assert_int_equal(store_uri_normalise("sips:bob@example.test", uri, user, domain), 0);
	assert_string_equal(uri, "sip:bob@example.test");
	assert_int_equal(store_uri_normalise("SIP:bob@example.test", uri, user, domain), 0);
	assert_string_equal(uri, "sip:bob@example.test");
}

static void test_store_uri_normalise_accepts_bare_user_at_host(void **state)
{
	char uri[STORE_URI_MAX], user[STORE_URI_MAX], domain[STORE_URI_MAX];

	assert_int_equal(store_uri_normalise("carol.x+1@EXAMPLE.test", uri, user, domain), 0);
	assert_string_equal(uri, "sip:carol.x+1@example.test");
	assert_int_equal(store_uri_normalise("a%40b@[2001:DB8::1]", uri, user, domain), 0);
	assert_string_equal(uri, "sip:a%40b@[2001:db8::1]");
}

static void test_store_uri_normalise_rejects_invalid(void **state)
{
	static const char *const bad[] = {
	    "",
	    "sip:",
	    "sip:@example.test",
	    "sip:alice@",
	    "sip:alice",
	    "alice",
	    "sip:alice@example.test:5060",
	    "sip:alice@example.test;transport=tcp",
	    "sip:alice@example.test?subject=x",
	    "sip:alice:secret@example.test",
	    "sip:al ice@example.test",
	    "sip:alice@example.test ",
	    " sip:alice@example.test",
	    "sip:alice\t@example.test",
	    "sip:ali\001ce@example.test",
	    "sip:alice@exa\x7fmple.test",
	    "sip:al\xc3\xa9@example.test",
	    "<sip:alice@example.test>",
	    "sip:a@b@example.test",
	    "sip:alice@.example.test",
	    "sip:alice@example..test",
	    "sip:alice@example.test.",
	    "sip:a%4@example.test",
	    "sip:a%zz@example.test",
	    "sip:a\"b@example.test",
	    "tel:+15551234",
	    "sip:alice@[::1",
	};
	char uri[STORE_URI_MAX], user[STORE_URI_MAX], domain[STORE_URI_MAX];
	char longu[400];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (store_uri_normalise(bad[i], uri, user, domain) != STORE_INVALID)
			fail_msg("accepted invalid URI #%zu \"%s\"", i, bad[i]);
	}
	memset(longu, 'a', sizeof(longu));
	memcpy(longu + 300, "@example.test", 14);
	assert_int_equal(store_uri_normalise(longu, uri, user, domain), STORE_INVALID);
	assert_int_equal(store_uri_normalise(NULL, uri, user, domain), STORE_INVALID);
}

/* ---- users ---- */

static void test_store_user_add_get_roundtrip(void **state)
{
	struct fx *f = *state;
	struct store_user u, g;
	time_t before = time(NULL);

	memset(&u, 0, sizeof(u));
	snprintf(u.uri, sizeof(u.uri), "sip:alice@example.test");
	snprintf(u.display_name, sizeof(u.display_name), "Alice A.");
	u.enabled = true;
	assert_int_equal(store_user_add(f->s, &u), STORE_OK);
	assert_true(u.id > 0);
	assert_string_equal(u.user, "alice");
	assert_string_equal(u.domain, "example.test");

	assert_int_equal(store_user_get(f->s, "sip:alice@EXAMPLE.test", &g), STORE_OK);
	assert_int_equal(g.id, u.id);
	assert_string_equal(g.uri, "sip:alice@example.test");
	assert_string_equal(g.user, "alice");
	assert_string_equal(g.domain, "example.test");
	assert_string_equal(g.display_name, "Alice A.");
	assert_true(g.enabled);
	assert_false(g.has_password);
	assert_true(g.created >= before && g.created <= time(NULL));
	assert_int_equal(g.password_changed, 0);
	assert_int_equal(store_user_get(f->s, "sip:nobody@example.test", &g), STORE_NOTFOUND);
}

static void test_store_user_add_rejects_duplicate_as_conflict(void **state)
{
	struct fx *f = *state;
	struct store_user u;

	add_user(f->s, "sip:alice@example.test", NULL);
	memset(&u, 0, sizeof(u));
	snprintf(u.uri, sizeof(u.uri), "sip:alice@example.test");
	assert_int_equal(store_user_add(f->s, &u), STORE_CONFLICT);
	/* same user part, other domain: a different user */
	add_user(f->s, "sip:alice@other.test", NULL);
}

static void test_store_user_add_rejects_unnormalised_or_oversize(void **state)
{
	struct fx *f = *state;
	struct store_user u;

	memset(&u, 0, sizeof(u));
	snprintf(u.uri, sizeof(u.uri), "sip:alice@Example.test");
	assert_int_equal(store_user_add(f->s, &u), STORE_INVALID);
	snprintf(u.uri, sizeof(u.uri), "sip:alice@example.test:5060");
	assert_int_equal(store_user_add(f->s, &u), STORE_INVALID);
	snprintf(u.uri, sizeof(u.uri), "sip:alice@example.test");
	memset(u.display_name, 'x', sizeof(u.display_name)); /* no NUL */
	assert_int_equal(store_user_add(f->s, &u), STORE_INVALID);
}

static void test_store_user_enable_disable_and_display_name(void **state)
{
	struct fx *f = *state;
	struct store_user g;
	char big[STORE_NAME_MAX + 10];

	add_user(f->s, "sip:alice@example.test", NULL);
	assert_int_equal(store_user_set_enabled(f->s, "sip:alice@example.test", false), STORE_OK);
	assert_int_equal(store_user_get(f->s, "sip:alice@example.test", &g), STORE_OK);
	assert_false(g.enabled);
	assert_int_equal(store_user_set_enabled(f->s, "alice@example.test", true), STORE_OK);
	assert_int_equal(store_user_get(f->s, "sip:alice@example.test", &g), STORE_OK);
	assert_true(g.enabled);
	assert_int_equal(store_user_set_display_name(f->s, "sip:alice@example.test", "Alice Z"),
			 STORE_OK);
	assert_int_equal(store_user_get(f->s, "sip:alice@example.test", &g), STORE_OK);
	assert_string_equal(g.display_name, "Alice Z");
	memset(big, 'n', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(store_user_set_display_name(f->s, "sip:alice@example.test", big),
			 STORE_INVALID);
	assert_int_equal(store_user_set_enabled(f->s, "sip:bob@example.test", false),
			 STORE_NOTFOUND);
	assert_int_equal(store_user_set_display_name(f->s, "sip:bob@example.test", "B"),
			 STORE_NOTFOUND);
	assert_int_equal(store_user_set_enabled(f->s, "not a uri", false), STORE_INVALID);
}

static int count_regs(void *ctx, const struct store_reg *r)
{
	(*(int *)ctx)++;
	return 0;
}

static void put_reg(struct store *s, const char *aor, const char *key, int64_t expires)
{
	struct store_reg r;

	memset(&r, 0, sizeof(r));
	snprintf(r.aor, sizeof(r.aor), "%s", aor);
	snprintf(r.binding_key, sizeof(r.binding_key), "%s", key);
	snprintf(r.contact, sizeof(r.contact), "<%s>", key);
	r.reg_id = -1;
	r.expires = expires;
	assert_int_equal(store_reg_put(s, &r), STORE_OK);
}

static void test_store_user_del_cascades_keys_and_registrations(void **state)
{
	struct fx *f = *state;
	struct store_user u, g;
	struct store_cred c = mkcred("digest-md5", "user", 0xaa, 16), k;
	sqlite3 *db;
	sqlite3_stmt *st;
	int n = 0;

	add_user(f->s, "sip:alice@example.test", &u);
	add_user(f->s, "sip:bob@example.test", NULL);
	assert_int_equal(store_cred_replace(f->s, u.id, &c, 1), STORE_OK);
	put_reg(f->s, "sip:alice@example.test", "sip:alice@192.0.2.1", time(NULL) + 60);
	put_reg(f->s, "sip:bob@example.test", "sip:bob@192.0.2.2", time(NULL) + 60);

	assert_int_equal(store_user_del(f->s, "sip:alice@example.test"), STORE_OK);
	assert_int_equal(store_user_get(f->s, "sip:alice@example.test", &g), STORE_NOTFOUND);
	assert_int_equal(store_digest_lookup(f->s, STR_LIT("alice"), STR_LIT("example.test"),
					     "digest-md5", &g, &k),
			 STORE_NOTFOUND);
	assert_int_equal(store_reg_list(f->s, NULL, count_regs, &n), STORE_OK);
	assert_int_equal(n, 1); /* bob's only */
	db = raw_open(f->path);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM credentials", -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	assert_int_equal(store_user_del(f->s, "sip:alice@example.test"), STORE_NOTFOUND);
}

struct names {
	char uri[8][STORE_URI_MAX];
	int n, stop_after;
};

static int collect_users(void *ctx, const struct store_user *u)
{
	struct names *nm = ctx;

	if (nm->n < 8)
		snprintf(nm->uri[nm->n], STORE_URI_MAX, "%s", u->uri);
	nm->n++;
	return nm->stop_after && nm->n >= nm->stop_after ? 42 : 0;
}

static void test_store_user_list_is_ordered_by_uri_and_stops_early(void **state)
{
	struct fx *f = *state;
	struct names nm;
	int64_t count = -1;

	add_user(f->s, "sip:carol@example.test", NULL);
	add_user(f->s, "sip:alice@example.test", NULL);
	add_user(f->s, "sip:bob@example.test", NULL);
	memset(&nm, 0, sizeof(nm));
	assert_int_equal(store_user_list(f->s, collect_users, &nm), STORE_OK);
	assert_int_equal(nm.n, 3);
	assert_string_equal(nm.uri[0], "sip:alice@example.test");
	assert_string_equal(nm.uri[1], "sip:bob@example.test");
	assert_string_equal(nm.uri[2], "sip:carol@example.test");
	memset(&nm, 0, sizeof(nm));
	nm.stop_after = 2;
	assert_int_equal(store_user_list(f->s, collect_users, &nm), 42);
	assert_int_equal(nm.n, 2);
	assert_int_equal(store_user_count(f->s, &count), STORE_OK);
	assert_int_equal(count, 3);
}

/* ---- keys and the Digest lookup ---- */

static void test_store_cred_replace_is_atomic(void **state)
{
	struct fx *f = *state;
	struct store_user u, g;
	struct store_cred old = mkcred("digest-md5", "user", 0x11, 16);
	struct store_cred bad[2] = {mkcred("digest-md5", "user", 0x22, 16),
				    mkcred("digest-md5", "user", 0x33, 16)}; /* duplicate */
	struct store_cred k;

	add_user(f->s, "sip:alice@example.test", &u);
	assert_int_equal(store_cred_replace(f->s, u.id, &old, 1), STORE_OK);
	assert_int_equal(store_user_get(f->s, "sip:alice@example.test", &g), STORE_OK);
	assert_true(g.has_password);
	assert_true(g.password_changed > 0);

	assert_int_equal(store_cred_replace(f->s, u.id, bad, 2), STORE_CONFLICT);
	/* the old key is still there, untouched */
	assert_int_equal(store_digest_lookup(f->s, STR_LIT("alice"), STR_LIT("example.test"),
					     "digest-md5", &g, &k),
			 STORE_OK);
	assert_int_equal(k.key_len, 16);
	assert_int_equal(k.key[0], 0x11);
	/* a key that is too long is refused before anything changes */
	bad[1] = mkcred("digest-sha256", "user", 0x44, 16);
	bad[1].key_len = STORE_KEY_MAX + 1;
	assert_int_equal(store_cred_replace(f->s, u.id, bad, 2), STORE_INVALID);
	assert_int_equal(store_digest_lookup(f->s, STR_LIT("alice"), STR_LIT("example.test"),
					     "digest-md5", &g, &k),
			 STORE_OK);
	assert_int_equal(k.key[0], 0x11);
	/* unknown user id */
	assert_int_equal(store_cred_replace(f->s, u.id + 1000, &old, 1), STORE_NOTFOUND);
}

static void test_store_digest_lookup_by_user_part_and_user_at_domain(void **state)
{
	struct fx *f = *state;
	struct store_user u, g;
	struct store_cred c[2] = {mkcred("digest-sha256", "user", 0x01, 32),
				  mkcred("digest-sha256", "user@domain", 0x02, 32)};
	struct store_cred k;

	add_user(f->s, "sip:alice@example.test", &u);
	add_user(f->s, "sip:alice@other.test", NULL);
	assert_int_equal(store_cred_replace(f->s, u.id, c, 2), STORE_OK);

	assert_int_equal(store_digest_lookup(f->s, STR_LIT("alice"), STR_LIT("example.test"),
					     "digest-sha256", &g, &k),
			 STORE_OK);
	assert_int_equal(g.id, u.id);
	assert_true(g.has_password);
	assert_int_equal(k.key_len, 32);
	assert_int_equal(k.key[0], 0x01);
	assert_string_equal(k.variant, "user");
	assert_string_equal(k.mech, "digest-sha256");

	assert_int_equal(store_digest_lookup(f->s, STR_LIT("alice@example.test"),
					     STR_LIT("example.test"), "digest-sha256", &g, &k),
			 STORE_OK);
	assert_int_equal(g.id, u.id);
	assert_int_equal(k.key[0], 0x02);
	assert_string_equal(k.variant, "user@domain");

	/* domain and realm are compared case-insensitively */
	assert_int_equal(store_digest_lookup(f->s, STR_LIT("alice@EXAMPLE.Test"),
					     STR_LIT("example.test"), "digest-sha256", &g, &k),
			 STORE_OK);
	assert_int_equal(k.key[0], 0x02);
	assert_int_equal(store_digest_lookup(f->s, STR_LIT("alice"), STR_LIT("Example.TEST"),
					     "digest-sha256", &g, &k),
			 STORE_OK);
	assert_int_equal(g.id, u.id);
	/* the user part is not */
	assert_int_equal(store_digest_lookup(f->s, STR_LIT("Alice"), STR_LIT("example.test"),
					     "digest-sha256", &g, &k),
			 STORE_NOTFOUND);
}

static void test_store_digest_lookup_wrong_realm_or_mech_is_notfound(void **state)
{
	struct fx *f = *state;
	struct store_user u, g;
	struct store_cred c = mkcred("digest-md5", "user", 0x01, 16), k;

	add_user(f->s, "sip:alice@example.test", &u);
	add_user(f->s, "sip:nokey@example.test", NULL);
	assert_int_equal(store_cred_replace(f->s, u.id, &c, 1), STORE_OK);
	assert_int_equal(
	    store_digest_lookup(f->s, STR_LIT("alice"), STR_LIT("evil.test"), "digest-md5", &g, &k),
	    STORE_NOTFOUND);
	assert_int_equal(g.id, 0); /* no such user at all */
	assert_int_equal(store_digest_lookup(f->s, STR_LIT("bob"), STR_LIT("example.test"),
					     "digest-md5", &g, &k),
			 STORE_NOTFOUND);
	assert_int_equal(g.id, 0);
	assert_int_equal(
	    store_digest_lookup(f->s, STR_LIT(""), STR_LIT("example.test"), "digest-md5", &g, &k),
	    STORE_NOTFOUND);
	assert_int_equal(store_digest_lookup(f->s, STR_LIT("alice@"), STR_LIT("example.test"),
					     "digest-md5", &g, &k),
			 STORE_NOTFOUND);
	/* a user without that key: NOTFOUND, but the user row is filled */
	assert_int_equal(store_digest_lookup(f->s, STR_LIT("alice"), STR_LIT("example.test"),
					     "digest-sha256", &g, &k),
			 STORE_NOTFOUND);
	assert_int_equal(g.id, u.id);
	assert_true(g.has_password);
	assert_int_equal(k.key_len, 0);
	assert_int_equal(store_digest_lookup(f->s, STR_LIT("nokey"), STR_LIT("example.test"),
					     "digest-md5", &g, &k),
			 STORE_NOTFOUND);
	assert_true(g.id > 0);
	assert_false(g.has_password);
}

static void test_store_digest_lookup_returns_disabled_users(void **state)
{
	struct fx *f = *state;
	struct store_user u, g;
	struct store_cred c = mkcred("digest-md5", "user", 0x01, 16), k;

	add_user(f->s, "sip:alice@example.test", &u);
	assert_int_equal(store_cred_replace(f->s, u.id, &c, 1), STORE_OK);
	assert_int_equal(store_user_set_enabled(f->s, u.uri, false), STORE_OK);
	assert_int_equal(store_digest_lookup(f->s, STR_LIT("alice"), STR_LIT("example.test"),
					     "digest-md5", &g, &k),
			 STORE_OK);
	assert_false(g.enabled);
}

/* ---- registrations ---- */

struct regs {
	struct store_reg r[8];
	int n;
};

static int collect_regs(void *ctx, const struct store_reg *r)
{
	struct regs *rs = ctx;

	if (rs->n < 8)
		rs->r[rs->n] = *r;
	rs->n++;
	return 0;
}

static void test_store_reg_put_replace_list_del(void **state)
{
	struct fx *f = *state;
	struct store_reg r;
	struct regs *rs = calloc(1, sizeof(*rs));
	int64_t now = time(NULL);
	int n = -1;

	assert_non_null(rs);
	memset(&r, 0, sizeof(r));
	snprintf(r.aor, sizeof(r.aor), "sip:alice@example.test");
	snprintf(r.binding_key, sizeof(r.binding_key), "<urn:uuid:1>;1");
	snprintf(r.contact, sizeof(r.contact), "<sip:alice@192.0.2.1:5060;transport=tcp>");
	snprintf(r.instance, sizeof(r.instance), "<urn:uuid:1>");
	r.reg_id = 1;
	snprintf(r.path, sizeof(r.path), "<sip:edge.example.test;lr>");
	r.expires = now + 3600;
	snprintf(r.source, sizeof(r.source), "[2001:db8::1]:5060");
	r.transport = 2;
	snprintf(r.call_id, sizeof(r.call_id), "abc@host");
	r.cseq = 4000000000u;
	snprintf(r.user_agent, sizeof(r.user_agent), "phone/1.0");
	assert_int_equal(store_reg_put(f->s, &r), STORE_OK);
	put_reg(f->s, "sip:alice@example.test", "sip:alice@192.0.2.9", now + 60);
	put_reg(f->s, "sip:bob@example.test", "sip:bob@192.0.2.2", now + 60);

	assert_int_equal(store_reg_list(f->s, "sip:alice@example.test", collect_regs, rs),
			 STORE_OK);
	assert_int_equal(rs->n, 2);
	/* replace by (aor, binding_key) */
	r.cseq = 7;
	r.expires = now + 10;
	snprintf(r.contact, sizeof(r.contact), "<sip:alice@192.0.2.7:5062;transport=tcp>");
	snprintf(r.call_id, sizeof(r.call_id), "new@host");
	assert_int_equal(store_reg_put(f->s, &r), STORE_OK);
	memset(rs, 0, sizeof(*rs));
	assert_int_equal(store_reg_list(f->s, NULL, collect_regs, rs), STORE_OK);
	assert_int_equal(rs->n, 3);
	assert_string_equal(rs->r[0].aor, "sip:alice@example.test");
	assert_string_equal(rs->r[2].aor, "sip:bob@example.test");
	for (int i = 0; i < 2; i++) {
		if (strcmp(rs->r[i].binding_key, "<urn:uuid:1>;1") != 0)
			continue;
		assert_int_equal(rs->r[i].cseq, 7);
		assert_int_equal(rs->r[i].expires, now + 10);
		assert_string_equal(rs->r[i].contact, "<sip:alice@192.0.2.7:5062;transport=tcp>");
		assert_string_equal(rs->r[i].call_id, "new@host");
		assert_int_equal(rs->r[i].reg_id, 1);
		assert_int_equal(rs->r[i].transport, 2);
		assert_string_equal(rs->r[i].source, "[2001:db8::1]:5060");
		assert_string_equal(rs->r[i].path, "<sip:edge.example.test;lr>");
		assert_string_equal(rs->r[i].user_agent, "phone/1.0");
		assert_true(rs->r[i].updated >= now);
	}

	assert_int_equal(store_reg_del(f->s, "sip:alice@example.test", "<urn:uuid:1>;1"), STORE_OK);
	assert_int_equal(store_reg_del(f->s, "sip:alice@example.test", "<urn:uuid:1>;1"),
			 STORE_NOTFOUND);
	put_reg(f->s, "sip:alice@example.test", "sip:alice@192.0.2.10", now + 60);
	assert_int_equal(store_reg_del_aor(f->s, "sip:alice@example.test", &n), STORE_OK);
	assert_int_equal(n, 2);
	memset(rs, 0, sizeof(*rs));
	assert_int_equal(store_reg_list(f->s, NULL, collect_regs, rs), STORE_OK);
	assert_int_equal(rs->n, 1);
	free(rs);
}

static void test_store_reg_purge_removes_expired_only(void **state)
{
	struct fx *f = *state;
	int n = -1, left = 0;

	put_reg(f->s, "sip:a@example.test", "k1", 100);
	put_reg(f->s, "sip:a@example.test", "k2", 200);
	put_reg(f->s, "sip:b@example.test", "k3", 300);
	assert_int_equal(store_reg_purge(f->s, 200, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_int_equal(store_reg_list(f->s, NULL, count_regs, &left), STORE_OK);
	assert_int_equal(left, 1);
}

static int mark_reg(void *ctx, const struct store_reg *r)
{
	int *seen = ctx;
	int i = atoi(r->binding_key + 1);
	assert_true(i >= 0 && i < 50);
	seen[i]++;
	return 0;
}

static void test_store_reg_scan_parts_cover_every_binding_once(void **state)
{
	struct fx *f = *state;
	int seen[50] = {0}, in_part[3] = {0};

	for (int i = 0; i < 50; i++) {
		char aor[64], key[16];
		snprintf(aor, sizeof(aor), "sip:u%d@example.test", i % 7);
		snprintf(key, sizeof(key), "k%d", i);
		put_reg(f->s, aor, key, 1000);
	}
	for (int part = 0; part < 3; part++) {
		int before = 0, after = 0;
		for (int i = 0; i < 50; i++)
			before += seen[i];
		assert_int_equal(store_reg_scan(f->s, part, 3, mark_reg, seen), STORE_OK);
		for (int i = 0; i < 50; i++)
			after += seen[i];
		in_part[part] = after - before;
		assert_true(in_part[part] > 0); /* every part holds some rows */
	}
	for (int i = 0; i < 50; i++)
		assert_int_equal(seen[i], 1);
	assert_int_equal(store_reg_scan(f->s, 3, 3, mark_reg, seen), STORE_INVALID);
	assert_int_equal(store_reg_scan(f->s, 0, 0, mark_reg, seen), STORE_INVALID);
}

/* Run sql on the database through a connection of its own. */
static int sqlite3_exec_for_test(const char *path, const char *sql)
{
	sqlite3 *db;
	int rc = sqlite3_open(path, &db);

	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc;
}

/* Every change of a user or a key bumps the credentials version (the key
 * caches poll it); registrations and audit rows do not. */
static void test_store_cred_version_changes_with_users_and_keys_only(void **state)
{
	struct fx *f = *state;
	struct store_user u;
	struct store_cred c = {.mech = "digest", .variant = "MD5", .key_len = 16};
	int64_t v0 = -1, v1 = -1, v2 = -1, v3 = -1, v4 = -1, v5 = -1, v6 = -1;

	assert_int_equal(store_cred_version(f->s, &v0), STORE_OK);
	memset(&u, 0, sizeof(u));
	assert_int_equal(store_uri_normalise("sip:vera@example.test", u.uri, u.user, u.domain),
			 STORE_OK);
	u.enabled = true;
	assert_int_equal(store_user_add(f->s, &u), STORE_OK);
	assert_int_equal(store_cred_version(f->s, &v1), STORE_OK);
	assert_true(v1 > v0);
	assert_int_equal(store_cred_replace(f->s, u.id, &c, 1), STORE_OK);
	assert_int_equal(store_cred_version(f->s, &v2), STORE_OK);
	assert_true(v2 > v1);
	assert_int_equal(store_user_set_enabled(f->s, u.uri, false), STORE_OK);
	assert_int_equal(store_cred_version(f->s, &v3), STORE_OK);
	assert_true(v3 > v2);
	put_reg(f->s, u.uri, "sip:vera@192.0.2.3", time(NULL) + 60);
	assert_int_equal(store_audit_add(f->s, "test", "user.add", u.uri, "", ""), STORE_OK);
	assert_int_equal(store_cred_version(f->s, &v4), STORE_OK);
	assert_int_equal(v4, v3);
	assert_int_equal(store_user_del(f->s, u.uri), STORE_OK);
	assert_int_equal(store_cred_version(f->s, &v5), STORE_OK);
	assert_true(v5 > v4);
	/* a table without its row is a broken store, not version 0 */
	assert_int_equal(sqlite3_exec_for_test(f->path, "DELETE FROM cred_version"), SQLITE_OK);
	assert_int_not_equal(store_cred_version(f->s, &v6), STORE_OK);
}

static void test_store_reg_put_rejects_oversize_fields(void **state)
{
	struct fx *f = *state;
	struct store_reg *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	snprintf(r->aor, sizeof(r->aor), "sip:a@example.test");
	snprintf(r->binding_key, sizeof(r->binding_key), "k");
	memset(r->source, '1', sizeof(r->source)); /* not terminated */
	assert_int_equal(store_reg_put(f->s, r), STORE_INVALID);
	r->source[0] = '\0';
	r->aor[0] = '\0';
	assert_int_equal(store_reg_put(f->s, r), STORE_INVALID);
	free(r);
}

/* ---- audit ---- */

struct audits {
	char action[4][64];
	int n;
};

static int collect_audit(void *ctx, const struct store_audit *a)
{
	struct audits *au = ctx;

	if (au->n < 4)
		snprintf(au->action[au->n], 64, "%s", a->action);
	au->n++;
	return 0;
}

static void test_store_audit_lists_most_recent_first_with_limit(void **state)
{
	struct fx *f = *state;
	struct audits au;
	char big[600];

	assert_int_equal(store_audit_add(f->s, "rtcauthctl:root", "user.add",
					 "sip:alice@example.test", "local", "created"),
			 STORE_OK);
	assert_int_equal(store_audit_add(f->s, "sip", "auth.fail", "sip:alice@example.test",
					 "192.0.2.1:5060", "bad_response"),
			 STORE_OK);
	assert_int_equal(
	    store_audit_add(f->s, "sip", "auth.ok", "sip:alice@example.test", NULL, NULL),
	    STORE_OK);
	memset(&au, 0, sizeof(au));
	assert_int_equal(store_audit_list(f->s, 2, collect_audit, &au), STORE_OK);
	assert_int_equal(au.n, 2);
	assert_string_equal(au.action[0], "auth.ok");
	assert_string_equal(au.action[1], "auth.fail");
	memset(big, 'd', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(store_audit_add(f->s, "sip", "auth.fail", "x", "y", big), STORE_INVALID);
	assert_int_equal(store_audit_add(f->s, "", "auth.fail", "x", "y", "z"), STORE_INVALID);
}

/* ---- outages ---- */

static int copy_file(const char *from, const char *to)
{
	char buf[8192];
	ssize_t n;
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int rc = in >= 0 && out >= 0 ? 0 : -1;

	while (rc == 0 && (n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			rc = -1;
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return rc;
}

/*
 * Open the 0444 copy without STORE_CREATE: refused at open with
 * STORE_UNAVAILABLE and a message saying the file is read-only (failing at
 * start beats failing on the first REGISTER). Exit code 0 = as specified.
 */
static int readonly_child(const char *path)
{
	struct store *s = NULL;
	char err[256];
	int rc;

	rc = store_open(path, 0, 100, &s, err, sizeof(err));
	if (rc == STORE_OK) {
		store_close(s);
		return 10;
	}
	if (rc != STORE_UNAVAILABLE)
		return 11;
	if (!strstr(err, "read-only") || !strstr(err, path))
		return 12;
	return s == NULL ? 0 : 13;
}

static void test_store_readonly_file_is_unavailable(void **state)
{
	struct fx *f = *state;
	char copy[200];
	pid_t pid;
	int st;

	add_user(f->s, "sip:alice@example.test", NULL);
	store_close(f->s); /* checkpoints the WAL into the main file */
	f->s = NULL;
	snprintf(copy, sizeof(copy), "%s/copy.db", f->dir);
	assert_int_equal(copy_file(f->path, copy), 0);
	assert_int_equal(chmod(copy, 0444), 0);
	if (geteuid() != 0) {
		assert_int_equal(readonly_child(copy), 0);
		return;
	}
	/* root ignores file modes: try as an unprivileged user */
	assert_int_equal(chmod(f->dir, 0755), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(20);
		_exit(readonly_child(copy));
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_store_write_on_readonly_handle_is_unavailable(void **state)
{
	struct fx *f = *state;
	struct store *ro = NULL;
	struct store_user u;
	char err[256];

	add_user(f->s, "sip:alice@example.test", NULL);
	assert_int_equal(store_open(f->path, STORE_READONLY, 100, &ro, err, sizeof(err)), STORE_OK);
	assert_int_equal(store_user_get(ro, "sip:alice@example.test", &u), STORE_OK);
	memset(&u, 0, sizeof(u));
	snprintf(u.uri, sizeof(u.uri), "sip:bob@example.test");
	assert_int_equal(store_user_add(ro, &u), STORE_UNAVAILABLE);
	assert_true(strlen(store_errmsg(ro)) > 0);
	store_close(ro);
}

static void test_store_locked_database_is_unavailable_not_notfound(void **state)
{
	struct fx *f = *state;
	struct store *s2 = NULL;
	struct store_user u;
	struct store_cred c = mkcred("digest-md5", "user", 0x01, 16);
	sqlite3 *db;
	char err[256];
	int n;

	store_close(f->s);
	f->s = NULL;
	assert_int_equal(store_open(f->path, 0, 20, &s2, err, sizeof(err)), STORE_OK);
	f->s = s2;
	add_user(f->s, "sip:alice@example.test", &u);
	db = raw_open(f->path);
	raw_exec(db, "BEGIN EXCLUSIVE");
	memset(&u, 0, sizeof(u));
	snprintf(u.uri, sizeof(u.uri), "sip:bob@example.test");
	assert_int_equal(store_user_add(f->s, &u), STORE_UNAVAILABLE);
	assert_int_equal(store_user_del(f->s, "sip:alice@example.test"), STORE_UNAVAILABLE);
	assert_int_equal(store_user_set_enabled(f->s, "sip:alice@example.test", false),
			 STORE_UNAVAILABLE);
	assert_int_equal(store_cred_replace(f->s, 1, &c, 1), STORE_UNAVAILABLE);
	assert_int_equal(store_reg_purge(f->s, 0, &n), STORE_UNAVAILABLE);
	assert_int_equal(store_audit_add(f->s, "sip", "auth.ok", "", "", ""), STORE_UNAVAILABLE);
	assert_int_equal(store_begin(f->s), STORE_UNAVAILABLE);
	assert_non_null(strstr(store_errmsg(f->s), "locked"));
	raw_exec(db, "ROLLBACK");
	sqlite3_close(db);
	/* and the handle works again afterwards */
	assert_int_equal(store_user_set_enabled(f->s, "sip:alice@example.test", false), STORE_OK);
}

static void test_store_begin_commit_groups_10000_users_fast(void **state)
{
	struct fx *f = *state;
	struct timespec t0, t1;
	struct store_user u;
	int64_t count = 0;
	double secs;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(store_begin(f->s), STORE_OK);
	for (int i = 0; i < 10000; i++) {
		memset(&u, 0, sizeof(u));
		snprintf(u.uri, sizeof(u.uri), "sip:user%05d@example.test", i);
		u.enabled = true;
		assert_int_equal(store_user_add(f->s, &u), STORE_OK);
	}
	assert_int_equal(store_commit(f->s), STORE_OK);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_int_equal(store_user_count(f->s, &count), STORE_OK);
	assert_int_equal(count, 10000);
	if (secs >= 1.0)
		fail_msg("10,000 inserts took %.3f s", secs);
}

static void test_store_rollback_discards_transaction(void **state)
{
	struct fx *f = *state;
	struct store_user u;

	assert_int_equal(store_begin(f->s), STORE_OK);
	add_user(f->s, "sip:alice@example.test", NULL);
	/* internal transactions nest as savepoints inside the caller's */
	assert_int_equal(store_user_del(f->s, "sip:nobody@example.test"), STORE_NOTFOUND);
	store_rollback(f->s);
	assert_int_equal(store_user_get(f->s, "sip:alice@example.test", &u), STORE_NOTFOUND);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_store_migrates_empty_database_to_latest),
	    T(test_store_reopen_is_idempotent_and_keeps_data),
	    T(test_store_refuses_newer_schema_with_message),
	    T(test_store_refuses_garbage_file_as_corrupt),
	    T(test_store_refuses_foreign_sqlite_database_as_corrupt),
	    T(test_store_open_missing_file_without_create_fails),
	    cmocka_unit_test(test_store_uri_normalise_lowers_host_keeps_user),
	    cmocka_unit_test(test_store_uri_normalise_stores_sips_as_sip),
	    cmocka_unit_test(test_store_uri_normalise_accepts_bare_user_at_host),
	    cmocka_unit_test(test_store_uri_normalise_rejects_invalid),
	    T(test_store_user_add_get_roundtrip),
	    T(test_store_user_add_rejects_duplicate_as_conflict),
	    T(test_store_user_add_rejects_unnormalised_or_oversize),
	    T(test_store_user_enable_disable_and_display_name),
	    T(test_store_user_del_cascades_keys_and_registrations),
	    T(test_store_user_list_is_ordered_by_uri_and_stops_early),
	    T(test_store_cred_replace_is_atomic),
	    T(test_store_digest_lookup_by_user_part_and_user_at_domain),
	    T(test_store_digest_lookup_wrong_realm_or_mech_is_notfound),
	    T(test_store_digest_lookup_returns_disabled_users),
	    T(test_store_reg_put_replace_list_del),
	    T(test_store_reg_purge_removes_expired_only),
	    T(test_store_reg_scan_parts_cover_every_binding_once),
	    T(test_store_reg_put_rejects_oversize_fields),
	    T(test_store_cred_version_changes_with_users_and_keys_only),
	    T(test_store_audit_lists_most_recent_first_with_limit),
	    T(test_store_readonly_file_is_unavailable),
	    T(test_store_write_on_readonly_handle_is_unavailable),
	    T(test_store_locked_database_is_unavailable_not_notfound),
	    T(test_store_begin_commit_groups_10000_users_fast),
	    T(test_store_rollback_discards_transaction),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
