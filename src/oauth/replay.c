/*
 * jti replay cache: sharded open-addressing tables of fixed-size entries
 * (see replay.h). Must never forget a jti before its expiry: when a shard is
 * full of live entries it refuses instead.
 */
#include "oauth/replay.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/md.h"
#include "core/secmem.h"

#define REPLAY_SHARDS	   16
#define REPLAY_MIN_SLOTS   64
#define REPLAY_KEY_LEN	   16
#define REPLAY_PARTNER_MAX 512

struct replay_entry {
	uint8_t key[REPLAY_KEY_LEN];
	int64_t expires; /* 0: empty slot */
};

struct replay_shard {
	pthread_mutex_t mu;
	struct replay_entry *tab;
	size_t slots; /* power of two, 0 before the first insert */
	size_t count;
	size_t max;	 /* live entries allowed in this shard */
	int64_t min_exp; /* earliest expiry held (INT64_MAX when empty) */
};

struct replay_cache {
	uint8_t secret[32];
	struct replay_shard shard[REPLAY_SHARDS];
};

struct replay_cache *replay_new(size_t capacity)
{
	struct replay_cache *rc = calloc(1, sizeof(*rc));
	size_t i;

	if (!rc)
		return NULL;
	if (capacity == 0)
		capacity = REPLAY_DEFAULT_CAPACITY;
	if (secmem_random(rc->secret, sizeof(rc->secret)) < 0) {
		free(rc);
		return NULL;
	}
	for (i = 0; i < REPLAY_SHARDS; i++) {
		pthread_mutex_init(&rc->shard[i].mu, NULL);
		rc->shard[i].max = (capacity + REPLAY_SHARDS - 1) / REPLAY_SHARDS;
		rc->shard[i].min_exp = INT64_MAX;
	}
	return rc;
}

void replay_free(struct replay_cache *rc)
{
	size_t i;

	if (!rc)
		return;
	for (i = 0; i < REPLAY_SHARDS; i++) {
		free(rc->shard[i].tab);
		pthread_mutex_destroy(&rc->shard[i].mu);
	}
	secmem_wipe(rc->secret, sizeof(rc->secret));
	free(rc);
}

/* Keyed hash of (partner, jti), length-prefixed so that no two pairs share
 * an input. */
static int replay_key(const struct replay_cache *rc, const char *partner, const char *jti,
		      uint8_t key[REPLAY_KEY_LEN])
{
	uint8_t buf[32 + 4 + REPLAY_PARTNER_MAX + REPLAY_JTI_MAX], md[EVP_MAX_MD_SIZE];
	size_t plen = strlen(partner), jlen = strlen(jti), n = 0;
	unsigned int mdlen = 0;

	if (plen > REPLAY_PARTNER_MAX || jlen == 0 || jlen > REPLAY_JTI_MAX)
		return -1;
	memcpy(buf, rc->secret, 32);
	n = 32;
	buf[n++] = (uint8_t)(plen >> 24);
	buf[n++] = (uint8_t)(plen >> 16);
	buf[n++] = (uint8_t)(plen >> 8);
	buf[n++] = (uint8_t)plen;
	memcpy(buf + n, partner, plen);
	n += plen;
	memcpy(buf + n, jti, jlen);
	n += jlen;
	if (!md_sha256() || EVP_Digest(buf, n, md, &mdlen, md_sha256(), NULL) != 1 ||
	    mdlen < REPLAY_KEY_LEN) {
		secmem_wipe(buf, 32);
		return -1;
	}
	secmem_wipe(buf, 32);
	memcpy(key, md, REPLAY_KEY_LEN);
	return 0;
}

static size_t slot_of(const uint8_t key[REPLAY_KEY_LEN], size_t slots)
{
	uint64_t h = 0;

	for (int i = 8; i < 16; i++)
		h = (h << 8) | key[i];
	return (size_t)(h & (slots - 1));
}

/* The slot holding key, or the empty slot where it would go. */
static struct replay_entry *probe(struct replay_entry *tab, size_t slots,
				  const uint8_t key[REPLAY_KEY_LEN])
{
	size_t i = slot_of(key, slots);

	for (;;) {
		struct replay_entry *e = &tab[i];

		if (e->expires == 0 || memcmp(e->key, key, REPLAY_KEY_LEN) == 0)
			return e;
		i = (i + 1) & (slots - 1);
	}
}

/* Rebuild the shard's table with slots slots, dropping expired entries. */
static int rebuild(struct replay_shard *s, size_t slots, int64_t now)
{
	struct replay_entry *tab = calloc(slots, sizeof(*tab));
	size_t i, count = 0;
	int64_t min_exp = INT64_MAX;

	if (!tab)
		return -1;
	for (i = 0; i < s->slots; i++) {
		const struct replay_entry *e = &s->tab[i];

		if (e->expires == 0 || e->expires < now)
			continue;
		*probe(tab, slots, e->key) = *e;
		count++;
		if (e->expires < min_exp)
			min_exp = e->expires;
	}
	free(s->tab);
	s->tab = tab;
	s->slots = slots;
	s->count = count;
	s->min_exp = min_exp;
	return 0;
}

static size_t max_slots(const struct replay_shard *s)
{
	size_t n = REPLAY_MIN_SLOTS;

	while (n < 2 * s->max)
		n *= 2;
	return n;
}

static int shard_add(struct replay_shard *s, const uint8_t key[REPLAY_KEY_LEN], int64_t expires,
		     int64_t now)
{
	struct replay_entry *e;

	if (s->slots) {
		e = probe(s->tab, s->slots, key);
		if (e->expires != 0) {
			if (e->expires >= now)
				return REPLAY_SEEN;
			/* its earlier use has expired: the jti may be used again */
			e->expires = expires;
			if (expires < s->min_exp)
				s->min_exp = expires;
			return REPLAY_OK;
		}
	}
	if (s->count >= s->max && now > s->min_exp && rebuild(s, s->slots, now) < 0)
		return REPLAY_NOMEM;
	if (s->count >= s->max)
		return REPLAY_FULL;
	if ((s->count + 1) * 2 > s->slots) {
		size_t want = s->slots ? s->slots * 2 : REPLAY_MIN_SLOTS;

		if (want > max_slots(s))
			want = max_slots(s);
		if (want != s->slots && rebuild(s, want, now) < 0)
			return REPLAY_NOMEM;
	}
	e = probe(s->tab, s->slots, key);
	memcpy(e->key, key, REPLAY_KEY_LEN);
	e->expires = expires;
	s->count++;
	if (expires < s->min_exp)
		s->min_exp = expires;
	return REPLAY_OK;
}

int replay_check_and_add(struct replay_cache *rc, const char *partner, const char *jti,
			 int64_t expires, int64_t now)
{
	uint8_t key[REPLAY_KEY_LEN];
	struct replay_shard *s;
	int r;

	if (!rc || !partner || !jti || expires <= 0)
		return REPLAY_INVALID;
	if (replay_key(rc, partner, jti, key) < 0)
		return REPLAY_INVALID;
	if (expires < now)
		return REPLAY_OK; /* cannot be accepted again anyway: nothing to keep */
	s = &rc->shard[key[0] % REPLAY_SHARDS];
	pthread_mutex_lock(&s->mu);
	r = shard_add(s, key, expires, now);
	pthread_mutex_unlock(&s->mu);
	return r;
}

size_t replay_count(struct replay_cache *rc)
{
	size_t i, n = 0;

	if (!rc)
		return 0;
	for (i = 0; i < REPLAY_SHARDS; i++) {
		pthread_mutex_lock(&rc->shard[i].mu);
		n += rc->shard[i].count;
		pthread_mutex_unlock(&rc->shard[i].mu);
	}
	return n;
}
