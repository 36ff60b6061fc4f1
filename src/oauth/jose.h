/*
 * JOSE: compact JWS (RFC 7515) signing and verification with the algorithm
 * pinned per key (RFC 8725 §3.1), over OpenSSL EVP and jansson.
 *
 * What this module promises:
 *  - A token is verified only with a key found by its kid / x5t / x5t#S256
 *    and only with that key's pinned algorithm; the header's alg must name
 *    exactly that algorithm. HS* and any other alg are never accepted.
 *  - Parsing is strict and bounded: size (default 16 KiB), exactly two dots,
 *    strict base64url (no padding, no whitespace, canonical bits), header and
 *    payload JSON objects with no duplicate member and bounded nesting, crit
 *    members we do not understand refused.
 *  - Private keys never enter this module through the normal path:
 *    jose_sign_compact() asks a signer callback (the vault) for the signature.
 *
 * Lifecycle: struct jose_key is reference counted (jose_key_ref /
 * jose_key_free); it is immutable after construction and may be shared
 * between threads. struct jose_jws is filled by the parse/verify functions
 * and released with jose_jws_free(); it holds one reference to the key that
 * verified it. Every function returns 0 or a negative enum jose_err value
 * and sets its out-parameters to NULL/empty on entry.
 */
#ifndef RTC_OAUTH_JOSE_H
#define RTC_OAUTH_JOSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

/* Errors; jose_strerror() gives the stable short name used in /metrics. */
enum jose_err {
	JOSE_OK = 0,
	JOSE_EMALFORMED = -1,	   /* "malformed": not header.payload.signature */
	JOSE_EBASE64URL = -2,	   /* "bad_base64url" */
	JOSE_EJSON = -3,	   /* "bad_json": not JSON, or not an object */
	JOSE_EDUPLICATE = -4,	   /* "duplicate_claim": a member twice */
	JOSE_ETOODEEP = -5,	   /* "too_deep": nesting above the limit */
	JOSE_ETOOLARGE = -6,	   /* "too_large": token above the size limit */
	JOSE_EALG_NONE = -7,	   /* "alg_none": unsigned where a signature is needed */
	JOSE_EALG = -8,		   /* "alg_not_allowed": alg absent, unknown or not the key's */
	JOSE_ECRIT = -9,	   /* "crit_unsupported" */
	JOSE_ENOKEYID = -10,	   /* "no_key_id": neither kid nor x5t nor x5t#S256 */
	JOSE_EUNKNOWNKID = -11,	   /* "unknown_kid": no key with that id */
	JOSE_EBADSIG = -12,	   /* "bad_signature" */
	JOSE_EHEADER = -13,	   /* "bad_header": a header member of the wrong type */
	JOSE_EKEY = -14,	   /* "bad_key": a key that cannot be imported */
	JOSE_EWEAKKEY = -15,	   /* "weak_key": RSA under 2048 bits, or not P-256 */
	JOSE_ECLAIM_MISSING = -16, /* "claim_missing" */
	JOSE_ECLAIM_TYPE = -17,	   /* "claim_type": a claim of the wrong type */
	JOSE_ENOMEM = -18,	   /* "no_memory" */
	JOSE_EINTERNAL = -19,	   /* "internal": OpenSSL or a signer failed */
};
#define JOSE_ERR_COUNT 20

/* Stable short name of an error (JOSE_OK is "ok"); never NULL. */
const char *jose_strerror(int err);

enum jose_alg {
	JOSE_ALG_UNKNOWN = 0,
	JOSE_ALG_RS256,
	JOSE_ALG_PS256,
	JOSE_ALG_ES256,
	JOSE_ALG_EDDSA,
};

/* "RS256", "PS256", "ES256", "EdDSA"; NULL for JOSE_ALG_UNKNOWN. */
const char *jose_alg_name(enum jose_alg alg);
/* Exact, case-sensitive match (RFC 7515 §4.1.1); UNKNOWN otherwise. */
enum jose_alg jose_alg_from_name(const char *name);

#define JOSE_DEFAULT_MAX_TOKEN 16384u
#define JOSE_DEFAULT_MAX_DEPTH 16u
#define JOSE_MIN_RSA_BITS      2048
#define JOSE_MAX_RSA_BITS      8192
#define JOSE_SIG_MAX	       1024 /* RSA 8192 */
#define JOSE_X5T_LEN	       27   /* base64url of 20 bytes */
#define JOSE_X5T256_LEN	       43   /* base64url of 32 bytes */

/* Limits for one parse; NULL means the defaults above. 0 in a field too. */
struct jose_limits {
	size_t max_token;   /* bytes of the compact token */
	unsigned max_depth; /* JSON nesting, the top object counting 1 */
	/*
	 * A JWS whose payload is not a JWT claims set (RFC 7515 allows any
	 * bytes): the payload is checked as base64url only and jws->payload
	 * stays NULL. For published JWS vectors and non-JWT uses; a JWT
	 * consumer leaves it false.
	 */
	bool raw_payload;
};

/*
 * A public verification key with its pinned algorithm. Read-only after
 * construction, but for the atomic fields jose updates itself. kid is never
 * NULL (defaults to the RFC 7638 thumbprint); x5t / x5t_s256 are empty
 * strings when the key came without a certificate (or a JWK without x5t /
 * x5t#S256 members).
 */
struct jose_key {
	EVP_PKEY *pkey;
	enum jose_alg alg;
	char *kid;
	char x5t[JOSE_X5T_LEN + 1];
	char x5t_s256[JOSE_X5T256_LEN + 1];
	unsigned char *cert_der; /* the x5c[0] / PEM certificate, or NULL */
	size_t cert_der_len;
	int refs; /* atomically updated; do not touch */
	/* ES256: the verification table (jose_p256.c), built once the key has
	 * verified JOSE_P256_AFTER signatures or by jose_key_precompute();
	 * atomically updated; do not touch */
	struct jose_p256 *p256;
	unsigned p256_uses;
};

/* ES256 verifications with a key before it gets its table (~150 KB, tens of
 * milliseconds once): keys used now and then stay without one. */
#define JOSE_P256_AFTER 32

/*
 * Constructors. alg JOSE_ALG_UNKNOWN picks the default for the key type:
 * RSA -> RS256, EC P-256 -> ES256, Ed25519 -> EdDSA (PS256 must be asked
 * for). An alg that does not fit the key type is JOSE_EALG. RSA keys under
 * 2048 or above 8192 bits and EC keys on other curves are JOSE_EWEAKKEY.
 * kid NULL means the RFC 7638 thumbprint. *out gets one reference.
 */
int jose_key_from_pkey(EVP_PKEY *pkey, const unsigned char *cert_der, size_t cert_der_len,
		       enum jose_alg alg, const char *kid, struct jose_key **out);
/* A certificate (PEM, first one in the text; or DER). x5t, x5t#S256 set. */
int jose_key_from_cert_pem(const char *pem, size_t len, enum jose_alg alg, const char *kid,
			   struct jose_key **out);
int jose_key_from_cert_der(const unsigned char *der, size_t len, enum jose_alg alg, const char *kid,
			   struct jose_key **out);
/* A SubjectPublicKeyInfo PEM ("BEGIN PUBLIC KEY"). */
int jose_key_from_pubkey_pem(const char *pem, size_t len, enum jose_alg alg, const char *kid,
			     struct jose_key **out);
/*
 * A JWK (RFC 7517/7518/8037): kty RSA (n, e), EC (crv P-256, x, y), OKP
 * (crv Ed25519, x). Optional: alg (pins it; must fit the type), kid, use
 * (must be "sig" if present), key_ops (must contain "verify" if present),
 * x5c (standard base64 DER; the first certificate's key must be this key),
 * x5t / x5t#S256 (must match x5c if both are there). Private members ("d",
 * "p", ...) are refused: a JWK with a private key has no business here.
 */
int jose_key_from_jwk(const json_t *jwk, struct jose_key **out);

/* Another reference to k (k may be NULL); returns k. */
struct jose_key *jose_key_ref(struct jose_key *k);
/* Drop one reference; frees on the last one. NULL is fine. */
void jose_key_free(struct jose_key *k);

/*
 * The public JWK of k for a JWKS document: kty, use "sig", alg, kid, n/e or
 * crv/x/y, and x5c, x5t, x5t#S256 when k has a certificate. A new object.
 */
int jose_key_to_jwk(const struct jose_key *k, json_t **out);
/* RFC 7638 thumbprint (SHA-256, base64url) into out (44 bytes). */
int jose_key_thumbprint(const struct jose_key *k, char out[JOSE_X5T256_LEN + 1]);

/*
 * A set of keys (a partner's, or ours). Owns one reference to each. Not
 * locked: build it, then share it read-only (or swap whole sets).
 */
struct jose_keyset {
	struct jose_key **keys;
	size_t n;
};
void jose_keyset_init(struct jose_keyset *ks);
/* Adds a reference to k. */
int jose_keyset_add(struct jose_keyset *ks, struct jose_key *k);
void jose_keyset_clear(struct jose_keyset *ks);
/*
 * Parse a JWKS document ({"keys": [...]}, at most 64 keys, max_len bytes
 * with 0 meaning 64 KiB) into ks (initialised here). Keys this module
 * cannot use (another kty or curve, use "enc", key_ops without "verify", an
 * alg we do not verify) are
 * skipped and counted in *skipped (may be NULL); a malformed key of a type
 * we do support fails the whole document, as does malformed JSON.
 */
int jose_keyset_from_jwks(const char *text, size_t len, size_t max_len, struct jose_keyset *ks,
			  size_t *skipped);
/*
 * Find a key for a header's identifiers (any may be NULL). Certificate
 * thumbprints decide when both the header and the key have one (x5t#S256,
 * x5t; all that both have must agree); otherwise kid must equal the key's
 * kid or its x5t. First match in set order; NULL if none. No new reference.
 */
const struct jose_key *jose_keyset_find(const struct jose_keyset *ks, const char *kid,
					const char *x5t, const char *x5t_s256);

/* A parsed (and, from jose_verify, verified) compact JWS. */
struct jose_jws {
	json_t *header;	 /* a JSON object, owned */
	json_t *payload; /* a JSON object, owned (NULL with raw_payload) */
	enum jose_alg alg;
	const char *kid; /* header members, or NULL; point into header */
	const char *x5t;
	const char *x5t_s256;
	const char *typ;
	struct jose_key *key;	  /* the key that verified it (one reference) */
	size_t signing_input_len; /* bytes of "header.payload" in the token */
};

void jose_jws_free(struct jose_jws *jws);

/*
 * Key lookup for jose_verify(). Called once, after the token parsed and the
 * header passed its checks, before the signature is checked: jws->header,
 * jws->kid/x5t/x5t_s256 and the still UNVERIFIED jws->payload may be read
 * (e.g. iss to pick a partner's key set). Returns a NEW reference (released
 * by jose_jws_free) or NULL with *err set (JOSE_EUNKNOWNKID normally).
 */
typedef struct jose_key *(*jose_key_lookup_fn)(void *arg, const struct jose_jws *jws, int *err);

/*
 * Verify a compact JWS. Parse with limits (NULL = defaults); refuse alg
 * "none" (JOSE_EALG_NONE) and anything without kid / x5t / x5t#S256
 * (JOSE_ENOKEYID); find the key with lookup(arg) (JOSE_EUNKNOWNKID); refuse
 * a header alg other than the key's pinned one (JOSE_EALG); check the
 * signature (JOSE_EBADSIG). On success *out holds the token, on failure it
 * is empty (nothing to free, though jose_jws_free is harmless).
 */
int jose_verify(const char *token, size_t len, const struct jose_limits *lim,
		jose_key_lookup_fn lookup, void *arg, struct jose_jws *out);
/* jose_verify with jose_keyset_find() over ks. */
int jose_verify_keyset(const char *token, size_t len, const struct jose_limits *lim,
		       const struct jose_keyset *ks, struct jose_jws *out);

/*
 * Check a raw JWS signature (the form in the token: P1363 r||s for ES256,
 * 64 bytes for EdDSA) over input with key k, using k's pinned algorithm.
 * 0 or JOSE_EBADSIG (or JOSE_ENOMEM / JOSE_EINTERNAL).
 */
int jose_verify_raw(const struct jose_key *k, const uint8_t *input, size_t len, const uint8_t *sig,
		    size_t siglen);

/*
 * Give an ES256 key its verification table now rather than after
 * JOSE_P256_AFTER verifications. 0 when the key has it (or is not ES256:
 * nothing to do), -1 when it could not be built (verification then goes on
 * without it: slower, never different).
 */
int jose_key_precompute(const struct jose_key *k);

/*
 * **UNSIGNED TOKENS. READ THIS BEFORE CALLING.**
 * **This function verifies NOTHING. Its result is attacker-controlled.**
 * It parses a token whose header says alg "none" and whose signature part is
 * empty ("header.payload."); any other alg, or a non-empty signature part,
 * is refused. Its ONLY legitimate use is the outer token of the
 * Microsoft-style act-as-user form (PROTOCOLS.md §6, [MS-XOAUTH]): the
 * caller MUST then verify the outer token's actortoken claim with
 * jose_verify() and check that outer iss equals the actor's nameid before
 * trusting any claim of either. **A bare unsigned token is never a
 * credential** (CVE-2023-29357). Same limits and JSON rules as jose_verify.
 */
int jose_parse_unsigned_outer(const char *token, size_t len, const struct jose_limits *lim,
			      struct jose_jws *out);

/*
 * Signer for jose_sign_compact(): sign input (the JWS signing input) and
 * write the JWS signature bytes (RS256/PS256 raw, ES256 64-byte P1363 r||s,
 * EdDSA 64 bytes) into sig (cap bytes); set *siglen. 0 or -1.
 */
typedef int (*jose_signer_fn)(void *arg, const uint8_t *input, size_t len, uint8_t *sig, size_t cap,
			      size_t *siglen);

/*
 * Serialise header and payload (compact JSON, member order kept), sign with
 * signer(arg) and return the compact JWS as a malloc'd NUL-terminated string
 * (*out; *outlen may be NULL). The header must carry a supported alg (not
 * "none"); the signature length is checked against it (64 bytes for ES256
 * and EdDSA).
 */
int jose_sign_compact(const json_t *header, const json_t *payload, jose_signer_fn signer, void *arg,
		      char **out, size_t *outlen);
/*
 * Build the unsigned outer token: header {"typ":"JWT","alg":"none"} (the
 * given header if not NULL; its alg must be "none"), payload, empty
 * signature. See jose_parse_unsigned_outer for the one use it has.
 */
int jose_unsigned_compact(const json_t *header, const json_t *payload, char **out, size_t *outlen);

/*
 * Sign input with a private key for alg (RS256 PKCS#1 v1.5, PS256 with
 * salt = 32, ES256 converted from DER to 64-byte P1363, EdDSA pure). For
 * tests and for the vault's own signer. *siglen: the room in sig on entry
 * (JOSE_SIG_MAX is enough), the signature's length on return (0 on error).
 * 0 or JOSE_EALG (the key does not fit alg) / JOSE_EINTERNAL.
 */
int jose_sign_with_pkey(EVP_PKEY *pkey, enum jose_alg alg, const uint8_t *input, size_t len,
			uint8_t *sig, size_t *siglen);
/* A jose_signer_fn whose arg is a struct jose_pkey_signer. */
struct jose_pkey_signer {
	EVP_PKEY *pkey;
	enum jose_alg alg;
};
int jose_pkey_signer(void *arg, const uint8_t *input, size_t len, uint8_t *sig, size_t cap,
		     size_t *siglen);

/*
 * Claim helpers for the validator. A string claim: *out points into payload
 * (valid while payload is). A NumericDate (RFC 7519 §2): a JSON integer
 * >= 0, or a real (truncated toward zero), or — because the Microsoft-style
 * tokens of [MS-XOAUTH] carry every claim value as a string (PROTOCOLS.md
 * §6) — a string of 1 to 12 ASCII digits. Nothing else (signs, spaces,
 * exponents in strings, negative values) is accepted.
 * JOSE_ECLAIM_MISSING or JOSE_ECLAIM_TYPE on failure.
 */
int jose_claim_str(const json_t *payload, const char *name, const char **out);
int jose_claim_time(const json_t *payload, const char *name, int64_t *out);

#endif
