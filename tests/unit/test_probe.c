/*
 * rtcauthctl probe's parts that work without a server:
 *  - probe_auth_parse on the challenge and signature headers MS-SIPAE and
 *    Digest servers send, and on broken ones;
 *  - the NTLM initiator (gss-ntlmssp, connectionless): the empty first
 *    token, AUTHENTICATE for a CHALLENGE made by our own acceptor code
 *    (auth/ntlm.c), and signatures at sequence number 100 both ways over a
 *    signature buffer built by the shared codec from a parsed SIP message;
 *  - the Kerberos initiator (MIT krb5) against MIT's acceptor with the
 *    keytab of a throwaway realm (tests/integ/krb5_realm.sh): AP-REQ for
 *    sip@<host>, the AP-REP completes mutual authentication, MIC tokens both
 *    ways; a missing credential cache and an unknown service fail clearly.
 * What needs rtcauthd (the handshake over SIP) is tests/integ/probe.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <gssapi/gssapi.h>
#include <gssapi/gssapi_ext.h>
#include <gssapi/gssapi_krb5.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "auth/ntlm.h"
#include "core/clock.h"
#include "auth/sipae.h"
#include "ctl/probe.h"
#include "sip/msg.h"

#define NTLM_PW "Pr0be!pass"

/*
 * gss-ntlmssp 1.2.0 leaks one EVP_MD per NT hash it computes (in
 * gssntlmssp.so, never freed): not ours; suppressed by that frame only.
 */
const char *__lsan_default_suppressions(void);
const char *__asan_default_options(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:gssntlmssp.so\n";
}
const char *__asan_default_options(void)
{
	return "fast_unwind_on_malloc=0";
}

/* ---- probe_auth_parse ---- */

static void test_auth_parses_ntlm_second_leg(void **state)
{
	struct probe_auth *a = malloc(sizeof(*a));
	const char *v =
	    "NTLM realm=\"SIP Communications Service\", targetname=\"fe01.example.test\", "
	    "version=4, opaque=\"2BDBAC9D\", gssapi-data=\"TlRMTVNTUAACAAAA\"";

	assert_non_null(a);
	assert_int_equal(probe_auth_parse(str_cstr(v), a), 0);
	assert_string_equal(a->scheme, "NTLM");
	assert_string_equal(a->realm, "SIP Communications Service");
	assert_string_equal(a->targetname, "fe01.example.test");
	assert_string_equal(a->opaque, "2BDBAC9D");
	assert_true(a->has_gssapi_data);
	assert_string_equal(a->gssapi_data, "TlRMTVNTUAACAAAA");
	assert_int_equal(a->version, 4);
	free(a);
}

static void test_auth_parses_empty_gssapi_data_as_present(void **state)
{
	struct probe_auth *a = malloc(sizeof(*a));

	assert_int_equal(
	    probe_auth_parse(
		STR_LIT("Kerberos realm=\"r\", targetname=\"sip/fe01\", gssapi-data=\"\""), a),
	    0);
	assert_true(a->has_gssapi_data);
	assert_string_equal(a->gssapi_data, "");
	assert_int_equal(probe_auth_parse(STR_LIT("Kerberos realm=\"r\""), a), 0);
	assert_false(a->has_gssapi_data);
	assert_int_equal(a->version, 0);
	free(a);
}

static void test_auth_parses_digest_challenge(void **state)
{
	struct probe_auth *a = malloc(sizeof(*a));

	assert_int_equal(probe_auth_parse(STR_LIT("Digest realm=\"example.test\", nonce=\"abc\", "
						  "opaque=\"o1\", algorithm=SHA-512-256, "
						  "qop=\"auth,auth-int\", stale=TRUE, foo=bar"),
					  a),
			 0);
	assert_string_equal(a->scheme, "Digest");
	assert_string_equal(a->nonce, "abc");
	assert_string_equal(a->algorithm, "SHA-512-256");
	assert_string_equal(a->qop, "auth,auth-int");
	assert_true(a->stale);
	free(a);
}

static void test_auth_parses_authentication_info(void **state)
{
	struct probe_auth *a = malloc(sizeof(*a));

	assert_int_equal(
	    probe_auth_parse(STR_LIT("NTLM rspauth=\"0100000000000000a1b2c3d464000000\", "
				     "srand=\"9616454F\", snum=\"1\", opaque=\"AB\", "
				     "qop=\"auth\", targetname=\"fe01\", realm=\"R\""),
			     a),
	    0);
	assert_string_equal(a->rspauth, "0100000000000000a1b2c3d464000000");
	assert_string_equal(a->srand, "9616454F");
	assert_string_equal(a->snum, "1");
	free(a);
}

static void test_auth_rejects_broken_values(void **state)
{
	struct probe_auth *a = malloc(sizeof(*a));
	char big[PROBE_AUTH_FIELD + 64];

	assert_int_equal(probe_auth_parse(STR_LIT("NTLM realm=\"unterminated"), a), -1);
	assert_int_equal(probe_auth_parse(STR_LIT("NTLM realm"), a), -1);
	assert_int_equal(probe_auth_parse(STR_LIT(""), a), -1);
	assert_int_equal(probe_auth_parse(STR_LIT("NTLM version=x"), a), -1);
	assert_string_equal(a->scheme, ""); /* nothing half-filled is left */
	/* a field over its bound is an error, not truncated */
	snprintf(big, sizeof(big), "NTLM opaque=\"%0*d\"", PROBE_AUTH_FIELD, 7);
	assert_int_equal(probe_auth_parse(str_cstr(big), a), -1);
	free(a);
}

/* ---- NTLM: gss-ntlmssp initiator against our acceptor code ---- */

static const char signed_200[] = "SIP/2.0 200 OK\r\n"
				 "Via: SIP/2.0/TCP 127.0.0.1:40000;branch=z9hG4bK1234;rport\r\n"
				 "From: <sip:alice@example.test>;tag=aaa\r\n"
				 "To: <sip:alice@example.test>;tag=bbb\r\n"
				 "Call-ID: c1\r\n"
				 "CSeq: 3 REGISTER\r\n"
				 "Expires: 300\r\n"
				 "Content-Length: 0\r\n\r\n";

/* The MS-SIPAE signature buffer of signed_200 (the codec both sides use). */
static long buffer_of_200(const char *rand, const char *num, char *out, size_t cap)
{
	struct sip_msg *m = malloc(sizeof(*m));
	struct sipae_fields f;
	char st[4];
	long n = -1;

	if (sip_msg_parse(m, signed_200, strlen(signed_200), true) == 0 &&
	    sipae_fields_from_msg(m, &f, st) == 0)
		n = sipae_sig_buffer(STR_LIT("NTLM"), str_cstr(rand), str_cstr(num),
				     STR_LIT("SIP Communications Service"),
				     STR_LIT("fe01.example.test"), &f, out, cap);
	free(m);
	return n;
}

struct ntlm_run {
	struct probe_gss *g;
	uint8_t challenge[NTLM_CHALLENGE_MAX];
	size_t challenge_len;
	uint8_t *auth;
	size_t auth_len;
	uint8_t server_chal[8];
};

static bool have_ntlmssp(void)
{
	return access("/usr/lib/x86_64-linux-gnu/gssntlmssp/gssntlmssp.so", R_OK) == 0;
}

/* The first two legs: empty token, then AUTHENTICATE for our CHALLENGE. */
static void ntlm_legs(struct ntlm_run *r, const char *user, const char *domain, const char *pw)
{
	struct ntlm_target t = {STR_LIT("EXAMPLE"), STR_LIT("FE01"), STR_LIT("example.test"),
				STR_LIT("fe01.example.test")};
	char err[512];
	uint8_t *out = NULL;
	size_t outlen = 99;

	memset(r, 0, sizeof(*r));
	assert_int_equal(probe_gss_new(PROBE_MECH_NTLM, user, domain, pw, &r->g, err, sizeof(err)),
			 0);
	/* connectionless: the first step gives an empty token and wants more */
	assert_int_equal(
	    probe_gss_step(r->g, "fe01.example.test", NULL, 0, &out, &outlen, err, sizeof(err)), 1);
	assert_int_equal(outlen, 0);
	assert_null(out);
	assert_false(probe_gss_can_sign(r->g));
	memcpy(r->server_chal, "\x01\x23\x45\x67\x89\xab\xcd\xef", 8);
	assert_int_equal(ntlm_build_challenge(&t, r->server_chal,
					      ntlm_filetime((uint64_t)time(NULL)), r->challenge,
					      sizeof(r->challenge), &r->challenge_len),
			 0);
	assert_int_equal(probe_gss_step(r->g, "fe01.example.test", r->challenge, r->challenge_len,
					&r->auth, &r->auth_len, err, sizeof(err)),
			 0);
	assert_true(probe_gss_complete(r->g));
	assert_true(probe_gss_can_sign(r->g));
	assert_true(r->auth_len > 64);
	assert_memory_equal(r->auth, "NTLMSSP\0\3\0\0\0", 12); /* AUTHENTICATE */
}

static int ntlm_accept(struct ntlm_run *r, const char *pw, struct ntlm_session *s)
{
	struct ntlm_auth a;
	struct ntlm_transcript tr;
	uint8_t nt[16];
	int rc;

	memset(&tr, 0, sizeof(tr));
	tr.challenge = r->challenge;
	tr.challenge_len = r->challenge_len;
	memcpy(tr.server_challenge, r->server_chal, 8);
	assert_int_equal(ntlm_parse_authenticate(r->auth, r->auth_len, &a), 0);
	assert_true(a.flags & NTLM_NEGOTIATE_DATAGRAM);
	assert_int_equal(ntlm_nt_hash(pw, strlen(pw), nt), 0);
	rc = ntlm_accept_v2(&a, nt, &tr, NULL, s);
	if (rc == 0)
		assert_int_equal(ntlm_session_keys(s), 0);
	return rc;
}

static void to_hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

static void test_ntlm_initiator_signs_in_and_signs_at_seq_100(void **state)
{
	struct ntlm_run r;
	struct ntlm_session s;
	char buf[SIPAE_SIGBUF_MAX], hex[2 * SA_MAC_MAX + 1], hex2[2 * SA_MAC_MAX + 1];
	uint8_t mac[NTLM_SIG_LEN], bin[NTLM_SIG_LEN];
	long n;

	if (!have_ntlmssp())
		fail_msg("gss-ntlmssp (or curl) is missing: scripts/install-deps installs it");
	ntlm_legs(&r, "alice", "EXAMPLE", NTLM_PW);
	assert_int_equal(ntlm_accept(&r, NTLM_PW, &s), 0);
	n = buffer_of_200("9616454F", "1", buf, sizeof(buf));
	assert_true(n > 0);
	/* client -> server: what rtcauthd verifies */
	assert_int_equal(probe_gss_sign_hex(r.g, buf, (size_t)n, hex, sizeof(hex)), 32);
	for (int i = 0; i < 16; i++)
		sscanf(hex + 2 * i, "%2hhx", &bin[i]);
	assert_int_equal(ntlm_server_verify(&s, 100, (uint8_t *)buf, (size_t)n, bin, 16), 0);
	assert_memory_equal(bin + 12, "\x64\0\0\0", 4); /* SeqNum 100 */
	/* every signature carries 100, not 101, 102... */
	assert_int_equal(probe_gss_sign_hex(r.g, buf, (size_t)n, hex2, sizeof(hex2)), 32);
	for (int i = 0; i < 16; i++)
		sscanf(hex2 + 2 * i, "%2hhx", &bin[i]);
	assert_int_equal(ntlm_server_verify(&s, 100, (uint8_t *)buf, (size_t)n, bin, 16), 0);
	/* server -> client: what the probe verifies (rspauth) */
	assert_int_equal(ntlm_server_sign(&s, 100, (uint8_t *)buf, (size_t)n, mac), 0);
	to_hex(mac, 16, hex);
	assert_int_equal(probe_gss_verify_hex(r.g, buf, (size_t)n, str_cstr(hex)), 0);
	for (char *c = hex; *c; c++)
		*c = (char)(*c >= 'a' && *c <= 'f' ? *c - 32 : *c); /* either case */
	assert_int_equal(probe_gss_verify_hex(r.g, buf, (size_t)n, str_cstr(hex)), 0);
	/* one changed field in the buffer, one changed byte of the MAC, bad hex */
	buf[5] ^= 1;
	assert_int_equal(probe_gss_verify_hex(r.g, buf, (size_t)n, str_cstr(hex)), -1);
	buf[5] ^= 1;
	hex[9] = hex[9] == '0' ? '1' : '0';
	assert_int_equal(probe_gss_verify_hex(r.g, buf, (size_t)n, str_cstr(hex)), -1);
	assert_int_equal(probe_gss_verify_hex(r.g, buf, (size_t)n, STR_LIT("zz")), -1);
	assert_int_equal(probe_gss_verify_hex(r.g, buf, (size_t)n, STR_LIT("")), -1);
	memset(&s, 0, sizeof(s));
	free(r.auth);
	probe_gss_free(r.g);
}

static void test_ntlm_wrong_password_is_refused_by_the_acceptor(void **state)
{
	struct ntlm_run r;
	struct ntlm_session s;

	if (!have_ntlmssp())
		fail_msg("gss-ntlmssp (or curl) is missing: scripts/install-deps installs it");
	ntlm_legs(&r, "EXAMPLE\\alice", NULL, "not-the-password");
	assert_int_equal(ntlm_accept(&r, NTLM_PW, &s), NTLM_E_BAD_RESPONSE);
	free(r.auth);
	probe_gss_free(r.g);
}

static void test_ntlm_refuses_garbage_challenge(void **state)
{
	struct probe_gss *g;
	char err[512];
	uint8_t *out = NULL;
	size_t outlen;

	if (!have_ntlmssp())
		fail_msg("gss-ntlmssp (or curl) is missing: scripts/install-deps installs it");
	assert_int_equal(probe_gss_new(PROBE_MECH_NTLM, "alice", "", NTLM_PW, &g, err, sizeof(err)),
			 0);
	assert_int_equal(probe_gss_step(g, "fe01", NULL, 0, &out, &outlen, err, sizeof(err)), 1);
	assert_int_equal(probe_gss_step(g, "fe01", (const uint8_t *)"NTLMSSP\0garbage", 15, &out,
					&outlen, err, sizeof(err)),
			 -1);
	assert_null(out);
	assert_true(strlen(err) > 0);
	assert_false(probe_gss_can_sign(g));
	probe_gss_free(g);
}

/* ---- probe_conn: framing and deadlines, against a local peer ---- */

#define MSG_A "OPTIONS sip:a SIP/2.0\r\nContent-Length: 0\r\n\r\n"
#define MSG_B "MESSAGE sip:b SIP/2.0\r\nContent-Length: 5\r\n\r\nhello"

/* A listening socket on 127.0.0.1 (TCP or UDP); its port into *port. */
static int listener(int type, uint16_t *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, type, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	if (type == SOCK_STREAM)
		assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static void test_conn_frames_a_tcp_stream(void **state)
{
	struct probe_conn *c;
	char err[256], *buf = malloc(PROBE_MSG_MAX);
	uint16_t port;
	int lfd = listener(SOCK_STREAM, &port), sfd;
	const char both[] = "\r\n\r\n" MSG_A MSG_B "\r\n"
			    "MESSAGE sip:c SIP/2.0\r\nContent-Le";
	long n;

	assert_int_equal(
	    probe_conn_open(PROBE_TCP, "127.0.0.1", port, NULL, NULL, 2000, &c, err, sizeof(err)),
	    0);
	assert_int_equal(probe_conn_transport(c), PROBE_TCP);
	assert_string_equal(probe_conn_local_host(c), "127.0.0.1");
	assert_true(probe_conn_local_port(c) > 0);
	sfd = accept(lfd, NULL, NULL);
	assert_true(sfd >= 0);
	/* a keep-alive, two whole messages and half of a third in one write */
	assert_int_equal(write(sfd, both, sizeof(both) - 1), (ssize_t)(sizeof(both) - 1));
	n = probe_conn_recv(c, clock_mono_ms() + 2000, buf, PROBE_MSG_MAX, err, sizeof(err));
	assert_int_equal(n, strlen(MSG_A));
	assert_memory_equal(buf, MSG_A, (size_t)n);
	n = probe_conn_recv(c, clock_mono_ms() + 2000, buf, PROBE_MSG_MAX, err, sizeof(err));
	assert_int_equal(n, strlen(MSG_B));
	assert_memory_equal(buf, MSG_B, (size_t)n);
	/* the third is incomplete: the deadline passes, 0 */
	n = probe_conn_recv(c, clock_mono_ms() + 200, buf, PROBE_MSG_MAX, err, sizeof(err));
	assert_int_equal(n, 0);
	/* its rest arrives */
	assert_int_equal(write(sfd, "ngth: 0\r\n\r\n", 11), 11);
	n = probe_conn_recv(c, clock_mono_ms() + 2000, buf, PROBE_MSG_MAX, err, sizeof(err));
	assert_true(n > 0);
	assert_memory_equal(buf, "MESSAGE sip:c", 13);
	/* a stream that cannot be framed is an error, and so is a close */
	assert_int_equal(write(sfd, "GARBAGE\r\n\r\n", 11), 11);
	n = probe_conn_recv(c, clock_mono_ms() + 2000, buf, PROBE_MSG_MAX, err, sizeof(err));
	assert_int_equal(n, -1);
	close(sfd);
	probe_conn_close(c);
	assert_int_equal(
	    probe_conn_open(PROBE_TCP, "127.0.0.1", port, NULL, NULL, 2000, &c, err, sizeof(err)),
	    0);
	sfd = accept(lfd, NULL, NULL);
	close(sfd);
	n = probe_conn_recv(c, clock_mono_ms() + 2000, buf, PROBE_MSG_MAX, err, sizeof(err));
	assert_int_equal(n, -1);
	assert_non_null(strstr(err, "closed"));
	probe_conn_close(c);
	close(lfd);
	free(buf);
}

static void test_conn_udp_skips_keepalives_and_names_refusal(void **state)
{
	struct probe_conn *c;
	struct sockaddr_in from;
	socklen_t fl = sizeof(from);
	char err[256], *buf = malloc(PROBE_MSG_MAX), tmp[64];
	uint16_t port;
	int sfd = listener(SOCK_DGRAM, &port);
	long n;

	assert_int_equal(
	    probe_conn_open(PROBE_UDP, "127.0.0.1", port, NULL, NULL, 2000, &c, err, sizeof(err)),
	    0);
	assert_int_equal(probe_conn_send(c, "ping", 4, err, sizeof(err)), 0);
	assert_int_equal(recvfrom(sfd, tmp, sizeof(tmp), 0, (struct sockaddr *)&from, &fl), 4);
	sendto(sfd, "\r\n\r\n", 4, 0, (struct sockaddr *)&from, fl);
	sendto(sfd, MSG_A, strlen(MSG_A), 0, (struct sockaddr *)&from, fl);
	n = probe_conn_recv(c, clock_mono_ms() + 2000, buf, PROBE_MSG_MAX, err, sizeof(err));
	assert_int_equal(n, strlen(MSG_A));
	n = probe_conn_recv(c, clock_mono_ms() + 200, buf, PROBE_MSG_MAX, err, sizeof(err));
	assert_int_equal(n, 0);
	/* nobody listens any more: the ICMP refusal is named */
	close(sfd);
	assert_int_equal(probe_conn_send(c, "ping", 4, err, sizeof(err)), 0);
	n = probe_conn_recv(c, clock_mono_ms() + 2000, buf, PROBE_MSG_MAX, err, sizeof(err));
	assert_int_equal(n, -1);
	assert_non_null(strstr(err, "nothing listens there"));
	probe_conn_close(c);
	free(buf);
}

static void test_conn_refused_and_tls_without_ca(void **state)
{
	struct probe_conn *c = (void *)1;
	char err[256];
	uint16_t port;
	int lfd = listener(SOCK_STREAM, &port);

	/* TLS without a CA file: refused before any handshake */
	assert_int_equal(probe_conn_open(PROBE_TLS, "127.0.0.1", port, "/nonexistent/ca.crt", NULL,
					 2000, &c, err, sizeof(err)),
			 -1);
	assert_null(c);
	assert_non_null(strstr(err, "CA file"));
	close(lfd);
	/* the port is closed now */
	assert_int_equal(
	    probe_conn_open(PROBE_TCP, "127.0.0.1", port, NULL, NULL, 2000, &c, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "refused"));
}

/* ---- Kerberos: MIT initiator (probe) against MIT acceptor ---- */

static char top[1024], dir[256];
static bool realm_up;

static void realm_stop(void)
{
	char cmd[2048];

	if (!realm_up)
		return;
	realm_up = false;
	snprintf(cmd, sizeof(cmd),
		 "timeout 20 bash '%s/tests/integ/krb5_realm.sh' stop '%s/realm'; rm -rf '%s'", top,
		 dir, dir);
	if (system(cmd) != 0)
		fprintf(stderr, "# stopping the KDC in %s failed\n", dir);
}

/* DIR/realm/env (NAME='value' lines) into the environment. */
static int load_env(void)
{
	char path[600], line[1200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/realm/env", dir);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *eq = strchr(line, '='), *end;
		if (!eq || eq[1] != '\'' || !(end = strrchr(eq + 2, '\'')))
			continue;
		*eq = '\0';
		*end = '\0';
		setenv(line, eq + 2, 1);
	}
	fclose(f);
	return 0;
}

static int krb_setup(void **state)
{
	char cmd[3072];
	const char *t = getenv("RTC_TOP");

	if (t && t[0])
		snprintf(top, sizeof(top), "%s", t);
	else if (!getcwd(top, sizeof(top)))
		return -1;
	snprintf(dir, sizeof(dir), "/tmp/rtcauth-probe.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(cmd, sizeof(cmd),
		 "KRB5_REALM_WATCH_PID=%ld timeout 30 bash '%s/tests/integ/krb5_realm.sh' start "
		 "'%s/realm' EXAMPLE.TEST >'%s/start.out' 2>&1",
		 (long)getpid(), top, dir, dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "# krb5_realm.sh start failed; see %s/start.out\n", dir);
		return -1;
	}
	realm_up = true;
	atexit(realm_stop);
	if (load_env() < 0)
		return -1;
	/* alice's TGT from her keytab into the realm's KRB5CCNAME */
	snprintf(cmd, sizeof(cmd), "timeout 10 kinit -k -t '%s/realm/alice.keytab' alice", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int krb_teardown(void **state)
{
	realm_stop();
	return 0;
}

static gss_cred_id_t acceptor_cred(void)
{
	char kt[600];
	gss_key_value_element_desc el = {"keytab", kt};
	gss_key_value_set_desc store = {1, &el};
	gss_OID_set_desc mechs = {1, (gss_OID)gss_mech_krb5};
	gss_cred_id_t cred = GSS_C_NO_CREDENTIAL;
	OM_uint32 min;

	snprintf(kt, sizeof(kt), "%s/realm/sip.keytab", dir);
	assert_false(GSS_ERROR(gss_acquire_cred_from(&min, GSS_C_NO_NAME, 0, &mechs, GSS_C_ACCEPT,
						     &store, &cred, NULL, NULL)));
	return cred;
}

static void test_krb_initiator_mutual_auth_and_mics_both_ways(void **state)
{
	struct probe_gss *g;
	char err[512], buf[SIPAE_SIGBUF_MAX], hex[2 * SA_MAC_MAX + 1];
	uint8_t *apreq = NULL, *out = NULL;
	size_t apreq_len = 0, outlen = 0;
	gss_cred_id_t acred = acceptor_cred();
	gss_ctx_id_t actx = GSS_C_NO_CONTEXT;
	gss_buffer_desc in, aprep = GSS_C_EMPTY_BUFFER, mic = GSS_C_EMPTY_BUFFER, msg;
	OM_uint32 maj, min, flags = 0;
	long n;

	assert_int_equal(probe_gss_new(PROBE_MECH_KERBEROS, NULL, NULL, NULL, &g, err, sizeof(err)),
			 0);
	/* targetname "sip/fe01.example.test" -> host-based service sip@fe01... */
	assert_int_equal(
	    probe_gss_step(g, "fe01.example.test", NULL, 0, &apreq, &apreq_len, err, sizeof(err)),
	    1); /* mutual: the AP-REP is still to come */
	assert_true(apreq_len > 100);
	assert_false(probe_gss_complete(g));
	/* MIT krb5 is not protection-ready before the AP-REP: the REGISTER
	 * carrying the AP-REQ cannot be signed (the probe sends it unsigned) */
	assert_false(probe_gss_can_sign(g));
	in.value = apreq;
	in.length = apreq_len;
	maj = gss_accept_sec_context(&min, &actx, acred, &in, GSS_C_NO_CHANNEL_BINDINGS, NULL, NULL,
				     &aprep, &flags, NULL, NULL);
	assert_int_equal(maj, GSS_S_COMPLETE);
	assert_true(flags & GSS_C_MUTUAL_FLAG);
	assert_true(flags & GSS_C_INTEG_FLAG);
	assert_true(aprep.length > 0);
	assert_int_equal(probe_gss_step(g, "fe01.example.test", aprep.value, aprep.length, &out,
					&outlen, err, sizeof(err)),
			 0);
	assert_int_equal(outlen, 0);
	assert_true(probe_gss_complete(g));
	/* a second step on a complete context is refused */
	assert_int_equal(probe_gss_step(g, "fe01.example.test", aprep.value, aprep.length, &out,
					&outlen, err, sizeof(err)),
			 -1);
	n = buffer_of_200("9616454F", "1", buf, sizeof(buf));
	assert_true(n > 0);
	/* the probe's MIC verifies at the acceptor */
	assert_true(probe_gss_sign_hex(g, buf, (size_t)n, hex, sizeof(hex)) > 0);
	{
		uint8_t bin[SA_MAC_MAX];
		size_t bl = strlen(hex) / 2;
		gss_buffer_desc tok = {bl, bin};
		for (size_t i = 0; i < bl; i++)
			sscanf(hex + 2 * i, "%2hhx", &bin[i]);
		msg.value = buf;
		msg.length = (size_t)n;
		assert_int_equal(gss_verify_mic(&min, actx, &msg, &tok, NULL), GSS_S_COMPLETE);
	}
	/* the acceptor's MIC verifies at the probe; a changed buffer does not */
	msg.value = buf;
	msg.length = (size_t)n;
	assert_int_equal(gss_get_mic(&min, actx, GSS_C_QOP_DEFAULT, &msg, &mic), GSS_S_COMPLETE);
	assert_true(mic.length * 2 < sizeof(hex));
	to_hex(mic.value, mic.length, hex);
	assert_int_equal(probe_gss_verify_hex(g, buf, (size_t)n, str_cstr(hex)), 0);
	buf[n - 2] ^= 1;
	assert_int_equal(probe_gss_verify_hex(g, buf, (size_t)n, str_cstr(hex)), -1);
	gss_release_buffer(&min, &mic);
	gss_release_buffer(&min, &aprep);
	gss_delete_sec_context(&min, &actx, GSS_C_NO_BUFFER);
	gss_release_cred(&min, &acred);
	free(apreq);
	probe_gss_free(g);
}

static void test_krb_unknown_service_fails_at_the_first_step(void **state)
{
	struct probe_gss *g;
	char err[512];
	uint8_t *out = NULL;
	size_t outlen = 0;

	assert_int_equal(probe_gss_new(PROBE_MECH_KERBEROS, NULL, NULL, NULL, &g, err, sizeof(err)),
			 0);
	assert_int_equal(
	    probe_gss_step(g, "nosuch.example.test", NULL, 0, &out, &outlen, err, sizeof(err)), -1);
	assert_null(out);
	assert_non_null(strstr(err, "Kerberos initiator"));
	probe_gss_free(g);
}

static void test_krb_without_credential_cache_fails_clearly(void **state)
{
	struct probe_gss *g = NULL;
	char err[512], *old = strdup(getenv("KRB5CCNAME"));

	setenv("KRB5CCNAME", "FILE:/nonexistent/rtcauth-probe-ccache", 1);
	assert_int_equal(probe_gss_new(PROBE_MECH_KERBEROS, NULL, NULL, NULL, &g, err, sizeof(err)),
			 -1);
	assert_null(g);
	assert_non_null(strstr(err, "kinit"));
	setenv("KRB5CCNAME", old, 1);
	free(old);
}

int main(void)
{
	const struct CMUnitTest basic[] = {
	    cmocka_unit_test(test_auth_parses_ntlm_second_leg),
	    cmocka_unit_test(test_auth_parses_empty_gssapi_data_as_present),
	    cmocka_unit_test(test_auth_parses_digest_challenge),
	    cmocka_unit_test(test_auth_parses_authentication_info),
	    cmocka_unit_test(test_auth_rejects_broken_values),
	    cmocka_unit_test(test_ntlm_initiator_signs_in_and_signs_at_seq_100),
	    cmocka_unit_test(test_ntlm_wrong_password_is_refused_by_the_acceptor),
	    cmocka_unit_test(test_ntlm_refuses_garbage_challenge),
	    cmocka_unit_test(test_conn_frames_a_tcp_stream),
	    cmocka_unit_test(test_conn_udp_skips_keepalives_and_names_refusal),
	    cmocka_unit_test(test_conn_refused_and_tls_without_ca),
	};
	const struct CMUnitTest krb[] = {
	    cmocka_unit_test(test_krb_initiator_mutual_auth_and_mics_both_ways),
	    cmocka_unit_test(test_krb_unknown_service_fails_at_the_first_step),
	    cmocka_unit_test(test_krb_without_credential_cache_fails_clearly),
	};
	int rc = cmocka_run_group_tests_name("probe", basic, NULL, NULL);
	rc += cmocka_run_group_tests_name("probe_kerberos", krb, krb_setup, krb_teardown);
	return rc;
}
