/*
 * rtcauthctl: the rtcauth admin tool. Reads rtcauth.conf, changes users in
 * the store (with an audit record for every change), and asks the running
 * rtcauthd about registrations, lockouts and status over its admin socket.
 * The commands live in ctl_*.c; this file parses the global options and
 * dispatches. Exit codes: see usage() and rtcauthctl(8).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"
#include "ctl/probe.h"

#define RTCAUTH_VERSION "0.1.0"

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: rtcauthctl [-c PATH] COMMAND [ARGS...]\n"
	    "\n"
	    "Administer rtcauth: users, registrations, lockouts, status, audit log,\n"
	    "OAuth signing keys and partner applications.\n"
	    "\n"
	    "options:\n"
	    "  -c, --config PATH   config file (default " CTL_DEFAULT_CONFIG ")\n"
	    "  -h, --help          this help; COMMAND --help for a command's help\n"
	    "  -V, --version       print the version\n"
	    "\n"
	    "commands:\n"
	    "  user add URI [--display-name NAME] [--password-stdin] [--disabled]\n"
	    "  user passwd URI [--password-stdin]\n"
	    "  user enable URI | user disable URI | user del URI\n"
	    "  user list [--json] | user show URI [--json]\n"
	    "  user import FILE.csv        columns uri,password[,display_name]; all or nothing\n"
	    "  reg list [--json] [AOR]     registrations (from the database if rtcauthd is down)\n"
	    "  reg del AOR [CONTACT]       remove bindings\n"
	    "  lockout list [--json]       locked-out users and sources (needs rtcauthd)\n"
	    "  lockout clear KEY           clear a lockout (needs rtcauthd)\n"
	    "  sa list [--json]            NTLM/Kerberos security associations (needs rtcauthd)\n"
	    "  sa drop (OPAQUE | --user URI)  drop security associations (needs rtcauthd)\n"
	    "  status [--json]             uptime, workers, registrations, counters (needs "
	    "rtcauthd)\n"
	    "  audit list [--limit N] [--json]\n"
	    "  oauth key new [--alg RS256|PS256|ES256|EdDSA]   token-signing keys and rollover\n"
	    "  oauth key list [--json] | oauth key publish|activate|retire KID\n"
	    "  partner add NAME (--metadata-url URL | --issuer ID --cert FILE | --jwks FILE)\n"
	    "              [--realm R] [--trust full|application|user] [--resources r1,r2]\n"
	    "              [--lifetime SECONDS] [--tls-subject DN] [--tls-san SAN]\n"
	    "  partner list [--json] | partner show NAME [--json]\n"
	    "  partner enable|disable|del NAME | partner refresh NAME (needs rtcauthd)\n"
	    "  partner set NAME [--tls-subject DN] [--tls-san SAN]   RFC 8705 PKI names\n"
	    "  partner consent NAME --user URI [--revoke] | partner consents NAME [--json]\n"
	    "  token issue --partner NAME [--as-user URI] [--resource R]   print a token for "
	    "a partner\n"
	    "  pin set URI [--pin-stdin] | pin unlock URI | pin show URI | pin policy   phone "
	    "PINs\n"
	    "  cert list [URI] [--json] | cert show SERIAL | cert issue URI --csr FILE [--lifetime "
	    "D]\n"
	    "  cert revoke (URI | --serial S) [--reason R]   certificates of the issuing CA\n"
	    "  probe sip:USER@DOMAIN --mech kerberos|ntlm|digest [--transport udp|tcp|tls]\n"
	    "              sign in as a SIP client and report each step (see probe --help)\n"
	    "\n"
	    "exit codes:\n"
	    "  0 success    1 other error (store unavailable, I/O)    2 usage error\n"
	    "  3 not found  4 conflict (already exists)               5 rtcauthd unreachable\n"
	    "\n"
	    "See rtcauthctl(8).\n");
}

/* Global options up to the command word. Returns the index of the command or -1 (rc set). */
static int global_opts(struct ctl *c, int argc, char **argv, int *rc)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			*rc = CTL_EXIT_OK;
			return -1;
		}
		if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			printf("rtcauthctl %s\n", RTCAUTH_VERSION);
			*rc = CTL_EXIT_OK;
			return -1;
		}
		if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			if (i + 1 >= argc || argv[i + 1][0] == '\0') {
				ctl_err("%s needs a file name (see: rtcauthctl --help)", a);
				*rc = CTL_EXIT_USAGE;
				return -1;
			}
			c->conf_path = argv[++i];
			continue;
		}
		if (strncmp(a, "--config=", 9) == 0 && a[9] != '\0') {
			c->conf_path = a + 9;
			continue;
		}
		if (strncmp(a, "-c", 2) == 0 && a[2] != '\0') {
			c->conf_path = a + 2;
			continue;
		}
		if (strcmp(a, "--") == 0)
			return i + 1 < argc ? i + 1 : argc;
		if (a[0] == '-') {
			ctl_err("unknown option '%s' (see: rtcauthctl --help)", a);
			*rc = CTL_EXIT_USAGE;
			return -1;
		}
		return i;
	}
	return i;
}

int main(int argc, char **argv)
{
	static struct ctl c; /* struct config is large: not on the stack */
	const char *cmd;
	int i, rc = CTL_EXIT_OK;

	c.conf_path = CTL_DEFAULT_CONFIG;
	i = global_opts(&c, argc, argv, &rc);
	if (i < 0)
		return rc;
	if (i >= argc) {
		ctl_err("missing command (see: rtcauthctl --help)");
		usage(stderr);
		return CTL_EXIT_USAGE;
	}
	cmd = argv[i];
	argc -= i + 1;
	argv += i + 1;
	if (strcmp(cmd, "user") == 0)
		rc = ctl_user_main(&c, argc, argv);
	else if (strcmp(cmd, "reg") == 0)
		rc = ctl_reg_main(&c, argc, argv);
	else if (strcmp(cmd, "lockout") == 0)
		rc = ctl_lockout_main(&c, argc, argv);
	else if (strcmp(cmd, "sa") == 0)
		rc = ctl_sa_main(&c, argc, argv);
	else if (strcmp(cmd, "status") == 0)
		rc = ctl_status_main(&c, argc, argv);
	else if (strcmp(cmd, "audit") == 0)
		rc = ctl_audit_main(&c, argc, argv);
	else if (strcmp(cmd, "oauth") == 0)
		rc = ctl_oauth_main(&c, argc, argv);
	else if (strcmp(cmd, "partner") == 0)
		rc = ctl_partner_main(&c, argc, argv);
	else if (strcmp(cmd, "token") == 0)
		rc = ctl_token_main(&c, argc, argv);
	else if (strcmp(cmd, "pin") == 0)
		rc = ctl_pin_main(&c, argc, argv);
	else if (strcmp(cmd, "cert") == 0)
		rc = ctl_cert_main(&c, argc, argv);
	else if (strcmp(cmd, "probe") == 0)
		rc = ctl_probe_main(&c, argc, argv);
	else if (strcmp(cmd, "help") == 0) {
		usage(stdout);
		rc = CTL_EXIT_OK;
	} else {
		ctl_err("unknown command '%s' (see: rtcauthctl --help)", cmd);
		rc = CTL_EXIT_USAGE;
	}
	ctl_close(&c);
	/* a user change is in the database now; tell a running daemon to drop
	 * its cached key lookups (without it they expire within 10 s) */
	if (strcmp(cmd, "user") == 0 && argc > 0 && strcmp(argv[0], "list") != 0 &&
	    strcmp(argv[0], "show") != 0 && c.cfg_loaded)
		ctl_admin_flush_cache(&c);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		ctl_err("cannot write to standard output");
		if (rc == CTL_EXIT_OK)
			rc = CTL_EXIT_ERR;
	}
	return rc;
}
