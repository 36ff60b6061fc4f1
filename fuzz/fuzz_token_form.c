/*
 * libFuzzer target for the token endpoint's form parser (token_form_parse,
 * oauth/token.h) and the policy behind it (token_process).
 *
 * The input is the request body, copied into an exact-size buffer so any
 * read past its end is caught. The parser's promises are checked: it
 * answers 0 or -1; a refusal is a 400 or 500 with an RFC 6749 error, a
 * NUL-terminated description and an emptied form; an accepted form's values
 * lie inside its buffer, are non-empty and NUL-terminated there, hold no
 * control character, and non-token values stay within
 * TOKEN_FORM_SHORT_MAX. Every accepted form is written back
 * percent-encoded and must parse again to the same values.
 *
 * Each accepted form then goes through token_process against a snapshot
 * with one partner ("fz", trust full) whose self-signed certificate is the
 * TLS client certificate of the request, unless the form carries a client
 * assertion (then only for odd-sized inputs, to reach the "two methods"
 * refusal): client_id=fz reaches the grant, resource and scope checks and
 * the minting, with a signer that only looks at the claims. Every answer
 * is either a 200 with a token bound to that certificate (cnf x5t#S256) or
 * an error with no token.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "oauth/oauth.h"
#include "oauth/replay.h"
#include "oauth/sts.h"
#include "oauth/token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1800000000

static struct oauth_snapshot snap;
static struct oauth_partner partner;
static struct sts_issuer iss;
static struct replay_cache *replay;
static X509 *cert;
static char thumb[JOSE_X5T256_LEN + 1];

/* The values of a form, in the parser's order. */
static const char *const *values(const struct token_form *f, const char *v[13])
{
	v[0] = f->grant_type;
	v[1] = f->client_id;
	v[2] = f->client_assertion_type;
	v[3] = f->client_assertion;
	v[4] = f->resource;
	v[5] = f->audience;
	v[6] = f->scope;
	v[7] = f->assertion;
	v[8] = f->subject_token;
	v[9] = f->subject_token_type;
	v[10] = f->actor_token;
	v[11] = f->actor_token_type;
	v[12] = f->requested_token_type;
	return v;
}

static const char *const names[13] = {
    "grant_type",
    "client_id",
    "client_assertion_type",
    "client_assertion",
    "resource",
    "audience",
    "scope",
    "assertion",
    "subject_token",
    "subject_token_type",
    "actor_token",
    "actor_token_type",
    "requested_token_type",
};
/* may be as long as the body (a JWT) */
static const int is_token[13] = {0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 1, 0, 0};

/* The signer: checks what would be signed, signs nothing. */
static int stub_sign(void *arg, const json_t *header, const json_t *payload, char **out,
		     size_t *outlen)
{
	const char *cnf =
	    json_string_value(json_object_get(json_object_get(payload, "cnf"), "x5t#S256"));

	(void)arg;
	(void)header;
	/* only an mTLS client gets tokens here: each one bound to its certificate */
	if (!cnf || strcmp(cnf, thumb) != 0)
		abort();
	*out = strdup("h.p.s");
	if (outlen)
		*outlen = *out ? 5 : 0;
	return *out ? 0 : -1;
}

static void init(void)
{
	unsigned char *der = NULL;
	struct jose_key *k = NULL;
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	X509_NAME *n;
	int len;

	cert = X509_new();
	if (!pkey || !cert || X509_set_version(cert, 2) != 1 ||
	    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1) != 1 ||
	    !X509_gmtime_adj(X509_getm_notBefore(cert), 0) ||
	    !X509_gmtime_adj(X509_getm_notAfter(cert), 86400))
		abort();
	n = X509_get_subject_name(cert);
	if (X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"fz", -1, -1,
				       0) != 1 ||
	    X509_set_issuer_name(cert, n) != 1 || X509_set_pubkey(cert, pkey) != 1 ||
	    X509_sign(cert, pkey, EVP_sha256()) <= 0)
		abort();
	len = i2d_X509(cert, &der);
	if (len <= 0 || jose_key_from_cert_der(der, (size_t)len, JOSE_ALG_UNKNOWN, NULL, &k) != 0 ||
	    token_cert_thumbprint(cert, thumb) != 0)
		abort();
	OPENSSL_free(der);
	EVP_PKEY_free(pkey);
	jose_keyset_init(&partner.keys);
	if (jose_keyset_add(&partner.keys, k) != 0)
		abort();
	jose_key_free(k);
	snprintf(partner.rec.name, sizeof(partner.rec.name), "fz");
	snprintf(partner.rec.issuer, sizeof(partner.rec.issuer), "fz");
	snprintf(partner.rec.resources, sizeof(partner.rec.resources),
		 "users.read,presence.read,https://api.example.test");
	partner.rec.enabled = true;
	partner.rec.trust = STORE_TRUST_FULL;
	partner.rec.lifetime = 600;
	snprintf(snap.issuer, sizeof(snap.issuer), "https://sts.example.test");
	snprintf(snap.token_endpoint, sizeof(snap.token_endpoint),
		 "https://sts.example.test/oauth/token");
	snprintf(snap.realm, sizeof(snap.realm), "example.test");
	snprintf(snap.principal_id, sizeof(snap.principal_id), OAUTH_PRINCIPAL_LYNC);
	snprintf(snap.host, sizeof(snap.host), "sts.example.test");
	snap.default_lifetime = 3600;
	snap.max_lifetime = 86400;
	snap.clock_skew = 300;
	snap.max_token_size = 16384;
	snap.partners = &partner;
	snap.n_partners = 1;
	iss.issuer = snap.issuer;
	iss.principal_id = snap.principal_id;
	iss.realm = snap.realm;
	iss.default_lifetime = snap.default_lifetime;
	iss.max_lifetime = snap.max_lifetime;
	iss.sign = stub_sign;
	replay = replay_new(1024);
	if (!replay)
		abort();
}

static void check_refusal(const struct token_form *f, const struct token_result *res)
{
	if ((res->status != 400 && res->status != 500) || !res->error ||
	    !memchr(res->description, '\0', sizeof(res->description)) || f->buf || f->cap ||
	    f->grant_type || f->client_assertion || f->scope)
		abort();
}

static void check_form(const struct token_form *f)
{
	const char *v[13];

	values(f, v);
	if (!f->buf || f->cap == 0)
		abort();
	for (int p = 0; p < 13; p++) {
		size_t n;

		if (!v[p])
			continue;
		if (v[p] < f->buf || v[p] >= f->buf + f->cap)
			abort();
		n = strnlen(v[p], (size_t)(f->buf + f->cap - v[p]));
		if (n == 0 || n == (size_t)(f->buf + f->cap - v[p]))
			abort(); /* empty, or not terminated inside the buffer */
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)v[p][i] < 0x20 || v[p][i] == 0x7f)
				abort();
		if (!is_token[p] && n > TOKEN_FORM_SHORT_MAX)
			abort();
	}
}

/* Write f back percent-encoded ('&' between pairs, the order shuffled by
 * one rotation) and parse it again: the same values. */
static void round_trip(const struct token_form *f, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *v[13], *w[13];
	struct token_form g;
	struct token_result res;
	size_t cap = 3 * size + 13 * 32, o = 0;
	char *body = malloc(cap);

	if (!body)
		return;
	values(f, v);
	for (int q = 0; q < 13; q++) {
		int p = (q + 5) % 13;

		if (!v[p])
			continue;
		o += (size_t)snprintf(body + o, cap - o, "%s%s=", o ? "&" : "", names[p]);
		for (const char *c = v[p]; *c; c++) {
			unsigned char u = (unsigned char)*c;

			if (u == ' ') {
				body[o++] = '+';
			} else if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') ||
				   (u >= '0' && u <= '9') || strchr("-._~", u)) {
				body[o++] = (char)u;
			} else {
				body[o++] = '%';
				body[o++] = hex[u >> 4];
				body[o++] = hex[u & 15];
			}
		}
	}
	memset(&res, 0, sizeof(res));
	if (o == 0) {
		/* nothing known was given: the same as an empty body */
		free(body);
		return;
	}
	if (token_form_parse(body, o, &g, &res) != 0)
		abort();
	values(&g, w);
	for (int p = 0; p < 13; p++)
		if (!v[p] != !w[p] || (v[p] && strcmp(v[p], w[p]) != 0))
			abort();
	token_form_free(&g);
	free(body);
}

static void process(const struct token_form *f, size_t size)
{
	struct token_ctx ctx;
	struct token_result res;

	memset(&ctx, 0, sizeof(ctx));
	ctx.snap = &snap;
	ctx.iss = &iss;
	ctx.replay = replay;
	ctx.now = NOW;
	ctx.client_cert = !f->client_assertion || (size & 1) ? cert : NULL;
	token_process(&ctx, f, &res);
	if (res.status == 200) {
		if (res.error || !res.access_token || res.expires_in <= 0 ||
		    res.expires_in > snap.max_lifetime || !ctx.client_cert)
			abort();
	} else {
		if (!res.error || res.access_token || res.status < 400 || res.status > 503 ||
		    !memchr(res.description, '\0', sizeof(res.description)))
			abort();
	}
	if (!memchr(res.scope, '\0', sizeof(res.scope)))
		abort();
	token_result_free(&res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct token_form f;
	struct token_result res;
	char *buf;

	if (!ready) {
		init();
		ready = 1;
	}
	buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	if (size)
		memcpy(buf, data, size);
	memset(&res, 0, sizeof(res));
	if (token_form_parse(buf, size, &f, &res) != 0) {
		check_refusal(&f, &res);
	} else {
		if (res.status != 0 || res.error)
			abort();
		check_form(&f);
		round_trip(&f, size);
		process(&f, size);
		token_form_free(&f);
	}
	free(buf);
	return 0;
}
