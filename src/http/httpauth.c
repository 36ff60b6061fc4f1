/*
 * HTTP user authentication (httpauth.h): Negotiate, NTLM and Digest on the
 * web services, with the same vault, nonces and lockout table as SIP.
 *
 * DESIGN: the header parser is pure and bounded (unit-tested); the
 * mechanisms call the vault, which alone sees keys and hashes. The pending
 * NTLM context of a connection hangs off its SSL object (ex_data with a
 * free callback), so it dies with the connection without a hook in http.c;
 * handlers of one connection run on one loop thread, so no lock is needed.
 *
 * Negotiate carries SPNEGO (RFC 4178, RFC 4559). An initiator that puts
 * NTLMSSP first in mechTypes (or sends an NTLM NEGOTIATE as its optimistic
 * token) runs NTLM inside SPNEGO against our own acceptor, connection-
 * oriented: NegTokenInit(NEGOTIATE) -> 401 NegTokenResp(accept-incomplete,
 * NTLMSSP, CHALLENGE) -> NegTokenResp(AUTHENTICATE [, mechListMIC]) -> 200
 * NegTokenResp(accept-completed [, our mechListMIC]). The mechListMIC is
 * NTLM connection-oriented signing (sequence 0 each way) over mechTypes as
 * the initiator sent it, kept with the pending context; it is required when
 * the AUTHENTICATE has an NTLM MIC or NTLMSSP was not the first choice.
 * An initiator that lists NTLMSSP after a mechanism we do not serve is
 * steered to it by reselection (RFC 4178 §3.2: accept-incomplete with
 * supportedMech NTLMSSP, the NEGOTIATE in its next token, MICs required).
 * Bare NTLMSSP tokens under Negotiate (Windows browsers) run the same
 * handshake unwrapped, without mechListMIC. Everything else under
 * Negotiate (Kerberos in SPNEGO, raw Kerberos) goes to the vault's Kerberos
 * acceptor as before. Without NTLM in [auth] schemes none of this applies.
 *
 * Must never log a token, a hash or a Digest response; never answer 401 for
 * an outage.
 */
#include "http/httpauth.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "auth/digest.h"
#include "auth/lockout.h"
#include "auth/nonce.h"
#include "auth/ntlm.h"
#include "auth/sa.h"
#include "auth/spnego.h"
#include "core/b64.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/sbuf.h"
#include "core/stats.h"
#include "http/http.h"
#include "pki/pki.h"
#include "sip/server.h"
#include "vault/gss.h"
#include "vault/vault.h"
#include "vault/vault_ntlm.h"

/* ---- parsing ---- */

static bool is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_b64(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

/* RFC 9110 §11.2 token68 in the standard base64 alphabet: b64 chars, then
 * '=' padding only. */
static int token68(struct str t)
{
	size_t i = 0;

	while (i < t.len && is_b64(t.p[i]))
		i++;
	if (i == 0)
		return HTTPAUTH_E_SYNTAX;
	while (i < t.len && t.p[i] == '=')
		i++;
	return i == t.len ? 0 : HTTPAUTH_E_SYNTAX;
}

int httpauth_parse(const char *value, struct httpauth_creds *out)
{
	size_t n, i = 0, s;
	struct str rest;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!value)
		return 0;
	n = strnlen(value, HTTPAUTH_HEADER_MAX + 1);
	if (n > HTTPAUTH_HEADER_MAX)
		return HTTPAUTH_E_TOO_LARGE;
	while (i < n && (value[i] == ' ' || value[i] == '\t'))
		i++;
	s = i;
	while (i < n && is_tchar(value[i]))
		i++;
	if (i == s || (i < n && value[i] != ' ' && value[i] != '\t'))
		return HTTPAUTH_E_SYNTAX;
	out->scheme_name = str_make(value + s, i - s);
	rest = str_trim(str_make(value + i, n - i));
	if (str_caseeq_cstr(out->scheme_name, "Negotiate") ||
	    str_caseeq_cstr(out->scheme_name, "NTLM")) {
		if (rest.len > HTTPAUTH_TOKEN_B64_MAX) {
			rc = HTTPAUTH_E_TOO_LARGE;
			goto fail;
		}
		rc = token68(rest);
		if (rc < 0)
			goto fail;
		out->scheme =
		    str_caseeq_cstr(out->scheme_name, "NTLM") ? HTTPAUTH_NTLM : HTTPAUTH_NEGOTIATE;
		out->param = rest;
		return 0;
	}
	if (str_caseeq_cstr(out->scheme_name, "Digest")) {
		out->scheme = HTTPAUTH_DIGEST;
		out->param = str_make(value + s, n - s);
		return 0;
	}
	out->scheme = HTTPAUTH_OTHER;
	return 0;
fail:
	memset(out, 0, sizeof(*out));
	return rc;
}

int httpauth_token_decode(struct str b64, uint8_t *out, size_t cap, size_t *len)
{
	*len = 0;
	if (b64.len == 0 || token68(b64) < 0)
		return HTTPAUTH_E_SYNTAX;
	if (b64.len > HTTPAUTH_TOKEN_B64_MAX || b64_decoded_max(b64.len) > HTTPAUTH_TOKEN_MAX + 2)
		return HTTPAUTH_E_TOO_LARGE;
	if (b64_std_decode(b64.p, b64.len, out, cap, len) != 0) {
		*len = 0;
		return HTTPAUTH_E_BASE64;
	}
	if (*len == 0 || *len > HTTPAUTH_TOKEN_MAX) {
		*len = 0;
		return HTTPAUTH_E_TOO_LARGE;
	}
	return 0;
}

int httpauth_ntlm_type(const uint8_t *tok, size_t len)
{
	static const uint8_t sig[8] = {'N', 'T', 'L', 'M', 'S', 'S', 'P', 0};
	uint32_t t;

	if (!tok || len < 12 || memcmp(tok, sig, sizeof(sig)) != 0)
		return -1;
	t = (uint32_t)tok[8] | (uint32_t)tok[9] << 8 | (uint32_t)tok[10] << 16 |
	    (uint32_t)tok[11] << 24;
	return t >= 1 && t <= 3 ? (int)t : -1;
}

int httpauth_identity(struct str name, const char *domain, char *out, size_t cap)
{
	long bs = str_chr(name, '\\'), at;
	int n;

	if (cap)
		out[0] = '\0';
	if (bs >= 0)
		name = str_make(name.p + bs + 1, name.len - (size_t)bs - 1);
	for (size_t i = 0; i < name.len; i++)
		if ((unsigned char)name.p[i] < 0x21 || name.p[i] == 0x7f)
			return -1;
	at = str_chr(name, '@');
	if (name.len == 0 || at == 0 || (at > 0 && (size_t)at + 1 == name.len))
		return -1;
	if (at > 0)
		n = snprintf(out, cap, "sip:%.*s", STR_FMT(name));
	else
		n = snprintf(out, cap, "sip:%.*s@%s", STR_FMT(name), domain);
	if (n < 0 || (size_t)n >= cap) {
		if (cap)
			out[0] = '\0';
		return -1;
	}
	for (char *p = strchr(out, '@'); p && *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + 32);
	return 0;
}

/* The value part of one "WWW-Authenticate: v\r\n" line digest.c wrote. */
static int digest_value(const struct config *cfg, size_t i, struct str nonce, struct str opaque,
			bool stale, char *out, size_t cap)
{
	static const char prefix[] = "WWW-Authenticate: ";
	char mem[HTTPAUTH_CHALLENGE_MAX + 64];
	struct sbuf b;
	const char *v;
	size_t len;

	sbuf_init(&b, mem, sizeof(mem));
	/* RFC 7616 §3.3: auth only; auth-int would need the body's hash */
	digest_challenge_write(&b, "WWW-Authenticate", str_cstr(cfg->domain), nonce, opaque,
			       cfg->digest_algs[i], cfg->digest_sess[i], false, stale);
	v = sbuf_cstr(&b);
	if (!sbuf_ok(&b) || strncmp(v, prefix, sizeof(prefix) - 1) != 0)
		return -1;
	v += sizeof(prefix) - 1;
	len = strcspn(v, "\r\n");
	if (len + 1 > cap)
		return -1;
	memcpy(out, v, len);
	out[len] = '\0';
	return 0;
}

int httpauth_challenges(const struct config *cfg, bool krb_ready, struct str nonce,
			struct str opaque, bool stale, void (*emit)(void *arg, const char *value),
			void *arg)
{
	char v[HTTPAUTH_CHALLENGE_MAX];
	bool negotiate = false;
	int rc = 0;

	/* Negotiate once, where the first mechanism SPNEGO can carry here
	 * stands: Kerberos (with a keytab) or NTLM, which do_negotiate_any
	 * accepts inside SPNEGO even without Kerberos (RFC 4559 §4) */
	for (size_t k = 0; k < cfg->n_auth_schemes; k++) {
		switch (cfg->auth_schemes[k]) {
		case AUTH_SCHEME_KERBEROS:
			if (krb_ready && !negotiate) {
				emit(arg, "Negotiate");
				negotiate = true;
			}
			break;
		case AUTH_SCHEME_NTLM:
			if (!negotiate) {
				emit(arg, "Negotiate");
				negotiate = true;
			}
			emit(arg, "NTLM");
			break;
		case AUTH_SCHEME_DIGEST:
			for (size_t i = 0; i < cfg->n_digest_algs; i++) {
				if (digest_value(cfg, i, nonce, opaque, stale, v, sizeof(v)) < 0)
					rc = -1;
				else
					emit(arg, v);
			}
			break;
		default:
			break;
		}
	}
	return rc;
}

/* ---- the pending NTLM handshake of a connection ---- */

/* mechTypes DER kept for the mechListMIC: 16 OIDs of 32 bytes fit. */
#define SPNEGO_MECH_TYPES_MAX 600

struct ntlm_pending {
	const struct sa_mech *mech;
	void *ctx;
	uint64_t born; /* monotonic seconds */
	/* NTLM inside SPNEGO (Negotiate): the initiator's mechTypes as sent,
	 * and whether the mechListMIC is required whatever the AUTHENTICATE
	 * says (NTLMSSP was not its first choice, RFC 4178 §5) */
	bool spnego;
	bool mic_required;
	bool awaiting_negotiate; /* reselected: no NTLM context yet */
	bool raw;		 /* bare NTLMSSP tokens under Negotiate, no SPNEGO */
	uint8_t mech_types[SPNEGO_MECH_TYPES_MAX];
	size_t mech_types_len;
};

static pthread_once_t ntlm_once = PTHREAD_ONCE_INIT;
static int ntlm_idx = -1;

static void ntlm_pending_free(struct ntlm_pending *p)
{
	if (!p)
		return;
	if (p->mech && p->ctx)
		p->mech->free(p->ctx);
	free(p);
}

/* OpenSSL calls this when the connection's SSL is freed (and for every
 * SSL, with ptr NULL when nothing was attached). */
static void ntlm_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			 void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	ntlm_pending_free(ptr);
}

static void ntlm_ex_init(void)
{
	ntlm_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, ntlm_ex_free);
}

/* Take the connection's pending context (it is used at most once). */
static struct ntlm_pending *ntlm_take(SSL *ssl)
{
	struct ntlm_pending *p;

	pthread_once(&ntlm_once, ntlm_ex_init);
	if (!ssl || ntlm_idx < 0)
		return NULL;
	p = SSL_get_ex_data(ssl, ntlm_idx);
	if (p)
		SSL_set_ex_data(ssl, ntlm_idx, NULL);
	return p;
}

/* Attach p to the connection (replacing an older one). 0 or -1. */
static int ntlm_put(SSL *ssl, struct ntlm_pending *p)
{
	ntlm_pending_free(ntlm_take(ssl));
	if (!ssl || ntlm_idx < 0 || SSL_set_ex_data(ssl, ntlm_idx, p) != 1)
		return -1;
	return 0;
}

/* ---- one authentication attempt ---- */

struct attempt {
	const struct http_request *req;
	struct http_response *resp;
	const struct sip_worker *w;
	const struct config *cfg;
	char ip[64];
	int64_t now;
	uint64_t mono;
};

static void emit_header(void *arg, const char *value)
{
	http_response_header(arg, "WWW-Authenticate", value);
}

/* 401 with every challenge (fresh nonce); description for a person. */
static void challenge(const struct attempt *a, bool stale, const char *error,
		      const char *description)
{
	const struct sip_runtime *rt = a->w->rt;
	char nonce[NONCE_LEN + 1];

	if (nonce_make(str_cstr(a->cfg->domain), a->now, nonce, sizeof(nonce)) < 0) {
		http_response_error(a->resp, 500, "server_error", "cannot make a nonce");
		return;
	}
	http_response_error(a->resp, 401, error, description);
	httpauth_challenges(a->cfg, vault_krb_ready(), str_cstr(nonce), str_cstr(rt->opaque), stale,
			    emit_header, a->resp);
}

static void unavailable(const struct attempt *a, enum stats_auth_mech m, const char *reason)
{
	stats_auth(m, STATS_AUTH_UNAVAILABLE);
	log_err("http.auth.tempfail", "src=%s reason=%s", a->ip, reason);
	http_response_error(a->resp, 503, "temporarily_unavailable",
			    "the user directory or the authentication service is unavailable; "
			    "retry later");
	http_response_header(a->resp, "Retry-After", "5");
}

/* The lockout key of an attempt whose user is not known ('' who): a
 * per-source pseudo user, never one key shared by every source. */
static const char *lockout_key(const struct attempt *a, const char *who, char *buf, size_t cap)
{
	if (who && who[0])
		return who;
	snprintf(buf, cap, "anon:%s", a->ip);
	return buf;
}

/* Lockout before a verification; true when refused (429 sent). */
static bool locked(const struct attempt *a, enum stats_auth_mech m, const char *who)
{
	uint32_t retry = 0;
	char rbuf[16], wbuf[LOG_VAL_MAX], kbuf[80];
	enum lockout_state st;

	who = lockout_key(a, who, kbuf, sizeof(kbuf));
	st = lockout_check(a->w->rt->lockout, str_cstr(who), str_cstr(a->ip), a->mono, &retry);
	if (st == LOCKOUT_NONE)
		return false;
	stats_auth(m, STATS_AUTH_LOCKED);
	log_warn("http.auth.locked", "user=%s src=%s by=%s retry_after=%u",
		 log_val(str_cstr(who), wbuf, sizeof(wbuf)), a->ip,
		 st == LOCKOUT_SOURCE ? "source" : "user", retry);
	snprintf(rbuf, sizeof(rbuf), "%u", retry ? retry : 1);
	http_response_error(a->resp, 429, "access_denied",
			    "too many failed sign-in attempts; retry later");
	http_response_header(a->resp, "Retry-After", rbuf);
	return true;
}

static void failed(const struct attempt *a, enum stats_auth_mech m, const char *mech,
		   const char *who, const char *reason)
{
	char wbuf[LOG_VAL_MAX], kbuf[80];
	enum lockout_state st;

	who = lockout_key(a, who, kbuf, sizeof(kbuf));
	stats_auth(m, STATS_AUTH_FAILURE);
	st = lockout_fail(a->w->rt->lockout, str_cstr(who), str_cstr(a->ip), a->mono);
	log_warn("http.auth.fail", "mech=%s user=%s src=%s reason=%s%s", mech,
		 log_val(str_cstr(who), wbuf, sizeof(wbuf)), a->ip, reason,
		 st != LOCKOUT_NONE ? " locked=1" : "");
	challenge(a, false, "invalid_credentials", "authentication failed");
}

static bool succeeded(const struct attempt *a, enum stats_auth_mech m, const char *mech,
		      const char *who, struct httpauth_result *out)
{
	lockout_success(a->w->rt->lockout, str_cstr(who), str_cstr(a->ip), a->mono);
	stats_auth(m, STATS_AUTH_OK);
	log_info("http.auth.ok", "user=%s mech=%s src=%s", out->user.uri, mech, a->ip);
	out->mech = mech;
	return true;
}

/* The user behind an AOR: 1 enabled, 0 (reason set), -1 store outage. */
static int load_user(const struct attempt *a, const char *aor, struct store_user *u,
		     const char **reason)
{
	int rc = a->w->store ? vault_user_get(a->w->store, aor, u) : STORE_UNAVAILABLE;

	if (rc == STORE_NOTFOUND || rc == STORE_INVALID) {
		*reason = "unknown_user";
		return 0;
	}
	if (rc != STORE_OK)
		return -1;
	if (!u->enabled) {
		*reason = "disabled";
		return 0;
	}
	return 1;
}

static bool do_negotiate(const struct attempt *a, const uint8_t *tok, size_t len,
			 struct httpauth_result *out)
{
	char principal[VAULT_KRB_PRINCIPAL_MAX], aor[STORE_URI_MAX], b64[1400], hv[1420];
	uint8_t rep[VAULT_KRB_OUT_MAX];
	const struct sa_mech *mech = NULL;
	const char *reason = NULL;
	void *ctx = NULL;
	uint64_t expires = 0;
	size_t rep_len = 0;
	struct verdict v;
	int rc;

	if (httpauth_ntlm_type(tok, len) > 0) {
		failed(a, STATS_MECH_NTLM, "negotiate", "", "ntlm_in_negotiate");
		return false;
	}
	if (locked(a, STATS_MECH_KERBEROS, ""))
		return false;
	principal[0] = '\0';
	v = vault_krb_accept(tok, len, "HTTP", &mech, &ctx, principal, sizeof(principal), &expires,
			     rep, sizeof(rep), &rep_len);
	if (v.kind == VERDICT_OK)
		mech->free(ctx); /* no SA on HTTP: the request is the session */
	if (v.kind == VERDICT_TEMPFAIL) {
		unavailable(a, STATS_MECH_KERBEROS, v.reason);
		return false;
	}
	if (v.kind != VERDICT_OK) {
		failed(a, STATS_MECH_KERBEROS, "negotiate", principal, v.reason);
		return false;
	}
	if (vault_krb_principal_to_aor(principal, a->cfg->krb_realm, a->cfg->domain, aor,
				       sizeof(aor)) != 0) {
		failed(a, STATS_MECH_KERBEROS, "negotiate", principal, "foreign_realm");
		return false;
	}
	rc = load_user(a, aor, &out->user, &reason);
	if (rc < 0) {
		unavailable(a, STATS_MECH_KERBEROS, "store_unavailable");
		return false;
	}
	if (rc == 0) {
		failed(a, STATS_MECH_KERBEROS, "negotiate", aor, reason);
		return false;
	}
	/* RFC 4559 §5: the final token (mutual authentication) on the 200 */
	if (rep_len && b64_std_encode(rep, rep_len, b64, sizeof(b64)) > 0) {
		snprintf(hv, sizeof(hv), "Negotiate %s", b64);
		http_response_header(a->resp, "WWW-Authenticate", hv);
	}
	return succeeded(a, STATS_MECH_KERBEROS, "negotiate", out->user.uri, out);
}

/* Leg 1 of HTTP NTLM: our CHALLENGE, remembered on the connection. */
static bool ntlm_leg1(const struct attempt *a)
{
	struct vault_ntlm_names names = {
	    .nb_domain = a->cfg->ntlm_domain,
	    .nb_computer = a->cfg->ntlm_computer,
	    .dns_domain = a->cfg->domain,
	    .dns_computer = a->cfg->fqdn,
	};
	uint8_t msg[NTLM_CHALLENGE_MAX];
	char hv[8 + 4 * NTLM_CHALLENGE_MAX / 3 + 8];
	struct ntlm_pending *p = calloc(1, sizeof(*p));
	size_t len = 0;
	long bl;

	if (!p || vault_ntlm_challenge(&names, (uint64_t)a->now, &p->mech, &p->ctx, msg,
				       sizeof(msg), &len) != 0) {
		free(p);
		unavailable(a, STATS_MECH_NTLM, "ntlm_challenge_failed");
		return false;
	}
	p->born = a->mono;
	memcpy(hv, "NTLM ", 5);
	bl = b64_std_encode(msg, len, hv + 5, sizeof(hv) - 5);
	if (bl < 0 || ntlm_put(a->req->ssl, p) < 0) {
		ntlm_pending_free(p);
		unavailable(a, STATS_MECH_NTLM, "ntlm_no_connection_state");
		return false;
	}
	http_response_error(a->resp, 401, "unauthorized", "NTLM handshake: answer the challenge");
	http_response_header(a->resp, "WWW-Authenticate", hv);
	log_info("http.auth.challenge", "mech=ntlm leg=2 src=%s", a->ip);
	return false;
}

/* The identity an AUTHENTICATE claims (for lockout), '' when unreadable. */
static void ntlm_who(const struct attempt *a, const uint8_t *tok, size_t len, char *who, size_t cap)
{
	struct ntlm_auth na;
	char user[NTLM_NAME_MAX * 2];

	who[0] = '\0';
	if (ntlm_parse_authenticate(tok, len, &na) != 0 ||
	    ntlm_utf16_to_utf8(na.user, na.user_len, user, sizeof(user)) != 0 ||
	    httpauth_identity(str_cstr(user), a->cfg->domain, who, cap) != 0)
		who[0] = '\0';
}

static uint32_t rd32le(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/*
 * libcurl's NTLM echoes the CHALLENGE's flags in its AUTHENTICATE, VERSION
 * and KEY_EXCH included, yet sends neither a Version field (its payload
 * starts at offset 64) nor a session key. Windows servers take that; the
 * vault's parser (rightly strict for MS-SIPAE) calls it malformed. When the
 * payload leaves no room for a Version (and so there can be no MIC, which
 * follows it: [MS-NLMP] 2.2.1.3), the flags are unauthenticated: clear the
 * two the message does not honour. Nothing else is touched. tok is ours.
 */
void httpauth_ntlm_fix_flags(uint8_t *tok, size_t len)
{
	uint32_t flags, min_off = UINT32_MAX;

	if (httpauth_ntlm_type(tok, len) != 3 || len < 64)
		return;
	for (size_t i = 0; i < 6; i++) {
		uint32_t flen = (uint32_t)tok[12 + 8 * i] | (uint32_t)tok[13 + 8 * i] << 8;
		if (flen && rd32le(tok + 16 + 8 * i) < min_off)
			min_off = rd32le(tok + 16 + 8 * i);
	}
	if (min_off >= 72)
		return;
	flags = rd32le(tok + 60) & ~NTLM_NEGOTIATE_VERSION;
	if (((uint32_t)tok[52] | (uint32_t)tok[53] << 8) == 0) /* no EncryptedRandomSessionKey */
		flags &= ~NTLM_NEGOTIATE_KEY_EXCH;
	tok[60] = (uint8_t)flags;
	tok[61] = (uint8_t)(flags >> 8);
	tok[62] = (uint8_t)(flags >> 16);
	tok[63] = (uint8_t)(flags >> 24);
}

static bool do_ntlm(const struct attempt *a, uint8_t *tok, size_t len, struct httpauth_result *out)
{
	int type = httpauth_ntlm_type(tok, len);
	struct ntlm_pending *p;
	char who[STORE_URI_MAX + 8];
	struct verdict v;

	if (type == 1)
		return ntlm_leg1(a);
	if (type != 3) {
		failed(a, STATS_MECH_NTLM, "ntlm", "", "malformed");
		return false;
	}
	httpauth_ntlm_fix_flags(tok, len);
	p = ntlm_take(a->req->ssl);
	if (!p || p->spnego || a->mono > p->born + HTTPAUTH_NTLM_TTL) {
		ntlm_pending_free(p);
		log_info("http.auth.ntlm_no_challenge", "src=%s", a->ip);
		challenge(a, false, "unauthorized",
			  "NTLM AUTHENTICATE without a pending challenge on this connection");
		return false;
	}
	ntlm_who(a, tok, len, who, sizeof(who));
	if (locked(a, STATS_MECH_NTLM, who)) {
		ntlm_pending_free(p);
		return false;
	}
	memset(&out->user, 0, sizeof(out->user));
	v = vault_ntlm_accept(a->w->store, p->ctx, tok, len, str_cstr(a->cfg->domain),
			      (uint64_t)a->now, &out->user);
	ntlm_pending_free(p);
	if (v.kind == VERDICT_TEMPFAIL) {
		unavailable(a, STATS_MECH_NTLM, v.reason);
		return false;
	}
	if (v.kind != VERDICT_OK) {
		failed(a, STATS_MECH_NTLM, "ntlm", who, v.reason);
		return false;
	}
	return succeeded(a, STATS_MECH_NTLM, "ntlm", who[0] ? who : out->user.uri, out);
}

/* ---- NTLM inside SPNEGO (Negotiate; RFC 4178, RFC 4559, [MS-SPNG]) ---- */

static bool is_ntlmssp(struct spnego_buf oid)
{
	return spnego_oid_eq(oid, spnego_oid_ntlmssp, sizeof(spnego_oid_ntlmssp));
}

static bool is_krb5(struct spnego_buf oid)
{
	return spnego_oid_eq(oid, spnego_oid_krb5, sizeof(spnego_oid_krb5)) ||
	       spnego_oid_eq(oid, spnego_oid_mskrb5, sizeof(spnego_oid_mskrb5));
}

enum spnego_pick {
	PICK_KERBEROS, /* the Kerberos acceptor (as before) */
	PICK_NTLM,     /* NTLM with the optimistic NEGOTIATE */
	PICK_RESELECT, /* NTLM, but the optimistic token was for another mech */
};

/*
 * What to run for an initiator's NegTokenInit. NTLM when NTLMSSP is its
 * first mechanism or its optimistic token is an NTLM NEGOTIATE; Kerberos
 * when a Kerberos OID is first and Kerberos is ready; otherwise NTLM by
 * reselection (RFC 4178 §3.2 d) when NTLMSSP is in the list at all.
 */
static enum spnego_pick spnego_choose(const struct spnego_token *st, bool krb)
{
	bool listed = false;

	if (is_ntlmssp(st->mechs[0]))
		return PICK_NTLM;
	for (size_t i = 1; i < st->n_mechs; i++)
		listed = listed || is_ntlmssp(st->mechs[i]);
	if (!listed)
		return PICK_KERBEROS;
	if (st->has_mech_token && httpauth_ntlm_type(st->mech_token.p, st->mech_token.len) == 1)
		return PICK_NTLM;
	if (krb && is_krb5(st->mechs[0]))
		return PICK_KERBEROS;
	return PICK_RESELECT;
}

/* 401 or 200 header "Negotiate <b64 of tok>"; -1 when it does not fit. */
static int negotiate_header(const struct attempt *a, const uint8_t *tok, size_t len)
{
	char hv[10 + 4 * (NTLM_CHALLENGE_MAX + 64) / 3 + 8];
	long bl;

	memcpy(hv, "Negotiate ", 10);
	bl = b64_std_encode(tok, len, hv + 10, sizeof(hv) - 10);
	if (bl < 0)
		return -1;
	http_response_header(a->resp, "WWW-Authenticate", hv);
	return 0;
}

/* Send 401 with NegTokenResp accept-incomplete [supportedMech NTLMSSP]
 * [responseToken] (or, p->raw, the bare token), and attach p to the
 * connection (freed on failure). */
static bool spnego_401(const struct attempt *a, struct ntlm_pending *p, bool with_mech,
		       const uint8_t *tok, size_t len)
{
	uint8_t resp[NTLM_CHALLENGE_MAX + 64];
	size_t rlen = 0;
	int rc = 0;

	if (p->raw) {
		/* RFC 4559 with a bare NTLMSSP token: the CHALLENGE as it is */
		if (!tok || len > sizeof(resp))
			rc = -1;
		else
			memcpy(resp, tok, len);
		rlen = len;
	} else {
		rc = spnego_build_resp(
		    SPNEGO_ACCEPT_INCOMPLETE, with_mech ? spnego_oid_ntlmssp : NULL,
		    sizeof(spnego_oid_ntlmssp), tok, len, NULL, 0, resp, sizeof(resp), &rlen);
	}
	if (rc != 0 || ntlm_put(a->req->ssl, p) < 0) {
		ntlm_pending_free(p);
		unavailable(a, STATS_MECH_NTLM, "ntlm_no_connection_state");
		return false;
	}
	http_response_error(a->resp, 401, "unauthorized",
			    "Negotiate (SPNEGO, NTLM) handshake: answer the challenge");
	if (negotiate_header(a, resp, rlen) < 0)
		http_response_header(a->resp, "WWW-Authenticate", "Negotiate");
	log_info("http.auth.challenge", "mech=negotiate inner=ntlm leg=%s src=%s",
		 tok ? "challenge" : "reselect", a->ip);
	return false;
}

/* A pending SPNEGO context for st's mechTypes, or NULL (response sent). */
static struct ntlm_pending *spnego_pending(const struct attempt *a, const struct spnego_token *st)
{
	struct ntlm_pending *p;

	if (st->mech_types_der.len > SPNEGO_MECH_TYPES_MAX) {
		failed(a, STATS_MECH_NTLM, "negotiate", "", "spnego_too_large");
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		http_response_error(a->resp, 500, "server_error", "out of memory");
		return NULL;
	}
	p->born = a->mono;
	p->spnego = true;
	/* RFC 4178 §5: a mechanism other than the initiator's first needs MICs */
	p->mic_required = !is_ntlmssp(st->mechs[0]);
	memcpy(p->mech_types, st->mech_types_der.p, st->mech_types_der.len);
	p->mech_types_len = st->mech_types_der.len;
	return p;
}

/* Our CHALLENGE for the client's NEGOTIATE, in a 401; p becomes (or stays)
 * the connection's pending context. with_mech: the first reply. */
static bool spnego_ntlm_challenge(const struct attempt *a, struct ntlm_pending *p,
				  struct spnego_buf neg, bool with_mech)
{
	struct vault_ntlm_names names = {
	    .nb_domain = a->cfg->ntlm_domain,
	    .nb_computer = a->cfg->ntlm_computer,
	    .dns_domain = a->cfg->domain,
	    .dns_computer = a->cfg->fqdn,
	};
	uint8_t msg[NTLM_CHALLENGE_MAX];
	size_t len = 0;
	int rc;

	if (httpauth_ntlm_type(neg.p, neg.len) != 1) {
		ntlm_pending_free(p);
		failed(a, STATS_MECH_NTLM, "negotiate", "", "spnego_no_ntlm_negotiate");
		return false;
	}
	rc = vault_ntlm_challenge_co(&names, (uint64_t)a->now, neg.p, neg.len, &p->mech, &p->ctx,
				     msg, sizeof(msg), &len);
	if (rc != 0) {
		ntlm_pending_free(p);
		if (rc == -2)
			failed(a, STATS_MECH_NTLM, "negotiate", "", "ntlm_negotiate_refused");
		else
			unavailable(a, STATS_MECH_NTLM, "ntlm_challenge_failed");
		return false;
	}
	p->born = a->mono;
	p->awaiting_negotiate = false;
	return spnego_401(a, p, with_mech, msg, len);
}

/* Leg 1: NegTokenInit for NTLM -> 401 NegTokenResp(accept-incomplete,
 * NTLMSSP, CHALLENGE), or with reselection (NTLMSSP, no token: the
 * optimistic token was for another mechanism; the NEGOTIATE comes next). */
static bool spnego_ntlm_leg1(const struct attempt *a, const struct spnego_token *st,
			     enum spnego_pick pick)
{
	struct ntlm_pending *p = spnego_pending(a, st);

	if (!p)
		return false;
	if (pick == PICK_RESELECT) {
		p->awaiting_negotiate = true;
		return spnego_401(a, p, true, NULL, 0);
	}
	if (!st->has_mech_token) {
		ntlm_pending_free(p);
		failed(a, STATS_MECH_NTLM, "negotiate", "", "spnego_no_ntlm_negotiate");
		return false;
	}
	return spnego_ntlm_challenge(a, p, st->mech_token, true);
}

/* The mechListMIC rules of the last leg (RFC 4178 §5, [MS-SPNG] 3.3.5.1):
 * present -> it must verify; absent -> allowed only when neither NTLMSSP's
 * place in the list nor the AUTHENTICATE's own MIC calls for one. NULL, or
 * the failure reason. */
static const char *spnego_check_mic(const struct ntlm_pending *p, const struct spnego_token *st)
{
	struct ntlm_auth na;
	bool need = p->mic_required;

	if (ntlm_parse_authenticate(st->mech_token.p, st->mech_token.len, &na) == 0 && na.has_mic)
		need = true;
	if (st->has_mic)
		return vault_ntlm_co_verify(p->ctx, p->mech_types, p->mech_types_len, st->mic.p,
					    st->mic.len) == 0
			   ? NULL
			   : "bad_mech_list_mic";
	return need ? "no_mech_list_mic" : NULL;
}

/* The final NegTokenResp: accept-completed, with our mechListMIC when the
 * client sent one (then it expects ours). 0 or -1. */
static int spnego_final(const struct attempt *a, struct ntlm_pending *p, bool with_mic)
{
	uint8_t mic[NTLM_SIG_LEN], resp[64];
	size_t mic_len = 0, rlen = 0;

	if (with_mic && vault_ntlm_co_sign(p->ctx, p->mech_types, p->mech_types_len, mic,
					   sizeof(mic), &mic_len) != 0)
		return -1;
	if (spnego_build_resp(SPNEGO_ACCEPT_COMPLETED, NULL, 0, NULL, 0, with_mic ? mic : NULL,
			      mic_len, resp, sizeof(resp), &rlen) != 0)
		return -1;
	return negotiate_header(a, resp, rlen);
}

/* The AUTHENTICATE leg: -> 200 with NegTokenResp accept-completed [+ our
 * mechListMIC], or 401. p is consumed. */
static bool spnego_ntlm_auth(const struct attempt *a, struct ntlm_pending *p,
			     const struct spnego_token *st, struct httpauth_result *out)
{
	char who[STORE_URI_MAX + 8];
	const char *reason;
	struct verdict v;

	ntlm_who(a, st->mech_token.p, st->mech_token.len, who, sizeof(who));
	if (locked(a, STATS_MECH_NTLM, who)) {
		ntlm_pending_free(p);
		return false;
	}
	memset(&out->user, 0, sizeof(out->user));
	v = vault_ntlm_accept(a->w->store, p->ctx, st->mech_token.p, st->mech_token.len,
			      str_cstr(a->cfg->domain), (uint64_t)a->now, &out->user);
	if (v.kind == VERDICT_TEMPFAIL) {
		ntlm_pending_free(p);
		unavailable(a, STATS_MECH_NTLM, v.reason);
		return false;
	}
	/* a bare NTLMSSP exchange has no mechListMIC (the NTLM MIC, if any,
	 * was checked by the vault) */
	reason = v.kind != VERDICT_OK ? v.reason : p->raw ? NULL : spnego_check_mic(p, st);
	if (reason) {
		ntlm_pending_free(p);
		failed(a, STATS_MECH_NTLM, "negotiate", who, reason);
		return false;
	}
	if (!p->raw && spnego_final(a, p, st->has_mic) < 0) {
		ntlm_pending_free(p);
		unavailable(a, STATS_MECH_NTLM, "spnego_final_failed");
		return false;
	}
	log_info("http.auth.spnego", "inner=ntlm framing=%s mech_list_mic=%s src=%s",
		 p->raw ? "raw" : "spnego", st->has_mic ? "yes" : "no", a->ip);
	ntlm_pending_free(p);
	return succeeded(a, STATS_MECH_NTLM, "negotiate", who[0] ? who : out->user.uri, out);
}

/* A NegTokenResp from the initiator: the NEGOTIATE after a reselection, or
 * the AUTHENTICATE; only on the connection that holds the handshake. */
static bool spnego_ntlm_next(const struct attempt *a, const struct spnego_token *st,
			     struct httpauth_result *out)
{
	struct ntlm_pending *p = ntlm_take(a->req->ssl);
	int want;

	if (!p || !p->spnego || p->raw || a->mono > p->born + HTTPAUTH_NTLM_TTL) {
		ntlm_pending_free(p);
		log_info("http.auth.ntlm_no_challenge", "mech=negotiate src=%s", a->ip);
		challenge(a, false, "unauthorized",
			  "SPNEGO continuation without a pending handshake on this connection");
		return false;
	}
	want = p->awaiting_negotiate ? 1 : 3;
	if (st->state == SPNEGO_REJECT || !st->has_mech_token ||
	    httpauth_ntlm_type(st->mech_token.p, st->mech_token.len) != want ||
	    (st->has_supported_mech && !is_ntlmssp(st->supported_mech))) {
		ntlm_pending_free(p);
		failed(a, STATS_MECH_NTLM, "negotiate", "", "spnego_malformed");
		return false;
	}
	if (want == 1)
		return spnego_ntlm_challenge(a, p, st->mech_token, false);
	return spnego_ntlm_auth(a, p, st, out);
}

/*
 * A bare NTLMSSP token under Negotiate (what Windows browsers send when
 * their Negotiate package settles on NTLM): the same connection-oriented
 * handshake, the tokens unwrapped both ways, no mechListMIC and no final
 * token on the 200.
 */
static bool raw_ntlm(const struct attempt *a, const uint8_t *tok, size_t len, int type,
		     struct httpauth_result *out)
{
	struct spnego_token st;
	struct ntlm_pending *p;

	if (type == 1) {
		p = calloc(1, sizeof(*p));
		if (!p) {
			http_response_error(a->resp, 500, "server_error", "out of memory");
			return false;
		}
		p->spnego = p->raw = true;
		return spnego_ntlm_challenge(a, p, (struct spnego_buf){tok, len}, false);
	}
	p = ntlm_take(a->req->ssl);
	if (type != 3 || !p || !p->raw || a->mono > p->born + HTTPAUTH_NTLM_TTL) {
		ntlm_pending_free(p);
		log_info("http.auth.ntlm_no_challenge", "mech=negotiate framing=raw src=%s", a->ip);
		challenge(a, false, "unauthorized",
			  "NTLM AUTHENTICATE without a pending challenge on this connection");
		return false;
	}
	memset(&st, 0, sizeof(st));
	st.has_mech_token = true;
	st.mech_token = (struct spnego_buf){tok, len};
	return spnego_ntlm_auth(a, p, &st, out);
}

/*
 * Negotiate: NTLM inside SPNEGO when the initiator asks for it, or by
 * reselection (NTLM offered, see spnego_choose); a NegTokenResp continues
 * such a handshake; anything else (SPNEGO with Kerberos, raw Kerberos) goes
 * to the Kerberos acceptor, when offered.
 */
static bool do_negotiate_any(const struct attempt *a, const uint8_t *tok, size_t len,
			     struct httpauth_result *out)
{
	bool ntlm = config_offers(a->cfg, AUTH_SCHEME_NTLM);
	bool krb = config_offers(a->cfg, AUTH_SCHEME_KERBEROS) && vault_krb_ready();
	struct spnego_token st;
	enum spnego_pick pick;

	if (ntlm && httpauth_ntlm_type(tok, len) > 0)
		return raw_ntlm(a, tok, len, httpauth_ntlm_type(tok, len), out);
	if (ntlm && spnego_parse(tok, len, &st) == 0) {
		if (st.kind == SPNEGO_RESP)
			return spnego_ntlm_next(a, &st, out);
		pick = spnego_choose(&st, krb);
		if (pick != PICK_KERBEROS)
			return spnego_ntlm_leg1(a, &st, pick);
	}
	if (!krb) {
		challenge(a, false, "unauthorized",
			  "sign in with one of the offered WWW-Authenticate schemes");
		return false;
	}
	return do_negotiate(a, tok, len, out);
}

/* RFC 7616 §3.4: uri is the request-target. */
static bool digest_uri_ok(const struct http_request *req, struct str uri)
{
	size_t pl = strlen(req->path);

	if (uri.len < pl || memcmp(uri.p, req->path, pl) != 0)
		return false;
	if (!req->query)
		return uri.len == pl;
	return uri.len == pl + 1 + strlen(req->query) && uri.p[pl] == '?' &&
	       memcmp(uri.p + pl + 1, req->query, uri.len - pl - 1) == 0;
}

static bool digest_finish(const struct attempt *a, const struct digest_creds *c, const char *who,
			  enum nonce_status ns, struct httpauth_result *out)
{
	struct str realm = str_cstr(a->cfg->domain);

	if (ns == NONCE_STALE) {
		challenge(a, true, "unauthorized", "the nonce is stale; retry with the new one");
		return false;
	}
	ns = nonce_use(a->w->rt->nonces, c->nonce, realm, c->qop == DIGEST_QOP_NONE ? 0 : c->nc,
		       a->now);
	if (ns != NONCE_OK) {
		if (ns == NONCE_REPLAY)
			stats_auth(STATS_MECH_DIGEST, STATS_AUTH_REPLAY);
		log_warn("http.auth.nonce", "user=%s src=%s status=%d", out->user.uri, a->ip,
			 (int)ns);
		challenge(a, ns == NONCE_STALE, "unauthorized", "nonce reused or stale");
		return false;
	}
	return succeeded(a, STATS_MECH_DIGEST, "digest", who, out);
}

static bool do_digest(const struct attempt *a, struct str value, struct httpauth_result *out)
{
	struct str realm = str_cstr(a->cfg->domain);
	char who[STORE_URI_MAX + 8];
	struct digest_creds c;
	enum nonce_status ns;
	struct verdict v;
	int rc;

	rc = digest_parse_credentials(value, &c);
	if (rc < 0) {
		char d[128];
		snprintf(d, sizeof(d), "Authorization: Digest: %s", digest_strerror(rc));
		http_response_error(a->resp, 400, "invalid_request", d);
		return false;
	}
	if (!str_eq(c.realm, realm) || !str_eq_cstr(c.opaque, a->w->rt->opaque)) {
		challenge(a, false, "unauthorized", "Digest credentials for another realm");
		return false;
	}
	if (!digest_uri_ok(a->req, c.uri)) {
		http_response_error(
		    a->resp, 400, "invalid_request",
		    "the Digest uri is not this request's target (RFC 7616 §3.4.6)");
		return false;
	}
	if (httpauth_identity(c.username, a->cfg->domain, who, sizeof(who)) < 0)
		snprintf(who, sizeof(who), "sip:?@%s", a->cfg->domain);
	if (locked(a, STATS_MECH_DIGEST, who))
		return false;
	ns = nonce_check(a->w->rt->nonces, c.nonce, realm, a->now);
	if (ns == NONCE_INVALID) {
		challenge(a, false, "unauthorized", "unknown nonce");
		return false;
	}
	v = vault_digest_verify(a->w->store, &c, str_cstr(a->req->method_name), a->req->body, realm,
				&out->user);
	if (v.kind == VERDICT_TEMPFAIL) {
		unavailable(a, STATS_MECH_DIGEST, v.reason);
		return false;
	}
	if (v.kind != VERDICT_OK) {
		failed(a, STATS_MECH_DIGEST, "digest", who, v.reason);
		return false;
	}
	return digest_finish(a, &c, who, ns, out);
}

/* "1.2.3.4:5" -> "1.2.3.4"; "[::1]:5" -> "::1". */
static void peer_ip(const char *peer, char *out, size_t cap)
{
	const char *colon;
	size_t n;

	if (!peer)
		peer = "";
	if (peer[0] == '[') {
		n = strcspn(peer + 1, "]");
		snprintf(out, cap, "%.*s", (int)n, peer + 1);
		return;
	}
	colon = strrchr(peer, ':');
	n = colon ? (size_t)(colon - peer) : strlen(peer);
	snprintf(out, cap, "%.*s", (int)n, peer);
}

static bool offered(const struct config *cfg, enum httpauth_scheme s)
{
	switch (s) {
	case HTTPAUTH_NEGOTIATE:
		/* SPNEGO carries Kerberos or NTLM */
		return (config_offers(cfg, AUTH_SCHEME_KERBEROS) && vault_krb_ready()) ||
		       config_offers(cfg, AUTH_SCHEME_NTLM);
	case HTTPAUTH_NTLM:
		return config_offers(cfg, AUTH_SCHEME_NTLM);
	case HTTPAUTH_DIGEST:
		return config_offers(cfg, AUTH_SCHEME_DIGEST);
	default:
		return false;
	}
}

static bool dispatch(const struct attempt *a, const struct httpauth_creds *cr,
		     struct httpauth_result *out)
{
	uint8_t *tok;
	size_t len = 0;
	bool ok;

	if (cr->scheme == HTTPAUTH_DIGEST)
		return do_digest(a, cr->param, out);
	tok = malloc(HTTPAUTH_TOKEN_MAX + 2);
	if (!tok) {
		http_response_error(a->resp, 500, "server_error", "out of memory");
		return false;
	}
	if (httpauth_token_decode(cr->param, tok, HTTPAUTH_TOKEN_MAX + 2, &len) < 0) {
		free(tok);
		failed(a, cr->scheme == HTTPAUTH_NTLM ? STATS_MECH_NTLM : STATS_MECH_KERBEROS,
		       cr->scheme == HTTPAUTH_NTLM ? "ntlm" : "negotiate", "", "bad_token");
		return false;
	}
	ok = cr->scheme == HTTPAUTH_NTLM ? do_ntlm(a, tok, len, out)
					 : do_negotiate_any(a, tok, len, out);
	free(tok);
	return ok;
}

bool httpauth_require(const struct http_request *req, struct http_response *resp,
		      struct httpauth_result *out)
{
	const struct sip_worker *w = req->worker;
	struct httpauth_creds cr;
	struct attempt a;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!w || !w->rt || !w->rt->cfg) {
		http_response_error(resp, 503, "temporarily_unavailable", "not ready; retry later");
		return false;
	}
	memset(&a, 0, sizeof(a));
	a.req = req;
	a.resp = resp;
	a.w = w;
	a.cfg = w->rt->cfg;
	a.now = clock_wall_s();
	a.mono = clock_mono_ms() / 1000;
	peer_ip(req->peer, a.ip, sizeof(a.ip));
	/* a client certificate (issue 5 item 4): chained to a trusted root,
	 * valid, not revoked and naming an enabled user authenticates the
	 * request; a certificate that fails leaves the other schemes open */
	if (!http_request_header(req, "Authorization") && http_request_peer_cert(req)) {
		X509 *leaf = http_request_peer_cert(req);
		STACK_OF(X509) *chain = req->ssl ? SSL_get_peer_cert_chain(req->ssl) : NULL;
		char uri[STORE_URI_MAX];
		int vr = pki_verify_client(w->store, leaf, chain, a.now, uri, sizeof(uri));
		if (vr == PKI_VERIFY_OK && store_user_get(w->store, uri, &out->user) == STORE_OK &&
		    out->user.enabled) {
			out->mech = "certificate";
			stats_auth(STATS_MECH_CERTIFICATE, STATS_AUTH_OK);
			log_info("http.auth.ok", "user=%s mech=certificate src=%s", uri, a.ip);
			return true;
		}
		memset(&out->user, 0, sizeof(out->user));
		/*
		 * The OCSP status is being asked for on the pool (never on this
		 * loop): 503 with Retry-After: 1 rather than a deferred answer,
		 * because this check runs inside every handler's synchronous
		 * flow (httpauth_require), which cannot be resumed later. The
		 * query goes on; the retry finds its answer in the cache.
		 */
		if (vr == PKI_VERIFY_PENDING) {
			http_response_header(resp, "Retry-After", "1");
			http_response_error(resp, 503, "temporarily_unavailable",
					    "the certificate's revocation status is being checked; "
					    "retry in a second");
			return false;
		}
		if (vr == PKI_VERIFY_UNAVAILABLE) {
			http_response_header(resp, "Retry-After", "5");
			http_response_error(
			    resp, 503, "temporarily_unavailable",
			    "the certificate's revocation status is unknown; retry later");
			return false;
		}
		stats_auth(STATS_MECH_CERTIFICATE, STATS_AUTH_FAILURE);
		log_warn("http.auth.fail", "mech=certificate src=%s reason=%s", a.ip,
			 pki_verify_strerror(vr));
	}
	rc = httpauth_parse(http_request_header(req, "Authorization"), &cr);
	if (rc < 0) {
		log_info("http.auth.malformed", "src=%s reason=%s", a.ip,
			 rc == HTTPAUTH_E_TOO_LARGE ? "too_large" : "syntax");
		challenge(&a, false, "invalid_request", "malformed Authorization header");
		return false;
	}
	if (cr.scheme == HTTPAUTH_NONE || !offered(a.cfg, cr.scheme)) {
		challenge(&a, false, "unauthorized",
			  "sign in with one of the offered WWW-Authenticate schemes");
		return false;
	}
	return dispatch(&a, &cr, out);
}
