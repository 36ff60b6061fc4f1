/*
 * The vault: the only code that sees secrets. It holds the pool secret (a
 * random key shared by all servers of a pool, from <state_dir>/pool.secret)
 * and reads password-derived keys from the store. Other modules ask it to
 * derive, verify or MAC; it never hands a secret out. This is the seam along
 * which the daemon will be split into privilege-separated processes.
 *
 * Thread safety: vault_init once at start; vault_mac and vault_digest_verify
 * are safe from any thread (each caller passes its own store handle).
 */
#ifndef RTC_VAULT_VAULT_H
#define RTC_VAULT_VAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/digest_alg.h"
#include "auth/verdict.h"
#include "core/str.h"
#include "store/store.h"

struct digest_creds;

#define VAULT_SECRET_LEN 32

/*
 * Create <state_dir>/pool.secret (0600, 32 random bytes) if it does not
 * exist. 0 or -1 with err filled.
 */
int vault_bootstrap_secret(const char *state_dir, char *err, size_t errlen);

/* Load the pool secret from <state_dir>/pool.secret. 0 or -1 with err. */
int vault_init(const char *state_dir, char *err, size_t errlen);
/* Wipe the secret. */
void vault_shutdown(void);

/* HMAC-SHA256(pool secret, purpose || 0x00 || data) -> out (32 bytes). */
int vault_mac(const char *purpose, const void *data, size_t len, uint8_t out[32]);

/*
 * Derive every password-derived key for a user, for every mechanism the
 * project supports (Digest HA1 for MD5, SHA-256, SHA-512-256, each for the
 * user names "user" and "user@domain" with realm = domain), and store them
 * with store_cred_replace. The password is wiped by the caller; this
 * function wipes its own copies. 0 or a store error.
 */
int vault_set_password(struct store *s, const struct store_user *u, const char *password,
		       size_t password_len);

/*
 * Also store the NT hash (NTLM, mech "nt") on each vault_set_password;
 * on when NTLM is among the offered schemes. Default off.
 */
void vault_ntlm_hashes(bool on);
/*
 * The NetBIOS domain ([ntlm] domain): when set, vault_set_password also
 * stores the Digest keys of the user name "DOMAIN\\user" (web clients on
 * Windows send it), for the domain exactly as written here. Default unset.
 */
void vault_netbios_domain(const char *name);

/*
 * Check Digest credentials against the store. method/body come from the
 * request (body for auth-int). realm is ours. Unknown user, disabled user and
 * wrong response all do the same work (a dummy key for unknown users) and
 * return PERMFAIL with reasons "unknown_user", "disabled", "bad_response";
 * a store outage returns TEMPFAIL "store_unavailable".
 * On OK, *user (may be NULL) gets the user record.
 */
struct verdict vault_digest_verify(struct store *s, const struct digest_creds *c, struct str method,
				   struct str body, struct str realm, struct store_user *user);

/*
 * For the vault's own modules only (vault_turn.c: the TURN long-term key is
 * the Digest HA1): the stored Digest key of alg for (name, realm) with its
 * user, through the same per-thread cache as vault_digest_verify, so both
 * follow one set of rules (vault_cache_flush, the version poll, the grace
 * during a store outage). The contract of store_digest_lookup: STORE_OK
 * (*key filled; the caller checks u->enabled and wipes *key),
 * STORE_NOTFOUND (u->id > 0: the user exists without such a key),
 * STORE_INVALID for a name the store cannot hold, other codes an outage
 * (never cached). The key must not leave the vault.
 */
int vault_digest_key(struct store *s, struct str name, struct str realm, enum digest_alg alg,
		     struct store_user *u, struct store_cred *key);

/*
 * store_user_get through a per-thread cache with the rules of the key
 * cache above (vault_cache_flush, the version poll, the grace, a TTL
 * backstop): same contract, uri as given (the store normalises it; the
 * cache is keyed by the exact string, and one longer than 127 bytes always
 * goes to the store). STORE_OK fills *u; STORE_NOTFOUND and STORE_INVALID
 * are cached too and leave *u untouched; any other code is an outage and
 * is never cached. For the hot paths (API, consent, SIP routing and
 * authentication); admin tools that must read the latest record call
 * store_user_get. NULL s, uri or u: STORE_INVALID.
 */
int vault_user_get(struct store *s, const char *uri, struct store_user *u);

/*
 * Forget every cached key and user lookup (all threads, lazily: each
 * thread notices at its next lookup). Call after a user, password or key
 * changes; the daemon does on `cache.flush` from rtcauthctl and on SIGHUP.
 * Without it a change still takes effect within a second (the version poll
 * below).
 */
void vault_cache_flush(void);
/*
 * How often (ms) each thread re-reads the store's credentials version to
 * learn about changes made elsewhere (default 1000; 0: on every lookup).
 * When the version cannot be read, cached entries keep answering for ten
 * such intervals after the last good read. Tests use it to make the
 * cache's timing deterministic.
 */
void vault_cache_check_interval(unsigned ms);

#endif
