/*
 * STUN codec rules: header checks, the bounded attribute walk, what counts
 * after MESSAGE-INTEGRITY, unknown comprehension-required attributes, the
 * attribute decoders, integrity and fingerprint over changed messages,
 * ChannelData and stream framing, and the builder's limits and ordering.
 * Messages are made with the builder (checked against RFC 5769 in
 * test_vec_stun.c) and then broken by hand. Interop: when coturn's
 * turnutils_uclient is installed, it runs against a minimal responder made of
 * this codec on 127.0.0.1 (401, then signed answers); every request it sends
 * must parse and verify, and it must get as far as ChannelBind and
 * CreatePermission. Without the tool that test skips.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "turn/cred.h"
#include "turn/stun.h"

static const uint8_t tid[STUN_TID_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
static const uint8_t key[16] = "0123456789abcdef";

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* An Allocate request: LIFETIME, REQUESTED-TRANSPORT, USERNAME, MI, FINGERPRINT. */
static size_t make_allocate(uint8_t *buf, size_t cap, bool integrity, bool fp)
{
	static const uint8_t udp[4] = {STUN_TRANSPORT_UDP, 0, 0, 0};
	struct stun_builder b;
	long n;

	assert_int_equal(stun_build_init(&b, buf, cap, STUN_METHOD_ALLOCATE, STUN_REQUEST, tid), 0);
	stun_build_u32(&b, STUN_ATTR_LIFETIME, 600);
	stun_build_attr(&b, STUN_ATTR_REQUESTED_TRANSPORT, udp, sizeof(udp));
	stun_build_str(&b, STUN_ATTR_USERNAME, STR_LIT("alice"));
	if (integrity)
		stun_build_integrity(&b, key, sizeof(key));
	if (fp)
		stun_build_fingerprint(&b);
	n = stun_build_finish(&b);
	assert_true(n > 0);
	return (size_t)n;
}

/* Append a raw attribute to a built message and fix the header length. */
static size_t append_raw(uint8_t *buf, size_t n, uint16_t type, const void *val, uint16_t len)
{
	size_t padded = (len + 3u) & ~3u;

	wr16(buf + n, type);
	wr16(buf + n + 2, len);
	memset(buf + n + 4, 0, padded);
	memcpy(buf + n + 4, val, len);
	n += 4 + padded;
	wr16(buf + 2, (uint16_t)(n - STUN_HEADER_LEN));
	return n;
}

static void test_stun_parses_what_the_builder_writes(void **state)
{
	uint8_t buf[512];
	size_t n = make_allocate(buf, sizeof(buf), true, true);
	struct stun_msg m;
	uint32_t life;
	uint8_t proto;
	struct str user;

	(void)state;
	assert_int_equal(stun_parse(buf, n, &m), 0);
	assert_int_equal(m.type, 0x0003);
	assert_int_equal(m.method, STUN_METHOD_ALLOCATE);
	assert_int_equal(m.cls, STUN_REQUEST);
	assert_memory_equal(m.tid, tid, STUN_TID_LEN);
	assert_int_equal(m.nattrs, 5);
	assert_int_equal(stun_get_u32(&m, stun_find(&m, STUN_ATTR_LIFETIME), &life), 0);
	assert_int_equal(life, 600);
	assert_int_equal(
	    stun_get_requested_transport(&m, stun_find(&m, STUN_ATTR_REQUESTED_TRANSPORT), &proto),
	    0);
	assert_int_equal(proto, STUN_TRANSPORT_UDP);
	assert_int_equal(stun_get_username(&m, &user), 0);
	assert_int_equal(user.len, 5);
	assert_memory_equal(user.p, "alice", 5);
	assert_int_equal(stun_check_integrity(&m, key, sizeof(key)), 0);
	assert_int_equal(stun_check_fingerprint(&m), 0);
}

static void test_stun_method_and_class_bits_round_trip(void **state)
{
	static const struct {
		uint16_t method;
		enum stun_class cls;
		uint16_t type;
	} cases[] = {
	    {STUN_METHOD_BINDING, STUN_REQUEST, 0x0001},
	    {STUN_METHOD_BINDING, STUN_SUCCESS, 0x0101},
	    {STUN_METHOD_ALLOCATE, STUN_ERROR_RESPONSE, 0x0113},
	    {STUN_METHOD_SEND, STUN_INDICATION, 0x0016},
	    {STUN_METHOD_DATA, STUN_INDICATION, 0x0017},
	    {STUN_METHOD_CHANNEL_BIND, STUN_SUCCESS, 0x0109},
	    {0xFFF, STUN_ERROR_RESPONSE, 0x3FFF},
	};
	uint8_t buf[64];
	struct stun_builder b;
	struct stun_msg m;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(
		    stun_build_init(&b, buf, sizeof(buf), cases[i].method, cases[i].cls, tid), 0);
		assert_int_equal(stun_build_finish(&b), STUN_HEADER_LEN);
		assert_int_equal(buf[0] << 8 | buf[1], cases[i].type);
		assert_int_equal(stun_parse(buf, STUN_HEADER_LEN, &m), 0);
		assert_int_equal(m.method, cases[i].method);
		assert_int_equal(m.cls, cases[i].cls);
	}
	assert_int_equal(stun_build_init(&b, buf, sizeof(buf), 0x1000, STUN_REQUEST, tid),
			 STUN_E_VALUE);
}

static void test_stun_rejects_short_header(void **state)
{
	uint8_t buf[512];
	size_t n = make_allocate(buf, sizeof(buf), false, false);
	struct stun_msg m;

	(void)state;
	assert_int_equal(stun_parse(buf, 0, &m), STUN_E_SHORT);
	assert_int_equal(stun_parse(buf, 19, &m), STUN_E_SHORT);
	/* the header says more than arrived */
	assert_int_equal(stun_parse(buf, n - 4, &m), STUN_E_SHORT);
}

static void test_stun_rejects_top_bits_set(void **state)
{
	uint8_t buf[512];
	size_t n = make_allocate(buf, sizeof(buf), false, false);
	struct stun_msg m;

	(void)state;
	buf[0] |= 0x40;
	assert_int_equal(stun_parse(buf, n, &m), STUN_E_NOT_STUN);
	buf[0] = (uint8_t)((buf[0] & 0x3F) | 0x80);
	assert_int_equal(stun_parse(buf, n, &m), STUN_E_NOT_STUN);
}

static void test_stun_rejects_bad_cookie(void **state)
{
	uint8_t buf[512];
	size_t n = make_allocate(buf, sizeof(buf), false, false);
	struct stun_msg m;

	(void)state;
	buf[7] ^= 0x01;
	assert_int_equal(stun_parse(buf, n, &m), STUN_E_COOKIE);
}

static void test_stun_rejects_length_not_multiple_of_4(void **state)
{
	uint8_t buf[512];
	size_t n = make_allocate(buf, sizeof(buf), false, false);
	struct stun_msg m;

	(void)state;
	buf[3] = (uint8_t)(buf[3] - 2);
	assert_int_equal(stun_parse(buf, n - 2, &m), STUN_E_LENGTH);
}

static void test_stun_rejects_trailing_bytes_beyond_the_stated_length(void **state)
{
	uint8_t buf[512];
	size_t n = make_allocate(buf, sizeof(buf), false, false);
	struct stun_msg m;

	(void)state;
	memset(buf + n, 0, 4);
	assert_int_equal(stun_parse(buf, n + 4, &m), STUN_E_LENGTH);
}

static void test_stun_rejects_attribute_length_overflow(void **state)
{
	uint8_t buf[512];
	size_t n = make_allocate(buf, sizeof(buf), false, false);
	struct stun_msg m;

	(void)state;
	/* USERNAME is last (offset 36): claim more than is left */
	assert_int_equal(buf[36] << 8 | buf[37], STUN_ATTR_USERNAME);
	wr16(buf + 38, 9);
	assert_int_equal(stun_parse(buf, n, &m), STUN_E_ATTR_LEN);
	wr16(buf + 38, 0xFFFF);
	assert_int_equal(stun_parse(buf, n, &m), STUN_E_ATTR_LEN);
	/* the first attribute overruns everything */
	wr16(buf + 38, 5);
	wr16(buf + 22, 0xFFF0);
	assert_int_equal(stun_parse(buf, n, &m), STUN_E_ATTR_LEN);
}

static void test_stun_rejects_truncated_attribute(void **state)
{
	uint8_t buf[512];
	size_t n = make_allocate(buf, sizeof(buf), false, false);
	struct stun_msg m;

	(void)state;
	/* cut the message inside USERNAME's value and say so in the header */
	n -= 4;
	wr16(buf + 2, (uint16_t)(n - STUN_HEADER_LEN));
	assert_int_equal(stun_parse(buf, n, &m), STUN_E_ATTR_LEN);
	/* cut right after an attribute header that announces a value */
	n = 40;
	wr16(buf + 2, (uint16_t)(n - STUN_HEADER_LEN));
	assert_int_equal(stun_parse(buf, n, &m), STUN_E_ATTR_LEN);
}

static void test_stun_rejects_more_attributes_than_the_limit(void **state)
{
	uint8_t buf[STUN_HEADER_LEN + 4 * (STUN_MAX_ATTRS + 1)];
	struct stun_builder b;
	struct stun_msg m;
	long n;

	(void)state;
	stun_build_init(&b, buf, sizeof(buf), STUN_METHOD_BINDING, STUN_REQUEST, tid);
	for (int i = 0; i < STUN_MAX_ATTRS; i++)
		stun_build_attr(&b, STUN_ATTR_SOFTWARE, NULL, 0);
	n = stun_build_finish(&b);
	assert_int_equal(stun_parse(buf, (size_t)n, &m), 0);
	assert_int_equal(m.nattrs, STUN_MAX_ATTRS);
	stun_build_attr(&b, STUN_ATTR_SOFTWARE, NULL, 0);
	n = stun_build_finish(&b);
	assert_int_equal(stun_parse(buf, (size_t)n, &m), STUN_E_TOO_MANY);
}

static void test_stun_reports_unknown_comprehension_required_attribute(void **state)
{
	uint8_t buf[512], out[512];
	size_t n = make_allocate(buf, sizeof(buf), false, false);
	uint16_t got[4];
	size_t cnt;
	struct stun_builder b;
	struct stun_msg m, r;
	long rn;

	(void)state;
	n = append_raw(buf, n, 0x7ABC, "xy", 2);
	n = append_raw(buf, n, 0x7ABC, "zz", 2);       /* listed once */
	n = append_raw(buf, n, 0x0003, "\0\0\0\0", 4); /* CHANGE-REQUEST: not ours */
	n = append_raw(buf, n, 0xC001, "opt", 3);      /* optional: ignored */
	assert_int_equal(stun_parse(buf, n, &m), 0);
	assert_int_equal(m.nunknown, 2);
	assert_int_equal(m.unknown[0], 0x7ABC);
	assert_int_equal(m.unknown[1], 0x0003);

	/* the 420 answer carries them in UNKNOWN-ATTRIBUTES */
	stun_build_init(&b, out, sizeof(out), m.method, STUN_ERROR_RESPONSE, m.tid);
	stun_build_error(&b, 420, NULL);
	stun_build_unknown_attributes(&b, m.unknown, m.nunknown);
	rn = stun_build_finish(&b);
	assert_true(rn > 0);
	assert_int_equal(stun_parse(out, (size_t)rn, &r), 0);
	assert_int_equal(stun_get_unknown_attributes(
			     &r, stun_find(&r, STUN_ATTR_UNKNOWN_ATTRIBUTES), got, 4, &cnt),
			 0);
	assert_int_equal(cnt, 2);
	assert_int_equal(got[0], 0x7ABC);
	assert_int_equal(got[1], 0x0003);
}

static void test_stun_ignores_attributes_after_message_integrity(void **state)
{
	uint8_t buf[512];
	size_t n = make_allocate(buf, sizeof(buf), true, false);
	struct stun_msg m;

	(void)state;
	/* added by someone without the key: not counted, not reported, MI still verifies */
	n = append_raw(buf, n, STUN_ATTR_LIFETIME, "\0\0\0\1", 4);
	n = append_raw(buf, n, 0x7ABC, "x", 1);
	assert_int_equal(stun_parse(buf, n, &m), 0);
	assert_int_equal(m.nattrs, 4);
	assert_int_equal(m.nunknown, 0);
	assert_int_equal(stun_find(&m, STUN_ATTR_LIFETIME), &m.attrs[0]);
	assert_null(stun_find_next(&m, stun_find(&m, STUN_ATTR_LIFETIME)));
	assert_int_equal(stun_check_integrity(&m, key, sizeof(key)), 0);
}

static void test_stun_counts_sha256_integrity_and_fingerprint_after_message_integrity(void **state)
{
	uint8_t buf[512];
	struct stun_builder b;
	struct stun_msg m;
	size_t n;

	(void)state;
	stun_build_init(&b, buf, sizeof(buf), STUN_METHOD_REFRESH, STUN_REQUEST, tid);
	stun_build_u32(&b, STUN_ATTR_LIFETIME, 0);
	stun_build_integrity(&b, key, sizeof(key));
	stun_build_integrity_sha256(&b, key, sizeof(key));
	stun_build_fingerprint(&b);
	n = (size_t)stun_build_finish(&b);
	assert_int_equal(stun_parse(buf, n, &m), 0);
	assert_int_equal(m.nattrs, 4);
	assert_int_equal(stun_check_integrity(&m, key, sizeof(key)), 0);
	assert_int_equal(stun_check_integrity_sha256(&m, key, sizeof(key)), 0);
	assert_int_equal(stun_check_fingerprint(&m), 0);
	/* after FINGERPRINT nothing counts */
	n = append_raw(buf, n, STUN_ATTR_DATA, "abc", 3);
	assert_int_equal(stun_parse(buf, n, &m), 0);
	assert_int_equal(m.nattrs, 4);
	assert_null(stun_find(&m, STUN_ATTR_DATA));
}

static void test_stun_integrity_over_a_changed_message_fails(void **state)
{
	uint8_t buf[512];
	size_t n = make_allocate(buf, sizeof(buf), true, false);
	struct stun_msg m;
	uint8_t wrong[16];

	(void)state;
	memcpy(wrong, key, sizeof(wrong));
	wrong[15] ^= 1;
	assert_int_equal(stun_parse(buf, n, &m), 0);
	assert_int_equal(stun_check_integrity(&m, wrong, sizeof(wrong)), STUN_E_INTEGRITY);
	/* every byte before the MAC is covered: header, tid, each attribute */
	for (size_t i = 0; i < n - 24; i++) {
		if (i >= 2 && i < 4)
			continue; /* the length field: changing it breaks framing instead */
		buf[i] ^= 0x20;
		if (stun_parse(buf, n, &m) == 0)
			assert_int_equal(stun_check_integrity(&m, key, sizeof(key)),
					 STUN_E_INTEGRITY);
		buf[i] ^= 0x20;
	}
	/* the MAC itself */
	buf[n - 1] ^= 0x80;
	assert_int_equal(stun_parse(buf, n, &m), 0);
	assert_int_equal(stun_check_integrity(&m, key, sizeof(key)), STUN_E_INTEGRITY);
	/* no MESSAGE-INTEGRITY at all */
	n = make_allocate(buf, sizeof(buf), false, true);
	assert_int_equal(stun_parse(buf, n, &m), 0);
	assert_int_equal(stun_check_integrity(&m, key, sizeof(key)), STUN_E_ABSENT);
}

/*
 * A sender may truncate MESSAGE-INTEGRITY-SHA256 to 16..32 bytes in steps of 4
 * (§14.6); its MAC then covers a header whose length counts the truncated
 * attribute. The truncated message is made here with OpenSSL's HMAC() as a
 * second implementation.
 */
static void test_stun_integrity_sha256_accepts_truncation_and_rejects_bad_lengths(void **state)
{
	uint8_t buf[512], mac[32];
	unsigned maclen = 0;
	struct stun_builder b;
	struct stun_msg m;
	size_t n;

	(void)state;
	stun_build_init(&b, buf, sizeof(buf), STUN_METHOD_BINDING, STUN_REQUEST, tid);
	stun_build_u32(&b, STUN_ATTR_LIFETIME, 7);
	n = (size_t)stun_build_finish(&b);
	wr16(buf + 2, (uint16_t)(n + 4 + 16 - STUN_HEADER_LEN));
	assert_non_null(HMAC(EVP_sha256(), key, sizeof(key), buf, n, mac, &maclen));
	n = append_raw(buf, n, STUN_ATTR_MESSAGE_INTEGRITY_SHA256, mac, 16);
	assert_int_equal(stun_parse(buf, n, &m), 0);
	assert_int_equal(stun_check_integrity_sha256(&m, key, sizeof(key)), 0);
	buf[n - 1] ^= 1;
	assert_int_equal(stun_parse(buf, n, &m), 0);
	assert_int_equal(stun_check_integrity_sha256(&m, key, sizeof(key)), STUN_E_INTEGRITY);
	/* 12 bytes is too short, 18 is not a multiple of 4, 36 too long */
	wr16(buf + n - 18, 12);
	assert_int_equal(stun_parse(buf, n - 4, &m), STUN_E_SHORT);
	wr16(buf + 2, (uint16_t)(n - 4 - STUN_HEADER_LEN));
	assert_int_equal(stun_parse(buf, n - 4, &m), STUN_E_VALUE);
	wr16(buf + n - 18, 18);
	wr16(buf + 2, (uint16_t)(n + 4 - STUN_HEADER_LEN));
	assert_int_equal(stun_parse(buf, n + 4, &m), STUN_E_VALUE);
	wr16(buf + n - 18, 36);
	wr16(buf + 2, (uint16_t)(n + 20 - STUN_HEADER_LEN));
	assert_int_equal(stun_parse(buf, n + 20, &m), STUN_E_VALUE);
}

static void test_stun_rejects_message_integrity_of_wrong_length(void **state)
{
	uint8_t buf[512];
	size_t n = make_allocate(buf, sizeof(buf), false, false);
	struct stun_msg m;
	uint8_t v[24] = {0};

	(void)state;
	n = append_raw(buf, n, STUN_ATTR_MESSAGE_INTEGRITY, v, 16);
	assert_int_equal(stun_parse(buf, n, &m), STUN_E_VALUE);
	n = make_allocate(buf, sizeof(buf), false, false);
	n = append_raw(buf, n, STUN_ATTR_FINGERPRINT, v, 8);
	assert_int_equal(stun_parse(buf, n, &m), STUN_E_VALUE);
}

static void test_stun_fingerprint_mismatch_is_detected(void **state)
{
	uint8_t buf[512];
	size_t n = make_allocate(buf, sizeof(buf), false, true);
	struct stun_msg m;

	(void)state;
	assert_int_equal(stun_parse(buf, n, &m), 0);
	assert_int_equal(stun_check_fingerprint(&m), 0);
	buf[n - 1] ^= 1;
	assert_int_equal(stun_parse(buf, n, &m), 0);
	assert_int_equal(stun_check_fingerprint(&m), STUN_E_FINGERPRINT);
	buf[n - 1] ^= 1;
	buf[26] ^= 1; /* a byte of LIFETIME */
	assert_int_equal(stun_parse(buf, n, &m), 0);
	assert_int_equal(stun_check_fingerprint(&m), STUN_E_FINGERPRINT);
	n = make_allocate(buf, sizeof(buf), false, false);
	assert_int_equal(stun_parse(buf, n, &m), 0);
	assert_int_equal(stun_check_fingerprint(&m), STUN_E_ABSENT);
}

static void test_stun_rejects_oversize_username(void **state)
{
	uint8_t buf[2048], name[STUN_MAX_USERNAME + 1];
	struct stun_builder b;
	struct stun_msg m;
	struct str s;
	size_t n;

	(void)state;
	memset(name, 'u', sizeof(name));
	stun_build_init(&b, buf, sizeof(buf), STUN_METHOD_ALLOCATE, STUN_REQUEST, tid);
	stun_build_attr(&b, STUN_ATTR_USERNAME, name, STUN_MAX_USERNAME);
	n = (size_t)stun_build_finish(&b);
	assert_int_equal(stun_parse(buf, n, &m), 0);
	assert_int_equal(stun_get_username(&m, &s), 0);
	assert_int_equal(s.len, STUN_MAX_USERNAME);

	stun_build_init(&b, buf, sizeof(buf), STUN_METHOD_ALLOCATE, STUN_REQUEST, tid);
	stun_build_attr(&b, STUN_ATTR_USERNAME, name, sizeof(name));
	n = (size_t)stun_build_finish(&b);
	assert_int_equal(stun_parse(buf, n, &m), 0);
	assert_int_equal(stun_get_username(&m, &s), STUN_E_VALUE);
	assert_null(s.p);
	/* absent */
	stun_build_init(&b, buf, sizeof(buf), STUN_METHOD_ALLOCATE, STUN_REQUEST, tid);
	n = (size_t)stun_build_finish(&b);
	assert_int_equal(stun_parse(buf, n, &m), 0);
	assert_int_equal(stun_get_username(&m, &s), STUN_E_ABSENT);
	assert_int_equal(stun_get_realm(&m, &s), STUN_E_ABSENT);
	assert_int_equal(stun_get_nonce(&m, &s), STUN_E_ABSENT);
}

static void assert_addr(const struct stun_addr *got, const struct stun_addr *want)
{
	assert_int_equal(got->family, want->family);
	assert_int_equal(got->port, want->port);
	assert_memory_equal(got->ip, want->ip, sizeof(got->ip));
}

static void test_stun_xor_peer_addresses_repeat_and_round_trip(void **state)
{
	struct stun_addr a4 = {STUN_AF_IPV4, 49152, {203, 0, 113, 7}};
	struct stun_addr a6 = {STUN_AF_IPV6, 65535, {0x20, 0x01, 0x0d, 0xb8, [15] = 1}};
	struct stun_addr got;
	const struct stun_attr *a;
	uint8_t buf[512];
	struct stun_builder b;
	struct stun_msg m;
	size_t n;

	(void)state;
	stun_build_init(&b, buf, sizeof(buf), STUN_METHOD_CREATE_PERMISSION, STUN_REQUEST, tid);
	stun_build_xor_addr(&b, STUN_ATTR_XOR_PEER_ADDRESS, &a4);
	stun_build_addr(&b, STUN_ATTR_MAPPED_ADDRESS, &a4);
	stun_build_xor_addr(&b, STUN_ATTR_XOR_PEER_ADDRESS, &a6);
	n = (size_t)stun_build_finish(&b);
	assert_int_equal(stun_parse(buf, n, &m), 0);
	assert_non_null(a = stun_find(&m, STUN_ATTR_XOR_PEER_ADDRESS));
	assert_int_equal(stun_get_xor_addr(&m, a, &got), 0);
	assert_addr(&got, &a4);
	/* the XOR form is not the plain one */
	assert_memory_not_equal(stun_attr_value(&m, a) + 4, a4.ip, 4);
	assert_non_null(a = stun_find_next(&m, a));
	assert_int_equal(stun_get_xor_addr(&m, a, &got), 0);
	assert_addr(&got, &a6);
	assert_null(stun_find_next(&m, a));
	assert_int_equal(stun_get_addr(&m, stun_find(&m, STUN_ATTR_MAPPED_ADDRESS), &got), 0);
	assert_addr(&got, &a4);
}

static void test_stun_rejects_malformed_addresses(void **state)
{
	uint8_t buf[512];
	struct stun_builder b;
	struct stun_addr got, bad = {3, 1, {0}};
	struct stun_msg m;
	size_t n;

	(void)state;
	stun_build_init(&b, buf, sizeof(buf), STUN_METHOD_BINDING, STUN_SUCCESS, tid);
	assert_int_equal(stun_build_xor_addr(&b, STUN_ATTR_XOR_MAPPED_ADDRESS, &bad), STUN_E_VALUE);
	stun_build_init(&b, buf, sizeof(buf), STUN_METHOD_BINDING, STUN_SUCCESS, tid);
	stun_build_attr(&b, STUN_ATTR_XOR_MAPPED_ADDRESS, "\0\1\0\1\1\2\3", 7);	    /* short v4 */
	stun_build_attr(&b, STUN_ATTR_XOR_MAPPED_ADDRESS, "\0\2\0\1\1\2\3\4", 8);   /* v6 as v4 */
	stun_build_attr(&b, STUN_ATTR_XOR_MAPPED_ADDRESS, "\0\3\0\1\1\2\3\4", 8);   /* family 3 */
	stun_build_attr(&b, STUN_ATTR_XOR_MAPPED_ADDRESS, "\1\1\0\1\1\2\3\4", 8);   /* reserved */
	stun_build_attr(&b, STUN_ATTR_XOR_MAPPED_ADDRESS, "\0\1\0\1\1\2\3\4\5", 9); /* long */
	n = (size_t)stun_build_finish(&b);
	assert_int_equal(stun_parse(buf, n, &m), 0);
	for (unsigned i = 0; i < m.nattrs; i++)
		assert_int_equal(stun_get_xor_addr(&m, &m.attrs[i], &got), STUN_E_VALUE);
}

static void test_stun_sockaddr_conversions_round_trip(void **state)
{
	struct sockaddr_in6 in6 = {0}, back6;
	struct sockaddr_in in = {0}, back;
	struct stun_addr a;

	(void)state;
	in.sin_family = AF_INET;
	in.sin_port = htons(3478);
	in.sin_addr.s_addr = htonl(0x7F000001);
	assert_int_equal(stun_addr_from_sockaddr(&a, (struct sockaddr *)&in), 0);
	assert_int_equal(a.family, STUN_AF_IPV4);
	assert_int_equal(a.port, 3478);
	assert_int_equal(stun_addr_to_sockaddr(&a, (struct sockaddr *)&back, sizeof(back)), 0);
	assert_int_equal(back.sin_addr.s_addr, in.sin_addr.s_addr);
	assert_int_equal(back.sin_port, in.sin_port);
	assert_int_equal(stun_addr_to_sockaddr(&a, (struct sockaddr *)&back, 4), -1);
	in6.sin6_family = AF_INET6;
	in6.sin6_port = htons(5349);
	in6.sin6_addr.s6_addr[15] = 1;
	assert_int_equal(stun_addr_from_sockaddr(&a, (struct sockaddr *)&in6), 0);
	assert_int_equal(a.family, STUN_AF_IPV6);
	assert_int_equal(stun_addr_to_sockaddr(&a, (struct sockaddr *)&back6, sizeof(back6)), 0);
	assert_memory_equal(&back6.sin6_addr, &in6.sin6_addr, 16);
	in.sin_family = AF_UNIX;
	assert_int_equal(stun_addr_from_sockaddr(&a, (struct sockaddr *)&in), -1);
}

static void test_stun_error_code_round_trips_and_rejects_bad_classes(void **state)
{
	uint8_t buf[1024], big[STUN_MAX_TEXT + 2];
	struct stun_builder b;
	struct stun_msg m;
	struct str reason;
	int code;
	size_t n;

	(void)state;
	stun_build_init(&b, buf, sizeof(buf), STUN_METHOD_ALLOCATE, STUN_ERROR_RESPONSE, tid);
	stun_build_error(&b, 438, NULL);
	stun_build_error(&b, 486, "Quota");
	stun_build_attr(&b, STUN_ATTR_ERROR_CODE, "\0\0\2\0", 4);   /* class 2 */
	stun_build_attr(&b, STUN_ATTR_ERROR_CODE, "\0\0\4\144", 4); /* number 100 */
	stun_build_attr(&b, STUN_ATTR_ERROR_CODE, "\0\0\4", 3);
	n = (size_t)stun_build_finish(&b);
	assert_int_equal(stun_parse(buf, n, &m), 0);
	assert_int_equal(stun_get_error(&m, &m.attrs[0], &code, &reason), 0);
	assert_int_equal(code, 438);
	assert_int_equal(reason.len, strlen("Stale Nonce"));
	assert_memory_equal(reason.p, "Stale Nonce", reason.len);
	assert_int_equal(stun_get_error(&m, &m.attrs[1], &code, &reason), 0);
	assert_int_equal(code, 486);
	for (int i = 2; i < 5; i++)
		assert_int_equal(stun_get_error(&m, &m.attrs[i], &code, &reason), STUN_E_VALUE);
	assert_int_equal(stun_build_error(&b, 200, NULL), STUN_E_VALUE);
	assert_int_equal(stun_build_finish(&b), STUN_E_VALUE); /* sticky */
	memset(big, 'r', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	stun_build_init(&b, buf, sizeof(buf), STUN_METHOD_ALLOCATE, STUN_ERROR_RESPONSE, tid);
	assert_int_equal(stun_build_error(&b, 400, (char *)big), STUN_E_VALUE);
}

static void test_stun_channel_number_out_of_range_is_refused(void **state)
{
	uint8_t buf[256];
	struct stun_builder b;
	struct stun_msg m;
	uint16_t ch;
	size_t n;

	(void)state;
	stun_build_init(&b, buf, sizeof(buf), STUN_METHOD_CHANNEL_BIND, STUN_REQUEST, tid);
	stun_build_u32(&b, STUN_ATTR_CHANNEL_NUMBER, 0x40000000);
	stun_build_u32(&b, STUN_ATTR_CHANNEL_NUMBER, 0x4FFF0000);
	stun_build_u32(&b, STUN_ATTR_CHANNEL_NUMBER, 0x3FFF0000);
	stun_build_u32(&b, STUN_ATTR_CHANNEL_NUMBER, 0x50000000);
	stun_build_u32(&b, STUN_ATTR_CHANNEL_NUMBER, 0x7FFF0000);
	stun_build_attr(&b, STUN_ATTR_CHANNEL_NUMBER, "\x40\0", 2);
	n = (size_t)stun_build_finish(&b);
	assert_int_equal(stun_parse(buf, n, &m), 0);
	assert_int_equal(stun_get_channel_number(&m, &m.attrs[0], &ch), 0);
	assert_int_equal(ch, 0x4000);
	assert_int_equal(stun_get_channel_number(&m, &m.attrs[1], &ch), 0);
	assert_int_equal(ch, 0x4FFF);
	assert_int_equal(stun_get_channel_number(&m, &m.attrs[2], &ch), STUN_E_CHANNEL);
	assert_int_equal(stun_get_channel_number(&m, &m.attrs[3], &ch), STUN_E_CHANNEL);
	assert_int_equal(ch, 0x5000); /* still reported, for an RFC 5766 server */
	assert_int_equal(stun_get_channel_number(&m, &m.attrs[4], &ch), STUN_E_CHANNEL);
	assert_int_equal(ch, 0x7FFF);
	assert_int_equal(stun_get_channel_number(&m, &m.attrs[5], &ch), STUN_E_VALUE);
}

static void test_stun_channel_data_parses_and_refuses_reserved_numbers(void **state)
{
	uint8_t buf[64] = {0};
	struct stun_channel_data cd;

	(void)state;
	assert_int_equal(stun_channel_data_header(buf, 0x4001, 5), 0);
	memcpy(buf + 4, "hello", 5);
	/* UDP: padding optional */
	assert_int_equal(stun_channel_data_parse(buf, 9, false, &cd), 0);
	assert_int_equal(cd.channel, 0x4001);
	assert_int_equal(cd.len, 5);
	assert_memory_equal(cd.data, "hello", 5);
	assert_int_equal(stun_channel_data_parse(buf, 12, false, &cd), 0);
	assert_int_equal(stun_channel_data_parse(buf, 13, false, &cd), STUN_E_LENGTH);
	assert_int_equal(stun_channel_data_parse(buf, 8, false, &cd), STUN_E_SHORT);
	assert_int_equal(stun_channel_data_parse(buf, 3, false, &cd), STUN_E_SHORT);
	/* stream: exactly padded */
	assert_int_equal(stun_channel_data_size(5, true), 12);
	assert_int_equal(stun_channel_data_parse(buf, 12, true, &cd), 0);
	assert_int_equal(stun_channel_data_parse(buf, 9, true, &cd), STUN_E_LENGTH);
	/* reserved 0x5000-0x7FFF: reported, but filled in for an RFC 5766 server */
	wr16(buf, 0x5000);
	assert_int_equal(stun_channel_data_parse(buf, 9, false, &cd), STUN_E_CHANNEL);
	assert_int_equal(cd.channel, 0x5000);
	assert_int_equal(cd.len, 5);
	wr16(buf, 0x7FFF);
	assert_int_equal(stun_channel_data_parse(buf, 9, false, &cd), STUN_E_CHANNEL);
	assert_int_equal(cd.channel, 0x7FFF);
	/* malformed ones are not filled in */
	assert_int_equal(stun_channel_data_parse(buf, 8, false, &cd), STUN_E_SHORT);
	assert_null(cd.data);
	wr16(buf, 0x0001);
	assert_int_equal(stun_channel_data_parse(buf, 9, false, &cd), STUN_E_NOT_STUN);
	wr16(buf, 0x8001);
	assert_int_equal(stun_channel_data_parse(buf, 9, false, &cd), STUN_E_NOT_STUN);
	assert_int_equal(stun_channel_data_header(buf, 0x3FFF, 1), STUN_E_CHANNEL);
	assert_int_equal(stun_channel_data_header(buf, 0x8000, 1), STUN_E_CHANNEL);
	assert_int_equal(stun_channel_data_header(buf, 0x73D9, 1), 0);
	assert_int_equal(buf[0] << 8 | buf[1], 0x73D9);
}

static void test_stun_classify_demultiplexes_on_the_first_two_bits(void **state)
{
	(void)state;
	assert_int_equal(stun_classify((const uint8_t *)"\x00", 1), STUN_KIND_STUN);
	assert_int_equal(stun_classify((const uint8_t *)"\x3f", 1), STUN_KIND_STUN);
	assert_int_equal(stun_classify((const uint8_t *)"\x40", 1), STUN_KIND_CHANNEL);
	assert_int_equal(stun_classify((const uint8_t *)"\x7f", 1), STUN_KIND_CHANNEL);
	assert_int_equal(stun_classify((const uint8_t *)"\x80", 1), STUN_KIND_OTHER);
	assert_int_equal(stun_classify((const uint8_t *)"\x16", 0), STUN_KIND_OTHER);
}

static void test_stun_frame_tells_the_size_of_the_next_stream_message(void **state)
{
	uint8_t buf[512], cd[8] = {0x40, 0x02, 0x00, 0x03, 'a', 'b', 'c', 0};
	size_t n = make_allocate(buf, sizeof(buf), true, true), need;
	struct stun_channel_data chd;

	(void)state;
	assert_int_equal(stun_frame(buf, 0, &need), 0);
	assert_int_equal(need, 4);
	assert_int_equal(stun_frame(buf, 3, &need), 0);
	assert_int_equal(need, 4);
	assert_int_equal(stun_frame(buf, 4, &need), 0);
	assert_int_equal(need, n);
	assert_int_equal(stun_frame(buf, n, &need), 0);
	assert_int_equal(need, n);
	assert_int_equal(stun_frame(cd, 2, &need), 0);
	assert_int_equal(need, 4);
	assert_int_equal(stun_frame(cd, 4, &need), 0);
	assert_int_equal(need, 8); /* padded on streams */
	/* a reserved channel number is framed (the stream stays in sync), then refused */
	cd[0] = 0x50;
	assert_int_equal(stun_frame(cd, 4, &need), 0);
	assert_int_equal(need, 8);
	assert_int_equal(stun_channel_data_parse(cd, need, true, &chd), STUN_E_CHANNEL);
	/* out of sync */
	buf[7] ^= 1;
	assert_int_equal(stun_frame(buf, 8, &need), STUN_E_COOKIE);
	buf[7] ^= 1;
	buf[3] |= 1;
	assert_int_equal(stun_frame(buf, 4, &need), STUN_E_LENGTH);
	assert_int_equal(stun_frame((const uint8_t *)"\x80\0\0\0", 4, &need), STUN_E_NOT_STUN);
	assert_int_equal(stun_frame((const uint8_t *)"\x16\3\1", 1, &need), 0);
	assert_int_equal(stun_frame((const uint8_t *)"\xc0", 1, &need), STUN_E_NOT_STUN);
}

static void test_stun_builder_refuses_a_full_buffer_and_stays_failed(void **state)
{
	uint8_t buf[32];
	struct stun_builder b;

	(void)state;
	assert_int_equal(stun_build_init(&b, buf, 19, STUN_METHOD_BINDING, STUN_REQUEST, tid),
			 STUN_E_SPACE);
	assert_int_equal(
	    stun_build_init(&b, buf, sizeof(buf), STUN_METHOD_BINDING, STUN_REQUEST, tid), 0);
	assert_int_equal(stun_build_attr(&b, STUN_ATTR_SOFTWARE, "abcd", 4), 0);
	assert_int_equal(stun_build_attr(&b, STUN_ATTR_SOFTWARE, "abcd", 4), STUN_E_SPACE);
	assert_int_equal(stun_build_u32(&b, STUN_ATTR_LIFETIME, 1), STUN_E_SPACE);
	assert_int_equal(stun_build_fingerprint(&b), STUN_E_SPACE);
	assert_int_equal(stun_build_finish(&b), STUN_E_SPACE);
}

static void test_stun_builder_keeps_integrity_and_fingerprint_last(void **state)
{
	uint8_t buf[256];
	struct stun_builder b;

	(void)state;
	stun_build_init(&b, buf, sizeof(buf), STUN_METHOD_BINDING, STUN_REQUEST, tid);
	stun_build_integrity(&b, key, sizeof(key));
	assert_int_equal(stun_build_u32(&b, STUN_ATTR_LIFETIME, 1), STUN_E_ORDER);
	stun_build_init(&b, buf, sizeof(buf), STUN_METHOD_BINDING, STUN_REQUEST, tid);
	stun_build_fingerprint(&b);
	assert_int_equal(stun_build_integrity(&b, key, sizeof(key)), STUN_E_ORDER);
	stun_build_init(&b, buf, sizeof(buf), STUN_METHOD_BINDING, STUN_REQUEST, tid);
	stun_build_integrity_sha256(&b, key, sizeof(key));
	assert_int_equal(stun_build_integrity(&b, key, sizeof(key)), STUN_E_ORDER);
	stun_build_init(&b, buf, sizeof(buf), STUN_METHOD_BINDING, STUN_REQUEST, tid);
	stun_build_integrity(&b, key, sizeof(key));
	assert_int_equal(stun_build_integrity(&b, key, sizeof(key)), STUN_E_ORDER);
	stun_build_init(&b, buf, sizeof(buf), STUN_METHOD_BINDING, STUN_REQUEST, tid);
	stun_build_fingerprint(&b);
	assert_int_equal(stun_build_fingerprint(&b), STUN_E_ORDER);
}

static void test_stun_integrity_key_longer_than_a_block_is_hashed(void **state)
{
	uint8_t buf[256], longkey[100];
	struct stun_builder b;
	struct stun_msg m;
	size_t n;

	(void)state;
	memset(longkey, 0x5a, sizeof(longkey));
	stun_build_init(&b, buf, sizeof(buf), STUN_METHOD_BINDING, STUN_REQUEST, tid);
	stun_build_integrity(&b, longkey, sizeof(longkey));
	stun_build_integrity_sha256(&b, longkey, sizeof(longkey));
	n = (size_t)stun_build_finish(&b);
	assert_int_equal(stun_parse(buf, n, &m), 0);
	assert_int_equal(stun_check_integrity(&m, longkey, sizeof(longkey)), 0);
	assert_int_equal(stun_check_integrity_sha256(&m, longkey, sizeof(longkey)), 0);
	assert_int_equal(stun_check_integrity(&m, longkey, sizeof(longkey) - 1), STUN_E_INTEGRITY);
}

static void test_stun_password_algorithms_decode_with_bounds(void **state)
{
	static const uint16_t offer[2] = {STUN_PWALG_SHA256, STUN_PWALG_MD5};
	uint8_t buf[256];
	struct stun_builder b;
	struct stun_msg m;
	uint16_t algs[4], alg;
	size_t n, cnt;

	(void)state;
	stun_build_init(&b, buf, sizeof(buf), STUN_METHOD_ALLOCATE, STUN_ERROR_RESPONSE, tid);
	stun_build_password_algorithms(&b, offer, 2);
	/* one algorithm with 3 bytes of parameters (padded) */
	stun_build_attr(&b, STUN_ATTR_PASSWORD_ALGORITHMS, "\0\7\0\3abc\0\0\1\0\0", 12);
	stun_build_attr(&b, STUN_ATTR_PASSWORD_ALGORITHMS, "\0\7\0\5abc\0", 8); /* overrun */
	stun_build_attr(&b, STUN_ATTR_PASSWORD_ALGORITHMS, "\0\1", 2);
	stun_build_attr(&b, STUN_ATTR_PASSWORD_ALGORITHM, "\0\2\0\0\0\0\0\0", 8); /* extra */
	n = (size_t)stun_build_finish(&b);
	assert_int_equal(stun_parse(buf, n, &m), 0);
	assert_int_equal(stun_get_password_algorithms(&m, &m.attrs[0], algs, 4, &cnt), 0);
	assert_int_equal(cnt, 2);
	assert_int_equal(algs[0], STUN_PWALG_SHA256);
	assert_int_equal(algs[1], STUN_PWALG_MD5);
	assert_int_equal(stun_get_password_algorithms(&m, &m.attrs[1], algs, 1, &cnt), 0);
	assert_int_equal(cnt, 2);
	assert_int_equal(algs[0], 7);
	assert_int_equal(stun_get_password_algorithms(&m, &m.attrs[2], algs, 4, &cnt),
			 STUN_E_VALUE);
	assert_int_equal(stun_get_password_algorithms(&m, &m.attrs[3], algs, 4, &cnt),
			 STUN_E_VALUE);
	assert_int_equal(stun_get_password_algorithm(&m, &m.attrs[4], &alg), STUN_E_VALUE);
}

static void test_stun_turn_attribute_decoders_check_lengths(void **state)
{
	uint8_t buf[256];
	struct stun_builder b;
	struct stun_msg m;
	uint8_t fam, proto;
	bool r;
	uint64_t tok;
	const uint8_t *uh;
	uint32_t v;
	size_t n;

	(void)state;
	stun_build_init(&b, buf, sizeof(buf), STUN_METHOD_ALLOCATE, STUN_REQUEST, tid);
	stun_build_attr(&b, STUN_ATTR_REQUESTED_ADDRESS_FAMILY, "\2\0\0\0", 4);
	stun_build_attr(&b, STUN_ATTR_REQUESTED_ADDRESS_FAMILY, "\3\0\0\0", 4);
	stun_build_attr(&b, STUN_ATTR_EVEN_PORT, "\x80", 1);
	stun_build_attr(&b, STUN_ATTR_EVEN_PORT, "\x80\0", 2);
	stun_build_attr(&b, STUN_ATTR_RESERVATION_TOKEN, "\1\2\3\4\5\6\7\x8", 8);
	stun_build_attr(&b, STUN_ATTR_RESERVATION_TOKEN, "\1\2\3\4", 4);
	stun_build_attr(&b, STUN_ATTR_REQUESTED_TRANSPORT, "\x11\0\0", 3);
	stun_build_attr(&b, STUN_ATTR_USERHASH, "short", 5);
	stun_build_attr(&b, STUN_ATTR_LIFETIME, "\0\0\1", 3);
	stun_build_attr(&b, STUN_ATTR_DONT_FRAGMENT, NULL, 0);
	n = (size_t)stun_build_finish(&b);
	assert_int_equal(stun_parse(buf, n, &m), 0);
	assert_int_equal(m.nunknown, 0);
	assert_int_equal(stun_get_family(&m, &m.attrs[0], &fam), 0);
	assert_int_equal(fam, STUN_AF_IPV6);
	assert_int_equal(stun_get_family(&m, &m.attrs[1], &fam), STUN_E_VALUE);
	assert_int_equal(stun_get_even_port(&m, &m.attrs[2], &r), 0);
	assert_true(r);
	assert_int_equal(stun_get_even_port(&m, &m.attrs[3], &r), STUN_E_VALUE);
	assert_int_equal(stun_get_reservation_token(&m, &m.attrs[4], &tok), 0);
	assert_true(tok == 0x0102030405060708ull);
	assert_int_equal(stun_get_reservation_token(&m, &m.attrs[5], &tok), STUN_E_VALUE);
	assert_int_equal(stun_get_requested_transport(&m, &m.attrs[6], &proto), STUN_E_VALUE);
	assert_int_equal(stun_get_userhash(&m, &m.attrs[7], &uh), STUN_E_VALUE);
	assert_int_equal(stun_get_u32(&m, &m.attrs[8], &v), STUN_E_VALUE);
	assert_non_null(stun_find(&m, STUN_ATTR_DONT_FRAGMENT));
}

static void test_stun_strerror_names_every_error(void **state)
{
	(void)state;
	for (int e = STUN_E_INTERNAL; e <= 0; e++)
		assert_string_not_equal(stun_strerror(e), "unknown error");
	assert_string_equal(stun_strerror(-99), "unknown error");
	assert_string_equal(stun_error_reason(401), "Unauthorized");
	assert_string_equal(stun_error_reason(499), "Error");
}

/* ---- interop: coturn's turnutils_uclient against a responder on this codec ---- */

struct seen {
	unsigned allocate_401, allocate_ok, refresh, channel_bind, create_permission, bad;
};

static bool names_loopback_peer(const struct stun_msg *m)
{
	const struct stun_attr *a = stun_find(m, STUN_ATTR_XOR_PEER_ADDRESS);
	struct stun_addr peer;

	return a && stun_get_xor_addr(m, a, &peer) == 0 && peer.family == STUN_AF_IPV4 &&
	       memcmp(peer.ip, "\x7f\0\0\1", 4) == 0;
}

/* Answer one request from the client the way a TURN server would, and record it. */
static void respond(int fd, const uint8_t *in, size_t n, const struct sockaddr_in *from,
		    const uint8_t *ltkey, struct seen *seen)
{
	uint8_t out[1024];
	struct stun_builder b;
	struct stun_addr src, relayed;
	struct stun_msg m;
	struct str user;
	const struct stun_attr *a;
	uint16_t ch;
	long len;

	if (stun_classify(in, n) != STUN_KIND_STUN)
		return; /* ChannelData: nothing is relayed here */
	if (stun_parse(in, n, &m) != 0 || m.cls != STUN_REQUEST || m.nunknown ||
	    (m.fp >= 0 && stun_check_fingerprint(&m) != 0)) {
		seen->bad++;
		return;
	}
	stun_addr_from_sockaddr(&src, (const struct sockaddr *)from);
	if (stun_get_username(&m, &user) != 0) {
		stun_build_init(&b, out, sizeof(out), m.method, STUN_ERROR_RESPONSE, m.tid);
		stun_build_error(&b, 401, NULL);
		stun_build_str(&b, STUN_ATTR_REALM, STR_LIT("example.org"));
		stun_build_str(&b, STUN_ATTR_NONCE, STR_LIT("f//499k954d6OL34oL9FSTvy64sA"));
		stun_build_fingerprint(&b);
		seen->allocate_401 += m.method == STUN_METHOD_ALLOCATE;
	} else {
		if (stun_check_integrity(&m, ltkey, TURN_KEY_MD5_LEN) != 0) {
			seen->bad++;
			return;
		}
		stun_build_init(&b, out, sizeof(out), m.method, STUN_SUCCESS, m.tid);
		switch (m.method) {
		case STUN_METHOD_ALLOCATE:
			relayed = src;
			relayed.port = 50001;
			stun_build_xor_addr(&b, STUN_ATTR_XOR_RELAYED_ADDRESS, &relayed);
			stun_build_xor_addr(&b, STUN_ATTR_XOR_MAPPED_ADDRESS, &src);
			stun_build_u32(&b, STUN_ATTR_LIFETIME, 600);
			seen->allocate_ok++;
			break;
		case STUN_METHOD_REFRESH:
			seen->refresh++;
			break;
		case STUN_METHOD_CHANNEL_BIND:
			a = stun_find(&m, STUN_ATTR_CHANNEL_NUMBER);
			if (a && stun_get_channel_number(&m, a, &ch) != STUN_E_VALUE &&
			    ch >= STUN_CHANNEL_MIN && ch <= STUN_CHANNEL_MAX_RFC5766 &&
			    names_loopback_peer(&m))
				seen->channel_bind++;
			else
				seen->bad++;
			break;
		case STUN_METHOD_CREATE_PERMISSION:
			if (names_loopback_peer(&m))
				seen->create_permission++;
			else
				seen->bad++;
			break;
		}
		stun_build_integrity(&b, ltkey, TURN_KEY_MD5_LEN);
		stun_build_fingerprint(&b);
	}
	if ((len = stun_build_finish(&b)) > 0)
		sendto(fd, out, (size_t)len, 0, (const struct sockaddr *)from, sizeof(*from));
}

static void test_stun_serves_coturn_turnutils_uclient_long_term_requests(void **state)
{
	struct sockaddr_in a = {0}, from;
	struct timeval tv = {0, 100000};
	socklen_t alen = sizeof(a);
	uint8_t ltkey[TURN_KEY_MAX], in[2048];
	struct seen seen = {0};
	char port[16], peer[16];
	struct timespec t0, t;
	pid_t pid;
	int fd;

	(void)state;
	if (access("/usr/bin/turnutils_uclient", X_OK) != 0)
		skip();
	assert_int_equal(turn_cred_key(TURN_PWALG_MD5, STR_LIT("alice"), STR_LIT("example.org"),
				       STR_LIT("wonderland"), ltkey),
			 TURN_KEY_MD5_LEN);
	assert_true((fd = socket(AF_INET, SOCK_DGRAM, 0)) >= 0);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	snprintf(port, sizeof(port), "%u", ntohs(a.sin_port));
	snprintf(peer, sizeof(peer), "%u", ntohs(a.sin_port) + 1u);
	assert_true((pid = fork()) >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		execl("/usr/bin/turnutils_uclient", "turnutils_uclient", "-p", port, "-u", "alice",
		      "-w", "wonderland", "-n", "1", "-m", "1", "-e", "127.0.0.1", "-r", peer, "-c",
		      "127.0.0.1", (char *)NULL);
		_exit(127);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(fd, in, sizeof(in), 0, (struct sockaddr *)&from, &flen);
		if (n > 0)
			respond(fd, in, (size_t)n, &from, ltkey, &seen);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((!seen.channel_bind || !seen.create_permission) && t.tv_sec - t0.tv_sec < 10);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	close(fd);
	/* the client took our 401 and our signed answers: it went on past Allocate */
	assert_int_equal(seen.bad, 0);
	assert_true(seen.allocate_401 >= 1);
	assert_true(seen.allocate_ok >= 1);
	assert_true(seen.channel_bind >= 1);
	assert_true(seen.create_permission >= 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stun_parses_what_the_builder_writes),
	    cmocka_unit_test(test_stun_method_and_class_bits_round_trip),
	    cmocka_unit_test(test_stun_rejects_short_header),
	    cmocka_unit_test(test_stun_rejects_top_bits_set),
	    cmocka_unit_test(test_stun_rejects_bad_cookie),
	    cmocka_unit_test(test_stun_rejects_length_not_multiple_of_4),
	    cmocka_unit_test(test_stun_rejects_trailing_bytes_beyond_the_stated_length),
	    cmocka_unit_test(test_stun_rejects_attribute_length_overflow),
	    cmocka_unit_test(test_stun_rejects_truncated_attribute),
	    cmocka_unit_test(test_stun_rejects_more_attributes_than_the_limit),
	    cmocka_unit_test(test_stun_reports_unknown_comprehension_required_attribute),
	    cmocka_unit_test(test_stun_ignores_attributes_after_message_integrity),
	    cmocka_unit_test(
		test_stun_counts_sha256_integrity_and_fingerprint_after_message_integrity),
	    cmocka_unit_test(test_stun_integrity_over_a_changed_message_fails),
	    cmocka_unit_test(test_stun_integrity_sha256_accepts_truncation_and_rejects_bad_lengths),
	    cmocka_unit_test(test_stun_rejects_message_integrity_of_wrong_length),
	    cmocka_unit_test(test_stun_fingerprint_mismatch_is_detected),
	    cmocka_unit_test(test_stun_rejects_oversize_username),
	    cmocka_unit_test(test_stun_xor_peer_addresses_repeat_and_round_trip),
	    cmocka_unit_test(test_stun_rejects_malformed_addresses),
	    cmocka_unit_test(test_stun_sockaddr_conversions_round_trip),
	    cmocka_unit_test(test_stun_error_code_round_trips_and_rejects_bad_classes),
	    cmocka_unit_test(test_stun_channel_number_out_of_range_is_refused),
	    cmocka_unit_test(test_stun_channel_data_parses_and_refuses_reserved_numbers),
	    cmocka_unit_test(test_stun_classify_demultiplexes_on_the_first_two_bits),
	    cmocka_unit_test(test_stun_frame_tells_the_size_of_the_next_stream_message),
	    cmocka_unit_test(test_stun_builder_refuses_a_full_buffer_and_stays_failed),
	    cmocka_unit_test(test_stun_builder_keeps_integrity_and_fingerprint_last),
	    cmocka_unit_test(test_stun_integrity_key_longer_than_a_block_is_hashed),
	    cmocka_unit_test(test_stun_password_algorithms_decode_with_bounds),
	    cmocka_unit_test(test_stun_turn_attribute_decoders_check_lengths),
	    cmocka_unit_test(test_stun_strerror_names_every_error),
	    cmocka_unit_test(test_stun_serves_coturn_turnutils_uclient_long_term_requests),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
