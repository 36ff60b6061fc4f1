/*
 * Stateless Digest nonces and their replay table. See nonce.h.
 *
 * A nonce is base64url(stamp || MAC16), MAC16 = the first 16 bytes of
 * vault_mac("digest-nonce", stamp || realm): 24 bytes, 32 characters. The
 * 8-byte stamp is the issue time in unix seconds (32 bits, big-endian, good
 * until 2106) followed by a 32-bit serial (a per-process counter started at a
 * random value). The serial makes every challenge's nonce unique: with the
 * time alone, all clients challenged in the same second would share one
 * nonce and therefore one nc space, and their first requests would collide
 * as replays (RFC 7616 §3.3 wants a nonce unique per 401).
 *
 * The replay table is split into shards chosen by the first MAC byte; each
 * shard is a chained hash (bucket heads and links are 32-bit indexes into a
 * slab of entries that grows by doubling up to the shard's share of the
 * capacity). An entry is 40 bytes: the MAC16 (the nonce's identity), its
 * timestamp, the highest nc seen and a 64-bit window of the nc values below
 * it. A no-qop use stores highest = UINT32_MAX with a full window, so every
 * later use of that nonce is a replay.
 *
 * Entries die when the nonce expires (ts + lifetime). When a shard is full of
 * live entries it evicts at least an eighth of them, oldest timestamps first,
 * and raises the table's horizon past the evicted timestamps: a nonce issued
 * before the horizon is STALE, so an evicted nonce can never be accepted
 * again. Time inside a shard never goes backwards (the largest "now" seen is
 * used), so two callers with slightly different clocks cannot disagree about
 * whether an entry was purged.
 *
 * Must never: log, keep a lock while calling the vault, or accept a nonce
 * whose MAC it has not checked in constant time.
 */
#include "auth/nonce.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/secmem.h"
#include "vault/vault.h"

#define NONCE_RAW_LEN	  24
#define NONCE_MAC_LEN	  16
#define NONCE_REALM_MAX	  512 /* DIGEST_MAX_FIELD: no longer realm can arrive */
#define NONCE_FUTURE_SKEW 30  /* seconds a pool peer's clock may run ahead */
#define NONCE_SHARDS	  64
#define NONCE_SLAB_MIN	  64
#define NONCE_NIL	  0u /* link value for "none"; links are index + 1 */

static const char nonce_purpose[] = "digest-nonce";

static uint32_t serial_next;
static pthread_once_t serial_once = PTHREAD_ONCE_INIT;

static void serial_seed(void)
{
	uint32_t seed = 0;

	/* a random start keeps the servers of a pool apart; failure only
	 * makes pool-wide collisions likelier, never a nonce forgeable */
	(void)secmem_random(&seed, sizeof(seed));
	__atomic_store_n(&serial_next, seed, __ATOMIC_RELAXED);
}

static uint32_t serial_take(void)
{
	pthread_once(&serial_once, serial_seed);
	return __atomic_fetch_add(&serial_next, 1, __ATOMIC_RELAXED);
}

struct nonce_entry {
	uint8_t mac[NONCE_MAC_LEN];
	int64_t ts;
	uint64_t window; /* bit i: highest - i was used */
	uint32_t highest;
	uint32_t next; /* chain or free list link, index + 1 */
};

struct nonce_shard {
	pthread_mutex_t mu;
	struct nonce_entry *ents;
	uint32_t *buckets; /* heads, index + 1 */
	size_t n_alloc;	   /* slab size */
	size_t used;	   /* slab high-water mark */
	size_t count;	   /* live entries */
	size_t cap;	   /* most entries this shard may hold */
	size_t nbuckets;   /* power of two */
	uint32_t free_head;
	int64_t now_max;
};

struct nonce_table {
	_Atomic uint32_t lifetime; /* changed by nonce_table_set_lifetime on reload */
	unsigned nshards;	   /* power of two */
	int64_t horizon;	   /* atomic: nonces with ts < horizon are stale */
	struct nonce_shard shards[];
};

/* ---- encoding --------------------------------------------------------- */

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* MAC16 of stamp || realm into mac. 0 or -1 (vault not ready, realm too long). */
static int nonce_mac(const uint8_t stamp[8], struct str realm, uint8_t mac[NONCE_MAC_LEN])
{
	uint8_t data[8 + NONCE_REALM_MAX], full[32];
	int rc;

	if (realm.len > NONCE_REALM_MAX || (!realm.p && realm.len))
		return -1;
	memcpy(data, stamp, 8);
	if (realm.len)
		memcpy(data + 8, realm.p, realm.len);
	rc = vault_mac(nonce_purpose, data, 8 + realm.len, full);
	memcpy(mac, full, NONCE_MAC_LEN);
	secmem_wipe(full, sizeof(full));
	return rc;
}

int nonce_from_stamp(struct str realm, uint64_t stamp, char *out, size_t cap)
{
	uint8_t raw[NONCE_RAW_LEN];
	char b64[NONCE_LEN + 1];

	if (!out || cap < NONCE_LEN + 1)
		return -1;
	put_be64(raw, stamp);
	if (nonce_mac(raw, realm, raw + 8) < 0)
		return -1;
	/* 24 bytes encode to exactly 32 characters: no padding to strip */
	if (EVP_EncodeBlock((unsigned char *)b64, raw, NONCE_RAW_LEN) != NONCE_LEN)
		return -1;
	for (int i = 0; i < NONCE_LEN; i++)
		out[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i]; /* RFC 4648 §5 */
	out[NONCE_LEN] = '\0';
	return 0;
}

uint64_t nonce_new_stamp(int64_t now)
{
	if (now <= 0 || now > (int64_t)UINT32_MAX)
		return 0;
	return (uint64_t)now << 32 | serial_take();
}

int nonce_make(struct str realm, int64_t now, char *out, size_t cap)
{
	uint64_t stamp = nonce_new_stamp(now);
	return stamp ? nonce_from_stamp(realm, stamp, out, cap) : -1;
}

/* base64url (no padding) of exactly NONCE_LEN characters into raw. */
static int nonce_decode(struct str nonce, uint8_t raw[NONCE_RAW_LEN])
{
	char b64[NONCE_LEN + 1];
	unsigned char tmp[NONCE_RAW_LEN + 3];

	if (nonce.len != NONCE_LEN || !nonce.p)
		return -1;
	for (int i = 0; i < NONCE_LEN; i++) {
		char ch = nonce.p[i];
		if (ch == '-')
			ch = '+';
		else if (ch == '_')
			ch = '/';
		else if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
			   (ch >= '0' && ch <= '9')))
			return -1;
		b64[i] = ch;
	}
	b64[NONCE_LEN] = '\0';
	if (EVP_DecodeBlock(tmp, (const unsigned char *)b64, NONCE_LEN) != NONCE_RAW_LEN)
		return -1;
	memcpy(raw, tmp, NONCE_RAW_LEN);
	return 0;
}

static int64_t horizon_get(const struct nonce_table *t)
{
	return __atomic_load_n(&t->horizon, __ATOMIC_ACQUIRE);
}

static void horizon_raise(struct nonce_table *t, int64_t to)
{
	int64_t cur = horizon_get(t);

	while (cur < to && !__atomic_compare_exchange_n(&t->horizon, &cur, to, false,
							__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		;
}

/* now - ts > lifetime, without overflow (ts is authentic but may be any value) */
static bool is_expired(int64_t ts, int64_t now, uint32_t lifetime)
{
	return ts < now && (uint64_t)now - (uint64_t)ts > lifetime;
}

static bool is_future(int64_t ts, int64_t now)
{
	return ts > now && (uint64_t)ts - (uint64_t)now > NONCE_FUTURE_SKEW;
}

/* Authentic (constant-time MAC check) and fresh at now; *ts and mac out. */
static _Thread_local char memo[NONCE_LEN];
static _Thread_local size_t memo_len;
static _Thread_local char memo_realm[128];
static _Thread_local size_t memo_realm_len;

static enum nonce_status verify(const struct nonce_table *t, struct str nonce, struct str realm,
				int64_t now, int64_t *ts, uint8_t mac[NONCE_MAC_LEN])
{
	uint8_t raw[NONCE_RAW_LEN], want[NONCE_MAC_LEN];
	bool ok;

	if (!t || nonce_decode(nonce, raw) < 0)
		return NONCE_INVALID;
	*ts = (int64_t)(get_be64(raw) >> 32);
	/* nonce_check and then nonce_use see the same nonce within one request:
	 * a per-thread memo of the last authentic one (and its realm) spares
	 * the second MAC. Only authentic nonces are remembered. */
	if (memo_len == nonce.len && memo_realm_len == realm.len && nonce.len <= sizeof(memo) &&
	    realm.len <= sizeof(memo_realm) && memcmp(memo, nonce.p, nonce.len) == 0 &&
	    memcmp(memo_realm, realm.p, realm.len) == 0) {
		memcpy(want, raw + 8, NONCE_MAC_LEN);
	} else if (nonce_mac(raw, realm, want) < 0) {
		return NONCE_INVALID;
	}
	ok = secmem_eq(want, raw + 8, NONCE_MAC_LEN);
	if (ok && nonce.len <= sizeof(memo) && realm.len <= sizeof(memo_realm)) {
		memcpy(memo, nonce.p, nonce.len);
		memo_len = nonce.len;
		memcpy(memo_realm, realm.p, realm.len);
		memo_realm_len = realm.len;
	}
	memcpy(mac, raw + 8, NONCE_MAC_LEN);
	if (!ok)
		return NONCE_INVALID;
	if (*ts < horizon_get(t) || is_future(*ts, now) || is_expired(*ts, now, t->lifetime))
		return NONCE_STALE;
	return NONCE_OK;
}

enum nonce_status nonce_check(const struct nonce_table *t, struct str nonce, struct str realm,
			      int64_t now)
{
	uint8_t mac[NONCE_MAC_LEN];
	int64_t ts;

	return verify(t, nonce, realm, now, &ts, mac);
}

/* ---- table ------------------------------------------------------------ */

void nonce_table_set_lifetime(struct nonce_table *t, uint32_t lifetime)
{
	atomic_store(&t->lifetime, lifetime);
}

struct nonce_table *nonce_table_new(size_t capacity, uint32_t lifetime)
{
	struct nonce_table *t;
	unsigned n = NONCE_SHARDS;

	if (capacity == 0)
		capacity = 1;
	if (capacity > (size_t)UINT32_MAX - 1)
		capacity = (size_t)UINT32_MAX - 1;
	while (n > 1 && n > capacity)
		n >>= 1;
	t = calloc(1, sizeof(*t) + n * sizeof(t->shards[0]));
	if (!t)
		return NULL;
	t->lifetime = lifetime;
	t->nshards = n;
	t->horizon = INT64_MIN;
	for (unsigned i = 0; i < n; i++) {
		struct nonce_shard *s = &t->shards[i];
		s->cap = capacity / n + (i < capacity % n ? 1 : 0);
		s->now_max = INT64_MIN;
		if (pthread_mutex_init(&s->mu, NULL) != 0) {
			while (i-- > 0)
				pthread_mutex_destroy(&t->shards[i].mu);
			free(t);
			return NULL;
		}
	}
	return t;
}

void nonce_table_free(struct nonce_table *t)
{
	if (!t)
		return;
	for (unsigned i = 0; i < t->nshards; i++) {
		pthread_mutex_destroy(&t->shards[i].mu);
		free(t->shards[i].ents);
		free(t->shards[i].buckets);
	}
	free(t);
}

size_t nonce_table_size(struct nonce_table *t)
{
	size_t n = 0;

	if (!t)
		return 0;
	for (unsigned i = 0; i < t->nshards; i++) {
		pthread_mutex_lock(&t->shards[i].mu);
		n += t->shards[i].count;
		pthread_mutex_unlock(&t->shards[i].mu);
	}
	return n;
}

static size_t bucket_of(const struct nonce_shard *s, const uint8_t *mac)
{
	uint64_t h;

	memcpy(&h, mac + 8, sizeof(h)); /* MAC bytes are uniform: no mixing needed */
	return (size_t)(h & (s->nbuckets - 1));
}

static struct nonce_entry *shard_find(struct nonce_shard *s, const uint8_t *mac)
{
	if (!s->nbuckets)
		return NULL;
	for (uint32_t i = s->buckets[bucket_of(s, mac)]; i != NONCE_NIL; i = s->ents[i - 1].next) {
		/* the MAC was already checked against our own; compared in
		 * constant time all the same, as every MAC is */
		if (secmem_eq(s->ents[i - 1].mac, mac, NONCE_MAC_LEN))
			return &s->ents[i - 1];
	}
	return NULL;
}

/* Remove every entry with ts < cutoff; returns how many. */
static size_t shard_remove_before(struct nonce_shard *s, int64_t cutoff)
{
	size_t removed = 0;

	for (size_t b = 0; b < s->nbuckets; b++) {
		uint32_t *link = &s->buckets[b];
		while (*link != NONCE_NIL) {
			uint32_t i = *link;
			struct nonce_entry *e = &s->ents[i - 1];
			if (e->ts < cutoff) {
				*link = e->next;
				e->next = s->free_head;
				s->free_head = i;
				removed++;
			} else {
				link = &e->next;
			}
		}
	}
	s->count -= removed;
	return removed;
}

/* Evict at least an eighth of the shard, oldest timestamps first; returns
 * the cutoff (every entry with ts < cutoff is gone). */
static int64_t shard_evict_oldest(struct nonce_shard *s)
{
	enum { NB = 64 };
	size_t hist[NB] = {0}, want = s->count / 8 + 1, sum = 0;
	int64_t lo = INT64_MAX, hi = INT64_MIN;
	uint64_t width;
	unsigned k;

	for (size_t b = 0; b < s->nbuckets; b++) {
		for (uint32_t i = s->buckets[b]; i != NONCE_NIL; i = s->ents[i - 1].next) {
			int64_t ts = s->ents[i - 1].ts;
			lo = ts < lo ? ts : lo;
			hi = ts > hi ? ts : hi;
		}
	}
	if (lo == INT64_MAX)
		return INT64_MIN;
	width = ((uint64_t)hi - (uint64_t)lo) / NB + 1;
	for (size_t b = 0; b < s->nbuckets; b++) {
		for (uint32_t i = s->buckets[b]; i != NONCE_NIL; i = s->ents[i - 1].next)
			hist[((uint64_t)s->ents[i - 1].ts - (uint64_t)lo) / width]++;
	}
	for (k = 0; k < NB - 1; k++) {
		sum += hist[k];
		if (sum >= want)
			break;
	}
	/* cutoff = lo + (k + 1) * width, clamped to hi + 1 */
	uint64_t span = (uint64_t)(k + 1) * width;
	int64_t cutoff = span > (uint64_t)hi - (uint64_t)lo ? hi + (hi < INT64_MAX ? 1 : 0)
							    : (int64_t)((uint64_t)lo + span);
	shard_remove_before(s, cutoff);
	return cutoff;
}

/* Rebuild the bucket array for n buckets (power of two). 0 or -1. */
static int shard_rehash(struct nonce_shard *s, size_t n)
{
	uint32_t *nb = calloc(n, sizeof(*nb));

	if (!nb)
		return -1;
	for (size_t b = 0; b < s->nbuckets; b++) {
		uint32_t i = s->buckets[b];
		while (i != NONCE_NIL) {
			struct nonce_entry *e = &s->ents[i - 1];
			uint32_t next = e->next;
			size_t nbk;
			uint64_t h;
			memcpy(&h, e->mac + 8, sizeof(h));
			nbk = (size_t)(h & (n - 1));
			e->next = nb[nbk];
			nb[nbk] = i;
			i = next;
		}
	}
	free(s->buckets);
	s->buckets = nb;
	s->nbuckets = n;
	return 0;
}

/* Grow the slab (and buckets) toward cap. 0 or -1 (at cap, or no memory). */
static int shard_grow(struct nonce_shard *s)
{
	size_t n = s->n_alloc ? s->n_alloc * 2 : NONCE_SLAB_MIN, nb = 1;
	struct nonce_entry *ne;

	if (s->n_alloc >= s->cap)
		return -1;
	if (n > s->cap)
		n = s->cap;
	while (nb < n)
		nb <<= 1;
	if (nb > s->nbuckets && shard_rehash(s, nb) < 0)
		return -1;
	ne = realloc(s->ents, n * sizeof(*ne));
	if (!ne)
		return -1;
	s->ents = ne;
	s->n_alloc = n;
	return 0;
}

/*
 * A free slot index (+1), making room if needed: expired entries go first,
 * then the slab grows, then the oldest live entries are evicted and the
 * horizon raised. NONCE_NIL if ts itself fell below the new horizon.
 */
static uint32_t shard_alloc(struct nonce_table *t, struct nonce_shard *s, int64_t now, int64_t ts)
{
	uint32_t i;

	if (s->free_head == NONCE_NIL && s->used == s->n_alloc) {
		/* expired: now - ts > lifetime, i.e. ts < now - lifetime */
		if (s->count && now > INT64_MIN + (int64_t)t->lifetime)
			shard_remove_before(s, now - (int64_t)t->lifetime);
		if (s->free_head == NONCE_NIL && shard_grow(s) < 0) {
			int64_t cutoff = shard_evict_oldest(s);
			horizon_raise(t, cutoff);
			if (ts < cutoff)
				return NONCE_NIL;
		}
	}
	if (s->free_head != NONCE_NIL) {
		i = s->free_head;
		s->free_head = s->ents[i - 1].next;
	} else if (s->used < s->n_alloc) {
		i = (uint32_t)++s->used;
	} else {
		return NONCE_NIL; /* cap 0 cannot happen: every shard holds >= 1 */
	}
	return i;
}

/* RFC 7616 §3.4: each nc once; a window of 64 tolerates reordering. */
static enum nonce_status entry_use(struct nonce_entry *e, uint32_t nc)
{
	uint32_t diff;

	if (nc == 0)
		return NONCE_REPLAY; /* no-qop nonces are single use */
	if (nc > e->highest) {
		uint32_t shift = nc - e->highest;
		e->window = shift >= 64 ? 1 : (e->window << shift) | 1;
		e->highest = nc;
		return NONCE_OK;
	}
	diff = e->highest - nc;
	if (diff >= 64 || (e->window & (1ull << diff)))
		return NONCE_REPLAY;
	e->window |= 1ull << diff;
	return NONCE_OK;
}

enum nonce_status nonce_use(struct nonce_table *t, struct str nonce, struct str realm, uint32_t nc,
			    int64_t now)
{
	uint8_t mac[NONCE_MAC_LEN];
	struct nonce_shard *s;
	struct nonce_entry *e;
	enum nonce_status st;
	int64_t ts;
	uint32_t i;

	st = verify(t, nonce, realm, now, &ts, mac);
	if (st != NONCE_OK)
		return st;
	s = &t->shards[mac[0] & (t->nshards - 1)];
	pthread_mutex_lock(&s->mu);
	if (now < s->now_max)
		now = s->now_max;
	s->now_max = now;
	/* again under the lock: an eviction in this shard raises the horizon
	 * before it unlocks, and time here never goes backwards */
	if (ts < horizon_get(t) || is_expired(ts, now, t->lifetime)) {
		st = NONCE_STALE;
		goto out;
	}
	e = shard_find(s, mac);
	if (e) {
		st = entry_use(e, nc);
		goto out;
	}
	i = shard_alloc(t, s, now, ts);
	if (i == NONCE_NIL) {
		st = NONCE_STALE;
		goto out;
	}
	e = &s->ents[i - 1];
	memcpy(e->mac, mac, NONCE_MAC_LEN);
	e->ts = ts;
	e->highest = nc ? nc : UINT32_MAX;
	e->window = nc ? 1 : UINT64_MAX;
	e->next = s->buckets[bucket_of(s, mac)];
	s->buckets[bucket_of(s, mac)] = i;
	s->count++;
	st = NONCE_OK;
out:
	pthread_mutex_unlock(&s->mu);
	return st;
}
