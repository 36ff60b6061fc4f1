/*
 * The vault's PIN side (issue 5 item 2): a PIN is kept only as a salted
 * scrypt hash (OpenSSL EVP_KDF "SCRYPT"), with the parameters it was made
 * with recorded next to it ("scrypt:N=32768,r=8,p=1,dklen=32,class=6"), so
 * that raising the cost later leaves old hashes verifiable. Verification
 * recomputes with the recorded parameters (bounded: a tampered row cannot
 * make us allocate gigabytes) and compares in constant time.
 *
 * "class" records the PIN's length class (4, 5, or 6 for six digits or
 * more), which the lockout limits depend on (PROTOCOLS.md §3); the length
 * itself is not recorded.
 *
 * Must never log a PIN or a hash, nor keep a copy: every buffer that held
 * one is wiped.
 *
 * Thread safety: every function from any thread, each with its own store.
 */
#ifndef RTC_VAULT_VAULT_PIN_H
#define RTC_VAULT_VAULT_PIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define VAULT_PIN_SALT_LEN 32
#define VAULT_PIN_HASH_LEN 32
#define VAULT_PIN_N_LOG2   15 /* N = 32768, r = 8: 32 MiB, ~0.1 s per PIN */
#define VAULT_PIN_R	   8
#define VAULT_PIN_P	   1

/* Accepted when verifying a stored hash (what a row may ask us to do). */
#define VAULT_PIN_MAX_N_LOG2 20
#define VAULT_PIN_MIN_N_LOG2 10
#define VAULT_PIN_MAX_R	     32
#define VAULT_PIN_MAX_P	     16
#define VAULT_PIN_MAXMEM     ((uint64_t)1 << 30)

struct vault_pin_params {
	uint64_t n; /* a power of two */
	uint32_t r, p;
	uint32_t dklen; /* hash bytes */
	int klass;	/* length class: 4, 5 or 6 (6 or more digits) */
};

/* The length class of a PIN of len digits: 4 (len <= 4), 5, or 6. */
int vault_pin_class(size_t len);

/* "scrypt:N=..,r=..,p=..,dklen=..,class=.." into out. 0 or -1. */
int vault_pin_params_format(const struct vault_pin_params *p, char *out, size_t cap);
/* Parse and bound-check a params string (as stored). 0 or -1. */
int vault_pin_params_parse(const char *s, struct vault_pin_params *out);

/*
 * Hash pin (len bytes) with a fresh 32-byte salt at the current cost and
 * store it for user_id (store_pin_put: the lockout counters start again).
 * The caller has checked the policy. 0 or a store error (STORE_INVALID for
 * an empty PIN, STORE_UNAVAILABLE when the KDF fails).
 */
int vault_pin_set(struct store *s, int64_t user_id, const char *pin, size_t len, int64_t now);

enum vault_pin_result {
	VAULT_PIN_MATCH = 0,
	VAULT_PIN_MISMATCH = 1,
	VAULT_PIN_NONE = 2,	   /* the user has no PIN (the same work was done) */
	VAULT_PIN_UNAVAILABLE = 3, /* store outage or KDF failure: "try later" */
};

/* Compare pin with user_id's stored hash. A user without a PIN costs the
 * same work as one with a PIN (a dummy hash at the current cost). */
enum vault_pin_result vault_pin_verify(struct store *s, int64_t user_id, const char *pin,
				       size_t len);

/*
 * vault_pin_verify in two steps, so that the slow part can leave the event
 * loop (core/workq, issue 5): vault_pin_load reads the stored hash with the
 * store of the calling thread (store connections are per thread);
 * vault_pin_compare is pure CPU (no store, no I/O), on any thread, and
 * wipes what load read. Exactly one compare (or wipe) per load.
 */
struct vault_pin_check {
	int state; /* VAULT_PIN_MATCH: loaded; VAULT_PIN_NONE; VAULT_PIN_UNAVAILABLE */
	uint8_t hash[STORE_PIN_BLOB_MAX], salt[STORE_PIN_BLOB_MAX];
	size_t hlen, slen;
	char params[STORE_PIN_PARAMS_MAX];
};
/* Read user_id's hash into c. VAULT_PIN_MATCH (loaded: compare next),
 * VAULT_PIN_NONE (no PIN: compare does the dummy work) or
 * VAULT_PIN_UNAVAILABLE. */
enum vault_pin_result vault_pin_load(struct store *s, int64_t user_id, struct vault_pin_check *c);
/* Compare pin with what c holds (the KDF's work even for NONE), then wipe
 * c. MATCH, MISMATCH, NONE or UNAVAILABLE, as vault_pin_verify. */
enum vault_pin_result vault_pin_compare(struct vault_pin_check *c, const char *pin, size_t len);
/* Wipe c without comparing (a cancelled attempt). */
void vault_pin_check_wipe(struct vault_pin_check *c);

/* The work of one verification at the current cost, with nothing to compare
 * (for an unknown phone number). */
void vault_pin_dummy(const char *pin, size_t len);

/*
 * Tests only: the scrypt cost (log2 N) of new hashes and of the dummy work,
 * VAULT_PIN_MIN_N_LOG2..VAULT_PIN_MAX_N_LOG2 (else ignored). The daemon and
 * rtcauthctl never call it.
 */
void vault_pin_set_cost(int n_log2);

/* The KDF itself: scrypt(pin, salt) with p into out (p->dklen bytes).
 * 0 or -1. Exposed for the known-answer test. */
int vault_pin_kdf(const char *pin, size_t len, const uint8_t *salt, size_t salt_len,
		  const struct vault_pin_params *p, uint8_t *out);

#endif
