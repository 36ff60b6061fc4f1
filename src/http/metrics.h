/*
 * /metrics (Prometheus text exposition format 0.0.4) and /healthz.
 * The counters, labelled families and histograms come from core/stats;
 * values that are read rather than counted (registrations, connections)
 * are gauges registered here by whoever owns them.
 */
#ifndef RTC_HTTP_METRICS_H
#define RTC_HTTP_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef uint64_t (*metrics_gauge_fn)(void);

/* A gauge read at every scrape (fn must be thread-safe and quick). Before
 * any server runs. 0, or -1 when the name is taken or the table is full. */
int metrics_gauge_add(const char *name, const char *help, metrics_gauge_fn fn);
/* Forget every gauge (tests). */
void metrics_gauges_clear(void);

/* The whole exposition as a NUL-terminated malloc'd string (*len without
 * the NUL), or NULL when out of memory. */
char *metrics_render(size_t *len);

/*
 * Register GET /metrics and GET /healthz. health(worker) returns 0 when
 * this worker can serve (its store answers), -1 otherwise (503).
 */
int metrics_routes_add(int (*health)(void *worker));

#endif
