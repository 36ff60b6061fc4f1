/*
 * The protected resource of issue 3 item 11: GET /api/v1/users/{uri} for
 * tokens that grant "users.read" (validate.h): a user's display name,
 * whether it is enabled, and its current registrations.
 *
 * Exposes what a partner needs to reach a user (contact, transport, time
 * left, user agent) and nothing that identifies a dialog or a network
 * position: no Call-ID, CSeq, instance id, Path, nor source address.
 */
#ifndef RTC_OAUTH_API_H
#define RTC_OAUTH_API_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "store/store.h"

#define API_USERS_PATH	 "/api/v1/users/"
#define API_USERS_SCOPE	 "users.read"
#define API_MAX_BINDINGS 32
#define API_FEW_BINDINGS 4 /* looked up on the stack first */

/*
 * The user URI of a request path after API_USERS_PATH: percent-decoded
 * (a bad escape, NUL or control character refused), then normalised
 * (store_uri_normalise) into uri. 0 or -1.
 */
int api_user_uri(const char *rest, char uri[STORE_URI_MAX]);

/*
 * The answer for user u: {"uri","display_name","enabled","registrations":
 * [{"contact","expires_in","transport","user_agent"}]} with the current
 * bindings of u->uri (location.h) at now. A new object, or NULL.
 */
json_t *api_user_json(const struct store_user *u, int64_t now);

/* Register GET API_USERS_PATH (a prefix route). 0 or -1. */
int api_routes(void);

#endif
