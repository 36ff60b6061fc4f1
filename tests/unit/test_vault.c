/*
 * The vault's password half: vault_set_password derives and stores every
 * Digest key; vault_digest_verify checks a response against them. Expected
 * responses are computed here independently (OpenSSL EVP, RFC 7616 §3.4.1
 * formulas spelled out), not with the code under test.
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sqlite3.h>

#include "auth/digest.h"
#include "store/store.h"
#include "vault/vault.h"

#define PASSWORD "Circle of Life"

struct fx {
	char dir[64];
	char path[128];
	struct store *s;
	struct store_user alice;
};

static void rm_db(const char *path)
{
	char p[200];

	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256], user[STORE_URI_MAX], domain[STORE_URI_MAX];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/rtc-vault-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/store.db", f->dir);
	assert_int_equal(store_open(f->path, STORE_CREATE, 50, &f->s, err, sizeof(err)), STORE_OK);
	assert_int_equal(store_uri_normalise("sip:alice@example.test", f->alice.uri, user, domain),
			 0);
	f->alice.enabled = true;
	assert_int_equal(store_user_add(f->s, &f->alice), STORE_OK);
	assert_int_equal(vault_set_password(f->s, &f->alice, PASSWORD, strlen(PASSWORD)), STORE_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	store_close(f->s);
	rm_db(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* ---- an independent Digest computation ---- */

static const char *evp_name(enum digest_alg alg)
{
	switch (alg) {
	case DIGEST_MD5:
		return "MD5";
	case DIGEST_SHA256:
		return "SHA256";
	default:
		return "SHA512-256";
	}
}

/* hex(H(s)) into out */
static void h_hex(enum digest_alg alg, const char *s, char *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	const EVP_MD *m = EVP_get_digestbyname(evp_name(alg));

	assert_non_null(m);
	assert_int_equal(EVP_Digest(s, strlen(s), md, &len, m, NULL), 1);
	for (unsigned int i = 0; i < len; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

/* RFC 7616 §3.4.1, qop=auth: KD(H(user:realm:pw), nonce:nc:cnonce:qop:H(method:uri)) */
static void expected_response(enum digest_alg alg, const char *user, const char *realm,
			      const char *pw, const char *method, const char *uri,
			      const char *nonce, const char *nc, const char *cnonce, char *out)
{
	char buf[1024], ha1[129], ha2[129];

	snprintf(buf, sizeof(buf), "%s:%s:%s", user, realm, pw);
	h_hex(alg, buf, ha1);
	snprintf(buf, sizeof(buf), "%s:%s", method, uri);
	h_hex(alg, buf, ha2);
	snprintf(buf, sizeof(buf), "%s:%s:%s:%s:auth:%s", ha1, nonce, nc, cnonce, ha2);
	h_hex(alg, buf, out);
}

struct req {
	struct digest_creds c;
	char response[129];
};

/* Credentials as the parser would hand them over, with a response computed
 * from password pw. */
static void make_req(struct req *r, enum digest_alg alg, const char *user, const char *realm,
		     const char *pw)
{
	static const char nonce[] = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
	static const char cnonce[] = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

	memset(r, 0, sizeof(*r));
	expected_response(alg, user, realm, pw, "REGISTER", "sip:example.test", nonce, "00000001",
			  cnonce, r->response);
	r->c.username = str_cstr(user);
	r->c.realm = str_cstr(realm);
	r->c.nonce = STR_LIT(nonce);
	r->c.uri = STR_LIT("sip:example.test");
	r->c.response = str_cstr(r->response);
	r->c.algorithm = str_cstr(digest_alg_name(alg));
	r->c.cnonce = STR_LIT(cnonce);
	r->c.qop_str = STR_LIT("auth");
	r->c.nc_str = STR_LIT("00000001");
	r->c.alg = alg;
	r->c.qop = DIGEST_QOP_AUTH;
	r->c.nc = 1;
}

/* Every check below is about the store path: start each from an empty
 * lookup cache (test_vault_cache_* cover the cache itself). */
static struct verdict verify(struct fx *f, const struct req *r, struct store_user *u)
{
	vault_cache_flush();
	return vault_digest_verify(f->s, &r->c, STR_LIT("REGISTER"), STR_NULL,
				   STR_LIT("example.test"), u);
}

static void assert_permfail(struct verdict v, const char *reason)
{
	assert_int_equal(v.kind, VERDICT_PERMFAIL);
	assert_string_equal(v.reason, reason);
}

static struct verdict verify_cached(struct fx *f, const struct req *r)
{
	return vault_digest_verify(f->s, &r->c, STR_LIT("REGISTER"), STR_NULL,
				   STR_LIT("example.test"), NULL);
}

/* ---- tests ---- */

static void test_vault_mac_is_hmac_sha256_of_purpose_nul_data(void **state)
{
	struct fx *f = *state;
	char path[300], err[256];
	uint8_t secret[VAULT_SECRET_LEN], got[32], want[32], msg[64];
	unsigned int wlen = 0;
	size_t mlen;
	FILE *fp;

	/* a known pool secret, and the reference HMAC from OpenSSL's one-shot API */
	for (size_t i = 0; i < sizeof(secret); i++)
		secret[i] = (uint8_t)(i * 7 + 1);
	snprintf(path, sizeof(path), "%s/pool.secret", f->dir);
	fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(secret, 1, sizeof(secret), fp), sizeof(secret));
	fclose(fp);
	chmod(path, 0600);
	assert_int_equal(vault_init(f->dir, err, sizeof(err)), 0);
	memcpy(msg, "digest-nonce", 12);
	msg[12] = 0;
	memcpy(msg + 13, "0123456789abcdef", 16);
	mlen = 29;
	assert_non_null(HMAC(EVP_sha256(), secret, sizeof(secret), msg, mlen, want, &wlen));
	for (int round = 0; round < 3; round++) { /* the per-thread states are reused */
		assert_int_equal(vault_mac("digest-nonce", "0123456789abcdef", 16, got), 0);
		assert_memory_equal(got, want, 32);
	}
	assert_int_equal(vault_mac("digest-opaque", "0123456789abcdef", 16, got), 0);
	assert_memory_not_equal(got, want, 32);
	vault_shutdown();
	assert_int_equal(vault_mac("digest-nonce", "x", 1, got), -1);
	unlink(path);
}

static void test_vault_cache_keeps_a_disabled_user_until_flushed(void **state)
{
	struct fx *f = *state;
	struct req r;

	vault_cache_check_interval(3600 * 1000); /* only flushes count here */
	make_req(&r, DIGEST_SHA256, "alice", "example.test", PASSWORD);
	vault_cache_flush();
	assert_int_equal(verify_cached(f, &r).kind, VERDICT_OK);
	assert_int_equal(store_user_set_enabled(f->s, f->alice.uri, false), STORE_OK);
	/* between two version polls the cached lookup answers... */
	assert_int_equal(verify_cached(f, &r).kind, VERDICT_OK);
	/* ...until rtcauthctl's flush reaches the daemon */
	vault_cache_flush();
	assert_permfail(verify_cached(f, &r), "disabled");
	vault_cache_check_interval(1000);
}

/* A change made through another connection (another rtcauthctl, another
 * server of a pool) with no flush at all is seen at the next version poll. */
static void test_vault_cache_sees_changes_from_elsewhere_at_the_next_poll(void **state)
{
	struct fx *f = *state;
	struct store *other;
	struct req r;
	char err[256];

	make_req(&r, DIGEST_MD5, "alice", "example.test", PASSWORD);
	vault_cache_check_interval(0); /* poll on every lookup */
	vault_cache_flush();
	assert_int_equal(verify_cached(f, &r).kind, VERDICT_OK);
	assert_int_equal(store_open(f->path, 0, 50, &other, err, sizeof(err)), STORE_OK);
	assert_int_equal(store_user_set_enabled(other, f->alice.uri, false), STORE_OK);
	assert_permfail(verify_cached(f, &r), "disabled");
	assert_int_equal(store_user_set_enabled(other, f->alice.uri, true), STORE_OK);
	assert_int_equal(verify_cached(f, &r).kind, VERDICT_OK);
	/* a new password (keys replaced, no users row touched) counts too */
	assert_int_equal(vault_set_password(other, &f->alice, "new-pw", 6), STORE_OK);
	assert_permfail(verify_cached(f, &r), "bad_response");
	store_close(other);
	vault_cache_check_interval(1000);
}

/* The cache holds 10,000 users at once (the two-choice sets): after one
 * pass, a second pass is answered without the store (which is broken in
 * between, so every lookup that still reached it would fail). */
static void test_vault_cache_holds_ten_thousand_users(void **state)
{
	enum { N = 10000 };
	struct fx *f = *state;
	static struct req r[N];
	static char names[N][16];
	char buf[128], ha1[33];
	sqlite3 *db;
	int ok = 0;

	vault_cache_check_interval(3600 * 1000);
	assert_int_equal(store_begin(f->s), STORE_OK);
	for (int i = 0; i < N; i++) {
		struct store_user u;
		struct store_cred c = {.mech = "digest-md5", .variant = "user", .key_len = 16};

		memset(&u, 0, sizeof(u));
		snprintf(names[i], sizeof(names[i]), "u%d", i);
		snprintf(buf, sizeof(buf), "sip:%s@example.test", names[i]);
		assert_int_equal(store_uri_normalise(buf, u.uri, u.user, u.domain), STORE_OK);
		u.enabled = true;
		u.has_password = true;
		assert_int_equal(store_user_add(f->s, &u), STORE_OK);
		snprintf(buf, sizeof(buf), "%s:example.test:pw", names[i]);
		h_hex(DIGEST_MD5, buf, ha1);
		for (int k = 0; k < 16; k++)
			sscanf(ha1 + 2 * k, "%2hhx", &c.key[k]);
		assert_int_equal(store_cred_replace(f->s, u.id, &c, 1), STORE_OK);
		make_req(&r[i], DIGEST_MD5, names[i], "example.test", "pw");
	}
	assert_int_equal(store_commit(f->s), STORE_OK);
	vault_cache_flush();
	for (int i = 0; i < N; i++)
		assert_int_equal(verify_cached(f, &r[i]).kind, VERDICT_OK);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(db, "ALTER TABLE users RENAME TO users_gone", NULL, NULL, NULL),
	    SQLITE_OK);
	for (int i = 0; i < N; i++)
		ok += verify_cached(f, &r[i]).kind == VERDICT_OK;
	assert_int_equal(
	    sqlite3_exec(db, "ALTER TABLE users_gone RENAME TO users", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	print_message("cache hits on the second pass: %d of %d\n", ok, N);
	assert_true(ok >= N * 99 / 100);
	vault_cache_check_interval(1000);
}

/* When the version cannot be read, cached entries keep answering for ten
 * polls after the last good read (a short hiccup does not sign everyone
 * out), then the cache is not trusted: the store answers, and an outage is
 * a temporary failure even for a user whose key is cached. */
static void test_vault_cache_is_bypassed_when_the_version_stays_unreadable(void **state)
{
	struct fx *f = *state;
	sqlite3 *db;
	struct req r;

	make_req(&r, DIGEST_MD5, "alice", "example.test", PASSWORD);
	vault_cache_check_interval(50); /* grace: 500 ms */
	vault_cache_flush();
	assert_int_equal(verify_cached(f, &r).kind, VERDICT_OK);
	/* alice disabled, then the version made unreadable under the open
	 * handle (see the outage test below) */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "UPDATE users SET enabled = 0;"
				      "ALTER TABLE cred_version RENAME TO cred_version_gone",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	usleep(80 * 1000); /* a poll is due and fails: still within the grace */
	assert_int_equal(verify_cached(f, &r).kind, VERDICT_OK);
	usleep(600 * 1000); /* past the grace: the store answers */
	assert_permfail(verify_cached(f, &r), "disabled");
	assert_int_equal(
	    sqlite3_exec(db, "ALTER TABLE users RENAME TO users_gone", NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(verify_cached(f, &r).kind, VERDICT_TEMPFAIL);
	assert_int_equal(sqlite3_exec(db,
				      "ALTER TABLE users_gone RENAME TO users;"
				      "ALTER TABLE cred_version_gone RENAME TO cred_version;"
				      "UPDATE users SET enabled = 1",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(verify_cached(f, &r).kind, VERDICT_OK);
	vault_cache_check_interval(1000);
}

static void test_vault_cache_remembers_unknown_users_too(void **state)
{
	struct fx *f = *state;
	struct store_user bob;
	struct req r;

	vault_cache_check_interval(3600 * 1000); /* only flushes count here */
	make_req(&r, DIGEST_MD5, "bob", "example.test", "pw-bob");
	vault_cache_flush();
	assert_permfail(verify_cached(f, &r), "unknown_user");
	memset(&bob, 0, sizeof(bob));
	assert_int_equal(store_uri_normalise("sip:bob@example.test", bob.uri, bob.user, bob.domain),
			 STORE_OK);
	bob.enabled = true;
	bob.has_password = true;
	assert_int_equal(store_user_add(f->s, &bob), STORE_OK);
	assert_int_equal(vault_set_password(f->s, &bob, "pw-bob", 6), STORE_OK);
	assert_permfail(verify_cached(f, &r), "unknown_user");
	vault_cache_flush();
	assert_int_equal(verify_cached(f, &r).kind, VERDICT_OK);
	vault_cache_check_interval(1000);
}

static void test_vault_verifies_every_alg_and_both_username_forms(void **state)
{
	static const char *const names[] = {"alice", "alice@example.test"};
	struct fx *f = *state;
	struct store_user u;
	struct req r;
	struct verdict v;

	for (int alg = 0; alg < DIGEST_ALG_COUNT; alg++) {
		for (int i = 0; i < 2; i++) {
			make_req(&r, (enum digest_alg)alg, names[i], "example.test", PASSWORD);
			memset(&u, 0, sizeof(u));
			v = verify(f, &r, &u);
			if (v.kind != VERDICT_OK)
				fail_msg("alg %s user %s: %s",
					 digest_alg_name((enum digest_alg)alg), names[i], v.reason);
			assert_string_equal(v.reason, "ok");
			assert_int_equal(u.id, f->alice.id);
			assert_string_equal(u.uri, "sip:alice@example.test");
		}
	}
}

static void test_vault_verifies_the_domain_backslash_user_form(void **state)
{
	struct fx *f = *state;
	struct store_user u;
	struct req r;

	vault_netbios_domain("EXAMPLE");
	assert_int_equal(vault_set_password(f->s, &f->alice, PASSWORD, strlen(PASSWORD)), 0);
	vault_netbios_domain(NULL);
	for (int alg = 0; alg < DIGEST_ALG_COUNT; alg++) {
		/* H1 over EXAMPLE\alice; on the wire the backslash is escaped */
		make_req(&r, (enum digest_alg)alg, "EXAMPLE\\alice", "example.test", PASSWORD);
		r.c.username = STR_LIT("EXAMPLE\\\\alice");
		memset(&u, 0, sizeof(u));
		struct verdict v = verify(f, &r, &u);
		if (v.kind != VERDICT_OK)
			fail_msg("alg %s: %s", digest_alg_name((enum digest_alg)alg), v.reason);
		assert_string_equal(u.uri, "sip:alice@example.test");
		/* another domain's name does not match the stored key */
		make_req(&r, (enum digest_alg)alg, "OTHER\\alice", "example.test", PASSWORD);
		r.c.username = STR_LIT("OTHER\\\\alice");
		assert_permfail(verify(f, &r, NULL), "bad_response");
		/* without the escape the name is not that form */
		make_req(&r, (enum digest_alg)alg, "EXAMPLE\\alice", "example.test", PASSWORD);
		r.c.username = STR_LIT("EXAMPLE\\alice");
		assert_int_equal(verify(f, &r, NULL).kind, VERDICT_PERMFAIL);
	}
}

static void test_vault_matches_rfc7616_sha256_example_formula(void **state)
{
	/* RFC 7616 §3.9.1: Mufasa / http-auth@example.org / "Circle of Life",
	 * GET /dir/index.html -> this SHA-256 response. Checks that the test's
	 * independent computation is itself right. */
	char out[129];

	expected_response(DIGEST_SHA256, "Mufasa", "http-auth@example.org", "Circle of Life", "GET",
			  "/dir/index.html", "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
			  "00000001", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", out);
	assert_string_equal(out,
			    "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
	expected_response(DIGEST_MD5, "Mufasa", "http-auth@example.org", "Circle of Life", "GET",
			  "/dir/index.html", "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
			  "00000001", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", out);
	assert_string_equal(out, "8ca523f5e9506fed4657c9700eebdbec");
}

static void test_vault_accepts_uppercase_hex_response(void **state)
{
	struct fx *f = *state;
	struct req r;

	make_req(&r, DIGEST_SHA256, "alice", "example.test", PASSWORD);
	for (char *p = r.response; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	assert_int_equal(verify(f, &r, NULL).kind, VERDICT_OK);
}

static void test_vault_wrong_password_is_bad_response(void **state)
{
	struct fx *f = *state;
	struct store_user u;
	struct req r;

	for (int alg = 0; alg < DIGEST_ALG_COUNT; alg++) {
		make_req(&r, (enum digest_alg)alg, "alice", "example.test", "circle of life");
		u.id = -7;
		assert_permfail(verify(f, &r, &u), "bad_response");
		assert_int_equal(u.id, -7); /* *user untouched on failure */
	}
	/* truncated and overlong responses */
	make_req(&r, DIGEST_MD5, "alice", "example.test", PASSWORD);
	r.c.response.len--;
	assert_permfail(verify(f, &r, NULL), "bad_response");
	r.c.response = STR_LIT("");
	assert_permfail(verify(f, &r, NULL), "bad_response");
	make_req(&r, DIGEST_MD5, "alice", "example.test", PASSWORD);
	r.response[32] = '0';
	r.c.response.len = 33;
	assert_permfail(verify(f, &r, NULL), "bad_response");
}

static void test_vault_response_of_other_username_form_does_not_match(void **state)
{
	struct fx *f = *state;
	struct req r;

	/* HA1 computed over "alice" but sent as "alice@example.test" */
	make_req(&r, DIGEST_MD5, "alice", "example.test", PASSWORD);
	r.c.username = STR_LIT("alice@example.test");
	assert_permfail(verify(f, &r, NULL), "bad_response");
}

static void test_vault_unknown_user_is_unknown_user(void **state)
{
	struct fx *f = *state;
	struct req r;

	/*
	 * The unknown-user path computes a full response against a fixed dummy
	 * HA1 and runs the same constant-time comparison as a known user
	 * (vault.c: one digest_response call after the lookup switch, on every
	 * path); the verdict is fixed before that work. No timing assertion.
	 */
	make_req(&r, DIGEST_SHA256, "mallory", "example.test", PASSWORD);
	assert_permfail(verify(f, &r, NULL), "unknown_user");
	make_req(&r, DIGEST_SHA256, "alice@other.test", "example.test", PASSWORD);
	assert_permfail(verify(f, &r, NULL), "unknown_user");
	make_req(&r, DIGEST_SHA256, "Alice", "example.test", PASSWORD);
	assert_permfail(verify(f, &r, NULL), "unknown_user");
}

static void test_vault_user_without_password_is_no_password(void **state)
{
	struct fx *f = *state;
	struct store_user bob;
	char user[STORE_URI_MAX], domain[STORE_URI_MAX];
	struct req r;

	memset(&bob, 0, sizeof(bob));
	assert_int_equal(store_uri_normalise("sip:bob@example.test", bob.uri, user, domain), 0);
	bob.enabled = true;
	assert_int_equal(store_user_add(f->s, &bob), STORE_OK);
	make_req(&r, DIGEST_MD5, "bob", "example.test", "");
	assert_permfail(verify(f, &r, NULL), "no_password");
}

static void test_vault_disabled_user_is_disabled_even_with_right_password(void **state)
{
	struct fx *f = *state;
	struct req r;

	assert_int_equal(store_user_set_enabled(f->s, f->alice.uri, false), STORE_OK);
	make_req(&r, DIGEST_SHA512_256, "alice", "example.test", PASSWORD);
	assert_permfail(verify(f, &r, NULL), "disabled");
	make_req(&r, DIGEST_SHA512_256, "alice", "example.test", "wrong");
	assert_permfail(verify(f, &r, NULL), "disabled");
}

static void test_vault_wrong_realm_is_wrong_realm(void **state)
{
	struct fx *f = *state;
	struct req r;

	make_req(&r, DIGEST_MD5, "alice", "evil.test", PASSWORD);
	assert_permfail(verify(f, &r, NULL), "wrong_realm");
}

static void test_vault_new_password_replaces_old_keys(void **state)
{
	struct fx *f = *state;
	struct store_user u;
	struct req r;

	assert_int_equal(vault_set_password(f->s, &f->alice, "n3w", 3), STORE_OK);
	make_req(&r, DIGEST_MD5, "alice@example.test", "example.test", PASSWORD);
	assert_permfail(verify(f, &r, NULL), "bad_response");
	make_req(&r, DIGEST_MD5, "alice@example.test", "example.test", "n3w");
	assert_int_equal(verify(f, &r, NULL).kind, VERDICT_OK);
	assert_int_equal(store_user_get(f->s, f->alice.uri, &u), STORE_OK);
	assert_true(u.has_password);
	assert_true(u.password_changed > 0);
}

static void test_vault_set_password_stores_six_keys_of_right_sizes(void **state)
{
	struct fx *f = *state;
	sqlite3 *db;
	sqlite3_stmt *st;
	int rows = 0;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT mech, variant, length(key) FROM credentials"
					    " ORDER BY mech, variant",
					    -1, &st, NULL),
			 SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *mech = (const char *)sqlite3_column_text(st, 0);
		int len = sqlite3_column_int(st, 2);
		assert_int_equal(len, strcmp(mech, "digest-md5") == 0 ? 16 : 32);
		rows++;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	assert_int_equal(rows, 6);
}

/* vault_digest_key (the TURN long-term keys): the stored HA1 of the asked
 * algorithm for either user-name form, the same from the cache as from the
 * store; unknown names NOTFOUND without a user, a user without a password
 * NOTFOUND with one; bad arguments INVALID. */
static void test_vault_digest_key_is_the_stored_ha1_for_both_username_forms(void **state)
{
	static const struct {
		enum digest_alg alg;
		const char *name;
		size_t len;
	} cases[] = {
	    {DIGEST_MD5, "alice", 16},
	    {DIGEST_SHA256, "alice", 32},
	    {DIGEST_MD5, "alice@example.test", 16},
	    {DIGEST_SHA512_256, "alice@example.test", 32},
	};
	struct fx *f = *state;
	struct store_user u, bob;
	struct store_cred key;
	char want[2 * 32 + 1], got[2 * 32 + 1], in[256], user[STORE_URI_MAX], domain[STORE_URI_MAX];

	vault_cache_flush();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(in, sizeof(in), "%s:example.test:%s", cases[i].name, PASSWORD);
		h_hex(cases[i].alg, in, want);
		for (int round = 0; round < 2; round++) { /* the store, then the cache */
			memset(&u, 0, sizeof(u));
			memset(&key, 0, sizeof(key));
			assert_int_equal(vault_digest_key(f->s, str_cstr(cases[i].name),
							  STR_LIT("example.test"), cases[i].alg, &u,
							  &key),
					 STORE_OK);
			assert_int_equal(key.key_len, cases[i].len);
			for (size_t k = 0; k < key.key_len; k++)
				sprintf(got + 2 * k, "%02x", key.key[k]);
			assert_string_equal(got, want);
			assert_string_equal(u.uri, f->alice.uri);
			assert_true(u.enabled);
		}
	}
	/* the other realm's key is not alice's */
	memset(&u, 0, sizeof(u));
	assert_int_equal(
	    vault_digest_key(f->s, STR_LIT("alice"), STR_LIT("other.test"), DIGEST_MD5, &u, &key),
	    STORE_NOTFOUND);
	memset(&u, 0, sizeof(u));
	assert_int_equal(vault_digest_key(f->s, STR_LIT("nobody"), STR_LIT("example.test"),
					  DIGEST_MD5, &u, &key),
			 STORE_NOTFOUND);
	assert_int_equal(u.id, 0);
	memset(&bob, 0, sizeof(bob));
	assert_int_equal(store_uri_normalise("sip:bob@example.test", bob.uri, user, domain), 0);
	bob.enabled = true;
	assert_int_equal(store_user_add(f->s, &bob), STORE_OK);
	vault_cache_flush();
	memset(&u, 0, sizeof(u));
	assert_int_equal(
	    vault_digest_key(f->s, STR_LIT("bob"), STR_LIT("example.test"), DIGEST_MD5, &u, &key),
	    STORE_NOTFOUND);
	assert_true(u.id > 0);
	assert_int_equal(vault_digest_key(f->s, STR_LIT("alice"), STR_LIT("example.test"),
					  DIGEST_ALG_COUNT, &u, &key),
			 STORE_INVALID);
	assert_int_equal(
	    vault_digest_key(NULL, STR_LIT("alice"), STR_LIT("example.test"), DIGEST_MD5, &u, &key),
	    STORE_INVALID);
	memset(&key, 0, sizeof(key));
}

static void test_vault_set_password_on_missing_user_fails(void **state)
{
	struct fx *f = *state;
	struct store_user ghost = f->alice;

	ghost.id += 1000;
	assert_int_equal(vault_set_password(f->s, &ghost, "x", 1), STORE_NOTFOUND);
	ghost.user[0] = '\0';
	assert_int_equal(vault_set_password(f->s, &ghost, "x", 1), STORE_INVALID);
}

static void test_vault_store_outage_is_tempfail_not_unknown_user(void **state)
{
	struct fx *f = *state;
	struct store_user u;
	struct verdict v;
	sqlite3 *db;
	struct req r;

	/*
	 * A second connection holding BEGIN EXCLUSIVE does not stop WAL
	 * readers, so break the store for reads: the users table vanishes
	 * under the open handle. Any store error other than "not found" must
	 * be TEMPFAIL (try later), never "unknown user".
	 */
	make_req(&r, DIGEST_MD5, "alice", "example.test", PASSWORD);
	assert_int_equal(verify(f, &r, NULL).kind, VERDICT_OK); /* statement cached */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(db, "ALTER TABLE users RENAME TO users_gone", NULL, NULL, NULL),
	    SQLITE_OK);
	u.id = -7;
	v = verify(f, &r, &u);
	assert_int_equal(v.kind, VERDICT_TEMPFAIL);
	assert_string_equal(v.reason, "store_unavailable");
	assert_int_equal(u.id, -7);
	assert_int_equal(
	    sqlite3_exec(db, "ALTER TABLE users_gone RENAME TO users", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(verify(f, &r, NULL).kind, VERDICT_OK);
}

static void test_vault_set_password_on_locked_store_is_unavailable(void **state)
{
	struct fx *f = *state;
	sqlite3 *db;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(vault_set_password(f->s, &f->alice, "x", 1), STORE_UNAVAILABLE);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
}

/* ---- vault_user_get: the user-record cache ---- */

/* bob, enabled, added through s */
static struct store_user add_bob(struct store *s)
{
	struct store_user bob;

	memset(&bob, 0, sizeof(bob));
	assert_int_equal(store_uri_normalise("sip:bob@example.test", bob.uri, bob.user, bob.domain),
			 STORE_OK);
	bob.enabled = true;
	snprintf(bob.display_name, sizeof(bob.display_name), "Bob");
	assert_int_equal(store_user_add(s, &bob), STORE_OK);
	return bob;
}

static void test_vault_user_get_hit_is_the_stores_record(void **state)
{
	struct fx *f = *state;
	struct store_user want, got, again;

	vault_cache_check_interval(3600 * 1000);
	vault_cache_flush();
	assert_int_equal(store_user_set_display_name(f->s, f->alice.uri, "Alice A."), STORE_OK);
	assert_int_equal(store_user_get(f->s, "sip:alice@EXAMPLE.test", &want), STORE_OK);
	memset(&got, 0xa5, sizeof(got));
	assert_int_equal(vault_user_get(f->s, "sip:alice@EXAMPLE.test", &got), STORE_OK); /* miss */
	assert_memory_equal(&got, &want, sizeof(want));
	memset(&again, 0x5a, sizeof(again));
	assert_int_equal(vault_user_get(f->s, "sip:alice@EXAMPLE.test", &again),
			 STORE_OK); /* hit */
	assert_memory_equal(&again, &want, sizeof(want));
	assert_string_equal(again.uri, "sip:alice@example.test");
	assert_string_equal(again.display_name, "Alice A.");
	assert_true(again.enabled && again.has_password);
	/* another spelling of the same user is its own entry, same record */
	assert_int_equal(vault_user_get(f->s, "alice@example.test", &got), STORE_OK);
	assert_memory_equal(&got, &want, sizeof(want));
	vault_cache_check_interval(1000);
}

/* The hit above is really from the cache: with the users table gone, a
 * cached user still answers, an uncached one is an outage. */
static void test_vault_user_get_answers_without_the_store_when_cached(void **state)
{
	struct fx *f = *state;
	struct store_user u;
	sqlite3 *db;

	vault_cache_check_interval(3600 * 1000);
	vault_cache_flush();
	assert_int_equal(vault_user_get(f->s, f->alice.uri, &u), STORE_OK);
	assert_int_equal(vault_user_get(f->s, "sip:nobody@example.test", &u), STORE_NOTFOUND);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(db, "ALTER TABLE users RENAME TO users_gone", NULL, NULL, NULL),
	    SQLITE_OK);
	memset(&u, 0, sizeof(u));
	assert_int_equal(vault_user_get(f->s, f->alice.uri, &u), STORE_OK);
	assert_string_equal(u.uri, f->alice.uri);
	assert_int_equal(vault_user_get(f->s, "sip:nobody@example.test", &u), STORE_NOTFOUND);
	assert_int_equal(vault_user_get(f->s, "sip:carol@example.test", &u), STORE_UNAVAILABLE);
	assert_int_equal(
	    sqlite3_exec(db, "ALTER TABLE users_gone RENAME TO users", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	vault_cache_check_interval(1000);
}

static void test_vault_user_get_sees_disable_rename_delete_after_flush(void **state)
{
	struct fx *f = *state;
	struct store_user u;
	sqlite3 *db;

	vault_cache_check_interval(3600 * 1000); /* only flushes count here */
	vault_cache_flush();
	assert_int_equal(vault_user_get(f->s, f->alice.uri, &u), STORE_OK);
	assert_true(u.enabled);
	/* disabled */
	assert_int_equal(store_user_set_enabled(f->s, f->alice.uri, false), STORE_OK);
	assert_int_equal(vault_user_get(f->s, f->alice.uri, &u), STORE_OK);
	assert_true(u.enabled); /* between polls: the cached record */
	vault_cache_flush();
	assert_int_equal(vault_user_get(f->s, f->alice.uri, &u), STORE_OK);
	assert_false(u.enabled);
	/* renamed */
	assert_int_equal(store_user_set_display_name(f->s, f->alice.uri, "Alice Renamed"),
			 STORE_OK);
	assert_int_equal(vault_user_get(f->s, f->alice.uri, &u), STORE_OK);
	assert_string_equal(u.display_name, "");
	vault_cache_flush();
	assert_int_equal(vault_user_get(f->s, f->alice.uri, &u), STORE_OK);
	assert_string_equal(u.display_name, "Alice Renamed");
	/* the URI itself renamed (no API for it: by SQL): the old one is gone */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "UPDATE users SET uri = 'sip:alice2@example.test', "
				      "user = 'alice2' WHERE uri = 'sip:alice@example.test'",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(vault_user_get(f->s, f->alice.uri, &u), STORE_OK);
	vault_cache_flush();
	assert_int_equal(vault_user_get(f->s, f->alice.uri, &u), STORE_NOTFOUND);
	assert_int_equal(vault_user_get(f->s, "sip:alice2@example.test", &u), STORE_OK);
	/* deleted */
	assert_int_equal(store_user_del(f->s, "sip:alice2@example.test"), STORE_OK);
	assert_int_equal(vault_user_get(f->s, "sip:alice2@example.test", &u), STORE_OK);
	vault_cache_flush();
	assert_int_equal(vault_user_get(f->s, "sip:alice2@example.test", &u), STORE_NOTFOUND);
	vault_cache_check_interval(1000);
}

/* Changes through another connection, no flush: seen at the next poll. */
static void test_vault_user_get_sees_changes_from_elsewhere_at_the_next_poll(void **state)
{
	struct fx *f = *state;
	struct store *other;
	struct store_user u;
	char err[256];

	vault_cache_check_interval(3600 * 1000);
	vault_cache_flush();
	assert_int_equal(vault_user_get(f->s, f->alice.uri, &u), STORE_OK);
	assert_int_equal(store_open(f->path, 0, 50, &other, err, sizeof(err)), STORE_OK);
	assert_int_equal(store_user_set_enabled(other, f->alice.uri, false), STORE_OK);
	assert_int_equal(vault_user_get(f->s, f->alice.uri, &u), STORE_OK);
	assert_true(u.enabled);	       /* no poll due yet */
	vault_cache_check_interval(0); /* a poll on every lookup */
	assert_int_equal(vault_user_get(f->s, f->alice.uri, &u), STORE_OK);
	assert_false(u.enabled);
	assert_int_equal(store_user_set_display_name(other, f->alice.uri, "Elsewhere"), STORE_OK);
	assert_int_equal(vault_user_get(f->s, f->alice.uri, &u), STORE_OK);
	assert_string_equal(u.display_name, "Elsewhere");
	assert_int_equal(store_user_del(other, f->alice.uri), STORE_OK);
	assert_int_equal(vault_user_get(f->s, f->alice.uri, &u), STORE_NOTFOUND);
	/* a real interval: the next due poll sees the next change */
	vault_cache_check_interval(500);
	(void)add_bob(other);
	assert_int_equal(vault_user_get(f->s, "sip:bob@example.test", &u), STORE_OK);
	assert_int_equal(store_user_set_enabled(other, "sip:bob@example.test", false), STORE_OK);
	assert_int_equal(vault_user_get(f->s, "sip:bob@example.test", &u), STORE_OK);
	assert_true(u.enabled); /* within the interval */
	usleep(600 * 1000);
	assert_int_equal(vault_user_get(f->s, "sip:bob@example.test", &u), STORE_OK);
	assert_false(u.enabled);
	store_close(other);
	vault_cache_check_interval(1000);
}

static void test_vault_user_get_caches_unknown_users_until_flush_or_poll(void **state)
{
	struct fx *f = *state;
	struct store_user u;

	vault_cache_check_interval(3600 * 1000);
	vault_cache_flush();
	u.id = -7;
	assert_int_equal(vault_user_get(f->s, "sip:bob@example.test", &u), STORE_NOTFOUND);
	(void)add_bob(f->s);
	assert_int_equal(vault_user_get(f->s, "sip:bob@example.test", &u), STORE_NOTFOUND);
	assert_int_equal(u.id, -7); /* NOTFOUND leaves *u alone, hit or miss */
	vault_cache_flush();
	assert_int_equal(vault_user_get(f->s, "sip:bob@example.test", &u), STORE_OK);
	assert_string_equal(u.display_name, "Bob");
	/* the same through the poll */
	assert_int_equal(vault_user_get(f->s, "sip:carol@example.test", &u), STORE_NOTFOUND);
	assert_int_equal(store_user_del(f->s, "sip:bob@example.test"), STORE_OK);
	{
		struct store_user carol;
		memset(&carol, 0, sizeof(carol));
		assert_int_equal(store_uri_normalise("sip:carol@example.test", carol.uri,
						     carol.user, carol.domain),
				 STORE_OK);
		carol.enabled = true;
		assert_int_equal(store_user_add(f->s, &carol), STORE_OK);
	}
	assert_int_equal(vault_user_get(f->s, "sip:carol@example.test", &u), STORE_NOTFOUND);
	vault_cache_check_interval(0);
	assert_int_equal(vault_user_get(f->s, "sip:carol@example.test", &u), STORE_OK);
	assert_int_equal(vault_user_get(f->s, "sip:bob@example.test", &u), STORE_NOTFOUND);
	/* a name the store cannot hold is cached as INVALID, answered alike */
	vault_cache_check_interval(3600 * 1000);
	assert_int_equal(vault_user_get(f->s, "sip:", &u), STORE_INVALID);
	assert_int_equal(vault_user_get(f->s, "sip:", &u), STORE_INVALID);
	vault_cache_check_interval(1000);
}

/* An outage is never remembered: the first call after the store is back
 * is answered by the store, for a user and for an unknown name. */
static void test_vault_user_get_never_caches_an_outage(void **state)
{
	struct fx *f = *state;
	struct store_user u;
	sqlite3 *db;

	vault_cache_check_interval(3600 * 1000);
	vault_cache_flush();
	assert_int_equal(store_user_get(f->s, f->alice.uri, &u), STORE_OK); /* statement ready */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(db, "ALTER TABLE users RENAME TO users_gone", NULL, NULL, NULL),
	    SQLITE_OK);
	u.id = -7;
	assert_int_equal(vault_user_get(f->s, f->alice.uri, &u), STORE_UNAVAILABLE);
	assert_int_equal(u.id, -7);
	assert_int_equal(vault_user_get(f->s, "sip:bob@example.test", &u), STORE_UNAVAILABLE);
	assert_int_equal(
	    sqlite3_exec(db, "ALTER TABLE users_gone RENAME TO users", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(vault_user_get(f->s, f->alice.uri, &u), STORE_OK);
	assert_string_equal(u.uri, f->alice.uri);
	(void)add_bob(f->s); /* no flush, no poll: bob was never cached as unknown */
	assert_int_equal(vault_user_get(f->s, "sip:bob@example.test", &u), STORE_OK);
	vault_cache_check_interval(1000);
}

/* A store whose version cannot be read (closed file, broken table): past
 * the grace, nothing is answered from the cache and nothing new is kept. */
static void test_vault_user_get_bypasses_the_cache_when_the_version_is_unreadable(void **state)
{
	struct fx *f = *state;
	struct store_user u;
	sqlite3 *db;

	vault_cache_check_interval(50); /* grace: 500 ms */
	vault_cache_flush();
	assert_int_equal(vault_user_get(f->s, f->alice.uri, &u), STORE_OK);
	assert_true(u.enabled);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "UPDATE users SET enabled = 0;"
				      "ALTER TABLE cred_version RENAME TO cred_version_gone",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	usleep(80 * 1000); /* a failed poll, within the grace */
	assert_int_equal(vault_user_get(f->s, f->alice.uri, &u), STORE_OK);
	assert_true(u.enabled);
	usleep(600 * 1000); /* past it: the store answers */
	assert_int_equal(vault_user_get(f->s, f->alice.uri, &u), STORE_OK);
	assert_false(u.enabled);
	assert_int_equal(sqlite3_exec(db,
				      "ALTER TABLE cred_version_gone RENAME TO cred_version;"
				      "UPDATE users SET enabled = 1",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(vault_user_get(f->s, f->alice.uri, &u), STORE_OK);
	assert_true(u.enabled);
	vault_cache_check_interval(1000);
}

static void test_vault_user_get_long_input_and_null_args(void **state)
{
	struct fx *f = *state;
	struct store_user u;
	char longuri[300];

	vault_cache_check_interval(3600 * 1000);
	vault_cache_flush();
	memset(longuri, 'a', sizeof(longuri));
	memcpy(longuri, "sip:", 4);
	memcpy(longuri + 200, "@example.test", 14);
	assert_int_equal(vault_user_get(f->s, longuri, &u), STORE_NOTFOUND);
	assert_int_equal(vault_user_get(NULL, f->alice.uri, &u), STORE_INVALID);
	assert_int_equal(vault_user_get(f->s, NULL, &u), STORE_INVALID);
	assert_int_equal(vault_user_get(f->s, f->alice.uri, NULL), STORE_INVALID);
	vault_cache_check_interval(1000);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_vault_verifies_every_alg_and_both_username_forms),
	    T(test_vault_verifies_the_domain_backslash_user_form),
	    cmocka_unit_test(test_vault_matches_rfc7616_sha256_example_formula),
	    T(test_vault_accepts_uppercase_hex_response),
	    T(test_vault_wrong_password_is_bad_response),
	    T(test_vault_response_of_other_username_form_does_not_match),
	    T(test_vault_unknown_user_is_unknown_user),
	    T(test_vault_user_without_password_is_no_password),
	    T(test_vault_disabled_user_is_disabled_even_with_right_password),
	    T(test_vault_wrong_realm_is_wrong_realm),
	    T(test_vault_new_password_replaces_old_keys),
	    T(test_vault_set_password_stores_six_keys_of_right_sizes),
	    T(test_vault_cache_keeps_a_disabled_user_until_flushed),
	    T(test_vault_mac_is_hmac_sha256_of_purpose_nul_data),
	    T(test_vault_cache_remembers_unknown_users_too),
	    T(test_vault_cache_sees_changes_from_elsewhere_at_the_next_poll),
	    T(test_vault_cache_is_bypassed_when_the_version_stays_unreadable),
	    T(test_vault_cache_holds_ten_thousand_users),
	    T(test_vault_digest_key_is_the_stored_ha1_for_both_username_forms),
	    T(test_vault_set_password_on_missing_user_fails),
	    T(test_vault_store_outage_is_tempfail_not_unknown_user),
	    T(test_vault_set_password_on_locked_store_is_unavailable),
	    T(test_vault_user_get_hit_is_the_stores_record),
	    T(test_vault_user_get_answers_without_the_store_when_cached),
	    T(test_vault_user_get_sees_disable_rename_delete_after_flush),
	    T(test_vault_user_get_sees_changes_from_elsewhere_at_the_next_poll),
	    T(test_vault_user_get_caches_unknown_users_until_flush_or_poll),
	    T(test_vault_user_get_never_caches_an_outage),
	    T(test_vault_user_get_bypasses_the_cache_when_the_version_is_unreadable),
	    T(test_vault_user_get_long_input_and_null_args),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
