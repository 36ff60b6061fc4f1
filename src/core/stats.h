/*
 * Process-wide counters for `rtcauthctl status` and /metrics.
 * Relaxed atomics: cheap on the hot path, exact enough for monitoring.
 *
 * Three kinds, all fixed at compile time so that observing never allocates
 * nor locks:
 *   - plain counters (enum stat_id);
 *   - labelled counter families with a fixed list of label sets
 *     (STATS_FAMILIES: adding a family is one X(...) line);
 *   - latency histograms with fixed buckets (enum stats_hist_id).
 */
#ifndef RTC_CORE_STATS_H
#define RTC_CORE_STATS_H

#include <stddef.h>
#include <stdint.h>

enum stat_id {
	ST_SIP_RX,	   /* SIP messages received */
	ST_SIP_TX,	   /* SIP messages sent */
	ST_SIP_BAD,	   /* answered 400/505/513 or dropped as malformed */
	ST_REG_OK,	   /* REGISTER answered 200 */
	ST_AUTH_CHALLENGE, /* 401/407 challenges sent */
	ST_AUTH_OK,	   /* Digest successes */
	ST_AUTH_FAIL,	   /* Digest failures (wrong password, unknown, disabled) */
	ST_AUTH_STALE,	   /* stale nonces */
	ST_AUTH_REPLAY,	   /* replayed nonce counts */
	ST_AUTH_LOCKED,	   /* refused by lockout */
	ST_AUTH_TEMPFAIL,  /* store unavailable */
	ST_ROUTED,	   /* requests forwarded */
	ST_ROUTE_FAIL,	   /* 404/480/403/483 from the router */
	ST_TCP_ACCEPTED,
	ST_TCP_REFUSED, /* per-source connection limit */
	ST_TLS_HANDSHAKE_FAIL,
	ST_COUNT
};

void stats_inc(enum stat_id id);
void stats_add(enum stat_id id, uint64_t n);
uint64_t stats_get(enum stat_id id);
const char *stats_name(enum stat_id id);
/* One line for HELP in /metrics. */
const char *stats_help(enum stat_id id);

/*
 * Labelled counter families: X(id, metric name, help, label set, ...).
 * Each label set is Prometheus label text without braces; the caller counts
 * with the index of the set in this list (0-based), usually through an enum
 * of its own. At most STATS_MAX_LABEL_SETS sets per family. Later families
 * (authentications by mechanism and result, tokens by outcome and reason)
 * are one line each, e.g.
 *   X(SF_AUTH, "rtcauth_authentications_total", "...",
 *     "mechanism=\"digest\",result=\"ok\"", "mechanism=\"digest\",result=\"fail\"")
 */
#define STATS_MAX_LABEL_SETS 32
/* The result labels of rtcauth_oauth_validations_total, in the order of
 * enum validate_result (oauth/validate.h); the names are
 * validate_result_name()'s. */
#define VALIDATE_RESULT_LABELS                                                                     \
	"result=\"ok\"", "result=\"missing\"", "result=\"too_large\"", "result=\"malformed\"",     \
	    "result=\"bad_base64url\"", "result=\"bad_json\"", "result=\"duplicate_claim\"",       \
	    "result=\"too_deep\"", "result=\"alg_none\"", "result=\"alg_not_allowed\"",            \
	    "result=\"crit_unsupported\"", "result=\"no_key_id\"", "result=\"unknown_kid\"",       \
	    "result=\"bad_signature\"", "result=\"bad_header\"", "result=\"claim_missing\"",       \
	    "result=\"claim_type\"", "result=\"unknown_issuer\"", "result=\"partner_disabled\"",   \
	    "result=\"bad_audience\"", "result=\"expired\"", "result=\"not_yet_valid\"",           \
	    "result=\"lifetime_too_long\"", "result=\"revoked\"", "result=\"actor_mismatch\"",     \
	    "result=\"delegation_not_allowed\"", "result=\"insufficient_scope\"",                  \
	    "result=\"internal\"", "result=\"certificate_mismatch\""
/* The label sets of rtcauth_authentications_total: one row per mechanism,
 * one column per enum stats_auth_result (stats_auth() counts them). */
#define STATS_AUTH_LABELS(mech)                                                                    \
	"mechanism=\"" mech "\",result=\"ok\"", "mechanism=\"" mech "\",result=\"failure\"",       \
	    "mechanism=\"" mech "\",result=\"stale\"", "mechanism=\"" mech "\",result=\"replay\"", \
	    "mechanism=\"" mech "\",result=\"locked\"",                                            \
	    "mechanism=\"" mech "\",result=\"unavailable\""
#define STATS_FAMILIES(X)                                                                          \
	X(SF_AUTHENTICATIONS, "rtcauth_authentications_total",                                     \
	  "Authentication attempts, by mechanism and result", STATS_AUTH_LABELS("digest"),         \
	  STATS_AUTH_LABELS("ntlm"), STATS_AUTH_LABELS("kerberos"),                                \
	  STATS_AUTH_LABELS("signature"), STATS_AUTH_LABELS("certificate"))                        \
	X(SF_HTTP_RESPONSES, "rtcauth_http_responses_total",                                       \
	  "HTTP responses sent, by status class", "class=\"1xx\"", "class=\"2xx\"",                \
	  "class=\"3xx\"", "class=\"4xx\"", "class=\"5xx\"")                                       \
	X(SF_OAUTH_TOKENS, "rtcauth_oauth_tokens_total",                                           \
	  "Requests to the token endpoint, by outcome (enum token_reason)", "result=\"issued\"",   \
	  "result=\"invalid_request\"", "result=\"unsupported_grant_type\"",                       \
	  "result=\"no_client_auth\"", "result=\"unknown_issuer\"", "result=\"bad_assertion\"",    \
	  "result=\"bad_claims\"", "result=\"expired\"", "result=\"not_yet_valid\"",               \
	  "result=\"lifetime_too_long\"", "result=\"replay\"", "result=\"replay_cache_full\"",     \
	  "result=\"unauthorized_client\"", "result=\"invalid_grant\"",                            \
	  "result=\"invalid_target\"", "result=\"invalid_scope\"", "result=\"server_error\"")      \
	X(SF_OAUTH_VALIDATIONS, "rtcauth_oauth_validations_total",                                 \
	  "Bearer tokens validated, by result (enum validate_result)", VALIDATE_RESULT_LABELS)     \
	X(SF_OAUTH_VALIDATION_CACHE, "rtcauth_oauth_validation_cache_total",                       \
	  "Lookups in the cache of validated tokens", "result=\"hit\"", "result=\"miss\"")         \
	X(SF_OAUTH_INTROSPECTION, "rtcauth_oauth_introspection_total",                             \
	  "Requests to /oauth/introspect and /oauth/revoke, by outcome",                           \
	  "endpoint=\"introspect\",result=\"active\"",                                             \
	  "endpoint=\"introspect\",result=\"inactive\"",                                           \
	  "endpoint=\"introspect\",result=\"refused\"", "endpoint=\"revoke\",result=\"revoked\"",  \
	  "endpoint=\"revoke\",result=\"ignored\"", "endpoint=\"revoke\",result=\"refused\"",      \
	  "endpoint=\"revoke\",result=\"unavailable\"")

#define STATS_FAMILY_ENUM(id, ...) id,
enum stats_family_id { STATS_FAMILIES(STATS_FAMILY_ENUM) SF_COUNT };
#undef STATS_FAMILY_ENUM

/* Count one event of label set idx; an idx out of range is ignored. */
void stats_family_inc(enum stats_family_id f, unsigned idx);

/* Mechanisms and results of rtcauth_authentications_total (the rows and
 * columns of STATS_AUTH_LABELS; a new mechanism is one more row there). */
enum stats_auth_mech {
	STATS_MECH_DIGEST,
	STATS_MECH_NTLM,
	STATS_MECH_KERBEROS,
	STATS_MECH_SIGNATURE,	/* [MS-SIPAE] signed messages verified with an SA */
	STATS_MECH_CERTIFICATE, /* TLS client certificates (SIP TLS, HTTPS) */
	STATS_MECH_COUNT
};
enum stats_auth_result {
	STATS_AUTH_OK,
	STATS_AUTH_FAILURE,	/* wrong password, unknown or disabled user */
	STATS_AUTH_STALE,	/* a stale nonce: challenged again */
	STATS_AUTH_REPLAY,	/* a nonce count seen before */
	STATS_AUTH_LOCKED,	/* refused by lockout */
	STATS_AUTH_UNAVAILABLE, /* the store could not answer */
	STATS_AUTH_RESULT_COUNT
};
static inline void stats_auth(enum stats_auth_mech m, enum stats_auth_result r)
{
	stats_family_inc(SF_AUTHENTICATIONS, (unsigned)m * STATS_AUTH_RESULT_COUNT + (unsigned)r);
}
uint64_t stats_family_get(enum stats_family_id f, unsigned idx);
const char *stats_family_name(enum stats_family_id f);
const char *stats_family_help(enum stats_family_id f);
/* The label sets of f and how many there are. */
const char *const *stats_family_labels(enum stats_family_id f, size_t *n);

/*
 * Latency histograms in microseconds, with the same fixed upper bounds for
 * every histogram (stats_hist_bounds); observing is one short scan and three
 * relaxed atomic adds.
 */
enum stats_hist_id {
	STH_SIP_REQUEST,  /* one received SIP message, parse to answer queued */
	STH_HTTP_REQUEST, /* one HTTP request, dispatch to response queued */
	STH_COUNT
};

#define STATS_HIST_BOUNDS 15 /* finite buckets; one more for +Inf */

void stats_observe_us(enum stats_hist_id h, uint64_t us);
/* The finite upper bounds, ascending, STATS_HIST_BOUNDS of them (µs). */
const uint64_t *stats_hist_bounds(void);
/*
 * Snapshot of h: buckets[i] (non-cumulative) counts observations <= bound i
 * and above bound i-1; buckets[STATS_HIST_BOUNDS] those above the last bound.
 * *count is the sum of the buckets (so it always equals the +Inf bucket of
 * the cumulative form), *sum_us the sum of observations.
 */
void stats_hist_read(enum stats_hist_id h, uint64_t buckets[STATS_HIST_BOUNDS + 1], uint64_t *count,
		     uint64_t *sum_us);
/* Metric base name (e.g. "rtcauth_http_request_duration_seconds") and help. */
const char *stats_hist_name(enum stats_hist_id h);
const char *stats_hist_help(enum stats_hist_id h);

/* Monotonic microseconds, for timing what goes into a histogram. */
uint64_t stats_now_us(void);

#endif
