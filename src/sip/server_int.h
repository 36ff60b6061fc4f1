/* Internals shared by server.c, sipauth.c, registrar.c and proxy.c. */
#ifndef RTC_SIP_SERVER_INT_H
#define RTC_SIP_SERVER_INT_H

#include <stdbool.h>

#include "core/sbuf.h"
#include "sip/msg.h"
#include "sip/server.h"
#include "store/store.h"

#define SIP_REPLY_MAX	16384
#define SIP_SERVER_NAME "rtcauth/0.1.0"

struct sa;
struct sipae_fields;

/* One request being handled. */
struct sip_tx {
	struct sip_worker *w;
	const struct sip_msg *m;
	const struct location_flow *src;
	char src_ip[64];
	char src_addr[80];
	int64_t now;
	/* [MS-SIPAE]: the security association the request was verified with
	 * (or that its handshake just established); every reply to it is
	 * signed with it. NULL for Digest and unauthenticated requests. */
	struct sa *sa;
	/* base64 of the acceptor's last handshake token (Kerberos AP-REP),
	 * sent as gssapi-data with the signature of the reply; empty if none */
	struct str sa_token;
};

/* ---- [MS-SIPAE] (sipae_auth.c) ---- */

/* Authenticate with NTLM / Kerberos credentials or a signature. 1 when
 * authenticated (*user filled, t->sa set and referenced), 0 when a response
 * was sent, -1 when the request carries no such credentials (Digest next). */
int sipae_check(struct sip_tx *t, struct store_user *user);
/* Challenge lines for the configured [MS-SIPAE] schemes of one kind
 * (enum auth_scheme), for send_challenge's loop. */
void sipae_challenge_lines(struct sbuf *b, const struct sip_tx *t, const char *hdr, int scheme);
/* Sign a message with sa and write the (Proxy-)Authentication-Info line. */
void sipae_sign_write(struct sbuf *b, struct sa *sa, const struct sipae_fields *f,
		      struct str gssapi_data);
/* Sign a reply being built in b (everything but Content-Length and body). */
void sipae_sign_reply(struct sbuf *b, const struct sip_tx *t);
/* Drop an unsigned request from a flow whose binding holds an SA: 1 when
 * it was answered (challenged), 0 to go on. */
int sipae_unsigned_from_sa_flow(const struct sip_tx *t);

/* Status line, Via (top one with received/rport), From, To (with a stable
 * tag when none and status > 100), Call-ID, CSeq, Server. */
void reply_start(struct sbuf *b, const struct sip_tx *t, int status, const char *reason);
/* The received top Via value with received= and rport=N added. */
void reply_via_value(struct sbuf *b, struct str v, const struct sip_tx *t);
/* Content-Length: 0, blank line, send to the request's source. */
void reply_finish_send(struct sbuf *b, const struct sip_tx *t);
/* The same with a body of type ctype (NULL and an empty body: none). */
void reply_finish_send_body(struct sbuf *b, const struct sip_tx *t, const char *ctype,
			    struct str body);
/* reply_start + extra (preformatted header lines, may be NULL) + finish. */
void reply_simple(const struct sip_tx *t, int status, const char *reason, const char *extra);

/* "Date: ...\r\n" for now (RFC 3261 §20.17), formatted once per second per thread. */
const char *sip_date_header(int64_t now);

/* Digest authentication of a request (REGISTER: 401, others: 407).
 * Returns 1 when authenticated (*user filled), 0 when a response (challenge,
 * 400, 403, 503) was sent and handling must stop. */
int sipauth_check(const struct sip_tx *t, struct store_user *user);
/* The 401/407 offering every configured scheme. */
void sipauth_challenge(const struct sip_tx *t, bool stale);

/* Registrar (RFC 3261 §10.3) for an authenticated REGISTER. */
void registrar_handle(const struct sip_tx *t, const struct store_user *user);

/* Stateless proxy (RFC 3261 §16.11) for an authenticated request, or an
 * ACK/CANCEL. */
void proxy_request(const struct sip_tx *t, const struct store_user *user);
/* A response arrived: pop our Via and send it on. */
void proxy_response(struct sip_worker *w, const struct sip_msg *m, const struct location_flow *src);

/* Is this URI host one of ours (the domain, the fqdn, a listener address)? */
bool sip_host_is_us(const struct sip_runtime *rt, struct str host, uint16_t port);
/* "sip:user@host" normalised (host lower-cased) from a parsed URI. */
int sip_aor_from_uri(const struct sip_uri *u, char *out, size_t cap);

#endif
