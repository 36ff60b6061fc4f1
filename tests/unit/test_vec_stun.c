/*
 * Published STUN test vectors: RFC 5769 §2.1-§2.4 (request with short-term
 * MESSAGE-INTEGRITY and FINGERPRINT, IPv4 and IPv6 responses, long-term
 * request) and RFC 8489 Appendix B.1 as corrected by Errata 6268
 * (MESSAGE-INTEGRITY-SHA256, USERHASH, PASSWORD-ALGORITHM SHA-256). Each is
 * parsed, its integrity and fingerprint checked with the right key and
 * refused with a wrong one, and, where the vector pads with zeros, rebuilt
 * byte for byte with the builder. Also the RFC 2202 / RFC 4231 HMAC vectors
 * (short and longer-than-a-block keys) for the HMACs underneath.
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
#include "turn/stun.h"

/* RFC 5769 §2.1 Sample Request (USERNAME and SOFTWARE padded with spaces) */
static const char req_hex[] =
    "00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae"
    "80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74"
    "00 24 00 04 6e 00 01 ff"
    "80 29 00 08 93 2f f9 b1 51 26 3b 36"
    "00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20"
    "00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2"
    "80 28 00 04 e5 7a 3b cf";

/* RFC 5769 §2.2 Sample IPv4 Response */
static const char v4_hex[] =
    "01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae"
    "80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20"
    "00 20 00 08 00 01 a1 47 e1 12 a6 43"
    "00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7"
    "80 28 00 04 c0 7d 4c 96";

/* RFC 5769 §2.3 Sample IPv6 Response */
static const char v6_hex[] =
    "01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae"
    "80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20"
    "00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9"
    "00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41"
    "80 28 00 04 c8 fb 0b 4c";

/* RFC 5769 §2.4 Sample Request with Long-Term Authentication */
static const char lt_hex[] =
    "00 01 00 60 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e"
    "00 06 00 12 e3 83 9e e3 83 88 e3 83 aa e3 83 83 e3 82 af e3 82 b9 00 00"
    "00 15 00 1c 66 2f 2f 34 39 39 6b 39 35 34 64 36 4f 4c 33 34 6f 4c 39 46 53 54 76 79 36 34 73 "
    "41"
    "00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00"
    "00 08 00 14 f6 70 24 65 6d d6 4a 3e 02 b8 e0 71 2e 85 c9 a2 8c a8 96 66";

/* RFC 8489 Appendix B.1 as corrected by Errata 6268 */
static const char b1_hex[] =
    "00 01 00 90 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e"
    "00 1e 00 20 4a 3c f3 8f ef 69 92 bd a9 52 c6 78 04 17 da 0f 24 81 94 15 56 9e 60 b2"
    "05 c4 6e 41 40 7f 17 04"
    "00 15 00 29 6f 62 4d 61 74 4a 6f 73 32 41 41 41 43 66 2f 2f 34 39 39 6b 39 35 34 64"
    "36 4f 4c 33 34 6f 4c 39 46 53 54 76 79 36 34 73 41 00 00 00"
    "00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00"
    "00 1d 00 04 00 02 00 00"
    "00 1c 00 20 b5 c7 bf 00 5b 6c 52 a2 1c 51 c5 e8 92 f8 19 24 13 62 96 cb 92 7c 43 14"
    "93 09 27 8c c6 51 8e 65";

#define SHORT_TERM  "VOkJxbRl1RmTxUk/WvJxBt"
#define MATRIX_USER "\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83\xe3\x82\xaf\xe3\x82\xb9"
#define LT_NONCE    "f//499k954d6OL34oL9FSTvy64sA"
#define B1_NONCE    "obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA"

static size_t unhex(const char *h, uint8_t *out, size_t cap)
{
	size_t n = 0;
	int hi = -1;

	for (; *h; h++) {
		int v;
		if (*h == ' ')
			continue;
		v = (*h >= '0' && *h <= '9') ? *h - '0' : *h - 'a' + 10;
		assert_true(v >= 0 && v < 16);
		if (hi < 0) {
			hi = v;
		} else {
			assert_true(n < cap);
			out[n++] = (uint8_t)(hi << 4 | v);
			hi = -1;
		}
	}
	assert_int_equal(hi, -1);
	return n;
}

static void assert_str(struct str s, const char *want)
{
	assert_int_equal(s.len, strlen(want));
	assert_memory_equal(s.p, want, s.len);
}

static void test_rfc5769_request_parses_with_short_term_integrity_and_fingerprint(void **state)
{
	uint8_t buf[256], bad[256];
	size_t n = unhex(req_hex, buf, sizeof(buf));
	struct stun_msg m;
	struct str s;
	uint32_t prio;

	(void)state;
	assert_int_equal(n, 108);
	assert_int_equal(stun_parse(buf, n, &m), 0);
	assert_int_equal(m.method, STUN_METHOD_BINDING);
	assert_int_equal(m.cls, STUN_REQUEST);
	assert_int_equal(m.nattrs, 6);
	assert_int_equal(m.nunknown, 0); /* PRIORITY is comprehension-required and known */
	assert_int_equal(stun_get_text(&m, stun_find(&m, STUN_ATTR_SOFTWARE), STUN_MAX_TEXT, &s),
			 0);
	assert_str(s, "STUN test client");
	assert_int_equal(stun_get_username(&m, &s), 0);
	assert_str(s, "evtj:h6vY");
	assert_int_equal(stun_get_u32(&m, stun_find(&m, STUN_ATTR_PRIORITY), &prio), 0);
	assert_int_equal(prio, 0x6e0001ff);
	assert_non_null(stun_find(&m, STUN_ATTR_ICE_CONTROLLED));
	assert_int_equal(stun_check_fingerprint(&m), 0);
	assert_int_equal(
	    stun_check_integrity(&m, (const uint8_t *)SHORT_TERM, sizeof(SHORT_TERM) - 1), 0);
	assert_int_equal(stun_check_integrity(&m, (const uint8_t *)"VOkJxbRl1RmTxUk/WvJxBu", 22),
			 STUN_E_INTEGRITY);
	assert_int_equal(stun_check_integrity_sha256(&m, (const uint8_t *)SHORT_TERM, 22),
			 STUN_E_ABSENT);

	/* the same bytes with one bit of PRIORITY changed */
	memcpy(bad, buf, n);
	bad[44] ^= 0x01;
	assert_int_equal(stun_parse(bad, n, &m), 0);
	assert_int_equal(stun_check_integrity(&m, (const uint8_t *)SHORT_TERM, 22),
			 STUN_E_INTEGRITY);
	assert_int_equal(stun_check_fingerprint(&m), STUN_E_FINGERPRINT);
}

static void check_response(const char *hex, const struct stun_addr *want)
{
	uint8_t buf[256], out[256];
	size_t n = unhex(hex, buf, sizeof(buf));
	const struct stun_attr *a;
	struct stun_builder b;
	struct stun_addr got;
	struct stun_msg m;
	struct str s;

	assert_int_equal(stun_parse(buf, n, &m), 0);
	assert_int_equal(m.method, STUN_METHOD_BINDING);
	assert_int_equal(m.cls, STUN_SUCCESS);
	assert_int_equal(stun_get_text(&m, stun_find(&m, STUN_ATTR_SOFTWARE), STUN_MAX_TEXT, &s),
			 0);
	assert_str(s, "test vector");
	assert_non_null(a = stun_find(&m, STUN_ATTR_XOR_MAPPED_ADDRESS));
	assert_int_equal(stun_get_xor_addr(&m, a, &got), 0);
	assert_int_equal(got.family, want->family);
	assert_int_equal(got.port, want->port);
	assert_memory_equal(got.ip, want->ip, want->family == STUN_AF_IPV4 ? 4 : 16);
	assert_int_equal(stun_check_integrity(&m, (const uint8_t *)SHORT_TERM, 22), 0);
	assert_int_equal(stun_check_fingerprint(&m), 0);

	/* the builder encodes the address to the same bytes */
	assert_int_equal(
	    stun_build_init(&b, out, sizeof(out), STUN_METHOD_BINDING, STUN_SUCCESS, m.tid), 0);
	assert_int_equal(stun_build_xor_addr(&b, STUN_ATTR_XOR_MAPPED_ADDRESS, want), 0);
	assert_int_equal(stun_build_finish(&b), STUN_HEADER_LEN + 4 + a->len);
	assert_memory_equal(out + STUN_HEADER_LEN, buf + a->off - 4, 4u + a->len);
}

static void test_rfc5769_ipv4_response_decodes_192_0_2_1_port_32853(void **state)
{
	struct stun_addr want = {STUN_AF_IPV4, 32853, {192, 0, 2, 1}};

	(void)state;
	check_response(v4_hex, &want);
}

static void test_rfc5769_ipv6_response_decodes_2001_db8_address(void **state)
{
	struct stun_addr want = {STUN_AF_IPV6,
				 32853,
				 {0x20, 0x01, 0x0d, 0xb8, 0x12, 0x34, 0x56, 0x78, 0x00, 0x11, 0x22,
				  0x33, 0x44, 0x55, 0x66, 0x77}};

	(void)state;
	check_response(v6_hex, &want);
}

static void test_rfc5769_long_term_request_checks_and_rebuilds_byte_for_byte(void **state)
{
	uint8_t buf[256], out[256], key[TURN_KEY_MAX];
	size_t n = unhex(lt_hex, buf, sizeof(buf));
	struct stun_builder b;
	struct stun_msg m;
	struct str user, realm, nonce;

	(void)state;
	assert_int_equal(stun_parse(buf, n, &m), 0);
	assert_int_equal(stun_get_username(&m, &user), 0);
	assert_str(user, MATRIX_USER);
	assert_int_equal(stun_get_nonce(&m, &nonce), 0);
	assert_str(nonce, LT_NONCE);
	assert_int_equal(stun_get_realm(&m, &realm), 0);
	assert_str(realm, "example.org");
	assert_int_equal(stun_check_fingerprint(&m), STUN_E_ABSENT);

	assert_int_equal(turn_cred_key(TURN_PWALG_MD5, user, realm, STR_LIT("TheMatrIX"), key),
			 TURN_KEY_MD5_LEN);
	assert_int_equal(stun_check_integrity(&m, key, TURN_KEY_MD5_LEN), 0);

	assert_int_equal(
	    stun_build_init(&b, out, sizeof(out), STUN_METHOD_BINDING, STUN_REQUEST, m.tid), 0);
	stun_build_str(&b, STUN_ATTR_USERNAME, STR_LIT(MATRIX_USER));
	stun_build_str(&b, STUN_ATTR_NONCE, STR_LIT(LT_NONCE));
	stun_build_str(&b, STUN_ATTR_REALM, STR_LIT("example.org"));
	stun_build_integrity(&b, key, TURN_KEY_MD5_LEN);
	assert_int_equal(stun_build_finish(&b), (long)n);
	assert_memory_equal(out, buf, n);

	/* a password that differs only in case gives another key */
	assert_int_equal(turn_cred_key(TURN_PWALG_MD5, user, realm, STR_LIT("thematrix"), key),
			 TURN_KEY_MD5_LEN);
	assert_int_equal(stun_check_integrity(&m, key, TURN_KEY_MD5_LEN), STUN_E_INTEGRITY);
}

static void test_rfc8489_b1_sha256_userhash_request_checks_and_rebuilds(void **state)
{
	uint8_t buf[256], out[256], key[TURN_KEY_MAX], uh[32];
	size_t n = unhex(b1_hex, buf, sizeof(buf));
	const uint8_t *hash;
	struct stun_builder b;
	struct stun_msg m;
	struct str realm, nonce;
	uint16_t alg;
	uint32_t features;

	(void)state;
	assert_int_equal(n, 20 + 0x90);
	assert_int_equal(stun_parse(buf, n, &m), 0);
	assert_int_equal(m.nunknown, 0);
	assert_null(stun_find(&m, STUN_ATTR_USERNAME));
	assert_int_equal(stun_get_userhash(&m, stun_find(&m, STUN_ATTR_USERHASH), &hash), 0);
	assert_int_equal(stun_get_realm(&m, &realm), 0);
	assert_int_equal(stun_get_nonce(&m, &nonce), 0);
	assert_str(nonce, B1_NONCE);
	assert_int_equal(turn_nonce_features(nonce, &features), 0);
	assert_int_equal(features, TURN_FEATURE_USERNAME_ANONYMITY);
	assert_int_equal(
	    stun_get_password_algorithm(&m, stun_find(&m, STUN_ATTR_PASSWORD_ALGORITHM), &alg), 0);
	assert_int_equal(alg, STUN_PWALG_SHA256);

	/* USERHASH = SHA-256(username ":" realm) */
	assert_int_equal(turn_cred_userhash(STR_LIT(MATRIX_USER), realm, uh), 0);
	assert_memory_equal(uh, hash, 32);

	assert_int_equal(turn_cred_key(TURN_PWALG_SHA256, STR_LIT(MATRIX_USER), realm,
				       STR_LIT("TheMatrIX"), key),
			 TURN_KEY_SHA256_LEN);
	assert_int_equal(stun_check_integrity_sha256(&m, key, TURN_KEY_SHA256_LEN), 0);
	assert_int_equal(stun_check_integrity(&m, key, TURN_KEY_SHA256_LEN), STUN_E_ABSENT);
	/* the MD5 key of the same password does not fit */
	assert_int_equal(
	    turn_cred_key(TURN_PWALG_MD5, STR_LIT(MATRIX_USER), realm, STR_LIT("TheMatrIX"), key),
	    TURN_KEY_MD5_LEN);
	assert_int_equal(stun_check_integrity_sha256(&m, key, TURN_KEY_MD5_LEN), STUN_E_INTEGRITY);

	assert_int_equal(turn_cred_key(TURN_PWALG_SHA256, STR_LIT(MATRIX_USER), realm,
				       STR_LIT("TheMatrIX"), key),
			 TURN_KEY_SHA256_LEN);
	assert_int_equal(
	    stun_build_init(&b, out, sizeof(out), STUN_METHOD_BINDING, STUN_REQUEST, m.tid), 0);
	stun_build_attr(&b, STUN_ATTR_USERHASH, uh, sizeof(uh));
	stun_build_str(&b, STUN_ATTR_NONCE, STR_LIT(B1_NONCE));
	stun_build_str(&b, STUN_ATTR_REALM, STR_LIT("example.org"));
	stun_build_password_algorithm(&b, STUN_PWALG_SHA256);
	stun_build_integrity_sha256(&b, key, TURN_KEY_SHA256_LEN);
	assert_int_equal(stun_build_finish(&b), (long)n);
	assert_memory_equal(out, buf, n);
}

/* RFC 8489 §9.2.2 (and RFC 5389 §15.4): MD5("user:realm:pass") */
static void test_long_term_key_md5_matches_rfc_example(void **state)
{
	static const uint8_t want[16] = {0x84, 0x93, 0xfb, 0xc5, 0x3b, 0xa5, 0x82, 0xfb,
					 0x4c, 0x04, 0x4c, 0x45, 0x6b, 0xdc, 0x40, 0xeb};
	uint8_t key[TURN_KEY_MAX];

	(void)state;
	assert_int_equal(
	    turn_cred_key(TURN_PWALG_MD5, STR_LIT("user"), STR_LIT("realm"), STR_LIT("pass"), key),
	    16);
	assert_memory_equal(key, want, 16);
}

/* RFC 2202 §3 and RFC 4231 §4.3, §4.7: the HMACs behind MESSAGE-INTEGRITY(-SHA256) */
static void test_hmac_matches_rfc2202_and_rfc4231(void **state)
{
	static const char big_data[] = "Test Using Larger Than Block-Size Key - Hash Key First";
	uint8_t out[32], want[32], big_key[131];

	(void)state;
	assert_int_equal(stun_hmac_sha1("Jefe", 4, "what do ya want for nothing?", 28, out), 0);
	unhex("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79", want, sizeof(want));
	assert_memory_equal(out, want, 20);
	assert_int_equal(stun_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, out), 0);
	unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", want,
	      sizeof(want));
	assert_memory_equal(out, want, 32);
	memset(big_key, 0xaa, sizeof(big_key));
	assert_int_equal(stun_hmac_sha1(big_key, 80, big_data, sizeof(big_data) - 1, out), 0);
	unhex("aa4ae5e15272d00e95705637ce8a3b55ed402112", want, sizeof(want));
	assert_memory_equal(out, want, 20);
	assert_int_equal(
	    stun_hmac_sha256(big_key, sizeof(big_key), big_data, sizeof(big_data) - 1, out), 0);
	unhex("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54", want,
	      sizeof(want));
	assert_memory_equal(out, want, 32);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc5769_request_parses_with_short_term_integrity_and_fingerprint),
	    cmocka_unit_test(test_rfc5769_ipv4_response_decodes_192_0_2_1_port_32853),
	    cmocka_unit_test(test_rfc5769_ipv6_response_decodes_2001_db8_address),
	    cmocka_unit_test(test_rfc5769_long_term_request_checks_and_rebuilds_byte_for_byte),
	    cmocka_unit_test(test_rfc8489_b1_sha256_userhash_request_checks_and_rebuilds),
	    cmocka_unit_test(test_long_term_key_md5_matches_rfc_example),
	    cmocka_unit_test(test_hmac_matches_rfc2202_and_rfc4231),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
