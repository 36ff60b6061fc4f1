/*
 * TURN credentials in the vault; see vault_turn.h. Must never log, return
 * or copy out a key or the shared secret; every buffer that held one is
 * wiped before it goes out of scope.
 */
#include "vault/vault_turn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/secmem.h"
#include "store/store_turn.h"
#include "vault/vault.h"

#define SECRET_FILE_MAX 1024

/*
 * The shared secret: immutable once published. A reload publishes a new one
 * with one atomic store; readers (any worker) load the pointer once per
 * check, lock-free. Replaced secrets stay allocated (a reader may still hold
 * one) until vault_turn_shutdown wipes and frees them: reloads are rare.
 */
struct secret {
	struct secret *older; /* the list of replaced ones (reload thread only) */
	size_t len;
	char v[SECRET_FILE_MAX + 1];
};

static _Atomic(struct secret *) cur_secret;
static struct secret *retired;
static uint8_t nonce_key[32];
static bool nonce_ready;

static _Thread_local struct {
	uint8_t key[TURN_KEY_MAX];
	size_t len;
	bool set;
} held;

/* Used for names we do not know, so they cost the same HMAC as real ones. */
static const uint8_t dummy_key[TURN_KEY_MAX] = {
    0x3c, 0x91, 0x5e, 0x07, 0xa2, 0x6d, 0xf4, 0x18, 0xbb, 0x40, 0x2e, 0x97, 0x65, 0xd1, 0x0a, 0x8f,
    0x72, 0xc6, 0x19, 0xe3, 0x5d, 0x84, 0x2b, 0xf0, 0x4e, 0xa7, 0x31, 0x9c, 0x06, 0xdb, 0x68, 0x15,
};

static int create_secret(const char *path, char *err, size_t errlen)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t raw[VAULT_TURN_SECRET_HEX / 2];
	char text[VAULT_TURN_SECRET_HEX + 1];
	int fd, rc = -1;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			return 0; /* another start made it first */
		snprintf(err, errlen,
			 "cannot create the TURN secret %s: %s; set [turn] secret_file", path,
			 strerror(errno));
		return -1;
	}
	if (secmem_random(raw, sizeof(raw)) < 0) {
		snprintf(err, errlen, "no random bytes for %s", path);
		goto out;
	}
	for (size_t i = 0; i < sizeof(raw); i++) {
		text[2 * i] = hex[raw[i] >> 4];
		text[2 * i + 1] = hex[raw[i] & 15];
	}
	text[VAULT_TURN_SECRET_HEX] = '\n';
	if (write(fd, text, sizeof(text)) != (ssize_t)sizeof(text) || fsync(fd) < 0) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	secmem_wipe(raw, sizeof(raw));
	secmem_wipe(text, sizeof(text));
	close(fd);
	if (rc < 0)
		unlink(path);
	return rc;
}

static int load_secret(const char *path, struct secret *out, char *err, size_t errlen)
{
	struct stat st;
	char buf[SECRET_FILE_MAX + 2];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "cannot open the TURN secret %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == 0 && (st.st_mode & 077)) {
		snprintf(err, errlen,
			 "TURN secret %s is readable by others (mode %o); chmod 600 it", path,
			 (unsigned)(st.st_mode & 0777));
		close(fd);
		return -1;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	/* one line: trailing newline and spaces are not part of the secret */
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	if (n <= 0 || n > SECRET_FILE_MAX) {
		snprintf(err, errlen, "TURN secret %s is %s (want one line, 1-%d bytes)", path,
			 n <= 0 ? "empty" : "too long", SECRET_FILE_MAX);
		secmem_wipe(buf, sizeof(buf));
		return -1;
	}
	memcpy(out->v, buf, (size_t)n);
	out->len = (size_t)n;
	secmem_wipe(buf, sizeof(buf));
	return 0;
}

static void secret_free(struct secret *x)
{
	if (x) {
		secmem_wipe(x, sizeof(*x));
		free(x);
	}
}

/* Publish a loaded secret; the one it replaces is retired. */
static void secret_publish(struct secret *x)
{
	struct secret *old = atomic_exchange(&cur_secret, x);

	if (old) {
		old->older = retired;
		retired = old;
	}
}

/* Load path into a fresh secret (not published). NULL with err. */
static struct secret *secret_read(const char *path, char *err, size_t errlen)
{
	struct secret *x = calloc(1, sizeof(*x));

	if (!x) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (load_secret(path, x, err, errlen) < 0) {
		secret_free(x);
		return NULL;
	}
	return x;
}

int vault_turn_reload_secret(const char *path, char *err, size_t errlen)
{
	struct secret *x;

	if (!nonce_ready) {
		snprintf(err, errlen, "TURN is not running: [turn] changes need a restart");
		return -1;
	}
	x = secret_read(path, err, errlen);
	if (!x)
		return -1;
	secret_publish(x);
	return 0;
}

int vault_turn_init(const char *path, char *err, size_t errlen)
{
	static const char purpose_data[] = "v1";

	struct secret *x;

	vault_turn_shutdown();
	if (create_secret(path, err, errlen) < 0 || !(x = secret_read(path, err, errlen)))
		return -1;
	secret_publish(x);
	if (vault_mac("turn-nonce", purpose_data, sizeof(purpose_data) - 1, nonce_key) < 0) {
		snprintf(err, errlen, "cannot derive the TURN nonce key (is the vault loaded?)");
		vault_turn_shutdown();
		return -1;
	}
	nonce_ready = true;
	return 0;
}

void vault_turn_shutdown(void)
{
	secret_free(atomic_exchange(&cur_secret, NULL));
	while (retired) {
		struct secret *x = retired;
		retired = x->older;
		secret_free(x);
	}
	secmem_wipe(nonce_key, sizeof(nonce_key));
	nonce_ready = false;
	vault_turn_forget();
}

int vault_turn_nonce_make(struct str bind, uint32_t features, int64_t now, char *out, size_t cap)
{
	if (!nonce_ready)
		return -1;
	return turn_nonce_make(nonce_key, sizeof(nonce_key), bind, features, now, out, cap);
}

enum turn_nonce_status vault_turn_nonce_check(struct str bind, struct str nonce, uint32_t lifetime,
					      int64_t now, uint32_t *features)
{
	if (!nonce_ready)
		return TURN_NONCE_INVALID;
	return turn_nonce_check(nonce_key, sizeof(nonce_key), bind, nonce, lifetime, now, features);
}

void vault_turn_forget(void)
{
	secmem_wipe(&held, sizeof(held));
}

/* The MAC the request carries, checked with key. 0, STUN_E_INTEGRITY, ... */
static int check_mac(const struct stun_msg *m, const uint8_t *key, size_t len)
{
	return m->mi256 >= 0 ? stun_check_integrity_sha256(m, key, len)
			     : stun_check_integrity(m, key, len);
}

/* "ephemeral:<user>": whose quota, also written to logs, so only plain
 * printable characters of the client-chosen name are kept ('?' for others). */
static void who_ephemeral(struct str user, char *who, size_t whocap)
{
	size_t n = snprintf(who, whocap, "ephemeral:");

	for (size_t i = 0; i < user.len && i < 200 && n + 1 < whocap; i++) {
		char c = user.p[i];
		who[n++] = c > ' ' && c <= '~' && c != '"' && c != '\\' && c != '=' ? c : '?';
	}
	who[n < whocap ? n : whocap - 1] = '\0';
}

static struct verdict check_ephemeral(const struct secret *sec, struct str username,
				      struct str realm, enum turn_pwalg alg,
				      const struct stun_msg *m, int64_t now, char *who,
				      size_t whocap)
{
	uint8_t key[TURN_KEY_MAX];
	int64_t expiry;
	struct str user;
	int n, rc;

	if (turn_cred_ephemeral_parse(username, &expiry, &user) < 0)
		return verdict_permfail("malformed");
	n = turn_cred_ephemeral_key(str_make(sec->v, sec->len), username, realm, alg, now, key);
	if (n == TURN_CRED_EXPIRED)
		return verdict_permfail("expired");
	if (n < 0)
		return n == TURN_CRED_MALFORMED ? verdict_permfail("malformed")
						: verdict_tempfail("internal_error");
	rc = check_mac(m, key, (size_t)n);
	if (rc == 0) {
		memcpy(held.key, key, (size_t)n);
		held.len = (size_t)n;
		held.set = true;
		who_ephemeral(user.len ? user : username, who, whocap);
	}
	secmem_wipe(key, sizeof(key));
	if (rc == STUN_E_INTERNAL)
		return verdict_tempfail("internal_error");
	return rc == 0 ? verdict_ok() : verdict_permfail("bad_integrity");
}

static struct verdict check_directory(struct store *s, struct str username, struct str realm,
				      enum turn_pwalg alg, const struct stun_msg *m, char *who,
				      size_t whocap)
{
	size_t want = alg == TURN_PWALG_SHA256 ? TURN_KEY_SHA256_LEN : TURN_KEY_MD5_LEN;
	struct store_user u;
	struct store_cred key;
	const uint8_t *k;
	const char *reason = NULL;
	int rc;

	memset(&u, 0, sizeof(u));
	memset(&key, 0, sizeof(key));
	/* the same rows as Digest, through vault.c's per-thread cache: without
	 * it every TURN request (Allocate, each Refresh, CreatePermission,
	 * ChannelBind) is a store read; a password change or a disabled user
	 * is seen within a second, at once after vault_cache_flush */
	rc = vault_digest_key(s, username, realm,
			      alg == TURN_PWALG_SHA256 ? DIGEST_SHA256 : DIGEST_MD5, &u, &key);
	switch (rc) {
	case STORE_OK:
		if (key.key_len != want) {
			secmem_wipe(&key, sizeof(key));
			return verdict_tempfail("store_unavailable"); /* a key of the wrong size */
		}
		k = key.key;
		if (!u.enabled)
			reason = "disabled";
		break;
	case STORE_NOTFOUND:
	case STORE_INVALID:
		k = dummy_key;
		reason = u.id > 0 && rc == STORE_NOTFOUND ? "no_password" : "unknown_user";
		break;
	default:
		secmem_wipe(&key, sizeof(key));
		return verdict_tempfail("store_unavailable");
	}
	/* the same work on every path: one HMAC, one constant-time comparison */
	rc = check_mac(m, k, want);
	if (rc == 0 && !reason) {
		memcpy(held.key, k, want);
		held.len = want;
		held.set = true;
		snprintf(who, whocap, "%s", u.uri);
	}
	secmem_wipe(&key, sizeof(key));
	if (rc == STUN_E_INTERNAL)
		return verdict_tempfail("internal_error");
	if (reason)
		return verdict_permfail(reason);
	return rc == 0 ? verdict_ok() : verdict_permfail("bad_integrity");
}

/* ---- USERHASH (RFC 8489 §9.2.4, §14.4) ---- */

/* The TURN user names of u: the user part and user@domain. 0 or -1. */
static int userhash_names(const struct store_user *u, char at[2 * STORE_URI_MAX], struct str n[2])
{
	int len = snprintf(at, 2 * STORE_URI_MAX, "%s@%s", u->user, u->domain);

	if (!u->user[0] || !u->domain[0] || len < 0 || len >= 2 * STORE_URI_MAX)
		return -1;
	n[0] = str_cstr(u->user);
	n[1] = str_make(at, (size_t)len);
	return 0;
}

int vault_turn_userhash_put(struct store *s, const struct store_user *u)
{
	uint8_t h[2][STORE_TURN_USERHASH_LEN];
	char at[2 * STORE_URI_MAX];
	struct str names[2];

	if (!s || !u || userhash_names(u, at, names) < 0)
		return STORE_INVALID;
	/* realm = the user's domain: the realm of every stored key */
	for (int i = 0; i < 2; i++)
		if (turn_cred_userhash(names[i], str_cstr(u->domain), h[i]) < 0)
			return STORE_UNAVAILABLE;
	return store_turn_userhash_put(s, u->id, (const uint8_t(*)[STORE_TURN_USERHASH_LEN])h, 2);
}

int vault_turn_userhash_backfill(struct store *s, size_t *done)
{
	enum { BATCH = 64 };
	struct store_user *batch = calloc(BATCH, sizeof(*batch));
	int64_t after = 0;
	size_t n = 0, filled;
	int rc;

	*done = 0;
	if (!batch)
		return STORE_UNAVAILABLE;
	do {
		rc = store_turn_userhash_missing(s, after, batch, BATCH, &n);
		/* one transaction per batch: a commit each would cost a sync each */
		if (rc != STORE_OK || n == 0 || (rc = store_begin(s)) != STORE_OK)
			break;
		filled = 0;
		for (size_t i = 0; rc == STORE_OK && i < n; i++) {
			after = batch[i].id;
			rc = vault_turn_userhash_put(s, &batch[i]);
			/* a name that cannot be hashed, a user deleted meanwhile */
			if (rc == STORE_INVALID || rc == STORE_NOTFOUND)
				rc = STORE_OK;
			else if (rc == STORE_OK)
				filled++;
		}
		if (rc == STORE_OK)
			rc = store_commit(s);
		else
			store_rollback(s);
		if (rc == STORE_OK)
			*done += filled;
	} while (rc == STORE_OK && n == BATCH);
	free(batch);
	return rc;
}

struct verdict vault_turn_check_userhash(struct store *s, const uint8_t hash[STUN_USERHASH_LEN],
					 struct str realm, enum turn_pwalg alg,
					 const struct stun_msg *m, char *who, size_t whocap)
{
	size_t want = alg == TURN_PWALG_SHA256 ? TURN_KEY_SHA256_LEN : TURN_KEY_MD5_LEN;
	char at[2 * STORE_URI_MAX];
	struct str names[2];
	struct store_user u;
	uint8_t h[STORE_TURN_USERHASH_LEN];
	int rc;

	vault_turn_forget();
	if (!m || !hash || !who || whocap == 0)
		return verdict_tempfail("internal_error");
	who[0] = '\0';
	if (alg != TURN_PWALG_MD5 && alg != TURN_PWALG_SHA256)
		return verdict_permfail("bad_algorithm");
	if (m->mi < 0 && m->mi256 < 0)
		return verdict_permfail("no_integrity");
	if (!s)
		return verdict_tempfail("store_unavailable");
	rc = store_turn_userhash_find(s, hash, &u);
	if (rc != STORE_OK && rc != STORE_NOTFOUND)
		return verdict_tempfail("store_unavailable");
	/* which of the user's names the client hashed, with this realm */
	if (rc == STORE_OK && userhash_names(&u, at, names) == 0) {
		for (int i = 0; i < 2; i++) {
			if (turn_cred_userhash(names[i], realm, h) == 0 &&
			    secmem_eq(h, hash, sizeof(h))) {
				return check_directory(s, names[i], realm, alg, m, who, whocap);
			}
		}
	}
	/* nobody (or a hash of another realm): the same work, the same answer */
	rc = check_mac(m, dummy_key, want);
	return rc == STUN_E_INTERNAL ? verdict_tempfail("internal_error")
				     : verdict_permfail("unknown_user");
}

struct verdict vault_turn_check(struct store *s, struct str username, struct str realm,
				enum turn_pwalg alg, const struct stun_msg *m, int64_t now,
				char *who, size_t whocap)
{
	const struct secret *sec;

	vault_turn_forget();
	if (!m || !who || whocap == 0)
		return verdict_tempfail("internal_error");
	who[0] = '\0';
	if (alg != TURN_PWALG_MD5 && alg != TURN_PWALG_SHA256)
		return verdict_permfail("bad_algorithm");
	if (m->mi < 0 && m->mi256 < 0)
		return verdict_permfail("no_integrity");
	sec = atomic_load_explicit(&cur_secret, memory_order_acquire);
	if (sec && memchr(username.p, ':', username.len))
		return check_ephemeral(sec, username, realm, alg, m, now, who, whocap);
	if (!s)
		return verdict_tempfail("store_unavailable");
	return check_directory(s, username, realm, alg, m, who, whocap);
}

int vault_turn_sign(struct stun_builder *b, bool sha256)
{
	int rc;

	if (!held.set)
		return -1;
	rc = sha256 ? stun_build_integrity_sha256(b, held.key, held.len)
		    : stun_build_integrity(b, held.key, held.len);
	vault_turn_forget();
	return rc < 0 ? -1 : 0;
}

int vault_turn_issue(struct str user, int64_t expiry, char *username, size_t ucap, char *password,
		     size_t pcap)
{
	const struct secret *sec = atomic_load_explicit(&cur_secret, memory_order_acquire);

	if (!sec)
		return -1; /* TURN not started: no secret */
	return turn_cred_ephemeral_make(str_make(sec->v, sec->len), expiry, user, username, ucap,
					password, pcap) == TURN_CRED_OK
		   ? 0
		   : -1;
}
