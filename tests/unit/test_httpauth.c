/*
 * HTTP authentication (http/httpauth.h) and web tickets (http/webticket.h):
 * the Authorization parser is bounded and strict (token68, base64, sizes,
 * unknown schemes), NTLM message types, user-name forms, the 401
 * challenges in the [auth] schemes order; a minted web ticket passes
 * webticket_validate and nothing else does (tampered, expired, another
 * client's token, another scope), and the partner validator refuses it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "auth/ntlm.h"
#include "core/config.h"
#include "http/httpauth.h"
#include "http/webticket.h"
#include "oauth/jose.h"
#include "oauth/oauth.h"
#include "oauth/sts.h"
#include "oauth/validate.h"

/* ---- Authorization parsing ---- */

static void test_parse_no_header_is_none(void **state)
{
	struct httpauth_creds c;

	(void)state;
	assert_int_equal(httpauth_parse(NULL, &c), 0);
	assert_int_equal(c.scheme, HTTPAUTH_NONE);
}

static void test_parse_negotiate_and_ntlm_token68_case_insensitive(void **state)
{
	struct httpauth_creds c;

	(void)state;
	assert_int_equal(httpauth_parse("Negotiate YIIBhgYGKwYBBQUCoA==", &c), 0);
	assert_int_equal(c.scheme, HTTPAUTH_NEGOTIATE);
	assert_true(str_eq_cstr(c.param, "YIIBhgYGKwYBBQUCoA=="));
	assert_int_equal(httpauth_parse("negotiate   abc+/  ", &c), 0);
	assert_int_equal(c.scheme, HTTPAUTH_NEGOTIATE);
	assert_true(str_eq_cstr(c.param, "abc+/"));
	assert_int_equal(httpauth_parse("ntlm TlRMTVNTUAABAAAA", &c), 0);
	assert_int_equal(c.scheme, HTTPAUTH_NTLM);
	assert_true(str_eq_cstr(c.param, "TlRMTVNTUAABAAAA"));
}

static void test_parse_rejects_malformed_token68(void **state)
{
	static const char *const bad[] = {
	    "",
	    "   ",
	    "Negotiate",
	    "Negotiate ",
	    "NTLM a b",
	    "NTLM ab=c",
	    "NTLM =abc",
	    "NTLM abc,def",
	    "NTLM abc\"",
	    "Negotiate a-b_c",
	    "Negotiate,abc",
	    "(NTLM) abc",
	    "NTLM abc\r\nX: y",
	    "Negotiate abc def=",
	    "NTLM\x01 abc",
	};
	struct httpauth_creds c;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = httpauth_parse(bad[i], &c);
		if (rc != HTTPAUTH_E_SYNTAX)
			fail_msg("'%s' gave %d", bad[i], rc);
		assert_int_equal(c.scheme, HTTPAUTH_NONE);
	}
}

static void test_parse_unknown_schemes_are_other(void **state)
{
	struct httpauth_creds c;

	(void)state;
	assert_int_equal(httpauth_parse("Basic YWxpY2U6cHc=", &c), 0);
	assert_int_equal(c.scheme, HTTPAUTH_OTHER);
	assert_true(str_eq_cstr(c.scheme_name, "Basic"));
	assert_int_equal(httpauth_parse("Bearer eyJ.eyJ.sig", &c), 0);
	assert_int_equal(c.scheme, HTTPAUTH_OTHER);
	assert_int_equal(httpauth_parse("Kerberos abc", &c), 0);
	assert_int_equal(c.scheme, HTTPAUTH_OTHER);
	assert_int_equal(httpauth_parse("NTLMv2 abc", &c), 0);
	assert_int_equal(c.scheme, HTTPAUTH_OTHER);
}

static void test_parse_digest_keeps_whole_value(void **state)
{
	const char *v = "Digest username=\"alice\", realm=\"example.test\"";
	struct httpauth_creds c;

	(void)state;
	assert_int_equal(httpauth_parse(v, &c), 0);
	assert_int_equal(c.scheme, HTTPAUTH_DIGEST);
	assert_int_equal(c.param.p, v);
	assert_int_equal(c.param.len, strlen(v));
}

static void test_parse_rejects_oversized_values(void **state)
{
	size_t n = HTTPAUTH_HEADER_MAX + 10;
	char *v = malloc(n + 1);
	struct httpauth_creds c;

	(void)state;
	assert_non_null(v);
	memcpy(v, "Negotiate ", 10);
	memset(v + 10, 'A', n - 10);
	v[n] = '\0';
	assert_int_equal(httpauth_parse(v, &c), HTTPAUTH_E_TOO_LARGE);
	/* a token just over the base64 bound, header under its own */
	v[10 + HTTPAUTH_TOKEN_B64_MAX + 4] = '\0';
	assert_int_equal(httpauth_parse(v, &c), HTTPAUTH_E_TOO_LARGE);
	/* at the bound: parsed; decoding it stays under the token bound */
	v[10 + HTTPAUTH_TOKEN_B64_MAX] = '\0';
	assert_int_equal(httpauth_parse(v, &c), 0);
	free(v);
}

static void test_token_decode_strict_and_bounded(void **state)
{
	uint8_t out[HTTPAUTH_TOKEN_MAX + 2];
	size_t len = 99;
	char *big;

	(void)state;
	assert_int_equal(
	    httpauth_token_decode(str_cstr("TlRMTVNTUAABAAAA"), out, sizeof(out), &len), 0);
	assert_int_equal(len, 12);
	assert_int_equal(httpauth_ntlm_type(out, len), 1);
	/* impossible length, missing padding, bad trailing bits, empty */
	assert_int_equal(httpauth_token_decode(str_cstr("abcde"), out, sizeof(out), &len),
			 HTTPAUTH_E_BASE64);
	assert_int_equal(len, 0);
	assert_int_equal(httpauth_token_decode(str_cstr("YQ"), out, sizeof(out), &len),
			 HTTPAUTH_E_BASE64);
	assert_int_equal(httpauth_token_decode(str_cstr("YR=="), out, sizeof(out), &len),
			 HTTPAUTH_E_BASE64);
	assert_int_equal(httpauth_token_decode(str_cstr(""), out, sizeof(out), &len),
			 HTTPAUTH_E_SYNTAX);
	assert_int_equal(httpauth_token_decode(str_cstr("a*bc"), out, sizeof(out), &len),
			 HTTPAUTH_E_SYNTAX);
	/* more than HTTPAUTH_TOKEN_MAX bytes decoded */
	big = malloc(HTTPAUTH_TOKEN_B64_MAX + 5);
	assert_non_null(big);
	memset(big, 'A', HTTPAUTH_TOKEN_B64_MAX + 4);
	assert_int_equal(httpauth_token_decode(str_make(big, HTTPAUTH_TOKEN_B64_MAX + 4), out,
					       sizeof(out), &len),
			 HTTPAUTH_E_TOO_LARGE);
	/* a small output buffer is an error, never an overflow */
	assert_int_equal(httpauth_token_decode(str_make(big, 400), out, 100, &len),
			 HTTPAUTH_E_BASE64);
	free(big);
}

static void test_ntlm_type_needs_signature(void **state)
{
	uint8_t m[12] = {'N', 'T', 'L', 'M', 'S', 'S', 'P', 0, 3, 0, 0, 0};

	(void)state;
	assert_int_equal(httpauth_ntlm_type(m, sizeof(m)), 3);
	assert_int_equal(httpauth_ntlm_type(m, 11), -1);
	m[8] = 4;
	assert_int_equal(httpauth_ntlm_type(m, sizeof(m)), -1);
	m[8] = 1;
	m[11] = 1; /* 0x01000001 */
	assert_int_equal(httpauth_ntlm_type(m, sizeof(m)), -1);
	m[11] = 0;
	m[7] = 'X';
	assert_int_equal(httpauth_ntlm_type(m, sizeof(m)), -1);
	assert_int_equal(httpauth_ntlm_type(NULL, 0), -1);
}

/* An AUTHENTICATE header: fields (len, off) LM NT DOM USER WS KEY, flags. */
static void ntlm_auth_hdr(uint8_t *m, uint32_t first_off, uint16_t key_len, uint32_t flags)
{
	static const uint8_t sig[8] = {'N', 'T', 'L', 'M', 'S', 'S', 'P', 0};
	uint32_t off = first_off;

	memset(m, 0, 128);
	memcpy(m, sig, 8);
	m[8] = 3;
	for (int i = 0; i < 6; i++) {
		uint16_t l = i == 5 ? key_len : 8;
		m[12 + 8 * i] = (uint8_t)l;
		m[14 + 8 * i] = (uint8_t)l;
		m[16 + 8 * i] = (uint8_t)off;
		off += l;
	}
	memcpy(m + 60, &flags, 4); /* little-endian host (x86-64, arm64) */
}

static uint32_t flags_of(const uint8_t *m)
{
	uint32_t f;

	memcpy(&f, m + 60, 4);
	return f;
}

static void test_ntlm_fix_flags_only_for_curl_shaped_messages(void **state)
{
	const uint32_t f = NTLM_NEGOTIATE_UNICODE | NTLM_NEGOTIATE_VERSION |
			   NTLM_NEGOTIATE_KEY_EXCH | NTLM_NEGOTIATE_EXTENDED_SESSION;
	uint8_t m[128];

	(void)state;
	/* libcurl: payload at 64, VERSION and KEY_EXCH echoed, no session key */
	ntlm_auth_hdr(m, 64, 0, f);
	httpauth_ntlm_fix_flags(m, sizeof(m));
	assert_int_equal(flags_of(m), NTLM_NEGOTIATE_UNICODE | NTLM_NEGOTIATE_EXTENDED_SESSION);
	/* payload at 64 with a session key: only VERSION goes */
	ntlm_auth_hdr(m, 64, 16, f);
	httpauth_ntlm_fix_flags(m, sizeof(m));
	assert_int_equal(flags_of(m), f & ~NTLM_NEGOTIATE_VERSION);
	/* room for a Version (72) or a Version and a MIC (88): untouched */
	ntlm_auth_hdr(m, 72, 0, f);
	httpauth_ntlm_fix_flags(m, sizeof(m));
	assert_int_equal(flags_of(m), f);
	ntlm_auth_hdr(m, 88, 0, f);
	httpauth_ntlm_fix_flags(m, sizeof(m));
	assert_int_equal(flags_of(m), f);
	/* not an AUTHENTICATE, or too short: untouched */
	ntlm_auth_hdr(m, 64, 0, f);
	m[8] = 1;
	httpauth_ntlm_fix_flags(m, sizeof(m));
	assert_int_equal(flags_of(m), f);
	m[8] = 3;
	httpauth_ntlm_fix_flags(m, 63);
	assert_int_equal(flags_of(m), f);
}

static void test_identity_forms(void **state)
{
	char out[128];

	(void)state;
	assert_int_equal(httpauth_identity(str_cstr("alice"), "example.test", out, sizeof(out)), 0);
	assert_string_equal(out, "sip:alice@example.test");
	assert_int_equal(
	    httpauth_identity(str_cstr("alice@Example.TEST"), "example.test", out, sizeof(out)), 0);
	assert_string_equal(out, "sip:alice@example.test");
	assert_int_equal(
	    httpauth_identity(str_cstr("EXAMPLE\\alice"), "example.test", out, sizeof(out)), 0);
	assert_string_equal(out, "sip:alice@example.test");
	assert_int_equal(httpauth_identity(str_cstr(""), "example.test", out, sizeof(out)), -1);
	assert_int_equal(httpauth_identity(str_cstr("EXAMPLE\\"), "example.test", out, sizeof(out)),
			 -1);
	assert_int_equal(httpauth_identity(str_cstr("@x"), "example.test", out, sizeof(out)), -1);
	assert_int_equal(httpauth_identity(str_cstr("a b"), "example.test", out, sizeof(out)), -1);
	assert_int_equal(httpauth_identity(str_cstr("alice"), "example.test", out, 10), -1);
	assert_string_equal(out, "");
}

/* ---- challenges ---- */

struct seen {
	char v[8][HTTPAUTH_CHALLENGE_MAX];
	size_t n;
};

static void collect(void *arg, const char *value)
{
	struct seen *s = arg;

	assert_true(s->n < 8);
	snprintf(s->v[s->n++], sizeof(s->v[0]), "%s", value);
}

static void cfg_init(struct config *cfg)
{
	config_defaults(cfg);
	snprintf(cfg->domain, sizeof(cfg->domain), "example.test");
	cfg->digest_algs[0] = DIGEST_SHA256;
	cfg->digest_sess[0] = false;
	cfg->digest_algs[1] = DIGEST_MD5;
	cfg->digest_sess[1] = false;
	cfg->n_digest_algs = 2;
}

static void test_challenges_follow_config_order(void **state)
{
	struct config *cfg = calloc(1, sizeof(*cfg));
	struct seen s;

	(void)state;
	assert_non_null(cfg);
	cfg_init(cfg);
	cfg->auth_schemes[0] = AUTH_SCHEME_KERBEROS;
	cfg->auth_schemes[1] = AUTH_SCHEME_NTLM;
	cfg->auth_schemes[2] = AUTH_SCHEME_DIGEST;
	cfg->n_auth_schemes = 3;
	memset(&s, 0, sizeof(s));
	assert_int_equal(
	    httpauth_challenges(cfg, true, str_cstr("NONCE1"), str_cstr("op"), false, collect, &s),
	    0);
	assert_int_equal(s.n, 4);
	assert_string_equal(s.v[0], "Negotiate");
	assert_string_equal(s.v[1], "NTLM");
	assert_true(strncmp(s.v[2], "Digest realm=\"example.test\", nonce=\"NONCE1\"", 42) == 0);
	assert_non_null(strstr(s.v[2], "algorithm=SHA-256"));
	assert_non_null(strstr(s.v[2], "qop=\"auth\""));
	assert_null(strstr(s.v[2], "auth-int"));
	assert_null(strstr(s.v[2], "\r"));
	assert_non_null(strstr(s.v[3], "algorithm=MD5"));

	/* digest first, kerberos last, and no keytab: Negotiate still offered
	 * (for NTLM inside SPNEGO), just before NTLM */
	cfg->auth_schemes[0] = AUTH_SCHEME_DIGEST;
	cfg->auth_schemes[1] = AUTH_SCHEME_NTLM;
	cfg->auth_schemes[2] = AUTH_SCHEME_KERBEROS;
	memset(&s, 0, sizeof(s));
	assert_int_equal(
	    httpauth_challenges(cfg, false, str_cstr("N2"), str_cstr("op"), true, collect, &s), 0);
	assert_int_equal(s.n, 4);
	assert_true(strncmp(s.v[0], "Digest ", 7) == 0);
	assert_non_null(strstr(s.v[0], "stale=true"));
	assert_true(strncmp(s.v[1], "Digest ", 7) == 0);
	assert_string_equal(s.v[2], "Negotiate");
	assert_string_equal(s.v[3], "NTLM");
	free(cfg);
}

/* SPNEGO carrying NTLM is accepted without Kerberos, so NTLM alone must
 * be offered as Negotiate too (before NTLM), once, whatever the keytab */
static void test_challenges_offer_negotiate_when_only_ntlm_is_configured(void **state)
{
	struct config *cfg = calloc(1, sizeof(*cfg));
	struct seen s;

	(void)state;
	assert_non_null(cfg);
	cfg_init(cfg);
	cfg->auth_schemes[0] = AUTH_SCHEME_NTLM;
	cfg->auth_schemes[1] = AUTH_SCHEME_DIGEST;
	cfg->n_auth_schemes = 2;
	for (int krb = 0; krb < 2; krb++) {
		memset(&s, 0, sizeof(s));
		assert_int_equal(httpauth_challenges(cfg, krb, str_cstr("N3"), str_cstr("op"),
						     false, collect, &s),
				 0);
		assert_int_equal(s.n, 4);
		assert_string_equal(s.v[0], "Negotiate");
		assert_string_equal(s.v[1], "NTLM");
		assert_true(strncmp(s.v[2], "Digest ", 7) == 0);
		assert_true(strncmp(s.v[3], "Digest ", 7) == 0);
	}

	/* only NTLM */
	cfg->n_auth_schemes = 1;
	memset(&s, 0, sizeof(s));
	assert_int_equal(
	    httpauth_challenges(cfg, false, str_cstr("N4"), str_cstr("op"), false, collect, &s), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.v[0], "Negotiate");
	assert_string_equal(s.v[1], "NTLM");

	/* NTLM first, Kerberos after it with a keytab: still one Negotiate */
	cfg->auth_schemes[1] = AUTH_SCHEME_KERBEROS;
	cfg->n_auth_schemes = 2;
	memset(&s, 0, sizeof(s));
	assert_int_equal(
	    httpauth_challenges(cfg, true, str_cstr("N5"), str_cstr("op"), false, collect, &s), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.v[0], "Negotiate");
	assert_string_equal(s.v[1], "NTLM");
	free(cfg);
}

/* Negotiate needs a mechanism behind it: Kerberos without a keytab, or
 * Digest alone, offers no Negotiate */
static void test_challenges_omit_negotiate_without_kerberos_keytab_or_ntlm(void **state)
{
	struct config *cfg = calloc(1, sizeof(*cfg));
	struct seen s;

	(void)state;
	assert_non_null(cfg);
	cfg_init(cfg);
	cfg->auth_schemes[0] = AUTH_SCHEME_KERBEROS;
	cfg->auth_schemes[1] = AUTH_SCHEME_DIGEST;
	cfg->n_auth_schemes = 2;
	memset(&s, 0, sizeof(s));
	assert_int_equal(
	    httpauth_challenges(cfg, false, str_cstr("N6"), str_cstr("op"), false, collect, &s), 0);
	assert_int_equal(s.n, 2);
	assert_true(strncmp(s.v[0], "Digest ", 7) == 0);
	assert_true(strncmp(s.v[1], "Digest ", 7) == 0);

	cfg->auth_schemes[0] = AUTH_SCHEME_DIGEST;
	cfg->n_auth_schemes = 1;
	memset(&s, 0, sizeof(s));
	assert_int_equal(
	    httpauth_challenges(cfg, true, str_cstr("N7"), str_cstr("op"), false, collect, &s), 0);
	assert_int_equal(s.n, 2);
	for (size_t i = 0; i < s.n; i++)
		assert_null(strstr(s.v[i], "Negotiate"));
	free(cfg);
}

/* ---- web tickets ---- */

#define NOW    1800000000
#define ISSUER "https://fe01.example.test:8443"
#define USER   "sip:alice@example.test"

static EVP_PKEY *k_own, *k_other;

static int group_setup(void **state)
{
	(void)state;
	k_own = EVP_RSA_gen(2048);
	k_other = EVP_RSA_gen(2048);
	return k_own && k_other ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(k_own);
	EVP_PKEY_free(k_other);
	oauth_validate_shutdown();
	return 0;
}

static void add_key(struct jose_keyset *ks, EVP_PKEY *pkey, const char *kid)
{
	struct jose_key *k = NULL;

	assert_int_equal(jose_key_from_pkey(pkey, NULL, 0, JOSE_ALG_UNKNOWN, kid, &k), 0);
	assert_int_equal(jose_keyset_add(ks, k), 0);
	jose_key_free(k);
}

static struct oauth_snapshot *snapshot(void)
{
	struct oauth_snapshot *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	snprintf(s->issuer, sizeof(s->issuer), ISSUER);
	snprintf(s->realm, sizeof(s->realm), "example.test");
	snprintf(s->principal_id, sizeof(s->principal_id), OAUTH_PRINCIPAL_LYNC);
	snprintf(s->host, sizeof(s->host), "fe01.example.test");
	s->default_lifetime = 3600;
	s->max_lifetime = 86400;
	s->clock_skew = 300;
	s->max_token_size = 16384;
	jose_keyset_init(&s->own);
	add_key(&s->own, k_own, "own1");
	return s;
}

static void snapshot_free(struct oauth_snapshot *s)
{
	jose_keyset_clear(&s->own);
	free(s);
}

struct signer {
	EVP_PKEY *pkey;
	const char *kid;
};

/* The sts_sign_fn of the daemon, over a test key: alg, kid, typ. */
static int sign_cb(void *arg, const json_t *header, const json_t *payload, char **out,
		   size_t *outlen)
{
	struct signer *sg = arg;
	struct jose_pkey_signer ps = {sg->pkey, JOSE_ALG_RS256};
	json_t *h = header ? json_deep_copy(header) : json_object();
	int rc;

	json_object_set_new(h, "alg", json_string("RS256"));
	json_object_set_new(h, "kid", json_string(sg->kid));
	if (!json_object_get(h, "typ"))
		json_object_set_new(h, "typ", json_string("JWT"));
	rc = jose_sign_compact(h, payload, jose_pkey_signer, &ps, out, outlen);
	json_decref(h);
	return rc;
}

static void issuer(struct sts_issuer *iss, struct signer *sg, int max_lifetime)
{
	memset(iss, 0, sizeof(*iss));
	iss->issuer = ISSUER;
	iss->principal_id = OAUTH_PRINCIPAL_LYNC;
	iss->realm = "example.test";
	iss->default_lifetime = 3600;
	iss->max_lifetime = max_lifetime;
	iss->sign = sign_cb;
	iss->sign_arg = sg;
}

static char *bearer(const char *tok)
{
	size_t n = strlen(tok) + sizeof("Bearer ");
	char *h = malloc(n);

	assert_non_null(h);
	snprintf(h, n, "Bearer %s", tok);
	return h;
}

static void test_webticket_minted_passes_webticket_validate(void **state)
{
	struct oauth_snapshot *snap = snapshot();
	struct signer sg = {k_own, "own1"};
	struct sts_issuer iss;
	struct oauth_principal p;
	char *tok = NULL, *h, uri[256];
	int exp_in = 0;

	(void)state;
	issuer(&iss, &sg, 86400);
	assert_int_equal(webticket_mint(&iss, USER, NOW, &tok, NULL, &exp_in), 0);
	assert_int_equal(exp_in, WEBTICKET_LIFETIME);
	h = bearer(tok);
	assert_int_equal(webticket_validate(snap, h, NOW + 10, uri, sizeof(uri)), VR_OK);
	assert_string_equal(uri, USER);
	/* the scheme is case-insensitive (RFC 6750 §2.1) */
	h[0] = 'b';
	assert_int_equal(webticket_validate(snap, h, NOW + 10, uri, sizeof(uri)), VR_OK);
	/* a partner API's validator never takes a web ticket */
	assert_int_equal(oauth_validate_token(snap, tok, strlen(tok), NOW + 10, &p),
			 VR_PARTNER_DISABLED);
	/* expired (beyond the skew), and not yet valid */
	assert_int_equal(
	    webticket_validate(snap, h, NOW + WEBTICKET_LIFETIME + 301, uri, sizeof(uri)),
	    VR_EXPIRED);
	assert_string_equal(uri, "");
	assert_int_equal(webticket_validate(snap, h, NOW - 400, uri, sizeof(uri)),
			 VR_NOT_YET_VALID);
	/* too small a buffer for the URI: refused, not truncated */
	assert_int_equal(webticket_validate(snap, h, NOW, uri, 8), VR_CLAIM_TYPE);
	free(h);
	free(tok);
	snapshot_free(snap);
}

static void test_webticket_lifetime_bounded_by_max(void **state)
{
	struct signer sg = {k_own, "own1"};
	struct sts_issuer iss;
	char *tok = NULL;
	int exp_in = 0;

	(void)state;
	issuer(&iss, &sg, 600);
	assert_int_equal(webticket_mint(&iss, USER, NOW, &tok, NULL, &exp_in), 0);
	assert_int_equal(exp_in, 600);
	free(tok);
}

static void test_webticket_refuses_what_is_not_a_ticket(void **state)
{
	struct oauth_snapshot *snap = snapshot();
	struct signer own = {k_own, "own1"}, other = {k_other, "own1"}, unk = {k_other, "x"};
	struct sts_issuer iss;
	struct sts_access a;
	char *tok = NULL, *h, uri[256];
	int exp_in;

	(void)state;
	assert_int_equal(webticket_validate(snap, NULL, NOW, uri, sizeof(uri)), VR_MISSING);
	assert_int_equal(webticket_validate(snap, "Bearer ", NOW, uri, sizeof(uri)), VR_MISSING);
	assert_int_equal(webticket_validate(snap, "Basic abc", NOW, uri, sizeof(uri)), VR_MISSING);
	assert_int_equal(webticket_validate(snap, "Bearer a.b.c d", NOW, uri, sizeof(uri)),
			 VR_MALFORMED);
	assert_int_equal(webticket_validate(snap, "Bearer abc", NOW, uri, sizeof(uri)),
			 VR_MALFORMED);

	/* signed by a key we do not publish, under our kid / another kid */
	issuer(&iss, &other, 86400);
	assert_int_equal(webticket_mint(&iss, USER, NOW, &tok, NULL, &exp_in), 0);
	h = bearer(tok);
	assert_int_equal(webticket_validate(snap, h, NOW, uri, sizeof(uri)), VR_BAD_SIGNATURE);
	free(h);
	free(tok);
	issuer(&iss, &unk, 86400);
	assert_int_equal(webticket_mint(&iss, USER, NOW, &tok, NULL, &exp_in), 0);
	h = bearer(tok);
	assert_int_equal(webticket_validate(snap, h, NOW, uri, sizeof(uri)), VR_UNKNOWN_KID);
	free(h);
	free(tok);

	/* tampered: one payload character changed */
	issuer(&iss, &own, 86400);
	assert_int_equal(webticket_mint(&iss, USER, NOW, &tok, NULL, &exp_in), 0);
	h = bearer(tok);
	h[strchr(h, '.') - h + 5] ^= 1;
	assert_int_not_equal(webticket_validate(snap, h, NOW, uri, sizeof(uri)), VR_OK);
	free(h);
	free(tok);

	/* our access token for a partner (client_id = the partner), even
	 * with scope webticket: not a web ticket */
	memset(&a, 0, sizeof(a));
	a.client_id = "p1-client";
	a.subject = USER;
	a.scope = WEBTICKET_SCOPE;
	a.lifetime = 600;
	assert_int_equal(sts_access_token(&iss, &a, NOW, &tok, NULL, &exp_in), STS_OK);
	h = bearer(tok);
	assert_int_equal(webticket_validate(snap, h, NOW, uri, sizeof(uri)), VR_UNKNOWN_ISSUER);
	free(h);
	free(tok);

	/* our own client id but another scope */
	a.client_id = ISSUER;
	a.scope = "users.read";
	assert_int_equal(sts_access_token(&iss, &a, NOW, &tok, NULL, &exp_in), STS_OK);
	h = bearer(tok);
	assert_int_equal(webticket_validate(snap, h, NOW, uri, sizeof(uri)), VR_INSUFFICIENT_SCOPE);
	free(h);
	free(tok);

	/* for another audience */
	a.scope = WEBTICKET_SCOPE;
	a.audience = "https://elsewhere.example.test";
	assert_int_equal(sts_access_token(&iss, &a, NOW, &tok, NULL, &exp_in), STS_OK);
	h = bearer(tok);
	assert_int_equal(webticket_validate(snap, h, NOW, uri, sizeof(uri)), VR_BAD_AUDIENCE);
	free(h);
	free(tok);

	/* a subject that is not a SIP URI */
	a.audience = NULL;
	a.subject = "alice";
	assert_int_equal(sts_access_token(&iss, &a, NOW, &tok, NULL, &exp_in), STS_OK);
	h = bearer(tok);
	assert_int_equal(webticket_validate(snap, h, NOW, uri, sizeof(uri)), VR_CLAIM_TYPE);
	free(h);
	free(tok);

	/* a lifetime above the snapshot's maximum */
	snap->max_lifetime = 300;
	issuer(&iss, &own, 86400);
	assert_int_equal(webticket_mint(&iss, USER, NOW, &tok, NULL, &exp_in), 0);
	h = bearer(tok);
	assert_int_equal(webticket_validate(snap, h, NOW, uri, sizeof(uri)), VR_LIFETIME_TOO_LONG);
	free(h);
	free(tok);
	snapshot_free(snap);
}

#define T(f) cmocka_unit_test(f)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_parse_no_header_is_none),
	    T(test_parse_negotiate_and_ntlm_token68_case_insensitive),
	    T(test_parse_rejects_malformed_token68),
	    T(test_parse_unknown_schemes_are_other),
	    T(test_parse_digest_keeps_whole_value),
	    T(test_parse_rejects_oversized_values),
	    T(test_token_decode_strict_and_bounded),
	    T(test_ntlm_type_needs_signature),
	    T(test_ntlm_fix_flags_only_for_curl_shaped_messages),
	    T(test_identity_forms),
	    T(test_challenges_follow_config_order),
	    T(test_challenges_offer_negotiate_when_only_ntlm_is_configured),
	    T(test_challenges_omit_negotiate_without_kerberos_keytab_or_ntlm),
	    T(test_webticket_minted_passes_webticket_validate),
	    T(test_webticket_lifetime_bounded_by_max),
	    T(test_webticket_refuses_what_is_not_a_ticket),
	};

	return cmocka_run_group_tests_name("httpauth", tests, group_setup, group_teardown);
}
