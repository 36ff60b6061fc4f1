/*
 * Background WAL checkpoints (store.h, store_checkpointer_start): with a
 * checkpointer running, its thread runs the checkpoints and every row stays
 * readable; without one, the writing connection checkpoints by itself as
 * SQLite's default does; with one that falls behind, the writer does it at
 * 3000 pages and the WAL stays bounded. Start, stop and bad paths.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store.h"
#include "store/store_oauth.h"

#define ROWS 10000
/* 10000 single-row commits write at least 10000 WAL frames (~41 MB) if
 * nothing checkpoints; a writer that checkpoints itself at 1000 pages (the
 * default) or at 3000 (the fallback while a checkpointer runs) keeps the
 * WAL under 3000 pages and one commit (12.4 MB) */
#define WAL_BOUND (16L * 1024 * 1024)

struct fx {
	char dir[64];
	char path[128];
	struct store *s;
};

static void rm_db(const char *path)
{
	static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
	char p[200];

	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", path, sfx[i]);
		unlink(p);
	}
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/rtc-ckpt-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/store.db", f->dir);
	assert_int_equal(store_open(f->path, STORE_CREATE, 1000, &f->s, err, sizeof(err)),
			 STORE_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	store_checkpointer_stop();
	store_close(f->s);
	rm_db(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void key_of(int i, uint8_t key[STORE_OAUTH_KEY_LEN])
{
	uint32_t x = (uint32_t)i * 2654435761u;

	memset(key, 0, STORE_OAUTH_KEY_LEN);
	key[0] = 0x7f; /* an exp far ahead: purges leave these rows */
	for (int b = 8; b < STORE_OAUTH_KEY_LEN; b++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		key[b] = (uint8_t)x;
	}
	memcpy(key + 8, &i, sizeof(i)); /* unique */
}

/* ROWS commits of one row each, then every row is there (a second add of
 * the same key is a conflict), and the size of the WAL file. */
static long write_rows(struct fx *f)
{
	char wal[160];
	struct stat st;
	uint8_t key[STORE_OAUTH_KEY_LEN];

	for (int i = 0; i < ROWS; i++) {
		key_of(i, key);
		assert_int_equal(store_oauth_jti_add(f->s, key, INT64_MAX / 2, 1), STORE_OK);
	}
	for (int i = 0; i < ROWS; i += 97) {
		key_of(i, key);
		assert_int_equal(store_oauth_jti_add(f->s, key, INT64_MAX / 2, 1), STORE_CONFLICT);
	}
	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	assert_int_equal(stat(wal, &st), 0);
	return (long)st.st_size;
}

static void test_store_without_checkpointer_the_writer_checkpoints(void **state)
{
	struct fx *f = *state;
	unsigned long runs = 1, failures = 1;
	long wal = write_rows(f);

	store_checkpointer_stats(&runs, &failures, NULL);
	assert_int_equal(runs, 0);
	assert_int_equal(failures, 0);
	assert_true(wal > 0);
	assert_true(wal < WAL_BOUND);
}

static void test_store_checkpointer_runs_the_checkpoints(void **state)
{
	struct fx *f = *state;
	unsigned long runs = 0, failures = 1;
	char err[256];
	long wal;

	assert_int_equal(store_checkpointer_start(f->path, err, sizeof(err)), STORE_OK);
	wal = write_rows(f);
	/* the thread runs when woken: give it a moment */
	for (int i = 0; i < 500 && runs == 0; i++) {
		struct timespec ts = {0, 10 * 1000 * 1000};

		store_checkpointer_stats(&runs, &failures, NULL);
		if (runs == 0)
			nanosleep(&ts, NULL);
	}
	assert_true(runs >= 1);
	assert_int_equal(failures, 0);
	/* how far the WAL grew here depends on how long the thread's
	 * checkpoints hold the checkpoint lock (the writer's fallback waits for
	 * it): that it does not grow with the commits is the next test's */
	assert_true(wal > 0);
	/* a second one is refused; stop, then stop again, is harmless */
	assert_int_equal(store_checkpointer_start(f->path, err, sizeof(err)), STORE_INVALID);
	assert_non_null(strstr(err, "already running"));
	store_checkpointer_stop();
	store_checkpointer_stop();
	/* after stop, writes still work (the writer checkpoints again) */
	{
		uint8_t key[STORE_OAUTH_KEY_LEN];

		key_of(ROWS + 1, key);
		assert_int_equal(store_oauth_jti_add(f->s, key, INT64_MAX / 2, 1), STORE_OK);
	}
}

/*
 * The writer's fallback: a checkpointer runs (so commits under 3000 pages
 * only wake it) but works on another database, as if it had fallen behind
 * for good. The writer checkpoints itself at 3000 pages, and the WAL stays
 * under WAL_BOUND over 10000 commits (it would be ~41 MB).
 */
static void test_store_writer_checkpoints_itself_when_the_thread_lags(void **state)
{
	struct fx *f = *state;
	struct store *other;
	char err[256], path[200];
	unsigned long by_writers = 0, failures = 1;
	long wal;

	snprintf(path, sizeof(path), "%s/other.db", f->dir);
	assert_int_equal(store_open(path, STORE_CREATE, 1000, &other, err, sizeof(err)), STORE_OK);
	assert_int_equal(store_checkpointer_start(path, err, sizeof(err)), STORE_OK);
	wal = write_rows(f);
	store_checkpointer_stats(NULL, &failures, &by_writers);
	assert_true(by_writers >= 1);
	assert_int_equal(failures, 0);
	assert_true(wal > 0);
	assert_true(wal < WAL_BOUND);
	store_checkpointer_stop();
	store_close(other);
	unlink(path);
	snprintf(path, sizeof(path), "%s/other.db-wal", f->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/other.db-shm", f->dir);
	unlink(path);
}

static void test_store_checkpointer_refuses_a_missing_database(void **state)
{
	struct fx *f = *state;
	char err[256], path[200];

	snprintf(path, sizeof(path), "%s/no-such-dir/store.db", f->dir);
	assert_int_equal(store_checkpointer_start(path, err, sizeof(err)), STORE_UNAVAILABLE);
	assert_non_null(strstr(err, path));
	/* and it can start afterwards on the right one */
	assert_int_equal(store_checkpointer_start(f->path, err, sizeof(err)), STORE_OK);
	store_checkpointer_stop();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	    T(test_store_without_checkpointer_the_writer_checkpoints),
	    T(test_store_checkpointer_runs_the_checkpoints),
	    T(test_store_writer_checkpoints_itself_when_the_thread_lags),
	    T(test_store_checkpointer_refuses_a_missing_database),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
