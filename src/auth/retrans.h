/*
 * Retransmission memory for authenticated requests. Over UDP a client
 * retransmits a request (same Via branch, Call-ID, CSeq, credentials) until
 * it hears an answer (RFC 3261 §17.1.2). Such a copy reuses a nonce count
 * that the replay table has already seen; it is not an attack, and turning
 * it away would break every lossy path. A replay is different: captured
 * credentials in a new transaction (another branch, CSeq or Call-ID), or the
 * same request after the transaction's lifetime.
 *
 * After a successful check the request's fingerprint (SHA-256 over the
 * nonce, nc, branch, Call-ID, CSeq and method, truncated to 128 bits) is
 * kept for 32 s (64*T1, RFC 3261 §17.1.2.2). A request whose nc was already
 * used is accepted only if its fingerprint is here. The table is a fixed,
 * lossy array: losing an entry only means a retransmission is challenged
 * again, never that a replay gets in.
 */
#ifndef RTC_AUTH_RETRANS_H
#define RTC_AUTH_RETRANS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/str.h"

#define RETRANS_WINDOW 32

struct retrans_key {
	struct str nonce, nc, branch, call_id, cseq, method;
};

int retrans_init(unsigned slots_log2);
void retrans_shutdown(void);
/*
 * Challenges: the stamp of the nonce a request was challenged with
 * (nonce_new_stamp), so its retransmissions get the same challenge. The
 * key's nonce and nc are empty for these. Call with *stamp = a new stamp:
 * if this request was challenged within the window, *stamp becomes that
 * challenge's stamp and true is returned; else the new one is remembered.
 * A lost entry only means a retransmission gets a fresh challenge.
 */
bool retrans_stamp(const struct retrans_key *k, uint64_t now, uint64_t *stamp);

/* Remember a request that was authenticated at now (monotonic seconds). */
void retrans_remember(const struct retrans_key *k, uint64_t now);
/* Is this request a retransmission of one remembered within the window? */
bool retrans_seen(const struct retrans_key *k, uint64_t now);

#endif
