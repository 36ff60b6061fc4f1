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
 * turn_global_shutdown last. turn_reload (SIGHUP) applies what can change
 * without dropping allocations; listeners and relay ports need a restart.
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
 * Apply a reloaded config's [turn] settings from now on, keeping every
 * allocation (call from the thread that handles SIGHUP, after
 * turn_global_init; workers keep running):
 *   peers allowed_peer / denied_peer (at once: each allocation drops its
 *   permissions and channels to a newly denied peer before it relays its
 *   next packet), user_quota / total_quota (new allocations),
 *   max_bps, default_lifetime / max_lifetime (next Allocate or Refresh),
 *   nonce_lifetime, unauth_rate / unauth_burst, rfc5766_channels, the
 *   secret_file (read again; it must exist: it is not created on reload),
 *   [server] domain (the realm) and fqdn (in relay URIs), [sip]
 *   max_conns_per_source.
 * Returns 0 when all of it applied; 1 when it applied but [turn] listen,
 * relay_address or min_port/max_port differ from the running ones (they
 * change only on restart; err names them for a warning; also when a
 * reload adds [turn] to a daemon started without it); -1 when nothing was
 * applied (a bad secret file, out of memory), with the reason in err and
 * the old settings and secret kept.
 */
int turn_reload(const struct config *cfg, char *err, size_t errlen);

/*
 * The relay's running [turn] listen lines (fixed at start, whatever a
 * reload says) into out (at most cap), and the [server] fqdn to name
 * wildcard ones with (reloadable), for relay URIs handed to clients.
 * Returns how many; 0 when the relay is not running.
 */
size_t turn_relay_listeners(struct listen_addr *out, size_t cap, char *fqdn, size_t fqdncap);

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
