/* Process-wide counters, labelled families and histograms; see stats.h. */
#include "core/stats.h"

#include <stdatomic.h>
#include <time.h>

static _Atomic uint64_t counters[ST_COUNT];

static const struct {
	const char *name, *help;
} names[ST_COUNT] = {
    [ST_SIP_RX] = {"sip_rx", "SIP messages received"},
    [ST_SIP_TX] = {"sip_tx", "SIP messages sent"},
    [ST_SIP_BAD] = {"sip_bad", "SIP messages refused or dropped as malformed"},
    [ST_REG_OK] = {"register_ok", "REGISTER requests answered 200"},
    [ST_AUTH_CHALLENGE] = {"auth_challenge", "Digest challenges sent (401/407)"},
    [ST_AUTH_OK] = {"auth_ok", "Digest authentications that succeeded"},
    [ST_AUTH_FAIL] = {"auth_fail", "Digest authentications that failed"},
    [ST_AUTH_STALE] = {"auth_stale", "Digest responses with a stale nonce"},
    [ST_AUTH_REPLAY] = {"auth_replay", "Digest responses with a replayed nonce count"},
    [ST_AUTH_LOCKED] = {"auth_locked", "Requests refused by the lockout"},
    [ST_AUTH_TEMPFAIL] = {"auth_tempfail", "Authentications failed because the store was "
					   "unavailable"},
    [ST_ROUTED] = {"routed", "SIP requests forwarded"},
    [ST_ROUTE_FAIL] = {"route_fail", "SIP requests the router could not forward"},
    [ST_TCP_ACCEPTED] = {"stream_accepted", "SIP TCP and TLS connections accepted"},
    [ST_TCP_REFUSED] = {"stream_refused", "SIP TCP and TLS connections refused by the "
					  "per-source limit"},
    [ST_TLS_HANDSHAKE_FAIL] = {"tls_handshake_fail", "SIP TLS handshakes that failed"},
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
	return names[id].name;
}

const char *stats_help(enum stat_id id)
{
	return names[id].help;
}

/* ---- labelled families ---- */

struct family {
	const char *name, *help;
	const char *const *labels;
	size_t n;
};

#define FAMILY_LABELS(...)                                                                         \
	(const char *const[])                                                                      \
	{                                                                                          \
		__VA_ARGS__                                                                        \
	}
#define FAMILY_N(...) (sizeof(FAMILY_LABELS(__VA_ARGS__)) / sizeof(const char *))
#define FAMILY_ROW(id, name, help, ...)                                                            \
	[id] = {name, help, FAMILY_LABELS(__VA_ARGS__), FAMILY_N(__VA_ARGS__)},
static const struct family families[SF_COUNT] = {STATS_FAMILIES(FAMILY_ROW)};
#undef FAMILY_ROW

#define FAMILY_CHECK(id, name, help, ...)                                                          \
	_Static_assert(FAMILY_N(__VA_ARGS__) <= STATS_MAX_LABEL_SETS,                              \
		       "too many label sets in " #id);
STATS_FAMILIES(FAMILY_CHECK)
#undef FAMILY_CHECK

_Static_assert(sizeof((const char *[]){STATS_AUTH_LABELS("x")}) / sizeof(const char *) ==
		   STATS_AUTH_RESULT_COUNT,
	       "STATS_AUTH_LABELS has one label set per enum stats_auth_result");
static _Atomic uint64_t family_counts[SF_COUNT][STATS_MAX_LABEL_SETS];

void stats_family_inc(enum stats_family_id f, unsigned idx)
{
	if ((unsigned)f < SF_COUNT && idx < families[f].n)
		atomic_fetch_add_explicit(&family_counts[f][idx], 1, memory_order_relaxed);
}

uint64_t stats_family_get(enum stats_family_id f, unsigned idx)
{
	if ((unsigned)f >= SF_COUNT || idx >= families[f].n)
		return 0;
	return atomic_load_explicit(&family_counts[f][idx], memory_order_relaxed);
}

const char *stats_family_name(enum stats_family_id f)
{
	return families[f].name;
}

const char *stats_family_help(enum stats_family_id f)
{
	return families[f].help;
}

const char *const *stats_family_labels(enum stats_family_id f, size_t *n)
{
	*n = families[f].n;
	return families[f].labels;
}

/* ---- histograms ---- */

/* 50 µs .. 2.5 s: a SIP request answered from memory takes tens of µs, one
 * that waits on the store or a signature a few ms. */
static const uint64_t bounds[STATS_HIST_BOUNDS] = {
    50,	   100,	  250,	  500,	  1000,	  2500,	   5000,    10000,
    25000, 50000, 100000, 250000, 500000, 1000000, 2500000,
};

struct hist {
	_Atomic uint64_t buckets[STATS_HIST_BOUNDS + 1];
	_Atomic uint64_t sum_us;
};

static struct hist hists[STH_COUNT];

static const struct {
	const char *name, *help;
} hist_names[STH_COUNT] = {
    [STH_SIP_REQUEST] = {"rtcauth_sip_request_duration_seconds",
			 "Time to handle one received SIP message"},
    [STH_HTTP_REQUEST] = {"rtcauth_http_request_duration_seconds",
			  "Time to handle one HTTP request, from dispatch to response queued"},
};

void stats_observe_us(enum stats_hist_id h, uint64_t us)
{
	size_t i = 0;

	if ((unsigned)h >= STH_COUNT)
		return;
	while (i < STATS_HIST_BOUNDS && us > bounds[i])
		i++;
	atomic_fetch_add_explicit(&hists[h].buckets[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&hists[h].sum_us, us, memory_order_relaxed);
}

const uint64_t *stats_hist_bounds(void)
{
	return bounds;
}

void stats_hist_read(enum stats_hist_id h, uint64_t buckets[STATS_HIST_BOUNDS + 1], uint64_t *count,
		     uint64_t *sum_us)
{
	uint64_t n = 0;

	for (size_t i = 0; i <= STATS_HIST_BOUNDS; i++) {
		buckets[i] = atomic_load_explicit(&hists[h].buckets[i], memory_order_relaxed);
		n += buckets[i];
	}
	*count = n;
	*sum_us = atomic_load_explicit(&hists[h].sum_us, memory_order_relaxed);
}

const char *stats_hist_name(enum stats_hist_id h)
{
	return hist_names[h].name;
}

const char *stats_hist_help(enum stats_hist_id h)
{
	return hist_names[h].help;
}

uint64_t stats_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
