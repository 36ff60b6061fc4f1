/*
 * Strict base64 (RFC 4648 §4, with padding) and base64url (RFC 4648 §5,
 * without padding, as JWS uses it: RFC 7515 §2). Decoders accept exactly one
 * encoding of each byte string: any byte outside the alphabet (whitespace,
 * '=', the other alphabet's '+' '/' or '-' '_'), a length that no encoding has,
 * or non-zero unused trailing bits is an error. Nothing allocates; every
 * output is bounded by the caller's capacity.
 */
#ifndef RTC_CORE_B64_H
#define RTC_CORE_B64_H

#include <stddef.h>
#include <stdint.h>

/* Characters of the base64url encoding of n bytes (no padding, no NUL). */
size_t b64_url_len(size_t n);
/* Characters of the standard encoding of n bytes, padding included, no NUL. */
size_t b64_std_len(size_t n);
/* Bytes that decoding n characters can produce at most (either alphabet). */
size_t b64_decoded_max(size_t n);

/*
 * Encode n bytes into out, NUL-terminated. cap counts the NUL. Returns the
 * number of characters written (without the NUL), or -1 if cap is too small
 * (out is then an empty string when cap > 0).
 */
long b64_url_encode(const uint8_t *in, size_t n, char *out, size_t cap);
long b64_std_encode(const uint8_t *in, size_t n, char *out, size_t cap);

/*
 * Decode n characters into out (cap bytes). 0 with *outlen set, or -1: a
 * byte outside the alphabet, an impossible length, padding (base64url) or
 * missing/misplaced padding (standard), non-canonical trailing bits, or more
 * output than cap. On error *outlen is 0 and out's content is unspecified.
 */
int b64_url_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *outlen);
int b64_std_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *outlen);

#endif
