/*
 * Prometheus text format 0.0.4 for every stats counter, family and
 * histogram, plus registered gauges; and the /metrics and /healthz
 * endpoints. Reads only: never changes a counter.
 */
#include "http/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/stats.h"
#include "http/http.h"

#define MAX_GAUGES 32

static struct {
	const char *name, *help;
	metrics_gauge_fn fn;
} gauges[MAX_GAUGES];
static size_t n_gauges;
static int (*health_fn)(void *worker);

int metrics_gauge_add(const char *name, const char *help, metrics_gauge_fn fn)
{
	if (!name || !help || !fn || n_gauges == MAX_GAUGES)
		return -1;
	for (size_t i = 0; i < n_gauges; i++)
		if (strcmp(gauges[i].name, name) == 0)
			return -1;
	gauges[n_gauges].name = name;
	gauges[n_gauges].help = help;
	gauges[n_gauges].fn = fn;
	n_gauges++;
	return 0;
}

void metrics_gauges_clear(void)
{
	n_gauges = 0;
}

static void head(FILE *f, const char *name, const char *help, const char *type)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* µs as seconds, exact (no float rounding in bucket bounds). */
static void seconds(FILE *f, uint64_t us)
{
	uint64_t frac = us % 1000000u;
	int digits = 6;

	fprintf(f, "%llu", (unsigned long long)(us / 1000000u));
	if (!frac)
		return;
	while (frac % 10 == 0) {
		frac /= 10;
		digits--;
	}
	fprintf(f, ".%0*llu", digits, (unsigned long long)frac);
}

static void histogram(FILE *f, enum stats_hist_id h)
{
	const uint64_t *b = stats_hist_bounds();
	uint64_t buckets[STATS_HIST_BOUNDS + 1], count, sum, cum = 0;
	const char *name = stats_hist_name(h);

	stats_hist_read(h, buckets, &count, &sum);
	head(f, name, stats_hist_help(h), "histogram");
	for (size_t i = 0; i < STATS_HIST_BOUNDS; i++) {
		cum += buckets[i];
		fprintf(f, "%s_bucket{le=\"", name);
		seconds(f, b[i]);
		fprintf(f, "\"} %llu\n", (unsigned long long)cum);
	}
	fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)count);
	fprintf(f, "%s_sum ", name);
	seconds(f, sum);
	fprintf(f, "\n%s_count %llu\n", name, (unsigned long long)count);
}

char *metrics_render(size_t *len)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	if (!f)
		return NULL;
	for (int i = 0; i < ST_COUNT; i++) {
		char name[96];
		snprintf(name, sizeof(name), "rtcauth_%s_total", stats_name((enum stat_id)i));
		head(f, name, stats_help((enum stat_id)i), "counter");
		fprintf(f, "%s %llu\n", name, (unsigned long long)stats_get((enum stat_id)i));
	}
	for (int i = 0; i < SF_COUNT; i++) {
		enum stats_family_id fid = (enum stats_family_id)i;
		size_t n;
		const char *const *labels = stats_family_labels(fid, &n);
		head(f, stats_family_name(fid), stats_family_help(fid), "counter");
		for (size_t j = 0; j < n; j++)
			fprintf(f, "%s{%s} %llu\n", stats_family_name(fid), labels[j],
				(unsigned long long)stats_family_get(fid, (unsigned)j));
	}
	for (size_t i = 0; i < n_gauges; i++) {
		head(f, gauges[i].name, gauges[i].help, "gauge");
		fprintf(f, "%s %llu\n", gauges[i].name, (unsigned long long)gauges[i].fn());
	}
	for (int i = 0; i < STH_COUNT; i++)
		histogram(f, (enum stats_hist_id)i);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	*len = size;
	return buf;
}

static void metrics_get(const struct http_request *req, struct http_response *resp, void *arg)
{
	size_t len = 0;
	char *text = metrics_render(&len);

	(void)req;
	(void)arg;
	if (!text) {
		http_response_error(resp, 500, "server_error", "out of memory");
		return;
	}
	http_response_set(resp, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
	free(text);
}

static void healthz_get(const struct http_request *req, struct http_response *resp, void *arg)
{
	static const char ok[] = "{\"status\":\"ok\"}";

	(void)arg;
	if (health_fn && health_fn(req->worker) < 0) {
		http_response_error(resp, 503, "temporarily_unavailable",
				    "the store does not answer; see the daemon log");
		return;
	}
	http_response_set(resp, 200, "application/json", ok, sizeof(ok) - 1);
}

int metrics_routes_add(int (*health)(void *worker))
{
	health_fn = health;
	if (http_route_add(HTTP_GET, "/metrics", false, metrics_get, NULL) < 0 ||
	    http_route_add(HTTP_GET, "/healthz", false, healthz_get, NULL) < 0)
		return -1;
	return 0;
}
