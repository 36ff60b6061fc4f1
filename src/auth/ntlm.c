/*
 * NTLM acceptor codec and crypto ([MS-NLMP]); see ntlm.h. Everything here is
 * a pure function of its arguments except the one-time set-up of a private
 * OpenSSL library context holding the default and legacy providers (MD4 and
 * RC4 live in legacy; loading legacy into the default context would make
 * them available to every other module, which we do not want).
 * Never logs; never keeps a secret past the call that used it.
 */
#include "auth/ntlm.h"

#include <pthread.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/provider.h>

#include "core/secmem.h"

/* ---- OpenSSL: private library context with legacy ---- */

static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;
static OSSL_LIB_CTX *libctx;
static OSSL_PROVIDER *prov_default, *prov_legacy;
static EVP_MD *md_md4, *md_md5;
static EVP_CIPHER *cipher_rc4;
static bool crypto_ready;

static void crypto_init(void)
{
	libctx = OSSL_LIB_CTX_new();
	if (!libctx)
		return;
	prov_default = OSSL_PROVIDER_load(libctx, "default");
	prov_legacy = OSSL_PROVIDER_load(libctx, "legacy");
	if (!prov_default || !prov_legacy)
		return;
	md_md4 = EVP_MD_fetch(libctx, "MD4", NULL);
	md_md5 = EVP_MD_fetch(libctx, "MD5", NULL);
	cipher_rc4 = EVP_CIPHER_fetch(libctx, "RC4", NULL);
	crypto_ready = md_md4 && md_md5 && cipher_rc4;
}

static bool crypto_ok(void)
{
	return pthread_once(&crypto_once, crypto_init) == 0 && crypto_ready;
}

struct part {
	const uint8_t *p;
	size_t len;
};

/* One MD5 over parts with an existing context. */
static int md5_run(EVP_MD_CTX *c, const struct part *parts, size_t n, uint8_t out[16])
{
	unsigned int outl = 0;

	if (EVP_DigestInit_ex2(c, md_md5, NULL) != 1)
		return NTLM_E_CRYPTO;
	for (size_t i = 0; i < n; i++)
		if (parts[i].len && EVP_DigestUpdate(c, parts[i].p, parts[i].len) != 1)
			return NTLM_E_CRYPTO;
	if (EVP_DigestFinal_ex(c, out, &outl) != 1 || outl != 16)
		return NTLM_E_CRYPTO;
	return 0;
}

/*
 * HMAC-MD5 (RFC 2104) spelled out over EVP MD5: about twice as fast as an
 * EVP_MAC context per call, and signature checks are the hot path. The
 * keys of NTLM are 16 bytes; longer ones are hashed first as the RFC says.
 */
static int hmac_md5(const uint8_t *key, size_t klen, const struct part *parts, size_t n,
		    uint8_t out[16])
{
	struct part inner[8], outer[2];
	uint8_t pad[64], k[16], ih[16];
	EVP_MD_CTX *c;
	int rc = NTLM_E_CRYPTO;

	if (!crypto_ok() || n + 1 > sizeof(inner) / sizeof(inner[0]))
		return NTLM_E_CRYPTO;
	c = EVP_MD_CTX_new();
	if (!c)
		return NTLM_E_CRYPTO;
	if (klen > sizeof(pad)) {
		struct part kp = {key, klen};

		if (md5_run(c, &kp, 1, k))
			goto out;
		key = k, klen = 16;
	}
	memset(pad, 0x36, sizeof(pad));
	for (size_t i = 0; i < klen; i++)
		pad[i] ^= key[i];
	inner[0] = (struct part){pad, sizeof(pad)};
	memcpy(inner + 1, parts, n * sizeof(*parts));
	if (md5_run(c, inner, n + 1, ih))
		goto out;
	for (size_t i = 0; i < sizeof(pad); i++)
		pad[i] ^= 0x36 ^ 0x5c;
	outer[0] = (struct part){pad, sizeof(pad)};
	outer[1] = (struct part){ih, sizeof(ih)};
	if (md5_run(c, outer, 2, out))
		goto out;
	rc = 0;
out:
	EVP_MD_CTX_free(c);
	secmem_wipe(pad, sizeof(pad));
	secmem_wipe(k, sizeof(k));
	secmem_wipe(ih, sizeof(ih));
	if (rc)
		secmem_wipe(out, 16);
	return rc;
}

static int hmac_md5_1(const uint8_t *key, size_t klen, const uint8_t *p, size_t len,
		      uint8_t out[16])
{
	struct part pt = {p, len};

	return hmac_md5(key, klen, &pt, 1, out);
}

static int md5_parts(const struct part *parts, size_t n, uint8_t out[16])
{
	EVP_MD_CTX *c;
	int rc;

	if (!crypto_ok())
		return NTLM_E_CRYPTO;
	c = EVP_MD_CTX_new();
	if (!c)
		return NTLM_E_CRYPTO;
	rc = md5_run(c, parts, n, out);
	EVP_MD_CTX_free(c);
	return rc;
}

int ntlm_rc4(const uint8_t key[16], const uint8_t *in, size_t len, uint8_t *out)
{
	EVP_CIPHER_CTX *c;
	int outl = 0, rc = NTLM_E_CRYPTO;

	if (!crypto_ok() || len > (size_t)INT32_MAX)
		return NTLM_E_CRYPTO;
	c = EVP_CIPHER_CTX_new();
	if (!c)
		return NTLM_E_CRYPTO;
	if (EVP_EncryptInit_ex2(c, cipher_rc4, key, NULL, NULL) != 1)
		goto out;
	if (len && (EVP_EncryptUpdate(c, out, &outl, in, (int)len) != 1 || (size_t)outl != len))
		goto out;
	rc = 0;
out:
	EVP_CIPHER_CTX_free(c);
	return rc;
}

const char *ntlm_strerror(int err)
{
	switch (err) {
	case NTLM_OK:
		return "ok";
	case NTLM_E_MALFORMED:
		return "malformed NTLM message";
	case NTLM_E_TOO_LARGE:
		return "NTLM message or field too large";
	case NTLM_E_V1:
		return "NTLMv1 or LM response refused";
	case NTLM_E_BAD_RESPONSE:
		return "NTLMv2 response does not match";
	case NTLM_E_BAD_MIC:
		return "MIC missing or wrong";
	case NTLM_E_CBT:
		return "channel bindings missing or wrong";
	case NTLM_E_CRYPTO:
		return "crypto unavailable (OpenSSL legacy provider for MD4/RC4)";
	case NTLM_E_BUFFER:
		return "buffer too small";
	case NTLM_E_UNSUPPORTED:
		return "unsupported NTLM session security";
	default:
		return "unknown NTLM error";
	}
}

/* ---- little-endian helpers ---- */

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

static uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32);
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void wr32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void wr64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- UTF-8 / UTF-16 ---- */

/* Decode one code point at s[*i]; -1 on invalid UTF-8 (RFC 3629). */
static int utf8_next(const uint8_t *s, size_t len, size_t *i, uint32_t *cp)
{
	uint8_t c = s[*i];
	uint32_t v, min;
	size_t n;

	if (c < 0x80) {
		*cp = c;
		(*i)++;
		return 0;
	}
	if ((c & 0xe0) == 0xc0) {
		n = 1, v = c & 0x1f, min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		n = 2, v = c & 0x0f, min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		n = 3, v = c & 0x07, min = 0x10000;
	} else {
		return -1;
	}
	if (len - *i <= n)
		return -1;
	for (size_t k = 1; k <= n; k++) {
		uint8_t b = s[*i + k];

		if ((b & 0xc0) != 0x80)
			return -1;
		v = (v << 6) | (b & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return -1;
	*cp = v;
	*i += n + 1;
	return 0;
}

/* Append cp as UTF-16LE to out (cap bytes) at *o; -1 if it does not fit. */
static int utf16_put(uint32_t cp, uint8_t *out, size_t cap, size_t *o)
{
	if (cp >= 0x10000) {
		if (cap - *o < 4)
			return -1;
		cp -= 0x10000;
		wr16(out + *o, (uint16_t)(0xd800 | (cp >> 10)));
		wr16(out + *o + 2, (uint16_t)(0xdc00 | (cp & 0x3ff)));
		*o += 4;
		return 0;
	}
	if (cap - *o < 2)
		return -1;
	wr16(out + *o, (uint16_t)cp);
	*o += 2;
	return 0;
}

/* UTF-8 to UTF-16LE; NTLM_E_MALFORMED or NTLM_E_BUFFER. */
static int utf8_to_utf16(struct str s, uint8_t *out, size_t cap, size_t *outlen)
{
	size_t i = 0, o = 0;
	uint32_t cp;

	while (i < s.len) {
		if (utf8_next((const uint8_t *)s.p, s.len, &i, &cp) < 0)
			return NTLM_E_MALFORMED;
		if (utf16_put(cp, out, cap, &o) < 0)
			return NTLM_E_BUFFER;
	}
	*outlen = o;
	return 0;
}

int ntlm_utf16_to_utf8(const uint8_t *in, size_t len, char *out, size_t cap)
{
	size_t o = 0;

	if (!out || cap == 0)
		return NTLM_E_BUFFER;
	out[0] = '\0';
	if (len % 2)
		return NTLM_E_MALFORMED;
	for (size_t i = 0; i < len; i += 2) {
		uint32_t cp = rd16(in + i);
		size_t n;

		if (cp >= 0xdc00 && cp <= 0xdfff)
			return NTLM_E_MALFORMED;
		if (cp >= 0xd800 && cp <= 0xdbff) {
			uint32_t lo;

			if (len - i < 4)
				return NTLM_E_MALFORMED;
			lo = rd16(in + i + 2);
			if (lo < 0xdc00 || lo > 0xdfff)
				return NTLM_E_MALFORMED;
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			i += 2;
		}
		if (cp == 0)
			return NTLM_E_MALFORMED;
		n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
		if (cap - o <= n) {
			out[0] = '\0';
			return NTLM_E_BUFFER;
		}
		if (n == 1) {
			out[o++] = (char)cp;
			continue;
		}
		out[o++] = (char)((n == 2 ? 0xc0 : n == 3 ? 0xe0 : 0xf0) | (cp >> (6 * (n - 1))));
		for (size_t k = n - 1; k > 0; k--)
			out[o++] = (char)(0x80 | ((cp >> (6 * (k - 1))) & 0x3f));
	}
	out[o] = '\0';
	return 0;
}

/* Windows upper-cases the user name for NTOWFv2 with its own table; we cover
 * ASCII and Latin-1, which is what user names are in practice. */
static uint16_t upper16(uint16_t c)
{
	if (c >= 'a' && c <= 'z')
		return (uint16_t)(c - 32);
	if (c >= 0xe0 && c <= 0xfe && c != 0xf7)
		return (uint16_t)(c - 32);
	if (c == 0xff)
		return 0x178;
	return c;
}

/* ---- NT hash, NTOWFv2 ---- */

int ntlm_nt_hash(const char *password, size_t len, uint8_t out[16])
{
	uint8_t buf[256];
	EVP_MD_CTX *c = NULL;
	unsigned int outl = 0;
	size_t i = 0, o = 0;
	uint32_t cp;
	int rc = -1;

	if (!out)
		return -1;
	if (!password && len)
		goto out;
	if (!crypto_ok())
		goto out;
	c = EVP_MD_CTX_new();
	if (!c || EVP_DigestInit_ex2(c, md_md4, NULL) != 1)
		goto out;
	/* MS-NLMP 3.3.1: NTOWFv1 = MD4(UNICODE(Passwd)), streamed in chunks */
	while (i < len) {
		if (utf8_next((const uint8_t *)password, len, &i, &cp) < 0)
			goto out;
		if (utf16_put(cp, buf, sizeof(buf), &o) < 0)
			goto out; /* cannot happen: flushed below before it fills */
		if (sizeof(buf) - o < 4) {
			if (EVP_DigestUpdate(c, buf, o) != 1)
				goto out;
			o = 0;
		}
	}
	if (o && EVP_DigestUpdate(c, buf, o) != 1)
		goto out;
	if (EVP_DigestFinal_ex(c, out, &outl) != 1 || outl != 16)
		goto out;
	rc = 0;
out:
	EVP_MD_CTX_free(c);
	secmem_wipe(buf, sizeof(buf));
	if (rc)
		secmem_wipe(out, 16);
	return rc;
}

int ntlm_ntowfv2(const uint8_t nt_hash[16], const uint8_t *user16, size_t user_len,
		 const uint8_t *domain16, size_t domain_len, uint8_t out[16])
{
	uint8_t up[NTLM_NAME_MAX];
	struct part parts[2];
	int rc;

	if (user_len > sizeof(up) || user_len % 2 || domain_len > NTLM_NAME_MAX)
		return NTLM_E_TOO_LARGE;
	for (size_t i = 0; i < user_len; i += 2)
		wr16(up + i, upper16(rd16(user16 + i)));
	parts[0] = (struct part){up, user_len};
	parts[1] = (struct part){domain16, domain_len};
	/* MS-NLMP 3.3.2: HMAC_MD5(MD4(UNICODE(Passwd)), UNICODE(ConcatenationOf(
	 * Uppercase(User), UserDom))) */
	rc = hmac_md5(nt_hash, 16, parts, 2, out);
	secmem_wipe(up, sizeof(up));
	return rc;
}

uint64_t ntlm_filetime(uint64_t unix_s)
{
	return (unix_s + 11644473600ull) * 10000000ull;
}

uint64_t ntlm_filetime_to_unix(uint64_t filetime)
{
	uint64_t s = filetime / 10000000ull;

	return s > 11644473600ull ? s - 11644473600ull : 0;
}

/* ---- CHALLENGE ---- */

#define CHALLENGE_HDR 56
#define AV_EOL	      0
#define AV_NB_COMP    1
#define AV_NB_DOMAIN  2
#define AV_DNS_COMP   3
#define AV_DNS_DOMAIN 4
#define AV_FLAGS      6
#define AV_TIMESTAMP  7
#define AV_CBT	      10

static const uint8_t ntlm_sig[8] = {'N', 'T', 'L', 'M', 'S', 'S', 'P', 0};

/* Append an AV pair with a UTF-8 name converted to UTF-16LE. */
static int av_put_name(uint16_t id, struct str name, uint8_t *out, size_t cap, size_t *o)
{
	size_t n = 0;
	int rc;

	if (name.len == 0)
		return 0;
	if (cap - *o < 4)
		return NTLM_E_BUFFER;
	rc = utf8_to_utf16(name, out + *o + 4, cap - *o - 4 > 0xfffe ? 0xfffe : cap - *o - 4, &n);
	if (rc)
		return rc;
	wr16(out + *o, id);
	wr16(out + *o + 2, (uint16_t)n);
	*o += 4 + n;
	return 0;
}

int ntlm_build_challenge(const struct ntlm_target *t, const uint8_t server_challenge[8],
			 uint64_t filetime, uint8_t *out, size_t cap, size_t *len)
{
	static const uint8_t version[8] = {6, 1, 0xb1, 0x1d, 0, 0, 0, 0x0f}; /* 6.1.7601, rev 15 */
	size_t o = CHALLENGE_HDR, tn_len = 0, ti_off;
	int rc;

	if (len)
		*len = 0;
	if (!t || !server_challenge || !out || !len)
		return NTLM_E_BUFFER;
	if (cap > NTLM_CHALLENGE_MAX)
		cap = NTLM_CHALLENGE_MAX;
	if (cap < CHALLENGE_HDR)
		return NTLM_E_BUFFER;
	memset(out, 0, CHALLENGE_HDR);
	/* TargetName: the NetBIOS domain (TARGET_TYPE_DOMAIN) */
	rc = utf8_to_utf16(t->nb_domain, out + o, cap - o > 0xfffe ? 0xfffe : cap - o, &tn_len);
	if (rc)
		return rc;
	o += tn_len;
	ti_off = o;
	if ((rc = av_put_name(AV_NB_DOMAIN, t->nb_domain, out, cap, &o)) ||
	    (rc = av_put_name(AV_NB_COMP, t->nb_computer, out, cap, &o)) ||
	    (rc = av_put_name(AV_DNS_DOMAIN, t->dns_domain, out, cap, &o)) ||
	    (rc = av_put_name(AV_DNS_COMP, t->dns_computer, out, cap, &o)))
		return rc;
	if (cap - o < 12 + 4)
		return NTLM_E_BUFFER;
	wr16(out + o, AV_TIMESTAMP);
	wr16(out + o + 2, 8);
	wr64(out + o + 4, filetime);
	o += 12;
	wr16(out + o, AV_EOL);
	wr16(out + o + 2, 0);
	o += 4;
	if (o - ti_off > 0xffff)
		return NTLM_E_BUFFER;

	memcpy(out, ntlm_sig, 8);
	wr32(out + 8, 2);
	wr16(out + 12, (uint16_t)tn_len); /* TargetNameFields */
	wr16(out + 14, (uint16_t)tn_len);
	wr32(out + 16, CHALLENGE_HDR);
	wr32(out + 20, NTLM_CHALLENGE_FLAGS);
	memcpy(out + 24, server_challenge, 8);
	/* 32..39 Reserved */
	wr16(out + 40, (uint16_t)(o - ti_off)); /* TargetInfoFields */
	wr16(out + 42, (uint16_t)(o - ti_off));
	wr32(out + 44, (uint32_t)ti_off);
	memcpy(out + 48, version, 8);
	*len = o;
	return 0;
}

/* ---- AUTHENTICATE ---- */

#define AUTH_FIXED   64
#define AUTH_VERSION 72 /* end of the Version field */
#define AUTH_MIC_OFF 72
#define AUTH_MIC_END 88
#define BLOB_MIN     28 /* NTLMv2_CLIENT_CHALLENGE without AV pairs */

struct field {
	size_t off, len;
};

static int blob_parse(const uint8_t *blob, size_t len, struct ntlm_auth *a)
{
	size_t p = BLOB_MIN;
	bool seen_flags = false;

	/* MS-NLMP 2.2.2.7: RespType and HiRespType MUST be 1 */
	if (len < BLOB_MIN || blob[0] != 1 || blob[1] != 1)
		return NTLM_E_MALFORMED;
	a->blob_time = rd64(blob + 8);
	for (int n = 0; n < NTLM_AV_MAX; n++) {
		uint16_t id, alen;

		if (len - p < 4)
			return NTLM_E_MALFORMED;
		id = rd16(blob + p);
		alen = rd16(blob + p + 2);
		p += 4;
		if (len - p < alen)
			return NTLM_E_MALFORMED;
		switch (id) {
		case AV_EOL:
			return alen == 0 ? 0 : NTLM_E_MALFORMED;
		case AV_FLAGS:
			if (alen != 4 || seen_flags)
				return NTLM_E_MALFORMED;
			seen_flags = true;
			a->av_flags = rd32(blob + p);
			break;
		case AV_CBT:
			if (alen != 16 || a->has_cbt)
				return NTLM_E_MALFORMED;
			a->has_cbt = true;
			a->cbt = blob + p;
			break;
		default:
			break;
		}
		p += alen;
	}
	return NTLM_E_TOO_LARGE; /* no MsvAvEOL within NTLM_AV_MAX pairs */
}

/* Read the security buffer at hdr into f; bounds are checked later. */
static struct field field_at(const uint8_t *msg, size_t hdr)
{
	struct field f = {rd32(msg + hdr + 4), rd16(msg + hdr)};

	return f;
}

static int fields_check(const struct field *f, size_t n, size_t start, size_t msg_len)
{
	for (size_t i = 0; i < n; i++) {
		if (f[i].len == 0)
			continue;
		if (f[i].off < start || f[i].off > msg_len || msg_len - f[i].off < f[i].len)
			return NTLM_E_MALFORMED;
		for (size_t j = 0; j < i; j++) {
			if (f[j].len == 0)
				continue;
			if (f[i].off < f[j].off + f[j].len && f[j].off < f[i].off + f[i].len)
				return NTLM_E_MALFORMED; /* overlapping */
		}
	}
	return 0;
}

int ntlm_parse_authenticate(const uint8_t *msg, size_t len, struct ntlm_auth *out)
{
	enum { LM, NT, DOM, USER, WS, KEY, NFIELDS };
	struct field f[NFIELDS];
	struct ntlm_auth a;
	size_t start;
	int rc;

	if (!out)
		return NTLM_E_MALFORMED;
	memset(out, 0, sizeof(*out));
	memset(&a, 0, sizeof(a));
	if (!msg)
		return NTLM_E_MALFORMED;
	if (len > NTLM_AUTH_MAX)
		return NTLM_E_TOO_LARGE;
	if (len < AUTH_FIXED || memcmp(msg, ntlm_sig, 8) != 0 || rd32(msg + 8) != 3)
		return NTLM_E_MALFORMED;
	for (int i = 0; i < NFIELDS; i++)
		f[i] = field_at(msg, 12 + 8 * (size_t)i);
	a.msg = msg;
	a.msg_len = len;
	a.flags = rd32(msg + 60);
	if (!(a.flags & NTLM_NEGOTIATE_UNICODE))
		return NTLM_E_MALFORMED; /* OEM strings: code page unknown here */
	if (f[DOM].len > NTLM_NAME_MAX || f[USER].len > NTLM_NAME_MAX ||
	    f[WS].len > NTLM_NAME_MAX || f[NT].len > NTLM_NT_RESP_MAX)
		return NTLM_E_TOO_LARGE;
	if (f[DOM].len % 2 || f[USER].len % 2 || f[WS].len % 2 || f[LM].len > 24 || f[KEY].len > 16)
		return NTLM_E_MALFORMED;
	start = (a.flags & NTLM_NEGOTIATE_VERSION) ? AUTH_VERSION : AUTH_FIXED;
	if (len < start)
		return NTLM_E_MALFORMED;
	rc = fields_check(f, NFIELDS, start, len);
	if (rc)
		return rc;

	/* MS-NLMP 3.3.1: a 24-byte NT response is NTLMv1; no NT response with a
	 * 24-byte LM response is LM-only. Both refused. */
	if (f[NT].len == 24 || (f[NT].len == 0 && f[LM].len == 24))
		return NTLM_E_V1;
	if (f[NT].len < 16 + BLOB_MIN)
		return NTLM_E_MALFORMED; /* anonymous, or too short for NTLMv2 */
	rc = blob_parse(msg + f[NT].off + 16, f[NT].len - 16, &a);
	if (rc)
		return rc;
	if (a.flags & NTLM_NEGOTIATE_KEY_EXCH && f[KEY].len != 16)
		return NTLM_E_MALFORMED;

	if (a.av_flags & NTLM_AV_FLAG_MIC) {
		/* MS-NLMP 2.2.1.3: the MIC follows Version; payload starts after it */
		if (len < AUTH_MIC_END || fields_check(f, NFIELDS, AUTH_MIC_END, len))
			return NTLM_E_MALFORMED;
		a.has_mic = true;
		a.mic = msg + AUTH_MIC_OFF;
	}
	a.lm = msg + f[LM].off, a.lm_len = f[LM].len;
	a.nt = msg + f[NT].off, a.nt_len = f[NT].len;
	a.domain = msg + f[DOM].off, a.domain_len = f[DOM].len;
	a.user = msg + f[USER].off, a.user_len = f[USER].len;
	a.workstation = msg + f[WS].off, a.workstation_len = f[WS].len;
	a.enc_key = msg + f[KEY].off, a.enc_key_len = f[KEY].len;
	*out = a;
	return 0;
}

/* ---- verification and keys ---- */

static const char sign_c2s[] = "session key to client-to-server signing key magic constant";
static const char sign_s2c[] = "session key to server-to-client signing key magic constant";
static const char seal_c2s[] = "session key to client-to-server sealing key magic constant";
static const char seal_s2c[] = "session key to server-to-client sealing key magic constant";

int ntlm_sign_key(const uint8_t exported_key[16], bool client, uint8_t out[16])
{
	const char *k = client ? sign_c2s : sign_s2c;
	/* MS-NLMP 3.4.5.2: the constants include their terminating NUL */
	struct part parts[2] = {{exported_key, 16}, {(const uint8_t *)k, sizeof(sign_c2s)}};

	return md5_parts(parts, 2, out);
}

int ntlm_seal_key(uint32_t flags, const uint8_t exported_key[16], bool client, uint8_t out[16])
{
	const char *k = client ? seal_c2s : seal_s2c;
	struct part parts[2] = {{exported_key, 16}, {(const uint8_t *)k, sizeof(seal_c2s)}};

	/* MS-NLMP 3.4.5.3 with extended session security: the key is cut to
	 * 56 or 40 bits before the MD5 unless 128-bit was negotiated */
	if (!(flags & NTLM_NEGOTIATE_128))
		parts[0].len = (flags & NTLM_NEGOTIATE_56) ? 7 : 5;
	return md5_parts(parts, 2, out);
}

int ntlm_session_keys(struct ntlm_session *s)
{
	if (ntlm_sign_key(s->exported_key, true, s->client_sign) ||
	    ntlm_sign_key(s->exported_key, false, s->server_sign) ||
	    ntlm_seal_key(s->flags, s->exported_key, true, s->client_seal) ||
	    ntlm_seal_key(s->flags, s->exported_key, false, s->server_seal))
		return NTLM_E_CRYPTO;
	return 0;
}

static int compute_mic(const struct ntlm_auth *a, const struct ntlm_transcript *tr,
		       const uint8_t key[16], uint8_t mic[16])
{
	static const uint8_t zero[16];
	struct part parts[5] = {
	    {tr->negotiate, tr->negotiate_len},
	    {tr->challenge, tr->challenge_len},
	    {a->msg, AUTH_MIC_OFF},
	    {zero, 16},
	    {a->msg + AUTH_MIC_END, a->msg_len - AUTH_MIC_END},
	};

	/* MS-NLMP 3.2.5.1.2 */
	return hmac_md5(key, 16, parts, 5, mic);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

int ntlm_accept_v2(const struct ntlm_auth *a, const uint8_t nt_hash[16],
		   const struct ntlm_transcript *tr, const uint8_t cbt[16],
		   struct ntlm_session *out)
{
	uint8_t ntowf[16], proof[16], kxkey[16], mic[16];
	struct part parts[2];
	bool ok_resp, ok_mic = true, ok_cbt = true;
	int rc;

	if (!a || !a->msg || !nt_hash || !tr || !out || a->nt_len < 16 + BLOB_MIN)
		return NTLM_E_MALFORMED;
	memset(out, 0, sizeof(*out));
	if ((a->flags & NTLM_NEGOTIATE_KEY_EXCH) && a->enc_key_len != 16)
		return NTLM_E_MALFORMED;

	rc = ntlm_ntowfv2(nt_hash, a->user, a->user_len, a->domain, a->domain_len, ntowf);
	/* MS-NLMP 3.3.2: NTProofStr = HMAC_MD5(ResponseKeyNT,
	 * ConcatenationOf(CHALLENGE_MESSAGE.ServerChallenge, temp)) */
	parts[0] = (struct part){tr->server_challenge, 8};
	parts[1] = (struct part){a->nt + 16, a->nt_len - 16};
	if (!rc)
		rc = hmac_md5(ntowf, 16, parts, 2, proof);
	/* SessionBaseKey = HMAC_MD5(ResponseKeyNT, NTProofStr); KXKEY = it (v2) */
	if (!rc)
		rc = hmac_md5_1(ntowf, 16, proof, 16, kxkey);
	if (rc)
		goto out;
	ok_resp = secmem_eq(proof, a->nt, 16);
	out->flags = a->flags;
	if (a->flags & NTLM_NEGOTIATE_KEY_EXCH)
		rc = ntlm_rc4(kxkey, a->enc_key, 16, out->exported_key);
	else
		memcpy(out->exported_key, kxkey, 16);
	if (!rc && a->has_mic) {
		rc = compute_mic(a, tr, out->exported_key, mic);
		ok_mic = rc == 0 && secmem_eq(mic, a->mic, 16);
	}
	if (cbt && !all_zero(cbt, 16))
		ok_cbt = a->has_cbt && secmem_eq(a->cbt, cbt, 16);
	if (!rc)
		rc = ntlm_session_keys(out);
	if (!rc)
		rc = !ok_resp  ? NTLM_E_BAD_RESPONSE
		     : !ok_mic ? NTLM_E_BAD_MIC
		     : !ok_cbt ? NTLM_E_CBT
			       : 0;
out:
	secmem_wipe(ntowf, sizeof(ntowf));
	secmem_wipe(proof, sizeof(proof));
	secmem_wipe(kxkey, sizeof(kxkey));
	secmem_wipe(mic, sizeof(mic));
	if (rc)
		secmem_wipe(out, sizeof(*out));
	return rc;
}

/* ---- signatures ---- */

int ntlm_mac(uint32_t flags, const uint8_t sign_key[16], const uint8_t seal_key[16], uint32_t seq,
	     const uint8_t *msg, size_t len, uint8_t sig[NTLM_SIG_LEN])
{
	uint8_t seqle[4], hmac[16], key[16];
	struct part parts[2];
	int rc;

	if (!(flags & NTLM_NEGOTIATE_EXTENDED_SESSION))
		return NTLM_E_UNSUPPORTED;
	if ((flags & NTLM_NEGOTIATE_KEY_EXCH) && !(flags & NTLM_NEGOTIATE_DATAGRAM))
		return NTLM_E_UNSUPPORTED;
	wr32(seqle, seq);
	parts[0] = (struct part){seqle, 4};
	parts[1] = (struct part){msg, len};
	/* MS-NLMP 3.4.4.2: HMAC_MD5(SigningKey, ConcatenationOf(SeqNum, Message))[0..7] */
	rc = hmac_md5(sign_key, 16, parts, 2, hmac);
	if (!rc && (flags & NTLM_NEGOTIATE_KEY_EXCH)) {
		/* MS-NLMP 3.4.3 connectionless: RC4 re-keyed per message with
		 * SealingKey' = MD5(ConcatenationOf(SealingKey, SeqNum)) */
		parts[0] = (struct part){seal_key, 16};
		parts[1] = (struct part){seqle, 4};
		rc = md5_parts(parts, 2, key);
		if (!rc)
			rc = ntlm_rc4(key, hmac, 8, sig + 4);
	} else if (!rc) {
		memcpy(sig + 4, hmac, 8);
	}
	if (!rc) {
		wr32(sig, 1);
		memcpy(sig + 12, seqle, 4);
	}
	secmem_wipe(hmac, sizeof(hmac));
	secmem_wipe(key, sizeof(key));
	return rc;
}

int ntlm_server_sign(const struct ntlm_session *s, uint32_t seq, const uint8_t *msg, size_t len,
		     uint8_t sig[NTLM_SIG_LEN])
{
	return ntlm_mac(s->flags, s->server_sign, s->server_seal, seq, msg, len, sig);
}

int ntlm_server_verify(const struct ntlm_session *s, uint32_t seq, const uint8_t *msg, size_t len,
		       const uint8_t *sig, size_t sig_len)
{
	uint8_t want[NTLM_SIG_LEN];
	bool ok;

	if (!sig || sig_len != NTLM_SIG_LEN)
		return -1;
	if (ntlm_mac(s->flags, s->client_sign, s->client_seal, seq, msg, len, want))
		return -1;
	ok = secmem_eq(want, sig, NTLM_SIG_LEN);
	secmem_wipe(want, sizeof(want));
	return ok ? 0 : -1;
}

/* ---- connection-oriented signing ([MS-NLMP] 3.4.4.2, 3.4.3) ---- */

int ntlm_co_init(struct ntlm_co *d, uint32_t flags, const uint8_t sign_key[16],
		 const uint8_t seal_key[16])
{
	EVP_CIPHER_CTX *c;

	memset(d, 0, sizeof(*d));
	if (!(flags & NTLM_NEGOTIATE_EXTENDED_SESSION) || (flags & NTLM_NEGOTIATE_DATAGRAM))
		return NTLM_E_UNSUPPORTED;
	if (!crypto_ok())
		return NTLM_E_CRYPTO;
	c = EVP_CIPHER_CTX_new();
	if (!c)
		return NTLM_E_CRYPTO;
	/* MS-NLMP 3.4.3: connection-oriented, the handle is RC4Init(SealingKey)
	 * once per direction and its stream runs on across messages */
	if (EVP_EncryptInit_ex2(c, cipher_rc4, seal_key, NULL, NULL) != 1) {
		EVP_CIPHER_CTX_free(c);
		return NTLM_E_CRYPTO;
	}
	d->flags = flags;
	memcpy(d->sign_key, sign_key, 16);
	d->rc4 = c;
	return 0;
}

void ntlm_co_free(struct ntlm_co *d)
{
	if (!d)
		return;
	EVP_CIPHER_CTX_free(d->rc4);
	secmem_wipe(d, sizeof(*d));
}

static int co_rc4(struct ntlm_co *d, const uint8_t *in, size_t len, uint8_t *out)
{
	int outl = 0;

	if (!d->rc4 || len > (size_t)INT32_MAX)
		return NTLM_E_CRYPTO;
	if (len &&
	    (EVP_EncryptUpdate(d->rc4, out, &outl, in, (int)len) != 1 || (size_t)outl != len))
		return NTLM_E_CRYPTO;
	return 0;
}

int ntlm_co_seal(struct ntlm_co *d, const uint8_t *in, size_t len, uint8_t *out)
{
	return co_rc4(d, in, len, out);
}

int ntlm_co_sign(struct ntlm_co *d, const uint8_t *msg, size_t len, uint8_t sig[NTLM_SIG_LEN])
{
	uint8_t seqle[4], hmac[16];
	struct part parts[2];
	int rc;

	if (!d->rc4)
		return NTLM_E_CRYPTO;
	wr32(seqle, d->seq);
	parts[0] = (struct part){seqle, 4};
	parts[1] = (struct part){msg, len};
	/* HMAC_MD5(SigningKey, ConcatenationOf(SeqNum, Message))[0..7] */
	rc = hmac_md5(d->sign_key, 16, parts, 2, hmac);
	if (!rc && (d->flags & NTLM_NEGOTIATE_KEY_EXCH))
		rc = co_rc4(d, hmac, 8, sig + 4);
	else if (!rc)
		memcpy(sig + 4, hmac, 8);
	if (!rc) {
		wr32(sig, 1);
		memcpy(sig + 12, seqle, 4);
		d->seq++;
	}
	secmem_wipe(hmac, sizeof(hmac));
	return rc;
}

int ntlm_co_verify(struct ntlm_co *d, const uint8_t *msg, size_t len, const uint8_t *sig,
		   size_t sig_len)
{
	uint8_t want[NTLM_SIG_LEN];
	bool ok;

	if (!sig || sig_len != NTLM_SIG_LEN)
		return -1;
	/* the expected signature advances our stream and counter whether or
	 * not it matches: a peer's bad signature ends the session anyway */
	if (ntlm_co_sign(d, msg, len, want))
		return -1;
	ok = secmem_eq(want, sig, NTLM_SIG_LEN);
	secmem_wipe(want, sizeof(want));
	return ok ? 0 : -1;
}

int ntlm_negotiate_flags(const uint8_t *msg, size_t len, uint32_t *flags)
{
	*flags = 0;
	if (!msg)
		return NTLM_E_MALFORMED;
	if (len > NTLM_NEGOTIATE_MAX)
		return NTLM_E_TOO_LARGE;
	/* MS-NLMP 2.2.1.1: Signature, MessageType 1, NegotiateFlags, then the
	 * domain and workstation fields (16 bytes, which old clients omit) */
	if (len < 16 || memcmp(msg, ntlm_sig, 8) != 0 || rd32(msg + 8) != 1)
		return NTLM_E_MALFORMED;
	*flags = rd32(msg + 12);
	return 0;
}

uint32_t ntlm_co_challenge_flags(uint32_t nf)
{
	const uint32_t echo = NTLM_NEGOTIATE_SIGN | NTLM_NEGOTIATE_SEAL | NTLM_NEGOTIATE_128 |
			      NTLM_NEGOTIATE_56 | NTLM_NEGOTIATE_KEY_EXCH | NTLM_NEGOTIATE_VERSION;

	if (!(nf & NTLM_NEGOTIATE_UNICODE) || !(nf & NTLM_NEGOTIATE_EXTENDED_SESSION))
		return 0;
	return NTLM_NEGOTIATE_UNICODE | NTLM_REQUEST_TARGET | NTLM_NEGOTIATE_NTLM |
	       NTLM_NEGOTIATE_ALWAYS_SIGN | NTLM_TARGET_TYPE_DOMAIN |
	       NTLM_NEGOTIATE_EXTENDED_SESSION | NTLM_NEGOTIATE_TARGET_INFO | (nf & echo);
}
