/*
 * Digest authentication of SIP requests (RFC 3261 §22, RFC 7616, RFC 8760).
 * Decides challenge / accept / refuse; the vault checks the response, the
 * nonce module checks freshness and replay, lockout counts failures.
 * Unknown user, disabled user and wrong password produce the same answer
 * (a fresh challenge); the reason goes only to the log and the audit trail.
 */
#include <stdio.h>
#include <string.h>

#include "auth/digest.h"
#include "auth/lockout.h"
#include "auth/nonce.h"
#include "auth/retrans.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/stats.h"
#include "sip/server_int.h"
#include "store/wb.h"
#include "vault/vault.h"

/*
 * The nonce for a challenge. Over UDP a retransmission of the same request
 * (same branch, Call-ID, CSeq) gets the nonce its first copy got, so the
 * client sees the same 401 again (RFC 3261 §17.2.1) instead of a second,
 * different challenge after it already answered the first.
 */
static int challenge_nonce(const struct sip_tx *t, char *nonce, size_t cap)
{
	struct str realm = str_cstr(t->w->rt->cfg->domain);
	const struct sip_header *cs = sip_msg_header(t->m, SIP_H_CSEQ);
	uint64_t mono = clock_mono_ms() / 1000, stamp = 0;
	struct retrans_key k;
	struct sip_via v;

	if (t->src->transport != TRANSPORT_UDP)
		return nonce_make(realm, t->now, nonce, cap);
	memset(&k, 0, sizeof(k));
	k.branch = sip_msg_top_via(t->m, &v) == 0 ? v.branch : STR_NULL;
	k.call_id = sip_msg_call_id(t->m);
	k.cseq = cs ? cs->value : STR_NULL;
	k.method = t->m->method;
	stamp = nonce_new_stamp(t->now);
	if (!stamp)
		return -1;
	retrans_stamp(&k, mono, &stamp); /* a retransmission: its first stamp */
	return nonce_from_stamp(realm, stamp, nonce, cap);
}

void sipauth_challenge(const struct sip_tx *t, bool stale)
{
	if (t->m->method_id == SIP_M_ACK || t->m->method_id == SIP_M_CANCEL) {
		/* never challenged ([MS-SIPAE], RFC 3261 §22.1): dropped */
		log_info("auth.dropped", "method=%.*s src=%s", (int)t->m->method.len,
			 t->m->method.p, t->src_addr);
		return;
	}
	const struct sip_runtime *rt = t->w->rt;
	const struct config *cfg = rt->cfg;
	bool reg = t->m->method_id == SIP_M_REGISTER;
	const char *hdr = reg ? "WWW-Authenticate" : "Proxy-Authenticate";
	char nonce[NONCE_LEN + 1];
	char mem[SIP_REPLY_MAX];
	struct sbuf b;

	if (challenge_nonce(t, nonce, sizeof(nonce)) < 0) {
		reply_simple(t, 500, "Server Internal Error", NULL);
		return;
	}
	sbuf_init(&b, mem, sizeof(mem));
	reply_start(&b, t, reg ? 401 : 407, reg ? "Unauthorized" : "Proxy Authentication Required");
	/* [MS-SIPAE] §3.2.5: the 401 carries a Date (clients check their skew) */
	if (rt->krb_ready || config_offers(cfg, AUTH_SCHEME_NTLM) ||
	    config_offers(cfg, AUTH_SCHEME_TLSDSK))
		sbuf_puts(&b, sip_date_header(t->now));
	for (size_t k = 0; k < cfg->n_auth_schemes; k++) {
		if (cfg->auth_schemes[k] != AUTH_SCHEME_DIGEST) {
			sipae_challenge_lines(&b, t, hdr, (int)cfg->auth_schemes[k]);
			continue;
		}
		for (size_t i = 0; i < cfg->n_digest_algs; i++)
			digest_challenge_write(&b, hdr, str_cstr(cfg->domain), str_cstr(nonce),
					       str_cstr(rt->opaque), cfg->digest_algs[i],
					       cfg->digest_sess[i], cfg->digest_qop_auth_int,
					       stale);
	}
	reply_finish_send(&b, t);
	stats_inc(stale ? ST_AUTH_STALE : ST_AUTH_CHALLENGE);
	if (stale)
		stats_auth(STATS_MECH_DIGEST, STATS_AUTH_STALE);
	log_info("auth.challenge", "code=%d stale=%d src=%s", reg ? 401 : 407, stale, t->src_addr);
}

/* The identity failures are counted against: sip:user@domain. */
static void identity_key(const struct digest_creds *c, struct str realm, char *out, size_t cap)
{
	long at = str_chr(c->username, '@');
	size_t o = 0;

	/* by hand, not snprintf: once per authenticated request */
	if (cap < 5) {
		if (cap)
			out[0] = '\0';
		return;
	}
	memcpy(out, "sip:", 4);
	o = 4;
	for (size_t i = 0; i < c->username.len && o + 1 < cap; i++)
		out[o++] = c->username.p[i];
	if (at < 0 && o + 1 < cap) {
		out[o++] = '@';
		for (size_t i = 0; i < realm.len && o + 1 < cap; i++)
			out[o++] = realm.p[i];
	}
	out[o] = '\0';
	for (char *p = strchr(out, '@'); p && *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + 32);
}

static void refuse_locked(const struct sip_tx *t, const char *who, enum lockout_state st,
			  uint32_t retry)
{
	char extra[64];
	char wbuf[LOG_VAL_MAX];

	stats_inc(ST_AUTH_LOCKED);
	stats_auth(STATS_MECH_DIGEST, STATS_AUTH_LOCKED);
	snprintf(extra, sizeof(extra), "Retry-After: %u\r\n", retry ? retry : 1);
	log_warn("auth.locked", "user=%s src=%s by=%s retry_after=%u",
		 log_val(str_cstr(who), wbuf, sizeof(wbuf)), t->src_addr,
		 st == LOCKOUT_SOURCE ? "source" : "user", retry);
	reply_simple(t, 403, "Forbidden (too many failed attempts)", extra);
}

/* Which parameter a DIGEST_E_MISSING / DIGEST_E_DUPLICATE is about, so the
 * 400's reason phrase and the log name it (RFC 7616 §3.4 fields). */
static const char *const digest_fields[] = {"username", "realm",  "nonce", "uri",	"response",
					    "qop",	"cnonce", "nc",	   "algorithm", "opaque"};
#define N_DIGEST_FIELDS (sizeof(digest_fields) / sizeof(digest_fields[0]))

struct field_seen {
	unsigned char n[N_DIGEST_FIELDS];
};

static int note_field(void *ctx, struct str name, struct str val, bool quoted)
{
	struct field_seen *fs = ctx;
	(void)val;
	(void)quoted;
	for (size_t i = 0; i < N_DIGEST_FIELDS; i++)
		if (str_caseeq_cstr(name, digest_fields[i]) && fs->n[i] < 2)
			fs->n[i]++;
	return 0;
}

static const char *digest_problem_field(struct str value, int err)
{
	struct field_seen fs = {{0}};
	struct str scheme;

	if (auth_params_parse(value, &scheme, note_field, &fs) != 0)
		return NULL;
	for (size_t i = 0; i < N_DIGEST_FIELDS; i++) {
		if (err == DIGEST_E_DUPLICATE && fs.n[i] > 1)
			return digest_fields[i];
		if (err == DIGEST_E_MISSING && i < 5 && fs.n[i] == 0)
			return digest_fields[i];
	}
	if (err == DIGEST_E_MISSING && fs.n[5]) /* qop needs cnonce and nc */
		return !fs.n[6] ? "cnonce" : !fs.n[7] ? "nc" : NULL;
	return NULL;
}

/* Find our realm's Digest credentials. 1 found, 0 none, -1 answered 400. */
static int find_credentials(const struct sip_tx *t, struct digest_creds *c)
{
	const struct sip_msg *m = t->m;
	enum sip_hdr id =
	    m->method_id == SIP_M_REGISTER ? SIP_H_AUTHORIZATION : SIP_H_PROXY_AUTHORIZATION;
	struct str realm = str_cstr(t->w->rt->cfg->domain);
	char why[96];

	for (const struct sip_header *h = sip_msg_header(m, id); h; h = sip_msg_next_header(m, h)) {
		int rc = digest_parse_credentials(h->value, c);
		if (rc == DIGEST_E_SCHEME)
			continue;
		if (rc < 0) {
			const char *f = digest_problem_field(h->value, rc);
			stats_inc(ST_SIP_BAD);
			log_info("auth.malformed", "src=%s reason=\"%s%s%s\"", t->src_addr,
				 digest_strerror(rc), f ? ": " : "", f ? f : "");
			snprintf(why, sizeof(why), "Bad Request (Authorization: %s%s%s)",
				 digest_strerror(rc), f ? ": " : "", f ? f : "");
			reply_simple(t, 400, why, NULL);
			return -1;
		}
		if (!str_eq(c->realm, realm)) {
			char rbuf[LOG_VAL_MAX];
			log_info("auth.other_realm", "realm=%s src=%s",
				 log_val(c->realm, rbuf, sizeof(rbuf)), t->src_addr);
			continue;
		}
		return 1;
	}
	return 0;
}

static void record_failure(const struct sip_tx *t, const char *who, const char *reason)
{
	struct lockout *lo = t->w->rt->lockout;
	char wbuf[LOG_VAL_MAX];
	enum lockout_state st;

	stats_inc(ST_AUTH_FAIL);
	stats_auth(STATS_MECH_DIGEST, STATS_AUTH_FAILURE);
	st = lockout_fail(lo, str_cstr(who), str_cstr(t->src_ip), clock_mono_ms() / 1000);
	log_warn("auth.fail", "user=%s src=%s reason=%s%s",
		 log_val(str_cstr(who), wbuf, sizeof(wbuf)), t->src_addr, reason,
		 st != LOCKOUT_NONE ? " locked=1" : "");
	wb_audit("sip", "auth.fail", who, t->src_addr, reason);
}

static void retrans_key_of(const struct sip_tx *t, const struct digest_creds *c,
			   struct retrans_key *k)
{
	const struct sip_header *cs = sip_msg_header(t->m, SIP_H_CSEQ);
	struct sip_via v;

	k->nonce = c->nonce;
	k->nc = c->nc_str;
	k->branch = sip_msg_top_via(t->m, &v) == 0 ? v.branch : STR_NULL;
	k->call_id = sip_msg_call_id(t->m);
	k->cseq = cs ? cs->value : STR_NULL;
	k->method = t->m->method;
}

int sipauth_check(const struct sip_tx *t, struct store_user *user)
{
	const struct sip_runtime *rt = t->w->rt;
	struct str realm = str_cstr(rt->cfg->domain);
	struct digest_creds c;
	char who[STORE_URI_MAX + 8];
	enum lockout_state st;
	enum nonce_status ns;
	struct verdict v;
	uint32_t retry = 0;
	uint64_t mono = clock_mono_ms() / 1000;
	struct retrans_key rk;
	int rc;

	rc = find_credentials(t, &c);
	if (rc < 0)
		return 0;
	if (rc == 0 || !config_offers(rt->cfg, AUTH_SCHEME_DIGEST)) {
		sipauth_challenge(t, false);
		return 0;
	}
	identity_key(&c, realm, who, sizeof(who));
	/* per-source limits first, then per-user (lockout.h) */
	st = lockout_check(rt->lockout, str_cstr(who), str_cstr(t->src_ip), mono, &retry);
	if (st != LOCKOUT_NONE) {
		refuse_locked(t, who, st, retry);
		return 0;
	}
	/* RFC 7616 §3.4.6: the uri must be the Request-URI */
	if (!str_eq(c.uri, t->m->ruri)) {
		stats_inc(ST_SIP_BAD);
		log_info("auth.uri_mismatch", "src=%s", t->src_addr);
		reply_simple(t, 400, "Bad Request (Authorization uri does not match Request-URI)",
			     NULL);
		return 0;
	}
	if (!str_eq(c.opaque, str_cstr(rt->opaque))) {
		log_info("auth.bad_opaque", "src=%s", t->src_addr);
		sipauth_challenge(t, false);
		return 0;
	}
	ns = nonce_check(rt->nonces, c.nonce, realm, t->now);
	if (ns == NONCE_INVALID) {
		log_info("auth.bad_nonce", "src=%s", t->src_addr);
		sipauth_challenge(t, false);
		return 0;
	}
	/* a stale nonce is still checked: stale=true only tells a client that
	 * knows the password to retry with a fresh nonce (RFC 7616 §3.3); a
	 * wrong password on an old nonce is a failure like any other */
	v = vault_digest_verify(t->w->store, &c, t->m->method, t->m->body, realm, user);
	if (v.kind == VERDICT_TEMPFAIL) {
		stats_inc(ST_AUTH_TEMPFAIL);
		stats_auth(STATS_MECH_DIGEST, STATS_AUTH_UNAVAILABLE);
		log_err("auth.tempfail", "src=%s reason=%s", t->src_addr, v.reason);
		reply_simple(t, 503, "Service Unavailable", "Retry-After: 5\r\n");
		return 0;
	}
	if (v.kind == VERDICT_PERMFAIL) {
		record_failure(t, who, v.reason);
		sipauth_challenge(t, false);
		return 0;
	}
	if (ns == NONCE_STALE) {
		sipauth_challenge(t, true);
		return 0;
	}
	retrans_key_of(t, &c, &rk);
	ns = nonce_use(rt->nonces, c.nonce, realm, c.qop == DIGEST_QOP_NONE ? 0 : c.nc, t->now);
	if (ns == NONCE_REPLAY && retrans_seen(&rk, mono)) {
		/* the same request again (RFC 3261 §17.1.2): not a replay */
		log_debug("auth.retransmission", "src=%s", t->src_addr);
		ns = NONCE_OK;
	} else if (ns == NONCE_OK) {
		retrans_remember(&rk, mono);
	}
	if (ns == NONCE_REPLAY) {
		stats_inc(ST_AUTH_REPLAY);
		stats_auth(STATS_MECH_DIGEST, STATS_AUTH_REPLAY);
		log_warn("auth.replay", "user=%s src=%s nc=%u", user->uri, t->src_addr, c.nc);
		sipauth_challenge(t, false);
		return 0;
	}
	if (ns != NONCE_OK) {
		sipauth_challenge(t, ns == NONCE_STALE);
		return 0;
	}
	lockout_success(rt->lockout, str_cstr(who), str_cstr(t->src_ip), mono);
	stats_inc(ST_AUTH_OK);
	stats_auth(STATS_MECH_DIGEST, STATS_AUTH_OK);
	log_info("auth.ok", "user=%s mech=digest alg=%s src=%s", user->uri, digest_alg_name(c.alg),
		 t->src_addr);
	return 1;
}
