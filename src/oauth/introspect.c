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
#include "oauth/jose.h"
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

/* ---- the form ---- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode n bytes of in into out (room for n + 1); length or -1. */
static long decode(const char *in, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)in[i];

		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			int hi, lo;

			if (i + 2 >= n)
				return -1;
			hi = hexval(in[i + 1]);
			lo = hexval(in[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = hi * 16 + lo;
			i += 2;
		}
		if (c < 0x20 || c == 0x7f)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return (long)o;
}

static const char **slot(struct introspect_form *f, const char *name, size_t n)
{
	static const struct {
		const char *name;
		size_t off;
	} known[] = {
	    {"token", offsetof(struct introspect_form, token)},
	    {"token_type_hint", offsetof(struct introspect_form, token_type_hint)},
	    {"client_id", offsetof(struct introspect_form, client_id)},
	    {"client_assertion_type", offsetof(struct introspect_form, client_assertion_type)},
	    {"client_assertion", offsetof(struct introspect_form, client_assertion)},
	};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strlen(known[i].name) == n && memcmp(known[i].name, name, n) == 0)
			return (const char **)(void *)((char *)f + known[i].off);
	return NULL;
}

void introspect_form_free(struct introspect_form *f)
{
	if (!f)
		return;
	if (f->buf) {
		secmem_wipe(f->buf, f->cap);
		free(f->buf);
	}
	memset(f, 0, sizeof(*f));
}

int introspect_form_parse(const char *body, size_t len, struct introspect_form *f, char *why,
			  size_t cap)
{
	size_t pos = 0, o = 0, pairs = 0;

	memset(f, 0, sizeof(*f));
	f->cap = len + 1;
	f->buf = malloc(f->cap);
	if (!f->buf) {
		snprintf(why, cap, "out of memory");
		return -1;
	}
	while (pos < len) {
		const char *pair = body + pos, *amp = memchr(pair, '&', len - pos), *eq;
		size_t n = amp ? (size_t)(amp - pair) : len - pos;
		const char **dst;
		char name[32];
		long vlen;

		pos += n + 1;
		if (n == 0)
			continue;
		if (++pairs > INTROSPECT_MAX_PARAMS) {
			snprintf(why, cap, "more than %d parameters", INTROSPECT_MAX_PARAMS);
			goto bad;
		}
		eq = memchr(pair, '=', n);
		if (!eq || (size_t)(eq - pair) >= sizeof(name) ||
		    decode(pair, (size_t)(eq - pair), name) < 0)
			continue; /* not a parameter we know */
		dst = slot(f, name, strlen(name));
		if (!dst)
			continue;
		if (*dst) {
			snprintf(why, cap, "%s is repeated", name);
			goto bad;
		}
		vlen = decode(eq + 1, n - (size_t)(eq - pair) - 1, f->buf + o);
		if (vlen < 0) {
			snprintf(why, cap, "%s has a bad %%-escape or a control character", name);
			goto bad;
		}
		if (vlen > 0) /* RFC 6749 §3.2: empty means omitted */
			*dst = f->buf + o;
		o += (size_t)vlen + 1;
	}
	return 0;
bad:
	introspect_form_free(f);
	return -1;
}

/* ---- client authentication (private_key_jwt, as token.c does it) ---- */

static struct jose_key *lookup_client_key(void *arg, const struct jose_jws *jws, int *err)
{
	const struct oauth_snapshot *snap = ((const void **)arg)[0];
	const struct oauth_partner **pp = ((void **)arg)[1];
	const struct jose_key *k;
	const char *iss = NULL;

	*err = JOSE_EUNKNOWNKID;
	if (jose_claim_str(jws->payload, "iss", &iss) != 0)
		return NULL;
	*pp = oauth_partner_by_id(snap, iss);
	if (!*pp)
		return NULL;
	k = jose_keyset_find(&(*pp)->keys, jws->kid, jws->x5t, jws->x5t_s256);
	return k ? jose_key_ref((struct jose_key *)k) : NULL;
}

static bool aud_one(const struct oauth_snapshot *snap, const char *a, const char *endpoint)
{
	size_t n = strlen(snap->issuer);

	return (snap->issuer[0] && strcmp(a, snap->issuer) == 0) ||
	       (snap->token_endpoint[0] && strcmp(a, snap->token_endpoint) == 0) ||
	       (n && strncmp(a, snap->issuer, n) == 0 && strcmp(a + n, endpoint) == 0);
}

static bool aud_ok(const struct oauth_snapshot *snap, const json_t *aud, const char *endpoint)
{
	size_t i;
	json_t *v;

	if (json_is_string(aud))
		return aud_one(snap, json_string_value(aud), endpoint);
	if (!json_is_array(aud) || json_array_size(aud) > 16)
		return false;
	json_array_foreach(aud, i, v)
	{
		if (json_is_string(v) && aud_one(snap, json_string_value(v), endpoint))
			return true;
	}
	return false;
}

/* RFC 7523 §3 claims of a verified assertion; NULL or what is wrong. */
static const char *assertion_claims(const struct oauth_snapshot *snap, const struct jose_jws *jws,
				    const char *endpoint, int64_t now)
{
	const char *iss = NULL, *sub = NULL, *jti = NULL;
	int64_t exp, nbf = 0, iat = 0, start = now, skew = snap->clock_skew;

	if (!aud_ok(snap, json_object_get(jws->payload, "aud"), endpoint))
		return "its aud is not this server";
	if (jose_claim_str(jws->payload, "iss", &iss) ||
	    jose_claim_str(jws->payload, "sub", &sub) || strcmp(iss, sub) != 0)
		return "its sub must equal its iss";
	if (jose_claim_time(jws->payload, "exp", &exp) != 0)
		return "it has no valid exp";
	if (exp + skew < now)
		return "it has expired";
	if (json_object_get(jws->payload, "nbf")) {
		if (jose_claim_time(jws->payload, "nbf", &nbf) != 0 || nbf > now + skew)
			return "its nbf is not a time or in the future";
		start = nbf;
	}
	if (json_object_get(jws->payload, "iat")) {
		if (jose_claim_time(jws->payload, "iat", &iat) != 0 || iat > now + skew)
			return "its iat is not a time or in the future";
		if (iat < start)
			start = iat;
	}
	if (snap->max_lifetime > 0 &&
	    (exp - start > snap->max_lifetime || exp - now > snap->max_lifetime))
		return "it lives longer than the maximum token lifetime";
	if (jose_claim_str(jws->payload, "jti", &jti) != 0 || !jti[0] ||
	    strlen(jti) > REPLAY_JTI_MAX)
		return "it needs a jti";
	return NULL;
}

/* client_id, when sent, names the same client (bare or <id>@<realm>) */
static bool same_client(const struct oauth_snapshot *snap, const struct oauth_partner *p,
			const char *client_id)
{
	return oauth_partner_by_id(snap, client_id) == p;
}

int introspect_client_auth(const struct oauth_snapshot *snap, struct replay_cache *replay,
			   const struct introspect_form *f, const char *endpoint, int64_t now,
			   const struct oauth_partner **client, char *why, size_t cap)
{
	struct jose_limits lim = {snap->max_token_size, 0, false};
	const struct oauth_partner *p = NULL;
	const void *arg[2] = {snap, &p};
	struct jose_jws jws;
	const char *bad, *jti = NULL;
	char key[STORE_PARTNER_NAME_MAX + 8];
	int64_t exp = 0;
	int rc;

	*client = NULL;
	if (!f->client_assertion || !f->client_assertion_type ||
	    strcmp(f->client_assertion_type,
		   "urn:ietf:params:oauth:client-assertion-type:jwt-bearer") != 0) {
		snprintf(why, cap,
			 "client authentication required: client_assertion with "
			 "client_assertion_type "
			 "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
		return -1;
	}
	rc = jose_verify(f->client_assertion, strlen(f->client_assertion), &lim, lookup_client_key,
			 (void *)arg, &jws);
	if (rc != 0) {
		snprintf(why, cap, "the client assertion was refused: %s",
			 p || rc != JOSE_EUNKNOWNKID ? jose_strerror(rc) : "unknown_issuer");
		return -1;
	}
	bad = assertion_claims(snap, &jws, endpoint, now);
	if (!bad && f->client_id && !same_client(snap, p, f->client_id))
		bad = "client_id does not name its signer";
	if (bad) {
		snprintf(why, cap, "the client assertion was refused: %s", bad);
		jose_jws_free(&jws);
		return -1;
	}
	jose_claim_str(jws.payload, "jti", &jti);
	jose_claim_time(jws.payload, "exp", &exp);
	snprintf(key, sizeof(key), "i/%s", p->rec.name);
	rc = replay_check_and_add(replay, key, jti, exp + snap->clock_skew, now);
	jose_jws_free(&jws);
	if (rc == REPLAY_SEEN) {
		snprintf(why, cap, "the client assertion's jti was used before");
		return -1;
	}
	if (rc != REPLAY_OK) {
		snprintf(why, cap, "too many assertions are live; retry in a moment");
		return -2;
	}
	*client = p;
	return 0;
}

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

int introspect_revoke(const struct oauth_snapshot *snap, const struct oauth_partner *client,
		      const char *token, int64_t now)
{
	struct oauth_principal p;

	if (!token || oauth_validate_token(snap, token, strlen(token), now, &p) != VR_OK)
		return 0;
	/* RFC 7009 §2.1: only the client the token was issued to */
	if (strcmp(p.client_id, client->rec.issuer) != 0)
		return 0;
	/* checked on every use, cached or not */
	return oauth_revoke(&p, snap->clock_skew, now) < 0 ? -1 : 1;
}

/* ---- HTTP ---- */

static struct replay_cache *g_replay;

static bool form_type(const char *ct)
{
	static const char want[] = "application/x-www-form-urlencoded";
	size_t n = sizeof(want) - 1;

	if (!ct)
		return false;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (strncasecmp(ct, want, n) != 0)
		return false;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

static void handle(const struct http_request *req, struct http_response *resp, bool revoke)
{
	const char *endpoint = revoke ? REVOKE_PATH : INTROSPECT_PATH;
	const struct oauth_snapshot *snap = NULL;
	const struct oauth_partner *client = NULL;
	struct introspect_form f;
	char why[200] = "", pv[LOG_VAL_MAX], wv[LOG_VAL_MAX];
	int64_t now = clock_wall_s();
	int status = 400, outcome = revoke ? RV_REFUSED : IS_REFUSED, rc;
	json_t *o;

	memset(&f, 0, sizeof(f));
	if (!form_type(http_request_header(req, "Content-Type"))) {
		snprintf(why, sizeof(why),
			 "Content-Type must be application/x-www-form-urlencoded");
		http_response_error(resp, 400, "invalid_request", why);
		goto done;
	}
	if (req->query && req->query[0]) {
		snprintf(why, sizeof(why), "send the parameters in the body, not the query string");
		http_response_error(resp, 400, "invalid_request", why);
		goto done;
	}
	if (http_request_header(req, "Authorization")) {
		snprintf(why, sizeof(why),
			 "authenticate with a client assertion (private_key_jwt, RFC 7523), not an "
			 "Authorization header");
		http_response_header(resp, "WWW-Authenticate", "Bearer realm=\"oauth\"");
		http_response_error(resp, status = 401, "invalid_client", why);
		goto done;
	}
	if (introspect_form_parse(req->body.p, req->body.len, &f, why, sizeof(why)) < 0) {
		http_response_error(resp, 400, "invalid_request", why);
		goto done;
	}
	snap = oauth_snapshot_get();
	rc = introspect_client_auth(snap, g_replay, &f, endpoint, now, &client, why, sizeof(why));
	if (rc < 0) {
		status = rc == -2 ? 503 : 401;
		http_response_error(resp, status,
				    rc == -2 ? "temporarily_unavailable" : "invalid_client", why);
		goto done;
	}
	if (!f.token) {
		snprintf(why, sizeof(why), "token is missing");
		http_response_error(resp, 400, "invalid_request", why);
		goto done;
	}
	if (revoke) {
		rc = introspect_revoke(snap, client, f.token, now);
		if (rc < 0) {
			/* RFC 7009 §2.2.1 */
			snprintf(why, sizeof(why), "the revocation list is full; retry later");
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
	if (!o) {
		http_response_error(resp, status = 500, "server_error", "out of memory");
		goto done;
	}
	outcome = json_is_true(json_object_get(o, "active")) ? IS_ACTIVE : IS_INACTIVE;
	http_response_json(resp, status = 200, o);
	json_decref(o);
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
	introspect_form_free(&f);
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
	if (!g_replay)
		g_replay = replay_new(0);
	if (!g_replay)
		return -1;
	if (http_route_add(HTTP_POST, INTROSPECT_PATH, false, introspect_handler, NULL) < 0 ||
	    http_route_add(HTTP_POST, REVOKE_PATH, false, revoke_handler, NULL) < 0)
		return -1;
	return 0;
}

void introspect_shutdown(void)
{
	replay_free(g_replay);
	g_replay = NULL;
}
