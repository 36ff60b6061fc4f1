/*
 * Inside the SQLite store: what sqlite.c shares with the store files beside
 * it (sqlite_turn.c, sqlite_oauth.c, sqlite_pki.c), so that each feature's queries live in
 * a file of their own. Nothing outside src/store includes this.
 *
 * Each sibling file owns a range of extension statement slots: prepared once
 * per connection (SQLITE_PREPARE_PERSISTENT) by store_ext_stmt, finalized by
 * store_close.
 */
#ifndef RTC_STORE_SQLITE_INT_H
#define RTC_STORE_SQLITE_INT_H

#include "store/store.h"

#include <stdbool.h>

#include <sqlite3.h>

/* checkpoint.c: the WAL hook of every read-write connection, and the WAL
 * size (pages) at which it asks for a checkpoint (SQLite's default). */
#define STORE_WAL_CHECKPOINT_PAGES 1000
/* the WAL size (pages) at which a writer checkpoints itself all the same,
 * the checkpointer thread having fallen behind (checkpoint.c) */
#define STORE_WAL_WRITER_PAGES 3000
int store_wal_hook(void *arg, sqlite3 *db, const char *name, int pages);

enum store_ext_slot {
	STORE_EXT_TURN_FIRST = 0,  /* sqlite_turn.c: 0..7 */
	STORE_EXT_OAUTH_FIRST = 8, /* sqlite_oauth.c: 8..31 */
	STORE_EXT_PKI_FIRST = 32,  /* sqlite_pki.c: 32..35 */
	STORE_EXT_MAX = 36
};

/* The statement for slot, prepared from sql at its first use; NULL with *err
 * set (and the store's message) when it cannot be prepared. The same slot
 * must always be given the same sql. */
sqlite3_stmt *store_ext_stmt(struct store *s, int slot, const char *sql, int *err);

/* Reset a statement for its next call and drop its bindings (they may point
 * at keys). */
void store_stmt_done(sqlite3_stmt *st);

/* Step a statement that returns no row of interest and reset it: STORE_OK
 * or the store error. */
int store_stmt_exec(struct store *s, sqlite3_stmt *st);

/* Bind len bytes (a key, a hash; NULL is STORE_INVALID naming what). */
int store_bind_blob(struct store *s, sqlite3_stmt *st, int i, const void *p, size_t len,
		    const char *what);

/* Record the backend's message and map a SQLite result code to a STORE_*
 * error (STORE_UNAVAILABLE for anything that is not the caller's fault). */
int store_fail(struct store *s, int rc);

/* STORE_INVALID with "invalid <what>" as the store's message. */
int store_invalid(struct store *s, const char *what);

/* Bind a NUL-terminated string that must fit a field of cap bytes. */
int store_bind_text(struct store *s, sqlite3_stmt *st, int i, const char *v, size_t cap,
		    const char *what);
int store_bind_int(struct store *s, sqlite3_stmt *st, int i, int64_t v);

/* Copy a text column into a fixed field; -1 if it does not fit. */
int store_col_text(sqlite3_stmt *st, int i, char *dst, size_t cap);

/* A write transaction of its own (BEGIN IMMEDIATE), or a savepoint inside
 * the caller's; store_tx_end commits (err == STORE_OK) or rolls back, and
 * returns the final error. */
int store_tx_begin(struct store *s, bool *own);
int store_tx_end(struct store *s, bool own, int err);

#endif
