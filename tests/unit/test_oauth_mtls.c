/*
 * RFC 8705 §2.1 names (oauth/mtls.h): RFC 4514 subject DNs parse,
 * normalise and match a certificate's subject under X.520 rules (case and
 * inner spaces do not matter, order and every attribute do); SANs of each
 * type normalise and match only an entry of their own type; every bad
 * input is refused with a reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "oauth/mtls.h"

static EVP_PKEY *key;

/* A certificate with subject (OpenSSL "/C=DE/O=.../CN=..." order: first
 * is the first RDN) and a SAN extension value such as "DNS:a, IP:1.2.3.4". */
static X509 *mkcert(const char *const *rdns, const char *san)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();

	assert_non_null(x);
	for (size_t i = 0; rdns[i]; i += 2)
		assert_int_equal(X509_NAME_add_entry_by_txt(n, rdns[i], MBSTRING_UTF8,
							    (const unsigned char *)rdns[i + 1], -1,
							    -1, 0),
				 1);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, n);
	X509_NAME_free(n);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	if (san) {
		X509V3_CTX ctx;
		X509_EXTENSION *e;

		X509V3_set_ctx_nodb(&ctx);
		X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
		e = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
		assert_non_null(e);
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	return x;
}

static int group_setup(void **state)
{
	key = EVP_EC_gen("P-256");
	return key ? 0 : -1;
}

static int group_teardown(void **state)
{
	EVP_PKEY_free(key);
	return 0;
}

static const char *const mail_rdns[] = {
    "C", "DE", "O", "Example Corp", "OU", "Mail", "CN", "mail.example.test", NULL};

static void test_dn_normalises_spacing_and_keeps_rfc4514_order(void **state)
{
	char out[MTLS_DN_MAX], err[128];

	assert_int_equal(mtls_dn_normalise(" CN = mail.example.test ,OU=Mail, O=Example Corp ,C=DE",
					   out, err, sizeof(err)),
			 0);
	assert_string_equal(out, "CN=mail.example.test,OU=Mail,O=Example Corp,C=DE");
	/* long names and OIDs become the short names */
	assert_int_equal(mtls_dn_normalise("commonName=x,2.5.4.10=Org", out, err, sizeof(err)), 0);
	assert_string_equal(out, "CN=x,O=Org");
	/* escapes survive a round trip */
	assert_int_equal(mtls_dn_normalise("CN=a\\,b\\+c,O=caf\\C3\\A9", out, err, sizeof(err)), 0);
	assert_string_equal(out, "CN=a\\,b\\+c,O=caf\xc3\xa9");
}

static void test_dn_refuses_bad_input_with_a_reason(void **state)
{
	static const char *const bad[] = {"",	     "CN",	  "CN=",      "=x",	   "XX=foo",
					  "CN=a\\",  "CN=a\\zz",  "CN=#0403", "C=DEU",	   "CN=a;b",
					  "CN=a\"b", "CN=a,",	  "+CN=a",    "CN=a,,O=b", "CN=a<b",
					  "CN=\x01", "CN=a\\00b", "C N=x",    NULL};
	char out[MTLS_DN_MAX], err[128];

	for (size_t i = 0; bad[i]; i++) {
		err[0] = '\0';
		if (mtls_dn_normalise(bad[i], out, err, sizeof(err)) == 0)
			fail_msg("accepted \"%s\" as %s", bad[i], out);
		assert_true(err[0] != '\0');
		assert_string_equal(out, "");
	}
}

static void test_dn_bounds_attributes_length_and_values(void **state)
{
	char in[MTLS_DN_MAX + 16], out[MTLS_DN_MAX], err[128];
	size_t o = 0;

	/* 33 attributes */
	for (int i = 0; i < 33; i++)
		o += (size_t)snprintf(in + o, sizeof(in) - o, "%sO=%d", i ? "," : "", i);
	assert_int_equal(mtls_dn_normalise(in, out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "attributes"));
	/* longer than the bound */
	memset(in, 'a', sizeof(in) - 1);
	memcpy(in, "CN=", 3);
	in[sizeof(in) - 1] = '\0';
	assert_int_equal(mtls_dn_normalise(in, out, err, sizeof(err)), -1);
	/* one value over MTLS_VALUE_MAX */
	memset(in, 'b', 3 + MTLS_VALUE_MAX + 1);
	memcpy(in, "CN=", 3);
	in[3 + MTLS_VALUE_MAX + 1] = '\0';
	assert_int_equal(mtls_dn_normalise(in, out, err, sizeof(err)), -1);
	assert_int_equal(mtls_dn_normalise(NULL, out, err, sizeof(err)), -1);
}

static void test_subject_matches_case_and_spacing_insensitively(void **state)
{
	X509 *x = mkcert(mail_rdns, NULL);

	assert_true(mtls_cert_matches(x, "CN=mail.example.test,OU=Mail,O=Example Corp,C=DE", NULL));
	assert_true(
	    mtls_cert_matches(x, "cn=MAIL.example.TEST, ou=mail, o=example  corp, c=de", NULL));
	X509_free(x);
}

static void test_subject_differs_when_order_or_any_attribute_differs(void **state)
{
	X509 *x = mkcert(mail_rdns, NULL);

	/* the order of RDNs is part of the name */
	assert_false(
	    mtls_cert_matches(x, "C=DE,O=Example Corp,OU=Mail,CN=mail.example.test", NULL));
	assert_false(mtls_cert_matches(x, "CN=mail.example.test,O=Example Corp,C=DE", NULL));
	assert_false(
	    mtls_cert_matches(x, "CN=evil.example.test,OU=Mail,O=Example Corp,C=DE", NULL));
	assert_false(mtls_cert_matches(
	    x, "CN=mail.example.test,OU=Mail,O=Example Corp,C=DE,DC=extra", NULL));
	/* a prefix of a value is not the value */
	assert_false(mtls_cert_matches(x, "CN=mail.example.tes,OU=Mail,O=Example Corp,C=DE", NULL));
	/* an unparsable registration matches nothing */
	assert_false(mtls_cert_matches(x, "CN=mail.example.test;OU=Mail", NULL));
	assert_false(mtls_cert_matches(x, NULL, NULL));
	assert_false(mtls_cert_matches(x, "", ""));
	assert_false(mtls_cert_matches(NULL, "CN=x", NULL));
	X509_free(x);
}

static void test_subject_multivalued_rdn_and_escaped_comma(void **state)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();

	X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)"Ex, Inc", -1, -1,
				   0);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)"a", -1, -1, 0);
	X509_NAME_add_entry_by_txt(n, "UID", MBSTRING_UTF8, (const unsigned char *)"b", -1, -1, -1);
	X509_set_subject_name(x, n);
	X509_NAME_free(n);
	assert_true(mtls_cert_matches(x, "CN=a+UID=b,O=Ex\\, Inc", NULL));
	/* the same attributes as two RDNs are another name */
	assert_false(mtls_cert_matches(x, "CN=a,UID=b,O=Ex\\, Inc", NULL));
	assert_false(mtls_cert_matches(x, "CN=a+UID=b,O=Ex, Inc", NULL));
	X509_free(x);
}

static void test_san_normalises_each_type(void **state)
{
	char out[MTLS_SAN_MAX], err[128];

	assert_int_equal(mtls_san_normalise("DNS:Mail.Example.TEST", out, err, sizeof(err)), 0);
	assert_string_equal(out, "dns:mail.example.test");
	assert_int_equal(
	    mtls_san_normalise("uri:https://Mail.example.test/App", out, err, sizeof(err)), 0);
	assert_string_equal(out, "uri:https://Mail.example.test/App");
	assert_int_equal(mtls_san_normalise("email:Svc@Example.TEST", out, err, sizeof(err)), 0);
	assert_string_equal(out, "email:Svc@example.test");
	assert_int_equal(mtls_san_normalise("ip:2001:DB8:0::1", out, err, sizeof(err)), 0);
	assert_string_equal(out, "ip:2001:db8::1");
	assert_int_equal(mtls_san_normalise("ip:192.0.2.7", out, err, sizeof(err)), 0);
	assert_string_equal(out, "ip:192.0.2.7");
}

static void test_san_refuses_bad_input(void **state)
{
	static const char *const bad[] = {"",
					  "mail.example.test",
					  "dns:",
					  "dns:a..b",
					  "dns:a b",
					  "dns:-é",
					  "dns:.a",
					  "uri:nocolon",
					  "email:nobody",
					  "email:@x.test",
					  "email:a@b@c",
					  "ip:1.2.3",
					  "ip:1.2.3.4.5",
					  "ip:::g",
					  "x500:CN=a",
					  "dns:a\tb.test",
					  NULL};
	char out[MTLS_SAN_MAX], err[128];

	for (size_t i = 0; bad[i]; i++) {
		if (mtls_san_normalise(bad[i], out, err, sizeof(err)) == 0)
			fail_msg("accepted \"%s\" as %s", bad[i], out);
	}
	{
		char big[MTLS_SAN_MAX + 8];

		memset(big, 'a', sizeof(big) - 1);
		memcpy(big, "dns:", 4);
		big[sizeof(big) - 1] = '\0';
		assert_int_equal(mtls_san_normalise(big, out, err, sizeof(err)), -1);
	}
}

static void test_san_matches_only_its_own_type(void **state)
{
	X509 *x = mkcert(mail_rdns, "DNS:mail.example.test, URI:https://mail.example.test/oauth, "
				    "email:svc@example.test, IP:192.0.2.7, IP:2001:db8::1");

	assert_true(mtls_cert_matches(x, NULL, "dns:MAIL.example.test"));
	assert_true(mtls_cert_matches(x, NULL, "uri:https://mail.example.test/oauth"));
	assert_false(mtls_cert_matches(x, NULL, "uri:https://MAIL.example.test/oauth"));
	assert_true(mtls_cert_matches(x, NULL, "email:svc@example.test"));
	assert_true(mtls_cert_matches(x, NULL, "ip:192.0.2.7"));
	assert_true(mtls_cert_matches(x, NULL, "ip:2001:db8:0::1"));
	assert_false(mtls_cert_matches(x, NULL, "ip:192.0.2.8"));
	assert_false(mtls_cert_matches(x, NULL, "dns:other.example.test"));
	/* a DNS name registered is not found in a URI or a CN */
	assert_false(mtls_cert_matches(x, NULL, "dns:svc@example.test"));
	assert_false(mtls_cert_matches(x, NULL, "email:mail.example.test"));
	/* both registered: both must match */
	assert_true(mtls_cert_matches(x, "CN=mail.example.test,OU=Mail,O=Example Corp,C=DE",
				      "dns:mail.example.test"));
	assert_false(
	    mtls_cert_matches(x, "CN=other,OU=Mail,O=Example Corp,C=DE", "dns:mail.example.test"));
	X509_free(x);
	/* a certificate without SANs matches no SAN */
	x = mkcert(mail_rdns, NULL);
	assert_false(mtls_cert_matches(x, NULL, "dns:mail.example.test"));
	X509_free(x);
}

/* fuzz/fuzz_dn findings: what the store keeps normalises to itself and
 * matches the name it was written for */
static void test_dn_normalised_text_is_stable_and_faithful(void **state)
{
	char out[MTLS_DN_MAX], again[MTLS_DN_MAX], err[200];

	(void)state;
	/* attributes joined by '+' keep their written order */
	assert_int_equal(mtls_dn_normalise("CN=a+OU=b+O=c,DC=x", out, err, sizeof(err)), 0);
	assert_string_equal(out, "CN=a+OU=b+O=c,DC=x");
	assert_int_equal(mtls_dn_normalise(out, again, err, sizeof(err)), 0);
	assert_string_equal(again, out);
	/* OpenSSL prints a value that is only '#' unescaped (a hex value to a
	 * reader): refused rather than stored as something else */
	assert_int_equal(mtls_dn_normalise("CN=\\# ", out, err, sizeof(err)), -1);
	assert_string_equal(out, "");
	assert_non_null(strstr(err, "written back"));
	/* '#' inside a value is fine */
	assert_int_equal(mtls_dn_normalise("CN=a\\#b", out, err, sizeof(err)), 0);
	assert_int_equal(mtls_dn_normalise(out, again, err, sizeof(err)), 0);
	assert_string_equal(again, out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dn_normalises_spacing_and_keeps_rfc4514_order),
	    cmocka_unit_test(test_dn_refuses_bad_input_with_a_reason),
	    cmocka_unit_test(test_dn_bounds_attributes_length_and_values),
	    cmocka_unit_test(test_subject_matches_case_and_spacing_insensitively),
	    cmocka_unit_test(test_subject_differs_when_order_or_any_attribute_differs),
	    cmocka_unit_test(test_subject_multivalued_rdn_and_escaped_comma),
	    cmocka_unit_test(test_dn_normalised_text_is_stable_and_faithful),
	    cmocka_unit_test(test_san_normalises_each_type),
	    cmocka_unit_test(test_san_refuses_bad_input),
	    cmocka_unit_test(test_san_matches_only_its_own_type),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
