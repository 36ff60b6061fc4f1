/*
 * The TURN/STUN server (RFC 8656 over RFC 8489) on a worker's event loop:
 * its [turn] listen sockets (UDP, TCP, TLS; one SO_REUSEPORT socket per
 * worker and listen line), its allocations and their relayed UDP sockets.
 * The kernel keeps one client 5-tuple on one worker, so each worker owns
 * its allocations; only the quotas are shared (turn/alloc.h).
 *
 * Lifecycle: turn_global_init once per process (after vault_init, before
 * the workers), then per worker turn_server_new (on that worker's base,
 * with that worker's store connection), turn_server_stop from the worker's
 * thread when intake stops, turn_server_free after the thread ended, and
 * turn_global_shutdown last. [turn] changes take effect at restart.
 */
#ifndef RTC_TURN_SERVER_H
#define RTC_TURN_SERVER_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "core/config.h"
#include "store/store.h"

struct event_base;
struct turn_server;

/*
 * Per process: load or create the shared secret ([turn] secret_file), set
 * the quotas, and check that every [turn] listen address can be bound (a
 * port held by another process is an error, not a silent share). A no-op
 * when [turn] has no listen line. 0 or -1 with err.
 */
int turn_global_init(const struct config *cfg, char *err, size_t errlen);
void turn_global_shutdown(void);

/*
 * A worker's TURN server on base: binds its listen sockets. ssl_new makes
 * the TLS session of an accepted tls: connection (NULL: tls listeners
 * refuse connections). store is the worker's own connection. NULL with err
 * on failure; also NULL (and err empty) when TURN is off.
 */
struct turn_server *turn_server_new(const struct config *cfg, struct event_base *base,
				    struct store *store, int worker_id, SSL *(*ssl_new)(void),
				    char *err, size_t errlen);
/* Stop reading the listeners (call on the worker's thread). */
void turn_server_stop(struct turn_server *ts);
/* Close every connection, allocation and socket; free. NULL is fine. */
void turn_server_free(struct turn_server *ts);

/* Allocations held by this worker. */
size_t turn_server_allocations(const struct turn_server *ts);

#endif
