/*
 * rtcauthctl token issue: mint the token rtcauth would send to a partner
 * on its own outgoing calls (issue 3 item 7), for operators testing a
 * partner: the Microsoft-style actor token alone (app-only), or with
 * --as-user the unsigned outer token around an actor token trusted for
 * delegation. Works offline: it opens the store, takes the current signing
 * key's record and signs through the vault (keys_sign); the private key
 * never passes through here. Prints the token, nothing else, on stdout.
 */
#include "ctl/ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "oauth/extas.h"
#include "oauth/sts.h"
#include "vault/keys.h"

static const struct ctl_cmd_help h_issue = {
    "token issue", "--partner NAME [--as-user URI] [--resource R]",
    "Print a token rtcauth would send to a partner.",
    "  --partner NAME    the partner application (see: rtcauthctl partner list)\n"
    "  --as-user URI     act as this user: print the unsigned outer token (alg none)\n"
    "                    around a signed actor token trusted for delegation\n"
    "  --resource R      the target: principal/host@realm, or the partner's host name;\n"
    "                    default: the partner's first registered principal/host@realm\n"
    "                    resource, else the host of its metadata URL\n"
    "Without --as-user, the signed actor token alone (an app-only call). Signed by the\n"
    "current signing key; lifetime: the partner's, bounded by [oauth]\n"
    "max_token_lifetime. The token is a credential until it expires: handle it so.\n"};

/* The target of the token: aud = principal/host@realm. */
struct target {
	char principal[STORE_URI_MAX];
	char host[STORE_PARTNER_URL_MAX];
	char realm[STORE_URI_MAX];
};

/* "principal/host@realm" into t; 0 or -1. */
static int split_ms(const char *r, struct target *t)
{
	const char *slash = strchr(r, '/'), *at = strrchr(r, '@');

	if (!slash || !at || at < slash || slash == r || at == slash + 1 || !at[1])
		return -1;
	if ((size_t)(slash - r) >= sizeof(t->principal) ||
	    (size_t)(at - slash - 1) >= sizeof(t->host) || strlen(at + 1) >= sizeof(t->realm))
		return -1;
	snprintf(t->principal, sizeof(t->principal), "%.*s", (int)(slash - r), r);
	snprintf(t->host, sizeof(t->host), "%.*s", (int)(at - slash - 1), slash + 1);
	snprintf(t->realm, sizeof(t->realm), "%s", at + 1);
	return 0;
}

/* The host of an https URL, into host; 0 or -1. */
static int url_host(const char *url, char *host, size_t cap)
{
	const char *p, *e;

	if (strncmp(url, "https://", 8) != 0)
		return -1;
	p = url + 8;
	if (*p == '[')
		return -1; /* an IP literal names no principal's host */
	e = p + strcspn(p, ":/?#");
	if (e == p || (size_t)(e - p) >= cap || memchr(p, '@', (size_t)(e - p)))
		return -1;
	snprintf(host, cap, "%.*s", (int)(e - p), p);
	return 0;
}

/* The partner's principal id: its issuer id without an "@realm". */
static void partner_principal(const struct store_partner *p, struct target *t)
{
	const char *at = strrchr(p->issuer, '@');
	size_t n = at ? (size_t)(at - p->issuer) : strlen(p->issuer);

	snprintf(t->principal, sizeof(t->principal), "%.*s", (int)n, p->issuer);
	if (at && !p->realm[0])
		snprintf(t->realm, sizeof(t->realm), "%s", at + 1);
	else
		snprintf(t->realm, sizeof(t->realm), "%s", p->realm);
}

/* Work out the target from --resource or the registration. 0 or exit code. */
static int pick_target(const struct store_partner *p, const char *resource, struct target *t)
{
	char first[STORE_PARTNER_RESOURCES_MAX];

	memset(t, 0, sizeof(*t));
	if (resource && strchr(resource, '/')) {
		if (split_ms(resource, t) < 0) {
			ctl_err("--resource '%s' is not principal/host@realm nor a host name",
				resource);
			return CTL_EXIT_USAGE;
		}
		return 0;
	}
	if (!p->issuer[0]) {
		ctl_err("partner %s has no issuer id yet (its metadata was never fetched: "
			"rtcauthctl partner refresh %s)",
			p->name, p->name);
		return CTL_EXIT_ERR;
	}
	partner_principal(p, t);
	if (resource) {
		if (!resource[0] || strpbrk(resource, "@/ ") ||
		    strlen(resource) >= sizeof(t->host)) {
			ctl_err("--resource '%s' is not principal/host@realm nor a host name",
				resource);
			return CTL_EXIT_USAGE;
		}
		snprintf(t->host, sizeof(t->host), "%s", resource);
		return 0;
	}
	/* the first registered principal/host@realm resource */
	snprintf(first, sizeof(first), "%s", p->resources);
	for (char *save = NULL, *r = strtok_r(first, ",", &save); r;
	     r = strtok_r(NULL, ",", &save)) {
		if (strchr(r, '/') && split_ms(r, t) == 0)
			return 0;
	}
	partner_principal(p, t);
	if (p->metadata_url[0] && url_host(p->metadata_url, t->host, sizeof(t->host)) == 0)
		return 0;
	ctl_err("cannot tell partner %s's host: give --resource principal/host@realm or "
		"--resource HOST",
		p->name);
	return CTL_EXIT_USAGE;
}

/*
 * A partner registered --use-oauth-server: the token comes from [oauth]
 * authorization_server (issue 3 item 8), asked as <principal id>@<realm>
 * with a client assertion signed by our current key. 0 or an exit code.
 */
static int from_authorization_server(struct ctl *c, const struct target *tg,
				     struct sts_keys_signer *signer, const char *as_user,
				     char **tok)
{
	char resource[EXTAS_RESOURCE_MAX], client_id[2 * CONFIG_HOST_MAX + 2], err[1024];
	struct extas_client xc;
	int64_t expires;

	if (as_user) {
		ctl_err("--as-user: tokens for a --use-oauth-server partner come from the "
			"authorization server, which issues app-only tokens here");
		return CTL_EXIT_USAGE;
	}
	if (!c->cfg.oauth_authorization_server[0]) {
		ctl_err("the partner is registered --use-oauth-server but no [oauth] "
			"authorization_server is set in %s",
			c->cfg.path);
		return CTL_EXIT_ERR;
	}
	if ((size_t)snprintf(resource, sizeof(resource), "%s/%s@%s", tg->principal, tg->host,
			     tg->realm[0] ? tg->realm : c->cfg.oauth_realm) >= sizeof(resource)) {
		ctl_err("the target is too long");
		return CTL_EXIT_USAGE;
	}
	snprintf(client_id, sizeof(client_id), "%s@%s", c->cfg.oauth_principal_id,
		 c->cfg.oauth_realm);
	xc =
	    (struct extas_client){c->cfg.oauth_authorization_server,
				  client_id,
				  c->cfg.oauth_fetch_ca_file[0] ? c->cfg.oauth_fetch_ca_file : NULL,
				  NULL,
				  sts_keys_sign,
				  signer};
	if (extas_request(&xc, resource, clock_wall_s(), tok, &expires, err, sizeof(err)) < 0) {
		ctl_err("getting a token for %s from %s failed: %s", resource,
			c->cfg.oauth_authorization_server, err);
		return CTL_EXIT_ERR;
	}
	return 0;
}

static int token_issue(struct ctl *c, int argc, char **argv)
{
	const char *pos[1], *name = NULL, *as_user = NULL, *resource = NULL;
	bool have_name = false, have_user = false, have_res = false;
	const struct ctl_opt opts[] = {{"--partner", &name, &have_name},
				       {"--as-user", &as_user, &have_user},
				       {"--resource", &resource, &have_res},
				       {NULL, NULL, NULL}};
	char uri[STORE_URI_MAX], user[STORE_URI_MAX], domain[STORE_URI_MAX], err[512];
	struct store_partner p;
	struct store_oauth_key *key = NULL;
	struct store_user *u = NULL;
	struct keys *keys = NULL;
	struct sts_keys_signer signer;
	struct sts_issuer iss;
	struct sts_target t = {0};
	struct target tg;
	char *tok = NULL;
	int n, rc;

	memset(&p, 0, sizeof(p));
	if (ctl_args(&h_issue, argc, argv, opts, pos, 0, 0, &n, &rc))
		return rc;
	if (!name || !name[0]) {
		ctl_err("token issue: --partner NAME is required (see: rtcauthctl token issue "
			"--help)");
		return CTL_EXIT_USAGE;
	}
	if (as_user && (rc = ctl_uri_arg("--as-user", as_user, uri, user, domain)) != 0)
		return rc;
	rc = ctl_store(c);
	if (rc)
		return rc;
	rc = store_partner_get(c->store, name, &p);
	if (rc == STORE_NOTFOUND || rc == STORE_INVALID) {
		ctl_err("no partner %s (see: rtcauthctl partner list)", name);
		return CTL_EXIT_NOTFOUND;
	}
	if (rc != STORE_OK) {
		ctl_err("reading partner %s failed: %s (%s)", name, store_strerror(rc),
			store_errmsg(c->store));
		return ctl_store_exit(rc);
	}
	if (!p.enabled) {
		ctl_err("partner %s is disabled; rtcauthd sends it nothing (enable it with: "
			"rtcauthctl partner enable %s)",
			name, name);
		rc = CTL_EXIT_ERR;
		goto out;
	}
	rc = pick_target(&p, resource, &tg);
	if (rc)
		goto out;
	key = calloc(1, sizeof(*key));
	u = calloc(1, sizeof(*u));
	if (!key || !u) {
		ctl_err("out of memory");
		rc = CTL_EXIT_ERR;
		goto out;
	}
	if (as_user) {
		rc = store_user_get(c->store, uri, u);
		if (rc == STORE_NOTFOUND) {
			ctl_err("no user %s (see: rtcauthctl user list)", uri);
			rc = CTL_EXIT_NOTFOUND;
			goto out;
		}
		if (rc != STORE_OK) {
			ctl_err("reading user %s failed: %s", uri, store_strerror(rc));
			rc = ctl_store_exit(rc);
			goto out;
		}
		if (!u->enabled)
			ctl_note("user %s is disabled: rtcauthd would not act as them", uri);
	}
	rc = store_oauth_key_current(c->store, key);
	if (rc == STORE_NOTFOUND) {
		ctl_err("no current signing key yet (make one with: rtcauthctl oauth key new, or "
			"start rtcauthd once)");
		rc = CTL_EXIT_NOTFOUND;
		goto out;
	}
	if (rc != STORE_OK) {
		ctl_err("reading the current signing key failed: %s", store_strerror(rc));
		rc = ctl_store_exit(rc);
		goto out;
	}
	if (keys_load(c->cfg.state_dir, &keys, err, sizeof(err)) < 0 ||
	    keys_preload(keys, key->kid, key->alg, err, sizeof(err)) != KEYS_OK) {
		ctl_err("%s (run as the user rtcauthd runs as)", err);
		rc = CTL_EXIT_ERR;
		goto out;
	}
	if (strcmp(key->alg, "RS256") != 0)
		ctl_note("the current signing key is %s; Microsoft servers expect RS256", key->alg);
	signer.keys = keys;
	signer.key = key;
	memset(&iss, 0, sizeof(iss));
	iss.issuer = c->cfg.oauth_issuer;
	iss.principal_id = c->cfg.oauth_principal_id;
	iss.realm = c->cfg.oauth_realm;
	iss.default_lifetime = c->cfg.oauth_default_token_lifetime;
	iss.max_lifetime = c->cfg.oauth_max_token_lifetime;
	iss.sign = sts_keys_sign;
	iss.sign_arg = &signer;
	t.principal = tg.principal;
	t.host = tg.host;
	t.realm = tg.realm[0] ? tg.realm : NULL;
	t.lifetime = p.lifetime;
	if (p.use_oauth_server) {
		rc = from_authorization_server(c, &tg, &signer, as_user, &tok);
		if (rc)
			goto out;
	} else if (as_user) {
		struct sts_user su = {.sip_uri = uri};

		rc = sts_outer_token(&iss, &t, &su, clock_wall_s(), &tok, NULL);
	} else {
		rc = sts_actor_token(&iss, &t, false, clock_wall_s(), &tok, NULL);
	}
	if (rc != STS_OK) {
		ctl_err(rc == STS_EINVAL ? "the target %s/%s@%s is not a valid audience"
					 : "signing the token failed (target %s/%s@%s)",
			tg.principal, tg.host, tg.realm[0] ? tg.realm : c->cfg.oauth_realm);
		rc = rc == STS_EINVAL ? CTL_EXIT_USAGE : CTL_EXIT_ERR;
		goto out;
	}
	printf("%s\n", tok);
	rc = CTL_EXIT_OK;
out:
	free(tok);
	keys_free(keys);
	free(key);
	free(u);
	store_partner_clear(&p);
	return rc;
}

static void token_usage(FILE *out)
{
	fprintf(out, "usage: rtcauthctl [-c PATH] token issue %s\n", h_issue.usage);
}

int ctl_token_main(struct ctl *c, int argc, char **argv)
{
	if (argc > 0 && (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0)) {
		token_usage(stdout);
		return CTL_EXIT_OK;
	}
	if (argc < 1 || strcmp(argv[0], "issue") != 0) {
		if (argc < 1)
			ctl_err("token: missing command (see: rtcauthctl token --help)");
		else
			ctl_err("token: unknown command '%s' (see: rtcauthctl token --help)",
				argv[0]);
		token_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	return token_issue(c, argc - 1, argv + 1);
}
