/*
 * Media relay credentials for signed-in users (issue 6 item 3c,
 * PROTOCOLS.md §4): short-lived TURN credentials of the shared-secret kind
 * (username "<expiry>:<user>", password base64(HMAC-SHA1(secret, username)),
 * minted by the vault), handed out
 *   - on HTTPS: POST (or GET) /turn/credentials, authenticated by a web
 *     ticket (Bearer), an OAuth access token acting for a user and granting
 *     RELAYCRED_SCOPE (a partner registered with that resource, through
 *     jwt-bearer or token exchange), or any scheme of the web services
 *     (Negotiate, NTLM, Digest, a client certificate), answering the JSON WebRTC applications
 *     use: {"username", "password", "ttl", "uris": ["turn:...", ...]};
 *   - on SIP: SERVICE with application/msrtc-media-relay-auth+xml from an
 *     authenticated user, answered 200 with the credentials and the relay
 *     list (duration at most 480 minutes).
 */
#ifndef RTC_TURN_RELAYCRED_H
#define RTC_TURN_RELAYCRED_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/sbuf.h"
#include "core/str.h"

#define RELAYCRED_PATH	      "/turn/credentials"
#define RELAYCRED_SCOPE	      "turn.credentials" /* the OAuth resource that grants them */
#define RELAYCRED_TTL_DEFAULT 3600		 /* seconds, HTTPS */
#define RELAYCRED_TTL_MAX     (8 * 3600)	 /* seconds: 480 minutes */
#define RELAYCRED_CTYPE	      "application/msrtc-media-relay-auth+xml"

/* Register the HTTPS route. 0 or -1. */
int relaycred_routes_add(void);

/*
 * Credentials for user (a SIP URI) valid ttl seconds from now: username and
 * password (pcap >= 29). 0, or -1 when no relay is configured or the vault
 * has no secret.
 */
int relaycred_make(const struct config *cfg, const char *user, int ttl, int64_t now, char *username,
		   size_t ucap, char *password, size_t pcap);

/*
 * The SIP SERVICE body: parse the credentialsRequest (bounded; requestID,
 * credentialsRequestID, duration in minutes) and write the response XML
 * for user into out. 0, or -1 (malformed request: answer 400).
 */
int relaycred_sip_response(const struct config *cfg, const char *user, struct str body, int64_t now,
			   struct sbuf *out);

#endif
