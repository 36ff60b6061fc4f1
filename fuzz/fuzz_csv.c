/*
 * libFuzzer target for the bounded CSV reader of `rtcauthctl user import`.
 * Reads every record of the input (copied into an exact-size buffer so any
 * read past the end is caught) and checks the reader's promises: each call
 * consumes input until CTL_CSV_END, fields are NUL-terminated within their
 * bounds, an OK record has at most CTL_CSV_MAX_FIELDS fields and no NUL, line
 * numbers never go back. Every OK record is written back quoted (RFC 4180)
 * and must read back as the same fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ctl_csv_rec rec, again;
static char out[CTL_CSV_MAX_FIELDS * (2 * CTL_CSV_FIELD_MAX + 3) + 2];

static void check_fields(const struct ctl_csv_rec *r, int st)
{
	size_t nf = r->n < CTL_CSV_MAX_FIELDS ? r->n : CTL_CSV_MAX_FIELDS;

	if (r->n == 0)
		abort();
	for (size_t f = 0; f < nf; f++) {
		if (r->len[f] > CTL_CSV_FIELD_MAX || r->field[f][r->len[f]] != '\0')
			abort();
		if (st == CTL_CSV_OK && memchr(r->field[f], '\0', r->len[f]))
			abort();
	}
	if (st == CTL_CSV_OK && r->n > CTL_CSV_MAX_FIELDS)
		abort();
	if (r->bad_line < r->line)
		abort();
	if (r->blank && (st != CTL_CSV_OK || r->n != 1 || r->len[0] != 0))
		abort();
}

/* Quote every field, read it back, compare. */
static void round_trip(const struct ctl_csv_rec *r)
{
	struct ctl_csv c;
	size_t o = 0;

	if (r->blank)
		return;
	for (size_t f = 0; f < r->n; f++) {
		if (f)
			out[o++] = ',';
		out[o++] = '"';
		for (size_t i = 0; i < r->len[f]; i++) {
			if (r->field[f][i] == '"')
				out[o++] = '"';
			out[o++] = r->field[f][i];
		}
		out[o++] = '"';
	}
	out[o++] = '\n';
	ctl_csv_init(&c, out, o);
	if (ctl_csv_next(&c, &again) != CTL_CSV_OK || again.n != r->n || again.blank)
		abort();
	for (size_t f = 0; f < r->n; f++)
		if (again.len[f] != r->len[f] || memcmp(again.field[f], r->field[f], r->len[f]))
			abort();
	if (c.pos != o || ctl_csv_next(&c, &again) != CTL_CSV_END)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);
	struct ctl_csv c;
	size_t calls = 0;

	if (!buf)
		return 0;
	if (size)
		memcpy(buf, data, size);
	ctl_csv_init(&c, buf, size);
	for (;;) {
		size_t pos = c.pos;
		unsigned line = c.line;
		int st = ctl_csv_next(&c, &rec);

		if (!ctl_csv_strerror(st))
			abort();
		if (st == CTL_CSV_END) {
			if (pos != size || c.pos != size)
				abort();
			break;
		}
		if (st != CTL_CSV_OK && (st < CTL_CSV_ENUL || st > CTL_CSV_EUNTERMINATED))
			abort();
		/* every record consumes input, lines never go back */
		if (c.pos <= pos || c.pos > size || c.line < line || rec.line != line)
			abort();
		if (++calls > size)
			abort();
		check_fields(&rec, st);
		if (st == CTL_CSV_OK)
			round_trip(&rec);
	}
	free(buf);
	return 0;
}
