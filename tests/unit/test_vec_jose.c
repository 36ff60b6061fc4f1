/*
 * Published vectors against oauth/jose, from tests/vectors/jose (see the
 * README there for where each came from): RFC 7515 Appendix A.1, A.2, A.3,
 * A.5; RFC 8037 Appendix A; RFC 7638 §3.1; and Wycheproof subsets (JWS,
 * ECDSA P-256 P1363, RSA 2048 PKCS#1 SHA-256, Ed25519). Every committed case
 * is run and compared with its expected result.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/param_build.h>

#include "core/b64.h"
#include "oauth/jose.h"

static json_t *load(const char *name)
{
	const char *top = getenv("RTC_TOP");
	char path[1024];
	json_error_t err;
	json_t *j;

	snprintf(path, sizeof(path), "%s/tests/vectors/jose/%s", top ? top : ".", name);
	j = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
	if (!j)
		fail_msg("cannot load %s: %s (line %d)", path, err.text, err.line);
	return j;
}

static const char *str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	if (!s)
		fail_msg("missing string member %s", k);
	return s;
}

/* Hex to bytes into a malloc'd buffer (never NULL). */
static uint8_t *unhex(const char *h, size_t *n)
{
	size_t len = strlen(h);
	uint8_t *b = malloc(len / 2 + 1);

	assert_non_null(b);
	assert_int_equal(len % 2, 0);
	for (size_t i = 0; i < len / 2; i++) {
		unsigned v;

		assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
		b[i] = (uint8_t)v;
	}
	*n = len / 2;
	return b;
}

/* A base64url JWK member as a BIGNUM. */
static BIGNUM *jwk_bn(const json_t *jwk, const char *k)
{
	const char *s = str(jwk, k);
	uint8_t buf[1024];
	size_t n;

	assert_int_equal(b64_url_decode(s, strlen(s), buf, sizeof(buf), &n), 0);
	return BN_bin2bn(buf, (int)n, NULL);
}

/* Private keys of the RFC examples; the module itself never imports one. */
static EVP_PKEY *private_rsa(const json_t *jwk)
{
	static const char *const m[][2] = {
	    {"n", OSSL_PKEY_PARAM_RSA_N},	   {"e", OSSL_PKEY_PARAM_RSA_E},
	    {"d", OSSL_PKEY_PARAM_RSA_D},	   {"p", OSSL_PKEY_PARAM_RSA_FACTOR1},
	    {"q", OSSL_PKEY_PARAM_RSA_FACTOR2},	   {"dp", OSSL_PKEY_PARAM_RSA_EXPONENT1},
	    {"dq", OSSL_PKEY_PARAM_RSA_EXPONENT2}, {"qi", OSSL_PKEY_PARAM_RSA_COEFFICIENT1},
	};
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	BIGNUM *bn[8];
	OSSL_PARAM *p;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	EVP_PKEY *pkey = NULL;

	for (int i = 0; i < 8; i++) {
		bn[i] = jwk_bn(jwk, m[i][0]);
		assert_true(OSSL_PARAM_BLD_push_BN(bld, m[i][1], bn[i]));
	}
	p = OSSL_PARAM_BLD_to_param(bld);
	assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
	assert_int_equal(EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_KEYPAIR, p), 1);
	OSSL_PARAM_free(p);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	for (int i = 0; i < 8; i++)
		BN_free(bn[i]);
	return pkey;
}

static EVP_PKEY *private_ec(const json_t *jwk)
{
	uint8_t pt[65], tmp[64];
	size_t n;
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	BIGNUM *d = jwk_bn(jwk, "d");
	OSSL_PARAM *p;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *pkey = NULL;

	pt[0] = 4;
	assert_int_equal(b64_url_decode(str(jwk, "x"), 43, tmp, sizeof(tmp), &n), 0);
	memcpy(pt + 1, tmp, 32);
	assert_int_equal(b64_url_decode(str(jwk, "y"), 43, tmp, sizeof(tmp), &n), 0);
	memcpy(pt + 33, tmp, 32);
	assert_true(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0));
	assert_true(OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, 65));
	assert_true(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d));
	p = OSSL_PARAM_BLD_to_param(bld);
	assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
	assert_int_equal(EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_KEYPAIR, p), 1);
	OSSL_PARAM_free(p);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	BN_free(d);
	return pkey;
}

/* The public half of a JWK (private members dropped) as a key. */
static struct jose_key *public_key(const json_t *jwk, const char *kid)
{
	json_t *pub = json_deep_copy(jwk);
	struct jose_key *k;
	static const char *const priv[] = {"d", "p", "q", "dp", "dq", "qi"};

	for (size_t i = 0; i < sizeof(priv) / sizeof(priv[0]); i++)
		json_object_del(pub, priv[i]);
	if (kid)
		json_object_set_new(pub, "kid", json_string(kid));
	assert_int_equal(jose_key_from_jwk(pub, &k), 0);
	json_decref(pub);
	return k;
}

/* Signature part of a compact token, decoded. */
static size_t token_sig(const char *jws, uint8_t *sig, size_t cap)
{
	const char *d = strrchr(jws, '.') + 1;
	size_t n;

	assert_int_equal(b64_url_decode(d, strlen(d), sig, cap, &n), 0);
	return n;
}

static size_t input_len(const char *jws)
{
	return (size_t)(strrchr(jws, '.') - jws);
}

/* header with a kid + the token's own payload part + a fresh signature. */
static char *resign_with_kid(const char *jws, const char *header, EVP_PKEY *pkey, enum jose_alg alg)
{
	char *t = malloc(4096);
	const char *p = strchr(jws, '.'), *e = strrchr(jws, '.');
	uint8_t sig[JOSE_SIG_MAX];
	size_t siglen, o;
	long w;

	w = b64_url_encode((const uint8_t *)header, strlen(header), t, 4096);
	assert_true(w > 0);
	o = (size_t)w;
	memcpy(t + o, p, (size_t)(e - p));
	o += (size_t)(e - p);
	siglen = sizeof(sig);
	assert_int_equal(jose_sign_with_pkey(pkey, alg, (uint8_t *)t, o, sig, &siglen), 0);
	t[o++] = '.';
	w = b64_url_encode(sig, siglen, t + o, 4096 - o);
	assert_true(w > 0);
	return t;
}

static void check_rfc_claims(const struct jose_jws *j)
{
	const char *iss;
	int64_t exp;

	assert_int_equal(jose_claim_str(j->payload, "iss", &iss), 0);
	assert_string_equal(iss, "joe");
	assert_int_equal(jose_claim_time(j->payload, "exp", &exp), 0);
	assert_int_equal(exp, 1300819380);
	assert_true(json_is_true(json_object_get(j->payload, "http://example.com/is_root")));
}

/* RFC 7515 A.2: PKCS#1 v1.5 is deterministic, so our signature must be theirs. */
static void test_vec_rfc7515_a2_rs256_verifies_and_signs_byte_for_byte(void **state)
{
	json_t *v = load("rfc.json"), *a2 = json_object_get(v, "a2_rs256");
	const json_t *jwk = json_object_get(a2, "jwk");
	const char *jws = str(a2, "jws");
	struct jose_key *k = public_key(jwk, "a2");
	EVP_PKEY *priv = private_rsa(jwk);
	uint8_t sig[JOSE_SIG_MAX], mine[JOSE_SIG_MAX];
	size_t n = token_sig(jws, sig, sizeof(sig)), mlen;
	struct jose_keyset ks;
	struct jose_jws j;
	char *t;

	jose_keyset_init(&ks);
	assert_int_equal(jose_keyset_add(&ks, k), 0);
	assert_int_equal(k->alg, JOSE_ALG_RS256);
	assert_int_equal(jose_verify_raw(k, (const uint8_t *)jws, input_len(jws), sig, n), 0);
	mlen = sizeof(mine);
	assert_int_equal(jose_sign_with_pkey(priv, JOSE_ALG_RS256, (const uint8_t *)jws,
					     input_len(jws), mine, &mlen),
			 0);
	assert_int_equal(mlen, n);
	assert_memory_equal(mine, sig, n);
	/* the RFC token names no key: refused as such, never tried on a guess */
	assert_int_equal(jose_verify_keyset(jws, strlen(jws), NULL, &ks, &j), JOSE_ENOKEYID);
	/* the same payload bytes with a kid go through the whole path */
	t = resign_with_kid(jws, "{\"alg\":\"RS256\",\"kid\":\"a2\"}", priv, JOSE_ALG_RS256);
	assert_int_equal(jose_verify_keyset(t, strlen(t), NULL, &ks, &j), 0);
	check_rfc_claims(&j);
	jose_jws_free(&j);
	sig[n - 1] ^= 1;
	assert_int_equal(jose_verify_raw(k, (const uint8_t *)jws, input_len(jws), sig, n),
			 JOSE_EBADSIG);
	free(t);
	jose_keyset_clear(&ks);
	jose_key_free(k);
	EVP_PKEY_free(priv);
	json_decref(v);
}

static void test_vec_rfc7515_a3_es256_verifies(void **state)
{
	json_t *v = load("rfc.json"), *a3 = json_object_get(v, "a3_es256");
	const json_t *jwk = json_object_get(a3, "jwk");
	const char *jws = str(a3, "jws");
	struct jose_key *k = public_key(jwk, "a3");
	EVP_PKEY *priv = private_ec(jwk);
	uint8_t sig[JOSE_SIG_MAX];
	size_t n = token_sig(jws, sig, sizeof(sig));
	struct jose_keyset ks;
	struct jose_jws j;
	char *t;

	jose_keyset_init(&ks);
	assert_int_equal(jose_keyset_add(&ks, k), 0);
	assert_int_equal(n, 64);
	assert_int_equal(k->alg, JOSE_ALG_ES256);
	assert_int_equal(jose_verify_raw(k, (const uint8_t *)jws, input_len(jws), sig, n), 0);
	/* ECDSA is randomised: our P1363 signature must verify, not match */
	t = resign_with_kid(jws, "{\"alg\":\"ES256\",\"kid\":\"a3\"}", priv, JOSE_ALG_ES256);
	assert_int_equal(jose_verify_keyset(t, strlen(t), NULL, &ks, &j), 0);
	check_rfc_claims(&j);
	jose_jws_free(&j);
	sig[10] ^= 0x40;
	assert_int_equal(jose_verify_raw(k, (const uint8_t *)jws, input_len(jws), sig, n),
			 JOSE_EBADSIG);
	free(t);
	jose_keyset_clear(&ks);
	jose_key_free(k);
	EVP_PKEY_free(priv);
	json_decref(v);
}

/* RFC 7515 A.1 is a valid HS256 token: this module must never accept it. */
static void test_vec_rfc7515_a1_hs256_is_not_allowed(void **state)
{
	json_t *v = load("rfc.json");
	const char *jws = str(json_object_get(v, "a1_hs256"), "jws");
	struct jose_key *k =
	    public_key(json_object_get(json_object_get(v, "a2_rs256"), "jwk"), "a2");
	struct jose_keyset ks;
	struct jose_jws j;

	jose_keyset_init(&ks);
	assert_int_equal(jose_keyset_add(&ks, k), 0);
	assert_int_equal(jose_verify_keyset(jws, strlen(jws), NULL, &ks, &j), JOSE_EALG);
	/* and the oct JWK that verifies it is not a key we import */
	{
		struct jose_key *o;

		assert_int_equal(
		    jose_key_from_jwk(json_object_get(json_object_get(v, "a1_hs256"), "jwk"), &o),
		    JOSE_EKEY);
	}
	jose_keyset_clear(&ks);
	jose_key_free(k);
	json_decref(v);
}

static void test_vec_rfc7515_a5_unsecured_is_refused_by_verify(void **state)
{
	json_t *v = load("rfc.json");
	const char *jws = str(json_object_get(v, "a5_none"), "jws");
	struct jose_keyset ks;
	struct jose_jws j;

	jose_keyset_init(&ks);
	assert_int_equal(jose_verify_keyset(jws, strlen(jws), NULL, &ks, &j), JOSE_EALG_NONE);
	/* only the explicitly named outer-token parser takes it */
	assert_int_equal(jose_parse_unsigned_outer(jws, strlen(jws), NULL, &j), 0);
	check_rfc_claims(&j);
	jose_jws_free(&j);
	json_decref(v);
}

/* RFC 8037 A.4/A.5: Ed25519 is deterministic, so the signature must match. */
static void test_vec_rfc8037_ed25519_signs_byte_for_byte(void **state)
{
	json_t *v = load("rfc.json"), *c = json_object_get(v, "rfc8037_ed25519");
	const json_t *jwk = json_object_get(c, "jwk");
	const char *jws = str(c, "jws"), *d = str(jwk, "d");
	struct jose_key *k = public_key(jwk, NULL);
	uint8_t seed[32], sig[JOSE_SIG_MAX], mine[JOSE_SIG_MAX];
	size_t n, mlen;
	char tp[JOSE_X5T256_LEN + 1];
	struct jose_limits raw = {.raw_payload = true};
	struct jose_keyset ks;
	struct jose_jws j;
	EVP_PKEY *priv;

	assert_int_equal(b64_url_decode(d, strlen(d), seed, sizeof(seed), &n), 0);
	priv = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	assert_non_null(priv);
	n = token_sig(jws, sig, sizeof(sig));
	assert_int_equal(k->alg, JOSE_ALG_EDDSA);
	assert_int_equal(jose_verify_raw(k, (const uint8_t *)jws, input_len(jws), sig, n), 0);
	mlen = sizeof(mine);
	assert_int_equal(jose_sign_with_pkey(priv, JOSE_ALG_EDDSA, (const uint8_t *)jws,
					     input_len(jws), mine, &mlen),
			 0);
	assert_int_equal(mlen, 64);
	assert_memory_equal(mine, sig, 64);
	/* RFC 8037 A.3 thumbprint, which is also our default kid */
	assert_int_equal(jose_key_thumbprint(k, tp), 0);
	assert_string_equal(tp, str(c, "thumbprint"));
	assert_string_equal(k->kid, str(c, "thumbprint"));
	/* its payload is a sentence, not claims: a JWT consumer refuses it */
	jose_keyset_init(&ks);
	assert_int_equal(jose_keyset_add(&ks, k), 0);
	assert_int_equal(jose_verify_keyset(jws, strlen(jws), NULL, &ks, &j), JOSE_EJSON);
	assert_int_equal(jose_verify_keyset(jws, strlen(jws), &raw, &ks, &j), JOSE_ENOKEYID);
	sig[63] ^= 1;
	assert_int_equal(jose_verify_raw(k, (const uint8_t *)jws, input_len(jws), sig, n),
			 JOSE_EBADSIG);
	jose_keyset_clear(&ks);
	jose_key_free(k);
	EVP_PKEY_free(priv);
	json_decref(v);
}

static void test_vec_rfc7638_thumbprint(void **state)
{
	json_t *v = load("rfc.json"), *c = json_object_get(v, "rfc7638_thumbprint");
	struct jose_key *k;
	char tp[JOSE_X5T256_LEN + 1];

	assert_int_equal(jose_key_from_jwk(json_object_get(c, "jwk"), &k), 0);
	assert_string_equal(k->kid, "2011-04-29");
	assert_int_equal(jose_key_thumbprint(k, tp), 0);
	assert_string_equal(tp, str(c, "thumbprint"));
	jose_key_free(k);
	json_decref(v);
}

/*
 * Wycheproof JWS. Expected outcomes are our error names. Where Wycheproof
 * says "valid" and we reject, it is by design and the case says why: HS256
 * is never accepted by this module (RFC 8725 §3.1, keys are asymmetric and
 * pinned). The payload of these vectors ("foo") is not a JWT claims set, so
 * the cases run with raw_payload.
 */
static void test_vec_wycheproof_jws(void **state)
{
	json_t *v = load("wycheproof_jws.json"), *keys = json_object_get(v, "keys");
	json_t *cases = json_object_get(v, "cases"), *c;
	struct jose_limits raw = {.raw_payload = true};
	size_t i, ran = 0, bad = 0;

	json_array_foreach(cases, i, c)
	{
		int tc = (int)json_integer_value(json_array_get(c, 0));
		const json_t *jwk = json_object_get(keys, json_string_value(json_array_get(c, 1)));
		const char *jws = json_string_value(json_array_get(c, 2));
		const char *result = json_string_value(json_array_get(c, 3));
		const char *expect = json_string_value(json_array_get(c, 4));
		struct jose_keyset ks;
		struct jose_key *k = NULL;
		struct jose_jws j;
		int rc;

		jose_keyset_init(&ks);
		if (json_is_object(jwk) && jose_key_from_jwk(jwk, &k) == 0) {
			assert_int_equal(jose_keyset_add(&ks, k), 0);
			jose_key_free(k);
		}
		rc = jose_verify_keyset(jws, strlen(jws), &raw, &ks, &j);
		jose_jws_free(&j);
		jose_keyset_clear(&ks);
		if (strcmp(jose_strerror(rc), expect) != 0 ||
		    (strcmp(result, "invalid") == 0 && rc == 0)) {
			print_error("tcId %d: got %s, want %s (wycheproof: %s)\n", tc,
				    jose_strerror(rc), expect, result);
			bad++;
		}
		ran++;
	}
	assert_true(ran >= 60);
	assert_int_equal(bad, 0);
	json_decref(v);
}

/*
 * Signature files (msg, sig) against jose_verify_raw with the group's key
 * imported as a JWK. "acceptable" cases are rejected: the only one kept is
 * RSA tcId 8 (DigestInfo without its NULL), which OpenSSL refuses and which
 * no JWS signer produces. ES256 cases run twice: with a fresh key (OpenSSL's
 * EVP verification) and with the same key given its table (jose_p256.c).
 */
static void run_sig_file(const char *name, enum jose_alg alg, size_t min_cases)
{
	json_t *v = load(name), *groups = json_object_get(v, "groups"), *g, *t;
	size_t gi, ti, ran = 0, bad = 0;

	json_array_foreach(groups, gi, g)
	{
		struct jose_key *k, *kt;

		assert_int_equal(jose_key_from_jwk(json_object_get(g, "jwk"), &k), 0);
		assert_int_equal(jose_key_from_jwk(json_object_get(g, "jwk"), &kt), 0);
		assert_int_equal(k->alg, alg);
		assert_int_equal(jose_key_precompute(kt), 0);
		assert_true(alg != JOSE_ALG_ES256 || kt->p256 != NULL);
		json_array_foreach(json_object_get(g, "tests"), ti, t)
		{
			int tc = (int)json_integer_value(json_array_get(t, 0));
			size_t mlen, slen;
			uint8_t *msg = unhex(json_string_value(json_array_get(t, 1)), &mlen);
			uint8_t *sig = unhex(json_string_value(json_array_get(t, 2)), &slen);
			const char *result = json_string_value(json_array_get(t, 3));
			int want_ok = strcmp(result, "valid") == 0;

			/* a fresh key per case: never JOSE_P256_AFTER uses, no table */
			jose_key_free(k);
			assert_int_equal(jose_key_from_jwk(json_object_get(g, "jwk"), &k), 0);
			for (int pass = 0; pass < 2; pass++) {
				int rc = jose_verify_raw(pass ? kt : k, msg, mlen, sig, slen);

				if ((rc == 0) != want_ok || (rc != 0 && rc != JOSE_EBADSIG)) {
					print_error("%s tcId %d%s: got %s, want %s\n", name, tc,
						    pass ? " (key with its table)" : "",
						    jose_strerror(rc), result);
					bad++;
				}
			}
			ran++;
			free(msg);
			free(sig);
		}
		assert_null(k->p256); /* the first pass stayed on EVP */
		jose_key_free(k);
		jose_key_free(kt);
	}
	assert_true(ran >= min_cases);
	assert_int_equal(bad, 0);
	json_decref(v);
}

static void test_vec_wycheproof_ecdsa_p256_p1363(void **state)
{
	run_sig_file("wycheproof_ecdsa_p256_p1363.json", JOSE_ALG_ES256, 252);
}

static void test_vec_wycheproof_ed25519(void **state)
{
	run_sig_file("wycheproof_ed25519.json", JOSE_ALG_EDDSA, 50);
}

static void test_vec_wycheproof_rsa2048_pkcs1_sha256(void **state)
{
	run_sig_file("wycheproof_rsa2048_sha256.json", JOSE_ALG_RS256, 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vec_rfc7515_a2_rs256_verifies_and_signs_byte_for_byte),
	    cmocka_unit_test(test_vec_rfc7515_a3_es256_verifies),
	    cmocka_unit_test(test_vec_rfc7515_a1_hs256_is_not_allowed),
	    cmocka_unit_test(test_vec_rfc7515_a5_unsecured_is_refused_by_verify),
	    cmocka_unit_test(test_vec_rfc8037_ed25519_signs_byte_for_byte),
	    cmocka_unit_test(test_vec_rfc7638_thumbprint),
	    cmocka_unit_test(test_vec_wycheproof_jws),
	    cmocka_unit_test(test_vec_wycheproof_ecdsa_p256_p1363),
	    cmocka_unit_test(test_vec_wycheproof_ed25519),
	    cmocka_unit_test(test_vec_wycheproof_rsa2048_pkcs1_sha256),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
