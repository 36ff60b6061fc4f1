/*
 * Failed-authentication counting and lockout, in memory, shared by all
 * workers (sharded, mutex per shard).
 *
 * Order of checks (per-source before per-user, so one attacker cannot keep a
 * user locked out from everywhere):
 *  1. the source address is throttled (too many failures from it in its
 *     window) -> locked, whatever the user;
 *  2. the user is locked (too many failures in its window) -> locked, unless
 *     this source authenticated successfully as this user within the last
 *     24 hours (a known device keeps working while an attacker elsewhere
 *     trips the lock);
 * Failures from a throttled source are not counted against the user.
 * A user's lock duration doubles each time it is locked again within
 * lock_max, up to lock_max; a success resets the user's failure count.
 */
#ifndef RTC_AUTH_LOCKOUT_H
#define RTC_AUTH_LOCKOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

struct lockout_policy {
	uint32_t user_failures;	  /* e.g. 10 */
	uint32_t user_window;	  /* seconds, e.g. 300 */
	uint32_t user_duration;	  /* seconds, first lock, e.g. 300 */
	uint32_t user_max;	  /* seconds, longest lock, e.g. 3600 */
	uint32_t source_failures; /* e.g. 30 */
	uint32_t source_window;	  /* seconds */
	uint32_t source_duration; /* seconds */
};

struct lockout;

struct lockout *lockout_new(const struct lockout_policy *p);
void lockout_free(struct lockout *l);
/* Replace the policy (SIGHUP); existing locks keep their end time. */
void lockout_set_policy(struct lockout *l, const struct lockout_policy *p);

enum lockout_state { LOCKOUT_NONE = 0, LOCKOUT_SOURCE = 1, LOCKOUT_USER = 2 };

/*
 * Is this attempt refused? user is the normalised identity (AOR, or the
 * Digest user name when unknown); source is the IP address as text (no port).
 * now in monotonic seconds. *retry_after gets seconds to wait when locked.
 */
enum lockout_state lockout_check(struct lockout *l, struct str user, struct str source,
				 uint64_t now, uint32_t *retry_after);
/* Record a failure; returns the state after it (a lock may start now). */
enum lockout_state lockout_fail(struct lockout *l, struct str user, struct str source,
				uint64_t now);
/* Record a success: clears the user's failures and remembers the source. */
void lockout_success(struct lockout *l, struct str user, struct str source, uint64_t now);

struct lockout_entry {
	bool is_source;
	char key[256];
	uint32_t failures;   /* in the current window */
	uint32_t locked_for; /* seconds remaining, 0 = not locked */
};
/* Calls fn for every entry with failures or a lock. */
void lockout_list(struct lockout *l, uint64_t now,
		  void (*fn)(void *ctx, const struct lockout_entry *e), void *ctx);
/* Clear a user or a source (key as listed); returns entries removed. "*" clears all. */
int lockout_clear(struct lockout *l, struct str key);

#endif
