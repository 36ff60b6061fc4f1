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
#include <stdint.h>

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

#endif
