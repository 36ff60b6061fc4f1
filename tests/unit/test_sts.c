/*
 * The built-in token service (oauth/sts.h): RFC 9068 access tokens with
 * exactly the claims the RFC asks for and a lifetime bounded by the server
 * maximum; the Microsoft-style actor token (string claims, aud =
 * principal/host@realm, trustedfordelegation only when acting for a user,
 * signed by the vault key with x5t) and the unsigned outer token whose iss
 * is the actor's nameid and whose actortoken verifies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "oauth/jose.h"
#include "oauth/sts.h"
#include "vault/keys.h"

#define NOW   1800000000
#define REALM "example.test"
#define ME    "00000004-0000-0ff1-ce00-000000000000"
#define EXCH  "00000002-0000-0ff1-ce00-000000000000"

struct fx {
	char dir[64];
	struct keys *keys;
	struct store_oauth_key key;
	struct sts_keys_signer signer;
	struct sts_issuer iss;
	struct jose_keyset ks; /* the public key, from the certificate */
	int sign_calls;
	bool fail_sign;
};

static int counting_sign(void *arg, const json_t *header, const json_t *payload, char **out,
			 size_t *outlen)
{
	struct fx *f = arg;

	f->sign_calls++;
	if (f->fail_sign) {
		*out = NULL;
		return JOSE_EINTERNAL;
	}
	return sts_keys_sign(&f->signer, header, payload, out, outlen);
}

static int setup_alg(void **state, const char *alg)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct jose_key *k = NULL;
	char err[256];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/rtc-sts-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	if (keys_generate(f->dir, alg, "rtcauth token issuer example.test", &f->key, err,
			  sizeof(err)) < 0)
		fail_msg("keys_generate: %s", err);
	assert_int_equal(keys_load(f->dir, &f->keys, err, sizeof(err)), 0);
	f->signer.keys = f->keys;
	f->signer.key = &f->key;
	f->iss.issuer = "https://sts.example.test";
	f->iss.principal_id = ME;
	f->iss.realm = REALM;
	f->iss.default_lifetime = 3600;
	f->iss.max_lifetime = 86400;
	f->iss.sign = counting_sign;
	f->iss.sign_arg = f;
	jose_keyset_init(&f->ks);
	assert_int_equal(jose_key_from_cert_pem(f->key.cert_pem, strlen(f->key.cert_pem),
						JOSE_ALG_UNKNOWN, f->key.kid, &k),
			 0);
	assert_int_equal(jose_keyset_add(&f->ks, k), 0);
	jose_key_free(k);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_alg(state, "RS256");
}

static int setup_es256(void **state)
{
	return setup_alg(state, "ES256");
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	jose_keyset_clear(&f->ks);
	keys_free(f->keys);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void verify(struct fx *f, const char *tok, struct jose_jws *jws)
{
	int rc = jose_verify_keyset(tok, strlen(tok), NULL, &f->ks, jws);

	if (rc)
		fail_msg("verify: %s", jose_strerror(rc));
}

static const char *claim(const struct jose_jws *jws, const char *name)
{
	return json_string_value(json_object_get(jws->payload, name));
}

static json_int_t iclaim(const struct jose_jws *jws, const char *name)
{
	json_t *v = json_object_get(jws->payload, name);

	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

/* ---- RFC 9068 access tokens ---- */

static void test_sts_access_token_has_rfc9068_claims(void **state)
{
	struct fx *f = *state;
	struct sts_access r = {.client_id = "partner-1",
			       .audience = "users.read",
			       .scope = "users.read presence.read",
			       .lifetime = 600};
	struct jose_jws jws;
	char *tok;
	int exp_in;

	assert_int_equal(sts_access_token(&f->iss, &r, NOW, &tok, NULL, &exp_in), STS_OK);
	verify(f, tok, &jws);
	assert_string_equal(jws.typ, "at+jwt");
	assert_string_equal(json_string_value(json_object_get(jws.header, "alg")), "RS256");
	assert_string_equal(jws.kid, f->key.kid);
	assert_string_equal(claim(&jws, "iss"), "https://sts.example.test");
	assert_string_equal(claim(&jws, "sub"), "partner-1");
	assert_string_equal(claim(&jws, "client_id"), "partner-1");
	assert_string_equal(claim(&jws, "aud"), "users.read");
	assert_string_equal(claim(&jws, "scope"), "users.read presence.read");
	assert_int_equal(iclaim(&jws, "iat"), NOW);
	assert_int_equal(iclaim(&jws, "nbf"), NOW);
	assert_int_equal(iclaim(&jws, "exp"), NOW + 600);
	assert_int_equal(exp_in, 600);
	assert_int_equal(strlen(claim(&jws, "jti")), 22); /* 128 bits, base64url */
	assert_null(json_object_get(jws.payload, "act"));
	assert_int_equal(json_object_size(jws.payload), 9);
	jose_jws_free(&jws);
	free(tok);
}

static void test_sts_access_token_defaults_audience_to_issuer_and_omits_empty_scope(void **state)
{
	struct fx *f = *state;
	struct sts_access r = {.client_id = "partner-1", .scope = ""};
	struct jose_jws jws;
	char *tok;
	int exp_in;

	assert_int_equal(sts_access_token(&f->iss, &r, NOW, &tok, NULL, &exp_in), STS_OK);
	verify(f, tok, &jws);
	assert_string_equal(claim(&jws, "aud"), "https://sts.example.test");
	assert_null(json_object_get(jws.payload, "scope"));
	assert_int_equal(exp_in, 3600); /* the default lifetime */
	assert_int_equal(iclaim(&jws, "exp"), NOW + 3600);
	jose_jws_free(&jws);
	free(tok);
}

static void test_sts_access_token_lifetime_bounded_by_max(void **state)
{
	struct fx *f = *state;
	struct sts_access r = {.client_id = "p", .lifetime = 7 * 86400};
	struct jose_jws jws;
	char *tok;
	int exp_in;

	assert_int_equal(sts_access_token(&f->iss, &r, NOW, &tok, NULL, &exp_in), STS_OK);
	verify(f, tok, &jws);
	assert_int_equal(exp_in, 86400);
	assert_int_equal(iclaim(&jws, "exp") - iclaim(&jws, "iat"), 86400);
	jose_jws_free(&jws);
	free(tok);
	f->iss.max_lifetime = 300;
	f->iss.default_lifetime = 3600;
	assert_int_equal(sts_lifetime(&f->iss, 0), 300);
	assert_int_equal(sts_lifetime(&f->iss, 100), 100);
	assert_int_equal(sts_lifetime(&f->iss, -5), 300);
}

static void test_sts_access_token_for_user_carries_act(void **state)
{
	struct fx *f = *state;
	struct sts_access r = {
	    .client_id = "partner-1", .subject = "sip:alice@example.test", .actor = "partner-1"};
	struct jose_jws jws;
	char *tok;
	int exp_in;

	assert_int_equal(sts_access_token(&f->iss, &r, NOW, &tok, NULL, &exp_in), STS_OK);
	verify(f, tok, &jws);
	assert_string_equal(claim(&jws, "sub"), "sip:alice@example.test");
	assert_string_equal(claim(&jws, "client_id"), "partner-1");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(jws.payload, "act"), "sub")),
	    "partner-1");
	jose_jws_free(&jws);
	free(tok);
}

static void test_sts_access_tokens_get_distinct_jtis(void **state)
{
	struct fx *f = *state;
	struct sts_access r = {.client_id = "p"};
	struct jose_jws a, b;
	char *t1, *t2;
	int e;

	assert_int_equal(sts_access_token(&f->iss, &r, NOW, &t1, NULL, &e), STS_OK);
	assert_int_equal(sts_access_token(&f->iss, &r, NOW, &t2, NULL, &e), STS_OK);
	verify(f, t1, &a);
	verify(f, t2, &b);
	assert_string_not_equal(claim(&a, "jti"), claim(&b, "jti"));
	jose_jws_free(&a);
	jose_jws_free(&b);
	free(t1);
	free(t2);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Ids come from a per-thread pool refilled from the DRBG: across several
 * refills every one is 22 base64url characters and none repeats. */
static void test_sts_new_jti_never_repeats_across_pool_refills(void **state)
{
	enum { N = 1000 };
	static char ids[N][32];

	for (int i = 0; i < N; i++) {
		assert_int_equal(sts_new_jti(ids[i]), STS_OK);
		assert_int_equal(strlen(ids[i]), 22);
		assert_int_equal(strspn(ids[i],
					"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					"0123456789-_"),
				 22);
	}
	qsort(ids, N, sizeof(ids[0]), cmp_str);
	for (int i = 1; i < N; i++)
		assert_string_not_equal(ids[i - 1], ids[i]);
}

static void test_sts_access_token_rejects_missing_client_and_reports_sign_failure(void **state)
{
	struct fx *f = *state;
	struct sts_access r = {.client_id = ""};
	char *tok = (char *)1;
	int e;

	assert_int_equal(sts_access_token(&f->iss, &r, NOW, &tok, NULL, &e), STS_EINVAL);
	assert_null(tok);
	r.client_id = "p";
	f->fail_sign = true;
	assert_int_equal(sts_access_token(&f->iss, &r, NOW, &tok, NULL, &e), STS_ESIGN);
	assert_null(tok);
	assert_int_equal(e, 0);
}

/* ---- Microsoft-style actor and outer tokens ---- */

static void test_sts_actor_token_app_only_has_string_claims_and_no_delegation(void **state)
{
	struct fx *f = *state;
	struct sts_target t = {.principal = EXCH, .host = "Mail.Example.TEST", .lifetime = 0};
	struct jose_jws jws;
	char *tok;

	assert_int_equal(sts_actor_token(&f->iss, &t, false, NOW, &tok, NULL), STS_OK);
	verify(f, tok, &jws);
	/* header {"typ":"JWT","alg":"RS256","x5t":...} (kid as well) */
	assert_string_equal(jws.typ, "JWT");
	assert_int_equal(jws.alg, JOSE_ALG_RS256);
	assert_non_null(jws.x5t);
	assert_string_equal(jws.x5t, f->key.x5t);
	assert_string_equal(claim(&jws, "aud"), EXCH "/mail.example.test@" REALM);
	assert_string_equal(claim(&jws, "iss"), ME "@" REALM);
	assert_string_equal(claim(&jws, "nameid"), ME "@" REALM);
	assert_string_equal(claim(&jws, "nbf"), "1800000000");
	assert_string_equal(claim(&jws, "exp"), "1800003600");
	assert_null(json_object_get(jws.payload, "trustedfordelegation"));
	assert_int_equal(json_object_size(jws.payload), 5);
	jose_jws_free(&jws);
	free(tok);
}

static void test_sts_actor_token_for_user_is_trusted_for_delegation(void **state)
{
	struct fx *f = *state;
	struct sts_target t = {.principal = EXCH,
			       .host = "mail.example.test",
			       .realm = "other.realm",
			       .lifetime = 99999999};
	struct jose_jws jws;
	int64_t nbf, exp;
	char *tok;

	assert_int_equal(sts_actor_token(&f->iss, &t, true, NOW, &tok, NULL), STS_OK);
	verify(f, tok, &jws);
	assert_string_equal(claim(&jws, "trustedfordelegation"), "true");
	assert_string_equal(claim(&jws, "aud"), EXCH "/mail.example.test@other.realm");
	/* the issuer is still us in our realm */
	assert_string_equal(claim(&jws, "iss"), ME "@" REALM);
	assert_int_equal(jose_claim_time(jws.payload, "nbf", &nbf), 0);
	assert_int_equal(jose_claim_time(jws.payload, "exp", &exp), 0);
	assert_int_equal(exp - nbf, 86400); /* bounded by the maximum */
	jose_jws_free(&jws);
	free(tok);
}

static void test_sts_actor_token_rejects_bad_targets(void **state)
{
	struct fx *f = *state;
	struct sts_target t = {.principal = EXCH "/x", .host = "mail.example.test"};
	char *tok = NULL;

	assert_int_equal(sts_actor_token(&f->iss, &t, false, NOW, &tok, NULL), STS_EINVAL);
	t.principal = EXCH;
	t.host = "";
	assert_int_equal(sts_actor_token(&f->iss, &t, false, NOW, &tok, NULL), STS_EINVAL);
	t.host = "a@b";
	assert_int_equal(sts_actor_token(&f->iss, &t, false, NOW, &tok, NULL), STS_EINVAL);
	t.host = "mail";
	t.realm = "x@y";
	assert_int_equal(sts_actor_token(&f->iss, &t, false, NOW, &tok, NULL), STS_EINVAL);
	assert_null(tok);
	assert_int_equal(f->sign_calls, 0);
}

static void test_sts_outer_token_wraps_verified_actor_with_matching_iss(void **state)
{
	struct fx *f = *state;
	struct sts_target t = {.principal = EXCH, .host = "mail.example.test", .lifetime = 1200};
	struct sts_user u = {.sip_uri = "sip:alice@example.test", .smtp = "alice@example.test"};
	struct jose_jws outer, actor;
	const char *at;
	char *tok;

	assert_int_equal(sts_outer_token(&f->iss, &t, &u, NOW, &tok, NULL), STS_OK);
	assert_int_equal(jose_parse_unsigned_outer(tok, strlen(tok), NULL, &outer), 0);
	assert_string_equal(json_string_value(json_object_get(outer.header, "alg")), "none");
	at = claim(&outer, "actortoken");
	assert_non_null(at);
	verify(f, at, &actor);
	/* PROTOCOLS.md §6: outer iss = actor nameid; same aud and window */
	assert_string_equal(claim(&outer, "iss"), claim(&actor, "nameid"));
	assert_string_equal(claim(&outer, "aud"), claim(&actor, "aud"));
	assert_string_equal(claim(&outer, "nbf"), claim(&actor, "nbf"));
	assert_string_equal(claim(&outer, "exp"), claim(&actor, "exp"));
	assert_string_equal(claim(&outer, "exp"), "1800001200");
	assert_string_equal(claim(&actor, "trustedfordelegation"), "true");
	assert_string_equal(claim(&outer, "nameid"), "alice@example.test");
	assert_string_equal(claim(&outer, "sip"), "alice@example.test");
	assert_string_equal(claim(&outer, "smtp"), "alice@example.test");
	assert_string_equal(claim(&outer, "nii"), "urn:office:idp:activedirectory");
	assert_null(json_object_get(outer.payload, "upn"));
	assert_null(json_object_get(outer.payload, "trustedfordelegation"));
	jose_jws_free(&outer);
	jose_jws_free(&actor);
	free(tok);
}

static void test_sts_outer_token_needs_a_user_address(void **state)
{
	struct fx *f = *state;
	struct sts_target t = {.principal = EXCH, .host = "mail.example.test"};
	struct sts_user u = {.sip_uri = "sip:"};
	char *tok = NULL;

	assert_int_equal(sts_outer_token(&f->iss, &t, &u, NOW, &tok, NULL), STS_EINVAL);
	u.sip_uri = "sip:nodomain";
	assert_int_equal(sts_outer_token(&f->iss, &t, &u, NOW, &tok, NULL), STS_EINVAL);
	assert_int_equal(sts_outer_token(&f->iss, &t, NULL, NOW, &tok, NULL), STS_EINVAL);
	assert_null(tok);
}

static void test_sts_outer_token_fails_when_actor_cannot_be_signed(void **state)
{
	struct fx *f = *state;
	struct sts_target t = {.principal = EXCH, .host = "mail.example.test"};
	struct sts_user u = {.sip_uri = "sip:alice@example.test"};
	char *tok = NULL;

	f->fail_sign = true;
	assert_int_equal(sts_outer_token(&f->iss, &t, &u, NOW, &tok, NULL), STS_ESIGN);
	assert_null(tok);
}

static void test_sts_es256_key_signs_with_its_pinned_alg(void **state)
{
	struct fx *f = *state;
	struct sts_access r = {.client_id = "p"};
	struct jose_jws jws;
	char *tok;
	int e;

	assert_int_equal(sts_access_token(&f->iss, &r, NOW, &tok, NULL, &e), STS_OK);
	verify(f, tok, &jws);
	assert_int_equal(jws.alg, JOSE_ALG_ES256);
	jose_jws_free(&jws);
	free(tok);
}

static void test_sts_keys_sign_fails_without_key(void **state)
{
	struct fx *f = *state;
	struct store_oauth_key other = f->key;
	struct sts_keys_signer s = {f->keys, &other};
	json_t *p = json_pack("{s:s}", "a", "b");
	char *tok = (char *)1;

	snprintf(other.kid, sizeof(other.kid), "nosuchkid");
	assert_true(sts_keys_sign(&s, NULL, p, &tok, NULL) < 0);
	assert_null(tok);
	json_decref(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_sts_access_token_has_rfc9068_claims, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(
		test_sts_access_token_defaults_audience_to_issuer_and_omits_empty_scope, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_sts_access_token_lifetime_bounded_by_max, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_sts_access_token_for_user_carries_act, setup,
					    teardown),
	    cmocka_unit_test(test_sts_new_jti_never_repeats_across_pool_refills),
	    cmocka_unit_test_setup_teardown(test_sts_access_tokens_get_distinct_jtis, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(
		test_sts_access_token_rejects_missing_client_and_reports_sign_failure, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(
		test_sts_actor_token_app_only_has_string_claims_and_no_delegation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sts_actor_token_for_user_is_trusted_for_delegation,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sts_actor_token_rejects_bad_targets, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(
		test_sts_outer_token_wraps_verified_actor_with_matching_iss, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sts_outer_token_needs_a_user_address, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_sts_outer_token_fails_when_actor_cannot_be_signed,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sts_es256_key_signs_with_its_pinned_alg,
					    setup_es256, teardown),
	    cmocka_unit_test_setup_teardown(test_sts_keys_sign_fails_without_key, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
