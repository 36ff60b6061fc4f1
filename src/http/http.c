/*
 * HTTPS server glue and routing; see http.h.
 *
 * DESIGN: evhttp (libevent 2.1) does the HTTP/1.1 framing, keep-alive and
 * the size and time limits; every connection is a bufferevent_openssl made
 * in make_bev(), so nothing is ever served in clear text. evhttp hands us
 * only complete requests (through on_request); routing, the request id, the
 * JSON error bodies, the common headers, the access log line and the
 * metrics are ours. Requests that evhttp itself refuses before they are
 * complete (headers or body over the limit, a malformed request line) are
 * answered by evhttp itself (evhttp_send_error: 413 or 400 with an HTML
 * page); libevent 2.1 has no hook for those (2.2's evhttp_set_errorcb), so
 * on_output() recognises that page in the connection's output buffer
 * and rewrites it into our JSON error with a request id (see there).
 *
 * Must never log a query string, a body or a header value: they may carry
 * tokens and client assertions.
 */
#include "http/http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/bufferevent_struct.h> /* ev_write: see send_reply */
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include "core/jsonw.h"
#include "core/log.h"
#include "core/stats.h"

#define MAX_ROUTES  64
#define MAX_SOCKETS 16
#define ALL_METHODS                                                                                \
	(HTTP_GET | HTTP_POST | HTTP_HEAD | HTTP_PUT | HTTP_DELETE | HTTP_OPTIONS | HTTP_TRACE |   \
	 HTTP_CONNECT | HTTP_PATCH)

struct route {
	unsigned methods;
	char *path;
	size_t len;
	bool prefix;
	http_handler_fn fn;
	void *arg;
};

static struct route routes[MAX_ROUTES];
static size_t n_routes;

struct http_response {
	struct evhttp_request *ev;
	int status;
	struct evbuffer *body;
	char content_type[128];
	struct http_deferred *deferred; /* http_response_defer: answered later */
};

/* A request answered after its handler returned (http_response_defer). */
struct http_deferred {
	struct http_response resp;
	uint64_t t0;
	const char *method_name;
	char rid[HTTP_REQUEST_ID_MAX];
	char peer[80];
	char path[LOG_VAL_MAX];
};

struct http_server {
	struct evhttp *eh;
	void *worker;
	void (*prepare)(void *worker);
	struct evhttp_bound_socket *socks[MAX_SOCKETS];
	size_t n_socks;
};

static pthread_mutex_t tls_mu = PTHREAD_MUTEX_INITIALIZER;
static SSL_CTX *g_tls;

/* Open connections: counted up when a TLS session is made for one, down
 * when OpenSSL frees that session (evhttp has no close hook for a
 * connection that never completed a request). */
static _Atomic uint64_t g_conns;
static int conn_ex_idx = -1;
static pthread_once_t conn_ex_once = PTHREAD_ONCE_INIT;

static const struct {
	unsigned bit;
	const char *name;
} method_names[] = {
    {HTTP_GET, "GET"},	   {HTTP_POST, "POST"},	      {HTTP_HEAD, "HEAD"},
    {HTTP_PUT, "PUT"},	   {HTTP_DELETE, "DELETE"},   {HTTP_OPTIONS, "OPTIONS"},
    {HTTP_TRACE, "TRACE"}, {HTTP_CONNECT, "CONNECT"}, {HTTP_PATCH, "PATCH"},
};

static const char *method_name(unsigned m)
{
	for (size_t i = 0; i < sizeof(method_names) / sizeof(method_names[0]); i++)
		if (method_names[i].bit == m)
			return method_names[i].name;
	return "OTHER";
}

/* ---- routes ---- */

int http_route_add(unsigned methods, const char *path, bool prefix, http_handler_fn fn, void *arg)
{
	size_t len;

	if (!path || path[0] != '/' || !fn || (methods & ~(unsigned)ALL_METHODS) || !methods ||
	    n_routes == MAX_ROUTES)
		return -1;
	len = strlen(path);
	for (size_t i = 0; i < n_routes; i++)
		if (routes[i].prefix == prefix && routes[i].len == len &&
		    memcmp(routes[i].path, path, len) == 0 && (routes[i].methods & methods))
			return -1;
	routes[n_routes].path = strdup(path);
	if (!routes[n_routes].path)
		return -1;
	routes[n_routes].methods = methods;
	routes[n_routes].len = len;
	routes[n_routes].prefix = prefix;
	routes[n_routes].fn = fn;
	routes[n_routes].arg = arg;
	n_routes++;
	return 0;
}

void http_routes_clear(void)
{
	for (size_t i = 0; i < n_routes; i++)
		free(routes[i].path);
	memset(routes, 0, sizeof(routes));
	n_routes = 0;
}

/*
 * The routes for path: the exact ones if any, else those of the longest
 * matching prefix. Returns the route for method (HEAD falls back to GET),
 * or NULL with *allowed the methods the matching routes take (0: no route).
 */
static const struct route *route_find(const char *path, unsigned method, unsigned *allowed)
{
	size_t plen = strlen(path), best = 0;
	bool exact = false, any = false;
	const struct route *get = NULL;

	*allowed = 0;
	for (size_t i = 0; i < n_routes; i++)
		if (!routes[i].prefix && routes[i].len == plen &&
		    memcmp(routes[i].path, path, plen) == 0)
			exact = true;
	if (!exact)
		for (size_t i = 0; i < n_routes; i++)
			if (routes[i].prefix && routes[i].len <= plen && routes[i].len >= best &&
			    memcmp(routes[i].path, path, routes[i].len) == 0) {
				best = routes[i].len;
				any = true;
			}
	if (!exact && !any)
		return NULL;
	for (size_t i = 0; i < n_routes; i++) {
		const struct route *r = &routes[i];
		if (exact ? (r->prefix || r->len != plen || memcmp(r->path, path, plen) != 0)
			  : (!r->prefix || r->len != best || memcmp(r->path, path, best) != 0))
			continue;
		*allowed |= r->methods;
		if (r->methods & method)
			return r;
		if ((r->methods & HTTP_GET) && method == HTTP_HEAD)
			get = r;
	}
	if (*allowed & HTTP_GET)
		*allowed |= HTTP_HEAD;
	return get;
}

http_handler_fn http_route_lookup(const char *path, unsigned method, unsigned *allowed, void **arg)
{
	const struct route *r = route_find(path, method, allowed);

	*arg = r ? r->arg : NULL;
	return r ? r->fn : NULL;
}

/* ---- responses ---- */

int http_response_set(struct http_response *resp, int status, const char *content_type,
		      const void *body, size_t len)
{
	if (status < 100 || status > 599 || !content_type ||
	    strlen(content_type) >= sizeof(resp->content_type))
		return -1;
	evbuffer_drain(resp->body, evbuffer_get_length(resp->body));
	if (len && evbuffer_add(resp->body, body, len) < 0)
		return -1;
	resp->status = status;
	snprintf(resp->content_type, sizeof(resp->content_type), "%s", content_type);
	return 0;
}

/* json_dump_callback's output gathered on the stack, then into an evbuffer
 * (json_dumps would build a heap string, copy it and measure it again). */
struct json_out {
	struct evbuffer *to;
	size_t n;
	char buf[1024];
};

static int json_out_flush(struct json_out *o)
{
	int rc = o->n ? evbuffer_add(o->to, o->buf, o->n) : 0;

	o->n = 0;
	return rc;
}

static int json_out_add(const char *p, size_t len, void *arg)
{
	struct json_out *o = arg;

	if (o->n + len > sizeof(o->buf) && json_out_flush(o) < 0)
		return -1;
	if (len > sizeof(o->buf))
		return evbuffer_add(o->to, p, len);
	memcpy(o->buf + o->n, p, len);
	o->n += len;
	return 0;
}

int http_response_json(struct http_response *resp, int status, const json_t *body)
{
	struct json_out o; /* o.buf is not zeroed: only its first o.n bytes are read */
	char fast[4096];
	long n;

	/* status and type set, body emptied; then the JSON written into it */
	if (!body || http_response_set(resp, status, "application/json", NULL, 0) < 0)
		return -1;
	/* plain values: jsonw writes the same text, without jansson's checks */
	if ((n = jsonw_compact(body, fast, sizeof(fast))) >= 0) {
		if (evbuffer_add(resp->body, fast, (size_t)n) == 0)
			return 0;
		evbuffer_drain(resp->body, evbuffer_get_length(resp->body));
		resp->status = 0;
		return -1;
	}
	o.to = resp->body;
	o.n = 0;
	if (json_dump_callback(body, json_out_add, &o, JSON_COMPACT) < 0 ||
	    json_out_flush(&o) < 0) {
		evbuffer_drain(resp->body, evbuffer_get_length(resp->body));
		resp->status = 0; /* no answer: the caller gives one */
		return -1;
	}
	return 0;
}

int http_response_error(struct http_response *resp, int status, const char *error,
			const char *description)
{
	json_t *o = json_object();
	int rc = -1;

	if (!o)
		return -1;
	if (json_object_set_new(o, "error", json_string(error ? error : "server_error")) == 0 &&
	    (!description ||
	     json_object_set_new(o, "error_description", json_string(description)) == 0))
		rc = http_response_json(resp, status, o);
	json_decref(o);
	return rc;
}

int http_response_header(struct http_response *resp, const char *name, const char *value)
{
	/* evhttp refuses CR/LF in values; refuse them in names too */
	if (!name || !value || strpbrk(name, "\r\n: ") || !*name)
		return -1;
	return evhttp_add_header(evhttp_request_get_output_headers(resp->ev), name, value);
}

const char *http_request_header(const struct http_request *req, const char *name)
{
	struct evhttp_request *ev = (struct evhttp_request *)req->internal;
	return evhttp_find_header(evhttp_request_get_input_headers(ev), name);
}

/* ---- request ids ---- */

static char boot_id[8];
static pthread_once_t boot_once = PTHREAD_ONCE_INIT;
static _Atomic uint64_t req_seq;

static void boot_id_init(void)
{
	unsigned char r[3] = {0, 0, 0};

	if (RAND_bytes(r, sizeof(r)) != 1) {
		unsigned pid = (unsigned)getpid();
		memcpy(r, &pid, sizeof(r));
	}
	snprintf(boot_id, sizeof(boot_id), "%02x%02x%02x", r[0], r[1], r[2]);
}

/* "<6 hex of this process>-<counter in hex>": unique per process, and
 * across restarts in practice. */
static void request_id(char *buf, size_t cap)
{
	uint64_t n = atomic_fetch_add_explicit(&req_seq, 1, memory_order_relaxed) + 1;

	pthread_once(&boot_once, boot_id_init);
	snprintf(buf, cap, "%s-%llx", boot_id, (unsigned long long)n);
}

/* ---- dispatch ---- */

static void peer_text(struct evhttp_connection *evcon, char *buf, size_t cap)
{
	char *addr = NULL;
	ev_uint16_t port = 0;

	evhttp_connection_get_peer(evcon, &addr, &port);
	if (!addr)
		snprintf(buf, cap, "-");
	else if (strchr(addr, ':'))
		snprintf(buf, cap, "[%s]:%u", addr, port);
	else
		snprintf(buf, cap, "%s:%u", addr, port);
}

/* The peer of a connected socket, as peer_text writes it. */
static void fd_peer(evutil_socket_t fd, char *buf, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char ip[INET6_ADDRSTRLEN];

	snprintf(buf, cap, "-");
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
		return;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
		if (inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip)))
			snprintf(buf, cap, "%s:%u", ip, ntohs(in->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
		if (inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip)))
			snprintf(buf, cap, "[%s]:%u", ip, ntohs(in6->sin6_port));
	}
}

static void common_headers(struct http_response *resp, const char *rid)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(resp->ev);

	evhttp_remove_header(h, "Content-Type");
	evhttp_add_header(h, "Content-Type", resp->content_type);
	evhttp_remove_header(h, "X-Request-Id");
	evhttp_add_header(h, "X-Request-Id", rid);
	/* answers carry tokens and per-client data: nothing is cached unless
	 * the handler said otherwise */
	if (!evhttp_find_header(h, "Cache-Control"))
		evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
}

static void call_route(const struct http_request *req, struct http_response *resp)
{
	unsigned allowed = 0;
	const struct route *r;

	if (req->path[0] != '/') {
		http_response_error(resp, 400, "invalid_request",
				    "the request target must be a path starting with '/'");
		return;
	}
	r = route_find(req->path, req->method, &allowed);
	if (r) {
		r->fn(req, resp, r->arg);
		if (resp->status == 0 && !resp->deferred)
			http_response_error(resp, 500, "server_error",
					    "the handler gave no answer");
		return;
	}
	if (!allowed) {
		http_response_error(resp, 404, "not_found", "no such resource on this server");
		return;
	}
	{
		char allow[128];
		size_t o = 0;
		for (size_t i = 0; i < sizeof(method_names) / sizeof(method_names[0]); i++)
			if (allowed & method_names[i].bit)
				o += (size_t)snprintf(allow + o, sizeof(allow) - o, "%s%s",
						      o ? ", " : "", method_names[i].name);
		http_response_header(resp, "Allow", allow);
		http_response_error(
		    resp, 405, "method_not_allowed",
		    "this resource does not take that method; see the Allow header");
	}
}

/*
 * Fill the handler's view of ev. Returns the copy of the request target
 * that req->path and req->query point into (the caller frees it), or NULL
 * when out of memory.
 */
static char *request_view(struct evhttp_request *ev, struct http_server *srv,
			  struct http_request *req, const char *peer, const char *rid)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
	struct evbuffer *in = evhttp_request_get_input_buffer(ev);
	const char *uri = evhttp_request_get_uri(ev);
	size_t blen = evbuffer_get_length(in);
	char *target = strdup(uri ? uri : ""), *q;

	if (!target)
		return NULL;
	q = strchr(target, '?');
	if (q)
		*q++ = '\0';
	memset(req, 0, sizeof(*req));
	req->method = (enum http_method)evhttp_request_get_command(ev);
	req->method_name = method_name(req->method);
	req->path = target;
	req->query = q;
	req->body = str_make(blen ? (const char *)evbuffer_pullup(in, -1) : "", blen);
	req->peer = peer;
	req->request_id = rid;
	req->ssl = bufferevent_openssl_get_ssl(evhttp_connection_get_bufferevent(evcon));
	req->worker = srv->worker;
	req->internal = ev;
	return target;
}

X509 *http_request_peer_cert(const struct http_request *req)
{
	/* the session's certificate: also there on a resumed session, which
	 * proved the same private key when it was first made */
	return req && req->ssl ? SSL_get0_peer_certificate(req->ssl) : NULL;
}

/*
 * evhttp_send_reply, with the write started in this loop iteration. libevent
 * 2.1's bufferevents (the OpenSSL one included) write only when their write
 * event fires, so a reply used to wait for the next epoll_wait: an EPOLLOUT
 * added and removed again (two epoll_ctl) and one more wakeup per response.
 * Made active here, the write event runs at the end of this iteration; once
 * it has emptied the buffer it deletes itself before the loop's change list
 * reaches the kernel. Only when the bufferevent wants to write anyway (its
 * write event is pending); a detached request (no connection) is left to
 * evhttp.
 */
static void send_reply(struct evhttp_request *ev, int status, struct evbuffer *body)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
	struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;

	evhttp_send_reply(ev, status, NULL, body);
	if (bev && evbuffer_get_length(bufferevent_get_output(bev)) > 0 &&
	    event_pending(&bev->ev_write, EV_WRITE, NULL))
		event_active(&bev->ev_write, EV_WRITE, 1);
}

/* evhttp's callback for every complete request. */
static void on_request(struct evhttp_request *ev, void *arg)
{
	struct http_server *srv = arg;
	uint64_t t0 = stats_now_us();
	struct http_request req;
	struct http_response resp = {.ev = ev};
	char rid[HTTP_REQUEST_ID_MAX], peer[80], pbuf[LOG_VAL_MAX];
	char *target;
	size_t bytes;

	request_id(rid, sizeof(rid));
	log_ctx_set("req_id", str_cstr(rid));
	peer_text(evhttp_request_get_connection(ev), peer, sizeof(peer));
	resp.body = evbuffer_new();
	target = resp.body ? request_view(ev, srv, &req, peer, rid) : NULL;
	if (!target) {
		if (resp.body)
			evbuffer_free(resp.body);
		log_warn("http.oom", "peer=%s", peer);
		evhttp_send_error(ev, 503, NULL);
		log_ctx_clear();
		return;
	}
	if (srv->prepare)
		srv->prepare(srv->worker);
	call_route(&req, &resp);
	if (resp.deferred) {
		struct http_deferred *d = resp.deferred;

		/* the body buffer and ev now belong to d; the log line comes with the answer */
		d->resp = resp;
		d->resp.deferred = NULL;
		d->t0 = t0;
		d->method_name = req.method_name;
		snprintf(d->rid, sizeof(d->rid), "%s", rid);
		snprintf(d->peer, sizeof(d->peer), "%s", peer);
		snprintf(d->path, sizeof(d->path), "%s",
			 log_val(str_cstr(req.path), pbuf, sizeof(pbuf)));
		free(target);
		log_ctx_clear();
		return;
	}
	common_headers(&resp, rid);
	bytes = evbuffer_get_length(resp.body);
	/* the path only: the query string may carry secrets */
	log_info("http.request", "method=%s path=%s status=%d bytes=%zu duration_us=%llu peer=%s",
		 req.method_name, log_val(str_cstr(req.path), pbuf, sizeof(pbuf)), resp.status,
		 bytes, (unsigned long long)(stats_now_us() - t0), peer);
	send_reply(ev, resp.status, resp.body);
	stats_family_inc(SF_HTTP_RESPONSES, (unsigned)(resp.status / 100 - 1));
	stats_observe_us(STH_HTTP_REQUEST, stats_now_us() - t0);
	evbuffer_free(resp.body);
	free(target);
	log_ctx_clear();
}

struct http_deferred *http_response_defer(struct http_response *resp)
{
	if (!resp->deferred)
		resp->deferred = calloc(1, sizeof(*resp->deferred));
	return resp->deferred;
}

struct event_base *http_request_base(const struct http_request *req)
{
	struct evhttp_request *ev = (struct evhttp_request *)req->internal;
	struct evhttp_connection *evcon = ev ? evhttp_request_get_connection(ev) : NULL;

	return evcon ? evhttp_connection_get_base(evcon) : NULL;
}

struct http_response *http_deferred_response(struct http_deferred *d)
{
	return &d->resp;
}

void http_deferred_send(struct http_deferred *d)
{
	struct http_response *resp = &d->resp;
	size_t bytes;

	log_ctx_set("req_id", str_cstr(d->rid));
	if (resp->status == 0)
		http_response_error(resp, 500, "server_error", "the handler gave no answer");
	common_headers(resp, d->rid);
	bytes = evbuffer_get_length(resp->body);
	log_info("http.request",
		 "method=%s path=%s status=%d bytes=%zu duration_us=%llu peer=%s deferred=yes",
		 d->method_name, d->path, resp->status, bytes,
		 (unsigned long long)(stats_now_us() - d->t0), d->peer);
	/* a request whose connection closed meanwhile is detached (evcon NULL):
	 * evhttp_send_reply then frees it instead of sending */
	send_reply(resp->ev, resp->status, resp->body);
	stats_family_inc(SF_HTTP_RESPONSES, (unsigned)(resp->status / 100 - 1));
	stats_observe_us(STH_HTTP_REQUEST, stats_now_us() - d->t0);
	evbuffer_free(resp->body);
	free(d);
	log_ctx_clear();
}

/* ---- evhttp's own refusals ---- */

/* How libevent 2.1's evhttp_send_error page ends and where it starts. */
static const char err_page_tail[] = "</H1>\n</BODY></HTML>\n";
static const char err_page_head[] = "\r\n\r\n<HTML><HEAD>\n<TITLE>";
static const char err_page_type[] = "\r\nContent-Type: text/html";

/* What we answer in place of evhttp's page, by its status. */
static const struct refusal {
	int status;
	const char *error, *log_reason, *description;
} refusals[] = {
    {400, "invalid_request", "bad_request_or_headers_too_large",
     "malformed request, or a request line and headers larger than this server accepts "
     "([http] max_header_size)"},
    {413, "invalid_request", "body_too_large",
     "the request body is larger than this server accepts ([http] max_body_size)"},
    {417, "invalid_request", "bad_expect", "unsupported Expect header"},
    {501, "not_implemented", "unknown_method", "unknown method"},
    {0, "server_error", "refused", "the request was refused"},
};

static const struct refusal *refusal_of(int status)
{
	size_t i = 0;

	while (refusals[i].status && refusals[i].status != status)
		i++;
	return &refusals[i];
}

/*
 * The response in buf (len bytes, the whole output buffer) if it is
 * evhttp's error page: its status, the reason phrase (into phrase) and the
 * HTTP minor version; else 0. Only our own output is looked at, never a
 * client's bytes.
 */
static int err_page_status(const char *buf, size_t len, char *phrase, size_t cap, char *minor)
{
	const char *hdr_end, *eol;
	int status;

	if (len < 16 || memcmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ' || buf[12] != ' ' ||
	    strspn(buf + 9, "0123456789") < 3)
		return 0;
	hdr_end = memmem(buf, len, err_page_head, sizeof(err_page_head) - 1);
	if (!hdr_end ||
	    !memmem(buf, (size_t)(hdr_end - buf) + 2, err_page_type, sizeof(err_page_type) - 1))
		return 0;
	status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	if (status < 400 || status > 599)
		return 0;
	eol = memchr(buf + 13, '\r', (size_t)(hdr_end - buf) - 13 + 1);
	if (!eol || (size_t)(eol - buf - 13) >= cap)
		return 0;
	memcpy(phrase, buf + 13, (size_t)(eol - buf - 13));
	phrase[eol - buf - 13] = '\0';
	*minor = buf[7];
	return status;
}

/*
 * Output-buffer callback of every connection: when evhttp has just written
 * its error page, replace it with our JSON error (same status, a request
 * id, Connection: close as evhttp had it) and log the refusal. evhttp
 * writes a response only after the previous one has gone out, so the
 * buffer then holds that page alone; anything else is left untouched.
 */
#define HTTP_ONE_RECORD 16384 /* bytes: the most a TLS record carries */

static void on_output(struct evbuffer *out, const struct evbuffer_cb_info *info, void *arg)
{
	static _Thread_local bool busy;
	size_t len = evbuffer_get_length(out), blen;
	const size_t tl = sizeof(err_page_tail) - 1;
	const struct refusal *rf;
	struct evbuffer_ptr pos;
	char tail[sizeof(err_page_tail)], phrase[64], rid[HTTP_REQUEST_ID_MAX], peer[80], minor;
	json_t *o;
	char *body;
	int status;

	/* one response = one contiguous chunk = one TLS record and one write
	 * (evhttp adds the headers and the body separately; the TLS
	 * bufferevent writes each chunk as a record of its own): the write
	 * itself happens later, when the socket's write event fires */
	if (info->n_added && len <= HTTP_ONE_RECORD && evbuffer_get_contiguous_space(out) < len)
		evbuffer_pullup(out, -1);
	if (busy || info->n_added == 0 || len < tl || len > 4096 ||
	    evbuffer_ptr_set(out, &pos, len - tl, EVBUFFER_PTR_SET) < 0 ||
	    evbuffer_copyout_from(out, &pos, tail, tl) != (ev_ssize_t)tl ||
	    memcmp(tail, err_page_tail, tl) != 0)
		return;
	status = err_page_status((const char *)evbuffer_pullup(out, -1), len, phrase,
				 sizeof(phrase), &minor);
	if (!status)
		return;
	rf = refusal_of(status);
	o = json_pack("{s:s, s:s}", "error", rf->error, "error_description", rf->description);
	body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!body)
		return;
	request_id(rid, sizeof(rid));
	blen = strlen(body);
	busy = true;
	evbuffer_drain(out, len);
	evbuffer_add_printf(
	    out,
	    "HTTP/1.%c %d %s\r\nContent-Type: application/json\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\nCache-Control: no-store\r\n"
	    "X-Content-Type-Options: nosniff\r\nX-Request-Id: %s\r\n\r\n%s",
	    minor, status, phrase, blen, rid, body);
	busy = false;
	free(body);
	fd_peer(bufferevent_getfd(arg), peer, sizeof(peer));
	log_ctx_set("req_id", str_cstr(rid));
	log_info("http.refused", "status=%d bytes=%zu peer=%s reason=%s", status, blen, peer,
		 rf->log_reason);
	log_ctx_clear();
	stats_family_inc(SF_HTTP_RESPONSES, (unsigned)(status / 100 - 1));
}

/* ---- TLS ---- */

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned inlen, void *arg)
{
	static const unsigned char h11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
	unsigned char *sel = NULL;
	unsigned char sel_len = 0;

	(void)ssl;
	(void)arg;
	if (SSL_select_next_proto(&sel, &sel_len, h11, sizeof(h11), in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK; /* no ALPN answer: HTTP/1.1 anyway */
	*out = sel;
	*outlen = sel_len;
	return SSL_TLSEXT_ERR_OK;
}

/*
 * Every chain a client sends is let through the handshake (the endpoint
 * decides: RFC 8705 §2.2 partners use self-signed certificates), but the
 * verification result is left as a failure so that nothing reading
 * SSL_get_verify_result() mistakes the certificate for a verified one.
 */
static int accept_unverified(int ok, X509_STORE_CTX *x)
{
	(void)ok;
	X509_STORE_CTX_set_error(x, X509_V_ERR_APPLICATION_VERIFICATION);
	return 1;
}

SSL_CTX *http_tls_ctx_new(const char *cert, const char *key, char *err, size_t errlen)
{
	static const unsigned char sid_ctx[] = "rtcauth-https";
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx) {
		snprintf(err, errlen, "cannot create TLS context for [http]");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	/* RFC 8705: ask for a client certificate, never require one (no
	 * FAIL_IF_NO_PEER_CERT: browsers and curl without one are served as
	 * before), and send no CA names: a partner's certificate is self-signed */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_unverified);
	/* resumption with a requested client certificate needs a session id
	 * context (else OpenSSL fails the resumed handshake) */
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		char e[160];
		ERR_error_string_n(ERR_get_error(), e, sizeof(e));
		snprintf(err, errlen, "cannot load [http] certificate %s / key %s: %s", cert, key,
			 e);
		ERR_clear_error();
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

void http_tls_set(SSL_CTX *ctx)
{
	SSL_CTX *old;

	pthread_mutex_lock(&tls_mu);
	old = g_tls;
	g_tls = ctx;
	pthread_mutex_unlock(&tls_mu);
	SSL_CTX_free(old); /* live connections hold their own reference */
}

static void conn_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			 void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	if (ptr)
		atomic_fetch_sub_explicit(&g_conns, 1, memory_order_relaxed);
}

static void conn_ex_init(void)
{
	conn_ex_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_ex_free);
}

uint64_t http_connections(void)
{
	return atomic_load_explicit(&g_conns, memory_order_relaxed);
}

/* Count ssl as an open connection until it is freed. */
static void conn_track(SSL *ssl)
{
	static char marker;

	pthread_once(&conn_ex_once, conn_ex_init);
	if (conn_ex_idx >= 0 && SSL_set_ex_data(ssl, conn_ex_idx, &marker) == 1)
		atomic_fetch_add_explicit(&g_conns, 1, memory_order_relaxed);
}

/*
 * evhttp asks for each accepted connection's bufferevent. It must never get
 * NULL: evhttp would then make a plain socket one and serve clear text. When
 * no TLS session can be made (out of memory, no context), it gets one end
 * of a pair whose other end is gone: the connection reads nothing and is
 * closed by the timeout.
 */
static struct bufferevent *make_bev(struct event_base *base, void *arg)
{
	struct bufferevent *bev = NULL, *pair[2];
	SSL *ssl = NULL;

	(void)arg;
	pthread_mutex_lock(&tls_mu);
	if (g_tls)
		ssl = SSL_new(g_tls);
	pthread_mutex_unlock(&tls_mu);
	if (ssl)
		conn_track(ssl);
	if (ssl)
		bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
						     BEV_OPT_CLOSE_ON_FREE);
	if (bev) {
		/* a client that closes without close_notify is an EOF, not an error */
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
		evbuffer_add_cb(bufferevent_get_output(bev), on_output, bev);
		return bev;
	}
	log_warn("http.tls_unavailable", "reason=\"cannot create a TLS session\"");
	if (bufferevent_pair_new(base, 0, pair) < 0)
		return NULL; /* cannot happen short of memory: nothing left to do */
	bufferevent_free(pair[1]);
	return pair[0];
}

/* ---- servers ---- */

struct http_server *http_server_new(struct event_base *base, const struct http_limits *lim,
				    void *worker, void (*prepare)(void *worker))
{
	struct http_server *srv = calloc(1, sizeof(*srv));

	if (!srv)
		return NULL;
	srv->worker = worker;
	srv->prepare = prepare;
	srv->eh = evhttp_new(base);
	if (!srv->eh) {
		free(srv);
		return NULL;
	}
	evhttp_set_bevcb(srv->eh, make_bev, srv);
	evhttp_set_gencb(srv->eh, on_request, srv);
	/* every method reaches on_request: 405 (with Allow) is ours to answer */
	evhttp_set_allowed_methods(srv->eh, ALL_METHODS);
	evhttp_set_max_headers_size(srv->eh, (ev_ssize_t)lim->max_header_size);
	evhttp_set_max_body_size(srv->eh, (ev_ssize_t)lim->max_body_size);
	evhttp_set_timeout(srv->eh, lim->timeout);
	evhttp_set_default_content_type(srv->eh, "application/json");
	return srv;
}

int http_server_listen_fd(struct http_server *srv, int fd)
{
	struct evhttp_bound_socket *bs;

	int one = 1;

	if (srv->n_socks == MAX_SOCKETS) {
		close(fd);
		return -1;
	}
	/* accepted connections inherit it (Linux): a response written in two
	 * TLS records must not wait for the client's delayed ACK (Nagle), which
	 * cost ~40 ms per request on a kept-alive connection */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	bs = evhttp_accept_socket_with_handle(srv->eh, fd);
	if (!bs) {
		close(fd);
		return -1;
	}
	srv->socks[srv->n_socks++] = bs;
	return 0;
}

void http_server_stop(struct http_server *srv)
{
	if (!srv)
		return;
	for (size_t i = 0; i < srv->n_socks; i++)
		evconnlistener_disable(evhttp_bound_socket_get_listener(srv->socks[i]));
}

void http_server_free(struct http_server *srv)
{
	if (!srv)
		return;
	evhttp_free(srv->eh);
	free(srv);
}
