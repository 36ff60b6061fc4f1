/*
 * Background WAL checkpoints (store.h, store_checkpointer_start).
 *
 * SQLite's default: the connection whose commit takes the WAL to 1000 pages
 * or more copies them back into the database file itself, with an fsync of
 * the WAL and one of the database, before its commit returns. In the daemon
 * that connection is a worker's, and the worker's other requests wait for
 * the disk. Every read-write connection has store_wal_hook instead: while a
 * checkpointer runs, the hook only wakes it, and its thread, with a
 * connection of its own, runs PASSIVE checkpoints (they never wait for a
 * writer nor make one wait).
 *
 * The WAL starts over from its first page only when a write transaction
 * begins after a checkpoint that copied every frame. Writers that never
 * pause keep adding frames while the thread copies and syncs, so its
 * checkpoints may never be complete; at STORE_WAL_WRITER_PAGES the writing
 * connection therefore checkpoints itself, as by default, between two of
 * its own transactions (so that one is complete), and the WAL stays
 * bounded whatever the thread does. A RESTART checkpoint from the thread
 * is no answer: it holds the checkpoint lock while it waits for a moment
 * without a writer, and such writers leave none. Without a checkpointer
 * (rtcauthctl, tests) the hook does what SQLite's default does. Nothing
 * here logs (store rule); failures are counted.
 */
#include "store/sqlite_int.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thr;
	sqlite3 *db;
	bool running, wanted, stop;
	unsigned long runs, failures, by_writers;
} C = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static bool active; /* atomically read by the hook of every connection */

int store_wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	bool on = __atomic_load_n(&active, __ATOMIC_ACQUIRE);

	(void)arg;
	if (pages < STORE_WAL_CHECKPOINT_PAGES)
		return SQLITE_OK;
	if (on) {
		pthread_mutex_lock(&C.mu);
		if (pages < STORE_WAL_WRITER_PAGES) {
			C.wanted = true;
			pthread_cond_signal(&C.cv);
		} else {
			/* not woken this time: its next checkpoint would hold
			 * the checkpoint lock and make this one BUSY */
			C.by_writers++;
		}
		pthread_mutex_unlock(&C.mu);
		if (pages < STORE_WAL_WRITER_PAGES)
			return SQLITE_OK;
	}
	/* SQLite's own default; with a checkpointer, only when it has fallen
	 * this far behind (writers that never pause, a slow disk): the WAL
	 * stays bounded whatever happens to that thread */
	sqlite3_wal_checkpoint(db, name);
	return SQLITE_OK;
}

static void *checkpointer_main(void *arg)
{
	sigset_t all;

	(void)arg;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals are the main thread's */
	pthread_mutex_lock(&C.mu);
	for (;;) {
		int rc;

		while (!C.wanted && !C.stop)
			pthread_cond_wait(&C.cv, &C.mu);
		if (C.stop)
			break;
		C.wanted = false;
		pthread_mutex_unlock(&C.mu);
		rc = sqlite3_wal_checkpoint_v2(C.db, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		pthread_mutex_lock(&C.mu);
		C.runs++;
		if (rc != SQLITE_OK && rc != SQLITE_BUSY)
			C.failures++;
	}
	pthread_mutex_unlock(&C.mu);
	return NULL;
}

int store_checkpointer_start(const char *path, char *err, size_t errlen)
{
	int rc;

	pthread_mutex_lock(&C.mu);
	if (C.running) {
		pthread_mutex_unlock(&C.mu);
		snprintf(err, errlen, "the checkpointer is already running");
		return STORE_INVALID;
	}
	pthread_mutex_unlock(&C.mu);
	rc = sqlite3_open_v2(path, &C.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_busy_timeout(C.db, 5000);
	if (rc == SQLITE_OK) /* as every connection of the store (sqlite.c) */
		rc = sqlite3_exec(C.db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot open %s for checkpoints: %s", path,
			 C.db ? sqlite3_errmsg(C.db) : "out of memory");
		sqlite3_close_v2(C.db);
		C.db = NULL;
		return STORE_UNAVAILABLE;
	}
	C.wanted = C.stop = false;
	if (pthread_create(&C.thr, NULL, checkpointer_main, NULL) != 0) {
		snprintf(err, errlen, "cannot start the checkpoint thread");
		sqlite3_close_v2(C.db);
		C.db = NULL;
		return STORE_UNAVAILABLE;
	}
	pthread_mutex_lock(&C.mu);
	C.running = true;
	pthread_mutex_unlock(&C.mu);
	__atomic_store_n(&active, true, __ATOMIC_RELEASE);
	return STORE_OK;
}

void store_checkpointer_stop(void)
{
	pthread_mutex_lock(&C.mu);
	if (!C.running) {
		pthread_mutex_unlock(&C.mu);
		return;
	}
	/* hooks checkpoint inline again from here on */
	__atomic_store_n(&active, false, __ATOMIC_RELEASE);
	C.stop = true;
	pthread_cond_signal(&C.cv);
	pthread_mutex_unlock(&C.mu);
	pthread_join(C.thr, NULL);
	sqlite3_close_v2(C.db);
	C.db = NULL;
	pthread_mutex_lock(&C.mu);
	C.running = false;
	pthread_mutex_unlock(&C.mu);
}

void store_checkpointer_stats(unsigned long *runs, unsigned long *failures,
			      unsigned long *by_writers)
{
	pthread_mutex_lock(&C.mu);
	if (by_writers)
		*by_writers = C.by_writers;
	if (runs)
		*runs = C.runs;
	if (failures)
		*failures = C.failures;
	pthread_mutex_unlock(&C.mu);
}
