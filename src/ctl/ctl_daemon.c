/*
 * rtcauthctl commands that concern the running daemon: reg list|del (which
 * fall back to the database when rtcauthd is down), lockout list|clear and
 * status (daemon only: that state lives in its memory), and audit list
 * (database). Replies are printed as tables, or as JSON with --json.
 */
#include "ctl/ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/sa.h"
#include "core/clock.h"
#include "core/str.h"

static const struct ctl_cmd_help h_reg_list = {
    "reg list", "[--json] [AOR]", "List registered contacts (bindings), of one AOR or all.",
    "Asks the running rtcauthd; when it is not running, shows the bindings stored in\n"
    "the database instead.\n"
    "  --json  a JSON array of binding objects\n"};
static const struct ctl_cmd_help h_reg_del = {
    "reg del", "AOR [CONTACT]", "Remove an AOR's bindings, or the one with this Contact URI.",
    "Done by rtcauthd when it is running (memory and database), else in the database.\n"};
static const struct ctl_cmd_help h_lock_list = {
    "lockout list", "[--json]", "List users and sources locked out after failed sign-ins.",
    "Needs the running rtcauthd (lockouts live in its memory).\n"};
static const struct ctl_cmd_help h_lock_clear = {
    "lockout clear", "KEY", "Clear the lockout of a user URI or a source address.",
    "Needs the running rtcauthd (lockouts live in its memory).\n"};
static const struct ctl_cmd_help h_sa_list = {
    "sa list", "[--json]", "List the security associations of signed-in NTLM and Kerberos clients.",
    "Needs the running rtcauthd (security associations live in its memory).\n"};
static const struct ctl_cmd_help h_sa_drop = {
    "sa drop", "(OPAQUE | --user URI)",
    "Drop one security association, or every one of a user: the client signs in again.",
    "Needs the running rtcauthd.\n"};
static const struct ctl_cmd_help h_status = {
    "status", "[--json]", "Show rtcauthd's uptime, workers, registrations and counters.",
    "Needs the running rtcauthd.\n"};
static const struct ctl_cmd_help h_audit_list = {"audit list", "[--limit N] [--json]",
						 "Show the audit log, most recent first.",
						 "  --limit N  at most N records (default 50)\n"
						 "  --json     a JSON array of objects\n"};

static int want_group_help(const char *group, int argc, char **argv,
			   const struct ctl_cmd_help *const *cmds, size_t n)
{
	size_t i;

	if (argc > 0 && strcmp(argv[0], "-h") != 0 && strcmp(argv[0], "--help") != 0)
		return -1;
	if (argc == 0)
		ctl_err("%s: missing command (see: rtcauthctl %s --help)", group, group);
	for (i = 0; i < n; i++)
		fprintf(argc ? stdout : stderr, "  %-14s %s\n", cmds[i]->name, cmds[i]->usage);
	return argc ? CTL_EXIT_OK : CTL_EXIT_USAGE;
}

static int unknown_sub(const char *group, const char *sub)
{
	ctl_err("%s: unknown command '%s' (see: rtcauthctl %s --help)", group, sub, group);
	return CTL_EXIT_USAGE;
}

/* ---- reg ---- */

/* The URI inside a Contact value: "<sip:a@b>;expires=1" -> "sip:a@b". */
static struct str contact_uri(const char *contact)
{
	struct str s = str_trim(str_cstr(contact));
	long lt = str_chr(s, '<'), semi;

	if (lt >= 0) {
		struct str rest = str_make(s.p + lt + 1, s.len - (size_t)lt - 1);
		long gt = str_chr(rest, '>');

		return gt >= 0 ? str_make(rest.p, (size_t)gt) : rest;
	}
	semi = str_chr(s, ';');
	return semi >= 0 ? str_make(s.p, (size_t)semi) : s;
}

struct reg_collect {
	json_t *arr;
	int64_t now;
};

static int reg_collect_cb(void *ctx, const struct store_reg *r)
{
	struct reg_collect *rc = ctx;
	struct str uri = contact_uri(r->contact);
	char contact[STORE_CONTACT_MAX];
	json_t *o;

	if (r->expires <= rc->now)
		return 0; /* expired, waiting for the purge */
	if (str_copy(uri, contact, sizeof(contact)) < 0)
		contact[0] = '\0';
	o = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:i, s:s, s:s, s:I}", "aor", r->aor,
		      "contact", contact, "expires", (json_int_t)(r->expires - rc->now), "source",
		      r->source, "transport", ctl_transport_name(r->transport), "instance",
		      r->instance, "reg_id", (int)r->reg_id, "user_agent", r->user_agent, "call_id",
		      r->call_id, "cseq", (json_int_t)r->cseq);
	if (!o || json_array_append_new(rc->arr, o) < 0)
		return -1;
	return 0;
}

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static int width_of(json_t *arr, const char *key, int min, int max)
{
	size_t i;
	json_t *o;
	int w = min;

	json_array_foreach(arr, i, o)
	{
		int l = (int)strlen(jstr(o, key));
		if (l > w)
			w = l;
	}
	return w > max ? max : w;
}

static void print_bindings(json_t *arr)
{
	int wa = width_of(arr, "aor", 3, 48), wc = width_of(arr, "contact", 7, 60);
	int ws = width_of(arr, "source", 6, 48);
	size_t i;
	json_t *o;

	if (json_array_size(arr) == 0) {
		printf("no bindings\n");
		return;
	}
	printf("%-*s  %-*s  %7s  %-*s  %-9s  %s\n", wa, "AOR", wc, "CONTACT", "EXPIRES", ws,
	       "SOURCE", "TRANSPORT", "USER AGENT");
	json_array_foreach(arr, i, o)
	{
		printf("%-*s  %-*s  %7lld  %-*s  %-9s  %s\n", wa, jstr(o, "aor"), wc,
		       jstr(o, "contact"),
		       (long long)json_integer_value(json_object_get(o, "expires")), ws,
		       jstr(o, "source"), jstr(o, "transport"), jstr(o, "user_agent"));
	}
}

static int reg_list(struct ctl *c, int argc, char **argv)
{
	char aor[STORE_URI_MAX], user[STORE_URI_MAX], domain[STORE_URI_MAX], reason[256];
	bool json = false;
	const struct ctl_opt opts[] = {{"--json", NULL, &json}, {NULL, NULL, NULL}};
	struct reg_collect col = {0};
	json_t *req, *reply = NULL, *arr;
	const char *pos[1];
	int n, rc;

	if (ctl_args(&h_reg_list, argc, argv, opts, pos, 0, 1, &n, &rc))
		return rc;
	if (n == 1 && (rc = ctl_uri_arg("AOR", pos[0], aor, user, domain)) != 0)
		return rc;
	rc = ctl_config(c);
	if (rc)
		return rc;
	req = n ? json_pack("{s:s, s:s}", "cmd", "reg.list", "aor", aor)
		: json_pack("{s:s}", "cmd", "reg.list");
	rc = ctl_admin_call(c->cfg.admin_socket, req, &reply, reason, sizeof(reason));
	json_decref(req);
	if (rc == 0) {
		rc = ctl_admin_check(reply);
		arr = json_object_get(reply, "bindings");
		if (rc == 0 && !json_is_array(arr)) {
			ctl_err("rtcauthd sent a reply without bindings");
			rc = CTL_EXIT_ERR;
		}
		if (rc == 0 && json)
			rc = ctl_print_json(json_incref(arr));
		else if (rc == 0)
			print_bindings(arr);
		json_decref(reply);
		return rc;
	}
	if (rc != CTL_EXIT_DAEMON) {
		ctl_err("asking rtcauthd at %s failed: %s", c->cfg.admin_socket, reason);
		return rc;
	}
	ctl_note("rtcauthd is not running; showing stored bindings");
	rc = ctl_store(c);
	if (rc)
		return rc;
	col.arr = json_array();
	col.now = clock_wall_s();
	rc = store_reg_list(c->store, n ? aor : NULL, reg_collect_cb, &col);
	if (rc != STORE_OK) {
		ctl_err("listing bindings failed: %s (%s)", store_strerror(rc < 0 ? rc : -3),
			store_errmsg(c->store));
		json_decref(col.arr);
		return CTL_EXIT_ERR;
	}
	if (json)
		return ctl_print_json(col.arr);
	print_bindings(col.arr);
	json_decref(col.arr);
	return CTL_EXIT_OK;
}

struct reg_match {
	struct str want;
	char (*keys)[STORE_CONTACT_MAX];
	size_t n, cap;
};

static int reg_match_cb(void *ctx, const struct store_reg *r)
{
	struct reg_match *m = ctx;

	if (!str_eq(contact_uri(r->contact), m->want) && !str_eq_cstr(m->want, r->binding_key))
		return 0;
	if (m->n == m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 8;
		void *k = realloc(m->keys, ncap * sizeof(*m->keys));

		if (!k)
			return -1;
		m->keys = k;
		m->cap = ncap;
	}
	memcpy(m->keys[m->n++], r->binding_key, STORE_CONTACT_MAX);
	return 0;
}

/* reg del in the database (rtcauthd down). Sets *removed. Store error code. */
static int reg_del_db(struct ctl *c, const char *aor, const char *contact, int *removed)
{
	struct reg_match m = {0};
	char detail[STORE_CONTACT_MAX + 96];
	size_t i;
	int rc;

	*removed = 0;
	rc = store_begin(c->store);
	if (rc == STORE_OK && !contact) {
		rc = store_reg_del_aor(c->store, aor, removed);
	} else if (rc == STORE_OK) {
		m.want = contact_uri(contact);
		rc = store_reg_list(c->store, aor, reg_match_cb, &m);
		if (rc > 0)
			rc = STORE_UNAVAILABLE; /* out of memory in the callback */
		for (i = 0; rc == STORE_OK && i < m.n; i++) {
			rc = store_reg_del(c->store, aor, m.keys[i]);
			if (rc == STORE_OK)
				(*removed)++;
		}
		free(m.keys);
	}
	if (rc == STORE_OK && *removed > 0) {
		snprintf(detail, sizeof(detail),
			 "%s%s%sremoved=%d in the database (rtcauthd not running)",
			 contact ? "contact=" : "", contact ? contact : "", contact ? " " : "",
			 *removed);
		rc = ctl_audit(c, "reg.del", aor, detail);
	}
	if (rc == STORE_OK)
		rc = store_commit(c->store);
	if (rc != STORE_OK)
		store_rollback(c->store);
	return rc;
}

static int reg_del(struct ctl *c, int argc, char **argv)
{
	char aor[STORE_URI_MAX], user[STORE_URI_MAX], domain[STORE_URI_MAX], reason[256];
	const char *pos[2], *contact;
	json_t *req, *reply = NULL;
	int n, rc, removed = 0;

	if (ctl_args(&h_reg_del, argc, argv, NULL, pos, 1, 2, &n, &rc))
		return rc;
	rc = ctl_uri_arg("AOR", pos[0], aor, user, domain);
	if (rc)
		return rc;
	contact = n == 2 ? pos[1] : NULL;
	if (contact && (contact[0] == '\0' || strlen(contact) >= STORE_CONTACT_MAX)) {
		ctl_err("invalid CONTACT: give the Contact URI as shown by rtcauthctl reg list");
		return CTL_EXIT_USAGE;
	}
	rc = ctl_config(c);
	if (rc)
		return rc;
	req = contact
		  ? json_pack("{s:s, s:s, s:s}", "cmd", "reg.del", "aor", aor, "contact", contact)
		  : json_pack("{s:s, s:s}", "cmd", "reg.del", "aor", aor);
	rc = ctl_admin_call(c->cfg.admin_socket, req, &reply, reason, sizeof(reason));
	json_decref(req);
	if (rc == 0) {
		rc = ctl_admin_check(reply);
		removed = (int)json_integer_value(json_object_get(reply, "removed"));
		json_decref(reply);
		if (rc)
			return rc;
	} else if (rc == CTL_EXIT_DAEMON) {
		ctl_note("rtcauthd is not running; removing the stored bindings");
		rc = ctl_store(c);
		if (rc)
			return rc;
		rc = reg_del_db(c, aor, contact, &removed);
		if (rc != STORE_OK) {
			ctl_err("removing bindings failed: %s (%s)", store_strerror(rc),
				store_errmsg(c->store));
			return ctl_store_exit(rc);
		}
	} else {
		ctl_err("asking rtcauthd at %s failed: %s", c->cfg.admin_socket, reason);
		return rc;
	}
	if (removed == 0) {
		ctl_err("no binding of %s%s%s found (see: rtcauthctl reg list %s)", aor,
			contact ? " with contact " : "", contact ? contact : "", aor);
		return CTL_EXIT_NOTFOUND;
	}
	printf("removed %d binding%s of %s\n", removed, removed == 1 ? "" : "s", aor);
	return CTL_EXIT_OK;
}

int ctl_reg_main(struct ctl *c, int argc, char **argv)
{
	static const struct ctl_cmd_help *const cmds[] = {&h_reg_list, &h_reg_del};
	int rc = want_group_help("reg", argc, argv, cmds, 2);

	if (rc >= 0)
		return rc;
	if (strcmp(argv[0], "list") == 0)
		return reg_list(c, argc - 1, argv + 1);
	if (strcmp(argv[0], "del") == 0)
		return reg_del(c, argc - 1, argv + 1);
	return unknown_sub("reg", argv[0]);
}

/* ---- daemon-only commands ---- */

/* Send req (consumed); on success *reply is an ok:true object. Exit code. */
static int daemon_only(struct ctl *c, json_t *req, json_t **reply)
{
	char reason[256];
	int rc = ctl_config(c);

	*reply = NULL;
	if (rc) {
		json_decref(req);
		return rc;
	}
	rc = ctl_admin_call(c->cfg.admin_socket, req, reply, reason, sizeof(reason));
	json_decref(req);
	if (rc == CTL_EXIT_DAEMON)
		return ctl_admin_unreachable(c, reason);
	if (rc) {
		ctl_err("asking rtcauthd at %s failed: %s", c->cfg.admin_socket, reason);
		return rc;
	}
	rc = ctl_admin_check(*reply);
	if (rc) {
		json_decref(*reply);
		*reply = NULL;
	}
	return rc;
}

/*
 * A list command answered by the daemon: send cmd, take the reply's
 * "entries" array. With --json print it and return the exit code in *rc
 * (returns true: done); else *reply and *arr are set for the caller's table
 * (returns false; json_decref(*reply) after). On failure returns true.
 */
static bool daemon_entries(struct ctl *c, const char *cmd, bool json, json_t **reply, json_t **arr,
			   int *rc)
{
	*rc = daemon_only(c, json_pack("{s:s}", "cmd", cmd), reply);
	if (*rc)
		return true;
	*arr = json_object_get(*reply, "entries");
	if (!json_is_array(*arr)) {
		ctl_err("rtcauthd sent a reply without entries");
		json_decref(*reply);
		*rc = CTL_EXIT_ERR;
		return true;
	}
	if (json) {
		*rc = ctl_print_json(json_incref(*arr));
		json_decref(*reply);
		return true;
	}
	return false;
}

static int lockout_list(struct ctl *c, int argc, char **argv)
{
	bool json = false;
	const struct ctl_opt opts[] = {{"--json", NULL, &json}, {NULL, NULL, NULL}};
	const char *pos[1];
	json_t *reply, *arr, *o;
	size_t i;
	int n, rc, wk;

	if (ctl_args(&h_lock_list, argc, argv, opts, pos, 0, 0, &n, &rc))
		return rc;
	if (daemon_entries(c, "lockout.list", json, &reply, &arr, &rc))
		return rc;
	if (json_array_size(arr) == 0)
		printf("no lockouts\n");
	wk = width_of(arr, "key", 3, 60);
	json_array_foreach(arr, i, o)
	{
		if (i == 0)
			printf("%-6s  %-*s  %8s  %s\n", "KIND", wk, "KEY", "FAILURES",
			       "LOCKED FOR");
		printf("%-6s  %-*s  %8lld  %llds\n", jstr(o, "kind"), wk, jstr(o, "key"),
		       (long long)json_integer_value(json_object_get(o, "failures")),
		       (long long)json_integer_value(json_object_get(o, "locked_for")));
	}
	json_decref(reply);
	return CTL_EXIT_OK;
}

static int lockout_clear(struct ctl *c, int argc, char **argv)
{
	const char *pos[1];
	json_t *reply;
	json_int_t removed;
	int n, rc;

	if (ctl_args(&h_lock_clear, argc, argv, NULL, pos, 1, 1, &n, &rc))
		return rc;
	if (pos[0][0] == '\0' || strlen(pos[0]) >= STORE_URI_MAX) {
		ctl_err("invalid KEY: give a user URI or a source address as shown by "
			"rtcauthctl lockout list");
		return CTL_EXIT_USAGE;
	}
	rc = daemon_only(c, json_pack("{s:s, s:s}", "cmd", "lockout.clear", "key", pos[0]), &reply);
	if (rc)
		return rc;
	removed = json_integer_value(json_object_get(reply, "removed"));
	json_decref(reply);
	if (removed == 0) {
		ctl_err("no lockout for %s (see: rtcauthctl lockout list)", pos[0]);
		return CTL_EXIT_NOTFOUND;
	}
	printf("cleared the lockout of %s\n", pos[0]);
	return CTL_EXIT_OK;
}

int ctl_lockout_main(struct ctl *c, int argc, char **argv)
{
	static const struct ctl_cmd_help *const cmds[] = {&h_lock_list, &h_lock_clear};
	int rc = want_group_help("lockout", argc, argv, cmds, 2);

	if (rc >= 0)
		return rc;
	if (strcmp(argv[0], "list") == 0)
		return lockout_list(c, argc - 1, argv + 1);
	if (strcmp(argv[0], "clear") == 0)
		return lockout_clear(c, argc - 1, argv + 1);
	return unknown_sub("lockout", argv[0]);
}

static int sa_list_cmd(struct ctl *c, int argc, char **argv)
{
	bool json = false;
	const struct ctl_opt opts[] = {{"--json", NULL, &json}, {NULL, NULL, NULL}};
	const char *pos[1];
	json_t *reply, *arr, *o;
	size_t i;
	int n, rc, wu;

	if (ctl_args(&h_sa_list, argc, argv, opts, pos, 0, 0, &n, &rc))
		return rc;
	if (daemon_entries(c, "sa.list", json, &reply, &arr, &rc))
		return rc;
	if (json_array_size(arr) == 0)
		printf("no security associations\n");
	wu = width_of(arr, "user", 4, 60);
	json_array_foreach(arr, i, o)
	{
		if (i == 0)
			printf("%-8s  %-8s  %-11s  %-*s  %s\n", "OPAQUE", "SCHEME", "STATE", wu,
			       "USER", "EXPIRES IN");
		printf("%-8s  %-8s  %-11s  %-*s  %llds\n", jstr(o, "opaque"), jstr(o, "scheme"),
		       jstr(o, "state"), wu, jstr(o, "user"),
		       (long long)json_integer_value(json_object_get(o, "expires")) -
			   (long long)time(NULL));
	}
	json_decref(reply);
	return CTL_EXIT_OK;
}

static int sa_drop_cmd(struct ctl *c, int argc, char **argv)
{
	const char *user = NULL;
	const struct ctl_opt opts[] = {{"--user", &user, NULL}, {NULL, NULL, NULL}};
	const char *pos[1] = {NULL};
	json_t *reply, *req;
	json_int_t removed;
	int n, rc;

	if (ctl_args(&h_sa_drop, argc, argv, opts, pos, 0, 1, &n, &rc))
		return rc;
	if ((n == 1) == (user != NULL)) {
		ctl_err("give either an OPAQUE (see: rtcauthctl sa list) or --user URI");
		return CTL_EXIT_USAGE;
	}
	if (n == 1 && (strlen(pos[0]) != SA_OPAQUE_LEN ||
		       strspn(pos[0], "0123456789abcdefABCDEF") != SA_OPAQUE_LEN)) {
		ctl_err("invalid OPAQUE '%s': 8 hex digits, as shown by rtcauthctl sa list",
			pos[0]);
		return CTL_EXIT_USAGE;
	}
	req = n == 1 ? json_pack("{s:s, s:s}", "cmd", "sa.drop", "opaque", pos[0])
		     : json_pack("{s:s, s:s}", "cmd", "sa.drop", "user", user);
	rc = daemon_only(c, req, &reply);
	if (rc)
		return rc;
	removed = json_integer_value(json_object_get(reply, "removed"));
	json_decref(reply);
	if (removed == 0) {
		ctl_err("no security association for %s (see: rtcauthctl sa list)",
			n == 1 ? pos[0] : user);
		return CTL_EXIT_NOTFOUND;
	}
	printf("dropped %lld security association%s\n", (long long)removed,
	       removed == 1 ? "" : "s");
	return CTL_EXIT_OK;
}

int ctl_sa_main(struct ctl *c, int argc, char **argv)
{
	static const struct ctl_cmd_help *const cmds[] = {&h_sa_list, &h_sa_drop};
	int rc = want_group_help("sa", argc, argv, cmds, 2);

	if (rc >= 0)
		return rc;
	if (strcmp(argv[0], "list") == 0)
		return sa_list_cmd(c, argc - 1, argv + 1);
	if (strcmp(argv[0], "drop") == 0)
		return sa_drop_cmd(c, argc - 1, argv + 1);
	return unknown_sub("sa", argv[0]);
}

static void print_duration(long long s)
{
	if (s >= 86400)
		printf("%lldd %02lldh %02lldm %02llds\n", s / 86400, s % 86400 / 3600,
		       s % 3600 / 60, s % 60);
	else if (s >= 3600)
		printf("%lldh %02lldm %02llds\n", s / 3600, s % 3600 / 60, s % 60);
	else
		printf("%lldm %02llds\n", s / 60, s % 60);
}

int ctl_status_main(struct ctl *c, int argc, char **argv)
{
	bool json = false;
	const struct ctl_opt opts[] = {{"--json", NULL, &json}, {NULL, NULL, NULL}};
	const char *pos[1], *key;
	json_t *reply, *counters, *v;
	int n, rc;

	if (ctl_args(&h_status, argc, argv, opts, pos, 0, 0, &n, &rc))
		return rc;
	rc = daemon_only(c, json_pack("{s:s}", "cmd", "status"), &reply);
	if (rc)
		return rc;
	if (json) {
		json_object_del(reply, "ok");
		return ctl_print_json(reply);
	}
	printf("rtcauthd %s at %s\n", jstr(reply, "version"), c->cfg.admin_socket);
	printf("uptime:        ");
	print_duration((long long)json_integer_value(json_object_get(reply, "uptime")));
	printf("workers:       %lld\n",
	       (long long)json_integer_value(json_object_get(reply, "workers")));
	printf("registrations: %lld\n",
	       (long long)json_integer_value(json_object_get(reply, "registrations")));
	counters = json_object_get(reply, "counters");
	if (json_is_object(counters) && json_object_size(counters) > 0) {
		printf("counters:\n");
		json_object_foreach(counters, key, v)
		{
			if (json_is_integer(v))
				printf("  %-32s %lld\n", key, (long long)json_integer_value(v));
			else if (json_is_number(v))
				printf("  %-32s %g\n", key, json_number_value(v));
		}
	}
	json_decref(reply);
	return CTL_EXIT_OK;
}

/* ---- audit ---- */

struct audit_ctx {
	bool json;
	size_t count;
};

static int audit_cb(void *ctx, const struct store_audit *a)
{
	struct audit_ctx *ac = ctx;
	char ts[32];

	ctl_time(a->ts, ts, sizeof(ts));
	if (ac->json) {
		json_t *o = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:s}", "id",
				      (json_int_t)a->id, "ts", (json_int_t)a->ts, "time", ts,
				      "actor", a->actor, "action", a->action, "target", a->target,
				      "source", a->source, "detail", a->detail);

		if (ctl_json_element(o, ac->count, JSON_COMPACT) < 0)
			return -1;
	} else {
		if (ac->count == 0)
			printf("%-20s  %-24s  %-14s  %-32s  %-10s  %s\n", "TIME", "ACTOR", "ACTION",
			       "TARGET", "SOURCE", "DETAIL");
		printf("%-20s  %-24s  %-14s  %-32s  %-10s  %s\n", ts, a->actor, a->action,
		       a->target, a->source, a->detail);
	}
	ac->count++;
	return 0;
}

static int audit_list(struct ctl *c, int argc, char **argv)
{
	bool json = false, have_limit = false;
	const char *limit_s = NULL, *pos[1];
	const struct ctl_opt opts[] = {
	    {"--json", NULL, &json}, {"--limit", &limit_s, &have_limit}, {NULL, NULL, NULL}};
	struct audit_ctx ac = {0};
	uint64_t limit = 50;
	int n, rc;

	if (ctl_args(&h_audit_list, argc, argv, opts, pos, 0, 0, &n, &rc))
		return rc;
	if (have_limit && (str_to_u64(str_cstr(limit_s), 1000000, &limit) < 0 || limit == 0)) {
		ctl_err("audit list: --limit wants a number from 1 to 1000000, not '%s'", limit_s);
		return CTL_EXIT_USAGE;
	}
	rc = ctl_store(c);
	if (rc)
		return rc;
	ac.json = json;
	if (json)
		fputs("[", stdout);
	rc = store_audit_list(c->store, (int)limit, audit_cb, &ac);
	if (json)
		ctl_json_array_end(ac.count);
	else if (rc == STORE_OK && ac.count == 0)
		printf("no audit records\n");
	if (rc != STORE_OK) {
		ctl_err("reading the audit log failed: %s (%s)", store_strerror(rc < 0 ? rc : -3),
			store_errmsg(c->store));
		return CTL_EXIT_ERR;
	}
	return CTL_EXIT_OK;
}

int ctl_audit_main(struct ctl *c, int argc, char **argv)
{
	static const struct ctl_cmd_help *const cmds[] = {&h_audit_list};
	int rc = want_group_help("audit", argc, argv, cmds, 1);

	if (rc >= 0)
		return rc;
	if (strcmp(argv[0], "list") == 0)
		return audit_list(c, argc - 1, argv + 1);
	return unknown_sub("audit", argv[0]);
}
