/*
 * Unit tests for src/core: counted strings, bounded output buffers, the
 * key=value logger (escaping, truncation, one line per event, per-thread
 * context), secret-handling primitives, counters and clocks.
 * Log output is captured by pointing fd 2 at a temporary file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "core/sbuf.h"
#include "core/secmem.h"
#include "core/stats.h"
#include "core/str.h"
#include "core/tbuf.h"
#include "core/tlocal.h"

/* ---- str ---- */

static void test_str_eq_compares_length_and_bytes(void **state)
{
	(void)state;
	assert_true(str_eq(STR_LIT("abc"), STR_LIT("abc")));
	assert_false(str_eq(STR_LIT("abc"), STR_LIT("abd")));
	assert_false(str_eq(STR_LIT("abc"), STR_LIT("ab")));
	assert_false(str_eq(STR_LIT("ABC"), STR_LIT("abc")));
	assert_true(str_eq(STR_NULL, STR_LIT("")));
	assert_true(str_eq_cstr(STR_LIT("x"), "x"));
	assert_false(str_eq_cstr(STR_LIT("x"), "xy"));
	assert_true(str_eq_cstr(STR_NULL, NULL));
	/* embedded NUL counts as a byte */
	assert_false(str_eq(str_make("a\0b", 3), str_make("a\0c", 3)));
	assert_false(str_eq_cstr(str_make("a\0b", 3), "a"));
}

static void test_str_caseeq_ignores_ascii_case_only(void **state)
{
	(void)state;
	assert_true(str_caseeq(STR_LIT("REGISTER"), STR_LIT("register")));
	assert_true(str_caseeq_cstr(STR_LIT("Call-ID"), "call-id"));
	assert_false(str_caseeq(STR_LIT("abc"), STR_LIT("abcd")));
	assert_false(str_caseeq_cstr(STR_LIT("a-b"), "a_b"));
	assert_true(str_caseeq(STR_NULL, STR_NULL));
	/* the C string's end and the counted length must agree exactly */
	assert_false(str_caseeq_cstr(STR_LIT("nonce"), "nonc"));
	assert_false(str_caseeq_cstr(STR_LIT("nonc"), "nonce"));
	assert_false(str_caseeq_cstr(str_make("nc\0x", 4), "nc"));
	assert_false(str_caseeq_cstr(str_make("nc\0", 3), "nc"));
	assert_true(str_caseeq_cstr(STR_NULL, ""));
	assert_false(str_caseeq_cstr(STR_NULL, "a"));
	assert_false(str_caseeq_cstr(STR_LIT("a"), ""));
	/* only ASCII letters fold: '@' (0x40) is not '`' (0x60) */
	assert_false(str_caseeq_cstr(STR_LIT("@"), "`"));
	assert_true(str_caseeq_cstr(STR_LIT("QoP"), "qop"));
}

static void test_str_list_has_matches_whole_members_only(void **state)
{
	(void)state;
	assert_true(str_list_has("users.read,contacts", ',', "contacts", 8));
	assert_true(str_list_has("users.read,contacts", ',', "users.read", 10));
	assert_false(str_list_has("users.read,contacts", ',', "users", 5));	/* a prefix */
	assert_false(str_list_has("users.read,contacts", ',', "contacts,", 9)); /* more */
	assert_false(str_list_has("users.read contacts", ',', "contacts", 8));	/* other sep */
	assert_true(str_list_has("a b", ' ', "b", 1));
	assert_false(str_list_has("", ',', "", 0));
	assert_false(str_list_has("Users.read", ',', "users.read", 10)); /* case counts */
}

static void test_str_hexval_takes_both_cases_and_nothing_else(void **state)
{
	(void)state;
	assert_int_equal(str_hexval('0'), 0);
	assert_int_equal(str_hexval('9'), 9);
	assert_int_equal(str_hexval('a'), 10);
	assert_int_equal(str_hexval('F'), 15);
	assert_int_equal(str_hexval('g'), -1);
	assert_int_equal(str_hexval('G'), -1);
	assert_int_equal(str_hexval('/'), -1); /* '0' - 1 */
	assert_int_equal(str_hexval(':'), -1); /* '9' + 1 */
	assert_int_equal(str_hexval('`'), -1); /* 'a' - 1 */
	assert_int_equal(str_hexval('@'), -1); /* 'A' - 1 */
	assert_int_equal(str_hexval('\0'), -1);
}

/*
 * Regression (fixed in b819055; was str.c str_caseeq): strncasecmp stops at the first NUL,
 * so two counted strings that differ only after a NUL at the same offset
 * compare equal: str_caseeq("a\0x", "a\0y") is true while str_eq is false.
 * Low impact (a literal has no NUL inside its length), but the contract is
 * byte-wise over len.
 */
static void test_str_caseeq_compares_bytes_after_an_embedded_nul(void **state)
{
	(void)state;
	assert_false(str_caseeq(str_make("a\0x", 3), str_make("a\0y", 3)));
}

static void test_str_trim_strips_sp_htab_cr_lf_at_both_ends_only(void **state)
{
	struct str t;

	(void)state;
	t = str_trim(STR_LIT(" \t\r\n a b \r\n\t "));
	assert_true(str_eq_cstr(t, "a b"));
	t = str_trim(STR_LIT(" \t \r\n"));
	assert_int_equal(t.len, 0);
	t = str_trim(STR_NULL);
	assert_int_equal(t.len, 0);
	/* other control characters are content */
	t = str_trim(STR_LIT("\va\v"));
	assert_int_equal(t.len, 3);
}

static void test_str_to_u64_accepts_digits_up_to_max_and_rejects_the_rest(void **state)
{
	uint64_t v = 7;

	(void)state;
	assert_int_equal(str_to_u64(STR_LIT("0"), 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(str_to_u64(STR_LIT("10"), 10, &v), 0);
	assert_int_equal(v, 10);
	v = 7;
	assert_int_equal(str_to_u64(STR_LIT("11"), 10, &v), -1);
	assert_int_equal(v, 7); /* untouched on failure */
	assert_int_equal(str_to_u64(STR_LIT("18446744073709551615"), UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(str_to_u64(STR_LIT("18446744073709551616"), UINT64_MAX, &v), -1);
	assert_int_equal(str_to_u64(STR_LIT("99999999999999999999"), UINT64_MAX, &v), -1);
	assert_int_equal(str_to_u64(STR_LIT("000000000000000000001"), UINT64_MAX, &v), -1);
	assert_int_equal(str_to_u64(STR_LIT(""), 10, &v), -1);
	assert_int_equal(str_to_u64(STR_LIT("-1"), 10, &v), -1);
	assert_int_equal(str_to_u64(STR_LIT("+1"), 10, &v), -1);
	assert_int_equal(str_to_u64(STR_LIT(" 1"), 10, &v), -1);
	assert_int_equal(str_to_u64(STR_LIT("1a"), 10, &v), -1);
	assert_int_equal(str_to_u64(STR_LIT("4294967296"), UINT32_MAX, &v), -1);
	assert_int_equal(str_to_u64(STR_LIT("4294967295"), UINT32_MAX, &v), 0);
	assert_true(v == UINT32_MAX);
}

static void test_str_chr_returns_offset_or_minus_one(void **state)
{
	(void)state;
	assert_int_equal(str_chr(STR_LIT("a;b;c"), ';'), 1);
	assert_int_equal(str_chr(STR_LIT("abc"), ';'), -1);
	assert_int_equal(str_chr(STR_NULL, 'a'), -1);
	/* only within len */
	assert_int_equal(str_chr(str_make("ab;", 2), ';'), -1);
}

static void test_str_copy_needs_room_for_the_nul(void **state)
{
	char buf[4] = "zzz";

	(void)state;
	assert_int_equal(str_copy(STR_LIT("abc"), buf, sizeof(buf)), 0);
	assert_string_equal(buf, "abc");
	assert_int_equal(str_copy(STR_LIT("abcd"), buf, sizeof(buf)), -1);
	assert_int_equal(str_copy(STR_LIT(""), buf, 1), 0);
	assert_string_equal(buf, "");
	assert_int_equal(str_copy(STR_LIT(""), buf, 0), -1);
}

static void test_str_copy_cstr_truncates_and_terminates(void **state)
{
	char buf[4] = "zzz", big[8];

	(void)state;
	str_copy_cstr(buf, sizeof(buf), "abcdef");
	assert_string_equal(buf, "abc");
	str_copy_cstr(buf, sizeof(buf), "");
	assert_string_equal(buf, "");
	str_copy_cstr(big, sizeof(big), "abc");
	assert_string_equal(big, "abc");
	str_copy_cstr(buf, 1, "x");
	assert_string_equal(buf, "");
}

/* ---- sbuf ---- */

static void test_sbuf_overflow_is_sticky_and_keeps_what_fit(void **state)
{
	char mem[8];
	struct sbuf b;

	(void)state;
	sbuf_init(&b, mem, sizeof(mem));
	sbuf_puts(&b, "abc");
	sbuf_putc(&b, '-');
	assert_true(sbuf_ok(&b));
	assert_int_equal(b.len, 4);
	sbuf_puts(&b, "toolong");
	assert_false(sbuf_ok(&b));
	assert_int_equal(b.len, 4);
	/* a later write that would fit is still ignored */
	sbuf_putc(&b, 'x');
	sbuf_putstr(&b, STR_LIT("y"));
	sbuf_printf(&b, "%d", 1);
	sbuf_hex(&b, (const unsigned char *)"\x01", 1);
	assert_int_equal(b.len, 4);
	assert_memory_equal(mem, "abc-", 4);
}

static void test_sbuf_putu_writes_decimal_and_overflows_like_the_rest(void **state)
{
	char mem[8];
	struct sbuf b;

	(void)state;
	sbuf_init(&b, mem, sizeof(mem));
	sbuf_putu(&b, 0);
	sbuf_putc(&b, ' ');
	sbuf_putu(&b, 65535);
	assert_true(sbuf_ok(&b));
	assert_int_equal(b.len, 7);
	assert_memory_equal(mem, "0 65535", 7);
	sbuf_putu(&b, 42); /* needs 2 bytes, 1 left */
	assert_false(sbuf_ok(&b));
	sbuf_init(&b, mem, sizeof(mem));
	sbuf_putu(&b, 18446744073709551615UL); /* 20 digits into 8 bytes */
	assert_false(sbuf_ok(&b));
}

static void test_sbuf_fills_exactly_to_capacity(void **state)
{
	char mem[4];
	struct sbuf b;

	(void)state;
	sbuf_init(&b, mem, sizeof(mem));
	sbuf_put(&b, "abcd", 4);
	assert_true(sbuf_ok(&b));
	assert_int_equal(b.len, 4);
	sbuf_put(&b, "", 0);
	assert_true(sbuf_ok(&b));
	sbuf_putc(&b, 'e');
	assert_false(sbuf_ok(&b));
}

static void test_sbuf_printf_overflows_when_output_is_truncated(void **state)
{
	char mem[6];
	struct sbuf b;

	(void)state;
	sbuf_init(&b, mem, sizeof(mem));
	sbuf_printf(&b, "%s=%d", "ab", 12); /* 5 bytes + NUL fit */
	assert_true(sbuf_ok(&b));
	assert_int_equal(b.len, 5);
	sbuf_init(&b, mem, sizeof(mem));
	sbuf_printf(&b, "%s=%d", "ab", 123); /* 6 bytes: no room for vsnprintf's NUL */
	assert_false(sbuf_ok(&b));
	assert_int_equal(b.len, 0);
}

static void test_sbuf_hex_is_lower_case_and_bounded(void **state)
{
	static const unsigned char in[] = {0x00, 0x7f, 0xab, 0xff};
	char mem[9];
	struct sbuf b;

	(void)state;
	sbuf_init(&b, mem, sizeof(mem));
	sbuf_hex(&b, in, sizeof(in));
	assert_true(sbuf_ok(&b));
	assert_string_equal(sbuf_cstr(&b), "007fabff");
	sbuf_init(&b, mem, 7);
	sbuf_hex(&b, in, sizeof(in));
	assert_false(sbuf_ok(&b));
	assert_int_equal(b.len, 0);
}

static void test_sbuf_cstr_needs_a_spare_byte(void **state)
{
	char mem[4];
	struct sbuf b;

	(void)state;
	sbuf_init(&b, mem, sizeof(mem));
	sbuf_puts(&b, "abc");
	assert_string_equal(sbuf_cstr(&b), "abc");
	assert_true(sbuf_ok(&b));
	assert_int_equal(b.len, 3);
	sbuf_putc(&b, 'd');
	assert_true(sbuf_ok(&b));
	/* full: cstr still terminates inside the buffer but flags overflow */
	assert_int_equal(strlen(sbuf_cstr(&b)), 3);
	assert_false(sbuf_ok(&b));
}

/* ---- log_val ---- */

/* log_val into an exact-size heap buffer so ASan sees any write past cap. */
static char *val(const char *in, size_t len, size_t cap)
{
	static char out[1024];
	char *buf = malloc(cap);
	const char *r;

	assert_non_null(buf);
	r = log_val(str_make(in, len), buf, cap);
	assert_true(strlen(r) < cap || cap < 8);
	snprintf(out, sizeof(out), "%s", r);
	free(buf);
	return out;
}

static void test_log_val_keeps_plain_tokens_unquoted(void **state)
{
	(void)state;
	assert_string_equal(val("abc-123@x.y", 11, 64), "abc-123@x.y");
	assert_string_equal(val("sip:a@b;tag=1", 13, 64), "\"sip:a@b;tag=1\"");
}

static void test_log_val_quotes_empty_space_quote_backslash_and_equals(void **state)
{
	(void)state;
	assert_string_equal(val("", 0, 64), "\"\"");
	assert_string_equal(val("a b", 3, 64), "\"a b\"");
	assert_string_equal(val("a\"b", 3, 64), "\"a\\\"b\"");
	assert_string_equal(val("a\\b", 3, 64), "\"a\\\\b\"");
	assert_string_equal(val("k=v", 3, 64), "\"k=v\"");
}

static void test_log_val_escapes_control_and_high_bytes_as_hex(void **state)
{
	(void)state;
	assert_string_equal(val("a\r\nevent=forged", 15, 64), "\"a\\x0d\\x0aevent=forged\"");
	assert_string_equal(val("\x00\x1f\x7f\x80\xff", 5, 64), "\"\\x00\\x1f\\x7f\\x80\\xff\"");
	/* no raw newline can reach a log line */
	assert_null(strchr(val("\n\n\n", 3, 64), '\n'));
}

static void test_log_val_truncates_long_values_with_dots_inside_cap(void **state)
{
	char in[600];
	const char *r;

	(void)state;
	memset(in, 'a', sizeof(in));
	for (size_t cap = 8; cap <= 200; cap++) {
		r = val(in, sizeof(in), cap);
		assert_true(strlen(r) < cap);
		assert_true(strlen(r) >= 2);
		assert_memory_equal(r + strlen(r) - 2, "..", 2);
	}
	/* quoted and with two-byte escapes */
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (i % 3) ? ' ' : '"';
	for (size_t cap = 8; cap <= 200; cap++) {
		r = val(in, sizeof(in), cap);
		assert_true(strlen(r) < cap);
		assert_int_equal(r[0], '"');
		assert_int_equal(r[strlen(r) - 1], '"');
	}
	r = val(in, sizeof(in), LOG_VAL_MAX);
	assert_true(strlen(r) < LOG_VAL_MAX);
}

/*
 * Regression (fixed in b819055; was log.c log_val): when a four-byte \xNN escape ends at
 * cap-3 and more input follows, the code appends "..", the closing quote
 * and then the NUL at buf[cap]: a one-byte write past the buffer. Input
 * "\x01a" with cap 8, or 152 printable bytes starting with ' ', then 0x01,
 * then more bytes with cap LOG_VAL_MAX (160; log_ctx_set's thread-local
 * ctx_val). ASan: heap-buffer-overflow WRITE of size 1. A Call-ID or
 * User-Agent with UTF-8 or control bytes reaches it.
 */
static void test_log_val_never_writes_past_cap_with_hex_escape_at_the_end(void **state)
{
	char in[200];

	(void)state;
	/* cap 8 cannot hold '"' + "\x01" + ".." + '"' + NUL (9 bytes) */
	assert_string_equal(val("\x01"
				"a",
				2, 8),
			    "\"..\"");
	assert_string_equal(val("\x01"
				"a",
				2, 9),
			    "\"\\x01..\"");
	memset(in, 'a', sizeof(in));
	in[0] = ' ';
	in[152] = 0x01;
	for (size_t cap = 8; cap <= 200; cap++)
		(void)val(in, sizeof(in), cap);
	(void)val(in, sizeof(in), LOG_VAL_MAX);
}

static void test_log_val_refuses_buffers_under_eight_bytes(void **state)
{
	char buf[7] = "xxxxxx";

	(void)state;
	assert_string_equal(log_val(STR_LIT("abc"), buf, sizeof(buf)), "");
	assert_string_equal(buf, "xxxxxx");
}

/* ---- log lines ---- */

struct capture {
	FILE *f;
	int saved;
};

static void cap_start(struct capture *c)
{
	fflush(stderr);
	c->f = tmpfile();
	assert_non_null(c->f);
	c->saved = dup(STDERR_FILENO);
	assert_true(c->saved >= 0);
	assert_true(dup2(fileno(c->f), STDERR_FILENO) >= 0);
}

/* Stop capturing; returns the malloc'd text written meanwhile. */
static char *cap_end(struct capture *c)
{
	long n;
	char *s;

	fflush(stderr);
	assert_true(dup2(c->saved, STDERR_FILENO) >= 0);
	close(c->saved);
	fseek(c->f, 0, SEEK_END);
	n = ftell(c->f);
	assert_true(n >= 0);
	s = calloc(1, (size_t)n + 1);
	assert_non_null(s);
	rewind(c->f);
	assert_int_equal(fread(s, 1, (size_t)n, c->f), (size_t)n);
	fclose(c->f);
	return s;
}

static size_t count_char(const char *s, char ch)
{
	size_t n = 0;
	for (; *s; s++)
		n += *s == ch;
	return n;
}

static void test_log_emit_writes_one_key_value_line_per_event(void **state)
{
	struct capture c;
	char *out;

	(void)state;
	log_setup(LOG_INFO, LOG_TO_STDERR, "test");
	cap_start(&c);
	log_info("register.ok", "aor=%s expires=%d", "sip:a@b", 3600);
	out = cap_end(&c);
	assert_int_equal(strncmp(out, "ts=", 3), 0);
	assert_non_null(strstr(out, "Z level=info event=register.ok aor=sip:a@b expires=3600\n"));
	assert_int_equal(count_char(out, '\n'), 1);
	assert_int_equal(out[strlen(out) - 1], '\n');
	free(out);
}

static void test_log_emit_adds_the_threads_call_id_until_cleared(void **state)
{
	struct capture c;
	char *out, *second;
	char cid[] = "a84b4c76e66710@pc33.atlanta.example.com";

	(void)state;
	log_setup(LOG_INFO, LOG_TO_STDERR, "test");
	cap_start(&c);
	log_ctx_set("call_id", str_make(cid, strlen(cid)));
	/* the context is not copied (log.h): cid stays valid until cleared */
	log_warn("auth.fail", "reason=%s", "bad_response");
	log_ctx_clear();
	log_warn("auth.fail", "reason=%s", "stale");
	out = cap_end(&c);
	assert_int_equal(count_char(out, '\n'), 2);
	second = strchr(out, '\n') + 1;
	assert_non_null(strstr(out, "level=warn event=auth.fail "
				    "call_id=a84b4c76e66710@pc33.atlanta.example.com "
				    "reason=bad_response\n"));
	assert_null(strstr(second, "call_id="));
	assert_non_null(strstr(second, "event=auth.fail reason=stale\n"));
	free(out);
}

static void test_log_ctx_escapes_a_hostile_call_id(void **state)
{
	struct capture c;
	char *out;
	const char cid[] = "x\r\nts=forged level=error";

	(void)state;
	log_setup(LOG_INFO, LOG_TO_STDERR, "test");
	cap_start(&c);
	log_ctx_set("call_id", str_make(cid, sizeof(cid) - 1));
	log_err("sip.bad", "%s", "");
	log_ctx_clear();
	out = cap_end(&c);
	assert_int_equal(count_char(out, '\n'), 1);
	assert_non_null(strstr(out, " call_id=\"x\\x0d\\x0ats=forged level=error\" "));
	free(out);
}

static void *other_thread_logs(void *arg)
{
	(void)arg;
	log_warn("other.thread", "n=%d", 1);
	log_ctx_set("req_id", STR_LIT("r-2"));
	log_warn("other.thread", "n=%d", 2);
	log_ctx_clear();
	return NULL;
}

static void test_log_ctx_is_per_thread(void **state)
{
	struct capture c;
	pthread_t t;
	char *out, *l2, *l3;

	(void)state;
	log_setup(LOG_INFO, LOG_TO_STDERR, "test");
	cap_start(&c);
	log_ctx_set("call_id", STR_LIT("main-cid"));
	assert_int_equal(pthread_create(&t, NULL, other_thread_logs, NULL), 0);
	pthread_join(t, NULL);
	log_warn("main.thread", "%s", "n=3");
	log_ctx_clear();
	out = cap_end(&c);
	assert_int_equal(count_char(out, '\n'), 3);
	l2 = strchr(out, '\n') + 1;
	l3 = strchr(l2, '\n') + 1;
	/* the other thread's lines carry its own context, never main's */
	assert_non_null(strstr(out, "event=other.thread n=1\n"));
	assert_true(strstr(out, "event=other.thread n=1\n") < l2);
	assert_non_null(strstr(l2, "event=other.thread req_id=r-2 n=2\n"));
	assert_true(strstr(l2, "event=other.thread req_id=r-2 n=2\n") < l3);
	assert_non_null(strstr(l3, "event=main.thread call_id=main-cid n=3\n"));
	assert_true(strstr(out, "main-cid") >= l3);
	free(out);
}

static void test_log_level_filters_lower_priority_events(void **state)
{
	struct capture c;
	char *out;

	(void)state;
	log_setup(LOG_WARN, LOG_TO_STDERR, "test");
	assert_false(log_enabled(LOG_INFO));
	assert_true(log_enabled(LOG_WARN));
	assert_true(log_enabled(LOG_ERR));
	cap_start(&c);
	log_info("x.info", "%s", "a=1");
	log_debug("x.debug", "%s", "a=1");
	log_emit(LOG_DEBUG, "x.debug2", "%s", "a=1");
	log_warn("x.warn", "%s", "a=1");
	log_set_level(LOG_DEBUG);
	log_debug("x.debug3", "%s", "a=1");
	out = cap_end(&c);
	assert_null(strstr(out, "x.info"));
	assert_null(strstr(out, "x.debug "));
	assert_null(strstr(out, "x.debug2"));
	assert_non_null(strstr(out, "level=warn event=x.warn"));
	assert_non_null(strstr(out, "level=debug event=x.debug3"));
	free(out);
	log_set_level(LOG_INFO);
}

static void test_log_emit_truncates_huge_events_to_one_line(void **state)
{
	struct capture c;
	char *out, *big;

	(void)state;
	big = malloc(5000);
	assert_non_null(big);
	memset(big, 'v', 4999);
	big[4999] = '\0';
	log_setup(LOG_INFO, LOG_TO_STDERR, "test");
	cap_start(&c);
	log_ctx_set("call_id", STR_LIT("cid-1"));
	log_err("big", "k=%s", big);
	log_err(big, "k=%s", "1"); /* oversized event name too */
	log_ctx_clear();
	out = cap_end(&c);
	assert_int_equal(count_char(out, '\n'), 2);
	assert_true(strchr(out, '\n') - out < 2048);
	assert_true(strlen(strchr(out, '\n') + 1) <= 2048);
	assert_non_null(strstr(out, "call_id=cid-1 k=vvvv"));
	free(out);
	free(big);
}

#define LOG_THREADS 4
#define LOG_LINES   200

static void *log_storm(void *arg)
{
	char cid[32];

	snprintf(cid, sizeof(cid), "cid-%d", (int)(intptr_t)arg);
	log_ctx_set("call_id", str_cstr(cid));
	for (int i = 0; i < LOG_LINES; i++)
		log_warn("storm", "t=%d i=%d pad=%s", (int)(intptr_t)arg, i,
			 "0123456789012345678901234567890123456789");
	log_ctx_clear();
	return NULL;
}

static void test_log_lines_from_concurrent_threads_never_interleave(void **state)
{
	struct capture c;
	pthread_t t[LOG_THREADS];
	char *out, *line, *save = NULL;
	int n = 0;

	(void)state;
	log_setup(LOG_INFO, LOG_TO_STDERR, "test");
	cap_start(&c);
	for (int i = 0; i < LOG_THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, log_storm, (void *)(intptr_t)i), 0);
	for (int i = 0; i < LOG_THREADS; i++)
		pthread_join(t[i], NULL);
	out = cap_end(&c);
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		int tid, i;
		char cid[16];
		assert_int_equal(
		    sscanf(strstr(line, "call_id="), "call_id=%15s t=%d i=%d", cid, &tid, &i), 3);
		assert_int_equal(cid[4] - '0', tid);
		assert_non_null(strstr(line, "pad=0123456789012345678901234567890123456789"));
		assert_int_equal(count_char(line, '='), 7);
		n++;
	}
	assert_int_equal(n, LOG_THREADS * LOG_LINES);
	free(out);
}

static void test_log_level_parse_accepts_the_four_names_and_warning(void **state)
{
	enum log_level l = LOG_ERR;

	(void)state;
	assert_int_equal(log_level_parse("debug", &l), 0);
	assert_int_equal(l, LOG_DEBUG);
	assert_int_equal(log_level_parse("warning", &l), 0);
	assert_int_equal(l, LOG_WARN);
	assert_int_equal(log_level_parse("error", &l), 0);
	assert_int_equal(l, LOG_ERR);
	assert_int_equal(log_level_parse("info", &l), 0);
	assert_int_equal(l, LOG_INFO);
	assert_int_equal(log_level_parse("INFO", &l), -1);
	assert_int_equal(log_level_parse("", &l), -1);
	assert_int_equal(log_level_parse("err", &l), -1);
	assert_int_equal(l, LOG_INFO);
}

/* ---- secmem ---- */

static void test_secmem_eq_detects_a_difference_anywhere(void **state)
{
	unsigned char a[32], b[32];

	(void)state;
	memset(a, 0x5a, sizeof(a));
	memcpy(b, a, sizeof(b));
	assert_true(secmem_eq(a, b, sizeof(a)));
	for (size_t i = 0; i < sizeof(a); i++) {
		b[i] ^= 0x01;
		assert_false(secmem_eq(a, b, sizeof(a)));
		b[i] ^= 0x81;
		assert_false(secmem_eq(a, b, sizeof(a)));
		b[i] ^= 0x80;
	}
	assert_true(secmem_eq(a, b, sizeof(a)));
	assert_true(secmem_eq(a, "x", 0));
}

static void test_secmem_wipe_zeroes_every_byte(void **state)
{
	unsigned char k[64];

	(void)state;
	memset(k, 0xa5, sizeof(k));
	secmem_wipe(k + 1, sizeof(k) - 2);
	assert_int_equal(k[0], 0xa5);
	assert_int_equal(k[63], 0xa5);
	for (size_t i = 1; i < sizeof(k) - 1; i++)
		assert_int_equal(k[i], 0);
}

static void test_secmem_random_fills_and_differs_between_calls(void **state)
{
	unsigned char a[32], b[32], zero[32] = {0};

	(void)state;
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	assert_int_equal(secmem_random(a, sizeof(a)), 0);
	assert_int_equal(secmem_random(b, sizeof(b)), 0);
	assert_false(secmem_eq(a, zero, sizeof(a)));
	assert_false(secmem_eq(a, b, sizeof(a)));
	assert_int_equal(secmem_random(a, 0), 0);
}

/* ---- stats ---- */

static void test_stats_count_and_name_every_counter(void **state)
{
	uint64_t before = stats_get(ST_AUTH_OK), other = stats_get(ST_AUTH_FAIL);

	(void)state;
	stats_inc(ST_AUTH_OK);
	stats_add(ST_AUTH_OK, 41);
	assert_true(stats_get(ST_AUTH_OK) == before + 42);
	assert_true(stats_get(ST_AUTH_FAIL) == other);
	for (int i = 0; i < ST_COUNT; i++) {
		const char *n = stats_name((enum stat_id)i);
		assert_non_null(n);
		assert_true(strlen(n) > 0);
		assert_null(strpbrk(n, " =\"\n"));
		for (int j = 0; j < i; j++)
			assert_string_not_equal(n, stats_name((enum stat_id)j));
	}
}

#define STAT_THREADS 4
#define STAT_INCS    100000

static void *stat_storm(void *arg)
{
	(void)arg;
	for (int i = 0; i < STAT_INCS; i++)
		stats_inc(ST_SIP_RX);
	return NULL;
}

static void test_stats_lose_no_increment_under_concurrency(void **state)
{
	pthread_t t[STAT_THREADS];
	uint64_t before = stats_get(ST_SIP_RX);

	(void)state;
	for (int i = 0; i < STAT_THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, stat_storm, NULL), 0);
	for (int i = 0; i < STAT_THREADS; i++)
		pthread_join(t[i], NULL);
	assert_true(stats_get(ST_SIP_RX) - before == (uint64_t)STAT_THREADS * STAT_INCS);
}

/* ---- clock ---- */

static void test_clock_mono_never_goes_back_and_advances(void **state)
{
	uint64_t prev = clock_mono_ms(), start = prev, now;
	struct timespec ts = {0, 30 * 1000000L};

	(void)state;
	for (int i = 0; i < 100000; i++) {
		now = clock_mono_ms();
		assert_true(now >= prev);
		prev = now;
	}
	nanosleep(&ts, NULL);
	now = clock_mono_ms();
	assert_true(now - start >= 30);
	assert_true(now - start < 10000);
}

static void test_clock_wall_is_unix_seconds(void **state)
{
	int64_t w = clock_wall_s();
	time_t t = time(NULL);

	(void)state;
	assert_true(w > 1600000000); /* after 2020 */
	assert_true(w - (int64_t)t <= 1 && (int64_t)t - w <= 1);
}

/* ---- tbuf ---- */

struct tbuf_seen {
	void *reg, *again, *proxy;
};

static void *tbuf_thread(void *arg)
{
	struct tbuf_seen *s = arg;

	s->reg = tbuf(TBUF_REG_CHANGED, 200000);
	if (s->reg)
		memset(s->reg, 0x5a, 200000); /* all of it is ours to write */
	s->again = tbuf(TBUF_REG_CHANGED, 200000);
	s->proxy = tbuf(TBUF_PROXY_REQ, 4096);
	return NULL;
}

/* One buffer per id and thread, the same on every call; another thread
 * gets its own; an id out of range gets NULL. The buffers of a thread
 * that ended are freed (LeakSanitizer fails this program otherwise). */
static void test_tbuf_is_per_thread_and_stable(void **state)
{
	struct tbuf_seen a = {0}, b = {0};
	pthread_t ta, tb;
	void *mine;

	(void)state;
	assert_int_equal(pthread_create(&ta, NULL, tbuf_thread, &a), 0);
	assert_int_equal(pthread_join(ta, NULL), 0);
	assert_int_equal(pthread_create(&tb, NULL, tbuf_thread, &b), 0);
	/* a's buffers may be reused by b after a ended: only b's own
	 * answers are compared while b runs */
	assert_int_equal(pthread_join(tb, NULL), 0);
	assert_non_null(a.reg);
	assert_ptr_equal(a.reg, a.again);
	assert_non_null(a.proxy);
	assert_ptr_not_equal(a.reg, a.proxy);
	assert_non_null(b.reg);
	assert_ptr_equal(b.reg, b.again);
	mine = tbuf(TBUF_PROXY_RESP, 64);
	assert_non_null(mine);
	assert_ptr_equal(tbuf(TBUF_PROXY_RESP, 64), mine);
	assert_null(tbuf(TBUF_COUNT, 64));
	assert_null(tbuf((enum tbuf_id) - 1, 64));
}

static void *tbuf_hold(void *arg)
{
	void **out = arg;

	*out = tbuf(TBUF_REG_CONTACTS, 1024);
	return NULL;
}

/* Two threads alive at once never share a buffer. */
static void test_tbuf_threads_alive_together_do_not_share(void **state)
{
	void *theirs = NULL, *mine = tbuf(TBUF_REG_CONTACTS, 1024);
	pthread_t t;

	(void)state;
	assert_non_null(mine);
	assert_int_equal(pthread_create(&t, NULL, tbuf_hold, &theirs), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	/* joined: its buffer is freed, but it was handed out while this
	 * thread's was live, so the two addresses differ */
	assert_non_null(theirs);
	assert_ptr_not_equal(theirs, mine);
}

/* jsonw_compact(v) is json_dumps(v, JSON_COMPACT), byte for byte. */
static void same_as_jansson(const json_t *v)
{
	char buf[8192];
	char *want = json_dumps(v, JSON_COMPACT);
	long n = jsonw_compact(v, buf, sizeof(buf));

	assert_non_null(want);
	assert_int_equal(n, (long)strlen(want));
	assert_string_equal(buf, want);
	/* exactly its length and NUL fit; one byte less does not */
	assert_int_equal(jsonw_compact(v, buf, strlen(want) + 1), n);
	assert_int_equal(jsonw_compact(v, buf, strlen(want)), -1);
	free(want);
}

static json_t *random_value(unsigned *seed, int depth)
{
	static const char *const words[] = {"",
					    "a",
					    "users.read",
					    "sip:alice@example.test",
					    "https://x.example/p?q=1&r=2",
					    "with space",
					    "~!#$%"};
	int kind = rand_r(seed) % (depth < 6 ? 7 : 5);
	json_t *v;

	switch (kind) {
	case 0:
		return json_string(words[rand_r(seed) % 7]);
	case 1:
		return json_integer((json_int_t)rand_r(seed) * (rand_r(seed) % 2 ? 1 : -977));
	case 2:
		return json_true();
	case 3:
		return json_false();
	case 4:
		return json_null();
	case 5:
		v = json_object();
		for (int i = rand_r(seed) % 5; i > 0; i--) {
			char k[16];

			snprintf(k, sizeof(k), "k%d", rand_r(seed) % 50);
			json_object_set_new(v, k, random_value(seed, depth + 1));
		}
		return v;
	default:
		v = json_array();
		for (int i = rand_r(seed) % 5; i > 0; i--)
			json_array_append_new(v, random_value(seed, depth + 1));
		return v;
	}
}

static void test_jsonw_writes_what_json_dumps_writes(void **state)
{
	unsigned seed = 12345;
	json_t *v =
	    json_pack("{s:s,s:I,s:I,s:b,s:b,s:n,s:{},s:[],s:{s:[i,s,{s:s}]}}", "s", "plain text",
		      "max", (json_int_t)INT64_MAX, "min", (json_int_t)INT64_MIN, "t", 1, "f", 0,
		      "z", "eo", "ea", "n", "a", 1, "b", "c", "d");

	assert_non_null(v);
	same_as_jansson(v);
	json_decref(v);
	v = json_pack("[]");
	same_as_jansson(v);
	json_decref(v);
	for (int i = 0; i < 2000; i++) {
		json_t *r = random_value(&seed, 0);

		if (json_is_object(r) || json_is_array(r))
			same_as_jansson(r);
		json_decref(r);
	}
}

/* What jsonw leaves to jansson: -1, and jansson writes it as before. */
static void test_jsonw_leaves_escapes_reals_depth_and_scalars_to_jansson(void **state)
{
	static const char *const escaped[] = {"a\"b",	 "back\\slash", "tab\t", "nl\n",
					      "del\x7f", "caf\xc3\xa9", "\x01"};
	char buf[512];
	json_t *v, *deep;

	for (size_t i = 0; i < sizeof(escaped) / sizeof(escaped[0]); i++) {
		v = json_pack("{s:s}", "k", escaped[i]);
		assert_int_equal(jsonw_compact(v, buf, sizeof(buf)), -1);
		json_decref(v);
		v = json_object();
		json_object_set_new(v, escaped[i], json_true());
		assert_int_equal(jsonw_compact(v, buf, sizeof(buf)), -1);
		json_decref(v);
	}
	v = json_pack("{s:f}", "r", 0.5);
	assert_int_equal(jsonw_compact(v, buf, sizeof(buf)), -1);
	json_decref(v);
	/* JSONW_DEPTH levels are written, one more is not */
	deep = json_array();
	for (int i = 1; i < JSONW_DEPTH; i++) {
		json_t *outer = json_array();

		json_array_append_new(outer, deep);
		deep = outer;
	}
	same_as_jansson(deep);
	v = json_array();
	json_array_append_new(v, deep);
	assert_int_equal(jsonw_compact(v, buf, sizeof(buf)), -1);
	json_decref(v);
	/* a bare scalar is not a JSON text json_dumps writes */
	v = json_string("x");
	assert_int_equal(jsonw_compact(v, buf, sizeof(buf)), -1);
	json_decref(v);
	assert_int_equal(jsonw_compact(NULL, buf, sizeof(buf)), -1);
}

static int tl_made, tl_dropped, tl_fail;

static void *tl_make(void)
{
	int *p;

	if (__atomic_load_n(&tl_fail, __ATOMIC_SEQ_CST))
		return NULL;
	p = malloc(sizeof(*p));
	if (p)
		__atomic_add_fetch(&tl_made, 1, __ATOMIC_SEQ_CST);
	return p;
}

static void tl_drop(void *p)
{
	__atomic_add_fetch(&tl_dropped, 1, __ATOMIC_SEQ_CST);
	free(p);
}

static struct tlocal tl = TLOCAL_INIT(tl_make, tl_drop);

static void *tl_thread(void *arg)
{
	void *a = tlocal_get(&tl), *b = tlocal_get(&tl);

	*(void **)arg = a;
	return a && a == b ? a : NULL;
}

/* One object per thread, the same at every call, made lazily, dropped at
 * thread end; a failed make gives NULL and is tried again. */
static void test_tlocal_one_object_per_thread_dropped_at_its_end(void **state)
{
	pthread_t th[4];
	void *seen[4], *ret[4];

	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, tl_thread, &seen[i]), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], &ret[i]), 0);
		assert_non_null(ret[i]);
	}
	assert_int_equal(tl_made, 4);
	assert_int_equal(tl_dropped, 4);
	/* this thread: a failed make is NULL, then it works */
	__atomic_store_n(&tl_fail, 1, __ATOMIC_SEQ_CST);
	assert_null(tlocal_get(&tl));
	__atomic_store_n(&tl_fail, 0, __ATOMIC_SEQ_CST);
	{
		void *mine = tlocal_get(&tl);

		assert_non_null(mine);
		assert_ptr_equal(tlocal_get(&tl), mine);
	}
	assert_int_equal(tl_made, 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tlocal_one_object_per_thread_dropped_at_its_end),
	    cmocka_unit_test(test_jsonw_writes_what_json_dumps_writes),
	    cmocka_unit_test(test_jsonw_leaves_escapes_reals_depth_and_scalars_to_jansson),
	    cmocka_unit_test(test_str_eq_compares_length_and_bytes),
	    cmocka_unit_test(test_str_caseeq_ignores_ascii_case_only),
	    cmocka_unit_test(test_str_hexval_takes_both_cases_and_nothing_else),
	    cmocka_unit_test(test_str_list_has_matches_whole_members_only),
	    cmocka_unit_test(test_str_caseeq_compares_bytes_after_an_embedded_nul),
	    cmocka_unit_test(test_str_trim_strips_sp_htab_cr_lf_at_both_ends_only),
	    cmocka_unit_test(test_str_to_u64_accepts_digits_up_to_max_and_rejects_the_rest),
	    cmocka_unit_test(test_str_chr_returns_offset_or_minus_one),
	    cmocka_unit_test(test_str_copy_needs_room_for_the_nul),
	    cmocka_unit_test(test_str_copy_cstr_truncates_and_terminates),
	    cmocka_unit_test(test_sbuf_overflow_is_sticky_and_keeps_what_fit),
	    cmocka_unit_test(test_sbuf_fills_exactly_to_capacity),
	    cmocka_unit_test(test_sbuf_putu_writes_decimal_and_overflows_like_the_rest),
	    cmocka_unit_test(test_sbuf_printf_overflows_when_output_is_truncated),
	    cmocka_unit_test(test_sbuf_hex_is_lower_case_and_bounded),
	    cmocka_unit_test(test_sbuf_cstr_needs_a_spare_byte),
	    cmocka_unit_test(test_log_val_keeps_plain_tokens_unquoted),
	    cmocka_unit_test(test_log_val_quotes_empty_space_quote_backslash_and_equals),
	    cmocka_unit_test(test_log_val_escapes_control_and_high_bytes_as_hex),
	    cmocka_unit_test(test_log_val_truncates_long_values_with_dots_inside_cap),
	    cmocka_unit_test(test_log_val_never_writes_past_cap_with_hex_escape_at_the_end),
	    cmocka_unit_test(test_log_val_refuses_buffers_under_eight_bytes),
	    cmocka_unit_test(test_log_emit_writes_one_key_value_line_per_event),
	    cmocka_unit_test(test_log_emit_adds_the_threads_call_id_until_cleared),
	    cmocka_unit_test(test_log_ctx_escapes_a_hostile_call_id),
	    cmocka_unit_test(test_log_ctx_is_per_thread),
	    cmocka_unit_test(test_log_level_filters_lower_priority_events),
	    cmocka_unit_test(test_log_emit_truncates_huge_events_to_one_line),
	    cmocka_unit_test(test_log_lines_from_concurrent_threads_never_interleave),
	    cmocka_unit_test(test_log_level_parse_accepts_the_four_names_and_warning),
	    cmocka_unit_test(test_secmem_eq_detects_a_difference_anywhere),
	    cmocka_unit_test(test_secmem_wipe_zeroes_every_byte),
	    cmocka_unit_test(test_secmem_random_fills_and_differs_between_calls),
	    cmocka_unit_test(test_stats_count_and_name_every_counter),
	    cmocka_unit_test(test_stats_lose_no_increment_under_concurrency),
	    cmocka_unit_test(test_clock_mono_never_goes_back_and_advances),
	    cmocka_unit_test(test_clock_wall_is_unix_seconds),
	    cmocka_unit_test(test_tbuf_is_per_thread_and_stable),
	    cmocka_unit_test(test_tbuf_threads_alive_together_do_not_share),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
