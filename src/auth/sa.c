/*
 * Security associations: a sharded table of reference-counted SAs
 * (sa.h has the lifecycle). Never logs and never sees key material: the
 * mechanism context is opaque and only its own sign / verify / free touch it.
 *
 * Locks, outermost first (nothing is taken in the other direction):
 *   shard->lock   bucket chains and sa->in_table of that shard
 *   sa->mech_lock the mechanism context and the cnum window (held across
 *                 sign / verify / sa_with_mech, which may be slow: never
 *                 taken while a shard lock is held)
 *   sa->meta_lock the sa_info fields (short sections only)
 *   t->pend_lock  the FIFO of PENDING entries (a leaf)
 * A shard lock may be followed by meta_lock or pend_lock; mech_lock by
 * meta_lock and pend_lock; meta_lock by pend_lock.
 *
 * References: the table holds one while the SA is in it; sa_find, sa_begin
 * and sa_create hand out one more. Whoever unlinks the SA from its shard
 * drops the table's reference after releasing the shard lock, so the
 * mechanism's free never runs under a table lock. An SA must not be used
 * (other than sa_put / sa_get_info / sa_opaque) after sa_table_free.
 */
#include "auth/sa.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/secmem.h"

#define SA_SHARDS	64
#define SA_BUCKETS	256 /* per shard */
#define SA_WIN_WORDS	(SA_WINDOW / 64)
#define SA_DEFAULT_PEND 10000

_Static_assert(SA_WINDOW % 64 == 0, "window is whole 64-bit words");

struct sa {
	struct sa_table *t;
	uint32_t key; /* the opaque as a number */
	struct sa *next;
	struct sa *pend_prev, *pend_next;
	bool on_pending; /* under t->pend_lock */
	atomic_bool in_table;
	atomic_uint refs;

	pthread_mutex_t mech_lock;
	const struct sa_mech *mech;
	void *mech_ctx;
	uint64_t window[SA_WIN_WORDS]; /* bit i: cnum_high - i was accepted */

	pthread_mutex_t meta_lock;
	struct sa_info info;
};

struct sa_shard {
	pthread_mutex_t lock;
	struct sa *b[SA_BUCKETS];
} __attribute__((aligned(64)));

struct sa_table {
	struct sa_shard shards[SA_SHARDS];
	pthread_mutex_t pend_lock;
	struct sa *pend_head, *pend_tail; /* oldest first */
	size_t n_pending;
	size_t max_pending;
};

const char *sa_scheme_name(enum sa_scheme s)
{
	switch (s) {
	case SA_SCHEME_NTLM:
		return "NTLM";
	case SA_SCHEME_KERBEROS:
		return "Kerberos";
	case SA_SCHEME_TLSDSK:
		return "TLS-DSK";
	default:
		return "";
	}
}

enum sa_scheme sa_scheme_parse(struct str s)
{
	if (str_caseeq_cstr(s, "NTLM"))
		return SA_SCHEME_NTLM;
	if (str_caseeq_cstr(s, "Kerberos"))
		return SA_SCHEME_KERBEROS;
	if (str_caseeq_cstr(s, "TLS-DSK"))
		return SA_SCHEME_TLSDSK;
	return SA_SCHEME_NONE;
}

const char *sa_strerror(int err)
{
	switch (err) {
	case SA_OK:
		return "ok";
	case SA_E_BAD_SIG:
		return "signature does not verify";
	case SA_E_REPLAY:
		return "sequence number replayed or outside the window";
	case SA_E_STATE:
		return "security association not established";
	case SA_E_EXPIRED:
		return "security association expired";
	case SA_E_MALFORMED:
		return "signature malformed";
	default:
		return "unknown security association error";
	}
}

/* ---- keys ----------------------------------------------------------------- */

/* 8 hex digits, either case, to the number; -1 otherwise. */
static int opaque_key(struct str s, uint32_t *key)
{
	uint32_t k = 0;

	if (s.len != SA_OPAQUE_LEN || !s.p)
		return -1;
	for (size_t i = 0; i < s.len; i++) {
		int v = str_hexval(s.p[i]);
		if (v < 0)
			return -1;
		k = (k << 4) | (uint32_t)v;
	}
	*key = k;
	return 0;
}

static uint32_t key_mix(uint32_t k)
{
	/* opaques are random, but a mix costs nothing and keeps the shard and
	 * the bucket from using the same bits */
	k ^= k >> 16;
	k *= 0x7feb352dU;
	k ^= k >> 15;
	k *= 0x846ca68bU;
	k ^= k >> 16;
	return k;
}

static struct sa_shard *shard_of(struct sa_table *t, uint32_t key, struct sa ***bucket)
{
	uint32_t h = key_mix(key);
	struct sa_shard *sh = &t->shards[h % SA_SHARDS];

	*bucket = &sh->b[(h / SA_SHARDS) % SA_BUCKETS];
	return sh;
}

/* ---- table ---------------------------------------------------------------- */

struct sa_table *sa_table_new(size_t max_pending)
{
	struct sa_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	for (int i = 0; i < SA_SHARDS; i++)
		pthread_mutex_init(&t->shards[i].lock, NULL);
	pthread_mutex_init(&t->pend_lock, NULL);
	t->max_pending = max_pending ? max_pending : SA_DEFAULT_PEND;
	return t;
}

static void sa_free(struct sa *sa)
{
	if (sa->mech && sa->mech->free && sa->mech_ctx)
		sa->mech->free(sa->mech_ctx);
	pthread_mutex_destroy(&sa->mech_lock);
	pthread_mutex_destroy(&sa->meta_lock);
	secmem_wipe(sa, sizeof(*sa));
	free(sa);
}

void sa_put(struct sa *sa)
{
	if (sa && atomic_fetch_sub_explicit(&sa->refs, 1, memory_order_acq_rel) == 1)
		sa_free(sa);
}

static void sa_ref(struct sa *sa)
{
	atomic_fetch_add_explicit(&sa->refs, 1, memory_order_relaxed);
}

/* Under t->pend_lock. */
static void pend_unlink(struct sa_table *t, struct sa *sa)
{
	if (!sa->on_pending)
		return;
	if (sa->pend_prev)
		sa->pend_prev->pend_next = sa->pend_next;
	else
		t->pend_head = sa->pend_next;
	if (sa->pend_next)
		sa->pend_next->pend_prev = sa->pend_prev;
	else
		t->pend_tail = sa->pend_prev;
	sa->pend_prev = sa->pend_next = NULL;
	sa->on_pending = false;
	t->n_pending--;
}

/* Under the shard lock: take sa out of the table. The caller drops the
 * table's reference after unlocking. */
static void unlink_locked(struct sa_table *t, struct sa **bucket, struct sa *sa)
{
	struct sa **pp;

	for (pp = bucket; *pp; pp = &(*pp)->next)
		if (*pp == sa) {
			*pp = sa->next;
			break;
		}
	sa->next = NULL;
	atomic_store(&sa->in_table, false);
	pthread_mutex_lock(&t->pend_lock);
	pend_unlink(t, sa);
	pthread_mutex_unlock(&t->pend_lock);
}

void sa_table_free(struct sa_table *t)
{
	if (!t)
		return;
	for (int i = 0; i < SA_SHARDS; i++) {
		struct sa_shard *sh = &t->shards[i];
		for (int j = 0; j < SA_BUCKETS; j++) {
			while (sh->b[j]) {
				struct sa *sa = sh->b[j];
				unlink_locked(t, &sh->b[j], sa);
				sa_put(sa);
			}
		}
		pthread_mutex_destroy(&sh->lock);
	}
	pthread_mutex_destroy(&t->pend_lock);
	free(t);
}

/* Under meta_lock (or with the SA private to the caller). */
static bool expired_locked(const struct sa *sa, uint64_t now)
{
	if (now >= sa->info.expires)
		return true;
	if (sa->info.state == SA_ESTABLISHED && now > sa->info.last_used &&
	    now - sa->info.last_used >= SA_IDLE_TTL)
		return true;
	return false;
}

static bool sa_expired(struct sa *sa, uint64_t now)
{
	bool e;

	pthread_mutex_lock(&sa->meta_lock);
	e = expired_locked(sa, now);
	pthread_mutex_unlock(&sa->meta_lock);
	return e;
}

static void copy_field(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static struct sa *sa_alloc(struct sa_table *t, const struct sa_info *info,
			   const struct sa_mech *mech, void *mech_ctx, uint64_t now)
{
	struct sa *sa = calloc(1, sizeof(*sa));

	if (!sa)
		return NULL;
	sa->t = t;
	atomic_init(&sa->refs, 2); /* the table's and the caller's */
	atomic_init(&sa->in_table, false);
	pthread_mutex_init(&sa->mech_lock, NULL);
	pthread_mutex_init(&sa->meta_lock, NULL);
	sa->mech = mech;
	sa->mech_ctx = mech_ctx;
	sa->info.scheme = info->scheme;
	copy_field(sa->info.realm, sizeof(sa->info.realm), info->realm);
	copy_field(sa->info.targetname, sizeof(sa->info.targetname), info->targetname);
	sa->info.version = info->version;
	sa->info.from_407 = info->from_407;
	sa->info.created = now;
	sa->info.last_used = now;
	return sa;
}

/* Give sa a fresh opaque, unique in the table, and link it in. */
static int sa_insert(struct sa_table *t, struct sa *sa)
{
	for (int tries = 0; tries < 64; tries++) {
		uint32_t key;
		struct sa **bucket, *p;
		struct sa_shard *sh;

		if (secmem_random(&key, sizeof(key)) != 0)
			return -1;
		sh = shard_of(t, key, &bucket);
		pthread_mutex_lock(&sh->lock);
		for (p = *bucket; p; p = p->next)
			if (p->key == key)
				break;
		if (p) {
			pthread_mutex_unlock(&sh->lock);
			continue;
		}
		sa->key = key;
		snprintf(sa->info.opaque, sizeof(sa->info.opaque), "%08X", key);
		sa->next = *bucket;
		*bucket = sa;
		atomic_store(&sa->in_table, true);
		pthread_mutex_unlock(&sh->lock);
		return 0;
	}
	return -1;
}

/* Remove sa from its shard if it is still there; drops the table's ref. */
static void sa_remove(struct sa_table *t, struct sa *sa)
{
	struct sa **bucket;
	struct sa_shard *sh = shard_of(t, sa->key, &bucket);
	bool was = false;

	pthread_mutex_lock(&sh->lock);
	if (atomic_load(&sa->in_table)) {
		unlink_locked(t, bucket, sa);
		was = true;
	}
	pthread_mutex_unlock(&sh->lock);
	if (was)
		sa_put(sa);
}

struct sa *sa_begin(struct sa_table *t, const struct sa_info *info, const struct sa_mech *mech,
		    void *mech_ctx, uint64_t now)
{
	struct sa *sa, *victim = NULL;

	if (!t || !info || !mech) {
		if (mech && mech->free && mech_ctx)
			mech->free(mech_ctx);
		return NULL;
	}
	sa = sa_alloc(t, info, mech, mech_ctx, now);
	if (!sa) {
		if (mech->free && mech_ctx)
			mech->free(mech_ctx);
		return NULL;
	}
	sa->info.state = SA_PENDING;
	sa->info.expires = now + SA_PENDING_TTL;
	if (sa_insert(t, sa) != 0) {
		sa_free(sa);
		return NULL;
	}
	/* onto the pending FIFO, unless something removed it already */
	pthread_mutex_lock(&t->pend_lock);
	if (atomic_load(&sa->in_table)) {
		sa->pend_prev = t->pend_tail;
		if (t->pend_tail)
			t->pend_tail->pend_next = sa;
		else
			t->pend_head = sa;
		t->pend_tail = sa;
		sa->on_pending = true;
		t->n_pending++;
	}
	pthread_mutex_unlock(&t->pend_lock);
	/* the bound: evict the oldest pending entries beyond max_pending */
	for (;;) {
		pthread_mutex_lock(&t->pend_lock);
		victim = NULL;
		if (t->n_pending > t->max_pending && t->pend_head && t->pend_head != sa) {
			victim = t->pend_head;
			pend_unlink(t, victim);
			sa_ref(victim);
		}
		pthread_mutex_unlock(&t->pend_lock);
		if (!victim)
			break;
		sa_remove(t, victim);
		sa_put(victim);
	}
	return sa;
}

int sa_establish(struct sa *sa, const char *user, const char *instance, uint64_t cred_expiry,
		 const struct sa_mech *mech, void *mech_ctx, uint64_t now)
{
	const struct sa_mech *old_mech = NULL;
	void *old_ctx = NULL;
	int rc = -1;

	if (!sa || !user || strlen(user) >= sizeof(sa->info.user) ||
	    (instance && strlen(instance) >= sizeof(sa->info.instance)))
		goto fail;
	pthread_mutex_lock(&sa->mech_lock);
	pthread_mutex_lock(&sa->meta_lock);
	pthread_mutex_lock(&sa->t->pend_lock);
	if (sa->info.state == SA_PENDING && atomic_load(&sa->in_table) &&
	    !expired_locked(sa, now)) {
		pend_unlink(sa->t, sa);
		sa->info.state = SA_ESTABLISHED;
		copy_field(sa->info.user, sizeof(sa->info.user), user);
		copy_field(sa->info.instance, sizeof(sa->info.instance), instance ? instance : "");
		sa->info.expires = now + SA_MAX_LIFETIME;
		if (cred_expiry && cred_expiry < sa->info.expires)
			sa->info.expires = cred_expiry;
		sa->info.last_used = now;
		if (mech && mech_ctx) {
			old_mech = sa->mech;
			old_ctx = sa->mech_ctx;
			sa->mech = mech;
			sa->mech_ctx = mech_ctx;
		}
		rc = 0;
	}
	pthread_mutex_unlock(&sa->t->pend_lock);
	pthread_mutex_unlock(&sa->meta_lock);
	pthread_mutex_unlock(&sa->mech_lock);
	if (rc == 0) {
		if (old_mech && old_mech->free && old_ctx)
			old_mech->free(old_ctx);
		return 0;
	}
fail:
	/* ownership of a new context always passes, as with sa_begin */
	if (mech && mech->free && mech_ctx)
		mech->free(mech_ctx);
	return -1;
}

struct sa *sa_create(struct sa_table *t, const struct sa_info *info, const struct sa_mech *mech,
		     void *mech_ctx, uint64_t cred_expiry, uint64_t now)
{
	struct sa *sa;

	if (!t || !info || !mech || !info->user[0]) {
		if (mech && mech->free && mech_ctx)
			mech->free(mech_ctx);
		return NULL;
	}
	sa = sa_alloc(t, info, mech, mech_ctx, now);
	if (!sa) {
		if (mech->free && mech_ctx)
			mech->free(mech_ctx);
		return NULL;
	}
	sa->info.state = SA_ESTABLISHED;
	copy_field(sa->info.user, sizeof(sa->info.user), info->user);
	copy_field(sa->info.instance, sizeof(sa->info.instance), info->instance);
	sa->info.expires = now + SA_MAX_LIFETIME;
	if (cred_expiry && cred_expiry < sa->info.expires)
		sa->info.expires = cred_expiry;
	if (sa_insert(t, sa) != 0) {
		sa_free(sa);
		return NULL;
	}
	return sa;
}

/* Find in the shard (locked); expired entries are unlinked into *reap. */
struct sa *sa_find(struct sa_table *t, struct str opaque, uint64_t now)
{
	struct sa **bucket, *sa, *reap = NULL;
	struct sa_shard *sh;
	uint32_t key;

	if (!t || opaque_key(opaque, &key) != 0)
		return NULL;
	sh = shard_of(t, key, &bucket);
	pthread_mutex_lock(&sh->lock);
	for (sa = *bucket; sa; sa = sa->next)
		if (sa->key == key)
			break;
	if (sa) {
		if (sa_expired(sa, now)) {
			unlink_locked(t, bucket, sa);
			reap = sa;
			sa = NULL;
		} else {
			sa_ref(sa);
		}
	}
	pthread_mutex_unlock(&sh->lock);
	sa_put(reap);
	return sa;
}

int sa_with_mech(struct sa *sa, int (*fn)(void *mech_ctx, void *arg), void *arg)
{
	int rc;

	if (!sa || !fn)
		return -1;
	pthread_mutex_lock(&sa->mech_lock);
	rc = fn(sa->mech_ctx, arg);
	pthread_mutex_unlock(&sa->mech_lock);
	return rc;
}

void sa_get_info(const struct sa *sa, struct sa_info *out)
{
	struct sa *m = (struct sa *)sa; /* the lock is not part of the value */

	if (!sa || !out)
		return;
	pthread_mutex_lock(&m->meta_lock);
	*out = sa->info;
	pthread_mutex_unlock(&m->meta_lock);
}

const char *sa_opaque(const struct sa *sa)
{
	/* written once before the SA is published, never changed */
	return sa ? sa->info.opaque : "";
}

/* ---- the cnum window -------------------------------------------------------- */

/* Under mech_lock. 0 when cnum may be accepted, else SA_E_REPLAY. */
static int window_check(const struct sa *sa, uint32_t high, uint32_t cnum)
{
	uint32_t d;

	if (cnum == 0)
		return SA_E_REPLAY;
	if (cnum > high)
		return 0;
	d = high - cnum;
	if (d >= SA_WINDOW)
		return SA_E_REPLAY;
	return sa->window[d / 64] >> (d % 64) & 1 ? SA_E_REPLAY : 0;
}

/* Under mech_lock; cnum passed window_check. Returns the new high. */
static uint32_t window_accept(struct sa *sa, uint32_t high, uint32_t cnum)
{
	if (cnum > high) {
		uint32_t s = cnum - high;
		if (s >= SA_WINDOW) {
			memset(sa->window, 0, sizeof(sa->window));
		} else {
			/* shift the bitmap towards older numbers by s bits */
			unsigned ws = s / 64, bs = s % 64;
			for (int i = SA_WIN_WORDS - 1; i >= 0; i--) {
				uint64_t v = 0;
				if (i >= (int)ws) {
					v = sa->window[i - ws] << bs;
					if (bs && i > (int)ws)
						v |= sa->window[i - ws - 1] >> (64 - bs);
				}
				sa->window[i] = v;
			}
		}
		sa->window[0] |= 1;
		return cnum;
	}
	uint32_t d = high - cnum;
	sa->window[d / 64] |= (uint64_t)1 << (d % 64);
	return high;
}

static int hex_decode(struct str hex, uint8_t *out, size_t cap, size_t *n)
{
	if (hex.len == 0 || hex.len % 2 || hex.len / 2 > cap)
		return -1;
	for (size_t i = 0; i < hex.len; i += 2) {
		int hi = str_hexval(hex.p[i]), lo = str_hexval(hex.p[i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	*n = hex.len / 2;
	return 0;
}

int sa_verify(struct sa *sa, uint32_t cnum, const uint8_t *buf, size_t len, struct str response_hex,
	      uint64_t now)
{
	uint8_t mac[SA_MAC_MAX];
	size_t mac_len;
	uint32_t high;
	int rc;

	if (!sa || !buf || hex_decode(response_hex, mac, sizeof(mac), &mac_len) != 0)
		return SA_E_MALFORMED;
	pthread_mutex_lock(&sa->mech_lock);
	pthread_mutex_lock(&sa->meta_lock);
	if (sa->info.state != SA_ESTABLISHED)
		rc = SA_E_STATE;
	else if (expired_locked(sa, now))
		rc = SA_E_EXPIRED;
	else
		rc = SA_OK;
	high = sa->info.cnum_high;
	pthread_mutex_unlock(&sa->meta_lock);
	if (rc == SA_OK)
		rc = window_check(sa, high, cnum);
	if (rc == SA_OK &&
	    (!sa->mech->verify || sa->mech->verify(sa->mech_ctx, buf, len, mac, mac_len) != 0))
		rc = SA_E_BAD_SIG;
	if (rc == SA_OK) {
		high = window_accept(sa, high, cnum);
		pthread_mutex_lock(&sa->meta_lock);
		sa->info.cnum_high = high;
		if (now > sa->info.last_used)
			sa->info.last_used = now;
		pthread_mutex_unlock(&sa->meta_lock);
	}
	pthread_mutex_unlock(&sa->mech_lock);
	secmem_wipe(mac, sizeof(mac));
	return rc;
}

int sa_verify_retransmission(struct sa *sa, const uint8_t *buf, size_t len, struct str response_hex,
			     uint64_t now)
{
	uint8_t mac[SA_MAC_MAX];
	size_t mac_len;
	int rc;

	if (!sa || !buf || hex_decode(response_hex, mac, sizeof(mac), &mac_len) != 0)
		return SA_E_MALFORMED;
	pthread_mutex_lock(&sa->mech_lock);
	pthread_mutex_lock(&sa->meta_lock);
	if (sa->info.state != SA_ESTABLISHED)
		rc = SA_E_STATE;
	else if (expired_locked(sa, now))
		rc = SA_E_EXPIRED;
	else
		rc = SA_OK;
	pthread_mutex_unlock(&sa->meta_lock);
	if (rc == SA_OK &&
	    (!sa->mech->verify || sa->mech->verify(sa->mech_ctx, buf, len, mac, mac_len) != 0))
		rc = SA_E_BAD_SIG;
	pthread_mutex_unlock(&sa->mech_lock);
	secmem_wipe(mac, sizeof(mac));
	return rc;
}

uint32_t sa_next_snum(struct sa *sa)
{
	uint32_t n;

	if (!sa)
		return 0;
	pthread_mutex_lock(&sa->meta_lock);
	n = ++sa->info.snum;
	if (n == 0) /* 2^32 messages: wrap past 0, which means "none" */
		n = sa->info.snum = 1;
	pthread_mutex_unlock(&sa->meta_lock);
	return n;
}

int sa_sign(struct sa *sa, const uint8_t *buf, size_t len, char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t mac[SA_MAC_MAX];
	size_t mac_len = 0;
	int rc = SA_OK;

	if (!sa || !buf || !out || cap < 2 * SA_MAC_MAX + 1)
		return SA_E_MALFORMED;
	out[0] = '\0';
	pthread_mutex_lock(&sa->mech_lock);
	pthread_mutex_lock(&sa->meta_lock);
	if (sa->info.state != SA_ESTABLISHED)
		rc = SA_E_STATE;
	pthread_mutex_unlock(&sa->meta_lock);
	if (rc == SA_OK &&
	    (!sa->mech->sign ||
	     sa->mech->sign(sa->mech_ctx, buf, len, mac, sizeof(mac), &mac_len) != 0 ||
	     mac_len == 0 || mac_len > sizeof(mac)))
		rc = SA_E_BAD_SIG;
	pthread_mutex_unlock(&sa->mech_lock);
	if (rc != SA_OK)
		return rc;
	for (size_t i = 0; i < mac_len; i++) {
		out[2 * i] = hex[mac[i] >> 4];
		out[2 * i + 1] = hex[mac[i] & 15];
	}
	out[2 * mac_len] = '\0';
	secmem_wipe(mac, sizeof(mac));
	return (int)(2 * mac_len);
}

/* ---- whole-table operations ------------------------------------------------ */

/* Unlink every SA of one shard for which pred says so; put them after. */
static size_t shard_remove_if(struct sa_table *t, struct sa_shard *sh,
			      bool (*pred)(struct sa *sa, const void *arg), const void *arg)
{
	struct sa *reap = NULL, *sa, *next;
	size_t n = 0;

	pthread_mutex_lock(&sh->lock);
	for (int j = 0; j < SA_BUCKETS; j++) {
		for (sa = sh->b[j]; sa; sa = next) {
			next = sa->next;
			if (!pred(sa, arg))
				continue;
			unlink_locked(t, &sh->b[j], sa);
			sa->next = reap; /* out of the table: next is ours now */
			reap = sa;
			n++;
		}
	}
	pthread_mutex_unlock(&sh->lock);
	for (sa = reap; sa; sa = next) {
		next = sa->next;
		sa->next = NULL;
		sa_put(sa);
	}
	return n;
}

int sa_drop(struct sa_table *t, struct str opaque)
{
	struct sa **bucket, *sa;
	struct sa_shard *sh;
	uint32_t key;

	if (!t || opaque_key(opaque, &key) != 0)
		return -1;
	sh = shard_of(t, key, &bucket);
	pthread_mutex_lock(&sh->lock);
	for (sa = *bucket; sa; sa = sa->next)
		if (sa->key == key)
			break;
	if (sa)
		unlink_locked(t, bucket, sa);
	pthread_mutex_unlock(&sh->lock);
	if (!sa)
		return -1;
	sa_put(sa);
	return 0;
}

static bool pred_user(struct sa *sa, const void *arg)
{
	bool m;

	pthread_mutex_lock(&sa->meta_lock);
	m = sa->info.user[0] && strcmp(sa->info.user, arg) == 0;
	pthread_mutex_unlock(&sa->meta_lock);
	return m;
}

size_t sa_drop_user(struct sa_table *t, const char *user)
{
	size_t n = 0;

	if (!t || !user || !user[0])
		return 0;
	for (int i = 0; i < SA_SHARDS; i++)
		n += shard_remove_if(t, &t->shards[i], pred_user, user);
	return n;
}

static bool pred_expired(struct sa *sa, const void *arg)
{
	return sa_expired(sa, *(const uint64_t *)arg);
}

size_t sa_sweep(struct sa_table *t, uint64_t now)
{
	size_t n = 0;

	if (!t)
		return 0;
	for (int i = 0; i < SA_SHARDS; i++)
		n += shard_remove_if(t, &t->shards[i], pred_expired, &now);
	return n;
}

int sa_list(struct sa_table *t, int (*fn)(void *ctx, const struct sa_info *i), void *ctx)
{
	if (!t || !fn)
		return -1;
	for (int i = 0; i < SA_SHARDS; i++) {
		struct sa_shard *sh = &t->shards[i];
		struct sa_info *infos = NULL, *grown;
		size_t n = 0, cap = 0;
		int rc = 0;

		/* copy out under the lock, call fn without it (fn may be slow
		 * or call back into the table) */
		pthread_mutex_lock(&sh->lock);
		for (int j = 0; j < SA_BUCKETS && rc == 0; j++)
			for (struct sa *sa = sh->b[j]; sa; sa = sa->next) {
				if (n == cap) {
					cap = cap ? 2 * cap : 16;
					grown = realloc(infos, cap * sizeof(*infos));
					if (!grown) {
						rc = -1;
						break;
					}
					infos = grown;
				}
				sa_get_info(sa, &infos[n++]);
			}
		pthread_mutex_unlock(&sh->lock);
		for (size_t k = 0; k < n && rc == 0; k++)
			rc = fn(ctx, &infos[k]);
		free(infos);
		if (rc)
			return rc;
	}
	return 0;
}

void sa_count(struct sa_table *t, size_t *pending, size_t *established)
{
	size_t p = 0, e = 0;

	if (t)
		for (int i = 0; i < SA_SHARDS; i++) {
			struct sa_shard *sh = &t->shards[i];
			pthread_mutex_lock(&sh->lock);
			for (int j = 0; j < SA_BUCKETS; j++)
				for (struct sa *sa = sh->b[j]; sa; sa = sa->next) {
					pthread_mutex_lock(&sa->meta_lock);
					if (sa->info.state == SA_ESTABLISHED)
						e++;
					else
						p++;
					pthread_mutex_unlock(&sa->meta_lock);
				}
			pthread_mutex_unlock(&sh->lock);
		}
	if (pending)
		*pending = p;
	if (established)
		*established = e;
}
