/*
 * Token introspection (RFC 7662, POST /oauth/introspect) and revocation
 * (RFC 7009, POST /oauth/revoke), for authenticated partners only (issue 3
 * item 9).
 *
 * The request rules and the client authentication are the token
 * endpoint's (token_request_read and token_authenticate in token.h):
 * private_key_jwt with the one replay cache of client assertions (aud may
 * also be this endpoint's URL), or a registered self-signed TLS client
 * certificate with client_id.
 *
 * Introspection answers {"active": false} for anything that does not
 * validate (validate.h), without saying why; a valid token gets active,
 * scope, client_id, sub, exp, iat, nbf, aud, iss, jti, token_type.
 * Revocation answers 200 to every well-formed authenticated request (RFC
 * 7009 §2.2) and revokes only a valid token that was issued to (or signed
 * by) the requesting partner, or a web ticket (GET /webticket) whoever
 * presents it: its holder, a partner it was given to or the user without
 * client credentials (the web ticket is then refused everywhere, token
 * exchange included).
 *
 * Must never log a form value or a token.
 */
#ifndef RTC_OAUTH_INTROSPECT_H
#define RTC_OAUTH_INTROSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "oauth/oauth.h"
#include "oauth/replay.h"

#define INTROSPECT_PATH "/oauth/introspect"
#define REVOKE_PATH	"/oauth/revoke"

/* The RFC 7662 §2.2 answer for token (NULL: inactive). A new object. */
json_t *introspect_answer(const struct oauth_snapshot *snap, const char *token, int64_t now);

/*
 * Revoke token if it is valid and client's. 1 revoked, 0 nothing to do
 * (invalid, expired, another partner's), -1 the revocation list is full or
 * the pool's store could not answer (the endpoint answers 503).
 */
int introspect_revoke(const struct oauth_snapshot *snap, const struct oauth_partner *client,
		      const char *token, int64_t now);

/*
 * Revoke token if it is a valid web ticket of ours (http/webticket.h): its
 * holder may, with or without client authentication (a bearer token stops
 * being usable by anyone). 1, 0 (not a valid web ticket), -1 as above.
 */
int introspect_revoke_webticket(const struct oauth_snapshot *snap, const char *token, int64_t now);

/* Register both endpoints (they use the token endpoint's replay cache). 0 or -1. */
int introspect_routes(void);

#endif
