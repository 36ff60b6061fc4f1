/*
 * Unit tests of the SIP message parser (src/sip/msg.h): framing, header
 * splitting, name recognition, lazy accessors and limits. Every buffer is
 * malloc'd at its exact size so ASan catches any read past the end.
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

static void check_str(struct str s, const char *want, const char *file, int line)
{
	if (!str_eq_cstr(s, want)) {
		print_error("%s:%d: got '%.*s' want '%s'\n", file, line, STR_FMT(s), want);
		_fail(file, line);
	}
}
#define ASSERT_STR(s, w) check_str((s), (w), __FILE__, __LINE__)

/* Parse a copy of s (len bytes) held in an exact-size heap buffer. */
static char *copy;
static int parse_n(const char *s, size_t len, bool stream)
{
	free(copy);
	copy = malloc(len ? len : 1);
	assert_non_null(copy);
	memcpy(copy, s, len);
	return sip_msg_parse(&msg, copy, len, stream);
}
static int parse(const char *s)
{
	return parse_n(s, strlen(s), false);
}

static int teardown(void **state)
{
	(void)state;
	free(copy);
	copy = NULL;
	return 0;
}

#define HDRS                                                                                       \
	"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds\r\n"                              \
	"From: Alice <sip:alice@example.com>;tag=1928301774\r\n"                                   \
	"To: <sip:bob@example.com>\r\n"                                                            \
	"Call-ID: a84b4c76e66710@pc33.example.com\r\n"

static const char REGISTER[] =
    "REGISTER sip:example.com SIP/2.0\r\n" HDRS "CSeq: 314159 REGISTER\r\n"
    "Max-Forwards: 70\r\n"
    "Contact: <sip:alice@192.0.2.1:5060;transport=tcp>;expires=3600;reg-id=1;"
    "+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\";q=0.7\r\n"
    "Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"abc\", "
    "uri=\"sip:example.com\", response=\"0123456789abcdef0123456789abcdef\"\r\n"
    "Expires: 7200\r\n"
    "Content-Length: 5\r\n\r\nhello";

/* ---- start line ---- */

/* The memoised views (From, To, Request-URI, one Contact) answer for the
 * message parsed last, never for the one before it in the same struct. */
static void test_sip_msg_memos_are_reset_by_the_next_parse(void **state)
{
	static const char other[] = "OPTIONS sip:carol@example.org SIP/2.0\r\n"
				    "Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKx\r\n"
				    "From: <sip:dave@example.org>;tag=9\r\n"
				    "To: Carol <sip:carol@example.org>;tag=7\r\n"
				    "Call-ID: c2\r\nCSeq: 2 OPTIONS\r\n"
				    "Contact: <sip:dave@192.0.2.9>;expires=30\r\n"
				    "Content-Length: 0\r\n\r\n";
	struct sip_nameaddr na;
	struct sip_uri u;
	struct sip_contact c, c2;
	struct sip_hdr_iter it;
	struct str v;

	(void)state;
	assert_int_equal(parse(REGISTER), SIP_E_OK);
	assert_int_equal(sip_msg_to(&msg, &na), 0);
	ASSERT_STR(na.uri.user, "bob");
	assert_int_equal(sip_msg_from(&msg, &na), 0);
	ASSERT_STR(na.tag, "1928301774");
	assert_int_equal(sip_msg_ruri(&msg, &u), 0);
	ASSERT_STR(u.host, "example.com");
	sip_hdr_iter_init(&it, &msg, SIP_H_CONTACT);
	assert_int_equal(sip_hdr_iter_next(&it, &v), 1);
	assert_int_equal(sip_msg_contact(&msg, v, &c), 0);
	assert_int_equal(c.reg_id, 1);
	assert_int_equal(sip_msg_contact(&msg, v, &c2), 0); /* from the memo: the same */
	assert_memory_equal(&c, &c2, sizeof(c));
	/* a different value is parsed, not taken from the memo */
	assert_int_equal(sip_msg_contact(&msg, STR_LIT("<sip:x@192.0.2.5>;expires=5"), &c2), 0);
	assert_int_equal(c2.expires, 5);
	assert_int_equal(sip_msg_contact(&msg, STR_LIT("<bad"), &c2), -1);
	assert_int_equal(sip_msg_contact(&msg, STR_LIT("<bad"), &c2), -1);

	assert_int_equal(parse(other), SIP_E_OK);
	assert_int_equal(sip_msg_to(&msg, &na), 0);
	ASSERT_STR(na.uri.user, "carol");
	ASSERT_STR(na.tag, "7");
	assert_int_equal(sip_msg_from(&msg, &na), 0);
	ASSERT_STR(na.uri.user, "dave");
	assert_int_equal(sip_msg_ruri(&msg, &u), 0);
	ASSERT_STR(u.host, "example.org");
	sip_hdr_iter_init(&it, &msg, SIP_H_CONTACT);
	assert_int_equal(sip_hdr_iter_next(&it, &v), 1);
	assert_int_equal(sip_msg_contact(&msg, v, &c), 0);
	assert_int_equal(c.expires, 30);
	assert_false(c.has_reg_id);

	/* a malformed To stays malformed on every call */
	assert_int_equal(parse("OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKy\r\n"
			       "From: <sip:a@b>;tag=1\r\nTo: <sip:\r\nCall-ID: c\r\n"
			       "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"),
			 SIP_E_OK);
	assert_int_equal(sip_msg_to(&msg, &na), -1);
	assert_int_equal(sip_msg_to(&msg, &na), -1);
}

static void test_sip_msg_parses_request_line(void **state)
{
	assert_int_equal(parse(REGISTER), 0);
	assert_true(msg.is_request);
	ASSERT_STR(msg.method, "REGISTER");
	assert_int_equal(msg.method_id, SIP_M_REGISTER);
	ASSERT_STR(msg.ruri, "sip:example.com");
	ASSERT_STR(msg.version, "SIP/2.0");
	ASSERT_STR(msg.body, "hello");
	assert_int_equal(msg.len, strlen(REGISTER));
}

static void test_sip_msg_accepts_unknown_method_and_lowercase_version(void **state)
{
	assert_int_equal(parse("FOO sip:a@b sip/2.0\r\n" HDRS "CSeq: 1 FOO\r\n\r\n"), 0);
	assert_int_equal(msg.method_id, SIP_M_OTHER);
	/* methods are case-sensitive: "invite" is not INVITE */
	assert_int_equal(parse("invite sip:a@b SIP/2.0\r\n" HDRS "CSeq: 1 invite\r\n\r\n"), 0);
	assert_int_equal(msg.method_id, SIP_M_OTHER);
}

static void test_sip_msg_rejects_bad_request_lines(void **state)
{
	assert_int_equal(parse("INVITE sip:a@b SIP/2.0 \r\n" HDRS "CSeq: 1 INVITE\r\n\r\n"),
			 SIP_E_START_LINE);
	assert_int_equal(parse("INVITE  sip:a@b SIP/2.0\r\n" HDRS "CSeq: 1 INVITE\r\n\r\n"),
			 SIP_E_START_LINE);
	assert_int_equal(parse("INVITE sip:a@b\r\n" HDRS "CSeq: 1 INVITE\r\n\r\n"),
			 SIP_E_START_LINE);
	assert_int_equal(parse("INV<TE sip:a@b SIP/2.0\r\n" HDRS "CSeq: 1 INV<TE\r\n\r\n"),
			 SIP_E_START_LINE);
	assert_int_equal(parse("INVITE sip:a@b HTTP/1.1\r\n" HDRS "CSeq: 1 INVITE\r\n\r\n"),
			 SIP_E_START_LINE);
	assert_int_equal(parse("INVITE sip:a@b SIP/3.0\r\n" HDRS "CSeq: 1 INVITE\r\n\r\n"),
			 SIP_E_VERSION);
	assert_int_equal(parse(" INVITE sip:a@b SIP/2.0\r\n\r\n"), SIP_E_START_LINE);
}

static void test_sip_msg_parses_status_line(void **state)
{
	assert_int_equal(parse("SIP/2.0 180 Ringing\r\n" HDRS "CSeq: 1 INVITE\r\n\r\n"), 0);
	assert_false(msg.is_request);
	assert_int_equal(msg.status, 180);
	ASSERT_STR(msg.reason, "Ringing");
	assert_int_equal(parse("SIP/2.0 99 Low\r\n" HDRS "CSeq: 1 INVITE\r\n\r\n"),
			 SIP_E_START_LINE);
	assert_int_equal(parse("SIP/2.0 1000 High\r\n" HDRS "CSeq: 1 INVITE\r\n\r\n"),
			 SIP_E_START_LINE);
	assert_int_equal(parse("SIP/2.0 20x OK\r\n" HDRS "CSeq: 1 INVITE\r\n\r\n"),
			 SIP_E_START_LINE);
	assert_int_equal(parse("SIP/2.1 200 OK\r\n" HDRS "CSeq: 1 INVITE\r\n\r\n"), SIP_E_VERSION);
	/* a response's CSeq method need not match anything */
	assert_int_equal(parse("SIP/2.0 200 OK\r\n" HDRS "CSeq: 1 BYE\r\n\r\n"), 0);
}

static void test_sip_msg_skips_leading_crlf_and_accepts_bare_lf(void **state)
{
	const char *m = "\r\n\r\nOPTIONS sip:a@b SIP/2.0\n"
			"Via: SIP/2.0/UDP h;branch=z9hG4bK1\n"
			"From: <sip:a@b>;tag=1\nTo: <sip:a@b>\nCall-ID: x\nCSeq: 1 OPTIONS\n\nbody";

	assert_int_equal(parse(m), 0);
	assert_ptr_equal(msg.buf, copy + 4);
	assert_int_equal(msg.len, strlen(m) - 4);
	ASSERT_STR(msg.body, "body");
	ASSERT_STR(sip_msg_call_id(&msg), "x");
}

/* ---- header names ---- */

static void test_sip_msg_maps_compact_forms(void **state)
{
	static const struct {
		const char *n;
		enum sip_hdr id;
	} c[] = {
	    {"v", SIP_H_VIA},	       {"f", SIP_H_FROM},
	    {"t", SIP_H_TO},	       {"i", SIP_H_CALL_ID},
	    {"m", SIP_H_CONTACT},      {"l", SIP_H_CONTENT_LENGTH},
	    {"c", SIP_H_CONTENT_TYPE}, {"e", SIP_H_CONTENT_ENCODING},
	    {"k", SIP_H_SUPPORTED},    {"s", SIP_H_SUBJECT},
	    {"o", SIP_H_EVENT},	       {"r", SIP_H_REFER_TO},
	    {"u", SIP_H_OTHER},	       {"x", SIP_H_OTHER},
	};
	char m[512];

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		const struct sip_header *h;
		snprintf(m, sizeof(m),
			 "OPTIONS sip:a@b SIP/2.0\r\nV: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
			 "F: <sip:a@b>;tag=1\r\nT: <sip:a@b>\r\nI: id\r\nCSeq: 1 OPTIONS\r\n%s : "
			 "0\r\n\r\n",
			 c[i].n);
		if (c[i].id == SIP_H_VIA || c[i].id == SIP_H_FROM || c[i].id == SIP_H_TO ||
		    c[i].id == SIP_H_CALL_ID) {
			/* already present in compact form: a second one would be a duplicate */
			assert_int_equal(parse(m),
					 c[i].id == SIP_H_VIA ? SIP_E_OK : SIP_E_BAD_VALUE);
			h = sip_msg_header(&msg, c[i].id);
			assert_non_null(h);
			assert_int_equal(h->name.len, 1);
			assert_true((h->name.p[0] | 0x20) == c[i].n[0]);
			continue;
		}
		assert_int_equal(parse(m), 0);
		h = &msg.hdrs[msg.n_hdrs - 1];
		assert_int_equal(h->id, c[i].id);
		ASSERT_STR(h->name, c[i].n);
		if (c[i].id != SIP_H_OTHER)
			assert_ptr_equal(sip_msg_header(&msg, c[i].id) != NULL, 1);
	}
	assert_int_equal(sip_msg_header(&msg, SIP_H_VIA)->id, SIP_H_VIA);
	ASSERT_STR(sip_msg_call_id(&msg), "id");
}

static void test_sip_msg_recognises_long_names_case_insensitively(void **state)
{
	static const struct {
		const char *n;
		enum sip_hdr id;
	} c[] = {
	    {"cAlL-iD", SIP_H_CALL_ID},
	    {"CONTENT-LENGTH", SIP_H_CONTENT_LENGTH},
	    {"www-authenticate", SIP_H_WWW_AUTHENTICATE},
	    {"Proxy-Authentication-Info", SIP_H_PROXY_AUTHENTICATION_INFO},
	    {"P-Asserted-Identity", SIP_H_P_ASSERTED_IDENTITY},
	    {"Proxy-Authorization", SIP_H_PROXY_AUTHORIZATION},
	    {"Authentication-Info", SIP_H_AUTHENTICATION_INFO},
	    {"Record-Route", SIP_H_RECORD_ROUTE},
	    {"Min-Expires", SIP_H_MIN_EXPIRES},
	    {"Retry-After", SIP_H_RETRY_AFTER},
	    {"Unsupported", SIP_H_UNSUPPORTED},
	    {"User-Agent", SIP_H_USER_AGENT},
	    {"Refer-To", SIP_H_REFER_TO},
	    {"Path", SIP_H_PATH},
	    {"Date", SIP_H_DATE},
	    {"Allow", SIP_H_ALLOW},
	    {"Server", SIP_H_SERVER},
	    {"Accept", SIP_H_ACCEPT},
	    {"Content-Encoding", SIP_H_CONTENT_ENCODING},
	    {"Proxy-Require", SIP_H_PROXY_REQUIRE},
	    {"Proxy-Authenticate", SIP_H_PROXY_AUTHENTICATE},
	    {"Vias", SIP_H_OTHER},
	    {"Call-IDs", SIP_H_OTHER},
	    {"X-Call-ID", SIP_H_OTHER},
	};
	char m[512];

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		snprintf(m, sizeof(m),
			 "OPTIONS sip:a@b SIP/2.0\r\n" HDRS "CSeq: 1 OPTIONS\r\n%s:\t0\r\n\r\n",
			 c[i].n);
		if (c[i].id == SIP_H_CALL_ID || c[i].id == SIP_H_CONTENT_LENGTH)
			continue; /* would duplicate */
		assert_int_equal(parse(m), 0);
		assert_int_equal(msg.hdrs[msg.n_hdrs - 1].id, c[i].id);
		ASSERT_STR(msg.hdrs[msg.n_hdrs - 1].value, "0");
	}
	assert_int_equal(parse("OPTIONS sip:a@b SIP/2.0\r\nvIa: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
			       "fRoM: <sip:a@b>;tag=1\r\nTO: <sip:a@b>\r\ncAlL-iD: x\r\n"
			       "cseq: 1 OPTIONS\r\nCONTENT-LENGTH: 0\r\n\r\n"),
			 0);
	assert_true(msg.has_content_length);
}

static void test_sip_msg_rejects_malformed_header_lines(void **state)
{
	assert_int_equal(
	    parse("OPTIONS sip:a@b SIP/2.0\r\n" HDRS "CSeq: 1 OPTIONS\r\nNoColon\r\n\r\n"),
	    SIP_E_HEADER);
	assert_int_equal(parse("OPTIONS sip:a@b SIP/2.0\r\n continued\r\n" HDRS "\r\n"),
			 SIP_E_HEADER);
	assert_int_equal(parse("OPTIONS sip:a@b SIP/2.0\r\n" HDRS "CSeq: 1 OPTIONS\r\n: x\r\n\r\n"),
			 SIP_E_HEADER);
	assert_int_equal(
	    parse("OPTIONS sip:a@b SIP/2.0\r\n" HDRS "CSeq: 1 OPTIONS\r\nA B: x\r\n\r\n"),
	    SIP_E_HEADER);
}

static void test_sip_msg_folds_continuation_lines(void **state)
{
	uint32_t n;
	struct str m;
	struct sip_nameaddr na;

	assert_int_equal(parse("OPTIONS sip:a@b SIP/2.0\r\n" HDRS "CSeq: 7\r\n\t OPTIONS\r\n"
			       "Subject: first\r\n  second\r\n\r\n"),
			 0);
	assert_int_equal(sip_msg_cseq(&msg, &n, &m), 0);
	assert_int_equal(n, 7);
	ASSERT_STR(m, "OPTIONS");
	ASSERT_STR(sip_msg_header(&msg, SIP_H_SUBJECT)->value, "first\r\n  second");
	assert_int_equal(
	    parse("OPTIONS sip:a@b SIP/2.0\r\n"
		  "Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom:\r\n <sip:a@b>\r\n ;tag=9\r\n"
		  "To: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n"),
	    0);
	assert_int_equal(sip_msg_from(&msg, &na), 0);
	ASSERT_STR(na.tag, "9");
}

static void test_sip_msg_header_lookup_and_next(void **state)
{
	const struct sip_header *h;

	assert_int_equal(parse("OPTIONS sip:a@b SIP/2.0\r\n" HDRS "CSeq: 1 OPTIONS\r\n"
			       "Via: SIP/2.0/TCP second;branch=z9hG4bK2\r\nX-Foo: bar\r\n\r\n"),
			 0);
	h = sip_msg_header(&msg, SIP_H_VIA);
	assert_non_null(h);
	h = sip_msg_next_header(&msg, h);
	assert_non_null(h);
	ASSERT_STR(h->value, "SIP/2.0/TCP second;branch=z9hG4bK2");
	assert_null(sip_msg_next_header(&msg, h));
	assert_null(sip_msg_header(&msg, SIP_H_EXPIRES));
	h = sip_msg_header_by_name(&msg, "x-foo");
	assert_non_null(h);
	ASSERT_STR(h->value, "bar");
	assert_null(sip_msg_header_by_name(&msg, "x-bar"));
}

/* ---- mandatory headers and CSeq ---- */

static void test_sip_msg_requires_mandatory_headers(void **state)
{
	static const char *omit[] = {"Via:", "From:", "To:", "Call-ID:"};
	char m[512];

	for (size_t i = 0; i < 4; i++) {
		size_t o = 0;
		const char *lines[] = {"Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\n",
				       "From: <sip:a@b>;tag=1\r\n", "To: <sip:a@b>\r\n",
				       "Call-ID: x\r\n"};
		o += (size_t)snprintf(m + o, sizeof(m) - o, "OPTIONS sip:a@b SIP/2.0\r\n");
		for (size_t j = 0; j < 4; j++)
			if (strncmp(lines[j], omit[i], strlen(omit[i])) != 0)
				o += (size_t)snprintf(m + o, sizeof(m) - o, "%s", lines[j]);
		snprintf(m + o, sizeof(m) - o, "CSeq: 1 OPTIONS\r\n\r\n");
		assert_int_equal(parse(m), SIP_E_MISSING);
	}
	assert_int_equal(parse("OPTIONS sip:a@b SIP/2.0\r\n" HDRS "\r\n"), SIP_E_MISSING);
	assert_int_equal(parse("SIP/2.0 200 OK\r\n" HDRS "\r\n"), SIP_E_MISSING);
	/* Max-Forwards is not mandatory for the parser */
	assert_int_equal(parse("OPTIONS sip:a@b SIP/2.0\r\n" HDRS "CSeq: 1 OPTIONS\r\n\r\n"), 0);
}

static void test_sip_msg_rejects_cseq_mismatch_and_bad_cseq(void **state)
{
	uint32_t n;
	struct str m;

	assert_int_equal(parse("OPTIONS sip:a@b SIP/2.0\r\n" HDRS "CSeq: 1 INVITE\r\n\r\n"),
			 SIP_E_BAD_VALUE);
	assert_int_equal(parse("OPTIONS sip:a@b SIP/2.0\r\n" HDRS "CSeq: 1 options\r\n\r\n"),
			 SIP_E_BAD_VALUE);
	assert_int_equal(parse("OPTIONS sip:a@b SIP/2.0\r\n" HDRS "CSeq: OPTIONS\r\n\r\n"),
			 SIP_E_BAD_VALUE);
	assert_int_equal(parse("OPTIONS sip:a@b SIP/2.0\r\n" HDRS "CSeq: 1OPTIONS\r\n\r\n"),
			 SIP_E_BAD_VALUE);
	assert_int_equal(parse("OPTIONS sip:a@b SIP/2.0\r\n" HDRS "CSeq: -1 OPTIONS\r\n\r\n"),
			 SIP_E_BAD_VALUE);
	assert_int_equal(
	    parse("OPTIONS sip:a@b SIP/2.0\r\n" HDRS "CSeq: 2147483648 OPTIONS\r\n\r\n"),
	    SIP_E_BAD_VALUE);
	assert_int_equal(parse("OPTIONS sip:a@b SIP/2.0\r\n" HDRS "CSeq: 1 OPT<ONS\r\n\r\n"),
			 SIP_E_BAD_VALUE);
	assert_int_equal(
	    parse("OPTIONS sip:a@b SIP/2.0\r\n" HDRS "CSeq: 2147483647 OPTIONS\r\n\r\n"), 0);
	assert_int_equal(sip_msg_cseq(&msg, &n, &m), 0);
	assert_int_equal(n, 2147483647u);
	/* duplicated single-valued header fields */
	assert_int_equal(parse("OPTIONS sip:a@b SIP/2.0\r\n" HDRS "CSeq: 1 OPTIONS\r\n"
			       "To: <sip:c@d>\r\n\r\n"),
			 SIP_E_BAD_VALUE);
	assert_int_equal(
	    parse("OPTIONS sip:a@b SIP/2.0\r\n" HDRS "CSeq: 1 OPTIONS\r\ni: y\r\n\r\n"),
	    SIP_E_BAD_VALUE);
}

static void test_sip_msg_parse_is_lazy_about_from(void **state)
{
	struct sip_nameaddr na;

	/* sip_msg_parse does not parse From: the accessor reports it */
	assert_int_equal(parse("OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
			       "From: \"unterminated <sip:a@b>\r\nTo: <sip:a@b>\r\nCall-ID: x\r\n"
			       "CSeq: 1 OPTIONS\r\n\r\n"),
			 0);
	assert_int_equal(sip_msg_from(&msg, &na), -1);
}

/* ---- Content-Length and body ---- */

static void test_sip_msg_datagram_content_length_rules(void **state)
{
	const char *base = "OPTIONS sip:a@b SIP/2.0\r\n" HDRS "CSeq: 1 OPTIONS\r\n";
	char m[512];

	snprintf(m, sizeof(m), "%sContent-Length: 3\r\n\r\nabcdef", base);
	assert_int_equal(parse(m), 0); /* smaller: truncate (RFC 3261 §18.3) */
	ASSERT_STR(msg.body, "abc");
	assert_int_equal(msg.len, strlen(m) - 3);
	assert_int_equal(msg.content_length, 3);
	snprintf(m, sizeof(m), "%sContent-Length: 7\r\n\r\nabcdef", base);
	assert_int_equal(parse(m), SIP_E_CLEN);
	snprintf(m, sizeof(m), "%sContent-Length: x\r\n\r\n", base);
	assert_int_equal(parse(m), SIP_E_CLEN);
	snprintf(m, sizeof(m), "%sContent-Length: 1 2\r\n\r\nab", base);
	assert_int_equal(parse(m), SIP_E_CLEN);
	snprintf(m, sizeof(m), "%sContent-Length: 99999999999999999999999\r\n\r\n", base);
	assert_int_equal(parse(m), SIP_E_CLEN);
	snprintf(m, sizeof(m), "%sContent-Length: 0\r\nl: 0\r\n\r\n", base);
	assert_int_equal(parse(m), SIP_E_CLEN);
	snprintf(m, sizeof(m), "%s\r\nrest", base); /* absent: the rest of the datagram */
	assert_int_equal(parse(m), 0);
	assert_false(msg.has_content_length);
	ASSERT_STR(msg.body, "rest");
}

static void test_sip_msg_stream_content_length_is_mandatory_and_exact(void **state)
{
	const char *base = "OPTIONS sip:a@b SIP/2.0\r\n" HDRS "CSeq: 1 OPTIONS\r\n";
	char m[512];

	snprintf(m, sizeof(m), "%s\r\n", base);
	assert_int_equal(parse_n(m, strlen(m), true), SIP_E_CLEN);
	snprintf(m, sizeof(m), "%sl: 2\r\n\r\nabc", base);
	assert_int_equal(parse_n(m, strlen(m), true), SIP_E_CLEN);
	snprintf(m, sizeof(m), "%sl: 3\r\n\r\nabc", base);
	assert_int_equal(parse_n(m, strlen(m), true), 0);
	ASSERT_STR(msg.body, "abc");
}

static void test_sip_msg_incomplete_header_section(void **state)
{
	assert_int_equal(parse("OPTIONS sip:a@b SIP/2.0\r\n" HDRS "CSeq: 1 OPTIONS\r\n"),
			 SIP_E_INCOMPLETE);
	assert_int_equal(parse("OPTIONS sip:a@b SIP/2.0\r\n" HDRS "CSeq: 1 OPTIONS"),
			 SIP_E_INCOMPLETE);
	assert_int_equal(parse(""), SIP_E_INCOMPLETE);
	assert_int_equal(parse("\r\n\r\n"), SIP_E_INCOMPLETE);
}

/* ---- NUL bytes and limits ---- */

static void test_sip_msg_rejects_nul_in_header_section(void **state)
{
	static const char a[] =
	    "OPTIONS sip:a@b SIP/2.0\r\n" HDRS "CSeq: 1 OPTIONS\r\nX-A: a\0b\r\n\r\n";
	static const char b[] =
	    "OPTIONS sip:a@b SIP/2.0\r\n" HDRS "CSeq: 1 OPTIONS\r\nX\0: ab\r\n\r\n";
	static const char c[] = "OPTIONS sip:a\0@b SIP/2.0\r\n" HDRS "CSeq: 1 OPTIONS\r\n\r\n";
	/* a NUL as a quoted-pair is legal (RFC 3261 §25.1, RFC 4475 intmeth) */
	static const char d[] = "OPTIONS sip:a@b SIP/2.0\r\n" HDRS "CSeq: 1 OPTIONS\r\n"
				"X-A: \"a\\\0b\"\r\n\r\nbody\0with\0nuls";

	assert_int_equal(parse_n(a, sizeof(a) - 1, false), SIP_E_NUL);
	assert_int_equal(parse_n(b, sizeof(b) - 1, false), SIP_E_NUL);
	assert_int_equal(parse_n(c, sizeof(c) - 1, false), SIP_E_NUL);
	assert_int_equal(parse_n(d, sizeof(d) - 1, false), 0);
	assert_int_equal(msg.body.len, 14);
}

static void test_sip_msg_rejects_too_long_line(void **state)
{
	size_t n = SIP_MAX_LINE + 100;
	char *m = malloc(n + 256);
	size_t o;

	o = (size_t)sprintf(m, "OPTIONS sip:a@b SIP/2.0\r\n" HDRS "CSeq: 1 OPTIONS\r\nX-Long: ");
	memset(m + o, 'a', n);
	o += n;
	memcpy(m + o, "\r\n\r\n", 4);
	assert_int_equal(parse_n(m, o + 4, false), SIP_E_TOO_LONG);
	/* a long start line too */
	o = (size_t)sprintf(m, "OPTIONS sip:");
	memset(m + o, 'a', n);
	o += n;
	assert_int_equal(parse_n(m, o, false), SIP_E_TOO_LONG);
	free(m);
}

static void test_sip_msg_rejects_folded_line_over_limit(void **state)
{
	size_t cap = 3 * SIP_MAX_LINE, o;
	char *m = malloc(cap + 512);

	o = (size_t)sprintf(m, "OPTIONS sip:a@b SIP/2.0\r\n" HDRS "CSeq: 1 OPTIONS\r\nX-Fold: a");
	while (o < cap) {
		memcpy(m + o, "\r\n bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 47);
		o += 47;
	}
	memcpy(m + o, "\r\n\r\n", 4);
	assert_int_equal(parse_n(m, o + 4, false), SIP_E_TOO_LONG);
	free(m);
}

static void test_sip_msg_rejects_one_mib_header(void **state)
{
	size_t n = 1 << 20, o;
	char *m = malloc(n + 512);

	o = (size_t)sprintf(m, "OPTIONS sip:a@b SIP/2.0\r\n" HDRS "CSeq: 1 OPTIONS\r\nX-Big: ");
	memset(m + o, 'z', n);
	o += n;
	memcpy(m + o, "\r\n\r\n", 4);
	assert_int_equal(parse_n(m, o + 4, false), SIP_E_TOO_LONG);
	assert_int_equal(parse_n(m, o + 4, true), SIP_E_TOO_LONG);
	free(m);
}

static void test_sip_msg_rejects_ten_thousand_headers(void **state)
{
	size_t o, cap = 10000 * 16 + 512;
	char *m = malloc(cap);

	o = (size_t)sprintf(m, "OPTIONS sip:a@b SIP/2.0\r\n" HDRS "CSeq: 1 OPTIONS\r\n");
	for (int i = 0; i < 10000; i++)
		o += (size_t)sprintf(m + o, "X-H%05d: v\r\n", i);
	memcpy(m + o, "\r\n", 2);
	assert_int_equal(parse_n(m, o + 2, false), SIP_E_TOO_MANY);
	assert_int_equal(msg.n_hdrs, SIP_MAX_HEADERS);
	free(m);
}

static void test_sip_msg_accepts_exactly_max_headers(void **state)
{
	size_t o, cap = SIP_MAX_HEADERS * 16 + 512;
	char *m = malloc(cap);

	o = (size_t)sprintf(m, "OPTIONS sip:a@b SIP/2.0\r\n" HDRS "CSeq: 1 OPTIONS\r\n");
	for (int i = 0; i < SIP_MAX_HEADERS - 5; i++)
		o += (size_t)sprintf(m + o, "X-H%05d: v\r\n", i);
	memcpy(m + o, "\r\n", 2);
	assert_int_equal(parse_n(m, o + 2, false), 0);
	assert_int_equal(msg.n_hdrs, SIP_MAX_HEADERS);
	free(m);
}

/* Every prefix of a valid message: no crash, no overread, and an error
 * until the message is complete. */
static void test_sip_msg_truncated_at_every_offset_never_crashes(void **state)
{
	size_t n = strlen(REGISTER),
	       hdr_end = (size_t)(strstr(REGISTER, "\r\n\r\n") - REGISTER) + 4;

	for (size_t i = 0; i <= n; i++) {
		for (int s = 0; s < 2; s++) {
			int rc = parse_n(REGISTER, i, s);
			if (i < hdr_end)
				assert_true(rc < 0);
			if (i == n)
				assert_int_equal(rc, 0);
			/* accessors must be safe whatever the result */
			struct sip_nameaddr na;
			struct sip_via v;
			struct sip_hdr_iter it;
			struct str val;
			uint32_t u;
			sip_msg_from(&msg, &na);
			sip_msg_to(&msg, &na);
			sip_msg_top_via(&msg, &v);
			sip_msg_expires(&msg, &u);
			sip_msg_max_forwards(&msg, &u);
			sip_msg_cseq(&msg, &u, &val);
			sip_hdr_iter_init(&it, &msg, SIP_H_CONTACT);
			while (sip_hdr_iter_next(&it, &val) > 0) {
				struct sip_contact c;
				sip_contact_parse(val, &c);
			}
			size_t skip;
			long f = sip_msg_frame(copy, i, 65536, &skip);
			assert_true(f == SIP_E_INCOMPLETE || f == (long)n);
		}
	}
}

/* ---- stream framing ---- */

static void test_sip_msg_frame_finds_message_length(void **state)
{
	size_t skip = 99, n = strlen(REGISTER);
	char *two = malloc(2 * n + 4);

	assert_int_equal(sip_msg_frame(REGISTER, n, 65536, &skip), (long)n);
	assert_int_equal(skip, 0);
	memcpy(two, "\r\n\r\n", 4);
	memcpy(two + 4, REGISTER, n);
	memcpy(two + 4 + n, REGISTER, n);
	assert_int_equal(sip_msg_frame(two, 2 * n + 4, 65536, &skip), (long)n);
	assert_int_equal(skip, 4);
	assert_int_equal(sip_msg_parse(&msg, two + skip, n, true), 0);
	ASSERT_STR(msg.body, "hello");
	/* body not yet complete */
	assert_int_equal(sip_msg_frame(REGISTER, n - 1, 65536, &skip), SIP_E_INCOMPLETE);
	/* too large: header section, then Content-Length */
	assert_int_equal(sip_msg_frame(REGISTER, n, 100, &skip), SIP_E_TOO_LONG);
	assert_int_equal(sip_msg_frame(REGISTER, n, n - 1, &skip), SIP_E_TOO_LONG);
	free(two);
}

static void test_sip_msg_frame_handles_crlf_keepalives(void **state)
{
	size_t skip = 0;

	assert_int_equal(sip_msg_frame("\r\n\r\n", 4, 65536, &skip), SIP_E_INCOMPLETE);
	assert_int_equal(skip, 4); /* RFC 5626 ping */
	assert_int_equal(sip_msg_frame("\r\n", 2, 65536, &skip), SIP_E_INCOMPLETE);
	assert_int_equal(skip, 2); /* pong */
	assert_int_equal(sip_msg_frame("", 0, 65536, &skip), SIP_E_INCOMPLETE);
	assert_int_equal(skip, 0);
	assert_int_equal(sip_msg_frame("\r\nOPT", 5, 65536, &skip), SIP_E_INCOMPLETE);
	assert_int_equal(skip, 2);
}

static void test_sip_msg_frame_requires_single_valid_content_length(void **state)
{
	size_t skip;
	const char *none = "OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n";
	const char *two = "OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\nContent-Length: 0\r\n\r\n";
	const char *neg = "OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n";
	const char *fold = "OPTIONS sip:a@b SIP/2.0\r\nContent-Length :\r\n 2\r\n\r\nab";
	const char *lf = "OPTIONS sip:a@b SIP/2.0\nContent-Length: 2\n\nab";

	assert_int_equal(sip_msg_frame(none, strlen(none), 65536, &skip), SIP_E_CLEN);
	assert_int_equal(sip_msg_frame(two, strlen(two), 65536, &skip), SIP_E_CLEN);
	assert_int_equal(sip_msg_frame(neg, strlen(neg), 65536, &skip), SIP_E_CLEN);
	assert_int_equal(sip_msg_frame(fold, strlen(fold), 65536, &skip), (long)strlen(fold));
	assert_int_equal(sip_msg_frame(lf, strlen(lf), 65536, &skip), (long)strlen(lf));
}

/* ---- iteration ---- */

static void test_sip_msg_iterates_values_across_lines_and_commas(void **state)
{
	struct sip_hdr_iter it;
	struct str v;
	struct sip_contact c;

	assert_int_equal(
	    parse("REGISTER sip:a@b SIP/2.0\r\n" HDRS "CSeq: 1 REGISTER\r\n"
		  "Via: SIP/2.0/TCP h2;branch=z9hG4bK2 , SIP/2.0/TLS h3;branch=z9hG4bK3\r\n"
		  "Contact: \"Doe, John\" <sip:j@h>;q=0.5;x=\"a,b\", <sip:k@h?a=b>\r\n"
		  "m: sip:l@h\r\n\r\n"),
	    0);
	sip_hdr_iter_init(&it, &msg, SIP_H_VIA);
	assert_int_equal(sip_hdr_iter_next(&it, &v), 1);
	assert_int_equal(sip_hdr_iter_next(&it, &v), 1);
	ASSERT_STR(v, "SIP/2.0/TCP h2;branch=z9hG4bK2");
	assert_int_equal(sip_hdr_iter_next(&it, &v), 1);
	ASSERT_STR(v, "SIP/2.0/TLS h3;branch=z9hG4bK3");
	assert_int_equal(sip_hdr_iter_next(&it, &v), 0);
	assert_int_equal(sip_hdr_iter_next(&it, &v), 0);

	sip_hdr_iter_init(&it, &msg, SIP_H_CONTACT);
	assert_int_equal(sip_hdr_iter_next(&it, &v), 1);
	assert_int_equal(sip_contact_parse(v, &c), 0);
	ASSERT_STR(c.na.display, "Doe, John");
	ASSERT_STR(c.q, "0.5");
	assert_int_equal(sip_hdr_iter_next(&it, &v), 1);
	ASSERT_STR(v, "<sip:k@h?a=b>");
	assert_int_equal(sip_hdr_iter_next(&it, &v), 1);
	ASSERT_STR(v, "sip:l@h");
	assert_int_equal(sip_hdr_iter_next(&it, &v), 0);
	/* an id with no header */
	sip_hdr_iter_init(&it, &msg, SIP_H_ROUTE);
	assert_int_equal(sip_hdr_iter_next(&it, &v), 0);
}

static void test_sip_msg_iter_rejects_empty_elements_and_open_quotes(void **state)
{
	struct sip_hdr_iter it;
	struct str v;

	assert_int_equal(
	    parse("OPTIONS sip:a@b SIP/2.0\r\n" HDRS "CSeq: 1 OPTIONS\r\n"
		  "Supported:\r\nRequire: a,,b\r\nAccept: \"x, y\r\nAllow: <a,b\r\n\r\n"),
	    0);
	sip_hdr_iter_init(&it, &msg, SIP_H_SUPPORTED); /* empty header: no values */
	assert_int_equal(sip_hdr_iter_next(&it, &v), 0);
	sip_hdr_iter_init(&it, &msg, SIP_H_REQUIRE);
	assert_int_equal(sip_hdr_iter_next(&it, &v), 1);
	assert_int_equal(sip_hdr_iter_next(&it, &v), -1);
	assert_int_equal(sip_hdr_iter_next(&it, &v), 0);
	sip_hdr_iter_init(&it, &msg, SIP_H_ACCEPT);
	assert_int_equal(sip_hdr_iter_next(&it, &v), -1);
	sip_hdr_iter_init(&it, &msg, SIP_H_ALLOW);
	assert_int_equal(sip_hdr_iter_next(&it, &v), -1);
}

/* ---- values ---- */

static void test_sip_uri_parse_sip_forms(void **state)
{
	struct sip_uri u;

	assert_int_equal(
	    sip_uri_parse(str_cstr("sips:alice:secret@example.com:5061;transport=tls;lr"
				   "?subject=hi&priority=urgent"),
			  &u),
	    0);
	ASSERT_STR(u.scheme, "sips");
	ASSERT_STR(u.user, "alice");
	ASSERT_STR(u.password, "secret");
	ASSERT_STR(u.host, "example.com");
	assert_int_equal(u.port, 5061);
	ASSERT_STR(u.params, "transport=tls;lr");
	ASSERT_STR(u.transport, "tls");
	assert_true(u.lr);
	ASSERT_STR(u.headers, "subject=hi&priority=urgent");
	assert_int_equal(sip_uri_parse(str_cstr("SIP:example.com"), &u), 0);
	assert_int_equal(u.user.len, 0);
	assert_int_equal(u.port, 0);
	assert_false(u.lr);
}

static void test_sip_uri_parse_ipv6_hosts(void **state)
{
	struct sip_uri u;

	assert_int_equal(sip_uri_parse(str_cstr("sip:bob@[2001:db8::10]:5070;maddr=[::1]"), &u), 0);
	ASSERT_STR(u.host, "2001:db8::10");
	assert_true(u.host_is_v6);
	assert_int_equal(u.port, 5070);
	assert_int_equal(sip_uri_parse(str_cstr("sip:[::ffff:192.0.2.1]"), &u), 0);
	ASSERT_STR(u.host, "::ffff:192.0.2.1");
	assert_int_equal(sip_uri_parse(str_cstr("sip:[2001:db8::10"), &u), -1);
	assert_int_equal(sip_uri_parse(str_cstr("sip:[]"), &u), -1);
	assert_int_equal(sip_uri_parse(str_cstr("sip:[fe80::1%eth0]"), &u), -1);
}

static void test_sip_uri_parse_rejects_malformed(void **state)
{
	static const char *bad[] = {
	    "",		 "sip:",	"sip:@h",	"sip:a@",     "sip:a b@h",
	    "sip:h:0x",	 "sip:h:65536", "sip:h:123456", "sip:%zz@h",  "sip:%4@h",
	    "sip:h;",	 "sip:h;=x",	"sip:h;a=",	"sip:h?",     "sip:h?a",
	    "sip:h>",	 "<sip:h>",	"1sip:h",	"sip:h\r\n",  "sip:h#x",
	    "sip:a@b@c", ":opaque",	"tel:",		"sip:h;a;;b", "sip:h?a=b&",
	};
	struct sip_uri u;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (sip_uri_parse(str_cstr(bad[i]), &u) != -1)
			fail_msg("accepted '%s'", bad[i]);
	}
}

static void test_sip_uri_parse_tel_and_unknown_are_opaque(void **state)
{
	struct sip_uri u;

	assert_int_equal(sip_uri_parse(str_cstr("tel:+1-201-555-0123;phone-context=x"), &u), 0);
	ASSERT_STR(u.scheme, "tel");
	ASSERT_STR(u.user, "+1-201-555-0123;phone-context=x");
	assert_int_equal(u.host.len, 0);
	assert_int_equal(sip_uri_parse(str_cstr("urn:uuid:1234"), &u), 0);
	ASSERT_STR(u.scheme, "urn");
}

static void test_sip_param_get_finds_params(void **state)
{
	struct str v;
	struct str p = str_cstr("a=1; B = \"x;y\" ;flag;empty=;c=3");

	assert_int_equal(sip_param_get(p, "a", &v), 1);
	ASSERT_STR(v, "1");
	assert_int_equal(sip_param_get(p, "b", &v), 1);
	ASSERT_STR(v, "\"x;y\"");
	assert_int_equal(sip_param_get(p, "FLAG", &v), 1);
	assert_int_equal(v.len, 0);
	assert_int_equal(sip_param_get(p, "empty", &v), 1);
	assert_int_equal(v.len, 0);
	assert_int_equal(sip_param_get(p, "c", &v), 1);
	ASSERT_STR(v, "3");
	assert_int_equal(sip_param_get(p, "y", &v), 0);
	assert_int_equal(sip_param_get(p, "fla", &v), 0);
	assert_int_equal(sip_param_get(STR_NULL, "a", &v), 0);
}

static void test_sip_nameaddr_parse_forms(void **state)
{
	struct sip_nameaddr na;

	assert_int_equal(
	    sip_nameaddr_parse(str_cstr("\"A \\\"B\\\", C\" <sip:a@h;lr>;tag=x;y"), &na), 0);
	ASSERT_STR(na.display, "A \\\"B\\\", C");
	ASSERT_STR(na.uri_str, "sip:a@h;lr");
	assert_true(na.uri.lr);
	ASSERT_STR(na.params, "tag=x;y");
	ASSERT_STR(na.tag, "x");
	assert_int_equal(sip_nameaddr_parse(str_cstr("sip:a@h;tag=z"), &na), 0);
	ASSERT_STR(na.uri_str, "sip:a@h");
	ASSERT_STR(na.tag, "z");
	assert_int_equal(sip_nameaddr_parse(str_cstr("  Bob Smith  <tel:+15551234>  "), &na), 0);
	ASSERT_STR(na.display, "Bob Smith");
	ASSERT_STR(na.uri.scheme, "tel");
	assert_int_equal(sip_nameaddr_parse(str_cstr("<sip:a@h"), &na), -1);
	assert_int_equal(sip_nameaddr_parse(str_cstr("<sip:a@h> x"), &na), -1);
	assert_int_equal(sip_nameaddr_parse(str_cstr("<sip:a@h>;"), &na), -1);
	assert_int_equal(sip_nameaddr_parse(str_cstr("<mailto:a@h>"), &na), -1);
	assert_int_equal(sip_nameaddr_parse(str_cstr("\"x\"sip:a@h"), &na), -1);
	assert_int_equal(sip_nameaddr_parse(str_cstr("sip:a@h,b"), &na), -1);
	assert_int_equal(sip_nameaddr_parse(str_cstr(""), &na), -1);
}

static void test_sip_via_parse_params_and_ipv6(void **state)
{
	struct sip_via v;

	assert_int_equal(
	    sip_via_parse(str_cstr("SIP/2.0/UDP [2001:db8::9]:5060;rport;branch=z9hG4bKa"
				   ";received=2001:db8::2"),
			  &v),
	    0);
	ASSERT_STR(v.transport, "UDP");
	ASSERT_STR(v.host, "2001:db8::9");
	assert_int_equal(v.port, 5060);
	assert_true(v.has_rport);
	assert_int_equal(v.rport.len, 0);
	ASSERT_STR(v.branch, "z9hG4bKa");
	ASSERT_STR(v.received, "2001:db8::2");
	assert_int_equal(
	    sip_via_parse(str_cstr("SIP/2.0/TCP h.example.com : 5070 ;rport=4321"), &v), 0);
	assert_int_equal(v.port, 5070);
	ASSERT_STR(v.rport, "4321");
	assert_int_equal(v.branch.len, 0);
	assert_int_equal(
	    sip_via_parse(str_cstr("SIP/2.0/WSS df7jal23ls0d.invalid;received=[::1]"), &v), 0);
	ASSERT_STR(v.received, "[::1]");
	static const char *bad[] = {
	    "SIP/2.0/UDP",	   "SIP/2.0/UDP ",	  "SIP/2.0 UDP h",   "SIP/2.0/UDPh",
	    "SIP/3.0/UDP h",	   "HTTP/2.0/UDP h",	  "SIP/2.0/UDP h;",  "SIP/2.0/UDP h;;a",
	    "SIP/2.0/UDP h:99999", "SIP/2.0/UDP [::1",	  "SIP/2.0/UDP h x", "SIP/2.0/UDP h;a=\"x",
	    "SIP/2.0/UDP h:",	   "SIP/2.0/UDP h;a=b c",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (sip_via_parse(str_cstr(bad[i]), &v) != -1)
			fail_msg("accepted '%s'", bad[i]);
}

static void test_sip_msg_top_via(void **state)
{
	struct sip_via v;

	assert_int_equal(parse(REGISTER), 0);
	assert_int_equal(sip_msg_top_via(&msg, &v), 0);
	ASSERT_STR(v.host, "192.0.2.1");
	assert_int_equal(v.port, 5060);
	ASSERT_STR(v.branch, "z9hG4bK776asdhds");
}

static void test_sip_contact_parse_registration_params(void **state)
{
	struct sip_contact c;
	struct sip_hdr_iter it;
	struct str v;

	assert_int_equal(parse(REGISTER), 0);
	sip_hdr_iter_init(&it, &msg, SIP_H_CONTACT);
	assert_int_equal(sip_hdr_iter_next(&it, &v), 1);
	assert_int_equal(sip_contact_parse(v, &c), 0);
	assert_false(c.is_star);
	ASSERT_STR(c.na.uri.transport, "tcp");
	assert_true(c.has_expires);
	assert_int_equal(c.expires, 3600);
	ASSERT_STR(c.instance, "urn:uuid:00000000-0000-1000-8000-000A95A0E128");
	assert_true(c.has_reg_id);
	assert_int_equal(c.reg_id, 1);
	ASSERT_STR(c.q, "0.7");

	assert_int_equal(sip_contact_parse(str_cstr(" * "), &c), 0);
	assert_true(c.is_star);
	assert_int_equal(c.na.uri_str.len, 0);
	assert_int_equal(sip_contact_parse(str_cstr("<sip:a@h>;expires=99999999999"), &c), 0);
	assert_int_equal(c.expires, UINT32_MAX);
	assert_false(c.has_reg_id);
	assert_int_equal(sip_contact_parse(str_cstr("<sip:a@h>;expires=-1"), &c), -1);
	assert_int_equal(sip_contact_parse(str_cstr("<sip:a@h>;expires=1x"), &c), -1);
	assert_int_equal(sip_contact_parse(str_cstr("<sip:a@h>;reg-id=4294967296"), &c), -1);
	assert_int_equal(sip_contact_parse(str_cstr("<sip:a@h>;+sip.instance=<urn:x>"), &c), -1);
	assert_int_equal(sip_contact_parse(str_cstr("**"), &c), -1);
}

static void test_sip_msg_expires_and_max_forwards(void **state)
{
	const char *base = "OPTIONS sip:a@b SIP/2.0\r\n" HDRS "CSeq: 1 OPTIONS\r\n";
	char m[512];
	uint32_t v;

	snprintf(m, sizeof(m), "%s\r\n", base);
	assert_int_equal(parse(m), 0);
	assert_int_equal(sip_msg_expires(&msg, &v), 1);
	assert_int_equal(sip_msg_max_forwards(&msg, &v), 1);
	snprintf(m, sizeof(m), "%sExpires: 4294967295\r\nMax-Forwards: 255\r\n\r\n", base);
	assert_int_equal(parse(m), 0);
	assert_int_equal(sip_msg_expires(&msg, &v), 0);
	assert_int_equal(v, UINT32_MAX);
	assert_int_equal(sip_msg_max_forwards(&msg, &v), 0);
	assert_int_equal(v, 255);
	snprintf(m, sizeof(m), "%sExpires: 4294967296\r\nMax-Forwards: 256\r\n\r\n", base);
	assert_int_equal(parse(m), 0);
	assert_int_equal(sip_msg_expires(&msg, &v), -1);
	assert_int_equal(sip_msg_max_forwards(&msg, &v), -1);
	snprintf(m, sizeof(m), "%sExpires: -5\r\nMax-Forwards: 7a\r\n\r\n", base);
	assert_int_equal(parse(m), 0);
	assert_int_equal(sip_msg_expires(&msg, &v), -1);
	assert_int_equal(sip_msg_max_forwards(&msg, &v), -1);
	snprintf(m, sizeof(m), "%sExpires:\r\n\r\n", base);
	assert_int_equal(parse(m), 0);
	assert_int_equal(sip_msg_expires(&msg, &v), -1);
}

static void test_sip_msg_from_to_call_id(void **state)
{
	struct sip_nameaddr na;

	assert_int_equal(parse(REGISTER), 0);
	assert_int_equal(sip_msg_from(&msg, &na), 0);
	ASSERT_STR(na.display, "Alice");
	ASSERT_STR(na.tag, "1928301774");
	ASSERT_STR(na.uri.user, "alice");
	assert_int_equal(sip_msg_to(&msg, &na), 0);
	assert_int_equal(na.tag.len, 0);
	ASSERT_STR(sip_msg_call_id(&msg), "a84b4c76e66710@pc33.example.com");
	ASSERT_STR(sip_msg_header(&msg, SIP_H_AUTHORIZATION)->value,
		   "Digest username=\"alice\", realm=\"example.com\", nonce=\"abc\", "
		   "uri=\"sip:example.com\", response=\"0123456789abcdef0123456789abcdef\"");
}

static void test_sip_msg_strerror_names_every_code(void **state)
{
	for (int e = SIP_E_NUL; e <= SIP_E_OK; e++) {
		const char *s = sip_msg_strerror(e);
		assert_non_null(s);
		assert_string_not_equal(s, "unknown error");
	}
	assert_string_equal(sip_msg_strerror(-1000), "unknown error");
}

#define T(f) cmocka_unit_test_teardown(f, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_sip_msg_parses_request_line),
	    T(test_sip_msg_memos_are_reset_by_the_next_parse),
	    T(test_sip_msg_accepts_unknown_method_and_lowercase_version),
	    T(test_sip_msg_rejects_bad_request_lines),
	    T(test_sip_msg_parses_status_line),
	    T(test_sip_msg_skips_leading_crlf_and_accepts_bare_lf),
	    T(test_sip_msg_maps_compact_forms),
	    T(test_sip_msg_recognises_long_names_case_insensitively),
	    T(test_sip_msg_rejects_malformed_header_lines),
	    T(test_sip_msg_folds_continuation_lines),
	    T(test_sip_msg_header_lookup_and_next),
	    T(test_sip_msg_requires_mandatory_headers),
	    T(test_sip_msg_rejects_cseq_mismatch_and_bad_cseq),
	    T(test_sip_msg_parse_is_lazy_about_from),
	    T(test_sip_msg_datagram_content_length_rules),
	    T(test_sip_msg_stream_content_length_is_mandatory_and_exact),
	    T(test_sip_msg_incomplete_header_section),
	    T(test_sip_msg_rejects_nul_in_header_section),
	    T(test_sip_msg_rejects_too_long_line),
	    T(test_sip_msg_rejects_folded_line_over_limit),
	    T(test_sip_msg_rejects_one_mib_header),
	    T(test_sip_msg_rejects_ten_thousand_headers),
	    T(test_sip_msg_accepts_exactly_max_headers),
	    T(test_sip_msg_truncated_at_every_offset_never_crashes),
	    T(test_sip_msg_frame_finds_message_length),
	    T(test_sip_msg_frame_handles_crlf_keepalives),
	    T(test_sip_msg_frame_requires_single_valid_content_length),
	    T(test_sip_msg_iterates_values_across_lines_and_commas),
	    T(test_sip_msg_iter_rejects_empty_elements_and_open_quotes),
	    T(test_sip_uri_parse_sip_forms),
	    T(test_sip_uri_parse_ipv6_hosts),
	    T(test_sip_uri_parse_rejects_malformed),
	    T(test_sip_uri_parse_tel_and_unknown_are_opaque),
	    T(test_sip_param_get_finds_params),
	    T(test_sip_nameaddr_parse_forms),
	    T(test_sip_via_parse_params_and_ipv6),
	    T(test_sip_msg_top_via),
	    T(test_sip_contact_parse_registration_params),
	    T(test_sip_msg_expires_and_max_forwards),
	    T(test_sip_msg_from_to_call_id),
	    T(test_sip_msg_strerror_names_every_code),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
