/*
 * Unit tests for the retransmission memory (src/auth/retrans.h): a request
 * remembered after a successful check is "seen" again only with the same
 * nonce, nc, branch, Call-ID, CSeq and method, within RETRANS_WINDOW seconds;
 * the lossy table may forget but never confuses one request with another.
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

#include "auth/retrans.h"

static struct retrans_key base_key(void)
{
	struct retrans_key k = {
	    .nonce = STR_LIT("MTcwMDAwMDAwMC4xMjM0NTY3ODkw"),
	    .nc = STR_LIT("00000001"),
	    .branch = STR_LIT("z9hG4bK776asdhds"),
	    .call_id = STR_LIT("a84b4c76e66710@pc33.atlanta.example.com"),
	    .cseq = STR_LIT("314159"),
	    .method = STR_LIT("REGISTER"),
	};
	return k;
}

static int setup(void **state)
{
	(void)state;
	return retrans_init(12);
}

static int teardown(void **state)
{
	(void)state;
	retrans_shutdown();
	return 0;
}

static void test_retrans_remembered_request_is_seen(void **state)
{
	struct retrans_key k = base_key();

	(void)state;
	assert_false(retrans_seen(&k, 1000));
	retrans_remember(&k, 1000);
	assert_true(retrans_seen(&k, 1000));
	assert_true(retrans_seen(&k, 1001));
}

static void test_retrans_challenge_stamp_comes_back_for_the_same_request_only(void **state)
{
	struct retrans_key k = base_key(), other;
	uint64_t stamp = 0;

	(void)state;
	k.nonce = STR_NULL; /* a challenged request carries no credentials */
	k.nc = STR_NULL;
	stamp = 0x6550f00d00000042ULL; /* first copy: its new stamp is remembered */
	assert_false(retrans_stamp(&k, 1000, &stamp));
	assert_true(stamp == 0x6550f00d00000042ULL);
	stamp = 0x6550f00e00000043ULL; /* the retransmission gets the first one back */
	assert_true(retrans_stamp(&k, 1000 + RETRANS_WINDOW, &stamp));
	assert_true(stamp == 0x6550f00d00000042ULL);
	/* a challenge memory is not an authenticated request... */
	assert_false(retrans_seen(&k, 1000));
	/* ...another transaction does not get it, and it ends with the window */
	other = k;
	other.branch = STR_LIT("z9hG4bKother");
	stamp = 7;
	assert_false(retrans_stamp(&other, 1000, &stamp));
	assert_true(stamp == 7);
	stamp = 8;
	assert_false(retrans_stamp(&k, 1001 + RETRANS_WINDOW, &stamp));
	assert_true(stamp == 8);
	/* and an authenticated request's memory is no challenge */
	other = base_key();
	retrans_remember(&other, 1000);
	stamp = 9;
	assert_false(retrans_stamp(&other, 1000, &stamp));
}

/* The challenge memory has its own (fast) fingerprint: it too must tell
 * every field apart, and fields must not slide into each other. */
static void test_retrans_challenge_stamp_tells_every_field_apart(void **state)
{
	struct retrans_key k = base_key(), o;
	uint64_t stamp;

	(void)state;
	k.nonce = STR_NULL;
	k.nc = STR_NULL;
	stamp = 0x1111;
	assert_false(retrans_stamp(&k, 500, &stamp));
	for (int i = 0; i < 6; i++) {
		o = k;
		switch (i) {
		case 0:
			o.branch = STR_LIT("z9hG4bK-other");
			break;
		case 1:
			o.call_id = STR_LIT("other-call");
			break;
		case 2:
			o.cseq = STR_LIT("2");
			break;
		case 3:
			o.method = STR_LIT("INVITE");
			break;
		case 4: /* the end of the branch moved into the Call-ID */
			o.branch = STR_LIT("z9hG4bK776asdhd");
			o.call_id = STR_LIT("sa84b4c76e66710@pc33.atlanta.example.com");
			break;
		default: /* the same bytes split differently over cseq/method */
			o.cseq = STR_LIT("314159R");
			o.method = STR_LIT("EGISTER");
			break;
		}
		stamp = 0x2222;
		assert_false(retrans_stamp(&o, 500, &stamp));
		assert_true(stamp == 0x2222);
	}
	stamp = 0x3333;
	assert_true(retrans_stamp(&k, 500, &stamp));
	assert_true(stamp == 0x1111);
}

static void test_retrans_seen_compares_content_not_pointers(void **state)
{
	struct retrans_key k = base_key(), copy;
	char nonce[64], branch[64];

	(void)state;
	retrans_remember(&k, 50);
	snprintf(nonce, sizeof(nonce), "%.*s", STR_FMT(k.nonce));
	snprintf(branch, sizeof(branch), "%.*s", STR_FMT(k.branch));
	copy = k;
	copy.nonce = str_cstr(nonce);
	copy.branch = str_cstr(branch);
	assert_true(retrans_seen(&copy, 60));
}

static void test_retrans_other_branch_cseq_callid_nc_nonce_or_method_is_not_seen(void **state)
{
	struct retrans_key k = base_key(), v;

	(void)state;
	retrans_remember(&k, 100);

	v = base_key();
	v.branch = STR_LIT("z9hG4bK776asdhdt");
	assert_false(retrans_seen(&v, 101));
	v = base_key();
	v.cseq = STR_LIT("314160");
	assert_false(retrans_seen(&v, 101));
	v = base_key();
	v.call_id = STR_LIT("a84b4c76e66710@pc33.atlanta.example.org");
	assert_false(retrans_seen(&v, 101));
	v = base_key();
	v.nc = STR_LIT("00000002");
	assert_false(retrans_seen(&v, 101));
	v = base_key();
	v.nonce = STR_LIT("MTcwMDAwMDAwMC4xMjM0NTY3ODkx");
	assert_false(retrans_seen(&v, 101));
	v = base_key();
	v.method = STR_LIT("INVITE");
	assert_false(retrans_seen(&v, 101));
	/* case matters: these are compared as received */
	v = base_key();
	v.branch = STR_LIT("Z9HG4BK776ASDHDS");
	assert_false(retrans_seen(&v, 101));
	assert_true(retrans_seen(&k, 101));
}

static void test_retrans_fields_cannot_slide_into_each_other(void **state)
{
	struct retrans_key a = base_key(), b = base_key();

	(void)state;
	a.cseq = STR_LIT("1");
	a.method = STR_LIT("2REGISTER");
	b.cseq = STR_LIT("12");
	b.method = STR_LIT("REGISTER");
	retrans_remember(&a, 10);
	assert_false(retrans_seen(&b, 10));
	a = base_key();
	a.branch = STR_LIT("");
	a.call_id = STR_LIT("z9hG4bK1abc");
	b = base_key();
	b.branch = STR_LIT("z9hG4bK1");
	b.call_id = STR_LIT("abc");
	retrans_remember(&a, 10);
	assert_false(retrans_seen(&b, 10));
	assert_true(retrans_seen(&a, 10));
}

static void test_retrans_expires_after_the_window(void **state)
{
	struct retrans_key k = base_key();

	(void)state;
	retrans_remember(&k, 5000);
	assert_true(retrans_seen(&k, 5000 + RETRANS_WINDOW - 1));
	assert_true(retrans_seen(&k, 5000 + RETRANS_WINDOW)); /* 64*T1 inclusive */
	assert_false(retrans_seen(&k, 5000 + RETRANS_WINDOW + 1));
	assert_false(retrans_seen(&k, 5000 + 3600));
	/* remembering again (a later successful check) restarts the window */
	retrans_remember(&k, 6000);
	assert_true(retrans_seen(&k, 6000 + RETRANS_WINDOW));
}

static void test_retrans_window_is_64_t1(void **state)
{
	(void)state;
	assert_int_equal(RETRANS_WINDOW, 64 * 500 / 1000); /* RFC 3261 §17.1.2.2 */
}

/* With one slot every remember overwrites the last: the lost entry is simply
 * not seen any more, and the new one never answers for the old. */
static void test_retrans_lossy_overwrite_never_makes_an_unseen_request_seen(void **state)
{
	struct retrans_key k[50];
	char cseq[50][16];

	(void)state;
	retrans_shutdown();
	assert_int_equal(retrans_init(0), 0);
	for (int i = 0; i < 50; i++) {
		k[i] = base_key();
		snprintf(cseq[i], sizeof(cseq[i]), "%d", 1000 + i);
		k[i].cseq = str_cstr(cseq[i]);
	}
	for (int i = 0; i < 50; i++) {
		retrans_remember(&k[i], 10);
		assert_true(retrans_seen(&k[i], 11));
		for (int j = 0; j < 50; j++)
			if (j != i)
				assert_false(retrans_seen(&k[j], 11));
	}
	/* a small table under load: only remembered keys are ever seen */
	retrans_shutdown();
	assert_int_equal(retrans_init(3), 0);
	for (int i = 0; i < 25; i++)
		retrans_remember(&k[i], 20);
	for (int i = 25; i < 50; i++)
		assert_false(retrans_seen(&k[i], 21));
	int kept = 0;
	for (int i = 0; i < 25; i++)
		kept += retrans_seen(&k[i], 21);
	assert_true(kept >= 1 && kept <= 8);
}

static void test_retrans_before_init_sees_nothing(void **state)
{
	struct retrans_key k = base_key();

	(void)state;
	retrans_shutdown();
	retrans_remember(&k, 1);
	assert_false(retrans_seen(&k, 1));
	assert_int_equal(retrans_init(12), 0);
	assert_false(retrans_seen(&k, 1));
}

static void test_retrans_fresh_table_sees_nothing_at_time_zero(void **state)
{
	struct retrans_key k = base_key();

	(void)state;
	/* an empty slot has until == 0: it must not match anything at now == 0 */
	assert_false(retrans_seen(&k, 0));
	k.nonce = STR_NULL;
	k.nc = STR_NULL;
	k.branch = STR_NULL;
	k.call_id = STR_NULL;
	k.cseq = STR_NULL;
	k.method = STR_NULL;
	assert_false(retrans_seen(&k, 0));
	retrans_remember(&k, 0);
	assert_true(retrans_seen(&k, 0));
}

#define RT_THREADS 4
#define RT_KEYS	   2000

static void *rt_worker(void *arg)
{
	int t = (int)(intptr_t)arg;
	char cseq[32];
	long bad = 0;

	for (int i = 0; i < RT_KEYS; i++) {
		struct retrans_key k = base_key();
		snprintf(cseq, sizeof(cseq), "%d-%d", t, i);
		k.cseq = str_cstr(cseq);
		retrans_remember(&k, 100);
		if (!retrans_seen(&k, 100))
			bad++; /* other threads may evict it: only count, check below */
		snprintf(cseq, sizeof(cseq), "never-%d-%d", t, i);
		k.cseq = str_cstr(cseq);
		if (retrans_seen(&k, 100))
			bad += 1000000;
	}
	return (void *)bad;
}

static void test_retrans_concurrent_threads_never_see_unremembered_requests(void **state)
{
	pthread_t th[RT_THREADS];
	long lost = 0;

	(void)state;
	for (int i = 0; i < RT_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, rt_worker, (void *)(intptr_t)i), 0);
	for (int i = 0; i < RT_THREADS; i++) {
		void *r;
		pthread_join(th[i], &r);
		lost += (long)r;
	}
	assert_true(lost < 1000000);
	assert_true(lost < RT_THREADS * RT_KEYS / 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_retrans_remembered_request_is_seen, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_retrans_challenge_stamp_tells_every_field_apart,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_retrans_seen_compares_content_not_pointers, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(
		test_retrans_other_branch_cseq_callid_nc_nonce_or_method_is_not_seen, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(
		test_retrans_challenge_stamp_comes_back_for_the_same_request_only, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_retrans_fields_cannot_slide_into_each_other, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_retrans_expires_after_the_window, setup, teardown),
	    cmocka_unit_test(test_retrans_window_is_64_t1),
	    cmocka_unit_test_setup_teardown(
		test_retrans_lossy_overwrite_never_makes_an_unseen_request_seen, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_retrans_before_init_sees_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_retrans_fresh_table_sees_nothing_at_time_zero,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_retrans_concurrent_threads_never_see_unremembered_requests, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
