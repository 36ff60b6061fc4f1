/*
 * User authentication on the web services (issue 4 item 7): the
 * `Authorization` schemes Negotiate (RFC 4559: SPNEGO with Kerberos through
 * the vault's acceptor for HTTP/<fqdn>, or with NTLM), NTLM (connection-oriented
 * MS-NLMP over HTTP, through the vault's NTLMv2 acceptor) and Digest
 * (RFC 7616, the SIP domain as realm, the same stateless nonces as SIP),
 * and the 401 challenges offering them in the [auth] schemes order.
 *
 * HTTP NTLM is connection-oriented: NEGOTIATE -> 401 carrying our CHALLENGE
 * -> AUTHENTICATE on the same keep-alive connection. The pending vault
 * context lives in the connection's TLS session (SSL ex_data): it is freed
 * with the connection, replaced by a new NEGOTIATE, used once, and refused
 * after HTTPAUTH_NTLM_TTL seconds. NTLM inside Negotiate runs the same legs
 * wrapped in SPNEGO (src/auth/spnego.h: NegTokenInit with NTLMSSP first, or
 * reselected to it; the mechListMIC checked and ours sent), or bare (an
 * NTLMSSP token under the Negotiate scheme, as Windows browsers send).
 *
 * Verdicts: a wrong password, unknown or disabled user, a bad or foreign
 * ticket -> 401 with fresh challenges and a JSON error body; a store, KDC or
 * vault outage -> 503 (never 401); too many failures (auth/lockout.h, the
 * same table and keys as SIP: sip:user@domain and the source address) ->
 * 429 with Retry-After.
 *
 * Must never log a token, a password-derived value or a response.
 */
#ifndef RTC_HTTP_HTTPAUTH_H
#define RTC_HTTP_HTTPAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/str.h"
#include "store/store.h"

struct http_request;
struct http_response;

/* Largest decoded Negotiate / NTLM token (the vault's Kerberos bound). */
#define HTTPAUTH_TOKEN_MAX 48000
/* Largest base64 text of a token: 4 * ceil(HTTPAUTH_TOKEN_MAX / 3). */
#define HTTPAUTH_TOKEN_B64_MAX 64000
/* Largest Authorization value looked at; longer is refused unparsed. */
#define HTTPAUTH_HEADER_MAX (HTTPAUTH_TOKEN_B64_MAX + 64)
/* Seconds a pending NTLM CHALLENGE stays good on its connection. */
#define HTTPAUTH_NTLM_TTL 120
/* Bytes of one challenge value (a Digest one is the longest). */
#define HTTPAUTH_CHALLENGE_MAX 512

enum httpauth_scheme {
	HTTPAUTH_NONE = 0,  /* no Authorization header */
	HTTPAUTH_NEGOTIATE, /* "Negotiate <token68>" */
	HTTPAUTH_NTLM,	    /* "NTLM <token68>" */
	HTTPAUTH_DIGEST,    /* "Digest auth-params" */
	HTTPAUTH_OTHER,	    /* Basic, Bearer, anything else: challenged */
};

enum httpauth_err {
	HTTPAUTH_E_SYNTAX = -1,	   /* no scheme token, bad token68, trailing bytes */
	HTTPAUTH_E_TOO_LARGE = -2, /* value or token over its bound */
	HTTPAUTH_E_BASE64 = -3,	   /* token68 is not standard base64 */
};

/* A parsed Authorization value; param points into the value. */
struct httpauth_creds {
	enum httpauth_scheme scheme;
	struct str scheme_name; /* as sent */
	/* Negotiate / NTLM: the token68 text; Digest: the whole value (for
	 * digest_parse_credentials); other schemes: empty */
	struct str param;
};

/*
 * Parse an Authorization value (NULL: HTTPAUTH_NONE). The scheme is
 * compared case-insensitively (RFC 9110 §11.1). Negotiate and NTLM need
 * exactly one token68 (base64 alphabet, '=' padding only at the end), may
 * be surrounded by spaces, nothing else. 0 with *out, or an httpauth_err
 * (then *out is zeroed).
 */
int httpauth_parse(const char *value, struct httpauth_creds *out);

/*
 * Decode a Negotiate / NTLM token68 into out (cap bytes; *len set). Empty,
 * not standard base64, or more than HTTPAUTH_TOKEN_MAX bytes decoded: an
 * httpauth_err.
 */
int httpauth_token_decode(struct str b64, uint8_t *out, size_t cap, size_t *len);

/* The MS-NLMP message type (1, 2, 3) of a decoded NTLMSSP token, or -1. */
int httpauth_ntlm_type(const uint8_t *tok, size_t len);

/*
 * libcurl's NTLM echoes our CHALLENGE's flags (VERSION, KEY_EXCH) in its
 * AUTHENTICATE without the Version field or a session key. When a type-3
 * message's payload starts before offset 72 (no room for a Version, hence
 * no MIC to break), clear NEGOTIATE_VERSION, and NEGOTIATE_KEY_EXCH when
 * the session key is empty, so the vault's strict parser takes it. Any
 * other message is left alone. tok is modified in place.
 */
void httpauth_ntlm_fix_flags(uint8_t *tok, size_t len);

/*
 * The identity failures are counted against, from a NTLM or Digest user
 * name: "alice", "alice@example.test" and "EXAMPLE\alice" all give
 * "sip:alice@<domain>" (the host lower case; a user@host keeps its host).
 * 0, or -1 when empty, too long, or holding control characters.
 */
int httpauth_identity(struct str name, const char *domain, char *out, size_t cap);

/*
 * Call emit once per WWW-Authenticate value to send on a 401, in the
 * [auth] schemes order of cfg: "Negotiate" once, at the first of Kerberos
 * (when krb_ready) and NTLM (SPNEGO carries either), "NTLM",
 * then one "Digest realm=..., nonce=..." per configured algorithm (the
 * first is what most clients take), realm = the SIP domain. 0, or -1 when a
 * value did not fit HTTPAUTH_CHALLENGE_MAX.
 */
int httpauth_challenges(const struct config *cfg, bool krb_ready, struct str nonce,
			struct str opaque, bool stale, void (*emit)(void *arg, const char *value),
			void *arg);

/* Who httpauth_require let in. */
struct httpauth_result {
	struct store_user user; /* enabled, from the store */
	const char *mech;	/* "negotiate", "ntlm", "digest" (static) */
};

/*
 * For a handler: authenticate req by its Authorization header. true with
 * *out filled (and, for Negotiate with an AP-REP, the mutual-authentication
 * `WWW-Authenticate: Negotiate <b64>` already added to resp), or false with
 * resp filled: 401 + challenges (none, unknown scheme, failure, NTLM leg 2),
 * 400 (malformed Digest), 429 (locked), 503 (store or vault unavailable).
 * req->worker must be the daemon's struct sip_worker.
 */
bool httpauth_require(const struct http_request *req, struct http_response *resp,
		      struct httpauth_result *out);

#endif
