/*
 * TURN allocations (RFC 8656 §2.2, §5): one worker's table of allocations,
 * each keyed by its 5-tuple, with its permissions (§9), channel bindings
 * (§12), lifetime and bandwidth bucket; and the process-wide quotas (per
 * user and in total, the only state shared between workers).
 *
 * Lifecycle: a worker owns one struct turn_alloc_table, used only from its
 * thread (the kernel keeps a client's 5-tuple on one worker). The table
 * allocates and frees struct turn_alloc; the caller owns what it hangs on
 * one (the relay socket, its event) and releases it in the on_free callback
 * of turn_alloc_del / turn_alloc_expire / turn_alloc_table_free. Time is
 * passed in (monotonic milliseconds); nothing here does I/O or logs.
 */
#ifndef RTC_TURN_ALLOC_H
#define RTC_TURN_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"
#include "turn/stun.h"

#define TURN_MAX_PERMS	      32    /* permissions per allocation (508 beyond) */
#define TURN_MAX_CHANNELS     32    /* channel bindings per allocation (508 beyond) */
#define TURN_PERM_LIFETIME    300   /* seconds, RFC 8656 §9 */
#define TURN_CHANNEL_LIFETIME 600   /* seconds, RFC 8656 §12 */
#define TURN_CHANNEL_HOLD     300   /* after expiry a number/peer stays reserved (§12) */
#define TURN_ALLOC_RETRANS_MS 40000 /* an Allocate retransmission within this is answered again */
#define TURN_QUOTA_KEY_MAX    256

enum turn_alloc_err {
	TURN_ALLOC_OK = 0,
	TURN_ALLOC_EXISTS = -1,	     /* 437: the 5-tuple has an allocation */
	TURN_ALLOC_QUOTA_USER = -2,  /* 486: the user's quota is used up */
	TURN_ALLOC_QUOTA_TOTAL = -3, /* 486: the server's quota is used up */
	TURN_ALLOC_NOMEM = -4,	     /* 500/508 */
	TURN_ALLOC_FULL = -5,	     /* 508: no room for another permission/channel */
	TURN_ALLOC_CONFLICT =
	    -6, /* 400: channel bound to another peer, or peer to another channel */
};

/* A client's 5-tuple as the server sees it: the listener (and the connection
 * for TCP/TLS) and the client's transport address. */
struct turn_tuple {
	uint8_t transport;  /* enum transport_kind */
	uint8_t listen_idx; /* index into [turn] listen */
	uint64_t conn_id;   /* stream connection, 0 for UDP */
	struct stun_addr client;
};

struct turn_perm {
	uint8_t ip[16]; /* IPv6 form (turn_addr_v6) */
	uint64_t expires_ms;
};

struct turn_channel {
	uint16_t num;
	struct stun_addr peer;
	uint64_t expires_ms;
};

struct turn_alloc {
	struct turn_alloc *next; /* hash chain */
	struct turn_tuple tuple;
	char username[STUN_MAX_USERNAME + 1]; /* NUL-terminated */
	char quota_key[TURN_QUOTA_KEY_MAX];   /* whose quota this allocation counts against */
	uint8_t tid[STUN_TID_LEN];	      /* of the Allocate that made it */
	uint64_t created_ms;
	uint64_t expires_ms;
	uint64_t resv_token; /* RESERVATION-TOKEN given with it, or 0 */
	uint16_t pwalg;	     /* credential algorithm of the Allocate (TURN_PWALG_*) */
	struct stun_addr relay;
	int relay_fd; /* the caller's; -1 until set */
	void *io;     /* the caller's per-allocation state */
	unsigned nperms, nchans;
	struct turn_perm perms[TURN_MAX_PERMS];
	struct turn_channel chans[TURN_MAX_CHANNELS];
	/* bandwidth token bucket (bytes), refilled at max_bps */
	uint64_t tokens, bucket_ms;
	bool bucket_ready;
	uint64_t pkts_relayed, pkts_dropped;
	uint64_t policy_gen; /* the caller's: which peer policy perms/chans were checked against */
};

/* ---- quotas (process-wide, thread-safe) ---- */

/* Set the limits (0 = no limit). Any time, from any thread (a reload): they
 * apply to the next acquisition; allocations held beyond a lowered limit
 * stay until they end. */
void turn_quota_init(unsigned per_user, unsigned total);
/* Forget every count (tests, shutdown). */
void turn_quota_reset(void);
/* Take one allocation for key: 0, TURN_ALLOC_QUOTA_USER, TURN_ALLOC_QUOTA_TOTAL, TURN_ALLOC_NOMEM.
 */
int turn_quota_acquire(const char *key);
void turn_quota_release(const char *key);
/* Allocations held in total. */
unsigned turn_quota_total(void);

/* ---- the table ---- */

struct turn_alloc_table;
typedef void (*turn_alloc_free_fn)(struct turn_alloc *a, void *ctx);

struct turn_alloc_table *turn_alloc_table_new(void);
/* Free every allocation (on_free first for each, quotas released) and the table. */
void turn_alloc_table_free(struct turn_alloc_table *t, turn_alloc_free_fn on_free, void *ctx);
size_t turn_alloc_count(const struct turn_alloc_table *t);

/* The live allocation of this 5-tuple, or NULL (an expired one is not returned;
 * now_ms 0 returns it too, to delete it). */
struct turn_alloc *turn_alloc_find(struct turn_alloc_table *t, const struct turn_tuple *k,
				   uint64_t now_ms);

/*
 * Make an allocation for k (username and quota_key are copied; too long:
 * TURN_ALLOC_NOMEM) living lifetime_s seconds, after taking one unit of
 * quota_key's quota. *out is NULL on entry and set on success. Returns 0 or
 * TURN_ALLOC_EXISTS / TURN_ALLOC_QUOTA_USER / TURN_ALLOC_QUOTA_TOTAL /
 * TURN_ALLOC_NOMEM. relay_fd is -1, io NULL: the caller sets them.
 */
int turn_alloc_add(struct turn_alloc_table *t, const struct turn_tuple *k, struct str username,
		   const char *quota_key, uint32_t lifetime_s, uint64_t now_ms,
		   struct turn_alloc **out);
/* Remove and free one allocation (on_free first; its quota released). */
void turn_alloc_del(struct turn_alloc_table *t, struct turn_alloc *a, turn_alloc_free_fn on_free,
		    void *ctx);
/* Free every allocation whose lifetime has passed, and drop expired
 * permissions and channels of the others. Returns how many were freed. */
size_t turn_alloc_expire(struct turn_alloc_table *t, uint64_t now_ms, turn_alloc_free_fn on_free,
			 void *ctx);
/* Call fn for every allocation (stats, a connection closing). fn may not delete. */
void turn_alloc_foreach(struct turn_alloc_table *t, void (*fn)(struct turn_alloc *a, void *ctx),
			void *ctx);

/*
 * The lifetime to grant (RFC 8656 §7.2, §8): with a LIFETIME attribute,
 * min(requested, max), but not below the default; without one, the default.
 * Refresh with LIFETIME 0 is the caller's case (delete).
 */
uint32_t turn_lifetime(bool present, uint32_t requested, uint32_t def, uint32_t max);
void turn_alloc_refresh(struct turn_alloc *a, uint32_t lifetime_s, uint64_t now_ms);

/* ---- permissions and channels ---- */

/* Install or refresh a permission for ip (IPv6 form) for 300 s. 0 or TURN_ALLOC_FULL. */
int turn_alloc_perm_add(struct turn_alloc *a, const uint8_t ip[16], uint64_t now_ms);
/* Does a live permission cover ip? */
bool turn_alloc_permitted(const struct turn_alloc *a, const uint8_t ip[16], uint64_t now_ms);

/*
 * Bind channel num to peer, or refresh that binding, for 600 s; also
 * installs/refreshes the peer's permission (§11.2). num must already be in
 * 0x4000-0x4FFF (the caller answered 400 otherwise). 0, TURN_ALLOC_CONFLICT
 * (num bound to another peer or the peer to another number, including during
 * the 5 minutes after such a binding expired), TURN_ALLOC_FULL.
 */
int turn_alloc_channel_bind(struct turn_alloc *a, uint16_t num, const struct stun_addr *peer,
			    uint64_t now_ms);
/* The live binding of num / of peer (address and port), or NULL. */
const struct turn_channel *turn_alloc_channel_by_num(const struct turn_alloc *a, uint16_t num,
						     uint64_t now_ms);
const struct turn_channel *turn_alloc_channel_by_peer(const struct turn_alloc *a,
						      const struct stun_addr *peer,
						      uint64_t now_ms);

/*
 * Bandwidth cap: may len more bytes be relayed now at max_bps bytes per
 * second (bucket depth one second's worth, at least one full datagram)? 0 =
 * no cap. Takes the tokens when true.
 */
bool turn_alloc_bucket_take(struct turn_alloc *a, size_t len, uint64_t max_bps, uint64_t now_ms);

/*
 * Drop the permissions and channel bindings whose peer policy p refuses
 * (the peer lists were reloaded: a newly denied peer must lose its relay at
 * once, not when its permission expires). Returns how many were dropped.
 */
struct turn_policy;
size_t turn_alloc_apply_policy(struct turn_alloc *a, const struct turn_policy *p);

/* Same transport address (family, ip, port)? */
bool turn_addr_eq(const struct stun_addr *a, const struct stun_addr *b);

#endif
