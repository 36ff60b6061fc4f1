/* See relaycred.h. */
#include "turn/relaycred.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/secmem.h"
#include "http/http.h"
#include "http/httpauth.h"
#include "http/webticket.h"
#include "oauth/validate.h"
#include "store/store.h"
#include "vault/vault.h"
#include "sip/server.h"
#include "turn/server.h"
#include "vault/vault_turn.h"

int relaycred_make(const struct config *cfg, const char *user, int ttl, int64_t now, char *username,
		   size_t ucap, char *password, size_t pcap)
{
	const char *u = user;

	if (!cfg || cfg->n_turn_listen == 0 || !user)
		return -1;
	/* the TURN user name may not hold ':' (it separates the expiry) */
	if (strncmp(u, "sip:", 4) == 0)
		u += 4;
	if (ttl <= 0 || ttl > RELAYCRED_TTL_MAX)
		ttl = ttl <= 0 ? RELAYCRED_TTL_DEFAULT : RELAYCRED_TTL_MAX;
	return vault_turn_issue(str_cstr(u), now + ttl, username, ucap, password, pcap);
}

/*
 * The relay's listen lines as it runs them (a reload does not move
 * listeners: turn_relay_listeners), else the config's (no relay started in
 * this process), and the host name for wildcard ones.
 */
static size_t relay_listeners(const struct config *cfg, struct listen_addr *out, char *fqdn,
			      size_t fqdncap)
{
	size_t n = turn_relay_listeners(out, CONFIG_MAX_LISTEN, fqdn, fqdncap);

	if (n)
		return n;
	memcpy(out, cfg->turn_listen, sizeof(cfg->turn_listen));
	snprintf(fqdn, fqdncap, "%s", cfg->fqdn);
	return cfg->n_turn_listen;
}

static const char *relay_host(const struct listen_addr *l, const char *fqdn)
{
	return strcmp(l->host, "*") == 0 || strcmp(l->host, "0.0.0.0") == 0 ||
		       strcmp(l->host, "::") == 0
		   ? fqdn
		   : l->host;
}

/* "turn:HOST:PORT?transport=udp" for each [turn] listen line. */
static json_t *uris(const struct config *cfg)
{
	json_t *a = json_array();
	struct listen_addr ls[CONFIG_MAX_LISTEN];
	char buf[300], fqdn[CONFIG_HOST_MAX];
	size_t nl = relay_listeners(cfg, ls, fqdn, sizeof(fqdn));

	for (size_t i = 0; a && i < nl; i++) {
		const struct listen_addr *l = &ls[i];
		const char *host = relay_host(l, fqdn);
		bool v6 = strchr(host, ':') != NULL;
		snprintf(buf, sizeof(buf), "%s:%s%s%s:%u?transport=%s",
			 l->kind == TRANSPORT_TLS ? "turns" : "turn", v6 ? "[" : "", host,
			 v6 ? "]" : "", l->port, l->kind == TRANSPORT_UDP ? "udp" : "tcp");
		json_array_append_new(a, json_string(buf));
	}
	return a;
}

/* ?ttl=N or {"ttl": N} in the body; 0 when absent. */
static int requested_ttl(const struct http_request *req)
{
	long v = 0;

	if (req->query) {
		const char *p = strstr(req->query, "ttl=");
		if (p && (p == req->query || p[-1] == '&'))
			v = strtol(p + 4, NULL, 10);
	}
	if (!v && req->body.len && req->body.len < 4096) {
		json_error_t e;
		json_t *o = json_loadb(req->body.p, req->body.len, 0, &e);
		json_t *t = o ? json_object_get(o, "ttl") : NULL;
		if (json_is_integer(t))
			v = (long)json_integer_value(t);
		json_decref(o);
	}
	return v < 0 || v > RELAYCRED_TTL_MAX ? RELAYCRED_TTL_MAX : (int)v;
}

/*
 * The user of a Bearer token: a web ticket, else an OAuth access token that
 * acts for a user (jwt-bearer or token exchange, validate.h) and grants
 * RELAYCRED_SCOPE; that user must be in the directory and enabled. A
 * client's own token (client_credentials) names no user and gets nothing.
 * 0, or -1 with the answer written.
 */
static int bearer_user(const struct http_request *req, struct http_response *resp, char *user,
		       size_t cap)
{
	const struct sip_worker *w = req->worker;
	char norm[STORE_URI_MAX], dom[STORE_URI_MAX], part[STORE_URI_MAX];
	struct oauth_principal p;
	struct store_user u;
	int rc;

	if (webticket_of_request(req, user, cap) == VR_OK)
		return 0;
	/* not a web ticket: the OAuth answers (401, 403 insufficient_scope,
	 * 503 when the revocation list cannot be read) come from here */
	if (!oauth_require(req, resp, RELAYCRED_SCOPE, &p))
		return -1;
	if (!p.acts_for_user) {
		log_info("turn.credentials_refused", "reason=no_user client=%s", p.client_id);
		http_response_error(resp, 403, "insufficient_scope",
				    "relay credentials are for users: the token must act for a "
				    "user (jwt-bearer or token exchange)");
		return -1;
	}
	if (store_uri_normalise(p.sub, norm, part, dom) != 0 || strlen(norm) >= cap) {
		http_response_error(resp, 403, "insufficient_scope",
				    "the token's subject is not a SIP user");
		return -1;
	}
	memcpy(user, norm, strlen(norm) + 1);
	rc = w && w->store ? vault_user_get(w->store, user, &u) : STORE_UNAVAILABLE;
	if (rc == STORE_OK && u.enabled)
		return 0;
	if (rc == STORE_OK || rc == STORE_NOTFOUND) {
		log_info("turn.credentials_refused", "reason=%s client=%s",
			 rc == STORE_OK ? "user_disabled" : "unknown_user", p.client_id);
		http_response_error(resp, 403, "insufficient_scope",
				    "the token's user is not an enabled user of this directory");
		return -1;
	}
	/* a store outage is not a refusal */
	http_response_header(resp, "Retry-After", "5");
	http_response_error(resp, 503, "temporarily_unavailable",
			    "the directory is unavailable; retry in a moment");
	return -1;
}

static void handler(const struct http_request *req, struct http_response *resp, void *arg)
{
	const struct sip_worker *w = req->worker;
	const struct config *cfg = w && w->rt ? w->rt->cfg : NULL;
	const char *authz = http_request_header(req, "Authorization");
	char user[STORE_URI_MAX], username[600], password[64];
	int64_t now = clock_wall_s();
	int ttl;
	json_t *o;
	(void)arg;

	if (!cfg) {
		http_response_error(resp, 503, "temporarily_unavailable", "not ready; retry later");
		return;
	}
	/* a web ticket (our own OAuth token for the user), an OAuth access
	 * token acting for a user, or any scheme of the web services */
	if (authz && strncasecmp(authz, "Bearer ", 7) == 0) {
		if (bearer_user(req, resp, user, sizeof(user)) < 0)
			return;
	} else {
		struct httpauth_result r;
		if (!httpauth_require(req, resp, &r))
			return;
		snprintf(user, sizeof(user), "%s", r.user.uri);
	}
	if (cfg->n_turn_listen == 0) {
		http_response_error(resp, 503, "temporarily_unavailable",
				    "no media relay is configured ([turn] listen)");
		return;
	}
	ttl = requested_ttl(req);
	if (!ttl)
		ttl = RELAYCRED_TTL_DEFAULT;
	if (relaycred_make(cfg, user, ttl, now, username, sizeof(username), password,
			   sizeof(password)) < 0) {
		http_response_error(resp, 503, "temporarily_unavailable",
				    "the relay credentials cannot be made now");
		return;
	}
	o = json_pack("{s:s, s:s, s:i, s:o}", "username", username, "password", password, "ttl",
		      ttl, "uris", uris(cfg));
	secmem_wipe(password, sizeof(password));
	http_response_header(resp, "Cache-Control", "no-store");
	if (!o || http_response_json(resp, 200, o) < 0)
		http_response_error(resp, 500, "server_error", NULL);
	if (o) {
		/* the password is in the JSON object too */
		json_t *pw = json_object_get(o, "password");
		if (pw && json_string_length(pw))
			secmem_wipe((char *)json_string_value(pw), json_string_length(pw));
	}
	json_decref(o);
	log_info("turn.credentials", "user=%s ttl=%d via=https", user, ttl);
}

int relaycred_routes_add(void)
{
	return http_route_add(HTTP_POST | HTTP_GET, RELAYCRED_PATH, false, handler, NULL);
}

/* ---- SIP SERVICE (msrtc-media-relay-auth) ---- */

/* The text of the first <name>...</name> element, bounded. */
static struct str element(struct str body, const char *name)
{
	char open[64], close[64];
	const char *p, *q;
	int no = snprintf(open, sizeof(open), "<%s>", name);
	int nc = snprintf(close, sizeof(close), "</%s>", name);

	if (no <= 0 || nc <= 0)
		return STR_NULL;
	p = memmem(body.p, body.len, open, (size_t)no);
	if (!p)
		return STR_NULL;
	p += no;
	q = memmem(p, body.len - (size_t)(p - body.p), close, (size_t)nc);
	return q ? str_make(p, (size_t)(q - p)) : STR_NULL;
}

/* The value of attribute name="..." in the first element named tag. */
static struct str attribute(struct str body, const char *tag, const char *name)
{
	char open[64], attr[64];
	const char *p, *end, *a, *q;
	int no = snprintf(open, sizeof(open), "<%s", tag);
	int na = snprintf(attr, sizeof(attr), "%s=\"", name);

	p = memmem(body.p, body.len, open, (size_t)no);
	if (!p)
		return STR_NULL;
	end = memchr(p, '>', body.len - (size_t)(p - body.p));
	if (!end)
		return STR_NULL;
	a = memmem(p, (size_t)(end - p), attr, (size_t)na);
	if (!a)
		return STR_NULL;
	a += na;
	q = memchr(a, '"', (size_t)(end - a));
	return q ? str_make(a, (size_t)(q - a)) : STR_NULL;
}

/* An identifier we echo: short, no markup characters. */
static bool plain(struct str s, size_t max)
{
	if (s.len > max)
		return false;
	for (size_t i = 0; i < s.len; i++)
		if (s.p[i] == '<' || s.p[i] == '>' || s.p[i] == '&' || s.p[i] == '"' ||
		    (unsigned char)s.p[i] < 0x20)
			return false;
	return true;
}

int relaycred_sip_response(const struct config *cfg, const char *user, struct str body, int64_t now,
			   struct sbuf *out)
{
	struct str rid, crid, dur;
	char username[600], password[64], fqdn[CONFIG_HOST_MAX];
	struct listen_addr ls[CONFIG_MAX_LISTEN];
	uint64_t minutes = RELAYCRED_TTL_MAX / 60;
	size_t nl;

	if (body.len == 0 || body.len > 8192 ||
	    !memmem(body.p, body.len, "<credentialsRequest", 19))
		return -1;
	rid = attribute(body, "request", "requestID");
	crid = attribute(body, "credentialsRequest", "credentialsRequestID");
	dur = element(body, "duration");
	if (!plain(rid, 64) || !plain(crid, 64))
		return -1;
	if (dur.len && (str_to_u64(dur, UINT32_MAX, &minutes) != 0 || minutes == 0))
		return -1;
	if (minutes > RELAYCRED_TTL_MAX / 60)
		minutes = RELAYCRED_TTL_MAX / 60; /* at most 480 minutes */
	if (relaycred_make(cfg, user, (int)minutes * 60, now, username, sizeof(username), password,
			   sizeof(password)) < 0)
		return -2;
	sbuf_printf(out,
		    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n"
		    "<response xmlns=\"http://schemas.microsoft.com/2006/09/sip/mrasp\" "
		    "requestID=\"%.*s\" version=\"1.0\" serverVersion=\"2.0\" to=\"%s\" "
		    "reasonPhrase=\"OK\">"
		    "<credentialsResponse credentialsRequestID=\"%.*s\">"
		    "<credentials><username>%s</username><password>%s</password>"
		    "<duration>%llu</duration></credentials><mediaRelayList>",
		    STR_FMT(rid), user, STR_FMT(crid), username, password,
		    (unsigned long long)minutes);
	secmem_wipe(password, sizeof(password));
	nl = relay_listeners(cfg, ls, fqdn, sizeof(fqdn));
	for (size_t i = 0; i < nl; i++) {
		const struct listen_addr *l = &ls[i];
		const char *host = relay_host(l, fqdn);
		if (l->kind == TRANSPORT_TLS)
			continue;
		sbuf_printf(out,
			    "<mediaRelay><location>internet</location><hostName>%s</hostName>"
			    "<%s>%u</%s></mediaRelay>",
			    host, l->kind == TRANSPORT_UDP ? "udpPort" : "tcpPort", l->port,
			    l->kind == TRANSPORT_UDP ? "udpPort" : "tcpPort");
	}
	sbuf_puts(out, "</mediaRelayList></credentialsResponse></response>");
	return sbuf_ok(out) ? 0 : -1;
}
