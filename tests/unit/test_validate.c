/*
 * Bearer token validation (oauth/validate.h) with a hand-built OAuth
 * snapshot and tokens minted here: our access tokens (current and previous
 * key), partners' own tokens, the Microsoft outer/actor form; every bad
 * input of issue 3 that concerns validation gets its reason; the cache
 * never outlives a token nor the snapshot it was validated with; revoked
 * tokens stay refused; the RFC 6750 challenges. Also the introspection form
 * and answers (oauth/introspect.h) and the path of the users API.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "core/b64.h"
#include "core/stats.h"
#include "oauth/api.h"
#include "oauth/introspect.h"
#include "oauth/token.h"
#include "oauth/jose.h"
#include "oauth/validate.h"
#include "sip/location.h"

#define NOW	1800000000
#define ISSUER	"https://sts.example.test"
#define REALM	"example.test"
#define HOST	"sts.example.test"
#define PRINC	OAUTH_PRINCIPAL_LYNC
#define MS_AUD	PRINC "/" HOST "@" REALM
#define P1_MSID "p1-client@" REALM

static EVP_PKEY *k_own, *k_prev, *k_p1, *k_p2;

struct fx {
	struct oauth_snapshot *snap;
	int jti_n;
};

static EVP_PKEY *gen(int type)
{
	EVP_PKEY *k = type == EVP_PKEY_RSA ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");

	assert_non_null(k);
	return k;
}

static int group_setup(void **state)
{
	(void)state;
	k_own = gen(EVP_PKEY_RSA);
	k_prev = gen(EVP_PKEY_EC);
	k_p1 = gen(EVP_PKEY_RSA);
	k_p2 = gen(EVP_PKEY_EC);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(k_own);
	EVP_PKEY_free(k_prev);
	EVP_PKEY_free(k_p1);
	EVP_PKEY_free(k_p2);
	return 0;
}

static void add_key(struct jose_keyset *ks, EVP_PKEY *pkey, const char *kid)
{
	struct jose_key *k = NULL;

	assert_int_equal(jose_key_from_pkey(pkey, NULL, 0, JOSE_ALG_UNKNOWN, kid, &k), 0);
	assert_int_equal(jose_keyset_add(ks, k), 0);
	jose_key_free(k);
}

static void add_partner(struct oauth_snapshot *s, const char *name, const char *issuer, int trust,
			const char *resources, EVP_PKEY *pkey, const char *kid)
{
	struct oauth_partner *p = &s->partners[s->n_partners++];

	snprintf(p->rec.name, sizeof(p->rec.name), "%s", name);
	snprintf(p->rec.issuer, sizeof(p->rec.issuer), "%s", issuer);
	snprintf(p->rec.resources, sizeof(p->rec.resources), "%s", resources);
	p->rec.enabled = true;
	p->rec.trust = trust;
	jose_keyset_init(&p->keys);
	add_key(&p->keys, pkey, kid);
}

/* A snapshot as oauth.c builds one: new key objects every time. with_prev:
 * the previous key is still published; with_p1: p1 is enabled. */
static struct oauth_snapshot *snapshot(bool with_prev, bool with_p1)
{
	struct oauth_snapshot *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	snprintf(s->issuer, sizeof(s->issuer), ISSUER);
	snprintf(s->token_endpoint, sizeof(s->token_endpoint), ISSUER "/oauth/token");
	snprintf(s->realm, sizeof(s->realm), REALM);
	snprintf(s->principal_id, sizeof(s->principal_id), PRINC);
	snprintf(s->host, sizeof(s->host), HOST);
	s->default_lifetime = 3600;
	s->max_lifetime = 86400;
	s->clock_skew = 300;
	s->max_token_size = 16384;
	jose_keyset_init(&s->own);
	add_key(&s->own, k_own, "own1");
	if (with_prev)
		add_key(&s->own, k_prev, "own0");
	s->partners = calloc(3, sizeof(*s->partners));
	assert_non_null(s->partners);
	if (with_p1)
		add_partner(s, "p1", "p1-client", STORE_TRUST_FULL, "users.read,presence.read",
			    k_p1, "p1key");
	add_partner(s, "p2", "p2-client", STORE_TRUST_APPLICATION, "users.read", k_p2, "p2key");
	add_partner(s, "p3", "p3-client", STORE_TRUST_USER, "users.read", k_p2, "p3key");
	return s;
}

static void snapshot_free(struct oauth_snapshot *s)
{
	jose_keyset_clear(&s->own);
	for (size_t i = 0; i < s->n_partners; i++)
		jose_keyset_clear(&s->partners[i].keys);
	free(s->partners);
	free(s);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->snap = snapshot(true, true);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	snapshot_free(f->snap);
	oauth_validate_shutdown(); /* empties the cache and the revocation list */
	free(f);
	return 0;
}

/* ---- minting ---- */

static char *b64u(const void *p, size_t n)
{
	char *out = malloc(b64_url_len(n) + 1);

	assert_non_null(out);
	assert_true(b64_url_encode(p, n, out, b64_url_len(n) + 1) >= 0);
	return out;
}

/* header.payload.sig from raw JSON texts, signed with pkey (NULL: empty sig) */
static char *compose(const char *hdr, const char *payload, EVP_PKEY *pkey, enum jose_alg alg)
{
	char *h = b64u(hdr, strlen(hdr)), *p = b64u(payload, strlen(payload)), *s, *out;
	uint8_t sig[JOSE_SIG_MAX];
	size_t siglen = sizeof(sig);
	char *in = NULL;

	assert_true(asprintf(&in, "%s.%s", h, p) > 0);
	if (pkey) {
		assert_int_equal(
		    jose_sign_with_pkey(pkey, alg, (const uint8_t *)in, strlen(in), sig, &siglen),
		    0);
		s = b64u(sig, siglen);
	} else {
		s = strdup("");
	}
	assert_true(asprintf(&out, "%s.%s", in, s) > 0);
	free(h);
	free(p);
	free(s);
	free(in);
	return out;
}

/* sign claims c (consumed) with header {typ, alg, kid} */
static char *sign(json_t *c, const char *typ, EVP_PKEY *pkey, enum jose_alg alg, const char *kid)
{
	struct jose_pkey_signer s = {pkey, alg};
	json_t *h = json_pack("{s:s, s:s}", "typ", typ, "alg", jose_alg_name(alg));
	char *out = NULL;

	if (kid)
		json_object_set_new(h, "kid", json_string(kid));
	assert_int_equal(jose_sign_compact(h, c, jose_pkey_signer, &s, &out, NULL), 0);
	json_decref(h);
	json_decref(c);
	return out;
}

/* Claims of one of our access tokens for p1, valid at NOW. */
static json_t *own_claims(struct fx *f)
{
	char jti[32];

	snprintf(jti, sizeof(jti), "jti-%d", ++f->jti_n);
	return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s}", "iss", ISSUER, "sub",
			 "p1-client", "aud", ISSUER, "client_id", "p1-client", "iat",
			 (json_int_t)NOW, "nbf", (json_int_t)NOW, "exp", (json_int_t)(NOW + 600),
			 "jti", jti, "scope", "users.read");
}

static char *own_token(json_t *c)
{
	return sign(c, "at+jwt", k_own, JOSE_ALG_RS256, "own1");
}

/* A p1 actor token (string claims, as Microsoft peers send them). */
static json_t *actor_claims(bool delegation)
{
	char nbf[16], exp[16];
	json_t *c;

	snprintf(nbf, sizeof(nbf), "%d", NOW);
	snprintf(exp, sizeof(exp), "%d", NOW + 600);
	c = json_pack("{s:s, s:s, s:s, s:s, s:s}", "aud", MS_AUD, "iss", P1_MSID, "nbf", nbf, "exp",
		      exp, "nameid", P1_MSID);
	if (delegation)
		json_object_set_new(c, "trustedfordelegation", json_string("true"));
	return c;
}

static json_t *outer_claims(const char *iss, const char *actor)
{
	char nbf[16], exp[16];

	snprintf(nbf, sizeof(nbf), "%d", NOW);
	snprintf(exp, sizeof(exp), "%d", NOW + 600);
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "aud", MS_AUD, "iss", iss,
			 "nbf", nbf, "exp", exp, "nameid", "alice@" REALM, "nii",
			 "urn:office:idp:activedirectory", "sip", "alice@" REALM, "actortoken",
			 actor);
}

static char *unsigned_token(json_t *c)
{
	char *out = NULL;

	assert_int_equal(jose_unsigned_compact(NULL, c, &out, NULL), 0);
	json_decref(c);
	return out;
}

static int check_at(struct fx *f, const char *tok, int64_t now, struct oauth_principal *p)
{
	return oauth_validate_token(f->snap, tok, strlen(tok), now, p);
}

/* validate tok (freed) at NOW and expect want */
static void expect(struct fx *f, char *tok, int want)
{
	struct oauth_principal p;
	int rc = check_at(f, tok, NOW, &p);

	if (rc != want)
		fail_msg("got %s, want %s", validate_result_name(rc), validate_result_name(want));
	if (rc != VR_OK) /* nothing of a refused token comes back */
		assert_string_equal(p.sub, "");
	free(tok);
}

/* ---- our own tokens ---- */

static void test_validate_accepts_own_access_token(void **state)
{
	struct fx *f = *state;
	struct oauth_principal p;
	char *t = own_token(own_claims(f));

	assert_int_equal(check_at(f, t, NOW, &p), VR_OK);
	assert_true(p.own);
	assert_false(p.acts_for_user);
	assert_string_equal(p.client_id, "p1-client");
	assert_string_equal(p.partner, "p1");
	assert_string_equal(p.sub, "p1-client");
	assert_string_equal(p.scope, "users.read");
	assert_string_equal(p.token_type, "at+jwt");
	assert_int_equal(p.exp, NOW + 600);
	assert_true(oauth_principal_has_scope(&p, "users.read"));
	assert_false(oauth_principal_has_scope(&p, "users"));
	assert_false(oauth_principal_has_scope(&p, "presence.read"));
	free(t);
}

static void test_validate_previous_key_valid_until_retired(void **state)
{
	struct fx *f = *state;
	struct oauth_principal p;
	char *t = sign(own_claims(f), "at+jwt", k_prev, JOSE_ALG_ES256, "own0");
	struct oauth_snapshot *retired = snapshot(false, true);

	assert_int_equal(check_at(f, t, NOW, &p), VR_OK);
	assert_int_equal(check_at(f, t, NOW, &p), VR_OK); /* from the cache */
	/* the reload after "rtcauthctl oauth key retire": the cached entry
	 * must not answer for the new snapshot */
	assert_int_equal(oauth_validate_token(retired, t, strlen(t), NOW, &p), VR_UNKNOWN_KID);
	snapshot_free(retired);
	free(t);
}

static void test_validate_own_token_of_disabled_partner_refused(void **state)
{
	struct fx *f = *state;
	struct oauth_principal p;
	char *t = own_token(own_claims(f));
	struct oauth_snapshot *disabled = snapshot(true, false);

	assert_int_equal(check_at(f, t, NOW, &p), VR_OK);
	assert_int_equal(oauth_validate_token(disabled, t, strlen(t), NOW, &p),
			 VR_PARTNER_DISABLED);
	snapshot_free(disabled);
	free(t);
}

static void test_validate_own_token_needs_at_jwt_type_and_client_id(void **state)
{
	struct fx *f = *state;
	json_t *c = own_claims(f);

	expect(f, sign(own_claims(f), "JWT", k_own, JOSE_ALG_RS256, "own1"), VR_BAD_HEADER);
	json_object_del(c, "client_id");
	expect(f, own_token(c), VR_CLAIM_MISSING);
}

static void test_validate_scope_narrowed_to_registration(void **state)
{
	struct fx *f = *state;
	struct oauth_principal p;
	json_t *c = own_claims(f);
	char *t;

	json_object_set_new(c, "scope", json_string("users.read admin.write presence.read"));
	t = own_token(c);
	assert_int_equal(check_at(f, t, NOW, &p), VR_OK);
	assert_string_equal(p.scope, "users.read presence.read");
	free(t);
}

/* ---- the bad inputs of issue 3 ---- */

static void test_validate_rejects_bare_alg_none(void **state)
{
	struct fx *f = *state;
	json_t *c = own_claims(f);
	char *payload = json_dumps(c, JSON_COMPACT);

	/* CVE-2023-29357: a bare unsigned token is never a credential */
	expect(f, unsigned_token(c), VR_ALG_NONE);
	expect(f, compose("{\"alg\":\"none\",\"kid\":\"own1\"}", payload, NULL, 0), VR_ALG_NONE);
	expect(f, unsigned_token(actor_claims(true)), VR_ALG_NONE);
	free(payload);
}

static void test_validate_rejects_hs256_with_public_key_as_secret(void **state)
{
	struct fx *f = *state;
	json_t *c = own_claims(f);
	char *p = json_dumps(c, JSON_COMPACT), *h, *pl, *in, *tok, *s;
	BIO *bio = BIO_new(BIO_s_mem());
	unsigned char mac[32];
	unsigned int maclen = 0;
	const char *hdr = "{\"typ\":\"at+jwt\",\"alg\":\"HS256\",\"kid\":\"own1\"}";
	char *pem;
	long pemlen;

	json_decref(c);
	assert_int_equal(PEM_write_bio_PUBKEY(bio, k_own), 1);
	pemlen = BIO_get_mem_data(bio, &pem);
	h = b64u(hdr, strlen(hdr));
	pl = b64u(p, strlen(p));
	assert_true(asprintf(&in, "%s.%s", h, pl) > 0);
	assert_non_null(
	    HMAC(EVP_sha256(), pem, (int)pemlen, (unsigned char *)in, strlen(in), mac, &maclen));
	s = b64u(mac, maclen);
	assert_true(asprintf(&tok, "%s.%s", in, s) > 0);
	expect(f, tok, VR_ALG_NOT_ALLOWED);
	BIO_free(bio);
	free(h);
	free(pl);
	free(in);
	free(s);
	free(p);
}

static void test_validate_rejects_tampered_payload(void **state)
{
	struct fx *f = *state;
	char *a = own_token(own_claims(f)), *tampered = NULL;
	json_t *c = own_claims(f);
	char *pl;

	json_object_set_new(c, "scope", json_string("users.read presence.read"));
	pl = json_dumps(c, JSON_COMPACT);
	{
		char *p64 = b64u(pl, strlen(pl)), *d1 = strchr(a, '.'), *d2 = strchr(d1 + 1, '.');

		assert_true(asprintf(&tampered, "%.*s.%s%s", (int)(d1 - a), a, p64, d2) > 0);
		free(p64);
	}
	expect(f, tampered, VR_BAD_SIGNATURE);
	free(pl);
	json_decref(c);
	free(a);
}

static void test_validate_rejects_absent_or_unknown_kid(void **state)
{
	struct fx *f = *state;

	expect(f, sign(own_claims(f), "at+jwt", k_own, JOSE_ALG_RS256, NULL), VR_NO_KEY_ID);
	expect(f, sign(own_claims(f), "at+jwt", k_own, JOSE_ALG_RS256, "nosuchkid"),
	       VR_UNKNOWN_KID);
	/* a partner's key under our kid: the signature does not verify */
	expect(f, sign(own_claims(f), "at+jwt", k_p1, JOSE_ALG_RS256, "own1"), VR_BAD_SIGNATURE);
}

static void test_validate_rejects_expired_but_allows_skew(void **state)
{
	struct fx *f = *state;
	struct oauth_principal p;
	json_t *c = own_claims(f);
	char *t;

	json_object_set_new(c, "iat", json_integer(NOW - 1000));
	json_object_set_new(c, "nbf", json_integer(NOW - 1000));
	json_object_set_new(c, "exp", json_integer(NOW - 301));
	expect(f, own_token(c), VR_EXPIRED);
	c = own_claims(f);
	json_object_set_new(c, "iat", json_integer(NOW - 1000));
	json_object_set_new(c, "nbf", json_integer(NOW - 1000));
	json_object_set_new(c, "exp", json_integer(NOW - 299));
	expect(f, own_token(c), VR_OK);
	/* exp is required */
	c = own_claims(f);
	json_object_del(c, "exp");
	expect(f, own_token(c), VR_CLAIM_MISSING);
	/* a cached token is not used after its exp */
	t = own_token(own_claims(f));
	assert_int_equal(check_at(f, t, NOW, &p), VR_OK);
	assert_int_equal(check_at(f, t, NOW + 600 + 301, &p), VR_EXPIRED);
	free(t);
}

static void test_validate_rejects_nbf_and_iat_beyond_skew(void **state)
{
	struct fx *f = *state;
	json_t *c = own_claims(f);

	json_object_set_new(c, "nbf", json_integer(NOW + 301));
	json_object_set_new(c, "exp", json_integer(NOW + 900));
	expect(f, own_token(c), VR_NOT_YET_VALID);
	c = own_claims(f);
	json_object_set_new(c, "iat", json_integer(NOW + 301));
	expect(f, own_token(c), VR_NOT_YET_VALID);
	c = own_claims(f);
	json_object_set_new(c, "nbf", json_integer(NOW + 299));
	expect(f, own_token(c), VR_OK);
}

static void test_validate_rejects_lifetime_above_maximum(void **state)
{
	struct fx *f = *state;
	json_t *c = own_claims(f);

	json_object_set_new(c, "exp", json_integer(NOW + 86401));
	expect(f, own_token(c), VR_LIFETIME_TOO_LONG);
	/* measured from nbf too: a token valid for two days, half gone */
	c = own_claims(f);
	json_object_set_new(c, "iat", json_integer(NOW - 86400));
	json_object_set_new(c, "nbf", json_integer(NOW - 86400));
	json_object_set_new(c, "exp", json_integer(NOW + 86400));
	expect(f, own_token(c), VR_LIFETIME_TOO_LONG);
}

static void test_validate_audience_three_parts_checked_part_by_part(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *aud;
		int want;
	} cases[] = {
	    {MS_AUD, VR_OK},
	    {PRINC "/STS.Example.TEST@" REALM, VR_OK}, /* host case-insensitive */
	    {PRINC "/other.example.test@" REALM, VR_BAD_AUDIENCE},
	    {PRINC "/" HOST "@EXAMPLE.TEST", VR_BAD_AUDIENCE}, /* realm exact */
	    {PRINC "/" HOST "@other.test", VR_BAD_AUDIENCE},
	    {"00000002-0000-0ff1-ce00-000000000000/" HOST "@" REALM, VR_BAD_AUDIENCE},
	    {"00000004-0000-0FF1-CE00-000000000000/" HOST "@" REALM, VR_BAD_AUDIENCE},
	    {PRINC "/@" REALM, VR_BAD_AUDIENCE},
	    {PRINC "@" REALM, VR_BAD_AUDIENCE},
	    {"https://other.example.test", VR_BAD_AUDIENCE},
	    {ISSUER "/", VR_BAD_AUDIENCE},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *c = own_claims(f);
		struct oauth_principal p;
		char *t;
		int rc;

		json_object_set_new(c, "aud", json_string(cases[i].aud));
		t = own_token(c);
		rc = check_at(f, t, NOW, &p);
		if (rc != cases[i].want)
			fail_msg("aud %s: got %s", cases[i].aud, validate_result_name(rc));
		free(t);
	}
	/* an array: one of them must be us */
	{
		json_t *c = own_claims(f);

		json_object_set_new(c, "aud", json_pack("[s, s]", "https://x.test", MS_AUD));
		expect(f, own_token(c), VR_OK);
		c = own_claims(f);
		json_object_set_new(c, "aud", json_pack("[s, i]", ISSUER, 3));
		expect(f, own_token(c), VR_CLAIM_TYPE);
	}
}

static void test_validate_rejects_unknown_issuer(void **state)
{
	struct fx *f = *state;
	json_t *c = own_claims(f);

	json_object_set_new(c, "iss", json_string("https://evil.example.test"));
	expect(f, own_token(c), VR_UNKNOWN_ISSUER);
	expect(f, sign(actor_claims(false), "JWT", k_p1, JOSE_ALG_RS256, "p1key"), VR_OK);
	c = actor_claims(false);
	json_object_set_new(c, "iss", json_string("p1-client@other.test"));
	expect(f, sign(c, "JWT", k_p1, JOSE_ALG_RS256, "p1key"), VR_UNKNOWN_ISSUER);
}

static void test_validate_rejects_oversized_bad_base64url_and_duplicates(void **state)
{
	struct fx *f = *state;
	char *big = malloc(20000), *t, *bad;
	char payload[512];

	memset(big, 'A', 19999);
	big[19999] = '\0';
	expect(f, big, VR_TOO_LARGE);
	t = own_token(own_claims(f));
	bad = strdup(t);
	bad[strchr(bad, '.') - bad + 3] = '*';
	expect(f, bad, VR_BAD_BASE64URL);
	bad = strdup(t);
	bad[strlen(bad) - 1] = '='; /* padding is not base64url */
	expect(f, bad, VR_BAD_BASE64URL);
	free(t);
	snprintf(payload, sizeof(payload),
		 "{\"iss\":\"%s\",\"sub\":\"p1-client\",\"aud\":\"%s\",\"client_id\":\"p1-client\","
		 "\"exp\":%d,\"exp\":%d}",
		 ISSUER, ISSUER, NOW + 60, NOW + 600);
	expect(f,
	       compose("{\"typ\":\"at+jwt\",\"alg\":\"RS256\",\"kid\":\"own1\"}", payload, k_own,
		       JOSE_ALG_RS256),
	       VR_DUPLICATE_CLAIM);
	expect(f, strdup("abc.def"), VR_MALFORMED);
}

/* ---- partners' tokens and the act-as-user form ---- */

static void test_validate_accepts_partner_actor_token_app_only(void **state)
{
	struct fx *f = *state;
	struct oauth_principal p;
	char *t = sign(actor_claims(false), "JWT", k_p1, JOSE_ALG_RS256, "p1key");

	assert_int_equal(check_at(f, t, NOW, &p), VR_OK);
	assert_false(p.own);
	assert_false(p.acts_for_user);
	assert_string_equal(p.client_id, "p1-client");
	assert_string_equal(p.sub, "p1-client");
	assert_string_equal(p.scope, "users.read presence.read");
	assert_string_equal(p.aud, MS_AUD);
	assert_string_equal(p.token_type, "actor");
	free(t);
}

static void test_validate_partner_cannot_speak_as_another(void **state)
{
	struct fx *f = *state;
	json_t *c = actor_claims(false);

	json_object_set_new(c, "nameid", json_string("p2-client@" REALM));
	expect(f, sign(c, "JWT", k_p1, JOSE_ALG_RS256, "p1key"), VR_ACTOR_MISMATCH);
	/* p1's key under p2's name: p2's key set does not have it */
	c = actor_claims(false);
	json_object_set_new(c, "iss", json_string("p2-client@" REALM));
	json_object_set_new(c, "nameid", json_string("p2-client@" REALM));
	expect(f, sign(c, "JWT", k_p1, JOSE_ALG_RS256, "p1key"), VR_UNKNOWN_KID);
	/* trust "user" never speaks as itself */
	c = actor_claims(false);
	json_object_set_new(c, "iss", json_string("p3-client"));
	json_object_set_new(c, "nameid", json_string("p3-client"));
	expect(f, sign(c, "JWT", k_p2, JOSE_ALG_ES256, "p3key"), VR_DELEGATION_NOT_ALLOWED);
}

static void test_validate_accepts_outer_token_around_verified_actor(void **state)
{
	struct fx *f = *state;
	struct oauth_principal p;
	char *actor = sign(actor_claims(true), "JWT", k_p1, JOSE_ALG_RS256, "p1key");
	char *t = unsigned_token(outer_claims(P1_MSID, actor));

	assert_int_equal(check_at(f, t, NOW, &p), VR_OK);
	assert_true(p.acts_for_user);
	assert_string_equal(p.sub, "sip:alice@" REALM);
	assert_string_equal(p.client_id, "p1-client");
	assert_string_equal(p.iss, P1_MSID);
	assert_string_equal(p.token_type, "outer");
	assert_true(oauth_principal_has_scope(&p, "users.read"));
	free(t);
	free(actor);
}

static void test_validate_outer_rules(void **state)
{
	struct fx *f = *state;
	char *actor = sign(actor_claims(true), "JWT", k_p1, JOSE_ALG_RS256, "p1key");
	char *nodeleg = sign(actor_claims(false), "JWT", k_p1, JOSE_ALG_RS256, "p1key");
	char *unsig = unsigned_token(actor_claims(true));
	json_t *c;

	/* outer iss must be the actor's nameid */
	expect(f, unsigned_token(outer_claims("p2-client@" REALM, actor)), VR_ACTOR_MISMATCH);
	/* the actor must say trustedfordelegation */
	expect(f, unsigned_token(outer_claims(P1_MSID, nodeleg)), VR_DELEGATION_NOT_ALLOWED);
	/* the actor must be signed: two unsigned halves are nothing */
	expect(f, unsigned_token(outer_claims(P1_MSID, unsig)), VR_ALG_NONE);
	/* the outer's own aud and times count */
	c = outer_claims(P1_MSID, actor);
	json_object_set_new(c, "aud", json_string(PRINC "/other.test@" REALM));
	expect(f, unsigned_token(c), VR_BAD_AUDIENCE);
	c = outer_claims(P1_MSID, actor);
	json_object_set_new(c, "exp", json_string("1799999000"));
	expect(f, unsigned_token(c), VR_EXPIRED);
	c = outer_claims(P1_MSID, actor);
	json_object_del(c, "exp");
	expect(f, unsigned_token(c), VR_CLAIM_MISSING);
	/* an actortoken that is not a string */
	c = outer_claims(P1_MSID, actor);
	json_object_set_new(c, "actortoken", json_integer(1));
	expect(f, unsigned_token(c), VR_CLAIM_TYPE);
	free(actor);
	free(nodeleg);
	free(unsig);
}

static void test_validate_outer_below_full_trust_needs_consent(void **state)
{
	struct fx *f = *state;
	json_t *ac = actor_claims(true);
	char *actor;

	/* p2 has trust "application": acting for a user needs the user's consent, which only a
	 * bound store knows (test_validate_trust.c) */
	json_object_set_new(ac, "iss", json_string("p2-client@" REALM));
	json_object_set_new(ac, "nameid", json_string("p2-client@" REALM));
	actor = sign(ac, "JWT", k_p2, JOSE_ALG_ES256, "p2key");
	expect(f, unsigned_token(outer_claims("p2-client@" REALM, actor)),
	       VR_DELEGATION_NOT_ALLOWED);
	free(actor);
	/* our own access token acting for a user, for a partner whose trust
	 * fell: refused */
	{
		json_t *c = own_claims(f);
		struct oauth_snapshot *s = f->snap;

		json_object_set_new(c, "sub", json_string("sip:alice@" REALM));
		json_object_set_new(c, "act", json_pack("{s:s}", "sub", "p1-client"));
		char *t = own_token(c);
		struct oauth_principal p;

		assert_int_equal(check_at(f, t, NOW, &p), VR_OK);
		assert_true(p.acts_for_user);
		assert_string_equal(p.sub, "sip:alice@" REALM);
		oauth_validate_flush();
		s->partners[0].rec.trust = STORE_TRUST_APPLICATION;
		assert_int_equal(check_at(f, t, NOW, &p), VR_DELEGATION_NOT_ALLOWED);
		free(t);
	}
}

/* ---- revocation, bearer parsing, challenges ---- */

static void test_validate_revoked_token_refused_even_from_cache(void **state)
{
	struct fx *f = *state;
	struct oauth_principal p, q;
	char *t = own_token(own_claims(f)), *other = own_token(own_claims(f));
	char *actor = sign(actor_claims(false), "JWT", k_p1, JOSE_ALG_RS256, "p1key");

	assert_int_equal(check_at(f, t, NOW, &p), VR_OK);
	assert_int_equal(oauth_revoke(&p, 300, NOW), 0);
	assert_int_equal(check_at(f, t, NOW, &q), VR_REVOKED);
	assert_int_equal(check_at(f, other, NOW, &q), VR_OK);
	/* a token without jti is revoked by its hash */
	assert_int_equal(check_at(f, actor, NOW, &p), VR_OK);
	assert_string_equal(p.jti, "");
	assert_int_equal(oauth_revoke(&p, 300, NOW), 0);
	assert_int_equal(check_at(f, actor, NOW, &q), VR_REVOKED);
	free(t);
	free(other);
	free(actor);
}

/* RFC 8705 §3: a certificate-bound token (cnf.x5t#S256) is good only with
 * the certificate it names; an unreadable cnf binds to nothing. */
static void test_validate_certificate_bound_token_needs_its_certificate(void **state)
{
	static const char x5t[] = "2Pbyg7kK2DdN8ULXrXQVrSt_YGjUSM1rPnrK3xGZO9I"; /* 43 chars */
	struct fx *f = *state;
	struct oauth_principal p;
	json_t *c = own_claims(f);
	char *t, *h = NULL;

	json_object_set_new(c, "cnf", json_pack("{s:s}", "x5t#S256", x5t));
	t = own_token(c);
	assert_true(asprintf(&h, "Bearer %s", t) > 0);
	assert_int_equal(oauth_validate_bearer_cert(f->snap, h, NOW, "users.read", x5t, &p), VR_OK);
	assert_string_equal(p.cnf_x5t_s256, x5t);
	assert_int_equal(oauth_validate_bearer(f->snap, h, NOW, "users.read", &p),
			 VR_CERT_MISMATCH);
	assert_int_equal(oauth_validate_bearer_cert(f->snap, h, NOW, "users.read",
						    "3Pbyg7kK2DdN8ULXrXQVrSt_YGjUSM1rPnrK3xGZO9I",
						    &p),
			 VR_CERT_MISMATCH);
	assert_string_equal(validate_result_name(VR_CERT_MISMATCH), "certificate_mismatch");
	free(h);
	free(t);

	/* cnf of the wrong shape: never matches, even an empty certificate id */
	c = own_claims(f);
	json_object_set_new(c, "cnf", json_string(x5t));
	t = own_token(c);
	h = NULL;
	assert_true(asprintf(&h, "Bearer %s", t) > 0);
	assert_int_equal(oauth_validate_bearer_cert(f->snap, h, NOW, NULL, x5t, &p),
			 VR_CERT_MISMATCH);
	free(h);

	/* introspection: a malformed cnf is never active */
	{
		json_t *o = introspect_answer(f->snap, t, NOW);
		assert_non_null(o);
		assert_false(json_is_true(json_object_get(o, "active")));
		json_decref(o);
	}
	free(t);
	/* and a good one is reported (RFC 8705 §3.2) */
	c = own_claims(f);
	json_object_set_new(c, "cnf", json_pack("{s:s}", "x5t#S256", x5t));
	t = own_token(c);
	{
		json_t *o = introspect_answer(f->snap, t, NOW);
		assert_non_null(o);
		assert_true(json_is_true(json_object_get(o, "active")));
		assert_string_equal(
		    json_string_value(json_object_get(json_object_get(o, "cnf"), "x5t#S256")), x5t);
		json_decref(o);
	}
	free(t);

	/* an unbound token needs no certificate and ignores one */
	t = own_token(own_claims(f));
	h = NULL;
	assert_true(asprintf(&h, "Bearer %s", t) > 0);
	assert_int_equal(oauth_validate_bearer_cert(f->snap, h, NOW, NULL, x5t, &p), VR_OK);
	assert_string_equal(p.cnf_x5t_s256, "");
	free(h);
	free(t);
}

static void test_validate_bearer_header_parsing_and_scope(void **state)
{
	struct fx *f = *state;
	struct oauth_principal p;
	char *t = own_token(own_claims(f)), *h = NULL;

	assert_int_equal(oauth_validate_bearer(f->snap, NULL, NOW, NULL, &p), VR_MISSING);
	assert_int_equal(oauth_validate_bearer(f->snap, "Bearer", NOW, NULL, &p), VR_MISSING);
	assert_int_equal(oauth_validate_bearer(f->snap, "Bearer   ", NOW, NULL, &p), VR_MISSING);
	assert_int_equal(oauth_validate_bearer(f->snap, "Basic dXNlcjpwYXNz", NOW, NULL, &p),
			 VR_MISSING);
	assert_int_equal(oauth_validate_bearer(f->snap, "Bearerx abc", NOW, NULL, &p), VR_MISSING);
	assert_int_equal(oauth_validate_bearer(f->snap, "Bearer a b", NOW, NULL, &p), VR_MALFORMED);
	assert_int_equal(oauth_validate_bearer(f->snap, "Bearer a\"b", NOW, NULL, &p),
			 VR_MALFORMED);
	assert_true(asprintf(&h, "bearer  %s ", t) > 0);
	assert_int_equal(oauth_validate_bearer(f->snap, h, NOW, "users.read", &p), VR_OK);
	assert_int_equal(oauth_validate_bearer(f->snap, h, NOW, "presence.read", &p),
			 VR_INSUFFICIENT_SCOPE);
	free(h);
	free(t);
}

static void test_validate_challenge_lists_trusted_issuers(void **state)
{
	struct fx *f = *state;
	char buf[1024], small[60];

	oauth_challenge(f->snap, buf, sizeof(buf));
	assert_string_equal(buf, "Bearer client_id=\"" PRINC "\", realm=\"" REALM
				 "\", trusted_issuers=\"" PRINC "@" REALM ",p1-client@" REALM
				 ",p2-client@" REALM ",p3-client@" REALM "\"");
	/* a partner id that would break the quoting is left out */
	snprintf(f->snap->partners[1].rec.issuer, sizeof(f->snap->partners[1].rec.issuer),
		 "bad\"id");
	oauth_challenge(f->snap, buf, sizeof(buf));
	assert_null(strstr(buf, "bad"));
	assert_non_null(strstr(buf, "p3-client@" REALM "\""));
	/* always terminated */
	oauth_challenge(f->snap, small, sizeof(small));
	assert_true(strlen(small) < sizeof(small));
}

static void test_validate_result_names_match_metric_labels(void **state)
{
	size_t n;
	const char *const *labels = stats_family_labels(SF_OAUTH_VALIDATIONS, &n);

	(void)state;
	assert_int_equal(n, VR_COUNT);
	for (int i = 0; i < VR_COUNT; i++) {
		char want[64];

		snprintf(want, sizeof(want), "result=\"%s\"", validate_result_name(i));
		assert_string_equal(labels[i], want);
	}
	assert_string_equal(validate_result_name(VR_ALG_NONE), jose_strerror(JOSE_EALG_NONE));
	assert_string_equal(validate_result_name(VR_UNKNOWN_KID), jose_strerror(JOSE_EUNKNOWNKID));
	assert_string_equal(validate_result_name(-5), "internal");
}

/* ---- introspection / revocation ---- */

static char *client_assertion(struct fx *f, const char *aud)
{
	char jti[32];

	snprintf(jti, sizeof(jti), "ca-%d", ++f->jti_n);
	return sign(json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "iss", "p1-client", "sub",
			      "p1-client", "aud", aud, "iat", (json_int_t)NOW, "exp",
			      (json_int_t)(NOW + 120), "jti", jti),
		    "JWT", k_p1, JOSE_ALG_RS256, "p1key");
}

/* Introspection and revocation read the token endpoint's form: token and
 * token_type_hint are known parameters, with its strictness. */
static void test_introspect_form_is_strict(void **state)
{
	struct token_form f;
	struct token_result res;
	const char *body = "token=a%2Bb&token_type_hint=access_token&x=1&&client_id=p1+c";

	(void)state;
	memset(&res, 0, sizeof(res));
	assert_int_equal(token_form_parse(body, strlen(body), &f, &res), 0);
	assert_string_equal(f.token, "a+b");
	assert_string_equal(f.token_type_hint, "access_token");
	assert_string_equal(f.client_id, "p1 c");
	assert_null(f.client_assertion);
	token_form_free(&f);
	assert_int_equal(token_form_parse("token=a&token=b", 15, &f, &res), -1);
	assert_int_equal(token_form_parse("token=a%0Ab", 11, &f, &res), -1);
	assert_int_equal(token_form_parse("token=a%4", 9, &f, &res), -1);
	assert_int_equal(token_form_parse("token=a%", 8, &f, &res), -1);
	assert_int_equal(token_form_parse("token=", 6, &f, &res), 0);
	assert_null(f.token);
	token_form_free(&f);
}

static int authenticate_body(struct fx *f, struct replay_cache *rc, const char *body,
			     const char *endpoint, const struct oauth_partner **client,
			     struct token_result *res)
{
	struct token_form form;
	struct token_ctx ctx;
	char aud[300], cnf[JOSE_X5T256_LEN + 1];
	int r;

	memset(res, 0, sizeof(*res));
	memset(&ctx, 0, sizeof(ctx));
	assert_int_equal(token_form_parse(body, strlen(body), &form, res), 0);
	snprintf(aud, sizeof(aud), "%s%s", f->snap->issuer, endpoint);
	ctx.snap = f->snap;
	ctx.replay = rc;
	ctx.now = NOW;
	ctx.extra_aud = aud;
	r = token_authenticate(&ctx, &form, client, cnf, res);
	token_form_free(&form);
	return r;
}

/* The token endpoint's client authentication, with the endpoint's own URL
 * accepted as aud, and one replay cache for every endpoint. */
static void test_introspect_client_auth_and_replay(void **state)
{
	struct fx *f = *state;
	struct replay_cache *rc = replay_new(64);
	const struct oauth_partner *client;
	struct token_result res;
	char *a = client_assertion(f, ISSUER "/oauth/introspect"), *body = NULL;

	assert_true(asprintf(&body,
			     "client_assertion_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Aclient-"
			     "assertion-type%%3Ajwt-bearer&client_assertion=%s&token=x",
			     a) > 0);
	assert_int_equal(authenticate_body(f, rc, body, INTROSPECT_PATH, &client, &res), 0);
	assert_string_equal(client->rec.name, "p1");
	/* the same assertion twice: a replay */
	assert_int_equal(authenticate_body(f, rc, body, INTROSPECT_PATH, &client, &res), -1);
	assert_null(client);
	assert_int_equal(res.status, 401);
	assert_int_equal(res.reason, TOKEN_R_REPLAY);
	/* an assertion for the introspection endpoint is not one for revocation */
	free(body);
	free(a);
	a = client_assertion(f, ISSUER "/oauth/introspect");
	assert_true(asprintf(&body,
			     "client_assertion_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Aclient-"
			     "assertion-type%%3Ajwt-bearer&client_assertion=%s",
			     a) > 0);
	assert_int_equal(authenticate_body(f, rc, body, REVOKE_PATH, &client, &res), -1);
	assert_int_equal(res.reason, TOKEN_R_BAD_CLAIMS);
	free(body);
	free(a);
	/* aud of another server; no assertion at all */
	a = client_assertion(f, "https://other.example.test/oauth/token");
	assert_true(asprintf(&body,
			     "client_assertion_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Aclient-"
			     "assertion-type%%3Ajwt-bearer&client_assertion=%s",
			     a) > 0);
	assert_int_equal(authenticate_body(f, rc, body, REVOKE_PATH, &client, &res), -1);
	assert_int_equal(authenticate_body(f, rc, "token=x", REVOKE_PATH, &client, &res), -1);
	assert_int_equal(res.status, 401);
	assert_string_equal(res.error, "invalid_client");
	free(body);
	free(a);
	replay_free(rc);
}

static void test_introspect_answers_and_revocation_by_owner_only(void **state)
{
	struct fx *f = *state;
	char *t = own_token(own_claims(f));
	json_t *o = introspect_answer(f->snap, t, NOW), *in;
	char *expired;

	assert_true(json_is_true(json_object_get(o, "active")));
	assert_string_equal(json_string_value(json_object_get(o, "client_id")), "p1-client");
	assert_string_equal(json_string_value(json_object_get(o, "scope")), "users.read");
	assert_string_equal(json_string_value(json_object_get(o, "iss")), ISSUER);
	assert_string_equal(json_string_value(json_object_get(o, "token_type")), "Bearer");
	assert_int_equal(json_integer_value(json_object_get(o, "exp")), NOW + 600);
	json_decref(o);
	/* inactive, with nothing else said */
	{
		json_t *c = own_claims(f);

		json_object_set_new(c, "exp", json_integer(NOW - 400));
		json_object_set_new(c, "iat", json_integer(NOW - 500));
		json_object_set_new(c, "nbf", json_integer(NOW - 500));
		expired = own_token(c);
	}
	in = introspect_answer(f->snap, expired, NOW);
	assert_int_equal(json_object_size(in), 1);
	assert_true(json_is_false(json_object_get(in, "active")));
	json_decref(in);
	in = introspect_answer(f->snap, NULL, NOW);
	assert_true(json_is_false(json_object_get(in, "active")));
	json_decref(in);
	/* another partner cannot revoke p1's token; p1 can */
	assert_int_equal(introspect_revoke(f->snap, &f->snap->partners[1], t, NOW), 0);
	assert_int_equal(introspect_revoke(f->snap, &f->snap->partners[0], expired, NOW), 0);
	assert_int_equal(introspect_revoke(f->snap, &f->snap->partners[0], t, NOW), 1);
	in = introspect_answer(f->snap, t, NOW);
	assert_true(json_is_false(json_object_get(in, "active")));
	json_decref(in);
	free(expired);
	free(t);
}

/* ---- the users API path ---- */

static void test_api_user_uri_decodes_and_normalises(void **state)
{
	char uri[STORE_URI_MAX];

	(void)state;
	assert_int_equal(api_user_uri("sip%3Aalice%40Example.TEST", uri), 0);
	assert_string_equal(uri, "sip:alice@example.test");
	assert_int_equal(api_user_uri("sip:alice@example.test", uri), 0);
	assert_string_equal(uri, "sip:alice@example.test");
	assert_int_equal(api_user_uri("", uri), -1);
	assert_int_equal(api_user_uri("sip:alice@example.test/x", uri), -1);
	assert_int_equal(api_user_uri("sip%3Aalice%00@example.test", uri), -1);
	assert_int_equal(api_user_uri("sip%3", uri), -1);
	assert_int_equal(api_user_uri("sip:al%20ice@example.test", uri), -1);
}

static int put_binding(void *ctx, struct location_aor *rec)
{
	return location_aor_put(rec, ctx);
}

static void test_api_user_json_exposes_no_dialog_or_source(void **state)
{
	struct store_user u;
	struct location_binding b;
	json_t *o, *r;
	char *text;

	(void)state;
	assert_int_equal(location_init(2), 0);
	memset(&u, 0, sizeof(u));
	snprintf(u.uri, sizeof(u.uri), "sip:alice@example.test");
	snprintf(u.display_name, sizeof(u.display_name), "Alice");
	u.enabled = true;
	memset(&b, 0, sizeof(b));
	snprintf(b.aor, sizeof(b.aor), "sip:alice@example.test");
	snprintf(b.key, sizeof(b.key), "sip:alice@192.0.2.7:5062");
	snprintf(b.contact, sizeof(b.contact), "<sip:alice@192.0.2.7:5062>;+sip.instance=\"x\"");
	snprintf(b.contact_uri, sizeof(b.contact_uri), "sip:alice@192.0.2.7:5062");
	snprintf(b.instance, sizeof(b.instance), "<urn:uuid:secret-device>");
	snprintf(b.call_id, sizeof(b.call_id), "secret-call-id");
	snprintf(b.user_agent, sizeof(b.user_agent), "ua/1");
	b.reg_id = -1;
	b.expires = NOW + 100;
	b.updated = NOW;
	b.flow.transport = TRANSPORT_TCP;
	b.flow.addr.in.sin_family = AF_INET;
	b.flow.addrlen = sizeof(struct sockaddr_in);
	assert_int_equal(location_update(str_cstr(b.aor), NOW, put_binding, &b), 0);
	o = api_user_json(&u, NOW);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "display_name")), "Alice");
	assert_true(json_is_true(json_object_get(o, "enabled")));
	assert_int_equal(json_array_size(json_object_get(o, "registrations")), 1);
	r = json_array_get(json_object_get(o, "registrations"), 0);
	assert_string_equal(json_string_value(json_object_get(r, "contact")),
			    "sip:alice@192.0.2.7:5062");
	assert_string_equal(json_string_value(json_object_get(r, "transport")), "tcp");
	assert_int_equal(json_integer_value(json_object_get(r, "expires_in")), 100);
	text = json_dumps(o, JSON_COMPACT);
	assert_null(strstr(text, "secret"));
	free(text);
	json_decref(o);
	/* expired bindings are gone */
	o = api_user_json(&u, NOW + 101);
	assert_int_equal(json_array_size(json_object_get(o, "registrations")), 0);
	json_decref(o);
	location_shutdown();
}

/* ---- threads ---- */

struct race {
	struct oauth_snapshot *with, *without;
	const char *tok;
	int bad;
};

static void *race_thread(void *arg)
{
	struct race *r = arg;
	struct oauth_principal p;

	for (int i = 0; i < 2000; i++) {
		if (oauth_validate_token(r->with, r->tok, strlen(r->tok), NOW, &p) != VR_OK ||
		    oauth_validate_token(r->without, r->tok, strlen(r->tok), NOW, &p) !=
			VR_UNKNOWN_KID)
			__atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
		if (i % 500 == 0)
			oauth_validate_flush();
	}
	return NULL;
}

static void test_validate_cache_never_answers_for_another_snapshot_across_threads(void **state)
{
	struct fx *f = *state;
	struct race r;
	pthread_t th[4];
	char *t = sign(own_claims(f), "at+jwt", k_prev, JOSE_ALG_ES256, "own0");

	r.with = f->snap;
	r.without = snapshot(false, true);
	r.tok = t;
	r.bad = 0;
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, race_thread, &r), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(r.bad, 0);
	snapshot_free(r.without);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	    T(test_validate_accepts_own_access_token),
	    T(test_validate_previous_key_valid_until_retired),
	    T(test_validate_own_token_of_disabled_partner_refused),
	    T(test_validate_own_token_needs_at_jwt_type_and_client_id),
	    T(test_validate_scope_narrowed_to_registration),
	    T(test_validate_rejects_bare_alg_none),
	    T(test_validate_rejects_hs256_with_public_key_as_secret),
	    T(test_validate_rejects_tampered_payload),
	    T(test_validate_rejects_absent_or_unknown_kid),
	    T(test_validate_rejects_expired_but_allows_skew),
	    T(test_validate_rejects_nbf_and_iat_beyond_skew),
	    T(test_validate_rejects_lifetime_above_maximum),
	    T(test_validate_audience_three_parts_checked_part_by_part),
	    T(test_validate_rejects_unknown_issuer),
	    T(test_validate_rejects_oversized_bad_base64url_and_duplicates),
	    T(test_validate_accepts_partner_actor_token_app_only),
	    T(test_validate_partner_cannot_speak_as_another),
	    T(test_validate_accepts_outer_token_around_verified_actor),
	    T(test_validate_outer_rules),
	    T(test_validate_outer_below_full_trust_needs_consent),
	    T(test_validate_revoked_token_refused_even_from_cache),
	    T(test_validate_bearer_header_parsing_and_scope),
	    T(test_validate_certificate_bound_token_needs_its_certificate),
	    T(test_validate_challenge_lists_trusted_issuers),
	    T(test_validate_result_names_match_metric_labels),
	    T(test_introspect_form_is_strict),
	    T(test_introspect_client_auth_and_replay),
	    T(test_introspect_answers_and_revocation_by_owner_only),
	    T(test_api_user_uri_decodes_and_normalises),
	    T(test_api_user_json_exposes_no_dialog_or_source),
	    T(test_validate_cache_never_answers_for_another_snapshot_across_threads),
#undef T
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
