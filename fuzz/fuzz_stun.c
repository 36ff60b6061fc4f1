/*
 * libFuzzer target for the STUN codec: stun_frame, stun_parse, every
 * attribute decoder on every attribute, the integrity and fingerprint checks
 * with a fixed key, ChannelData parsing (UDP and stream), and the nonce and
 * ephemeral-username parsers of turn/cred. Properties checked: every
 * attribute lies inside the message and counts stay within their limits;
 * an address that decodes encodes back to the same bytes; stun_find and
 * stun_find_next visit each attribute once; a parsed message copied through
 * the builder, signed and parsed again keeps its attributes and verifies.
 * The input is copied into an exact-size buffer so any read past the end is
 * caught.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "turn/cred.h"
#include "turn/stun.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t key[16] = "fuzz-key-16bytes";

/* An address that decodes must encode back to the same value bytes. */
static void addr_round_trip(const struct stun_msg *m, const struct stun_attr *a,
			    const struct stun_addr *addr, bool xor)
{
	uint8_t out[STUN_HEADER_LEN + 4 + 20];
	struct stun_builder b;

	stun_build_init(&b, out, sizeof(out), m->method, m->cls, m->tid);
	if (xor)
		stun_build_xor_addr(&b, a->type, addr);
	else
		stun_build_addr(&b, a->type, addr);
	if (stun_build_finish(&b) != (long)(STUN_HEADER_LEN + 4 + a->len) ||
	    memcmp(out + STUN_HEADER_LEN + 4, stun_attr_value(m, a), a->len) != 0)
		abort();
}

/* stun_find / stun_find_next visit every counted attribute of a type once, in order. */
static void find_all(const struct stun_msg *m)
{
	struct str s;

	for (unsigned i = 0; i < m->nattrs; i++) {
		const struct stun_attr *f = stun_find(m, m->attrs[i].type);
		unsigned seen = 0;
		for (; f; f = stun_find_next(m, f))
			seen += f == &m->attrs[i];
		if (seen != 1)
			abort();
	}
	if (stun_get_username(m, &s) == 0 && s.len > STUN_MAX_USERNAME)
		abort();
	if (stun_get_realm(m, &s) == 0 && s.len > STUN_MAX_TEXT)
		abort();
	if (stun_get_nonce(m, &s) == 0 && s.len > STUN_MAX_TEXT)
		abort();
}

static void decode_all(const struct stun_msg *m)
{
	for (unsigned i = 0; i < m->nattrs; i++) {
		const struct stun_attr *a = &m->attrs[i];
		struct stun_addr addr;
		struct str s;
		uint16_t types[8], ch;
		size_t n;
		uint32_t v;
		uint8_t b;
		bool r;
		uint64_t tok;
		const uint8_t *h;
		int code;

		if (a->off < STUN_HEADER_LEN + 4 || a->off + a->len > m->len)
			abort();
		if (stun_get_addr(m, a, &addr) == 0)
			addr_round_trip(m, a, &addr, false);
		if (stun_get_xor_addr(m, a, &addr) == 0)
			addr_round_trip(m, a, &addr, true);
		(void)stun_get_u32(m, a, &v);
		if (stun_get_text(m, a, STUN_MAX_USERNAME, &s) == 0 && s.len > STUN_MAX_USERNAME)
			abort();
		(void)stun_get_userhash(m, a, &h);
		if (stun_get_error(m, a, &code, &s) == 0 && (code < 300 || code > 699))
			abort();
		(void)stun_get_unknown_attributes(m, a, types, 8, &n);
		(void)stun_get_password_algorithm(m, a, &types[0]);
		(void)stun_get_password_algorithms(m, a, types, 8, &n);
		(void)stun_get_requested_transport(m, a, &b);
		if (stun_get_channel_number(m, a, &ch) == 0 &&
		    (ch < STUN_CHANNEL_MIN || ch > STUN_CHANNEL_MAX))
			abort();
		(void)stun_get_family(m, a, &b);
		(void)stun_get_even_port(m, a, &r);
		(void)stun_get_reservation_token(m, a, &tok);
	}
}

/* Copy the counted attributes through the builder, sign, parse again. */
static void rebuild(const struct stun_msg *m)
{
	static uint8_t out[STUN_MAX_MSG + 64];
	struct stun_builder b;
	struct stun_msg again;
	unsigned copied = 0;
	long n;

	if (stun_build_init(&b, out, sizeof(out), m->method, m->cls, m->tid) < 0)
		abort();
	for (unsigned i = 0; i < m->nattrs; i++) {
		const struct stun_attr *a = &m->attrs[i];
		if (a->type == STUN_ATTR_MESSAGE_INTEGRITY ||
		    a->type == STUN_ATTR_MESSAGE_INTEGRITY_SHA256 ||
		    a->type == STUN_ATTR_FINGERPRINT)
			continue;
		stun_build_attr(&b, a->type, stun_attr_value(m, a), a->len);
		copied++;
	}
	if (copied + 3 > STUN_MAX_ATTRS)
		return;
	stun_build_integrity(&b, key, sizeof(key));
	stun_build_integrity_sha256(&b, key, sizeof(key));
	stun_build_fingerprint(&b);
	n = stun_build_finish(&b);
	if (n < 0) {
		if (n != STUN_E_SPACE)
			abort();
		return; /* the original plus 64 bytes of MACs did not fit in 64 KiB */
	}
	if (stun_parse(out, (size_t)n, &again) != 0 || again.nattrs != copied + 3 ||
	    again.method != m->method || again.cls != m->cls)
		abort();
	if (stun_check_integrity(&again, key, sizeof(key)) != 0 ||
	    stun_check_integrity_sha256(&again, key, sizeof(key)) != 0 ||
	    stun_check_fingerprint(&again) != 0)
		abort();
}

static void creds(const uint8_t *buf, size_t size)
{
	struct str s = str_make((const char *)buf, size);
	uint32_t feat;
	int64_t exp;
	struct str user;

	(void)turn_nonce_features(s, &feat);
	(void)turn_nonce_check(key, sizeof(key), STR_LIT("realm"), s, 600, 1700000000, &feat);
	if (turn_cred_ephemeral_parse(s, &exp, &user) == 0 && exp < 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf = malloc(size ? size : 1);
	struct stun_msg m;
	struct stun_channel_data cd;
	size_t need;

	if (!buf)
		return 0;
	if (size)
		memcpy(buf, data, size);

	if (stun_frame(buf, size, &need) == 0 && need < 4)
		abort();
	(void)stun_classify(buf, size);
	if (stun_channel_data_parse(buf, size, false, &cd) == 0 &&
	    (cd.data + cd.len > buf + size || cd.channel < STUN_CHANNEL_MIN))
		abort();
	(void)stun_channel_data_parse(buf, size, true, &cd);

	if (stun_parse(buf, size, &m) == 0) {
		if (m.nattrs > STUN_MAX_ATTRS || m.len != size)
			abort();
		decode_all(&m);
		find_all(&m);
		(void)stun_check_integrity(&m, key, sizeof(key));
		(void)stun_check_integrity_sha256(&m, key, sizeof(key));
		(void)stun_check_fingerprint(&m);
		rebuild(&m);
	}
	creds(buf, size);
	free(buf);
	return 0;
}
