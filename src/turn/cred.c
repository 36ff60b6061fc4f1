/*
 * TURN credential primitives. See cred.h.
 *
 * Ephemeral credentials follow coturn's use-auth-secret (the "TURN REST
 * API"): the timestamp is the part before the first ':' when that part is all
 * digits, the part after it otherwise, or the whole username when there is
 * no ':'. The password is base64(HMAC-SHA1(secret, whole username)).
 *
 * Must never: log, compare a MAC or password with memcmp, leave a derived
 * password or key on the stack.
 */
#include "turn/cred.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/b64.h"
#include "core/secmem.h"
#include "turn/stun.h"

static const char nonce_label[] = "rtcauth-turn-nonce";

/* digest of a ":" b [":" c] */
static int hash_colon(const EVP_MD *md, struct str a, struct str b, const struct str *c,
		      uint8_t *out, unsigned *outlen)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;

	if (!ctx)
		return -1;
	ok = EVP_DigestInit_ex2(ctx, md, NULL) == 1 && EVP_DigestUpdate(ctx, a.p, a.len) == 1 &&
	     EVP_DigestUpdate(ctx, ":", 1) == 1 && EVP_DigestUpdate(ctx, b.p, b.len) == 1;
	if (ok && c)
		ok = EVP_DigestUpdate(ctx, ":", 1) == 1 && EVP_DigestUpdate(ctx, c->p, c->len) == 1;
	ok = ok && EVP_DigestFinal_ex(ctx, out, outlen) == 1;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -1;
}

int turn_cred_key(enum turn_pwalg alg, struct str username, struct str realm, struct str password,
		  uint8_t out[TURN_KEY_MAX])
{
	const EVP_MD *md;
	unsigned n = 0;

	switch (alg) {
	case TURN_PWALG_MD5:
		md = EVP_md5(); /* RFC 8489 §18.5.1.1 */
		break;
	case TURN_PWALG_SHA256:
		md = EVP_sha256(); /* §18.5.1.2 */
		break;
	default:
		return -1;
	}
	if (!md || hash_colon(md, username, realm, &password, out, &n) < 0)
		return -1;
	return (int)n;
}

int turn_cred_userhash(struct str username, struct str realm, uint8_t out[32])
{
	unsigned n = 0;

	return hash_colon(EVP_sha256(), username, realm, NULL, out, &n) == 0 && n == 32 ? 0 : -1;
}

/* ---- ephemeral credentials ---- */

static bool all_digits(const char *p, size_t n)
{
	if (n == 0 || n > 19)
		return false;
	for (size_t i = 0; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return false;
	return true;
}

static int64_t digits_value(const char *p, size_t n)
{
	int64_t v = 0;

	for (size_t i = 0; i < n; i++) {
		if (v > (INT64_MAX - (p[i] - '0')) / 10)
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

int turn_cred_ephemeral_parse(struct str username, int64_t *expiry, struct str *user)
{
	const char *colon;
	const char *ts;
	size_t tslen;

	*expiry = 0;
	*user = STR_NULL;
	if (username.len == 0 || username.len > TURN_EPH_USERNAME_MAX)
		return TURN_CRED_MALFORMED;
	colon = memchr(username.p, ':', username.len);
	if (!colon) {
		ts = username.p;
		tslen = username.len;
	} else if (all_digits(username.p, (size_t)(colon - username.p))) {
		ts = username.p; /* "<expiry>:<user>" */
		tslen = (size_t)(colon - username.p);
		*user = str_make(colon + 1, username.len - tslen - 1);
	} else {
		ts = colon + 1; /* coturn's other order: "<user>:<expiry>" */
		tslen = username.len - (size_t)(ts - username.p);
		*user = str_make(username.p, (size_t)(colon - username.p));
	}
	if (!all_digits(ts, tslen) || (*expiry = digits_value(ts, tslen)) < 0) {
		*expiry = 0;
		*user = STR_NULL;
		return TURN_CRED_MALFORMED;
	}
	return 0;
}

int turn_cred_ephemeral_password(struct str secret, struct str username, char *out, size_t cap)
{
	uint8_t mac[20];
	int rc = TURN_CRED_ERROR;

	if (cap)
		out[0] = '\0';
	if (stun_hmac_sha1(secret.p, secret.len, username.p, username.len, mac) == 0 &&
	    b64_std_encode(mac, sizeof(mac), out, cap) == TURN_EPH_PASSWORD_LEN)
		rc = 0;
	secmem_wipe(mac, sizeof(mac));
	return rc;
}

int turn_cred_ephemeral_make(struct str secret, int64_t expiry, struct str user, char *username,
			     size_t ucap, char *password, size_t pcap)
{
	int n;

	if (ucap)
		username[0] = '\0';
	if (pcap)
		password[0] = '\0';
	if (expiry <= 0 || memchr(user.p ? user.p : "", ':', user.len))
		return TURN_CRED_MALFORMED;
	if (user.len)
		n = snprintf(username, ucap, "%lld:%.*s", (long long)expiry, STR_FMT(user));
	else
		n = snprintf(username, ucap, "%lld", (long long)expiry);
	if (n < 0 || (size_t)n >= ucap) {
		if (ucap)
			username[0] = '\0';
		return n > TURN_EPH_USERNAME_MAX ? TURN_CRED_MALFORMED : TURN_CRED_ERROR;
	}
	if (n > TURN_EPH_USERNAME_MAX) {
		username[0] = '\0';
		return TURN_CRED_MALFORMED;
	}
	if (turn_cred_ephemeral_password(secret, str_make(username, (size_t)n), password, pcap) <
	    0) {
		username[0] = '\0';
		return TURN_CRED_ERROR;
	}
	return TURN_CRED_OK;
}

int turn_cred_ephemeral_check(struct str secret, struct str username, struct str password,
			      int64_t now)
{
	char want[TURN_EPH_PASSWORD_LEN + 1];
	struct str user;
	int64_t expiry;
	int rc;

	if (turn_cred_ephemeral_parse(username, &expiry, &user) < 0)
		return TURN_CRED_MALFORMED;
	if (expiry <= now)
		return TURN_CRED_EXPIRED;
	if (turn_cred_ephemeral_password(secret, username, want, sizeof(want)) < 0)
		return TURN_CRED_ERROR;
	rc = password.len == TURN_EPH_PASSWORD_LEN &&
		     secmem_eq(want, password.p, TURN_EPH_PASSWORD_LEN)
		 ? TURN_CRED_OK
		 : TURN_CRED_MISMATCH;
	secmem_wipe(want, sizeof(want));
	return rc;
}

int turn_cred_ephemeral_key(struct str secret, struct str username, struct str realm,
			    enum turn_pwalg alg, int64_t now, uint8_t key[TURN_KEY_MAX])
{
	char pw[TURN_EPH_PASSWORD_LEN + 1];
	struct str user;
	int64_t expiry;
	int n;

	if (turn_cred_ephemeral_parse(username, &expiry, &user) < 0)
		return TURN_CRED_MALFORMED;
	if (expiry <= now)
		return TURN_CRED_EXPIRED;
	if (turn_cred_ephemeral_password(secret, username, pw, sizeof(pw)) < 0)
		return TURN_CRED_ERROR;
	n = turn_cred_key(alg, username, realm, str_make(pw, TURN_EPH_PASSWORD_LEN), key);
	secmem_wipe(pw, sizeof(pw));
	return n < 0 ? TURN_CRED_ERROR : n;
}

/* ---- nonces ---- */

#define NONCE_MAC_LEN  16
#define NONCE_RAW_LEN  (8 + NONCE_MAC_LEN)
#define NONCE_BODY_LEN 32 /* base64url of 24 bytes */

static int nonce_mac(const uint8_t *key, size_t keylen, struct str bind, uint32_t features,
		     uint64_t ts, uint8_t out[NONCE_MAC_LEN])
{
	uint8_t in[sizeof(nonce_label) + 3 + 8 + TURN_NONCE_BIND_MAX], mac[32];
	size_t n = 0;
	int rc = -1;

	if (bind.len > TURN_NONCE_BIND_MAX || keylen < 16)
		return -1;
	memcpy(in, nonce_label, sizeof(nonce_label)); /* with its NUL: a separator */
	n = sizeof(nonce_label);
	in[n++] = (uint8_t)(features >> 16);
	in[n++] = (uint8_t)(features >> 8);
	in[n++] = (uint8_t)features;
	for (int i = 7; i >= 0; i--)
		in[n++] = (uint8_t)(ts >> (8 * i));
	if (bind.len)
		memcpy(in + n, bind.p, bind.len);
	n += bind.len;
	if (stun_hmac_sha256(key, keylen, in, n, mac) == 0) {
		memcpy(out, mac, NONCE_MAC_LEN);
		rc = 0;
	}
	secmem_wipe(mac, sizeof(mac));
	return rc;
}

int turn_nonce_make(const uint8_t *key, size_t keylen, struct str bind, uint32_t features,
		    int64_t now, char *out, size_t cap)
{
	uint8_t raw[NONCE_RAW_LEN], feat[3];
	size_t pos = 0;

	if (cap)
		out[0] = '\0';
	if (features > 0xFFFFFF || now < 0 || cap < TURN_NONCE_MAX + 1)
		return -1;
	for (int i = 0; i < 8; i++)
		raw[i] = (uint8_t)((uint64_t)now >> (56 - 8 * i));
	if (nonce_mac(key, keylen, bind, features, (uint64_t)now, raw + 8) < 0)
		return -1;
	if (features) {
		memcpy(out, TURN_NONCE_COOKIE, TURN_NONCE_COOKIE_LEN);
		pos = TURN_NONCE_COOKIE_LEN;
		feat[0] = (uint8_t)(features >> 16);
		feat[1] = (uint8_t)(features >> 8);
		feat[2] = (uint8_t)features;
		if (b64_std_encode(feat, 3, out + pos, cap - pos) != 4)
			return -1;
		pos += 4;
	}
	if (b64_url_encode(raw, sizeof(raw), out + pos, cap - pos) != NONCE_BODY_LEN) {
		out[0] = '\0';
		return -1;
	}
	return (int)(pos + NONCE_BODY_LEN);
}

int turn_nonce_features(struct str nonce, uint32_t *features)
{
	uint8_t feat[3];
	size_t n = 0;

	*features = 0;
	if (nonce.len < TURN_NONCE_COOKIE_LEN + 4 ||
	    memcmp(nonce.p, TURN_NONCE_COOKIE, TURN_NONCE_COOKIE_LEN) != 0 ||
	    b64_std_decode(nonce.p + TURN_NONCE_COOKIE_LEN, 4, feat, sizeof(feat), &n) < 0 ||
	    n != 3)
		return -1;
	*features = (uint32_t)feat[0] << 16 | (uint32_t)feat[1] << 8 | feat[2];
	return 0;
}

enum turn_nonce_status turn_nonce_check(const uint8_t *key, size_t keylen, struct str bind,
					struct str nonce, uint32_t lifetime, int64_t now,
					uint32_t *features)
{
	uint8_t raw[NONCE_RAW_LEN], want[NONCE_MAC_LEN];
	uint32_t feat = 0;
	uint64_t ts = 0;
	size_t n = 0;
	bool ok;

	if (features)
		*features = 0;
	if (turn_nonce_features(nonce, &feat) == 0) {
		nonce.p += TURN_NONCE_COOKIE_LEN + 4;
		nonce.len -= TURN_NONCE_COOKIE_LEN + 4;
		if (feat == 0)
			return TURN_NONCE_INVALID; /* we never send a cookie without a feature */
	}
	if (nonce.len != NONCE_BODY_LEN ||
	    b64_url_decode(nonce.p, nonce.len, raw, sizeof(raw), &n) < 0 || n != sizeof(raw))
		return TURN_NONCE_INVALID;
	for (int i = 0; i < 8; i++)
		ts = ts << 8 | raw[i];
	if (nonce_mac(key, keylen, bind, feat, ts, want) < 0)
		return TURN_NONCE_INVALID;
	ok = secmem_eq(want, raw + 8, NONCE_MAC_LEN);
	secmem_wipe(want, sizeof(want));
	if (!ok || now < 0 || ts > (uint64_t)now + TURN_NONCE_SKEW)
		return TURN_NONCE_INVALID;
	if (features)
		*features = feat;
	if ((uint64_t)now >= ts && (uint64_t)now - ts >= lifetime)
		return TURN_NONCE_STALE;
	return TURN_NONCE_OK;
}
