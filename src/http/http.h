/*
 * HTTPS server for the web services (OAuth, metadata, /metrics, /healthz):
 * libevent's evhttp on each worker's own event loop, TLS only, with a
 * routing table that later modules plug their endpoints into.
 *
 * Lifecycle:
 *   - at start, before any server exists: http_route_add() for every
 *     endpoint (the table is read-only once a server runs);
 *   - http_tls_set() with a context from http_tls_ctx_new() (and again on
 *     every reload: connections already open keep the context they started
 *     with);
 *   - per worker: http_server_new() on the worker's event_base, then
 *     http_server_listen_fd() for each bound listening socket; the worker
 *     thread runs the loop; http_server_stop() stops accepting;
 *     http_server_free() on the same thread once the loop has ended.
 *
 * A handler runs on the worker's loop thread: it must be quick (no blocking
 * network I/O; the worker's store connection is fine for short indexed
 * queries). It reads a request view and fills a response; the server then
 * adds X-Request-Id (and Cache-Control: no-store on JSON), sends it, and
 * writes one access log line. Every log line written while a handler runs
 * carries req_id=... (log_ctx_set).
 *
 * Must never log a query string or a body: they may carry secrets
 * (client assertions, tokens).
 */
#ifndef RTC_HTTP_HTTP_H
#define RTC_HTTP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/ssl.h>

#include "core/str.h"

struct event_base;

/* Method bits (the same values as libevent's enum evhttp_cmd_type). */
enum http_method {
	HTTP_GET = 1 << 0,
	HTTP_POST = 1 << 1,
	HTTP_HEAD = 1 << 2,
	HTTP_PUT = 1 << 3,
	HTTP_DELETE = 1 << 4,
	HTTP_OPTIONS = 1 << 5,
	HTTP_TRACE = 1 << 6,
	HTTP_CONNECT = 1 << 7,
	HTTP_PATCH = 1 << 8,
};

#define HTTP_REQUEST_ID_MAX 24

/* What a handler sees of one request; valid only during the handler call. */
struct http_request {
	enum http_method method;
	const char *method_name; /* "GET" ... */
	const char *path;	 /* raw (still percent-encoded), without the query; starts '/' */
	const char *query;	 /* raw text after '?', or NULL; never log it */
	struct str body;	 /* the whole body (at most [http] max_body_size); never log it */
	const char *peer;	 /* "ip:port" or "[ip]:port" */
	const char *request_id;
	/* the TLS session. Its client certificate, if any, was NOT verified:
	 * use http_request_peer_cert() and read the warning there */
	SSL *ssl;
	/* the worker context given to http_server_new(); rtcauthd gives its
	 * struct sip_worker (sip/server.h): the worker's store connection and
	 * the current runtime (config), refreshed before each request */
	void *worker;
	const void *internal; /* the server's own request (headers lookup) */
};

/* A request header's value (the first one of that name, case-insensitive), or NULL. */
const char *http_request_header(const struct http_request *req, const char *name);

/*
 * The certificate the client presented in the TLS handshake, or NULL when
 * it sent none. Borrowed: valid during the handler call only, never free it.
 *
 * **THIS CERTIFICATE IS NOT VERIFIED. IT AUTHENTICATES NOBODY BY ITSELF.**
 * The listener asks every client for a certificate (optionally: browsers and
 * curl without one are served as before) and accepts ANY chain at the TLS
 * layer, self-signed, expired, from any issuer, because the decision belongs
 * to the endpoint: RFC 8705 §2.2 self_signed_tls_client_auth pins
 * certificates a partner registered. What the handshake does prove is that
 * the client holds the private key of this certificate (TLS CertificateVerify).
 * So a handler may treat the client as authenticated only after comparing
 * this certificate with one registered for that client (as oauth/token.c
 * does), never by its subject, issuer or mere presence. There is no
 * "verified" flag on purpose, and SSL_get_verify_result(req->ssl) is forced
 * to a failure code (X509_V_ERR_APPLICATION_VERIFICATION) whenever a
 * certificate was sent, so code that asks OpenSSL gets "not verified".
 */
X509 *http_request_peer_cert(const struct http_request *req);

struct http_response; /* filled by the handler; opaque */

/* Status with a body of content_type (copied). Replaces an earlier body. */
int http_response_set(struct http_response *resp, int status, const char *content_type,
		      const void *body, size_t len);
/* Status with body as compact JSON (application/json); body is not stolen. */
int http_response_json(struct http_response *resp, int status, const json_t *body);
/*
 * An error answer: status and the JSON body
 *   {"error": error, "error_description": description}
 * (the RFC 6749 §5.2 shape, used for every error of every endpoint).
 * description may be NULL.
 */
int http_response_error(struct http_response *resp, int status, const char *error,
			const char *description);
/* An extra response header (e.g. Allow, WWW-Authenticate, Location). */
int http_response_header(struct http_response *resp, const char *name, const char *value);

typedef void (*http_handler_fn)(const struct http_request *req, struct http_response *resp,
				void *arg);
/*
 * Answer later (blocking work on core/workq, issue 5): a handler calls
 * http_response_defer() and returns without an answer; later, on the SAME
 * loop thread, the code that holds d fills http_deferred_response(d) and
 * calls http_deferred_send(d) exactly once. The request view (req) is only
 * valid during the handler: copy what you need before returning.
 * If the client went away meanwhile, the answer is dropped by
 * http_deferred_send (no use after free: evhttp keeps the request, detached
 * from its connection, until we answer). d must be sent before the server
 * is freed (the daemon stops workq, which runs every pending done, first).
 * NULL when out of memory: then answer now, as usual.
 */
struct http_deferred;
struct http_deferred *http_response_defer(struct http_response *resp);
/* The event base whose loop runs this request's handler (the reply base
 * to give core/workq). */
struct event_base *http_request_base(const struct http_request *req);
struct http_response *http_deferred_response(struct http_deferred *d);
/* Send the answer (a 500 if none was set), write the access log line and
 * free d. */
void http_deferred_send(struct http_deferred *d);

/*
 * Register fn for the methods (a mask of enum http_method) at path: an
 * exact path, or with prefix every path starting with it (the longest
 * matching prefix wins; an exact route beats a prefix). A path that
 * matches with another method gets 405 with Allow; no match gets 404. HEAD
 * is answered by a GET handler when no route lists HEAD. Call before any
 * server runs. 0, or -1 when the table is full or the route exists already.
 */
int http_route_add(unsigned methods, const char *path, bool prefix, http_handler_fn fn, void *arg);
/*
 * The handler (and its arg) that a request for method and path reaches,
 * or NULL with *allowed the methods the path takes (0: no such path; else
 * the answer is 405 with Allow). What the server does for each request;
 * exposed for tests and for listing routes.
 */
http_handler_fn http_route_lookup(const char *path, unsigned method, unsigned *allowed, void **arg);
/* Forget every route (tests; the daemon keeps them until exit). */
void http_routes_clear(void);

/*
 * TLS server context for the web services: the certificate chain and key
 * files (PEM), TLS 1.2 or newer, no renegotiation, ALPN http/1.1. A client
 * certificate is requested but not required, and any chain the client sends
 * is accepted at the TLS layer, UNVERIFIED (see http_request_peer_cert). NULL
 * with err on failure.
 */
SSL_CTX *http_tls_ctx_new(const char *cert, const char *key, char *err, size_t errlen);
/* Make ctx the context of new connections (takes the caller's reference;
 * NULL drops the current one). */
void http_tls_set(SSL_CTX *ctx);

/* Open HTTPS connections across servers (for /metrics). */
uint64_t http_connections(void);

struct http_limits {
	size_t max_header_size; /* request line plus headers, bytes */
	size_t max_body_size;
	int timeout; /* seconds of silence (read or write) before closing */
};

struct http_server;

/*
 * A server on base (one per worker); worker is handed to every handler,
 * after prepare(worker) (may be NULL) has run for that request.
 */
struct http_server *http_server_new(struct event_base *base, const struct http_limits *lim,
				    void *worker, void (*prepare)(void *worker));
/* Accept HTTPS connections on a bound, listening, non-blocking socket (the
 * server owns fd from now on, even when this fails). 0 or -1. */
int http_server_listen_fd(struct http_server *srv, int fd);
/* Stop accepting new connections (open ones finish). Loop thread only. */
void http_server_stop(struct http_server *srv);
/* Close everything. After the loop has ended. NULL is fine. */
void http_server_free(struct http_server *srv);

#endif
