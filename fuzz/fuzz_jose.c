/*
 * libFuzzer target for the JOSE layer (oauth/jose) and strict base64.
 * One input is tried as: a compact JWS verified against fixed keys (ES256,
 * RS256, EdDSA; with JWT and raw payloads), an unsigned outer token, a JWKS
 * document, and base64/base64url text. Checked promises: every error has a
 * name; a success is a real one (the signature verifies again by itself, the
 * key's pinned alg is the header's); an unsigned token parses only as
 * "header.payload."; a decoded base64 string re-encodes to exactly the input
 * (one encoding per byte string); nothing leaks or reads out of bounds (the
 * input sits in an exact-size buffer). And, for the ES256 verification with
 * a table (jose_p256.c): the input's first 96 bytes as digest and r||s get
 * the same verdict from it as from OpenSSL's EVP_PKEY_verify.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>

#include "core/b64.h"
#include "oauth/jose.h"
#include "oauth/jose_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct jose_keyset ks;
static struct jose_p256 *table; /* of ks.keys[0], the ES256 key */
static int ready;

static const char *const jwks =
    "{\"keys\":["
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"kid-ec-sign\","
    "\"x\":\"04N0xi21hshyvBp7I167sbE_bXqyqkAPfefdklMO7wY\","
    "\"y\":\"UI8exy-C06a7DUnjIdENkxeFtHM4-l_41LqEw9nVgmw\"},"
    "{\"kty\":\"RSA\",\"kid\":\"kid-rsa-sign\",\"e\":\"AQAB\","
    "\"n\":\"kqGboBfAWttWPCA-0cGRgsY6SaYoIARt0B_PkaEcIq9HPYNdu9n6UuWHuuTHrjF_ZoQW97r5HaAorNvrMEG"
    "TGdxCHZdEtkHvNVVmrtxTBLiQCbCozXhFoIrVcr3qUBrdGnNn_M3jJi7Wg7p_-x62nS5gNG875oyheRkutHsQXikFZ"
    "wsN3q_TsPNOVlCiHy8mxzaFTUQGm-X8UYexFyAivlDSjgDJLAZSWfxd7k9Gxuwa3AUfQqQcVcegmgKGCaErQ3qQbh1"
    "x7WB6iopE3_-GZ8HMAVtR9AmrVscqYsnjhaCehfAI0iKKs8zXr8tISc0ORbaalrkk03H1ZrsEnDKEWQ\"},"
    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"ed\","
    "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}";

static void setup(void)
{
	if (ready)
		return;
	if (jose_keyset_from_jwks(jwks, strlen(jwks), 0, &ks, NULL) != 0 || ks.n != 3 ||
	    ks.keys[0]->alg != JOSE_ALG_ES256 || jose_p256_new(ks.keys[0]->pkey, &table) != 0)
		abort();
	ready = 1;
}

static void check_verified(const char *tok, size_t len, const struct jose_jws *j, bool raw)
{
	const uint8_t *sig;
	uint8_t buf[JOSE_SIG_MAX];
	size_t n;

	if (!j->header || !j->key || (!raw && !j->payload) || j->key->alg != j->alg)
		abort();
	if (j->signing_input_len >= len || tok[j->signing_input_len] != '.')
		abort();
	sig = (const uint8_t *)tok + j->signing_input_len + 1;
	if (b64_url_decode((const char *)sig, len - j->signing_input_len - 1, buf, sizeof(buf),
			   &n) ||
	    jose_verify_raw(j->key, (const uint8_t *)tok, j->signing_input_len, buf, n) != 0)
		abort();
	if (j->payload) {
		const char *s;
		int64_t t;

		(void)jose_claim_str(j->payload, "iss", &s);
		(void)jose_claim_time(j->payload, "exp", &t);
	}
}

static void try_jws(const char *tok, size_t len)
{
	struct jose_limits raw = {.raw_payload = true};
	struct jose_jws j;
	int rc;

	rc = jose_verify_keyset(tok, len, NULL, &ks, &j);
	if (rc > 0 || rc <= -JOSE_ERR_COUNT)
		abort();
	if (rc == 0)
		check_verified(tok, len, &j, false);
	else if (j.header || j.payload || j.key)
		abort();
	jose_jws_free(&j);
	rc = jose_verify_keyset(tok, len, &raw, &ks, &j);
	if (rc == 0)
		check_verified(tok, len, &j, true);
	jose_jws_free(&j);
	rc = jose_parse_unsigned_outer(tok, len, NULL, &j);
	if (rc == 0) {
		const char *alg = json_string_value(json_object_get(j.header, "alg"));

		if (!alg || strcmp(alg, "none") || j.key || !j.payload || tok[len - 1] != '.' ||
		    j.signing_input_len != len - 1)
			abort();
	}
	jose_jws_free(&j);
}

/* data[0..32) a digest, data[32..96) r||s: the table's verdict is OpenSSL's. */
static void try_p256(const uint8_t *data)
{
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(data + 32, 32, NULL), *s = BN_bin2bn(data + 64, 32, NULL);
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, ks.keys[0]->pkey, NULL);
	unsigned char *der = NULL;
	int len, theirs, ours;

	if (!es || !r || !s || !c || ECDSA_SIG_set0(es, r, s) != 1)
		abort();
	len = i2d_ECDSA_SIG(es, &der);
	if (len <= 0 || EVP_PKEY_verify_init(c) != 1)
		abort();
	theirs = EVP_PKEY_verify(c, der, (size_t)len, data, 32) == 1;
	ours = jose_p256_verify(table, data, data + 32);
	if (ours != theirs)
		abort();
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	EVP_PKEY_CTX_free(c);
}

/* A decoded string must re-encode to the very input. */
static void try_b64(const char *s, size_t len)
{
	size_t cap = b64_decoded_max(len), n;
	uint8_t *bin = malloc(cap ? cap : 1);
	char *back = malloc(len + 1);

	if (!bin || !back)
		abort();
	if (b64_url_decode(s, len, bin, cap, &n) == 0)
		if (b64_url_encode(bin, n, back, len + 1) != (long)len || memcmp(back, s, len))
			abort();
	if (b64_std_decode(s, len, bin, cap, &n) == 0)
		if (b64_std_encode(bin, n, back, len + 1) != (long)len || memcmp(back, s, len))
			abort();
	free(bin);
	free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);
	struct jose_keyset set;

	if (!buf)
		return 0;
	setup();
	if (size)
		memcpy(buf, data, size);
	try_jws(buf, size);
	if (jose_keyset_from_jwks(buf, size, 0, &set, NULL) == 0) {
		for (size_t i = 0; i < set.n; i++) {
			json_t *jwk;

			if (jose_key_to_jwk(set.keys[i], &jwk) != 0)
				abort();
			json_decref(jwk);
		}
		jose_keyset_clear(&set);
	}
	if (size <= 4096)
		try_b64(buf, size);
	if (size >= 96)
		try_p256(data);
	free(buf);
	return 0;
}
