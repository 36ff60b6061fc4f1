/*
 * rtcauthd: read the config, bootstrap the state directory, open the store,
 * restore registrations, start the workers, serve the admin socket, and
 * handle signals (SIGTERM: finish and flush; SIGHUP: reload config and TLS
 * certificates, keeping every registration).
 * Must never hold a secret itself: the vault does.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <systemd/sd-daemon.h>

#include "auth/lockout.h"
#include "auth/nonce.h"
#include "auth/retrans.h"
#include "auth/sa.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/x509.h"
#include "daemon/admin.h"
#include "daemon/bootstrap.h"
#include "daemon/worker.h"
#include "http/http.h"
#include "http/webticket.h"
#include "oauth/fetch.h"
#include "oauth/metadata.h"
#include "oauth/oauth.h"
#include "oauth/token.h"
#include "oauth/validate.h"
#include "pki/certprov.h"
#include "pki/pki.h"
#include "sip/location.h"
#include "sip/server.h"
#include "store/store.h"
#include "store/wb.h"
#include "turn/relaycred.h"
#include "turn/server.h"
#include "vault/gss.h"
#include "vault/vault.h"

#define RTCAUTH_VERSION	     "0.1.0"
#define NONCE_TABLE_CAPACITY (1u << 21)

/* Runtimes and configs are never freed while workers may read them;
 * reloads are rare, so old ones are kept until exit. */
struct rt_keep {
	struct rt_keep *next;
	struct config *cfg;
	struct sip_runtime *rt;
};

static struct rt_keep *kept;
static const struct sip_runtime *current_rt;
static struct event_base *main_base;
static const char *config_path = "/etc/rtcauth/rtcauth.conf";
/* the main thread's own store connection: OAuth start and reloads (SIGHUP
 * and the admin socket both run on the main loop) */
static struct store *main_store;

static const struct sip_runtime *get_runtime(void)
{
	return current_rt;
}

/* err messages quote config values as written, '"' included: escape them so
 * the log line stays key=value */
#define REASON_MAX 1100
static const char *reason(const char *err, char *buf)
{
	return log_val(str_cstr(err), buf, REASON_MAX);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: rtcauthd [-c PATH] [--check-config]\n"
		   "  -c, --config PATH   configuration file (default /etc/rtcauth/rtcauth.conf)\n"
		   "      --check-config  check the configuration and exit (0 ok, 2 bad)\n"
		   "  -V, --version       print the version\n"
		   "  -h, --help          this help\n"
		   "Signals: SIGTERM stops after in-flight work (exit 0); SIGHUP reloads the\n"
		   "configuration and TLS certificates. See rtcauthd(8).\n");
}

static struct lockout_policy policy_of(const struct config *c)
{
	struct lockout_policy p = {
	    .user_failures = (uint32_t)c->lockout_user_failures,
	    .user_window = (uint32_t)c->lockout_user_window,
	    .user_duration = (uint32_t)c->lockout_user_duration,
	    .user_max = (uint32_t)c->lockout_user_max,
	    .source_failures = (uint32_t)c->lockout_source_failures,
	    .source_window = (uint32_t)c->lockout_source_window,
	    .source_duration = (uint32_t)c->lockout_source_duration,
	};
	return p;
}

static struct sip_runtime *make_runtime(struct config *cfg, const struct sip_runtime *prev)
{
	struct sip_runtime *rt = calloc(1, sizeof(*rt));
	struct lockout_policy pol = policy_of(cfg);
	uint8_t mac[32];

	if (!rt)
		return NULL;
	rt->cfg = cfg;
	if (prev) {
		/* nonces in flight and lockout state survive a reload */
		rt->nonces = prev->nonces;
		rt->lockout = prev->lockout;
		rt->sas = prev->sas; /* signed-in clients stay signed in */
		lockout_set_policy(rt->lockout, &pol);
		nonce_table_set_lifetime(rt->nonces, (uint32_t)cfg->nonce_lifetime);
	} else {
		rt->nonces = nonce_table_new(NONCE_TABLE_CAPACITY, (uint32_t)cfg->nonce_lifetime);
		rt->lockout = lockout_new(&pol);
		rt->sas = sa_table_new(0);
		if (!rt->nonces || !rt->lockout || !rt->sas) {
			free(rt);
			return NULL;
		}
	}
	for (size_t i = 0; i < cfg->n_listen; i++) {
		struct sip_listener *l = &rt->listeners[i];
		const struct listen_addr *la = &cfg->listen[i];
		l->kind = la->kind;
		l->port = la->port;
		if (strcmp(la->host, "*") == 0 || strcmp(la->host, "0.0.0.0") == 0 ||
		    strcmp(la->host, "::") == 0)
			snprintf(l->host, sizeof(l->host), "%s", cfg->fqdn);
		else
			snprintf(l->host, sizeof(l->host), "%s", la->host);
	}
	rt->n_listeners = cfg->n_listen;
	rt->krb_ready = config_offers(cfg, AUTH_SCHEME_KERBEROS) && vault_krb_ready();
	if (cfg->ntlm_channel_bindings) {
		unsigned char ep[EVP_MAX_MD_SIZE];
		int n = x509_tls_server_end_point_file(cfg->tls_cert, ep, sizeof(ep));
		if (n <= 0 || x509_ntlm_tls_cbt(ep, (size_t)n, rt->ntlm_cbt_hash) < 0) {
			log_err("ntlm.channel_bindings_failed", "cert=%s", cfg->tls_cert);
			fprintf(
			    stderr,
			    "rtcauthd: [ntlm] channel_bindings: cannot hash the certificate %s\n",
			    cfg->tls_cert);
			if (!prev) {
				nonce_table_free(rt->nonces);
				lockout_free(rt->lockout);
				sa_table_free(rt->sas);
			}
			free(rt);
			return NULL;
		}
		rt->ntlm_cbt = true;
	}
	/* the opaque is the same on every server of a pool */
	if (vault_mac("digest-opaque", cfg->domain, strlen(cfg->domain), mac) == 0)
		for (int i = 0; i < 8; i++)
			snprintf(rt->opaque + 2 * i, 3, "%02x", mac[i]);
	return rt;
}

static void keep(struct config *cfg, struct sip_runtime *rt)
{
	struct rt_keep *k = calloc(1, sizeof(*k));
	if (k) {
		k->cfg = cfg;
		k->rt = rt;
		k->next = kept;
		kept = k;
	}
}

static int accept_any_cert(int ok, X509_STORE_CTX *x)
{
	(void)ok;
	(void)x;
	return 1; /* verified after the handshake by pki_verify_client */
}

/* In place of OpenSSL's chain building during the handshake: the PKI
 * builds and checks the chain once, after it (the same work twice was
 * 6.5% of a handshake's CPU in bench-tls). */
static int defer_chain_check(X509_STORE_CTX *x, void *arg)
{
	(void)x;
	(void)arg;
	return 1;
}

static SSL_CTX *make_tls(const struct config *cfg, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx) {
		snprintf(err, errlen, "cannot create TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* ask for a client certificate, never require one: the PKI verifies
	 * what comes (chain, validity, revocation, user) once per connection */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE, accept_any_cert);
	SSL_CTX_set_cert_verify_callback(ctx, defer_chain_check, NULL);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"rtcauth-sip", 11);
	/* SIP connections are long-lived: no TLS 1.3 session tickets (each one
	 * copied the session with the client certificate: ~20% of a handshake) */
	SSL_CTX_set_num_tickets(ctx, 0);
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		char e[160];
		ERR_error_string_n(ERR_get_error(), e, sizeof(e));
		snprintf(err, errlen, "cannot load TLS certificate %s / key %s: %s", cfg->tls_cert,
			 cfg->tls_key, e);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* The web services' TLS context, with the same checks as at start. */
static SSL_CTX *make_http_tls(const struct config *cfg, char *err, size_t errlen)
{
	if (bootstrap_check_cert(cfg->http_cert, cfg->http_key, err, errlen) < 0)
		return NULL;
	return http_tls_ctx_new(cfg->http_cert, cfg->http_key, err, errlen);
}

/* [http] keys that take effect only on restart. */
static bool http_changed(const struct config *a, const struct config *b)
{
	return a->n_http_listen != b->n_http_listen ||
	       memcmp(a->http_listen, b->http_listen, sizeof(a->http_listen)) != 0 ||
	       a->http_max_header_size != b->http_max_header_size ||
	       a->http_max_body_size != b->http_max_body_size || a->http_timeout != b->http_timeout;
}

static bool has_tls(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->n_listen; i++)
		if (cfg->listen[i].kind == TRANSPORT_TLS)
			return true;
	for (size_t i = 0; i < cfg->n_turn_listen; i++) /* TURN over TLS uses the SIP certificate */
		if (cfg->turn_listen[i].kind == TRANSPORT_TLS)
			return true;
	return false;
}

#define RESTORE_THREADS 2

/* One restore thread's part of the registrations table. */
struct restore_ctx {
	int64_t now;
	size_t restored, expired;
	int part;
	const char *path;
	int rc;
	char err[512];
	struct location_binding b; /* scratch, one per thread */
};

static int restore_put(void *vctx, struct location_aor *rec)
{
	const struct location_binding *b = vctx;
	return location_aor_put(rec, b);
}

/* Bounded copy without printf: 100,000 bindings are restored at start. */
static void copy_field(char *dst, size_t cap, const char *src, size_t len)
{
	if (len >= cap)
		len = cap - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

#define COPY(dst, src) copy_field((dst), sizeof(dst), (src), strnlen((src), sizeof(src)))

/* "ip:port" or "[v6]:port" into a flow's address. */
static void parse_source(const char *src, struct location_flow *f)
{
	const char *colon = strrchr(src, ':');
	char ip[64];
	unsigned long port;
	char *end;
	size_t n;

	if (!colon)
		return;
	port = strtoul(colon + 1, &end, 10);
	if (*end || port > 65535)
		return;
	n = (size_t)(colon - src);
	if (src[0] == '[' && n >= 2 && src[n - 1] == ']') {
		copy_field(ip, sizeof(ip), src + 1, n - 2);
		f->addr.in6.sin6_family = AF_INET6;
		f->addr.in6.sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, ip, &f->addr.in6.sin6_addr) == 1)
			f->addrlen = sizeof(f->addr.in6);
	} else {
		copy_field(ip, sizeof(ip), src, n);
		f->addr.in.sin_family = AF_INET;
		f->addr.in.sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, ip, &f->addr.in.sin_addr) == 1)
			f->addrlen = sizeof(f->addr.in);
	}
}

static int restore_one(void *vctx, const struct store_reg *r)
{
	struct restore_ctx *rc = vctx;
	struct location_binding *bp = &rc->b;
	const char *lt, *gt;

	if (r->expires <= rc->now) {
		rc->expired++;
		return 0;
	}
	COPY(bp->aor, r->aor);
	COPY(bp->key, r->binding_key);
	COPY(bp->contact, r->contact);
	/* the Contact URI is what is inside <...> */
	lt = strchr(r->contact, '<');
	gt = lt ? strchr(lt, '>') : NULL;
	if (lt && gt)
		copy_field(bp->contact_uri, sizeof(bp->contact_uri), lt + 1, (size_t)(gt - lt - 1));
	else
		COPY(bp->contact_uri, r->contact);
	COPY(bp->instance, r->instance);
	bp->reg_id = r->reg_id;
	COPY(bp->path, r->path);
	COPY(bp->call_id, r->call_id);
	bp->cseq = r->cseq;
	COPY(bp->user_agent, r->user_agent);
	bp->expires = r->expires;
	bp->stored_expires = r->expires; /* what the row says */
	bp->updated = r->updated;
	memset(&bp->flow, 0, sizeof(bp->flow));
	bp->flow.transport = r->transport;
	/* UDP flows go out of the first UDP listener; stream flows need the
	 * client to reconnect (their connection did not survive the restart) */
	bp->flow.listen_idx = -1;
	for (size_t i = 0; i < current_rt->n_listeners; i++)
		if ((int)current_rt->listeners[i].kind == r->transport) {
			bp->flow.listen_idx = (int)i;
			break;
		}
	parse_source(r->source, &bp->flow);
	if (location_update(str_cstr(bp->aor), rc->now, restore_put, bp) == 0)
		rc->restored++;
	return 0;
}

/* ---- signals and timers ---- */

/* "oauth.reload" on the admin socket, with the running configuration. */
static int admin_oauth_reload(char *err, size_t errlen)
{
	return oauth_reload(current_rt->cfg, main_store, err, errlen);
}

/*
 * "oauth.reload" from rtcauthctl: reload, then fetch the keys of partners
 * registered by metadata URL that were never fetched (a partner just
 * added), so an operator need not run partner refresh.
 */
static int admin_oauth_reload_and_fetch(char *err, size_t errlen)
{
	const struct oauth_snapshot *snap;
	int rc = admin_oauth_reload(err, errlen);

	if (rc < 0)
		return rc;
	snap = oauth_snapshot_get();
	for (size_t i = 0; snap && i < snap->n_partners; i++) {
		const struct store_partner *p = &snap->partners[i].rec;
		if (p->source == STORE_PARTNER_METADATA && p->last_fetch == 0)
			oauth_fetch_refresh(p->name, NULL, NULL);
	}
	if (snap)
		oauth_snapshot_put(snap);
	return 0;
}

/*
 * The OAuth runtime: a current signing key (made at the first start), its
 * snapshot, and the metadata endpoints, before any HTTPS server exists.
 */
static int oauth_up(const struct config *cfg, char *err, size_t errlen)
{
	if (store_open(cfg->sqlite_path, 0, 5000, &main_store, err, errlen) != STORE_OK)
		return -1;
	if (oauth_start(cfg, main_store, err, errlen) < 0)
		return -1;
	if (pki_init(cfg, err, errlen) < 0) /* the issuing CA: made at the first start */
		return -1;
	if (oauth_metadata_routes_add() < 0 || oauth_token_routes() < 0 ||
	    oauth_validate_routes() < 0 || webticket_routes_add() < 0 ||
	    relaycred_routes_add() < 0 || pki_routes_add() < 0 ||
	    certprov_routes_add(pki_issue) < 0) {
		snprintf(err, errlen, "cannot register the OAuth endpoints");
		return -1;
	}
	admin_set_oauth_reload(admin_oauth_reload_and_fetch);
	return 0;
}

static void on_term(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	log_info("shutdown", "signal=%d", (int)sig);
	sd_notify(0, "STOPPING=1");
	event_base_loopbreak(main_base);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct config *ncfg = calloc(1, sizeof(*ncfg));
	const struct config *old = current_rt->cfg;
	struct sip_runtime *nrt;
	SSL_CTX *sip_ctx = NULL, *http_ctx;
	char err[1024], rbuf[REASON_MAX];

	(void)sig;
	(void)what;
	(void)arg;
	sd_notify(0, "RELOADING=1");
	if (!ncfg || config_load(config_path, ncfg, err, sizeof(err)) < 0) {
		log_err("reload.failed", "reason=%s action=kept_old_config",
			reason(ncfg ? err : "oom", rbuf));
		free(ncfg);
		sd_notify(0, "READY=1");
		return;
	}
	if (ncfg->n_listen != old->n_listen ||
	    memcmp(ncfg->listen, old->listen, sizeof(ncfg->listen)) != 0 ||
	    strcmp(ncfg->sqlite_path, old->sqlite_path) != 0 || ncfg->workers != old->workers ||
	    http_changed(ncfg, old))
		log_warn("reload.partial",
			 "reason=\"listen, store, workers and [http] limits change "
			 "only on restart\"");
	if (has_tls(ncfg)) {
		/* the same checks as at start (bootstrap.h): a world-readable or
		 * expired pair is refused on reload too */
		sip_ctx = bootstrap_check_cert(ncfg->tls_cert, ncfg->tls_key, err, sizeof(err)) == 0
			      ? make_tls(ncfg, err, sizeof(err))
			      : NULL;
		if (!sip_ctx) {
			log_err("reload.failed", "reason=%s action=kept_old_config",
				reason(err, rbuf));
			free(ncfg);
			sd_notify(0, "READY=1");
			return;
		}
	}
	http_ctx = make_http_tls(ncfg, err, sizeof(err));
	if (!http_ctx) {
		log_err("reload.failed", "reason=%s action=kept_old_config", reason(err, rbuf));
		SSL_CTX_free(sip_ctx);
		free(ncfg);
		sd_notify(0, "READY=1");
		return;
	}
	if (sip_ctx)
		workers_set_tls(sip_ctx);
	http_tls_set(http_ctx);
	/* listeners and the store stay as they were bound at start */
	memcpy(ncfg->listen, old->listen, sizeof(ncfg->listen));
	ncfg->n_listen = old->n_listen;
	memcpy(ncfg->http_listen, old->http_listen, sizeof(ncfg->http_listen));
	ncfg->n_http_listen = old->n_http_listen;
	ncfg->http_max_header_size = old->http_max_header_size;
	ncfg->http_max_body_size = old->http_max_body_size;
	ncfg->http_timeout = old->http_timeout;
	snprintf(ncfg->sqlite_path, sizeof(ncfg->sqlite_path), "%s", old->sqlite_path);
	nrt = make_runtime(ncfg, current_rt);
	if (!nrt) {
		log_err("reload.failed", "reason=oom");
		free(ncfg);
		sd_notify(0, "READY=1");
		return;
	}
	keep(ncfg, nrt);
	current_rt = nrt;
	workers_set_runtime(nrt);
	log_set_level(ncfg->log_level);
	vault_cache_flush();
	if (oauth_reload(ncfg, main_store, err, sizeof(err)) < 0)
		log_err("reload.oauth_failed", "reason=%s action=kept_old_keys", reason(err, rbuf));
	if (pki_reload(ncfg, err, sizeof(err)) < 0)
		log_err("reload.pki_failed", "reason=%s action=kept_old_pki", reason(err, rbuf));
	switch (turn_reload(ncfg, err, sizeof(err))) {
	case 0:
		break;
	case 1: /* the rest applied; listeners and the relay ports stay */
		log_warn("reload.partial", "reason=%s", reason(err, rbuf));
		break;
	default:
		log_err("reload.turn_failed", "reason=%s action=kept_old_turn_settings",
			reason(err, rbuf));
	}
	log_info("reload.ok", "config=%s registrations=%zu", reason(config_path, rbuf),
		 location_count());
	sd_notify(0, "READY=1");
}

static void expired_one(void *ctx, const struct location_binding *b)
{
	(void)ctx;
	wb_reg_del(b->aor, b->key);
	log_info("register.expired", "aor=%s", b->aor);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	location_expire(clock_wall_s(), expired_one, NULL);
	if (current_rt && current_rt->sas)
		sa_sweep(current_rt->sas, (uint64_t)clock_wall_s());
}

/*
 * Kerberos is offered only when the keytab loads. A missing or unreadable
 * keytab is a clear start-up message, not a failed start: NTLM and Digest
 * keep working.
 */
static void kerberos_up(const struct config *cfg)
{
	char err[512];

	if (!config_offers(cfg, AUTH_SCHEME_KERBEROS))
		return;
	if (!cfg->krb_keytab[0]) {
		log_info("kerberos.off", "reason=\"no [kerberos] keytab configured\"");
		return;
	}
	/* MIT's replay cache (seen authenticators) in our state directory,
	 * not /var/tmp, unless the environment names one */
	if (!getenv("KRB5RCACHEDIR")) {
		char rc[PATH_MAX];
		snprintf(rc, sizeof(rc), "%s/krb5rcache", cfg->state_dir);
		if (mkdir(rc, 0700) == 0 || errno == EEXIST)
			setenv("KRB5RCACHEDIR", rc, 1);
	}
	if (vault_krb_init(cfg->krb_keytab, err, sizeof(err)) < 0) {
		char rbuf[REASON_MAX];
		log_err("kerberos.unavailable", "reason=%s", reason(err, rbuf));
		fprintf(stderr, "rtcauthd: Kerberos is not offered: %s\n", err);
		return;
	}
	log_info("kerberos.ready", "realm=%s", cfg->krb_realm);
}

static int parse_args(int argc, char **argv, bool *check_only)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'}, {"check-config", no_argument, NULL, 'C'},
	    {"version", no_argument, NULL, 'V'},      {"help", no_argument, NULL, 'h'},
	    {"foreground", no_argument, NULL, 'f'},   {NULL, 0, NULL, 0}};
	int c;

	while ((c = getopt_long(argc, argv, "c:fVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_path = optarg;
			break;
		case 'C':
			*check_only = true;
			break;
		case 'f':
			break;
		case 'V':
			printf("rtcauthd %s\n", RTCAUTH_VERSION);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "rtcauthd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return -1;
	}
	return 0;
}

static void *restore_part(void *arg)
{
	struct restore_ctx *rc = arg;
	struct store *s;

	rc->rc = -1;
	if (store_open(rc->path, 0, 5000, &s, rc->err, sizeof(rc->err)) != STORE_OK)
		return NULL;
	if (store_reg_scan(s, rc->part, RESTORE_THREADS, restore_one, rc) != STORE_OK)
		snprintf(rc->err, sizeof(rc->err), "%s", store_errmsg(s));
	else
		rc->rc = 0;
	store_close(s);
	return NULL;
}

/*
 * Open (create, migrate) the store and load the stored bindings into the
 * location table, on RESTORE_THREADS threads with a connection each:
 * reading 100,000 rows was most of the start-up time.
 */
static int open_and_restore(const struct config *cfg, char *err, size_t errlen)
{
	struct restore_ctx *rcs = calloc(RESTORE_THREADS, sizeof(*rcs));
	pthread_t thr[RESTORE_THREADS];
	size_t restored = 0, expired = 0;
	struct store *s;
	int n = 0, ret = 0;

	if (!rcs) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (store_open(cfg->sqlite_path, STORE_CREATE, 5000, &s, err, errlen) != STORE_OK) {
		free(rcs);
		return -1;
	}
	for (int i = 0; i < RESTORE_THREADS; i++) {
		rcs[i].now = clock_wall_s();
		rcs[i].part = i;
		rcs[i].path = cfg->sqlite_path;
		if (pthread_create(&thr[i], NULL, restore_part, &rcs[i]) != 0) {
			restore_part(&rcs[i]); /* no thread: do it here */
			thr[i] = 0;
		}
	}
	for (int i = 0; i < RESTORE_THREADS; i++) {
		if (thr[i])
			pthread_join(thr[i], NULL);
		if (rcs[i].rc < 0 && ret == 0) {
			snprintf(err, errlen, "cannot read registrations from %s: %s",
				 cfg->sqlite_path, rcs[i].err);
			ret = -1;
		}
		restored += rcs[i].restored;
		expired += rcs[i].expired;
	}
	if (ret == 0) {
		/* a scan of the table (there is no expires index: it cost every
		 * refresh): only when the restore met expired rows */
		if (expired > 0)
			store_reg_purge(s, rcs[0].now, &n);
		log_info("restore", "bindings=%zu expired=%zu", restored, expired);
	}
	store_close(s);
	free(rcs);
	return ret;
}

int main(int argc, char **argv)
{
	struct config *cfg = calloc(1, sizeof(*cfg));
	struct sip_runtime *rt;
	struct event *sig_term, *sig_int, *sig_hup, *tick;
	struct timeval one = {1, 0};
	bool check_only = false;
	char err[1024], rbuf[REASON_MAX];
	int nw, rc = 1;

	/* no glibc fastbins: a request frees many small blocks, then libevent
	 * asks for a read buffer of a "large" size, and glibc consolidates
	 * every fastbin first, at every request (2% of the HTTPS path); tcache
	 * still serves small blocks. Measured in docs/design.md. */
	mallopt(M_MXFAST, 0);
	/* every early return frees cfg: under LeakSanitizer a leak turns the
	 * documented exit status (0 ok, 1 start failure, 2 bad config) into 1 */
	if (!cfg || parse_args(argc, argv, &check_only) < 0) {
		free(cfg);
		return 2;
	}
	if (config_load(config_path, cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "rtcauthd: %s\n", err);
		free(cfg);
		return 2;
	}
	if (check_only) {
		printf("config OK: %s\n", config_path);
		free(cfg);
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	log_setup(cfg->log_level, cfg->log_dest, "rtcauthd");
	if (bootstrap_state(cfg, err, sizeof(err)) < 0 ||
	    vault_init(cfg->state_dir, err, sizeof(err)) < 0) {
		log_err("start.failed", "reason=%s", reason(err, rbuf));
		fprintf(stderr, "rtcauthd: %s\n", err);
		vault_shutdown();
		free(cfg);
		return 1;
	}
	nw = cfg->workers > 0 ? cfg->workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (nw < 1)
		nw = 1;
	kerberos_up(cfg);
	rt = make_runtime(cfg, NULL);
	if (!rt || location_init(8) < 0 || retrans_init(19) < 0) {
		fprintf(stderr, "rtcauthd: out of memory\n");
		return 1;
	}
	keep(cfg, rt);
	current_rt = rt;
	workers_set_runtime(rt);
	if (open_and_restore(cfg, err, sizeof(err)) < 0 ||
	    wb_start(cfg->sqlite_path, 100, err, sizeof(err)) < 0)
		goto fail;
	/* WAL checkpoints (and their fsyncs) off the workers' threads */
	if (store_checkpointer_start(cfg->sqlite_path, err, sizeof(err)) != STORE_OK)
		goto fail_wb;
	if (oauth_up(cfg, err, sizeof(err)) < 0)
		goto fail_wb;
	if (has_tls(cfg)) {
		SSL_CTX *ctx = make_tls(cfg, err, sizeof(err));
		if (!ctx)
			goto fail_wb;
		workers_set_tls(ctx);
	}
	{
		SSL_CTX *hctx = make_http_tls(cfg, err, sizeof(err));
		if (!hctx)
			goto fail_workers;
		http_tls_set(hctx);
	}
	if (workers_create(cfg, nw, err, sizeof(err)) < 0)
		goto fail_workers;
	main_base = event_base_new();
	{
		struct admin_ctx actx = {get_runtime, clock_wall_s()};
		if (admin_start(main_base, cfg->admin_socket, &actx, err, sizeof(err)) < 0)
			goto fail_workers;
	}
	/* partner metadata: fetched in the background, start-up does not wait */
	if (oauth_fetch_start(main_base, cfg, admin_oauth_reload, err, sizeof(err)) < 0)
		goto fail_workers;
	sig_term = evsignal_new(main_base, SIGTERM, on_term, NULL);
	sig_int = evsignal_new(main_base, SIGINT, on_term, NULL);
	sig_hup = evsignal_new(main_base, SIGHUP, on_hup, NULL);
	tick = event_new(main_base, -1, EV_PERSIST, on_tick, NULL);
	event_add(sig_term, NULL);
	event_add(sig_int, NULL);
	event_add(sig_hup, NULL);
	event_add(tick, &one);
	if (workers_start() < 0) {
		snprintf(err, sizeof(err), "cannot start worker threads");
		goto fail_workers;
	}
	sd_notify(0, "READY=1");
	log_info("ready",
		 "version=%s workers=%d listeners=%zu https_listeners=%zu registrations=%zu "
		 "domain=%s",
		 RTCAUTH_VERSION, nw, cfg->n_listen, cfg->n_http_listen, location_count(),
		 cfg->domain);
	event_base_dispatch(main_base);

	/* SIGTERM: stop intake, finish in-flight work, flush, exit 0 */
	oauth_fetch_stop();
	workers_stop();
	admin_stop();
	log_info("stopping", "refreshed_bindings_written=%zu", registrar_flush_refreshes());
	wb_stop();
	store_checkpointer_stop();
	{
		unsigned long runs = 0, failed = 0, by_writers = 0;

		store_checkpointer_stats(&runs, &failed, &by_writers);
		log_info("store.checkpoints", "thread=%lu failed=%lu by_writers=%lu", runs, failed,
			 by_writers);
	}
	workers_destroy();
	event_free(sig_term);
	event_free(sig_int);
	event_free(sig_hup);
	event_free(tick);
	event_base_free(main_base);
	log_info("stopped", "registrations=%zu", location_count());
	rc = 0;
	goto out;
fail_workers:
	workers_stop();
	workers_destroy();
fail_wb:
	wb_stop();
	store_checkpointer_stop();
fail:
	log_err("start.failed", "reason=%s", reason(err, rbuf));
	fprintf(stderr, "rtcauthd: %s\n", err);
	rc = 1;
out:
	oauth_fetch_stop(); /* no-op unless a failed start left it running */
	admin_set_oauth_reload(NULL);
	oauth_token_shutdown();
	oauth_validate_shutdown();
	oauth_stop();
	pki_shutdown();
	store_close(main_store);
	location_shutdown();
	retrans_shutdown();
	vault_krb_shutdown();
	vault_shutdown();
	while (kept) {
		struct rt_keep *k = kept;
		kept = k->next;
		if (!k->next) {
			nonce_table_free(k->rt->nonces);
			lockout_free(k->rt->lockout);
			sa_table_free(k->rt->sas);
		}
		free(k->rt);
		free(k->cfg);
		free(k);
	}
	return rc;
}
