/*
 * Compact JWS parsing, verification and signing (RFC 7515), with the rules
 * of RFC 8725: the algorithm comes from the key, never from the token; no
 * "none" except through the one explicitly named function for the unsigned
 * outer token of [MS-XOAUTH]. Untrusted bytes: every length is checked
 * before use and nothing is read outside [token, token + len).
 * Keys are in jose_key.c, signature primitives in jose_sig.c.
 */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/b64.h"
#include "core/jsonw.h"
#include "oauth/jose.h"
#include "oauth/jose_int.h"

static const char *const err_names[JOSE_ERR_COUNT] = {
    "ok",	 "malformed",	  "bad_base64url", "bad_json",	      "duplicate_claim",
    "too_deep",	 "too_large",	  "alg_none",	   "alg_not_allowed", "crit_unsupported",
    "no_key_id", "unknown_kid",	  "bad_signature", "bad_header",      "bad_key",
    "weak_key",	 "claim_missing", "claim_type",	   "no_memory",	      "internal",
};

const char *jose_strerror(int err)
{
	if (err > 0 || err <= -JOSE_ERR_COUNT)
		return "unknown_error";
	return err_names[-err];
}

static const char *const alg_names[] = {NULL, "RS256", "PS256", "ES256", "EdDSA"};

const char *jose_alg_name(enum jose_alg alg)
{
	if ((unsigned)alg >= sizeof(alg_names) / sizeof(alg_names[0]))
		return NULL;
	return alg_names[alg];
}

enum jose_alg jose_alg_from_name(const char *name)
{
	if (!name)
		return JOSE_ALG_UNKNOWN;
	for (unsigned i = 1; i < sizeof(alg_names) / sizeof(alg_names[0]); i++)
		if (strcmp(name, alg_names[i]) == 0)
			return (enum jose_alg)i;
	return JOSE_ALG_UNKNOWN;
}

/* Nesting depth of JSON text, strings skipped; stops early past max. */
static unsigned json_depth(const char *p, size_t n, unsigned max)
{
	unsigned d = 0, top = 0;
	int in_str = 0;

	for (size_t i = 0; i < n; i++) {
		char c = p[i];

		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = 0;
			continue;
		}
		if (c == '"') {
			in_str = 1;
		} else if (c == '{' || c == '[') {
			if (++d > top)
				top = d;
			if (top > max)
				return top;
		} else if ((c == '}' || c == ']') && d > 0) {
			d--;
		}
	}
	return top;
}

int jose_json_object(const char *text, size_t len, unsigned max_depth, json_t **out)
{
	json_error_t jerr;
	json_t *j;

	*out = NULL;
	if (json_depth(text, len, max_depth) > max_depth)
		return JOSE_ETOODEEP;
	j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j) {
		if (json_error_code(&jerr) == json_error_duplicate_key)
			return JOSE_EDUPLICATE;
		if (json_error_code(&jerr) == json_error_out_of_memory)
			return JOSE_ENOMEM;
		return JOSE_EJSON;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		return JOSE_EJSON;
	}
	*out = j;
	return 0;
}

json_t *jose_json_b64url(const unsigned char *p, size_t n)
{
	size_t cap = b64_url_len(n) + 1;
	char *s = malloc(cap);
	json_t *j = NULL;
	long len;

	if (!s)
		return NULL;
	len = b64_url_encode(p, n, s, cap);
	if (len >= 0)
		j = json_stringn(s, (size_t)len);
	free(s);
	return j;
}

void jose_jws_free(struct jose_jws *jws)
{
	if (!jws)
		return;
	json_decref(jws->header);
	json_decref(jws->payload);
	jose_key_free(jws->key);
	memset(jws, 0, sizeof(*jws));
}

/* Decode one base64url part of the token and parse it as a JSON object. */
static int decode_part(const char *p, size_t n, unsigned max_depth, json_t **out)
{
	size_t cap = b64_decoded_max(n), dlen;
	uint8_t *buf;
	int rc;

	*out = NULL;
	buf = malloc(cap ? cap : 1);
	if (!buf)
		return JOSE_ENOMEM;
	if (b64_url_decode(p, n, buf, cap, &dlen) != 0)
		rc = JOSE_EBASE64URL;
	else
		rc = jose_json_object((const char *)buf, dlen, max_depth, out);
	free(buf);
	return rc;
}

/* A part that must be base64url but is not parsed. */
static int check_b64(const char *p, size_t n)
{
	size_t cap = b64_decoded_max(n), dlen;
	uint8_t *buf = malloc(cap ? cap : 1);
	int rc;

	if (!buf)
		return JOSE_ENOMEM;
	rc = b64_url_decode(p, n, buf, cap, &dlen) ? JOSE_EBASE64URL : 0;
	free(buf);
	return rc;
}

/* An optional header member that must be a string when present. */
static int header_str(const json_t *h, const char *name, const char **out)
{
	const json_t *v = json_object_get(h, name);

	*out = NULL;
	if (!v)
		return 0;
	if (!json_is_string(v))
		return JOSE_EHEADER;
	*out = json_string_value(v);
	return 0;
}

/*
 * Header rules shared by every parse. *none tells whether alg is "none".
 * RFC 7515 §4.1.11: we implement no extension, so any crit is refused.
 * RFC 7797: an unencoded payload (b64 false) is not supported either.
 * jku, jwk, x5u and x5c are ignored: a key never comes from the token.
 */
static int check_header(struct jose_jws *jws, bool *none)
{
	const json_t *h = jws->header, *b64;
	const char *alg;
	int rc;

	*none = false;
	if (json_object_get(h, "crit"))
		return JOSE_ECRIT;
	b64 = json_object_get(h, "b64");
	if (b64 && !json_is_true(b64))
		return JOSE_EHEADER;
	if ((rc = header_str(h, "alg", &alg)) != 0)
		return rc;
	if ((rc = header_str(h, "kid", &jws->kid)) != 0 ||
	    (rc = header_str(h, "x5t", &jws->x5t)) != 0 ||
	    (rc = header_str(h, "x5t#S256", &jws->x5t_s256)) != 0 ||
	    (rc = header_str(h, "typ", &jws->typ)) != 0)
		return rc;
	if (!alg)
		return JOSE_EALG;
	if (strcmp(alg, "none") == 0) {
		*none = true;
		return 0;
	}
	jws->alg = jose_alg_from_name(alg);
	return jws->alg == JOSE_ALG_UNKNOWN ? JOSE_EALG : 0;
}

/*
 * Split and decode a compact token. sig gets the decoded signature
 * (JOSE_SIG_MAX bytes of room). *none is set when alg is "none".
 */
static int parse(const char *tok, size_t len, const struct jose_limits *lim, struct jose_jws *jws,
		 uint8_t *sig, size_t *siglen, bool *none)
{
	size_t max_token = lim && lim->max_token ? lim->max_token : JOSE_DEFAULT_MAX_TOKEN;
	unsigned depth = lim && lim->max_depth ? lim->max_depth : JOSE_DEFAULT_MAX_DEPTH;
	const char *d1, *d2;
	size_t slen;
	int rc;

	memset(jws, 0, sizeof(*jws));
	*siglen = 0;
	*none = false;
	if (!tok || len == 0)
		return JOSE_EMALFORMED;
	if (len > max_token)
		return JOSE_ETOOLARGE;
	d1 = memchr(tok, '.', len);
	if (!d1)
		return JOSE_EMALFORMED;
	d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok));
	if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)))
		return JOSE_EMALFORMED;
	if (d1 == tok)
		return JOSE_EMALFORMED;
	slen = len - (size_t)(d2 + 1 - tok);
	if (slen > b64_url_len(JOSE_SIG_MAX))
		return JOSE_EBADSIG;
	if (b64_url_decode(d2 + 1, slen, sig, JOSE_SIG_MAX, siglen) != 0)
		return JOSE_EBASE64URL;
	if ((rc = decode_part(tok, (size_t)(d1 - tok), depth, &jws->header)) != 0)
		goto out;
	if (lim && lim->raw_payload)
		rc = check_b64(d1 + 1, (size_t)(d2 - d1 - 1));
	else
		rc = decode_part(d1 + 1, (size_t)(d2 - d1 - 1), depth, &jws->payload);
	if (rc)
		goto out;
	jws->signing_input_len = (size_t)(d2 - tok);
	rc = check_header(jws, none);
out:
	if (rc)
		jose_jws_free(jws);
	return rc;
}

int jose_verify(const char *token, size_t len, const struct jose_limits *lim,
		jose_key_lookup_fn lookup, void *arg, struct jose_jws *out)
{
	uint8_t sig[JOSE_SIG_MAX];
	size_t siglen;
	bool none;
	int rc, lerr = JOSE_EUNKNOWNKID;

	rc = parse(token, len, lim, out, sig, &siglen, &none);
	if (rc)
		return rc;
	if (none) {
		rc = JOSE_EALG_NONE;
		goto out;
	}
	if (!out->kid && !out->x5t && !out->x5t_s256) {
		rc = JOSE_ENOKEYID;
		goto out;
	}
	out->key = lookup(arg, out, &lerr);
	if (!out->key) {
		rc = lerr ? lerr : JOSE_EUNKNOWNKID;
		goto out;
	}
	/* RFC 8725 §3.1: the key's algorithm, not the token's */
	if (out->key->alg != out->alg) {
		rc = JOSE_EALG;
		goto out;
	}
	rc = jose_verify_raw(out->key, (const uint8_t *)token, out->signing_input_len, sig, siglen);
out:
	if (rc)
		jose_jws_free(out);
	return rc;
}

static struct jose_key *keyset_lookup(void *arg, const struct jose_jws *jws, int *err)
{
	const struct jose_key *k = jose_keyset_find(arg, jws->kid, jws->x5t, jws->x5t_s256);

	if (!k) {
		*err = JOSE_EUNKNOWNKID;
		return NULL;
	}
	return jose_key_ref((struct jose_key *)k);
}

int jose_verify_keyset(const char *token, size_t len, const struct jose_limits *lim,
		       const struct jose_keyset *ks, struct jose_jws *out)
{
	return jose_verify(token, len, lim, keyset_lookup, (void *)ks, out);
}

int jose_parse_unsigned_outer(const char *token, size_t len, const struct jose_limits *lim,
			      struct jose_jws *out)
{
	uint8_t sig[JOSE_SIG_MAX];
	size_t siglen;
	bool none;
	int rc;

	rc = parse(token, len, lim, out, sig, &siglen, &none);
	if (rc)
		return rc;
	/* RFC 7515 Appendix A.5: alg "none" and an empty signature part */
	if (!none)
		rc = JOSE_EALG;
	else if (out->signing_input_len + 1 != len || siglen != 0)
		rc = JOSE_EMALFORMED;
	if (rc)
		jose_jws_free(out);
	return rc;
}

/* b64url(json) appended at buf + *off; buf has room (checked by caller). */
static int put_b64(char *buf, size_t cap, size_t *off, const uint8_t *p, size_t n)
{
	long w = b64_url_encode(p, n, buf + *off, cap - *off);

	if (w < 0)
		return JOSE_EINTERNAL;
	*off += (size_t)w;
	return 0;
}

/* The compact JSON of o: in fast (cap bytes) when jsonw can write it (the
 * same text as json_dumps, without its allocation and per-character
 * checks), else from json_dumps in *heap (to be freed). NULL when out of
 * memory. */
static const char *dump_compact(const json_t *o, char *fast, size_t cap, char **heap)
{
	*heap = NULL;
	if (jsonw_compact(o, fast, cap) >= 0)
		return fast;
	*heap = json_dumps(o, JSON_COMPACT);
	return *heap;
}

/* "b64url(header).b64url(payload)" in a malloc'd buffer with room for a signature. */
static int signing_input(const json_t *header, const json_t *payload, char **buf, size_t *len,
			 size_t *cap)
{
	char hfast[512], pfast[4096], *hheap, *pheap;
	const char *h = dump_compact(header, hfast, sizeof(hfast), &hheap);
	const char *p = dump_compact(payload, pfast, sizeof(pfast), &pheap);
	int rc = JOSE_ENOMEM;

	*buf = NULL;
	if (!h || !p)
		goto out;
	*cap = b64_url_len(strlen(h)) + b64_url_len(strlen(p)) + b64_url_len(JOSE_SIG_MAX) + 3;
	*buf = malloc(*cap);
	if (!*buf)
		goto out;
	*len = 0;
	if ((rc = put_b64(*buf, *cap, len, (const uint8_t *)h, strlen(h))) != 0)
		goto out;
	(*buf)[(*len)++] = '.';
	rc = put_b64(*buf, *cap, len, (const uint8_t *)p, strlen(p));
out:
	free(hheap);
	free(pheap);
	if (rc) {
		free(*buf);
		*buf = NULL;
	}
	return rc;
}

int jose_sign_compact(const json_t *header, const json_t *payload, jose_signer_fn signer, void *arg,
		      char **out, size_t *outlen)
{
	const char *algname = json_string_value(json_object_get(header, "alg"));
	enum jose_alg alg = jose_alg_from_name(algname);
	uint8_t sig[JOSE_SIG_MAX];
	size_t len, cap, siglen = 0;
	char *buf = NULL;
	int rc;

	*out = NULL;
	if (outlen)
		*outlen = 0;
	if (!json_is_object(header) || !json_is_object(payload))
		return JOSE_EJSON;
	if (algname && strcmp(algname, "none") == 0)
		return JOSE_EALG_NONE;
	if (alg == JOSE_ALG_UNKNOWN || json_object_get(header, "crit"))
		return alg == JOSE_ALG_UNKNOWN ? JOSE_EALG : JOSE_ECRIT;
	if ((rc = signing_input(header, payload, &buf, &len, &cap)) != 0)
		return rc;
	if (signer(arg, (const uint8_t *)buf, len, sig, sizeof(sig), &siglen) != 0 || siglen == 0 ||
	    siglen > sizeof(sig) ||
	    ((alg == JOSE_ALG_ES256 || alg == JOSE_ALG_EDDSA) && siglen != 64)) {
		rc = JOSE_EINTERNAL;
		goto out;
	}
	buf[len++] = '.';
	if ((rc = put_b64(buf, cap, &len, sig, siglen)) != 0)
		goto out;
	*out = buf;
	buf = NULL;
	if (outlen)
		*outlen = len;
out:
	free(buf);
	return rc;
}

int jose_unsigned_compact(const json_t *header, const json_t *payload, char **out, size_t *outlen)
{
	json_t *h = header ? json_incref((json_t *)header)
			   : json_pack("{s:s,s:s}", "typ", "JWT", "alg", "none");
	const char *alg = json_string_value(json_object_get(h, "alg"));
	size_t len, cap;
	char *buf = NULL;
	int rc;

	*out = NULL;
	if (outlen)
		*outlen = 0;
	if (!h)
		return JOSE_ENOMEM;
	if (!json_is_object(h) || !json_is_object(payload)) {
		rc = JOSE_EJSON;
	} else if (!alg || strcmp(alg, "none") != 0) {
		rc = JOSE_EALG;
	} else if ((rc = signing_input(h, payload, &buf, &len, &cap)) == 0) {
		buf[len++] = '.';
		buf[len] = '\0';
		*out = buf;
		if (outlen)
			*outlen = len;
	}
	json_decref(h);
	return rc;
}

int jose_claim_str(const json_t *payload, const char *name, const char **out)
{
	const json_t *v = json_object_get(payload, name);

	*out = NULL;
	if (!v)
		return JOSE_ECLAIM_MISSING;
	if (!json_is_string(v))
		return JOSE_ECLAIM_TYPE;
	*out = json_string_value(v);
	return 0;
}

int jose_claim_time(const json_t *payload, const char *name, int64_t *out)
{
	const json_t *v = json_object_get(payload, name);

	*out = 0;
	if (!v)
		return JOSE_ECLAIM_MISSING;
	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0)
			return JOSE_ECLAIM_TYPE;
		*out = (int64_t)json_integer_value(v);
		return 0;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);

		if (!isfinite(d) || d < 0 || d > 9007199254740992.0)
			return JOSE_ECLAIM_TYPE;
		*out = (int64_t)d;
		return 0;
	}
	if (json_is_string(v)) {
		/* [MS-XOAUTH] tokens: "nbf":"1325376000" */
		const char *s = json_string_value(v);
		size_t n = json_string_length(v);
		int64_t t = 0;

		if (n == 0 || n > 12)
			return JOSE_ECLAIM_TYPE;
		for (size_t i = 0; i < n; i++) {
			if (s[i] < '0' || s[i] > '9')
				return JOSE_ECLAIM_TYPE;
			t = t * 10 + (s[i] - '0');
		}
		*out = t;
		return 0;
	}
	return JOSE_ECLAIM_TYPE;
}
