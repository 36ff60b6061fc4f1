/*
 * rtcauthctl user import FILE.csv: all or nothing.
 *
 * Pass 1 reads every row and collects every problem (bad CSV, bad URI,
 * empty password, duplicate within the file, user already present) so that
 * the admin fixes the file in one round. Only a clean file goes to pass 2,
 * which parses the same bytes again and imports every row in one store
 * transaction. Passwords are never copied out of the file buffer and the
 * CSV record except into vault_set_password; both are wiped.
 */
#include "ctl/ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/secmem.h"
#include "ctl/csv.h"
#include "vault/vault.h"

#define IMPORT_MAX_BYTES (256u << 20) /* 256 MiB */

static const struct ctl_cmd_help h_import = {
    "user import", "FILE.csv", "Create many users from a CSV file, all or nothing.",
    "The file has the columns uri,password[,display_name] (RFC 4180 quoting: enclose\n"
    "a field holding ',' or '\"' in double quotes and double each '\"' inside). A first\n"
    "row whose first field is \"uri\" is a header and is skipped; blank lines are\n"
    "skipped. FILE may be - for standard input.\n"
    "Every row is checked first: each bad row is reported as FILE:LINE: reason and\n"
    "nothing is imported. A clean file is imported in one transaction.\n"};

enum row_kind { ROW_OK = 0, ROW_INVALID = 1, ROW_EXISTS = 2 };

struct row {
	unsigned line;
	enum row_kind kind;
	char *uri; /* normalised, NULL when the URI is bad */
	char *msg; /* NULL when the row is good */
};

struct import {
	const char *file;
	char *buf;
	size_t len;
	struct row *rows;
	size_t n_rows, cap_rows;
	size_t n_bad, n_invalid;
	struct ctl_csv_rec *rec;
};

/* Grow by copying so no stale copy of the passwords stays in freed memory. */
static int grow(char **buf, size_t len, size_t *cap)
{
	size_t ncap = *cap ? *cap * 2 : 65536;
	char *n;

	if (ncap > IMPORT_MAX_BYTES + 1)
		ncap = IMPORT_MAX_BYTES + 1;
	n = malloc(ncap);
	if (!n)
		return -1;
	if (*buf) {
		memcpy(n, *buf, len);
		secmem_wipe(*buf, *cap);
		free(*buf);
	}
	*buf = n;
	*cap = ncap;
	return 0;
}

static int read_file(struct import *im)
{
	int fd = strcmp(im->file, "-") == 0 ? STDIN_FILENO : open(im->file, O_RDONLY | O_CLOEXEC);
	size_t cap = 0;
	struct stat st;

	if (fd < 0) {
		ctl_err("cannot open %s: %s", im->file, strerror(errno));
		return CTL_EXIT_ERR;
	}
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		ctl_err("%s is a directory, not a CSV file", im->file);
		close(fd);
		return CTL_EXIT_ERR;
	}
	for (;;) {
		ssize_t r;

		if (im->len == cap) {
			if (cap > IMPORT_MAX_BYTES) {
				ctl_err("%s is too large (at most %u MiB); split it", im->file,
					IMPORT_MAX_BYTES >> 20);
				goto fail;
			}
			if (grow(&im->buf, im->len, &cap) < 0) {
				ctl_err("out of memory reading %s", im->file);
				goto fail;
			}
		}
		r = read(fd, im->buf + im->len, cap - im->len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ctl_err("cannot read %s: %s", im->file, strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		im->len += (size_t)r;
	}
	if (fd != STDIN_FILENO)
		close(fd);
	return 0;
fail:
	if (fd != STDIN_FILENO)
		close(fd);
	return CTL_EXIT_ERR;
}

static struct row *add_row(struct import *im, unsigned line)
{
	struct row *r;

	if (im->n_rows == im->cap_rows) {
		size_t ncap = im->cap_rows ? im->cap_rows * 2 : 1024;
		struct row *n = realloc(im->rows, ncap * sizeof(*n));

		if (!n)
			return NULL;
		im->rows = n;
		im->cap_rows = ncap;
	}
	r = &im->rows[im->n_rows++];
	memset(r, 0, sizeof(*r));
	r->line = line;
	return r;
}

static void row_bad(struct import *im, struct row *r, enum row_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void row_bad(struct import *im, struct row *r, enum row_kind kind, const char *fmt, ...)
{
	char msg[640];
	va_list ap;

	if (r->msg)
		return; /* the first problem of a row is enough */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->msg = strdup(msg);
	r->kind = kind;
	im->n_bad++;
	if (kind == ROW_INVALID)
		im->n_invalid++;
}

static bool is_header(const struct ctl_csv_rec *rec)
{
	return strcasecmp(rec->field[0], "uri") == 0;
}

static void check_record(struct import *im, struct row *r, int st, const struct ctl_csv_rec *rec)
{
	char uri[STORE_URI_MAX], user[STORE_URI_MAX], domain[STORE_URI_MAX];

	if (st == CTL_CSV_EUNTERMINATED) {
		/* The quote swallowed the rest of the file: point at the quote. */
		r->line = rec->bad_line;
		row_bad(im, r, ROW_INVALID,
			"unterminated quoted field (the row starting on line %u never ends)",
			rec->line);
		return;
	}
	if (st == CTL_CSV_ETOOMANY || (st == CTL_CSV_OK && rec->n > 3)) {
		row_bad(im, r, ROW_INVALID,
			"too many columns (%zu; expected uri,password[,display_name])", rec->n);
		return;
	}
	if (st != CTL_CSV_OK) {
		row_bad(im, r, ROW_INVALID, "%s", ctl_csv_strerror(st));
		return;
	}
	if (rec->len[0] >= STORE_URI_MAX ||
	    store_uri_normalise(rec->field[0], uri, user, domain) != STORE_OK)
		/* The value is not echoed: with swapped columns it would be a password. */
		row_bad(im, r, ROW_INVALID,
			"invalid SIP URI in the first column (expected sip:user@host, no port or "
			"parameters)");
	else
		r->uri = strdup(uri);
	if (rec->n < 2)
		row_bad(im, r, ROW_INVALID,
			"missing password (expected uri,password[,display_name])");
	else if (rec->len[1] == 0)
		row_bad(im, r, ROW_INVALID, "empty password");
	if (rec->n == 3 && rec->len[2] >= STORE_NAME_MAX)
		row_bad(im, r, ROW_INVALID, "display name too long (at most %d bytes)",
			STORE_NAME_MAX - 1);
}

static int cmp_row_uri(const void *a, const void *b)
{
	const struct row *x = *(const struct row *const *)a, *y = *(const struct row *const *)b;
	int c = strcmp(x->uri, y->uri);

	if (c)
		return c;
	return x->line < y->line ? -1 : x->line > y->line;
}

static int find_duplicates(struct import *im)
{
	struct row **idx = malloc((im->n_rows ? im->n_rows : 1) * sizeof(*idx));
	size_t n = 0, i, first;

	if (!idx)
		return -1;
	for (i = 0; i < im->n_rows; i++)
		if (im->rows[i].uri)
			idx[n++] = &im->rows[i];
	qsort(idx, n, sizeof(*idx), cmp_row_uri);
	for (i = 1, first = 0; i < n; i++) {
		if (strcmp(idx[first]->uri, idx[i]->uri) != 0) {
			first = i;
			continue;
		}
		row_bad(im, idx[i], ROW_INVALID, "duplicate of line %u (%s)", idx[first]->line,
			idx[i]->uri);
	}
	free(idx);
	return 0;
}

/* Pass 1. 0 when every row is good; an exit code otherwise (all printed). */
static int validate(struct ctl *c, struct import *im)
{
	struct ctl_csv csv;
	bool first = true;
	size_t i;
	int st;

	ctl_csv_init(&csv, im->buf, im->len);
	while ((st = ctl_csv_next(&csv, im->rec)) != CTL_CSV_END) {
		struct row *r;

		if (st == CTL_CSV_OK && im->rec->blank)
			continue;
		if (first && st == CTL_CSV_OK && is_header(im->rec)) {
			first = false;
			continue;
		}
		first = false;
		r = add_row(im, im->rec->line);
		if (!r) {
			ctl_err("out of memory reading %s", im->file);
			return CTL_EXIT_ERR;
		}
		check_record(im, r, st, im->rec);
		secmem_wipe(im->rec->field[1], sizeof(im->rec->field[1]));
	}
	if (find_duplicates(im) < 0) {
		ctl_err("out of memory checking %s", im->file);
		return CTL_EXIT_ERR;
	}
	for (i = 0; i < im->n_rows; i++) {
		struct row *r = &im->rows[i];
		struct store_user u;
		int rc;

		if (r->msg || !r->uri)
			continue;
		rc = store_user_get(c->store, r->uri, &u);
		if (rc == STORE_OK) {
			row_bad(im, r, ROW_EXISTS, "user %s already exists", r->uri);
		} else if (rc != STORE_NOTFOUND) {
			ctl_err("cannot check whether %s exists: %s (%s)", r->uri,
				store_strerror(rc), store_errmsg(c->store));
			return ctl_store_exit(rc);
		}
	}
	for (i = 0; i < im->n_rows; i++)
		if (im->rows[i].msg)
			fprintf(stderr, "%s:%u: %s\n", im->file, im->rows[i].line, im->rows[i].msg);
	if (im->n_bad > 0) {
		ctl_err("%s: %zu of %zu rows are bad; nothing was imported (fix them and run the "
			"import again)",
			im->file, im->n_bad, im->n_rows);
		return im->n_invalid ? CTL_EXIT_USAGE : CTL_EXIT_CONFLICT;
	}
	if (im->n_rows == 0) {
		ctl_err("%s: no users found (expected rows of uri,password[,display_name])",
			im->file);
		return CTL_EXIT_USAGE;
	}
	return 0;
}

static void progress(size_t done, size_t total, int *last)
{
	int pct = total ? (int)(done * 100 / total) : 100;
	int i;

	if (pct == *last)
		return;
	*last = pct;
	fputs("\rimporting [", stderr);
	for (i = 0; i < 40; i++)
		fputc(i < pct * 40 / 100 ? '#' : '.', stderr);
	fprintf(stderr, "] %3d%% %zu/%zu", pct, done, total);
	if (done == total)
		fputc('\n', stderr);
	fflush(stderr);
}

static int import_row(struct ctl *c, struct import *im, const struct ctl_csv_rec *rec)
{
	struct store_user u;
	char detail[PATH_MAX + 64];
	int rc;

	memset(&u, 0, sizeof(u));
	if (store_uri_normalise(rec->field[0], u.uri, u.user, u.domain) != STORE_OK)
		return STORE_INVALID; /* cannot happen: pass 1 checked the same bytes */
	if (rec->n == 3)
		memcpy(u.display_name, rec->field[2], rec->len[2] + 1);
	u.enabled = true;
	u.has_password = true;
	rc = store_user_add(c->store, &u);
	if (rc == STORE_OK)
		rc = vault_set_password(c->store, &u, rec->field[1], rec->len[1]);
	if (rc == STORE_OK) {
		snprintf(detail, sizeof(detail), "imported from %s line %u", im->file, rec->line);
		rc = ctl_audit(c, "user.import", u.uri, detail);
	}
	return rc;
}

/* Pass 2: the same records, now known good, in one transaction. */
static int import_all(struct ctl *c, struct import *im)
{
	bool tty = isatty(STDERR_FILENO), first = true;
	struct ctl_csv csv;
	size_t done = 0;
	int st, rc, last = -1;

	rc = store_begin(c->store);
	if (rc != STORE_OK)
		goto fail;
	ctl_csv_init(&csv, im->buf, im->len);
	while ((st = ctl_csv_next(&csv, im->rec)) != CTL_CSV_END) {
		if (st != CTL_CSV_OK) {
			rc = STORE_INVALID;
			goto fail;
		}
		if (im->rec->blank)
			continue;
		if (first && is_header(im->rec)) {
			first = false;
			continue;
		}
		first = false;
		rc = import_row(c, im, im->rec);
		secmem_wipe(im->rec->field[1], sizeof(im->rec->field[1]));
		if (rc != STORE_OK)
			goto fail;
		done++;
		if (tty)
			progress(done, im->n_rows, &last);
	}
	rc = store_commit(c->store);
	if (rc != STORE_OK) {
		store_rollback(c->store);
		ctl_err("%s: committing the import failed: %s (%s); nothing was imported", im->file,
			store_strerror(rc), store_errmsg(c->store));
		return CTL_EXIT_ERR;
	}
	printf("imported %zu users from %s\n", done, im->file);
	return CTL_EXIT_OK;
fail:
	if (tty && last >= 0)
		fputc('\n', stderr);
	store_rollback(c->store);
	if (rc == STORE_CONFLICT)
		ctl_err("%s:%u: user already exists (created meanwhile?); nothing was imported",
			im->file, im->rec->line);
	else
		ctl_err("%s:%u: import failed: %s (%s); nothing was imported", im->file,
			im->rec->line, store_strerror(rc), store_errmsg(c->store));
	return ctl_store_exit(rc) == CTL_EXIT_USAGE ? CTL_EXIT_ERR : ctl_store_exit(rc);
}

int ctl_user_import(struct ctl *c, int argc, char **argv)
{
	struct import im = {0};
	const char *pos[1];
	size_t i;
	int n, rc;

	if (ctl_args(&h_import, argc, argv, NULL, pos, 1, 1, &n, &rc))
		return rc;
	im.file = pos[0];
	rc = ctl_store(c);
	if (rc)
		return rc;
	im.rec = calloc(1, sizeof(*im.rec));
	if (!im.rec) {
		ctl_err("out of memory");
		return CTL_EXIT_ERR;
	}
	rc = read_file(&im);
	if (rc == 0)
		rc = validate(c, &im);
	if (rc == 0)
		rc = import_all(c, &im);

	secmem_wipe(im.rec, sizeof(*im.rec));
	free(im.rec);
	if (im.buf) {
		secmem_wipe(im.buf, im.len);
		free(im.buf);
	}
	for (i = 0; i < im.n_rows; i++) {
		free(im.rows[i].uri);
		free(im.rows[i].msg);
	}
	free(im.rows);
	return rc;
}
