/*
 * The issuing CA's key (see vault_pki.h). This file loads or makes it and
 * signs what src/pki prepared; it never writes the key anywhere but its own
 * 0600 file, never logs it, never hands it out.
 */
#include "vault/vault_pki.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "core/file.h"
#include "core/x509.h"

#define BACKDATE 300 /* seconds */

static EVP_PKEY *ca_key;
static X509 *ca_cert_ref; /* the certificate the key belongs to */

static void ossl_err(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char buf[256] = "";

	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	snprintf(err, errlen, "%s%s%s", what, buf[0] ? ": " : "", buf);
}

/* All certificates of a PEM file: the first in *first, the rest in *rest. */
static int read_certs(const char *path, X509 **first, STACK_OF(X509) * *rest, char *err,
		      size_t errlen)
{
	BIO *bio = BIO_new_file(path, "r");
	X509 *x;

	*first = NULL;
	*rest = NULL;
	if (!bio) {
		snprintf(err, errlen, "cannot read the CA certificate %s: %s", path,
			 strerror(errno));
		ERR_clear_error();
		return -1;
	}
	*rest = sk_X509_new_null();
	while (*rest && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (!*first)
			*first = x;
		else if (!sk_X509_push(*rest, x))
			X509_free(x);
	}
	ERR_clear_error();
	BIO_free(bio);
	if (!*first) {
		snprintf(err, errlen, "no PEM certificate in %s; [pki] ca_cert must be a PEM file",
			 path);
		sk_X509_pop_free(*rest, X509_free);
		*rest = NULL;
		return -1;
	}
	return 0;
}

static EVP_PKEY *read_key(const char *path, char *err, size_t errlen)
{
	struct stat st;
	BIO *bio;
	EVP_PKEY *k;

	if (stat(path, &st) < 0) {
		snprintf(err, errlen, "cannot read the CA key %s: %s", path, strerror(errno));
		return NULL;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen,
			 "the CA key %s is readable by others (mode %03o); chmod 600 it and make "
			 "rtcauthd's user its owner",
			 path, (unsigned)(st.st_mode & 0777));
		return NULL;
	}
	bio = BIO_new_file(path, "r");
	if (!bio) {
		snprintf(err, errlen, "cannot read the CA key %s: %s", path, strerror(errno));
		ERR_clear_error();
		return NULL;
	}
	/* an empty passphrase: an encrypted key fails instead of prompting */
	k = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"");
	BIO_free(bio);
	if (!k) {
		char what[PATH_MAX + 64];
		snprintf(what, sizeof(what), "no unencrypted PEM private key in %s", path);
		ossl_err(err, errlen, what);
	}
	return k;
}

/* Is x usable as our issuing CA with key k? 0, or -1 with err. */
static int check_ca(X509 *x, EVP_PKEY *k, const char *path, char *err, size_t errlen)
{
	if (X509_check_private_key(x, k) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "the CA key does not belong to the certificate %s", path);
		return -1;
	}
	if (X509_check_ca(x) < 1 || ((X509_get_extension_flags(x) & EXFLAG_KUSAGE) &&
				     !(X509_get_key_usage(x) & KU_KEY_CERT_SIGN))) {
		snprintf(err, errlen,
			 "%s is not a CA certificate (it needs basicConstraints CA:TRUE and "
			 "keyUsage keyCertSign)",
			 path);
		return -1;
	}
	if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0) {
		snprintf(err, errlen, "the CA certificate %s has expired; renew it", path);
		return -1;
	}
	return 0;
}

/* ---- the built-in CA ---------------------------------------------------- */

static X509 *make_ca_cert(EVP_PKEY *key, const char *domain)
{
	X509 *x = X509_new();
	char cn[65];

	/* CN at most 64 characters (RFC 5280 ub-common-name) */
	snprintf(cn, sizeof(cn), "rtcauth issuing CA %s", domain);
	if (!x || X509_set_version(x, X509_VERSION_3) != 1 || x509_random_serial(x) < 0 ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -BACKDATE) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), VAULT_PKI_CA_DAYS, 0, NULL) ||
	    X509_set_pubkey(x, key) != 1 ||
	    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
				       (const unsigned char *)cn, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(x)) != 1 ||
	    x509_add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") < 0 ||
	    x509_add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
	    x509_add_ext(x, x, NID_subject_key_identifier, "hash") < 0 ||
	    x509_add_ext(x, x, NID_authority_key_identifier, "keyid:always") < 0 ||
	    X509_sign(x, key, EVP_sha256()) <= 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static int write_pem(const char *path, EVP_PKEY *key, X509 *x, char *err, size_t errlen)
{
	/* a key passes only through a secure-heap BIO (cleared on free) */
	BIO *bio = BIO_new(key ? BIO_s_secmem() : BIO_s_mem());
	char *data = NULL;
	long len;
	int rc = -1;

	if (!bio || (key ? PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)
			 : PEM_write_bio_X509(bio, x)) != 1) {
		ossl_err(err, errlen, "cannot encode the issuing CA");
		goto out;
	}
	len = BIO_get_mem_data(bio, &data);
	if (len <= 0 || !data) {
		snprintf(err, errlen, "cannot encode %s", path);
		goto out;
	}
	rc = file_write_atomic(path, data, (size_t)len, key ? 0600 : 0644, err, errlen);
out:
	BIO_free(bio);
	return rc;
}

/* Make the built-in CA (key first, so a half-made CA is never a certificate
 * without its key). */
static int make_builtin(const char *key_path, const char *crt_path, const char *domain, char *err,
			size_t errlen)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *x = key ? make_ca_cert(key, domain) : NULL;
	int rc = -1;

	if (!x)
		ossl_err(err, errlen, "cannot make the issuing CA");
	else if (write_pem(key_path, key, NULL, err, errlen) == 0 &&
		 write_pem(crt_path, NULL, x, err, errlen) == 0)
		rc = 0;
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

static int builtin_paths(const char *state_dir, char *dir, char *key, char *crt, char *lock)
{
	int a = snprintf(dir, PATH_MAX, "%s/pki", state_dir);
	int b = snprintf(key, PATH_MAX, "%s/pki/ca.key", state_dir);
	int c = snprintf(crt, PATH_MAX, "%s/pki/ca.crt", state_dir);
	int d = snprintf(lock, PATH_MAX, "%s/pki/.lock", state_dir);

	return a < 0 || b < 0 || c < 0 || d < 0 || d >= PATH_MAX ? -1 : 0;
}

/* Under the lock: make the CA when neither file exists; both must then exist. */
static int ensure_builtin(const char *state_dir, const char *domain, char *key_path, char *crt_path,
			  char *err, size_t errlen)
{
	char dir[PATH_MAX], lock[PATH_MAX];
	struct stat ks, cs;
	bool have_key, have_crt;
	int fd, rc = -1;

	if (builtin_paths(state_dir, dir, key_path, crt_path, lock) < 0) {
		snprintf(err, errlen, "[server] state_dir is too long");
		return -1;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s; check [server] state_dir", dir,
			 strerror(errno));
		return -1;
	}
	fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || flock(fd, LOCK_EX) < 0) {
		snprintf(err, errlen, "cannot lock %s: %s", lock, strerror(errno));
		goto out;
	}
	have_key = stat(key_path, &ks) == 0;
	have_crt = stat(crt_path, &cs) == 0;
	if (!have_key && !have_crt)
		rc = make_builtin(key_path, crt_path, domain, err, errlen);
	else if (have_key != have_crt)
		snprintf(
		    err, errlen,
		    "%s exists without %s; restore the missing file from a backup (or remove "
		    "both to make a new issuing CA, which invalidates every certificate issued)",
		    have_key ? key_path : crt_path, have_key ? crt_path : key_path);
	else
		rc = 0;
out:
	if (fd >= 0)
		close(fd); /* releases the lock */
	return rc;
}

int vault_pki_init(const char *state_dir, const char *domain, const char *ca_cert,
		   const char *ca_key_path, X509 **ca, STACK_OF(X509) * *extra, char *err,
		   size_t errlen)
{
	char key_path[PATH_MAX], crt_path[PATH_MAX];
	STACK_OF(X509) *rest = NULL;
	X509 *x = NULL;
	EVP_PKEY *k = NULL;

	*ca = NULL;
	if (extra)
		*extra = NULL;
	if ((ca_cert && *ca_cert) != (ca_key_path && *ca_key_path)) {
		snprintf(err, errlen, "[pki] ca_cert and ca_key go together: set both, or neither");
		return -1;
	}
	if (ca_cert && *ca_cert) {
		snprintf(key_path, sizeof(key_path), "%s", ca_key_path);
		snprintf(crt_path, sizeof(crt_path), "%s", ca_cert);
	} else if (ensure_builtin(state_dir, domain, key_path, crt_path, err, errlen) < 0) {
		return -1;
	}
	if (read_certs(crt_path, &x, &rest, err, errlen) < 0)
		return -1;
	k = read_key(key_path, err, errlen);
	if (!k || check_ca(x, k, crt_path, err, errlen) < 0)
		goto fail;
	vault_pki_shutdown();
	ca_key = k;
	ca_cert_ref = x;
	X509_up_ref(x);
	*ca = x;
	if (extra)
		*extra = rest;
	else
		sk_X509_pop_free(rest, X509_free);
	return 0;
fail:
	EVP_PKEY_free(k);
	X509_free(x);
	sk_X509_pop_free(rest, X509_free);
	return -1;
}

void vault_pki_shutdown(void)
{
	EVP_PKEY_free(ca_key); /* OpenSSL clears private key material on free */
	X509_free(ca_cert_ref);
	ca_key = NULL;
	ca_cert_ref = NULL;
}

int vault_pki_sign_cert(X509 *x)
{
	if (!ca_key || !x ||
	    X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(ca_cert_ref)) != 0)
		return -1;
	if (X509_sign(x, ca_key, EVP_sha256()) <= 0) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

int vault_pki_sign_crl(X509_CRL *crl)
{
	if (!ca_key || !crl ||
	    X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca_cert_ref)) != 0)
		return -1;
	if (X509_CRL_sign(crl, ca_key, EVP_sha256()) <= 0) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}
