/*
 * Digest mechanism: credential parsing (RFC 7616 §3.4, RFC 3261 §25),
 * response computation (RFC 2617, RFC 7616) and challenge writing.
 *
 * Vectors: RFC 7616 §3.9.1 (MD5, SHA-256) and RFC 2617 §3.5 (MD5) are
 * published. RFC 7616 gives no SHA-512-256 vector, and none exists for
 * auth-int or -sess, so those cases are cross-checked against the openssl
 * command line: the test writes each of the A1 / A2 / KD strings to a temp
 * file, runs `openssl dgst -<alg> -r` on it through popen(), and chains the
 * hex results exactly as the RFC describes; digest_response must agree.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth/digest.h"

#define RFC7616_NONCE  "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
#define RFC7616_CNONCE "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
#define RFC7616_OPAQUE "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
#define RFC7616_REALM  "http-auth@example.org"
#define RFC7616_PASS   "Circle of Life"

static const char *const rfc7616_md5 =
    "Digest username=\"Mufasa\",\r\n realm=\"http-auth@example.org\",\r\n"
    " uri=\"/dir/index.html\",\r\n algorithm=MD5,\r\n"
    " nonce=\"" RFC7616_NONCE "\",\r\n nc=00000001,\r\n"
    " cnonce=\"" RFC7616_CNONCE "\",\r\n qop=auth,\r\n"
    " response=\"8ca523f5e9506fed4657c9700eebdbec\",\r\n"
    " opaque=\"" RFC7616_OPAQUE "\"";

static const char *const rfc7616_sha256 =
    "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", uri=\"/dir/index.html\", "
    "algorithm=SHA-256, nonce=\"" RFC7616_NONCE "\", nc=00000001, cnonce=\"" RFC7616_CNONCE
    "\", qop=auth, "
    "response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\", "
    "opaque=\"" RFC7616_OPAQUE "\"";

static int parse(const char *s, struct digest_creds *c)
{
	return digest_parse_credentials(str_cstr(s), c);
}

/* Build "Digest " + the RFC 7616 SHA-256 header with one piece replaced. */
static int parse_with(const char *from, const char *to, struct digest_creds *c)
{
	char buf[16384];
	const char *at = strstr(rfc7616_sha256, from);

	assert_non_null(at);
	snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - rfc7616_sha256), rfc7616_sha256, to,
		 at + strlen(from));
	return parse(buf, c);
}

static void compute(const struct digest_creds *c, const char *password, const char *method,
		    const char *body, char *out)
{
	uint8_t ha1[32];

	assert_int_equal(digest_ha1(c->alg, c->username, c->realm, str_cstr(password), ha1), 0);
	assert_int_equal(digest_response(c, ha1, str_cstr(method), str_cstr(body), out, 129),
			 (int)(2 * digest_alg_len(c->alg)));
}

/* ---- openssl CLI cross-check ------------------------------------------ */

static void cli_hash(const char *alg, const char *data, char *hex)
{
	char path[] = "/tmp/rtcauth-digest-XXXXXX", cmd[256];
	int fd = mkstemp(path);
	FILE *p;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	close(fd);
	snprintf(cmd, sizeof(cmd), "openssl dgst -%s -r %s", alg, path);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%128[0-9a-f]", hex), 1);
	pclose(p);
	unlink(path);
}

/* The RFC 7616 §3.4 chain, one openssl call per hash. */
static void cli_response(const char *alg, const char *user, const char *realm, const char *pass,
			 bool sess, const char *method, const char *uri, const char *qop,
			 const char *body, const char *nonce, const char *nc, const char *cnonce,
			 char *out)
{
	char buf[2048], ha1[129], ha2[129], hb[129];

	snprintf(buf, sizeof(buf), "%s:%s:%s", user, realm, pass);
	cli_hash(alg, buf, ha1);
	if (sess) {
		snprintf(buf, sizeof(buf), "%s:%s:%s", ha1, nonce, cnonce);
		cli_hash(alg, buf, ha1);
	}
	if (qop && strcmp(qop, "auth-int") == 0) {
		cli_hash(alg, body, hb);
		snprintf(buf, sizeof(buf), "%s:%s:%s", method, uri, hb);
	} else {
		snprintf(buf, sizeof(buf), "%s:%s", method, uri);
	}
	cli_hash(alg, buf, ha2);
	if (qop)
		snprintf(buf, sizeof(buf), "%s:%s:%s:%s:%s:%s", ha1, nonce, nc, cnonce, qop, ha2);
	else
		snprintf(buf, sizeof(buf), "%s:%s:%s", ha1, nonce, ha2);
	cli_hash(alg, buf, out);
}

/* ---- published vectors ------------------------------------------------ */

static void test_digest_rfc7616_md5_vector(void **state)
{
	struct digest_creds c;
	char out[129];

	(void)state;
	assert_int_equal(parse(rfc7616_md5, &c), 0);
	assert_int_equal(c.alg, DIGEST_MD5);
	assert_false(c.sess);
	assert_int_equal(c.qop, DIGEST_QOP_AUTH);
	assert_int_equal(c.nc, 1);
	assert_true(str_eq_cstr(c.username, "Mufasa"));
	assert_true(str_eq_cstr(c.realm, RFC7616_REALM));
	assert_true(str_eq_cstr(c.nonce, RFC7616_NONCE));
	assert_true(str_eq_cstr(c.cnonce, RFC7616_CNONCE));
	assert_true(str_eq_cstr(c.opaque, RFC7616_OPAQUE));
	assert_true(str_eq_cstr(c.uri, "/dir/index.html"));
	compute(&c, RFC7616_PASS, "GET", "", out);
	assert_string_equal(out, "8ca523f5e9506fed4657c9700eebdbec");
	assert_true(str_eq_cstr(c.response, out));
}

static void test_digest_rfc7616_sha256_vector(void **state)
{
	struct digest_creds c;
	char out[129];

	(void)state;
	assert_int_equal(parse(rfc7616_sha256, &c), 0);
	assert_int_equal(c.alg, DIGEST_SHA256);
	compute(&c, RFC7616_PASS, "GET", "", out);
	assert_string_equal(out,
			    "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
}

static void test_digest_rfc2617_md5_vector(void **state)
{
	struct digest_creds c;
	char out[129];

	(void)state;
	assert_int_equal(
	    parse("Digest username=\"Mufasa\", realm=\"testrealm@host.com\", "
		  "nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", "
		  "qop=auth, nc=00000001, cnonce=\"0a4f113b\", "
		  "response=\"6629fae49393a05397450978507c4ef1\", "
		  "opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
		  &c),
	    0);
	compute(&c, "Circle Of Life", "GET", "", out);
	assert_string_equal(out, "6629fae49393a05397450978507c4ef1");
}

static void test_digest_hash_hex_md5_of_abc(void **state)
{
	char out[129];

	(void)state;
	assert_int_equal(digest_hash_hex(DIGEST_MD5, "abc", 3, out, sizeof(out)), 32);
	assert_string_equal(out, "900150983cd24fb0d6963f7d28e17f72");
	assert_int_equal(digest_hash_hex(DIGEST_SHA512_256, "abc", 3, out, sizeof(out)), 64);
	/* FIPS 180-4 SHA-512/256("abc") */
	assert_string_equal(out,
			    "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23");
	assert_int_equal(digest_hash_hex(DIGEST_SHA256, "abc", 3, out, 64), -1);
	assert_int_equal(digest_hash_hex((enum digest_alg)7, "abc", 3, out, sizeof(out)), -1);
}

/* ---- openssl CLI cross-checks ----------------------------------------- */

static void test_digest_sha512_256_matches_openssl_cli(void **state)
{
	struct digest_creds c;
	char hdr[1024], want[129], got[129];

	(void)state;
	cli_response("sha512-256", "Mufasa", RFC7616_REALM, RFC7616_PASS, false, "GET",
		     "/dir/index.html", "auth", NULL, RFC7616_NONCE, "00000001", RFC7616_CNONCE,
		     want);
	snprintf(hdr, sizeof(hdr),
		 "Digest username=\"Mufasa\", realm=\"" RFC7616_REALM
		 "\", uri=\"/dir/index.html\", "
		 "algorithm=SHA-512-256, nonce=\"" RFC7616_NONCE "\", nc=00000001, "
		 "cnonce=\"" RFC7616_CNONCE "\", qop=auth, response=\"%s\"",
		 want);
	assert_int_equal(parse(hdr, &c), 0);
	assert_int_equal(c.alg, DIGEST_SHA512_256);
	compute(&c, RFC7616_PASS, "GET", "", got);
	assert_string_equal(got, want);
}

static void test_digest_auth_int_hashes_body_like_openssl_cli(void **state)
{
	const char *body = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n";
	struct digest_creds c;
	char hdr[1024], want[129], got[129], other[129];

	(void)state;
	cli_response("sha256", "bob", "example.com", "s3cret", false, "INVITE",
		     "sip:alice@example.com", "auth-int", body, "abcdef", "0000000a", "xyz", want);
	snprintf(hdr, sizeof(hdr),
		 "Digest username=\"bob\",realm=\"example.com\",nonce=\"abcdef\","
		 "uri=\"sip:alice@example.com\",algorithm=SHA-256,qop=\"auth-int\",nc=0000000a,"
		 "cnonce=\"xyz\",response=\"%s\"",
		 want);
	assert_int_equal(parse(hdr, &c), 0);
	assert_int_equal(c.qop, DIGEST_QOP_AUTH_INT);
	assert_int_equal(c.nc, 10);
	compute(&c, "s3cret", "INVITE", body, got);
	assert_string_equal(got, want);
	/* a different body gives a different response */
	compute(&c, "s3cret", "INVITE", "v=1\r\n", other);
	assert_string_not_equal(other, want);

	/* a body longer than the gathering buffer is streamed: same result */
	char *big = malloc(3001);
	assert_non_null(big);
	memset(big, 'x', 3000);
	big[3000] = '\0';
	cli_response("sha256", "bob", "example.com", "s3cret", false, "INVITE",
		     "sip:alice@example.com", "auth-int", big, "abcdef", "0000000a", "xyz", want);
	compute(&c, "s3cret", "INVITE", big, got);
	assert_string_equal(got, want);
	free(big);
}

static void test_digest_sess_folds_nonce_and_cnonce_like_openssl_cli(void **state)
{
	struct digest_creds c;
	char hdr[1024], want[129], got[129];

	(void)state;
	cli_response("md5", "Mufasa", RFC7616_REALM, RFC7616_PASS, true, "REGISTER",
		     "sip:example.org", "auth", NULL, RFC7616_NONCE, "00000002", "0a4f113b", want);
	snprintf(hdr, sizeof(hdr),
		 "Digest username=\"Mufasa\", realm=\"" RFC7616_REALM "\", nonce=\"" RFC7616_NONCE
		 "\", uri=\"sip:example.org\", algorithm=MD5-sess, qop=auth, nc=00000002, "
		 "cnonce=\"0a4f113b\", response=\"%s\"",
		 want);
	assert_int_equal(parse(hdr, &c), 0);
	assert_true(c.sess);
	compute(&c, RFC7616_PASS, "REGISTER", "", got);
	assert_string_equal(got, want);

	/* SHA-512-256-sess with auth-int: every branch at once */
	cli_response("sha512-256", "u", "r", "p", true, "MESSAGE", "sip:x@r", "auth-int", "hello",
		     "n0nce", "000000ff", "cn", want);
	snprintf(
	    hdr, sizeof(hdr),
	    "Digest username=u, realm=r, nonce=n0nce, uri=\"sip:x@r\", "
	    "algorithm=sha-512-256-SESS, qop=auth-int, nc=000000FF, cnonce=cn, response=\"%s\"",
	    want);
	assert_int_equal(parse(hdr, &c), 0);
	assert_int_equal(c.alg, DIGEST_SHA512_256);
	assert_true(c.sess);
	assert_int_equal(c.nc, 255);
	compute(&c, "p", "MESSAGE", "hello", got);
	/* the response hashes nc as sent (upper case here), like the client does */
	cli_response("sha512-256", "u", "r", "p", true, "MESSAGE", "sip:x@r", "auth-int", "hello",
		     "n0nce", "000000FF", "cn", want);
	assert_string_equal(got, want);
}

static void test_digest_no_qop_is_rfc2069_form_like_openssl_cli(void **state)
{
	struct digest_creds c;
	char hdr[1024], want[129], got[129];

	(void)state;
	cli_response("md5", "Mufasa", "testrealm@host.com", "CircleOfLife", false, "GET",
		     "/dir/index.html", NULL, NULL, "dcd98b7102dd2f0e8b11d0f600bfb0c093", NULL,
		     NULL, want);
	snprintf(hdr, sizeof(hdr),
		 "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", "
		 "nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", "
		 "response=\"%s\"",
		 want);
	assert_int_equal(parse(hdr, &c), 0);
	assert_int_equal(c.qop, DIGEST_QOP_NONE);
	assert_int_equal(c.nc, 0);
	compute(&c, "CircleOfLife", "GET", "", got);
	assert_string_equal(got, want);
}

static void test_digest_response_refuses_small_buffer_and_bad_input(void **state)
{
	struct digest_creds c;
	uint8_t ha1[32] = {0};
	char out[129];

	(void)state;
	assert_int_equal(parse(rfc7616_sha256, &c), 0);
	assert_int_equal(digest_response(&c, ha1, STR_LIT("GET"), STR_NULL, out, 64), -1);
	assert_int_equal(digest_response(&c, ha1, STR_LIT("GET"), STR_NULL, out, 65), 64);
	assert_int_equal(digest_response(NULL, ha1, STR_LIT("GET"), STR_NULL, out, 129), -1);
	assert_int_equal(digest_response(&c, NULL, STR_LIT("GET"), STR_NULL, out, 129), -1);
	c.alg = (enum digest_alg)9;
	assert_int_equal(digest_response(&c, ha1, STR_LIT("GET"), STR_NULL, out, 129), -1);
}

/* ---- parser: accepted forms ------------------------------------------- */

static void test_digest_scheme_is_case_insensitive_and_lws_is_optional(void **state)
{
	struct digest_creds c;

	(void)state;
	assert_int_equal(parse("dIgEsT\tusername = \"a\" ,realm=\"r\",nonce=\"n\" ,\t uri=\"u\","
			       "response=\"00112233445566778899aabbccddeeff\"",
			       &c),
			 0);
	assert_true(str_eq_cstr(c.username, "a"));
	assert_true(str_eq_cstr(c.uri, "u"));
	assert_int_equal(c.alg, DIGEST_MD5);
	assert_int_equal(c.algorithm.len, 0);
	/* empty list elements are tolerated (RFC 7230 §7) */
	assert_int_equal(parse("Digest ,username=a,, realm=r, nonce=n, uri=u, "
			       "response=00112233445566778899aabbccddeeff,",
			       &c),
			 0);
	/* parameter names are case-insensitive */
	assert_int_equal(parse("Digest USERNAME=a, Realm=r, NONCE=n, Uri=u, "
			       "Response=00112233445566778899aabbccddeeff",
			       &c),
			 0);
}

static void test_digest_unknown_params_are_ignored(void **state)
{
	struct digest_creds c;

	(void)state;
	assert_int_equal(parse_with("opaque=", "x-vendor=\"whatever, with comma\", opaque=", &c),
			 0);
	assert_true(str_eq_cstr(c.opaque, RFC7616_OPAQUE));
}

static void test_digest_userhash_true_sets_flag(void **state)
{
	struct digest_creds c;

	(void)state;
	assert_int_equal(parse_with("qop=auth", "qop=auth, userhash=true", &c), 0);
	assert_true(c.userhash);
	assert_int_equal(parse_with("qop=auth", "qop=auth, userhash=\"FALSE\"", &c), 0);
	assert_false(c.userhash);
	assert_int_equal(parse_with("qop=auth", "qop=auth, userhash=maybe", &c), DIGEST_E_SYNTAX);
}

/* ---- parser: refusals ------------------------------------------------- */

static void test_digest_rejects_other_schemes(void **state)
{
	struct digest_creds c;

	(void)state;
	assert_int_equal(parse("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", &c), DIGEST_E_SCHEME);
	assert_int_equal(parse("NTLM qop=\"auth\", realm=\"r\"", &c), DIGEST_E_SCHEME);
	assert_int_equal(parse("Digestx username=a", &c), DIGEST_E_SCHEME);
	assert_int_equal(parse("", &c), DIGEST_E_SCHEME);
	assert_int_equal(parse("   ", &c), DIGEST_E_SCHEME);
	assert_int_equal(digest_parse_credentials(STR_NULL, &c), DIGEST_E_SCHEME);
	assert_int_equal(digest_parse_credentials(str_make(NULL, 5), &c), DIGEST_E_SYNTAX);
}

static void test_digest_rejects_unterminated_quote(void **state)
{
	struct digest_creds c;

	(void)state;
	assert_int_equal(parse_with("\", qop=auth,", ", qop=auth,", &c), DIGEST_E_SYNTAX);
	assert_int_equal(parse("Digest username=\"abc", &c), DIGEST_E_SYNTAX);
	assert_int_equal(parse("Digest username=\"abc\\\"", &c), DIGEST_E_SYNTAX);
}

static void test_digest_rejects_quoted_pair_escapes(void **state)
{
	struct digest_creds c;

	(void)state;
	assert_int_equal(parse_with("username=\"Mufasa\"", "username=\"Mu\\\"fasa\"", &c),
			 DIGEST_E_SYNTAX);
	/* the one escape a user name may hold is DOMAIN\\user's backslash */
	assert_int_equal(parse_with("username=\"Mufasa\"", "username=\"PRIDE\\\\Mufasa\"", &c), 0);
	assert_true(str_eq_cstr(c.username, "PRIDE\\\\Mufasa"));
	assert_int_equal(parse_with("username=\"Mufasa\"", "username=\"\\\\Mufasa\"", &c),
			 DIGEST_E_SYNTAX);
	assert_int_equal(parse_with("username=\"Mufasa\"", "username=\"PRIDE\\\\\"", &c),
			 DIGEST_E_SYNTAX);
	assert_int_equal(parse_with("username=\"Mufasa\"", "username=\"A\\\\B\\\\C\"", &c),
			 DIGEST_E_SYNTAX);
	assert_int_equal(parse_with("username=\"Mufasa\"", "username=\"A\\\\\\\\C\"", &c),
			 DIGEST_E_SYNTAX);
	assert_int_equal(parse_with("realm=\"http-auth@example.org\"", "realm=\"a\\\\b\"", &c),
			 DIGEST_E_SYNTAX);
	/* an unknown parameter's escapes are skipped over, not an error */
	assert_int_equal(parse_with("opaque=", "x-ext=\"say \\\"hi\\\", ok\", opaque=", &c), 0);
	assert_true(str_eq_cstr(c.opaque, RFC7616_OPAQUE));
}

static void test_digest_rejects_bad_syntax(void **state)
{
	struct digest_creds c;

	(void)state;
	assert_int_equal(parse_with("username=", "username", &c), DIGEST_E_SYNTAX);
	assert_int_equal(parse_with("username=\"Mufasa\"", "username=", &c), DIGEST_E_SYNTAX);
	assert_int_equal(parse_with(", realm", " realm", &c), DIGEST_E_SYNTAX);
	assert_int_equal(parse("Digest,username=a", &c), DIGEST_E_SYNTAX);
	assert_int_equal(parse_with("username=\"Mufasa\"", "username=\"Mu\x01\"", &c),
			 DIGEST_E_SYNTAX);
	assert_int_equal(parse_with("username=\"Mufasa\"", "username=Mu{fasa}", &c),
			 DIGEST_E_SYNTAX);
}

static void test_digest_rejects_duplicate_nonce_param(void **state)
{
	struct digest_creds c;

	(void)state;
	assert_int_equal(parse_with("nc=", "nonce=\"other\", nc=", &c), DIGEST_E_DUPLICATE);
	assert_int_equal(parse_with("nc=", "NONCE=\"" RFC7616_NONCE "\", nc=", &c),
			 DIGEST_E_DUPLICATE);
}

static void test_digest_rejects_any_duplicated_known_param(void **state)
{
	static const char *const dups[] = {
	    "username=x", "realm=x",  "uri=x",	  "response=x",	 "algorithm=MD5",
	    "cnonce=x",	  "opaque=x", "qop=auth", "nc=00000002", "userhash=false",
	};
	struct digest_creds c;
	char extra[128];

	(void)state;
	for (size_t i = 0; i < sizeof(dups) / sizeof(dups[0]); i++) {
		snprintf(extra, sizeof(extra), "%s, opaque=", dups[i]);
		if (strncmp(dups[i], "userhash", 8) == 0) {
			snprintf(extra, sizeof(extra), "userhash=true, %s, opaque=", dups[i]);
		}
		assert_int_equal(parse_with("opaque=", extra, &c), DIGEST_E_DUPLICATE);
	}
}

static void test_digest_rejects_missing_required_params(void **state)
{
	static const char *const cut[] = {
	    "username=\"Mufasa\", ",
	    "realm=\"http-auth@example.org\", ",
	    "nonce=\"" RFC7616_NONCE "\", ",
	    "uri=\"/dir/index.html\", ",
	};
	struct digest_creds c;

	(void)state;
	for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++)
		assert_int_equal(parse_with(cut[i], "", &c), DIGEST_E_MISSING);
	assert_int_equal(parse_with("response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697"
				    "cf8db5856cb6c1\", ",
				    "", &c),
			 DIGEST_E_MISSING);
	assert_int_equal(parse_with("username=\"Mufasa\"", "username=\"\"", &c), DIGEST_E_MISSING);
	assert_int_equal(parse("Digest", &c), DIGEST_E_MISSING);
}

static void test_digest_rejects_qop_without_cnonce_or_nc(void **state)
{
	struct digest_creds c;

	(void)state;
	assert_int_equal(parse_with("cnonce=\"" RFC7616_CNONCE "\", ", "", &c), DIGEST_E_MISSING);
	assert_int_equal(parse_with("nc=00000001, ", "", &c), DIGEST_E_MISSING);
	/* nc without qop is refused too (RFC 7616 §3.4: MUST NOT be sent) */
	assert_int_equal(parse_with("qop=auth, ", "", &c), DIGEST_E_QOP);
}

static void test_digest_rejects_nc_not_eight_hex_digits(void **state)
{
	struct digest_creds c;

	(void)state;
	assert_int_equal(parse_with("nc=00000001", "nc=0000001", &c), DIGEST_E_QOP);
	assert_int_equal(parse_with("nc=00000001", "nc=000000001", &c), DIGEST_E_QOP);
	assert_int_equal(parse_with("nc=00000001", "nc=0000000g", &c), DIGEST_E_QOP);
	assert_int_equal(parse_with("nc=00000001", "nc=\"-0000001\"", &c), DIGEST_E_QOP);
	assert_int_equal(parse_with("nc=00000001", "nc=00000000", &c), DIGEST_E_QOP);
	assert_int_equal(parse_with("nc=00000001", "nc=ffffffff", &c), 0);
	assert_int_equal(c.nc, 0xffffffffu);
}

static void test_digest_rejects_unknown_algorithm(void **state)
{
	struct digest_creds c;

	(void)state;
	assert_int_equal(parse_with("algorithm=SHA-256", "algorithm=SHA-1", &c),
			 DIGEST_E_ALGORITHM);
	assert_int_equal(parse_with("algorithm=SHA-256", "algorithm=\"\"", &c), DIGEST_E_ALGORITHM);
	assert_int_equal(parse_with("algorithm=SHA-256", "algorithm=-sess", &c),
			 DIGEST_E_ALGORITHM);
	assert_int_equal(parse_with("algorithm=SHA-256", "algorithm=AKAv1-MD5", &c),
			 DIGEST_E_ALGORITHM);
}

static void test_digest_rejects_unknown_qop(void **state)
{
	struct digest_creds c;

	(void)state;
	assert_int_equal(parse_with("qop=auth", "qop=auth-conf", &c), DIGEST_E_QOP);
	assert_int_equal(parse_with("qop=auth", "qop=\"auth,auth-int\"", &c), DIGEST_E_QOP);
	assert_int_equal(parse_with("qop=auth", "qop=\"AUTH\"", &c), 0);
	assert_int_equal(c.qop, DIGEST_QOP_AUTH);
}

static void test_digest_rejects_10k_nonce_as_too_long(void **state)
{
	struct digest_creds c;
	char *big = malloc(10 * 1024 + 32);

	(void)state;
	assert_non_null(big);
	strcpy(big, "nonce=\"");
	memset(big + 7, 'A', 10 * 1024);
	strcpy(big + 7 + 10 * 1024, "\"");
	assert_int_equal(parse_with("nonce=\"" RFC7616_NONCE "\"", big, &c), DIGEST_E_TOO_LONG);
	free(big);
}

static void test_digest_field_bounds_are_exact(void **state)
{
	struct digest_creds c;
	char field[DIGEST_MAX_FIELD + 32], nonce[DIGEST_MAX_NONCE + 32];

	(void)state;
	snprintf(field, sizeof(field), "username=\"%0*d\"", DIGEST_MAX_FIELD, 0);
	assert_int_equal(parse_with("username=\"Mufasa\"", field, &c), 0);
	assert_int_equal(c.username.len, DIGEST_MAX_FIELD);
	snprintf(field, sizeof(field), "username=\"%0*d\"", DIGEST_MAX_FIELD + 1, 0);
	assert_int_equal(parse_with("username=\"Mufasa\"", field, &c), DIGEST_E_TOO_LONG);
	snprintf(field, sizeof(field), "uri=\"%0*d\"", DIGEST_MAX_FIELD + 1, 0);
	assert_int_equal(parse_with("uri=\"/dir/index.html\"", field, &c), DIGEST_E_TOO_LONG);
	snprintf(nonce, sizeof(nonce), "nonce=\"%0*d\"", DIGEST_MAX_NONCE, 0);
	assert_int_equal(parse_with("nonce=\"" RFC7616_NONCE "\"", nonce, &c), 0);
	snprintf(nonce, sizeof(nonce), "nonce=\"%0*d\"", DIGEST_MAX_NONCE + 1, 0);
	assert_int_equal(parse_with("nonce=\"" RFC7616_NONCE "\"", nonce, &c), DIGEST_E_TOO_LONG);
	/* unknown parameters are bounded too */
	snprintf(field, sizeof(field), "x=\"%0*d\", opaque=", DIGEST_MAX_FIELD + 1, 0);
	assert_int_equal(parse_with("opaque=", field, &c), DIGEST_E_TOO_LONG);
}

static void test_digest_rejects_more_than_max_params(void **state)
{
	struct digest_creds c;
	char extra[1024];
	size_t n = 0;
	int base = 10; /* the RFC 7616 header has 10 parameters */

	(void)state;
	for (int i = 0; i < DIGEST_MAX_PARAMS - base; i++)
		n += (size_t)snprintf(extra + n, sizeof(extra) - n, "x%d=1, ", i);
	snprintf(extra + n, sizeof(extra) - n, "opaque=");
	assert_int_equal(parse_with("opaque=", extra, &c), 0);
	n = 0;
	for (int i = 0; i < DIGEST_MAX_PARAMS - base + 1; i++)
		n += (size_t)snprintf(extra + n, sizeof(extra) - n, "x%d=1, ", i);
	snprintf(extra + n, sizeof(extra) - n, "opaque=");
	assert_int_equal(parse_with("opaque=", extra, &c), DIGEST_E_TOO_LONG);
}

static void test_digest_rejects_response_not_hex_of_algorithm_length(void **state)
{
	struct digest_creds c;

	(void)state;
	/* MD5-length response with SHA-256 */
	assert_int_equal(
	    parse_with("753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
		       "8ca523f5e9506fed4657c9700eebdbec", &c),
	    DIGEST_E_SYNTAX);
	/* right length, not hex */
	assert_int_equal(parse_with("753927fa", "753927fz", &c), DIGEST_E_SYNTAX);
	/* upper case: RFC 7616 §3.4 request-digest is LHEX */
	assert_int_equal(parse_with("753927fa", "753927FA", &c), DIGEST_E_SYNTAX);
	/* over the bound */
	char big[DIGEST_MAX_RESPONSE + 32];
	snprintf(big, sizeof(big), "response=\"%0*d\"", DIGEST_MAX_RESPONSE + 2, 0);
	assert_int_equal(parse_with("response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697"
				    "cf8db5856cb6c1\"",
				    big, &c),
			 DIGEST_E_TOO_LONG);
}

static void test_digest_failed_parse_leaves_creds_zeroed(void **state)
{
	struct digest_creds c;

	(void)state;
	assert_int_equal(parse_with("qop=auth", "qop=bogus", &c), DIGEST_E_QOP);
	assert_null(c.username.p);
	assert_int_equal(c.username.len, 0);
	assert_int_equal(c.nc, 0);
}

static void test_digest_strerror_covers_every_code(void **state)
{
	(void)state;
	for (int e = DIGEST_E_QOP; e <= 0; e++)
		assert_non_null(strstr(digest_strerror(e), e ? "" : "ok"));
	assert_string_equal(digest_strerror(-99), "unknown Digest error");
	assert_string_not_equal(digest_strerror(DIGEST_E_QOP), digest_strerror(DIGEST_E_SYNTAX));
}

/* ---- auth_params_parse ------------------------------------------------ */

struct collected {
	int n;
	char names[8][32];
	char vals[8][64];
	bool quoted[8];
	int stop_at;
};

static int collect(void *ctx, struct str name, struct str val, bool quoted)
{
	struct collected *col = ctx;

	if (col->n == col->stop_at)
		return 42;
	if (col->n < 8) {
		snprintf(col->names[col->n], 32, "%.*s", STR_FMT(name));
		snprintf(col->vals[col->n], 64, "%.*s", STR_FMT(val));
		col->quoted[col->n] = quoted;
	}
	col->n++;
	return 0;
}

static void test_auth_params_walks_any_scheme(void **state)
{
	struct collected col = {.stop_at = -1};
	struct str scheme;

	(void)state;
	assert_int_equal(
	    auth_params_parse(STR_LIT("  NTLM qop=\"auth\", realm=\"SIP Communications "
				      "Service\",targetname=srv.example.com"),
			      &scheme, collect, &col),
	    0);
	assert_true(str_eq_cstr(scheme, "NTLM"));
	assert_int_equal(col.n, 3);
	assert_string_equal(col.names[0], "qop");
	assert_string_equal(col.vals[0], "auth");
	assert_true(col.quoted[0]);
	assert_string_equal(col.vals[1], "SIP Communications Service");
	assert_string_equal(col.names[2], "targetname");
	assert_string_equal(col.vals[2], "srv.example.com");
	assert_false(col.quoted[2]);
}

static void test_auth_params_returns_callback_stop_value(void **state)
{
	struct collected col = {.stop_at = 1};
	struct str scheme;

	(void)state;
	assert_int_equal(auth_params_parse(STR_LIT("X a=1, b=2, c=3"), &scheme, collect, &col), 42);
	assert_int_equal(col.n, 1);
	col = (struct collected){.stop_at = -1};
	assert_int_equal(auth_params_parse(STR_LIT("X a=1 b=2"), &scheme, collect, &col),
			 DIGEST_E_SYNTAX);
	col = (struct collected){.stop_at = -1};
	assert_int_equal(auth_params_parse(STR_LIT("X a=\"1\"b=2"), &scheme, collect, &col),
			 DIGEST_E_SYNTAX);
	assert_int_equal(auth_params_parse(STR_LIT("X a=1"), &scheme, NULL, NULL), DIGEST_E_SYNTAX);
}

/* the scheme without the parameters: the same token auth_params_parse reports */
static void test_auth_scheme_token_is_the_leading_token(void **state)
{
	struct collected col = {.stop_at = -1};
	struct str scheme;

	(void)state;
	assert_true(str_eq(auth_scheme_token(STR_LIT("  NTLM qop=\"auth\"")), STR_LIT("NTLM")));
	assert_true(str_eq(auth_scheme_token(STR_LIT("Digest")), STR_LIT("Digest")));
	/* unparseable parameters do not matter */
	assert_true(
	    str_eq(auth_scheme_token(STR_LIT("Digest a=\"unterminated")), STR_LIT("Digest")));
	assert_true(str_eq(auth_scheme_token(STR_LIT("TLS-DSK,x")), STR_LIT("TLS-DSK")));
	assert_int_equal(auth_scheme_token(STR_LIT("   ")).len, 0);
	assert_int_equal(auth_scheme_token(STR_LIT("=x")).len, 0);
	assert_int_equal(auth_scheme_token(STR_NULL).len, 0);
	assert_int_equal(auth_params_parse(STR_LIT(" Kerberos a=1"), &scheme, collect, &col), 0);
	assert_true(str_eq(auth_scheme_token(STR_LIT(" Kerberos a=1")), scheme));
}

/* RFC 7230 §3.2.6 tchar, byte by byte: a token goes on over exactly these */
static void test_auth_scheme_token_stops_at_every_non_tchar(void **state)
{
	(void)state;
	for (int ch = 1; ch < 256; ch++) {
		char v[3] = {'a', (char)ch, 'b'};
		bool tchar = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			     (ch >= '0' && ch <= '9') || strchr("!#$%&'*+-.^_`|~", ch);

		assert_int_equal(auth_scheme_token(str_make(v, 3)).len, tchar ? 3 : 1);
	}
}

/* ---- algorithms and challenges ---------------------------------------- */

static void test_digest_alg_tokens_round_trip(void **state)
{
	enum digest_alg a;
	bool sess;

	(void)state;
	assert_int_equal(digest_alg_len(DIGEST_MD5), 16);
	assert_int_equal(digest_alg_len(DIGEST_SHA256), 32);
	assert_int_equal(digest_alg_len(DIGEST_SHA512_256), 32);
	assert_int_equal(digest_alg_len(DIGEST_ALG_COUNT), 0);
	for (int i = 0; i < DIGEST_ALG_COUNT; i++) {
		assert_int_equal(
		    digest_alg_parse(str_cstr(digest_alg_name((enum digest_alg)i)), &a, &sess), 0);
		assert_int_equal(a, i);
		assert_false(sess);
	}
	assert_int_equal(digest_alg_parse(STR_LIT("sha-512-256-Sess"), &a, &sess), 0);
	assert_int_equal(a, DIGEST_SHA512_256);
	assert_true(sess);
	assert_int_equal(digest_alg_parse(STR_LIT("MD5-sess"), NULL, NULL), 0);
	assert_int_equal(digest_alg_parse(STR_LIT("SHA-512"), &a, &sess), -1);
	assert_int_equal(digest_alg_parse(STR_LIT("MD5-sess-sess"), &a, &sess), -1);
	assert_int_equal(digest_alg_parse(STR_LIT("MD5sess"), &a, &sess), -1);
	assert_int_equal(digest_alg_parse(STR_NULL, &a, &sess), -1);
}

static void test_digest_challenge_exact_format(void **state)
{
	char mem[512];
	struct sbuf b;

	(void)state;
	sbuf_init(&b, mem, sizeof(mem));
	digest_challenge_write(&b, "WWW-Authenticate", STR_LIT("example.org"), STR_LIT("n1"),
			       STR_LIT("op"), DIGEST_SHA256, false, true, false);
	assert_true(sbuf_ok(&b));
	assert_string_equal(sbuf_cstr(&b), "WWW-Authenticate: Digest realm=\"example.org\", "
					   "nonce=\"n1\", opaque=\"op\", algorithm=SHA-256, "
					   "qop=\"auth,auth-int\"\r\n");
	sbuf_init(&b, mem, sizeof(mem));
	digest_challenge_write(&b, "Proxy-Authenticate", STR_LIT("r"), STR_LIT("n2"), STR_NULL,
			       DIGEST_SHA512_256, true, false, true);
	assert_string_equal(sbuf_cstr(&b), "Proxy-Authenticate: Digest realm=\"r\", nonce=\"n2\", "
					   "algorithm=SHA-512-256-sess, qop=\"auth\", "
					   "stale=true\r\n");
	sbuf_init(&b, mem, sizeof(mem));
	digest_challenge_write(&b, "WWW-Authenticate", STR_LIT("r"), STR_LIT("n"), STR_NULL,
			       DIGEST_MD5, true, false, false);
	assert_string_equal(sbuf_cstr(&b), "WWW-Authenticate: Digest realm=\"r\", nonce=\"n\", "
					   "algorithm=MD5-sess, qop=\"auth\"\r\n");
	/* too small: the buffer reports the overflow instead of truncating silently */
	sbuf_init(&b, mem, 20);
	digest_challenge_write(&b, "WWW-Authenticate", STR_LIT("r"), STR_LIT("n"), STR_NULL,
			       DIGEST_MD5, false, false, false);
	assert_false(sbuf_ok(&b));
}

static void test_digest_challenge_parses_back_as_auth_params(void **state)
{
	char mem[512];
	struct sbuf b;
	struct str scheme, v;
	struct collected col = {.stop_at = -1};

	(void)state;
	sbuf_init(&b, mem, sizeof(mem));
	digest_challenge_write(&b, "WWW-Authenticate", STR_LIT("example.org"), STR_LIT("n1"),
			       STR_LIT("op"), DIGEST_MD5, false, true, true);
	v = str_make(mem + strlen("WWW-Authenticate: "), b.len - strlen("WWW-Authenticate: ") - 2);
	assert_int_equal(auth_params_parse(v, &scheme, collect, &col), 0);
	assert_true(str_eq_cstr(scheme, "Digest"));
	assert_int_equal(col.n, 6);
	assert_string_equal(col.vals[4], "auth,auth-int");
	assert_string_equal(col.vals[5], "true");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_digest_rfc7616_md5_vector),
	    cmocka_unit_test(test_digest_rfc7616_sha256_vector),
	    cmocka_unit_test(test_digest_rfc2617_md5_vector),
	    cmocka_unit_test(test_digest_hash_hex_md5_of_abc),
	    cmocka_unit_test(test_digest_sha512_256_matches_openssl_cli),
	    cmocka_unit_test(test_digest_auth_int_hashes_body_like_openssl_cli),
	    cmocka_unit_test(test_digest_sess_folds_nonce_and_cnonce_like_openssl_cli),
	    cmocka_unit_test(test_digest_no_qop_is_rfc2069_form_like_openssl_cli),
	    cmocka_unit_test(test_digest_response_refuses_small_buffer_and_bad_input),
	    cmocka_unit_test(test_digest_scheme_is_case_insensitive_and_lws_is_optional),
	    cmocka_unit_test(test_digest_unknown_params_are_ignored),
	    cmocka_unit_test(test_digest_userhash_true_sets_flag),
	    cmocka_unit_test(test_digest_rejects_other_schemes),
	    cmocka_unit_test(test_digest_rejects_unterminated_quote),
	    cmocka_unit_test(test_digest_rejects_quoted_pair_escapes),
	    cmocka_unit_test(test_digest_rejects_bad_syntax),
	    cmocka_unit_test(test_digest_rejects_duplicate_nonce_param),
	    cmocka_unit_test(test_digest_rejects_any_duplicated_known_param),
	    cmocka_unit_test(test_digest_rejects_missing_required_params),
	    cmocka_unit_test(test_digest_rejects_qop_without_cnonce_or_nc),
	    cmocka_unit_test(test_digest_rejects_nc_not_eight_hex_digits),
	    cmocka_unit_test(test_digest_rejects_unknown_algorithm),
	    cmocka_unit_test(test_digest_rejects_unknown_qop),
	    cmocka_unit_test(test_digest_rejects_10k_nonce_as_too_long),
	    cmocka_unit_test(test_digest_field_bounds_are_exact),
	    cmocka_unit_test(test_digest_rejects_more_than_max_params),
	    cmocka_unit_test(test_digest_rejects_response_not_hex_of_algorithm_length),
	    cmocka_unit_test(test_digest_failed_parse_leaves_creds_zeroed),
	    cmocka_unit_test(test_digest_strerror_covers_every_code),
	    cmocka_unit_test(test_auth_params_walks_any_scheme),
	    cmocka_unit_test(test_auth_params_returns_callback_stop_value),
	    cmocka_unit_test(test_auth_scheme_token_is_the_leading_token),
	    cmocka_unit_test(test_auth_scheme_token_stops_at_every_non_tchar),
	    cmocka_unit_test(test_digest_alg_tokens_round_trip),
	    cmocka_unit_test(test_digest_challenge_exact_format),
	    cmocka_unit_test(test_digest_challenge_parses_back_as_auth_params),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
