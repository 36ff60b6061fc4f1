/*
 * The external authorization server (issue 3 item 8): [oauth]
 * authorization_server names an RFC 8414 metadata URL; tokens for partners
 * registered --use-oauth-server are obtained there instead of being minted
 * here: client_credentials, the client (us: <principal id>@<realm>)
 * authenticated by private_key_jwt (RFC 7523; an assertion signed by our
 * current signing key), resource = the partner's principal/host@realm (RFC
 * 8707 / PROTOCOLS.md §6). Tokens are cached until shortly before they
 * expire.
 *
 * Everything here BLOCKS on the network (up to two HTTPS transfers of 10 s
 * each, oauth/fetch.h rules): never call it on a worker loop thread.
 */
#ifndef RTC_OAUTH_EXTAS_H
#define RTC_OAUTH_EXTAS_H

#include <stddef.h>
#include <stdint.h>

#include "oauth/sts.h"
#include "store/store.h"

#define EXTAS_TOKEN_MAX		 16384 /* bytes of an access token we accept */
#define EXTAS_RESOURCE_MAX	 1024
#define EXTAS_ASSERTION_LIFETIME 300 /* seconds */

/* Who asks, where, and how it signs. Strings are borrowed. */
struct extas_client {
	const char *metadata_url; /* the AS's RFC 8414 document (https) */
	const char *client_id;	  /* iss = sub of our assertion, and client_id */
	const char *ca_file;	  /* extra trusted CAs, or NULL (fetch.h) */
	const _Atomic int *stop;  /* abandons a transfer when set, or NULL */
	sts_sign_fn sign;	  /* signs our client assertion */
	void *sign_arg;
};

/*
 * One token request, no cache: read the AS metadata (token_endpoint), sign
 * a client assertion (aud = the token endpoint; jti fresh; lifetime
 * EXTAS_ASSERTION_LIFETIME), POST client_credentials with resource. *token
 * malloc'd, *expires its expiry (unix seconds, from expires_in). 0, or -1
 * with err (the AS's RFC 6749 §5.2 error and description when it refused).
 */
int extas_request(const struct extas_client *c, const char *resource, int64_t now, char **token,
		  int64_t *expires, char *err, size_t errlen);

/*
 * The resource to ask for on behalf of partner p: its first registered
 * principal/host@realm resource, else <issuer id>/<host of its metadata
 * URL>@<realm>. 0, or -1 when there is none to tell.
 */
int extas_partner_resource(const struct store_partner *p, char *buf, size_t cap);

/*
 * rtcauthd: a token for partner_name (enabled, registered
 * --use-oauth-server) from [oauth] authorization_server, for resource (NULL:
 * extas_partner_resource), signed with the current OAuth snapshot's key,
 * CA file from the fetcher's configuration. A cached token is returned
 * until 60 s (10% for tokens under 10 minutes) before it expires. *token
 * malloc'd; *expires unix seconds. 0, or -1 (the reason is logged). BLOCKS.
 */
int extas_get_token(const char *partner_name, const char *resource, char **token, int64_t *expires);
/* Drop every cached token (wiped). oauth_fetch_stop() calls it. */
void extas_cache_clear(void);

#endif
