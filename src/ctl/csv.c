/*
 * Bounded RFC 4180 CSV reader; see csv.h. A single pass state machine that
 * always consumes a whole record and remembers only the first error in it.
 * Never allocates, never reads past buf + len.
 */
#include "ctl/csv.h"

#include <string.h>

void ctl_csv_init(struct ctl_csv *c, const void *buf, size_t len)
{
	c->buf = buf;
	c->len = len;
	c->pos = 0;
	c->line = 1;
}

const char *ctl_csv_strerror(int status)
{
	switch (status) {
	case CTL_CSV_OK:
		return "ok";
	case CTL_CSV_END:
		return "end of input";
	case CTL_CSV_EUNTERMINATED:
		return "unterminated quoted field (a '\"' opens a field that never closes)";
	case CTL_CSV_ETOOMANY:
		return "too many columns";
	case CTL_CSV_ETOOLONG:
		return "field too long (at most 1024 bytes)";
	case CTL_CSV_EQUOTE:
		return "misplaced '\"' (quote the whole field and write a quote inside it as \"\")";
	case CTL_CSV_ENUL:
		return "NUL byte in field";
	}
	return "unknown CSV error";
}

struct rec_state {
	struct ctl_csv *c;
	struct ctl_csv_rec *rec;
	int err;
};

static void set_err(struct rec_state *st, int err)
{
	if (st->err == CTL_CSV_OK) {
		st->err = err;
		st->rec->bad_line = st->c->line;
	}
}

static void append(struct rec_state *st, size_t f, char ch)
{
	struct ctl_csv_rec *rec = st->rec;

	if (ch == '\0')
		set_err(st, CTL_CSV_ENUL);
	if (f >= CTL_CSV_MAX_FIELDS)
		return;
	if (rec->len[f] >= CTL_CSV_FIELD_MAX) {
		set_err(st, CTL_CSV_ETOOLONG);
		return;
	}
	rec->field[f][rec->len[f]++] = ch;
}

/* At a record end (LF or CRLF)? Returns the length of the line break or 0. */
static size_t at_eol(const struct ctl_csv *c)
{
	if (c->pos < c->len && c->buf[c->pos] == '\n')
		return 1;
	if (c->pos + 1 < c->len && c->buf[c->pos] == '\r' && c->buf[c->pos + 1] == '\n')
		return 2;
	return 0;
}

static bool at_field_end(const struct ctl_csv *c)
{
	return c->pos >= c->len || c->buf[c->pos] == ',' || at_eol(c) > 0;
}

/* Opening quote already consumed. 0, or -1 at end of input (unterminated). */
static int read_quoted(struct rec_state *st, size_t f)
{
	struct ctl_csv *c = st->c;
	unsigned start_line = c->line;

	for (;;) {
		char ch;

		if (c->pos >= c->len) {
			/* Reported at the quote's line: that is where to look. */
			st->err = CTL_CSV_EUNTERMINATED;
			st->rec->bad_line = start_line;
			return -1;
		}
		ch = c->buf[c->pos++];
		if (ch == '"') {
			if (c->pos < c->len && c->buf[c->pos] == '"') {
				c->pos++;
				append(st, f, '"');
				continue;
			}
			break;
		}
		if (ch == '\n')
			c->line++;
		append(st, f, ch);
	}
	/* RFC 4180: only a separator may follow a closing quote. */
	if (!at_field_end(c)) {
		set_err(st, CTL_CSV_EQUOTE);
		while (!at_field_end(c))
			append(st, f, c->buf[c->pos++]);
	}
	return 0;
}

static void read_unquoted(struct rec_state *st, size_t f)
{
	struct ctl_csv *c = st->c;

	while (!at_field_end(c)) {
		char ch = c->buf[c->pos++];

		if (ch == '"')
			set_err(st, CTL_CSV_EQUOTE);
		append(st, f, ch);
	}
}

int ctl_csv_next(struct ctl_csv *c, struct ctl_csv_rec *rec)
{
	struct rec_state st = {c, rec, CTL_CSV_OK};
	size_t f, eol;

	rec->n = 0;
	rec->line = c->line;
	rec->bad_line = c->line;
	rec->blank = false;
	memset(rec->len, 0, sizeof(rec->len));
	if (c->pos >= c->len)
		return CTL_CSV_END;
	eol = at_eol(c);
	if (eol > 0) {
		c->pos += eol;
		c->line++;
		rec->n = 1;
		rec->blank = true;
		rec->field[0][0] = '\0';
		return CTL_CSV_OK;
	}
	for (;;) {
		f = rec->n++;
		if (c->pos < c->len && c->buf[c->pos] == '"') {
			c->pos++;
			if (read_quoted(&st, f) < 0)
				break;
		} else {
			read_unquoted(&st, f);
		}
		if (c->pos >= c->len)
			break;
		if (c->buf[c->pos] == ',') {
			c->pos++;
			continue;
		}
		eol = at_eol(c);
		c->pos += eol;
		c->line++;
		break;
	}
	for (f = 0; f < rec->n && f < CTL_CSV_MAX_FIELDS; f++)
		rec->field[f][rec->len[f]] = '\0';
	if (rec->n > CTL_CSV_MAX_FIELDS && st.err == CTL_CSV_OK)
		st.err = CTL_CSV_ETOOMANY;
	return st.err;
}
