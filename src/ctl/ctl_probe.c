/*
 * rtcauthctl probe: sign in to a SIP server the way a Lync-style client
 * does ([MS-SIPAE] with Kerberos or NTLM, or plain Digest), then exchange
 * signed OPTIONS and MESSAGE requests, checking the server's signatures,
 * and report each step on stdout ("step NAME ok|fail DETAIL", or a JSON
 * array). For operators ("can alice sign in over TLS?") and for the tests.
 *
 * The mechanisms are the GSSAPI initiators of MIT krb5 and gss-ntlmssp
 * (probe_gss.c) and an OpenSSL client for TLS-DSK (probe_tlsdsk.c), never
 * rtcauth's own acceptor code; the signature buffer is
 * the shared codec's (sipae.h), so both ends sign the same bytes.
 *
 * Never prints, logs or keeps the password: it is read from stdin, handed
 * to the mechanism (NTLM) or folded into HA1 (Digest), and wiped.
 */
#include "ctl/ctl.h"

#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <unistd.h>

#include "auth/digest.h"
#include "auth/sipae.h"
#include "core/b64.h"
#include "core/clock.h"
#include "core/sbuf.h"
#include "core/secmem.h"
#include "ctl/probe.h"
#include "sip/msg.h"

#define T1_MS	     500  /* RFC 3261 timer T1 */
#define T2_MS	     4000 /* RFC 3261 timer T2: the longest retransmit interval */
#define MAX_LEGS     4	  /* REGISTER round trips of one handshake */
#define REG_EXPIRES  300
#define HDR_MAX	     (PROBE_AUTH_TOKEN + 1024)
#define SEEN_SNUMS   64
#define PROBE_UA     "rtcauthctl-probe/0.1"
#define PROBE_DONE   (-1) /* probe_setup: nothing to run (--help), exit 0 */
#define DEFAULT_BODY "rtcauthctl probe"

static const struct ctl_cmd_help h_probe = {
    "probe",
    "sip:user@domain --mech kerberos|ntlm|digest|tls-dsk [--transport udp|tcp|tls]\n"
    "       [--server HOST:PORT] [--password-stdin] [--ca FILE] [--user NAME] [--domain D] "
    "[--no-mutual] [--no-channel-bindings]\n"
    "       [--cert FILE --key FILE [--tls10]]\n"
    "       [--message-to sip:other@domain] [--wait-message SECONDS] [--timeout SECONDS] "
    "[--json]",
    "Sign in to a SIP server as a client and report each step.",
    "Steps (one line each, \"step NAME ok|fail DETAIL\"; exit 0 only if all succeed):\n"
    "  connect             open the transport (TLS: server certificate verified)\n"
    "  register-challenge  an unsigned REGISTER gets 401 offering the mechanism\n"
    "  handshake           the client side of the mechanism (Kerberos AP-REQ for\n"
    "                      sip@<host of targetname>; NTLM AUTHENTICATE; Digest response;\n"
    "                      TLS-DSK: the TLS handshake with --cert in gssapi-data)\n"
    "  register-ok         200 OK with Expires > 0; Kerberos/NTLM: its rspauth verifies\n"
    "  options             OPTIONS to the server (signed), the 200 verified\n"
    "  message             MESSAGE to --message-to (default: ourselves), 2xx verified\n"
    "  wait-message        (with --wait-message) an incoming MESSAGE, verified, answered\n"
    "Options:\n"
    "  --server HOST:PORT  default: the config's first [sip] listen of the transport\n"
    "  --ca FILE           TLS trust anchor; default <state_dir>/ca/ca.crt\n"
    "  --password-stdin    the password on the first line of stdin (ntlm, digest)\n"
    "  --user NAME         authentication user name (default: the URI's user part;\n"
    "                      NTLM also takes DOMAIN\\user)\n"
    "  --domain D          NTLM domain (default: none)\n"
    "  --no-channel-bindings  NTLM over TLS without binding the handshake to the server\n"
    "                      certificate (RFC 5929 tls-server-end-point; sent by default)\n"
    "  --no-mutual         Kerberos without mutual authentication (as pidgin-sipe does:\n"
    "                      the REGISTER carrying the AP-REQ is then already signed)\n"
    "  --cert FILE, --key FILE  TLS-DSK: the user's certificate (PEM, as rtcauthctl cert\n"
    "                      issue gives it) and private key; the server certificate is\n"
    "                      verified against --ca when there is one\n"
    "  --tls10             TLS-DSK over TLS 1.0 with RSA CBC-SHA suites (as pidgin-sipe)\n"
    "  --timeout SECONDS   bound on every wait (default 5)\n"
    "Kerberos uses the credential cache (KRB5CCNAME; run kinit first).\n"
    "Exit codes: 0 every step ok, 1 a step failed, 2 usage error."};

struct probe {
	/* command line */
	enum probe_mech mech;
	enum probe_transport tr;
	char aor[STORE_URI_MAX];
	char user[STORE_URI_MAX];
	char domain[STORE_URI_MAX];
	char auth_user[STORE_URI_MAX];
	const char *ntlm_domain;
	bool no_mutual;
	bool no_cbt;			  /* NTLM over TLS without channel bindings */
	const char *cert_file, *key_file; /* TLS-DSK */
	bool tls10;			  /* TLS-DSK over TLS 1.0 */
	char host[256];
	uint16_t port;
	char ca[PATH_MAX];
	char msg_to[STORE_URI_MAX];
	int wait_message; /* seconds, 0 = no */
	int timeout_ms;
	bool json;
	char password[CTL_PASSWORD_MAX];
	size_t pwlen;

	/* connection and dialog state */
	struct probe_conn *conn;
	char call_id[64]; /* of the registration */
	char reg_tag[16];
	uint32_t reg_cseq;
	char instance[48];
	char branch[32]; /* of the request in flight */

	/* security association (Kerberos, NTLM, TLS-DSK) */
	struct probe_gss *gss;
	struct probe_tlsdsk *dsk; /* TLS-DSK instead of gss */
	char scheme[16];
	char realm[PROBE_AUTH_FIELD];
	char targetname[PROBE_AUTH_FIELD];
	char opaque[PROBE_AUTH_FIELD];
	int version;
	uint32_t cnum;
	uint32_t snums[SEEN_SNUMS];
	size_t n_snums; /* valid entries of snums (a ring of the last accepted) */
	size_t snum_next;
	bool sa_ready;
	bool registered; /* a REGISTER got 200: unregister at the end */

	/* Digest */
	struct probe_auth dchal;	   /* the challenge we answer */
	uint8_t ha1[DIGEST_ALG_COUNT][64]; /* per algorithm, for ha1_realm (wiped at exit) */
	char ha1_realm[PROBE_AUTH_FIELD];
	uint32_t nc;
	char dnonce[PROBE_AUTH_FIELD]; /* nc counts per nonce */

	/* incoming requests answered while waiting */
	int self_delivered; /* our own MESSAGE came back to us */
	int incoming_messages;
	char last_from[STORE_URI_MAX];
	char last_call_id[128];
	char incoming_why[256]; /* why the last incoming MESSAGE was refused */

	/* output */
	json_t *steps;
	bool failed;

	char rx[PROBE_MSG_MAX];
	char tx[PROBE_MSG_MAX];
};

/* ---- output ---- */

static void step(struct probe *p, const char *name, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void step(struct probe *p, const char *name, bool ok, const char *fmt, ...)
{
	char detail[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	for (char *s = detail; *s; s++)
		if (*s == '\r' || *s == '\n')
			*s = ' ';
	if (!ok)
		p->failed = true;
	if (p->json) {
		json_array_append_new(p->steps, json_pack("{s:s, s:b, s:s}", "step", name, "ok", ok,
							  "detail", detail));
		return;
	}
	printf("step %s %s %s\n", name, ok ? "ok" : "fail", detail);
	fflush(stdout);
}

/* ---- small helpers ---- */

static void rand_hex(char *out, size_t nbytes)
{
	static const char digits[] = "0123456789abcdef";
	uint8_t r[32];

	if (nbytes > sizeof(r))
		nbytes = sizeof(r);
	if (secmem_random(r, nbytes) < 0)
		memset(r, 0x5a, nbytes);
	for (size_t i = 0; i < nbytes; i++) {
		out[2 * i] = digits[r[i] >> 4];
		out[2 * i + 1] = digits[r[i] & 15];
	}
	out[2 * nbytes] = '\0';
}

static const char *tr_name(enum probe_transport t)
{
	return t == PROBE_UDP ? "UDP" : t == PROBE_TCP ? "TCP" : "TLS";
}

static const char *tr_lower(enum probe_transport t)
{
	return t == PROBE_UDP ? "udp" : t == PROBE_TCP ? "tcp" : "tls";
}

/* Our address for Via and Contact, IPv6 in brackets. */
static void local_hostport(const struct probe *p, char *out, size_t cap)
{
	const char *h = probe_conn_local_host(p->conn);
	snprintf(out, cap, strchr(h, ':') ? "[%s]:%u" : "%s:%u", h, probe_conn_local_port(p->conn));
}

static const char *mech_scheme(enum probe_mech m)
{
	return m == PROBE_MECH_KERBEROS ? "Kerberos"
	       : m == PROBE_MECH_NTLM	? "NTLM"
	       : m == PROBE_MECH_TLSDSK ? "TLS-DSK"
					: "Digest";
}

/* ---- message building ---- */

struct req {
	const char *method;
	const char *ruri;
	const char *to;	 /* To URI */
	const char *tag; /* From tag */
	const char *callid;
	uint32_t cseq;
	bool reg;	  /* REGISTER: Contact and Expires */
	bool unreg;	  /* REGISTER with Expires: 0 */
	const char *body; /* MESSAGE body, or NULL */
};

/* Start line and headers, without Authorization and Content-Length. */
static void req_head(struct probe *p, const struct req *r, struct sbuf *b)
{
	char hp[96];

	local_hostport(p, hp, sizeof(hp));
	rand_hex(p->branch + 7, 8);
	memcpy(p->branch, "z9hG4bK", 7);
	sbuf_printf(b, "%s %s SIP/2.0\r\n", r->method, r->ruri);
	sbuf_printf(b, "Via: SIP/2.0/%s %s;branch=%s;rport\r\n", tr_name(p->tr), hp, p->branch);
	sbuf_puts(b, "Max-Forwards: 70\r\n");
	sbuf_printf(b, "From: <%s>;tag=%s\r\n", p->aor, r->tag);
	sbuf_printf(b, "To: <%s>\r\n", r->to);
	sbuf_printf(b, "Call-ID: %s\r\n", r->callid);
	sbuf_printf(b, "CSeq: %u %s\r\n", r->cseq, r->method);
	if (r->reg || r->body)
		sbuf_printf(b, "Contact: <sip:%s@%s;transport=%s>%s%s%s\r\n", p->user, hp,
			    tr_lower(p->tr), r->reg ? ";+sip.instance=\"<urn:uuid:" : "",
			    r->reg ? p->instance : "", r->reg ? ">\"" : "");
	if (r->reg)
		sbuf_printf(b, "Expires: %d\r\n", r->unreg ? 0 : REG_EXPIRES);
	sbuf_puts(b, "User-Agent: " PROBE_UA "\r\n");
	if (r->body)
		sbuf_puts(b, "Content-Type: text/plain\r\n");
}

/* head + auth + Content-Length + body into out. Length, or -1. */
static long assemble(const struct sbuf *head, const char *auth, const char *body, char *out,
		     size_t cap)
{
	struct sbuf b;
	size_t blen = body ? strlen(body) : 0;

	sbuf_init(&b, out, cap);
	sbuf_put(&b, head->p, head->len);
	if (auth && auth[0])
		sbuf_puts(&b, auth);
	sbuf_printf(&b, "Content-Length: %zu\r\n\r\n", blen);
	if (blen)
		sbuf_put(&b, body, blen);
	return sbuf_ok(&b) ? (long)b.len : -1;
}

/* ---- MS-SIPAE signatures ---- */

/*
 * The signature buffer of a message (PROTOCOLS.md §1), built by the shared
 * codec from the parsed message. Its length, or -1.
 */
static long sig_buffer(const struct probe *p, const char *msg, size_t len, struct str rand,
		       struct str num, char *out, size_t cap)
{
	struct sip_msg *m = malloc(sizeof(*m));
	struct sipae_fields f;
	char status[4];
	long n = -1;

	if (!m)
		return -1;
	if (sip_msg_parse(m, msg, len, p->tr != PROBE_UDP) == 0 &&
	    sipae_fields_from_msg(m, &f, status) == 0)
		n = sipae_sig_buffer(str_cstr(p->scheme), rand, num, str_cstr(p->realm),
				     str_cstr(p->targetname), &f, out, cap);
	free(m);
	return n;
}

/* The SA's mechanism: GSSAPI (Kerberos, NTLM) or TLS-DSK. */
static int mech_step(struct probe *p, const char *host, const uint8_t *in, size_t inlen,
		     uint8_t **out, size_t *outlen, char *err, size_t errlen)
{
	if (p->dsk)
		return probe_tlsdsk_step(p->dsk, in, inlen, out, outlen, err, errlen);
	return probe_gss_step(p->gss, host, in, inlen, out, outlen, err, errlen);
}

static bool mech_complete(const struct probe *p)
{
	return p->dsk ? probe_tlsdsk_complete(p->dsk) : probe_gss_complete(p->gss);
}

static bool mech_can_sign(const struct probe *p)
{
	return p->dsk ? probe_tlsdsk_complete(p->dsk) : probe_gss_can_sign(p->gss);
}

static int mech_sign_hex(struct probe *p, const void *buf, size_t len, char *hex, size_t cap)
{
	if (p->dsk)
		return probe_tlsdsk_sign_hex(p->dsk, buf, len, hex, cap);
	return probe_gss_sign_hex(p->gss, buf, len, hex, cap);
}

static int mech_verify_hex(struct probe *p, const void *buf, size_t len, struct str hex)
{
	if (p->dsk)
		return probe_tlsdsk_verify_hex(p->dsk, buf, len, hex);
	return probe_gss_verify_hex(p->gss, buf, len, hex);
}

/*
 * Sign msg (built without Authorization): write the crand/cnum/response
 * parameters (", crand=..., cnum=..., response=...") into params. 0 or -1.
 */
static int sign_params(struct probe *p, const char *msg, size_t len, char *params, size_t cap)
{
	char crand[9], num[16], buf[SIPAE_SIGBUF_MAX], hex[2 * SA_MAC_MAX + 1];
	long n;

	if (sipae_rand(crand) < 0)
		return -1;
	snprintf(num, sizeof(num), "%u", p->cnum + 1);
	n = sig_buffer(p, msg, len, str_cstr(crand), str_cstr(num), buf, sizeof(buf));
	if (n < 0 || mech_sign_hex(p, buf, (size_t)n, hex, sizeof(hex)) < 0)
		return -1;
	p->cnum++;
	snprintf(params, cap, ", crand=\"%s\", cnum=\"%s\", response=\"%s\"", crand, num, hex);
	return 0;
}

/* Authorization line for a signed request or response in an established SA. */
static int sa_auth_line(struct probe *p, const char *msg, size_t len, char *line, size_t cap)
{
	char sig[256];

	if (sign_params(p, msg, len, sig, sizeof(sig)) < 0)
		return -1;
	snprintf(line, cap,
		 "Authorization: %s qop=\"auth\", opaque=\"%s\", realm=\"%s\", targetname=\"%s\"%s"
		 "\r\n",
		 p->scheme, p->opaque, p->realm, p->targetname, sig);
	return 0;
}

/* The GSS host: "sip/fe01.example.test" -> "fe01.example.test". */
static const char *gss_host(const char *targetname)
{
	const char *s = strchr(targetname, '/');
	return s ? s + 1 : targetname;
}

/* Which header carries the server's signature. */
static const struct sip_header *auth_info_header(const struct sip_msg *m)
{
	const struct sip_header *h = sip_msg_header(m, SIP_H_AUTHENTICATION_INFO);
	return h ? h : sip_msg_header(m, SIP_H_PROXY_AUTHENTICATION_INFO);
}

/* The Authentication-Info fields our SA expects; takes the opaque the
 * first signed 200 names. 0, or -1 with why. */
static int check_auth_info(struct probe *p, const struct probe_auth *ai, uint64_t *snum, char *why,
			   size_t cap)
{
	if (strcasecmp(ai->scheme, p->scheme) != 0 || !ai->rspauth[0] || !ai->srand[0] ||
	    str_to_u64(str_cstr(ai->snum), UINT32_MAX, snum) < 0 || *snum == 0) {
		snprintf(why, cap,
			 "Authentication-Info lacks %s rspauth, srand or a valid snum (scheme %s)",
			 p->scheme, ai->scheme);
		return -1;
	}
	if ((ai->realm[0] && strcmp(ai->realm, p->realm) != 0) ||
	    (ai->targetname[0] && strcmp(ai->targetname, p->targetname) != 0)) {
		snprintf(why, cap, "Authentication-Info names another realm or targetname");
		return -1;
	}
	if (!p->opaque[0] && ai->opaque[0]) {
		snprintf(p->opaque, sizeof(p->opaque), "%s", ai->opaque);
	} else if (ai->opaque[0] && strcasecmp(ai->opaque, p->opaque) != 0) {
		snprintf(why, cap, "Authentication-Info opaque %s is not our SA's (%s)", ai->opaque,
			 p->opaque);
		return -1;
	}
	for (size_t i = 0; i < p->n_snums; i++)
		if (p->snums[i] == *snum) {
			snprintf(why, cap, "snum %u seen before: a replay", (unsigned)*snum);
			return -1;
		}
	return 0;
}

/* Kerberos mutual authentication: the AP-REP in the 200's gssapi-data. */
static int finish_mutual(struct probe *p, const struct probe_auth *ai, char *why, size_t cap)
{
	uint8_t *tok, *o = NULL;
	size_t tl, ol;
	char e[512];
	int rc = -1;

	if (!ai->has_gssapi_data || !ai->gssapi_data[0] || mech_complete(p))
		return 0;
	tok = malloc(PROBE_AUTH_TOKEN);
	if (!tok) {
		snprintf(why, cap, "out of memory");
		return -1;
	}
	if (b64_std_decode(ai->gssapi_data, strlen(ai->gssapi_data), tok, PROBE_AUTH_TOKEN, &tl) <
	    0)
		snprintf(why, cap, "gssapi-data in Authentication-Info is not base64");
	else if (mech_step(p, gss_host(p->targetname), tok, tl, &o, &ol, e, sizeof(e)) != 0)
		snprintf(why, cap, "mutual authentication failed: %s", e);
	else
		rc = 0;
	free(o);
	free(tok);
	return rc;
}

/*
 * Verify the server's signature on a message of our SA. 0, or -1 with why.
 * Also takes the opaque (and, Kerberos, the AP-REP gssapi-data) from the
 * first signed 200 when the handshake has not given them yet.
 */
static int verify_msg(struct probe *p, const struct sip_msg *m, char *why, size_t cap)
{
	const struct sip_header *h = auth_info_header(m);
	struct probe_auth *ai;
	char buf[SIPAE_SIGBUF_MAX];
	uint64_t snum;
	long n;
	int rc = -1;

	if (!h) {
		snprintf(why, cap, "no Authentication-Info: the message is not signed");
		return -1;
	}
	ai = malloc(sizeof(*ai));
	if (!ai) {
		snprintf(why, cap, "out of memory");
		return -1;
	}
	if (probe_auth_parse(h->value, ai) < 0) {
		snprintf(why, cap, "Authentication-Info does not parse");
		goto out;
	}
	if (check_auth_info(p, ai, &snum, why, cap) < 0 || finish_mutual(p, ai, why, cap) < 0)
		goto out;
	if (!mech_can_sign(p)) {
		snprintf(why, cap,
			 "the %s context is not complete (no AP-REP in gssapi-data to finish "
			 "mutual authentication): rspauth cannot be verified",
			 p->scheme);
		goto out;
	}
	n = sig_buffer(p, m->buf, m->len, str_cstr(ai->srand), str_cstr(ai->snum), buf,
		       sizeof(buf));
	if (n < 0) {
		snprintf(why, cap, "cannot build the signature buffer of the message");
		goto out;
	}
	if (mech_verify_hex(p, buf, (size_t)n, str_cstr(ai->rspauth)) < 0) {
		snprintf(why, cap, "rspauth does not verify (snum %s)", ai->snum);
		goto out;
	}
	p->snums[p->snum_next++ % SEEN_SNUMS] = (uint32_t)snum;
	if (p->n_snums < SEEN_SNUMS)
		p->n_snums++;
	snprintf(why, cap, "signature verified (snum %s)", ai->snum);
	rc = 0;
out:
	free(ai);
	return rc;
}

/* ---- Digest ---- */

/* Pick the first Digest challenge (in the server's order) we can answer. */
static int pick_digest(const struct sip_msg *m, enum sip_hdr id, struct probe_auth *out)
{
	for (const struct sip_header *h = sip_msg_header(m, id); h; h = sip_msg_next_header(m, h)) {
		enum digest_alg alg;
		bool sess;
		if (probe_auth_parse(h->value, out) < 0 || strcasecmp(out->scheme, "Digest") != 0)
			continue;
		if (out->algorithm[0] &&
		    digest_alg_parse(str_cstr(out->algorithm), &alg, &sess) < 0)
			continue;
		if (!out->nonce[0] || !out->realm[0])
			continue;
		return 0;
	}
	return -1;
}

/*
 * HA1 for every algorithm in the challenge's realm; then the password is
 * wiped: later challenges (407 on MESSAGE, a stale nonce) need only HA1.
 */
static int digest_prepare(struct probe *p)
{
	int rc = 0;

	snprintf(p->ha1_realm, sizeof(p->ha1_realm), "%s", p->dchal.realm);
	for (int a = 0; a < DIGEST_ALG_COUNT; a++)
		if (digest_ha1((enum digest_alg)a, str_cstr(p->auth_user), str_cstr(p->ha1_realm),
			       str_make(p->password, p->pwlen), p->ha1[a]) < 0)
			rc = -1;
	secmem_wipe(p->password, sizeof(p->password));
	p->pwlen = 0;
	return rc;
}

/* Does the comma list qop offer "auth"? */
static bool qop_has_auth(const char *qop)
{
	const char *s = qop;
	while (*s) {
		size_t n;
		while (*s == ' ' || *s == ',')
			s++;
		n = strcspn(s, ", ");
		if (n == 4 && strncasecmp(s, "auth", 4) == 0)
			return true;
		s += n;
	}
	return false;
}

/* The Authorization / Proxy-Authorization line answering p->dchal. */
static int digest_line(struct probe *p, const char *hdr, const char *method, const char *uri,
		       char *line, size_t cap)
{
	struct digest_creds c;
	char resp[DIGEST_MAX_RESPONSE + 1], cnonce[33], nc[9];
	bool qop = qop_has_auth(p->dchal.qop);
	struct sbuf b;
	int n;

	memset(&c, 0, sizeof(c));
	if (strcmp(p->dnonce, p->dchal.nonce) != 0) {
		snprintf(p->dnonce, sizeof(p->dnonce), "%s", p->dchal.nonce);
		p->nc = 0;
	}
	c.alg = DIGEST_MD5;
	if (p->dchal.algorithm[0] &&
	    digest_alg_parse(str_cstr(p->dchal.algorithm), &c.alg, &c.sess) < 0)
		return -1;
	rand_hex(cnonce, 16);
	snprintf(nc, sizeof(nc), "%08x", ++p->nc);
	c.username = str_cstr(p->auth_user);
	c.realm = str_cstr(p->dchal.realm);
	c.nonce = str_cstr(p->dchal.nonce);
	c.uri = str_cstr(uri);
	c.algorithm = str_cstr(p->dchal.algorithm);
	c.opaque = str_cstr(p->dchal.opaque);
	if (qop) {
		c.qop = DIGEST_QOP_AUTH;
		c.qop_str = STR_LIT("auth");
		c.cnonce = str_cstr(cnonce);
		c.nc_str = str_cstr(nc);
		c.nc = p->nc;
	}
	if (strcmp(p->dchal.realm, p->ha1_realm) != 0)
		return -1; /* the password is gone: only the first realm's HA1 is kept */
	n = digest_response(&c, p->ha1[c.alg], str_cstr(method), STR_NULL, resp, sizeof(resp));
	if (n < 0)
		return -1;
	sbuf_init(&b, line, cap);
	sbuf_printf(&b, "%s: Digest username=\"%s\", realm=\"%s\", nonce=\"%s\", uri=\"%s\", ", hdr,
		    p->auth_user, p->dchal.realm, p->dchal.nonce, uri);
	sbuf_printf(&b, "response=\"%s\"", resp);
	secmem_wipe(resp, sizeof(resp));
	if (p->dchal.algorithm[0])
		sbuf_printf(&b, ", algorithm=%s", p->dchal.algorithm);
	if (p->dchal.opaque[0])
		sbuf_printf(&b, ", opaque=\"%s\"", p->dchal.opaque);
	if (qop)
		sbuf_printf(&b, ", qop=auth, nc=%s, cnonce=\"%s\"", nc, cnonce);
	sbuf_puts(&b, "\r\n");
	if (!sbuf_ok(&b))
		return -1;
	sbuf_cstr(&b);
	return 0;
}

/* ---- transactions ---- */

static int send_response(struct probe *p, const struct sip_msg *req, int code, const char *reason);

/* A request from the server while we wait: answer it. */
static void handle_incoming(struct probe *p, const struct sip_msg *m)
{
	char why[256];
	struct str cid = sip_msg_call_id(m);

	if (m->method_id == SIP_M_ACK)
		return;
	if (m->method_id == SIP_M_MESSAGE) {
		struct sip_nameaddr from;
		if (str_eq_cstr(cid, p->last_call_id) && p->last_call_id[0]) {
			/* a retransmission of one we accepted: its snum was seen */
			send_response(p, m, 200, "OK");
			return;
		}
		if (p->sa_ready && verify_msg(p, m, why, sizeof(why)) < 0) {
			snprintf(p->incoming_why, sizeof(p->incoming_why), "%s", why);
			send_response(p, m, 403, "Forbidden (bad signature)");
			return;
		}
		str_copy(cid, p->last_call_id, sizeof(p->last_call_id));
		p->incoming_messages++;
		if (sip_msg_from(m, &from) == 0)
			str_copy(from.uri_str, p->last_from, sizeof(p->last_from));
		send_response(p, m, 200, "OK");
		return;
	}
	if (m->method_id == SIP_M_OPTIONS) {
		send_response(p, m, 200, "OK");
		return;
	}
	send_response(p, m, 501, "Not Implemented");
}

/* Parse the message in p->rx. 0, or -1 (ignored). */
static int parse_rx(struct probe *p, struct sip_msg *m, long n)
{
	return sip_msg_parse(m, p->rx, (size_t)n, p->tr != PROBE_UDP) == 0 ? 0 : -1;
}

/* Is m the response to our request in flight? */
static bool is_our_response(const struct probe *p, const struct sip_msg *m, const char *method)
{
	struct sip_via v;
	struct str meth;
	uint32_t num;

	if (m->is_request || sip_msg_top_via(m, &v) < 0 || !str_eq_cstr(v.branch, p->branch))
		return false;
	return sip_msg_cseq(m, &num, &meth) == 0 && str_eq_cstr(meth, method);
}

/*
 * Send p->tx (len bytes) and wait for its final response (into p->rx, parsed
 * into *m). UDP: retransmit at T1, 2*T1, ... capped at T2 (RFC 3261
 * §17.1.2.2), everything bounded by the timeout. 1 final response, 0 none
 * within the timeout, -1 with err.
 */
static int transact(struct probe *p, size_t len, const char *method, struct sip_msg *m, char *err,
		    size_t errlen)
{
	uint64_t now = clock_mono_ms(), deadline = now + (uint64_t)p->timeout_ms;
	uint64_t interval = T1_MS, next = now + interval;

	if (probe_conn_send(p->conn, p->tx, len, err, errlen) < 0)
		return -1;
	for (;;) {
		uint64_t until = p->tr == PROBE_UDP && next < deadline ? next : deadline;
		long n;

		/* checked on every turn: a peer that keeps talking cannot hold us */
		now = clock_mono_ms();
		if (now >= deadline) {
			snprintf(err, errlen, "no final response within %d s",
				 p->timeout_ms / 1000);
			return 0;
		}
		if (p->tr == PROBE_UDP && now >= next) {
			if (probe_conn_send(p->conn, p->tx, len, err, errlen) < 0)
				return -1;
			interval = interval * 2 > T2_MS ? T2_MS : interval * 2;
			next = now + interval;
			continue;
		}
		n = probe_conn_recv(p->conn, until, p->rx, sizeof(p->rx), err, errlen);
		if (n < 0)
			return -1;
		if (n == 0)
			continue;
		if (parse_rx(p, m, n) < 0)
			continue;
		if (m->is_request) {
			/* e.g. our MESSAGE to ourselves, routed back to us */
			handle_incoming(p, m);
			continue;
		}
		if (!is_our_response(p, m, method) || m->status < 200)
			continue;
		return 1;
	}
}

static int send_response(struct probe *p, const struct sip_msg *req, int code, const char *reason)
{
	char save_branch[32], line[1024], err[256];
	struct sbuf b;
	char *mem = malloc(PROBE_MSG_MAX), *out = malloc(PROBE_MSG_MAX);
	long len;
	int rc = -1;

	if (!mem || !out)
		goto out;
	memcpy(save_branch, p->branch, sizeof(save_branch));
	sbuf_init(&b, mem, PROBE_MSG_MAX);
	sbuf_printf(&b, "SIP/2.0 %d %s\r\n", code, reason);
	for (size_t i = 0; i < req->n_hdrs; i++) {
		const struct sip_header *h = &req->hdrs[i];
		if (h->id == SIP_H_VIA || h->id == SIP_H_FROM || h->id == SIP_H_CALL_ID ||
		    h->id == SIP_H_CSEQ || h->id == SIP_H_RECORD_ROUTE) {
			sbuf_putstr(&b, h->name);
			sbuf_puts(&b, ": ");
			sbuf_putstr(&b, h->value);
			sbuf_puts(&b, "\r\n");
		} else if (h->id == SIP_H_TO) {
			struct sip_nameaddr to;
			sbuf_putstr(&b, h->name);
			sbuf_puts(&b, ": ");
			sbuf_putstr(&b, h->value);
			if (sip_nameaddr_parse(h->value, &to) == 0 && to.tag.len == 0) {
				char tag[17];
				rand_hex(tag, 8);
				sbuf_printf(&b, ";tag=%s", tag);
			}
			sbuf_puts(&b, "\r\n");
		}
	}
	sbuf_puts(&b, "User-Agent: " PROBE_UA "\r\n");
	if (!sbuf_ok(&b))
		goto out;
	/* sign with our SA ([MS-SIPAE]: a client signs its responses too) */
	line[0] = '\0';
	if (p->sa_ready) {
		len = assemble(&b, NULL, NULL, out, PROBE_MSG_MAX);
		if (len < 0 || sa_auth_line(p, out, (size_t)len, line, sizeof(line)) < 0)
			goto out;
	}
	len = assemble(&b, line, NULL, out, PROBE_MSG_MAX);
	if (len >= 0 && probe_conn_send(p->conn, out, (size_t)len, err, sizeof(err)) == 0)
		rc = 0;
out:
	memcpy(p->branch, save_branch, sizeof(save_branch));
	free(mem);
	free(out);
	return rc;
}

/* Expires granted in a REGISTER 200: the Expires header, else our Contact's. */
static long granted_expires(const struct sip_msg *m)
{
	struct sip_hdr_iter it;
	struct str v;
	uint32_t e;

	if (sip_msg_expires(m, &e) == 0)
		return e;
	sip_hdr_iter_init(&it, m, SIP_H_CONTACT);
	while (sip_hdr_iter_next(&it, &v) > 0) {
		struct sip_contact c;
		if (sip_contact_parse(v, &c) == 0 && c.has_expires)
			return c.expires;
	}
	return -1;
}

/* "401 Unauthorized" of a response, for details. */
static void status_text(const struct sip_msg *m, char *out, size_t cap)
{
	snprintf(out, cap, "%d %.*s", m->status, (int)(m->reason.len > 80 ? 80 : m->reason.len),
		 m->reason.p);
}

/*
 * Build a request into p->tx: head, then the auth line prefix (without CRLF;
 * NULL for none) completed with our signature when sign is set. Length or -1.
 */
static long build_request(struct probe *p, const struct req *r, const char *auth, bool sign)
{
	char *head = malloc(PROBE_MSG_MAX), *line = malloc(HDR_MAX + 512);
	struct sbuf b;
	long len = -1;

	if (!head || !line)
		goto out;
	sbuf_init(&b, head, PROBE_MSG_MAX);
	req_head(p, r, &b);
	if (!sbuf_ok(&b))
		goto out;
	line[0] = '\0';
	if (auth) {
		char sig[256] = "";
		if (sign) {
			len = assemble(&b, NULL, r->body, p->tx, sizeof(p->tx));
			if (len < 0 || sign_params(p, p->tx, (size_t)len, sig, sizeof(sig)) < 0) {
				len = -1;
				goto out;
			}
		}
		if ((size_t)snprintf(line, HDR_MAX + 512, "%s%s\r\n", auth, sig) >= HDR_MAX + 512)
			goto out;
	}
	len = assemble(&b, line, r->body, p->tx, sizeof(p->tx));
out:
	free(head);
	free(line);
	return len;
}

/* ---- steps ---- */

static int do_connect(struct probe *p)
{
	char err[512];

	if (probe_conn_open(p->tr, p->host, p->port, p->ca, NULL, p->timeout_ms, &p->conn, err,
			    sizeof(err)) < 0) {
		step(p, "connect", false, "%s %s:%u: %s", tr_lower(p->tr), p->host, p->port, err);
		return -1;
	}
	step(p, "connect", true, "%s %s:%u from %s:%u%s%s", tr_lower(p->tr), p->host, p->port,
	     probe_conn_local_host(p->conn), probe_conn_local_port(p->conn),
	     p->tr == PROBE_TLS ? ", server certificate verified against " : "",
	     p->tr == PROBE_TLS ? p->ca : "");
	return 0;
}

/* The offered schemes of a 401/407, for the report: "NTLM, Kerberos, Digest SHA-256". */
static void list_offers(const struct sip_msg *m, enum sip_hdr id, char *out, size_t cap)
{
	struct probe_auth *a = malloc(sizeof(*a));
	struct sbuf b;

	sbuf_init(&b, out, cap);
	for (const struct sip_header *h = sip_msg_header(m, id); a && h;
	     h = sip_msg_next_header(m, h)) {
		if (probe_auth_parse(h->value, a) < 0)
			continue;
		sbuf_printf(&b, "%s%s%s%s", b.len ? ", " : "", a->scheme,
			    a->algorithm[0] ? " " : "", a->algorithm);
		if (a->version)
			sbuf_printf(&b, " v%d", a->version);
	}
	if (!sbuf_ok(&b) || b.len == 0)
		snprintf(out, cap, "%s", b.len ? "(too many to list)" : "nothing");
	else
		sbuf_cstr(&b);
	free(a);
}

/* Our scheme's challenge in a 401 (first match). 0 or -1. */
static int find_challenge(const struct sip_msg *m, const char *scheme, struct probe_auth *out)
{
	for (const struct sip_header *h = sip_msg_header(m, SIP_H_WWW_AUTHENTICATE); h;
	     h = sip_msg_next_header(m, h))
		if (probe_auth_parse(h->value, out) == 0 && strcasecmp(out->scheme, scheme) == 0)
			return 0;
	return -1;
}

static struct req reg_req(struct probe *p, char *ruri)
{
	struct req r = {.method = "REGISTER",
			.ruri = ruri,
			.to = p->aor,
			.tag = p->reg_tag,
			.callid = p->call_id,
			.cseq = ++p->reg_cseq,
			.reg = true};
	return r;
}

static int digest_register(struct probe *p, struct sip_msg *m, char *ruri)
{
	char line[2048], err[512], st[128];
	struct req r;
	long len, exp;
	int rc, tries = 0;

again:
	if (digest_line(p, "Authorization", "REGISTER", ruri, line, sizeof(line)) < 0) {
		step(p, "handshake", false, "cannot compute the Digest response (algorithm %s)",
		     p->dchal.algorithm[0] ? p->dchal.algorithm : "MD5");
		return -1;
	}
	line[strcspn(line, "\r")] = '\0';
	if (tries == 0)
		step(p, "handshake", true, "Digest algorithm=%s qop=%s realm=\"%s\" user=%s",
		     p->dchal.algorithm[0] ? p->dchal.algorithm : "MD5",
		     qop_has_auth(p->dchal.qop) ? "auth" : "none", p->dchal.realm, p->auth_user);
	r = reg_req(p, ruri);
	len = build_request(p, &r, line, false);
	secmem_wipe(line, sizeof(line));
	if (len < 0) {
		step(p, "register-ok", false, "cannot build the REGISTER");
		return -1;
	}
	rc = transact(p, (size_t)len, "REGISTER", m, err, sizeof(err));
	if (rc <= 0) {
		step(p, "register-ok", false, "%s", err);
		return -1;
	}
	status_text(m, st, sizeof(st));
	if (m->status == 401 && tries++ == 0 &&
	    pick_digest(m, SIP_H_WWW_AUTHENTICATE, &p->dchal) == 0 && p->dchal.stale)
		goto again; /* a stale nonce: once more with the fresh one (RFC 7616 §3.3) */
	if (m->status == 401) {
		step(p, "register-ok", false,
		     "%s again: the server refused the credentials (wrong password, unknown, "
		     "disabled or locked-out user)",
		     st);
		return -1;
	}
	if (m->status != 200) {
		step(p, "register-ok", false, "%s", st);
		return -1;
	}
	p->registered = true;
	exp = granted_expires(m);
	if (exp <= 0) {
		step(p, "register-ok", false, "%s without Expires > 0", st);
		return -1;
	}
	step(p, "register-ok", true, "%s, registered for %ld s", st, exp);
	return 0;
}

/*
 * The Authorization prefix of one handshake REGISTER: with gssapi-data while
 * there is a token to send; once the context is complete and nothing is left
 * to send (Kerberos after an AP-REP in a 401), a plain SA header to sign.
 */
static int handshake_auth(struct probe *p, const char *gssdata, bool have_token, char *line,
			  size_t cap)
{
	int n = snprintf(
	    line, cap,
	    "Authorization: %s qop=\"auth\"%s%s%s, realm=\"%s\", targetname=\"%s\"%s%s%s, "
	    "version=%d",
	    p->scheme, p->opaque[0] ? ", opaque=\"" : "", p->opaque, p->opaque[0] ? "\"" : "",
	    p->realm, p->targetname, have_token ? ", gssapi-data=\"" : "",
	    have_token ? gssdata : "", have_token ? "\"" : "", p->version);
	return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* The 200 that completes a GSS handshake. */
static int gss_register_ok(struct probe *p, struct sip_msg *m)
{
	char why[256], st[128];
	long exp;

	status_text(m, st, sizeof(st));
	p->sa_ready = true;
	if (verify_msg(p, m, why, sizeof(why)) < 0) {
		step(p, "register-ok", false, "%s but %s", st, why);
		return -1;
	}
	if (!mech_complete(p)) {
		step(p, "register-ok", false, "%s but the %s context is not complete", st,
		     p->scheme);
		return -1;
	}
	exp = granted_expires(m);
	if (exp <= 0) {
		step(p, "register-ok", false, "%s without Expires > 0", st);
		return -1;
	}
	step(p, "register-ok", true, "%s, registered for %ld s, SA opaque=%s, %s", st, exp,
	     p->opaque[0] ? p->opaque : "-", why);
	return 0;
}

/* Buffers of a GSS handshake over REGISTER. */
struct gss_legs {
	char line[HDR_MAX];
	char gssdata[PROBE_AUTH_TOKEN + 1]; /* base64 of the token to send */
	uint8_t in[PROBE_AUTH_TOKEN];	    /* the server's token */
	size_t inlen;
	struct probe_auth ch;
	bool final_sent; /* the handshake step was reported */
};

static const char *leg_step(const struct gss_legs *g)
{
	return g->final_sent ? "register-ok" : "handshake";
}

/* Report the handshake step once the client's last token is out. */
static void report_handshake(struct probe *p, struct gss_legs *g, int s, size_t outlen)
{
	if (g->final_sent || !(s == 0 || (p->mech == PROBE_MECH_KERBEROS && outlen)))
		return;
	g->final_sent = true;
	if (p->mech == PROBE_MECH_TLSDSK)
		step(p, "handshake", true, "TLS-DSK %s, opaque=%s", probe_tlsdsk_describe(p->dsk),
		     p->opaque[0] ? p->opaque : "-");
	else if (p->mech == PROBE_MECH_KERBEROS)
		step(p, "handshake", true, "Kerberos AP-REQ for sip@%s (%zu bytes%s)",
		     gss_host(p->targetname), outlen,
		     p->no_mutual ? ", no mutual authentication" : "");
	else
		step(p, "handshake", true,
		     "NTLM CHALLENGE answered with AUTHENTICATE (%zu bytes), opaque=%s", outlen,
		     p->opaque[0] ? p->opaque : "-");
}

/*
 * One leg: the next token (into g->gssdata) and the REGISTER carrying it,
 * signed when it completes the handshake (version 4) or carries no token.
 * 0 with the final response in m, or -1 after reporting.
 */
static int gss_leg(struct probe *p, struct gss_legs *g, struct sip_msg *m, char *ruri, int leg)
{
	char err[512];
	uint8_t *out = NULL;
	size_t outlen = 0;
	struct req r;
	bool have_token, sign;
	long len;
	int s = mech_step(p, gss_host(p->targetname), g->inlen ? g->in : NULL, g->inlen, &out,
			  &outlen, err, sizeof(err));

	if (s < 0) {
		step(p, "handshake", false, "%s", err);
		return -1;
	}
	len = b64_std_encode(out, outlen, g->gssdata, sizeof(g->gssdata));
	free(out);
	if (len < 0) {
		step(p, "handshake", false, "token too large (%zu bytes)", outlen);
		return -1;
	}
	report_handshake(p, g, s, outlen);
	have_token = s != 0 || outlen > 0 || leg == 0;
	sign = mech_can_sign(p) && (p->version >= 4 || !have_token);
	if (handshake_auth(p, g->gssdata, have_token, g->line, sizeof(g->line)) < 0) {
		step(p, leg_step(g), false, "token too large");
		return -1;
	}
	r = reg_req(p, ruri);
	len = build_request(p, &r, g->line, sign);
	if (len < 0) {
		step(p, leg_step(g), false, "cannot build or sign the REGISTER");
		return -1;
	}
	if (transact(p, (size_t)len, "REGISTER", m, err, sizeof(err)) <= 0) {
		step(p, leg_step(g), false, "%s", err);
		return -1;
	}
	return 0;
}

/* A 401 in the middle of the handshake: the server's next token. 0 or -1. */
static int gss_next_token(struct probe *p, struct gss_legs *g, const struct sip_msg *m)
{
	char st[128];

	status_text(m, st, sizeof(st));
	if (m->status != 401) {
		step(p, leg_step(g), false, "%s", st);
		return -1;
	}
	if (find_challenge(m, p->scheme, &g->ch) < 0 || !g->ch.gssapi_data[0] || mech_complete(p)) {
		step(p, leg_step(g), false,
		     p->dsk ? "%s again: the server refused the %s handshake (a certificate it "
			      "does not trust, revoked, naming no user of it, or a TLS version "
			      "or suite it does not accept)"
			    : "%s again: the server refused the %s credentials (wrong password, "
			      "unknown user, or a ticket it cannot accept)",
		     st, p->scheme);
		return -1;
	}
	if (g->ch.opaque[0])
		snprintf(p->opaque, sizeof(p->opaque), "%s", g->ch.opaque);
	if (b64_std_decode(g->ch.gssapi_data, strlen(g->ch.gssapi_data), g->in, sizeof(g->in),
			   &g->inlen) < 0 ||
	    g->inlen == 0) {
		step(p, "handshake", false, "the 401's gssapi-data is not base64");
		return -1;
	}
	return 0;
}

static int gss_register(struct probe *p, struct sip_msg *m, char *ruri)
{
	struct gss_legs *g = calloc(1, sizeof(*g));
	char err[512];
	int rc = -1;

	if (!g) {
		step(p, "handshake", false, "out of memory");
		return -1;
	}
	if (p->mech == PROBE_MECH_TLSDSK) {
		if (probe_tlsdsk_new(p->cert_file, p->key_file, p->ca, p->targetname, p->tls10,
				     &p->dsk, err, sizeof(err)) < 0) {
			step(p, "handshake", false, "%s", err);
			goto out;
		}
		goto legs;
	}
	if (probe_gss_new(p->mech, p->auth_user, p->ntlm_domain, p->password, &p->gss, err,
			  sizeof(err)) < 0) {
		step(p, "handshake", false, "%s", err);
		goto out;
	}
	secmem_wipe(p->password, sizeof(p->password)); /* the credential holds it now */
	probe_gss_set_mutual(p->gss, !p->no_mutual);
	if (p->mech == PROBE_MECH_NTLM && p->tr == PROBE_TLS && !p->no_cbt) {
		/* bind the NTLM handshake to this TLS connection's certificate */
		uint8_t ep[EVP_MAX_MD_SIZE];
		int n = probe_conn_tls_end_point(p->conn, ep, sizeof(ep));
		if (n <= 0 || probe_gss_set_tls_binding(p->gss, ep, (size_t)n) < 0) {
			step(p, "handshake", false, "cannot hash the server certificate");
			goto out;
		}
	}
legs:
	for (int leg = 0; leg < MAX_LEGS; leg++) {
		if (gss_leg(p, g, m, ruri, leg) < 0)
			goto out;
		if (m->status == 200) {
			p->registered = true;
			rc = gss_register_ok(p, m);
			goto out;
		}
		if (gss_next_token(p, g, m) < 0)
			goto out;
	}
	step(p, "handshake", false, "no result after %d round trips", MAX_LEGS);
out:
	free(g);
	return rc;
}

static int do_register(struct probe *p)
{
	struct sip_msg *m = malloc(sizeof(*m));
	char ruri[STORE_URI_MAX + 8], err[512], st[128], offers[512];
	struct probe_auth *ch = malloc(sizeof(*ch));
	struct req r;
	long len;
	int rc = -1;

	if (!m || !ch) {
		step(p, "register-challenge", false, "out of memory");
		goto out;
	}
	snprintf(ruri, sizeof(ruri), "sip:%s", p->domain);
	r = reg_req(p, ruri);
	len = build_request(p, &r, NULL, false);
	rc = len < 0 ? -1 : transact(p, (size_t)len, "REGISTER", m, err, sizeof(err));
	if (rc <= 0) {
		step(p, "register-challenge", false, "%s", len < 0 ? "cannot build REGISTER" : err);
		rc = -1;
		goto out;
	}
	rc = -1;
	status_text(m, st, sizeof(st));
	if (m->status != 401) {
		step(p, "register-challenge", false, "expected 401, got %s%s", st,
		     m->status == 200 ? " (registered without authentication)" : "");
		goto out;
	}
	list_offers(m, SIP_H_WWW_AUTHENTICATE, offers, sizeof(offers));
	if (p->mech == PROBE_MECH_DIGEST ? pick_digest(m, SIP_H_WWW_AUTHENTICATE, &p->dchal) < 0
					 : find_challenge(m, mech_scheme(p->mech), ch) < 0) {
		step(p, "register-challenge", false, "401 offers %s, not %s", offers,
		     mech_scheme(p->mech));
		goto out;
	}
	step(p, "register-challenge", true, "401 offers: %s", offers);
	if (p->mech == PROBE_MECH_DIGEST) {
		if (digest_prepare(p) < 0) {
			step(p, "handshake", false, "cannot compute HA1");
			goto out;
		}
		rc = digest_register(p, m, ruri);
		goto out;
	}
	snprintf(p->scheme, sizeof(p->scheme), "%s", mech_scheme(p->mech));
	snprintf(p->realm, sizeof(p->realm), "%s", ch->realm);
	snprintf(p->targetname, sizeof(p->targetname), "%s", ch->targetname);
	p->version = ch->version ? ch->version : 3;
	if (!p->targetname[0]) {
		step(p, "handshake", false, "the %s challenge has no targetname", p->scheme);
		goto out;
	}
	rc = gss_register(p, m, ruri);
out:
	free(m);
	free(ch);
	return rc;
}

/*
 * One request outside the registration (OPTIONS, MESSAGE): signed with the
 * SA, or Digest-authenticated when challenged (407, or 401). Returns 1 with
 * the final response in m, or 0 after reporting a failure.
 */
static int request(struct probe *p, const char *name, const char *method, const char *ruri,
		   const char *to, const char *body, struct sip_msg *m)
{
	char callid[40], tag[17], err[512], st[128];
	char *line = malloc(HDR_MAX);
	struct req r;
	uint32_t cseq = 1;
	int tries = 0, rc = 0;

	if (!line) {
		step(p, name, false, "out of memory");
		return 0;
	}
	rand_hex(callid, 16);
	rand_hex(tag, 8);
	for (;;) {
		const char *auth = NULL;
		long len;
		bool sign = false;

		r = (struct req){method, ruri, to, tag, callid, cseq++, false, false, body};
		if (p->sa_ready) {
			snprintf(line, HDR_MAX,
				 "Authorization: %s qop=\"auth\", opaque=\"%s\", realm=\"%s\", "
				 "targetname=\"%s\"",
				 p->scheme, p->opaque, p->realm, p->targetname);
			auth = line;
			sign = true;
		} else if (tries > 0) {
			const char *h = m->status == 407 ? "Proxy-Authorization" : "Authorization";
			if (digest_line(p, h, method, ruri, line, HDR_MAX) < 0) {
				step(p, name, false, "cannot compute the Digest response");
				goto out;
			}
			line[strcspn(line, "\r")] = '\0';
			auth = line;
		}
		len = build_request(p, &r, auth, sign);
		if (auth && !sign)
			secmem_wipe(line, HDR_MAX);
		if (len < 0) {
			step(p, name, false, "cannot build or sign the %s", method);
			goto out;
		}
		if (transact(p, (size_t)len, method, m, err, sizeof(err)) <= 0) {
			step(p, name, false, "%s%s%s", err,
			     p->incoming_why[0] ? "; we refused the MESSAGE routed to us: " : "",
			     p->incoming_why);
			goto out;
		}
		if ((m->status == 407 || m->status == 401) && !p->sa_ready && tries++ == 0 &&
		    pick_digest(
			m, m->status == 407 ? SIP_H_PROXY_AUTHENTICATE : SIP_H_WWW_AUTHENTICATE,
			&p->dchal) == 0)
			continue;
		break;
	}
	status_text(m, st, sizeof(st));
	if (m->status == 401 || m->status == 407) {
		step(p, name, false, "%s: %s", st,
		     p->sa_ready ? "the server did not accept our signature"
				 : "the server refused the Digest credentials");
		goto out;
	}
	rc = 1;
out:
	free(line);
	return rc;
}

static int do_options(struct probe *p)
{
	struct sip_msg *m = malloc(sizeof(*m));
	char ruri[STORE_URI_MAX + 8], st[128], why[256] = "";
	int rc = -1;

	if (!m)
		return -1;
	snprintf(ruri, sizeof(ruri), "sip:%s", p->domain);
	if (!request(p, "options", "OPTIONS", ruri, ruri, NULL, m))
		goto out;
	status_text(m, st, sizeof(st));
	if (m->status != 200) {
		step(p, "options", false, "%s", st);
		goto out;
	}
	if (p->sa_ready && verify_msg(p, m, why, sizeof(why)) < 0) {
		step(p, "options", false, "%s but %s", st, why);
		goto out;
	}
	step(p, "options", true, "%s from %s%s%s", st, ruri, why[0] ? ", " : "", why);
	rc = 0;
out:
	free(m);
	return rc;
}

static int do_message(struct probe *p)
{
	struct sip_msg *m = malloc(sizeof(*m));
	const char *to = p->msg_to[0] ? p->msg_to : p->aor;
	bool self = strcmp(to, p->aor) == 0;
	int before = p->incoming_messages, rc = -1;
	char st[128], why[256] = "";

	if (!m)
		return -1;
	p->incoming_why[0] = '\0';
	if (!request(p, "message", "MESSAGE", to, to, DEFAULT_BODY, m))
		goto out;
	status_text(m, st, sizeof(st));
	if (m->status < 200 || m->status > 299) {
		if (p->incoming_why[0]) {
			step(p, "message", false, "%s: we refused the MESSAGE routed to us: %s", st,
			     p->incoming_why);
			goto out;
		}
		step(p, "message", false, "%s from the path to %s%s", st, to,
		     m->status == 480 || m->status == 404 ? " (the recipient is not registered)"
							  : "");
		goto out;
	}
	if (p->sa_ready && verify_msg(p, m, why, sizeof(why)) < 0) {
		step(p, "message", false, "%s but %s", st, why);
		goto out;
	}
	if (self && p->incoming_messages == before) {
		step(p, "message", false, "%s but our MESSAGE to ourselves never reached us", st);
		goto out;
	}
	step(p, "message", true, "%s to %s%s%s%s", st, to,
	     self ? " (delivered back to us through the router and answered)" : "",
	     why[0] ? ", " : "", why);
	rc = 0;
out:
	free(m);
	return rc;
}

static int do_wait_message(struct probe *p)
{
	struct sip_msg *m = malloc(sizeof(*m));
	uint64_t deadline = clock_mono_ms() + (uint64_t)p->wait_message * 1000;
	int before = p->incoming_messages, rc = -1;
	char err[256];

	if (!m)
		return -1;
	p->incoming_why[0] = '\0';
	while (p->incoming_messages == before) {
		long n = probe_conn_recv(p->conn, deadline, p->rx, sizeof(p->rx), err, sizeof(err));
		if (n < 0) {
			step(p, "wait-message", false, "%s", err);
			goto out;
		}
		if (n == 0) {
			step(p, "wait-message", false, "no MESSAGE within %d s%s%s",
			     p->wait_message, p->incoming_why[0] ? "; refused one: " : "",
			     p->incoming_why);
			goto out;
		}
		if (parse_rx(p, m, n) == 0 && m->is_request)
			handle_incoming(p, m);
	}
	step(p, "wait-message", true, "MESSAGE from %s answered 200%s", p->last_from,
	     p->sa_ready ? ", signature verified" : "");
	rc = 0;
out:
	free(m);
	return rc;
}

/*
 * Remove our binding (Expires: 0), best effort and unreported: a probe
 * leaves no contact behind for the router to try later.
 */
static void do_unregister(struct probe *p)
{
	struct sip_msg *m = malloc(sizeof(*m));
	char ruri[STORE_URI_MAX + 8], err[256];
	char *line = malloc(HDR_MAX);
	const char *auth = NULL;
	bool sign = false;
	struct req r;
	long len;

	if (!m || !line)
		goto out;
	snprintf(ruri, sizeof(ruri), "sip:%s", p->domain);
	if (p->sa_ready) {
		snprintf(line, HDR_MAX,
			 "Authorization: %s qop=\"auth\", opaque=\"%s\", realm=\"%s\", "
			 "targetname=\"%s\"",
			 p->scheme, p->opaque, p->realm, p->targetname);
		auth = line;
		sign = true;
	} else if (p->mech == PROBE_MECH_DIGEST) {
		if (digest_line(p, "Authorization", "REGISTER", ruri, line, HDR_MAX) < 0)
			goto out;
		line[strcspn(line, "\r")] = '\0';
		auth = line;
	}
	r = reg_req(p, ruri);
	r.unreg = true;
	len = build_request(p, &r, auth, sign);
	if (len > 0) {
		int saved = p->timeout_ms;
		p->timeout_ms = saved < 2000 ? saved : 2000;
		transact(p, (size_t)len, "REGISTER", m, err, sizeof(err));
		p->timeout_ms = saved;
	}
out:
	if (line)
		secmem_wipe(line, HDR_MAX);
	free(line);
	free(m);
}

/* ---- command line ---- */

/* "host:port", "[v6]:port", "host" into p->host / p->port. 0 or -1. */
static int parse_server(struct probe *p, const char *s)
{
	const char *colon;
	size_t hl;
	uint64_t port = 0;

	if (s[0] == '[') {
		const char *e = strchr(s, ']');
		if (!e || e == s + 1)
			return -1;
		hl = (size_t)(e - s - 1);
		s++;
		colon = e[1] == ':' ? e + 1 : NULL;
		if (e[1] && !colon)
			return -1;
	} else {
		colon = strrchr(s, ':');
		if (colon && strchr(s, ':') != colon)
			return -1; /* bare IPv6: needs brackets */
		hl = colon ? (size_t)(colon - s) : strlen(s);
	}
	if (hl == 0 || hl >= sizeof(p->host))
		return -1;
	memcpy(p->host, s, hl);
	p->host[hl] = '\0';
	if (colon && str_to_u64(str_cstr(colon + 1), 65535, &port) < 0)
		return -1;
	if (colon && port == 0)
		return -1;
	p->port = (uint16_t)port;
	return 0;
}

/* The first [sip] listen of our transport; a wildcard means this host. */
static int server_from_config(struct probe *p, const struct config *cfg)
{
	for (size_t i = 0; i < cfg->n_listen; i++) {
		const struct listen_addr *l = &cfg->listen[i];
		const char *h = l->host;
		if ((int)l->kind != (int)p->tr)
			continue;
		if (strcmp(h, "*") == 0 || strcmp(h, "0.0.0.0") == 0)
			h = "127.0.0.1";
		else if (strcmp(h, "::") == 0)
			h = "::1";
		snprintf(p->host, sizeof(p->host), "%s", h);
		p->port = l->port;
		return 0;
	}
	return -1;
}

static int parse_secs(const char *what, const char *v, int max, int *out)
{
	uint64_t n;

	if (str_to_u64(str_cstr(v), (uint64_t)max, &n) < 0 || n == 0)
		return ctl_usage_err("%s wants whole seconds from 1 to %d, not '%s'", what, max, v);
	*out = (int)n;
	return 0;
}

/* The command line's values before they are checked. */
struct probe_args {
	const char *mech, *tr, *server, *ca, *to, *wait, *timeout, *user;
	bool pw_stdin;
};

/* --mech and --transport. 0 or an exit code. */
static int parse_choices(struct probe *p, const struct probe_args *a)
{
	if (!a->mech)
		return ctl_usage_err("probe: --mech kerberos|ntlm|digest|tls-dsk is required");
	if (strcmp(a->mech, "kerberos") == 0)
		p->mech = PROBE_MECH_KERBEROS;
	else if (strcmp(a->mech, "ntlm") == 0)
		p->mech = PROBE_MECH_NTLM;
	else if (strcmp(a->mech, "digest") == 0)
		p->mech = PROBE_MECH_DIGEST;
	else if (strcmp(a->mech, "tls-dsk") == 0)
		p->mech = PROBE_MECH_TLSDSK;
	else
		return ctl_usage_err(
		    "unknown mechanism '%s': use kerberos, ntlm, digest or tls-dsk", a->mech);
	if (!a->tr || strcmp(a->tr, "udp") == 0)
		p->tr = PROBE_UDP;
	else if (strcmp(a->tr, "tcp") == 0)
		p->tr = PROBE_TCP;
	else if (strcmp(a->tr, "tls") == 0)
		p->tr = PROBE_TLS;
	else
		return ctl_usage_err("unknown transport '%s': use udp, tcp or tls", a->tr);
	return 0;
}

/* Server and CA: the command line, else the config. 0 or an exit code. */
static int pick_server(struct ctl *c, struct probe *p, const struct probe_args *a)
{
	int rc;

	if (a->server && parse_server(p, a->server) < 0)
		return ctl_usage_err("--server wants HOST:PORT or [IPv6]:PORT, not '%s'",
				     a->server);
	if (a->ca)
		snprintf(p->ca, sizeof(p->ca), "%s", a->ca);
	if (!a->server || (p->tr == PROBE_TLS && !a->ca)) {
		if ((rc = ctl_config(c)) != 0) {
			ctl_err("probe: give --server HOST:PORT%s, or a config with -c",
				p->tr == PROBE_TLS ? " and --ca FILE" : "");
			return rc;
		}
		if (!a->server && server_from_config(p, &c->cfg) < 0)
			return ctl_usage_err(
			    "%s has no [sip] listen = %s:...; give --server HOST:PORT", c->cfg.path,
			    tr_lower(p->tr));
		if (!a->ca)
			snprintf(p->ca, sizeof(p->ca), "%s/ca/ca.crt", c->cfg.state_dir);
	}
	if (!p->port)
		p->port = p->tr == PROBE_TLS ? 5061 : 5060;
	return 0;
}

static int probe_setup(struct ctl *c, struct probe *p, int argc, char **argv)
{
	struct probe_args a = {0};
	const char *pos[1];
	const struct ctl_opt opts[] = {
	    {"--mech", &a.mech, NULL},
	    {"--transport", &a.tr, NULL},
	    {"--server", &a.server, NULL},
	    {"--ca", &a.ca, NULL},
	    {"--message-to", &a.to, NULL},
	    {"--wait-message", &a.wait, NULL},
	    {"--timeout", &a.timeout, NULL},
	    {"--user", &a.user, NULL},
	    {"--domain", &p->ntlm_domain, NULL},
	    {"--password-stdin", NULL, &a.pw_stdin},
	    {"--json", NULL, &p->json},
	    {"--no-mutual", NULL, &p->no_mutual},
	    {"--no-channel-bindings", NULL, &p->no_cbt},
	    {"--cert", &p->cert_file, NULL},
	    {"--key", &p->key_file, NULL},
	    {"--tls10", NULL, &p->tls10},
	    {NULL, NULL, NULL},
	};
	int n, rc, secs;

	if (ctl_args(&h_probe, argc, argv, opts, pos, 1, 1, &n, &rc))
		return rc ? rc : PROBE_DONE; /* --help: nothing to run */
	if ((rc = ctl_uri_arg("URI", pos[0], p->aor, p->user, p->domain)) != 0 ||
	    (rc = parse_choices(p, &a)) != 0)
		return rc;
	p->timeout_ms = 5000;
	if (a.timeout && (rc = parse_secs("--timeout", a.timeout, 300, &secs)) != 0)
		return rc;
	if (a.timeout)
		p->timeout_ms = secs * 1000;
	if (a.wait && (rc = parse_secs("--wait-message", a.wait, 3600, &p->wait_message)) != 0)
		return rc;
	if (a.to) {
		char u[STORE_URI_MAX], d[STORE_URI_MAX];
		if ((rc = ctl_uri_arg("--message-to", a.to, p->msg_to, u, d)) != 0)
			return rc;
	}
	snprintf(p->auth_user, sizeof(p->auth_user), "%s", a.user && a.user[0] ? a.user : p->user);
	if ((rc = pick_server(c, p, &a)) != 0)
		return rc;
	if ((p->cert_file || p->key_file || p->tls10) && p->mech != PROBE_MECH_TLSDSK)
		return ctl_usage_err("--cert, --key and --tls10 are for --mech tls-dsk");
	if (p->mech == PROBE_MECH_TLSDSK) {
		if (!p->cert_file || !p->key_file)
			return ctl_usage_err("--mech tls-dsk needs the user's certificate and key: "
					     "--cert FILE --key FILE (rtcauthctl cert issue URI "
					     "--csr FILE gives the certificate)");
		return a.pw_stdin ? ctl_usage_err("--mech tls-dsk takes no password: the "
						  "certificate authenticates")
				  : 0;
	}
	if (p->mech == PROBE_MECH_KERBEROS)
		return a.pw_stdin ? ctl_usage_err("--mech kerberos takes no password: it uses the "
						  "credential cache (kinit; KRB5CCNAME)")
				  : 0;
	if (!a.pw_stdin)
		return ctl_usage_err("--mech %s needs the password on standard input: add "
				     "--password-stdin",
				     a.mech);
	return ctl_read_password_fd(STDIN_FILENO, p->password, sizeof(p->password), &p->pwlen);
}

int ctl_probe_main(struct ctl *c, int argc, char **argv)
{
	struct probe *p = calloc(1, sizeof(*p));
	int rc;

	/* a peer closing a TLS or TCP connection must not kill us mid-report */
	signal(SIGPIPE, SIG_IGN);
	if (!p) {
		ctl_err("out of memory");
		return CTL_EXIT_ERR;
	}
	rc = probe_setup(c, p, argc, argv);
	if (rc == PROBE_DONE) {
		rc = CTL_EXIT_OK;
		goto out;
	}
	if (rc)
		goto out;
	p->steps = json_array();
	if (!p->steps) {
		rc = CTL_EXIT_ERR;
		goto out;
	}
	rand_hex(p->call_id, 16);
	rand_hex(p->reg_tag, 6);
	{
		char u[33];
		rand_hex(u, 16);
		snprintf(p->instance, sizeof(p->instance), "%.8s-%.4s-4%.3s-8%.3s-%.12s", u, u + 8,
			 u + 12, u + 15, u + 18);
	}
	if (do_connect(p) == 0) {
		if (do_register(p) == 0 && do_options(p) == 0 && do_message(p) == 0 &&
		    p->wait_message)
			do_wait_message(p);
		if (p->registered)
			do_unregister(p);
	}
	rc = p->failed ? CTL_EXIT_ERR : CTL_EXIT_OK;
	if (p->json) {
		json_t *s = p->steps;
		p->steps = NULL;
		if (ctl_print_json(s) != 0)
			rc = CTL_EXIT_ERR;
	}
out:
	if (p->steps)
		json_decref(p->steps);
	probe_gss_free(p->gss);
	probe_tlsdsk_free(p->dsk);
	probe_conn_close(p->conn);
	secmem_wipe(p->password, sizeof(p->password));
	secmem_wipe(p->ha1, sizeof(p->ha1));
	free(p);
	return rc;
}
