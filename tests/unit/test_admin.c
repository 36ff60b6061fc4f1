/*
 * Unit tests for the admin socket's request handler (src/daemon/admin.h):
 * malformed requests get {"ok":false,...}; status, reg.list and reg.del work
 * on a location table filled here (reg.del queues store deletes through the
 * write-behind on a temporary database); lockout.list and lockout.clear use
 * the runtime handed to admin_start, which also listens on a socket in a
 * temporary directory for one end-to-end request.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "auth/lockout.h"
#include "core/clock.h"
#include "daemon/admin.h"
#include "sip/location.h"
#include "store/store.h"
#include "store/wb.h"

static struct {
	char dir[64];
	char db[96];
	char sock[96];
	struct event_base *base;
	struct lockout *lockout;
	struct sip_runtime rt;
} g;

static const struct sip_runtime *get_runtime(void)
{
	return &g.rt;
}

static int group_setup(void **state)
{
	static const struct lockout_policy pol = {
	    .user_failures = 3,
	    .user_window = 300,
	    .user_duration = 300,
	    .user_max = 3600,
	    .source_failures = 100,
	    .source_window = 300,
	    .source_duration = 300,
	};
	struct admin_ctx ctx = {get_runtime, 0};
	char err[256];

	(void)state;
	snprintf(g.dir, sizeof(g.dir), "/tmp/rtcauth-admin.XXXXXX");
	if (!mkdtemp(g.dir))
		return -1;
	snprintf(g.db, sizeof(g.db), "%s/rtcauth.db", g.dir);
	snprintf(g.sock, sizeof(g.sock), "%s/admin.sock", g.dir);
	if (location_init(4) != 0)
		return -1;
	if (wb_start(g.db, 20, err, sizeof(err)) != 0) {
		fprintf(stderr, "wb_start: %s\n", err);
		return -1;
	}
	g.lockout = lockout_new(&pol);
	if (!g.lockout)
		return -1;
	g.rt.lockout = g.lockout;
	if (evthread_use_pthreads() != 0)
		return -1;
	g.base = event_base_new();
	if (!g.base)
		return -1;
	ctx.started = clock_wall_s() - 5;
	if (admin_start(g.base, g.sock, &ctx, err, sizeof(err)) != 0) {
		fprintf(stderr, "admin_start: %s\n", err);
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	char p[128];

	(void)state;
	admin_stop();
	event_base_free(g.base);
	lockout_free(g.lockout);
	wb_stop();
	location_shutdown();
	unlink(g.db);
	snprintf(p, sizeof(p), "%s-wal", g.db);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", g.db);
	unlink(p);
	unlink(g.sock);
	rmdir(g.dir);
	libevent_global_shutdown();
	return 0;
}

/* Each test starts with no bindings and no lockouts. */
static int setup(void **state)
{
	(void)state;
	location_expire(INT64_MAX, NULL, NULL);
	lockout_clear(g.lockout, STR_LIT("*"));
	return 0;
}

/* Send one request line; the reply must be one JSON object on one line. */
static json_t *ask_len(const char *line, size_t len)
{
	char *rep = admin_handle_line(line, len);
	json_error_t jerr;
	json_t *j;
	size_t n;

	assert_non_null(rep);
	n = strlen(rep);
	assert_true(n >= 2);
	assert_int_equal(rep[n - 1], '\n');
	assert_ptr_equal(strchr(rep, '\n'), rep + n - 1);
	j = json_loads(rep, 0, &jerr);
	if (!j)
		fail_msg("reply is not JSON: %s (%s)", rep, jerr.text);
	free(rep);
	assert_true(json_is_object(j));
	assert_true(json_is_boolean(json_object_get(j, "ok")));
	return j;
}

static json_t *ask(const char *line)
{
	return ask_len(line, strlen(line));
}

static bool ok_of(json_t *j)
{
	return json_is_true(json_object_get(j, "ok"));
}

static void assert_bad_request(const char *line, size_t len)
{
	json_t *j = ask_len(line, len);

	assert_false(ok_of(j));
	assert_string_equal(json_string_value(json_object_get(j, "code")), "bad_request");
	assert_non_null(json_string_value(json_object_get(j, "error")));
	json_decref(j);
}

/* location_update needs a callback: put through one. */
static int put_cb(void *ctx, struct location_aor *rec)
{
	return location_aor_put(rec, ctx);
}

static void put_b(const char *aor, const char *contact_uri, int64_t expires, const char *ua)
{
	struct location_binding *b = calloc(1, sizeof(*b));

	assert_non_null(b);
	snprintf(b->aor, sizeof(b->aor), "%s", aor);
	snprintf(b->key, sizeof(b->key), "%s", contact_uri);
	snprintf(b->contact_uri, sizeof(b->contact_uri), "%s", contact_uri);
	snprintf(b->contact, sizeof(b->contact), "<%s>;expires=3600", contact_uri);
	b->reg_id = -1;
	snprintf(b->call_id, sizeof(b->call_id), "cid-%s", contact_uri);
	b->cseq = 7;
	snprintf(b->user_agent, sizeof(b->user_agent), "%s", ua);
	b->expires = expires;
	b->updated = clock_wall_s();
	b->flow.transport = 0; /* udp */
	b->flow.addr.in.sin_family = AF_INET;
	b->flow.addr.in.sin_port = htons(5062);
	b->flow.addr.in.sin_addr.s_addr = htonl(0xc0000201); /* 192.0.2.1 */
	b->flow.addrlen = sizeof(struct sockaddr_in);
	assert_int_equal(location_update(str_cstr(aor), clock_wall_s(), put_cb, b), 0);
	free(b);
}

/* ---- malformed requests ---- */

static void test_admin_rejects_bad_json_missing_cmd_and_unknown_cmd(void **state)
{
	static const char with_nul[] = "{\"cmd\":\"status\"}\0trailing";

	(void)state;
	assert_bad_request("", 0);
	assert_bad_request("not json", 8);
	assert_bad_request("{\"cmd\":\"status\"", 15);
	assert_bad_request("{\"cmd\":\"status\"} {}", 19);
	assert_bad_request(with_nul, sizeof(with_nul) - 1);
	assert_bad_request("{}", 2);
	assert_bad_request("[\"status\"]", 10);
	assert_bad_request("\"status\"", 8);
	assert_bad_request("{\"command\":\"status\"}", 20);
	assert_bad_request("{\"cmd\":5}", 9);
	assert_bad_request("{\"cmd\":null}", 12);
	assert_bad_request("{\"cmd\":[\"status\"]}", 18);
	assert_bad_request("{\"cmd\":\"STATUS\"}", 16);
	assert_bad_request("{\"cmd\":\"reg.lis\"}", 17);
	assert_bad_request("{\"cmd\":\"\"}", 10);
	assert_bad_request("{\"cmd\":\"user.passwd\"}", 21);
}

static void test_admin_handles_a_line_without_its_newline_only(void **state)
{
	/* the caller strips the LF; a CR left over is JSON whitespace */
	json_t *j = ask("{\"cmd\":\"status\"}\r");

	(void)state;
	assert_true(ok_of(j));
	json_decref(j);
}

/* ---- status ---- */

static void test_admin_status_reports_registrations_and_counters(void **state)
{
	json_t *j, *c;
	int64_t now = clock_wall_s();

	(void)state;
	put_b("sip:alice@example.com", "sip:alice@192.0.2.1", now + 600, "ua");
	put_b("sip:alice@example.com", "sip:alice@192.0.2.2", now + 600, "ua");
	put_b("sip:bob@example.com", "sip:bob@192.0.2.3", now + 600, "ua");
	j = ask("{\"cmd\":\"status\"}");
	assert_true(ok_of(j));
	assert_int_equal(json_integer_value(json_object_get(j, "registrations")), 3);
	assert_true(json_integer_value(json_object_get(j, "uptime")) >= 5);
	assert_true(json_is_string(json_object_get(j, "version")));
	assert_true(json_is_integer(json_object_get(j, "workers")));
	c = json_object_get(j, "counters");
	assert_true(json_is_object(c));
	assert_true(json_is_integer(json_object_get(c, "sip_rx")));
	assert_true(json_is_integer(json_object_get(c, "auth_fail")));
	assert_true(json_is_integer(json_object_get(c, "store_writes")));
	assert_true(json_is_integer(json_object_get(c, "store_write_failures")));
	assert_true(json_is_integer(json_object_get(c, "store_queue")));
	assert_true(json_is_integer(json_object_get(c, "connections")));
	json_decref(j);
}

/* ---- reg.list ---- */

static json_t *find_binding(json_t *arr, const char *contact_uri)
{
	size_t i;
	json_t *b;
	char want[600];

	snprintf(want, sizeof(want), "<%s>;expires=3600", contact_uri);
	json_array_foreach(arr, i, b)
	{
		if (strcmp(json_string_value(json_object_get(b, "contact")), want) == 0)
			return b;
	}
	return NULL;
}

static void test_admin_reg_list_shows_live_bindings_with_their_fields(void **state)
{
	int64_t now = clock_wall_s();
	json_t *j, *arr, *b;

	(void)state;
	put_b("sip:alice@example.com", "sip:alice@192.0.2.1", now + 600, "Linphone/5.2");
	put_b("sip:bob@example.com", "sip:bob@192.0.2.3", now + 300, "Zoiper");
	j = ask("{\"cmd\":\"reg.list\"}");
	assert_true(ok_of(j));
	arr = json_object_get(j, "bindings");
	assert_true(json_is_array(arr));
	assert_int_equal(json_array_size(arr), 2);
	b = find_binding(arr, "sip:alice@192.0.2.1");
	assert_non_null(b);
	assert_string_equal(json_string_value(json_object_get(b, "aor")), "sip:alice@example.com");
	assert_string_equal(json_string_value(json_object_get(b, "source")), "192.0.2.1:5062");
	assert_string_equal(json_string_value(json_object_get(b, "transport")), "udp");
	assert_string_equal(json_string_value(json_object_get(b, "user_agent")), "Linphone/5.2");
	assert_string_equal(json_string_value(json_object_get(b, "call_id")),
			    "cid-sip:alice@192.0.2.1");
	assert_int_equal(json_integer_value(json_object_get(b, "cseq")), 7);
	assert_int_equal(json_integer_value(json_object_get(b, "reg_id")), -1);
	assert_true(json_integer_value(json_object_get(b, "expires")) > 590);
	assert_true(json_integer_value(json_object_get(b, "expires")) <= 600);
	json_decref(j);
}

static void test_admin_reg_list_filters_by_aor(void **state)
{
	int64_t now = clock_wall_s();
	json_t *j, *arr;

	(void)state;
	put_b("sip:alice@example.com", "sip:alice@192.0.2.1", now + 600, "ua");
	put_b("sip:alice@example.com", "sip:alice@192.0.2.2", now + 600, "ua");
	put_b("sip:bob@example.com", "sip:bob@192.0.2.3", now + 600, "ua");
	j = ask("{\"cmd\":\"reg.list\",\"aor\":\"sip:alice@example.com\"}");
	arr = json_object_get(j, "bindings");
	assert_int_equal(json_array_size(arr), 2);
	assert_non_null(find_binding(arr, "sip:alice@192.0.2.2"));
	assert_null(find_binding(arr, "sip:bob@192.0.2.3"));
	json_decref(j);
	j = ask("{\"cmd\":\"reg.list\",\"aor\":\"sip:carol@example.com\"}");
	assert_true(ok_of(j));
	assert_int_equal(json_array_size(json_object_get(j, "bindings")), 0);
	json_decref(j);
}

static void test_admin_reg_list_omits_expired_bindings(void **state)
{
	int64_t now = clock_wall_s();
	json_t *j;

	(void)state;
	put_b("sip:alice@example.com", "sip:alice@192.0.2.1", now + 600, "ua");
	/* already expired: location_update drops it from the AOR on the next update,
	 * but a binding of another AOR expiring in a moment must not be listed */
	put_b("sip:bob@example.com", "sip:bob@192.0.2.3", now + 1, "ua");
	sleep(2);
	j = ask("{\"cmd\":\"reg.list\"}");
	assert_int_equal(json_array_size(json_object_get(j, "bindings")), 1);
	json_decref(j);
}

/*
 * Regression (fixed in d19ed19; was admin.c list_one): json_pack("{...s:s...}") fails
 * on a string that is not valid UTF-8 and returns NULL; json_array_append_new
 * then silently drops the binding. A client registering with User-Agent
 * bytes "\xff\xfe" (any non-UTF-8 value from the wire) is invisible to
 * `rtcauthctl reg list`. The registrar's snprintf into user_agent[128] can
 * also cut a valid multi-byte character in two. Expected: the binding is
 * listed (value escaped or replaced).
 */
static void test_admin_reg_list_shows_a_binding_with_a_non_utf8_user_agent(void **state)
{
	int64_t now = clock_wall_s();
	json_t *j;

	(void)state;
	put_b("sip:alice@example.com", "sip:alice@192.0.2.1", now + 600, "Bad\xff\xfe UA");
	j = ask("{\"cmd\":\"reg.list\"}");
	assert_int_equal(json_array_size(json_object_get(j, "bindings")), 1);
	json_decref(j);
}

/* ---- reg.del ---- */

static int count_cb(void *ctx, const struct store_reg *r)
{
	(void)r;
	(*(int *)ctx)++;
	return 0;
}

static int store_count(const char *aor)
{
	struct store *s = NULL;
	char err[256];
	int n = 0;

	assert_int_equal(store_open(g.db, 0, 2000, &s, err, sizeof(err)), STORE_OK);
	assert_int_equal(store_reg_list(s, aor, count_cb, &n), STORE_OK);
	store_close(s);
	return n;
}

static void test_admin_reg_del_requires_an_aor(void **state)
{
	(void)state;
	assert_bad_request("{\"cmd\":\"reg.del\"}", 17);
	assert_bad_request("{\"cmd\":\"reg.del\",\"aor\":5}", 25);
}

static void test_admin_reg_del_removes_one_contact_or_all(void **state)
{
	int64_t now = clock_wall_s();
	json_t *j;

	(void)state;
	put_b("sip:alice@example.com", "sip:alice@192.0.2.1", now + 600, "ua");
	put_b("sip:alice@example.com", "sip:alice@192.0.2.2", now + 600, "ua");
	put_b("sip:alice@example.com", "sip:alice@192.0.2.4", now + 600, "ua");
	put_b("sip:bob@example.com", "sip:bob@192.0.2.3", now + 600, "ua");
	/* by contact URI */
	j = ask("{\"cmd\":\"reg.del\",\"aor\":\"sip:alice@example.com\","
		"\"contact\":\"sip:alice@192.0.2.1\"}");
	assert_true(ok_of(j));
	assert_int_equal(json_integer_value(json_object_get(j, "removed")), 1);
	json_decref(j);
	assert_int_equal(location_count(), 3);
	/* by the Contact value as received */
	j = ask("{\"cmd\":\"reg.del\",\"aor\":\"sip:alice@example.com\","
		"\"contact\":\"<sip:alice@192.0.2.4>;expires=3600\"}");
	assert_int_equal(json_integer_value(json_object_get(j, "removed")), 1);
	json_decref(j);
	/* a contact that is not there, or of another AOR */
	j = ask("{\"cmd\":\"reg.del\",\"aor\":\"sip:alice@example.com\","
		"\"contact\":\"sip:bob@192.0.2.3\"}");
	assert_true(ok_of(j));
	assert_int_equal(json_integer_value(json_object_get(j, "removed")), 0);
	json_decref(j);
	/* every binding of the AOR */
	j = ask("{\"cmd\":\"reg.del\",\"aor\":\"sip:alice@example.com\"}");
	assert_int_equal(json_integer_value(json_object_get(j, "removed")), 1);
	json_decref(j);
	assert_int_equal(location_count(), 1);
	j = ask("{\"cmd\":\"reg.del\",\"aor\":\"sip:nobody@example.com\"}");
	assert_true(ok_of(j));
	assert_int_equal(json_integer_value(json_object_get(j, "removed")), 0);
	json_decref(j);
	assert_int_equal(location_count(), 1);
}

struct audit_find {
	int n;
	char detail[512];
};

static int audit_cb(void *ctx, const struct store_audit *a)
{
	struct audit_find *f = ctx;
	if (strcmp(a->action, "reg.del") == 0 && strcmp(a->target, "sip:dave@example.com") == 0) {
		if (f->n++ == 0)
			snprintf(f->detail, sizeof(f->detail), "%s", a->detail);
	}
	return 0;
}

static void test_admin_reg_del_deletes_from_the_store_and_audits(void **state)
{
	int64_t now = clock_wall_s();
	struct store_reg r;
	struct audit_find af = {0};
	struct store *s = NULL;
	char err[256];
	json_t *j;

	(void)state;
	for (int i = 1; i <= 3; i++) {
		char uri[64];
		snprintf(uri, sizeof(uri), "sip:dave@192.0.2.%d", i);
		put_b("sip:dave@example.com", uri, now + 600, "ua");
		memset(&r, 0, sizeof(r));
		snprintf(r.aor, sizeof(r.aor), "sip:dave@example.com");
		snprintf(r.binding_key, sizeof(r.binding_key), "%s", uri);
		r.reg_id = -1;
		r.expires = now + 600;
		wb_reg_put(&r);
	}
	wb_sync();
	assert_int_equal(store_count("sip:dave@example.com"), 3);
	j = ask("{\"cmd\":\"reg.del\",\"aor\":\"sip:dave@example.com\","
		"\"contact\":\"sip:dave@192.0.2.2\"}");
	assert_int_equal(json_integer_value(json_object_get(j, "removed")), 1);
	json_decref(j);
	wb_sync();
	assert_int_equal(store_count("sip:dave@example.com"), 2);
	j = ask("{\"cmd\":\"reg.del\",\"aor\":\"sip:dave@example.com\"}");
	assert_int_equal(json_integer_value(json_object_get(j, "removed")), 2);
	json_decref(j);
	wb_sync();
	assert_int_equal(store_count("sip:dave@example.com"), 0);
	assert_int_equal(store_open(g.db, 0, 2000, &s, err, sizeof(err)), STORE_OK);
	assert_int_equal(store_audit_list(s, 100, audit_cb, &af), STORE_OK);
	store_close(s);
	assert_int_equal(af.n, 2);
	assert_string_equal(af.detail, "all"); /* most recent first */
}

/*
 * Regression (fixed in d19ed19; was admin.c del_fn/do_reg_del): only the first 64 removed
 * bindings (d->gone[64]) get a wb_reg_del; the rest are removed from memory
 * but stay in the store and come back at the next start. With max_contacts
 * up to 1000 this is reachable: 70 bindings of one AOR, reg.del by AOR
 * answers removed=70 but 6 rows remain in the registrations table.
 */
static void test_admin_reg_del_of_more_than_64_bindings_deletes_all_from_the_store(void **state)
{
	int64_t now = clock_wall_s();
	struct store_reg r;
	json_t *j;

	(void)state;
	for (int i = 0; i < 70; i++) {
		char uri[64];
		snprintf(uri, sizeof(uri), "sip:erin@192.0.2.%d", i + 1);
		put_b("sip:erin@example.com", uri, now + 600, "ua");
		memset(&r, 0, sizeof(r));
		snprintf(r.aor, sizeof(r.aor), "sip:erin@example.com");
		snprintf(r.binding_key, sizeof(r.binding_key), "%s", uri);
		r.reg_id = -1;
		r.expires = now + 600;
		wb_reg_put(&r);
	}
	wb_sync();
	assert_int_equal(store_count("sip:erin@example.com"), 70);
	j = ask("{\"cmd\":\"reg.del\",\"aor\":\"sip:erin@example.com\"}");
	assert_int_equal(json_integer_value(json_object_get(j, "removed")), 70);
	json_decref(j);
	wb_sync();
	assert_int_equal(location_count(), 0);
	assert_int_equal(store_count("sip:erin@example.com"), 0);
}

/* ---- lockouts ---- */

static uint64_t mono_s(void)
{
	return clock_mono_ms() / 1000;
}

static json_t *find_entry(json_t *arr, const char *kind, const char *key)
{
	size_t i;
	json_t *e;

	json_array_foreach(arr, i, e)
	{
		if (strcmp(json_string_value(json_object_get(e, "kind")), kind) == 0 &&
		    strcmp(json_string_value(json_object_get(e, "key")), key) == 0)
			return e;
	}
	return NULL;
}

static void test_admin_lockout_list_shows_locked_users_and_sources(void **state)
{
	json_t *j, *arr, *e;

	(void)state;
	j = ask("{\"cmd\":\"lockout.list\"}");
	assert_true(ok_of(j));
	assert_int_equal(json_array_size(json_object_get(j, "entries")), 0);
	json_decref(j);
	for (int i = 0; i < 3; i++)
		lockout_fail(g.lockout, STR_LIT("sip:alice@example.com"), STR_LIT("192.0.2.9"),
			     mono_s());
	lockout_fail(g.lockout, STR_LIT("sip:bob@example.com"), STR_LIT("192.0.2.9"), mono_s());
	j = ask("{\"cmd\":\"lockout.list\"}");
	assert_true(ok_of(j));
	arr = json_object_get(j, "entries");
	e = find_entry(arr, "user", "u:sip:alice@example.com");
	assert_non_null(e);
	/* lockout.c restarts the count when a lock begins: listed as locked */
	assert_int_equal(json_integer_value(json_object_get(e, "failures")), 0);
	assert_true(json_integer_value(json_object_get(e, "locked_for")) > 0);
	assert_true(json_integer_value(json_object_get(e, "locked_for")) <= 300);
	e = find_entry(arr, "user", "u:sip:bob@example.com");
	assert_non_null(e);
	assert_int_equal(json_integer_value(json_object_get(e, "failures")), 1);
	assert_int_equal(json_integer_value(json_object_get(e, "locked_for")), 0);
	e = find_entry(arr, "source", "s:192.0.2.9");
	assert_non_null(e);
	assert_int_equal(json_integer_value(json_object_get(e, "failures")), 4);
	json_decref(j);
}

static void test_admin_lockout_clear_unlocks_a_user_and_needs_a_key(void **state)
{
	uint32_t retry = 0;
	json_t *j;

	(void)state;
	assert_bad_request("{\"cmd\":\"lockout.clear\"}", 23);
	assert_bad_request("{\"cmd\":\"lockout.clear\",\"key\":1}", 31);
	for (int i = 0; i < 3; i++)
		lockout_fail(g.lockout, STR_LIT("sip:alice@example.com"), STR_LIT("192.0.2.9"),
			     mono_s());
	assert_int_equal(lockout_check(g.lockout, STR_LIT("sip:alice@example.com"),
				       STR_LIT("198.51.100.1"), mono_s(), &retry),
			 LOCKOUT_USER);
	j = ask("{\"cmd\":\"lockout.clear\",\"key\":\"sip:nobody@example.com\"}");
	assert_true(ok_of(j));
	assert_int_equal(json_integer_value(json_object_get(j, "removed")), 0);
	json_decref(j);
	/* the key as listed ("u:" user, "s:" source) */
	j = ask("{\"cmd\":\"lockout.clear\",\"key\":\"u:sip:alice@example.com\"}");
	assert_true(ok_of(j));
	assert_int_equal(json_integer_value(json_object_get(j, "removed")), 1);
	json_decref(j);
	assert_int_equal(lockout_check(g.lockout, STR_LIT("sip:alice@example.com"),
				       STR_LIT("198.51.100.1"), mono_s(), &retry),
			 LOCKOUT_NONE);
	/* the source entry is still there; "*" clears everything */
	j = ask("{\"cmd\":\"lockout.list\"}");
	assert_non_null(find_entry(json_object_get(j, "entries"), "source", "s:192.0.2.9"));
	assert_null(find_entry(json_object_get(j, "entries"), "user", "u:sip:alice@example.com"));
	json_decref(j);
	j = ask("{\"cmd\":\"lockout.clear\",\"key\":\"*\"}");
	assert_true(json_integer_value(json_object_get(j, "removed")) >= 1);
	json_decref(j);
	j = ask("{\"cmd\":\"lockout.list\"}");
	assert_int_equal(json_array_size(json_object_get(j, "entries")), 0);
	json_decref(j);
}

/* ---- the socket ---- */

static void *loop_thread(void *arg)
{
	(void)arg;
	event_base_dispatch(g.base);
	return NULL;
}

static int connect_admin(void)
{
	struct sockaddr_un sun;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", g.sock);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

/* Read until EOF (or 5 s); returns bytes read. */
static size_t read_all(int fd, char *buf, size_t cap)
{
	size_t o = 0;

	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};
		ssize_t n;
		if (poll(&p, 1, 5000) <= 0)
			fail_msg("admin socket: no answer within 5 s");
		n = read(fd, buf + o, cap - 1 - o);
		if (n < 0 && errno == ECONNRESET)
			break;
		assert_true(n >= 0);
		if (n == 0)
			break;
		o += (size_t)n;
		if (o == cap - 1)
			break;
	}
	buf[o] = '\0';
	return o;
}

static void test_admin_socket_is_private_and_answers_one_line(void **state)
{
	struct stat st;
	pthread_t t;
	char buf[8192], *big;
	int fd;
	json_t *j;

	(void)state;
	assert_int_equal(stat(g.sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(pthread_create(&t, NULL, loop_thread, NULL), 0);

	fd = connect_admin();
	assert_int_equal(write(fd, "{\"cmd\":\"status\"}\n", 17), 17);
	assert_true(read_all(fd, buf, sizeof(buf)) > 0);
	close(fd);
	assert_ptr_equal(strchr(buf, '\n'), buf + strlen(buf) - 1);
	j = json_loads(buf, 0, NULL);
	assert_non_null(j);
	assert_true(ok_of(j));
	json_decref(j);

	/* an endless line without LF is cut off, not buffered forever */
	big = malloc(6000);
	assert_non_null(big);
	memset(big, 'x', 6000);
	fd = connect_admin();
	assert_int_equal(write(fd, big, 6000), 6000);
	assert_int_equal(read_all(fd, buf, sizeof(buf)), 0);
	close(fd);
	free(big);

	event_base_loopbreak(g.base);
	pthread_join(t, NULL);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup(f, setup)
	const struct CMUnitTest tests[] = {
	    T(test_admin_rejects_bad_json_missing_cmd_and_unknown_cmd),
	    T(test_admin_handles_a_line_without_its_newline_only),
	    T(test_admin_status_reports_registrations_and_counters),
	    T(test_admin_reg_list_shows_live_bindings_with_their_fields),
	    T(test_admin_reg_list_filters_by_aor),
	    T(test_admin_reg_list_omits_expired_bindings),
	    T(test_admin_reg_list_shows_a_binding_with_a_non_utf8_user_agent),
	    T(test_admin_reg_del_requires_an_aor),
	    T(test_admin_reg_del_removes_one_contact_or_all),
	    T(test_admin_reg_del_deletes_from_the_store_and_audits),
	    T(test_admin_reg_del_of_more_than_64_bindings_deletes_all_from_the_store),
	    T(test_admin_lockout_list_shows_locked_users_and_sources),
	    T(test_admin_lockout_clear_unlocks_a_user_and_needs_a_key),
	    T(test_admin_socket_is_private_and_answers_one_line),
	};
#undef T
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
