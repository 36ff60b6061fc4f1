/* The OAuth runtime: [oauth] config, snapshots from the store, signing, the
 * metadata documents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "http/http.h"
#include "oauth/metadata.h"
#include "oauth/oauth.h"
#include "store/store.h"
#include "vault/keys.h"

struct fx {
	char dir[64];
	char db[128];
	char conf[128];
	struct store *s;
	struct config cfg;
	char err[1024];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/rtc-oauth-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->db, sizeof(f->db), "%s/rtcauth.db", f->dir);
	snprintf(f->conf, sizeof(f->conf), "%s/rtcauth.conf", f->dir);
	assert_int_equal(store_open(f->db, STORE_CREATE, 1000, &f->s, f->err, sizeof(f->err)),
			 STORE_OK);
	config_defaults(&f->cfg);
	strcpy(f->cfg.domain, "example.com");
	strcpy(f->cfg.fqdn, "sip.example.com");
	snprintf(f->cfg.state_dir, sizeof(f->cfg.state_dir), "%s", f->dir);
	config_oauth_defaults(&f->cfg);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	oauth_stop();
	store_close(f->s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* ---- [oauth] config ---- */

static int load_conf(struct fx *f, const char *extra)
{
	FILE *fp = fopen(f->conf, "w");

	assert_non_null(fp);
	fprintf(fp,
		"[server]\ndomain = example.com\nfqdn = sip.example.com\nstate_dir = %s\n"
		"[http]\nlisten = 127.0.0.1:8443\n%s",
		f->dir, extra);
	fclose(fp);
	f->err[0] = '\0';
	return config_load(f->conf, &f->cfg, f->err, sizeof(f->err));
}

static void test_oauth_config_defaults_follow_server_and_http(void **state)
{
	struct fx *f = *state;

	assert_int_equal(load_conf(f, ""), 0);
	assert_string_equal(f->cfg.oauth_issuer, "https://sip.example.com:8443");
	assert_string_equal(f->cfg.oauth_realm, "example.com");
	assert_string_equal(f->cfg.oauth_principal_id, OAUTH_PRINCIPAL_LYNC);
	assert_string_equal(f->cfg.oauth_service_name, "rtcauth");
	assert_string_equal(f->cfg.oauth_signing_alg, "RS256");
	assert_int_equal(f->cfg.oauth_default_token_lifetime, 3600);
	assert_int_equal(f->cfg.oauth_max_token_lifetime, 86400);
	assert_int_equal(f->cfg.oauth_clock_skew, 300);
	assert_int_equal(f->cfg.oauth_max_token_size, 16384);
	assert_string_equal(f->cfg.oauth_authorization_server, "");
}

static void test_oauth_config_issuer_has_no_port_on_443(void **state)
{
	struct fx *f = *state;
	FILE *fp = fopen(f->conf, "w");

	assert_non_null(fp);
	fprintf(fp,
		"[server]\ndomain = example.com\nfqdn = sip.example.com\nstate_dir = %s\n"
		"[http]\nlisten = 0.0.0.0:443\nlisten = 0.0.0.0:8443\n",
		f->dir);
	fclose(fp);
	assert_int_equal(config_load(f->conf, &f->cfg, f->err, sizeof(f->err)), 0);
	assert_string_equal(f->cfg.oauth_issuer, "https://sip.example.com");
}

static void test_oauth_config_takes_every_key(void **state)
{
	struct fx *f = *state;

	assert_int_equal(load_conf(f, "[oauth]\n"
				      "issuer = https://login.example.com/rtc\n"
				      "realm = 5e0f4a3c-1b1a-4cde-9f00-0123456789ab\n"
				      "principal_id = " OAUTH_PRINCIPAL_EXCHANGE "\n"
				      "service_name = Contoso RTC\n"
				      "signing_alg = EdDSA\n"
				      "default_token_lifetime = 30m\n"
				      "max_token_lifetime = 12h\n"
				      "clock_skew = 1m\n"
				      "max_token_size = 32K\n"
				      "authorization_server = https://sts.example.com/.well-known/"
				      "oauth-authorization-server\n"),
			 0);
	assert_string_equal(f->cfg.oauth_issuer, "https://login.example.com/rtc");
	assert_string_equal(f->cfg.oauth_realm, "5e0f4a3c-1b1a-4cde-9f00-0123456789ab");
	assert_string_equal(f->cfg.oauth_principal_id, OAUTH_PRINCIPAL_EXCHANGE);
	assert_string_equal(f->cfg.oauth_service_name, "Contoso RTC");
	assert_string_equal(f->cfg.oauth_signing_alg, "EdDSA");
	assert_int_equal(f->cfg.oauth_default_token_lifetime, 1800);
	assert_int_equal(f->cfg.oauth_max_token_lifetime, 43200);
	assert_int_equal(f->cfg.oauth_clock_skew, 60);
	assert_int_equal(f->cfg.oauth_max_token_size, 32768);
	assert_string_equal(f->cfg.oauth_authorization_server,
			    "https://sts.example.com/.well-known/oauth-authorization-server");
}

/* A bad [oauth] line: the error names file:line and the fix. */
static void bad(struct fx *f, const char *line, const char *want)
{
	char extra[512], at[256];

	snprintf(extra, sizeof(extra), "[oauth]\n%s\n", line);
	assert_int_equal(load_conf(f, extra), -1);
	snprintf(at, sizeof(at), "%s:8: ", f->conf);
	if (!strstr(f->err, at) || !strstr(f->err, want)) {
		print_error("for '%s' got: %s\n", line, f->err);
		fail();
	}
}

static void test_oauth_config_errors_name_file_line_and_fix(void **state)
{
	struct fx *f = *state;

	bad(f, "issuer = http://sip.example.com", "expected an https URL");
	bad(f, "issuer = https://sip.example.com/", "without a trailing '/'");
	bad(f, "issuer = https://sip.example.com?x=1", "no query part");
	bad(f, "issuer = https://user@sip.example.com", "host part");
	bad(f, "issuer = https://sip.example.com/#frag", "fragments");
	bad(f, "issuer = https://", "has no host");
	bad(f, "signing_alg = rs256", "expected RS256, PS256, ES256 or EdDSA");
	bad(f, "signing_alg = HS256", "expected RS256, PS256, ES256 or EdDSA");
	bad(f, "clock_skew = 3601", "must be between 0 and 3600 seconds");
	bad(f, "max_token_lifetime = 8d", "expected seconds");
	bad(f, "max_token_size = 100", "must be between 1K and 1M");
	bad(f, "realm = a@b", "without spaces, '@', '/'");
	bad(f, "principal_id = 00000004/host", "without spaces, '@', '/'");
	bad(f, "authorization_server = http://sts.example.com/", "expected an https URL");
	bad(f, "enabled = false", "unknown key 'enabled' in [oauth]");
	bad(f, "clock_skw = 10", "did you mean 'clock_skew'");
	bad(f, "service_name = a\"b", "without quotes");
}

static void test_oauth_config_default_lifetime_must_not_exceed_max(void **state)
{
	struct fx *f = *state;

	assert_int_equal(load_conf(f, "[oauth]\nmax_token_lifetime = 600\n"), -1);
	assert_non_null(strstr(f->err, ":8: [oauth] default_token_lifetime (3600) must not be "
				       "above max_token_lifetime (600)"));
}

/* ---- snapshots ---- */

static void start(struct fx *f)
{
	f->err[0] = '\0';
	if (oauth_start(&f->cfg, f->s, f->err, sizeof(f->err)) != 0) {
		print_error("oauth_start: %s\n", f->err);
		fail();
	}
}

static void reload(struct fx *f)
{
	if (oauth_reload(&f->cfg, f->s, f->err, sizeof(f->err)) != 0) {
		print_error("oauth_reload: %s\n", f->err);
		fail();
	}
}

static void test_oauth_first_start_creates_a_current_key(void **state)
{
	struct fx *f = *state;
	struct store_oauth_key *cur = calloc(1, sizeof(*cur));
	const struct oauth_snapshot *s;

	assert_non_null(cur);
	assert_int_equal(store_oauth_key_current(f->s, cur), STORE_NOTFOUND);
	strcpy(f->cfg.oauth_signing_alg, "ES256");
	start(f);
	assert_int_equal(store_oauth_key_current(f->s, cur), STORE_OK);
	s = oauth_snapshot_get();
	assert_non_null(s);
	assert_string_equal(s->current.kid, cur->kid);
	assert_string_equal(s->current.alg, "ES256");
	assert_int_equal(s->n_published, 1);
	assert_int_equal(s->own.n, 1);
	assert_string_equal(s->own.keys[0]->kid, cur->kid);
	assert_int_equal(s->own.keys[0]->alg, JOSE_ALG_ES256);
	assert_string_equal(s->own.keys[0]->x5t, cur->x5t);
	assert_string_equal(s->issuer, "https://sip.example.com:8443");
	assert_string_equal(s->token_endpoint, "https://sip.example.com:8443/oauth/token");
	assert_string_equal(s->realm, "example.com");
	assert_string_equal(s->host, "sip.example.com");
	assert_string_equal(s->principal_id, OAUTH_PRINCIPAL_LYNC);
	assert_int_equal(s->max_lifetime, 86400);
	assert_int_equal(s->n_partners, 0);
	oauth_snapshot_put(s);
	free(cur);
}

static void test_oauth_second_start_keeps_the_current_key(void **state)
{
	struct fx *f = *state;
	const struct oauth_snapshot *s;
	char kid[STORE_OAUTH_KID_MAX];

	strcpy(f->cfg.oauth_signing_alg, "ES256");
	start(f);
	s = oauth_snapshot_get();
	strcpy(kid, s->current.kid);
	oauth_snapshot_put(s);
	oauth_stop();
	assert_null(oauth_snapshot_get());
	strcpy(f->cfg.oauth_signing_alg, "EdDSA"); /* only for a first key */
	start(f);
	s = oauth_snapshot_get();
	assert_string_equal(s->current.kid, kid);
	assert_string_equal(s->current.alg, "ES256");
	assert_int_equal(s->n_published, 1);
	oauth_snapshot_put(s);
}

static void test_oauth_start_refuses_a_missing_private_key_naming_the_file(void **state)
{
	struct fx *f = *state;
	const struct oauth_snapshot *s;
	char kid[STORE_OAUTH_KID_MAX];

	strcpy(f->cfg.oauth_signing_alg, "ES256");
	start(f);
	s = oauth_snapshot_get();
	strcpy(kid, s->current.kid);
	oauth_snapshot_put(s);
	oauth_stop();
	assert_int_equal(keys_discard(f->dir, kid), 0);
	assert_int_equal(oauth_start(&f->cfg, f->s, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, kid));
	assert_non_null(strstr(f->err, "/keys/oauth-"));
	assert_null(oauth_snapshot_get());
}

/* A certificate PEM of a new key of alg (made in a scratch directory). */
static void partner_cert(struct fx *f, const char *alg, char *out, size_t cap)
{
	struct store_oauth_key *k = calloc(1, sizeof(*k));
	char dir[160];

	assert_non_null(k);
	snprintf(dir, sizeof(dir), "%s/partner", f->dir);
	mkdir(dir, 0700);
	if (keys_generate(dir, alg, "partner", k, f->err, sizeof(f->err)) != 0) {
		print_error("keys_generate: %s\n", f->err);
		fail();
	}
	assert_true(strlen(k->cert_pem) < cap);
	strcpy(out, k->cert_pem);
	free(k);
}

static void add_partner(struct fx *f, const char *name, const char *issuer, int source,
			const char *certs, const char *jwks, bool enabled)
{
	struct store_partner *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->enabled = enabled;
	snprintf(p->issuer, sizeof(p->issuer), "%s", issuer);
	strcpy(p->realm, "example.com");
	p->trust = STORE_TRUST_APPLICATION;
	p->lifetime = 3600;
	p->source = source;
	if (source == STORE_PARTNER_METADATA)
		strcpy(p->metadata_url, "https://partner.example.com/metadata/json/1");
	p->certs = (char *)certs;
	p->jwks = (char *)jwks;
	assert_int_equal(store_partner_add(f->s, p), STORE_OK);
	free(p);
}

static char *jwks_of(const char *pem)
{
	struct jose_key *k = NULL;
	json_t *jwk = NULL, *doc;
	char *s;

	assert_int_equal(jose_key_from_cert_pem(pem, strlen(pem), JOSE_ALG_UNKNOWN, "p-1", &k), 0);
	assert_int_equal(jose_key_to_jwk(k, &jwk), 0);
	doc = json_pack("{s:[o]}", "keys", jwk);
	s = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	jose_key_free(k);
	return s;
}

static void test_oauth_partners_load_from_certs_and_jwks_and_bad_ones_are_left_out(void **state)
{
	struct fx *f = *state;
	char *rsa = malloc(STORE_OAUTH_CERT_MAX), *ec = malloc(STORE_OAUTH_CERT_MAX);
	char *ed = malloc(STORE_OAUTH_CERT_MAX), *two = malloc(2 * STORE_OAUTH_CERT_MAX);
	char *jwks;
	const struct oauth_snapshot *s;
	const struct oauth_partner *p;

	assert_true(rsa && ec && ed && two);
	strcpy(f->cfg.oauth_signing_alg, "ES256");
	start(f);
	partner_cert(f, "RS256", rsa, STORE_OAUTH_CERT_MAX);
	partner_cert(f, "ES256", ec, STORE_OAUTH_CERT_MAX);
	partner_cert(f, "EdDSA", ed, STORE_OAUTH_CERT_MAX);
	snprintf(two, 2 * STORE_OAUTH_CERT_MAX, "%s%s", rsa, ec);
	jwks = jwks_of(ed);
	add_partner(f, "exchange", OAUTH_PRINCIPAL_EXCHANGE, STORE_PARTNER_CERT, two, NULL, true);
	add_partner(f, "docs", "https://docs.example.com", STORE_PARTNER_JWKS, NULL, jwks, true);
	add_partner(f, "broken", "broken-id", STORE_PARTNER_CERT,
		    "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", NULL,
		    true);
	add_partner(f, "garbled", "garbled-id", STORE_PARTNER_JWKS, NULL, "{\"keys\": 5", true);
	add_partner(f, "off", "off-id", STORE_PARTNER_CERT, rsa, NULL, false);
	add_partner(f, "cloud", "cloud-id", STORE_PARTNER_METADATA, NULL, NULL, true);

	s = oauth_snapshot_get();
	assert_int_equal(s->n_partners, 0); /* not before a reload */
	oauth_snapshot_put(s);
	reload(f);
	s = oauth_snapshot_get();
	assert_int_equal(s->n_partners, 3);

	p = oauth_partner_by_issuer(s, OAUTH_PRINCIPAL_EXCHANGE, "example.com");
	assert_non_null(p);
	assert_string_equal(p->rec.name, "exchange");
	assert_null(p->rec.certs);
	assert_int_equal(p->keys.n, 2);
	assert_int_equal(p->keys.keys[0]->alg, JOSE_ALG_RS256);
	assert_int_equal(p->keys.keys[1]->alg, JOSE_ALG_ES256);
	assert_int_equal((int)strlen(p->keys.keys[0]->x5t), JOSE_X5T_LEN);
	assert_ptr_equal(oauth_partner_by_issuer(s, OAUTH_PRINCIPAL_EXCHANGE, NULL), p);
	assert_null(oauth_partner_by_issuer(s, OAUTH_PRINCIPAL_EXCHANGE, "other.com"));
	assert_null(oauth_partner_by_issuer(s, "00000002-0000-0FF1-CE00-000000000000", NULL));

	p = oauth_partner_by_name(s, "docs");
	assert_non_null(p);
	assert_int_equal(p->keys.n, 1);
	assert_int_equal(p->keys.keys[0]->alg, JOSE_ALG_EDDSA);
	assert_string_equal(p->keys.keys[0]->kid, "p-1");

	p = oauth_partner_by_name(s, "cloud"); /* metadata not fetched yet: no keys */
	assert_non_null(p);
	assert_int_equal(p->keys.n, 0);

	assert_null(oauth_partner_by_name(s, "broken"));
	assert_null(oauth_partner_by_name(s, "garbled"));
	assert_null(oauth_partner_by_name(s, "off"));
	assert_null(oauth_partner_by_issuer(s, "off-id", NULL));
	assert_null(oauth_partner_by_issuer(s, "", NULL));
	oauth_snapshot_put(s);
	free(jwks);
	free(rsa);
	free(ec);
	free(ed);
	free(two);
}

static void test_oauth_sign_output_verifies_with_own_keys_and_has_x5t_kid_alg(void **state)
{
	struct fx *f = *state;
	const struct oauth_snapshot *s;
	json_t *payload = json_pack("{s:s, s:s}", "iss", "me", "aud", "you");
	json_t *h;
	struct jose_jws jws;
	char *tok = NULL;
	size_t len = 0;

	start(f); /* RS256: the default */
	s = oauth_snapshot_get();
	assert_int_equal(oauth_sign(s, NULL, payload, &tok, &len), 0);
	assert_int_equal(strlen(tok), len);
	assert_int_equal(jose_verify_keyset(tok, len, NULL, &s->own, &jws), 0);
	assert_string_equal(json_string_value(json_object_get(jws.header, "alg")), "RS256");
	assert_string_equal(json_string_value(json_object_get(jws.header, "typ")), "JWT");
	assert_string_equal(jws.x5t, s->current.x5t);
	assert_string_equal(jws.kid, s->current.kid);
	assert_string_equal(json_string_value(json_object_get(jws.payload, "aud")), "you");
	/* PROTOCOLS.md §6: typ, alg, x5t first */
	assert_int_equal(strncmp(tok, "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsIng1dCI6", 44), 0);
	jose_jws_free(&jws);
	free(tok);

	/* the caller's typ and extra members stay; a tampered token fails */
	h = json_pack("{s:s, s:s}", "typ", "at+jwt", "cty", "x");
	assert_int_equal(oauth_sign(s, h, payload, &tok, &len), 0);
	assert_int_equal(jose_verify_keyset(tok, len, NULL, &s->own, &jws), 0);
	assert_string_equal(jws.typ, "at+jwt");
	assert_string_equal(json_string_value(json_object_get(jws.header, "cty")), "x");
	jose_jws_free(&jws);
	tok[len - 2] = tok[len - 2] == 'A' ? 'B' : 'A';
	assert_int_equal(jose_verify_keyset(tok, len, NULL, &s->own, &jws), JOSE_EBADSIG);
	free(tok);
	json_decref(h);

	/* an alg other than the key's is refused, not silently replaced */
	h = json_pack("{s:s}", "alg", "ES256");
	assert_int_equal(oauth_sign(s, h, payload, &tok, &len), JOSE_EALG);
	assert_null(tok);
	json_decref(h);
	oauth_snapshot_put(s);
	json_decref(payload);
}

/* Make a next key as rtcauthctl oauth key new does. */
static void new_next_key(struct fx *f, const char *alg, struct store_oauth_key *k)
{
	assert_int_equal(keys_generate(f->dir, alg, "rtcauth token issuer example.com", k, f->err,
				       sizeof(f->err)),
			 0);
	assert_int_equal(store_oauth_key_add(f->s, k), STORE_OK);
}

static const char *signing_kid(const struct oauth_snapshot *s, char *buf, size_t cap)
{
	json_t *payload = json_pack("{s:s}", "iss", "me");
	struct jose_jws jws;
	char *tok = NULL;
	size_t len;

	assert_int_equal(oauth_sign(s, NULL, payload, &tok, &len), 0);
	assert_int_equal(jose_verify_keyset(tok, len, NULL, &s->own, &jws), 0);
	snprintf(buf, cap, "%s", jws.kid);
	jose_jws_free(&jws);
	free(tok);
	json_decref(payload);
	return buf;
}

static bool published(const struct oauth_snapshot *s, const char *kid)
{
	bool in_own = jose_keyset_find(&s->own, kid, NULL, NULL) != NULL;

	for (size_t i = 0; i < s->n_published; i++)
		if (strcmp(s->published[i].kid, kid) == 0) {
			assert_true(in_own);
			return true;
		}
	assert_false(in_own);
	return false;
}

static void test_oauth_rollover_publishes_next_before_it_signs(void **state)
{
	struct fx *f = *state;
	struct store_oauth_key *next = calloc(1, sizeof(*next));
	const struct oauth_snapshot *s, *old;
	char first[STORE_OAUTH_KID_MAX], buf[64];

	assert_non_null(next);
	strcpy(f->cfg.oauth_signing_alg, "ES256");
	start(f);
	old = oauth_snapshot_get();
	strcpy(first, old->current.kid);
	new_next_key(f, "EdDSA", next);

	reload(f);
	s = oauth_snapshot_get();
	assert_int_equal(s->n_published, 2);
	assert_true(published(s, next->kid));
	assert_string_equal(signing_kid(s, buf, sizeof(buf)), first);
	oauth_snapshot_put(s);

	/* a snapshot taken before the reload is still whole */
	assert_string_equal(old->current.kid, first);
	assert_int_equal(old->n_published, 1);
	assert_false(published(old, next->kid));
	oauth_snapshot_put(old);

	assert_int_equal(store_oauth_key_set_state(f->s, next->kid, STORE_OAUTH_KEY_CURRENT),
			 STORE_OK);
	reload(f);
	s = oauth_snapshot_get();
	assert_string_equal(signing_kid(s, buf, sizeof(buf)), next->kid);
	assert_string_equal(s->current.alg, "EdDSA");
	assert_true(published(s, first)); /* previous: still published */
	assert_int_equal(s->n_published, 2);
	oauth_snapshot_put(s);

	assert_int_equal(store_oauth_key_set_state(f->s, first, STORE_OAUTH_KEY_RETIRED), STORE_OK);
	reload(f);
	s = oauth_snapshot_get();
	assert_int_equal(s->n_published, 1);
	assert_false(published(s, first));
	oauth_snapshot_put(s);
	free(next);
}

static void test_oauth_reload_failure_keeps_the_old_snapshot(void **state)
{
	struct fx *f = *state;
	struct store_oauth_key *next = calloc(1, sizeof(*next));
	const struct oauth_snapshot *s;
	char first[STORE_OAUTH_KID_MAX];

	assert_non_null(next);
	strcpy(f->cfg.oauth_signing_alg, "ES256");
	start(f);
	s = oauth_snapshot_get();
	strcpy(first, s->current.kid);
	oauth_snapshot_put(s);
	new_next_key(f, "ES256", next);
	assert_int_equal(keys_discard(f->dir, next->kid), 0);
	assert_int_equal(store_oauth_key_set_state(f->s, next->kid, STORE_OAUTH_KEY_CURRENT),
			 STORE_OK);
	assert_int_equal(oauth_reload(&f->cfg, f->s, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, next->kid));
	s = oauth_snapshot_get();
	assert_string_equal(s->current.kid, first);
	oauth_snapshot_put(s);
	free(next);
}

static void test_oauth_reload_before_start_fails(void **state)
{
	struct fx *f = *state;

	assert_int_equal(oauth_reload(&f->cfg, f->s, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "not started"));
	assert_null(oauth_snapshot_get());
}

struct reader {
	int rounds;
	int ok;
};

/* A handler's life: take the snapshot, sign, verify with it, give it back. */
static void *reader_main(void *arg)
{
	struct reader *r = arg;
	json_t *payload = json_pack("{s:s}", "iss", "me");

	for (int i = 0; i < r->rounds; i++) {
		const struct oauth_snapshot *s = oauth_snapshot_get();
		struct jose_jws jws;
		char *tok = NULL;
		size_t len;

		if (!s)
			break;
		if (oauth_sign(s, NULL, payload, &tok, &len) == 0 &&
		    jose_verify_keyset(tok, len, NULL, &s->own, &jws) == 0) {
			if (strcmp(jws.kid, s->current.kid) == 0)
				r->ok++;
			jose_jws_free(&jws);
		}
		free(tok);
		oauth_snapshot_put(s);
	}
	json_decref(payload);
	return NULL;
}

static void test_oauth_readers_never_see_a_half_swapped_snapshot(void **state)
{
	struct fx *f = *state;
	struct store_oauth_key *next = calloc(1, sizeof(*next));
	struct reader r[2] = {{300, 0}, {300, 0}};
	pthread_t t[2];

	assert_non_null(next);
	strcpy(f->cfg.oauth_signing_alg, "ES256");
	start(f);
	new_next_key(f, "ES256", next);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, reader_main, &r[i]), 0);
	for (int i = 0; i < 30; i++) {
		if (i == 15) /* the signing key changes under the readers */
			assert_int_equal(
			    store_oauth_key_set_state(f->s, next->kid, STORE_OAUTH_KEY_CURRENT),
			    STORE_OK);
		reload(f);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(r[i].ok, r[i].rounds);
	}
	free(next);
}

/* ---- documents ---- */

static const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static void test_oauth_metadata_as_document_follows_rfc8414(void **state)
{
	struct fx *f = *state;
	const struct oauth_snapshot *s;
	json_t *d;

	strcpy(f->cfg.oauth_signing_alg, "ES256");
	start(f);
	s = oauth_snapshot_get();
	d = oauth_metadata_as(s);
	assert_non_null(d);
	assert_string_equal(jstr(d, "issuer"), "https://sip.example.com:8443");
	assert_string_equal(jstr(d, "token_endpoint"), "https://sip.example.com:8443/oauth/token");
	assert_string_equal(jstr(d, "jwks_uri"), "https://sip.example.com:8443/oauth/jwks");
	assert_string_equal(jstr(d, "introspection_endpoint"),
			    "https://sip.example.com:8443/oauth/introspect");
	assert_string_equal(jstr(d, "revocation_endpoint"),
			    "https://sip.example.com:8443/oauth/revoke");
	assert_int_equal(json_array_size(json_object_get(d, "grant_types_supported")), 3);
	assert_string_equal(
	    json_string_value(json_array_get(json_object_get(d, "grant_types_supported"), 2)),
	    "urn:ietf:params:oauth:grant-type:token-exchange");
	assert_int_equal(
	    json_array_size(json_object_get(d, "token_endpoint_auth_methods_supported")), 3);
	/* RFC 8705 §2.1 next to §2.2 */
	assert_string_equal(json_string_value(json_array_get(
				json_object_get(d, "token_endpoint_auth_methods_supported"), 1)),
			    "tls_client_auth");
	/* no authorization endpoint: no response types (RFC 8414 §3.2: no empty arrays) */
	assert_null(json_object_get(d, "response_types_supported"));
	assert_null(json_object_get(d, "authorization_endpoint"));
	assert_null(json_object_get(d, "rtcauth_authorization_server"));
	json_decref(d);
	oauth_snapshot_put(s);
}

static void test_oauth_jwks_and_ms_metadata_list_the_published_certificates(void **state)
{
	struct fx *f = *state;
	struct store_oauth_key *next = calloc(1, sizeof(*next));
	const struct oauth_snapshot *s;
	json_t *jwks, *ms, *k;
	char iss[128];

	assert_non_null(next);
	strcpy(f->cfg.oauth_signing_alg, "ES256");
	start(f);
	new_next_key(f, "RS256", next);
	reload(f);
	s = oauth_snapshot_get();
	jwks = oauth_metadata_jwks(s);
	ms = oauth_metadata_ms(s);
	assert_non_null(jwks);
	assert_non_null(ms);
	assert_int_equal(json_array_size(json_object_get(jwks, "keys")), 2);
	k = json_array_get(json_object_get(jwks, "keys"), 1);
	assert_string_equal(jstr(k, "kid"), next->kid);
	assert_string_equal(jstr(k, "use"), "sig");
	assert_string_equal(jstr(k, "alg"), "RS256");
	assert_string_equal(jstr(k, "x5t"), next->x5t);
	assert_string_equal(jstr(k, "x5t#S256"), next->x5t_s256);
	assert_int_equal(json_array_size(json_object_get(k, "x5c")), 1);
	assert_null(json_object_get(k, "d"));

	snprintf(iss, sizeof(iss), "%s@example.com", OAUTH_PRINCIPAL_LYNC);
	assert_string_equal(jstr(ms, "issuer"), iss);
	assert_string_equal(jstr(ms, "version"), "1.0");
	assert_string_equal(jstr(ms, "name"), "rtcauth");
	assert_string_equal(jstr(ms, "realm"), "example.com");
	assert_string_equal(jstr(ms, "serviceName"), OAUTH_PRINCIPAL_LYNC);
	assert_int_equal(jstr(ms, "id")[0], '_');
	assert_int_equal(strlen(jstr(ms, "id")), 37);
	assert_string_equal(
	    json_string_value(json_array_get(json_object_get(ms, "allowedAudiences"), 0)), iss);
	assert_int_equal(json_array_size(json_object_get(ms, "keys")), 2);
	for (size_t i = 0; i < 2; i++) {
		json_t *mk = json_array_get(json_object_get(ms, "keys"), i);
		json_t *jk = json_array_get(json_object_get(jwks, "keys"), i);
		json_t *kv = json_object_get(mk, "keyValue");
		assert_string_equal(jstr(mk, "usage"), "signing");
		assert_string_equal(jstr(json_object_get(mk, "keyinfo"), "x5t"), jstr(jk, "x5t"));
		assert_string_equal(jstr(kv, "type"), "x509Certificate");
		assert_string_equal(jstr(kv, "value"), json_string_value(json_array_get(
							   json_object_get(jk, "x5c"), 0)));
	}
	k = json_array_get(json_object_get(ms, "endpoints"), 0);
	assert_string_equal(jstr(k, "location"), "https://sip.example.com:8443/oauth/token");
	assert_string_equal(jstr(k, "protocol"), "OAuth2");
	assert_string_equal(jstr(k, "usage"), "issuance");
	json_decref(jwks);
	json_decref(ms);
	oauth_snapshot_put(s);
	free(next);
}

static void test_oauth_routes_register_the_three_documents(void **state)
{
	unsigned allowed = 0;
	void *arg;

	(void)state;
	http_routes_clear();
	assert_int_equal(oauth_metadata_routes_add(), 0);
	assert_non_null(
	    http_route_lookup("/.well-known/oauth-authorization-server", HTTP_GET, &allowed, &arg));
	assert_non_null(http_route_lookup("/oauth/jwks", HTTP_GET, &allowed, &arg));
	assert_non_null(http_route_lookup("/metadata/json/1", HTTP_GET, &allowed, &arg));
	assert_null(http_route_lookup("/oauth/jwks", HTTP_POST, &allowed, &arg));
	assert_int_equal(allowed & HTTP_GET, HTTP_GET);
	assert_int_equal(oauth_metadata_routes_add(), -1); /* already there */
	http_routes_clear();
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_oauth_config_defaults_follow_server_and_http),
	    T(test_oauth_config_issuer_has_no_port_on_443),
	    T(test_oauth_config_takes_every_key),
	    T(test_oauth_config_errors_name_file_line_and_fix),
	    T(test_oauth_config_default_lifetime_must_not_exceed_max),
	    T(test_oauth_first_start_creates_a_current_key),
	    T(test_oauth_second_start_keeps_the_current_key),
	    T(test_oauth_start_refuses_a_missing_private_key_naming_the_file),
	    T(test_oauth_partners_load_from_certs_and_jwks_and_bad_ones_are_left_out),
	    T(test_oauth_sign_output_verifies_with_own_keys_and_has_x5t_kid_alg),
	    T(test_oauth_rollover_publishes_next_before_it_signs),
	    T(test_oauth_reload_failure_keeps_the_old_snapshot),
	    T(test_oauth_reload_before_start_fails),
	    T(test_oauth_readers_never_see_a_half_swapped_snapshot),
	    T(test_oauth_metadata_as_document_follows_rfc8414),
	    T(test_oauth_jwks_and_ms_metadata_list_the_published_certificates),
	    T(test_oauth_routes_register_the_three_documents),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
