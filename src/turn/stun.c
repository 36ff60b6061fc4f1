/*
 * STUN codec: header and attribute walk, attribute decoders, ChannelData,
 * stream framing, the builder, MESSAGE-INTEGRITY(-SHA256) and FINGERPRINT.
 * See stun.h for the contract.
 *
 * Integrity is HMAC (RFC 2104) done over EVP digests so that the header can
 * be fed with its length field adjusted (RFC 8489 §14.5) without copying the
 * message: the MAC input is the 20-byte header with the length patched, then
 * the attributes before the MAC attribute. The digests are fetched once.
 *
 * Must never: read outside [buf, buf + n), allocate (beyond OpenSSL's digest
 * contexts), compare MACs with memcmp, or keep key material after returning.
 */
#include "turn/stun.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "core/md.h"
#include "core/secmem.h"

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static size_t pad4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

const char *stun_strerror(int err)
{
	switch (err) {
	case 0:
		return "ok";
	case STUN_E_SHORT:
		return "truncated message";
	case STUN_E_NOT_STUN:
		return "not a STUN or ChannelData message";
	case STUN_E_COOKIE:
		return "bad magic cookie";
	case STUN_E_LENGTH:
		return "bad message length";
	case STUN_E_ATTR_LEN:
		return "attribute length overflow";
	case STUN_E_TOO_MANY:
		return "too many attributes";
	case STUN_E_VALUE:
		return "malformed attribute value";
	case STUN_E_ABSENT:
		return "attribute absent";
	case STUN_E_INTEGRITY:
		return "message integrity mismatch";
	case STUN_E_FINGERPRINT:
		return "fingerprint mismatch";
	case STUN_E_CHANNEL:
		return "channel number out of range";
	case STUN_E_SPACE:
		return "buffer too small";
	case STUN_E_ORDER:
		return "attribute after integrity or fingerprint";
	case STUN_E_INTERNAL:
		return "crypto failure";
	}
	return "unknown error";
}

/* ---- demultiplexing and framing ---- */

enum stun_kind stun_classify(const uint8_t *buf, size_t n)
{
	if (n < 1)
		return STUN_KIND_OTHER;
	switch (buf[0] >> 6) {
	case 0:
		return STUN_KIND_STUN;
	case 1:
		return STUN_KIND_CHANNEL;
	}
	return STUN_KIND_OTHER;
}

int stun_frame(const uint8_t *buf, size_t n, size_t *need)
{
	uint16_t len;

	*need = 4;
	if (n < 4)
		return n == 0 || stun_classify(buf, n) != STUN_KIND_OTHER ? 0 : STUN_E_NOT_STUN;
	len = rd16(buf + 2);
	switch (stun_classify(buf, n)) {
	case STUN_KIND_STUN:
		if (len & 3)
			return STUN_E_LENGTH;
		if (n >= 8 && rd32(buf + 4) != STUN_MAGIC_COOKIE)
			return STUN_E_COOKIE;
		*need = STUN_HEADER_LEN + (size_t)len;
		return 0;
	case STUN_KIND_CHANNEL:
		*need = stun_channel_data_size(len, true); /* RFC 8656 §12.5 */
		return 0;
	default:
		return STUN_E_NOT_STUN;
	}
}

/* ---- parsing ---- */

bool stun_attr_known(uint16_t type)
{
	switch (type) {
	case STUN_ATTR_MAPPED_ADDRESS:
	case STUN_ATTR_USERNAME:
	case STUN_ATTR_MESSAGE_INTEGRITY:
	case STUN_ATTR_ERROR_CODE:
	case STUN_ATTR_UNKNOWN_ATTRIBUTES:
	case STUN_ATTR_CHANNEL_NUMBER:
	case STUN_ATTR_LIFETIME:
	case STUN_ATTR_XOR_PEER_ADDRESS:
	case STUN_ATTR_DATA:
	case STUN_ATTR_REALM:
	case STUN_ATTR_NONCE:
	case STUN_ATTR_XOR_RELAYED_ADDRESS:
	case STUN_ATTR_REQUESTED_ADDRESS_FAMILY:
	case STUN_ATTR_EVEN_PORT:
	case STUN_ATTR_REQUESTED_TRANSPORT:
	case STUN_ATTR_DONT_FRAGMENT:
	case STUN_ATTR_MESSAGE_INTEGRITY_SHA256:
	case STUN_ATTR_PASSWORD_ALGORITHM:
	case STUN_ATTR_USERHASH:
	case STUN_ATTR_XOR_MAPPED_ADDRESS:
	case STUN_ATTR_RESERVATION_TOKEN:
	case STUN_ATTR_PRIORITY:
	case STUN_ATTR_USE_CANDIDATE:
	case STUN_ATTR_ADDITIONAL_ADDRESS_FAMILY:
	case STUN_ATTR_ADDRESS_ERROR_CODE:
	case STUN_ATTR_PASSWORD_ALGORITHMS:
	case STUN_ATTR_ALTERNATE_DOMAIN:
	case STUN_ATTR_ICMP:
	case STUN_ATTR_SOFTWARE:
	case STUN_ATTR_ALTERNATE_SERVER:
	case STUN_ATTR_FINGERPRINT:
	case STUN_ATTR_ICE_CONTROLLED:
	case STUN_ATTR_ICE_CONTROLLING:
		return true;
	}
	return false;
}

static void note_unknown(struct stun_msg *m, uint16_t type)
{
	unsigned kept = m->nunknown < STUN_MAX_UNKNOWN ? m->nunknown : STUN_MAX_UNKNOWN;

	for (unsigned i = 0; i < kept; i++)
		if (m->unknown[i] == type)
			return;
	if (m->nunknown < STUN_MAX_UNKNOWN)
		m->unknown[m->nunknown] = type;
	m->nunknown++;
}

/* Fixed shapes of the attributes the checks rely on (§14.5-§14.7). */
static bool integrity_len_ok(uint16_t type, uint16_t len)
{
	switch (type) {
	case STUN_ATTR_MESSAGE_INTEGRITY:
		return len == STUN_MI_LEN;
	case STUN_ATTR_MESSAGE_INTEGRITY_SHA256:
		return len >= STUN_MI256_MIN && len <= STUN_MI256_LEN && len % 4 == 0;
	case STUN_ATTR_FINGERPRINT:
		return len == 4;
	}
	return true;
}

/*
 * Does this attribute count, given what came before it? RFC 8489 §14.5:
 * after MESSAGE-INTEGRITY only MESSAGE-INTEGRITY-SHA256 and FINGERPRINT;
 * §14.6: after MESSAGE-INTEGRITY-SHA256 only FINGERPRINT; §14.7: FINGERPRINT
 * is last, so nothing after it.
 */
static bool attr_counts(const struct stun_msg *m, uint16_t type)
{
	if (m->fp >= 0)
		return false;
	if (m->mi256 >= 0)
		return type == STUN_ATTR_FINGERPRINT;
	if (m->mi >= 0)
		return type == STUN_ATTR_FINGERPRINT || type == STUN_ATTR_MESSAGE_INTEGRITY_SHA256;
	return true;
}

static int walk_attrs(struct stun_msg *m)
{
	size_t off = STUN_HEADER_LEN;

	while (off < m->len) {
		uint16_t type, len;

		if (m->len - off < 4)
			return STUN_E_ATTR_LEN; /* cannot happen: both are multiples of 4 */
		type = rd16(m->buf + off);
		len = rd16(m->buf + off + 2);
		if (pad4(len) > m->len - off - 4)
			return STUN_E_ATTR_LEN;
		if (attr_counts(m, type)) {
			if (m->nattrs == STUN_MAX_ATTRS)
				return STUN_E_TOO_MANY;
			if (!integrity_len_ok(type, len))
				return STUN_E_VALUE;
			if (type == STUN_ATTR_MESSAGE_INTEGRITY)
				m->mi = (int)m->nattrs;
			else if (type == STUN_ATTR_MESSAGE_INTEGRITY_SHA256)
				m->mi256 = (int)m->nattrs;
			else if (type == STUN_ATTR_FINGERPRINT)
				m->fp = (int)m->nattrs;
			if (stun_attr_required(type) && !stun_attr_known(type))
				note_unknown(m, type);
			m->attrs[m->nattrs].type = type;
			m->attrs[m->nattrs].len = len;
			m->attrs[m->nattrs].off = (uint32_t)(off + 4);
			m->nattrs++;
		}
		off += 4 + pad4(len);
	}
	return 0;
}

int stun_parse(const uint8_t *buf, size_t n, struct stun_msg *m)
{
	uint16_t t, len;

	memset(m, 0, offsetof(struct stun_msg, attrs));
	m->mi = m->mi256 = m->fp = -1;
	if (n < STUN_HEADER_LEN)
		return STUN_E_SHORT;
	t = rd16(buf);
	if (t & 0xC000)
		return STUN_E_NOT_STUN; /* §6: the most significant 2 bits are zero */
	if (rd32(buf + 4) != STUN_MAGIC_COOKIE)
		return STUN_E_COOKIE;
	len = rd16(buf + 2);
	if (len & 3)
		return STUN_E_LENGTH;
	if ((size_t)len + STUN_HEADER_LEN > n)
		return STUN_E_SHORT;
	if ((size_t)len + STUN_HEADER_LEN != n)
		return STUN_E_LENGTH;
	m->buf = buf;
	m->len = n;
	m->type = t;
	m->method = (uint16_t)((t & 0x000F) | ((t & 0x00E0) >> 1) | ((t & 0x3E00) >> 2));
	m->cls = (enum stun_class)(((t >> 4) & 1) | ((t >> 7) & 2));
	m->tid = buf + 8;
	return walk_attrs(m);
}

const struct stun_attr *stun_find(const struct stun_msg *m, uint16_t type)
{
	for (unsigned i = 0; i < m->nattrs; i++)
		if (m->attrs[i].type == type)
			return &m->attrs[i];
	return NULL;
}

const struct stun_attr *stun_find_next(const struct stun_msg *m, const struct stun_attr *prev)
{
	size_t i;

	if (!prev || prev < m->attrs || prev >= m->attrs + m->nattrs)
		return NULL;
	for (i = (size_t)(prev - m->attrs) + 1; i < m->nattrs; i++)
		if (m->attrs[i].type == prev->type)
			return &m->attrs[i];
	return NULL;
}

/* ---- integrity and fingerprint ---- */

struct span {
	const void *p;
	size_t n;
};

/*
 * HMAC (RFC 2104) of the concatenated spans. key longer than a block is
 * hashed first. out holds EVP_MAX_MD_SIZE; *outlen set.
 */
static int hmac_spans(const EVP_MD *md, const uint8_t *key, size_t keylen, const struct span *s,
		      size_t ns, uint8_t *out, unsigned *outlen)
{
	uint8_t k[128], pad[128], ih[EVP_MAX_MD_SIZE];
	unsigned ihlen = 0, kl = 0;
	size_t bs;
	EVP_MD_CTX *c;
	int ok;

	if (!md || (bs = (size_t)EVP_MD_get_block_size(md)) > sizeof(k) || !(c = EVP_MD_CTX_new()))
		return STUN_E_INTERNAL;
	memset(k, 0, sizeof(k));
	if (keylen > bs) {
		ok = EVP_Digest(key, keylen, k, &kl, md, NULL) == 1;
	} else {
		if (keylen)
			memcpy(k, key, keylen);
		ok = 1;
	}
	for (size_t i = 0; i < bs; i++)
		pad[i] = k[i] ^ 0x36;
	ok = ok && EVP_DigestInit_ex2(c, md, NULL) == 1 && EVP_DigestUpdate(c, pad, bs) == 1;
	for (size_t i = 0; ok && i < ns; i++)
		ok = EVP_DigestUpdate(c, s[i].p, s[i].n) == 1;
	ok = ok && EVP_DigestFinal_ex(c, ih, &ihlen) == 1;
	for (size_t i = 0; i < bs; i++)
		pad[i] = k[i] ^ 0x5c;
	ok = ok && EVP_DigestInit_ex2(c, md, NULL) == 1 && EVP_DigestUpdate(c, pad, bs) == 1 &&
	     EVP_DigestUpdate(c, ih, ihlen) == 1 && EVP_DigestFinal_ex(c, out, outlen) == 1;
	EVP_MD_CTX_free(c);
	secmem_wipe(k, sizeof(k));
	secmem_wipe(pad, sizeof(pad));
	secmem_wipe(ih, sizeof(ih));
	return ok ? 0 : STUN_E_INTERNAL;
}

/*
 * MAC of buf[0..start) with the header's length field set to
 * start + 4 + vlen - 20, as if the MAC attribute (value vlen) ended the
 * message (RFC 8489 §14.5, §14.6).
 */
static int mac_prefix(const EVP_MD *md, const uint8_t *key, size_t keylen, const uint8_t *buf,
		      size_t start, size_t vlen, uint8_t *out, unsigned *outlen)
{
	uint8_t hdr[STUN_HEADER_LEN];
	struct span s[2];

	memcpy(hdr, buf, sizeof(hdr));
	wr16(hdr + 2, (uint16_t)(start + 4 + vlen - STUN_HEADER_LEN));
	s[0].p = hdr;
	s[0].n = sizeof(hdr);
	s[1].p = buf + STUN_HEADER_LEN;
	s[1].n = start - STUN_HEADER_LEN;
	return hmac_spans(md, key, keylen, s, 2, out, outlen);
}

static int check_mac(const struct stun_msg *m, int idx, const EVP_MD *md, const uint8_t *key,
		     size_t keylen)
{
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned maclen = 0;
	const struct stun_attr *a;
	int rc;

	if (idx < 0)
		return STUN_E_ABSENT;
	a = &m->attrs[idx];
	rc = mac_prefix(md, key, keylen, m->buf, a->off - 4, a->len, mac, &maclen);
	if (rc == 0 && (maclen < a->len || !secmem_eq(mac, m->buf + a->off, a->len)))
		rc = STUN_E_INTEGRITY;
	secmem_wipe(mac, sizeof(mac));
	return rc;
}

int stun_check_integrity(const struct stun_msg *m, const uint8_t *key, size_t keylen)
{
	return check_mac(m, m->mi, md_sha1(), key, keylen);
}

int stun_check_integrity_sha256(const struct stun_msg *m, const uint8_t *key, size_t keylen)
{
	return check_mac(m, m->mi256, md_sha256(), key, keylen);
}

static uint32_t fingerprint(const uint8_t *buf, size_t start)
{
	uint8_t hdr[STUN_HEADER_LEN];
	uLong crc = crc32(0L, Z_NULL, 0);

	memcpy(hdr, buf, sizeof(hdr));
	wr16(hdr + 2, (uint16_t)(start + 8 - STUN_HEADER_LEN));
	crc = crc32(crc, hdr, sizeof(hdr));
	crc = crc32(crc, buf + STUN_HEADER_LEN, (uInt)(start - STUN_HEADER_LEN));
	return (uint32_t)crc ^ STUN_FINGERPRINT_XOR;
}

int stun_check_fingerprint(const struct stun_msg *m)
{
	const struct stun_attr *a;

	if (m->fp < 0)
		return STUN_E_ABSENT;
	a = &m->attrs[m->fp];
	return fingerprint(m->buf, a->off - 4) == rd32(m->buf + a->off) ? 0 : STUN_E_FINGERPRINT;
}

/* ---- attribute decoders ---- */

int stun_addr_from_sockaddr(struct stun_addr *a, const struct sockaddr *sa)
{
	memset(a, 0, sizeof(*a));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		a->family = STUN_AF_IPV4;
		a->port = ntohs(in->sin_port);
		memcpy(a->ip, &in->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		a->family = STUN_AF_IPV6;
		a->port = ntohs(in6->sin6_port);
		memcpy(a->ip, &in6->sin6_addr, 16);
		return 0;
	}
	return -1;
}

int stun_addr_to_sockaddr(const struct stun_addr *a, struct sockaddr *sa, size_t salen)
{
	if (a->family == STUN_AF_IPV4 && salen >= sizeof(struct sockaddr_in)) {
		struct sockaddr_in in;
		memset(&in, 0, sizeof(in));
		in.sin_family = AF_INET;
		in.sin_port = htons(a->port);
		memcpy(&in.sin_addr, a->ip, 4);
		memcpy(sa, &in, sizeof(in));
		return 0;
	}
	if (a->family == STUN_AF_IPV6 && salen >= sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 in6;
		memset(&in6, 0, sizeof(in6));
		in6.sin6_family = AF_INET6;
		in6.sin6_port = htons(a->port);
		memcpy(&in6.sin6_addr, a->ip, 16);
		memcpy(sa, &in6, sizeof(in6));
		return 0;
	}
	return -1;
}

/* §14.1: 0, family, port, 4 or 16 address bytes. */
static int decode_addr(const uint8_t *v, uint16_t len, struct stun_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (len < 4 || v[0] != 0)
		return STUN_E_VALUE;
	if (v[1] == STUN_AF_IPV4 && len == 8)
		memcpy(out->ip, v + 4, 4);
	else if (v[1] == STUN_AF_IPV6 && len == 20)
		memcpy(out->ip, v + 4, 16);
	else
		return STUN_E_VALUE;
	out->family = v[1];
	out->port = rd16(v + 2);
	return 0;
}

int stun_get_addr(const struct stun_msg *m, const struct stun_attr *a, struct stun_addr *out)
{
	return decode_addr(stun_attr_value(m, a), a->len, out);
}

/* The XOR pad of §14.2: cookie then transaction id. */
static void xor_pad(const uint8_t *tid, uint8_t pad[16])
{
	wr32(pad, STUN_MAGIC_COOKIE);
	memcpy(pad + 4, tid, STUN_TID_LEN);
}

int stun_get_xor_addr(const struct stun_msg *m, const struct stun_attr *a, struct stun_addr *out)
{
	uint8_t pad[16];
	int rc = decode_addr(stun_attr_value(m, a), a->len, out);

	if (rc < 0)
		return rc;
	xor_pad(m->tid, pad);
	out->port ^= (uint16_t)(STUN_MAGIC_COOKIE >> 16);
	for (size_t i = 0; i < (out->family == STUN_AF_IPV4 ? 4u : 16u); i++)
		out->ip[i] ^= pad[i];
	return 0;
}

int stun_get_u32(const struct stun_msg *m, const struct stun_attr *a, uint32_t *out)
{
	if (a->len != 4)
		return STUN_E_VALUE;
	*out = rd32(stun_attr_value(m, a));
	return 0;
}

int stun_get_text(const struct stun_msg *m, const struct stun_attr *a, size_t max, struct str *out)
{
	*out = STR_NULL;
	if (a->len > max)
		return STUN_E_VALUE;
	*out = str_make((const char *)stun_attr_value(m, a), a->len);
	return 0;
}

static int get_text_of(const struct stun_msg *m, uint16_t type, size_t max, struct str *out)
{
	const struct stun_attr *a = stun_find(m, type);

	*out = STR_NULL;
	if (!a)
		return STUN_E_ABSENT;
	return stun_get_text(m, a, max, out);
}

int stun_get_username(const struct stun_msg *m, struct str *out)
{
	return get_text_of(m, STUN_ATTR_USERNAME, STUN_MAX_USERNAME, out);
}

int stun_get_realm(const struct stun_msg *m, struct str *out)
{
	return get_text_of(m, STUN_ATTR_REALM, STUN_MAX_TEXT, out);
}

int stun_get_nonce(const struct stun_msg *m, struct str *out)
{
	return get_text_of(m, STUN_ATTR_NONCE, STUN_MAX_TEXT, out);
}

int stun_get_userhash(const struct stun_msg *m, const struct stun_attr *a, const uint8_t **out)
{
	*out = NULL;
	if (a->len != STUN_USERHASH_LEN)
		return STUN_E_VALUE;
	*out = stun_attr_value(m, a);
	return 0;
}

int stun_get_error(const struct stun_msg *m, const struct stun_attr *a, int *code,
		   struct str *reason)
{
	const uint8_t *v = stun_attr_value(m, a);
	int cls, num;

	*code = 0;
	*reason = STR_NULL;
	if (a->len < 4 || a->len - 4 > STUN_MAX_TEXT)
		return STUN_E_VALUE;
	cls = v[2] & 0x07;
	num = v[3];
	if (cls < 3 || cls > 6 || num > 99)
		return STUN_E_VALUE;
	*code = cls * 100 + num;
	*reason = str_make((const char *)v + 4, a->len - 4u);
	return 0;
}

int stun_get_unknown_attributes(const struct stun_msg *m, const struct stun_attr *a,
				uint16_t *types, size_t cap, size_t *n)
{
	const uint8_t *v = stun_attr_value(m, a);

	*n = 0;
	if (a->len % 2)
		return STUN_E_VALUE;
	*n = a->len / 2u;
	for (size_t i = 0; i < *n && i < cap; i++)
		types[i] = rd16(v + 2 * i);
	return 0;
}

/* One entry of PASSWORD-ALGORITHM(S): alg, params length, params padded (§14.11). */
static int pwalg_entry(const uint8_t *v, size_t left, uint16_t *alg, size_t *used)
{
	size_t plen;

	if (left < 4)
		return STUN_E_VALUE;
	*alg = rd16(v);
	plen = rd16(v + 2);
	if (pad4(plen) > left - 4)
		return STUN_E_VALUE;
	*used = 4 + pad4(plen);
	return 0;
}

int stun_get_password_algorithm(const struct stun_msg *m, const struct stun_attr *a, uint16_t *alg)
{
	size_t used;

	*alg = 0;
	if (pwalg_entry(stun_attr_value(m, a), a->len, alg, &used) < 0 || used != a->len) {
		*alg = 0;
		return STUN_E_VALUE;
	}
	return 0;
}

int stun_get_password_algorithms(const struct stun_msg *m, const struct stun_attr *a,
				 uint16_t *algs, size_t cap, size_t *n)
{
	const uint8_t *v = stun_attr_value(m, a);
	size_t off = 0, used, count = 0;
	uint16_t alg;

	*n = 0;
	if (a->len == 0)
		return STUN_E_VALUE;
	while (off < a->len) {
		if (pwalg_entry(v + off, a->len - off, &alg, &used) < 0)
			return STUN_E_VALUE;
		if (count < cap)
			algs[count] = alg;
		count++;
		off += used;
	}
	*n = count;
	return 0;
}

int stun_get_requested_transport(const struct stun_msg *m, const struct stun_attr *a,
				 uint8_t *proto)
{
	*proto = 0;
	if (a->len != 4)
		return STUN_E_VALUE;
	*proto = stun_attr_value(m, a)[0];
	return 0;
}

int stun_get_channel_number(const struct stun_msg *m, const struct stun_attr *a, uint16_t *out)
{
	*out = 0;
	if (a->len != 4)
		return STUN_E_VALUE;
	*out = rd16(stun_attr_value(m, a));
	if (*out < STUN_CHANNEL_MIN || *out > STUN_CHANNEL_MAX)
		return STUN_E_CHANNEL;
	return 0;
}

int stun_get_family(const struct stun_msg *m, const struct stun_attr *a, uint8_t *family)
{
	const uint8_t *v = stun_attr_value(m, a);

	*family = 0;
	if (a->len != 4 || (v[0] != STUN_AF_IPV4 && v[0] != STUN_AF_IPV6))
		return STUN_E_VALUE;
	*family = v[0];
	return 0;
}

int stun_get_even_port(const struct stun_msg *m, const struct stun_attr *a, bool *reserve)
{
	*reserve = false;
	if (a->len != 1)
		return STUN_E_VALUE;
	*reserve = (stun_attr_value(m, a)[0] & 0x80) != 0;
	return 0;
}

int stun_get_reservation_token(const struct stun_msg *m, const struct stun_attr *a, uint64_t *token)
{
	const uint8_t *v = stun_attr_value(m, a);

	*token = 0;
	if (a->len != 8)
		return STUN_E_VALUE;
	*token = (uint64_t)rd32(v) << 32 | rd32(v + 4);
	return 0;
}

/* ---- ChannelData ---- */

int stun_channel_data_parse(const uint8_t *buf, size_t n, bool stream,
			    struct stun_channel_data *out)
{
	uint16_t ch, len;

	memset(out, 0, sizeof(*out));
	if (stun_classify(buf, n) != STUN_KIND_CHANNEL)
		return n ? STUN_E_NOT_STUN : STUN_E_SHORT;
	if (n < 4)
		return STUN_E_SHORT;
	ch = rd16(buf);
	len = rd16(buf + 2);
	if (n - 4 < len)
		return STUN_E_SHORT;
	/* stream: exactly the padded size; UDP: padding optional (§12.5) */
	if (stream ? n != stun_channel_data_size(len, true) : n - 4 > pad4(len))
		return STUN_E_LENGTH;
	out->channel = ch;
	out->len = len;
	out->data = buf + 4;
	return ch > STUN_CHANNEL_MAX ? STUN_E_CHANNEL : 0; /* 0x5000-0x7FFF: reserved */
}

int stun_channel_data_header(uint8_t hdr[4], uint16_t channel, uint16_t len)
{
	if (channel < STUN_CHANNEL_MIN || channel > STUN_CHANNEL_MAX_RFC5766)
		return STUN_E_CHANNEL;
	wr16(hdr, channel);
	wr16(hdr + 2, len);
	return 0;
}

/* ---- building ---- */

static int fail(struct stun_builder *b, int err)
{
	if (!b->err)
		b->err = err;
	return b->err;
}

int stun_build_init(struct stun_builder *b, uint8_t *buf, size_t cap, uint16_t method,
		    enum stun_class cls, const uint8_t tid[STUN_TID_LEN])
{
	uint16_t t;

	b->buf = buf;
	b->cap = cap < STUN_MAX_MSG ? cap : STUN_MAX_MSG;
	b->len = 0;
	b->err = 0;
	b->fin = 0;
	if (method > 0xFFF || (unsigned)cls > 3)
		return fail(b, STUN_E_VALUE);
	if (b->cap < STUN_HEADER_LEN)
		return fail(b, STUN_E_SPACE);
	t = (uint16_t)((method & 0x000F) | ((method & 0x0070) << 1) | ((method & 0x0F80) << 2) |
		       ((cls & 1) << 4) | ((cls & 2) << 7));
	wr16(buf, t);
	wr16(buf + 2, 0);
	wr32(buf + 4, STUN_MAGIC_COOKIE);
	memcpy(buf + 8, tid, STUN_TID_LEN);
	b->len = STUN_HEADER_LEN;
	return 0;
}

/* Reserve an attribute of len value bytes; returns its value pointer or NULL. */
static uint8_t *reserve(struct stun_builder *b, uint16_t type, size_t len)
{
	uint8_t *v;
	size_t total = 4 + pad4(len);

	if (b->err)
		return NULL;
	if (len > 0xFFFF || total > b->cap - b->len) {
		fail(b, STUN_E_SPACE);
		return NULL;
	}
	v = b->buf + b->len;
	wr16(v, type);
	wr16(v + 2, (uint16_t)len);
	memset(v + 4 + len, 0, pad4(len) - len);
	b->len += total;
	wr16(b->buf + 2, (uint16_t)(b->len - STUN_HEADER_LEN));
	return v + 4;
}

/* Plain attributes may not follow integrity or fingerprint. */
static uint8_t *reserve_plain(struct stun_builder *b, uint16_t type, size_t len)
{
	if (!b->err && b->fin) {
		fail(b, STUN_E_ORDER);
		return NULL;
	}
	return reserve(b, type, len);
}

int stun_build_attr(struct stun_builder *b, uint16_t type, const void *val, size_t len)
{
	uint8_t *v = reserve_plain(b, type, len);

	if (!v)
		return b->err;
	if (len)
		memcpy(v, val, len);
	return 0;
}

int stun_build_u32(struct stun_builder *b, uint16_t type, uint32_t val)
{
	uint8_t *v = reserve_plain(b, type, 4);

	if (!v)
		return b->err;
	wr32(v, val);
	return 0;
}

static int build_addr(struct stun_builder *b, uint16_t type, const struct stun_addr *a, bool xor)
{
	size_t alen = a->family == STUN_AF_IPV4 ? 4 : a->family == STUN_AF_IPV6 ? 16 : 0;
	uint8_t pad[16], *v;

	if (!alen)
		return fail(b, STUN_E_VALUE);
	if (!(v = reserve_plain(b, type, 4 + alen)))
		return b->err;
	xor_pad(b->buf + 8, pad);
	v[0] = 0;
	v[1] = a->family;
	wr16(v + 2, xor? (uint16_t)(a->port ^ (STUN_MAGIC_COOKIE >> 16)) : a->port);
	for (size_t i = 0; i < alen; i++)
		v[4 + i] = xor? a->ip[i] ^ pad[i] : a->ip[i];
	return 0;
}

int stun_build_addr(struct stun_builder *b, uint16_t type, const struct stun_addr *a)
{
	return build_addr(b, type, a, false);
}

int stun_build_xor_addr(struct stun_builder *b, uint16_t type, const struct stun_addr *a)
{
	return build_addr(b, type, a, true);
}

int stun_build_error(struct stun_builder *b, int code, const char *reason)
{
	size_t rlen;
	uint8_t *v;

	if (code < 300 || code > 699)
		return fail(b, STUN_E_VALUE);
	if (!reason)
		reason = stun_error_reason(code);
	rlen = strlen(reason);
	if (rlen > STUN_MAX_TEXT)
		return fail(b, STUN_E_VALUE);
	if (!(v = reserve_plain(b, STUN_ATTR_ERROR_CODE, 4 + rlen)))
		return b->err;
	v[0] = v[1] = 0;
	v[2] = (uint8_t)(code / 100);
	v[3] = (uint8_t)(code % 100);
	memcpy(v + 4, reason, rlen);
	return 0;
}

int stun_build_unknown_attributes(struct stun_builder *b, const uint16_t *types, size_t n)
{
	uint8_t *v;

	if (n > 0x7FFF)
		return fail(b, STUN_E_VALUE);
	if (!(v = reserve_plain(b, STUN_ATTR_UNKNOWN_ATTRIBUTES, 2 * n)))
		return b->err;
	for (size_t i = 0; i < n; i++)
		wr16(v + 2 * i, types[i]);
	return 0;
}

int stun_build_password_algorithms(struct stun_builder *b, const uint16_t *algs, size_t n)
{
	uint8_t *v;

	if (n == 0 || n > 0x3FFF)
		return fail(b, STUN_E_VALUE);
	if (!(v = reserve_plain(b, STUN_ATTR_PASSWORD_ALGORITHMS, 4 * n)))
		return b->err;
	for (size_t i = 0; i < n; i++) {
		wr16(v + 4 * i, algs[i]);
		wr16(v + 4 * i + 2, 0);
	}
	return 0;
}

int stun_build_password_algorithm(struct stun_builder *b, uint16_t alg)
{
	uint8_t *v = reserve_plain(b, STUN_ATTR_PASSWORD_ALGORITHM, 4);

	if (!v)
		return b->err;
	wr16(v, alg);
	wr16(v + 2, 0);
	return 0;
}

static int build_mac(struct stun_builder *b, uint16_t type, const EVP_MD *md, size_t vlen,
		     unsigned bit, const uint8_t *key, size_t keylen)
{
	uint8_t mac[EVP_MAX_MD_SIZE], *v;
	unsigned maclen = 0;
	size_t start = b->len;
	int rc;

	if (!b->err && (b->fin & ~(bit - 1u)))
		return fail(b, STUN_E_ORDER); /* MI then MI-SHA256 then FINGERPRINT, once each */
	if (!(v = reserve(b, type, vlen)))
		return b->err;
	rc = mac_prefix(md, key, keylen, b->buf, start, vlen, mac, &maclen);
	if (rc == 0 && maclen >= vlen)
		memcpy(v, mac, vlen);
	else
		fail(b, STUN_E_INTERNAL);
	secmem_wipe(mac, sizeof(mac));
	b->fin |= bit;
	return b->err;
}

int stun_build_integrity(struct stun_builder *b, const uint8_t *key, size_t keylen)
{
	return build_mac(b, STUN_ATTR_MESSAGE_INTEGRITY, md_sha1(), STUN_MI_LEN, 1, key, keylen);
}

int stun_build_integrity_sha256(struct stun_builder *b, const uint8_t *key, size_t keylen)
{
	return build_mac(b, STUN_ATTR_MESSAGE_INTEGRITY_SHA256, md_sha256(), STUN_MI256_LEN, 2, key,
			 keylen);
}

int stun_build_fingerprint(struct stun_builder *b)
{
	size_t start = b->len;
	uint8_t *v;

	if (!b->err && (b->fin & 4))
		return fail(b, STUN_E_ORDER);
	if (!(v = reserve(b, STUN_ATTR_FINGERPRINT, 4)))
		return b->err;
	wr32(v, fingerprint(b->buf, start));
	b->fin |= 4;
	return 0;
}

long stun_build_finish(const struct stun_builder *b)
{
	return b->err ? b->err : (long)b->len;
}

static int hmac_one(const EVP_MD *md, size_t outlen, const void *key, size_t keylen,
		    const void *data, size_t len, uint8_t *out)
{
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned maclen = 0;
	struct span s = {data, len};
	int rc = hmac_spans(md, key, keylen, &s, 1, mac, &maclen);

	if (rc == 0 && maclen == outlen)
		memcpy(out, mac, outlen);
	else
		rc = STUN_E_INTERNAL;
	secmem_wipe(mac, sizeof(mac));
	return rc;
}

int stun_hmac_sha1(const void *key, size_t keylen, const void *data, size_t len, uint8_t out[20])
{
	return hmac_one(md_sha1(), 20, key, keylen, data, len, out);
}

int stun_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len, uint8_t out[32])
{
	return hmac_one(md_sha256(), 32, key, keylen, data, len, out);
}

const char *stun_error_reason(int code)
{
	switch (code) {
	case 300:
		return "Try Alternate";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 405:
		return "Mobility Forbidden";
	case 420:
		return "Unknown Attribute";
	case 437:
		return "Allocation Mismatch";
	case 438:
		return "Stale Nonce";
	case 440:
		return "Address Family not Supported";
	case 441:
		return "Wrong Credentials";
	case 442:
		return "Unsupported Transport Protocol";
	case 443:
		return "Peer Address Family Mismatch";
	case 486:
		return "Allocation Quota Reached";
	case 500:
		return "Server Error";
	case 508:
		return "Insufficient Capacity";
	}
	return "Error";
}
