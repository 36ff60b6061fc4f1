/*
 * Client of an external authorization server (extas.h): RFC 8414
 * discovery, an RFC 7523 client assertion, RFC 6749 client_credentials with
 * RFC 8707 resource, and a small token cache.
 *
 * Must never log a token or an assertion, and never run on a worker loop
 * (every call may block for seconds).
 */
#include "oauth/extas.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/secmem.h"
#include "oauth/fetch.h"
#include "oauth/oauth.h"

#define CACHE_MAX 64

/* ---- the request ---- */

/* application/x-www-form-urlencoded value (RFC 3986 unreserved kept). */
static int form_append(char **buf, size_t *len, size_t *cap, const char *name, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t need = strlen(name) + 3 * strlen(value) + 3;

	if (*len + need > *cap) {
		size_t nc = (*len + need) * 2;
		char *nb = realloc(*buf, nc);

		if (!nb)
			return -1;
		*buf = nb;
		*cap = nc;
	}
	*len += (size_t)sprintf(*buf + *len, "%s%s=", *len ? "&" : "", name);
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			(*buf)[(*len)++] = (char)*p;
		} else {
			(*buf)[(*len)++] = '%';
			(*buf)[(*len)++] = hex[*p >> 4];
			(*buf)[(*len)++] = hex[*p & 15];
		}
	}
	(*buf)[*len] = '\0';
	return 0;
}

/* Our RFC 7523 §3 client assertion. */
static int make_assertion(const struct extas_client *c, const char *aud, int64_t now, char **out)
{
	char jti[32];
	json_t *claims;
	size_t len;
	int rc;

	*out = NULL;
	if (sts_new_jti(jti) != 0)
		return -1;
	claims = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s}", "iss", c->client_id, "sub",
			   c->client_id, "aud", aud, "iat", (json_int_t)now, "nbf", (json_int_t)now,
			   "exp", (json_int_t)(now + EXTAS_ASSERTION_LIFETIME), "jti", jti);
	if (!claims)
		return -1;
	rc = c->sign(c->sign_arg, NULL, claims, out, &len);
	json_decref(claims);
	return rc == 0 ? 0 : -1;
}

/* The AS's token_endpoint from its RFC 8414 document. */
static int discover(const struct extas_client *c, char *endpoint, size_t cap, char *err,
		    size_t errlen)
{
	struct fetch_opts o = {.ca_file = c->ca_file, .stop = c->stop};
	struct fetch_doc doc;
	char *body = NULL, why[FETCH_ERR_MAX] = "";
	size_t len;
	int rc;

	if (fetch_https(c->metadata_url, &o, &body, &len, NULL, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "the authorization server's metadata %s: %s", c->metadata_url,
			 why);
		return -1;
	}
	rc = fetch_doc_parse(body, len, &doc, why, sizeof(why));
	free(body);
	if (rc < 0 || doc.kind != FETCH_DOC_RFC8414 || !doc.token_endpoint[0]) {
		snprintf(err, errlen,
			 "the authorization server's metadata %s is not an RFC 8414 document "
			 "with a token_endpoint%s%s",
			 c->metadata_url, rc < 0 ? ": " : "", rc < 0 ? why : "");
		fetch_doc_clear(&doc);
		return -1;
	}
	snprintf(endpoint, cap, "%s", doc.token_endpoint);
	fetch_doc_clear(&doc);
	return 0;
}

/* The token response (RFC 6749 §5.1) or error (§5.2). */
static int read_answer(const char *body, size_t len, long status, int64_t now, char **token,
		       int64_t *expires, char *err, size_t errlen)
{
	json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	const char *tok = json_string_value(json_object_get(o, "access_token"));
	const json_t *ei = json_object_get(o, "expires_in");
	int rc = -1;

	if (!json_is_object(o)) {
		snprintf(err, errlen, "the authorization server answered HTTP %ld without JSON",
			 status);
		goto out;
	}
	if (status != 200 || !tok) {
		const char *e = json_string_value(json_object_get(o, "error"));
		const char *d = json_string_value(json_object_get(o, "error_description"));

		snprintf(err, errlen, "the authorization server refused (HTTP %ld): %.64s%s%.300s",
			 status, e ? e : "no error code", d ? ": " : "", d ? d : "");
		goto out;
	}
	if (!tok[0] || strlen(tok) >= EXTAS_TOKEN_MAX ||
	    (json_object_get(o, "token_type") &&
	     (!json_is_string(json_object_get(o, "token_type")) ||
	      strcasecmp(json_string_value(json_object_get(o, "token_type")), "Bearer") != 0))) {
		snprintf(err, errlen,
			 "the authorization server's answer has no usable bearer "
			 "access_token");
		goto out;
	}
	/* expires_in is RECOMMENDED (§5.1): without it, keep the token briefly */
	if (ei && (!json_is_integer(ei) || json_integer_value(ei) <= 0 ||
		   json_integer_value(ei) > 7 * 86400)) {
		snprintf(err, errlen, "the authorization server's expires_in is not a lifetime");
		goto out;
	}
	*token = strdup(tok);
	if (!*token) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	*expires = now + (ei ? (int64_t)json_integer_value(ei) : 300);
	rc = 0;
out:
	json_decref(o);
	return rc;
}

int extas_request(const struct extas_client *c, const char *resource, int64_t now, char **token,
		  int64_t *expires, char *err, size_t errlen)
{
	char endpoint[FETCH_URL_MAX], why[FETCH_ERR_MAX] = "";
	char *assertion = NULL, *form = NULL, *body = NULL;
	size_t flen = 0, fcap = 0, blen;
	long status = 0;
	int rc = -1;

	*token = NULL;
	*expires = 0;
	if (!c->metadata_url || !c->metadata_url[0]) {
		snprintf(err, errlen, "no [oauth] authorization_server is configured");
		return -1;
	}
	if (!c->client_id || !c->client_id[0] || !c->sign) {
		snprintf(err, errlen, "no client id or signer for the authorization server");
		return -1;
	}
	if (discover(c, endpoint, sizeof(endpoint), err, errlen) < 0)
		return -1;
	if (make_assertion(c, endpoint, now, &assertion) < 0) {
		snprintf(err, errlen, "signing the client assertion failed");
		return -1;
	}
	if (form_append(&form, &flen, &fcap, "grant_type", "client_credentials") ||
	    form_append(&form, &flen, &fcap, "client_id", c->client_id) ||
	    form_append(&form, &flen, &fcap, "client_assertion_type",
			"urn:ietf:params:oauth:client-assertion-type:jwt-bearer") ||
	    form_append(&form, &flen, &fcap, "client_assertion", assertion) ||
	    (resource && resource[0] && form_append(&form, &flen, &fcap, "resource", resource))) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	{
		struct fetch_opts o = {.ca_file = c->ca_file,
				       .post_form = form,
				       .allow_error_body = true,
				       .stop = c->stop};
		if (fetch_https(endpoint, &o, &body, &blen, &status, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "the token endpoint %s: %s", endpoint, why);
			goto out;
		}
	}
	rc = read_answer(body, blen, status, now, token, expires, err, errlen);
out:
	if (assertion) {
		secmem_wipe(assertion, strlen(assertion));
		free(assertion);
	}
	if (form) {
		secmem_wipe(form, fcap);
		free(form);
	}
	if (body) {
		secmem_wipe(body, blen);
		free(body);
	}
	return rc;
}

/* ---- the partner's resource ---- */

int extas_partner_resource(const struct store_partner *p, char *buf, size_t cap)
{
	const char *r = p->resources, *at;
	size_t idlen;

	while (*r) {
		size_t n = strcspn(r, ",");
		const char *slash = memchr(r, '/', n),
			   *a = slash ? memchr(slash, '@', n - (size_t)(slash - r)) : NULL;

		if (slash && a && slash > r && a > slash + 1 && a < r + n - 1 && n < cap) {
			snprintf(buf, cap, "%.*s", (int)n, r);
			return 0;
		}
		r += n + (r[n] == ',');
	}
	if (!p->issuer[0] || strncmp(p->metadata_url, "https://", 8) != 0)
		return -1;
	at = strrchr(p->issuer, '@');
	idlen = at ? (size_t)(at - p->issuer) : strlen(p->issuer);
	{
		const char *h = p->metadata_url + 8;
		size_t hl = strcspn(h, ":/?#");

		if (hl == 0 || *h == '[')
			return -1;
		if ((size_t)snprintf(buf, cap, "%.*s/%.*s@%s", (int)idlen, p->issuer, (int)hl, h,
				     at ? at + 1 : p->realm) >= cap)
			return -1;
	}
	return 0;
}

/* ---- rtcauthd: the cache ---- */

static struct {
	pthread_mutex_t mu;
	struct {
		char resource[EXTAS_RESOURCE_MAX];
		char as[CONFIG_URL_MAX]; /* the AS it came from */
		char *token;
		int64_t expires, refresh_at;
	} e[CACHE_MAX];
	size_t n;
} cache = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void entry_drop(size_t i)
{
	secmem_wipe(cache.e[i].token, strlen(cache.e[i].token));
	free(cache.e[i].token);
	cache.e[i] = cache.e[--cache.n];
}

void extas_cache_clear(void)
{
	pthread_mutex_lock(&cache.mu);
	while (cache.n)
		entry_drop(cache.n - 1);
	pthread_mutex_unlock(&cache.mu);
}

static int cache_get(const char *as, const char *resource, int64_t now, char **token,
		     int64_t *expires)
{
	int rc = -1;

	pthread_mutex_lock(&cache.mu);
	for (size_t i = 0; i < cache.n; i++) {
		if (strcmp(cache.e[i].resource, resource) != 0 || strcmp(cache.e[i].as, as) != 0)
			continue;
		if (now >= cache.e[i].refresh_at) {
			entry_drop(i);
			break;
		}
		*token = strdup(cache.e[i].token);
		*expires = cache.e[i].expires;
		rc = *token ? 0 : -1;
		break;
	}
	pthread_mutex_unlock(&cache.mu);
	return rc;
}

static void cache_put(const char *as, const char *resource, const char *token, int64_t now,
		      int64_t expires)
{
	int64_t life = expires - now, margin = life >= 600 ? 60 : life / 10;
	size_t i;

	pthread_mutex_lock(&cache.mu);
	for (i = 0; i < cache.n; i++)
		if (strcmp(cache.e[i].resource, resource) == 0 && strcmp(cache.e[i].as, as) == 0)
			break;
	if (i < cache.n)
		entry_drop(i);
	if (cache.n == CACHE_MAX) /* full: the first one goes */
		entry_drop(0);
	i = cache.n;
	cache.e[i].token = strdup(token);
	if (cache.e[i].token) {
		snprintf(cache.e[i].resource, sizeof(cache.e[i].resource), "%s", resource);
		snprintf(cache.e[i].as, sizeof(cache.e[i].as), "%s", as);
		cache.e[i].expires = expires;
		cache.e[i].refresh_at = expires - margin;
		cache.n++;
	}
	pthread_mutex_unlock(&cache.mu);
}

int extas_get_token(const char *partner_name, const char *resource, char **token, int64_t *expires)
{
	const struct oauth_snapshot *snap = oauth_snapshot_get();
	const struct oauth_partner *p;
	struct extas_client c;
	struct sts_issuer iss;
	struct fetch_opts o;
	char res[EXTAS_RESOURCE_MAX], client_id[2 * CONFIG_HOST_MAX + 2], err[512] = "";
	char v1[LOG_VAL_MAX], v2[LOG_VAL_MAX];
	int64_t now = clock_wall_s();
	int rc = -1;

	*token = NULL;
	*expires = 0;
	if (!snap)
		return -1;
	p = oauth_partner_by_name(snap, partner_name);
	if (!p || !p->rec.use_oauth_server) {
		snprintf(err, sizeof(err), "%s",
			 p ? "the partner is not registered --use-oauth-server"
			   : "no enabled partner of this name");
		goto out;
	}
	if (!snap->authorization_server[0]) {
		snprintf(err, sizeof(err), "no [oauth] authorization_server is configured");
		goto out;
	}
	if (resource && strlen(resource) >= sizeof(res)) {
		snprintf(err, sizeof(err), "the resource is too long");
		goto out;
	}
	if (resource)
		snprintf(res, sizeof(res), "%s", resource);
	else if (extas_partner_resource(&p->rec, res, sizeof(res)) < 0) {
		snprintf(err, sizeof(err),
			 "cannot tell the partner's principal/host@realm: "
			 "register one with --resources");
		goto out;
	}
	if (cache_get(snap->authorization_server, res, now, token, expires) == 0) {
		rc = 0;
		goto out;
	}
	snprintf(client_id, sizeof(client_id), "%s@%s", snap->principal_id, snap->realm);
	sts_issuer_from_snapshot(&iss, snap);
	oauth_fetch_client_opts(&o);
	c = (struct extas_client){
	    snap->authorization_server, client_id, o.ca_file, o.stop, iss.sign, iss.sign_arg};
	rc = extas_request(&c, res, now, token, expires, err, sizeof(err));
	if (rc == 0) {
		cache_put(snap->authorization_server, res, *token, now, *expires);
		log_info("oauth.extas_token", "partner=%s resource=%s expires_in=%lld",
			 log_val(str_cstr(partner_name), v1, sizeof(v1)),
			 log_val(str_cstr(res), v2, sizeof(v2)), (long long)(*expires - now));
	}
out:
	if (rc != 0 && err[0])
		log_warn("oauth.extas_failed", "partner=%s reason=%s",
			 log_val(str_cstr(partner_name ? partner_name : ""), v1, sizeof(v1)),
			 log_val(str_cstr(err), v2, sizeof(v2)));
	oauth_snapshot_put(snap);
	return rc;
}
