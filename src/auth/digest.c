/*
 * HTTP/SIP Digest mechanism (RFC 2617, RFC 3261 §22 and §25, RFC 7616,
 * RFC 8760): auth-param parsing, response computation from a stored HA1,
 * challenge writing. See digest.h.
 *
 * Must never: compare secrets (the vault does, in constant time), log, or
 * keep a secret beyond a call. Hash contexts are cleared by OpenSSL when
 * freed (OPENSSL_clear_free of the provider context); our stack copies of
 * HA1 are wiped before return.
 *
 * Performance: the EVP_MD objects are fetched once (pthread_once), and one
 * EVP_MD_CTX is reused for the 2-4 hashes of a response. The parts of one
 * hash are gathered in a stack buffer (wiped after use) and fed in one
 * update: each EVP_DigestUpdate costs more than copying a short part. One
 * context allocation per call instead of a thread-local one keeps no hash
 * state (which may hold HA1 bytes) alive between calls.
 */
#include "auth/digest.h"

#include <pthread.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/md.h"
#include "core/secmem.h"
#include "core/str.h"

/* ---- hashing ---------------------------------------------------------- */

static EVP_MD *md_cache[DIGEST_ALG_COUNT];
static pthread_once_t md_once = PTHREAD_ONCE_INIT;

static void md_fetch_all(void)
{
	static const char *const names[DIGEST_ALG_COUNT] = {
	    [DIGEST_MD5] = "MD5",
	    [DIGEST_SHA256] = "SHA2-256",
	    [DIGEST_SHA512_256] = "SHA2-512/256",
	};

	for (unsigned i = 0; i < DIGEST_ALG_COUNT; i++)
		md_cache[i] = EVP_MD_fetch(NULL, names[i], NULL);
}

/* The fetched EVP_MD for alg, or NULL (unknown alg, provider missing). */
static const EVP_MD *md_get(enum digest_alg alg)
{
	if ((unsigned)alg >= DIGEST_ALG_COUNT)
		return NULL;
	if (pthread_once(&md_once, md_fetch_all) != 0)
		return NULL;
	return md_cache[alg];
}

/* H(parts[0] || ... || parts[n-1]) into out (digest_alg_len(alg) bytes). */
static int hash_parts(EVP_MD_CTX *ctx, enum digest_alg alg, const struct str *parts, size_t n,
		      uint8_t *out)
{
	const EVP_MD *md = md_get(alg);
	unsigned int olen = 0;

	uint8_t buf[1024];
	size_t total = 0;
	int rc = 0;

	if (!md || !ctx || EVP_DigestInit_ex2(ctx, md, NULL) != 1)
		return -1;
	for (size_t i = 0; i < n; i++)
		total += parts[i].len;
	if (total <= sizeof(buf)) {
		size_t o = 0;
		for (size_t i = 0; i < n; i++) {
			if (parts[i].len)
				memcpy(buf + o, parts[i].p, parts[i].len);
			o += parts[i].len;
		}
		rc = o && EVP_DigestUpdate(ctx, buf, o) != 1 ? -1 : 0;
		secmem_wipe(buf, o); /* may hold hex of HA1 */
	} else {
		for (size_t i = 0; i < n && rc == 0; i++)
			if (parts[i].len && EVP_DigestUpdate(ctx, parts[i].p, parts[i].len) != 1)
				rc = -1;
	}
	if (rc < 0 || EVP_DigestFinal_ex(ctx, out, &olen) != 1 || olen != digest_alg_len(alg))
		return -1;
	return 0;
}

static void hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

int digest_hash_hex(enum digest_alg alg, const void *data, size_t len, char *out, size_t cap)
{
	uint8_t h[EVP_MAX_MD_SIZE];
	size_t hl = digest_alg_len(alg);
	struct str part = str_make(data, len);
	EVP_MD_CTX *ctx;
	int rc;

	if (!hl || !out || cap < 2 * hl + 1 || (!data && len))
		return -1;
	ctx = EVP_MD_CTX_new();
	rc = hash_parts(ctx, alg, &part, 1, h);
	EVP_MD_CTX_free(ctx);
	if (rc < 0)
		return -1;
	hex_encode(h, hl, out);
	return (int)(2 * hl);
}

int digest_ha1(enum digest_alg alg, struct str username, struct str realm, struct str password,
	       uint8_t *out)
{
	const struct str parts[] = {username, STR_LIT(":"), realm, STR_LIT(":"), password};
	EVP_MD_CTX *ctx;
	int rc;

	if (!out || !digest_alg_len(alg))
		return -1;
	ctx = EVP_MD_CTX_new();
	rc = hash_parts(ctx, alg, parts, sizeof(parts) / sizeof(parts[0]), out);
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* ---- response --------------------------------------------------------- */

static struct str qop_token(const struct digest_creds *c)
{
	if (c->qop_str.len)
		return c->qop_str;
	return c->qop == DIGEST_QOP_AUTH_INT ? STR_LIT("auth-int") : STR_LIT("auth");
}

/* Body of digest_response once the context exists; every hex buffer here
 * is 129 bytes (hex of the longest hash plus NUL). */
static int response_with(EVP_MD_CTX *ctx, const struct digest_creds *c, const uint8_t *ha1,
			 struct str method, struct str body, char *ha1hex, char *out)
{
	const struct str colon = STR_LIT(":");
	enum digest_alg alg = c->alg;
	size_t hl = digest_alg_len(alg);
	uint8_t h[EVP_MAX_MD_SIZE];
	char ha2hex[129], bodyhex[129], nc_buf[9];
	struct str ha1s = str_make(ha1hex, 2 * hl), ha2s = str_make(ha2hex, 2 * hl);
	struct str nc = c->nc_str;
	int rc = -1;

	hex_encode(ha1, hl, ha1hex);
	if (c->sess) {
		/* RFC 7616 §3.4.2: A1 = H(user:realm:pass) ":" nonce ":" cnonce */
		const struct str a1[] = {ha1s, colon, c->nonce, colon, c->cnonce};
		if (hash_parts(ctx, alg, a1, 5, h) < 0)
			goto out;
		hex_encode(h, hl, ha1hex);
	}
	if (c->qop == DIGEST_QOP_AUTH_INT) {
		/* RFC 7616 §3.4.3: A2 = Method ":" request-uri ":" H(entity-body) */
		if (hash_parts(ctx, alg, &body, 1, h) < 0)
			goto out;
		hex_encode(h, hl, bodyhex);
		const struct str a2[] = {method, colon, c->uri, colon, str_make(bodyhex, 2 * hl)};
		if (hash_parts(ctx, alg, a2, 5, h) < 0)
			goto out;
	} else {
		const struct str a2[] = {method, colon, c->uri};
		if (hash_parts(ctx, alg, a2, 3, h) < 0)
			goto out;
	}
	hex_encode(h, hl, ha2hex);
	if (c->qop == DIGEST_QOP_NONE) {
		/* RFC 2069 / RFC 2617 §3.2.2.1 without qop: H(HA1:nonce:HA2) */
		const struct str kd[] = {ha1s, colon, c->nonce, colon, ha2s};
		if (hash_parts(ctx, alg, kd, 5, h) < 0)
			goto out;
	} else {
		/* RFC 7616 §3.4.1: KD(H(A1), nonce:nc:cnonce:qop:H(A2)) */
		if (!nc.len) {
			static const char digits[] = "0123456789abcdef";
			for (int i = 0; i < 8; i++)
				nc_buf[i] = digits[(c->nc >> (28 - 4 * i)) & 15];
			nc_buf[8] = '\0';
			nc = str_make(nc_buf, 8);
		}
		const struct str kd[] = {ha1s,	    colon, c->nonce,	 colon, nc,  colon,
					 c->cnonce, colon, qop_token(c), colon, ha2s};
		if (hash_parts(ctx, alg, kd, 11, h) < 0)
			goto out;
	}
	hex_encode(h, hl, out);
	rc = (int)(2 * hl);
out:
	secmem_wipe(h, sizeof(h));
	return rc;
}

int digest_response(const struct digest_creds *c, const uint8_t *ha1, struct str method,
		    struct str body, char *out, size_t cap)
{
	char ha1hex[129];
	EVP_MD_CTX *ctx;
	size_t hl;
	int rc;

	if (!c || !ha1 || !out)
		return -1;
	hl = digest_alg_len(c->alg);
	if (!hl || cap < 2 * hl + 1 || (unsigned)c->qop > DIGEST_QOP_AUTH_INT)
		return -1;
	if ((!method.p && method.len) || (!body.p && body.len))
		return -1;
	ctx = md_thread_ctx(); /* once per authenticated request */
	if (!ctx)
		return -1;
	rc = response_with(ctx, c, ha1, method, body, ha1hex, out);
	secmem_wipe(ha1hex, sizeof(ha1hex));
	return rc;
}

/* ---- parsing ---------------------------------------------------------- */

/* RFC 7230 §3.2.6 tchar (RFC 3261 token is the same set plus nothing we need). */
static bool is_tchar(unsigned char ch)
{
	/* bit ch of the 128-bit set: letters, digits and !#$%&'*+-.^_`|~ */
	static const uint64_t set[2] = {0x03ff6cfa00000000ull, 0x57ffffffc7fffffeull};

	return ch < 128 && (set[ch >> 6] >> (ch & 63) & 1);
}

static bool is_lws(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static const char *skip_lws(const char *p, const char *end)
{
	while (p < end && is_lws(*p))
		p++;
	return p;
}

static const char *skip_token(const char *p, const char *end)
{
	while (p < end && is_tchar((unsigned char)*p))
		p++;
	return p;
}

/* quoted-string body starting after the opening quote; returns the closing
 * quote or NULL (unterminated, or a control character other than HTAB). A
 * quoted-pair is stepped over, not decoded. */
static const char *scan_quoted(const char *p, const char *end)
{
	while (p < end && *p != '"') {
		unsigned char ch = (unsigned char)*p;
		if (ch == '\\') {
			if (end - p < 2)
				return NULL;
			p += 2;
			continue;
		}
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return NULL;
		p++;
	}
	return p < end ? p : NULL;
}

struct str auth_scheme_token(struct str value)
{
	const char *p, *end;

	if (!value.p)
		return STR_NULL;
	end = value.p + value.len;
	p = skip_lws(value.p, end);
	return str_make(p, (size_t)(skip_token(p, end) - p));
}

/*
 * RFC 7235 §2.1 / RFC 3261 §25.1: scheme 1*SP auth-param *(LWS "," LWS
 * auth-param); empty list elements are tolerated (RFC 7230 §7). *scheme is
 * set before the first call of fn.
 */
int auth_params_parse(struct str value, struct str *scheme,
		      int (*fn)(void *ctx, struct str name, struct str val, bool quoted), void *ctx)
{
	const char *p = value.p, *end = value.p + value.len, *q;

	if (scheme)
		*scheme = STR_NULL;
	if (!value.p || !fn)
		return value.len || !fn ? DIGEST_E_SYNTAX : DIGEST_E_SCHEME;
	p = skip_lws(p, end);
	q = skip_token(p, end);
	if (q == p)
		return DIGEST_E_SCHEME;
	if (scheme)
		*scheme = str_make(p, (size_t)(q - p));
	p = q;
	if (p < end && !is_lws(*p))
		return DIGEST_E_SYNTAX;
	for (;;) {
		struct str name, val;
		bool quoted = false;
		int rc;

		p = skip_lws(p, end);
		if (p == end)
			return 0;
		if (*p == ',') {
			p++;
			continue;
		}
		q = skip_token(p, end);
		if (q == p)
			return DIGEST_E_SYNTAX;
		name = str_make(p, (size_t)(q - p));
		p = skip_lws(q, end);
		if (p == end || *p != '=')
			return DIGEST_E_SYNTAX;
		p = skip_lws(p + 1, end);
		if (p < end && *p == '"') {
			q = scan_quoted(p + 1, end);
			if (!q)
				return DIGEST_E_SYNTAX;
			val = str_make(p + 1, (size_t)(q - p - 1));
			quoted = true;
			p = q + 1;
		} else {
			q = skip_token(p, end);
			if (q == p)
				return DIGEST_E_SYNTAX;
			val = str_make(p, (size_t)(q - p));
			p = q;
		}
		rc = fn(ctx, name, val, quoted);
		if (rc)
			return rc;
		p = skip_lws(p, end);
		if (p == end)
			return 0;
		if (*p != ',')
			return DIGEST_E_SYNTAX;
		p++;
	}
}

enum {
	F_USERNAME,
	F_REALM,
	F_NONCE,
	F_URI,
	F_RESPONSE,
	F_ALGORITHM,
	F_CNONCE,
	F_OPAQUE,
	F_QOP,
	F_NC,
	F_USERHASH,
	F_COUNT,
};

static const struct {
	const char *name;
	size_t max;
} fields[F_COUNT] = {
    [F_USERNAME] = {"username", DIGEST_MAX_FIELD},
    [F_REALM] = {"realm", DIGEST_MAX_FIELD},
    [F_NONCE] = {"nonce", DIGEST_MAX_NONCE},
    [F_URI] = {"uri", DIGEST_MAX_FIELD},
    [F_RESPONSE] = {"response", DIGEST_MAX_RESPONSE},
    [F_ALGORITHM] = {"algorithm", DIGEST_MAX_FIELD},
    [F_CNONCE] = {"cnonce", DIGEST_MAX_FIELD},
    [F_OPAQUE] = {"opaque", DIGEST_MAX_FIELD},
    [F_QOP] = {"qop", DIGEST_MAX_FIELD},
    [F_NC] = {"nc", DIGEST_MAX_FIELD},
    [F_USERHASH] = {"userhash", DIGEST_MAX_FIELD},
};

struct creds_parse {
	struct digest_creds *c;
	const struct str *scheme;
	unsigned seen; /* bit per F_* */
	unsigned nparams;
};

static struct str *field_slot(struct digest_creds *c, int f)
{
	switch (f) {
	case F_USERNAME:
		return &c->username;
	case F_REALM:
		return &c->realm;
	case F_NONCE:
		return &c->nonce;
	case F_URI:
		return &c->uri;
	case F_RESPONSE:
		return &c->response;
	case F_ALGORITHM:
		return &c->algorithm;
	case F_CNONCE:
		return &c->cnonce;
	case F_OPAQUE:
		return &c->opaque;
	case F_QOP:
		return &c->qop_str;
	case F_NC:
		return &c->nc_str;
	default:
		return NULL;
	}
}

/* Field-specific checks once a known field has been stored. */
static int creds_field(struct digest_creds *c, int f, struct str val)
{
	uint32_t nc = 0;

	switch (f) {
	case F_ALGORITHM:
		if (digest_alg_parse(val, &c->alg, &c->sess) < 0)
			return DIGEST_E_ALGORITHM;
		return 0;
	case F_QOP:
		/* RFC 7616 §3.4: the client picks exactly one qop-value. */
		if (str_caseeq_cstr(val, "auth"))
			c->qop = DIGEST_QOP_AUTH;
		else if (str_caseeq_cstr(val, "auth-int"))
			c->qop = DIGEST_QOP_AUTH_INT;
		else
			return DIGEST_E_QOP;
		return 0;
	case F_NC:
		/* RFC 7616 §3.4: nc-value = 8LHEX (upper case tolerated) */
		if (val.len != 8)
			return DIGEST_E_QOP;
		for (size_t i = 0; i < 8; i++) {
			int d = str_hexval(val.p[i]);
			if (d < 0)
				return DIGEST_E_QOP;
			nc = (nc << 4) | (uint32_t)d;
		}
		if (nc == 0)
			return DIGEST_E_QOP;
		c->nc = nc;
		return 0;
	case F_USERHASH:
		if (str_caseeq_cstr(val, "true"))
			c->userhash = true;
		else if (!str_caseeq_cstr(val, "false"))
			return DIGEST_E_SYNTAX;
		return 0;
	default:
		return 0;
	}
}

/* The one quoted-pair a user name may hold: "DOMAIN\\\\user" (an escaped
 * backslash between two non-empty parts without others). */
static bool domain_user(struct str v)
{
	size_t n = 0, at = 0;
	for (size_t i = 0; i < v.len; i++) {
		if (v.p[i] != '\\')
			continue;
		if (i + 1 >= v.len || v.p[i + 1] != '\\')
			return false;
		n++;
		at = i;
		i++;
	}
	return n == 1 && at > 0 && at + 2 < v.len;
}

static int creds_param(void *ctx, struct str name, struct str val, bool quoted)
{
	struct creds_parse *st = ctx;
	struct str *slot;
	int f;

	if (st->nparams == 0 && !str_caseeq_cstr(*st->scheme, "Digest"))
		return DIGEST_E_SCHEME;
	if (++st->nparams > DIGEST_MAX_PARAMS)
		return DIGEST_E_TOO_LONG;
	for (f = 0; f < F_COUNT; f++) {
		if (str_caseeq_cstr(name, fields[f].name))
			break;
	}
	if (f == F_COUNT)
		return val.len > DIGEST_MAX_FIELD ? DIGEST_E_TOO_LONG : 0;
	/* quoted-pairs are not decoded (digest.h): a known field holding one
	 * is invalid; unknown parameters are skipped whatever they hold */
	if (quoted && memchr(val.p, '\\', val.len) && !(f == F_USERNAME && domain_user(val)))
		return DIGEST_E_SYNTAX;
	if (st->seen & (1u << f))
		return DIGEST_E_DUPLICATE;
	st->seen |= 1u << f;
	if (val.len > fields[f].max)
		return DIGEST_E_TOO_LONG;
	slot = field_slot(st->c, f);
	if (slot)
		*slot = val;
	return creds_field(st->c, f, val);
}

/* RFC 7616 §3.4: response = 2*len lower-case hex digits of the algorithm. */
static bool response_is_hex(struct str r, enum digest_alg alg)
{
	if (r.len != 2 * digest_alg_len(alg))
		return false;
	for (size_t i = 0; i < r.len; i++) {
		char ch = r.p[i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
			return false;
	}
	return true;
}

int digest_parse_credentials(struct str value, struct digest_creds *out)
{
	struct str scheme = STR_NULL;
	struct creds_parse st = {out, &scheme, 0, 0};
	int rc;

	if (!out)
		return DIGEST_E_SYNTAX;
	memset(out, 0, sizeof(*out));
	out->alg = DIGEST_MD5;
	rc = auth_params_parse(value, &scheme, creds_param, &st);
	/* another scheme (e.g. Basic token68) is "not Digest", not a syntax error */
	if (rc != DIGEST_E_SCHEME && scheme.len && !str_caseeq_cstr(scheme, "Digest"))
		rc = DIGEST_E_SCHEME;
	if (rc == 0 && (!out->username.len || !out->realm.len || !out->nonce.len || !out->uri.len ||
			!out->response.len))
		rc = DIGEST_E_MISSING;
	/* RFC 7616 §3.4: cnonce and nc MUST be sent with qop, nc MUST NOT without */
	if (rc == 0 && out->qop != DIGEST_QOP_NONE && (!out->cnonce.len || !out->nc_str.len))
		rc = DIGEST_E_MISSING;
	if (rc == 0 && out->qop == DIGEST_QOP_NONE && out->nc_str.len)
		rc = DIGEST_E_QOP;
	if (rc == 0 && !response_is_hex(out->response, out->alg))
		rc = DIGEST_E_SYNTAX;
	if (rc != 0) {
		memset(out, 0, sizeof(*out));
		return rc < 0 ? rc : DIGEST_E_SYNTAX;
	}
	return 0;
}

const char *digest_strerror(int err)
{
	switch (err) {
	case 0:
		return "ok";
	case DIGEST_E_SCHEME:
		return "not a Digest header";
	case DIGEST_E_SYNTAX:
		return "malformed Digest header";
	case DIGEST_E_DUPLICATE:
		return "Digest parameter given twice";
	case DIGEST_E_MISSING:
		return "Digest parameter missing";
	case DIGEST_E_TOO_LONG:
		return "Digest field too long or too many parameters";
	case DIGEST_E_ALGORITHM:
		return "unknown Digest algorithm";
	case DIGEST_E_QOP:
		return "unknown qop or bad nonce count";
	default:
		return "unknown Digest error";
	}
}

/* ---- challenge -------------------------------------------------------- */

void digest_challenge_write(struct sbuf *b, const char *hdr, struct str realm, struct str nonce,
			    struct str opaque, enum digest_alg alg, bool sess, bool qop_auth_int,
			    bool stale)
{
	sbuf_puts(b, hdr);
	sbuf_puts(b, ": Digest realm=\"");
	sbuf_putstr(b, realm);
	sbuf_puts(b, "\", nonce=\"");
	sbuf_putstr(b, nonce);
	sbuf_putc(b, '"');
	if (opaque.len) {
		sbuf_puts(b, ", opaque=\"");
		sbuf_putstr(b, opaque);
		sbuf_putc(b, '"');
	}
	sbuf_puts(b, ", algorithm=");
	sbuf_puts(b, digest_alg_name(alg));
	if (sess)
		sbuf_puts(b, "-sess");
	sbuf_puts(b, qop_auth_int ? ", qop=\"auth,auth-int\"" : ", qop=\"auth\"");
	if (stale)
		sbuf_puts(b, ", stale=true");
	sbuf_puts(b, "\r\n");
}
