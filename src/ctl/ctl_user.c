/*
 * rtcauthctl user add|passwd|enable|disable|del|list|show (import is in
 * ctl_import.c). Each change is one short write transaction together with
 * its audit row, since rtcauthd writes the same SQLite file concurrently.
 * Passwords go straight from the input buffer to vault_set_password and the
 * buffer is wiped; keys are never read back nor printed.
 */
#include "ctl/ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/secmem.h"
#include "pki/pin.h"
#include "vault/vault.h"

static const struct ctl_cmd_help h_add = {
    "user add", "URI [--display-name NAME] [--password-stdin] [--disabled]", "Create a user.",
    "  --display-name NAME  the name shown to people\n"
    "  --password-stdin     read the password from the first line of standard input\n"
    "  --disabled           create the user disabled (cannot sign in until enabled)\n"
    "Without --password-stdin the password is asked twice on the terminal; without a\n"
    "terminal the user is created without a password (set one with user passwd).\n"};
static const struct ctl_cmd_help h_passwd = {
    "user passwd", "URI [--password-stdin]", "Set a user's password.",
    "  --password-stdin     read the password from the first line of standard input\n"
    "Without --password-stdin the password is asked twice on the terminal.\n"};
static const struct ctl_cmd_help h_enable = {"user enable", "URI",
					     "Allow a disabled user to sign in again.", NULL};
static const struct ctl_cmd_help h_disable = {
    "user disable", "URI", "Stop a user from signing in (the user and password are kept).", NULL};
static const struct ctl_cmd_help h_del = {"user del", "URI",
					  "Delete a user with their keys and registrations.", NULL};
static const struct ctl_cmd_help h_list = {"user list", "[--json]", "List all users.",
					   "  --json  a JSON array of objects\n"};
static const struct ctl_cmd_help h_show = {"user show", "URI [--json]", "Show one user.",
					   "  --json  a JSON object\n"};
static const struct ctl_cmd_help h_set = {
    "user set", "URI [--phone +NUMBER] [--extension DIGITS]",
    "Set a user's phone number and extension (for signing in on a phone with a PIN).",
    "  --phone +NUMBER     E.164: '+', country code and number, 7 to 15 digits\n"
    "                      (spaces, '-', '.', '(' and ')' are dropped); '' clears it\n"
    "  --extension DIGITS  1 to 15 digits; '' clears it\n"
    "Several users may share a phone number; give them different extensions.\n"};

static int user_not_found(const char *uri)
{
	ctl_err("user %s not found (see: rtcauthctl user list)", uri);
	return CTL_EXIT_NOTFOUND;
}

static int store_failed(struct ctl *c, const char *what, int rc)
{
	if (rc == STORE_NOTFOUND)
		return CTL_EXIT_NOTFOUND;
	ctl_err("%s failed: %s (%s)", what, store_strerror(rc), store_errmsg(c->store));
	return ctl_store_exit(rc);
}

/* The user named by a command's URI argument, from the store: 0, or the
 * exit code of the message already printed (bad URI, store down, not found). */
static int load_user(struct ctl *c, const char *arg, char uri[STORE_URI_MAX], struct store_user *u)
{
	char user[STORE_URI_MAX], domain[STORE_URI_MAX];
	int rc = ctl_uri_arg("user URI", arg, uri, user, domain);

	if (rc)
		return rc;
	rc = ctl_store(c);
	if (rc)
		return rc;
	rc = store_user_get(c->store, uri, u);
	if (rc == STORE_NOTFOUND)
		return user_not_found(uri);
	if (rc != STORE_OK)
		return store_failed(c, "reading the user", rc);
	return 0;
}

/* Get the password for add/passwd. *have = false when none is to be set. */
/* A zeroed buffer for a password (CTL_PASSWORD_MAX + 1 bytes); the caller
 * wipes and frees it. NULL (said on stderr) when out of memory. */
static char *password_buffer(void)
{
	char *pw = calloc(1, CTL_PASSWORD_MAX + 1);
	if (!pw)
		ctl_err("out of memory");
	return pw;
}

static int get_password(bool from_stdin, bool required, char *pw, size_t cap, size_t *len,
			bool *have)
{
	int rc;

	*have = false;
	*len = 0;
	if (from_stdin)
		rc = ctl_read_password_fd(STDIN_FILENO, pw, cap, len);
	else if (isatty(STDIN_FILENO))
		rc = ctl_read_password_tty(pw, cap, len);
	else if (required) {
		ctl_err(
		    "no password given: pipe it in with --password-stdin, or run on a terminal");
		return CTL_EXIT_USAGE;
	} else
		return 0;
	if (rc == 0)
		*have = true;
	return rc;
}

static int user_add(struct ctl *c, int argc, char **argv)
{
	char uri[STORE_URI_MAX], user[STORE_URI_MAX], domain[STORE_URI_MAX];
	const char *pos[1], *display = NULL;
	bool pw_stdin = false, disabled = false, have_display = false, have_pw = false;
	const struct ctl_opt opts[] = {{"--display-name", &display, &have_display},
				       {"--password-stdin", NULL, &pw_stdin},
				       {"--disabled", NULL, &disabled},
				       {NULL, NULL, NULL}};
	struct store_user u;
	char *pw = NULL, detail[512];
	size_t pwlen = 0;
	int n, rc;

	if (ctl_args(&h_add, argc, argv, opts, pos, 1, 1, &n, &rc))
		return rc;
	rc = ctl_uri_arg("user URI", pos[0], uri, user, domain);
	if (rc)
		return rc;
	if (display && strlen(display) >= STORE_NAME_MAX) {
		ctl_err("display name too long (at most %d bytes)", STORE_NAME_MAX - 1);
		return CTL_EXIT_USAGE;
	}
	rc = ctl_store(c);
	if (rc)
		return rc;
	/* Refuse before asking for a password that would be thrown away. */
	if (store_user_get(c->store, uri, &u) == STORE_OK) {
		ctl_err("user %s already exists (see: rtcauthctl user show %s; to change the "
			"password: rtcauthctl user passwd %s)",
			uri, uri, uri);
		return CTL_EXIT_CONFLICT;
	}
	pw = password_buffer();
	if (!pw)
		return CTL_EXIT_ERR;
	rc = get_password(pw_stdin, false, pw, CTL_PASSWORD_MAX + 1, &pwlen, &have_pw);
	if (rc)
		goto out;

	memset(&u, 0, sizeof(u));
	memcpy(u.uri, uri, sizeof(u.uri));
	memcpy(u.user, user, sizeof(u.user));
	memcpy(u.domain, domain, sizeof(u.domain));
	snprintf(u.display_name, sizeof(u.display_name), "%s", display ? display : "");
	u.enabled = !disabled;
	u.has_password = have_pw;
	snprintf(detail, sizeof(detail), "display_name=\"%s\" enabled=%s password=%s",
		 u.display_name, u.enabled ? "yes" : "no", have_pw ? "set" : "none");

	rc = store_begin(c->store);
	if (rc == STORE_OK)
		rc = store_user_add(c->store, &u);
	if (rc == STORE_OK && have_pw)
		rc = vault_set_password(c->store, &u, pw, pwlen);
	if (rc == STORE_OK)
		rc = ctl_audit(c, "user.add", uri, detail);
	if (rc == STORE_OK)
		rc = store_commit(c->store);
	if (rc != STORE_OK) {
		store_rollback(c->store);
		if (rc == STORE_CONFLICT) {
			ctl_err("user %s already exists (see: rtcauthctl user show %s)", uri, uri);
			rc = CTL_EXIT_CONFLICT;
		} else {
			rc = store_failed(c, "adding the user", rc);
		}
		goto out;
	}
	printf("added user %s%s%s\n", uri, disabled ? " (disabled)" : "",
	       have_pw ? "" : " without a password");
	if (!have_pw)
		ctl_note("no password was set (standard input is not a terminal and "
			 "--password-stdin was not given); set one with: rtcauthctl user passwd %s",
			 uri);
	rc = CTL_EXIT_OK;
out:
	secmem_wipe(pw, CTL_PASSWORD_MAX + 1);
	free(pw);
	return rc;
}

static int user_passwd(struct ctl *c, int argc, char **argv)
{
	char uri[STORE_URI_MAX];
	const char *pos[1];
	bool pw_stdin = false, have_pw = false;
	const struct ctl_opt opts[] = {{"--password-stdin", NULL, &pw_stdin}, {NULL, NULL, NULL}};
	struct store_user u;
	char *pw = NULL;
	size_t pwlen = 0;
	int n, rc;

	if (ctl_args(&h_passwd, argc, argv, opts, pos, 1, 1, &n, &rc))
		return rc;
	rc = load_user(c, pos[0], uri, &u);
	if (rc)
		return rc;
	pw = password_buffer();
	if (!pw)
		return CTL_EXIT_ERR;
	rc = get_password(pw_stdin, true, pw, CTL_PASSWORD_MAX + 1, &pwlen, &have_pw);
	if (rc)
		goto out;
	rc = store_begin(c->store);
	if (rc == STORE_OK)
		rc = vault_set_password(c->store, &u, pw, pwlen);
	if (rc == STORE_OK)
		rc = ctl_audit(c, "user.passwd", uri, "password changed");
	if (rc == STORE_OK)
		rc = store_commit(c->store);
	if (rc != STORE_OK) {
		store_rollback(c->store);
		rc = rc == STORE_NOTFOUND ? user_not_found(uri)
					  : store_failed(c, "setting the password", rc);
		goto out;
	}
	printf("password of %s changed\n", uri);
	rc = CTL_EXIT_OK;
out:
	secmem_wipe(pw, CTL_PASSWORD_MAX + 1);
	free(pw);
	return rc;
}

static int user_set_enabled(struct ctl *c, int argc, char **argv, bool enable)
{
	char uri[STORE_URI_MAX], user[STORE_URI_MAX], domain[STORE_URI_MAX];
	const struct ctl_cmd_help *h = enable ? &h_enable : &h_disable;
	const char *pos[1];
	int n, rc;

	if (ctl_args(h, argc, argv, NULL, pos, 1, 1, &n, &rc))
		return rc;
	rc = ctl_uri_arg("user URI", pos[0], uri, user, domain);
	if (rc)
		return rc;
	rc = ctl_store(c);
	if (rc)
		return rc;
	rc = store_begin(c->store);
	if (rc == STORE_OK)
		rc = store_user_set_enabled(c->store, uri, enable);
	if (rc == STORE_OK)
		rc = ctl_audit(c, enable ? "user.enable" : "user.disable", uri, "");
	if (rc == STORE_OK)
		rc = store_commit(c->store);
	if (rc != STORE_OK) {
		store_rollback(c->store);
		return rc == STORE_NOTFOUND ? user_not_found(uri)
					    : store_failed(c, "changing the user", rc);
	}
	printf("user %s %s\n", uri, enable ? "enabled" : "disabled");
	return CTL_EXIT_OK;
}

static int user_del(struct ctl *c, int argc, char **argv)
{
	char uri[STORE_URI_MAX], user[STORE_URI_MAX], domain[STORE_URI_MAX];
	const char *pos[1];
	int n, rc;

	if (ctl_args(&h_del, argc, argv, NULL, pos, 1, 1, &n, &rc))
		return rc;
	rc = ctl_uri_arg("user URI", pos[0], uri, user, domain);
	if (rc)
		return rc;
	rc = ctl_store(c);
	if (rc)
		return rc;
	rc = store_begin(c->store);
	if (rc == STORE_OK)
		rc = store_user_del(c->store, uri);
	if (rc == STORE_OK)
		rc = ctl_audit(c, "user.del", uri, "user, keys and registrations deleted");
	if (rc == STORE_OK)
		rc = store_commit(c->store);
	if (rc != STORE_OK) {
		store_rollback(c->store);
		return rc == STORE_NOTFOUND ? user_not_found(uri)
					    : store_failed(c, "deleting the user", rc);
	}
	printf("deleted user %s\n", uri);
	return CTL_EXIT_OK;
}

static int user_set(struct ctl *c, int argc, char **argv)
{
	char uri[STORE_URI_MAX], phone[STORE_PHONE_MAX], detail[128];
	const char *pos[1], *phone_arg = NULL, *ext = NULL, *why;
	bool have_phone = false, have_ext = false;
	const struct ctl_opt opts[] = {{"--phone", &phone_arg, &have_phone},
				       {"--extension", &ext, &have_ext},
				       {NULL, NULL, NULL}};
	struct store_user u;
	int n, rc;

	if (ctl_args(&h_set, argc, argv, opts, pos, 1, 1, &n, &rc))
		return rc;
	if (!have_phone && !have_ext)
		return ctl_usage_err("user set: nothing to set (give --phone and/or --extension; "
				     "see: rtcauthctl user set --help)");
	phone[0] = '\0';
	if (have_phone && phone_arg[0] && pin_phone_normalise(phone_arg, phone, &why) < 0)
		return ctl_usage_err("bad phone number '%s': %s", phone_arg, why);
	if (have_ext && ext[0] && pin_extension_check(ext, &why) < 0)
		return ctl_usage_err("bad extension '%s': %s", ext, why);
	rc = load_user(c, pos[0], uri, &u);
	if (rc)
		return rc;
	snprintf(detail, sizeof(detail), "%s%s%s%s%s", have_phone ? "phone=" : "",
		 have_phone ? (phone[0] ? phone : "''") : "", have_phone && have_ext ? " " : "",
		 have_ext ? "extension=" : "", have_ext ? (ext[0] ? ext : "''") : "");
	rc = store_begin(c->store);
	if (rc == STORE_OK)
		rc = store_user_set_phone(c->store, uri, have_phone ? phone : NULL,
					  have_ext ? ext : NULL);
	if (rc == STORE_OK)
		rc = ctl_audit(c, "user.set", uri, detail);
	if (rc == STORE_OK)
		rc = store_commit(c->store);
	if (rc != STORE_OK) {
		store_rollback(c->store);
		return rc == STORE_NOTFOUND ? user_not_found(uri)
					    : store_failed(c, "changing the user", rc);
	}
	printf("user %s: %s\n", uri, detail);
	return CTL_EXIT_OK;
}

/* Phone number and extension of u ('' when unreadable: list and show go on). */
static void user_phone(struct ctl *c, const struct store_user *u, char phone[STORE_PHONE_MAX],
		       char ext[STORE_EXTENSION_MAX])
{
	if (store_user_get_phone(c->store, u->uri, phone, ext) != STORE_OK)
		phone[0] = ext[0] = '\0';
}

static json_t *user_json(const struct store_user *u, const char *phone, const char *ext)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:I, s:I, s:I, s:s, s:s}", "uri", u->uri,
			 "user", u->user, "domain", u->domain, "display_name", u->display_name,
			 "enabled", u->enabled, "has_password", u->has_password, "created",
			 (json_int_t)u->created, "updated", (json_int_t)u->updated,
			 "password_changed", (json_int_t)u->password_changed, "phone", phone,
			 "extension", ext);
}

struct list_ctx {
	struct ctl *c;
	bool json;
	int pass; /* 0: measure widths, 1: print */
	int w_uri, w_name;
	size_t count;
};

static int display_width(const char *s)
{
	size_t n = strlen(s);
	return n > 60 ? 60 : (int)n;
}

static int list_cb(void *ctx, const struct store_user *u)
{
	struct list_ctx *l = ctx;
	char created[32], phone[STORE_PHONE_MAX], ext[STORE_EXTENSION_MAX];

	user_phone(l->c, u, phone, ext);
	if (l->json) {
		if (ctl_json_element(user_json(u, phone, ext), l->count, JSON_COMPACT) < 0)
			return -1;
		l->count++;
		return 0;
	}
	if (l->pass == 0) {
		if (display_width(u->uri) > l->w_uri)
			l->w_uri = display_width(u->uri);
		if (display_width(u->display_name) > l->w_name)
			l->w_name = display_width(u->display_name);
		l->count++;
		return 0;
	}
	printf("%-*s  %-*s  %-7s  %-8s  %-20s  %s%s%s\n", l->w_uri, u->uri, l->w_name,
	       u->display_name[0] ? u->display_name : "-", u->enabled ? "yes" : "no",
	       u->has_password ? "yes" : "no", ctl_time(u->created, created, sizeof(created)),
	       phone[0] ? phone
	       : ext[0] ? ""
			: "-",
	       ext[0] ? ";ext=" : "", ext);
	return 0;
}

static int user_list(struct ctl *c, int argc, char **argv)
{
	bool json = false;
	const struct ctl_opt opts[] = {{"--json", NULL, &json}, {NULL, NULL, NULL}};
	struct list_ctx l = {0};
	const char *pos[1];
	int n, rc;

	if (ctl_args(&h_list, argc, argv, opts, pos, 0, 0, &n, &rc))
		return rc;
	rc = ctl_store(c);
	if (rc)
		return rc;
	l.c = c;
	l.json = json;
	l.w_uri = 3;
	l.w_name = 12;
	if (json) {
		fputs("[", stdout);
		rc = store_user_list(c->store, list_cb, &l);
		ctl_json_array_end(l.count);
	} else {
		rc = store_user_list(c->store, list_cb, &l);
		if (rc == STORE_OK && l.count > 0) {
			l.pass = 1;
			printf("%-*s  %-*s  %-7s  %-8s  %-20s  %s\n", l.w_uri, "URI", l.w_name,
			       "DISPLAY NAME", "ENABLED", "PASSWORD", "CREATED", "PHONE");
			rc = store_user_list(c->store, list_cb, &l);
		} else if (rc == STORE_OK) {
			ctl_note("no users yet (add one with: rtcauthctl user add URI)");
		}
	}
	if (rc != STORE_OK)
		return store_failed(c, "listing users", rc < 0 ? rc : STORE_UNAVAILABLE);
	return CTL_EXIT_OK;
}

static int user_show(struct ctl *c, int argc, char **argv)
{
	char uri[STORE_URI_MAX], t1[32], t2[32], t3[32], phone[STORE_PHONE_MAX],
	    ext[STORE_EXTENSION_MAX];
	bool json = false;
	const struct ctl_opt opts[] = {{"--json", NULL, &json}, {NULL, NULL, NULL}};
	struct store_user u;
	const char *pos[1];
	int n, rc;

	if (ctl_args(&h_show, argc, argv, opts, pos, 1, 1, &n, &rc))
		return rc;
	rc = load_user(c, pos[0], uri, &u);
	if (rc)
		return rc;
	user_phone(c, &u, phone, ext);
	if (json)
		return ctl_print_json(user_json(&u, phone, ext));
	printf("uri:              %s\n"
	       "user:             %s\n"
	       "domain:           %s\n"
	       "display name:     %s\n"
	       "enabled:          %s\n"
	       "password:         %s\n"
	       "created:          %s\n"
	       "updated:          %s\n"
	       "password changed: %s\n"
	       "phone:            %s\n"
	       "extension:        %s\n",
	       u.uri, u.user, u.domain, u.display_name[0] ? u.display_name : "-",
	       u.enabled ? "yes" : "no", u.has_password ? "set" : "none",
	       ctl_time(u.created, t1, sizeof(t1)), ctl_time(u.updated, t2, sizeof(t2)),
	       ctl_time(u.password_changed, t3, sizeof(t3)), phone[0] ? phone : "-",
	       ext[0] ? ext : "-");
	return CTL_EXIT_OK;
}

static const struct {
	const char *name;
	const struct ctl_cmd_help *help;
} user_cmds[] = {
    {"add", &h_add}, {"passwd", &h_passwd}, {"enable", &h_enable}, {"disable", &h_disable},
    {"del", &h_del}, {"list", &h_list},	    {"show", &h_show},	   {"set", &h_set},
};

static void user_usage(FILE *out)
{
	size_t i;

	fprintf(out, "usage: rtcauthctl [-c PATH] user COMMAND ...\ncommands:\n");
	for (i = 0; i < sizeof(user_cmds) / sizeof(user_cmds[0]); i++)
		fprintf(out, "  user %-8s %s\n", user_cmds[i].name, user_cmds[i].help->usage);
	fprintf(out, "  user %-8s FILE.csv\n", "import");
}

int ctl_user_main(struct ctl *c, int argc, char **argv)
{
	const char *sub = argc > 0 ? argv[0] : NULL;

	if (!sub) {
		ctl_err("user: missing command (see: rtcauthctl user --help)");
		user_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
		user_usage(stdout);
		return CTL_EXIT_OK;
	}
	argc--;
	argv++;
	if (strcmp(sub, "add") == 0)
		return user_add(c, argc, argv);
	if (strcmp(sub, "passwd") == 0)
		return user_passwd(c, argc, argv);
	if (strcmp(sub, "enable") == 0)
		return user_set_enabled(c, argc, argv, true);
	if (strcmp(sub, "disable") == 0)
		return user_set_enabled(c, argc, argv, false);
	if (strcmp(sub, "del") == 0)
		return user_del(c, argc, argv);
	if (strcmp(sub, "list") == 0)
		return user_list(c, argc, argv);
	if (strcmp(sub, "show") == 0)
		return user_show(c, argc, argv);
	if (strcmp(sub, "set") == 0)
		return user_set(c, argc, argv);
	if (strcmp(sub, "import") == 0)
		return ctl_user_import(c, argc, argv);
	ctl_err("user: unknown command '%s' (see: rtcauthctl user --help)", sub);
	user_usage(stderr);
	return CTL_EXIT_USAGE;
}
