/*
 * The vault: pool secret and password-derived keys. See vault.h.
 * Must never log, return or copy out a secret; every buffer that held one is
 * wiped before it goes out of scope.
 */
#include "vault/vault.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/params.h>

#include "core/secmem.h"

static uint8_t pool_secret[VAULT_SECRET_LEN];
static int pool_secret_loaded;

static int secret_path(const char *state_dir, char *path, size_t cap)
{
	int n = snprintf(path, cap, "%s/pool.secret", state_dir);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int vault_bootstrap_secret(const char *state_dir, char *err, size_t errlen)
{
	char path[4096];
	uint8_t buf[VAULT_SECRET_LEN];
	int fd, rc = -1;

	if (secret_path(state_dir, path, sizeof(path)) < 0) {
		snprintf(err, errlen, "state_dir path too long");
		return -1;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			return 0;
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	if (secmem_random(buf, sizeof(buf)) < 0) {
		snprintf(err, errlen, "no random bytes for %s", path);
		goto out;
	}
	if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) || fsync(fd) < 0) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	secmem_wipe(buf, sizeof(buf));
	close(fd);
	if (rc < 0)
		unlink(path);
	return rc;
}

int vault_init(const char *state_dir, char *err, size_t errlen)
{
	char path[4096];
	struct stat st;
	int fd;
	ssize_t n;

	if (secret_path(state_dir, path, sizeof(path)) < 0) {
		snprintf(err, errlen, "state_dir path too long");
		return -1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open pool secret %s: %s (run rtcauthd once to bootstrap)",
			 path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == 0 && (st.st_mode & 077)) {
		snprintf(err, errlen, "pool secret %s is readable by others (mode %o); chmod 600 it",
			 path, (unsigned)(st.st_mode & 0777));
		close(fd);
		return -1;
	}
	n = read(fd, pool_secret, sizeof(pool_secret));
	close(fd);
	if (n != (ssize_t)sizeof(pool_secret)) {
		snprintf(err, errlen, "pool secret %s has the wrong size (want %d bytes)", path,
			 VAULT_SECRET_LEN);
		secmem_wipe(pool_secret, sizeof(pool_secret));
		return -1;
	}
	pool_secret_loaded = 1;
	return 0;
}

void vault_shutdown(void)
{
	secmem_wipe(pool_secret, sizeof(pool_secret));
	pool_secret_loaded = 0;
}

int vault_mac(const char *purpose, const void *data, size_t len, uint8_t out[32])
{
	static const uint8_t zero = 0;
	EVP_MAC *mac;
	EVP_MAC_CTX *ctx;
	OSSL_PARAM params[2];
	size_t olen = 0;
	int rc = -1;

	if (!pool_secret_loaded)
		return -1;
	mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (!mac)
		return -1;
	ctx = EVP_MAC_CTX_new(mac);
	params[0] = OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (ctx && EVP_MAC_init(ctx, pool_secret, sizeof(pool_secret), params) == 1 &&
	    EVP_MAC_update(ctx, (const uint8_t *)purpose, strlen(purpose)) == 1 &&
	    EVP_MAC_update(ctx, &zero, 1) == 1 && EVP_MAC_update(ctx, data, len) == 1 &&
	    EVP_MAC_final(ctx, out, &olen, 32) == 1 && olen == 32)
		rc = 0;
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return rc;
}
