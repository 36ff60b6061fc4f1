/*
 * Verification keys for JOSE: import from certificates, SubjectPublicKeyInfo
 * PEM, JWK (RFC 7517, 7518 §6, 8037 §2) and JWKS documents; export as JWK;
 * RFC 7638 thumbprints; key sets and lookup by kid / x5t / x5t#S256.
 * Only public keys enter here: a JWK with private members is refused.
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "core/b64.h"
#include "oauth/jose.h"
#include "oauth/jose_int.h"

#define CERT_MAX      16384 /* DER bytes of one x5c certificate */
#define JWKS_MAX      65536
#define JWKS_MAX_KEYS 64

struct jose_key *jose_key_ref(struct jose_key *k)
{
	if (k)
		__atomic_add_fetch(&k->refs, 1, __ATOMIC_RELAXED);
	return k;
}

void jose_key_free(struct jose_key *k)
{
	if (!k || __atomic_sub_fetch(&k->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	EVP_PKEY_free(k->pkey);
	jose_p256_free(k->p256);
	free(k->kid);
	free(k->cert_der);
	free(k);
}

/* The pinned algorithm for pkey: alg if it fits, the type's default if UNKNOWN. */
static int pick_alg(EVP_PKEY *pkey, enum jose_alg alg, enum jose_alg *out)
{
	int id = EVP_PKEY_get_base_id(pkey);
	char group[32];
	size_t glen;

	if (id == EVP_PKEY_RSA) {
		int bits = EVP_PKEY_get_bits(pkey);

		if (bits < JOSE_MIN_RSA_BITS || bits > JOSE_MAX_RSA_BITS)
			return JOSE_EWEAKKEY;
		if (alg == JOSE_ALG_UNKNOWN)
			alg = JOSE_ALG_RS256;
		if (alg != JOSE_ALG_RS256 && alg != JOSE_ALG_PS256)
			return JOSE_EALG;
	} else if (id == EVP_PKEY_EC) {
		if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
						   sizeof(group), &glen) != 1 ||
		    strcmp(group, "prime256v1") != 0)
			return JOSE_EWEAKKEY;
		if (alg == JOSE_ALG_UNKNOWN)
			alg = JOSE_ALG_ES256;
		if (alg != JOSE_ALG_ES256)
			return JOSE_EALG;
	} else if (id == EVP_PKEY_ED25519) {
		if (alg == JOSE_ALG_UNKNOWN)
			alg = JOSE_ALG_EDDSA;
		if (alg != JOSE_ALG_EDDSA)
			return JOSE_EALG;
	} else {
		return JOSE_EKEY;
	}
	*out = alg;
	return 0;
}

/* base64url of the SHA-1 and SHA-256 of a certificate (RFC 7515 §4.1.7, §4.1.8). */
static int cert_thumbs(const unsigned char *der, size_t len, struct jose_key *k)
{
	unsigned char h[32];

	if (EVP_Digest(der, len, h, NULL, EVP_sha1(), NULL) != 1 ||
	    b64_url_encode(h, 20, k->x5t, sizeof(k->x5t)) != JOSE_X5T_LEN)
		return JOSE_EINTERNAL;
	if (EVP_Digest(der, len, h, NULL, EVP_sha256(), NULL) != 1 ||
	    b64_url_encode(h, 32, k->x5t_s256, sizeof(k->x5t_s256)) != JOSE_X5T256_LEN)
		return JOSE_EINTERNAL;
	return 0;
}

int jose_key_from_pkey(EVP_PKEY *pkey, const unsigned char *cert_der, size_t cert_der_len,
		       enum jose_alg alg, const char *kid, struct jose_key **out)
{
	char thumb[JOSE_X5T256_LEN + 1];
	struct jose_key *k;
	int rc;

	*out = NULL;
	if (!pkey)
		return JOSE_EKEY;
	k = calloc(1, sizeof(*k));
	if (!k)
		return JOSE_ENOMEM;
	k->refs = 1;
	if ((rc = pick_alg(pkey, alg, &k->alg)) != 0)
		goto out;
	if (!EVP_PKEY_up_ref(pkey)) {
		rc = JOSE_EINTERNAL;
		goto out;
	}
	k->pkey = pkey;
	if (cert_der) {
		rc = JOSE_ENOMEM;
		k->cert_der = malloc(cert_der_len ? cert_der_len : 1);
		if (!k->cert_der)
			goto out;
		memcpy(k->cert_der, cert_der, cert_der_len);
		k->cert_der_len = cert_der_len;
		if ((rc = cert_thumbs(cert_der, cert_der_len, k)) != 0)
			goto out;
	}
	if (!kid) {
		if ((rc = jose_key_thumbprint(k, thumb)) != 0)
			goto out;
		kid = thumb;
	}
	rc = JOSE_ENOMEM;
	if (!(k->kid = strdup(kid)))
		goto out;
	rc = 0;
	*out = k;
out:
	if (rc)
		jose_key_free(k);
	return rc;
}

/* Key of a parsed certificate. */
static int from_x509(X509 *x, enum jose_alg alg, const char *kid, struct jose_key **out)
{
	unsigned char *der = NULL;
	int len = i2d_X509(x, &der), rc;

	if (len <= 0)
		return JOSE_EKEY;
	rc = jose_key_from_pkey(X509_get0_pubkey(x), der, (size_t)len, alg, kid, out);
	OPENSSL_free(der);
	return rc;
}

int jose_key_from_cert_der(const unsigned char *der, size_t len, enum jose_alg alg, const char *kid,
			   struct jose_key **out)
{
	const unsigned char *p = der;
	X509 *x;
	int rc = JOSE_EKEY;

	*out = NULL;
	if (len == 0 || len > CERT_MAX)
		return JOSE_EKEY;
	x = d2i_X509(NULL, &p, (long)len);
	if (x && p == der + len)
		rc = from_x509(x, alg, kid, out);
	X509_free(x);
	ERR_clear_error();
	return rc;
}

int jose_key_from_cert_pem(const char *pem, size_t len, enum jose_alg alg, const char *kid,
			   struct jose_key **out)
{
	BIO *b;
	X509 *x = NULL;
	int rc = JOSE_EKEY;

	*out = NULL;
	if (len > (size_t)1 << 20 || !(b = BIO_new_mem_buf(pem, (int)len)))
		return JOSE_EKEY;
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	if (x)
		rc = from_x509(x, alg, kid, out);
	X509_free(x);
	BIO_free(b);
	ERR_clear_error();
	return rc;
}

int jose_key_from_pubkey_pem(const char *pem, size_t len, enum jose_alg alg, const char *kid,
			     struct jose_key **out)
{
	EVP_PKEY *pkey = NULL;
	BIO *b;
	int rc = JOSE_EKEY;

	*out = NULL;
	if (len > (size_t)1 << 20 || !(b = BIO_new_mem_buf(pem, (int)len)))
		return JOSE_EKEY;
	pkey = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
	if (pkey)
		rc = jose_key_from_pkey(pkey, NULL, 0, alg, kid, out);
	EVP_PKEY_free(pkey);
	BIO_free(b);
	ERR_clear_error();
	return rc;
}

/* A base64url JWK member decoded into buf (cap bytes). */
static int jwk_bytes(const json_t *jwk, const char *name, uint8_t *buf, size_t cap, size_t *len)
{
	const json_t *v = json_object_get(jwk, name);

	*len = 0;
	if (!json_is_string(v))
		return JOSE_EKEY;
	if (b64_url_decode(json_string_value(v), json_string_length(v), buf, cap, len) != 0 ||
	    *len == 0)
		return JOSE_EKEY;
	return 0;
}

/* EVP_PKEY_fromdata for a public key of type name. */
static EVP_PKEY *from_params(const char *name, OSSL_PARAM_BLD *bld)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, name, NULL);
	EVP_PKEY *pkey = NULL;

	if (params && ctx && EVP_PKEY_fromdata_init(ctx) == 1)
		if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
			pkey = NULL;
	OSSL_PARAM_free(params);
	EVP_PKEY_CTX_free(ctx);
	return pkey;
}

static EVP_PKEY *jwk_rsa(const json_t *jwk)
{
	uint8_t n[JOSE_MAX_RSA_BITS / 8 + 1], e[8];
	size_t nlen, elen;
	BIGNUM *bn = NULL, *be = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	EVP_PKEY *pkey = NULL;

	if (jwk_bytes(jwk, "n", n, sizeof(n), &nlen) || jwk_bytes(jwk, "e", e, sizeof(e), &elen))
		return NULL;
	bn = BN_bin2bn(n, (int)nlen, NULL);
	be = BN_bin2bn(e, (int)elen, NULL);
	bld = OSSL_PARAM_BLD_new();
	if (bn && be && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
		pkey = from_params("RSA", bld);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	return pkey;
}

static EVP_PKEY *jwk_ec(const json_t *jwk)
{
	uint8_t pt[65], c[33];
	size_t xl, yl;
	OSSL_PARAM_BLD *bld;
	EVP_PKEY *pkey = NULL;
	EVP_PKEY_CTX *ctx;

	/* RFC 7518 §6.2.1.2: x and y are the full 32 bytes */
	if (jwk_bytes(jwk, "x", c, sizeof(c), &xl) || xl != 32)
		return NULL;
	memcpy(pt + 1, c, 32);
	if (jwk_bytes(jwk, "y", c, sizeof(c), &yl) || yl != 32)
		return NULL;
	memcpy(pt + 33, c, 32);
	pt[0] = 0x04;
	bld = OSSL_PARAM_BLD_new();
	if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0) &&
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt)))
		pkey = from_params("EC", bld);
	OSSL_PARAM_BLD_free(bld);
	if (!pkey)
		return NULL;
	/* the point must be on the curve (invalid-curve attacks) */
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	if (!ctx || EVP_PKEY_public_check(ctx) != 1) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
	EVP_PKEY_CTX_free(ctx);
	return pkey;
}

static EVP_PKEY *jwk_okp(const json_t *jwk)
{
	uint8_t x[33];
	size_t xl;

	if (jwk_bytes(jwk, "x", x, sizeof(x), &xl) || xl != 32)
		return NULL;
	return EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, 32);
}

/* The x5c[0] certificate as DER (malloc'd), checked against pkey. */
static int jwk_x5c(const json_t *x5c, EVP_PKEY *pkey, unsigned char **der, size_t *len)
{
	const json_t *c0 = json_array_get(x5c, 0);
	const unsigned char *p;
	X509 *x = NULL;
	int rc = JOSE_EKEY;

	*der = NULL;
	if (!json_is_array(x5c) || !json_is_string(c0))
		return JOSE_EKEY;
	*der = malloc(CERT_MAX);
	if (!*der)
		return JOSE_ENOMEM;
	if (b64_std_decode(json_string_value(c0), json_string_length(c0), *der, CERT_MAX, len))
		goto out;
	p = *der;
	x = d2i_X509(NULL, &p, (long)*len);
	/* RFC 7517 §4.7: the first certificate's key MUST match the JWK's */
	if (x && p == *der + *len && EVP_PKEY_eq(X509_get0_pubkey(x), pkey) == 1)
		rc = 0;
out:
	X509_free(x);
	if (rc) {
		free(*der);
		*der = NULL;
	}
	return rc;
}

/* A JWK member that, when present, must be a string with this exact value. */
static bool member_is(const json_t *jwk, const char *name, const char *want)
{
	const json_t *v = json_object_get(jwk, name);

	return !v || (json_is_string(v) && strcmp(json_string_value(v), want) == 0);
}

/* Member present? Then it must be a string equal to have. */
static bool member_matches(const json_t *jwk, const char *name, const char *have)
{
	const json_t *v = json_object_get(jwk, name);

	if (!v)
		return true;
	return json_is_string(v) && strcmp(json_string_value(v), have) == 0;
}

/* key_ops, if present, must allow "verify" (RFC 7517 §4.3). */
static bool ops_allow_verify(const json_t *jwk)
{
	const json_t *ops = json_object_get(jwk, "key_ops"), *op;
	size_t i;

	if (!ops)
		return true;
	if (!json_is_array(ops))
		return false;
	json_array_foreach(ops, i, op)
	{
		if (json_is_string(op) && strcmp(json_string_value(op), "verify") == 0)
			return true;
	}
	return false;
}

/* The public key a JWK describes, by kty and crv. */
static int jwk_pkey(const json_t *jwk, EVP_PKEY **pkey)
{
	const char *kty = json_string_value(json_object_get(jwk, "kty"));
	static const char *const priv[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};

	*pkey = NULL;
	for (size_t i = 0; i < sizeof(priv) / sizeof(priv[0]); i++)
		if (json_object_get(jwk, priv[i]))
			return JOSE_EKEY;
	if (!kty)
		return JOSE_EKEY;
	if (strcmp(kty, "RSA") == 0)
		*pkey = jwk_rsa(jwk);
	else if (strcmp(kty, "EC") == 0 && member_is(jwk, "crv", "P-256") &&
		 json_object_get(jwk, "crv"))
		*pkey = jwk_ec(jwk);
	else if (strcmp(kty, "EC") == 0)
		return JOSE_EWEAKKEY;
	else if (strcmp(kty, "OKP") == 0 && member_is(jwk, "crv", "Ed25519") &&
		 json_object_get(jwk, "crv"))
		*pkey = jwk_okp(jwk);
	else
		return JOSE_EKEY;
	ERR_clear_error();
	return *pkey ? 0 : JOSE_EKEY;
}

int jose_key_from_jwk(const json_t *jwk, struct jose_key **out)
{
	const json_t *jalg = json_object_get(jwk, "alg"), *jkid = json_object_get(jwk, "kid");
	const json_t *x5c = json_object_get(jwk, "x5c");
	enum jose_alg alg = JOSE_ALG_UNKNOWN;
	unsigned char *der = NULL;
	size_t derlen = 0;
	EVP_PKEY *pkey = NULL;
	int rc;

	*out = NULL;
	if (!json_is_object(jwk))
		return JOSE_EKEY;
	if ((jalg && !json_is_string(jalg)) || (jkid && !json_is_string(jkid)) ||
	    !member_is(jwk, "use", "sig") || !ops_allow_verify(jwk))
		return JOSE_EKEY;
	if (jalg && (alg = jose_alg_from_name(json_string_value(jalg))) == JOSE_ALG_UNKNOWN)
		return JOSE_EALG;
	if ((rc = jwk_pkey(jwk, &pkey)) != 0)
		return rc;
	if (x5c && (rc = jwk_x5c(x5c, pkey, &der, &derlen)) != 0)
		goto out;
	rc = jose_key_from_pkey(pkey, der, derlen, alg, json_string_value(jkid), out);
	if (rc)
		goto out;
	/* x5t / x5t#S256 given: must match the certificate, or stand for it */
	if (der && (!member_matches(jwk, "x5t", (*out)->x5t) ||
		    !member_matches(jwk, "x5t#S256", (*out)->x5t_s256))) {
		rc = JOSE_EKEY;
	} else if (!der) {
		const char *t1 = json_string_value(json_object_get(jwk, "x5t"));
		const char *t2 = json_string_value(json_object_get(jwk, "x5t#S256"));

		if (t1 && strlen(t1) == JOSE_X5T_LEN)
			memcpy((*out)->x5t, t1, JOSE_X5T_LEN + 1);
		if (t2 && strlen(t2) == JOSE_X5T256_LEN)
			memcpy((*out)->x5t_s256, t2, JOSE_X5T256_LEN + 1);
	}
out:
	if (rc && *out) {
		jose_key_free(*out);
		*out = NULL;
	}
	free(der);
	EVP_PKEY_free(pkey);
	return rc;
}

/* json_object_set_new that reports failure (and frees v on failure). */
static int put(json_t *o, const char *name, json_t *v)
{
	return v && json_object_set_new(o, name, v) == 0 ? 0 : JOSE_ENOMEM;
}

static json_t *bn_member(EVP_PKEY *pkey, const char *param, size_t pad)
{
	BIGNUM *bn = NULL;
	uint8_t buf[JOSE_MAX_RSA_BITS / 8];
	json_t *j = NULL;
	int n;

	if (EVP_PKEY_get_bn_param(pkey, param, &bn) != 1)
		return NULL;
	if ((size_t)BN_num_bytes(bn) <= sizeof(buf) && pad <= sizeof(buf)) {
		n = pad ? BN_bn2binpad(bn, buf, (int)pad) : BN_bn2bin(bn, buf);
		if (n > 0)
			j = jose_json_b64url(buf, (size_t)n);
	}
	BN_free(bn);
	return j;
}

/* The RFC 7638 required members, in lexicographic order, into a new object. */
static int public_members(const struct jose_key *k, json_t **out)
{
	json_t *o = json_object();
	uint8_t raw[32];
	size_t rawlen = sizeof(raw);
	int rc = JOSE_ENOMEM;

	*out = NULL;
	if (!o)
		return JOSE_ENOMEM;
	switch (EVP_PKEY_get_base_id(k->pkey)) {
	case EVP_PKEY_RSA:
		if (put(o, "e", bn_member(k->pkey, OSSL_PKEY_PARAM_RSA_E, 0)) ||
		    put(o, "kty", json_string("RSA")) ||
		    put(o, "n", bn_member(k->pkey, OSSL_PKEY_PARAM_RSA_N, 0)))
			goto out;
		break;
	case EVP_PKEY_EC:
		if (put(o, "crv", json_string("P-256")) || put(o, "kty", json_string("EC")) ||
		    put(o, "x", bn_member(k->pkey, OSSL_PKEY_PARAM_EC_PUB_X, 32)) ||
		    put(o, "y", bn_member(k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, 32)))
			goto out;
		break;
	case EVP_PKEY_ED25519:
		if (EVP_PKEY_get_raw_public_key(k->pkey, raw, &rawlen) != 1 || rawlen != 32 ||
		    put(o, "crv", json_string("Ed25519")) || put(o, "kty", json_string("OKP")) ||
		    put(o, "x", jose_json_b64url(raw, 32)))
			goto out;
		break;
	default:
		rc = JOSE_EKEY;
		goto out;
	}
	rc = 0;
	*out = o;
	o = NULL;
out:
	json_decref(o);
	ERR_clear_error();
	return rc;
}

int jose_key_thumbprint(const struct jose_key *k, char out[JOSE_X5T256_LEN + 1])
{
	unsigned char h[32];
	json_t *o;
	char *s;
	int rc;

	out[0] = '\0';
	if ((rc = public_members(k, &o)) != 0)
		return rc;
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!s)
		return JOSE_ENOMEM;
	rc = JOSE_EINTERNAL;
	if (EVP_Digest(s, strlen(s), h, NULL, EVP_sha256(), NULL) == 1 &&
	    b64_url_encode(h, 32, out, JOSE_X5T256_LEN + 1) == JOSE_X5T256_LEN)
		rc = 0;
	free(s);
	return rc;
}

/* x5c: one standard-base64 DER certificate. */
static json_t *x5c_array(const struct jose_key *k)
{
	size_t cap = b64_std_len(k->cert_der_len) + 1;
	char *s = malloc(cap);
	json_t *a = NULL;
	long n;

	if (!s)
		return NULL;
	n = b64_std_encode(k->cert_der, k->cert_der_len, s, cap);
	if (n >= 0)
		a = json_pack("[s%]", s, (size_t)n);
	free(s);
	return a;
}

int jose_key_to_jwk(const struct jose_key *k, json_t **out)
{
	json_t *o;
	int rc;

	*out = NULL;
	if ((rc = public_members(k, &o)) != 0)
		return rc;
	rc = JOSE_ENOMEM;
	if (put(o, "use", json_string("sig")) ||
	    put(o, "alg", json_string(jose_alg_name(k->alg))) || put(o, "kid", json_string(k->kid)))
		goto out;
	if (k->cert_der && put(o, "x5c", x5c_array(k)))
		goto out;
	if (k->x5t[0] && put(o, "x5t", json_string(k->x5t)))
		goto out;
	if (k->x5t_s256[0] && put(o, "x5t#S256", json_string(k->x5t_s256)))
		goto out;
	rc = 0;
	*out = o;
	o = NULL;
out:
	json_decref(o);
	return rc;
}

void jose_keyset_init(struct jose_keyset *ks)
{
	ks->keys = NULL;
	ks->n = 0;
}

int jose_keyset_add(struct jose_keyset *ks, struct jose_key *k)
{
	struct jose_key **nk = realloc(ks->keys, (ks->n + 1) * sizeof(*nk));

	if (!nk)
		return JOSE_ENOMEM;
	ks->keys = nk;
	ks->keys[ks->n++] = jose_key_ref(k);
	return 0;
}

void jose_keyset_clear(struct jose_keyset *ks)
{
	for (size_t i = 0; i < ks->n; i++)
		jose_key_free(ks->keys[i]);
	free(ks->keys);
	jose_keyset_init(ks);
}

/* A key we cannot use, as opposed to a broken one: skip it. */
static bool jwk_unsupported(const json_t *jwk)
{
	const char *kty = json_string_value(json_object_get(jwk, "kty"));
	const char *crv = json_string_value(json_object_get(jwk, "crv"));
	const char *alg = json_string_value(json_object_get(jwk, "alg"));

	if (!kty || !member_is(jwk, "use", "sig") || !ops_allow_verify(jwk))
		return true;
	if (alg && jose_alg_from_name(alg) == JOSE_ALG_UNKNOWN)
		return true;
	if (strcmp(kty, "RSA") == 0)
		return false;
	if (strcmp(kty, "EC") == 0)
		return !crv || strcmp(crv, "P-256") != 0;
	if (strcmp(kty, "OKP") == 0)
		return !crv || strcmp(crv, "Ed25519") != 0;
	return true;
}

int jose_keyset_from_jwks(const char *text, size_t len, size_t max_len, struct jose_keyset *ks,
			  size_t *skipped)
{
	json_t *doc = NULL, *keys, *jwk;
	struct jose_key *k;
	size_t i, skip = 0;
	int rc;

	jose_keyset_init(ks);
	if (skipped)
		*skipped = 0;
	if (len > (max_len ? max_len : JWKS_MAX))
		return JOSE_ETOOLARGE;
	if ((rc = jose_json_object(text, len, JOSE_DEFAULT_MAX_DEPTH, &doc)) != 0)
		return rc;
	keys = json_object_get(doc, "keys");
	rc = JOSE_EJSON;
	if (!json_is_array(keys))
		goto out;
	rc = JOSE_ETOOLARGE;
	if (json_array_size(keys) > JWKS_MAX_KEYS)
		goto out;
	json_array_foreach(keys, i, jwk)
	{
		if (!json_is_object(jwk) || jwk_unsupported(jwk)) {
			skip++;
			continue;
		}
		if ((rc = jose_key_from_jwk(jwk, &k)) != 0)
			goto out;
		rc = jose_keyset_add(ks, k);
		jose_key_free(k);
		if (rc)
			goto out;
	}
	rc = 0;
	if (skipped)
		*skipped = skip;
out:
	if (rc)
		jose_keyset_clear(ks);
	json_decref(doc);
	return rc;
}

/*
 * Certificate thumbprints bind to the key's certificate, so they decide
 * whenever both sides have one (and must then agree); the kid, a name, is
 * consulted only when no thumbprint could be compared. Keys imported from a
 * bare certificate carry a kid of our choosing, which is why a token's kid
 * alone must not veto a thumbprint match.
 */
static bool key_matches(const struct jose_key *k, const char *kid, const char *x5t,
			const char *x5t_s256)
{
	bool compared = false;

	if (x5t_s256 && k->x5t_s256[0]) {
		if (strcmp(x5t_s256, k->x5t_s256) != 0)
			return false;
		compared = true;
	}
	if (x5t && k->x5t[0]) {
		if (strcmp(x5t, k->x5t) != 0)
			return false;
		compared = true;
	}
	if (compared)
		return true;
	/* Azure AD and AD FS name a certificate key by its x5t in kid as well */
	return kid && (strcmp(kid, k->kid) == 0 || (k->x5t[0] && strcmp(kid, k->x5t) == 0));
}

const struct jose_key *jose_keyset_find(const struct jose_keyset *ks, const char *kid,
					const char *x5t, const char *x5t_s256)
{
	if (!ks || (!kid && !x5t && !x5t_s256))
		return NULL;
	for (size_t i = 0; i < ks->n; i++)
		if (key_matches(ks->keys[i], kid, x5t, x5t_s256))
			return ks->keys[i];
	return NULL;
}
