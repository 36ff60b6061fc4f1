/*
 * Write-behind queue and writer thread; see wb.h.
 * Must never block a worker on I/O: producers only take the queue mutex.
 */
#include "store/wb.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"

enum wb_kind { WB_REG_PUT, WB_REG_DEL, WB_AUDIT };

struct wb_op {
	struct wb_op *next;
	enum wb_kind kind;
	union {
		struct store_reg reg;
		struct {
			char aor[STORE_URI_MAX];
			char key[STORE_CONTACT_MAX];
		} del;
		struct store_audit audit;
	} u;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static struct wb_op *head, *tail;
static uint64_t queued, written, failed, enqueued_total, finished_total;
static int running, stopping;
static int flush_interval_ms;
static pthread_t thr;
static struct store *wst;

static void push(struct wb_op *op)
{
	pthread_mutex_lock(&mu);
	if (!running || queued >= WB_MAX_QUEUE) {
		pthread_mutex_unlock(&mu);
		log_err("wb.dropped", "kind=%d reason=%s", op->kind,
			running ? "queue_full" : "not_running");
		free(op);
		return;
	}
	op->next = NULL;
	if (tail)
		tail->next = op;
	else
		head = op;
	tail = op;
	queued++;
	enqueued_total++;
	pthread_mutex_unlock(&mu);
}

void wb_reg_put(const struct store_reg *r)
{
	struct wb_op *op = malloc(sizeof(*op));
	if (!op)
		return;
	op->kind = WB_REG_PUT;
	op->u.reg = *r;
	push(op);
}

void wb_reg_del(const char *aor, const char *binding_key)
{
	struct wb_op *op = malloc(sizeof(*op));
	if (!op)
		return;
	op->kind = WB_REG_DEL;
	snprintf(op->u.del.aor, sizeof(op->u.del.aor), "%s", aor);
	snprintf(op->u.del.key, sizeof(op->u.del.key), "%s", binding_key);
	push(op);
}

void wb_audit(const char *actor, const char *action, const char *target, const char *source,
	      const char *detail)
{
	struct wb_op *op = calloc(1, sizeof(*op));
	if (!op)
		return;
	op->kind = WB_AUDIT;
	snprintf(op->u.audit.actor, sizeof(op->u.audit.actor), "%s", actor);
	snprintf(op->u.audit.action, sizeof(op->u.audit.action), "%s", action);
	snprintf(op->u.audit.target, sizeof(op->u.audit.target), "%s", target ? target : "");
	snprintf(op->u.audit.source, sizeof(op->u.audit.source), "%s", source ? source : "");
	snprintf(op->u.audit.detail, sizeof(op->u.audit.detail), "%s", detail ? detail : "");
	push(op);
}

static int apply(struct wb_op *op)
{
	switch (op->kind) {
	case WB_REG_PUT:
		return store_reg_put(wst, &op->u.reg);
	case WB_REG_DEL: {
		int rc = store_reg_del(wst, op->u.del.aor, op->u.del.key);
		return rc == STORE_NOTFOUND ? 0 : rc;
	}
	case WB_AUDIT:
		return store_audit_add(wst, op->u.audit.actor, op->u.audit.action,
				       op->u.audit.target, op->u.audit.source, op->u.audit.detail);
	}
	return 0;
}

/* Write one batch in a transaction. On an unavailable store the batch is
 * put back at the front and retried after the next interval. */
static int write_batch(struct wb_op *batch, uint64_t n)
{
	struct wb_op *op, *nx;
	int rc = store_begin(wst);
	uint64_t ok = 0, bad = 0;

	if (rc == STORE_OK) {
		for (op = batch; op; op = op->next) {
			rc = apply(op);
			if (rc == STORE_UNAVAILABLE)
				break;
			if (rc == STORE_OK)
				ok++;
			else
				bad++;
		}
		if (rc != STORE_UNAVAILABLE)
			rc = store_commit(wst);
		else
			store_rollback(wst);
	}
	if (rc == STORE_UNAVAILABLE) {
		log_warn("wb.retry", "ops=%llu reason=\"%s\"", (unsigned long long)n,
			 store_errmsg(wst));
		pthread_mutex_lock(&mu);
		for (op = batch; op->next; op = op->next)
			;
		op->next = head;
		head = batch;
		if (!tail)
			tail = op;
		queued += n;
		pthread_mutex_unlock(&mu);
		return -1;
	}
	for (op = batch; op; op = nx) {
		nx = op->next;
		free(op);
	}
	if (bad)
		log_err("wb.failed", "ops=%llu", (unsigned long long)bad);
	pthread_mutex_lock(&mu);
	written += ok;
	failed += bad;
	finished_total += n;
	pthread_cond_broadcast(&done_cv);
	pthread_mutex_unlock(&mu);
	return 0;
}

/* At shutdown with the store still down: give up, say what was lost. */
static void drop_all_locked(void)
{
	struct wb_op *op, *nx;
	uint64_t n = queued;

	for (op = head; op; op = nx) {
		nx = op->next;
		free(op);
	}
	head = tail = NULL;
	queued = 0;
	failed += n;
	finished_total += n;
	pthread_cond_broadcast(&done_cv);
	log_err("wb.lost", "ops=%llu reason=store_unavailable_at_shutdown", (unsigned long long)n);
}

static void *writer(void *arg)
{
	int stop_retries = 0;

	(void)arg;
	pthread_mutex_lock(&mu);
	for (;;) {
		struct timespec ts;
		struct wb_op *batch;
		uint64_t n;

		while (!head && !stopping)
			pthread_cond_wait(&cv, &mu);
		if (!head && stopping)
			break;
		if (!stopping) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += (long)flush_interval_ms * 1000000L;
			ts.tv_sec += ts.tv_nsec / 1000000000L;
			ts.tv_nsec %= 1000000000L;
			pthread_cond_timedwait(&cv, &mu, &ts);
		}
		batch = head;
		n = queued;
		head = tail = NULL;
		queued = 0;
		pthread_mutex_unlock(&mu);
		if (batch && write_batch(batch, n) < 0 && stopping) {
			struct timespec pause = {0, 100 * 1000000L};
			nanosleep(&pause, NULL);
			if (++stop_retries > 50) {
				pthread_mutex_lock(&mu);
				drop_all_locked();
				break;
			}
		}
		pthread_mutex_lock(&mu);
	}
	pthread_mutex_unlock(&mu);
	return NULL;
}

int wb_start(const char *path, int flush_ms, char *err, size_t errlen)
{
	if (store_open(path, STORE_CREATE, 5000, &wst, err, errlen) != STORE_OK)
		return -1;
	flush_interval_ms = flush_ms > 0 ? flush_ms : 100;
	stopping = 0;
	running = 1;
	if (pthread_create(&thr, NULL, writer, NULL) != 0) {
		snprintf(err, errlen, "cannot start the store writer thread");
		store_close(wst);
		wst = NULL;
		running = 0;
		return -1;
	}
	return 0;
}

void wb_sync(void)
{
	pthread_mutex_lock(&mu);
	uint64_t target = enqueued_total;
	pthread_cond_signal(&cv);
	while (running && finished_total < target) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&done_cv, &mu, &ts);
		pthread_cond_signal(&cv);
	}
	pthread_mutex_unlock(&mu);
}

void wb_stop(void)
{
	if (!running)
		return;
	pthread_mutex_lock(&mu);
	stopping = 1;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
	pthread_join(thr, NULL);
	pthread_mutex_lock(&mu);
	running = 0;
	pthread_mutex_unlock(&mu);
	store_close(wst);
	wst = NULL;
}

void wb_counts(uint64_t *w, uint64_t *f, uint64_t *q)
{
	pthread_mutex_lock(&mu);
	*w = written;
	*f = failed;
	*q = queued;
	pthread_mutex_unlock(&mu);
}
