/*
 * OAuth signing keys (vault/keys.h): generation for every algorithm with a
 * self-signed certificate and correct thumbprints, private key files 0600 in
 * a 0700 directory, JWS signatures that OpenSSL verifies with the public key
 * of the stored certificate (ES256 as P1363 r||s), algorithm pinning,
 * refusal of unsafe key files, keys_ensure_current, and concurrent signing.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "store/store.h"
#include "vault/keys.h"

struct fx {
	char dir[64];
	char db[128];
	struct store *s;
	struct keys *k;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/rtc-keys-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->db, sizeof(f->db), "%s/rtcauth.db", f->dir);
	assert_int_equal(store_open(f->db, STORE_CREATE, 1000, &f->s, err, sizeof(err)), STORE_OK);
	assert_int_equal(keys_load(f->dir, &f->k, err, sizeof(err)), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	keys_free(f->k);
	store_close(f->s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static X509 *cert_of(const struct store_oauth_key *r)
{
	BIO *bio = BIO_new_mem_buf(r->cert_pem, -1);
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

	BIO_free(bio);
	assert_non_null(x);
	return x;
}

/* base64url (no padding) of a digest of the certificate's DER. */
static void thumb(X509 *x, const EVP_MD *md, char *out, size_t cap)
{
	unsigned char *der = NULL, h[64], b64[128];
	unsigned int hl = 0;
	int n = i2d_X509(x, &der), l;

	assert_true(n > 0);
	assert_int_equal(EVP_Digest(der, (size_t)n, h, &hl, md, NULL), 1);
	OPENSSL_free(der);
	l = EVP_EncodeBlock(b64, h, (int)hl);
	while (l > 0 && b64[l - 1] == '=')
		l--;
	for (int i = 0; i < l; i++)
		b64[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
	assert_true((size_t)l < cap);
	memcpy(out, b64, (size_t)l);
	out[l] = '\0';
}

static void gen(struct fx *f, const char *alg, struct store_oauth_key *r)
{
	char err[256] = "";

	if (keys_generate(f->dir, alg, "rtcauth token issuer example.test", r, err, sizeof(err)) <
	    0)
		fail_msg("keys_generate %s: %s", alg, err);
}

/* Verify a JWS signature as a relying party would, from the certificate. */
static bool verify(const struct store_oauth_key *r, const void *in, size_t len, const uint8_t *sig,
		   size_t siglen)
{
	X509 *x = cert_of(r);
	EVP_PKEY *pub = X509_get0_pubkey(x);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	bool ed = strcmp(r->alg, "EdDSA") == 0;
	uint8_t der[128];
	const uint8_t *s = sig;
	size_t sl = siglen;
	int ok;

	assert_non_null(ctx);
	if (strcmp(r->alg, "ES256") == 0) {
		/* P1363 r||s back to DER for OpenSSL */
		ECDSA_SIG *es = ECDSA_SIG_new();
		unsigned char *p = der;

		assert_int_equal(siglen, 64);
		assert_int_equal(
		    ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL)), 1);
		sl = (size_t)i2d_ECDSA_SIG(es, &p);
		ECDSA_SIG_free(es);
		s = der;
	}
	assert_int_equal(EVP_DigestVerifyInit(ctx, &pctx, ed ? NULL : EVP_sha256(), NULL, pub), 1);
	if (strcmp(r->alg, "PS256") == 0) {
		assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
		/* RFC 7518 §3.5: the salt is as long as the hash, exactly */
		assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32), 1);
	}
	ok = EVP_DigestVerify(ctx, s, sl, in, len);
	EVP_MD_CTX_free(ctx);
	X509_free(x);
	return ok == 1;
}

static void check_alg(void **state, const char *alg, const char *type, size_t want_len)
{
	struct fx *f = *state;
	static const char input[] = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0";
	char path[256], x5t[64], s256[64], cn[128];
	struct store_oauth_key r;
	uint8_t sig[KEYS_SIG_MAX];
	size_t siglen = sizeof(sig);
	struct stat st;
	X509 *x;

	gen(f, alg, &r);
	assert_string_equal(r.alg, alg);
	assert_int_equal(r.state, STORE_OAUTH_KEY_NEXT);
	assert_true(r.created > 0);

	/* the certificate: self-signed, CN = issuer, 2 years, thumbprints */
	x = cert_of(&r);
	assert_true(EVP_PKEY_is_a(X509_get0_pubkey(x), type));
	assert_int_equal(X509_verify(x, X509_get0_pubkey(x)), 1);
	assert_int_equal(
	    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn)),
	    (int)strlen("rtcauth token issuer example.test"));
	assert_string_equal(cn, "rtcauth token issuer example.test");
	assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)), 0);
	{
		int days = 0, secs = 0;
		assert_int_equal(
		    ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x)), 1);
		assert_true(days >= KEYS_CERT_DAYS && days <= KEYS_CERT_DAYS + 1);
	}
	thumb(x, EVP_sha1(), x5t, sizeof(x5t));
	thumb(x, EVP_sha256(), s256, sizeof(s256));
	assert_string_equal(r.x5t, x5t);
	assert_string_equal(r.x5t_s256, s256);
	assert_int_equal(strlen(r.x5t), 27);
	assert_int_equal(strlen(r.x5t_s256), 43);
	assert_int_equal(strlen(r.kid), 16);
	assert_memory_equal(r.kid, r.x5t_s256, 16);
	X509_free(x);

	/* the private key file and its directory */
	snprintf(path, sizeof(path), "%s/keys", f->dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	snprintf(path, sizeof(path), "%s/keys/oauth-%s.pem", f->dir, r.kid);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);

	/* sign, verify, and a changed input does not verify */
	assert_int_equal(keys_sign(f->k, r.kid, alg, input, strlen(input), sig, &siglen), KEYS_OK);
	assert_int_equal(siglen, want_len);
	assert_true(verify(&r, input, strlen(input), sig, siglen));
	assert_false(verify(&r, input, strlen(input) - 1, sig, siglen));
	sig[siglen / 2] ^= 1;
	assert_false(verify(&r, input, strlen(input), sig, siglen));
	/* a second signature comes from the cache and verifies too */
	siglen = sizeof(sig);
	assert_int_equal(keys_sign(f->k, r.kid, alg, "x", 1, sig, &siglen), KEYS_OK);
	assert_true(verify(&r, "x", 1, sig, siglen));
}

static void test_keys_rs256_generates_signs_and_verifies(void **state)
{
	check_alg(state, "RS256", "RSA", 256);
}

static void test_keys_ps256_generates_signs_and_verifies_with_salt_32(void **state)
{
	check_alg(state, "PS256", "RSA", 256);
}

static void test_keys_es256_signature_is_64_byte_p1363(void **state)
{
	check_alg(state, "ES256", "EC", 64);
}

static void test_keys_eddsa_signature_is_64_bytes(void **state)
{
	check_alg(state, "EdDSA", "ED25519", 64);
}

static void test_keys_rs256_is_deterministic_pkcs1(void **state)
{
	struct fx *f = *state;
	struct store_oauth_key r;
	uint8_t a[KEYS_SIG_MAX], b[KEYS_SIG_MAX];
	size_t al = sizeof(a), bl = sizeof(b);

	/* PKCS#1 v1.5 is deterministic, PSS is not: tells the paddings apart */
	gen(f, "RS256", &r);
	assert_int_equal(keys_sign(f->k, r.kid, "RS256", "m", 1, a, &al), KEYS_OK);
	assert_int_equal(keys_sign(f->k, r.kid, "RS256", "m", 1, b, &bl), KEYS_OK);
	assert_memory_equal(a, b, al);
	gen(f, "PS256", &r);
	al = bl = sizeof(a);
	assert_int_equal(keys_sign(f->k, r.kid, "PS256", "m", 1, a, &al), KEYS_OK);
	assert_int_equal(keys_sign(f->k, r.kid, "PS256", "m", 1, b, &bl), KEYS_OK);
	assert_memory_not_equal(a, b, al);
}

static void test_keys_sign_enforces_the_pinned_algorithm(void **state)
{
	struct fx *f = *state;
	struct store_oauth_key rsa, ec;
	uint8_t sig[KEYS_SIG_MAX];
	size_t siglen = sizeof(sig);
	struct keys *k2;
	char err[256];

	gen(f, "RS256", &rsa);
	gen(f, "ES256", &ec);
	/* not loaded yet: the file's key type decides */
	assert_int_equal(keys_sign(f->k, ec.kid, "RS256", "m", 1, sig, &siglen), KEYS_BADALG);
	assert_int_equal(keys_sign(f->k, rsa.kid, "EdDSA", "m", 1, sig, &siglen), KEYS_BADALG);
	/* loaded as RS256: the same RSA key may not sign PS256 */
	assert_int_equal(keys_sign(f->k, rsa.kid, "RS256", "m", 1, sig, &siglen), KEYS_OK);
	siglen = sizeof(sig);
	assert_int_equal(keys_sign(f->k, rsa.kid, "PS256", "m", 1, sig, &siglen), KEYS_BADALG);
	assert_int_equal(keys_sign(f->k, rsa.kid, "HS256", "m", 1, sig, &siglen), KEYS_BADALG);
	assert_int_equal(keys_sign(f->k, rsa.kid, "none", "m", 1, sig, &siglen), KEYS_BADALG);
	assert_int_equal(keys_sign(f->k, rsa.kid, NULL, "m", 1, sig, &siglen), KEYS_BADALG);
	/* preload says why */
	assert_int_equal(keys_load(f->dir, &k2, err, sizeof(err)), 0);
	assert_int_equal(keys_preload(k2, ec.kid, "EdDSA", err, sizeof(err)), KEYS_BADALG);
	assert_non_null(strstr(err, "not a EdDSA key"));
	assert_int_equal(keys_preload(k2, ec.kid, "ES256", err, sizeof(err)), KEYS_OK);
	keys_free(k2);
}

static void test_keys_sign_refuses_unknown_and_unsafe_key_ids(void **state)
{
	struct fx *f = *state;
	uint8_t sig[KEYS_SIG_MAX];
	size_t siglen = sizeof(sig);

	assert_int_equal(keys_sign(f->k, "AAAAAAAAAAAAAAAA", "RS256", "m", 1, sig, &siglen),
			 KEYS_NOKEY);
	assert_int_equal(keys_sign(f->k, "../../etc/passwd", "RS256", "m", 1, sig, &siglen),
			 KEYS_NOKEY);
	assert_int_equal(keys_sign(f->k, "", "RS256", "m", 1, sig, &siglen), KEYS_NOKEY);
	assert_int_equal(keys_sign(f->k, NULL, "RS256", "m", 1, sig, &siglen), KEYS_NOKEY);
}

static void test_keys_refuses_a_key_file_readable_by_others(void **state)
{
	struct fx *f = *state;
	struct store_oauth_key r;
	uint8_t sig[KEYS_SIG_MAX];
	size_t siglen = sizeof(sig);
	char path[256], err[256];

	gen(f, "ES256", &r);
	snprintf(path, sizeof(path), "%s/keys/oauth-%s.pem", f->dir, r.kid);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(keys_sign(f->k, r.kid, "ES256", "m", 1, sig, &siglen), KEYS_NOKEY);
	assert_int_equal(keys_preload(f->k, r.kid, "ES256", err, sizeof(err)), KEYS_NOKEY);
	assert_non_null(strstr(err, "readable by others"));
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(keys_sign(f->k, r.kid, "ES256", "m", 1, sig, &siglen), KEYS_OK);
}

static void test_keys_refuses_a_symlinked_or_garbage_key_file(void **state)
{
	struct fx *f = *state;
	struct store_oauth_key r;
	char path[256], target[256], err[256];
	FILE *fp;

	gen(f, "ES256", &r);
	snprintf(path, sizeof(path), "%s/keys/oauth-%s.pem", f->dir, r.kid);
	snprintf(target, sizeof(target), "%s/elsewhere.pem", f->dir);
	assert_int_equal(rename(path, target), 0);
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(keys_preload(f->k, r.kid, "ES256", err, sizeof(err)), KEYS_NOKEY);
	assert_int_equal(unlink(path), 0);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n", fp);
	fclose(fp);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(keys_preload(f->k, r.kid, "ES256", err, sizeof(err)), KEYS_NOKEY);
	assert_non_null(strstr(err, "cannot read the private key"));
}

static void test_keys_sign_refuses_a_too_small_buffer(void **state)
{
	struct fx *f = *state;
	struct store_oauth_key r;
	uint8_t sig[KEYS_SIG_MAX];
	size_t siglen = 100;

	gen(f, "RS256", &r);
	assert_int_equal(keys_sign(f->k, r.kid, "RS256", "m", 1, sig, &siglen), KEYS_FAIL);
	gen(f, "ES256", &r);
	siglen = 63;
	assert_int_equal(keys_sign(f->k, r.kid, "ES256", "m", 1, sig, &siglen), KEYS_FAIL);
}

/* The thread's ES256 signing context follows the key asked for: two keys
 * signing in turn on one thread each produce signatures of their own key
 * only (the context is kept per thread for one key at a time). */
static void test_keys_es256_keys_signing_in_turn_use_their_own_key(void **state)
{
	struct fx *f = *state;
	struct store_oauth_key a, b;
	uint8_t sig[KEYS_SIG_MAX];
	size_t siglen;

	gen(f, "ES256", &a);
	gen(f, "ES256", &b);
	for (int i = 0; i < 3; i++) {
		const struct store_oauth_key *me = i % 2 ? &b : &a, *other = i % 2 ? &a : &b;

		siglen = sizeof(sig);
		assert_int_equal(keys_sign(f->k, me->kid, "ES256", "turn", 4, sig, &siglen),
				 KEYS_OK);
		assert_int_equal(siglen, 64);
		assert_true(verify(me, "turn", 4, sig, siglen));
		assert_false(verify(other, "turn", 4, sig, siglen));
	}
}

static void test_keys_generate_rejects_bad_arguments(void **state)
{
	struct fx *f = *state;
	struct store_oauth_key r;
	char err[256], cn[KEYS_CN_MAX + 2];

	assert_int_equal(keys_generate(f->dir, "HS256", "x", &r, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "unknown signing algorithm 'HS256'"));
	assert_int_equal(keys_generate(f->dir, "rs256", "x", &r, err, sizeof(err)), -1);
	assert_int_equal(keys_generate(f->dir, NULL, "x", &r, err, sizeof(err)), -1);
	assert_int_equal(keys_generate(f->dir, "ES256", "", &r, err, sizeof(err)), -1);
	memset(cn, 'a', sizeof(cn) - 1);
	cn[sizeof(cn) - 1] = '\0';
	assert_int_equal(keys_generate(f->dir, "ES256", cn, &r, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "issuer name"));
	assert_int_equal(keys_generate("/nonexistent/dir", "ES256", "x", &r, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot create /nonexistent/dir/keys"));
}

static void test_keys_discard_removes_the_private_key(void **state)
{
	struct fx *f = *state;
	struct store_oauth_key r;
	char path[256];

	gen(f, "EdDSA", &r);
	snprintf(path, sizeof(path), "%s/keys/oauth-%s.pem", f->dir, r.kid);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(keys_discard(f->dir, r.kid), 0);
	assert_int_not_equal(access(path, F_OK), 0);
	assert_int_equal(keys_discard(f->dir, r.kid), 0);
	assert_int_equal(keys_discard(f->dir, "../x"), -1);
}

static int first_audit(void *ctx, const struct store_audit *a)
{
	struct store_audit *out = ctx;

	if (out->id == 0 || a->id < out->id)
		*out = *a;
	return 0;
}

static void test_keys_ensure_current_creates_the_first_key_current(void **state)
{
	struct fx *f = *state;
	struct store_oauth_key r, again, cur;
	struct store_audit a;
	bool created = false;
	char err[256] = "";

	assert_int_equal(keys_ensure_current(f->s, f->dir, NULL, "rtcauth token issuer x", "test",
					     &r, &created, err, sizeof(err)),
			 0);
	assert_true(created);
	assert_string_equal(r.alg, KEYS_DEFAULT_ALG);
	assert_int_equal(store_oauth_key_current(f->s, &cur), STORE_OK);
	assert_string_equal(cur.kid, r.kid);
	assert_int_equal(cur.state, STORE_OAUTH_KEY_CURRENT);
	/* the second call finds it */
	assert_int_equal(keys_ensure_current(f->s, f->dir, "ES256", "rtcauth token issuer x", NULL,
					     &again, &created, err, sizeof(err)),
			 0);
	assert_false(created);
	assert_string_equal(again.kid, r.kid);
	assert_string_equal(again.alg, "RS256");
	/* only the creation was audited */
	memset(&a, 0, sizeof(a));
	assert_int_equal(store_audit_list(f->s, 10, first_audit, &a), STORE_OK);
	assert_string_equal(a.action, "oauth.key.new");
	assert_string_equal(a.target, r.kid);
	assert_string_equal(a.actor, "test");
	assert_int_equal(a.id, 1);
}

static void test_keys_ensure_current_fails_when_the_private_key_is_gone(void **state)
{
	struct fx *f = *state;
	struct store_oauth_key r;
	bool created;
	char err[256] = "";

	assert_int_equal(keys_ensure_current(f->s, f->dir, "ES256", "issuer", NULL, &r, &created,
					     err, sizeof(err)),
			 0);
	assert_int_equal(keys_discard(f->dir, r.kid), 0);
	assert_int_equal(keys_ensure_current(f->s, f->dir, "ES256", "issuer", NULL, &r, &created,
					     err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "cannot open the private key"));
}

struct thr {
	struct keys *k;
	const struct store_oauth_key *r;
	int ok;
};

static void *signer(void *arg)
{
	struct thr *t = arg;
	char msg[32];

	for (int i = 0; i < 40; i++) {
		uint8_t sig[KEYS_SIG_MAX];
		size_t siglen = sizeof(sig);

		snprintf(msg, sizeof(msg), "message %d", i);
		if (keys_sign(t->k, t->r->kid, t->r->alg, msg, strlen(msg), sig, &siglen) ==
			KEYS_OK &&
		    verify(t->r, msg, strlen(msg), sig, siglen))
			t->ok++;
	}
	return NULL;
}

static void test_keys_sign_is_safe_from_several_threads(void **state)
{
	struct fx *f = *state;
	struct store_oauth_key ec, ed;
	pthread_t th[4];
	struct thr t[4];

	gen(f, "ES256", &ec);
	gen(f, "EdDSA", &ed);
	for (int i = 0; i < 4; i++) {
		t[i] = (struct thr){f->k, i % 2 ? &ec : &ed, 0};
		assert_int_equal(pthread_create(&th[i], NULL, signer, &t[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].ok, 40);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	    T(test_keys_rs256_generates_signs_and_verifies),
	    T(test_keys_ps256_generates_signs_and_verifies_with_salt_32),
	    T(test_keys_es256_signature_is_64_byte_p1363),
	    T(test_keys_eddsa_signature_is_64_bytes),
	    T(test_keys_rs256_is_deterministic_pkcs1),
	    T(test_keys_sign_enforces_the_pinned_algorithm),
	    T(test_keys_sign_refuses_unknown_and_unsafe_key_ids),
	    T(test_keys_refuses_a_key_file_readable_by_others),
	    T(test_keys_refuses_a_symlinked_or_garbage_key_file),
	    T(test_keys_sign_refuses_a_too_small_buffer),
	    T(test_keys_es256_keys_signing_in_turn_use_their_own_key),
	    T(test_keys_generate_rejects_bad_arguments),
	    T(test_keys_discard_removes_the_private_key),
	    T(test_keys_ensure_current_creates_the_first_key_current),
	    T(test_keys_ensure_current_fails_when_the_private_key_is_gone),
	    T(test_keys_sign_is_safe_from_several_threads),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
