/*
 * The TURN queries of the SQLite store (store_turn.h): the USERHASH index
 * of migration 7. Statement slots STORE_EXT_TURN_FIRST.. (sqlite_int.h).
 *
 * Must never: log a hash or a user name, keep a binding that points at the
 * caller's memory after a call.
 */
#include "store/store_turn.h"

#include <string.h>

#include "store/sqlite_int.h"

enum {
	ST_UH_DEL = STORE_EXT_TURN_FIRST,
	ST_UH_INS,
	ST_UH_FIND,
	ST_UH_COUNT,
	ST_UH_MISSING,
	ST_UH_USER,
};

static const char *const sql_of[] = {
    [ST_UH_DEL - STORE_EXT_TURN_FIRST] = "DELETE FROM turn_userhash WHERE user_id = ?1",
    [ST_UH_INS - STORE_EXT_TURN_FIRST] =
	"INSERT OR REPLACE INTO turn_userhash (hash, user_id) VALUES (?1, ?2)",
    /* one probe of the primary key, one of users' */
    [ST_UH_FIND - STORE_EXT_TURN_FIRST] =
	"SELECT u.id, u.uri, u.user, u.domain, u.display_name, u.enabled,"
	" EXISTS (SELECT 1 FROM credentials x WHERE x.user_id = u.id)"
	" FROM turn_userhash h JOIN users u ON u.id = h.user_id WHERE h.hash = ?1",
    [ST_UH_COUNT - STORE_EXT_TURN_FIRST] = "SELECT count(*) FROM turn_userhash WHERE user_id = ?1",
    [ST_UH_MISSING - STORE_EXT_TURN_FIRST] =
	"SELECT u.id, u.uri, u.user, u.domain FROM users u"
	" WHERE u.id > ?1"
	" AND EXISTS (SELECT 1 FROM credentials c WHERE c.user_id = u.id AND c.mech = 'digest-md5')"
	" AND NOT EXISTS (SELECT 1 FROM turn_userhash h WHERE h.user_id = u.id)"
	" ORDER BY u.id LIMIT ?2",
    [ST_UH_USER - STORE_EXT_TURN_FIRST] = "SELECT 1 FROM users WHERE id = ?1",
};

static sqlite3_stmt *stmt(struct store *s, int slot, int *err)
{
	return store_ext_stmt(s, slot, sql_of[slot - STORE_EXT_TURN_FIRST], err);
}

static int bind_hash(struct store *s, sqlite3_stmt *st, int i, const uint8_t *hash)
{
	return store_bind_blob(s, st, i, hash, STORE_TURN_USERHASH_LEN, "hash");
}

static int user_exists(struct store *s, int64_t user_id)
{
	int err = STORE_OK, rc;
	sqlite3_stmt *st = stmt(s, ST_UH_USER, &err);

	if (!st)
		return err;
	if ((err = store_bind_int(s, st, 1, user_id))) {
		store_stmt_done(st);
		return err;
	}
	rc = sqlite3_step(st);
	err = rc == SQLITE_ROW ? STORE_OK : rc == SQLITE_DONE ? STORE_NOTFOUND : store_fail(s, rc);
	store_stmt_done(st);
	return err;
}

int store_turn_userhash_put(struct store *s, int64_t user_id,
			    const uint8_t (*hashes)[STORE_TURN_USERHASH_LEN], size_t n)
{
	sqlite3_stmt *st;
	bool own;
	int err;

	if (!s)
		return STORE_INVALID;
	if (n > STORE_TURN_USERHASH_MAX || (n && !hashes))
		return store_invalid(s, "USERHASH list");
	if ((err = store_tx_begin(s, &own)))
		return err;
	err = user_exists(s, user_id);
	if (err == STORE_OK) {
		st = stmt(s, ST_UH_DEL, &err);
		if (st && !(err = store_bind_int(s, st, 1, user_id)))
			err = store_stmt_exec(s, st);
		else if (st)
			store_stmt_done(st);
	}
	for (size_t i = 0; err == STORE_OK && i < n; i++) {
		st = stmt(s, ST_UH_INS, &err);
		if (!st)
			break;
		if ((err = bind_hash(s, st, 1, hashes[i])) ||
		    (err = store_bind_int(s, st, 2, user_id))) {
			store_stmt_done(st);
			break;
		}
		err = store_stmt_exec(s, st);
	}
	return store_tx_end(s, own, err);
}

int store_turn_userhash_find(struct store *s, const uint8_t hash[STORE_TURN_USERHASH_LEN],
			     struct store_user *u)
{
	sqlite3_stmt *st;
	int err = STORE_OK, rc;

	memset(u, 0, sizeof(*u));
	if (!s || !hash)
		return STORE_INVALID;
	st = stmt(s, ST_UH_FIND, &err);
	if (!st)
		return err;
	if ((err = bind_hash(s, st, 1, hash))) {
		store_stmt_done(st);
		return err;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		store_stmt_done(st);
		return STORE_NOTFOUND;
	}
	if (rc != SQLITE_ROW) {
		err = store_fail(s, rc);
		store_stmt_done(st);
		return err;
	}
	u->id = sqlite3_column_int64(st, 0);
	if (store_col_text(st, 1, u->uri, sizeof(u->uri)) < 0 ||
	    store_col_text(st, 2, u->user, sizeof(u->user)) < 0 ||
	    store_col_text(st, 3, u->domain, sizeof(u->domain)) < 0 ||
	    store_col_text(st, 4, u->display_name, sizeof(u->display_name)) < 0) {
		store_stmt_done(st);
		memset(u, 0, sizeof(*u));
		return STORE_CORRUPT;
	}
	u->enabled = sqlite3_column_int(st, 5) != 0;
	u->has_password = sqlite3_column_int(st, 6) != 0;
	store_stmt_done(st);
	return STORE_OK;
}

int store_turn_userhash_count(struct store *s, int64_t user_id, int *n)
{
	sqlite3_stmt *st;
	int err = STORE_OK, rc;

	*n = 0;
	if (!s)
		return STORE_INVALID;
	st = stmt(s, ST_UH_COUNT, &err);
	if (!st)
		return err;
	if ((err = store_bind_int(s, st, 1, user_id))) {
		store_stmt_done(st);
		return err;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*n = sqlite3_column_int(st, 0);
	else
		err = store_fail(s, rc);
	store_stmt_done(st);
	return err;
}

int store_turn_userhash_missing(struct store *s, int64_t after_id, struct store_user *out,
				size_t cap, size_t *n)
{
	sqlite3_stmt *st;
	int err = STORE_OK, rc;

	*n = 0;
	if (!s || (cap && !out))
		return STORE_INVALID;
	if (cap == 0)
		return STORE_OK;
	st = stmt(s, ST_UH_MISSING, &err);
	if (!st)
		return err;
	if ((err = store_bind_int(s, st, 1, after_id)) ||
	    (err = store_bind_int(s, st, 2, (int64_t)cap))) {
		store_stmt_done(st);
		return err;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < cap) {
		struct store_user *u = &out[*n];
		memset(u, 0, sizeof(*u));
		u->id = sqlite3_column_int64(st, 0);
		if (store_col_text(st, 1, u->uri, sizeof(u->uri)) < 0 ||
		    store_col_text(st, 2, u->user, sizeof(u->user)) < 0 ||
		    store_col_text(st, 3, u->domain, sizeof(u->domain)) < 0) {
			store_stmt_done(st);
			*n = 0;
			return STORE_CORRUPT;
		}
		(*n)++;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		err = store_fail(s, rc);
		*n = 0;
	}
	store_stmt_done(st);
	return err;
}
