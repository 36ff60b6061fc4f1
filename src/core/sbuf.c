/* Bounded output buffers; see sbuf.h. */
#include "core/sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void sbuf_put(struct sbuf *b, const void *data, size_t len)
{
	if (b->overflow)
		return;
	if (len > b->cap - b->len) {
		b->overflow = true;
		return;
	}
	if (len)
		memcpy(b->p + b->len, data, len);
	b->len += len;
}

void sbuf_puts(struct sbuf *b, const char *s)
{
	sbuf_put(b, s, strlen(s));
}

void sbuf_putstr(struct sbuf *b, struct str s)
{
	sbuf_put(b, s.p, s.len);
}

void sbuf_putc(struct sbuf *b, char c)
{
	sbuf_put(b, &c, 1);
}

void sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->overflow)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= b->cap - b->len) {
		b->overflow = true;
		return;
	}
	b->len += (size_t)n;
}

void sbuf_putu(struct sbuf *b, unsigned long v)
{
	char d[20];
	int n = 0;

	do
		d[n++] = (char)('0' + v % 10);
	while ((v /= 10) && n < 20);
	while (n && !b->overflow)
		sbuf_putc(b, d[--n]);
}

void sbuf_hex(struct sbuf *b, const unsigned char *data, size_t len)
{
	static const char digits[] = "0123456789abcdef";

	if (b->overflow)
		return;
	if (len > (b->cap - b->len) / 2) {
		b->overflow = true;
		return;
	}
	for (size_t i = 0; i < len; i++) {
		b->p[b->len++] = digits[data[i] >> 4];
		b->p[b->len++] = digits[data[i] & 15];
	}
}

const char *sbuf_cstr(struct sbuf *b)
{
	if (b->len < b->cap) {
		b->p[b->len] = '\0';
	} else {
		b->overflow = true;
		if (b->cap)
			b->p[b->cap - 1] = '\0';
	}
	return b->p;
}
