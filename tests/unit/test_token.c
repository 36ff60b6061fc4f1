/*
 * The token endpoint's form parser and policy (oauth/token.h) and the jti
 * replay cache (oauth/replay.h), driven with a hand-built OAuth snapshot:
 * client_credentials with private_key_jwt issues an RFC 9068 token bounded
 * by the registration; every bad client assertion (replay, wrong key, alg
 * none, HS256 with the public key, expired, early, too long-lived, wrong
 * aud, unknown issuer, oversized, bad base64url, duplicate claims) gets its
 * RFC 6749 §5.2 error and no token; resources and scopes come only from the
 * registration; acting for a user needs trust level full, or application
 * with the user's consent (test_oauth_trust.c has consent and user trust).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "core/b64.h"
#include "http/http.h"
#include "oauth/jose.h"
#include "oauth/replay.h"
#include "oauth/sts.h"
#include "oauth/token.h"
#include "store/store.h"

#define NOW	 1800000000
#define ISSUER	 "https://sts.example.test"
#define ENDPOINT ISSUER "/oauth/token"

static EVP_PKEY *k_p1, *k_p2, *k_sts;

struct fx {
	struct oauth_snapshot *snap;
	struct sts_issuer iss;
	struct replay_cache *replay;
	struct token_ctx ctx;
	struct jose_keyset sts_keys;
	int jti_n;
	int user_answer;
};

static int sts_test_sign(void *arg, const json_t *header, const json_t *payload, char **out,
			 size_t *outlen)
{
	struct jose_pkey_signer s = {k_sts, JOSE_ALG_RS256};
	const char *typ = json_string_value(json_object_get(header, "typ"));
	json_t *h =
	    json_pack("{s:s, s:s, s:s}", "typ", typ ? typ : "JWT", "alg", "RS256", "kid", "sts");
	int rc = jose_sign_compact(h, payload, jose_pkey_signer, &s, out, outlen);

	(void)arg;
	json_decref(h);
	return rc;
}

static EVP_PKEY *gen(int type)
{
	EVP_PKEY *k = NULL;

	if (type == EVP_PKEY_RSA)
		k = EVP_RSA_gen(2048);
	else
		k = EVP_EC_gen("P-256");
	assert_non_null(k);
	return k;
}

static int group_setup(void **state)
{
	(void)state;
	k_p1 = gen(EVP_PKEY_RSA);
	k_p2 = gen(EVP_PKEY_EC);
	k_sts = gen(EVP_PKEY_RSA);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(k_p1);
	EVP_PKEY_free(k_p2);
	EVP_PKEY_free(k_sts);
	return 0;
}

static void add_partner(struct oauth_partner *p, const char *name, const char *issuer, int trust,
			const char *resources, EVP_PKEY *pkey, const char *kid)
{
	struct jose_key *k = NULL;

	snprintf(p->rec.name, sizeof(p->rec.name), "%s", name);
	snprintf(p->rec.issuer, sizeof(p->rec.issuer), "%s", issuer);
	snprintf(p->rec.resources, sizeof(p->rec.resources), "%s", resources);
	p->rec.enabled = true;
	p->rec.trust = trust;
	p->rec.lifetime = 600;
	jose_keyset_init(&p->keys);
	assert_int_equal(jose_key_from_pkey(pkey, NULL, 0, JOSE_ALG_UNKNOWN, kid, &k), 0);
	assert_int_equal(jose_keyset_add(&p->keys, k), 0);
	jose_key_free(k);
}

static int user_answer(void *arg, const char *uri)
{
	struct fx *f = arg;

	check_expected(uri);
	return f->user_answer;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct oauth_snapshot *s = calloc(1, sizeof(*s));
	struct jose_key *k = NULL;

	assert_non_null(f);
	assert_non_null(s);
	snprintf(s->issuer, sizeof(s->issuer), ISSUER);
	snprintf(s->token_endpoint, sizeof(s->token_endpoint), ENDPOINT);
	snprintf(s->realm, sizeof(s->realm), "example.test");
	snprintf(s->principal_id, sizeof(s->principal_id), OAUTH_PRINCIPAL_LYNC);
	snprintf(s->host, sizeof(s->host), "sts.example.test");
	s->default_lifetime = 3600;
	s->max_lifetime = 86400;
	s->clock_skew = 300;
	s->max_token_size = 16384;
	s->partners = calloc(3, sizeof(*s->partners));
	assert_non_null(s->partners);
	s->n_partners = 3;
	add_partner(&s->partners[0], "p1", "p1-client", STORE_TRUST_FULL,
		    "users.read,presence.read,https://api.example.test", k_p1, "p1key");
	add_partner(&s->partners[1], "p2", "p2-client", STORE_TRUST_APPLICATION, "", k_p2, "p2key");
	add_partner(&s->partners[2], "p3", "p3-client", STORE_TRUST_USER, "users.read", k_p2,
		    "p3key");
	f->snap = s;
	f->iss.issuer = s->issuer;
	f->iss.principal_id = s->principal_id;
	f->iss.realm = s->realm;
	f->iss.default_lifetime = s->default_lifetime;
	f->iss.max_lifetime = s->max_lifetime;
	f->iss.sign = sts_test_sign;
	f->replay = replay_new(1024);
	assert_non_null(f->replay);
	f->ctx.snap = s;
	f->ctx.iss = &f->iss;
	f->ctx.replay = f->replay;
	f->ctx.now = NOW;
	jose_keyset_init(&f->sts_keys);
	assert_int_equal(jose_key_from_pkey(k_sts, NULL, 0, JOSE_ALG_RS256, "sts", &k), 0);
	assert_int_equal(jose_keyset_add(&f->sts_keys, k), 0);
	jose_key_free(k);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	for (size_t i = 0; i < f->snap->n_partners; i++)
		jose_keyset_clear(&f->snap->partners[i].keys);
	free(f->snap->partners);
	free(f->snap);
	replay_free(f->replay);
	jose_keyset_clear(&f->sts_keys);
	free(f);
	return 0;
}

/* ---- minting test assertions ---- */

static char *b64u(const void *p, size_t n)
{
	char *out = malloc(b64_url_len(n) + 1);

	assert_non_null(out);
	assert_true(b64_url_encode(p, n, out, b64_url_len(n) + 1) >= 0);
	return out;
}

/* header.payload.sig from raw JSON texts, signed with pkey (NULL: sig as given) */
static char *compose(const char *hdr, const char *payload, EVP_PKEY *pkey, enum jose_alg alg)
{
	char *h = b64u(hdr, strlen(hdr)), *p = b64u(payload, strlen(payload)), *s, *out;
	size_t inlen = strlen(h) + 1 + strlen(p);
	char *input = malloc(inlen + 1);
	uint8_t sig[JOSE_SIG_MAX];
	size_t siglen = sizeof(sig);

	assert_non_null(input);
	snprintf(input, inlen + 1, "%s.%s", h, p);
	if (pkey) {
		assert_int_equal(
		    jose_sign_with_pkey(pkey, alg, (const uint8_t *)input, inlen, sig, &siglen), 0);
		s = b64u(sig, siglen);
	} else {
		s = strdup("");
	}
	out = malloc(inlen + strlen(s) + 2);
	assert_non_null(out);
	sprintf(out, "%s.%s", input, s);
	free(h);
	free(p);
	free(s);
	free(input);
	return out;
}

/* Claims of a good client assertion for iss; the caller changes them. */
static json_t *claims(struct fx *f, const char *iss)
{
	char jti[32];

	snprintf(jti, sizeof(jti), "jti-%d", ++f->jti_n);
	return json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "iss", iss, "sub", iss, "aud", ENDPOINT,
			 "iat", (json_int_t)NOW, "exp", (json_int_t)(NOW + 300), "jti", jti);
}

static char *sign_claims(json_t *c, EVP_PKEY *pkey, enum jose_alg alg, const char *kid)
{
	struct jose_pkey_signer s = {pkey, alg};
	json_t *h = json_pack("{s:s, s:s}", "alg", jose_alg_name(alg), "kid", kid);
	char *out = NULL;

	assert_int_equal(jose_sign_compact(h, c, jose_pkey_signer, &s, &out, NULL), 0);
	json_decref(h);
	json_decref(c);
	return out;
}

static char *p1_assertion(struct fx *f)
{
	return sign_claims(claims(f, "p1-client"), k_p1, JOSE_ALG_RS256, "p1key");
}

/* Run a form body through parse + process. */
static void run(struct fx *f, const char *body, struct token_result *res)
{
	struct token_form form;

	memset(res, 0, sizeof(*res));
	if (token_form_parse(body, strlen(body), &form, res) < 0)
		return;
	token_process(&f->ctx, &form, res);
	token_form_free(&form);
}

static char *cc_body(const char *assertion, const char *extra)
{
	char *b = NULL;

	assert_true(
	    asprintf(&b,
		     "grant_type=client_credentials&client_assertion_type=urn%%3Aietf%%3Aparams"
		     "%%3Aoauth%%3Aclient-assertion-type%%3Ajwt-bearer&client_assertion=%s%s",
		     assertion, extra ? extra : "") > 0);
	return b;
}

/* run client_credentials with this assertion; frees it */
static void run_cc(struct fx *f, char *assertion, const char *extra, struct token_result *res)
{
	char *b = cc_body(assertion, extra);

	run(f, b, res);
	free(b);
	free(assertion);
}

static void expect_error(struct token_result *res, int status, const char *error,
			 enum token_reason why)
{
	if (res->status != status || !res->error || strcmp(res->error, error) != 0 ||
	    res->reason != why)
		fail_msg("got %d %s (%s: %s), want %d %s (%s)", res->status,
			 res->error ? res->error : "-", token_reason_name(res->reason),
			 res->description, status, error, token_reason_name(why));
	assert_null(res->access_token);
	assert_int_equal(res->expires_in, 0);
	token_result_free(res);
}

static json_t *verify_issued(struct fx *f, struct token_result *res)
{
	struct jose_jws jws;
	json_t *p;

	if (res->status != 200)
		fail_msg("not issued: %d %s: %s", res->status, res->error, res->description);
	assert_non_null(res->access_token);
	assert_int_equal(jose_verify_keyset(res->access_token, strlen(res->access_token), NULL,
					    &f->sts_keys, &jws),
			 0);
	assert_string_equal(jws.typ, "at+jwt");
	p = json_incref(jws.payload);
	jose_jws_free(&jws);
	return p;
}

static const char *cs(json_t *p, const char *name)
{
	const char *v = json_string_value(json_object_get(p, name));

	assert_non_null(v);
	return v;
}

/* ---- the form ---- */

static void test_token_form_rejects_duplicate_parameters(void **state)
{
	struct fx *f = *state;
	struct token_result res;

	run(f, "grant_type=client_credentials&grant_type=client_credentials", &res);
	expect_error(&res, 400, "invalid_request", TOKEN_R_INVALID_REQUEST);
	/* the same name, once percent-encoded, is the same parameter */
	run(f, "scope=a&%73cope=b&grant_type=client_credentials", &res);
	expect_error(&res, 400, "invalid_request", TOKEN_R_INVALID_REQUEST);
	/* even when one of them is empty */
	run(f, "client_id=&client_id=x&grant_type=client_credentials", &res);
	expect_error(&res, 400, "invalid_request", TOKEN_R_INVALID_REQUEST);
}

static void test_token_form_accepts_one_resource_only(void **state)
{
	struct fx *f = *state;
	struct token_result res;

	run(f, "grant_type=client_credentials&resource=a&resource=b", &res);
	expect_error(&res, 400, "invalid_target", TOKEN_R_INVALID_TARGET);
}

static void test_token_form_rejects_bad_escapes_nul_and_controls(void **state)
{
	struct fx *f = *state;
	struct token_result res;

	run(f, "grant_type=client%2", &res);
	expect_error(&res, 400, "invalid_request", TOKEN_R_INVALID_REQUEST);
	run(f, "grant_type=client%zzcredentials", &res);
	expect_error(&res, 400, "invalid_request", TOKEN_R_INVALID_REQUEST);
	run(f, "grant_type=client_credentials%00", &res);
	expect_error(&res, 400, "invalid_request", TOKEN_R_INVALID_REQUEST);
	run(f, "grant_type=client_credentials&scope=a%0Ab", &res);
	expect_error(&res, 400, "invalid_request", TOKEN_R_INVALID_REQUEST);
	run(f, "gr%ant_type=x", &res);
	expect_error(&res, 400, "invalid_request", TOKEN_R_INVALID_REQUEST);
}

static void test_token_form_bounds_parameter_count_and_size(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	char body[4096] = "grant_type=client_credentials";
	char *big;

	for (int i = 0; i < TOKEN_FORM_MAX_PARAMS; i++)
		snprintf(body + strlen(body), sizeof(body) - strlen(body), "&x%d=1", i);
	run(f, body, &res);
	expect_error(&res, 400, "invalid_request", TOKEN_R_INVALID_REQUEST);
	big = malloc(TOKEN_FORM_SHORT_MAX + 64);
	assert_non_null(big);
	strcpy(big, "grant_type=client_credentials&scope=");
	memset(big + strlen(big), 'a', TOKEN_FORM_SHORT_MAX + 1);
	big[strlen("grant_type=client_credentials&scope=") + TOKEN_FORM_SHORT_MAX + 1] = '\0';
	run(f, big, &res);
	expect_error(&res, 400, "invalid_request", TOKEN_R_INVALID_REQUEST);
	free(big);
	run(f, "", &res);
	expect_error(&res, 400, "invalid_request", TOKEN_R_INVALID_REQUEST);
}

static void test_token_form_decodes_and_ignores_unknown_and_empty(void **state)
{
	struct token_form form;
	struct token_result res;
	const char *b = "&foo=bar&&scope=users.read+presence.read&client_id=&grant_type=client%5F"
			"credentials&unknown=1&unknown=2";

	(void)state;
	memset(&res, 0, sizeof(res));
	assert_int_equal(token_form_parse(b, strlen(b), &form, &res), 0);
	assert_string_equal(form.grant_type, "client_credentials");
	assert_string_equal(form.scope, "users.read presence.read");
	assert_null(form.client_id); /* empty = omitted (RFC 6749 §3.2) */
	assert_null(form.resource);
	token_form_free(&form);
}

/* ---- grant types and client authentication ---- */

static void test_token_rejects_missing_and_unsupported_grant_type(void **state)
{
	struct fx *f = *state;
	struct token_result res;

	run(f, "scope=users.read", &res);
	expect_error(&res, 400, "invalid_request", TOKEN_R_INVALID_REQUEST);
	run(f, "grant_type=password&username=a&password=b", &res);
	expect_error(&res, 400, "unsupported_grant_type", TOKEN_R_UNSUPPORTED_GRANT);
	run(f, "grant_type=authorization_code&code=x", &res);
	expect_error(&res, 400, "unsupported_grant_type", TOKEN_R_UNSUPPORTED_GRANT);
}

static void test_token_requires_client_authentication(void **state)
{
	struct fx *f = *state;
	struct token_result res;

	run(f, "grant_type=client_credentials", &res);
	assert_string_equal(res.www_authenticate, "");
	expect_error(&res, 401, "invalid_client", TOKEN_R_NO_CLIENT_AUTH);
	run(f, "grant_type=client_credentials&client_assertion=abc", &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_NO_CLIENT_AUTH);
}

static void test_token_answers_authorization_header_with_www_authenticate(void **state)
{
	struct fx *f = *state;
	struct token_result res;

	f->ctx.auth_scheme = "Basic";
	run_cc(f, p1_assertion(f), NULL, &res);
	assert_string_equal(res.www_authenticate, "Basic realm=\"oauth\"");
	expect_error(&res, 401, "invalid_client", TOKEN_R_NO_CLIENT_AUTH);
}

static void test_token_client_credentials_issues_rfc9068_token(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	uint64_t before = token_count_get(TOKEN_ISSUED);
	json_t *p;

	run_cc(f, p1_assertion(f), NULL, &res);
	p = verify_issued(f, &res);
	assert_string_equal(cs(p, "iss"), ISSUER);
	assert_string_equal(cs(p, "sub"), "p1-client");
	assert_string_equal(cs(p, "client_id"), "p1-client");
	assert_string_equal(cs(p, "aud"), ISSUER);
	/* no scope asked: everything registered */
	assert_string_equal(cs(p, "scope"), "users.read presence.read https://api.example.test");
	assert_string_equal(res.scope, "users.read presence.read https://api.example.test");
	assert_int_equal(json_integer_value(json_object_get(p, "exp")), NOW + 600);
	assert_int_equal(res.expires_in, 600);
	assert_null(json_object_get(p, "act"));
	assert_string_equal(res.grant, "client_credentials");
	assert_string_equal(res.partner, "p1");
	json_decref(p);
	token_count(res.reason);
	assert_int_equal(token_count_get(TOKEN_ISSUED), before + 1);
	token_result_free(&res);
}

static void test_token_lifetime_is_bounded_by_server_maximum(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	json_t *p;

	f->snap->partners[0].rec.lifetime = 7 * 86400;
	f->iss.max_lifetime = 3000;
	run_cc(f, p1_assertion(f), NULL, &res);
	p = verify_issued(f, &res);
	assert_int_equal(res.expires_in, 3000);
	assert_int_equal(json_integer_value(json_object_get(p, "exp")), NOW + 3000);
	json_decref(p);
	token_result_free(&res);
}

/* client_id may be <id>@<realm> (PROTOCOLS.md §6) */
static void test_token_accepts_es256_assertion_and_client_id(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	json_t *p;

	run_cc(f, sign_claims(claims(f, "p2-client"), k_p2, JOSE_ALG_ES256, "p2key"),
	       "&client_id=p2-client%40example.test", &res);
	p = verify_issued(f, &res);
	assert_string_equal(cs(p, "sub"), "p2-client");
	/* nothing registered: our issuer only, no scope */
	assert_null(json_object_get(p, "scope"));
	json_decref(p);
	token_result_free(&res);
}

static void test_token_rejects_replayed_jti(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	char *a = p1_assertion(f);

	run_cc(f, strdup(a), NULL, &res);
	assert_int_equal(res.status, 200);
	token_result_free(&res);
	run_cc(f, a, NULL, &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_REPLAY);
}

/* A fresh in-process replay cache: what another server of the pool has. */
static void other_server(struct fx *f)
{
	replay_free(f->replay);
	f->replay = replay_new(0);
	assert_non_null(f->replay);
	f->ctx.replay = f->replay;
}

/* Through the group commit (defer_spend) as the token endpoint does it. */
static void run_cc_pool(struct fx *f, const char *assertion, struct token_result *res)
{
	struct token_result *one = res;

	run_cc(f, strdup(assertion), NULL, res);
	if (res->n_spend)
		assert_int_equal(token_spend_commit(f->ctx.store, &one, 1, NOW), STORE_OK);
}

static void test_token_pool_refuses_an_assertion_spent_at_another_server(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	struct store *st;
	char dir[] = "/tmp/rtc-tokpool-XXXXXX", path[96], err[256];
	json_t *c = claims(f, "p1-client");
	char *a, *same_jti_later;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/store.db", dir);
	assert_int_equal(store_open(path, STORE_CREATE, 1000, &st, err, sizeof(err)), STORE_OK);
	f->ctx.store = st;
	f->ctx.defer_spend = true;

	json_object_set_new(c, "jti", json_string("pool-jti"));
	a = sign_claims(json_deep_copy(c), k_p1, JOSE_ALG_RS256, "p1key");
	json_object_set_new(c, "exp", json_integer(NOW + 200));
	same_jti_later = sign_claims(c, k_p1, JOSE_ALG_RS256, "p1key");

	/* the endpoint leaves the store write to the group commit; the row key
	 * leads with the assertion's exp, big-endian */
	run_cc(f, strdup(a), NULL, &res);
	assert_int_equal(res.status, 200);
	assert_int_equal(res.n_spend, 1);
	for (int i = 0; i < 8; i++)
		assert_int_equal(res.spend[0].row.key[i],
				 (uint8_t)((uint64_t)(NOW + 300) >> (56 - 8 * i)));
	assert_int_equal(res.spend[0].row.expires, NOW + 300 + f->snap->clock_skew);
	{
		struct token_result *one = &res;

		assert_int_equal(token_spend_commit(st, &one, 1, NOW), STORE_OK);
	}
	assert_int_equal(res.status, 200);
	assert_non_null(res.access_token);
	token_result_free(&res);

	/* the same assertion at another server: refused, its token wiped */
	other_server(f);
	run_cc_pool(f, a, &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_REPLAY);
	/* and without the group commit too */
	other_server(f);
	f->ctx.defer_spend = false;
	run_cc(f, strdup(a), NULL, &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_REPLAY);
	assert_int_equal(res.n_spend, 0);

	/* the client's own new assertion reusing the jti with another exp:
	 * the server that saw the first one refuses it, another does not */
	run_cc(f, strdup(same_jti_later), NULL, &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_REPLAY);
	other_server(f);
	f->ctx.defer_spend = true;
	run_cc_pool(f, same_jti_later, &res);
	assert_int_equal(res.status, 200);
	token_result_free(&res);

	free(a);
	free(same_jti_later);
	f->ctx.store = NULL;
	store_close(st);
	{
		static const char *const sfx[] = {"", "-wal", "-shm"};
		char p[128];

		for (size_t i = 0; i < 3; i++) {
			snprintf(p, sizeof(p), "%s%s", path, sfx[i]);
			unlink(p);
		}
	}
	rmdir(dir);
}

static void test_token_replay_is_per_partner(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	json_t *c1 = claims(f, "p1-client"), *c2 = claims(f, "p2-client");

	json_object_set_new(c2, "jti", json_string(json_string_value(json_object_get(c1, "jti"))));
	run_cc(f, sign_claims(c1, k_p1, JOSE_ALG_RS256, "p1key"), NULL, &res);
	assert_int_equal(res.status, 200);
	token_result_free(&res);
	run_cc(f, sign_claims(c2, k_p2, JOSE_ALG_ES256, "p2key"), NULL, &res);
	assert_int_equal(res.status, 200);
	token_result_free(&res);
}

static void test_token_refuses_when_replay_cache_full(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	int i, full = 0;

	replay_free(f->replay);
	f->replay = replay_new(16);
	f->ctx.replay = f->replay;
	for (i = 0; i < 40 && !full; i++) {
		run_cc(f, p1_assertion(f), NULL, &res);
		if (res.status == 503) {
			full = 1;
			expect_error(&res, 503, "temporarily_unavailable", TOKEN_R_REPLAY_FULL);
		} else {
			assert_int_equal(res.status, 200);
			token_result_free(&res);
		}
	}
	assert_true(full);
	assert_true(i <= 17);
	/* once the entries expire, assertions are taken again */
	f->ctx.now = NOW + 300 + 300 + 1;
	{
		json_t *c = claims(f, "p1-client");

		json_object_set_new(c, "iat", json_integer(f->ctx.now));
		json_object_set_new(c, "exp", json_integer(f->ctx.now + 60));
		run_cc(f, sign_claims(c, k_p1, JOSE_ALG_RS256, "p1key"), NULL, &res);
	}
	assert_int_equal(res.status, 200);
	token_result_free(&res);
}

static void test_token_rejects_assertion_signed_by_another_key(void **state)
{
	struct fx *f = *state;
	struct token_result res;

	run_cc(f, sign_claims(claims(f, "p1-client"), k_sts, JOSE_ALG_RS256, "p1key"), NULL, &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_BAD_ASSERTION);
	/* another partner's key under its own kid: not in p1's set */
	run_cc(f, sign_claims(claims(f, "p1-client"), k_p2, JOSE_ALG_ES256, "p2key"), NULL, &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_BAD_ASSERTION);
}

static void test_token_rejects_alg_none(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	json_t *c = claims(f, "p1-client");
	char *p = json_dumps(c, JSON_COMPACT);

	json_decref(c);

	run_cc(f, compose("{\"alg\":\"none\",\"kid\":\"p1key\"}", p, NULL, 0), NULL, &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_BAD_ASSERTION);
	free(p);
}

static void test_token_rejects_hs256_with_public_key_as_secret(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	json_t *c = claims(f, "p1-client");
	char *p = json_dumps(c, JSON_COMPACT), *h, *pl, *in, *tok, *s;
	BIO *bio = BIO_new(BIO_s_mem());
	unsigned char mac[32];
	unsigned int maclen = 0;
	char *pem;
	long pemlen;

	json_decref(c);
	assert_int_equal(PEM_write_bio_PUBKEY(bio, k_p1), 1);
	pemlen = BIO_get_mem_data(bio, &pem);
	h = b64u("{\"alg\":\"HS256\",\"kid\":\"p1key\"}", 29);
	pl = b64u(p, strlen(p));
	assert_true(asprintf(&in, "%s.%s", h, pl) > 0);
	assert_non_null(
	    HMAC(EVP_sha256(), pem, (int)pemlen, (unsigned char *)in, strlen(in), mac, &maclen));
	s = b64u(mac, maclen);
	assert_true(asprintf(&tok, "%s.%s", in, s) > 0);
	run_cc(f, tok, NULL, &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_BAD_ASSERTION);
	BIO_free(bio);
	free(h);
	free(pl);
	free(in);
	free(s);
	free(p);
}

static void test_token_rejects_absent_or_unknown_key_id_and_tampered_payload(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	char payload[512], *a, *dot, *tampered = NULL;

	snprintf(payload, sizeof(payload),
		 "{\"iss\":\"p1-client\",\"sub\":\"p1-client\",\"aud\":\"%s\",\"exp\":%d,"
		 "\"jti\":\"k1\"}",
		 ENDPOINT, NOW + 300);
	run_cc(f, compose("{\"alg\":\"RS256\"}", payload, k_p1, JOSE_ALG_RS256), NULL, &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_BAD_ASSERTION);
	assert_non_null(strstr(res.description, "no_key_id"));
	run_cc(f, sign_claims(claims(f, "p1-client"), k_p1, JOSE_ALG_RS256, "nosuchkid"), NULL,
	       &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_BAD_ASSERTION);
	/* a payload swapped for another partner-approved one: the signature no
	 * longer matches */
	a = p1_assertion(f);
	{
		json_t *c = claims(f, "p1-client");
		char *other = sign_claims(c, k_p1, JOSE_ALG_RS256, "p1key");
		char *p1 = strchr(a, '.'), *p2 = strchr(other, '.');

		dot = strchr(p1 + 1, '.');
		assert_true(asprintf(&tampered, "%.*s%.*s%s", (int)(p1 - a), a,
				     (int)(strchr(p2 + 1, '.') - p2), p2, dot) > 0);
		free(other);
	}
	free(a);
	run_cc(f, tampered, NULL, &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_BAD_ASSERTION);
	assert_non_null(strstr(res.description, "bad_signature"));
}

static void test_token_rejects_expired_assertion(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	json_t *c = claims(f, "p1-client");

	json_object_set_new(c, "iat", json_integer(NOW - 1000));
	json_object_set_new(c, "exp", json_integer(NOW - 301));
	run_cc(f, sign_claims(c, k_p1, JOSE_ALG_RS256, "p1key"), NULL, &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_EXPIRED);
	/* within the skew it still counts */
	c = claims(f, "p1-client");
	json_object_set_new(c, "iat", json_integer(NOW - 1000));
	json_object_set_new(c, "exp", json_integer(NOW - 299));
	run_cc(f, sign_claims(c, k_p1, JOSE_ALG_RS256, "p1key"), NULL, &res);
	assert_int_equal(res.status, 200);
	token_result_free(&res);
}

static void test_token_rejects_nbf_and_iat_beyond_skew(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	json_t *c = claims(f, "p1-client");

	json_object_set_new(c, "nbf", json_integer(NOW + 301));
	json_object_set_new(c, "exp", json_integer(NOW + 600));
	run_cc(f, sign_claims(c, k_p1, JOSE_ALG_RS256, "p1key"), NULL, &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_NOT_YET_VALID);
	c = claims(f, "p1-client");
	json_object_set_new(c, "iat", json_integer(NOW + 400));
	json_object_set_new(c, "exp", json_integer(NOW + 600));
	run_cc(f, sign_claims(c, k_p1, JOSE_ALG_RS256, "p1key"), NULL, &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_NOT_YET_VALID);
	c = claims(f, "p1-client");
	json_object_set_new(c, "nbf", json_integer(NOW + 200));
	run_cc(f, sign_claims(c, k_p1, JOSE_ALG_RS256, "p1key"), NULL, &res);
	assert_int_equal(res.status, 200);
	token_result_free(&res);
}

static void test_token_rejects_lifetime_above_maximum(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	json_t *c = claims(f, "p1-client");

	json_object_set_new(c, "exp", json_integer(NOW + 86400 + 1));
	run_cc(f, sign_claims(c, k_p1, JOSE_ALG_RS256, "p1key"), NULL, &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_LIFETIME);
	/* measured from iat as well as from now */
	c = claims(f, "p1-client");
	json_object_set_new(c, "iat", json_integer(NOW - 86400));
	json_object_set_new(c, "exp", json_integer(NOW + 60));
	run_cc(f, sign_claims(c, k_p1, JOSE_ALG_RS256, "p1key"), NULL, &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_LIFETIME);
}

static void test_token_rejects_aud_of_another_server(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	json_t *c = claims(f, "p1-client");

	json_object_set_new(c, "aud", json_string("https://other.example.test/oauth/token"));
	run_cc(f, sign_claims(c, k_p1, JOSE_ALG_RS256, "p1key"), NULL, &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_BAD_CLAIMS);
	c = claims(f, "p1-client");
	json_object_del(c, "aud");
	run_cc(f, sign_claims(c, k_p1, JOSE_ALG_RS256, "p1key"), NULL, &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_BAD_CLAIMS);
	/* an array holding us, or our issuer, is fine */
	c = claims(f, "p1-client");
	json_object_set_new(c, "aud", json_pack("[s,s]", "https://x.test", ISSUER));
	run_cc(f, sign_claims(c, k_p1, JOSE_ALG_RS256, "p1key"), NULL, &res);
	assert_int_equal(res.status, 200);
	token_result_free(&res);
}

static void test_token_rejects_unknown_or_disabled_issuer(void **state)
{
	struct fx *f = *state;
	struct token_result res;

	run_cc(f, sign_claims(claims(f, "nobody"), k_p1, JOSE_ALG_RS256, "p1key"), NULL, &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_UNKNOWN_ISSUER);
	/* a disabled partner is not in the snapshot at all */
	f->snap->n_partners = 1;
	run_cc(f, sign_claims(claims(f, "p2-client"), k_p2, JOSE_ALG_ES256, "p2key"), NULL, &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_UNKNOWN_ISSUER);
	f->snap->n_partners = 3;
}

static void test_token_finds_partner_by_principal_at_realm(void **state)
{
	struct fx *f = *state;
	struct token_result res;

	run_cc(f, sign_claims(claims(f, "p1-client@example.test"), k_p1, JOSE_ALG_RS256, "p1key"),
	       NULL, &res);
	assert_int_equal(res.status, 200);
	token_result_free(&res);
	run_cc(f, sign_claims(claims(f, "p1-client@other.test"), k_p1, JOSE_ALG_RS256, "p1key"),
	       NULL, &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_UNKNOWN_ISSUER);
}

static void test_token_rejects_oversized_assertion(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	json_t *c = claims(f, "p1-client");
	char *pad = malloc(20000);

	memset(pad, 'x', 19999);
	pad[19999] = '\0';
	json_object_set_new(c, "pad", json_string(pad));
	free(pad);
	run_cc(f, sign_claims(c, k_p1, JOSE_ALG_RS256, "p1key"), NULL, &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_BAD_ASSERTION);
}

static void test_token_rejects_bad_base64url(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	char *a = p1_assertion(f);

	a[3] = '+'; /* not in the base64url alphabet (%2B decodes to '+') */
	{
		char *b = NULL;

		assert_true(asprintf(&b, "%.3s%%2B%s", a, a + 4) > 0);
		free(a);
		a = b;
	}
	run_cc(f, a, NULL, &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_BAD_ASSERTION);
	a = p1_assertion(f);
	a[strlen(a) - 1] = '='; /* padding */
	run_cc(f, a, NULL, &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_BAD_ASSERTION);
}

static void test_token_rejects_duplicate_json_claims(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	char payload[512];

	snprintf(payload, sizeof(payload),
		 "{\"iss\":\"p1-client\",\"sub\":\"p1-client\",\"aud\":\"%s\",\"exp\":%d,"
		 "\"jti\":\"d1\",\"jti\":\"d2\"}",
		 ENDPOINT, NOW + 300);
	run_cc(f, compose("{\"alg\":\"RS256\",\"kid\":\"p1key\"}", payload, k_p1, JOSE_ALG_RS256),
	       NULL, &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_BAD_ASSERTION);
	snprintf(payload, sizeof(payload),
		 "{\"iss\":\"p1-client\",\"sub\":\"p1-client\",\"aud\":\"%s\",\"exp\":%d,"
		 "\"jti\":\"d3\"}",
		 ENDPOINT, NOW + 300);
	run_cc(f,
	       compose("{\"alg\":\"RS256\",\"kid\":\"p1key\",\"alg\":\"RS256\"}", payload, k_p1,
		       JOSE_ALG_RS256),
	       NULL, &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_BAD_ASSERTION);
}

static void test_token_rejects_sub_client_id_jti_exp_mismatches(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	json_t *c = claims(f, "p1-client");

	json_object_set_new(c, "sub", json_string("someone-else"));
	run_cc(f, sign_claims(c, k_p1, JOSE_ALG_RS256, "p1key"), NULL, &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_BAD_CLAIMS);
	run_cc(f, p1_assertion(f), "&client_id=p2-client", &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_BAD_CLAIMS);
	run_cc(f, p1_assertion(f), "&client_id=p1-client%40other.test", &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_BAD_CLAIMS);
	c = claims(f, "p1-client");
	json_object_del(c, "jti");
	run_cc(f, sign_claims(c, k_p1, JOSE_ALG_RS256, "p1key"), NULL, &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_BAD_CLAIMS);
	c = claims(f, "p1-client");
	json_object_del(c, "exp");
	run_cc(f, sign_claims(c, k_p1, JOSE_ALG_RS256, "p1key"), NULL, &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_BAD_CLAIMS);
}

/* ---- resource and scope ---- */

static void test_token_resource_must_be_registered_or_ours(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	json_t *p;

	run_cc(f, p1_assertion(f), "&resource=https%3A%2F%2Fapi.example.test", &res);
	p = verify_issued(f, &res);
	assert_string_equal(cs(p, "aud"), "https://api.example.test");
	json_decref(p);
	token_result_free(&res);
	run_cc(f, p1_assertion(f), "&resource=https%3A%2F%2Fevil.example.test", &res);
	expect_error(&res, 400, "invalid_target", TOKEN_R_INVALID_TARGET);
	/* our principal/host@realm, the host in any case */
	run_cc(f, p1_assertion(f),
	       "&resource=" OAUTH_PRINCIPAL_LYNC "%2FSTS.example.test%40example.test", &res);
	p = verify_issued(f, &res);
	assert_string_equal(cs(p, "aud"), OAUTH_PRINCIPAL_LYNC "/STS.example.test@example.test");
	json_decref(p);
	token_result_free(&res);
	run_cc(f, p1_assertion(f),
	       "&resource=" OAUTH_PRINCIPAL_LYNC "%2Fsts.example.test%40EXAMPLE.test", &res);
	expect_error(&res, 400, "invalid_target", TOKEN_R_INVALID_TARGET);
	/* a partner without registered resources gets only our issuer */
	run_cc(f, sign_claims(claims(f, "p2-client"), k_p2, JOSE_ALG_ES256, "p2key"),
	       "&resource=users.read", &res);
	expect_error(&res, 400, "invalid_target", TOKEN_R_INVALID_TARGET);
	run_cc(f, sign_claims(claims(f, "p2-client"), k_p2, JOSE_ALG_ES256, "p2key"),
	       "&resource=https%3A%2F%2Fsts.example.test", &res);
	assert_int_equal(res.status, 200);
	token_result_free(&res);
}

static void test_token_scope_must_be_registered(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	json_t *p;

	run_cc(f, p1_assertion(f), "&scope=presence.read+users.read+presence.read", &res);
	p = verify_issued(f, &res);
	assert_string_equal(cs(p, "scope"), "presence.read users.read");
	json_decref(p);
	token_result_free(&res);
	run_cc(f, p1_assertion(f), "&scope=users.write", &res);
	expect_error(&res, 400, "invalid_scope", TOKEN_R_INVALID_SCOPE);
	run_cc(f, p1_assertion(f), "&scope=users.read++presence.read", &res);
	expect_error(&res, 400, "invalid_scope", TOKEN_R_INVALID_SCOPE);
	run_cc(f, p1_assertion(f), "&scope=users.read+", &res);
	expect_error(&res, 400, "invalid_scope", TOKEN_R_INVALID_SCOPE);
	run_cc(f, p1_assertion(f), "&scope=users%22read", &res);
	expect_error(&res, 400, "invalid_scope", TOKEN_R_INVALID_SCOPE);
	/* the substring of a registered item is not that item */
	run_cc(f, p1_assertion(f), "&scope=users", &res);
	expect_error(&res, 400, "invalid_scope", TOKEN_R_INVALID_SCOPE);
}

static void test_token_user_trust_cannot_use_client_credentials(void **state)
{
	struct fx *f = *state;
	struct token_result res;

	run_cc(f, sign_claims(claims(f, "p3-client"), k_p2, JOSE_ALG_ES256, "p3key"), NULL, &res);
	expect_error(&res, 400, "unauthorized_client", TOKEN_R_UNAUTHORIZED_CLIENT);
}

/* ---- acting for a user ---- */

static char *user_assertion(struct fx *f, const char *iss, const char *sub, EVP_PKEY *k,
			    enum jose_alg alg, const char *kid)
{
	json_t *c = claims(f, iss);

	json_object_set_new(c, "sub", json_string(sub));
	return sign_claims(c, k, alg, kid);
}

static void test_token_jwt_bearer_full_trust_acts_for_user(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	char *a = user_assertion(f, "p1-client", "alice@Example.TEST", k_p1, JOSE_ALG_RS256,
				 "p1key"),
	     *b = NULL;
	json_t *p;

	f->ctx.user_ok = user_answer;
	f->ctx.user_arg = f;
	f->user_answer = 0;
	expect_string(user_answer, uri, "sip:alice@example.test");
	assert_true(asprintf(&b,
			     "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-"
			     "bearer&assertion=%s&scope=users.read",
			     a) > 0);
	run(f, b, &res);
	p = verify_issued(f, &res);
	assert_string_equal(cs(p, "sub"), "sip:alice@example.test");
	assert_string_equal(cs(p, "client_id"), "p1-client");
	assert_string_equal(json_string_value(json_object_get(json_object_get(p, "act"), "sub")),
			    "p1-client");
	assert_string_equal(res.grant, "jwt-bearer");
	json_decref(p);
	token_result_free(&res);
	/* the same assertion again: a replay */
	run(f, b, &res);
	expect_error(&res, 400, "invalid_grant", TOKEN_R_REPLAY);
	free(a);
	free(b);
}

static void test_token_jwt_bearer_refused_without_full_trust(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	char *a, *b = NULL;

	a = user_assertion(f, "p2-client", "sip:alice@example.test", k_p2, JOSE_ALG_ES256, "p2key");
	assert_true(asprintf(&b,
			     "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=%s",
			     a) > 0);
	run(f, b, &res);
	/* application trust: only with the user's consent (none here) */
	expect_error(&res, 400, "invalid_grant", TOKEN_R_INVALID_GRANT);
	assert_non_null(strstr(res.description, "consent is missing"));
	free(a);
	free(b);
	a = user_assertion(f, "p3-client", "sip:alice@example.test", k_p2, JOSE_ALG_ES256, "p3key");
	assert_true(asprintf(&b,
			     "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=%s",
			     a) > 0);
	run(f, b, &res);
	expect_error(&res, 400, "unauthorized_client", TOKEN_R_UNAUTHORIZED_CLIENT);
	free(a);
	free(b);
}

static void test_token_jwt_bearer_rejects_unknown_user_and_foreign_assertion(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	char *a, *b = NULL, *ca;

	f->ctx.user_ok = user_answer;
	f->ctx.user_arg = f;
	f->user_answer = 1;
	expect_string(user_answer, uri, "sip:mallory@example.test");
	a = user_assertion(f, "p1-client", "sip:mallory@example.test", k_p1, JOSE_ALG_RS256,
			   "p1key");
	assert_true(asprintf(&b,
			     "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=%s",
			     a) > 0);
	run(f, b, &res);
	expect_error(&res, 400, "invalid_grant", TOKEN_R_INVALID_GRANT);
	free(a);
	free(b);
	/* the user store is down: temporary */
	f->user_answer = -1;
	expect_string(user_answer, uri, "sip:bob@example.test");
	a = user_assertion(f, "p1-client", "sip:bob@example.test", k_p1, JOSE_ALG_RS256, "p1key");
	assert_true(asprintf(&b,
			     "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=%s",
			     a) > 0);
	run(f, b, &res);
	expect_error(&res, 503, "temporarily_unavailable", TOKEN_R_SERVER_ERROR);
	free(a);
	free(b);
	/* client p1 authenticated, but the user assertion is p2's */
	ca = p1_assertion(f);
	a = user_assertion(f, "p2-client", "sip:bob@example.test", k_p2, JOSE_ALG_ES256, "p2key");
	assert_true(asprintf(&b,
			     "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=%s"
			     "&client_assertion_type=" TOKEN_CLIENT_ASSERTION_TYPE
			     "&client_assertion=%s",
			     a, ca) > 0);
	run(f, b, &res);
	expect_error(&res, 400, "invalid_grant", TOKEN_R_INVALID_GRANT);
	free(a);
	free(b);
	free(ca);
}

static void test_token_exchange_full_trust_issues_access_token(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	char *ca = p1_assertion(f), *st, *b = NULL;
	json_t *p;

	st =
	    user_assertion(f, "p1-client", "sip:alice@example.test", k_p1, JOSE_ALG_RS256, "p1key");
	assert_true(
	    asprintf(&b,
		     "grant_type=" TOKEN_GRANT_TOKEN_EXCHANGE "&subject_token=%s"
		     "&subject_token_type=" TOKEN_TYPE_JWT
		     "&audience=users.read&client_assertion_type=" TOKEN_CLIENT_ASSERTION_TYPE
		     "&client_assertion=%s",
		     st, ca) > 0);
	run(f, b, &res);
	p = verify_issued(f, &res);
	assert_string_equal(cs(p, "sub"), "sip:alice@example.test");
	assert_string_equal(cs(p, "aud"), "users.read");
	assert_string_equal(json_string_value(json_object_get(json_object_get(p, "act"), "sub")),
			    "p1-client");
	assert_string_equal(res.issued_token_type, TOKEN_TYPE_ACCESS_TOKEN);
	json_decref(p);
	token_result_free(&res);
	free(b);
	free(st);
	free(ca);
}

static void test_token_exchange_checks_parameters_and_trust(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	char *ca, *b = NULL;

	ca = p1_assertion(f);
	assert_true(asprintf(&b,
			     "grant_type=" TOKEN_GRANT_TOKEN_EXCHANGE
			     "&subject_token=x&client_assertion_type=" TOKEN_CLIENT_ASSERTION_TYPE
			     "&client_assertion=%s",
			     ca) > 0);
	run(f, b, &res);
	expect_error(&res, 400, "invalid_request", TOKEN_R_INVALID_REQUEST);
	free(b);
	assert_true(asprintf(&b,
			     "grant_type=" TOKEN_GRANT_TOKEN_EXCHANGE
			     "&subject_token=x&subject_token_type=" TOKEN_TYPE_JWT
			     "&actor_token=y&actor_token_type=" TOKEN_TYPE_JWT
			     "&client_assertion_type=" TOKEN_CLIENT_ASSERTION_TYPE
			     "&client_assertion=%s",
			     ca) > 0);
	run(f, b, &res);
	expect_error(&res, 400, "invalid_request", TOKEN_R_INVALID_REQUEST);
	free(b);
	free(ca);
	ca = sign_claims(claims(f, "p2-client"), k_p2, JOSE_ALG_ES256, "p2key");
	assert_true(asprintf(&b,
			     "grant_type=" TOKEN_GRANT_TOKEN_EXCHANGE
			     "&subject_token=x&subject_token_type=" TOKEN_TYPE_JWT
			     "&client_assertion_type=" TOKEN_CLIENT_ASSERTION_TYPE
			     "&client_assertion=%s",
			     ca) > 0);
	run(f, b, &res);
	/* application trust may exchange, but "x" is no assertion at all */
	expect_error(&res, 400, "invalid_grant", TOKEN_R_BAD_ASSERTION);
	free(b);
	free(ca);
}

/* ---- mutual TLS client authentication (RFC 8705 §2.2) ---- */

/* A self-signed certificate for pkey, as a partner would make one. */
static X509 *self_signed(EVP_PKEY *pkey, const char *cn, long serial)
{
	X509 *x = X509_new();
	X509_NAME *n;

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
	n = X509_get_subject_name(x);
	assert_int_equal(
	    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0),
	    1);
	assert_int_equal(X509_set_issuer_name(x, n), 1);
	assert_int_equal(X509_set_pubkey(x, pkey), 1);
	assert_true(X509_sign(x, pkey, EVP_sha256()) > 0);
	return x;
}

/* Register cert for p, as rtcauthctl partner add --cert does (oauth.c). */
static void register_cert(struct oauth_partner *p, X509 *cert)
{
	unsigned char *der = NULL;
	int n = i2d_X509(cert, &der);
	struct jose_key *k = NULL;

	assert_true(n > 0);
	assert_int_equal(jose_key_from_cert_der(der, (size_t)n, JOSE_ALG_UNKNOWN, NULL, &k), 0);
	assert_int_equal(jose_keyset_add(&p->keys, k), 0);
	jose_key_free(k);
	OPENSSL_free(der);
}

/* RFC 8705 §3.1, computed here independently of token.c */
static void thumbprint(X509 *cert, char out[JOSE_X5T256_LEN + 1])
{
	unsigned char *der = NULL, md[32];
	unsigned int mdlen = sizeof(md);
	int n = i2d_X509(cert, &der);

	assert_true(n > 0);
	assert_int_equal(EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL), 1);
	assert_int_equal(b64_url_encode(md, mdlen, out, JOSE_X5T256_LEN + 1), JOSE_X5T256_LEN);
	OPENSSL_free(der);
}

static const char *cnf_of(json_t *p)
{
	return json_string_value(json_object_get(json_object_get(p, "cnf"), "x5t#S256"));
}

static void test_token_cert_thumbprint_is_b64url_sha256_of_der(void **state)
{
	X509 *c = self_signed(k_p2, "p2", 1);
	char want[JOSE_X5T256_LEN + 1], got[JOSE_X5T256_LEN + 1];

	(void)state;
	thumbprint(c, want);
	assert_int_equal(token_cert_thumbprint(c, got), 0);
	assert_string_equal(got, want);
	assert_int_equal(strlen(got), 43);
	assert_int_equal(token_cert_thumbprint(NULL, got), -1);
	assert_string_equal(got, "");
	X509_free(c);
}

static void test_token_mtls_registered_self_signed_cert_gets_bound_token(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	X509 *c = self_signed(k_p2, "p2", 1);
	char want[JOSE_X5T256_LEN + 1];
	json_t *p;

	register_cert(&f->snap->partners[1], c);
	thumbprint(c, want);
	f->ctx.client_cert = c;
	run(f, "grant_type=client_credentials&client_id=p2-client", &res);
	p = verify_issued(f, &res);
	assert_string_equal(cs(p, "client_id"), "p2-client");
	assert_string_equal(cs(p, "sub"), "p2-client");
	assert_non_null(cnf_of(p));
	assert_string_equal(cnf_of(p), want);
	assert_string_equal(res.partner, "p2");
	assert_string_equal(res.client_auth, "self_signed_tls_client_auth");
	json_decref(p);
	token_result_free(&res);
	/* the <id>@<realm> form names the same client */
	run(f, "grant_type=client_credentials&client_id=p2-client%40example.test", &res);
	p = verify_issued(f, &res);
	assert_string_equal(cnf_of(p), want);
	json_decref(p);
	token_result_free(&res);
	/* private_key_jwt without a certificate: an unbound token */
	f->ctx.client_cert = NULL;
	run_cc(f, sign_claims(claims(f, "p2-client"), k_p2, JOSE_ALG_ES256, "p2key"), NULL, &res);
	p = verify_issued(f, &res);
	assert_null(json_object_get(p, "cnf"));
	assert_string_equal(res.client_auth, "private_key_jwt");
	json_decref(p);
	token_result_free(&res);
	X509_free(c);
}

static void test_token_mtls_refuses_cert_not_registered_for_client(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	X509 *c1 = self_signed(k_p1, "p1", 1), *c2 = self_signed(k_p2, "p2", 1),
	     *c2b = self_signed(k_p2, "p2", 2), *other = self_signed(k_sts, "other", 1);

	register_cert(&f->snap->partners[0], c1);
	register_cert(&f->snap->partners[1], c2);
	/* the same key and subject, another certificate: not byte for byte */
	f->ctx.client_cert = c2b;
	run(f, "grant_type=client_credentials&client_id=p2-client", &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_BAD_ASSERTION);
	/* a certificate nobody registered */
	f->ctx.client_cert = other;
	run(f, "grant_type=client_credentials&client_id=p2-client", &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_BAD_ASSERTION);
	/* p1's certificate is no credential for p2 */
	f->ctx.client_cert = c1;
	run(f, "grant_type=client_credentials&client_id=p2-client", &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_BAD_ASSERTION);
	/* a partner registered by key only (no certificate) has no mTLS */
	f->ctx.client_cert = c2;
	run(f, "grant_type=client_credentials&client_id=p3-client", &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_BAD_ASSERTION);
	X509_free(c1);
	X509_free(c2);
	X509_free(c2b);
	X509_free(other);
}

static void test_token_mtls_needs_client_id_of_an_enabled_partner(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	X509 *c = self_signed(k_p2, "p2", 1);

	register_cert(&f->snap->partners[1], c);
	f->ctx.client_cert = c;
	run(f, "grant_type=client_credentials", &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_NO_CLIENT_AUTH);
	run(f, "grant_type=client_credentials&client_id=nobody", &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_UNKNOWN_ISSUER);
	run(f, "grant_type=client_credentials&client_id=p2-client%40other.test", &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_UNKNOWN_ISSUER);
	/* a disabled partner is not in the snapshot at all */
	f->snap->n_partners = 1;
	run(f, "grant_type=client_credentials&client_id=p2-client", &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_UNKNOWN_ISSUER);
	f->snap->n_partners = 3;
	/* no certificate and no assertion */
	f->ctx.client_cert = NULL;
	run(f, "grant_type=client_credentials&client_id=p2-client", &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_NO_CLIENT_AUTH);
	X509_free(c);
}

static void test_token_mtls_with_assertion_or_authorization_is_invalid_request(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	X509 *c = self_signed(k_p2, "p2", 1);

	register_cert(&f->snap->partners[1], c);
	f->ctx.client_cert = c;
	/* RFC 6749 §2.3: one authentication method per request, even when
	 * both would authenticate the same client */
	run_cc(f, sign_claims(claims(f, "p2-client"), k_p2, JOSE_ALG_ES256, "p2key"),
	       "&client_id=p2-client", &res);
	expect_error(&res, 400, "invalid_request", TOKEN_R_INVALID_REQUEST);
	f->ctx.auth_scheme = "Basic";
	run(f, "grant_type=client_credentials&client_id=p2-client", &res);
	expect_error(&res, 400, "invalid_request", TOKEN_R_INVALID_REQUEST);
	X509_free(c);
}

/* A JWK registered with x5t#S256 and no x5c (RFC 8705 §2.2 allows jwks). */
static void register_jwk_thumbprint(struct oauth_partner *p, EVP_PKEY *pkey, const char *s256)
{
	struct jose_key *k = NULL, *k2 = NULL;
	json_t *jwk = NULL;

	assert_int_equal(jose_key_from_pkey(pkey, NULL, 0, JOSE_ALG_UNKNOWN, "jwk", &k), 0);
	assert_int_equal(jose_key_to_jwk(k, &jwk), 0);
	json_object_set_new(jwk, "x5t#S256", json_string(s256));
	assert_int_equal(jose_key_from_jwk(jwk, &k2), 0);
	assert_null(k2->cert_der);
	assert_int_equal(jose_keyset_add(&p->keys, k2), 0);
	jose_key_free(k);
	jose_key_free(k2);
	json_decref(jwk);
}

static void test_token_mtls_jwk_thumbprint_needs_the_same_public_key(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	X509 *c = self_signed(k_p2, "p2", 1);
	char s256[JOSE_X5T256_LEN + 1];
	json_t *p;

	thumbprint(c, s256);
	f->ctx.client_cert = c;
	/* p2: its own key with the certificate's thumbprint */
	register_jwk_thumbprint(&f->snap->partners[1], k_p2, s256);
	run(f, "grant_type=client_credentials&client_id=p2-client", &res);
	p = verify_issued(f, &res);
	assert_string_equal(cnf_of(p), s256);
	json_decref(p);
	token_result_free(&res);
	/* p1: the same thumbprint claimed for another key */
	register_jwk_thumbprint(&f->snap->partners[0], k_p1, s256);
	run(f, "grant_type=client_credentials&client_id=p1-client", &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_BAD_ASSERTION);
	X509_free(c);
}

static void test_token_mtls_jwt_bearer_client_is_bound_too(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	X509 *c = self_signed(k_p1, "p1", 1);
	char *a = user_assertion(f, "p1-client", "alice@example.test", k_p1, JOSE_ALG_RS256,
				 "p1key"),
	     *b = NULL;
	char want[JOSE_X5T256_LEN + 1];
	json_t *p;

	register_cert(&f->snap->partners[0], c);
	thumbprint(c, want);
	f->ctx.client_cert = c;
	f->ctx.user_ok = user_answer;
	f->ctx.user_arg = f;
	f->user_answer = 0;
	/* a certificate is an mTLS attempt: client_id is required */
	assert_true(asprintf(&b,
			     "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-"
			     "bearer&assertion=%s",
			     a) > 0);
	run(f, b, &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_NO_CLIENT_AUTH);
	free(b);
	expect_string(user_answer, uri, "sip:alice@example.test");
	assert_true(asprintf(&b,
			     "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-"
			     "bearer&assertion=%s&client_id=p1-client",
			     a) > 0);
	run(f, b, &res);
	p = verify_issued(f, &res);
	assert_string_equal(cs(p, "sub"), "sip:alice@example.test");
	assert_string_equal(cnf_of(p), want);
	json_decref(p);
	token_result_free(&res);
	free(a);
	free(b);
	X509_free(c);
}

/* ---- the replay cache itself ---- */

static void test_replay_cache_remembers_until_expiry(void **state)
{
	struct replay_cache *rc = replay_new(64);

	(void)state;
	assert_int_equal(replay_check_and_add(rc, "p", "j1", 1000, 900), REPLAY_OK);
	assert_int_equal(replay_check_and_add(rc, "p", "j1", 1000, 999), REPLAY_SEEN);
	assert_int_equal(replay_check_and_add(rc, "p", "j1", 1000, 1000), REPLAY_SEEN);
	assert_int_equal(replay_check_and_add(rc, "q", "j1", 1000, 1000), REPLAY_OK);
	/* after its expiry the jti may come again */
	assert_int_equal(replay_check_and_add(rc, "p", "j1", 2000, 1001), REPLAY_OK);
	assert_int_equal(replay_check_and_add(rc, "p", "j1", 2000, 1500), REPLAY_SEEN);
	assert_int_equal(replay_count(rc), 2);
	replay_free(rc);
}

static void test_replay_cache_refuses_rather_than_forgets(void **state)
{
	struct replay_cache *rc = replay_new(32);
	char jti[32];
	int i, ok = 0, full = 0;

	(void)state;
	for (i = 0; i < 200; i++) {
		int r;

		snprintf(jti, sizeof(jti), "j%d", i);
		r = replay_check_and_add(rc, "p", jti, 1000, 10);
		if (r == REPLAY_OK)
			ok++;
		else if (r == REPLAY_FULL)
			full++;
		else
			fail_msg("unexpected %d", r);
	}
	assert_true(ok <= 32);
	assert_true(full >= 200 - 32);
	/* every accepted jti is still remembered */
	for (i = 0; i < 200; i++) {
		snprintf(jti, sizeof(jti), "j%d", i);
		if (replay_check_and_add(rc, "p", jti, 1000, 11) == REPLAY_SEEN)
			ok--;
	}
	assert_int_equal(ok, 0);
	/* expired entries make room */
	assert_int_equal(replay_check_and_add(rc, "p", "j0", 3000, 1001), REPLAY_OK);
	for (i = 0; i < 200; i++) {
		snprintf(jti, sizeof(jti), "new%d", i);
		if (replay_check_and_add(rc, "p", jti, 3000, 1001) == REPLAY_OK)
			ok++;
	}
	assert_true(ok >= 16);
	replay_free(rc);
}

struct race {
	struct replay_cache *rc;
	int ok;
};

static void *race_thread(void *arg)
{
	struct race *r = arg;
	char jti[32];

	for (int i = 0; i < 2000; i++) {
		snprintf(jti, sizeof(jti), "race-%d", i);
		if (replay_check_and_add(r->rc, "p", jti, 1000, 10) == REPLAY_OK)
			r->ok++;
	}
	return NULL;
}

/* Four threads offer the same 2000 jtis: each is accepted exactly once. */
static void test_replay_cache_accepts_each_jti_once_across_threads(void **state)
{
	struct replay_cache *rc = replay_new(1 << 16);
	struct race r[4];
	pthread_t th[4];
	int i, total = 0;

	(void)state;
	for (i = 0; i < 4; i++) {
		r[i].rc = rc;
		r[i].ok = 0;
		assert_int_equal(pthread_create(&th[i], NULL, race_thread, &r[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		total += r[i].ok;
	}
	assert_int_equal(total, 2000);
	assert_int_equal(replay_count(rc), 2000);
	replay_free(rc);
}

static void test_replay_cache_rejects_bad_jti(void **state)
{
	struct replay_cache *rc = replay_new(8);
	char big[REPLAY_JTI_MAX + 2];

	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(replay_check_and_add(rc, "p", "", 100, 1), REPLAY_INVALID);
	assert_int_equal(replay_check_and_add(rc, "p", big, 100, 1), REPLAY_INVALID);
	assert_int_equal(replay_check_and_add(rc, "p", NULL, 100, 1), REPLAY_INVALID);
	replay_free(rc);
}

static void test_token_route_is_post_only(void **state)
{
	unsigned allowed = 0;
	void *arg = NULL;

	(void)state;
	http_routes_clear();
	assert_int_equal(oauth_token_routes(), 0);
	assert_non_null(http_route_lookup(TOKEN_PATH, HTTP_POST, &allowed, &arg));
	assert_null(http_route_lookup(TOKEN_PATH, HTTP_GET, &allowed, &arg));
	assert_int_equal(allowed, HTTP_POST);
	http_routes_clear();
	oauth_token_shutdown();
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_token_form_rejects_duplicate_parameters),
	    T(test_token_form_accepts_one_resource_only),
	    T(test_token_form_rejects_bad_escapes_nul_and_controls),
	    T(test_token_form_bounds_parameter_count_and_size),
	    T(test_token_form_decodes_and_ignores_unknown_and_empty),
	    T(test_token_rejects_missing_and_unsupported_grant_type),
	    T(test_token_requires_client_authentication),
	    T(test_token_answers_authorization_header_with_www_authenticate),
	    T(test_token_client_credentials_issues_rfc9068_token),
	    T(test_token_lifetime_is_bounded_by_server_maximum),
	    T(test_token_accepts_es256_assertion_and_client_id),
	    T(test_token_rejects_replayed_jti),
	    T(test_token_replay_is_per_partner),
	    T(test_token_pool_refuses_an_assertion_spent_at_another_server),
	    T(test_token_refuses_when_replay_cache_full),
	    T(test_token_rejects_assertion_signed_by_another_key),
	    T(test_token_rejects_alg_none),
	    T(test_token_rejects_hs256_with_public_key_as_secret),
	    T(test_token_rejects_absent_or_unknown_key_id_and_tampered_payload),
	    T(test_token_rejects_expired_assertion),
	    T(test_token_rejects_nbf_and_iat_beyond_skew),
	    T(test_token_rejects_lifetime_above_maximum),
	    T(test_token_rejects_aud_of_another_server),
	    T(test_token_rejects_unknown_or_disabled_issuer),
	    T(test_token_finds_partner_by_principal_at_realm),
	    T(test_token_rejects_oversized_assertion),
	    T(test_token_rejects_bad_base64url),
	    T(test_token_rejects_duplicate_json_claims),
	    T(test_token_rejects_sub_client_id_jti_exp_mismatches),
	    T(test_token_resource_must_be_registered_or_ours),
	    T(test_token_scope_must_be_registered),
	    T(test_token_user_trust_cannot_use_client_credentials),
	    T(test_token_jwt_bearer_full_trust_acts_for_user),
	    T(test_token_jwt_bearer_refused_without_full_trust),
	    T(test_token_jwt_bearer_rejects_unknown_user_and_foreign_assertion),
	    T(test_token_exchange_full_trust_issues_access_token),
	    T(test_token_exchange_checks_parameters_and_trust),
	    T(test_token_cert_thumbprint_is_b64url_sha256_of_der),
	    T(test_token_mtls_registered_self_signed_cert_gets_bound_token),
	    T(test_token_mtls_refuses_cert_not_registered_for_client),
	    T(test_token_mtls_needs_client_id_of_an_enabled_partner),
	    T(test_token_mtls_with_assertion_or_authorization_is_invalid_request),
	    T(test_token_mtls_jwk_thumbprint_needs_the_same_public_key),
	    T(test_token_mtls_jwt_bearer_client_is_bound_too),
	    T(test_replay_cache_remembers_until_expiry),
	    T(test_replay_cache_refuses_rather_than_forgets),
	    T(test_replay_cache_rejects_bad_jti),
	    T(test_replay_cache_accepts_each_jti_once_across_threads),
	    cmocka_unit_test(test_token_route_is_post_only),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
