/*
 * Strict base64 and base64url (RFC 4648 §4 and §5). One encoder and one
 * decoder core shared by both alphabets; the standard form adds padding
 * around it. The decoder is the one JWS parsing relies on to give each token
 * exactly one byte form: it must never skip or tolerate a byte.
 */
#include "core/b64.h"

static const char std_alpha[65] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alpha[65] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t b64_url_len(size_t n)
{
	return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

size_t b64_std_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

size_t b64_decoded_max(size_t n)
{
	return n / 4 * 3 + (n % 4 > 1 ? n % 4 - 1 : 0);
}

/* Encode without padding; the caller checked the room. */
static size_t encode(const char *alpha, const uint8_t *in, size_t n, char *out)
{
	size_t o = 0, i = 0;

	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = alpha[v >> 18];
		out[o++] = alpha[(v >> 12) & 63];
		out[o++] = alpha[(v >> 6) & 63];
		out[o++] = alpha[v & 63];
	}
	if (n - i == 1) {
		out[o++] = alpha[in[i] >> 2];
		out[o++] = alpha[(in[i] & 3) << 4];
	} else if (n - i == 2) {
		out[o++] = alpha[in[i] >> 2];
		out[o++] = alpha[(in[i] & 3) << 4 | in[i + 1] >> 4];
		out[o++] = alpha[(in[i + 1] & 15) << 2];
	}
	return o;
}

long b64_url_encode(const uint8_t *in, size_t n, char *out, size_t cap)
{
	size_t len = b64_url_len(n);

	if (cap == 0)
		return -1;
	if (n > ((size_t)-1 - 4) / 4 * 3 || len >= cap) {
		out[0] = '\0';
		return -1;
	}
	encode(url_alpha, in, n, out);
	out[len] = '\0';
	return (long)len;
}

long b64_std_encode(const uint8_t *in, size_t n, char *out, size_t cap)
{
	size_t len = b64_std_len(n), o;

	if (cap == 0)
		return -1;
	if (n > ((size_t)-1 - 4) / 4 * 3 || len >= cap) {
		out[0] = '\0';
		return -1;
	}
	o = encode(std_alpha, in, n, out);
	while (o < len)
		out[o++] = '=';
	out[len] = '\0';
	return (long)len;
}

/* Value of c in the alphabet, or -1. */
static int sextet(char c, int url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

/* Decode unpadded text of either alphabet; RFC 4648 §3.5 canonical bits. */
static int decode(const char *in, size_t n, int url, uint8_t *out, size_t cap, size_t *outlen)
{
	size_t o = 0, i = 0, need = b64_decoded_max(n);
	uint32_t v = 0;
	int bits = 0;

	*outlen = 0;
	if (n % 4 == 1 || need > cap)
		return -1;
	for (i = 0; i < n; i++) {
		int s = sextet(in[i], url);

		if (s < 0)
			return -1;
		v = (v << 6 | (uint32_t)s) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(v >> bits);
		}
	}
	/* the unused low bits of the last character must be zero */
	if (bits && (v & ((1u << bits) - 1)))
		return -1;
	*outlen = o;
	return 0;
}

int b64_url_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *outlen)
{
	return decode(in, n, 1, out, cap, outlen);
}

int b64_std_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *outlen)
{
	size_t pad = 0;

	*outlen = 0;
	if (n % 4)
		return -1;
	if (n && in[n - 1] == '=')
		pad = (in[n - 2] == '=') ? 2 : 1;
	/* "====" or "x===" are caught by decode: n - pad leaves 2 or 3 */
	return decode(in, n - pad, 0, out, cap, outlen);
}
