/*
 * Strict base64 / base64url (core/b64): RFC 4648 §10 vectors both ways, and
 * every way a decoder could be lenient refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/b64.h"

/* RFC 4648 §10 */
static const struct {
	const char *plain, *std, *url;
} rfc4648[] = {
    {"", "", ""},
    {"f", "Zg==", "Zg"},
    {"fo", "Zm8=", "Zm8"},
    {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg==", "Zm9vYg"},
    {"fooba", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

static void test_b64_rfc4648_vectors_encode_and_decode(void **state)
{
	char out[32];
	uint8_t bin[32];
	size_t n;

	for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
		size_t pl = strlen(rfc4648[i].plain);

		assert_int_equal(
		    b64_std_encode((const uint8_t *)rfc4648[i].plain, pl, out, sizeof(out)),
		    strlen(rfc4648[i].std));
		assert_string_equal(out, rfc4648[i].std);
		assert_int_equal(
		    b64_url_encode((const uint8_t *)rfc4648[i].plain, pl, out, sizeof(out)),
		    strlen(rfc4648[i].url));
		assert_string_equal(out, rfc4648[i].url);
		assert_int_equal(b64_std_len(pl), strlen(rfc4648[i].std));
		assert_int_equal(b64_url_len(pl), strlen(rfc4648[i].url));

		assert_int_equal(
		    b64_std_decode(rfc4648[i].std, strlen(rfc4648[i].std), bin, sizeof(bin), &n),
		    0);
		assert_int_equal(n, pl);
		assert_memory_equal(bin, rfc4648[i].plain, pl);
		assert_int_equal(
		    b64_url_decode(rfc4648[i].url, strlen(rfc4648[i].url), bin, sizeof(bin), &n),
		    0);
		assert_int_equal(n, pl);
		assert_memory_equal(bin, rfc4648[i].plain, pl);
	}
}

static void test_b64_alphabets_differ_in_62_and_63(void **state)
{
	const uint8_t v[] = {0xfb, 0xff, 0xbf};
	char out[8];
	uint8_t bin[8];
	size_t n;

	assert_int_equal(b64_std_encode(v, 3, out, sizeof(out)), 4);
	assert_string_equal(out, "+/+/");
	assert_int_equal(b64_url_encode(v, 3, out, sizeof(out)), 4);
	assert_string_equal(out, "-_-_");
	assert_int_equal(b64_url_decode("-_-_", 4, bin, sizeof(bin), &n), 0);
	assert_memory_equal(bin, v, 3);
	assert_int_equal(b64_std_decode("+/+/", 4, bin, sizeof(bin), &n), 0);
	/* the other alphabet's characters are not accepted */
	assert_int_equal(b64_url_decode("+/+/", 4, bin, sizeof(bin), &n), -1);
	assert_int_equal(n, 0);
	assert_int_equal(b64_std_decode("-_-_", 4, bin, sizeof(bin), &n), -1);
}

static void test_b64_url_rejects_padding_whitespace_and_bad_bytes(void **state)
{
	static const char *bad[] = {
	    "Zg==",  "Zg=",   "Zm8=",	     "Zm9v\n", " Zm9v", "Zm 9v", "Zm9v\r\n", "Zm9\0v",
	    "Zm9v.", "Zm9v*", "Zm9\xc3\xa9", "Z",      "Zm9vY", "=",	 "\t",
	};
	uint8_t bin[16];
	size_t n;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = strlen(bad[i]);

		if (i == 7)
			len = 5; /* embedded NUL */
		assert_int_equal(b64_url_decode(bad[i], len, bin, sizeof(bin), &n), -1);
	}
}

static void test_b64_rejects_noncanonical_trailing_bits(void **state)
{
	uint8_t bin[8];
	size_t n;

	/* "Zg" is 'f'; "Zh" has the same first byte with a non-zero unused bit */
	assert_int_equal(b64_url_decode("Zg", 2, bin, sizeof(bin), &n), 0);
	assert_int_equal(b64_url_decode("Zh", 2, bin, sizeof(bin), &n), -1);
	assert_int_equal(b64_url_decode("Zv", 2, bin, sizeof(bin), &n), -1);
	assert_int_equal(b64_url_decode("Zm8", 3, bin, sizeof(bin), &n), 0);
	assert_int_equal(b64_url_decode("Zm9", 3, bin, sizeof(bin), &n), -1);
	assert_int_equal(b64_std_decode("Zh==", 4, bin, sizeof(bin), &n), -1);
	assert_int_equal(b64_std_decode("Zm9=", 4, bin, sizeof(bin), &n), -1);
}

static void test_b64_std_requires_exact_padding(void **state)
{
	static const char *bad[] = {"Zg",   "Zg=",  "Zm8",	"Zg===",    "====",   "A===",
				    "Zm=v", "=Zm8", "Zm9v====", "Zg==Zg==", "Zm9v\n", "Zm 9v"};
	uint8_t bin[16];
	size_t n;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(b64_std_decode(bad[i], strlen(bad[i]), bin, sizeof(bin), &n), -1);
}

static void test_b64_decode_is_bounded_by_capacity(void **state)
{
	uint8_t bin[8];
	size_t n = 99;

	assert_int_equal(b64_url_decode("Zm9vYmFy", 8, bin, 5, &n), -1);
	assert_int_equal(n, 0);
	assert_int_equal(b64_url_decode("Zm9vYmFy", 8, bin, 6, &n), 0);
	assert_int_equal(n, 6);
	assert_int_equal(b64_std_decode("Zm9vYg==", 8, bin, 3, &n), -1);
	assert_int_equal(b64_std_decode("Zm9vYg==", 8, bin, 4, &n), 0);
	assert_int_equal(b64_decoded_max(6), 4);
	assert_int_equal(b64_decoded_max(7), 5);
	assert_int_equal(b64_decoded_max(8), 6);
}

static void test_b64_encode_is_bounded_by_capacity(void **state)
{
	char out[8];

	/* 6 bytes -> 8 characters + NUL = 9 */
	assert_int_equal(b64_url_encode((const uint8_t *)"foobar", 6, out, 8), -1);
	assert_string_equal(out, "");
	assert_int_equal(b64_std_encode((const uint8_t *)"fooba", 5, out, 8), -1);
	assert_int_equal(b64_url_encode((const uint8_t *)"fooba", 5, out, 8), 7);
	assert_string_equal(out, "Zm9vYmE");
}

static void test_b64_round_trips_every_byte_value_and_length(void **state)
{
	uint8_t in[256], back[256];
	char txt[400];
	size_t n;

	for (int i = 0; i < 256; i++)
		in[i] = (uint8_t)(i * 7 + 3);
	for (size_t len = 0; len <= sizeof(in); len++) {
		long w = b64_url_encode(in, len, txt, sizeof(txt));

		assert_true(w >= 0);
		assert_int_equal(b64_url_decode(txt, (size_t)w, back, sizeof(back), &n), 0);
		assert_int_equal(n, len);
		assert_memory_equal(back, in, len);
		w = b64_std_encode(in, len, txt, sizeof(txt));
		assert_true(w >= 0);
		assert_int_equal(b64_std_decode(txt, (size_t)w, back, sizeof(back), &n), 0);
		assert_int_equal(n, len);
		assert_memory_equal(back, in, len);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_b64_rfc4648_vectors_encode_and_decode),
	    cmocka_unit_test(test_b64_alphabets_differ_in_62_and_63),
	    cmocka_unit_test(test_b64_url_rejects_padding_whitespace_and_bad_bytes),
	    cmocka_unit_test(test_b64_rejects_noncanonical_trailing_bits),
	    cmocka_unit_test(test_b64_std_requires_exact_padding),
	    cmocka_unit_test(test_b64_decode_is_bounded_by_capacity),
	    cmocka_unit_test(test_b64_encode_is_bounded_by_capacity),
	    cmocka_unit_test(test_b64_round_trips_every_byte_value_and_length),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
