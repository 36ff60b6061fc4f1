/*
 * Digest algorithm identifiers: names, sizes, wire tokens. No hashing here
 * (digest.c does it), no allocation, no I/O.
 */
#include "auth/digest_alg.h"

static const struct {
	const char *name;
	size_t len;
} algs[DIGEST_ALG_COUNT] = {
    [DIGEST_MD5] = {"MD5", 16},
    [DIGEST_SHA256] = {"SHA-256", 32},
    [DIGEST_SHA512_256] = {"SHA-512-256", 32},
};

size_t digest_alg_len(enum digest_alg a)
{
	if ((unsigned)a >= DIGEST_ALG_COUNT)
		return 0;
	return algs[a].len;
}

const char *digest_alg_name(enum digest_alg a)
{
	if ((unsigned)a >= DIGEST_ALG_COUNT)
		return "unknown";
	return algs[a].name;
}

/* RFC 7616 §3.3: the algorithm token, optionally with the "-sess" suffix. */
int digest_alg_parse(struct str s, enum digest_alg *out, bool *sess)
{
	static const struct str suffix = {"-sess", 5};
	bool is_sess = false;

	if (s.len > suffix.len &&
	    str_caseeq(str_make(s.p + s.len - suffix.len, suffix.len), suffix)) {
		is_sess = true;
		s.len -= suffix.len;
	}
	for (unsigned i = 0; i < DIGEST_ALG_COUNT; i++) {
		if (str_caseeq_cstr(s, algs[i].name)) {
			if (out)
				*out = (enum digest_alg)i;
			if (sess)
				*sess = is_sess;
			return 0;
		}
	}
	return -1;
}
