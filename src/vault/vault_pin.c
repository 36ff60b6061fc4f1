/*
 * PIN hashing and verification (vault_pin.h). The only code that turns a
 * PIN into a hash or compares one. Never logs; wipes every copy.
 */
#include "vault/vault_pin.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "core/secmem.h"

static _Atomic int cost_log2 = VAULT_PIN_N_LOG2;

void vault_pin_set_cost(int n_log2)
{
	if (n_log2 >= VAULT_PIN_MIN_N_LOG2 && n_log2 <= VAULT_PIN_MAX_N_LOG2)
		atomic_store(&cost_log2, n_log2);
}

int vault_pin_class(size_t len)
{
	return len <= 4 ? 4 : len == 5 ? 5 : 6;
}

static void current_params(struct vault_pin_params *p, size_t pin_len)
{
	p->n = (uint64_t)1 << atomic_load(&cost_log2);
	p->r = VAULT_PIN_R;
	p->p = VAULT_PIN_P;
	p->dklen = VAULT_PIN_HASH_LEN;
	p->klass = vault_pin_class(pin_len);
}

int vault_pin_params_format(const struct vault_pin_params *p, char *out, size_t cap)
{
	int n = snprintf(
	    out, cap, "scrypt:N=%" PRIu64 ",r=%" PRIu32 ",p=%" PRIu32 ",dklen=%" PRIu32 ",class=%d",
	    p->n, p->r, p->p, p->dklen, p->klass);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* One "name=<decimal>" field ending at ',' or NUL; advances *s. */
static int field(const char **s, const char *name, uint64_t max, uint64_t *v)
{
	size_t n = strlen(name);
	const char *p = *s;
	uint64_t x = 0;

	if (strncmp(p, name, n) != 0 || p[n] != '=')
		return -1;
	p += n + 1;
	if (*p < '0' || *p > '9')
		return -1;
	while (*p >= '0' && *p <= '9') {
		x = x * 10 + (uint64_t)(*p - '0');
		if (x > max)
			return -1;
		p++;
	}
	if (*p == ',')
		p++;
	else if (*p != '\0')
		return -1;
	*v = x;
	*s = p;
	return 0;
}

int vault_pin_params_parse(const char *s, struct vault_pin_params *out)
{
	uint64_t n, r, p, dk, k;

	memset(out, 0, sizeof(*out));
	if (!s || strncmp(s, "scrypt:", 7) != 0)
		return -1;
	s += 7;
	if (field(&s, "N", (uint64_t)1 << VAULT_PIN_MAX_N_LOG2, &n) < 0 ||
	    field(&s, "r", VAULT_PIN_MAX_R, &r) < 0 || field(&s, "p", VAULT_PIN_MAX_P, &p) < 0 ||
	    field(&s, "dklen", STORE_PIN_BLOB_MAX, &dk) < 0 || field(&s, "class", 6, &k) < 0 ||
	    *s != '\0')
		return -1;
	/* N a power of two within bounds; memory 128 r N bounded */
	if (n < ((uint64_t)1 << VAULT_PIN_MIN_N_LOG2) || (n & (n - 1)) != 0 || r == 0 || p == 0 ||
	    dk < 16 || k < 4 || 128 * r * n > VAULT_PIN_MAXMEM)
		return -1;
	out->n = n;
	out->r = (uint32_t)r;
	out->p = (uint32_t)p;
	out->dklen = (uint32_t)dk;
	out->klass = (int)k;
	return 0;
}

int vault_pin_kdf(const char *pin, size_t len, const uint8_t *salt, size_t salt_len,
		  const struct vault_pin_params *p, uint8_t *out)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
	EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	uint64_t n = p->n, maxmem = VAULT_PIN_MAXMEM + 1024 * 1024;
	uint32_t r = p->r, pp = p->p;
	OSSL_PARAM params[7];
	int rc = -1;

	if (!ctx)
		goto out;
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)pin, len);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
	params[2] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
	params[3] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r);
	params[4] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &pp);
	params[5] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem);
	params[6] = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(ctx, out, p->dklen, params) == 1)
		rc = 0;
out:
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return rc;
}

int vault_pin_set(struct store *s, int64_t user_id, const char *pin, size_t len, int64_t now)
{
	struct vault_pin_params p;
	uint8_t salt[VAULT_PIN_SALT_LEN], hash[VAULT_PIN_HASH_LEN];
	char params[STORE_PIN_PARAMS_MAX];
	int rc;

	if (!pin || len == 0)
		return STORE_INVALID;
	current_params(&p, len);
	if (vault_pin_params_format(&p, params, sizeof(params)) < 0 ||
	    secmem_random(salt, sizeof(salt)) < 0 ||
	    vault_pin_kdf(pin, len, salt, sizeof(salt), &p, hash) < 0) {
		rc = STORE_UNAVAILABLE;
		goto out;
	}
	rc = store_pin_put(s, user_id, hash, sizeof(hash), salt, sizeof(salt), params, now);
out:
	secmem_wipe(hash, sizeof(hash));
	return rc;
}

void vault_pin_dummy(const char *pin, size_t len)
{
	static const uint8_t salt[VAULT_PIN_SALT_LEN] = {0};
	uint8_t out[VAULT_PIN_HASH_LEN];
	struct vault_pin_params p;

	current_params(&p, len);
	(void)vault_pin_kdf(pin ? pin : "", pin ? len : 0, salt, sizeof(salt), &p, out);
	secmem_wipe(out, sizeof(out));
}

void vault_pin_check_wipe(struct vault_pin_check *c)
{
	secmem_wipe(c, sizeof(*c));
	c->state = VAULT_PIN_UNAVAILABLE;
}

enum vault_pin_result vault_pin_load(struct store *s, int64_t user_id, struct vault_pin_check *c)
{
	int rc;

	memset(c, 0, sizeof(*c));
	c->hlen = sizeof(c->hash);
	c->slen = sizeof(c->salt);
	rc = store_pin_get_hash(s, user_id, c->hash, &c->hlen, c->salt, &c->slen, c->params);
	if (rc == STORE_OK)
		c->state = VAULT_PIN_MATCH;
	else if (rc == STORE_NOTFOUND)
		c->state = VAULT_PIN_NONE;
	else
		c->state = VAULT_PIN_UNAVAILABLE;
	if (c->state != VAULT_PIN_MATCH) {
		int st = c->state;
		vault_pin_check_wipe(c);
		c->state = st;
	}
	return (enum vault_pin_result)c->state;
}

enum vault_pin_result vault_pin_compare(struct vault_pin_check *c, const char *pin, size_t len)
{
	uint8_t got[STORE_PIN_BLOB_MAX];
	struct vault_pin_params p;
	enum vault_pin_result res;

	if (c->state == VAULT_PIN_NONE) {
		vault_pin_dummy(pin, len); /* the same work as a real check */
		res = VAULT_PIN_NONE;
		goto out;
	}
	if (c->state != VAULT_PIN_MATCH) {
		res = VAULT_PIN_UNAVAILABLE;
		goto out;
	}
	/* a row we cannot use (bad params, a hash length that disagrees) is
	 * our fault, never the user's: unavailable, not "wrong PIN" */
	if (vault_pin_params_parse(c->params, &p) < 0 || p.dklen != c->hlen ||
	    vault_pin_kdf(pin, len, c->salt, c->slen, &p, got) < 0) {
		res = VAULT_PIN_UNAVAILABLE;
		goto out;
	}
	res = secmem_eq(got, c->hash, c->hlen) ? VAULT_PIN_MATCH : VAULT_PIN_MISMATCH;
out:
	secmem_wipe(got, sizeof(got));
	vault_pin_check_wipe(c);
	return res;
}

enum vault_pin_result vault_pin_verify(struct store *s, int64_t user_id, const char *pin,
				       size_t len)
{
	struct vault_pin_check c;

	vault_pin_load(s, user_id, &c);
	return vault_pin_compare(&c, pin, len);
}
