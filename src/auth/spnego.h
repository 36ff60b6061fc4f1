/*
 * SPNEGO (RFC 4178) NegotiationToken codec: the initiator's first token
 * (InitialContextToken [APPLICATION 0] { OID 1.3.6.1.5.5.2, NegTokenInit
 * [0] }, RFC 2743 §3.1) and NegTokenResp [1] in either direction, parsed
 * and built. A bounded DER reader: definite, minimal lengths only (no
 * indefinite or long-form-that-fits-short lengths), every element inside its
 * parent, fields of a SEQUENCE in tag order and at most once, a fixed
 * nesting (the structure is never walked recursively), at most
 * SPNEGO_MECHS_MAX mechanism OIDs of at most SPNEGO_OID_MAX bytes each, the
 * whole token at most SPNEGO_TOKEN_MAX bytes.
 *
 * Pure: no I/O, no allocation, no logging. A parsed token points into the
 * caller's buffer. Knows nothing of the mechanisms inside (NTLMSSP,
 * Kerberos): the caller picks one by OID.
 */
#ifndef RTC_AUTH_SPNEGO_H
#define RTC_AUTH_SPNEGO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds: longer or more is SPNEGO_E_TOO_LARGE. */
#define SPNEGO_TOKEN_MAX 48000 /* a whole token (HTTPAUTH_TOKEN_MAX) */
#define SPNEGO_MECHS_MAX 16    /* OIDs in mechTypes */
#define SPNEGO_OID_MAX	 32    /* content bytes of one OID */
#define SPNEGO_MIC_MAX	 1024  /* mechListMIC bytes */

/* DER content bytes of the OIDs rtcauth cares about. */
extern const uint8_t spnego_oid_spnego[6];   /* 1.3.6.1.5.5.2 */
extern const uint8_t spnego_oid_ntlmssp[10]; /* 1.3.6.1.4.1.311.2.2.10 */
extern const uint8_t spnego_oid_krb5[9];     /* 1.2.840.113554.1.2.2 */
extern const uint8_t spnego_oid_mskrb5[9];   /* 1.2.840.48018.1.2.2 (Windows' krb5) */

enum spnego_err {
	SPNEGO_E_MALFORMED = -1, /* bad tag, length, order, OID, value; trailing bytes */
	SPNEGO_E_TOO_LARGE = -2, /* token, MIC or OID over its bound; too many OIDs */
	SPNEGO_E_BUFFER = -3,	 /* build: output buffer too small */
};

enum spnego_kind {
	SPNEGO_INIT = 1, /* InitialContextToken around NegTokenInit */
	SPNEGO_RESP = 2, /* NegTokenResp (bare [1], as every later token is) */
};

/* NegTokenResp negState (RFC 4178 §4.2.2); SPNEGO_STATE_ABSENT when the
 * optional field is missing. */
enum spnego_state {
	SPNEGO_STATE_ABSENT = -1,
	SPNEGO_ACCEPT_COMPLETED = 0,
	SPNEGO_ACCEPT_INCOMPLETE = 1,
	SPNEGO_REJECT = 2,
	SPNEGO_REQUEST_MIC = 3,
};

/* A byte range of the parsed token (len 0 and p NULL when absent). */
struct spnego_buf {
	const uint8_t *p;
	size_t len;
};

struct spnego_token {
	enum spnego_kind kind;
	/* NegTokenInit: mechTypes as sent (the whole DER SEQUENCE, tag and
	 * length included: what the mechListMIC covers, RFC 4178 §5) and its
	 * OIDs (content bytes) in the initiator's order; reqFlags (the BIT
	 * STRING's content bytes, unused-bits octet first) */
	struct spnego_buf mech_types_der;
	struct spnego_buf mechs[SPNEGO_MECHS_MAX];
	size_t n_mechs;
	bool has_req_flags;
	struct spnego_buf req_flags;
	/* NegTokenResp */
	enum spnego_state state;
	bool has_supported_mech;
	struct spnego_buf supported_mech;
	/* both: mechToken (Init) or responseToken (Resp); mechListMIC */
	bool has_mech_token;
	struct spnego_buf mech_token;
	bool has_mic;
	struct spnego_buf mic;
};

/*
 * Parse a NegotiationToken: an InitialContextToken whose thisMech is SPNEGO
 * around a NegTokenInit (mechTypes required, at least one OID), or a bare
 * NegTokenResp. 0 with *out filled, or an spnego_err (*out zeroed).
 */
int spnego_parse(const uint8_t *tok, size_t len, struct spnego_token *out);

/* true when oid (content bytes) equals want. */
bool spnego_oid_eq(struct spnego_buf oid, const uint8_t *want, size_t want_len);

/*
 * Build a NegTokenResp: negState unless state is SPNEGO_STATE_ABSENT,
 * supportedMech unless mech is NULL (content bytes of the OID), responseToken
 * unless resp is NULL, mechListMIC unless mic is NULL. 0 with *len, or
 * SPNEGO_E_BUFFER / SPNEGO_E_TOO_LARGE / SPNEGO_E_MALFORMED (bad state or OID).
 */
int spnego_build_resp(enum spnego_state state, const uint8_t *mech, size_t mech_len,
		      const uint8_t *resp, size_t resp_len, const uint8_t *mic, size_t mic_len,
		      uint8_t *out, size_t cap, size_t *len);

/*
 * Build an initiator's first token (InitialContextToken around NegTokenInit)
 * with mechTypes = mechs (n >= 1), mechToken unless tok is NULL, mechListMIC
 * unless mic is NULL; no reqFlags. For tests and clients. Same returns.
 */
int spnego_build_init(const struct spnego_buf *mechs, size_t n, const uint8_t *tok, size_t tok_len,
		      const uint8_t *mic, size_t mic_len, uint8_t *out, size_t cap, size_t *len);

/*
 * The DER of a mechTypes SEQUENCE OF OID built from mechs (what an initiator
 * signs in its mechListMIC). 0 with *len, or an spnego_err.
 */
int spnego_build_mech_types(const struct spnego_buf *mechs, size_t n, uint8_t *out, size_t cap,
			    size_t *len);

#endif
