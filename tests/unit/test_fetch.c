/* Partner metadata documents (oauth/fetch.h): the three shapes, and every
 * way a document can be wrong; the URL rules; the external authorization
 * server client's pieces that need no network (oauth/extas.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <jansson.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/b64.h"
#include "core/config.h"
#include "oauth/extas.h"
#include "oauth/fetch.h"
#include "oauth/jose.h"
#include "oauth/oauth.h"

struct cert {
	unsigned char *der;
	int len;
	char *b64; /* standard base64 of der */
	struct jose_key *key;
};

static struct cert rsa_cert, ec_cert;

static void make_cert(struct cert *c, EVP_PKEY *pk, const char *cn)
{
	X509 *x = X509_new();
	size_t cap;

	assert_non_null(x);
	assert_non_null(pk);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_set_pubkey(x, pk);
	assert_true(X509_sign(x, pk, EVP_sha256()) > 0);
	c->der = NULL;
	c->len = i2d_X509(x, &c->der);
	assert_true(c->len > 0);
	cap = b64_std_len((size_t)c->len) + 1;
	c->b64 = malloc(cap);
	assert_true(b64_std_encode(c->der, (size_t)c->len, c->b64, cap) > 0);
	assert_int_equal(
	    jose_key_from_cert_der(c->der, (size_t)c->len, JOSE_ALG_UNKNOWN, NULL, &c->key), 0);
	X509_free(x);
	EVP_PKEY_free(pk);
}

static int group_setup(void **state)
{
	(void)state;
	make_cert(&rsa_cert, EVP_RSA_gen(2048), "partner rsa");
	make_cert(&ec_cert, EVP_EC_gen("P-256"), "partner ec");
	return 0;
}

static int group_teardown(void **state)
{
	struct cert *cs[] = {&rsa_cert, &ec_cert};

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		OPENSSL_free(cs[i]->der);
		free(cs[i]->b64);
		jose_key_free(cs[i]->key);
	}
	return 0;
}

static char err[FETCH_ERR_MAX];

static int parse(const char *text, struct fetch_doc *doc)
{
	err[0] = '\0';
	return fetch_doc_parse(text, strlen(text), doc, err, sizeof(err));
}

/* parse must fail, say something, and leave nothing behind */
static void refused(const char *text, const char *why)
{
	struct fetch_doc doc;

	assert_int_equal(parse(text, &doc), -1);
	assert_null(doc.jwks);
	assert_int_equal(doc.n_keys, 0);
	if (!strstr(err, why))
		fail_msg("for %.80s: expected '%s' in '%s'", text, why, err);
}

/* A JWKS of the given keys (their own JWK form, kid set). */
static char *jwks_of(struct jose_key **keys, size_t n)
{
	json_t *arr = json_array(), *o;
	char *s;

	for (size_t i = 0; i < n; i++) {
		json_t *j = NULL;
		assert_int_equal(jose_key_to_jwk(keys[i], &j), 0);
		json_array_append_new(arr, j);
	}
	o = json_pack("{s:o}", "keys", arr);
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

static char *ms_doc(const char *issuer, const char *value1, const char *usage2, const char *value2)
{
	char *s = malloc(16384 + strlen(value1) + (value2 ? strlen(value2) : 0));

	sprintf(s,
		"{\"id\":\"_1\",\"version\":\"1.0\",\"name\":\"mail\",\"realm\":\"contoso.com\","
		"\"serviceName\":\"00000002-0000-0ff1-ce00-000000000000\",\"issuer\":\"%s\","
		"\"allowedAudiences\":[\"x\"],\"keys\":[{\"usage\":\"signing\",\"keyinfo\":{"
		"\"x5t\":\"abc\"},\"keyValue\":{\"type\":\"x509Certificate\",\"value\":\"%s\"}}"
		"%s%s%s%s%s],\"endpoints\":[{\"location\":\"https://mail.contoso.com/oauth/"
		"token\",\"protocol\":\"OAuth2\",\"usage\":\"issuance\"}]}",
		issuer, value1, value2 ? ",{\"usage\":\"" : "", value2 ? usage2 : "",
		value2 ? "\",\"keyValue\":{\"type\":\"x509Certificate\",\"value\":\"" : "",
		value2 ? value2 : "", value2 ? "\"}}" : "");
	return s;
}

/* ---- JWKS ---- */

static void test_fetch_jwks_keeps_usable_keys_with_their_kid(void **state)
{
	struct jose_key *ks[] = {rsa_cert.key, ec_cert.key};
	char *text = jwks_of(ks, 2);
	struct fetch_doc doc;
	struct jose_keyset set;

	(void)state;
	assert_int_equal(parse(text, &doc), 0);
	assert_int_equal(doc.kind, FETCH_DOC_JWKS);
	assert_int_equal(doc.n_keys, 2);
	assert_non_null(doc.jwks);
	/* the stored text loads with jose and finds each key by kid and x5t */
	assert_int_equal(jose_keyset_from_jwks(doc.jwks, strlen(doc.jwks), 0, &set, NULL), 0);
	assert_int_equal(set.n, 2);
	assert_non_null(jose_keyset_find(&set, rsa_cert.key->kid, NULL, NULL));
	assert_non_null(jose_keyset_find(&set, NULL, ec_cert.key->x5t, NULL));
	jose_keyset_clear(&set);
	fetch_doc_clear(&doc);
	free(text);
}

static void test_fetch_jwks_skips_keys_it_cannot_use_but_needs_one(void **state)
{
	struct jose_key *ks[] = {rsa_cert.key};
	char *one = jwks_of(ks, 1), buf[8192];
	struct fetch_doc doc;

	(void)state;
	/* an "oct" key next to a usable one: skipped */
	snprintf(buf, sizeof(buf), "{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA\"},%s",
		 strchr(one, '[') + 1);
	assert_int_equal(parse(buf, &doc), 0);
	assert_int_equal(doc.n_keys, 1);
	fetch_doc_clear(&doc);
	free(one);
	refused("{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA\"}]}", "no key");
	refused("{\"keys\":[{\"kty\":\"RSA\",\"n\":5,\"e\":\"AQAB\"}]}", "JWKS cannot be used");
	refused("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\",\"d\":\"AQAB\"}]}",
		"JWKS cannot be used");
}

/* ---- RFC 8414 ---- */

static void test_fetch_rfc8414_gives_issuer_jwks_uri_and_token_endpoint(void **state)
{
	struct fetch_doc doc;

	(void)state;
	assert_int_equal(parse("{\"issuer\":\"https://as.example\",\"jwks_uri\":"
			       "\"https://as.example/jwks\",\"token_endpoint\":"
			       "\"https://as.example/token\",\"grant_types_supported\":[]}",
			       &doc),
			 0);
	assert_int_equal(doc.kind, FETCH_DOC_RFC8414);
	assert_null(doc.jwks);
	assert_string_equal(doc.issuer, "https://as.example");
	assert_string_equal(doc.jwks_uri, "https://as.example/jwks");
	assert_string_equal(doc.token_endpoint, "https://as.example/token");
	fetch_doc_clear(&doc);
}

static void test_fetch_rfc8414_refuses_missing_issuer_and_non_https_urls(void **state)
{
	(void)state;
	refused("{\"jwks_uri\":\"https://as.example/jwks\"}", "issuer");
	refused("{\"issuer\":7,\"jwks_uri\":\"https://as.example/jwks\"}", "issuer");
	refused("{\"issuer\":\"i\",\"jwks_uri\":\"http://as.example/jwks\"}", "jwks_uri");
	refused("{\"issuer\":\"i\",\"jwks_uri\":\"https://user@as.example/jwks\"}", "jwks_uri");
	refused("{\"issuer\":\"i\",\"jwks_uri\":[\"https://as.example/jwks\"]}", "jwks_uri");
	refused("{\"issuer\":\"i\",\"token_endpoint\":\"ftp://as.example/t\"}", "token_endpoint");
}

/* ---- Microsoft auth metadata ---- */

static void test_fetch_ms_metadata_certificates_become_a_jwks(void **state)
{
	char *text = ms_doc("00000002-0000-0ff1-ce00-000000000000@contoso.com", rsa_cert.b64,
			    "signing", ec_cert.b64);
	struct fetch_doc doc;
	struct jose_keyset set;

	(void)state;
	assert_int_equal(parse(text, &doc), 0);
	assert_int_equal(doc.kind, FETCH_DOC_MS);
	assert_int_equal(doc.n_keys, 2);
	assert_string_equal(doc.issuer, "00000002-0000-0ff1-ce00-000000000000");
	assert_string_equal(doc.realm, "contoso.com");
	assert_string_equal(doc.token_endpoint, "https://mail.contoso.com/oauth/token");
	assert_int_equal(jose_keyset_from_jwks(doc.jwks, strlen(doc.jwks), 0, &set, NULL), 0);
	/* Microsoft tokens name the certificate by x5t */
	assert_non_null(jose_keyset_find(&set, NULL, rsa_cert.key->x5t, NULL));
	assert_non_null(jose_keyset_find(&set, NULL, ec_cert.key->x5t, NULL));
	assert_int_equal(set.keys[0]->alg, JOSE_ALG_RS256);
	jose_keyset_clear(&set);
	fetch_doc_clear(&doc);
	free(text);
}

static void test_fetch_ms_skips_other_usages_but_needs_a_signing_cert(void **state)
{
	char *text = ms_doc("id@realm", rsa_cert.b64, "encryption", ec_cert.b64);
	struct fetch_doc doc;

	(void)state;
	assert_int_equal(parse(text, &doc), 0);
	assert_int_equal(doc.n_keys, 1);
	fetch_doc_clear(&doc);
	free(text);
	refused("{\"keys\":[{\"usage\":\"encryption\",\"keyValue\":{\"type\":\"x509Certificate\","
		"\"value\":\"AAAA\"}}]}",
		"no signing certificate");
}

static void test_fetch_ms_refuses_bad_certificates_and_issuers(void **state)
{
	char *t;

	(void)state;
	t = ms_doc("id@realm", "not base64!", NULL, NULL);
	refused(t, "base64");
	free(t);
	t = ms_doc("id@realm", "AAAA", NULL, NULL);
	refused(t, "certificate cannot be used");
	free(t);
	/* a bad second certificate fails the document too (fuzzer finding) */
	t = ms_doc("id@realm", rsa_cert.b64, "signing", "AAAA");
	refused(t, "keys[1]");
	free(t);
	t = ms_doc("@realm", rsa_cert.b64, NULL, NULL);
	refused(t, "id@realm");
	free(t);
	t = ms_doc("id@", rsa_cert.b64, NULL, NULL);
	refused(t, "id@realm");
	free(t);
	refused("{\"keys\":[{\"usage\":\"signing\",\"keyValue\":{\"value\":5}}]}", "value");
	refused("{\"keys\":[{\"usage\":7,\"keyValue\":{\"value\":\"AAAA\"}}]}", "keyValue");
	refused("{\"issuer\":[],\"keys\":[{\"keyValue\":{\"value\":\"AAAA\"}}]}", "issuer");
}

static void test_fetch_ms_keys_too_big_for_the_store_are_refused(void **state)
{
	/* 64 copies of one certificate: a small document, a JWKS over 64 KiB */
	size_t n = 64, cap = n * (strlen(rsa_cert.b64) + 128) + 256, o;
	char *t = malloc(cap);

	(void)state;
	o = (size_t)sprintf(t, "{\"keys\":[");
	for (size_t i = 0; i < n; i++)
		o += (size_t)sprintf(t + o,
				     "%s{\"usage\":\"signing\",\"keyValue\":{\"type\":"
				     "\"x509Certificate\",\"value\":\"%s\"}}",
				     i ? "," : "", rsa_cert.b64);
	sprintf(t + o, "]}");
	refused(t, "more than the");
	free(t);
}

/* ---- garbage, size, types ---- */

static void test_fetch_refuses_garbage(void **state)
{
	struct fetch_doc doc;

	(void)state;
	refused("", "not JSON");
	refused("this is not { json", "not JSON");
	refused("<html>502 Bad Gateway</html>", "not JSON");
	refused("[1,2,3]", "not a JSON object");
	refused("\"keys\"", "not JSON");
	refused("{}", "not a JWKS");
	refused("{\"issuer\":\"x\"}", "not a JWKS");
	/* a NUL inside the document */
	assert_int_equal(fetch_doc_parse("{\"keys\":[]}\0{}", 14, &doc, err, sizeof(err)), -1);
}

static void test_fetch_refuses_huge_documents(void **state)
{
	size_t n = FETCH_MAX_BODY + 1;
	char *big = malloc(n + 1);
	struct fetch_doc doc;

	(void)state;
	memset(big, ' ', n);
	memcpy(big + n - 2, "{}", 2);
	big[n] = '\0';
	assert_int_equal(fetch_doc_parse(big, n, &doc, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "larger than"));
	free(big);
}

static void test_fetch_refuses_wrong_types(void **state)
{
	char *t = malloc(80 * 70 + 64);
	size_t o;

	(void)state;
	refused("{\"keys\":{}}", "array");
	refused("{\"keys\":\"abc\"}", "array");
	refused("{\"keys\":[]}", "array of 1");
	refused("{\"keys\":null}", "array");
	refused("{\"keys\":[1]}", "no key");
	refused("{\"keys\":[\"x\"]}", "no key");
	o = (size_t)sprintf(t, "{\"keys\":[");
	for (int i = 0; i <= FETCH_MAX_KEYS; i++)
		o += (size_t)sprintf(t + o, "%s{\"kty\":\"oct\",\"k\":\"AA\"}", i ? "," : "");
	sprintf(t + o, "]}");
	refused(t, "array of 1");
	free(t);
}

static void test_fetch_refuses_duplicate_members(void **state)
{
	(void)state;
	refused("{\"issuer\":\"a\",\"issuer\":\"b\",\"jwks_uri\":\"https://x/j\"}", "not JSON");
}

/* ---- URLs and requests without a network ---- */

static void test_fetch_url_rules(void **state)
{
	(void)state;
	assert_true(fetch_url_ok("https://partner.example/metadata/json/1"));
	assert_true(fetch_url_ok("HTTPS://127.0.0.1:8443/jwks"));
	assert_false(fetch_url_ok("http://partner.example/jwks"));
	assert_false(fetch_url_ok("file:///etc/passwd"));
	assert_false(fetch_url_ok("https://"));
	assert_false(fetch_url_ok("https:///path"));
	assert_false(fetch_url_ok("https://user:pw@partner.example/"));
	assert_false(fetch_url_ok("https://partner.example/a b"));
	assert_false(fetch_url_ok("https://partner.example/\n"));
	assert_false(fetch_url_ok(NULL));
}

static void test_fetch_https_refuses_other_schemes_before_any_transfer(void **state)
{
	char *body = (char *)1;
	size_t len = 7;

	(void)state;
	assert_int_equal(
	    fetch_https("http://127.0.0.1:1/", NULL, &body, &len, NULL, err, sizeof(err)), -1);
	assert_null(body);
	assert_int_equal(len, 0);
	assert_non_null(strstr(err, "https"));
}

static void test_extas_partner_resource_prefers_a_registered_target(void **state)
{
	struct store_partner p;
	char buf[EXTAS_RESOURCE_MAX];

	(void)state;
	memset(&p, 0, sizeof(p));
	strcpy(p.issuer, "00000002-0000-0ff1-ce00-000000000000");
	strcpy(p.realm, "contoso.com");
	strcpy(p.resources, "users.read,00000002-0000-0ff1-ce00-000000000000/mail.contoso.com@"
			    "contoso.com");
	assert_int_equal(extas_partner_resource(&p, buf, sizeof(buf)), 0);
	assert_string_equal(buf,
			    "00000002-0000-0ff1-ce00-000000000000/mail.contoso.com@contoso.com");
	/* else: the host of its metadata URL */
	strcpy(p.resources, "users.read");
	strcpy(p.metadata_url, "https://Mail.contoso.com:443/metadata/json/1");
	assert_int_equal(extas_partner_resource(&p, buf, sizeof(buf)), 0);
	assert_string_equal(buf,
			    "00000002-0000-0ff1-ce00-000000000000/Mail.contoso.com@contoso.com");
	/* nothing to tell */
	p.metadata_url[0] = '\0';
	assert_int_equal(extas_partner_resource(&p, buf, sizeof(buf)), -1);
}

static int never_sign(void *arg, const json_t *h, const json_t *p, char **out, size_t *len)
{
	(void)arg;
	(void)h;
	(void)p;
	(void)len;
	*out = NULL;
	fail_msg("must not sign without an authorization server");
	return -1;
}

static void test_extas_request_needs_an_authorization_server(void **state)
{
	struct extas_client c = {"", "me@realm", NULL, NULL, never_sign, NULL};
	char *tok = (char *)1, e[256];
	int64_t exp = 5;

	(void)state;
	assert_int_equal(extas_request(&c, "r/h@x", 1000, &tok, &exp, e, sizeof(e)), -1);
	assert_null(tok);
	assert_int_equal(exp, 0);
	assert_non_null(strstr(e, "authorization_server"));
	c.metadata_url = "http://as.example/.well-known/oauth-authorization-server";
	assert_int_equal(extas_request(&c, "r/h@x", 1000, &tok, &exp, e, sizeof(e)), -1);
	assert_non_null(strstr(e, "https"));
}

/* ---- the daemon's fetcher, against a closed local port ---- */

struct fetcher_fx {
	char dir[64];
	struct config cfg;
	struct store *s;
	struct event_base *base;
	int reloads, done_calls, done_rc;
	char done_err[FETCH_ERR_MAX];
};

static struct fetcher_fx *cur;

static int count_reload(char *e, size_t elen)
{
	(void)e;
	(void)elen;
	cur->reloads++;
	return 0;
}

static void on_done(void *arg, int rc, const char *error)
{
	struct fetcher_fx *f = arg;

	f->done_calls++;
	f->done_rc = rc;
	snprintf(f->done_err, sizeof(f->done_err), "%s", error);
	event_base_loopbreak(f->base);
}

static void add_partner(struct fetcher_fx *f, const char *name, const char *url)
{
	struct store_partner p;

	memset(&p, 0, sizeof(p));
	snprintf(p.name, sizeof(p.name), "%s", name);
	strcpy(p.realm, "example.test");
	p.enabled = true;
	p.lifetime = 3600;
	p.source = STORE_PARTNER_METADATA;
	snprintf(p.metadata_url, sizeof(p.metadata_url), "%s", url);
	assert_int_equal(store_partner_add(f->s, &p), STORE_OK);
}

static int64_t last_fetch(struct fetcher_fx *f, const char *name, char *error, size_t cap)
{
	struct store_partner p;

	assert_int_equal(store_partner_get(f->s, name, &p), STORE_OK);
	if (error)
		snprintf(error, cap, "%s", p.last_error);
	store_partner_clear(&p);
	return p.last_fetch;
}

static int fetcher_setup(void **state)
{
	struct fetcher_fx *f = calloc(1, sizeof(*f));
	char e[256];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/rtc-fetch-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	config_defaults(&f->cfg);
	snprintf(f->cfg.sqlite_path, sizeof(f->cfg.sqlite_path), "%s/rtcauth.db", f->dir);
	assert_int_equal(store_open(f->cfg.sqlite_path, STORE_CREATE, 1000, &f->s, e, sizeof(e)),
			 STORE_OK);
	/* port 1 on loopback: refused at once, nothing leaves the machine */
	add_partner(f, "down", "https://127.0.0.1:1/jwks");
	evthread_use_pthreads();
	f->base = event_base_new();
	cur = f;
	*state = f;
	return 0;
}

static int fetcher_teardown(void **state)
{
	struct fetcher_fx *f = *state;
	char cmd[128];

	oauth_fetch_stop();
	event_base_free(f->base);
	store_close(f->s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Run the main loop until done is called or ms pass. */
static void loop_for(struct fetcher_fx *f, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	event_base_loopexit(f->base, &tv);
	event_base_dispatch(f->base);
}

static void test_fetcher_refresh_answers_with_the_error_and_records_it(void **state)
{
	struct fetcher_fx *f = *state;
	char e[256], error[STORE_NAME_MAX];

	assert_int_equal(oauth_fetch_refresh("down", on_done, f), -1); /* not started */
	assert_int_equal(oauth_fetch_start(f->base, &f->cfg, count_reload, e, sizeof(e)), 0);
	loop_for(f, 3000); /* the first pass fetches "down" once */
	assert_true(last_fetch(f, "down", error, sizeof(error)) > 0);
	assert_non_null(strstr(error, "connect"));
	assert_int_equal(oauth_fetch_refresh("down", on_done, f), 0);
	loop_for(f, 15000);
	assert_int_equal(f->done_calls, 1);
	assert_int_equal(f->done_rc, -1);
	assert_non_null(strstr(f->done_err, "127.0.0.1:1"));
	assert_int_equal(f->reloads, 0); /* nothing changed: the old keys stay */
	/* an unknown partner is an error too */
	assert_int_equal(oauth_fetch_refresh("nosuch", on_done, f), 0);
	loop_for(f, 5000);
	assert_int_equal(f->done_calls, 2);
	assert_non_null(strstr(f->done_err, "no partner"));
}

static void test_fetcher_unknown_kid_hints_are_rate_limited(void **state)
{
	struct fetcher_fx *f = *state;
	char e[256];

	assert_int_equal(oauth_fetch_start(f->base, &f->cfg, count_reload, e, sizeof(e)), 0);
	loop_for(f, 2000); /* the first pass */
	assert_int_equal(store_partner_set_fetch(f->s, "down", 0, "", NULL), STORE_OK);
	oauth_fetch_hint_unknown_kid("down");
	loop_for(f, 2000);
	assert_true(last_fetch(f, "down", NULL, 0) > 0); /* the first hint fetches */
	assert_int_equal(store_partner_set_fetch(f->s, "down", 0, "", NULL), STORE_OK);
	oauth_fetch_hint_unknown_kid("down");
	oauth_fetch_hint_unknown_kid("down");
	loop_for(f, 2000);
	assert_int_equal(last_fetch(f, "down", NULL, 0), 0); /* within 5 min: dropped */
}

static void test_fetcher_refetches_on_its_schedule(void **state)
{
	struct fetcher_fx *f = *state;
	char e[256];

	f->cfg.oauth_metadata_refresh = 1; /* config allows 60 s at least; 1 s here */
	assert_int_equal(oauth_fetch_start(f->base, &f->cfg, count_reload, e, sizeof(e)), 0);
	loop_for(f, 1000);
	assert_true(last_fetch(f, "down", NULL, 0) > 0);
	assert_int_equal(store_partner_set_fetch(f->s, "down", 0, "", NULL), STORE_OK);
	loop_for(f, 2500);
	assert_true(last_fetch(f, "down", NULL, 0) > 0); /* fetched again, unasked */
}

static void test_fetcher_stop_answers_what_is_queued(void **state)
{
	struct fetcher_fx *f = *state;
	char e[256];

	assert_int_equal(oauth_fetch_start(f->base, &f->cfg, count_reload, e, sizeof(e)), 0);
	assert_int_equal(oauth_fetch_refresh("down", on_done, f), 0);
	assert_int_equal(oauth_fetch_refresh("down", on_done, f), 0);
	oauth_fetch_stop();
	/* each request answered exactly once, on this thread, and no more after */
	assert_int_equal(f->done_calls, 2);
	assert_int_equal(oauth_fetch_refresh("down", on_done, f), -1);
}

/* ---- extas_get_token: who may get a token from the authorization server ---- */

static void test_extas_get_token_only_for_enabled_use_oauth_server_partners(void **state)
{
	struct fetcher_fx *f = *state;
	struct store_partner p;
	char e[1024], *tok = (char *)1;
	int64_t exp = 9;

	snprintf(f->cfg.state_dir, sizeof(f->cfg.state_dir), "%s", f->dir);
	strcpy(f->cfg.domain, "example.test");
	strcpy(f->cfg.fqdn, "sip.example.test");
	config_oauth_defaults(&f->cfg);
	memset(&p, 0, sizeof(p));
	strcpy(p.name, "mail");
	strcpy(p.issuer, "00000002-0000-0ff1-ce00-000000000000");
	strcpy(p.realm, "example.test");
	strcpy(p.resources, "00000002-0000-0ff1-ce00-000000000000/mail.example.test@example.test");
	p.enabled = true;
	p.lifetime = 3600;
	p.source = STORE_PARTNER_JWKS;
	p.use_oauth_server = true;
	assert_int_equal(store_partner_add(f->s, &p), STORE_OK);
	assert_int_equal(oauth_start(&f->cfg, f->s, e, sizeof(e)), 0);
	/* "down" is not registered --use-oauth-server; "nosuch" does not exist */
	assert_int_equal(extas_get_token("down", NULL, &tok, &exp), -1);
	assert_null(tok);
	assert_int_equal(exp, 0);
	assert_int_equal(extas_get_token("nosuch", NULL, &tok, &exp), -1);
	/* no [oauth] authorization_server */
	assert_int_equal(extas_get_token("mail", NULL, &tok, &exp), -1);
	/* one that cannot be reached: an error, no token */
	strcpy(f->cfg.oauth_authorization_server,
	       "https://127.0.0.1:1/.well-known/oauth-authorization-server");
	assert_int_equal(oauth_reload(&f->cfg, f->s, e, sizeof(e)), 0);
	assert_int_equal(extas_get_token("mail", NULL, &tok, &exp), -1);
	assert_null(tok);
	/* disabled: refused even with a server */
	assert_int_equal(store_partner_set_enabled(f->s, "mail", false), STORE_OK);
	assert_int_equal(oauth_reload(&f->cfg, f->s, e, sizeof(e)), 0);
	assert_int_equal(extas_get_token("mail", NULL, &tok, &exp), -1);
	oauth_stop();
}

/* ---- a tiny HTTPS authorization server in a thread, for the token cache ---- */

struct as_srv {
	SSL_CTX *ctx;
	int fd, port;
	pthread_t thr;
	int posts; /* token requests answered */
	int expires_in;
	char last_form[8192];
};

static void as_answer(struct as_srv *a, SSL *ssl)
{
	char req[8192], body[1024], resp[2048];
	int n = 0, r;
	char *hdr_end, *cl;

	while (n < (int)sizeof(req) - 1 &&
	       (r = SSL_read(ssl, req + n, (int)sizeof(req) - 1 - n)) > 0) {
		n += r;
		req[n] = '\0';
		hdr_end = strstr(req, "\r\n\r\n");
		if (!hdr_end)
			continue;
		cl = strcasestr(req, "Content-Length:");
		if (!cl || (int)(hdr_end + 4 - req) + atoi(cl + 15) <= n)
			break;
	}
	req[n] = '\0';
	if (strncmp(req, "GET /.well-known/oauth-authorization-server ", 44) == 0) {
		snprintf(body, sizeof(body),
			 "{\"issuer\":\"https://127.0.0.1:%d\",\"token_endpoint\":"
			 "\"https://127.0.0.1:%d/token\"}",
			 a->port, a->port);
	} else if (strncmp(req, "POST /token ", 12) == 0) {
		a->posts++;
		hdr_end = strstr(req, "\r\n\r\n");
		snprintf(a->last_form, sizeof(a->last_form), "%s", hdr_end ? hdr_end + 4 : "");
		snprintf(body, sizeof(body),
			 "{\"access_token\":\"token-%d\",\"token_type\":\"Bearer\","
			 "\"expires_in\":%d}",
			 a->posts, a->expires_in);
	} else {
		snprintf(body, sizeof(body), "{}");
	}
	snprintf(resp, sizeof(resp),
		 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
		 "%zu\r\nConnection: close\r\n\r\n%s",
		 strlen(body), body);
	SSL_write(ssl, resp, (int)strlen(resp));
}

static void *as_main(void *arg)
{
	struct as_srv *a = arg;
	int c;

	while ((c = accept(a->fd, NULL, NULL)) >= 0) {
		SSL *ssl = SSL_new(a->ctx);

		SSL_set_fd(ssl, c);
		if (SSL_accept(ssl) == 1)
			as_answer(a, ssl);
		SSL_shutdown(ssl);
		SSL_free(ssl);
		close(c);
	}
	return NULL;
}

/* A self-signed P-256 certificate for IP 127.0.0.1, written to ca_path. */
static void as_start(struct as_srv *a, const char *ca_path)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sin);
	FILE *f;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"127.0.0.1", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_set_pubkey(x, pk);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "IP:127.0.0.1");
	assert_non_null(ext);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(x, pk, EVP_sha256()) > 0);
	f = fopen(ca_path, "w");
	assert_non_null(f);
	PEM_write_X509(f, x);
	fclose(f);
	a->ctx = SSL_CTX_new(TLS_server_method());
	assert_int_equal(SSL_CTX_use_certificate(a->ctx, x), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(a->ctx, pk), 1);
	X509_free(x);
	EVP_PKEY_free(pk);
	a->fd = socket(AF_INET, SOCK_STREAM, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(a->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(a->fd, 8), 0);
	getsockname(a->fd, (struct sockaddr *)&sin, &sl);
	a->port = ntohs(sin.sin_port);
	assert_int_equal(pthread_create(&a->thr, NULL, as_main, a), 0);
}

static void as_stop(struct as_srv *a)
{
	shutdown(a->fd, SHUT_RDWR);
	close(a->fd);
	pthread_join(a->thr, NULL);
	SSL_CTX_free(a->ctx);
}

static void test_extas_caches_tokens_until_shortly_before_they_expire(void **state)
{
	struct fetcher_fx *f = *state;
	struct store_partner p;
	struct as_srv as = {.expires_in = 3600};
	char e[1024], *t1 = NULL, *t2 = NULL, *t3 = NULL, *t4 = NULL;
	int64_t x1, x2, x3, x4;

	snprintf(f->cfg.state_dir, sizeof(f->cfg.state_dir), "%s", f->dir);
	snprintf(f->cfg.oauth_fetch_ca_file, sizeof(f->cfg.oauth_fetch_ca_file), "%s/as.pem",
		 f->dir);
	strcpy(f->cfg.domain, "example.test");
	strcpy(f->cfg.fqdn, "sip.example.test");
	config_oauth_defaults(&f->cfg);
	as_start(&as, f->cfg.oauth_fetch_ca_file);
	snprintf(f->cfg.oauth_authorization_server, sizeof(f->cfg.oauth_authorization_server),
		 "https://127.0.0.1:%d/.well-known/oauth-authorization-server", as.port);
	memset(&p, 0, sizeof(p));
	strcpy(p.name, "mail");
	strcpy(p.issuer, "00000002-0000-0ff1-ce00-000000000000");
	strcpy(p.realm, "example.test");
	strcpy(p.resources, "00000002-0000-0ff1-ce00-000000000000/mail.example.test@example.test");
	p.enabled = true;
	p.lifetime = 3600;
	p.source = STORE_PARTNER_JWKS;
	p.use_oauth_server = true;
	assert_int_equal(store_partner_add(f->s, &p), STORE_OK);
	assert_int_equal(oauth_start(&f->cfg, f->s, e, sizeof(e)), 0);
	assert_int_equal(oauth_fetch_start(f->base, &f->cfg, count_reload, e, sizeof(e)), 0);

	assert_int_equal(extas_get_token("mail", NULL, &t1, &x1), 0);
	assert_string_equal(t1, "token-1");
	assert_int_equal(as.posts, 1);
	/* client_credentials, our client id, private_key_jwt, the partner's resource */
	assert_non_null(strstr(as.last_form, "grant_type=client_credentials"));
	assert_non_null(strstr(as.last_form, "client_id=00000004-0000-0ff1-ce00-000000000000%40"
					     "example.test"));
	assert_non_null(strstr(as.last_form, "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%"
					     "3Aclient-assertion-type%3Ajwt-bearer"));
	assert_non_null(strstr(as.last_form, "resource=00000002-0000-0ff1-ce00-000000000000%2F"
					     "mail.example.test%40example.test"));
	/* the same again: from the cache, no request */
	assert_int_equal(extas_get_token("mail", NULL, &t2, &x2), 0);
	assert_string_equal(t2, "token-1");
	assert_int_equal(x2, x1);
	assert_int_equal(as.posts, 1);
	/* another resource: another token */
	assert_int_equal(extas_get_token("mail", "other/host@example.test", &t3, &x3), 0);
	assert_string_equal(t3, "token-2");
	assert_int_equal(as.posts, 2);
	/* a token that lives 1 s is kept until 10% before it expires: asked
	 * for again after that */
	as.expires_in = 1;
	extas_cache_clear();
	assert_int_equal(extas_get_token("mail", NULL, &t4, &x4), 0);
	assert_string_equal(t4, "token-3");
	free(t4);
	t4 = NULL;
	sleep(2);
	assert_int_equal(extas_get_token("mail", NULL, &t4, &x4), 0);
	assert_string_equal(t4, "token-4");
	assert_int_equal(as.posts, 4);
	free(t1);
	free(t2);
	free(t3);
	free(t4);
	oauth_fetch_stop();
	oauth_stop();
	as_stop(&as);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fetch_jwks_keeps_usable_keys_with_their_kid),
	    cmocka_unit_test(test_fetch_jwks_skips_keys_it_cannot_use_but_needs_one),
	    cmocka_unit_test(test_fetch_rfc8414_gives_issuer_jwks_uri_and_token_endpoint),
	    cmocka_unit_test(test_fetch_rfc8414_refuses_missing_issuer_and_non_https_urls),
	    cmocka_unit_test(test_fetch_ms_metadata_certificates_become_a_jwks),
	    cmocka_unit_test(test_fetch_ms_skips_other_usages_but_needs_a_signing_cert),
	    cmocka_unit_test(test_fetch_ms_refuses_bad_certificates_and_issuers),
	    cmocka_unit_test(test_fetch_ms_keys_too_big_for_the_store_are_refused),
	    cmocka_unit_test(test_fetch_refuses_garbage),
	    cmocka_unit_test(test_fetch_refuses_huge_documents),
	    cmocka_unit_test(test_fetch_refuses_wrong_types),
	    cmocka_unit_test(test_fetch_refuses_duplicate_members),
	    cmocka_unit_test(test_fetch_url_rules),
	    cmocka_unit_test(test_fetch_https_refuses_other_schemes_before_any_transfer),
	    cmocka_unit_test(test_extas_partner_resource_prefers_a_registered_target),
	    cmocka_unit_test(test_extas_request_needs_an_authorization_server),
	    cmocka_unit_test_setup_teardown(
		test_fetcher_refresh_answers_with_the_error_and_records_it, fetcher_setup,
		fetcher_teardown),
	    cmocka_unit_test_setup_teardown(test_fetcher_unknown_kid_hints_are_rate_limited,
					    fetcher_setup, fetcher_teardown),
	    cmocka_unit_test_setup_teardown(test_fetcher_refetches_on_its_schedule, fetcher_setup,
					    fetcher_teardown),
	    cmocka_unit_test_setup_teardown(
		test_extas_get_token_only_for_enabled_use_oauth_server_partners, fetcher_setup,
		fetcher_teardown),
	    cmocka_unit_test_setup_teardown(
		test_extas_caches_tokens_until_shortly_before_they_expire, fetcher_setup,
		fetcher_teardown),
	    cmocka_unit_test_setup_teardown(test_fetcher_stop_answers_what_is_queued, fetcher_setup,
					    fetcher_teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
