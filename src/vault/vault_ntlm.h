/*
 * The vault's NTLM acceptor for [MS-SIPAE] connectionless NTLM: the only
 * code that sees NT hashes (read from the store, mech "nt", 16 bytes). A
 * pending-handshake context holds the server challenge and the CHALLENGE
 * bytes (for the MIC); once an AUTHENTICATE verifies, the same context holds
 * the session keys and signs / verifies SIP signature buffers through struct
 * sa_mech (sequence number fixed at VAULT_NTLM_SIPAE_SEQ, as MS-SIPAE clients
 * do).
 *
 * Lifecycle: vault_ntlm_challenge allocates ctx (pending); it goes to the SA
 * table with sa_begin; the next leg calls vault_ntlm_accept under the SA's
 * lock (sa_with_mech). One AUTHENTICATE per context: after a verdict other
 * than TEMPFAIL the context never accepts again (a failed one never signs).
 * mech->free wipes and frees it.
 *
 * Thread safety: calls on one ctx must be serialised (the SA table does);
 * different contexts may be used concurrently from any thread.
 */
#ifndef RTC_VAULT_VAULT_NTLM_H
#define RTC_VAULT_VAULT_NTLM_H

#include <stddef.h>
#include <stdint.h>

#include "auth/sa.h"
#include "auth/verdict.h"
#include "core/str.h"
#include "store/store.h"

/* [MS-SIPAE]: every NTLM signature uses sequence number 100. */
#define VAULT_NTLM_SIPAE_SEQ 100
/* NTLMv2 blob timestamp allowed this far from our clock (PROTOCOLS.md §1). */
#define VAULT_NTLM_MAX_SKEW (15 * 60)

/* The names our CHALLENGE advertises (NUL-terminated UTF-8; NULL = none).
 * nb_domain, e.g. "EXAMPLE", is also accepted as the AUTHENTICATE's domain. */
struct vault_ntlm_names {
	const char *nb_domain;	  /* NetBIOS domain */
	const char *nb_computer;  /* NetBIOS computer, "FE01" */
	const char *dns_domain;	  /* "example.test" */
	const char *dns_computer; /* "fe01.example.test" */
};

/*
 * Start a handshake: a random server challenge and the CHALLENGE message
 * (timestamp now_wall_s) into challenge_msg (cap >= 1024 is always enough;
 * *len set). *mech and *ctx (owned by the caller until handed to sa_begin)
 * are set on success, NULL on failure. 0, or -1 (no memory, no randomness,
 * crypto unavailable, names too long or not UTF-8, cap too small).
 */
int vault_ntlm_challenge(const struct vault_ntlm_names *names, uint64_t now_wall_s,
			 const struct sa_mech **mech, void **ctx, uint8_t *challenge_msg,
			 size_t cap, size_t *len);

/*
 * Require channel bindings (MsvAvChannelBindings = MD5 of the TLS channel's
 * gss_channel_bindings_struct, [MS-NLMP] 2.2.2.1) in the AUTHENTICATE that
 * completes ctx. hash NULL or all zero: not required (the default). Call
 * before vault_ntlm_accept. 0, or -1 when ctx is not pending.
 */
int vault_ntlm_set_channel_bindings(void *ctx, const uint8_t hash[16]);

/*
 * Verify the AUTHENTICATE message of the handshake ctx was made for.
 * The user name may be "user" or "user@domain"; the domain field must be
 * empty, the NetBIOS domain, the DNS domain or realm (case-insensitive),
 * else the user is unknown; "DOMAIN\user" in the user field with an empty
 * domain field is split the same way. The NT hash comes from
 * store_digest_lookup(s, name, realm, "nt"). Unknown users and users
 * without an NT hash are checked against a dummy hash (the same work).
 * Verdicts: OK (user filled; ctx now signs and verifies);
 * PERMFAIL "malformed", "ntlm_v1", "unknown_user", "no_password",
 * "disabled", "bad_response", "bad_mic", "bad_channel_bindings",
 * "clock_skew" (blob timestamp more than VAULT_NTLM_MAX_SKEW from now),
 * "bad_state" (ctx already used); TEMPFAIL "store_unavailable",
 * "internal_error" (crypto unavailable).
 */
struct verdict vault_ntlm_accept(struct store *s, void *ctx, const uint8_t *auth_msg, size_t len,
				 struct str realm, uint64_t now_wall_s, struct store_user *user);

/*
 * A pending context for a CHALLENGE made elsewhere (the server challenge is
 * read from it): for vector tests against recorded traces. names as above
 * (may be NULL). 0 or -1.
 */
int vault_ntlm_ctx_with_challenge(const uint8_t *challenge_msg, size_t len,
				  const struct vault_ntlm_names *names, const struct sa_mech **mech,
				  void **ctx);

/*
 * Connection-oriented NTLM (HTTP, SPNEGO; [MS-NLMP] 3.2.5.1): start a
 * handshake from the client's NEGOTIATE message: the CHALLENGE answers its
 * flags (ntlm_co_challenge_flags: no DATAGRAM), and the NEGOTIATE is kept
 * for the AUTHENTICATE's MIC (over NEGOTIATE || CHALLENGE || AUTHENTICATE).
 * vault_ntlm_accept then completes it (requiring extended session security
 * and no DATAGRAM); once established the context signs and verifies with
 * vault_ntlm_co_sign / vault_ntlm_co_verify (not through sa_mech, which is
 * MS-SIPAE's connectionless signing). Outputs as vault_ntlm_challenge.
 * 0; -2 when the NEGOTIATE is malformed or lacks UNICODE or extended
 * session security (refuse the client); -1 otherwise (as
 * vault_ntlm_challenge).
 */
int vault_ntlm_challenge_co(const struct vault_ntlm_names *names, uint64_t now_wall_s,
			    const uint8_t *negotiate, size_t neg_len, const struct sa_mech **mech,
			    void **ctx, uint8_t *challenge_msg, size_t cap, size_t *len);

/*
 * Connection-oriented signatures ([MS-NLMP] 3.4.4.2 with extended session
 * security): each direction has its own sequence number from 0 and its own
 * RC4 handle keyed once with that direction's sealing key. verify checks
 * the client's next signature (0 or -1); sign makes our next one (16 bytes
 * into sig, cap >= 16; 0 or -1). Both only on an established context from
 * vault_ntlm_challenge_co. RFC 4178 §5 mechListMIC: the client's first
 * signature and ours are over the DER mechTypes the client sent.
 */
int vault_ntlm_co_verify(void *ctx, const uint8_t *msg, size_t len, const uint8_t *sig,
			 size_t sig_len);
int vault_ntlm_co_sign(void *ctx, const uint8_t *msg, size_t len, uint8_t *sig, size_t cap,
		       size_t *sig_len);

#endif
