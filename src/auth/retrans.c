/* Retransmission memory; see retrans.h. Never stores credentials: only a
 * hash of the request's identity. */
#include "auth/retrans.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "core/md.h"
#include "core/secmem.h"

#define SHARDS 64

struct slot {
	uint8_t fp[12]; /* 96 bits of SHA-256: a forged match needs ~2^96 work */
	uint32_t until; /* monotonic seconds */
	uint64_t stamp; /* 0: an authenticated request; else a challenge's nonce stamp */
};

static struct slot *slots;
static uint64_t mask;
static uint64_t quick_seed[2]; /* random per process; see quick_fingerprint */
static pthread_mutex_t locks[SHARDS];

int retrans_init(unsigned slots_log2)
{
	slots = calloc((size_t)1 << slots_log2, sizeof(*slots));
	if (!slots)
		return -1;
	mask = ((uint64_t)1 << slots_log2) - 1;
	if (RAND_bytes((unsigned char *)quick_seed, sizeof(quick_seed)) != 1) {
		free(slots);
		slots = NULL;
		return -1;
	}
	for (int i = 0; i < SHARDS; i++)
		pthread_mutex_init(&locks[i], NULL);
	return 0;
}

void retrans_shutdown(void)
{
	free(slots);
	slots = NULL;
}

static int fingerprint(const struct retrans_key *k, uint8_t out[12])
{
	const struct str parts[6] = {k->nonce, k->nc, k->branch, k->call_id, k->cseq, k->method};
	uint8_t md[32];
	unsigned int len = 0;
	EVP_MD_CTX *ctx = md_thread_ctx();
	int rc = -1;

	/* fields length-prefixed, so they cannot slide into each other; copied
	 * into one buffer and hashed with a single update when they fit (the
	 * usual case), streamed field by field when they do not */
	uint8_t buf[2048];
	size_t o = 0;
	bool fits = true;

	if (!ctx || !md_sha256() || EVP_DigestInit_ex2(ctx, md_sha256(), NULL) != 1)
		return -1;
	for (int i = 0; i < 6 && fits; i++) {
		uint32_t n = (uint32_t)parts[i].len;
		if (o + sizeof(n) + n > sizeof(buf)) {
			fits = false;
			break;
		}
		memcpy(buf + o, &n, sizeof(n));
		o += sizeof(n);
		if (n)
			memcpy(buf + o, parts[i].p, n);
		o += n;
	}
	if (fits) {
		rc = EVP_DigestUpdate(ctx, buf, o) == 1 ? 0 : -1;
	} else {
		rc = 0;
		for (int i = 0; i < 6 && rc == 0; i++) {
			uint32_t n = (uint32_t)parts[i].len;
			if (EVP_DigestUpdate(ctx, &n, sizeof(n)) != 1 ||
			    EVP_DigestUpdate(ctx, parts[i].p ? parts[i].p : "", n) != 1)
				rc = -1;
		}
	}
	if (rc == 0 && EVP_DigestFinal_ex(ctx, md, &len) != 1)
		rc = -1;
	if (rc == 0)
		memcpy(out, md, 12);
	return rc;
}

/*
 * A fast seeded 96-bit fingerprint, for challenge entries only. A collision
 * there only hands one request the nonce stamp remembered for another
 * (nonces are public), so it needs no cryptographic strength, and the
 * challenge path runs for every unauthenticated request. Authenticated
 * entries, where a forged match would let captured credentials be reused,
 * keep the SHA-256 fingerprint above; a slot's stamp tells the kinds apart.
 */
static void quick_fingerprint(const struct retrans_key *k, uint8_t out[12])
{
	const struct str parts[6] = {k->nonce, k->nc, k->branch, k->call_id, k->cseq, k->method};
	uint64_t a = quick_seed[0], b = quick_seed[1];

	for (int i = 0; i < 6; i++) {
		size_t n = parts[i].len, o = 0;
		uint64_t w = n; /* length first: fields cannot slide into each other */
		for (;;) {
			a = (a ^ w) * 0x9e3779b97f4a7c15ull;
			a ^= a >> 29;
			b = (b ^ w) * 0xc2b2ae3d27d4eb4full;
			b ^= b >> 31;
			if (o >= n)
				break;
			w = 0;
			memcpy(&w, parts[i].p + o, n - o < 8 ? n - o : 8);
			o += 8;
		}
	}
	a ^= a >> 33;
	a *= 0xff51afd7ed558ccdull;
	a ^= a >> 33;
	b ^= b >> 33;
	b *= 0xc4ceb9fe1a85ec53ull;
	b ^= b >> 33;
	memcpy(out, &a, 8);
	memcpy(out + 8, &b, 4);
}

static uint64_t index_of(const uint8_t fp[12])
{
	uint64_t v;
	memcpy(&v, fp, sizeof(v));
	return v & mask;
}

static void put(const struct retrans_key *k, uint64_t now, uint64_t stamp)
{
	uint8_t fp[12];
	uint64_t i;

	if (!slots || fingerprint(k, fp) < 0)
		return;
	i = index_of(fp);
	pthread_mutex_lock(&locks[i % SHARDS]);
	memcpy(slots[i].fp, fp, sizeof(fp));
	slots[i].until = (uint32_t)(now + RETRANS_WINDOW);
	slots[i].stamp = stamp;
	pthread_mutex_unlock(&locks[i % SHARDS]);
}

/* The slot's stamp if k is remembered there (0 for an authenticated one). */
static bool get(const struct retrans_key *k, uint64_t now, uint64_t *stamp)
{
	uint8_t fp[12];
	uint64_t i;
	bool hit;

	if (!slots || fingerprint(k, fp) < 0)
		return false;
	i = index_of(fp);
	pthread_mutex_lock(&locks[i % SHARDS]);
	hit = slots[i].until >= (uint32_t)now && secmem_eq(slots[i].fp, fp, sizeof(fp));
	*stamp = slots[i].stamp;
	pthread_mutex_unlock(&locks[i % SHARDS]);
	return hit;
}

void retrans_remember(const struct retrans_key *k, uint64_t now)
{
	put(k, now, 0);
}

bool retrans_seen(const struct retrans_key *k, uint64_t now)
{
	uint64_t stamp;
	return get(k, now, &stamp) && stamp == 0;
}

bool retrans_stamp(const struct retrans_key *k, uint64_t now, uint64_t *stamp)
{
	uint8_t fp[12];
	uint64_t i;
	bool hit;

	if (!slots)
		return false; /* *stamp stays the caller's new one */
	quick_fingerprint(k, fp);
	i = index_of(fp);
	pthread_mutex_lock(&locks[i % SHARDS]);
	hit = slots[i].until >= (uint32_t)now && slots[i].stamp != 0 &&
	      secmem_eq(slots[i].fp, fp, sizeof(fp));
	if (hit) {
		*stamp = slots[i].stamp;
	} else if (*stamp) {
		memcpy(slots[i].fp, fp, sizeof(fp));
		slots[i].until = (uint32_t)(now + RETRANS_WINDOW);
		slots[i].stamp = *stamp;
	}
	pthread_mutex_unlock(&locks[i % SHARDS]);
	return hit;
}
