/*
 * Relay sockets and the other process-wide pieces of the TURN server; see
 * relayport.h. Must never decide anything about a client: the server does.
 */
#include "turn/relayport.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/secmem.h"

#define PORT_PROBES    512	 /* relay ports tried per allocation */
#define RELAY_SOCK_BUF (1 << 20) /* SO_RCVBUF / SO_SNDBUF of a relay socket */

static int relay_socket(const struct stun_addr *ip)
{
	int one = 1;
	int fd = socket(ip->family == STUN_AF_IPV4 ? AF_INET : AF_INET6,
			SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd >= 0 && ip->family == STUN_AF_IPV6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (fd >= 0) {
		/* room for a burst from the peer while the worker is busy
		 * (the kernel's default holds ~270 small datagrams); a cap,
		 * not memory: only queued datagrams are charged, and
		 * net.core.rmem_max / wmem_max bound it */
		int sz = RELAY_SOCK_BUF;

		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	}
	return fd;
}

static int bind_addr(int fd, const struct stun_addr *a)
{
	struct sockaddr_storage ss;

	stun_addr_to_sockaddr(a, (struct sockaddr *)&ss, sizeof(ss));
	return bind(fd, (struct sockaddr *)&ss,
		    a->family == STUN_AF_IPV4 ? sizeof(struct sockaddr_in)
					      : sizeof(struct sockaddr_in6));
}

/*
 * Bind a UDP socket on the relay address in the port range (even: an even
 * port; pair: also bind the next port into *fd2, RFC 8656 §7.2 EVEN-PORT
 * with R). fd or -1.
 */
int turn_relay_open(const struct stun_addr *ip, uint16_t min_port, uint16_t max_port, bool even,
		    int *fd2, struct stun_addr *out, struct stun_addr *out2)
{
	uint32_t range = (uint32_t)max_port - min_port + 1, start = 0;
	int fd = relay_socket(ip);

	if (fd < 0)
		return -1;
	secmem_random(&start, sizeof(start));
	for (uint32_t i = 0; i < range && i < PORT_PROBES; i++) {
		struct stun_addr a = *ip, b;
		a.port = (uint16_t)(min_port + (start + i) % range);
		if ((even || fd2) && (a.port & 1))
			continue;
		if (fd2 && a.port + 1 > max_port)
			continue;
		if (bind_addr(fd, &a) < 0) {
			if (errno != EADDRINUSE && errno != EACCES)
				break;
			continue;
		}
		if (!fd2) {
			*out = a;
			return fd;
		}
		b = a;
		b.port++;
		*fd2 = relay_socket(ip);
		if (*fd2 >= 0 && bind_addr(*fd2, &b) == 0) {
			*out = a;
			*out2 = b;
			return fd;
		}
		if (*fd2 >= 0)
			close(*fd2);
		*fd2 = -1;
		close(fd); /* bound: a fresh socket for the next port */
		fd = relay_socket(ip);
		if (fd < 0)
			return -1;
	}
	close(fd);
	return -1;
}

/* ---- port reservations (EVEN-PORT R=1, RESERVATION-TOKEN), process-wide:
 * the RTCP allocation may come from a 5-tuple another worker owns ---- */

#define RESV_MAX 1024
#define RESV_MS	 30000 /* RFC 8656 §7.2: about 30 seconds */

struct resv {
	uint64_t token;
	int fd;
	struct stun_addr addr;
	uint64_t expires_ms;
};
static pthread_mutex_t resv_mu = PTHREAD_MUTEX_INITIALIZER;
static struct resv resv_tab[RESV_MAX];
static size_t resv_n;

static void resv_sweep_locked(uint64_t now_ms)
{
	for (size_t i = 0; i < resv_n;) {
		if (resv_tab[i].expires_ms <= now_ms) {
			close(resv_tab[i].fd);
			resv_tab[i] = resv_tab[--resv_n];
		} else {
			i++;
		}
	}
}

/* Keep fd for 30 s under a fresh token. 0, or -1 (full: the caller closes fd). */
int turn_resv_put(int fd, const struct stun_addr *addr, uint64_t now_ms, uint64_t *token)
{
	int rc = -1;

	secmem_random(token, sizeof(*token));
	pthread_mutex_lock(&resv_mu);
	resv_sweep_locked(now_ms);
	if (resv_n < RESV_MAX) {
		resv_tab[resv_n++] = (struct resv){*token, fd, *addr, now_ms + RESV_MS};
		rc = 0;
	}
	pthread_mutex_unlock(&resv_mu);
	return rc;
}

/* The socket reserved under token (now the caller's), or -1. */
int turn_resv_take(uint64_t token, uint64_t now_ms, struct stun_addr *addr)
{
	int fd = -1;

	pthread_mutex_lock(&resv_mu);
	resv_sweep_locked(now_ms);
	for (size_t i = 0; i < resv_n; i++)
		if (resv_tab[i].token == token) {
			fd = resv_tab[i].fd;
			*addr = resv_tab[i].addr;
			resv_tab[i] = resv_tab[--resv_n];
			break;
		}
	pthread_mutex_unlock(&resv_mu);
	return fd;
}

void turn_resv_clear(void)
{
	pthread_mutex_lock(&resv_mu);
	resv_sweep_locked(UINT64_MAX);
	pthread_mutex_unlock(&resv_mu);
}

/* ---- TCP/TLS connections per source address ---- */

/* Open TCP/TLS connections of one source address, all workers together
 * (the accept path only: a mutex is fine). */
struct src_count {
	struct src_count *next;
	uint8_t ip[16];
	unsigned n;
};
#define SRC_BUCKETS 256
static pthread_mutex_t src_mu = PTHREAD_MUTEX_INITIALIZER;
static struct src_count *srcs[SRC_BUCKETS];

static struct src_count **src_slot(const uint8_t ip[16])
{
	unsigned h = 5381;
	struct src_count **pp;

	for (int i = 0; i < 16; i++)
		h = h * 33 + ip[i];
	for (pp = &srcs[h % SRC_BUCKETS]; *pp && memcmp((*pp)->ip, ip, 16) != 0; pp = &(*pp)->next)
		;
	return pp;
}

/* One more connection from ip, unless it has max already. */
bool turn_src_take(const uint8_t ip[16], unsigned max)
{
	struct src_count **pp;
	bool ok = false;

	pthread_mutex_lock(&src_mu);
	pp = src_slot(ip);
	if (!*pp) {
		*pp = calloc(1, sizeof(**pp));
		if (*pp)
			memcpy((*pp)->ip, ip, 16);
	}
	if (*pp && (*pp)->n < max) {
		(*pp)->n++;
		ok = true;
	} else if (*pp && (*pp)->n == 0) {
		free(*pp); /* made for nothing (a limit of 0) */
		*pp = NULL;
	}
	pthread_mutex_unlock(&src_mu);
	return ok;
}

void turn_src_put(const uint8_t ip[16])
{
	struct src_count **pp, *e;

	pthread_mutex_lock(&src_mu);
	pp = src_slot(ip);
	e = *pp;
	if (e && (e->n == 0 || --e->n == 0)) {
		*pp = e->next;
		free(e);
	}
	pthread_mutex_unlock(&src_mu);
}

/* ---- send queue ---- */

int turn_sendq_init(struct turn_sendq *q, size_t slot)
{
	memset(q, 0, sizeof(*q));
	q->slot = slot;
	q->buf = malloc(slot * TURN_SENDQ_MAX);
	return q->buf ? 0 : -1;
}

void turn_sendq_free(struct turn_sendq *q)
{
	free(q->buf);
	q->buf = NULL;
	q->n = 0;
}

uint8_t *turn_sendq_slot(struct turn_sendq *q)
{
	if (q->n == TURN_SENDQ_MAX)
		turn_sendq_flush(q);
	return q->buf + (size_t)q->n * q->slot;
}

void turn_sendq_push(struct turn_sendq *q, int fd, const struct sockaddr *to, socklen_t tolen,
		     const void *data, size_t len, uint64_t *ok, uint64_t *fail)
{
	unsigned i;

	if (q->n == TURN_SENDQ_MAX)
		turn_sendq_flush(q);
	i = q->n++;
	q->fd[i] = fd;
	q->ok[i] = ok;
	q->fail[i] = fail;
	if (tolen > sizeof(q->to[i]))
		tolen = sizeof(q->to[i]);
	memcpy(&q->to[i], to, tolen);
	q->iov[i].iov_base = (void *)data;
	q->iov[i].iov_len = len;
	memset(&q->mm[i], 0, sizeof(q->mm[i]));
	q->mm[i].msg_hdr.msg_name = &q->to[i];
	q->mm[i].msg_hdr.msg_namelen = tolen;
	q->mm[i].msg_hdr.msg_iov = &q->iov[i];
	q->mm[i].msg_hdr.msg_iovlen = 1;
}

static void sendq_count(uint64_t *c)
{
	if (c)
		(*c)++;
}

/* One run of entries [i, end) on the same socket: sendmmsg until all are
 * sent; a datagram the kernel refuses is counted and skipped. */
static void sendq_run(struct turn_sendq *q, unsigned i, unsigned end)
{
	while (i < end) {
		int k = sendmmsg(q->fd[i], &q->mm[i], end - i, MSG_DONTWAIT);
		q->syscalls++;
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) { /* the first one failed */
			sendq_count(q->fail[i]);
			i++;
			continue;
		}
		for (int j = 0; j < k; j++)
			sendq_count(q->ok[i + (unsigned)j]);
		i += (unsigned)k;
	}
}

void turn_sendq_flush(struct turn_sendq *q)
{
	unsigned i = 0;

	while (i < q->n) {
		unsigned end = i + 1;
		while (end < q->n && q->fd[end] == q->fd[i])
			end++;
		sendq_run(q, i, end);
		i = end;
	}
	q->n = 0;
}
