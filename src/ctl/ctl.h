/*
 * rtcauthctl internals shared by its command files (ctl_*.c). Everything a
 * command needs: the loaded config, a store handle opened on demand, the
 * actor name for the audit log, argument parsing, password input, output
 * helpers and the admin-socket client.
 *
 * Commands return an exit code (enum ctl_exit) and print their own errors
 * on stderr, in the form "rtcauthctl: what was wrong (what to do)".
 * Nothing here prints or logs a password or a password-derived key.
 */
#ifndef RTC_CTL_CTL_H
#define RTC_CTL_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/config.h"
#include "store/store.h"

enum ctl_exit {
	CTL_EXIT_OK = 0,
	CTL_EXIT_ERR = 1,      /* store unavailable, I/O, other */
	CTL_EXIT_USAGE = 2,    /* bad command line or bad input value */
	CTL_EXIT_NOTFOUND = 3, /* no such user / binding / entry */
	CTL_EXIT_CONFLICT = 4, /* already exists */
	CTL_EXIT_DAEMON = 5,   /* rtcauthd unreachable */
};

#define CTL_DEFAULT_CONFIG   "/etc/rtcauth/rtcauth.conf"
#define CTL_PASSWORD_MAX     1024 /* bytes, without the line break */
#define CTL_ADMIN_TIMEOUT_MS 5000
#define CTL_BUSY_MS	     5000

struct ctl {
	const char *conf_path;
	struct config cfg;
	bool cfg_loaded;
	struct store *store;
	char actor[STORE_URI_MAX]; /* "rtcauthctl:<login>" */
};

/* ---- context (ctl_common.c) ---- */

/* Load the config once; prints the error and returns CTL_EXIT_ERR on failure. */
int ctl_config(struct ctl *c);
/* Open the store once (creating the state dir 0700 if missing). Exit code. */
int ctl_store(struct ctl *c);
void ctl_close(struct ctl *c);
/* Map a store error to an exit code. */
int ctl_store_exit(int store_err);
/* Write an audit row as c->actor, source "local". Prints a warning on failure. */
int ctl_audit(struct ctl *c, const char *action, const char *target, const char *detail);

/* "rtcauthctl: " + message on stderr. */
void ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ctl_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- argument parsing ---- */

struct ctl_opt {
	const char *name; /* "--json" */
	const char **val; /* option takes a value (NULL for a flag) */
	bool *flag;	  /* set when present (flags) */
};

struct ctl_cmd_help {
	const char *name;    /* "user add" */
	const char *usage;   /* "URI [--display-name NAME] [--password-stdin] [--disabled]" */
	const char *summary; /* one line */
	const char *detail;  /* further lines, may be NULL */
};

/*
 * Parse a command's arguments: options anywhere, "--" ends them,
 * "--opt=value" or "--opt value". Positional arguments go to pos (at most
 * max_pos; fewer than min_pos is an error). "-h"/"--help" prints the help
 * and returns 1 with *rc = 0. Usage errors print a message and return 1
 * with *rc = CTL_EXIT_USAGE. Returns 0 when the command should run.
 */
int ctl_args(const struct ctl_cmd_help *h, int argc, char **argv, const struct ctl_opt *opts,
	     const char **pos, int min_pos, int max_pos, int *npos, int *rc);
void ctl_cmd_usage(const struct ctl_cmd_help *h, bool full);

/* Normalise a URI argument or print an error (exit 2). 0 or exit code. */
int ctl_uri_arg(const char *what, const char *in, char uri[STORE_URI_MAX], char user[STORE_URI_MAX],
		char domain[STORE_URI_MAX]);

/* ---- passwords ---- */

/*
 * Read one line from fd (no echo handling), strip the trailing LF / CRLF.
 * 0, or an exit code after printing why (empty, too long, read error, EOF).
 */
int ctl_read_password_fd(int fd, char *buf, size_t cap, size_t *len);
/* Ask twice on the terminal with echo off. 0 or an exit code. */
int ctl_read_password_tty(char *buf, size_t cap, size_t *len);

/* ---- output ---- */

/* "2026-11-22T06:40:01Z"; "-" for 0. buf >= 24 bytes. */
const char *ctl_time(int64_t t, char *buf, size_t cap);
/* Print a JSON value (indented) and a newline on stdout; consumes the reference. */
int ctl_print_json(json_t *v);
const char *ctl_transport_name(int kind);

/* ---- admin socket (ctl_admin.c) ---- */

/*
 * Send one request to rtcauthd and read its reply (one JSON line each way,
 * 5 s budget). On success *reply holds the parsed object (caller decrefs)
 * and 0 is returned. If the daemon cannot be reached, returns CTL_EXIT_DAEMON
 * and reason says why ("No such file or directory", "connection refused",
 * "no reply within 5 s"). Other failures: CTL_EXIT_ERR with reason.
 * A reply {"ok":false,...} is still returned as 0: see ctl_admin_check.
 */
int ctl_admin_call(const char *socket_path, json_t *request, json_t **reply, char *reason,
		   size_t reason_len);
/* Print the daemon's error for an ok:false reply; returns the exit code (0 if ok). */
int ctl_admin_check(json_t *reply);
/* The standard "cannot reach rtcauthd" message + CTL_EXIT_DAEMON. */
int ctl_admin_unreachable(struct ctl *c, const char *reason);
/* Best effort: ask a running daemon to forget cached key lookups. Silent
 * when no daemon runs (then there is no cache). */
/*
 * A JSON array streamed to stdout by the list commands: "[" first, then
 * ctl_json_element for each item (o is printed compactly with flags and
 * released; index: how many came before), then ctl_json_array_end(count).
 * ctl_json_element returns 0, or -1 when o is NULL or cannot be printed.
 */
int ctl_json_element(json_t *o, size_t index, size_t flags);
void ctl_json_array_end(size_t count);
/* ctl_err, returning CTL_EXIT_USAGE (bad input on the command line). */
int ctl_usage_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ctl_admin_flush_cache(struct ctl *c);
/*
 * Best effort: tell a running daemon to reload its OAuth keys and partners
 * (admin command "oauth.reload"), after a key or partner change. Silent when
 * no daemon runs (it reads the store when it starts); a note when the
 * daemon could not load the change (it keeps what it had).
 */
void ctl_admin_oauth_reload(struct ctl *c);

/* ---- commands ---- */

int ctl_user_main(struct ctl *c, int argc, char **argv);
int ctl_user_import(struct ctl *c, int argc, char **argv);
int ctl_reg_main(struct ctl *c, int argc, char **argv);
int ctl_lockout_main(struct ctl *c, int argc, char **argv);
int ctl_sa_main(struct ctl *c, int argc, char **argv);
int ctl_pin_main(struct ctl *c, int argc, char **argv);
int ctl_cert_main(struct ctl *c, int argc, char **argv);
int ctl_status_main(struct ctl *c, int argc, char **argv);
int ctl_audit_main(struct ctl *c, int argc, char **argv);
int ctl_oauth_main(struct ctl *c, int argc, char **argv);
int ctl_partner_main(struct ctl *c, int argc, char **argv);
int ctl_token_main(struct ctl *c, int argc, char **argv);

#endif
