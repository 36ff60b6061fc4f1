/*
 * The Kerberos acceptor (src/vault/gss.c) against a real MIT KDC: the group
 * setup makes a throwaway realm with tests/integ/krb5_realm.sh (RTC_TOP or
 * the cwd), users get tickets with the krb5 API, and the initiator side is
 * MIT's own gss_init_sec_context, never the code under test. Covers the
 * raw krb5 and SPNEGO tokens, mutual authentication (the AP-REP), RFC 4121
 * MIC tokens both ways, and every refusal reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <gssapi/gssapi.h>
#include <gssapi/gssapi_ext.h>
#include <gssapi/gssapi_krb5.h>
#include <krb5.h>
#include <pthread.h>

#include "core/b64.h"
#include "vault/gss.h"

static gss_OID_desc spnego_mech = {6, (void *)"\x2b\x06\x01\x05\x05\x02"};

static char top[1024];
static char dir[256];
static char keytab[512];
static char alice_pw[128];
static bool realm_up;

/* ---- realm ---------------------------------------------------------------- */

static void realm_stop(void)
{
	char cmd[2048];

	if (!realm_up)
		return;
	realm_up = false;
	snprintf(cmd, sizeof(cmd), "timeout 20 bash '%s/tests/integ/krb5_realm.sh' stop '%s'", top,
		 dir);
	if (system(cmd) != 0)
		fprintf(stderr, "# stopping the KDC in %s failed\n", dir);
}

/* DIR/env: NAME='value' lines -> setenv */
static int load_env(void)
{
	char path[600], line[1200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/env", dir);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *eq = strchr(line, '='), *v, *end;

		if (!eq || eq[1] != '\'')
			continue;
		*eq = '\0';
		v = eq + 2;
		end = strrchr(v, '\'');
		if (!end)
			continue;
		*end = '\0';
		setenv(line, v, 1);
		if (strcmp(line, "KRB5_REALM_ALICE_PW") == 0)
			snprintf(alice_pw, sizeof(alice_pw), "%s", v);
	}
	fclose(f);
	return 0;
}

static int group_setup(void **state)
{
	char cmd[2048], err[512];
	const char *t = getenv("RTC_TOP");

	if (t && t[0])
		snprintf(top, sizeof(top), "%s", t);
	else if (!getcwd(top, sizeof(top)))
		return -1;
	snprintf(dir, sizeof(dir), "/tmp/rtcauth-gss.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	/* the KDC goes when this process goes, even if it dies before teardown */
	snprintf(cmd, sizeof(cmd),
		 "KRB5_REALM_WATCH_PID=%ld timeout 30 bash '%s/tests/integ/krb5_realm.sh' start "
		 "'%s/realm' EXAMPLE.TEST >'%s/start.out' 2>&1",
		 (long)getpid(), top, dir, dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "# krb5_realm.sh start failed; see %s/start.out\n", dir);
		return -1;
	}
	snprintf(dir + strlen(dir), sizeof(dir) - strlen(dir), "/realm");
	realm_up = true;
	atexit(realm_stop);
	if (load_env() || !alice_pw[0])
		return -1;
	snprintf(keytab, sizeof(keytab), "%s/sip.keytab", dir);
	if (vault_krb_init(keytab, err, sizeof(err))) {
		fprintf(stderr, "# vault_krb_init: %s\n", err);
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[600];

	vault_krb_shutdown();
	realm_stop();
	/* dir is .../realm; remove its parent */
	*strrchr(dir, '/') = '\0';
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return -1;
	return 0;
}

/* ---- initiator helpers (MIT krb5 and GSSAPI, not the code under test) ---- */

/* alice's TGT (lifetime seconds, 0 = default) into ccache "FILE:DIR/<name>" */
static void kinit_alice(const char *name, krb5_deltat lifetime, char *ccname, size_t cap)
{
	krb5_context kc;
	krb5_principal me;
	krb5_get_init_creds_opt *opt;
	krb5_creds creds;
	krb5_ccache cc;

	snprintf(ccname, cap, "FILE:%s/%s", dir, name);
	assert_int_equal(krb5_init_context(&kc), 0);
	assert_int_equal(krb5_parse_name(kc, "alice@EXAMPLE.TEST", &me), 0);
	assert_int_equal(krb5_get_init_creds_opt_alloc(kc, &opt), 0);
	if (lifetime)
		krb5_get_init_creds_opt_set_tkt_life(opt, lifetime);
	memset(&creds, 0, sizeof(creds));
	assert_int_equal(
	    krb5_get_init_creds_password(kc, &creds, me, alice_pw, NULL, NULL, 0, NULL, opt), 0);
	assert_int_equal(krb5_cc_resolve(kc, ccname, &cc), 0);
	assert_int_equal(krb5_cc_initialize(kc, cc, me), 0);
	assert_int_equal(krb5_cc_store_cred(kc, cc, &creds), 0);
	krb5_cc_close(kc, cc);
	krb5_free_cred_contents(kc, &creds);
	krb5_get_init_creds_opt_free(kc, opt);
	krb5_free_principal(kc, me);
	krb5_free_context(kc);
}

static const char *alice_ccache(void)
{
	static char cc[600];

	if (!cc[0])
		kinit_alice("alice.cc", 0, cc, sizeof(cc));
	return cc;
}

struct init {
	gss_cred_id_t cred;
	gss_ctx_id_t ctx;
	gss_name_t target;
	gss_OID mech;
	OM_uint32 flags;
};

/* First initiator leg: a token for service@fe01.example.test into tok. */
static void init_start(struct init *in, const char *ccname, const char *service, gss_OID mech,
		       gss_buffer_desc *tok)
{
	gss_key_value_element_desc el = {"ccache", ccname};
	gss_key_value_set_desc store = {1, &el};
	char svc[128];
	gss_buffer_desc nb;
	OM_uint32 maj, min;

	memset(in, 0, sizeof(*in));
	in->mech = mech;
	snprintf(svc, sizeof(svc), "%s@fe01.example.test", service);
	nb.value = svc;
	nb.length = strlen(svc);
	maj = gss_import_name(&min, &nb, GSS_C_NT_HOSTBASED_SERVICE, &in->target);
	assert_int_equal(maj, GSS_S_COMPLETE);
	maj = gss_acquire_cred_from(&min, GSS_C_NO_NAME, GSS_C_INDEFINITE, GSS_C_NO_OID_SET,
				    GSS_C_INITIATE, &store, &in->cred, NULL, NULL);
	assert_int_equal(maj, GSS_S_COMPLETE);
	maj = gss_init_sec_context(
	    &min, in->cred, &in->ctx, in->target, mech,
	    GSS_C_MUTUAL_FLAG | GSS_C_INTEG_FLAG | GSS_C_SEQUENCE_FLAG | GSS_C_REPLAY_FLAG, 0,
	    GSS_C_NO_CHANNEL_BINDINGS, GSS_C_NO_BUFFER, NULL, tok, &in->flags, NULL);
	if (maj != GSS_S_CONTINUE_NEEDED)
		fprintf(stderr, "# gss_init_sec_context: major %u minor %u\n", maj, min);
	assert_int_equal(maj, GSS_S_CONTINUE_NEEDED);
	assert_true(tok->length > 0);
}

/* Second initiator leg with the acceptor's answer; the major status. */
static OM_uint32 init_finish(struct init *in, const uint8_t *ans, size_t len)
{
	gss_buffer_desc it = {len, (void *)ans}, out = GSS_C_EMPTY_BUFFER;
	OM_uint32 maj, min;

	maj = gss_init_sec_context(&min, in->cred, &in->ctx, in->target, in->mech,
				   GSS_C_MUTUAL_FLAG | GSS_C_INTEG_FLAG | GSS_C_SEQUENCE_FLAG |
				       GSS_C_REPLAY_FLAG,
				   0, GSS_C_NO_CHANNEL_BINDINGS, &it, NULL, &out, &in->flags, NULL);
	gss_release_buffer(&min, &out);
	return maj;
}

static void init_free(struct init *in)
{
	OM_uint32 min;

	if (in->ctx != GSS_C_NO_CONTEXT)
		gss_delete_sec_context(&min, &in->ctx, GSS_C_NO_BUFFER);
	gss_release_cred(&min, &in->cred);
	gss_release_name(&min, &in->target);
}

/* One token for service, accepted with want; the verdict (acceptor context
 * freed unless keep). */
struct acc {
	struct verdict v;
	const struct sa_mech *mech;
	void *ctx;
	char principal[VAULT_KRB_PRINCIPAL_MAX];
	uint64_t expires;
	uint8_t out[VAULT_KRB_OUT_MAX];
	size_t out_len;
};

static void accept_tok(struct acc *a, const void *tok, size_t len, const char *want)
{
	memset(a, 0, sizeof(*a));
	a->v =
	    vault_krb_accept(tok, len, want, &a->mech, &a->ctx, a->principal, sizeof(a->principal),
			     &a->expires, a->out, sizeof(a->out), &a->out_len);
}

static void acc_free(struct acc *a)
{
	if (a->mech && a->ctx)
		a->mech->free(a->ctx);
	a->ctx = NULL;
}

/* A fresh token for service from alice and the acceptor's verdict. */
static struct verdict try_service_mech(const char *service, const char *want, gss_OID mech)
{
	struct init in;
	struct acc a;
	gss_buffer_desc tok = GSS_C_EMPTY_BUFFER;
	OM_uint32 min;

	init_start(&in, alice_ccache(), service, mech, &tok);
	accept_tok(&a, tok.value, tok.length, want);
	gss_release_buffer(&min, &tok);
	acc_free(&a);
	init_free(&in);
	return a.v;
}

static struct verdict try_service(const char *service, const char *want)
{
	return try_service_mech(service, want, (gss_OID)gss_mech_krb5);
}

static void assert_reason(struct verdict v, enum verdict_kind kind, const char *reason)
{
	if (v.kind != kind || strcmp(v.reason, reason) != 0)
		fail_msg("verdict %d \"%s\", want %d \"%s\"", v.kind, v.reason, kind, reason);
}

/* A full handshake: initiator and acceptor contexts ready for MICs. */
static void handshake(struct init *in, struct acc *a, gss_OID mech, const char *service)
{
	gss_buffer_desc tok = GSS_C_EMPTY_BUFFER;
	OM_uint32 min;
	time_t now = time(NULL);

	init_start(in, alice_ccache(), service, mech, &tok);
	accept_tok(a, tok.value, tok.length, service);
	gss_release_buffer(&min, &tok);
	assert_reason(a->v, VERDICT_OK, "ok");
	assert_non_null(a->mech);
	assert_non_null(a->ctx);
	assert_string_equal(a->principal, "alice@EXAMPLE.TEST");
	/* the ticket's end: 10 h (max_life of the realm) after alice's kinit */
	assert_true(a->expires > (uint64_t)now + 9 * 3600);
	assert_true(a->expires <= (uint64_t)now + 10 * 3600 + 5);
	assert_true(a->out_len > 0);
	assert_int_equal(init_finish(in, a->out, a->out_len), GSS_S_COMPLETE);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_gss_accepts_krb5_ap_req_and_initiator_accepts_ap_rep(void **state)
{
	struct init in;
	struct acc a;

	handshake(&in, &a, (gss_OID)gss_mech_krb5, "sip");
	/* mutual authentication was asked and done */
	assert_true(in.flags & GSS_C_MUTUAL_FLAG);
	assert_int_equal(a.out[0], 0x60); /* a krb5 mech token (AP-REP) */
	acc_free(&a);
	init_free(&in);
}

static void test_gss_accepts_spnego_wrapped_kerberos(void **state)
{
	struct init in;
	struct acc a;

	/* what curl --negotiate sends: SPNEGO NegTokenInit with the AP-REQ */
	handshake(&in, &a, &spnego_mech, "HTTP");
	assert_int_equal(a.out[0], 0xa1); /* NegTokenResp carrying the AP-REP */
	acc_free(&a);
	init_free(&in);
}

static void test_gss_initiator_mic_verifies_and_tampering_fails(void **state)
{
	static const char msg[] =
	    "<Kerberos><13317733><1><SIP Communications Service>"
	    "<sip/fe01.example.test><callid><1><REGISTER>"
	    "<sip:alice@example.test><fromtag><sip:alice@example.test><><><><>";
	gss_buffer_desc mb = {sizeof(msg) - 1, (void *)msg}, mic = GSS_C_EMPTY_BUFFER;
	uint8_t bad[sizeof(msg)], badmic[SA_MAC_MAX];
	struct init in;
	struct acc a;
	OM_uint32 min;

	handshake(&in, &a, (gss_OID)gss_mech_krb5, "sip");
	assert_int_equal(gss_get_mic(&min, in.ctx, GSS_C_QOP_DEFAULT, &mb, &mic), GSS_S_COMPLETE);
	assert_true(mic.length > 0 && mic.length <= SA_MAC_MAX);
	/* RFC 4121 §4.2.6.1: a MIC token starts 04 04 */
	assert_int_equal(((uint8_t *)mic.value)[0], 0x04);
	assert_int_equal(((uint8_t *)mic.value)[1], 0x04);
	assert_int_equal(a.mech->verify(a.ctx, mb.value, mb.length, mic.value, mic.length), 0);

	memcpy(bad, msg, sizeof(msg));
	bad[20] ^= 0x01;
	assert_int_equal(a.mech->verify(a.ctx, bad, mb.length, mic.value, mic.length), -1);
	memcpy(badmic, mic.value, mic.length);
	badmic[mic.length - 1] ^= 0x80;
	assert_int_equal(a.mech->verify(a.ctx, mb.value, mb.length, badmic, mic.length), -1);
	assert_int_equal(a.mech->verify(a.ctx, mb.value, mb.length, mic.value, 10), -1);
	assert_int_equal(a.mech->verify(a.ctx, mb.value, mb.length - 1, mic.value, mic.length), -1);
	/* the same MIC again is a GSS duplicate, not an error: the SA window rules */
	assert_int_equal(a.mech->verify(a.ctx, mb.value, mb.length, mic.value, mic.length), 0);
	gss_release_buffer(&min, &mic);
	acc_free(&a);
	init_free(&in);
}

static void test_gss_acceptor_mic_verifies_at_initiator(void **state)
{
	static const char msg[] = "<Kerberos><9616454F><1><SIP Communications Service>"
				  "<sip/fe01.example.test><callid><1><REGISTER>"
				  "<sip:alice@example.test><fromtag><sip:alice@example.test>"
				  "<totag><><><7200><200>";
	uint8_t mac[SA_MAC_MAX], bad[sizeof(msg)];
	size_t mac_len = 0, i;
	gss_buffer_desc mb = {sizeof(msg) - 1, (void *)msg}, mt;
	struct init in;
	struct acc a;
	OM_uint32 min, qop;

	handshake(&in, &a, (gss_OID)gss_mech_krb5, "sip");
	for (i = 0; i < 3; i++) { /* several in sequence, as snum counts up */
		assert_int_equal(
		    a.mech->sign(a.ctx, mb.value, mb.length, mac, sizeof(mac), &mac_len), 0);
		assert_true(mac_len >= 28 && mac_len <= SA_MAC_MAX);
		mt.value = mac;
		mt.length = mac_len;
		assert_int_equal(gss_verify_mic(&min, in.ctx, &mb, &mt, &qop), GSS_S_COMPLETE);
	}
	memcpy(bad, msg, sizeof(msg));
	bad[1] ^= 0x20;
	mb.value = bad;
	assert_int_equal(GSS_ROUTINE_ERROR(gss_verify_mic(&min, in.ctx, &mb, &mt, &qop)),
			 GSS_S_BAD_SIG);
	/* a buffer too small for the MIC token */
	assert_int_equal(a.mech->sign(a.ctx, mb.value, mb.length, mac, 8, &mac_len), -1);
	assert_int_equal(mac_len, 0);
	acc_free(&a);
	init_free(&in);
}

static void test_gss_spnego_context_signs_and_verifies(void **state)
{
	static const char msg[] = "<Kerberos><00000001><1><><><c><1><REGISTER><><><><><><><><>";
	gss_buffer_desc mb = {sizeof(msg) - 1, (void *)msg}, mic = GSS_C_EMPTY_BUFFER, mt;
	uint8_t mac[SA_MAC_MAX];
	size_t mac_len;
	struct init in;
	struct acc a;
	OM_uint32 min;

	handshake(&in, &a, &spnego_mech, "HTTP");
	assert_int_equal(gss_get_mic(&min, in.ctx, GSS_C_QOP_DEFAULT, &mb, &mic), GSS_S_COMPLETE);
	assert_int_equal(a.mech->verify(a.ctx, mb.value, mb.length, mic.value, mic.length), 0);
	assert_int_equal(a.mech->sign(a.ctx, mb.value, mb.length, mac, sizeof(mac), &mac_len), 0);
	mt.value = mac;
	mt.length = mac_len;
	assert_int_equal(gss_verify_mic(&min, in.ctx, &mb, &mt, NULL), GSS_S_COMPLETE);
	gss_release_buffer(&min, &mic);
	acc_free(&a);
	init_free(&in);
}

static void test_gss_ticket_for_another_service_is_wrong_service(void **state)
{
	gss_buffer_desc tok = GSS_C_EMPTY_BUFFER;
	struct init in;
	struct acc a;
	OM_uint32 min;

	/* the ticket is good: the client is named for the log, no context */
	init_start(&in, alice_ccache(), "HTTP", (gss_OID)gss_mech_krb5, &tok);
	accept_tok(&a, tok.value, tok.length, "sip");
	assert_reason(a.v, VERDICT_PERMFAIL, "wrong_service");
	assert_string_equal(a.principal, "alice@EXAMPLE.TEST");
	assert_null(a.ctx);
	assert_null(a.mech);
	assert_int_equal(a.out_len, 0);
	gss_release_buffer(&min, &tok);
	init_free(&in);

	assert_reason(try_service("HTTP", "sip"), VERDICT_PERMFAIL, "wrong_service");
	assert_reason(try_service("sip", "HTTP"), VERDICT_PERMFAIL, "wrong_service");
	assert_reason(try_service("sip", "si"), VERDICT_PERMFAIL, "wrong_service");
	assert_reason(try_service("sip", "sipx"), VERDICT_PERMFAIL, "wrong_service");
	assert_reason(try_service("sip", ""), VERDICT_PERMFAIL, "wrong_service");
	/* the keytab serves both; the caller chooses */
	assert_reason(try_service("HTTP", "HTTP"), VERDICT_OK, "ok");
	assert_reason(try_service("HTTP", "http"), VERDICT_OK, "ok");
	assert_reason(try_service("sip", NULL), VERDICT_OK, "ok");
	assert_reason(try_service("HTTP", NULL), VERDICT_OK, "ok");
}

static void test_gss_ticket_for_service_not_in_keytab_is_bad_ticket(void **state)
{
	assert_reason(try_service("other", NULL), VERDICT_PERMFAIL, "bad_ticket");
	assert_reason(try_service("other", "other"), VERDICT_PERMFAIL, "bad_ticket");
	/* the same reasons through SPNEGO (its minor codes are the krb5 ones) */
	assert_reason(try_service_mech("other", NULL, &spnego_mech), VERDICT_PERMFAIL,
		      "bad_ticket");
	assert_reason(try_service_mech("sip", "HTTP", &spnego_mech), VERDICT_PERMFAIL,
		      "wrong_service");
}

static void test_gss_garbage_and_truncated_tokens_are_malformed(void **state)
{
	static const uint8_t ntlm[] = "NTLMSSP\0\x01\0\0\0\x07\x82\x08\xa2\0\0\0\0\0\0\0\0\0\0\0\0"
				      "\0\0\0\0";
	/* an initial context token for an unknown mechanism (1.2.3.4) */
	static const uint8_t other_mech[] = {0x60, 0x07, 0x06, 0x03, 0x2a, 0x03, 0x04, 0x01, 0x00};
	/* SPNEGO NegTokenResp: the second leg of an exchange we never began */
	static const uint8_t negresp[] = {0xa1, 0x07, 0x30, 0x05, 0xa0, 0x03, 0x0a, 0x01, 0x00};
	/* the krb5 OID with a non-minimal length encoding */
	static const uint8_t longlen[] = {0x60, 0x81, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48,
					  0x86, 0xf7, 0x12, 0x01, 0x02, 0x02, 0x01, 0x00};
	/* the krb5 OID and TOK_ID but no AP-REQ inside */
	static const uint8_t empty_apreq[] = {0x60, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
					      0xf7, 0x12, 0x01, 0x02, 0x02, 0x01, 0x00};
	uint8_t junk[256], copy[VAULT_KRB_MAX_TOKEN];
	gss_buffer_desc tok = GSS_C_EMPTY_BUFFER;
	struct init in;
	struct acc a;
	OM_uint32 min;
	size_t i;

	for (i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 37 + 11);
	accept_tok(&a, junk, sizeof(junk), "sip");
	assert_reason(a.v, VERDICT_PERMFAIL, "malformed");
	assert_null(a.mech);
	assert_null(a.ctx);
	assert_int_equal(a.out_len, 0);
	assert_string_equal(a.principal, "");
	accept_tok(&a, NULL, 0, "sip");
	assert_reason(a.v, VERDICT_PERMFAIL, "malformed");
	accept_tok(&a, junk, 0, "sip");
	assert_reason(a.v, VERDICT_PERMFAIL, "malformed");
	accept_tok(&a, ntlm, sizeof(ntlm) - 1, NULL);
	assert_reason(a.v, VERDICT_PERMFAIL, "malformed");
	accept_tok(&a, other_mech, sizeof(other_mech), NULL);
	assert_reason(a.v, VERDICT_PERMFAIL, "malformed");
	accept_tok(&a, negresp, sizeof(negresp), NULL);
	assert_reason(a.v, VERDICT_PERMFAIL, "malformed");
	accept_tok(&a, longlen, sizeof(longlen), NULL);
	assert_reason(a.v, VERDICT_PERMFAIL, "malformed");
	accept_tok(&a, empty_apreq, sizeof(empty_apreq), NULL);
	assert_reason(a.v, VERDICT_PERMFAIL, "malformed");

	/* a real token, cut short or with bytes added: the DER length no longer fits */
	init_start(&in, alice_ccache(), "sip", (gss_OID)gss_mech_krb5, &tok);
	assert_true(tok.length < sizeof(copy) - 1);
	memcpy(copy, tok.value, tok.length);
	accept_tok(&a, copy, tok.length - 1, "sip");
	assert_reason(a.v, VERDICT_PERMFAIL, "malformed");
	accept_tok(&a, copy, tok.length / 2, "sip");
	assert_reason(a.v, VERDICT_PERMFAIL, "malformed");
	accept_tok(&a, copy, 17, "sip");
	assert_reason(a.v, VERDICT_PERMFAIL, "malformed");
	copy[tok.length] = 0;
	accept_tok(&a, copy, tok.length + 1, "sip");
	assert_reason(a.v, VERDICT_PERMFAIL, "malformed");
	/* the same token with a non-minimal (BER, not DER) outer length */
	assert_int_equal(copy[1], 0x82);
	memmove(copy + 5, copy + 4, tok.length - 4);
	copy[1] = 0x83;
	copy[2] = 0x00;
	memcpy(copy + 3, (const uint8_t *)tok.value + 2, 2);
	accept_tok(&a, copy, tok.length + 1, "sip");
	assert_reason(a.v, VERDICT_PERMFAIL, "malformed");
	memcpy(copy, tok.value, tok.length);
	/* the framing intact, the AP-REQ's own DER broken */
	copy[17] ^= 0xff;
	accept_tok(&a, copy, tok.length, "sip");
	assert_reason(a.v, VERDICT_PERMFAIL, "malformed");
	gss_release_buffer(&min, &tok);
	init_free(&in);
}

static void test_gss_modified_authenticator_is_bad_ticket(void **state)
{
	gss_buffer_desc tok = GSS_C_EMPTY_BUFFER;
	struct init in;
	struct acc a;
	uint8_t *copy;
	OM_uint32 min;

	init_start(&in, alice_ccache(), "sip", (gss_OID)gss_mech_krb5, &tok);
	copy = malloc(tok.length);
	assert_non_null(copy);
	memcpy(copy, tok.value, tok.length);
	/* the last bytes are the authenticator's ciphertext (its HMAC) */
	copy[tok.length - 2] ^= 0x01;
	accept_tok(&a, copy, tok.length, "sip");
	assert_reason(a.v, VERDICT_PERMFAIL, "bad_ticket");
	assert_null(a.ctx);
	assert_string_equal(a.principal, "");
	free(copy);
	gss_release_buffer(&min, &tok);
	init_free(&in);
}

static void test_gss_oversized_token_is_malformed(void **state)
{
	size_t n = VAULT_KRB_MAX_TOKEN + 1;
	uint8_t *big = calloc(1, n);
	struct acc a;

	assert_non_null(big);
	/* well-formed framing around a body that is too large */
	big[0] = 0x60;
	big[1] = 0x82;
	big[2] = (uint8_t)((n - 4) >> 8);
	big[3] = (uint8_t)(n - 4);
	memcpy(big + 4, "\x06\x09\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x01\x00", 13);
	accept_tok(&a, big, n, "sip");
	assert_reason(a.v, VERDICT_PERMFAIL, "malformed");
	free(big);
}

static void test_gss_replayed_ap_req_is_refused(void **state)
{
	gss_buffer_desc tok = GSS_C_EMPTY_BUFFER;
	struct init in;
	struct acc a;
	OM_uint32 min;

	init_start(&in, alice_ccache(), "sip", (gss_OID)gss_mech_krb5, &tok);
	accept_tok(&a, tok.value, tok.length, "sip");
	assert_reason(a.v, VERDICT_OK, "ok");
	acc_free(&a);
	accept_tok(&a, tok.value, tok.length, "sip");
	assert_reason(a.v, VERDICT_PERMFAIL, "replay");
	assert_null(a.ctx);
	gss_release_buffer(&min, &tok);
	init_free(&in);

	/* the same through SPNEGO */
	init_start(&in, alice_ccache(), "HTTP", &spnego_mech, &tok);
	accept_tok(&a, tok.value, tok.length, "HTTP");
	assert_reason(a.v, VERDICT_OK, "ok");
	acc_free(&a);
	accept_tok(&a, tok.value, tok.length, "HTTP");
	assert_reason(a.v, VERDICT_PERMFAIL, "replay");
	assert_null(a.ctx);
	gss_release_buffer(&min, &tok);
	init_free(&in);
}

/*
 * A ticket that expired. The acceptor forgives `clockskew` seconds past a
 * ticket's end (RFC 4120 §3.2.3), 300 s by default: to see expiry within
 * seconds, this test puts a krb5.conf with clockskew = 1 in front of the
 * realm's for the accept call. The GSS initiator refuses to use an expired
 * ticket, so the AP-REQ is made with krb5_mk_req_extended (a client with a
 * stale ticket) and framed as a krb5 mech token (RFC 4121 §4.1).
 */
static void test_gss_expired_ticket_is_expired(void **state)
{
	char ccname[600], conf[600], both[1400], *old;
	krb5_context kc;
	krb5_ccache cc;
	krb5_creds want, *creds = NULL;
	krb5_auth_context ac = NULL;
	krb5_data apreq = {0};
	uint8_t tok[4096];
	size_t n;
	struct acc a;
	FILE *f;
	int i;

	kinit_alice("short.cc", 2, ccname, sizeof(ccname));
	assert_int_equal(krb5_init_context(&kc), 0);
	assert_int_equal(krb5_cc_resolve(kc, ccname, &cc), 0);
	memset(&want, 0, sizeof(want));
	assert_int_equal(krb5_cc_get_principal(kc, cc, &want.client), 0);
	assert_int_equal(krb5_parse_name(kc, "sip/fe01.example.test@EXAMPLE.TEST", &want.server),
			 0);
	assert_int_equal(krb5_get_credentials(kc, 0, cc, &want, &creds), 0);
	assert_true(creds->times.endtime - creds->times.authtime <= 2);

	/* wait until the ticket ended more than 1 s ago (bounded: ~5 s) */
	for (i = 0; i < 60 && time(NULL) <= (time_t)creds->times.endtime + 2; i++)
		usleep(100 * 1000);
	assert_true(time(NULL) > (time_t)creds->times.endtime + 2);
	assert_int_equal(
	    krb5_mk_req_extended(kc, &ac, AP_OPTS_MUTUAL_REQUIRED, NULL, creds, &apreq), 0);
	/* RFC 4121 §4.1: [APPLICATION 0] { krb5 OID, TOK_ID 01 00, AP-REQ } */
	n = 4 + 13 + apreq.length;
	assert_true(n - 4 >= 256 && n - 4 < 65536 && n <= sizeof(tok));
	tok[0] = 0x60;
	tok[1] = 0x82; /* two length bytes: 256 <= n - 4 < 65536 */
	tok[2] = (uint8_t)((n - 4) >> 8);
	tok[3] = (uint8_t)(n - 4);
	memcpy(tok + 4, "\x06\x09\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x01\x00", 13);
	memcpy(tok + 17, apreq.data, apreq.length);

	snprintf(conf, sizeof(conf), "%s/skew1.conf", dir);
	f = fopen(conf, "w");
	assert_non_null(f);
	fputs("[libdefaults]\n\tclockskew = 1\n", f);
	fclose(f);
	old = strdup(getenv("KRB5_CONFIG"));
	assert_non_null(old);
	snprintf(both, sizeof(both), "%s:%s", conf, old);
	setenv("KRB5_CONFIG", both, 1);
	accept_tok(&a, tok, n, "sip");
	setenv("KRB5_CONFIG", old, 1);
	free(old);
	assert_reason(a.v, VERDICT_PERMFAIL, "expired");
	assert_null(a.ctx);

	krb5_free_data_contents(kc, &apreq);
	krb5_auth_con_free(kc, ac);
	krb5_free_creds(kc, creds);
	krb5_free_cred_contents(kc, &want);
	krb5_cc_close(kc, cc);
	krb5_free_context(kc);
}

/*
 * A client whose clock is an hour ahead. MIT keeps a KDC time offset in
 * the credential cache (kdc_timesync): a cache written by a context whose
 * time was set an hour ahead (krb5_set_real_time) makes MIT's own GSS
 * initiator stamp its authenticator an hour ahead, the way a client with
 * a wrong clock would.
 */
static void test_gss_clock_skew_is_clock_skew(void **state)
{
	char good[600], skewed[600];
	krb5_context kc;
	krb5_ccache gcc, scc;
	krb5_principal me;
	krb5_creds want, *creds = NULL;
	gss_buffer_desc tok = GSS_C_EMPTY_BUFFER;
	struct init in;
	struct acc a;
	OM_uint32 min;

	kinit_alice("skew-good.cc", 0, good, sizeof(good));
	assert_int_equal(krb5_init_context(&kc), 0);
	assert_int_equal(krb5_cc_resolve(kc, good, &gcc), 0);
	assert_int_equal(krb5_cc_get_principal(kc, gcc, &me), 0);
	/* the service ticket first, with the right clock: the KDC would refuse a
	 * TGS request an hour off */
	memset(&want, 0, sizeof(want));
	want.client = me;
	assert_int_equal(krb5_parse_name(kc, "sip/fe01.example.test@EXAMPLE.TEST", &want.server),
			 0);
	assert_int_equal(krb5_get_credentials(kc, 0, gcc, &want, &creds), 0);
	krb5_free_creds(kc, creds);
	krb5_free_principal(kc, want.server);

	assert_int_equal(krb5_set_real_time(kc, (krb5_timestamp)(time(NULL) + 3600), 0), 0);
	snprintf(skewed, sizeof(skewed), "FILE:%s/skew-ahead.cc", dir);
	assert_int_equal(krb5_cc_resolve(kc, skewed, &scc), 0);
	assert_int_equal(krb5_cc_initialize(kc, scc, me), 0);
	assert_int_equal(krb5_cc_copy_creds(kc, gcc, scc), 0);
	krb5_cc_close(kc, scc);
	krb5_cc_close(kc, gcc);
	krb5_free_principal(kc, me);
	krb5_free_context(kc);

	init_start(&in, skewed, "sip", (gss_OID)gss_mech_krb5, &tok);
	accept_tok(&a, tok.value, tok.length, "sip");
	assert_reason(a.v, VERDICT_PERMFAIL, "clock_skew");
	assert_null(a.ctx);
	gss_release_buffer(&min, &tok);
	init_free(&in);
	init_start(&in, skewed, "sip", &spnego_mech, &tok);
	accept_tok(&a, tok.value, tok.length, "sip");
	assert_reason(a.v, VERDICT_PERMFAIL, "clock_skew");
	gss_release_buffer(&min, &tok);
	init_free(&in);
}

/*
 * What `curl --negotiate` sends: a one-connection-at-a-time HTTP server on
 * 127.0.0.1 answers 401 "WWW-Authenticate: Negotiate" and keeps the
 * Authorization header curl comes back with.
 */
struct http_fx {
	int lfd;
	char auth[16384];
};

static void *http_401(void *arg)
{
	struct http_fx *h = arg;
	char req[20000];
	static const char resp[] = "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate\r\n"
				   "Content-Length: 0\r\nConnection: close\r\n\r\n";
	int i;

	for (i = 0; i < 3 && !h->auth[0]; i++) {
		struct pollfd p = {h->lfd, POLLIN, 0};
		size_t n = 0;
		ssize_t r;
		char *a, *e;
		int c;

		if (poll(&p, 1, 10000) != 1)
			break;
		c = accept(h->lfd, NULL, NULL);
		if (c < 0)
			break;
		while (n < sizeof(req) - 1 && !strstr(req, "\r\n\r\n")) {
			p.fd = c;
			if (poll(&p, 1, 10000) != 1)
				break;
			r = read(c, req + n, sizeof(req) - 1 - n);
			if (r <= 0)
				break;
			n += (size_t)r;
			req[n] = '\0';
		}
		a = strstr(req, "Authorization: Negotiate ");
		if (a && (e = strstr(a, "\r\n")) != NULL) {
			a += strlen("Authorization: Negotiate ");
			snprintf(h->auth, sizeof(h->auth), "%.*s", (int)(e - a), a);
		}
		if (write(c, resp, sizeof(resp) - 1) < 0)
			n = 0;
		close(c);
		memset(req, 0, sizeof(req));
	}
	return NULL;
}

static void test_gss_accepts_what_curl_negotiate_sends(void **state)
{
	static struct http_fx h;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	pthread_t t;
	char cmd[1024], *old;
	static uint8_t tok[12288];
	size_t n;
	struct acc a;

	if (system("curl --version >/dev/null 2>&1") != 0)
		fail_msg("curl is missing: scripts/install-deps installs it");
	memset(&h, 0, sizeof(h));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	h.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(h.lfd >= 0);
	assert_int_equal(bind(h.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(h.lfd, (struct sockaddr *)&sa, &sl), 0);
	assert_int_equal(listen(h.lfd, 4), 0);
	assert_int_equal(pthread_create(&t, NULL, http_401, &h), 0);
	old = strdup(getenv("KRB5CCNAME"));
	assert_non_null(old);
	setenv("KRB5CCNAME", alice_ccache(), 1);
	snprintf(
	    cmd, sizeof(cmd),
	    "curl -s -o /dev/null -m 10 --negotiate -u : --resolve fe01.example.test:%u:127.0.0.1 "
	    "http://fe01.example.test:%u/webticket",
	    ntohs(sa.sin_port), ntohs(sa.sin_port));
	if (system(cmd) == -1)
		fail_msg("cannot run curl");
	setenv("KRB5CCNAME", old, 1);
	free(old);
	pthread_join(t, NULL);
	close(h.lfd);
	assert_true(h.auth[0]);
	assert_int_equal(b64_std_decode(h.auth, strlen(h.auth), tok, sizeof(tok), &n), 0);
	/* SPNEGO NegTokenInit with the AP-REQ as the optimistic token */
	assert_int_equal(tok[0], 0x60);
	accept_tok(&a, tok, n, "HTTP");
	assert_reason(a.v, VERDICT_OK, "ok");
	assert_string_equal(a.principal, "alice@EXAMPLE.TEST");
	assert_int_equal(a.out[0], 0xa1); /* NegTokenResp accept-completed with the AP-REP */
	acc_free(&a);
}

static void test_gss_small_buffers_are_tempfail_and_null_out_token_drops_ap_rep(void **state)
{
	gss_buffer_desc tok = GSS_C_EMPTY_BUFFER;
	const struct sa_mech *mech;
	void *ctx;
	char principal[VAULT_KRB_PRINCIPAL_MAX];
	uint64_t expires;
	uint8_t out[VAULT_KRB_OUT_MAX];
	size_t out_len = 99;
	struct verdict v;
	struct init in;
	OM_uint32 min;

	/* "alice@EXAMPLE.TEST" needs 19 bytes */
	init_start(&in, alice_ccache(), "sip", (gss_OID)gss_mech_krb5, &tok);
	v = vault_krb_accept(tok.value, tok.length, "sip", &mech, &ctx, principal, 18, &expires,
			     out, sizeof(out), &out_len);
	assert_reason(v, VERDICT_TEMPFAIL, "unavailable");
	assert_null(ctx);
	assert_int_equal(out_len, 0);
	gss_release_buffer(&min, &tok);
	init_free(&in);

	init_start(&in, alice_ccache(), "sip", (gss_OID)gss_mech_krb5, &tok);
	v = vault_krb_accept(tok.value, tok.length, "sip", &mech, &ctx, principal, 19, &expires,
			     out, 16, &out_len);
	assert_reason(v, VERDICT_TEMPFAIL, "unavailable");
	assert_null(ctx);
	gss_release_buffer(&min, &tok);
	init_free(&in);

	init_start(&in, alice_ccache(), "sip", (gss_OID)gss_mech_krb5, &tok);
	v = vault_krb_accept(tok.value, tok.length, "sip", &mech, &ctx, principal, 19, &expires,
			     NULL, 0, &out_len);
	assert_reason(v, VERDICT_OK, "ok");
	assert_string_equal(principal, "alice@EXAMPLE.TEST");
	assert_int_equal(out_len, 0);
	mech->free(ctx);
	gss_release_buffer(&min, &tok);
	init_free(&in);
}

/* DER: tag, length (short or 0x82 form), value -> out; bytes written */
static size_t der_put(uint8_t *out, uint8_t tag, const uint8_t *v, size_t n)
{
	size_t h = 2;

	out[0] = tag;
	if (n < 0x80) {
		out[1] = (uint8_t)n;
	} else if (n < 0x100) {
		out[1] = 0x81;
		out[2] = (uint8_t)n;
		h = 3;
	} else {
		out[1] = 0x82;
		out[2] = (uint8_t)(n >> 8);
		out[3] = (uint8_t)n;
		h = 4;
	}
	memmove(out + h, v, n);
	return h + n;
}

/* RFC 4178 §4.2.1 NegTokenInit: mechTypes (DER OIDs, concatenated) and the
 * optimistic mechToken, in the GSS framing. Bytes written to out. */
static size_t spnego_init_token(uint8_t *out, const uint8_t *mechs, size_t mlen,
				const uint8_t *mtok, size_t tlen)
{
	static uint8_t a[16384], b[16384];
	size_t n, m;

	n = der_put(a, 0x30, mechs, mlen);		  /* MechTypeList */
	n = der_put(b, 0xa0, a, n);			  /* [0] mechTypes */
	m = der_put(a, 0x04, mtok, tlen);		  /* OCTET STRING */
	n += der_put(b + n, 0xa2, a, m);		  /* [2] mechToken */
	n = der_put(a + 8, 0x30, b, n);			  /* NegTokenInit */
	n = der_put(b + 8, 0xa0, a + 8, n);		  /* [0] */
	memcpy(a, "\x06\x06\x2b\x06\x01\x05\x05\x02", 8); /* SPNEGO OID */
	memcpy(a + 8, b + 8, n);
	return der_put(out, 0x60, a, n + 8);
}

#define OID_KRB5    "\x06\x09\x2a\x86\x48\x86\xf7\x12\x01\x02\x02"
#define OID_MS_KRB5 "\x06\x09\x2a\x86\x48\x82\xf7\x12\x01\x02\x02"
#define OID_NTLM    "\x06\x0a\x2b\x06\x01\x04\x01\x82\x37\x02\x02\x0a"

/* A SPNEGO token with this mechanism list around a fresh krb5 AP-REQ. */
static struct verdict try_spnego_list(const char *mechs, size_t mlen)
{
	static uint8_t t[20000];
	gss_buffer_desc tok = GSS_C_EMPTY_BUFFER;
	struct init in;
	struct acc a;
	OM_uint32 min;
	size_t n;

	init_start(&in, alice_ccache(), "HTTP", (gss_OID)gss_mech_krb5, &tok);
	assert_true(tok.length < 12000);
	n = spnego_init_token(t, (const uint8_t *)mechs, mlen, tok.value, tok.length);
	accept_tok(&a, t, n, "HTTP");
	if (a.v.kind == VERDICT_OK) {
		assert_string_equal(a.principal, "alice@EXAMPLE.TEST");
		assert_int_equal(a.out[0], 0xa1);
	}
	acc_free(&a);
	gss_release_buffer(&min, &tok);
	init_free(&in);
	return a.v;
}

static void test_gss_spnego_windows_mech_lists_take_one_leg(void **state)
{
	/* what Windows (SSPI) lists: Microsoft's krb5 OID first, then krb5, NTLM */
	assert_reason(try_spnego_list(OID_MS_KRB5 OID_KRB5 OID_NTLM, 11 + 11 + 12), VERDICT_OK,
		      "ok");
	assert_reason(try_spnego_list(OID_MS_KRB5 OID_KRB5, 22), VERDICT_OK, "ok");
	assert_reason(try_spnego_list(OID_KRB5 OID_NTLM, 23), VERDICT_OK, "ok");
	assert_reason(try_spnego_list(OID_KRB5, 11), VERDICT_OK, "ok");
}

static void test_gss_spnego_needing_a_second_leg_is_malformed(void **state)
{
	/* NTLM preferred, a krb5 token sent: SPNEGO would ask for another leg */
	assert_reason(try_spnego_list(OID_NTLM OID_KRB5, 23), VERDICT_PERMFAIL, "malformed");
	/* NTLM only: never through this acceptor */
	assert_reason(try_spnego_list(OID_NTLM, 12), VERDICT_PERMFAIL, "malformed");
}

struct worker {
	int ok;
};

static void *accept_worker(void *arg)
{
	struct worker *w = arg;
	int i;

	for (i = 0; i < 5; i++) {
		struct verdict v = try_service(i % 2 ? "HTTP" : "sip", i % 2 ? "HTTP" : "sip");

		if (v.kind == VERDICT_OK)
			w->ok++;
	}
	return NULL;
}

static void test_gss_accepts_from_several_threads_at_once(void **state)
{
	pthread_t t[4];
	struct worker w[4];
	int i;

	(void)alice_ccache();
	memset(w, 0, sizeof(w));
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, accept_worker, &w[i]), 0);
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].ok, 5);
	}
}

/* ---- vault_krb_init errors ------------------------------------------------ */

static void expect_init_error(const char *path, const char *what)
{
	char err[512] = "";

	assert_int_equal(vault_krb_init(path, err, sizeof(err)), -1);
	if (!strstr(err, path) || !strstr(err, what))
		fail_msg("error \"%s\" lacks \"%s\" or \"%s\"", err, path, what);
}

static void test_gss_init_refuses_missing_directory_nonkeytab_and_empty(void **state)
{
	char p[600];
	FILE *f;

	snprintf(p, sizeof(p), "%s/no-such.keytab", dir);
	expect_init_error(p, "does not exist");
	expect_init_error(dir, "is a directory");
	snprintf(p, sizeof(p), "%s/krb5.conf", dir);
	expect_init_error(p, "is not a keytab");
	snprintf(p, sizeof(p), "%s/empty.keytab", dir);
	f = fopen(p, "w");
	assert_non_null(f);
	fclose(f);
	expect_init_error(p, "is empty");
	/* a keytab file with its version header and no entries (what ktremove
	 * of the last key leaves) */
	snprintf(p, sizeof(p), "%s/nokeys.keytab", dir);
	f = fopen(p, "w");
	assert_non_null(f);
	fwrite("\x05\x02", 1, 2, f);
	fclose(f);
	expect_init_error(p, "holds no keys");
	snprintf(p, sizeof(p), "%s/fifo.keytab", dir);
	assert_int_equal(mkfifo(p, 0600), 0);
	expect_init_error(p, "not a regular file");
	expect_init_error("", "");
	/* a failed reload keeps the credentials that work */
	assert_true(vault_krb_ready());
	assert_reason(try_service("sip", "sip"), VERDICT_OK, "ok");
}

/* Root reads every file: an unreadable keytab needs another user. A child
 * becomes nobody and reports through its exit status. */
static void test_gss_init_refuses_unreadable_keytab(void **state)
{
	char copy[600], cmd[2600], err[512];
	pid_t pid;
	int st = -1;

	if (geteuid() != 0)
		skip();
	snprintf(copy, sizeof(copy), "%s/root-only.keytab", dir);
	/* nobody may enter the directories, not read the file */
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && chmod 600 '%s' && chmod 711 '%s' '%s/..'",
		 keytab, copy, copy, dir, dir);
	assert_int_equal(system(cmd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int ok = setgid(65534) == 0 && setuid(65534) == 0 &&
			 vault_krb_init(copy, err, sizeof(err)) == -1 && strstr(err, copy) &&
			 strstr(err, "cannot be read: Permission denied");

		if (!ok)
			fprintf(stderr, "# child: %s\n", err);
		_exit(ok ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_gss_accept_without_init_is_tempfail_unavailable(void **state)
{
	char err[512];
	gss_buffer_desc tok = GSS_C_EMPTY_BUFFER;
	struct init in;
	struct acc a;
	OM_uint32 min;

	init_start(&in, alice_ccache(), "sip", (gss_OID)gss_mech_krb5, &tok);
	vault_krb_shutdown();
	assert_false(vault_krb_ready());
	accept_tok(&a, tok.value, tok.length, "sip");
	assert_reason(a.v, VERDICT_TEMPFAIL, "unavailable");
	assert_null(a.ctx);
	/* a keytab that fails to load leaves it unavailable */
	expect_init_error("/nonexistent/rtcauth.keytab", "does not exist");
	assert_false(vault_krb_ready());
	assert_int_equal(vault_krb_init(keytab, err, sizeof(err)), 0);
	assert_true(vault_krb_ready());
	accept_tok(&a, tok.value, tok.length, "sip");
	assert_reason(a.v, VERDICT_OK, "ok");
	acc_free(&a);
	gss_release_buffer(&min, &tok);
	init_free(&in);
}

static void test_gss_keytab_gone_after_init_is_tempfail_unavailable(void **state)
{
	char moved[600], *old;
	gss_buffer_desc tok = GSS_C_EMPTY_BUFFER;
	struct init in;
	struct acc a;
	OM_uint32 min;

	/* an operator's mistake or a half-done rotation is no client's fault */
	snprintf(moved, sizeof(moved), "%s.moved", keytab);
	init_start(&in, alice_ccache(), "sip", (gss_OID)gss_mech_krb5, &tok);
	assert_int_equal(rename(keytab, moved), 0);
	accept_tok(&a, tok.value, tok.length, "sip");
	assert_int_equal(rename(moved, keytab), 0);
	assert_reason(a.v, VERDICT_TEMPFAIL, "unavailable");
	assert_null(a.ctx);
	gss_release_buffer(&min, &tok);
	init_free(&in);
	assert_reason(try_service("sip", "sip"), VERDICT_OK, "ok");

	/* the replay cache cannot be written */
	old = strdup(getenv("KRB5RCACHEDIR"));
	assert_non_null(old);
	setenv("KRB5RCACHEDIR", "/nonexistent/rtcauth-rcache", 1);
	init_start(&in, alice_ccache(), "sip", (gss_OID)gss_mech_krb5, &tok);
	accept_tok(&a, tok.value, tok.length, "sip");
	setenv("KRB5RCACHEDIR", old, 1);
	free(old);
	assert_reason(a.v, VERDICT_TEMPFAIL, "unavailable");
	assert_null(a.ctx);
	gss_release_buffer(&min, &tok);
	init_free(&in);
}

/* ---- principal to AOR ---------------------------------------------------- */

static void test_gss_principal_maps_to_aor_in_our_realm_only(void **state)
{
	char aor[64];

	assert_int_equal(vault_krb_principal_to_aor("alice@EXAMPLE.TEST", "EXAMPLE.TEST",
						    "example.test", aor, sizeof(aor)),
			 0);
	assert_string_equal(aor, "sip:alice@example.test");
	assert_int_equal(vault_krb_principal_to_aor("Alice.Smith@example.test", "EXAMPLE.TEST",
						    "sip.example.test", aor, sizeof(aor)),
			 0);
	assert_string_equal(aor, "sip:Alice.Smith@sip.example.test");
	/* another realm, an instance, an escape, empty parts, two '@' */
	assert_int_equal(vault_krb_principal_to_aor("alice@EVIL.TEST", "EXAMPLE.TEST",
						    "example.test", aor, sizeof(aor)),
			 -1);
	assert_string_equal(aor, "");
	assert_int_equal(vault_krb_principal_to_aor("alice@EXAMPLE.TEST.EVIL", "EXAMPLE.TEST",
						    "example.test", aor, sizeof(aor)),
			 -1);
	assert_int_equal(vault_krb_principal_to_aor("alice/admin@EXAMPLE.TEST", "EXAMPLE.TEST",
						    "example.test", aor, sizeof(aor)),
			 -1);
	assert_int_equal(vault_krb_principal_to_aor("sip/fe01.example.test@EXAMPLE.TEST",
						    "EXAMPLE.TEST", "example.test", aor,
						    sizeof(aor)),
			 -1);
	assert_int_equal(vault_krb_principal_to_aor("a\\@b@EXAMPLE.TEST", "EXAMPLE.TEST",
						    "example.test", aor, sizeof(aor)),
			 -1);
	assert_int_equal(vault_krb_principal_to_aor("@EXAMPLE.TEST", "EXAMPLE.TEST", "example.test",
						    aor, sizeof(aor)),
			 -1);
	assert_int_equal(
	    vault_krb_principal_to_aor("alice", "EXAMPLE.TEST", "example.test", aor, sizeof(aor)),
	    -1);
	assert_int_equal(
	    vault_krb_principal_to_aor("alice@", "EXAMPLE.TEST", "example.test", aor, sizeof(aor)),
	    -1);
	assert_int_equal(vault_krb_principal_to_aor("a@b@EXAMPLE.TEST", "EXAMPLE.TEST",
						    "example.test", aor, sizeof(aor)),
			 -1);
	assert_int_equal(vault_krb_principal_to_aor("al ice@EXAMPLE.TEST", "EXAMPLE.TEST",
						    "example.test", aor, sizeof(aor)),
			 -1);
	assert_int_equal(vault_krb_principal_to_aor("al<i>ce@EXAMPLE.TEST", "EXAMPLE.TEST",
						    "example.test", aor, sizeof(aor)),
			 -1);
	/* too small for the AOR: refused, never cut */
	assert_int_equal(vault_krb_principal_to_aor("alice@EXAMPLE.TEST", "EXAMPLE.TEST",
						    "example.test", aor, 22),
			 -1);
	assert_string_equal(aor, "");
	assert_int_equal(vault_krb_principal_to_aor("alice@EXAMPLE.TEST", "EXAMPLE.TEST",
						    "example.test", aor, 23),
			 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_gss_principal_maps_to_aor_in_our_realm_only),
	    cmocka_unit_test(test_gss_accepts_krb5_ap_req_and_initiator_accepts_ap_rep),
	    cmocka_unit_test(test_gss_accepts_spnego_wrapped_kerberos),
	    cmocka_unit_test(test_gss_initiator_mic_verifies_and_tampering_fails),
	    cmocka_unit_test(test_gss_acceptor_mic_verifies_at_initiator),
	    cmocka_unit_test(test_gss_spnego_context_signs_and_verifies),
	    cmocka_unit_test(test_gss_accepts_what_curl_negotiate_sends),
	    cmocka_unit_test(test_gss_spnego_windows_mech_lists_take_one_leg),
	    cmocka_unit_test(test_gss_spnego_needing_a_second_leg_is_malformed),
	    cmocka_unit_test(test_gss_ticket_for_another_service_is_wrong_service),
	    cmocka_unit_test(test_gss_ticket_for_service_not_in_keytab_is_bad_ticket),
	    cmocka_unit_test(test_gss_garbage_and_truncated_tokens_are_malformed),
	    cmocka_unit_test(test_gss_modified_authenticator_is_bad_ticket),
	    cmocka_unit_test(test_gss_oversized_token_is_malformed),
	    cmocka_unit_test(test_gss_replayed_ap_req_is_refused),
	    cmocka_unit_test(test_gss_expired_ticket_is_expired),
	    cmocka_unit_test(test_gss_clock_skew_is_clock_skew),
	    cmocka_unit_test(test_gss_small_buffers_are_tempfail_and_null_out_token_drops_ap_rep),
	    cmocka_unit_test(test_gss_accepts_from_several_threads_at_once),
	    cmocka_unit_test(test_gss_init_refuses_missing_directory_nonkeytab_and_empty),
	    cmocka_unit_test(test_gss_init_refuses_unreadable_keytab),
	    cmocka_unit_test(test_gss_keytab_gone_after_init_is_tempfail_unavailable),
	    cmocka_unit_test(test_gss_accept_without_init_is_tempfail_unavailable),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
