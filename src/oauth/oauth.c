/*
 * The OAuth runtime (oauth.h): one immutable snapshot of the issuer
 * identity, our published signing keys and the enabled partners' key sets,
 * rebuilt from the store on start and on every reload, and swapped in under
 * a mutex that only guards the pointer (readers hold it for an increment).
 * A snapshot is freed when its last reader gives it back.
 *
 * Must never see a private key: signing goes through vault/keys.h, which
 * holds them. Must never stop the daemon because of one partner: a partner
 * whose keys do not load is left out and logged.
 */
#include "oauth/oauth.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "vault/keys.h"

struct snap_box {
	struct oauth_snapshot s; /* first: a snapshot pointer is a box pointer */
	int refs;		 /* __atomic */
};

static pthread_mutex_t snap_mu = PTHREAD_MUTEX_INITIALIZER;
static struct snap_box *current_box;
static struct keys *signing_keys;
static char keys_dir[PATH_MAX];

/* ---- snapshot lifetime ---- */

static void snap_free(struct snap_box *b)
{
	struct oauth_snapshot *s = &b->s;

	jose_keyset_clear(&s->own);
	for (size_t i = 0; i < s->n_partners; i++)
		jose_keyset_clear(&s->partners[i].keys);
	free(s->partners);
	free(s->published);
	free(b);
}

const struct oauth_snapshot *oauth_snapshot_get(void)
{
	struct snap_box *b;

	pthread_mutex_lock(&snap_mu);
	b = current_box;
	if (b)
		__atomic_add_fetch(&b->refs, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&snap_mu);
	return b ? &b->s : NULL;
}

void oauth_snapshot_put(const struct oauth_snapshot *snap)
{
	struct snap_box *b = (struct snap_box *)(void *)snap;

	if (b && __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0)
		snap_free(b);
}

static void snap_swap(struct snap_box *nb)
{
	struct snap_box *old;

	pthread_mutex_lock(&snap_mu);
	old = current_box;
	current_box = nb;
	pthread_mutex_unlock(&snap_mu);
	if (old)
		oauth_snapshot_put(&old->s);
}

/* ---- building ---- */

struct build {
	struct oauth_snapshot *s;
	struct store *st;
	char *err;
	size_t errlen;
	int failed;
	size_t skipped; /* partners left out */
};

static int add_published(void *ctx, const struct store_oauth_key *k)
{
	struct build *bd = ctx;
	struct oauth_snapshot *s = bd->s;
	struct store_oauth_key *np;
	struct jose_key *jk = NULL;
	int rc;

	np = realloc(s->published, (s->n_published + 1) * sizeof(*np));
	if (!np) {
		snprintf(bd->err, bd->errlen, "out of memory");
		return bd->failed = -1;
	}
	s->published = np;
	s->published[s->n_published++] = *k;
	/* the certificate is what partners get: the key must come from it */
	rc = jose_key_from_cert_pem(k->cert_pem, strlen(k->cert_pem), jose_alg_from_name(k->alg),
				    k->kid, &jk);
	if (rc == 0)
		rc = jose_keyset_add(&s->own, jk);
	jose_key_free(jk);
	if (rc != 0) {
		snprintf(bd->err, bd->errlen,
			 "the stored certificate of signing key %s (%s) cannot be used: %s; "
			 "retire it (rtcauthctl oauth key retire %s) or restore the database",
			 k->kid, k->alg, jose_strerror(rc), k->kid);
		return bd->failed = -1;
	}
	return 0;
}

/* Every "BEGIN CERTIFICATE" block of pem into ks (the algorithm follows the
 * key type: RSA RS256, P-256 ES256, Ed25519 EdDSA). 0 or a jose error. */
static int keys_from_certs(const char *pem, struct jose_keyset *ks)
{
	static const char begin[] = "-----BEGIN CERTIFICATE-----";
	static const char end[] = "-----END CERTIFICATE-----";
	const char *p = pem, *b, *e;
	int n = 0, rc;

	while ((b = strstr(p, begin)) != NULL) {
		struct jose_key *k = NULL;

		e = strstr(b, end);
		if (!e)
			return JOSE_EKEY;
		e += sizeof(end) - 1;
		rc = jose_key_from_cert_pem(b, (size_t)(e - b), JOSE_ALG_UNKNOWN, NULL, &k);
		if (rc == 0)
			rc = jose_keyset_add(ks, k);
		jose_key_free(k);
		if (rc != 0)
			return rc;
		n++;
		p = e;
	}
	return n ? 0 : JOSE_EKEY;
}

static int add_partner(void *ctx, const struct store_partner *p)
{
	struct build *bd = ctx;
	struct oauth_snapshot *s = bd->s;
	struct oauth_partner *np, *op;
	char name[LOG_VAL_MAX];
	size_t skipped = 0;
	int rc = 0;

	if (!p->enabled)
		return 0;
	np = realloc(s->partners, (s->n_partners + 1) * sizeof(*np));
	if (!np) {
		snprintf(bd->err, bd->errlen, "out of memory");
		return bd->failed = -1;
	}
	s->partners = np;
	op = &s->partners[s->n_partners];
	memset(op, 0, sizeof(*op));
	op->rec = *p;
	op->rec.certs = NULL; /* the store's; the keys below are what we keep */
	op->rec.jwks = NULL;
	jose_keyset_init(&op->keys);
	if (p->source == STORE_PARTNER_CERT)
		rc = p->certs ? keys_from_certs(p->certs, &op->keys) : JOSE_EKEY;
	else if (p->jwks && p->jwks[0]) /* jwks, or metadata fetched before */
		rc = jose_keyset_from_jwks(p->jwks, strlen(p->jwks), STORE_PARTNER_KEYS_MAX,
					   &op->keys, &skipped);
	if (rc != 0) {
		jose_keyset_clear(&op->keys);
		log_warn("oauth.partner_skipped", "partner=%s source=%s reason=%s",
			 log_val(str_cstr(p->name), name, sizeof(name)),
			 store_partner_source_name(p->source), jose_strerror(rc));
		bd->skipped++;
		return 0;
	}
	/* RFC 8705 §2.1 names: a partner whose names cannot be read gets none
	 * (PKI client authentication then fails for it: closed) */
	rc = store_partner_tls_get(bd->st, p->id, op->tls_subject, op->tls_san);
	if (rc != STORE_OK && rc != STORE_NOTFOUND)
		log_warn("oauth.partner_tls_names", "partner=%s error=%s",
			 log_val(str_cstr(p->name), name, sizeof(name)), store_strerror(rc));
	if (op->keys.n == 0 && !op->tls_subject[0] && !op->tls_san[0])
		log_warn("oauth.partner_no_keys", "partner=%s source=%s skipped_keys=%zu",
			 log_val(str_cstr(p->name), name, sizeof(name)),
			 store_partner_source_name(p->source), skipped);
	s->n_partners++;
	return 0;
}

static void fill_identity(struct oauth_snapshot *s, const struct config *cfg)
{
	snprintf(s->issuer, sizeof(s->issuer), "%s", cfg->oauth_issuer);
	snprintf(s->realm, sizeof(s->realm), "%s",
		 cfg->oauth_realm[0] ? cfg->oauth_realm : cfg->domain);
	snprintf(s->principal_id, sizeof(s->principal_id), "%s", cfg->oauth_principal_id);
	snprintf(s->host, sizeof(s->host), "%s", cfg->fqdn);
	/* the issuer is at most CONFIG_URL_MAX - 64 bytes (config.c) */
	snprintf(s->token_endpoint, sizeof(s->token_endpoint), "%.*s/oauth/token",
		 (int)(sizeof(s->token_endpoint) - 16), cfg->oauth_issuer);
	s->default_lifetime = cfg->oauth_default_token_lifetime;
	s->max_lifetime = cfg->oauth_max_token_lifetime;
	s->clock_skew = cfg->oauth_clock_skew;
	s->max_token_size = cfg->oauth_max_token_size;
	snprintf(s->service_name, sizeof(s->service_name), "%s", cfg->oauth_service_name);
	snprintf(s->authorization_server, sizeof(s->authorization_server), "%s",
		 cfg->oauth_authorization_server);
}

/* A new snapshot (one reference) from cfg and the store, or NULL with err. */
static struct snap_box *build_snapshot(const struct config *cfg, struct store *st, char *err,
				       size_t errlen)
{
	struct snap_box *b = calloc(1, sizeof(*b));
	struct build bd = {NULL, st, err, errlen, 0, 0};
	int rc;

	if (!b) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	b->refs = 1;
	bd.s = &b->s;
	jose_keyset_init(&b->s.own);
	fill_identity(&b->s, cfg);
	rc = store_oauth_key_current(st, &b->s.current);
	if (rc != STORE_OK) {
		snprintf(err, errlen, "cannot read the current signing key: %s (%s)",
			 rc == STORE_NOTFOUND ? "there is none" : store_strerror(rc),
			 store_errmsg(st));
		goto fail;
	}
	rc = store_oauth_key_list(st, STORE_OAUTH_KEYS_PUBLISHED, add_published, &bd);
	if (bd.failed)
		goto fail;
	if (rc != STORE_OK) {
		snprintf(err, errlen, "cannot list the signing keys: %s (%s)", store_strerror(rc),
			 store_errmsg(st));
		goto fail;
	}
	rc = store_partner_list(st, add_partner, &bd);
	if (bd.failed)
		goto fail;
	if (rc != STORE_OK) {
		snprintf(err, errlen, "cannot list the partner applications: %s (%s)",
			 store_strerror(rc), store_errmsg(st));
		goto fail;
	}
	/* the key that signs must be usable now, not at the first token */
	if (keys_preload(signing_keys, b->s.current.kid, b->s.current.alg, err, errlen) != 0)
		goto fail;
	return b;
fail:
	snap_free(b);
	return NULL;
}

static void log_snapshot(const char *event, const struct oauth_snapshot *s)
{
	char iss[LOG_VAL_MAX], realm[LOG_VAL_MAX];

	log_info(event, "issuer=%s realm=%s current_kid=%s alg=%s published=%zu partners=%zu",
		 log_val(str_cstr(s->issuer), iss, sizeof(iss)),
		 log_val(str_cstr(s->realm), realm, sizeof(realm)), s->current.kid, s->current.alg,
		 s->n_published, s->n_partners);
}

/* ---- lifecycle ---- */

int oauth_start(const struct config *cfg, struct store *s, char *err, size_t errlen)
{
	struct store_oauth_key *k = calloc(1, sizeof(*k));
	struct snap_box *b;
	char cn[KEYS_CN_MAX + 1];
	const char *realm = cfg->oauth_realm[0] ? cfg->oauth_realm : cfg->domain;
	bool created = false;

	if (!k) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (signing_keys) {
		snprintf(err, errlen, "oauth_start called twice");
		free(k);
		return -1;
	}
	/* X.520 bounds a CN at 64 characters: a long realm is cut */
	snprintf(cn, sizeof(cn), "rtcauth token issuer %.*s", KEYS_CN_MAX - 21, realm);
	if (keys_ensure_current(s, cfg->state_dir, cfg->oauth_signing_alg, cn, "rtcauthd", k,
				&created, err, errlen) != 0) {
		size_t n = strlen(err);
		/* a stored current key whose private key cannot be used */
		if (store_oauth_key_current(s, k) == STORE_OK && n < errlen)
			snprintf(
			    err + n, errlen - n,
			    "; the current OAuth signing key %s cannot sign: restore its key "
			    "file from a backup, or make a new key and make it current "
			    "(rtcauthctl oauth key new, then rtcauthctl oauth key activate KID)",
			    k->kid);
		free(k);
		return -1;
	}
	if (created)
		log_info("oauth.key_created", "kid=%s alg=%s state=current x5t=%s", k->kid, k->alg,
			 k->x5t);
	free(k);
	if (keys_load(cfg->state_dir, &signing_keys, err, errlen) != 0)
		return -1;
	snprintf(keys_dir, sizeof(keys_dir), "%s", cfg->state_dir);
	b = build_snapshot(cfg, s, err, errlen);
	if (!b) {
		keys_free(signing_keys);
		signing_keys = NULL;
		return -1;
	}
	snap_swap(b);
	log_snapshot("oauth.ready", &b->s);
	return 0;
}

int oauth_reload(const struct config *cfg, struct store *s, char *err, size_t errlen)
{
	struct snap_box *b;

	if (!signing_keys) {
		snprintf(err, errlen, "the OAuth runtime is not started");
		return -1;
	}
	if (strcmp(cfg->state_dir, keys_dir) != 0)
		log_warn("oauth.reload_partial",
			 "reason=\"[server] state_dir changes only on restart\"");
	b = build_snapshot(cfg, s, err, errlen);
	if (!b)
		return -1;
	log_snapshot("oauth.reload", &b->s);
	snap_swap(b);
	return 0;
}

void oauth_stop(void)
{
	snap_swap(NULL);
	keys_free(signing_keys);
	signing_keys = NULL;
	keys_dir[0] = '\0';
}

/* ---- lookups ---- */

const struct oauth_partner *oauth_partner_by_issuer(const struct oauth_snapshot *snap,
						    const char *issuer, const char *realm)
{
	if (!snap || !issuer || !issuer[0])
		return NULL;
	for (size_t i = 0; i < snap->n_partners; i++) {
		const struct oauth_partner *p = &snap->partners[i];
		if (strcmp(p->rec.issuer, issuer) == 0 &&
		    (!realm || strcmp(p->rec.realm, realm) == 0))
			return p;
	}
	return NULL;
}

const struct oauth_partner *oauth_partner_by_id(const struct oauth_snapshot *snap, const char *id)
{
	const char *at = strrchr(id, '@');
	size_t i, n = at ? (size_t)(at - id) : 0;

	for (i = 0; i < snap->n_partners; i++)
		if (snap->partners[i].rec.issuer[0] &&
		    strcmp(snap->partners[i].rec.issuer, id) == 0)
			return &snap->partners[i];
	if (!at || n == 0)
		return NULL;
	for (i = 0; i < snap->n_partners; i++) {
		const struct oauth_partner *p = &snap->partners[i];

		if (strlen(p->rec.issuer) == n && strncmp(p->rec.issuer, id, n) == 0 &&
		    strcmp((p->rec.realm[0] ? p->rec.realm : snap->realm), at + 1) == 0)
			return p;
	}
	return NULL;
}

const struct oauth_partner *oauth_partner_by_name(const struct oauth_snapshot *snap,
						  const char *name)
{
	if (!snap || !name)
		return NULL;
	for (size_t i = 0; i < snap->n_partners; i++)
		if (strcmp(snap->partners[i].rec.name, name) == 0)
			return &snap->partners[i];
	return NULL;
}

/* ---- signing ---- */

struct sign_arg {
	const struct store_oauth_key *key;
};

static int vault_signer(void *arg, const uint8_t *input, size_t len, uint8_t *sig, size_t cap,
			size_t *siglen)
{
	const struct sign_arg *a = arg;

	*siglen = cap;
	if (keys_sign(signing_keys, a->key->kid, a->key->alg, input, len, sig, siglen) != 0) {
		*siglen = 0;
		return -1;
	}
	return 0;
}

/* The protected header: typ first (PROTOCOLS.md §6 order: typ, alg, x5t),
 * then kid, then the caller's other members. */
static int make_header(const struct store_oauth_key *k, const json_t *given, json_t **out)
{
	json_t *h = json_object();
	const char *typ = "JWT", *name;
	json_t *v;

	*out = NULL;
	if (!h)
		return JOSE_ENOMEM;
	if (given) {
		const json_t *t = json_object_get(given, "typ");
		const json_t *a = json_object_get(given, "alg");
		if (!json_is_object(given) || (t && !json_is_string(t)) ||
		    (a && (!json_is_string(a) || strcmp(json_string_value(a), k->alg) != 0))) {
			json_decref(h);
			return a && json_is_string(a) ? JOSE_EALG : JOSE_EHEADER;
		}
		if (t)
			typ = json_string_value(t);
	}
	if (json_object_set_new(h, "typ", json_string(typ)) ||
	    json_object_set_new(h, "alg", json_string(k->alg)) ||
	    json_object_set_new(h, "x5t", json_string(k->x5t)) ||
	    json_object_set_new(h, "kid", json_string(k->kid))) {
		json_decref(h);
		return JOSE_ENOMEM;
	}
	if (given) {
		json_object_foreach((json_t *)given, name, v)
		{
			if (!strcmp(name, "typ") || !strcmp(name, "alg") || !strcmp(name, "x5t") ||
			    !strcmp(name, "kid"))
				continue;
			if (json_object_set(h, name, v)) {
				json_decref(h);
				return JOSE_ENOMEM;
			}
		}
	}
	*out = h;
	return 0;
}

int oauth_sign(const struct oauth_snapshot *snap, const json_t *header, const json_t *payload,
	       char **out, size_t *outlen)
{
	struct sign_arg a;
	json_t *h = NULL;
	int rc;

	*out = NULL;
	if (outlen)
		*outlen = 0;
	if (!snap || !signing_keys || !payload)
		return JOSE_EINTERNAL;
	a.key = &snap->current;
	rc = make_header(&snap->current, header, &h);
	if (rc != 0)
		return rc;
	rc = jose_sign_compact(h, payload, vault_signer, &a, out, outlen);
	json_decref(h);
	return rc;
}

static bool ms_audience_is_us(const struct oauth_snapshot *snap, const char *a)
{
	const char *slash = strchr(a, '/'), *at = strrchr(a, '@');
	size_t plen, hlen;

	if (!slash || !at || at < slash || !snap->principal_id[0])
		return false;
	plen = (size_t)(slash - a);
	hlen = (size_t)(at - slash - 1);
	return plen == strlen(snap->principal_id) && strncmp(a, snap->principal_id, plen) == 0 &&
	       hlen && hlen == strlen(snap->host) &&
	       strncasecmp(slash + 1, snap->host, hlen) == 0 && strcmp(at + 1, snap->realm) == 0;
}

bool oauth_audience_is_us(const struct oauth_snapshot *snap, const char *a)
{
	return (snap->issuer[0] && strcmp(a, snap->issuer) == 0) || ms_audience_is_us(snap, a);
}
