/*
 * libFuzzer target for the Digest credential parser: the generic auth-param
 * walker, digest_parse_credentials, and for credentials that parse, the
 * response computation with a fixed HA1 (the input doubles as the auth-int
 * body) and a challenge built from the parsed realm and nonce. Checks the
 * parser's promises: every string points inside the input, fields respect
 * their bounds, the response is hex of the algorithm's length. The input is
 * copied into an exact-size buffer so any read past the end is caught.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/digest.h"

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

static int walk(void *ctx, struct str name, struct str val, bool quoted)
{
	(*(unsigned *)ctx)++;
	inside(name);
	inside(val);
	if (!name.len)
		abort();
	(void)quoted;
	return 0;
}

static void check_creds(const struct digest_creds *c, struct str body)
{
	static const uint8_t ha1[32] = {0x8a, 0x1f, 0x2c, 0x3d, 0x4e, 0x5f, 0x60, 0x71,
					0x82, 0x93, 0xa4, 0xb5, 0xc6, 0xd7, 0xe8, 0xf9};
	char out[129], mem[2048];
	struct sbuf b;
	int n;

	inside(c->username);
	inside(c->realm);
	inside(c->nonce);
	inside(c->uri);
	inside(c->response);
	inside(c->algorithm);
	inside(c->cnonce);
	inside(c->opaque);
	inside(c->qop_str);
	inside(c->nc_str);
	if (!c->username.len || !c->realm.len || !c->nonce.len || !c->uri.len)
		abort();
	if (c->username.len > DIGEST_MAX_FIELD || c->nonce.len > DIGEST_MAX_NONCE ||
	    c->uri.len > DIGEST_MAX_FIELD || c->cnonce.len > DIGEST_MAX_FIELD)
		abort();
	if (c->response.len != 2 * digest_alg_len(c->alg))
		abort();
	if (c->qop != DIGEST_QOP_NONE && (c->nc == 0 || !c->cnonce.len))
		abort();
	n = digest_response(c, ha1, STR_LIT("REGISTER"), body, out, sizeof(out));
	if (n != (int)(2 * digest_alg_len(c->alg)) || strlen(out) != (size_t)n)
		abort();
	sbuf_init(&b, mem, sizeof(mem) - 1);
	digest_challenge_write(&b, "WWW-Authenticate", c->realm, c->nonce, c->opaque, c->alg,
			       c->sess, c->qop == DIGEST_QOP_AUTH_INT, true);
	if (!sbuf_ok(&b))
		abort(); /* bounded fields always fit in 2 KiB */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);
	struct digest_creds c;
	struct str in, scheme;
	unsigned params = 0;
	enum digest_alg alg;
	bool sess;

	if (!buf)
		return 0;
	if (size)
		memcpy(buf, data, size);
	lo = buf;
	hi = buf + size;
	in = str_make(buf, size);

	if (auth_params_parse(in, &scheme, walk, &params) >= 0)
		inside(scheme);
	if (digest_parse_credentials(in, &c) == 0)
		check_creds(&c, in);
	(void)digest_alg_parse(in, &alg, &sess);
	free(buf);
	return 0;
}
