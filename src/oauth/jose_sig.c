/*
 * JWS signature primitives over OpenSSL EVP (RFC 7518 §3, RFC 8037 §3.1):
 * verification with a key's pinned algorithm, and signing with a private
 * key for tests and for the vault. The JWS form of an ECDSA signature is
 * the 64-byte r||s (IEEE P1363); OpenSSL speaks DER, so we convert both
 * ways here and nowhere else.
 */
#include <string.h>

#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include "core/md.h"
#include "oauth/jose.h"
#include "oauth/jose_int.h"

/* One DER INTEGER from a 32-byte big-endian unsigned value. */
static size_t der_uint(const uint8_t *v, uint8_t *out)
{
	size_t i = 0, n, o = 0;

	while (i < 31 && v[i] == 0)
		i++;
	n = 32 - i;
	out[o++] = 0x02;
	out[o++] = (uint8_t)(n + (v[i] & 0x80 ? 1 : 0));
	if (v[i] & 0x80)
		out[o++] = 0;
	memcpy(out + o, v + i, n);
	return o + n;
}

/* RFC 7518 §3.4: r||s (32 + 32) to an ECDSA-Sig-Value SEQUENCE; at most 72 bytes. */
static size_t p1363_to_der(const uint8_t *sig, uint8_t *der)
{
	size_t n = 2;

	n += der_uint(sig, der + n);
	n += der_uint(sig + 32, der + n);
	der[0] = 0x30;
	der[1] = (uint8_t)(n - 2);
	return n;
}

static int setup_pss(EVP_PKEY_CTX *pctx)
{
	/* RFC 7518 §3.5: MGF1 with SHA-256, salt as long as the hash */
	if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) <= 0)
		return -1;
	return 0;
}

int jose_key_precompute(const struct jose_key *k)
{
	struct jose_key *m = (struct jose_key *)k; /* its atomic fields only */
	struct jose_p256 *t = NULL, *none = NULL;

	if (k->alg != JOSE_ALG_ES256 || __atomic_load_n(&m->p256, __ATOMIC_ACQUIRE))
		return 0;
	if (jose_p256_new(k->pkey, &t) != 0)
		return -1;
	if (!__atomic_compare_exchange_n(&m->p256, &none, t, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		jose_p256_free(t); /* another thread was first */
	return 0;
}

/* k's table, built at its JOSE_P256_AFTER-th verification; NULL before. */
static const struct jose_p256 *p256_table(const struct jose_key *k)
{
	struct jose_key *m = (struct jose_key *)k; /* its atomic fields only */
	const struct jose_p256 *t = __atomic_load_n(&m->p256, __ATOMIC_ACQUIRE);

	if (t || __atomic_add_fetch(&m->p256_uses, 1, __ATOMIC_RELAXED) != JOSE_P256_AFTER)
		return t;
	jose_key_precompute(k); /* on failure: never tried again */
	return __atomic_load_n(&m->p256, __ATOMIC_ACQUIRE);
}

static int verify_p256(const struct jose_p256 *t, const uint8_t *input, size_t len,
		       const uint8_t *sig)
{
	EVP_MD_CTX *ctx = md_thread_ctx();
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	int rc;

	if (!ctx || !md_sha256())
		return JOSE_ENOMEM;
	if (EVP_DigestInit_ex2(ctx, md_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, input, len) != 1 || EVP_DigestFinal_ex(ctx, md, &n) != 1 ||
	    n != 32) {
		ERR_clear_error();
		return JOSE_EINTERNAL;
	}
	rc = jose_p256_verify(t, md, sig);
	return rc > 0 ? 0 : rc == 0 ? JOSE_EBADSIG : JOSE_EINTERNAL;
}

int jose_verify_raw(const struct jose_key *k, const uint8_t *input, size_t len, const uint8_t *sig,
		    size_t siglen)
{
	const EVP_MD *md = md_sha256(); /* fetched once, not at every call */
	EVP_PKEY_CTX *pctx = NULL;
	const struct jose_p256 *t;
	EVP_MD_CTX *ctx;
	uint8_t der[80];
	int rc = JOSE_EBADSIG;

	switch (k->alg) {
	case JOSE_ALG_ES256:
		if (siglen != 64)
			return JOSE_EBADSIG;
		if ((t = p256_table(k)))
			return verify_p256(t, input, len, sig);
		siglen = p1363_to_der(sig, der);
		sig = der;
		break;
	case JOSE_ALG_EDDSA:
		if (siglen != 64)
			return JOSE_EBADSIG;
		md = NULL;
		break;
	case JOSE_ALG_RS256:
	case JOSE_ALG_PS256:
		if (siglen != (size_t)EVP_PKEY_get_size(k->pkey))
			return JOSE_EBADSIG;
		break;
	default:
		return JOSE_EALG;
	}
	if (!md && k->alg != JOSE_ALG_EDDSA)
		return JOSE_EINTERNAL;
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return JOSE_ENOMEM;
	if (EVP_DigestVerifyInit(ctx, &pctx, md, NULL, k->pkey) != 1 ||
	    (k->alg == JOSE_ALG_PS256 && setup_pss(pctx) != 0)) {
		rc = JOSE_EINTERNAL;
		goto out;
	}
	if (EVP_DigestVerify(ctx, sig, siglen, input, len) == 1)
		rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return rc;
}

/* DER ECDSA-Sig-Value to 64-byte r||s. */
static int der_to_p1363(const uint8_t *der, size_t len, uint8_t *out)
{
	const unsigned char *p = der;
	ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
	const BIGNUM *r, *s;
	int rc = -1;

	if (!es)
		return -1;
	ECDSA_SIG_get0(es, &r, &s);
	if (BN_bn2binpad(r, out, 32) == 32 && BN_bn2binpad(s, out + 32, 32) == 32)
		rc = 0;
	ECDSA_SIG_free(es);
	return rc;
}

/* Does pkey's type fit alg? */
static bool pkey_fits(EVP_PKEY *pkey, enum jose_alg alg)
{
	switch (alg) {
	case JOSE_ALG_RS256:
	case JOSE_ALG_PS256:
		return EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA;
	case JOSE_ALG_ES256:
		return EVP_PKEY_get_base_id(pkey) == EVP_PKEY_EC && EVP_PKEY_get_bits(pkey) == 256;
	case JOSE_ALG_EDDSA:
		return EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519;
	default:
		return false;
	}
}

int jose_sign_with_pkey(EVP_PKEY *pkey, enum jose_alg alg, const uint8_t *input, size_t len,
			uint8_t *sig, size_t *siglen)
{
	size_t cap = *siglen;
	const EVP_MD *md = alg == JOSE_ALG_EDDSA ? NULL : md_sha256();
	EVP_PKEY_CTX *pctx = NULL;
	EVP_MD_CTX *ctx;
	uint8_t der[80];
	size_t n;
	int rc = JOSE_EINTERNAL;

	*siglen = 0;
	if (!pkey || !pkey_fits(pkey, alg))
		return JOSE_EALG;
	if (!md && alg != JOSE_ALG_EDDSA)
		return JOSE_EINTERNAL;
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return JOSE_ENOMEM;
	if (EVP_DigestSignInit(ctx, &pctx, md, NULL, pkey) != 1 ||
	    (alg == JOSE_ALG_PS256 && setup_pss(pctx) != 0))
		goto out;
	if (alg == JOSE_ALG_ES256) {
		n = sizeof(der);
		if (cap < 64 || EVP_DigestSign(ctx, der, &n, input, len) != 1 ||
		    der_to_p1363(der, n, sig) != 0)
			goto out;
		n = 64;
	} else {
		if (EVP_DigestSign(ctx, NULL, &n, input, len) != 1 || n > cap)
			goto out;
		if (EVP_DigestSign(ctx, sig, &n, input, len) != 1)
			goto out;
	}
	*siglen = n;
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return rc;
}

int jose_pkey_signer(void *arg, const uint8_t *input, size_t len, uint8_t *sig, size_t cap,
		     size_t *siglen)
{
	const struct jose_pkey_signer *s = arg;

	*siglen = cap;
	return jose_sign_with_pkey(s->pkey, s->alg, input, len, sig, siglen) == 0 ? 0 : -1;
}
