/*
 * TURN allocation table and quotas; see alloc.h. Must never do I/O or log:
 * the server decides what a refusal becomes on the wire.
 */
#include "turn/alloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "turn/policy.h"

#define ALLOC_BUCKETS 4096 /* per worker; chains stay short up to the total quota */
#define QUOTA_BUCKETS 1024

/* ---- quotas ---- */

struct quota_entry {
	struct quota_entry *next;
	unsigned n;
	char key[];
};

static pthread_mutex_t quota_mu = PTHREAD_MUTEX_INITIALIZER;
static struct quota_entry *quota_tab[QUOTA_BUCKETS];
static _Atomic unsigned quota_user_max, quota_total_max; /* changed by turn_reload */
static _Atomic unsigned quota_total;

static unsigned quota_hash(const char *k)
{
	unsigned h = 2166136261u;
	while (*k)
		h = (h ^ (unsigned char)*k++) * 16777619u;
	return h % QUOTA_BUCKETS;
}

void turn_quota_init(unsigned per_user, unsigned total)
{
	atomic_store(&quota_user_max, per_user);
	atomic_store(&quota_total_max, total);
}

void turn_quota_reset(void)
{
	pthread_mutex_lock(&quota_mu);
	for (size_t i = 0; i < QUOTA_BUCKETS; i++)
		while (quota_tab[i]) {
			struct quota_entry *e = quota_tab[i];
			quota_tab[i] = e->next;
			free(e);
		}
	atomic_store(&quota_total, 0);
	pthread_mutex_unlock(&quota_mu);
}

unsigned turn_quota_total(void)
{
	return atomic_load(&quota_total);
}

int turn_quota_acquire(const char *key)
{
	struct quota_entry **pp, *e;
	int rc = TURN_ALLOC_OK;

	/* the total first, lock-free: a flood of allocations past the total
	 * never reaches the mutex */
	unsigned cur = atomic_load(&quota_total), total_max = atomic_load(&quota_total_max);
	unsigned user_max = atomic_load(&quota_user_max);
	do {
		if (total_max && cur >= total_max)
			return TURN_ALLOC_QUOTA_TOTAL;
	} while (!atomic_compare_exchange_weak(&quota_total, &cur, cur + 1));

	pthread_mutex_lock(&quota_mu);
	for (pp = &quota_tab[quota_hash(key)]; *pp && strcmp((*pp)->key, key) != 0;
	     pp = &(*pp)->next)
		;
	e = *pp;
	if (!e) {
		size_t len = strlen(key);
		e = calloc(1, sizeof(*e) + len + 1);
		if (e) {
			memcpy(e->key, key, len + 1);
			*pp = e;
		}
	}
	if (!e)
		rc = TURN_ALLOC_NOMEM;
	else if (user_max && e->n >= user_max)
		rc = TURN_ALLOC_QUOTA_USER;
	else
		e->n++;
	if (e && e->n == 0) { /* made for nothing */
		*pp = e->next;
		free(e);
	}
	pthread_mutex_unlock(&quota_mu);
	if (rc != TURN_ALLOC_OK)
		atomic_fetch_sub(&quota_total, 1);
	return rc;
}

void turn_quota_release(const char *key)
{
	struct quota_entry **pp, *e;

	pthread_mutex_lock(&quota_mu);
	for (pp = &quota_tab[quota_hash(key)]; *pp && strcmp((*pp)->key, key) != 0;
	     pp = &(*pp)->next)
		;
	e = *pp;
	if (e) {
		if (--e->n == 0) {
			*pp = e->next;
			free(e);
		}
		atomic_fetch_sub(&quota_total, 1);
	}
	pthread_mutex_unlock(&quota_mu);
}

/* ---- table ---- */

struct turn_alloc_table {
	struct turn_alloc *b[ALLOC_BUCKETS];
	size_t n;
};

bool turn_addr_eq(const struct stun_addr *a, const struct stun_addr *b)
{
	return a->family == b->family && a->port == b->port &&
	       memcmp(a->ip, b->ip, a->family == STUN_AF_IPV4 ? 4 : 16) == 0;
}

static bool tuple_eq(const struct turn_tuple *a, const struct turn_tuple *b)
{
	return a->transport == b->transport && a->listen_idx == b->listen_idx &&
	       a->conn_id == b->conn_id && turn_addr_eq(&a->client, &b->client);
}

static size_t tuple_hash(const struct turn_tuple *k)
{
	uint64_t h = 1469598103934665603ULL ^ k->transport ^ ((uint64_t)k->listen_idx << 8);
	size_t n = k->client.family == STUN_AF_IPV4 ? 4 : 16;

	h = (h ^ k->conn_id) * 1099511628211ULL;
	h = (h ^ k->client.port) * 1099511628211ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ k->client.ip[i]) * 1099511628211ULL;
	return (size_t)(h ^ (h >> 29)) % ALLOC_BUCKETS;
}

struct turn_alloc_table *turn_alloc_table_new(void)
{
	return calloc(1, sizeof(struct turn_alloc_table));
}

size_t turn_alloc_count(const struct turn_alloc_table *t)
{
	return t->n;
}

static void alloc_free(struct turn_alloc_table *t, struct turn_alloc *a, turn_alloc_free_fn on_free,
		       void *ctx)
{
	if (on_free)
		on_free(a, ctx);
	turn_quota_release(a->quota_key);
	t->n--;
	free(a);
}

void turn_alloc_table_free(struct turn_alloc_table *t, turn_alloc_free_fn on_free, void *ctx)
{
	if (!t)
		return;
	for (size_t i = 0; i < ALLOC_BUCKETS; i++)
		while (t->b[i]) {
			struct turn_alloc *a = t->b[i];
			t->b[i] = a->next;
			alloc_free(t, a, on_free, ctx);
		}
	free(t);
}

struct turn_alloc *turn_alloc_find(struct turn_alloc_table *t, const struct turn_tuple *k,
				   uint64_t now_ms)
{
	for (struct turn_alloc *a = t->b[tuple_hash(k)]; a; a = a->next)
		if (tuple_eq(&a->tuple, k))
			return a->expires_ms > now_ms ? a : NULL;
	return NULL;
}

int turn_alloc_add(struct turn_alloc_table *t, const struct turn_tuple *k, struct str username,
		   const char *quota_key, uint32_t lifetime_s, uint64_t now_ms,
		   struct turn_alloc **out)
{
	size_t h = tuple_hash(k);
	struct turn_alloc *a;
	int rc;

	*out = NULL;
	for (a = t->b[h]; a; a = a->next)
		if (tuple_eq(&a->tuple, k))
			return TURN_ALLOC_EXISTS; /* even expired: the caller expires first */
	if (username.len > STUN_MAX_USERNAME || strlen(quota_key) >= TURN_QUOTA_KEY_MAX)
		return TURN_ALLOC_NOMEM;
	rc = turn_quota_acquire(quota_key);
	if (rc != TURN_ALLOC_OK)
		return rc;
	a = calloc(1, sizeof(*a));
	if (!a) {
		turn_quota_release(quota_key);
		return TURN_ALLOC_NOMEM;
	}
	a->tuple = *k;
	memcpy(a->username, username.p, username.len);
	strcpy(a->quota_key, quota_key);
	a->created_ms = now_ms;
	a->expires_ms = now_ms + (uint64_t)lifetime_s * 1000u;
	a->relay_fd = -1;
	a->bucket_ms = now_ms;
	a->next = t->b[h];
	t->b[h] = a;
	t->n++;
	*out = a;
	return TURN_ALLOC_OK;
}

void turn_alloc_del(struct turn_alloc_table *t, struct turn_alloc *a, turn_alloc_free_fn on_free,
		    void *ctx)
{
	struct turn_alloc **pp = &t->b[tuple_hash(&a->tuple)];

	while (*pp && *pp != a)
		pp = &(*pp)->next;
	if (!*pp)
		return;
	*pp = a->next;
	alloc_free(t, a, on_free, ctx);
}

/* Drop permissions and channels that can no longer matter. */
static void compact(struct turn_alloc *a, uint64_t now_ms)
{
	unsigned j = 0;

	for (unsigned i = 0; i < a->nperms; i++)
		if (a->perms[i].expires_ms > now_ms)
			a->perms[j++] = a->perms[i];
	a->nperms = j;
	j = 0;
	for (unsigned i = 0; i < a->nchans; i++)
		if (a->chans[i].expires_ms + TURN_CHANNEL_HOLD * 1000u > now_ms)
			a->chans[j++] = a->chans[i];
	a->nchans = j;
}

size_t turn_alloc_apply_policy(struct turn_alloc *a, const struct turn_policy *p)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	size_t before = a->nperms + a->nchans;
	unsigned j = 0;

	for (unsigned i = 0; i < a->nperms; i++) {
		struct stun_addr peer;
		memset(&peer, 0, sizeof(peer));
		if (memcmp(a->perms[i].ip, mapped, 12) == 0) {
			peer.family = STUN_AF_IPV4;
			memcpy(peer.ip, a->perms[i].ip + 12, 4);
		} else {
			peer.family = STUN_AF_IPV6;
			memcpy(peer.ip, a->perms[i].ip, 16);
		}
		if (turn_policy_allows(p, &peer, NULL))
			a->perms[j++] = a->perms[i];
	}
	a->nperms = j;
	j = 0;
	for (unsigned i = 0; i < a->nchans; i++)
		if (turn_policy_allows(p, &a->chans[i].peer, NULL))
			a->chans[j++] = a->chans[i];
	a->nchans = j;
	return before - (a->nperms + a->nchans);
}

size_t turn_alloc_expire(struct turn_alloc_table *t, uint64_t now_ms, turn_alloc_free_fn on_free,
			 void *ctx)
{
	size_t freed = 0;

	for (size_t i = 0; i < ALLOC_BUCKETS; i++) {
		struct turn_alloc **pp = &t->b[i];
		while (*pp) {
			struct turn_alloc *a = *pp;
			if (a->expires_ms <= now_ms) {
				*pp = a->next;
				alloc_free(t, a, on_free, ctx);
				freed++;
				continue;
			}
			compact(a, now_ms);
			pp = &a->next;
		}
	}
	return freed;
}

void turn_alloc_foreach(struct turn_alloc_table *t, void (*fn)(struct turn_alloc *a, void *ctx),
			void *ctx)
{
	for (size_t i = 0; i < ALLOC_BUCKETS; i++)
		for (struct turn_alloc *a = t->b[i]; a; a = a->next)
			fn(a, ctx);
}

uint32_t turn_lifetime(bool present, uint32_t requested, uint32_t def, uint32_t max)
{
	uint32_t v;

	if (!present)
		return def;
	v = requested < max ? requested : max; /* RFC 8656 §7.2 */
	return v > def ? v : def;
}

void turn_alloc_refresh(struct turn_alloc *a, uint32_t lifetime_s, uint64_t now_ms)
{
	a->expires_ms = now_ms + (uint64_t)lifetime_s * 1000u;
}

int turn_alloc_perm_add(struct turn_alloc *a, const uint8_t ip[16], uint64_t now_ms)
{
	uint64_t until = now_ms + TURN_PERM_LIFETIME * 1000u;

	for (unsigned i = 0; i < a->nperms; i++)
		if (memcmp(a->perms[i].ip, ip, 16) == 0) {
			a->perms[i].expires_ms = until;
			return TURN_ALLOC_OK;
		}
	if (a->nperms == TURN_MAX_PERMS)
		compact(a, now_ms);
	if (a->nperms == TURN_MAX_PERMS)
		return TURN_ALLOC_FULL;
	memcpy(a->perms[a->nperms].ip, ip, 16);
	a->perms[a->nperms++].expires_ms = until;
	return TURN_ALLOC_OK;
}

bool turn_alloc_permitted(const struct turn_alloc *a, const uint8_t ip[16], uint64_t now_ms)
{
	for (unsigned i = 0; i < a->nperms; i++)
		if (a->perms[i].expires_ms > now_ms && memcmp(a->perms[i].ip, ip, 16) == 0)
			return true;
	return false;
}

int turn_alloc_channel_bind(struct turn_alloc *a, uint16_t num, const struct stun_addr *peer,
			    uint64_t now_ms)
{
	uint64_t hold = TURN_CHANNEL_HOLD * 1000u;
	struct turn_channel *same = NULL;
	bool fresh = false;
	uint8_t ip[16];

	for (unsigned i = 0; i < a->nchans; i++) {
		struct turn_channel *c = &a->chans[i];
		bool num_eq = c->num == num, peer_eq = turn_addr_eq(&c->peer, peer);
		if (c->expires_ms + hold <= now_ms)
			continue;
		if (num_eq && peer_eq)
			same = c;
		else if (num_eq || peer_eq)
			return TURN_ALLOC_CONFLICT; /* RFC 8656 §11.2 */
	}
	if (!same) {
		if (a->nchans == TURN_MAX_CHANNELS)
			compact(a, now_ms);
		if (a->nchans == TURN_MAX_CHANNELS)
			return TURN_ALLOC_FULL;
		same = &a->chans[a->nchans++];
		same->num = num;
		same->peer = *peer;
		fresh = true;
	}
	turn_addr_v6(peer, ip);
	if (turn_alloc_perm_add(a, ip, now_ms) != TURN_ALLOC_OK) {
		if (fresh)
			a->nchans--; /* undo the new binding (it is the last) */
		return TURN_ALLOC_FULL;
	}
	same->expires_ms = now_ms + TURN_CHANNEL_LIFETIME * 1000u;
	return TURN_ALLOC_OK;
}

const struct turn_channel *turn_alloc_channel_by_num(const struct turn_alloc *a, uint16_t num,
						     uint64_t now_ms)
{
	for (unsigned i = 0; i < a->nchans; i++)
		if (a->chans[i].num == num && a->chans[i].expires_ms > now_ms)
			return &a->chans[i];
	return NULL;
}

const struct turn_channel *turn_alloc_channel_by_peer(const struct turn_alloc *a,
						      const struct stun_addr *peer, uint64_t now_ms)
{
	for (unsigned i = 0; i < a->nchans; i++)
		if (a->chans[i].expires_ms > now_ms && turn_addr_eq(&a->chans[i].peer, peer))
			return &a->chans[i];
	return NULL;
}

bool turn_alloc_bucket_take(struct turn_alloc *a, size_t len, uint64_t max_bps, uint64_t now_ms)
{
	uint64_t depth;

	if (max_bps == 0)
		return true;
	depth = max_bps > 65536 ? max_bps : 65536; /* one second, at least a datagram */
	if (!a->bucket_ready) {
		a->tokens = depth; /* start full: a new allocation may burst */
		a->bucket_ms = now_ms;
		a->bucket_ready = true;
	}
	if (now_ms > a->bucket_ms) {
		uint64_t add = (now_ms - a->bucket_ms) * max_bps / 1000u;
		if (add > 0) {
			a->tokens = a->tokens + add > depth ? depth : a->tokens + add;
			a->bucket_ms = now_ms;
		}
	}
	if (a->tokens < len)
		return false;
	a->tokens -= len;
	return true;
}
