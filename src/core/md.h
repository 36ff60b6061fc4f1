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

/*
 * A digest context of the calling thread, for one hash at a time
 * (EVP_DigestInit_ex2 ... EVP_DigestFinal_ex with nothing in between that
 * takes it too); freed when the thread ends. A new context per hash showed
 * in profiles (allocation, provider context, cleansing). Hashes of secrets
 * leave only their output in it, as with any finished digest. NULL when
 * out of memory.
 */
EVP_MD_CTX *md_thread_ctx(void);

#endif
