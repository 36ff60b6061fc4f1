/* First-run bootstrap: state directory, local CA, server certificate, pool secret. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/config.h"
#include "daemon/bootstrap.h"

/* snprintf that fails the test on truncation (and keeps gcc's truncation lint quiet). */
static void fmt(char *out, size_t cap, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void fmt(char *out, size_t cap, const char *f, ...)
{
	va_list ap;
	int n;

	va_start(ap, f);
	n = vsnprintf(out, cap, f, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < cap);
}

struct fx {
	char dir[64];
	struct config cfg;
	char err[512];
};

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	strcpy(fx->dir, "/tmp/rtcauth-boot-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	config_defaults(&fx->cfg);
	strcpy(fx->cfg.domain, "example.test");
	strcpy(fx->cfg.fqdn, "sip1.example.test");
	/* Parents of the state dir do not exist yet: bootstrap makes them. */
	fmt(fx->cfg.state_dir, sizeof(fx->cfg.state_dir), "%s/a/b/state", fx->dir);
	fmt(fx->cfg.tls_cert, sizeof(fx->cfg.tls_cert), "%s/tls/server.crt", fx->cfg.state_dir);
	fmt(fx->cfg.tls_key, sizeof(fx->cfg.tls_key), "%s/tls/server.key", fx->cfg.state_dir);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	char cmd[256];
	fmt(cmd, sizeof(cmd), "chmod -R u+w '%s'; rm -rf '%s'", fx->dir, fx->dir);
	assert_int_equal(system(cmd), 0);
	free(fx);
	return 0;
}

static void path_of(const struct fx *fx, const char *rel, char *out)
{
	fmt(out, PATH_MAX, "%s/%s", fx->cfg.state_dir, rel);
}

static mode_t mode_of(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		fail_msg("%s missing", path);
	return st.st_mode & 07777;
}

static void bootstrap_ok(struct fx *fx)
{
	fx->err[0] = '\0';
	if (bootstrap_state(&fx->cfg, fx->err, sizeof(fx->err)) != 0)
		fail_msg("bootstrap failed: %s", fx->err);
}

static STACK_OF(X509) * read_certs(const char *path)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	BIO *b = BIO_new_file(path, "r");
	X509 *x;

	assert_non_null(b);
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
		sk_X509_push(sk, x);
	ERR_clear_error();
	BIO_free(b);
	return sk;
}

static EVP_PKEY *read_key(const char *path)
{
	BIO *b = BIO_new_file(path, "r");
	EVP_PKEY *k;

	assert_non_null(b);
	k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	assert_non_null(k);
	return k;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void test_bootstrap_creates_private_state_dir_and_files(void **state)
{
	struct fx *fx = *state;
	char p[PATH_MAX];
	struct stat st;

	bootstrap_ok(fx);
	assert_int_equal(mode_of(fx->cfg.state_dir), 0700);
	path_of(fx, "ca/ca.key", p);
	assert_int_equal(mode_of(p), 0600);
	path_of(fx, "ca/ca.crt", p);
	assert_int_equal(mode_of(p), 0644);
	path_of(fx, "tls/server.key", p);
	assert_int_equal(mode_of(p), 0600);
	path_of(fx, "tls/server.crt", p);
	assert_int_equal(mode_of(p), 0644);
	path_of(fx, "pool.secret", p);
	assert_int_equal(mode_of(p), 0600);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_size, 32);
	/* The database is the daemon's (store_open STORE_CREATE), not bootstrap's. */
	assert_int_equal(access(fx->cfg.sqlite_path, F_OK), -1);
}

static void test_bootstrap_server_cert_verifies_against_local_ca(void **state)
{
	struct fx *fx = *state;
	char p[PATH_MAX];
	STACK_OF(X509) * chain, *ca;
	X509_STORE *store;
	X509_STORE_CTX *ctx;
	X509 *leaf;
	EVP_PKEY *key;

	bootstrap_ok(fx);
	path_of(fx, "tls/server.crt", p);
	chain = read_certs(p);
	assert_int_equal(sk_X509_num(chain), 2); /* leaf, then the CA */
	leaf = sk_X509_value(chain, 0);
	path_of(fx, "ca/ca.crt", p);
	ca = read_certs(p);
	assert_int_equal(sk_X509_num(ca), 1);
	assert_int_equal(X509_cmp(sk_X509_value(chain, 1), sk_X509_value(ca, 0)), 0);

	store = X509_STORE_new();
	X509_STORE_add_cert(store, sk_X509_value(ca, 0));
	ctx = X509_STORE_CTX_new();
	X509_STORE_CTX_init(ctx, store, leaf, NULL);
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
	if (X509_verify_cert(ctx) != 1)
		fail_msg("verify: %s",
			 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	X509_STORE_CTX_cleanup(ctx);
	X509_STORE_CTX_init(ctx, store, leaf, NULL);
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
	assert_int_equal(X509_verify_cert(ctx), 1);

	/* Names: fqdn and domain as DNS, loopback as IP. */
	assert_int_equal(X509_check_host(leaf, "sip1.example.test", 0, 0, NULL), 1);
	assert_int_equal(X509_check_host(leaf, "example.test", 0, 0, NULL), 1);
	assert_int_equal(X509_check_host(leaf, "other.example.test", 0, 0, NULL), 0);
	assert_int_equal(X509_check_ip_asc(leaf, "127.0.0.1", 0), 1);

	/* The CA is a CA, the leaf is not. */
	assert_int_equal(X509_check_ca(sk_X509_value(ca, 0)), 1);
	assert_int_equal(X509_check_ca(leaf), 0);
	assert_true(X509_get_key_usage(sk_X509_value(ca, 0)) & KU_KEY_CERT_SIGN);
	assert_true(X509_get_extended_key_usage(leaf) & XKU_SSL_SERVER);
	assert_true(X509_get_extended_key_usage(leaf) & XKU_SSL_CLIENT);

	path_of(fx, "tls/server.key", p);
	key = read_key(p);
	assert_int_equal(X509_check_private_key(leaf, key), 1);
	path_of(fx, "ca/ca.key", p);
	EVP_PKEY_free(key);
	key = read_key(p);
	assert_int_equal(X509_check_private_key(sk_X509_value(ca, 0), key), 1);
	assert_int_equal(X509_check_private_key(leaf, key), 0);
	ERR_clear_error();

	EVP_PKEY_free(key);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	sk_X509_pop_free(chain, X509_free);
	sk_X509_pop_free(ca, X509_free);
}

static void test_bootstrap_second_run_changes_nothing(void **state)
{
	struct fx *fx = *state;
	static const char *const files[] = {"ca/ca.key", "ca/ca.crt", "tls/server.key",
					    "tls/server.crt", "pool.secret"};
	char *before[5];
	size_t len[5];
	char p[PATH_MAX];

	bootstrap_ok(fx);
	for (int i = 0; i < 5; i++) {
		path_of(fx, files[i], p);
		before[i] = slurp(p, &len[i]);
	}
	bootstrap_ok(fx);
	for (int i = 0; i < 5; i++) {
		size_t n;
		char *after;
		path_of(fx, files[i], p);
		after = slurp(p, &n);
		assert_int_equal(n, len[i]);
		assert_memory_equal(after, before[i], n);
		free(after);
		free(before[i]);
	}
}

static void test_bootstrap_tightens_existing_state_dir(void **state)
{
	struct fx *fx = *state;
	char cmd[PATH_MAX + 32];

	fmt(cmd, sizeof(cmd), "mkdir -p '%s'", fx->cfg.state_dir);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(chmod(fx->cfg.state_dir, 0755), 0);
	bootstrap_ok(fx);
	assert_int_equal(mode_of(fx->cfg.state_dir), 0700);
}

static void test_bootstrap_missing_configured_cert_is_error(void **state)
{
	struct fx *fx = *state;

	fmt(fx->cfg.tls_cert, sizeof(fx->cfg.tls_cert), "%s/custom.crt", fx->dir);
	assert_int_equal(bootstrap_state(&fx->cfg, fx->err, sizeof(fx->err)), -1);
	assert_non_null(strstr(fx->err, "custom.crt"));
	assert_non_null(strstr(fx->err, "does not exist"));
	/* Nothing was generated for a path the admin chose. */
	assert_int_equal(access(fx->cfg.tls_key, F_OK), -1);
}

static void test_bootstrap_uses_configured_cert_when_present(void **state)
{
	struct fx *fx = *state;
	char cmd[PATH_MAX * 2];

	/* Make a pair with a first bootstrap, then point a second config at copies. */
	bootstrap_ok(fx);
	fmt(cmd, sizeof(cmd), "cp -p '%s' '%s/c.crt' && cp -p '%s' '%s/c.key'", fx->cfg.tls_cert,
	    fx->dir, fx->cfg.tls_key, fx->dir);
	assert_int_equal(system(cmd), 0);
	fmt(fx->cfg.tls_cert, sizeof(fx->cfg.tls_cert), "%s/c.crt", fx->dir);
	fmt(fx->cfg.tls_key, sizeof(fx->cfg.tls_key), "%s/c.key", fx->dir);
	fmt(fx->cfg.state_dir, sizeof(fx->cfg.state_dir), "%s/other", fx->dir);
	bootstrap_ok(fx);
	fmt(cmd, sizeof(cmd), "%s/other/ca", fx->dir);
	assert_int_equal(access(cmd, F_OK), -1);
}

static void test_check_cert_detects_mismatched_key(void **state)
{
	struct fx *fx = *state;
	char ca_key[PATH_MAX];

	bootstrap_ok(fx);
	assert_int_equal(
	    bootstrap_check_cert(fx->cfg.tls_cert, fx->cfg.tls_key, fx->err, sizeof(fx->err)), 0);
	path_of(fx, "ca/ca.key", ca_key);
	assert_int_equal(bootstrap_check_cert(fx->cfg.tls_cert, ca_key, fx->err, sizeof(fx->err)),
			 -1);
	assert_non_null(strstr(fx->err, "does not match"));
	assert_non_null(strstr(fx->err, "ca.key"));
}

static void test_check_cert_rejects_missing_garbage_and_world_readable(void **state)
{
	struct fx *fx = *state;
	char junk[PATH_MAX];
	FILE *f;

	bootstrap_ok(fx);
	fmt(junk, sizeof(junk), "%s/junk.pem", fx->dir);
	f = fopen(junk, "w");
	assert_non_null(f);
	fputs("not a certificate\n", f);
	fclose(f);
	assert_int_equal(bootstrap_check_cert(junk, fx->cfg.tls_key, fx->err, sizeof(fx->err)), -1);
	assert_non_null(strstr(fx->err, "junk.pem"));
	assert_int_equal(
	    bootstrap_check_cert("/nonexistent/x.crt", fx->cfg.tls_key, fx->err, sizeof(fx->err)),
	    -1);
	assert_non_null(strstr(fx->err, "/nonexistent/x.crt"));

	assert_int_equal(chmod(fx->cfg.tls_key, 0644), 0);
	assert_int_equal(
	    bootstrap_check_cert(fx->cfg.tls_cert, fx->cfg.tls_key, fx->err, sizeof(fx->err)), -1);
	assert_non_null(strstr(fx->err, "readable by every user"));
}

static void test_bootstrap_reissues_missing_server_cert_with_same_ca(void **state)
{
	struct fx *fx = *state;
	char p[PATH_MAX];
	char *ca1, *ca2;
	size_t n1, n2;

	bootstrap_ok(fx);
	path_of(fx, "ca/ca.crt", p);
	ca1 = slurp(p, &n1);
	assert_int_equal(unlink(fx->cfg.tls_cert), 0);
	bootstrap_ok(fx);
	assert_int_equal(access(fx->cfg.tls_cert, F_OK), 0);
	ca2 = slurp(p, &n2);
	assert_int_equal(n1, n2);
	assert_memory_equal(ca1, ca2, n1);
	free(ca1);
	free(ca2);
}

static void test_bootstrap_unwritable_parent_is_clear_error(void **state)
{
	struct fx *fx = *state;
	char file[PATH_MAX];
	FILE *f;

	/* A file where a parent directory should be (fails even for root). */
	fmt(file, sizeof(file), "%s/plainfile", fx->dir);
	f = fopen(file, "w");
	assert_non_null(f);
	fclose(f);
	fmt(fx->cfg.state_dir, sizeof(fx->cfg.state_dir), "%s/state", file);
	assert_int_equal(bootstrap_state(&fx->cfg, fx->err, sizeof(fx->err)), -1);
	assert_non_null(strstr(fx->err, "cannot create directory"));
	assert_non_null(strstr(fx->err, "plainfile is not a directory"));
	assert_non_null(strstr(fx->err, "state_dir"));

	/* A read-only parent (only meaningful when not root). */
	if (geteuid() != 0) {
		char ro[PATH_MAX];
		fmt(ro, sizeof(ro), "%s/ro", fx->dir);
		assert_int_equal(mkdir(ro, 0500), 0);
		fmt(fx->cfg.state_dir, sizeof(fx->cfg.state_dir), "%s/state", ro);
		assert_int_equal(bootstrap_state(&fx->cfg, fx->err, sizeof(fx->err)), -1);
		assert_non_null(strstr(fx->err, "Permission denied"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_bootstrap_creates_private_state_dir_and_files,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bootstrap_server_cert_verifies_against_local_ca,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bootstrap_second_run_changes_nothing, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_bootstrap_tightens_existing_state_dir, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_bootstrap_missing_configured_cert_is_error, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_bootstrap_uses_configured_cert_when_present, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_check_cert_detects_mismatched_key, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(
		test_check_cert_rejects_missing_garbage_and_world_readable, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_bootstrap_reissues_missing_server_cert_with_same_ca, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bootstrap_unwritable_parent_is_clear_error, setup,
					    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
