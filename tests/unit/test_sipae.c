/*
 * [MS-SIPAE] codec (src/auth/sipae.h): credentials, the signature buffer
 * built from parsed SIP messages, challenge and Authentication-Info lines.
 *
 * Test data: the real Communicator 2007 R2 / OCS 2007 R2 trace kept in
 * pidgin-sipe's src/core/sip-sec-ntlm-tests.c (a signed REGISTER and its
 * signed 200 OK, with the buffers that were signed), and the example 200 OK
 * of PROTOCOLS.md §1. The messages are the trace's, byte for byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/digest.h"
#include "auth/sipae.h"
#include "sip/msg.h"

static void check_str(struct str s, const char *want, const char *file, int line)
{
	if (!str_eq_cstr(s, want)) {
		print_error("%s:%d: got '%.*s' want '%s'\n", file, line, STR_FMT(s), want);
		_fail(file, line);
	}
}
#define ASSERT_STR(s, w) check_str((s), (w), __FILE__, __LINE__)

/* ---- the sipe trace ------------------------------------------------------ */

#define SIPE_GSSAPI                                                                                \
	"TlRMTVNTUAADAAAAGAAYAHIAAADGAMYAigAAAAoACgBIAAAACAAIAFIAAAAYABgAWgAAABAAEABQAQAAVYKYYgUC" \
	"z"                                                                                        \
	"g4AAAAPQwBPAFMATQBPAFUAcwBlAHIAQwBPAFMATQBPAC0ATwBDAFMALQBSADIAoeku/"                     \
	"k4Hi/fFwASazGFmwtauh1yw/"                                                                 \
	"apBjcDIAK527KYG0rn769BHMQEBAAAAAAAAWVGaFye5ygHWrodcsP2qQQAAAAACAAo"                       \
	"AQwBPAFMATQBPAAEAGABDAE8AUwBNAE8ALQBPAEMAUwAtAFIAMgAEABYAYwBvAHMAbQBvAC4AbABvAGMAYQBsAAM" \
	"AM"                                                                                       \
	"ABjAG8AcwBtAG8ALQBvAGMAcwAtAHIAMgAuAGMAbwBzAG0AbwAuAGwAbwBjAGEAbAAFABYAYwBvAHMAbQBvAC4Ab" \
	"AB"                                                                                       \
	"vAGMAYQBsAAAAAAAAAAAAMctznhyoCkmFkeiueXEV5A=="

#define SIPE_PROXY_AUTHZ                                                                           \
	"NTLM qop=\"auth\", realm=\"SIP Communications Service\", opaque=\"2BDBAC9D\", "           \
	"targetname=\"cosmo-ocs-r2.cosmo.local\", version=4, gssapi-data=\"" SIPE_GSSAPI           \
	"\", crand=\"13317733\", cnum=\"1\", response=\"0100000029618e9651b65a7764000000\""

static const char sipe_request[] =
    "REGISTER sip:cosmo.local SIP/2.0\r\n"
    "Via: SIP/2.0/TLS 192.168.172.6:12723\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:user@cosmo.local>;tag=3e49177a52;epid=c8ca638a15\r\n"
    "To: <sip:user@cosmo.local>\r\n"
    "Call-ID: 4037df9284354df39065195bd57a4b14\r\n"
    "CSeq: 3 REGISTER\r\n"
    "Contact: "
    "<sip:192.168.172.6:12723;transport=tls;ms-opaque=fad3dfab32>;methods=\"INVITE, MESSAGE, INFO, "
    "OPTIONS, BYE, CANCEL, NOTIFY, ACK, REFER, "
    "BENOTIFY\";proxy=replace;+sip.instance=\"<urn:uuid:34D859DB-6585-5F91-A3B4-DE853C15347D>\"\r\n"
    "User-Agent: UCCAPI/3.5.6907.0 OC/3.5.6907.0 (Microsoft Office Communicator 2007 R2)\r\n"
    "Supported: gruu-10, adhoclist, msrtc-event-categories\r\n"
    "Supported: ms-forking\r\n"
    "ms-keep-alive: UAC;hop-hop=yes\r\n"
    "Event: registration\r\n"
    "Proxy-Authorization: " SIPE_PROXY_AUTHZ "\r\n"
    "Content-Length: 0\r\n"
    "\r\n";

static const char sipe_request_sig[] =
    "<NTLM><13317733><1><SIP Communications Service><cosmo-ocs-r2.cosmo.local>"
    "<4037df9284354df39065195bd57a4b14><3><REGISTER><sip:user@cosmo.local><3e49177a52>"
    "<sip:user@cosmo.local><><><><>";

static const char sipe_response[] =
    "SIP/2.0 200 OK\r\n"
    "ms-keep-alive: UAS; tcp=no; hop-hop=yes; end-end=no; timeout=300\r\n"
    "Authentication-Info: NTLM rspauth=\"01000000E615438A917661BE64000000\", "
    "srand=\"9616454F\", snum=\"1\", opaque=\"2BDBAC9D\", qop=\"auth\", "
    "targetname=\"cosmo-ocs-r2.cosmo.local\", realm=\"SIP Communications Service\"\r\n"
    "From: \"User\"<sip:user@cosmo.local>;tag=3e49177a52;epid=c8ca638a15\r\n"
    "To: <sip:user@cosmo.local>;tag=5E61CCD925D17E043D9A74835A88F664\r\n"
    "Call-ID: 4037df9284354df39065195bd57a4b14\r\n"
    "CSeq: 3 REGISTER\r\n"
    "Via: SIP/2.0/TLS 192.168.172.6:12723;ms-received-port=12723;ms-received-cid=2600\r\n"
    "Contact: "
    "<sip:192.168.172.6:12723;transport=tls;ms-opaque=fad3dfab32;ms-received-cid=2600>;expires="
    "7200;+sip.instance=\"<urn:uuid:34d859db-6585-5f91-a3b4-de853c15347d>\";gruu=\"sip:user@"
    "cosmo.local;opaque=user:epid:21nYNIVlkV-jtN6FPBU0fQAA;gruu\"\r\n"
    "Expires: 7200\r\n"
    "presence-state: register-action=\"added\"\r\n"
    "Allow-Events: "
    "vnd-microsoft-provisioning,vnd-microsoft-roaming-contacts,vnd-microsoft-roaming-ACL,"
    "presence,presence.wpending,vnd-microsoft-roaming-self,vnd-microsoft-provisioning-v2\r\n"
    "Supported: adhoclist\r\n"
    "Server: RTC/3.5\r\n"
    "Supported: msrtc-event-categories\r\n"
    "Content-Length: 0\r\n"
    "\r\n";

static const char sipe_response_sig[] =
    "<NTLM><9616454F><1><SIP Communications Service><cosmo-ocs-r2.cosmo.local>"
    "<4037df9284354df39065195bd57a4b14><3><REGISTER><sip:user@cosmo.local><3e49177a52>"
    "<sip:user@cosmo.local><5E61CCD925D17E043D9A74835A88F664><><><7200><200>";

/* ---- helpers ----------------------------------------------------------------- */

static struct sip_msg msg;
static char *copy;

static void parse_msg(const char *s)
{
	size_t len = strlen(s);

	free(copy);
	copy = malloc(len);
	assert_non_null(copy);
	memcpy(copy, s, len);
	assert_int_equal(sip_msg_parse(&msg, copy, len, false), 0);
}

static int teardown(void **state)
{
	(void)state;
	free(copy);
	copy = NULL;
	return 0;
}

/* A server header's named parameter (srand, snum, realm...). */
struct find_param {
	const char *name;
	struct str val;
};
static int find_param_cb(void *ctx, struct str name, struct str val, bool quoted)
{
	struct find_param *fp = ctx;

	(void)quoted;
	if (str_caseeq_cstr(name, fp->name))
		fp->val = val;
	return 0;
}
static struct str hdr_param(struct str value, const char *name, struct str *scheme)
{
	struct find_param fp = {name, STR_NULL};

	assert_int_equal(auth_params_parse(value, scheme, find_param_cb, &fp), 0);
	return fp.val;
}

/* The signature buffer of the message held in msg, with the SA values from
 * its Authentication-Info / Proxy-Authorization header. */
static long buffer_of_msg(char *out, size_t cap)
{
	struct sipae_fields f;
	char status[4];
	const struct sip_header *h;
	struct sipae_creds c;
	struct str scheme;

	assert_int_equal(sipae_fields_from_msg(&msg, &f, status), 0);
	if (msg.is_request) {
		h = sip_msg_header(&msg, SIP_H_PROXY_AUTHORIZATION);
		if (!h)
			h = sip_msg_header(&msg, SIP_H_AUTHORIZATION);
		assert_non_null(h);
		assert_int_equal(sipae_parse_credentials(h->value, &c), 0);
		return sipae_sig_buffer(c.scheme_str, c.crand, c.cnum_str, c.realm, c.targetname,
					&f, out, cap);
	}
	h = sip_msg_header(&msg, SIP_H_AUTHENTICATION_INFO);
	if (!h)
		h = sip_msg_header(&msg, SIP_H_PROXY_AUTHENTICATION_INFO);
	assert_non_null(h);
	struct str srand = hdr_param(h->value, "srand", &scheme);
	struct str snum = hdr_param(h->value, "snum", &scheme);
	struct str realm = hdr_param(h->value, "realm", &scheme);
	struct str target = hdr_param(h->value, "targetname", &scheme);
	return sipae_sig_buffer(scheme, srand, snum, realm, target, &f, out, cap);
}

static void assert_buffer_of(const char *message, const char *want)
{
	char buf[SIPAE_SIGBUF_MAX];
	long n;

	parse_msg(message);
	n = buffer_of_msg(buf, sizeof(buf));
	assert_true(n > 0);
	ASSERT_STR(str_make(buf, (size_t)n), want);
}

/* Copy of s with the first occurrence of from replaced by to. */
static char *subst(const char *s, const char *from, const char *to)
{
	const char *at = strstr(s, from);
	char *r;

	assert_non_null(at);
	r = malloc(strlen(s) - strlen(from) + strlen(to) + 1);
	assert_non_null(r);
	sprintf(r, "%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
	return r;
}

/* ---- signature buffer from whole messages --------------------------------- */

static void test_sipae_buffer_of_sipe_signed_register_request(void **state)
{
	(void)state;
	/* a request: no status, <> for the absent To tag, PAI and Expires */
	assert_buffer_of(sipe_request, sipe_request_sig);
}

static void test_sipae_buffer_of_sipe_signed_200_ok(void **state)
{
	(void)state;
	/* a response: Expires from the Expires header, status last */
	assert_buffer_of(sipe_response, sipe_response_sig);
}

static const char protocols_200[] =
    "SIP/2.0 200 OK\r\n"
    "Via: SIP/2.0/TCP 127.0.0.1:5062;branch=z9hG4bK1\r\n"
    "From: <sip:u@example.test>;tag=fromtag\r\n"
    "To: <sip:u@example.test>;tag=totag\r\n"
    "Call-ID: callid\r\n"
    "CSeq: 3 REGISTER\r\n"
    "Contact: <sip:u@127.0.0.1:5062;transport=tcp>;expires=7200\r\n"
    "Expires: 7200\r\n"
    "Authentication-Info: NTLM opaque=\"2BDBAC9D\", qop=\"auth\", "
    "realm=\"SIP Communications Service\", targetname=\"fe01.example.test\", "
    "rspauth=\"00\", srand=\"9616454F\", snum=\"1\"\r\n"
    "Content-Length: 0\r\n"
    "\r\n";

static void test_sipae_buffer_of_protocols_md_example_200(void **state)
{
	(void)state;
	assert_buffer_of(protocols_200,
			 "<NTLM><9616454F><1><SIP Communications Service><fe01.example.test>"
			 "<callid><3><REGISTER><sip:u@example.test><fromtag><sip:u@example.test>"
			 "<totag><><><7200><200>");
}

static void test_sipae_buffer_request_has_no_status_response_has_one(void **state)
{
	char buf[SIPAE_SIGBUF_MAX];
	long n;
	char *resp = subst(protocols_200, "SIP/2.0 200 OK", "SIP/2.0 403 Forbidden");

	(void)state;
	assert_buffer_of(resp, "<NTLM><9616454F><1><SIP Communications Service>"
			       "<fe01.example.test><callid><3><REGISTER><sip:u@example.test>"
			       "<fromtag><sip:u@example.test><totag><><><7200><403>");
	free(resp);
	parse_msg(sipe_request);
	n = buffer_of_msg(buf, sizeof(buf));
	assert_true(n > 4);
	/* ends with the Expires <>, never a status <> */
	assert_memory_equal(buf + n - 8, "<><><><>", 8);
	assert_string_not_equal(buf + n - 10, "<><><><><>");
}

static void test_sipae_missing_optional_fields_give_empty_brackets(void **state)
{
	static const char m[] = "OPTIONS sip:fe01.example.test SIP/2.0\r\n"
				"Via: SIP/2.0/TCP 127.0.0.1:5062;branch=z9hG4bK1\r\n"
				"Max-Forwards: 70\r\n"
				"From: sip:u@example.test;tag=ft\r\n"
				"To: sip:fe01.example.test\r\n"
				"Call-ID: c1\r\n"
				"CSeq: 17 OPTIONS\r\n"
				"Authorization: Kerberos qop=\"auth\", realm=\"R\", "
				"targetname=\"sip/fe01.example.test\", opaque=\"0A0B0C0D\", "
				"crand=\"0000000a\", cnum=\"12\", response=\"abcd\"\r\n"
				"Content-Length: 0\r\n"
				"\r\n";
	(void)state;
	/* addr-spec From/To (no <>): the URI as written */
	assert_buffer_of(m, "<Kerberos><0000000a><12><R><sip/fe01.example.test><c1><17><OPTIONS>"
			    "<sip:u@example.test><ft><sip:fe01.example.test><><><><>");
}

static void test_sipae_uri_keeps_uri_params_drops_header_params(void **state)
{
	char *m =
	    subst(protocols_200, "From: <sip:u@example.test>;tag=fromtag",
		  "From: \"A, <B>\" <sip:u@example.test;transport=tls>;epid=1;tag=fromtag;x=y");
	(void)state;
	assert_buffer_of(m, "<NTLM><9616454F><1><SIP Communications Service><fe01.example.test>"
			    "<callid><3><REGISTER><sip:u@example.test;transport=tls><fromtag>"
			    "<sip:u@example.test><totag><><><7200><200>");
	free(m);
}

static void test_sipae_expires_header_only_never_contact_expires(void **state)
{
	char *m = subst(protocols_200, "Expires: 7200\r\n", "");

	(void)state;
	/* the Contact still says expires=7200: not in the buffer (sipe-sign.c) */
	assert_buffer_of(m, "<NTLM><9616454F><1><SIP Communications Service><fe01.example.test>"
			    "<callid><3><REGISTER><sip:u@example.test><fromtag>"
			    "<sip:u@example.test><totag><><><><200>");
	free(m);
}

static void test_sipae_pai_sip_and_tel_from_one_or_two_headers(void **state)
{
	static const char want[] =
	    "<NTLM><9616454F><1><SIP Communications Service><fe01.example.test>"
	    "<callid><3><REGISTER><sip:u@example.test><fromtag><sip:u@example.test><totag>"
	    "<sip:alice@example.test><tel:+14085264000><7200><200>";
	char *one = subst(protocols_200, "Expires:",
			  "P-Asserted-Identity: \"Alice\" <sip:alice@example.test>, "
			  "<tel:+14085264000>\r\nExpires:");
	char *two = subst(protocols_200, "Expires:",
			  "P-Asserted-Identity: tel:+14085264000\r\n"
			  "P-Asserted-Identity: <sip:alice@example.test>\r\nExpires:");
	char *ppi = subst(protocols_200,
			  "Expires:", "P-Preferred-Identity: <sip:alice@example.test>\r\nExpires:");
	char *both = subst(protocols_200, "Expires:",
			   "P-Preferred-Identity: <sip:mallory@example.test>\r\n"
			   "P-Asserted-Identity: <tel:+14085264000>\r\nExpires:");

	(void)state;
	assert_buffer_of(one, want);
	assert_buffer_of(two, want);
	/* no PAI: P-Preferred-Identity, as pidgin-sipe signs it */
	assert_buffer_of(ppi, "<NTLM><9616454F><1><SIP Communications Service><fe01.example.test>"
			      "<callid><3><REGISTER><sip:u@example.test><fromtag>"
			      "<sip:u@example.test><totag><sip:alice@example.test><><7200><200>");
	/* a PAI present: PPI ignored */
	assert_buffer_of(both, "<NTLM><9616454F><1><SIP Communications Service><fe01.example.test>"
			       "<callid><3><REGISTER><sip:u@example.test><fromtag>"
			       "<sip:u@example.test><totag><><tel:+14085264000><7200><200>");
	free(one);
	free(two);
	free(ppi);
	free(both);
}

static void test_sipae_compact_header_forms_give_the_same_buffer(void **state)
{
	char *a = subst(protocols_200, "From:", "f:");
	char *b = subst(a, "To:", "t:");
	char *c = subst(b, "Call-ID:", "i:");

	(void)state;
	assert_buffer_of(c, "<NTLM><9616454F><1><SIP Communications Service><fe01.example.test>"
			    "<callid><3><REGISTER><sip:u@example.test><fromtag><sip:u@example.test>"
			    "<totag><><><7200><200>");
	free(a);
	free(b);
	free(c);
}

/* A response with every one of the 16 buffer fields present. */
static const char full_200[] = "SIP/2.0 200 OK\r\n"
			       "Via: SIP/2.0/TCP 127.0.0.1:5062;branch=z9hG4bK1\r\n"
			       "From: <sip:u@example.test>;tag=FT1\r\n"
			       "To: <sip:v@example.test>;tag=TT1\r\n"
			       "Call-ID: CID1\r\n"
			       "CSeq: 41 INVITE\r\n"
			       "P-Asserted-Identity: <sip:pai@example.test>, <tel:+111>\r\n"
			       "Expires: 300\r\n"
			       "Content-Length: 0\r\n"
			       "\r\n";

static long full_buffer(const char *m, const char *const v[5], char *out)
{
	struct sipae_fields f;
	char status[4];

	parse_msg(m);
	assert_int_equal(sipae_fields_from_msg(&msg, &f, status), 0);
	return sipae_sig_buffer(str_cstr(v[0]), str_cstr(v[1]), str_cstr(v[2]), str_cstr(v[3]),
				str_cstr(v[4]), &f, out, SIPAE_SIGBUF_MAX);
}

static void test_sipae_every_one_of_16_fields_changes_the_buffer(void **state)
{
	static const char *const base_v[5] = {"NTLM", "0A0B0C0D", "7", "R", "T"};
	/* message fields: the text to change and its replacement */
	static const char *const edits[][2] = {
	    {"Call-ID: CID1", "Call-ID: CID2"},
	    {"CSeq: 41 INVITE", "CSeq: 42 INVITE"},
	    {"CSeq: 41 INVITE", "CSeq: 41 BYE"},
	    {"<sip:u@example.test>;tag=FT1", "<sip:w@example.test>;tag=FT1"},
	    {";tag=FT1", ";tag=FT2"},
	    {"<sip:v@example.test>;tag=TT1", "<sip:x@example.test>;tag=TT1"},
	    {";tag=TT1", ";tag=TT2"},
	    {"<sip:pai@example.test>", "<sip:paj@example.test>"},
	    {"<tel:+111>", "<tel:+112>"},
	    {"Expires: 300", "Expires: 301"},
	    {"200 OK", "202 Accepted"},
	};
	char base[SIPAE_SIGBUF_MAX], other[SIPAE_SIGBUF_MAX];
	long nb, no;
	int fields = 0;

	(void)state;
	nb = full_buffer(full_200, base_v, base);
	assert_true(nb > 0);
	ASSERT_STR(str_make(base, (size_t)nb),
		   "<NTLM><0A0B0C0D><7><R><T><CID1><41><INVITE><sip:u@example.test><FT1>"
		   "<sip:v@example.test><TT1><sip:pai@example.test><tel:+111><300><200>");
	/* scheme, rand, num, realm, targetname */
	for (int i = 0; i < 5; i++) {
		const char *v[5];
		memcpy(v, base_v, sizeof(v));
		v[i] = "changed";
		no = full_buffer(full_200, v, other);
		assert_true(no > 0);
		assert_false(no == nb && memcmp(base, other, (size_t)nb) == 0);
		fields++;
	}
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		char *m = subst(full_200, edits[i][0], edits[i][1]);
		no = full_buffer(m, base_v, other);
		assert_true(no > 0);
		if (no == nb && memcmp(base, other, (size_t)nb) == 0) {
			print_error("edit %zu (%s) left the buffer unchanged\n", i, edits[i][1]);
			fail();
		}
		free(m);
		fields++;
	}
	assert_int_equal(fields, 16);
}

static void test_sipae_buffer_fields_not_covered_do_not_change_it(void **state)
{
	static const char *const v[5] = {"NTLM", "0A0B0C0D", "7", "R", "T"};
	char base[SIPAE_SIGBUF_MAX], other[SIPAE_SIGBUF_MAX];
	char *m = subst(full_200, "Content-Length: 0", "Server: x\r\nContent-Length: 0");
	long nb, no;

	(void)state;
	nb = full_buffer(full_200, v, base);
	no = full_buffer(m, v, other);
	assert_int_equal(nb, no);
	assert_memory_equal(base, other, (size_t)nb);
	free(m);
}

static void test_sipae_sig_buffer_refuses_small_or_oversize_output(void **state)
{
	struct sipae_fields f;
	char small[16], *big;
	long n;

	(void)state;
	memset(&f, 0, sizeof(f));
	assert_int_equal(sipae_sig_buffer(STR_LIT("NTLM"), STR_LIT("0A0B0C0D"), STR_LIT("1"),
					  STR_LIT("R"), STR_LIT("T"), &f, small, sizeof(small)),
			 -1);
	/* no more than SIPAE_SIGBUF_MAX, whatever cap says */
	big = malloc(3 * SIPAE_SIGBUF_MAX);
	assert_non_null(big);
	memset(big, 'a', SIPAE_SIGBUF_MAX);
	f.f[SIPAE_F_CALL_ID] = str_make(big, SIPAE_SIGBUF_MAX);
	n = sipae_sig_buffer(STR_LIT("NTLM"), STR_LIT("0A0B0C0D"), STR_LIT("1"), STR_LIT("R"),
			     STR_LIT("T"), &f, big + SIPAE_SIGBUF_MAX, 2 * SIPAE_SIGBUF_MAX);
	assert_int_equal(n, -1);
	assert_int_equal(sipae_sig_buffer(STR_LIT("NTLM"), STR_NULL, STR_NULL, STR_NULL, STR_NULL,
					  NULL, small, sizeof(small)),
			 -1);
	free(big);
}

static void test_sipae_fields_from_msg_rejects_null(void **state)
{
	struct sipae_fields f;
	char status[4];

	(void)state;
	assert_int_equal(sipae_fields_from_msg(NULL, &f, status), -1);
	parse_msg(protocols_200);
	assert_int_equal(sipae_fields_from_msg(&msg, NULL, status), -1);
	/* a response needs the status buffer */
	assert_int_equal(sipae_fields_from_msg(&msg, &f, NULL), -1);
}

/* ---- end to end: a signed message with one field changed fails -------------- */

static int hmac_sign(void *ctx, const uint8_t *buf, size_t len, uint8_t *mac, size_t cap,
		     size_t *mac_len)
{
	unsigned int l = 0;

	if (cap < 32 || !HMAC(EVP_sha256(), ctx, 16, buf, len, mac, &l))
		return -1;
	*mac_len = l;
	return 0;
}

static int hmac_verify(void *ctx, const uint8_t *buf, size_t len, const uint8_t *mac,
		       size_t mac_len)
{
	uint8_t want[32];
	size_t n;

	if (mac_len != 32 || hmac_sign(ctx, buf, len, want, sizeof(want), &n) != 0)
		return -1;
	return CRYPTO_memcmp(want, mac, 32) == 0 ? 0 : -1;
}

static void hmac_free(void *ctx)
{
	free(ctx);
}

static const struct sa_mech hmac_mech = {hmac_sign, hmac_verify, hmac_free};

/* A signed request with all 15 request fields present. */
static const char full_invite[] =
    "INVITE sip:v@example.test SIP/2.0\r\n"
    "Via: SIP/2.0/TCP 127.0.0.1:5062;branch=z9hG4bK1\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:u@example.test>;tag=FT1\r\n"
    "To: <sip:v@example.test>;tag=TT1\r\n"
    "Call-ID: CID1\r\n"
    "CSeq: 41 INVITE\r\n"
    "P-Asserted-Identity: <sip:pai@example.test>, <tel:+111>\r\n"
    "Expires: 300\r\n"
    "Proxy-Authorization: NTLM qop=\"auth\", opaque=\"@OPAQUE@\", "
    "realm=\"SIP Communications Service\", targetname=\"fe01.example.test\", "
    "crand=\"0A0B0C0D\", cnum=\"7\", response=\"@RESPONSE@\"\r\n"
    "Content-Length: 0\r\n"
    "\r\n";

/* Verify msg (held in the global) with sa: the SA found by the header's
 * opaque, the buffer built from the message and the header. */
static int verify_msg(struct sa_table *t, uint64_t now)
{
	struct sipae_fields f;
	struct sipae_creds c;
	const struct sip_header *h;
	char buf[SIPAE_SIGBUF_MAX];
	struct sa *sa;
	long n;
	int rc;

	if (sipae_fields_from_msg(&msg, &f, NULL) != 0)
		return 100;
	h = sip_msg_header(&msg, SIP_H_PROXY_AUTHORIZATION);
	if (!h || sipae_parse_credentials(h->value, &c) != 0)
		return 101;
	sa = sa_find(t, c.opaque, now);
	if (!sa)
		return 102;
	n = sipae_sig_buffer(c.scheme_str, c.crand, c.cnum_str, c.realm, c.targetname, &f, buf,
			     sizeof(buf));
	rc = n < 0 ? 103 : sa_verify(sa, c.cnum, (const uint8_t *)buf, (size_t)n, c.response, now);
	sa_put(sa);
	return rc;
}

static void test_sipae_signed_request_with_any_field_changed_fails_verification(void **state)
{
	static const char *const edits[][4] = {
	    {"NTLM qop", "ntlm qop"},
	    {"crand=\"0A0B0C0D\"", "crand=\"0A0B0C0E\""},
	    {"cnum=\"7\"", "cnum=\"8\""},
	    {"realm=\"SIP Communications Service\"", "realm=\"SIP Communications Servic\""},
	    {"targetname=\"fe01.example.test\"", "targetname=\"fe02.example.test\""},
	    {"Call-ID: CID1", "Call-ID: CID2"},
	    {"CSeq: 41 INVITE", "CSeq: 42 INVITE"},
	    {"INVITE sip:v@example.test SIP/2.0\r\n", "BYE sip:v@example.test SIP/2.0\r\n",
	     "CSeq: 41 INVITE", "CSeq: 41 BYE"},
	    {"<sip:u@example.test>;tag=FT1", "<sip:w@example.test>;tag=FT1"},
	    {";tag=FT1", ";tag=FT2"},
	    {"<sip:v@example.test>;tag=TT1", "<sip:x@example.test>;tag=TT1"},
	    {";tag=TT1", ""},
	    {"<sip:pai@example.test>, ", ""},
	    {", <tel:+111>", ""},
	    {"Expires: 300\r\n", ""},
	};
	struct sa_table *t = sa_table_new(0);
	struct sa_info info;
	struct sa *sa;
	uint8_t *key = malloc(16);
	char *m1, *m2, *signed_msg, resp[2 * SA_MAC_MAX + 1], buf[SIPAE_SIGBUF_MAX];
	struct sipae_fields f;
	long n;

	(void)state;
	assert_non_null(t);
	assert_non_null(key);
	memset(key, 0x42, 16);
	memset(&info, 0, sizeof(info));
	info.scheme = SA_SCHEME_NTLM;
	strcpy(info.user, "sip:u@example.test");
	strcpy(info.realm, "SIP Communications Service");
	strcpy(info.targetname, "fe01.example.test");
	sa = sa_create(t, &info, &hmac_mech, key, 0, 1000);
	assert_non_null(sa);
	/* the client signs (same key: the fake mechanism is symmetric) */
	m1 = subst(full_invite, "@OPAQUE@", sa_opaque(sa));
	parse_msg(m1);
	assert_int_equal(sipae_fields_from_msg(&msg, &f, NULL), 0);
	n = sipae_sig_buffer(STR_LIT("NTLM"), STR_LIT("0A0B0C0D"), STR_LIT("7"),
			     STR_LIT("SIP Communications Service"), STR_LIT("fe01.example.test"),
			     &f, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(sa_sign(sa, (const uint8_t *)buf, (size_t)n, resp, sizeof(resp)), 64);
	sa_put(sa);
	signed_msg = subst(m1, "@RESPONSE@", resp);
	/* every field changed: the signature no longer verifies (and the window
	 * is untouched, so the original still verifies afterwards) */
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		m2 = subst(signed_msg, edits[i][0], edits[i][1]);
		if (edits[i][2]) { /* the method is in the request line and CSeq */
			char *m3 = subst(m2, edits[i][2], edits[i][3]);
			free(m2);
			m2 = m3;
		}
		parse_msg(m2);
		int rc = verify_msg(t, 1001);
		if (rc != SA_E_BAD_SIG) {
			print_error("edit %zu (%s -> %s): %d\n", i, edits[i][0], edits[i][1], rc);
			fail();
		}
		free(m2);
	}
	parse_msg(signed_msg);
	assert_int_equal(verify_msg(t, 1001), SA_OK);
	/* and once only */
	assert_int_equal(verify_msg(t, 1001), SA_E_REPLAY);
	free(m1);
	free(signed_msg);
	sa_table_free(t);
}

/* ---- credentials ------------------------------------------------------------ */

static int parse_creds(const char *s, struct sipae_creds *c)
{
	return sipae_parse_credentials(str_cstr(s), c);
}

static int parse_creds_with(const char *base, const char *from, const char *to,
			    struct sipae_creds *c)
{
	char *s = subst(base, from, to);
	int rc = parse_creds(s, c);

	free(s);
	return rc;
}

static void test_sipae_creds_sipe_final_register_with_gssapi_and_signature(void **state)
{
	struct sipae_creds c;

	(void)state;
	assert_int_equal(parse_creds(SIPE_PROXY_AUTHZ, &c), 0);
	assert_int_equal(c.scheme, SA_SCHEME_NTLM);
	ASSERT_STR(c.scheme_str, "NTLM");
	ASSERT_STR(c.qop, "auth");
	ASSERT_STR(c.realm, "SIP Communications Service");
	ASSERT_STR(c.opaque, "2BDBAC9D");
	ASSERT_STR(c.targetname, "cosmo-ocs-r2.cosmo.local");
	assert_int_equal(c.version, 4);
	assert_true(c.has_gssapi_data);
	ASSERT_STR(c.gssapi_data, SIPE_GSSAPI);
	ASSERT_STR(c.crand, "13317733");
	assert_true(c.has_cnum);
	assert_int_equal(c.cnum, 1);
	ASSERT_STR(c.cnum_str, "1");
	ASSERT_STR(c.response, "0100000029618e9651b65a7764000000");
	assert_int_equal(c.epid.len, 0);
}

static void test_sipae_creds_sipe_second_register_empty_gssapi_data(void **state)
{
	struct sipae_creds c;

	(void)state;
	assert_int_equal(
	    parse_creds("NTLM qop=\"auth\", realm=\"SIP Communications Service\", "
			"targetname=\"fe01.example.test\", gssapi-data=\"\", version=4",
			&c),
	    0);
	assert_true(c.has_gssapi_data);
	assert_int_equal(c.gssapi_data.len, 0);
	assert_false(c.has_cnum);
	assert_int_equal(c.opaque.len, 0);
	assert_int_equal(c.crand.len, 0);
}

static void test_sipae_creds_signed_request_without_gssapi(void **state)
{
	struct sipae_creds c;

	(void)state;
	assert_int_equal(parse_creds("Kerberos qop=\"auth\", opaque=\"0A0B0C0D\", realm=\"R\", "
				     "targetname=\"sip/fe01\", crand=\"deadBEEF\", "
				     "cnum=\"4294967295\", response=\"0a0B\", epid=\"c8ca638a15\"",
				     &c),
			 0);
	assert_int_equal(c.scheme, SA_SCHEME_KERBEROS);
	assert_false(c.has_gssapi_data);
	assert_int_equal(c.cnum, 4294967295u);
	ASSERT_STR(c.opaque, "0A0B0C0D");
	ASSERT_STR(c.epid, "c8ca638a15");
	assert_int_equal(c.version, 0);
	assert_int_equal(parse_creds("tls-dsk gssapi-data=\"FgMBAA==\", version=3", &c), 0);
	assert_int_equal(c.scheme, SA_SCHEME_TLSDSK);
	ASSERT_STR(c.scheme_str, "tls-dsk");
	assert_int_equal(c.version, 3);
}

static void test_sipae_creds_header_order_does_not_matter(void **state)
{
	static const char *const orders[] = {
	    "NTLM qop=\"auth\", opaque=\"0A0B0C0D\", realm=\"R\", targetname=\"T\", "
	    "crand=\"01234567\", cnum=\"9\", response=\"00ff\", version=4",
	    "NTLM version=4, response=\"00ff\", cnum=9, crand=\"01234567\", targetname=\"T\", "
	    "realm=\"R\", opaque=\"0A0B0C0D\", qop=auth",
	    "NTLM  CNUM=\"9\" ,REALM=\"R\",,  Response=\"00ff\",crand=01234567 , "
	    "TargetName=\"T\", Opaque=\"0A0B0C0D\", Version=4, qop=\"auth\"",
	};
	struct sipae_creds c;

	(void)state;
	for (size_t i = 0; i < sizeof(orders) / sizeof(orders[0]); i++) {
		assert_int_equal(parse_creds(orders[i], &c), 0);
		ASSERT_STR(c.qop, "auth");
		ASSERT_STR(c.opaque, "0A0B0C0D");
		ASSERT_STR(c.realm, "R");
		ASSERT_STR(c.targetname, "T");
		ASSERT_STR(c.crand, "01234567");
		ASSERT_STR(c.cnum_str, "9");
		assert_int_equal(c.cnum, 9);
		ASSERT_STR(c.response, "00ff");
		assert_int_equal(c.version, 4);
	}
}

static void test_sipae_creds_rejects_other_schemes(void **state)
{
	struct sipae_creds c;

	(void)state;
	assert_int_equal(parse_creds("Digest username=\"a\", realm=\"r\"", &c), SIPAE_E_SCHEME);
	assert_int_equal(parse_creds("Basic dXNlcjpwYXNz", &c), SIPAE_E_SCHEME);
	assert_int_equal(parse_creds("NTLMv2 gssapi-data=\"\"", &c), SIPAE_E_SCHEME);
	assert_int_equal(parse_creds("Negotiate gssapi-data=\"\"", &c), SIPAE_E_SCHEME);
	assert_int_equal(parse_creds("", &c), SIPAE_E_SCHEME);
	assert_int_equal(parse_creds("   ", &c), SIPAE_E_SCHEME);
	assert_int_equal(sipae_parse_credentials(STR_NULL, &c), SIPAE_E_SCHEME);
	/* the scheme verdict wins over a bad parameter list */
	assert_int_equal(parse_creds("Digest a=\"1\", a=\"1\"", &c), SIPAE_E_SCHEME);
	assert_int_equal(c.scheme, SA_SCHEME_NONE);
	assert_int_equal(sipae_parse_credentials(STR_LIT("NTLM gssapi-data=\"\""), NULL),
			 SIPAE_E_SYNTAX);
}

static void test_sipae_creds_rejects_syntax_errors(void **state)
{
	static const char *const bad[] = {
	    "NTLM gssapi-data=\"abc",		       /* unterminated */
	    "NTLM gssapi-data",			       /* no = */
	    "NTLM gssapi-data=",		       /* no value */
	    "NTLM realm=\"a\" targetname=\"b\"",       /* no comma */
	    "NTLM realm=\"a\\\"b\", gssapi-data=\"\"", /* quoted-pair */
	    "NTLM =\"a\", gssapi-data=\"\"",	       /* no name */
	    "NTLM, gssapi-data=\"\"",		       /* scheme glued to ',' */
	    "NTLM realm=\"a\x01\", gssapi-data=\"\"",  /* control character */
	};
	struct sipae_creds c;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = parse_creds(bad[i], &c);
		if (rc != SIPAE_E_SYNTAX) {
			print_error("'%s': %d\n", bad[i], rc);
			fail();
		}
		assert_int_equal(c.scheme, SA_SCHEME_NONE); /* cleared on error */
	}
}

static void test_sipae_creds_rejects_duplicate_parameters(void **state)
{
	static const char *const names[] = {"qop",   "realm",	   "targetname", "opaque",
					    "crand", "cnum",	   "response",	 "version",
					    "epid",  "gssapi-data"};
	static const char *const vals[] = {"auth", "R",	   "T", "0A0B0C0D", "01234567",
					   "2",	   "00ff", "4", "e",	    ""};
	static const char base[] = "NTLM qop=\"auth\", realm=\"R\", targetname=\"T\", "
				   "opaque=\"0A0B0C0D\", crand=\"01234567\", cnum=\"2\", "
				   "response=\"00ff\", version=4, epid=\"e\", gssapi-data=\"\"";
	char s[512];
	struct sipae_creds c;

	(void)state;
	assert_int_equal(parse_creds(base, &c), 0);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(s, sizeof(s), "%s, %s=\"%s\"", base, names[i], vals[i]);
		assert_int_equal(parse_creds(s, &c), SIPAE_E_DUPLICATE);
		/* case does not make it another parameter */
		snprintf(s, sizeof(s), "%s, %c%s=\"%s\"", base, names[i][0] - 32, names[i] + 1,
			 vals[i]);
		assert_int_equal(parse_creds(s, &c), SIPAE_E_DUPLICATE);
	}
	/* unknown parameters may repeat */
	snprintf(s, sizeof(s), "%s, x=1, x=2", base);
	assert_int_equal(parse_creds(s, &c), 0);
}

static void test_sipae_creds_rejects_oversize_fields(void **state)
{
	static const char *const names[] = {"qop",    "realm", "targetname",
					    "opaque", "epid",  "crand"};
	char *s, *v;
	struct sipae_creds c;
	size_t sz = SIPAE_MAX_GSSAPI + 512;

	(void)state;
	s = malloc(sz);
	v = malloc(SIPAE_MAX_GSSAPI + 2);
	assert_non_null(s);
	assert_non_null(v);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		memset(v, 'A', SIPAE_MAX_FIELD);
		v[SIPAE_MAX_FIELD] = '\0';
		snprintf(s, sz, "NTLM %s=\"%s\", gssapi-data=\"\"", names[i], v);
		/* at the bound: accepted (crand then fails its own rule) */
		assert_int_equal(parse_creds(s, &c), i == 5 ? SIPAE_E_VALUE : 0);
		v[SIPAE_MAX_FIELD] = 'A';
		v[SIPAE_MAX_FIELD + 1] = '\0';
		snprintf(s, sz, "NTLM %s=\"%s\", gssapi-data=\"\"", names[i], v);
		assert_int_equal(parse_creds(s, &c), SIPAE_E_TOO_LONG);
	}
	memset(v, 'A', SIPAE_MAX_GSSAPI);
	v[SIPAE_MAX_GSSAPI] = '\0';
	snprintf(s, sz, "NTLM gssapi-data=\"%s\"", v);
	assert_int_equal(parse_creds(s, &c), 0);
	assert_int_equal(c.gssapi_data.len, SIPAE_MAX_GSSAPI);
	v[SIPAE_MAX_GSSAPI] = 'A';
	v[SIPAE_MAX_GSSAPI + 1] = '\0';
	snprintf(s, sz, "NTLM gssapi-data=\"%s\"", v);
	assert_int_equal(parse_creds(s, &c), SIPAE_E_TOO_LONG);
	memset(v, 'a', SIPAE_MAX_RESPONSE);
	v[SIPAE_MAX_RESPONSE] = '\0';
	snprintf(s, sz, "NTLM crand=\"01234567\", cnum=1, response=\"%s\"", v);
	assert_int_equal(parse_creds(s, &c), 0);
	v[SIPAE_MAX_RESPONSE] = 'a';
	v[SIPAE_MAX_RESPONSE + 1] = 'a';
	v[SIPAE_MAX_RESPONSE + 2] = '\0';
	snprintf(s, sz, "NTLM crand=\"01234567\", cnum=1, response=\"%s\"", v);
	assert_int_equal(parse_creds(s, &c), SIPAE_E_TOO_LONG);
	free(s);
	free(v);
}

static void test_sipae_creds_rejects_too_many_params(void **state)
{
	char s[2048];
	size_t n;
	struct sipae_creds c;

	(void)state;
	n = (size_t)snprintf(s, sizeof(s), "NTLM gssapi-data=\"\"");
	for (int i = 1; i < SIPAE_MAX_PARAMS; i++)
		n += (size_t)snprintf(s + n, sizeof(s) - n, ", x%d=1", i);
	assert_int_equal(parse_creds(s, &c), 0); /* exactly the bound */
	snprintf(s + n, sizeof(s) - n, ", y=1");
	assert_int_equal(parse_creds(s, &c), SIPAE_E_TOO_LONG);
}

static void test_sipae_creds_rejects_bad_cnum(void **state)
{
	static const char base[] = "NTLM crand=\"01234567\", cnum=\"5\", response=\"00\"";
	static const char *const bad[] = {
	    "cnum=\"0\"",	    "cnum=\"-1\"", "cnum=\"+1\"",   "cnum=\"4294967296\"",
	    "cnum=\"99999999999\"", "cnum=\"1a\"", "cnum=\"0x10\"", "cnum=\"\"",
	    "cnum=\"01\"",	    "cnum=\" 1\"", "cnum=\"1 \""};
	struct sipae_creds c;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = parse_creds_with(base, "cnum=\"5\"", bad[i], &c);
		if (rc != SIPAE_E_VALUE) {
			print_error("%s: %d\n", bad[i], rc);
			fail();
		}
	}
	assert_int_equal(parse_creds_with(base, "cnum=\"5\"", "cnum=\"4294967295\"", &c), 0);
	assert_int_equal(c.cnum, UINT32_MAX);
	assert_int_equal(parse_creds_with(base, "cnum=\"5\"", "cnum=1", &c), 0);
	assert_int_equal(c.cnum, 1);
}

static void test_sipae_creds_rejects_bad_crand_response_version_gssapi(void **state)
{
	static const char base[] = "NTLM crand=\"01234567\", cnum=\"5\", response=\"00\", "
				   "version=4, gssapi-data=\"AA==\"";
	static const char *const bad[][2] = {
	    {"crand=\"01234567\"", "crand=\"0123456\""},
	    {"crand=\"01234567\"", "crand=\"012345678\""},
	    {"crand=\"01234567\"", "crand=\"0123456g\""},
	    {"crand=\"01234567\"", "crand=\"\""},
	    {"response=\"00\"", "response=\"0\""},
	    {"response=\"00\"", "response=\"0g\""},
	    {"response=\"00\"", "response=\"\""},
	    {"version=4", "version=0"},
	    {"version=4", "version=x"},
	    {"version=4", "version=100"},
	    {"version=4", "version=-4"},
	    {"gssapi-data=\"AA==\"", "gssapi-data=\"AA ==\""},
	    {"gssapi-data=\"AA==\"", "gssapi-data=\"AA-_\""},
	};
	struct sipae_creds c;

	(void)state;
	assert_int_equal(parse_creds(base, &c), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = parse_creds_with(base, bad[i][0], bad[i][1], &c);
		if (rc != SIPAE_E_VALUE) {
			print_error("%s: %d\n", bad[i][1], rc);
			fail();
		}
	}
}

static void test_sipae_creds_rejects_missing_or_partial_signature(void **state)
{
	static const char *const bad[] = {
	    "NTLM qop=\"auth\", realm=\"R\", targetname=\"T\", version=4",
	    "NTLM crand=\"01234567\", cnum=\"1\"",
	    "NTLM crand=\"01234567\", response=\"00\"",
	    "NTLM cnum=\"1\", response=\"00\"",
	    "NTLM gssapi-data=\"\", response=\"00\"",
	    "NTLM gssapi-data=\"\", cnum=\"1\"",
	    "NTLM gssapi-data=\"\", crand=\"01234567\"",
	    "NTLM",
	};
	struct sipae_creds c;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(parse_creds(bad[i], &c), SIPAE_E_MISSING);
}

static void test_sipae_strerror_names_every_code(void **state)
{
	const char *seen[8];
	int n = 0;

	(void)state;
	for (int e = 0; e >= SIPAE_E_MISSING; e--) {
		const char *s = sipae_strerror(e);
		assert_non_null(s);
		for (int i = 0; i < n; i++)
			assert_string_not_equal(seen[i], s);
		seen[n++] = s;
	}
	assert_string_equal(sipae_strerror(-99), "unknown authentication header error");
}

/* ---- written headers ---------------------------------------------------------- */

static void test_sipae_challenge_exact_format(void **state)
{
	char mem[512];
	struct sbuf b;

	(void)state;
	sbuf_init(&b, mem, sizeof(mem));
	sipae_challenge_write(&b, "WWW-Authenticate", SA_SCHEME_NTLM,
			      STR_LIT("SIP Communications Service"), STR_LIT("fe01.example.test"),
			      4, STR_NULL, STR_NULL, STR_LIT("https://ignored"));
	assert_true(sbuf_ok(&b));
	ASSERT_STR(str_make(b.p, b.len),
		   "WWW-Authenticate: NTLM realm=\"SIP Communications Service\", "
		   "targetname=\"fe01.example.test\", version=4\r\n");
	sbuf_init(&b, mem, sizeof(mem));
	sipae_challenge_write(&b, "Proxy-Authenticate", SA_SCHEME_NTLM, STR_LIT("R"), STR_LIT("T"),
			      3, STR_LIT("2BDBAC9D"), STR_LIT("TlRMTVNTUAAC"), STR_NULL);
	ASSERT_STR(str_make(b.p, b.len),
		   "Proxy-Authenticate: NTLM opaque=\"2BDBAC9D\", gssapi-data=\"TlRMTVNTUAAC\", "
		   "realm=\"R\", targetname=\"T\", version=3\r\n");
	sbuf_init(&b, mem, sizeof(mem));
	sipae_challenge_write(&b, "WWW-Authenticate", SA_SCHEME_TLSDSK, STR_LIT("R"), STR_LIT("T"),
			      4, STR_NULL, STR_NULL, STR_LIT("https://w/CertProv"));
	ASSERT_STR(str_make(b.p, b.len), "WWW-Authenticate: TLS-DSK realm=\"R\", targetname=\"T\", "
					 "sts-uri=\"https://w/CertProv\", version=4\r\n");
	sbuf_init(&b, mem, 20);
	sipae_challenge_write(&b, "WWW-Authenticate", SA_SCHEME_KERBEROS, STR_LIT("R"),
			      STR_LIT("sip/fe01"), 4, STR_NULL, STR_NULL, STR_NULL);
	assert_false(sbuf_ok(&b));
}

static void test_sipae_auth_info_exact_format_and_buffer_round_trip(void **state)
{
	char mem[512], msgbuf[2048], buf[SIPAE_SIGBUF_MAX];
	struct sbuf b;
	long n;

	(void)state;
	sbuf_init(&b, mem, sizeof(mem));
	sipae_auth_info_write(&b, "Authentication-Info", SA_SCHEME_NTLM, STR_LIT("2BDBAC9D"),
			      STR_LIT("SIP Communications Service"), STR_LIT("fe01.example.test"),
			      STR_LIT("01000000e615438a917661be64000000"), STR_LIT("9616454F"), 1,
			      STR_NULL);
	assert_true(sbuf_ok(&b));
	ASSERT_STR(str_make(b.p, b.len),
		   "Authentication-Info: NTLM opaque=\"2BDBAC9D\", qop=\"auth\", "
		   "realm=\"SIP Communications Service\", targetname=\"fe01.example.test\", "
		   "rspauth=\"01000000e615438a917661be64000000\", srand=\"9616454F\", "
		   "snum=\"1\"\r\n");
	/* the written header drives the same buffer as the PROTOCOLS.md example */
	snprintf(msgbuf, sizeof(msgbuf),
		 "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 127.0.0.1:5062;branch=z9hG4bK1\r\n"
		 "From: <sip:u@example.test>;tag=fromtag\r\nTo: <sip:u@example.test>;tag=totag\r\n"
		 "Call-ID: callid\r\nCSeq: 3 REGISTER\r\nExpires: 7200\r\n%.*sContent-Length: "
		 "0\r\n\r\n",
		 (int)b.len, b.p);
	parse_msg(msgbuf);
	n = buffer_of_msg(buf, sizeof(buf));
	assert_true(n > 0);
	ASSERT_STR(str_make(buf, (size_t)n),
		   "<NTLM><9616454F><1><SIP Communications Service><fe01.example.test>"
		   "<callid><3><REGISTER><sip:u@example.test><fromtag><sip:u@example.test>"
		   "<totag><><><7200><200>");
	sbuf_init(&b, mem, sizeof(mem));
	sipae_auth_info_write(&b, "Proxy-Authentication-Info", SA_SCHEME_KERBEROS, STR_LIT("0A"),
			      STR_LIT("R"), STR_LIT("T"), STR_LIT("ab"), STR_LIT("00000001"),
			      4294967295u, STR_LIT("YIIB"));
	ASSERT_STR(str_make(b.p, b.len),
		   "Proxy-Authentication-Info: Kerberos opaque=\"0A\", qop=\"auth\", realm=\"R\", "
		   "targetname=\"T\", gssapi-data=\"YIIB\", rspauth=\"ab\", srand=\"00000001\", "
		   "snum=\"4294967295\"\r\n");
}

static void test_sipae_rand_is_8_upper_hex_and_varies(void **state)
{
	char a[9], b[9];
	int same = 0;

	(void)state;
	for (int k = 0; k < 8; k++) {
		assert_int_equal(sipae_rand(a), 0);
		assert_int_equal(sipae_rand(b), 0);
		assert_int_equal(strlen(a), 8);
		for (int i = 0; i < 8; i++)
			assert_true((a[i] >= '0' && a[i] <= '9') || (a[i] >= 'A' && a[i] <= 'F'));
		same += strcmp(a, b) == 0;
	}
	assert_true(same < 2);
	assert_int_equal(sipae_rand(NULL), -1);
}

static void test_sa_scheme_names_round_trip(void **state)
{
	(void)state;
	for (int s = SA_SCHEME_NTLM; s <= SA_SCHEME_TLSDSK; s++)
		assert_int_equal(sa_scheme_parse(str_cstr(sa_scheme_name((enum sa_scheme)s))), s);
	assert_int_equal(sa_scheme_parse(STR_LIT("kerberos")), SA_SCHEME_KERBEROS);
	assert_int_equal(sa_scheme_parse(STR_LIT("Kerberos5")), SA_SCHEME_NONE);
	assert_int_equal(sa_scheme_parse(STR_LIT("")), SA_SCHEME_NONE);
	assert_string_equal(sa_scheme_name(SA_SCHEME_NONE), "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sipae_buffer_of_sipe_signed_register_request),
	    cmocka_unit_test(test_sipae_buffer_of_sipe_signed_200_ok),
	    cmocka_unit_test(test_sipae_buffer_of_protocols_md_example_200),
	    cmocka_unit_test(test_sipae_buffer_request_has_no_status_response_has_one),
	    cmocka_unit_test(test_sipae_missing_optional_fields_give_empty_brackets),
	    cmocka_unit_test(test_sipae_uri_keeps_uri_params_drops_header_params),
	    cmocka_unit_test(test_sipae_expires_header_only_never_contact_expires),
	    cmocka_unit_test(test_sipae_pai_sip_and_tel_from_one_or_two_headers),
	    cmocka_unit_test(test_sipae_compact_header_forms_give_the_same_buffer),
	    cmocka_unit_test(test_sipae_every_one_of_16_fields_changes_the_buffer),
	    cmocka_unit_test(test_sipae_buffer_fields_not_covered_do_not_change_it),
	    cmocka_unit_test(test_sipae_sig_buffer_refuses_small_or_oversize_output),
	    cmocka_unit_test(test_sipae_fields_from_msg_rejects_null),
	    cmocka_unit_test(test_sipae_signed_request_with_any_field_changed_fails_verification),
	    cmocka_unit_test(test_sipae_creds_sipe_final_register_with_gssapi_and_signature),
	    cmocka_unit_test(test_sipae_creds_sipe_second_register_empty_gssapi_data),
	    cmocka_unit_test(test_sipae_creds_signed_request_without_gssapi),
	    cmocka_unit_test(test_sipae_creds_header_order_does_not_matter),
	    cmocka_unit_test(test_sipae_creds_rejects_other_schemes),
	    cmocka_unit_test(test_sipae_creds_rejects_syntax_errors),
	    cmocka_unit_test(test_sipae_creds_rejects_duplicate_parameters),
	    cmocka_unit_test(test_sipae_creds_rejects_oversize_fields),
	    cmocka_unit_test(test_sipae_creds_rejects_too_many_params),
	    cmocka_unit_test(test_sipae_creds_rejects_bad_cnum),
	    cmocka_unit_test(test_sipae_creds_rejects_bad_crand_response_version_gssapi),
	    cmocka_unit_test(test_sipae_creds_rejects_missing_or_partial_signature),
	    cmocka_unit_test(test_sipae_strerror_names_every_code),
	    cmocka_unit_test(test_sipae_challenge_exact_format),
	    cmocka_unit_test(test_sipae_auth_info_exact_format_and_buffer_round_trip),
	    cmocka_unit_test(test_sipae_rand_is_8_upper_hex_and_varies),
	    cmocka_unit_test(test_sa_scheme_names_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, teardown);
}
