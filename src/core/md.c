/* core/md.h: message digests fetched once per process. */
#include "core/md.h"

#include <pthread.h>

#include "core/tlocal.h"

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

static void *ctx_new(void)
{
	return EVP_MD_CTX_new();
}

static void ctx_free(void *p)
{
	EVP_MD_CTX_free(p);
}

static struct tlocal thread_ctx = TLOCAL_INIT(ctx_new, ctx_free);

EVP_MD_CTX *md_thread_ctx(void)
{
	return tlocal_get(&thread_ctx);
}
