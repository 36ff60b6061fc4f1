/*
 * The vault: pool secret and password-derived keys. See vault.h.
 * Must never log, return or copy out a secret; every buffer that held one is
 * wiped before it goes out of scope.
 */
#include "vault/vault.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/params.h>

#include "auth/digest.h"
#include "auth/ntlm.h"
#include "core/secmem.h"
#include "vault/vault_turn.h"

static uint8_t pool_secret[VAULT_SECRET_LEN];
static pthread_once_t mac_once = PTHREAD_ONCE_INIT;
static pthread_key_t mac_key;
static EVP_MD *hmac; /* SHA-256 for the pool-secret HMAC */
static void mac_ctx_free(void *p);
static int pool_secret_loaded;

static int secret_path(const char *state_dir, char *path, size_t cap)
{
	int n = snprintf(path, cap, "%s/pool.secret", state_dir);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int vault_bootstrap_secret(const char *state_dir, char *err, size_t errlen)
{
	char path[4096];
	uint8_t buf[VAULT_SECRET_LEN];
	int fd, rc = -1;

	if (secret_path(state_dir, path, sizeof(path)) < 0) {
		snprintf(err, errlen, "state_dir path too long");
		return -1;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			return 0;
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	if (secmem_random(buf, sizeof(buf)) < 0) {
		snprintf(err, errlen, "no random bytes for %s", path);
		goto out;
	}
	if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) || fsync(fd) < 0) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	secmem_wipe(buf, sizeof(buf));
	close(fd);
	if (rc < 0)
		unlink(path);
	return rc;
}

int vault_init(const char *state_dir, char *err, size_t errlen)
{
	char path[4096];
	struct stat st;
	int fd;
	ssize_t n;

	if (secret_path(state_dir, path, sizeof(path)) < 0) {
		snprintf(err, errlen, "state_dir path too long");
		return -1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen,
			 "cannot open pool secret %s: %s (run rtcauthd once to bootstrap)", path,
			 strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == 0 && (st.st_mode & 077)) {
		snprintf(err, errlen,
			 "pool secret %s is readable by others (mode %o); chmod 600 it", path,
			 (unsigned)(st.st_mode & 0777));
		close(fd);
		return -1;
	}
	n = read(fd, pool_secret, sizeof(pool_secret));
	close(fd);
	if (n != (ssize_t)sizeof(pool_secret)) {
		snprintf(err, errlen, "pool secret %s has the wrong size (want %d bytes)", path,
			 VAULT_SECRET_LEN);
		secmem_wipe(pool_secret, sizeof(pool_secret));
		return -1;
	}
	pool_secret_loaded = 1;
	if (hmac) {
		/* a context keyed with an earlier secret must not be reused */
		struct mac_state *ctx = pthread_getspecific(mac_key);
		pthread_setspecific(mac_key, NULL);
		mac_ctx_free(ctx);
	}
	return 0;
}

void vault_shutdown(void)
{
	secmem_wipe(pool_secret, sizeof(pool_secret));
	pool_secret_loaded = 0;
	if (hmac) {
		/* this thread's context; workers' contexts went with their threads */
		struct mac_state *ctx = pthread_getspecific(mac_key);
		pthread_setspecific(mac_key, NULL);
		mac_ctx_free(ctx);
	}
}

/*
 * HMAC-SHA256 with the pool secret, done by hand over EVP digests (RFC 2104):
 * each thread keeps SHA-256 states that have already absorbed K^ipad and
 * K^opad, and a MAC copies them instead of re-keying. EVP_MAC re-armed per
 * call cost ~20,000 instructions per nonce; this is a few thousand. The
 * states hold key-derived material: they are freed (OpenSSL cleanses them)
 * when the thread ends or the secret changes.
 */
struct mac_state {
	EVP_MD_CTX *inner, *outer, *work;
};

static void mac_ctx_free(void *p)
{
	struct mac_state *m = p;
	if (!m)
		return;
	EVP_MD_CTX_free(m->inner);
	EVP_MD_CTX_free(m->outer);
	EVP_MD_CTX_free(m->work);
	free(m);
}

static void mac_setup(void)
{
	hmac = EVP_MD_fetch(NULL, "SHA256", NULL);
	pthread_key_create(&mac_key, mac_ctx_free);
}

static struct mac_state *thread_mac(void)
{
	struct mac_state *m;
	uint8_t pad[64];
	int ok;

	pthread_once(&mac_once, mac_setup);
	m = pthread_getspecific(mac_key);
	if (m)
		return m;
	if (!hmac || !(m = calloc(1, sizeof(*m))))
		return NULL;
	m->inner = EVP_MD_CTX_new();
	m->outer = EVP_MD_CTX_new();
	m->work = EVP_MD_CTX_new();
	/* the key (32 bytes) fits one 64-byte block: K padded with zeros */
	memset(pad, 0x36, sizeof(pad));
	for (size_t i = 0; i < sizeof(pool_secret); i++)
		pad[i] ^= pool_secret[i];
	ok = m->inner && m->outer && m->work && EVP_DigestInit_ex2(m->inner, hmac, NULL) == 1 &&
	     EVP_DigestUpdate(m->inner, pad, sizeof(pad)) == 1;
	memset(pad, 0x5c, sizeof(pad));
	for (size_t i = 0; i < sizeof(pool_secret); i++)
		pad[i] ^= pool_secret[i];
	ok = ok && EVP_DigestInit_ex2(m->outer, hmac, NULL) == 1 &&
	     EVP_DigestUpdate(m->outer, pad, sizeof(pad)) == 1;
	secmem_wipe(pad, sizeof(pad));
	if (!ok || pthread_setspecific(mac_key, m) != 0) {
		mac_ctx_free(m);
		return NULL;
	}
	return m;
}

int vault_mac(const char *purpose, const void *data, size_t len, uint8_t out[32])
{
	static const uint8_t zero = 0;
	struct mac_state *m;
	uint8_t ih[32];
	unsigned int n = 0;
	int rc = -1;

	if (!pool_secret_loaded || !(m = thread_mac()))
		return -1;
	if (EVP_MD_CTX_copy_ex(m->work, m->inner) == 1 &&
	    EVP_DigestUpdate(m->work, purpose, strlen(purpose)) == 1 &&
	    EVP_DigestUpdate(m->work, &zero, 1) == 1 && EVP_DigestUpdate(m->work, data, len) == 1 &&
	    EVP_DigestFinal_ex(m->work, ih, &n) == 1 && n == 32 &&
	    EVP_MD_CTX_copy_ex(m->work, m->outer) == 1 &&
	    EVP_DigestUpdate(m->work, ih, sizeof(ih)) == 1 &&
	    EVP_DigestFinal_ex(m->work, out, &n) == 1 && n == 32)
		rc = 0;
	secmem_wipe(ih, sizeof(ih));
	return rc;
}

/* ---- password-derived keys ---- */

/* Store mechanism name of each Digest algorithm's HA1 (enum digest_alg order). */
static const char *const digest_mech[DIGEST_ALG_COUNT] = {
    [DIGEST_MD5] = "digest-md5",
    [DIGEST_SHA256] = "digest-sha256",
    [DIGEST_SHA512_256] = "digest-sha512-256",
};

#define DIGEST_FORMS 2 /* "user" and "user@domain" */

static bool store_nt_hash;
static char netbios_domain[16];

void vault_ntlm_hashes(bool on)
{
	store_nt_hash = on;
}

void vault_netbios_domain(const char *name)
{
	snprintf(netbios_domain, sizeof(netbios_domain), "%s", name ? name : "");
}

int vault_set_password(struct store *s, const struct store_user *u, const char *password,
		       size_t password_len)
{
	struct store_cred creds[DIGEST_ALG_COUNT * (DIGEST_FORMS + 1) + DIGEST_FORMS];
	char user_at[2 * STORE_URI_MAX], nb_user[STORE_URI_MAX + 20];
	struct str names[DIGEST_FORMS + 1], realm, pw;
	int forms = DIGEST_FORMS;
	size_t n = 0;
	int rc = STORE_INVALID, len;

	if (!s || !u || (!password && password_len))
		return STORE_INVALID;
	len = snprintf(user_at, sizeof(user_at), "%s@%s", u->user, u->domain);
	if (!u->user[0] || !u->domain[0] || len < 0 || (size_t)len >= sizeof(user_at))
		return STORE_INVALID;
	names[0] = str_cstr(u->user);		   /* variant "user" */
	names[1] = str_make(user_at, (size_t)len); /* variant "user@domain" */
	if (netbios_domain[0]) {
		/* variant "domain\\user": the Windows form DOMAIN\user of web
		 * clients, with the configured NetBIOS domain as written */
		len = snprintf(nb_user, sizeof(nb_user), "%s\\%s", netbios_domain, u->user);
		if (len > 0 && (size_t)len < sizeof(nb_user))
			names[forms++] = str_make(nb_user, (size_t)len);
	}
	realm = str_cstr(u->domain); /* realm = domain for every stored HA1 */
	pw = str_make(password, password_len);
	memset(creds, 0, sizeof(creds));

	/*
	 * Digest HA1 = H(username:realm:password) for every algorithm and both
	 * user-name forms. The TURN long-term key (RFC 5389 §15.4,
	 * MD5(username:realm:password)) is exactly the "digest-md5" key, so
	 * TURN needs no key of its own.
	 */
	for (int alg = 0; alg < DIGEST_ALG_COUNT; alg++) {
		for (int form = 0; form < forms; form++, n++) {
			struct store_cred *c = &creds[n];

			snprintf(c->mech, sizeof(c->mech), "%s", digest_mech[alg]);
			snprintf(c->variant, sizeof(c->variant), "%s",
				 form == 0   ? "user"
				 : form == 1 ? "user@domain"
					     : "domain\\user");
			c->key_len = digest_alg_len((enum digest_alg)alg);
			if (c->key_len == 0 || c->key_len > sizeof(c->key) ||
			    digest_ha1((enum digest_alg)alg, names[form], realm, pw, c->key) < 0)
				goto out;
		}
	}
	/*
	 * The NT hash for NTLM (mech "nt", MD4 of the UTF-16LE password,
	 * MS-NLMP §3.3.1), when NTLM is offered, under both user-name forms, so
	 * that one password change replaces every key at once below.
	 */
	if (store_nt_hash) {
		for (int form = 0; form < DIGEST_FORMS; form++, n++) {
			struct store_cred *c = &creds[n];
			snprintf(c->mech, sizeof(c->mech), "nt");
			snprintf(c->variant, sizeof(c->variant), "%s",
				 form == 0 ? "user" : "user@domain");
			c->key_len = 16;
			if (ntlm_nt_hash(password, password_len, c->key) < 0)
				goto out;
		}
	}
	rc = store_cred_replace(s, u->id, creds, n); /* also sets password_changed */
	/* the TURN USERHASH index (RFC 8489 §14.4) beside the TURN keys */
	if (rc == STORE_OK)
		rc = vault_turn_userhash_put(s, u);
out:
	secmem_wipe(creds, sizeof(creds));
	return rc;
}

/*
 * Stand-in HA1 for users that do not exist or have no key: the response is
 * computed against it exactly as against a real key, so an unknown user
 * costs the same work as a known one. It can never match: the verdict for
 * those paths is fixed before the comparison.
 */
static const uint8_t dummy_ha1[STORE_KEY_MAX] = {
    0x5a, 0x17, 0xc3, 0x9e, 0x02, 0x6b, 0xd4, 0x81, 0x3f, 0xa0, 0x77, 0x1c, 0xe5, 0x48, 0x96, 0x2d,
    0xb3, 0x0e, 0x61, 0xfa, 0x8c, 0x25, 0x59, 0xd7, 0x14, 0xaf, 0x73, 0xc8, 0x3a, 0x90, 0x6e, 0x01,
};

/* Client hex in lower case into out (cap bytes); false if it does not fit. */
static bool lower_hex(struct str in, char *out, size_t cap)
{
	if (in.len >= cap)
		return false;
	for (size_t i = 0; i < in.len; i++)
		out[i] = (char)tolower((unsigned char)in.p[i]);
	out[in.len] = '\0';
	return true;
}

/*
 * Per-thread cache of Digest key lookups, so the hot path does not take a
 * SQLite read transaction (file locks, page reads) for every REGISTER.
 * Entries die at once when vault_cache_flush() bumps the generation
 * (rtcauthctl asks the daemon to do that after every user change; SIGHUP
 * does it too), and each thread polls the store's credentials version at
 * most once per cache_check_ms (1 s): a change made by any process (another
 * rtcauthctl, another server of a pool) empties the caches within a second.
 * VAULT_CACHE_TTL_MS is only a backstop on top of that. If the version
 * cannot be read, entries keep answering for ten polls (10 s) after the
 * last good one, then the cache is bypassed until it can be read again. Negative answers are
 * cached the same way, so known and unknown users cost the same and a flood
 * of unknown names does not reach the store. Keys are wiped on eviction and
 * when the thread ends. Store outages are never cached.
 */
#define VAULT_CACHE_SETS	4096 /* four entries each: 16,384 users per thread */
#define VAULT_CACHE_WAYS	4
#define VAULT_CACHE_SLOTS	(VAULT_CACHE_SETS * VAULT_CACHE_WAYS)
#define VAULT_CACHE_TTL_MS	300000
#define VAULT_CACHE_CHECK_MS	1000 /* default of cache_check_ms */
#define VAULT_CACHE_GRACE_POLLS 10   /* see cache_current */
#define VAULT_CACHE_NAME	64   /* longer names and realms go to the store */
#define VAULT_CACHE_URI		128  /* likewise for longer AORs */

struct cache_entry {
	uint64_t until_ms;
	uint32_t gen;
	int rc;
	uint8_t mech;
	uint8_t name_len;
	uint8_t realm_len;
	char name[VAULT_CACHE_NAME];
	char realm[VAULT_CACHE_NAME];
	int64_t user_id;
	bool enabled;
	bool has_password;
	char uri[VAULT_CACHE_URI];
	uint8_t key_len;
	uint8_t key[STORE_KEY_MAX];
};

/* Each way's hash is kept apart from the way, in tag[]: the eight
 * candidate ways of a key are probed in two cache lines of tags instead of
 * eight entries (~370 bytes each) touched in turn. */
struct cache_table {
	uint64_t tag[VAULT_CACHE_SLOTS];
	struct cache_entry e[VAULT_CACHE_SLOTS];
};

static _Atomic uint32_t cache_gen = 1;
static _Atomic unsigned cache_check_ms = VAULT_CACHE_CHECK_MS;
static _Atomic uint32_t cache_poll_epoch; /* bumped: every thread polls at its next lookup */
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static pthread_key_t cache_key;
static pthread_key_t user_cache_key; /* vault_user_get's table, below */

static void cache_free(void *p)
{
	if (p) {
		secmem_wipe(p, sizeof(struct cache_table));
		free(p);
	}
}

static void cache_setup(void)
{
	pthread_key_create(&cache_key, cache_free);
	pthread_key_create(&user_cache_key, free);
}

void vault_cache_flush(void)
{
	atomic_fetch_add(&cache_gen, 1);
}

void vault_cache_check_interval(unsigned ms)
{
	atomic_store(&cache_check_ms, ms);
	atomic_fetch_add(&cache_poll_epoch, 1);
}

static uint64_t cache_hash(struct str name, struct str realm, unsigned mech)
{
	uint64_t h = 1469598103934665603ULL ^ mech;
	for (size_t i = 0; i < name.len; i++)
		h = (h ^ (unsigned char)name.p[i]) * 1099511628211ULL;
	h = (h ^ 0xff) * 1099511628211ULL;
	for (size_t i = 0; i < realm.len; i++)
		h = (h ^ (unsigned char)realm.p[i]) * 1099511628211ULL;
	return h;
}

static bool entry_matches(const struct cache_entry *e, uint32_t gen, uint64_t now, unsigned mech,
			  struct str name, struct str realm)
{
	return e->gen == gen && e->until_ms > now && e->mech == mech && e->name_len == name.len &&
	       memcmp(e->name, name.p, name.len) == 0 && e->realm_len == realm.len &&
	       memcmp(e->realm, realm.p, realm.len) == 0;
}

static struct cache_table *cache_table(void)
{
	struct cache_table *tab;

	pthread_once(&cache_once, cache_setup);
	tab = pthread_getspecific(cache_key);
	if (!tab) {
		/* calloc'd: pages are only touched by the sets actually used */
		tab = calloc(1, sizeof(*tab));
		if (!tab || pthread_setspecific(cache_key, tab) != 0) {
			free(tab);
			return NULL;
		}
	}
	return tab;
}

/*
 * The entry for (name, realm, mech): the matching one of its set if any
 * (*hit set), else the way to fill (the expired or older one). NULL when
 * the cache cannot hold this name.
 */
static struct cache_entry *cache_slot(struct str name, struct str realm, unsigned mech,
				      uint64_t *hash, uint32_t gen, uint64_t now, bool *hit)
{
	struct cache_table *tab;
	struct cache_entry *cand[2], *victim, *free_way[2];
	size_t first[2];
	int n_free[2];

	*hit = false;
	if (name.len >= VAULT_CACHE_NAME || realm.len >= VAULT_CACHE_NAME)
		return NULL; /* unusual: go to the store */
	if (!(tab = cache_table()))
		return NULL;
	*hash = cache_hash(name, realm, mech);
	/* two candidate sets per key ("two choices"): with one, sets that
	 * draw more keys than ways keep evicting each other; with two, 10,000
	 * users fit the 16,384 entries with next to no eviction */
	first[0] = (*hash % VAULT_CACHE_SETS) * VAULT_CACHE_WAYS;
	first[1] = ((*hash >> 40) % VAULT_CACHE_SETS) * VAULT_CACHE_WAYS;
	for (int c = 0; c < 2; c++) {
		cand[c] = &tab->e[first[c]];
		for (int w = 0; w < VAULT_CACHE_WAYS; w++)
			if (tab->tag[first[c] + w] == *hash &&
			    entry_matches(&cand[c][w], gen, now, mech, name, realm)) {
				*hit = true;
				return &cand[c][w];
			}
	}
	/* fill the set with more unusable ways (least loaded: that is what
	 * keeps the sets balanced), else replace the way that expires first */
	victim = &cand[0][0];
	for (int c = 0; c < 2; c++) {
		free_way[c] = NULL;
		n_free[c] = 0;
		for (int w = 0; w < VAULT_CACHE_WAYS; w++) {
			struct cache_entry *e = &cand[c][w];
			if (e->gen != gen || e->until_ms <= now) {
				free_way[c] = e;
				n_free[c]++;
			} else if (e->until_ms < victim->until_ms) {
				victim = e;
			}
		}
	}
	if (n_free[0] || n_free[1])
		return n_free[0] >= n_free[1] ? free_way[0] : free_way[1];
	return victim;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/*
 * May this thread use its cache? Reads the store's credentials version at
 * most once per VAULT_CACHE_CHECK_MS; a new version empties every cache.
 */
static bool cache_current(struct store *s, uint64_t now)
{
	static _Thread_local int64_t seen = -1;
	static _Thread_local uint64_t checked, confirmed;
	static _Thread_local uint32_t epoch;
	static _Thread_local bool usable;
	uint64_t every = atomic_load_explicit(&cache_check_ms, memory_order_relaxed);
	uint32_t e = atomic_load_explicit(&cache_poll_epoch, memory_order_relaxed);
	int64_t v;

	if (checked && e == epoch && now - checked < every)
		return usable;
	checked = now;
	epoch = e;
	if (store_cred_version(s, &v) != STORE_OK) {
		/* a short hiccup (a lock, a busy disk) does not sign everyone
		 * out: entries confirmed in the last ten polls keep answering;
		 * after that, trust nothing we cannot confirm */
		usable = confirmed && now - confirmed < VAULT_CACHE_GRACE_POLLS * every;
		return usable;
	}
	if (v != seen) {
		if (seen != -1)
			vault_cache_flush();
		seen = v;
	}
	confirmed = now;
	usable = true;
	return true;
}

/* store_digest_lookup through the cache; same contract. */
static int cached_lookup(struct store *s, struct str name, struct str realm, unsigned mech,
			 struct store_user *u, struct store_cred *key)
{
	uint64_t h = 0, now = now_ms();
	struct cache_table *tab;
	bool use = cache_current(s, now);
	uint32_t gen = atomic_load(&cache_gen);
	bool hit = false;
	struct cache_entry *e = use ? cache_slot(name, realm, mech, &h, gen, now, &hit) : NULL;
	int rc;

	if (hit) {
		u->id = e->user_id;
		u->enabled = e->enabled;
		u->has_password = e->has_password;
		memcpy(u->uri, e->uri, sizeof(e->uri));
		memcpy(key->key, e->key, sizeof(key->key));
		key->key_len = e->key_len;
		return e->rc;
	}
	rc = store_digest_lookup(s, name, realm, digest_mech[mech], u, key);
	if (!e || (rc != STORE_OK && rc != STORE_NOTFOUND && rc != STORE_INVALID))
		return rc; /* outages are never remembered */
	if (strnlen(u->uri, sizeof(u->uri)) >= sizeof(e->uri) || key->key_len > sizeof(e->key))
		return rc; /* too long to keep: always from the store */
	secmem_wipe(e, sizeof(*e));
	tab = cache_table(); /* the table e is a way of */
	tab->tag[e - tab->e] = h;
	e->gen = gen;
	e->until_ms = now + VAULT_CACHE_TTL_MS;
	e->rc = rc;
	e->mech = (uint8_t)mech;
	e->name_len = (uint8_t)name.len;
	memcpy(e->name, name.p, name.len);
	e->realm_len = (uint8_t)realm.len;
	memcpy(e->realm, realm.p, realm.len);
	e->user_id = u->id;
	e->enabled = u->enabled;
	e->has_password = u->has_password;
	memcpy(e->uri, u->uri, strnlen(u->uri, sizeof(e->uri) - 1) + 1);
	e->key_len = (uint8_t)key->key_len;
	memcpy(e->key, key->key, e->key_len);
	return rc;
}

int vault_digest_key(struct store *s, struct str name, struct str realm, enum digest_alg alg,
		     struct store_user *u, struct store_cred *key)
{
	if (!s || !u || !key || (unsigned)alg >= DIGEST_ALG_COUNT)
		return STORE_INVALID;
	return cached_lookup(s, name, realm, (unsigned)alg, u, key);
}

/*
 * Per-thread cache of user records (vault_user_get), beside the key cache
 * and under its rules: the same generation (vault_cache_flush, and the
 * version poll of cache_current, which covers every change of users and
 * credentials), the same grace, TTL backstop and outage rule. It holds no
 * secret. Keyed by the caller's exact string (not normalised: the store
 * does that), so "sips:a@X" and "sip:a@x" are two entries of one user.
 * Small and 2-way: the hot paths ask about few users at a time (a partner's
 * API calls, the callee of an INVITE), and each entry is a whole struct
 * store_user (about 1 KB); calloc'd, so a thread only touches the pages of
 * the sets it uses.
 */
#define VAULT_USER_SETS 128
#define VAULT_USER_WAYS 2
#define VAULT_USER_IN	128 /* longer inputs go to the store */

struct user_entry {
	uint64_t hash;
	uint64_t until_ms;
	uint32_t gen;
	int rc;
	uint8_t in_len;
	char in[VAULT_USER_IN];
	struct store_user u; /* STORE_OK only */
};

/* The way that holds in (*hit set), else the way to fill (a dead one, else
 * the one that expires first); NULL when there is no table. */
static struct user_entry *user_slot(const char *in, size_t len, uint64_t h, uint32_t gen,
				    uint64_t now, bool *hit)
{
	struct user_entry *tab, *set, *victim = NULL;

	*hit = false;
	pthread_once(&cache_once, cache_setup);
	tab = pthread_getspecific(user_cache_key);
	if (!tab) {
		tab = calloc(VAULT_USER_SETS * VAULT_USER_WAYS, sizeof(*tab));
		if (!tab || pthread_setspecific(user_cache_key, tab) != 0) {
			free(tab);
			return NULL;
		}
	}
	set = &tab[(h % VAULT_USER_SETS) * VAULT_USER_WAYS];
	for (int w = 0; w < VAULT_USER_WAYS; w++) {
		struct user_entry *e = &set[w];

		if (e->gen == gen && e->until_ms > now && e->hash == h && e->in_len == len &&
		    memcmp(e->in, in, len) == 0) {
			*hit = true;
			return e;
		}
	}
	for (int w = 0; w < VAULT_USER_WAYS; w++) {
		struct user_entry *e = &set[w];

		if (e->gen != gen || e->until_ms <= now)
			return e;
		if (!victim || e->until_ms < victim->until_ms)
			victim = e;
	}
	return victim;
}

int vault_user_get(struct store *s, const char *uri, struct store_user *u)
{
	uint64_t h = 0, now;
	uint32_t gen = 0;
	size_t len;
	bool hit = false;
	struct user_entry *e = NULL;
	int rc;

	if (!s || !uri || !u)
		return STORE_INVALID;
	len = strnlen(uri, VAULT_USER_IN);
	if (len >= VAULT_USER_IN)
		return store_user_get(s, uri, u); /* unusual: never cached */
	now = now_ms();
	if (cache_current(s, now)) {
		gen = atomic_load(&cache_gen);
		h = cache_hash(str_make(uri, len), STR_NULL, 0xff);
		e = user_slot(uri, len, h, gen, now, &hit);
	}
	if (hit) {
		if (e->rc == STORE_OK)
			memcpy(u, &e->u, sizeof(*u));
		return e->rc; /* NOTFOUND, INVALID: *u untouched, as the store */
	}
	rc = store_user_get(s, uri, u);
	if (!e || (rc != STORE_OK && rc != STORE_NOTFOUND && rc != STORE_INVALID))
		return rc; /* outages are never remembered */
	memset(e, 0, sizeof(*e));
	e->hash = h;
	e->gen = gen;
	e->until_ms = now + VAULT_CACHE_TTL_MS;
	e->rc = rc;
	e->in_len = (uint8_t)len;
	memcpy(e->in, uri, len);
	if (rc == STORE_OK)
		memcpy(&e->u, u, sizeof(e->u));
	return rc;
}

struct verdict vault_digest_verify(struct store *s, const struct digest_creds *c, struct str method,
				   struct str body, struct str realm, struct store_user *user)
{
	char expected[DIGEST_MAX_RESPONSE + 1], got[DIGEST_MAX_RESPONSE + 1];
	struct store_user u;
	struct store_cred key;
	const uint8_t *ha1;
	const char *reason = NULL; /* set: PERMFAIL whatever the response */
	struct verdict v;
	bool match;
	int rc, n;

	if (!s || !c)
		return verdict_tempfail("internal_error");
	memset(&u, 0, sizeof(u));
	memset(&key, 0, sizeof(key));
	if (!str_eq(c->realm, realm))
		return verdict_permfail("wrong_realm");
	if ((unsigned)c->alg >= DIGEST_ALG_COUNT)
		return verdict_permfail("bad_algorithm");

	rc = cached_lookup(s, c->username, c->realm, (unsigned)c->alg, &u, &key);
	switch (rc) {
	case STORE_OK:
		ha1 = key.key;
		if (key.key_len != digest_alg_len(c->alg)) {
			secmem_wipe(&key, sizeof(key));
			return verdict_tempfail("store_unavailable"); /* a key of the wrong size */
		}
		if (!u.enabled)
			reason = "disabled";
		break;
	case STORE_NOTFOUND:
	case STORE_INVALID: /* a user name the store cannot hold: no such user */
		/* u.id is set when the user exists but has no key for this mech. */
		ha1 = dummy_ha1;
		reason = u.id > 0 && rc == STORE_NOTFOUND ? "no_password" : "unknown_user";
		break;
	default:
		/* An outage is "try later", never "wrong password". */
		secmem_wipe(&key, sizeof(key));
		return verdict_tempfail("store_unavailable");
	}

	/* The same work on every path from here: one response, one comparison. */
	n = digest_response(c, ha1, method, body, expected, sizeof(expected));
	match = n > 0 && lower_hex(c->response, got, sizeof(got)) && c->response.len == (size_t)n &&
		secmem_eq(got, expected, (size_t)n);
	secmem_wipe(expected, sizeof(expected));
	secmem_wipe(got, sizeof(got));
	secmem_wipe(&key, sizeof(key));

	if (n < 0)
		v = verdict_tempfail("internal_error");
	else if (reason)
		v = verdict_permfail(reason);
	else if (!match)
		v = verdict_permfail("bad_response");
	else
		v = verdict_ok();
	if (v.kind == VERDICT_OK && user)
		*user = u;
	return v;
}
