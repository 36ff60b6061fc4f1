/*
 * Process-wide counters for `rtcauthctl status` (and /metrics later).
 * Relaxed atomics: cheap on the hot path, exact enough for monitoring.
 */
#ifndef RTC_CORE_STATS_H
#define RTC_CORE_STATS_H

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

#endif
