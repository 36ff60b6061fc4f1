/*
 * Counted strings: a pointer and a length into someone else's buffer.
 * Parsers hand these out so that nothing is copied and nothing needs a NUL.
 * A struct str never owns memory; its lifetime is that of the buffer.
 */
#ifndef RTC_CORE_STR_H
#define RTC_CORE_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct str {
	const char *p;
	size_t len;
};

#define STR_LIT(s)                                                                                 \
	(struct str)                                                                               \
	{                                                                                          \
		(s), sizeof(s) - 1                                                                 \
	}
#define STR_NULL                                                                                   \
	(struct str)                                                                               \
	{                                                                                          \
		NULL, 0                                                                            \
	}
/* printf("%.*s", STR_FMT(s)) */
#define STR_FMT(s) (int)(s).len, (s).p

static inline struct str str_make(const char *p, size_t len)
{
	struct str s = {p, len};
	return s;
}

static inline struct str str_cstr(const char *c)
{
	struct str s = {c, c ? strlen(c) : 0};
	return s;
}

static inline bool str_empty(struct str s)
{
	return s.len == 0;
}

/* Byte-for-byte equality. Not for secrets: use secmem_eq. */
bool str_eq(struct str a, struct str b);
bool str_eq_cstr(struct str a, const char *c);
/* ASCII case-insensitive equality. */
bool str_caseeq(struct str a, struct str b);
bool str_caseeq_cstr(struct str a, const char *c);
/* The value of one hex digit (either case), or -1. */
int str_hexval(char c);
/* Is item (n bytes) one of the sep-separated members of the NUL-terminated
 * list (exact, case-sensitive)? */
bool str_list_has(const char *list, char sep, const char *item, size_t n);
/* Strip SP, HTAB, CR and LF at both ends. */
struct str str_trim(struct str s);
/* Decimal digits only, no sign, no overflow past max. 0 or -1. */
int str_to_u64(struct str s, uint64_t max, uint64_t *out);
/* Find byte c; returns offset or -1. */
long str_chr(struct str s, char c);
/* Copy into a NUL-terminated buffer; -1 if it does not fit. */
int str_copy(struct str s, char *dst, size_t cap);
/* Copy the C string src into dst (cap > 0 bytes), truncated to cap - 1
 * bytes: a bounded copy without snprintf's formatting machinery. */
void str_copy_cstr(char *dst, size_t cap, const char *src);

#endif
