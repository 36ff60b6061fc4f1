/*
 * Unit tests for the write-behind queue (src/store/wb.h) over a temporary
 * SQLite store: puts, deletes and audit rows appear after wb_sync, wb_stop
 * drains the queue, a database locked by another connection delays writes
 * but loses none, failures and counts are reported. The store is read back
 * through a second connection (store.h), the lock is taken with raw SQLite.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <sqlite3.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "store/wb.h"

struct fx {
	char dir[64];
	char path[96];
	uint64_t w0, f0; /* counters at the start of the test (they are process-wide) */
};

static void ms_sleep(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int fx_setup_flush(void **state, int flush_ms)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];
	uint64_t q;

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/rtcauth-wb.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/rtcauth.db", f->dir);
	if (wb_start(f->path, flush_ms, err, sizeof(err)) != 0) {
		fprintf(stderr, "wb_start: %s\n", err);
		return -1;
	}
	wb_counts(&f->w0, &f->f0, &q);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return fx_setup_flush(state, 20);
}

static int setup_slow_flush(void **state)
{
	return fx_setup_flush(state, 60000);
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char p[128];

	wb_stop();
	unlink(f->path);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", f->path);
	unlink(p);
	rmdir(f->dir);
	free(f);
	return 0;
}

static struct store *open_reader(const struct fx *f)
{
	struct store *s = NULL;
	char err[256];

	assert_int_equal(store_open(f->path, 0, 2000, &s, err, sizeof(err)), STORE_OK);
	return s;
}

static void make_reg(struct store_reg *r, const char *aor, const char *key, int cseq)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->aor, sizeof(r->aor), "%s", aor);
	snprintf(r->binding_key, sizeof(r->binding_key), "%s", key);
	snprintf(r->contact, sizeof(r->contact), "<%s>;expires=3600", key);
	r->reg_id = -1;
	r->expires = (int64_t)time(NULL) + 3600;
	snprintf(r->source, sizeof(r->source), "127.0.0.1:5060");
	r->transport = 0;
	snprintf(r->call_id, sizeof(r->call_id), "cid-%d@host", cseq);
	r->cseq = (uint32_t)cseq;
	snprintf(r->user_agent, sizeof(r->user_agent), "wb-test/1");
}

struct reg_list {
	int n;
	char last_key[STORE_CONTACT_MAX];
	uint32_t last_cseq;
	char last_contact[STORE_CONTACT_MAX];
	char last_ua[STORE_NAME_MAX];
};

static int list_cb(void *vctx, const struct store_reg *r)
{
	struct reg_list *l = vctx;
	l->n++;
	snprintf(l->last_key, sizeof(l->last_key), "%s", r->binding_key);
	snprintf(l->last_contact, sizeof(l->last_contact), "%s", r->contact);
	snprintf(l->last_ua, sizeof(l->last_ua), "%s", r->user_agent);
	l->last_cseq = r->cseq;
	return 0;
}

static int count_regs(const struct fx *f, const char *aor)
{
	struct store *s = open_reader(f);
	struct reg_list l = {0};

	assert_int_equal(store_reg_list(s, aor, list_cb, &l), STORE_OK);
	store_close(s);
	return l.n;
}

static void deltas(const struct fx *f, uint64_t *w, uint64_t *fl, uint64_t *q)
{
	wb_counts(w, fl, q);
	*w -= f->w0;
	*fl -= f->f0;
}

/* ---- puts, deletes, audits ---- */

static void test_wb_puts_appear_in_the_store_after_sync(void **state)
{
	struct fx *f = *state;
	struct store_reg r;
	struct reg_list l = {0};
	struct store *s;
	uint64_t w, fl, q;

	make_reg(&r, "sip:alice@example.com", "sip:alice@192.0.2.1", 7);
	wb_reg_put(&r);
	make_reg(&r, "sip:alice@example.com", "sip:alice@192.0.2.2", 8);
	wb_reg_put(&r);
	make_reg(&r, "sip:bob@example.com", "sip:bob@192.0.2.3", 9);
	wb_reg_put(&r);
	wb_sync();
	deltas(f, &w, &fl, &q);
	assert_int_equal(w, 3);
	assert_int_equal(fl, 0);
	assert_int_equal(q, 0);
	s = open_reader(f);
	assert_int_equal(store_reg_list(s, "sip:alice@example.com", list_cb, &l), STORE_OK);
	assert_int_equal(l.n, 2);
	memset(&l, 0, sizeof(l));
	assert_int_equal(store_reg_list(s, "sip:bob@example.com", list_cb, &l), STORE_OK);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.last_key, "sip:bob@192.0.2.3");
	assert_string_equal(l.last_contact, "<sip:bob@192.0.2.3>;expires=3600");
	assert_string_equal(l.last_ua, "wb-test/1");
	assert_int_equal(l.last_cseq, 9);
	store_close(s);
}

static void test_wb_put_with_same_key_replaces_in_queue_order(void **state)
{
	struct fx *f = *state;
	struct store_reg r;
	struct reg_list l = {0};
	struct store *s;

	for (int i = 1; i <= 50; i++) {
		make_reg(&r, "sip:alice@example.com", "sip:alice@192.0.2.1", i);
		wb_reg_put(&r);
	}
	wb_sync();
	s = open_reader(f);
	assert_int_equal(store_reg_list(s, "sip:alice@example.com", list_cb, &l), STORE_OK);
	store_close(s);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.last_cseq, 50); /* the last one queued wins */
}

static void test_wb_deletes_remove_bindings_and_missing_ones_are_not_failures(void **state)
{
	struct fx *f = *state;
	struct store_reg r;
	uint64_t w, fl, q;

	make_reg(&r, "sip:alice@example.com", "k1", 1);
	wb_reg_put(&r);
	make_reg(&r, "sip:alice@example.com", "k2", 2);
	wb_reg_put(&r);
	wb_sync();
	assert_int_equal(count_regs(f, "sip:alice@example.com"), 2);
	wb_reg_del("sip:alice@example.com", "k1");
	wb_reg_del("sip:alice@example.com", "no-such-key");
	wb_reg_del("sip:nobody@example.com", "k2");
	wb_sync();
	assert_int_equal(count_regs(f, "sip:alice@example.com"), 1);
	deltas(f, &w, &fl, &q);
	assert_int_equal(w, 5);
	assert_int_equal(fl, 0);
	/* a put then a delete in the same batch: the delete wins */
	make_reg(&r, "sip:carol@example.com", "c1", 1);
	wb_reg_put(&r);
	wb_reg_del("sip:carol@example.com", "c1");
	wb_sync();
	assert_int_equal(count_regs(f, "sip:carol@example.com"), 0);
}

struct audit_list {
	int n;
	struct store_audit a[8];
};

static int audit_cb(void *vctx, const struct store_audit *a)
{
	struct audit_list *l = vctx;
	if (l->n < 8)
		l->a[l->n] = *a;
	l->n++;
	return 0;
}

static void test_wb_audit_rows_appear_after_sync(void **state)
{
	struct fx *f = *state;
	struct audit_list l = {0};
	struct store *s;
	time_t t0 = time(NULL);

	wb_audit("rtcauthctl", "reg.del", "sip:alice@example.com", "local", "all");
	wb_audit("sip", "auth.fail", NULL, NULL, NULL);
	wb_sync();
	s = open_reader(f);
	assert_int_equal(store_audit_list(s, 10, audit_cb, &l), STORE_OK);
	store_close(s);
	assert_int_equal(l.n, 2);
	/* most recent first */
	assert_string_equal(l.a[0].actor, "sip");
	assert_string_equal(l.a[0].action, "auth.fail");
	assert_string_equal(l.a[0].target, "");
	assert_string_equal(l.a[1].actor, "rtcauthctl");
	assert_string_equal(l.a[1].action, "reg.del");
	assert_string_equal(l.a[1].target, "sip:alice@example.com");
	assert_string_equal(l.a[1].source, "local");
	assert_string_equal(l.a[1].detail, "all");
	assert_true(l.a[1].ts >= (int64_t)t0 && l.a[1].ts <= (int64_t)time(NULL));
}

static void test_wb_invalid_ops_count_as_failed_without_losing_the_batch(void **state)
{
	struct fx *f = *state;
	struct store_reg r;
	uint64_t w, fl, q;

	make_reg(&r, "sip:alice@example.com", "k1", 1);
	wb_reg_put(&r);
	make_reg(&r, "", "k-without-aor", 1); /* STORE_INVALID */
	wb_reg_put(&r);
	wb_audit("", "no.actor", NULL, NULL, NULL); /* STORE_INVALID */
	make_reg(&r, "sip:alice@example.com", "k2", 2);
	wb_reg_put(&r);
	wb_sync();
	deltas(f, &w, &fl, &q);
	assert_int_equal(w, 2);
	assert_int_equal(fl, 2);
	assert_int_equal(q, 0);
	assert_int_equal(count_regs(f, "sip:alice@example.com"), 2);
}

static void test_wb_sync_with_nothing_queued_returns_at_once(void **state)
{
	struct fx *f = *state;
	uint64_t w, fl, q;
	time_t t0 = time(NULL);

	wb_sync();
	wb_sync();
	assert_true(time(NULL) - t0 <= 1);
	deltas(f, &w, &fl, &q);
	assert_int_equal(w, 0);
	assert_int_equal(fl, 0);
	assert_int_equal(q, 0);
}

/* ---- stop drains ---- */

static void test_wb_stop_drains_everything_queued(void **state)
{
	struct fx *f = *state;
	struct store_reg r;
	char key[64];
	uint64_t w, fl, q;

	/* a 60 s flush interval: nothing is written before wb_stop */
	for (int i = 0; i < 3000; i++) {
		snprintf(key, sizeof(key), "sip:u@192.0.2.%d:%d", i % 250, 5060 + i);
		make_reg(&r, "sip:many@example.com", key, i);
		wb_reg_put(&r);
	}
	wb_audit("rtcauthctl", "reg.del", "sip:x@example.com", "local", "");
	wb_reg_del("sip:many@example.com", "sip:u@192.0.2.0:5060");
	deltas(f, &w, &fl, &q);
	assert_int_equal(w, 0);
	assert_int_equal(q, 3002);
	wb_stop();
	deltas(f, &w, &fl, &q);
	assert_int_equal(w, 3002);
	assert_int_equal(fl, 0);
	assert_int_equal(q, 0);
	assert_int_equal(count_regs(f, "sip:many@example.com"), 2999);
	/* after stop, new ops are refused (dropped with a log line), not queued */
	make_reg(&r, "sip:late@example.com", "k", 1);
	wb_reg_put(&r);
	deltas(f, &w, &fl, &q);
	assert_int_equal(q, 0);
	assert_int_equal(w, 3002);
	wb_sync(); /* must not hang when stopped */
	wb_stop(); /* twice is harmless */
}

/* ---- a locked database ---- */

struct locker {
	const char *path;
	long hold_ms;
	int rc;
	int started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static void *lock_thread(void *arg)
{
	struct locker *lk = arg;
	sqlite3 *db = NULL;

	lk->rc = sqlite3_open(lk->path, &db);
	if (lk->rc == SQLITE_OK)
		lk->rc = sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL);
	pthread_mutex_lock(&lk->mu);
	lk->started = 1;
	pthread_cond_signal(&lk->cv);
	pthread_mutex_unlock(&lk->mu);
	if (lk->rc == SQLITE_OK) {
		ms_sleep(lk->hold_ms);
		lk->rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	}
	sqlite3_close(db);
	return NULL;
}

static void start_locker(struct locker *lk, pthread_t *t, const char *path, long hold_ms)
{
	memset(lk, 0, sizeof(*lk));
	lk->path = path;
	lk->hold_ms = hold_ms;
	pthread_mutex_init(&lk->mu, NULL);
	pthread_cond_init(&lk->cv, NULL);
	assert_int_equal(pthread_create(t, NULL, lock_thread, lk), 0);
	pthread_mutex_lock(&lk->mu);
	while (!lk->started)
		pthread_cond_wait(&lk->cv, &lk->mu);
	pthread_mutex_unlock(&lk->mu);
	assert_int_equal(lk->rc, SQLITE_OK);
}

static void stop_locker(struct locker *lk, pthread_t t)
{
	pthread_join(t, NULL);
	assert_int_equal(lk->rc, SQLITE_OK);
	pthread_mutex_destroy(&lk->mu);
	pthread_cond_destroy(&lk->cv);
}

static void queue_regs(const char *aor, int from, int to)
{
	struct store_reg r;
	char key[64];

	for (int i = from; i < to; i++) {
		snprintf(key, sizeof(key), "sip:dev%d@192.0.2.1", i);
		make_reg(&r, aor, key, i);
		wb_reg_put(&r);
	}
}

static void *sync_thread(void *arg)
{
	(void)arg;
	wb_sync();
	return NULL;
}

static void test_wb_locked_database_delays_but_loses_nothing(void **state)
{
	struct fx *f = *state;
	struct locker lk;
	pthread_t t, syncer;
	uint64_t w, fl, q;
	struct timespec a, b;

	queue_regs("sip:locked@example.com", 0, 10);
	wb_sync();
	start_locker(&lk, &t, f->path, 1000);
	clock_gettime(CLOCK_MONOTONIC, &a);
	queue_regs("sip:locked@example.com", 10, 200);
	wb_audit("sip", "auth.fail", "sip:locked@example.com", "127.0.0.1", "test");
	/* a waiting wb_sync must not hurry the writer past the lock */
	assert_int_equal(pthread_create(&syncer, NULL, sync_thread, NULL), 0);
	ms_sleep(400);
	deltas(f, &w, &fl, &q);
	assert_int_equal(w, 10); /* the writer is waiting for the lock */
	pthread_join(syncer, NULL);
	wb_sync();
	clock_gettime(CLOCK_MONOTONIC, &b);
	stop_locker(&lk, t);
	/* the writer waited for the lock to go (~1 s), then wrote everything */
	assert_true((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 >= 900);
	deltas(f, &w, &fl, &q);
	assert_int_equal(w, 201);
	assert_int_equal(fl, 0);
	assert_int_equal(q, 0);
	assert_int_equal(count_regs(f, "sip:locked@example.com"), 200);
}

/* fd 2 into a temporary file, to see the writer's log lines */
static FILE *stderr_to_file(int *saved)
{
	FILE *tf = tmpfile();

	assert_non_null(tf);
	fflush(stderr);
	*saved = dup(STDERR_FILENO);
	assert_true(*saved >= 0);
	assert_true(dup2(fileno(tf), STDERR_FILENO) >= 0);
	return tf;
}

static char *stderr_restore(FILE *tf, int saved)
{
	long n;
	char *text;

	fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	fseek(tf, 0, SEEK_END);
	n = ftell(tf);
	rewind(tf);
	text = calloc(1, (size_t)n + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)n, tf), (size_t)n);
	fclose(tf);
	return text;
}

/* Longer than the writer's 5 s busy timeout: the batch is kept and retried. */
static void test_wb_store_locked_past_busy_timeout_retries_and_loses_nothing(void **state)
{
	struct fx *f = *state;
	struct locker lk;
	pthread_t t, syncer;
	uint64_t w, fl, q;
	FILE *tf;
	int saved;
	char *log;

	queue_regs("sip:retry@example.com", 0, 1);
	wb_sync();
	tf = stderr_to_file(&saved);
	start_locker(&lk, &t, f->path, 6500);
	queue_regs("sip:retry@example.com", 1, 100);
	assert_int_equal(pthread_create(&syncer, NULL, sync_thread, NULL), 0);
	ms_sleep(5800); /* past the busy timeout: the first attempt has failed */
	queue_regs("sip:retry@example.com", 100, 150);
	wb_reg_del("sip:retry@example.com", "sip:dev0@192.0.2.1");
	pthread_join(syncer, NULL);
	wb_sync();
	stop_locker(&lk, t);
	log = stderr_restore(tf, saved);
	assert_non_null(strstr(log, "level=warn event=wb.retry ops=99 "));
	free(log);
	deltas(f, &w, &fl, &q);
	assert_int_equal(fl, 0);
	assert_int_equal(q, 0);
	assert_int_equal(w, 1 + 149 + 1);
	assert_int_equal(count_regs(f, "sip:retry@example.com"), 149);
}

/*
 * Regression (fixed in b819055; was wb.c push()): producers never signal the writer's
 * condition variable, and the idle writer sleeps in pthread_cond_wait
 * (wb.c writer(), `while (!head && !stopping)`) without a timeout. So once
 * the queue has been empty, queued operations are only written when someone
 * calls wb_sync() or wb_stop(); the daemon calls neither until SIGTERM.
 * Registrations and audit rows stay in memory (up to WB_MAX_QUEUE ops)
 * and a crash loses them all. Queue one put with a 20 ms
 * flush interval after the writer went idle (after a wb_sync) and wait
 * 1 s: it is still not written (written 1, expected 2).
 */
static void test_wb_writer_flushes_within_the_interval_without_sync(void **state)
{
	struct fx *f = *state;
	uint64_t w, fl, q;

	queue_regs("sip:idle@example.com", 0, 1);
	wb_sync();
	ms_sleep(50); /* the writer is idle now */
	queue_regs("sip:idle@example.com", 1, 2);
	for (int i = 0; i < 100; i++) {
		deltas(f, &w, &fl, &q);
		if (w == 2)
			break;
		ms_sleep(10);
	}
	assert_int_equal(w, 2);
	assert_int_equal(count_regs(f, "sip:idle@example.com"), 2);
}

/* ---- concurrent producers ---- */

#define P_THREADS 4
#define P_OPS	  1500

static void *producer(void *arg)
{
	char aor[64];

	snprintf(aor, sizeof(aor), "sip:producer%d@example.com", (int)(intptr_t)arg);
	queue_regs(aor, 0, P_OPS);
	return NULL;
}

static void test_wb_concurrent_producers_lose_nothing(void **state)
{
	struct fx *f = *state;
	pthread_t t[P_THREADS];
	uint64_t w, fl, q;
	char aor[64];

	for (int i = 0; i < P_THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, producer, (void *)(intptr_t)i), 0);
	for (int i = 0; i < P_THREADS; i++)
		pthread_join(t[i], NULL);
	wb_sync();
	deltas(f, &w, &fl, &q);
	assert_int_equal(w, P_THREADS * P_OPS);
	assert_int_equal(fl, 0);
	for (int i = 0; i < P_THREADS; i++) {
		snprintf(aor, sizeof(aor), "sip:producer%d@example.com", i);
		assert_int_equal(count_regs(f, aor), P_OPS);
	}
}

static void test_wb_start_fails_on_an_unusable_path(void **state)
{
	char err[256] = "";

	(void)state;
	assert_int_equal(wb_start("/nonexistent-dir/rtcauth.db", 10, err, sizeof(err)), -1);
	assert_true(strlen(err) > 0);
	/* not running: queued ops are dropped, not kept */
	wb_audit("sip", "x", NULL, NULL, NULL);
	wb_sync();
	wb_stop();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_wb_puts_appear_in_the_store_after_sync, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_wb_put_with_same_key_replaces_in_queue_order,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_wb_deletes_remove_bindings_and_missing_ones_are_not_failures, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wb_audit_rows_appear_after_sync, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_wb_invalid_ops_count_as_failed_without_losing_the_batch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wb_sync_with_nothing_queued_returns_at_once, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_wb_stop_drains_everything_queued, setup_slow_flush,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_wb_locked_database_delays_but_loses_nothing, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(
		test_wb_store_locked_past_busy_timeout_retries_and_loses_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wb_writer_flushes_within_the_interval_without_sync,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wb_concurrent_producers_lose_nothing, setup,
					    teardown),
	    cmocka_unit_test(test_wb_start_fails_on_an_unusable_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
