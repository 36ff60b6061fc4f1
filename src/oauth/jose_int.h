/*
 * Internals shared by jose.c, jose_key.c and jose_sig.c. Not for other
 * modules: everything here is reachable through jose.h.
 */
#ifndef RTC_OAUTH_JOSE_INT_H
#define RTC_OAUTH_JOSE_INT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

/*
 * Parse text as one JSON object: nesting checked against max_depth before
 * jansson sees it, duplicate members refused (JSON_REJECT_DUPLICATES), NUL
 * escapes refused. 0 with *out set, or JOSE_EJSON / JOSE_EDUPLICATE /
 * JOSE_ETOODEEP / JOSE_ENOMEM.
 */
int jose_json_object(const char *text, size_t len, unsigned max_depth, json_t **out);

/* base64url of n bytes as a new JSON string, or NULL. */
json_t *jose_json_b64url(const unsigned char *p, size_t n);

/*
 * jose_p256.c: ES256 verification with a table of multiples of the key.
 * jose_p256_new builds the table for an EC P-256 public key (0, or -1 when
 * the key does not fit or OpenSSL refuses). jose_p256_verify checks a P1363
 * signature r||s over a SHA-256 digest: 1 valid, 0 invalid, -1 error (out
 * of memory). Read-only once built: safe from any number of threads.
 */
struct jose_p256;
int jose_p256_new(EVP_PKEY *pkey, struct jose_p256 **out);
void jose_p256_free(struct jose_p256 *t);
int jose_p256_verify(const struct jose_p256 *t, const uint8_t digest[32], const uint8_t sig[64]);
/* a^-1 mod n (n the P-256 group order), big-endian: 0, or -1 unless 0 < a < n. */
int jose_p256_inverse(const uint8_t a[32], uint8_t out[32]);

#endif
