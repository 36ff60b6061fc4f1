/*
 * Validation of incoming Bearer tokens (issue 3 items 9 and 10): the one
 * library every protected endpoint calls. Wire facts: PROTOCOLS.md §6.
 *
 * A token is accepted when:
 *  - it is ours: iss is our issuer URL (or <principal id>@<realm>) and it is
 *    signed by one of our published keys (current, next or previous: a
 *    previous key stays valid until it is retired), or
 *  - it is a partner's: iss is the issuer id of an enabled partner (or
 *    <id>@<realm>) and it is signed by one of that partner's keys, or
 *  - it is the Microsoft act-as-user form: an unsigned outer token (alg
 *    none) whose actortoken claim verifies as a partner's signed actor token,
 *    outer iss = the actor's nameid, the actor says trustedfordelegation
 *    "true" and the partner's trust level is full, or application with the
 *    consent of the user the outer token names (looked up in the store on
 *    every use, like our own tokens'; never for trust level user, which
 *    acts only with a token the user obtained). A bare unsigned token is
 *    never accepted (CVE-2023-29357);
 * and, for the token (and for both halves of the outer form): the algorithm
 * is the key's pinned one (jose.h); aud names us (our issuer URL, or
 * <principal id>/<host>@<realm> checked part by part: principal exact, host
 * case-insensitive, realm exact); exp is present and not past (with the
 * snapshot's clock skew), nbf / iat not in the future beyond the skew, and
 * the lifetime (exp - nbf, else exp - iat, and exp - now) at most the
 * snapshot's max_lifetime; it is not revoked.
 *
 * Validated tokens are cached by the SHA-256 of their text (bounded,
 * sharded). An entry is used only while the token has not expired and only
 * with the snapshot it was validated with (it holds a reference to the key
 * that verified it, and a reload builds new keys: a retired key or a
 * disabled partner invalidates it at once). Revocation is checked on every
 * use, cached or not, against this process's list and the pool's (see
 * oauth_validate_bind_store).
 *
 * A token acting for a user is judged against the partner's trust level
 * NOW, cached or not (PROTOCOLS.md §6; rtcauthctl partner set --trust takes
 * effect at the reload it triggers): full trust accepts it; application
 * trust only while the user's consent is recorded; user trust only our
 * access tokens whose rtc_grant claim (sts.h STS_GRANT_CLAIM) says they
 * were exchanged for a token the user obtained here ("user-token"); an
 * app-only token of a partner that now has user trust is refused (it never
 * acts as itself). Our
 * tokens without the claim (minted before it existed) are judged as
 * before: full and user trust accept them, application trust with consent.
 * With a store bound, the level (and enabled flag) the store has now must
 * allow it too: each thread reads them at most once a second and at once
 * after a reload, so a change made at another server of the pool is seen
 * within about a second; a store that cannot answer is VR_INTERNAL.
 *
 * Must never log a token, nor return any claim of a token that failed.
 */
#ifndef RTC_OAUTH_VALIDATE_H
#define RTC_OAUTH_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "oauth/oauth.h"
#include "oauth/replay.h"
#include "oauth/sts.h"
#include "store/store.h"

struct http_request;
struct http_response;

/* Why a token was accepted or refused: the labels of
 * rtcauth_oauth_validations_total, in the order of VALIDATE_RESULT_LABELS
 * (core/stats.h). The JOSE failures keep jose_strerror()'s names. */
enum validate_result {
	VR_OK = 0,
	VR_MISSING,   /* no token (no or empty Authorization: Bearer) */
	VR_TOO_LARGE, /* above the snapshot's max_token_size */
	VR_MALFORMED, /* not a compact JWS / not a Bearer b64token */
	VR_BAD_BASE64URL,
	VR_BAD_JSON,
	VR_DUPLICATE_CLAIM,
	VR_TOO_DEEP,
	VR_ALG_NONE, /* unsigned, and not the outer half of a verified actor token */
	VR_ALG_NOT_ALLOWED,
	VR_CRIT_UNSUPPORTED,
	VR_NO_KEY_ID,
	VR_UNKNOWN_KID,
	VR_BAD_SIGNATURE,
	VR_BAD_HEADER,
	VR_CLAIM_MISSING, /* exp, actortoken, nameid ... */
	VR_CLAIM_TYPE,
	VR_UNKNOWN_ISSUER,	   /* iss is neither us nor an enabled partner */
	VR_PARTNER_DISABLED,	   /* a token we issued to a partner no longer enabled */
	VR_BAD_AUDIENCE,	   /* aud does not name this server */
	VR_EXPIRED,		   /* exp passed beyond the skew */
	VR_NOT_YET_VALID,	   /* nbf / iat beyond the skew */
	VR_LIFETIME_TOO_LONG,	   /* above max_lifetime */
	VR_REVOKED,		   /* /oauth/revoke */
	VR_ACTOR_MISMATCH,	   /* outer iss is not the actor's nameid */
	VR_DELEGATION_NOT_ALLOWED, /* acting for a user without the trust or the claim */
	VR_INSUFFICIENT_SCOPE,	   /* valid, but the endpoint's scope is not granted */
	VR_INTERNAL,		   /* memory, OpenSSL, no snapshot */
	VR_CERT_MISMATCH, /* certificate-bound (cnf, RFC 8705 §3) and not this client's certificate
			   */
	VR_COUNT
};

/* Stable short name ("ok", "expired", ...), never NULL. */
const char *validate_result_name(int r);

#define VALIDATE_ID_MAX	  STORE_URI_MAX
#define VALIDATE_AUD_MAX  512
#define VALIDATE_TYPE_MAX 16

/* Who a valid token speaks for. Plain data (no pointers). */
struct oauth_principal {
	bool own;			      /* issued by us (else by a partner) */
	bool acts_for_user;		      /* sub is a user the client acts for */
	char token_type[VALIDATE_TYPE_MAX];   /* "at+jwt", "actor", "outer" */
	char iss[VALIDATE_ID_MAX];	      /* of the token (the outer's for the outer form) */
	char client_id[VALIDATE_ID_MAX];      /* the partner's issuer id */
	char partner[STORE_PARTNER_NAME_MAX]; /* the partner's name ('' when none) */
	char sub[VALIDATE_ID_MAX];	      /* the user acted for, or the client id */
	char aud[VALIDATE_AUD_MAX];	      /* the aud value that named us */
	char scope[STS_SCOPE_MAX];	      /* granted scopes, space-separated, may be '' */
	char jti[REPLAY_JTI_MAX + 1];	      /* may be '' (Microsoft-style tokens have none) */
	int64_t iat, nbf, exp;		      /* 0 when absent (exp: the earliest of both halves) */
	/* RFC 8705 §3.1 cnf.x5t#S256 of a certificate-bound token, '' when
	 * unbound; "!" when the cnf claim is malformed (never matches) */
	char cnf_x5t_s256[JOSE_X5T256_LEN + 1];
	unsigned char hash[32]; /* SHA-256 of the token text */
	/* our token's rtc_grant (STS_BASIS_*), '' when it has none */
	char grant_basis[VALIDATE_TYPE_MAX];
};

/*
 * Validate a compact token (the bare token text, len bytes) against snap at
 * time now. VR_OK with *out filled, or another enum validate_result with
 * *out zeroed. Uses the cache and the revocation list. Thread-safe.
 */
int oauth_validate_token(const struct oauth_snapshot *snap, const char *token, size_t len,
			 int64_t now, struct oauth_principal *out);

/*
 * The same from an Authorization header value ("Bearer <b64token>", the
 * scheme case-insensitive, RFC 6750 §2.1); NULL, another scheme or an
 * empty token is VR_MISSING. When scope is not NULL it must be one of the
 * granted scopes (VR_INSUFFICIENT_SCOPE). Counts the result in
 * rtcauth_oauth_validations_total.
 */
int oauth_validate_bearer(const struct oauth_snapshot *snap, const char *authorization, int64_t now,
			  const char *scope, struct oauth_principal *out);
/*
 * The same for a request that came with the client certificate whose
 * SHA-256 thumbprint (base64url) is peer_x5t_s256, NULL when it came with
 * none. A certificate-bound token (cnf.x5t#S256) is valid only with that
 * certificate (VR_CERT_MISMATCH otherwise, RFC 8705 §3);
 * oauth_validate_bearer is this with NULL.
 */
int oauth_validate_bearer_cert(const struct oauth_snapshot *snap, const char *authorization,
			       int64_t now, const char *scope, const char *peer_x5t_s256,
			       struct oauth_principal *out);

/* Is scope (one item) among p's granted scopes? */
bool oauth_principal_has_scope(const struct oauth_principal *p, const char *scope);

/*
 * For a protected handler: validate the request's Bearer token with the
 * current snapshot. true with *out filled (out may be NULL), or false with
 * resp filled (RFC 6750 §3): 401 with the discovery challenge
 *   WWW-Authenticate: Bearer client_id="<principal id>", realm="<realm>",
 *     trusted_issuers="<principal id>@<realm>,<partner id>@<realm>,..."
 * for a missing token; 401 error="invalid_token" with the reason as
 * error_description for a refused one; 403 error="insufficient_scope".
 * Logs one line (result, partner, reason); never the token.
 */
bool oauth_require(const struct http_request *req, struct http_response *resp, const char *scope,
		   struct oauth_principal *out);

/*
 * The discovery challenge value for snap into buf (always NUL-terminated;
 * partners whose ids would need escaping are left out). Returns buf.
 */
const char *oauth_challenge(const struct oauth_snapshot *snap, char *buf, size_t cap);

/*
 * Revocation list (RFC 7009): p's token is refused (VR_REVOKED) until its
 * exp (plus the skew). By (iss, jti) when the token has a jti, else by its
 * hash. 0, or -1 when the list is full of unexpired entries (the endpoint
 * answers 503).
 */
int oauth_revoke(const struct oauth_principal *p, int64_t skew, int64_t now);
/* Is p revoked (this process's list only; the validator also asks the
 * pool's, below)? */
bool oauth_revoked(const struct oauth_principal *p, int64_t now);

/*
 * The pool (issue 3): several rtcauthd sharing one database share their
 * revocations (store_oauth.h). A thread that binds its store connection
 * here (handlers do it with their worker's; NULL unbinds) makes
 * oauth_revoke write the revocation to the store first (-1 when the store
 * cannot take it), and makes the validator consult the store: every token
 * about to be accepted is looked up by its revocation key, and a cached
 * one again whenever the pool's revocation version (read at most once a
 * second per thread) moved since it was last checked. A revocation at any
 * server is thus refused everywhere within about a second. When the store
 * cannot answer, the token is refused with VR_INTERNAL and
 * oauth_validate_unavailable() is true (handlers answer 503
 * temporarily_unavailable): an outage never looks like "not revoked".
 */
void oauth_validate_bind_store(struct store *s);
/* Did the last validation on this thread fail because the store could not
 * answer? */
bool oauth_validate_unavailable(void);

/*
 * For tokens this module does not validate itself (web tickets,
 * http/webticket.h): is p (iss, jti, exp and hash filled) revoked, in this
 * process's list or the pool's? VR_OK, VR_REVOKED, or VR_INTERNAL with
 * oauth_validate_unavailable() true when the store cannot answer.
 */
int oauth_validate_revocation(const struct oauth_principal *p, int64_t now);

/* Why the last validation on this thread refused a token, in words for
 * the client (a static string, '' when there is nothing to add to the
 * result's name). */
const char *oauth_validate_detail(void);

#define VALIDATE_CACHE_MAX  4096  /* validated tokens remembered */
#define VALIDATE_REVOKE_MAX 65536 /* revoked tokens remembered */

/* Forget every cached validation (tests; a reload needs no call). */
void oauth_validate_flush(void);
/* Register GET /api/v1/users/ (api.h), POST /oauth/introspect and POST
 * /oauth/revoke (introspect.h), /oauth/consent (consent.h). Before the
 * HTTP servers run. 0 or -1. */
int oauth_validate_routes(void);
/* Free the cache, the revocation list and the endpoints' replay cache (after
 * the servers stopped). */
void oauth_validate_shutdown(void);

#endif
