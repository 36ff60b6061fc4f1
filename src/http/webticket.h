/*
 * GET /webticket (issue 4 item 7): a user who signs in with Negotiate, NTLM
 * or Digest (httpauth.h) gets a short-lived user token from the built-in
 * token service, for the other web services of this server (TURN
 * credentials, certificate provisioning):
 *   200 {"token": <JWT>, "expires_in": N, "token_type": "Bearer"}
 *
 * The token is an RFC 9068 access token (sts_access_token, typ "at+jwt")
 * signed with our current key: iss = aud = client_id = our issuer URL, sub =
 * the user's SIP URI, scope "webticket", iat/nbf/exp/jti; lifetime
 * WEBTICKET_LIFETIME, never above [oauth] max_token_lifetime.
 *
 * client_id = our own issuer marks a web ticket: oauth_validate_token()
 * refuses it (partner_disabled: it is not a partner's token), so a web
 * ticket never opens a partner API; services for users check it with
 * webticket_validate().
 */
#ifndef RTC_HTTP_WEBTICKET_H
#define RTC_HTTP_WEBTICKET_H

#include <stddef.h>
#include <stdint.h>

struct oauth_snapshot;
struct oauth_principal;
struct sts_issuer;
struct http_request;
struct http_response;

#define WEBTICKET_PATH	   "/webticket"
#define WEBTICKET_SCOPE	   "webticket"
#define WEBTICKET_LIFETIME 900 /* seconds: 15 minutes */

/*
 * Mint the web ticket of user_uri (a "sip:" URI) with iss at now: *tok is
 * malloc'd (free it; *len may be NULL), *expires_in the lifetime granted.
 * 0 or -1 (signer failure, bad input).
 */
int webticket_mint(const struct sts_issuer *iss, const char *user_uri, int64_t now, char **tok,
		   size_t *len, int *expires_in);

/*
 * Check a web ticket from an Authorization value ("Bearer <jwt>", scheme
 * case-insensitive) against snap at now: signed by one of our published
 * keys with its pinned algorithm, typ at+jwt, iss and client_id our issuer,
 * aud naming us (oauth_audience_is_us), exp not past and nbf/iat not in
 * the future (beyond the snapshot's skew), lifetime at most max_lifetime,
 * scope holding "webticket", sub a sip: URI, not revoked (webticket_check). VR_OK (enum
 * validate_result, oauth/validate.h) with user_uri filled (cap bytes), or another VR_* with
 * user_uri empty. Never logs the token.
 */
int webticket_validate(const struct oauth_snapshot *snap, const char *authorization, int64_t now,
		       char *user_uri, size_t cap);

/*
 * The same check of a bare ticket (tok, len bytes), and also that it is
 * not revoked (oauth_validate_revocation: this process's list and the
 * pool's when a store is bound; VR_REVOKED, or VR_INTERNAL with
 * oauth_validate_unavailable() when the store cannot answer).
 * webticket_validate does the same. VR_OK with *p filled (own, sub = the
 * user, iss, jti, exp, hash: what oauth_revoke needs), else *p zeroed.
 */
int webticket_check(const struct oauth_snapshot *snap, const char *tok, size_t len, int64_t now,
		    struct oauth_principal *p);

/*
 * webticket_validate with the current snapshot and the request's
 * Authorization header, the worker's store bound for the pool's
 * revocations (oauth_validate_bind_store). A VR_* result; writes no answer.
 */
int webticket_of_request(const struct http_request *req, char *user_uri, size_t cap);

/*
 * For a handler of a user service: webticket_of_request, answering a
 * failure itself. 0 with user_uri filled, or -1 with resp filled (401
 * WWW-Authenticate: Bearer error="invalid_token"; 503 with Retry-After
 * when the revocation list cannot be read).
 */
int webticket_require(const struct http_request *req, struct http_response *resp, char *user_uri,
		      size_t cap);

/* Register GET /webticket. Before any HTTPS server runs. 0 or -1. */
int webticket_routes_add(void);

#endif
