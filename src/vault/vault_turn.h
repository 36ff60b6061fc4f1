/*
 * The vault's TURN side: long-term credential checks of STUN requests
 * (RFC 8489 §9.2) and the MESSAGE-INTEGRITY of the answers, for
 *   (a) directory users: the key is the Digest HA1 the vault stored when the
 *       password was set ("digest-md5" = MD5(user:realm:password), the
 *       RFC 8489 §18.5.1.1 key; "digest-sha256" the §18.5.1.2 one), looked
 *       up by the user part or user@domain with realm = the SIP domain, or
 *       by USERHASH (RFC 8489 §14.4) through the store's index;
 *   (b) shared-secret ephemeral credentials ("<expiry>:<user>", coturn's
 *       use-auth-secret), with the secret from [turn] secret_file;
 * and the stateless TURN nonces keyed from the pool secret. Keys and the
 * secret never leave this module: a successful check keeps the key in a
 * per-thread slot that only vault_turn_sign() uses, and the next check,
 * vault_turn_sign() or vault_turn_forget() wipes it.
 *
 * Thread safety: vault_turn_init once at start (after vault_init), and
 * vault_turn_reload_secret from one thread at a time (a reload); every
 * other function from any thread, each with its own store handle.
 */
#ifndef RTC_VAULT_VAULT_TURN_H
#define RTC_VAULT_VAULT_TURN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/verdict.h"
#include "core/str.h"
#include "store/store.h"
#include "turn/cred.h"
#include "turn/stun.h"

#define VAULT_TURN_SECRET_HEX 64 /* the secret file: 32 random bytes in hex */
#define VAULT_TURN_WHO_MAX    256

/*
 * Load the shared secret from path, creating it first (0600, 32 random bytes
 * as hex and a newline) when it does not exist. A file readable by group or
 * others, empty, or longer than 1024 bytes is refused. Also derives the
 * nonce key from the pool secret (vault_init must have run). 0 or -1 with err.
 */
int vault_turn_init(const char *path, char *err, size_t errlen);
/* Wipe the secret and the nonce key. */
void vault_turn_shutdown(void);

/* A nonce issued now, bound to bind (realm and client address). Its length or -1. */
int vault_turn_nonce_make(struct str bind, uint32_t features, int64_t now, char *out, size_t cap);
/* Is this nonce ours, for this bind, younger than lifetime seconds? (turn_nonce_check) */
enum turn_nonce_status vault_turn_nonce_check(struct str bind, struct str nonce, uint32_t lifetime,
					      int64_t now, uint32_t *features);

/*
 * Check the long-term credentials of request m: USERNAME username, REALM
 * realm (ours; the caller compared it), password algorithm alg (MD5 unless
 * the client chose SHA-256 per RFC 8489 §9.2.4). The MAC checked is
 * MESSAGE-INTEGRITY-SHA256 when m has one, else MESSAGE-INTEGRITY.
 * Usernames "<expiry>:<user>" (with a ':') are ephemeral credentials when a
 * secret is loaded; others are directory users.
 *   OK:       who gets whose quota the allocation counts against ("sip:u@d",
 *             or "ephemeral:<user>"); the key is kept for vault_turn_sign.
 *   PERMFAIL: "unknown_user", "disabled", "no_password", "bad_integrity",
 *             "expired", "malformed" (401). Unknown users cost the same
 *             work as known ones (a dummy key).
 *   TEMPFAIL: "store_unavailable", "internal_error" (500).
 */
struct verdict vault_turn_check(struct store *s, struct str username, struct str realm,
				enum turn_pwalg alg, const struct stun_msg *m, int64_t now,
				char *who, size_t whocap);

/*
 * The same check for a request that names its user by USERHASH (RFC 8489
 * §14.4: SHA-256(name ":" realm)) instead of USERNAME: the user is found in
 * the store's USERHASH index (store_turn.h), then checked exactly as
 * vault_turn_check does for the name the hash was made of (user part or
 * user@domain), with the same verdicts. A hash that matches nobody is
 * PERMFAIL "unknown_user" after the same HMAC as a wrong password.
 * Shared-secret (ephemeral) credentials cannot be found by hash: they need
 * USERNAME.
 */
struct verdict vault_turn_check_userhash(struct store *s, const uint8_t hash[STUN_USERHASH_LEN],
					 struct str realm, enum turn_pwalg alg,
					 const struct stun_msg *m, char *who, size_t whocap);

/*
 * Store the USERHASHes of directory user u (id, user, domain set): one for
 * the user part, one for user@domain, realm = u->domain. vault_set_password
 * calls it with the keys. STORE_OK or a store error.
 */
int vault_turn_userhash_put(struct store *s, const struct store_user *u);

/*
 * Give every user that has TURN keys but no USERHASH its hashes (a database
 * made before schema 7). *done gets how many users were filled. STORE_OK or
 * a store error (what was done stays).
 */
int vault_turn_userhash_backfill(struct store *s, size_t *done);

/*
 * Load the shared secret from path again ([turn] secret_file on reload; the
 * file must exist, it is not created) and use it for every check and issue
 * from now on. A bad file keeps the old secret: -1 with err. Also -1 when
 * vault_turn_init has not run.
 */
int vault_turn_reload_secret(const char *path, char *err, size_t errlen);

/*
 * Append MESSAGE-INTEGRITY (sha256 false) or MESSAGE-INTEGRITY-SHA256 to an
 * answer with the key of this thread's last successful vault_turn_check,
 * then wipe it. 0, or -1 when no key is held (or the builder failed).
 */
int vault_turn_sign(struct stun_builder *b, bool sha256);
/* Wipe this thread's held key, if any. */
void vault_turn_forget(void);

/*
 * Mint shared-secret credentials for user valid until expiry (the media
 * relay credential service): username "<expiry>:<user>", password
 * base64(HMAC-SHA1(secret, username)) (pcap >= 29). 0, or -1 (no secret
 * loaded, user with ':' or too long).
 */
int vault_turn_issue(struct str user, int64_t expiry, char *username, size_t ucap, char *password,
		     size_t pcap);

#endif
