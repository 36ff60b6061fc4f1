/*
 * RFC 4475 torture messages against the SIP parser. Each test loads one
 * file from $RTC_TOP/tests/vectors/rfc4475 (exact bytes, see gen.py there)
 * and states how rtcauth treats it: valid messages parse and their accessors
 * return what the RFC describes; each invalid one is rejected by the named
 * check (sip_msg_parse, or the accessor a server calls), as listed in EXPECT.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sip/msg.h"

static struct sip_msg msg;
static char *buf;
static size_t blen;

static void check_str(struct str s, const char *want, const char *file, int line)
{
	if (!str_eq_cstr(s, want)) {
		print_error("%s:%d: got '%.*s' want '%s'\n", file, line, STR_FMT(s), want);
		_fail(file, line);
	}
}
#define ASSERT_STR(s, w) check_str((s), (w), __FILE__, __LINE__)

/* Load name.dat into a buffer of exactly its size (ASan sees overreads). */
static void load(const char *name)
{
	const char *top = getenv("RTC_TOP");
	char path[1024];
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s/tests/vectors/rfc4475/%s.dat", top ? top : ".", name);
	f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	assert_true(n > 0);
	free(buf);
	buf = malloc((size_t)n);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	blen = (size_t)n;
}

static int parse(const char *name)
{
	load(name);
	return sip_msg_parse(&msg, buf, blen, false);
}

static int teardown(void **state)
{
	(void)state;
	free(buf);
	buf = NULL;
	return 0;
}

/* Number of Via values, all of which must parse; -1 if one does not. */
static int count_vias(struct sip_via *vias, int max)
{
	struct sip_hdr_iter it;
	struct str v;
	int n = 0, rc;

	sip_hdr_iter_init(&it, &msg, SIP_H_VIA);
	while ((rc = sip_hdr_iter_next(&it, &v)) > 0) {
		struct sip_via tmp;
		if (sip_via_parse(v, n < max ? &vias[n] : &tmp))
			return -1;
		n++;
	}
	return rc < 0 ? -1 : n;
}

static int count_contacts(struct sip_contact *c, int max)
{
	struct sip_hdr_iter it;
	struct str v;
	int n = 0, rc;

	sip_hdr_iter_init(&it, &msg, SIP_H_CONTACT);
	while ((rc = sip_hdr_iter_next(&it, &v)) > 0) {
		struct sip_contact tmp;
		if (sip_contact_parse(v, n < max ? &c[n] : &tmp))
			return -1;
		n++;
	}
	return rc < 0 ? -1 : n;
}

static void assert_cseq(uint32_t num, const char *method)
{
	uint32_t n;
	struct str m;

	assert_int_equal(sip_msg_cseq(&msg, &n, &m), 0);
	assert_int_equal(n, num);
	ASSERT_STR(m, method);
}

/* ---- RFC 4475 §3.1.1 valid messages ---- */

static void test_rfc4475_wsinv_parses(void **state)
{
	struct sip_nameaddr na;
	struct sip_uri u;
	struct sip_via v[4];
	struct sip_contact c[2];
	struct str p;
	uint32_t mf;

	assert_int_equal(parse("wsinv"), 0);
	assert_true(msg.is_request);
	assert_int_equal(msg.method_id, SIP_M_INVITE);
	ASSERT_STR(msg.ruri, "sip:vivekg@chair-dnrc.example.com;unknownparam");
	assert_int_equal(sip_uri_parse(msg.ruri, &u), 0);
	ASSERT_STR(u.user, "vivekg");
	ASSERT_STR(u.host, "chair-dnrc.example.com");
	ASSERT_STR(u.params, "unknownparam");
	ASSERT_STR(sip_msg_call_id(&msg), "wsinv.ndaksdj@192.0.2.1");
	assert_cseq(9, "INVITE");
	assert_int_equal(sip_msg_max_forwards(&msg, &mf), 0);
	assert_int_equal(mf, 68);
	assert_int_equal(sip_msg_to(&msg, &na), 0);
	ASSERT_STR(na.uri_str, "sip:vivekg@chair-dnrc.example.com");
	ASSERT_STR(na.tag, "1918181833n");
	assert_int_equal(sip_msg_from(&msg, &na), 0);
	ASSERT_STR(na.display, "J Rosenberg \\\\\\\"");
	ASSERT_STR(na.uri.user, "jdrosen");
	ASSERT_STR(na.tag, "98asjd8");
	assert_int_equal(count_vias(v, 4), 3);
	ASSERT_STR(v[0].transport, "UDP");
	ASSERT_STR(v[0].host, "192.0.2.2");
	ASSERT_STR(v[0].branch, "390skdjuw");
	ASSERT_STR(v[1].transport, "TCP");
	ASSERT_STR(v[1].host, "spindle.example.com");
	ASSERT_STR(v[1].branch, "z9hG4bK9ikj8");
	ASSERT_STR(v[2].host, "192.168.255.111");
	ASSERT_STR(v[2].branch, "z9hG4bK30239");
	assert_int_equal(count_contacts(c, 2), 1);
	ASSERT_STR(c[0].na.display, "Quoted string \\\"\\\"");
	ASSERT_STR(c[0].q, "0.33");
	assert_int_equal(sip_param_get(c[0].na.params, "newparam", &p), 1);
	ASSERT_STR(p, "newvalue");
	assert_int_equal(sip_param_get(c[0].na.params, "secondparam", &p), 1);
	assert_int_equal(p.len, 0);
	assert_non_null(sip_msg_header(&msg, SIP_H_SUBJECT));
	assert_int_equal(sip_msg_header(&msg, SIP_H_SUBJECT)->value.len, 0);
	assert_non_null(sip_msg_header_by_name(&msg, "newfangledheader"));
	assert_int_equal(sip_msg_header(&msg, SIP_H_ROUTE) != NULL, 1);
	assert_int_equal(sip_nameaddr_parse(sip_msg_header(&msg, SIP_H_ROUTE)->value, &na), 0);
	assert_true(na.uri.lr);
	assert_int_equal(msg.body.len, 150);
	assert_int_equal(msg.len, blen);
}

static void test_rfc4475_intmeth_parses(void **state)
{
	struct sip_uri u;
	struct sip_nameaddr na;
	struct sip_via v;
	uint32_t mf;
	const struct sip_header *h;
	struct str p;

	assert_int_equal(parse("intmeth"), 0);
	assert_int_equal(msg.method_id, SIP_M_OTHER);
	ASSERT_STR(msg.method, "!interesting-Method0123456789_*+`.%indeed'~");
	assert_int_equal(sip_uri_parse(msg.ruri, &u), 0);
	ASSERT_STR(u.user, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
	ASSERT_STR(u.password, "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)");
	ASSERT_STR(u.host, "example.com");
	assert_int_equal(sip_msg_to(&msg, &na), 0);
	assert_int_equal(na.display.len, 20); /* BEL:\<07> NUL:\<00> DEL:\<7F> */
	ASSERT_STR(na.uri.user, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
	assert_int_equal(sip_msg_from(&msg, &na), 0);
	ASSERT_STR(na.display, "token1~` token2'+_ token3*%!.-");
	ASSERT_STR(na.tag, "_token~1'+`*%!-.");
	assert_int_equal(sip_param_get(na.params, "fromParam''~+*_!.-%", &p), 1);
	assert_int_equal(p.len, 22); /* quoted UTF-8, 10 Cyrillic letters */
	ASSERT_STR(sip_msg_call_id(&msg), "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{");
	assert_cseq(139122385, "!interesting-Method0123456789_*+`.%indeed'~");
	assert_int_equal(sip_msg_max_forwards(&msg, &mf), 0);
	assert_int_equal(mf, 255);
	h = sip_msg_header_by_name(&msg, "extensionHeader-!.%*+_`'~");
	assert_non_null(h);
	assert_int_equal(h->value.len, 12);
	assert_int_equal(sip_msg_top_via(&msg, &v), 0);
	ASSERT_STR(v.branch, "z9hG4bK-.!%66*_+`'~");
	assert_int_equal(msg.body.len, 0);
}

static void test_rfc4475_esc01_parses(void **state)
{
	struct sip_uri u;
	struct sip_nameaddr na;
	struct sip_contact c[2];

	assert_int_equal(parse("esc01"), 0);
	assert_int_equal(sip_uri_parse(msg.ruri, &u), 0);
	ASSERT_STR(u.user, "sips%3Auser%40example.com");
	ASSERT_STR(u.host, "example.net");
	assert_int_equal(sip_msg_to(&msg, &na), 0);
	ASSERT_STR(na.uri.user, "%75se%72");
	assert_int_equal(sip_msg_from(&msg, &na), 0);
	ASSERT_STR(na.uri.user, "I%20have%20spaces");
	ASSERT_STR(na.tag, "938");
	ASSERT_STR(sip_msg_call_id(&msg), "esc01.239409asdfakjkn23onasd0-3234");
	ASSERT_STR(sip_msg_header(&msg, SIP_H_CONTENT_TYPE)->value, "application/sdp");
	assert_int_equal(count_contacts(c, 2), 1);
	ASSERT_STR(c[0].na.uri.user, "cal%6Cer");
	ASSERT_STR(c[0].na.uri.params, "%6C%72;n%61me=v%61lue%25%34%31");
	assert_cseq(234234, "INVITE");
	assert_int_equal(msg.body.len, 150);
}

static void test_rfc4475_escnull_parses(void **state)
{
	struct sip_nameaddr na;
	struct sip_contact c[3];

	assert_int_equal(parse("escnull"), 0);
	assert_int_equal(sip_msg_to(&msg, &na), 0);
	ASSERT_STR(na.uri.user, "null-%00-null");
	assert_int_equal(sip_msg_from(&msg, &na), 0);
	ASSERT_STR(na.tag, "839923423");
	assert_int_equal(count_contacts(c, 3), 2);
	ASSERT_STR(c[0].na.uri.user, "%00");
	ASSERT_STR(c[1].na.uri.user, "%00%00");
	assert_true(msg.has_content_length);
	assert_int_equal(msg.content_length, 0);
}

static void test_rfc4475_esc02_parses(void **state)
{
	struct sip_nameaddr na;
	struct sip_contact c[3];
	struct sip_via v;
	const struct sip_header *h;

	assert_int_equal(parse("esc02"), 0);
	ASSERT_STR(msg.method, "RE%47IST%45R");
	assert_int_equal(msg.method_id, SIP_M_OTHER); /* not REGISTER */
	assert_cseq(29344, "RE%47IST%45R");
	assert_int_equal(sip_msg_to(&msg, &na), 0);
	ASSERT_STR(na.display, "%Z%45");
	/* C%6Fntact is an unknown header, not a third Contact */
	assert_int_equal(count_contacts(c, 3), 2);
	ASSERT_STR(c[0].na.uri.user, "alias1");
	ASSERT_STR(c[1].na.uri.user, "alias3");
	h = sip_msg_header_by_name(&msg, "C%6Fntact");
	assert_non_null(h);
	assert_int_equal(h->id, SIP_H_OTHER);
	assert_int_equal(sip_msg_top_via(&msg, &v), 0);
	ASSERT_STR(v.branch, "z9hG4bK209%fzsnel234");
}

static void test_rfc4475_lwsdisp_parses(void **state)
{
	struct sip_nameaddr na;

	assert_int_equal(parse("lwsdisp"), 0);
	assert_int_equal(sip_msg_from(&msg, &na), 0);
	ASSERT_STR(na.display, "caller");
	ASSERT_STR(na.uri_str, "sip:caller@example.com");
	ASSERT_STR(na.tag, "323");
}

static void test_rfc4475_longreq_parses(void **state)
{
	struct sip_nameaddr na;
	struct sip_via v[40];
	struct sip_contact c[2];
	struct str p;

	assert_int_equal(parse("longreq"), 0);
	assert_int_equal(count_vias(v, 40), 34);
	ASSERT_STR(v[0].host, "sip33.example.com");
	ASSERT_STR(v[11].host, "sip22.example.com"); /* "V :  SIP/2.0/TCP ..." */
	ASSERT_STR(v[33].received, "192.0.2.5");
	assert_int_equal(v[33].branch.len, 4 + 200 + 11);
	assert_int_equal(sip_msg_to(&msg, &na), 0);
	assert_int_equal(na.uri.port, 6000);
	assert_int_equal(sip_param_get(na.uri.params, "unknownparam1", &p), 1);
	assert_int_equal(p.len, 4 + 80 + 5);
	assert_int_equal(sip_msg_from(&msg, &na), 0);
	assert_int_equal(na.tag.len, 2 + 150 + 3);
	assert_int_equal(na.uri.user.len, 23 * 5);
	assert_int_equal(sip_msg_call_id(&msg).len, 11 + 120 + 10);
	assert_int_equal(count_contacts(c, 2), 1);
	assert_int_equal(msg.body.len, 150);
}

static void test_rfc4475_dblreq_parses_first_message_only(void **state)
{
	size_t skip;
	long n;
	const char *second;

	assert_int_equal(parse("dblreq"), 0);
	assert_int_equal(msg.method_id, SIP_M_REGISTER);
	ASSERT_STR(sip_msg_call_id(&msg), "dblreq.0ha0isndaksdj99sdfafnl3lk233412");
	assert_int_equal(msg.body.len, 0);
	/* RFC 4475 §3.1.1.8: octets after Content-Length are discarded */
	second = memmem(buf, blen, "INVITE sip:joe", 14);
	assert_non_null(second);
	assert_int_equal(msg.len, (size_t)(second - buf));
	n = sip_msg_frame(buf, blen, 65536, &skip);
	assert_int_equal(skip, 0);
	assert_int_equal(n, second - buf);
}

static void test_rfc4475_semiuri_parses(void **state)
{
	struct sip_uri u;
	struct sip_hdr_iter it;
	struct str v;
	int n = 0;

	assert_int_equal(parse("semiuri"), 0);
	assert_int_equal(sip_uri_parse(msg.ruri, &u), 0);
	ASSERT_STR(u.user, "user;par=u%40example.net");
	ASSERT_STR(u.host, "example.com");
	assert_int_equal(u.params.len, 0);
	sip_hdr_iter_init(&it, &msg, SIP_H_ACCEPT);
	while (sip_hdr_iter_next(&it, &v) > 0)
		n++;
	assert_int_equal(n, 6);
	ASSERT_STR(v, "message/sipfrag");
}

static void test_rfc4475_transports_parses(void **state)
{
	struct sip_via v[6];
	static const char *tr[] = {"UDP", "SCTP", "TLS", "UNKNOWN", "TCP"};

	assert_int_equal(parse("transports"), 0);
	assert_int_equal(count_vias(v, 6), 5);
	for (int i = 0; i < 5; i++)
		ASSERT_STR(v[i].transport, tr[i]);
	ASSERT_STR(v[3].branch, "z9hG4bKasd0f3en");
	ASSERT_STR(sip_msg_call_id(&msg), "transports.kijh4akdnaqjkwendsasfdj");
}

static void test_rfc4475_mpart01_parses(void **state)
{
	struct sip_via v;

	assert_int_equal(parse("mpart01"), 0);
	assert_int_equal(msg.method_id, SIP_M_MESSAGE);
	assert_int_equal(msg.body.len, 553);
	assert_non_null(memchr(msg.body.p, 0, msg.body.len)); /* binary body */
	assert_int_equal(sip_msg_top_via(&msg, &v), 0);
	assert_true(v.has_rport);
	assert_int_equal(v.rport.len, 0);
	assert_int_equal(v.port, 5070);
	ASSERT_STR(v.branch, "z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-");
	ASSERT_STR(sip_msg_header(&msg, SIP_H_CONTENT_TYPE)->value,
		   "multipart/mixed;boundary=7a9cbec02ceef655");
	ASSERT_STR(sip_msg_header(&msg, SIP_H_DATE)->value, "Sat, 15 Oct 2005 04:44:56 GMT");
}

static void test_rfc4475_unreason_parses(void **state)
{
	assert_int_equal(parse("unreason"), 0);
	assert_false(msg.is_request);
	assert_int_equal(msg.status, 200);
	assert_true(msg.reason.len > 14);
	assert_memory_equal(msg.reason.p, "= 2**3 * 5**2 ", 14);
	assert_int_equal(msg.body.len, 154);
	assert_cseq(35, "INVITE");
}

static void test_rfc4475_noreason_parses(void **state)
{
	struct sip_nameaddr na;

	assert_int_equal(parse("noreason"), 0);
	assert_int_equal(msg.status, 100);
	assert_int_equal(msg.reason.len, 0);
	assert_int_equal(sip_msg_to(&msg, &na), 0);
	ASSERT_STR(na.tag, "902jndnke3");
}

/* ---- RFC 4475 §3.1.2 invalid messages ---- */

static void test_rfc4475_badinv01_rejected_by_via_and_contact(void **state)
{
	struct sip_via v;
	struct sip_hdr_iter it;
	struct str s;
	struct sip_contact c;

	assert_int_equal(parse("badinv01"), 0); /* framing is fine */
	assert_int_equal(sip_msg_top_via(&msg, &v), -1);
	sip_hdr_iter_init(&it, &msg, SIP_H_CONTACT);
	assert_int_equal(sip_hdr_iter_next(&it, &s), 1);
	assert_int_equal(sip_contact_parse(s, &c), -1);
}

static void test_rfc4475_clerr_rejected_content_length_too_large(void **state)
{
	assert_int_equal(parse("clerr"), SIP_E_CLEN);
}

static void test_rfc4475_ncl_rejected_negative_content_length(void **state)
{
	assert_int_equal(parse("ncl"), SIP_E_CLEN);
}

static void test_rfc4475_scalar02_rejected_overlarge_values(void **state)
{
	uint32_t v;
	struct sip_contact c[2];

	assert_int_equal(parse("scalar02"), SIP_E_BAD_VALUE); /* CSeq > 2^31 */
	assert_int_equal(sip_msg_expires(&msg, &v), -1);
	assert_int_equal(sip_msg_max_forwards(&msg, &v), -1); /* 300 > 255 */
	assert_int_equal(count_contacts(c, 2), 1);
	assert_true(c[0].has_expires);
	assert_int_equal(c[0].expires, UINT32_MAX); /* clamped */
}

static void test_rfc4475_scalarlg_rejected_overlarge_cseq(void **state)
{
	uint32_t n;
	struct str m;

	assert_int_equal(parse("scalarlg"), SIP_E_BAD_VALUE);
	assert_int_equal(msg.status, 503);
	assert_int_equal(sip_msg_cseq(&msg, &n, &m), -1);
}

static void test_rfc4475_quotbal_rejected_by_to(void **state)
{
	struct sip_nameaddr na;

	assert_int_equal(parse("quotbal"), 0);
	assert_int_equal(sip_msg_to(&msg, &na), -1);
}

static void test_rfc4475_ltgtruri_rejected_by_uri_parse(void **state)
{
	struct sip_uri u;

	assert_int_equal(parse("ltgtruri"), 0);
	ASSERT_STR(msg.ruri, "<sip:user@example.com>");
	assert_int_equal(sip_uri_parse(msg.ruri, &u), -1);
}

static void test_rfc4475_lwsruri_rejected_start_line(void **state)
{
	assert_int_equal(parse("lwsruri"), SIP_E_START_LINE);
}

static void test_rfc4475_lwsstart_rejected_start_line(void **state)
{
	assert_int_equal(parse("lwsstart"), SIP_E_START_LINE);
}

static void test_rfc4475_trws_rejected_start_line(void **state)
{
	assert_int_equal(parse("trws"), SIP_E_START_LINE);
}

static void test_rfc4475_escruri_rejected_headers_in_request_uri(void **state)
{
	struct sip_uri u;

	assert_int_equal(parse("escruri"), 0);
	assert_int_equal(sip_uri_parse(msg.ruri, &u), 0);
	/* RFC 3261 §19.1.1 table 1: headers are not allowed in a Request-URI */
	ASSERT_STR(u.headers, "Route=%3Csip:example.com%3E");
}

static void test_rfc4475_baddate_date_not_gmt(void **state)
{
	const struct sip_header *h;

	assert_int_equal(parse("baddate"), 0);
	h = sip_msg_header(&msg, SIP_H_DATE);
	assert_non_null(h);
	/* RFC 3261 §20.17: rfc1123-date is always GMT */
	assert_true(h->value.len > 3);
	assert_memory_not_equal(h->value.p + h->value.len - 3, "GMT", 3);
}

static void test_rfc4475_regbadct_rejected_by_contact(void **state)
{
	struct sip_contact c[2];

	assert_int_equal(parse("regbadct"), 0);
	assert_int_equal(count_contacts(c, 2), -1);
}

static void test_rfc4475_badaspec_rejected_by_to(void **state)
{
	struct sip_nameaddr na;

	assert_int_equal(parse("badaspec"), 0);
	assert_int_equal(sip_msg_from(&msg, &na), 0);
	ASSERT_STR(na.display, "Bell, Alexander");
	assert_int_equal(sip_msg_to(&msg, &na), -1);
}

static void test_rfc4475_baddn_rejected_by_from_and_to(void **state)
{
	struct sip_nameaddr na;

	assert_int_equal(parse("baddn"), 0);
	assert_int_equal(sip_msg_from(&msg, &na), -1);
	assert_int_equal(sip_msg_to(&msg, &na), -1);
}

static void test_rfc4475_badvers_rejected_version(void **state)
{
	assert_int_equal(parse("badvers"), SIP_E_VERSION);
}

static void test_rfc4475_mismatch01_rejected_cseq_method(void **state)
{
	assert_int_equal(parse("mismatch01"), SIP_E_BAD_VALUE);
	assert_cseq(8, "INVITE");
}

static void test_rfc4475_mismatch02_rejected_cseq_method(void **state)
{
	assert_int_equal(parse("mismatch02"), SIP_E_BAD_VALUE);
	ASSERT_STR(msg.method, "NEWMETHOD");
}

static void test_rfc4475_bigcode_rejected_start_line(void **state)
{
	assert_int_equal(parse("bigcode"), SIP_E_START_LINE);
}

/* ---- RFC 4475 §3.2 transaction layer ---- */

static void test_rfc4475_badbranch_parses_with_bare_cookie(void **state)
{
	struct sip_via v;

	assert_int_equal(parse("badbranch"), 0);
	assert_int_equal(sip_msg_top_via(&msg, &v), 0);
	ASSERT_STR(v.branch, "z9hG4bK");
}

/* ---- RFC 4475 §3.3 application layer ---- */

static void test_rfc4475_insuf_rejected_missing_headers(void **state)
{
	assert_int_equal(parse("insuf"), SIP_E_MISSING);
}

static void test_rfc4475_unkscm_unknown_scheme(void **state)
{
	struct sip_uri u;

	assert_int_equal(parse("unkscm"), 0);
	assert_int_equal(sip_uri_parse(msg.ruri, &u), 0);
	ASSERT_STR(u.scheme, "nobodyKnowsThisScheme"); /* -> 416 */
	ASSERT_STR(u.user, "totallyopaquecontent");
}

static void test_rfc4475_novelsc_atypical_scheme(void **state)
{
	struct sip_uri u;

	assert_int_equal(parse("novelsc"), 0);
	assert_int_equal(sip_uri_parse(msg.ruri, &u), 0);
	ASSERT_STR(u.scheme, "soap.beep"); /* -> 416 */
}

static void test_rfc4475_unksm2_rejected_by_to_from_contact(void **state)
{
	struct sip_nameaddr na;
	struct sip_contact c[2];

	assert_int_equal(parse("unksm2"), 0);
	assert_int_equal(sip_msg_to(&msg, &na), -1);
	assert_int_equal(sip_msg_from(&msg, &na), -1);
	assert_int_equal(count_contacts(c, 2), -1);
}

static void test_rfc4475_bext01_parses_unknown_extensions(void **state)
{
	struct sip_hdr_iter it;
	struct str v;

	assert_int_equal(parse("bext01"), 0);
	sip_hdr_iter_init(&it, &msg, SIP_H_REQUIRE);
	assert_int_equal(sip_hdr_iter_next(&it, &v), 1);
	ASSERT_STR(v, "nothingSupportsThis");
	assert_int_equal(sip_hdr_iter_next(&it, &v), 1);
	ASSERT_STR(v, "nothingSupportsThisEither");
	assert_int_equal(sip_hdr_iter_next(&it, &v), 0);
	assert_non_null(sip_msg_header(&msg, SIP_H_PROXY_REQUIRE));
}

static void test_rfc4475_invut_parses_unknown_content_type(void **state)
{
	assert_int_equal(parse("invut"), 0);
	ASSERT_STR(sip_msg_header(&msg, SIP_H_CONTENT_TYPE)->value, "application/unknownformat");
	assert_int_equal(msg.body.len, 40);
}

static void test_rfc4475_regaut01_parses_unknown_auth_scheme(void **state)
{
	assert_int_equal(parse("regaut01"), 0);
	ASSERT_STR(sip_msg_header(&msg, SIP_H_AUTHORIZATION)->value,
		   "NoOneKnowsThisScheme opaque-data=here");
	assert_int_equal(msg.content_length, 0);
}

static void test_rfc4475_multi01_rejected_duplicate_single_headers(void **state)
{
	assert_int_equal(parse("multi01"), SIP_E_BAD_VALUE);
}

static void test_rfc4475_mcl01_rejected_two_content_lengths(void **state)
{
	assert_int_equal(parse("mcl01"), SIP_E_CLEN);
}

static void test_rfc4475_bcast_parses(void **state)
{
	struct sip_via v[3];

	assert_int_equal(parse("bcast"), 0);
	assert_int_equal(msg.status, 200);
	assert_int_equal(count_vias(v, 3), 2);
	ASSERT_STR(v[0].host, "192.0.2.198");
	ASSERT_STR(v[1].host, "255.255.255.255");
	assert_int_equal(msg.body.len, 154);
}

static void test_rfc4475_zeromf_parses_max_forwards_zero(void **state)
{
	uint32_t mf = 99;

	assert_int_equal(parse("zeromf"), 0);
	assert_int_equal(sip_msg_max_forwards(&msg, &mf), 0);
	assert_int_equal(mf, 0);
}

static void test_rfc4475_cparam01_param_belongs_to_header(void **state)
{
	struct sip_contact c[2];

	assert_int_equal(parse("cparam01"), 0);
	assert_int_equal(count_contacts(c, 2), 1);
	assert_int_equal(c[0].na.uri.params.len, 0);
	ASSERT_STR(c[0].na.params, "unknownparam");
	ASSERT_STR(c[0].na.uri.user, "+19725552222");
}

static void test_rfc4475_cparam02_param_belongs_to_uri(void **state)
{
	struct sip_contact c[2];

	assert_int_equal(parse("cparam02"), 0);
	assert_int_equal(count_contacts(c, 2), 1);
	ASSERT_STR(c[0].na.uri.params, "unknownparam");
	assert_int_equal(c[0].na.params.len, 0);
}

static void test_rfc4475_regescrt_parses_escaped_header(void **state)
{
	struct sip_contact c[2];

	assert_int_equal(parse("regescrt"), 0);
	assert_int_equal(count_contacts(c, 2), 1);
	ASSERT_STR(c[0].na.uri.headers, "Route=%3Csip:sip.example.com%3E");
}

static void test_rfc4475_sdp01_parses_unacceptable_accept(void **state)
{
	assert_int_equal(parse("sdp01"), 0);
	ASSERT_STR(sip_msg_header(&msg, SIP_H_ACCEPT)->value, "text/nobodyKnowsThis");
	assert_int_equal(msg.body.len, 150);
}

/* ---- RFC 4475 §3.4 backward compatibility ---- */

static void test_rfc4475_inv2543_parses_as_datagram(void **state)
{
	struct sip_via v;
	struct sip_nameaddr na;
	uint32_t mf;

	assert_int_equal(parse("inv2543"), 0);
	assert_int_equal(sip_msg_max_forwards(&msg, &mf), 1);
	assert_int_equal(sip_msg_top_via(&msg, &v), 0);
	assert_int_equal(v.branch.len, 0); /* RFC 2543 transaction matching */
	assert_int_equal(sip_msg_to(&msg, &na), 0);
	ASSERT_STR(na.params, "user=phone"); /* a header param in addr-spec form */
	assert_int_equal(na.tag.len, 0);
	assert_int_equal(sip_msg_from(&msg, &na), 0);
	ASSERT_STR(na.uri.params, "user=phone");
	assert_false(msg.has_content_length);
	assert_int_equal(msg.body.len, 105);
	/* on a stream transport the missing Content-Length is fatal */
	assert_int_equal(sip_msg_parse(&msg, buf, blen, true), SIP_E_CLEN);
}

#define T(f) cmocka_unit_test_teardown(f, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_rfc4475_wsinv_parses),
	    T(test_rfc4475_intmeth_parses),
	    T(test_rfc4475_esc01_parses),
	    T(test_rfc4475_escnull_parses),
	    T(test_rfc4475_esc02_parses),
	    T(test_rfc4475_lwsdisp_parses),
	    T(test_rfc4475_longreq_parses),
	    T(test_rfc4475_dblreq_parses_first_message_only),
	    T(test_rfc4475_semiuri_parses),
	    T(test_rfc4475_transports_parses),
	    T(test_rfc4475_mpart01_parses),
	    T(test_rfc4475_unreason_parses),
	    T(test_rfc4475_noreason_parses),
	    T(test_rfc4475_badinv01_rejected_by_via_and_contact),
	    T(test_rfc4475_clerr_rejected_content_length_too_large),
	    T(test_rfc4475_ncl_rejected_negative_content_length),
	    T(test_rfc4475_scalar02_rejected_overlarge_values),
	    T(test_rfc4475_scalarlg_rejected_overlarge_cseq),
	    T(test_rfc4475_quotbal_rejected_by_to),
	    T(test_rfc4475_ltgtruri_rejected_by_uri_parse),
	    T(test_rfc4475_lwsruri_rejected_start_line),
	    T(test_rfc4475_lwsstart_rejected_start_line),
	    T(test_rfc4475_trws_rejected_start_line),
	    T(test_rfc4475_escruri_rejected_headers_in_request_uri),
	    T(test_rfc4475_baddate_date_not_gmt),
	    T(test_rfc4475_regbadct_rejected_by_contact),
	    T(test_rfc4475_badaspec_rejected_by_to),
	    T(test_rfc4475_baddn_rejected_by_from_and_to),
	    T(test_rfc4475_badvers_rejected_version),
	    T(test_rfc4475_mismatch01_rejected_cseq_method),
	    T(test_rfc4475_mismatch02_rejected_cseq_method),
	    T(test_rfc4475_bigcode_rejected_start_line),
	    T(test_rfc4475_badbranch_parses_with_bare_cookie),
	    T(test_rfc4475_insuf_rejected_missing_headers),
	    T(test_rfc4475_unkscm_unknown_scheme),
	    T(test_rfc4475_novelsc_atypical_scheme),
	    T(test_rfc4475_unksm2_rejected_by_to_from_contact),
	    T(test_rfc4475_bext01_parses_unknown_extensions),
	    T(test_rfc4475_invut_parses_unknown_content_type),
	    T(test_rfc4475_regaut01_parses_unknown_auth_scheme),
	    T(test_rfc4475_multi01_rejected_duplicate_single_headers),
	    T(test_rfc4475_mcl01_rejected_two_content_lengths),
	    T(test_rfc4475_bcast_parses),
	    T(test_rfc4475_zeromf_parses_max_forwards_zero),
	    T(test_rfc4475_cparam01_param_belongs_to_header),
	    T(test_rfc4475_cparam02_param_belongs_to_uri),
	    T(test_rfc4475_regescrt_parses_escaped_header),
	    T(test_rfc4475_sdp01_parses_unacceptable_accept),
	    T(test_rfc4475_inv2543_parses_as_datagram),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
