/* Digest algorithm identifiers shared by config, vault, store and digest. */
#ifndef RTC_AUTH_DIGEST_ALG_H
#define RTC_AUTH_DIGEST_ALG_H

#include <stdbool.h>
#include <stddef.h>

#include "core/str.h"

/* Base hash; the -sess variants are a flag on the challenge/credentials. */
enum digest_alg {
	DIGEST_MD5 = 0,
	DIGEST_SHA256 = 1,
	DIGEST_SHA512_256 = 2,
	DIGEST_ALG_COUNT = 3,
};

/* Hash output size in bytes: 16, 32, 32. */
size_t digest_alg_len(enum digest_alg a);
/* "MD5", "SHA-256", "SHA-512-256". */
const char *digest_alg_name(enum digest_alg a);
/*
 * Parse an algorithm token as it appears on the wire or in the config
 * ("MD5", "MD5-sess", "SHA-256", "SHA-256-sess", "SHA-512-256", "SHA-512-256-sess",
 * case-insensitive). 0 or -1. *sess set for the -sess forms (may be NULL).
 */
int digest_alg_parse(struct str s, enum digest_alg *out, bool *sess);

#endif
