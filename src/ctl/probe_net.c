/*
 * rtcauthctl probe: one client connection to a SIP server over UDP, TCP or
 * TLS (OpenSSL, server certificate verified against a CA file, SNI and
 * name check against the host we were told). Sockets are non-blocking and
 * every wait is a poll() bounded by the caller's deadline, so the probe can
 * never hang. Streams are framed with sip_msg_frame; a datagram is one
 * message. No protocol decisions here.
 */
#include "ctl/probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/x509.h"
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "sip/msg.h"

#define RBUF_CAP (2 * PROBE_MSG_MAX)

struct probe_conn {
	enum probe_transport t;
	int fd;
	SSL_CTX *sctx;
	SSL *ssl;
	char lhost[64];
	uint16_t lport;
	char *rbuf; /* stream bytes received and not yet returned */
	size_t rlen;
};

static void ssl_err(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s: %s", what, e ? buf : "connection closed");
	ERR_clear_error();
}

/* Wait for events on fd until deadline. 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	for (;;) {
		uint64_t now = clock_mono_ms();
		struct pollfd p = {fd, events, 0};
		int r;

		if (now >= deadline)
			return 0;
		r = poll(&p, 1, (int)(deadline - now));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		return r > 0 ? 1 : 0;
	}
}

static int tcp_connect(struct probe_conn *c, const struct addrinfo *ai, uint64_t deadline,
		       char *err, size_t errlen)
{
	int soerr = 0;
	socklen_t sl = sizeof(soerr);

	if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return 0;
	if (errno != EINPROGRESS) {
		snprintf(err, errlen, "connect: %s", strerror(errno));
		return -1;
	}
	if (wait_fd(c->fd, POLLOUT, deadline) <= 0) {
		snprintf(err, errlen, "connect: no answer within the timeout");
		return -1;
	}
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
		snprintf(err, errlen, "connect: %s", strerror(soerr ? soerr : errno));
		return -1;
	}
	return 0;
}

static int tls_start(struct probe_conn *c, const char *host, const char *ca_file, const char *sni,
		     uint64_t deadline, char *err, size_t errlen)
{
	unsigned char ip[16];
	const char *name = sni && sni[0] ? sni : host;
	bool is_ip = inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1;

	c->sctx = SSL_CTX_new(TLS_client_method());
	if (!c->sctx) {
		ssl_err(err, errlen, "TLS");
		return -1;
	}
	SSL_CTX_set_min_proto_version(c->sctx, TLS1_2_VERSION);
	if (!ca_file || !ca_file[0] || SSL_CTX_load_verify_locations(c->sctx, ca_file, NULL) != 1) {
		snprintf(err, errlen, "cannot load the CA file '%s' (give one with --ca FILE)",
			 ca_file ? ca_file : "");
		ERR_clear_error();
		return -1;
	}
	SSL_CTX_set_verify(c->sctx, SSL_VERIFY_PEER, NULL);
	c->ssl = SSL_new(c->sctx);
	if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
		ssl_err(err, errlen, "TLS");
		return -1;
	}
	if (is_ip) {
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), name) != 1) {
			ssl_err(err, errlen, "TLS name");
			return -1;
		}
	} else if (SSL_set_tlsext_host_name(c->ssl, name) != 1 ||
		   SSL_set1_host(c->ssl, name) != 1) {
		ssl_err(err, errlen, "TLS name");
		return -1;
	}
	for (;;) {
		int r = SSL_connect(c->ssl), e, w;
		if (r == 1)
			return 0;
		e = SSL_get_error(c->ssl, r);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
			long v = SSL_get_verify_result(c->ssl);
			if (v != X509_V_OK)
				snprintf(err, errlen, "TLS: server certificate not accepted: %s",
					 X509_verify_cert_error_string(v));
			else
				ssl_err(err, errlen, "TLS handshake");
			ERR_clear_error();
			return -1;
		}
		w = wait_fd(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
		if (w <= 0) {
			snprintf(err, errlen, "TLS handshake: no answer within the timeout");
			return -1;
		}
	}
}

static void local_addr(struct probe_conn *c)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	snprintf(c->lhost, sizeof(c->lhost), "127.0.0.1");
	if (getsockname(c->fd, (struct sockaddr *)&ss, &sl) < 0)
		return;
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &a->sin6_addr, c->lhost, sizeof(c->lhost));
		c->lport = ntohs(a->sin6_port);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &a->sin_addr, c->lhost, sizeof(c->lhost));
		c->lport = ntohs(a->sin_port);
	}
}

int probe_conn_open(enum probe_transport t, const char *host, uint16_t port, const char *ca_file,
		    const char *sni, int timeout_ms, struct probe_conn **out, char *err,
		    size_t errlen)
{
	struct addrinfo hints, *res = NULL;
	struct probe_conn *c;
	uint64_t deadline = clock_mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 5000);
	char ports[8];
	int rc, one = 1;

	*out = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = t == PROBE_UDP ? SOCK_DGRAM : SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	snprintf(ports, sizeof(ports), "%u", port);
	rc = getaddrinfo(host, ports, &hints, &res);
	if (rc != 0 || !res) {
		snprintf(err, errlen, "cannot resolve '%s': %s", host, gai_strerror(rc));
		return -1;
	}
	c = calloc(1, sizeof(*c));
	if (!c || (t != PROBE_UDP && !(c->rbuf = malloc(RBUF_CAP)))) {
		free(c);
		freeaddrinfo(res);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	c->t = t;
	c->fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		goto fail;
	}
	if (t == PROBE_UDP) {
		/* a connected UDP socket: datagrams from anyone else are ignored */
		if (connect(c->fd, res->ai_addr, res->ai_addrlen) < 0) {
			snprintf(err, errlen, "connect: %s", strerror(errno));
			goto fail;
		}
	} else {
		if (tcp_connect(c, res, deadline, err, errlen) < 0)
			goto fail;
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (t == PROBE_TLS && tls_start(c, host, ca_file, sni, deadline, err, errlen) < 0)
			goto fail;
	}
	freeaddrinfo(res);
	local_addr(c);
	*out = c;
	return 0;
fail:
	freeaddrinfo(res);
	probe_conn_close(c);
	return -1;
}

int probe_conn_tls_end_point(const struct probe_conn *c, uint8_t *out, size_t cap)
{
	X509 *x;

	if (!c || !c->ssl)
		return -1;
	x = SSL_get0_peer_certificate(c->ssl);
	return x ? x509_tls_server_end_point(x, out, cap) : -1;
}

void probe_conn_close(struct probe_conn *c)
{
	if (!c)
		return;
	if (c->ssl) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	SSL_CTX_free(c->sctx);
	if (c->fd >= 0)
		close(c->fd);
	free(c->rbuf);
	free(c);
}

enum probe_transport probe_conn_transport(const struct probe_conn *c)
{
	return c->t;
}

const char *probe_conn_local_host(const struct probe_conn *c)
{
	return c->lhost;
}

uint16_t probe_conn_local_port(const struct probe_conn *c)
{
	return c->lport;
}

int probe_conn_send(struct probe_conn *c, const char *buf, size_t len, char *err, size_t errlen)
{
	uint64_t deadline = clock_mono_ms() + 5000;
	size_t off = 0;

	if (c->t == PROBE_UDP) {
		if (send(c->fd, buf, len, 0) != (ssize_t)len) {
			snprintf(err, errlen, "send: %s", strerror(errno));
			return -1;
		}
		return 0;
	}
	while (off < len) {
		ssize_t n;
		short ev = POLLOUT;
		if (c->ssl) {
			int r = SSL_write(c->ssl, buf + off, (int)(len - off));
			int e = r > 0 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_WANT_READ)
				ev = POLLIN;
			else if (e != SSL_ERROR_WANT_WRITE && r <= 0) {
				ssl_err(err, errlen, "TLS write");
				return -1;
			}
			n = r > 0 ? r : 0;
		} else {
			n = send(c->fd, buf + off, len - off, MSG_NOSIGNAL);
			if (n < 0 && errno != EAGAIN && errno != EINTR) {
				snprintf(err, errlen, "send: %s", strerror(errno));
				return -1;
			}
			if (n < 0)
				n = 0;
		}
		off += (size_t)n;
		if (off < len && n == 0 && wait_fd(c->fd, ev, deadline) <= 0) {
			snprintf(err, errlen, "send: the server does not read");
			return -1;
		}
	}
	return 0;
}

/* Read what is there into rbuf. 1 got bytes, 0 nothing yet (wait for ev),
 * -1 closed or failed. */
static int stream_read(struct probe_conn *c, short *ev, char *err, size_t errlen)
{
	size_t room = RBUF_CAP - c->rlen;
	ssize_t n;

	*ev = POLLIN;
	if (room == 0) {
		snprintf(err, errlen, "the server sent more than %u bytes we cannot frame",
			 RBUF_CAP);
		return -1;
	}
	if (c->ssl) {
		int r = SSL_read(c->ssl, c->rbuf + c->rlen, (int)room), e;
		if (r > 0) {
			c->rlen += (size_t)r;
			return 1;
		}
		e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_READ)
			return 0;
		if (e == SSL_ERROR_WANT_WRITE) {
			*ev = POLLOUT;
			return 0;
		}
		if (e == SSL_ERROR_ZERO_RETURN)
			snprintf(err, errlen, "the server closed the connection");
		else
			ssl_err(err, errlen, "TLS read");
		return -1;
	}
	n = recv(c->fd, c->rbuf + c->rlen, room, 0);
	if (n > 0) {
		c->rlen += (size_t)n;
		return 1;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	snprintf(err, errlen, "%s", n == 0 ? "the server closed the connection" : strerror(errno));
	return -1;
}

static long stream_recv(struct probe_conn *c, uint64_t deadline, char *buf, size_t cap, char *err,
			size_t errlen)
{
	for (;;) {
		size_t skip = 0;
		long n = c->rlen ? sip_msg_frame(c->rbuf, c->rlen, PROBE_MSG_MAX, &skip)
				 : SIP_E_INCOMPLETE;
		short ev;
		int r;

		if (skip) {
			memmove(c->rbuf, c->rbuf + skip, c->rlen - skip);
			c->rlen -= skip;
			if (n == SIP_E_INCOMPLETE)
				continue;
		}
		if (n > 0) {
			if ((size_t)n > cap) {
				snprintf(err, errlen, "message too large");
				return -1;
			}
			memcpy(buf, c->rbuf, (size_t)n);
			memmove(c->rbuf, c->rbuf + n, c->rlen - (size_t)n);
			c->rlen -= (size_t)n;
			return n;
		}
		if (n != SIP_E_INCOMPLETE) {
			snprintf(err, errlen, "cannot frame the server's message: %s",
				 sip_msg_strerror((int)n));
			return -1;
		}
		r = stream_read(c, &ev, err, errlen);
		if (r < 0)
			return -1;
		if (r > 0)
			continue;
		if (c->ssl && SSL_pending(c->ssl))
			continue;
		r = wait_fd(c->fd, ev, deadline);
		if (r < 0) {
			snprintf(err, errlen, "poll: %s", strerror(errno));
			return -1;
		}
		if (r == 0)
			return 0;
	}
}

static bool is_keepalive(const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i] != '\r' && b[i] != '\n')
			return false;
	return true;
}

long probe_conn_recv(struct probe_conn *c, uint64_t deadline_ms, char *buf, size_t cap, char *err,
		     size_t errlen)
{
	if (c->t != PROBE_UDP)
		return stream_recv(c, deadline_ms, buf, cap, err, errlen);
	for (;;) {
		ssize_t n;
		int r = wait_fd(c->fd, POLLIN, deadline_ms);
		if (r <= 0)
			return r;
		n = recv(c->fd, buf, cap, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0) {
			/* ICMP port unreachable shows up here on a connected socket */
			snprintf(err, errlen, "recv: %s%s", strerror(errno),
				 errno == ECONNREFUSED
				     ? " (nothing listens there: ICMP port unreachable)"
				     : "");
			return -1;
		}
		if (is_keepalive(buf, (size_t)n))
			continue; /* RFC 5626 CRLF keep-alive */
		return (long)n;
	}
}
