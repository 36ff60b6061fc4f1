/*
 * rtcauthctl: shared context, argument parsing, password input and output
 * helpers. Must never print, log or keep a password longer than needed:
 * password buffers belong to the caller, who wipes them; our own copies (the
 * terminal's second read) are wiped here.
 */
#include "ctl/ctl.h"

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "core/secmem.h"
#include "vault/vault.h"

static void verr(const char *fmt, va_list ap)
{
	fputs("rtcauthctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void ctl_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr(fmt, ap);
	va_end(ap);
}

int ctl_usage_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr(fmt, ap);
	va_end(ap);
	return CTL_EXIT_USAGE;
}

int ctl_json_element(json_t *o, size_t index, size_t flags)
{
	char *s = o ? json_dumps(o, flags) : NULL;

	json_decref(o);
	if (!s)
		return -1;
	printf("%s\n  %s", index ? "," : "", s);
	free(s);
	return 0;
}

void ctl_json_array_end(size_t count)
{
	fputs(count ? "\n]\n" : "]\n", stdout);
}

void ctl_note(const char *fmt, ...)
{
	va_list ap;

	fputs("rtcauthctl: note: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- context ---- */

static void set_actor(struct ctl *c)
{
	char login[128];
	const char *name = NULL;
	struct passwd *pw;

	/* getlogin() names the person behind sudo; fall back to the uid's name. */
	if (getlogin_r(login, sizeof(login)) == 0 && login[0] != '\0')
		name = login;
	else if ((pw = getpwuid(geteuid())) != NULL)
		name = pw->pw_name;
	if (name)
		snprintf(c->actor, sizeof(c->actor), "rtcauthctl:%s", name);
	else
		snprintf(c->actor, sizeof(c->actor), "rtcauthctl:uid%ld", (long)geteuid());
}

int ctl_config(struct ctl *c)
{
	char err[512];

	if (c->cfg_loaded)
		return 0;
	if (config_load(c->conf_path, &c->cfg, err, sizeof(err)) < 0) {
		ctl_err("%s (use -c PATH to name another config file)", err);
		return CTL_EXIT_ERR;
	}
	c->cfg_loaded = true;
	vault_ntlm_hashes(config_offers(&c->cfg, AUTH_SCHEME_NTLM));
	vault_netbios_domain(c->cfg.ntlm_domain);
	set_actor(c);
	return 0;
}

/* mkdir -p: parents 0755, the last component with mode. */
static int make_dirs(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	size_t len = strlen(path), i;

	if (len == 0 || len >= sizeof(tmp))
		return -1;
	memcpy(tmp, path, len + 1);
	while (len > 1 && tmp[len - 1] == '/')
		tmp[--len] = '\0';
	for (i = 1; i < len; i++) {
		if (tmp[i] != '/')
			continue;
		tmp[i] = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -1;
		tmp[i] = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

int ctl_store(struct ctl *c)
{
	char err[512];
	struct stat st;
	int rc;

	if (c->store)
		return 0;
	rc = ctl_config(c);
	if (rc)
		return rc;
	if (stat(c->cfg.state_dir, &st) < 0 && errno == ENOENT) {
		if (make_dirs(c->cfg.state_dir, 0700) < 0) {
			ctl_err("cannot create state directory %s: %s (check state_dir in %s)",
				c->cfg.state_dir, strerror(errno), c->conf_path);
			return CTL_EXIT_ERR;
		}
	}
	err[0] = '\0';
	rc = store_open(c->cfg.sqlite_path, STORE_CREATE, CTL_BUSY_MS, &c->store, err, sizeof(err));
	if (rc != STORE_OK) {
		c->store = NULL;
		if (err[0])
			ctl_err("%s (check [store] sqlite and [server] state_dir in %s, and the "
				"permissions of the database's directory)",
				err, c->conf_path);
		else
			ctl_err("cannot open the database %s: %s (check [store] sqlite in %s)",
				c->cfg.sqlite_path, store_strerror(rc), c->conf_path);
		return CTL_EXIT_ERR;
	}
	return 0;
}

void ctl_close(struct ctl *c)
{
	if (c->store)
		store_close(c->store);
	c->store = NULL;
}

int ctl_store_exit(int store_err)
{
	switch (store_err) {
	case STORE_OK:
		return CTL_EXIT_OK;
	case STORE_NOTFOUND:
		return CTL_EXIT_NOTFOUND;
	case STORE_CONFLICT:
		return CTL_EXIT_CONFLICT;
	case STORE_INVALID:
		return CTL_EXIT_USAGE;
	default:
		return CTL_EXIT_ERR;
	}
}

int ctl_audit(struct ctl *c, const char *action, const char *target, const char *detail)
{
	int rc = store_audit_add(c->store, c->actor, action, target, "local", detail ? detail : "");

	if (rc != STORE_OK)
		ctl_err("cannot write the audit record for %s %s: %s", action, target,
			store_strerror(rc));
	return rc;
}

/* ---- arguments ---- */

void ctl_cmd_usage(const struct ctl_cmd_help *h, bool full)
{
	FILE *out = full ? stdout : stderr;

	fprintf(out, "usage: rtcauthctl [-c PATH] %s%s%s\n", h->name, h->usage[0] ? " " : "",
		h->usage);
	if (!full)
		return;
	fprintf(out, "\n%s\n", h->summary);
	if (h->detail)
		fprintf(out, "\n%s", h->detail);
}

static const struct ctl_opt *find_opt(const struct ctl_opt *opts, const char *arg, size_t len)
{
	for (; opts && opts->name; opts++)
		if (strlen(opts->name) == len && strncmp(opts->name, arg, len) == 0)
			return opts;
	return NULL;
}

static int usage_error(const struct ctl_cmd_help *h, int *rc, const char *fmt, const char *arg)
{
	fprintf(stderr, "rtcauthctl %s: ", h->name);
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	ctl_cmd_usage(h, false);
	fprintf(stderr, "(see: rtcauthctl %s --help)\n", h->name);
	*rc = CTL_EXIT_USAGE;
	return 1;
}

static int take_opt(const struct ctl_cmd_help *h, const struct ctl_opt *opts, int argc, char **argv,
		    int *i, int *rc)
{
	const char *arg = argv[*i], *eq = strchr(arg, '=');
	size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
	const struct ctl_opt *o = find_opt(opts, arg, len);

	if (!o)
		return usage_error(h, rc, "unknown option '%s'", arg);
	if (!o->val) {
		if (eq)
			return usage_error(h, rc, "option '%s' takes no value", arg);
		*o->flag = true;
		return 0;
	}
	if (eq) {
		*o->val = eq + 1;
	} else {
		if (*i + 1 >= argc)
			return usage_error(h, rc, "option '%s' needs a value", arg);
		*o->val = argv[++*i];
	}
	if (o->flag)
		*o->flag = true;
	return 0;
}

int ctl_args(const struct ctl_cmd_help *h, int argc, char **argv, const struct ctl_opt *opts,
	     const char **pos, int min_pos, int max_pos, int *npos, int *rc)
{
	bool opts_done = false;
	int i;

	*npos = 0;
	*rc = 0;
	for (i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (!opts_done && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)) {
			ctl_cmd_usage(h, true);
			return 1;
		}
		if (!opts_done && strcmp(a, "--") == 0) {
			opts_done = true;
			continue;
		}
		if (!opts_done && a[0] == '-' && a[1] != '\0') {
			if (take_opt(h, opts, argc, argv, &i, rc))
				return 1;
			continue;
		}
		if (*npos >= max_pos)
			return usage_error(h, rc, "unexpected argument '%s'", a);
		pos[(*npos)++] = a;
	}
	if (*npos < min_pos) {
		/* Name the missing argument from the usage line: "URI [--json]" -> "URI". */
		char name[64];
		const char *u = h->usage;
		size_t k = 0;
		int skip = *npos;

		while (*u) {
			size_t l = strcspn(u, " ");

			if (*u != '[' && *u != '-' && skip-- == 0) {
				k = l < sizeof(name) ? l : sizeof(name) - 1;
				memcpy(name, u, k);
				break;
			}
			u += l;
			u += strspn(u, " ");
		}
		name[k] = '\0';
		return usage_error(h, rc, "missing argument %s", k ? name : "");
	}
	return 0;
}

int ctl_uri_arg(const char *what, const char *in, char uri[STORE_URI_MAX], char user[STORE_URI_MAX],
		char domain[STORE_URI_MAX])
{
	if (strlen(in) >= STORE_URI_MAX || store_uri_normalise(in, uri, user, domain) != STORE_OK) {
		ctl_err("invalid %s '%s': expected a SIP URI such as sip:alice@example.com "
			"(no port, parameters or headers)",
			what, in);
		return CTL_EXIT_USAGE;
	}
	return 0;
}

/* ---- passwords ---- */

int ctl_read_password_fd(int fd, char *buf, size_t cap, size_t *len)
{
	size_t n = 0;
	bool eol = false, too_long = false;
	char ch;

	*len = 0;
	/* Byte by byte: whatever follows the first line stays unread. */
	for (;;) {
		ssize_t r = read(fd, &ch, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ctl_err("cannot read the password: %s", strerror(errno));
			secmem_wipe(buf, cap);
			return CTL_EXIT_ERR;
		}
		if (r == 0)
			break;
		if (ch == '\n') {
			eol = true;
			break;
		}
		if (n + 1 >= cap) {
			too_long = true;
			continue;
		}
		buf[n++] = ch;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	if (too_long) {
		secmem_wipe(buf, cap);
		ctl_err("password too long (at most %zu bytes)", cap - 1);
		return CTL_EXIT_USAGE;
	}
	if (n == 0) {
		ctl_err("%s", eol ? "empty password: give a non-empty password on the first line"
				  : "no password on standard input (expected one line)");
		return CTL_EXIT_USAGE;
	}
	if (memchr(buf, '\0', n)) {
		secmem_wipe(buf, cap);
		ctl_err("the password contains a NUL byte");
		return CTL_EXIT_USAGE;
	}
	*len = n;
	return 0;
}

static struct termios saved_tty;
static volatile sig_atomic_t tty_changed;

static void restore_tty_and_die(int sig)
{
	if (tty_changed)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
	signal(sig, SIG_DFL);
	raise(sig);
}

static int prompt_once(const char *prompt, char *buf, size_t cap, size_t *len)
{
	int rc;

	fputs(prompt, stderr);
	fflush(stderr);
	rc = ctl_read_password_fd(STDIN_FILENO, buf, cap, len);
	fputc('\n', stderr);
	return rc;
}

int ctl_read_password_tty(char *buf, size_t cap, size_t *len)
{
	struct termios raw;
	char *again = calloc(1, cap);
	size_t len2 = 0;
	int rc;

	if (!again) {
		ctl_err("out of memory");
		return CTL_EXIT_ERR;
	}
	if (tcgetattr(STDIN_FILENO, &saved_tty) < 0) {
		ctl_err("cannot read the terminal settings: %s", strerror(errno));
		free(again);
		return CTL_EXIT_ERR;
	}
	raw = saved_tty;
	raw.c_lflag &= ~(tcflag_t)ECHO;
	signal(SIGINT, restore_tty_and_die);
	signal(SIGTERM, restore_tty_and_die);
	signal(SIGHUP, restore_tty_and_die);
	tty_changed = 1;
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw);
	rc = prompt_once("New password: ", buf, cap, len);
	if (rc == 0)
		rc = prompt_once("Retype new password: ", again, cap, &len2);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
	tty_changed = 0;
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	if (rc == 0 && (len2 != *len || !secmem_eq(buf, again, *len))) {
		ctl_err("the passwords do not match; nothing changed (try again)");
		rc = CTL_EXIT_USAGE;
	}
	secmem_wipe(again, cap);
	free(again);
	if (rc) {
		secmem_wipe(buf, cap);
		*len = 0;
	}
	return rc;
}

/* ---- output ---- */

const char *ctl_time(int64_t t, char *buf, size_t cap)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (t <= 0 || !gmtime_r(&tt, &tm) || strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, cap, "-");
	return buf;
}

int ctl_print_json(json_t *v)
{
	int rc = 0;

	if (!v || json_dumpf(v, stdout, JSON_INDENT(2)) < 0) {
		ctl_err("cannot write JSON output");
		rc = CTL_EXIT_ERR;
	} else {
		fputc('\n', stdout);
	}
	json_decref(v);
	return rc;
}

const char *ctl_transport_name(int kind)
{
	switch (kind) {
	case TRANSPORT_UDP:
		return "udp";
	case TRANSPORT_TCP:
		return "tcp";
	case TRANSPORT_TLS:
		return "tls";
	}
	return "?";
}
