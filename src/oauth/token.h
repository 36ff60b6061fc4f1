/*
 * The token endpoint, POST /oauth/token (RFC 6749 §3.2, issue 3 item 6):
 *
 *  - grant_type=client_credentials (RFC 6749 §4.4), the client
 *    authenticated with private_key_jwt (RFC 7523 §2.2: a JWS client
 *    assertion signed by a registered key of the partner, iss = sub = its
 *    issuer id, aud = our token endpoint or issuer, exp within the maximum
 *    lifetime, a jti never seen before);
 *  - grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer (RFC 7523
 *    §2.1) and urn:ietf:params:oauth:grant-type:token-exchange (RFC 8693):
 *    a partner acting for a user; the token names the user in sub and the
 *    partner in act (RFC 8693 §4.1). Trust levels (PROTOCOLS.md §6): full
 *    asserts any user of the realm; application too, but only for a user
 *    whose consent is recorded (consent_ok; else invalid_grant "consent is
 *    missing"); user never asserts a user: it gets a token only by token
 *    exchange of a token the user obtained here (subject_token = our web
 *    ticket, or an access token we issued to the same client for that
 *    user; expired, tampered or foreign: invalid_grant), and never an
 *    app-only token. Any partner may exchange such a token of ours;
 *  - resource (RFC 8707, one per request for now) and scope: our issuer,
 *    our principal/host@realm, or one of the partner's registered
 *    resources; a partner with no registered resources gets tokens for our
 *    issuer only, with no scope;
 *  - errors per RFC 6749 §5.2 (RFC 8707 invalid_target, 503
 *    temporarily_unavailable when the replay cache is full).
 *
 * The work is split so it can be tested without a server: token_form_parse
 * (the body, strictly), token_process (the policy and the minting, pure but
 * for the replay cache and the user lookup callback), and the HTTP handler
 * that glues them to a request and the current OAuth snapshot.
 *
 * Client authentication is private_key_jwt (above) or mutual TLS, RFC 8705
 * §2.2 self_signed_tls_client_auth: client_id (required) names an enabled
 * partner (its issuer id, bare or <id>@<realm>) and the certificate the
 * client presented in the TLS handshake is byte for byte one the partner
 * registered (rtcauthctl partner add --cert, or a JWKS x5c; a JWK with
 * x5t#S256 and no x5c: the same thumbprint and public key); or RFC 8705
 * §2.1 tls_client_auth: a certificate that names the subject DN or SAN
 * registered for the partner (rtcauthctl partner add --tls-subject /
 * --tls-san; oauth/mtls.h) and chains to the deployment's trust anchors
 * ([pki] trusted_root and the built-in CA), valid and unrevoked
 * (pki_verify_cert): untrusted, expired or revoked is invalid_client.
 * A token issued to an mTLS client carries cnf {"x5t#S256": thumbprint}
 * (§3.1). A client certificate together with a client assertion (or an
 * Authorization header) is two methods in one request: invalid_request
 * (RFC 6749 §2.3, §5.2); so is nothing else chosen for the client. A
 * certificate sent on a jwt-bearer request without client_assertion is an
 * mTLS attempt too (client_id required).
 *
 * Must never log a form value (assertions are credentials until they
 * expire) nor a token it issues.
 */
#ifndef RTC_OAUTH_TOKEN_H
#define RTC_OAUTH_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "oauth/oauth.h"
#include "oauth/replay.h"
#include "oauth/sts.h"
#include "store/store_oauth.h"

#define TOKEN_PATH		       "/oauth/token"
#define TOKEN_FORM_MAX_PARAMS	       32   /* name=value pairs, unknown ones included */
#define TOKEN_SPEND_MAX		       2    /* assertions one request spends: client and user */
#define TOKEN_FORM_SHORT_MAX	       2048 /* bytes of a decoded non-token parameter */
#define TOKEN_CLIENT_ASSERTION_TYPE    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#define TOKEN_GRANT_CLIENT_CREDENTIALS "client_credentials"
#define TOKEN_GRANT_JWT_BEARER	       "urn:ietf:params:oauth:grant-type:jwt-bearer"
#define TOKEN_GRANT_TOKEN_EXCHANGE     "urn:ietf:params:oauth:grant-type:token-exchange"
#define TOKEN_TYPE_JWT		       "urn:ietf:params:oauth:token-type:jwt"
#define TOKEN_TYPE_ACCESS_TOKEN	       "urn:ietf:params:oauth:token-type:access_token"

/* Why a request ended as it did: one label each in /metrics. */
enum token_reason {
	TOKEN_ISSUED = 0,
	TOKEN_R_INVALID_REQUEST,     /* malformed form, missing or repeated parameter */
	TOKEN_R_UNSUPPORTED_GRANT,   /* unsupported_grant_type */
	TOKEN_R_NO_CLIENT_AUTH,	     /* invalid_client: no (supported) authentication */
	TOKEN_R_UNKNOWN_ISSUER,	     /* invalid_client: no enabled partner with that iss */
	TOKEN_R_BAD_ASSERTION,	     /* signature, alg, key, format (jose errors) */
	TOKEN_R_BAD_CLAIMS,	     /* sub, aud, client_id mismatch; claim missing */
	TOKEN_R_EXPIRED,	     /* exp passed (beyond the skew) */
	TOKEN_R_NOT_YET_VALID,	     /* nbf / iat in the future beyond the skew */
	TOKEN_R_LIFETIME,	     /* exp too far from iat / now */
	TOKEN_R_REPLAY,		     /* jti seen before */
	TOKEN_R_REPLAY_FULL,	     /* replay cache full: 503 */
	TOKEN_R_UNAUTHORIZED_CLIENT, /* the trust level does not allow the grant */
	TOKEN_R_INVALID_GRANT,	     /* user assertion / subject token refused, unknown user */
	TOKEN_R_INVALID_TARGET,	     /* resource or audience not allowed */
	TOKEN_R_INVALID_SCOPE,
	TOKEN_R_SERVER_ERROR, /* signing failed, store unavailable */
	TOKEN_REASON_COUNT
};
/* Stable short name ("issued", "replay", ...). */
const char *token_reason_name(enum token_reason r);
/* Count one outcome (the only place that counts). */
void token_count(enum token_reason r);
/* The count of one outcome since start (tests, status). */
uint64_t token_count_get(enum token_reason r);

/* The parameters the endpoint knows, decoded (NULL when absent or empty:
 * RFC 6749 §3.2 treats an empty value as omitted). */
struct token_form {
	char *buf;  /* owns every value (NUL-separated) */
	size_t cap; /* bytes of buf (wiped when freed) */
	const char *grant_type;
	const char *client_id;
	const char *client_assertion_type;
	const char *client_assertion;
	const char *resource;
	const char *audience;
	const char *scope;
	const char *assertion;
	const char *subject_token;
	const char *subject_token_type;
	const char *actor_token;
	const char *actor_token_type;
	const char *requested_token_type;
	/* RFC 7662 / RFC 7009 (introspection, revocation: they share this form) */
	const char *token;
	const char *token_type_hint;
};

/* The answer: either a token or an RFC 6749 §5.2 error. */
struct token_result {
	int status;	   /* 200, 400, 401, 500, 503 */
	const char *error; /* NULL on success */
	char description[160];
	enum token_reason reason;
	char www_authenticate[64];	      /* for a 401 to an Authorization header, else "" */
	char partner[STORE_PARTNER_NAME_MAX]; /* the authenticated partner, for the log */
	const char *grant; /* "client_credentials", "jwt-bearer", "token-exchange" or NULL */
	/* how the client authenticated: "private_key_jwt", "self_signed_tls_client_auth",
	 * or NULL (not authenticated, or a jwt-bearer grant without client
	 * authentication), for the log */
	const char *client_auth;
	/* success */
	char *access_token; /* malloc'd */
	int expires_in;
	char scope[STS_SCOPE_MAX];
	const char *issued_token_type; /* token exchange only */
	/*
	 * Assertion jtis spent but not yet recorded in the store
	 * (ctx->defer_spend): the caller records them with
	 * token_spend_commit before it answers, a batch of requests at a time.
	 */
	struct token_spend {
		struct store_oauth_jti row;
		bool grant; /* a user assertion (else the client assertion) */
	} spend[TOKEN_SPEND_MAX];
	int n_spend;
};
void token_result_free(struct token_result *r);

/*
 * Group commit of the pool-wide replay check: record the pending spends of
 * results r[0..n) in one store transaction, then settle each result: a jti
 * some server of the pool had already spent turns it into the replay error
 * (the token it carried is wiped), a store that cannot answer into 503
 * temporarily_unavailable; either way no token leaves. Results without
 * spends are untouched. Returns the store's batch error (STORE_OK).
 */
int token_spend_commit(struct store *s, struct token_result *const *r, size_t n, int64_t now);

/*
 * Parse an application/x-www-form-urlencoded body strictly: '&'-separated
 * pairs (empty pairs skipped), '+' and %XX decoded (a bad escape, a NUL or a
 * control character in a known parameter is an error), at most
 * TOKEN_FORM_MAX_PARAMS pairs, non-token parameters at most
 * TOKEN_FORM_SHORT_MAX bytes, a known parameter at most once (RFC 6749
 * §3.2; a repeated resource is invalid_target), unknown ones ignored. 0, or
 * -1 with res filled (status, error, description, reason).
 */
int token_form_parse(const char *body, size_t len, struct token_form *f, struct token_result *res);
void token_form_free(struct token_form *f);

/* What token_process needs besides the form. */
struct token_ctx {
	const struct oauth_snapshot *snap;
	const struct sts_issuer *iss; /* mints; built from snap by the handler */
	struct replay_cache *replay;
	int64_t now;
	const char *auth_scheme; /* scheme of an Authorization header, or NULL */
	/*
	 * Is uri (normalised sip:user@host) a user we may issue for? 0 yes,
	 * 1 no such user or disabled, -1 store unavailable. NULL: everyone.
	 */
	int (*user_ok)(void *arg, const char *uri);
	void *user_arg;
	/*
	 * Has uri consented to the application-trust partner p acting for
	 * them (called with user_arg)? 0 yes, 1 no, -1 store unavailable.
	 * NULL: nobody has (application-trust partners never act for users).
	 */
	int (*consent_ok)(void *arg, const struct oauth_partner *p, const char *uri);
	/*
	 * The certificate the TLS client presented (http_request_peer_cert),
	 * or NULL. UNVERIFIED: it authenticates the client only if it is one
	 * the client_id's partner registered (RFC 8705 §2.2). Borrowed.
	 */
	X509 *client_cert;
	/* the certificates the client sent after it (SSL_get_peer_cert_chain),
	 * or NULL: untrusted intermediates for RFC 8705 §2.1. Borrowed. */
	STACK_OF(X509) * client_chain;
	/*
	 * RFC 8705 §2.1: does the certificate chain to a trust anchor, inside
	 * its validity, unrevoked? A PKI_VERIFY_* code (pki/pki.h). NULL:
	 * pki_verify_cert with store (tests put their own).
	 */
	int (*cert_verify)(void *arg, X509 *leaf, STACK_OF(X509) * chain, int64_t now);
	/*
	 * Another URL of ours a client assertion may name as its aud besides
	 * the token endpoint and the issuer (the introspection or revocation
	 * endpoint), or NULL.
	 */
	const char *extra_aud;
	/*
	 * The worker's store connection, or NULL (tests, tools). With a store
	 * the pool shares the jtis (store_oauth.h: a jti spent at any server
	 * of the pool is a replay here; the in-process cache stays as the
	 * first, cheap filter), consent is read from it, and a store error
	 * fails closed (503 temporarily_unavailable).
	 */
	struct store *store;
	/*
	 * With a store: leave the pool-wide half of the replay check to the
	 * caller (res->spend, token_spend_commit) instead of one store write
	 * per request. The in-process replay cache is checked at once either
	 * way. The token endpoint sets it; the other endpoints do not.
	 */
	bool defer_spend;
};

/*
 * Client authentication as the token endpoint does it, for every endpoint
 * partners call (token, introspection, revocation): private_key_jwt (RFC
 * 7523 §2.2: a client assertion signed by a registered key of an enabled
 * partner, iss = sub, aud = us, exp within the maximum lifetime, a jti
 * never seen before in ctx->replay) or a registered self-signed TLS client
 * certificate with client_id (RFC 8705 §2.2); never both (RFC 6749 §2.3).
 * Uses client_id, client_assertion_type and client_assertion of f. 0 with
 * *client set (cnf: the certificate's x5t#S256 for mTLS, else ""), or -1
 * with the RFC 6749 §5.2 error in res (503 when the replay cache is full).
 */
int token_authenticate(const struct token_ctx *ctx, const struct token_form *f,
		       const struct oauth_partner **client, char cnf[JOSE_X5T256_LEN + 1],
		       struct token_result *res);
/* The replay cache of client assertions shared by those endpoints (made by
 * oauth_token_routes; NULL before). */
struct replay_cache *token_replay_cache(void);

struct http_request;
/*
 * Read a POST of one of those endpoints: Content-Type form-urlencoded, no
 * query string, the body parsed into *f (token_form_parse; free it with
 * token_form_free), and *ctx filled for token_authenticate: snap, the
 * shared replay cache, now, the Authorization scheme (in scheme, cap
 * bytes) and the client certificate. 0, or -1 with the error in res (*f
 * then holds nothing).
 */
int token_request_read(const struct http_request *req, const struct oauth_snapshot *snap,
		       struct token_form *f, struct token_ctx *ctx, char *scheme, size_t cap,
		       struct token_result *res);

/* RFC 8705 §3.1 x5t#S256 of cert: base64url of the SHA-256 of its DER
 * (43 characters) into out. 0, or -1 (out "") when it cannot be encoded. */
int token_cert_thumbprint(X509 *cert, char out[JOSE_X5T256_LEN + 1]);

/* Decide and, when allowed, mint: res is filled either way (free it). */
void token_process(const struct token_ctx *ctx, const struct token_form *f,
		   struct token_result *res);

/* Register POST /oauth/token (and create the replay cache). Call once at
 * start, before the HTTP servers run. 0 or -1. */
int oauth_token_routes(void);
/* Free the replay cache at exit (after the servers stopped). */
void oauth_token_shutdown(void);
/* A worker thread whose loop has ended: answer the token requests still
 * waiting for their group commit, free the thread's batch event. */
void token_batch_thread_end(void);

#endif
