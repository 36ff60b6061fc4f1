/* Unit tests for the bounded RFC 4180 CSV reader used by `rtcauthctl user import`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctl/csv.h"

/* Parse from an exact-size heap copy so that ASan catches any read past len. */
struct fixture {
	char *buf;
	struct ctl_csv c;
	struct ctl_csv_rec rec;
};

static struct fixture *fx_new(const char *text, size_t len)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	fx->buf = malloc(len ? len : 1);
	assert_non_null(fx->buf);
	memcpy(fx->buf, text, len);
	ctl_csv_init(&fx->c, fx->buf, len);
	return fx;
}

static struct fixture *fx(const char *text)
{
	return fx_new(text, strlen(text));
}

static void fx_free(struct fixture *f)
{
	free(f->buf);
	free(f);
}

static int next(struct fixture *f)
{
	return ctl_csv_next(&f->c, &f->rec);
}

static void test_csv_reads_lf_and_crlf_records_with_line_numbers(void **state)
{
	struct fixture *f = fx("uri,password\r\nsip:a@x,pw1\nsip:b@x,pw2,Bob\n");

	assert_int_equal(next(f), CTL_CSV_OK);
	assert_int_equal(f->rec.line, 1);
	assert_int_equal(f->rec.n, 2);
	assert_string_equal(f->rec.field[0], "uri");
	assert_string_equal(f->rec.field[1], "password");
	assert_int_equal(next(f), CTL_CSV_OK);
	assert_int_equal(f->rec.line, 2);
	assert_string_equal(f->rec.field[0], "sip:a@x");
	assert_string_equal(f->rec.field[1], "pw1");
	assert_int_equal(next(f), CTL_CSV_OK);
	assert_int_equal(f->rec.line, 3);
	assert_int_equal(f->rec.n, 3);
	assert_string_equal(f->rec.field[2], "Bob");
	assert_int_equal(next(f), CTL_CSV_END);
	assert_int_equal(next(f), CTL_CSV_END);
	fx_free(f);
}

static void test_csv_last_record_needs_no_line_break(void **state)
{
	struct fixture *f = fx("a,b\nc,d");

	assert_int_equal(next(f), CTL_CSV_OK);
	assert_int_equal(next(f), CTL_CSV_OK);
	assert_int_equal(f->rec.line, 2);
	assert_string_equal(f->rec.field[1], "d");
	assert_int_equal(next(f), CTL_CSV_END);
	fx_free(f);
}

static void test_csv_empty_input_is_end(void **state)
{
	struct fixture *f = fx_new("", 0);

	assert_int_equal(next(f), CTL_CSV_END);
	fx_free(f);
}

static void test_csv_quoted_field_keeps_comma_quote_and_line_break(void **state)
{
	struct fixture *f = fx("\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\"\nnext,row\n");

	assert_int_equal(next(f), CTL_CSV_OK);
	assert_int_equal(f->rec.n, 3);
	assert_string_equal(f->rec.field[0], "a,b");
	assert_string_equal(f->rec.field[1], "say \"hi\"");
	assert_string_equal(f->rec.field[2], "two\nlines");
	assert_int_equal(f->rec.len[2], 9);
	/* The embedded line break counts: the next record starts on line 3. */
	assert_int_equal(next(f), CTL_CSV_OK);
	assert_int_equal(f->rec.line, 3);
	assert_string_equal(f->rec.field[0], "next");
	fx_free(f);
}

static void test_csv_empty_fields_and_trailing_comma(void **state)
{
	struct fixture *f = fx(",\"\",\nx,");

	assert_int_equal(next(f), CTL_CSV_OK);
	assert_int_equal(f->rec.n, 3);
	assert_int_equal(f->rec.len[0], 0);
	assert_int_equal(f->rec.len[1], 0);
	assert_int_equal(f->rec.len[2], 0);
	assert_int_equal(next(f), CTL_CSV_OK);
	assert_int_equal(f->rec.n, 2);
	assert_string_equal(f->rec.field[0], "x");
	assert_string_equal(f->rec.field[1], "");
	assert_int_equal(next(f), CTL_CSV_END);
	fx_free(f);
}

static void test_csv_blank_line_is_flagged(void **state)
{
	struct fixture *f = fx("a,b\n\r\n\nc,d\n");

	assert_int_equal(next(f), CTL_CSV_OK);
	assert_false(f->rec.blank);
	assert_int_equal(next(f), CTL_CSV_OK);
	assert_true(f->rec.blank);
	assert_int_equal(f->rec.line, 2);
	assert_int_equal(next(f), CTL_CSV_OK);
	assert_true(f->rec.blank);
	assert_int_equal(next(f), CTL_CSV_OK);
	assert_false(f->rec.blank);
	assert_int_equal(f->rec.line, 4);
	fx_free(f);
}

static void test_csv_rejects_unterminated_quote_at_its_line(void **state)
{
	struct fixture *f = fx("a,b\nc,\"open\nmore,text\n");

	assert_int_equal(next(f), CTL_CSV_OK);
	assert_int_equal(next(f), CTL_CSV_EUNTERMINATED);
	assert_int_equal(f->rec.line, 2);
	assert_int_equal(f->rec.bad_line, 2);
	assert_int_equal(next(f), CTL_CSV_END);
	fx_free(f);
}

static void test_csv_rejects_quote_inside_unquoted_field_and_resyncs(void **state)
{
	struct fixture *f = fx("sip:a@x,pa\"ss\nsip:b@x,ok\n");

	assert_int_equal(next(f), CTL_CSV_EQUOTE);
	assert_int_equal(f->rec.line, 1);
	assert_int_equal(next(f), CTL_CSV_OK);
	assert_int_equal(f->rec.line, 2);
	assert_string_equal(f->rec.field[0], "sip:b@x");
	fx_free(f);
}

static void test_csv_rejects_text_after_closing_quote_and_resyncs(void **state)
{
	struct fixture *f = fx("\"abc\"x,y\nz,w\n");

	assert_int_equal(next(f), CTL_CSV_EQUOTE);
	assert_int_equal(f->rec.n, 2);
	assert_int_equal(next(f), CTL_CSV_OK);
	assert_string_equal(f->rec.field[0], "z");
	assert_int_equal(f->rec.line, 2);
	fx_free(f);
}

static void test_csv_rejects_too_many_fields_but_counts_them(void **state)
{
	struct fixture *f = fx("1,2,3,4,5,6,7,8,9,10\nok,row\n");

	assert_int_equal(next(f), CTL_CSV_ETOOMANY);
	assert_int_equal(f->rec.n, 10);
	assert_string_equal(f->rec.field[7], "8");
	assert_int_equal(next(f), CTL_CSV_OK);
	assert_string_equal(f->rec.field[0], "ok");
	fx_free(f);
}

static void test_csv_accepts_exactly_max_fields(void **state)
{
	struct fixture *f = fx("1,2,3,4,5,6,7,8\n");

	assert_int_equal(next(f), CTL_CSV_OK);
	assert_int_equal(f->rec.n, CTL_CSV_MAX_FIELDS);
	fx_free(f);
}

static void test_csv_rejects_field_over_limit_and_truncates(void **state)
{
	size_t len = CTL_CSV_FIELD_MAX + 10;
	char *text = malloc(len + 16);
	struct fixture *f;

	assert_non_null(text);
	memset(text, 'p', CTL_CSV_FIELD_MAX + 1);
	strcpy(text + CTL_CSV_FIELD_MAX + 1, ",x\ny,z\n");
	f = fx(text);
	assert_int_equal(next(f), CTL_CSV_ETOOLONG);
	assert_int_equal(f->rec.len[0], CTL_CSV_FIELD_MAX);
	assert_int_equal(strlen(f->rec.field[0]), CTL_CSV_FIELD_MAX);
	assert_int_equal(next(f), CTL_CSV_OK);
	assert_string_equal(f->rec.field[0], "y");
	fx_free(f);
	free(text);
}

static void test_csv_accepts_field_of_exactly_max_length(void **state)
{
	char *text = malloc(CTL_CSV_FIELD_MAX + 2);
	struct fixture *f;

	assert_non_null(text);
	memset(text, 'q', CTL_CSV_FIELD_MAX);
	text[CTL_CSV_FIELD_MAX] = '\0';
	f = fx(text);
	assert_int_equal(next(f), CTL_CSV_OK);
	assert_int_equal(f->rec.len[0], CTL_CSV_FIELD_MAX);
	fx_free(f);
	free(text);
}

static void test_csv_rejects_nul_byte(void **state)
{
	static const char text[] = "a,b\0c\nd,e\n";
	struct fixture *f = fx_new(text, sizeof(text) - 1);

	assert_int_equal(next(f), CTL_CSV_ENUL);
	assert_int_equal(next(f), CTL_CSV_OK);
	assert_string_equal(f->rec.field[0], "d");
	fx_free(f);
}

static void test_csv_lone_quote_at_end_is_unterminated(void **state)
{
	struct fixture *f = fx_new("\"", 1);

	assert_int_equal(next(f), CTL_CSV_EUNTERMINATED);
	assert_int_equal(next(f), CTL_CSV_END);
	fx_free(f);
}

static void test_csv_strerror_names_every_status(void **state)
{
	int s;

	for (s = CTL_CSV_ENUL; s <= CTL_CSV_END; s++)
		assert_string_not_equal(ctl_csv_strerror(s), "unknown CSV error");
	assert_string_equal(ctl_csv_strerror(42), "unknown CSV error");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_csv_reads_lf_and_crlf_records_with_line_numbers),
	    cmocka_unit_test(test_csv_last_record_needs_no_line_break),
	    cmocka_unit_test(test_csv_empty_input_is_end),
	    cmocka_unit_test(test_csv_quoted_field_keeps_comma_quote_and_line_break),
	    cmocka_unit_test(test_csv_empty_fields_and_trailing_comma),
	    cmocka_unit_test(test_csv_blank_line_is_flagged),
	    cmocka_unit_test(test_csv_rejects_unterminated_quote_at_its_line),
	    cmocka_unit_test(test_csv_rejects_quote_inside_unquoted_field_and_resyncs),
	    cmocka_unit_test(test_csv_rejects_text_after_closing_quote_and_resyncs),
	    cmocka_unit_test(test_csv_rejects_too_many_fields_but_counts_them),
	    cmocka_unit_test(test_csv_accepts_exactly_max_fields),
	    cmocka_unit_test(test_csv_rejects_field_over_limit_and_truncates),
	    cmocka_unit_test(test_csv_accepts_field_of_exactly_max_length),
	    cmocka_unit_test(test_csv_rejects_nul_byte),
	    cmocka_unit_test(test_csv_lone_quote_at_end_is_unterminated),
	    cmocka_unit_test(test_csv_strerror_names_every_status),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
