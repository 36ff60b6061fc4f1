/*
 * [MS-SIPAE] wire codec: NTLM / Kerberos / TLS-DSK credentials, challenges,
 * Authentication-Info, and the signature buffer. Pure: no I/O, no
 * allocation, no secrets (the signature itself is computed by the SA's
 * mechanism), no logging. Every input is bounded (SIPAE_MAX_*).
 *
 * Sources for the signature buffer rules (each rule below cites one):
 *  [MS-SIP] 3.1.4.2  the buffer: values in order, each in <>, "as they appear
 *                    in the message" (byte for byte), <> for an absent
 *                    optional value, the response code for responses only
 *                    (requests carry no <> for it at all).
 *  [MS-SIPAE] 3.2.5.1.x  version 3/4 adds the To URI and the
 *                    P-Asserted-Identity sip and tel URIs (PROTOCOLS.md §1).
 *  pidgin-sipe src/core/sipe-sign.c (sipmsg_breakdown_parse) and the real
 *                    OCS 2007 R2 trace in src/core/sip-sec-ntlm-tests.c, which
 *                    the unit tests reproduce byte for byte.
 *  OfficeSIP (vf1/sipserver, SipMicrosoftAuthentication.cs), a server: the
 *                    same order, From/To addr-spec and tag, the Expires
 *                    header, the status code for responses only.
 * The [MS-SIPAE] text itself was not at hand; where the peers differ
 * (P-Asserted-Identity with both a sip and a tel value) the field list of
 * PROTOCOLS.md §1 decides.
 */
#include "auth/sipae.h"

#include <string.h>

#include "auth/digest.h"
#include "core/secmem.h"
#include "sip/msg.h"

const char *sipae_strerror(int err)
{
	switch (err) {
	case 0:
		return "ok";
	case SIPAE_E_SCHEME:
		return "not an NTLM, Kerberos or TLS-DSK header";
	case SIPAE_E_SYNTAX:
		return "malformed authentication header";
	case SIPAE_E_DUPLICATE:
		return "authentication parameter given twice";
	case SIPAE_E_TOO_LONG:
		return "authentication parameter too long, or too many parameters";
	case SIPAE_E_VALUE:
		return "bad cnum, crand, version, response or gssapi-data value";
	case SIPAE_E_MISSING:
		return "authentication parameters missing";
	default:
		return "unknown authentication header error";
	}
}

/* ---- credentials -------------------------------------------------------- */

enum {
	P_QOP,
	P_REALM,
	P_TARGETNAME,
	P_OPAQUE,
	P_GSSAPI,
	P_CRAND,
	P_CNUM,
	P_RESPONSE,
	P_VERSION,
	P_EPID,
	P__COUNT,
};

static const struct {
	const char *name;
	size_t max;
} params[P__COUNT] = {
    [P_QOP] = {"qop", SIPAE_MAX_FIELD},
    [P_REALM] = {"realm", SIPAE_MAX_FIELD},
    [P_TARGETNAME] = {"targetname", SIPAE_MAX_FIELD},
    [P_OPAQUE] = {"opaque", SIPAE_MAX_FIELD},
    [P_GSSAPI] = {"gssapi-data", SIPAE_MAX_GSSAPI},
    [P_CRAND] = {"crand", SIPAE_MAX_FIELD},
    [P_CNUM] = {"cnum", SIPAE_MAX_FIELD},
    [P_RESPONSE] = {"response", SIPAE_MAX_RESPONSE},
    [P_VERSION] = {"version", SIPAE_MAX_FIELD},
    [P_EPID] = {"epid", SIPAE_MAX_FIELD},
};

struct creds_parse {
	struct sipae_creds *c;
	unsigned seen;
	unsigned nparams;
	int err;
};

static bool all_hex(struct str s)
{
	for (size_t i = 0; i < s.len; i++)
		if (str_hexval(s.p[i]) < 0)
			return false;
	return true;
}

static bool is_b64_char(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '+' || ch == '/' || ch == '=';
}

/* cnum: decimal 1..2^32-1 without sign or leading zero (the buffer carries
 * it as written, so one number has one spelling). */
static int parse_cnum(struct str v, uint32_t *out)
{
	uint64_t n;

	if (v.len == 0 || v.len > 10 || v.p[0] == '0')
		return -1;
	if (str_to_u64(v, UINT32_MAX, &n) != 0 || n == 0)
		return -1;
	*out = (uint32_t)n;
	return 0;
}

static int check_value(struct sipae_creds *c, int f, struct str v)
{
	uint64_t n;

	switch (f) {
	case P_CRAND:
		return v.len == 8 && all_hex(v) ? 0 : SIPAE_E_VALUE;
	case P_CNUM:
		return parse_cnum(v, &c->cnum) == 0 ? 0 : SIPAE_E_VALUE;
	case P_RESPONSE:
		return v.len > 0 && v.len % 2 == 0 && all_hex(v) ? 0 : SIPAE_E_VALUE;
	case P_VERSION:
		if (v.len == 0 || v.len > 2 || str_to_u64(v, 99, &n) != 0 || n == 0)
			return SIPAE_E_VALUE;
		c->version = (int)n;
		return 0;
	case P_GSSAPI:
		for (size_t i = 0; i < v.len; i++)
			if (!is_b64_char(v.p[i]))
				return SIPAE_E_VALUE;
		return 0;
	default:
		return 0;
	}
}

static struct str *param_slot(struct sipae_creds *c, int f)
{
	switch (f) {
	case P_QOP:
		return &c->qop;
	case P_REALM:
		return &c->realm;
	case P_TARGETNAME:
		return &c->targetname;
	case P_OPAQUE:
		return &c->opaque;
	case P_GSSAPI:
		return &c->gssapi_data;
	case P_CRAND:
		return &c->crand;
	case P_CNUM:
		return &c->cnum_str;
	case P_RESPONSE:
		return &c->response;
	case P_VERSION:
		return NULL;
	default:
		return &c->epid;
	}
}

static int creds_param(void *ctx, struct str name, struct str val, bool quoted)
{
	struct creds_parse *st = ctx;
	struct str *slot;
	int f, rc;

	(void)quoted;
	if (++st->nparams > SIPAE_MAX_PARAMS) {
		st->err = SIPAE_E_TOO_LONG;
		return 1;
	}
	for (f = 0; f < P__COUNT; f++)
		if (str_caseeq_cstr(name, params[f].name))
			break;
	if (f == P__COUNT)
		return 0; /* unknown parameters are ignored (counted above) */
	if (st->seen & (1u << f)) {
		st->err = SIPAE_E_DUPLICATE;
		return 1;
	}
	st->seen |= 1u << f;
	if (val.len > params[f].max) {
		st->err = SIPAE_E_TOO_LONG;
		return 1;
	}
	/* quoted-pairs are not decoded: none of these values may contain one */
	if (memchr(val.p, '\\', val.len)) {
		st->err = SIPAE_E_SYNTAX;
		return 1;
	}
	rc = check_value(st->c, f, val);
	if (rc) {
		st->err = rc;
		return 1;
	}
	slot = param_slot(st->c, f);
	if (slot)
		*slot = val;
	if (f == P_GSSAPI)
		st->c->has_gssapi_data = true;
	if (f == P_CNUM)
		st->c->has_cnum = true;
	return 0;
}

int sipae_parse_credentials(struct str value, struct sipae_creds *out)
{
	struct creds_parse st = {out, 0, 0, 0};
	struct str scheme;
	bool sig_any, sig_all;
	int rc;

	if (!out)
		return SIPAE_E_SYNTAX;
	memset(out, 0, sizeof(*out));
	/* another scheme's header (Digest on every ordinary request) is not
	 * walked: an unknown scheme wins over its parameters anyway */
	if (!value.p || sa_scheme_parse(auth_scheme_token(value)) == SA_SCHEME_NONE)
		return SIPAE_E_SCHEME;
	rc = auth_params_parse(value, &scheme, creds_param, &st);
	/* an unknown scheme wins over anything its parameters did wrong */
	if (scheme.len) {
		out->scheme = sa_scheme_parse(scheme);
		if (out->scheme == SA_SCHEME_NONE)
			rc = SIPAE_E_SCHEME;
	} else {
		rc = SIPAE_E_SCHEME;
	}
	if (rc == 1)
		rc = st.err;
	else if (rc == DIGEST_E_SCHEME)
		rc = SIPAE_E_SCHEME;
	else if (rc < 0 && rc != SIPAE_E_SCHEME)
		rc = SIPAE_E_SYNTAX;
	if (rc == 0) {
		sig_any = out->crand.len || out->has_cnum || out->response.len;
		sig_all = out->crand.len && out->has_cnum && out->response.len;
		if ((sig_any && !sig_all) || (!sig_all && !out->has_gssapi_data))
			rc = SIPAE_E_MISSING;
	}
	if (rc != 0) {
		memset(out, 0, sizeof(*out));
		return rc;
	}
	out->scheme_str = scheme;
	return 0;
}

/* ---- signature buffer ----------------------------------------------------- */

static bool is_ws(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* CSeq "<number> <method>" split as written. [MS-SIP] 3.1.4.2: "CSeq#" is the
 * number exactly as it appears (sipe: the text before the first space). */
static int cseq_split(struct str v, struct str *num, struct str *method)
{
	size_t i = 0, j;

	v = str_trim(v);
	while (i < v.len && !is_ws(v.p[i]))
		i++;
	*num = str_make(v.p, i);
	while (i < v.len && is_ws(v.p[i]))
		i++;
	j = i;
	while (j < v.len && !is_ws(v.p[j]))
		j++;
	*method = str_make(v.p + i, j - i);
	return num->len && method->len ? 0 : -1;
}

/*
 * P-Asserted-Identity (RFC 3325 §9.1: one sip/sips and/or one tel value,
 * in one header or several): the first sip/sips URI and the first tel URI,
 * each as written inside <> (or the bare addr-spec). Values that do not
 * parse are skipped. When there is no P-Asserted-Identity at all, the first
 * P-Preferred-Identity value is used, as pidgin-sipe (sipe-sign.c) does.
 */
static void pai_fields(const struct sip_msg *m, struct sipae_fields *out)
{
	struct sip_hdr_iter it;
	struct sip_nameaddr na;
	struct str v;

	if (sip_msg_header(m, SIP_H_P_ASSERTED_IDENTITY)) {
		sip_hdr_iter_init(&it, m, SIP_H_P_ASSERTED_IDENTITY);
		while (sip_hdr_iter_next(&it, &v) > 0) {
			if (sip_nameaddr_parse(v, &na) != 0)
				continue;
			if ((str_caseeq_cstr(na.uri.scheme, "sip") ||
			     str_caseeq_cstr(na.uri.scheme, "sips")) &&
			    !out->f[SIPAE_F_PAI_SIP].len)
				out->f[SIPAE_F_PAI_SIP] = na.uri_str;
			else if (str_caseeq_cstr(na.uri.scheme, "tel") &&
				 !out->f[SIPAE_F_PAI_TEL].len)
				out->f[SIPAE_F_PAI_TEL] = na.uri_str;
		}
		return;
	}
	const struct sip_header *h = sip_msg_header_by_name(m, "P-Preferred-Identity");
	if (!h)
		return;
	/* first value only: up to a comma outside <> and quotes */
	size_t i = 0;
	bool q = false, a = false;
	for (; i < h->value.len; i++) {
		char ch = h->value.p[i];
		if (ch == '"' && !a)
			q = !q;
		else if (ch == '<' && !q)
			a = true;
		else if (ch == '>' && !q)
			a = false;
		else if (ch == ',' && !q && !a)
			break;
	}
	if (sip_nameaddr_parse(str_trim(str_make(h->value.p, i)), &na) != 0)
		return;
	if (str_caseeq_cstr(na.uri.scheme, "sip") || str_caseeq_cstr(na.uri.scheme, "sips"))
		out->f[SIPAE_F_PAI_SIP] = na.uri_str;
	else if (str_caseeq_cstr(na.uri.scheme, "tel"))
		out->f[SIPAE_F_PAI_TEL] = na.uri_str;
}

int sipae_fields_from_msg(const struct sip_msg *m, struct sipae_fields *out, char status_buf[4])
{
	const struct sip_header *h;
	struct sip_nameaddr from, to;

	if (!m || !out)
		return -1;
	memset(out, 0, sizeof(*out));
	/* Call-ID: the header value as written */
	out->f[SIPAE_F_CALL_ID] = sip_msg_call_id(m);
	if (!out->f[SIPAE_F_CALL_ID].len)
		return -1;
	h = sip_msg_header(m, SIP_H_CSEQ);
	if (!h || cseq_split(h->value, &out->f[SIPAE_F_CSEQ_NUM], &out->f[SIPAE_F_CSEQ_METHOD]))
		return -1;
	/* From / To URL: the URI inside <> (URI parameters included, header
	 * parameters such as tag and epid not) as sipe takes it; tag: the tag
	 * header parameter's value. The sipe trace: From "User"<sip:u@d>;tag=
	 * 3e49177a52;epid=c8ca638a15 gives <sip:u@d><3e49177a52>. */
	if (sip_msg_from(m, &from) != 0 || sip_msg_to(m, &to) != 0)
		return -1;
	out->f[SIPAE_F_FROM_URI] = from.uri_str;
	out->f[SIPAE_F_FROM_TAG] = from.tag;
	out->f[SIPAE_F_TO_URI] = to.uri_str;
	out->f[SIPAE_F_TO_TAG] = to.tag;
	pai_fields(m, out);
	/* Expires: the Expires header value as written, <> when absent
	 * ([MS-SIP] 3.1.4.2 "Expires (optional)"; sipe-sign.c reads the Expires
	 * header only, and the sipe trace's REGISTER request, which has no
	 * Expires header, signs <>). A Contact's expires parameter is never
	 * used: a REGISTER 200 that must carry the expiry carries the header. */
	h = sip_msg_header(m, SIP_H_EXPIRES);
	if (h)
		out->f[SIPAE_F_EXPIRES] = h->value;
	/* response code: responses only ([MS-SIP] 3.1.4.2) */
	if (!m->is_request) {
		if (!status_buf || m->status < 100 || m->status > 999)
			return -1;
		status_buf[0] = (char)('0' + m->status / 100);
		status_buf[1] = (char)('0' + m->status / 10 % 10);
		status_buf[2] = (char)('0' + m->status % 10);
		status_buf[3] = '\0';
		out->f[SIPAE_F_STATUS] = str_make(status_buf, 3);
	}
	return 0;
}

static void put_bracketed(struct sbuf *b, struct str s)
{
	sbuf_putc(b, '<');
	sbuf_putstr(b, s);
	sbuf_putc(b, '>');
}

long sipae_sig_buffer(struct str scheme, struct str rand, struct str num, struct str realm,
		      struct str targetname, const struct sipae_fields *f, char *out, size_t cap)
{
	struct sbuf b;
	int i;

	if (!f || !out)
		return -1;
	sbuf_init(&b, out, cap);
	put_bracketed(&b, scheme);
	put_bracketed(&b, rand);
	put_bracketed(&b, num);
	put_bracketed(&b, realm);
	put_bracketed(&b, targetname);
	for (i = 0; i < SIPAE_F_STATUS; i++)
		put_bracketed(&b, f->f[i]);
	/* [MS-SIP] 3.1.4.2: requests carry no <> for the response code */
	if (f->f[SIPAE_F_STATUS].len)
		put_bracketed(&b, f->f[SIPAE_F_STATUS]);
	if (!sbuf_ok(&b) || b.len > SIPAE_SIGBUF_MAX)
		return -1;
	return (long)b.len;
}

/* ---- headers the server writes -------------------------------------------- */

static void put_param(struct sbuf *b, const char *name, struct str v, bool *first)
{
	sbuf_puts(b, *first ? " " : ", ");
	*first = false;
	sbuf_puts(b, name);
	sbuf_puts(b, "=\"");
	sbuf_putstr(b, v);
	sbuf_putc(b, '"');
}

void sipae_challenge_write(struct sbuf *b, const char *hdr, enum sa_scheme scheme, struct str realm,
			   struct str targetname, int version, struct str opaque,
			   struct str gssapi_data, struct str sts_uri)
{
	bool first = true;

	sbuf_puts(b, hdr);
	sbuf_puts(b, ": ");
	sbuf_puts(b, sa_scheme_name(scheme));
	if (opaque.len)
		put_param(b, "opaque", opaque, &first);
	if (gssapi_data.len)
		put_param(b, "gssapi-data", gssapi_data, &first);
	put_param(b, "realm", realm, &first);
	put_param(b, "targetname", targetname, &first);
	if (scheme == SA_SCHEME_TLSDSK && sts_uri.len)
		put_param(b, "sts-uri", sts_uri, &first);
	if (version > 0) {
		sbuf_puts(b, ", version=");
		sbuf_putu(b, (unsigned long)version);
	}
	sbuf_puts(b, "\r\n");
}

void sipae_auth_info_write(struct sbuf *b, const char *hdr, enum sa_scheme scheme,
			   struct str opaque, struct str realm, struct str targetname,
			   struct str rspauth, struct str srand, uint32_t snum,
			   struct str gssapi_data)
{
	bool first = true;

	sbuf_puts(b, hdr);
	sbuf_puts(b, ": ");
	sbuf_puts(b, sa_scheme_name(scheme));
	put_param(b, "opaque", opaque, &first);
	put_param(b, "qop", STR_LIT("auth"), &first);
	put_param(b, "realm", realm, &first);
	put_param(b, "targetname", targetname, &first);
	if (gssapi_data.len)
		put_param(b, "gssapi-data", gssapi_data, &first);
	put_param(b, "rspauth", rspauth, &first);
	put_param(b, "srand", srand, &first);
	sbuf_puts(b, ", snum=\"");
	sbuf_putu(b, snum);
	sbuf_puts(b, "\"\r\n");
}

int sipae_rand(char out[9])
{
	static const char hex[] = "0123456789ABCDEF";
	uint8_t r[4];

	if (!out)
		return -1;
	if (secmem_random(r, sizeof(r)) != 0) {
		out[0] = '\0';
		return -1;
	}
	for (int i = 0; i < 4; i++) {
		out[2 * i] = hex[r[i] >> 4];
		out[2 * i + 1] = hex[r[i] & 15];
	}
	out[8] = '\0';
	return 0;
}
