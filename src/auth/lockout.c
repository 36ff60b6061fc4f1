/*
 * Failed-authentication counting and lockout; see lockout.h for the rules.
 *
 * Two tables of the same shape, users and sources, so that a flood of
 * source addresses can never push user locks out of memory. Each is split
 * into shards (mutex each) of chained hash buckets, keyed by a seeded
 * FNV-1a hash of the key, and holds at most LK_TABLE_MAX entries. Each shard
 * keeps its entries in least-recently-used order; when it is full, the least
 * recently used entry that is not locked goes (looking at most LK_EVICT_SCAN
 * entries from the old end, so a flood costs O(1) per new key; if all of
 * those are locked, the oldest goes anyway: memory stays bounded).
 *
 * Sliding windows are approximated by LK_BUCKETS fixed sub-buckets of
 * ceil(window / LK_BUCKETS) seconds: a failure counts for between 7/8 and
 * 8/8 of the window. Keys longer than LK_KEY_MAX bytes are truncated.
 *
 * Must never: log, allocate per check, or hold two shard locks at once.
 */
#include "auth/lockout.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/secmem.h"

#define LK_SHARDS	 64
#define LK_TABLE_MAX	 32768 /* entries per table (users, sources) */
#define LK_SHARD_MAX	 (LK_TABLE_MAX / LK_SHARDS)
#define LK_SHARD_BUCKETS 256
#define LK_BUCKETS	 8
#define LK_KNOWN_MAX	 8     /* known-good sources remembered per user */
#define LK_KNOWN_TTL	 86400 /* seconds a success vouches for a source */
#define LK_SRC_MAX	 63    /* longer sources are not remembered */
#define LK_KEY_MAX	 253   /* + "u:" + NUL = lockout_entry.key */
#define LK_EVICT_SCAN	 64

struct lk_known {
	uint64_t until;
	uint8_t len;
	char src[LK_SRC_MAX];
};

struct lk_entry {
	struct lk_entry *next;
	struct lk_entry *lru_prev, *lru_next; /* lru_prev: more recently used */
	uint64_t hash;
	uint64_t lock_until;	/* locked while now < lock_until */
	uint64_t last_lock_end; /* for escalation */
	uint64_t epoch;		/* sub-bucket index of the newest count */
	uint32_t last_dur;
	uint32_t width; /* sub-bucket seconds the counts were made with */
	uint16_t cnt[LK_BUCKETS];
	struct lk_known *known; /* users only; LK_KNOWN_MAX slots */
	uint8_t keylen;
	char key[];
};

struct lk_shard {
	pthread_mutex_t mu;
	/* changed under mu; atomic so that a check can skip an empty shard
	 * (the usual case: nobody failing) without taking mu */
	_Atomic size_t count;
	struct lk_entry *lru_head, *lru_tail; /* most / least recently used */
	struct lk_entry *buckets[LK_SHARD_BUCKETS];
};

struct lk_table {
	bool is_source;
	struct lk_shard shards[LK_SHARDS];
};

struct lockout {
	pthread_rwlock_t pol_mu;
	struct lockout_policy pol;
	uint64_t seed;
	/* no entry's lock_until is later than this (it only grows): at or
	 * after it nothing is locked, and a check takes no shard lock even
	 * when the user table holds the known-good sources of every user */
	_Atomic uint64_t lock_horizon;
	struct lk_table users;
	struct lk_table sources;
};

/* ---- helpers ---------------------------------------------------------- */

static struct str key_clip(struct str k)
{
	if (!k.p)
		k = STR_LIT("");
	if (k.len > LK_KEY_MAX)
		k.len = LK_KEY_MAX;
	return k;
}

static uint64_t key_hash(const struct lockout *l, struct str k)
{
	uint64_t h = 0xcbf29ce484222325ull ^ l->seed;

	for (size_t i = 0; i < k.len; i++) {
		h ^= (unsigned char)k.p[i];
		h *= 0x100000001b3ull;
	}
	h ^= h >> 29; /* FNV's low bits are weak: fold the high ones in */
	return h;
}

static struct lk_shard *shard_of(struct lk_table *t, uint64_t h)
{
	return &t->shards[(h >> 8) % LK_SHARDS];
}

static struct lk_entry **bucket_of(struct lk_shard *s, uint64_t h)
{
	return &s->buckets[h % LK_SHARD_BUCKETS];
}

static struct lk_entry *entry_find(struct lk_shard *s, uint64_t h, struct str k)
{
	for (struct lk_entry *e = *bucket_of(s, h); e; e = e->next) {
		/* user names and addresses are not secrets */
		if (e->hash == h && str_eq(str_make(e->key, e->keylen), k))
			return e;
	}
	return NULL;
}

static void entry_free(struct lk_entry *e)
{
	free(e->known);
	free(e);
}

static uint32_t width_for(uint32_t window)
{
	uint32_t w = window / LK_BUCKETS + (window % LK_BUCKETS ? 1 : 0);
	return w ? w : 1;
}

/* Move the sub-buckets forward to now, dropping counts that left the window. */
static void window_advance(struct lk_entry *e, uint64_t now, uint32_t width)
{
	uint64_t idx = now / width;

	if (e->width != width) {
		memset(e->cnt, 0, sizeof(e->cnt));
		e->width = width;
		e->epoch = idx;
		return;
	}
	if (idx <= e->epoch)
		return; /* same sub-bucket (or a clock that went back) */
	if (idx - e->epoch >= LK_BUCKETS) {
		memset(e->cnt, 0, sizeof(e->cnt));
	} else {
		for (uint64_t i = e->epoch + 1; i <= idx; i++)
			e->cnt[i % LK_BUCKETS] = 0;
	}
	e->epoch = idx;
}

static uint32_t window_count(struct lk_entry *e, uint64_t now, uint32_t width)
{
	uint32_t n = 0;

	window_advance(e, now, width);
	for (int i = 0; i < LK_BUCKETS; i++)
		n += e->cnt[i];
	return n;
}

static uint32_t window_add(struct lk_entry *e, uint64_t now, uint32_t width)
{
	uint16_t *c;

	window_advance(e, now, width);
	c = &e->cnt[e->epoch % LK_BUCKETS];
	if (*c < UINT16_MAX)
		(*c)++;
	return window_count(e, now, width);
}

static bool is_locked(const struct lk_entry *e, uint64_t now)
{
	return e && now < e->lock_until;
}

static bool known_has(const struct lk_entry *e, struct str src, uint64_t now)
{
	if (!e || !e->known || !src.len || src.len > LK_SRC_MAX)
		return false;
	for (int i = 0; i < LK_KNOWN_MAX; i++) {
		const struct lk_known *k = &e->known[i];
		if (now < k->until && k->len == src.len && memcmp(k->src, src.p, src.len) == 0)
			return true;
	}
	return false;
}

/* Remember src as a known-good source of user e until now + 24 h. */
static void known_add(struct lk_entry *e, struct str src, uint64_t now)
{
	struct lk_known *slot = NULL;

	if (!src.len || src.len > LK_SRC_MAX)
		return;
	if (!e->known) {
		e->known = calloc(LK_KNOWN_MAX, sizeof(*e->known));
		if (!e->known)
			return;
	}
	for (int i = 0; i < LK_KNOWN_MAX; i++) {
		struct lk_known *k = &e->known[i];
		if (k->len == src.len && memcmp(k->src, src.p, src.len) == 0) {
			slot = k;
			break;
		}
		if (!slot || k->until < slot->until)
			slot = k; /* oldest (or expired, until <= now) */
	}
	memcpy(slot->src, src.p, src.len);
	slot->len = (uint8_t)src.len;
	slot->until = now + LK_KNOWN_TTL;
}

static void lru_unlink(struct lk_shard *s, struct lk_entry *e)
{
	if (e->lru_prev)
		e->lru_prev->lru_next = e->lru_next;
	else
		s->lru_head = e->lru_next;
	if (e->lru_next)
		e->lru_next->lru_prev = e->lru_prev;
	else
		s->lru_tail = e->lru_prev;
	e->lru_prev = e->lru_next = NULL;
}

static void lru_push(struct lk_shard *s, struct lk_entry *e)
{
	e->lru_prev = NULL;
	e->lru_next = s->lru_head;
	if (s->lru_head)
		s->lru_head->lru_prev = e;
	s->lru_head = e;
	if (!s->lru_tail)
		s->lru_tail = e;
}

static void entry_touch(struct lk_shard *s, struct lk_entry *e)
{
	if (s->lru_head != e) {
		lru_unlink(s, e);
		lru_push(s, e);
	}
}

/* Unlink e from its chain and the LRU list, and free it. */
static void entry_remove(struct lk_shard *s, struct lk_entry *e)
{
	struct lk_entry **pp = bucket_of(s, e->hash);

	while (*pp && *pp != e)
		pp = &(*pp)->next;
	if (*pp)
		*pp = e->next;
	lru_unlink(s, e);
	entry_free(e);
	s->count--;
}

/* Make room: the least recently used unlocked entry among the oldest few. */
static void shard_evict_one(struct lk_shard *s, uint64_t now)
{
	struct lk_entry *e = s->lru_tail, *victim = s->lru_tail;

	for (int i = 0; e && i < LK_EVICT_SCAN; i++, e = e->lru_prev) {
		if (!is_locked(e, now)) {
			victim = e;
			break;
		}
	}
	if (victim)
		entry_remove(s, victim);
}

/* Find or create the entry for k in a locked shard and mark it used; NULL
 * if out of memory. */
static struct lk_entry *entry_get(struct lk_shard *s, uint64_t h, struct str k, uint64_t now,
				  uint32_t width)
{
	struct lk_entry *e = entry_find(s, h, k), **b;

	if (e) {
		entry_touch(s, e);
		return e;
	}
	if (s->count >= LK_SHARD_MAX)
		shard_evict_one(s, now);
	e = calloc(1, sizeof(*e) + k.len + 1);
	if (!e)
		return NULL;
	e->hash = h;
	e->keylen = (uint8_t)k.len;
	if (k.len)
		memcpy(e->key, k.p, k.len);
	e->width = width;
	e->epoch = now / width;
	b = bucket_of(s, h);
	e->next = *b;
	*b = e;
	lru_push(s, e);
	s->count++;
	return e;
}

/* Entry e (in a locked shard) is locked until until. */
static void lock_set(struct lockout *l, struct lk_entry *e, uint64_t until)
{
	uint64_t h = atomic_load_explicit(&l->lock_horizon, memory_order_relaxed);

	e->lock_until = until;
	while (h < until &&
	       !atomic_compare_exchange_weak_explicit(&l->lock_horizon, &h, until,
						      memory_order_release, memory_order_relaxed))
		;
}

static void policy_get(struct lockout *l, struct lockout_policy *p)
{
	pthread_rwlock_rdlock(&l->pol_mu);
	*p = l->pol;
	pthread_rwlock_unlock(&l->pol_mu);
}

/* Longest user lock: user_max, but never shorter than the first lock. */
static uint32_t user_cap(const struct lockout_policy *p)
{
	return p->user_max > p->user_duration ? p->user_max : p->user_duration;
}

/* ---- lifecycle -------------------------------------------------------- */

static void table_init(struct lk_table *t, bool is_source, int *ok)
{
	t->is_source = is_source;
	for (int i = 0; i < LK_SHARDS; i++) {
		if (pthread_mutex_init(&t->shards[i].mu, NULL) != 0)
			*ok = 0;
	}
}

static size_t table_clear(struct lk_table *t, bool destroy)
{
	size_t n = 0;

	for (int i = 0; i < LK_SHARDS; i++) {
		struct lk_shard *s = &t->shards[i];
		if (!destroy)
			pthread_mutex_lock(&s->mu);
		for (int b = 0; b < LK_SHARD_BUCKETS; b++) {
			while (s->buckets[b]) {
				struct lk_entry *e = s->buckets[b];
				s->buckets[b] = e->next;
				entry_free(e);
				n++;
			}
		}
		s->count = 0;
		s->lru_head = s->lru_tail = NULL;
		if (destroy)
			pthread_mutex_destroy(&s->mu);
		else
			pthread_mutex_unlock(&s->mu);
	}
	return n;
}

struct lockout *lockout_new(const struct lockout_policy *p)
{
	struct lockout *l;
	int ok = 1;

	if (!p)
		return NULL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->pol = *p;
	/* the seed only spreads keys; a failure here costs balance, not safety */
	(void)secmem_random(&l->seed, sizeof(l->seed));
	if (pthread_rwlock_init(&l->pol_mu, NULL) != 0) {
		free(l);
		return NULL;
	}
	table_init(&l->users, false, &ok);
	table_init(&l->sources, true, &ok);
	if (!ok) {
		lockout_free(l);
		return NULL;
	}
	return l;
}

void lockout_free(struct lockout *l)
{
	if (!l)
		return;
	table_clear(&l->users, true);
	table_clear(&l->sources, true);
	pthread_rwlock_destroy(&l->pol_mu);
	free(l);
}

void lockout_set_policy(struct lockout *l, const struct lockout_policy *p)
{
	if (!l || !p)
		return;
	pthread_rwlock_wrlock(&l->pol_mu);
	l->pol = *p;
	pthread_rwlock_unlock(&l->pol_mu);
}

/* ---- decisions -------------------------------------------------------- */

/* Source throttled? Seconds left into *left. */
static bool source_locked(struct lockout *l, struct str source, uint64_t now, uint32_t *left)
{
	uint64_t h = key_hash(l, source);
	struct lk_shard *s = shard_of(&l->sources, h);
	struct lk_entry *e;
	bool locked;

	if (!source.len || atomic_load_explicit(&s->count, memory_order_acquire) == 0)
		return false;
	pthread_mutex_lock(&s->mu);
	e = entry_find(s, h, source);
	locked = is_locked(e, now);
	if (locked && left)
		*left = (uint32_t)(e->lock_until - now);
	pthread_mutex_unlock(&s->mu);
	return locked;
}

/* User locked for this source (a known-good source is let through)? */
static bool user_locked(struct lockout *l, struct str user, struct str source, uint64_t now,
			uint32_t *left)
{
	uint64_t h = key_hash(l, user);
	struct lk_shard *s = shard_of(&l->users, h);
	struct lk_entry *e;
	bool locked;

	if (atomic_load_explicit(&s->count, memory_order_acquire) == 0)
		return false;
	pthread_mutex_lock(&s->mu);
	e = entry_find(s, h, user);
	locked = is_locked(e, now) && !known_has(e, source, now);
	if (locked && left)
		*left = (uint32_t)(e->lock_until - now);
	pthread_mutex_unlock(&s->mu);
	return locked;
}

enum lockout_state lockout_check(struct lockout *l, struct str user, struct str source,
				 uint64_t now, uint32_t *retry_after)
{
	uint32_t left = 0;
	enum lockout_state st = LOCKOUT_NONE;

	if (!l)
		return LOCKOUT_NONE;
	user = key_clip(user);
	source = key_clip(source);
	/* past the horizon nothing is locked: no lookup */
	if (now < atomic_load_explicit(&l->lock_horizon, memory_order_acquire)) {
		if (source_locked(l, source, now, &left))
			st = LOCKOUT_SOURCE;
		else if (user_locked(l, user, source, now, &left))
			st = LOCKOUT_USER;
	}
	if (retry_after)
		*retry_after = st == LOCKOUT_NONE ? 0 : left;
	return st;
}

/* Count a failure for source; true if the source was already throttled
 * (the failure then does not count against the user). */
static bool source_fail(struct lockout *l, const struct lockout_policy *p, struct str source,
			uint64_t now)
{
	uint64_t h = key_hash(l, source);
	struct lk_shard *s = shard_of(&l->sources, h);
	uint32_t width = width_for(p->source_window);
	struct lk_entry *e;
	bool was_locked = false;

	if (!source.len)
		return false;
	pthread_mutex_lock(&s->mu);
	e = entry_get(s, h, source, now, width);
	if (e) {
		if (is_locked(e, now)) {
			was_locked = true;
		} else if (window_add(e, now, width) >= p->source_failures && p->source_failures) {
			lock_set(l, e, now + p->source_duration);
			memset(e->cnt, 0, sizeof(e->cnt));
		}
	}
	pthread_mutex_unlock(&s->mu);
	return was_locked;
}

static void user_fail(struct lockout *l, const struct lockout_policy *p, struct str user,
		      uint64_t now)
{
	uint64_t h = key_hash(l, user);
	struct lk_shard *s = shard_of(&l->users, h);
	uint32_t width = width_for(p->user_window), cap = user_cap(p);
	struct lk_entry *e;

	pthread_mutex_lock(&s->mu);
	e = entry_get(s, h, user, now, width);
	if (e) {
		if (!is_locked(e, now) && window_add(e, now, width) >= p->user_failures &&
		    p->user_failures) {
			uint64_t dur = p->user_duration;
			/* locked again within lock_max of the last lock: double */
			if (e->last_dur && now - e->last_lock_end <= cap)
				dur = (uint64_t)e->last_dur * 2;
			if (dur > cap)
				dur = cap;
			lock_set(l, e, now + dur);
			e->last_lock_end = e->lock_until;
			e->last_dur = (uint32_t)dur;
			memset(e->cnt, 0, sizeof(e->cnt));
		}
	}
	pthread_mutex_unlock(&s->mu);
}

enum lockout_state lockout_fail(struct lockout *l, struct str user, struct str source, uint64_t now)
{
	struct lockout_policy p;

	if (!l)
		return LOCKOUT_NONE;
	user = key_clip(user);
	source = key_clip(source);
	policy_get(l, &p);
	if (!source_fail(l, &p, source, now))
		user_fail(l, &p, user, now);
	return lockout_check(l, user, source, now, NULL);
}

void lockout_success(struct lockout *l, struct str user, struct str source, uint64_t now)
{
	struct lockout_policy p;
	uint64_t h;
	struct lk_shard *s;
	struct lk_entry *e;

	if (!l)
		return;
	user = key_clip(user);
	source = key_clip(source);
	policy_get(l, &p);
	h = key_hash(l, user);
	s = shard_of(&l->users, h);
	pthread_mutex_lock(&s->mu);
	e = entry_get(s, h, user, now, width_for(p.user_window));
	if (e) {
		memset(e->cnt, 0, sizeof(e->cnt));
		known_add(e, source, now);
	}
	pthread_mutex_unlock(&s->mu);
}

/* ---- administration --------------------------------------------------- */

static void table_list(struct lk_table *t, uint64_t now, uint32_t width,
		       void (*fn)(void *ctx, const struct lockout_entry *e), void *ctx)
{
	for (int i = 0; i < LK_SHARDS; i++) {
		struct lk_shard *s = &t->shards[i];
		struct lockout_entry *out = NULL;
		size_t n = 0;

		pthread_mutex_lock(&s->mu);
		if (s->count)
			out = calloc(s->count, sizeof(*out));
		for (int b = 0; out && b < LK_SHARD_BUCKETS; b++) {
			for (struct lk_entry *e = s->buckets[b]; e; e = e->next) {
				uint32_t fails = window_count(e, now, width);
				if (!fails && !is_locked(e, now))
					continue;
				out[n].is_source = t->is_source;
				snprintf(out[n].key, sizeof(out[n].key), "%c:%.*s",
					 t->is_source ? 's' : 'u', (int)e->keylen, e->key);
				out[n].failures = fails;
				out[n].locked_for =
				    is_locked(e, now) ? (uint32_t)(e->lock_until - now) : 0;
				n++;
			}
		}
		pthread_mutex_unlock(&s->mu);
		/* fn runs without our locks: it may call back into lockout */
		for (size_t k = 0; k < n; k++)
			fn(ctx, &out[k]);
		free(out);
	}
}

void lockout_list(struct lockout *l, uint64_t now,
		  void (*fn)(void *ctx, const struct lockout_entry *e), void *ctx)
{
	struct lockout_policy p;

	if (!l || !fn)
		return;
	policy_get(l, &p);
	table_list(&l->users, now, width_for(p.user_window), fn, ctx);
	table_list(&l->sources, now, width_for(p.source_window), fn, ctx);
}

static int table_remove(struct lockout *l, struct lk_table *t, struct str k)
{
	uint64_t h;
	struct lk_shard *s;
	struct lk_entry *e;
	int n = 0;

	k = key_clip(k);
	h = key_hash(l, k);
	s = shard_of(t, h);
	pthread_mutex_lock(&s->mu);
	e = entry_find(s, h, k);
	if (e) {
		entry_remove(s, e);
		n = 1;
	}
	pthread_mutex_unlock(&s->mu);
	return n;
}

int lockout_clear(struct lockout *l, struct str key)
{
	size_t n;

	if (!l || !key.p)
		return 0;
	if (str_eq_cstr(key, "*")) {
		n = table_clear(&l->users, false) + table_clear(&l->sources, false);
		return n > INT32_MAX ? INT32_MAX : (int)n;
	}
	if (key.len >= 2 && key.p[1] == ':' && (key.p[0] == 'u' || key.p[0] == 's')) {
		struct str rest = str_make(key.p + 2, key.len - 2);
		return table_remove(l, key.p[0] == 's' ? &l->sources : &l->users, rest);
	}
	/* a bare name: whichever table has it */
	return table_remove(l, &l->users, key) + table_remove(l, &l->sources, key);
}
