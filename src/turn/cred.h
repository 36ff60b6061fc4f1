/*
 * TURN credential primitives: long-term keys (RFC 8489 §9.2.2), USERHASH
 * (§14.4), shared-secret ephemeral credentials as coturn's use-auth-secret
 * accepts them ("TURN REST API"), and stateless TURN nonces with the RFC 8489
 * §9.2 nonce cookie. Pure functions: no I/O, no allocation, no clock (the
 * caller passes now), no logging. Every key and secret is the caller's; this
 * module wipes its own copies and compares MACs only with secmem_eq.
 *
 * Strings are taken as given: SASLprep / OpaqueString (RFC 8265) of the
 * username, realm and password is the caller's business (the directory
 * stores the key computed at password-set time).
 */
#ifndef RTC_TURN_CRED_H
#define RTC_TURN_CRED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

#define TURN_KEY_MD5_LEN    16
#define TURN_KEY_SHA256_LEN 32
#define TURN_KEY_MAX	    32

/* Password algorithms: the STUN PASSWORD-ALGORITHM numbers (RFC 8489 §18.5). */
enum turn_pwalg {
	TURN_PWALG_MD5 = 0x0001,
	TURN_PWALG_SHA256 = 0x0002,
};

/*
 * The long-term credential key (RFC 8489 §9.2.2, §18.5.1):
 *   MD5:     MD5(username ":" realm ":" password)       16 bytes
 *   SHA-256: SHA-256(username ":" realm ":" password)   32 bytes
 * Writes the key into out (TURN_KEY_MAX bytes) and returns its length, or -1
 * (unknown algorithm, crypto failure). The result is a secret: wipe it.
 */
int turn_cred_key(enum turn_pwalg alg, struct str username, struct str realm, struct str password,
		  uint8_t out[TURN_KEY_MAX]);

/* USERHASH = SHA-256(username ":" realm) (RFC 8489 §14.4). 0 or -1. */
int turn_cred_userhash(struct str username, struct str realm, uint8_t out[32]);

/* ---- shared-secret ephemeral credentials (coturn use-auth-secret) ---- */

/*
 * username = "<expiry>:<user>" (or just "<expiry>"), expiry in unix seconds;
 * password = base64(HMAC-SHA1(secret, username)), 28 characters.
 * coturn also accepts "<user>:<expiry>" (a non-digit before the first ':');
 * so do we. Unlike coturn's atol(), the expiry must be 1-19 plain digits.
 */
#define TURN_EPH_PASSWORD_LEN 28
#define TURN_EPH_USERNAME_MAX 513 /* STUN USERNAME limit */

enum turn_cred_status {
	TURN_CRED_OK = 0,
	TURN_CRED_EXPIRED = -1,	  /* authentic or not, the expiry is not after now: 401 */
	TURN_CRED_MISMATCH = -2,  /* wrong password (or another secret) */
	TURN_CRED_MALFORMED = -3, /* no expiry in the username, or too long */
	TURN_CRED_ERROR = -4,	  /* crypto failure, buffer too small */
};

/*
 * Make a credential for user (may be empty: the username is then just the
 * expiry) valid until expiry. username gets "<expiry>:<user>" (NUL-terminated,
 * ucap counts the NUL), password the 28 characters and a NUL (pcap >= 29).
 * TURN_CRED_OK, TURN_CRED_MALFORMED (user has ':' or is too long; expiry <= 0)
 * or TURN_CRED_ERROR.
 */
int turn_cred_ephemeral_make(struct str secret, int64_t expiry, struct str user, char *username,
			     size_t ucap, char *password, size_t pcap);

/* The expiry a username carries, and the user part (may be empty). 0 or
 * TURN_CRED_MALFORMED. */
int turn_cred_ephemeral_parse(struct str username, int64_t *expiry, struct str *user);

/*
 * The password the secret gives this username (no expiry check): what a TURN
 * server needs to derive the long-term key. out gets 28 characters and a NUL
 * (cap >= 29). 0 or TURN_CRED_ERROR. The result is a secret: wipe it.
 */
int turn_cred_ephemeral_password(struct str secret, struct str username, char *out, size_t cap);

/*
 * Check a username/password pair (HTTP side, tests): TURN_CRED_MALFORMED,
 * TURN_CRED_EXPIRED (expiry <= now; checked before the MAC, as coturn does),
 * TURN_CRED_MISMATCH or TURN_CRED_OK. The comparison is constant time.
 */
int turn_cred_ephemeral_check(struct str secret, struct str username, struct str password,
			      int64_t now);

/*
 * The TURN server's path: the long-term key (alg, realm) of an ephemeral
 * username, MD5/SHA-256(username ":" realm ":" password) with the password
 * from the secret, if the username has not expired. Returns the key length, or
 * TURN_CRED_MALFORMED / TURN_CRED_EXPIRED / TURN_CRED_ERROR. Wipe the key.
 */
int turn_cred_ephemeral_key(struct str secret, struct str username, struct str realm,
			    enum turn_pwalg alg, int64_t now, uint8_t key[TURN_KEY_MAX]);

/* ---- stateless nonces (RFC 8489 §9.2, §9.2.4) ---- */

/*
 * A nonce is
 *     [ "obMatJos2" base64(features, 24 bits) ]  base64url(ts(8) || MAC16)
 * with MAC16 = the first 16 bytes of HMAC-SHA256(key, label || features ||
 * ts || bind). The cookie and the 4 feature characters appear when features
 * is non-zero (the server offers a §9.2 security feature). bind is anything
 * the nonce should be tied to (the realm, a client address); it is not in the
 * nonce, the check must pass the same bytes. key: from the vault, >= 16 bytes.
 * Feature bits are numbered from the least significant (RFC 8489 Errata 6290
 * to §18.1, as the corrected Appendix B.1 vector uses them).
 */
#define TURN_NONCE_COOKIE		 "obMatJos2"
#define TURN_NONCE_COOKIE_LEN		 9
#define TURN_FEATURE_PASSWORD_ALGORITHMS 0x000001u
#define TURN_FEATURE_USERNAME_ANONYMITY	 0x000002u
#define TURN_NONCE_MAX			 45 /* characters, without NUL */
#define TURN_NONCE_BIND_MAX		 512
#define TURN_NONCE_SKEW			 30 /* seconds a pool peer's clock may run ahead */

enum turn_nonce_status {
	TURN_NONCE_OK = 0,
	TURN_NONCE_STALE = 1,	 /* authentic, older than the lifetime: 438 Stale Nonce */
	TURN_NONCE_INVALID = -1, /* not ours, tampered, other bind, from the future */
};

/*
 * Write a nonce issued at now into out (cap >= TURN_NONCE_MAX + 1,
 * NUL-terminated). Returns its length, or -1 (bad arguments: features above
 * 24 bits, now < 0, bind too long, short key, crypto failure).
 */
int turn_nonce_make(const uint8_t *key, size_t keylen, struct str bind, uint32_t features,
		    int64_t now, char *out, size_t cap);

/*
 * Is nonce one we issued (same key and bind), and younger than lifetime
 * seconds? The MAC is checked in constant time before the age. *features
 * (may be NULL) gets the feature bits the nonce carries (0 without cookie).
 * A server should answer TURN_NONCE_STALE with 438 and a fresh nonce;
 * TURN_NONCE_INVALID as coturn does, with 438 too (or 401).
 */
enum turn_nonce_status turn_nonce_check(const uint8_t *key, size_t keylen, struct str bind,
					struct str nonce, uint32_t lifetime, int64_t now,
					uint32_t *features);

/*
 * The security feature bits of any nonce (a client's view: RFC 8489 §9.2):
 * 0 with *features set when it starts with the cookie and 4 base64
 * characters, -1 otherwise.
 */
int turn_nonce_features(struct str nonce, uint32_t *features);

#endif
