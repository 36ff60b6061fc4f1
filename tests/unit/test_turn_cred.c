/*
 * TURN credential primitives: long-term keys, USERHASH, coturn-compatible
 * ephemeral credentials (the expected values come from a second
 * implementation, python3's hmac/hashlib/base64 run through popen) and the
 * stateless nonces (fresh, stale, tampered, other key or bind, from the
 * future, the security-feature cookie).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "turn/cred.h"

#define SECRET STR_LIT("north-wind-secret")
#define NOW    1700000000

static const uint8_t nkey[32] = "nonce-key-from-the-vault-32bytes";

/* Run a python3 one-liner (arguments passed in the environment) and read one line. */
static void python(const char *code, char *out, size_t cap)
{
	char cmd[1024];
	FILE *f;
	size_t n;

	snprintf(cmd, sizeof(cmd), "python3 -c '%s'", code);
	assert_non_null(f = popen(cmd, "r"));
	assert_non_null(fgets(out, (int)cap, f));
	assert_int_equal(pclose(f), 0);
	n = strlen(out);
	while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		out[--n] = '\0';
}

static void py_password(const char *secret, const char *username, char *out, size_t cap)
{
	setenv("T_SECRET", secret, 1);
	setenv("T_USER", username, 1);
	python("import hmac,hashlib,base64,os;"
	       "print(base64.b64encode(hmac.new(os.environb[b\"T_SECRET\"],"
	       "os.environb[b\"T_USER\"],hashlib.sha1).digest()).decode())",
	       out, cap);
}

static void hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

static void test_cred_key_sha256_and_userhash_match_a_second_implementation(void **state)
{
	uint8_t key[TURN_KEY_MAX];
	char want[128], got[128];

	(void)state;
	assert_int_equal(turn_cred_key(TURN_PWALG_SHA256, STR_LIT("bob"), STR_LIT("example.org"),
				       STR_LIT("s3cret"), key),
			 32);
	hex(key, 32, got);
	python("import hashlib;print(hashlib.sha256(b\"bob:example.org:s3cret\").hexdigest())",
	       want, sizeof(want));
	assert_string_equal(got, want);
	assert_int_equal(turn_cred_key(TURN_PWALG_MD5, STR_LIT("bob"), STR_LIT("example.org"),
				       STR_LIT("s3cret"), key),
			 16);
	hex(key, 16, got);
	python("import hashlib;print(hashlib.md5(b\"bob:example.org:s3cret\").hexdigest())", want,
	       sizeof(want));
	assert_string_equal(got, want);
	assert_int_equal(turn_cred_userhash(STR_LIT("bob"), STR_LIT("example.org"), key), 0);
	hex(key, 32, got);
	python("import hashlib;print(hashlib.sha256(b\"bob:example.org\").hexdigest())", want,
	       sizeof(want));
	assert_string_equal(got, want);
	assert_int_equal(
	    turn_cred_key((enum turn_pwalg)3, STR_LIT("bob"), STR_LIT("r"), STR_LIT("p"), key), -1);
}

static void test_ephemeral_credentials_are_coturn_compatible(void **state)
{
	char user[TURN_EPH_USERNAME_MAX + 1], pw[TURN_EPH_PASSWORD_LEN + 1], want[64];
	int64_t exp;
	struct str part;

	(void)state;
	assert_int_equal(turn_cred_ephemeral_make(SECRET, NOW + 3600, STR_LIT("alice@example.org"),
						  user, sizeof(user), pw, sizeof(pw)),
			 TURN_CRED_OK);
	assert_string_equal(user, "1700003600:alice@example.org");
	py_password("north-wind-secret", user, want, sizeof(want));
	assert_string_equal(pw, want);
	assert_int_equal(strlen(pw), TURN_EPH_PASSWORD_LEN);
	assert_int_equal(turn_cred_ephemeral_check(SECRET, str_cstr(user), str_cstr(pw), NOW),
			 TURN_CRED_OK);
	assert_int_equal(turn_cred_ephemeral_parse(str_cstr(user), &exp, &part), 0);
	assert_int_equal(exp, NOW + 3600);
	assert_int_equal(part.len, strlen("alice@example.org"));

	/* a username that is just the expiry */
	assert_int_equal(turn_cred_ephemeral_make(SECRET, NOW + 60, STR_NULL, user, sizeof(user),
						  pw, sizeof(pw)),
			 TURN_CRED_OK);
	assert_string_equal(user, "1700000060");
	py_password("north-wind-secret", user, want, sizeof(want));
	assert_string_equal(pw, want);
	assert_int_equal(turn_cred_ephemeral_check(SECRET, str_cstr(user), str_cstr(pw), NOW),
			 TURN_CRED_OK);
}

static void test_ephemeral_accepts_coturn_user_then_expiry_order(void **state)
{
	char want[64];
	int64_t exp;
	struct str part;

	(void)state;
	py_password("north-wind-secret", "carol:1700000100", want, sizeof(want));
	assert_int_equal(
	    turn_cred_ephemeral_check(SECRET, STR_LIT("carol:1700000100"), str_cstr(want), NOW),
	    TURN_CRED_OK);
	assert_int_equal(turn_cred_ephemeral_parse(STR_LIT("carol:1700000100"), &exp, &part), 0);
	assert_int_equal(exp, 1700000100);
	assert_int_equal(part.len, 5);
}

static void test_ephemeral_expired_credential_is_a_distinct_error(void **state)
{
	char user[64], pw[32];

	(void)state;
	assert_int_equal(turn_cred_ephemeral_make(SECRET, NOW, STR_LIT("alice"), user, sizeof(user),
						  pw, sizeof(pw)),
			 TURN_CRED_OK);
	/* expiry == now is expired (coturn accepts only ts > now) */
	assert_int_equal(turn_cred_ephemeral_check(SECRET, str_cstr(user), str_cstr(pw), NOW),
			 TURN_CRED_EXPIRED);
	assert_int_equal(turn_cred_ephemeral_check(SECRET, str_cstr(user), str_cstr(pw), NOW - 1),
			 TURN_CRED_OK);
	/* expired wins over a wrong password, so the answer does not probe the secret */
	assert_int_equal(turn_cred_ephemeral_check(SECRET, str_cstr(user), STR_LIT("x"), NOW + 1),
			 TURN_CRED_EXPIRED);
}

static void test_ephemeral_wrong_secret_or_password_is_a_mismatch(void **state)
{
	char user[64], pw[32];

	(void)state;
	assert_int_equal(turn_cred_ephemeral_make(SECRET, NOW + 10, STR_LIT("alice"), user,
						  sizeof(user), pw, sizeof(pw)),
			 TURN_CRED_OK);
	assert_int_equal(
	    turn_cred_ephemeral_check(STR_LIT("other"), str_cstr(user), str_cstr(pw), NOW),
	    TURN_CRED_MISMATCH);
	pw[3] ^= 1;
	assert_int_equal(turn_cred_ephemeral_check(SECRET, str_cstr(user), str_cstr(pw), NOW),
			 TURN_CRED_MISMATCH);
	pw[3] ^= 1;
	assert_int_equal(turn_cred_ephemeral_check(SECRET, str_cstr(user),
						   str_make(pw, TURN_EPH_PASSWORD_LEN - 1), NOW),
			 TURN_CRED_MISMATCH);
	/* the username is under the MAC: another user with the same password fails */
	user[strlen(user) - 1] = 'X';
	assert_int_equal(turn_cred_ephemeral_check(SECRET, str_cstr(user), str_cstr(pw), NOW),
			 TURN_CRED_MISMATCH);
}

static void test_ephemeral_refuses_usernames_without_a_plain_expiry(void **state)
{
	static const char *const bad[] = {
	    "",
	    "alice",
	    ":alice",
	    "alice:",
	    "12a:bob",
	    "-5:bob",
	    "+5:bob",
	    "bob:+5",
	    "bob:12 ",
	    "99999999999999999999:bob",
	    "9223372036854775808",
	};
	int64_t exp;
	struct str part;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(turn_cred_ephemeral_parse(str_cstr(bad[i]), &exp, &part),
				 TURN_CRED_MALFORMED);
		assert_int_equal(
		    turn_cred_ephemeral_check(SECRET, str_cstr(bad[i]), STR_LIT("pw"), NOW),
		    TURN_CRED_MALFORMED);
	}
	assert_int_equal(turn_cred_ephemeral_parse(STR_LIT("9223372036854775807"), &exp, &part), 0);
}

static void test_ephemeral_make_refuses_bad_input_and_small_buffers(void **state)
{
	char user[16], pw[32];

	(void)state;
	assert_int_equal(turn_cred_ephemeral_make(SECRET, NOW, STR_LIT("a:b"), user, sizeof(user),
						  pw, sizeof(pw)),
			 TURN_CRED_MALFORMED);
	assert_int_equal(
	    turn_cred_ephemeral_make(SECRET, 0, STR_LIT("a"), user, sizeof(user), pw, sizeof(pw)),
	    TURN_CRED_MALFORMED);
	assert_int_equal(turn_cred_ephemeral_make(SECRET, NOW, STR_LIT("a-rather-long-user"), user,
						  sizeof(user), pw, sizeof(pw)),
			 TURN_CRED_ERROR);
	assert_string_equal(user, "");
	assert_int_equal(
	    turn_cred_ephemeral_make(SECRET, NOW, STR_LIT("a"), user, sizeof(user), pw, 28),
	    TURN_CRED_ERROR);
	assert_string_equal(user, "");
}

static void test_ephemeral_key_is_the_long_term_key_of_the_derived_password(void **state)
{
	char user[64], pw[32];
	uint8_t k1[TURN_KEY_MAX], k2[TURN_KEY_MAX];

	(void)state;
	turn_cred_ephemeral_make(SECRET, NOW + 100, STR_LIT("dave"), user, sizeof(user), pw,
				 sizeof(pw));
	assert_int_equal(turn_cred_ephemeral_key(SECRET, str_cstr(user), STR_LIT("example.org"),
						 TURN_PWALG_MD5, NOW, k1),
			 16);
	assert_int_equal(
	    turn_cred_key(TURN_PWALG_MD5, str_cstr(user), STR_LIT("example.org"), str_cstr(pw), k2),
	    16);
	assert_memory_equal(k1, k2, 16);
	assert_int_equal(turn_cred_ephemeral_key(SECRET, str_cstr(user), STR_LIT("example.org"),
						 TURN_PWALG_SHA256, NOW, k1),
			 32);
	assert_int_equal(turn_cred_ephemeral_key(SECRET, str_cstr(user), STR_LIT("example.org"),
						 TURN_PWALG_MD5, NOW + 100, k1),
			 TURN_CRED_EXPIRED);
	assert_int_equal(turn_cred_ephemeral_key(SECRET, STR_LIT("dave"), STR_LIT("example.org"),
						 TURN_PWALG_MD5, NOW, k1),
			 TURN_CRED_MALFORMED);
}

static void make_nonce(uint32_t features, int64_t at, char *out)
{
	int n = turn_nonce_make(nkey, sizeof(nkey), STR_LIT("example.org"), features, at, out,
				TURN_NONCE_MAX + 1);

	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(out));
}

static void test_nonce_fresh_is_ok_and_old_is_stale(void **state)
{
	char nonce[TURN_NONCE_MAX + 1];

	(void)state;
	make_nonce(0, NOW, nonce);
	assert_int_equal(strlen(nonce), 32);
	assert_int_equal(turn_nonce_check(nkey, sizeof(nkey), STR_LIT("example.org"),
					  str_cstr(nonce), 600, NOW + 599, NULL),
			 TURN_NONCE_OK);
	assert_int_equal(turn_nonce_check(nkey, sizeof(nkey), STR_LIT("example.org"),
					  str_cstr(nonce), 600, NOW + 600, NULL),
			 TURN_NONCE_STALE);
	/* slightly ahead (a pool peer's clock) is fine, far ahead is not ours */
	assert_int_equal(turn_nonce_check(nkey, sizeof(nkey), STR_LIT("example.org"),
					  str_cstr(nonce), 600, NOW - TURN_NONCE_SKEW, NULL),
			 TURN_NONCE_OK);
	assert_int_equal(turn_nonce_check(nkey, sizeof(nkey), STR_LIT("example.org"),
					  str_cstr(nonce), 600, NOW - TURN_NONCE_SKEW - 1, NULL),
			 TURN_NONCE_INVALID);
}

static void test_nonce_tampered_or_foreign_is_invalid(void **state)
{
	char nonce[TURN_NONCE_MAX + 1];
	uint8_t other[32];

	(void)state;
	make_nonce(0, NOW, nonce);
	memcpy(other, nkey, sizeof(other));
	other[0] ^= 1;
	assert_int_equal(turn_nonce_check(other, sizeof(other), STR_LIT("example.org"),
					  str_cstr(nonce), 600, NOW, NULL),
			 TURN_NONCE_INVALID);
	assert_int_equal(turn_nonce_check(nkey, sizeof(nkey), STR_LIT("example.com"),
					  str_cstr(nonce), 600, NOW, NULL),
			 TURN_NONCE_INVALID);
	/* every character matters, and a stale-looking forgery is invalid, not stale */
	for (size_t i = 0; i < strlen(nonce); i++) {
		char saved = nonce[i];
		nonce[i] = saved == 'A' ? 'B' : 'A';
		assert_int_equal(turn_nonce_check(nkey, sizeof(nkey), STR_LIT("example.org"),
						  str_cstr(nonce), 600, NOW + 10000, NULL),
				 TURN_NONCE_INVALID);
		nonce[i] = saved;
	}
	assert_int_equal(turn_nonce_check(nkey, sizeof(nkey), STR_LIT("example.org"),
					  str_make(nonce, 31), 600, NOW, NULL),
			 TURN_NONCE_INVALID);
	assert_int_equal(turn_nonce_check(nkey, sizeof(nkey), STR_LIT("example.org"), STR_LIT(""),
					  600, NOW, NULL),
			 TURN_NONCE_INVALID);
	assert_int_equal(turn_nonce_check(nkey, sizeof(nkey), STR_LIT("example.org"),
					  STR_LIT("obMatJos2AAAB"), 600, NOW, NULL),
			 TURN_NONCE_INVALID);
}

static void test_nonce_carries_the_security_feature_cookie(void **state)
{
	char nonce[TURN_NONCE_MAX + 1];
	uint32_t feat = 99;

	(void)state;
	make_nonce(TURN_FEATURE_PASSWORD_ALGORITHMS | TURN_FEATURE_USERNAME_ANONYMITY, NOW, nonce);
	assert_int_equal(strlen(nonce), TURN_NONCE_MAX);
	assert_memory_equal(nonce, "obMatJos2AAAD", 13);
	assert_int_equal(turn_nonce_features(str_cstr(nonce), &feat), 0);
	assert_int_equal(feat, 3);
	feat = 0;
	assert_int_equal(turn_nonce_check(nkey, sizeof(nkey), STR_LIT("example.org"),
					  str_cstr(nonce), 600, NOW, &feat),
			 TURN_NONCE_OK);
	assert_int_equal(feat, 3);
	/* the feature bits are under the MAC: a bid-down to "AAAB" is detected */
	nonce[12] = 'B';
	assert_int_equal(turn_nonce_check(nkey, sizeof(nkey), STR_LIT("example.org"),
					  str_cstr(nonce), 600, NOW, &feat),
			 TURN_NONCE_INVALID);
	assert_int_equal(feat, 0);
	/* cookie removed */
	assert_int_equal(turn_nonce_check(nkey, sizeof(nkey), STR_LIT("example.org"),
					  str_cstr(nonce + 13), 600, NOW, NULL),
			 TURN_NONCE_INVALID);
	assert_int_equal(turn_nonce_features(STR_LIT("obMatJos2A"), &feat), -1);
	assert_int_equal(turn_nonce_features(STR_LIT("f//499k954d6OL34oL9FSTvy64sA"), &feat), -1);
	assert_int_equal(turn_nonce_features(STR_LIT("obMatJos2A*AC"), &feat), -1);
}

static void test_nonce_make_refuses_bad_arguments(void **state)
{
	char nonce[TURN_NONCE_MAX + 1], big[TURN_NONCE_BIND_MAX + 1];

	(void)state;
	memset(big, 'b', sizeof(big));
	assert_int_equal(
	    turn_nonce_make(nkey, sizeof(nkey), STR_NULL, 0x1000000, NOW, nonce, sizeof(nonce)),
	    -1);
	assert_int_equal(turn_nonce_make(nkey, sizeof(nkey), STR_NULL, 0, -1, nonce, sizeof(nonce)),
			 -1);
	assert_int_equal(turn_nonce_make(nkey, 8, STR_NULL, 0, NOW, nonce, sizeof(nonce)), -1);
	assert_int_equal(turn_nonce_make(nkey, sizeof(nkey), str_make(big, sizeof(big)), 0, NOW,
					 nonce, sizeof(nonce)),
			 -1);
	assert_int_equal(turn_nonce_make(nkey, sizeof(nkey), STR_NULL, 0, NOW, nonce, 32), -1);
	assert_int_equal(
	    turn_nonce_make(nkey, sizeof(nkey), STR_NULL, 0, NOW, nonce, sizeof(nonce)), 32);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cred_key_sha256_and_userhash_match_a_second_implementation),
	    cmocka_unit_test(test_ephemeral_credentials_are_coturn_compatible),
	    cmocka_unit_test(test_ephemeral_accepts_coturn_user_then_expiry_order),
	    cmocka_unit_test(test_ephemeral_expired_credential_is_a_distinct_error),
	    cmocka_unit_test(test_ephemeral_wrong_secret_or_password_is_a_mismatch),
	    cmocka_unit_test(test_ephemeral_refuses_usernames_without_a_plain_expiry),
	    cmocka_unit_test(test_ephemeral_make_refuses_bad_input_and_small_buffers),
	    cmocka_unit_test(test_ephemeral_key_is_the_long_term_key_of_the_derived_password),
	    cmocka_unit_test(test_nonce_fresh_is_ok_and_old_is_stale),
	    cmocka_unit_test(test_nonce_tampered_or_foreign_is_invalid),
	    cmocka_unit_test(test_nonce_carries_the_security_feature_cookie),
	    cmocka_unit_test(test_nonce_make_refuses_bad_arguments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
