/* rtcauth.conf loader: defaults, every key, and the error messages people see. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"

struct fx {
	char dir[64];
	char path[PATH_MAX];
	struct config cfg;
	char err[512];
};

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	strcpy(fx->dir, "/tmp/rtcauth-config-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->path, sizeof(fx->path), "%s/rtcauth.conf", fx->dir);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	assert_int_equal(system(cmd), 0);
	free(fx);
	return 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* Write text as the config and load it; returns config_load's result. */
static int load(struct fx *fx, const char *text)
{
	write_file(fx->path, text);
	memset(&fx->cfg, 0xA5, sizeof(fx->cfg));
	fx->err[0] = '\0';
	return config_load(fx->path, &fx->cfg, fx->err, sizeof(fx->err));
}

/* The load fails and the message contains every one of the given pieces. */
static void expect_error(struct fx *fx, const char *text, ...)
{
	va_list ap;
	const char *want;

	assert_int_equal(load(fx, text), -1);
	va_start(ap, text);
	while ((want = va_arg(ap, const char *)) != NULL) {
		if (!strstr(fx->err, want))
			fail_msg("error '%s' lacks '%s'", fx->err, want);
	}
	va_end(ap);
}

#define MINIMAL "[server]\ndomain = example.com\n"

static void test_config_defaults_match_documentation(void **state)
{
	struct config c;
	char host[256] = "";
	(void)state;

	config_defaults(&c);
	gethostname(host, sizeof(host) - 1);
	for (char *p = host; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	assert_string_equal(c.fqdn, host[0] ? host : "localhost");
	assert_string_equal(c.domain, "");
	assert_int_equal(c.workers, 0);
	assert_string_equal(c.state_dir, "/var/lib/rtcauth");
	assert_int_equal(c.n_listen, 3);
	assert_int_equal(c.listen[0].kind, TRANSPORT_UDP);
	assert_string_equal(c.listen[0].host, "0.0.0.0");
	assert_int_equal(c.listen[0].port, 5060);
	assert_int_equal(c.listen[1].kind, TRANSPORT_TCP);
	assert_int_equal(c.listen[1].port, 5060);
	assert_int_equal(c.listen[2].kind, TRANSPORT_TLS);
	assert_int_equal(c.listen[2].port, 5061);
	assert_string_equal(c.tls_cert, "/var/lib/rtcauth/tls/server.crt");
	assert_string_equal(c.tls_key, "/var/lib/rtcauth/tls/server.key");
	assert_int_equal(c.max_message_size, 65536);
	assert_int_equal(c.idle_timeout, 300);
	assert_int_equal(c.max_conns_per_source, 64);
	assert_int_equal(c.min_expires, 60);
	assert_int_equal(c.max_expires, 7200);
	assert_int_equal(c.default_expires, 3600);
	assert_int_equal(c.max_contacts, 10);
	assert_string_equal(c.sqlite_path, "/var/lib/rtcauth/rtcauth.db");
	assert_int_equal(c.log_level, LOG_INFO);
	assert_int_equal(c.log_dest, LOG_TO_STDERR);
	assert_int_equal(c.n_digest_algs, 3);
	assert_int_equal(c.digest_algs[0], DIGEST_SHA512_256);
	assert_int_equal(c.digest_algs[1], DIGEST_SHA256);
	assert_int_equal(c.digest_algs[2], DIGEST_MD5);
	assert_true(c.digest_qop_auth_int);
	assert_int_equal(c.nonce_lifetime, 300);
	assert_int_equal(c.lockout_user_failures, 10);
	assert_int_equal(c.lockout_user_window, 300);
	assert_int_equal(c.lockout_user_duration, 300);
	assert_int_equal(c.lockout_user_max, 3600);
	assert_int_equal(c.lockout_source_failures, 30);
	assert_int_equal(c.lockout_source_window, 60);
	assert_int_equal(c.lockout_source_duration, 300);
	assert_string_equal(c.admin_socket, "/var/lib/rtcauth/rtcauthd.sock");
}

static void test_config_minimal_file_keeps_defaults(void **state)
{
	struct fx *fx = *state;
	struct config d;

	assert_int_equal(load(fx, "; only the domain\n" MINIMAL), 0);
	config_defaults(&d);
	assert_string_equal(fx->cfg.domain, "example.com");
	assert_string_equal(fx->cfg.path, fx->path);
	assert_int_equal(fx->cfg.n_listen, 3);
	assert_int_equal(fx->cfg.nonce_lifetime, 300);
	assert_string_equal(fx->cfg.state_dir, "/var/lib/rtcauth");
	assert_string_equal(fx->cfg.tls_cert, d.tls_cert);
	assert_string_equal(fx->cfg.admin_socket, d.admin_socket);
	assert_string_equal(fx->cfg.fqdn, d.fqdn);
}

static void test_config_offers_sess_variants_in_the_given_order(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(load(fx, MINIMAL "[auth]\n"
					  "digest_algorithms = SHA-256-sess, sha-256, MD5-sess\n"),
			 0);
	assert_int_equal(fx->cfg.n_digest_algs, 3);
	assert_int_equal(fx->cfg.digest_algs[0], DIGEST_SHA256);
	assert_true(fx->cfg.digest_sess[0]);
	assert_int_equal(fx->cfg.digest_algs[1], DIGEST_SHA256);
	assert_false(fx->cfg.digest_sess[1]);
	assert_int_equal(fx->cfg.digest_algs[2], DIGEST_MD5);
	assert_true(fx->cfg.digest_sess[2]);
}

static void test_config_auth_schemes_defaults_and_derived_names(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(
	    load(fx, "[server]\ndomain = corp.example.com\nfqdn = fe01.corp.example.com\n"), 0);
	assert_int_equal(fx->cfg.n_auth_schemes, 3);
	assert_int_equal(fx->cfg.auth_schemes[0], AUTH_SCHEME_DIGEST);
	assert_int_equal(fx->cfg.auth_schemes[1], AUTH_SCHEME_KERBEROS);
	assert_int_equal(fx->cfg.auth_schemes[2], AUTH_SCHEME_NTLM);
	assert_string_equal(fx->cfg.sipae_realm, "SIP Communications Service");
	assert_int_equal(fx->cfg.sipae_version, 4);
	assert_string_equal(fx->cfg.krb_keytab, "");
	assert_string_equal(fx->cfg.krb_realm, "CORP.EXAMPLE.COM");
	assert_string_equal(fx->cfg.ntlm_domain, "CORP");
	assert_string_equal(fx->cfg.ntlm_computer, "FE01");
	/* [kerberos] realm is not [oauth] realm: each keeps its own */
	assert_string_equal(fx->cfg.oauth_realm, "corp.example.com");
}

static void test_config_auth_schemes_order_and_sections(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(load(fx,
			      MINIMAL "[auth]\nschemes = Digest, ntlm\n"
				      "[kerberos]\nkeytab = /etc/sip.keytab\nrealm = EXAMPLE.TEST\n"
				      "[ntlm]\ndomain = EXAMPLE\ncomputer = FE01\n"
				      "[oauth]\nrealm = other.example\n"),
			 0);
	assert_int_equal(fx->cfg.n_auth_schemes, 2);
	assert_int_equal(fx->cfg.auth_schemes[0], AUTH_SCHEME_DIGEST);
	assert_int_equal(fx->cfg.auth_schemes[1], AUTH_SCHEME_NTLM);
	assert_false(config_offers(&fx->cfg, AUTH_SCHEME_KERBEROS));
	assert_true(config_offers(&fx->cfg, AUTH_SCHEME_NTLM));
	assert_string_equal(fx->cfg.krb_keytab, "/etc/sip.keytab");
	assert_string_equal(fx->cfg.krb_realm, "EXAMPLE.TEST");
	assert_string_equal(fx->cfg.oauth_realm, "other.example");
	assert_string_equal(fx->cfg.ntlm_domain, "EXAMPLE");
	/* TLS-DSK is never a default, but can be listed */
	assert_false(config_offers(&fx->cfg, AUTH_SCHEME_TLSDSK));
	assert_int_equal(load(fx, MINIMAL "[auth]\nschemes = tls-dsk, digest\n"), 0);
	assert_int_equal(fx->cfg.n_auth_schemes, 2);
	assert_int_equal(fx->cfg.auth_schemes[0], AUTH_SCHEME_TLSDSK);
	assert_true(config_offers(&fx->cfg, AUTH_SCHEME_TLSDSK));
}

static void test_config_rejects_bad_schemes(void **state)
{
	struct fx *fx = *state;

	expect_error(fx, MINIMAL "[auth]\nschemes = ntlm, basic\n", "schemes", "kerberos, ntlm",
		     NULL);
	expect_error(fx, MINIMAL "[auth]\nschemes = ntlm, NTLM\n", "schemes", NULL);
	expect_error(fx, MINIMAL "[auth]\nschemes = \n", "schemes", NULL);
	expect_error(fx, MINIMAL "[auth]\nsipae_version = 5\n", "sipae_version", NULL);
	expect_error(fx, MINIMAL "[ntlm]\ndomain = WAYTOOLONGNETBIOSNAME\n", "domain", NULL);
}

static void test_config_parses_every_key(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(load(fx, "# full\n"
				  "[server]\n"
				  "domain = Example.COM\n"
				  "fqdn = SIP1.example.com\n"
				  "workers = 4\n"
				  "state_dir = /srv/rtc\n"
				  "[sip]\n"
				  "listen = udp:127.0.0.1:5070\n"
				  "listen = tls:[::1]:5071\n"
				  "listen = tcp:*:5072\n"
				  "tls_cert = /etc/ssl/a.crt\n"
				  "tls_key = /etc/ssl/a.key\n"
				  "max_message_size = 128K\n"
				  "idle_timeout = 2m\n"
				  "max_conns_per_source = 7\n"
				  "min_expires = 30\n"
				  "max_expires = 2h\n"
				  "default_expires = 600s\n"
				  "max_contacts = 3\n"
				  "[store]\n"
				  "sqlite = /srv/db/x.db\n"
				  "[log]\n"
				  "level = debug\n"
				  "destination = syslog\n"
				  "[auth]\n"
				  "digest_algorithms = SHA-256, md5\n"
				  "digest_qop = auth\n"
				  "nonce_lifetime = 1m\n"
				  "lockout_user_failures = 5\n"
				  "lockout_user_window = 10m\n"
				  "lockout_user_duration = 1m\n"
				  "lockout_user_max = 1h\n"
				  "lockout_source_failures = 50\n"
				  "lockout_source_window = 120\n"
				  "lockout_source_duration = 15m\n"
				  "[admin]\n"
				  "socket = /run/rtcauth.sock ; inline comment\n"),
			 0);
	struct config *c = &fx->cfg;
	assert_string_equal(c->domain, "example.com");
	assert_string_equal(c->fqdn, "sip1.example.com");
	assert_int_equal(c->workers, 4);
	assert_string_equal(c->state_dir, "/srv/rtc");
	assert_int_equal(c->n_listen, 3);
	assert_int_equal(c->listen[0].kind, TRANSPORT_UDP);
	assert_string_equal(c->listen[0].host, "127.0.0.1");
	assert_int_equal(c->listen[0].port, 5070);
	assert_int_equal(c->listen[1].kind, TRANSPORT_TLS);
	assert_string_equal(c->listen[1].host, "::1");
	assert_int_equal(c->listen[1].port, 5071);
	assert_int_equal(c->listen[2].kind, TRANSPORT_TCP);
	assert_string_equal(c->listen[2].host, "*");
	assert_int_equal(c->listen[2].port, 5072);
	assert_string_equal(c->tls_cert, "/etc/ssl/a.crt");
	assert_string_equal(c->tls_key, "/etc/ssl/a.key");
	assert_int_equal(c->max_message_size, 131072);
	assert_int_equal(c->idle_timeout, 120);
	assert_int_equal(c->max_conns_per_source, 7);
	assert_int_equal(c->min_expires, 30);
	assert_int_equal(c->max_expires, 7200);
	assert_int_equal(c->default_expires, 600);
	assert_int_equal(c->max_contacts, 3);
	assert_string_equal(c->sqlite_path, "/srv/db/x.db");
	assert_int_equal(c->log_level, LOG_DEBUG);
	assert_int_equal(c->log_dest, LOG_TO_SYSLOG);
	assert_int_equal(c->n_digest_algs, 2);
	assert_int_equal(c->digest_algs[0], DIGEST_SHA256);
	assert_int_equal(c->digest_algs[1], DIGEST_MD5);
	assert_false(c->digest_qop_auth_int);
	assert_int_equal(c->nonce_lifetime, 60);
	assert_int_equal(c->lockout_user_failures, 5);
	assert_int_equal(c->lockout_user_window, 600);
	assert_int_equal(c->lockout_user_duration, 60);
	assert_int_equal(c->lockout_user_max, 3600);
	assert_int_equal(c->lockout_source_failures, 50);
	assert_int_equal(c->lockout_source_window, 120);
	assert_int_equal(c->lockout_source_duration, 900);
	assert_string_equal(c->admin_socket, "/run/rtcauth.sock");
}

static void test_config_qop_auth_int_and_sizes(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(load(fx, MINIMAL "[auth]\ndigest_qop = auth, auth-int\n"
					  "[sip]\nmax_message_size = 1M\n"),
			 0);
	assert_true(fx->cfg.digest_qop_auth_int);
	assert_int_equal(fx->cfg.max_message_size, 1048576);
	assert_int_equal(load(fx, MINIMAL "[sip]\nmax_message_size = 4096\n"), 0);
	assert_int_equal(fx->cfg.max_message_size, 4096);
	assert_int_equal(load(fx, MINIMAL "[log]\nlevel = error\n"), 0);
	assert_int_equal(fx->cfg.log_level, LOG_ERR);
	assert_int_equal(load(fx, MINIMAL "[log]\nlevel = warn\n"), 0);
	assert_int_equal(fx->cfg.log_level, LOG_WARN);
}

static void test_config_first_listen_replaces_defaults(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(load(fx, MINIMAL "[sip]\nlisten = tcp:127.0.0.1:5080\n"), 0);
	assert_int_equal(fx->cfg.n_listen, 1);
	assert_int_equal(fx->cfg.listen[0].kind, TRANSPORT_TCP);
	assert_string_equal(fx->cfg.listen[0].host, "127.0.0.1");
	assert_int_equal(fx->cfg.listen[0].port, 5080);

	/* Each further occurrence adds one, in file order, across sections. */
	assert_int_equal(load(fx, "[sip]\nlisten = udp:127.0.0.1:1\n" MINIMAL
				  "[sip]\nlisten = udp:127.0.0.1:2\nlisten = udp:127.0.0.1:3\n"),
			 0);
	assert_int_equal(fx->cfg.n_listen, 3);
	assert_int_equal(fx->cfg.listen[0].port, 1);
	assert_int_equal(fx->cfg.listen[2].port, 3);
}

static void test_config_rejects_duplicate_and_too_many_listen(void **state)
{
	struct fx *fx = *state;
	char text[4096];
	size_t n;

	expect_error(fx,
		     MINIMAL "[sip]\nlisten = udp:127.0.0.1:5060\nlisten = udp:127.0.0.1:5060\n",
		     ":5: [sip] listen = 'udp:127.0.0.1:5060'", "listed twice", NULL);

	n = (size_t)snprintf(text, sizeof(text), MINIMAL "[sip]\n");
	for (int i = 1; i <= CONFIG_MAX_LISTEN + 1; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "listen = udp:127.0.0.1:%d\n", i);
	expect_error(fx, text, "too many listen", NULL);
}

static void test_config_unknown_key_suggests_nearest_with_line(void **state)
{
	struct fx *fx = *state;
	char want[PATH_MAX + 8];

	snprintf(want, sizeof(want), "%s:4:", fx->path);
	expect_error(fx, MINIMAL "[sip]\nlisen = udp:127.0.0.1:5060\n", want,
		     "unknown key 'lisen' in [sip]", "did you mean 'listen'", "rtcauth.conf(5)",
		     NULL);
}

static void test_config_unknown_key_in_wrong_section_names_its_section(void **state)
{
	struct fx *fx = *state;

	expect_error(fx, MINIMAL "listen = udp:127.0.0.1:5060\n",
		     ":3:", "unknown key 'listen' in [server]", "did you mean 'listen' in [sip]",
		     NULL);
}

static void test_config_unknown_key_far_from_any_has_no_suggestion(void **state)
{
	struct fx *fx = *state;

	expect_error(fx, MINIMAL "frobnicate = 1\n", ":3:", "unknown key 'frobnicate' in [server]",
		     NULL);
	assert_null(strstr(fx->err, "did you mean"));
}

static void test_config_unknown_section_is_error_even_when_empty(void **state)
{
	struct fx *fx = *state;

	expect_error(fx, MINIMAL "[sipp]\n", ":3:", "unknown section [sipp]", "did you mean [sip]",
		     NULL);
	expect_error(fx, MINIMAL "[tls]\nfoo = 1\n", ":3:", "unknown section [tls]",
		     "known sections", NULL);
}

static void test_config_key_outside_section_is_error(void **state)
{
	struct fx *fx = *state;

	expect_error(fx, "domain = example.com\n", ":1:", "outside any section", NULL);
}

static void test_config_syntax_error_names_line(void **state)
{
	struct fx *fx = *state;

	expect_error(fx, MINIMAL "[sip]\njust some words\n", ":4:", "syntax error", NULL);
	expect_error(fx, MINIMAL "[sip\n", ":3:", "syntax error", NULL);
}

static void test_config_rejects_too_long_line(void **state)
{
	struct fx *fx = *state;
	char text[1024];

	snprintf(text, sizeof(text), MINIMAL "[store]\nsqlite = /%0600d\n", 0);
	expect_error(fx, text, ":4:", "line too long", NULL);
}

static void test_config_rejects_duplicate_key(void **state)
{
	struct fx *fx = *state;

	expect_error(fx, MINIMAL "[auth]\nnonce_lifetime = 60\nnonce_lifetime = 90\n",
		     ":5:", "nonce_lifetime is set twice (first on line 4)", NULL);
}

static void test_config_rejects_empty_value(void **state)
{
	struct fx *fx = *state;

	expect_error(fx, MINIMAL "[sip]\ntls_cert =\n", ":4:", "tls_cert has no value", NULL);
}

static void test_config_rejects_numbers_out_of_range(void **state)
{
	struct fx *fx = *state;

	expect_error(fx, MINIMAL "[auth]\nnonce_lifetime = 5\n",
		     ":4:", "[auth] nonce_lifetime = '5'", "between 10 and 3600 seconds", NULL);
	expect_error(fx, MINIMAL "[auth]\nnonce_lifetime = 2h\n", "between 10 and 3600", NULL);
	expect_error(fx, MINIMAL "[server]\nworkers = 257\n", "[server] workers = '257'",
		     "between 0 and 256", NULL);
	expect_error(fx, MINIMAL "[sip]\nmax_message_size = 512\n", "between 1K and 1M", NULL);
	expect_error(fx, MINIMAL "[sip]\nmax_message_size = 2M\n", "between 1K and 1M", NULL);
	expect_error(fx, MINIMAL "[sip]\nmax_contacts = 0\n", "between 1 and 1000", NULL);
	expect_error(fx, MINIMAL "[sip]\nmax_contacts = 99999999999999999999999\n",
		     "between 1 and 1000", NULL);
}

static void test_config_rejects_malformed_numbers(void **state)
{
	struct fx *fx = *state;

	expect_error(fx, MINIMAL "[server]\nworkers = -1\n", "expected a whole number", NULL);
	expect_error(fx, MINIMAL "[server]\nworkers = 4x\n", "expected a whole number", NULL);
	expect_error(fx, MINIMAL "[auth]\nnonce_lifetime = 5 minutes\n",
		     "expected seconds, or a number with s, m or h", NULL);
	expect_error(fx, MINIMAL "[auth]\nnonce_lifetime = 5d\n", "expected seconds", NULL);
	expect_error(fx, MINIMAL "[auth]\nnonce_lifetime = m\n", "expected seconds", NULL);
	expect_error(fx, MINIMAL "[auth]\nnonce_lifetime = 1.5m\n", "expected seconds", NULL);
	expect_error(fx, MINIMAL "[sip]\nmax_message_size = 64KB\n",
		     "expected bytes, or a number with K or M", NULL);
}

static void test_config_rejects_bad_enumerations(void **state)
{
	struct fx *fx = *state;

	expect_error(fx, MINIMAL "[log]\nlevel = verbose\n", "[log] level = 'verbose'",
		     "expected error, warn, info or debug", NULL);
	expect_error(fx, MINIMAL "[log]\ndestination = file\n", "expected stderr or syslog", NULL);
	expect_error(fx, MINIMAL "[auth]\ndigest_algorithms = SHA-1\n",
		     "[auth] digest_algorithms = 'SHA-1'", "SHA-512-256", NULL);
	expect_error(fx, MINIMAL "[auth]\ndigest_algorithms = MD5, md5\n", "distinct", NULL);
	expect_error(fx, MINIMAL "[auth]\ndigest_algorithms = MD5,,SHA-256\n", "comma list", NULL);
	expect_error(fx, MINIMAL "[auth]\ndigest_algorithms = MD5-sess, md5-SESS\n", "distinct",
		     NULL);
	expect_error(fx, MINIMAL "[auth]\ndigest_algorithms = MD5-session\n", "comma list", NULL);
	expect_error(fx, MINIMAL "[auth]\ndigest_qop = auth-int\n",
		     "expected auth or auth,auth-int", NULL);
	expect_error(fx, MINIMAL "[auth]\ndigest_qop = auth,auth\n", "expected auth", NULL);
}

static void test_config_rejects_bad_listen_forms(void **state)
{
	struct fx *fx = *state;
	static const char *const bad[] = {
	    "udp:1.2.3.4",	     /* missing port */
	    "udp:1.2.3.4:",	     /* empty port */
	    "udp:1.2.3.4:0",	     /* port 0 */
	    "udp:1.2.3.4:70000",     /* port beyond 65535 */
	    "udp:1.2.3.4:50x",	     /* port not a number */
	    "sctp:1.2.3.4:5060",     /* transport */
	    "1.2.3.4:5060",	     /* no transport */
	    "udp:[::1:5060",	     /* unclosed bracket */
	    "udp:[::1]5060",	     /* no colon after bracket */
	    "udp:::1:5060",	     /* IPv6 without brackets */
	    "udp:[1.2.3.4]:5060",    /* IPv4 in brackets */
	    "udp:[]:5060",	     /* empty */
	    "udp:host.example:5060", /* names are not resolved */
	    "udp:1.2.3:5060",	     "udp:[*]:5060",
	};
	char text[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct listen_addr la;
		assert_int_equal(config_parse_listen(bad[i], &la), -1);
		snprintf(text, sizeof(text), MINIMAL "[sip]\nlisten = %s\n", bad[i]);
		expect_error(fx, text, ":4: [sip] listen = '", bad[i],
			     "' : expected udp|tcp|tls:ADDRESS:PORT, e.g. udp:0.0.0.0:5060", NULL);
	}
}

static void test_config_parse_listen_accepts_good_forms(void **state)
{
	struct listen_addr la;
	(void)state;

	assert_int_equal(config_parse_listen("tls:[2001:DB8::1]:65535", &la), 0);
	assert_int_equal(la.kind, TRANSPORT_TLS);
	assert_string_equal(la.host, "2001:db8::1");
	assert_int_equal(la.port, 65535);
	assert_int_equal(config_parse_listen("UDP:0.0.0.0:1", &la), 0);
	assert_int_equal(la.kind, TRANSPORT_UDP);
	assert_int_equal(la.port, 1);
	assert_int_equal(config_parse_listen("tcp:*:5060", &la), 0);
	assert_string_equal(la.host, "*");
	assert_int_equal(config_parse_listen("tcp:[::]:5060", &la), 0);
	assert_string_equal(la.host, "::");
}

static void test_config_requires_domain(void **state)
{
	struct fx *fx = *state;

	expect_error(fx, "[server]\nworkers = 2\n",
		     "[server] domain is not set; set it to your SIP domain, e.g. domain = "
		     "example.com",
		     NULL);
	expect_error(fx, "", "domain is not set", NULL);
}

static void test_config_rejects_bad_host_names(void **state)
{
	struct fx *fx = *state;

	expect_error(fx, "[server]\ndomain = exa_mple.com\n", "[server] domain = 'exa_mple.com'",
		     "expected a host name", NULL);
	expect_error(fx, "[server]\ndomain = -a.com\n", "expected a host name", NULL);
	expect_error(fx, "[server]\ndomain = a..com\n", "expected a host name", NULL);
	expect_error(fx, MINIMAL "fqdn = a b\n", "[server] fqdn", NULL);
}

static void test_config_missing_file_is_error(void **state)
{
	struct fx *fx = *state;
	char path[PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/nope.conf", fx->dir);
	assert_int_equal(config_load(path, &fx->cfg, fx->err, sizeof(fx->err)), -1);
	assert_non_null(strstr(fx->err, "cannot open"));
	assert_non_null(strstr(fx->err, "nope.conf"));
	assert_non_null(strstr(fx->err, "No such file"));
	assert_int_equal(config_load(fx->dir, &fx->cfg, fx->err, sizeof(fx->err)), -1);
	assert_non_null(strstr(fx->err, "directory"));
}

static void test_config_failed_load_leaves_config_untouched(void **state)
{
	struct fx *fx = *state;
	struct config before;

	write_file(fx->path, "[server]\ndomain = example.org\n[sip]\nmax_contacts = 0\n");
	config_defaults(&fx->cfg);
	before = fx->cfg;
	assert_int_equal(config_load(fx->path, &fx->cfg, fx->err, sizeof(fx->err)), -1);
	assert_memory_equal(&before, &fx->cfg, sizeof(before));
}

static void test_config_relative_paths_resolve_from_config_dir(void **state)
{
	struct fx *fx = *state;
	char sub[PATH_MAX], want[PATH_MAX + 64], cwd[PATH_MAX];
	size_t n;

	snprintf(sub, sizeof(sub), "%s/etc", fx->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(fx->path, sizeof(fx->path), "%s/etc/rtcauth.conf", fx->dir);
	assert_int_equal(load(fx, MINIMAL "state_dir = ../var\n[sip]\ntls_cert = ./certs/a.crt\n"
					  "[store]\nsqlite = db/x.db\n"),
			 0);
	snprintf(want, sizeof(want), "%s/etc/../var", fx->dir);
	assert_string_equal(fx->cfg.state_dir, want);
	snprintf(want, sizeof(want), "%s/etc/certs/a.crt", fx->dir);
	assert_string_equal(fx->cfg.tls_cert, want);
	snprintf(want, sizeof(want), "%s/etc/db/x.db", fx->dir);
	assert_string_equal(fx->cfg.sqlite_path, want);

	/* The same file named relative to the working directory gives the same paths. */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(fx->dir), 0);
	memset(&fx->cfg, 0, sizeof(fx->cfg));
	n = (size_t)config_load("./etc/rtcauth.conf", &fx->cfg, fx->err, sizeof(fx->err));
	assert_int_equal(chdir(cwd), 0);
	assert_int_equal((int)n, 0);
	assert_string_equal(fx->cfg.sqlite_path, want);
	assert_string_equal(fx->cfg.path, fx->path);
}

static void test_config_paths_derive_from_state_dir_unless_set(void **state)
{
	struct fx *fx = *state;

	/* state_dir after the explicit key: derivation happens after the whole file. */
	assert_int_equal(load(fx, "[sip]\ntls_key = /k/server.key\n"
				  "[server]\ndomain = example.com\nstate_dir = /srv/rtc\n"),
			 0);
	assert_string_equal(fx->cfg.tls_cert, "/srv/rtc/tls/server.crt");
	assert_string_equal(fx->cfg.tls_key, "/k/server.key");
	assert_string_equal(fx->cfg.sqlite_path, "/srv/rtc/rtcauth.db");
	assert_string_equal(fx->cfg.admin_socket, "/srv/rtc/rtcauthd.sock");
}

static void test_config_rejects_inconsistent_expires(void **state)
{
	struct fx *fx = *state;

	expect_error(fx, MINIMAL "[sip]\nmin_expires = 600\ndefault_expires = 300\n",
		     ":5:", "min_expires <= default_expires <= max_expires", "600, 300, 7200",
		     NULL);
	expect_error(fx, MINIMAL "[sip]\nmax_expires = 1800\n", ":4:", "3600, 1800", NULL);
	expect_error(fx, MINIMAL "[auth]\nlockout_user_duration = 2h\n",
		     "lockout_user_max (3600) must not be below lockout_user_duration (7200)",
		     NULL);
}

static void test_config_rejects_socket_path_too_long_for_sun_path(void **state)
{
	struct fx *fx = *state;
	char text[512];

	snprintf(text, sizeof(text), MINIMAL "state_dir = /%0120d\n", 0);
	expect_error(fx, text, "too long for a unix socket", NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config_defaults_match_documentation),
	    cmocka_unit_test_setup_teardown(test_config_minimal_file_keeps_defaults, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_config_parses_every_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_offers_sess_variants_in_the_given_order,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_qop_auth_int_and_sizes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_first_listen_replaces_defaults, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_config_rejects_duplicate_and_too_many_listen,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_unknown_key_suggests_nearest_with_line,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_config_unknown_key_in_wrong_section_names_its_section, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_unknown_key_far_from_any_has_no_suggestion,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_unknown_section_is_error_even_when_empty,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_key_outside_section_is_error, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_config_syntax_error_names_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_rejects_too_long_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_rejects_duplicate_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_rejects_empty_value, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_rejects_numbers_out_of_range, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_config_rejects_malformed_numbers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_rejects_bad_enumerations, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_rejects_bad_listen_forms, setup, teardown),
	    cmocka_unit_test(test_config_parse_listen_accepts_good_forms),
	    cmocka_unit_test_setup_teardown(test_config_requires_domain, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_rejects_bad_host_names, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_missing_file_is_error, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_failed_load_leaves_config_untouched, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_config_relative_paths_resolve_from_config_dir,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_paths_derive_from_state_dir_unless_set,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_rejects_inconsistent_expires, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_config_rejects_socket_path_too_long_for_sun_path,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_auth_schemes_defaults_and_derived_names,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_auth_schemes_order_and_sections, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_config_rejects_bad_schemes, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
