/*
 * The pool for blocking work (core/workq.h): work runs on a pool thread and
 * done on the reply base's loop thread, exactly once; a full queue refuses;
 * stopping runs every outstanding done once with "cancelled"; jobs run in
 * order on one thread and side by side on two.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "core/workq.h"

/* ---- a loop on its own thread ---- */

struct loop {
	struct event_base *base;
	pthread_t thr;
};

static void *loop_main(void *arg)
{
	struct loop *l = arg;

	event_base_loop(l->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

static atomic_int loop_up;

static void on_loop_up(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	atomic_store(&loop_up, 1);
}

/* A loop on its own thread, running when this returns (a loopbreak before
 * the loop starts would be forgotten). */
static void loop_start(struct loop *l)
{
	struct timeval now = {0, 0};

	atomic_store(&loop_up, 0);
	l->base = event_base_new();
	assert_non_null(l->base);
	assert_int_equal(event_base_once(l->base, -1, EV_TIMEOUT, on_loop_up, NULL, &now), 0);
	assert_int_equal(pthread_create(&l->thr, NULL, loop_main, l), 0);
	for (int i = 0; i < 10000 && !atomic_load(&loop_up); i++) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	assert_true(atomic_load(&loop_up));
}

static void loop_end(struct loop *l)
{
	event_base_loopbreak(l->base);
	pthread_join(l->thr, NULL);
}

/* ---- jobs ---- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static int running_now, running_max;

struct rec {
	int id;
	pthread_t work_thr, done_thr;
	int worked, done_calls, cancelled;
	bool gated; /* work waits for gate_open */
	int *order, *norder;
};

static void gate(bool open)
{
	pthread_mutex_lock(&mu);
	gate_open = open;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static void work(void *arg)
{
	struct rec *r = arg;

	pthread_mutex_lock(&mu);
	r->work_thr = pthread_self();
	r->worked++;
	if (r->order)
		r->order[(*r->norder)++] = r->id;
	running_now++;
	if (running_now > running_max)
		running_max = running_now;
	pthread_cond_broadcast(&cv);
	while (r->gated && !gate_open)
		pthread_cond_wait(&cv, &mu);
	running_now--;
	pthread_mutex_unlock(&mu);
}

static void done(void *arg, int cancelled)
{
	struct rec *r = arg;

	pthread_mutex_lock(&mu);
	r->done_thr = pthread_self();
	r->done_calls++;
	r->cancelled += cancelled != 0;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

/* Wait (bounded) until *counter reaches n. */
static void wait_for(int *counter, int n)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&mu);
	while (*counter < n)
		if (pthread_cond_timedwait(&cv, &mu, &ts) != 0)
			break;
	pthread_mutex_unlock(&mu);
	assert_true(*counter >= n);
}

static void wait_running(int n)
{
	wait_for(&running_now, n);
}

/* Opens the gate once workq_stop has begun (so the pool takes nothing more). */
static void *open_when_stopping(void *unused)
{
	(void)unused;
	while (workq_running()) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	gate(true);
	return NULL;
}

static int setup(void **state)
{
	(void)state;
	gate_open = false;
	running_now = running_max = 0;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	workq_stop();
	return 0;
}

/* ---- tests ---- */

static void test_workq_done_runs_on_the_reply_base_loop_thread(void **state)
{
	struct loop l;
	struct rec r = {.id = 1};

	(void)state;
	loop_start(&l);
	assert_int_equal(workq_start(2, 8), 0);
	assert_int_equal(workq_submit(l.base, work, done, &r), 0);
	wait_for(&r.done_calls, 1);
	assert_int_equal(r.worked, 1);
	assert_int_equal(r.cancelled, 0);
	assert_true(pthread_equal(r.done_thr, l.thr));
	assert_false(pthread_equal(r.work_thr, l.thr));
	assert_false(pthread_equal(r.work_thr, pthread_self()));
	assert_int_equal(workq_pending(), 0);
	workq_stop();
	assert_int_equal(r.done_calls, 1); /* never again at stop */
	loop_end(&l);
	event_base_free(l.base);
}

static void test_workq_without_reply_base_done_follows_work_on_the_pool(void **state)
{
	struct rec r = {.id = 1};

	(void)state;
	assert_int_equal(workq_start(1, 8), 0);
	assert_int_equal(workq_submit(NULL, work, done, &r), 0);
	wait_for(&r.done_calls, 1);
	assert_true(pthread_equal(r.done_thr, r.work_thr));
	assert_int_equal(r.cancelled, 0);
	workq_stop();
	assert_int_equal(r.done_calls, 1);
}

static void test_workq_one_thread_runs_jobs_in_submission_order(void **state)
{
	struct loop l;
	struct rec r[6];
	int order[6], n = 0;

	(void)state;
	loop_start(&l);
	assert_int_equal(workq_start(1, 16), 0);
	for (int i = 0; i < 6; i++) {
		r[i] = (struct rec){.id = i, .order = order, .norder = &n};
		assert_int_equal(workq_submit(l.base, work, done, &r[i]), 0);
	}
	for (int i = 0; i < 6; i++)
		wait_for(&r[i].done_calls, 1);
	for (int i = 0; i < 6; i++)
		assert_int_equal(order[i], i);
	assert_int_equal(running_max, 1);
	workq_stop();
	loop_end(&l);
	event_base_free(l.base);
}

static void test_workq_two_threads_run_two_jobs_side_by_side(void **state)
{
	struct loop l;
	struct rec a = {.id = 1, .gated = true}, b = {.id = 2, .gated = true};

	(void)state;
	loop_start(&l);
	assert_int_equal(workq_start(2, 8), 0);
	assert_int_equal(workq_submit(l.base, work, done, &a), 0);
	assert_int_equal(workq_submit(l.base, work, done, &b), 0);
	wait_running(2); /* both inside work at once: they can only be on two threads */
	gate(true);
	wait_for(&a.done_calls, 1);
	wait_for(&b.done_calls, 1);
	assert_false(pthread_equal(a.work_thr, b.work_thr));
	workq_stop();
	loop_end(&l);
	event_base_free(l.base);
}

static void test_workq_full_queue_refuses_and_keeps_the_callers_arg(void **state)
{
	struct loop l;
	struct rec busy = {.id = 0, .gated = true}, q[3];

	(void)state;
	loop_start(&l);
	assert_int_equal(workq_start(1, 2), 0);
	assert_int_equal(workq_submit(l.base, work, done, &busy), 0);
	wait_running(1); /* the thread is taken: the next ones wait in the queue */
	for (int i = 0; i < 3; i++)
		q[i] = (struct rec){.id = i + 1};
	assert_int_equal(workq_submit(l.base, work, done, &q[0]), 0);
	assert_int_equal(workq_submit(l.base, work, done, &q[1]), 0);
	assert_int_equal(workq_submit(l.base, work, done, &q[2]), -1);
	assert_int_equal(workq_queued(), 2);
	gate(true);
	wait_for(&q[1].done_calls, 1);
	wait_for(&q[0].done_calls, 1);
	/* the refused job is never run nor reported */
	assert_int_equal(q[2].worked, 0);
	assert_int_equal(q[2].done_calls, 0);
	/* room again once the queue drained */
	assert_int_equal(workq_submit(l.base, work, done, &q[2]), 0);
	wait_for(&q[2].done_calls, 1);
	workq_stop();
	loop_end(&l);
	event_base_free(l.base);
}

static void test_workq_stop_cancels_queued_and_undelivered_jobs_once(void **state)
{
	struct loop l;
	struct rec busy = {.id = 0, .gated = true}, q[4];
	pthread_t opener;

	(void)state;
	loop_start(&l);
	assert_int_equal(workq_start(1, 8), 0);
	assert_int_equal(workq_submit(l.base, work, done, &busy), 0);
	wait_running(1);
	for (int i = 0; i < 4; i++) {
		q[i] = (struct rec){.id = i + 1};
		assert_int_equal(workq_submit(l.base, work, done, &q[i]), 0);
	}
	/* the loop ends before anything is delivered (as at daemon shutdown) */
	loop_end(&l);
	assert_int_equal(workq_pending(), 5);
	assert_int_equal(pthread_create(&opener, NULL, open_when_stopping, NULL), 0);
	workq_stop();
	pthread_join(opener, NULL);
	assert_int_equal(busy.worked, 1); /* the running job finished */
	assert_int_equal(busy.done_calls, 1);
	assert_int_equal(busy.cancelled, 1); /* but its loop was gone */
	for (int i = 0; i < 4; i++) {
		assert_int_equal(q[i].worked, 0);
		assert_int_equal(q[i].done_calls, 1);
		assert_int_equal(q[i].cancelled, 1);
		assert_true(pthread_equal(q[i].done_thr, pthread_self()));
	}
	assert_int_equal(workq_pending(), 0);
	assert_false(workq_running());
	event_base_free(l.base); /* after stop: every job's event is gone */
}

static void test_workq_refuses_when_not_running(void **state)
{
	struct rec r = {.id = 1};

	(void)state;
	assert_false(workq_running());
	assert_int_equal(workq_submit(NULL, work, done, &r), -1);
	assert_int_equal(workq_start(0, 8), -1);
	assert_int_equal(workq_start(WORKQ_THREADS_MAX + 1, 8), -1);
	assert_int_equal(workq_start(1, 0), -1);
	assert_int_equal(workq_start(1, 4), 0);
	assert_int_equal(workq_start(1, 4), -1); /* already running */
	assert_int_equal(workq_submit(NULL, NULL, done, &r), -1);
	workq_stop();
	workq_stop(); /* twice: nothing */
	assert_int_equal(workq_submit(NULL, work, done, &r), -1);
	assert_int_equal(r.worked, 0);
	assert_int_equal(r.done_calls, 0);
	/* and it starts again */
	assert_int_equal(workq_start(1, 4), 0);
	assert_int_equal(workq_submit(NULL, work, done, &r), 0);
	wait_for(&r.done_calls, 1);
	workq_stop();
}

static void test_workq_job_without_done_runs_and_is_freed(void **state)
{
	struct rec r = {.id = 1};

	(void)state;
	assert_int_equal(workq_start(1, 4), 0);
	assert_int_equal(workq_submit(NULL, work, NULL, &r), 0);
	wait_for(&r.worked, 1);
	workq_stop(); /* ASan's leak check: the job is freed */
	assert_int_equal(r.done_calls, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_workq_done_runs_on_the_reply_base_loop_thread,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_workq_without_reply_base_done_follows_work_on_the_pool, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_workq_one_thread_runs_jobs_in_submission_order,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_workq_two_threads_run_two_jobs_side_by_side, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_workq_full_queue_refuses_and_keeps_the_callers_arg,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_workq_stop_cancels_queued_and_undelivered_jobs_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_workq_refuses_when_not_running, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_workq_job_without_done_runs_and_is_freed, setup,
					    teardown),
	};

	evthread_use_pthreads();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
