/*
 * rtcauth.conf loader: inih does the INI syntax, this file knows every
 * section and key, their types, ranges and defaults, and turns every mistake
 * into one message naming file:line, the key, the bad value and what is
 * allowed. It never starts anything, never opens anything but the config
 * file, and leaves the caller's struct untouched when the file is wrong (so a
 * failed SIGHUP reload keeps the running configuration).
 *
 * Debian's inih is built without INI_HANDLER_LINENO, so line numbers come
 * from our own reader (ini_parse_stream), which also catches lines longer
 * than inih's buffer instead of letting inih split them silently.
 */
#include "core/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/str.h"

#define DEFAULT_STATE_DIR "/var/lib/rtcauth"
#define LISTEN_HINT	  "expected udp|tcp|tls:ADDRESS:PORT, e.g. udp:0.0.0.0:5060"
#define HTTP_LISTEN_HINT                                                                           \
	"expected ADDRESS:PORT with ADDRESS an IPv4 address, [IPv6 address] or *, e.g. "           \
	"0.0.0.0:8443 or [::1]:8443"
#define LINE_MAX_LEN (INI_MAX_LINE - 3)

enum key_kind {
	K_HOST,	       /* host name, lower-cased */
	K_INT,	       /* plain decimal */
	K_DURATION,    /* seconds, or N with s/m/h */
	K_SIZE,	       /* bytes, or N with K/M (size_t field) */
	K_PATH,	       /* relative to the config file's directory */
	K_LISTEN,      /* repeatable */
	K_HTTP_LISTEN, /* repeatable */
	K_LOGLEVEL,
	K_LOGDEST,
	K_ALGS,
	K_QOP,
	K_URL,	       /* https URL (issuer rules when the key is "issuer") */
	K_IDENT,       /* realm / principal id: printable, no space, '@', '/' */
	K_NAME,	       /* a display name: printable, spaces allowed */
	K_JOSE_ALG,    /* RS256 | PS256 | ES256 | EdDSA */
	K_SCHEMES,     /* [auth] schemes: kerberos, ntlm, digest, tls-dsk */
	K_TURN_LISTEN, /* [turn] listen, repeatable */
	K_CIDR,	       /* [turn] allowed_peer / denied_peer, repeatable */
	K_IP,	       /* a numeric IPv4 or IPv6 address */
	K_BOOL,	       /* yes | no (bool field) */
	K_PKI_FILE,    /* [pki] trusted_root / crl_file: a path, repeatable */
	K_PKI_MAP,     /* [pki] map: san-uri, upn, email, cn */
};

struct key {
	const char *section;
	const char *name;
	enum key_kind kind;
	size_t off;
	long min, max;
};

#define F(field) offsetof(struct config, field)

static const struct key keys[] = {
    {"server", "domain", K_HOST, F(domain), 0, 0},
    {"server", "fqdn", K_HOST, F(fqdn), 0, 0},
    {"server", "workers", K_INT, F(workers), 0, 256},
    {"server", "blocking_threads", K_INT, F(blocking_threads), 0, 64},
    {"server", "state_dir", K_PATH, F(state_dir), 0, 0},
    {"sip", "listen", K_LISTEN, F(listen), 0, 0},
    {"sip", "tls_cert", K_PATH, F(tls_cert), 0, 0},
    {"sip", "tls_key", K_PATH, F(tls_key), 0, 0},
    {"sip", "max_message_size", K_SIZE, F(max_message_size), 1024, 1024 * 1024},
    {"sip", "idle_timeout", K_DURATION, F(idle_timeout), 5, 86400},
    {"sip", "max_conns_per_source", K_INT, F(max_conns_per_source), 1, 65535},
    {"sip", "min_expires", K_DURATION, F(min_expires), 1, 86400},
    {"sip", "max_expires", K_DURATION, F(max_expires), 1, 604800},
    {"sip", "default_expires", K_DURATION, F(default_expires), 1, 604800},
    {"sip", "max_contacts", K_INT, F(max_contacts), 1, 1000},
    {"store", "sqlite", K_PATH, F(sqlite_path), 0, 0},
    {"log", "level", K_LOGLEVEL, F(log_level), 0, 0},
    {"log", "destination", K_LOGDEST, F(log_dest), 0, 0},
    {"auth", "digest_algorithms", K_ALGS, F(digest_algs), 0, 0},
    {"auth", "digest_qop", K_QOP, F(digest_qop_auth_int), 0, 0},
    {"auth", "nonce_lifetime", K_DURATION, F(nonce_lifetime), 10, 3600},
    {"auth", "lockout_user_failures", K_INT, F(lockout_user_failures), 1, 1000},
    {"auth", "lockout_user_window", K_DURATION, F(lockout_user_window), 1, 86400},
    {"auth", "lockout_user_duration", K_DURATION, F(lockout_user_duration), 1, 86400},
    {"auth", "lockout_user_max", K_DURATION, F(lockout_user_max), 1, 604800},
    {"auth", "lockout_source_failures", K_INT, F(lockout_source_failures), 1, 100000},
    {"auth", "lockout_source_window", K_DURATION, F(lockout_source_window), 1, 86400},
    {"auth", "lockout_source_duration", K_DURATION, F(lockout_source_duration), 1, 86400},
    {"auth", "schemes", K_SCHEMES, F(auth_schemes), 0, 0},
    {"auth", "sipae_realm", K_NAME, F(sipae_realm), 0, CONFIG_NAME_MAX - 1},
    {"auth", "sipae_version", K_INT, F(sipae_version), 3, 4},
    {"auth", "tlsdsk_allow_tls10", K_BOOL, F(tlsdsk_allow_tls10), 0, 0},
    {"kerberos", "keytab", K_PATH, F(krb_keytab), 0, 0},
    {"kerberos", "realm", K_IDENT, F(krb_realm), 0, CONFIG_HOST_MAX - 1},
    {"ntlm", "domain", K_IDENT, F(ntlm_domain), 0, 15},
    {"ntlm", "computer", K_IDENT, F(ntlm_computer), 0, 15},
    {"ntlm", "channel_bindings", K_BOOL, F(ntlm_channel_bindings), 0, 0},
    {"admin", "socket", K_PATH, F(admin_socket), 0, 0},
    {"http", "listen", K_HTTP_LISTEN, F(http_listen), 0, 0},
    {"http", "cert", K_PATH, F(http_cert), 0, 0},
    {"http", "key", K_PATH, F(http_key), 0, 0},
    {"http", "max_header_size", K_SIZE, F(http_max_header_size), 1024, 1024 * 1024},
    {"http", "max_body_size", K_SIZE, F(http_max_body_size), 1024, 64 * 1024 * 1024},
    {"http", "timeout", K_DURATION, F(http_timeout), 1, 3600},
    {"oauth", "issuer", K_URL, F(oauth_issuer), 0, CONFIG_URL_MAX - 64},
    {"oauth", "realm", K_IDENT, F(oauth_realm), 0, CONFIG_HOST_MAX - 1},
    {"oauth", "principal_id", K_IDENT, F(oauth_principal_id), 0, CONFIG_HOST_MAX - 1},
    {"oauth", "service_name", K_NAME, F(oauth_service_name), 0, CONFIG_NAME_MAX - 1},
    {"oauth", "signing_alg", K_JOSE_ALG, F(oauth_signing_alg), 0, 0},
    {"oauth", "default_token_lifetime", K_DURATION, F(oauth_default_token_lifetime), 60, 604800},
    {"oauth", "max_token_lifetime", K_DURATION, F(oauth_max_token_lifetime), 60, 604800},
    {"oauth", "clock_skew", K_DURATION, F(oauth_clock_skew), 0, 3600},
    {"oauth", "max_token_size", K_SIZE, F(oauth_max_token_size), 1024, 1024 * 1024},
    {"oauth", "authorization_server", K_URL, F(oauth_authorization_server), 0, CONFIG_URL_MAX - 1},
    {"oauth", "metadata_refresh", K_DURATION, F(oauth_metadata_refresh), 60, 604800},
    {"oauth", "fetch_ca_file", K_PATH, F(oauth_fetch_ca_file), 0, 0},
    {"turn", "listen", K_TURN_LISTEN, F(turn_listen), 0, 0},
    {"turn", "relay_address", K_IP, F(turn_relay_address), 0, 0},
    {"turn", "min_port", K_INT, F(turn_min_port), 1024, 65535},
    {"turn", "max_port", K_INT, F(turn_max_port), 1024, 65535},
    {"turn", "default_lifetime", K_DURATION, F(turn_default_lifetime), 60, 3600},
    {"turn", "max_lifetime", K_DURATION, F(turn_max_lifetime), 60, 86400},
    {"turn", "nonce_lifetime", K_DURATION, F(turn_nonce_lifetime), 10, 86400},
    {"turn", "user_quota", K_INT, F(turn_user_quota), 1, 1000000},
    {"turn", "total_quota", K_INT, F(turn_total_quota), 1, 1000000},
    {"turn", "max_bps", K_SIZE, F(turn_max_bps), 0, 1L << 30},
    {"turn", "unauth_rate", K_INT, F(turn_unauth_rate), 1, 1000000},
    {"turn", "unauth_burst", K_INT, F(turn_unauth_burst), 1, 1000000},
    {"turn", "rfc5766_channels", K_INT, F(turn_rfc5766_channels), 0, 1},
    {"turn", "secret_file", K_PATH, F(turn_secret_file), 0, 0},
    {"turn", "allowed_peer", K_CIDR, F(turn_allowed_peer), 0, 0},
    {"turn", "denied_peer", K_CIDR, F(turn_denied_peer), 0, 0},
    {"pki", "ca_cert", K_PATH, F(pki_ca_cert), 0, 0},
    {"pki", "ca_key", K_PATH, F(pki_ca_key), 0, 0},
    {"pki", "trusted_root", K_PKI_FILE, F(pki_trusted_root), 0, 0},
    {"pki", "crl_file", K_PKI_FILE, F(pki_crl_file), 0, 0},
    {"pki", "ocsp", K_BOOL, F(pki_ocsp), 0, 0},
    {"pki", "cert_lifetime", K_DURATION, F(pki_cert_lifetime), 8 * 3600, 365 * 86400},
    {"pki", "map", K_PKI_MAP, F(pki_map), 0, 0},
    {"pin", "min_length", K_INT, F(pin_min_length), 4, 24},
};
#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

static const char *const sections[] = {"server", "sip",	 "store", "log",      "auth",
				       "admin",	 "http", "oauth", "kerberos", "ntlm",
				       "turn",	 "pki",	 "pin"};
#define N_SECTIONS (sizeof(sections) / sizeof(sections[0]))

/* Offered algorithm names; the -sess forms are a per-challenge flag. */
static const struct {
	const char *name;
	enum digest_alg alg;
	bool sess;
} alg_names[] = {
    {"MD5", DIGEST_MD5, false},
    {"SHA-256", DIGEST_SHA256, false},
    {"SHA-512-256", DIGEST_SHA512_256, false},
    {"MD5-sess", DIGEST_MD5, true},
    {"SHA-256-sess", DIGEST_SHA256, true},
    {"SHA-512-256-sess", DIGEST_SHA512_256, true},
};

static const char *const scheme_names[] = {
    [AUTH_SCHEME_KERBEROS] = "kerberos",
    [AUTH_SCHEME_NTLM] = "ntlm",
    [AUTH_SCHEME_DIGEST] = "digest",
    [AUTH_SCHEME_TLSDSK] = "tls-dsk",
};

const char *config_scheme_name(enum auth_scheme s)
{
	return s < AUTH_SCHEME_COUNT ? scheme_names[s] : "?";
}

static int parse_schemes(const char *value, struct config *cfg)
{
	enum auth_scheme out[AUTH_SCHEME_COUNT];
	size_t n = 0;
	struct str rest = str_cstr(value), item;

	while (rest.len) {
		long comma = str_chr(rest, ',');
		item = str_trim(comma < 0 ? rest : str_make(rest.p, (size_t)comma));
		rest = comma < 0 ? STR_NULL
				 : str_make(rest.p + comma + 1, rest.len - (size_t)comma - 1);
		size_t i;
		for (i = 0; i < AUTH_SCHEME_COUNT; i++)
			if (str_caseeq_cstr(item, scheme_names[i]))
				break;
		if (i == AUTH_SCHEME_COUNT || n == AUTH_SCHEME_COUNT)
			return -1;
		for (size_t j = 0; j < n; j++)
			if (out[j] == (enum auth_scheme)i)
				return -1;
		out[n++] = (enum auth_scheme)i;
	}
	if (n == 0)
		return -1;
	memcpy(cfg->auth_schemes, out, sizeof(out[0]) * n);
	cfg->n_auth_schemes = n;
	return 0;
}

struct loader {
	struct config *cfg;
	FILE *f;
	const char *fname;  /* as the caller named it, for messages */
	char dir[PATH_MAX]; /* absolute directory of the file */
	int lineno;	    /* line the reader handed to inih last */
	int seen[N_KEYS];   /* line where each key was set, 0 = not set */
	char *err;
	size_t errlen;
	bool failed;
};

static void fail(struct loader *ld, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct loader *ld, int line, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (ld->failed)
		return; /* the first error is the one to fix */
	ld->failed = true;
	if (!ld->err || ld->errlen == 0)
		return;
	if (line > 0)
		n = snprintf(ld->err, ld->errlen, "%s:%d: ", ld->fname, line);
	else
		n = snprintf(ld->err, ld->errlen, "%s: ", ld->fname);
	if (n < 0 || (size_t)n >= ld->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(ld->err + n, ld->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

static void fail_value(struct loader *ld, const struct key *k, const char *value, const char *what)
{
	fail(ld, ld->lineno, "[%s] %s = '%.120s' : %s", k->section, k->name, value, what);
}

/* ---- small parsers ---------------------------------------------------- */

static void lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

/* RFC 1123 host name: labels of letters, digits and '-', 1..63 each. */
static bool host_valid(const char *s)
{
	size_t len = strlen(s), label = 0;

	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i <= len; i++) {
		char c = s[i];
		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)c) && c != '-')
			return false;
		if (c == '-' && label == 0)
			return false;
		label++;
	}
	return true;
}

/*
 * Digits with an optional one-letter unit that multiplies. 0, -1 when the
 * form is wrong, -2 when the number is well formed but beyond max.
 */
static int parse_unit_number(const char *s, const char *units, const long *mult, long max,
			     long *out)
{
	size_t n = strspn(s, "0123456789");
	long m = 1;
	uint64_t v;

	if (n == 0)
		return -1;
	if (s[n] != '\0') {
		const char *u = strchr(units, s[n]);
		if (!u || s[n + 1] != '\0')
			return -1;
		m = mult[u - units];
	}
	if (n > 12 || str_to_u64(str_make(s, n), (uint64_t)max, &v) < 0 || v > (uint64_t)(max / m))
		return -2;
	*out = (long)v * m;
	return 0;
}

static int parse_duration(const char *s, long *out)
{
	static const long mult[] = {1, 60, 3600, 1, 60, 3600};
	return parse_unit_number(s, "smhSMH", mult, 1000000000L, out);
}

static int parse_size(const char *s, long *out)
{
	static const long mult[] = {1024, 1024L * 1024, 1024, 1024L * 1024};
	return parse_unit_number(s, "KMkm", mult, 1L << 40, out);
}

static int parse_plain(const char *s, long *out)
{
	return parse_unit_number(s, "", NULL, 1000000000L, out);
}

static int parse_port(const char *s, uint16_t *port)
{
	uint64_t v;

	if (str_to_u64(str_cstr(s), 65535, &v) < 0 || v == 0)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* "ADDR:PORT", "[IPv6]:PORT" or "*:PORT" into la's host and port. */
static int parse_host_port(const char *p, struct listen_addr *la)
{
	const char *host, *end, *port;
	char buf[64];
	unsigned char bin[16];
	size_t hlen;

	if (*p == '[') { /* [IPv6]:port */
		host = p + 1;
		end = strchr(host, ']');
		if (!end || end[1] != ':')
			return -1;
		port = end + 2;
	} else {
		host = p;
		end = strrchr(p, ':');
		if (!end)
			return -1;
		port = end + 1;
	}
	hlen = (size_t)(end - host);
	if (hlen == 0 || hlen >= sizeof(buf))
		return -1;
	memcpy(buf, host, hlen);
	buf[hlen] = '\0';
	if (parse_port(port, &la->port) < 0)
		return -1;
	if (strcmp(buf, "*") == 0 && *p != '[') {
		strcpy(la->host, "*");
	} else if (*p == '[') {
		if (inet_pton(AF_INET6, buf, bin) != 1 ||
		    !inet_ntop(AF_INET6, bin, la->host, sizeof(la->host)))
			return -1;
	} else {
		if (inet_pton(AF_INET, buf, bin) != 1 ||
		    !inet_ntop(AF_INET, bin, la->host, sizeof(la->host)))
			return -1;
	}
	return 0;
}

int config_parse_listen(const char *s, struct listen_addr *out)
{
	static const char *const names[] = {"udp", "tcp", "tls"};
	struct listen_addr la;
	const char *p = NULL;

	memset(&la, 0, sizeof(la));
	for (int i = 0; i < 3; i++) {
		size_t l = strlen(names[i]);
		if (strncasecmp(s, names[i], l) == 0 && s[l] == ':') {
			la.kind = (enum transport_kind)i;
			p = s + l + 1;
		}
	}
	if (!p || parse_host_port(p, &la) < 0)
		return -1;
	*out = la;
	return 0;
}

int config_parse_cidr(const char *s, struct config_cidr *out)
{
	char buf[64];
	const char *slash = strchr(s, '/');
	size_t hlen = slash ? (size_t)(slash - s) : strlen(s);
	struct config_cidr c;
	uint64_t bits = 0;
	int max;

	memset(&c, 0, sizeof(c));
	if (hlen == 0 || hlen >= sizeof(buf))
		return -1;
	memcpy(buf, s, hlen);
	buf[hlen] = '\0';
	if (inet_pton(AF_INET, buf, c.ip + 12) == 1) {
		c.ip[10] = c.ip[11] = 0xff; /* ::ffff:a.b.c.d */
		max = 32;
	} else if (inet_pton(AF_INET6, buf, c.ip) == 1) {
		max = 128;
	} else {
		return -1;
	}
	if (slash &&
	    (slash[1] == '\0' || str_to_u64(str_cstr(slash + 1), (uint64_t)max, &bits) < 0))
		return -1;
	c.prefix = (uint8_t)((slash ? (int)bits : max) + (max == 32 ? 96 : 0));
	*out = c;
	return 0;
}

int config_parse_http_listen(const char *s, struct listen_addr *out)
{
	struct listen_addr la;

	memset(&la, 0, sizeof(la));
	la.kind = TRANSPORT_TLS;
	if (parse_host_port(s, &la) < 0)
		return -1;
	*out = la;
	return 0;
}

/* Join dir and a path relative to it, dropping leading "./". */
static int resolve_path(const char *dir, const char *p, char *out, size_t cap)
{
	int n;

	if (p[0] == '/') {
		n = snprintf(out, cap, "%s", p);
	} else {
		while (p[0] == '.' && p[1] == '/')
			p += 2 + strspn(p + 2, "/");
		if (strcmp(p, ".") == 0 || *p == '\0')
			n = snprintf(out, cap, "%s", dir);
		else
			n = snprintf(out, cap, "%s%s%s", dir, strcmp(dir, "/") ? "/" : "", p);
	}
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static int derive(const char *state_dir, const char *rel, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/%s", state_dir, rel);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static int parse_algs(const char *value, struct config *cfg)
{
	char buf[256];
	char *save = NULL, *tok;
	size_t n = 0;

	if (strlen(value) >= sizeof(buf))
		return -1;
	strcpy(buf, value);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		struct str t = str_trim(str_cstr(tok));
		size_t i;

		for (i = 0; i < sizeof(alg_names) / sizeof(alg_names[0]); i++)
			if (str_caseeq_cstr(t, alg_names[i].name))
				break;
		if (i == sizeof(alg_names) / sizeof(alg_names[0]))
			return -1;
		for (size_t j = 0; j < n; j++)
			if (cfg->digest_algs[j] == alg_names[i].alg &&
			    cfg->digest_sess[j] == alg_names[i].sess)
				return -1;
		cfg->digest_algs[n] = alg_names[i].alg;
		cfg->digest_sess[n++] = alg_names[i].sess;
	}
	/* Empty items ("MD5,,SHA-256") are typos, not silently skipped. */
	if (n == 0 || strstr(value, ",,") || value[strlen(value) - 1] == ',' || value[0] == ',')
		return -1;
	cfg->n_digest_algs = n;
	return 0;
}

static int parse_qop(const char *value, bool *auth_int)
{
	char buf[64];
	char *save = NULL, *tok;
	bool a = false, ai = false;

	if (strlen(value) >= sizeof(buf))
		return -1;
	strcpy(buf, value);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		struct str t = str_trim(str_cstr(tok));
		if (str_caseeq_cstr(t, "auth") && !a)
			a = true;
		else if (str_caseeq_cstr(t, "auth-int") && !ai)
			ai = true;
		else
			return -1;
	}
	if (!a) /* auth-int alone would lock out every client without it */
		return -1;
	*auth_int = ai;
	return 0;
}

/*
 * An https URL: "https://" (lower case: an issuer is compared exactly,
 * RFC 8414 §2), a non-empty authority without userinfo, then printable
 * ASCII without '#', '"', '\\' or spaces. An issuer also has no query and
 * no trailing '/' (our endpoint URLs are the issuer plus a path).
 * NULL when good, else what is wrong.
 */
static const char *url_problem(const char *v, bool issuer)
{
	const char *p, *auth;
	size_t alen;

	if (strncmp(v, "https://", 8) != 0)
		return "expected an https URL, e.g. https://sip.example.com";
	auth = v + 8;
	alen = strcspn(auth, "/?#");
	if (alen == 0)
		return "the URL has no host";
	for (size_t i = 0; i < alen; i++) {
		char c = auth[i];
		if (!isalnum((unsigned char)c) && !strchr(".-:[]", c))
			return "the host part may hold only a host name or address and a port";
	}
	for (p = v; *p; p++) {
		if (*p <= ' ' || *p > '~' || *p == '#' || *p == '"' || *p == '\\')
			return "a URL has no spaces, quotes, backslashes, fragments or "
			       "non-ASCII characters";
		if (issuer && *p == '?')
			return "an issuer has no query part (RFC 8414)";
	}
	if (issuer && v[strlen(v) - 1] == '/')
		return "write the issuer without a trailing '/'";
	return NULL;
}

/* A realm or principal id: it becomes part of "principal/host@realm". */
static bool ident_valid(const char *v)
{
	if (*v == '\0')
		return false;
	for (; *v; v++)
		if (*v <= ' ' || *v > '~' || strchr("@/\"\\,", *v))
			return false;
	return true;
}

static bool name_valid(const char *v)
{
	for (; *v; v++)
		if (*v < ' ' || *v > '~' || *v == '"' || *v == '\\')
			return false;
	return true;
}

/* ---- did you mean ----------------------------------------------------- */

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t row[64];

	if (la >= 63 || lb >= 63)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (tolower((unsigned char)a[i - 1]) !=
					      tolower((unsigned char)b[j - 1]));
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

static void unknown_key(struct loader *ld, const char *section, const char *name)
{
	const struct key *best = NULL;
	size_t best_d = 3;

	/* A key of this section first, then the same key in another section. */
	for (size_t i = 0; i < N_KEYS; i++) {
		size_t d = edit_distance(name, keys[i].name);
		if (strcmp(keys[i].section, section) == 0 && d < best_d) {
			best = &keys[i];
			best_d = d;
		}
	}
	if (best) {
		fail(ld, ld->lineno,
		     "unknown key '%s' in [%s]; did you mean '%s'? see rtcauth.conf(5)", name,
		     section, best->name);
		return;
	}
	for (size_t i = 0; i < N_KEYS; i++) {
		size_t d = edit_distance(name, keys[i].name);
		if (d < best_d) {
			best = &keys[i];
			best_d = d;
		}
	}
	if (best)
		fail(ld, ld->lineno,
		     "unknown key '%s' in [%s]; did you mean '%s' in [%s]? see rtcauth.conf(5)",
		     name, section, best->name, best->section);
	else
		fail(ld, ld->lineno, "unknown key '%s' in [%s]; see rtcauth.conf(5)", name,
		     section);
}

static bool section_known(const char *name)
{
	for (size_t i = 0; i < N_SECTIONS; i++)
		if (strcmp(name, sections[i]) == 0)
			return true;
	return false;
}

static void unknown_section(struct loader *ld, const char *name)
{
	const char *best = NULL;
	size_t best_d = 3;

	for (size_t i = 0; i < N_SECTIONS; i++) {
		size_t d = edit_distance(name, sections[i]);
		/* a suggestion must keep most of the name ([tls] is not [ntlm]) */
		if (d < best_d && 2 * d < strlen(sections[i])) {
			best = sections[i];
			best_d = d;
		}
	}
	if (best)
		fail(ld, ld->lineno, "unknown section [%s]; did you mean [%s]? see rtcauth.conf(5)",
		     name, best);
	else
		fail(ld, ld->lineno,
		     "unknown section [%s]; known sections are [server] [sip] [store] [log] "
		     "[auth] [admin] [http] [oauth] [kerberos] [ntlm] [turn]; see rtcauth.conf(5)",
		     name);
}

/* ---- handler ---------------------------------------------------------- */

static void set_int(struct loader *ld, const struct key *k, const char *value)
{
	long v = 0;
	int rc;
	const char *what;
	char msg[160];

	if (k->kind == K_DURATION) {
		rc = parse_duration(value, &v);
		what = "seconds, or a number with s, m or h (e.g. 300, 5m, 1h)";
	} else if (k->kind == K_SIZE) {
		rc = parse_size(value, &v);
		what = "bytes, or a number with K or M (e.g. 65536, 64K, 1M)";
	} else {
		rc = parse_plain(value, &v);
		what = "a whole number";
	}
	if (rc == -1) {
		snprintf(msg, sizeof(msg), "expected %s", what);
		fail_value(ld, k, value, msg);
		return;
	}
	if (rc == -2 || v < k->min || v > k->max) {
		if (k->kind == K_DURATION)
			snprintf(msg, sizeof(msg), "must be between %ld and %ld seconds", k->min,
				 k->max);
		else if (k->kind == K_SIZE)
			snprintf(msg, sizeof(msg), "must be between %ldK and %ldM", k->min / 1024,
				 k->max / (1024 * 1024));
		else
			snprintf(msg, sizeof(msg), "must be between %ld and %ld", k->min, k->max);
		fail_value(ld, k, value, msg);
		return;
	}
	if (k->kind == K_SIZE)
		*(size_t *)((char *)ld->cfg + k->off) = (size_t)v;
	else
		*(int *)((char *)ld->cfg + k->off) = (int)v;
}

static void set_listen(struct loader *ld, const struct key *k, const char *value, bool first)
{
	struct config *cfg = ld->cfg;
	bool http = k->kind == K_HTTP_LISTEN, turn = k->kind == K_TURN_LISTEN;
	struct listen_addr *arr = http ? cfg->http_listen : turn ? cfg->turn_listen : cfg->listen;
	size_t *n = http ? &cfg->n_http_listen : turn ? &cfg->n_turn_listen : &cfg->n_listen;
	struct listen_addr la;

	if ((http ? config_parse_http_listen(value, &la) : config_parse_listen(value, &la)) < 0) {
		fail_value(ld, k, value, http ? HTTP_LISTEN_HINT : LISTEN_HINT);
		return;
	}
	if (first) /* the first listen line replaces the defaults */
		*n = 0;
	for (size_t i = 0; i < *n; i++) {
		if (arr[i].kind == la.kind && arr[i].port == la.port &&
		    strcmp(arr[i].host, la.host) == 0) {
			fail_value(ld, k, value, "listed twice");
			return;
		}
	}
	if (*n == CONFIG_MAX_LISTEN) {
		char msg[64];
		snprintf(msg, sizeof(msg), "too many listen lines (at most %d)", CONFIG_MAX_LISTEN);
		fail_value(ld, k, value, msg);
		return;
	}
	arr[(*n)++] = la;
}

/* [pki] map: a comma list of distinct mapping sources, tried in order. */
static int parse_pki_map(const char *value, struct config *cfg)
{
	static const char *const names[CONFIG_PKI_MAP_COUNT] = {"san-uri", "upn", "email", "cn"};
	enum config_pki_map out[CONFIG_PKI_MAP_COUNT];
	size_t n = 0;
	struct str rest = str_cstr(value), item;

	while (rest.len) {
		long comma = str_chr(rest, ',');
		item = str_trim(comma < 0 ? rest : str_make(rest.p, (size_t)comma));
		rest = comma < 0 ? STR_NULL
				 : str_make(rest.p + comma + 1, rest.len - (size_t)comma - 1);
		size_t i;
		for (i = 0; i < CONFIG_PKI_MAP_COUNT; i++)
			if (str_caseeq_cstr(item, names[i]))
				break;
		if (i == CONFIG_PKI_MAP_COUNT || n == CONFIG_PKI_MAP_COUNT)
			return -1;
		for (size_t j = 0; j < n; j++)
			if (out[j] == (enum config_pki_map)i)
				return -1;
		out[n++] = (enum config_pki_map)i;
	}
	if (n == 0)
		return -1;
	memcpy(cfg->pki_map, out, sizeof(out[0]) * n);
	cfg->n_pki_map = n;
	return 0;
}

/* [pki] trusted_root / crl_file: one more path (repeatable, at most
 * CONFIG_MAX_PKI_FILES). */
static void set_pki_file(struct loader *ld, const struct key *k, const char *value)
{
	struct config *cfg = ld->cfg;
	bool root = strcmp(k->name, "trusted_root") == 0;
	char(*arr)[PATH_MAX] = root ? cfg->pki_trusted_root : cfg->pki_crl_file;
	size_t *n = root ? &cfg->n_pki_trusted_root : &cfg->n_pki_crl_file;

	if (*n == CONFIG_MAX_PKI_FILES)
		fail_value(ld, k, value, "too many lines (at most 8)");
	else if (resolve_path(ld->dir, value, arr[*n], PATH_MAX) < 0)
		fail_value(ld, k, value, "path too long");
	else
		(*n)++;
}

static void set_value(struct loader *ld, const struct key *k, const char *value, bool first)
{
	struct config *cfg = ld->cfg;
	char *dst = (char *)cfg + k->off;

	switch (k->kind) {
	case K_HOST:
		if (strlen(value) >= CONFIG_HOST_MAX || !host_valid(value)) {
			fail_value(ld, k, value,
				   "expected a host name (letters, digits, '-' and '.'), e.g. "
				   "example.com");
			return;
		}
		strcpy(dst, value);
		lower(dst);
		break;
	case K_INT:
	case K_DURATION:
	case K_SIZE:
		set_int(ld, k, value);
		break;
	case K_PATH:
		if (resolve_path(ld->dir, value, dst, PATH_MAX) < 0)
			fail_value(ld, k, value, "path too long");
		break;
	case K_LISTEN:
	case K_HTTP_LISTEN:
	case K_TURN_LISTEN:
		set_listen(ld, k, value, first);
		break;
	case K_CIDR: {
		bool allow = strcmp(k->name, "allowed_peer") == 0;
		struct config_cidr *arr = allow ? cfg->turn_allowed_peer : cfg->turn_denied_peer;
		size_t *n = allow ? &cfg->n_turn_allowed_peer : &cfg->n_turn_denied_peer;
		if (*n == CONFIG_MAX_CIDR)
			fail_value(ld, k, value, "too many lines (at most 64)");
		else if (config_parse_cidr(value, &arr[*n]) < 0)
			fail_value(ld, k, value,
				   "expected an address or ADDRESS/PREFIX, e.g. 10.0.0.0/8 or "
				   "fd00::/8");
		else
			(*n)++;
		break;
	}
	case K_IP: {
		unsigned char bin[16];
		if (strlen(value) >= 64 ||
		    (inet_pton(AF_INET, value, bin) != 1 && inet_pton(AF_INET6, value, bin) != 1))
			fail_value(ld, k, value, "expected a numeric IPv4 or IPv6 address");
		else
			strcpy(dst, value);
		break;
	}
	case K_LOGLEVEL:
		if (log_level_parse(value, &cfg->log_level) < 0)
			fail_value(ld, k, value, "expected error, warn, info or debug");
		break;
	case K_LOGDEST:
		if (strcmp(value, "stderr") == 0)
			cfg->log_dest = LOG_TO_STDERR;
		else if (strcmp(value, "syslog") == 0)
			cfg->log_dest = LOG_TO_SYSLOG;
		else
			fail_value(ld, k, value, "expected stderr or syslog");
		break;
	case K_ALGS:
		if (parse_algs(value, cfg) < 0)
			fail_value(ld, k, value,
				   "expected a comma list of distinct MD5, SHA-256, SHA-512-256 "
				   "(or their -sess forms) in order of preference, e.g. "
				   "SHA-512-256, SHA-256, MD5");
		break;
	case K_QOP:
		if (parse_qop(value, &cfg->digest_qop_auth_int) < 0)
			fail_value(ld, k, value, "expected auth or auth,auth-int");
		break;
	case K_URL: {
		const char *why = url_problem(value, strcmp(k->name, "issuer") == 0);
		if (!why && strlen(value) > (size_t)k->max)
			why = "URL too long";
		if (why)
			fail_value(ld, k, value, why);
		else
			strcpy(dst, value);
		break;
	}
	case K_IDENT:
		if (strlen(value) > (size_t)k->max || !ident_valid(value))
			fail_value(ld, k, value,
				   "expected printable characters without spaces, '@', '/', ',' or "
				   "quotes, e.g. example.com or a GUID");
		else
			strcpy(dst, value);
		break;
	case K_NAME:
		if (strlen(value) > (size_t)k->max || !name_valid(value))
			fail_value(ld, k, value,
				   "expected a short name of printable characters without quotes");
		else
			strcpy(dst, value);
		break;
	case K_BOOL:
		if (strcmp(value, "yes") == 0 || strcmp(value, "true") == 0)
			*(bool *)dst = true;
		else if (strcmp(value, "no") == 0 || strcmp(value, "false") == 0)
			*(bool *)dst = false;
		else
			fail_value(ld, k, value, "expected yes or no");
		break;
	case K_PKI_FILE:
		set_pki_file(ld, k, value);
		break;
	case K_PKI_MAP:
		if (parse_pki_map(value, cfg) < 0)
			fail_value(ld, k, value,
				   "expected a comma list of distinct san-uri, upn, email and cn, "
				   "in the order they are tried, e.g. san-uri, upn, email, cn");
		break;
	case K_SCHEMES:
		if (parse_schemes(value, cfg) < 0)
			fail_value(
			    ld, k, value,
			    "expected a comma list of distinct kerberos, ntlm, digest and tls-dsk, "
			    "in the order the challenges offer them, e.g. kerberos, ntlm, digest");
		break;
	case K_JOSE_ALG:
		if (strcmp(value, "RS256") && strcmp(value, "PS256") && strcmp(value, "ES256") &&
		    strcmp(value, "EdDSA"))
			fail_value(ld, k, value,
				   "expected RS256, PS256, ES256 or EdDSA (exact case)");
		else
			strcpy(dst, value);
		break;
	}
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct loader *ld = user;
	char sec[64];
	const struct key *k = NULL;
	size_t i;
	struct str t = str_trim(str_cstr(section));

	if (ld->failed)
		return 0;
	if (str_copy(t, sec, sizeof(sec)) < 0)
		sec[0] = '\0';
	if (sec[0] == '\0') {
		fail(ld, ld->lineno,
		     "'%s' is outside any section; put it under its section, e.g. "
		     "[server]",
		     name);
		return 0;
	}
	if (!section_known(sec)) {
		unknown_section(ld, sec);
		return 0;
	}
	for (i = 0; i < N_KEYS; i++) {
		if (strcmp(keys[i].section, sec) == 0 && strcmp(keys[i].name, name) == 0) {
			k = &keys[i];
			break;
		}
	}
	if (!k) {
		unknown_key(ld, sec, name);
		return 0;
	}
	if (*value == '\0') {
		fail(ld, ld->lineno, "[%s] %s has no value; remove the line to use the default",
		     k->section, k->name);
		return 0;
	}
	if (ld->seen[i] && k->kind != K_LISTEN && k->kind != K_HTTP_LISTEN &&
	    k->kind != K_TURN_LISTEN && k->kind != K_CIDR && k->kind != K_PKI_FILE) {
		fail(ld, ld->lineno, "[%s] %s is set twice (first on line %d); keep one",
		     k->section, k->name, ld->seen[i]);
		return 0;
	}
	set_value(ld, k, value, ld->seen[i] == 0);
	if (!ld->seen[i])
		ld->seen[i] = ld->lineno;
	return ld->failed ? 0 : 1;
}

/*
 * fgets for inih that counts lines, refuses lines inih would split, and checks
 * section headers (inih calls the handler only for keys, so an unknown empty
 * section would otherwise pass unnoticed).
 */
static char *reader(char *buf, int num, void *stream)
{
	struct loader *ld = stream;
	size_t len;

	if (ld->failed || !fgets(buf, num, ld->f))
		return NULL;
	ld->lineno++;
	len = strlen(buf);
	if (len > 0 && buf[len - 1] != '\n' && !feof(ld->f)) {
		int c = getc(ld->f);
		if (c != '\n' && c != EOF) {
			fail(ld, ld->lineno, "line too long (at most %d characters)", LINE_MAX_LEN);
			return NULL;
		}
	}
	if (buf[0] == '[') {
		char *end = strchr(buf, ']');
		char name[64];
		if (end) {
			struct str t = str_trim(str_make(buf + 1, (size_t)(end - buf - 1)));
			if (t.len >= sizeof(name))
				t.len = sizeof(name) - 1;
			str_copy(t, name, sizeof(name));
			if (!section_known(name)) {
				unknown_section(ld, name);
				return NULL;
			}
		}
	}
	return buf;
}

/* ---- load ------------------------------------------------------------- */

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	if (gethostname(cfg->fqdn, sizeof(cfg->fqdn) - 1) < 0 || cfg->fqdn[0] == '\0')
		strcpy(cfg->fqdn, "localhost");
	lower(cfg->fqdn);
	cfg->workers = 0;
	cfg->blocking_threads = 0;
	strcpy(cfg->state_dir, DEFAULT_STATE_DIR);

	cfg->listen[0] = (struct listen_addr){TRANSPORT_UDP, "0.0.0.0", 5060};
	cfg->listen[1] = (struct listen_addr){TRANSPORT_TCP, "0.0.0.0", 5060};
	cfg->listen[2] = (struct listen_addr){TRANSPORT_TLS, "0.0.0.0", 5061};
	cfg->n_listen = 3;
	cfg->max_message_size = 65536;
	cfg->idle_timeout = 300;
	cfg->max_conns_per_source = 64;
	cfg->min_expires = 60;
	cfg->max_expires = 7200;
	cfg->default_expires = 3600;
	cfg->max_contacts = 10;

	cfg->log_level = LOG_INFO;
	cfg->log_dest = LOG_TO_STDERR;

	cfg->digest_algs[0] = DIGEST_SHA512_256;
	cfg->digest_algs[1] = DIGEST_SHA256;
	cfg->digest_algs[2] = DIGEST_MD5;
	cfg->n_digest_algs = 3;
	cfg->digest_qop_auth_int = true;
	cfg->nonce_lifetime = 300;
	cfg->lockout_user_failures = 10;
	cfg->lockout_user_window = 300;
	cfg->lockout_user_duration = 300;
	cfg->lockout_user_max = 3600;
	cfg->lockout_source_failures = 30;
	cfg->lockout_source_window = 60;
	cfg->lockout_source_duration = 300;
	/* Digest first: plain SIP clients (sipp among them) read only the
	 * first challenge; [MS-SIPAE] clients pick their scheme from all */
	cfg->auth_schemes[0] = AUTH_SCHEME_DIGEST;
	cfg->auth_schemes[1] = AUTH_SCHEME_KERBEROS;
	cfg->auth_schemes[2] = AUTH_SCHEME_NTLM;
	cfg->n_auth_schemes = 3;
	strcpy(cfg->sipae_realm, "SIP Communications Service");
	cfg->sipae_version = 4;

	cfg->http_listen[0] = (struct listen_addr){TRANSPORT_TLS, "0.0.0.0", 8443};
	cfg->n_http_listen = 1;
	cfg->http_max_header_size = 16384;
	cfg->http_max_body_size = 65536;
	cfg->http_timeout = 30;

	strcpy(cfg->oauth_principal_id, "00000004-0000-0ff1-ce00-000000000000"); /* Lync */
	strcpy(cfg->oauth_service_name, "rtcauth");
	strcpy(cfg->oauth_signing_alg, "RS256");
	cfg->oauth_default_token_lifetime = 3600;
	cfg->oauth_max_token_lifetime = 86400;
	cfg->oauth_clock_skew = 300;
	cfg->oauth_max_token_size = 16384;
	cfg->oauth_metadata_refresh = 86400;
	config_oauth_defaults(cfg);

	cfg->turn_min_port = 49152;
	cfg->turn_max_port = 65535;
	cfg->turn_default_lifetime = 600;
	cfg->turn_max_lifetime = 3600;
	cfg->turn_nonce_lifetime = 600;
	cfg->turn_user_quota = 10;
	cfg->turn_total_quota = 10000;
	cfg->turn_unauth_rate = 10;
	cfg->turn_unauth_burst = 20;
	derive(cfg->state_dir, "turn.secret", cfg->turn_secret_file, sizeof(cfg->turn_secret_file));

	cfg->pki_ocsp = true;
	cfg->pki_cert_lifetime = 180 * 86400;
	for (int i = 0; i < CONFIG_PKI_MAP_COUNT; i++)
		cfg->pki_map[i] = (enum config_pki_map)i;
	cfg->n_pki_map = CONFIG_PKI_MAP_COUNT;
	cfg->pin_min_length = 6;

	derive(cfg->state_dir, "tls/server.crt", cfg->tls_cert, sizeof(cfg->tls_cert));
	derive(cfg->state_dir, "tls/server.key", cfg->tls_key, sizeof(cfg->tls_key));
	derive(cfg->state_dir, "rtcauth.db", cfg->sqlite_path, sizeof(cfg->sqlite_path));
	derive(cfg->state_dir, "rtcauthd.sock", cfg->admin_socket, sizeof(cfg->admin_socket));
	memcpy(cfg->http_cert, cfg->tls_cert, sizeof(cfg->http_cert));
	memcpy(cfg->http_key, cfg->tls_key, sizeof(cfg->http_key));
}

void config_oauth_defaults(struct config *cfg)
{
	size_t flen = strnlen(cfg->fqdn, sizeof(cfg->fqdn) - 1);
	uint16_t port = cfg->n_http_listen ? cfg->http_listen[0].port : 443;

	if (port == 443)
		snprintf(cfg->oauth_issuer, sizeof(cfg->oauth_issuer), "https://%.*s", (int)flen,
			 cfg->fqdn);
	else
		snprintf(cfg->oauth_issuer, sizeof(cfg->oauth_issuer), "https://%.*s:%u", (int)flen,
			 cfg->fqdn, port);
	memcpy(cfg->oauth_realm, cfg->domain, sizeof(cfg->oauth_realm));
}

/* The line a key was set on, 0 if not set. name is "key" when the key name
 * is unique, else "section.key". */
static int seen_line(const struct loader *ld, const char *name)
{
	const char *dot = strchr(name, '.');
	for (size_t i = 0; i < N_KEYS; i++) {
		if (dot ? strncmp(keys[i].section, name, (size_t)(dot - name)) == 0 &&
			      keys[i].section[dot - name] == '\0' &&
			      strcmp(keys[i].name, dot + 1) == 0
			: strcmp(keys[i].name, name) == 0)
			return ld->seen[i];
	}
	return 0;
}

static int max3(int a, int b, int c)
{
	int m = a > b ? a : b;
	return m > c ? m : c;
}

/* [oauth] values derived from [server] and [http], and their orderings. */
static void finish_oauth(struct loader *ld)
{
	struct config *cfg = ld->cfg;
	char issuer[CONFIG_URL_MAX], realm[CONFIG_HOST_MAX];

	memcpy(issuer, cfg->oauth_issuer, sizeof(issuer));
	memcpy(realm, cfg->oauth_realm, sizeof(realm));
	config_oauth_defaults(cfg);
	if (seen_line(ld, "issuer"))
		memcpy(cfg->oauth_issuer, issuer, sizeof(issuer));
	if (seen_line(ld, "oauth.realm"))
		memcpy(cfg->oauth_realm, realm, sizeof(realm));
	if (cfg->oauth_default_token_lifetime > cfg->oauth_max_token_lifetime) {
		fail(ld,
		     max3(seen_line(ld, "default_token_lifetime"),
			  seen_line(ld, "max_token_lifetime"), 0),
		     "[oauth] default_token_lifetime (%d) must not be above max_token_lifetime "
		     "(%d)",
		     cfg->oauth_default_token_lifetime, cfg->oauth_max_token_lifetime);
	}
}

bool config_offers(const struct config *cfg, enum auth_scheme s)
{
	for (size_t i = 0; i < cfg->n_auth_schemes; i++)
		if (cfg->auth_schemes[i] == s)
			return true;
	return false;
}

/* The first DNS label of name, upper-cased, at most cap-1 characters. */
static void first_label_upper(const char *name, char *out, size_t cap)
{
	size_t i = 0;
	for (; name[i] && name[i] != '.' && i + 1 < cap; i++)
		out[i] = (char)((name[i] >= 'a' && name[i] <= 'z') ? name[i] - 32 : name[i]);
	out[i] = '\0';
}

/* [kerberos] realm and [ntlm] names default from [server] domain and fqdn. */
static void finish_auth(struct loader *ld)
{
	struct config *cfg = ld->cfg;

	if (!seen_line(ld, "kerberos.realm")) {
		size_t i = 0;
		for (; cfg->domain[i] && i + 1 < sizeof(cfg->krb_realm); i++)
			cfg->krb_realm[i] = (char)((cfg->domain[i] >= 'a' && cfg->domain[i] <= 'z')
						       ? cfg->domain[i] - 32
						       : cfg->domain[i]);
		cfg->krb_realm[i] = '\0';
	}
	if (!seen_line(ld, "ntlm.domain"))
		first_label_upper(cfg->domain, cfg->ntlm_domain, sizeof(cfg->ntlm_domain));
	if (!seen_line(ld, "ntlm.computer"))
		first_label_upper(cfg->fqdn, cfg->ntlm_computer, sizeof(cfg->ntlm_computer));
}

/* [turn]: port range and lifetimes in order; a relay address clients can reach. */
static void finish_turn(struct loader *ld)
{
	struct config *cfg = ld->cfg;

	if (ld->failed)
		return;
	if (cfg->turn_min_port > cfg->turn_max_port) {
		fail(ld, max3(seen_line(ld, "min_port"), seen_line(ld, "max_port"), 0),
		     "[turn] min_port (%d) must not be above max_port (%d)", cfg->turn_min_port,
		     cfg->turn_max_port);
		return;
	}
	if (cfg->turn_default_lifetime > cfg->turn_max_lifetime) {
		fail(ld, max3(seen_line(ld, "default_lifetime"), seen_line(ld, "max_lifetime"), 0),
		     "[turn] default_lifetime (%d) must not be above max_lifetime (%d)",
		     cfg->turn_default_lifetime, cfg->turn_max_lifetime);
		return;
	}
	if (cfg->n_turn_listen == 0 || cfg->turn_relay_address[0])
		return;
	/* relayed addresses are told to clients: a wildcard cannot be one */
	if (strcmp(cfg->turn_listen[0].host, "*") == 0 ||
	    strcmp(cfg->turn_listen[0].host, "0.0.0.0") == 0 ||
	    strcmp(cfg->turn_listen[0].host, "::") == 0) {
		fail(ld, seen_line(ld, "turn.listen"),
		     "[turn] listens on a wildcard address; set [turn] relay_address to the "
		     "address clients reach the relay on, e.g. relay_address = 192.0.2.10");
		return;
	}
	snprintf(cfg->turn_relay_address, sizeof(cfg->turn_relay_address), "%s",
		 cfg->turn_listen[0].host);
}

/* Checks that need the whole file: required keys, derived paths, orderings. */
static void finish(struct loader *ld)
{
	struct config *cfg = ld->cfg;
	static const struct {
		const char *key, *rel;
		size_t off;
	} derived[] = {
	    {"tls_cert", "tls/server.crt", F(tls_cert)},
	    {"tls_key", "tls/server.key", F(tls_key)},
	    {"sqlite", "rtcauth.db", F(sqlite_path)},
	    {"socket", "rtcauthd.sock", F(admin_socket)},
	    {"secret_file", "turn.secret", F(turn_secret_file)},
	};

	if (cfg->domain[0] == '\0') {
		fail(ld, 0,
		     "[server] domain is not set; set it to your SIP domain, e.g. domain = "
		     "example.com");
		return;
	}
	if (!seen_line(ld, "fqdn") && !host_valid(cfg->fqdn)) {
		fail(ld, 0,
		     "this machine's host name '%s' is not a valid DNS name; set [server] "
		     "fqdn, e.g. fqdn = sip.example.com",
		     cfg->fqdn);
		return;
	}
	for (size_t i = 0; i < sizeof(derived) / sizeof(derived[0]); i++) {
		if (seen_line(ld, derived[i].key))
			continue;
		if (derive(cfg->state_dir, derived[i].rel, (char *)cfg + derived[i].off, PATH_MAX) <
		    0) {
			fail(ld, seen_line(ld, "state_dir"), "[server] state_dir is too long");
			return;
		}
	}
	/* the web services use the SIP certificate unless given their own */
	if (!seen_line(ld, "http.cert") != !seen_line(ld, "http.key")) {
		fail(ld,
		     seen_line(ld, "http.cert") ? seen_line(ld, "http.cert")
						: seen_line(ld, "http.key"),
		     "[http] cert and key go together: set both, or neither to use [sip] "
		     "tls_cert and tls_key");
		return;
	}
	if (!seen_line(ld, "http.cert")) {
		memcpy(cfg->http_cert, cfg->tls_cert, sizeof(cfg->http_cert));
		memcpy(cfg->http_key, cfg->tls_key, sizeof(cfg->http_key));
	}
	if (strlen(cfg->admin_socket) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		fail(ld,
		     seen_line(ld, "socket") ? seen_line(ld, "socket") : seen_line(ld, "state_dir"),
		     "[admin] socket path '%s' is too long for a unix socket (at most %zu "
		     "characters); set [admin] socket to a shorter path",
		     cfg->admin_socket, sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
		return;
	}
	if (!(cfg->min_expires <= cfg->default_expires &&
	      cfg->default_expires <= cfg->max_expires)) {
		fail(ld,
		     max3(seen_line(ld, "min_expires"), seen_line(ld, "default_expires"),
			  seen_line(ld, "max_expires")),
		     "[sip] expires must satisfy min_expires <= default_expires <= max_expires, "
		     "got %d, %d, %d",
		     cfg->min_expires, cfg->default_expires, cfg->max_expires);
		return;
	}
	if (cfg->lockout_user_max < cfg->lockout_user_duration) {
		fail(ld,
		     max3(seen_line(ld, "lockout_user_max"), seen_line(ld, "lockout_user_duration"),
			  0),
		     "[auth] lockout_user_max (%d) must not be below lockout_user_duration (%d)",
		     cfg->lockout_user_max, cfg->lockout_user_duration);
		return;
	}
	finish_oauth(ld);
	finish_auth(ld);
	finish_turn(ld);
	if (!ld->failed && !seen_line(ld, "pki.ca_cert") != !seen_line(ld, "pki.ca_key"))
		fail(ld, max3(seen_line(ld, "pki.ca_cert"), seen_line(ld, "pki.ca_key"), 0),
		     "[pki] ca_cert and ca_key go together: set both to use an enterprise CA, or "
		     "neither for the built-in one");
}

/* Absolute directory of path without resolving symlinks. */
static int config_dir(const char *path, char *dir, size_t cap)
{
	char cwd[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int n;

	if (path[0] == '/') {
		size_t len = slash == path ? 1 : (size_t)(slash - path);
		if (len >= cap)
			return -1;
		memcpy(dir, path, len);
		dir[len] = '\0';
		return 0;
	}
	if (!getcwd(cwd, sizeof(cwd)))
		return -1;
	if (!slash)
		n = snprintf(dir, cap, "%s", cwd);
	else
		n = snprintf(dir, cap, "%s%s%.*s", cwd, strcmp(cwd, "/") ? "/" : "",
			     (int)(slash - path), path);
	if (n < 0 || (size_t)n >= cap)
		return -1;
	/* "cwd/./etc" -> "cwd/etc": harmless, but nicer in messages */
	for (char *d; (d = strstr(dir, "/./")) != NULL;)
		memmove(d, d + 2, strlen(d + 2) + 1);
	n = (int)strlen(dir);
	if (n > 2 && strcmp(dir + n - 2, "/.") == 0)
		dir[n - 2] = '\0';
	return 0;
}

int config_load(const char *path, struct config *cfg, char *err, size_t errlen)
{
	struct loader ld;
	struct config *tmp;
	struct stat st;
	const char *base;
	int rc;

	memset(&ld, 0, sizeof(ld));
	ld.fname = path;
	ld.err = err;
	ld.errlen = errlen;
	if (errlen)
		err[0] = '\0';
	tmp = malloc(sizeof(*tmp));
	if (!tmp) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	config_defaults(tmp);
	ld.cfg = tmp;
	if (config_dir(path, ld.dir, sizeof(ld.dir)) < 0) {
		snprintf(err, errlen,
			 "%s: cannot resolve the file's directory (path too long or "
			 "current directory unreadable)",
			 path);
		free(tmp);
		return -1;
	}
	base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	if (resolve_path(ld.dir, base, tmp->path, sizeof(tmp->path)) < 0) {
		snprintf(err, errlen, "%s: path too long", path);
		free(tmp);
		return -1;
	}
	ld.f = fopen(path, "re");
	if (!ld.f) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		free(tmp);
		return -1;
	}
	if (fstat(fileno(ld.f), &st) == 0 && S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "cannot read %s: it is a directory; give the config file",
			 path);
		fclose(ld.f);
		free(tmp);
		return -1;
	}
	rc = ini_parse_stream(reader, &ld, handler, &ld);
	if (!ld.failed && ferror(ld.f))
		fail(&ld, 0, "read error");
	fclose(ld.f);
	if (!ld.failed && rc > 0)
		fail(&ld, rc, "syntax error: expected 'key = value' or '[section]'");
	else if (!ld.failed && rc < 0)
		fail(&ld, 0, "cannot parse (inih error %d)", rc);
	if (!ld.failed)
		finish(&ld);
	if (!ld.failed)
		memcpy(cfg, tmp, sizeof(*cfg));
	free(tmp);
	return ld.failed ? -1 : 0;
}
