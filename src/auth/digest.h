/*
 * HTTP/SIP Digest authentication (RFC 2617, RFC 3261 §22, RFC 7616,
 * RFC 8760): parsing credentials, computing responses from a stored HA1,
 * writing challenges. The mechanism only: where keys live is the vault's and
 * the store's business (the Kamailio auth / auth_db split).
 * Nothing here compares secrets (the vault does, in constant time) and
 * nothing here logs.
 */
#ifndef RTC_AUTH_DIGEST_H
#define RTC_AUTH_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/digest_alg.h"
#include "core/sbuf.h"
#include "core/str.h"

/* Bounds on credential fields; longer is malformed. */
#define DIGEST_MAX_FIELD    512 /* username, realm, uri, cnonce, opaque */
#define DIGEST_MAX_NONCE    128
#define DIGEST_MAX_RESPONSE 128 /* hex of the longest hash */
#define DIGEST_MAX_PARAMS   32

enum digest_qop { DIGEST_QOP_NONE = 0, DIGEST_QOP_AUTH = 1, DIGEST_QOP_AUTH_INT = 2 };

/* Parsed credentials; strings point into the header value (quotes removed,
 * escapes NOT processed: a quoted-pair makes the field invalid, which is
 * stricter than the RFC but safe; user names with '"' or '\\' are refused). */
struct digest_creds {
	struct str username;
	struct str realm;
	struct str nonce;
	struct str uri;
	struct str response;  /* hex as sent */
	struct str algorithm; /* as sent, empty = MD5 */
	struct str cnonce;
	struct str opaque;
	struct str qop_str;
	struct str nc_str;
	enum digest_alg alg;
	bool sess;
	enum digest_qop qop;
	uint32_t nc;   /* parsed nc (hex), 0 when absent */
	bool userhash; /* userhash=true (RFC 7616 §3.4.4) */
};

/* Parse errors, negative; digest_strerror gives a phrase for the log. */
enum {
	DIGEST_E_SCHEME = -1,	 /* not "Digest" */
	DIGEST_E_SYNTAX = -2,	 /* unterminated quote, bad token, missing '=' */
	DIGEST_E_DUPLICATE = -3, /* a parameter given twice */
	DIGEST_E_MISSING = -4,	 /* username, realm, nonce, uri or response missing;
				    qop without cnonce/nc */
	DIGEST_E_TOO_LONG = -5,	 /* a field over its bound, or too many params */
	DIGEST_E_ALGORITHM = -6, /* unknown algorithm */
	DIGEST_E_QOP = -7,	 /* unknown qop, or bad nc */
};
const char *digest_strerror(int err);

/*
 * Parse an Authorization / Proxy-Authorization header value
 * ("Digest username=\"a\", realm=..."). Unknown parameters are ignored
 * (counted against DIGEST_MAX_PARAMS). 0 or a DIGEST_E_* code.
 */
int digest_parse_credentials(struct str value, struct digest_creds *out);

/*
 * Generic auth-param walker for any scheme ("NTLM qop=\"auth\", ..."),
 * used by digest_parse_credentials and later by NTLM/Kerberos:
 * *scheme gets the scheme token; fn is called for each name=value (value
 * unquoted, quoted says whether it was quoted). fn returns non-zero to stop.
 * 0, a DIGEST_E_* code for syntax, or fn's value.
 */
int auth_params_parse(struct str value, struct str *scheme,
		      int (*fn)(void *ctx, struct str name, struct str val, bool quoted),
		      void *ctx);

/* The scheme token auth_params_parse would report (empty when there is
 * none), without walking the parameters: a cheap test of whose header it is. */
struct str auth_scheme_token(struct str value);

/* H(data) lower-case hex into out (cap >= 2*len+1). Returns hex length or -1. */
int digest_hash_hex(enum digest_alg alg, const void *data, size_t len, char *out, size_t cap);

/*
 * HA1 = H(username ":" realm ":" password), raw bytes (digest_alg_len).
 * Used by the vault when a password is set.
 */
int digest_ha1(enum digest_alg alg, struct str username, struct str realm, struct str password,
	       uint8_t *out);

/*
 * The expected response for credentials c, given the stored raw HA1
 * (RFC 7616 §3.4.1-3.4.3: -sess folds nonce and cnonce into HA1; auth-int
 * hashes the body into A2; no qop is RFC 2069 form). Lower-case hex into
 * out (cap >= 129). Returns the hex length or -1. The caller compares in
 * constant time and wipes out.
 */
int digest_response(const struct digest_creds *c, const uint8_t *ha1, struct str method,
		    struct str body, char *out, size_t cap);

/*
 * Write one challenge header line (with CRLF):
 *   <hdr>: Digest realm="r", nonce="n", opaque="o", algorithm=SHA-256, qop="auth,auth-int"[,
 * stale=true] hdr is "WWW-Authenticate" or "Proxy-Authenticate". opaque may be empty.
 */
void digest_challenge_write(struct sbuf *b, const char *hdr, struct str realm, struct str nonce,
			    struct str opaque, enum digest_alg alg, bool sess, bool qop_auth_int,
			    bool stale);

#endif
