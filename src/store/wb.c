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

/*
 * Queued operations are packed: fixed fields plus only the bytes their
 * strings need (a registration is ~200 bytes, not the ~5 KB of a
 * struct store_reg), so a burst of registrations cannot balloon memory.
 */
enum { P_AOR, P_KEY, P_CONTACT, P_INSTANCE, P_PATH, P_SOURCE, P_CALLID, P_UA, P_DETAIL, P_NSTR };

struct wb_op {
	struct wb_op *next;
	enum wb_kind kind;
	int32_t reg_id;
	int transport;
	uint32_t cseq;
	int64_t expires, updated;
	uint16_t len[P_NSTR];
	char data[];
};

static struct wb_op *op_new(enum wb_kind kind, const char *const str[P_NSTR])
{
	size_t lens[P_NSTR], sum = 0;
	struct wb_op *op;
	char *d;

	for (int i = 0; i < P_NSTR; i++) {
		lens[i] = str[i] ? strnlen(str[i], STORE_CONTACT_MAX) : 0;
		sum += lens[i] + 1;
	}
	op = calloc(1, sizeof(*op) + sum);
	if (!op)
		return NULL;
	op->kind = kind;
	d = op->data;
	for (int i = 0; i < P_NSTR; i++) {
		op->len[i] = (uint16_t)lens[i];
		if (lens[i])
			memcpy(d, str[i], lens[i]);
		d[lens[i]] = '\0';
		d += lens[i] + 1;
	}
	return op;
}

/* String i of a packed op (NUL-terminated, inside op->data). */
static const char *op_str(const struct wb_op *op, int i)
{
	const char *d = op->data;
	for (int k = 0; k < i; k++)
		d += op->len[k] + 1;
	return d;
}

static void copy_field(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

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
	/* wake the writer when work appears; it then batches for an interval */
	if (queued == 1)
		pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
}

void wb_reg_put(const struct store_reg *r)
{
	const char *str[P_NSTR] = {r->aor,    r->binding_key, r->contact,    r->instance, r->path,
				   r->source, r->call_id,     r->user_agent, NULL};
	struct wb_op *op = op_new(WB_REG_PUT, str);
	if (!op)
		return;
	op->reg_id = r->reg_id;
	op->transport = r->transport;
	op->cseq = r->cseq;
	op->expires = r->expires;
	op->updated = r->updated;
	push(op);
}

void wb_reg_del(const char *aor, const char *binding_key)
{
	const char *str[P_NSTR] = {aor, binding_key, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
	struct wb_op *op = op_new(WB_REG_DEL, str);
	if (op)
		push(op);
}

void wb_audit(const char *actor, const char *action, const char *target, const char *source,
	      const char *detail)
{
	/* actor rides in P_AOR, action in P_KEY, target in P_CONTACT */
	const char *str[P_NSTR] = {actor, action, target, NULL, NULL, source, NULL, NULL, detail};
	struct wb_op *op = op_new(WB_AUDIT, str);
	if (op)
		push(op);
}

static int apply(struct wb_op *op)
{
	static struct store_reg r; /* only the writer thread applies */
	int rc;

	switch (op->kind) {
	case WB_REG_PUT:
		memset(&r, 0, sizeof(r));
		copy_field(r.aor, sizeof(r.aor), op_str(op, P_AOR));
		copy_field(r.binding_key, sizeof(r.binding_key), op_str(op, P_KEY));
		copy_field(r.contact, sizeof(r.contact), op_str(op, P_CONTACT));
		copy_field(r.instance, sizeof(r.instance), op_str(op, P_INSTANCE));
		copy_field(r.path, sizeof(r.path), op_str(op, P_PATH));
		copy_field(r.source, sizeof(r.source), op_str(op, P_SOURCE));
		copy_field(r.call_id, sizeof(r.call_id), op_str(op, P_CALLID));
		copy_field(r.user_agent, sizeof(r.user_agent), op_str(op, P_UA));
		r.reg_id = op->reg_id;
		r.transport = op->transport;
		r.cseq = op->cseq;
		r.expires = op->expires;
		r.updated = op->updated;
		return store_reg_put(wst, &r);
	case WB_REG_DEL:
		rc = store_reg_del(wst, op_str(op, P_AOR), op_str(op, P_KEY));
		return rc == STORE_NOTFOUND ? 0 : rc;
	case WB_AUDIT:
		return store_audit_add(wst, op_str(op, P_AOR), op_str(op, P_KEY),
				       op_str(op, P_CONTACT), op_str(op, P_SOURCE),
				       op_str(op, P_DETAIL));
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
	if (rc != STORE_OK && rc != STORE_UNAVAILABLE) {
		/* begin or commit failed (corrupt, full...): none of it is written */
		store_rollback(wst);
		bad = n;
		ok = 0;
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
