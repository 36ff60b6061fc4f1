/* Constant-time compare, wipe and random bytes over OpenSSL. */
#include "core/secmem.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

bool secmem_eq(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

void secmem_wipe(void *p, size_t len)
{
	OPENSSL_cleanse(p, len);
}

int secmem_random(void *p, size_t len)
{
	return RAND_bytes(p, (int)len) == 1 ? 0 : -1;
}
