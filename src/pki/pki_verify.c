/*
 * Client certificates (pki.h pki_verify_client): the chain to a trusted
 * root at the given time, revocation (our serials in the store; other CAs'
 * certificates against the [pki] crl_file CRLs, reloaded when a file
 * changes, and their AIA OCSP responder), then the user the certificate
 * names ([pki] map order) who must exist and be enabled.
 *
 * Must never: answer OK when revocation could not be decided (a store or
 * responder outage, an out-of-date CRL), map a name the certificate does
 * not carry, trust a CRL whose signature is not its issuer's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "core/log.h"
#include "pki/pki_int.h"
#include "store/store_pki.h"

#define CRL_FILE_MAX (16 * 1024 * 1024) /* bytes: bigger CRL files are refused */

/* ---- CRL files ---------------------------------------------------------- */

struct crl_file {
	char path[PATH_MAX];
	struct timespec mtime;
	off_t size;
	STACK_OF(X509_CRL) * crls; /* NULL when the file could not be read */
};

static struct {
	pthread_mutex_t mu;
	struct crl_file f[CONFIG_MAX_PKI_FILES];
	size_t n;
} crlf = {PTHREAD_MUTEX_INITIALIZER, {{{0}, {0, 0}, 0, NULL}}, 0};

/* Read every CRL of a PEM or DER file. NULL with err on failure. */
static STACK_OF(X509_CRL) * read_crls(const char *path, off_t size, char *err, size_t errlen)
{
	STACK_OF(X509_CRL) *sk = NULL;
	BIO *bio;
	X509_CRL *c;

	if (size > CRL_FILE_MAX) {
		snprintf(err, errlen, "[pki] crl_file %s is larger than 16 MB", path);
		return NULL;
	}
	bio = BIO_new_file(path, "rb");
	if (!bio) {
		snprintf(err, errlen, "cannot read [pki] crl_file %s: %s", path, strerror(errno));
		ERR_clear_error();
		return NULL;
	}
	sk = sk_X509_CRL_new_null();
	while (sk && (c = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) != NULL)
		if (!sk_X509_CRL_push(sk, c))
			X509_CRL_free(c);
	if (sk && sk_X509_CRL_num(sk) == 0) { /* not PEM: one DER CRL */
		(void)BIO_reset(bio);
		c = d2i_X509_CRL_bio(bio, NULL);
		if (c && !sk_X509_CRL_push(sk, c))
			X509_CRL_free(c);
	}
	ERR_clear_error();
	BIO_free(bio);
	if (!sk || sk_X509_CRL_num(sk) == 0) {
		snprintf(err, errlen, "[pki] crl_file %s holds no CRL (PEM or DER)", path);
		sk_X509_CRL_pop_free(sk, X509_CRL_free);
		return NULL;
	}
	return sk;
}

static int crlfile_read(struct crl_file *f, char *err, size_t errlen)
{
	struct stat st;
	STACK_OF(X509_CRL) * sk;

	if (stat(f->path, &st) < 0) {
		snprintf(err, errlen, "cannot read [pki] crl_file %s: %s", f->path,
			 strerror(errno));
		return -1;
	}
	sk = read_crls(f->path, st.st_size, err, errlen);
	if (!sk)
		return -1;
	sk_X509_CRL_pop_free(f->crls, X509_CRL_free);
	f->crls = sk;
	f->mtime = st.st_mtim;
	f->size = st.st_size;
	return 0;
}

int pki_crlfiles_load(const struct config *cfg, char *err, size_t errlen)
{
	int rc = 0;

	pthread_mutex_lock(&crlf.mu);
	for (size_t i = 0; i < cfg->n_pki_crl_file && rc == 0; i++) {
		struct crl_file *f = &crlf.f[crlf.n++];
		snprintf(f->path, sizeof(f->path), "%s", cfg->pki_crl_file[i]);
		rc = crlfile_read(f, err, errlen);
	}
	pthread_mutex_unlock(&crlf.mu);
	return rc;
}

struct pki_crlset {
	struct crl_file f[CONFIG_MAX_PKI_FILES];
	size_t n;
};

void pki_crlfiles_discard(struct pki_crlset *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->n; i++)
		sk_X509_CRL_pop_free(set->f[i].crls, X509_CRL_free);
	free(set);
}

struct pki_crlset *pki_crlfiles_prepare(const struct config *cfg, char *err, size_t errlen)
{
	struct pki_crlset *set = calloc(1, sizeof(*set));

	if (!set) {
		snprintf(err, errlen, "out of memory reading [pki] crl_file");
		return NULL;
	}
	for (size_t i = 0; i < cfg->n_pki_crl_file && i < CONFIG_MAX_PKI_FILES; i++) {
		struct crl_file *f = &set->f[set->n++];

		snprintf(f->path, sizeof(f->path), "%s", cfg->pki_crl_file[i]);
		if (crlfile_read(f, err, errlen) < 0) {
			pki_crlfiles_discard(set);
			return NULL;
		}
	}
	return set;
}

void pki_crlfiles_commit(struct pki_crlset *set)
{
	pthread_mutex_lock(&crlf.mu);
	for (size_t i = 0; i < crlf.n; i++)
		sk_X509_CRL_pop_free(crlf.f[i].crls, X509_CRL_free);
	memcpy(crlf.f, set->f, set->n * sizeof(set->f[0]));
	crlf.n = set->n;
	pthread_mutex_unlock(&crlf.mu);
	free(set); /* its CRLs belong to crlf now */
}

void pki_crlfiles_free(void)
{
	pthread_mutex_lock(&crlf.mu);
	for (size_t i = 0; i < crlf.n; i++) {
		sk_X509_CRL_pop_free(crlf.f[i].crls, X509_CRL_free);
		memset(&crlf.f[i], 0, sizeof(crlf.f[i]));
	}
	crlf.n = 0;
	pthread_mutex_unlock(&crlf.mu);
}

/* Reload a file that changed since it was read; a file that cannot be read
 * now keeps its last good CRLs (logged). Under crlf.mu. */
static void crlfile_refresh(struct crl_file *f)
{
	struct stat st;
	char err[512], pbuf[LOG_VAL_MAX], ebuf[LOG_VAL_MAX];

	if (stat(f->path, &st) == 0 && st.st_mtim.tv_sec == f->mtime.tv_sec &&
	    st.st_mtim.tv_nsec == f->mtime.tv_nsec && st.st_size == f->size)
		return;
	if (crlfile_read(f, err, sizeof(err)) < 0)
		log_warn("pki.crl_file", "path=%s reason=%s action=kept_last",
			 log_val(str_cstr(f->path), pbuf, sizeof(pbuf)),
			 log_val(str_cstr(err), ebuf, sizeof(ebuf)));
	else
		log_info("pki.crl_file", "path=%s crls=%d action=reloaded",
			 log_val(str_cstr(f->path), pbuf, sizeof(pbuf)), sk_X509_CRL_num(f->crls));
}

int pki_crlfiles_check(X509 *cert, X509 *issuer, int64_t now, bool *found)
{
	EVP_PKEY *ik = X509_get0_pubkey(issuer);
	int rc = 0;

	*found = false;
	pthread_mutex_lock(&crlf.mu);
	for (size_t i = 0; i < crlf.n && rc == 0; i++) {
		struct crl_file *f = &crlf.f[i];
		crlfile_refresh(f);
		for (int j = 0; f->crls && j < sk_X509_CRL_num(f->crls); j++) {
			X509_CRL *crl = sk_X509_CRL_value(f->crls, j);
			X509_REVOKED *r = NULL;
			const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
			time_t t = (time_t)now;

			if (X509_NAME_cmp(X509_CRL_get_issuer(crl),
					  X509_get_subject_name(issuer)) != 0 ||
			    !ik || X509_CRL_verify(crl, ik) != 1) {
				ERR_clear_error();
				continue; /* another CA's CRL, or not signed by this issuer */
			}
			*found = true;
			if (X509_CRL_get0_by_cert(crl, &r, cert) == 1 && r) {
				rc = 1;
				break;
			}
			/* an out-of-date CRL cannot say "not revoked" */
			if (next && X509_cmp_time(next, &t) < 0)
				rc = -1;
		}
	}
	pthread_mutex_unlock(&crlf.mu);
	return rc;
}

/* ---- mapping ------------------------------------------------------------ */

/* "sip:user@host" from user@host (or a sip: URI), checked by the store's
 * normaliser; 0 or -1. */
static int to_uri(const char *in, size_t len, char out[STORE_URI_MAX])
{
	char buf[STORE_URI_MAX], user[STORE_URI_MAX], domain[STORE_URI_MAX];

	if (len == 0 || len >= sizeof(buf) || memchr(in, '\0', len))
		return -1;
	memcpy(buf, in, len);
	buf[len] = '\0';
	if (strncasecmp(buf, "sips:", 5) != 0 && strncasecmp(buf, "sip:", 4) != 0 &&
	    strchr(buf, ':'))
		return -1; /* another scheme (mailto:, https:, ...) */
	return store_uri_normalise(buf, out, user, domain) == STORE_OK ? 0 : -1;
}

static int from_asn1(const ASN1_STRING *s, char out[STORE_URI_MAX])
{
	return s ? to_uri((const char *)ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s),
			  out)
		 : -1;
}

/* The first SAN of the kind: a URI sip:, a UPN otherName, an email. */
static int map_san(X509 *x, enum config_pki_map kind, char out[STORE_URI_MAX])
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	int rc = -1;

	for (int i = 0; gens && rc < 0 && i < sk_GENERAL_NAME_num(gens); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		if (kind == CONFIG_PKI_MAP_SAN_URI && g->type == GEN_URI) {
			const ASN1_STRING *s = g->d.uniformResourceIdentifier;
			if (ASN1_STRING_length(s) > 4 &&
			    strncasecmp((const char *)ASN1_STRING_get0_data(s), "sip", 3) == 0)
				rc = from_asn1(s, out);
		} else if (kind == CONFIG_PKI_MAP_EMAIL && g->type == GEN_EMAIL) {
			rc = from_asn1(g->d.rfc822Name, out);
		} else if (kind == CONFIG_PKI_MAP_UPN && g->type == GEN_OTHERNAME &&
			   OBJ_obj2nid(g->d.otherName->type_id) == NID_ms_upn &&
			   g->d.otherName->value->type == V_ASN1_UTF8STRING) {
			rc = from_asn1(g->d.otherName->value->value.utf8string, out);
		}
	}
	GENERAL_NAMES_free(gens);
	return rc;
}

/* The subject's (last) CN: sip:user@domain or user@domain. */
static int map_cn(X509 *x, char out[STORE_URI_MAX])
{
	X509_NAME *n = X509_get_subject_name(x);
	int i = -1, last = -1;
	unsigned char *utf8 = NULL;
	int len, rc;

	while ((i = X509_NAME_get_index_by_NID(n, NID_commonName, i)) >= 0)
		last = i;
	if (last < 0)
		return -1;
	len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, last)));
	rc = len > 0 ? to_uri((const char *)utf8, (size_t)len, out) : -1;
	OPENSSL_free(utf8);
	return rc;
}

/*
 * The user the certificate names: the first [pki] map source the
 * certificate carries decides (a later one is not tried when that user is
 * unknown: two names must not be shopped between).
 */
static int map_user(struct store *s, X509 *leaf, char *user_uri, size_t cap)
{
	char uri[STORE_URI_MAX];
	struct store_user *u;
	int rc = -1;

	for (size_t i = 0; i < pki_g.n_map && rc < 0; i++)
		rc = pki_g.map[i] == CONFIG_PKI_MAP_CN ? map_cn(leaf, uri)
						       : map_san(leaf, pki_g.map[i], uri);
	if (rc < 0)
		return PKI_VERIFY_NO_USER;
	u = malloc(sizeof(*u));
	if (!u)
		return PKI_VERIFY_UNAVAILABLE;
	rc = store_user_get(s, uri, u);
	if (rc == STORE_OK)
		rc = u->enabled ? PKI_VERIFY_OK : PKI_VERIFY_NO_USER;
	else if (rc == STORE_NOTFOUND || rc == STORE_INVALID)
		rc = PKI_VERIFY_NO_USER;
	else
		rc = PKI_VERIFY_UNAVAILABLE;
	if (rc == PKI_VERIFY_OK && (size_t)snprintf(user_uri, cap, "%s", u->uri) >= cap)
		rc = PKI_VERIFY_UNAVAILABLE;
	free(u);
	return rc;
}

/* ---- verification ------------------------------------------------------- */

/* The chain to a trusted root at now: *out (the verified chain, a new
 * stack) or an error. */
static int verify_chain(X509 *leaf, STACK_OF(X509) * chain, int64_t now, STACK_OF(X509) * *out)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int rc = PKI_VERIFY_UNTRUSTED, e;

	*out = NULL;
	if (!ctx || X509_STORE_CTX_init(ctx, pki_g.trust, leaf, chain) != 1) {
		X509_STORE_CTX_free(ctx);
		return PKI_VERIFY_UNAVAILABLE;
	}
	X509_STORE_CTX_set_time(ctx, 0, (time_t)now);
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
	if (X509_verify_cert(ctx) == 1) {
		*out = X509_STORE_CTX_get1_chain(ctx);
		rc = *out ? PKI_VERIFY_OK : PKI_VERIFY_UNAVAILABLE;
	} else {
		e = X509_STORE_CTX_get_error(ctx);
		if (e == X509_V_ERR_CERT_HAS_EXPIRED || e == X509_V_ERR_CERT_NOT_YET_VALID)
			rc = PKI_VERIFY_EXPIRED;
	}
	X509_STORE_CTX_free(ctx);
	ERR_clear_error();
	return rc;
}

/* Revocation of cert (issued by issuer, a CA other than ours). */
static int check_external(X509 *cert, X509 *issuer, int64_t now, bool leaf)
{
	bool found = false;
	int rc = pki_crlfiles_check(cert, issuer, now, &found);

	if (rc > 0)
		return PKI_VERIFY_REVOKED;
	if (rc < 0)
		return PKI_VERIFY_UNAVAILABLE;
	if (leaf && pki_g.ocsp) {
		rc = pki_ocsp_check(cert, issuer, now);
		if (rc <= 0)
			return rc;
	}
	return PKI_VERIFY_OK;
}

/*
 * A certificate of our issuing CA: its record in the store decides. A
 * serial without a record is revoked for the built-in CA (PROTOCOLS.md §3:
 * revoking may delete the record); for an imported CA it may have been
 * issued elsewhere: 1, and the external checks decide.
 */
static int check_ours(struct store *s, X509 *leaf)
{
	char serial[PKI_SERIAL_MAX];
	int64_t revoked_at;
	int rc;

	if (pki_serial_of(X509_get0_serialNumber(leaf), serial) < 0)
		return PKI_VERIFY_REVOKED;
	rc = store_cert_revoked_at(s, serial, &revoked_at);
	if (rc == STORE_OK)
		return revoked_at ? PKI_VERIFY_REVOKED : PKI_VERIFY_OK;
	if (rc == STORE_NOTFOUND)
		return pki_g.builtin ? PKI_VERIFY_REVOKED : 1;
	return PKI_VERIFY_UNAVAILABLE;
}

static int check_revocation(struct store *s, STACK_OF(X509) * vchain, int64_t now)
{
	int n = sk_X509_num(vchain), rc = PKI_VERIFY_OK;

	/* each certificate but the anchor, by its issuer */
	for (int i = 0; i + 1 < n && rc == PKI_VERIFY_OK; i++) {
		X509 *c = sk_X509_value(vchain, i), *issuer = sk_X509_value(vchain, i + 1);
		rc = 1;
		if (i == 0 && X509_cmp(issuer, pki_g.ca) == 0)
			rc = check_ours(s, c);
		if (rc == 1)
			rc = check_external(c, issuer, now, i == 0);
	}
	return rc;
}

/* pki_verify_client without the user mapping when user_uri is NULL. */
static int verify(struct store *s, X509 *leaf, STACK_OF(X509) * chain, int64_t now, char *user_uri,
		  size_t cap)
{
	STACK_OF(X509) *vchain = NULL;
	int rc;

	if (user_uri && cap)
		user_uri[0] = '\0';
	if (!leaf || !s)
		return PKI_VERIFY_UNTRUSTED;
	pthread_rwlock_rdlock(&pki_lock);
	if (!pki_g.trust) {
		rc = PKI_VERIFY_UNAVAILABLE;
		goto out;
	}
	rc = verify_chain(leaf, chain, now, &vchain);
	if (rc == PKI_VERIFY_OK)
		rc = check_revocation(s, vchain, now);
	if (rc == PKI_VERIFY_OK && user_uri)
		rc = map_user(s, leaf, user_uri, cap);
out:
	pthread_rwlock_unlock(&pki_lock);
	sk_X509_pop_free(vchain, X509_free);
	return rc;
}

int pki_verify_client(struct store *s, X509 *leaf, STACK_OF(X509) * chain, int64_t now,
		      char *user_uri, size_t cap)
{
	if (!user_uri)
		return PKI_VERIFY_UNTRUSTED;
	return verify(s, leaf, chain, now, user_uri, cap);
}

int pki_verify_cert(struct store *s, X509 *leaf, STACK_OF(X509) * chain, int64_t now)
{
	int rc = verify(s, leaf, chain, now, NULL, 0);

	/* its callers retry later on UNAVAILABLE; the query goes on meanwhile */
	return rc == PKI_VERIFY_PENDING ? PKI_VERIFY_UNAVAILABLE : rc;
}
