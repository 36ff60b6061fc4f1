/*
 * The SQLite queries of store_oauth.h: pool-wide jtis and revocations,
 * consent, partners' PKI names (migration 8 in sqlite.c). Statements live
 * in the slots STORE_EXT_OAUTH_FIRST.. (sqlite_int.h), prepared once per
 * connection.
 *
 * Must never turn a backend error into "not replayed", "not revoked" or
 * "no consent" silently: every error goes back to the caller as an error.
 */
#include "store/store_oauth.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "store/sqlite_int.h"

enum {
	SL_JTI_ADD = STORE_EXT_OAUTH_FIRST,
	SL_JTI_PURGE,
	SL_REV_ADD,
	SL_REV_GET,
	SL_REV_VERSION,
	SL_REV_PURGE,
	SL_CONSENT_GRANT,
	SL_CONSENT_REVOKE,
	SL_CONSENT_HAS,
	SL_CONSENT_LIST_P,
	SL_CONSENT_LIST_U,
	SL_TLS_GET,
	SL_TLS_SET,
	SL_PARTNER_EXISTS,
	SL_USER_EXISTS,
	SL_TRUST_SET,
	SL_TRUST_LIST,
	SL_LAST
};
_Static_assert(SL_LAST <= STORE_EXT_OAUTH_FIRST + 24, "sqlite_oauth.c owns 24 slots");

static int bind_key(struct store *s, sqlite3_stmt *st, int i, const uint8_t *key)
{
	return store_bind_blob(s, st, i, key, STORE_OAUTH_KEY_LEN, "key");
}

/* ---- jtis ---- */

int store_oauth_jti_add(struct store *s, const uint8_t key[STORE_OAUTH_KEY_LEN], int64_t expires,
			int64_t now)
{
	/* a live row makes the upsert a no-op (0 changes): a replay; an
	 * expired row is taken over */
	static const char sql[] = "INSERT INTO oauth_jti (key, expires) VALUES (?1, ?2)"
				  " ON CONFLICT(key) DO UPDATE SET expires = excluded.expires"
				  " WHERE oauth_jti.expires < ?3";
	sqlite3_stmt *st;
	int err = STORE_OK;

	if (!(st = store_ext_stmt(s, SL_JTI_ADD, sql, &err)))
		return err;
	if ((err = bind_key(s, st, 1, key)) || (err = store_bind_int(s, st, 2, expires)) ||
	    (err = store_bind_int(s, st, 3, now))) {
		store_stmt_done(st);
		return err;
	}
	err = store_stmt_exec(s, st);
	if (err == STORE_OK && sqlite3_changes(sqlite3_db_handle(st)) == 0)
		err = STORE_CONFLICT;
	return err;
}

int store_oauth_jti_add_many(struct store *s, const struct store_oauth_jti *rows, size_t n,
			     int64_t now, int *results)
{
	bool own = false;
	int err;

	if (!rows || !results)
		return store_invalid(s, "jti rows");
	if ((err = store_tx_begin(s, &own)))
		return err;
	for (size_t i = 0; i < n && err == STORE_OK; i++) {
		results[i] = store_oauth_jti_add(s, rows[i].key, rows[i].expires, now);
		if (results[i] != STORE_OK && results[i] != STORE_CONFLICT)
			err = results[i];
	}
	return store_tx_end(s, own, err);
}

/* sql binds ?1 now, ?2 limit and, when bound is not NULL, ?3 an 8-byte key bound */
static int purge(struct store *s, int slot, const char *sql, int64_t now, int limit,
		 const uint8_t *bound, int *n)
{
	sqlite3_stmt *st;
	int err = STORE_OK;

	if (n)
		*n = 0;
	if (limit < 1 || limit > STORE_OAUTH_PURGE)
		return store_invalid(s, "purge limit");
	if (!(st = store_ext_stmt(s, slot, sql, &err)))
		return err;
	if ((err = store_bind_int(s, st, 1, now)) || (err = store_bind_int(s, st, 2, limit)) ||
	    (bound && (err = store_bind_blob(s, st, 3, bound, 8, "key bound")))) {
		store_stmt_done(st);
		return err;
	}
	err = store_stmt_exec(s, st);
	if (err == STORE_OK && n)
		*n = sqlite3_changes(sqlite3_db_handle(st));
	return err;
}

int store_oauth_jti_purge(struct store *s, int64_t now, int64_t key_before, int limit, int *n)
{
	uint8_t bound[8];

	/* bounded work: keys lead with a big-endian time (store_oauth.h), so
	 * the oldest rows come first in the primary key and no second index
	 * is kept up to date by every insert */
	if (key_before < 0)
		key_before = 0;
	for (int i = 0; i < 8; i++)
		bound[i] = (uint8_t)((uint64_t)key_before >> (56 - 8 * i));
	return purge(s, SL_JTI_PURGE,
		     "DELETE FROM oauth_jti WHERE key IN (SELECT key FROM oauth_jti"
		     " WHERE key < ?3 AND expires < ?1 ORDER BY key LIMIT ?2)",
		     now, limit, bound, n);
}

/* ---- revocations ---- */

int store_oauth_revoke_add(struct store *s, const uint8_t key[STORE_OAUTH_KEY_LEN], int64_t expires,
			   int64_t now)
{
	/* an existing row (the same token revoked again) stays: no new
	 * version, nothing for the pool to re-read */
	static const char sql[] = "INSERT INTO oauth_revoked (hash, expires, revoked_at)"
				  " VALUES (?1, ?2, ?3) ON CONFLICT(hash) DO UPDATE SET"
				  " expires = max(oauth_revoked.expires, excluded.expires)";
	sqlite3_stmt *st;
	int err = STORE_OK;

	if (!(st = store_ext_stmt(s, SL_REV_ADD, sql, &err)))
		return err;
	if ((err = bind_key(s, st, 1, key)) || (err = store_bind_int(s, st, 2, expires)) ||
	    (err = store_bind_int(s, st, 3, now))) {
		store_stmt_done(st);
		return err;
	}
	return store_stmt_exec(s, st);
}

int store_oauth_revoked(struct store *s, const uint8_t key[STORE_OAUTH_KEY_LEN], int64_t now,
			bool *revoked)
{
	static const char sql[] = "SELECT 1 FROM oauth_revoked WHERE hash = ?1 AND expires >= ?2";
	sqlite3_stmt *st;
	int err = STORE_OK, rc;

	*revoked = true; /* until the store says otherwise */
	if (!(st = store_ext_stmt(s, SL_REV_GET, sql, &err)))
		return err;
	if ((err = bind_key(s, st, 1, key)) || (err = store_bind_int(s, st, 2, now))) {
		store_stmt_done(st);
		return err;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		err = STORE_OK;
	else if (rc == SQLITE_DONE)
		*revoked = false;
	else
		err = store_fail(s, rc);
	store_stmt_done(st);
	return err;
}

int store_oauth_revoked_version(struct store *s, int64_t *version)
{
	sqlite3_stmt *st;
	int err = STORE_OK, rc;

	*version = -1;
	if (!(st = store_ext_stmt(s, SL_REV_VERSION,
				  "SELECT v FROM oauth_revoked_version WHERE id = 1", &err)))
		return err;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*version = sqlite3_column_int64(st, 0);
	else
		err = rc == SQLITE_DONE ? store_invalid(s, "revocation version row")
					: store_fail(s, rc);
	store_stmt_done(st);
	return err;
}

int store_oauth_revoked_purge(struct store *s, int64_t now, int limit, int *n)
{
	return purge(s, SL_REV_PURGE,
		     "DELETE FROM oauth_revoked WHERE hash IN (SELECT hash FROM oauth_revoked"
		     " WHERE expires < ?1 ORDER BY expires LIMIT ?2)",
		     now, limit, NULL, n);
}

/* ---- consent ---- */

/* Does the row id exist in the table of slot's query? */
static int exists(struct store *s, int slot, const char *sql, int64_t id)
{
	sqlite3_stmt *st;
	int err = STORE_OK, rc;

	if (!(st = store_ext_stmt(s, slot, sql, &err)))
		return err;
	if ((err = store_bind_int(s, st, 1, id))) {
		store_stmt_done(st);
		return err;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		err = STORE_NOTFOUND;
	else if (rc != SQLITE_ROW)
		err = store_fail(s, rc);
	store_stmt_done(st);
	return err;
}

int store_oauth_consent_grant(struct store *s, int64_t partner_id, int64_t user_id, int64_t when,
			      const char *granted_by)
{
	static const char sql[] =
	    "INSERT INTO oauth_consent (partner_id, user_id, granted_at, granted_by)"
	    " VALUES (?1, ?2, ?3, ?4) ON CONFLICT(partner_id, user_id) DO UPDATE SET"
	    " granted_at = excluded.granted_at, granted_by = excluded.granted_by";
	sqlite3_stmt *st;
	bool own = false;
	int err;

	if (partner_id <= 0 || user_id <= 0)
		return store_invalid(s, "partner or user id");
	if ((err = store_tx_begin(s, &own)))
		return err;
	err = exists(s, SL_PARTNER_EXISTS, "SELECT 1 FROM partners WHERE id = ?1", partner_id);
	if (!err)
		err = exists(s, SL_USER_EXISTS, "SELECT 1 FROM users WHERE id = ?1", user_id);
	if (!err && (st = store_ext_stmt(s, SL_CONSENT_GRANT, sql, &err))) {
		if ((err = store_bind_int(s, st, 1, partner_id)) ||
		    (err = store_bind_int(s, st, 2, user_id)) ||
		    (err = store_bind_int(s, st, 3, when)) ||
		    (err =
			 store_bind_text(s, st, 4, granted_by, STORE_CONSENT_BY_MAX, "granted_by")))
			store_stmt_done(st);
		else
			err = store_stmt_exec(s, st);
	}
	return store_tx_end(s, own, err);
}

int store_oauth_consent_revoke(struct store *s, int64_t partner_id, int64_t user_id)
{
	sqlite3_stmt *st;
	int err = STORE_OK;

	if (!(st = store_ext_stmt(
		  s, SL_CONSENT_REVOKE,
		  "DELETE FROM oauth_consent WHERE partner_id = ?1 AND user_id = ?2", &err)))
		return err;
	if ((err = store_bind_int(s, st, 1, partner_id)) ||
	    (err = store_bind_int(s, st, 2, user_id))) {
		store_stmt_done(st);
		return err;
	}
	err = store_stmt_exec(s, st);
	if (err == STORE_OK && sqlite3_changes(sqlite3_db_handle(st)) == 0)
		err = STORE_NOTFOUND;
	return err;
}

int store_oauth_consent_has(struct store *s, int64_t partner_id, int64_t user_id, bool *yes)
{
	sqlite3_stmt *st;
	int err = STORE_OK, rc;

	*yes = false;
	if (!(st = store_ext_stmt(
		  s, SL_CONSENT_HAS,
		  "SELECT 1 FROM oauth_consent WHERE partner_id = ?1 AND user_id = ?2", &err)))
		return err;
	if ((err = store_bind_int(s, st, 1, partner_id)) ||
	    (err = store_bind_int(s, st, 2, user_id))) {
		store_stmt_done(st);
		return err;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*yes = true;
	else if (rc != SQLITE_DONE)
		err = store_fail(s, rc);
	store_stmt_done(st);
	return err;
}

int store_oauth_consent_list(struct store *s, int64_t partner_id, int64_t user_id,
			     int (*fn)(void *ctx, const struct store_oauth_consent *c), void *ctx)
{
	static const char by_partner[] =
	    "SELECT c.partner_id, p.name, c.user_id, u.uri, c.granted_at, c.granted_by"
	    " FROM oauth_consent c JOIN partners p ON p.id = c.partner_id"
	    " JOIN users u ON u.id = c.user_id WHERE c.partner_id = ?1 ORDER BY u.uri";
	static const char by_user[] =
	    "SELECT c.partner_id, p.name, c.user_id, u.uri, c.granted_at, c.granted_by"
	    " FROM oauth_consent c JOIN partners p ON p.id = c.partner_id"
	    " JOIN users u ON u.id = c.user_id WHERE c.user_id = ?1 ORDER BY p.name";
	struct store_oauth_consent c;
	sqlite3_stmt *st;
	int err = STORE_OK, rc, stop = 0;

	if ((partner_id > 0) == (user_id > 0) || !fn)
		return store_invalid(s, "consent list (one partner or one user)");
	st = partner_id > 0 ? store_ext_stmt(s, SL_CONSENT_LIST_P, by_partner, &err)
			    : store_ext_stmt(s, SL_CONSENT_LIST_U, by_user, &err);
	if (!st)
		return err;
	if ((err = store_bind_int(s, st, 1, partner_id > 0 ? partner_id : user_id))) {
		store_stmt_done(st);
		return err;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&c, 0, sizeof(c));
		c.partner_id = sqlite3_column_int64(st, 0);
		c.user_id = sqlite3_column_int64(st, 2);
		c.granted_at = sqlite3_column_int64(st, 4);
		if (store_col_text(st, 1, c.partner, sizeof(c.partner)) < 0 ||
		    store_col_text(st, 3, c.uri, sizeof(c.uri)) < 0 ||
		    store_col_text(st, 5, c.granted_by, sizeof(c.granted_by)) < 0) {
			err = store_invalid(s, "stored consent row (too long)");
			break;
		}
		if ((stop = fn(ctx, &c)) != 0)
			break;
	}
	if (!err && !stop && rc != SQLITE_DONE)
		err = store_fail(s, rc);
	store_stmt_done(st);
	return err ? err : stop;
}

/* ---- PKI names of partners ---- */

int store_partner_tls_get(struct store *s, int64_t partner_id, char subject[STORE_TLS_SUBJECT_MAX],
			  char san[STORE_TLS_SAN_MAX])
{
	sqlite3_stmt *st;
	int err = STORE_OK, rc;

	subject[0] = san[0] = '\0';
	if (!(st = store_ext_stmt(s, SL_TLS_GET,
				  "SELECT tls_subject, tls_san FROM partners WHERE id = ?1", &err)))
		return err;
	if ((err = store_bind_int(s, st, 1, partner_id))) {
		store_stmt_done(st);
		return err;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (store_col_text(st, 0, subject, STORE_TLS_SUBJECT_MAX) < 0 ||
		    store_col_text(st, 1, san, STORE_TLS_SAN_MAX) < 0) {
			subject[0] = san[0] = '\0';
			err = store_invalid(s, "stored TLS subject or SAN (too long)");
		}
	} else if (rc == SQLITE_DONE) {
		err = STORE_NOTFOUND;
	} else {
		err = store_fail(s, rc);
	}
	store_stmt_done(st);
	return err;
}

int store_partner_tls_set(struct store *s, const char *name, const char *subject, const char *san)
{
	static const char sql[] = "UPDATE partners SET tls_subject = coalesce(?2, tls_subject),"
				  " tls_san = coalesce(?3, tls_san), updated = ?4 WHERE name = ?1";
	sqlite3_stmt *st;
	int err = STORE_OK;

	if (!name || !name[0])
		return store_invalid(s, "partner name");
	if (!(st = store_ext_stmt(s, SL_TLS_SET, sql, &err)))
		return err;
	if ((err = store_bind_text(s, st, 1, name, STORE_PARTNER_NAME_MAX, "partner name")) ||
	    (subject &&
	     (err = store_bind_text(s, st, 2, subject, STORE_TLS_SUBJECT_MAX, "TLS subject"))) ||
	    (san && (err = store_bind_text(s, st, 3, san, STORE_TLS_SAN_MAX, "TLS SAN"))) ||
	    (err = store_bind_int(s, st, 4, (int64_t)time(NULL)))) {
		store_stmt_done(st);
		return err;
	}
	err = store_stmt_exec(s, st);
	if (err == STORE_OK && sqlite3_changes(sqlite3_db_handle(st)) == 0)
		err = STORE_NOTFOUND;
	return err;
}

int store_partner_trust_set(struct store *s, const char *name, int trust)
{
	static const char sql[] = "UPDATE partners SET trust = ?2, updated = ?3 WHERE name = ?1";
	sqlite3_stmt *st;
	const char *t = store_partner_trust_name(trust);
	int err = STORE_OK;

	if (!name || !name[0])
		return store_invalid(s, "partner name");
	if (trust < STORE_TRUST_FULL || trust > STORE_TRUST_USER)
		return store_invalid(s, "partner trust level");
	if (!(st = store_ext_stmt(s, SL_TRUST_SET, sql, &err)))
		return err;
	if ((err = store_bind_text(s, st, 1, name, STORE_PARTNER_NAME_MAX, "partner name")) ||
	    (err = store_bind_text(s, st, 2, t, 16, "trust")) ||
	    (err = store_bind_int(s, st, 3, (int64_t)time(NULL)))) {
		store_stmt_done(st);
		return err;
	}
	err = store_stmt_exec(s, st);
	if (err == STORE_OK && sqlite3_changes(sqlite3_db_handle(st)) == 0)
		err = STORE_NOTFOUND;
	return err;
}

int store_partner_trust_list(struct store *s,
			     int (*fn)(void *ctx, int64_t id, int trust, bool enabled), void *ctx)
{
	static const char sql[] = "SELECT id, trust, enabled FROM partners ORDER BY id";
	sqlite3_stmt *st;
	int err = STORE_OK, rc, stop = 0, trust;

	if (!fn)
		return store_invalid(s, "partner trust list callback");
	if (!(st = store_ext_stmt(s, SL_TRUST_LIST, sql, &err)))
		return err;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(st, 1);

		if (!t || store_partner_trust_parse(t, &trust) != STORE_OK) {
			err = store_invalid(s, "stored partner trust level");
			break;
		}
		if ((stop = fn(ctx, sqlite3_column_int64(st, 0), trust,
			       sqlite3_column_int(st, 2) != 0)) != 0)
			break;
	}
	if (!err && !stop && rc != SQLITE_DONE)
		err = store_fail(s, rc);
	store_stmt_done(st);
	return err ? err : stop;
}
