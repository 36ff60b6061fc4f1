/*
 * NTLM ([MS-NLMP]) codec and crypto for the acceptor side: the NT hash, the
 * CHALLENGE message of connectionless mode, a bounded parser of the
 * AUTHENTICATE message, NTLMv2 verification (NTProofStr, MIC, channel
 * bindings, key exchange), the session keys (§3.4.5) and the connectionless
 * message signature with extended session security (§3.4.4.2), which is what
 * [MS-SIPAE] signs SIP messages with.
 *
 * Pure: no I/O, no store, no logging, no allocation that outlives a call.
 * NTLMv1 and LM responses are refused, never computed. Comparisons of
 * secrets are constant time (secmem_eq). MD4 and RC4 come from OpenSSL's
 * legacy provider loaded into a private library context (never into the
 * default one); without it every crypto function fails with NTLM_E_CRYPTO.
 * Thread-safe: no mutable global state after the one-time provider set-up.
 */
#ifndef RTC_AUTH_NTLM_H
#define RTC_AUTH_NTLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

/* NegotiateFlags ([MS-NLMP] 2.2.2.5) */
#define NTLM_NEGOTIATE_UNICODE		0x00000001u
#define NTLM_NEGOTIATE_OEM		0x00000002u
#define NTLM_REQUEST_TARGET		0x00000004u
#define NTLM_NEGOTIATE_SIGN		0x00000010u
#define NTLM_NEGOTIATE_SEAL		0x00000020u
#define NTLM_NEGOTIATE_DATAGRAM		0x00000040u
#define NTLM_NEGOTIATE_LM_KEY		0x00000080u
#define NTLM_NEGOTIATE_NTLM		0x00000200u
#define NTLM_NEGOTIATE_ANONYMOUS	0x00000800u
#define NTLM_NEGOTIATE_ALWAYS_SIGN	0x00008000u
#define NTLM_TARGET_TYPE_DOMAIN		0x00010000u
#define NTLM_TARGET_TYPE_SERVER		0x00020000u
#define NTLM_NEGOTIATE_EXTENDED_SESSION 0x00080000u
#define NTLM_NEGOTIATE_IDENTIFY		0x00100000u
#define NTLM_NEGOTIATE_TARGET_INFO	0x00800000u
#define NTLM_NEGOTIATE_VERSION		0x02000000u
#define NTLM_NEGOTIATE_128		0x20000000u
#define NTLM_NEGOTIATE_KEY_EXCH		0x40000000u
#define NTLM_NEGOTIATE_56		0x80000000u

/* What our CHALLENGE offers in connectionless mode ([MS-SIPAE] clients
 * refuse a CHALLENGE without any of UNICODE, NTLM, ALWAYS_SIGN,
 * EXTENDED_SESSIONSECURITY, TARGET_INFO, SIGN, DATAGRAM, IDENTIFY, KEY_EXCH). */
#define NTLM_CHALLENGE_FLAGS                                                                       \
	(NTLM_NEGOTIATE_UNICODE | NTLM_REQUEST_TARGET | NTLM_NEGOTIATE_SIGN |                      \
	 NTLM_NEGOTIATE_SEAL | NTLM_NEGOTIATE_DATAGRAM | NTLM_NEGOTIATE_NTLM |                     \
	 NTLM_NEGOTIATE_ALWAYS_SIGN | NTLM_TARGET_TYPE_DOMAIN | NTLM_NEGOTIATE_EXTENDED_SESSION |  \
	 NTLM_NEGOTIATE_IDENTIFY | NTLM_NEGOTIATE_TARGET_INFO | NTLM_NEGOTIATE_VERSION |           \
	 NTLM_NEGOTIATE_128 | NTLM_NEGOTIATE_KEY_EXCH | NTLM_NEGOTIATE_56)

/* MsvAvFlags bit: the AUTHENTICATE carries a MIC ([MS-NLMP] 2.2.2.1). */
#define NTLM_AV_FLAG_MIC 0x00000002u

/* Bounds. Longer is malformed (NTLM_E_TOO_LARGE). */
#define NTLM_AUTH_MAX	   8192 /* whole AUTHENTICATE message */
#define NTLM_NAME_MAX	   512	/* bytes of UTF-16 in user, domain, workstation */
#define NTLM_NT_RESP_MAX   4096 /* bytes of NtChallengeResponse */
#define NTLM_AV_MAX	   64	/* AV pairs in the NTLMv2 blob */
#define NTLM_CHALLENGE_MAX 1024 /* our CHALLENGE message, names included */
#define NTLM_SIG_LEN	   16	/* NTLMSSP_MESSAGE_SIGNATURE */

enum ntlm_err {
	NTLM_OK = 0,
	NTLM_E_MALFORMED = -1,	  /* bad signature/type, field out of range or overlapping,
				     truncated, bad AV pairs, required flag missing */
	NTLM_E_TOO_LARGE = -2,	  /* message or field over its bound */
	NTLM_E_V1 = -3,		  /* NTLMv1 or LM-only response (refused) */
	NTLM_E_BAD_RESPONSE = -4, /* NTProofStr does not match (wrong password) */
	NTLM_E_BAD_MIC = -5,	  /* MIC required (MsvAvFlags 0x2) and absent or wrong */
	NTLM_E_CBT = -6,	  /* channel bindings expected and absent or different */
	NTLM_E_CRYPTO = -7,	  /* OpenSSL failure; legacy provider (MD4/RC4) missing */
	NTLM_E_BUFFER = -8,	  /* output buffer too small, or a name too long */
	NTLM_E_UNSUPPORTED = -9,  /* connection-oriented KEY_EXCH signing (stateful RC4) */
};
const char *ntlm_strerror(int err);

/*
 * NT hash: MD4 of the UTF-16LE encoding of the UTF-8 password (no NUL).
 * 0, or -1 on invalid UTF-8 (overlong, surrogates, > U+10FFFF, truncated) or
 * when MD4 is unavailable. out is wiped on failure.
 */
int ntlm_nt_hash(const char *password, size_t len, uint8_t out[16]);

/* NTOWFv2 = HMAC_MD5(nt_hash, UTF-16LE(upper(user)) || UTF-16LE(domain)),
 * with user and domain given as UTF-16LE bytes exactly as in AUTHENTICATE.
 * Upper-casing covers ASCII and Latin-1 (U+00E0..U+00FE). 0 or NTLM_E_*. */
int ntlm_ntowfv2(const uint8_t nt_hash[16], const uint8_t *user16, size_t user_len,
		 const uint8_t *domain16, size_t domain_len, uint8_t out[16]);

/* Unix seconds to a FILETIME (100 ns ticks since 1601-01-01) and back. */
uint64_t ntlm_filetime(uint64_t unix_s);
uint64_t ntlm_filetime_to_unix(uint64_t filetime);

/* Names our CHALLENGE carries as AV pairs (UTF-8; converted to UTF-16LE).
 * nb_domain is also the TargetName. Any may be empty (omitted). */
struct ntlm_target {
	struct str nb_domain;
	struct str nb_computer;
	struct str dns_domain;
	struct str dns_computer;
};

/*
 * Write a CHALLENGE message ([MS-NLMP] 2.2.1.2) for connectionless mode:
 * NTLM_CHALLENGE_FLAGS, the server challenge, TargetName = NetBIOS domain,
 * TargetInfo = the four names and MsvAvTimestamp (filetime), Version.
 * 0, NTLM_E_BUFFER (out too small or names too long), NTLM_E_MALFORMED
 * (a name not valid UTF-8).
 */
int ntlm_build_challenge(const struct ntlm_target *t, const uint8_t server_challenge[8],
			 uint64_t filetime, uint8_t *out, size_t cap, size_t *len);

/* A parsed AUTHENTICATE message; pointers into the caller's buffer. */
struct ntlm_auth {
	const uint8_t *msg;
	size_t msg_len;
	uint32_t flags;
	const uint8_t *lm;
	size_t lm_len;
	const uint8_t *nt; /* NTProofStr (16) || blob */
	size_t nt_len;
	const uint8_t *domain; /* UTF-16LE */
	size_t domain_len;
	const uint8_t *user; /* UTF-16LE */
	size_t user_len;
	const uint8_t *workstation; /* UTF-16LE */
	size_t workstation_len;
	const uint8_t *enc_key; /* EncryptedRandomSessionKey */
	size_t enc_key_len;
	/* From the NTLMv2 blob (NTLMv2_CLIENT_CHALLENGE). */
	uint64_t blob_time; /* FILETIME */
	uint32_t av_flags;  /* MsvAvFlags, 0 when absent */
	bool has_cbt;
	const uint8_t *cbt; /* MsvAvChannelBindings, 16 bytes */
	bool has_mic;	    /* av_flags & NTLM_AV_FLAG_MIC: MIC at offset 72 */
	const uint8_t *mic;
};

/*
 * Parse an AUTHENTICATE message ([MS-NLMP] 2.2.1.3), bounded: every field
 * inside the message, after the fixed header (and the MIC when announced),
 * no two fields overlapping, sizes under the NTLM_*_MAX bounds, names of even
 * length, UNICODE negotiated. The NT response must be NTLMv2: length 24 (or
 * an LM-only message) is NTLM_E_V1; the blob's AV pairs must parse up to
 * MsvAvEOL. 0 or NTLM_E_*; *out is zeroed on error.
 */
int ntlm_parse_authenticate(const uint8_t *msg, size_t len, struct ntlm_auth *out);

/* Session state after a verified AUTHENTICATE (secrets: wipe when done). */
struct ntlm_session {
	uint32_t flags; /* negotiated: the AUTHENTICATE's NegotiateFlags */
	uint8_t exported_key[16];
	uint8_t client_sign[16];
	uint8_t client_seal[16];
	uint8_t server_sign[16];
	uint8_t server_seal[16];
};

/* The messages the MIC covers: NEGOTIATE (absent in connectionless mode),
 * CHALLENGE, and the AUTHENTICATE itself (from struct ntlm_auth). */
struct ntlm_transcript {
	const uint8_t *negotiate; /* NULL/0 in connectionless mode */
	size_t negotiate_len;
	const uint8_t *challenge;
	size_t challenge_len;
	uint8_t server_challenge[8];
};

/*
 * Verify an NTLMv2 AUTHENTICATE against an NT hash and derive the session:
 * NTProofStr = HMAC_MD5(NTOWFv2, server_challenge || blob) (§3.3.2);
 * SessionBaseKey = KeyExchangeKey = HMAC_MD5(NTOWFv2, NTProofStr);
 * with KEY_EXCH, ExportedSessionKey = RC4(KeyExchangeKey, EncryptedRandomSessionKey);
 * the MIC when announced (HMAC_MD5(ExportedSessionKey, NEGOTIATE || CHALLENGE ||
 * AUTHENTICATE with the MIC zeroed)); channel bindings when cbt is not NULL and
 * not all zero (the blob's MsvAvChannelBindings must equal it; absent or zero
 * otherwise accepted). Every step runs whatever the outcome of the earlier
 * ones, so a wrong hash costs the same as a right one.
 * 0 (out filled), NTLM_E_BAD_RESPONSE, NTLM_E_BAD_MIC, NTLM_E_CBT,
 * NTLM_E_MALFORMED (KEY_EXCH without a 16-byte key), NTLM_E_CRYPTO.
 * out is wiped unless 0.
 */
int ntlm_accept_v2(const struct ntlm_auth *a, const uint8_t nt_hash[16],
		   const struct ntlm_transcript *tr, const uint8_t cbt[16],
		   struct ntlm_session *out);

/* SIGNKEY / SEALKEY ([MS-NLMP] 3.4.5.2, 3.4.5.3; extended session security). */
int ntlm_sign_key(const uint8_t exported_key[16], bool client, uint8_t out[16]);
int ntlm_seal_key(uint32_t flags, const uint8_t exported_key[16], bool client, uint8_t out[16]);
/* Fill the four keys of s from s->flags and s->exported_key. 0 or NTLM_E_CRYPTO. */
int ntlm_session_keys(struct ntlm_session *s);

/*
 * MAC with extended session security ([MS-NLMP] 3.4.4.2):
 * Version 1 || Checksum || SeqNum, Checksum = HMAC_MD5(sign_key, seq || msg)[0..7],
 * RC4-encrypted when KEY_EXCH is negotiated; in connectionless mode (DATAGRAM)
 * the RC4 handle is re-keyed per message with MD5(seal_key || seq) (§3.4.3).
 * KEY_EXCH without DATAGRAM needs the RC4 stream of a connection: NTLM_E_UNSUPPORTED.
 * Without EXTENDED_SESSIONSECURITY: NTLM_E_UNSUPPORTED (NTLMv1 signing).
 */
int ntlm_mac(uint32_t flags, const uint8_t sign_key[16], const uint8_t seal_key[16], uint32_t seq,
	     const uint8_t *msg, size_t len, uint8_t sig[NTLM_SIG_LEN]);

/* Sign as the server (server->client keys) / verify a client signature
 * (client->server keys) with sequence number seq ([MS-SIPAE]: always 100).
 * Verify: 0 when sig is 16 bytes and matches, else -1 (constant time). */
int ntlm_server_sign(const struct ntlm_session *s, uint32_t seq, const uint8_t *msg, size_t len,
		     uint8_t sig[NTLM_SIG_LEN]);
int ntlm_server_verify(const struct ntlm_session *s, uint32_t seq, const uint8_t *msg, size_t len,
		       const uint8_t *sig, size_t sig_len);

/* RC4 of len bytes with a fresh handle from key (16 bytes). For the
 * vector tests and KEY_EXCH. 0 or NTLM_E_CRYPTO. */
int ntlm_rc4(const uint8_t key[16], const uint8_t *in, size_t len, uint8_t *out);

/*
 * UTF-16LE (as in AUTHENTICATE) to NUL-terminated UTF-8. 0, NTLM_E_MALFORMED
 * (odd length, unpaired surrogate, an embedded NUL), NTLM_E_BUFFER.
 */
int ntlm_utf16_to_utf8(const uint8_t *in, size_t len, char *out, size_t cap);

/* ---- connection-oriented mode (HTTP, SPNEGO) ---- */

/* Largest NEGOTIATE message accepted (fixed part, Version, two names). */
#define NTLM_NEGOTIATE_MAX 1024

/*
 * The NegotiateFlags of a NEGOTIATE message ([MS-NLMP] 2.2.1.1): 0 with
 * *flags, or NTLM_E_MALFORMED (not a type-1 message, shorter than its fixed
 * part) / NTLM_E_TOO_LARGE (over NTLM_NEGOTIATE_MAX).
 */
int ntlm_negotiate_flags(const uint8_t *msg, size_t len, uint32_t *flags);

/*
 * The flags our CHALLENGE answers a connection-oriented NEGOTIATE with
 * ([MS-NLMP] 3.2.5.1.1): UNICODE, NTLM, ALWAYS_SIGN, TARGET_INFO,
 * REQUEST_TARGET, TARGET_TYPE_DOMAIN, EXTENDED_SESSIONSECURITY, and of SIGN,
 * SEAL, 128, 56, KEY_EXCH, VERSION those the client asked for; never
 * DATAGRAM. 0 when the client lacks UNICODE or extended session security
 * (we sign only with it): refuse such a client.
 */
uint32_t ntlm_co_challenge_flags(uint32_t negotiate_flags);

/*
 * One direction of connection-oriented signing ([MS-NLMP] 3.4.4.2 with
 * extended session security): the signing key, the RC4 handle keyed once
 * with the sealing key and never re-keyed (§3.4.3, unlike connectionless
 * mode), and the next sequence number, starting at 0. Secrets: free with
 * ntlm_co_free, which wipes. Not thread-safe: one user at a time.
 */
struct ntlm_co {
	uint32_t flags;
	uint8_t sign_key[16];
	void *rc4; /* EVP_CIPHER_CTX of the handle */
	uint32_t seq;
};

/* Set up d for flags (EXTENDED_SESSIONSECURITY, no DATAGRAM, else
 * NTLM_E_UNSUPPORTED). 0 or NTLM_E_*; d is zeroed on failure. */
int ntlm_co_init(struct ntlm_co *d, uint32_t flags, const uint8_t sign_key[16],
		 const uint8_t seal_key[16]);
/* Wipe d and free its handle (d zeroed or initialised). */
void ntlm_co_free(struct ntlm_co *d);
/* RC4 of len bytes through the handle (SEAL; advances the stream). */
int ntlm_co_seal(struct ntlm_co *d, const uint8_t *in, size_t len, uint8_t *out);
/* The signature of msg with the current sequence number, then seq + 1;
 * the checksum goes through the handle when KEY_EXCH was negotiated. */
int ntlm_co_sign(struct ntlm_co *d, const uint8_t *msg, size_t len, uint8_t sig[NTLM_SIG_LEN]);
/* Check a peer's signature against the expected next one (which advances
 * the sequence number and stream either way). 0 when equal, else -1
 * (constant time). */
int ntlm_co_verify(struct ntlm_co *d, const uint8_t *msg, size_t len, const uint8_t *sig,
		   size_t sig_len);

#endif
