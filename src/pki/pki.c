/*
 * The PKI (see pki.h): the issuing CA's certificate and trust store,
 * issuance from a CSR under our policy, revocation of our own serials and
 * the CRL that publishes it. The CA key stays in src/vault/vault_pki.c:
 * this file prepares a certificate or a CRL and asks the vault to sign it.
 *
 * Must never: copy a name from a CSR into a certificate (only its public
 * key is used), accept a key outside the policy, answer "not revoked" when
 * the store could not be read.
 */
#include "pki/pki.h"

#include <ctype.h>
#include <errno.h>
#include <strings.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "core/x509.h"
#include "pki/pki_int.h"
#include "store/store_pki.h"
#include "vault/vault_pki.h"

#define PKI_BACKDATE	    300 /* seconds: clients whose clocks run a little behind */
#define PKI_SERIAL_TRIES    8
#define PKI_RSA_MAX_BITS    8192   /* larger keys only cost us time */
#define PKI_CRL_VALIDITY    86400  /* nextUpdate = thisUpdate + 1 day */
#define PKI_CRL_REFRESH	    3600   /* a CRL is rebuilt after an hour even unchanged */
#define PKI_CRL_MAX_REVOKED 100000 /* entries; beyond that the CRL is refused */

struct pki_state pki_g;
pthread_rwlock_t pki_lock = PTHREAD_RWLOCK_INITIALIZER;

/* The last CRL built, reused while the revoked set is the same. */
static struct {
	pthread_mutex_t mu;
	unsigned char digest[32]; /* of the revoked set */
	int64_t this_update;
	unsigned char *der;
	size_t len;
} crl_cache = {PTHREAD_MUTEX_INITIALIZER, {0}, 0, NULL, 0};

static const char *const reasons[] = {
    /* RFC 5280 §5.3.1 CRLReason, by code (7 is not used) */
    "unspecified",   "keyCompromise",	     "cACompromise",	"affiliationChanged",
    "superseded",    "cessationOfOperation", "certificateHold", NULL,
    "removeFromCRL", "privilegeWithdrawn",   "aACompromise",
};
#define N_REASONS (int)(sizeof(reasons) / sizeof(reasons[0]))

/* The CRLReason code of a reason name (any case), -1 if unknown. */
static int reason_code(const char *r)
{
	if (!r || !*r)
		return 0;
	for (int i = 0; i < N_REASONS; i++)
		if (reasons[i] && strcasecmp(reasons[i], r) == 0)
			return i;
	return -1;
}

const char *pki_issue_strerror(int rc)
{
	switch (rc) {
	case PKI_OK:
		return "ok";
	case PKI_E_CSR:
		return "not a PEM PKCS#10 certificate request with a valid self-signature";
	case PKI_E_WEAK_KEY:
		return "key not allowed (RSA of 2048 to 8192 bits or EC P-256 only)";
	case PKI_E_LIFETIME:
		return "lifetime outside 8 hours .. 1 year";
	case PKI_E_STORE:
		return "the store could not record the certificate (try again)";
	default:
		return "internal error";
	}
}

const char *pki_verify_strerror(int rc)
{
	switch (rc) {
	case PKI_VERIFY_OK:
		return "ok";
	case PKI_VERIFY_UNTRUSTED:
		return "no chain to a trusted root";
	case PKI_VERIFY_EXPIRED:
		return "outside its validity period";
	case PKI_VERIFY_REVOKED:
		return "revoked";
	case PKI_VERIFY_NO_USER:
		return "names no enabled user";
	case PKI_VERIFY_UNAVAILABLE:
		return "revocation status unavailable";
	case PKI_VERIFY_PENDING:
		return "revocation status being checked (OCSP)";
	default:
		return "unknown";
	}
}

int pki_serial_of(const ASN1_INTEGER *ai, char out[PKI_SERIAL_MAX])
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(ai, NULL);
	char *hex = bn && !BN_is_negative(bn) ? BN_bn2hex(bn) : NULL;
	int rc = -1;

	out[0] = '\0';
	if (hex && strlen(hex) < PKI_SERIAL_MAX) {
		snprintf(out, PKI_SERIAL_MAX, "%s", hex);
		rc = 0;
	}
	OPENSSL_free(hex);
	BN_free(bn);
	return rc;
}

int pki_cert_serial(const X509 *x, char out[PKI_SERIAL_MAX])
{
	out[0] = '\0';
	return x ? pki_serial_of(X509_get0_serialNumber(x), out) : -1;
}

int pki_serial_normalise(const char *in, char out[PKI_SERIAL_MAX])
{
	char digits[PKI_SERIAL_MAX];
	BIGNUM *bn = NULL;
	char *hex = NULL;
	size_t n = 0;
	int rc = -1;

	out[0] = '\0';
	if (!in)
		return -1;
	/* "0A:1B..." (openssl x509 -serial, with colons) or plain hex */
	for (const char *p = in; *p; p++) {
		if (*p == ':')
			continue;
		if (!isxdigit((unsigned char)*p) || n + 1 >= sizeof(digits))
			return -1;
		digits[n++] = *p;
	}
	digits[n] = '\0';
	if (n == 0 || BN_hex2bn(&bn, digits) != (int)n)
		goto out;
	hex = BN_bn2hex(bn);
	if (hex && strlen(hex) < PKI_SERIAL_MAX) {
		snprintf(out, PKI_SERIAL_MAX, "%s", hex);
		rc = 0;
	}
out:
	OPENSSL_free(hex);
	BN_free(bn);
	return rc;
}

/* ---- start and stop ----------------------------------------------------- */

/* The CA files configured at the last pki_init / pki_reload that loaded
 * them ('' for the built-in CA), with their size and time then. */
static struct {
	char cert[PATH_MAX], key[PATH_MAX];
	struct stat cst, kst;
} ca_files;

static void crl_cache_clear(void)
{
	pthread_mutex_lock(&crl_cache.mu);
	free(crl_cache.der);
	crl_cache.der = NULL;
	crl_cache.len = 0;
	crl_cache.this_update = 0;
	pthread_mutex_unlock(&crl_cache.mu);
}

static void ca_files_note(const struct config *cfg)
{
	snprintf(ca_files.cert, sizeof(ca_files.cert), "%s", cfg->pki_ca_cert);
	snprintf(ca_files.key, sizeof(ca_files.key), "%s", cfg->pki_ca_key);
	memset(&ca_files.cst, 0, sizeof(ca_files.cst));
	memset(&ca_files.kst, 0, sizeof(ca_files.kst));
	if (cfg->pki_ca_cert[0])
		(void)stat(cfg->pki_ca_cert, &ca_files.cst);
	if (cfg->pki_ca_key[0])
		(void)stat(cfg->pki_ca_key, &ca_files.kst);
}

static bool same_file(const char *path, const struct stat *then)
{
	struct stat st;

	if (!path[0])
		return true;
	if (stat(path, &st) < 0)
		return false; /* gone: "changed", and vault_pki_init says why */
	return st.st_size == then->st_size && st.st_ino == then->st_ino &&
	       st.st_mtim.tv_sec == then->st_mtim.tv_sec &&
	       st.st_mtim.tv_nsec == then->st_mtim.tv_nsec;
}

/* Do cfg's CA settings name other files than those loaded, or have the
 * files changed since? */
static bool ca_files_changed(const struct config *cfg)
{
	return strcmp(cfg->pki_ca_cert, ca_files.cert) != 0 ||
	       strcmp(cfg->pki_ca_key, ca_files.key) != 0 ||
	       !same_file(cfg->pki_ca_cert, &ca_files.cst) ||
	       !same_file(cfg->pki_ca_key, &ca_files.kst);
}

static void state_free(void)
{
	X509_free(pki_g.ca);
	sk_X509_pop_free(pki_g.extra, X509_free);
	free(pki_g.chain_pem);
	X509_STORE_free(pki_g.trust);
	memset(&pki_g, 0, sizeof(pki_g));
	pki_crlfiles_free();
	pki_ocsp_flush();
	crl_cache_clear();
}

/* The CA then its issuers, PEM (malloc'd). */
static char *chain_pem(X509 *ca, STACK_OF(X509) * extra)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL, *out = NULL;
	long len;
	int ok = bio && PEM_write_bio_X509(bio, ca) == 1;

	for (int i = 0; ok && extra && i < sk_X509_num(extra); i++)
		ok = PEM_write_bio_X509(bio, sk_X509_value(extra, i)) == 1;
	if (ok && (len = BIO_get_mem_data(bio, &data)) > 0 && (out = malloc((size_t)len + 1))) {
		memcpy(out, data, (size_t)len);
		out[len] = '\0';
	}
	BIO_free(bio);
	return out;
}

/* Add every certificate of a PEM file to the trust store. */
static int add_roots(X509_STORE *st, const char *path, char *err, size_t errlen)
{
	BIO *bio = BIO_new_file(path, "r");
	X509 *x;
	int n = 0;

	if (!bio) {
		snprintf(err, errlen, "cannot read [pki] trusted_root %s: %s", path,
			 strerror(errno));
		ERR_clear_error();
		return -1;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (X509_STORE_add_cert(st, x) == 1)
			n++;
		X509_free(x);
	}
	ERR_clear_error();
	BIO_free(bio);
	if (n == 0) {
		snprintf(err, errlen, "[pki] trusted_root %s holds no PEM certificate", path);
		return -1;
	}
	return 0;
}

/* A trust store of ca (NULL: added later) and cfg's trusted roots, or NULL
 * with err. */
static X509_STORE *trust_new(X509 *ca, const struct config *cfg, char *err, size_t errlen)
{
	X509_STORE *st = X509_STORE_new();

	if (!st || (ca && X509_STORE_add_cert(st, ca) != 1)) {
		X509_STORE_free(st);
		snprintf(err, errlen, "out of memory making the trust store");
		return NULL;
	}
	/* our issuing CA may be an enterprise intermediate: an anchor as it is */
	X509_STORE_set_flags(st, X509_V_FLAG_PARTIAL_CHAIN);
	for (size_t i = 0; i < cfg->n_pki_trusted_root; i++)
		if (add_roots(st, cfg->pki_trusted_root[i], err, errlen) < 0) {
			X509_STORE_free(st);
			return NULL;
		}
	return st;
}

static int make_trust(const struct config *cfg, char *err, size_t errlen)
{
	pki_g.trust = trust_new(pki_g.ca, cfg, err, errlen);
	return pki_g.trust ? 0 : -1;
}

/* The settings of cfg that need no file. */
static void settings_set(const struct config *cfg)
{
	uint16_t port = cfg->n_http_listen ? cfg->http_listen[0].port : 443;

	pki_g.lifetime = cfg->pki_cert_lifetime ? cfg->pki_cert_lifetime : PKI_LIFETIME_DEFAULT;
	memcpy(pki_g.map, cfg->pki_map, sizeof(pki_g.map));
	pki_g.n_map = cfg->n_pki_map;
	pki_g.ocsp = cfg->pki_ocsp;
	if (port == 443)
		snprintf(pki_g.cdp, sizeof(pki_g.cdp), "https://%s%s", cfg->fqdn, PKI_PATH_CRL);
	else
		snprintf(pki_g.cdp, sizeof(pki_g.cdp), "https://%s:%u%s", cfg->fqdn, port,
			 PKI_PATH_CRL);
}

int pki_init(const struct config *cfg, char *err, size_t errlen)
{
	X509 *ca = NULL;
	STACK_OF(X509) *extra = NULL;
	int rc = -1;

	pthread_rwlock_wrlock(&pki_lock);
	state_free();
	if (vault_pki_init(cfg->state_dir, cfg->domain, cfg->pki_ca_cert, cfg->pki_ca_key, &ca,
			   &extra, err, errlen) < 0)
		goto out;
	pki_g.ca = ca;
	pki_g.extra = extra;
	pki_g.builtin = cfg->pki_ca_cert[0] == '\0';
	pki_g.chain_pem = chain_pem(ca, extra);
	if (!pki_g.chain_pem) {
		snprintf(err, errlen, "cannot encode the issuing CA's chain");
		goto out;
	}
	if (make_trust(cfg, err, errlen) < 0 || pki_crlfiles_load(cfg, err, errlen) < 0)
		goto out;
	settings_set(cfg);
	ca_files_note(cfg);
	rc = 0;
out:
	if (rc < 0) {
		state_free();
		vault_pki_shutdown();
	}
	pthread_rwlock_unlock(&pki_lock);
	return rc;
}

/* Swap in the CA of cfg (the vault's key with it). Under the write lock,
 * after everything else was read. 0, or -1 with err (old CA kept). */
static int ca_swap(const struct config *cfg, char *err, size_t errlen)
{
	STACK_OF(X509) *extra = NULL;
	X509 *ca = NULL;
	char *pem;

	if (vault_pki_init(cfg->state_dir, cfg->domain, cfg->pki_ca_cert, cfg->pki_ca_key, &ca,
			   &extra, err, errlen) < 0)
		return -1;
	pem = chain_pem(ca, extra);
	if (!pem) {
		/* the vault holds the new key now: put the old one back */
		char e2[256];
		X509 *old = NULL;
		STACK_OF(X509) *oextra = NULL;

		if (vault_pki_init(cfg->state_dir, cfg->domain, ca_files.cert, ca_files.key, &old,
				   &oextra, e2, sizeof(e2)) == 0) {
			X509_free(old);
			sk_X509_pop_free(oextra, X509_free);
		}
		X509_free(ca);
		sk_X509_pop_free(extra, X509_free);
		snprintf(err, errlen, "cannot encode the issuing CA's chain");
		return -1;
	}
	X509_free(pki_g.ca);
	sk_X509_pop_free(pki_g.extra, X509_free);
	free(pki_g.chain_pem);
	pki_g.ca = ca;
	pki_g.extra = extra;
	pki_g.chain_pem = pem;
	pki_g.builtin = cfg->pki_ca_cert[0] == '\0';
	crl_cache_clear(); /* signed by the old CA */
	ca_files_note(cfg);
	return 0;
}

int pki_reload(const struct config *cfg, char *err, size_t errlen)
{
	struct pki_crlset *crls = NULL;
	X509_STORE *trust;
	int rc = -1;

	/* every file read first, outside the lock: a bad one changes nothing;
	 * our CA joins the trust store once it is known */
	trust = trust_new(NULL, cfg, err, errlen);
	if (!trust || !(crls = pki_crlfiles_prepare(cfg, err, errlen))) {
		X509_STORE_free(trust);
		return -1;
	}
	pthread_rwlock_wrlock(&pki_lock);
	if (!pki_g.ca) {
		snprintf(err, errlen, "the PKI was not initialised");
		goto out;
	}
	if (ca_files_changed(cfg) && ca_swap(cfg, err, errlen) < 0)
		goto out;
	if (X509_STORE_add_cert(trust, pki_g.ca) != 1) {
		snprintf(err, errlen, "out of memory making the trust store");
		goto out;
	}
	X509_STORE_free(pki_g.trust);
	pki_g.trust = trust;
	trust = NULL;
	pki_crlfiles_commit(crls);
	crls = NULL;
	settings_set(cfg);
	rc = 0;
out:
	pthread_rwlock_unlock(&pki_lock);
	X509_STORE_free(trust);
	pki_crlfiles_discard(crls);
	if (rc == 0)
		pki_ocsp_flush(); /* answers were checked against the old trust */
	return rc;
}

void pki_shutdown(void)
{
	pthread_rwlock_wrlock(&pki_lock);
	state_free();
	vault_pki_shutdown();
	pthread_rwlock_unlock(&pki_lock);
}

X509 *pki_ca_cert(void)
{
	return pki_g.ca;
}

/* ---- issuance ----------------------------------------------------------- */

/* Our policy: RSA 2048..8192 bits or EC P-256 (RFC 5480 secp256r1). */
static int key_policy(EVP_PKEY *pk)
{
	char group[64];
	size_t glen = 0;

	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_RSA: {
		int bits = EVP_PKEY_get_bits(pk);
		return bits >= 2048 && bits <= PKI_RSA_MAX_BITS ? PKI_OK : PKI_E_WEAK_KEY;
	}
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_group_name(pk, group, sizeof(group), &glen) == 1 &&
		    (strcmp(group, SN_X9_62_prime256v1) == 0 || strcmp(group, "P-256") == 0))
			return PKI_OK;
		return PKI_E_WEAK_KEY;
	default:
		return PKI_E_WEAK_KEY;
	}
}

static X509_REQ *parse_csr(const char *pem, size_t len)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	X509_REQ *req = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;

	BIO_free(bio);
	ERR_clear_error();
	return req;
}

/* Is name (a CN, SAN URI or email) another user than uri? */
static bool names_other(const unsigned char *name, int len, const char *uri)
{
	char buf[STORE_URI_MAX], norm[STORE_URI_MAX], user[STORE_URI_MAX], domain[STORE_URI_MAX];

	if (len <= 0 || (size_t)len >= sizeof(buf) || memchr(name, '\0', (size_t)len))
		return len > 0;
	memcpy(buf, name, (size_t)len);
	buf[len] = '\0';
	if (store_uri_normalise(buf, norm, user, domain) != STORE_OK)
		return true;
	return strcmp(norm, uri) != 0;
}

bool pki_csr_names_other(const char *csr_pem, size_t csr_len, const char *uri)
{
	X509_REQ *req =
	    csr_pem && csr_len && csr_len <= PKI_CSR_MAX ? parse_csr(csr_pem, csr_len) : NULL;
	X509_NAME *subj = req ? X509_REQ_get_subject_name(req) : NULL;
	STACK_OF(X509_EXTENSION) *exts = req ? X509_REQ_get_extensions(req) : NULL;
	GENERAL_NAMES *gens = exts ? X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL) : NULL;
	bool other = false;
	int i = -1;

	while (subj && !other && (i = X509_NAME_get_index_by_NID(subj, NID_commonName, i)) >= 0) {
		unsigned char *utf8 = NULL;
		int n = ASN1_STRING_to_UTF8(&utf8,
					    X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i)));
		other = n < 0 || names_other(utf8, n, uri);
		OPENSSL_free(utf8);
	}
	for (int j = 0; gens && !other && j < sk_GENERAL_NAME_num(gens); j++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, j);
		const ASN1_STRING *v = g->type == GEN_URI     ? g->d.uniformResourceIdentifier
				       : g->type == GEN_EMAIL ? g->d.rfc822Name
							      : NULL;
		other = !v || names_other(ASN1_STRING_get0_data(v), ASN1_STRING_length(v), uri);
	}
	GENERAL_NAMES_free(gens);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	ERR_clear_error();
	return other;
}

/* subjectAltName URI:<uri>, from the API (a name cannot inject fields). */
static int add_san_uri(X509 *x, const char *uri, bool critical)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_IA5STRING *s = ASN1_IA5STRING_new();
	int rc = -1;

	if (!gens || !gn || !s || ASN1_STRING_set(s, uri, -1) != 1) {
		GENERAL_NAME_free(gn);
		ASN1_IA5STRING_free(s);
		goto out;
	}
	GENERAL_NAME_set0_value(gn, GEN_URI, s);
	if (!sk_GENERAL_NAME_push(gens, gn)) {
		GENERAL_NAME_free(gn);
		goto out;
	}
	if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, critical ? 1 : 0,
			      X509V3_ADD_DEFAULT) == 1)
		rc = 0;
out:
	GENERAL_NAMES_free(gens);
	return rc;
}

/* Printable ASCII only: an IA5String and a CN we can show anywhere. */
static bool uri_ok(const char *uri)
{
	size_t n = strnlen(uri, STORE_URI_MAX);

	if (n == 0 || n >= STORE_URI_MAX || strncmp(uri, "sip:", 4) != 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (uri[i] <= 0x20 || uri[i] >= 0x7f)
			return false;
	return true;
}

/* Everything but the serial and the signature: names from u, key from pk. */
static X509 *build_cert(const struct store_user *u, EVP_PKEY *pk, int lifetime, time_t now)
{
	X509 *x = X509_new();
	X509 *ca = pki_g.ca;
	bool rsa = EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA;
	/* RFC 5280 ub-common-name 64: a longer URI leaves the subject empty
	 * and the SAN critical (§4.1.2.6) */
	bool cn = strlen(u->uri) <= 64;
	char cdp[PKI_CDP_MAX + 8];

	snprintf(cdp, sizeof(cdp), "URI:%s", pki_g.cdp);
	if (!x || X509_set_version(x, X509_VERSION_3) != 1 ||
	    !X509_time_adj_ex(X509_getm_notBefore(x), 0, -PKI_BACKDATE, &now) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), 0, lifetime, &now) ||
	    X509_set_pubkey(x, pk) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(ca)) != 1 ||
	    (cn && X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
					      (const unsigned char *)u->uri, -1, -1, 0) != 1) ||
	    x509_add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    x509_add_ext(x, ca, NID_key_usage,
			 rsa ? "critical,digitalSignature,keyEncipherment"
			     : "critical,digitalSignature") < 0 ||
	    x509_add_ext(x, ca, NID_ext_key_usage, "clientAuth") < 0 ||
	    x509_add_ext(x, ca, NID_subject_key_identifier, "hash") < 0 ||
	    x509_add_ext(x, ca, NID_authority_key_identifier, "keyid:always") < 0 ||
	    add_san_uri(x, u->uri, !cn) < 0 ||
	    x509_add_ext(x, ca, NID_crl_distribution_points, cdp) < 0) {
		X509_free(x);
		ERR_clear_error();
		return NULL;
	}
	return x;
}

static char *pem_of(X509 *x)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL, *out = NULL;
	long len;

	if (bio && PEM_write_bio_X509(bio, x) == 1 && (len = BIO_get_mem_data(bio, &data)) > 0 &&
	    (out = malloc((size_t)len + 1))) {
		memcpy(out, data, (size_t)len);
		out[len] = '\0';
	}
	BIO_free(bio);
	return out;
}

static void subject_of(X509 *x, char *out, size_t cap)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL;
	long len = 0;

	out[0] = '\0';
	if (bio && X509_NAME_print_ex(bio, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0)
		len = BIO_get_mem_data(bio, &data);
	if (len > 0)
		snprintf(out, cap, "%.*s", (int)len, data);
	BIO_free(bio);
}

/* Sign with a fresh random serial and record it; another serial on a
 * collision. PKI_OK with rec filled, or an error. */
static int sign_and_record(struct store *s, X509 *x, const struct store_user *u,
			   struct store_cert *rec, time_t now, int lifetime)
{
	char *pem;
	int rc;

	for (int i = 0; i < PKI_SERIAL_TRIES; i++) {
		if (x509_random_serial(x) < 0 || vault_pki_sign_cert(x) < 0 ||
		    pki_serial_of(X509_get0_serialNumber(x), rec->serial) < 0)
			return PKI_E_INTERNAL;
		pem = pem_of(x);
		if (!pem || strlen(pem) >= sizeof(rec->pem)) {
			free(pem);
			return PKI_E_INTERNAL;
		}
		snprintf(rec->pem, sizeof(rec->pem), "%s", pem);
		free(pem);
		rec->user_id = u->id;
		snprintf(rec->uri, sizeof(rec->uri), "%s", u->uri);
		subject_of(x, rec->subject, sizeof(rec->subject));
		rec->not_before = (int64_t)now - PKI_BACKDATE;
		rec->not_after = (int64_t)now + lifetime;
		rec->issued = (int64_t)now;
		rc = store_cert_add(s, rec);
		if (rc == STORE_OK)
			return PKI_OK;
		if (rc != STORE_CONFLICT)
			return PKI_E_STORE;
	}
	return PKI_E_STORE;
}

int pki_issue(struct store *s, const struct store_user *u, const char *csr_pem, size_t csr_len,
	      int lifetime_s, char **chain_pem_out, char serial[PKI_SERIAL_MAX], int64_t *not_after)
{
	struct store_cert *rec = NULL;
	X509_REQ *req = NULL;
	X509 *x = NULL;
	EVP_PKEY *pk;
	time_t now = time(NULL);
	size_t a, b;
	int rc;

	*chain_pem_out = NULL;
	serial[0] = '\0';
	*not_after = 0;
	if (!csr_pem || csr_len == 0 || csr_len > PKI_CSR_MAX)
		return PKI_E_CSR;
	pthread_rwlock_rdlock(&pki_lock);
	if (lifetime_s == 0)
		lifetime_s = pki_g.lifetime;
	if (lifetime_s < PKI_LIFETIME_MIN || lifetime_s > PKI_LIFETIME_MAX) {
		rc = PKI_E_LIFETIME;
		goto out;
	}
	rc = PKI_E_INTERNAL;
	if (!pki_g.ca || !u || !uri_ok(u->uri))
		goto out;
	rc = PKI_E_CSR;
	req = parse_csr(csr_pem, csr_len);
	pk = req ? X509_REQ_get0_pubkey(req) : NULL;
	if (!pk)
		goto out;
	/* the policy first: a 16k-bit key is refused before we verify with it */
	if ((rc = key_policy(pk)) != PKI_OK)
		goto out;
	if (X509_REQ_verify(req, pk) != 1) {
		ERR_clear_error();
		rc = PKI_E_CSR;
		goto out;
	}
	rc = PKI_E_INTERNAL;
	x = build_cert(u, pk, lifetime_s, now);
	rec = calloc(1, sizeof(*rec));
	if (!x || !rec)
		goto out;
	rc = sign_and_record(s, x, u, rec, now, lifetime_s);
	if (rc != PKI_OK)
		goto out;
	a = strlen(rec->pem);
	b = strlen(pki_g.chain_pem);
	*chain_pem_out = malloc(a + b + 1);
	if (!*chain_pem_out) {
		rc = PKI_E_INTERNAL; /* recorded but not handed out: harmless */
		goto out;
	}
	memcpy(*chain_pem_out, rec->pem, a);
	memcpy(*chain_pem_out + a, pki_g.chain_pem, b + 1);
	snprintf(serial, PKI_SERIAL_MAX, "%s", rec->serial);
	*not_after = rec->not_after;
out:
	pthread_rwlock_unlock(&pki_lock);
	free(rec);
	X509_free(x);
	X509_REQ_free(req);
	return rc;
}

/* ---- revocation --------------------------------------------------------- */

int pki_revoke_serial(struct store *s, const char *serial, const char *reason)
{
	char norm[PKI_SERIAL_MAX];
	int n = 0, rc;

	if (pki_serial_normalise(serial, norm) < 0 || reason_code(reason) < 0)
		return STORE_INVALID;
	rc =
	    store_cert_revoke(s, norm, (int64_t)time(NULL),
			      reason && *reason ? reasons[reason_code(reason)] : "unspecified", &n);
	if (rc == STORE_NOTFOUND)
		return 0;
	return rc == STORE_OK ? n : rc;
}

int pki_revoke_user(struct store *s, const char *uri, const char *reason)
{
	int n = 0, rc;

	if (reason_code(reason) < 0)
		return STORE_INVALID;
	rc = store_cert_revoke_uri(s, uri, (int64_t)time(NULL),
				   reason && *reason ? reasons[reason_code(reason)] : "unspecified",
				   &n);
	return rc == STORE_OK ? n : rc;
}

bool pki_reason_valid(const char *reason)
{
	return reason_code(reason) >= 0;
}

int pki_serial_revoked(struct store *s, const char *serial)
{
	char norm[PKI_SERIAL_MAX];
	int64_t revoked_at;
	bool revoked;
	int rc;

	if (pki_serial_normalise(serial, norm) < 0)
		return 1; /* not a serial we could have issued */
	rc = store_cert_revoked_at(s, norm, &revoked_at);
	revoked = rc == STORE_OK && revoked_at != 0;
	if (rc == STORE_NOTFOUND)
		return 1; /* PROTOCOLS.md §3: a deleted record is a revoked certificate */
	if (rc != STORE_OK)
		return -1;
	return revoked ? 1 : 0;
}

/* ---- the CRL ------------------------------------------------------------ */

struct revoked_set {
	struct revoked_entry {
		char serial[PKI_SERIAL_MAX];
		int64_t when;
		int reason;
	} * v;
	size_t n, cap;
	EVP_MD_CTX *md;
	bool too_many;
};

static int collect_revoked(void *ctx, const struct store_cert *c)
{
	struct revoked_set *rs = ctx;
	struct revoked_entry *e;

	if (rs->n == PKI_CRL_MAX_REVOKED) {
		rs->too_many = true;
		return 1;
	}
	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 64;
		void *p = realloc(rs->v, cap * sizeof(*rs->v));
		if (!p)
			return 1;
		rs->v = p;
		rs->cap = cap;
	}
	e = &rs->v[rs->n++];
	snprintf(e->serial, sizeof(e->serial), "%s", c->serial);
	e->when = c->revoked_at;
	e->reason = reason_code(c->reason) > 0 ? reason_code(c->reason) : 0;
	EVP_DigestUpdate(rs->md, c->serial, strlen(c->serial) + 1);
	EVP_DigestUpdate(rs->md, &e->when, sizeof(e->when));
	EVP_DigestUpdate(rs->md, &e->reason, sizeof(e->reason));
	return 0;
}

static int add_revoked(X509_CRL *crl, const struct revoked_entry *e)
{
	X509_REVOKED *r = X509_REVOKED_new();
	ASN1_TIME *t = ASN1_TIME_new();
	BIGNUM *bn = NULL;
	ASN1_INTEGER *ai = NULL;
	ASN1_ENUMERATED *code = NULL;
	int ok = 0;

	if (!r || !t || !BN_hex2bn(&bn, e->serial) || !(ai = BN_to_ASN1_INTEGER(bn, NULL)) ||
	    !ASN1_TIME_set(t, (time_t)e->when) || X509_REVOKED_set_serialNumber(r, ai) != 1 ||
	    X509_REVOKED_set_revocationDate(r, t) != 1)
		goto out;
	/* RFC 5280 §5.3.1: reasonCode unspecified SHOULD be absent */
	if (e->reason > 0) {
		code = ASN1_ENUMERATED_new();
		if (!code || ASN1_ENUMERATED_set(code, e->reason) != 1 ||
		    X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, code, 0, 0) != 1)
			goto out;
	}
	ok = X509_CRL_add0_revoked(crl, r) == 1;
	if (ok)
		r = NULL;
out:
	X509_REVOKED_free(r);
	ASN1_TIME_free(t);
	ASN1_INTEGER_free(ai);
	ASN1_ENUMERATED_free(code);
	BN_free(bn);
	return ok ? 0 : -1;
}

/* Build and sign the CRL of the set (RFC 5280 §5: v2, AKI, cRLNumber). */
static X509_CRL *build_crl(const struct revoked_set *rs, time_t now)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *last = ASN1_TIME_new(), *next = ASN1_TIME_new();
	ASN1_INTEGER *num = ASN1_INTEGER_new();
	X509V3_CTX ctx;
	X509_EXTENSION *aki = NULL;
	int ok = 0;

	if (!crl || !last || !next || !num || X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
	    X509_CRL_set_issuer_name(crl, X509_get_subject_name(pki_g.ca)) != 1 ||
	    !ASN1_TIME_set(last, now) || !ASN1_TIME_set(next, now + PKI_CRL_VALIDITY) ||
	    X509_CRL_set1_lastUpdate(crl, last) != 1 || X509_CRL_set1_nextUpdate(crl, next) != 1)
		goto out;
	for (size_t i = 0; i < rs->n; i++)
		if (add_revoked(crl, &rs->v[i]) < 0)
			goto out;
	X509_CRL_sort(crl);
	X509V3_set_ctx(&ctx, pki_g.ca, NULL, NULL, crl, 0);
	aki = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
	/* the CRL number only grows: the time it was made */
	if (!aki || X509_CRL_add_ext(crl, aki, -1) != 1 || ASN1_INTEGER_set_int64(num, now) != 1 ||
	    X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) != 1 ||
	    vault_pki_sign_crl(crl) < 0)
		goto out;
	ok = 1;
out:
	X509_EXTENSION_free(aki);
	ASN1_TIME_free(last);
	ASN1_TIME_free(next);
	ASN1_INTEGER_free(num);
	if (!ok) {
		X509_CRL_free(crl);
		crl = NULL;
		ERR_clear_error();
	}
	return crl;
}

static int copy_out(const unsigned char *src, size_t n, unsigned char **der, size_t *len)
{
	*der = malloc(n);
	if (!*der)
		return -1;
	memcpy(*der, src, n);
	*len = n;
	return 0;
}

int pki_crl_der(struct store *s, unsigned char **der, size_t *len)
{
	struct revoked_set rs = {0};
	unsigned char digest[32];
	unsigned char *buf = NULL;
	time_t now = time(NULL);
	X509_CRL *crl = NULL;
	int n, rc = -1;

	*der = NULL;
	*len = 0;
	rs.md = EVP_MD_CTX_new();
	if (!rs.md || EVP_DigestInit_ex(rs.md, EVP_sha256(), NULL) != 1)
		goto out;
	if (store_cert_list_revoked(s, collect_revoked, &rs) != STORE_OK || rs.too_many ||
	    EVP_DigestFinal_ex(rs.md, digest, NULL) != 1)
		goto out; /* a store outage: no CRL rather than an empty one */
	pthread_rwlock_rdlock(&pki_lock);
	pthread_mutex_lock(&crl_cache.mu);
	if (crl_cache.der && memcmp(crl_cache.digest, digest, sizeof(digest)) == 0 &&
	    now - crl_cache.this_update < PKI_CRL_REFRESH && now >= crl_cache.this_update) {
		rc = copy_out(crl_cache.der, crl_cache.len, der, len);
	} else if (pki_g.ca && (crl = build_crl(&rs, now)) != NULL &&
		   (n = i2d_X509_CRL(crl, &buf)) > 0) {
		free(crl_cache.der);
		crl_cache.der = malloc((size_t)n);
		if (crl_cache.der) {
			memcpy(crl_cache.der, buf, (size_t)n);
			crl_cache.len = (size_t)n;
			memcpy(crl_cache.digest, digest, sizeof(digest));
			crl_cache.this_update = now;
		}
		rc = copy_out(buf, (size_t)n, der, len);
	}
	pthread_mutex_unlock(&crl_cache.mu);
	pthread_rwlock_unlock(&pki_lock);
out:
	OPENSSL_free(buf);
	X509_CRL_free(crl);
	EVP_MD_CTX_free(rs.md);
	free(rs.v);
	return rc;
}
