/*
 * rtcauthctl probe internals: the pieces of the MS-SIPAE / Digest test
 * client (ctl_probe.c) that can be tested alone.
 *
 *  - probe_gss_*: the GSSAPI initiator (MIT krb5 for Kerberos, gss-ntlmssp
 *    in connectionless mode for NTLM) and the MS-SIPAE signatures made and
 *    checked with it (GetMIC / VerifyMIC, hex on the wire). Never our own
 *    acceptor code: the probe checks the server with someone else's client.
 *  - probe_tlsdsk_*: the TLS-DSK client (OpenSSL over memory BIOs with the
 *    user's certificate) and its HMAC signatures, written apart from the
 *    server's src/auth/tlsdsk.c.
 *  - probe_auth_parse: one WWW-Authenticate / Proxy-Authenticate /
 *    Authentication-Info / Proxy-Authentication-Info value, any scheme.
 *  - probe_conn_*: one connection to the server over UDP, TCP or TLS with a
 *    deadline on every wait; messages are framed (streams) and returned whole.
 *
 * Nothing here prints or keeps a password: the NTLM password goes into the
 * GSS credential and the caller's copy is the caller's to wipe.
 */
#ifndef RTC_CTL_PROBE_H
#define RTC_CTL_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

enum probe_mech { PROBE_MECH_DIGEST = 0, PROBE_MECH_KERBEROS, PROBE_MECH_NTLM, PROBE_MECH_TLSDSK };

/* ---- GSSAPI initiator (probe_gss.c) ---- */

struct probe_gss;

/*
 * Credentials for one handshake. Kerberos: the default credential cache
 * (KRB5CCNAME); user and password are ignored. NTLM: user is "DOMAIN\user"
 * or "user" (the domain may also come in domain, which wins when set), the
 * password goes into the gss-ntlmssp credential store. 0, or -1 with a
 * message for a person in err.
 */
int probe_gss_new(enum probe_mech mech, const char *user, const char *domain, const char *password,
		  struct probe_gss **out, char *err, size_t errlen);
void probe_gss_free(struct probe_gss *g);

/*
 * One initiator step toward the host-based service sip@host, with the
 * server's token in (NULL/0 for the first step). Flags: Kerberos
 * mutual+integrity; NTLM integrity + GSS_C_DATAGRAM_FLAG (connectionless:
 * the first step yields an empty token). *out (malloc'd, free it; may be
 * NULL when *outlen is 0) is the token to send. Returns 0 when the context
 * is complete, 1 when the server must answer, -1 with err on failure.
 */
int probe_gss_step(struct probe_gss *g, const char *host, const uint8_t *in, size_t inlen,
		   uint8_t **out, size_t *outlen, char *err, size_t errlen);

/* Kerberos: ask for mutual authentication (the default) or not (what
 * pidgin-sipe does: the context is complete after the AP-REQ, so the
 * REGISTER carrying it can be signed). Before the first step. */
void probe_gss_set_mutual(struct probe_gss *g, bool mutual);

/* Channel bindings for the handshake (RFC 5929 over TLS: "tls-server-end-
 * point:" + the server certificate's hash as application data); copied.
 * Before the first step. 0 or -1. */
int probe_gss_set_tls_binding(struct probe_gss *g, const uint8_t *endpoint, size_t len);

/* The context can sign now (complete, or protection-ready before the
 * Kerberos AP-REP arrives). */
bool probe_gss_can_sign(const struct probe_gss *g);
bool probe_gss_complete(const struct probe_gss *g);

/* GetMIC over buf, lower-case hex into hex (NUL-terminated). NTLM: the
 * sequence number is set to 100 first ([MS-SIPAE] 3.2.5.1.2). Returns the
 * hex length or -1. */
int probe_gss_sign_hex(struct probe_gss *g, const void *buf, size_t len, char *hex, size_t cap);
/* VerifyMIC of hex (either case) over buf. 0 valid, -1 not. */
int probe_gss_verify_hex(struct probe_gss *g, const void *buf, size_t len, struct str hex);

/* ---- TLS-DSK client (probe_tlsdsk.c) ---- */

struct probe_tlsdsk;

/*
 * The user's certificate (PEM, may hold a chain) and key. ca_file (may be
 * NULL/''): verify the server certificate against it, for name host.
 * tls10: offer TLS 1.0 with RSA CBC-SHA suites only (as pidgin-sipe);
 * otherwise TLS 1.2 only. 0, or -1 with a message for a person.
 */
int probe_tlsdsk_new(const char *cert_file, const char *key_file, const char *ca_file,
		     const char *host, bool tls10, struct probe_tlsdsk **out, char *err,
		     size_t errlen);
void probe_tlsdsk_free(struct probe_tlsdsk *d);
/* As probe_gss_step: in NULL first (yields the ClientHello); 0 complete
 * (keys derived; *out may be empty), 1 more to come, -1 with err. */
int probe_tlsdsk_step(struct probe_tlsdsk *d, const uint8_t *in, size_t inlen, uint8_t **out,
		      size_t *outlen, char *err, size_t errlen);
bool probe_tlsdsk_complete(const struct probe_tlsdsk *d);
/* "TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256, HMAC-SHA256, ..." once complete. */
const char *probe_tlsdsk_describe(const struct probe_tlsdsk *d);
/* HMAC under the client key, lower-case hex. Hex length or -1. */
int probe_tlsdsk_sign_hex(struct probe_tlsdsk *d, const void *buf, size_t len, char *hex,
			  size_t cap);
/* HMAC under the server key compared (constant time). 0 valid, -1 not. */
int probe_tlsdsk_verify_hex(struct probe_tlsdsk *d, const void *buf, size_t len, struct str hex);

/* ---- auth header values (probe_auth.c) ---- */

#define PROBE_AUTH_FIELD 512
#define PROBE_AUTH_TOKEN 12288

/* One challenge or Authentication-Info value; every field NUL-terminated
 * and unquoted; empty when absent. */
struct probe_auth {
	char scheme[32];
	char realm[PROBE_AUTH_FIELD];
	char targetname[PROBE_AUTH_FIELD];
	char opaque[PROBE_AUTH_FIELD];
	bool has_gssapi_data;
	char gssapi_data[PROBE_AUTH_TOKEN];
	int version; /* 0 when absent */
	/* Digest challenge */
	char nonce[PROBE_AUTH_FIELD];
	char algorithm[64];
	char qop[64];
	bool stale;
	/* Authentication-Info */
	char rspauth[PROBE_AUTH_FIELD];
	char srand[32];
	char snum[32];
	char sts_uri[PROBE_AUTH_FIELD];
};

/* 0, or -1 when the value does not parse or a field is over its bound. */
int probe_auth_parse(struct str value, struct probe_auth *out);

/* ---- connection (probe_net.c) ---- */

enum probe_transport { PROBE_UDP = 0, PROBE_TCP = 1, PROBE_TLS = 2 };

#define PROBE_MSG_MAX 65536

struct probe_conn;

/*
 * Connect to host:port (numeric IPv4/IPv6 or a name resolved on this host).
 * TLS: verify the server certificate against ca_file, SNI and name check =
 * sni (defaults to host). Waits at most timeout_ms. 0, or -1 with err.
 */
int probe_conn_open(enum probe_transport t, const char *host, uint16_t port, const char *ca_file,
		    const char *sni, int timeout_ms, struct probe_conn **out, char *err,
		    size_t errlen);
void probe_conn_close(struct probe_conn *c);
/* TLS: the tls-server-end-point hash of the server's certificate (RFC 5929)
 * into out (cap >= 64). Its length, or -1 (not TLS). */
int probe_conn_tls_end_point(const struct probe_conn *c, uint8_t *out, size_t cap);
enum probe_transport probe_conn_transport(const struct probe_conn *c);
/* Our address as the server sees it: numeric host and port, for Via/Contact. */
const char *probe_conn_local_host(const struct probe_conn *c);
uint16_t probe_conn_local_port(const struct probe_conn *c);
/* Send one message. 0 or -1 with err. */
int probe_conn_send(struct probe_conn *c, const char *buf, size_t len, char *err, size_t errlen);
/*
 * Receive the next whole message before deadline_ms (clock_mono_ms). The
 * message is copied into buf (cap >= PROBE_MSG_MAX) and its length
 * returned; 0 on timeout; -1 with err when the connection failed or the
 * stream cannot be framed.
 */
long probe_conn_recv(struct probe_conn *c, uint64_t deadline_ms, char *buf, size_t cap, char *err,
		     size_t errlen);

/* ---- the command (ctl_probe.c) ---- */

struct ctl;
/* rtcauthctl probe ARGS: exit code (0 every step ok, 1 a step failed, 2 usage). */
int ctl_probe_main(struct ctl *c, int argc, char **argv);

#endif
