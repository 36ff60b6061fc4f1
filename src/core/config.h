/*
 * rtcauth.conf: an INI file read with inih. Every key is known here; an
 * unknown section or key, or a bad value, is an error that names file:line
 * and says what to do. config_load never starts anything; it only fills a
 * struct config that the caller owns (plain data, no pointers to free).
 */
#ifndef RTC_CORE_CONFIG_H
#define RTC_CORE_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/digest_alg.h"
#include "core/log.h"

#define CONFIG_MAX_LISTEN    16
#define CONFIG_HOST_MAX	     256
#define CONFIG_URL_MAX	     1024 /* an https URL: [oauth] issuer, authorization_server */
#define CONFIG_NAME_MAX	     64
#define CONFIG_ALG_MAX	     8
#define CONFIG_MAX_CIDR	     64
#define CONFIG_MAX_PKI_FILES 8 /* [pki] trusted_root / crl_file lines */

enum transport_kind { TRANSPORT_UDP = 0, TRANSPORT_TCP = 1, TRANSPORT_TLS = 2 };

struct listen_addr {
	enum transport_kind kind;
	char host[64]; /* numeric IPv4 or IPv6 literal (no brackets), or "*" */
	uint16_t port;
};

/* An address prefix ([turn] allowed_peer / denied_peer). IPv4 is kept in its
 * IPv4-mapped IPv6 form (::ffff:a.b.c.d, prefix + 96), so one comparison
 * covers both families and the mapped spellings of IPv4 addresses. */
struct config_cidr {
	uint8_t ip[16];
	uint8_t prefix; /* 0..128 */
};

enum auth_scheme {
	AUTH_SCHEME_KERBEROS,
	AUTH_SCHEME_NTLM,
	AUTH_SCHEME_DIGEST,
	AUTH_SCHEME_TLSDSK, /* [MS-SIPAE] TLS-DSK on SIP only; never a default */
	AUTH_SCHEME_COUNT
};
/* "kerberos", "ntlm", "digest", "tls-dsk" */
const char *config_scheme_name(enum auth_scheme s);

/* [pki] map: where a client certificate names its user, in the order tried */
enum config_pki_map {
	CONFIG_PKI_MAP_SAN_URI, /* subjectAltName URI sip:user@domain */
	CONFIG_PKI_MAP_UPN,	/* subjectAltName otherName UPN user@domain */
	CONFIG_PKI_MAP_EMAIL,	/* subjectAltName rfc822Name user@domain */
	CONFIG_PKI_MAP_CN,	/* subject CN: sip:user@domain or user@domain */
	CONFIG_PKI_MAP_COUNT
};

struct config {
	char path[PATH_MAX]; /* the file this came from */

	/* [server] */
	char domain[CONFIG_HOST_MAX]; /* SIP domain, also the Digest realm (lower case) */
	char fqdn[CONFIG_HOST_MAX];   /* this server's name; default: gethostname() */
	int workers;		      /* 0 = one per online CPU */
	int blocking_threads;	  /* core/workq pool (PIN scrypt, OCSP); 0 = max(2, CPUs); <= 64 */
	char state_dir[PATH_MAX]; /* default /var/lib/rtcauth */

	/* [sip] */
	struct listen_addr listen[CONFIG_MAX_LISTEN];
	size_t n_listen;	  /* default: udp:0.0.0.0:5060 tcp:0.0.0.0:5060 tls:0.0.0.0:5061 */
	char tls_cert[PATH_MAX];  /* default: <state_dir>/tls/server.crt (bootstrap) */
	char tls_key[PATH_MAX];	  /* default: <state_dir>/tls/server.key */
	size_t max_message_size;  /* default 65536 */
	int idle_timeout;	  /* seconds, stream connections; default 300 */
	int max_conns_per_source; /* default 64 */
	int min_expires;	  /* default 60 (423 below it) */
	int max_expires;	  /* default 7200 */
	int default_expires;	  /* default 3600 */
	int max_contacts;	  /* per AOR, default 10 */

	/* [store] */
	char sqlite_path[PATH_MAX]; /* default <state_dir>/rtcauth.db */

	/* [log] */
	enum log_level log_level; /* default info */
	enum log_dest log_dest;	  /* default stderr */

	/* [auth] */
	/* offered challenges, in this order; digest_sess[i] offers the -sess
	 * form (RFC 7616 §3.4.2) of digest_algs[i] */
	enum digest_alg digest_algs[2 * DIGEST_ALG_COUNT];
	bool digest_sess[2 * DIGEST_ALG_COUNT];
	size_t n_digest_algs;	     /* default SHA-512-256, SHA-256, MD5 */
	bool digest_qop_auth_int;    /* offer auth-int besides auth; default true */
	int nonce_lifetime;	     /* seconds, default 300 */
	int lockout_user_failures;   /* default 10 */
	int lockout_user_window;     /* seconds, default 300 */
	int lockout_user_duration;   /* seconds, default 300 (doubles per repeat) */
	int lockout_user_max;	     /* seconds, default 3600 */
	int lockout_source_failures; /* default 30 */
	int lockout_source_window;   /* seconds, default 60 */
	int lockout_source_duration; /* seconds, default 300 */

	/* offered schemes, in challenge order; default digest, kerberos, ntlm
	 * (Kerberos is offered only when a keytab is configured and loads) */
	enum auth_scheme auth_schemes[AUTH_SCHEME_COUNT];
	size_t n_auth_schemes;
	char sipae_realm[CONFIG_NAME_MAX]; /* NTLM/Kerberos realm; "SIP Communications Service" */
	int sipae_version;		   /* offered version, 3 or 4; default 4 */
	bool tlsdsk_allow_tls10; /* TLS-DSK may use TLS 1.0/1.1 (RSA CBC-SHA suites); default no */

	/* [kerberos] */
	char krb_keytab[PATH_MAX];	 /* '' = Kerberos off */
	char krb_realm[CONFIG_HOST_MAX]; /* default: [server] domain upper-cased */

	/* [ntlm] */
	char ntlm_domain[16];	    /* NetBIOS domain; default first label of domain, upper */
	char ntlm_computer[16];	    /* NetBIOS computer; default first label of fqdn, upper */
	bool ntlm_channel_bindings; /* require TLS channel bindings over TLS; default no */

	/* [admin] */
	char admin_socket[PATH_MAX]; /* default <state_dir>/rtcauthd.sock */

	/* [http]: the HTTPS web services (always on: OAuth needs them) */
	struct listen_addr http_listen[CONFIG_MAX_LISTEN]; /* kind is TRANSPORT_TLS */
	size_t n_http_listen;				   /* default 0.0.0.0:8443 */
	char http_cert[PATH_MAX];			   /* default: [sip] tls_cert */
	char http_key[PATH_MAX];			   /* default: [sip] tls_key */
	size_t http_max_header_size; /* request line and headers; default 16384 */
	size_t http_max_body_size;   /* default 65536 */
	int http_timeout;	     /* seconds of silence before a connection is closed; 30 */

	/* [oauth]: always on (no key turns it off) */
	char oauth_issuer[CONFIG_URL_MAX];	  /* default https://<fqdn>[:<first [http] port>] */
	char oauth_realm[CONFIG_HOST_MAX];	  /* default: [server] domain */
	char oauth_principal_id[CONFIG_HOST_MAX]; /* default the Lync principal id */
	char oauth_service_name[CONFIG_NAME_MAX]; /* default "rtcauth" */
	char oauth_signing_alg[CONFIG_ALG_MAX];	  /* of the key made at first start; RS256 */
	int oauth_default_token_lifetime;	  /* seconds, default 3600 */
	int oauth_max_token_lifetime;		  /* seconds, default 86400: issued and accepted */
	int oauth_clock_skew;			  /* seconds, default 300, at most 3600 */
	size_t oauth_max_token_size;		  /* bytes, default 16384 */
	char oauth_authorization_server[CONFIG_URL_MAX]; /* https metadata URL, or '' */
	int oauth_metadata_refresh;	    /* seconds between partner metadata fetches; 86400 */
	char oauth_fetch_ca_file[PATH_MAX]; /* extra CAs for metadata fetches, or '' */

	/* [turn]: the TURN/STUN relay (off unless a listen line is given) */
	struct listen_addr turn_listen[CONFIG_MAX_LISTEN];
	size_t n_turn_listen;		 /* default none: TURN off */
	char turn_relay_address[64];	 /* numeric; default the first listen address */
	int turn_min_port;		 /* relay ports; default 49152 */
	int turn_max_port;		 /* default 65535 */
	int turn_default_lifetime;	 /* seconds, default 600 */
	int turn_max_lifetime;		 /* seconds, default 3600 */
	int turn_nonce_lifetime;	 /* seconds, default 600 (then 438) */
	int turn_user_quota;		 /* allocations per user, default 10 */
	int turn_total_quota;		 /* allocations in total, default 10000 */
	size_t turn_max_bps;		 /* bytes per second per allocation, 0 = no cap */
	int turn_unauth_rate;		 /* 401/438 answers per second per source IP, 10 */
	int turn_unauth_burst;		 /* default 20 */
	int turn_rfc5766_channels;	 /* 1: also channels 0x5000-0x7FFF; default 0 */
	char turn_secret_file[PATH_MAX]; /* default <state_dir>/turn.secret */
	struct config_cidr turn_allowed_peer[CONFIG_MAX_CIDR];
	size_t n_turn_allowed_peer;
	struct config_cidr turn_denied_peer[CONFIG_MAX_CIDR];
	size_t n_turn_denied_peer;

	/* [pki]: the issuing CA and the trust in client certificates (issue 5) */
	char pki_ca_cert[PATH_MAX]; /* '' (default): the built-in CA in <state_dir>/pki */
	char pki_ca_key[PATH_MAX];  /* set with pki_ca_cert, or neither */
	char pki_trusted_root[CONFIG_MAX_PKI_FILES][PATH_MAX]; /* PEM files of roots */
	size_t n_pki_trusted_root;
	char pki_crl_file[CONFIG_MAX_PKI_FILES][PATH_MAX]; /* CRLs of external CAs (PEM/DER) */
	size_t n_pki_crl_file;
	bool pki_ocsp;	       /* ask the AIA OCSP responder of external CAs; default yes */
	int pki_cert_lifetime; /* seconds; default 180 days, 8 h .. 1 year */
	enum config_pki_map pki_map[CONFIG_PKI_MAP_COUNT]; /* default san-uri, upn, email, cn */
	size_t n_pki_map;

	/* [pin]: PINs for phones (issue 5; src/pki/pin.h) */
	int pin_min_length; /* digits, 4..24; default 6 */
};

/* Is scheme s among cfg's offered schemes? */
bool config_offers(const struct config *cfg, enum auth_scheme s);

/* Fill every field with its default (state_dir-derived paths included). */
void config_defaults(struct config *cfg);

/*
 * Read path into cfg (starting from defaults). Returns 0, or -1 with a
 * message in err such as
 *   "rtcauth.conf:12: unknown key 'lisen' in [sip]; see rtcauth.conf(5)"
 * A missing file is an error too ("cannot open ...: No such file ...").
 */
int config_load(const char *path, struct config *cfg, char *err, size_t errlen);

/* Set the derived [oauth] defaults from the other fields: issuer
 * "https://<fqdn>" plus ":<port>" of the first [http] listen unless 443,
 * and realm = domain. config_load does this unless the file sets them. */
void config_oauth_defaults(struct config *cfg);

/* "udp:ADDR:PORT" (IPv6 as [::1]); 0 or -1. */
int config_parse_listen(const char *s, struct listen_addr *out);
/* "10.0.0.0/8", "fe80::/10", "192.0.2.1" (a host); 0 or -1. */
int config_parse_cidr(const char *s, struct config_cidr *out);
/* [http] listen: "ADDR:PORT", "[IPv6]:PORT" or "*:PORT" (kind TLS); 0 or -1. */
int config_parse_http_listen(const char *s, struct listen_addr *out);

#endif
