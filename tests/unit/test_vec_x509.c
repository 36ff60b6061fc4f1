/*
 * X.509 edge cases (issue 5, tests/vectors/x509, made once by make.py
 * there) through pki_verify_client with their root as a [pki]
 * trusted_root: a good client certificate, one past its validity and one
 * not yet valid (the time is passed in), a serverAuth-only one, one whose
 * keyUsage lacks digitalSignature, and name constraints (an intermediate
 * permitting e-mail names in example.test only).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "core/config.h"
#include "pki/pki.h"
#include "store/store.h"

#define Y2030 1893456000LL /* 2030-01-01 */
#define Y2019 1546300800LL /* 2019-01-01 */

struct fx {
	char dir[64];
	char vec[PATH_MAX];
	struct store *s;
	struct config *cfg;
};

static X509 *load(const struct fx *f, const char *name)
{
	char path[PATH_MAX + 64];
	FILE *fp;
	X509 *x;

	snprintf(path, sizeof(path), "%s/%s", f->vec, name);
	fp = fopen(path, "r");
	if (!fp)
		fail_msg("cannot open %s", path);
	x = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(x);
	return x;
}

/* Verify vector name (with the intermediate if given) at time now. */
static int verify(const struct fx *f, const char *name, const char *inter, int64_t now, char *uri)
{
	X509 *leaf = load(f, name);
	STACK_OF(X509) *chain = NULL;
	char buf[STORE_URI_MAX];
	int rc;

	if (inter) {
		chain = sk_X509_new_null();
		assert_non_null(chain);
		sk_X509_push(chain, load(f, inter));
	}
	rc = pki_verify_client(f->s, leaf, chain, now, uri ? uri : buf, STORE_URI_MAX);
	sk_X509_pop_free(chain, X509_free);
	X509_free(leaf);
	return rc;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	const char *top = getenv("RTC_TOP");
	char err[512] = "";
	struct store_user u;

	assert_non_null(f);
	snprintf(f->vec, sizeof(f->vec), "%s/tests/vectors/x509", top && *top ? top : ".");
	snprintf(f->dir, sizeof(f->dir), "/tmp/rtc-x509-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->cfg = calloc(1, sizeof(*f->cfg));
	assert_non_null(f->cfg);
	config_defaults(f->cfg);
	snprintf(f->cfg->domain, sizeof(f->cfg->domain), "example.test");
	snprintf(f->cfg->fqdn, sizeof(f->cfg->fqdn), "fe.example.test");
	snprintf(f->cfg->state_dir, sizeof(f->cfg->state_dir), "%s/state", f->dir);
	assert_int_equal(mkdir(f->cfg->state_dir, 0700), 0);
	snprintf(f->cfg->pki_trusted_root[0], PATH_MAX, "%s/root.pem", f->vec);
	f->cfg->n_pki_trusted_root = 1;
	f->cfg->pki_ocsp = false;
	snprintf(f->cfg->sqlite_path, sizeof(f->cfg->sqlite_path), "%s/rtcauth.db", f->dir);
	assert_int_equal(
	    store_open(f->cfg->sqlite_path, STORE_CREATE, 1000, &f->s, err, sizeof(err)), STORE_OK);
	memset(&u, 0, sizeof(u));
	assert_int_equal(store_uri_normalise("sip:alice@example.test", u.uri, u.user, u.domain),
			 STORE_OK);
	u.enabled = true;
	assert_int_equal(store_user_add(f->s, &u), STORE_OK);
	if (pki_init(f->cfg, err, sizeof(err)) != 0)
		fail_msg("pki_init: %s", err);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	pki_shutdown();
	store_close(f->s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f->cfg);
	free(f);
	return 0;
}

static void test_x509_good_client_certificate_maps_to_alice(void **state)
{
	char uri[STORE_URI_MAX] = "";

	assert_int_equal(verify(*state, "ok.pem", NULL, Y2030, uri), PKI_VERIFY_OK);
	assert_string_equal(uri, "sip:alice@example.test");
}

static void test_x509_expired_certificate_is_refused(void **state)
{
	assert_int_equal(verify(*state, "expired.pem", NULL, Y2030, NULL), PKI_VERIFY_EXPIRED);
	/* the same certificate inside its validity is fine */
	assert_int_equal(verify(*state, "expired.pem", NULL, 1593561600LL, NULL), PKI_VERIFY_OK);
}

static void test_x509_not_yet_valid_certificate_is_refused(void **state)
{
	assert_int_equal(verify(*state, "ok.pem", NULL, Y2019, NULL), PKI_VERIFY_EXPIRED);
}

static void test_x509_server_auth_only_certificate_is_refused(void **state)
{
	assert_int_equal(verify(*state, "eku-server.pem", NULL, Y2030, NULL), PKI_VERIFY_UNTRUSTED);
}

static void test_x509_key_usage_without_digital_signature_is_refused(void **state)
{
	assert_int_equal(verify(*state, "ku-certsign.pem", NULL, Y2030, NULL),
			 PKI_VERIFY_UNTRUSTED);
}

static void test_x509_name_constraints_are_enforced(void **state)
{
	assert_int_equal(verify(*state, "nc-ok.pem", "nc-ca.pem", Y2030, NULL), PKI_VERIFY_OK);
	assert_int_equal(verify(*state, "nc-bad.pem", "nc-ca.pem", Y2030, NULL),
			 PKI_VERIFY_UNTRUSTED);
	/* without the intermediate there is no chain at all */
	assert_int_equal(verify(*state, "nc-ok.pem", NULL, Y2030, NULL), PKI_VERIFY_UNTRUSTED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_x509_good_client_certificate_maps_to_alice),
	    cmocka_unit_test(test_x509_expired_certificate_is_refused),
	    cmocka_unit_test(test_x509_not_yet_valid_certificate_is_refused),
	    cmocka_unit_test(test_x509_server_auth_only_certificate_is_refused),
	    cmocka_unit_test(test_x509_key_usage_without_digital_signature_is_refused),
	    cmocka_unit_test(test_x509_name_constraints_are_enforced),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
