/*
 * libFuzzer target for the SPNEGO codec (auth/spnego.h): spnego_parse on
 * arbitrary bytes. For tokens that parse it checks the parser's promises
 * (every range inside the input, counts and sizes within their bounds) and
 * that DER is canonical: a parsed NegTokenResp, or a NegTokenInit without
 * reqFlags, built again from its fields is byte for byte the input, and the
 * mechTypes rebuilt from the OIDs are mech_types_der. The input is copied
 * into an exact-size buffer so any read past the end is caught.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/spnego.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *lo, *hi;

static void inside(struct spnego_buf b)
{
	volatile uint8_t x = 0;

	if (b.len && (b.p < lo || b.p + b.len > hi))
		abort();
	for (size_t i = 0; i < b.len; i++)
		x ^= b.p[i];
	(void)x;
}

static void check_rebuild(const uint8_t *in, size_t size, const struct spnego_token *t)
{
	static uint8_t out[SPNEGO_TOKEN_MAX + 256];
	size_t len = 0;
	int rc;

	if (t->kind == SPNEGO_RESP)
		rc = spnego_build_resp(t->state, t->has_supported_mech ? t->supported_mech.p : NULL,
				       t->supported_mech.len,
				       t->has_mech_token ? t->mech_token.p : NULL,
				       t->mech_token.len, t->has_mic ? t->mic.p : NULL, t->mic.len,
				       out, sizeof(out), &len);
	else if (!t->has_req_flags)
		rc = spnego_build_init(t->mechs, t->n_mechs,
				       t->has_mech_token ? t->mech_token.p : NULL,
				       t->mech_token.len, t->has_mic ? t->mic.p : NULL, t->mic.len,
				       out, sizeof(out), &len);
	else
		return;
	if (rc != 0 || len != size || memcmp(out, in, size) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf = malloc(size ? size : 1), mt[1024];
	struct spnego_token t;
	size_t mtlen = 0;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	lo = buf;
	hi = buf + size;
	if (spnego_parse(buf, size, &t) == 0) {
		if (t.kind != SPNEGO_INIT && t.kind != SPNEGO_RESP)
			abort();
		if (t.n_mechs > SPNEGO_MECHS_MAX || (t.kind == SPNEGO_INIT && t.n_mechs == 0))
			abort();
		if (t.mic.len > SPNEGO_MIC_MAX || size > SPNEGO_TOKEN_MAX)
			abort();
		inside(t.mech_types_der);
		inside(t.req_flags);
		inside(t.supported_mech);
		inside(t.mech_token);
		inside(t.mic);
		for (size_t i = 0; i < t.n_mechs; i++) {
			if (t.mechs[i].len == 0 || t.mechs[i].len > SPNEGO_OID_MAX)
				abort();
			inside(t.mechs[i]);
		}
		if (t.kind == SPNEGO_INIT &&
		    (spnego_build_mech_types(t.mechs, t.n_mechs, mt, sizeof(mt), &mtlen) != 0 ||
		     mtlen != t.mech_types_der.len || memcmp(mt, t.mech_types_der.p, mtlen) != 0))
			abort();
		check_rebuild(buf, size, &t);
	}
	free(buf);
	return 0;
}
