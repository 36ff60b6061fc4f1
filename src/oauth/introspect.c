/*
 * POST /oauth/introspect (RFC 7662) and POST /oauth/revoke (RFC 7009): see
 * introspect.h. Must never log a form value nor a token, and never tell an
 * introspecting client why a token is inactive.
 */
#include "oauth/introspect.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/secmem.h"
#include "core/stats.h"
#include "http/http.h"
#include "http/webticket.h"
#include "oauth/jose.h"
#include "oauth/token.h"
#include "oauth/validate.h"

enum {
	IS_ACTIVE = 0,
	IS_INACTIVE,
	IS_REFUSED,
	RV_REVOKED,
	RV_IGNORED,
	RV_REFUSED,
	RV_UNAVAILABLE,
};

/* ---- answers ---- */

json_t *introspect_answer(const struct oauth_snapshot *snap, const char *token, int64_t now)
{
	struct oauth_principal p;
	json_t *o;

	if (!token || oauth_validate_token(snap, token, strlen(token), now, &p) != VR_OK)
		return json_pack("{s:b}", "active", 0);
	o = json_pack("{s:b, s:s, s:s, s:s, s:I, s:s, s:s}", "active", 1, "client_id", p.client_id,
		      "sub", p.sub, "iss", p.iss, "exp", (json_int_t)p.exp, "aud", p.aud,
		      "token_type", "Bearer");
	if (o && p.scope[0])
		json_object_set_new(o, "scope", json_string(p.scope));
	if (o && p.iat)
		json_object_set_new(o, "iat", json_integer(p.iat));
	if (o && p.nbf)
		json_object_set_new(o, "nbf", json_integer(p.nbf));
	if (o && p.jti[0])
		json_object_set_new(o, "jti", json_string(p.jti));
	if (o && p.acts_for_user)
		json_object_set_new(o, "act", json_pack("{s:s}", "sub", p.client_id));
	/* RFC 8705 §3.2: the certificate a bound token needs ("!" is a cnf we
	 * could not read: such a token is never active) */
	if (o && p.cnf_x5t_s256[0] == '!') {
		json_decref(o);
		return json_pack("{s:b}", "active", 0);
	}
	if (o && p.cnf_x5t_s256[0])
		json_object_set_new(o, "cnf", json_pack("{s:s}", "x5t#S256", p.cnf_x5t_s256));
	return o;
}

int introspect_revoke_webticket(const struct oauth_snapshot *snap, const char *token, int64_t now)
{
	struct oauth_principal p;
	int rc;

	if (!token)
		return 0;
	rc = webticket_check(snap, token, strlen(token), now, &p);
	if (rc == VR_INTERNAL && oauth_validate_unavailable())
		return -1;
	if (rc != VR_OK)
		return 0;
	/* a bearer token: whoever holds it may use it, so may stop it */
	return oauth_revoke(&p, snap->clock_skew, now) < 0 ? -1 : 1;
}

int introspect_revoke(const struct oauth_snapshot *snap, const struct oauth_partner *client,
		      const char *token, int64_t now)
{
	struct oauth_principal p;

	if (!token)
		return 0;
	if (oauth_validate_token(snap, token, strlen(token), now, &p) != VR_OK) {
		if (oauth_validate_unavailable())
			return -1;
		return introspect_revoke_webticket(snap, token, now);
	}
	/* RFC 7009 §2.1: only the client the token was issued to */
	if (strcmp(p.client_id, client->rec.issuer) != 0)
		return 0;
	/* checked on every use, cached or not */
	return oauth_revoke(&p, snap->clock_skew, now) < 0 ? -1 : 1;
}

/* ---- HTTP ---- */

static void handle(const struct http_request *req, struct http_response *resp, bool revoke)
{
	const char *endpoint = revoke ? REVOKE_PATH : INTROSPECT_PATH;
	const struct oauth_snapshot *snap = oauth_snapshot_get();
	const struct oauth_partner *client = NULL;
	struct token_form f;
	struct token_ctx ctx;
	struct token_result res;
	char why[200] = "", pv[LOG_VAL_MAX], wv[LOG_VAL_MAX], scheme[24];
	char aud[CONFIG_URL_MAX + 32], cnf[JOSE_X5T256_LEN + 1];
	int64_t now;
	int status = 400, outcome = revoke ? RV_REFUSED : IS_REFUSED, rc, wt = 0;
	json_t *o;

	/* the same request rules and client authentication as the token
	 * endpoint (token.h), with this endpoint's URL as a further aud */
	memset(&res, 0, sizeof(res));
	memset(&f, 0, sizeof(f));
	if (!snap) {
		res.status = 503;
		res.error = "temporarily_unavailable";
		snprintf(res.description, sizeof(res.description),
			 "the OAuth runtime is not ready");
		goto refused;
	}
	if (token_request_read(req, snap, &f, &ctx, scheme, sizeof(scheme), &res) < 0)
		goto refused;
	snprintf(aud, sizeof(aud), "%s%s", snap->issuer, endpoint);
	ctx.extra_aud = aud;
	now = ctx.now;
	if (!ctx.replay) {
		res.status = 503;
		res.error = "temporarily_unavailable";
		snprintf(res.description, sizeof(res.description), "not ready yet");
		goto refused;
	}
	/* a user (or anyone holding it) revokes a web ticket by presenting
	 * it, without client credentials: RFC 7009 §2.1 for a public client */
	if (revoke && f.token && !f.client_id && !f.client_assertion && !ctx.auth_scheme &&
	    !ctx.client_cert)
		wt = introspect_revoke_webticket(snap, f.token, now);
	if (wt == 0 && token_authenticate(&ctx, &f, &client, cnf, &res) < 0)
		goto refused;
	if (!f.token) {
		snprintf(why, sizeof(why), "token is missing");
		http_response_error(resp, 400, "invalid_request", why);
		goto done;
	}
	if (revoke) {
		rc = wt ? wt : introspect_revoke(snap, client, f.token, now);
		if (rc < 0) {
			/* RFC 7009 §2.2.1 */
			snprintf(why, sizeof(why),
				 "the revocation could not be recorded (list full or store "
				 "unavailable); retry later");
			http_response_header(resp, "Retry-After", "60");
			http_response_error(resp, status = 503, "temporarily_unavailable", why);
			outcome = RV_UNAVAILABLE;
			goto done;
		}
		http_response_set(resp, status = 200, "application/json", "{}", 2);
		outcome = rc ? RV_REVOKED : RV_IGNORED;
		why[0] = '\0';
		goto done;
	}
	o = introspect_answer(snap, f.token, now);
	if (o && oauth_validate_unavailable()) {
		/* fail closed, and say so: "inactive" would be a guess */
		json_decref(o);
		snprintf(why, sizeof(why), "the revocation list is unavailable; retry later");
		http_response_header(resp, "Retry-After", "5");
		http_response_error(resp, status = 503, "temporarily_unavailable", why);
		outcome = RV_UNAVAILABLE;
		goto done;
	}
	if (!o) {
		http_response_error(resp, status = 500, "server_error", "out of memory");
		goto done;
	}
	outcome = json_is_true(json_object_get(o, "active")) ? IS_ACTIVE : IS_INACTIVE;
	http_response_json(resp, status = 200, o);
	json_decref(o);
	goto done;
refused:
	status = res.status;
	snprintf(why, sizeof(why), "%s", res.description);
	if (res.www_authenticate[0])
		http_response_header(resp, "WWW-Authenticate", res.www_authenticate);
	http_response_error(resp, status, res.error, res.description[0] ? res.description : NULL);
done:
	stats_family_inc(SF_OAUTH_INTROSPECTION, (unsigned)outcome);
	log_emit(status == 200 ? LOG_INFO : LOG_WARN, revoke ? "oauth.revoke" : "oauth.introspect",
		 "status=%d partner=%s result=%s%s%s", status,
		 log_val(str_cstr(client ? client->rec.name : ""), pv, sizeof(pv)),
		 outcome == IS_ACTIVE	     ? "active"
		 : outcome == IS_INACTIVE    ? "inactive"
		 : outcome == RV_REVOKED     ? "revoked"
		 : outcome == RV_IGNORED     ? "ignored"
		 : outcome == RV_UNAVAILABLE ? "unavailable"
					     : "refused",
		 why[0] ? " why=" : "", why[0] ? log_val(str_cstr(why), wv, sizeof(wv)) : "");
	if (snap)
		oauth_snapshot_put(snap);
	token_form_free(&f);
}

static void introspect_handler(const struct http_request *req, struct http_response *resp,
			       void *arg)
{
	(void)arg;
	handle(req, resp, false);
}

static void revoke_handler(const struct http_request *req, struct http_response *resp, void *arg)
{
	(void)arg;
	handle(req, resp, true);
}

int introspect_routes(void)
{
	if (http_route_add(HTTP_POST, INTROSPECT_PATH, false, introspect_handler, NULL) < 0 ||
	    http_route_add(HTTP_POST, REVOKE_PATH, false, revoke_handler, NULL) < 0)
		return -1;
	return 0;
}
