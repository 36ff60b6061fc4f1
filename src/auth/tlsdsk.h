/*
 * TLS-DSK ([MS-SIPAE] 3.2.5.1, PROTOCOLS.md §1): the server side of a TLS
 * handshake carried in gssapi-data, whose keying material signs the SIP
 * messages of the security association it creates.
 *
 *   leg 1  client ClientHello            -> ServerHello .. ServerHelloDone
 *   leg 2  client Certificate .. Finished -> ChangeCipherSpec, Finished
 *          (the handshake is complete on our side: the caller verifies the
 *          client certificate with the PKI, tlsdsk_accept_peer, and the SA
 *          is established; the client's next message is already signed)
 *
 * The TLS engine is OpenSSL over memory BIOs: server mode with the SIP
 * certificate and key, a client certificate required (any certificate is
 * accepted by OpenSSL; the PKI decides afterwards), no session tickets, no
 * renegotiation, TLS 1.2 only unless the deployment allows TLS 1.0/1.1 and
 * then with TLS_RSA_WITH_AES_{128,256}_CBC_SHA only (what the open-source
 * client offers). Never TLS 1.3: the exporter and the flights differ.
 *
 * Keys: 128 bytes of SSL_export_keying_material with the label "client
 * EAP encryption" and no context (= PRF(master_secret, label,
 * client_random + server_random), what pidgin-sipe computes); bytes 64-95
 * sign client-to-server messages, bytes 96-127 server-to-client ones.
 * Signature: HMAC with the negotiated suite's MAC hash (SHA-1 for the
 * *_CBC_SHA suites, as pidgin-sipe; MD5 suites are never negotiated). AEAD
 * suites have no MAC hash: their PRF hash is used (SHA-256, or SHA-384 for
 * *_SHA384 suites), a choice of ours documented in rtcauth.conf(5). The
 * signature is the whole HMAC output (20, 32 or 48 bytes).
 *
 * Bounds: TLSDSK_MAX_LEGS legs, TLSDSK_MAX_IN bytes of records per leg and
 * TLSDSK_MAX_TOTAL in all; the handshake's time is the pending SA's TTL.
 *
 * Never logs: keys, the master secret, records. Keys are wiped on free.
 */
#ifndef RTC_AUTH_TLSDSK_H
#define RTC_AUTH_TLSDSK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "auth/sa.h"

#define TLSDSK_MAX_LEGS	 4
#define TLSDSK_MAX_IN	 9216  /* bytes of client records in one leg */
#define TLSDSK_MAX_TOTAL 24576 /* bytes of client records in a handshake */
#define TLSDSK_MAX_OUT	 8192  /* bytes of server records in one leg */
#define TLSDSK_KEY_LEN	 32
/* Handshakes under way at once, process-wide: each holds an SSL (tens of
 * kilobytes) for up to the pending SA's TTL, before anyone is
 * authenticated; the SA table's own bound on pending entries is larger. */
#define TLSDSK_MAX_HANDSHAKES 2000
#define TLSDSK_LABEL	      "client EAP encryption"

struct store;

/* What every handshake of a deployment shares: the SSL_CTX (certificate,
 * key, versions, suites). Thread-safe to use from any thread. */
struct tlsdsk_server;

/*
 * Load cert_file (PEM chain) and key_file. allow_tls10: [auth]
 * tlsdsk_allow_tls10. NULL with err for a person on failure.
 */
struct tlsdsk_server *tlsdsk_server_new(const char *cert_file, const char *key_file,
					bool allow_tls10, char *err, size_t errlen);
void tlsdsk_server_free(struct tlsdsk_server *s);

/* One handshake, then the SA's mechanism context (see tlsdsk_sa_mech). */
struct tlsdsk;

/* The sa_mech of TLS-DSK contexts: sign with the server key, verify with
 * the client key (constant time); both refuse until tlsdsk_accept_peer
 * succeeded. free wipes the keys. */
extern const struct sa_mech tlsdsk_sa_mech;

/* A new handshake (the SSL takes a reference on the server's SSL_CTX, so
 * s may be freed before it). 0, TLSDSK_BUSY (TLSDSK_MAX_HANDSHAKES are
 * under way: try later) or -1 (out of memory). */
#define TLSDSK_BUSY (-2)
int tlsdsk_new(struct tlsdsk_server *s, struct tlsdsk **out);
void tlsdsk_free(struct tlsdsk *t);

enum tlsdsk_result {
	TLSDSK_DONE = 0,	   /* handshake complete: send out, then tlsdsk_accept_peer */
	TLSDSK_CONTINUE = 1,	   /* send out (may be empty: the client's flight is
				      incomplete); the client goes on in the next leg */
	TLSDSK_E_PROTOCOL = -1,	   /* not TLS records, or the handshake failed */
	TLSDSK_E_NO_CERT = -2,	   /* the client sent no certificate */
	TLSDSK_E_VERSION = -3,	   /* a TLS version (or suite) we do not accept */
	TLSDSK_E_TOO_BIG = -4,	   /* a leg's or the handshake's records over their bound */
	TLSDSK_E_LEGS = -5,	   /* more than TLSDSK_MAX_LEGS legs */
	TLSDSK_E_STATE = -6,	   /* the handshake is over (or failed before) */
	TLSDSK_E_CERT = -7,	   /* the PKI refused the client certificate */
	TLSDSK_E_UNAVAILABLE = -8, /* the PKI could not decide (store, OCSP): temporary */
	TLSDSK_E_INTERNAL = -9,
};
const char *tlsdsk_strerror(int rc);

/*
 * One leg: the client's records (decoded gssapi-data) in; the server's
 * records to send (the next 401's gssapi-data) into out (cap >=
 * TLSDSK_MAX_OUT). Any error ends the handshake (later calls give
 * TLSDSK_E_STATE).
 */
int tlsdsk_step(struct tlsdsk *t, const uint8_t *in, size_t inlen, uint8_t *out, size_t cap,
		size_t *outlen);

/*
 * After TLSDSK_DONE: the client certificate through pki_verify_client (the
 * chain it sent as untrusted intermediates); on success user gets the
 * user it names, *not_after the certificate's expiry (unix seconds), and
 * the signing keys are derived (the TLS state is freed). 0,
 * TLSDSK_E_CERT (*pki_rc says why), TLSDSK_E_UNAVAILABLE, TLSDSK_E_STATE,
 * TLSDSK_E_INTERNAL.
 */
int tlsdsk_accept_peer(struct tlsdsk *t, struct store *s, int64_t now, char *user, size_t cap,
		       int64_t *not_after, int *pki_rc);

/*
 * A UDP retransmission of the leg that completed the handshake (RFC 3261
 * §17.2.1: it gets the answer its first copy got): when in is byte for
 * byte that leg, our final records again into out. 0, or -1 (not that
 * leg, or the handshake is not complete).
 */
int tlsdsk_final_again(struct tlsdsk *t, const uint8_t *in, size_t inlen, uint8_t *out, size_t cap,
		       size_t *outlen);

/* "TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256 HMAC-SHA256", for the log; valid
 * after TLSDSK_DONE. */
const char *tlsdsk_describe(const struct tlsdsk *t);

#endif
