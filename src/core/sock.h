/*
 * Listening sockets for every listener of the daemon (SIP, HTTPS, TURN):
 * one way to turn a configured ADDR:PORT into a bound socket.
 */
#ifndef RTC_CORE_SOCK_H
#define RTC_CORE_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "core/config.h"

/* la's address ("*" = 0.0.0.0, IPv4 or IPv6 literal) and port. 0 or -1. */
int sock_addr(const struct listen_addr *la, struct sockaddr_storage *ss, socklen_t *len);

/*
 * A non-blocking, close-on-exec socket bound to la: UDP (4 MB buffers) or
 * a listening TCP socket (SO_REUSEADDR, TCP_NODELAY inherited by accepted
 * connections); SO_REUSEPORT when asked (one socket per worker); IPv6
 * sockets are v6-only. name is what messages call the listener ("udp",
 * "tls", "https"...), section the config section to change ("sip", "turn").
 * The descriptor, or -1 with err for a person.
 */
int sock_listen(const struct listen_addr *la, bool reuseport, const char *name, const char *section,
		char *err, size_t errlen);

#endif
