/*
 * Worker threads: one libevent loop each, with its own SO_REUSEPORT UDP
 * sockets and TCP/TLS listeners (DESIGN.md "Threads, state, scale"). A stream
 * connection lives on the worker that accepted it; other workers reach it
 * through that worker's queue. Each UDP socket of a worker is read by a
 * receiver thread of its own (docs/design.md "Threads and state"). This is
 * the only code that touches sockets.
 */
#ifndef RTC_DAEMON_WORKER_H
#define RTC_DAEMON_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "core/config.h"
#include "sip/server.h"

/* The runtime every worker reads for each message (swapped on reload). */
void workers_set_runtime(const struct sip_runtime *rt);
/* The TLS server context for new connections (swapped on reload). */
void workers_set_tls(SSL_CTX *ctx);

/*
 * Bind every listener of cfg for n workers, open one store connection per
 * worker. Fails (with err) if a port is in use or the store cannot be
 * opened; nothing runs yet.
 */
int workers_create(const struct config *cfg, int n, char *err, size_t errlen);
/* Start the threads. */
int workers_start(void);
/* Stop accepting, let in-flight work and queued writes finish, join. */
void workers_stop(void);
void workers_destroy(void);
int workers_count(void);
/* Live stream connections across workers. */
uint64_t workers_connections(void);

#endif
