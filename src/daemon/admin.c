/*
 * Admin socket server; see admin.h. Runs on the main thread's loop.
 * Must never return a secret: only bindings, lockout entries and counters.
 */
#include "daemon/admin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <jansson.h>

#include "auth/lockout.h"
#include "auth/sa.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/stats.h"
#include "daemon/worker.h"
#include "oauth/fetch.h"
#include "sip/location.h"
#include "store/wb.h"
#include "vault/vault.h"

#define ADMIN_LINE_MAX 4096

static struct evconnlistener *listener;
static struct admin_ctx actx;
static char sock_path[108];
static int (*oauth_reload_fn)(char *err, size_t errlen);

void admin_set_oauth_reload(int (*fn)(char *err, size_t errlen))
{
	oauth_reload_fn = fn;
}

static json_t *err_reply(const char *code, const char *msg)
{
	return json_pack("{s:b, s:s, s:s}", "ok", 0, "code", code, "error", msg);
}

static json_t *do_status(void)
{
	json_t *c = json_object();
	uint64_t w, f, q;

	for (int i = 0; i < ST_COUNT; i++)
		json_object_set_new(c, stats_name((enum stat_id)i),
				    json_integer((json_int_t)stats_get((enum stat_id)i)));
	wb_counts(&w, &f, &q);
	json_object_set_new(c, "store_writes", json_integer((json_int_t)w));
	json_object_set_new(c, "store_write_failures", json_integer((json_int_t)f));
	json_object_set_new(c, "store_queue", json_integer((json_int_t)q));
	json_object_set_new(c, "connections", json_integer((json_int_t)workers_connections()));
	return json_pack("{s:b, s:s, s:I, s:i, s:I, s:o}", "ok", 1, "version", "0.1.0", "uptime",
			 (json_int_t)(clock_wall_s() - actx.started), "workers", workers_count(),
			 "registrations", (json_int_t)location_count(), "counters", c);
}

struct list_ctx {
	json_t *arr;
	const char *aor;
	int64_t now;
};

/* A JSON string of bytes from the wire: invalid UTF-8 becomes U+FFFD, so
 * one odd User-Agent cannot hide a binding from the operator. */
static json_t *jstr(const char *s)
{
	json_t *j = json_string(s);
	char buf[LOC_CONTACT_MAX * 3 + 1];
	size_t o = 0;

	if (j)
		return j;
	for (const unsigned char *p = (const unsigned char *)s; *p && o + 4 < sizeof(buf); p++) {
		if (*p < 0x80) {
			buf[o++] = (char)*p;
		} else {
			buf[o++] = (char)0xef; /* U+FFFD */
			buf[o++] = (char)0xbf;
			buf[o++] = (char)0xbd;
		}
	}
	buf[o] = '\0';
	return json_string(buf);
}

static void list_one(void *vctx, const struct location_binding *b)
{
	struct list_ctx *lc = vctx;
	char addr[80];
	json_t *o;

	if (lc->aor && strcmp(lc->aor, b->aor) != 0)
		return;
	if (b->expires <= lc->now)
		return;
	o = json_object();
	json_object_set_new(o, "aor", jstr(b->aor));
	json_object_set_new(o, "contact", jstr(b->contact));
	json_object_set_new(o, "expires", json_integer((json_int_t)(b->expires - lc->now)));
	json_object_set_new(o, "source", jstr(sip_flow_addr(&b->flow, addr, sizeof(addr))));
	json_object_set_new(o, "transport", json_string(sip_transport_name(b->flow.transport)));
	json_object_set_new(o, "instance", jstr(b->instance));
	json_object_set_new(o, "reg_id", json_integer(b->reg_id));
	json_object_set_new(o, "user_agent", jstr(b->user_agent));
	json_object_set_new(o, "call_id", jstr(b->call_id));
	json_object_set_new(o, "cseq", json_integer((json_int_t)b->cseq));
	json_array_append_new(lc->arr, o);
}

static json_t *do_reg_list(json_t *req)
{
	struct list_ctx lc = {json_array(), json_string_value(json_object_get(req, "aor")),
			      clock_wall_s()};
	location_foreach(list_one, &lc);
	return json_pack("{s:b, s:o}", "ok", 1, "bindings", lc.arr);
}

struct del_ctx {
	const char *contact;
	int removed;
	size_t cap;
	struct location_binding *gone; /* every removed binding, for the store */
};

static int del_fn(void *vctx, struct location_aor *rec)
{
	struct del_ctx *d = vctx;
	static _Thread_local struct location_binding b;

	for (size_t i = 0; i < location_aor_count(rec);) {
		location_aor_get(rec, i, &b);
		if (d->contact && strcmp(d->contact, b.contact_uri) != 0 &&
		    strcmp(d->contact, b.contact) != 0 && strcmp(d->contact, b.key) != 0) {
			i++;
			continue;
		}
		if ((size_t)d->removed == d->cap) {
			size_t nc = d->cap ? d->cap * 2 : 16;
			struct location_binding *ng = realloc(d->gone, nc * sizeof(*ng));
			if (!ng)
				return -1; /* keep it rather than lose track of it */
			d->gone = ng;
			d->cap = nc;
		}
		d->gone[d->removed++] = b;
		location_aor_remove(rec, i);
	}
	return 0;
}

static json_t *do_reg_del(json_t *req)
{
	const char *aor = json_string_value(json_object_get(req, "aor"));
	struct del_ctx d = {0};
	json_t *r;

	if (!aor)
		return err_reply("bad_request", "reg.del needs \"aor\"");
	d.contact = json_string_value(json_object_get(req, "contact"));
	location_update(str_cstr(aor), clock_wall_s(), del_fn, &d);
	for (int i = 0; i < d.removed; i++)
		wb_reg_del(d.gone[i].aor, d.gone[i].key);
	if (d.removed)
		wb_audit("rtcauthctl", "reg.del", aor, "local", d.contact ? d.contact : "all");
	log_info("admin.reg_del", "removed=%d", d.removed);
	r = json_pack("{s:b, s:i}", "ok", 1, "removed", d.removed);
	free(d.gone);
	return r;
}

static void lockout_one(void *vctx, const struct lockout_entry *e)
{
	json_array_append_new(vctx,
			      json_pack("{s:s, s:s, s:i, s:i}", "kind",
					e->is_source ? "source" : "user", "key", e->key, "failures",
					(int)e->failures, "locked_for", (int)e->locked_for));
}

static json_t *do_lockout(json_t *req, bool clear)
{
	const struct sip_runtime *rt = actx.runtime();
	if (clear) {
		const char *key = json_string_value(json_object_get(req, "key"));
		int n;
		if (!key)
			return err_reply("bad_request", "lockout.clear needs \"key\"");
		n = lockout_clear(rt->lockout, str_cstr(key));
		char v[LOG_VAL_MAX];
		log_info("admin.lockout_clear", "key=%s removed=%d",
			 log_val(str_cstr(key), v, sizeof(v)), n);
		if (n > 0)
			wb_audit("rtcauthctl", "lockout.clear", key, "local", "");
		return json_pack("{s:b, s:i}", "ok", 1, "removed", n);
	}
	json_t *arr = json_array();
	lockout_list(rt->lockout, clock_mono_ms() / 1000, lockout_one, arr);
	return json_pack("{s:b, s:o}", "ok", 1, "entries", arr);
}

static int sa_one(void *vctx, const struct sa_info *i)
{
	json_array_append_new(
	    vctx, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:I, s:I, s:I}",
			    "opaque", i->opaque, "scheme", sa_scheme_name(i->scheme), "state",
			    i->state == SA_ESTABLISHED ? "established" : "pending", "user", i->user,
			    "instance", i->instance, "targetname", i->targetname, "version",
			    i->version, "created", (json_int_t)i->created, "expires",
			    (json_int_t)i->expires, "last_used", (json_int_t)i->last_used, "snum",
			    (json_int_t)i->snum, "cnum", (json_int_t)i->cnum_high));
	return 0;
}

/* [MS-SIPAE] security associations: list, or drop one (by opaque) or all
 * of a user's (the client signs in again at its next request). */
static json_t *do_sa(json_t *req, bool drop)
{
	const struct sip_runtime *rt = actx.runtime();
	const char *opaque = json_string_value(json_object_get(req, "opaque"));
	const char *user = json_string_value(json_object_get(req, "user"));
	json_t *arr;
	size_t n = 0;

	if (!rt->sas)
		return err_reply("unavailable", "security associations are off");
	if (!drop) {
		arr = json_array();
		sa_list(rt->sas, sa_one, arr);
		return json_pack("{s:b, s:o}", "ok", 1, "entries", arr);
	}
	if (opaque)
		n = sa_drop(rt->sas, str_cstr(opaque)) == 0 ? 1 : 0;
	else if (user)
		n = sa_drop_user(rt->sas, user);
	else
		return err_reply("bad_request", "sa.drop needs \"opaque\" or \"user\"");
	log_info("admin.sa_drop", "removed=%zu", n);
	if (n)
		wb_audit("rtcauthctl", "sa.drop", opaque ? opaque : user, "local", "");
	return json_pack("{s:b, s:i}", "ok", 1, "removed", (int)n);
}

/* rtcauthctl sends this after every signing-key or partner change. */
static json_t *do_oauth_reload(void)
{
	char err[1024];

	if (!oauth_reload_fn)
		return err_reply("unavailable", "the OAuth service is not running");
	if (oauth_reload_fn(err, sizeof(err)) != 0) {
		char v[LOG_VAL_MAX];
		log_err("admin.oauth_reload_failed", "reason=%s action=kept_old_keys",
			log_val(str_cstr(err), v, sizeof(v)));
		return err_reply("failed", err);
	}
	log_info("admin.oauth_reload", "result=ok");
	return json_pack("{s:b}", "ok", 1);
}

char *admin_handle_line(const char *line, size_t len)
{
	json_error_t jerr;
	json_t *req = json_loadb(line, len, 0, &jerr), *rep;
	const char *cmd;
	char *out, *s;

	cmd = req ? json_string_value(json_object_get(req, "cmd")) : NULL;
	if (!cmd)
		rep = err_reply("bad_request", "expected one JSON object with \"cmd\"");
	else if (strcmp(cmd, "status") == 0)
		rep = do_status();
	else if (strcmp(cmd, "reg.list") == 0)
		rep = do_reg_list(req);
	else if (strcmp(cmd, "reg.del") == 0)
		rep = do_reg_del(req);
	else if (strcmp(cmd, "lockout.list") == 0)
		rep = do_lockout(req, false);
	else if (strcmp(cmd, "lockout.clear") == 0)
		rep = do_lockout(req, true);
	else if (strcmp(cmd, "oauth.reload") == 0)
		rep = do_oauth_reload();
	else if (strcmp(cmd, "sa.list") == 0)
		rep = do_sa(req, false);
	else if (strcmp(cmd, "sa.drop") == 0)
		rep = do_sa(req, true);
	else if (strcmp(cmd, "partner.refresh") == 0)
		/* answered by client_read when the fetcher runs (deferred) */
		rep = err_reply("unavailable", "the metadata fetcher is not running");
	else if (strcmp(cmd, "cache.flush") == 0) {
		vault_cache_flush();
		rep = json_pack("{s:b}", "ok", 1);
	} else
		rep = err_reply("bad_request", "unknown command");
	json_decref(req);
	s = json_dumps(rep, JSON_COMPACT);
	json_decref(rep);
	if (!s)
		return NULL;
	out = malloc(strlen(s) + 2);
	if (out)
		sprintf(out, "%s\n", s);
	free(s);
	return out;
}

static void client_write(struct bufferevent *bev, void *arg);
static void client_event(struct bufferevent *bev, short what, void *arg);

/* ---- partner.refresh: answered when the fetch finished ----
 * The fetcher thread (oauth/fetch.h) does the work; its answer comes back on
 * this (the main) thread. rtcauthctl waits CTL_ADMIN_TIMEOUT_MS (5 s): a
 * fetch still running after REFRESH_WAIT_MS is answered "pending" (the
 * outcome then shows in the store: rtcauthctl partner show). */
#define REFRESH_WAIT_MS 4000

struct refresh {
	struct bufferevent *bev; /* NULL once answered or gone */
	struct event *timer;
	bool fetch_done;
	char name[STORE_PARTNER_NAME_MAX];
};

static void refresh_free_if_done(struct refresh *r)
{
	if (r->bev || !r->fetch_done)
		return;
	if (r->timer)
		event_free(r->timer);
	free(r);
}

/* Write rep to the client, then let the connection close itself. */
static void refresh_answer(struct refresh *r, json_t *rep)
{
	struct bufferevent *bev = r->bev;
	char *s = rep ? json_dumps(rep, JSON_COMPACT) : NULL;

	json_decref(rep);
	r->bev = NULL;
	if (r->timer)
		evtimer_del(r->timer);
	bufferevent_setcb(bev, NULL, client_write, client_event, NULL);
	if (s) {
		bufferevent_write(bev, s, strlen(s));
		bufferevent_write(bev, "\n", 1);
		free(s);
	} else {
		bufferevent_free(bev);
	}
}

static void refresh_done(void *arg, int rc, const char *error)
{
	struct refresh *r = arg;
	char v[LOG_VAL_MAX];

	r->fetch_done = true;
	char n[LOG_VAL_MAX];

	log_info("admin.partner_refresh", "partner=%s result=%s",
		 log_val(str_cstr(r->name), n, sizeof(n)),
		 rc == 0 ? "ok" : log_val(str_cstr(error), v, sizeof(v)));
	if (r->bev)
		refresh_answer(r, rc == 0 ? json_pack("{s:b, s:s}", "ok", 1, "result", "fetched")
					  : err_reply("fetch_failed", error));
	refresh_free_if_done(r);
}

static void refresh_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct refresh *r = arg;

	(void)fd;
	(void)what;
	if (r->bev)
		refresh_answer(r, json_pack("{s:b, s:b, s:s}", "ok", 1, "pending", 1, "result",
					    "still fetching"));
	refresh_free_if_done(r);
}

static void refresh_client_event(struct bufferevent *bev, short what, void *arg)
{
	struct refresh *r = arg;

	(void)what;
	r->bev = NULL;
	bufferevent_free(bev);
	refresh_free_if_done(r);
}

/* 1: the request was partner.refresh and is now handled (or answered). */
static int refresh_start(struct bufferevent *bev, const char *line, size_t len)
{
	json_t *req = json_loadb(line, len, 0, NULL);
	const char *cmd = req ? json_string_value(json_object_get(req, "cmd")) : NULL;
	const char *name = req ? json_string_value(json_object_get(req, "name")) : NULL;
	struct timeval wait = {REFRESH_WAIT_MS / 1000, (REFRESH_WAIT_MS % 1000) * 1000};
	struct refresh *r;

	if (!cmd || strcmp(cmd, "partner.refresh") != 0) {
		json_decref(req);
		return 0;
	}
	r = calloc(1, sizeof(*r));
	if (!r || !name || !name[0] || strlen(name) >= sizeof(r->name)) {
		json_decref(req);
		free(r);
		return 0; /* admin_handle_line answers */
	}
	snprintf(r->name, sizeof(r->name), "%s", name);
	json_decref(req);
	r->bev = bev;
	r->timer = evtimer_new(bufferevent_get_base(bev), refresh_timeout, r);
	if (!r->timer || oauth_fetch_refresh(r->name, refresh_done, r) < 0) {
		if (r->timer)
			event_free(r->timer);
		free(r);
		return 0;
	}
	/* the fetch takes up to two 10 s transfers: no idle timeout meanwhile */
	bufferevent_set_timeouts(bev, NULL, NULL);
	bufferevent_setcb(bev, NULL, NULL, refresh_client_event, r);
	evtimer_add(r->timer, &wait);
	return 1;
}

static void client_read(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n;
	char *line;

	(void)arg;
	line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF);
	if (!line) {
		if (evbuffer_get_length(in) > ADMIN_LINE_MAX)
			bufferevent_free(bev);
		return;
	}
	if (refresh_start(bev, line, n)) {
		free(line);
		bufferevent_disable(bev, EV_READ);
		return;
	}
	char *rep = admin_handle_line(line, n);
	free(line);
	if (rep) {
		bufferevent_write(bev, rep, strlen(rep));
		free(rep);
	}
	bufferevent_disable(bev, EV_READ);
}

static void client_write(struct bufferevent *bev, void *arg)
{
	(void)arg;
	if (!(bufferevent_get_enabled(bev) & EV_READ))
		bufferevent_free(bev);
}

static void client_event(struct bufferevent *bev, short what, void *arg)
{
	(void)what;
	(void)arg;
	bufferevent_free(bev);
}

static void on_admin_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
			    int len, void *arg)
{
	struct bufferevent *bev =
	    bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);
	struct timeval tmo = {5, 0};
	(void)sa;
	(void)len;
	(void)arg;
	if (!bev) {
		close(fd);
		return;
	}
	bufferevent_setcb(bev, client_read, client_write, client_event, NULL);
	bufferevent_set_timeouts(bev, &tmo, &tmo);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

int admin_start(struct event_base *base, const char *path, const struct admin_ctx *ctx, char *err,
		size_t errlen)
{
	struct sockaddr_un sun;
	mode_t old;
	int fd;

	actx = *ctx;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen,
			 "admin socket path %s is too long (max %zu bytes); set [admin] socket",
			 path, sizeof(sun.sun_path) - 1);
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	snprintf(sock_path, sizeof(sock_path), "%s", path);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	old = umask(0177);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(fd, 16) < 0) {
		umask(old);
		snprintf(err, errlen, "cannot listen on admin socket %s: %s", path,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	umask(old);
	listener = evconnlistener_new(base, on_admin_accept, NULL, LEV_OPT_CLOSE_ON_FREE, -1, fd);
	if (!listener) {
		close(fd);
		snprintf(err, errlen, "cannot create admin listener");
		return -1;
	}
	return 0;
}

void admin_stop(void)
{
	if (listener) {
		evconnlistener_free(listener);
		listener = NULL;
		unlink(sock_path);
	}
}
