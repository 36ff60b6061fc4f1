/*
 * rtcauthctl cert list|show|revoke|issue: the certificates of the issuing
 * CA (src/pki, the certificates table). Revocation is a store change: the
 * running rtcauthd sees it at the next check of that certificate and in
 * the next CRL (GET /pki/crl), without a reload. `cert issue` signs a CSR
 * for a user through src/pki, which asks the vault: nothing here reads the
 * CA key. Every change writes an audit row.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ctl/ctl.h"
#include "pki/pki.h"

static const struct ctl_cmd_help h_list = {
    "cert list", "[URI] [--json]", "List certificates issued by the CA, newest first.",
    "  URI     only this user's certificates\n"
    "  --json  a JSON array of objects (without the PEM; see cert show)\n"};
static const struct ctl_cmd_help h_show = {
    "cert show", "SERIAL [--json]", "Show one certificate and its PEM.",
    "SERIAL is hexadecimal, any case, colons allowed (as openssl x509 -serial prints it).\n"};
static const struct ctl_cmd_help h_revoke = {
    "cert revoke", "(URI | --serial SERIAL) [--reason REASON]",
    "Revoke one certificate, or every certificate of a user.",
    "  --reason  an RFC 5280 reason: unspecified (default), keyCompromise,\n"
    "            cACompromise, affiliationChanged, superseded, cessationOfOperation,\n"
    "            certificateHold, privilegeWithdrawn, aACompromise\n"
    "rtcauthd refuses the certificate from its next check on (live connections are\n"
    "closed within a minute) and lists it in the CRL at /pki/crl.\n"};
static const struct ctl_cmd_help h_issue = {
    "cert issue", "URI --csr FILE [--lifetime DURATION]",
    "Issue a certificate for a user from a PEM CSR and print the chain.",
    "  --csr FILE       a PKCS#10 request, PEM; only its public key is used (RSA of\n"
    "                   2048 bits or more, or EC P-256): the names are the user's\n"
    "  --lifetime D     e.g. 8h, 30d, 3600 (seconds); 8 hours to 1 year; default\n"
    "                   [pki] cert_lifetime (180 days)\n"
    "The chain (the certificate, then the CA) goes to standard output; the serial\n"
    "and expiry to standard error.\n"};

static int cert_failed(struct ctl *c, const char *what, int rc)
{
	ctl_err("%s failed: %s (%s)", what, store_strerror(rc), store_errmsg(c->store));
	return ctl_store_exit(rc);
}

static json_t *cert_json(const struct store_cert *r, bool pem)
{
	char t1[32], t2[32], t3[32], t4[32];
	json_t *o =
	    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "serial", r->serial, "uri", r->uri,
		      "subject", r->subject, "not_before", ctl_time(r->not_before, t1, sizeof(t1)),
		      "not_after", ctl_time(r->not_after, t2, sizeof(t2)), "issued",
		      ctl_time(r->issued, t3, sizeof(t3)), "revoked", r->revoked_at != 0);

	if (o && r->revoked_at) {
		json_object_set_new(o, "revoked_at", json_string(ctl_time(r->revoked_at, t4, 32)));
		json_object_set_new(o, "reason", json_string(r->reason));
	}
	if (o && pem)
		json_object_set_new(o, "pem", json_string(r->pem));
	return o;
}

struct list_ctx {
	bool json;
	size_t count;
};

static int list_cb(void *ctx, const struct store_cert *r)
{
	struct list_ctx *l = ctx;
	char na[32], rv[32];

	if (l->json) {
		if (ctl_json_element(cert_json(r, false), l->count, JSON_COMPACT) < 0)
			return -1;
	} else {
		if (l->count == 0)
			printf("%-34s  %-32s  %-20s  %s\n", "SERIAL", "URI", "EXPIRES", "REVOKED");
		printf("%-34s  %-32s  %-20s  %s%s%s\n", r->serial, r->uri,
		       ctl_time(r->not_after, na, sizeof(na)),
		       r->revoked_at ? ctl_time(r->revoked_at, rv, sizeof(rv)) : "-",
		       r->revoked_at ? " " : "", r->revoked_at ? r->reason : "");
	}
	l->count++;
	return 0;
}

static int cert_list(struct ctl *c, int argc, char **argv)
{
	bool json = false;
	const struct ctl_opt opts[] = {{"--json", NULL, &json}, {NULL, NULL, NULL}};
	char uri[STORE_URI_MAX], user[STORE_URI_MAX], domain[STORE_URI_MAX];
	struct list_ctx l = {false, 0};
	const char *pos[1];
	int n, rc;

	if (ctl_args(&h_list, argc, argv, opts, pos, 0, 1, &n, &rc))
		return rc;
	if (n == 1 && (rc = ctl_uri_arg("URI", pos[0], uri, user, domain)) != 0)
		return rc;
	rc = ctl_store(c);
	if (rc)
		return rc;
	l.json = json;
	if (json)
		fputs("[", stdout);
	rc = store_cert_list(c->store, n == 1 ? uri : NULL, list_cb, &l);
	if (json)
		ctl_json_array_end(l.count);
	else if (rc == STORE_OK && l.count == 0)
		ctl_note("no certificates%s%s", n == 1 ? " for " : "", n == 1 ? uri : "");
	if (rc != STORE_OK)
		return cert_failed(c, "listing certificates", rc < 0 ? rc : STORE_UNAVAILABLE);
	return CTL_EXIT_OK;
}

static int cert_show(struct ctl *c, int argc, char **argv)
{
	bool json = false;
	const struct ctl_opt opts[] = {{"--json", NULL, &json}, {NULL, NULL, NULL}};
	char serial[PKI_SERIAL_MAX], t1[32], t2[32], t3[32], t4[32];
	struct store_cert *r;
	const char *pos[1];
	int n, rc;

	if (ctl_args(&h_show, argc, argv, opts, pos, 1, 1, &n, &rc))
		return rc;
	if (pki_serial_normalise(pos[0], serial) < 0)
		return ctl_usage_err("'%s' is not a serial (hexadecimal digits, colons allowed)",
				     pos[0]);
	rc = ctl_store(c);
	if (rc)
		return rc;
	r = calloc(1, sizeof(*r));
	if (!r) {
		ctl_err("out of memory");
		return CTL_EXIT_ERR;
	}
	rc = store_cert_get(c->store, serial, r);
	if (rc == STORE_NOTFOUND) {
		ctl_err("no certificate with serial %s (see: rtcauthctl cert list)", serial);
		rc = CTL_EXIT_NOTFOUND;
	} else if (rc != STORE_OK) {
		rc = cert_failed(c, "reading the certificate", rc);
	} else if (json) {
		rc = ctl_print_json(cert_json(r, true)) < 0 ? CTL_EXIT_ERR : CTL_EXIT_OK;
	} else {
		printf("serial:     %s\nuri:        %s\nsubject:    %s\nnot before: %s\n"
		       "not after:  %s\nissued:     %s\nrevoked:    %s%s%s\n%s",
		       r->serial, r->uri, r->subject, ctl_time(r->not_before, t1, sizeof(t1)),
		       ctl_time(r->not_after, t2, sizeof(t2)), ctl_time(r->issued, t3, sizeof(t3)),
		       r->revoked_at ? ctl_time(r->revoked_at, t4, sizeof(t4)) : "no",
		       r->revoked_at ? " " : "", r->revoked_at ? r->reason : "", r->pem);
		rc = CTL_EXIT_OK;
	}
	free(r);
	return rc;
}

static int cert_revoke(struct ctl *c, int argc, char **argv)
{
	const char *serial_arg = NULL, *reason = NULL, *pos[1];
	bool have_serial = false, have_reason = false;
	const struct ctl_opt opts[] = {{"--serial", &serial_arg, &have_serial},
				       {"--reason", &reason, &have_reason},
				       {NULL, NULL, NULL}};
	char uri[STORE_URI_MAX], user[STORE_URI_MAX], domain[STORE_URI_MAX];
	char serial[PKI_SERIAL_MAX], detail[160];
	int n, rc;

	if (ctl_args(&h_revoke, argc, argv, opts, pos, 0, 1, &n, &rc))
		return rc;
	if ((n == 1) == have_serial)
		return ctl_usage_err("give a URI or --serial SERIAL (one of them) (see: rtcauthctl "
				     "cert revoke --help)");
	if (!pki_reason_valid(reason))
		return ctl_usage_err("unknown --reason '%s' (see: rtcauthctl cert revoke --help)",
				     reason);
	if (have_serial && pki_serial_normalise(serial_arg, serial) < 0)
		return ctl_usage_err("'%s' is not a serial (hexadecimal digits, colons allowed)",
				     serial_arg);
	if (n == 1 && (rc = ctl_uri_arg("URI", pos[0], uri, user, domain)) != 0)
		return rc;
	rc = ctl_store(c);
	if (rc)
		return rc;
	rc = have_serial ? pki_revoke_serial(c->store, serial, reason)
			 : pki_revoke_user(c->store, uri, reason);
	if (rc < 0)
		return cert_failed(c, "revoking", rc);
	if (rc == 0) {
		if (have_serial) {
			struct store_cert *r = calloc(1, sizeof(*r));
			int g = r ? store_cert_get(c->store, serial, r) : STORE_UNAVAILABLE;
			free(r);
			if (g == STORE_OK) {
				printf("certificate %s was revoked already\n", serial);
				return CTL_EXIT_OK;
			}
			ctl_err("no certificate with serial %s (see: rtcauthctl cert list)",
				serial);
		} else {
			ctl_err("%s has no certificate that is not revoked already", uri);
		}
		return CTL_EXIT_NOTFOUND;
	}
	snprintf(detail, sizeof(detail), "%s%s count=%d reason=%s", have_serial ? "serial=" : "",
		 have_serial ? serial : "all", rc, reason && *reason ? reason : "unspecified");
	ctl_audit(c, "cert.revoke", have_serial ? serial : uri, detail);
	printf("revoked %d certificate%s%s%s\n", rc, rc == 1 ? "" : "s", have_serial ? "" : " of ",
	       have_serial ? "" : uri);
	return CTL_EXIT_OK;
}

/* "8h", "30d", "90m", "3600", "3600s" -> seconds; -1 if malformed. */
static long parse_lifetime(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || v <= 0 || v > 10L * 365 * 86400)
		return -1;
	if (*end == '\0' || strcmp(end, "s") == 0)
		return v;
	if (strcmp(end, "m") == 0)
		return v * 60;
	if (strcmp(end, "h") == 0)
		return v * 3600;
	if (strcmp(end, "d") == 0)
		return v * 86400;
	return -1;
}

/* The CSR file, at most PKI_CSR_MAX bytes. NULL after saying why. */
static char *read_csr(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *buf;

	if (!f) {
		ctl_err("cannot read the CSR %s: %s", path, strerror(errno));
		return NULL;
	}
	buf = malloc(PKI_CSR_MAX + 2);
	*len = buf ? fread(buf, 1, PKI_CSR_MAX + 1, f) : 0;
	if (!buf || ferror(f)) {
		ctl_err("cannot read the CSR %s", path);
		free(buf);
		buf = NULL;
	} else if (*len > PKI_CSR_MAX) {
		ctl_err("the CSR %s is larger than %d bytes; is it a PEM certificate request?",
			path, PKI_CSR_MAX);
		free(buf);
		buf = NULL;
	} else {
		buf[*len] = '\0';
	}
	fclose(f);
	return buf;
}

static int issue_with(struct ctl *c, const struct store_user *u, const char *csr, size_t len,
		      int lifetime, const char *path)
{
	char *chain = NULL, serial[PKI_SERIAL_MAX], err[512], t[32], detail[160];
	int64_t not_after = 0;
	int rc;

	if (pki_init(&c->cfg, err, sizeof(err)) < 0) {
		ctl_err("%s", err);
		return CTL_EXIT_ERR;
	}
	if (pki_csr_names_other(csr, len, u->uri))
		ctl_note("the request from %s names someone other than %s: those names are ignored",
			 path, u->uri);
	rc = pki_issue(c->store, u, csr, len, lifetime, &chain, serial, &not_after);
	pki_shutdown();
	if (rc == PKI_E_CSR || rc == PKI_E_WEAK_KEY || rc == PKI_E_LIFETIME) {
		ctl_err("cannot issue from %s: %s", path, pki_issue_strerror(rc));
		return CTL_EXIT_USAGE;
	}
	if (rc != PKI_OK) {
		ctl_err("cannot issue: %s", pki_issue_strerror(rc));
		return CTL_EXIT_ERR;
	}
	snprintf(detail, sizeof(detail), "serial=%s not_after=%s", serial,
		 ctl_time(not_after, t, sizeof(t)));
	ctl_audit(c, "cert.issue", u->uri, detail);
	fputs(chain, stdout);
	fprintf(stderr, "issued certificate %s for %s, valid until %s\n", serial, u->uri, t);
	free(chain);
	return CTL_EXIT_OK;
}

static int cert_issue(struct ctl *c, int argc, char **argv)
{
	const char *csr_path = NULL, *lifetime_arg = NULL, *pos[1];
	bool have_csr = false, have_lifetime = false;
	const struct ctl_opt opts[] = {{"--csr", &csr_path, &have_csr},
				       {"--lifetime", &lifetime_arg, &have_lifetime},
				       {NULL, NULL, NULL}};
	char uri[STORE_URI_MAX], user[STORE_URI_MAX], domain[STORE_URI_MAX];
	struct store_user u;
	long lifetime = 0;
	size_t len = 0;
	char *csr;
	int n, rc;

	if (ctl_args(&h_issue, argc, argv, opts, pos, 1, 1, &n, &rc))
		return rc;
	if (!have_csr)
		return ctl_usage_err("--csr FILE is required (see: rtcauthctl cert issue --help)");
	if (have_lifetime && ((lifetime = parse_lifetime(lifetime_arg)) < 0 ||
			      lifetime < PKI_LIFETIME_MIN || lifetime > PKI_LIFETIME_MAX))
		return ctl_usage_err("--lifetime '%s' is not a duration from 8h to 365d",
				     lifetime_arg);
	if ((rc = ctl_uri_arg("URI", pos[0], uri, user, domain)) != 0)
		return rc;
	rc = ctl_store(c);
	if (rc)
		return rc;
	rc = store_user_get(c->store, uri, &u);
	if (rc == STORE_NOTFOUND) {
		ctl_err("no user %s (add one with: rtcauthctl user add URI)", uri);
		return CTL_EXIT_NOTFOUND;
	}
	if (rc != STORE_OK)
		return cert_failed(c, "reading the user", rc);
	if (!u.enabled) {
		ctl_err("%s is disabled; enable the user first (rtcauthctl user enable URI)", uri);
		return CTL_EXIT_USAGE;
	}
	csr = read_csr(csr_path, &len);
	if (!csr)
		return CTL_EXIT_USAGE;
	rc = issue_with(c, &u, csr, len, (int)lifetime, csr_path);
	free(csr);
	return rc;
}

static void cert_usage(FILE *out)
{
	fputs("usage: rtcauthctl cert COMMAND ...\n"
	      "  cert list [URI] [--json]\n"
	      "  cert show SERIAL [--json]\n"
	      "  cert revoke (URI | --serial SERIAL) [--reason REASON]\n"
	      "  cert issue URI --csr FILE [--lifetime DURATION]\n"
	      "COMMAND --help for a command's help.\n",
	      out);
}

int ctl_cert_main(struct ctl *c, int argc, char **argv)
{
	const char *sub = argc > 0 ? argv[0] : NULL;

	if (!sub) {
		ctl_err("cert: missing command (see: rtcauthctl cert --help)");
		cert_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
		cert_usage(stdout);
		return CTL_EXIT_OK;
	}
	argc--;
	argv++;
	if (strcmp(sub, "list") == 0)
		return cert_list(c, argc, argv);
	if (strcmp(sub, "show") == 0)
		return cert_show(c, argc, argv);
	if (strcmp(sub, "revoke") == 0)
		return cert_revoke(c, argc, argv);
	if (strcmp(sub, "issue") == 0)
		return cert_issue(c, argc, argv);
	ctl_err("cert: unknown command '%s' (see: rtcauthctl cert --help)", sub);
	cert_usage(stderr);
	return CTL_EXIT_USAGE;
}
