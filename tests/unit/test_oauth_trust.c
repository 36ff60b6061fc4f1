/*
 * Trust levels, RFC 8705 §2.1 and the pool (issue 3), with a hand-built
 * snapshot whose own key signs web tickets and access tokens here:
 *  - application trust acts for a user only with that user's consent
 *    (asked about the right partner and user; no way to ask is no; an
 *    outage is 503); full trust never needs it;
 *  - user trust: never client_credentials nor an assertion; token exchange
 *    of our web ticket or of our access token issued to it for the user;
 *    expired, tampered, foreign, app-only, another client's, or a disabled
 *    user's subject token is invalid_grant;
 *  - tls_client_auth: the registered subject must match before the chain
 *    is even checked; untrusted, expired, unavailable are refused; the token
 *    is bound to the certificate;
 *  - the validator with a store bound: a revocation written by another
 *    server is refused at once for an uncached token and after the version
 *    poll for a cached one; consent withdrawn refuses an application
 *    partner's user token at once; a store that cannot answer fails closed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <sqlite3.h>

#include "core/b64.h"
#include "http/webticket.h"
#include "oauth/jose.h"
#include "oauth/replay.h"
#include "oauth/sts.h"
#include "oauth/token.h"
#include "oauth/validate.h"
#include "pki/pki.h"
#include "store/store.h"
#include "store/store_oauth.h"

#define NOW	 1800000000
#define ISSUER	 "https://sts.example.test"
#define ENDPOINT ISSUER "/oauth/token"
#define ALICE	 "sip:alice@example.test"

static EVP_PKEY *k_sts, *k_app, *k_ut, *k_full;

enum { P_APP, P_UT, P_FULL, P_PKI, N_P };

struct fx {
	struct oauth_snapshot *snap;
	struct sts_issuer iss;
	struct replay_cache *replay;
	struct token_ctx ctx;
	int jti_n;
	int consent_answer, user_answer, verify_answer;
	int consent_calls, verify_calls;
	char dir[64], path[128];
	struct store *a, *b; /* two servers' connections to one database */
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

static int group_setup(void **state)
{
	k_sts = EVP_RSA_gen(2048);
	k_app = EVP_EC_gen("P-256");
	k_ut = EVP_EC_gen("P-256");
	k_full = EVP_EC_gen("P-256");
	return k_sts && k_app && k_ut && k_full ? 0 : -1;
}

static int group_teardown(void **state)
{
	EVP_PKEY_free(k_sts);
	EVP_PKEY_free(k_app);
	EVP_PKEY_free(k_ut);
	EVP_PKEY_free(k_full);
	return 0;
}

static void add_key(struct jose_keyset *ks, EVP_PKEY *pk, enum jose_alg alg, const char *kid)
{
	struct jose_key *k = NULL;

	assert_int_equal(jose_key_from_pkey(pk, NULL, 0, alg, kid, &k), 0);
	assert_int_equal(jose_keyset_add(ks, k), 0);
	jose_key_free(k);
}

static void partner(struct oauth_partner *p, const char *name, int trust, EVP_PKEY *pk)
{
	snprintf(p->rec.name, sizeof(p->rec.name), "%s", name);
	snprintf(p->rec.issuer, sizeof(p->rec.issuer), "%s-client", name);
	snprintf(p->rec.realm, sizeof(p->rec.realm), "example.test");
	snprintf(p->rec.resources, sizeof(p->rec.resources), "users.read");
	p->rec.enabled = true;
	p->rec.trust = trust;
	p->rec.lifetime = 600;
	p->rec.source = STORE_PARTNER_CERT;
	jose_keyset_init(&p->keys);
	if (pk)
		add_key(&p->keys, pk, JOSE_ALG_ES256, p->rec.name);
}

/* token_ctx callbacks */
static int consent_answer(void *arg, const struct oauth_partner *p, const char *uri)
{
	struct fx *f = arg;

	f->consent_calls++;
	check_expected(uri);
	assert_string_equal(p->rec.name, "app");
	return f->consent_answer;
}

static int user_answer(void *arg, const char *uri)
{
	struct fx *f = arg;

	(void)uri;
	return f->user_answer;
}

static int verify_answer(void *arg, X509 *leaf, STACK_OF(X509) * chain, int64_t now)
{
	struct fx *f = arg;

	f->verify_calls++;
	return f->verify_answer;
}

static int64_t store_partner(struct store *s, const char *name, int trust)
{
	struct store_partner p;

	memset(&p, 0, sizeof(p));
	snprintf(p.name, sizeof(p.name), "%s", name);
	snprintf(p.issuer, sizeof(p.issuer), "%s-client", name);
	snprintf(p.realm, sizeof(p.realm), "example.test");
	p.enabled = true;
	p.trust = trust;
	p.lifetime = 600;
	p.source = STORE_PARTNER_CERT;
	p.certs = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
	assert_int_equal(store_partner_add(s, &p), STORE_OK);
	return p.id;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct oauth_snapshot *s = calloc(1, sizeof(*s));
	struct store_user u;
	char err[200];

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
	jose_keyset_init(&s->own);
	add_key(&s->own, k_sts, JOSE_ALG_RS256, "sts");
	s->partners = calloc(N_P, sizeof(*s->partners));
	assert_non_null(s->partners);
	s->n_partners = N_P;
	partner(&s->partners[P_APP], "app", STORE_TRUST_APPLICATION, k_app);
	partner(&s->partners[P_UT], "ut", STORE_TRUST_USER, k_ut);
	partner(&s->partners[P_FULL], "full", STORE_TRUST_FULL, k_full);
	partner(&s->partners[P_PKI], "pki", STORE_TRUST_APPLICATION, NULL);
	snprintf(s->partners[P_PKI].tls_subject, sizeof(s->partners[P_PKI].tls_subject),
		 "CN=mail.partner.test,O=Example");
	f->snap = s;
	sts_issuer_from_snapshot(&f->iss, s);
	f->iss.sign = sts_test_sign;
	f->iss.sign_arg = NULL;
	f->replay = replay_new(1024);
	f->ctx.snap = s;
	f->ctx.iss = &f->iss;
	f->ctx.replay = f->replay;
	f->ctx.now = NOW;
	f->ctx.user_ok = user_answer;
	f->ctx.consent_ok = consent_answer;
	f->ctx.cert_verify = verify_answer;
	f->ctx.user_arg = f;

	/* the pool's database, with the snapshot's partners' ids */
	snprintf(f->dir, sizeof(f->dir), "/tmp/rtc-trust-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/store.db", f->dir);
	assert_int_equal(store_open(f->path, STORE_CREATE, 1000, &f->a, err, sizeof(err)), 0);
	assert_int_equal(store_open(f->path, 0, 1000, &f->b, err, sizeof(err)), 0);
	for (int i = 0; i < N_P; i++)
		s->partners[i].rec.id =
		    store_partner(f->a, s->partners[i].rec.name, s->partners[i].rec.trust);
	memset(&u, 0, sizeof(u));
	assert_int_equal(store_uri_normalise(ALICE, u.uri, u.user, u.domain), 0);
	u.enabled = true;
	assert_int_equal(store_user_add(f->a, &u), STORE_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
	char p[200];

	oauth_validate_bind_store(NULL);
	oauth_validate_shutdown();
	store_close(f->a);
	store_close(f->b);
	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s%s", f->path, sfx[i]);
		unlink(p);
	}
	rmdir(f->dir);
	for (size_t i = 0; i < f->snap->n_partners; i++)
		jose_keyset_clear(&f->snap->partners[i].keys);
	jose_keyset_clear(&f->snap->own);
	free(f->snap->partners);
	free(f->snap);
	replay_free(f->replay);
	free(f);
	return 0;
}

/* ---- minting ---- */

/* A JWT signed by partner pk (kid = its name): a client assertion (sub =
 * the client) or a user assertion (sub = user). */
static char *partner_jwt(struct fx *f, const char *name, EVP_PKEY *pk, const char *sub)
{
	struct jose_pkey_signer s = {pk, JOSE_ALG_ES256};
	char iss[64], jti[32];
	json_t *h = json_pack("{s:s, s:s}", "alg", "ES256", "kid", name), *c;
	char *out = NULL;

	snprintf(iss, sizeof(iss), "%s-client", name);
	snprintf(jti, sizeof(jti), "jti-%d", ++f->jti_n);
	c = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "iss", iss, "sub", sub ? sub : iss, "aud",
		      ENDPOINT, "iat", (json_int_t)NOW, "exp", (json_int_t)(NOW + 300), "jti", jti);
	assert_int_equal(jose_sign_compact(h, c, jose_pkey_signer, &s, &out, NULL), 0);
	json_decref(h);
	json_decref(c);
	return out;
}

/* noinline: inlined, gcc -O2 cannot rule out that webticket_mint() stored &t
 * in t and reports the caller's use of the ticket as a dangling pointer. */
__attribute__((noinline)) static char *web_ticket(struct fx *f, const char *uri, int64_t at)
{
	char *t = NULL;
	int exp;

	assert_int_equal(webticket_mint(&f->iss, uri, at, &t, NULL, &exp), 0);
	return t;
}

/* Change one character in the middle of a compact JWS's signature. */
static void flip_signature(char *jws)
{
	char *dot = strrchr(jws, '.');
	size_t i;

	assert_non_null(dot);
	i = strlen(dot + 1) / 2;
	dot[1 + i] = dot[1 + i] == 'A' ? 'B' : 'A';
}

/* Our access token for client, acting for user (NULL: app-only). */
static char *access_token(struct fx *f, const char *client, const char *user)
{
	struct sts_access a = {client, user, NULL, "users.read", 600, user ? client : NULL,
			       NULL,   NULL};
	char *t = NULL;
	int exp;

	assert_int_equal(sts_access_token(&f->iss, &a, NOW, &t, NULL, &exp), STS_OK);
	return t;
}

static void run(struct fx *f, const char *body, struct token_result *res)
{
	struct token_form form;

	memset(res, 0, sizeof(*res));
	if (token_form_parse(body, strlen(body), &form, res) < 0)
		return;
	token_process(&f->ctx, &form, res);
	token_form_free(&form);
}

static void expect_error(struct token_result *res, int status, const char *error, int reason)
{
	if (res->status != status || !res->error || strcmp(res->error, error) != 0 ||
	    (reason >= 0 && res->reason != (enum token_reason)reason))
		fail_msg("got %d %s (%s: %s), want %d %s", res->status,
			 res->error ? res->error : "-", token_reason_name(res->reason),
			 res->description, status, error);
	assert_null(res->access_token);
	token_result_free(res);
}

/* The token's sub and act.sub, "sub act" */
static void expect_token(struct token_result *res, const char *want)
{
	json_t *c;
	const char *dot1, *dot2;
	char payload[4096], got[600];
	size_t n = 0;

	if (res->status != 200)
		fail_msg("got %d %s: %s", res->status, res->error, res->description);
	dot1 = strchr(res->access_token, '.');
	dot2 = strchr(dot1 + 1, '.');
	assert_int_equal(b64_url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), (uint8_t *)payload,
					sizeof(payload), &n),
			 0);
	c = json_loadb(payload, n, 0, NULL);
	assert_non_null(c);
	snprintf(got, sizeof(got), "%s %s", json_string_value(json_object_get(c, "sub")),
		 json_object_get(c, "act")
		     ? json_string_value(json_object_get(json_object_get(c, "act"), "sub"))
		     : "-");
	assert_string_equal(got, want);
	json_decref(c);
	token_result_free(res);
}

static char *form(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *form(const char *fmt, ...)
{
	va_list ap;
	char *b = NULL;

	va_start(ap, fmt);
	assert_true(vasprintf(&b, fmt, ap) > 0);
	va_end(ap);
	return b;
}

#define JB    "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer"
#define TX    "grant_type=urn:ietf:params:oauth:grant-type:token-exchange"
#define CAT   "client_assertion_type=" TOKEN_CLIENT_ASSERTION_TYPE
#define AT_T  "subject_token_type=" TOKEN_TYPE_ACCESS_TOKEN
#define JWT_T "subject_token_type=" TOKEN_TYPE_JWT

/* a jwt-bearer request of partner name for user */
static void jwt_bearer(struct fx *f, const char *name, EVP_PKEY *pk, const char *user,
		       struct token_result *res)
{
	char *a = partner_jwt(f, name, pk, user), *b = form(JB "&assertion=%s", a);

	run(f, b, res);
	free(a);
	free(b);
}

/* a token exchange by client name (authenticated by its assertion) */
static void exchange(struct fx *f, const char *name, EVP_PKEY *pk, const char *subject,
		     const char *type, struct token_result *res)
{
	char *ca = partner_jwt(f, name, pk, NULL);
	char *b = form(TX "&subject_token=%s&%s&" CAT "&client_assertion=%s", subject, type, ca);

	run(f, b, res);
	free(ca);
	free(b);
}

/* ---- application trust: consent ---- */

static void test_application_trust_acts_for_a_user_only_with_consent(void **state)
{
	struct fx *f = *state;
	struct token_result res;

	f->consent_answer = 1;
	expect_string(consent_answer, uri, ALICE);
	jwt_bearer(f, "app", k_app, ALICE, &res);
	expect_error(&res, 400, "invalid_grant", TOKEN_R_INVALID_GRANT);
	f->consent_answer = 0;
	expect_string(consent_answer, uri, ALICE);
	jwt_bearer(f, "app", k_app, ALICE, &res);
	expect_token(&res, ALICE " app-client");
	/* token exchange of a partner-signed subject token too */
	expect_string(consent_answer, uri, ALICE);
	{
		char *st = partner_jwt(f, "app", k_app, ALICE);

		exchange(f, "app", k_app, st, JWT_T, &res);
		free(st);
	}
	expect_token(&res, ALICE " app-client");
}

static void test_application_consent_missing_says_so_and_outage_is_503(void **state)
{
	struct fx *f = *state;
	struct token_result res;

	f->consent_answer = 1;
	expect_string(consent_answer, uri, ALICE);
	jwt_bearer(f, "app", k_app, ALICE, &res);
	assert_non_null(strstr(res.description, "consent is missing"));
	expect_error(&res, 400, "invalid_grant", -1);
	f->consent_answer = -1;
	expect_string(consent_answer, uri, ALICE);
	jwt_bearer(f, "app", k_app, ALICE, &res);
	expect_error(&res, 503, "temporarily_unavailable", TOKEN_R_SERVER_ERROR);
	/* no way to ask: nobody consented */
	f->ctx.consent_ok = NULL;
	jwt_bearer(f, "app", k_app, ALICE, &res);
	expect_error(&res, 400, "invalid_grant", TOKEN_R_INVALID_GRANT);
}

static void test_full_trust_needs_no_consent_and_app_only_needs_none(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	char *ca, *b;

	f->consent_answer = -1; /* would fail: must not be asked */
	jwt_bearer(f, "full", k_full, ALICE, &res);
	expect_token(&res, ALICE " full-client");
	ca = partner_jwt(f, "app", k_app, NULL);
	b = form("grant_type=client_credentials&" CAT "&client_assertion=%s", ca);
	run(f, b, &res);
	expect_token(&res, "app-client -");
	free(ca);
	free(b);
	assert_int_equal(f->consent_calls, 0);
}

static void test_application_exchanging_a_web_ticket_still_needs_consent(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	char *wt = web_ticket(f, ALICE, NOW);

	f->consent_answer = 1;
	expect_string(consent_answer, uri, ALICE);
	exchange(f, "app", k_app, wt, AT_T, &res);
	expect_error(&res, 400, "invalid_grant", TOKEN_R_INVALID_GRANT);
	f->consent_answer = 0;
	expect_string(consent_answer, uri, ALICE);
	exchange(f, "app", k_app, wt, AT_T, &res);
	expect_token(&res, ALICE " app-client");
	free(wt);
}

/* ---- user trust ---- */

static void test_user_trust_never_as_itself_nor_by_assertion(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	char *ca = partner_jwt(f, "ut", k_ut, NULL), *b, *st;

	b = form("grant_type=client_credentials&" CAT "&client_assertion=%s", ca);
	run(f, b, &res);
	expect_error(&res, 400, "unauthorized_client", TOKEN_R_UNAUTHORIZED_CLIENT);
	free(ca);
	free(b);
	jwt_bearer(f, "ut", k_ut, ALICE, &res);
	expect_error(&res, 400, "unauthorized_client", TOKEN_R_UNAUTHORIZED_CLIENT);
	/* its own signed subject token is an assertion too */
	st = partner_jwt(f, "ut", k_ut, ALICE);
	exchange(f, "ut", k_ut, st, JWT_T, &res);
	expect_error(&res, 400, "invalid_grant", TOKEN_R_INVALID_GRANT);
	free(st);
}

static void test_user_trust_exchanges_our_web_ticket_and_access_token(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	char *wt = web_ticket(f, ALICE, NOW), *at = access_token(f, "ut-client", ALICE);

	exchange(f, "ut", k_ut, wt, AT_T, &res);
	assert_string_equal(res.issued_token_type, TOKEN_TYPE_ACCESS_TOKEN);
	expect_token(&res, ALICE " ut-client");
	exchange(f, "ut", k_ut, wt, JWT_T, &res);
	expect_token(&res, ALICE " ut-client");
	/* a web ticket is not single-use: the user gave it to the partner */
	exchange(f, "ut", k_ut, at, AT_T, &res);
	expect_token(&res, ALICE " ut-client");
	assert_int_equal(f->consent_calls, 0);
	free(wt);
	free(at);
}

static void test_user_trust_refuses_every_bad_subject_token(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	char *t;

	/* expired: minted an hour ago, 15 minutes of life */
	t = web_ticket(f, ALICE, NOW - 3600);
	exchange(f, "ut", k_ut, t, AT_T, &res);
	expect_error(&res, 400, "invalid_grant", TOKEN_R_INVALID_GRANT);
	free(t);
	/* tampered: a character of the signature's middle */
	t = web_ticket(f, ALICE, NOW);
	flip_signature(t);
	exchange(f, "ut", k_ut, t, AT_T, &res);
	expect_error(&res, 400, "invalid_grant", TOKEN_R_INVALID_GRANT);
	free(t);
	/* foreign: another partner's signed token */
	t = partner_jwt(f, "full", k_full, ALICE);
	exchange(f, "ut", k_ut, t, JWT_T, &res);
	expect_error(&res, 400, "invalid_grant", TOKEN_R_INVALID_GRANT);
	free(t);
	/* ours, app-only (another partner's: names no user) */
	t = access_token(f, "full-client", NULL);
	exchange(f, "ut", k_ut, t, AT_T, &res);
	assert_non_null(strstr(res.description, "names no user"));
	expect_error(&res, 400, "invalid_grant", TOKEN_R_INVALID_GRANT);
	free(t);
	/* ours, app-only, issued to ut before it had user trust: no longer a
	 * valid token at all (user trust never acts as itself) */
	t = access_token(f, "ut-client", NULL);
	exchange(f, "ut", k_ut, t, AT_T, &res);
	assert_non_null(strstr(res.description, "delegation_not_allowed"));
	expect_error(&res, 400, "invalid_grant", TOKEN_R_INVALID_GRANT);
	free(t);
	/* ours, for alice, but issued to another client */
	t = access_token(f, "full-client", ALICE);
	exchange(f, "ut", k_ut, t, AT_T, &res);
	assert_non_null(strstr(res.description, "another client"));
	expect_error(&res, 400, "invalid_grant", TOKEN_R_INVALID_GRANT);
	free(t);
	/* garbage */
	exchange(f, "ut", k_ut, "not.a.token", AT_T, &res);
	expect_error(&res, 400, "invalid_grant", -1);
}

static void test_user_trust_subject_user_must_still_be_enabled(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	char *wt = web_ticket(f, ALICE, NOW);

	f->user_answer = 1;
	exchange(f, "ut", k_ut, wt, AT_T, &res);
	expect_error(&res, 400, "invalid_grant", TOKEN_R_INVALID_GRANT);
	f->user_answer = -1;
	exchange(f, "ut", k_ut, wt, AT_T, &res);
	expect_error(&res, 503, "temporarily_unavailable", TOKEN_R_SERVER_ERROR);
	free(wt);
}

/* ---- how a token was obtained (rtc_grant) ---- */

/* The string claim name of the issued token (NULL when absent); frees res. */
static char *issued_claim(struct token_result *res, const char *name)
{
	const char *dot1, *dot2, *v;
	char payload[4096], *out;
	size_t n = 0;
	json_t *c;

	if (res->status != 200)
		fail_msg("got %d %s: %s", res->status, res->error, res->description);
	dot1 = strchr(res->access_token, '.');
	dot2 = strchr(dot1 + 1, '.');
	assert_int_equal(b64_url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), (uint8_t *)payload,
					sizeof(payload), &n),
			 0);
	c = json_loadb(payload, n, 0, NULL);
	assert_non_null(c);
	v = json_string_value(json_object_get(c, name));
	out = v ? strdup(v) : NULL;
	json_decref(c);
	token_result_free(res);
	return out;
}

static void expect_grant(struct token_result *res, const char *want)
{
	char *got = issued_claim(res, STS_GRANT_CLAIM);

	if (want)
		assert_string_equal(got ? got : "(none)", want);
	else
		assert_null(got);
	free(got);
}

static void test_issued_user_token_records_how_it_was_obtained(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	char *wt = web_ticket(f, ALICE, NOW), *ca, *b;

	jwt_bearer(f, "full", k_full, ALICE, &res);
	expect_grant(&res, STS_BASIS_FULL);
	f->consent_answer = 0;
	expect_string(consent_answer, uri, ALICE);
	jwt_bearer(f, "app", k_app, ALICE, &res);
	expect_grant(&res, STS_BASIS_CONSENT);
	exchange(f, "ut", k_ut, wt, AT_T, &res);
	expect_grant(&res, STS_BASIS_USER_TOKEN);
	/* a full-trust partner exchanging the user's own ticket: user-token */
	exchange(f, "full", k_full, wt, AT_T, &res);
	expect_grant(&res, STS_BASIS_USER_TOKEN);
	/* app-only: nobody is acted for, nothing to record */
	ca = partner_jwt(f, "full", k_full, NULL);
	b = form("grant_type=client_credentials&" CAT "&client_assertion=%s", ca);
	run(f, b, &res);
	expect_grant(&res, NULL);
	free(ca);
	free(b);
	free(wt);
}

static void test_revoked_web_ticket_is_no_subject_token(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	struct oauth_principal p;
	char *wt = web_ticket(f, ALICE, NOW);
	sqlite3 *db;

	assert_int_equal(webticket_check(f->snap, wt, strlen(wt), NOW, &p), VR_OK);
	/* revoked at another server of the pool */
	oauth_validate_bind_store(f->b);
	assert_int_equal(oauth_revoke(&p, 300, NOW), 0);
	oauth_validate_shutdown();
	oauth_validate_bind_store(f->a);
	exchange(f, "ut", k_ut, wt, AT_T, &res);
	assert_non_null(strstr(res.description, "revoked"));
	expect_error(&res, 400, "invalid_grant", TOKEN_R_INVALID_GRANT);
	/* a full-trust partner cannot use it either */
	exchange(f, "full", k_full, wt, AT_T, &res);
	expect_error(&res, 400, "invalid_grant", -1);
	/* the list cannot be read: 503, never "not revoked" */
	free(wt);
	wt = web_ticket(f, ALICE, NOW);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "DROP TABLE oauth_revoked_version; DROP TABLE oauth_revoked;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	exchange(f, "ut", k_ut, wt, AT_T, &res);
	expect_error(&res, 503, "temporarily_unavailable", TOKEN_R_SERVER_ERROR);
	free(wt);
}

/* ---- RFC 8705 §2.1 ---- */

static X509 *client_cert(const char *cn)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();

	X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)"Example", -1, -1,
				   0);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, n);
	X509_NAME_free(n);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k_app);
	assert_true(X509_sign(x, k_app, EVP_sha256()) > 0);
	return x;
}

static void pki_request(struct fx *f, X509 *cert, struct token_result *res)
{
	f->ctx.client_cert = cert;
	run(f, "grant_type=client_credentials&client_id=pki-client", res);
	f->ctx.client_cert = NULL;
}

static void test_tls_client_auth_needs_the_subject_and_a_trusted_chain(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	X509 *good = client_cert("mail.partner.test"), *other = client_cert("evil.partner.test");
	char want[JOSE_X5T256_LEN + 1];

	f->verify_answer = PKI_VERIFY_OK;
	pki_request(f, good, &res);
	assert_int_equal(res.status, 200);
	assert_string_equal(res.client_auth, "tls_client_auth");
	/* bound to the certificate */
	assert_int_equal(token_cert_thumbprint(good, want), 0);
	{
		struct oauth_principal p;

		assert_int_equal(oauth_validate_token(f->snap, res.access_token,
						      strlen(res.access_token), NOW, &p),
				 VR_OK);
		assert_string_equal(p.cnf_x5t_s256, want);
	}
	token_result_free(&res);
	assert_int_equal(f->verify_calls, 1);
	/* another subject: refused before the chain is looked at */
	pki_request(f, other, &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_BAD_ASSERTION);
	assert_int_equal(f->verify_calls, 1);
	f->verify_answer = PKI_VERIFY_UNTRUSTED;
	pki_request(f, good, &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_BAD_ASSERTION);
	f->verify_answer = PKI_VERIFY_EXPIRED;
	pki_request(f, good, &res);
	expect_error(&res, 401, "invalid_client", TOKEN_R_EXPIRED);
	f->verify_answer = PKI_VERIFY_REVOKED;
	pki_request(f, good, &res);
	expect_error(&res, 401, "invalid_client", -1);
	f->verify_answer = PKI_VERIFY_UNAVAILABLE;
	pki_request(f, good, &res);
	expect_error(&res, 503, "temporarily_unavailable", TOKEN_R_SERVER_ERROR);
	/* a partner without PKI names: the self-signed rule only */
	f->verify_answer = PKI_VERIFY_OK;
	f->ctx.client_cert = good;
	run(f, "grant_type=client_credentials&client_id=app-client", &res);
	f->ctx.client_cert = NULL;
	expect_error(&res, 401, "invalid_client", -1);
	X509_free(good);
	X509_free(other);
}

/* ---- the pool: revocations and consent through the store ---- */

/* validate.c's revocation key of a token with a jti */
static void rev_key(const struct oauth_principal *p, uint8_t key[32])
{
	uint8_t buf[600];
	size_t n = 0, l;

	memcpy(buf, "jti", 4);
	n = 4;
	l = strlen(p->iss) + 1;
	memcpy(buf + n, p->iss, l);
	n += l;
	l = strlen(p->jti);
	memcpy(buf + n, p->jti, l);
	n += l;
	SHA256(buf, n, key);
}

static void test_pool_revocation_elsewhere_is_refused_here(void **state)
{
	struct fx *f = *state;
	struct oauth_principal p, q;
	char *t = access_token(f, "full-client", NULL), *u = access_token(f, "full-client", NULL);
	char *v = access_token(f, "full-client", NULL);
	uint8_t key[32];
	struct timespec ts = {1, 200 * 1000 * 1000};

	oauth_validate_bind_store(f->a);
	assert_int_equal(oauth_validate_token(f->snap, t, strlen(t), NOW, &p), VR_OK);
	assert_int_equal(oauth_validate_token(f->snap, u, strlen(u), NOW, &q), VR_OK);
	assert_false(oauth_validate_unavailable());
	/* another server (connection b) revokes t and v (never seen here) */
	rev_key(&p, key);
	assert_int_equal(store_oauth_revoke_add(f->b, key, p.exp + 300, NOW), STORE_OK);
	{
		/* v's key: the same issuer, its own jti (read from its payload) */
		struct oauth_principal pv = p;
		const char *d1 = strchr(v, '.'), *d2 = strchr(d1 + 1, '.');
		char payload[2048];
		size_t n = 0;
		json_t *c;

		assert_int_equal(b64_url_decode(d1 + 1, (size_t)(d2 - d1 - 1), (uint8_t *)payload,
						sizeof(payload), &n),
				 0);
		c = json_loadb(payload, n, 0, NULL);
		snprintf(pv.jti, sizeof(pv.jti), "%s",
			 json_string_value(json_object_get(c, "jti")));
		json_decref(c);
		rev_key(&pv, key);
		assert_int_equal(store_oauth_revoke_add(f->b, key, pv.exp + 300, NOW), STORE_OK);
	}
	/* an uncached token is looked up before it is accepted: refused now */
	assert_int_equal(oauth_validate_token(f->snap, v, strlen(v), NOW, &q), VR_REVOKED);
	/* a cached one once the version poll saw the change (at most a second) */
	nanosleep(&ts, NULL);
	assert_int_equal(oauth_validate_token(f->snap, t, strlen(t), NOW, &p), VR_REVOKED);
	assert_int_equal(oauth_validate_token(f->snap, u, strlen(u), NOW, &p), VR_OK);
	/* without the store bound, this process's list knows nothing of it */
	oauth_validate_bind_store(NULL);
	oauth_validate_flush();
	assert_int_equal(oauth_validate_token(f->snap, t, strlen(t), NOW, &p), VR_OK);
	free(t);
	free(u);
	free(v);
}

static void test_pool_revoke_here_writes_the_store_first(void **state)
{
	struct fx *f = *state;
	struct oauth_principal p;
	char *t = access_token(f, "full-client", NULL);
	uint8_t key[32];
	bool revoked = false;

	oauth_validate_bind_store(f->a);
	assert_int_equal(oauth_validate_token(f->snap, t, strlen(t), NOW, &p), VR_OK);
	assert_int_equal(oauth_revoke(&p, 300, NOW), 0);
	rev_key(&p, key);
	assert_int_equal(store_oauth_revoked(f->b, key, NOW, &revoked), STORE_OK);
	assert_true(revoked);
	free(t);
}

static void test_pool_store_failure_fails_closed(void **state)
{
	struct fx *f = *state;
	struct oauth_principal p;
	char *t = access_token(f, "full-client", NULL);
	sqlite3 *db;

	/* the revocation tables vanish under the server: it cannot know */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "DROP TABLE oauth_revoked_version; DROP TABLE "
				      "oauth_revoked;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	oauth_validate_bind_store(f->b);
	assert_int_equal(oauth_validate_token(f->snap, t, strlen(t), NOW, &p), VR_INTERNAL);
	assert_true(oauth_validate_unavailable());
	/* and a revocation cannot be recorded */
	memset(&p, 0, sizeof(p));
	snprintf(p.iss, sizeof(p.iss), ISSUER);
	snprintf(p.jti, sizeof(p.jti), "x");
	p.exp = NOW + 60;
	assert_int_equal(oauth_revoke(&p, 300, NOW), -1);
	free(t);
}

static void test_pool_consent_withdrawn_refuses_application_user_token(void **state)
{
	struct fx *f = *state;
	struct oauth_principal p;
	struct store_user u;
	char *t = access_token(f, "app-client", ALICE);

	/* without a store the validator cannot know of consent: refused */
	assert_int_equal(oauth_validate_token(f->snap, t, strlen(t), NOW, &p),
			 VR_DELEGATION_NOT_ALLOWED);
	oauth_validate_flush();
	oauth_validate_bind_store(f->a);
	assert_int_equal(oauth_validate_token(f->snap, t, strlen(t), NOW, &p),
			 VR_DELEGATION_NOT_ALLOWED);
	assert_int_equal(store_user_get(f->a, ALICE, &u), STORE_OK);
	assert_int_equal(
	    store_oauth_consent_grant(f->b, f->snap->partners[P_APP].rec.id, u.id, NOW, "user"),
	    STORE_OK);
	assert_int_equal(oauth_validate_token(f->snap, t, strlen(t), NOW, &p), VR_OK);
	assert_true(p.acts_for_user);
	/* withdrawn at another server: refused at once, cached or not */
	assert_int_equal(store_oauth_consent_revoke(f->b, f->snap->partners[P_APP].rec.id, u.id),
			 STORE_OK);
	assert_int_equal(oauth_validate_token(f->snap, t, strlen(t), NOW, &p),
			 VR_DELEGATION_NOT_ALLOWED);
	free(t);
}

static void test_pool_user_trust_token_is_valid(void **state)
{
	struct fx *f = *state;
	struct oauth_principal p;
	char *t = access_token(f, "ut-client", ALICE);

	assert_int_equal(oauth_validate_token(f->snap, t, strlen(t), NOW, &p), VR_OK);
	assert_string_equal(p.sub, ALICE);
	assert_string_equal(p.partner, "ut");
	free(t);
}

/* The token endpoint's jtis through the store: another server's in-process
 * cache knows nothing, the store does; a store that cannot record is 503. */
static void test_pool_jti_spent_at_one_server_is_a_replay_at_another(void **state)
{
	struct fx *f = *state;
	struct token_result res;
	struct replay_cache *other = replay_new(64);
	char *ca = partner_jwt(f, "full", k_full, NULL);
	char *b = form("grant_type=client_credentials&" CAT "&client_assertion=%s", ca);
	sqlite3 *db;

	f->ctx.store = f->a;
	run(f, b, &res);
	expect_token(&res, "full-client -");
	/* server B: its own empty cache, the shared store */
	f->ctx.replay = other;
	f->ctx.store = f->b;
	run(f, b, &res);
	assert_non_null(strstr(res.description, "used before"));
	expect_error(&res, 401, "invalid_client", TOKEN_R_REPLAY);
	/* a user assertion likewise, with invalid_grant */
	free(ca);
	ca = partner_jwt(f, "full", k_full, ALICE);
	free(b);
	b = form(JB "&assertion=%s", ca);
	f->ctx.replay = f->replay;
	f->ctx.store = f->a;
	run(f, b, &res);
	expect_token(&res, ALICE " full-client");
	f->ctx.replay = other;
	f->ctx.store = f->b;
	run(f, b, &res);
	expect_error(&res, 400, "invalid_grant", TOKEN_R_REPLAY);
	/* the table is gone: nothing can be recorded, nothing is issued */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DROP TABLE oauth_jti;", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	free(ca);
	free(b);
	ca = partner_jwt(f, "full", k_full, NULL);
	b = form("grant_type=client_credentials&" CAT "&client_assertion=%s", ca);
	run(f, b, &res);
	expect_error(&res, 503, "temporarily_unavailable", -1);
	f->ctx.store = NULL;
	f->ctx.replay = f->replay;
	replay_free(other);
	free(ca);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	    T(test_application_trust_acts_for_a_user_only_with_consent),
	    T(test_application_consent_missing_says_so_and_outage_is_503),
	    T(test_full_trust_needs_no_consent_and_app_only_needs_none),
	    T(test_application_exchanging_a_web_ticket_still_needs_consent),
	    T(test_user_trust_never_as_itself_nor_by_assertion),
	    T(test_user_trust_exchanges_our_web_ticket_and_access_token),
	    T(test_user_trust_refuses_every_bad_subject_token),
	    T(test_user_trust_subject_user_must_still_be_enabled),
	    T(test_issued_user_token_records_how_it_was_obtained),
	    T(test_revoked_web_ticket_is_no_subject_token),
	    T(test_tls_client_auth_needs_the_subject_and_a_trusted_chain),
	    T(test_pool_revocation_elsewhere_is_refused_here),
	    T(test_pool_revoke_here_writes_the_store_first),
	    T(test_pool_store_failure_fails_closed),
	    T(test_pool_consent_withdrawn_refuses_application_user_token),
	    T(test_pool_user_trust_token_is_valid),
	    T(test_pool_jti_spent_at_one_server_is_a_replay_at_another),
#undef T
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
