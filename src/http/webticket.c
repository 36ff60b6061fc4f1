/*
 * GET /webticket and the web ticket check (webticket.h). Who the user is
 * comes from httpauth; the token comes from the token service
 * (sts_access_token) and is signed with the current key of the OAuth
 * snapshot, so the private key never passes through here.
 *
 * Must never log a token.
 */
#include "http/webticket.h"

#include <stdio.h>
#include <stdlib.h>

#include <openssl/sha.h>
#include <string.h>
#include <strings.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/secmem.h"
#include "http/http.h"
#include "http/httpauth.h"
#include "oauth/jose.h"
#include "oauth/oauth.h"
#include "oauth/sts.h"
#include "oauth/validate.h"
#include "sip/server.h"

static int vr_of_jose(int rc)
{
	switch (rc) {
	case JOSE_ETOOLARGE:
		return VR_TOO_LARGE;
	case JOSE_EBASE64URL:
		return VR_BAD_BASE64URL;
	case JOSE_EJSON:
		return VR_BAD_JSON;
	case JOSE_EDUPLICATE:
		return VR_DUPLICATE_CLAIM;
	case JOSE_ETOODEEP:
		return VR_TOO_DEEP;
	case JOSE_EALG_NONE:
		return VR_ALG_NONE;
	case JOSE_EALG:
		return VR_ALG_NOT_ALLOWED;
	case JOSE_ECRIT:
		return VR_CRIT_UNSUPPORTED;
	case JOSE_ENOKEYID:
		return VR_NO_KEY_ID;
	case JOSE_EUNKNOWNKID:
		return VR_UNKNOWN_KID;
	case JOSE_EBADSIG:
		return VR_BAD_SIGNATURE;
	case JOSE_EHEADER:
		return VR_BAD_HEADER;
	case JOSE_ECLAIM_MISSING:
		return VR_CLAIM_MISSING;
	case JOSE_ECLAIM_TYPE:
		return VR_CLAIM_TYPE;
	case JOSE_ENOMEM:
	case JOSE_EINTERNAL:
		return VR_INTERNAL;
	default:
		return VR_MALFORMED;
	}
}

/* "Bearer <token>" -> the token (RFC 6750 §2.1). */
static int bearer_token(const char *authorization, const char **tok, size_t *len)
{
	const char *p;

	if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0)
		return VR_MISSING;
	p = authorization + 7;
	while (*p == ' ')
		p++;
	*tok = p;
	*len = strcspn(p, " \t\r\n");
	if (*len == 0)
		return VR_MISSING;
	if (p[*len] != '\0')
		return VR_MALFORMED;
	return VR_OK;
}

static int check_aud(const struct oauth_snapshot *snap, const json_t *aud)
{
	size_t i;
	json_t *v;

	if (!aud)
		return VR_CLAIM_MISSING;
	if (json_is_string(aud))
		return oauth_audience_is_us(snap, json_string_value(aud)) ? VR_OK : VR_BAD_AUDIENCE;
	if (!json_is_array(aud) || json_array_size(aud) > 16)
		return VR_CLAIM_TYPE;
	json_array_foreach(aud, i, v)
	{
		if (json_is_string(v) && oauth_audience_is_us(snap, json_string_value(v)))
			return VR_OK;
	}
	return VR_BAD_AUDIENCE;
}

static int check_times(const struct oauth_snapshot *snap, const json_t *payload, int64_t now)
{
	int64_t exp, nbf = 0, iat = 0, skew = snap->clock_skew, start;
	int rc = jose_claim_time(payload, "exp", &exp);

	if (rc != 0)
		return vr_of_jose(rc);
	if (json_object_get(payload, "nbf") && (rc = jose_claim_time(payload, "nbf", &nbf)) != 0)
		return vr_of_jose(rc);
	if (json_object_get(payload, "iat") && (rc = jose_claim_time(payload, "iat", &iat)) != 0)
		return vr_of_jose(rc);
	if (exp + skew < now)
		return VR_EXPIRED;
	if (nbf > now + skew || iat > now + skew)
		return VR_NOT_YET_VALID;
	start = nbf ? nbf : iat ? iat : now;
	if (exp - start > snap->max_lifetime || exp - now > snap->max_lifetime)
		return VR_LIFETIME_TOO_LONG;
	return VR_OK;
}

static bool has_scope(const char *scope, const char *want)
{
	size_t n = strlen(want);

	for (const char *p = scope; *p;) {
		size_t l = strcspn(p, " ");
		if (l == n && strncmp(p, want, n) == 0)
			return true;
		p += l;
		while (*p == ' ')
			p++;
	}
	return false;
}

static int check_claims(const struct oauth_snapshot *snap, const struct jose_jws *jws, int64_t now,
			char *user_uri, size_t cap)
{
	const char *iss, *cid, *sub, *scope;
	int rc;

	if (!jws->typ || strcasecmp(jws->typ, "at+jwt") != 0)
		return VR_BAD_HEADER;
	if ((rc = jose_claim_str(jws->payload, "iss", &iss)) != 0 ||
	    (rc = jose_claim_str(jws->payload, "client_id", &cid)) != 0 ||
	    (rc = jose_claim_str(jws->payload, "sub", &sub)) != 0 ||
	    (rc = jose_claim_str(jws->payload, "scope", &scope)) != 0)
		return vr_of_jose(rc);
	if (!snap->issuer[0] || strcmp(iss, snap->issuer) != 0 || strcmp(cid, snap->issuer) != 0)
		return VR_UNKNOWN_ISSUER;
	if ((rc = check_aud(snap, json_object_get(jws->payload, "aud"))) != VR_OK)
		return rc;
	if ((rc = check_times(snap, jws->payload, now)) != VR_OK)
		return rc;
	if (!has_scope(scope, WEBTICKET_SCOPE))
		return VR_INSUFFICIENT_SCOPE;
	if (strncmp(sub, "sip:", 4) != 0 || strlen(sub) >= cap)
		return VR_CLAIM_TYPE;
	snprintf(user_uri, cap, "%s", sub);
	return VR_OK;
}

/* What the revocation list needs of a verified ticket (validate.h). */
static void fill_principal(const struct jose_jws *jws, const char *tok, size_t len,
			   struct oauth_principal *p)
{
	const char *iss = "", *jti = "";
	int64_t t;

	jose_claim_str(jws->payload, "iss", &iss);
	if (jose_claim_str(jws->payload, "jti", &jti) != 0 || strlen(jti) > REPLAY_JTI_MAX)
		jti = ""; /* then revoked by the hash of its text */
	p->own = true;
	snprintf(p->token_type, sizeof(p->token_type), "webticket");
	snprintf(p->iss, sizeof(p->iss), "%s", iss);
	snprintf(p->client_id, sizeof(p->client_id), "%s", iss);
	snprintf(p->jti, sizeof(p->jti), "%s", jti);
	snprintf(p->scope, sizeof(p->scope), WEBTICKET_SCOPE);
	if (jose_claim_time(jws->payload, "exp", &t) == 0)
		p->exp = t;
	if (json_object_get(jws->payload, "iat") && jose_claim_time(jws->payload, "iat", &t) == 0)
		p->iat = t;
	if (json_object_get(jws->payload, "nbf") && jose_claim_time(jws->payload, "nbf", &t) == 0)
		p->nbf = t;
	SHA256((const unsigned char *)tok, len, p->hash);
}

int webticket_check(const struct oauth_snapshot *snap, const char *tok, size_t len, int64_t now,
		    struct oauth_principal *p)
{
	struct jose_limits lim = {0, 0, false};
	struct jose_jws jws;
	int rc;

	memset(p, 0, sizeof(*p));
	if (!snap)
		return VR_INTERNAL;
	if (!tok || len == 0)
		return VR_MISSING;
	lim.max_token = snap->max_token_size ? snap->max_token_size : JOSE_DEFAULT_MAX_TOKEN;
	if (len > lim.max_token)
		return VR_TOO_LARGE;
	memset(&jws, 0, sizeof(jws));
	rc = jose_verify_keyset(tok, len, &lim, &snap->own, &jws);
	if (rc != JOSE_OK) {
		jose_jws_free(&jws);
		return vr_of_jose(rc);
	}
	rc = check_claims(snap, &jws, now, p->sub, sizeof(p->sub));
	if (rc == VR_OK) {
		fill_principal(&jws, tok, len, p);
		/* revoked by its holder (POST /oauth/revoke), here or at any
		 * server of the pool; a store outage fails closed */
		rc = oauth_validate_revocation(p, now);
	}
	jose_jws_free(&jws);
	if (rc != VR_OK)
		memset(p, 0, sizeof(*p));
	return rc;
}

int webticket_validate(const struct oauth_snapshot *snap, const char *authorization, int64_t now,
		       char *user_uri, size_t cap)
{
	struct oauth_principal p;
	const char *tok = NULL;
	size_t len = 0;
	int rc;

	if (cap)
		user_uri[0] = '\0';
	if (!snap || !cap)
		return VR_INTERNAL;
	rc = bearer_token(authorization, &tok, &len);
	if (rc != VR_OK)
		return rc;
	rc = webticket_check(snap, tok, len, now, &p);
	if (rc == VR_OK && strlen(p.sub) >= cap)
		rc = VR_CLAIM_TYPE;
	if (rc == VR_OK)
		snprintf(user_uri, cap, "%s", p.sub);
	return rc;
}

int webticket_of_request(const struct http_request *req, char *user_uri, size_t cap)
{
	const struct oauth_snapshot *snap = oauth_snapshot_get();
	const struct sip_worker *w = req->worker;
	int rc;

	/* the pool's revocations through this worker's store connection */
	oauth_validate_bind_store(w ? w->store : NULL);
	rc = webticket_validate(snap, http_request_header(req, "Authorization"), clock_wall_s(),
				user_uri, cap);
	if (snap)
		oauth_snapshot_put(snap);
	return rc;
}

int webticket_require(const struct http_request *req, struct http_response *resp, char *user_uri,
		      size_t cap)
{
	char desc[96];
	int rc = webticket_of_request(req, user_uri, cap);

	if (rc == VR_OK)
		return 0;
	log_info("webticket.refused", "result=%s", validate_result_name(rc));
	if (rc == VR_MISSING) {
		http_response_error(resp, 401, "invalid_request", "a web ticket is required");
		http_response_header(resp, "WWW-Authenticate", "Bearer");
		return -1;
	}
	if (rc == VR_INTERNAL && oauth_validate_unavailable()) {
		/* fail closed: the pool's revocation list could not be read */
		http_response_header(resp, "Retry-After", "5");
		http_response_error(resp, 503, "temporarily_unavailable",
				    "the revocation list is unavailable; retry in a moment");
		return -1;
	}
	snprintf(desc, sizeof(desc), "web ticket refused: %s", validate_result_name(rc));
	http_response_error(resp, 401, "invalid_token", desc);
	http_response_header(resp, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
	return -1;
}

int webticket_mint(const struct sts_issuer *iss, const char *user_uri, int64_t now, char **tok,
		   size_t *len, int *expires_in)
{
	struct sts_access a;

	*tok = NULL;
	memset(&a, 0, sizeof(a));
	a.client_id = iss->issuer; /* a web ticket: we are the client */
	a.subject = user_uri;
	a.audience = NULL; /* our issuer: the services of this server */
	a.scope = WEBTICKET_SCOPE;
	a.lifetime = WEBTICKET_LIFETIME;
	return sts_access_token(iss, &a, now, tok, len, expires_in) == STS_OK ? 0 : -1;
}

/* Mint the ticket for user_uri with the current snapshot. 0 or -1. */
static int mint(const char *user_uri, char **tok, size_t *len, int *expires_in)
{
	const struct oauth_snapshot *snap = oauth_snapshot_get();
	struct sts_issuer iss;
	int rc;

	if (!snap)
		return -1;
	sts_issuer_from_snapshot(&iss, snap);
	rc = webticket_mint(&iss, user_uri, clock_wall_s(), tok, len, expires_in);
	oauth_snapshot_put(snap);
	return rc;
}

static void webticket_handler(const struct http_request *req, struct http_response *resp, void *arg)
{
	struct httpauth_result who;
	char *tok = NULL;
	size_t len = 0;
	int expires_in = 0;
	json_t *o;

	(void)arg;
	if (!httpauth_require(req, resp, &who))
		return;
	if (mint(who.user.uri, &tok, &len, &expires_in) < 0) {
		log_err("webticket.issue_failed", "user=%s", who.user.uri);
		http_response_error(resp, 503, "temporarily_unavailable",
				    "the token service cannot sign now; retry later");
		return;
	}
	o = json_pack("{s:s, s:i, s:s}", "token", tok, "expires_in", expires_in, "token_type",
		      "Bearer");
	if (o)
		http_response_json(resp, 200, o);
	else
		http_response_error(resp, 500, "server_error", "out of memory");
	log_info("webticket.issued", "user=%s mech=%s expires_in=%d", who.user.uri, who.mech,
		 expires_in);
	json_decref(o);
	secmem_wipe(tok, len);
	free(tok);
}

int webticket_routes_add(void)
{
	return http_route_add(HTTP_GET, WEBTICKET_PATH, false, webticket_handler, NULL);
}
