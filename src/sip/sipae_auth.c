/*
 * [MS-SIPAE] on the SIP path: NTLM and Kerberos handshakes that create
 * security associations, verification of signed requests, and signatures
 * on everything the server sends to a client that has an SA
 * (PROTOCOLS.md §1).
 *
 *   REGISTER, no credentials      -> 401 offering Kerberos, NTLM, Digest
 *   NTLM gssapi-data=""           -> 401 NTLM opaque=.., gssapi-data=CHALLENGE
 *   NTLM opaque, AUTHENTICATE     -> SA established -> registrar -> signed 200
 *   Kerberos gssapi-data=AP-REQ   -> SA established -> registrar -> signed 200
 *   TLS-DSK gssapi-data=ClientHello -> 401 TLS-DSK opaque=.., gssapi-data=
 *                                      ServerHello..ServerHelloDone (pending SA)
 *   TLS-DSK opaque, client flight -> PKI verifies the certificate -> SA
 *                                      established -> 401 gssapi-data=Finished;
 *                                      the client's next REGISTER is signed
 *   any request, crand/cnum/response with opaque -> verified with the SA
 *
 * The vault accepts the tokens (it alone holds NT hashes and the keytab);
 * this file decides what goes on the wire. Failures look the same to the
 * client whatever the reason (a fresh challenge); the reason goes to the log.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "auth/lockout.h"
#include "auth/retrans.h"
#include "auth/sa.h"
#include "auth/sipae.h"
#include "auth/tlsdsk.h"
#include "core/b64.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/secmem.h"
#include "core/stats.h"
#include "pki/certprov.h"
#include "pki/pki.h"
#include "sip/server_int.h"
#include "store/wb.h"
#include "vault/gss.h"
#include "vault/vault_ntlm.h"
#include "vault/vault.h"

#define TOKEN_MAX ((SIPAE_MAX_GSSAPI / 4) * 3 + 3)

static bool is_register(const struct sip_tx *t)
{
	return t->m->method_id == SIP_M_REGISTER;
}

static void targetname_of(const struct sip_runtime *rt, enum sa_scheme s, char *out, size_t cap)
{
	if (s == SA_SCHEME_KERBEROS)
		snprintf(out, cap, "sip/%s", rt->cfg->fqdn);
	else
		snprintf(out, cap, "%s", rt->cfg->fqdn);
}

/* ---- TLS-DSK: the server context ---- */

/*
 * The TLS-DSK SSL_CTX ([sip] tls_cert/tls_key, [auth] tlsdsk_allow_tls10),
 * made at the first use and again when the files or the setting change (a
 * reload, a renewed certificate). Handshakes hold their own reference on
 * the SSL_CTX, so the old one may go while they finish.
 */
static pthread_mutex_t dsk_mu = PTHREAD_MUTEX_INITIALIZER;
static struct tlsdsk_server *dsk_srv;
static char dsk_id[2 * PATH_MAX + 96]; /* what dsk_srv (or the last failure) was made of */
static const struct config *dsk_cfg;   /* the files are looked at again at most once a */
static uint64_t dsk_checked_ms;	       /* second, or at once after a reload */

static void dsk_ident(const struct config *cfg, char *out, size_t cap)
{
	struct stat a, b;
	long long ma = stat(cfg->tls_cert, &a) == 0 ? (long long)a.st_mtime : -1;
	long long mb = stat(cfg->tls_key, &b) == 0 ? (long long)b.st_mtime : -1;

	snprintf(out, cap, "%s|%s|%lld|%lld|%d", cfg->tls_cert, cfg->tls_key, ma, mb,
		 cfg->tlsdsk_allow_tls10);
}

/* Under dsk_mu: the current server context, or NULL (the error is logged
 * once per change of the files). */
static struct tlsdsk_server *dsk_current(const struct config *cfg)
{
	char id[sizeof(dsk_id)], err[512];
	struct tlsdsk_server *s;
	uint64_t now = clock_mono_ms();

	if (cfg == dsk_cfg && now - dsk_checked_ms < 1000)
		return dsk_srv;
	dsk_cfg = cfg;
	dsk_checked_ms = now;
	dsk_ident(cfg, id, sizeof(id));
	if (strcmp(id, dsk_id) == 0)
		return dsk_srv;
	s = tlsdsk_server_new(cfg->tls_cert, cfg->tls_key, cfg->tlsdsk_allow_tls10, err,
			      sizeof(err));
	if (!s)
		log_err("auth.tlsdsk_unavailable", "reason=\"%s\"", err);
	tlsdsk_server_free(dsk_srv);
	dsk_srv = s;
	snprintf(dsk_id, sizeof(dsk_id), "%s", id);
	return s;
}

/* Is TLS-DSK offered (configured, and its certificate loads)? */
static bool dsk_offered(const struct sip_runtime *rt)
{
	bool ok;

	if (!rt->sas || !config_offers(rt->cfg, AUTH_SCHEME_TLSDSK))
		return false;
	pthread_mutex_lock(&dsk_mu);
	ok = dsk_current(rt->cfg) != NULL;
	pthread_mutex_unlock(&dsk_mu);
	return ok;
}

/* A new handshake context. 0, TLSDSK_BUSY or -1. */
static int dsk_begin(const struct sip_runtime *rt, struct tlsdsk **out)
{
	struct tlsdsk_server *s;
	int rc = -1;

	*out = NULL;
	pthread_mutex_lock(&dsk_mu);
	s = dsk_current(rt->cfg);
	if (s)
		rc = tlsdsk_new(s, out);
	pthread_mutex_unlock(&dsk_mu);
	return rc;
}

/* [MS-SIPAE] 2.2.2: where a client without a certificate gets one. */
static void sts_uri_of(const struct config *cfg, char *out, size_t cap)
{
	snprintf(out, cap, "https://%s:%u" CERTPROV_SOAP_PATH, cfg->fqdn,
		 cfg->n_http_listen ? (unsigned)cfg->http_listen[0].port : 8443u);
}

void sipae_challenge_lines(struct sbuf *b, const struct sip_tx *t, const char *hdr, int scheme)
{
	const struct sip_runtime *rt = t->w->rt;
	char target[300], sts[CONFIG_HOST_MAX + 96];
	struct str sts_uri = STR_NULL;
	enum sa_scheme s;

	if (scheme == AUTH_SCHEME_KERBEROS && rt->krb_ready)
		s = SA_SCHEME_KERBEROS;
	else if (scheme == AUTH_SCHEME_NTLM && rt->sas)
		s = SA_SCHEME_NTLM;
	else if (scheme == AUTH_SCHEME_TLSDSK && dsk_offered(rt))
		s = SA_SCHEME_TLSDSK;
	else
		return;
	if (s == SA_SCHEME_TLSDSK) {
		sts_uri_of(rt->cfg, sts, sizeof(sts));
		sts_uri = str_cstr(sts);
	}
	targetname_of(rt, s, target, sizeof(target));
	sipae_challenge_write(b, hdr, s, str_cstr(rt->cfg->sipae_realm), str_cstr(target),
			      rt->cfg->sipae_version, STR_NULL, STR_NULL, sts_uri);
}

static enum stats_auth_mech mech_stat(enum sa_scheme s)
{
	if (s == SA_SCHEME_TLSDSK)
		return STATS_MECH_CERTIFICATE;
	return s == SA_SCHEME_KERBEROS ? STATS_MECH_KERBEROS : STATS_MECH_NTLM;
}

void sipae_sign_write(struct sbuf *b, struct sa *sa, const struct sipae_fields *f,
		      struct str gssapi_data)
{
	static _Thread_local char buf[SIPAE_SIGBUF_MAX];
	char srand[9], snum[16], mac[2 * SA_MAC_MAX + 1];
	struct sa_info si;
	uint32_t n;
	long len;
	int hl;

	sa_get_info(sa, &si);
	n = sa_next_snum(sa);
	snprintf(snum, sizeof(snum), "%u", n);
	if (sipae_rand(srand) < 0)
		goto fail;
	len = sipae_sig_buffer(str_cstr(sa_scheme_name(si.scheme)), str_cstr(srand), str_cstr(snum),
			       str_cstr(si.realm), str_cstr(si.targetname), f, buf, sizeof(buf));
	if (len < 0)
		goto fail;
	hl = sa_sign(sa, (const uint8_t *)buf, (size_t)len, mac, sizeof(mac));
	if (hl < 0)
		goto fail;
	sipae_auth_info_write(b, si.from_407 ? "Proxy-Authentication-Info" : "Authentication-Info",
			      si.scheme, str_cstr(si.opaque), str_cstr(si.realm),
			      str_cstr(si.targetname), str_make(mac, (size_t)hl), str_cstr(srand),
			      n, gssapi_data);
	return;
fail:
	/* an unsigned message is ignored by the client: say why here */
	log_err("auth.sign_failed", "opaque=%s", si.opaque);
}

void sipae_sign_reply(struct sbuf *b, const struct sip_tx *t)
{
	static const char tail[] = "Content-Length: 0\r\n\r\n";
	struct sipae_fields f;
	struct sip_msg rm;
	char status[4];
	size_t mark = b->len;

	if (!t->sa || !sbuf_ok(b))
		return;
	/* the signature covers the reply as sent: parse what was built */
	sbuf_puts(b, tail);
	if (!sbuf_ok(b) || sip_msg_parse(&rm, b->p, b->len, false) != 0 ||
	    sipae_fields_from_msg(&rm, &f, status) != 0) {
		b->len = mark;
		b->overflow = false;
		log_err("auth.sign_failed", "reason=reply_unparsable");
		return;
	}
	b->len = mark;
	sipae_sign_write(b, t->sa, &f, t->sa_token);
}

/* ---- handshakes ---- */

static void reply_bad(const struct sip_tx *t, const char *what)
{
	char why[128];
	stats_inc(ST_SIP_BAD);
	if (t->m->method_id == SIP_M_ACK)
		return; /* never answered */
	log_info("auth.malformed", "src=%s reason=\"%s\"", t->src_addr, what);
	snprintf(why, sizeof(why), "Bad Request (%s)", what);
	reply_simple(t, 400, why, NULL);
}

static void note_failure(const struct sip_tx *t, enum sa_scheme s, const char *who,
			 const char *reason)
{
	char wbuf[LOG_VAL_MAX];
	enum lockout_state st;

	stats_inc(ST_AUTH_FAIL);
	stats_auth(mech_stat(s), STATS_AUTH_FAILURE);
	st = lockout_fail(t->w->rt->lockout, str_cstr(who), str_cstr(t->src_ip),
			  clock_mono_ms() / 1000);
	log_warn("auth.fail", "user=%s mech=%s src=%s reason=%s%s",
		 log_val(str_cstr(who), wbuf, sizeof(wbuf)), sa_scheme_name(s), t->src_addr, reason,
		 st != LOCKOUT_NONE ? " locked=1" : "");
	wb_audit("sip", "auth.fail", who, t->src_addr, reason);
}

/* The device: +sip.instance of the Contact, else the From epid. */
static void instance_of(const struct sip_tx *t, char *out, size_t cap)
{
	struct sip_contact c;
	struct sip_nameaddr from;
	struct sip_hdr_iter it;
	struct str v;

	out[0] = '\0';
	sip_hdr_iter_init(&it, t->m, SIP_H_CONTACT);
	if (sip_hdr_iter_next(&it, &v) > 0 && sip_msg_contact(t->m, v, &c) == 0 && c.instance.len) {
		snprintf(out, cap, "%.*s", STR_FMT(c.instance));
		return;
	}
	if (sip_msg_from(t->m, &from) == 0) {
		struct str p = from.params;
		const char *e = memmem(p.p, p.len, "epid=", 5);
		if (e) {
			size_t n = 0, off = (size_t)(e - p.p) + 5;
			while (off + n < p.len && p.p[off + n] != ';')
				n++;
			snprintf(out, cap, "epid:%.*s", (int)n, p.p + off);
		}
	}
}

/* The user an SA may speak for: enabled, in the store. 1, 0 (refused,
 * *reason set) or -1 (store unavailable). */
static int load_user(const struct sip_tx *t, const char *aor, struct store_user *user,
		     const char **reason)
{
	int rc = vault_user_get(t->w->store, aor, user);
	if (rc == STORE_NOTFOUND) {
		*reason = "unknown_user";
		return 0;
	}
	if (rc != STORE_OK)
		return -1;
	if (!user->enabled) {
		*reason = "disabled";
		return 0;
	}
	return 1;
}

static void tempfail(const struct sip_tx *t, enum sa_scheme s, const char *reason)
{
	stats_inc(ST_AUTH_TEMPFAIL);
	stats_auth(mech_stat(s), STATS_AUTH_UNAVAILABLE);
	log_err("auth.tempfail", "mech=%s src=%s reason=%s", sa_scheme_name(s), t->src_addr,
		reason);
	reply_simple(t, 503, "Service Unavailable", "Retry-After: 5\r\n");
}

static struct sa_info new_info(const struct sip_tx *t, enum sa_scheme s)
{
	const struct sip_runtime *rt = t->w->rt;
	struct sa_info si;

	memset(&si, 0, sizeof(si));
	si.scheme = s;
	snprintf(si.realm, sizeof(si.realm), "%s", rt->cfg->sipae_realm);
	targetname_of(rt, s, si.targetname, sizeof(si.targetname));
	si.version = rt->cfg->sipae_version;
	si.from_407 = !is_register(t);
	return si;
}

/* The second leg of NTLM: the 401 carrying the CHALLENGE and the opaque. */
static void ntlm_challenge(const struct sip_tx *t)
{
	const struct sip_runtime *rt = t->w->rt;
	const struct config *cfg = rt->cfg;
	struct vault_ntlm_names names = {
	    .nb_domain = cfg->ntlm_domain,
	    .nb_computer = cfg->ntlm_computer,
	    .dns_domain = cfg->domain,
	    .dns_computer = cfg->fqdn,
	};
	uint8_t msg[1024];
	char b64[1400], mem[SIP_REPLY_MAX];
	const struct sa_mech *mech = NULL;
	void *ctx = NULL;
	struct sa_info si = new_info(t, SA_SCHEME_NTLM);
	struct sa *sa;
	struct sbuf b;
	size_t len = 0;
	long bl;

	if (vault_ntlm_challenge(&names, (uint64_t)t->now, &mech, &ctx, msg, sizeof(msg), &len) !=
	    0) {
		tempfail(t, SA_SCHEME_NTLM, "ntlm_challenge_failed");
		return;
	}
	sa = sa_begin(rt->sas, &si, mech, ctx, (uint64_t)t->now);
	bl = b64_std_encode(msg, len, b64, sizeof(b64));
	if (!sa || bl < 0) {
		if (sa)
			sa_put(sa);
		tempfail(t, SA_SCHEME_NTLM, "sa_table_full");
		return;
	}
	sbuf_init(&b, mem, sizeof(mem));
	reply_start(&b, t, is_register(t) ? 401 : 407,
		    is_register(t) ? "Unauthorized" : "Proxy Authentication Required");
	sbuf_puts(&b, sip_date_header(t->now));
	sipae_challenge_write(&b, is_register(t) ? "WWW-Authenticate" : "Proxy-Authenticate",
			      SA_SCHEME_NTLM, str_cstr(si.realm), str_cstr(si.targetname),
			      si.version, str_cstr(sa_opaque(sa)), str_make(b64, (size_t)bl),
			      STR_NULL);
	reply_finish_send(&b, t);
	stats_inc(ST_AUTH_CHALLENGE);
	log_info("auth.challenge", "mech=ntlm leg=2 opaque=%s src=%s", sa_opaque(sa), t->src_addr);
	sa_put(sa);
}

struct ntlm_accept_args {
	const struct sip_tx *t;
	const uint8_t *tok;
	size_t len;
	struct store_user *user;
	struct verdict v;
};

static int ntlm_accept_fn(void *ctx, void *arg)
{
	struct ntlm_accept_args *a = arg;
	const struct sip_runtime *rt = a->t->w->rt;

	/* [ntlm] channel_bindings: over TLS the AUTHENTICATE must be bound to
	 * our certificate (a relay through another TLS endpoint fails) */
	if (rt->ntlm_cbt && a->t->src->transport == TRANSPORT_TLS &&
	    vault_ntlm_set_channel_bindings(ctx, rt->ntlm_cbt_hash) != 0) {
		a->v = verdict_tempfail("channel_bindings");
		return 0;
	}
	a->v = vault_ntlm_accept(a->t->w->store, ctx, a->tok, a->len,
				 str_cstr(a->t->w->rt->cfg->domain), (uint64_t)a->t->now, a->user);
	return 0;
}

static int decode_token(const struct sip_tx *t, const struct sipae_creds *c, uint8_t *tok,
			size_t *len)
{
	if (b64_std_decode(c->gssapi_data.p, c->gssapi_data.len, tok, TOKEN_MAX, len) != 0 ||
	    *len == 0) {
		reply_bad(t, "gssapi-data is not base64");
		return -1;
	}
	return 0;
}

/* What identifies a request and its signature for the retransmission memory. */
static void retrans_key_sipae(const struct sip_tx *t, const struct sipae_creds *c,
			      struct retrans_key *k)
{
	const struct sip_header *cs = sip_msg_header(t->m, SIP_H_CSEQ);
	struct sip_via v;

	k->nonce = c->opaque;
	k->nc = c->cnum_str;
	k->branch = sip_msg_top_via(t->m, &v) == 0 ? v.branch : STR_NULL;
	k->call_id = sip_msg_call_id(t->m);
	k->cseq = cs ? cs->value : STR_NULL;
	k->method = t->m->method;
}

/* Verify the signature a request carries with sa. 0 or an sa_result. */
static int verify_request(const struct sip_tx *t, struct sa *sa, const struct sipae_creds *c)
{
	static _Thread_local char buf[SIPAE_SIGBUF_MAX];
	struct sipae_fields f;
	struct retrans_key rk;
	char status[4];
	long len;
	int rc;

	if (sipae_fields_from_msg(t->m, &f, status) != 0)
		return SA_E_MALFORMED;
	len = sipae_sig_buffer(c->scheme_str, c->crand, c->cnum_str, c->realm, c->targetname, &f,
			       buf, sizeof(buf));
	if (len < 0)
		return SA_E_MALFORMED;
	rc = sa_verify(sa, c->cnum, (const uint8_t *)buf, (size_t)len, c->response,
		       (uint64_t)t->now);
	if (t->src->transport != TRANSPORT_UDP)
		return rc;
	/* over UDP the same request again is a retransmission, not a replay
	 * (RFC 3261 §17.2.1): it gets the answer its first copy got */
	retrans_key_sipae(t, c, &rk);
	if (rc == SA_OK) {
		retrans_remember(&rk, clock_mono_ms() / 1000);
	} else if (rc == SA_E_REPLAY && retrans_seen(&rk, clock_mono_ms() / 1000)) {
		rc = sa_verify_retransmission(sa, (const uint8_t *)buf, (size_t)len, c->response,
					      (uint64_t)t->now);
		if (rc == SA_OK)
			log_debug("auth.retransmission", "src=%s", t->src_addr);
	}
	return rc;
}

static bool has_signature(const struct sipae_creds *c)
{
	return c->has_cnum && c->response.len && c->crand.len;
}

/* NTLM leg 3 (AUTHENTICATE). 1 authenticated, 0 answered. */
static int ntlm_complete(struct sip_tx *t, const struct sipae_creds *c, struct store_user *user)
{
	static _Thread_local uint8_t tok[TOKEN_MAX];
	struct ntlm_accept_args a;
	struct sa_info si;
	struct sa *sa;
	char inst[128], who[STORE_URI_MAX + 8];
	size_t len = 0;

	sa = sa_find(t->w->rt->sas, c->opaque, (uint64_t)t->now);
	if (!sa) {
		log_info("auth.sa_unknown", "mech=ntlm src=%s", t->src_addr);
		sipauth_challenge(t, false);
		return 0;
	}
	sa_get_info(sa, &si);
	if (si.state != SA_PENDING || si.scheme != SA_SCHEME_NTLM) {
		sa_put(sa);
		log_info("auth.sa_state", "mech=ntlm src=%s", t->src_addr);
		sipauth_challenge(t, false);
		return 0;
	}
	if (decode_token(t, c, tok, &len) < 0) {
		sa_drop(t->w->rt->sas, c->opaque);
		sa_put(sa);
		return 0;
	}
	memset(&a, 0, sizeof(a));
	a.t = t;
	a.tok = tok;
	a.len = len;
	a.user = user;
	memset(user, 0, sizeof(*user));
	sa_with_mech(sa, ntlm_accept_fn, &a);
	if (a.v.kind == VERDICT_TEMPFAIL) {
		sa_drop(t->w->rt->sas, c->opaque);
		sa_put(sa);
		tempfail(t, SA_SCHEME_NTLM, a.v.reason);
		return 0;
	}
	if (a.v.kind != VERDICT_OK) {
		snprintf(who, sizeof(who), "%s", user->uri[0] ? user->uri : "ntlm:unknown");
		note_failure(t, SA_SCHEME_NTLM, who, a.v.reason);
		sa_drop(t->w->rt->sas, c->opaque);
		sa_put(sa);
		sipauth_challenge(t, false);
		return 0;
	}
	instance_of(t, inst, sizeof(inst));
	if (sa_establish(sa, user->uri, inst, 0, NULL, NULL, (uint64_t)t->now) != 0) {
		sa_put(sa);
		sipauth_challenge(t, false);
		return 0;
	}
	if (has_signature(c)) {
		int rc = verify_request(t, sa, c);
		if (rc != SA_OK) {
			note_failure(t, SA_SCHEME_NTLM, user->uri, sa_strerror(rc));
			sa_drop(t->w->rt->sas, c->opaque);
			sa_put(sa);
			sipauth_challenge(t, false);
			return 0;
		}
	}
	stats_inc(ST_AUTH_OK);
	stats_auth(STATS_MECH_NTLM, STATS_AUTH_OK);
	lockout_success(t->w->rt->lockout, str_cstr(user->uri), str_cstr(t->src_ip),
			clock_mono_ms() / 1000);
	log_info("auth.ok", "user=%s mech=ntlm opaque=%s src=%s", user->uri, sa_opaque(sa),
		 t->src_addr);
	t->sa = sa;
	return 1;
}

/* Kerberos: one round trip. 1 authenticated, 0 answered. */
static int krb_accept(struct sip_tx *t, const struct sipae_creds *c, struct store_user *user)
{
	static _Thread_local uint8_t tok[TOKEN_MAX];
	const struct sip_runtime *rt = t->w->rt;
	const struct sa_mech *mech = NULL;
	void *ctx = NULL;
	char principal[256], aor[STORE_URI_MAX], inst[128];
	uint8_t out[VAULT_KRB_OUT_MAX];
	size_t len = 0, out_len = 0;
	uint64_t expires = 0;
	const char *reason = NULL;
	struct sa_info si;
	struct verdict v;
	struct sa *sa;
	int rc;

	if (!rt->krb_ready) {
		sipauth_challenge(t, false);
		return 0;
	}
	if (decode_token(t, c, tok, &len) < 0)
		return 0;
	principal[0] = '\0';
	v = vault_krb_accept(tok, len, "sip", &mech, &ctx, principal, sizeof(principal), &expires,
			     out, sizeof(out), &out_len);
	if (v.kind == VERDICT_TEMPFAIL) {
		tempfail(t, SA_SCHEME_KERBEROS, v.reason);
		return 0;
	}
	if (v.kind != VERDICT_OK) {
		note_failure(t, SA_SCHEME_KERBEROS, principal[0] ? principal : "krb:unknown",
			     v.reason);
		sipauth_challenge(t, false);
		return 0;
	}
	if (vault_krb_principal_to_aor(principal, rt->cfg->krb_realm, rt->cfg->domain, aor,
				       sizeof(aor)) != 0) {
		mech->free(ctx);
		note_failure(t, SA_SCHEME_KERBEROS, principal, "foreign_realm");
		sipauth_challenge(t, false);
		return 0;
	}
	rc = load_user(t, aor, user, &reason);
	if (rc <= 0) {
		mech->free(ctx);
		if (rc < 0) {
			tempfail(t, SA_SCHEME_KERBEROS, "store_unavailable");
			return 0;
		}
		note_failure(t, SA_SCHEME_KERBEROS, aor, reason);
		sipauth_challenge(t, false);
		return 0;
	}
	si = new_info(t, SA_SCHEME_KERBEROS);
	instance_of(t, inst, sizeof(inst));
	snprintf(si.user, sizeof(si.user), "%s", user->uri);
	snprintf(si.instance, sizeof(si.instance), "%s", inst);
	sa = sa_create(rt->sas, &si, mech, ctx, expires, (uint64_t)t->now);
	if (!sa) {
		tempfail(t, SA_SCHEME_KERBEROS, "sa_table_full");
		return 0;
	}
	if (has_signature(c)) {
		/* the client named no opaque yet; it cannot have signed with
		 * this SA: a signature here is verified against it anyway */
		rc = verify_request(t, sa, c);
		if (rc != SA_OK) {
			note_failure(t, SA_SCHEME_KERBEROS, user->uri, sa_strerror(rc));
			sa_drop(rt->sas, str_cstr(sa_opaque(sa)));
			sa_put(sa);
			sipauth_challenge(t, false);
			return 0;
		}
	}
	if (out_len) {
		/* mutual authentication: the AP-REP goes back with the 200 */
		static _Thread_local char tb64[4 * (VAULT_KRB_OUT_MAX + 2) / 3 + 4];
		long bl = b64_std_encode(out, out_len, tb64, sizeof(tb64));
		if (bl > 0)
			t->sa_token = str_make(tb64, (size_t)bl);
	}
	stats_inc(ST_AUTH_OK);
	stats_auth(STATS_MECH_KERBEROS, STATS_AUTH_OK);
	log_info("auth.ok", "user=%s mech=kerberos opaque=%s src=%s", user->uri, sa_opaque(sa),
		 t->src_addr);
	t->sa = sa;
	return 1;
}

/* ---- TLS-DSK handshake legs ---- */

#define DSK_B64_MAX (4 * ((TLSDSK_MAX_OUT + 2) / 3) + 4)

/* The 401 (407) of a TLS-DSK leg: our records and the SA's opaque. */
static void dsk_reply(const struct sip_tx *t, const struct sa_info *si, const char *opaque,
		      const uint8_t *out, size_t outlen, int leg)
{
	static _Thread_local char b64[DSK_B64_MAX];
	static _Thread_local char mem[SIP_REPLY_MAX];
	char sts[CONFIG_HOST_MAX + 96];
	struct sbuf b;
	long bl = 0;

	if (outlen) {
		bl = b64_std_encode(out, outlen, b64, sizeof(b64));
		if (bl < 0) {
			tempfail(t, SA_SCHEME_TLSDSK, "tlsdsk_token_too_large");
			return;
		}
	}
	sts_uri_of(t->w->rt->cfg, sts, sizeof(sts));
	sbuf_init(&b, mem, sizeof(mem));
	reply_start(&b, t, is_register(t) ? 401 : 407,
		    is_register(t) ? "Unauthorized" : "Proxy Authentication Required");
	sbuf_puts(&b, sip_date_header(t->now));
	sipae_challenge_write(&b, is_register(t) ? "WWW-Authenticate" : "Proxy-Authenticate",
			      SA_SCHEME_TLSDSK, str_cstr(si->realm), str_cstr(si->targetname),
			      si->version, str_cstr(opaque), str_make(b64, (size_t)bl),
			      str_cstr(sts));
	reply_finish_send(&b, t);
	stats_inc(ST_AUTH_CHALLENGE);
	log_info("auth.challenge", "mech=tls-dsk leg=%d opaque=%s bytes=%zu src=%s", leg, opaque,
		 outlen, t->src_addr);
}

/* A PKI verdict as a log token. */
static const char *pki_reason(int rc)
{
	switch (rc) {
	case PKI_VERIFY_UNTRUSTED:
		return "untrusted";
	case PKI_VERIFY_EXPIRED:
		return "expired";
	case PKI_VERIFY_REVOKED:
		return "revoked";
	case PKI_VERIFY_NO_USER:
		return "no_user";
	default:
		return "other";
	}
}

/* A TLS-DSK failure: the pending SA goes, the client gets a fresh challenge
 * (or 503 when the PKI could not decide). */
static int dsk_refuse(struct sip_tx *t, struct sa *sa, const char *opaque, const char *who, int rc,
		      int pki_rc)
{
	char reason[96];

	if (sa) {
		sa_drop(t->w->rt->sas, str_cstr(opaque));
		sa_put(sa);
	}
	if (rc == TLSDSK_E_UNAVAILABLE) {
		tempfail(t, SA_SCHEME_TLSDSK, "certificate_status_unavailable");
		return 0;
	}
	if (rc == TLSDSK_E_CERT)
		snprintf(reason, sizeof(reason), "%s:%s", tlsdsk_strerror(rc), pki_reason(pki_rc));
	else
		snprintf(reason, sizeof(reason), "%s", tlsdsk_strerror(rc));
	note_failure(t, SA_SCHEME_TLSDSK, who, reason);
	sipauth_challenge(t, false);
	return 0;
}

/* TLS-DSK leg 1: the ClientHello starts a pending SA. Always answered. */
static int dsk_first_leg(struct sip_tx *t, const struct sipae_creds *c)
{
	static _Thread_local uint8_t tok[TOKEN_MAX], out[TLSDSK_MAX_OUT];
	const struct sip_runtime *rt = t->w->rt;
	struct sa_info si = new_info(t, SA_SCHEME_TLSDSK);
	struct tlsdsk *ctx = NULL;
	size_t len = 0, outlen = 0;
	struct sa *sa;
	int rc;

	if (decode_token(t, c, tok, &len) < 0)
		return 0;
	rc = dsk_begin(rt, &ctx);
	if (rc != 0) {
		tempfail(t, SA_SCHEME_TLSDSK,
			 rc == TLSDSK_BUSY ? "tlsdsk_handshakes_full" : "tlsdsk_unavailable");
		return 0;
	}
	rc = tlsdsk_step(ctx, tok, len, out, sizeof(out), &outlen);
	if (rc != TLSDSK_CONTINUE) {
		tlsdsk_free(ctx);
		return dsk_refuse(t, NULL, "", "tlsdsk:unknown",
				  rc == TLSDSK_DONE ? TLSDSK_E_PROTOCOL : rc, 0);
	}
	sa = sa_begin(rt->sas, &si, &tlsdsk_sa_mech, ctx, (uint64_t)t->now);
	if (!sa) {
		tempfail(t, SA_SCHEME_TLSDSK, "sa_table_full");
		return 0;
	}
	dsk_reply(t, &si, sa_opaque(sa), out, outlen, 1);
	sa_put(sa);
	return 0;
}

struct dsk_leg_args {
	const struct sip_tx *t;
	const uint8_t *tok;
	size_t len;
	uint8_t *out;
	size_t outlen;
	char user[STORE_URI_MAX];
	int64_t not_after;
	int pki_rc;
	char desc[128];
};

/* Under the SA's lock: one leg, and the PKI once the handshake is done. */
static int dsk_leg_fn(void *ctx, void *arg)
{
	struct dsk_leg_args *a = arg;
	int rc = tlsdsk_step(ctx, a->tok, a->len, a->out, TLSDSK_MAX_OUT, &a->outlen);

	if (rc != TLSDSK_DONE)
		return rc;
	snprintf(a->desc, sizeof(a->desc), "%s", tlsdsk_describe(ctx));
	return tlsdsk_accept_peer(ctx, a->t->w->store, (int64_t)a->t->now, a->user, sizeof(a->user),
				  &a->not_after, &a->pki_rc);
}

/* The completing leg's transaction, for the retransmission memory (the
 * same branch, Call-ID and CSeq: RFC 3261 §17.2.1). */
static void dsk_retrans_key(const struct sip_tx *t, const struct sipae_creds *c,
			    struct retrans_key *k)
{
	retrans_key_sipae(t, c, k);
	k->nc = STR_LIT("tls-dsk-final");
}

struct dsk_again_args {
	const uint8_t *tok;
	size_t len;
	uint8_t *out;
	size_t outlen;
};

static int dsk_again_fn(void *ctx, void *arg)
{
	struct dsk_again_args *a = arg;
	return tlsdsk_final_again(ctx, a->tok, a->len, a->out, TLSDSK_MAX_OUT, &a->outlen);
}

/* Over UDP, the leg that completed the handshake again (RFC 3261 §17.2.1):
 * its first answer again; anything else on an established SA is
 * challenged. Takes the reference on sa. Always answered. */
static int dsk_final_again(struct sip_tx *t, const struct sipae_creds *c, struct sa *sa,
			   const struct sa_info *si, const char *opaque)
{
	static _Thread_local uint8_t tok[TOKEN_MAX], out[TLSDSK_MAX_OUT];
	struct dsk_again_args a = {tok, 0, out, 0};
	struct retrans_key rk;

	dsk_retrans_key(t, c, &rk);
	if (!retrans_seen(&rk, clock_mono_ms() / 1000) ||
	    b64_std_decode(c->gssapi_data.p, c->gssapi_data.len, tok, TOKEN_MAX, &a.len) != 0 ||
	    sa_with_mech(sa, dsk_again_fn, &a) != 0) {
		sa_put(sa);
		log_info("auth.sa_state", "mech=tls-dsk src=%s", t->src_addr);
		sipauth_challenge(t, false);
		return 0;
	}
	log_debug("auth.retransmission", "mech=tls-dsk opaque=%s src=%s", opaque, t->src_addr);
	dsk_reply(t, si, opaque, out, a.outlen, 3);
	sa_put(sa);
	return 0;
}

/* The PKI accepted the client certificate: the SA is established and our
 * Finished goes back in a 401. Takes the reference on sa. Always answered. */
static int dsk_established(struct sip_tx *t, const struct sipae_creds *c, struct sa *sa,
			   const struct sa_info *si, const struct dsk_leg_args *a)
{
	char inst[128], wbuf[LOG_VAL_MAX];

	instance_of(t, inst, sizeof(inst));
	if (sa_establish(sa, a->user, inst, a->not_after > 0 ? (uint64_t)a->not_after : 0, NULL,
			 NULL, (uint64_t)t->now) != 0) {
		sa_put(sa);
		sipauth_challenge(t, false);
		return 0;
	}
	stats_inc(ST_AUTH_OK);
	stats_auth(STATS_MECH_CERTIFICATE, STATS_AUTH_OK);
	lockout_success(t->w->rt->lockout, str_cstr(a->user), str_cstr(t->src_ip),
			clock_mono_ms() / 1000);
	log_info("auth.ok", "user=%s mech=tls-dsk opaque=%s tls=\"%s\" src=%s",
		 log_val(str_cstr(a->user), wbuf, sizeof(wbuf)), si->opaque, a->desc, t->src_addr);
	if (t->src->transport == TRANSPORT_UDP) {
		struct retrans_key rk;
		dsk_retrans_key(t, c, &rk);
		retrans_remember(&rk, clock_mono_ms() / 1000);
	}
	dsk_reply(t, si, si->opaque, a->out, a->outlen, 3);
	sa_put(sa);
	return 0;
}

/* TLS-DSK leg 2 and later, on the pending SA the opaque names. The leg
 * that completes the handshake establishes the SA; its 401 carries our
 * Finished, and the client's next request is signed. Always answered. */
static int dsk_next_leg(struct sip_tx *t, const struct sipae_creds *c)
{
	static _Thread_local uint8_t tok[TOKEN_MAX], out[TLSDSK_MAX_OUT];
	static _Thread_local struct dsk_leg_args a;
	char opaque[SA_OPAQUE_LEN + 1];
	struct sa_info si;
	struct sa *sa;
	size_t len = 0;
	int rc;

	sa = sa_find(t->w->rt->sas, c->opaque, (uint64_t)t->now);
	if (!sa) {
		log_info("auth.sa_unknown", "mech=tls-dsk src=%s", t->src_addr);
		sipauth_challenge(t, false);
		return 0;
	}
	sa_get_info(sa, &si);
	snprintf(opaque, sizeof(opaque), "%s", si.opaque);
	if (si.state == SA_ESTABLISHED && si.scheme == SA_SCHEME_TLSDSK &&
	    t->src->transport == TRANSPORT_UDP)
		return dsk_final_again(t, c, sa, &si, opaque);
	if (si.state != SA_PENDING || si.scheme != SA_SCHEME_TLSDSK) {
		sa_put(sa);
		log_info("auth.sa_state", "mech=tls-dsk src=%s", t->src_addr);
		sipauth_challenge(t, false);
		return 0;
	}
	if (decode_token(t, c, tok, &len) < 0) {
		sa_drop(t->w->rt->sas, str_cstr(opaque));
		sa_put(sa);
		return 0;
	}
	memset(&a, 0, sizeof(a));
	a.t = t;
	a.tok = tok;
	a.len = len;
	a.out = out;
	rc = sa_with_mech(sa, dsk_leg_fn, &a);
	if (rc == TLSDSK_CONTINUE) {
		dsk_reply(t, &si, opaque, out, a.outlen, 2);
		sa_put(sa);
		return 0;
	}
	if (rc != 0)
		return dsk_refuse(t, sa, opaque, a.user[0] ? a.user : "tlsdsk:unknown", rc,
				  a.pki_rc);
	return dsk_established(t, c, sa, &si, &a);
}

/* A signed request with an established SA. 1 authenticated, 0 answered. */
static int signed_request(struct sip_tx *t, const struct sipae_creds *c, struct store_user *user)
{
	struct sa_info si;
	const char *reason = NULL;
	struct sa *sa;
	int rc;

	sa = sa_find(t->w->rt->sas, c->opaque, (uint64_t)t->now);
	if (!sa) {
		/* expired or dropped: the client signs in again */
		log_info("auth.sa_unknown", "src=%s", t->src_addr);
		sipauth_challenge(t, false);
		return 0;
	}
	sa_get_info(sa, &si);
	if (si.state != SA_ESTABLISHED || si.scheme != c->scheme ||
	    !str_eq_cstr(c->realm, si.realm) || !str_eq_cstr(c->targetname, si.targetname)) {
		sa_put(sa);
		log_info("auth.sa_mismatch", "src=%s", t->src_addr);
		sipauth_challenge(t, false);
		return 0;
	}
	rc = verify_request(t, sa, c);
	if (rc != SA_OK) {
		stats_auth(STATS_MECH_SIGNATURE,
			   rc == SA_E_REPLAY ? STATS_AUTH_REPLAY : STATS_AUTH_FAILURE);
		log_warn("auth.bad_signature", "user=%s opaque=%s src=%s reason=%s", si.user,
			 si.opaque, t->src_addr, sa_strerror(rc));
		sa_put(sa);
		sipauth_challenge(t, false);
		return 0;
	}
	rc = load_user(t, si.user, user, &reason);
	if (rc <= 0) {
		if (rc < 0) {
			sa_put(sa);
			tempfail(t, si.scheme, "store_unavailable");
			return 0;
		}
		/* the user was deleted or disabled since: the SA goes too */
		log_warn("auth.sa_revoked", "user=%s reason=%s", si.user, reason);
		sa_drop(t->w->rt->sas, c->opaque);
		sa_put(sa);
		sipauth_challenge(t, false);
		return 0;
	}
	stats_auth(STATS_MECH_SIGNATURE, STATS_AUTH_OK);
	t->sa = sa;
	return 1;
}

/* The first [MS-SIPAE] credentials for our realm, if any. 1, 0, -1 (400 sent). */
static int find_sipae(const struct sip_tx *t, struct sipae_creds *c)
{
	static const enum sip_hdr ids[2] = {SIP_H_AUTHORIZATION, SIP_H_PROXY_AUTHORIZATION};
	struct str realm = str_cstr(t->w->rt->cfg->sipae_realm);

	for (int k = 0; k < 2; k++) {
		for (const struct sip_header *h = sip_msg_header(t->m, ids[k]); h;
		     h = sip_msg_next_header(t->m, h)) {
			int rc = sipae_parse_credentials(h->value, c);
			if (rc == SIPAE_E_SCHEME)
				continue;
			if (rc < 0) {
				char why[96];
				snprintf(why, sizeof(why), "Authorization: %s", sipae_strerror(rc));
				reply_bad(t, why);
				return -1;
			}
			if (!str_eq(c->realm, realm))
				continue;
			return 1;
		}
	}
	return 0;
}

int sipae_check(struct sip_tx *t, struct store_user *user)
{
	const struct sip_runtime *rt = t->w->rt;
	struct sipae_creds c;
	int rc;

	if (!rt->sas)
		return -1;
	rc = find_sipae(t, &c);
	if (rc <= 0)
		return rc < 0 ? 0 : -1;
	if ((c.scheme == SA_SCHEME_NTLM && !config_offers(rt->cfg, AUTH_SCHEME_NTLM)) ||
	    (c.scheme == SA_SCHEME_KERBEROS && !rt->krb_ready) ||
	    (c.scheme == SA_SCHEME_TLSDSK &&
	     (c.has_gssapi_data ? !dsk_offered(rt)
				: !config_offers(rt->cfg, AUTH_SCHEME_TLSDSK)))) {
		log_info("auth.scheme_not_offered", "scheme=%s src=%s", sa_scheme_name(c.scheme),
			 t->src_addr);
		sipauth_challenge(t, false);
		return 0;
	}
	if (c.version && c.version != 3 && c.version != 4) {
		reply_bad(t, "Authorization: version must be 3 or 4");
		return 0;
	}
	if (c.has_gssapi_data) {
		if (c.scheme == SA_SCHEME_KERBEROS)
			return krb_accept(t, &c, user);
		if (c.scheme == SA_SCHEME_TLSDSK) {
			if (c.gssapi_data.len == 0) {
				sipauth_challenge(t, false); /* a ClientHello is needed */
				return 0;
			}
			return c.opaque.len ? dsk_next_leg(t, &c) : dsk_first_leg(t, &c);
		}
		if (c.gssapi_data.len == 0 || c.opaque.len == 0) {
			ntlm_challenge(t);
			return 0;
		}
		return ntlm_complete(t, &c, user);
	}
	if (has_signature(&c) && c.opaque.len)
		return signed_request(t, &c, user);
	reply_bad(t, "Authorization: neither gssapi-data nor a signature");
	return 0;
}

int sipae_unsigned_from_sa_flow(const struct sip_tx *t)
{
	static _Thread_local struct location_binding b[4];
	struct sip_nameaddr from;
	char aor[LOC_AOR_MAX];
	size_t n;

	if (!t->w->rt->sas || t->sa || t->m->method_id == SIP_M_REGISTER ||
	    sip_msg_from(t->m, &from) != 0 || sip_aor_from_uri(&from.uri, aor, sizeof(aor)) != 0)
		return 0;
	n = location_lookup(str_cstr(aor), t->now, b, 4);
	for (size_t i = 0; i < n; i++) {
		if (!b[i].sa_opaque[0] || b[i].flow.transport != t->src->transport ||
		    b[i].flow.conn_id != t->src->conn_id || b[i].flow.addrlen != t->src->addrlen ||
		    memcmp(&b[i].flow.addr, &t->src->addr, t->src->addrlen) != 0)
			continue;
		log_warn("auth.unsigned", "user=%s src=%s method=%.*s", aor, t->src_addr,
			 (int)(t->m->method.len > 16 ? 16 : t->m->method.len), t->m->method.p);
		if (t->m->method_id == SIP_M_ACK || t->m->method_id == SIP_M_CANCEL)
			return 1; /* dropped silently */
		sipauth_challenge(t, false);
		return 1;
	}
	return 0;
}
