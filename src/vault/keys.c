/*
 * OAuth signing keys (see keys.h): generation with a self-signed
 * certificate, the private key files, and a thread-safe cache of loaded keys
 * that signs JWS inputs.
 *
 * The certificate is self-signed rather than issued by the bootstrap CA: a
 * partner trusts the token issuer's certificate itself (pinned in its
 * configuration or fetched from our metadata), never a chain, so a CA adds
 * nothing, and the CA's private key then need not be opened to roll a key
 * over.
 *
 * Must never: log or print key material, leave PEM text of a private key in
 * memory that is not wiped, write a private key file readable by others.
 */
#include "vault/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/file.h"
#include "core/x509.h"
#include "core/md.h"
#include "core/secmem.h"
#include "core/tlocal.h"

#define KEY_FILE_MAX (64 * 1024) /* a PEM private key is a few KiB at most */
#define BACKDATE     300	 /* seconds: partners whose clocks run a little behind */
#define KID_LEN	     16

/* ---- helpers ---- */

static void ossl_err(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char buf[256] = "";

	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	snprintf(err, errlen, "%s%s%s", what, buf[0] ? ": " : "", buf);
}

bool keys_alg_valid(const char *alg)
{
	return alg && (strcmp(alg, "RS256") == 0 || strcmp(alg, "PS256") == 0 ||
		       strcmp(alg, "ES256") == 0 || strcmp(alg, "EdDSA") == 0);
}

static bool alg_is_rsa(const char *alg)
{
	return alg[0] == 'R' || alg[0] == 'P';
}

/* base64url without padding (RFC 7515 §2) of n bytes into out (cap bytes). */
static int b64url(const uint8_t *in, size_t n, char *out, size_t cap)
{
	char tmp[128];
	int len;

	if (4 * ((n + 2) / 3) + 1 > sizeof(tmp))
		return -1;
	len = EVP_EncodeBlock((unsigned char *)tmp, in, (int)n);
	while (len > 0 && tmp[len - 1] == '=')
		len--;
	if (len < 0 || (size_t)len >= cap)
		return -1;
	for (int i = 0; i < len; i++)
		out[i] = tmp[i] == '+' ? '-' : tmp[i] == '/' ? '_' : tmp[i];
	out[len] = '\0';
	return 0;
}

static int key_path(char *out, size_t cap, const char *state_dir, const char *kid)
{
	int n = kid ? snprintf(out, cap, "%s/keys/oauth-%s.pem", state_dir, kid)
		    : snprintf(out, cap, "%s/keys", state_dir);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* The kid names a file: base64url characters only. */
static bool kid_safe(const char *kid)
{
	size_t n = kid ? strnlen(kid, STORE_OAUTH_KID_MAX) : 0;

	if (n == 0 || n >= STORE_OAUTH_KID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = kid[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
	}
	return true;
}

/* ---- key files ---- */

/* <state_dir>/keys exists, is a directory and is 0700. */
static int keys_dir(const char *state_dir, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	struct stat st;

	if (key_path(dir, sizeof(dir), state_dir, NULL) < 0) {
		snprintf(err, errlen, "state directory path too long: %s", state_dir);
		return -1;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s (check state_dir and its permissions)",
			 dir, strerror(errno));
		return -1;
	}
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s is not a directory; move it away", dir);
		return -1;
	}
	if ((st.st_mode & 07777) != 0700 && chmod(dir, 0700) < 0) {
		snprintf(err, errlen, "cannot make %s mode 0700: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

static int write_key(const char *path, EVP_PKEY *key, char *err, size_t errlen)
{
	BIO *bio = BIO_new(BIO_s_secmem()); /* cleared on free */
	char *data = NULL;
	long len;
	int rc = -1;

	if (!bio || PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1) {
		ossl_err(err, errlen, "cannot encode the private key");
		goto out;
	}
	len = BIO_get_mem_data(bio, &data);
	if (len <= 0 || !data) {
		snprintf(err, errlen, "cannot encode the private key");
		goto out;
	}
	rc = file_write_atomic(path, data, (size_t)len, 0600, err, errlen);
out:
	BIO_free(bio);
	return rc;
}

/* Read a private key file: regular, not a link, not readable by others. */
static EVP_PKEY *read_key(const char *path, char *err, size_t errlen)
{
	EVP_PKEY *pk = NULL;
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	BIO *bio;
	int fd;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open the private key %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    st.st_size > KEY_FILE_MAX) {
		snprintf(err, errlen, "%s is not a private key file (empty, too big or special)",
			 path);
		goto out;
	}
	if (st.st_mode & 0077) {
		snprintf(err, errlen, "%s is readable by others (mode %04o); chmod 600 it", path,
			 (unsigned)(st.st_mode & 07777));
		goto out;
	}
	buf = malloc((size_t)st.st_size);
	if (!buf) {
		snprintf(err, errlen, "out of memory reading %s", path);
		goto out;
	}
	while (len < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + len, (size_t)st.st_size - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	bio = BIO_new_mem_buf(buf, (int)len);
	pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	if (!pk)
		ossl_err(err, errlen, "cannot read the private key");
out:
	if (buf) {
		secmem_wipe(buf, (size_t)st.st_size);
		free(buf);
	}
	close(fd);
	return pk;
}

/* Does pk have the type alg signs with? */
static bool key_fits(EVP_PKEY *pk, const char *alg)
{
	char group[32];

	if (alg_is_rsa(alg))
		return EVP_PKEY_is_a(pk, "RSA") && EVP_PKEY_get_bits(pk) >= 2048;
	if (strcmp(alg, "ES256") == 0)
		return EVP_PKEY_is_a(pk, "EC") &&
		       EVP_PKEY_get_group_name(pk, group, sizeof(group), NULL) == 1 &&
		       (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0);
	return EVP_PKEY_is_a(pk, "ED25519");
}

int keys_discard(const char *state_dir, const char *kid)
{
	char path[PATH_MAX];

	if (!kid_safe(kid) || key_path(path, sizeof(path), state_dir, kid) < 0)
		return -1;
	return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
}

/* ---- generation ---- */

static EVP_PKEY *new_key(const char *alg)
{
	if (alg_is_rsa(alg))
		return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	if (strcmp(alg, "ES256") == 0)
		return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
}

static X509 *self_signed(EVP_PKEY *key, const char *cn)
{
	X509 *x = X509_new();
	X509_NAME *name = x ? X509_get_subject_name(x) : NULL;

	if (!x || X509_set_version(x, X509_VERSION_3) != 1 || x509_random_serial(x) < 0 ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -BACKDATE) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), KEYS_CERT_DAYS, 0, NULL) ||
	    X509_set_pubkey(x, key) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
				       0) != 1 ||
	    X509_set_issuer_name(x, name) != 1 ||
	    x509_add_ext(x, x, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    x509_add_ext(x, x, NID_key_usage, "critical,digitalSignature") < 0 ||
	    x509_add_ext(x, x, NID_subject_key_identifier, "hash") < 0 ||
	    /* Ed25519 signs without a separate digest */
	    X509_sign(x, key, EVP_PKEY_is_a(key, "ED25519") ? NULL : EVP_sha256()) <= 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* cert_pem, x5t, x5t#S256 and kid of the record from the certificate. */
static int describe_cert(X509 *x, struct store_oauth_key *out)
{
	uint8_t sha1[20], sha256[32];
	unsigned char *der = NULL;
	BIO *bio = NULL;
	char *pem = NULL;
	long pem_len;
	int der_len, rc = -1;

	der_len = i2d_X509(x, &der);
	if (der_len <= 0 || !EVP_Digest(der, (size_t)der_len, sha1, NULL, EVP_sha1(), NULL) ||
	    !EVP_Digest(der, (size_t)der_len, sha256, NULL, EVP_sha256(), NULL) ||
	    b64url(sha1, sizeof(sha1), out->x5t, sizeof(out->x5t)) < 0 ||
	    b64url(sha256, sizeof(sha256), out->x5t_s256, sizeof(out->x5t_s256)) < 0)
		goto out;
	memcpy(out->kid, out->x5t_s256, KID_LEN);
	out->kid[KID_LEN] = '\0';
	bio = BIO_new(BIO_s_mem());
	if (!bio || PEM_write_bio_X509(bio, x) != 1)
		goto out;
	pem_len = BIO_get_mem_data(bio, &pem);
	if (pem_len <= 0 || (size_t)pem_len >= sizeof(out->cert_pem))
		goto out;
	memcpy(out->cert_pem, pem, (size_t)pem_len);
	out->cert_pem[pem_len] = '\0';
	rc = 0;
out:
	OPENSSL_free(der);
	BIO_free(bio);
	return rc;
}

int keys_generate(const char *state_dir, const char *alg, const char *issuer_cn,
		  struct store_oauth_key *out, char *err, size_t errlen)
{
	char path[PATH_MAX];
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (!keys_alg_valid(alg)) {
		snprintf(err, errlen,
			 "unknown signing algorithm '%s' (use RS256, PS256, ES256 or "
			 "EdDSA)",
			 alg ? alg : "");
		return -1;
	}
	if (!issuer_cn || !*issuer_cn || strlen(issuer_cn) > KEYS_CN_MAX) {
		snprintf(err, errlen, "the issuer name for the certificate must have 1 to %d bytes",
			 KEYS_CN_MAX);
		return -1;
	}
	if (keys_dir(state_dir, err, errlen) < 0)
		return -1;
	key = new_key(alg);
	/* a kid starting with '-' would read as an option on rtcauthctl's
	 * command line: sign the certificate again (new serial, new
	 * thumbprint; one time in 64) until it does not */
	for (int tries = 0; tries < 32; tries++) {
		X509_free(cert);
		cert = key ? self_signed(key, issuer_cn) : NULL;
		if (!cert) {
			ossl_err(err, errlen,
				 key ? "cannot make the signing certificate"
				     : "cannot generate the signing key");
			goto out;
		}
		if (describe_cert(cert, out) < 0) {
			ossl_err(err, errlen, "cannot encode the signing certificate");
			goto out;
		}
		if (out->kid[0] != '-')
			break;
	}
	if (out->kid[0] == '-') {
		snprintf(err, errlen, "cannot make a signing certificate with a usable key id");
		goto out;
	}
	snprintf(out->alg, sizeof(out->alg), "%s", alg);
	out->state = STORE_OAUTH_KEY_NEXT;
	out->created = (int64_t)time(NULL);
	if (key_path(path, sizeof(path), state_dir, out->kid) < 0) {
		snprintf(err, errlen, "state directory path too long: %s", state_dir);
		goto out;
	}
	rc = write_key(path, key, err, errlen);
out:
	if (rc < 0)
		memset(out, 0, sizeof(*out));
	X509_free(cert);
	EVP_PKEY_free(key); /* OpenSSL clears private key material on free */
	return rc;
}

/* ---- cache and signing ---- */

struct keys_entry {
	char kid[STORE_OAUTH_KID_MAX];
	char alg[STORE_OAUTH_ALG_MAX];
	EVP_PKEY *pk;
};

struct keys {
	char dir[PATH_MAX];
	pthread_mutex_t mu; /* guards v and n; held only to look up or insert */
	struct keys_entry v[KEYS_CACHE_MAX];
	size_t n;
};

int keys_load(const char *state_dir, struct keys **out, char *err, size_t errlen)
{
	struct keys *k;

	*out = NULL;
	if (!state_dir || strlen(state_dir) >= sizeof(k->dir)) {
		snprintf(err, errlen, "state directory path missing or too long");
		return -1;
	}
	k = calloc(1, sizeof(*k));
	if (!k) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(k->dir, sizeof(k->dir), "%s", state_dir);
	if (pthread_mutex_init(&k->mu, NULL) != 0) {
		free(k);
		snprintf(err, errlen, "cannot create a mutex");
		return -1;
	}
	*out = k;
	return 0;
}

void keys_free(struct keys *k)
{
	if (!k)
		return;
	for (size_t i = 0; i < k->n; i++)
		EVP_PKEY_free(k->v[i].pk);
	pthread_mutex_destroy(&k->mu);
	free(k);
}

/* A reference to kid's key (caller frees), from the cache or loaded now. */
static int get_key(struct keys *k, const char *kid, const char *alg, EVP_PKEY **pk, char *err,
		   size_t errlen)
{
	char path[PATH_MAX];
	EVP_PKEY *fresh;
	int rc = KEYS_OK;

	*pk = NULL;
	if (!keys_alg_valid(alg)) {
		snprintf(err, errlen, "unknown signing algorithm");
		return KEYS_BADALG;
	}
	if (!kid_safe(kid) || key_path(path, sizeof(path), k->dir, kid) < 0) {
		snprintf(err, errlen, "invalid key id");
		return KEYS_NOKEY;
	}
	pthread_mutex_lock(&k->mu);
	for (size_t i = 0; i < k->n; i++) {
		if (strcmp(k->v[i].kid, kid) != 0)
			continue;
		if (strcmp(k->v[i].alg, alg) != 0) {
			snprintf(err, errlen, "key %s is pinned to %s, not %s", kid, k->v[i].alg,
				 alg);
			rc = KEYS_BADALG;
		} else if (EVP_PKEY_up_ref(k->v[i].pk) == 1) {
			*pk = k->v[i].pk;
		} else {
			rc = KEYS_FAIL;
		}
		pthread_mutex_unlock(&k->mu);
		return rc;
	}
	pthread_mutex_unlock(&k->mu);

	/* Load outside the lock; another thread may do the same: the first
	 * insert wins, the other copy is freed. */
	fresh = read_key(path, err, errlen);
	if (!fresh)
		return KEYS_NOKEY;
	if (!key_fits(fresh, alg)) {
		snprintf(err, errlen, "the private key of %s is not a %s key", kid, alg);
		EVP_PKEY_free(fresh);
		return KEYS_BADALG;
	}
	pthread_mutex_lock(&k->mu);
	for (size_t i = 0; i < k->n; i++) {
		if (strcmp(k->v[i].kid, kid) == 0) {
			EVP_PKEY_free(fresh);
			fresh = k->v[i].pk;
			goto ref;
		}
	}
	if (k->n == KEYS_CACHE_MAX) {
		/* oldest first out: only the current key signs, older ones are idle */
		EVP_PKEY_free(k->v[0].pk);
		memmove(&k->v[0], &k->v[1], sizeof(k->v[0]) * (KEYS_CACHE_MAX - 1));
		k->n--;
	}
	snprintf(k->v[k->n].kid, sizeof(k->v[0].kid), "%s", kid);
	snprintf(k->v[k->n].alg, sizeof(k->v[0].alg), "%s", alg);
	k->v[k->n].pk = fresh;
	k->n++;
ref:
	if (EVP_PKEY_up_ref(fresh) == 1)
		*pk = fresh;
	else
		rc = KEYS_FAIL;
	pthread_mutex_unlock(&k->mu);
	return rc;
}

int keys_preload(struct keys *k, const char *kid, const char *alg, char *err, size_t errlen)
{
	EVP_PKEY *pk;
	int rc = get_key(k, kid, alg, &pk, err, errlen);

	EVP_PKEY_free(pk);
	return rc;
}

/* ECDSA DER (OpenSSL) -> r || s, 32 bytes each (RFC 7518 §3.4). */
static int der_to_p1363(const uint8_t *der, size_t len, uint8_t *out)
{
	const unsigned char *p = der;
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
	const BIGNUM *r, *s;
	int ok;

	if (!sig)
		return -1;
	ECDSA_SIG_get0(sig, &r, &s);
	ok = BN_bn2binpad(r, out, 32) == 32 && BN_bn2binpad(s, out + 32, 32) == 32;
	ECDSA_SIG_free(sig);
	return ok ? 0 : -1;
}

/*
 * The signing context of the calling thread, for one key and algorithm at
 * a time: EVP_PKEY_sign_init (and the padding of RS256 / PS256) once, then
 * EVP_PKEY_sign over a SHA-256 digest per signature, as `openssl speed`
 * does. EVP_DigestSign set a context up and copied it at every call: ~7 us
 * of a ~28 us ES256 signature. The thread holds a reference to the key
 * while it is cached (so the pointer cannot be reused by another key); a
 * different key or algorithm replaces it; both go at thread end. EdDSA
 * signs the message itself (no digest first) and keeps EVP_DigestSign.
 */
enum sig_kind { SIG_ES256 = 1, SIG_RS256, SIG_PS256 };

struct signer {
	EVP_PKEY *pk;
	enum sig_kind kind;
	EVP_PKEY_CTX *pctx;
};

static void *signer_new(void)
{
	return calloc(1, sizeof(struct signer));
}

static void signer_free(void *p)
{
	struct signer *e = p;

	EVP_PKEY_CTX_free(e->pctx);
	EVP_PKEY_free(e->pk);
	free(e);
}

static struct tlocal signers = TLOCAL_INIT(signer_new, signer_free);

static bool signer_init(EVP_PKEY_CTX *c, enum sig_kind kind)
{
	if (EVP_PKEY_sign_init(c) != 1)
		return false;
	switch (kind) {
	case SIG_RS256:
		return EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) == 1 &&
		       EVP_PKEY_CTX_set_signature_md(c, md_sha256()) == 1;
	case SIG_PS256: /* RFC 7518 §3.5: MGF1 with SHA-256, salt as long as the hash */
		return EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PSS_PADDING) == 1 &&
		       EVP_PKEY_CTX_set_signature_md(c, md_sha256()) == 1 &&
		       EVP_PKEY_CTX_set_rsa_mgf1_md(c, md_sha256()) == 1 &&
		       EVP_PKEY_CTX_set_rsa_pss_saltlen(c, 32) == 1;
	default:
		return true;
	}
}

static EVP_PKEY_CTX *sign_ctx(EVP_PKEY *pk, enum sig_kind kind)
{
	struct signer *e;
	EVP_PKEY_CTX *c;

	if (!(e = tlocal_get(&signers)))
		return NULL;
	if (e->pk == pk && e->kind == kind && e->pctx)
		return e->pctx;
	EVP_PKEY_CTX_free(e->pctx);
	EVP_PKEY_free(e->pk);
	e->pctx = NULL;
	e->pk = NULL;
	c = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
	if (!c || !md_sha256() || !signer_init(c, kind) || EVP_PKEY_up_ref(pk) != 1) {
		EVP_PKEY_CTX_free(c);
		return NULL;
	}
	e->pk = pk;
	e->kind = kind;
	e->pctx = c;
	return c;
}

/* SHA-256 of in, signed with the thread's context; ES256 as r || s. */
static int sign_prehashed(EVP_PKEY *pk, enum sig_kind kind, const void *in, size_t len,
			  uint8_t *sig, size_t *siglen)
{
	EVP_MD_CTX *h = md_thread_ctx();
	EVP_PKEY_CTX *pctx = sign_ctx(pk, kind);
	uint8_t md[EVP_MAX_MD_SIZE], der[80];
	unsigned int mdlen = 0;
	bool ec = kind == SIG_ES256;
	size_t n = ec ? sizeof(der) : *siglen;

	if (!h || !pctx || (ec && *siglen < 64) || EVP_DigestInit_ex2(h, md_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(h, in, len) != 1 || EVP_DigestFinal_ex(h, md, &mdlen) != 1 ||
	    mdlen != 32 || EVP_PKEY_sign(pctx, ec ? der : sig, &n, md, mdlen) != 1 ||
	    (ec && der_to_p1363(der, n, sig) < 0)) {
		ERR_clear_error();
		return KEYS_FAIL;
	}
	*siglen = ec ? 64 : n;
	return KEYS_OK;
}

static int sign_with(EVP_PKEY *pk, const char *alg, const void *in, size_t len, uint8_t *sig,
		     size_t *siglen)
{
	EVP_MD_CTX *ctx;
	size_t need = 0;
	int rc = KEYS_FAIL;

	if (strcmp(alg, "ES256") == 0)
		return sign_prehashed(pk, SIG_ES256, in, len, sig, siglen);
	if (strcmp(alg, "RS256") == 0)
		return sign_prehashed(pk, SIG_RS256, in, len, sig, siglen);
	if (strcmp(alg, "PS256") == 0)
		return sign_prehashed(pk, SIG_PS256, in, len, sig, siglen);
	if (strcmp(alg, "EdDSA") != 0) /* get_key checked it: never here */
		return KEYS_BADALG;
	/* EdDSA: the message itself, one context per call (the key is shared) */
	ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestSignInit(ctx, NULL, NULL, NULL, pk) != 1)
		goto out;
	if (EVP_DigestSign(ctx, NULL, &need, in, len) != 1 || need > *siglen)
		goto out;
	need = *siglen;
	if (EVP_DigestSign(ctx, sig, &need, in, len) != 1)
		goto out;
	*siglen = need;
	rc = KEYS_OK;
out:
	if (rc != KEYS_OK)
		ERR_clear_error();
	EVP_MD_CTX_free(ctx);
	return rc;
}

int keys_sign(struct keys *k, const char *kid, const char *alg, const void *in, size_t len,
	      uint8_t *sig, size_t *siglen)
{
	char err[256];
	EVP_PKEY *pk;
	int rc;

	if (!k || !sig || !siglen || (!in && len))
		return KEYS_FAIL;
	rc = get_key(k, kid, alg, &pk, err, sizeof(err));
	if (rc != KEYS_OK)
		return rc;
	rc = sign_with(pk, alg, in, len, sig, siglen);
	EVP_PKEY_free(pk);
	return rc;
}

/* ---- ensure a current key ---- */

int keys_ensure_current(struct store *s, const char *state_dir, const char *alg,
			const char *issuer_cn, const char *actor, struct store_oauth_key *out,
			bool *created, char *err, size_t errlen)
{
	struct keys *k = NULL;
	char detail[128];
	int rc;

	*created = false;
	rc = store_oauth_key_current(s, out);
	if (rc == STORE_NOTFOUND) {
		if (keys_generate(state_dir, alg ? alg : KEYS_DEFAULT_ALG, issuer_cn, out, err,
				  errlen) < 0)
			return -1;
		out->state = STORE_OAUTH_KEY_CURRENT;
		snprintf(detail, sizeof(detail), "alg=%s state=current x5t=%s", out->alg, out->x5t);
		rc = store_begin(s);
		if (rc == STORE_OK)
			rc = store_oauth_key_add(s, out);
		if (rc == STORE_OK && actor)
			rc = store_audit_add(s, actor, "oauth.key.new", out->kid, "local", detail);
		if (rc == STORE_OK)
			rc = store_commit(s);
		if (rc != STORE_OK) {
			store_rollback(s);
			keys_discard(state_dir, out->kid);
		}
		if (rc == STORE_CONFLICT) /* another process made one meanwhile: use it */
			rc = store_oauth_key_current(s, out);
		else if (rc == STORE_OK)
			*created = true;
	}
	if (rc != STORE_OK) {
		snprintf(err, errlen, "cannot get the current signing key: %s (%s)",
			 store_strerror(rc), store_errmsg(s));
		return -1;
	}
	if (keys_load(state_dir, &k, err, errlen) < 0)
		return -1;
	rc = keys_preload(k, out->kid, out->alg, err, errlen);
	keys_free(k);
	return rc == KEYS_OK ? 0 : -1;
}
