/*
 * JOSE (oauth/jose): compact JWS with the algorithm pinned per key. Every
 * bad token of issue 3 that concerns the token itself gets a test here,
 * named after the rule it checks; published vectors are in test_vec_jose.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "core/b64.h"
#include "oauth/jose.h"

static EVP_PKEY *rsa, *ec, *ed, *rsa_small, *ec384;
static struct jose_key *k_rsa, *k_ps, *k_ec, *k_ed;
static struct jose_keyset ks;

/* A self-signed certificate for pkey, DER in a malloc'd buffer. */
static unsigned char *make_cert(EVP_PKEY *pkey, const char *cn, int *len)
{
	X509 *x = X509_new();
	X509_NAME *nm;
	unsigned char *der = NULL;

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, pkey);
	nm = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, nm);
	assert_true(
	    X509_sign(x, pkey,
		      EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519 ? NULL : EVP_sha256()) > 0);
	*len = i2d_X509(x, &der);
	assert_true(*len > 0);
	X509_free(x);
	return der;
}

static int setup(void **state)
{
	unsigned char *der;
	int len;

	rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	rsa_small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ec384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (!rsa || !rsa_small || !ec || !ec384 || !ed)
		return -1;
	der = make_cert(rsa, "issuer", &len);
	if (jose_key_from_cert_der(der, (size_t)len, JOSE_ALG_RS256, "rsa1", &k_rsa))
		return -1;
	OPENSSL_free(der);
	if (jose_key_from_pkey(rsa, NULL, 0, JOSE_ALG_PS256, "ps1", &k_ps) ||
	    jose_key_from_pkey(ec, NULL, 0, JOSE_ALG_UNKNOWN, "ec1", &k_ec) ||
	    jose_key_from_pkey(ed, NULL, 0, JOSE_ALG_UNKNOWN, "ed1", &k_ed))
		return -1;
	jose_keyset_init(&ks);
	if (jose_keyset_add(&ks, k_rsa) || jose_keyset_add(&ks, k_ps) ||
	    jose_keyset_add(&ks, k_ec) || jose_keyset_add(&ks, k_ed))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	jose_keyset_clear(&ks);
	jose_key_free(k_rsa);
	jose_key_free(k_ps);
	jose_key_free(k_ec);
	jose_key_free(k_ed);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(rsa_small);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(ec384);
	EVP_PKEY_free(ed);
	return 0;
}

/* Sign payload_json with header_json through the public API. */
static char *sign(const char *header_json, const char *payload_json, EVP_PKEY *pkey,
		  enum jose_alg alg)
{
	struct jose_pkey_signer s = {pkey, alg};
	json_t *h = json_loads(header_json, 0, NULL), *p = json_loads(payload_json, 0, NULL);
	char *tok = NULL;

	assert_non_null(h);
	assert_non_null(p);
	assert_int_equal(jose_sign_compact(h, p, jose_pkey_signer, &s, &tok, NULL), 0);
	json_decref(h);
	json_decref(p);
	return tok;
}

/* Assemble b64url(h).b64url(p).sig from raw text (for tokens no signer makes). */
static char *raw_token(const char *h, const char *p, const char *sig)
{
	size_t cap = b64_url_len(strlen(h)) + b64_url_len(strlen(p)) + strlen(sig) + 3;
	char *t = malloc(cap);
	long a, b;

	assert_non_null(t);
	a = b64_url_encode((const uint8_t *)h, strlen(h), t, cap);
	assert_true(a >= 0);
	t[a] = '.';
	b = b64_url_encode((const uint8_t *)p, strlen(p), t + a + 1, cap - (size_t)a - 1);
	assert_true(b >= 0);
	t[a + 1 + b] = '.';
	strcpy(t + a + 2 + b, sig);
	return t;
}

static int verify(const char *tok, struct jose_jws *out)
{
	return jose_verify_keyset(tok, strlen(tok), NULL, &ks, out);
}

static int verify_rc(const char *tok)
{
	struct jose_jws j;
	int rc = verify(tok, &j);

	jose_jws_free(&j);
	return rc;
}

#define PAYLOAD "{\"iss\":\"a@r\",\"aud\":\"b/h@r\",\"nbf\":1700000000,\"exp\":1700003600}"

static void test_jose_signs_and_verifies_each_pinned_algorithm(void **state)
{
	static const struct {
		const char *h;
		EVP_PKEY **pk;
		enum jose_alg alg;
		struct jose_key **key;
	} c[] = {
	    {"{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", &rsa, JOSE_ALG_RS256, &k_rsa},
	    {"{\"alg\":\"PS256\",\"kid\":\"ps1\"}", &rsa, JOSE_ALG_PS256, &k_ps},
	    {"{\"alg\":\"ES256\",\"kid\":\"ec1\"}", &ec, JOSE_ALG_ES256, &k_ec},
	    {"{\"alg\":\"EdDSA\",\"kid\":\"ed1\"}", &ed, JOSE_ALG_EDDSA, &k_ed},
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		char *tok = sign(c[i].h, PAYLOAD, *c[i].pk, c[i].alg);
		struct jose_jws j;
		const char *iss;

		assert_int_equal(verify(tok, &j), 0);
		assert_ptr_equal(j.key, *c[i].key);
		assert_int_equal(j.alg, c[i].alg);
		assert_int_equal(jose_claim_str(j.payload, "iss", &iss), 0);
		assert_string_equal(iss, "a@r");
		jose_jws_free(&j);
		free(tok);
	}
}

static void test_jose_verify_refuses_alg_none_alone(void **state)
{
	char *tok = raw_token("{\"alg\":\"none\"}", PAYLOAD, "");
	char *tok2 = raw_token("{\"alg\":\"none\",\"kid\":\"rsa1\"}", PAYLOAD, "");

	assert_int_equal(verify_rc(tok), JOSE_EALG_NONE);
	assert_int_equal(verify_rc(tok2), JOSE_EALG_NONE);
	assert_string_equal(jose_strerror(JOSE_EALG_NONE), "alg_none");
	free(tok);
	free(tok2);
}

/* The classic confusion: HMAC with the RSA public key as the secret. */
static void test_jose_rejects_rs256_key_presented_as_hs256_secret(void **state)
{
	char *pem = NULL, *tok, sig[64];
	unsigned char mac[32];
	unsigned int maclen = 0;
	BIO *b = BIO_new(BIO_s_mem());
	long pemlen;

	assert_non_null(b);
	assert_true(PEM_write_bio_PUBKEY(b, rsa));
	pemlen = BIO_get_mem_data(b, &pem);
	tok = raw_token("{\"alg\":\"HS256\",\"kid\":\"rsa1\"}", PAYLOAD, "");
	assert_non_null(HMAC(EVP_sha256(), pem, (int)pemlen, (const unsigned char *)tok,
			     strlen(tok) - 1, mac, &maclen));
	assert_true(b64_url_encode(mac, maclen, sig, sizeof(sig)) > 0);
	tok = realloc(tok, strlen(tok) + strlen(sig) + 1);
	strcat(tok, sig);
	assert_int_equal(verify_rc(tok), JOSE_EALG);
	assert_string_equal(jose_strerror(JOSE_EALG), "alg_not_allowed");
	BIO_free(b);
	free(tok);
}

static void test_jose_rejects_header_alg_other_than_the_keys(void **state)
{
	/* a valid RS256 signature, but key ps1 (same RSA key) is pinned to PS256 */
	char *tok = sign("{\"alg\":\"RS256\",\"kid\":\"ps1\"}", PAYLOAD, rsa, JOSE_ALG_RS256);
	char *tok2 = sign("{\"alg\":\"ES256\",\"kid\":\"rsa1\"}", PAYLOAD, ec, JOSE_ALG_ES256);

	assert_int_equal(verify_rc(tok), JOSE_EALG);
	assert_int_equal(verify_rc(tok2), JOSE_EALG);
	free(tok);
	free(tok2);
}

static void test_jose_rejects_tampered_payload(void **state)
{
	char *tok = sign("{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", PAYLOAD, rsa, JOSE_ALG_RS256);
	char *evil = raw_token("{\"alg\":\"RS256\",\"kid\":\"rsa1\"}",
			       "{\"iss\":\"a@r\",\"aud\":\"b/h@r\",\"nbf\":1700000000,"
			       "\"exp\":1800003600}",
			       strrchr(tok, '.') + 1);
	char *tok_ec = sign("{\"alg\":\"ES256\",\"kid\":\"ec1\"}", PAYLOAD, ec, JOSE_ALG_ES256);
	char *evil_ec = raw_token("{\"alg\":\"ES256\",\"kid\":\"ec1\"}",
				  "{\"iss\":\"a@r\",\"aud\":\"c/h@r\",\"nbf\":1700000000,"
				  "\"exp\":1700003600}",
				  strrchr(tok_ec, '.') + 1);

	assert_int_equal(verify_rc(evil), JOSE_EBADSIG);
	assert_int_equal(verify_rc(evil_ec), JOSE_EBADSIG);
	assert_int_equal(verify_rc(tok_ec), 0);
	free(tok);
	free(evil);
	free(tok_ec);
	free(evil_ec);
}

static void test_jose_rejects_token_without_kid_or_x5t(void **state)
{
	char *tok = sign("{\"alg\":\"RS256\"}", PAYLOAD, rsa, JOSE_ALG_RS256);

	assert_int_equal(verify_rc(tok), JOSE_ENOKEYID);
	assert_string_equal(jose_strerror(JOSE_ENOKEYID), "no_key_id");
	free(tok);
}

static void test_jose_rejects_unknown_kid_and_unknown_x5t(void **state)
{
	char *tok = sign("{\"alg\":\"RS256\",\"kid\":\"nope\"}", PAYLOAD, rsa, JOSE_ALG_RS256);
	char *tok2 = sign("{\"alg\":\"RS256\",\"x5t\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAA\"}", PAYLOAD,
			  rsa, JOSE_ALG_RS256);

	assert_int_equal(verify_rc(tok), JOSE_EUNKNOWNKID);
	assert_int_equal(verify_rc(tok2), JOSE_EUNKNOWNKID);
	assert_string_equal(jose_strerror(JOSE_EUNKNOWNKID), "unknown_kid");
	free(tok);
	free(tok2);
}

/* Microsoft actor tokens name the key by x5t only. */
static void test_jose_finds_key_by_x5t_and_x5t_s256(void **state)
{
	char h[200], *tok;

	snprintf(h, sizeof(h), "{\"typ\":\"JWT\",\"alg\":\"RS256\",\"x5t\":\"%s\"}", k_rsa->x5t);
	tok = sign(h, PAYLOAD, rsa, JOSE_ALG_RS256);
	assert_int_equal(verify_rc(tok), 0);
	free(tok);
	snprintf(h, sizeof(h), "{\"alg\":\"RS256\",\"x5t#S256\":\"%s\",\"kid\":\"other\"}",
		 k_rsa->x5t_s256);
	tok = sign(h, PAYLOAD, rsa, JOSE_ALG_RS256);
	assert_int_equal(verify_rc(tok), 0);
	free(tok);
	/* a kid that is the certificate's x5t (the Azure AD / AD FS habit) */
	snprintf(h, sizeof(h), "{\"alg\":\"RS256\",\"kid\":\"%s\"}", k_rsa->x5t);
	tok = sign(h, PAYLOAD, rsa, JOSE_ALG_RS256);
	assert_int_equal(verify_rc(tok), 0);
	free(tok);
	/* kid names the key, but the x5t contradicts its certificate */
	tok = sign("{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"x5t\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAA\"}",
		   PAYLOAD, rsa, JOSE_ALG_RS256);
	assert_int_equal(verify_rc(tok), JOSE_EUNKNOWNKID);
	free(tok);
}

static void test_jose_rejects_oversized_token(void **state)
{
	size_t n = JOSE_DEFAULT_MAX_TOKEN;
	char *p = malloc(n + 32), *tok;
	struct jose_limits lim = {.max_token = 64 * 1024};
	struct jose_jws j;

	assert_non_null(p);
	strcpy(p, "{\"x\":\"");
	memset(p + 6, 'a', n);
	strcpy(p + 6 + n, "\"}");
	tok = sign("{\"alg\":\"ES256\",\"kid\":\"ec1\"}", p, ec, JOSE_ALG_ES256);
	assert_int_equal(verify_rc(tok), JOSE_ETOOLARGE);
	assert_string_equal(jose_strerror(JOSE_ETOOLARGE), "too_large");
	/* the limit is per call */
	assert_int_equal(jose_verify_keyset(tok, strlen(tok), &lim, &ks, &j), 0);
	jose_jws_free(&j);
	lim.max_token = 100;
	free(tok);
	tok = sign("{\"alg\":\"ES256\",\"kid\":\"ec1\"}", PAYLOAD, ec, JOSE_ALG_ES256);
	assert_int_equal(jose_verify_keyset(tok, strlen(tok), &lim, &ks, &j), JOSE_ETOOLARGE);
	free(tok);
	free(p);
}

/* Replace part idx (0 header, 1 payload, 2 signature) of tok with s. */
static char *with_part(const char *tok, int idx, const char *s)
{
	const char *d1 = strchr(tok, '.'), *d2 = strchr(d1 + 1, '.');
	char *t = malloc(strlen(tok) + strlen(s) + 4);

	assert_non_null(t);
	if (idx == 0)
		sprintf(t, "%s%s", s, d1);
	else if (idx == 1)
		sprintf(t, "%.*s.%s%s", (int)(d1 - tok), tok, s, d2);
	else
		sprintf(t, "%.*s.%s", (int)(d2 - tok), tok, s);
	return t;
}

static void test_jose_rejects_bad_base64url(void **state)
{
	char *tok = sign("{\"alg\":\"ES256\",\"kid\":\"ec1\"}", PAYLOAD, ec, JOSE_ALG_ES256);
	const char *d1 = strchr(tok, '.'), *d2 = strchr(d1 + 1, '.');
	char hdr[128], *t;
	size_t hl = (size_t)(d1 - tok);
	/* each is a modification of one part */
	static const char *suffix[] = {"=", "==", " ", "\n", "%"};

	memcpy(hdr, tok, hl);
	hdr[hl] = '\0';
	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		char h2[160];

		snprintf(h2, sizeof(h2), "%s%s", hdr, suffix[i]);
		t = with_part(tok, 0, h2);
		assert_int_equal(verify_rc(t), JOSE_EBASE64URL);
		free(t);
	}
	/* '+' and '/' are standard base64, not base64url */
	t = strdup(tok);
	t[d2 - tok + 1 + 3] = '+';
	assert_int_equal(verify_rc(t), JOSE_EBASE64URL);
	t[d2 - tok + 1 + 3] = '/';
	assert_int_equal(verify_rc(t), JOSE_EBASE64URL);
	free(t);
	/* padding on the signature; whitespace before it */
	t = malloc(strlen(tok) + 4);
	sprintf(t, "%s==", tok);
	assert_int_equal(verify_rc(t), JOSE_EBASE64URL);
	sprintf(t, "%.*s \n%s", (int)(d2 - tok + 1), tok, d2 + 1);
	assert_int_equal(verify_rc(t), JOSE_EBASE64URL);
	free(t);
	/* non-canonical trailing bits: 64-byte ES256 signature = 86 chars, 2 spare bits */
	t = strdup(tok);
	assert_int_equal(strlen(d2 + 1), 86);
	{
		char *last = t + strlen(t) - 1;
		static const char alpha[] =
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
		size_t v = (size_t)(strchr(alpha, *last) - alpha);

		*last = alpha[v | 1];
		assert_int_equal(verify_rc(t), JOSE_EBASE64URL);
	}
	free(t);
	free(tok);
}

static void test_jose_rejects_duplicate_claims_in_header_and_payload(void **state)
{
	char *t1 =
	    raw_token("{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"alg\":\"none\"}", PAYLOAD, "AAAA");
	char *t2 = raw_token("{\"alg\":\"RS256\",\"kid\":\"rsa1\"}",
			     "{\"iss\":\"a@r\",\"aud\":\"x\",\"iss\":\"evil@r\"}", "AAAA");
	char *t3 = raw_token("{\"alg\":\"RS256\",\"kid\":\"rsa1\"}",
			     "{\"act\":{\"sub\":\"a\",\"sub\":\"b\"}}", "AAAA");

	assert_int_equal(verify_rc(t1), JOSE_EDUPLICATE);
	assert_int_equal(verify_rc(t2), JOSE_EDUPLICATE);
	assert_int_equal(verify_rc(t3), JOSE_EDUPLICATE);
	assert_string_equal(jose_strerror(JOSE_EDUPLICATE), "duplicate_claim");
	free(t1);
	free(t2);
	free(t3);
}

static void test_jose_rejects_any_crit_header(void **state)
{
	json_t *h =
	    json_pack("{s:s,s:s,s:[s],s:i}", "alg", "ES256", "kid", "ec1", "crit", "exp", "exp", 1);
	json_t *p = json_loads(PAYLOAD, 0, NULL);
	struct jose_pkey_signer s = {ec, JOSE_ALG_ES256};
	char *t1 = NULL;
	char *t2 = raw_token("{\"alg\":\"ES256\",\"kid\":\"ec1\",\"crit\":[]}", PAYLOAD, "");
	char *t3 = raw_token("{\"alg\":\"ES256\",\"kid\":\"ec1\",\"b64\":false,\"crit\":[\"b64\"]}",
			     PAYLOAD, "");

	/* jose_sign_compact refuses to make one */
	assert_int_equal(jose_sign_compact(h, p, jose_pkey_signer, &s, &t1, NULL), JOSE_ECRIT);
	assert_null(t1);
	json_decref(h);
	json_decref(p);
	t1 = raw_token("{\"alg\":\"ES256\",\"kid\":\"ec1\",\"crit\":[\"exp\"],\"exp\":1}", PAYLOAD,
		       "");
	assert_int_equal(verify_rc(t1), JOSE_ECRIT);
	assert_int_equal(verify_rc(t2), JOSE_ECRIT);
	assert_int_equal(verify_rc(t3), JOSE_ECRIT);
	assert_string_equal(jose_strerror(JOSE_ECRIT), "crit_unsupported");
	free(t1);
	free(t2);
	free(t3);
}

static void test_jose_rejects_header_or_payload_not_an_object(void **state)
{
	static const char *bad[] = {"[\"alg\",\"RS256\"]",  "\"RS256\"", "1", "null", "", "{",
				    "{\"alg\":\"RS256\"} x"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *t = raw_token(bad[i], PAYLOAD, "AAAA");
		char *t2 = raw_token("{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", bad[i], "AAAA");

		assert_int_equal(verify_rc(t), i == 4 ? JOSE_EMALFORMED : JOSE_EJSON);
		assert_int_equal(verify_rc(t2), JOSE_EJSON);
		free(t);
		free(t2);
	}
}

static void test_jose_rejects_wrong_number_of_dots(void **state)
{
	char *tok = sign("{\"alg\":\"ES256\",\"kid\":\"ec1\"}", PAYLOAD, ec, JOSE_ALG_ES256);
	char *t = malloc(strlen(tok) + 3);
	const char *d2 = strrchr(tok, '.');

	sprintf(t, "%s.", tok);
	assert_int_equal(verify_rc(t), JOSE_EMALFORMED);
	sprintf(t, "%.*s.%s", (int)(d2 - tok), tok, d2);
	assert_int_equal(verify_rc(t), JOSE_EMALFORMED);
	sprintf(t, "%.*s", (int)(d2 - tok), tok);
	assert_int_equal(verify_rc(t), JOSE_EMALFORMED);
	assert_int_equal(verify_rc("abc"), JOSE_EMALFORMED);
	assert_int_equal(verify_rc(".."), JOSE_EMALFORMED);
	assert_int_equal(verify_rc(""), JOSE_EMALFORMED);
	/* JWE-like five parts */
	assert_int_equal(verify_rc("a.b.c.d.e"), JOSE_EMALFORMED);
	free(t);
	free(tok);
}

static void test_jose_rejects_empty_signature_with_rs256(void **state)
{
	char *tok = sign("{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", PAYLOAD, rsa, JOSE_ALG_RS256);

	*(strrchr(tok, '.') + 1) = '\0';
	assert_int_equal(verify_rc(tok), JOSE_EBADSIG);
	assert_string_equal(jose_strerror(JOSE_EBADSIG), "bad_signature");
	free(tok);
}

static void test_jose_rejects_es256_signature_of_wrong_length(void **state)
{
	char *tok = sign("{\"alg\":\"ES256\",\"kid\":\"ec1\"}", PAYLOAD, ec, JOSE_ALG_ES256);
	char *d2 = strrchr(tok, '.'), sig[200];
	uint8_t raw[80];
	size_t n;
	char *t;

	assert_int_equal(b64_url_decode(d2 + 1, strlen(d2 + 1), raw, sizeof(raw), &n), 0);
	assert_int_equal(n, 64);
	raw[64] = 0;
	assert_true(b64_url_encode(raw, 65, sig, sizeof(sig)) > 0);
	t = with_part(tok, 2, sig);
	assert_int_equal(verify_rc(t), JOSE_EBADSIG);
	free(t);
	assert_true(b64_url_encode(raw, 63, sig, sizeof(sig)) > 0);
	t = with_part(tok, 2, sig);
	assert_int_equal(verify_rc(t), JOSE_EBADSIG);
	free(t);
	assert_int_equal(verify_rc(tok), 0);
	free(tok);
}

static void test_jose_rejects_deep_nesting(void **state)
{
	char p[200] = "{\"a\":", *t;
	struct jose_limits lim = {.max_depth = 64};
	struct jose_jws j;

	for (int i = 0; i < 20; i++)
		strcat(p, "[");
	for (int i = 0; i < 20; i++)
		strcat(p, "]");
	strcat(p, "}");
	t = raw_token("{\"alg\":\"ES256\",\"kid\":\"ec1\"}", p, "");
	assert_int_equal(verify_rc(t), JOSE_ETOODEEP);
	/* with a higher limit it parses, then fails on the signature */
	assert_int_equal(jose_verify_keyset(t, strlen(t), &lim, &ks, &j), JOSE_EBADSIG);
	free(t);
	/* brackets inside strings do not count */
	t = raw_token("{\"alg\":\"ES256\",\"kid\":\"ec1\",\"x\":\"[[[[[[[[[[[[[[[[[[[[[[[[\\\"\"}",
		      "{}", "");
	assert_int_equal(verify_rc(t), JOSE_EBADSIG);
	free(t);
}

static void test_jose_rejects_header_members_of_wrong_type(void **state)
{
	char *t1 = raw_token("{\"alg\":256,\"kid\":\"ec1\"}", PAYLOAD, "");
	char *t2 = raw_token("{\"alg\":\"ES256\",\"kid\":1}", PAYLOAD, "");
	char *t3 = raw_token("{\"kid\":\"ec1\"}", PAYLOAD, "");
	char *t4 = raw_token("{\"alg\":\"es256\",\"kid\":\"ec1\"}", PAYLOAD, "");

	assert_int_equal(verify_rc(t1), JOSE_EHEADER);
	assert_int_equal(verify_rc(t2), JOSE_EHEADER);
	assert_int_equal(verify_rc(t3), JOSE_EALG);
	assert_int_equal(verify_rc(t4), JOSE_EALG);
	free(t1);
	free(t2);
	free(t3);
	free(t4);
}

static void test_jose_unsigned_outer_parses_only_alg_none_with_empty_signature(void **state)
{
	json_t *p = json_loads(PAYLOAD, 0, NULL);
	struct jose_jws j;
	char *tok, *t;
	size_t len;

	assert_int_equal(jose_unsigned_compact(NULL, p, &tok, &len), 0);
	assert_int_equal(len, strlen(tok));
	assert_int_equal(tok[len - 1], '.');
	assert_int_equal(jose_parse_unsigned_outer(tok, len, NULL, &j), 0);
	assert_string_equal(json_string_value(json_object_get(j.payload, "iss")), "a@r");
	assert_null(j.key);
	jose_jws_free(&j);
	/* and the normal verify never takes it */
	assert_int_equal(verify_rc(tok), JOSE_EALG_NONE);
	/* a signature part is refused */
	t = malloc(len + 8);
	sprintf(t, "%sAAAA", tok);
	assert_int_equal(jose_parse_unsigned_outer(t, strlen(t), NULL, &j), JOSE_EMALFORMED);
	free(t);
	free(tok);
	/* a signed token is not an unsigned one */
	tok = sign("{\"alg\":\"ES256\",\"kid\":\"ec1\"}", PAYLOAD, ec, JOSE_ALG_ES256);
	assert_int_equal(jose_parse_unsigned_outer(tok, strlen(tok), NULL, &j), JOSE_EALG);
	free(tok);
	/* the same parsing rules apply */
	tok = raw_token("{\"alg\":\"none\"}", "{\"iss\":\"a\",\"iss\":\"b\"}", "");
	assert_int_equal(jose_parse_unsigned_outer(tok, strlen(tok), NULL, &j), JOSE_EDUPLICATE);
	free(tok);
	/* jose_sign_compact will not make an unsigned token */
	{
		json_t *h = json_pack("{s:s}", "alg", "none");
		struct jose_pkey_signer s = {ec, JOSE_ALG_ES256};

		assert_int_equal(jose_sign_compact(h, p, jose_pkey_signer, &s, &tok, NULL),
				 JOSE_EALG_NONE);
		assert_null(tok);
		json_decref(h);
	}
	json_decref(p);
}

static void test_jose_key_refuses_weak_rsa_and_other_curves(void **state)
{
	struct jose_key *k = (struct jose_key *)1;

	assert_int_equal(jose_key_from_pkey(rsa_small, NULL, 0, JOSE_ALG_RS256, NULL, &k),
			 JOSE_EWEAKKEY);
	assert_null(k);
	assert_int_equal(jose_key_from_pkey(ec384, NULL, 0, JOSE_ALG_UNKNOWN, NULL, &k),
			 JOSE_EWEAKKEY);
	/* an algorithm that does not fit the key */
	assert_int_equal(jose_key_from_pkey(ec, NULL, 0, JOSE_ALG_RS256, NULL, &k), JOSE_EALG);
	assert_int_equal(jose_key_from_pkey(rsa, NULL, 0, JOSE_ALG_EDDSA, NULL, &k), JOSE_EALG);
}

static void test_jose_jwk_export_and_import_round_trip(void **state)
{
	struct jose_key *keys[] = {k_rsa, k_ps, k_ec, k_ed};

	for (size_t i = 0; i < 4; i++) {
		json_t *jwk;
		struct jose_key *back;
		char t1[44], t2[44];

		assert_int_equal(jose_key_to_jwk(keys[i], &jwk), 0);
		assert_string_equal(json_string_value(json_object_get(jwk, "use")), "sig");
		assert_string_equal(json_string_value(json_object_get(jwk, "alg")),
				    jose_alg_name(keys[i]->alg));
		assert_int_equal(jose_key_from_jwk(jwk, &back), 0);
		assert_int_equal(EVP_PKEY_eq(back->pkey, keys[i]->pkey), 1);
		assert_int_equal(back->alg, keys[i]->alg);
		assert_string_equal(back->kid, keys[i]->kid);
		assert_string_equal(back->x5t, keys[i]->x5t);
		assert_string_equal(back->x5t_s256, keys[i]->x5t_s256);
		assert_int_equal(jose_key_thumbprint(back, t1), 0);
		assert_int_equal(jose_key_thumbprint(keys[i], t2), 0);
		assert_string_equal(t1, t2);
		jose_key_free(back);
		json_decref(jwk);
	}
}

static void test_jose_rsa_jwk_has_x5c_x5t_and_x5t_s256(void **state)
{
	json_t *jwk;
	const char *x5c;
	uint8_t der[4096], h[32];
	size_t n;
	char x5t[32];

	assert_int_equal(jose_key_to_jwk(k_rsa, &jwk), 0);
	x5c = json_string_value(json_array_get(json_object_get(jwk, "x5c"), 0));
	assert_non_null(x5c);
	assert_int_equal(b64_std_decode(x5c, strlen(x5c), der, sizeof(der), &n), 0);
	assert_int_equal(EVP_Digest(der, n, h, NULL, EVP_sha1(), NULL), 1);
	assert_int_equal(b64_url_encode(h, 20, x5t, sizeof(x5t)), 27);
	assert_string_equal(json_string_value(json_object_get(jwk, "x5t")), x5t);
	assert_non_null(json_object_get(jwk, "x5t#S256"));
	assert_string_equal(json_string_value(json_object_get(jwk, "kty")), "RSA");
	assert_string_equal(json_string_value(json_object_get(jwk, "kid")), "rsa1");
	/* an x5t that contradicts x5c is refused */
	json_object_set_new(jwk, "x5t", json_string("AAAAAAAAAAAAAAAAAAAAAAAAAAA"));
	{
		struct jose_key *k;

		assert_int_equal(jose_key_from_jwk(jwk, &k), JOSE_EKEY);
		/* and an x5c whose key is another key */
		json_object_del(jwk, "x5t");
		json_object_set_new(jwk, "n", json_string("AQAB"));
		assert_int_not_equal(jose_key_from_jwk(jwk, &k), 0);
	}
	json_decref(jwk);
}

static void test_jose_jwk_refuses_private_members_and_bad_points(void **state)
{
	json_t *jwk;
	struct jose_key *k;

	assert_int_equal(jose_key_to_jwk(k_ec, &jwk), 0);
	json_object_set_new(jwk, "d", json_string("AAAA"));
	assert_int_equal(jose_key_from_jwk(jwk, &k), JOSE_EKEY);
	json_object_del(jwk, "d");
	/* y changed: the point is no longer on the curve */
	json_object_set_new(jwk, "y", json_string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
	assert_int_equal(jose_key_from_jwk(jwk, &k), JOSE_EKEY);
	json_decref(jwk);
	/* alg of another key type; use "enc"; unknown kty */
	assert_int_equal(jose_key_to_jwk(k_rsa, &jwk), 0);
	json_object_set_new(jwk, "alg", json_string("ES256"));
	assert_int_equal(jose_key_from_jwk(jwk, &k), JOSE_EALG);
	json_object_set_new(jwk, "alg", json_string("HS256"));
	assert_int_equal(jose_key_from_jwk(jwk, &k), JOSE_EALG);
	json_object_set_new(jwk, "alg", json_string("RS256"));
	json_object_set_new(jwk, "use", json_string("enc"));
	assert_int_equal(jose_key_from_jwk(jwk, &k), JOSE_EKEY);
	json_decref(jwk);
	jwk = json_pack("{s:s,s:s}", "kty", "oct", "k", "c2VjcmV0");
	assert_int_equal(jose_key_from_jwk(jwk, &k), JOSE_EKEY);
	json_decref(jwk);
}

static void test_jose_jwks_skips_unusable_keys_and_refuses_broken_ones(void **state)
{
	json_t *doc = json_pack("{s:[]}", "keys"), *jwk;
	struct jose_keyset set;
	size_t skipped;
	char *txt;

	for (int i = 0; i < 4; i++) {
		assert_int_equal(jose_key_to_jwk(ks.keys[i], &jwk), 0);
		json_array_append_new(json_object_get(doc, "keys"), jwk);
	}
	json_array_append_new(json_object_get(doc, "keys"),
			      json_pack("{s:s,s:s}", "kty", "oct", "k", "c2VjcmV0"));
	json_array_append_new(
	    json_object_get(doc, "keys"),
	    json_pack("{s:s,s:s,s:s,s:s}", "kty", "EC", "crv", "P-384", "x", "AA", "y", "AA"));
	/* an encryption key announced by key_ops, not by use */
	assert_int_equal(jose_key_to_jwk(k_ec, &jwk), 0);
	json_object_del(jwk, "use");
	json_object_set_new(jwk, "key_ops", json_pack("[s]", "encrypt"));
	json_array_append_new(json_object_get(doc, "keys"), jwk);
	txt = json_dumps(doc, 0);
	assert_int_equal(jose_keyset_from_jwks(txt, strlen(txt), 0, &set, &skipped), 0);
	assert_int_equal(set.n, 4);
	assert_int_equal(skipped, 3);
	assert_non_null(jose_keyset_find(&set, "ec1", NULL, NULL));
	assert_non_null(jose_keyset_find(&set, NULL, k_rsa->x5t, NULL));
	assert_null(jose_keyset_find(&set, "zz", NULL, NULL));
	jose_keyset_clear(&set);
	assert_int_equal(jose_keyset_from_jwks(txt, strlen(txt), 100, &set, NULL), JOSE_ETOOLARGE);
	free(txt);
	/* a broken RSA key fails the whole document */
	json_array_append_new(json_object_get(doc, "keys"),
			      json_pack("{s:s,s:s,s:s}", "kty", "RSA", "n", "!!", "e", "AQAB"));
	txt = json_dumps(doc, 0);
	assert_int_equal(jose_keyset_from_jwks(txt, strlen(txt), 0, &set, NULL), JOSE_EKEY);
	assert_int_equal(set.n, 0);
	free(txt);
	json_decref(doc);
	assert_int_equal(jose_keyset_from_jwks("{\"keys\":1}", 10, 0, &set, NULL), JOSE_EJSON);
	assert_int_equal(jose_keyset_from_jwks("{\"keys\":[],\"keys\":[]}", 21, 0, &set, NULL),
			 JOSE_EDUPLICATE);
}

static void test_jose_key_from_pem_certificate_and_public_key(void **state)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *pem;
	long len;
	struct jose_key *k;
	X509 *x;
	const unsigned char *p = k_rsa->cert_der;

	x = d2i_X509(NULL, &p, (long)k_rsa->cert_der_len);
	assert_non_null(x);
	assert_true(PEM_write_bio_X509(b, x));
	len = BIO_get_mem_data(b, &pem);
	assert_int_equal(jose_key_from_cert_pem(pem, (size_t)len, JOSE_ALG_UNKNOWN, NULL, &k), 0);
	assert_string_equal(k->x5t, k_rsa->x5t);
	assert_int_equal(k->alg, JOSE_ALG_RS256);
	assert_int_equal(strlen(k->kid), 43); /* RFC 7638 thumbprint by default */
	jose_key_free(k);
	X509_free(x);
	BIO_free(b);
	b = BIO_new(BIO_s_mem());
	assert_true(PEM_write_bio_PUBKEY(b, ed));
	len = BIO_get_mem_data(b, &pem);
	assert_int_equal(jose_key_from_pubkey_pem(pem, (size_t)len, JOSE_ALG_UNKNOWN, "e", &k), 0);
	assert_int_equal(k->alg, JOSE_ALG_EDDSA);
	assert_string_equal(k->x5t, "");
	jose_key_free(k);
	assert_int_equal(jose_key_from_pubkey_pem("junk", 4, JOSE_ALG_UNKNOWN, NULL, &k),
			 JOSE_EKEY);
	assert_int_equal(jose_key_from_cert_pem(pem, (size_t)len, JOSE_ALG_UNKNOWN, NULL, &k),
			 JOSE_EKEY);
	BIO_free(b);
}

static struct jose_key *lookup_fail(void *arg, const struct jose_jws *jws, int *err)
{
	/* the unverified payload is readable for choosing a key set */
	assert_non_null(json_object_get(jws->payload, "iss"));
	*err = JOSE_EINTERNAL;
	return NULL;
}

static void test_jose_verify_reports_the_lookups_error(void **state)
{
	char *tok = sign("{\"alg\":\"ES256\",\"kid\":\"ec1\"}", PAYLOAD, ec, JOSE_ALG_ES256);
	struct jose_jws j;

	assert_int_equal(jose_verify(tok, strlen(tok), NULL, lookup_fail, NULL, &j),
			 JOSE_EINTERNAL);
	assert_null(j.header);
	free(tok);
}

static void test_jose_claims_strings_and_numeric_dates(void **state)
{
	json_t *p = json_loads("{\"s\":\"x\",\"i\":1700000000,\"r\":1700000000.75,"
			       "\"ms\":\"1325376000\",\"neg\":-1,\"sneg\":\"-1\",\"sp\":\" 1\","
			       "\"exp\":\"1e9\",\"long\":\"1234567890123\",\"b\":true,"
			       "\"e\":\"\"}",
			       0, NULL);
	const char *s;
	int64_t t;

	assert_non_null(p);
	assert_int_equal(jose_claim_str(p, "s", &s), 0);
	assert_string_equal(s, "x");
	assert_int_equal(jose_claim_str(p, "i", &s), JOSE_ECLAIM_TYPE);
	assert_int_equal(jose_claim_str(p, "zz", &s), JOSE_ECLAIM_MISSING);
	assert_int_equal(jose_claim_time(p, "i", &t), 0);
	assert_int_equal(t, 1700000000);
	assert_int_equal(jose_claim_time(p, "r", &t), 0);
	assert_int_equal(t, 1700000000);
	assert_int_equal(jose_claim_time(p, "ms", &t), 0);
	assert_int_equal(t, 1325376000);
	static const char *bad[] = {"neg", "sneg", "sp", "exp", "long", "b", "e", "s"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(jose_claim_time(p, bad[i], &t), JOSE_ECLAIM_TYPE);
	assert_int_equal(jose_claim_time(p, "zz", &t), JOSE_ECLAIM_MISSING);
	json_decref(p);
}

static void test_jose_sign_with_pkey_checks_key_type_and_room(void **state)
{
	uint8_t sig[JOSE_SIG_MAX];
	size_t n = sizeof(sig);

	assert_int_equal(jose_sign_with_pkey(ec, JOSE_ALG_RS256, (const uint8_t *)"x", 1, sig, &n),
			 JOSE_EALG);
	assert_int_equal(n, 0);
	n = sizeof(sig);
	assert_int_equal(jose_sign_with_pkey(ed, JOSE_ALG_ES256, (const uint8_t *)"x", 1, sig, &n),
			 JOSE_EALG);
	n = 255; /* RSA 2048 needs 256 */
	assert_int_equal(jose_sign_with_pkey(rsa, JOSE_ALG_RS256, (const uint8_t *)"x", 1, sig, &n),
			 JOSE_EINTERNAL);
	n = 63;
	assert_int_equal(jose_sign_with_pkey(ec, JOSE_ALG_ES256, (const uint8_t *)"x", 1, sig, &n),
			 JOSE_EINTERNAL);
	n = sizeof(sig);
	assert_int_equal(jose_sign_with_pkey(ec, JOSE_ALG_ES256, (const uint8_t *)"x", 1, sig, &n),
			 0);
	assert_int_equal(n, 64);
	assert_int_equal(jose_verify_raw(k_ec, (const uint8_t *)"x", 1, sig, n), 0);
	assert_int_equal(jose_verify_raw(k_ec, (const uint8_t *)"y", 1, sig, n), JOSE_EBADSIG);
}

/* PROTOCOLS.md §6: the actor token header, member order as given, compact. */
static void test_jose_sign_writes_the_actor_token_header_as_given(void **state)
{
	json_t *h = json_pack("{s:s,s:s,s:s}", "typ", "JWT", "alg", "RS256", "x5t", k_rsa->x5t);
	json_t *p = json_pack("{s:s,s:s}", "aud", "b/h@r", "trustedfordelegation", "true");
	struct jose_pkey_signer s = {rsa, JOSE_ALG_RS256};
	char *tok, want[128], got[128];
	uint8_t raw[128];
	size_t n, len;

	assert_int_equal(jose_sign_compact(h, p, jose_pkey_signer, &s, &tok, &len), 0);
	assert_int_equal(len, strlen(tok));
	assert_int_equal(
	    b64_url_decode(tok, (size_t)(strchr(tok, '.') - tok), raw, sizeof(raw), &n), 0);
	memcpy(got, raw, n);
	got[n] = '\0';
	snprintf(want, sizeof(want), "{\"typ\":\"JWT\",\"alg\":\"RS256\",\"x5t\":\"%s\"}",
		 k_rsa->x5t);
	assert_string_equal(got, want);
	assert_int_equal(verify_rc(tok), 0);
	free(tok);
	json_decref(h);
	json_decref(p);
}

/* part (0 header, 1 payload) of tok, base64url-decoded, as a string */
static char *token_part(const char *tok, int part)
{
	const char *a = tok, *b;
	size_t n, cap;
	char *out;

	if (part)
		a = strchr(tok, '.') + 1;
	b = strchr(a, '.');
	cap = (size_t)(b - a) + 1;
	out = malloc(cap);
	assert_non_null(out);
	assert_int_equal(b64_url_decode(a, (size_t)(b - a), (uint8_t *)out, cap, &n), 0);
	out[n] = '\0';
	return out;
}

/*
 * The signing input's JSON is json_dumps' JSON_COMPACT text byte for byte,
 * whether jose writes a flat object itself or leaves it to json_dumps:
 * plain strings, integers at both ends, true/false/null, strings that need
 * escapes (quote, backslash, control, non-ASCII), nested values, a real,
 * an empty object, a key that needs an escape, and a payload too long for
 * the fast path's buffer.
 */
static void test_jose_signing_input_is_json_dumps_compact_text(void **state)
{
	struct jose_pkey_signer s = {ec, JOSE_ALG_ES256};
	char *big = malloc(5000);
	json_t *payloads[12];
	size_t np = 0;

	assert_non_null(big);
	memset(big, 'x', 4999);
	big[4999] = '\0';
	payloads[np++] = json_pack("{s:s,s:s,s:I,s:I,s:s}", "iss", "https://a.example/x?y=1", "sub",
				   "p1-client", "iat", (json_int_t)1800000000, "n", (json_int_t)-7,
				   "scope", "users.read presence.read");
	payloads[np++] =
	    json_pack("{s:I,s:I}", "max", (json_int_t)INT64_MAX, "min", (json_int_t)INT64_MIN);
	payloads[np++] = json_pack("{s:b,s:b,s:n,s:s}", "t", 1, "f", 0, "z", "e", "");
	payloads[np++] = json_pack("{s:s}", "q", "a\"b");
	payloads[np++] = json_pack("{s:s}", "b", "back\\slash/");
	payloads[np++] = json_pack("{s:s}", "c", "line\nbreak\t");
	payloads[np++] = json_pack("{s:s}", "u", "caf\xc3\xa9");
	payloads[np++] = json_pack("{s:{s:s},s:[s,i]}", "act", "sub", "x", "arr", "a", 1);
	payloads[np++] = json_pack("{s:f}", "r", 1.5);
	payloads[np++] = json_object();
	payloads[np++] = json_pack("{s:s}", "k\"ey", "v");
	payloads[np++] = json_pack("{s:s}", "big", big);
	for (size_t i = 0; i < np; i++) {
		json_t *h = json_pack("{s:s,s:s}", "alg", "ES256", "kid", "k-ec");
		char *tok, *got, *want;

		assert_non_null(payloads[i]);
		assert_int_equal(
		    jose_sign_compact(h, payloads[i], jose_pkey_signer, &s, &tok, NULL), 0);
		got = token_part(tok, 1);
		want = json_dumps(payloads[i], JSON_COMPACT);
		assert_string_equal(got, want);
		free(got);
		free(want);
		got = token_part(tok, 0);
		want = json_dumps(h, JSON_COMPACT);
		assert_string_equal(got, want);
		free(got);
		free(want);
		free(tok);
		json_decref(h);
		json_decref(payloads[i]);
	}
	free(big);
}

static void test_jose_strerror_names_are_stable_and_total(void **state)
{
	assert_string_equal(jose_strerror(0), "ok");
	assert_string_equal(jose_strerror(JOSE_EMALFORMED), "malformed");
	assert_string_equal(jose_strerror(JOSE_EBASE64URL), "bad_base64url");
	assert_string_equal(jose_strerror(JOSE_EINTERNAL), "internal");
	/* one distinct name per error: they become metric labels */
	for (int e = 0; e > -JOSE_ERR_COUNT; e--) {
		assert_string_not_equal(jose_strerror(e), "unknown_error");
		for (int f = 0; f > e; f--)
			assert_string_not_equal(jose_strerror(e), jose_strerror(f));
	}
	assert_string_equal(jose_strerror(-1000), "unknown_error");
	assert_string_equal(jose_strerror(5), "unknown_error");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_jose_signs_and_verifies_each_pinned_algorithm),
	    cmocka_unit_test(test_jose_verify_refuses_alg_none_alone),
	    cmocka_unit_test(test_jose_rejects_rs256_key_presented_as_hs256_secret),
	    cmocka_unit_test(test_jose_rejects_header_alg_other_than_the_keys),
	    cmocka_unit_test(test_jose_rejects_tampered_payload),
	    cmocka_unit_test(test_jose_rejects_token_without_kid_or_x5t),
	    cmocka_unit_test(test_jose_rejects_unknown_kid_and_unknown_x5t),
	    cmocka_unit_test(test_jose_finds_key_by_x5t_and_x5t_s256),
	    cmocka_unit_test(test_jose_rejects_oversized_token),
	    cmocka_unit_test(test_jose_rejects_bad_base64url),
	    cmocka_unit_test(test_jose_rejects_duplicate_claims_in_header_and_payload),
	    cmocka_unit_test(test_jose_rejects_any_crit_header),
	    cmocka_unit_test(test_jose_rejects_header_or_payload_not_an_object),
	    cmocka_unit_test(test_jose_rejects_wrong_number_of_dots),
	    cmocka_unit_test(test_jose_rejects_empty_signature_with_rs256),
	    cmocka_unit_test(test_jose_rejects_es256_signature_of_wrong_length),
	    cmocka_unit_test(test_jose_rejects_deep_nesting),
	    cmocka_unit_test(test_jose_rejects_header_members_of_wrong_type),
	    cmocka_unit_test(test_jose_unsigned_outer_parses_only_alg_none_with_empty_signature),
	    cmocka_unit_test(test_jose_key_refuses_weak_rsa_and_other_curves),
	    cmocka_unit_test(test_jose_jwk_export_and_import_round_trip),
	    cmocka_unit_test(test_jose_rsa_jwk_has_x5c_x5t_and_x5t_s256),
	    cmocka_unit_test(test_jose_jwk_refuses_private_members_and_bad_points),
	    cmocka_unit_test(test_jose_jwks_skips_unusable_keys_and_refuses_broken_ones),
	    cmocka_unit_test(test_jose_key_from_pem_certificate_and_public_key),
	    cmocka_unit_test(test_jose_verify_reports_the_lookups_error),
	    cmocka_unit_test(test_jose_claims_strings_and_numeric_dates),
	    cmocka_unit_test(test_jose_sign_with_pkey_checks_key_type_and_room),
	    cmocka_unit_test(test_jose_sign_writes_the_actor_token_header_as_given),
	    cmocka_unit_test(test_jose_signing_input_is_json_dumps_compact_text),
	    cmocka_unit_test(test_jose_strerror_names_are_stable_and_total),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
