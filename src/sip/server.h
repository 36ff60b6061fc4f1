/*
 * The SIP request/response core: what happens to one received message.
 * Protocol decisions only: the transport side (sockets, connections,
 * threads) lives in src/daemon and is reached through sip_io_send(), so
 * this code never knows whether a flow is UDP, TCP or TLS beyond its kind.
 *
 *   sip_server_handle(worker, bytes, source)
 *     -> parse -> (response) proxy back along Via
 *              -> (request) checks -> Digest auth -> registrar | proxy
 */
#ifndef RTC_SIP_SERVER_H
#define RTC_SIP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "sip/location.h"

struct store;
struct nonce_table;
struct lockout;
struct sa_table;

/* What each listener advertises in Via and Record-Route. */
struct sip_listener {
	enum transport_kind kind;
	char host[CONFIG_HOST_MAX]; /* IP literal or fqdn when bound to a wildcard */
	uint16_t port;
};

/* Shared, read-mostly state; replaced as a whole on reload. */
struct sip_runtime {
	const struct config *cfg;
	struct nonce_table *nonces;
	struct lockout *lockout;
	struct sip_listener listeners[CONFIG_MAX_LISTEN];
	size_t n_listeners;
	char opaque[24];      /* Digest opaque we hand out and expect back */
	struct sa_table *sas; /* [MS-SIPAE] security associations; NULL: NTLM and
				 Kerberos off */
	bool krb_ready;	      /* the keytab loaded: Kerberos is offered */
	/* [ntlm] channel_bindings: the MsvAvChannelBindings an NTLM client
	 * must send over SIP TLS (tls-server-end-point of [sip] tls_cert) */
	bool ntlm_cbt;
	unsigned char ntlm_cbt_hash[16];
};

struct sip_io; /* the worker's transport side, defined by the daemon */

/* One per worker thread. */
struct sip_worker {
	int id;
	struct sip_io *io;
	struct store *store;
	const struct sip_runtime *rt;
	/* while a message is handled: the user the TLS client certificate of
	 * its connection names (verified: chain, validity, revocation), or NULL */
	const char *peer_user;
};

/*
 * Send bytes along a flow: a UDP datagram from the listener listen_idx, or
 * on the stream connection conn_id (possibly owned by another worker, then
 * queued to it). 0, or -1 when the flow is gone (connection closed).
 * Implemented by the daemon.
 */
int sip_io_send(struct sip_io *io, const struct location_flow *to, const void *buf, size_t len);

/* Handle one received message (a datagram or one framed stream message). */
void sip_server_handle(struct sip_worker *w, const char *buf, size_t len,
		       const struct location_flow *src);

/* Render a flow's address as "ip:port" ("[v6]:port"); returns buf. */
const char *sip_flow_addr(const struct location_flow *f, char *buf, size_t cap);
/* IP only (for lockout keys); returns buf. */
const char *sip_flow_ip(const struct location_flow *f, char *buf, size_t cap);
/* "udp", "tcp", "tls". */
const char *sip_transport_name(int kind);

/*
 * At a clean stop, after the workers stopped and before the write-behind is
 * flushed: queue every binding whose stored row lags its true expiry (a
 * refresh that only moved the expiry is not always written at once; see
 * registrar.c). Returns how many were queued.
 */
size_t registrar_flush_refreshes(void);

#endif
