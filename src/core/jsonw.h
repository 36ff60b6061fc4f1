/*
 * JSON text without jansson's writer, where that is safe and the same:
 * jsonw_compact writes what json_dumps(v, JSON_COMPACT) writes, byte for
 * byte (members in insertion order, no spaces), for values built only of
 * objects, arrays, integers, true, false, null and strings of printable
 * ASCII other than '"' and '\\' (nothing to escape), nested at most
 * JSONW_DEPTH deep. Anything else (a real, a string to escape, too deep,
 * or not fitting in cap bytes with its NUL) is -1, and the caller uses
 * jansson. jansson's writer checks every character for UTF-8 and escapes
 * and allocates as it goes: a few microseconds on every token and answer.
 */
#ifndef RTC_CORE_JSONW_H
#define RTC_CORE_JSONW_H

#include <stddef.h>

#include <jansson.h>

#define JSONW_DEPTH 16

/* The length written to buf (NUL-terminated), or -1. */
long jsonw_compact(const json_t *v, char *buf, size_t cap);

#endif
