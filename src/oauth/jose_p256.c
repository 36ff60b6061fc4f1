/*
 * ES256 verification with a table of multiples of the key (docs/design.md,
 * "ES256 verification").
 *
 * ECDSA verification computes R = u1·G + u2·Q. OpenSSL keeps a table of
 * multiples of the curve's generator G, but multiplies the public key Q
 * afresh at every verification: two thirds of the cost of one. Here a key
 * gets a table of its own, once: a copy of the P-256 group whose generator
 * is Q, precomputed with EC_GROUP_precompute_mult (tens of milliseconds and
 * ~150 KB per key). u2·Q then costs what u1·G does. The point arithmetic
 * stays OpenSSL's (BIGNUM, EC_POINT); this file writes out the verification
 * equation (SEC 1 v2 §4.1.4, FIPS 186-5 §6.4.2), the inverse of s mod n
 * (BN_mod_inverse cost a third of the rest) and the final comparison on
 * Jacobian coordinates (no field inversion). Everything here is public (the
 * key, the signature, the digest): nothing needs to run in constant time.
 *
 * EC_GROUP_precompute_mult and EC_POINT_get_Jprojective_coordinates_GFp are
 * deprecated in OpenSSL 3.0 and may leave in a later major version (this
 * file would then not build; jose_sig.c's EVP_DigestVerify path stays).
 * Checked against OpenSSL's verification with every Wycheproof P-256 vector
 * (test_vec_jose.c) and generated edge cases (test_jose_p256.c).
 */
/* EC_GROUP_precompute_mult, EC_POINT_get_Jprojective_coordinates_GFp */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <stdbool.h>
#include <stdlib.h>

#include "core/tlocal.h"
#include "oauth/jose_int.h"

/* A BN_CTX per thread, kept: a new one per verification showed in profiles
 * (its pool and every temporary allocated afresh). Freed at thread end. */
static void *bn_ctx_new(void)
{
	return BN_CTX_new();
}

static void bn_ctx_free(void *p)
{
	BN_CTX_free(p);
}

static struct tlocal bn_ctx = TLOCAL_INIT(bn_ctx_new, bn_ctx_free);

struct jose_p256 {
	EC_GROUP *g; /* P-256 with its generator G */
	EC_GROUP *q; /* P-256 with the key's point Q as generator, precomputed */
};

void jose_p256_free(struct jose_p256 *t)
{
	if (!t)
		return;
	EC_GROUP_free(t->g);
	EC_GROUP_free(t->q);
	free(t);
}

int jose_p256_new(EVP_PKEY *pkey, struct jose_p256 **out)
{
	unsigned char pub[133];
	size_t plen = 0;
	struct jose_p256 *t = calloc(1, sizeof(*t));
	BN_CTX *ctx = BN_CTX_new();
	EC_POINT *q = NULL;
	int rc = -1;

	*out = NULL;
	if (!t || !ctx)
		goto out;
	if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC || EVP_PKEY_get_bits(pkey) != 256 ||
	    EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub),
					    &plen) != 1)
		goto out;
	if (!(t->g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1)) ||
	    !(q = EC_POINT_new(t->g)) || EC_POINT_oct2point(t->g, q, pub, plen, ctx) != 1 ||
	    EC_POINT_is_at_infinity(t->g, q) || EC_POINT_is_on_curve(t->g, q, ctx) != 1)
		goto out;
	/* the same curve, Q as generator: order and cofactor are the curve's */
	if (!(t->q = EC_GROUP_dup(t->g)) ||
	    EC_GROUP_set_generator(t->q, q, EC_GROUP_get0_order(t->g),
				   EC_GROUP_get0_cofactor(t->g)) != 1 ||
	    EC_GROUP_precompute_mult(t->q, ctx) != 1)
		goto out;
	*out = t;
	t = NULL;
	rc = 0;
out:
	EC_POINT_free(q);
	BN_CTX_free(ctx);
	jose_p256_free(t);
	ERR_clear_error();
	return rc;
}

/*
 * w = a^-1 mod n for the P-256 group order n, by the binary extended
 * Euclidean algorithm on four 64-bit limbs (least significant first). Only
 * public values pass here (s of a signature), so it may branch on them.
 * BN_mod_inverse took ~10-16 us of a ~30 us verification; this ~4 us.
 * Invariants: x1·a = u and x2·a = v (mod n); u and v only shrink, and their
 * gcd is 1 because n is prime and 0 < a < n.
 */
typedef struct {
	uint64_t w[4];
} u256;

static const u256 ORDER = {
    {0xf3b9cac2fc632551ull, 0xbce6faada7179e84ull, 0xffffffffffffffffull, 0xffffffff00000000ull}};

static bool u256_is_one(const u256 *a)
{
	return a->w[0] == 1 && !a->w[1] && !a->w[2] && !a->w[3];
}

static bool u256_is_zero(const u256 *a)
{
	return !a->w[0] && !a->w[1] && !a->w[2] && !a->w[3];
}

/* a >= b */
static bool u256_ge(const u256 *a, const u256 *b)
{
	for (int i = 3; i >= 0; i--)
		if (a->w[i] != b->w[i])
			return a->w[i] > b->w[i];
	return true;
}

/* a -= b; the borrow out */
static uint64_t u256_sub(u256 *a, const u256 *b)
{
	uint64_t borrow = 0;

	for (int i = 0; i < 4; i++) {
		unsigned __int128 d = (unsigned __int128)a->w[i] - b->w[i] - borrow;

		a->w[i] = (uint64_t)d;
		borrow = (uint64_t)(d >> 64) & 1;
	}
	return borrow;
}

/* a += b; the carry out */
static uint64_t u256_add(u256 *a, const u256 *b)
{
	uint64_t carry = 0;

	for (int i = 0; i < 4; i++) {
		unsigned __int128 t = (unsigned __int128)a->w[i] + b->w[i] + carry;

		a->w[i] = (uint64_t)t;
		carry = (uint64_t)(t >> 64);
	}
	return carry;
}

/* a >>= k, 0 < k < 64, top bit from carry */
static void u256_shr(u256 *a, unsigned k, uint64_t carry)
{
	for (int i = 0; i < 3; i++)
		a->w[i] = a->w[i] >> k | a->w[i + 1] << (64 - k);
	a->w[3] = a->w[3] >> k | carry << (64 - k);
}

/* x = x/2 mod n, x < n */
static void half_mod(u256 *x)
{
	uint64_t carry = 0;

	if (x->w[0] & 1)
		carry = u256_add(x, &ORDER);
	u256_shr(x, 1, carry);
}

/* x = x - y mod n, x, y < n */
static void sub_mod(u256 *x, const u256 *y)
{
	if (u256_sub(x, y))
		u256_add(x, &ORDER);
}

/* strip the factors 2 of u (even, not zero), halving x as often */
static void strip_twos(u256 *u, u256 *x)
{
	while (!(u->w[0] & 1)) {
		unsigned k = u->w[0] ? (unsigned)__builtin_ctzll(u->w[0]) : 63;

		u256_shr(u, k, 0);
		while (k--)
			half_mod(x);
	}
}

static void u256_from_be(u256 *a, const uint8_t b[32])
{
	for (int i = 0; i < 4; i++) {
		uint64_t v = 0;

		for (int j = 0; j < 8; j++)
			v = v << 8 | b[(3 - i) * 8 + j];
		a->w[i] = v;
	}
}

static void u256_to_be(const u256 *a, uint8_t b[32])
{
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 8; j++)
			b[(3 - i) * 8 + j] = (uint8_t)(a->w[i] >> (56 - 8 * j));
}

int jose_p256_inverse(const uint8_t a[32], uint8_t out[32])
{
	u256 u, v = ORDER, x1 = {{1, 0, 0, 0}}, x2 = {{0, 0, 0, 0}};

	u256_from_be(&u, a);
	if (u256_is_zero(&u) || u256_ge(&u, &ORDER))
		return -1;
	/* each round takes at least one bit off u or v: 2 x 256 rounds at most */
	for (int round = 0; round < 1024; round++) {
		if (u256_is_one(&u) || u256_is_one(&v)) {
			u256_to_be(u256_is_one(&u) ? &x1 : &x2, out);
			return 0;
		}
		if (u256_is_zero(&u) || u256_is_zero(&v))
			return -1; /* gcd > 1: cannot happen for a prime n */
		strip_twos(&u, &x1);
		strip_twos(&v, &x2);
		if (u256_ge(&u, &v)) {
			u256_sub(&u, &v);
			sub_mod(&x1, &x2);
		} else {
			u256_sub(&v, &u);
			sub_mod(&x2, &x1);
		}
	}
	return -1;
}

int jose_p256_verify(const struct jose_p256 *t, const uint8_t digest[32], const uint8_t sig[64])
{
	const BIGNUM *n = EC_GROUP_get0_order(t->g), *p = EC_GROUP_get0_field(t->g);
	BN_CTX *ctx = tlocal_get(&bn_ctx);
	BIGNUM *r, *s, *e, *w, *u1, *u2, *x, *z, *v;
	EC_POINT *a = NULL, *b = NULL;
	uint8_t winv[32];
	int rc = -1;

	if (!ctx)
		return -1;
	BN_CTX_start(ctx);
	r = BN_CTX_get(ctx);
	s = BN_CTX_get(ctx);
	e = BN_CTX_get(ctx);
	w = BN_CTX_get(ctx);
	u1 = BN_CTX_get(ctx);
	u2 = BN_CTX_get(ctx);
	x = BN_CTX_get(ctx);
	z = BN_CTX_get(ctx);
	v = BN_CTX_get(ctx);
	if (!v || !BN_bin2bn(sig, 32, r) || !BN_bin2bn(sig + 32, 32, s) ||
	    !BN_bin2bn(digest, 32, e) || !(a = EC_POINT_new(t->g)) || !(b = EC_POINT_new(t->q)))
		goto out;
	/* 1 <= r, s < n */
	if (BN_is_zero(r) || BN_is_zero(s) || BN_cmp(r, n) >= 0 || BN_cmp(s, n) >= 0) {
		rc = 0;
		goto out;
	}
	/* e: the digest's 256 bits as they are (n has 256 bits); u1 = e/s, u2 = r/s */
	if (jose_p256_inverse(sig + 32, winv) != 0 || !BN_bin2bn(winv, 32, w) ||
	    !BN_mod_mul(u1, e, w, n, ctx) || !BN_mod_mul(u2, r, w, n, ctx))
		goto out;
	/* R = u1·G + u2·Q, each from its group's table */
	if (EC_POINT_mul(t->g, a, u1, NULL, NULL, ctx) != 1 ||
	    EC_POINT_mul(t->q, b, u2, NULL, NULL, ctx) != 1 ||
	    EC_POINT_add(t->g, a, a, b, ctx) != 1)
		goto out;
	rc = 0;
	if (EC_POINT_is_at_infinity(t->g, a))
		goto out;
	/*
	 * x(R) mod n = r, without the field inversion of affine coordinates:
	 * R is (X, Y, Z) in Jacobian coordinates, x(R) = X/Z^2 < p, and as
	 * p < 2n, x(R) mod n = r exactly when x(R) = r or x(R) = r + n < p,
	 * that is X = r·Z^2 or X = (r + n)·Z^2 (mod p).
	 */
	rc = -1;
	if (EC_POINT_get_Jprojective_coordinates_GFp(t->g, a, x, NULL, z, ctx) != 1 ||
	    !BN_nnmod(x, x, p, ctx) || !BN_mod_sqr(z, z, p, ctx) || !BN_mod_mul(v, r, z, p, ctx))
		goto out;
	if (BN_cmp(v, x) == 0) {
		rc = 1;
		goto out;
	}
	if (!BN_add(v, r, n))
		goto out;
	rc = 0;
	if (BN_cmp(v, p) >= 0)
		goto out;
	if (!BN_mod_mul(v, v, z, p, ctx)) {
		rc = -1;
		goto out;
	}
	rc = BN_cmp(v, x) == 0 ? 1 : 0;
out:
	EC_POINT_free(a);
	EC_POINT_free(b);
	BN_CTX_end(ctx);
	if (rc < 0)
		ERR_clear_error();
	return rc;
}
