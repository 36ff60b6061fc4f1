/*
 * PINs (issue 5 item 2): the policy (every rule), phone numbers and
 * extensions, the scrypt hash with its parameters recorded and used, the
 * lockout counters of each length class (PROTOCOLS.md §3), and sign-in by
 * number / extension / URI + PIN: ambiguity, unknown numbers, disabled
 * users, lockout and unlock, store outages. Expected hashes are computed
 * here with EVP_PBE_scrypt, not with the code under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "pki/pin.h"
#include "store/store.h"
#include "vault/vault_pin.h"

#define NOW 1800000000LL

struct fx {
	char dir[64];
	char path[128];
	struct store *s;
	struct store_user alice, bob, carol;
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

static void add_user(struct fx *f, struct store_user *u, const char *uri, const char *phone,
		     const char *ext)
{
	char user[STORE_URI_MAX], domain[STORE_URI_MAX];

	memset(u, 0, sizeof(*u));
	assert_int_equal(store_uri_normalise(uri, u->uri, user, domain), 0);
	u->enabled = true;
	assert_int_equal(store_user_add(f->s, u), STORE_OK);
	assert_int_equal(store_user_set_phone(f->s, u->uri, phone, ext), STORE_OK);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	vault_pin_set_cost(10); /* quick; the default cost has its own test */
	snprintf(f->dir, sizeof(f->dir), "/tmp/rtc-pin-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/store.db", f->dir);
	assert_int_equal(store_open(f->path, STORE_CREATE, 50, &f->s, err, sizeof(err)), STORE_OK);
	/* alice and bob share the main number with their own extensions */
	add_user(f, &f->alice, "sip:alice@example.test", "+14255550100", "1001");
	add_user(f, &f->bob, "sip:bob@example.test", "+14255550100", "1002");
	add_user(f, &f->carol, "sip:carol@example.test", "+14255550177", "2001");
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

/* ---- policy ---- */

static int check6(const char *pin)
{
	struct pin_policy p = {6};
	return pin_policy_check(&p, pin, strlen(pin), "+14255550100", "1001");
}

static void test_pin_policy_accepts_a_good_pin(void **state)
{
	(void)state;
	assert_int_equal(check6("480913"), PIN_POLICY_OK);
	assert_int_equal(check6("75310864"), PIN_POLICY_OK);
	assert_int_equal(check6("123457"), PIN_POLICY_OK); /* almost a run is not one */
}

static void test_pin_policy_minimum_length_is_configurable(void **state)
{
	struct pin_policy four = {4}, eight = {8};
	char buf[128];

	(void)state;
	assert_int_equal(check6("97531"), PIN_POLICY_TOO_SHORT);
	assert_int_equal(pin_policy_check(&four, "9753", 4, NULL, NULL), PIN_POLICY_OK);
	assert_int_equal(pin_policy_check(&four, "975", 3, NULL, NULL), PIN_POLICY_TOO_SHORT);
	assert_int_equal(pin_policy_check(&eight, "4809137", 7, NULL, NULL), PIN_POLICY_TOO_SHORT);
	assert_int_equal(pin_policy_check(&eight, "48091375", 8, NULL, NULL), PIN_POLICY_OK);
	pin_policy_strerror(PIN_POLICY_TOO_SHORT, 8, buf, sizeof(buf));
	assert_non_null(strstr(buf, "at least 8 digits"));
}

static void test_pin_policy_refuses_more_than_24_digits(void **state)
{
	struct pin_policy p = {6};

	(void)state;
	assert_int_equal(pin_policy_check(&p, "480913480913480913480913", 24, NULL, NULL),
			 PIN_POLICY_REPEAT); /* 24 accepted as a length */
	assert_int_equal(pin_policy_check(&p, "4809134809134809134809130", 25, NULL, NULL),
			 PIN_POLICY_TOO_LONG);
}

static void test_pin_policy_digits_only(void **state)
{
	(void)state;
	assert_int_equal(check6("48a913"), PIN_POLICY_NOT_DIGITS);
	assert_int_equal(check6(" 480913"), PIN_POLICY_NOT_DIGITS);
	assert_int_equal(check6("480913\n"), PIN_POLICY_NOT_DIGITS);
	assert_int_equal(check6(""), PIN_POLICY_NOT_DIGITS);
	assert_int_equal(check6("４８０９１３"), PIN_POLICY_NOT_DIGITS); /* full-width digits */
}

static void test_pin_policy_refuses_repeats(void **state)
{
	(void)state;
	assert_int_equal(check6("111111"), PIN_POLICY_REPEAT);
	assert_int_equal(check6("000000"), PIN_POLICY_REPEAT);
	assert_int_equal(check6("121212"), PIN_POLICY_REPEAT);
	assert_int_equal(check6("480480"), PIN_POLICY_REPEAT);
	assert_int_equal(check6("9797979"), PIN_POLICY_REPEAT);
}

static void test_pin_policy_refuses_runs(void **state)
{
	(void)state;
	assert_int_equal(check6("123456"), PIN_POLICY_RUN);
	assert_int_equal(check6("654321"), PIN_POLICY_RUN);
	assert_int_equal(check6("789012"), PIN_POLICY_RUN); /* wraps 9 -> 0 */
	assert_int_equal(check6("109876"), PIN_POLICY_RUN);
	assert_int_equal(check6("0123456789"), PIN_POLICY_RUN);
}

static void test_pin_policy_refuses_the_phone_number_and_its_tail(void **state)
{
	struct pin_policy p = {6};

	(void)state;
	assert_int_equal(check6("14255550100"), PIN_POLICY_PHONE);
	assert_int_equal(check6("4255550100"), PIN_POLICY_PHONE);
	assert_int_equal(check6("550100"), PIN_POLICY_PHONE);
	assert_int_equal(check6("4255550101"), PIN_POLICY_OK);
	/* no phone number: nothing to compare */
	assert_int_equal(pin_policy_check(&p, "550100", 6, NULL, NULL), PIN_POLICY_OK);
	assert_int_equal(pin_policy_check(&p, "550100", 6, "", ""), PIN_POLICY_OK);
}

static void test_pin_policy_refuses_the_extension_and_its_tail(void **state)
{
	struct pin_policy p = {4};

	(void)state;
	assert_int_equal(pin_policy_check(&p, "4711", 4, "+14255550100", "4711"),
			 PIN_POLICY_EXTENSION);
	assert_int_equal(pin_policy_check(&p, "4711", 4, "+14255550100", "884711"),
			 PIN_POLICY_EXTENSION);
	assert_int_equal(pin_policy_check(&p, "884711", 6, "+14255550100", "884711"),
			 PIN_POLICY_EXTENSION);
	assert_int_equal(pin_policy_check(&p, "4712", 4, "+14255550100", "884711"), PIN_POLICY_OK);
}

static void test_pin_policy_messages_name_the_rule(void **state)
{
	char buf[160];

	(void)state;
	assert_non_null(strstr(pin_policy_strerror(PIN_POLICY_RUN, 6, buf, sizeof(buf)), "run"));
	assert_non_null(
	    strstr(pin_policy_strerror(PIN_POLICY_REPEAT, 6, buf, sizeof(buf)), "repeat"));
	assert_non_null(
	    strstr(pin_policy_strerror(PIN_POLICY_PHONE, 6, buf, sizeof(buf)), "phone number"));
	assert_non_null(
	    strstr(pin_policy_strerror(PIN_POLICY_EXTENSION, 6, buf, sizeof(buf)), "extension"));
	assert_non_null(
	    strstr(pin_policy_strerror(PIN_POLICY_NOT_DIGITS, 6, buf, sizeof(buf)), "digits"));
}

/* ---- phone numbers and extensions ---- */

static void test_pin_phone_numbers_normalise_to_e164(void **state)
{
	char out[STORE_PHONE_MAX];
	const char *why;

	(void)state;
	assert_int_equal(pin_phone_normalise("+1 (425) 555-0100", out, &why), 0);
	assert_string_equal(out, "+14255550100");
	assert_int_equal(pin_phone_normalise("tel:+44.20.7946.0958", out, &why), 0);
	assert_string_equal(out, "+442079460958");
	assert_int_equal(pin_phone_normalise("+123456789012345", out, &why), 0);
}

static void test_pin_phone_numbers_refused_with_a_reason(void **state)
{
	static const char *const bad[] = {
	    "4255550100",	 /* no + */
	    "+123456",		 /* 6 digits */
	    "+1234567890123456", /* 16 digits */
	    "+1425x5550100",	 "+0123456789", "", "+", "++14255550100", "+1425555010;ext=1",
	};
	char out[STORE_PHONE_MAX];
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		assert_int_equal(pin_phone_normalise(bad[i], out, &why), -1);
		assert_non_null(why);
		assert_non_null(strstr(why, "E.164"));
		assert_string_equal(out, "");
	}
}

static void test_pin_extensions_are_digits(void **state)
{
	const char *why;

	(void)state;
	assert_int_equal(pin_extension_check("1234", &why), 0);
	assert_int_equal(pin_extension_check("0", &why), 0);
	assert_int_equal(pin_extension_check("", &why), -1);
	assert_non_null(why);
	assert_int_equal(pin_extension_check("12a4", &why), -1);
	assert_int_equal(pin_extension_check("+1234", &why), -1);
	assert_int_equal(pin_extension_check("1234567890123456", &why), -1);
}

/* ---- scrypt ---- */

/* RFC 7914 §12, the third vector */
static void test_pin_kdf_matches_rfc7914_vector(void **state)
{
	static const uint8_t want[64] = {
	    0x70, 0x23, 0xbd, 0xcb, 0x3a, 0xfd, 0x73, 0x48, 0x46, 0x1c, 0x06, 0xcd, 0x81,
	    0xfd, 0x38, 0xeb, 0xfd, 0xa8, 0xfb, 0xba, 0x90, 0x4f, 0x8e, 0x3e, 0xa9, 0xb5,
	    0x43, 0xf6, 0x54, 0x5d, 0xa1, 0xf2, 0xd5, 0x43, 0x29, 0x55, 0x61, 0x3f, 0x0f,
	    0xcf, 0x62, 0xd4, 0x97, 0x05, 0x24, 0x2a, 0x9a, 0xf9, 0xe6, 0x1e, 0x85, 0xdc,
	    0x0d, 0x65, 0x1e, 0x40, 0xdf, 0xcf, 0x01, 0x7b, 0x45, 0x57, 0x58, 0x87};
	struct vault_pin_params p = {16384, 8, 1, 64, 6};
	uint8_t out[64];

	(void)state;
	assert_int_equal(
	    vault_pin_kdf("pleaseletmein", 13, (const uint8_t *)"SodiumChloride", 14, &p, out), 0);
	assert_memory_equal(out, want, 64);
}

static void test_pin_params_round_trip_and_bounds(void **state)
{
	struct vault_pin_params p = {32768, 8, 1, 32, 5}, q;
	char buf[STORE_PIN_PARAMS_MAX];
	static const char *const bad[] = {
	    "scrypt:N=32767,r=8,p=1,dklen=32,class=6",	 /* not a power of two */
	    "scrypt:N=2097152,r=8,p=1,dklen=32,class=6", /* 2^21 */
	    "scrypt:N=512,r=8,p=1,dklen=32,class=6",	 /* below 2^10 */
	    "scrypt:N=32768,r=0,p=1,dklen=32,class=6",
	    "scrypt:N=32768,r=33,p=1,dklen=32,class=6",
	    "scrypt:N=32768,r=8,p=0,dklen=32,class=6",
	    "scrypt:N=1048576,r=16,p=1,dklen=32,class=6", /* 2 GiB */
	    "scrypt:N=32768,r=8,p=1,dklen=8,class=6",
	    "scrypt:N=32768,r=8,p=1,dklen=32,class=3",
	    "scrypt:N=32768,r=8,p=1,dklen=32,class=6,x=1",
	    "scrypt:N=32768,r=8,p=1,dklen=32",
	    "pbkdf2:N=32768,r=8,p=1,dklen=32,class=6",
	    "scrypt:N=99999999999999999999999,r=8,p=1,dklen=32,class=6",
	    "",
	};

	(void)state;
	assert_int_equal(vault_pin_params_format(&p, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "scrypt:N=32768,r=8,p=1,dklen=32,class=5");
	assert_int_equal(vault_pin_params_parse(buf, &q), 0);
	assert_true(q.n == 32768 && q.r == 8 && q.p == 1 && q.dklen == 32 && q.klass == 5);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(vault_pin_params_parse(bad[i], &q), -1);
	assert_int_equal(vault_pin_class(4), 4);
	assert_int_equal(vault_pin_class(5), 5);
	assert_int_equal(vault_pin_class(6), 6);
	assert_int_equal(vault_pin_class(24), 6);
}

static void get_hash(struct fx *f, int64_t id, uint8_t *hash, size_t *hl, uint8_t *salt, size_t *sl,
		     char *params)
{
	*hl = *sl = STORE_PIN_BLOB_MAX;
	assert_int_equal(store_pin_get_hash(f->s, id, hash, hl, salt, sl, params), STORE_OK);
}

static void test_pin_hash_is_salted_scrypt_with_its_parameters(void **state)
{
	struct fx *f = *state;
	uint8_t h1[64], s1[64], h2[64], s2[64], want[32];
	size_t hl1, sl1, hl2, sl2;
	char p1[STORE_PIN_PARAMS_MAX], p2[STORE_PIN_PARAMS_MAX];

	vault_pin_set_cost(VAULT_PIN_N_LOG2); /* the default cost */
	assert_int_equal(vault_pin_set(f->s, f->alice.id, "480913", 6, NOW), STORE_OK);
	get_hash(f, f->alice.id, h1, &hl1, s1, &sl1, p1);
	assert_string_equal(p1, "scrypt:N=32768,r=8,p=1,dklen=32,class=6");
	assert_int_equal(hl1, 32);
	assert_int_equal(sl1, 32);
	assert_int_equal(EVP_PBE_scrypt("480913", 6, s1, sl1, 32768, 8, 1, 64 << 20, want, 32), 1);
	assert_memory_equal(h1, want, 32);
	/* the same PIN again: a new salt, a new hash */
	assert_int_equal(vault_pin_set(f->s, f->bob.id, "480913", 6, NOW), STORE_OK);
	get_hash(f, f->bob.id, h2, &hl2, s2, &sl2, p2);
	assert_memory_not_equal(s1, s2, 32);
	assert_memory_not_equal(h1, h2, 32);
	assert_int_equal(vault_pin_verify(f->s, f->alice.id, "480913", 6), VAULT_PIN_MATCH);
	vault_pin_set_cost(10);
}

static void test_pin_verify_uses_the_recorded_parameters(void **state)
{
	struct fx *f = *state;
	uint8_t h[64], s[64];
	size_t hl, sl;
	char p[STORE_PIN_PARAMS_MAX];

	assert_int_equal(vault_pin_set(f->s, f->alice.id, "4809", 4, NOW), STORE_OK);
	get_hash(f, f->alice.id, h, &hl, s, &sl, p);
	assert_string_equal(p, "scrypt:N=1024,r=8,p=1,dklen=32,class=4");
	vault_pin_set_cost(11); /* the cost is raised later: old hashes still verify */
	assert_int_equal(vault_pin_verify(f->s, f->alice.id, "4809", 4), VAULT_PIN_MATCH);
	assert_int_equal(vault_pin_verify(f->s, f->alice.id, "4808", 4), VAULT_PIN_MISMATCH);
	assert_int_equal(vault_pin_verify(f->s, f->alice.id, "48090", 5), VAULT_PIN_MISMATCH);
	assert_int_equal(vault_pin_verify(f->s, f->carol.id, "4809", 4), VAULT_PIN_NONE);
	vault_pin_set_cost(10);
}

static void exec_sql(struct fx *f, const char *sql)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void test_pin_tampered_parameters_are_unavailable_not_wrong(void **state)
{
	struct fx *f = *state;

	assert_int_equal(vault_pin_set(f->s, f->alice.id, "480913", 6, NOW), STORE_OK);
	/* 2^24 would be 16 GiB: refused before any work, and it is our fault */
	exec_sql(f, "UPDATE pins SET params = 'scrypt:N=16777216,r=8,p=1,dklen=32,class=6'");
	assert_int_equal(vault_pin_verify(f->s, f->alice.id, "480913", 6), VAULT_PIN_UNAVAILABLE);
	exec_sql(f, "UPDATE pins SET params = 'scrypt:N=1024,r=8,p=1,dklen=16,class=6'");
	assert_int_equal(vault_pin_verify(f->s, f->alice.id, "480913", 6), VAULT_PIN_UNAVAILABLE);
}

/* ---- lockout counters ---- */

static struct store_pin_state state_of_class(int klass)
{
	struct store_pin_state st;
	struct vault_pin_params p = {1024, 8, 1, 32, klass};

	memset(&st, 0, sizeof(st));
	st.user_id = 1;
	assert_int_equal(vault_pin_params_format(&p, st.params, sizeof(st.params)), 0);
	return st;
}

/* Count failures a second apart until the local limit locks; returns how many. */
static int failures_to_local_lock(struct store_pin_state *st, int64_t t0)
{
	int64_t ra;

	for (int i = 1; i <= 100; i++) {
		if (pin_count_failure(st, t0 + i) == PIN_LOCKED_TEMP) {
			assert_int_equal(pin_lock_check(st, t0 + i, &ra), PIN_LOCKED_TEMP);
			assert_int_equal(ra, PIN_LOCK_TIME);
			return i;
		}
		assert_int_equal(pin_lock_check(st, t0 + i, &ra), PIN_UNLOCKED);
	}
	return -1;
}

/* Failures 31 minutes apart (never a local lock) until the global lock. */
static int failures_to_global_lock(struct store_pin_state *st)
{
	for (int i = 1; i <= 6000; i++)
		if (pin_count_failure(st, NOW + (int64_t)i * 1860) == PIN_LOCKED_ADMIN)
			return i;
	return -1;
}

static void test_pin_lockout_limits_by_length_class(void **state)
{
	struct store_pin_state st;
	struct pin_limits l;

	(void)state;
	l = pin_limits_of_class(4);
	assert_true(l.local == 10 && l.global == 100);
	l = pin_limits_of_class(5);
	assert_true(l.local == 25 && l.global == 1000);
	l = pin_limits_of_class(6);
	assert_true(l.local == 25 && l.global == 5000);
	st = state_of_class(4);
	assert_int_equal(failures_to_local_lock(&st, NOW), 10);
	st = state_of_class(5);
	assert_int_equal(failures_to_local_lock(&st, NOW), 25);
	st = state_of_class(6);
	assert_int_equal(failures_to_local_lock(&st, NOW), 25);
	st = state_of_class(4);
	assert_int_equal(failures_to_global_lock(&st), 100);
	st = state_of_class(5);
	assert_int_equal(failures_to_global_lock(&st), 1000);
	st = state_of_class(6);
	assert_int_equal(failures_to_global_lock(&st), 5000);
}

static void test_pin_lockout_unreadable_params_get_the_strictest_limits(void **state)
{
	struct store_pin_state st;

	(void)state;
	memset(&st, 0, sizeof(st));
	snprintf(st.params, sizeof(st.params), "garbage");
	assert_int_equal(failures_to_local_lock(&st, NOW), 10);
}

static void test_pin_lockout_local_window_is_30_minutes(void **state)
{
	struct store_pin_state st = state_of_class(4);
	int64_t ra;

	(void)state;
	for (int i = 0; i < 9; i++)
		assert_int_equal(pin_count_failure(&st, NOW + i), PIN_UNLOCKED);
	assert_int_equal(st.local_failures, 9);
	/* the window (from the first failure) is over: counting starts again */
	assert_int_equal(pin_count_failure(&st, NOW + PIN_WINDOW), PIN_UNLOCKED);
	assert_int_equal(st.local_failures, 1);
	assert_int_equal(st.global_failures, 10);
	for (int i = 1; i < 9; i++)
		assert_int_equal(pin_count_failure(&st, NOW + PIN_WINDOW + i), PIN_UNLOCKED);
	assert_int_equal(pin_count_failure(&st, NOW + PIN_WINDOW + 9), PIN_LOCKED_TEMP);
	/* one hour, then free again with a fresh window */
	assert_int_equal(pin_lock_check(&st, NOW + PIN_WINDOW + 9 + 3599, &ra), PIN_LOCKED_TEMP);
	assert_int_equal(ra, 1);
	assert_int_equal(pin_lock_check(&st, NOW + PIN_WINDOW + 9 + 3600, &ra), PIN_UNLOCKED);
	assert_int_equal(pin_count_failure(&st, NOW + PIN_WINDOW + 9 + 3600), PIN_UNLOCKED);
	assert_int_equal(st.local_failures, 1);
	assert_int_equal(st.global_failures, 20);
}

static void test_pin_lockout_global_needs_an_administrator(void **state)
{
	struct store_pin_state st = state_of_class(4);
	int64_t ra;

	(void)state;
	assert_int_equal(failures_to_global_lock(&st), 100);
	/* years later: still locked */
	assert_int_equal(pin_lock_check(&st, NOW + 100LL * 86400 * 365, &ra), PIN_LOCKED_ADMIN);
	assert_int_equal(ra, 0);
	pin_clear(&st);
	assert_int_equal(pin_lock_check(&st, NOW, &ra), PIN_UNLOCKED);
	assert_int_equal(st.global_failures, 0);
}

/* ---- sign-in ---- */

static void set_pin(struct fx *f, const struct store_user *u, const char *pin)
{
	assert_int_equal(vault_pin_set(f->s, u->id, pin, strlen(pin), NOW), STORE_OK);
}

static int auth(struct fx *f, const char *who, const char *ext, const char *pin, int64_t now,
		struct pin_auth_out *out)
{
	return pin_authenticate(f->s, who, ext, pin, strlen(pin), now, out);
}

static struct store_pin_state state_for(struct fx *f, const struct store_user *u)
{
	struct store_pin_state st;

	assert_int_equal(store_pin_get_state(f->s, u->id, &st), STORE_OK);
	return st;
}

static void test_pin_auth_by_number_extension_or_uri(void **state)
{
	struct fx *f = *state;
	struct pin_auth_out o;

	set_pin(f, &f->carol, "480913");
	assert_int_equal(auth(f, "+14255550177", NULL, "480913", NOW, &o), PIN_AUTH_OK);
	assert_string_equal(o.user.uri, "sip:carol@example.test");
	assert_int_equal(auth(f, "+1 (425) 555-0177", NULL, "480913", NOW, &o), PIN_AUTH_OK);
	assert_int_equal(auth(f, "tel:+14255550177", NULL, "480913", NOW, &o), PIN_AUTH_OK);
	assert_int_equal(auth(f, "2001", NULL, "480913", NOW, &o), PIN_AUTH_OK);
	assert_string_equal(o.user.uri, "sip:carol@example.test");
	assert_int_equal(auth(f, "14255550177", NULL, "480913", NOW, &o), PIN_AUTH_OK);
	assert_int_equal(auth(f, "sip:carol@example.test", NULL, "480913", NOW, &o), PIN_AUTH_OK);
	assert_int_equal(auth(f, "carol@EXAMPLE.test", NULL, "480913", NOW, &o), PIN_AUTH_OK);
	assert_int_equal(auth(f, "+14255550177;ext=2001", NULL, "480913", NOW, &o), PIN_AUTH_OK);
}

static void test_pin_auth_wrong_pin_is_counted_and_success_resets(void **state)
{
	struct fx *f = *state;
	struct pin_auth_out o;

	set_pin(f, &f->carol, "480913");
	assert_int_equal(auth(f, "+14255550177", NULL, "480914", NOW, &o), PIN_AUTH_WRONG);
	assert_string_equal(o.reason, "wrong_pin");
	assert_int_equal(auth(f, "2001", NULL, "000000", NOW + 1, &o), PIN_AUTH_WRONG);
	assert_int_equal(state_for(f, &f->carol).local_failures, 2);
	assert_int_equal(state_for(f, &f->carol).global_failures, 2);
	assert_int_equal(auth(f, "2001", NULL, "480913", NOW + 2, &o), PIN_AUTH_OK);
	assert_int_equal(state_for(f, &f->carol).local_failures, 0);
	assert_int_equal(state_for(f, &f->carol).global_failures, 0);
}

static double elapsed(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

/* The least time of three sign-ins (scheduling noise only adds time). */
static double min_time(struct fx *f, const char *who, int expect, const char **reason)
{
	struct pin_auth_out o;
	struct timespec a, b;
	double best = 1e9;

	for (int i = 0; i < 3; i++) {
		clock_gettime(CLOCK_MONOTONIC, &a);
		assert_int_equal(auth(f, who, NULL, "111222", NOW + i, &o), expect);
		clock_gettime(CLOCK_MONOTONIC, &b);
		if (elapsed(&a, &b) < best)
			best = elapsed(&a, &b);
		*reason = o.reason;
	}
	return best;
}

static void test_pin_auth_unknown_number_answers_like_a_wrong_pin(void **state)
{
	struct fx *f = *state;
	struct pin_auth_out o;
	const char *reason;
	double known, unknown;

	vault_pin_set_cost(14); /* enough work to see whether it is done */
	set_pin(f, &f->carol, "480913");
	known = min_time(f, "+14255550177", PIN_AUTH_WRONG, &reason);
	assert_string_equal(reason, "wrong_pin");
	unknown = min_time(f, "+19995550177", PIN_AUTH_WRONG, &reason);
	assert_string_equal(reason, "unknown");
	/* the same scrypt work: within a wide factor, not 100x apart */
	assert_true(unknown > known * 0.5);
	vault_pin_set_cost(10);
	assert_int_equal(auth(f, "9999", NULL, "111222", NOW, &o), PIN_AUTH_WRONG);
	assert_null(o.why);
	assert_int_equal(auth(f, "sip:nobody@example.test", NULL, "111222", NOW, &o),
			 PIN_AUTH_WRONG);
}

static void test_pin_auth_user_without_pin_or_disabled_is_wrong(void **state)
{
	struct fx *f = *state;
	struct pin_auth_out o;

	assert_int_equal(auth(f, "2001", NULL, "480913", NOW, &o), PIN_AUTH_WRONG);
	assert_string_equal(o.reason, "no_pin");
	set_pin(f, &f->carol, "480913");
	assert_int_equal(store_user_set_enabled(f->s, f->carol.uri, false), STORE_OK);
	assert_int_equal(auth(f, "2001", NULL, "480913", NOW, &o), PIN_AUTH_WRONG);
	assert_int_equal(store_user_set_enabled(f->s, f->carol.uri, true), STORE_OK);
	assert_int_equal(auth(f, "2001", NULL, "480913", NOW, &o), PIN_AUTH_OK);
}

static void test_pin_auth_shared_number_picks_the_user_whose_pin_it_is(void **state)
{
	struct fx *f = *state;
	struct pin_auth_out o;

	set_pin(f, &f->alice, "480913");
	set_pin(f, &f->bob, "583920");
	assert_int_equal(auth(f, "+14255550100", NULL, "583920", NOW, &o), PIN_AUTH_OK);
	assert_string_equal(o.user.uri, "sip:bob@example.test");
	assert_int_equal(auth(f, "+14255550100", NULL, "480913", NOW, &o), PIN_AUTH_OK);
	assert_string_equal(o.user.uri, "sip:alice@example.test");
	/* a wrong PIN on a shared number counts for each user it was tried on */
	assert_int_equal(auth(f, "+14255550100", NULL, "777000", NOW, &o), PIN_AUTH_WRONG);
	assert_int_equal(state_for(f, &f->alice).local_failures, 1);
	assert_int_equal(state_for(f, &f->bob).local_failures, 1);
}

static void test_pin_auth_ambiguous_number_and_pin_needs_the_extension(void **state)
{
	struct fx *f = *state;
	struct pin_auth_out o;

	set_pin(f, &f->alice, "480913");
	set_pin(f, &f->bob, "480913");
	assert_int_equal(auth(f, "+14255550100", NULL, "480913", NOW, &o), PIN_AUTH_AMBIGUOUS);
	assert_non_null(o.why);
	assert_non_null(strstr(o.why, "extension"));
	/* not counted as a failure */
	assert_int_equal(state_for(f, &f->alice).global_failures, 0);
	assert_int_equal(auth(f, "+14255550100;ext=1002", NULL, "480913", NOW, &o), PIN_AUTH_OK);
	assert_string_equal(o.user.uri, "sip:bob@example.test");
	assert_int_equal(auth(f, "+14255550100", "1001", "480913", NOW, &o), PIN_AUTH_OK);
	assert_string_equal(o.user.uri, "sip:alice@example.test");
	assert_int_equal(auth(f, "+14255550100;EXT=1001", NULL, "480913", NOW, &o), PIN_AUTH_OK);
	/* number and a wrong extension: nobody */
	assert_int_equal(auth(f, "+14255550100", "1003", "480913", NOW, &o), PIN_AUTH_WRONG);
	/* two different extensions given */
	assert_int_equal(auth(f, "+14255550100;ext=1001", "1002", "480913", NOW, &o),
			 PIN_AUTH_BAD_INPUT);
}

static void test_pin_auth_lockout_4_digits_then_unlock(void **state)
{
	struct fx *f = *state;
	struct pin_auth_out o;
	int i;

	set_pin(f, &f->carol, "4809");
	for (i = 0; i < 10; i++)
		assert_int_equal(auth(f, "2001", NULL, "1111", NOW + i, &o), PIN_AUTH_WRONG);
	/* locked: even the right PIN is refused, and nothing more is counted */
	assert_int_equal(auth(f, "2001", NULL, "4809", NOW + 10, &o), PIN_AUTH_LOCKED);
	assert_int_equal(o.retry_after, PIN_LOCK_TIME - 1);
	assert_int_equal(auth(f, "2001", NULL, "1111", NOW + 11, &o), PIN_AUTH_LOCKED);
	assert_int_equal(state_for(f, &f->carol).global_failures, 10);
	/* an hour later it works */
	assert_int_equal(auth(f, "2001", NULL, "4809", NOW + 9 + PIN_LOCK_TIME, &o), PIN_AUTH_OK);
	/* locked again, then unlocked by an administrator */
	for (i = 0; i < 10; i++)
		assert_int_equal(auth(f, "2001", NULL, "1111", NOW + 5000 + i, &o), PIN_AUTH_WRONG);
	assert_int_equal(auth(f, "2001", NULL, "4809", NOW + 5010, &o), PIN_AUTH_LOCKED);
	assert_int_equal(pin_unlock(f->s, f->carol.id), STORE_OK);
	assert_int_equal(auth(f, "2001", NULL, "4809", NOW + 5011, &o), PIN_AUTH_OK);
	assert_int_equal(pin_unlock(f->s, f->bob.id), STORE_NOTFOUND); /* no PIN */
}

/* The three steps (begin on the store's thread, work anywhere, end) give
 * what pin_authenticate gives and count the same. */
static void test_pin_auth_in_steps_counts_like_one_call(void **state)
{
	struct fx *f = *state;
	struct pin_attempt *a;
	struct pin_auth_out o;

	set_pin(f, &f->carol, "480913");
	assert_int_equal(pin_auth_begin(f->s, "2001", NULL, "111111", 6, NOW, &a, &o), 0);
	assert_non_null(a);
	assert_int_equal(pin_auth_in_flight(), 1);
	pin_auth_work(a);
	assert_int_equal(pin_auth_end(f->s, a, NOW, &o), PIN_AUTH_WRONG);
	assert_string_equal(o.reason, "wrong_pin");
	assert_int_equal(state_for(f, &f->carol).local_failures, 1);
	assert_int_equal(pin_auth_in_flight(), 0);
	assert_int_equal(pin_auth_begin(f->s, "2001", NULL, "480913", 6, NOW + 1, &a, &o), 0);
	pin_auth_work(a);
	assert_int_equal(pin_auth_end(f->s, a, NOW + 1, &o), PIN_AUTH_OK);
	assert_string_equal(o.user.uri, "sip:carol@example.test");
	assert_int_equal(state_for(f, &f->carol).local_failures, 0);
	/* a final answer from begin holds nothing */
	assert_int_equal(pin_auth_begin(f->s, "2001", NULL, "12a", 3, NOW, &a, &o),
			 PIN_AUTH_BAD_INPUT);
	assert_null(a);
	assert_int_equal(pin_auth_in_flight(), 0);
}

/* PROTOCOLS.md §3 under concurrency: while one attempt for a user is under
 * way, another for the same user is refused (busy) without being counted
 * or looking at the PIN, so parallel guesses cannot all pass the lock check. */
static void test_pin_auth_parallel_attempts_for_one_user_cannot_race_the_lockout(void **state)
{
	struct fx *f = *state;
	struct pin_attempt *a[12], *b;
	struct pin_auth_out o;
	int wrong = 0, busy = 0, i;

	set_pin(f, &f->carol, "4809"); /* 4 digits: 10 local failures lock */
	for (i = 0; i < 12; i++) {
		int rc = pin_auth_begin(f->s, "2001", NULL, "1111", 4, NOW, &a[i], &o);
		if (rc == PIN_AUTH_BUSY) {
			assert_null(a[i]);
			assert_string_equal(o.reason, "busy");
			busy++;
		} else {
			assert_int_equal(rc, 0);
		}
	}
	assert_int_equal(busy, 11); /* only the first one runs */
	/* another user on another number is not held up */
	set_pin(f, &f->alice, "975310");
	assert_int_equal(
	    pin_auth_begin(f->s, "sip:alice@example.test", NULL, "975310", 6, NOW, &b, &o), 0);
	pin_auth_work(b);
	assert_int_equal(pin_auth_end(f->s, b, NOW, &o), PIN_AUTH_OK);
	/* bob (shared number + extension) is held while his attempt runs */
	assert_int_equal(pin_auth_begin(f->s, "+14255550100", "1002", "111111", 6, NOW, &b, &o), 0);
	assert_int_equal(pin_auth_begin(f->s, "+14255550100", "1002", "111111", 6, NOW, &a[1], &o),
			 PIN_AUTH_BUSY);
	pin_auth_cancel(b); /* cancelled: nothing counted, the user free again */
	assert_int_equal(pin_auth_in_flight(), 1);
	pin_auth_work(a[0]);
	assert_int_equal(pin_auth_end(f->s, a[0], NOW, &o), PIN_AUTH_WRONG);
	assert_int_equal(state_for(f, &f->carol).local_failures, 1);
	/* one at a time: the 11th is refused as locked, never a 12th guess */
	for (i = 1; i < 12; i++) {
		int rc = pin_auth_begin(f->s, "2001", NULL, "1111", 4, NOW + i, &a[0], &o);
		if (rc == 0) {
			pin_auth_work(a[0]);
			rc = pin_auth_end(f->s, a[0], NOW + i, &o);
		}
		if (rc == PIN_AUTH_WRONG)
			wrong++;
		else
			assert_int_equal(rc, PIN_AUTH_LOCKED);
	}
	assert_int_equal(wrong, 9);
	assert_int_equal(state_for(f, &f->carol).global_failures, 10);
	assert_int_equal(pin_auth_in_flight(), 0);
}

static void test_pin_auth_global_lock_stays_until_unlock(void **state)
{
	struct fx *f = *state;
	struct store_pin_state st;
	struct pin_auth_out o;

	set_pin(f, &f->carol, "48091");
	st = state_for(f, &f->carol);
	st.global_failures = 999;
	assert_int_equal(store_pin_set_state(f->s, &st), STORE_OK);
	assert_int_equal(auth(f, "2001", NULL, "11111", NOW, &o), PIN_AUTH_WRONG);
	assert_true(state_for(f, &f->carol).admin_locked);
	assert_int_equal(auth(f, "2001", NULL, "48091", NOW + 86400 * 30, &o), PIN_AUTH_LOCKED);
	assert_int_equal(o.retry_after, 0);
	assert_int_equal(pin_unlock(f->s, f->carol.id), STORE_OK);
	assert_int_equal(auth(f, "2001", NULL, "48091", NOW + 86400 * 30, &o), PIN_AUTH_OK);
}

static void test_pin_auth_store_outage_is_unavailable_not_wrong(void **state)
{
	struct fx *f = *state;
	struct pin_auth_out o;
	sqlite3 *db;

	set_pin(f, &f->carol, "480913");
	exec_sql(f, "ALTER TABLE pins RENAME TO pins_gone");
	assert_int_equal(auth(f, "2001", NULL, "480913", NOW, &o), PIN_AUTH_UNAVAILABLE);
	assert_int_equal(auth(f, "2001", NULL, "000000", NOW, &o), PIN_AUTH_UNAVAILABLE);
	exec_sql(f, "ALTER TABLE pins_gone RENAME TO pins");
	exec_sql(f, "ALTER TABLE users RENAME TO users_gone");
	assert_int_equal(auth(f, "2001", NULL, "480913", NOW, &o), PIN_AUTH_UNAVAILABLE);
	assert_int_equal(auth(f, "sip:carol@example.test", NULL, "480913", NOW, &o),
			 PIN_AUTH_UNAVAILABLE);
	exec_sql(f, "ALTER TABLE users_gone RENAME TO users");
	/* a wrong PIN that cannot be counted is not answered "wrong" */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(auth(f, "2001", NULL, "000000", NOW, &o), PIN_AUTH_UNAVAILABLE);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
	assert_int_equal(auth(f, "2001", NULL, "480913", NOW, &o), PIN_AUTH_OK);
}

static void test_pin_auth_bad_input_is_400_material(void **state)
{
	struct fx *f = *state;
	struct pin_auth_out o;
	static const char *const who[] = {
	    "alice", "+12", "12a4", "", "+1425;ext=x", "+14255550100;foo=1", "sip:"};

	set_pin(f, &f->carol, "480913");
	for (size_t i = 0; i < sizeof(who) / sizeof(who[0]); i++) {
		o.why = NULL;
		assert_int_equal(auth(f, who[i], NULL, "480913", NOW, &o), PIN_AUTH_BAD_INPUT);
		assert_non_null(o.why);
	}
	assert_int_equal(auth(f, "2001", NULL, "48O913", NOW, &o), PIN_AUTH_BAD_INPUT);
	assert_int_equal(auth(f, "2001", NULL, "", NOW, &o), PIN_AUTH_BAD_INPUT);
	assert_int_equal(auth(f, "2001", NULL, "1234567890123456789012345", NOW, &o),
			 PIN_AUTH_BAD_INPUT);
	assert_int_equal(auth(f, "2001", "12x", "480913", NOW, &o), PIN_AUTH_BAD_INPUT);
	/* none of it was counted */
	assert_int_equal(state_for(f, &f->carol).global_failures, 0);
}

static void test_pin_phone_and_extension_stored_and_found(void **state)
{
	struct fx *f = *state;
	char phone[STORE_PHONE_MAX], ext[STORE_EXTENSION_MAX];

	assert_int_equal(store_user_get_phone(f->s, f->alice.uri, phone, ext), STORE_OK);
	assert_string_equal(phone, "+14255550100");
	assert_string_equal(ext, "1001");
	/* NULL keeps a field, '' clears it */
	assert_int_equal(store_user_set_phone(f->s, f->alice.uri, NULL, ""), STORE_OK);
	assert_int_equal(store_user_get_phone(f->s, f->alice.uri, phone, ext), STORE_OK);
	assert_string_equal(phone, "+14255550100");
	assert_string_equal(ext, "");
	assert_int_equal(store_user_set_phone(f->s, "sip:nobody@example.test", "+1", NULL),
			 STORE_NOTFOUND);
	assert_int_equal(store_user_get_phone(f->s, "sip:nobody@example.test", phone, ext),
			 STORE_NOTFOUND);
	assert_int_equal(
	    store_user_set_phone(f->s, f->alice.uri, "+1234567890123456789012345678901", NULL),
	    STORE_INVALID);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pin_policy_accepts_a_good_pin),
	    cmocka_unit_test(test_pin_policy_minimum_length_is_configurable),
	    cmocka_unit_test(test_pin_policy_refuses_more_than_24_digits),
	    cmocka_unit_test(test_pin_policy_digits_only),
	    cmocka_unit_test(test_pin_policy_refuses_repeats),
	    cmocka_unit_test(test_pin_policy_refuses_runs),
	    cmocka_unit_test(test_pin_policy_refuses_the_phone_number_and_its_tail),
	    cmocka_unit_test(test_pin_policy_refuses_the_extension_and_its_tail),
	    cmocka_unit_test(test_pin_policy_messages_name_the_rule),
	    cmocka_unit_test(test_pin_phone_numbers_normalise_to_e164),
	    cmocka_unit_test(test_pin_phone_numbers_refused_with_a_reason),
	    cmocka_unit_test(test_pin_extensions_are_digits),
	    cmocka_unit_test(test_pin_kdf_matches_rfc7914_vector),
	    cmocka_unit_test(test_pin_params_round_trip_and_bounds),
	    T(test_pin_hash_is_salted_scrypt_with_its_parameters),
	    T(test_pin_verify_uses_the_recorded_parameters),
	    T(test_pin_tampered_parameters_are_unavailable_not_wrong),
	    cmocka_unit_test(test_pin_lockout_limits_by_length_class),
	    cmocka_unit_test(test_pin_lockout_unreadable_params_get_the_strictest_limits),
	    cmocka_unit_test(test_pin_lockout_local_window_is_30_minutes),
	    cmocka_unit_test(test_pin_lockout_global_needs_an_administrator),
	    T(test_pin_auth_by_number_extension_or_uri),
	    T(test_pin_auth_wrong_pin_is_counted_and_success_resets),
	    T(test_pin_auth_unknown_number_answers_like_a_wrong_pin),
	    T(test_pin_auth_user_without_pin_or_disabled_is_wrong),
	    T(test_pin_auth_shared_number_picks_the_user_whose_pin_it_is),
	    T(test_pin_auth_ambiguous_number_and_pin_needs_the_extension),
	    T(test_pin_auth_lockout_4_digits_then_unlock),
	    T(test_pin_auth_global_lock_stays_until_unlock),
	    T(test_pin_auth_in_steps_counts_like_one_call),
	    T(test_pin_auth_parallel_attempts_for_one_user_cannot_race_the_lockout),
	    T(test_pin_auth_store_outage_is_unavailable_not_wrong),
	    T(test_pin_auth_bad_input_is_400_material),
	    T(test_pin_phone_and_extension_stored_and_found),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
