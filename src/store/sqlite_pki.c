/*
 * PKI queries of the SQLite store (see store_pki.h and sqlite_int.h).
 * Must never log.
 */
#include "store/store_pki.h"
#include "store/sqlite_int.h"

#include <string.h>

enum { SL_REVOKED_AT = STORE_EXT_PKI_FIRST };

int store_cert_revoked_at(struct store *s, const char *serial, int64_t *revoked_at)
{
	static const char sql[] = "SELECT revoked_at FROM certificates WHERE serial = ?1";
	size_t n = serial ? strnlen(serial, STORE_CERT_SERIAL_MAX) : 0;
	sqlite3_stmt *st;
	int err = STORE_OK, rc;

	*revoked_at = 0;
	if (n == 0 || n >= STORE_CERT_SERIAL_MAX)
		return store_invalid(s, "serial");
	if (!(st = store_ext_stmt(s, SL_REVOKED_AT, sql, &err)))
		return err;
	if ((err = store_bind_text(s, st, 1, serial, STORE_CERT_SERIAL_MAX, "serial"))) {
		store_stmt_done(st);
		return err;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*revoked_at = sqlite3_column_int64(st, 0);
	else if (rc == SQLITE_DONE)
		err = STORE_NOTFOUND;
	else
		err = store_fail(s, rc);
	store_stmt_done(st);
	return err;
}
