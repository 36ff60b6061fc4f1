/*
 * The public OAuth documents of the web services, built from the current
 * snapshot (oauth.h) at each request:
 *   GET /.well-known/oauth-authorization-server   RFC 8414 metadata
 *   GET /oauth/jwks                               RFC 7517 JWK set
 *   GET /metadata/json/1                          Microsoft-style auth metadata
 *                                                 ([MS-SPS2SAUTH], PROTOCOLS.md §6)
 * Every published signing key (current, next, previous; never retired) is in
 * the JWKS and the Microsoft document, so partners learn a next key before
 * it signs. Nothing here sees a private key.
 */
#ifndef RTC_OAUTH_METADATA_H
#define RTC_OAUTH_METADATA_H

#include <jansson.h>

#include "oauth/oauth.h"

#define OAUTH_PATH_AS_METADATA "/.well-known/oauth-authorization-server"
#define OAUTH_PATH_JWKS	       "/oauth/jwks"
#define OAUTH_PATH_MS_METADATA "/metadata/json/1"
#define OAUTH_PATH_TOKEN       "/oauth/token"
#define OAUTH_PATH_INTROSPECT  "/oauth/introspect"
#define OAUTH_PATH_REVOKE      "/oauth/revoke"

/* The documents as new JSON objects (NULL when out of memory). */
json_t *oauth_metadata_as(const struct oauth_snapshot *snap);
json_t *oauth_metadata_jwks(const struct oauth_snapshot *snap);
json_t *oauth_metadata_ms(const struct oauth_snapshot *snap);

/* Register the three GET routes (http.h). Before any server runs. 0 or -1. */
int oauth_metadata_routes_add(void);

#endif
