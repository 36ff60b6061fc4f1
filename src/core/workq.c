/*
 * The pool of threads for blocking work (workq.h).
 *
 * DESIGN: one mutex guards a FIFO of queued jobs and the list of every job
 * whose done has not run yet. A job with a reply base carries an event made
 * on that base at submit time; the pool thread that ran work marks it
 * active (event_active is safe from any thread once libevent's pthread
 * locking is on), and its callback, on the base's own loop thread, unlinks
 * the job and calls done. workq_stop joins the threads first, so afterwards
 * nothing but the stopping thread touches a job: whatever is still listed
 * gets done(arg, 1) there, and its event is freed before its base is.
 *
 * Must never: run done twice or not at all for an accepted job, run done on
 * a thread other than the reply base's loop (except at stop, documented),
 * or grow the queue past its bound.
 */
#include "core/workq.h"

#include <pthread.h>
#include <stdlib.h>

#include <event2/event.h>

struct job {
	struct job *qnext;	 /* in the queue */
	struct job *prev, *next; /* in the list of jobs whose done has not run */
	workq_work_fn work;
	workq_done_fn done;
	void *arg;
	struct event *ev; /* on the reply base, or NULL */
	bool in_queue;	  /* workq_stop's mark */
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thr[WORKQ_THREADS_MAX];
	int nthr;
	struct job *qhead, *qtail;
	size_t nq, maxq;
	struct job *all;
	size_t npending;
	bool running, stopping;
} wq = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* Under wq.mu. */
static void unlink_job(struct job *j)
{
	if (j->prev)
		j->prev->next = j->next;
	else
		wq.all = j->next;
	if (j->next)
		j->next->prev = j->prev;
	j->prev = j->next = NULL;
	wq.npending--;
}

/* On the reply base's loop thread. */
static void deliver(evutil_socket_t fd, short what, void *arg)
{
	struct job *j = arg;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&wq.mu);
	unlink_job(j);
	pthread_mutex_unlock(&wq.mu);
	event_free(j->ev); /* a non-persistent event may be freed in its callback */
	j->done(j->arg, 0);
	free(j);
}

static void *pool_main(void *unused)
{
	struct job *j;

	(void)unused;
	for (;;) {
		pthread_mutex_lock(&wq.mu);
		while (!wq.qhead && !wq.stopping)
			pthread_cond_wait(&wq.cv, &wq.mu);
		if (wq.stopping) {
			pthread_mutex_unlock(&wq.mu);
			return NULL;
		}
		j = wq.qhead;
		wq.qhead = j->qnext;
		if (!wq.qhead)
			wq.qtail = NULL;
		wq.nq--;
		pthread_mutex_unlock(&wq.mu);

		j->work(j->arg);
		if (j->ev) {
			/* the job stays listed until deliver (or workq_stop) takes it */
			event_active(j->ev, EV_TIMEOUT, 1);
			continue;
		}
		pthread_mutex_lock(&wq.mu);
		if (j->done)
			unlink_job(j);
		pthread_mutex_unlock(&wq.mu);
		if (j->done)
			j->done(j->arg, 0);
		free(j);
	}
}

int workq_start(int threads, size_t max_queued)
{
	if (threads < 1 || threads > WORKQ_THREADS_MAX || max_queued < 1)
		return -1;
	pthread_mutex_lock(&wq.mu);
	if (wq.running) {
		pthread_mutex_unlock(&wq.mu);
		return -1;
	}
	wq.running = true;
	wq.stopping = false;
	wq.maxq = max_queued;
	pthread_mutex_unlock(&wq.mu);
	for (wq.nthr = 0; wq.nthr < threads; wq.nthr++)
		if (pthread_create(&wq.thr[wq.nthr], NULL, pool_main, NULL) != 0)
			break;
	if (wq.nthr == 0) {
		pthread_mutex_lock(&wq.mu);
		wq.running = false;
		pthread_mutex_unlock(&wq.mu);
		return -1;
	}
	return 0;
}

int workq_submit(struct event_base *reply_base, workq_work_fn work, workq_done_fn done, void *arg)
{
	struct job *j;

	if (!work)
		return -1;
	j = calloc(1, sizeof(*j));
	if (!j)
		return -1;
	j->work = work;
	j->done = done;
	j->arg = arg;
	if (done && reply_base) {
		j->ev = event_new(reply_base, -1, 0, deliver, j);
		if (!j->ev) {
			free(j);
			return -1;
		}
	}
	pthread_mutex_lock(&wq.mu);
	if (!wq.running || wq.stopping || wq.nq >= wq.maxq) {
		pthread_mutex_unlock(&wq.mu);
		if (j->ev)
			event_free(j->ev);
		free(j);
		return -1;
	}
	if (wq.qtail)
		wq.qtail->qnext = j;
	else
		wq.qhead = j;
	wq.qtail = j;
	wq.nq++;
	if (done) { /* jobs without done are nobody's business once queued */
		j->next = wq.all;
		if (wq.all)
			wq.all->prev = j;
		wq.all = j;
		wq.npending++;
	}
	pthread_cond_signal(&wq.cv);
	pthread_mutex_unlock(&wq.mu);
	return 0;
}

void workq_stop(void)
{
	struct job *j, *queued;

	pthread_mutex_lock(&wq.mu);
	if (!wq.running) {
		pthread_mutex_unlock(&wq.mu);
		return;
	}
	wq.stopping = true;
	pthread_cond_broadcast(&wq.cv);
	pthread_mutex_unlock(&wq.mu);
	for (int i = 0; i < wq.nthr; i++)
		pthread_join(wq.thr[i], NULL);
	wq.nthr = 0;

	/* no pool thread is left: what is listed here is ours alone */
	pthread_mutex_lock(&wq.mu);
	queued = wq.qhead;
	wq.qhead = wq.qtail = NULL;
	wq.nq = 0;
	for (j = queued; j; j = j->qnext)
		j->in_queue = true;
	while ((j = wq.all) != NULL) {
		unlink_job(j);
		pthread_mutex_unlock(&wq.mu);
		if (j->ev)
			event_free(j->ev);
		j->done(j->arg, 1);
		if (!j->in_queue) /* ran, not yet delivered */
			free(j);
		pthread_mutex_lock(&wq.mu);
	}
	wq.running = false;
	pthread_mutex_unlock(&wq.mu);
	for (j = queued; j; j = queued) { /* never ran; done (if any) ran above */
		queued = j->qnext;
		free(j);
	}
}

bool workq_running(void)
{
	bool r;

	pthread_mutex_lock(&wq.mu);
	r = wq.running && !wq.stopping;
	pthread_mutex_unlock(&wq.mu);
	return r;
}

size_t workq_queued(void)
{
	size_t n;

	pthread_mutex_lock(&wq.mu);
	n = wq.nq;
	pthread_mutex_unlock(&wq.mu);
	return n;
}

size_t workq_pending(void)
{
	size_t n;

	pthread_mutex_lock(&wq.mu);
	n = wq.npending;
	pthread_mutex_unlock(&wq.mu);
	return n;
}
