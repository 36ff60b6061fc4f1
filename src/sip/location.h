/*
 * The location service (RFC 3261 §10): address-of-record -> bindings, in
 * memory, shared by all workers. Sharded by a hash of the AOR; each shard
 * has its own mutex, so workers rarely contend. The registrar writes, the
 * router reads, the persister mirrors every change into the store.
 *
 * Bindings are copied in and out (struct location_binding is plain data with
 * fixed-size fields); nothing outside this file holds a pointer into the
 * table, so a binding may vanish at any moment without dangling pointers.
 * Inside, each binding is one packed allocation holding only the bytes its
 * strings need (100,000 registrations must fit well under 100 MB).
 */
#ifndef RTC_SIP_LOCATION_H
#define RTC_SIP_LOCATION_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/sbuf.h"
#include "core/str.h"

#define LOC_AOR_MAX	256
#define LOC_CONTACT_MAX 512
#define LOC_KEY_MAX	512
#define LOC_PATH_MAX	512
#define LOC_SMALL_MAX	128

/* Where a binding's requests go: the flow it registered over (RFC 5626). */
struct location_flow {
	int transport; /* enum transport_kind */
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} addr;
	socklen_t addrlen;
	uint64_t conn_id; /* stream connection, 0 for UDP or when unknown */
	int listen_idx;	  /* listener it arrived on (UDP replies go out from it) */
};

struct location_binding {
	char aor[LOC_AOR_MAX];
	char key[LOC_KEY_MAX];	       /* instance+reg-id, or the Contact URI */
	char contact[LOC_CONTACT_MAX]; /* name-addr as received, params kept */
	char contact_uri[LOC_CONTACT_MAX];
	char instance[LOC_SMALL_MAX];
	int32_t reg_id; /* -1 none */
	char path[LOC_PATH_MAX];
	char call_id[LOC_SMALL_MAX];
	uint32_t cseq;
	char user_agent[LOC_SMALL_MAX];
	int64_t expires; /* absolute unix seconds */
	int64_t updated; /* unix seconds; orders bindings (newest first) */
	/* the expiry the store holds for this binding (0: none known). A
	 * refresh that changes nothing but the expiry may leave the row alone
	 * while this is far enough ahead (registrar.c, refresh_only) */
	int64_t stored_expires;
	struct location_flow flow;
	/* the security association the binding registered with ([MS-SIPAE]):
	 * requests routed to it are signed with it; empty for Digest */
	char sa_opaque[16];
};

int location_init(size_t shards_log2);
void location_shutdown(void);

/* Number of live bindings (approximate under concurrency). */
size_t location_count(void);

/*
 * Run fn under the AOR's shard lock with the AOR's current bindings (expired
 * ones already dropped). fn may add, replace or remove bindings through the
 * handle; it must not call other location functions. Returns fn's value.
 */
struct location_aor;
int location_update(struct str aor, int64_t now, int (*fn)(void *ctx, struct location_aor *rec),
		    void *ctx);
size_t location_aor_count(const struct location_aor *rec);
/* Copy binding i out. */
void location_aor_get(const struct location_aor *rec, size_t i, struct location_binding *out);
/* Append binding i's Contact value (what location_aor_get puts in
 * .contact) to b and return its expires: the 200 that lists every binding
 * needs nothing else of them. */
int64_t location_aor_contact(const struct location_aor *rec, size_t i, struct sbuf *b);
/* Find by key; index or -1. */
int location_aor_find(const struct location_aor *rec, const char *key);
/* Insert or replace by key. 0 or -1 (out of memory). */
int location_aor_put(struct location_aor *rec, const struct location_binding *b);
void location_aor_remove(struct location_aor *rec, size_t i);

/* Copy out up to max bindings of aor, newest first; returns the count. */
size_t location_lookup(struct str aor, int64_t now, struct location_binding *out, size_t max);

/* Call fn for every binding (shard by shard, under each shard lock). */
void location_foreach(void (*fn)(void *ctx, const struct location_binding *b), void *ctx);

/*
 * Drop bindings with expires <= now; fn (may be NULL) is told about each,
 * after it was removed. Returns the number removed.
 */
size_t location_expire(int64_t now, void (*fn)(void *ctx, const struct location_binding *b),
		       void *ctx);

#endif
