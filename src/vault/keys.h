/*
 * OAuth token-signing keys held by the vault. The private keys are files
 *
 *   <state_dir>/keys/             0700
 *   <state_dir>/keys/oauth-<kid>.pem  0600  PKCS#8 PEM, written atomically
 *
 * that only this module opens; the store keeps the public side (struct
 * store_oauth_key: kid, pinned algorithm, self-signed certificate, x5t,
 * x5t#S256, rollover state). Other code asks this module to sign and never
 * sees a private key.
 *
 * Algorithms (RFC 7518 §3, RFC 8037): RS256 and PS256 (RSA 2048, the default
 * for interop: Microsoft servers expect RS256 with x5t), ES256 (P-256),
 * EdDSA (Ed25519). A key signs with the one algorithm it was made for.
 *
 * Rollover (store.h): a new key is "next" and published before it signs;
 * the very first key of a deployment is made "current" directly, since no
 * token can have been issued before it and there is nothing to roll over.
 *
 * Thread safety: keys_generate, keys_discard, keys_ensure_current: one caller
 * at a time (admin path, start-up). A struct keys is shared by all threads:
 * keys_sign and keys_preload may run concurrently on it.
 */
#ifndef RTC_VAULT_KEYS_H
#define RTC_VAULT_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define KEYS_DEFAULT_ALG "RS256"
#define KEYS_CERT_DAYS	 730 /* validity of a signing certificate: 2 years */
#define KEYS_SIG_MAX	 512 /* bytes: enough for RSA 4096 */
#define KEYS_CN_MAX	 64  /* X.520 upper bound of a common name */
#define KEYS_CACHE_MAX	 64  /* loaded private keys kept per struct keys */

enum keys_err {
	KEYS_OK = 0,
	KEYS_NOKEY = -1,  /* no private key file for this kid, or it cannot be read */
	KEYS_BADALG = -2, /* alg unknown, or not the algorithm this key is pinned to */
	KEYS_FAIL = -3,	  /* OpenSSL failed, out of memory, signature buffer too small */
};

/* "RS256" | "PS256" | "ES256" | "EdDSA" (exact case). */
bool keys_alg_valid(const char *alg);

/*
 * Make a key pair for alg and a self-signed certificate (subject and issuer
 * CN = issuer_cn, KEYS_CERT_DAYS, digitalSignature only), write the private
 * key to <state_dir>/keys/oauth-<kid>.pem (creating the directory 0700) and
 * fill *out: kid, alg, cert_pem, x5t, x5t_s256, created = now, state next.
 * The caller stores the record; if that fails it calls keys_discard.
 * The kid is the first 16 characters of x5t#S256 (96 bits): it names the
 * certificate a JWKS publishes without a second random identifier, is
 * base64url (safe as a file name) and unique as long as the certificates are.
 * It never starts with '-' (the certificate is signed again until it does
 * not), so it can be typed as an operand of rtcauthctl.
 * 0, or -1 with a message for a person in err.
 */
int keys_generate(const char *state_dir, const char *alg, const char *issuer_cn,
		  struct store_oauth_key *out, char *err, size_t errlen);

/* Remove the private key file of kid (a key that was never stored). 0 or -1. */
int keys_discard(const char *state_dir, const char *kid);

/*
 * Make sure a current signing key exists: if the store has one, copy it to
 * *out (*created = false); else generate one with alg (NULL: the default),
 * store it as current (with an audit row by actor when actor is not NULL)
 * and set *created. Checks that the current key's private key file can be
 * loaded and matches its algorithm. Runs its own transaction: call it
 * outside one. If another process stores a current key at the same moment,
 * that key is used and the new one discarded. 0, or -1 with err.
 */
int keys_ensure_current(struct store *s, const char *state_dir, const char *alg,
			const char *issuer_cn, const char *actor, struct store_oauth_key *out,
			bool *created, char *err, size_t errlen);

/* ---- signing ---- */

struct keys;

/*
 * A cache of private keys loaded from <state_dir>/keys, filled on first use
 * of each kid; lives as long as the process (keys_free at exit wipes it).
 * 0, or -1 with err.
 */
int keys_load(const char *state_dir, struct keys **out, char *err, size_t errlen);
void keys_free(struct keys *k);

/*
 * Load kid's private key into the cache now (start-up check): the file must
 * exist, not be readable by others, and hold a key of alg's type. 0 or
 * enum keys_err with err filled.
 */
int keys_preload(struct keys *k, const char *kid, const char *alg, char *err, size_t errlen);

/*
 * The JWS signature (RFC 7515 §5.1 step 5, before base64url) of in with
 * kid's key, which must be pinned to alg:
 *   RS256  RSASSA-PKCS1-v1_5 with SHA-256
 *   PS256  RSASSA-PSS with SHA-256, MGF1 SHA-256, salt 32 bytes
 *   ES256  ECDSA P-256 SHA-256, 64 bytes r || s (RFC 7518 §3.4)
 *   EdDSA  Ed25519, 64 bytes (RFC 8037 §3.1)
 * *siglen: the size of sig on entry (KEYS_SIG_MAX is enough), the length
 * written on return. 0 or enum keys_err. Thread-safe.
 */
int keys_sign(struct keys *k, const char *kid, const char *alg, const void *in, size_t len,
	      uint8_t *sig, size_t *siglen);

#endif
