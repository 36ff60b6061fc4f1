/*
 * rtcauthctl pin set|unlock|del|show|policy: PINs for phones (issue 5 item 2).
 * The PIN comes from standard input (--pin-stdin) or the terminal, is
 * checked against the policy ([pin] min_length, src/pki/pin.h), handed to
 * the vault for hashing and wiped; it is never printed, logged or audited.
 */
#include "ctl/ctl.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "core/secmem.h"
#include "core/str.h"
#include "pki/pin.h"
#include "vault/vault_pin.h"

#define PIN_BUF 64

static const struct ctl_cmd_help h_set = {
    "pin set", "URI [--pin-stdin]", "Set a user's PIN (for signing in on a phone).",
    "  --pin-stdin  read the PIN from the first line of standard input\n"
    "Without --pin-stdin the PIN is asked twice on the terminal. The PIN must meet\n"
    "the policy (see: rtcauthctl pin policy). Setting a PIN clears its lockout.\n"};
static const struct ctl_cmd_help h_unlock = {
    "pin unlock", "URI",
    "Clear a user's PIN lockout: the temporary one and the global one that only an\n"
    "administrator can clear.",
    NULL};
static const struct ctl_cmd_help h_del = {
    "pin del", "URI", "Remove a user's PIN (the user can no longer sign in on a phone with it).",
    NULL};
static const struct ctl_cmd_help h_show = {
    "pin show", "URI [--json]", "Show whether a user has a PIN, its failure counters and locks.",
    "  --json  a JSON object\n"};
static const struct ctl_cmd_help h_policy = {"pin policy", "[--json]",
					     "Show the PIN policy and the lockout limits.",
					     "  --json  a JSON object\n"};

/* The user named by URI, with phone and extension. 0 or an exit code. */
static int load_user(struct ctl *c, const char *arg, struct store_user *u,
		     char phone[STORE_PHONE_MAX], char ext[STORE_EXTENSION_MAX])
{
	char uri[STORE_URI_MAX], user[STORE_URI_MAX], domain[STORE_URI_MAX];
	int rc = ctl_uri_arg("user URI", arg, uri, user, domain);

	if (rc)
		return rc;
	rc = ctl_store(c);
	if (rc)
		return rc;
	rc = store_user_get(c->store, uri, u);
	if (rc == STORE_OK)
		rc = store_user_get_phone(c->store, uri, phone, ext);
	if (rc == STORE_NOTFOUND) {
		ctl_err("user %s not found (see: rtcauthctl user list)", uri);
		return CTL_EXIT_NOTFOUND;
	}
	if (rc != STORE_OK) {
		ctl_err("reading the user failed: %s (%s)", store_strerror(rc),
			store_errmsg(c->store));
		return ctl_store_exit(rc);
	}
	return 0;
}

/* One line of standard input into buf. 0 or an exit code. */
static int read_pin_stdin(char *buf, size_t cap, size_t *len)
{
	size_t n = 0;
	bool eol = false, too_long = false;
	char ch;

	for (;;) {
		ssize_t r = read(STDIN_FILENO, &ch, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ctl_err("cannot read the PIN: %s", strerror(errno));
			return CTL_EXIT_ERR;
		}
		if (r == 0)
			break;
		if (ch == '\n') {
			eol = true;
			break;
		}
		if (n + 1 >= cap)
			too_long = true;
		else
			buf[n++] = ch;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	*len = n;
	if (too_long)
		return ctl_usage_err("PIN too long (at most %d digits)", PIN_MAX_LENGTH);
	if (n == 0)
		return ctl_usage_err("%s", eol ? "empty PIN: give the PIN on the first line"
					       : "no PIN on standard input (expected one line)");
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

/* Ask for the PIN twice on the terminal, echo off. 0 or an exit code. */
static int read_pin_tty(char *buf, size_t cap, size_t *len)
{
	char again[PIN_BUF];
	struct termios quiet;
	size_t len2 = 0;
	int rc;

	if (tcgetattr(STDIN_FILENO, &saved_tty) < 0) {
		ctl_err("cannot read the terminal settings: %s", strerror(errno));
		return CTL_EXIT_ERR;
	}
	quiet = saved_tty;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	signal(SIGINT, restore_tty_and_die);
	signal(SIGTERM, restore_tty_and_die);
	signal(SIGHUP, restore_tty_and_die);
	tty_changed = 1;
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	fputs("New PIN: ", stderr);
	rc = read_pin_stdin(buf, cap, len);
	fputc('\n', stderr);
	if (rc == 0) {
		fputs("Retype new PIN: ", stderr);
		rc = read_pin_stdin(again, sizeof(again), &len2);
		fputc('\n', stderr);
	}
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
	tty_changed = 0;
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	if (rc == 0 && (len2 != *len || !secmem_eq(buf, again, *len)))
		rc = ctl_usage_err("the PINs do not match; nothing changed (try again)");
	secmem_wipe(again, sizeof(again));
	return rc;
}

static int store_write_failed(struct ctl *c, const char *what, int rc)
{
	ctl_err("%s failed: %s (%s)", what, store_strerror(rc), store_errmsg(c->store));
	return ctl_store_exit(rc);
}

static int pin_set(struct ctl *c, int argc, char **argv)
{
	bool from_stdin = false;
	const struct ctl_opt opts[] = {{"--pin-stdin", NULL, &from_stdin}, {NULL, NULL, NULL}};
	char phone[STORE_PHONE_MAX], ext[STORE_EXTENSION_MAX], msg[160], pin[PIN_BUF];
	struct pin_policy pol;
	struct store_user u;
	const char *pos[1];
	size_t len = 0;
	int n, rc;

	if (ctl_args(&h_set, argc, argv, opts, pos, 1, 1, &n, &rc))
		return rc;
	if ((rc = ctl_config(c)) || (rc = load_user(c, pos[0], &u, phone, ext)))
		return rc;
	memset(pin, 0, sizeof(pin));
	if (from_stdin)
		rc = read_pin_stdin(pin, sizeof(pin), &len);
	else if (isatty(STDIN_FILENO))
		rc = read_pin_tty(pin, sizeof(pin), &len);
	else
		rc = ctl_usage_err(
		    "no PIN given: pipe it in with --pin-stdin, or run on a terminal");
	if (rc)
		goto out;
	pol.min_length = c->cfg.pin_min_length;
	rc = pin_policy_check(&pol, pin, len, phone, ext);
	if (rc != PIN_POLICY_OK) {
		rc = ctl_usage_err("PIN refused: %s (see: rtcauthctl pin policy)",
				   pin_policy_strerror(rc, pol.min_length, msg, sizeof(msg)));
		goto out;
	}
	rc = store_begin(c->store);
	if (rc == STORE_OK)
		rc = vault_pin_set(c->store, u.id, pin, len, (int64_t)time(NULL));
	if (rc == STORE_OK)
		rc = ctl_audit(c, "pin.set", u.uri, "PIN set; lockout cleared");
	if (rc == STORE_OK)
		rc = store_commit(c->store);
	if (rc != STORE_OK) {
		store_rollback(c->store);
		rc = store_write_failed(c, "setting the PIN", rc);
		goto out;
	}
	printf("PIN of %s set\n", u.uri);
	rc = CTL_EXIT_OK;
out:
	secmem_wipe(pin, sizeof(pin));
	return rc;
}

static int pin_unlock_cmd(struct ctl *c, int argc, char **argv)
{
	char phone[STORE_PHONE_MAX], ext[STORE_EXTENSION_MAX];
	struct store_user u;
	const char *pos[1];
	int n, rc;

	if (ctl_args(&h_unlock, argc, argv, NULL, pos, 1, 1, &n, &rc))
		return rc;
	if ((rc = load_user(c, pos[0], &u, phone, ext)))
		return rc;
	rc = store_begin(c->store);
	if (rc == STORE_OK)
		rc = pin_unlock(c->store, u.id);
	if (rc == STORE_OK)
		rc = ctl_audit(c, "pin.unlock", u.uri, "PIN failure counters and locks cleared");
	if (rc == STORE_OK)
		rc = store_commit(c->store);
	if (rc != STORE_OK) {
		store_rollback(c->store);
		if (rc == STORE_NOTFOUND) {
			ctl_err("%s has no PIN (set one with: rtcauthctl pin set %s --pin-stdin)",
				u.uri, u.uri);
			return CTL_EXIT_NOTFOUND;
		}
		return store_write_failed(c, "unlocking the PIN", rc);
	}
	printf("PIN of %s unlocked\n", u.uri);
	return CTL_EXIT_OK;
}

static int pin_del(struct ctl *c, int argc, char **argv)
{
	char phone[STORE_PHONE_MAX], ext[STORE_EXTENSION_MAX];
	struct store_user u;
	const char *pos[1];
	int n, rc;

	if (ctl_args(&h_del, argc, argv, NULL, pos, 1, 1, &n, &rc))
		return rc;
	if ((rc = load_user(c, pos[0], &u, phone, ext)))
		return rc;
	rc = store_begin(c->store);
	if (rc == STORE_OK)
		rc = store_pin_del(c->store, u.id);
	if (rc == STORE_OK)
		rc = ctl_audit(c, "pin.del", u.uri, "PIN removed");
	if (rc == STORE_OK)
		rc = store_commit(c->store);
	if (rc != STORE_OK) {
		store_rollback(c->store);
		if (rc == STORE_NOTFOUND) {
			ctl_err("%s has no PIN", u.uri);
			return CTL_EXIT_NOTFOUND;
		}
		return store_write_failed(c, "removing the PIN", rc);
	}
	printf("PIN of %s removed\n", u.uri);
	return CTL_EXIT_OK;
}

static const char *lock_name(enum pin_lock_state ls)
{
	return ls == PIN_LOCKED_ADMIN  ? "locked (global limit: needs rtcauthctl pin unlock)"
	       : ls == PIN_LOCKED_TEMP ? "locked (temporary)"
				       : "no";
}

static int pin_show(struct ctl *c, int argc, char **argv)
{
	bool json = false;
	const struct ctl_opt opts[] = {{"--json", NULL, &json}, {NULL, NULL, NULL}};
	char phone[STORE_PHONE_MAX], ext[STORE_EXTENSION_MAX], t1[32], t2[32];
	struct store_pin_state st;
	struct pin_limits lim;
	struct vault_pin_params vp;
	enum pin_lock_state ls;
	struct store_user u;
	const char *pos[1];
	int64_t now = (int64_t)time(NULL), ra = 0;
	int n, rc;

	if (ctl_args(&h_show, argc, argv, opts, pos, 1, 1, &n, &rc))
		return rc;
	if ((rc = load_user(c, pos[0], &u, phone, ext)))
		return rc;
	rc = store_pin_get_state(c->store, u.id, &st);
	if (rc == STORE_NOTFOUND) {
		if (json)
			return ctl_print_json(json_pack("{s:s, s:b}", "uri", u.uri, "pin", 0));
		printf("uri:              %s\npin:              none\n", u.uri);
		return CTL_EXIT_OK;
	}
	if (rc != STORE_OK)
		return store_write_failed(c, "reading the PIN", rc);
	ls = pin_lock_check(&st, now, &ra);
	lim = pin_limits_of_class(vault_pin_params_parse(st.params, &vp) == 0 ? vp.klass : 4);
	if (json)
		return ctl_print_json(
		    json_pack("{s:s, s:b, s:s, s:I, s:i, s:i, s:i, s:i, s:b, s:I, s:b}", "uri",
			      u.uri, "pin", 1, "params", st.params, "set_at", (json_int_t)st.set_at,
			      "local_failures", (int)st.local_failures, "local_limit",
			      (int)lim.local, "global_failures", (int)st.global_failures,
			      "global_limit", (int)lim.global, "locked", ls != PIN_UNLOCKED,
			      "retry_after", (json_int_t)ra, "admin_locked", st.admin_locked));
	printf("uri:              %s\n"
	       "pin:              set %s\n"
	       "hashed with:      %s\n"
	       "local failures:   %d of %d (30-minute window)\n"
	       "global failures:  %d of %d\n"
	       "locked:           %s\n",
	       u.uri, ctl_time(st.set_at, t1, sizeof(t1)), st.params, (int)st.local_failures,
	       (int)lim.local, (int)st.global_failures, (int)lim.global, lock_name(ls));
	if (ls == PIN_LOCKED_TEMP)
		printf("locked until:     %s\n", ctl_time(st.locked_until, t2, sizeof(t2)));
	return CTL_EXIT_OK;
}

static int pin_policy_cmd(struct ctl *c, int argc, char **argv)
{
	bool json = false;
	const struct ctl_opt opts[] = {{"--json", NULL, &json}, {NULL, NULL, NULL}};
	struct pin_limits l4 = pin_limits_of_class(4), l5 = pin_limits_of_class(5),
			  l6 = pin_limits_of_class(6);
	const char *pos[1];
	int n, rc;

	if (ctl_args(&h_policy, argc, argv, opts, pos, 0, 0, &n, &rc))
		return rc;
	if ((rc = ctl_config(c)))
		return rc;
	if (json)
		return ctl_print_json(json_pack(
		    "{s:i, s:i, s:b, s:b, s:b, s:b, s:i, s:i, s:s, s:[{s:i, s:i, s:i}, {s:i, s:i, "
		    "s:i}, {s:i, s:i, s:i}]}",
		    "min_length", c->cfg.pin_min_length, "max_length", PIN_MAX_LENGTH,
		    "digits_only", 1, "runs_allowed", 0, "repeats_allowed", 0,
		    "phone_or_extension_allowed", 0, "window", PIN_WINDOW, "lock_time",
		    PIN_LOCK_TIME, "hash", "scrypt N=32768 r=8 p=1, 32-byte salt, 32-byte hash",
		    "lockout", "digits", 4, "local", (int)l4.local, "global", (int)l4.global,
		    "digits", 5, "local", (int)l5.local, "global", (int)l5.global, "digits", 6,
		    "local", (int)l6.local, "global", (int)l6.global));
	printf("PIN policy ([pin] in %s):\n"
	       "  length:          %d to %d digits ([pin] min_length)\n"
	       "  digits only:     yes\n"
	       "  refused:         runs (123456, 654321), repeats (111111, 121212), the user's\n"
	       "                   phone number or extension or their last digits\n"
	       "  stored as:       scrypt (N=32768, r=8, p=1), 32-byte salt, 32-byte hash\n"
	       "lockout (by the length of the user's PIN):\n"
	       "  4 digits:        %d failures in 30 minutes lock for 1 hour; %d in all lock\n"
	       "  5 digits:        %d failures in 30 minutes lock for 1 hour; %d in all lock\n"
	       "  6 or more:       %d failures in 30 minutes lock for 1 hour; %d in all lock\n"
	       "  a global lock lasts until: rtcauthctl pin unlock URI\n",
	       c->cfg.path, c->cfg.pin_min_length, PIN_MAX_LENGTH, (int)l4.local, (int)l4.global,
	       (int)l5.local, (int)l5.global, (int)l6.local, (int)l6.global);
	return CTL_EXIT_OK;
}

static const struct {
	const char *name;
	const struct ctl_cmd_help *help;
} pin_cmds[] = {
    {"set", &h_set},   {"unlock", &h_unlock}, {"del", &h_del},
    {"show", &h_show}, {"policy", &h_policy},
};

static void pin_usage(FILE *out)
{
	fprintf(out, "usage: rtcauthctl [-c PATH] pin COMMAND ...\ncommands:\n");
	for (size_t i = 0; i < sizeof(pin_cmds) / sizeof(pin_cmds[0]); i++)
		fprintf(out, "  pin %-7s %s\n", pin_cmds[i].name, pin_cmds[i].help->usage);
}

int ctl_pin_main(struct ctl *c, int argc, char **argv)
{
	const char *sub = argc > 0 ? argv[0] : NULL;

	if (!sub) {
		ctl_err("pin: missing command (see: rtcauthctl pin --help)");
		pin_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
		pin_usage(stdout);
		return CTL_EXIT_OK;
	}
	argc--;
	argv++;
	if (strcmp(sub, "set") == 0)
		return pin_set(c, argc, argv);
	if (strcmp(sub, "unlock") == 0)
		return pin_unlock_cmd(c, argc, argv);
	if (strcmp(sub, "show") == 0)
		return pin_show(c, argc, argv);
	if (strcmp(sub, "del") == 0)
		return pin_del(c, argc, argv);
	if (strcmp(sub, "policy") == 0)
		return pin_policy_cmd(c, argc, argv);
	ctl_err("pin: unknown command '%s' (see: rtcauthctl pin --help)", sub);
	pin_usage(stderr);
	return CTL_EXIT_USAGE;
}
