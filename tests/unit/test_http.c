/* HTTP routing, the metrics text and histograms, and the [http] config section. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/stats.h"
#include "http/http.h"
#include "http/metrics.h"

/* ---- routing ---- */

static int h_a, h_b, h_c, h_d;

static void handler(const struct http_request *req, struct http_response *resp, void *arg)
{
	(void)req;
	(void)resp;
	(void)arg;
}

static int routes_teardown(void **state)
{
	(void)state;
	http_routes_clear();
	return 0;
}

static void test_route_add_rejects_bad_paths_and_overlapping_methods(void **state)
{
	(void)state;
	assert_int_equal(http_route_add(HTTP_GET, "/x", false, handler, &h_a), 0);
	assert_int_equal(http_route_add(HTTP_GET | HTTP_POST, "/x", false, handler, &h_b), -1);
	assert_int_equal(http_route_add(HTTP_POST, "/x", false, handler, &h_b), 0);
	/* the same path as a prefix is another route */
	assert_int_equal(http_route_add(HTTP_GET, "/x", true, handler, &h_c), 0);
	assert_int_equal(http_route_add(HTTP_GET, "relative", false, handler, NULL), -1);
	assert_int_equal(http_route_add(HTTP_GET, "", false, handler, NULL), -1);
	assert_int_equal(http_route_add(HTTP_GET, NULL, false, handler, NULL), -1);
	assert_int_equal(http_route_add(0, "/y", false, handler, NULL), -1);
	assert_int_equal(http_route_add(1u << 12, "/y", false, handler, NULL), -1);
	assert_int_equal(http_route_add(HTTP_GET, "/y", false, NULL, NULL), -1);
}

static void test_route_table_is_bounded(void **state)
{
	char p[32];
	int added = 0;

	(void)state;
	for (int i = 0; i < 1000; i++) {
		snprintf(p, sizeof(p), "/r%d", i);
		if (http_route_add(HTTP_GET, p, false, handler, NULL) == 0)
			added++;
	}
	assert_true(added > 8 && added < 1000);
}

static void test_route_lookup_exact_beats_prefix_and_longest_prefix_wins(void **state)
{
	unsigned allowed;
	void *arg;

	(void)state;
	assert_int_equal(http_route_add(HTTP_GET, "/oauth/", true, handler, &h_a), 0);
	assert_int_equal(http_route_add(HTTP_GET, "/oauth/jwks", false, handler, &h_b), 0);
	assert_int_equal(http_route_add(HTTP_GET, "/oauth/keys/", true, handler, &h_c), 0);
	assert_int_equal(http_route_add(HTTP_POST, "/oauth/token", false, handler, &h_d), 0);

	assert_non_null(http_route_lookup("/oauth/jwks", HTTP_GET, &allowed, &arg));
	assert_ptr_equal(arg, &h_b);
	assert_non_null(http_route_lookup("/oauth/keys/k1", HTTP_GET, &allowed, &arg));
	assert_ptr_equal(arg, &h_c);
	assert_non_null(http_route_lookup("/oauth/other", HTTP_GET, &allowed, &arg));
	assert_ptr_equal(arg, &h_a);
	assert_non_null(http_route_lookup("/oauth/token", HTTP_POST, &allowed, &arg));
	assert_ptr_equal(arg, &h_d);
	/* a prefix is a byte prefix, not a path segment: "/oauth" is not under "/oauth/" */
	assert_null(http_route_lookup("/oauth", HTTP_GET, &allowed, &arg));
	assert_int_equal(allowed, 0);
	assert_null(http_route_lookup("/", HTTP_GET, &allowed, &arg));
	assert_int_equal(allowed, 0);
}

static void test_route_lookup_gives_405_methods_and_head_falls_back_to_get(void **state)
{
	unsigned allowed;
	void *arg;

	(void)state;
	assert_int_equal(http_route_add(HTTP_GET, "/healthz", false, handler, &h_a), 0);
	assert_int_equal(http_route_add(HTTP_POST, "/oauth/token", false, handler, &h_b), 0);

	assert_null(http_route_lookup("/healthz", HTTP_DELETE, &allowed, &arg));
	assert_int_equal(allowed, HTTP_GET | HTTP_HEAD);
	assert_non_null(http_route_lookup("/healthz", HTTP_HEAD, &allowed, &arg));
	assert_ptr_equal(arg, &h_a);
	/* an exact route for one method hides nothing else: GET of a POST-only path is 405 */
	assert_null(http_route_lookup("/oauth/token", HTTP_GET, &allowed, &arg));
	assert_int_equal(allowed, HTTP_POST);
	assert_null(http_route_lookup("/oauth/token", HTTP_HEAD, &allowed, &arg));
	assert_int_equal(allowed, HTTP_POST);
}

/* ---- histograms and families ---- */

static void test_histogram_bucket_bounds_are_inclusive_and_count_is_the_sum(void **state)
{
	uint64_t b0[STATS_HIST_BOUNDS + 1], b1[STATS_HIST_BOUNDS + 1], c0, c1, s0, s1;
	const uint64_t *bounds = stats_hist_bounds();

	(void)state;
	for (size_t i = 1; i < STATS_HIST_BOUNDS; i++)
		assert_true(bounds[i - 1] < bounds[i]);
	stats_hist_read(STH_HTTP_REQUEST, b0, &c0, &s0);
	stats_observe_us(STH_HTTP_REQUEST, 0);
	stats_observe_us(STH_HTTP_REQUEST, bounds[0]);	   /* le = bound: first bucket */
	stats_observe_us(STH_HTTP_REQUEST, bounds[0] + 1); /* second */
	stats_observe_us(STH_HTTP_REQUEST, bounds[STATS_HIST_BOUNDS - 1] + 1); /* +Inf */
	stats_observe_us((enum stats_hist_id)STH_COUNT, 5);		       /* ignored */
	stats_hist_read(STH_HTTP_REQUEST, b1, &c1, &s1);
	assert_true(b1[0] - b0[0] == 2);
	assert_true(b1[1] - b0[1] == 1);
	assert_true(b1[STATS_HIST_BOUNDS] - b0[STATS_HIST_BOUNDS] == 1);
	assert_true(c1 - c0 == 4);
	assert_true(s1 - s0 == 2 * bounds[0] + 1 + bounds[STATS_HIST_BOUNDS - 1] + 1);
	/* the other histogram did not move */
	stats_hist_read(STH_SIP_REQUEST, b1, &c1, &s1);
	assert_true(c1 == 0);
}

static void test_family_counts_per_label_set_and_ignores_out_of_range(void **state)
{
	size_t n;
	const char *const *labels = stats_family_labels(SF_HTTP_RESPONSES, &n);
	uint64_t before[STATS_MAX_LABEL_SETS];

	(void)state;
	assert_int_equal(n, 5);
	assert_string_equal(labels[1], "class=\"2xx\"");
	for (unsigned i = 0; i < n; i++)
		before[i] = stats_family_get(SF_HTTP_RESPONSES, i);
	stats_family_inc(SF_HTTP_RESPONSES, 3);
	stats_family_inc(SF_HTTP_RESPONSES, 3);
	stats_family_inc(SF_HTTP_RESPONSES, 5);	  /* no such label set */
	stats_family_inc(SF_HTTP_RESPONSES, 999); /* no such label set */
	for (unsigned i = 0; i < n; i++)
		assert_true(stats_family_get(SF_HTTP_RESPONSES, i) - before[i] == (i == 3 ? 2 : 0));
	assert_true(stats_family_get(SF_HTTP_RESPONSES, 5) == 0);
}

/* rtcauth_authentications_total: a row of results per mechanism, counted
 * by stats_auth(mechanism, result). */
static void test_authentications_family_by_mechanism_and_result(void **state)
{
	size_t n;
	const char *const *labels = stats_family_labels(SF_AUTHENTICATIONS, &n);
	uint64_t ok0 = stats_family_get(SF_AUTHENTICATIONS, STATS_AUTH_OK);
	uint64_t locked0 = stats_family_get(SF_AUTHENTICATIONS, STATS_AUTH_LOCKED);

	(void)state;
	assert_int_equal(n, STATS_MECH_COUNT * STATS_AUTH_RESULT_COUNT);
	assert_string_equal(labels[STATS_AUTH_OK], "mechanism=\"digest\",result=\"ok\"");
	assert_string_equal(labels[STATS_AUTH_UNAVAILABLE],
			    "mechanism=\"digest\",result=\"unavailable\"");
	stats_auth(STATS_MECH_DIGEST, STATS_AUTH_OK);
	stats_auth(STATS_MECH_DIGEST, STATS_AUTH_LOCKED);
	stats_auth(STATS_MECH_DIGEST, STATS_AUTH_LOCKED);
	assert_true(stats_family_get(SF_AUTHENTICATIONS, STATS_AUTH_OK) - ok0 == 1);
	assert_true(stats_family_get(SF_AUTHENTICATIONS, STATS_AUTH_LOCKED) - locked0 == 2);
}

/* ---- metrics text ---- */

static uint64_t gauge_42(void)
{
	return 42;
}

static int metrics_teardown(void **state)
{
	(void)state;
	metrics_gauges_clear();
	return 0;
}

/* Value of the sample line that starts with "name " or "name{...} ". */
static bool sample(const char *text, const char *head, uint64_t *v)
{
	const char *p = text;
	size_t hl = strlen(head);

	while ((p = strstr(p, head)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[hl] == ' ') {
			*v = strtoull(p + hl + 1, NULL, 10);
			return true;
		}
		p += hl;
	}
	return false;
}

static void test_metrics_text_is_prometheus_0_0_4(void **state)
{
	regex_t rx;
	size_t len = 0;
	char *text, *line, *save = NULL;
	int samples = 0, comments = 0;

	(void)state;
	assert_int_equal(metrics_gauge_add("rtcauth_test_gauge", "A test gauge", gauge_42), 0);
	assert_int_equal(metrics_gauge_add("rtcauth_test_gauge", "Again", gauge_42), -1);
	stats_inc(ST_SIP_RX);
	text = metrics_render(&len);
	assert_non_null(text);
	assert_int_equal(strlen(text), len);
	assert_true(len > 0 && text[len - 1] == '\n');
	assert_int_equal(
	    regcomp(&rx,
		    "^[a-zA-Z_:][a-zA-Z0-9_:]*(\\{[a-zA-Z_][a-zA-Z0-9_]*=\"[^\"]*\"(,[a-zA-"
		    "Z_][a-zA-Z0-9_]*=\"[^\"]*\")*\\})? [0-9]+(\\.[0-9]+)?$",
		    REG_EXTENDED | REG_NOSUB),
	    0);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#') {
			assert_true(strncmp(line, "# HELP ", 7) == 0 ||
				    strncmp(line, "# TYPE ", 7) == 0);
			comments++;
			continue;
		}
		if (regexec(&rx, line, 0, NULL, 0) != 0)
			fail_msg("not a sample line: %s", line);
		samples++;
	}
	regfree(&rx);
	free(text);
	assert_true(samples > ST_COUNT + 5 + 2 * (STATS_HIST_BOUNDS + 3));
	assert_true(comments >= 2 * (ST_COUNT + 1 + 2));

	text = metrics_render(&len);
	assert_non_null(text);
	{
		uint64_t v;
		assert_true(sample(text, "rtcauth_test_gauge", &v) && v == 42);
		assert_non_null(strstr(text, "# TYPE rtcauth_test_gauge gauge\n"));
		assert_true(sample(text, "rtcauth_sip_rx_total", &v) && v >= 1);
		assert_non_null(strstr(text, "# TYPE rtcauth_sip_rx_total counter\n"));
		assert_non_null(
		    strstr(text, "# HELP rtcauth_sip_rx_total SIP messages received\n"));
		assert_true(sample(text, "rtcauth_http_responses_total{class=\"4xx\"}", &v));
	}
	free(text);
}

static void test_metrics_histogram_is_cumulative_with_exact_bounds(void **state)
{
	char *text;
	size_t len;
	uint64_t prev = 0, v, count, inf;
	const uint64_t *bounds = stats_hist_bounds();
	const char *name = stats_hist_name(STH_SIP_REQUEST);
	char head[160];
	static const char *const les[] = {"0.00005", "0.0001", "0.00025", "0.0005", "0.001",
					  "0.0025",  "0.005",  "0.01",	  "0.025",  "0.05",
					  "0.1",     "0.25",   "0.5",	  "1",	    "2.5"};

	(void)state;
	stats_observe_us(STH_SIP_REQUEST, 10);
	stats_observe_us(STH_SIP_REQUEST, 3000);
	stats_observe_us(STH_SIP_REQUEST, 10000000);
	text = metrics_render(&len);
	assert_non_null(text);
	snprintf(head, sizeof(head), "# TYPE %s histogram\n", name);
	assert_non_null(strstr(text, head));
	/* exact decimal seconds, no float noise */
	snprintf(head, sizeof(head), "%s_bucket{le=\"0.00005\"}", name);
	assert_true(sample(text, head, &v));
	snprintf(head, sizeof(head), "%s_bucket{le=\"2.5\"}", name);
	assert_true(sample(text, head, &v));
	snprintf(head, sizeof(head), "%s_bucket{le=\"1\"}", name);
	assert_true(sample(text, head, &v));
	assert_int_equal(sizeof(les) / sizeof(les[0]), STATS_HIST_BOUNDS);
	assert_true(bounds[0] == 50 && bounds[STATS_HIST_BOUNDS - 1] == 2500000);
	for (size_t i = 0; i < STATS_HIST_BOUNDS; i++) {
		snprintf(head, sizeof(head), "%s_bucket{le=\"%s\"}", name, les[i]);
		if (!sample(text, head, &v))
			fail_msg("no bucket line %s", head);
		assert_true(v >= prev);
		prev = v;
	}
	snprintf(head, sizeof(head), "%s_bucket{le=\"+Inf\"}", name);
	assert_true(sample(text, head, &inf));
	snprintf(head, sizeof(head), "%s_count", name);
	assert_true(sample(text, head, &count));
	assert_true(inf == count && inf >= prev && count - prev == 1 && count >= 3);
	snprintf(head, sizeof(head), "%s_sum 10.00301\n", name);
	assert_non_null(strstr(text, head));
	free(text);
}

/* ---- [http] config ---- */

static int write_conf(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fputs("[server]\ndomain = example.test\nfqdn = localhost\nstate_dir = /tmp/st\n", f);
	fputs(text, f);
	return fclose(f);
}

static void test_config_http_defaults_follow_the_sip_certificate(void **state)
{
	char dir[] = "/tmp/rtcauth-http-XXXXXX", path[PATH_MAX], err[512];
	struct config *cfg = calloc(1, sizeof(*cfg));

	(void)state;
	assert_non_null(cfg);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/rtcauth.conf", dir);
	assert_int_equal(write_conf(path, "[sip]\ntls_cert = /etc/c.pem\ntls_key = /etc/k.pem\n"),
			 0);
	assert_int_equal(config_load(path, cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg->n_http_listen, 1);
	assert_string_equal(cfg->http_listen[0].host, "0.0.0.0");
	assert_int_equal(cfg->http_listen[0].port, 8443);
	assert_string_equal(cfg->http_cert, "/etc/c.pem");
	assert_string_equal(cfg->http_key, "/etc/k.pem");
	assert_int_equal(cfg->http_max_header_size, 16384);
	assert_int_equal(cfg->http_max_body_size, 65536);
	assert_int_equal(cfg->http_timeout, 30);

	assert_int_equal(write_conf(path, "[http]\nlisten = [::1]:9443\nlisten = *:9444\n"
					  "cert = web.crt\nkey = web.key\ntimeout = 1m\n"
					  "max_body_size = 1M\nmax_header_size = 8K\n"),
			 0);
	assert_int_equal(config_load(path, cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg->n_http_listen, 2);
	assert_string_equal(cfg->http_listen[0].host, "::1");
	assert_int_equal(cfg->http_listen[0].kind, TRANSPORT_TLS);
	assert_string_equal(cfg->http_listen[1].host, "*");
	assert_int_equal(cfg->http_listen[1].port, 9444);
	assert_int_equal(cfg->http_timeout, 60);
	assert_int_equal(cfg->http_max_body_size, 1024 * 1024);
	assert_int_equal(cfg->http_max_header_size, 8192);
	assert_true(strncmp(cfg->http_cert, dir, strlen(dir)) == 0);
	assert_string_equal(cfg->http_cert + strlen(dir), "/web.crt");
	/* the state-derived SIP pair is unchanged */
	assert_string_equal(cfg->tls_cert, "/tmp/st/tls/server.crt");

	unlink(path);
	rmdir(dir);
	free(cfg);
}

static void expect_error(const char *text, const char *want)
{
	char dir[] = "/tmp/rtcauth-http-XXXXXX", path[PATH_MAX], err[512];
	struct config *cfg = calloc(1, sizeof(*cfg));

	assert_non_null(cfg);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/rtcauth.conf", dir);
	assert_int_equal(write_conf(path, text), 0);
	assert_int_equal(config_load(path, cfg, err, sizeof(err)), -1);
	if (!strstr(err, want))
		fail_msg("error \"%s\" lacks \"%s\"", err, want);
	unlink(path);
	rmdir(dir);
	free(cfg);
}

static void test_config_http_bad_values_name_file_and_line(void **state)
{
	(void)state;
	expect_error("[http]\nlisten = 127.0.0.1\n",
		     "rtcauth.conf:6: [http] listen = '127.0.0.1' : expected ADDRESS:PORT");
	expect_error("[http]\nlisten = tls:127.0.0.1:443\n", "rtcauth.conf:6: [http] listen");
	expect_error("[http]\nlisten = ::1:443\n", "rtcauth.conf:6: [http] listen");
	expect_error("[http]\nlisten = localhost:443\n", "rtcauth.conf:6: [http] listen");
	expect_error("[http]\nlisten = 127.0.0.1:65536\n", "rtcauth.conf:6: [http] listen");
	expect_error("[http]\nlisten = 127.0.0.1:8443\nlisten = 127.0.0.1:8443\n",
		     "rtcauth.conf:7: [http] listen = '127.0.0.1:8443' : listed twice");
	expect_error("[http]\ntimeout = 0\n", "rtcauth.conf:6: [http] timeout = '0' : must be");
	expect_error("[http]\nmax_body_size = 100\n", "rtcauth.conf:6: [http] max_body_size");
	expect_error("[http]\nmax_header_size = lots\n",
		     "rtcauth.conf:6: [http] max_header_size = 'lots' : expected bytes");
	expect_error("[http]\nkey = /k.pem\n", "rtcauth.conf:6: [http] cert and key go together");
	expect_error("[http]\nlisten =\n", "rtcauth.conf:6: [http] listen has no value");
	expect_error("[htp]\n", "unknown section [htp]; did you mean [http]?");
}

static void test_config_parse_http_listen_forms(void **state)
{
	struct listen_addr la;

	(void)state;
	assert_int_equal(config_parse_http_listen("10.0.0.1:443", &la), 0);
	assert_string_equal(la.host, "10.0.0.1");
	assert_int_equal(la.port, 443);
	assert_int_equal(config_parse_http_listen("[2001:db8::1]:8443", &la), 0);
	assert_string_equal(la.host, "2001:db8::1");
	assert_int_equal(config_parse_http_listen("[::1:443", &la), -1);
	assert_int_equal(config_parse_http_listen("[::1]443", &la), -1);
	assert_int_equal(config_parse_http_listen(":443", &la), -1);
	assert_int_equal(config_parse_http_listen("1.2.3.4:", &la), -1);
	assert_int_equal(config_parse_http_listen("1.2.3.4:0", &la), -1);
	assert_int_equal(config_parse_http_listen("1.2.3.4:44x", &la), -1);
	assert_int_equal(config_parse_http_listen("[*]:443", &la), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_route_add_rejects_bad_paths_and_overlapping_methods,
				      routes_teardown),
	    cmocka_unit_test_teardown(test_route_table_is_bounded, routes_teardown),
	    cmocka_unit_test_teardown(test_route_lookup_exact_beats_prefix_and_longest_prefix_wins,
				      routes_teardown),
	    cmocka_unit_test_teardown(
		test_route_lookup_gives_405_methods_and_head_falls_back_to_get, routes_teardown),
	    cmocka_unit_test(test_histogram_bucket_bounds_are_inclusive_and_count_is_the_sum),
	    cmocka_unit_test(test_family_counts_per_label_set_and_ignores_out_of_range),
	    cmocka_unit_test(test_authentications_family_by_mechanism_and_result),
	    cmocka_unit_test_teardown(test_metrics_text_is_prometheus_0_0_4, metrics_teardown),
	    cmocka_unit_test(test_metrics_histogram_is_cumulative_with_exact_bounds),
	    cmocka_unit_test(test_config_http_defaults_follow_the_sip_certificate),
	    cmocka_unit_test(test_config_http_bad_values_name_file_and_line),
	    cmocka_unit_test(test_config_parse_http_listen_forms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
