/*
 * The TURN server's credential path (src/vault/vault_turn.c): long-term
 * credentials of directory users through the stored Digest keys (MD5 and
 * SHA-256, user and user@domain forms), unknown/disabled users and wrong
 * passwords refused, a store outage TEMPFAIL (500, never 401), ephemeral
 * credentials from the secret file (expired, other secret), the secret
 * file's creation and checks, answers signed with the key of the last good
 * check only, the lookup cache following password changes and disabled
 * users within a second, and the nonces. Expected keys and MACs are computed here with
 * OpenSSL directly, not with the code under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"
#include "store/store_turn.h"
#include "turn/stun.h"
#include "vault/vault.h"
#include "vault/vault_turn.h"

#define REALM "example.test"
#define PW    "Circle of Life"

struct fx {
	char dir[64];
	char db[128];
	char secret[128];
	struct store *s;
};

static void add_user(struct store *s, const char *uri, bool enabled, const char *pw)
{
	struct store_user u;
	char user[STORE_URI_MAX], domain[STORE_URI_MAX];

	memset(&u, 0, sizeof(u));
	assert_int_equal(store_uri_normalise(uri, u.uri, user, domain), 0);
	u.enabled = enabled;
	assert_int_equal(store_user_add(s, &u), STORE_OK);
	assert_int_equal(vault_set_password(s, &u, pw, strlen(pw)), STORE_OK);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/rtc-vturn-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->db, sizeof(f->db), "%s/store.db", f->dir);
	snprintf(f->secret, sizeof(f->secret), "%s/turn.secret", f->dir);
	assert_int_equal(vault_bootstrap_secret(f->dir, err, sizeof(err)), 0);
	assert_int_equal(vault_init(f->dir, err, sizeof(err)), 0);
	assert_int_equal(store_open(f->db, STORE_CREATE, 50, &f->s, err, sizeof(err)), STORE_OK);
	add_user(f->s, "sip:alice@" REALM, true, PW);
	add_user(f->s, "sip:bob@" REALM, false, PW);
	add_user(f->s, "sip:carol@" REALM, true, PW);
	if (vault_turn_init(f->secret, err, sizeof(err)) < 0)
		fail_msg("vault_turn_init: %s", err);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char p[200];

	vault_turn_shutdown();
	vault_shutdown();
	store_close(f->s);
	unlink(f->db);
	snprintf(p, sizeof(p), "%s-wal", f->db);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", f->db);
	unlink(p);
	unlink(f->secret);
	snprintf(p, sizeof(p), "%s/pool.secret", f->dir);
	unlink(p);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* H(user:realm:pw) with MD5 or SHA-256, independently. */
static size_t key_of(const char *user, const char *pw, bool sha256, uint8_t out[32])
{
	char buf[512];
	unsigned n = 0;

	snprintf(buf, sizeof(buf), "%s:%s:%s", user, REALM, pw);
	assert_int_equal(
	    EVP_Digest(buf, strlen(buf), out, &n, sha256 ? EVP_sha256() : EVP_md5(), NULL), 1);
	return n;
}

/* An Allocate with USERNAME, REALM, NONCE and MESSAGE-INTEGRITY(-SHA256) under key. */
static size_t request(uint8_t *buf, size_t cap, const char *user, const uint8_t *key, size_t keylen,
		      bool mi256, struct stun_msg *m)
{
	static const uint8_t tid[STUN_TID_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
	static const uint8_t transport[4] = {17, 0, 0, 0};
	struct stun_builder b;
	long n;

	stun_build_init(&b, buf, cap, STUN_METHOD_ALLOCATE, STUN_REQUEST, tid);
	stun_build_attr(&b, STUN_ATTR_REQUESTED_TRANSPORT, transport, 4);
	stun_build_str(&b, STUN_ATTR_USERNAME, str_cstr(user));
	stun_build_str(&b, STUN_ATTR_REALM, str_cstr(REALM));
	stun_build_str(&b, STUN_ATTR_NONCE, str_cstr("n0nce"));
	if (mi256)
		stun_build_integrity_sha256(&b, key, keylen);
	else
		stun_build_integrity(&b, key, keylen);
	n = stun_build_finish(&b);
	assert_true(n > 0);
	assert_int_equal(stun_parse(buf, (size_t)n, m), 0);
	return (size_t)n;
}

static struct verdict check(struct fx *f, const char *user, const char *pw, bool sha256, char *who)
{
	uint8_t buf[1024], key[32];
	struct stun_msg m;
	size_t kl = key_of(user, pw, sha256, key);
	char w[VAULT_TURN_WHO_MAX];

	request(buf, sizeof(buf), user, key, kl, sha256, &m);
	return vault_turn_check(f->s, str_cstr(user), str_cstr(REALM),
				sha256 ? TURN_PWALG_SHA256 : TURN_PWALG_MD5, &m, 1000,
				who ? who : w, VAULT_TURN_WHO_MAX);
}

static void test_directory_user_md5_key_is_the_digest_ha1(void **state)
{
	char who[VAULT_TURN_WHO_MAX];
	struct verdict v = check(*state, "alice", PW, false, who);

	assert_int_equal(v.kind, VERDICT_OK);
	assert_string_equal(who, "sip:alice@" REALM);
	vault_turn_forget();
	v = check(*state, "alice@" REALM, PW, false, who); /* the user@domain form */
	assert_int_equal(v.kind, VERDICT_OK);
	assert_string_equal(who, "sip:alice@" REALM);
	vault_turn_forget();
}

static void test_directory_user_sha256_with_message_integrity_sha256(void **state)
{
	char who[VAULT_TURN_WHO_MAX];
	assert_int_equal(check(*state, "alice", PW, true, who).kind, VERDICT_OK);
	vault_turn_forget();
}

static void test_wrong_password_unknown_and_disabled_users_are_permfail(void **state)
{
	struct verdict v = check(*state, "alice", "wrong", false, NULL);

	assert_int_equal(v.kind, VERDICT_PERMFAIL);
	assert_string_equal(v.reason, "bad_integrity");
	v = check(*state, "mallory", PW, false, NULL);
	assert_int_equal(v.kind, VERDICT_PERMFAIL);
	assert_string_equal(v.reason, "unknown_user");
	/* the right password of a disabled user is still refused */
	v = check(*state, "bob", PW, false, NULL);
	assert_int_equal(v.kind, VERDICT_PERMFAIL);
	assert_string_equal(v.reason, "disabled");
}

static void test_answer_is_signed_with_the_checked_key_only(void **state)
{
	uint8_t buf[512], key[32];
	struct stun_builder b;
	struct stun_msg m;
	size_t kl = key_of("alice", PW, false, key);
	static const uint8_t tid[STUN_TID_LEN] = {9};
	long n;

	/* nothing checked yet: nothing to sign with */
	stun_build_init(&b, buf, sizeof(buf), STUN_METHOD_ALLOCATE, STUN_SUCCESS, tid);
	assert_int_equal(vault_turn_sign(&b, false), -1);
	assert_int_equal(check(*state, "alice", PW, false, NULL).kind, VERDICT_OK);
	stun_build_init(&b, buf, sizeof(buf), STUN_METHOD_ALLOCATE, STUN_SUCCESS, tid);
	stun_build_u32(&b, STUN_ATTR_LIFETIME, 600);
	assert_int_equal(vault_turn_sign(&b, false), 0);
	n = stun_build_finish(&b);
	assert_true(n > 0);
	assert_int_equal(stun_parse(buf, (size_t)n, &m), 0);
	assert_int_equal(stun_check_integrity(&m, key, kl), 0);
	/* the key went with the signature */
	stun_build_init(&b, buf, sizeof(buf), STUN_METHOD_ALLOCATE, STUN_SUCCESS, tid);
	assert_int_equal(vault_turn_sign(&b, false), -1);
	/* a failed check leaves nothing to sign with */
	assert_int_equal(check(*state, "alice", "wrong", false, NULL).kind, VERDICT_PERMFAIL);
	stun_build_init(&b, buf, sizeof(buf), STUN_METHOD_ALLOCATE, STUN_SUCCESS, tid);
	assert_int_equal(vault_turn_sign(&b, false), -1);
}

static void test_store_outage_is_tempfail_not_a_wrong_password(void **state)
{
	struct fx *f = *state;
	sqlite3 *db;
	struct verdict v;

	assert_int_equal(check(f, "alice", PW, false, NULL).kind, VERDICT_OK);
	vault_turn_forget();
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(db, "ALTER TABLE users RENAME TO users_gone", NULL, NULL, NULL),
	    SQLITE_OK);
	/* names not in this thread's cache reach the store: 500, never 401 */
	v = check(f, "carol", PW, false, NULL);
	assert_int_equal(v.kind, VERDICT_TEMPFAIL);
	assert_string_equal(v.reason, "store_unavailable");
	v = check(f, "zed", "wrong", false, NULL);
	assert_int_equal(v.kind, VERDICT_TEMPFAIL);
	/* a short outage does not sign out a user whose key this thread holds */
	assert_int_equal(check(f, "alice", PW, false, NULL).kind, VERDICT_OK);
	vault_turn_forget();
	assert_int_equal(
	    sqlite3_exec(db, "ALTER TABLE users_gone RENAME TO users", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(check(f, "alice", PW, false, NULL).kind, VERDICT_OK);
	vault_turn_forget();
}

/* base64(HMAC-SHA1(secret, username)), independently. */
static void eph_password(const char *secret, const char *user, char out[64])
{
	uint8_t mac[20];
	unsigned ml = 0;

	HMAC(EVP_sha1(), secret, (int)strlen(secret), (const uint8_t *)user, strlen(user), mac,
	     &ml);
	assert_int_equal(EVP_EncodeBlock((uint8_t *)out, mac, (int)ml), 28);
}

static void read_secret(struct fx *f, char out[128])
{
	FILE *fp = fopen(f->secret, "r");
	assert_non_null(fp);
	assert_non_null(fgets(out, 128, fp));
	fclose(fp);
	out[strcspn(out, "\n")] = '\0';
}

/* The lookup cache follows the store within a second (any process's change). */
static void test_password_change_and_disable_take_effect_within_a_second(void **state)
{
	struct fx *f = *state;
	struct store_user u;
	struct verdict v;

	assert_int_equal(check(f, "alice", PW, false, NULL).kind, VERDICT_OK); /* cached */
	vault_turn_forget();
	assert_int_equal(check(f, "mallory", PW, false, NULL).kind, VERDICT_PERMFAIL);
	assert_int_equal(store_user_get(f->s, "sip:alice@" REALM, &u), STORE_OK);
	assert_int_equal(vault_set_password(f->s, &u, "new-pw", 6), STORE_OK);
	add_user(f->s, "sip:mallory@" REALM, true, PW);
	usleep(1100 * 1000);
	v = check(f, "alice", PW, false, NULL);
	assert_int_equal(v.kind, VERDICT_PERMFAIL);
	assert_string_equal(v.reason, "bad_integrity");
	assert_int_equal(check(f, "alice", "new-pw", false, NULL).kind, VERDICT_OK);
	vault_turn_forget();
	assert_int_equal(check(f, "mallory", PW, false, NULL).kind, VERDICT_OK); /* was unknown */
	vault_turn_forget();
	assert_int_equal(store_user_set_enabled(f->s, "sip:alice@" REALM, false), STORE_OK);
	usleep(1100 * 1000);
	v = check(f, "alice", "new-pw", false, NULL);
	assert_int_equal(v.kind, VERDICT_PERMFAIL);
	assert_string_equal(v.reason, "disabled");
}

/*
 * The TURN keys come through the vault's one lookup cache (the Digest
 * one): a flush (rtcauthctl's cache.flush, SIGHUP) reaches them at once,
 * without waiting for the version poll; between polls the cache answers.
 */
static void test_cache_flush_reaches_turn_keys_at_once(void **state)
{
	struct fx *f = *state;
	struct verdict v;

	add_user(f->s, "sip:dora@" REALM, true, PW);
	vault_cache_check_interval(3600 * 1000); /* only flushes count here */
	vault_cache_flush();
	assert_int_equal(check(f, "dora", PW, false, NULL).kind, VERDICT_OK);
	vault_turn_forget();
	assert_int_equal(check(f, "dora", PW, true, NULL).kind, VERDICT_OK);
	vault_turn_forget();
	assert_int_equal(store_user_set_enabled(f->s, "sip:dora@" REALM, false), STORE_OK);
	/* between two version polls the cached keys answer... */
	assert_int_equal(check(f, "dora", PW, false, NULL).kind, VERDICT_OK);
	vault_turn_forget();
	/* ...until the flush, for both key algorithms */
	vault_cache_flush();
	v = check(f, "dora", PW, false, NULL);
	assert_int_equal(v.kind, VERDICT_PERMFAIL);
	assert_string_equal(v.reason, "disabled");
	v = check(f, "dora", PW, true, NULL);
	assert_int_equal(v.kind, VERDICT_PERMFAIL);
	assert_string_equal(v.reason, "disabled");
	vault_cache_check_interval(1000);
}

static void test_secret_file_is_created_0600_with_64_hex_digits(void **state)
{
	struct fx *f = *state;
	struct stat st;
	char s[128];

	assert_int_equal(stat(f->secret, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	read_secret(f, s);
	assert_int_equal(strlen(s), 64);
	assert_int_equal(strspn(s, "0123456789abcdef"), 64);
}

static void test_ephemeral_credentials_from_the_secret(void **state)
{
	struct fx *f = *state;
	char secret[128], pw[64], user[64], who[VAULT_TURN_WHO_MAX];
	struct verdict v;

	read_secret(f, secret);
	snprintf(user, sizeof(user), "%d:carol", 2000); /* now is 1000 in check() */
	eph_password(secret, user, pw);
	v = check(f, user, pw, false, who);
	assert_int_equal(v.kind, VERDICT_OK);
	assert_string_equal(who, "ephemeral:carol");
	vault_turn_forget();
	assert_int_equal(check(f, user, pw, true, who).kind, VERDICT_OK); /* SHA-256 too */
	vault_turn_forget();
	/* expired */
	snprintf(user, sizeof(user), "%d:carol", 999);
	eph_password(secret, user, pw);
	v = check(f, user, pw, false, NULL);
	assert_int_equal(v.kind, VERDICT_PERMFAIL);
	assert_string_equal(v.reason, "expired");
	/* another secret */
	snprintf(user, sizeof(user), "%d:carol", 2000);
	eph_password("not-the-secret", user, pw);
	v = check(f, user, pw, false, NULL);
	assert_int_equal(v.kind, VERDICT_PERMFAIL);
	assert_string_equal(v.reason, "bad_integrity");
	/* ':' but no expiry */
	v = check(f, "x:y", pw, false, NULL);
	assert_int_equal(v.kind, VERDICT_PERMFAIL);
	assert_string_equal(v.reason, "malformed");
}

static void test_secret_file_readable_by_others_or_empty_is_refused(void **state)
{
	struct fx *f = *state;
	char err[256];
	int fd;

	chmod(f->secret, 0640);
	assert_int_equal(vault_turn_init(f->secret, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "chmod 600"));
	unlink(f->secret);
	fd = open(f->secret, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "\n", 1), 1);
	close(fd);
	assert_int_equal(vault_turn_init(f->secret, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "empty"));
	/* an operator's own secret (coturn's static-auth-secret) is taken as written */
	unlink(f->secret);
	fd = open(f->secret, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_int_equal(write(fd, "north-wind\n", 11), 11);
	close(fd);
	assert_int_equal(vault_turn_init(f->secret, err, sizeof(err)), 0);
	{
		char pw[64], who[VAULT_TURN_WHO_MAX];
		eph_password("north-wind", "2000:dan", pw);
		assert_int_equal(check(f, "2000:dan", pw, false, who).kind, VERDICT_OK);
		vault_turn_forget();
	}
}

/* SHA-256(name ":" realm), independently. */
static void userhash_of(const char *name, const char *realm, uint8_t out[32])
{
	char buf[512];
	unsigned n = 0;

	snprintf(buf, sizeof(buf), "%s:%s", name, realm);
	assert_int_equal(EVP_Digest(buf, strlen(buf), out, &n, EVP_sha256(), NULL), 1);
}

static struct verdict check_hash(struct fx *f, const char *name, const char *pw, bool sha256,
				 char *who)
{
	uint8_t buf[1024], key[32], h[32];
	struct stun_msg m;
	size_t kl = key_of(name, pw, sha256, key);
	char w[VAULT_TURN_WHO_MAX];

	userhash_of(name, REALM, h);
	request(buf, sizeof(buf), "ignored", key, kl, sha256, &m);
	return vault_turn_check_userhash(f->s, h, str_cstr(REALM),
					 sha256 ? TURN_PWALG_SHA256 : TURN_PWALG_MD5, &m,
					 who ? who : w, VAULT_TURN_WHO_MAX);
}

/*
 * These use users of their own: the per-thread lookup cache outlives a
 * test's database (the earlier tests disable alice and add mallory).
 */
static void test_userhash_finds_the_user_by_either_name_with_md5_and_sha256(void **state)
{
	struct fx *f = *state;
	char who[VAULT_TURN_WHO_MAX];
	struct verdict v;

	add_user(f->s, "sip:hera@" REALM, true, PW);
	v = check_hash(f, "hera", PW, false, who);
	assert_int_equal(v.kind, VERDICT_OK);
	assert_string_equal(who, "sip:hera@" REALM);
	vault_turn_forget();
	v = check_hash(f, "hera@" REALM, PW, true, who);
	assert_int_equal(v.kind, VERDICT_OK);
	assert_string_equal(who, "sip:hera@" REALM);
	vault_turn_forget();
}

static void test_userhash_wrong_password_unknown_hash_and_disabled_are_permfail(void **state)
{
	struct fx *f = *state;
	uint8_t buf[1024], key[32];
	uint8_t h[32] = {0};
	struct stun_msg m;
	char who[VAULT_TURN_WHO_MAX];
	struct verdict v;

	add_user(f->s, "sip:iris@" REALM, true, PW);
	add_user(f->s, "sip:ivan@" REALM, false, PW);
	v = check_hash(f, "iris", "wrong", false, who);
	assert_int_equal(v.kind, VERDICT_PERMFAIL);
	assert_string_equal(v.reason, "bad_integrity");
	assert_string_equal(who, "");
	v = check_hash(f, "nobody-by-hash", PW, false, NULL);
	assert_int_equal(v.kind, VERDICT_PERMFAIL);
	assert_string_equal(v.reason, "unknown_user");
	v = check_hash(f, "ivan", PW, false, NULL);
	assert_int_equal(v.kind, VERDICT_PERMFAIL);
	assert_string_equal(v.reason, "disabled");
	/* a hash made with another realm is nobody's */
	key_of("iris", PW, false, key);
	userhash_of("iris", "other.test", h);
	request(buf, sizeof(buf), "x", key, 16, false, &m);
	v = vault_turn_check_userhash(f->s, h, str_cstr(REALM), TURN_PWALG_MD5, &m, who,
				      sizeof(who));
	assert_int_equal(v.kind, VERDICT_PERMFAIL);
	assert_string_equal(v.reason, "unknown_user");
	/* nothing held to sign with after a failure */
	{
		struct stun_builder b;
		static const uint8_t tid[STUN_TID_LEN] = {3};
		stun_build_init(&b, buf, sizeof(buf), STUN_METHOD_ALLOCATE, STUN_SUCCESS, tid);
		assert_int_equal(vault_turn_sign(&b, false), -1);
	}
	/* and the right one still works */
	assert_int_equal(check_hash(f, "iris", PW, false, NULL).kind, VERDICT_OK);
	vault_turn_forget();
}

static void test_userhash_store_outage_is_tempfail(void **state)
{
	struct fx *f = *state;
	sqlite3 *db;
	struct verdict v;

	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(db, "ALTER TABLE turn_userhash RENAME TO gone", NULL, NULL, NULL),
	    SQLITE_OK);
	v = check_hash(f, "carol", PW, false, NULL);
	assert_int_equal(v.kind, VERDICT_TEMPFAIL);
	assert_string_equal(v.reason, "store_unavailable");
	assert_int_equal(
	    sqlite3_exec(db, "ALTER TABLE gone RENAME TO turn_userhash", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
}

static void test_userhash_backfill_fills_users_with_keys_but_no_hash(void **state)
{
	struct fx *f = *state;
	struct store_user u;
	size_t done = 0;
	int n = -1;

	/* a database made before schema 7: keys, no hashes */
	assert_int_equal(store_user_get(f->s, "sip:carol@" REALM, &u), STORE_OK);
	assert_int_equal(store_turn_userhash_put(f->s, u.id, NULL, 0), STORE_OK);
	assert_int_equal(check_hash(f, "carol", PW, false, NULL).kind, VERDICT_PERMFAIL);
	assert_int_equal(vault_turn_userhash_backfill(f->s, &done), STORE_OK);
	assert_int_equal(done, 1);
	assert_int_equal(store_turn_userhash_count(f->s, u.id, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_int_equal(check_hash(f, "carol", PW, false, NULL).kind, VERDICT_OK);
	vault_turn_forget();
	/* nothing left to do the second time */
	assert_int_equal(vault_turn_userhash_backfill(f->s, &done), STORE_OK);
	assert_int_equal(done, 0);
}

static void test_userhash_backfill_of_many_users_goes_batch_by_batch(void **state)
{
	struct fx *f = *state;
	sqlite3 *db;
	size_t done = 0;
	char uri[64];

	for (int i = 0; i < 150; i++) {
		snprintf(uri, sizeof(uri), "sip:u%03d@" REALM, i);
		add_user(f->s, uri, true, PW);
	}
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DELETE FROM turn_userhash", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(vault_turn_userhash_backfill(f->s, &done), STORE_OK);
	assert_int_equal(done, 153); /* alice, bob (disabled, but with keys), carol, u000..u149 */
	assert_int_equal(check_hash(f, "u149", PW, false, NULL).kind, VERDICT_OK);
	vault_turn_forget();
	assert_int_equal(vault_turn_userhash_backfill(f->s, &done), STORE_OK);
	assert_int_equal(done, 0);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void test_secret_reload_takes_the_new_secret_and_a_bad_file_keeps_the_old(void **state)
{
	struct fx *f = *state;
	char pw[64], err[256], path[200], user[32], name[64], pass[64];

	snprintf(path, sizeof(path), "%s/other.secret", f->dir);
	write_file(path, "south-wind\n", 0600);
	assert_int_equal(vault_turn_reload_secret(path, err, sizeof(err)), 0);
	eph_password("south-wind", "2000:dan", pw);
	assert_int_equal(check(f, "2000:dan", pw, false, NULL).kind, VERDICT_OK);
	vault_turn_forget();
	/* credentials minted from now on use it */
	assert_int_equal(
	    vault_turn_issue(str_cstr("dan"), 2000, name, sizeof(name), pass, sizeof(pass)), 0);
	assert_string_equal(name, "2000:dan");
	assert_string_equal(pass, pw);
	/* a file others can read, an empty one, a missing one: the old secret stays */
	chmod(path, 0644);
	assert_int_equal(vault_turn_reload_secret(path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "chmod 600"));
	write_file(path, "\n", 0600);
	assert_int_equal(vault_turn_reload_secret(path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "empty"));
	snprintf(user, sizeof(user), "%s/none", f->dir);
	assert_int_equal(vault_turn_reload_secret(user, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot open"));
	assert_int_equal(check(f, "2000:dan", pw, false, NULL).kind, VERDICT_OK);
	vault_turn_forget();
	unlink(path);
}

static void test_nonce_round_trip_and_bind(void **state)
{
	char n[TURN_NONCE_MAX + 1];
	uint32_t feat = 0;
	int len = vault_turn_nonce_make(str_cstr("realm|1.2.3.4"), TURN_FEATURE_PASSWORD_ALGORITHMS,
					1000, n, sizeof(n));

	assert_true(len > 0);
	assert_int_equal(vault_turn_nonce_check(str_cstr("realm|1.2.3.4"), str_make(n, (size_t)len),
						600, 1100, &feat),
			 TURN_NONCE_OK);
	assert_int_equal(feat, TURN_FEATURE_PASSWORD_ALGORITHMS);
	assert_int_equal(vault_turn_nonce_check(str_cstr("realm|1.2.3.5"), str_make(n, (size_t)len),
						600, 1100, &feat),
			 TURN_NONCE_INVALID);
	assert_int_equal(vault_turn_nonce_check(str_cstr("realm|1.2.3.4"), str_make(n, (size_t)len),
						600, 1601, &feat),
			 TURN_NONCE_STALE);
}

int main(void)
{
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_directory_user_md5_key_is_the_digest_ha1),
	    T(test_directory_user_sha256_with_message_integrity_sha256),
	    T(test_wrong_password_unknown_and_disabled_users_are_permfail),
	    T(test_answer_is_signed_with_the_checked_key_only),
	    T(test_store_outage_is_tempfail_not_a_wrong_password),
	    T(test_password_change_and_disable_take_effect_within_a_second),
	    T(test_cache_flush_reaches_turn_keys_at_once),
	    T(test_secret_file_is_created_0600_with_64_hex_digits),
	    T(test_ephemeral_credentials_from_the_secret),
	    T(test_secret_file_readable_by_others_or_empty_is_refused),
	    T(test_nonce_round_trip_and_bind),
	    T(test_userhash_finds_the_user_by_either_name_with_md5_and_sha256),
	    T(test_userhash_wrong_password_unknown_hash_and_disabled_are_permfail),
	    T(test_userhash_store_outage_is_tempfail),
	    T(test_userhash_backfill_fills_users_with_keys_but_no_hash),
	    T(test_userhash_backfill_of_many_users_goes_batch_by_batch),
	    T(test_secret_reload_takes_the_new_secret_and_a_bad_file_keeps_the_old),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
