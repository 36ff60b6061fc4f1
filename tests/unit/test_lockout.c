/*
 * Lockout: per-user and per-source failure windows, lock escalation,
 * known-good sources, administration, bounded memory.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/lockout.h"

static const struct lockout_policy policy = {
    .user_failures = 10,
    .user_window = 300,
    .user_duration = 300,
    .user_max = 3600,
    .source_failures = 30,
    .source_window = 60,
    .source_duration = 300,
};

#define ALICE STR_LIT("sip:alice@example.org")
#define BOB   STR_LIT("sip:bob@example.org")
#define HOME  STR_LIT("192.0.2.10")
#define EVIL  STR_LIT("198.51.100.66")
#define EVIL2 STR_LIT("2001:db8::bad")
#define T0    100000u

static void fail_n(struct lockout *l, struct str user, struct str src, int n, uint64_t now)
{
	for (int i = 0; i < n; i++)
		lockout_fail(l, user, src, now);
}

static void test_lockout_ten_failures_lock_user_for_300s(void **state)
{
	struct lockout *l = lockout_new(&policy);
	uint32_t retry = 99;

	(void)state;
	fail_n(l, ALICE, EVIL, 9, T0);
	assert_int_equal(lockout_check(l, ALICE, EVIL, T0, &retry), LOCKOUT_NONE);
	assert_int_equal(retry, 0);
	assert_int_equal(lockout_fail(l, ALICE, EVIL, T0 + 5), LOCKOUT_USER);
	assert_int_equal(lockout_check(l, ALICE, EVIL, T0 + 5, &retry), LOCKOUT_USER);
	assert_int_equal(retry, 300);
	assert_int_equal(lockout_check(l, ALICE, EVIL, T0 + 105, &retry), LOCKOUT_USER);
	assert_int_equal(retry, 200);
	/* another user is not affected */
	assert_int_equal(lockout_check(l, BOB, EVIL, T0 + 5, &retry), LOCKOUT_NONE);
	lockout_free(l);
}

/* A check skips the tables once every lock has ended (the lock horizon): a
 * lock that ends sooner, set after a longer one, must not end the longer
 * one early, and a lock set after the horizon passed must still count. */
static void test_lockout_short_lock_after_long_one_keeps_it(void **state)
{
	static const struct lockout_policy pol = {
	    .user_failures = 3,
	    .user_window = 300,
	    .user_duration = 60,
	    .user_max = 3600,
	    .source_failures = 3,
	    .source_window = 60,
	    .source_duration = 3000,
	};
	struct lockout *l = lockout_new(&pol);
	uint32_t retry = 0;

	(void)state;
	/* EVIL is throttled until T0 + 3000 */
	fail_n(l, ALICE, EVIL, 3, T0);
	assert_int_equal(lockout_check(l, BOB, EVIL, T0 + 1, NULL), LOCKOUT_SOURCE);
	/* then BOB is locked from three other addresses until T0 + 160 */
	lockout_fail(l, BOB, HOME, T0 + 100);
	lockout_fail(l, BOB, EVIL2, T0 + 100);
	lockout_fail(l, BOB, STR_LIT("203.0.113.7"), T0 + 100);
	assert_int_equal(lockout_check(l, BOB, HOME, T0 + 101, &retry), LOCKOUT_USER);
	assert_int_equal(retry, 59);
	/* BOB's lock ended, EVIL's goes on */
	assert_int_equal(lockout_check(l, BOB, HOME, T0 + 160, NULL), LOCKOUT_NONE);
	assert_int_equal(lockout_check(l, BOB, EVIL, T0 + 2999, &retry), LOCKOUT_SOURCE);
	assert_int_equal(retry, 1);
	/* every lock over; a new one after that counts at once */
	assert_int_equal(lockout_check(l, ALICE, EVIL, T0 + 3000, NULL), LOCKOUT_NONE);
	lockout_fail(l, ALICE, HOME, T0 + 5000);
	lockout_fail(l, ALICE, EVIL2, T0 + 5000);
	lockout_fail(l, ALICE, EVIL, T0 + 5000);
	assert_int_equal(lockout_check(l, ALICE, HOME, T0 + 5000, &retry), LOCKOUT_USER);
	assert_int_equal(retry, 60);
	lockout_free(l);
}

static void test_lockout_failures_outside_window_do_not_add_up(void **state)
{
	struct lockout *l = lockout_new(&policy);

	(void)state;
	/* 9 failures, then 9 more well after the 300 s window */
	fail_n(l, ALICE, EVIL, 9, T0);
	fail_n(l, ALICE, EVIL, 9, T0 + 400);
	assert_int_equal(lockout_check(l, ALICE, EVIL, T0 + 400, NULL), LOCKOUT_NONE);
	/* but inside the window they do */
	assert_int_equal(lockout_fail(l, ALICE, EVIL, T0 + 410), LOCKOUT_USER);
	lockout_free(l);
}

static void test_lockout_lock_expires(void **state)
{
	struct lockout *l = lockout_new(&policy);
	uint32_t retry;

	(void)state;
	fail_n(l, ALICE, EVIL, 10, T0);
	assert_int_equal(lockout_check(l, ALICE, EVIL, T0 + 299, &retry), LOCKOUT_USER);
	assert_int_equal(retry, 1);
	assert_int_equal(lockout_check(l, ALICE, EVIL, T0 + 300, &retry), LOCKOUT_NONE);
	assert_int_equal(retry, 0);
	/* the counter started over: one failure does not re-lock */
	assert_int_equal(lockout_fail(l, ALICE, EVIL, T0 + 301), LOCKOUT_NONE);
	lockout_free(l);
}

static void test_lockout_relock_doubles_up_to_max(void **state)
{
	struct lockout *l = lockout_new(&policy);
	uint32_t want[] = {300, 600, 1200, 2400, 3600, 3600};
	uint64_t now = T0;
	uint32_t retry;

	(void)state;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		fail_n(l, ALICE, EVIL, 10, now);
		assert_int_equal(lockout_check(l, ALICE, EVIL, now, &retry), LOCKOUT_USER);
		assert_int_equal(retry, want[i]);
		now += want[i]; /* right when it ends */
		assert_int_equal(lockout_check(l, ALICE, EVIL, now, NULL), LOCKOUT_NONE);
	}
	/* a quiet period longer than user_max forgets the escalation */
	now += 3601;
	fail_n(l, ALICE, EVIL, 10, now);
	assert_int_equal(lockout_check(l, ALICE, EVIL, now, &retry), LOCKOUT_USER);
	assert_int_equal(retry, 300);
	lockout_free(l);
}

static void test_lockout_failures_while_locked_do_not_extend(void **state)
{
	struct lockout *l = lockout_new(&policy);
	uint32_t retry;

	(void)state;
	fail_n(l, ALICE, EVIL, 10, T0);
	fail_n(l, ALICE, EVIL2, 10, T0 + 100);
	assert_int_equal(lockout_check(l, ALICE, EVIL, T0 + 100, &retry), LOCKOUT_USER);
	assert_int_equal(retry, 200);
	lockout_free(l);
}

static void test_lockout_success_resets_user_failures(void **state)
{
	struct lockout *l = lockout_new(&policy);

	(void)state;
	fail_n(l, ALICE, HOME, 9, T0);
	lockout_success(l, ALICE, HOME, T0 + 1);
	fail_n(l, ALICE, EVIL, 9, T0 + 2);
	assert_int_equal(lockout_check(l, ALICE, EVIL, T0 + 2, NULL), LOCKOUT_NONE);
	assert_int_equal(lockout_fail(l, ALICE, EVIL, T0 + 3), LOCKOUT_USER);
	lockout_free(l);
}

static void test_lockout_throttled_source_blocks_every_user(void **state)
{
	struct lockout *l = lockout_new(&policy);
	char user[64];
	uint32_t retry;

	(void)state;
	/* 30 failures from one address, each for a different user */
	for (int i = 0; i < 30; i++) {
		snprintf(user, sizeof(user), "sip:u%d@example.org", i);
		lockout_fail(l, str_cstr(user), EVIL, T0);
	}
	assert_int_equal(lockout_check(l, ALICE, EVIL, T0 + 1, &retry), LOCKOUT_SOURCE);
	assert_int_equal(retry, 299);
	assert_int_equal(lockout_check(l, BOB, EVIL, T0 + 1, NULL), LOCKOUT_SOURCE);
	/* other sources are fine */
	assert_int_equal(lockout_check(l, ALICE, HOME, T0 + 1, NULL), LOCKOUT_NONE);
	/* the throttle ends */
	assert_int_equal(lockout_check(l, ALICE, EVIL, T0 + 300, NULL), LOCKOUT_NONE);
	lockout_free(l);
}

static void test_lockout_throttled_source_failures_do_not_count_for_user(void **state)
{
	struct lockout *l = lockout_new(&policy);

	(void)state;
	/* throttle EVIL with failures spread over many users */
	for (int i = 0; i < 30; i++) {
		char user[32];
		snprintf(user, sizeof(user), "u%d", i);
		lockout_fail(l, str_cstr(user), EVIL, T0);
	}
	assert_int_equal(lockout_check(l, ALICE, EVIL, T0, NULL), LOCKOUT_SOURCE);
	/* 50 more failures for alice from the throttled source */
	for (int i = 0; i < 50; i++)
		assert_int_equal(lockout_fail(l, ALICE, EVIL, T0 + 1), LOCKOUT_SOURCE);
	/* alice is not locked anywhere else */
	assert_int_equal(lockout_check(l, ALICE, HOME, T0 + 1, NULL), LOCKOUT_NONE);
	assert_int_equal(lockout_check(l, ALICE, EVIL2, T0 + 1, NULL), LOCKOUT_NONE);
	lockout_free(l);
}

static void test_lockout_known_source_bypasses_user_lock(void **state)
{
	struct lockout *l = lockout_new(&policy);
	uint32_t retry = 7;

	(void)state;
	lockout_success(l, ALICE, HOME, T0);
	fail_n(l, ALICE, EVIL, 10, T0 + 10);
	assert_int_equal(lockout_check(l, ALICE, EVIL, T0 + 10, NULL), LOCKOUT_USER);
	assert_int_equal(lockout_check(l, ALICE, EVIL2, T0 + 10, NULL), LOCKOUT_USER);
	assert_int_equal(lockout_check(l, ALICE, HOME, T0 + 10, &retry), LOCKOUT_NONE);
	assert_int_equal(retry, 0);
	/* known for alice only: bob from HOME is judged on bob's own record */
	fail_n(l, BOB, EVIL, 10, T0 + 10);
	assert_int_equal(lockout_check(l, BOB, HOME, T0 + 10, NULL), LOCKOUT_USER);
	/* the memory lasts 24 hours */
	lockout_success(l, BOB, HOME, T0 + 20);
	fail_n(l, ALICE, EVIL, 10, T0 + 86390);
	assert_int_equal(lockout_check(l, ALICE, HOME, T0 + 86399, NULL), LOCKOUT_NONE);
	assert_int_equal(lockout_check(l, ALICE, HOME, T0 + 86400, NULL), LOCKOUT_USER);
	lockout_free(l);
}

static void test_lockout_known_sources_are_bounded_per_user(void **state)
{
	struct lockout *l = lockout_new(&policy);
	char src[32];

	(void)state;
	for (int i = 0; i < 20; i++) {
		snprintf(src, sizeof(src), "10.0.0.%d", i);
		lockout_success(l, ALICE, str_cstr(src), T0 + (uint64_t)i);
	}
	fail_n(l, ALICE, EVIL, 10, T0 + 30);
	/* the 8 most recent are remembered, the oldest were replaced */
	assert_int_equal(lockout_check(l, ALICE, STR_LIT("10.0.0.19"), T0 + 30, NULL),
			 LOCKOUT_NONE);
	assert_int_equal(lockout_check(l, ALICE, STR_LIT("10.0.0.12"), T0 + 30, NULL),
			 LOCKOUT_NONE);
	assert_int_equal(lockout_check(l, ALICE, STR_LIT("10.0.0.11"), T0 + 30, NULL),
			 LOCKOUT_USER);
	assert_int_equal(lockout_check(l, ALICE, STR_LIT("10.0.0.0"), T0 + 30, NULL), LOCKOUT_USER);
	lockout_free(l);
}

struct listing {
	int n;
	struct lockout_entry e[16];
};

static void collect(void *ctx, const struct lockout_entry *e)
{
	struct listing *li = ctx;

	if (li->n < 16)
		li->e[li->n] = *e;
	li->n++;
}

static const struct lockout_entry *find(const struct listing *li, const char *key)
{
	for (int i = 0; i < li->n && i < 16; i++) {
		if (strcmp(li->e[i].key, key) == 0)
			return &li->e[i];
	}
	return NULL;
}

static void test_lockout_list_and_clear(void **state)
{
	struct lockout *l = lockout_new(&policy);
	struct listing li = {0};
	const struct lockout_entry *e;

	(void)state;
	fail_n(l, ALICE, EVIL, 10, T0);
	fail_n(l, BOB, HOME, 3, T0);
	lockout_success(l, STR_LIT("carol"), HOME, T0); /* nothing to list */
	lockout_list(l, T0 + 50, collect, &li);
	assert_int_equal(li.n, 4);
	e = find(&li, "u:sip:alice@example.org");
	assert_non_null(e);
	assert_false(e->is_source);
	assert_int_equal(e->locked_for, 250);
	e = find(&li, "u:sip:bob@example.org");
	assert_non_null(e);
	assert_int_equal(e->failures, 3);
	assert_int_equal(e->locked_for, 0);
	e = find(&li, "s:198.51.100.66");
	assert_non_null(e);
	assert_true(e->is_source);
	assert_int_equal(e->failures, 10);
	assert_non_null(find(&li, "s:192.0.2.10"));

	/* clear one user by its listed key */
	assert_int_equal(lockout_clear(l, STR_LIT("u:sip:alice@example.org")), 1);
	assert_int_equal(lockout_check(l, ALICE, EVIL, T0 + 50, NULL), LOCKOUT_NONE);
	assert_int_equal(lockout_clear(l, STR_LIT("u:sip:alice@example.org")), 0);
	/* a source */
	assert_int_equal(lockout_clear(l, STR_LIT("s:192.0.2.10")), 1);
	/* a bare name finds whichever table has it */
	assert_int_equal(lockout_clear(l, STR_LIT("198.51.100.66")), 1);
	li.n = 0;
	lockout_list(l, T0 + 50, collect, &li);
	assert_int_equal(li.n, 1);
	/* everything */
	fail_n(l, ALICE, EVIL, 10, T0 + 60);
	assert_true(lockout_clear(l, STR_LIT("*")) >= 3);
	li.n = 0;
	lockout_list(l, T0 + 60, collect, &li);
	assert_int_equal(li.n, 0);
	assert_int_equal(lockout_check(l, ALICE, EVIL, T0 + 60, NULL), LOCKOUT_NONE);
	assert_int_equal(lockout_clear(l, STR_NULL), 0);
	lockout_free(l);
}

static void test_lockout_policy_change_keeps_existing_locks(void **state)
{
	struct lockout *l = lockout_new(&policy);
	struct lockout_policy strict = policy;
	uint32_t retry;

	(void)state;
	fail_n(l, ALICE, EVIL, 10, T0);
	strict.user_failures = 3;
	strict.user_duration = 60;
	lockout_set_policy(l, &strict);
	assert_int_equal(lockout_check(l, ALICE, EVIL, T0 + 10, &retry), LOCKOUT_USER);
	assert_int_equal(retry, 290);
	fail_n(l, BOB, HOME, 2, T0);
	assert_int_equal(lockout_fail(l, BOB, HOME, T0), LOCKOUT_USER);
	assert_int_equal(lockout_check(l, BOB, HOME, T0, &retry), LOCKOUT_USER);
	assert_int_equal(retry, 60);
	lockout_free(l);
}

static void test_lockout_zero_threshold_disables_locking(void **state)
{
	struct lockout_policy off = policy;
	struct lockout *l;

	(void)state;
	off.user_failures = 0;
	off.source_failures = 0;
	l = lockout_new(&off);
	fail_n(l, ALICE, EVIL, 100, T0);
	assert_int_equal(lockout_check(l, ALICE, EVIL, T0, NULL), LOCKOUT_NONE);
	lockout_free(l);
	assert_null(lockout_new(NULL));
	lockout_free(NULL);
	assert_int_equal(lockout_check(NULL, ALICE, EVIL, T0, NULL), LOCKOUT_NONE);
}

static void test_lockout_odd_keys_are_safe(void **state)
{
	struct lockout *l = lockout_new(&policy);
	char *huge = malloc(4096);
	struct listing li = {0};

	(void)state;
	assert_non_null(huge);
	memset(huge, 'x', 4096);
	fail_n(l, str_make(huge, 4096), str_make(huge, 4096), 10, T0);
	assert_int_equal(lockout_check(l, str_make(huge, 4096), HOME, T0, NULL), LOCKOUT_USER);
	lockout_list(l, T0, collect, &li);
	assert_int_equal(li.n, 2);
	assert_int_equal(strlen(li.e[0].key), 255);
	/* empty user and no source */
	fail_n(l, STR_NULL, STR_NULL, 10, T0);
	assert_int_equal(lockout_check(l, STR_NULL, STR_NULL, T0, NULL), LOCKOUT_USER);
	free(huge);
	lockout_free(l);
}

static void count_entries(void *ctx, const struct lockout_entry *e)
{
	(void)e;
	(*(int *)ctx)++;
}

static void test_lockout_memory_bounded_under_100k_sources(void **state)
{
	struct lockout *l = lockout_new(&policy);
	char src[64];
	int n = 0;

	(void)state;
	fail_n(l, ALICE, HOME, 10, T0);
	for (int i = 0; i < 100000; i++) {
		snprintf(src, sizeof(src), "2001:db8::%x:%x", i >> 16, i & 0xffff);
		lockout_fail(l, str_cstr(src), str_cstr(src), T0);
	}
	lockout_list(l, T0, count_entries, &n);
	/* at most 32768 per table (users and sources) */
	assert_true(n <= 2 * 32768);
	assert_true(n > 1000);
	/* alice's lock, the oldest entry of its shard, survived the flood */
	assert_int_equal(lockout_check(l, ALICE, HOME, T0 + 1, NULL), LOCKOUT_USER);
	/* after the windows pass, new entries replace the idle ones */
	for (int i = 0; i < 1000; i++) {
		snprintf(src, sizeof(src), "198.18.%d.%d", i >> 8, i & 255);
		lockout_fail(l, BOB, str_cstr(src), T0 + 1000);
	}
	n = 0;
	lockout_list(l, T0 + 1000, count_entries, &n);
	assert_int_equal(n, 1 + 1000);
	lockout_free(l);
}

struct hammer {
	struct lockout *l;
	int id;
};

static void *hammer_thread(void *arg)
{
	struct hammer *h = arg;
	char src[32], user[32];

	for (int i = 0; i < 2000; i++) {
		snprintf(src, sizeof(src), "10.%d.%d.%d", h->id, i >> 8, i & 255);
		snprintf(user, sizeof(user), "u%d", i % 50);
		lockout_fail(h->l, str_cstr(user), str_cstr(src), T0 + (uint64_t)(i / 100));
		lockout_check(h->l, ALICE, str_cstr(src), T0, NULL);
		if (i % 7 == 0)
			lockout_success(h->l, BOB, str_cstr(src), T0);
	}
	return NULL;
}

static void test_lockout_is_thread_safe(void **state)
{
	struct lockout *l = lockout_new(&policy);
	struct hammer h[4];
	pthread_t th[4];

	(void)state;
	for (int i = 0; i < 4; i++) {
		h[i] = (struct hammer){l, i};
		assert_int_equal(pthread_create(&th[i], NULL, hammer_thread, &h[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	/* 8000 failures over 50 users in 20 s: every user got locked */
	for (int i = 0; i < 50; i++) {
		char user[32];
		snprintf(user, sizeof(user), "u%d", i);
		assert_int_equal(lockout_check(l, str_cstr(user), HOME, T0 + 20, NULL),
				 LOCKOUT_USER);
	}
	lockout_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lockout_ten_failures_lock_user_for_300s),
	    cmocka_unit_test(test_lockout_short_lock_after_long_one_keeps_it),
	    cmocka_unit_test(test_lockout_failures_outside_window_do_not_add_up),
	    cmocka_unit_test(test_lockout_lock_expires),
	    cmocka_unit_test(test_lockout_relock_doubles_up_to_max),
	    cmocka_unit_test(test_lockout_failures_while_locked_do_not_extend),
	    cmocka_unit_test(test_lockout_success_resets_user_failures),
	    cmocka_unit_test(test_lockout_throttled_source_blocks_every_user),
	    cmocka_unit_test(test_lockout_throttled_source_failures_do_not_count_for_user),
	    cmocka_unit_test(test_lockout_known_source_bypasses_user_lock),
	    cmocka_unit_test(test_lockout_known_sources_are_bounded_per_user),
	    cmocka_unit_test(test_lockout_list_and_clear),
	    cmocka_unit_test(test_lockout_policy_change_keeps_existing_locks),
	    cmocka_unit_test(test_lockout_zero_threshold_disables_locking),
	    cmocka_unit_test(test_lockout_odd_keys_are_safe),
	    cmocka_unit_test(test_lockout_memory_bounded_under_100k_sources),
	    cmocka_unit_test(test_lockout_is_thread_safe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
