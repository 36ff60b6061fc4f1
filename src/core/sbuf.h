/*
 * Output buffers with a hard capacity. Writers append; once a write does not
 * fit, the buffer is marked overflowed and every later write is ignored, so
 * callers check once at the end (sbuf_ok) instead of after every append.
 * The storage belongs to the caller (stack or arena); sbuf never allocates.
 */
#ifndef RTC_CORE_SBUF_H
#define RTC_CORE_SBUF_H

#include <stdbool.h>
#include <stddef.h>

#include "core/str.h"

struct sbuf {
	char *p;
	size_t len;
	size_t cap;
	bool overflow;
};

static inline void sbuf_init(struct sbuf *b, char *mem, size_t cap)
{
	b->p = mem;
	b->len = 0;
	b->cap = cap;
	b->overflow = false;
}

static inline bool sbuf_ok(const struct sbuf *b)
{
	return !b->overflow;
}

void sbuf_put(struct sbuf *b, const void *data, size_t len);
void sbuf_puts(struct sbuf *b, const char *s);
void sbuf_putstr(struct sbuf *b, struct str s);
void sbuf_putc(struct sbuf *b, char c);
void sbuf_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Decimal of v, without printf. */
void sbuf_putu(struct sbuf *b, unsigned long v);
/* Lower-case hex of len bytes. */
void sbuf_hex(struct sbuf *b, const unsigned char *data, size_t len);
/* NUL-terminate without counting the NUL in len (needs one spare byte). */
const char *sbuf_cstr(struct sbuf *b);

#endif
