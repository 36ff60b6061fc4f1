/*
 * /oauth/consent (consent.h): a signed-in user grants, withdraws and lists
 * their consent for partners. Must never act for anyone but the user who
 * authenticated, nor log a credential.
 */
#include "oauth/consent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"
#include "http/http.h"
#include "http/httpauth.h"
#include "http/webticket.h"
#include "oauth/oauth.h"
#include "oauth/token.h"
#include "oauth/validate.h"
#include "sip/server.h"
#include "store/store_oauth.h"

struct who {
	struct store_user user;
	const char *mech; /* "webticket", "negotiate", "ntlm", "digest" */
};

/* The authenticated user: a web ticket (Bearer) or a web scheme. true, or
 * false with resp filled. */
static bool consent_user(const struct http_request *req, struct http_response *resp,
			 struct store *st, struct who *w)
{
	const char *h = http_request_header(req, "Authorization");
	struct httpauth_result ar;
	char uri[STORE_URI_MAX];
	int rc;

	memset(w, 0, sizeof(*w));
	if (h && strncasecmp(h, "Bearer", 6) == 0 && (h[6] == ' ' || h[6] == '\0')) {
		if (webticket_require(req, resp, uri, sizeof(uri)) < 0)
			return false;
		rc = store_user_get(st, uri, &w->user);
		if (rc == STORE_OK && w->user.enabled) {
			w->mech = "webticket";
			return true;
		}
		if (rc == STORE_OK || rc == STORE_NOTFOUND) {
			http_response_header(resp, "WWW-Authenticate",
					     "Bearer error=\"invalid_token\"");
			http_response_error(resp, 401, "invalid_token",
					    "the web ticket's user is unknown or disabled");
		} else {
			http_response_error(resp, 503, "temporarily_unavailable",
					    "the user directory is unavailable; retry later");
		}
		return false;
	}
	if (!httpauth_require(req, resp, &ar))
		return false;
	w->user = ar.user;
	w->mech = ar.mech;
	return true;
}

/* client_id of a form (the POST body or the DELETE query): 0, or -1 with
 * resp filled. */
static int client_id_of(const char *text, size_t len, struct token_form *f,
			struct http_response *resp)
{
	struct token_result res;

	memset(&res, 0, sizeof(res));
	if (token_form_parse(text, len, f, &res) < 0) {
		http_response_error(resp, res.status ? res.status : 400,
				    res.error ? res.error : "invalid_request", res.description);
		return -1;
	}
	if (!f->client_id) {
		token_form_free(f);
		http_response_error(resp, 400, "invalid_request",
				    "client_id is missing: the partner's name or issuer id");
		return -1;
	}
	return 0;
}

/* The partner named by client_id (its name, or its issuer id among the
 * enabled partners). 0, or -1 with resp filled. */
static int partner_of(struct store *st, const char *client_id, struct store_partner *p,
		      struct http_response *resp)
{
	const struct oauth_snapshot *snap;
	const struct oauth_partner *op;
	char name[STORE_PARTNER_NAME_MAX] = "";
	int rc;

	if (strlen(client_id) < STORE_PARTNER_NAME_MAX) {
		rc = store_partner_get(st, client_id, p);
		store_partner_clear(p);
		if (rc == STORE_OK)
			return 0;
		if (rc != STORE_NOTFOUND && rc != STORE_INVALID)
			goto unavailable;
	}
	snap = oauth_snapshot_get();
	op = snap ? oauth_partner_by_id(snap, client_id) : NULL;
	if (op)
		snprintf(name, sizeof(name), "%s", op->rec.name);
	if (snap)
		oauth_snapshot_put(snap);
	if (name[0]) {
		rc = store_partner_get(st, name, p);
		store_partner_clear(p);
		if (rc == STORE_OK)
			return 0;
		if (rc != STORE_NOTFOUND)
			goto unavailable;
	}
	http_response_error(resp, 404, "not_found", "client_id names no partner application");
	return -1;
unavailable:
	http_response_error(resp, 503, "temporarily_unavailable",
			    "the partner registry is unavailable; retry later");
	return -1;
}

struct list_ctx {
	json_t *a;
};

static int list_cb(void *ctx, const struct store_oauth_consent *c)
{
	struct list_ctx *l = ctx;
	json_t *o = json_pack("{s:s, s:I, s:s}", "client_id", c->partner, "granted_at",
			      (json_int_t)c->granted_at, "granted_by", c->granted_by);

	return o && json_array_append_new(l->a, o) == 0 ? 0 : -1;
}

static void list(struct store *st, const struct who *w, struct http_response *resp)
{
	struct list_ctx l = {json_array()};
	json_t *o;
	int rc;

	if (!l.a) {
		http_response_error(resp, 500, "server_error", "out of memory");
		return;
	}
	rc = store_oauth_consent_list(st, 0, w->user.id, list_cb, &l);
	if (rc != STORE_OK) {
		json_decref(l.a);
		http_response_error(resp, rc > 0 ? 500 : 503,
				    rc > 0 ? "server_error" : "temporarily_unavailable",
				    "the consent records are unavailable; retry later");
		return;
	}
	o = json_pack("{s:s, s:o}", "user", w->user.uri, "consents", l.a);
	if (!o) {
		http_response_error(resp, 500, "server_error", "out of memory");
		return;
	}
	http_response_json(resp, 200, o);
	json_decref(o);
}

/* Grant (POST) or withdraw (DELETE) the user's consent for one partner. */
static const char *change(const struct http_request *req, struct store *st, const struct who *w,
			  bool grant, struct http_response *resp, char *partner, size_t cap)
{
	struct token_form f;
	struct store_partner p;
	char detail[64];
	const char *outcome = "refused";
	json_t *o;
	int rc;

	if (grant ? client_id_of(req->body.p, req->body.len, &f, resp) < 0
		  : client_id_of(req->query, req->query ? strlen(req->query) : 0, &f, resp) < 0)
		return outcome;
	if (partner_of(st, f.client_id, &p, resp) < 0)
		goto out;
	snprintf(partner, cap, "%s", p.name);
	rc = store_begin(st);
	if (rc == STORE_OK)
		rc = grant ? store_oauth_consent_grant(st, p.id, w->user.id, clock_wall_s(), "user")
			   : store_oauth_consent_revoke(st, p.id, w->user.id);
	snprintf(detail, sizeof(detail), "by=user via=%s", w->mech);
	if (rc == STORE_OK)
		rc = store_audit_add(st, w->user.uri,
				     grant ? "partner.consent" : "partner.consent_revoke", p.name,
				     req->peer ? req->peer : "", detail);
	if (rc == STORE_OK)
		rc = store_commit(st);
	if (rc != STORE_OK) {
		store_rollback(st);
		if (rc == STORE_NOTFOUND && !grant) {
			http_response_error(resp, 404, "not_found",
					    "you have given this partner no consent");
			outcome = "none";
		} else {
			http_response_error(resp, 503, "temporarily_unavailable",
					    "the consent could not be recorded; retry later");
			outcome = "unavailable";
		}
		goto out;
	}
	o = json_pack("{s:s, s:s, s:b}", "client_id", p.name, "user", w->user.uri, "consent",
		      grant);
	if (o)
		http_response_json(resp, 200, o);
	else
		http_response_error(resp, 500, "server_error", "out of memory");
	json_decref(o);
	outcome = grant ? "granted" : "withdrawn";
out:
	token_form_free(&f);
	return outcome;
}

static void consent_handler(const struct http_request *req, struct http_response *resp, void *arg)
{
	struct sip_worker *wk = req->worker;
	struct store *st = wk ? wk->store : NULL;
	struct who w;
	char partner[STORE_PARTNER_NAME_MAX] = "", uv[LOG_VAL_MAX], pv[LOG_VAL_MAX];
	const char *outcome = "listed";

	(void)arg;
	if (!st) {
		http_response_error(resp, 503, "temporarily_unavailable", "no store; retry later");
		return;
	}
	if (req->method == HTTP_POST && req->query && req->query[0]) {
		http_response_error(resp, 400, "invalid_request",
				    "send client_id in the request body "
				    "(application/x-www-form-urlencoded), not in the query");
		return;
	}
	if (req->method == HTTP_POST) {
		const char *ct = http_request_header(req, "Content-Type");

		if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0 ||
		    (ct[33] && ct[33] != ';' && ct[33] != ' ')) {
			http_response_error(resp, 400, "invalid_request",
					    "Content-Type must be "
					    "application/x-www-form-urlencoded");
			return;
		}
	}
	if (!consent_user(req, resp, st, &w))
		return;
	if (req->method == HTTP_GET || req->method == HTTP_HEAD)
		list(st, &w, resp);
	else
		outcome =
		    change(req, st, &w, req->method == HTTP_POST, resp, partner, sizeof(partner));
	log_info("oauth.consent", "user=%s partner=%s via=%s result=%s",
		 log_val(str_cstr(w.user.uri), uv, sizeof(uv)),
		 log_val(str_cstr(partner[0] ? partner : "-"), pv, sizeof(pv)), w.mech, outcome);
}

int consent_routes(void)
{
	return http_route_add(HTTP_GET | HTTP_POST | HTTP_DELETE, CONSENT_PATH, false,
			      consent_handler, NULL);
}
