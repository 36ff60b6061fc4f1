/*
 * A small bounded pool of threads for blocking work that must stay off the
 * worker event loops (issue 5): the scrypt compare of a PIN (~0.1 s), an
 * OCSP query (up to 3 s). One pool per process.
 *
 * A job is (work, done, arg): work(arg) runs on a pool thread; done(arg,
 * cancelled) then runs exactly once, on the loop thread of the reply base
 * given to workq_submit (or, with no reply base, on the pool thread right
 * after work). arg belongs to the caller throughout: the pool never frees
 * it; done is where the caller frees it.
 *
 * Lifecycle:
 *   - workq_start() once, before the first submit (the daemon: when its
 *     workers are created; libevent's pthread locking must be on:
 *     evthread_use_pthreads());
 *   - workq_submit() from any thread; a full queue refuses (-1) so that
 *     the caller can answer "busy" (HTTP 503 with Retry-After) instead of
 *     queueing without bound;
 *   - workq_stop() once the reply bases' loops have ENDED (and before those
 *     bases are freed): jobs already running finish, jobs still queued are
 *     not run; every done that has not run yet runs now, on the caller's
 *     thread, with cancelled = 1. Nothing leaks. After workq_stop,
 *     workq_submit refuses until workq_start is called again.
 *
 * done with cancelled = 1 means "the loop is gone or the pool stopped: do
 * not act on the result, just release what arg holds". work may or may not
 * have run.
 *
 * Thread safety: workq_submit from any thread; workq_start and workq_stop
 * from one thread (the daemon's main thread).
 */
#ifndef RTC_CORE_WORKQ_H
#define RTC_CORE_WORKQ_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;

#define WORKQ_THREADS_DEFAULT 2
#define WORKQ_THREADS_MAX     64
#define WORKQ_QUEUE_DEFAULT   256

typedef void (*workq_work_fn)(void *arg);
typedef void (*workq_done_fn)(void *arg, int cancelled);

/*
 * Start threads (1..WORKQ_THREADS_MAX) taking jobs from a queue of at most
 * max_queued jobs (waiting, not counting those running; >= 1). 0, or -1
 * (bad arguments, already started, or no thread could be made).
 */
int workq_start(int threads, size_t max_queued);

/*
 * Queue a job. reply_base: the event base whose loop thread runs done
 * (NULL: done runs on the pool thread after work). done may be NULL
 * (nothing to tell; then reply_base is ignored). 0, or -1 when the queue
 * is full, the pool is not running, or out of memory: then neither work
 * nor done will ever run, and arg is still the caller's.
 */
int workq_submit(struct event_base *reply_base, workq_work_fn work, workq_done_fn done, void *arg);

/* Stop the pool (see the lifecycle above). Without a running pool: nothing. */
void workq_stop(void);

/* Is the pool running (workq_start succeeded, workq_stop not yet called)? */
bool workq_running(void);

/* Jobs waiting in the queue, and jobs submitted whose done has not run yet
 * (tests, /metrics). */
size_t workq_queued(void);
size_t workq_pending(void);

#endif
