/*
 * rtcauthctl oauth key new|list|publish|activate|retire: the token issuer's
 * signing keys and their rollover (vault/keys.h, store.h). A new key is
 * "next": published in the JWKS and metadata so partners learn it before it
 * signs; "activate" makes it the one current signing key and the old one
 * "previous" (still published and accepted); "retire" withdraws a previous
 * (or unused next) key for good and deletes its private key file.
 * Every change writes an audit row in the same transaction. Private keys
 * are made and deleted by vault/keys.c only; nothing here reads one.
 */
#include "ctl/ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vault/keys.h"

static const struct ctl_cmd_help h_new = {
    "oauth key new", "[--alg RS256|PS256|ES256|EdDSA]", "Create a token-signing key.",
    "  --alg ALG  the algorithm the key is pinned to (default RS256, which Microsoft\n"
    "             servers expect; ES256 and EdDSA are smaller and faster)\n"
    "The key is 'next': published in the JWKS and metadata, not signing yet; activate\n"
    "it once partners have fetched it. The first key of a deployment is made current\n"
    "at once. Refused while another key is next (activate or retire that one first).\n"};
static const struct ctl_cmd_help h_list = {
    "oauth key list", "[--json]", "List the signing keys, current first.",
    "  --json  a JSON array of objects\n"
    "Published (JWKS, metadata): current, next and previous keys; retired are not.\n"};
static const struct ctl_cmd_help h_publish = {
    "oauth key publish", "KID", "Confirm that a key is published.",
    "Keys are published from the moment they are made (state next) until they are\n"
    "retired, so this changes nothing: it says whether KID is published and what comes\n"
    "next. A retired key cannot be published again.\n"};
static const struct ctl_cmd_help h_activate = {
    "oauth key activate", "KID", "Make a key the current signing key.",
    "The current key becomes previous: still published and accepted until retired.\n"
    "A previous key may be activated again (to undo a rollover).\n"};
static const struct ctl_cmd_help h_retire = {
    "oauth key retire", "KID", "Withdraw a previous or unused next key for good.",
    "A retired key is neither published nor accepted; tokens it signed stop being\n"
    "valid. Its private key file is deleted. The current key cannot be retired:\n"
    "activate another key first.\n"};

/* The CN of a new key's certificate: "rtcauth token issuer <domain>". */
static void issuer_cn(struct ctl *c, char *cn, size_t cap)
{
	/* the realm, as rtcauthd names the first key (oauth.c) */
	int n = snprintf(cn, cap, "rtcauth token issuer %s", c->cfg.oauth_realm);

	if (n < 0 || (size_t)n > KEYS_CN_MAX)
		snprintf(cn, cap, "%.*s", KEYS_CN_MAX, c->cfg.oauth_realm);
}

static int key_failed(struct ctl *c, const char *what, int rc)
{
	ctl_err("%s failed: %s (%s)", what, store_strerror(rc), store_errmsg(c->store));
	return ctl_store_exit(rc);
}

static int key_not_found(const char *kid)
{
	ctl_err("no signing key %s (see: rtcauthctl oauth key list)", kid);
	return CTL_EXIT_NOTFOUND;
}

/* The key named by a command's argument: 0, or an exit code (said). */
static int load_key(struct ctl *c, const char *kid, struct store_oauth_key *k)
{
	int rc = ctl_store(c);

	if (rc)
		return rc;
	rc = store_oauth_key_get(c->store, kid, k);
	if (rc == STORE_NOTFOUND || rc == STORE_INVALID)
		return key_not_found(kid);
	if (rc != STORE_OK)
		return key_failed(c, "reading the key", rc);
	return 0;
}

struct find_next {
	char kid[STORE_OAUTH_KID_MAX];
};

static int find_next_cb(void *ctx, const struct store_oauth_key *k)
{
	struct find_next *f = ctx;

	if (k->state != STORE_OAUTH_KEY_NEXT)
		return 0;
	snprintf(f->kid, sizeof(f->kid), "%s", k->kid);
	return 1;
}

static int key_new(struct ctl *c, int argc, char **argv)
{
	const char *pos[1], *alg = KEYS_DEFAULT_ALG;
	bool have_alg = false, created = false;
	const struct ctl_opt opts[] = {{"--alg", &alg, &have_alg}, {NULL, NULL, NULL}};
	struct store_oauth_key *k;
	struct find_next nx = {{0}};
	char cn[KEYS_CN_MAX + 1], err[512], detail[160];
	int n, rc;

	if (ctl_args(&h_new, argc, argv, opts, pos, 0, 0, &n, &rc))
		return rc;
	if (!keys_alg_valid(alg)) {
		ctl_err("unknown algorithm '%s' for --alg (use RS256, PS256, ES256 or EdDSA)", alg);
		return CTL_EXIT_USAGE;
	}
	rc = ctl_store(c);
	if (rc)
		return rc;
	k = calloc(1, sizeof(*k));
	if (!k) {
		ctl_err("out of memory");
		return CTL_EXIT_ERR;
	}
	issuer_cn(c, cn, sizeof(cn));
	rc = store_oauth_key_current(c->store, k);
	if (rc == STORE_NOTFOUND) {
		/* the deployment's first key: nothing to roll over from */
		if (keys_ensure_current(c->store, c->cfg.state_dir, alg, cn, c->actor, k, &created,
					err, sizeof(err)) < 0) {
			ctl_err("%s", err);
			rc = CTL_EXIT_ERR;
			goto out;
		}
		printf("created signing key %s (%s), current: it signs tokens from now on\n",
		       k->kid, k->alg);
		ctl_admin_oauth_reload(c);
		rc = CTL_EXIT_OK;
		goto out;
	}
	if (rc != STORE_OK) {
		rc = key_failed(c, "reading the current key", rc);
		goto out;
	}
	rc = store_oauth_key_list(c->store, STORE_OAUTH_KEYS_PUBLISHED, find_next_cb, &nx);
	if (rc < 0) {
		rc = key_failed(c, "listing the keys", rc);
		goto out;
	}
	if (nx.kid[0]) {
		ctl_err("key %s is already next; activate it (rtcauthctl oauth key activate %s) "
			"or retire it (rtcauthctl oauth key retire %s) before making another",
			nx.kid, nx.kid, nx.kid);
		rc = CTL_EXIT_CONFLICT;
		goto out;
	}
	if (keys_generate(c->cfg.state_dir, alg, cn, k, err, sizeof(err)) < 0) {
		ctl_err("%s", err);
		rc = CTL_EXIT_ERR;
		goto out;
	}
	snprintf(detail, sizeof(detail), "alg=%s state=next x5t=%s", k->alg, k->x5t);
	rc = store_begin(c->store);
	if (rc == STORE_OK)
		rc = store_oauth_key_add(c->store, k);
	if (rc == STORE_OK)
		rc = ctl_audit(c, "oauth.key.new", k->kid, detail);
	if (rc == STORE_OK)
		rc = store_commit(c->store);
	if (rc != STORE_OK) {
		store_rollback(c->store);
		keys_discard(c->cfg.state_dir, k->kid);
		rc = key_failed(c, "storing the new key", rc);
		goto out;
	}
	printf("created signing key %s (%s), next: published now; once partners have it, make "
	       "it sign with: rtcauthctl oauth key activate %s\n",
	       k->kid, k->alg, k->kid);
	ctl_admin_oauth_reload(c);
	rc = CTL_EXIT_OK;
out:
	free(k);
	return rc;
}

static json_t *key_json(const struct store_oauth_key *k)
{
	return json_pack("{s:s, s:s, s:s, s:b, s:s, s:s, s:I, s:I, s:I}", "kid", k->kid, "alg",
			 k->alg, "state", store_oauth_key_state_name(k->state), "published",
			 k->state != STORE_OAUTH_KEY_RETIRED, "x5t", k->x5t, "x5t#S256",
			 k->x5t_s256, "created", (json_int_t)k->created, "activated",
			 (json_int_t)k->activated, "retired", (json_int_t)k->retired);
}

struct list_ctx {
	bool json;
	size_t count;
};

static int list_cb(void *ctx, const struct store_oauth_key *k)
{
	struct list_ctx *l = ctx;
	char t1[32], t2[32];

	if (l->json) {
		if (ctl_json_element(key_json(k), l->count, JSON_COMPACT) < 0)
			return -1;
	} else {
		if (l->count == 0)
			printf("%-16s  %-5s  %-8s  %-20s  %-20s  %s\n", "KID", "ALG", "STATE",
			       "CREATED", "ACTIVATED", "X5T");
		printf("%-16s  %-5s  %-8s  %-20s  %-20s  %s\n", k->kid, k->alg,
		       store_oauth_key_state_name(k->state), ctl_time(k->created, t1, sizeof(t1)),
		       ctl_time(k->activated, t2, sizeof(t2)), k->x5t);
	}
	l->count++;
	return 0;
}

static int key_list(struct ctl *c, int argc, char **argv)
{
	bool json = false;
	const struct ctl_opt opts[] = {{"--json", NULL, &json}, {NULL, NULL, NULL}};
	struct list_ctx l = {false, 0};
	const char *pos[1];
	int n, rc;

	if (ctl_args(&h_list, argc, argv, opts, pos, 0, 0, &n, &rc))
		return rc;
	l.json = json;
	rc = ctl_store(c);
	if (rc)
		return rc;
	if (json)
		fputs("[", stdout);
	rc = store_oauth_key_list(c->store, STORE_OAUTH_KEYS_ALL, list_cb, &l);
	if (json)
		ctl_json_array_end(l.count);
	if (rc != STORE_OK)
		return key_failed(c, "listing the keys", rc < 0 ? rc : STORE_UNAVAILABLE);
	if (!json && l.count == 0)
		ctl_note("no signing keys yet (make one with: rtcauthctl oauth key new)");
	return CTL_EXIT_OK;
}

static int key_publish(struct ctl *c, int argc, char **argv)
{
	struct store_oauth_key *k = calloc(1, sizeof(*k));
	const char *pos[1];
	int n, rc;

	if (!k) {
		ctl_err("out of memory");
		return CTL_EXIT_ERR;
	}
	if (ctl_args(&h_publish, argc, argv, NULL, pos, 1, 1, &n, &rc))
		goto out;
	rc = load_key(c, pos[0], k);
	if (rc)
		goto out;
	switch (k->state) {
	case STORE_OAUTH_KEY_NEXT:
		printf("key %s is next: published in the JWKS and metadata, not signing yet; make "
		       "it sign with: rtcauthctl oauth key activate %s\n",
		       k->kid, k->kid);
		break;
	case STORE_OAUTH_KEY_CURRENT:
		printf("key %s is current: published, and it signs new tokens\n", k->kid);
		break;
	case STORE_OAUTH_KEY_PREVIOUS:
		printf("key %s is previous: published and accepted until retired\n", k->kid);
		break;
	default:
		ctl_err("key %s is retired and cannot be published again; make a new key with: "
			"rtcauthctl oauth key new",
			k->kid);
		rc = CTL_EXIT_CONFLICT;
		goto out;
	}
	rc = CTL_EXIT_OK;
out:
	free(k);
	return rc;
}

/* activate / retire: one transaction with its audit row. */
static int key_change(struct ctl *c, const struct ctl_cmd_help *h, int to, int argc, char **argv)
{
	struct store_oauth_key *k = calloc(1, sizeof(*k));
	struct store_oauth_key *old = calloc(1, sizeof(*old));
	const char *pos[1], *action;
	char detail[160];
	int n, rc;

	if (!k || !old) {
		ctl_err("out of memory");
		rc = CTL_EXIT_ERR;
		goto out;
	}
	if (ctl_args(h, argc, argv, NULL, pos, 1, 1, &n, &rc))
		goto out;
	rc = load_key(c, pos[0], k);
	if (rc)
		goto out;
	if (k->state == to) {
		printf("key %s is already %s; nothing changed\n", k->kid,
		       store_oauth_key_state_name(to));
		rc = CTL_EXIT_OK;
		goto out;
	}
	if (to == STORE_OAUTH_KEY_CURRENT && k->state != STORE_OAUTH_KEY_RETIRED) {
		/* a key that cannot sign must not become the signing key: the
		 * daemon would refuse the reload and keep the old one (a retired
		 * key is refused below by the store, with its own message) */
		struct keys *ks = NULL;
		char kerr[256] = "";
		int krc = keys_load(c->cfg.state_dir, &ks, kerr, sizeof(kerr));
		if (krc == 0)
			krc = keys_preload(ks, k->kid, k->alg, kerr, sizeof(kerr));
		keys_free(ks);
		if (krc != 0) {
			ctl_err("key %s cannot sign: %s; nothing changed", k->kid, kerr);
			rc = CTL_EXIT_ERR;
			goto out;
		}
	}
	if (to == STORE_OAUTH_KEY_CURRENT && store_oauth_key_current(c->store, old) != STORE_OK)
		old->kid[0] = '\0';
	action = to == STORE_OAUTH_KEY_CURRENT ? "oauth.key.activate" : "oauth.key.retire";
	snprintf(detail, sizeof(detail), "from=%s%s%s", store_oauth_key_state_name(k->state),
		 old->kid[0] ? " previous_current=" : "", old->kid);
	rc = store_begin(c->store);
	if (rc == STORE_OK)
		rc = store_oauth_key_set_state(c->store, k->kid, to);
	if (rc == STORE_OK)
		rc = ctl_audit(c, action, k->kid, detail);
	if (rc == STORE_OK)
		rc = store_commit(c->store);
	if (rc != STORE_OK) {
		store_rollback(c->store);
		if (rc == STORE_CONFLICT || rc == STORE_INVALID) {
			/* the store says which rule refused it */
			ctl_err("%s; nothing changed (see: rtcauthctl oauth key list)",
				store_errmsg(c->store));
			rc = rc == STORE_CONFLICT ? CTL_EXIT_CONFLICT : CTL_EXIT_USAGE;
		} else {
			rc = rc == STORE_NOTFOUND ? key_not_found(k->kid)
						  : key_failed(c, "changing the key", rc);
		}
		goto out;
	}
	if (to == STORE_OAUTH_KEY_CURRENT) {
		printf("key %s is now current: it signs new tokens\n", k->kid);
		if (old->kid[0])
			printf("key %s is now previous: still published and accepted until "
			       "retired (rtcauthctl oauth key retire %s)\n",
			       old->kid, old->kid);
	} else {
		/* a retired key never signs again: its private key has no use */
		if (keys_discard(c->cfg.state_dir, k->kid) < 0)
			ctl_note("could not delete the private key file of %s in %s/keys; "
				 "delete it by hand",
				 k->kid, c->cfg.state_dir);
		printf("key %s retired: no longer published nor accepted\n", k->kid);
	}
	ctl_admin_oauth_reload(c);
	rc = CTL_EXIT_OK;
out:
	free(k);
	free(old);
	return rc;
}

static const struct {
	const char *name;
	const struct ctl_cmd_help *help;
} key_cmds[] = {
    {"new", &h_new},	       {"list", &h_list},     {"publish", &h_publish},
    {"activate", &h_activate}, {"retire", &h_retire},
};

static void oauth_usage(FILE *out)
{
	fprintf(out, "usage: rtcauthctl [-c PATH] oauth key COMMAND ...\ncommands:\n");
	for (size_t i = 0; i < sizeof(key_cmds) / sizeof(key_cmds[0]); i++)
		fprintf(out, "  oauth key %-9s %s\n", key_cmds[i].name, key_cmds[i].help->usage);
}

int ctl_oauth_main(struct ctl *c, int argc, char **argv)
{
	const char *sub;

	if (argc > 0 && (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0)) {
		oauth_usage(stdout);
		return CTL_EXIT_OK;
	}
	if (argc < 1 || strcmp(argv[0], "key") != 0) {
		if (argc < 1)
			ctl_err("oauth: missing command (see: rtcauthctl oauth --help)");
		else
			ctl_err("oauth: unknown command '%s' (see: rtcauthctl oauth --help)",
				argv[0]);
		oauth_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	sub = argc > 1 ? argv[1] : NULL;
	if (!sub) {
		ctl_err("oauth key: missing command (see: rtcauthctl oauth --help)");
		oauth_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
		oauth_usage(stdout);
		return CTL_EXIT_OK;
	}
	argc -= 2;
	argv += 2;
	if (strcmp(sub, "new") == 0)
		return key_new(c, argc, argv);
	if (strcmp(sub, "list") == 0)
		return key_list(c, argc, argv);
	if (strcmp(sub, "publish") == 0)
		return key_publish(c, argc, argv);
	if (strcmp(sub, "activate") == 0)
		return key_change(c, &h_activate, STORE_OAUTH_KEY_CURRENT, argc, argv);
	if (strcmp(sub, "retire") == 0)
		return key_change(c, &h_retire, STORE_OAUTH_KEY_RETIRED, argc, argv);
	ctl_err("oauth key: unknown command '%s' (see: rtcauthctl oauth --help)", sub);
	oauth_usage(stderr);
	return CTL_EXIT_USAGE;
}
