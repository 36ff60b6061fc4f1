/* core/md.h: message digests fetched once per process. */
#include "core/md.h"

#include <pthread.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static EVP_MD *sha1, *sha256;

static void fetch(void)
{
	sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
	sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

const EVP_MD *md_sha1(void)
{
	pthread_once(&once, fetch);
	return sha1;
}

const EVP_MD *md_sha256(void)
{
	pthread_once(&once, fetch);
	return sha256;
}

static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;
static pthread_key_t ctx_key;

static void ctx_free(void *p)
{
	EVP_MD_CTX_free(p);
}

static void ctx_setup(void)
{
	pthread_key_create(&ctx_key, ctx_free);
}

EVP_MD_CTX *md_thread_ctx(void)
{
	EVP_MD_CTX *ctx;

	pthread_once(&ctx_once, ctx_setup);
	ctx = pthread_getspecific(ctx_key);
	if (!ctx && (ctx = EVP_MD_CTX_new()) && pthread_setspecific(ctx_key, ctx) != 0) {
		EVP_MD_CTX_free(ctx);
		ctx = NULL;
	}
	return ctx;
}
