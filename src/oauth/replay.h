/*
 * The jti replay cache of the token endpoint (RFC 7523 §3 item 7, RFC 7521
 * §5.2): every client assertion (and user assertion) the endpoint accepts
 * leaves its (partner, jti) here until the assertion could no longer be
 * accepted (its exp plus the clock skew); a second use inside that window is
 * a replay.
 *
 * Memory is bounded by the capacity given at creation. When the cache is
 * full of entries that have not expired yet, new assertions are REFUSED
 * (REPLAY_FULL: the endpoint answers 503 temporarily_unavailable) rather
 * than an unexpired jti being forgotten: forgetting would let a replay in.
 *
 * Keys are a keyed SHA-256 (a per-process random secret) of the partner and
 * the jti, truncated to 128 bits: fixed-size entries whatever the jti's
 * length, and table positions an attacker cannot aim at. Shards with a
 * mutex each; tables grow by doubling up to the capacity. Thread-safe.
 *
 * One process only: a pool of front ends sharing partners would need a
 * shared cache (the store) — see the report of issue 3.
 */
#ifndef RTC_OAUTH_REPLAY_H
#define RTC_OAUTH_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#define REPLAY_DEFAULT_CAPACITY (1u << 20) /* entries: at most 32 MiB of tables */
#define REPLAY_JTI_MAX		256	   /* bytes of a jti we accept at all */

enum replay_result {
	REPLAY_OK = 0,	     /* first use: recorded */
	REPLAY_SEEN = -1,    /* used before, and not expired: a replay */
	REPLAY_FULL = -2,    /* no room without forgetting an unexpired jti */
	REPLAY_INVALID = -3, /* empty or oversized jti, or bad arguments */
	REPLAY_NOMEM = -4,
};

struct replay_cache;

/* A cache for at most capacity live entries (0: the default). NULL on
 * allocation failure. */
struct replay_cache *replay_new(size_t capacity);
void replay_free(struct replay_cache *rc);

/*
 * Record that partner used jti, to be remembered until expires (unix
 * seconds; an entry is dropped once now > expires). Returns REPLAY_OK the
 * first time, REPLAY_SEEN while an earlier use is remembered, REPLAY_FULL
 * when capacity entries are live.
 */
int replay_check_and_add(struct replay_cache *rc, const char *partner, const char *jti,
			 int64_t expires, int64_t now);

/* Entries held (live or not yet purged). */
size_t replay_count(struct replay_cache *rc);

#endif
