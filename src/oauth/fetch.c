/*
 * Partner metadata documents, HTTPS fetches and the daemon's fetcher
 * thread (fetch.h).
 *
 * Must never fetch anything but https (redirects included), never trust a
 * Content-Type, never read more than FETCH_MAX_BODY bytes, never replace a
 * partner's last good keys with keys that do not load, and never run on a
 * worker loop: every transfer here blocks.
 */
#include "oauth/fetch.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <jansson.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/b64.h"
#include "core/clock.h"
#include "core/log.h"
#include "oauth/extas.h"
#include "oauth/jose.h"
#include "store/store.h"

#define MS_CERT_B64_MAX 16384 /* base64 of one certificate */

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- URLs ---- */

bool fetch_url_ok(const char *url)
{
	size_t n, hl;
	const char *host;

	if (!url)
		return false;
	n = strnlen(url, FETCH_URL_MAX);
	if (n == FETCH_URL_MAX || strncasecmp(url, "https://", 8) != 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f)
			return false;
	host = url + 8;
	hl = strcspn(host, "/?#");
	if (hl == 0 || memchr(host, '@', hl) || host[0] == ':')
		return false;
	return true;
}

/* ---- documents ---- */

void fetch_doc_clear(struct fetch_doc *doc)
{
	if (!doc)
		return;
	free(doc->jwks);
	memset(doc, 0, sizeof(*doc));
}

/* A string member copied into dst; absent is 0 (dst ''), wrong type or too
 * long -1. */
static int member_str(const json_t *o, const char *name, char *dst, size_t cap)
{
	const json_t *v = json_object_get(o, name);

	dst[0] = '\0';
	if (!v)
		return 0;
	if (!json_is_string(v) || json_string_length(v) >= cap ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return -1;
	memcpy(dst, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

/* The keys of ks as one JWKS text in doc->jwks. */
static int keys_to_jwks(const struct jose_keyset *ks, struct fetch_doc *doc, char *err,
			size_t errlen)
{
	json_t *arr = json_array(), *o;
	char *text;

	if (!arr)
		goto oom;
	for (size_t i = 0; i < ks->n; i++) {
		json_t *jwk = NULL;

		if (jose_key_to_jwk(ks->keys[i], &jwk) != 0 || json_array_append_new(arr, jwk)) {
			json_decref(arr);
			goto oom;
		}
	}
	o = json_pack("{s:o}", "keys", arr);
	if (!o)
		goto oom;
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!text)
		goto oom;
	if (strlen(text) >= STORE_PARTNER_KEYS_MAX) {
		seterr(err, errlen, "the keys take %zu bytes as a JWKS, more than the %d allowed",
		       strlen(text), STORE_PARTNER_KEYS_MAX - 1);
		free(text);
		return -1;
	}
	doc->jwks = text;
	doc->n_keys = ks->n;
	return 0;
oom:
	seterr(err, errlen, "out of memory");
	return -1;
}

/* RFC 8414: issuer (required), jwks_uri and token_endpoint (https). */
static int parse_8414(const json_t *o, struct fetch_doc *doc, char *err, size_t errlen)
{
	doc->kind = FETCH_DOC_RFC8414;
	if (member_str(o, "issuer", doc->issuer, sizeof(doc->issuer)) < 0 || !doc->issuer[0]) {
		seterr(err, errlen, "the RFC 8414 document has no valid \"issuer\"");
		return -1;
	}
	if (member_str(o, "jwks_uri", doc->jwks_uri, sizeof(doc->jwks_uri)) < 0 ||
	    (doc->jwks_uri[0] && !fetch_url_ok(doc->jwks_uri))) {
		seterr(err, errlen, "the RFC 8414 document's \"jwks_uri\" is not an https URL");
		return -1;
	}
	if (member_str(o, "token_endpoint", doc->token_endpoint, sizeof(doc->token_endpoint)) < 0 ||
	    (doc->token_endpoint[0] && !fetch_url_ok(doc->token_endpoint))) {
		seterr(err, errlen,
		       "the RFC 8414 document's \"token_endpoint\" is not an https URL");
		return -1;
	}
	return 0;
}

/* One Microsoft key: {"usage":"signing","keyValue":{"type":"x509Certificate",
 * "value":"<base64 DER>"}}. Other usages and types are skipped (0, *k NULL). */
static int ms_key(const json_t *e, struct jose_key **k, char *err, size_t errlen, size_t i)
{
	const json_t *usage = json_object_get(e, "usage"), *kv = json_object_get(e, "keyValue"),
		     *type, *value;
	unsigned char *der;
	size_t cap, dlen;
	int rc;

	*k = NULL;
	if (!json_is_object(e) || !json_is_object(kv) || (usage && !json_is_string(usage))) {
		seterr(err, errlen, "keys[%zu] is not a key object with a \"keyValue\" object", i);
		return -1;
	}
	if (usage && strcasecmp(json_string_value(usage), "signing") != 0)
		return 0;
	type = json_object_get(kv, "type");
	value = json_object_get(kv, "value");
	if ((type && !json_is_string(type)) || !json_is_string(value)) {
		seterr(err, errlen, "keys[%zu].keyValue has no string \"value\"", i);
		return -1;
	}
	if (type && strcasecmp(json_string_value(type), "x509Certificate") != 0)
		return 0;
	if (json_string_length(value) > MS_CERT_B64_MAX) {
		seterr(err, errlen, "keys[%zu]: the certificate is longer than %d characters", i,
		       MS_CERT_B64_MAX);
		return -1;
	}
	cap = b64_decoded_max(json_string_length(value));
	der = malloc(cap ? cap : 1);
	if (!der) {
		seterr(err, errlen, "out of memory");
		return -1;
	}
	if (b64_std_decode(json_string_value(value), json_string_length(value), der, cap, &dlen) <
	    0) {
		free(der);
		seterr(err, errlen, "keys[%zu]: the certificate is not standard base64", i);
		return -1;
	}
	rc = jose_key_from_cert_der(der, dlen, JOSE_ALG_UNKNOWN, NULL, k);
	free(der);
	if (rc != 0) {
		seterr(err, errlen, "keys[%zu]: the certificate cannot be used: %s", i,
		       jose_strerror(rc));
		return -1;
	}
	return 0;
}

/* The issuance endpoint of a Microsoft document (endpoints[] with protocol
 * OAuth2), if any. */
static void ms_endpoint(const json_t *o, struct fetch_doc *doc)
{
	const json_t *eps = json_object_get(o, "endpoints"), *e;
	size_t i;
	char proto[16], loc[FETCH_URL_MAX];

	if (!json_is_array(eps) || json_array_size(eps) > FETCH_MAX_KEYS)
		return;
	json_array_foreach(eps, i, e)
	{
		if (!json_is_object(e) || member_str(e, "protocol", proto, sizeof(proto)) < 0 ||
		    member_str(e, "location", loc, sizeof(loc)) < 0)
			continue;
		if (strcasecmp(proto, "OAuth2") == 0 && fetch_url_ok(loc)) {
			memcpy(doc->token_endpoint, loc, sizeof(loc));
			return;
		}
	}
}

/* [MS-SPS2SAUTH] auth metadata: keys[] certificates; issuer "id@realm". */
static int parse_ms(const json_t *o, const json_t *keys, struct fetch_doc *doc, char *err,
		    size_t errlen)
{
	struct jose_keyset ks;
	char issuer[2 * FETCH_ID_MAX], realm[FETCH_ID_MAX];
	const json_t *e;
	size_t i;
	int rc = -1;

	doc->kind = FETCH_DOC_MS;
	if (member_str(o, "issuer", issuer, sizeof(issuer)) < 0 ||
	    member_str(o, "realm", realm, sizeof(realm)) < 0) {
		seterr(err, errlen, "the metadata's \"issuer\" or \"realm\" is not a string");
		return -1;
	}
	if (issuer[0]) {
		const char *at = strrchr(issuer, '@');
		size_t idlen = at ? (size_t)(at - issuer) : strlen(issuer);

		if (idlen == 0 || idlen >= sizeof(doc->issuer) || (at && !at[1]) ||
		    (at && strlen(at + 1) >= sizeof(doc->realm))) {
			seterr(err, errlen, "the metadata's \"issuer\" is not id@realm");
			return -1;
		}
		memcpy(doc->issuer, issuer, idlen);
		doc->issuer[idlen] = '\0';
		snprintf(doc->realm, sizeof(doc->realm), "%s", at ? at + 1 : realm);
	} else {
		snprintf(doc->realm, sizeof(doc->realm), "%s", realm);
	}
	ms_endpoint(o, doc);
	jose_keyset_init(&ks);
	json_array_foreach(keys, i, e)
	{
		struct jose_key *k = NULL;

		if (ms_key(e, &k, err, errlen, i) < 0) {
			rc = -1;
			goto out;
		}
		if (!k)
			continue;
		rc = jose_keyset_add(&ks, k);
		jose_key_free(k);
		if (rc != 0) {
			seterr(err, errlen, "out of memory");
			rc = -1;
			goto out;
		}
	}
	rc = -1;
	if (ks.n == 0) {
		seterr(err, errlen, "the metadata lists no signing certificate");
		goto out;
	}
	rc = keys_to_jwks(&ks, doc, err, errlen);
out:
	jose_keyset_clear(&ks);
	return rc;
}

static int parse_jwks(const char *buf, size_t len, struct fetch_doc *doc, char *err, size_t errlen)
{
	struct jose_keyset ks;
	size_t skipped = 0;
	int rc;

	doc->kind = FETCH_DOC_JWKS;
	rc = jose_keyset_from_jwks(buf, len, FETCH_MAX_BODY, &ks, &skipped);
	if (rc != 0) {
		seterr(err, errlen, "the JWKS cannot be used: %s", jose_strerror(rc));
		return -1;
	}
	if (ks.n == 0) {
		seterr(err, errlen, "the JWKS has no key this server can verify with (%zu skipped)",
		       skipped);
		jose_keyset_clear(&ks);
		return -1;
	}
	rc = keys_to_jwks(&ks, doc, err, errlen);
	jose_keyset_clear(&ks);
	return rc;
}

int fetch_doc_parse(const char *buf, size_t len, struct fetch_doc *doc, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *o, *keys;
	int rc = -1;

	memset(doc, 0, sizeof(*doc));
	if (len > FETCH_MAX_BODY) {
		seterr(err, errlen, "the document is larger than %d bytes", FETCH_MAX_BODY);
		return -1;
	}
	o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!o) {
		seterr(err, errlen, "the document is not JSON (line %d: %s)", jerr.line, jerr.text);
		return -1;
	}
	if (!json_is_object(o)) {
		seterr(err, errlen, "the document is not a JSON object");
		goto out;
	}
	keys = json_object_get(o, "keys");
	if (!keys) {
		if (json_object_get(o, "jwks_uri") || json_object_get(o, "token_endpoint"))
			rc = parse_8414(o, doc, err, errlen);
		else
			seterr(err, errlen,
			       "not a JWKS, an RFC 8414 metadata document nor a Microsoft auth "
			       "metadata document (no \"keys\", \"jwks_uri\" or "
			       "\"token_endpoint\")");
		goto out;
	}
	if (!json_is_array(keys) || json_array_size(keys) == 0 ||
	    json_array_size(keys) > FETCH_MAX_KEYS) {
		seterr(err, errlen, "\"keys\" must be an array of 1 to %d keys", FETCH_MAX_KEYS);
		goto out;
	}
	if (json_is_object(json_array_get(keys, 0)) &&
	    json_object_get(json_array_get(keys, 0), "keyValue"))
		rc = parse_ms(o, keys, doc, err, errlen);
	else
		rc = parse_jwks(buf, len, doc, err, errlen);
out:
	json_decref(o);
	if (rc != 0) {
		fetch_doc_clear(doc);
		if (err && errlen && !err[0])
			seterr(err, errlen, "the document cannot be used");
	}
	return rc;
}

/* ---- HTTPS ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_ready;

static void curl_init_once(void)
{
	curl_ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

struct sink {
	char *buf;
	size_t len, cap;
	bool too_big, oom;
};

static size_t on_data(char *p, size_t sz, size_t n, void *arg)
{
	struct sink *s = arg;
	size_t add = sz * n;

	if (add > FETCH_MAX_BODY || s->len + add > FETCH_MAX_BODY) {
		s->too_big = true;
		return 0;
	}
	if (s->len + add + 1 > s->cap) {
		size_t nc = s->cap ? s->cap : 4096;
		char *nb;

		while (nc < s->len + add + 1)
			nc *= 2;
		nb = realloc(s->buf, nc);
		if (!nb) {
			s->oom = true;
			return 0;
		}
		s->buf = nb;
		s->cap = nc;
	}
	memcpy(s->buf + s->len, p, add);
	s->len += add;
	s->buf[s->len] = '\0';
	return add;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	const _Atomic int *stop = arg;

	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	return stop && atomic_load(stop) ? 1 : 0;
}

/* The extra CA file goes into the store curl filled with the system's. */
static CURLcode on_ssl_ctx(CURL *c, void *sslctx, void *arg)
{
	X509_STORE *st = SSL_CTX_get_cert_store(sslctx);

	(void)c;
	if (!st || X509_STORE_load_file(st, arg) != 1)
		return CURLE_SSL_CACERT_BADFILE;
	return CURLE_OK;
}

static int setup(CURL *c, const char *url, const struct fetch_opts *o, struct sink *s, char *ebuf)
{
	CURLcode r = CURLE_OK;

#define SET(opt, val)                                                                              \
	do {                                                                                       \
		if (r == CURLE_OK)                                                                 \
			r = curl_easy_setopt(c, opt, val);                                         \
	} while (0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_PROTOCOLS_STR, "https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
	SET(CURLOPT_FOLLOWLOCATION, 1L);
	SET(CURLOPT_MAXREDIRS, (long)FETCH_MAX_REDIRECTS);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)FETCH_CONNECT_MS);
	SET(CURLOPT_TIMEOUT_MS, (long)FETCH_TOTAL_MS);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)FETCH_MAX_BODY);
	SET(CURLOPT_WRITEFUNCTION, on_data);
	SET(CURLOPT_WRITEDATA, s);
	SET(CURLOPT_ERRORBUFFER, ebuf);
	SET(CURLOPT_USERAGENT, "rtcauth/0.1");
	SET(CURLOPT_NOPROGRESS, 0L);
	SET(CURLOPT_XFERINFOFUNCTION, on_progress);
	SET(CURLOPT_XFERINFODATA, (void *)o->stop);
	if (o->ca_file && o->ca_file[0]) {
		SET(CURLOPT_CA_CACHE_TIMEOUT, 0L); /* the store is changed per handle */
		SET(CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
		SET(CURLOPT_SSL_CTX_DATA, (void *)o->ca_file);
	}
	if (o->post_form) {
		SET(CURLOPT_POSTFIELDS, o->post_form);
		SET(CURLOPT_POSTFIELDSIZE, (long)strlen(o->post_form));
	}
#undef SET
	return r == CURLE_OK ? 0 : -1;
}

int fetch_https(const char *url, const struct fetch_opts *o, char **body, size_t *len, long *status,
		char *err, size_t errlen)
{
	static const struct fetch_opts none = {0};
	char ebuf[CURL_ERROR_SIZE] = "";
	struct sink s = {0};
	struct curl_slist *hdr = NULL;
	CURL *c = NULL;
	CURLcode r;
	long code = 0;
	int rc = -1;

	*body = NULL;
	*len = 0;
	if (status)
		*status = 0;
	if (!o)
		o = &none;
	if (!fetch_url_ok(url)) {
		seterr(err, errlen,
		       "not an https URL without credentials: metadata is fetched "
		       "over verified HTTPS only");
		return -1;
	}
	pthread_once(&curl_once, curl_init_once);
	if (!curl_ready || !(c = curl_easy_init())) {
		seterr(err, errlen, "cannot start an HTTPS client (libcurl)");
		return -1;
	}
	/* no "Expect: 100-continue" round trip; JSON answers only */
	hdr = curl_slist_append(hdr, "Expect:");
	if (hdr)
		hdr = curl_slist_append(hdr, "Accept: application/json");
	if (!hdr || setup(c, url, o, &s, ebuf) < 0 ||
	    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr) != CURLE_OK) {
		seterr(err, errlen, "cannot set up the HTTPS client (libcurl too old?)");
		goto out;
	}
	r = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (s.too_big || r == CURLE_FILESIZE_EXCEEDED) {
		seterr(err, errlen, "the answer is larger than %d bytes", FETCH_MAX_BODY);
		goto out;
	}
	if (s.oom) {
		seterr(err, errlen, "out of memory");
		goto out;
	}
	if (r == CURLE_ABORTED_BY_CALLBACK) {
		seterr(err, errlen, "abandoned: rtcauthd is stopping");
		goto out;
	}
	if (r != CURLE_OK) {
		seterr(err, errlen, "%s%s%s", curl_easy_strerror(r), ebuf[0] ? ": " : "", ebuf);
		goto out;
	}
	if (code != 200 && !o->allow_error_body) {
		seterr(err, errlen, "the server answered HTTP %ld", code);
		goto out;
	}
	if (!s.buf) {
		s.buf = calloc(1, 1);
		if (!s.buf) {
			seterr(err, errlen, "out of memory");
			goto out;
		}
	}
	*body = s.buf;
	*len = s.len;
	s.buf = NULL;
	if (status)
		*status = code;
	rc = 0;
out:
	free(s.buf);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(c);
	return rc;
}

/* GET url and parse it. */
static int get_doc(const char *url, const struct fetch_opts *o, struct fetch_doc *doc, char *err,
		   size_t errlen)
{
	char *body = NULL, why[FETCH_ERR_MAX];
	size_t len;
	struct fetch_opts g = *o;
	int rc;

	g.post_form = NULL;
	g.allow_error_body = false;
	memset(doc, 0, sizeof(*doc));
	why[0] = '\0';
	if (fetch_https(url, &g, &body, &len, NULL, why, sizeof(why)) < 0) {
		seterr(err, errlen, "%s: %s", url, why);
		return -1;
	}
	rc = fetch_doc_parse(body, len, doc, why, sizeof(why));
	free(body);
	if (rc < 0)
		seterr(err, errlen, "%s: %s", url, why);
	return rc;
}

/* What the store will hold must load as the snapshot will load it. */
static int keys_load_back(const char *url, char **jwks, char *err, size_t errlen)
{
	struct jose_keyset ks;
	size_t skipped = 0;
	int rc = jose_keyset_from_jwks(*jwks, strlen(*jwks), STORE_PARTNER_KEYS_MAX, &ks, &skipped);

	if (rc == 0 && ks.n > 0) {
		jose_keyset_clear(&ks);
		return 0;
	}
	if (rc == 0)
		jose_keyset_clear(&ks);
	seterr(err, errlen, "%s: the keys do not load back (%s)", url,
	       rc ? jose_strerror(rc) : "no key");
	free(*jwks);
	*jwks = NULL;
	return -1;
}

int fetch_partner_keys(const char *url, const struct fetch_opts *o, char **jwks, char *issuer,
		       size_t issuer_cap, char *realm, size_t realm_cap, char *err, size_t errlen)
{
	struct fetch_doc doc, keys;
	int rc;

	*jwks = NULL;
	issuer[0] = '\0';
	realm[0] = '\0';
	if (get_doc(url, o, &doc, err, errlen) < 0)
		return -1;
	snprintf(issuer, issuer_cap, "%s", doc.issuer);
	snprintf(realm, realm_cap, "%s", doc.realm);
	if (doc.kind != FETCH_DOC_RFC8414) {
		*jwks = doc.jwks;
		doc.jwks = NULL;
		fetch_doc_clear(&doc);
		return keys_load_back(url, jwks, err, errlen);
	}
	if (!doc.jwks_uri[0]) {
		seterr(err, errlen, "%s: the RFC 8414 document has no \"jwks_uri\"", url);
		fetch_doc_clear(&doc);
		return -1;
	}
	/* one level only: the jwks_uri must be the keys themselves */
	rc = get_doc(doc.jwks_uri, o, &keys, err, errlen);
	if (rc == 0 && keys.kind != FETCH_DOC_JWKS) {
		seterr(err, errlen, "%s (the jwks_uri of %s) is not a JWKS", doc.jwks_uri, url);
		rc = -1;
	}
	if (rc == 0) {
		*jwks = keys.jwks;
		keys.jwks = NULL;
	}
	fetch_doc_clear(&keys);
	fetch_doc_clear(&doc);
	if (rc == 0)
		rc = keys_load_back(url, jwks, err, errlen);
	if (rc < 0)
		issuer[0] = realm[0] = '\0';
	return rc;
}

/* ---- the daemon's fetcher ---- */

#define HINTS_MAX 256

struct req {
	struct req *next;
	char name[STORE_PARTNER_NAME_MAX];
	bool quiet; /* a hint: partners without a URL are no error */
	oauth_fetch_done_fn done;
	void *arg;
	int rc;
	char err[FETCH_ERR_MAX];
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thr;
	bool running;
	_Atomic int stop;
	struct req *queue, *finished;
	bool need_reload;
	struct event *ev;
	int (*reload)(char *err, size_t errlen);
	char db[PATH_MAX];
	char ca[PATH_MAX];
	int interval;
	struct {
		char name[STORE_PARTNER_NAME_MAX];
		uint64_t at; /* monotonic ms */
	} hints[HINTS_MAX];
	size_t n_hints;
} F = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void enqueue_locked(struct req *r)
{
	struct req **pp = &F.queue;

	while (*pp)
		pp = &(*pp)->next;
	r->next = NULL;
	*pp = r;
	pthread_cond_signal(&F.cv);
}

/*
 * Fetch one partner and record the outcome. changed: new keys or issuer
 * were stored (the snapshot must be rebuilt).
 */
static int fetch_one(struct store *st, const char *name, bool quiet, bool *changed, char *err,
		     size_t errlen)
{
	struct store_partner p;
	struct fetch_opts o = {.ca_file = F.ca, .stop = &F.stop};
	char issuer[FETCH_ID_MAX], realm[FETCH_ID_MAX], v1[LOG_VAL_MAX], v2[LOG_VAL_MAX];
	char *jwks = NULL;
	int rc;

	*changed = false;
	rc = store_partner_get(st, name, &p);
	if (rc != STORE_OK) {
		seterr(err, errlen,
		       rc == STORE_NOTFOUND ? "no partner %s" : "reading partner %s: %s", name,
		       store_strerror(rc));
		return quiet ? 0 : -1;
	}
	if (p.source != STORE_PARTNER_METADATA || !p.metadata_url[0]) {
		seterr(err, errlen, "partner %s has no metadata URL", name);
		store_partner_clear(&p);
		return quiet ? 0 : -1;
	}
	rc = fetch_partner_keys(p.metadata_url, &o, &jwks, issuer, sizeof(issuer), realm,
				sizeof(realm), err, errlen);
	if (rc < 0) {
		log_warn("oauth.fetch_failed", "partner=%s reason=%s action=kept_last_good_keys",
			 log_val(str_cstr(name), v1, sizeof(v1)),
			 log_val(str_cstr(err), v2, sizeof(v2)));
		if (atomic_load(&F.stop) == 0)
			store_partner_set_fetch(st, name, clock_wall_s(), err, NULL);
		store_partner_clear(&p);
		return -1;
	}
	*changed = !p.jwks || strcmp(p.jwks, jwks) != 0;
	rc = store_partner_set_fetch(st, name, clock_wall_s(), "", jwks);
	if (rc == STORE_OK && !p.issuer[0] && issuer[0]) {
		rc = store_partner_set_issuer(st, name, issuer);
		*changed = true;
		if (rc == STORE_CONFLICT) {
			seterr(err, errlen,
			       "the keys are stored, but the issuer %s the metadata names is "
			       "another partner's in realm %s",
			       issuer, p.realm);
			store_partner_set_fetch(st, name, clock_wall_s(), err, NULL);
			free(jwks);
			store_partner_clear(&p);
			return -1;
		}
	}
	if (rc != STORE_OK) {
		seterr(err, errlen, "storing the keys failed: %s (%s)", store_strerror(rc),
		       store_errmsg(st));
		*changed = false;
		free(jwks);
		store_partner_clear(&p);
		return -1;
	}
	if (realm[0] && strcmp(realm, p.realm) != 0)
		log_warn("oauth.fetch_realm", "partner=%s metadata_realm=%s registered_realm=%s",
			 log_val(str_cstr(name), v1, sizeof(v1)),
			 log_val(str_cstr(realm), v2, sizeof(v2)), p.realm);
	log_info("oauth.fetch", "partner=%s result=ok changed=%s",
		 log_val(str_cstr(name), v1, sizeof(v1)), *changed ? "yes" : "no");
	free(jwks);
	store_partner_clear(&p);
	return 0;
}

struct names {
	char (*v)[STORE_PARTNER_NAME_MAX];
	size_t n, cap;
};

static int collect(void *ctx, const struct store_partner *p)
{
	struct names *ns = ctx;

	if (!p->enabled || p->source != STORE_PARTNER_METADATA || !p->metadata_url[0])
		return 0;
	if (ns->n == ns->cap) {
		size_t nc = ns->cap ? ns->cap * 2 : 16;
		void *nv = realloc(ns->v, nc * sizeof(*ns->v));

		if (!nv)
			return -1;
		ns->v = nv;
		ns->cap = nc;
	}
	memcpy(ns->v[ns->n++], p->name, STORE_PARTNER_NAME_MAX);
	return 0;
}

static void finish(struct req *r, bool changed)
{
	pthread_mutex_lock(&F.mu);
	r->next = F.finished;
	F.finished = r;
	if (changed)
		F.need_reload = true;
	pthread_mutex_unlock(&F.mu);
	event_active(F.ev, EV_READ, 0);
}

/* Ask the main thread for a reload that nobody waits for. */
static void reload_only(void)
{
	struct req *r = calloc(1, sizeof(*r));

	if (r)
		finish(r, true);
}

/* Answer one queued request (st NULL: the store could not be opened, why
 * in store_err). false when the queue is empty. */
static bool serve_one(struct store *st, const char *store_err)
{
	struct req *r;
	bool changed = false;

	pthread_mutex_lock(&F.mu);
	r = F.queue;
	if (r)
		F.queue = r->next;
	pthread_mutex_unlock(&F.mu);
	if (!r)
		return false;
	if (!st) {
		r->rc = -1;
		snprintf(r->err, sizeof(r->err), "the store cannot be opened: %s", store_err);
	} else {
		r->rc = fetch_one(st, r->name, r->quiet, &changed, r->err, sizeof(r->err));
	}
	finish(r, changed);
	return true;
}

/* Every enabled partner with a metadata URL; requests that arrive meanwhile
 * (rtcauthctl partner refresh) go first, and each change is loaded at once. */
static void fetch_all(struct store *st)
{
	struct names ns = {0};
	char err[FETCH_ERR_MAX];
	bool ch;

	if (store_partner_list(st, collect, &ns) != STORE_OK)
		log_err("oauth.fetch_list_failed", "reason=%s", store_errmsg(st));
	for (size_t i = 0; i < ns.n && !atomic_load(&F.stop); i++) {
		while (!atomic_load(&F.stop) && serve_one(st, ""))
			;
		if (atomic_load(&F.stop))
			break;
		if (fetch_one(st, ns.v[i], true, &ch, err, sizeof(err)) == 0 && ch)
			reload_only();
	}
	free(ns.v);
}

static void *fetcher_main(void *arg)
{
	struct store *st = NULL;
	char err[FETCH_ERR_MAX] = "";
	struct timespec due;

	(void)arg;
	clock_gettime(CLOCK_MONOTONIC, &due); /* the first pass: now */
	for (;;) {
		struct timespec now;
		bool queued;

		pthread_mutex_lock(&F.mu);
		for (;;) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			if (atomic_load(&F.stop) || F.queue || now.tv_sec >= due.tv_sec)
				break;
			pthread_cond_timedwait(&F.cv, &F.mu, &due);
		}
		queued = F.queue != NULL;
		pthread_mutex_unlock(&F.mu);
		if (atomic_load(&F.stop))
			break;
		if (!st && store_open(F.db, 0, 5000, &st, err, sizeof(err)) != STORE_OK) {
			log_err("oauth.fetch_store", "reason=%s", err);
			st = NULL;
		}
		if (queued) {
			serve_one(st, err);
			continue;
		}
		if (st)
			fetch_all(st);
		clock_gettime(CLOCK_MONOTONIC, &due);
		due.tv_sec += F.interval;
	}
	store_close(st);
	return NULL;
}

/* Main thread: rebuild the snapshot if keys changed, then answer. */
static void on_finished(evutil_socket_t fd, short what, void *arg)
{
	struct req *list, *r;
	bool reload;
	char err[512] = "";
	int rrc = 0;

	(void)fd;
	(void)what;
	(void)arg;
	pthread_mutex_lock(&F.mu);
	list = F.finished;
	F.finished = NULL;
	reload = F.need_reload;
	F.need_reload = false;
	pthread_mutex_unlock(&F.mu);
	if (reload && F.reload) {
		rrc = F.reload(err, sizeof(err));
		if (rrc != 0) {
			char v[LOG_VAL_MAX];
			log_err("oauth.fetch_reload_failed", "reason=%s action=kept_old_keys",
				log_val(str_cstr(err), v, sizeof(v)));
		}
	}
	while ((r = list) != NULL) {
		list = r->next;
		if (r->done) {
			if (r->rc == 0 && rrc != 0) {
				char msg[FETCH_ERR_MAX + 64];
				snprintf(msg, sizeof(msg),
					 "the keys were fetched and stored, but could not be "
					 "loaded: %s",
					 err);
				r->done(r->arg, -1, msg);
			} else {
				r->done(r->arg, r->rc, r->rc == 0 ? "" : r->err);
			}
		}
		free(r);
	}
}

int oauth_fetch_start(struct event_base *base, const struct config *cfg,
		      int (*reload)(char *err, size_t errlen), char *err, size_t errlen)
{
	pthread_condattr_t ca;

	if (F.running) {
		seterr(err, errlen, "the metadata fetcher is already running");
		return -1;
	}
	pthread_once(&curl_once, curl_init_once);
	if (!curl_ready) {
		seterr(err, errlen, "cannot initialise libcurl");
		return -1;
	}
	snprintf(F.db, sizeof(F.db), "%s", cfg->sqlite_path);
	snprintf(F.ca, sizeof(F.ca), "%s", cfg->oauth_fetch_ca_file);
	F.interval = cfg->oauth_metadata_refresh > 0 ? cfg->oauth_metadata_refresh : 86400;
	F.reload = reload;
	F.n_hints = 0;
	atomic_store(&F.stop, 0);
	F.ev = event_new(base, -1, 0, on_finished, NULL);
	if (!F.ev) {
		seterr(err, errlen, "cannot create the fetcher's event");
		return -1;
	}
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&F.cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&F.thr, NULL, fetcher_main, NULL) != 0) {
		seterr(err, errlen, "cannot start the metadata fetcher thread");
		pthread_cond_destroy(&F.cv);
		event_free(F.ev);
		F.ev = NULL;
		return -1;
	}
	pthread_mutex_lock(&F.mu);
	F.running = true;
	pthread_mutex_unlock(&F.mu);
	log_info("oauth.fetcher", "refresh=%d ca_file=%s", F.interval, F.ca[0] ? "set" : "none");
	return 0;
}

void oauth_fetch_client_opts(struct fetch_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->ca_file = F.ca[0] ? F.ca : NULL;
	o->stop = &F.stop;
}

void oauth_fetch_stop(void)
{
	struct req *r;

	extas_cache_clear();
	if (!F.running)
		return;
	pthread_mutex_lock(&F.mu);
	atomic_store(&F.stop, 1);
	pthread_cond_broadcast(&F.cv);
	pthread_mutex_unlock(&F.mu);
	pthread_join(F.thr, NULL);
	pthread_mutex_lock(&F.mu);
	F.running = false;
	pthread_mutex_unlock(&F.mu);
	/* what finished is answered (without a reload: we are stopping) */
	F.need_reload = false;
	F.reload = NULL;
	on_finished(-1, 0, NULL);
	while ((r = F.queue) != NULL) {
		F.queue = r->next;
		if (r->done)
			r->done(r->arg, -1, "rtcauthd is shutting down; nothing was fetched");
		free(r);
	}
	event_free(F.ev);
	F.ev = NULL;
	pthread_cond_destroy(&F.cv);
}

int oauth_fetch_refresh(const char *name, oauth_fetch_done_fn done, void *arg)
{
	struct req *r;

	if (!name || strlen(name) >= STORE_PARTNER_NAME_MAX)
		return -1;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -1;
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->done = done;
	r->arg = arg;
	pthread_mutex_lock(&F.mu);
	if (!F.running || atomic_load(&F.stop)) {
		pthread_mutex_unlock(&F.mu);
		free(r);
		return -1;
	}
	enqueue_locked(r);
	pthread_mutex_unlock(&F.mu);
	return 0;
}

void oauth_fetch_hint_unknown_kid(const char *partner_name)
{
	uint64_t now = clock_mono_ms();
	size_t i, oldest = 0;
	struct req *r;

	if (!partner_name || strlen(partner_name) >= STORE_PARTNER_NAME_MAX)
		return;
	pthread_mutex_lock(&F.mu);
	if (!F.running || atomic_load(&F.stop))
		goto out;
	for (i = 0; i < F.n_hints; i++) {
		if (strcmp(F.hints[i].name, partner_name) == 0)
			break;
		if (F.hints[i].at < F.hints[oldest].at)
			oldest = i;
	}
	if (i < F.n_hints) {
		if (now - F.hints[i].at < (uint64_t)FETCH_HINT_INTERVAL * 1000)
			goto out;
	} else if (F.n_hints < HINTS_MAX) {
		i = F.n_hints++;
	} else {
		/* the table is full: the least recent entry makes room if it is
		 * past its interval, else the hint is dropped */
		if (now - F.hints[oldest].at < (uint64_t)FETCH_HINT_INTERVAL * 1000)
			goto out;
		i = oldest;
	}
	snprintf(F.hints[i].name, sizeof(F.hints[i].name), "%s", partner_name);
	F.hints[i].at = now;
	r = calloc(1, sizeof(*r));
	if (!r)
		goto out;
	snprintf(r->name, sizeof(r->name), "%s", partner_name);
	r->quiet = true;
	enqueue_locked(r);
out:
	pthread_mutex_unlock(&F.mu);
}
