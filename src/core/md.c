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
