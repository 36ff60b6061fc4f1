/*
 * Stateless Digest nonces: base64url(timestamp || MAC) where the MAC is
 * vault_mac("digest-nonce", timestamp || realm) truncated to 16 bytes. Any
 * server of a pool (same pool secret) can check a nonce; no state is kept
 * for nonces that were only handed out.
 *
 * Replay protection needs state: the nonce-count (nc) values seen for a
 * nonce are tracked in a sharded table (highest nc plus a 64-bit window of
 * recent ones) from the nonce's first use until it expires. The table has a
 * capacity; when full it drops its oldest entries and raises a horizon:
 * nonces older than the horizon are treated as stale, so eviction can never
 * re-open a replay.
 */
#ifndef RTC_AUTH_NONCE_H
#define RTC_AUTH_NONCE_H

#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

#define NONCE_LEN 32 /* characters of a nonce we issue (base64url, no padding) */

enum nonce_status {
	NONCE_OK = 0,
	NONCE_STALE = 1,    /* authentic but too old (or older than the horizon): stale=true */
	NONCE_INVALID = -1, /* not ours: wrong MAC, wrong length, bad encoding, other realm */
	NONCE_REPLAY = -2,  /* this nc (or, without qop, this nonce) was already used */
};

struct nonce_table;

/* capacity: entries tracked (e.g. 1<<20); lifetime: seconds a nonce is fresh. */
struct nonce_table *nonce_table_new(size_t capacity, uint32_t lifetime);
void nonce_table_free(struct nonce_table *t);
/* New freshness lifetime (SIGHUP); applies to nonces already handed out. */
void nonce_table_set_lifetime(struct nonce_table *t, uint32_t lifetime);

/* Write a fresh nonce for realm at time now (unix seconds) into out
 * (cap >= NONCE_LEN + 1, NUL-terminated). 0 or -1. */
int nonce_make(struct str realm, int64_t now, char *out, size_t cap);

/*
 * A nonce in two steps: a new stamp (issue time << 32 | serial), and the
 * nonce made from a stamp. A retransmitted request must get the very same
 * challenge (RFC 3261 §17.2.1), so its stamp is remembered and the nonce
 * rebuilt from it. nonce_new_stamp returns 0 for a time out of range.
 */
uint64_t nonce_new_stamp(int64_t now);
int nonce_from_stamp(struct str realm, uint64_t stamp, char *out, size_t cap);

/* Authentic and fresh? (no nc tracking) */
enum nonce_status nonce_check(const struct nonce_table *t, struct str nonce, struct str realm,
			      int64_t now);

/*
 * nonce_check, then record nc (0 = no qop: the nonce is single use).
 * Call only after the response was verified, so failed guesses do not burn
 * counts. Thread-safe.
 */
enum nonce_status nonce_use(struct nonce_table *t, struct str nonce, struct str realm, uint32_t nc,
			    int64_t now);

/* Entries currently tracked (for /metrics and tests). */
size_t nonce_table_size(struct nonce_table *t);

#endif
