/* Process-wide counters; see stats.h. */
#include "core/stats.h"

#include <stdatomic.h>

static _Atomic uint64_t counters[ST_COUNT];

static const char *const names[ST_COUNT] = {
    [ST_SIP_RX] = "sip_rx",
    [ST_SIP_TX] = "sip_tx",
    [ST_SIP_BAD] = "sip_bad",
    [ST_REG_OK] = "register_ok",
    [ST_AUTH_CHALLENGE] = "auth_challenge",
    [ST_AUTH_OK] = "auth_ok",
    [ST_AUTH_FAIL] = "auth_fail",
    [ST_AUTH_STALE] = "auth_stale",
    [ST_AUTH_REPLAY] = "auth_replay",
    [ST_AUTH_LOCKED] = "auth_locked",
    [ST_AUTH_TEMPFAIL] = "auth_tempfail",
    [ST_ROUTED] = "routed",
    [ST_ROUTE_FAIL] = "route_fail",
    [ST_TCP_ACCEPTED] = "stream_accepted",
    [ST_TCP_REFUSED] = "stream_refused",
    [ST_TLS_HANDSHAKE_FAIL] = "tls_handshake_fail",
};

void stats_inc(enum stat_id id)
{
	atomic_fetch_add_explicit(&counters[id], 1, memory_order_relaxed);
}

void stats_add(enum stat_id id, uint64_t n)
{
	atomic_fetch_add_explicit(&counters[id], n, memory_order_relaxed);
}

uint64_t stats_get(enum stat_id id)
{
	return atomic_load_explicit(&counters[id], memory_order_relaxed);
}

const char *stats_name(enum stat_id id)
{
	return names[id];
}
