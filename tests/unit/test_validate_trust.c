/*
 * The validator and the partners' trust levels now (issue 3,
 * PROTOCOLS.md §6), with a store bound as rtcauthd's workers bind theirs:
 *  - the Microsoft outer/actor form from an application-trust partner is
 *    accepted only while the user the outer token names has consented to
 *    that partner (asked on every use, so a withdrawal refuses at once);
 *    from a user-trust partner never; a store that cannot say fails closed;
 *  - our tokens acting for a user carry how they were obtained (rtc_grant)
 *    and are judged against the partner's trust level at each use: issued
 *    under full trust, refused after a downgrade to application trust
 *    without consent or to user trust; exchanged for a user's own token,
 *    still good under user trust; without the claim, judged as before;
 *  - a web ticket revoked here or at another server of the pool is
 *    refused, and its holder may revoke it.
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
#include <openssl/rsa.h>
#include <openssl/ec.h>
#include <sqlite3.h>

#include "http/webticket.h"
#include "oauth/introspect.h"
#include "oauth/jose.h"
#include "oauth/sts.h"
#include "oauth/validate.h"
#include "store/store.h"
#include "store/store_oauth.h"
#include "vault/vault.h"

#define NOW    1800000000
#define ISSUER "https://sts.example.test"
#define REALM  "example.test"
#define HOST   "sts.example.test"
#define PRINC  OAUTH_PRINCIPAL_LYNC
#define MS_AUD PRINC "/" HOST "@" REALM
#define ALICE  "sip:alice@" REALM
#define BOB    "sip:bob@" REALM

static EVP_PKEY *k_own, *k_app, *k_ut, *k_full;

enum { P_FULL, P_APP, P_UT, N_P };

struct fx {
	struct oauth_snapshot *snap;
	struct sts_issuer iss;
	char dir[64], path[128];
	struct store *a, *b; /* two servers' connections to one database */
	int64_t alice, bob;  /* user ids */
	int jti_n;
};

static int group_setup(void **state)
{
	(void)state;
	k_own = EVP_RSA_gen(2048);
	k_app = EVP_EC_gen("P-256");
	k_ut = EVP_EC_gen("P-256");
	k_full = EVP_EC_gen("P-256");
	return k_own && k_app && k_ut && k_full ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(k_own);
	EVP_PKEY_free(k_app);
	EVP_PKEY_free(k_ut);
	EVP_PKEY_free(k_full);
	return 0;
}

static int own_sign(void *arg, const json_t *header, const json_t *payload, char **out,
		    size_t *outlen)
{
	struct jose_pkey_signer s = {k_own, JOSE_ALG_RS256};
	const char *typ = json_string_value(json_object_get(header, "typ"));
	json_t *h =
	    json_pack("{s:s, s:s, s:s}", "typ", typ ? typ : "JWT", "alg", "RS256", "kid", "own1");
	int rc = jose_sign_compact(h, payload, jose_pkey_signer, &s, out, outlen);

	(void)arg;
	json_decref(h);
	return rc;
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
	snprintf(p->rec.realm, sizeof(p->rec.realm), REALM);
	snprintf(p->rec.resources, sizeof(p->rec.resources), "users.read");
	p->rec.enabled = true;
	p->rec.trust = trust;
	p->rec.lifetime = 600;
	p->rec.source = STORE_PARTNER_CERT;
	jose_keyset_init(&p->keys);
	add_key(&p->keys, pk, JOSE_ALG_ES256, name);
}

static int64_t store_partner(struct store *s, const struct oauth_partner *op)
{
	struct store_partner p;

	memset(&p, 0, sizeof(p));
	snprintf(p.name, sizeof(p.name), "%s", op->rec.name);
	snprintf(p.issuer, sizeof(p.issuer), "%s", op->rec.issuer);
	snprintf(p.realm, sizeof(p.realm), REALM);
	p.enabled = true;
	p.trust = op->rec.trust;
	p.lifetime = 600;
	p.source = STORE_PARTNER_CERT;
	p.certs = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
	assert_int_equal(store_partner_add(s, &p), STORE_OK);
	return p.id;
}

static int64_t store_user(struct store *s, const char *uri)
{
	struct store_user u;

	memset(&u, 0, sizeof(u));
	assert_int_equal(store_uri_normalise(uri, u.uri, u.user, u.domain), 0);
	u.enabled = true;
	assert_int_equal(store_user_add(s, &u), STORE_OK);
	assert_int_equal(store_user_get(s, uri, &u), STORE_OK);
	return u.id;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct oauth_snapshot *s = calloc(1, sizeof(*s));
	char err[200];

	assert_non_null(f);
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
	add_key(&s->own, k_own, JOSE_ALG_RS256, "own1");
	s->partners = calloc(N_P, sizeof(*s->partners));
	assert_non_null(s->partners);
	s->n_partners = N_P;
	partner(&s->partners[P_FULL], "full", STORE_TRUST_FULL, k_full);
	partner(&s->partners[P_APP], "app", STORE_TRUST_APPLICATION, k_app);
	partner(&s->partners[P_UT], "ut", STORE_TRUST_USER, k_ut);
	f->snap = s;
	sts_issuer_from_snapshot(&f->iss, s);
	f->iss.sign = own_sign;
	f->iss.sign_arg = NULL;

	snprintf(f->dir, sizeof(f->dir), "/tmp/rtc-vtrust-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/store.db", f->dir);
	assert_int_equal(store_open(f->path, STORE_CREATE, 1000, &f->a, err, sizeof(err)), 0);
	assert_int_equal(store_open(f->path, 0, 1000, &f->b, err, sizeof(err)), 0);
	for (int i = 0; i < N_P; i++)
		s->partners[i].rec.id = store_partner(f->a, &s->partners[i]);
	f->alice = store_user(f->a, ALICE);
	f->bob = store_user(f->a, BOB);
	oauth_validate_bind_store(f->a);
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
	free(f);
	return 0;
}

/* ---- minting ---- */

static EVP_PKEY *key_of(const char *name)
{
	return strcmp(name, "full") == 0 ? k_full : strcmp(name, "app") == 0 ? k_app : k_ut;
}

/* A partner's actor token (string claims, as Microsoft peers send them):
 * iss = nameid = <name>-client@realm; trustedfordelegation when asked. */
static char *actor_token(const char *name, bool delegation)
{
	struct jose_pkey_signer s = {key_of(name), JOSE_ALG_ES256};
	char id[64], nbf[16], exp[16];
	json_t *h = json_pack("{s:s, s:s, s:s}", "typ", "JWT", "alg", "ES256", "kid", name), *c;
	char *out = NULL;

	snprintf(id, sizeof(id), "%s-client@" REALM, name);
	snprintf(nbf, sizeof(nbf), "%d", NOW);
	snprintf(exp, sizeof(exp), "%d", NOW + 600);
	c = json_pack("{s:s, s:s, s:s, s:s, s:s}", "aud", MS_AUD, "iss", id, "nbf", nbf, "exp", exp,
		      "nameid", id);
	if (delegation)
		json_object_set_new(c, "trustedfordelegation", json_string("true"));
	assert_int_equal(jose_sign_compact(h, c, jose_pkey_signer, &s, &out, NULL), 0);
	json_decref(h);
	json_decref(c);
	return out;
}

/* The unsigned outer token of partner name acting for user (user@realm)
 * around a fresh actor token. */
static char *outer_token(const char *name, const char *user)
{
	char *actor = actor_token(name, true), *out = NULL;
	char iss[64], nbf[16], exp[16];
	json_t *c;

	snprintf(iss, sizeof(iss), "%s-client@" REALM, name);
	snprintf(nbf, sizeof(nbf), "%d", NOW);
	snprintf(exp, sizeof(exp), "%d", NOW + 600);
	c = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "aud", MS_AUD, "iss", iss, "nbf", nbf,
		      "exp", exp, "nameid", user, "nii", "urn:office:idp:activedirectory",
		      "actortoken", actor);
	/* a user written as an address gets the sip claim too; an opaque
	 * nameid (an AD object id) comes alone */
	if (strchr(user, '@'))
		json_object_set_new(c, "sip", json_string(user));
	assert_int_equal(jose_unsigned_compact(NULL, c, &out, NULL), 0);
	json_decref(c);
	free(actor);
	return out;
}

/* Our access token for partner name acting for ALICE, with rtc_grant basis
 * (NULL: none, as before the claim existed). */
static char *own_user_token(struct fx *f, const char *name, const char *basis)
{
	char client[64];
	struct sts_access a;
	char *t = NULL;
	int exp;

	snprintf(client, sizeof(client), "%s-client", name);
	memset(&a, 0, sizeof(a));
	a.client_id = client;
	a.subject = ALICE;
	a.actor = client;
	a.scope = "users.read";
	a.lifetime = 600;
	a.grant_basis = basis;
	assert_int_equal(sts_access_token(&f->iss, &a, NOW, &t, NULL, &exp), STS_OK);
	return t;
}

/* An own access token with a hand-made rtc_grant value (v is consumed). */
static char *own_token_with_grant(struct fx *f, json_t *v)
{
	json_t *h = json_pack("{s:s}", "typ", "at+jwt");
	json_t *c = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:{s:s}}", "iss", ISSUER,
			      "sub", ALICE, "aud", ISSUER, "client_id", "full-client", "iat",
			      (json_int_t)NOW, "exp", (json_int_t)(NOW + 600), "jti", "hand-1",
			      "scope", "users.read", "act", "sub", "full-client");
	char *out = NULL;

	json_object_set_new(c, STS_GRANT_CLAIM, v);
	assert_int_equal(own_sign(NULL, h, c, &out, NULL), 0);
	json_decref(h);
	json_decref(c);
	(void)f;
	return out;
}

static int check(struct fx *f, const char *tok, struct oauth_principal *p)
{
	return oauth_validate_token(f->snap, tok, strlen(tok), NOW, p);
}

static void expect(struct fx *f, const char *tok, int want)
{
	struct oauth_principal p;
	int rc = check(f, tok, &p);

	if (rc != want)
		fail_msg("got %s, want %s", validate_result_name(rc), validate_result_name(want));
	if (rc != VR_OK)
		assert_string_equal(p.sub, "");
}

static void set_trust(struct fx *f, int i, int trust)
{
	f->snap->partners[i].rec.trust = trust;
}

static void drop_table(struct fx *f, const char *sql)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* ---- the outer/actor form from an application-trust partner ---- */

static void test_outer_from_application_partner_needs_the_users_consent(void **state)
{
	struct fx *f = *state;
	struct oauth_principal p;
	int64_t app = f->snap->partners[P_APP].rec.id;
	char *t = outer_token("app", "alice@" REALM);

	assert_int_equal(check(f, t, &p), VR_DELEGATION_NOT_ALLOWED);
	/* the client is told why and what to do */
	assert_non_null(strstr(oauth_validate_detail(), "not consented"));
	assert_non_null(strstr(oauth_validate_detail(), "/oauth/consent"));
	/* another user's consent, or consent to another partner, is not hers */
	assert_int_equal(store_oauth_consent_grant(f->b, app, f->bob, NOW, "user:test"), STORE_OK);
	assert_int_equal(
	    store_oauth_consent_grant(f->b, f->snap->partners[P_UT].rec.id, f->alice, NOW, "x"),
	    STORE_OK);
	assert_int_equal(check(f, t, &p), VR_DELEGATION_NOT_ALLOWED);
	/* granted (at another server of the pool): accepted */
	assert_int_equal(store_oauth_consent_grant(f->b, app, f->alice, NOW, "user:test"),
			 STORE_OK);
	assert_int_equal(check(f, t, &p), VR_OK);
	assert_string_equal(p.token_type, "outer");
	assert_string_equal(p.partner, "app");
	assert_string_equal(p.sub, ALICE);
	assert_true(p.acts_for_user);
	assert_false(p.own);
	assert_string_equal(oauth_validate_detail(), "");
	/* cached now; withdrawn elsewhere: refused at the very next use */
	assert_int_equal(check(f, t, &p), VR_OK);
	assert_int_equal(store_oauth_consent_revoke(f->b, app, f->alice), STORE_OK);
	assert_int_equal(check(f, t, &p), VR_DELEGATION_NOT_ALLOWED);
	assert_string_equal(p.sub, "");
	free(t);
}

static void test_outer_from_application_partner_for_unknown_or_disabled_user_refused(void **state)
{
	struct fx *f = *state;
	char *t = outer_token("app", "carol@" REALM);

	expect(f, t, VR_DELEGATION_NOT_ALLOWED);
	free(t);
	/* consented, then disabled */
	assert_int_equal(store_oauth_consent_grant(f->a, f->snap->partners[P_APP].rec.id, f->bob,
						   NOW, "user:test"),
			 STORE_OK);
	t = outer_token("app", "bob@" REALM);
	expect(f, t, VR_OK);
	assert_int_equal(store_user_set_enabled(f->a, BOB, false), STORE_OK);
	/* user records come through the vault's cache: a change is seen once
	 * the cache is flushed (rtcauthctl asks the daemon to, after every
	 * user change) or at the next credentials-version poll (1 s) */
	vault_cache_flush();
	expect(f, t, VR_DELEGATION_NOT_ALLOWED);
	free(t);
}

static void test_outer_naming_no_sip_user_is_refused_not_unavailable(void **state)
{
	struct fx *f = *state;
	char *t = outer_token("app", "S-1-5-21-1004"), *full = outer_token("full", "S-1-5-21-1004");

	expect(f, t, VR_DELEGATION_NOT_ALLOWED);
	assert_false(oauth_validate_unavailable());
	/* full trust takes the partner's word for who the user is */
	expect(f, full, VR_OK);
	free(t);
	free(full);
}

static void test_outer_without_a_store_is_refused_for_application_partner(void **state)
{
	struct fx *f = *state;
	char *t = outer_token("app", "alice@" REALM);

	assert_int_equal(store_oauth_consent_grant(f->a, f->snap->partners[P_APP].rec.id, f->alice,
						   NOW, "user:test"),
			 STORE_OK);
	/* only the store knows consent: without one, no */
	oauth_validate_bind_store(NULL);
	expect(f, t, VR_DELEGATION_NOT_ALLOWED);
	oauth_validate_bind_store(f->a);
	expect(f, t, VR_OK);
	free(t);
}

static void test_outer_consent_store_failure_fails_closed(void **state)
{
	struct fx *f = *state;
	struct oauth_principal p;
	char *t = outer_token("app", "alice@" REALM), *full = outer_token("full", "alice@" REALM);

	drop_table(f, "DROP TABLE oauth_consent;");
	assert_int_equal(check(f, t, &p), VR_INTERNAL);
	assert_true(oauth_validate_unavailable());
	/* full trust needs no consent: the missing table does not matter */
	assert_int_equal(check(f, full, &p), VR_OK);
	assert_false(oauth_validate_unavailable());
	free(t);
	free(full);
}

static void test_outer_from_user_trust_partner_refused_even_with_consent(void **state)
{
	struct fx *f = *state;
	char *t = outer_token("ut", "alice@" REALM), *a = actor_token("ut", false);

	assert_int_equal(store_oauth_consent_grant(f->a, f->snap->partners[P_UT].rec.id, f->alice,
						   NOW, "user:test"),
			 STORE_OK);
	expect(f, t, VR_DELEGATION_NOT_ALLOWED);
	assert_non_null(strstr(oauth_validate_detail(), "trust level user"));
	/* nor as itself */
	expect(f, a, VR_DELEGATION_NOT_ALLOWED);
	free(t);
	free(a);
}

static void test_actor_alone_from_application_partner_needs_no_consent(void **state)
{
	struct fx *f = *state;
	struct oauth_principal p;
	char *a = actor_token("app", false);

	assert_int_equal(check(f, a, &p), VR_OK);
	assert_false(p.acts_for_user);
	assert_string_equal(p.sub, "app-client");
	free(a);
}

/* ---- our tokens: the trust they were issued under, re-checked ---- */

static void test_token_issued_under_full_trust_stops_after_downgrade(void **state)
{
	struct fx *f = *state;
	struct oauth_principal p;
	char *t = own_user_token(f, "full", STS_BASIS_FULL);

	assert_int_equal(check(f, t, &p), VR_OK);
	assert_string_equal(p.grant_basis, STS_BASIS_FULL);
	/* cached; the partner is downgraded to application trust: without
	 * consent refused at once */
	set_trust(f, P_FULL, STORE_TRUST_APPLICATION);
	assert_int_equal(check(f, t, &p), VR_DELEGATION_NOT_ALLOWED);
	/* with the user's consent, application trust allows it */
	assert_int_equal(store_oauth_consent_grant(f->a, f->snap->partners[P_FULL].rec.id, f->alice,
						   NOW, "user:test"),
			 STORE_OK);
	assert_int_equal(check(f, t, &p), VR_OK);
	/* user trust: never a token it did not get from a user's token */
	set_trust(f, P_FULL, STORE_TRUST_USER);
	assert_int_equal(check(f, t, &p), VR_DELEGATION_NOT_ALLOWED);
	assert_non_null(strstr(oauth_validate_detail(), "trust level user"));
	/* and back to full: accepted again */
	set_trust(f, P_FULL, STORE_TRUST_FULL);
	assert_int_equal(check(f, t, &p), VR_OK);
	free(t);
}

static void test_token_issued_with_consent_refused_under_user_trust(void **state)
{
	struct fx *f = *state;
	char *t = own_user_token(f, "app", STS_BASIS_CONSENT);

	assert_int_equal(store_oauth_consent_grant(f->a, f->snap->partners[P_APP].rec.id, f->alice,
						   NOW, "user:test"),
			 STORE_OK);
	expect(f, t, VR_OK);
	set_trust(f, P_APP, STORE_TRUST_USER);
	expect(f, t, VR_DELEGATION_NOT_ALLOWED);
	set_trust(f, P_APP, STORE_TRUST_FULL);
	expect(f, t, VR_OK);
	free(t);
}

static void test_token_exchanged_for_a_user_token_stays_good_under_user_trust(void **state)
{
	struct fx *f = *state;
	char *t = own_user_token(f, "ut", STS_BASIS_USER_TOKEN);

	expect(f, t, VR_OK);
	/* application trust still asks for consent */
	set_trust(f, P_UT, STORE_TRUST_APPLICATION);
	expect(f, t, VR_DELEGATION_NOT_ALLOWED);
	set_trust(f, P_UT, STORE_TRUST_FULL);
	expect(f, t, VR_OK);
	free(t);
}

static void test_token_without_grant_claim_judged_as_before(void **state)
{
	struct fx *f = *state;
	char *full = own_user_token(f, "full", NULL), *ut = own_user_token(f, "ut", NULL);
	char *app = own_user_token(f, "app", NULL);

	expect(f, full, VR_OK);
	expect(f, ut, VR_OK);
	expect(f, app, VR_DELEGATION_NOT_ALLOWED);
	set_trust(f, P_FULL, STORE_TRUST_USER);
	expect(f, full, VR_OK);
	free(full);
	free(ut);
	free(app);
}

static void test_token_with_unknown_grant_basis_refused(void **state)
{
	struct fx *f = *state;
	char *t;

	t = own_token_with_grant(f, json_string("root"));
	expect(f, t, VR_CLAIM_TYPE);
	free(t);
	oauth_validate_flush();
	t = own_token_with_grant(f, json_true());
	expect(f, t, VR_CLAIM_TYPE);
	free(t);
	oauth_validate_flush();
	t = own_token_with_grant(f, json_string(STS_BASIS_FULL));
	expect(f, t, VR_OK);
	free(t);
}

/* Our app-only token (client_credentials) of a partner later given user
 * trust: user trust never acts as itself, so it stops being accepted, here
 * (the snapshot) or from another server (the store). */
static void test_app_only_token_refused_once_partner_has_user_trust(void **state)
{
	struct fx *f = *state;
	struct sts_access a;
	struct timespec ts = {1, 100 * 1000 * 1000};
	char *t = NULL;
	int exp;

	memset(&a, 0, sizeof(a));
	a.client_id = "app-client";
	a.scope = "users.read";
	a.lifetime = 600;
	assert_int_equal(sts_access_token(&f->iss, &a, NOW, &t, NULL, &exp), STS_OK);
	expect(f, t, VR_OK);
	set_trust(f, P_APP, STORE_TRUST_USER);
	expect(f, t, VR_DELEGATION_NOT_ALLOWED);
	assert_non_null(strstr(oauth_validate_detail(), "never acts as itself"));
	set_trust(f, P_APP, STORE_TRUST_APPLICATION);
	expect(f, t, VR_OK);
	assert_int_equal(store_partner_trust_set(f->b, "app", STORE_TRUST_USER), STORE_OK);
	nanosleep(&ts, NULL);
	expect(f, t, VR_DELEGATION_NOT_ALLOWED);
	/* full trust in the store is no objection */
	assert_int_equal(store_partner_trust_set(f->b, "app", STORE_TRUST_FULL), STORE_OK);
	nanosleep(&ts, NULL);
	expect(f, t, VR_OK);
	free(t);
}

/* Another server of the pool downgrades or disables the partner: only the
 * store knows until this server reloads; the validator sees it within the
 * poll (a second), and at once when its snapshot changes. */
static void test_trust_change_at_another_server_seen_within_a_second(void **state)
{
	struct fx *f = *state;
	struct oauth_principal p;
	struct timespec ts = {1, 100 * 1000 * 1000};
	char *t = own_user_token(f, "full", STS_BASIS_FULL);

	assert_int_equal(check(f, t, &p), VR_OK);
	assert_int_equal(store_partner_trust_set(f->b, "full", STORE_TRUST_USER), STORE_OK);
	nanosleep(&ts, NULL);
	assert_int_equal(check(f, t, &p), VR_DELEGATION_NOT_ALLOWED);
	assert_non_null(strstr(oauth_validate_detail(), "trust level user"));
	/* application: with consent it is good again */
	assert_int_equal(store_partner_trust_set(f->b, "full", STORE_TRUST_APPLICATION), STORE_OK);
	assert_int_equal(store_oauth_consent_grant(f->b, f->snap->partners[P_FULL].rec.id, f->alice,
						   NOW, "user:test"),
			 STORE_OK);
	nanosleep(&ts, NULL);
	assert_int_equal(check(f, t, &p), VR_OK);
	/* disabled there */
	assert_int_equal(store_partner_set_enabled(f->b, "full", false), STORE_OK);
	nanosleep(&ts, NULL);
	assert_int_equal(check(f, t, &p), VR_PARTNER_DISABLED);
	free(t);
}

static void test_trust_view_refreshed_when_the_snapshot_changes(void **state)
{
	struct fx *f = *state;
	struct oauth_snapshot *other = calloc(1, sizeof(*other));
	char *t = own_user_token(f, "full", STS_BASIS_FULL);

	assert_non_null(other);
	expect(f, t, VR_OK);
	assert_int_equal(store_partner_trust_set(f->b, "full", STORE_TRUST_USER), STORE_OK);
	/* a reload: a new snapshot (here: the same contents at a new address),
	 * no waiting */
	*other = *f->snap;
	{
		struct oauth_snapshot *old = f->snap;

		f->snap = other;
		expect(f, t, VR_DELEGATION_NOT_ALLOWED);
		f->snap = old;
	}
	free(other);
	free(t);
}

static void test_trust_view_store_failure_fails_closed(void **state)
{
	struct fx *f = *state;
	struct oauth_principal p;
	struct oauth_snapshot *other = calloc(1, sizeof(*other));
	char *t = own_user_token(f, "full", STS_BASIS_FULL);

	assert_non_null(other);
	*other = *f->snap;
	drop_table(f, "DROP TABLE oauth_consent; DROP TABLE partners;");
	assert_int_equal(oauth_validate_token(other, t, strlen(t), NOW, &p), VR_INTERNAL);
	assert_true(oauth_validate_unavailable());
	free(other);
	free(t);
}

/* ---- web tickets and the revocation list ---- */

static char *web_ticket(struct fx *f, const char *uri)
{
	char *t = NULL;
	int exp;

	assert_int_equal(webticket_mint(&f->iss, uri, NOW, &t, NULL, &exp), 0);
	return t;
}

static void test_web_ticket_revoked_here_is_refused(void **state)
{
	struct fx *f = *state;
	struct oauth_principal p;
	char *wt = web_ticket(f, ALICE), *other = web_ticket(f, ALICE), *auth = NULL;
	char uri[STORE_URI_MAX];

	assert_int_equal(webticket_check(f->snap, wt, strlen(wt), NOW, &p), VR_OK);
	assert_string_equal(p.sub, ALICE);
	assert_true(p.jti[0] != '\0');
	assert_int_equal(oauth_revoke(&p, f->snap->clock_skew, NOW), 0);
	assert_int_equal(webticket_check(f->snap, wt, strlen(wt), NOW, &p), VR_REVOKED);
	assert_string_equal(p.sub, "");
	assert_true(asprintf(&auth, "Bearer %s", wt) > 0);
	assert_int_equal(webticket_validate(f->snap, auth, NOW, uri, sizeof(uri)), VR_REVOKED);
	assert_string_equal(uri, "");
	/* another ticket of the same user is not */
	assert_int_equal(webticket_check(f->snap, other, strlen(other), NOW, &p), VR_OK);
	free(auth);
	free(wt);
	free(other);
}

static void test_web_ticket_revoked_at_another_server_is_refused(void **state)
{
	struct fx *f = *state;
	struct oauth_principal p;
	char *wt = web_ticket(f, ALICE);

	/* server B revokes it (its own process list is not ours) */
	assert_int_equal(webticket_check(f->snap, wt, strlen(wt), NOW, &p), VR_OK);
	oauth_validate_bind_store(f->b);
	assert_int_equal(oauth_revoke(&p, f->snap->clock_skew, NOW), 0);
	oauth_validate_shutdown(); /* forget this process's list: only the store knows */
	oauth_validate_bind_store(f->a);
	assert_int_equal(webticket_check(f->snap, wt, strlen(wt), NOW, &p), VR_REVOKED);
	/* without the store, this process cannot know */
	oauth_validate_bind_store(NULL);
	assert_int_equal(webticket_check(f->snap, wt, strlen(wt), NOW, &p), VR_OK);
	free(wt);
}

static void test_web_ticket_revocation_store_failure_fails_closed(void **state)
{
	struct fx *f = *state;
	struct oauth_principal p;
	char *wt = web_ticket(f, ALICE);

	drop_table(f, "DROP TABLE oauth_revoked_version; DROP TABLE oauth_revoked;");
	assert_int_equal(webticket_check(f->snap, wt, strlen(wt), NOW, &p), VR_INTERNAL);
	assert_true(oauth_validate_unavailable());
	free(wt);
}

static void test_web_ticket_holder_revokes_it(void **state)
{
	struct fx *f = *state;
	struct oauth_principal p;
	char *wt = web_ticket(f, ALICE), *at = own_user_token(f, "full", STS_BASIS_FULL);

	/* not a web ticket: nothing to do here */
	assert_int_equal(introspect_revoke_webticket(f->snap, at, NOW), 0);
	assert_int_equal(introspect_revoke_webticket(f->snap, "a.b.c", NOW), 0);
	assert_int_equal(introspect_revoke_webticket(f->snap, wt, NOW), 1);
	assert_int_equal(webticket_check(f->snap, wt, strlen(wt), NOW, &p), VR_REVOKED);
	/* revoked already: nothing more to do */
	assert_int_equal(introspect_revoke_webticket(f->snap, wt, NOW), 0);
	/* a partner holding it through /oauth/revoke's client path, too */
	free(wt);
	wt = web_ticket(f, ALICE);
	assert_int_equal(introspect_revoke(f->snap, &f->snap->partners[P_UT], wt, NOW), 1);
	assert_int_equal(webticket_check(f->snap, wt, strlen(wt), NOW, &p), VR_REVOKED);
	free(wt);
	free(at);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	    T(test_outer_from_application_partner_needs_the_users_consent),
	    T(test_outer_from_application_partner_for_unknown_or_disabled_user_refused),
	    T(test_outer_naming_no_sip_user_is_refused_not_unavailable),
	    T(test_outer_without_a_store_is_refused_for_application_partner),
	    T(test_outer_consent_store_failure_fails_closed),
	    T(test_outer_from_user_trust_partner_refused_even_with_consent),
	    T(test_actor_alone_from_application_partner_needs_no_consent),
	    T(test_token_issued_under_full_trust_stops_after_downgrade),
	    T(test_token_issued_with_consent_refused_under_user_trust),
	    T(test_token_exchanged_for_a_user_token_stays_good_under_user_trust),
	    T(test_token_without_grant_claim_judged_as_before),
	    T(test_token_with_unknown_grant_basis_refused),
	    T(test_app_only_token_refused_once_partner_has_user_trust),
	    T(test_trust_change_at_another_server_seen_within_a_second),
	    T(test_trust_view_refreshed_when_the_snapshot_changes),
	    T(test_trust_view_store_failure_fails_closed),
	    T(test_web_ticket_revoked_here_is_refused),
	    T(test_web_ticket_revoked_at_another_server_is_refused),
	    T(test_web_ticket_revocation_store_failure_fails_closed),
	    T(test_web_ticket_holder_revokes_it),
#undef T
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
