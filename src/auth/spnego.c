/*
 * SPNEGO NegotiationToken codec (spnego.h; RFC 4178 §4, RFC 2743 §3.1).
 *
 * DESIGN: the token has a fixed shape, so the reader is a flat sequence of
 * bounded steps (der_next) at fixed depths, never a recursive walk: a token
 * nested deeper than the grammar allows is simply a wrong tag. Lengths are
 * DER (definite, minimal); everything must end exactly where its parent
 * ends. The writer computes sizes first and writes forward, so it never
 * needs to move bytes.
 *
 * Must never read outside the caller's buffer, allocate, or log.
 */
#include "auth/spnego.h"

#include <string.h>

const uint8_t spnego_oid_spnego[6] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x02};
const uint8_t spnego_oid_ntlmssp[10] = {0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a};
const uint8_t spnego_oid_krb5[9] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02};
const uint8_t spnego_oid_mskrb5[9] = {0x2a, 0x86, 0x48, 0x82, 0xf7, 0x12, 0x01, 0x02, 0x02};

/* DER tags used here (one identifier octet each). */
#define TAG_APP0      0x60 /* [APPLICATION 0] constructed */
#define TAG_CTX(n)    (0xa0 | (n))
#define TAG_BITSTRING 0x03
#define TAG_OCTETS    0x04
#define TAG_OID	      0x06
#define TAG_ENUM      0x0a
#define TAG_SEQUENCE  0x30

/* ---- reading ---- */

struct der {
	const uint8_t *p;
	size_t len;
	size_t off;
};

static struct der der_of(struct spnego_buf b)
{
	struct der d = {b.p, b.len, 0};

	return d;
}

/*
 * The next TLV of d: its tag, its content (val) and the whole element
 * (tlv, header included). Single-octet tags only; definite minimal lengths
 * of at most 3 length octets (anything longer is over every bound here).
 */
static int der_next(struct der *d, uint8_t *tag, struct spnego_buf *val, struct spnego_buf *tlv)
{
	size_t start = d->off, i = d->off, n, k;

	if (i >= d->len || d->len - i < 2)
		return SPNEGO_E_MALFORMED;
	*tag = d->p[i++];
	if ((*tag & 0x1f) == 0x1f)
		return SPNEGO_E_MALFORMED; /* high tag number form: never in SPNEGO */
	n = d->p[i++];
	if (n == 0x80)
		return SPNEGO_E_MALFORMED; /* indefinite length: BER, not DER */
	if (n & 0x80) {
		k = n & 0x7f;
		if (k > 3)
			return SPNEGO_E_TOO_LARGE;
		if (d->len - i < k || d->p[i] == 0)
			return SPNEGO_E_MALFORMED; /* truncated, or a leading zero octet */
		n = 0;
		while (k--)
			n = n << 8 | d->p[i++];
		if (n < 0x80)
			return SPNEGO_E_MALFORMED; /* long form where short fits */
	}
	if (n > d->len - i)
		return SPNEGO_E_MALFORMED;
	val->p = d->p + i;
	val->len = n;
	if (tlv) {
		tlv->p = d->p + start;
		tlv->len = i + n - start;
	}
	d->off = i + n;
	return 0;
}

/* The one element that is the whole of b, with tag want; its content. */
static int der_only(struct spnego_buf b, uint8_t want, struct spnego_buf *val,
		    struct spnego_buf *tlv)
{
	struct der d = der_of(b);
	uint8_t tag;
	int rc = der_next(&d, &tag, val, tlv);

	if (rc)
		return rc;
	if (tag != want || d.off != d.len)
		return SPNEGO_E_MALFORMED;
	return 0;
}

/* X.690 §8.19: subidentifiers in base 128, minimal (no leading 0x80), the
 * last octet ending one. */
static int oid_check(struct spnego_buf oid)
{
	bool start = true;

	if (oid.len == 0)
		return SPNEGO_E_MALFORMED;
	if (oid.len > SPNEGO_OID_MAX)
		return SPNEGO_E_TOO_LARGE;
	for (size_t i = 0; i < oid.len; i++) {
		if (start && oid.p[i] == 0x80)
			return SPNEGO_E_MALFORMED;
		start = !(oid.p[i] & 0x80);
	}
	return start ? 0 : SPNEGO_E_MALFORMED;
}

bool spnego_oid_eq(struct spnego_buf oid, const uint8_t *want, size_t want_len)
{
	return oid.p && oid.len == want_len && memcmp(oid.p, want, want_len) == 0;
}

/* MechTypeList ::= SEQUENCE OF MechType (RFC 4178 §4.2.1). */
static int parse_mech_types(struct spnego_buf field, struct spnego_token *t)
{
	struct spnego_buf seq, oid;
	struct der d;
	uint8_t tag;
	int rc;

	rc = der_only(field, TAG_SEQUENCE, &seq, &t->mech_types_der);
	if (rc)
		return rc;
	d = der_of(seq);
	while (d.off < d.len) {
		rc = der_next(&d, &tag, &oid, NULL);
		if (rc)
			return rc;
		if (tag != TAG_OID)
			return SPNEGO_E_MALFORMED;
		if (t->n_mechs == SPNEGO_MECHS_MAX)
			return SPNEGO_E_TOO_LARGE;
		rc = oid_check(oid);
		if (rc)
			return rc;
		t->mechs[t->n_mechs++] = oid;
	}
	return t->n_mechs ? 0 : SPNEGO_E_MALFORMED;
}

static int parse_octets(struct spnego_buf field, size_t max, struct spnego_buf *out)
{
	int rc = der_only(field, TAG_OCTETS, out, NULL);

	if (rc)
		return rc;
	return out->len > max ? SPNEGO_E_TOO_LARGE : 0;
}

/* ContextFlags ::= BIT STRING: the unused-bits octet, then the bits. */
static int parse_flags(struct spnego_buf field, struct spnego_token *t)
{
	int rc = der_only(field, TAG_BITSTRING, &t->req_flags, NULL);

	if (rc)
		return rc;
	if (t->req_flags.len == 0 || t->req_flags.p[0] > 7 ||
	    (t->req_flags.len == 1 && t->req_flags.p[0] != 0) || t->req_flags.len > 5)
		return SPNEGO_E_MALFORMED;
	t->has_req_flags = true;
	return 0;
}

/*
 * The fields of a NegTokenInit / NegTokenResp SEQUENCE: context tags [0]..[3]
 * in increasing order, each at most once; field(n, content) handles one.
 */
static int parse_fields(struct spnego_buf seq, struct spnego_token *t,
			int (*field)(int n, struct spnego_buf content, struct spnego_token *t))
{
	struct der d = der_of(seq);
	struct spnego_buf v;
	int last = -1, rc;
	uint8_t tag;

	while (d.off < d.len) {
		rc = der_next(&d, &tag, &v, NULL);
		if (rc)
			return rc;
		if ((tag & 0xe0) != 0xa0 || (int)(tag & 0x1f) <= last || (tag & 0x1f) > 3)
			return SPNEGO_E_MALFORMED;
		last = tag & 0x1f;
		rc = field(last, v, t);
		if (rc)
			return rc;
	}
	return 0;
}

static int init_field(int n, struct spnego_buf v, struct spnego_token *t)
{
	switch (n) {
	case 0:
		return parse_mech_types(v, t);
	case 1:
		return parse_flags(v, t);
	case 2:
		t->has_mech_token = true;
		return parse_octets(v, SPNEGO_TOKEN_MAX, &t->mech_token);
	default:
		t->has_mic = true;
		return parse_octets(v, SPNEGO_MIC_MAX, &t->mic);
	}
}

static int resp_field(int n, struct spnego_buf v, struct spnego_token *t)
{
	struct spnego_buf e;
	int rc;

	switch (n) {
	case 0:
		rc = der_only(v, TAG_ENUM, &e, NULL);
		if (rc)
			return rc;
		if (e.len != 1 || e.p[0] > SPNEGO_REQUEST_MIC)
			return SPNEGO_E_MALFORMED;
		t->state = (enum spnego_state)e.p[0];
		return 0;
	case 1:
		rc = der_only(v, TAG_OID, &t->supported_mech, NULL);
		if (!rc)
			rc = oid_check(t->supported_mech);
		t->has_supported_mech = rc == 0;
		return rc;
	case 2:
		t->has_mech_token = true;
		return parse_octets(v, SPNEGO_TOKEN_MAX, &t->mech_token);
	default:
		t->has_mic = true;
		return parse_octets(v, SPNEGO_MIC_MAX, &t->mic);
	}
}

/* RFC 2743 §3.1: [APPLICATION 0] { thisMech OID, innerContextToken }, here
 * thisMech = SPNEGO and the inner token NegTokenInit [0] { SEQUENCE }. */
static int parse_init(struct spnego_buf body, struct spnego_token *t)
{
	struct der d = der_of(body);
	struct spnego_buf oid, inner, seq;
	uint8_t tag;
	int rc;

	rc = der_next(&d, &tag, &oid, NULL);
	if (rc)
		return rc;
	if (tag != TAG_OID || !spnego_oid_eq(oid, spnego_oid_spnego, sizeof(spnego_oid_spnego)))
		return SPNEGO_E_MALFORMED;
	inner.p = body.p + d.off;
	inner.len = body.len - d.off;
	rc = der_only(inner, TAG_CTX(0), &seq, NULL);
	if (!rc)
		rc = der_only(seq, TAG_SEQUENCE, &seq, NULL);
	if (!rc)
		rc = parse_fields(seq, t, init_field);
	if (!rc && t->n_mechs == 0)
		rc = SPNEGO_E_MALFORMED; /* mechTypes is not optional */
	t->kind = SPNEGO_INIT;
	return rc;
}

int spnego_parse(const uint8_t *tok, size_t len, struct spnego_token *out)
{
	struct spnego_buf all = {tok, len}, body;
	uint8_t tag;
	int rc;

	memset(out, 0, sizeof(*out));
	out->state = SPNEGO_STATE_ABSENT;
	if (!tok || len == 0)
		return SPNEGO_E_MALFORMED;
	if (len > SPNEGO_TOKEN_MAX)
		return SPNEGO_E_TOO_LARGE;
	tag = tok[0];
	if (tag == TAG_APP0) {
		rc = der_only(all, TAG_APP0, &body, NULL);
		if (!rc)
			rc = parse_init(body, out);
	} else if (tag == TAG_CTX(1)) {
		out->kind = SPNEGO_RESP;
		rc = der_only(all, TAG_CTX(1), &body, NULL);
		if (!rc)
			rc = der_only(body, TAG_SEQUENCE, &body, NULL);
		if (!rc)
			rc = parse_fields(body, out, resp_field);
	} else {
		rc = SPNEGO_E_MALFORMED;
	}
	if (rc) {
		memset(out, 0, sizeof(*out));
		out->state = SPNEGO_STATE_ABSENT;
	}
	return rc;
}

/* ---- writing ---- */

struct wr {
	uint8_t *p;
	size_t cap;
	size_t off;
	bool err;
};

static size_t len_size(size_t n)
{
	return n < 0x80 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 4;
}

/* Bytes of a TLV with n content bytes. */
static size_t tlv_size(size_t n)
{
	return 1 + len_size(n) + n;
}

static void put(struct wr *w, const void *b, size_t n)
{
	if (w->err || w->cap - w->off < n) {
		w->err = true;
		return;
	}
	if (n)
		memcpy(w->p + w->off, b, n);
	w->off += n;
}

static void put_hdr(struct wr *w, uint8_t tag, size_t n)
{
	uint8_t h[5];
	size_t k = len_size(n), i = 0;

	h[i++] = tag;
	if (k == 1) {
		h[i++] = (uint8_t)n;
	} else {
		h[i++] = (uint8_t)(0x80 | (k - 1));
		for (size_t j = k - 1; j > 0; j--)
			h[i++] = (uint8_t)(n >> (8 * (j - 1)));
	}
	put(w, h, i);
}

/* [n] { tag content } */
static void put_field(struct wr *w, uint8_t n, uint8_t tag, const uint8_t *b, size_t len)
{
	put_hdr(w, TAG_CTX(n), tlv_size(len));
	put_hdr(w, tag, len);
	put(w, b, len);
}

static int wr_done(const struct wr *w, size_t *len)
{
	if (w->err)
		return SPNEGO_E_BUFFER;
	*len = w->off;
	return 0;
}

static int mechs_content(const struct spnego_buf *mechs, size_t n, size_t *sz)
{
	*sz = 0;
	if (!mechs || n == 0)
		return SPNEGO_E_MALFORMED;
	if (n > SPNEGO_MECHS_MAX)
		return SPNEGO_E_TOO_LARGE;
	for (size_t i = 0; i < n; i++) {
		int rc = oid_check(mechs[i]);

		if (rc)
			return rc;
		*sz += tlv_size(mechs[i].len);
	}
	return 0;
}

int spnego_build_mech_types(const struct spnego_buf *mechs, size_t n, uint8_t *out, size_t cap,
			    size_t *len)
{
	struct wr w = {out, cap, 0, false};
	size_t sz;
	int rc;

	*len = 0;
	rc = mechs_content(mechs, n, &sz);
	if (rc)
		return rc;
	put_hdr(&w, TAG_SEQUENCE, sz);
	for (size_t i = 0; i < n; i++) {
		put_hdr(&w, TAG_OID, mechs[i].len);
		put(&w, mechs[i].p, mechs[i].len);
	}
	return wr_done(&w, len);
}

int spnego_build_resp(enum spnego_state state, const uint8_t *mech, size_t mech_len,
		      const uint8_t *resp, size_t resp_len, const uint8_t *mic, size_t mic_len,
		      uint8_t *out, size_t cap, size_t *len)
{
	struct wr w = {out, cap, 0, false};
	uint8_t st = (uint8_t)state;
	size_t seq = 0;

	*len = 0;
	if (state != SPNEGO_STATE_ABSENT && (state < 0 || state > SPNEGO_REQUEST_MIC))
		return SPNEGO_E_MALFORMED;
	if (mech && oid_check((struct spnego_buf){mech, mech_len}))
		return SPNEGO_E_MALFORMED;
	if ((resp && resp_len > SPNEGO_TOKEN_MAX) || (mic && mic_len > SPNEGO_MIC_MAX))
		return SPNEGO_E_TOO_LARGE;
	if (state != SPNEGO_STATE_ABSENT)
		seq += tlv_size(tlv_size(1));
	if (mech)
		seq += tlv_size(tlv_size(mech_len));
	if (resp)
		seq += tlv_size(tlv_size(resp_len));
	if (mic)
		seq += tlv_size(tlv_size(mic_len));
	put_hdr(&w, TAG_CTX(1), tlv_size(seq));
	put_hdr(&w, TAG_SEQUENCE, seq);
	if (state != SPNEGO_STATE_ABSENT)
		put_field(&w, 0, TAG_ENUM, &st, 1);
	if (mech)
		put_field(&w, 1, TAG_OID, mech, mech_len);
	if (resp)
		put_field(&w, 2, TAG_OCTETS, resp, resp_len);
	if (mic)
		put_field(&w, 3, TAG_OCTETS, mic, mic_len);
	return wr_done(&w, len);
}

int spnego_build_init(const struct spnego_buf *mechs, size_t n, const uint8_t *tok, size_t tok_len,
		      const uint8_t *mic, size_t mic_len, uint8_t *out, size_t cap, size_t *len)
{
	struct wr w = {out, cap, 0, false};
	size_t mt, seq, inner;
	int rc;

	*len = 0;
	rc = mechs_content(mechs, n, &mt);
	if (rc)
		return rc;
	if ((tok && tok_len > SPNEGO_TOKEN_MAX) || (mic && mic_len > SPNEGO_MIC_MAX))
		return SPNEGO_E_TOO_LARGE;
	seq = tlv_size(tlv_size(mt));
	if (tok)
		seq += tlv_size(tlv_size(tok_len));
	if (mic)
		seq += tlv_size(tlv_size(mic_len));
	inner = tlv_size(tlv_size(seq));
	put_hdr(&w, TAG_APP0, tlv_size(sizeof(spnego_oid_spnego)) + inner);
	put_hdr(&w, TAG_OID, sizeof(spnego_oid_spnego));
	put(&w, spnego_oid_spnego, sizeof(spnego_oid_spnego));
	put_hdr(&w, TAG_CTX(0), tlv_size(seq));
	put_hdr(&w, TAG_SEQUENCE, seq);
	put_hdr(&w, TAG_CTX(0), tlv_size(mt));
	put_hdr(&w, TAG_SEQUENCE, mt);
	for (size_t i = 0; i < n; i++) {
		put_hdr(&w, TAG_OID, mechs[i].len);
		put(&w, mechs[i].p, mechs[i].len);
	}
	if (tok)
		put_field(&w, 2, TAG_OCTETS, tok, tok_len);
	if (mic)
		put_field(&w, 3, TAG_OCTETS, mic, mic_len);
	if (!w.err && w.off > SPNEGO_TOKEN_MAX)
		return SPNEGO_E_TOO_LARGE;
	return wr_done(&w, len);
}
