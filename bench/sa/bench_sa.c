/*
 * [MS-SIPAE] security association benchmark, in process (bench/sa/run,
 * `make bench-sa`): what one core of rtcauthd can do with signed SIP
 * messages and with SA handshakes, each beside a reference measured in the
 * same process on the same tokens.
 *
 *   bench_sa sig ntlm|kerberos [SECONDS]
 *       One SA established for real (gss-ntlmssp or MIT krb5 initiator
 *       against our acceptor). Signed MESSAGEs (the initiator's MIC,
 *       increasing cnum) are made in chunks, untimed; then, timed, per
 *       message, what the server does: parse the MESSAGE, parse its
 *       Authorization, sa_find by opaque, build the signature buffer from
 *       the parsed message, sa_verify (= "verify"); and in a second pass also
 *       the signed 200: parse the reply, build its buffer, sa_next_snum,
 *       sa_sign, write Authentication-Info (sipae_sign_write, the server's own
 *       code) (= "verify+sign"). Breakdown: sa_verify alone on prebuilt
 *       buffers, sa_sign alone.
 *   bench_sa est kerberos [N] [ROUNDS]
 *       Pools of N fresh AP-REQs (gss_init_sec_context with the credential
 *       cache, mutual authentication requested), made untimed. Timed per
 *       token: base64 decode, vault_krb_accept (with its AP-REP),
 *       vault_krb_principal_to_aor, sa_create, sa_put; against raw
 *       gss_accept_sec_context with a credential from the same keytab on a
 *       second pool of the same kind (contexts freed after the timing, on
 *       both sides). ROUNDS alternate the two; medians are reported.
 *   bench_sa est ntlm [N] [ROUNDS]
 *       Timed per handshake: vault_ntlm_challenge + sa_begin (leg 2), then
 *       base64 decode + sa_find + vault_ntlm_accept under sa_with_mech (an
 *       SQLite store lookup of the NT hash) + sa_establish (leg 3); the
 *       gss-ntlmssp initiator makes each AUTHENTICATE between the legs,
 *       untimed. Reference: the bare NTLMv2 check of the same AUTHENTICATE
 *       messages (ntlm_parse_authenticate + ntlm_accept_v2 with the NT hash
 *       in memory), with and without building a CHALLENGE; and, when
 *       gss-ntlmssp can accept from a user file (NTLM_USER_FILE), its own
 *       gss_accept_sec_context on NEGOTIATE and AUTHENTICATE.
 *   bench_sa e2e PORT [K] [SECONDS] [WINDOW]
 *       The load side of the end-to-end part: K NTLM clients over TCP to a
 *       running rtcauthd on 127.0.0.1:PORT (users user000... with the
 *       password BENCH_SA_PASSWORD) register, then send signed MESSAGEs to
 *       themselves through the router, WINDOW in flight each, for SECONDS;
 *       rtcauthd's CPU is read from /proc/BENCH_SA_DAEMON_PID/stat around
 *       the load.
 *
 * Results go to stdout, one "result name=... key=value ..." line each, for
 * the driver; progress to stderr. Environment: BENCH_SA_DIR (a directory
 * for the SQLite store and the user file), BENCH_SA_PASSWORD (alice's NTLM
 * password), BENCH_SA_KEYTAB (the sip/ keytab), and the Kerberos variables
 * of tests/integ/krb5_realm.sh (KRB5_CONFIG, KRB5CCNAME with alice's TGT).
 *
 * Never a timed test and never part of `make test`. Never logs a secret.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <gssapi/gssapi.h>
#include <gssapi/gssapi_ext.h>
#include <gssapi/gssapi_krb5.h>
#include <gssapi/gssapi_ntlmssp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/rand.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth/ntlm.h"
#include "auth/sa.h"
#include "auth/sipae.h"
#include "core/b64.h"
#include "core/sbuf.h"
#include "core/secmem.h"
#include "ctl/probe.h"
#include "sip/msg.h"
#include "sip/server_int.h"
#include "store/store.h"
#include "vault/gss.h"
#include "vault/vault_ntlm.h"

#define HOST	     "fe01.example.test"
#define SIPAE_REALM  "SIP Communications Service"
#define DOMAIN	     "example.test"
#define CHUNK	     4096
#define MSG_CAP	     2048
#define REPLY_CAP    1024
#define TOK_B64_MAX  8192
#define TOK_RAW_MAX  6144
#define DEFAULT_SECS 2.0

static const struct vault_ntlm_names names = {"EXAMPLE", "FE01", DOMAIN, HOST};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("bench_sa: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Process CPU time, to show the timed sections ran on a core of their own. */
static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static const char *env_or(const char *name, const char *def)
{
	const char *v = getenv(name);
	return v && v[0] ? v : def;
}

static void result(const char *name, uint64_t ops, uint64_t ns, uint64_t cpu)
{
	double s = (double)ns / 1e9;

	printf("result name=%s ops=%llu secs=%.6f rate=%.1f us_per_op=%.3f cpu_secs=%.6f\n", name,
	       (unsigned long long)ops, s, s > 0 ? (double)ops / s : 0.0,
	       ops ? (double)ns / 1e3 / (double)ops : 0.0, (double)cpu / 1e9);
	fflush(stdout);
}

/* ---- the store: alice with an NT hash (vault_ntlm_accept reads it) ---- */

static struct store *store_with_alice(const char *dir, const char *password)
{
	char path[512], err[256];
	struct store *s = NULL;
	struct store_user u;
	struct store_cred c[2];

	snprintf(path, sizeof(path), "%s/store.db", dir);
	unlink(path);
	if (store_open(path, STORE_CREATE, 50, &s, err, sizeof(err)) != STORE_OK)
		die("store_open %s: %s", path, err);
	memset(&u, 0, sizeof(u));
	if (store_uri_normalise("sip:alice@" DOMAIN, u.uri, u.user, u.domain) != 0)
		die("store_uri_normalise");
	u.enabled = true;
	if (store_user_add(s, &u) != STORE_OK)
		die("store_user_add");
	memset(c, 0, sizeof(c));
	for (int i = 0; i < 2; i++) {
		snprintf(c[i].mech, sizeof(c[i].mech), "nt");
		snprintf(c[i].variant, sizeof(c[i].variant), i ? "user@domain" : "user");
		if (ntlm_nt_hash(password, strlen(password), c[i].key) != 0)
			die("ntlm_nt_hash");
		c[i].key_len = 16;
	}
	if (store_cred_replace(s, u.id, c, 2) != STORE_OK)
		die("store_cred_replace");
	return s;
}

static struct sa_info sa_info_for(enum sa_scheme scheme)
{
	struct sa_info si;

	memset(&si, 0, sizeof(si));
	si.scheme = scheme;
	snprintf(si.realm, sizeof(si.realm), "%s", SIPAE_REALM);
	snprintf(si.targetname, sizeof(si.targetname), "%s%s",
		 scheme == SA_SCHEME_KERBEROS ? "sip/" : "", HOST);
	si.version = 4;
	return si;
}

/* ---- NTLM handshake, server side (what sipae_auth.c does per leg) ---- */

struct ntlm_accept_arg {
	struct store *s;
	const uint8_t *tok;
	size_t len;
	uint64_t now;
	struct store_user *user;
	struct verdict v;
};

static int ntlm_accept_fn(void *ctx, void *arg)
{
	struct ntlm_accept_arg *a = arg;

	a->v = vault_ntlm_accept(a->s, ctx, a->tok, a->len, str_cstr(DOMAIN), a->now, a->user);
	return 0;
}

/* Leg 2: a pending SA and its CHALLENGE (base64, as the 401 carries it). */
static struct sa *ntlm_leg2(struct sa_table *t, uint64_t now, uint8_t *chal, size_t *chal_len,
			    char *chal_b64, size_t b64cap)
{
	struct sa_info si = sa_info_for(SA_SCHEME_NTLM);
	const struct sa_mech *mech;
	void *ctx;
	struct sa *sa;

	if (vault_ntlm_challenge(&names, now, &mech, &ctx, chal, NTLM_CHALLENGE_MAX, chal_len))
		die("vault_ntlm_challenge");
	sa = sa_begin(t, &si, mech, ctx, now);
	if (!sa)
		die("sa_begin");
	if (b64_std_encode(chal, *chal_len, chal_b64, b64cap) < 0)
		die("b64 challenge");
	return sa;
}

/* Leg 3: the AUTHENTICATE (base64 as sent) for the SA named by opaque. */
static int ntlm_leg3(struct sa_table *t, struct store *s, const char *opaque, const char *auth_b64,
		     uint64_t now)
{
	uint8_t tok[TOK_RAW_MAX];
	struct store_user user;
	struct ntlm_accept_arg a;
	struct sa *sa;
	size_t len;
	int rc = -1;

	if (b64_std_decode(auth_b64, strlen(auth_b64), tok, sizeof(tok), &len) != 0)
		return -1;
	sa = sa_find(t, str_cstr(opaque), now);
	if (!sa)
		return -1;
	memset(&a, 0, sizeof(a));
	a.s = s;
	a.tok = tok;
	a.len = len;
	a.now = now;
	a.user = &user;
	sa_with_mech(sa, ntlm_accept_fn, &a);
	if (a.v.kind == VERDICT_OK &&
	    sa_establish(sa, user.uri, "5ee8d8e2-4b4b-5f4c-9a3d-0123456789ab", 0, NULL, NULL,
			 now) == 0)
		rc = 0;
	sa_put(sa);
	return rc;
}

/* The gss-ntlmssp initiator's first (empty) step. */
static struct probe_gss *ntlm_client(const char *user, const char *password)
{
	struct probe_gss *g;
	uint8_t *out;
	size_t outlen;
	char err[256];

	if (probe_gss_new(PROBE_MECH_NTLM, user, "EXAMPLE", password, &g, err, sizeof(err)))
		die("NTLM initiator: %s", err);
	if (probe_gss_step(g, HOST, NULL, 0, &out, &outlen, err, sizeof(err)) != 1)
		die("NTLM initiator, first step: %s", err);
	free(out);
	return g;
}

/* The initiator's AUTHENTICATE for a CHALLENGE, base64 into out. */
static void ntlm_client_auth(struct probe_gss *g, const uint8_t *chal, size_t chal_len, char *out,
			     size_t cap)
{
	uint8_t *tok;
	size_t len;
	char err[256];

	if (probe_gss_step(g, HOST, chal, chal_len, &tok, &len, err, sizeof(err)) != 0)
		die("NTLM initiator, AUTHENTICATE: %s", err);
	if (b64_std_encode(tok, len, out, cap) < 0)
		die("AUTHENTICATE too long");
	free(tok);
}

/* ---- Kerberos initiator: fresh AP-REQs from alice's credential cache ---- */

struct krb_init {
	gss_cred_id_t cred;
	gss_name_t target;
};

static void krb_init_open(struct krb_init *k)
{
	gss_OID_set_desc mechs = {1, (gss_OID)gss_mech_krb5};
	gss_buffer_desc nb = {strlen("sip@" HOST), (void *)"sip@" HOST};
	OM_uint32 maj, min;

	maj = gss_acquire_cred(&min, GSS_C_NO_NAME, GSS_C_INDEFINITE, &mechs, GSS_C_INITIATE,
			       &k->cred, NULL, NULL);
	if (GSS_ERROR(maj))
		die("Kerberos initiator credentials (KRB5CCNAME with alice's TGT?)");
	maj = gss_import_name(&min, &nb, GSS_C_NT_HOSTBASED_SERVICE, &k->target);
	if (GSS_ERROR(maj))
		die("gss_import_name sip@" HOST);
}

static void krb_init_close(struct krb_init *k)
{
	OM_uint32 min;

	gss_release_cred(&min, &k->cred);
	gss_release_name(&min, &k->target);
}

/* One AP-REQ (a new context, so a new authenticator), raw bytes. */
static size_t krb_apreq(struct krb_init *k, uint8_t *out, size_t cap)
{
	gss_ctx_id_t ctx = GSS_C_NO_CONTEXT;
	gss_buffer_desc ob = GSS_C_EMPTY_BUFFER;
	OM_uint32 maj, min;
	size_t n;

	maj =
	    gss_init_sec_context(&min, k->cred, &ctx, k->target, (gss_OID)gss_mech_krb5,
				 GSS_C_MUTUAL_FLAG | GSS_C_INTEG_FLAG, 0, GSS_C_NO_CHANNEL_BINDINGS,
				 GSS_C_NO_BUFFER, NULL, &ob, NULL, NULL);
	if (GSS_ERROR(maj) || ob.length == 0 || ob.length > cap)
		die("gss_init_sec_context for sip@" HOST " failed (major %u minor %u)", maj, min);
	memcpy(out, ob.value, ob.length);
	n = ob.length;
	gss_release_buffer(&min, &ob);
	gss_delete_sec_context(&min, &ctx, GSS_C_NO_BUFFER);
	return n;
}

/* Kerberos SA the server way: accept, map the principal, sa_create. */
static struct sa *krb_establish(struct sa_table *t, const uint8_t *tok, size_t len, uint64_t now,
				uint8_t *aprep, size_t *aprep_len)
{
	struct sa_info si = sa_info_for(SA_SCHEME_KERBEROS);
	const struct sa_mech *mech;
	void *ctx;
	char principal[VAULT_KRB_PRINCIPAL_MAX], aor[STORE_URI_MAX];
	uint8_t out[VAULT_KRB_OUT_MAX];
	uint64_t expires;
	size_t out_len;
	struct verdict v;

	v = vault_krb_accept(tok, len, "sip", &mech, &ctx, principal, sizeof(principal), &expires,
			     out, sizeof(out), &out_len);
	if (v.kind != VERDICT_OK)
		return NULL;
	if (vault_krb_principal_to_aor(principal, "EXAMPLE.TEST", DOMAIN, aor, sizeof(aor))) {
		mech->free(ctx);
		return NULL;
	}
	snprintf(si.user, sizeof(si.user), "%s", aor);
	snprintf(si.instance, sizeof(si.instance), "5ee8d8e2-4b4b-5f4c-9a3d-0123456789ab");
	if (aprep) {
		memcpy(aprep, out, out_len);
		*aprep_len = out_len;
	}
	return sa_create(t, &si, mech, ctx, expires, now);
}

/* ---- signed MESSAGEs ---- */

/* One pre-made message: what arrives, the reply the server built, and (for
 * the breakdown) the signature buffer and MIC the client computed. */
struct slot {
	char msg[MSG_CAP];
	size_t msg_len;
	char reply[REPLY_CAP];
	size_t reply_len;
	char sigbuf[SIPAE_SIGBUF_MAX];
	size_t sig_len;
	char resp[2 * SA_MAC_MAX + 1];
	uint32_t cnum;
};

struct sig_bench {
	enum sa_scheme scheme;
	struct sa_table *t;
	struct sa *sa;
	char opaque[SA_OPAQUE_LEN + 1];
	struct probe_gss *client;
	uint32_t cnum;
	struct slot *slots;
	uint64_t now;
	/* server-side scratch, like the workers' thread-local buffers */
	struct sip_msg m, rm;
	char buf[SIPAE_SIGBUF_MAX];
	char out[8192];
};

static const char body[] = "Hello Bob, are you joining the 3 pm review? -- Alice";

/* The MESSAGE's headers; auth is the Authorization line (or ""). */
static size_t msg_text(char *out, size_t cap, uint32_t cnum, const char *auth)
{
	int n = snprintf(out, cap,
			 "MESSAGE sip:bob@" DOMAIN " SIP/2.0\r\n"
			 "Via: SIP/2.0/TCP 127.0.0.1:51234;branch=z9hG4bK%08x.%u;rport\r\n"
			 "Max-Forwards: 70\r\n"
			 "From: <sip:alice@" DOMAIN ">;tag=7d3a1c2b9e;epid=5f2a9c1e7b\r\n"
			 "To: <sip:bob@" DOMAIN ">\r\n"
			 "Call-ID: 4c1e8f2a9b7d4e6f8a0b1c2d3e4f5a6b.%u\r\n"
			 "CSeq: %u MESSAGE\r\n"
			 "Contact: <sip:alice@127.0.0.1:51234;transport=tcp;ms-opaque=d3470f2e1d>;"
			 "+sip.instance=\"<urn:uuid:5ee8d8e2-4b4b-5f4c-9a3d-0123456789ab>\"\r\n"
			 "User-Agent: UCCAPI/15.0.4481.1000 OC/15.0.4481.1000 (Microsoft Lync)\r\n"
			 "Supported: ms-dialog-route-set-update\r\n"
			 "Supported: timer\r\n"
			 "Ms-Text-Format: text/plain; charset=UTF-8;ms-body=SGVsbG8=\r\n"
			 "Content-Type: text/plain; charset=UTF-8\r\n"
			 "%s"
			 "Content-Length: %zu\r\n"
			 "\r\n"
			 "%s",
			 cnum * 2654435761u, cnum, cnum, cnum, auth, sizeof(body) - 1, body);
	if (n < 0 || (size_t)n >= cap)
		die("message too long");
	return (size_t)n;
}

/* The 200 the server sends back, up to (without) Content-Length. */
static size_t reply_text(char *out, size_t cap, uint32_t cnum)
{
	int n = snprintf(out, cap,
			 "SIP/2.0 200 OK\r\n"
			 "Via: SIP/2.0/TCP "
			 "127.0.0.1:51234;branch=z9hG4bK%08x.%u;rport=51234;received=127.0.0.1\r\n"
			 "From: <sip:alice@" DOMAIN ">;tag=7d3a1c2b9e;epid=5f2a9c1e7b\r\n"
			 "To: <sip:bob@" DOMAIN ">;tag=%08x\r\n"
			 "Call-ID: 4c1e8f2a9b7d4e6f8a0b1c2d3e4f5a6b.%u\r\n"
			 "CSeq: %u MESSAGE\r\n"
			 "Server: " SIP_SERVER_NAME "\r\n",
			 cnum * 2654435761u, cnum, cnum ^ 0x5bd1e995u, cnum, cnum);
	if (n < 0 || (size_t)n >= cap)
		die("reply too long");
	return (size_t)n;
}

/* The client's side of one signed MESSAGE (untimed). */
static void make_slot(struct sig_bench *b, struct slot *s)
{
	struct sipae_fields f;
	struct sip_msg *m = &b->m;
	char crand[9], cnum[16], auth[512], status[4];
	const char *scheme = sa_scheme_name(b->scheme);
	const char *target = b->scheme == SA_SCHEME_KERBEROS ? "sip/" HOST : HOST;
	long len;
	size_t n;

	s->cnum = ++b->cnum;
	snprintf(cnum, sizeof(cnum), "%u", s->cnum);
	if (sipae_rand(crand))
		die("sipae_rand");
	n = msg_text(s->msg, sizeof(s->msg), s->cnum, "");
	if (sip_msg_parse(m, s->msg, n, true) != 0 || sipae_fields_from_msg(m, &f, status) != 0)
		die("client: MESSAGE does not parse");
	len = sipae_sig_buffer(str_cstr(scheme), str_cstr(crand), str_cstr(cnum),
			       str_cstr(SIPAE_REALM), str_cstr(target), &f, s->sigbuf,
			       sizeof(s->sigbuf));
	if (len < 0)
		die("client: signature buffer");
	s->sig_len = (size_t)len;
	if (probe_gss_sign_hex(b->client, s->sigbuf, s->sig_len, s->resp, sizeof(s->resp)) < 0)
		die("client: GetMIC failed");
	snprintf(auth, sizeof(auth),
		 "Authorization: %s qop=\"auth\", opaque=\"%s\", realm=\"" SIPAE_REALM
		 "\", targetname=\"%s\", crand=\"%s\", cnum=\"%s\", response=\"%s\"\r\n",
		 scheme, b->opaque, target, crand, cnum, s->resp);
	s->msg_len = msg_text(s->msg, sizeof(s->msg), s->cnum, auth);
	s->reply_len = reply_text(s->reply, sizeof(s->reply), s->cnum);
}

/* Server: verify one signed request as sipae_auth.c does. The SA stays
 * referenced in *out (sa_put it). SA_OK or an error. */
static int server_verify(struct sig_bench *b, const struct slot *s, struct sa **out)
{
	const struct sip_header *h;
	struct sipae_creds c;
	struct sipae_fields f;
	struct sa *sa;
	char status[4];
	long len;
	int rc;

	*out = NULL;
	if (sip_msg_parse(&b->m, s->msg, s->msg_len, true) != 0)
		return SA_E_MALFORMED;
	h = sip_msg_header(&b->m, SIP_H_AUTHORIZATION);
	if (!h || sipae_parse_credentials(h->value, &c) != 0)
		return SA_E_MALFORMED;
	sa = sa_find(b->t, c.opaque, b->now);
	if (!sa)
		return SA_E_STATE;
	if (sipae_fields_from_msg(&b->m, &f, status) != 0) {
		sa_put(sa);
		return SA_E_MALFORMED;
	}
	len = sipae_sig_buffer(c.scheme_str, c.crand, c.cnum_str, c.realm, c.targetname, &f, b->buf,
			       sizeof(b->buf));
	if (len < 0) {
		sa_put(sa);
		return SA_E_MALFORMED;
	}
	rc = sa_verify(sa, c.cnum, (const uint8_t *)b->buf, (size_t)len, c.response, b->now);
	if (rc != SA_OK) {
		sa_put(sa);
		return rc;
	}
	*out = sa;
	return SA_OK;
}

/* Server: sign the reply as sipae_sign_reply does (parse what was built,
 * sign, write Authentication-Info), then finish it. 0 or -1. */
static int server_sign_reply(struct sig_bench *b, struct sa *sa, const struct slot *s)
{
	static const char tail[] = "Content-Length: 0\r\n\r\n";
	struct sipae_fields f;
	struct sbuf sb;
	char status[4];
	size_t mark;

	sbuf_init(&sb, b->out, sizeof(b->out));
	sbuf_put(&sb, s->reply, s->reply_len);
	mark = sb.len;
	sbuf_puts(&sb, tail);
	if (!sbuf_ok(&sb) || sip_msg_parse(&b->rm, sb.p, sb.len, false) != 0 ||
	    sipae_fields_from_msg(&b->rm, &f, status) != 0)
		return -1;
	sb.len = mark;
	sipae_sign_write(&sb, sa, &f, STR_NULL);
	sbuf_puts(&sb, tail);
	if (!sbuf_ok(&sb) || sb.len < mark + 80)
		return -1;
	return 0;
}

enum sig_mode { SIG_VERIFY, SIG_VERIFY_SIGN, SIG_SA_VERIFY, SIG_SA_SIGN };

/* Run one mode for at least secs of timed work; chunks made untimed. */
static void sig_run(struct sig_bench *b, enum sig_mode mode, double secs, const char *name)
{
	uint64_t ns = 0, cpu = 0, ops = 0, limit = (uint64_t)(secs * 1e9);
	char mac[2 * SA_MAC_MAX + 1];

	while (ns < limit) {
		uint64_t t0, c0;

		if (mode != SIG_SA_SIGN)
			for (size_t i = 0; i < CHUNK; i++)
				make_slot(b, &b->slots[i]);
		c0 = cpu_ns();
		t0 = now_ns();
		for (size_t i = 0; i < CHUNK; i++) {
			const struct slot *s = &b->slots[i];
			struct sa *sa;
			int rc;

			switch (mode) {
			case SIG_VERIFY:
				rc = server_verify(b, s, &sa);
				if (rc != SA_OK)
					die("%s: cnum %u: %s", name, s->cnum, sa_strerror(rc));
				sa_put(sa);
				break;
			case SIG_VERIFY_SIGN:
				rc = server_verify(b, s, &sa);
				if (rc != SA_OK)
					die("%s: cnum %u: %s", name, s->cnum, sa_strerror(rc));
				if (server_sign_reply(b, sa, s))
					die("%s: signing the reply failed", name);
				sa_put(sa);
				break;
			case SIG_SA_VERIFY:
				rc = sa_verify(b->sa, s->cnum, (const uint8_t *)s->sigbuf,
					       s->sig_len, str_cstr(s->resp), b->now);
				if (rc != SA_OK)
					die("%s: cnum %u: %s", name, s->cnum, sa_strerror(rc));
				break;
			case SIG_SA_SIGN:
				if (sa_sign(b->sa, (const uint8_t *)s->sigbuf, s->sig_len, mac,
					    sizeof(mac)) < 0)
					die("%s: sa_sign failed", name);
				break;
			}
		}
		ns += now_ns() - t0;
		cpu += cpu_ns() - c0;
		ops += CHUNK;
	}
	result(name, ops, ns, cpu);
}

/* A negative check, untimed: a tampered MESSAGE must not verify, a replayed
 * one neither (the benchmark measures a path that really checks). */
static void sig_sanity(struct sig_bench *b)
{
	struct slot *s = &b->slots[0];
	struct sa *sa;
	char *p;
	int rc;

	make_slot(b, s);

	p = strstr(s->msg, "To: <sip:bob@");
	p[9] = 'B'; /* the To URI is covered */
	rc = server_verify(b, s, &sa);
	if (rc != SA_E_BAD_SIG)
		die("a tampered MESSAGE: %s, not a bad signature", sa_strerror(rc));
	p[9] = 'b';
	if (server_verify(b, s, &sa) != SA_OK)
		die("the untampered MESSAGE did not verify");
	sa_put(sa);
	if (server_verify(b, s, &sa) != SA_E_REPLAY)
		die("a replayed MESSAGE verified");
}

/* The NTLM SA: our two legs around the gss-ntlmssp initiator. */
static void sig_setup_ntlm(struct sig_bench *b)
{
	const char *pw = env_or("BENCH_SA_PASSWORD", "Secr3t!pw");
	struct store *s = store_with_alice(env_or("BENCH_SA_DIR", "/tmp"), pw);
	uint8_t chal[NTLM_CHALLENGE_MAX];
	char chal_b64[2048], auth_b64[TOK_B64_MAX];
	size_t clen;

	b->client = ntlm_client("alice", pw);
	b->sa = ntlm_leg2(b->t, b->now, chal, &clen, chal_b64, sizeof(chal_b64));
	snprintf(b->opaque, sizeof(b->opaque), "%s", sa_opaque(b->sa));
	ntlm_client_auth(b->client, chal, clen, auth_b64, sizeof(auth_b64));
	if (ntlm_leg3(b->t, s, b->opaque, auth_b64, b->now))
		die("NTLM handshake failed");
	store_close(s);
}

/* The Kerberos SA: alice's AP-REQ accepted, the AP-REP back to her. */
static void sig_setup_krb(struct sig_bench *b)
{
	uint8_t *tok, aprep[VAULT_KRB_OUT_MAX];
	size_t len, aplen = 0;
	char err[256];

	if (vault_krb_init(env_or("BENCH_SA_KEYTAB", ""), err, sizeof(err)))
		die("vault_krb_init: %s", err);
	if (probe_gss_new(PROBE_MECH_KERBEROS, NULL, NULL, NULL, &b->client, err, sizeof(err)))
		die("Kerberos initiator: %s", err);
	if (probe_gss_step(b->client, HOST, NULL, 0, &tok, &len, err, sizeof(err)) != 1)
		die("Kerberos initiator: %s", err);
	b->sa = krb_establish(b->t, tok, len, b->now, aprep, &aplen);
	free(tok);
	if (!b->sa)
		die("Kerberos: vault_krb_accept refused alice's AP-REQ");
	if (probe_gss_step(b->client, HOST, aprep, aplen, &tok, &len, err, sizeof(err)) != 0)
		die("Kerberos initiator, AP-REP: %s", err);
	free(tok);
	snprintf(b->opaque, sizeof(b->opaque), "%s", sa_opaque(b->sa));
}

static void sig_main(enum sa_scheme scheme, double secs)
{
	static const struct {
		enum sig_mode mode;
		const char *what;
	} modes[] = {{SIG_VERIFY, "verify"},
		     {SIG_VERIFY_SIGN, "verify_sign"},
		     {SIG_SA_VERIFY, "sa_verify"},
		     {SIG_SA_SIGN, "sa_sign"}};
	struct sig_bench *b = calloc(1, sizeof(*b));
	const char *mech = scheme == SA_SCHEME_NTLM ? "ntlm" : "kerberos";
	char name[64];

	if (!b)
		die("out of memory");
	b->scheme = scheme;
	b->slots = calloc(CHUNK, sizeof(*b->slots));
	b->t = sa_table_new(0);
	if (!b->slots || !b->t)
		die("out of memory");
	b->now = (uint64_t)time(NULL);
	if (scheme == SA_SCHEME_NTLM)
		sig_setup_ntlm(b);
	else
		sig_setup_krb(b);
	fprintf(stderr, "bench_sa: %s SA %s established; %.1f s per measure\n", mech, b->opaque,
		secs);
	sig_sanity(b);
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		snprintf(name, sizeof(name), "%s_%s", mech, modes[i].what);
		sig_run(b, modes[i].mode, secs, name);
	}
	printf("info name=%s_sizes msg_bytes=%zu sigbuf_bytes=%zu mic_hex=%zu cnum_last=%u\n", mech,
	       b->slots[0].msg_len, b->slots[0].sig_len, strlen(b->slots[0].resp), b->cnum);
	sa_put(b->sa);
	sa_table_free(b->t);
	probe_gss_free(b->client);
	if (scheme == SA_SCHEME_KERBEROS)
		vault_krb_shutdown();
	free(b->slots);
	free(b);
}

/* ---- establishment: Kerberos ---- */

struct tok {
	uint8_t raw[TOK_RAW_MAX];
	size_t len;
	char b64[TOK_B64_MAX];
};

static void pool_fill(struct krb_init *k, struct tok *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		p[i].len = krb_apreq(k, p[i].raw, sizeof(p[i].raw));
		if (b64_std_encode(p[i].raw, p[i].len, p[i].b64, sizeof(p[i].b64)) < 0)
			die("AP-REQ too long");
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Totals of one side over all rounds, and the per-round rates. */
struct side {
	uint64_t ops, ns, cpu;
	double rate[64];
	size_t rounds;
};

static void side_add(struct side *s, uint64_t ops, uint64_t ns, uint64_t cpu)
{
	s->ops += ops;
	s->ns += ns;
	s->cpu += cpu;
	if (s->rounds < 64)
		s->rate[s->rounds++] = ns ? (double)ops * 1e9 / (double)ns : 0;
}

static void side_result(const char *name, struct side *s)
{
	double med = median(s->rate, s->rounds);

	printf("result name=%s ops=%llu secs=%.6f rate=%.1f us_per_op=%.3f cpu_secs=%.6f "
	       "median_rate=%.1f rounds=%zu\n",
	       name, (unsigned long long)s->ops, (double)s->ns / 1e9,
	       s->ns ? (double)s->ops * 1e9 / (double)s->ns : 0.0,
	       s->ops ? (double)s->ns / 1e3 / (double)s->ops : 0.0, (double)s->cpu / 1e9, med,
	       s->rounds);
	fflush(stdout);
}

static gss_cred_id_t raw_acceptor_cred(const char *keytab)
{
	char ktname[4200];
	gss_key_value_element_desc el = {"keytab", ktname};
	gss_key_value_set_desc store = {1, &el};
	gss_OID_set_desc mechs = {1, (gss_OID)gss_mech_krb5};
	gss_cred_id_t cred = GSS_C_NO_CREDENTIAL;
	OM_uint32 maj, min;

	snprintf(ktname, sizeof(ktname), "FILE:%s", keytab);
	maj = gss_acquire_cred_from(&min, GSS_C_NO_NAME, GSS_C_INDEFINITE, &mechs, GSS_C_ACCEPT,
				    &store, &cred, NULL, NULL);
	if (GSS_ERROR(maj))
		die("gss_acquire_cred_from %s failed", keytab);
	return cred;
}

/* One timed pass over a pool: raw gss_accept_sec_context, or our path. */
static void krb_pass(bool do_raw, gss_cred_id_t cred, struct sa_table *t, struct tok *pool,
		     size_t n, gss_ctx_id_t *ctxs, struct sa **sas, uint64_t now, uint64_t *ns,
		     uint64_t *cpu)
{
	uint64_t t0, c0;
	OM_uint32 min;

	c0 = cpu_ns();
	t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		if (do_raw) {
			gss_buffer_desc in = {pool[i].len, pool[i].raw};
			gss_buffer_desc out = GSS_C_EMPTY_BUFFER;
			gss_name_t src = GSS_C_NO_NAME;
			OM_uint32 maj, flags, tr;

			ctxs[i] = GSS_C_NO_CONTEXT;
			maj = gss_accept_sec_context(&min, &ctxs[i], cred, &in,
						     GSS_C_NO_CHANNEL_BINDINGS, &src, NULL, &out,
						     &flags, &tr, NULL);
			if (maj != GSS_S_COMPLETE)
				die("raw gss_accept_sec_context failed (major %u minor %u)", maj,
				    min);
			gss_release_buffer(&min, &out);
			gss_release_name(&min, &src);
		} else {
			uint8_t tok[TOK_RAW_MAX];
			size_t len;

			if (b64_std_decode(pool[i].b64, strlen(pool[i].b64), tok, sizeof(tok),
					   &len))
				die("base64");
			sas[i] = krb_establish(t, tok, len, now, NULL, NULL);
			if (!sas[i])
				die("vault_krb_accept refused a fresh AP-REQ");
			sa_put(sas[i]);
		}
	}
	*ns = now_ns() - t0;
	*cpu = cpu_ns() - c0;
	/* untimed: what a session's end frees, on both sides */
	for (size_t i = 0; i < n; i++) {
		if (do_raw)
			gss_delete_sec_context(&min, &ctxs[i], GSS_C_NO_BUFFER);
		else
			sa_drop(t, str_cstr(sa_opaque(sas[i])));
	}
}

static void est_krb(size_t n, size_t rounds)
{
	const char *keytab = env_or("BENCH_SA_KEYTAB", "");
	struct tok *pool = calloc(n, sizeof(*pool));
	gss_ctx_id_t *ctxs = calloc(n, sizeof(*ctxs));
	struct sa **sas = calloc(n, sizeof(*sas));
	struct sa_table *t = sa_table_new(0);
	struct side ours, raw;
	struct krb_init k;
	gss_cred_id_t cred;
	uint64_t now = (uint64_t)time(NULL);
	char err[256];
	OM_uint32 min;

	if (!pool || !ctxs || !sas || !t)
		die("out of memory");
	memset(&ours, 0, sizeof(ours));
	memset(&raw, 0, sizeof(raw));
	if (vault_krb_init(keytab, err, sizeof(err)))
		die("vault_krb_init: %s", err);
	cred = raw_acceptor_cred(keytab);
	krb_init_open(&k);
	krb_apreq(&k, pool[0].raw, sizeof(pool[0].raw)); /* the service ticket into the ccache */
	fprintf(stderr, "bench_sa: Kerberos establishment, %zu rounds of %zu AP-REQs per side\n",
		rounds, n);
	for (size_t r = 0; r < rounds; r++) {
		for (int side = 0; side < 2; side++) {
			/* alternate which side goes first, so neither always
			 * meets the warmer (or fuller) replay cache */
			bool do_raw = (side == 0) == (r % 2 == 0);
			uint64_t ns, cpu;

			pool_fill(&k, pool, n);
			krb_pass(do_raw, cred, t, pool, n, ctxs, sas, now, &ns, &cpu);
			side_add(do_raw ? &raw : &ours, n, ns, cpu);
		}
	}
	side_result("krb_est_raw_gss_accept", &raw);
	side_result("krb_est_rtcauth", &ours);
	printf("info name=krb_est apreq_bytes=%zu rcache=%s\n", pool[0].len,
	       env_or("KRB5RCACHETYPE", "default"));
	krb_init_close(&k);
	gss_release_cred(&min, &cred);
	vault_krb_shutdown();
	sa_table_free(t);
	free(pool);
	free(ctxs);
	free(sas);
}

/* ---- establishment: NTLM ---- */

struct ntlm_hs {
	struct probe_gss *client;
	uint8_t chal[NTLM_CHALLENGE_MAX];
	size_t chal_len;
	char chal_b64[2048];
	char opaque[SA_OPAQUE_LEN + 1];
	char auth_b64[TOK_B64_MAX];
	uint8_t auth[TOK_RAW_MAX];
	size_t auth_len;
};

/* The bare NTLMv2 check of one AUTHENTICATE (the hash in memory). */
static void ntlm_bare(const struct ntlm_hs *h, const uint8_t nt[16], bool build_challenge)
{
	struct ntlm_transcript tr;
	struct ntlm_session sess;
	struct ntlm_auth a;

	if (build_challenge) {
		static const struct ntlm_target tg = {STR_LIT("EXAMPLE"), STR_LIT("FE01"),
						      STR_LIT(DOMAIN), STR_LIT(HOST)};
		uint8_t sc[8], out[NTLM_CHALLENGE_MAX];
		size_t len;

		if (RAND_bytes(sc, sizeof(sc)) != 1 ||
		    ntlm_build_challenge(&tg, sc, ntlm_filetime((uint64_t)time(NULL)), out,
					 sizeof(out), &len) != 0)
			die("ntlm_build_challenge");
	}
	memset(&tr, 0, sizeof(tr));
	tr.challenge = h->chal;
	tr.challenge_len = h->chal_len;
	memcpy(tr.server_challenge, h->chal + 24, 8);
	if (ntlm_parse_authenticate(h->auth, h->auth_len, &a) != 0 ||
	    ntlm_accept_v2(&a, nt, &tr, NULL, &sess) != 0)
		die("bare NTLMv2 check refused a good AUTHENTICATE");
}

/* ---- reference: gss-ntlmssp's own acceptor (connection-oriented) ---- */

static gss_OID_desc ntlmssp_oid = {GSS_NTLMSSP_OID_LENGTH, GSS_NTLMSSP_OID_STRING};

/* A gss-ntlmssp initiator credential for EXAMPLE\alice. */
static gss_cred_id_t gssntlm_client_cred(const char *password)
{
	gss_key_value_element_desc el[2] = {{GSS_NTLMSSP_CS_DOMAIN, "EXAMPLE"},
					    {GSS_NTLMSSP_CS_PASSWORD, password}};
	gss_key_value_set_desc store = {2, el};
	gss_OID_set_desc mechs = {1, &ntlmssp_oid};
	gss_buffer_desc nb = {strlen("EXAMPLE\\alice"), (void *)"EXAMPLE\\alice"};
	gss_name_t name = GSS_C_NO_NAME;
	gss_cred_id_t cred = GSS_C_NO_CREDENTIAL;
	OM_uint32 maj, min;

	maj = gss_import_name(&min, &nb, GSS_C_NT_USER_NAME, &name);
	if (!GSS_ERROR(maj))
		maj = gss_acquire_cred_from(&min, name, GSS_C_INDEFINITE, &mechs, GSS_C_INITIATE,
					    &store, &cred, NULL, NULL);
	gss_release_name(&min, &name);
	return GSS_ERROR(maj) ? GSS_C_NO_CREDENTIAL : cred;
}

struct gssntlm_hs {
	gss_ctx_id_t cctx, actx;
	gss_buffer_desc neg, auth; /* client tokens, kept for the acceptor */
};

struct gssntlm {
	gss_cred_id_t ccred, acred;
	gss_name_t target;
};

/* gss_accept_sec_context of one token, timed into *ns and *cpu. */
static OM_uint32 gssntlm_accept(struct gssntlm *g, gss_ctx_id_t *ctx, gss_buffer_t in,
				gss_buffer_t out, uint64_t *ns, uint64_t *cpu)
{
	uint64_t c0 = cpu_ns(), t0 = now_ns();
	OM_uint32 maj, min;

	maj = gss_accept_sec_context(&min, ctx, g->acred, in, GSS_C_NO_CHANNEL_BINDINGS, NULL, NULL,
				     out, NULL, NULL, NULL);
	*ns += now_ns() - t0;
	*cpu += cpu_ns() - c0;
	return maj;
}

/* One connection-oriented handshake; only the acceptor's calls are timed.
 * GSS_S_COMPLETE or the failing call's major status. */
static OM_uint32 gssntlm_handshake(struct gssntlm *g, struct gssntlm_hs *h, uint64_t *ns,
				   uint64_t *cpu)
{
	gss_buffer_desc chal = GSS_C_EMPTY_BUFFER, done = GSS_C_EMPTY_BUFFER;
	OM_uint32 maj, min;

	h->cctx = h->actx = GSS_C_NO_CONTEXT;
	maj = gss_init_sec_context(&min, g->ccred, &h->cctx, g->target, &ntlmssp_oid,
				   GSS_C_INTEG_FLAG, 0, GSS_C_NO_CHANNEL_BINDINGS, GSS_C_NO_BUFFER,
				   NULL, &h->neg, NULL, NULL);
	if (maj != GSS_S_CONTINUE_NEEDED)
		return maj ? maj : GSS_S_FAILURE;
	maj = gssntlm_accept(g, &h->actx, &h->neg, &chal, ns, cpu);
	if (maj != GSS_S_CONTINUE_NEEDED) {
		gss_release_buffer(&min, &chal);
		return maj ? maj : GSS_S_FAILURE;
	}
	maj = gss_init_sec_context(&min, g->ccred, &h->cctx, g->target, &ntlmssp_oid,
				   GSS_C_INTEG_FLAG, 0, GSS_C_NO_CHANNEL_BINDINGS, &chal, NULL,
				   &h->auth, NULL, NULL);
	gss_release_buffer(&min, &chal);
	if (GSS_ERROR(maj))
		return maj;
	maj = gssntlm_accept(g, &h->actx, &h->auth, &done, ns, cpu);
	gss_release_buffer(&min, &done);
	return maj;
}

static void gssntlm_hs_free(struct gssntlm_hs *h)
{
	OM_uint32 min;

	gss_delete_sec_context(&min, &h->cctx, GSS_C_NO_BUFFER);
	gss_delete_sec_context(&min, &h->actx, GSS_C_NO_BUFFER);
	gss_release_buffer(&min, &h->neg);
	gss_release_buffer(&min, &h->auth);
}

/* gss-ntlmssp accepting NEGOTIATE (CHALLENGE out) and AUTHENTICATE, timed
 * on both acceptor calls; the client side untimed. With NTLM_USER_FILE it
 * looks the password up in that file. 0, or -1 when its acceptor cannot
 * run here (the reason on stderr). */
static int est_gssntlm(size_t n, size_t rounds, const char *password)
{
	struct gssntlm_hs *hs = calloc(n, sizeof(*hs));
	gss_OID_set_desc mechs = {1, &ntlmssp_oid};
	gss_buffer_desc tb = {strlen("sip@" HOST), (void *)"sip@" HOST};
	struct gssntlm g = {GSS_C_NO_CREDENTIAL, GSS_C_NO_CREDENTIAL, GSS_C_NO_NAME};
	struct side ref;
	OM_uint32 maj = 0, min;
	int rc = -1;

	memset(&ref, 0, sizeof(ref));
	g.ccred = gssntlm_client_cred(password);
	if (!hs || g.ccred == GSS_C_NO_CREDENTIAL ||
	    GSS_ERROR(gss_acquire_cred(&min, GSS_C_NO_NAME, GSS_C_INDEFINITE, &mechs, GSS_C_ACCEPT,
				       &g.acred, NULL, NULL)) ||
	    GSS_ERROR(gss_import_name(&min, &tb, GSS_C_NT_HOSTBASED_SERVICE, &g.target))) {
		fprintf(stderr, "bench_sa: gss-ntlmssp acceptor credentials unavailable\n");
		goto out;
	}
	for (size_t r = 0; r < rounds; r++) {
		uint64_t ns = 0, cpu = 0;

		for (size_t i = 0; i < n && maj == 0; i++)
			maj = gssntlm_handshake(&g, &hs[i], &ns, &cpu);
		for (size_t i = 0; i < n; i++)
			gssntlm_hs_free(&hs[i]);
		if (maj) {
			fprintf(stderr, "bench_sa: gss-ntlmssp acceptor failed (major %u)\n", maj);
			goto out;
		}
		side_add(&ref, n, ns, cpu);
	}
	side_result("ntlm_est_gssntlmssp_accept", &ref);
	rc = 0;
out:
	if (g.acred != GSS_C_NO_CREDENTIAL)
		gss_release_cred(&min, &g.acred);
	if (g.ccred != GSS_C_NO_CREDENTIAL)
		gss_release_cred(&min, &g.ccred);
	gss_release_name(&min, &g.target);
	free(hs);
	return rc;
}

/* Leg 2 for every handshake of a round (timed by the caller). */
static void ntlm_pass_leg2(struct sa_table *t, struct ntlm_hs *hs, size_t n, uint64_t now)
{
	for (size_t i = 0; i < n; i++) {
		struct sa *sa = ntlm_leg2(t, now, hs[i].chal, &hs[i].chal_len, hs[i].chal_b64,
					  sizeof(hs[i].chal_b64));
		memcpy(hs[i].opaque, sa_opaque(sa), sizeof(hs[i].opaque));
		sa_put(sa);
	}
}

/* The initiators answer every CHALLENGE (untimed). */
static void ntlm_pass_clients(struct ntlm_hs *hs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		ntlm_client_auth(hs[i].client, hs[i].chal, hs[i].chal_len, hs[i].auth_b64,
				 sizeof(hs[i].auth_b64));
		if (b64_std_decode(hs[i].auth_b64, strlen(hs[i].auth_b64), hs[i].auth,
				   sizeof(hs[i].auth), &hs[i].auth_len))
			die("base64");
		probe_gss_free(hs[i].client);
		hs[i].client = NULL;
	}
}

enum { NT_OURS, NT_LEG2, NT_LEG3, NT_BARE, NT_BARE_CHAL, NT__COUNT };

/* One round of n handshakes, then the bare references on the same
 * AUTHENTICATE messages; adds to sd[NT_*]. */
static void ntlm_round(struct sa_table *t, struct store *s, struct ntlm_hs *hs, size_t n,
		       const char *pw, const uint8_t nt[16], struct side *sd)
{
	uint64_t t0, c0, ns2, cpu2, ns3, cpu3, now = (uint64_t)time(NULL);

	for (size_t i = 0; i < n; i++)
		hs[i].client = ntlm_client("alice", pw);
	c0 = cpu_ns();
	t0 = now_ns();
	ntlm_pass_leg2(t, hs, n, now);
	ns2 = now_ns() - t0;
	cpu2 = cpu_ns() - c0;
	ntlm_pass_clients(hs, n);
	c0 = cpu_ns();
	t0 = now_ns();
	for (size_t i = 0; i < n; i++)
		if (ntlm_leg3(t, s, hs[i].opaque, hs[i].auth_b64, now))
			die("NTLM handshake %zu refused", i);
	ns3 = now_ns() - t0;
	cpu3 = cpu_ns() - c0;
	side_add(&sd[NT_LEG2], n, ns2, cpu2);
	side_add(&sd[NT_LEG3], n, ns3, cpu3);
	side_add(&sd[NT_OURS], n, ns2 + ns3, cpu2 + cpu3);
	for (size_t i = 0; i < n; i++)
		sa_drop(t, str_cstr(hs[i].opaque));
	for (int bc = 0; bc < 2; bc++) {
		c0 = cpu_ns();
		t0 = now_ns();
		for (size_t i = 0; i < n; i++)
			ntlm_bare(&hs[i], nt, bc);
		side_add(&sd[bc ? NT_BARE_CHAL : NT_BARE], n, now_ns() - t0, cpu_ns() - c0);
	}
}

static void est_ntlm(size_t n, size_t rounds)
{
	const char *pw = env_or("BENCH_SA_PASSWORD", "Secr3t!pw");
	struct store *s = store_with_alice(env_or("BENCH_SA_DIR", "/tmp"), pw);
	struct ntlm_hs *hs = calloc(n, sizeof(*hs));
	struct sa_table *t = sa_table_new(n + 16);
	struct side sd[NT__COUNT];
	uint8_t nt[16];

	if (!hs || !t)
		die("out of memory");
	if (ntlm_nt_hash(pw, strlen(pw), nt))
		die("ntlm_nt_hash");
	memset(sd, 0, sizeof(sd));
	fprintf(stderr, "bench_sa: NTLM establishment, %zu rounds of %zu handshakes\n", rounds, n);
	for (size_t r = 0; r < rounds; r++)
		ntlm_round(t, s, hs, n, pw, nt, sd);
	side_result("ntlm_est_bare_v2", &sd[NT_BARE]);
	side_result("ntlm_est_bare_v2_with_challenge", &sd[NT_BARE_CHAL]);
	side_result("ntlm_est_rtcauth", &sd[NT_OURS]);
	side_result("ntlm_est_rtcauth_leg2", &sd[NT_LEG2]);
	side_result("ntlm_est_rtcauth_leg3", &sd[NT_LEG3]);
	printf("info name=ntlm_est challenge_bytes=%zu authenticate_bytes=%zu\n", hs[0].chal_len,
	       hs[0].auth_len);
	if (getenv("NTLM_USER_FILE") && est_gssntlm(n, rounds, pw) != 0)
		printf("info name=ntlm_est_gssntlmssp unavailable=1\n");
	sa_table_free(t);
	store_close(s);
	secmem_wipe(nt, sizeof(nt));
	free(hs);
}

/* ---- end to end: signed MESSAGEs over TCP against a running rtcauthd ---- */

/*
 * K NTLM clients (gss-ntlmssp, connectionless, one TCP connection each)
 * register, then each keeps W MESSAGEs to itself in flight: rtcauthd
 * verifies the MESSAGE, routes it back signed with the same SA, the client
 * answers 200 signed, rtcauthd verifies the 200 and forwards it signed.
 * So one completed MESSAGE is two verifications and two signatures on the
 * server, plus parsing, routing and four socket writes. The clients do not
 * verify the server's signatures (that would only load their core); they
 * check that every message from the server carries one.
 */

#define E2E_RBUF 262144

struct ec {
	int fd;
	char *rbuf;
	size_t rlen;
	struct probe_gss *g;
	char user[32], aor[64], tag[17], callid[48], branch[40];
	char lhost[64];
	uint16_t lport;
	char realm[PROBE_AUTH_FIELD], target[PROBE_AUTH_FIELD], opaque[PROBE_AUTH_FIELD];
	int version;
	uint32_t cnum, reg_cseq, seq;
	int inflight;
	uint64_t done, errors, unsigned_msgs;
};

static void rand_hex8(char *out)
{
	if (sipae_rand(out) != 0)
		die("sipae_rand");
	for (char *p = out; *p; p++)
		if (*p >= 'A' && *p <= 'F')
			*p = (char)(*p - 'A' + 'a');
}

static void ec_connect(struct ec *c, uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct sockaddr_in me;
	socklen_t ml = sizeof(me);
	int one = 1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		die("connect 127.0.0.1:%u: %s", port, strerror(errno));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (getsockname(c->fd, (struct sockaddr *)&me, &ml) != 0)
		die("getsockname");
	inet_ntop(AF_INET, &me.sin_addr, c->lhost, sizeof(c->lhost));
	c->lport = ntohs(me.sin_port);
	c->rbuf = malloc(E2E_RBUF);
	if (!c->rbuf)
		die("out of memory");
}

static void ec_send(struct ec *c, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd pf = {c->fd, POLLOUT, 0};
			poll(&pf, 1, 1000);
			continue;
		}
		if (n <= 0)
			die("send: %s", strerror(errno));
		buf += n;
		len -= (size_t)n;
	}
}

/* The next whole message into out (cap), or 0 when none is buffered. */
static long ec_take(struct ec *c, char *out, size_t cap)
{
	size_t skip = 0;
	long n = sip_msg_frame(c->rbuf, c->rlen, PROBE_MSG_MAX, &skip);

	if (n == SIP_E_INCOMPLETE) {
		if (skip) {
			memmove(c->rbuf, c->rbuf + skip, c->rlen - skip);
			c->rlen -= skip;
		}
		return 0;
	}
	if (n < 0 || (size_t)n > cap)
		die("%s: the server sent a stream that does not frame", c->user);
	memcpy(out, c->rbuf + skip, (size_t)n);
	memmove(c->rbuf, c->rbuf + skip + (size_t)n, c->rlen - skip - (size_t)n);
	c->rlen -= skip + (size_t)n;
	return n;
}

/* Read what the socket has (after poll said so). -1 on EOF / error. */
static int ec_fill(struct ec *c)
{
	ssize_t n;

	if (c->rlen == E2E_RBUF)
		die("%s: receive buffer full", c->user);
	n = recv(c->fd, c->rbuf + c->rlen, E2E_RBUF - c->rlen, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0)
		return -1;
	c->rlen += (size_t)n;
	return 0;
}

/* Block (at most 5 s) for the next message. Length. */
static long ec_wait(struct ec *c, char *out, size_t cap)
{
	uint64_t deadline = now_ns() + 5000000000ull;

	for (;;) {
		long n = ec_take(c, out, cap);
		struct pollfd pf = {c->fd, POLLIN, 0};

		if (n > 0)
			return n;
		if (now_ns() > deadline)
			die("%s: no answer from rtcauthd within 5 s", c->user);
		if (poll(&pf, 1, 100) > 0 && ec_fill(c) < 0)
			die("%s: rtcauthd closed the connection", c->user);
	}
}

/* ", crand=..., cnum=..., response=..." for msg (built without it). */
static void ec_sign(struct ec *c, const char *msg, size_t len, char *out, size_t cap)
{
	struct sip_msg *m = malloc(sizeof(*m));
	struct sipae_fields f;
	char crand[9], num[16], status[4], buf[SIPAE_SIGBUF_MAX], hex[2 * SA_MAC_MAX + 1];
	long n;

	if (!m)
		die("out of memory");
	if (sipae_rand(crand))
		die("sipae_rand");
	snprintf(num, sizeof(num), "%u", ++c->cnum);
	if (sip_msg_parse(m, msg, len, true) != 0 || sipae_fields_from_msg(m, &f, status) != 0)
		die("%s: own message does not parse", c->user);
	n = sipae_sig_buffer(str_cstr("NTLM"), str_cstr(crand), str_cstr(num), str_cstr(c->realm),
			     str_cstr(c->target), &f, buf, sizeof(buf));
	if (n < 0 || probe_gss_sign_hex(c->g, buf, (size_t)n, hex, sizeof(hex)) < 0)
		die("%s: GetMIC", c->user);
	snprintf(out, cap, ", crand=\"%s\", cnum=\"%s\", response=\"%s\"", crand, num, hex);
	free(m);
}

/* A request: head, then auth (a prefix without CRLF, or NULL), signed when
 * sign; Content-Length and body. Length of out. */
static size_t ec_request(struct ec *c, const char *method, const char *callid, uint32_t cseq,
			 const char *tag, bool reg, const char *auth, bool sign, char *out,
			 size_t cap)
{
	char head[2048], sig[300];
	const char *bodytxt = reg ? "" : body;
	struct sbuf b;
	size_t hl;

	sbuf_init(&b, head, sizeof(head));
	rand_hex8(c->branch);
	sbuf_printf(&b, "%s sip:%s SIP/2.0\r\n", method, reg ? DOMAIN : c->aor + 4);
	sbuf_printf(&b, "Via: SIP/2.0/TCP %s:%u;branch=z9hG4bK%s.%u;rport\r\n", c->lhost, c->lport,
		    c->branch, ++c->seq);
	sbuf_puts(&b, "Max-Forwards: 70\r\n");
	sbuf_printf(&b, "From: <%s>;tag=%s\r\n", c->aor, tag);
	sbuf_printf(&b, "To: <%s>\r\n", c->aor);
	sbuf_printf(&b, "Call-ID: %s\r\n", callid);
	sbuf_printf(&b, "CSeq: %u %s\r\n", cseq, method);
	sbuf_printf(&b, "Contact: <sip:%s@%s:%u;transport=tcp>%s\r\n", c->user, c->lhost, c->lport,
		    reg ? ";+sip.instance=\"<urn:uuid:5ee8d8e2-4b4b-5f4c-9a3d-0123456789ab>\""
			: "");
	if (reg)
		sbuf_puts(&b, "Expires: 600\r\n");
	sbuf_puts(&b, "User-Agent: bench_sa\r\n");
	if (!reg)
		sbuf_puts(&b, "Content-Type: text/plain; charset=UTF-8\r\n");
	if (!sbuf_ok(&b))
		die("request too long");
	hl = b.len;
	sig[0] = '\0';
	if (sign) {
		int n = snprintf(out, cap, "%.*sContent-Length: %zu\r\n\r\n%s", (int)hl, head,
				 strlen(bodytxt), bodytxt);
		if (n < 0 || (size_t)n >= cap)
			die("request too long");
		ec_sign(c, out, (size_t)n, sig, sizeof(sig));
	}
	{
		int n =
		    snprintf(out, cap, "%.*s%s%s%sContent-Length: %zu\r\n\r\n%s", (int)hl, head,
			     auth ? auth : "", sig, auth ? "\r\n" : "", strlen(bodytxt), bodytxt);
		if (n < 0 || (size_t)n >= cap)
			die("request too long");
		return (size_t)n;
	}
}

/* Our scheme's challenge (NTLM) in a 401. */
static void ec_challenge(const struct sip_msg *m, struct probe_auth *a)
{
	for (const struct sip_header *h = sip_msg_header(m, SIP_H_WWW_AUTHENTICATE); h;
	     h = sip_msg_next_header(m, h))
		if (probe_auth_parse(h->value, a) == 0 && strcasecmp(a->scheme, "NTLM") == 0)
			return;
	die("no NTLM challenge in the 401 (is ntlm in [auth] schemes?)");
}

static void ec_register(struct ec *c, const char *password)
{
	struct probe_auth *a = malloc(sizeof(*a));
	struct sip_msg *m = malloc(sizeof(*m));
	char *out = malloc(PROBE_MSG_MAX), *in = malloc(PROBE_MSG_MAX);
	char line[PROBE_AUTH_TOKEN + 1024], gss[PROBE_AUTH_TOKEN + 1], err[256];
	uint8_t tok[PROBE_AUTH_TOKEN], *t;
	size_t len, tl;
	long n;

	if (!a || !m || !out || !in)
		die("out of memory");
	c->g = ntlm_client(c->user, password);
	snprintf(c->callid, sizeof(c->callid), "reg-%s-%d", c->user, getpid());
	rand_hex8(c->tag);
	/* 1: unsigned REGISTER -> 401 offering NTLM */
	len = ec_request(c, "REGISTER", c->callid, ++c->reg_cseq, c->tag, true, NULL, false, out,
			 PROBE_MSG_MAX);
	ec_send(c, out, len);
	n = ec_wait(c, in, PROBE_MSG_MAX);
	if (sip_msg_parse(m, in, (size_t)n, true) != 0 || m->status != 401)
		die("%s: first REGISTER: not a 401", c->user);
	ec_challenge(m, a);
	snprintf(c->realm, sizeof(c->realm), "%s", a->realm);
	snprintf(c->target, sizeof(c->target), "%s", a->targetname);
	c->version = a->version ? a->version : 3;
	/* 2: gssapi-data="" -> 401 with the CHALLENGE and the opaque */
	snprintf(line, sizeof(line),
		 "Authorization: NTLM qop=\"auth\", realm=\"%s\", targetname=\"%s\", "
		 "gssapi-data=\"\", version=%d",
		 c->realm, c->target, c->version);
	len = ec_request(c, "REGISTER", c->callid, ++c->reg_cseq, c->tag, true, line, false, out,
			 PROBE_MSG_MAX);
	ec_send(c, out, len);
	n = ec_wait(c, in, PROBE_MSG_MAX);
	if (sip_msg_parse(m, in, (size_t)n, true) != 0 || m->status != 401)
		die("%s: second REGISTER: not a 401", c->user);
	ec_challenge(m, a);
	snprintf(c->opaque, sizeof(c->opaque), "%s", a->opaque);
	if (b64_std_decode(a->gssapi_data, strlen(a->gssapi_data), tok, sizeof(tok), &tl) ||
	    !c->opaque[0])
		die("%s: 401 without an NTLM CHALLENGE", c->user);
	/* 3: AUTHENTICATE, signed (version 4) -> 200 */
	if (probe_gss_step(c->g, HOST, tok, tl, &t, &tl, err, sizeof(err)) != 0)
		die("%s: NTLM initiator: %s", c->user, err);
	if (b64_std_encode(t, tl, gss, sizeof(gss)) < 0)
		die("AUTHENTICATE too long");
	free(t);
	snprintf(
	    line, sizeof(line),
	    "Authorization: NTLM qop=\"auth\", opaque=\"%s\", realm=\"%s\", targetname=\"%s\", "
	    "gssapi-data=\"%s\", version=%d",
	    c->opaque, c->realm, c->target, gss, c->version);
	len = ec_request(c, "REGISTER", c->callid, ++c->reg_cseq, c->tag, true, line,
			 c->version >= 4, out, PROBE_MSG_MAX);
	ec_send(c, out, len);
	n = ec_wait(c, in, PROBE_MSG_MAX);
	if (sip_msg_parse(m, in, (size_t)n, true) != 0 || m->status != 200)
		die("%s: NTLM REGISTER: %d, not 200 (password, NT hash stored?)", c->user,
		    m->status);
	free(a);
	free(m);
	free(out);
	free(in);
}

static void ec_message(struct ec *c, char *out, size_t cap)
{
	char callid[64], tag[9], line[400];
	size_t len;

	rand_hex8(tag);
	snprintf(callid, sizeof(callid), "m%u-%s-%s", c->seq, tag, c->user);
	snprintf(line, sizeof(line),
		 "Authorization: NTLM qop=\"auth\", opaque=\"%s\", realm=\"%s\", targetname=\"%s\"",
		 c->opaque, c->realm, c->target);
	len = ec_request(c, "MESSAGE", callid, 1, tag, false, line, true, out, cap);
	ec_send(c, out, len);
	c->inflight++;
}

/* Answer a routed MESSAGE with a signed 200 (the probe's send_response). */
static void ec_answer(struct ec *c, const struct sip_msg *req, char *out, size_t cap)
{
	char head[4096], sig[300], line[400];
	struct sbuf b;
	int n;

	sbuf_init(&b, head, sizeof(head));
	sbuf_puts(&b, "SIP/2.0 200 OK\r\n");
	for (size_t i = 0; i < req->n_hdrs; i++) {
		const struct sip_header *h = &req->hdrs[i];

		if (h->id == SIP_H_VIA || h->id == SIP_H_FROM || h->id == SIP_H_CALL_ID ||
		    h->id == SIP_H_CSEQ || h->id == SIP_H_RECORD_ROUTE || h->id == SIP_H_TO) {
			sbuf_putstr(&b, h->name);
			sbuf_puts(&b, ": ");
			sbuf_putstr(&b, h->value);
			if (h->id == SIP_H_TO)
				sbuf_puts(&b, ";tag=b3e1");
			sbuf_puts(&b, "\r\n");
		}
	}
	sbuf_puts(&b, "User-Agent: bench_sa\r\n");
	if (!sbuf_ok(&b))
		die("response too long");
	n = snprintf(out, cap, "%.*sContent-Length: 0\r\n\r\n", (int)b.len, head);
	if (n < 0 || (size_t)n >= cap)
		die("response too long");
	ec_sign(c, out, (size_t)n, sig, sizeof(sig));
	snprintf(line, sizeof(line),
		 "Authorization: NTLM qop=\"auth\", opaque=\"%s\", realm=\"%s\", "
		 "targetname=\"%s\"%s\r\n",
		 c->opaque, c->realm, c->target, sig);
	n = snprintf(out, cap, "%.*s%sContent-Length: 0\r\n\r\n", (int)b.len, head, line);
	if (n < 0 || (size_t)n >= cap)
		die("response too long");
	ec_send(c, out, (size_t)n);
}

static bool server_signed(const struct sip_msg *m)
{
	return sip_msg_header(m, SIP_H_AUTHENTICATION_INFO) ||
	       sip_msg_header(m, SIP_H_PROXY_AUTHENTICATION_INFO);
}

/* One message from the server during the load. */
static void ec_handle(struct ec *c, const char *in, size_t n, bool sending, char *out, size_t cap,
		      struct sip_msg *m)
{
	uint32_t num;
	struct str meth;

	if (sip_msg_parse(m, in, n, true) != 0) {
		c->errors++;
		return;
	}
	if (!server_signed(m))
		c->unsigned_msgs++;
	if (m->is_request) {
		if (m->method_id == SIP_M_MESSAGE)
			ec_answer(c, m, out, cap);
		return;
	}
	if (sip_msg_cseq(m, &num, &meth) != 0 || !str_eq_cstr(meth, "MESSAGE") || m->status < 200)
		return;
	c->inflight--;
	if (m->status == 200)
		c->done++;
	else
		c->errors++;
	if (sending)
		ec_message(c, out, cap);
}

/* utime+stime of a process (all its threads), in clock ticks; 0 if gone. */
static uint64_t proc_ticks(long pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;
	size_t n;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return 0;
	return (uint64_t)ut + st;
}

/* The load: window MESSAGEs in flight per client until stop_ns, then wait
 * (at most 5 s) for the ones in flight. */
static void e2e_load(struct ec *cs, struct pollfd *pf, int k, int window, uint64_t stop_ns)
{
	struct sip_msg *m = malloc(sizeof(*m));
	char *in = malloc(PROBE_MSG_MAX), *out = malloc(PROBE_MSG_MAX);

	if (!m || !in || !out)
		die("out of memory");
	for (int i = 0; i < k; i++)
		for (int w = 0; w < window; w++)
			ec_message(&cs[i], out, PROBE_MSG_MAX);
	for (;;) {
		uint64_t now = now_ns();
		bool sending = now < stop_ns;
		int left = 0;

		for (int i = 0; i < k; i++)
			left += cs[i].inflight;
		if (!sending && (left == 0 || now > stop_ns + 5000000000ull))
			break;
		if (poll(pf, (nfds_t)k, 100) <= 0)
			continue;
		for (int i = 0; i < k; i++) {
			long n;

			if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (ec_fill(&cs[i]) < 0)
				die("%s: rtcauthd closed the connection", cs[i].user);
			while ((n = ec_take(&cs[i], in, PROBE_MSG_MAX)) > 0)
				ec_handle(&cs[i], in, (size_t)n, sending, out, PROBE_MSG_MAX, m);
		}
	}
	free(m);
	free(in);
	free(out);
}

static void e2e_main(uint16_t port, int k, double secs, int window, long daemon_pid)
{
	const char *pw = env_or("BENCH_SA_PASSWORD", "Secr3t!pw");
	struct ec *cs = calloc((size_t)k, sizeof(*cs));
	struct pollfd *pf = calloc((size_t)k, sizeof(*pf));
	uint64_t t0, d0, c0, done = 0, errors = 0, unsig = 0;
	double el, dcpu, ccpu;

	if (!cs || !pf)
		die("out of memory");
	for (int i = 0; i < k; i++) {
		struct ec *c = &cs[i];

		snprintf(c->user, sizeof(c->user), "user%03d", i);
		snprintf(c->aor, sizeof(c->aor), "sip:%s@" DOMAIN, c->user);
		ec_connect(c, port);
		ec_register(c, pw);
		pf[i].fd = c->fd;
		pf[i].events = POLLIN;
	}
	fprintf(stderr,
		"bench_sa: %d NTLM clients registered over TCP; %d MESSAGEs in flight each\n", k,
		window);
	d0 = proc_ticks(daemon_pid);
	c0 = cpu_ns();
	t0 = now_ns();
	e2e_load(cs, pf, k, window, t0 + (uint64_t)(secs * 1e9));
	el = (double)(now_ns() - t0) / 1e9;
	ccpu = (double)(cpu_ns() - c0) / 1e9;
	dcpu = (double)(proc_ticks(daemon_pid) - d0) / (double)sysconf(_SC_CLK_TCK);
	for (int i = 0; i < k; i++) {
		done += cs[i].done;
		errors += cs[i].errors + (uint64_t)(cs[i].inflight > 0 ? cs[i].inflight : 0);
		unsig += cs[i].unsigned_msgs;
		close(cs[i].fd);
		probe_gss_free(cs[i].g);
		free(cs[i].rbuf);
	}
	printf("result name=e2e_ntlm_message ops=%llu secs=%.6f rate=%.1f us_per_op=%.3f "
	       "cpu_secs=%.6f errors=%llu unsigned=%llu clients=%d window=%d daemon_cpu_secs=%.2f "
	       "daemon_cpu_pct=%.1f daemon_us_per_msg=%.2f msgs_per_daemon_cpu_s=%.1f\n",
	       (unsigned long long)done, el, (double)done / el,
	       done ? el * 1e6 / (double)done : 0.0, ccpu, (unsigned long long)errors,
	       (unsigned long long)unsig, k, window, dcpu, 100 * dcpu / el,
	       done ? dcpu * 1e6 / (double)done : 0.0, dcpu > 0 ? (double)done / dcpu : 0.0);
	free(cs);
	free(pf);
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "sig") == 0) {
		double secs = argc > 3 ? atof(argv[3]) : DEFAULT_SECS;

		if (strcmp(argv[2], "ntlm") == 0)
			sig_main(SA_SCHEME_NTLM, secs);
		else if (strcmp(argv[2], "kerberos") == 0)
			sig_main(SA_SCHEME_KERBEROS, secs);
		else
			die("sig: ntlm or kerberos, not '%s'", argv[2]);
		return 0;
	}
	if (argc >= 3 && strcmp(argv[1], "est") == 0) {
		size_t n = argc > 3 ? (size_t)atol(argv[3]) : 2000;
		size_t rounds = argc > 4 ? (size_t)atol(argv[4]) : 3;

		if (n == 0 || rounds == 0 || rounds > 64)
			die("est: N > 0, 1 <= ROUNDS <= 64");
		if (strcmp(argv[2], "kerberos") == 0)
			est_krb(n, rounds);
		else if (strcmp(argv[2], "ntlm") == 0)
			est_ntlm(n, rounds);
		else
			die("est: ntlm or kerberos, not '%s'", argv[2]);
		return 0;
	}
	if (argc >= 3 && strcmp(argv[1], "e2e") == 0) {
		int k = argc > 3 ? atoi(argv[3]) : 8, w = argc > 5 ? atoi(argv[5]) : 4;
		double secs = argc > 4 ? atof(argv[4]) : 10;
		long pid = atol(env_or("BENCH_SA_DAEMON_PID", "0"));

		if (k < 1 || k > 1000 || w < 1 || w > 1000 || secs <= 0)
			die("e2e: 1 <= K <= 1000, 1 <= WINDOW <= 1000, SECONDS > 0");
		e2e_main((uint16_t)atoi(argv[2]), k, secs, w, pid);
		return 0;
	}
	fprintf(stderr, "usage: bench_sa sig ntlm|kerberos [SECONDS]\n"
			"       bench_sa est ntlm|kerberos [N] [ROUNDS]\n"
			"       bench_sa e2e PORT [K] [SECONDS] [WINDOW]\n");
	return 2;
}
