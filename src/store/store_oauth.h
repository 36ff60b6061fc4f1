/*
 * The OAuth state a pool of rtcauthd servers shares through the store
 * (issue 3; migration 8): client- and user-assertion jtis until they expire
 * (RFC 7523 §3 item 7: a jti accepted by one server is a replay at every
 * other), revoked tokens (RFC 7009) with a version every validator polls,
 * users' consent for application-trust partners (PROTOCOLS.md §6), and the
 * RFC 8705 §2.1 PKI names (subject DN or SAN) of partners.
 *
 * Same rules as store.h: a struct store is one connection of one thread;
 * every function returns STORE_OK or a negative enum store_err, and
 * STORE_UNAVAILABLE means the backend could not answer: callers fail closed
 * (a store outage is never "not replayed" nor "not revoked").
 *
 * Keys are 32-byte digests the callers compute (src/oauth): the store never
 * sees a jti nor a token.
 */
#ifndef RTC_STORE_STORE_OAUTH_H
#define RTC_STORE_STORE_OAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define STORE_OAUTH_KEY_LEN 32	/* jti and revocation keys: SHA-256 */
#define STORE_OAUTH_PURGE   256 /* rows one purge call deletes at most */

/* ---- used assertion jtis ---- */

/*
 * Record key (a time, then a digest of partner and jti: see
 * store_oauth_jti_purge) as used until expires (unix
 * seconds). STORE_OK the first time; STORE_CONFLICT while an earlier use
 * has not expired (expires >= now): a replay. A row that expired before
 * now is taken over (the assertion could no longer be accepted anyway).
 */
int store_oauth_jti_add(struct store *s, const uint8_t key[STORE_OAUTH_KEY_LEN], int64_t expires,
			int64_t now);
/*
 * Group commit: store_oauth_jti_add for each of rows[0..n) in one
 * transaction (one WAL write for a batch of assertions). results[i] gets
 * STORE_OK or STORE_CONFLICT. Returns STORE_OK, or the error that rolled
 * the whole batch back (then no row was recorded and results are void).
 */
struct store_oauth_jti {
	uint8_t key[STORE_OAUTH_KEY_LEN];
	int64_t expires;
};
int store_oauth_jti_add_many(struct store *s, const struct store_oauth_jti *rows, size_t n,
			     int64_t now, int *results);
/*
 * Delete at most limit (1..STORE_OAUTH_PURGE) rows that expired before now,
 * oldest first; *n (may be NULL) gets the count. Keys must lead with a
 * time in unix seconds, 8 bytes big-endian, never later than the row's
 * expires (token.c: the assertion's exp): the purge walks the primary key
 * up to key_before (the caller's now minus its clock skew), so the table
 * needs no index on expires.
 */
int store_oauth_jti_purge(struct store *s, int64_t now, int64_t key_before, int limit, int *n);

/* ---- revoked tokens ---- */

/*
 * Record key (the revocation key of a token, validate.c) as revoked until
 * expires. Revoking again is no change (STORE_OK). A new row moves the
 * revocation version (a trigger).
 */
int store_oauth_revoke_add(struct store *s, const uint8_t key[STORE_OAUTH_KEY_LEN], int64_t expires,
			   int64_t now);
/* Is key revoked (a row with expires >= now)? STORE_OK with *revoked set,
 * or an error (then *revoked is true: fail closed). */
int store_oauth_revoked(struct store *s, const uint8_t key[STORE_OAUTH_KEY_LEN], int64_t now,
			bool *revoked);
/* A number that grows with every new revocation by any server. */
int store_oauth_revoked_version(struct store *s, int64_t *version);
/* Delete at most limit rows that expired before now; *n may be NULL. */
int store_oauth_revoked_purge(struct store *s, int64_t now, int limit, int *n);

/* ---- consent of users for application-trust partners ---- */

#define STORE_CONSENT_BY_MAX 128 /* "rtcauthctl:root", "user:digest", NUL included */

struct store_oauth_consent {
	int64_t partner_id;
	char partner[STORE_PARTNER_NAME_MAX];
	int64_t user_id;
	char uri[STORE_URI_MAX];
	int64_t granted_at;
	char granted_by[STORE_CONSENT_BY_MAX];
};

/* Record (or renew: granted_at and granted_by replaced) the consent of user
 * user_id for partner partner_id. STORE_NOTFOUND when either is unknown. */
int store_oauth_consent_grant(struct store *s, int64_t partner_id, int64_t user_id, int64_t when,
			      const char *granted_by);
/* Withdraw it; STORE_NOTFOUND when there was none. */
int store_oauth_consent_revoke(struct store *s, int64_t partner_id, int64_t user_id);
/* STORE_OK with *yes set. */
int store_oauth_consent_has(struct store *s, int64_t partner_id, int64_t user_id, bool *yes);
/* The consents given to one partner (partner_id > 0, ordered by uri) or by
 * one user (user_id > 0, ordered by partner name); exactly one of the two.
 * fn may stop the walk by returning non-zero (returned). */
int store_oauth_consent_list(struct store *s, int64_t partner_id, int64_t user_id,
			     int (*fn)(void *ctx, const struct store_oauth_consent *c), void *ctx);

/* ---- RFC 8705 §2.1 names of a partner's PKI client certificate ---- */

#define STORE_TLS_SUBJECT_MAX 512 /* RFC 4514 string, NUL included */
#define STORE_TLS_SAN_MAX     320 /* "dns:...", "uri:...", "email:...", "ip:...", NUL included */

/* The registered subject DN and SAN ('' = none) of partner_id. STORE_NOTFOUND
 * for an unknown partner. */
int store_partner_tls_get(struct store *s, int64_t partner_id, char subject[STORE_TLS_SUBJECT_MAX],
			  char san[STORE_TLS_SAN_MAX]);
/* Set them by partner name (NULL keeps a field; '' clears it). The caller
 * validates them; the store checks sizes. STORE_NOTFOUND for an unknown
 * name. */
int store_partner_tls_set(struct store *s, const char *name, const char *subject, const char *san);

/* ---- a partner's trust level ---- */

/* Set the trust level (enum store_partner_trust) of partner name.
 * STORE_NOTFOUND for an unknown name, STORE_INVALID for another level.
 * Running validators see it at their next snapshot (oauth.reload). */
int store_partner_trust_set(struct store *s, const char *name, int trust);
/* Every partner's id, trust level and enabled flag (ordered by id), for
 * validators of a pool to see a change made at another server. fn may stop
 * the walk by returning non-zero (returned). */
int store_partner_trust_list(struct store *s,
			     int (*fn)(void *ctx, int64_t id, int trust, bool enabled), void *ctx);

#endif
