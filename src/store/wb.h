/*
 * Write-behind: workers hand registration changes and audit rows to a queue;
 * one thread with its own store connection writes them in batches (one
 * transaction per batch, every flush interval). The hot path never waits for
 * the disk; wb_stop() drains the queue so SIGTERM loses nothing.
 * If the store is unavailable the batch is kept and retried (bounded queue;
 * when full the oldest registration updates are dropped with a log line,
 * never audit rows... both are bounded by WB_MAX_QUEUE in the end).
 */
#ifndef RTC_STORE_WB_H
#define RTC_STORE_WB_H

#include "store/store.h"

#define WB_MAX_QUEUE 1000000

/* Start the writer thread on the database at path. 0 or -1 with err. */
int wb_start(const char *path, int flush_ms, char *err, size_t errlen);
/* Drain everything still queued, then stop the thread. */
void wb_stop(void);
/* Block until everything queued so far is written (or failed). */
void wb_sync(void);

void wb_reg_put(const struct store_reg *r);
void wb_reg_del(const char *aor, const char *binding_key);
void wb_audit(const char *actor, const char *action, const char *target, const char *source,
	      const char *detail);
/* Operations written, failed (store errors) and waiting. */
void wb_counts(uint64_t *written, uint64_t *failed, uint64_t *queued);

#endif
