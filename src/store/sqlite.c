/*
 * The SQLite store (see store.h): one struct store is one connection, used by
 * one thread at a time. WAL, synchronous=NORMAL, foreign keys on, a busy
 * timeout; schema by numbered migrations recorded in PRAGMA user_version and
 * marked ours with PRAGMA application_id.
 *
 * Hot queries are prepared once per connection (SQLITE_PREPARE_PERSISTENT)
 * and reset/rebound per call; the listing functions, which call back into
 * the caller, prepare a fresh statement each time so a callback may use the
 * store again.
 *
 * Must never: log, put a key into an error message, answer NOTFOUND when the
 * database could not be read (that is STORE_UNAVAILABLE).
 */
#include "store/store.h"
#include "store/sqlite_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

/* "rtca": PRAGMA application_id of an rtcauth database. */
#define RTC_APPLICATION_ID 0x72746361

/*
 * Numbered migrations: migration i (1-based) takes user_version i-1 to i.
 * Never edit a released one; append a new one.
 */
static const char *const migrations[] = {
    /* 1: users, their keys, registrations, audit log */
    "PRAGMA application_id = 1920230241;" /* 0x72746361 */
    "CREATE TABLE users ("
    " id INTEGER PRIMARY KEY,"
    " uri TEXT NOT NULL UNIQUE,"
    " user TEXT NOT NULL,"
    " domain TEXT NOT NULL,"
    " display_name TEXT NOT NULL DEFAULT '',"
    " enabled INTEGER NOT NULL DEFAULT 1,"
    " created INTEGER NOT NULL,"
    " updated INTEGER NOT NULL,"
    " password_changed INTEGER NOT NULL DEFAULT 0);"
    /* the Digest lookup: user part + domain (stored lower case) */
    "CREATE UNIQUE INDEX users_user_domain ON users(user, domain);"
    "CREATE TABLE credentials ("
    " user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " mech TEXT NOT NULL,"
    " variant TEXT NOT NULL,"
    " key BLOB NOT NULL,"
    " PRIMARY KEY (user_id, mech, variant)) WITHOUT ROWID;"
    "CREATE TABLE registrations ("
    " aor TEXT NOT NULL,"
    " binding_key TEXT NOT NULL,"
    " contact TEXT NOT NULL,"
    " instance TEXT NOT NULL DEFAULT '',"
    " reg_id INTEGER NOT NULL DEFAULT -1,"
    " path TEXT NOT NULL DEFAULT '',"
    " expires INTEGER NOT NULL,"
    " source TEXT NOT NULL DEFAULT '',"
    " transport INTEGER NOT NULL DEFAULT 0,"
    " call_id TEXT NOT NULL DEFAULT '',"
    " cseq INTEGER NOT NULL DEFAULT 0,"
    " user_agent TEXT NOT NULL DEFAULT '',"
    " updated INTEGER NOT NULL,"
    " PRIMARY KEY (aor, binding_key));"
    "CREATE INDEX registrations_expires ON registrations(expires);"
    "CREATE TABLE audit ("
    " id INTEGER PRIMARY KEY,"
    " ts INTEGER NOT NULL,"
    " actor TEXT NOT NULL,"
    " action TEXT NOT NULL,"
    " target TEXT NOT NULL DEFAULT '',"
    " source TEXT NOT NULL DEFAULT '',"
    " detail TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX audit_ts ON audit(ts);",
    /* 2: OAuth signing keys (public side) and partner applications */
    "CREATE TABLE oauth_keys ("
    " kid TEXT PRIMARY KEY,"
    " alg TEXT NOT NULL CHECK (alg IN ('RS256', 'PS256', 'ES256', 'EdDSA')),"
    " state TEXT NOT NULL CHECK (state IN ('next', 'current', 'previous', 'retired')),"
    " cert TEXT NOT NULL,"
    " x5t TEXT NOT NULL,"
    " x5t_s256 TEXT NOT NULL,"
    " created INTEGER NOT NULL,"
    " activated INTEGER NOT NULL DEFAULT 0,"
    " retired INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
    /* at most one signing key: the database itself refuses a second one */
    "CREATE UNIQUE INDEX oauth_keys_one_current ON oauth_keys(state)"
    " WHERE state = 'current';"
    "CREATE TABLE partners ("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " enabled INTEGER NOT NULL DEFAULT 1,"
    " issuer TEXT NOT NULL DEFAULT '',"
    " realm TEXT NOT NULL,"
    " trust TEXT NOT NULL CHECK (trust IN ('full', 'application', 'user')),"
    " resources TEXT NOT NULL DEFAULT '',"
    " lifetime INTEGER NOT NULL,"
    " source TEXT NOT NULL CHECK (source IN ('metadata', 'cert', 'jwks')),"
    " metadata_url TEXT NOT NULL DEFAULT '',"
    " certs TEXT NOT NULL DEFAULT '',"
    " jwks TEXT NOT NULL DEFAULT '',"
    " last_fetch INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT NOT NULL DEFAULT '',"
    " created INTEGER NOT NULL,"
    " updated INTEGER NOT NULL);"
    /* a token names its issuer: two partners must not claim the same one */
    "CREATE UNIQUE INDEX partners_issuer ON partners(issuer, realm) WHERE issuer <> '';",
    /* 3: a credentials version that every change of a user or a key bumps
     * (the daemon's key caches poll it, so a change made by any process is
     * seen within a second); registrations lose their expires index (the
     * hot write is a refresh that changes expires; the purge at start scans) */
    "CREATE TABLE cred_version (id INTEGER PRIMARY KEY CHECK (id = 1), v INTEGER NOT NULL);"
    "INSERT INTO cred_version VALUES (1, 0);"
    "CREATE TRIGGER users_ins_version AFTER INSERT ON users"
    " BEGIN UPDATE cred_version SET v = v + 1; END;"
    "CREATE TRIGGER users_upd_version AFTER UPDATE ON users"
    " BEGIN UPDATE cred_version SET v = v + 1; END;"
    "CREATE TRIGGER users_del_version AFTER DELETE ON users"
    " BEGIN UPDATE cred_version SET v = v + 1; END;"
    "CREATE TRIGGER credentials_ins_version AFTER INSERT ON credentials"
    " BEGIN UPDATE cred_version SET v = v + 1; END;"
    "CREATE TRIGGER credentials_upd_version AFTER UPDATE ON credentials"
    " BEGIN UPDATE cred_version SET v = v + 1; END;"
    "CREATE TRIGGER credentials_del_version AFTER DELETE ON credentials"
    " BEGIN UPDATE cred_version SET v = v + 1; END;"
    "DROP INDEX registrations_expires;",
    /* 4: partners whose tokens come from the external authorization server
     * ([oauth] authorization_server; issue 3 item 8) */
    "ALTER TABLE partners ADD COLUMN use_oauth_server INTEGER NOT NULL DEFAULT 0;",
    /* 5: certificates issued by the built-in CA (issue 5 item 1): unique
     * serials (hex), the user they name, validity, revocation */
    "CREATE TABLE certificates ("
    " serial TEXT PRIMARY KEY,"
    " user_id INTEGER REFERENCES users(id) ON DELETE SET NULL,"
    " uri TEXT NOT NULL,"
    " subject TEXT NOT NULL,"
    " not_before INTEGER NOT NULL,"
    " not_after INTEGER NOT NULL,"
    " issued INTEGER NOT NULL,"
    " revoked_at INTEGER NOT NULL DEFAULT 0,"
    " reason TEXT NOT NULL DEFAULT '',"
    " pem TEXT NOT NULL);"
    "CREATE INDEX certificates_uri ON certificates(uri);",
    /* 6: phone number and extension of a user, and PINs (issue 5 item 2):
     * a salted scrypt hash with its parameters, and the lockout counters
     * (PROTOCOLS.md §3), apart from users so that counting a failure does
     * not bump the credentials version */
    "ALTER TABLE users ADD COLUMN phone TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE users ADD COLUMN extension TEXT NOT NULL DEFAULT '';"
    "CREATE INDEX users_phone ON users(phone) WHERE phone <> '';"
    "CREATE INDEX users_extension ON users(extension) WHERE extension <> '';"
    "CREATE TABLE pins ("
    " user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,"
    " hash BLOB NOT NULL,"
    " salt BLOB NOT NULL,"
    " params TEXT NOT NULL,"
    " set_at INTEGER NOT NULL,"
    " window_start INTEGER NOT NULL DEFAULT 0,"
    " local_failures INTEGER NOT NULL DEFAULT 0,"
    " global_failures INTEGER NOT NULL DEFAULT 0,"
    " locked_until INTEGER NOT NULL DEFAULT 0,"
    " admin_locked INTEGER NOT NULL DEFAULT 0);",
    /* 7: TURN USERHASH (RFC 8489 §14.4, issue 6 item 1): SHA-256 of
     * "name:realm" for each TURN user name of a user (the user part and
     * user@domain), so a request naming only the hash finds its user */
    "CREATE TABLE turn_userhash ("
    " hash BLOB PRIMARY KEY,"
    " user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE) WITHOUT ROWID;"
    "CREATE INDEX turn_userhash_user ON turn_userhash(user_id);",
    /* 8: OAuth state shared by every server of a pool (issue 3): used
     * client-assertion jtis until they expire, revoked tokens (by hash) with
     * a version the validators poll, users' consent for application-trust
     * partners, and the RFC 8705 §2.1 PKI client-certificate registration */
    "CREATE TABLE oauth_jti ("
    " key BLOB PRIMARY KEY,"
    " expires INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX oauth_jti_expires ON oauth_jti(expires);"
    "CREATE TABLE oauth_revoked ("
    " hash BLOB PRIMARY KEY,"
    " expires INTEGER NOT NULL,"
    " revoked_at INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX oauth_revoked_expires ON oauth_revoked(expires);"
    "CREATE TABLE oauth_revoked_version (id INTEGER PRIMARY KEY CHECK (id = 1),"
    " v INTEGER NOT NULL);"
    "INSERT INTO oauth_revoked_version VALUES (1, 0);"
    "CREATE TRIGGER oauth_revoked_ins_version AFTER INSERT ON oauth_revoked"
    " BEGIN UPDATE oauth_revoked_version SET v = v + 1; END;"
    "CREATE TABLE oauth_consent ("
    " partner_id INTEGER NOT NULL REFERENCES partners(id) ON DELETE CASCADE,"
    " user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " granted_at INTEGER NOT NULL,"
    " granted_by TEXT NOT NULL DEFAULT '',"
    " PRIMARY KEY (partner_id, user_id)) WITHOUT ROWID;"
    "CREATE INDEX oauth_consent_user ON oauth_consent(user_id);"
    "ALTER TABLE partners ADD COLUMN tls_subject TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE partners ADD COLUMN tls_san TEXT NOT NULL DEFAULT '';",
    /* 9: jti row keys lead with the assertion's exp (big-endian, so every
     * key of a current assertion starts with four zero bytes), and the
     * purge walks the primary key: the index on expires only doubled the
     * B-tree work of every insert. Rows of the earlier key layout can no
     * longer match any assertion (their key was a bare hash), so they go. */
    ("DELETE FROM oauth_jti WHERE substr(key, 1, 4) <> x'00000000';"
     "DROP INDEX oauth_jti_expires;"),
};

#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

int store_schema_latest(void)
{
	return N_MIGRATIONS;
}

const char *store_strerror(int err)
{
	switch (err) {
	case STORE_OK:
		return "ok";
	case STORE_NOTFOUND:
		return "not found";
	case STORE_CONFLICT:
		return "already exists";
	case STORE_UNAVAILABLE:
		return "store unavailable";
	case STORE_INVALID:
		return "invalid argument";
	case STORE_TOO_NEW:
		return "database schema too new";
	case STORE_CORRUPT:
		return "not an rtcauth database";
	default:
		return "unknown store error";
	}
}

/* Columns of a user row, in the order user_from_row reads them. */
#define USER_COLS                                                                                  \
	"u.id, u.uri, u.user, u.domain, u.display_name, u.enabled, u.created, u.updated,"          \
	" u.password_changed,"                                                                     \
	" EXISTS (SELECT 1 FROM credentials x WHERE x.user_id = u.id)"
#define USER_NCOLS 10

enum stmt_id {
	ST_BEGIN,
	ST_BEGIN_IMMEDIATE,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_SAVEPOINT,
	ST_RELEASE,
	ST_ROLLBACK_TO,
	ST_USER_ADD,
	ST_USER_GET,
	ST_USER_SET_ENABLED,
	ST_USER_SET_NAME,
	ST_USER_DEL,
	ST_USER_COUNT,
	ST_PW_CHANGED,
	ST_CRED_DEL,
	ST_CRED_INS,
	ST_DIGEST_LOOKUP,
	ST_REG_PUT,
	ST_REG_DEL,
	ST_REG_DEL_AOR,
	ST_REG_PURGE,
	ST_AUDIT_ADD,
	ST_CRED_VERSION,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN",
    [ST_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT rtc_sp",
    [ST_RELEASE] = "RELEASE rtc_sp",
    [ST_ROLLBACK_TO] = "ROLLBACK TO rtc_sp",
    [ST_USER_ADD] = "INSERT INTO users (uri, user, domain, display_name, enabled, created,"
		    " updated, password_changed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, 0)",
    [ST_USER_GET] = "SELECT " USER_COLS " FROM users u WHERE u.uri = ?1",
    [ST_USER_SET_ENABLED] = "UPDATE users SET enabled = ?2, updated = ?3 WHERE uri = ?1",
    [ST_USER_SET_NAME] = "UPDATE users SET display_name = ?2, updated = ?3 WHERE uri = ?1",
    [ST_USER_DEL] = "DELETE FROM users WHERE uri = ?1",
    [ST_USER_COUNT] = "SELECT count(*) FROM users",
    [ST_PW_CHANGED] = "UPDATE users SET password_changed = ?2, updated = ?2 WHERE id = ?1",
    [ST_CRED_DEL] = "DELETE FROM credentials WHERE user_id = ?1",
    [ST_CRED_INS] = "INSERT INTO credentials (user_id, mech, variant, key)"
		    " VALUES (?1, ?2, ?3, ?4)",
    /* One indexed probe on users, one on credentials' primary key. */
    [ST_DIGEST_LOOKUP] = "SELECT " USER_COLS ", c.key FROM users u"
			 " LEFT JOIN credentials c"
			 " ON c.user_id = u.id AND c.mech = ?3 AND c.variant = ?4"
			 " WHERE u.user = ?1 AND u.domain = ?2",
    /* an upsert updates a refreshed binding in place (INSERT OR REPLACE
     * would delete and insert the row and its index entries) */
    [ST_REG_PUT] = "INSERT INTO registrations (aor, binding_key, contact,"
		   " instance, reg_id, path, expires, source, transport, call_id, cseq,"
		   " user_agent, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,"
		   " ?11, ?12, ?13) ON CONFLICT (aor, binding_key) DO UPDATE SET"
		   " contact = ?3, instance = ?4, reg_id = ?5, path = ?6, expires = ?7,"
		   " source = ?8, transport = ?9, call_id = ?10, cseq = ?11,"
		   " user_agent = ?12, updated = ?13",
    [ST_REG_DEL] = "DELETE FROM registrations WHERE aor = ?1 AND binding_key = ?2",
    [ST_REG_DEL_AOR] = "DELETE FROM registrations WHERE aor = ?1",
    [ST_REG_PURGE] = "DELETE FROM registrations WHERE expires <= ?1",
    [ST_AUDIT_ADD] = "INSERT INTO audit (ts, actor, action, target, source, detail)"
		     " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_CRED_VERSION] = "SELECT v FROM cred_version WHERE id = 1",
};

struct store {
	sqlite3 *db;
	bool readonly;
	sqlite3_stmt *stmt[ST_COUNT];
	sqlite3_stmt *ext[STORE_EXT_MAX]; /* the sibling files' statements (sqlite_int.h) */
	char errmsg[256];
};

/* ---- errors ---- */

static int map_rc(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return STORE_OK;
	case SQLITE_CONSTRAINT:
		return STORE_CONFLICT;
	case SQLITE_TOOBIG:
	case SQLITE_RANGE:
	case SQLITE_MISMATCH:
		return STORE_INVALID;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return STORE_CORRUPT;
	default:
		/* BUSY, LOCKED, IOERR, READONLY, FULL, CANTOPEN, NOMEM, PROTOCOL,
		 * and anything unexpected: the store could not answer. */
		return STORE_UNAVAILABLE;
	}
}

static void set_msg(struct store *s, const char *msg)
{
	snprintf(s->errmsg, sizeof(s->errmsg), "%s", msg);
}

/* Record the backend's message (SQL text and bound values never appear in
 * it) and return the mapped error. */
static int fail(struct store *s, int rc)
{
	snprintf(s->errmsg, sizeof(s->errmsg), "%s", sqlite3_errmsg(s->db));
	return map_rc(rc);
}

static int invalid(struct store *s, const char *what)
{
	snprintf(s->errmsg, sizeof(s->errmsg), "invalid %s", what);
	return STORE_INVALID;
}

const char *store_errmsg(struct store *s)
{
	return s ? s->errmsg : "no store";
}

/* ---- statements ---- */

static sqlite3_stmt *stmt_get(struct store *s, enum stmt_id id, int *err)
{
	int rc;

	if (s->stmt[id])
		return s->stmt[id];
	rc = sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[id],
				NULL);
	if (rc != SQLITE_OK) {
		*err = fail(s, rc);
		s->stmt[id] = NULL;
		return NULL;
	}
	return s->stmt[id];
}

/* Reset for the next call and drop bindings (they may point at keys). */
static void stmt_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Run a statement that returns no row of interest: STORE_OK or an error. */
static int stmt_exec(struct store *s, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	int err = rc == SQLITE_DONE || rc == SQLITE_ROW ? STORE_OK : fail(s, rc);
	stmt_done(st);
	return err;
}

static int exec_id(struct store *s, enum stmt_id id)
{
	int err = STORE_OK;
	sqlite3_stmt *st = stmt_get(s, id, &err);
	return st ? stmt_exec(s, st) : err;
}

/* Bind a NUL-terminated string that must fit a field of cap bytes. */
static int bind_text(struct store *s, sqlite3_stmt *st, int i, const char *v, size_t cap,
		     const char *what)
{
	size_t n;
	int rc;

	if (!v)
		v = "";
	n = strnlen(v, cap);
	if (n >= cap)
		return invalid(s, what);
	rc = sqlite3_bind_text(st, i, v, (int)n, SQLITE_STATIC);
	return rc == SQLITE_OK ? STORE_OK : fail(s, rc);
}

static int bind_int(struct store *s, sqlite3_stmt *st, int i, int64_t v)
{
	int rc = sqlite3_bind_int64(st, i, v);
	return rc == SQLITE_OK ? STORE_OK : fail(s, rc);
}

/* Copy a text column into a fixed field; -1 if it does not fit. */
static int col_text(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	int n = sqlite3_column_bytes(st, i);

	if (!t || n <= 0) {
		dst[0] = '\0';
		return 0;
	}
	if ((size_t)n >= cap)
		return -1;
	memcpy(dst, t, (size_t)n);
	dst[n] = '\0';
	return 0;
}

static int corrupt_row(struct store *s, sqlite3_stmt *st, const char *table)
{
	snprintf(s->errmsg, sizeof(s->errmsg), "%s row with an oversized field", table);
	stmt_done(st);
	return STORE_CORRUPT;
}

/* ---- transactions ---- */

/*
 * Internal write transaction: BEGIN IMMEDIATE (waits on the busy timeout
 * instead of failing on a stale WAL snapshot) when none is open, else a
 * savepoint inside the caller's transaction.
 */
static int tx_begin(struct store *s, bool *own)
{
	*own = sqlite3_get_autocommit(s->db) != 0;
	return exec_id(s, *own ? ST_BEGIN_IMMEDIATE : ST_SAVEPOINT);
}

static int tx_end(struct store *s, bool own, int err)
{
	if (err == STORE_OK) {
		err = exec_id(s, own ? ST_COMMIT : ST_RELEASE);
		if (err == STORE_OK)
			return STORE_OK;
	}
	if (own) {
		if (!sqlite3_get_autocommit(s->db))
			exec_id(s, ST_ROLLBACK);
	} else {
		exec_id(s, ST_ROLLBACK_TO);
		exec_id(s, ST_RELEASE);
	}
	return err;
}

int store_begin(struct store *s)
{
	return exec_id(s, s->readonly ? ST_BEGIN : ST_BEGIN_IMMEDIATE);
}

int store_commit(struct store *s)
{
	int err = exec_id(s, ST_COMMIT);
	if (err != STORE_OK && !sqlite3_get_autocommit(s->db))
		store_rollback(s);
	return err;
}

void store_rollback(struct store *s)
{
	if (!sqlite3_get_autocommit(s->db))
		exec_id(s, ST_ROLLBACK);
}

/* ---- for the sibling files (sqlite_int.h) ---- */

sqlite3_stmt *store_ext_stmt(struct store *s, int slot, const char *sql, int *err)
{
	int rc;

	if (slot < 0 || slot >= STORE_EXT_MAX) {
		*err = invalid(s, "statement slot");
		return NULL;
	}
	if (s->ext[slot])
		return s->ext[slot];
	rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->ext[slot], NULL);
	if (rc != SQLITE_OK) {
		*err = fail(s, rc);
		s->ext[slot] = NULL;
		return NULL;
	}
	return s->ext[slot];
}

void store_stmt_done(sqlite3_stmt *st)
{
	stmt_done(st);
}

int store_stmt_exec(struct store *s, sqlite3_stmt *st)
{
	return stmt_exec(s, st);
}

int store_bind_blob(struct store *s, sqlite3_stmt *st, int i, const void *p, size_t len,
		    const char *what)
{
	int rc;

	if (!p)
		return invalid(s, what);
	rc = sqlite3_bind_blob(st, i, p, (int)len, SQLITE_STATIC);
	return rc == SQLITE_OK ? STORE_OK : fail(s, rc);
}

int store_fail(struct store *s, int rc)
{
	return fail(s, rc);
}

int store_invalid(struct store *s, const char *what)
{
	return invalid(s, what);
}

int store_bind_text(struct store *s, sqlite3_stmt *st, int i, const char *v, size_t cap,
		    const char *what)
{
	return bind_text(s, st, i, v, cap, what);
}

int store_bind_int(struct store *s, sqlite3_stmt *st, int i, int64_t v)
{
	return bind_int(s, st, i, v);
}

int store_col_text(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
	return col_text(st, i, dst, cap);
}

int store_tx_begin(struct store *s, bool *own)
{
	return tx_begin(s, own);
}

int store_tx_end(struct store *s, bool own, int err)
{
	return tx_end(s, own, err);
}

/* ---- open, migrate, close ---- */

/* A single integer from a PRAGMA or query; SQLite result code. */
static int query_int(sqlite3 *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*out = sqlite3_column_int64(st, 0);
			rc = SQLITE_OK;
		} else if (rc == SQLITE_DONE) {
			*out = 0;
			rc = SQLITE_OK;
		}
	}
	sqlite3_finalize(st);
	return rc;
}

/* Is this an rtcauth database at a version we can use? */
static int check_schema(struct store *s, const char *path, int64_t *version, char *err,
			size_t errlen)
{
	int64_t appid = 0, ntables = 0;
	int rc;

	rc = query_int(s->db, "PRAGMA user_version", version);
	if (rc == SQLITE_OK)
		rc = query_int(s->db, "PRAGMA application_id", &appid);
	if (rc == SQLITE_OK)
		rc = query_int(s->db, "SELECT count(*) FROM sqlite_master", &ntables);
	if (rc != SQLITE_OK) {
		int e = map_rc(rc);
		if (e == STORE_CORRUPT)
			snprintf(err, errlen,
				 "%s is not an rtcauth database (not SQLite, or corrupt: %s); "
				 "check the store path",
				 path, sqlite3_errmsg(s->db));
		else
			snprintf(err, errlen, "cannot read %s: %s", path, sqlite3_errmsg(s->db));
		return e;
	}
	if ((appid != 0 && appid != RTC_APPLICATION_ID) ||
	    (appid == 0 && (*version != 0 || ntables != 0))) {
		snprintf(err, errlen,
			 "%s is an SQLite database but not an rtcauth one (application_id %lld, "
			 "%lld schema objects); check the store path",
			 path, (long long)appid, (long long)ntables);
		return STORE_CORRUPT;
	}
	if (*version > N_MIGRATIONS) {
		snprintf(err, errlen,
			 "%s: database schema version %lld is newer than this rtcauth (%d); "
			 "upgrade rtcauth",
			 path, (long long)*version, N_MIGRATIONS);
		return STORE_TOO_NEW;
	}
	return STORE_OK;
}

/* Apply the missing migrations in one transaction. */
static int migrate(struct store *s, const char *path, char *err, size_t errlen)
{
	int64_t version = 0;
	char sql[64];
	int rc, e;

	rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	/* Re-check under the write lock: another process may have migrated. */
	e = check_schema(s, path, &version, err, errlen);
	if (e != STORE_OK) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return e;
	}
	for (int v = (int)version + 1; v <= N_MIGRATIONS; v++) {
		rc = sqlite3_exec(s->db, migrations[v - 1], NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			goto fail;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v);
		rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			goto fail;
	}
	rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	return STORE_OK;
fail:
	snprintf(err, errlen, "cannot migrate %s to schema version %d: %s", path, N_MIGRATIONS,
		 sqlite3_errmsg(s->db));
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return map_rc(rc);
}

static int configure(struct store *s, const char *path, int busy_ms, char *err, size_t errlen)
{
	static const char *const rw_pragmas =
	    "PRAGMA journal_mode = WAL;"
	    "PRAGMA synchronous = NORMAL;"
	    /* overwrite deleted key material in place (no extra I/O) */
	    "PRAGMA secure_delete = FAST;";
	int rc;

	sqlite3_extended_result_codes(s->db, 1);
	rc = sqlite3_busy_timeout(s->db, busy_ms > 0 ? busy_ms : 0);
	/* 1 MB of page cache per connection (SQLite's default is 2 MB): the
	 * daemon holds several connections and caches key lookups itself */
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(s->db, "PRAGMA foreign_keys = ON; PRAGMA cache_size = -1024",
				  NULL, NULL, NULL);
	if (rc == SQLITE_OK && !s->readonly) {
		rc = sqlite3_exec(s->db, rw_pragmas, NULL, NULL, NULL);
		/* checkpoints by the checkpointer thread when it runs (checkpoint.c) */
		sqlite3_wal_hook(s->db, store_wal_hook, NULL);
	}
	if (rc != SQLITE_OK) {
		int e = map_rc(rc);
		if (e == STORE_CORRUPT)
			snprintf(err, errlen,
				 "%s is not an rtcauth database (not SQLite, or corrupt: %s); "
				 "check the store path",
				 path, sqlite3_errmsg(s->db));
		else
			snprintf(err, errlen, "cannot set up %s: %s", path, sqlite3_errmsg(s->db));
		return e;
	}
	return STORE_OK;
}

int store_open(const char *path, int flags, int busy_ms, struct store **out, char *err,
	       size_t errlen)
{
	struct store *s;
	int64_t version = 0;
	int oflags, rc, e;

	*out = NULL;
	if (errlen)
		err[0] = '\0';
	if (!path || !*path) {
		snprintf(err, errlen, "no store path given");
		return STORE_INVALID;
	}
	s = sqlite3_malloc(sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory opening %s", path);
		return STORE_UNAVAILABLE;
	}
	memset(s, 0, sizeof(*s));
	s->readonly = (flags & STORE_READONLY) != 0;
	if (s->readonly)
		oflags = SQLITE_OPEN_READONLY;
	else
		oflags = SQLITE_OPEN_READWRITE | ((flags & STORE_CREATE) ? SQLITE_OPEN_CREATE : 0);
	/* One thread at a time per connection (store.h): no SQLite mutexes. */
	oflags |= SQLITE_OPEN_NOMUTEX;

	rc = sqlite3_open_v2(path, &s->db, oflags, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot open %s: %s%s", path,
			 s->db ? sqlite3_errmsg(s->db) : "out of memory",
			 (flags & (STORE_CREATE | STORE_READONLY)) ? "" : " (does it exist?)");
		e = map_rc(rc);
		goto fail;
	}
	/* SQLite silently falls back to read-only when it may not write the
	 * file; a read-write store that cannot write must fail now, loudly. */
	if (!s->readonly && sqlite3_db_readonly(s->db, "main") == 1) {
		snprintf(err, errlen,
			 "%s is read-only for this process; check its owner and mode (and its "
			 "directory's), or open it read-only",
			 path);
		e = STORE_UNAVAILABLE;
		goto fail;
	}
	e = configure(s, path, busy_ms, err, errlen);
	if (e == STORE_OK)
		e = check_schema(s, path, &version, err, errlen);
	if (e == STORE_OK && version < N_MIGRATIONS) {
		if (s->readonly) {
			snprintf(err, errlen,
				 "%s has schema version %lld, this rtcauth needs %d; open it "
				 "read-write once to migrate",
				 path, (long long)version, N_MIGRATIONS);
			e = STORE_UNAVAILABLE;
		} else {
			e = migrate(s, path, err, errlen);
		}
	}
	if (e != STORE_OK)
		goto fail;
	*out = s;
	return STORE_OK;
fail:
	sqlite3_close_v2(s->db);
	sqlite3_free(s);
	return e;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	for (int i = 0; i < STORE_EXT_MAX; i++)
		sqlite3_finalize(s->ext[i]);
	sqlite3_close_v2(s->db);
	sqlite3_free(s);
}

/* ---- users ---- */

/* Columns 0..USER_NCOLS-1 of st, as in USER_COLS; -1 if a field overflows. */
static int user_from_row(sqlite3_stmt *st, struct store_user *u)
{
	memset(u, 0, sizeof(*u));
	u->id = sqlite3_column_int64(st, 0);
	if (col_text(st, 1, u->uri, sizeof(u->uri)) < 0 ||
	    col_text(st, 2, u->user, sizeof(u->user)) < 0 ||
	    col_text(st, 3, u->domain, sizeof(u->domain)) < 0 ||
	    col_text(st, 4, u->display_name, sizeof(u->display_name)) < 0)
		return -1;
	u->enabled = sqlite3_column_int(st, 5) != 0;
	u->created = sqlite3_column_int64(st, 6);
	u->updated = sqlite3_column_int64(st, 7);
	u->password_changed = sqlite3_column_int64(st, 8);
	u->has_password = sqlite3_column_int(st, 9) != 0;
	return 0;
}

/* Normalise a caller's URI argument into uri (STORE_URI_MAX). */
static int norm_arg(struct store *s, const char *in, char *uri)
{
	char user[STORE_URI_MAX], domain[STORE_URI_MAX];

	if (store_uri_normalise(in, uri, user, domain) != STORE_OK)
		return invalid(s, "SIP URI");
	return STORE_OK;
}

int store_user_add(struct store *s, struct store_user *u)
{
	char uri[STORE_URI_MAX], user[STORE_URI_MAX], domain[STORE_URI_MAX];
	sqlite3_stmt *st;
	int64_t now = (int64_t)time(NULL);
	int err = STORE_OK, rc;

	if (strnlen(u->uri, sizeof(u->uri)) >= sizeof(u->uri) ||
	    store_uri_normalise(u->uri, uri, user, domain) != STORE_OK || strcmp(uri, u->uri) != 0)
		return invalid(s, "user URI (not normalised)");
	st = stmt_get(s, ST_USER_ADD, &err);
	if (!st)
		return err;
	if ((err = bind_text(s, st, 1, uri, sizeof(uri), "uri")) ||
	    (err = bind_text(s, st, 2, user, sizeof(user), "user")) ||
	    (err = bind_text(s, st, 3, domain, sizeof(domain), "domain")) ||
	    (err = bind_text(s, st, 4, u->display_name, sizeof(u->display_name), "display name")) ||
	    (err = bind_int(s, st, 5, u->enabled ? 1 : 0)) || (err = bind_int(s, st, 6, now))) {
		stmt_done(st);
		return err;
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) {
		err = fail(s, rc);
		stmt_done(st);
		return err;
	}
	stmt_done(st);
	u->id = sqlite3_last_insert_rowid(s->db);
	memcpy(u->user, user, sizeof(u->user));
	memcpy(u->domain, domain, sizeof(u->domain));
	u->created = u->updated = now;
	return STORE_OK;
}

int store_user_get(struct store *s, const char *uri, struct store_user *out)
{
	char norm[STORE_URI_MAX];
	sqlite3_stmt *st;
	int err, rc;

	if ((err = norm_arg(s, uri, norm)))
		return err;
	st = stmt_get(s, ST_USER_GET, &err);
	if (!st)
		return err;
	if ((err = bind_text(s, st, 1, norm, sizeof(norm), "uri"))) {
		stmt_done(st);
		return err;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (user_from_row(st, out) < 0)
			return corrupt_row(s, st, "users");
		err = STORE_OK;
	} else if (rc == SQLITE_DONE) {
		set_msg(s, "no such user");
		err = STORE_NOTFOUND;
	} else {
		err = fail(s, rc);
	}
	stmt_done(st);
	return err;
}

/* Run an UPDATE/DELETE keyed by URI (?1); NOTFOUND if it touched no row. */
static int exec_changes(struct store *s, sqlite3_stmt *st, const char *what)
{
	int err = stmt_exec(s, st);

	if (err == STORE_OK && sqlite3_changes(s->db) == 0) {
		snprintf(s->errmsg, sizeof(s->errmsg), "no such %s", what);
		err = STORE_NOTFOUND;
	}
	return err;
}

int store_user_set_enabled(struct store *s, const char *uri, bool enabled)
{
	char norm[STORE_URI_MAX];
	sqlite3_stmt *st;
	int err;

	if ((err = norm_arg(s, uri, norm)))
		return err;
	st = stmt_get(s, ST_USER_SET_ENABLED, &err);
	if (!st)
		return err;
	if ((err = bind_text(s, st, 1, norm, sizeof(norm), "uri")) ||
	    (err = bind_int(s, st, 2, enabled ? 1 : 0)) ||
	    (err = bind_int(s, st, 3, (int64_t)time(NULL)))) {
		stmt_done(st);
		return err;
	}
	return exec_changes(s, st, "user");
}

int store_user_set_display_name(struct store *s, const char *uri, const char *name)
{
	char norm[STORE_URI_MAX];
	sqlite3_stmt *st;
	int err;

	if ((err = norm_arg(s, uri, norm)))
		return err;
	st = stmt_get(s, ST_USER_SET_NAME, &err);
	if (!st)
		return err;
	if ((err = bind_text(s, st, 1, norm, sizeof(norm), "uri")) ||
	    (err = bind_text(s, st, 2, name, STORE_NAME_MAX, "display name")) ||
	    (err = bind_int(s, st, 3, (int64_t)time(NULL)))) {
		stmt_done(st);
		return err;
	}
	return exec_changes(s, st, "user");
}

int store_user_del(struct store *s, const char *uri)
{
	char norm[STORE_URI_MAX];
	sqlite3_stmt *st;
	bool own;
	int err;

	if ((err = norm_arg(s, uri, norm)))
		return err;
	if ((err = tx_begin(s, &own)))
		return err;
	/* Registrations are keyed by AOR, the user's URI; keys go by cascade. */
	st = stmt_get(s, ST_REG_DEL_AOR, &err);
	if (st && !(err = bind_text(s, st, 1, norm, sizeof(norm), "uri")))
		err = stmt_exec(s, st);
	else if (st)
		stmt_done(st);
	if (err == STORE_OK) {
		st = stmt_get(s, ST_USER_DEL, &err);
		if (st && !(err = bind_text(s, st, 1, norm, sizeof(norm), "uri")))
			err = exec_changes(s, st, "user");
		else if (st)
			stmt_done(st);
	}
	return tx_end(s, own, err);
}

int store_user_list(struct store *s, int (*fn)(void *ctx, const struct store_user *u), void *ctx)
{
	static const char sql[] = "SELECT " USER_COLS " FROM users u ORDER BY u.uri";
	struct store_user u;
	sqlite3_stmt *st = NULL;
	int rc, ret = STORE_OK;

	/* A fresh statement: fn may call back into the store. */
	rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return fail(s, rc);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (user_from_row(st, &u) < 0) {
			set_msg(s, "users row with an oversized field");
			ret = STORE_CORRUPT;
			break;
		}
		ret = fn(ctx, &u);
		if (ret != 0)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = fail(s, rc);
	sqlite3_finalize(st);
	return ret;
}

int store_cred_version(struct store *s, int64_t *version)
{
	sqlite3_stmt *st;
	int err = STORE_OK, rc;

	st = stmt_get(s, ST_CRED_VERSION, &err);
	if (!st)
		return err;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*version = sqlite3_column_int64(st, 0);
	else
		err = rc == SQLITE_DONE ? STORE_CORRUPT : fail(s, rc);
	stmt_done(st);
	return err;
}

int store_user_count(struct store *s, int64_t *count)
{
	sqlite3_stmt *st;
	int err = STORE_OK, rc;

	st = stmt_get(s, ST_USER_COUNT, &err);
	if (!st)
		return err;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*count = sqlite3_column_int64(st, 0);
	else
		err = fail(s, rc);
	stmt_done(st);
	return err;
}

/* ---- keys ---- */

static int cred_insert(struct store *s, int64_t user_id, const struct store_cred *c)
{
	sqlite3_stmt *st;
	int err = STORE_OK, rc;

	if (c->key_len == 0 || c->key_len > STORE_KEY_MAX)
		return invalid(s, "key length");
	st = stmt_get(s, ST_CRED_INS, &err);
	if (!st)
		return err;
	if ((err = bind_int(s, st, 1, user_id)) ||
	    (err = bind_text(s, st, 2, c->mech, sizeof(c->mech), "key mechanism")) ||
	    (err = bind_text(s, st, 3, c->variant, sizeof(c->variant), "key variant"))) {
		stmt_done(st);
		return err;
	}
	rc = sqlite3_bind_blob(st, 4, c->key, (int)c->key_len, SQLITE_STATIC);
	if (rc != SQLITE_OK) {
		err = fail(s, rc);
		stmt_done(st);
		return err;
	}
	/* stmt_exec clears the bindings, so the statement keeps no pointer. */
	return stmt_exec(s, st);
}

int store_cred_replace(struct store *s, int64_t user_id, const struct store_cred *creds, size_t n)
{
	sqlite3_stmt *st;
	bool own;
	int err;

	if (n && !creds)
		return invalid(s, "key list");
	if ((err = tx_begin(s, &own)))
		return err;
	st = stmt_get(s, ST_PW_CHANGED, &err);
	if (st && !(err = bind_int(s, st, 1, user_id)) &&
	    !(err = bind_int(s, st, 2, (int64_t)time(NULL))))
		err = exec_changes(s, st, "user");
	else if (st)
		stmt_done(st);
	if (err == STORE_OK) {
		st = stmt_get(s, ST_CRED_DEL, &err);
		if (st && !(err = bind_int(s, st, 1, user_id)))
			err = stmt_exec(s, st);
		else if (st)
			stmt_done(st);
	}
	for (size_t i = 0; err == STORE_OK && i < n; i++)
		err = cred_insert(s, user_id, &creds[i]);
	return tx_end(s, own, err);
}

/* Split a Digest user name into user part, lower-cased domain, variant. */
static int digest_name(struct str username, struct str realm, struct str *user, char *domain,
		       const char **variant)
{
	long at = -1;
	struct str dom;

	for (size_t i = username.len; i > 0; i--) {
		if (username.p[i - 1] == '@') {
			at = (long)(i - 1);
			break;
		}
	}
	/* "DOMAIN\\user" as a quoted-string carries the backslash escaped
	 * (DOMAIN\\\\user, RFC 7616 §3.4); the key of that form is stored
	 * under variant "domain\\user" for the user part in the realm */
	for (size_t i = 0; at < 0 && i + 1 < username.len; i++) {
		if (username.p[i] == '\\' && username.p[i + 1] == '\\') {
			*user = str_make(username.p + i + 2, username.len - i - 2);
			dom = realm;
			*variant = "domain\\user";
			if (i == 0 || memchr(user->p, '\\', user->len))
				return -1;
			goto have;
		}
	}
	if (at >= 0) {
		*user = str_make(username.p, (size_t)at);
		dom = str_make(username.p + at + 1, username.len - (size_t)at - 1);
		*variant = "user@domain";
	} else {
		*user = username;
		dom = realm;
		*variant = "user";
	}
have:
	if (user->len == 0 || user->len >= STORE_URI_MAX || dom.len == 0 ||
	    dom.len >= STORE_URI_MAX)
		return -1;
	for (size_t i = 0; i < dom.len; i++)
		domain[i] = (char)tolower((unsigned char)dom.p[i]);
	domain[dom.len] = '\0';
	return 0;
}

int store_digest_lookup(struct store *s, struct str username, struct str realm, const char *mech,
			struct store_user *u, struct store_cred *key)
{
	char domain[STORE_URI_MAX];
	const char *variant;
	struct str user;
	sqlite3_stmt *st;
	const void *blob;
	int err = STORE_OK, rc, n;

	memset(u, 0, sizeof(*u));
	memset(key, 0, sizeof(*key));
	if (!mech || strlen(mech) >= sizeof(key->mech))
		return invalid(s, "key mechanism");
	if (digest_name(username, realm, &user, domain, &variant) < 0) {
		set_msg(s, "no such user");
		return STORE_NOTFOUND; /* a name that cannot be stored */
	}
	st = stmt_get(s, ST_DIGEST_LOOKUP, &err);
	if (!st)
		return err;
	rc = sqlite3_bind_text(st, 1, user.p, (int)user.len, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 2, domain, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 3, mech, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 4, variant, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		set_msg(s, "no such user");
		stmt_done(st);
		return STORE_NOTFOUND;
	}
	if (rc != SQLITE_ROW) {
		err = fail(s, rc);
		stmt_done(st);
		return err;
	}
	if (user_from_row(st, u) < 0) {
		memset(u, 0, sizeof(*u));
		return corrupt_row(s, st, "users");
	}
	blob = sqlite3_column_blob(st, USER_NCOLS);
	n = sqlite3_column_bytes(st, USER_NCOLS);
	if (!blob || n <= 0) {
		/* The user exists (u is filled) but has no such key. */
		set_msg(s, "no such key");
		stmt_done(st);
		return STORE_NOTFOUND;
	}
	if (n > STORE_KEY_MAX) {
		memset(u, 0, sizeof(*u));
		return corrupt_row(s, st, "credentials");
	}
	memcpy(key->key, blob, (size_t)n);
	key->key_len = (size_t)n;
	snprintf(key->mech, sizeof(key->mech), "%s", mech);
	snprintf(key->variant, sizeof(key->variant), "%s", variant);
	stmt_done(st);
	return STORE_OK;
}

/* ---- registrations ---- */

int store_reg_put(struct store *s, const struct store_reg *r)
{
	sqlite3_stmt *st;
	int err = STORE_OK;

	if (!r->aor[0] || !r->binding_key[0])
		return invalid(s, "registration (empty AOR or binding key)");
	st = stmt_get(s, ST_REG_PUT, &err);
	if (!st)
		return err;
	if ((err = bind_text(s, st, 1, r->aor, sizeof(r->aor), "aor")) ||
	    (err = bind_text(s, st, 2, r->binding_key, sizeof(r->binding_key), "binding key")) ||
	    (err = bind_text(s, st, 3, r->contact, sizeof(r->contact), "contact")) ||
	    (err = bind_text(s, st, 4, r->instance, sizeof(r->instance), "instance")) ||
	    (err = bind_int(s, st, 5, r->reg_id)) ||
	    (err = bind_text(s, st, 6, r->path, sizeof(r->path), "path")) ||
	    (err = bind_int(s, st, 7, r->expires)) ||
	    (err = bind_text(s, st, 8, r->source, sizeof(r->source), "source")) ||
	    (err = bind_int(s, st, 9, r->transport)) ||
	    (err = bind_text(s, st, 10, r->call_id, sizeof(r->call_id), "call-id")) ||
	    (err = bind_int(s, st, 11, r->cseq)) ||
	    (err = bind_text(s, st, 12, r->user_agent, sizeof(r->user_agent), "user agent")) ||
	    (err = bind_int(s, st, 13, (int64_t)time(NULL)))) {
		stmt_done(st);
		return err;
	}
	return stmt_exec(s, st);
}

int store_reg_del(struct store *s, const char *aor, const char *binding_key)
{
	sqlite3_stmt *st;
	int err = STORE_OK;

	st = stmt_get(s, ST_REG_DEL, &err);
	if (!st)
		return err;
	if ((err = bind_text(s, st, 1, aor, STORE_URI_MAX, "aor")) ||
	    (err = bind_text(s, st, 2, binding_key, STORE_CONTACT_MAX, "binding key"))) {
		stmt_done(st);
		return err;
	}
	return exec_changes(s, st, "binding");
}

/* Run a DELETE and report how many rows went. */
static int exec_count(struct store *s, sqlite3_stmt *st, int *n)
{
	int err = stmt_exec(s, st);

	if (n)
		*n = err == STORE_OK ? sqlite3_changes(s->db) : 0;
	return err;
}

int store_reg_del_aor(struct store *s, const char *aor, int *n)
{
	sqlite3_stmt *st;
	int err = STORE_OK;

	if (n)
		*n = 0;
	st = stmt_get(s, ST_REG_DEL_AOR, &err);
	if (!st)
		return err;
	if ((err = bind_text(s, st, 1, aor, STORE_URI_MAX, "aor"))) {
		stmt_done(st);
		return err;
	}
	return exec_count(s, st, n);
}

int store_reg_purge(struct store *s, int64_t now, int *n)
{
	sqlite3_stmt *st;
	int err = STORE_OK;

	if (n)
		*n = 0;
	st = stmt_get(s, ST_REG_PURGE, &err);
	if (!st)
		return err;
	if ((err = bind_int(s, st, 1, now))) {
		stmt_done(st);
		return err;
	}
	return exec_count(s, st, n);
}

static int reg_from_row(sqlite3_stmt *st, struct store_reg *r)
{
	memset(r, 0, sizeof(*r));
	if (col_text(st, 0, r->aor, sizeof(r->aor)) < 0 ||
	    col_text(st, 1, r->binding_key, sizeof(r->binding_key)) < 0 ||
	    col_text(st, 2, r->contact, sizeof(r->contact)) < 0 ||
	    col_text(st, 3, r->instance, sizeof(r->instance)) < 0 ||
	    col_text(st, 5, r->path, sizeof(r->path)) < 0 ||
	    col_text(st, 7, r->source, sizeof(r->source)) < 0 ||
	    col_text(st, 9, r->call_id, sizeof(r->call_id)) < 0 ||
	    col_text(st, 11, r->user_agent, sizeof(r->user_agent)) < 0)
		return -1;
	r->reg_id = (int32_t)sqlite3_column_int64(st, 4);
	r->expires = sqlite3_column_int64(st, 6);
	r->transport = sqlite3_column_int(st, 8);
	r->cseq = (uint32_t)sqlite3_column_int64(st, 10);
	r->updated = sqlite3_column_int64(st, 12);
	return 0;
}

/* Run sql (bound with up to two integers) and call fn for each binding. */
static int reg_rows(struct store *s, const char *sql, const char *aor, int nint, int a, int b,
		    int (*fn)(void *ctx, const struct store_reg *r), void *ctx)
{
	struct store_reg *r;
	sqlite3_stmt *st = NULL;
	int rc, ret = STORE_OK;

	/* A fresh statement: fn may call back into the store. */
	rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return fail(s, rc);
	if (aor && (ret = bind_text(s, st, 1, aor, STORE_URI_MAX, "aor"))) {
		sqlite3_finalize(st);
		return ret;
	}
	if (nint == 2) {
		sqlite3_bind_int(st, 1, a);
		sqlite3_bind_int(st, 2, b);
	}
	r = sqlite3_malloc(sizeof(*r)); /* ~5 KiB: keep it off small stacks */
	if (!r) {
		sqlite3_finalize(st);
		set_msg(s, "out of memory");
		return STORE_UNAVAILABLE;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (reg_from_row(st, r) < 0) {
			set_msg(s, "registrations row with an oversized field");
			ret = STORE_CORRUPT;
			break;
		}
		ret = fn(ctx, r);
		if (ret != 0)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = fail(s, rc);
	sqlite3_free(r);
	sqlite3_finalize(st);
	return ret;
}

#define REG_COLS                                                                                   \
	"SELECT aor, binding_key, contact, instance, reg_id, path, expires, source, transport,"    \
	" call_id, cseq, user_agent, updated FROM registrations"

int store_reg_list(struct store *s, const char *aor,
		   int (*fn)(void *ctx, const struct store_reg *r), void *ctx)
{
	/* the primary key's order: no sort step */
	static const char all[] = REG_COLS " ORDER BY aor, binding_key";
	static const char one[] = REG_COLS " WHERE aor = ?1 ORDER BY aor, binding_key";

	return reg_rows(s, aor ? one : all, aor, 0, 0, 0, fn, ctx);
}

int store_reg_scan(struct store *s, int part, int nparts,
		   int (*fn)(void *ctx, const struct store_reg *r), void *ctx)
{
	static const char sql[] = REG_COLS " WHERE rowid % ?2 = ?1";

	if (nparts < 1 || part < 0 || part >= nparts)
		return STORE_INVALID;
	return reg_rows(s, sql, NULL, 2, part, nparts, fn, ctx);
}
#undef REG_COLS

/* ---- audit ---- */

int store_audit_add(struct store *s, const char *actor, const char *action, const char *target,
		    const char *source, const char *detail)
{
	const struct store_audit *a = NULL; /* only for sizeof of its fields */
	sqlite3_stmt *st;
	int err = STORE_OK;

	if (!actor || !*actor || !action || !*action)
		return invalid(s, "audit record (actor and action are required)");
	st = stmt_get(s, ST_AUDIT_ADD, &err);
	if (!st)
		return err;
	if ((err = bind_int(s, st, 1, (int64_t)time(NULL))) ||
	    (err = bind_text(s, st, 2, actor, sizeof(a->actor), "audit actor")) ||
	    (err = bind_text(s, st, 3, action, sizeof(a->action), "audit action")) ||
	    (err = bind_text(s, st, 4, target, sizeof(a->target), "audit target")) ||
	    (err = bind_text(s, st, 5, source, sizeof(a->source), "audit source")) ||
	    (err = bind_text(s, st, 6, detail, sizeof(a->detail), "audit detail"))) {
		stmt_done(st);
		return err;
	}
	return stmt_exec(s, st);
}

int store_audit_list(struct store *s, int limit, int (*fn)(void *ctx, const struct store_audit *a),
		     void *ctx)
{
	static const char sql[] = "SELECT id, ts, actor, action, target, source, detail"
				  " FROM audit ORDER BY ts DESC, id DESC LIMIT ?1";
	struct store_audit a;
	sqlite3_stmt *st = NULL;
	int rc, ret = STORE_OK;

	if (limit <= 0)
		return STORE_OK;
	rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return fail(s, rc);
	sqlite3_bind_int(st, 1, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&a, 0, sizeof(a));
		a.id = sqlite3_column_int64(st, 0);
		a.ts = sqlite3_column_int64(st, 1);
		if (col_text(st, 2, a.actor, sizeof(a.actor)) < 0 ||
		    col_text(st, 3, a.action, sizeof(a.action)) < 0 ||
		    col_text(st, 4, a.target, sizeof(a.target)) < 0 ||
		    col_text(st, 5, a.source, sizeof(a.source)) < 0 ||
		    col_text(st, 6, a.detail, sizeof(a.detail)) < 0) {
			set_msg(s, "audit row with an oversized field");
			ret = STORE_CORRUPT;
			break;
		}
		ret = fn(ctx, &a);
		if (ret != 0)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = fail(s, rc);
	sqlite3_finalize(st);
	return ret;
}

/* ---- OAuth signing keys and partners ----
 *
 * Admin-path and start-up calls: each prepares a fresh statement (the
 * listing callbacks may use the store again), nothing is cached per
 * connection. */

static const char *const key_states[] = {"next", "current", "previous", "retired"};
static const char *const trusts[] = {"full", "application", "user"};
static const char *const sources[] = {"metadata", "cert", "jwks"};
static const char *const key_algs[] = {"RS256", "PS256", "ES256", "EdDSA"};

#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char *enum_name(const char *const *names, int n, int v)
{
	return v >= 0 && v < n ? names[v] : "?";
}

static int enum_parse(const char *const *names, int n, const char *name, int *out)
{
	for (int i = 0; name && i < n; i++) {
		if (strcmp(names[i], name) == 0) {
			*out = i;
			return STORE_OK;
		}
	}
	return STORE_INVALID;
}

const char *store_oauth_key_state_name(int state)
{
	return enum_name(key_states, NELEM(key_states), state);
}

int store_oauth_key_state_parse(const char *name, int *state)
{
	return enum_parse(key_states, NELEM(key_states), name, state);
}

const char *store_partner_trust_name(int trust)
{
	return enum_name(trusts, NELEM(trusts), trust);
}

int store_partner_trust_parse(const char *name, int *trust)
{
	return enum_parse(trusts, NELEM(trusts), name, trust);
}

const char *store_partner_source_name(int source)
{
	return enum_name(sources, NELEM(sources), source);
}

/* A fresh statement for sql; NULL with the error in *err. */
static sqlite3_stmt *prep(struct store *s, const char *sql, int *err)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);

	if (rc != SQLITE_OK) {
		*err = fail(s, rc);
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

/* Step a fresh statement that returns no row of interest, then finalize. */
static int step_done(struct store *s, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	int err = rc == SQLITE_DONE || rc == SQLITE_ROW ? STORE_OK : fail(s, rc);

	sqlite3_finalize(st);
	return err;
}

/* ---- phone numbers, extensions and PINs ---- */

int store_user_set_phone(struct store *s, const char *uri, const char *phone, const char *extension)
{
	char norm[STORE_URI_MAX];
	sqlite3_stmt *st;
	int err = STORE_OK;

	if ((err = norm_arg(s, uri, norm)))
		return err;
	st = prep(
	    s,
	    "UPDATE users SET phone = coalesce(?2, phone), extension = coalesce(?3, extension),"
	    " updated = ?4 WHERE uri = ?1",
	    &err);
	if (!st)
		return err;
	if ((err = bind_text(s, st, 1, norm, sizeof(norm), "uri")) ||
	    (phone && (err = bind_text(s, st, 2, phone, STORE_PHONE_MAX, "phone number"))) ||
	    (extension &&
	     (err = bind_text(s, st, 3, extension, STORE_EXTENSION_MAX, "extension"))) ||
	    (err = bind_int(s, st, 4, (int64_t)time(NULL)))) {
		sqlite3_finalize(st);
		return err;
	}
	err = step_done(s, st);
	if (err == STORE_OK && sqlite3_changes(s->db) == 0) {
		set_msg(s, "no such user");
		err = STORE_NOTFOUND;
	}
	return err;
}

int store_user_get_phone(struct store *s, const char *uri, char phone[STORE_PHONE_MAX],
			 char extension[STORE_EXTENSION_MAX])
{
	char norm[STORE_URI_MAX];
	sqlite3_stmt *st;
	int err = STORE_OK, rc;

	phone[0] = extension[0] = '\0';
	if ((err = norm_arg(s, uri, norm)))
		return err;
	st = prep(s, "SELECT phone, extension FROM users WHERE uri = ?1", &err);
	if (!st)
		return err;
	if ((err = bind_text(s, st, 1, norm, sizeof(norm), "uri"))) {
		sqlite3_finalize(st);
		return err;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (col_text(st, 0, phone, STORE_PHONE_MAX) < 0 ||
		    col_text(st, 1, extension, STORE_EXTENSION_MAX) < 0) {
			set_msg(s, "users row with an oversized phone number or extension");
			err = STORE_CORRUPT;
		}
	} else if (rc == SQLITE_DONE) {
		set_msg(s, "no such user");
		err = STORE_NOTFOUND;
	} else {
		err = fail(s, rc);
	}
	sqlite3_finalize(st);
	return err;
}

int store_user_find_phone(struct store *s, const char *phone, const char *extension,
			  int (*fn)(void *ctx, const struct store_user *u), void *ctx)
{
	static const char sql[] =
	    "SELECT " USER_COLS " FROM users u"
	    " WHERE (?1 = '' OR u.phone = ?1) AND (?2 = '' OR u.extension = ?2)"
	    " ORDER BY u.uri";
	struct store_user u;
	sqlite3_stmt *st;
	int err = STORE_OK, rc, ret = STORE_OK;

	if ((!phone || !phone[0]) && (!extension || !extension[0]))
		return invalid(s, "phone number and extension (both empty)");
	st = prep(s, sql, &err);
	if (!st)
		return err;
	if ((err = bind_text(s, st, 1, phone, STORE_PHONE_MAX, "phone number")) ||
	    (err = bind_text(s, st, 2, extension, STORE_EXTENSION_MAX, "extension"))) {
		sqlite3_finalize(st);
		return err;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (user_from_row(st, &u) < 0) {
			set_msg(s, "users row with an oversized field");
			ret = STORE_CORRUPT;
			break;
		}
		ret = fn(ctx, &u);
		if (ret != 0)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = fail(s, rc);
	sqlite3_finalize(st);
	return ret;
}

static int bind_blob(struct store *s, sqlite3_stmt *st, int i, const uint8_t *v, size_t n,
		     const char *what)
{
	int rc;

	if (!v || n == 0 || n > STORE_PIN_BLOB_MAX)
		return invalid(s, what);
	rc = sqlite3_bind_blob(st, i, v, (int)n, SQLITE_STATIC);
	return rc == SQLITE_OK ? STORE_OK : fail(s, rc);
}

int store_pin_put(struct store *s, int64_t user_id, const uint8_t *hash, size_t hash_len,
		  const uint8_t *salt, size_t salt_len, const char *params, int64_t set_at)
{
	sqlite3_stmt *st;
	int err = STORE_OK;

	if (!params || !params[0])
		return invalid(s, "PIN parameters");
	st = prep(
	    s,
	    "INSERT INTO pins (user_id, hash, salt, params, set_at) VALUES (?1, ?2, ?3, ?4, ?5)"
	    " ON CONFLICT (user_id) DO UPDATE SET hash = ?2, salt = ?3, params = ?4,"
	    " set_at = ?5, window_start = 0, local_failures = 0, global_failures = 0,"
	    " locked_until = 0, admin_locked = 0",
	    &err);
	if (!st)
		return err;
	if ((err = bind_int(s, st, 1, user_id)) ||
	    (err = bind_blob(s, st, 2, hash, hash_len, "PIN hash")) ||
	    (err = bind_blob(s, st, 3, salt, salt_len, "PIN salt")) ||
	    (err = bind_text(s, st, 4, params, STORE_PIN_PARAMS_MAX, "PIN parameters")) ||
	    (err = bind_int(s, st, 5, set_at))) {
		sqlite3_clear_bindings(st);
		sqlite3_finalize(st);
		return err;
	}
	err = step_done(s, st);
	if (err == STORE_CONFLICT)
		set_msg(s, "no such user");
	return err == STORE_CONFLICT ? STORE_NOTFOUND : err;
}

/* Copy a blob column into buf (cap *len); -1 when it is empty or too long. */
static int col_blob(sqlite3_stmt *st, int i, uint8_t *buf, size_t *len)
{
	const void *b = sqlite3_column_blob(st, i);
	int n = sqlite3_column_bytes(st, i);

	if (!b || n <= 0 || (size_t)n > *len)
		return -1;
	memcpy(buf, b, (size_t)n);
	*len = (size_t)n;
	return 0;
}

int store_pin_get_hash(struct store *s, int64_t user_id, uint8_t *hash, size_t *hash_len,
		       uint8_t *salt, size_t *salt_len, char params[STORE_PIN_PARAMS_MAX])
{
	sqlite3_stmt *st;
	int err = STORE_OK, rc;

	st = prep(s, "SELECT hash, salt, params FROM pins WHERE user_id = ?1", &err);
	if (!st)
		return err;
	if ((err = bind_int(s, st, 1, user_id))) {
		sqlite3_finalize(st);
		return err;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (col_blob(st, 0, hash, hash_len) < 0 || col_blob(st, 1, salt, salt_len) < 0 ||
		    col_text(st, 2, params, STORE_PIN_PARAMS_MAX) < 0) {
			set_msg(s, "pins row with an empty or oversized field");
			err = STORE_CORRUPT;
		}
	} else if (rc == SQLITE_DONE) {
		set_msg(s, "no PIN");
		err = STORE_NOTFOUND;
	} else {
		err = fail(s, rc);
	}
	/* the hash went through SQLite's buffers: reset them with the row */
	sqlite3_finalize(st);
	return err;
}

int store_pin_get_state(struct store *s, int64_t user_id, struct store_pin_state *out)
{
	sqlite3_stmt *st;
	int err = STORE_OK, rc;

	memset(out, 0, sizeof(*out));
	st = prep(s,
		  "SELECT params, set_at, window_start, local_failures, global_failures,"
		  " locked_until, admin_locked FROM pins WHERE user_id = ?1",
		  &err);
	if (!st)
		return err;
	if ((err = bind_int(s, st, 1, user_id))) {
		sqlite3_finalize(st);
		return err;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->user_id = user_id;
		if (col_text(st, 0, out->params, sizeof(out->params)) < 0) {
			set_msg(s, "pins row with oversized parameters");
			err = STORE_CORRUPT;
		}
		out->set_at = sqlite3_column_int64(st, 1);
		out->window_start = sqlite3_column_int64(st, 2);
		out->local_failures = sqlite3_column_int(st, 3);
		out->global_failures = sqlite3_column_int(st, 4);
		out->locked_until = sqlite3_column_int64(st, 5);
		out->admin_locked = sqlite3_column_int(st, 6) != 0;
	} else if (rc == SQLITE_DONE) {
		set_msg(s, "no PIN");
		err = STORE_NOTFOUND;
	} else {
		err = fail(s, rc);
	}
	sqlite3_finalize(st);
	return err;
}

int store_pin_set_state(struct store *s, const struct store_pin_state *p)
{
	sqlite3_stmt *st;
	int err = STORE_OK;

	st = prep(s,
		  "UPDATE pins SET window_start = ?2, local_failures = ?3, global_failures = ?4,"
		  " locked_until = ?5, admin_locked = ?6 WHERE user_id = ?1",
		  &err);
	if (!st)
		return err;
	if ((err = bind_int(s, st, 1, p->user_id)) || (err = bind_int(s, st, 2, p->window_start)) ||
	    (err = bind_int(s, st, 3, p->local_failures)) ||
	    (err = bind_int(s, st, 4, p->global_failures)) ||
	    (err = bind_int(s, st, 5, p->locked_until)) ||
	    (err = bind_int(s, st, 6, p->admin_locked ? 1 : 0))) {
		sqlite3_finalize(st);
		return err;
	}
	err = step_done(s, st);
	if (err == STORE_OK && sqlite3_changes(s->db) == 0) {
		set_msg(s, "no PIN");
		err = STORE_NOTFOUND;
	}
	return err;
}

int store_pin_del(struct store *s, int64_t user_id)
{
	sqlite3_stmt *st;
	int err = STORE_OK;

	st = prep(s, "DELETE FROM pins WHERE user_id = ?1", &err);
	if (!st)
		return err;
	if ((err = bind_int(s, st, 1, user_id))) {
		sqlite3_finalize(st);
		return err;
	}
	err = step_done(s, st);
	if (err == STORE_OK && sqlite3_changes(s->db) == 0) {
		set_msg(s, "no PIN");
		err = STORE_NOTFOUND;
	}
	return err;
}

/* ---- keys ---- */

#define KEY_COLS "kid, alg, state, cert, x5t, x5t_s256, created, activated, retired"

static int key_from_row(sqlite3_stmt *st, struct store_oauth_key *k)
{
	char state[16];

	memset(k, 0, sizeof(*k));
	if (col_text(st, 0, k->kid, sizeof(k->kid)) < 0 ||
	    col_text(st, 1, k->alg, sizeof(k->alg)) < 0 ||
	    col_text(st, 2, state, sizeof(state)) < 0 ||
	    col_text(st, 3, k->cert_pem, sizeof(k->cert_pem)) < 0 ||
	    col_text(st, 4, k->x5t, sizeof(k->x5t)) < 0 ||
	    col_text(st, 5, k->x5t_s256, sizeof(k->x5t_s256)) < 0 ||
	    store_oauth_key_state_parse(state, &k->state) != STORE_OK)
		return -1;
	k->created = sqlite3_column_int64(st, 6);
	k->activated = sqlite3_column_int64(st, 7);
	k->retired = sqlite3_column_int64(st, 8);
	return 0;
}

/* Run a query for at most one key (bound with ?1 = arg, if not NULL). */
static int key_one(struct store *s, const char *sql, const char *arg, struct store_oauth_key *out,
		   const char *missing)
{
	sqlite3_stmt *st;
	int err = STORE_OK, rc;

	memset(out, 0, sizeof(*out));
	st = prep(s, sql, &err);
	if (!st)
		return err;
	if (arg && (err = bind_text(s, st, 1, arg, STORE_OAUTH_KID_MAX, "key id"))) {
		sqlite3_finalize(st);
		return err;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (key_from_row(st, out) < 0) {
			memset(out, 0, sizeof(*out));
			set_msg(s, "oauth_keys row with an oversized or unknown field");
			err = STORE_CORRUPT;
		}
	} else if (rc == SQLITE_DONE) {
		set_msg(s, missing);
		err = STORE_NOTFOUND;
	} else {
		err = fail(s, rc);
	}
	sqlite3_finalize(st);
	return err;
}

int store_oauth_key_get(struct store *s, const char *kid, struct store_oauth_key *out)
{
	return key_one(s, "SELECT " KEY_COLS " FROM oauth_keys WHERE kid = ?1", kid, out,
		       "no such key");
}

int store_oauth_key_current(struct store *s, struct store_oauth_key *out)
{
	return key_one(s, "SELECT " KEY_COLS " FROM oauth_keys WHERE state = 'current'", NULL, out,
		       "no current signing key");
}

static bool kid_ok(const char *kid)
{
	size_t n = kid ? strnlen(kid, STORE_OAUTH_KID_MAX) : 0;

	if (n == 0 || n >= STORE_OAUTH_KID_MAX)
		return false;
	/* base64url only: the kid names a file in the keys directory */
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)kid[i]) && kid[i] != '-' && kid[i] != '_')
			return false;
	return true;
}

int store_oauth_key_add(struct store *s, struct store_oauth_key *k)
{
	static const char sql[] = "INSERT INTO oauth_keys (" KEY_COLS ")"
				  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0)";
	sqlite3_stmt *st;
	int alg, err = STORE_OK;

	if (!kid_ok(k->kid))
		return invalid(s, "key id (1 to 31 base64url characters)");
	if (enum_parse(key_algs, NELEM(key_algs), k->alg, &alg) != STORE_OK)
		return invalid(s, "key algorithm (RS256, PS256, ES256 or EdDSA)");
	if (k->state != STORE_OAUTH_KEY_NEXT && k->state != STORE_OAUTH_KEY_CURRENT)
		return invalid(s, "state of a new key (next or current)");
	if (strnlen(k->cert_pem, sizeof(k->cert_pem)) == 0 || !k->x5t[0] || !k->x5t_s256[0])
		return invalid(s, "key record (certificate and thumbprints are required)");
	if (k->created == 0)
		k->created = (int64_t)time(NULL);
	k->activated = k->state == STORE_OAUTH_KEY_CURRENT ? k->created : 0;
	k->retired = 0;
	st = prep(s, sql, &err);
	if (!st)
		return err;
	if ((err = bind_text(s, st, 1, k->kid, sizeof(k->kid), "key id")) ||
	    (err = bind_text(s, st, 2, k->alg, sizeof(k->alg), "key algorithm")) ||
	    (err = bind_text(s, st, 3, key_states[k->state], 16, "key state")) ||
	    (err = bind_text(s, st, 4, k->cert_pem, sizeof(k->cert_pem), "certificate")) ||
	    (err = bind_text(s, st, 5, k->x5t, sizeof(k->x5t), "x5t")) ||
	    (err = bind_text(s, st, 6, k->x5t_s256, sizeof(k->x5t_s256), "x5t#S256")) ||
	    (err = bind_int(s, st, 7, k->created)) || (err = bind_int(s, st, 8, k->activated))) {
		sqlite3_finalize(st);
		return err;
	}
	err = step_done(s, st);
	if (err == STORE_CONFLICT)
		set_msg(s, k->state == STORE_OAUTH_KEY_CURRENT
			       ? "a key with this id exists, or another key is current"
			       : "a key with this id exists");
	return err;
}

int store_oauth_key_list(struct store *s, int flags,
			 int (*fn)(void *ctx, const struct store_oauth_key *k), void *ctx)
{
	static const char all[] =
	    "SELECT " KEY_COLS " FROM oauth_keys ORDER BY CASE state WHEN 'current' THEN 0"
	    " WHEN 'next' THEN 1 WHEN 'previous' THEN 2 ELSE 3 END, created DESC, kid";
	static const char published[] =
	    "SELECT " KEY_COLS " FROM oauth_keys WHERE state <> 'retired'"
	    " ORDER BY CASE state WHEN 'current' THEN 0"
	    " WHEN 'next' THEN 1 ELSE 2 END, created DESC, kid";
	struct store_oauth_key *k;
	sqlite3_stmt *st;
	int rc, ret = STORE_OK;

	st = prep(s, (flags & STORE_OAUTH_KEYS_PUBLISHED) ? published : all, &ret);
	if (!st)
		return ret;
	k = sqlite3_malloc(sizeof(*k)); /* 8 KiB of certificate: off small stacks */
	if (!k) {
		sqlite3_finalize(st);
		set_msg(s, "out of memory");
		return STORE_UNAVAILABLE;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (key_from_row(st, k) < 0) {
			set_msg(s, "oauth_keys row with an oversized or unknown field");
			ret = STORE_CORRUPT;
			break;
		}
		ret = fn(ctx, k);
		if (ret != 0)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = fail(s, rc);
	sqlite3_free(k);
	sqlite3_finalize(st);
	return ret;
}

/* UPDATE oauth_keys with sql binding ?1 = kid, ?2 = now. */
static int key_update(struct store *s, const char *sql, const char *kid, int64_t now)
{
	sqlite3_stmt *st;
	int err = STORE_OK;

	st = prep(s, sql, &err);
	if (!st)
		return err;
	if ((kid && (err = bind_text(s, st, 1, kid, STORE_OAUTH_KID_MAX, "key id"))) ||
	    (sqlite3_bind_parameter_count(st) >= 2 && (err = bind_int(s, st, 2, now)))) {
		sqlite3_finalize(st);
		return err;
	}
	return step_done(s, st);
}

static int refuse(struct store *s, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int refuse(struct store *s, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
	va_end(ap);
	return err;
}

/* The transition rules of store.h, inside the caller's transaction. */
static int key_transition(struct store *s, const struct store_oauth_key *k, int to)
{
	int64_t now = (int64_t)time(NULL);
	const char *from = store_oauth_key_state_name(k->state);
	int err;

	if (k->state == to)
		return STORE_OK;
	if (k->state == STORE_OAUTH_KEY_RETIRED)
		return refuse(s, STORE_CONFLICT,
			      "key %s is retired; a retired key never comes back", k->kid);
	switch (to) {
	case STORE_OAUTH_KEY_CURRENT:
		/* the old current key keeps being published and accepted */
		err = key_update(s,
				 "UPDATE oauth_keys SET state = 'previous' WHERE state = 'current'",
				 NULL, now);
		if (err == STORE_OK)
			err = key_update(s,
					 "UPDATE oauth_keys SET state = 'current', activated = ?2"
					 " WHERE kid = ?1",
					 k->kid, now);
		return err;
	case STORE_OAUTH_KEY_RETIRED:
		if (k->state == STORE_OAUTH_KEY_CURRENT)
			return refuse(s, STORE_CONFLICT,
				      "key %s is the current signing key; activate another key "
				      "first",
				      k->kid);
		return key_update(s,
				  "UPDATE oauth_keys SET state = 'retired', retired = ?2"
				  " WHERE kid = ?1",
				  k->kid, now);
	case STORE_OAUTH_KEY_NEXT:
		return refuse(s, STORE_CONFLICT, "key %s is %s; only a new key is next", k->kid,
			      from);
	case STORE_OAUTH_KEY_PREVIOUS:
		return refuse(s, STORE_INVALID,
			      "key %s: a key becomes previous only when another key is "
			      "activated",
			      k->kid);
	default:
		return invalid(s, "key state");
	}
}

int store_oauth_key_set_state(struct store *s, const char *kid, int state)
{
	struct store_oauth_key *k;
	bool own;
	int err;

	if (!kid_ok(kid))
		return invalid(s, "key id");
	if (state < STORE_OAUTH_KEY_NEXT || state > STORE_OAUTH_KEY_RETIRED)
		return invalid(s, "key state");
	k = sqlite3_malloc(sizeof(*k));
	if (!k) {
		set_msg(s, "out of memory");
		return STORE_UNAVAILABLE;
	}
	/* read and change under one write lock: two admins activating two keys
	 * at once still leave exactly one current key */
	err = tx_begin(s, &own);
	if (err == STORE_OK) {
		err = store_oauth_key_get(s, kid, k);
		if (err == STORE_OK)
			err = key_transition(s, k, state);
		err = tx_end(s, own, err);
	}
	sqlite3_free(k);
	return err;
}

/* ---- partners ---- */

#define PARTNER_COLS                                                                               \
	"id, name, enabled, issuer, realm, trust, resources, lifetime, source, metadata_url,"      \
	" certs, jwks, last_fetch, last_error, created, updated, use_oauth_server"

void store_partner_clear(struct store_partner *p)
{
	if (!p)
		return;
	sqlite3_free(p->certs);
	sqlite3_free(p->jwks);
	p->certs = NULL;
	p->jwks = NULL;
}

/* A heap copy of a text column; NULL for ''. -1 on overflow or no memory. */
static int col_dup(sqlite3_stmt *st, int i, char **out)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	int n = sqlite3_column_bytes(st, i);

	*out = NULL;
	if (!t || n <= 0)
		return 0;
	if (n >= STORE_PARTNER_KEYS_MAX)
		return -1;
	*out = sqlite3_malloc(n + 1);
	if (!*out)
		return -1;
	memcpy(*out, t, (size_t)n);
	(*out)[n] = '\0';
	return 0;
}

static int partner_from_row(sqlite3_stmt *st, struct store_partner *p)
{
	char trust[16], source[16];

	memset(p, 0, sizeof(*p));
	p->id = sqlite3_column_int64(st, 0);
	p->enabled = sqlite3_column_int(st, 2) != 0;
	p->lifetime = (int32_t)sqlite3_column_int64(st, 7);
	p->last_fetch = sqlite3_column_int64(st, 12);
	p->created = sqlite3_column_int64(st, 14);
	p->updated = sqlite3_column_int64(st, 15);
	p->use_oauth_server = sqlite3_column_int(st, 16) != 0;
	if (col_text(st, 1, p->name, sizeof(p->name)) < 0 ||
	    col_text(st, 3, p->issuer, sizeof(p->issuer)) < 0 ||
	    col_text(st, 4, p->realm, sizeof(p->realm)) < 0 ||
	    col_text(st, 5, trust, sizeof(trust)) < 0 ||
	    col_text(st, 6, p->resources, sizeof(p->resources)) < 0 ||
	    col_text(st, 8, source, sizeof(source)) < 0 ||
	    col_text(st, 9, p->metadata_url, sizeof(p->metadata_url)) < 0 ||
	    col_text(st, 13, p->last_error, sizeof(p->last_error)) < 0 ||
	    store_partner_trust_parse(trust, &p->trust) != STORE_OK ||
	    enum_parse(sources, NELEM(sources), source, &p->source) != STORE_OK ||
	    col_dup(st, 10, &p->certs) < 0 || col_dup(st, 11, &p->jwks) < 0) {
		store_partner_clear(p);
		return -1;
	}
	return 0;
}

static bool partner_name_ok(const char *name)
{
	size_t n = name ? strnlen(name, STORE_PARTNER_NAME_MAX) : 0;
	return n > 0 && n < STORE_PARTNER_NAME_MAX;
}

int store_partner_add(struct store *s, struct store_partner *p)
{
	static const char sql[] =
	    "INSERT INTO partners (name, enabled, issuer, realm, trust, resources, lifetime,"
	    " source, metadata_url, certs, jwks, created, updated, use_oauth_server)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13)";
	int64_t now = (int64_t)time(NULL);
	sqlite3_stmt *st;
	int err = STORE_OK;

	if (!partner_name_ok(p->name))
		return invalid(s, "partner name");
	if (!p->realm[0] || p->lifetime <= 0)
		return invalid(s, "partner (realm and a positive lifetime are required)");
	if (p->trust < 0 || p->trust >= NELEM(trusts) || p->source < 0 ||
	    p->source >= NELEM(sources))
		return invalid(s, "partner trust level or key source");
	st = prep(s, sql, &err);
	if (!st)
		return err;
	if ((err = bind_text(s, st, 1, p->name, sizeof(p->name), "partner name")) ||
	    (err = bind_int(s, st, 2, p->enabled ? 1 : 0)) ||
	    (err = bind_text(s, st, 3, p->issuer, sizeof(p->issuer), "issuer")) ||
	    (err = bind_text(s, st, 4, p->realm, sizeof(p->realm), "realm")) ||
	    (err = bind_text(s, st, 5, trusts[p->trust], 16, "trust")) ||
	    (err = bind_text(s, st, 6, p->resources, sizeof(p->resources), "resources")) ||
	    (err = bind_int(s, st, 7, p->lifetime)) ||
	    (err = bind_text(s, st, 8, sources[p->source], 16, "key source")) ||
	    (err = bind_text(s, st, 9, p->metadata_url, sizeof(p->metadata_url), "metadata URL")) ||
	    (err = bind_text(s, st, 10, p->certs, STORE_PARTNER_KEYS_MAX, "certificates")) ||
	    (err = bind_text(s, st, 11, p->jwks, STORE_PARTNER_KEYS_MAX, "JWKS")) ||
	    (err = bind_int(s, st, 12, now)) ||
	    (err = bind_int(s, st, 13, p->use_oauth_server ? 1 : 0))) {
		sqlite3_finalize(st);
		return err;
	}
	err = step_done(s, st);
	if (err == STORE_OK) {
		p->id = sqlite3_last_insert_rowid(s->db);
		p->created = p->updated = now;
	} else if (err == STORE_CONFLICT) {
		set_msg(s, "a partner with this name, or with this issuer in this realm, exists");
	}
	return err;
}

int store_partner_get(struct store *s, const char *name, struct store_partner *out)
{
	sqlite3_stmt *st;
	int err = STORE_OK, rc;

	memset(out, 0, sizeof(*out));
	if (!partner_name_ok(name))
		return invalid(s, "partner name");
	st = prep(s, "SELECT " PARTNER_COLS " FROM partners WHERE name = ?1", &err);
	if (!st)
		return err;
	if ((err = bind_text(s, st, 1, name, STORE_PARTNER_NAME_MAX, "partner name"))) {
		sqlite3_finalize(st);
		return err;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (partner_from_row(st, out) < 0) {
			set_msg(s, "partners row with an oversized or unknown field");
			err = STORE_CORRUPT;
		}
	} else if (rc == SQLITE_DONE) {
		set_msg(s, "no such partner");
		err = STORE_NOTFOUND;
	} else {
		err = fail(s, rc);
	}
	sqlite3_finalize(st);
	return err;
}

int store_partner_list(struct store *s, int (*fn)(void *ctx, const struct store_partner *p),
		       void *ctx)
{
	struct store_partner *p;
	sqlite3_stmt *st;
	int rc, ret = STORE_OK;

	st = prep(s, "SELECT " PARTNER_COLS " FROM partners ORDER BY name", &ret);
	if (!st)
		return ret;
	p = sqlite3_malloc(sizeof(*p));
	if (!p) {
		sqlite3_finalize(st);
		set_msg(s, "out of memory");
		return STORE_UNAVAILABLE;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (partner_from_row(st, p) < 0) {
			set_msg(s, "partners row with an oversized or unknown field");
			ret = STORE_CORRUPT;
			break;
		}
		ret = fn(ctx, p);
		store_partner_clear(p);
		if (ret != 0)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = fail(s, rc);
	sqlite3_free(p);
	sqlite3_finalize(st);
	return ret;
}

/* Run a partner UPDATE/DELETE (?1 = name already bound); NOTFOUND if no row. */
static int partner_changes(struct store *s, sqlite3_stmt *st)
{
	int err = step_done(s, st);

	if (err == STORE_OK && sqlite3_changes(s->db) == 0) {
		set_msg(s, "no such partner");
		err = STORE_NOTFOUND;
	}
	return err;
}

int store_partner_set_enabled(struct store *s, const char *name, bool enabled)
{
	sqlite3_stmt *st;
	int err = STORE_OK;

	if (!partner_name_ok(name))
		return invalid(s, "partner name");
	st = prep(s, "UPDATE partners SET enabled = ?2, updated = ?3 WHERE name = ?1", &err);
	if (!st)
		return err;
	if ((err = bind_text(s, st, 1, name, STORE_PARTNER_NAME_MAX, "partner name")) ||
	    (err = bind_int(s, st, 2, enabled ? 1 : 0)) ||
	    (err = bind_int(s, st, 3, (int64_t)time(NULL)))) {
		sqlite3_finalize(st);
		return err;
	}
	return partner_changes(s, st);
}

int store_partner_del(struct store *s, const char *name)
{
	sqlite3_stmt *st;
	int err = STORE_OK;

	if (!partner_name_ok(name))
		return invalid(s, "partner name");
	st = prep(s, "DELETE FROM partners WHERE name = ?1", &err);
	if (!st)
		return err;
	if ((err = bind_text(s, st, 1, name, STORE_PARTNER_NAME_MAX, "partner name"))) {
		sqlite3_finalize(st);
		return err;
	}
	return partner_changes(s, st);
}

int store_partner_set_fetch(struct store *s, const char *name, int64_t when, const char *error,
			    const char *jwks)
{
	static const char keep[] = "UPDATE partners SET last_fetch = ?2, last_error = ?3,"
				   " updated = ?4 WHERE name = ?1";
	static const char replace[] = "UPDATE partners SET last_fetch = ?2, last_error = ?3,"
				      " updated = ?4, jwks = ?5 WHERE name = ?1";
	sqlite3_stmt *st;
	int err = STORE_OK;

	if (!partner_name_ok(name))
		return invalid(s, "partner name");
	st = prep(s, jwks ? replace : keep, &err);
	if (!st)
		return err;
	if ((err = bind_text(s, st, 1, name, STORE_PARTNER_NAME_MAX, "partner name")) ||
	    (err = bind_int(s, st, 2, when)) ||
	    /* an over-long error is cut, not refused: it is a diagnostic */
	    (err = sqlite3_bind_text(st, 3, error ? error : "",
				     (int)strnlen(error ? error : "", STORE_NAME_MAX - 1),
				     SQLITE_STATIC) == SQLITE_OK
		       ? STORE_OK
		       : fail(s, SQLITE_ERROR)) ||
	    (err = bind_int(s, st, 4, (int64_t)time(NULL))) ||
	    (jwks && (err = bind_text(s, st, 5, jwks, STORE_PARTNER_KEYS_MAX, "JWKS")))) {
		sqlite3_finalize(st);
		return err;
	}
	return partner_changes(s, st);
}

int store_partner_set_issuer(struct store *s, const char *name, const char *issuer)
{
	sqlite3_stmt *st;
	int err = STORE_OK;

	if (!partner_name_ok(name))
		return invalid(s, "partner name");
	if (!issuer || !issuer[0])
		return invalid(s, "issuer");
	st =
	    prep(s, "UPDATE partners SET issuer = ?2, updated = ?3 WHERE name = ?1 AND issuer = ''",
		 &err);
	if (!st)
		return err;
	if ((err = bind_text(s, st, 1, name, STORE_PARTNER_NAME_MAX, "partner name")) ||
	    (err = bind_text(s, st, 2, issuer, STORE_URI_MAX, "issuer")) ||
	    (err = bind_int(s, st, 3, (int64_t)time(NULL)))) {
		sqlite3_finalize(st);
		return err;
	}
	err = step_done(s, st);
	if (err == STORE_CONFLICT)
		set_msg(s, "another partner has this issuer in this realm");
	return err;
}

/* ---- certificates issued by our CA ---- */

#define CERT_COLS                                                                                  \
	"serial, coalesce(user_id, 0), uri, subject, not_before, not_after, issued, revoked_at,"   \
	" reason, pem"

static int cert_from_row(sqlite3_stmt *st, struct store_cert *c)
{
	memset(c, 0, sizeof(*c));
	c->user_id = sqlite3_column_int64(st, 1);
	c->not_before = sqlite3_column_int64(st, 4);
	c->not_after = sqlite3_column_int64(st, 5);
	c->issued = sqlite3_column_int64(st, 6);
	c->revoked_at = sqlite3_column_int64(st, 7);
	if (col_text(st, 0, c->serial, sizeof(c->serial)) < 0 ||
	    col_text(st, 2, c->uri, sizeof(c->uri)) < 0 ||
	    col_text(st, 3, c->subject, sizeof(c->subject)) < 0 ||
	    col_text(st, 8, c->reason, sizeof(c->reason)) < 0 ||
	    col_text(st, 9, c->pem, sizeof(c->pem)) < 0)
		return -1;
	return 0;
}

static bool cert_serial_ok(const char *serial)
{
	size_t n = serial ? strnlen(serial, STORE_CERT_SERIAL_MAX) : 0;
	return n > 0 && n < STORE_CERT_SERIAL_MAX;
}

int store_cert_add(struct store *s, const struct store_cert *c)
{
	static const char sql[] =
	    "INSERT INTO certificates (serial, user_id, uri, subject, not_before, not_after,"
	    " issued, pem) VALUES (?1, nullif(?2, 0), ?3, ?4, ?5, ?6, ?7, ?8)";
	sqlite3_stmt *st;
	int err = STORE_OK;

	if (!cert_serial_ok(c->serial) || !c->uri[0] || !c->pem[0] || c->not_after <= c->not_before)
		return invalid(s, "certificate (serial, URI, PEM and validity are required)");
	st = prep(s, sql, &err);
	if (!st)
		return err;
	if ((err = bind_text(s, st, 1, c->serial, sizeof(c->serial), "serial")) ||
	    (err = bind_int(s, st, 2, c->user_id)) ||
	    (err = bind_text(s, st, 3, c->uri, sizeof(c->uri), "uri")) ||
	    (err = bind_text(s, st, 4, c->subject, sizeof(c->subject), "subject")) ||
	    (err = bind_int(s, st, 5, c->not_before)) || (err = bind_int(s, st, 6, c->not_after)) ||
	    (err = bind_int(s, st, 7, c->issued ? c->issued : (int64_t)time(NULL))) ||
	    (err = bind_text(s, st, 8, c->pem, sizeof(c->pem), "certificate PEM"))) {
		sqlite3_finalize(st);
		return err;
	}
	err = step_done(s, st);
	if (err == STORE_CONFLICT)
		set_msg(s, "a certificate with this serial exists");
	return err;
}

int store_cert_get(struct store *s, const char *serial, struct store_cert *out)
{
	sqlite3_stmt *st;
	int err = STORE_OK, rc;

	memset(out, 0, sizeof(*out));
	if (!cert_serial_ok(serial))
		return invalid(s, "serial");
	st = prep(s, "SELECT " CERT_COLS " FROM certificates WHERE serial = ?1", &err);
	if (!st)
		return err;
	if ((err = bind_text(s, st, 1, serial, STORE_CERT_SERIAL_MAX, "serial"))) {
		sqlite3_finalize(st);
		return err;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (cert_from_row(st, out) < 0) {
			memset(out, 0, sizeof(*out));
			set_msg(s, "certificates row with an oversized field");
			err = STORE_CORRUPT;
		}
	} else if (rc == SQLITE_DONE) {
		set_msg(s, "no such certificate");
		err = STORE_NOTFOUND;
	} else {
		err = fail(s, rc);
	}
	sqlite3_finalize(st);
	return err;
}

/* Call fn for each row of sql (?1 = arg when not NULL). */
static int cert_rows(struct store *s, const char *sql, const char *arg,
		     int (*fn)(void *ctx, const struct store_cert *c), void *ctx)
{
	struct store_cert *c;
	sqlite3_stmt *st;
	int rc, ret = STORE_OK;

	st = prep(s, sql, &ret);
	if (!st)
		return ret;
	if (arg && (ret = bind_text(s, st, 1, arg, STORE_URI_MAX, "uri"))) {
		sqlite3_finalize(st);
		return ret;
	}
	c = sqlite3_malloc(sizeof(*c));
	if (!c) {
		sqlite3_finalize(st);
		set_msg(s, "out of memory");
		return STORE_UNAVAILABLE;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (cert_from_row(st, c) < 0) {
			set_msg(s, "certificates row with an oversized field");
			ret = STORE_CORRUPT;
			break;
		}
		ret = fn(ctx, c);
		if (ret != 0)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = fail(s, rc);
	sqlite3_free(c);
	sqlite3_finalize(st);
	return ret;
}

int store_cert_list(struct store *s, const char *uri,
		    int (*fn)(void *ctx, const struct store_cert *c), void *ctx)
{
	char norm[STORE_URI_MAX];
	int err;

	if (!uri)
		return cert_rows(
		    s, "SELECT " CERT_COLS " FROM certificates ORDER BY issued DESC, serial", NULL,
		    fn, ctx);
	if ((err = norm_arg(s, uri, norm)) != STORE_OK)
		return err;
	return cert_rows(s,
			 "SELECT " CERT_COLS " FROM certificates WHERE uri = ?1"
			 " ORDER BY issued DESC, serial",
			 norm, fn, ctx);
}

int store_cert_list_revoked(struct store *s, int (*fn)(void *ctx, const struct store_cert *c),
			    void *ctx)
{
	return cert_rows(s,
			 "SELECT " CERT_COLS " FROM certificates WHERE revoked_at <> 0"
			 " ORDER BY serial",
			 NULL, fn, ctx);
}

/* An UPDATE ... SET revoked_at = ?2, reason = ?3 WHERE <key> = ?1 AND
 * revoked_at = 0; *n gets the rows changed. */
static int cert_revoke(struct store *s, const char *sql, const char *key, size_t keycap,
		       int64_t when, const char *reason, int *n)
{
	sqlite3_stmt *st;
	int err = STORE_OK;

	if (n)
		*n = 0;
	st = prep(s, sql, &err);
	if (!st)
		return err;
	if ((err = bind_text(s, st, 1, key, keycap, "certificate key")) ||
	    (err = bind_int(s, st, 2, when > 0 ? when : (int64_t)time(NULL))) ||
	    (err = bind_text(s, st, 3, reason, STORE_CERT_REASON_MAX, "revocation reason"))) {
		sqlite3_finalize(st);
		return err;
	}
	err = step_done(s, st);
	if (err == STORE_OK && n)
		*n = sqlite3_changes(s->db);
	return err;
}

int store_cert_revoke(struct store *s, const char *serial, int64_t when, const char *reason, int *n)
{
	struct store_cert *c;
	int err, changed = 0;

	if (n)
		*n = 0;
	if (!cert_serial_ok(serial))
		return invalid(s, "serial");
	err = cert_revoke(s,
			  "UPDATE certificates SET revoked_at = ?2, reason = ?3"
			  " WHERE serial = ?1 AND revoked_at = 0",
			  serial, STORE_CERT_SERIAL_MAX, when, reason, &changed);
	if (n)
		*n = changed;
	if (err != STORE_OK || changed > 0)
		return err;
	/* nothing changed: an unknown serial, or revoked already */
	c = sqlite3_malloc(sizeof(*c));
	if (!c) {
		set_msg(s, "out of memory");
		return STORE_UNAVAILABLE;
	}
	err = store_cert_get(s, serial, c);
	sqlite3_free(c);
	return err;
}

int store_cert_revoke_uri(struct store *s, const char *uri, int64_t when, const char *reason,
			  int *n)
{
	char norm[STORE_URI_MAX];
	int err;

	if (n)
		*n = 0;
	if ((err = norm_arg(s, uri, norm)) != STORE_OK)
		return err;
	return cert_revoke(s,
			   "UPDATE certificates SET revoked_at = ?2, reason = ?3"
			   " WHERE uri = ?1 AND revoked_at = 0",
			   norm, STORE_URI_MAX, when, reason, n);
}
