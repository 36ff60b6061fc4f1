/*
 * libFuzzer target for the [MS-SIPAE] codec: sipae_parse_credentials on the
 * whole input (an Authorization value), and the same input as a SIP message
 * (datagram rules): the signature fields taken from it, the credentials of
 * its Authorization / Proxy-Authorization header, and the signature buffer
 * built from both; then the challenge and Authentication-Info lines written
 * from the parsed values. Checks the codec's promises: strings point inside
 * the input, fields respect their bounds, cnum/crand/response are what the
 * header says they are, the buffer has 15 or 16 <> groups and fits
 * SIPAE_SIGBUF_MAX. The input is copied into an exact-size buffer so any
 * read past the end is caught.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/sipae.h"
#include "sip/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *lo, *hi;

static void inside(struct str s)
{
	volatile unsigned char x = 0;

	if (s.len && (s.p < lo || s.p + s.len > hi))
		abort();
	for (size_t i = 0; i < s.len; i++)
		x ^= (unsigned char)s.p[i];
	(void)x;
}

static bool hex(struct str s)
{
	for (size_t i = 0; i < s.len; i++)
		if (str_hexval(s.p[i]) < 0)
			return false;
	return true;
}

static void check_creds(const struct sipae_creds *c)
{
	char mem[SIPAE_MAX_GSSAPI + 4 * SIPAE_MAX_FIELD + 512];
	struct sbuf b;

	inside(c->scheme_str);
	inside(c->qop);
	inside(c->realm);
	inside(c->targetname);
	inside(c->opaque);
	inside(c->gssapi_data);
	inside(c->crand);
	inside(c->cnum_str);
	inside(c->response);
	inside(c->epid);
	if (c->scheme == SA_SCHEME_NONE ||
	    !str_caseeq_cstr(c->scheme_str, sa_scheme_name(c->scheme)))
		abort();
	if (c->realm.len > SIPAE_MAX_FIELD || c->targetname.len > SIPAE_MAX_FIELD ||
	    c->opaque.len > SIPAE_MAX_FIELD || c->gssapi_data.len > SIPAE_MAX_GSSAPI ||
	    c->response.len > SIPAE_MAX_RESPONSE)
		abort();
	if (!c->has_gssapi_data && (!c->crand.len || !c->has_cnum))
		abort();
	if (c->crand.len && (c->crand.len != 8 || !hex(c->crand)))
		abort();
	if (c->has_cnum && (c->cnum == 0 || !c->cnum_str.len || c->cnum_str.p[0] == '0'))
		abort();
	if (c->response.len && (c->response.len % 2 || !hex(c->response)))
		abort();
	if (!c->has_gssapi_data && c->gssapi_data.len)
		abort();
	/* writers: the bounded fields always fit */
	sbuf_init(&b, mem, sizeof(mem));
	sipae_challenge_write(&b, "WWW-Authenticate", c->scheme, c->realm, c->targetname,
			      c->version, c->opaque, c->gssapi_data, c->realm);
	if (!sbuf_ok(&b))
		abort();
	sbuf_init(&b, mem, sizeof(mem));
	sipae_auth_info_write(&b, "Proxy-Authentication-Info", c->scheme, c->opaque, c->realm,
			      c->targetname, c->response, c->crand, c->cnum, c->gssapi_data);
	if (!sbuf_ok(&b))
		abort();
}

static void check_buffer(const char *buf, long n, bool response)
{
	long groups = 0, depth = 0;

	if (n < 0)
		return;
	if (n > SIPAE_SIGBUF_MAX)
		abort();
	/* field values may themselves hold '<' '>' (Call-ID), so count only
	 * a lower bound: the buffer starts with '<' and ends with '>' */
	if (n < 2 || buf[0] != '<' || buf[n - 1] != '>')
		abort();
	for (long i = 0; i < n; i++) {
		if (buf[i] == '<')
			depth++;
		else if (buf[i] == '>' && depth > 0 && --depth == 0)
			groups++;
	}
	if (groups == 0)
		abort();
	(void)response;
}

static void check_msg(const char *buf, size_t size)
{
	static struct sip_msg m;
	struct sipae_fields f;
	struct sipae_creds c;
	const struct sip_header *h;
	char status[4], out[SIPAE_SIGBUF_MAX];
	long n;

	if (sip_msg_parse(&m, buf, size, false) != 0)
		return;
	if (sipae_fields_from_msg(&m, &f, status) != 0)
		return;
	for (int i = 0; i < SIPAE_F__COUNT; i++) {
		if (i == SIPAE_F_STATUS)
			continue;
		inside(f.f[i]);
	}
	if (m.is_request != (f.f[SIPAE_F_STATUS].len == 0))
		abort();
	if (!f.f[SIPAE_F_CALL_ID].len || !f.f[SIPAE_F_CSEQ_NUM].len ||
	    !f.f[SIPAE_F_CSEQ_METHOD].len)
		abort();
	h = sip_msg_header(&m, SIP_H_AUTHORIZATION);
	if (!h)
		h = sip_msg_header(&m, SIP_H_PROXY_AUTHORIZATION);
	if (h && sipae_parse_credentials(h->value, &c) == 0) {
		check_creds(&c);
		n = sipae_sig_buffer(c.scheme_str, c.crand, c.cnum_str, c.realm, c.targetname, &f,
				     out, sizeof(out));
	} else {
		n = sipae_sig_buffer(STR_LIT("NTLM"), STR_LIT("0A0B0C0D"), STR_LIT("1"),
				     STR_LIT("SIP Communications Service"), STR_LIT("t"), &f, out,
				     sizeof(out));
	}
	check_buffer(out, n, !m.is_request);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);
	struct sipae_creds c;
	struct str in;

	if (!buf)
		return 0;
	if (size)
		memcpy(buf, data, size);
	lo = buf;
	hi = buf + size;
	in = str_make(buf, size);

	if (sipae_parse_credentials(in, &c) == 0)
		check_creds(&c);
	check_msg(buf, size);
	free(buf);
	return 0;
}
