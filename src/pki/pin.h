/*
 * PINs for phones (issue 5 item 2, PROTOCOLS.md §3): the PIN policy, phone
 * numbers and extensions, the lockout counters, and the sign-in "number (or
 * extension, or SIP URI) + PIN" that certificate provisioning uses.
 *
 * The hash is the vault's (vault/vault_pin.h): this module never sees one.
 * Counters live in the store's pins table so that every worker and every
 * front end of a pool sees the same ones.
 *
 * Lockout (PROTOCOLS.md §3): by the PIN's length class, a local limit of
 * failures in a 30-minute window (then a 1-hour temporary lockout) and a
 * global limit (then locked until `rtcauthctl pin unlock`):
 *   4 digits: 10 / 100;  5 digits: 25 / 1000;  6 or more: 25 / 5000.
 * A success resets both counters. Attempts during a lockout are refused
 * without looking at the PIN and are not counted.
 *
 * Must never log a PIN.
 */
#ifndef RTC_PKI_PIN_H
#define RTC_PKI_PIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define PIN_MIN_LENGTH_DEFAULT 6
#define PIN_MIN_LENGTH_LOW     4    /* [pin] min_length bounds */
#define PIN_MAX_LENGTH	       24   /* also the longest PIN accepted */
#define PIN_WINDOW	       1800 /* seconds: the local counter's window */
#define PIN_LOCK_TIME	       3600 /* seconds: the temporary lockout */
#define PIN_MAX_CANDIDATES     8    /* users sharing a number tried with one PIN */

/* ---- policy ---- */

struct pin_policy {
	int min_length; /* [pin] min_length, 4..24 */
};

enum pin_policy_result {
	PIN_POLICY_OK = 0,
	PIN_POLICY_TOO_SHORT = -1,
	PIN_POLICY_TOO_LONG = -2,
	PIN_POLICY_NOT_DIGITS = -3,
	PIN_POLICY_REPEAT = -4,	   /* 111111, 121212, 123123: one group repeated */
	PIN_POLICY_RUN = -5,	   /* 123456, 654321, 789012: consecutive digits */
	PIN_POLICY_PHONE = -6,	   /* the phone number or a tail of it */
	PIN_POLICY_EXTENSION = -7, /* the extension or a tail of it */
};

/*
 * Check a new PIN (len bytes, not NUL-terminated necessarily) against the
 * policy and the user's phone number and extension (NULL or '' = none).
 * PIN_POLICY_OK or the first rule it breaks.
 */
int pin_policy_check(const struct pin_policy *p, const char *pin, size_t len, const char *phone,
		     const char *extension);
/* A sentence for a person: what the rule is ("the PIN must have at least
 * 6 digits"); min_length fills in the number. */
const char *pin_policy_strerror(int rc, int min_length, char *buf, size_t cap);

/* ---- phone numbers and extensions ---- */

/*
 * A phone number as written by a person ("+1 (425) 555-0100", "tel:+1-425-
 * 555-0100") -> "+14255550100": '+' then 7 to 15 digits (E.164); spaces,
 * '-', '.', '(' and ')' are dropped. 0, or -1 with why (a sentence).
 */
int pin_phone_normalise(const char *in, char out[STORE_PHONE_MAX], const char **why);
/* An extension: 1 to 15 digits. 0 or -1 with why. */
int pin_extension_check(const char *in, const char **why);

/* ---- lockout ---- */

struct pin_limits {
	int32_t local;
	int32_t global;
};
/* The limits of a length class (4, 5, 6). */
struct pin_limits pin_limits_of_class(int klass);

enum pin_lock_state {
	PIN_UNLOCKED = 0,
	PIN_LOCKED_TEMP = 1,  /* *retry_after seconds left */
	PIN_LOCKED_ADMIN = 2, /* until an administrator unlocks */
};
enum pin_lock_state pin_lock_check(const struct store_pin_state *st, int64_t now,
				   int64_t *retry_after);
/* Count one failure at now into st (limits from st->params' class). Returns
 * the lock state after it. */
enum pin_lock_state pin_count_failure(struct store_pin_state *st, int64_t now);
/* A success, or an administrator's unlock: every counter and lock cleared. */
void pin_clear(struct store_pin_state *st);

/* ---- sign-in with a PIN ---- */

enum pin_auth_result {
	PIN_AUTH_OK = 0,
	PIN_AUTH_WRONG = -1,	   /* wrong PIN, unknown number, no PIN, disabled user */
	PIN_AUTH_LOCKED = -2,	   /* retry_after > 0: temporary; 0: needs an administrator */
	PIN_AUTH_AMBIGUOUS = -3,   /* several users have this number and this PIN */
	PIN_AUTH_UNAVAILABLE = -4, /* store outage: "try later", never "wrong PIN" */
	PIN_AUTH_BAD_INPUT = -5,   /* not a number, extension or SIP URI; PIN not digits */
	PIN_AUTH_BUSY = -6,	   /* another attempt for this user is under way: retry shortly */
};

struct pin_auth_out {
	struct store_user user; /* on PIN_AUTH_OK */
	int64_t retry_after;	/* on PIN_AUTH_LOCKED: seconds; 0 = administrator */
	const char *why;	/* on BAD_INPUT and AMBIGUOUS: a sentence for the client */
	const char *reason;	/* for the log: "wrong_pin", "unknown", "no_pin", ... */
};

/*
 * Sign in with who (a phone number "+1...", optionally ";ext=1234", a bare
 * number or extension "1234", or a SIP URI) and extension (NULL or '': none;
 * else it narrows a shared phone number) and the PIN. Unknown numbers, users
 * without a PIN and disabled users do the same work as a wrong PIN and give
 * the same answer. Failures are counted for every candidate user whose PIN
 * was tried. now: unix seconds.
 */
int pin_authenticate(struct store *s, const char *who, const char *extension, const char *pin,
		     size_t pin_len, int64_t now, struct pin_auth_out *out);

/*
 * pin_authenticate in three steps, so that the scrypt work (~0.1 s per
 * candidate) runs on a pool thread (core/workq) rather than on the event
 * loop, while the store (one connection per thread) is used only on the
 * calling thread:
 *
 *   rc = pin_auth_begin(s, who, extension, pin, len, now, &a, out);
 *       on the store's thread: checks the input, finds the candidates,
 *       reads their counters and locks and their hashes (the vault's).
 *       0: *a is an attempt; else the final result (out filled, *a NULL).
 *   pin_auth_work(a);            any thread, pure CPU: the KDF work.
 *   rc = pin_auth_end(s, a, now, out);
 *       on a thread with a store: decides, counts the failures or clears
 *       the counters (exactly as pin_authenticate), frees a.
 *   pin_auth_cancel(a);          instead of end: frees a, counts nothing.
 *
 * Lockout races: an attempt holds each of its candidate users from begin
 * to end (or cancel), in this process. A second attempt for a user held
 * gets PIN_AUTH_BUSY at once, without looking at the PIN and without being
 * counted (answer 503 with Retry-After: 1). So attempts for one user are
 * serialised: each one's failure is in the store before the next one reads
 * the counters, and N attempts sent at once cannot all pass the lock check
 * (which a pending count would also prevent, but serialising keeps the
 * counters' meaning exactly that of PROTOCOLS.md §3).
 */
struct pin_attempt;
int pin_auth_begin(struct store *s, const char *who, const char *extension, const char *pin,
		   size_t pin_len, int64_t now, struct pin_attempt **a, struct pin_auth_out *out);
void pin_auth_work(struct pin_attempt *a);
int pin_auth_end(struct store *s, struct pin_attempt *a, int64_t now, struct pin_auth_out *out);
void pin_auth_cancel(struct pin_attempt *a);
/* Attempts holding users now (tests). */
size_t pin_auth_in_flight(void);

/* "ok", "wrong", "locked", "ambiguous", "unavailable", "bad_input", "busy". */
const char *pin_auth_result_name(int rc);

/* Clear a user's counters and locks (`rtcauthctl pin unlock`).
 * STORE_NOTFOUND when the user has no PIN. */
int pin_unlock(struct store *s, int64_t user_id);

#endif
