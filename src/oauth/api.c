/*
 * GET /api/v1/users/{uri} (api.h): a Bearer token granting users.read, the
 * user from the worker's store connection, its bindings from the location
 * service. Must never expose a Call-ID, an instance id or a source address.
 */
#include "oauth/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/str.h"
#include "core/clock.h"
#include "core/log.h"
#include "http/http.h"
#include "oauth/validate.h"
#include "sip/location.h"
#include "sip/server.h"
#include "vault/vault.h"

int api_user_uri(const char *rest, char uri[STORE_URI_MAX])
{
	char dec[STORE_URI_MAX], user[STORE_URI_MAX], domain[STORE_URI_MAX];
	size_t o = 0;

	uri[0] = '\0';
	for (const char *p = rest; *p; p++) {
		int c = (unsigned char)*p;

		if (c == '%') {
			int hi = str_hexval(p[1]), lo = hi < 0 ? -1 : str_hexval(p[2]);

			if (hi < 0 || lo < 0)
				return -1;
			c = hi * 16 + lo;
			p += 2;
		}
		if (c < 0x21 || c == 0x7f || c == '/' || o + 1 >= sizeof(dec))
			return -1;
		dec[o++] = (char)c;
	}
	dec[o] = '\0';
	if (o == 0 || store_uri_normalise(dec, uri, user, domain) != 0) {
		uri[0] = '\0';
		return -1;
	}
	return 0;
}

json_t *api_user_json(const struct store_user *u, int64_t now)
{
	/* a few bindings on the stack; the heap only for a user with more
	 * (a large block freed per request makes malloc consolidate). Not
	 * zeroed: location_lookup fills the first n, nothing reads past them */
	struct location_binding few[API_FEW_BINDINGS], *b = few;
	json_t *o = NULL, *regs;
	size_t n;

	n = location_lookup(str_cstr(u->uri), now, few, API_FEW_BINDINGS);
	if (n == API_FEW_BINDINGS) {
		if (!(b = malloc(API_MAX_BINDINGS * sizeof(*b))))
			return NULL;
		n = location_lookup(str_cstr(u->uri), now, b, API_MAX_BINDINGS);
	}
	regs = json_array();
	for (size_t i = 0; regs && i < n; i++) {
		json_t *r = json_pack("{s:s, s:I, s:s}", "contact", b[i].contact_uri, "expires_in",
				      (json_int_t)(b[i].expires > now ? b[i].expires - now : 0),
				      "transport", sip_transport_name(b[i].flow.transport));

		if (r && b[i].user_agent[0])
			json_object_set_new(r, "user_agent", json_string(b[i].user_agent));
		if (!r || json_array_append_new(regs, r) < 0) {
			json_decref(regs);
			regs = NULL;
		}
	}
	if (regs)
		o = json_pack("{s:s, s:s, s:b, s:o}", "uri", u->uri, "display_name",
			      u->display_name, "enabled", u->enabled, "registrations", regs);
	if (b != few)
		free(b);
	return o;
}

static void users_handler(const struct http_request *req, struct http_response *resp, void *arg)
{
	struct sip_worker *w = req->worker;
	struct oauth_principal who;
	struct store_user u;
	char uri[STORE_URI_MAX], pv[LOG_VAL_MAX], uv[LOG_VAL_MAX];
	json_t *o;
	int rc;

	(void)arg;
	if (!oauth_require(req, resp, API_USERS_SCOPE, &who))
		return;
	if (api_user_uri(req->path + strlen(API_USERS_PATH), uri) < 0) {
		http_response_error(resp, 400, "invalid_request",
				    "the path must end with a SIP URI, e.g. "
				    "/api/v1/users/sip:alice@example.com (percent-encoded or not)");
		return;
	}
	rc = w && w->store ? vault_user_get(w->store, uri, &u) : STORE_UNAVAILABLE;
	if (rc == STORE_NOTFOUND) {
		http_response_error(resp, 404, "not_found", "no such user");
		goto log;
	}
	if (rc != STORE_OK) {
		http_response_error(resp, 503, "temporarily_unavailable",
				    "the user directory is unavailable; retry later");
		goto log;
	}
	o = api_user_json(&u, clock_wall_s());
	if (!o) {
		http_response_error(resp, 500, "server_error", "out of memory");
		goto log;
	}
	http_response_json(resp, 200, o);
	json_decref(o);
log:
	log_info("api.users", "partner=%s user=%s result=%s",
		 log_val(str_cstr(who.partner), pv, sizeof(pv)),
		 log_val(str_cstr(uri), uv, sizeof(uv)),
		 rc == STORE_OK		? "ok"
		 : rc == STORE_NOTFOUND ? "not_found"
					: "unavailable");
}

int api_routes(void)
{
	return http_route_add(HTTP_GET, API_USERS_PATH, true, users_handler, NULL);
}
