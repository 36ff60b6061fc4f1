/*
 * The PKI part of the SQLite store (store_pki.h): the revocation time of a
 * certificate by serial, read through one cached statement: 0 for a good
 * certificate, the time once revoked, NOTFOUND for a serial never issued,
 * INVALID for an empty or oversized serial, UNAVAILABLE when the database
 * cannot answer (never NOTFOUND, which would read as "revoked" for the
 * built-in CA, or as "good").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store/store.h"
#include "store/store_pki.h"

struct fx {
	char dir[64];
	char path[128];
	struct store *s;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	snprintf(f->dir, sizeof(f->dir), "/tmp/rtcauth-storepki.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/db", f->dir);
	assert_int_equal(store_open(f->path, STORE_CREATE, 100, &f->s, err, sizeof(err)), STORE_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char p[160];

	store_close(f->s);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", f->path);
	unlink(p);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void add_cert(struct store *s, const char *serial)
{
	struct store_cert *c = calloc(1, sizeof(*c));

	snprintf(c->serial, sizeof(c->serial), "%s", serial);
	snprintf(c->uri, sizeof(c->uri), "sip:alice@example.test");
	snprintf(c->subject, sizeof(c->subject), "CN=alice");
	c->not_before = 1700000000;
	c->not_after = 1700000000 + 86400;
	c->issued = 1700000000;
	snprintf(c->pem, sizeof(c->pem),
		 "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n");
	assert_int_equal(store_cert_add(s, c), STORE_OK);
	free(c);
}

static void test_store_cert_revoked_at_is_zero_then_the_revocation_time(void **state)
{
	struct fx *f = *state;
	int64_t t = -1;
	int n = 0;

	add_cert(f->s, "1A2B");
	add_cert(f->s, "3C4D");
	assert_int_equal(store_cert_revoked_at(f->s, "1A2B", &t), STORE_OK);
	assert_int_equal(t, 0);
	assert_int_equal(store_cert_revoke(f->s, "1A2B", 1700000123, "keyCompromise", &n),
			 STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(store_cert_revoked_at(f->s, "1A2B", &t), STORE_OK);
	assert_int_equal(t, 1700000123);
	/* the other certificate stays good; the statement is reused */
	assert_int_equal(store_cert_revoked_at(f->s, "3C4D", &t), STORE_OK);
	assert_int_equal(t, 0);
}

static void test_store_cert_revoked_at_unknown_serial_is_notfound(void **state)
{
	struct fx *f = *state;
	int64_t t = -1;

	add_cert(f->s, "1A2B");
	assert_int_equal(store_cert_revoked_at(f->s, "1A2C", &t), STORE_NOTFOUND);
	assert_int_equal(t, 0);
	/* serials are stored upper case: a lower-case one is another serial */
	assert_int_equal(store_cert_revoked_at(f->s, "1a2b", &t), STORE_NOTFOUND);
}

static void test_store_cert_revoked_at_refuses_empty_and_oversized_serials(void **state)
{
	struct fx *f = *state;
	char big[STORE_CERT_SERIAL_MAX + 8];
	int64_t t;

	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(store_cert_revoked_at(f->s, "", &t), STORE_INVALID);
	assert_int_equal(store_cert_revoked_at(f->s, NULL, &t), STORE_INVALID);
	assert_int_equal(store_cert_revoked_at(f->s, big, &t), STORE_INVALID);
}

/* A database that cannot answer (here: the table gone under the cached
 * statement) is UNAVAILABLE, never NOTFOUND. */
static void test_store_cert_revoked_at_unanswerable_database_is_unavailable(void **state)
{
	struct fx *f = *state;
	sqlite3 *db;
	int64_t t;

	add_cert(f->s, "1A2B");
	assert_int_equal(store_cert_revoked_at(f->s, "1A2B", &t), STORE_OK);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DROP TABLE certificates", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_cert_revoked_at(f->s, "1A2B", &t), STORE_UNAVAILABLE);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_store_cert_revoked_at_is_zero_then_the_revocation_time),
	    T(test_store_cert_revoked_at_unknown_serial_is_notfound),
	    T(test_store_cert_revoked_at_refuses_empty_and_oversized_serials),
	    T(test_store_cert_revoked_at_unanswerable_database_is_unavailable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
