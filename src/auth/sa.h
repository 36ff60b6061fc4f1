/*
 * Security associations ([MS-SIPAE] phase 2): what a successful NTLM,
 * Kerberos or TLS-DSK handshake leaves behind, so that every later message
 * can be signed and verified. An SA is found by its `opaque` (8 upper-case
 * hex digits the server chose), is bound to a user (AOR and device:
 * +sip.instance / epid), a scheme, a realm and a targetname, and holds the
 * mechanism context that signs and verifies (a GSS context or NTLM session
 * keys; owned through struct sa_mech, allocated by the vault).
 *
 * Lifecycle:
 *   PENDING      a multi-leg handshake is under way (NTLM: the CHALLENGE was
 *                sent; the mechanism context holds the acceptor state). Short
 *                lived (SA_PENDING_TTL) and bounded in number
 *                (sa_table_new's max_pending): the oldest pending entry is
 *                evicted first, so unauthenticated clients cannot fill memory.
 *   ESTABLISHED  signed messages flow. Expires at min(8 h, the credential's
 *                expiry) or after SA_IDLE_TTL without a verified message.
 *
 * Sequence numbers: cnum (client to server) is checked against a sliding
 * window of SA_WINDOW numbers (a cnum seen before, or older than the window,
 * is a replay); snum (server to client) counts up from 1.
 *
 * Thread safety: one table shared by all workers; sharded by opaque with a
 * mutex per shard; an SA is reference counted (sa_find / sa_put) and its
 * mechanism calls are serialised by a mutex of its own (GSS contexts are not
 * thread-safe).
 */
#ifndef RTC_AUTH_SA_H
#define RTC_AUTH_SA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

#define SA_OPAQUE_LEN	8	   /* hex digits */
#define SA_WINDOW	128	   /* cnum replay window */
#define SA_MAX_LIFETIME (8 * 3600) /* seconds */
#define SA_IDLE_TTL	(15 * 60)  /* seconds */
#define SA_PENDING_TTL	60	   /* seconds for a handshake to complete */
#define SA_MAC_MAX	64 /* bytes of the largest signature (Kerberos MIC tokens are 28..) */

enum sa_scheme { SA_SCHEME_NONE = 0, SA_SCHEME_NTLM, SA_SCHEME_KERBEROS, SA_SCHEME_TLSDSK };

/* "NTLM", "Kerberos", "TLS-DSK" (as written on the wire). */
const char *sa_scheme_name(enum sa_scheme s);
/* Case-insensitive; SA_SCHEME_NONE when not one of the three. */
enum sa_scheme sa_scheme_parse(struct str s);

/*
 * The mechanism behind an SA. Implemented by the vault (src/vault/gss.c for
 * Kerberos, src/vault/vault_ntlm.c for NTLM, later TLS-DSK). ctx is the
 * mechanism's own state. sign computes the signature of the server-to-client
 * buffer, verify checks a client-to-server one; both return 0 or -1 (verify:
 * -1 = signature does not match or is malformed). free wipes and frees ctx.
 */
struct sa_mech {
	int (*sign)(void *ctx, const uint8_t *buf, size_t len, uint8_t *mac, size_t cap,
		    size_t *mac_len);
	int (*verify)(void *ctx, const uint8_t *buf, size_t len, const uint8_t *mac,
		      size_t mac_len);
	void (*free)(void *ctx);
};

enum sa_state { SA_PENDING = 0, SA_ESTABLISHED = 1 };

/* What the table knows about an SA (copied out by sa_info / sa_list). */
struct sa_info {
	char opaque[SA_OPAQUE_LEN + 1];
	enum sa_scheme scheme;
	enum sa_state state;
	char user[256];	    /* AOR, "sip:alice@example.test"; empty while pending */
	char instance[128]; /* +sip.instance or epid; may be empty */
	char realm[128];
	char targetname[256];
	int version;	    /* 3 or 4 */
	uint64_t created;   /* wall-clock seconds */
	uint64_t expires;   /* wall-clock seconds: hard expiry */
	uint64_t last_used; /* wall-clock seconds: last verified message */
	uint32_t snum;	    /* last server sequence number used */
	uint32_t cnum_high; /* highest cnum accepted */
	bool from_407;	    /* handshake came through a 407 (Proxy-Authentication-Info) */
};

struct sa_table;
struct sa;

/* max_pending: bound on PENDING entries (0 = default 10000). NULL on ENOMEM. */
struct sa_table *sa_table_new(size_t max_pending);
/* Frees every SA (mechanism contexts with their free). */
void sa_table_free(struct sa_table *t);

/*
 * Start a handshake: a PENDING SA with a fresh unique opaque, holding the
 * mechanism context (ownership passes to the table, also on failure).
 * info supplies scheme, realm, targetname, version, from_407; the rest is
 * filled in. Returns a referenced SA (sa_put it) or NULL.
 */
struct sa *sa_begin(struct sa_table *t, const struct sa_info *info, const struct sa_mech *mech,
		    void *mech_ctx, uint64_t now);

/*
 * Complete a handshake: the SA becomes ESTABLISHED for user/instance, hard
 * expiry min(now + SA_MAX_LIFETIME, cred_expiry) (cred_expiry 0 = none).
 * mech/mech_ctx replace the pending context when not NULL (the old one is
 * freed). 0, or -1 when the SA is not pending (or expired, or already
 * evicted from the table, or user/instance too long); on -1 a new mech_ctx
 * given is freed too (ownership always passes, as with sa_begin).
 */
int sa_establish(struct sa *sa, const char *user, const char *instance, uint64_t cred_expiry,
		 const struct sa_mech *mech, void *mech_ctx, uint64_t now);

/* Create an ESTABLISHED SA in one step (Kerberos: one round trip). */
struct sa *sa_create(struct sa_table *t, const struct sa_info *info, const struct sa_mech *mech,
		     void *mech_ctx, uint64_t cred_expiry, uint64_t now);

/*
 * Find by opaque (case-insensitive hex). Expired entries (hard expiry, idle
 * time, pending TTL) are removed and not returned. Referenced, or NULL.
 */
struct sa *sa_find(struct sa_table *t, struct str opaque, uint64_t now);
void sa_put(struct sa *sa);

/* The mechanism context of a PENDING SA (for the next handshake leg), under
 * the SA's lock: fn(ctx, arg) runs with the lock held; returns fn's value. */
int sa_with_mech(struct sa *sa, int (*fn)(void *mech_ctx, void *arg), void *arg);

void sa_get_info(const struct sa *sa, struct sa_info *out);
const char *sa_opaque(const struct sa *sa);

enum sa_result {
	SA_OK = 0,
	SA_E_BAD_SIG = -1, /* signature does not verify */
	SA_E_REPLAY = -2,  /* cnum seen already, or older than the window */
	SA_E_STATE = -3,   /* not established */
	SA_E_EXPIRED = -4,
	SA_E_MALFORMED = -5, /* response not hex, or too long */
};
const char *sa_strerror(int err);

/*
 * Verify a client message: cnum against the window, then the signature
 * (response_hex, case-insensitive hex) over buf. The window is updated and
 * last_used refreshed only when the signature verifies.
 */
int sa_verify(struct sa *sa, uint32_t cnum, const uint8_t *buf, size_t len, struct str response_hex,
	      uint64_t now);

/*
 * The signature of a request the caller knows to be a retransmission of one
 * already verified (RFC 3261 §17.2.1: the same branch, Call-ID, CSeq and
 * cnum over UDP): checked again, the window left as it is. 0 or an
 * sa_result.
 */
int sa_verify_retransmission(struct sa *sa, const uint8_t *buf, size_t len, struct str response_hex,
			     uint64_t now);

/* The next server sequence number (1, 2, ...). */
uint32_t sa_next_snum(struct sa *sa);
/* Sign buf; the signature as lower-case hex into out (cap >= 2*SA_MAC_MAX+1).
 * Returns hex length or a negative sa_result. */
int sa_sign(struct sa *sa, const uint8_t *buf, size_t len, char *out, size_t cap);

/* Remove an SA now (rtcauthctl sa drop). 0, or -1 when not found. */
int sa_drop(struct sa_table *t, struct str opaque);
/* Remove every SA of a user (password change, user disabled). Count dropped. */
size_t sa_drop_user(struct sa_table *t, const char *user);
/* Remove expired entries; the daemon calls it once a second. Count removed. */
size_t sa_sweep(struct sa_table *t, uint64_t now);

/* For rtcauthctl sa list and /metrics. fn non-zero stops. */
int sa_list(struct sa_table *t, int (*fn)(void *ctx, const struct sa_info *i), void *ctx);
void sa_count(struct sa_table *t, size_t *pending, size_t *established);

#endif
