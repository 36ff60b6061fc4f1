/*
 * The OAuth state a pool shares through the store (store_oauth.h): a jti
 * recorded through one connection is a replay through another until it
 * expires; a revocation through one is seen through another, with a
 * version that moves; purges are bounded; consent is per partner and user
 * and goes with them; partners' PKI names round-trip.
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

#include "oauth/token.h"
#include "store/store.h"
#include "store/store_oauth.h"

struct fx {
	char dir[64];
	char path[128];
	struct store *a, *b; /* two servers of a pool */
	int64_t partner, partner2, alice, bob;
};

static void rm_db(const char *path)
{
	static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
	char p[200];

	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", path, sfx[i]);
		unlink(p);
	}
}

static int64_t add_partner(struct store *s, const char *name, const char *issuer)
{
	struct store_partner p;

	memset(&p, 0, sizeof(p));
	snprintf(p.name, sizeof(p.name), "%s", name);
	snprintf(p.issuer, sizeof(p.issuer), "%s", issuer);
	p.enabled = true;
	p.trust = STORE_TRUST_APPLICATION;
	snprintf(p.realm, sizeof(p.realm), "example.test");
	p.lifetime = 600;
	p.source = STORE_PARTNER_CERT;
	p.certs = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
	assert_int_equal(store_partner_add(s, &p), STORE_OK);
	return p.id;
}

static int64_t add_user(struct store *s, const char *uri)
{
	struct store_user u;

	memset(&u, 0, sizeof(u));
	assert_int_equal(store_uri_normalise(uri, u.uri, u.user, u.domain), 0);
	u.enabled = true;
	assert_int_equal(store_user_add(s, &u), STORE_OK);
	return u.id;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/rtc-storeop-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/store.db", f->dir);
	assert_int_equal(store_open(f->path, STORE_CREATE, 1000, &f->a, err, sizeof(err)),
			 STORE_OK);
	assert_int_equal(store_open(f->path, 0, 1000, &f->b, err, sizeof(err)), STORE_OK);
	f->partner = add_partner(f->a, "mail", "mail-id");
	f->partner2 = add_partner(f->a, "docs", "docs-id");
	f->alice = add_user(f->a, "sip:alice@example.test");
	f->bob = add_user(f->a, "sip:bob@example.test");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	store_close(f->a);
	store_close(f->b);
	rm_db(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void key_of(uint8_t k[STORE_OAUTH_KEY_LEN], int n)
{
	memset(k, 0, STORE_OAUTH_KEY_LEN);
	k[0] = (uint8_t)n;
	k[31] = (uint8_t)(n >> 8);
}

/* ---- jtis ---- */

static void test_jti_used_at_one_server_is_a_replay_at_another(void **state)
{
	struct fx *f = *state;
	uint8_t k[STORE_OAUTH_KEY_LEN];

	key_of(k, 1);
	assert_int_equal(store_oauth_jti_add(f->a, k, 2000, 1000), STORE_OK);
	assert_int_equal(store_oauth_jti_add(f->b, k, 2000, 1001), STORE_CONFLICT);
	assert_int_equal(store_oauth_jti_add(f->a, k, 2000, 1500), STORE_CONFLICT);
	/* the last second of its life still counts */
	assert_int_equal(store_oauth_jti_add(f->b, k, 2500, 2000), STORE_CONFLICT);
	/* another key is another assertion */
	key_of(k, 2);
	assert_int_equal(store_oauth_jti_add(f->b, k, 2000, 1000), STORE_OK);
}

static void test_jti_batch_records_all_and_finds_replays(void **state)
{
	struct fx *f = *state;
	struct store_oauth_jti rows[3];
	int res[3];
	uint8_t k[STORE_OAUTH_KEY_LEN];

	memset(rows, 0, sizeof(rows));
	key_of(rows[0].key, 10);
	key_of(rows[1].key, 11);
	key_of(rows[2].key, 12);
	for (int i = 0; i < 3; i++)
		rows[i].expires = 2000;
	/* 11 was spent at the other server of the pool */
	assert_int_equal(store_oauth_jti_add(f->b, rows[1].key, 2000, 1000), STORE_OK);
	assert_int_equal(store_oauth_jti_add_many(f->a, rows, 3, 1000, res), STORE_OK);
	assert_int_equal(res[0], STORE_OK);
	assert_int_equal(res[1], STORE_CONFLICT);
	assert_int_equal(res[2], STORE_OK);
	/* the batch was committed: the others are replays at b now */
	key_of(k, 10);
	assert_int_equal(store_oauth_jti_add(f->b, k, 2000, 1001), STORE_CONFLICT);
	key_of(k, 12);
	assert_int_equal(store_oauth_jti_add(f->b, k, 2000, 1001), STORE_CONFLICT);
	/* a key twice in one batch: the second is the replay */
	rows[1] = rows[0];
	key_of(rows[0].key, 13);
	rows[1] = rows[0];
	assert_int_equal(store_oauth_jti_add_many(f->a, rows, 2, 1000, res), STORE_OK);
	assert_int_equal(res[0], STORE_OK);
	assert_int_equal(res[1], STORE_CONFLICT);
	assert_int_equal(store_oauth_jti_add_many(f->a, NULL, 1, 1000, res), STORE_INVALID);
}

/* A result of the token endpoint waiting for its group commit. */
static void pending(struct token_result *r, int first_key, int n, bool grant)
{
	memset(r, 0, sizeof(*r));
	r->status = 200;
	r->reason = TOKEN_ISSUED;
	r->access_token = strdup("eyJ.token.sig");
	assert_non_null(r->access_token);
	for (int i = 0; i < n; i++) {
		key_of(r->spend[i].row.key, first_key + i);
		r->spend[i].row.expires = 5000;
		r->spend[i].grant = grant && i == 1;
	}
	r->n_spend = n;
}

static void test_token_group_commit_refuses_what_the_pool_spent(void **state)
{
	struct fx *f = *state;
	struct token_result r[4];
	struct token_result *rp[4] = {&r[0], &r[1], &r[2], &r[3]};
	uint8_t k[STORE_OAUTH_KEY_LEN];

	pending(&r[0], 20, 1, false); /* fresh client assertion */
	pending(&r[1], 21, 1, false); /* client assertion spent at b */
	pending(&r[2], 22, 2, true);  /* fresh client, user assertion spent at b */
	pending(&r[3], 0, 0, false);  /* nothing to record */
	key_of(k, 21);
	assert_int_equal(store_oauth_jti_add(f->b, k, 5000, 1000), STORE_OK);
	key_of(k, 23);
	assert_int_equal(store_oauth_jti_add(f->b, k, 5000, 1000), STORE_OK);

	assert_int_equal(token_spend_commit(f->a, rp, 4, 1000), STORE_OK);
	assert_int_equal(r[0].status, 200);
	assert_non_null(r[0].access_token);
	assert_int_equal(r[1].status, 401);
	assert_string_equal(r[1].error, "invalid_client");
	assert_int_equal(r[1].reason, TOKEN_R_REPLAY);
	assert_null(r[1].access_token); /* the signed token never leaves */
	assert_int_equal(r[2].status, 400);
	assert_string_equal(r[2].error, "invalid_grant");
	assert_null(r[2].access_token);
	assert_int_equal(r[3].status, 200);
	assert_non_null(r[3].access_token);
	for (int i = 0; i < 4; i++)
		assert_int_equal(r[i].n_spend, 0);
	/* the fresh ones are spent pool-wide now, the refused one's client
	 * assertion too (an assertion is spent even when the grant fails) */
	key_of(k, 20);
	assert_int_equal(store_oauth_jti_add(f->b, k, 5000, 1001), STORE_CONFLICT);
	key_of(k, 22);
	assert_int_equal(store_oauth_jti_add(f->b, k, 5000, 1001), STORE_CONFLICT);
	for (int i = 0; i < 4; i++)
		token_result_free(&r[i]);
}

static void test_token_group_commit_fails_closed_when_the_store_cannot_write(void **state)
{
	struct fx *f = *state;
	struct token_result r[2];
	struct token_result *rp[2] = {&r[0], &r[1]};
	struct store *c;
	sqlite3 *db;
	char err[256];

	/* a connection that waits 10 ms for a lock another process holds */
	assert_int_equal(store_open(f->path, 0, 10, &c, err, sizeof(err)), STORE_OK);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	pending(&r[0], 30, 1, false);
	pending(&r[1], 0, 0, false);
	assert_int_not_equal(token_spend_commit(c, rp, 2, 1000), STORE_OK);
	assert_int_equal(r[0].status, 503);
	assert_string_equal(r[0].error, "temporarily_unavailable");
	assert_null(r[0].access_token);
	assert_int_equal(r[1].status, 200); /* it had nothing to record */
	assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	/* nothing of the failed batch was recorded */
	{
		uint8_t k[STORE_OAUTH_KEY_LEN];

		key_of(k, 30);
		assert_int_equal(store_oauth_jti_add(f->b, k, 5000, 1001), STORE_OK);
	}
	store_close(c);
	for (int i = 0; i < 2; i++)
		token_result_free(&r[i]);
}

static void test_jti_expired_row_is_taken_over_not_a_replay(void **state)
{
	struct fx *f = *state;
	uint8_t k[STORE_OAUTH_KEY_LEN];

	key_of(k, 3);
	assert_int_equal(store_oauth_jti_add(f->a, k, 1000, 900), STORE_OK);
	assert_int_equal(store_oauth_jti_add(f->b, k, 3000, 1001), STORE_OK);
	/* and it now lives until the new expiry */
	assert_int_equal(store_oauth_jti_add(f->a, k, 3000, 2999), STORE_CONFLICT);
}

/* a key as token.c builds it: exp big-endian, then digest bytes */
static void timed_key(uint8_t k[STORE_OAUTH_KEY_LEN], int64_t exp, int n)
{
	memset(k, 0xa5, STORE_OAUTH_KEY_LEN);
	for (int i = 0; i < 8; i++)
		k[i] = (uint8_t)((uint64_t)exp >> (56 - 8 * i));
	k[8] = (uint8_t)n;
	k[9] = (uint8_t)(n >> 8);
}

static void test_jti_purge_is_bounded_and_keeps_live_rows(void **state)
{
	struct fx *f = *state;
	uint8_t k[STORE_OAUTH_KEY_LEN];
	int n = -1;

	/* 150 expired (exp 100), 150 live (exp 10100); expires = exp + 60 */
	for (int i = 0; i < 300; i++) {
		int64_t exp = 100 + i % 2 * 10000;

		timed_key(k, exp, i);
		assert_int_equal(store_oauth_jti_add(f->a, k, exp + 60, 50), STORE_OK);
	}
	assert_int_equal(store_oauth_jti_purge(f->a, 5000, 5000 - 60, 100, &n), STORE_OK);
	assert_int_equal(n, 100);
	assert_int_equal(store_oauth_jti_purge(f->b, 5000, 5000 - 60, 100, &n), STORE_OK);
	assert_int_equal(n, 50);
	assert_int_equal(store_oauth_jti_purge(f->b, 5000, 5000 - 60, 100, &n), STORE_OK);
	assert_int_equal(n, 0);
	timed_key(k, 10100, 1); /* a live one: still a replay */
	assert_int_equal(store_oauth_jti_add(f->b, k, 10160, 5000), STORE_CONFLICT);
	assert_int_equal(store_oauth_jti_purge(f->a, 5000, 4940, 0, &n), STORE_INVALID);
	assert_int_equal(store_oauth_jti_purge(f->a, 5000, 4940, STORE_OAUTH_PURGE + 1, &n),
			 STORE_INVALID);
}

static void test_jti_purge_keeps_rows_within_the_clock_skew(void **state)
{
	struct fx *f = *state;
	uint8_t k[STORE_OAUTH_KEY_LEN];
	int n = -1;

	/* exp passed 30 s ago, but with 60 s of skew the assertion is still
	 * acceptable: its row must stay, whatever bound the caller passes */
	timed_key(k, 970, 1);
	assert_int_equal(store_oauth_jti_add(f->a, k, 1030, 900), STORE_OK);
	assert_int_equal(store_oauth_jti_purge(f->a, 1000, 1000, 256, &n), STORE_OK);
	assert_int_equal(n, 0);
	assert_int_equal(store_oauth_jti_add(f->b, k, 1030, 1000), STORE_CONFLICT);
	/* past exp + skew it goes */
	assert_int_equal(store_oauth_jti_purge(f->a, 1031, 1031 - 60, 256, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(store_oauth_jti_add(f->b, k, 1030, 1000), STORE_OK);
}

static void test_jti_table_has_no_second_index(void **state)
{
	struct fx *f = *state;
	sqlite3 *db;
	sqlite3_stmt *st;

	/* every insert would also update it: the purge walks the key */
	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(
	    sqlite3_prepare_v2(db,
			       "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
			       " AND tbl_name = 'oauth_jti' AND sql IS NOT NULL",
			       -1, &st, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static int64_t count_of(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void test_jti_migration_drops_old_layout_rows_and_the_index(void **state)
{
	struct fx *f = *state;
	uint8_t k[STORE_OAUTH_KEY_LEN];
	struct store *s;
	sqlite3 *db;
	char err[256], sql[256];

	/* a database as schema 8 left it: index on expires, rows keyed by a
	 * bare hash next to rows of the current layout */
	timed_key(k, 4000, 7);
	assert_int_equal(store_oauth_jti_add(f->a, k, 4060, 1000), STORE_OK);
	store_close(f->a);
	store_close(f->b);
	f->a = f->b = NULL;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	snprintf(sql, sizeof(sql),
		 "INSERT INTO oauth_jti VALUES (x'9f%062d', 4060);"
		 "CREATE INDEX oauth_jti_expires ON oauth_jti(expires);"
		 "PRAGMA user_version = 8;",
		 0);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(count_of(db, "SELECT count(*) FROM oauth_jti"), 2);
	sqlite3_close(db);

	assert_int_equal(store_open(f->path, 0, 1000, &s, err, sizeof(err)), STORE_OK);
	/* the current-layout row still catches its replay */
	assert_int_equal(store_oauth_jti_add(s, k, 4060, 1000), STORE_CONFLICT);
	store_close(s);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(count_of(db, "SELECT count(*) FROM oauth_jti"), 1);
	assert_int_equal(count_of(db, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
				      " AND name = 'oauth_jti_expires'"),
			 0);
	assert_true(count_of(db, "PRAGMA user_version") >= 9);
	sqlite3_close(db);
	assert_int_equal(store_open(f->path, 0, 1000, &f->a, err, sizeof(err)), STORE_OK);
	assert_int_equal(store_open(f->path, 0, 1000, &f->b, err, sizeof(err)), STORE_OK);
}

static void test_jti_null_key_is_invalid(void **state)
{
	struct fx *f = *state;

	assert_int_equal(store_oauth_jti_add(f->a, NULL, 2000, 1000), STORE_INVALID);
}

/* ---- revocations ---- */

static void test_revocation_at_one_server_is_seen_at_another_with_a_new_version(void **state)
{
	struct fx *f = *state;
	uint8_t k[STORE_OAUTH_KEY_LEN];
	int64_t v0, v1, v2;
	bool r;

	key_of(k, 7);
	assert_int_equal(store_oauth_revoked_version(f->b, &v0), STORE_OK);
	assert_int_equal(store_oauth_revoked(f->b, k, 1000, &r), STORE_OK);
	assert_false(r);
	assert_int_equal(store_oauth_revoke_add(f->a, k, 2000, 1000), STORE_OK);
	assert_int_equal(store_oauth_revoked_version(f->b, &v1), STORE_OK);
	assert_true(v1 > v0);
	assert_int_equal(store_oauth_revoked(f->b, k, 1000, &r), STORE_OK);
	assert_true(r);
	/* revoking again changes nothing, not even the version */
	assert_int_equal(store_oauth_revoke_add(f->b, k, 2000, 1100), STORE_OK);
	assert_int_equal(store_oauth_revoked_version(f->a, &v2), STORE_OK);
	assert_int_equal(v2, v1);
	/* after its expiry the token is dead anyway: the row no longer counts */
	assert_int_equal(store_oauth_revoked(f->b, k, 2001, &r), STORE_OK);
	assert_false(r);
}

static void test_revoked_purge_drops_only_expired_rows(void **state)
{
	struct fx *f = *state;
	uint8_t k[STORE_OAUTH_KEY_LEN];
	int n;
	bool r;

	key_of(k, 1);
	assert_int_equal(store_oauth_revoke_add(f->a, k, 100, 50), STORE_OK);
	key_of(k, 2);
	assert_int_equal(store_oauth_revoke_add(f->a, k, 9000, 50), STORE_OK);
	assert_int_equal(store_oauth_revoked_purge(f->b, 5000, 10, &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(store_oauth_revoked(f->a, k, 5000, &r), STORE_OK);
	assert_true(r);
}

static void test_revocation_store_error_says_revoked(void **state)
{
	struct fx *f = *state;
	uint8_t k[STORE_OAUTH_KEY_LEN];
	bool r = false;

	key_of(k, 9);
	/* a bad argument is an error and the answer stays "revoked" */
	assert_int_equal(store_oauth_revoked(f->a, NULL, 1000, &r), STORE_INVALID);
	assert_true(r);
}

/* ---- consent ---- */

struct list_ctx {
	int n;
	char seen[4][STORE_URI_MAX];
};

static int list_cb(void *ctx, const struct store_oauth_consent *c)
{
	struct list_ctx *l = ctx;

	if (l->n < 4)
		snprintf(l->seen[l->n], sizeof(l->seen[0]), "%s|%s|%s", c->partner, c->uri,
			 c->granted_by);
	l->n++;
	return 0;
}

static void test_consent_is_per_partner_and_user(void **state)
{
	struct fx *f = *state;
	bool yes;

	assert_int_equal(store_oauth_consent_has(f->b, f->partner, f->alice, &yes), STORE_OK);
	assert_false(yes);
	assert_int_equal(store_oauth_consent_grant(f->a, f->partner, f->alice, 100, "user:digest"),
			 STORE_OK);
	assert_int_equal(store_oauth_consent_has(f->b, f->partner, f->alice, &yes), STORE_OK);
	assert_true(yes);
	assert_int_equal(store_oauth_consent_has(f->b, f->partner2, f->alice, &yes), STORE_OK);
	assert_false(yes);
	assert_int_equal(store_oauth_consent_has(f->b, f->partner, f->bob, &yes), STORE_OK);
	assert_false(yes);
	/* granting again renews it */
	assert_int_equal(
	    store_oauth_consent_grant(f->b, f->partner, f->alice, 200, "rtcauthctl:root"),
	    STORE_OK);
	assert_int_equal(store_oauth_consent_revoke(f->a, f->partner, f->alice), STORE_OK);
	assert_int_equal(store_oauth_consent_has(f->b, f->partner, f->alice, &yes), STORE_OK);
	assert_false(yes);
	assert_int_equal(store_oauth_consent_revoke(f->a, f->partner, f->alice), STORE_NOTFOUND);
}

static void test_consent_for_unknown_partner_or_user_is_notfound(void **state)
{
	struct fx *f = *state;

	assert_int_equal(store_oauth_consent_grant(f->a, 9999, f->alice, 1, "x"), STORE_NOTFOUND);
	assert_int_equal(store_oauth_consent_grant(f->a, f->partner, 9999, 1, "x"), STORE_NOTFOUND);
	assert_int_equal(store_oauth_consent_grant(f->a, 0, f->alice, 1, "x"), STORE_INVALID);
	char big[STORE_CONSENT_BY_MAX + 8];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(store_oauth_consent_grant(f->a, f->partner, f->alice, 1, big),
			 STORE_INVALID);
}

static void test_consent_lists_by_partner_or_by_user(void **state)
{
	struct fx *f = *state;
	struct list_ctx l;

	assert_int_equal(store_oauth_consent_grant(f->a, f->partner, f->bob, 1, "b"), STORE_OK);
	assert_int_equal(store_oauth_consent_grant(f->a, f->partner, f->alice, 1, "a"), STORE_OK);
	assert_int_equal(store_oauth_consent_grant(f->a, f->partner2, f->alice, 1, "c"), STORE_OK);
	memset(&l, 0, sizeof(l));
	assert_int_equal(store_oauth_consent_list(f->b, f->partner, 0, list_cb, &l), STORE_OK);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.seen[0], "mail|sip:alice@example.test|a");
	assert_string_equal(l.seen[1], "mail|sip:bob@example.test|b");
	memset(&l, 0, sizeof(l));
	assert_int_equal(store_oauth_consent_list(f->b, 0, f->alice, list_cb, &l), STORE_OK);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.seen[0], "docs|sip:alice@example.test|c");
	assert_int_equal(store_oauth_consent_list(f->b, f->partner, f->alice, list_cb, &l),
			 STORE_INVALID);
	assert_int_equal(store_oauth_consent_list(f->b, 0, 0, list_cb, &l), STORE_INVALID);
}

static void test_consent_goes_with_its_user_and_partner(void **state)
{
	struct fx *f = *state;
	bool yes;

	assert_int_equal(store_oauth_consent_grant(f->a, f->partner, f->alice, 1, "a"), STORE_OK);
	assert_int_equal(store_user_del(f->a, "sip:alice@example.test"), STORE_OK);
	f->alice = add_user(f->a, "sip:alice@example.test");
	/* a new alice is another user: the old one's consent is gone */
	assert_int_equal(store_oauth_consent_has(f->b, f->partner, f->alice, &yes), STORE_OK);
	assert_false(yes);
	assert_int_equal(store_oauth_consent_grant(f->a, f->partner2, f->bob, 1, "a"), STORE_OK);
	assert_int_equal(store_partner_del(f->a, "docs"), STORE_OK);
	assert_int_equal(store_oauth_consent_has(f->b, f->partner2, f->bob, &yes), STORE_OK);
	assert_false(yes);
}

/* ---- PKI names ---- */

static void test_partner_tls_names_roundtrip_and_null_keeps(void **state)
{
	struct fx *f = *state;
	char subj[STORE_TLS_SUBJECT_MAX], san[STORE_TLS_SAN_MAX];

	assert_int_equal(store_partner_tls_get(f->b, f->partner, subj, san), STORE_OK);
	assert_string_equal(subj, "");
	assert_string_equal(san, "");
	assert_int_equal(store_partner_tls_set(f->a, "mail", "CN=mail,O=Example", NULL), STORE_OK);
	assert_int_equal(store_partner_tls_set(f->a, "mail", NULL, "dns:mail.example.test"),
			 STORE_OK);
	assert_int_equal(store_partner_tls_get(f->b, f->partner, subj, san), STORE_OK);
	assert_string_equal(subj, "CN=mail,O=Example");
	assert_string_equal(san, "dns:mail.example.test");
	assert_int_equal(store_partner_tls_set(f->a, "mail", "", NULL), STORE_OK);
	assert_int_equal(store_partner_tls_get(f->b, f->partner, subj, san), STORE_OK);
	assert_string_equal(subj, "");
	assert_string_equal(san, "dns:mail.example.test");
	assert_int_equal(store_partner_tls_set(f->a, "nosuch", "CN=x", NULL), STORE_NOTFOUND);
	assert_int_equal(store_partner_tls_get(f->a, 9999, subj, san), STORE_NOTFOUND);
	{
		char big[STORE_TLS_SUBJECT_MAX + 4];

		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		assert_int_equal(store_partner_tls_set(f->a, "mail", big, NULL), STORE_INVALID);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	    T(test_jti_used_at_one_server_is_a_replay_at_another),
	    T(test_jti_expired_row_is_taken_over_not_a_replay),
	    T(test_jti_batch_records_all_and_finds_replays),
	    T(test_token_group_commit_refuses_what_the_pool_spent),
	    T(test_token_group_commit_fails_closed_when_the_store_cannot_write),
	    T(test_jti_purge_is_bounded_and_keeps_live_rows),
	    T(test_jti_purge_keeps_rows_within_the_clock_skew),
	    T(test_jti_table_has_no_second_index),
	    T(test_jti_migration_drops_old_layout_rows_and_the_index),
	    T(test_jti_null_key_is_invalid),
	    T(test_revocation_at_one_server_is_seen_at_another_with_a_new_version),
	    T(test_revoked_purge_drops_only_expired_rows),
	    T(test_revocation_store_error_says_revoked),
	    T(test_consent_is_per_partner_and_user),
	    T(test_consent_for_unknown_partner_or_user_is_notfound),
	    T(test_consent_lists_by_partner_or_by_user),
	    T(test_consent_goes_with_its_user_and_partner),
	    T(test_partner_tls_names_roundtrip_and_null_keeps),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
