/*
 * Message digests fetched once per process. EVP_sha256() and SHA256()
 * look the algorithm up in the provider store again at every use (an
 * implicit fetch); hot paths take these instead. NULL when the provider
 * lacks the algorithm.
 */
#ifndef RTC_CORE_MD_H
#define RTC_CORE_MD_H

#include <openssl/evp.h>

const EVP_MD *md_sha1(void);
const EVP_MD *md_sha256(void);

#endif
