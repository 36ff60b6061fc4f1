/*
 * libFuzzer target for Bearer token validation (oauth/validate) and the
 * parsers around it (the introspection form, the users API path). The first
 * byte picks what the rest is:
 *   0: token text (also as an Authorization header value);
 *   1: the claims of one of our access tokens, signed here (ES256, own key);
 *   2: the claims of a partner's actor token, signed here, alone and inside
 *      a fixed unsigned outer token;
 *   3: the claims of an unsigned outer token, around a valid actor token.
 * Checked promises: every result has a name; a refused token gives nothing
 * back (the principal stays zeroed); a valid one names a client and an exp;
 * an unsigned token is accepted only with a verified actor (acts for a
 * user); nothing leaks or reads out of bounds.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>

#include "oauth/api.h"
#include "oauth/introspect.h"
#include "oauth/jose.h"
#include "oauth/token.h"
#include "oauth/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW   1800000000
#define REALM "example.test"
#define AUD   OAUTH_PRINCIPAL_LYNC "/sts.example.test@" REALM

static struct oauth_snapshot snap;
static struct oauth_partner partner;
static EVP_PKEY *k_own, *k_p1;
static char *good_actor;

static void add_key(struct jose_keyset *ks, EVP_PKEY *pkey, const char *kid)
{
	struct jose_key *k = NULL;

	if (jose_key_from_pkey(pkey, NULL, 0, JOSE_ALG_ES256, kid, &k) != 0 ||
	    jose_keyset_add(ks, k) != 0)
		abort();
	jose_key_free(k);
}

static char *sign(json_t *claims, const char *typ, EVP_PKEY *pkey, const char *kid)
{
	struct jose_pkey_signer s = {pkey, JOSE_ALG_ES256};
	json_t *h = json_pack("{s:s, s:s, s:s}", "typ", typ, "alg", "ES256", "kid", kid);
	char *out = NULL;

	if (!h || jose_sign_compact(h, claims, jose_pkey_signer, &s, &out, NULL) != 0)
		out = NULL;
	json_decref(h);
	return out;
}

static void setup(void)
{
	json_t *a;

	if (k_own)
		return;
	k_own = EVP_EC_gen("P-256");
	k_p1 = EVP_EC_gen("P-256");
	if (!k_own || !k_p1)
		abort();
	snprintf(snap.issuer, sizeof(snap.issuer), "https://sts.example.test");
	snprintf(snap.token_endpoint, sizeof(snap.token_endpoint),
		 "https://sts.example.test/oauth/token");
	snprintf(snap.realm, sizeof(snap.realm), REALM);
	snprintf(snap.principal_id, sizeof(snap.principal_id), OAUTH_PRINCIPAL_LYNC);
	snprintf(snap.host, sizeof(snap.host), "sts.example.test");
	snap.max_lifetime = 86400;
	snap.clock_skew = 300;
	snap.max_token_size = 16384;
	jose_keyset_init(&snap.own);
	add_key(&snap.own, k_own, "own1");
	snprintf(partner.rec.name, sizeof(partner.rec.name), "p1");
	snprintf(partner.rec.issuer, sizeof(partner.rec.issuer), "p1-client");
	snprintf(partner.rec.resources, sizeof(partner.rec.resources), "users.read,x");
	partner.rec.enabled = true;
	partner.rec.trust = STORE_TRUST_FULL;
	jose_keyset_init(&partner.keys);
	add_key(&partner.keys, k_p1, "p1key");
	snap.partners = &partner;
	snap.n_partners = 1;
	a = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "aud", AUD, "iss", "p1-client@" REALM,
		      "nbf", "1800000000", "exp", "1800000600", "nameid", "p1-client@" REALM,
		      "trustedfordelegation", "true");
	good_actor = a ? sign(a, "JWT", k_p1, "p1key") : NULL;
	json_decref(a);
	if (!good_actor)
		abort();
}

static void check(const char *tok, size_t len)
{
	struct oauth_principal p;
	int rc = oauth_validate_token(&snap, tok, len, NOW, &p);

	if (rc < 0 || rc >= VR_COUNT || !validate_result_name(rc)[0])
		abort();
	if (rc != VR_OK) {
		if (p.sub[0] || p.client_id[0] || p.scope[0] || p.exp)
			abort(); /* nothing of a refused token */
		return;
	}
	if (!p.client_id[0] || !p.sub[0] || p.exp <= 0 || !memchr(p.sub, 0, sizeof(p.sub)) ||
	    !memchr(p.scope, 0, sizeof(p.scope)))
		abort();
	/* alg none: only the outer form, and then it acts for a user */
	if (strcmp(p.token_type, "outer") == 0 && !p.acts_for_user)
		abort();
	/* a second look comes from the cache and says the same */
	{
		struct oauth_principal q;

		if (oauth_validate_token(&snap, tok, len, NOW, &q) != VR_OK ||
		    memcmp(&p, &q, sizeof(p)) != 0)
			abort();
	}
}

static void raw_text(const char *s, size_t n)
{
	struct token_form f;
	struct token_result res;
	struct oauth_principal p;
	char uri[STORE_URI_MAX], *h;

	check(s, n);
	if (memchr(s, 0, n))
		return;
	h = malloc(n + 8);
	if (!h)
		return;
	memcpy(h, "Bearer ", 7);
	memcpy(h + 7, s, n);
	h[n + 7] = '\0';
	(void)oauth_validate_bearer(&snap, h, NOW, "users.read", &p);
	(void)api_user_uri(h + 7, uri);
	free(h);
	/* the form introspection and revocation read (the token endpoint's) */
	memset(&res, 0, sizeof(res));
	if (token_form_parse(s, n, &f, &res) == 0)
		token_form_free(&f);
}

static void signed_claims(int mode, const uint8_t *data, size_t size)
{
	json_t *c = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	char *tok = NULL;

	if (!json_is_object(c))
		goto out;
	if (mode == 1) {
		tok = sign(c, "at+jwt", k_own, "own1");
	} else if (mode == 2) {
		char *actor = sign(c, "JWT", k_p1, "p1key");
		json_t *o =
		    actor ? json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "aud", AUD, "iss",
				      "p1-client@" REALM, "nbf", "1800000000", "exp", "1800000600",
				      "sip", "alice@" REALM, "actortoken", actor)
			  : NULL;

		if (actor)
			check(actor, strlen(actor));
		if (o && jose_unsigned_compact(NULL, o, &tok, NULL) != 0)
			tok = NULL;
		json_decref(o);
		free(actor);
	} else {
		if (json_object_set_new(c, "actortoken", json_string(good_actor)) == 0 &&
		    jose_unsigned_compact(NULL, c, &tok, NULL) != 0)
			tok = NULL;
	}
	if (tok)
		check(tok, strlen(tok));
	free(tok);
out:
	json_decref(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	if (size < 1 || size > 20000)
		return 0;
	switch (data[0] % 4) {
	case 0:
		raw_text((const char *)data + 1, size - 1);
		break;
	default:
		signed_claims(data[0] % 4, data + 1, size - 1);
		break;
	}
	oauth_validate_flush();
	return 0;
}
