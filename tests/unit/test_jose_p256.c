/*
 * ES256 verification with a table of multiples of the key
 * (oauth/jose_p256.c), checked against OpenSSL's own ECDSA verification:
 * random keys, digests and signatures with single-bit changes, r and s at
 * and beyond the ends of their range, digests that make u1 zero, a sum
 * u1·G + u2·Q at infinity, and a valid signature whose two halves are the
 * same point (the doubling case of the final addition). The Wycheproof
 * vectors run through both paths in test_vec_jose.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "oauth/jose.h"
#include "oauth/jose_int.h"

/* OpenSSL's verdict on r||s over digest: 1 valid, 0 not. */
static int openssl_verify(EVP_PKEY *pk, const uint8_t digest[32], const uint8_t sig[64])
{
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
	unsigned char *der = NULL;
	int len, rc;

	assert_non_null(es);
	assert_non_null(c);
	assert_int_equal(ECDSA_SIG_set0(es, r, s), 1);
	len = i2d_ECDSA_SIG(es, &der);
	assert_true(len > 0);
	assert_int_equal(EVP_PKEY_verify_init(c), 1);
	rc = EVP_PKEY_verify(c, der, (size_t)len, digest, 32) == 1;
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	EVP_PKEY_CTX_free(c);
	return rc;
}

/* OpenSSL's signature of digest, as r||s. */
static void openssl_sign(EVP_PKEY *pk, const uint8_t digest[32], uint8_t sig[64])
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
	unsigned char der[80];
	const unsigned char *p = der;
	size_t n = sizeof(der);
	ECDSA_SIG *es;
	const BIGNUM *r, *s;

	assert_non_null(c);
	assert_int_equal(EVP_PKEY_sign_init(c), 1);
	assert_int_equal(EVP_PKEY_sign(c, der, &n, digest, 32), 1);
	es = d2i_ECDSA_SIG(NULL, &p, (long)n);
	assert_non_null(es);
	ECDSA_SIG_get0(es, &r, &s);
	assert_int_equal(BN_bn2binpad(r, sig, 32), 32);
	assert_int_equal(BN_bn2binpad(s, sig + 32, 32), 32);
	ECDSA_SIG_free(es);
	EVP_PKEY_CTX_free(c);
}

static struct jose_p256 *table_for(EVP_PKEY *pk)
{
	struct jose_p256 *t = NULL;

	assert_int_equal(jose_p256_new(pk, &t), 0);
	assert_non_null(t);
	return t;
}

/* Both verdicts must be want. */
static void both(EVP_PKEY *pk, const struct jose_p256 *t, const uint8_t digest[32],
		 const uint8_t sig[64], int want, const char *what)
{
	int ours = jose_p256_verify(t, digest, sig), theirs = openssl_verify(pk, digest, sig);

	if (ours != want || theirs != want)
		print_error("%s: table %d, OpenSSL %d, want %d\n", what, ours, theirs, want);
	assert_int_equal(ours, want);
	assert_int_equal(theirs, want);
}

static void test_p256_agrees_with_openssl_on_random_signatures(void **state)
{
	for (int key = 0; key < 6; key++) {
		EVP_PKEY *pk = EVP_EC_gen("P-256");
		struct jose_p256 *t;

		assert_non_null(pk);
		t = table_for(pk);
		for (int i = 0; i < 40; i++) {
			uint8_t d[32], sig[64], bad[64], d2[32];
			unsigned bit;

			assert_int_equal(RAND_bytes(d, sizeof(d)), 1);
			openssl_sign(pk, d, sig);
			both(pk, t, d, sig, 1, "a fresh signature");
			/* one bit of r, of s, or of the digest changed */
			assert_int_equal(RAND_bytes((unsigned char *)&bit, sizeof(bit)), 1);
			memcpy(bad, sig, 64);
			bad[(bit / 8) % 64] ^= (uint8_t)(1u << (bit % 8));
			both(pk, t, d, bad, 0, "one bit of r||s changed");
			memcpy(d2, d, 32);
			d2[(bit / 8) % 32] ^= (uint8_t)(1u << (bit % 8));
			both(pk, t, d2, sig, 0, "one bit of the digest changed");
			/* r and s swapped */
			memcpy(bad, sig + 32, 32);
			memcpy(bad + 32, sig, 32);
			both(pk, t, d, bad, 0, "r and s swapped");
		}
		jose_p256_free(t);
		EVP_PKEY_free(pk);
	}
}

/* v as 32 big-endian bytes at out (v < 2^256). */
static void put32(const BIGNUM *v, uint8_t *out)
{
	assert_int_equal(BN_bn2binpad(v, out, 32), 32);
}

static void test_p256_refuses_r_and_s_out_of_range(void **state)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	const BIGNUM *n = EC_GROUP_get0_order(g);
	struct jose_p256 *t = table_for(pk);
	BIGNUM *v = BN_new(), *r = BN_new(), *s = BN_new();
	uint8_t d[32], sig[64], bad[64];

	assert_int_equal(RAND_bytes(d, sizeof(d)), 1);
	openssl_sign(pk, d, sig);
	both(pk, t, d, sig, 1, "the signature itself");
	BN_bin2bn(sig, 32, r);
	BN_bin2bn(sig + 32, 32, s);
	/* r or s zero */
	memset(bad, 0, 32);
	memcpy(bad + 32, sig + 32, 32);
	both(pk, t, d, bad, 0, "r = 0");
	memcpy(bad, sig, 32);
	memset(bad + 32, 0, 32);
	both(pk, t, d, bad, 0, "s = 0");
	/* r or s equal to n */
	put32(n, bad);
	memcpy(bad + 32, sig + 32, 32);
	both(pk, t, d, bad, 0, "r = n");
	memcpy(bad, sig, 32);
	put32(n, bad + 32);
	both(pk, t, d, bad, 0, "s = n");
	/* r + n and s + n: the same values mod n, out of range (when they fit) */
	BN_add(v, r, n);
	if (BN_num_bytes(v) <= 32) {
		put32(v, bad);
		memcpy(bad + 32, sig + 32, 32);
		both(pk, t, d, bad, 0, "r + n");
	}
	BN_add(v, s, n);
	if (BN_num_bytes(v) <= 32) {
		memcpy(bad, sig, 32);
		put32(v, bad + 32);
		both(pk, t, d, bad, 0, "s + n");
	}
	/* all ones */
	memset(bad, 0xff, 64);
	both(pk, t, d, bad, 0, "r = s = 2^256 - 1");
	/* n - s: the other valid s of the same r (ECDSA is malleable) */
	BN_sub(v, n, s);
	memcpy(bad, sig, 32);
	put32(v, bad + 32);
	both(pk, t, d, bad, 1, "s replaced by n - s");
	BN_free(v);
	BN_free(r);
	BN_free(s);
	EC_GROUP_free(g);
	jose_p256_free(t);
	EVP_PKEY_free(pk);
}

/*
 * Digests that reach the edges of the equation: e = 0 and e = n (u1 = 0,
 * R = u2·Q alone), e = 2^256 - 1 (above n), e = -r·d (R at infinity), and a
 * valid signature with u1·G = u2·Q (R = 2·u2·Q: the final addition doubles).
 */
static void test_p256_edge_digests_agree_with_openssl(void **state)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	const BIGNUM *n = EC_GROUP_get0_order(g);
	struct jose_p256 *t = table_for(pk);
	BN_CTX *ctx = BN_CTX_new();
	BIGNUM *d = NULL, *k = BN_new(), *r = BN_new(), *s = BN_new(), *e = BN_new();
	BIGNUM *x = BN_new(), *tmp = BN_new();
	EC_POINT *R = EC_POINT_new(g);
	uint8_t dg[32], sig[64];

	assert_int_equal(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_PRIV_KEY, &d), 1);
	/* e = 0 and e = n: OpenSSL signs them, both must verify */
	memset(dg, 0, 32);
	openssl_sign(pk, dg, sig);
	both(pk, t, dg, sig, 1, "e = 0");
	put32(n, dg);
	openssl_sign(pk, dg, sig);
	both(pk, t, dg, sig, 1, "e = n");
	memset(dg, 0xff, 32);
	openssl_sign(pk, dg, sig);
	both(pk, t, dg, sig, 1, "e = 2^256 - 1");
	/* any r, s with e = -r·d mod n: u1·G + u2·Q = (e + r·d)/s · G = O */
	assert_int_equal(BN_rand_range(r, n), 1);
	assert_int_equal(BN_rand_range(s, n), 1);
	if (BN_is_zero(r))
		BN_one(r);
	if (BN_is_zero(s))
		BN_one(s);
	assert_int_equal(BN_mod_mul(e, r, d, n, ctx), 1);
	assert_int_equal(BN_mod_sub(e, n, e, n, ctx), 1);
	put32(e, dg);
	put32(r, sig);
	put32(s, sig + 32);
	both(pk, t, dg, sig, 0, "u1·G + u2·Q at infinity");
	/* doubling: k random, r = x(k·G) mod n, s = 2·d·r/k, e = r·d: then
	 * u1 = e/s = k/2 and u2 = r/s = k/(2d), so u1·G = u2·Q = (k/2)·G */
	do {
		assert_int_equal(BN_rand_range(k, n), 1);
		assert_int_equal(EC_POINT_mul(g, R, k, NULL, NULL, ctx), 1);
		assert_int_equal(EC_POINT_get_affine_coordinates(g, R, x, NULL, ctx), 1);
		assert_int_equal(BN_nnmod(r, x, n, ctx), 1);
	} while (BN_is_zero(k) || BN_is_zero(r));
	assert_int_equal(BN_mod_mul(tmp, d, r, n, ctx), 1);
	assert_int_equal(BN_mod_add(tmp, tmp, tmp, n, ctx), 1);
	assert_non_null(BN_mod_inverse(s, k, n, ctx));
	assert_int_equal(BN_mod_mul(s, s, tmp, n, ctx), 1);
	assert_int_equal(BN_mod_mul(e, r, d, n, ctx), 1);
	put32(e, dg);
	put32(r, sig);
	put32(s, sig + 32);
	both(pk, t, dg, sig, 1, "u1·G = u2·Q (the addition doubles)");
	sig[63] ^= 1;
	both(pk, t, dg, sig, 0, "the doubling case with s changed");
	BN_clear_free(d);
	BN_free(k);
	BN_free(r);
	BN_free(s);
	BN_free(e);
	BN_free(x);
	BN_free(tmp);
	EC_POINT_free(R);
	BN_CTX_free(ctx);
	EC_GROUP_free(g);
	jose_p256_free(t);
	EVP_PKEY_free(pk);
}

/* jose_p256_inverse against BN_mod_inverse: random values and the ends. */
static void test_p256_inverse_agrees_with_bn(void **state)
{
	EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	const BIGNUM *n = EC_GROUP_get0_order(g);
	BN_CTX *ctx = BN_CTX_new();
	BIGNUM *a = BN_new(), *w = BN_new(), *one = BN_new();
	uint8_t in[32], out[32], want[32];

	BN_one(one);
	for (int i = 0; i < 20000 + 8; i++) {
		switch (i) {
		case 0:
			BN_one(a);
			break;
		case 1:
			BN_set_word(a, 2);
			break;
		case 2:
			BN_sub(a, n, one);
			break; /* n - 1 */
		case 3:
			BN_sub(a, n, one);
			BN_sub(a, a, one);
			break;
		case 4:
			BN_rshift1(a, n);
			BN_add(a, a, one);
			break; /* (n + 1) / 2 */
		case 5:
			BN_one(a);
			BN_lshift(a, a, 255);
			break;
		case 6:
			BN_one(a);
			BN_lshift(a, a, 128);
			break;
		case 7:
			BN_set_word(a, 0xffffffffffffffffull);
			break;
		default:
			assert_int_equal(BN_rand_range(a, n), 1);
			if (BN_is_zero(a))
				BN_one(a);
		}
		put32(a, in);
		assert_non_null(BN_mod_inverse(w, a, n, ctx));
		put32(w, want);
		assert_int_equal(jose_p256_inverse(in, out), 0);
		assert_memory_equal(out, want, 32);
	}
	/* 0, n and above have no inverse here */
	memset(in, 0, 32);
	assert_int_equal(jose_p256_inverse(in, out), -1);
	put32(n, in);
	assert_int_equal(jose_p256_inverse(in, out), -1);
	memset(in, 0xff, 32);
	assert_int_equal(jose_p256_inverse(in, out), -1);
	BN_free(a);
	BN_free(w);
	BN_free(one);
	BN_CTX_free(ctx);
	EC_GROUP_free(g);
}

static void test_p256_table_only_for_p256_keys(void **state)
{
	EVP_PKEY *rsa = EVP_RSA_gen(2048), *p384 = EVP_EC_gen("P-384");
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	struct jose_p256 *t = (struct jose_p256 *)1;
	struct jose_key *k;

	assert_int_equal(jose_p256_new(rsa, &t), -1);
	assert_null(t);
	assert_int_equal(jose_p256_new(p384, &t), -1);
	assert_null(t);
	assert_int_equal(jose_p256_new(ed, &t), -1);
	assert_null(t);
	/* an RSA jose key: nothing to precompute, no table */
	assert_int_equal(jose_key_from_pkey(rsa, NULL, 0, JOSE_ALG_UNKNOWN, "r", &k), 0);
	assert_int_equal(jose_key_precompute(k), 0);
	assert_null(k->p256);
	jose_key_free(k);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(ed);
}

static const char INPUT[] = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsifQ.eyJpc3MiOiJwMSJ9";

/* A key gets its table at its JOSE_P256_AFTER-th verification, and
 * answers the same before and after. */
static void test_p256_key_gets_its_table_when_used(void **state)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	struct jose_key *k;
	uint8_t sig[64], bad[64];
	size_t n = sizeof(sig);

	assert_int_equal(jose_key_from_pkey(pk, NULL, 0, JOSE_ALG_UNKNOWN, "k", &k), 0);
	assert_int_equal(
	    jose_sign_with_pkey(pk, JOSE_ALG_ES256, (const uint8_t *)INPUT, strlen(INPUT), sig, &n),
	    0);
	memcpy(bad, sig, 64);
	bad[10] ^= 0x40;
	/* without the table: a bad signature and a changed input are refused */
	assert_int_equal(jose_verify_raw(k, (const uint8_t *)INPUT, strlen(INPUT), bad, 64),
			 JOSE_EBADSIG);
	assert_int_equal(jose_verify_raw(k, (const uint8_t *)INPUT, strlen(INPUT) - 1, sig, 64),
			 JOSE_EBADSIG);
	for (int i = 3; i < JOSE_P256_AFTER; i++) {
		assert_int_equal(jose_verify_raw(k, (const uint8_t *)INPUT, strlen(INPUT), sig, 64),
				 0);
		assert_null(k->p256);
	}
	assert_int_equal(jose_verify_raw(k, (const uint8_t *)INPUT, strlen(INPUT), sig, 64), 0);
	assert_non_null(k->p256);
	/* with it: the same answers */
	assert_int_equal(jose_verify_raw(k, (const uint8_t *)INPUT, strlen(INPUT), sig, 64), 0);
	assert_int_equal(jose_verify_raw(k, (const uint8_t *)INPUT, strlen(INPUT), bad, 64),
			 JOSE_EBADSIG);
	assert_int_equal(jose_verify_raw(k, (const uint8_t *)INPUT, strlen(INPUT) - 1, sig, 64),
			 JOSE_EBADSIG);
	jose_key_free(k);
	EVP_PKEY_free(pk);
}

struct race {
	struct jose_key *k;
	const uint8_t *sig, *bad;
	int wrong;
};

static void *race_main(void *arg)
{
	struct race *r = arg;

	for (int i = 0; i < 3 * JOSE_P256_AFTER; i++) {
		if (jose_verify_raw(r->k, (const uint8_t *)INPUT, strlen(INPUT), r->sig, 64) != 0)
			r->wrong++;
		if (jose_verify_raw(r->k, (const uint8_t *)INPUT, strlen(INPUT), r->bad, 64) !=
		    JOSE_EBADSIG)
			r->wrong++;
	}
	return NULL;
}

/* Threads that cross the threshold together build one table between them
 * and answer right throughout (and the sanitizers see no race). */
static void test_p256_threads_share_one_table(void **state)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	struct jose_key *k;
	uint8_t sig[64], bad[64];
	size_t n = sizeof(sig);
	pthread_t th[4];
	struct race r[4];

	assert_int_equal(jose_key_from_pkey(pk, NULL, 0, JOSE_ALG_UNKNOWN, "k", &k), 0);
	assert_int_equal(
	    jose_sign_with_pkey(pk, JOSE_ALG_ES256, (const uint8_t *)INPUT, strlen(INPUT), sig, &n),
	    0);
	memcpy(bad, sig, 64);
	bad[40] ^= 0x01;
	for (int i = 0; i < 4; i++) {
		r[i] = (struct race){.k = k, .sig = sig, .bad = bad};
		assert_int_equal(pthread_create(&th[i], NULL, race_main, &r[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(r[i].wrong, 0);
	}
	assert_non_null(k->p256);
	/* asked again: the table it has stays */
	{
		struct jose_p256 *before = k->p256;

		assert_int_equal(jose_key_precompute(k), 0);
		assert_ptr_equal(k->p256, before);
	}
	jose_key_free(k);
	EVP_PKEY_free(pk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_p256_agrees_with_openssl_on_random_signatures),
	    cmocka_unit_test(test_p256_refuses_r_and_s_out_of_range),
	    cmocka_unit_test(test_p256_edge_digests_agree_with_openssl),
	    cmocka_unit_test(test_p256_inverse_agrees_with_bn),
	    cmocka_unit_test(test_p256_table_only_for_p256_keys),
	    cmocka_unit_test(test_p256_key_gets_its_table_when_used),
	    cmocka_unit_test(test_p256_threads_share_one_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
