/*
 * The PKI (pki/pki.h, vault/vault_pki.h): the built-in issuing CA made at
 * first start (key 0600 in a 0700 directory), an imported enterprise CA and
 * its start-up errors, issuance from CSRs made here with OpenSSL (key
 * policy, names from the user never from the CSR, extensions, lifetime
 * bounds, unique serials recorded in the store), revocation and the signed
 * CRL, and client certificate verification: our own chain, mapping by SAN
 * URI, UPN, email and CN, expired and not-yet-valid, untrusted issuers,
 * disabled and unknown users, serials without a record, external CAs'
 * CRL files (revoked, reloaded on change, out of date).
 * OCSP against `openssl ocsp` is in tests/integ/pki.sh.
 */
#include <ctype.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <pthread.h>
#include <sqlite3.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/config.h"
#include "core/workq.h"
#include "core/x509.h"
#include "pki/pki.h"
#include "store/store.h"

#define DAY 86400

struct fx {
	char dir[64];
	char db[128];
	struct config *cfg;
	struct store *s;
	EVP_PKEY *rsa;	   /* a client key, RSA 2048 */
	EVP_PKEY *ec;	   /* a client key, P-256 */
	EVP_PKEY *ext_key; /* an external CA's key */
	X509 *ext_ca;	   /* an external CA ("Example Corp Root"), trusted when init_ext */
	pid_t ocsp_pid;	   /* an `openssl ocsp` responder, stopped by teardown */
};

/* ---- helpers ------------------------------------------------------------ */

static void add_user(struct fx *f, const char *uri, bool enabled)
{
	struct store_user u;

	memset(&u, 0, sizeof(u));
	assert_int_equal(store_uri_normalise(uri, u.uri, u.user, u.domain), STORE_OK);
	u.enabled = enabled;
	assert_int_equal(store_user_add(f->s, &u), STORE_OK);
}

static void get_user(struct fx *f, const char *uri, struct store_user *u)
{
	assert_int_equal(store_user_get(f->s, uri, u), STORE_OK);
}

static void write_file(const char *path, const char *data, size_t len, mode_t mode)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static void write_pem_cert(const char *path, X509 *x)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_X509(fp, x), 1);
	fclose(fp);
}

static X509 *make_cert(EVP_PKEY *subject_key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
		       long nb_off, long na_off, bool ca)
{
	X509 *x = X509_new();
	time_t now = time(NULL);

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(x509_random_serial(x), 0);
	assert_non_null(X509_time_adj_ex(X509_getm_notBefore(x), 0, nb_off, &now));
	assert_non_null(X509_time_adj_ex(X509_getm_notAfter(x), 0, na_off, &now));
	assert_int_equal(X509_set_pubkey(x, subject_key), 1);
	if (cn)
		assert_int_equal(X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN",
							    MBSTRING_UTF8,
							    (const unsigned char *)cn, -1, -1, 0),
				 1);
	assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x)), 1);
	if (ca) {
		assert_int_equal(
		    x509_add_ext(x, issuer ? issuer : x, NID_basic_constraints, "critical,CA:TRUE"),
		    0);
		assert_int_equal(x509_add_ext(x, issuer ? issuer : x, NID_key_usage,
					      "critical,keyCertSign,cRLSign"),
				 0);
	} else {
		assert_int_equal(x509_add_ext(x, issuer, NID_ext_key_usage, "clientAuth"), 0);
	}
	assert_int_equal(x509_add_ext(x, issuer ? issuer : x, NID_subject_key_identifier, "hash"),
			 0);
	return x;
}

static void sign_cert(X509 *x, EVP_PKEY *k)
{
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
}

/* A leaf of the external CA with an optional SAN (an OpenSSL config value). */
static X509 *ext_leaf(struct fx *f, EVP_PKEY *k, const char *cn, const char *san, long nb_off,
		      long na_off)
{
	X509 *x = make_cert(k, cn, f->ext_ca, f->ext_key, nb_off, na_off, false);

	if (san)
		assert_int_equal(x509_add_ext(x, f->ext_ca, NID_subject_alt_name, san), 0);
	sign_cert(x, f->ext_key);
	return x;
}

/* A PEM CSR for key k; cn and san (a config value) may be NULL. */
static char *make_csr(EVP_PKEY *k, const char *cn, const char *san)
{
	X509_REQ *req = X509_REQ_new();
	BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL, *out;
	long len;

	assert_non_null(req);
	assert_int_equal(X509_REQ_set_pubkey(req, k), 1);
	if (cn)
		X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
					   (const unsigned char *)cn, -1, -1, 0);
	if (san) {
		STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
		X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
		assert_non_null(e);
		sk_X509_EXTENSION_push(exts, e);
		assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	}
	/* EdDSA signs without a separate digest */
	assert_true(
	    X509_REQ_sign(req, k,
			  EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519 ? NULL : EVP_sha256()) > 0);
	assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
	len = BIO_get_mem_data(bio, &data);
	out = strndup(data, (size_t)len);
	BIO_free(bio);
	X509_REQ_free(req);
	return out;
}

static X509 *first_cert(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);

	BIO_free(bio);
	assert_non_null(x);
	return x;
}

static int issue(struct fx *f, const char *uri, EVP_PKEY *k, int lifetime, X509 **leaf,
		 char serial[PKI_SERIAL_MAX])
{
	struct store_user u;
	char *csr = make_csr(k, "anything", NULL), *chain = NULL, sbuf[PKI_SERIAL_MAX];
	int64_t na = 0;
	int rc;

	get_user(f, uri, &u);
	rc = pki_issue(f->s, &u, csr, strlen(csr), lifetime, &chain, serial ? serial : sbuf, &na);
	if (rc == PKI_OK && leaf)
		*leaf = first_cert(chain);
	free(chain);
	free(csr);
	return rc;
}

static int verify(struct fx *f, X509 *leaf, int64_t now, char *uri)
{
	char buf[STORE_URI_MAX];
	return pki_verify_client(f->s, leaf, NULL, now ? now : (int64_t)time(NULL), uri ? uri : buf,
				 STORE_URI_MAX);
}

static void init_pki(struct fx *f)
{
	char err[512] = "";
	int rc = pki_init(f->cfg, err, sizeof(err));
	if (rc != 0)
		print_error("pki_init: %s\n", err);
	assert_int_equal(rc, 0);
}

/* Trust the external CA ([pki] trusted_root) and start again. */
static void init_ext(struct fx *f)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/ext-root.pem", f->dir);
	write_pem_cert(path, f->ext_ca);
	snprintf(f->cfg->pki_trusted_root[0], PATH_MAX, "%s", path);
	f->cfg->n_pki_trusted_root = 1;
	init_pki(f);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/rtc-pki-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->db, sizeof(f->db), "%s/rtcauth.db", f->dir);
	assert_int_equal(store_open(f->db, STORE_CREATE, 1000, &f->s, err, sizeof(err)), STORE_OK);
	f->cfg = calloc(1, sizeof(*f->cfg));
	assert_non_null(f->cfg);
	config_defaults(f->cfg);
	snprintf(f->cfg->domain, sizeof(f->cfg->domain), "example.test");
	snprintf(f->cfg->fqdn, sizeof(f->cfg->fqdn), "fe.example.test");
	snprintf(f->cfg->state_dir, sizeof(f->cfg->state_dir), "%s/state", f->dir);
	assert_int_equal(mkdir(f->cfg->state_dir, 0700), 0);
	add_user(f, "sip:alice@example.test", true);
	add_user(f, "sip:bob@example.test", false);
	add_user(f, "sip:carol@example.test", true);
	f->rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	f->ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	f->ext_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	assert_non_null(f->rsa);
	assert_non_null(f->ec);
	assert_non_null(f->ext_key);
	f->ext_ca = make_cert(f->ext_key, "Example Corp Root", NULL, NULL, -DAY, 3650L * DAY, true);
	sign_cert(f->ext_ca, f->ext_key);
	init_pki(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	if (f->ocsp_pid > 0) {
		kill(f->ocsp_pid, SIGTERM);
		waitpid(f->ocsp_pid, NULL, 0);
	}
	workq_stop(); /* a test that started the pool and failed midway */
	pki_shutdown();
	store_close(f->s);
	EVP_PKEY_free(f->rsa);
	EVP_PKEY_free(f->ec);
	EVP_PKEY_free(f->ext_key);
	X509_free(f->ext_ca);
	free(f->cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* The SAN URIs of x, joined by ' '. */
static void san_uris(X509 *x, char *out, size_t cap)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);

	out[0] = '\0';
	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		if (g->type == GEN_URI)
			snprintf(
			    out + strlen(out), cap - strlen(out), "%s%s", out[0] ? " " : "",
			    (const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier));
	}
	GENERAL_NAMES_free(gens);
}

static int count_rows(void *ctx, const struct store_cert *c)
{
	(void)c;
	(*(int *)ctx)++;
	return 0;
}

static void subject_cn(X509 *x, char *out, size_t cap)
{
	out[0] = '\0';
	X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, out, (int)cap);
}

/* ---- the built-in CA ---------------------------------------------------- */

static void test_pki_builtin_ca_is_made_once_with_a_private_key_file(void **state)
{
	struct fx *f = *state;
	char path[PATH_MAX], cn[128], err[256];
	struct stat st;
	X509 *ca = pki_ca_cert();
	unsigned char before[EVP_MAX_MD_SIZE], after[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	assert_non_null(ca);
	subject_cn(ca, cn, sizeof(cn));
	assert_string_equal(cn, "rtcauth issuing CA example.test");
	assert_int_equal(X509_check_ca(ca), 1);
	assert_int_equal(X509_check_issued(ca, ca), X509_V_OK); /* self-signed */
	snprintf(path, sizeof(path), "%s/pki", f->cfg->state_dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/pki/ca.key", f->cfg->state_dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* a second start loads the same CA */
	assert_int_equal(X509_digest(ca, EVP_sha256(), before, &n), 1);
	assert_int_equal(pki_init(f->cfg, err, sizeof(err)), 0);
	assert_int_equal(X509_digest(pki_ca_cert(), EVP_sha256(), after, &n), 1);
	assert_memory_equal(before, after, n);
	/* the key without its certificate: a clear error, no new CA */
	snprintf(path, sizeof(path), "%s/pki/ca.crt", f->cfg->state_dir);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(pki_init(f->cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "exists without"));
}

static void test_pki_enterprise_ca_is_used_and_checked(void **state)
{
	struct fx *f = *state;
	char crt[128], key[128], other[128], err[512];
	FILE *fp;
	X509 *leaf = NULL, *notca;
	EVP_PKEY *k2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	snprintf(crt, sizeof(crt), "%s/corp-ca.pem", f->dir);
	snprintf(key, sizeof(key), "%s/corp-ca.key", f->dir);
	write_pem_cert(crt, f->ext_ca);
	fp = fopen(key, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_PrivateKey(fp, f->ext_key, NULL, NULL, 0, NULL, NULL), 1);
	fclose(fp);
	assert_int_equal(chmod(key, 0644), 0);
	snprintf(f->cfg->pki_ca_cert, PATH_MAX, "%s", crt);
	snprintf(f->cfg->pki_ca_key, PATH_MAX, "%s", key);
	/* a key others can read is refused */
	assert_int_equal(pki_init(f->cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "readable by others"));
	assert_int_equal(chmod(key, 0600), 0);
	init_pki(f);
	assert_int_equal(X509_cmp(pki_ca_cert(), f->ext_ca), 0);
	assert_int_equal(issue(f, "sip:alice@example.test", f->ec, 0, &leaf, NULL), PKI_OK);
	assert_int_equal(X509_check_issued(f->ext_ca, leaf), X509_V_OK);
	assert_int_equal(verify(f, leaf, 0, NULL), PKI_VERIFY_OK);
	X509_free(leaf);
	/* a key of another certificate */
	fp = fopen(key, "w");
	assert_int_equal(PEM_write_PrivateKey(fp, k2, NULL, NULL, 0, NULL, NULL), 1);
	fclose(fp);
	assert_int_equal(pki_init(f->cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "does not belong"));
	/* a certificate that is not a CA's */
	notca = make_cert(k2, "not a CA", NULL, NULL, -DAY, DAY * 10, false);
	sign_cert(notca, k2);
	snprintf(other, sizeof(other), "%s/notca.pem", f->dir);
	write_pem_cert(other, notca);
	snprintf(f->cfg->pki_ca_cert, PATH_MAX, "%s", other);
	assert_int_equal(pki_init(f->cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a CA certificate"));
	/* one without the other */
	f->cfg->pki_ca_key[0] = '\0';
	assert_int_equal(pki_init(f->cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "go together"));
	X509_free(notca);
	EVP_PKEY_free(k2);
}

static void test_pki_config_needs_ca_cert_and_key_together(void **state)
{
	struct fx *f = *state;
	struct config *cfg = calloc(1, sizeof(*cfg));
	char path[128], err[512];
	const char *conf = "[server]\ndomain = example.test\n[pki]\nca_cert = /x/ca.pem\n";
	const char *conf2 = "[server]\ndomain = example.test\n[pki]\ncert_lifetime = 1h\n";
	const char *conf3 = "[server]\ndomain = example.test\n[pki]\nmap = cn, upn\n"
			    "trusted_root = a.pem\ntrusted_root = b.pem\nocsp = no\n"
			    "cert_lifetime = 720h\n";

	snprintf(path, sizeof(path), "%s/r.conf", f->dir);
	write_file(path, conf, strlen(conf), 0600);
	assert_int_equal(config_load(path, cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "ca_cert and ca_key go together"));
	write_file(path, conf2, strlen(conf2), 0600);
	assert_int_equal(config_load(path, cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cert_lifetime"));
	write_file(path, conf3, strlen(conf3), 0600);
	assert_int_equal(config_load(path, cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg->n_pki_map, 2);
	assert_int_equal(cfg->pki_map[0], CONFIG_PKI_MAP_CN);
	assert_int_equal(cfg->pki_map[1], CONFIG_PKI_MAP_UPN);
	assert_int_equal(cfg->n_pki_trusted_root, 2);
	assert_non_null(strstr(cfg->pki_trusted_root[1], "/b.pem"));
	assert_false(cfg->pki_ocsp);
	assert_int_equal(cfg->pki_cert_lifetime, 720 * 3600);
	free(cfg);
}

/* ---- issuance ----------------------------------------------------------- */

static void check_extensions(X509 *leaf, bool rsa)
{
	uint32_t ku = X509_get_key_usage(leaf);
	int crit = -1;
	BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(leaf, NID_basic_constraints, &crit, NULL);
	STACK_OF(DIST_POINT) *cdp = X509_get_ext_d2i(leaf, NID_crl_distribution_points, NULL, NULL);
	GENERAL_NAME *g;

	assert_non_null(bc);
	assert_int_equal(crit, 1);
	assert_false(bc->ca);
	BASIC_CONSTRAINTS_free(bc);
	assert_true(ku & KU_DIGITAL_SIGNATURE);
	assert_int_equal(!!(ku & KU_KEY_ENCIPHERMENT), rsa);
	assert_false(ku & KU_KEY_CERT_SIGN);
	assert_int_equal(X509_get_extended_key_usage(leaf), XKU_SSL_CLIENT);
	assert_non_null(X509_get0_subject_key_id(leaf));
	assert_non_null(X509_get0_authority_key_id(leaf));
	assert_non_null(cdp);
	g = sk_GENERAL_NAME_value(sk_DIST_POINT_value(cdp, 0)->distpoint->name.fullname, 0);
	assert_string_equal((const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier),
			    "https://fe.example.test:8443/pki/crl");
	sk_DIST_POINT_pop_free(cdp, DIST_POINT_free);
}

static void test_pki_issues_rsa_2048_with_our_names_and_extensions(void **state)
{
	struct fx *f = *state;
	struct store_user u;
	struct store_cert *rec = calloc(1, sizeof(*rec));
	char *csr = make_csr(f->rsa, "sip:alice@example.test", NULL), *chain = NULL;
	char serial[PKI_SERIAL_MAX], cn[128], sans[512];
	int64_t na = 0, now = (int64_t)time(NULL);
	X509 *leaf, *ca;
	const char *second;

	get_user(f, "sip:alice@example.test", &u);
	assert_int_equal(pki_issue(f->s, &u, csr, strlen(csr), 0, &chain, serial, &na), PKI_OK);
	leaf = first_cert(chain);
	second = strstr(chain + 1, "-----BEGIN CERTIFICATE-----");
	assert_non_null(second); /* the leaf, then the CA */
	ca = first_cert(second);
	assert_int_equal(X509_cmp(ca, pki_ca_cert()), 0);
	assert_int_equal(X509_verify(leaf, X509_get0_pubkey(ca)), 1);
	subject_cn(leaf, cn, sizeof(cn));
	assert_string_equal(cn, "sip:alice@example.test");
	san_uris(leaf, sans, sizeof(sans));
	assert_string_equal(sans, "sip:alice@example.test");
	check_extensions(leaf, true);
	/* 180 days by default */
	assert_true(na >= now + 180 * DAY - 5 && na <= now + 180 * DAY + 5);
	assert_int_equal(store_cert_get(f->s, serial, rec), STORE_OK);
	assert_string_equal(rec->uri, "sip:alice@example.test");
	assert_int_equal(rec->user_id, u.id);
	assert_int_equal(rec->revoked_at, 0);
	assert_int_equal(rec->not_after, na);
	assert_non_null(strstr(chain, rec->pem));
	X509_free(leaf);
	X509_free(ca);
	free(chain);
	free(csr);
	free(rec);
}

static void test_pki_issues_ec_p256_without_key_encipherment(void **state)
{
	struct fx *f = *state;
	X509 *leaf = NULL;

	assert_int_equal(issue(f, "sip:alice@example.test", f->ec, 0, &leaf, NULL), PKI_OK);
	check_extensions(leaf, false);
	X509_free(leaf);
}

static void test_pki_long_uri_gets_an_empty_subject_and_a_critical_san(void **state)
{
	struct fx *f = *state;
	const char *uri = "sip:a.very.long.user.name.for.testing.subject.limits@example.test";
	char sans[512], got[STORE_URI_MAX];
	X509 *leaf = NULL;
	int crit = -1;
	GENERAL_NAMES *gens;

	assert_true(strlen(uri) > 64); /* RFC 5280 ub-common-name */
	add_user(f, uri, true);
	assert_int_equal(issue(f, uri, f->ec, 0, &leaf, NULL), PKI_OK);
	assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(leaf)), 0);
	gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, &crit, NULL);
	assert_int_equal(crit, 1);
	GENERAL_NAMES_free(gens);
	san_uris(leaf, sans, sizeof(sans));
	assert_string_equal(sans, uri);
	assert_int_equal(verify(f, leaf, 0, got), PKI_VERIFY_OK);
	assert_string_equal(got, uri);
	X509_free(leaf);
}

static void test_pki_refuses_weak_and_other_keys(void **state)
{
	struct fx *f = *state;
	EVP_PKEY *rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	int rows = 0;

	assert_int_equal(issue(f, "sip:alice@example.test", rsa1024, 0, NULL, NULL),
			 PKI_E_WEAK_KEY);
	assert_int_equal(issue(f, "sip:alice@example.test", p384, 0, NULL, NULL), PKI_E_WEAK_KEY);
	assert_int_equal(issue(f, "sip:alice@example.test", ed, 0, NULL, NULL), PKI_E_WEAK_KEY);
	/* nothing recorded */
	assert_int_equal(store_cert_list(f->s, NULL, count_rows, &rows), STORE_OK);
	assert_int_equal(rows, 0);
	EVP_PKEY_free(rsa1024);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(ed);
}

static void test_pki_ignores_the_names_a_csr_asks_for(void **state)
{
	struct fx *f = *state;
	struct store_user u;
	char *csr = make_csr(f->ec, "sip:mallory@example.test",
			     "URI:sip:mallory@example.test,email:mallory@example.test,DNS:evil");
	char *chain = NULL, serial[PKI_SERIAL_MAX], cn[128], sans[512];
	int64_t na;
	X509 *leaf;
	GENERAL_NAMES *gens;

	get_user(f, "sip:alice@example.test", &u);
	/* the caller can tell (and log) that the request asked for other names */
	assert_true(pki_csr_names_other(csr, strlen(csr), "sip:alice@example.test"));
	assert_int_equal(pki_issue(f->s, &u, csr, strlen(csr), 0, &chain, serial, &na), PKI_OK);
	leaf = first_cert(chain);
	subject_cn(leaf, cn, sizeof(cn));
	assert_string_equal(cn, "sip:alice@example.test");
	san_uris(leaf, sans, sizeof(sans));
	assert_string_equal(sans, "sip:alice@example.test");
	gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	assert_int_equal(sk_GENERAL_NAME_num(gens), 1); /* no email, no DNS */
	GENERAL_NAMES_free(gens);
	assert_null(strstr(chain, "mallory"));
	free(csr);
	/* its own names, in any spelling, or none at all: nothing to say */
	csr = make_csr(f->ec, "sip:alice@EXAMPLE.test", "URI:sip:alice@example.test");
	assert_false(pki_csr_names_other(csr, strlen(csr), "sip:alice@example.test"));
	free(csr);
	csr = make_csr(f->ec, "alice@example.test", "email:alice@example.test");
	assert_false(pki_csr_names_other(csr, strlen(csr), "sip:alice@example.test"));
	free(csr);
	csr = make_csr(f->ec, NULL, NULL);
	assert_false(pki_csr_names_other(csr, strlen(csr), "sip:alice@example.test"));
	assert_true(pki_csr_names_other(csr, strlen(csr), "sip:bob@example.test") == false);
	free(csr);
	csr = make_csr(f->ec, "Alice Liddell", NULL);
	assert_true(pki_csr_names_other(csr, strlen(csr), "sip:alice@example.test"));
	assert_false(pki_csr_names_other("garbage", 7, "sip:alice@example.test"));
	X509_free(leaf);
	free(chain);
	free(csr);
}

static void test_pki_refuses_tampered_and_malformed_csrs(void **state)
{
	struct fx *f = *state;
	struct store_user u;
	char *csr = make_csr(f->ec, "x", NULL), *chain = NULL, serial[PKI_SERIAL_MAX];
	char *big = calloc(1, PKI_CSR_MAX + 2);
	int64_t na;
	BIO *bio = BIO_new_mem_buf(csr, -1), *out = BIO_new(BIO_s_mem());
	X509_REQ *req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
	unsigned char *der = NULL;
	int n = i2d_X509_REQ(req, &der);
	char *data;
	long len;

	get_user(f, "sip:alice@example.test", &u);
	/* one bit of the signature flipped */
	der[n - 3] ^= 0x01;
	assert_true(PEM_write_bio(out, "CERTIFICATE REQUEST", "", der, n) > 0);
	len = BIO_get_mem_data(out, &data);
	assert_int_equal(pki_issue(f->s, &u, data, (size_t)len, 0, &chain, serial, &na), PKI_E_CSR);
	assert_null(chain);
	assert_string_equal(serial, "");
	/* one byte of the subject's key changed (inside the signed part) */
	der[n - 3] ^= 0x01;
	der[n / 3] ^= 0x40;
	(void)BIO_reset(out);
	assert_true(PEM_write_bio(out, "CERTIFICATE REQUEST", "", der, n) > 0);
	len = BIO_get_mem_data(out, &data);
	assert_int_not_equal(pki_issue(f->s, &u, data, (size_t)len, 0, &chain, serial, &na),
			     PKI_OK);
	/* not PEM, empty, truncated, too long, a certificate */
	assert_int_equal(pki_issue(f->s, &u, "hello", 5, 0, &chain, serial, &na), PKI_E_CSR);
	assert_int_equal(pki_issue(f->s, &u, "", 0, 0, &chain, serial, &na), PKI_E_CSR);
	assert_int_equal(pki_issue(f->s, &u, csr, strlen(csr) / 2, 0, &chain, serial, &na),
			 PKI_E_CSR);
	memset(big, 'A', PKI_CSR_MAX + 1);
	assert_int_equal(pki_issue(f->s, &u, big, PKI_CSR_MAX + 1, 0, &chain, serial, &na),
			 PKI_E_CSR);
	{
		BIO *cb = BIO_new(BIO_s_mem());
		char *cp;
		long cl;
		PEM_write_bio_X509(cb, pki_ca_cert());
		cl = BIO_get_mem_data(cb, &cp);
		assert_int_equal(pki_issue(f->s, &u, cp, (size_t)cl, 0, &chain, serial, &na),
				 PKI_E_CSR);
		BIO_free(cb);
	}
	assert_null(chain);
	OPENSSL_free(der);
	X509_REQ_free(req);
	BIO_free(bio);
	BIO_free(out);
	free(big);
	free(csr);
}

static void test_pki_lifetime_bounds(void **state)
{
	struct fx *f = *state;
	X509 *leaf = NULL;
	time_t now = time(NULL);

	assert_int_equal(issue(f, "sip:alice@example.test", f->ec, 8 * 3600 - 1, NULL, NULL),
			 PKI_E_LIFETIME);
	assert_int_equal(issue(f, "sip:alice@example.test", f->ec, 365 * DAY + 1, NULL, NULL),
			 PKI_E_LIFETIME);
	assert_int_equal(issue(f, "sip:alice@example.test", f->ec, -5, NULL, NULL), PKI_E_LIFETIME);
	assert_int_equal(issue(f, "sip:alice@example.test", f->ec, 8 * 3600, &leaf, NULL), PKI_OK);
	assert_true(X509_cmp_time(X509_get0_notAfter(leaf), &(time_t){now + 8 * 3600 + 10}) < 0);
	assert_true(X509_cmp_time(X509_get0_notAfter(leaf), &(time_t){now + 8 * 3600 - 10}) > 0);
	X509_free(leaf);
	assert_int_equal(issue(f, "sip:alice@example.test", f->ec, 365 * DAY, NULL, NULL), PKI_OK);
	/* [pki] cert_lifetime is the default */
	f->cfg->pki_cert_lifetime = 2 * DAY;
	init_pki(f);
	assert_int_equal(issue(f, "sip:alice@example.test", f->ec, 0, &leaf, NULL), PKI_OK);
	assert_true(X509_cmp_time(X509_get0_notAfter(leaf), &(time_t){now + 2 * DAY + 10}) < 0);
	X509_free(leaf);
}

struct seen {
	char (*serials)[PKI_SERIAL_MAX];
	int n;
};

static int count_cb(void *ctx, const struct store_cert *c)
{
	struct seen *s = ctx;
	snprintf(s->serials[s->n++], PKI_SERIAL_MAX, "%s", c->serial);
	return 0;
}

static void test_pki_serials_are_unique_over_many_issues(void **state)
{
	struct fx *f = *state;
	enum { N = 150 };
	char(*serials)[PKI_SERIAL_MAX] = calloc(N, PKI_SERIAL_MAX);
	struct seen s = {calloc(N + 1, PKI_SERIAL_MAX), 0};

	for (int i = 0; i < N; i++) {
		assert_int_equal(issue(f, "sip:alice@example.test", f->ec, 0, NULL, serials[i]),
				 PKI_OK);
		assert_true(strlen(serials[i]) >= 20); /* 127 random bits */
		for (int j = 0; j < i; j++)
			assert_string_not_equal(serials[i], serials[j]);
	}
	assert_int_equal(store_cert_list(f->s, "sip:alice@example.test", count_cb, &s), STORE_OK);
	assert_int_equal(s.n, N);
	s.n = 0;
	assert_int_equal(store_cert_list(f->s, "sip:carol@example.test", count_cb, &s), STORE_OK);
	assert_int_equal(s.n, 0);
	free(serials);
	free(s.serials);
}

/* ---- revocation and the CRL --------------------------------------------- */

static X509_CRL *crl_now(struct fx *f)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t len = 0;
	X509_CRL *crl;

	assert_int_equal(pki_crl_der(f->s, &der, &len), 0);
	p = der;
	crl = d2i_X509_CRL(NULL, &p, (long)len);
	assert_non_null(crl);
	assert_int_equal((size_t)(p - der), len);
	free(der);
	assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(pki_ca_cert())), 1);
	assert_int_equal(
	    X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(pki_ca_cert())), 0);
	assert_non_null(X509_CRL_get0_nextUpdate(crl));
	return crl;
}

static bool crl_lists(X509_CRL *crl, X509 *x, int *reason)
{
	X509_REVOKED *r = NULL;
	ASN1_ENUMERATED *code;

	if (X509_CRL_get0_by_cert(crl, &r, x) != 1 || !r)
		return false;
	code = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, NULL, NULL);
	*reason = code ? (int)ASN1_ENUMERATED_get(code) : 0;
	ASN1_ENUMERATED_free(code);
	return true;
}

static void test_pki_revoked_certificate_fails_and_is_in_the_crl(void **state)
{
	struct fx *f = *state;
	X509 *a = NULL, *b = NULL, *c1 = NULL, *c2 = NULL;
	char sa[PKI_SERIAL_MAX], sb[PKI_SERIAL_MAX], lower[PKI_SERIAL_MAX], uri[STORE_URI_MAX];
	X509_CRL *crl;
	int reason = -1;

	assert_int_equal(issue(f, "sip:alice@example.test", f->ec, 0, &a, sa), PKI_OK);
	assert_int_equal(issue(f, "sip:alice@example.test", f->rsa, 0, &b, sb), PKI_OK);
	assert_int_equal(issue(f, "sip:carol@example.test", f->ec, 0, &c1, NULL), PKI_OK);
	assert_int_equal(issue(f, "sip:carol@example.test", f->ec, 0, &c2, NULL), PKI_OK);
	assert_int_equal(verify(f, a, 0, uri), PKI_VERIFY_OK);
	assert_string_equal(uri, "sip:alice@example.test");
	crl = crl_now(f);
	assert_null(X509_CRL_get_REVOKED(crl)); /* no entries */
	X509_CRL_free(crl);
	assert_int_equal(pki_serial_revoked(f->s, sa), 0);

	/* by serial, typed in lower case */
	for (size_t i = 0; i <= strlen(sa); i++)
		lower[i] = (char)tolower((unsigned char)sa[i]);
	assert_int_equal(pki_revoke_serial(f->s, lower, "keyCompromise"), 1);
	assert_int_equal(pki_revoke_serial(f->s, sa, NULL), 0); /* already */
	assert_int_equal(pki_revoke_serial(f->s, "0DEADBEEF", NULL), 0);
	assert_int_equal(pki_revoke_serial(f->s, "not hex", NULL), STORE_INVALID);
	assert_int_equal(pki_revoke_serial(f->s, sb, "no such reason"), STORE_INVALID);
	assert_int_equal(pki_serial_revoked(f->s, sa), 1);
	assert_int_equal(pki_serial_revoked(f->s, sb), 0);
	assert_int_equal(pki_serial_revoked(f->s, "0DEADBEEF"), 1); /* no record */
	assert_int_equal(verify(f, a, 0, uri), PKI_VERIFY_REVOKED);
	assert_string_equal(uri, "");
	assert_int_equal(verify(f, b, 0, NULL), PKI_VERIFY_OK);
	crl = crl_now(f); /* rebuilt: the revoked set changed */
	assert_true(crl_lists(crl, a, &reason));
	assert_int_equal(reason, 1); /* keyCompromise */
	assert_false(crl_lists(crl, b, &reason));
	X509_CRL_free(crl);

	/* every certificate of a user */
	assert_int_equal(pki_revoke_user(f->s, "sip:carol@example.test", "superseded"), 2);
	assert_int_equal(pki_revoke_user(f->s, "sip:carol@example.test", NULL), 0);
	assert_int_equal(verify(f, c1, 0, NULL), PKI_VERIFY_REVOKED);
	assert_int_equal(verify(f, c2, 0, NULL), PKI_VERIFY_REVOKED);
	crl = crl_now(f);
	assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 3);
	assert_true(crl_lists(crl, c1, &reason));
	assert_int_equal(reason, 4); /* superseded */
	X509_CRL_free(crl);
	X509_free(a);
	X509_free(b);
	X509_free(c1);
	X509_free(c2);
}

/* ---- verification ------------------------------------------------------- */

static void test_pki_verify_validity_period(void **state)
{
	struct fx *f = *state;
	X509 *leaf = NULL;
	int64_t now = (int64_t)time(NULL);

	assert_int_equal(issue(f, "sip:alice@example.test", f->ec, 8 * 3600, &leaf, NULL), PKI_OK);
	assert_int_equal(verify(f, leaf, now, NULL), PKI_VERIFY_OK);
	assert_int_equal(verify(f, leaf, now + 8 * 3600 + 60, NULL), PKI_VERIFY_EXPIRED);
	assert_int_equal(verify(f, leaf, now - 3600, NULL), PKI_VERIFY_EXPIRED); /* not yet */
	X509_free(leaf);
}

static void test_pki_verify_refuses_untrusted_issuers(void **state)
{
	struct fx *f = *state;
	X509 *ext =
	    ext_leaf(f, f->ec, "sip:alice@example.test", "URI:sip:alice@example.test", -DAY, DAY);
	X509 *self = make_cert(f->ec, "sip:alice@example.test", NULL, NULL, -DAY, DAY, false);
	char uri[STORE_URI_MAX];

	sign_cert(self, f->ec);
	/* the external CA is not trusted (yet) */
	assert_int_equal(verify(f, ext, 0, uri), PKI_VERIFY_UNTRUSTED);
	assert_string_equal(uri, "");
	assert_int_equal(verify(f, self, 0, NULL), PKI_VERIFY_UNTRUSTED);
	init_ext(f);
	assert_int_equal(verify(f, ext, 0, uri), PKI_VERIFY_OK);
	assert_string_equal(uri, "sip:alice@example.test");
	assert_int_equal(verify(f, self, 0, NULL), PKI_VERIFY_UNTRUSTED);
	X509_free(ext);
	X509_free(self);
}

static void test_pki_verify_refuses_our_serial_without_a_record(void **state)
{
	struct fx *f = *state;
	char path[PATH_MAX];
	FILE *fp;
	EVP_PKEY *cakey;
	X509 *forged;

	/* signed by our CA's key but never recorded (a deleted record) */
	snprintf(path, sizeof(path), "%s/pki/ca.key", f->cfg->state_dir);
	fp = fopen(path, "r");
	assert_non_null(fp);
	cakey = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(cakey);
	forged = make_cert(f->ec, "sip:alice@example.test", pki_ca_cert(), cakey, -DAY, DAY, false);
	assert_int_equal(
	    x509_add_ext(forged, pki_ca_cert(), NID_subject_alt_name, "URI:sip:alice@example.test"),
	    0);
	sign_cert(forged, cakey);
	assert_int_equal(verify(f, forged, 0, NULL), PKI_VERIFY_REVOKED);
	X509_free(forged);
	EVP_PKEY_free(cakey);
}

static void test_pki_verify_maps_by_san_uri_then_upn_email_cn(void **state)
{
	struct fx *f = *state;
	X509 *by_uri, *by_upn, *by_email, *by_cn, *both, *none, *other_scheme;
	char uri[STORE_URI_MAX];

	init_ext(f);
	by_uri = ext_leaf(f, f->ec, "Alice", "URI:sip:alice@example.test", -DAY, DAY);
	by_upn =
	    ext_leaf(f, f->ec, "Alice",
		     "otherName:msUPN;UTF8:carol@example.test,email:alice@example.test", -DAY, DAY);
	by_email = ext_leaf(f, f->ec, "Alice", "email:carol@example.test", -DAY, DAY);
	by_cn = ext_leaf(f, f->ec, "carol@example.test", NULL, -DAY, DAY);
	both =
	    ext_leaf(f, f->ec, "sip:carol@example.test", "URI:sip:alice@example.test", -DAY, DAY);
	none = ext_leaf(f, f->ec, "Alice Example", "DNS:alice.example.test", -DAY, DAY);
	other_scheme = ext_leaf(f, f->ec, "Alice", "URI:https://alice.example.test/", -DAY, DAY);

	assert_int_equal(verify(f, by_uri, 0, uri), PKI_VERIFY_OK);
	assert_string_equal(uri, "sip:alice@example.test");
	/* the UPN comes before the email */
	assert_int_equal(verify(f, by_upn, 0, uri), PKI_VERIFY_OK);
	assert_string_equal(uri, "sip:carol@example.test");
	assert_int_equal(verify(f, by_email, 0, uri), PKI_VERIFY_OK);
	assert_string_equal(uri, "sip:carol@example.test");
	assert_int_equal(verify(f, by_cn, 0, uri), PKI_VERIFY_OK);
	assert_string_equal(uri, "sip:carol@example.test");
	assert_int_equal(verify(f, both, 0, uri), PKI_VERIFY_OK);
	assert_string_equal(uri, "sip:alice@example.test");
	assert_int_equal(verify(f, none, 0, uri), PKI_VERIFY_NO_USER);
	assert_int_equal(verify(f, other_scheme, 0, uri), PKI_VERIFY_NO_USER);
	/* [pki] map = cn: the subject decides */
	f->cfg->pki_map[0] = CONFIG_PKI_MAP_CN;
	f->cfg->n_pki_map = 1;
	init_pki(f);
	assert_int_equal(verify(f, both, 0, uri), PKI_VERIFY_OK);
	assert_string_equal(uri, "sip:carol@example.test");
	assert_int_equal(verify(f, by_uri, 0, uri), PKI_VERIFY_NO_USER); /* CN "Alice" */
	X509_free(by_uri);
	X509_free(by_upn);
	X509_free(by_email);
	X509_free(by_cn);
	X509_free(both);
	X509_free(none);
	X509_free(other_scheme);
}

static void test_pki_verify_refuses_disabled_and_unknown_users(void **state)
{
	struct fx *f = *state;
	X509 *bob = NULL, *dave;
	char uri[STORE_URI_MAX];

	assert_int_equal(issue(f, "sip:bob@example.test", f->ec, 0, &bob, NULL), PKI_OK);
	assert_int_equal(verify(f, bob, 0, uri), PKI_VERIFY_NO_USER);
	assert_string_equal(uri, "");
	assert_int_equal(store_user_set_enabled(f->s, "sip:bob@example.test", true), STORE_OK);
	assert_int_equal(verify(f, bob, 0, uri), PKI_VERIFY_OK);
	init_ext(f);
	dave = ext_leaf(f, f->ec, NULL, "URI:sip:dave@example.test", -DAY, DAY);
	assert_int_equal(verify(f, dave, 0, uri), PKI_VERIFY_NO_USER);
	X509_free(bob);
	X509_free(dave);
}

/* A CRL of the external CA listing xs, nextUpdate at now + next_off. */
static void write_ext_crl(struct fx *f, const char *path, X509 **xs, int n, long next_off)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_new();
	FILE *fp;

	X509_CRL_set_version(crl, X509_CRL_VERSION_2);
	X509_CRL_set_issuer_name(crl, X509_get_subject_name(f->ext_ca));
	ASN1_TIME_set(t, time(NULL) - 2 * DAY);
	X509_CRL_set1_lastUpdate(crl, t);
	ASN1_TIME_set(t, time(NULL) + next_off);
	X509_CRL_set1_nextUpdate(crl, t);
	for (int i = 0; i < n; i++) {
		X509_REVOKED *r = X509_REVOKED_new();
		X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(xs[i]));
		ASN1_TIME_set(t, time(NULL) - DAY);
		X509_REVOKED_set_revocationDate(r, t);
		X509_CRL_add0_revoked(crl, r);
	}
	X509_CRL_sort(crl);
	assert_true(X509_CRL_sign(crl, f->ext_key, EVP_sha256()) > 0);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_X509_CRL(fp, crl), 1);
	fclose(fp);
	ASN1_TIME_free(t);
	X509_CRL_free(crl);
}

static void test_pki_verify_checks_external_crl_files(void **state)
{
	struct fx *f = *state;
	X509 *a = ext_leaf(f, f->ec, NULL, "URI:sip:alice@example.test", -DAY, DAY);
	X509 *c = ext_leaf(f, f->ec, NULL, "URI:sip:carol@example.test", -DAY, DAY);
	char path[128], err[512];
	struct timespec ts[2] = {{0, UTIME_NOW}, {0, 0}};

	snprintf(path, sizeof(path), "%s/corp.crl", f->dir);
	write_ext_crl(f, path, &a, 1, DAY);
	snprintf(f->cfg->pki_crl_file[0], PATH_MAX, "%s", path);
	f->cfg->n_pki_crl_file = 1;
	init_ext(f);
	assert_int_equal(verify(f, a, 0, NULL), PKI_VERIFY_REVOKED);
	assert_int_equal(verify(f, c, 0, NULL), PKI_VERIFY_OK);
	/* the file changes: read again at the next check */
	write_ext_crl(f, path, (X509 *[]){a, c}, 2, DAY);
	ts[1].tv_sec = time(NULL) + 5; /* a distinct mtime even within one tick */
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
	assert_int_equal(verify(f, c, 0, NULL), PKI_VERIFY_REVOKED);
	/* an out-of-date CRL cannot clear anyone */
	write_ext_crl(f, path, &a, 1, -3600);
	ts[1].tv_sec = time(NULL) + 10;
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
	assert_int_equal(verify(f, c, 0, NULL), PKI_VERIFY_UNAVAILABLE);
	assert_int_equal(verify(f, a, 0, NULL), PKI_VERIFY_REVOKED);
	/* a missing or bad CRL file at start is an error */
	snprintf(f->cfg->pki_crl_file[0], PATH_MAX, "%s/missing.crl", f->dir);
	assert_int_equal(pki_init(f->cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "crl_file"));
	write_file(path, "garbage", 7, 0644);
	snprintf(f->cfg->pki_crl_file[0], PATH_MAX, "%s", path);
	assert_int_equal(pki_init(f->cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "holds no CRL"));
	X509_free(a);
	X509_free(c);
}

/* ---- pki_reload ---------------------------------------------------------- */

static int reload(struct fx *f, char *err, size_t cap)
{
	err[0] = '\0';
	return pki_reload(f->cfg, err, cap);
}

static void test_pki_reload_trusts_a_root_added_and_forgets_one_removed(void **state)
{
	struct fx *f = *state;
	X509 *a = ext_leaf(f, f->ec, NULL, "URI:sip:alice@example.test", -DAY, DAY);
	X509 *ca_before = pki_ca_cert(), *mine = NULL;
	char path[128], err[512];

	assert_int_equal(verify(f, a, 0, NULL), PKI_VERIFY_UNTRUSTED);
	snprintf(path, sizeof(path), "%s/ext-root.pem", f->dir);
	write_pem_cert(path, f->ext_ca);
	snprintf(f->cfg->pki_trusted_root[0], PATH_MAX, "%s", path);
	f->cfg->n_pki_trusted_root = 1;
	assert_int_equal(reload(f, err, sizeof(err)), 0);
	assert_int_equal(verify(f, a, 0, NULL), PKI_VERIFY_OK);
	/* the built-in CA stays: the same certificate, still issuing and trusted */
	assert_ptr_equal(pki_ca_cert(), ca_before);
	assert_int_equal(issue(f, "sip:carol@example.test", f->ec, 0, &mine, NULL), PKI_OK);
	assert_int_equal(verify(f, mine, 0, NULL), PKI_VERIFY_OK);
	f->cfg->n_pki_trusted_root = 0;
	assert_int_equal(reload(f, err, sizeof(err)), 0);
	assert_int_equal(verify(f, a, 0, NULL), PKI_VERIFY_UNTRUSTED);
	assert_int_equal(verify(f, mine, 0, NULL), PKI_VERIFY_OK);
	X509_free(mine);
	X509_free(a);
}

static void test_pki_reload_with_a_bad_file_keeps_the_old_state(void **state)
{
	struct fx *f = *state;
	X509 *a = ext_leaf(f, f->ec, NULL, "URI:sip:alice@example.test", -DAY, DAY);
	X509 *leaf = NULL;
	char path[128], err[512];
	time_t now = time(NULL);

	init_ext(f); /* the external root trusted */
	assert_int_equal(verify(f, a, 0, NULL), PKI_VERIFY_OK);
	/* a root file that is gone, with a new lifetime and no CN mapping */
	f->cfg->pki_cert_lifetime = 2 * DAY;
	snprintf(f->cfg->pki_trusted_root[0], PATH_MAX, "%s/missing.pem", f->dir);
	assert_int_equal(reload(f, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "[pki] trusted_root"));
	assert_non_null(strstr(err, "missing.pem"));
	assert_int_equal(verify(f, a, 0, NULL), PKI_VERIFY_OK);
	/* nothing of that reload was applied: the lifetime is the old default */
	assert_int_equal(issue(f, "sip:carol@example.test", f->ec, 0, &leaf, NULL), PKI_OK);
	assert_true(X509_cmp_time(X509_get0_notAfter(leaf), &(time_t){now + 100 * DAY}) > 0);
	X509_free(leaf);
	/* a root file without a certificate */
	snprintf(path, sizeof(path), "%s/garbage.pem", f->dir);
	write_file(path, "garbage", 7, 0644);
	snprintf(f->cfg->pki_trusted_root[0], PATH_MAX, "%s", path);
	assert_int_equal(reload(f, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "holds no PEM certificate"));
	assert_int_equal(verify(f, a, 0, NULL), PKI_VERIFY_OK);
	/* a good root file but a bad CRL file: all or nothing */
	snprintf(f->cfg->pki_trusted_root[0], PATH_MAX, "%s/ext-root.pem", f->dir);
	f->cfg->n_pki_trusted_root = 0; /* would make a untrusted */
	snprintf(f->cfg->pki_crl_file[0], PATH_MAX, "%s", path);
	f->cfg->n_pki_crl_file = 1;
	assert_int_equal(reload(f, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "crl_file"));
	assert_int_equal(verify(f, a, 0, NULL), PKI_VERIFY_OK);
	/* and a good reload then applies all of it */
	f->cfg->n_pki_crl_file = 0;
	assert_int_equal(reload(f, err, sizeof(err)), 0);
	assert_int_equal(verify(f, a, 0, NULL), PKI_VERIFY_UNTRUSTED);
	assert_int_equal(issue(f, "sip:carol@example.test", f->ec, 0, &leaf, NULL), PKI_OK);
	assert_true(X509_cmp_time(X509_get0_notAfter(leaf), &(time_t){now + 2 * DAY + 10}) < 0);
	X509_free(leaf);
	X509_free(a);
}

static void test_pki_reload_loads_a_crl_file_added(void **state)
{
	struct fx *f = *state;
	X509 *a = ext_leaf(f, f->ec, NULL, "URI:sip:alice@example.test", -DAY, DAY);
	char path[128], err[512];

	init_ext(f);
	assert_int_equal(verify(f, a, 0, NULL), PKI_VERIFY_OK);
	snprintf(path, sizeof(path), "%s/corp.crl", f->dir);
	write_ext_crl(f, path, &a, 1, DAY);
	snprintf(f->cfg->pki_crl_file[0], PATH_MAX, "%s", path);
	f->cfg->n_pki_crl_file = 1;
	assert_int_equal(reload(f, err, sizeof(err)), 0);
	assert_int_equal(verify(f, a, 0, NULL), PKI_VERIFY_REVOKED);
	f->cfg->n_pki_crl_file = 0;
	assert_int_equal(reload(f, err, sizeof(err)), 0);
	assert_int_equal(verify(f, a, 0, NULL), PKI_VERIFY_OK);
	X509_free(a);
}

static void write_key(const char *path, EVP_PKEY *k)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL), 1);
	fclose(fp);
	assert_int_equal(chmod(path, 0600), 0);
}

static void test_pki_reload_swaps_an_imported_ca_only_when_its_files_change(void **state)
{
	struct fx *f = *state;
	EVP_PKEY *k2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *ca2, *kept, *leaf = NULL;
	char crt[128], key[128], err[512];
	struct timespec ts[2] = {{0, UTIME_NOW}, {0, 0}};

	snprintf(crt, sizeof(crt), "%s/corp-ca.pem", f->dir);
	snprintf(key, sizeof(key), "%s/corp-ca.key", f->dir);
	write_pem_cert(crt, f->ext_ca);
	write_key(key, f->ext_key);
	snprintf(f->cfg->pki_ca_cert, PATH_MAX, "%s", crt);
	snprintf(f->cfg->pki_ca_key, PATH_MAX, "%s", key);
	init_pki(f);
	kept = pki_ca_cert();
	/* unchanged files: the same CA, not even read again */
	assert_int_equal(reload(f, err, sizeof(err)), 0);
	assert_ptr_equal(pki_ca_cert(), kept);
	/* the files replaced by another CA: swapped, and it issues */
	ca2 = make_cert(k2, "Example Corp Issuing 2", NULL, NULL, -DAY, 3650L * DAY, true);
	sign_cert(ca2, k2);
	write_pem_cert(crt, ca2);
	write_key(key, k2);
	ts[1].tv_sec = time(NULL) + 5; /* a distinct mtime even within one tick */
	assert_int_equal(utimensat(AT_FDCWD, crt, ts, 0), 0);
	assert_int_equal(reload(f, err, sizeof(err)), 0);
	assert_int_equal(X509_cmp(pki_ca_cert(), ca2), 0);
	assert_int_equal(issue(f, "sip:alice@example.test", f->ec, 0, &leaf, NULL), PKI_OK);
	assert_int_equal(X509_check_issued(ca2, leaf), X509_V_OK);
	assert_int_equal(verify(f, leaf, 0, NULL), PKI_VERIFY_OK);
	X509_free(leaf);
	leaf = NULL;
	/* a key that is not the certificate's: refused, the CA of before stays */
	write_key(key, f->ext_key);
	ts[1].tv_sec = time(NULL) + 10;
	assert_int_equal(utimensat(AT_FDCWD, key, ts, 0), 0);
	assert_int_equal(reload(f, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "does not belong"));
	assert_int_equal(X509_cmp(pki_ca_cert(), ca2), 0);
	assert_int_equal(issue(f, "sip:alice@example.test", f->ec, 0, &leaf, NULL), PKI_OK);
	assert_int_equal(X509_check_issued(ca2, leaf), X509_V_OK);
	X509_free(leaf);
	X509_free(ca2);
	EVP_PKEY_free(k2);
}

static void test_pki_verify_refuses_a_certificate_without_client_auth(void **state)
{
	struct fx *f = *state;
	X509 *x = X509_new();
	time_t now = time(NULL);

	init_ext(f);
	X509_set_version(x, X509_VERSION_3);
	x509_random_serial(x);
	X509_time_adj_ex(X509_getm_notBefore(x), 0, -DAY, &now);
	X509_time_adj_ex(X509_getm_notAfter(x), 0, DAY, &now);
	X509_set_pubkey(x, f->ec);
	X509_set_issuer_name(x, X509_get_subject_name(f->ext_ca));
	assert_int_equal(x509_add_ext(x, f->ext_ca, NID_ext_key_usage, "serverAuth"), 0);
	assert_int_equal(
	    x509_add_ext(x, f->ext_ca, NID_subject_alt_name, "URI:sip:alice@example.test"), 0);
	sign_cert(x, f->ext_key);
	assert_int_equal(verify(f, x, 0, NULL), PKI_VERIFY_UNTRUSTED);
	X509_free(x);
}

/* The store cannot answer (the table is gone under it): unknown, never
 * "not revoked" nor "no such certificate". */
static void test_pki_store_outage_is_unavailable(void **state)
{
	struct fx *f = *state;
	X509 *leaf = NULL;
	sqlite3 *db = NULL;
	unsigned char *der = NULL;
	size_t len = 0;
	char serial[PKI_SERIAL_MAX];

	assert_int_equal(issue(f, "sip:alice@example.test", f->ec, 0, &leaf, serial), PKI_OK);
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DROP TABLE certificates", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(verify(f, leaf, 0, NULL), PKI_VERIFY_UNAVAILABLE);
	assert_int_equal(pki_serial_revoked(f->s, serial), -1);
	assert_int_equal(pki_crl_der(f->s, &der, &len), -1);
	assert_null(der);
	assert_int_equal(issue(f, "sip:alice@example.test", f->ec, 0, NULL, NULL), PKI_E_STORE);
	assert_true(pki_revoke_serial(f->s, serial, NULL) < 0);
	X509_free(leaf);
}

struct worker_arg {
	struct fx *f;
	char *csr;
	int ok;
};

/* One thread: its own store connection, issue then verify and check. */
static void *issue_verify_thread(void *p)
{
	struct worker_arg *a = p;
	struct store *s = NULL;
	struct store_user u;
	char err[256], serial[PKI_SERIAL_MAX], cs[PKI_SERIAL_MAX], uri[STORE_URI_MAX];
	char *csr = a->csr, *chain = NULL;
	int64_t na;

	if (store_open(a->f->db, 0, 5000, &s, err, sizeof(err)) != STORE_OK ||
	    store_user_get(s, "sip:carol@example.test", &u) != STORE_OK)
		goto out;
	for (int i = 0; i < 10; i++) {
		X509 *leaf;
		if (pki_issue(s, &u, csr, strlen(csr), 0, &chain, serial, &na) != PKI_OK)
			goto out;
		/* no cmocka assertion off the main thread */
		BIO *bio = BIO_new_mem_buf(chain, -1);
		leaf = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
		BIO_free(bio);
		free(chain);
		chain = NULL;
		if (leaf &&
		    pki_verify_client(s, leaf, NULL, (int64_t)time(NULL), uri, sizeof(uri)) ==
			PKI_VERIFY_OK &&
		    strcmp(uri, "sip:carol@example.test") == 0 && pki_cert_serial(leaf, cs) == 0 &&
		    strcmp(cs, serial) == 0 && pki_serial_revoked(s, serial) == 0)
			a->ok++;
		X509_free(leaf);
	}
out:
	store_close(s);
	return NULL;
}

static void test_pki_issue_and_verify_from_several_threads(void **state)
{
	struct fx *f = *state;
	enum { NT = 4 };
	pthread_t t[NT];
	struct worker_arg a[NT];
	char *csr = make_csr(f->ec, "x", NULL);

	for (int i = 0; i < NT; i++) {
		a[i] = (struct worker_arg){f, csr, 0};
		assert_int_equal(pthread_create(&t[i], NULL, issue_verify_thread, &a[i]), 0);
	}
	for (int i = 0; i < NT; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(a[i].ok, 10);
	}
	free(csr);
}

/* ---- OCSP against `openssl ocsp` on 127.0.0.1 ---------------------------- */

static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* Is a socket listening on port (any address)? Read from /proc, without
 * connecting: `openssl ocsp` serves one connection at a time. */
static bool port_listening(int port)
{
	const char *files[] = {"/proc/net/tcp6", "/proc/net/tcp"};
	char line[512], want[16];
	bool found = false;

	snprintf(want, sizeof(want), ":%04X ", port);
	for (int i = 0; i < 2 && !found; i++) {
		FILE *fp = fopen(files[i], "r");
		while (fp && !found && fgets(line, sizeof(line), fp)) {
			char *local = strchr(line, ':'); /* after "sl:" */
			local = local ? strchr(local + 1, ':') : NULL;
			/* local address "...:PPPP", remote, state 0A = LISTEN */
			if (local && strncmp(local, want, strlen(want)) == 0 &&
			    strstr(line, " 0A "))
				found = true;
		}
		if (fp)
			fclose(fp);
	}
	return found;
}

/* An index.txt line (openssl ca's database) for x: valid or revoked. */
static void index_line(FILE *fp, X509 *x, bool revoked)
{
	char serial[PKI_SERIAL_MAX];
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *hex = BN_bn2hex(bn);

	snprintf(serial, sizeof(serial), "%s", hex);
	fprintf(fp, "%s\t301231000000Z\t%s\t%s\tunknown\t/CN=x\n", revoked ? "R" : "V",
		revoked ? "240101000000Z" : "", serial);
	OPENSSL_free(hex);
	BN_free(bn);
}

extern char **environ;

static void start_responder(struct fx *f, int port, X509 *good, X509 *revoked)
{
	char idx[128], ca[128], key[128], portarg[32];
	FILE *fp;
	char *argv[] = {"openssl", "ocsp", "-index", idx, "-port", portarg, "-rsigner",	   ca,
			"-rkey",   key,	   "-CA",    ca,  "-nmin", "5",	    "-ignore_err", NULL};

	snprintf(idx, sizeof(idx), "%s/index.txt", f->dir);
	snprintf(ca, sizeof(ca), "%s/ocsp-ca.pem", f->dir);
	snprintf(key, sizeof(key), "%s/ocsp-ca.key", f->dir);
	snprintf(portarg, sizeof(portarg), "%d", port); /* clients: 127.0.0.1 only */
	fp = fopen(idx, "w");
	assert_non_null(fp);
	index_line(fp, good, false);
	index_line(fp, revoked, true);
	fclose(fp);
	write_pem_cert(ca, f->ext_ca);
	fp = fopen(key, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_PrivateKey(fp, f->ext_key, NULL, NULL, 0, NULL, NULL), 1);
	fclose(fp);
	assert_int_equal(posix_spawnp(&f->ocsp_pid, "openssl", NULL, NULL, argv, environ), 0);
	for (int i = 0; i < 100 && !port_listening(port); i++)
		usleep(50000);
	assert_true(port_listening(port));
}

static void stop_responder(struct fx *f)
{
	kill(f->ocsp_pid, SIGTERM);
	waitpid(f->ocsp_pid, NULL, 0);
	f->ocsp_pid = 0;
}

static void test_pki_verify_asks_the_ocsp_responder(void **state)
{
	struct fx *f = *state;
	int port = free_port();
	char aia[96];
	X509 *good, *revoked, *later, *no_aia;

	snprintf(aia, sizeof(aia), "OCSP;URI:http://127.0.0.1:%d/", port);
	init_ext(f);
	good = make_cert(f->ec, NULL, f->ext_ca, f->ext_key, -DAY, DAY, false);
	revoked = make_cert(f->ec, NULL, f->ext_ca, f->ext_key, -DAY, DAY, false);
	later = make_cert(f->ec, NULL, f->ext_ca, f->ext_key, -DAY, DAY, false);
	no_aia = ext_leaf(f, f->ec, NULL, "URI:sip:alice@example.test", -DAY, DAY);
	for (X509 **x = (X509 *[]){good, revoked, later, NULL}; *x; x++) {
		assert_int_equal(
		    x509_add_ext(*x, f->ext_ca, NID_subject_alt_name, "URI:sip:alice@example.test"),
		    0);
		assert_int_equal(x509_add_ext(*x, f->ext_ca, NID_info_access, aia), 0);
		sign_cert(*x, f->ext_key);
	}
	/* nobody listens yet: the status is unknown, never good */
	assert_int_equal(verify(f, good, 0, NULL), PKI_VERIFY_UNAVAILABLE);
	start_responder(f, port, good, revoked);
	assert_int_equal(verify(f, good, 0, NULL), PKI_VERIFY_OK);
	assert_int_equal(verify(f, revoked, 0, NULL), PKI_VERIFY_REVOKED);
	assert_int_equal(verify(f, no_aia, 0, NULL), PKI_VERIFY_OK); /* no responder named */
	stop_responder(f);
	/* answers are cached; a certificate not asked before finds the responder down */
	assert_int_equal(verify(f, good, 0, NULL), PKI_VERIFY_OK);
	assert_int_equal(verify(f, revoked, 0, NULL), PKI_VERIFY_REVOKED);
	assert_int_equal(verify(f, later, 0, NULL), PKI_VERIFY_UNAVAILABLE);
	/* [pki] ocsp = no: the responder is not asked */
	f->cfg->pki_ocsp = false;
	init_pki(f);
	assert_int_equal(verify(f, later, 0, NULL), PKI_VERIFY_OK);
	X509_free(good);
	X509_free(revoked);
	X509_free(later);
	X509_free(no_aia);
}

/* verify until the answer is not PKI_VERIFY_PENDING (at most 15 s). */
static int verify_settled(struct fx *f, X509 *x, double *waited)
{
	struct timespec a, b;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < 1500; i++) {
		rc = verify(f, x, 0, NULL);
		if (rc != PKI_VERIFY_PENDING)
			break;
		usleep(10000);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	*waited = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	return rc;
}

static double secs_since(const struct timespec *a)
{
	struct timespec b;

	clock_gettime(CLOCK_MONOTONIC, &b);
	return (double)(b.tv_sec - a->tv_sec) + (double)(b.tv_nsec - a->tv_nsec) / 1e9;
}

/* With the pool running (the daemon), pki_verify_client never waits for a
 * responder: PKI_VERIFY_PENDING at once, one query per certificate on the
 * pool, then the answer from the cache; a responder that never answers
 * gives UNAVAILABLE within the budget, never good nor revoked. */
static void test_pki_ocsp_runs_on_the_pool_and_never_blocks_the_caller(void **state)
{
	struct fx *f = *state;
	int port = free_port(), silent_port, lfd, n_conns = 0, c;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	char aia[96], aia_silent[96], uri[STORE_URI_MAX];
	X509 *good, *revoked, *slow;
	struct timespec t0;
	double waited;

	/* a responder that accepts (the kernel's backlog) and never answers */
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 16), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
	silent_port = ntohs(sa.sin_port);
	snprintf(aia, sizeof(aia), "OCSP;URI:http://127.0.0.1:%d/", port);
	snprintf(aia_silent, sizeof(aia_silent), "OCSP;URI:http://127.0.0.1:%d/", silent_port);
	init_ext(f);
	good = make_cert(f->ec, NULL, f->ext_ca, f->ext_key, -DAY, DAY, false);
	revoked = make_cert(f->ec, NULL, f->ext_ca, f->ext_key, -DAY, DAY, false);
	slow = make_cert(f->ec, NULL, f->ext_ca, f->ext_key, -DAY, DAY, false);
	for (X509 **x = (X509 *[]){good, revoked, slow, NULL}; *x; x++) {
		assert_int_equal(
		    x509_add_ext(*x, f->ext_ca, NID_subject_alt_name, "URI:sip:alice@example.test"),
		    0);
		assert_int_equal(
		    x509_add_ext(*x, f->ext_ca, NID_info_access, *x == slow ? aia_silent : aia), 0);
		sign_cert(*x, f->ext_key);
	}
	assert_int_equal(workq_start(2, 16), 0);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(verify(f, slow, 0, NULL), PKI_VERIFY_PENDING);
	assert_int_equal(verify(f, slow, 0, NULL), PKI_VERIFY_PENDING); /* no second query */
	assert_int_equal(pki_verify_client(f->s, slow, NULL, time(NULL), uri, sizeof(uri)),
			 PKI_VERIFY_PENDING);
	assert_true(secs_since(&t0) < 1.0); /* the caller did not wait for the 3 s budget */
	/* servers' certificates (OAuth partners) never see PENDING */
	assert_int_equal(pki_verify_cert(f->s, slow, NULL, time(NULL)), PKI_VERIFY_UNAVAILABLE);
	assert_int_equal(verify_settled(f, slow, &waited), PKI_VERIFY_UNAVAILABLE);
	assert_true(secs_since(&t0) > 2.0 && secs_since(&t0) < 10.0);
	/* remembered for a moment: the waiters see it, no new query at once */
	assert_int_equal(verify(f, slow, 0, NULL), PKI_VERIFY_UNAVAILABLE);
	fcntl(lfd, F_SETFL, O_NONBLOCK);
	while ((c = accept(lfd, NULL, NULL)) >= 0) {
		n_conns++;
		close(c);
	}
	assert_int_equal(n_conns, 1);
	close(lfd);

	start_responder(f, port, good, revoked);
	assert_int_equal(verify(f, good, 0, NULL), PKI_VERIFY_PENDING);
	assert_int_equal(verify_settled(f, good, &waited), PKI_VERIFY_OK);
	assert_int_equal(verify(f, good, 0, uri), PKI_VERIFY_OK);
	assert_string_equal(uri, "sip:alice@example.test");
	assert_int_equal(verify_settled(f, revoked, &waited), PKI_VERIFY_REVOKED);
	workq_stop();
	/* without the pool (rtcauthctl): inline again, and the cache still answers */
	assert_int_equal(verify(f, revoked, 0, NULL), PKI_VERIFY_REVOKED);
	X509_free(good);
	X509_free(revoked);
	X509_free(slow);
}

/* A good answer about to expire (within a minute) is asked again in the
 * background while it still answers: a refresh that fails keeps it (and
 * is not tried again for 5 s), one that succeeds replaces it (here:
 * revoked since). */
static void test_pki_ocsp_refreshes_a_good_answer_ahead_of_its_expiry(void **state)
{
	struct fx *f = *state;
	int port = free_port();
	int64_t now = (int64_t)time(NULL), later = now + 250; /* nextUpdate: now + 5 min */
	char aia[96];
	X509 *good, *other;
	double waited;
	int rc = PKI_VERIFY_OK;

	snprintf(aia, sizeof(aia), "OCSP;URI:http://127.0.0.1:%d/", port);
	init_ext(f);
	good = make_cert(f->ec, NULL, f->ext_ca, f->ext_key, -DAY, DAY, false);
	other = make_cert(f->ec, NULL, f->ext_ca, f->ext_key, -DAY, DAY, false);
	for (X509 **x = (X509 *[]){good, other, NULL}; *x; x++) {
		assert_int_equal(
		    x509_add_ext(*x, f->ext_ca, NID_subject_alt_name, "URI:sip:alice@example.test"),
		    0);
		assert_int_equal(x509_add_ext(*x, f->ext_ca, NID_info_access, aia), 0);
		sign_cert(*x, f->ext_key);
	}
	assert_int_equal(workq_start(1, 16), 0);
	start_responder(f, port, good, other);
	assert_int_equal(verify_settled(f, good, &waited), PKI_VERIFY_OK);
	assert_int_equal(verify(f, good, later - 200, NULL), PKI_VERIFY_OK); /* not due yet */
	stop_responder(f);
	/* due, the responder down: the refresh fails, the answer stands */
	for (int i = 0; i < 100; i++) {
		assert_int_equal(verify(f, good, later, NULL), PKI_VERIFY_OK);
		usleep(10000);
	}
	/* revoked since: a failed refresh waits 5 s before the next one, which
	 * brings the news */
	start_responder(f, port, other, good);
	assert_int_equal(verify(f, good, later + 1, NULL), PKI_VERIFY_OK); /* not retried yet */
	usleep(300000);
	assert_int_equal(verify(f, good, later + 1, NULL), PKI_VERIFY_OK);
	assert_int_equal(verify(f, good, later + 10, NULL), PKI_VERIFY_OK); /* meanwhile */
	for (int i = 0; i < 1000 && rc == PKI_VERIFY_OK; i++) {
		usleep(10000);
		rc = verify(f, good, later + 10, NULL);
	}
	assert_int_equal(rc, PKI_VERIFY_REVOKED);
	workq_stop();
	X509_free(good);
	X509_free(other);
}

static void test_pki_serial_normalise(void **state)
{
	char out[PKI_SERIAL_MAX];

	(void)state;
	assert_int_equal(pki_serial_normalise("00:0a:Bc", out), 0);
	assert_string_equal(out, "0ABC");
	assert_int_equal(pki_serial_normalise("abc", out), 0);
	assert_string_equal(out, "0ABC");
	assert_int_equal(pki_serial_normalise("", out), -1);
	assert_int_equal(pki_serial_normalise("12g4", out), -1);
	assert_int_equal(pki_serial_normalise("-12", out), -1);
	assert_true(pki_reason_valid("KeyCompromise"));
	assert_true(pki_reason_valid(NULL));
	assert_false(pki_reason_valid("because"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	    T(test_pki_builtin_ca_is_made_once_with_a_private_key_file),
	    T(test_pki_enterprise_ca_is_used_and_checked),
	    T(test_pki_config_needs_ca_cert_and_key_together),
	    T(test_pki_issues_rsa_2048_with_our_names_and_extensions),
	    T(test_pki_issues_ec_p256_without_key_encipherment),
	    T(test_pki_long_uri_gets_an_empty_subject_and_a_critical_san),
	    T(test_pki_refuses_weak_and_other_keys),
	    T(test_pki_ignores_the_names_a_csr_asks_for),
	    T(test_pki_refuses_tampered_and_malformed_csrs),
	    T(test_pki_lifetime_bounds),
	    T(test_pki_serials_are_unique_over_many_issues),
	    T(test_pki_revoked_certificate_fails_and_is_in_the_crl),
	    T(test_pki_verify_validity_period),
	    T(test_pki_verify_refuses_untrusted_issuers),
	    T(test_pki_verify_refuses_our_serial_without_a_record),
	    T(test_pki_verify_maps_by_san_uri_then_upn_email_cn),
	    T(test_pki_verify_refuses_disabled_and_unknown_users),
	    T(test_pki_verify_checks_external_crl_files),
	    T(test_pki_verify_asks_the_ocsp_responder),
	    T(test_pki_ocsp_runs_on_the_pool_and_never_blocks_the_caller),
	    T(test_pki_ocsp_refreshes_a_good_answer_ahead_of_its_expiry),
	    T(test_pki_verify_refuses_a_certificate_without_client_auth),
	    T(test_pki_store_outage_is_unavailable),
	    T(test_pki_issue_and_verify_from_several_threads),
	    T(test_pki_reload_trusts_a_root_added_and_forgets_one_removed),
	    T(test_pki_reload_with_a_bad_file_keeps_the_old_state),
	    T(test_pki_reload_loads_a_crl_file_added),
	    T(test_pki_reload_swaps_an_imported_ca_only_when_its_files_change),
	    cmocka_unit_test(test_pki_serial_normalise),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
