/*
 * The TURN server's process-wide socket bookkeeping (turn/server.c uses it):
 * relayed-address sockets bound in the [turn] port range, the ports held
 * for EVEN-PORT reservations (RFC 8656 §7.2: the RTCP allocation may come
 * from a 5-tuple another worker owns, so the table is shared, behind a
 * mutex), and the count of TCP/TLS connections per source address across
 * workers. Only the allocate and accept paths use them.
 */
#ifndef RTC_TURN_RELAYPORT_H
#define RTC_TURN_RELAYPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "turn/stun.h"

/*
 * A non-blocking UDP socket bound to ip on a port in min_port..max_port
 * (tried from a random start, at most 512 ports). even: an even port. fd2
 * non-NULL: also bind the next port into *fd2 (EVEN-PORT with R); *out2 its
 * address. Returns the fd with *out its address, or -1 (no free port).
 */
int turn_relay_open(const struct stun_addr *ip, uint16_t min_port, uint16_t max_port, bool even,
		    int *fd2, struct stun_addr *out, struct stun_addr *out2);

/* Hold fd (bound to addr) for 30 s under a fresh random *token. 0, or -1
 * (table full: the caller still owns fd). */
int turn_resv_put(int fd, const struct stun_addr *addr, uint64_t now_ms, uint64_t *token);
/* The socket held under token (now the caller's) and its address, or -1. */
int turn_resv_take(uint64_t token, uint64_t now_ms, struct stun_addr *addr);
/* Close every held socket. */
void turn_resv_clear(void);

/* One more connection from ip (IPv6 form) unless it already has max. */
bool turn_src_take(const uint8_t ip[16], unsigned max);
void turn_src_put(const uint8_t ip[16]);

/*
 * Relayed datagrams queued on one worker and sent with one sendmmsg(2) per
 * run of entries on the same socket (a read batch of a relay socket all
 * goes to one client; a batch of a listener often to one peer), instead of
 * one sendto(2) each. Owned by one worker thread; no locks.
 *
 * Lifecycle: turn_sendq_init (slot: the largest datagram built into
 * turn_sendq_slot), turn_sendq_push any number of times (a full queue
 * flushes itself), turn_sendq_flush before the data pushed by reference
 * goes away and before anything the counters point to may be freed,
 * turn_sendq_free last.
 */
#define TURN_SENDQ_MAX 32

struct turn_sendq {
	unsigned n;
	size_t slot;  /* bytes per scratch slot */
	uint8_t *buf; /* TURN_SENDQ_MAX scratch slots */
	int fd[TURN_SENDQ_MAX];
	uint64_t *ok[TURN_SENDQ_MAX], *fail[TURN_SENDQ_MAX]; /* counters or NULL */
	struct sockaddr_storage to[TURN_SENDQ_MAX];
	struct iovec iov[TURN_SENDQ_MAX];
	struct mmsghdr mm[TURN_SENDQ_MAX];
	uint64_t syscalls; /* sendmmsg calls made (tests, stats) */
};

/* 0, or -1 (out of memory). */
int turn_sendq_init(struct turn_sendq *q, size_t slot);
void turn_sendq_free(struct turn_sendq *q);

/* The scratch buffer (q->slot bytes) of the next entry, to build a datagram
 * in before turn_sendq_push()ing it; flushes first when the queue is full. */
uint8_t *turn_sendq_slot(struct turn_sendq *q);

/*
 * Queue len bytes at data (the next slot, or memory that stays valid until
 * the next flush) for fd to address to (tolen bytes). When it is sent,
 * ++*ok, or ++*fail when the kernel refused it (either may be NULL).
 */
void turn_sendq_push(struct turn_sendq *q, int fd, const struct sockaddr *to, socklen_t tolen,
		     const void *data, size_t len, uint64_t *ok, uint64_t *fail);

/* Send everything queued, in order; the queue is empty afterwards. */
void turn_sendq_flush(struct turn_sendq *q);

#endif
