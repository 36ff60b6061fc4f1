/*
 * Certificate provisioning (issue 5 item 3) without the real CA: the
 * issuer is a fake that records whom it was asked to certify and signs
 * with a throwaway test CA. What is tested is who gets a certificate and
 * which answer each bad request gets: the JSON form (PIN or web ticket),
 * the SOAP form's bounded XML scan and its answer, and that nothing is
 * issued for a wrong, locked, ambiguous or malformed request.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>
#include <sqlite3.h>

#include "core/b64.h"
#include "pki/certprov.h"
#include "pki/pin.h"
#include "store/store.h"
#include "vault/vault_pin.h"

#define NOW 1800000000LL

struct fx {
	char dir[64];
	char path[128];
	struct store *s;
	struct store_user alice, bob, carol;
	struct certprov_env env;
	char *csr_carol; /* PEM, CN = sip:carol@example.test */
	char *csr_other; /* PEM, CN = sip:ceo@example.test */
	unsigned char *csr_der;
	int csr_der_len;
};

/* ---- the fake issuer ---- */

static EVP_PKEY *ca_key;
static X509 *ca_cert;
static int issued;
static char issued_to[STORE_URI_MAX];
static int issue_rc; /* what the fake answers */

static X509 *make_cert(EVP_PKEY *pub, const char *cn, X509 *issuer)
{
	X509 *x = X509_new();

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : X509_get_subject_name(x));
	X509_set_pubkey(x, pub);
	assert_true(X509_sign(x, ca_key, EVP_sha256()) > 0);
	return x;
}

static void pem_append(BIO *b, X509 *x)
{
	assert_int_equal(PEM_write_bio_X509(b, x), 1);
}

static int fake_issue(struct store *s, const struct store_user *u, const char *csr_pem,
		      size_t csr_len, int lifetime_s, char **chain_pem, char serial[PKI_SERIAL_MAX],
		      int64_t *not_after)
{
	BIO *in, *out;
	X509_REQ *req;
	X509 *leaf;
	char *data;
	long n;

	(void)s;
	(void)lifetime_s;
	*chain_pem = NULL;
	issued++;
	snprintf(issued_to, sizeof(issued_to), "%s", u->uri);
	if (issue_rc != PKI_OK)
		return issue_rc;
	in = BIO_new_mem_buf(csr_pem, (int)csr_len);
	req = PEM_read_bio_X509_REQ(in, NULL, NULL, NULL);
	BIO_free(in);
	if (!req)
		return PKI_E_CSR;
	leaf = make_cert(X509_REQ_get0_pubkey(req), u->uri, ca_cert);
	X509_REQ_free(req);
	out = BIO_new(BIO_s_mem());
	pem_append(out, leaf);
	pem_append(out, ca_cert);
	n = BIO_get_mem_data(out, &data);
	*chain_pem = strndup(data, (size_t)n);
	BIO_free(out);
	X509_free(leaf);
	snprintf(serial, PKI_SERIAL_MAX, "1092");
	*not_after = NOW + 86400;
	return PKI_OK;
}

/* ---- fixtures ---- */

static char *make_csr(const char *cn, unsigned char **der, int *der_len)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509_REQ *r = X509_REQ_new();
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *pem;
	long n;

	assert_non_null(k);
	X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(r), "CN", MBSTRING_UTF8,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_REQ_set_pubkey(r, k);
	assert_true(X509_REQ_sign(r, k, EVP_sha256()) > 0);
	PEM_write_bio_X509_REQ(b, r);
	n = BIO_get_mem_data(b, &data);
	pem = strndup(data, (size_t)n);
	if (der) {
		*der = NULL;
		*der_len = i2d_X509_REQ(r, der);
	}
	BIO_free(b);
	X509_REQ_free(r);
	EVP_PKEY_free(k);
	return pem;
}

static void add_user(struct fx *f, struct store_user *u, const char *uri, const char *phone,
		     const char *ext)
{
	char user[STORE_URI_MAX], domain[STORE_URI_MAX];

	memset(u, 0, sizeof(*u));
	assert_int_equal(store_uri_normalise(uri, u->uri, user, domain), 0);
	u->enabled = true;
	assert_int_equal(store_user_add(f->s, u), STORE_OK);
	assert_int_equal(store_user_set_phone(f->s, u->uri, phone, ext), STORE_OK);
}

static int group_setup(void **state)
{
	(void)state;
	ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	assert_non_null(ca_key);
	ca_cert = make_cert(ca_key, "rtcauth test CA", NULL);
	vault_pin_set_cost(10);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	X509_free(ca_cert);
	EVP_PKEY_free(ca_key);
	return 0;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/rtc-certprov-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/store.db", f->dir);
	assert_int_equal(store_open(f->path, STORE_CREATE, 50, &f->s, err, sizeof(err)), STORE_OK);
	add_user(f, &f->alice, "sip:alice@example.test", "+14255550100", "1001");
	add_user(f, &f->bob, "sip:bob@example.test", "+14255550100", "1002");
	add_user(f, &f->carol, "sip:carol@example.test", "+14255550177", "2001");
	assert_int_equal(vault_pin_set(f->s, f->carol.id, "4809", 4, NOW), STORE_OK);
	f->env.issue = fake_issue;
	f->env.now = NOW;
	f->csr_carol = make_csr("sip:carol@example.test", &f->csr_der, &f->csr_der_len);
	f->csr_other = make_csr("sip:ceo@example.test", NULL, NULL);
	issued = 0;
	issued_to[0] = '\0';
	issue_rc = PKI_OK;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char p[200];

	store_close(f->s);
	unlink(f->path);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", f->path);
	unlink(p);
	rmdir(f->dir);
	free(f->csr_carol);
	free(f->csr_other);
	OPENSSL_free(f->csr_der);
	free(f);
	return 0;
}

/* A JSON body: {"user": who, "pin": pin, "csr": csr} (NULL fields left out). */
static void post(struct fx *f, const char *who, const char *pin, const char *csr,
		 const char *ticket, struct certprov_result *r)
{
	json_t *o = json_object();
	char *body;

	if (who)
		json_object_set_new(o, "user", json_string(who));
	if (pin)
		json_object_set_new(o, "pin", json_string(pin));
	if (csr)
		json_object_set_new(o, "csr", json_string(csr));
	body = json_dumps(o, JSON_COMPACT);
	certprov_json(f->s, &f->env, body, strlen(body), ticket, r);
	free(body);
	json_decref(o);
}

static void post_raw(struct fx *f, const char *body, struct certprov_result *r)
{
	certprov_json(f->s, &f->env, body, body ? strlen(body) : 0, NULL, r);
}

/* ---- JSON form ---- */

static void test_certprov_number_and_pin_get_a_certificate_for_that_user(void **state)
{
	struct fx *f = *state;
	struct certprov_result r;

	post(f, "+14255550177", "4809", f->csr_carol, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_null(r.error);
	assert_int_equal(issued, 1);
	assert_string_equal(issued_to, "sip:carol@example.test");
	assert_string_equal(r.user, "sip:carol@example.test");
	assert_non_null(strstr(r.chain_pem, "BEGIN CERTIFICATE"));
	assert_int_equal(r.not_after, NOW + 86400);
	assert_string_equal(r.via, "pin");
	assert_false(r.csr_named_other);
	certprov_result_free(&r);
	post(f, "2001", "4809", f->csr_carol, NULL, &r);
	assert_int_equal(r.status, 200);
	certprov_result_free(&r);
}

static void test_certprov_wrong_pin_and_unknown_number_answer_alike(void **state)
{
	struct fx *f = *state;
	struct certprov_result a, b;
	struct store_pin_state st;

	post(f, "+14255550177", "1111", f->csr_carol, NULL, &a);
	post(f, "+19995550177", "1111", f->csr_carol, NULL, &b);
	assert_int_equal(a.status, 401);
	assert_int_equal(b.status, 401);
	assert_string_equal(a.error, "invalid_pin");
	assert_string_equal(a.error, b.error);
	assert_string_equal(a.description, b.description);
	assert_true(a.www_authenticate && b.www_authenticate);
	assert_int_equal(a.retry_after, 0);
	assert_int_equal(issued, 0);
	assert_int_equal(store_pin_get_state(f->s, f->carol.id, &st), STORE_OK);
	assert_int_equal(st.local_failures, 1); /* counted */
}

static void test_certprov_locked_pin_is_403_with_retry_after(void **state)
{
	struct fx *f = *state;
	struct certprov_result r;
	struct store_pin_state st;

	for (int i = 0; i < 10; i++) {
		post(f, "2001", "1111", f->csr_carol, NULL, &r);
		assert_int_equal(r.status, 401);
	}
	post(f, "2001", "4809", f->csr_carol, NULL, &r);
	assert_int_equal(r.status, 403);
	assert_string_equal(r.error, "pin_locked");
	assert_int_equal(r.retry_after, PIN_LOCK_TIME);
	assert_int_equal(issued, 0);
	/* the global lock: no Retry-After, an administrator is needed */
	assert_int_equal(store_pin_get_state(f->s, f->carol.id, &st), STORE_OK);
	st.admin_locked = true;
	assert_int_equal(store_pin_set_state(f->s, &st), STORE_OK);
	post(f, "2001", "4809", f->csr_carol, NULL, &r);
	assert_int_equal(r.status, 403);
	assert_int_equal(r.retry_after, 0);
	assert_non_null(strstr(r.description, "rtcauthctl pin unlock"));
	assert_int_equal(pin_unlock(f->s, f->carol.id), STORE_OK);
	post(f, "2001", "4809", f->csr_carol, NULL, &r);
	assert_int_equal(r.status, 200);
	certprov_result_free(&r);
}

static void test_certprov_ambiguous_number_and_pin_is_409_asking_for_the_extension(void **state)
{
	struct fx *f = *state;
	struct certprov_result r;

	assert_int_equal(vault_pin_set(f->s, f->alice.id, "583920", 6, NOW), STORE_OK);
	assert_int_equal(vault_pin_set(f->s, f->bob.id, "583920", 6, NOW), STORE_OK);
	post(f, "+14255550100", "583920", f->csr_carol, NULL, &r);
	assert_int_equal(r.status, 409);
	assert_string_equal(r.error, "ambiguous_user");
	assert_non_null(strstr(r.description, "extension"));
	assert_int_equal(issued, 0);
	post(f, "+14255550100;ext=1002", "583920", f->csr_carol, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(issued_to, "sip:bob@example.test");
	certprov_result_free(&r);
}

static void test_certprov_store_outage_is_503_not_401(void **state)
{
	struct fx *f = *state;
	struct certprov_result r;
	sqlite3 *db;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "ALTER TABLE pins RENAME TO pins_gone", NULL, NULL, NULL),
			 SQLITE_OK);
	post(f, "2001", "4809", f->csr_carol, NULL, &r);
	assert_int_equal(r.status, 503);
	assert_string_equal(r.error, "temporarily_unavailable");
	assert_true(r.retry_after > 0);
	post(f, "2001", "1111", f->csr_carol, NULL, &r);
	assert_int_equal(r.status, 503);
	assert_int_equal(issued, 0);
	sqlite3_exec(db, "ALTER TABLE pins_gone RENAME TO pins", NULL, NULL, NULL);
	sqlite3_close(db);
	/* the store fails recording the certificate */
	issue_rc = PKI_E_STORE;
	post(f, "2001", "4809", f->csr_carol, NULL, &r);
	assert_int_equal(r.status, 503);
}

static void test_certprov_weak_key_is_refused_clearly(void **state)
{
	struct fx *f = *state;
	struct certprov_result r;

	issue_rc = PKI_E_WEAK_KEY;
	post(f, "2001", "4809", f->csr_carol, NULL, &r);
	assert_int_equal(r.status, 400);
	assert_string_equal(r.error, "weak_key");
	assert_non_null(strstr(r.description, "2048"));
	assert_null(r.chain_pem);
	issue_rc = PKI_E_CSR;
	post(f, "2001", "4809", f->csr_carol, NULL, &r);
	assert_int_equal(r.status, 400);
	assert_string_equal(r.error, "invalid_csr");
}

static void test_certprov_csr_naming_someone_else_is_issued_for_the_pin_user(void **state)
{
	struct fx *f = *state;
	struct certprov_result r;

	post(f, "2001", "4809", f->csr_other, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_true(r.csr_named_other);
	assert_string_equal(issued_to, "sip:carol@example.test");
	assert_non_null(strstr(r.chain_pem, "BEGIN CERTIFICATE"));
	certprov_result_free(&r);
}

static void test_certprov_bad_requests_are_400_and_issue_nothing(void **state)
{
	struct fx *f = *state;
	struct certprov_result r;
	struct store_pin_state st;
	static const char *const raw[] = {
	    "",
	    "not json",
	    "[1,2]",
	    "{\"user\":\"2001\",\"pin\":4809,\"csr\":\"x\"}",
	    "{\"user\":\"2001\",\"pin\":\"4809\",\"user\":\"2002\",\"csr\":\"x\"}",
	};
	char big[PKI_CSR_MAX + 100];

	for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
		post_raw(f, raw[i], &r);
		assert_int_equal(r.status, 400);
		assert_string_equal(r.error, "invalid_request");
	}
	post_raw(f, NULL, &r);
	assert_int_equal(r.status, 400);
	post(f, "2001", "4809", NULL, NULL, &r);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.description, "csr"));
	post(f, "2001", "4809", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n", NULL, &r);
	assert_int_equal(r.status, 400);
	assert_string_equal(r.error, "invalid_csr");
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	post(f, "2001", "4809", big, NULL, &r);
	assert_string_equal(r.error, "invalid_csr");
	post(f, NULL, "4809", f->csr_carol, NULL, &r);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.description, "web ticket"));
	post(f, "2001", NULL, f->csr_carol, NULL, &r);
	assert_int_equal(r.status, 400);
	post(f, "not a number", "4809", f->csr_carol, NULL, &r);
	assert_int_equal(r.status, 400);
	post(f, "2001", "48O9", f->csr_carol, NULL, &r);
	assert_int_equal(r.status, 400);
	assert_int_equal(issued, 0);
	assert_int_equal(store_pin_get_state(f->s, f->carol.id, &st), STORE_OK);
	assert_int_equal(st.global_failures, 0);
}

static void test_certprov_web_ticket_replaces_the_pin(void **state)
{
	struct fx *f = *state;
	struct certprov_result r;

	/* no PIN, no user field: the ticket's user */
	post(f, NULL, NULL, f->csr_carol, "sip:bob@example.test", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(issued_to, "sip:bob@example.test");
	assert_string_equal(r.via, "webticket");
	certprov_result_free(&r);
	/* a "user" in the body does not change whose certificate it is */
	post(f, "2001", "0000", f->csr_carol, "sip:bob@example.test", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(issued_to, "sip:bob@example.test");
	certprov_result_free(&r);
	/* a ticket of a user who is gone or disabled */
	post(f, NULL, NULL, f->csr_carol, "sip:gone@example.test", &r);
	assert_int_equal(r.status, 403);
	assert_int_equal(store_user_set_enabled(f->s, f->bob.uri, false), STORE_OK);
	post(f, NULL, NULL, f->csr_carol, "sip:bob@example.test", &r);
	assert_int_equal(r.status, 403);
	assert_int_equal(issued, 2);
}

/* ---- SOAP form ---- */

static char *soap_body(struct fx *f, const char *entity, const char *value_type, const char *b64,
		       const char *prefix_extra)
{
	char *b64buf = NULL, *out = NULL;
	size_t cap = b64_std_len((size_t)f->csr_der_len) + 1;

	if (!b64) {
		b64buf = malloc(cap);
		assert_true(b64_std_encode(f->csr_der, (size_t)f->csr_der_len, b64buf, cap) > 0);
		b64 = b64buf;
	}
	assert_true(
	    asprintf(&out,
		     "<?xml version=\"1.0\"?>%s"
		     "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Header/>"
		     "<s:Body><GetAndPublishCert "
		     "xmlns=\"http://schemas.microsoft.com/OCS/AuthWebServices/\" "
		     "xmlns:wst=\"http://docs.oasis-open.org/ws-sx/ws-trust/200512/\" "
		     "DeviceId=\"{1234}\" Entity=\"%s\"><wst:RequestSecurityToken>"
		     "<wst:TokenType>x#X509v3</wst:TokenType>"
		     "<wsse:BinarySecurityToken ValueType=\"%s\" "
		     "EncodingType=\"x#Base64Binary\">&#13;\r\n%s\r\n</wsse:BinarySecurityToken>"
		     "<wstep:RequestID>{0f1e2d3c-aaaa}</wstep:RequestID>"
		     "</wst:RequestSecurityToken></GetAndPublishCert></s:Body></s:Envelope>",
		     prefix_extra, entity, value_type, b64) > 0);
	free(b64buf);
	return out;
}

#define PKCS10_VT "http://schemas.microsoft.com/OCS/AuthWebServices.xsd#PKCS10"

static void test_certprov_soap_request_is_scanned_for_the_pkcs10(void **state)
{
	struct fx *f = *state;
	char entity[STORE_URI_MAX], reqid[CERTPROV_REQID_MAX], *pem = NULL;
	char *body = soap_body(f, "sip:carol@example.test", PKCS10_VT, NULL, "");
	const char *why;
	size_t len;

	assert_int_equal(certprov_soap_parse(body, strlen(body), &pem, &len, entity, reqid, &why),
			 0);
	assert_non_null(strstr(pem, "BEGIN CERTIFICATE REQUEST"));
	assert_string_equal(entity, "sip:carol@example.test");
	assert_string_equal(reqid, "{0f1e2d3c-aaaa}");
	free(pem);
	free(body);
	/* line breaks written as character references, any case */
	{
		size_t cap = b64_std_len((size_t)f->csr_der_len) + 1;
		char *b64 = malloc(cap), *split = malloc(cap + 16);

		assert_true(b64_std_encode(f->csr_der, (size_t)f->csr_der_len, b64, cap) > 0);
		snprintf(split, cap + 16, "%.40s&#xd;&#xD;%s", b64, b64 + 40);
		body = soap_body(f, "", PKCS10_VT, split, "");
		assert_int_equal(
		    certprov_soap_parse(body, strlen(body), &pem, &len, entity, reqid, &why), 0);
		free(pem);
		free(body);
		free(b64);
		free(split);
	}
}

static void test_certprov_soap_bad_requests_say_why(void **state)
{
	struct fx *f = *state;
	char entity[STORE_URI_MAX], reqid[CERTPROV_REQID_MAX], *pem = NULL, *body;
	const char *why;
	size_t len;
	struct {
		const char *vt, *b64, *extra;
	} bad[] = {
	    {"x#X509v3", NULL, ""},				   /* not a PKCS#10 token */
	    {PKCS10_VT, "!!notbase64!!", ""},			   /* not base64 */
	    {PKCS10_VT, "AAAA", ""},				   /* base64, not DER */
	    {PKCS10_VT, NULL, "<!DOCTYPE x [<!ENTITY a \"b\">]>"}, /* a DTD */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		body = soap_body(f, "", bad[i].vt, bad[i].b64, bad[i].extra);
		why = NULL;
		assert_int_equal(
		    certprov_soap_parse(body, strlen(body), &pem, &len, entity, reqid, &why), -1);
		assert_non_null(why);
		assert_null(pem);
		free(body);
	}
	static const char *const junk[] = {
	    "", "<a/>", "<s:Body>", "<s:Body><GetAndPublishCert>",
	    "<s:Body><GetAndPublishCert><BinarySecurityToken ValueType=\"#PKCS10\">AAAA"};
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		assert_int_equal(
		    certprov_soap_parse(junk[i], strlen(junk[i]), &pem, &len, entity, reqid, &why),
		    -1);
}

static void test_certprov_soap_issues_for_the_ticket_user_with_the_chain(void **state)
{
	struct fx *f = *state;
	char reqid[CERTPROV_REQID_MAX],
	    *body = soap_body(f, "sip:carol@example.test", PKCS10_VT, NULL, ""), *xml, *p, *q;
	struct certprov_result r;
	uint8_t der[4096];
	size_t len, dlen;
	const unsigned char *dp = der;
	X509 *leaf;
	PKCS7 *p7;

	certprov_soap(f->s, &f->env, body, strlen(body), "sip:carol@example.test", &r, reqid);
	assert_int_equal(r.status, 200);
	assert_string_equal(issued_to, "sip:carol@example.test");
	xml = certprov_soap_answer(&r, reqid, &len);
	certprov_result_free(&r);
	assert_non_null(xml);
	assert_non_null(strstr(xml, "RequestSecurityTokenResponse"));
	assert_non_null(strstr(xml, "<wstep:RequestID>{0f1e2d3c-aaaa}</wstep:RequestID>"));
	/* the leaf: base64 DER in RequestedSecurityToken */
	p = strstr(xml, "<wst:RequestedSecurityToken><wsse:BinarySecurityToken");
	assert_non_null(p);
	p = strchr(p + 40, '>') + 1;
	q = strchr(p, '<');
	assert_int_equal(b64_std_decode(p, (size_t)(q - p), der, sizeof(der), &dlen), 0);
	leaf = d2i_X509(NULL, &dp, (long)dlen);
	assert_non_null(leaf);
	assert_true(X509_NAME_get_index_by_NID(X509_get_subject_name(leaf), NID_commonName, -1) >=
		    0);
	X509_free(leaf);
	/* the chain: PKCS#7 with both certificates */
	p = strstr(xml, "#PKCS7\"");
	assert_non_null(p);
	p = strchr(p, '>') + 1;
	q = strchr(p, '<');
	assert_int_equal(b64_std_decode(p, (size_t)(q - p), der, sizeof(der), &dlen), 0);
	dp = der;
	p7 = d2i_PKCS7(NULL, &dp, (long)dlen);
	assert_non_null(p7);
	assert_int_equal(sk_X509_num(p7->d.sign->cert), 2);
	PKCS7_free(p7);
	free(xml);
	free(body);
}

static void test_certprov_soap_entity_of_another_user_is_refused(void **state)
{
	struct fx *f = *state;
	char reqid[CERTPROV_REQID_MAX], *xml;
	char *body = soap_body(f, "sip:ceo@example.test", PKCS10_VT, NULL, "");
	struct certprov_result r;
	size_t len;

	certprov_soap(f->s, &f->env, body, strlen(body), "sip:carol@example.test", &r, reqid);
	assert_int_equal(r.status, 403);
	assert_int_equal(issued, 0);
	xml = certprov_soap_answer(&r, reqid, &len);
	assert_non_null(strstr(xml, "<s:Fault>"));
	assert_non_null(strstr(xml, "access_denied"));
	free(xml);
	free(body);
	/* no ticket: 401, and the body is not even read (garbage is 401 too) */
	body = soap_body(f, "", PKCS10_VT, NULL, "");
	certprov_soap(f->s, &f->env, body, strlen(body), NULL, &r, reqid);
	assert_int_equal(r.status, 401);
	assert_true(r.www_authenticate);
	certprov_soap(f->s, &f->env, "<junk", 5, NULL, &r, reqid);
	assert_int_equal(r.status, 401);
	assert_int_equal(issued, 0);
	free(body);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

/* The PIN form in steps (the scrypt work between begin and end runs on the
 * pool in the daemon): the same answers; a second request for a user whose
 * PIN is being checked is 503 with Retry-After: 1, issues nothing and is
 * not counted; a cancelled request issues nothing. */
static char *pin_body(const char *who, const char *pin, const char *csr)
{
	json_t *o = json_pack("{s:s, s:s, s:s}", "user", who, "pin", pin, "csr", csr);
	char *body = json_dumps(o, JSON_COMPACT);

	json_decref(o);
	return body;
}

static void test_certprov_pin_in_steps_and_a_second_request_meanwhile_is_busy(void **state)
{
	struct fx *f = *state;
	struct certprov_result r, r2;
	struct certprov_pending *p, *p2;
	char *good = pin_body("+14255550177", "4809", f->csr_carol);
	char *bad = pin_body("2001", "1111", f->csr_carol);

	p = certprov_json_begin(f->s, &f->env, good, strlen(good), &r);
	assert_non_null(p);
	assert_int_equal(issued, 0); /* nothing decided yet */
	p2 = certprov_json_begin(f->s, &f->env, bad, strlen(bad), &r2);
	assert_null(p2);
	assert_int_equal(r2.status, 503);
	assert_string_equal(r2.error, "temporarily_unavailable");
	assert_int_equal(r2.retry_after, 1);
	certprov_result_free(&r2);
	certprov_pending_work(p);
	certprov_json_end(f->s, p, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.user, "sip:carol@example.test");
	assert_int_equal(issued, 1);
	certprov_result_free(&r);
	/* a wrong PIN in steps: 401 like the one-call form */
	p = certprov_json_begin(f->s, &f->env, bad, strlen(bad), &r);
	assert_non_null(p);
	certprov_pending_work(p);
	certprov_json_end(f->s, p, &r);
	assert_int_equal(r.status, 401);
	assert_string_equal(r.error, "invalid_pin");
	certprov_result_free(&r);
	/* cancelled (the daemon stopping): nothing issued, the user free again */
	p = certprov_json_begin(f->s, &f->env, good, strlen(good), &r);
	assert_non_null(p);
	certprov_pending_cancel(p);
	assert_int_equal(issued, 1);
	post(f, "+14255550177", "4809", f->csr_carol, NULL, &r);
	assert_int_equal(r.status, 200);
	certprov_result_free(&r);
	/* bad input is answered by begin at once */
	p = certprov_json_begin(f->s, &f->env, "{", 1, &r);
	assert_null(p);
	assert_int_equal(r.status, 400);
	certprov_result_free(&r);
	free(good);
	free(bad);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_certprov_number_and_pin_get_a_certificate_for_that_user),
	    T(test_certprov_wrong_pin_and_unknown_number_answer_alike),
	    T(test_certprov_locked_pin_is_403_with_retry_after),
	    T(test_certprov_ambiguous_number_and_pin_is_409_asking_for_the_extension),
	    T(test_certprov_store_outage_is_503_not_401),
	    T(test_certprov_weak_key_is_refused_clearly),
	    T(test_certprov_csr_naming_someone_else_is_issued_for_the_pin_user),
	    T(test_certprov_bad_requests_are_400_and_issue_nothing),
	    T(test_certprov_web_ticket_replaces_the_pin),
	    T(test_certprov_soap_request_is_scanned_for_the_pkcs10),
	    T(test_certprov_soap_bad_requests_say_why),
	    T(test_certprov_soap_issues_for_the_ticket_user_with_the_chain),
	    T(test_certprov_soap_entity_of_another_user_is_refused),
	    T(test_certprov_pin_in_steps_and_a_second_request_meanwhile_is_busy),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
