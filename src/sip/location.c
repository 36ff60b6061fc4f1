/*
 * Sharded in-memory location table; see location.h.
 * Must never call out (store, network, log) while holding a shard lock.
 */
#include "sip/location.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

enum { S_KEY, S_CONTACT, S_URI, S_INSTANCE, S_PATH, S_CALLID, S_UA, S_SA, S_COUNT };

struct loc_packed {
	int64_t expires;
	int64_t updated;
	uint64_t conn_id; /* the flow, packed: see flow_pack */
	uint32_t cseq;
	int32_t reg_id;
	/* expires - stored_expires, or STORED_UNKNOWN */
	uint32_t stored_lag;
	/* order of the puts: among bindings updated in the same second, the
	 * one put last is the newest (wraps after 2^32 puts; only ever
	 * compared between equal `updated`) */
	uint32_t seq;
	uint32_t scope_id; /* IPv6 */
	uint16_t len[S_COUNT];
	uint16_t port; /* network order */
	int16_t listen_idx;
	uint8_t transport;
	uint8_t family; /* 0, 4 or 6 */
	uint8_t addr[16];
	/* the key and the Contact are usually the URI itself and "<URI>":
	 * then they are not stored again (100,000 bindings, ~100 bytes each) */
	uint8_t derived; /* DERIVED_KEY | DERIVED_CONTACT */
	char data[];	 /* strings back to back, each NUL-terminated */
};

enum { DERIVED_KEY = 1, DERIVED_CONTACT = 2 };

#define STORED_UNKNOWN UINT32_MAX

struct location_aor {
	struct location_aor *next;
	uint64_t hash;
	size_t aor_len;
	size_t n, cap;
	struct loc_packed **b;
	char aor[]; /* NUL-terminated */
};

struct shard {
	pthread_mutex_t mu;
	struct location_aor **buckets;
	size_t nbuckets; /* power of two */
	size_t naors;
	/* no binding of this shard expires before this (a lower bound: kept
	 * by location_update, made exact by each sweep), so the once-a-second
	 * sweep skips shards with nothing due */
	int64_t min_expires;
};

static struct shard *shards;
static size_t nshards;
static _Atomic size_t total;
static _Atomic uint32_t put_seq; /* loc_packed.seq */

static uint64_t hash_str(struct str s)
{
	/* FNV-1a 64: the AOR is not attacker-chosen beyond registered users */
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < s.len; i++) {
		h ^= (unsigned char)s.p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

int location_init(size_t shards_log2)
{
	nshards = (size_t)1 << shards_log2;
	shards = calloc(nshards, sizeof(*shards));
	if (!shards)
		return -1;
	for (size_t i = 0; i < nshards; i++) {
		pthread_mutex_init(&shards[i].mu, NULL);
		/* 256 x 256 buckets: 65,536 AORs before any shard rehashes */
		shards[i].nbuckets = 256;
		shards[i].min_expires = INT64_MAX;
		shards[i].buckets = calloc(256, sizeof(struct location_aor *));
		if (!shards[i].buckets)
			return -1;
	}
	return 0;
}

static void aor_free(struct location_aor *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->b[i]);
	free(a->b);
	free(a);
}

void location_shutdown(void)
{
	for (size_t i = 0; i < nshards; i++) {
		struct shard *sh = &shards[i];
		for (size_t j = 0; j < sh->nbuckets; j++) {
			struct location_aor *a = sh->buckets[j], *nx;
			for (; a; a = nx) {
				nx = a->next;
				aor_free(a);
			}
		}
		free(sh->buckets);
		pthread_mutex_destroy(&sh->mu);
	}
	free(shards);
	shards = NULL;
	nshards = 0;
	total = 0;
}

size_t location_count(void)
{
	return total;
}

static struct shard *shard_of(uint64_t h)
{
	return &shards[(h >> 32) & (nshards - 1)];
}

static struct location_aor **slot_of(struct shard *sh, uint64_t h, struct str aor)
{
	struct location_aor **pp = &sh->buckets[h & (sh->nbuckets - 1)];
	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && (*pp)->aor_len == aor.len &&
		    memcmp((*pp)->aor, aor.p, aor.len) == 0)
			return pp;
	return pp;
}

static void shard_grow(struct shard *sh)
{
	size_t nb = sh->nbuckets * 2;
	struct location_aor **nbk = calloc(nb, sizeof(*nbk));
	if (!nbk)
		return; /* stay at the current size: slower, still correct */
	for (size_t i = 0; i < sh->nbuckets; i++) {
		struct location_aor *a = sh->buckets[i], *nx;
		for (; a; a = nx) {
			nx = a->next;
			a->next = nbk[a->hash & (nb - 1)];
			nbk[a->hash & (nb - 1)] = a;
		}
	}
	free(sh->buckets);
	sh->buckets = nbk;
	sh->nbuckets = nb;
}

static const char *pk_str(const struct loc_packed *p, int which)
{
	const char *s = p->data;
	for (int i = 0; i < which; i++)
		s += p->len[i] + 1;
	return s;
}

/*
 * A flow in 40 bytes instead of struct location_flow's 56 (100,000
 * bindings: 1.6 MB): the address by family, the rest in small fields. A
 * flow of another family (none in practice) keeps only its transport,
 * connection and listener.
 */
static void flow_pack(const struct location_flow *f, struct loc_packed *p)
{
	p->conn_id = f->conn_id;
	p->transport = (uint8_t)f->transport;
	p->listen_idx = (int16_t)f->listen_idx;
	p->family = 0;
	p->port = 0;
	p->scope_id = 0;
	memset(p->addr, 0, sizeof(p->addr));
	if (f->addr.sa.sa_family == AF_INET && f->addrlen >= sizeof(struct sockaddr_in)) {
		p->family = 4;
		p->port = f->addr.in.sin_port;
		memcpy(p->addr, &f->addr.in.sin_addr, 4);
	} else if (f->addr.sa.sa_family == AF_INET6 && f->addrlen >= sizeof(struct sockaddr_in6)) {
		p->family = 6;
		p->port = f->addr.in6.sin6_port;
		p->scope_id = f->addr.in6.sin6_scope_id;
		memcpy(p->addr, &f->addr.in6.sin6_addr, 16);
	}
}

static void flow_unpack(const struct loc_packed *p, struct location_flow *f)
{
	memset(f, 0, sizeof(*f));
	f->conn_id = p->conn_id;
	f->transport = p->transport;
	f->listen_idx = p->listen_idx;
	if (p->family == 4) {
		f->addr.in.sin_family = AF_INET;
		f->addr.in.sin_port = p->port;
		memcpy(&f->addr.in.sin_addr, p->addr, 4);
		f->addrlen = sizeof(struct sockaddr_in);
	} else if (p->family == 6) {
		f->addr.in6.sin6_family = AF_INET6;
		f->addr.in6.sin6_port = p->port;
		f->addr.in6.sin6_scope_id = p->scope_id;
		memcpy(&f->addr.in6.sin6_addr, p->addr, 16);
		f->addrlen = sizeof(struct sockaddr_in6);
	}
}

static void unpack(const struct location_aor *a, const struct loc_packed *p,
		   struct location_binding *b)
{
	char *dst[S_COUNT] = {b->key,  b->contact, b->contact_uri, b->instance,
			      b->path, b->call_id, b->user_agent,  b->sa_opaque};
	size_t cap[S_COUNT] = {sizeof(b->key),	      sizeof(b->contact),  sizeof(b->contact_uri),
			       sizeof(b->instance),   sizeof(b->path),	   sizeof(b->call_id),
			       sizeof(b->user_agent), sizeof(b->sa_opaque)};
	const char *s = p->data;

	str_copy_cstr(b->aor, sizeof(b->aor), a->aor);
	for (int i = 0; i < S_COUNT; i++) {
		size_t n = p->len[i] < cap[i] ? p->len[i] : cap[i] - 1;
		memcpy(dst[i], s, n);
		dst[i][n] = '\0';
		s += p->len[i] + 1;
	}
	if (p->derived & DERIVED_KEY)
		memcpy(b->key, b->contact_uri, strlen(b->contact_uri) + 1);
	if (p->derived & DERIVED_CONTACT) {
		size_t n = strlen(b->contact_uri);
		b->contact[0] = '<';
		memcpy(b->contact + 1, b->contact_uri, n);
		b->contact[n + 1] = '>';
		b->contact[n + 2] = '\0';
	}
	b->expires = p->expires;
	b->updated = p->updated;
	b->stored_expires = p->stored_lag == STORED_UNKNOWN ? 0 : p->expires - p->stored_lag;
	b->cseq = p->cseq;
	b->reg_id = p->reg_id;
	flow_unpack(p, &b->flow);
}

static struct loc_packed *pack(const struct location_binding *b)
{
	const char *src[S_COUNT] = {b->key,  b->contact, b->contact_uri, b->instance,
				    b->path, b->call_id, b->user_agent,	 b->sa_opaque};
	const size_t caps[S_COUNT] = {
	    sizeof(b->key),  sizeof(b->contact), sizeof(b->contact_uri), sizeof(b->instance),
	    sizeof(b->path), sizeof(b->call_id), sizeof(b->user_agent),	 sizeof(b->sa_opaque)};
	size_t lens[S_COUNT], sum = 0;
	struct loc_packed *p;
	char *d;

	uint8_t derived = 0;

	for (int i = 0; i < S_COUNT; i++)
		lens[i] = strnlen(src[i], caps[i] - 1); /* never past the field */
	if (lens[S_KEY] == lens[S_URI] && memcmp(b->key, b->contact_uri, lens[S_KEY]) == 0) {
		derived |= DERIVED_KEY;
		lens[S_KEY] = 0;
	}
	if (lens[S_CONTACT] == lens[S_URI] + 2 && b->contact[0] == '<' &&
	    b->contact[lens[S_CONTACT] - 1] == '>' &&
	    memcmp(b->contact + 1, b->contact_uri, lens[S_URI]) == 0) {
		derived |= DERIVED_CONTACT;
		lens[S_CONTACT] = 0;
	}
	for (int i = 0; i < S_COUNT; i++)
		sum += lens[i] + 1;
	p = malloc(offsetof(struct loc_packed, data) + sum);
	if (!p)
		return NULL;
	p->derived = derived;
	p->expires = b->expires;
	p->updated = b->updated;
	p->seq = atomic_fetch_add(&put_seq, 1);
	p->stored_lag = b->stored_expires <= 0 || b->stored_expires > b->expires ||
				b->expires - b->stored_expires >= STORED_UNKNOWN
			    ? STORED_UNKNOWN
			    : (uint32_t)(b->expires - b->stored_expires);
	p->cseq = b->cseq;
	p->reg_id = b->reg_id;
	flow_pack(&b->flow, p);
	d = p->data;
	for (int i = 0; i < S_COUNT; i++) {
		p->len[i] = (uint16_t)lens[i];
		if (lens[i])
			memcpy(d, src[i], lens[i]);
		d[lens[i]] = '\0';
		d += lens[i] + 1;
	}
	return p;
}

static void drop_expired(struct location_aor *a, int64_t now)
{
	for (size_t i = 0; i < a->n;) {
		if (a->b[i]->expires <= now)
			location_aor_remove(a, i);
		else
			i++;
	}
}

int location_update(struct str aor, int64_t now, int (*fn)(void *ctx, struct location_aor *rec),
		    void *ctx)
{
	uint64_t h = hash_str(aor);
	struct shard *sh = shard_of(h);
	struct location_aor **pp, *a;
	int rc;

	pthread_mutex_lock(&sh->mu);
	pp = slot_of(sh, h, aor);
	a = *pp;
	if (!a) {
		a = calloc(1, sizeof(*a) + aor.len + 1);
		if (!a) {
			pthread_mutex_unlock(&sh->mu);
			return -1;
		}
		a->hash = h;
		a->aor_len = aor.len;
		memcpy(a->aor, aor.p, aor.len);
		*pp = a;
		sh->naors++;
	}
	drop_expired(a, now);
	rc = fn(ctx, a);
	for (size_t k = 0; k < a->n; k++)
		if (a->b[k]->expires < sh->min_expires)
			sh->min_expires = a->b[k]->expires;
	if (a->n == 0) {
		pp = slot_of(sh, h, aor);
		*pp = a->next;
		aor_free(a);
		sh->naors--;
	} else if (sh->naors > sh->nbuckets) {
		shard_grow(sh);
	}
	pthread_mutex_unlock(&sh->mu);
	return rc;
}

size_t location_aor_count(const struct location_aor *rec)
{
	return rec->n;
}

void location_aor_get(const struct location_aor *rec, size_t i, struct location_binding *out)
{
	unpack(rec, rec->b[i], out);
}

int64_t location_aor_contact(const struct location_aor *rec, size_t i, struct sbuf *b)
{
	const struct loc_packed *p = rec->b[i];

	if (p->derived & DERIVED_CONTACT) {
		sbuf_putc(b, '<');
		sbuf_put(b, pk_str(p, S_URI), p->len[S_URI]);
		sbuf_putc(b, '>');
	} else {
		sbuf_put(b, pk_str(p, S_CONTACT), p->len[S_CONTACT]);
	}
	return p->expires;
}

int location_aor_find(const struct location_aor *rec, const char *key)
{
	for (size_t i = 0; i < rec->n; i++)
		if (strcmp(pk_str(rec->b[i], rec->b[i]->derived & DERIVED_KEY ? S_URI : S_KEY),
			   key) == 0)
			return (int)i;
	return -1;
}

int location_aor_put(struct location_aor *rec, const struct location_binding *b)
{
	struct loc_packed *p = pack(b);
	int i;

	if (!p)
		return -1;
	i = location_aor_find(rec, b->key);
	if (i >= 0) {
		free(rec->b[i]);
		rec->b[i] = p;
		return 0;
	}
	if (rec->n == rec->cap) {
		size_t nc = rec->cap ? rec->cap * 2 : 2;
		struct loc_packed **nb = realloc(rec->b, nc * sizeof(*nb));
		if (!nb) {
			free(p);
			return -1;
		}
		rec->b = nb;
		rec->cap = nc;
	}
	rec->b[rec->n++] = p;
	atomic_fetch_add(&total, 1);
	return 0;
}

void location_aor_remove(struct location_aor *rec, size_t i)
{
	free(rec->b[i]);
	rec->b[i] = rec->b[--rec->n];
	atomic_fetch_sub(&total, 1);
}

/* Is a newer than b: updated later, or in the same second and put later. */
static bool newer(const struct loc_packed *a, const struct loc_packed *b)
{
	if (a->updated != b->updated)
		return a->updated > b->updated;
	return (int32_t)(a->seq - b->seq) > 0;
}

size_t location_lookup(struct str aor, int64_t now, struct location_binding *out, size_t max)
{
	uint64_t h = hash_str(aor);
	struct shard *sh = shard_of(h);
	struct loc_packed *best[64];
	struct location_aor *a;
	size_t n = 0;

	if (max == 0)
		return 0;
	if (max > 64)
		max = 64;
	pthread_mutex_lock(&sh->mu);
	a = *slot_of(sh, h, aor);
	/* keep the max newest live bindings, newest first (insertion into a
	 * short sorted array: max is small, the AOR's bindings few) */
	for (size_t i = 0; a && i < a->n; i++) {
		struct loc_packed *p = a->b[i];
		size_t pos;
		if (p->expires <= now)
			continue;
		if (n == max && !newer(p, best[n - 1]))
			continue;
		pos = n < max ? n++ : n - 1;
		while (pos > 0 && newer(p, best[pos - 1])) {
			best[pos] = best[pos - 1];
			pos--;
		}
		best[pos] = p;
	}
	for (size_t i = 0; i < n; i++)
		unpack(a, best[i], &out[i]);
	pthread_mutex_unlock(&sh->mu);
	return n;
}

void location_foreach(void (*fn)(void *ctx, const struct location_binding *b), void *ctx)
{
	struct location_binding *b = malloc(sizeof(*b));
	if (!b)
		return;
	for (size_t i = 0; i < nshards; i++) {
		struct shard *sh = &shards[i];
		pthread_mutex_lock(&sh->mu);
		for (size_t j = 0; j < sh->nbuckets; j++)
			for (struct location_aor *a = sh->buckets[j]; a; a = a->next)
				for (size_t k = 0; k < a->n; k++) {
					unpack(a, a->b[k], b);
					fn(ctx, b);
				}
		pthread_mutex_unlock(&sh->mu);
	}
	free(b);
}

size_t location_expire(int64_t now, void (*fn)(void *ctx, const struct location_binding *b),
		       void *ctx)
{
	struct location_binding *gone = NULL;
	size_t removed = 0, cap = 0;

	for (size_t i = 0; i < nshards; i++) {
		struct shard *sh = &shards[i];
		size_t n = 0;
		int64_t min = INT64_MAX;
		pthread_mutex_lock(&sh->mu);
		if (sh->min_expires > now) {
			pthread_mutex_unlock(&sh->mu);
			continue;
		}
		for (size_t j = 0; j < sh->nbuckets; j++) {
			struct location_aor **pp = &sh->buckets[j];
			while (*pp) {
				struct location_aor *a = *pp;
				for (size_t k = 0; k < a->n;) {
					if (a->b[k]->expires > now) {
						if (a->b[k]->expires < min)
							min = a->b[k]->expires;
						k++;
						continue;
					}
					if (fn && n == cap) {
						size_t nc = cap ? cap * 2 : 64;
						struct location_binding *ng =
						    realloc(gone, nc * sizeof(*ng));
						if (!ng) {
							/* keep it; the next sweep retries */
							min = a->b[k]->expires;
							k++;
							continue;
						}
						gone = ng;
						cap = nc;
					}
					if (fn)
						unpack(a, a->b[k], &gone[n++]);
					location_aor_remove(a, k);
					removed++;
				}
				if (a->n == 0) {
					*pp = a->next;
					aor_free(a);
					sh->naors--;
				} else {
					pp = &a->next;
				}
			}
		}
		sh->min_expires = min;
		pthread_mutex_unlock(&sh->mu);
		/* told after the removal and outside the lock (it may log, queue) */
		for (size_t k = 0; k < n; k++)
			fn(ctx, &gone[k]);
	}
	free(gone);
	return removed;
}
