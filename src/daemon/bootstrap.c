/*
 * First-run bootstrap: state directory, local CA, server certificate, pool
 * secret. See bootstrap.h for the layout. Everything goes through the
 * OpenSSL 3 API (no openssl CLI). Private keys only pass through secure-heap
 * BIOs and are written 0600 to a temporary file that is renamed into place.
 * This file must never print or log key material.
 */
#include "daemon/bootstrap.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/file.h"
#include "core/x509.h"
#include "core/config.h"
#include "vault/vault.h"

#define CA_DAYS	    3650
#define SERVER_DAYS 730
#define BACKDATE    300 /* seconds: tolerate peers whose clocks run a little behind */

struct paths {
	char ca_dir[PATH_MAX];
	char ca_key[PATH_MAX];
	char ca_crt[PATH_MAX];
	char tls_dir[PATH_MAX];
	char srv_key[PATH_MAX];
	char srv_crt[PATH_MAX];
};

/* Append OpenSSL's reason for the last failure to err (after a message). */
static void ossl_err(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char buf[256] = "";

	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	snprintf(err, errlen, "%s%s%s", what, buf[0] ? ": " : "", buf);
}

static int join(char *out, const char *dir, const char *rel)
{
	int n = snprintf(out, PATH_MAX, "%s/%s", dir, rel);
	return n < 0 || n >= PATH_MAX ? -1 : 0;
}

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* ---- directories ------------------------------------------------------ */

/* mkdir -p; the last component gets mode, parents 0755 (as mkdir -p would). */
static int mkdir_p(const char *path, mode_t mode, char *err, size_t errlen)
{
	char buf[PATH_MAX];
	struct stat st;
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf)) {
		snprintf(err, errlen, "state directory path '%s' is empty or too long", path);
		return -1;
	}
	memcpy(buf, path, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		if (buf[i] == '/' && buf[i - 1] == '/')
			continue;
		char c = buf[i];
		buf[i] = '\0';
		if (mkdir(buf, c == '\0' ? mode : 0755) < 0 && errno != EEXIST) {
			snprintf(err, errlen,
				 "cannot create directory %s: %s; create it or set [server] "
				 "state_dir to a writable place",
				 buf, strerror(errno));
			return -1;
		}
		if (stat(buf, &st) < 0) {
			snprintf(err, errlen, "cannot create directory %s: %s", buf,
				 strerror(errno));
			return -1;
		}
		if (!S_ISDIR(st.st_mode)) {
			snprintf(err, errlen,
				 "cannot create directory %s: %s is not a directory; set [server] "
				 "state_dir to a writable place",
				 path, buf);
			return -1;
		}
		buf[i] = c;
	}
	/* Created or found: either way the last component must be private. */
	if (stat(path, &st) < 0) {
		snprintf(err, errlen, "cannot stat %s: %s", path, strerror(errno));
		return -1;
	}
	if ((st.st_mode & 07777) != mode && chmod(path, mode) < 0) {
		snprintf(err, errlen, "cannot chmod %o %s: %s", (unsigned)mode, path,
			 strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- files ------------------------------------------------------------ */

/* Write the PEM produced into bio (memory or secure-memory BIO) to path. */
static int write_bio(const char *path, BIO *bio, mode_t mode, char *err, size_t errlen)
{
	char *data = NULL;
	long len = BIO_get_mem_data(bio, &data);

	if (len <= 0 || !data) {
		snprintf(err, errlen, "cannot encode %s", path);
		return -1;
	}
	return file_write_atomic(path, data, (size_t)len, mode, err, errlen);
}

static int write_key(const char *path, EVP_PKEY *key, char *err, size_t errlen)
{
	BIO *bio = BIO_new(BIO_s_secmem());
	int rc = -1;

	if (!bio || PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1)
		ossl_err(err, errlen, "cannot encode private key");
	else
		rc = write_bio(path, bio, 0600, err, errlen);
	BIO_free(bio); /* secure BIO: cleared on free */
	return rc;
}

static int write_certs(const char *path, X509 *leaf, X509 *ca, char *err, size_t errlen)
{
	BIO *bio = BIO_new(BIO_s_mem());
	int rc = -1;

	if (!bio || PEM_write_bio_X509(bio, leaf) != 1 || (ca && PEM_write_bio_X509(bio, ca) != 1))
		ossl_err(err, errlen, "cannot encode certificate");
	else
		rc = write_bio(path, bio, 0644, err, errlen);
	BIO_free(bio);
	return rc;
}

static X509 *read_cert(const char *path, char *err, size_t errlen)
{
	BIO *bio = BIO_new_file(path, "r");
	X509 *x = NULL;

	if (!bio) {
		snprintf(err, errlen, "cannot open certificate %s: %s", path, strerror(errno));
		ERR_clear_error();
		return NULL;
	}
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (!x) {
		char what[PATH_MAX + 64];
		snprintf(what, sizeof(what), "no PEM certificate in %s", path);
		ossl_err(err, errlen, what);
	}
	return x;
}

static EVP_PKEY *read_key(const char *path, char *err, size_t errlen)
{
	BIO *bio = BIO_new_file(path, "r");
	EVP_PKEY *k = NULL;

	if (!bio) {
		snprintf(err, errlen, "cannot open private key %s: %s", path, strerror(errno));
		ERR_clear_error();
		return NULL;
	}
	/* An empty passphrase callback: an encrypted key fails instead of prompting. */
	k = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"");
	BIO_free(bio);
	if (!k) {
		char what[PATH_MAX + 96];
		snprintf(what, sizeof(what), "no unencrypted PEM private key in %s", path);
		ossl_err(err, errlen, what);
	}
	return k;
}

/* ---- certificates ----------------------------------------------------- */

/* CN limited to 64 characters (RFC 5280 ub-common-name); longer ones are cut. */
static int set_cn(X509 *x, const char *prefix, const char *name)
{
	char cn[65];
	X509_NAME *n = X509_get_subject_name(x);

	snprintf(cn, sizeof(cn), "%s%s", prefix, name);
	return X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
					  0) == 1
		   ? 0
		   : -1;
}

static int add_dns(GENERAL_NAMES *gens, const char *name)
{
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_IA5STRING *s = ASN1_IA5STRING_new();

	if (!gn || !s || ASN1_STRING_set(s, name, -1) != 1) {
		GENERAL_NAME_free(gn);
		ASN1_IA5STRING_free(s);
		return -1;
	}
	GENERAL_NAME_set0_value(gn, GEN_DNS, s);
	if (!sk_GENERAL_NAME_push(gens, gn)) {
		GENERAL_NAME_free(gn);
		return -1;
	}
	return 0;
}

static int add_ip(GENERAL_NAMES *gens, const char *ip)
{
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_OCTET_STRING *s = a2i_IPADDRESS(ip);

	if (!gn || !s) {
		GENERAL_NAME_free(gn);
		ASN1_OCTET_STRING_free(s);
		return -1;
	}
	GENERAL_NAME_set0_value(gn, GEN_IPADD, s);
	if (!sk_GENERAL_NAME_push(gens, gn)) {
		GENERAL_NAME_free(gn);
		return -1;
	}
	return 0;
}

/* SAN built from the API, not from a config string: no name can inject fields. */
static int add_san(X509 *x, const struct config *cfg)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	int rc = -1;

	if (!gens || add_dns(gens, cfg->fqdn) < 0)
		goto out;
	if (strcmp(cfg->domain, cfg->fqdn) != 0 && add_dns(gens, cfg->domain) < 0)
		goto out;
	if (add_ip(gens, "127.0.0.1") < 0 || add_ip(gens, "::1") < 0)
		goto out;
	if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) == 1)
		rc = 0;
out:
	GENERAL_NAMES_free(gens);
	return rc;
}

/* A certificate with the common fields; issuer NULL = self-signed. */
static X509 *new_cert(EVP_PKEY *key, long days)
{
	X509 *x = X509_new();

	if (!x || X509_set_version(x, X509_VERSION_3) != 1 || x509_random_serial(x) < 0 ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -BACKDATE) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, NULL) ||
	    X509_set_pubkey(x, key) != 1) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static X509 *make_ca(const struct config *cfg, EVP_PKEY *key)
{
	X509 *x = new_cert(key, CA_DAYS);

	if (!x || set_cn(x, "rtcauth local CA ", cfg->fqdn) < 0 ||
	    X509_set_issuer_name(x, X509_get_subject_name(x)) != 1 ||
	    x509_add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
	    x509_add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
	    x509_add_ext(x, x, NID_subject_key_identifier, "hash") < 0 ||
	    x509_add_ext(x, x, NID_authority_key_identifier, "keyid:always") < 0 ||
	    X509_sign(x, key, EVP_sha256()) <= 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static X509 *make_server(const struct config *cfg, EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key)
{
	X509 *x = new_cert(key, SERVER_DAYS);

	if (!x || set_cn(x, "", cfg->fqdn) < 0 ||
	    X509_set_issuer_name(x, X509_get_subject_name(ca)) != 1 ||
	    x509_add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    x509_add_ext(x, ca, NID_key_usage, "critical,digitalSignature,keyAgreement") < 0 ||
	    x509_add_ext(x, ca, NID_ext_key_usage, "serverAuth,clientAuth") < 0 ||
	    x509_add_ext(x, ca, NID_subject_key_identifier, "hash") < 0 ||
	    x509_add_ext(x, ca, NID_authority_key_identifier, "keyid:always") < 0 ||
	    add_san(x, cfg) < 0 || X509_sign(x, ca_key, EVP_sha256()) <= 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static EVP_PKEY *new_key(void)
{
	return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/*
 * Load the local CA, or make it if ca.crt is missing. ca.crt is written
 * after ca.key, so its presence means the pair is complete.
 */
static int ensure_ca(const struct config *cfg, const struct paths *p, X509 **ca, EVP_PKEY **key,
		     char *err, size_t errlen)
{
	*ca = NULL;
	*key = NULL;
	if (exists(p->ca_crt)) {
		if (bootstrap_check_cert(p->ca_crt, p->ca_key, err, errlen) < 0)
			return -1;
		*ca = read_cert(p->ca_crt, err, errlen);
		*key = *ca ? read_key(p->ca_key, err, errlen) : NULL;
		if (!*key) {
			X509_free(*ca);
			*ca = NULL;
			return -1;
		}
		return 0;
	}
	if (mkdir_p(p->ca_dir, 0700, err, errlen) < 0)
		return -1;
	*key = new_key();
	*ca = *key ? make_ca(cfg, *key) : NULL;
	if (!*ca) {
		ossl_err(err, errlen, "cannot make the local CA certificate");
		goto fail;
	}
	if (write_key(p->ca_key, *key, err, errlen) < 0 ||
	    write_certs(p->ca_crt, *ca, NULL, err, errlen) < 0)
		goto fail;
	return 0;
fail:
	X509_free(*ca);
	EVP_PKEY_free(*key);
	*ca = NULL;
	*key = NULL;
	return -1;
}

static int issue_server(const struct config *cfg, const struct paths *p, char *err, size_t errlen)
{
	X509 *ca = NULL, *leaf = NULL;
	EVP_PKEY *ca_key = NULL, *key = NULL;
	int rc = -1;

	if (ensure_ca(cfg, p, &ca, &ca_key, err, errlen) < 0)
		return -1;
	if (mkdir_p(p->tls_dir, 0700, err, errlen) < 0)
		goto out;
	key = new_key();
	leaf = key ? make_server(cfg, key, ca, ca_key) : NULL;
	if (!leaf) {
		ossl_err(err, errlen, "cannot make the server certificate");
		goto out;
	}
	/* Key first: server.crt present means the pair is complete. */
	if (write_key(p->srv_key, key, err, errlen) < 0 ||
	    write_certs(p->srv_crt, leaf, ca, err, errlen) < 0)
		goto out;
	rc = 0;
out:
	X509_free(leaf);
	EVP_PKEY_free(key);
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	return rc;
}

/* The default server certificate has expired (or will within a day). */
static bool server_cert_expired(const char *path)
{
	char err[64];
	X509 *x = read_cert(path, err, sizeof(err));
	bool expired = false;

	if (x) {
		time_t soon = time(NULL) + 86400;
		expired = X509_cmp_time(X509_get0_notAfter(x), &soon) < 0;
	}
	X509_free(x);
	return expired;
}

static int ensure_tls(const struct config *cfg, const struct paths *p, char *err, size_t errlen)
{
	bool dflt = strcmp(cfg->tls_cert, p->srv_crt) == 0 && strcmp(cfg->tls_key, p->srv_key) == 0;

	if (!dflt) {
		if (!exists(cfg->tls_cert)) {
			snprintf(err, errlen,
				 "[sip] tls_cert %s does not exist; install the certificate there, "
				 "or remove tls_cert and tls_key to use a generated one",
				 cfg->tls_cert);
			return -1;
		}
		if (!exists(cfg->tls_key)) {
			snprintf(err, errlen,
				 "[sip] tls_key %s does not exist; install the private key there, "
				 "or remove tls_cert and tls_key to use a generated one",
				 cfg->tls_key);
			return -1;
		}
	} else if (!exists(p->srv_crt) || server_cert_expired(p->srv_crt)) {
		if (issue_server(cfg, p, err, errlen) < 0)
			return -1;
	} else if (!exists(p->srv_key)) {
		snprintf(err, errlen,
			 "%s exists but its key %s is missing; remove %s to have a new pair made",
			 p->srv_crt, p->srv_key, p->srv_crt);
		return -1;
	}
	return bootstrap_check_cert(cfg->tls_cert, cfg->tls_key, err, errlen);
}

int bootstrap_state(const struct config *cfg, char *err, size_t errlen)
{
	struct paths p;
	char sub[PATH_MAX + 96];

	if (join(p.ca_dir, cfg->state_dir, "ca") < 0 ||
	    join(p.ca_key, cfg->state_dir, "ca/ca.key") < 0 ||
	    join(p.ca_crt, cfg->state_dir, "ca/ca.crt") < 0 ||
	    join(p.tls_dir, cfg->state_dir, "tls") < 0 ||
	    join(p.srv_key, cfg->state_dir, "tls/server.key") < 0 ||
	    join(p.srv_crt, cfg->state_dir, "tls/server.crt") < 0) {
		snprintf(err, errlen, "[server] state_dir %s is too long", cfg->state_dir);
		return -1;
	}
	if (mkdir_p(cfg->state_dir, 0700, err, errlen) < 0)
		return -1;
	if (ensure_tls(cfg, &p, err, errlen) < 0)
		return -1;
	if (vault_bootstrap_secret(cfg->state_dir, sub, sizeof(sub)) < 0) {
		snprintf(err, errlen, "%s", sub);
		return -1;
	}
	return 0;
}

int bootstrap_check_cert(const char *cert, const char *key, char *err, size_t errlen)
{
	struct stat st;
	X509 *x = NULL;
	EVP_PKEY *k = NULL;
	int rc = -1;

	if (stat(key, &st) == 0 && (st.st_mode & S_IROTH)) {
		snprintf(err, errlen,
			 "private key %s is readable by every user (mode %03o); chmod 600 it", key,
			 (unsigned)(st.st_mode & 0777));
		return -1;
	}
	x = read_cert(cert, err, errlen);
	if (!x)
		return -1;
	k = read_key(key, err, errlen);
	if (!k)
		goto out;
	if (X509_check_private_key(x, k) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "private key %s does not match certificate %s", key, cert);
		goto out;
	}
	if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0) {
		snprintf(err, errlen, "certificate %s has expired; renew it", cert);
		goto out;
	}
	if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0) {
		snprintf(err, errlen, "certificate %s is not valid yet; check the clock", cert);
		goto out;
	}
	rc = 0;
out:
	X509_free(x);
	EVP_PKEY_free(k);
	return rc;
}
