/*
 * Worker threads, sockets and stream connections; see worker.h.
 * Must never make a protocol decision: bytes in go to sip_server_handle,
 * bytes out come from sip_io_send.
 */
#include "daemon/worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "auth/sa.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/sock.h"
#include "core/stats.h"
#include "core/workq.h"
#include "http/http.h"
#include "http/metrics.h"
#include "oauth/token.h"
#include "pki/pki.h"
#include "sip/location.h"
#include "sip/msg.h"
#include "store/store.h"
#include "turn/alloc.h"
#include "turn/server.h"

#define UDP_BATCH    16
#define UDP_BUF	     65536
#define CONN_BUCKETS 1024

struct conn {
	struct conn *next; /* in the worker's hash bucket */
	uint64_t id;
	struct bufferevent *bev;
	struct sip_io *io;
	struct location_flow flow;
	char ip[64];
	const char *closing; /* set: close once the answers already queued are out */
	/* TLS client certificate: 0 not looked at yet, 1 verified (cert_user
	 * is the user it names), -1 none or refused, 2 waiting for its OCSP
	 * status (reading stopped; cert_wait polls the check again) */
	int8_t cert_state;
	struct event *cert_wait;
	int64_t cert_wait_until; /* monotonic ms: then give up (unavailable) */
	char cert_user[STORE_URI_MAX];
	char cert_serial[PKI_SERIAL_MAX];
};

struct xmsg {
	struct xmsg *next;
	uint64_t conn_id;
	size_t len;
	char data[];
};

struct udp_rx;

struct sip_io {
	int id;
	pthread_t thr;
	struct event_base *base; /* NULL in a UDP receiver */
	struct sip_worker sw;
	int udp_fd[CONFIG_MAX_LISTEN];
	struct udp_rx *rx[CONFIG_MAX_LISTEN]; /* a receiver per UDP socket */
	struct evconnlistener *lst[CONFIG_MAX_LISTEN];
	struct http_server *http; /* the HTTPS web services on this loop */
	struct turn_server *turn; /* the TURN/STUN relay on this loop, or NULL */
	/*
	 * The live stream connections, by id. The owning thread reads it
	 * without a lock (it is the only writer); it links and unlinks under
	 * live_mu, which other workers take to ask whether a connection is
	 * still open (conn_is_live) before queueing to it. Opens and closes
	 * are rare next to messages, so the lock is almost never contended.
	 */
	struct conn *conns[CONN_BUCKETS];
	pthread_mutex_t live_mu;
	uint64_t next_seq;
	pthread_mutex_t qmu;
	struct xmsg *qhead, *qtail;
	struct event *wake;
	struct event *cert_check; /* closes connections of revoked certificates */
};

/*
 * A UDP receiver: a thread blocking in recvmmsg on one of a worker's UDP
 * sockets, handling each datagram where it was read (docs/design.md,
 * "Threads and state"). Its sip_io is its own (store connection, buffers,
 * the worker's UDP sockets to send from) and belongs to no worker, so what
 * it sends on a stream connection goes through the owner's queue.
 */
struct udp_rx {
	struct sip_io io;
	int idx; /* the listener */
	_Atomic bool stop;
	bool started;
	uint64_t failures; /* receive errors, for the log */
	struct mmsghdr msgs[UDP_BATCH];
	struct iovec iov[UDP_BATCH];
	struct sockaddr_in6 from[UDP_BATCH];
	char *bufs;
};

static struct sip_io *workers;
static int nworkers;
static const struct config *wcfg;
static _Atomic(const struct sip_runtime *) g_rt;
static pthread_mutex_t tls_mu = PTHREAD_MUTEX_INITIALIZER;
static SSL_CTX *g_tls;
static _Atomic uint64_t g_conns;

/* per-source connection counts (accept path only, not hot) */
struct src_count {
	struct src_count *next;
	int n;
	char ip[64];
};
static pthread_mutex_t src_mu = PTHREAD_MUTEX_INITIALIZER;
static struct src_count *src_counts[256];

static unsigned src_hash(const char *ip)
{
	unsigned h = 5381;
	while (*ip)
		h = h * 33 + (unsigned char)*ip++;
	return h & 255;
}

static int src_acquire(const char *ip, int max)
{
	struct src_count **pp, *e;
	int ok = 1;

	pthread_mutex_lock(&src_mu);
	for (pp = &src_counts[src_hash(ip)]; *pp && strcmp((*pp)->ip, ip) != 0; pp = &(*pp)->next)
		;
	e = *pp;
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (e) {
			snprintf(e->ip, sizeof(e->ip), "%s", ip);
			*pp = e;
		}
	}
	if (!e || e->n >= max)
		ok = 0;
	else
		e->n++;
	pthread_mutex_unlock(&src_mu);
	return ok;
}

static void src_release(const char *ip)
{
	struct src_count **pp, *e;

	pthread_mutex_lock(&src_mu);
	for (pp = &src_counts[src_hash(ip)]; *pp && strcmp((*pp)->ip, ip) != 0; pp = &(*pp)->next)
		;
	e = *pp;
	if (e && --e->n <= 0) {
		*pp = e->next;
		free(e);
	}
	pthread_mutex_unlock(&src_mu);
}

void workers_set_runtime(const struct sip_runtime *rt)
{
	atomic_store(&g_rt, rt);
}

void workers_set_tls(SSL_CTX *ctx)
{
	SSL_CTX *old;
	pthread_mutex_lock(&tls_mu);
	old = g_tls;
	g_tls = ctx;
	pthread_mutex_unlock(&tls_mu);
	if (old)
		SSL_CTX_free(old); /* live connections hold their own reference */
}

int workers_count(void)
{
	return nworkers;
}

uint64_t workers_connections(void)
{
	return atomic_load(&g_conns);
}

static void refresh_rt(struct sip_io *io)
{
	io->sw.rt = atomic_load_explicit(&g_rt, memory_order_acquire);
}

/* One received SIP message, timed for the latency histogram. */
static void handle_timed(struct sip_worker *sw, const char *buf, size_t len,
			 const struct location_flow *from, const char *peer_user)
{
	uint64_t t0 = stats_now_us();
	sw->peer_user = peer_user;
	sip_server_handle(sw, buf, len, from);
	sw->peer_user = NULL;
	stats_observe_us(STH_SIP_REQUEST, stats_now_us() - t0);
}

static void conn_read(struct bufferevent *bev, void *arg);
static void conn_check_cert(struct conn *c);

#define CERT_WAIT_POLL_MS 50
#define CERT_WAIT_MAX_MS  10000 /* the OCSP budget (3 s) plus a queue on the pool */

/* The OCSP answer of a waiting connection's certificate may be there:
 * check again; once decided, read what the client sent meanwhile. */
static void cert_wait_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	conn_check_cert(c);
	if (c->cert_state == 2)
		return; /* polled again */
	bufferevent_enable(c->bev, EV_READ);
	conn_read(c->bev, c); /* may close c: nothing after this */
}

/* Wait for the OCSP status without blocking the loop: stop reading (the
 * bytes already in stay buffered) and poll the PKI's cache. A timer of
 * the connection's own, freed with it, so a connection closed meanwhile
 * leaves nothing behind. False when it cannot wait (out of memory). */
static bool cert_wait(struct conn *c)
{
	struct timeval poll = {0, CERT_WAIT_POLL_MS * 1000};
	int64_t now = (int64_t)clock_mono_ms();

	if (c->cert_state != 2) { /* first wait */
		c->cert_wait_until = now + CERT_WAIT_MAX_MS;
		if (!c->cert_wait)
			c->cert_wait = evtimer_new(c->io->base, cert_wait_cb, c);
		if (!c->cert_wait)
			return false;
	} else if (now >= c->cert_wait_until) {
		return false;
	}
	c->cert_state = 2;
	bufferevent_disable(c->bev, EV_READ);
	evtimer_add(c->cert_wait, &poll);
	return true;
}

/*
 * The client certificate of a TLS connection, looked at once (issue 5 item
 * 4): verified by the PKI (trusted root, validity, revocation, an enabled
 * user); the identity then applies to every message on the connection. A
 * certificate that does not verify leaves the connection to the other
 * schemes. While its OCSP status is asked on the pool (PKI_VERIFY_PENDING)
 * the connection waits (cert_wait), reading nothing, for at most
 * CERT_WAIT_MAX_MS; then the status counts as unavailable.
 */
static void conn_check_cert(struct conn *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	X509 *leaf = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
	char *hex = NULL;
	BIGNUM *bn;
	int rc;

	if (!leaf) {
		c->cert_state = -1;
		return;
	}
	rc = pki_verify_client(c->io->sw.store, leaf, SSL_get_peer_cert_chain(ssl), clock_wall_s(),
			       c->cert_user, sizeof(c->cert_user));
	if (rc == PKI_VERIFY_PENDING) {
		if (cert_wait(c))
			return;
		rc = PKI_VERIFY_UNAVAILABLE; /* waited long enough */
	}
	c->cert_state = -1;
	if (rc != PKI_VERIFY_OK) {
		stats_auth(STATS_MECH_CERTIFICATE, rc == PKI_VERIFY_UNAVAILABLE
						       ? STATS_AUTH_UNAVAILABLE
						       : STATS_AUTH_FAILURE);
		log_warn("tls.client_cert_refused", "conn=%llx src=%s reason=\"%s\"",
			 (unsigned long long)c->id, c->ip, pki_verify_strerror(rc));
		c->cert_user[0] = '\0';
		return;
	}
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
	hex = bn ? BN_bn2hex(bn) : NULL;
	snprintf(c->cert_serial, sizeof(c->cert_serial), "%s", hex ? hex : "");
	OPENSSL_free(hex);
	BN_free(bn);
	c->cert_state = 1;
	stats_auth(STATS_MECH_CERTIFICATE, STATS_AUTH_OK);
	log_info("tls.client_cert", "conn=%llx user=%s serial=%s src=%s", (unsigned long long)c->id,
		 c->cert_user, c->cert_serial, c->ip);
}

/* ---- connections ---- */

struct conn;
static void conn_close(struct conn *c, const char *why);

static struct conn **conn_slot(struct sip_io *io, uint64_t id)
{
	struct conn **pp = &io->conns[id % CONN_BUCKETS];
	while (*pp && (*pp)->id != id)
		pp = &(*pp)->next;
	return pp;
}

/* Another worker's question: is the connection id still open on io?
 * Walks io's bucket under live_mu, so a conn is never read after its
 * owner unlinked (and freed) it. */
static bool conn_is_live(struct sip_io *io, uint64_t id)
{
	bool live;

	pthread_mutex_lock(&io->live_mu);
	live = *conn_slot(io, id) != NULL;
	pthread_mutex_unlock(&io->live_mu);
	return live;
}

static void conn_close(struct conn *c, const char *why)
{
	struct conn **pp;
	char addr[80];

	pthread_mutex_lock(&c->io->live_mu);
	pp = conn_slot(c->io, c->id);
	if (*pp == c)
		*pp = c->next;
	pthread_mutex_unlock(&c->io->live_mu);
	log_info("conn.close", "conn=%llx peer=%s transport=%s reason=%s",
		 (unsigned long long)c->id, sip_flow_addr(&c->flow, addr, sizeof(addr)),
		 sip_transport_name(c->flow.transport), why);
	if (c->cert_wait)
		event_free(c->cert_wait);
	bufferevent_free(c->bev);
	src_release(c->ip);
	atomic_fetch_sub(&g_conns, 1);
	free(c);
}

static void conn_event(struct bufferevent *bev, short what, void *arg);

static void conn_drained(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		conn_close(c, c->closing);
}

/* Stop reading; close when what we already answered has been written
 * (a bad message after good ones must not eat the good ones' answers). */
static void conn_close_after_flush(struct conn *c, const char *why)
{
	struct timeval grace = {5, 0};

	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		conn_close(c, why);
		return;
	}
	c->closing = why;
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_set_timeouts(c->bev, NULL, &grace);
	bufferevent_setcb(c->bev, NULL, conn_drained, conn_event, c);
}

static void conn_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t max = wcfg->max_message_size;

	refresh_rt(c->io);
	for (;;) {
		size_t len = evbuffer_get_length(in), skip = 0;
		size_t look = len < max + 4096 ? len : max + 4096;
		const char *p;
		long n;

		if (len == 0)
			return;
		p = (const char *)evbuffer_pullup(in, (ssize_t)look);
		n = sip_msg_frame(p, look, max, &skip);
		if (skip) {
			/* RFC 5626 §4.4.1: answer a CRLFCRLF ping with a CRLF pong */
			if (skip >= 4 && memcmp(p, "\r\n\r\n", 4) == 0)
				bufferevent_write(bev, "\r\n", 2);
			evbuffer_drain(in, skip);
			if (n == SIP_E_INCOMPLETE)
				continue;
			p = (const char *)evbuffer_pullup(in, (ssize_t)(look - skip));
		}
		if (n == SIP_E_INCOMPLETE) {
			if (len > max) {
				stats_inc(ST_SIP_BAD);
				conn_close_after_flush(c, "message_too_large");
			}
			return;
		}
		if (n < 0) {
			stats_inc(ST_SIP_BAD);
			log_info("conn.bad_framing", "conn=%llx reason=\"%s\"",
				 (unsigned long long)c->id, sip_msg_strerror((int)n));
			conn_close_after_flush(c, n == SIP_E_TOO_LONG ? "message_too_large"
								      : "bad_framing");
			return;
		}
		if (c->flow.transport == TRANSPORT_TLS && c->cert_state == 0)
			conn_check_cert(c);
		if (c->cert_state == 2)
			return; /* waiting for the certificate's OCSP status */
		handle_timed(&c->io->sw, p, (size_t)n, &c->flow,
			     c->cert_state == 1 ? c->cert_user : NULL);
		evbuffer_drain(in, (size_t)n);
	}
}

static void conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	(void)bev;
	if (what & BEV_EVENT_CONNECTED)
		return;
	if (what & BEV_EVENT_TIMEOUT) {
		conn_close(c, "idle_timeout");
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		unsigned long e = bufferevent_get_openssl_error(bev);
		if (c->flow.transport == TRANSPORT_TLS && e) {
			char buf[128];
			ERR_error_string_n(e, buf, sizeof(buf));
			stats_inc(ST_TLS_HANDSHAKE_FAIL);
			log_info("tls.error", "conn=%llx reason=\"%s\"", (unsigned long long)c->id,
				 buf);
		}
		conn_close(c, "error");
		return;
	}
	if (what & BEV_EVENT_EOF)
		conn_close(c, "eof");
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		      void *arg)
{
	struct sip_io *io = arg;
	int idx = -1;
	struct conn *c;
	struct timeval idle = {wcfg->idle_timeout, 0};

	for (int i = 0; i < CONFIG_MAX_LISTEN; i++)
		if (io->lst[i] == l)
			idx = i;
	c = calloc(1, sizeof(*c));
	if (!c || idx < 0 || (size_t)salen > sizeof(c->flow.addr)) {
		free(c);
		evutil_closesocket(fd);
		return;
	}
	memcpy(&c->flow.addr, sa, (size_t)salen);
	c->flow.addrlen = (socklen_t)salen;
	c->flow.transport = wcfg->listen[idx].kind;
	c->flow.listen_idx = idx;
	sip_flow_ip(&c->flow, c->ip, sizeof(c->ip));
	if (!src_acquire(c->ip, wcfg->max_conns_per_source)) {
		stats_inc(ST_TCP_REFUSED);
		log_warn("conn.refused", "peer=%s reason=per_source_limit limit=%d", c->ip,
			 wcfg->max_conns_per_source);
		evutil_closesocket(fd);
		free(c);
		return;
	}
	c->io = io;
	c->id = ((uint64_t)(io->id + 1) << 48) | ++io->next_seq;
	c->flow.conn_id = c->id;
	if (c->flow.transport == TRANSPORT_TLS) {
		SSL *ssl = NULL;
		pthread_mutex_lock(&tls_mu);
		if (g_tls)
			ssl = SSL_new(g_tls);
		pthread_mutex_unlock(&tls_mu);
		if (ssl)
			c->bev = bufferevent_openssl_socket_new(
			    io->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	} else {
		c->bev = bufferevent_socket_new(io->base, fd, BEV_OPT_CLOSE_ON_FREE);
	}
	if (!c->bev) {
		evutil_closesocket(fd);
		src_release(c->ip);
		free(c);
		return;
	}
	atomic_fetch_add(&g_conns, 1);
	stats_inc(ST_TCP_ACCEPTED);
	pthread_mutex_lock(&io->live_mu);
	*conn_slot(io, c->id) = c;
	pthread_mutex_unlock(&io->live_mu);
	bufferevent_setcb(c->bev, conn_read, NULL, conn_event, c);
	bufferevent_set_timeouts(c->bev, &idle, NULL);
	/* bound what one peer can make us buffer */
	bufferevent_setwatermark(c->bev, EV_READ, 0, wcfg->max_message_size + 4096);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	log_debug("conn.open", "conn=%llx peer=%s transport=%s", (unsigned long long)c->id, c->ip,
		  sip_transport_name(c->flow.transport));
}

/* ---- cross-worker queue ---- */

static void drain_queue(evutil_socket_t fd, short what, void *arg)
{
	struct sip_io *io = arg;
	struct xmsg *q, *nx;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&io->qmu);
	q = io->qhead;
	io->qhead = io->qtail = NULL;
	pthread_mutex_unlock(&io->qmu);
	for (; q; q = nx) {
		struct conn *c = *conn_slot(io, q->conn_id);
		nx = q->next;
		if (c)
			bufferevent_write(c->bev, q->data, q->len);
		else
			log_info("conn.gone", "conn=%llx", (unsigned long long)q->conn_id);
		free(q);
	}
}

int sip_io_send(struct sip_io *io, const struct location_flow *to, const void *buf, size_t len)
{
	if (to->conn_id) {
		int owner = (int)(to->conn_id >> 48) - 1;
		struct sip_io *w;
		struct xmsg *x;
		if (owner < 0 || owner >= nworkers)
			return -1;
		w = &workers[owner];
		if (w == io) {
			struct conn *c = *conn_slot(io, to->conn_id);
			if (!c)
				return -1;
			return bufferevent_write(c->bev, buf, len);
		}
		/* Closed already: say so, so the router answers 480 at once
		 * instead of the owner dropping the message unseen (the caller
		 * would wait for Timer F). A connection that closes after this
		 * check and before the owner drains its queue is still dropped
		 * there (drain_queue logs conn.gone): that race stays. */
		if (!conn_is_live(w, to->conn_id))
			return -1;
		x = malloc(sizeof(*x) + len);
		if (!x)
			return -1;
		x->next = NULL;
		x->conn_id = to->conn_id;
		x->len = len;
		memcpy(x->data, buf, len);
		pthread_mutex_lock(&w->qmu);
		if (w->qtail)
			w->qtail->next = x;
		else
			w->qhead = x;
		w->qtail = x;
		pthread_mutex_unlock(&w->qmu);
		event_active(w->wake, EV_READ, 0);
		return 0;
	}
	if (to->transport != TRANSPORT_UDP || to->listen_idx < 0 ||
	    to->listen_idx >= CONFIG_MAX_LISTEN || io->udp_fd[to->listen_idx] < 0)
		return -1;
	if (sendto(io->udp_fd[to->listen_idx], buf, len, MSG_DONTWAIT, &to->addr.sa, to->addrlen) <
	    0) {
		log_debug("udp.send_failed", "errno=%d", errno);
		return -1;
	}
	return 0;
}

/* ---- UDP ---- */

/* The first n message headers of rx, ready for recvmmsg. */
static void udp_prepare(struct udp_rx *rx, int n)
{
	for (int i = 0; i < n; i++) {
		rx->iov[i].iov_base = rx->bufs + (size_t)i * UDP_BUF;
		rx->iov[i].iov_len = UDP_BUF;
		memset(&rx->msgs[i].msg_hdr, 0, sizeof(rx->msgs[i].msg_hdr));
		rx->msgs[i].msg_hdr.msg_iov = &rx->iov[i];
		rx->msgs[i].msg_hdr.msg_iovlen = 1;
		rx->msgs[i].msg_hdr.msg_name = &rx->from[i];
		rx->msgs[i].msg_hdr.msg_namelen = sizeof(rx->from[i]);
	}
}

/* The n datagrams recvmmsg put in rx's buffers. */
static void udp_handle(struct udp_rx *rx, int n)
{
	for (int i = 0; i < n; i++) {
		struct location_flow f;
		size_t len = rx->msgs[i].msg_len;
		memset(&f, 0, sizeof(f));
		f.transport = TRANSPORT_UDP;
		f.listen_idx = rx->idx;
		f.addrlen = rx->msgs[i].msg_hdr.msg_namelen;
		memcpy(&f.addr, &rx->from[i],
		       f.addrlen <= sizeof(f.addr) ? f.addrlen : sizeof(f.addr));
		if (len > wcfg->max_message_size) {
			stats_inc(ST_SIP_BAD);
			log_info("udp.too_large", "bytes=%zu limit=%zu", len,
				 wcfg->max_message_size);
			continue;
		}
		/* CRLF keep-alives on UDP carry nothing to answer (and a
		 * socket shut down for the stop reads as empty datagrams) */
		if (len <= 4 && strspn(rx->iov[i].iov_base, "\r\n") >= len)
			continue;
		handle_timed(&rx->io.sw, rx->iov[i].iov_base, len, &f, NULL);
	}
}

/*
 * A receiver's loop: one recvmmsg per wake-up (it sleeps in the kernel
 * until a datagram comes, then takes what else is queued, up to
 * UDP_BATCH), where an event loop would make an epoll_wait and a
 * non-blocking recvmmsg of it. workers_stop ends it: stop, then the
 * socket shut down for reading, which wakes the call.
 */
static void *udp_rx_main(void *arg)
{
	struct udp_rx *rx = arg;
	struct sip_io *io = &rx->io;
	int fd = io->udp_fd[rx->idx];
	sigset_t all;

	/* signals go to the main thread's loop, not to a blocked receive */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	udp_prepare(rx, UDP_BATCH);
	while (!atomic_load_explicit(&rx->stop, memory_order_acquire)) {
		int n = recvmmsg(fd, rx->msgs, UDP_BATCH, MSG_WAITFORONE, NULL);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			/* say so (not on every turn), wait a little and go
			 * on reading: the kernel keeps giving this socket its
			 * share of the flows */
			if (rx->failures++ % 1000 == 0)
				log_err("udp.receive_failed", "worker=%d errno=%d failures=%llu",
					io->id, errno, (unsigned long long)rx->failures);
			usleep(10000);
			continue;
		}
		if (atomic_load_explicit(&rx->stop, memory_order_acquire))
			break;
		refresh_rt(io);
		udp_handle(rx, n);
		/* recvmmsg wrote each name length and flags: reset those used */
		udp_prepare(rx, n);
	}
	return NULL;
}

/* The receiver of the worker io's UDP listener idx (its socket open). */
static int udp_rx_new(struct sip_io *io, int idx, const struct config *cfg, char *err,
		      size_t errlen)
{
	struct udp_rx *rx = calloc(1, sizeof(*rx));
	int fd = io->udp_fd[idx], fl;

	if (!rx) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	io->rx[idx] = rx;
	rx->idx = idx;
	rx->io.id = io->id;
	rx->io.sw.id = io->id;
	rx->io.sw.io = &rx->io;
	for (int i = 0; i < CONFIG_MAX_LISTEN; i++)
		rx->io.udp_fd[i] = -1;
	rx->bufs = malloc((size_t)UDP_BATCH * UDP_BUF);
	if (!rx->bufs) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* the receiver blocks; sends from this socket pass MSG_DONTWAIT */
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		snprintf(err, errlen, "cannot make a UDP socket blocking: %s", strerror(errno));
		return -1;
	}
	return store_open(cfg->sqlite_path, 0, 2000, &rx->io.sw.store, err, errlen) == STORE_OK
		   ? 0
		   : -1;
}

static void udp_rx_free(struct udp_rx *rx)
{
	if (!rx)
		return;
	store_close(rx->io.sw.store);
	free(rx->bufs);
	free(rx);
}

/* ---- setup ---- */

/* http: an [http] listener (named https:ADDR:PORT in messages) */
static int open_socket(const struct listen_addr *la, bool reuseport, bool http, char *err,
		       size_t errlen)
{
	return sock_listen(la, reuseport, http ? "https" : sip_transport_name(la->kind),
			   http ? "http" : "sip", err, errlen);
}

/* A TLS session for an accepted TURN tls: connection (the SIP certificate). */
static SSL *turn_ssl_new(void)
{
	SSL *ssl = NULL;

	pthread_mutex_lock(&tls_mu);
	if (g_tls)
		ssl = SSL_new(g_tls);
	pthread_mutex_unlock(&tls_mu);
	return ssl;
}

/* Before each HTTP request: the runtime (config) current since the last reload. */
static void http_prepare(void *worker)
{
	refresh_rt(((struct sip_worker *)worker)->io);
}

/* The HTTPS web services of this worker: one SO_REUSEPORT socket per
 * [http] listen line, like the SIP stream listeners. */
static int http_init(struct sip_io *io, const struct config *cfg, char *err, size_t errlen)
{
	struct http_limits lim = {cfg->http_max_header_size, cfg->http_max_body_size,
				  cfg->http_timeout};

	/* handlers get the worker's SIP-side context: store and runtime */
	io->http = http_server_new(io->base, &lim, &io->sw, http_prepare);
	if (!io->http) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < cfg->n_http_listen; i++) {
		int fd = open_socket(&cfg->http_listen[i], true, true, err, errlen);
		if (fd < 0)
			return -1;
		if (http_server_listen_fd(io->http, fd) < 0) {
			snprintf(err, errlen, "cannot create the HTTPS listener");
			return -1;
		}
	}
	return 0;
}

/* /healthz: this worker's store connection answers a cheap indexed query. */
static int worker_health(void *worker)
{
	struct sip_worker *sw = worker;
	struct store_user u;
	int rc = store_user_get(sw->store, "sip:healthz@health.invalid", &u);

	if (rc == STORE_OK || rc == STORE_NOTFOUND)
		return 0;
	log_warn("health.store_failed", "worker=%d reason=\"%s\"", sw->id, store_strerror(rc));
	return -1;
}

static uint64_t gauge_registrations(void)
{
	return (uint64_t)location_count();
}

static uint64_t gauge_sas(bool established)
{
	const struct sip_runtime *rt = atomic_load(&g_rt);
	size_t pending = 0, est = 0;
	if (rt && rt->sas)
		sa_count(rt->sas, &pending, &est);
	return established ? est : pending;
}

static uint64_t gauge_sa_established(void)
{
	return gauge_sas(true);
}

static uint64_t gauge_sa_pending(void)
{
	return gauge_sas(false);
}

static uint64_t gauge_turn_allocations(void)
{
	return turn_quota_total();
}

static uint64_t gauge_workers(void)
{
	return (uint64_t)nworkers;
}

static uint64_t gauge_blocking_jobs(void)
{
	return (uint64_t)workq_pending();
}

/* Gauges and the built-in endpoints, once per process. */
static int http_routes_once(char *err, size_t errlen)
{
	static int done;

	if (done)
		return 0;
	if (metrics_gauge_add("rtcauth_registrations", "Registered contacts (bindings) held",
			      gauge_registrations) < 0 ||
	    metrics_gauge_add("rtcauth_sip_stream_connections", "Open SIP TCP and TLS connections",
			      workers_connections) < 0 ||
	    metrics_gauge_add("rtcauth_http_connections", "Open HTTPS connections",
			      http_connections) < 0 ||
	    metrics_gauge_add("rtcauth_workers", "Worker threads", gauge_workers) < 0 ||
	    metrics_gauge_add(
		"rtcauth_blocking_jobs",
		"Slow jobs (PIN checks, OCSP queries) queued or running off the loops",
		gauge_blocking_jobs) < 0 ||
	    metrics_gauge_add("rtcauth_turn_allocations", "TURN allocations held",
			      gauge_turn_allocations) < 0 ||
	    metrics_gauge_add("rtcauth_security_associations",
			      "NTLM and Kerberos security associations of signed-in clients",
			      gauge_sa_established) < 0 ||
	    metrics_gauge_add("rtcauth_security_associations_pending", "NTLM handshakes under way",
			      gauge_sa_pending) < 0 ||
	    metrics_routes_add(worker_health) < 0) {
		snprintf(err, errlen, "cannot register the built-in HTTP endpoints");
		return -1;
	}
	done = 1;
	return 0;
}

/*
 * Every 30 s the client certificates of open TLS connections are verified
 * again (revoked since, by us or in an external CA's CRL or OCSP; expired;
 * user disabled or gone): such connections are closed, so a revocation
 * takes effect within a minute. An unknown revocation status (store or
 * OCSP down) keeps the connection until it is known.
 */
static void cert_check(evutil_socket_t fd, short what, void *arg)
{
	struct sip_io *io = arg;
	int64_t now = clock_wall_s();
	char uri[STORE_URI_MAX];
	(void)fd;
	(void)what;
	for (int b = 0; b < CONN_BUCKETS; b++) {
		struct conn *c = io->conns[b], *next;
		for (; c; c = next) {
			SSL *ssl;
			X509 *leaf;
			int rc;

			next = c->next;
			if (c->cert_state != 1)
				continue;
			ssl = bufferevent_openssl_get_ssl(c->bev);
			leaf = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
			rc = leaf ? pki_verify_client(io->sw.store, leaf,
						      SSL_get_peer_cert_chain(ssl), now, uri,
						      sizeof(uri))
				  : PKI_VERIFY_UNTRUSTED;
			/* pending: the OCSP query runs on the pool; the next
			 * sweep sees its answer in the cache */
			if (rc == PKI_VERIFY_OK || rc == PKI_VERIFY_UNAVAILABLE ||
			    rc == PKI_VERIFY_PENDING)
				continue;
			log_warn("tls.client_cert_closed",
				 "conn=%llx user=%s serial=%s reason=\"%s\"",
				 (unsigned long long)c->id, c->cert_user, c->cert_serial,
				 pki_verify_strerror(rc));
			conn_close(c, rc == PKI_VERIFY_REVOKED ? "certificate_revoked"
							       : "certificate_invalid");
		}
	}
}

/*
 * A worker's event loop. With epoll's change list, interest changes made
 * while a callback runs are applied once, at the next epoll_wait: a TLS
 * connection that enables its write event, writes, and disables it again
 * in one callback (bufferevent_openssl does that for every record it
 * sends) costs no epoll_ctl at all instead of two. The change list must
 * not be used with file descriptors that are dup()ed while registered; the
 * workers never do that.
 */
static struct event_base *new_base(void)
{
	struct event_config *ec = event_config_new();
	struct event_base *b;

	if (!ec)
		return NULL;
	event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	b = event_base_new_with_config(ec);
	event_config_free(ec);
	return b;
}

static int worker_init(struct sip_io *io, int id, const struct config *cfg, char *err,
		       size_t errlen)
{
	memset(io, 0, sizeof(*io));
	io->id = id;
	for (int i = 0; i < CONFIG_MAX_LISTEN; i++)
		io->udp_fd[i] = -1;
	pthread_mutex_init(&io->qmu, NULL);
	pthread_mutex_init(&io->live_mu, NULL);
	io->base = new_base();
	if (!io->base) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	io->wake = event_new(io->base, -1, EV_PERSIST, drain_queue, io);
	io->cert_check = event_new(io->base, -1, EV_PERSIST, cert_check, io);
	if (io->cert_check) {
		struct timeval every = {30, 0};
		event_add(io->cert_check, &every);
	}
	io->sw.id = id;
	io->sw.io = io;
	if (store_open(cfg->sqlite_path, 0, 2000, &io->sw.store, err, errlen) != STORE_OK)
		return -1;
	for (size_t i = 0; i < cfg->n_listen; i++) {
		const struct listen_addr *la = &cfg->listen[i];
		int fd = open_socket(la, true, false, err, errlen);
		if (fd < 0)
			return -1;
		if (la->kind == TRANSPORT_UDP) {
			io->udp_fd[i] = fd;
		} else {
			io->lst[i] = evconnlistener_new(io->base, on_accept, io,
							LEV_OPT_CLOSE_ON_FREE, -1, fd);
			if (!io->lst[i]) {
				close(fd);
				snprintf(err, errlen, "cannot create listener");
				return -1;
			}
		}
	}
	for (size_t i = 0; i < cfg->n_listen; i++) {
		if (io->udp_fd[i] < 0)
			continue;
		if (udp_rx_new(io, (int)i, cfg, err, errlen) < 0)
			return -1;
		memcpy(io->rx[i]->io.udp_fd, io->udp_fd, sizeof(io->udp_fd));
	}
	if (cfg->n_turn_listen) {
		io->turn =
		    turn_server_new(cfg, io->base, io->sw.store, id, turn_ssl_new, err, errlen);
		if (!io->turn)
			return -1;
	}
	return http_init(io, cfg, err, errlen);
}

/* [server] blocking_threads; 0: one per online CPU, at least 2. */
static int blocking_threads(const struct config *cfg)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (cfg->blocking_threads > 0)
		return cfg->blocking_threads;
	return n < 2 ? 2 : n > WORKQ_THREADS_MAX ? WORKQ_THREADS_MAX : (int)n;
}

int workers_create(const struct config *cfg, int n, char *err, size_t errlen)
{
	static int threads_ready;

	if (!threads_ready) {
		evthread_use_pthreads();
		threads_ready = 1;
	}
	wcfg = cfg;
	/* slow work (PIN scrypt, OCSP) leaves the loops for this pool; it
	 * answers on the worker's own loop (core/workq.h) */
	if (!workq_running() && workq_start(blocking_threads(cfg), WORKQ_QUEUE_DEFAULT) < 0) {
		snprintf(err, errlen, "cannot start the pool of [server] blocking_threads");
		return -1;
	}
	/* a port held by another process, even one that also uses
	 * SO_REUSEPORT, must be an error, not a silent share */
	for (size_t i = 0; i < cfg->n_listen; i++) {
		int fd = open_socket(&cfg->listen[i], false, false, err, errlen);
		if (fd < 0)
			return -1;
		close(fd);
	}
	for (size_t i = 0; i < cfg->n_http_listen; i++) {
		int fd = open_socket(&cfg->http_listen[i], false, true, err, errlen);
		if (fd < 0)
			return -1;
		close(fd);
	}
	if (http_routes_once(err, errlen) < 0)
		return -1;
	/* the TURN secret, quotas and a check of the [turn] ports */
	if (turn_global_init(cfg, err, errlen) < 0)
		return -1;
	workers = calloc((size_t)n, sizeof(*workers));
	if (!workers) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	nworkers = n;
	for (int i = 0; i < n; i++)
		if (worker_init(&workers[i], i, cfg, err, errlen) < 0)
			return -1;
	return 0;
}

static void *worker_main(void *arg)
{
	struct sip_io *io = arg;
	refresh_rt(io);
	event_base_dispatch(io->base);
	token_batch_thread_end();
	return NULL;
}

int workers_start(void)
{
	for (int i = 0; i < nworkers; i++) {
		if (pthread_create(&workers[i].thr, NULL, worker_main, &workers[i]) != 0)
			return -1;
		for (int l = 0; l < CONFIG_MAX_LISTEN; l++) {
			struct udp_rx *rx = workers[i].rx[l];
			if (!rx)
				continue;
			if (pthread_create(&rx->io.thr, NULL, udp_rx_main, rx) != 0)
				return -1;
			rx->started = true;
		}
	}
	return 0;
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sip_io *io = arg;
	struct timeval grace = {0, 200000};
	(void)fd;
	(void)what;
	/* stop taking new work (the UDP receivers have ended); give queued
	 * writes a moment to go out */
	for (int i = 0; i < CONFIG_MAX_LISTEN; i++)
		if (io->lst[i])
			evconnlistener_disable(io->lst[i]);
	http_server_stop(io->http);
	turn_server_stop(io->turn);
	drain_queue(-1, 0, io);
	event_base_loopexit(io->base, &grace);
}

/* End the UDP receivers: each finishes the batch in hand. */
static void udp_rx_stop_all(void)
{
	for (int i = 0; i < nworkers; i++)
		for (int l = 0; l < CONFIG_MAX_LISTEN; l++) {
			struct udp_rx *rx = workers[i].rx[l];
			if (!rx || !rx->started)
				continue;
			atomic_store_explicit(&rx->stop, true, memory_order_release);
			/* a UDP socket is not connected (ENOTCONN), but the call
			 * marks it shut for reading and wakes its reader */
			shutdown(workers[i].udp_fd[l], SHUT_RD);
		}
	for (int i = 0; i < nworkers; i++)
		for (int l = 0; l < CONFIG_MAX_LISTEN; l++) {
			struct udp_rx *rx = workers[i].rx[l];
			if (rx && rx->started) {
				pthread_join(rx->io.thr, NULL);
				rx->started = false;
			}
		}
}

void workers_stop(void)
{
	udp_rx_stop_all();
	for (int i = 0; i < nworkers; i++)
		event_base_once(workers[i].base, -1, EV_TIMEOUT, stop_cb, &workers[i], NULL);
	for (int i = 0; i < nworkers; i++)
		if (workers[i].thr)
			pthread_join(workers[i].thr, NULL);
	/* the loops have ended: every job still out is cancelled here (its
	 * done runs on this thread) before workers_destroy frees the HTTP
	 * servers and bases that deferred answers and job events live on */
	workq_stop();
}

void workers_destroy(void)
{
	/* when workers_stop was not called (start failed) */
	udp_rx_stop_all();
	workq_stop();
	for (int w = 0; w < nworkers; w++) {
		struct sip_io *io = &workers[w];
		for (int b = 0; b < CONN_BUCKETS; b++)
			while (io->conns[b])
				conn_close(io->conns[b], "shutdown");
		for (int i = 0; i < CONFIG_MAX_LISTEN; i++) {
			udp_rx_free(io->rx[i]);
			io->rx[i] = NULL;
			if (io->udp_fd[i] >= 0)
				close(io->udp_fd[i]);
			if (io->lst[i])
				evconnlistener_free(io->lst[i]);
		}
		drain_queue(-1, 0, io);
		if (io->cert_check)
			event_free(io->cert_check);
		http_server_free(io->http);
		io->http = NULL;
		turn_server_free(io->turn);
		io->turn = NULL;
		if (io->wake)
			event_free(io->wake);
		if (io->base)
			event_base_free(io->base);
		store_close(io->sw.store);
		pthread_mutex_destroy(&io->qmu);
		pthread_mutex_destroy(&io->live_mu);
	}
	free(workers);
	workers = NULL;
	nworkers = 0;
	turn_global_shutdown();
	workers_set_tls(NULL);
	http_tls_set(NULL);
}
