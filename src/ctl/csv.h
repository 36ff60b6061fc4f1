/*
 * A small, bounded CSV reader (RFC 4180) for `rtcauthctl user import`.
 *
 * It reads records from a buffer the caller owns. Fields are separated by
 * ',' and records by LF or CRLF; a field may be enclosed in double quotes,
 * and then may hold ',', line breaks and '""' (one literal quote). A quote
 * inside an unquoted field, or anything but a separator after a closing
 * quote, is an error rather than a guess: the input holds passwords, and a
 * misread password is worse than a rejected row.
 *
 * Every call consumes one whole record, even a bad one, so a caller can
 * report every bad row of a file in one run. Fields are copied into the
 * record (at most CTL_CSV_MAX_FIELDS of them, each at most CTL_CSV_FIELD_MAX
 * bytes); the record may hold secrets: wipe it when done.
 */
#ifndef RTC_CTL_CSV_H
#define RTC_CTL_CSV_H

#include <stdbool.h>
#include <stddef.h>

#define CTL_CSV_MAX_FIELDS 8
#define CTL_CSV_FIELD_MAX  1024

enum ctl_csv_status {
	CTL_CSV_OK = 0,
	CTL_CSV_END = 1,	    /* no more records */
	CTL_CSV_EUNTERMINATED = -1, /* a quoted field runs to the end of the input */
	CTL_CSV_ETOOMANY = -2,	    /* more than CTL_CSV_MAX_FIELDS fields */
	CTL_CSV_ETOOLONG = -3,	    /* a field longer than CTL_CSV_FIELD_MAX bytes */
	CTL_CSV_EQUOTE = -4,	    /* stray quote, or text after a closing quote */
	CTL_CSV_ENUL = -5,	    /* a NUL byte */
};

struct ctl_csv {
	const char *buf;
	size_t len;
	size_t pos;
	unsigned line; /* line number (1-based) at pos */
};

struct ctl_csv_rec {
	unsigned line;	   /* line on which the record starts */
	unsigned bad_line; /* line of the first error (the quote's line if unterminated) */
	size_t n;	   /* fields in the record (may exceed CTL_CSV_MAX_FIELDS) */
	bool blank;	   /* the record was an empty line */
	size_t len[CTL_CSV_MAX_FIELDS];
	char field[CTL_CSV_MAX_FIELDS][CTL_CSV_FIELD_MAX + 1]; /* NUL-terminated */
};

void ctl_csv_init(struct ctl_csv *c, const void *buf, size_t len);

/*
 * Read the next record into rec. Returns CTL_CSV_OK, CTL_CSV_END, or a
 * negative ctl_csv_status for a malformed record (which is consumed; the
 * next call reads the record after it). On error rec->n and the fields read
 * so far are still filled (truncated where too long).
 */
int ctl_csv_next(struct ctl_csv *c, struct ctl_csv_rec *rec);

/* A short English description of a ctl_csv_status. */
const char *ctl_csv_strerror(int status);

#endif
