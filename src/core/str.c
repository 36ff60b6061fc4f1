/* Counted string helpers. No allocation, no I/O. */
#include "core/str.h"

bool str_eq(struct str a, struct str b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

bool str_eq_cstr(struct str a, const char *c)
{
	return str_eq(a, str_cstr(c));
}

static inline unsigned char ascii_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

bool str_caseeq(struct str a, struct str b)
{
	/* byte by byte over len: strncasecmp would stop at an embedded NUL */
	if (a.len != b.len)
		return false;
	for (size_t i = 0; i < a.len; i++)
		if (ascii_lower((unsigned char)a.p[i]) != ascii_lower((unsigned char)b.p[i]))
			return false;
	return true;
}

bool str_caseeq_cstr(struct str a, const char *c)
{
	/* one pass over both, stopping at the first difference: callers test a
	 * token against several names, and most differ in the first byte */
	size_t i;

	for (i = 0; i < a.len; i++)
		if (c[i] == '\0' ||
		    ascii_lower((unsigned char)a.p[i]) != ascii_lower((unsigned char)c[i]))
			return false;
	return c[i] == '\0';
}

static bool is_lws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

struct str str_trim(struct str s)
{
	while (s.len && is_lws(s.p[0])) {
		s.p++;
		s.len--;
	}
	while (s.len && is_lws(s.p[s.len - 1]))
		s.len--;
	return s;
}

int str_to_u64(struct str s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (s.len == 0 || s.len > 20)
		return -1;
	for (size_t i = 0; i < s.len; i++) {
		unsigned d = (unsigned char)s.p[i] - '0';
		if (d > 9)
			return -1;
		if (v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

long str_chr(struct str s, char c)
{
	const char *q = s.len ? memchr(s.p, c, s.len) : NULL;
	return q ? (long)(q - s.p) : -1;
}

int str_copy(struct str s, char *dst, size_t cap)
{
	if (cap == 0 || s.len >= cap)
		return -1;
	if (s.len)
		memcpy(dst, s.p, s.len);
	dst[s.len] = '\0';
	return 0;
}

void str_copy_cstr(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

int str_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool str_list_has(const char *list, char sep, const char *item, size_t n)
{
	const char *p = list;

	while (*p) {
		const char *e = strchr(p, sep);
		size_t l = e ? (size_t)(e - p) : strlen(p);

		if (l == n && strncmp(p, item, n) == 0)
			return true;
		if (!e)
			break;
		p = e + 1;
	}
	return false;
}
