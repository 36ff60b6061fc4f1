/*
 * Stateless Digest nonces (MAC over timestamp and realm) and the nc replay
 * table: freshness, authenticity, replay windows, eviction horizon, threads.
 * A fresh pool secret is bootstrapped in a mkdtemp() directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth/nonce.h"
#include "vault/vault.h"

#define REALM	 STR_LIT("example.org")
#define LIFETIME 300

static char state_dir[] = "/tmp/rtcauth-nonce-XXXXXX";

static int setup(void **state)
{
	char err[256];

	(void)state;
	if (!mkdtemp(state_dir))
		return -1;
	if (vault_bootstrap_secret(state_dir, err, sizeof(err)) < 0 ||
	    vault_init(state_dir, err, sizeof(err)) < 0) {
		fprintf(stderr, "vault: %s\n", err);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	char path[512];

	(void)state;
	vault_shutdown();
	snprintf(path, sizeof(path), "%s/pool.secret", state_dir);
	unlink(path);
	rmdir(state_dir);
	return 0;
}

static void make(int64_t ts, char *out)
{
	assert_int_equal(nonce_make(REALM, ts, out, NONCE_LEN + 1), 0);
	assert_int_equal(strlen(out), NONCE_LEN);
}

static void test_nonce_rebuilt_from_its_stamp_is_the_same_nonce(void **state)
{
	struct nonce_table *t = nonce_table_new(1024, LIFETIME);
	char n[NONCE_LEN + 1], again[NONCE_LEN + 1], other[NONCE_LEN + 1];
	uint64_t stamp = 0;

	(void)state;
	stamp = nonce_new_stamp(1700000000);
	assert_true(stamp >> 32 == 1700000000);
	assert_int_equal(nonce_from_stamp(REALM, stamp, n, sizeof(n)), 0);
	assert_true(nonce_new_stamp(1700000000) != stamp); /* the serial moves on */
	assert_true(nonce_new_stamp(-1) == 0);
	assert_int_equal(nonce_from_stamp(REALM, stamp, again, sizeof(again)), 0);
	assert_string_equal(n, again);
	assert_int_equal(nonce_check(t, str_cstr(again), REALM, 1700000000), NONCE_OK);
	/* another realm's MAC: not a nonce of ours */
	assert_int_equal(nonce_from_stamp(STR_LIT("other.test"), stamp, other, sizeof(other)), 0);
	assert_string_not_equal(n, other);
	assert_int_equal(nonce_check(t, str_cstr(other), REALM, 1700000000), NONCE_INVALID);
	nonce_table_free(t);
}

static void test_nonce_fresh_is_ok_and_base64url(void **state)
{
	struct nonce_table *t = nonce_table_new(1024, LIFETIME);
	char n[NONCE_LEN + 1], n2[NONCE_LEN + 1];

	(void)state;
	make(1700000000, n);
	for (int i = 0; i < NONCE_LEN; i++)
		assert_non_null(strchr(
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", n[i]));
	assert_int_equal(nonce_check(t, str_cstr(n), REALM, 1700000000), NONCE_OK);
	assert_int_equal(nonce_check(t, str_cstr(n), REALM, 1700000000 + LIFETIME), NONCE_OK);
	/* a different second gives a different nonce */
	make(1700000001, n2);
	assert_string_not_equal(n, n2);
	assert_int_equal(nonce_table_size(t), 0); /* checking keeps no state */
	nonce_table_free(t);
}

static void test_nonce_same_second_nonces_differ_with_own_nc_space(void **state)
{
	struct nonce_table *t = nonce_table_new(1024, LIFETIME);
	char a[NONCE_LEN + 1], b[NONCE_LEN + 1];

	(void)state;
	make(5000, a);
	make(5000, b);
	assert_string_not_equal(a, b);
	/* two clients challenged in the same second both start at nc=1 */
	assert_int_equal(nonce_use(t, str_cstr(a), REALM, 1, 5000), NONCE_OK);
	assert_int_equal(nonce_use(t, str_cstr(b), REALM, 1, 5000), NONCE_OK);
	assert_int_equal(nonce_table_size(t), 2);
	/* times outside the 32-bit stamp are refused */
	assert_int_equal(nonce_make(REALM, -1, a, sizeof(a)), -1);
	assert_int_equal(nonce_make(REALM, (int64_t)UINT32_MAX + 1, a, sizeof(a)), -1);
	nonce_table_free(t);
}

static void test_nonce_expired_is_stale(void **state)
{
	struct nonce_table *t = nonce_table_new(1024, LIFETIME);
	char n[NONCE_LEN + 1];

	(void)state;
	make(1000, n);
	assert_int_equal(nonce_check(t, str_cstr(n), REALM, 1000 + LIFETIME + 1), NONCE_STALE);
	assert_int_equal(nonce_use(t, str_cstr(n), REALM, 1, 1000 + LIFETIME + 1), NONCE_STALE);
	assert_int_equal(nonce_table_size(t), 0);
	/* far in the future (beyond the pool clock skew) is stale too */
	assert_int_equal(nonce_check(t, str_cstr(n), REALM, 1000 - 31), NONCE_STALE);
	assert_int_equal(nonce_check(t, str_cstr(n), REALM, 1000 - 30), NONCE_OK);
	/* extreme clocks do not overflow */
	assert_int_equal(nonce_check(t, str_cstr(n), REALM, INT64_MAX), NONCE_STALE);
	assert_int_equal(nonce_check(t, str_cstr(n), REALM, INT64_MIN), NONCE_STALE);
	nonce_table_free(t);
}

static void test_nonce_tampered_byte_is_invalid(void **state)
{
	struct nonce_table *t = nonce_table_new(1024, LIFETIME);
	char n[NONCE_LEN + 1], bad[NONCE_LEN + 1];

	(void)state;
	make(5000, n);
	for (int i = 0; i < NONCE_LEN; i++) {
		memcpy(bad, n, sizeof(bad));
		bad[i] = bad[i] == 'A' ? 'B' : 'A';
		assert_int_equal(nonce_check(t, str_cstr(bad), REALM, 5000), NONCE_INVALID);
		assert_int_equal(nonce_use(t, str_cstr(bad), REALM, 1, 5000), NONCE_INVALID);
	}
	assert_int_equal(nonce_table_size(t), 0);
	nonce_table_free(t);
}

static void test_nonce_other_realm_is_invalid(void **state)
{
	struct nonce_table *t = nonce_table_new(1024, LIFETIME);
	char n[NONCE_LEN + 1];

	(void)state;
	make(5000, n);
	assert_int_equal(nonce_check(t, str_cstr(n), STR_LIT("example.com"), 5000), NONCE_INVALID);
	assert_int_equal(nonce_check(t, str_cstr(n), STR_LIT("EXAMPLE.ORG"), 5000), NONCE_INVALID);
	assert_int_equal(nonce_check(t, str_cstr(n), STR_NULL, 5000), NONCE_INVALID);
	nonce_table_free(t);
}

static void test_nonce_bad_encoding_or_length_is_invalid(void **state)
{
	struct nonce_table *t = nonce_table_new(1024, LIFETIME);
	char n[NONCE_LEN + 1], buf[NONCE_LEN + 8];
	char *big;

	(void)state;
	make(5000, n);
	/* one character short, one too many, padding, standard alphabet */
	assert_int_equal(nonce_check(t, str_make(n, NONCE_LEN - 1), REALM, 5000), NONCE_INVALID);
	snprintf(buf, sizeof(buf), "%sA", n);
	assert_int_equal(nonce_check(t, str_cstr(buf), REALM, 5000), NONCE_INVALID);
	snprintf(buf, sizeof(buf), "%.*s==", NONCE_LEN - 2, n);
	assert_int_equal(nonce_check(t, str_cstr(buf), REALM, 5000), NONCE_INVALID);
	memcpy(buf, n, sizeof(n));
	buf[3] = '+';
	assert_int_equal(nonce_check(t, str_cstr(buf), REALM, 5000), NONCE_INVALID);
	buf[3] = '/';
	assert_int_equal(nonce_check(t, str_cstr(buf), REALM, 5000), NONCE_INVALID);
	buf[3] = ' ';
	assert_int_equal(nonce_check(t, str_cstr(buf), REALM, 5000), NONCE_INVALID);
	buf[3] = '\0';
	assert_int_equal(nonce_check(t, str_make(buf, NONCE_LEN), REALM, 5000), NONCE_INVALID);
	assert_int_equal(nonce_check(t, STR_NULL, REALM, 5000), NONCE_INVALID);
	assert_int_equal(nonce_check(t, str_make(NULL, NONCE_LEN), REALM, 5000), NONCE_INVALID);
	assert_int_equal(nonce_check(NULL, str_cstr(n), REALM, 5000), NONCE_INVALID);
	big = malloc(10 * 1024);
	assert_non_null(big);
	memset(big, 'A', 10 * 1024);
	assert_int_equal(nonce_check(t, str_make(big, 10 * 1024), REALM, 5000), NONCE_INVALID);
	assert_int_equal(nonce_use(t, str_make(big, 10 * 1024), REALM, 1, 5000), NONCE_INVALID);
	free(big);
	/* a foreign but well-formed nonce (RFC 7616 example is 44 chars) */
	assert_int_equal(
	    nonce_check(t, STR_LIT("7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"), REALM, 5000),
	    NONCE_INVALID);
	nonce_table_free(t);
}

static void test_nonce_make_refuses_small_buffer_and_long_realm(void **state)
{
	char n[NONCE_LEN + 1], *realm;

	(void)state;
	assert_int_equal(nonce_make(REALM, 1, n, NONCE_LEN), -1);
	assert_int_equal(nonce_make(REALM, 1, NULL, 64), -1);
	realm = malloc(600);
	assert_non_null(realm);
	memset(realm, 'r', 600);
	assert_int_equal(nonce_make(str_make(realm, 600), 1, n, sizeof(n)), -1);
	assert_int_equal(nonce_make(str_make(realm, 512), 1, n, sizeof(n)), 0);
	free(realm);
}

static void test_nonce_without_vault_secret_fails_closed(void **state)
{
	struct nonce_table *t = nonce_table_new(16, LIFETIME);
	char n[NONCE_LEN + 1], err[256];

	(void)state;
	make(5000, n);
	vault_shutdown();
	assert_int_equal(nonce_make(REALM, 5000, n, sizeof(n)), -1);
	assert_int_equal(nonce_check(t, str_cstr(n), REALM, 5000), NONCE_INVALID);
	assert_int_equal(vault_init(state_dir, err, sizeof(err)), 0);
	assert_int_equal(nonce_check(t, str_cstr(n), REALM, 5000), NONCE_OK);
	nonce_table_free(t);
}

static void test_nonce_nc_reuse_is_replay(void **state)
{
	struct nonce_table *t = nonce_table_new(1024, LIFETIME);
	char n[NONCE_LEN + 1];

	(void)state;
	make(5000, n);
	assert_int_equal(nonce_use(t, str_cstr(n), REALM, 1, 5000), NONCE_OK);
	assert_int_equal(nonce_table_size(t), 1);
	assert_int_equal(nonce_use(t, str_cstr(n), REALM, 1, 5001), NONCE_REPLAY);
	assert_int_equal(nonce_use(t, str_cstr(n), REALM, 2, 5001), NONCE_OK);
	assert_int_equal(nonce_use(t, str_cstr(n), REALM, 2, 5001), NONCE_REPLAY);
	assert_int_equal(nonce_use(t, str_cstr(n), REALM, 1, 5001), NONCE_REPLAY);
	/* a no-qop use of a nonce already used with qop is a replay */
	assert_int_equal(nonce_use(t, str_cstr(n), REALM, 0, 5001), NONCE_REPLAY);
	assert_int_equal(nonce_table_size(t), 1);
	nonce_table_free(t);
}

static void test_nonce_nc_out_of_order_within_window_ok_once(void **state)
{
	struct nonce_table *t = nonce_table_new(1024, LIFETIME);
	char n[NONCE_LEN + 1];

	(void)state;
	make(5000, n);
	assert_int_equal(nonce_use(t, str_cstr(n), REALM, 2, 5000), NONCE_OK);
	assert_int_equal(nonce_use(t, str_cstr(n), REALM, 1, 5000), NONCE_OK);
	assert_int_equal(nonce_use(t, str_cstr(n), REALM, 1, 5000), NONCE_REPLAY);
	assert_int_equal(nonce_use(t, str_cstr(n), REALM, 2, 5000), NONCE_REPLAY);
	/* jump to 100: 37..99 are inside the window and fresh, 36 is too old */
	assert_int_equal(nonce_use(t, str_cstr(n), REALM, 100, 5000), NONCE_OK);
	assert_int_equal(nonce_use(t, str_cstr(n), REALM, 37, 5000), NONCE_OK);
	assert_int_equal(nonce_use(t, str_cstr(n), REALM, 37, 5000), NONCE_REPLAY);
	assert_int_equal(nonce_use(t, str_cstr(n), REALM, 36, 5000), NONCE_REPLAY);
	assert_int_equal(nonce_use(t, str_cstr(n), REALM, 3, 5000), NONCE_REPLAY);
	/* a jump past the whole window forgets the old bits but keeps order */
	assert_int_equal(nonce_use(t, str_cstr(n), REALM, 1000, 5000), NONCE_OK);
	assert_int_equal(nonce_use(t, str_cstr(n), REALM, 100, 5000), NONCE_REPLAY);
	assert_int_equal(nonce_use(t, str_cstr(n), REALM, 999, 5000), NONCE_OK);
	assert_int_equal(nonce_use(t, str_cstr(n), REALM, UINT32_MAX, 5000), NONCE_OK);
	assert_int_equal(nonce_use(t, str_cstr(n), REALM, UINT32_MAX, 5000), NONCE_REPLAY);
	nonce_table_free(t);
}

static void test_nonce_without_qop_is_single_use(void **state)
{
	struct nonce_table *t = nonce_table_new(1024, LIFETIME);
	char n[NONCE_LEN + 1];

	(void)state;
	make(5000, n);
	assert_int_equal(nonce_use(t, str_cstr(n), REALM, 0, 5000), NONCE_OK);
	assert_int_equal(nonce_use(t, str_cstr(n), REALM, 0, 5000), NONCE_REPLAY);
	assert_int_equal(nonce_use(t, str_cstr(n), REALM, 1, 5000), NONCE_REPLAY);
	assert_int_equal(nonce_use(t, str_cstr(n), REALM, UINT32_MAX, 5000), NONCE_REPLAY);
	assert_int_equal(nonce_use(t, str_cstr(n), REALM, 12345, 5000), NONCE_REPLAY);
	nonce_table_free(t);
}

static void test_nonce_expired_entries_are_purged_without_raising_horizon(void **state)
{
	struct nonce_table *t = nonce_table_new(1, LIFETIME); /* one shard, one entry */
	char x[NONCE_LEN + 1], z[NONCE_LEN + 1], w[NONCE_LEN + 1];

	(void)state;
	make(1000, x);
	make(1200, z);
	make(1150, w);
	assert_int_equal(nonce_use(t, str_cstr(x), REALM, 1, 1000), NONCE_OK);
	/* at 1400 x has expired: z takes its slot without an eviction */
	assert_int_equal(nonce_use(t, str_cstr(z), REALM, 1, 1400), NONCE_OK);
	assert_int_equal(nonce_table_size(t), 1);
	assert_int_equal(nonce_check(t, str_cstr(w), REALM, 1400), NONCE_OK);
	/* now the table is full of live entries: w evicts z and both are stale */
	assert_int_equal(nonce_use(t, str_cstr(w), REALM, 1, 1400), NONCE_STALE);
	assert_int_equal(nonce_use(t, str_cstr(z), REALM, 1, 1400), NONCE_STALE);
	assert_int_equal(nonce_use(t, str_cstr(z), REALM, 2, 1400), NONCE_STALE);
	assert_int_equal(nonce_check(t, str_cstr(w), REALM, 1400), NONCE_STALE);
	nonce_table_free(t);
}

static void test_nonce_eviction_horizon_never_reopens_replay(void **state)
{
	enum { CAP = 8, MAX = 2000, NOW = 4000 };
	struct nonce_table *t = nonce_table_new(CAP, 3500);
	static char used[MAX + 400][NONCE_LEN + 1];
	char a[NONCE_LEN + 1];
	int i, n = 0, replays = 0;

	(void)state;
	make(1000, a);
	assert_int_equal(nonce_use(t, str_cstr(a), REALM, 1, 1000), NONCE_OK);
	/* newer nonces (one per second), all fresh at NOW, until a's slot is needed */
	for (i = 0; i < MAX && nonce_check(t, str_cstr(a), REALM, NOW) == NONCE_OK; i++) {
		make(1001 + i, used[n]);
		assert_int_equal(nonce_use(t, str_cstr(used[n]), REALM, 1, NOW), NONCE_OK);
		n++;
		assert_true(nonce_table_size(t) <= CAP);
	}
	assert_true(i < MAX);
	/* a was evicted: it is stale, never accepted again */
	assert_int_equal(nonce_check(t, str_cstr(a), REALM, NOW), NONCE_STALE);
	assert_int_equal(nonce_use(t, str_cstr(a), REALM, 1, NOW), NONCE_STALE);
	assert_int_equal(nonce_use(t, str_cstr(a), REALM, 2, NOW), NONCE_STALE);
	/* keep going well past the capacity, several nonces per second: no used
	 * (nonce, nc) is ever accepted again, whatever was evicted */
	for (int j = 0; j < 400; j++) {
		enum nonce_status st;
		/* four per second, then one per second for the last hundred */
		make(j < 300 ? 1001 + i + j / 4 : 1001 + i + 75 + j - 300 + 1, used[n]);
		st = nonce_use(t, str_cstr(used[n]), REALM, 1, NOW);
		/* stale only when its own second was evicted just now */
		assert_true(st == NONCE_OK || st == NONCE_STALE);
		n++;
		assert_true(nonce_table_size(t) <= CAP);
	}
	for (i = 0; i < n; i++) {
		enum nonce_status st = nonce_use(t, str_cstr(used[i]), REALM, 1, NOW);
		assert_true(st == NONCE_REPLAY || st == NONCE_STALE);
		replays += st == NONCE_REPLAY;
	}
	/* the newest nonces are still tracked (replay, not merely stale) */
	assert_true(replays > 0);
	nonce_table_free(t);
}

struct race {
	struct nonce_table *t;
	const char *nonce;
	int *accepted; /* per nc */
	int ncs;
};

static void *race_thread(void *arg)
{
	struct race *r = arg;

	for (int nc = 1; nc <= r->ncs; nc++) {
		if (nonce_use(r->t, str_cstr(r->nonce), REALM, (uint32_t)nc, 5000) == NONCE_OK)
			__atomic_add_fetch(&r->accepted[nc], 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void test_nonce_concurrent_use_never_double_accepts(void **state)
{
	enum { THREADS = 4, NCS = 3000 };
	struct nonce_table *t = nonce_table_new(1 << 16, LIFETIME);
	char n[NONCE_LEN + 1], m[NONCE_LEN + 1];
	static int accepted[2][NCS + 1];
	struct race r[THREADS];
	pthread_t th[THREADS];

	(void)state;
	make(4990, n);
	make(4991, m);
	memset(accepted, 0, sizeof(accepted));
	for (int i = 0; i < THREADS; i++) {
		r[i] = (struct race){t, i % 2 ? m : n, accepted[i % 2], NCS};
		assert_int_equal(pthread_create(&th[i], NULL, race_thread, &r[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	for (int k = 0; k < 2; k++) {
		int total = 0;
		for (int nc = 1; nc <= NCS; nc++) {
			assert_true(accepted[k][nc] <= 1);
			total += accepted[k][nc];
		}
		/* each nc rises monotonically per thread: most are accepted once */
		assert_true(total > NCS / 2);
	}
	assert_int_equal(nonce_table_size(t), 2);
	nonce_table_free(t);
}

static void test_nonce_table_zero_capacity_still_works(void **state)
{
	struct nonce_table *t = nonce_table_new(0, LIFETIME);
	char n[NONCE_LEN + 1];

	(void)state;
	assert_non_null(t);
	make(5000, n);
	assert_int_equal(nonce_use(t, str_cstr(n), REALM, 1, 5000), NONCE_OK);
	assert_int_equal(nonce_use(t, str_cstr(n), REALM, 1, 5000), NONCE_REPLAY);
	assert_int_equal(nonce_table_size(t), 1);
	nonce_table_free(t);
	nonce_table_free(NULL);
	assert_int_equal(nonce_table_size(NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_nonce_fresh_is_ok_and_base64url),
	    cmocka_unit_test(test_nonce_rebuilt_from_its_stamp_is_the_same_nonce),
	    cmocka_unit_test(test_nonce_same_second_nonces_differ_with_own_nc_space),
	    cmocka_unit_test(test_nonce_expired_is_stale),
	    cmocka_unit_test(test_nonce_tampered_byte_is_invalid),
	    cmocka_unit_test(test_nonce_other_realm_is_invalid),
	    cmocka_unit_test(test_nonce_bad_encoding_or_length_is_invalid),
	    cmocka_unit_test(test_nonce_make_refuses_small_buffer_and_long_realm),
	    cmocka_unit_test(test_nonce_without_vault_secret_fails_closed),
	    cmocka_unit_test(test_nonce_nc_reuse_is_replay),
	    cmocka_unit_test(test_nonce_nc_out_of_order_within_window_ok_once),
	    cmocka_unit_test(test_nonce_without_qop_is_single_use),
	    cmocka_unit_test(test_nonce_expired_entries_are_purged_without_raising_horizon),
	    cmocka_unit_test(test_nonce_eviction_horizon_never_reopens_replay),
	    cmocka_unit_test(test_nonce_concurrent_use_never_double_accepts),
	    cmocka_unit_test(test_nonce_table_zero_capacity_still_works),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
