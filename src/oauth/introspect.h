/*
 * Token introspection (RFC 7662, POST /oauth/introspect) and revocation
 * (RFC 7009, POST /oauth/revoke), for authenticated partners only (issue 3
 * item 9).
 *
 * Client authentication is private_key_jwt (RFC 7523 §2.2) as at the token
 * endpoint: a client assertion signed by a registered key of an enabled
 * partner, iss = sub = its issuer id, aud = our issuer, token endpoint or
 * this endpoint, exp within the maximum lifetime, a jti never seen before
 * (a replay cache of its own). It lives here, in introspect_client_auth(),
 * until token.c exports its own (see the report of issue 3).
 *
 * Introspection answers {"active": false} for anything that does not
 * validate (validate.h), without saying why; a valid token gets active,
 * scope, client_id, sub, exp, iat, nbf, aud, iss, jti, token_type.
 * Revocation answers 200 to every well-formed authenticated request (RFC
 * 7009 §2.2) and revokes only a valid token that was issued to (or signed
 * by) the requesting partner.
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

#define INTROSPECT_PATH	      "/oauth/introspect"
#define REVOKE_PATH	      "/oauth/revoke"
#define INTROSPECT_MAX_PARAMS 16

/* The parameters these endpoints know, decoded (NULL when absent/empty). */
struct introspect_form {
	char *buf; /* owns every value; wiped when freed */
	size_t cap;
	const char *token;
	const char *token_type_hint;
	const char *client_id;
	const char *client_assertion_type;
	const char *client_assertion;
};

/*
 * Parse an application/x-www-form-urlencoded body strictly ('+' and %XX
 * decoded; bad escapes, NUL and controls refused; at most
 * INTROSPECT_MAX_PARAMS pairs; a known parameter at most once; unknown ones
 * ignored). 0, or -1 with a description for a person in why.
 */
int introspect_form_parse(const char *body, size_t len, struct introspect_form *f, char *why,
			  size_t cap);
void introspect_form_free(struct introspect_form *f);

/*
 * Authenticate the client (see above). endpoint is this endpoint's path
 * (INTROSPECT_PATH or REVOKE_PATH), for the aud check. 0 with *client set;
 * -1 (401 invalid_client) or -2 (503: the replay cache is full), with why.
 */
int introspect_client_auth(const struct oauth_snapshot *snap, struct replay_cache *replay,
			   const struct introspect_form *f, const char *endpoint, int64_t now,
			   const struct oauth_partner **client, char *why, size_t cap);

/* The RFC 7662 §2.2 answer for token (NULL: inactive). A new object. */
json_t *introspect_answer(const struct oauth_snapshot *snap, const char *token, int64_t now);

/*
 * Revoke token if it is valid and client's. 1 revoked, 0 nothing to do
 * (invalid, expired, another partner's), -1 the revocation list is full.
 */
int introspect_revoke(const struct oauth_snapshot *snap, const struct oauth_partner *client,
		      const char *token, int64_t now);

/* Register both endpoints (and make the replay cache). 0 or -1. */
int introspect_routes(void);
void introspect_shutdown(void);

#endif
