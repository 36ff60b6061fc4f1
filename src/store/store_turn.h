/*
 * The TURN part of the store (sqlite_turn.c): the USERHASH index of RFC 8489
 * §14.4, SHA-256(name ":" realm) of each TURN user name of a user (the user
 * part and user@domain, realm = the user's domain), so that a STUN request
 * naming only the hash finds its user. The hashes are computed by the
 * caller (src/vault/vault_turn.c); this module only stores and finds them.
 * They are not secrets (anyone who knows the name can compute one), but
 * they name users: nothing here logs them.
 *
 * Same connection rules and error codes as store.h.
 */
#ifndef RTC_STORE_STORE_TURN_H
#define RTC_STORE_STORE_TURN_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define STORE_TURN_USERHASH_LEN 32
#define STORE_TURN_USERHASH_MAX 8 /* hashes per user */

/*
 * Replace every USERHASH of user_id by hashes[0..n) (n <= STORE_TURN_USERHASH_MAX;
 * 0 deletes them), in one transaction (or a savepoint of the caller's). A
 * hash another user holds moves to this user. STORE_NOTFOUND for an unknown
 * user, STORE_INVALID for n too large.
 */
int store_turn_userhash_put(struct store *s, int64_t user_id,
			    const uint8_t (*hashes)[STORE_TURN_USERHASH_LEN], size_t n);

/*
 * The user whose USERHASH is hash: fills *u (id, uri, user, domain,
 * display_name, enabled, has_password). STORE_NOTFOUND when nobody has it.
 */
int store_turn_userhash_find(struct store *s, const uint8_t hash[STORE_TURN_USERHASH_LEN],
			     struct store_user *u);

/* How many USERHASHes user_id has (tests, rtcauthctl). */
int store_turn_userhash_count(struct store *s, int64_t user_id, int *n);

/*
 * Users that have a TURN key (a "digest-md5" credential) but no USERHASH
 * (a database made before migration 7, keys written by other tools), in id
 * order after after_id: up to cap of them into out (id, uri, user, domain
 * filled), *n how many. Call again with the last id until *n < cap.
 */
int store_turn_userhash_missing(struct store *s, int64_t after_id, struct store_user *out,
				size_t cap, size_t *n);

#endif
