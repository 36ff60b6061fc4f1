/*
 * Secret handling primitives: constant-time comparison and wiping.
 * Every comparison of a MAC, a digest response or a key goes through here.
 */
#ifndef RTC_CORE_SECMEM_H
#define RTC_CORE_SECMEM_H

#include <stdbool.h>
#include <stddef.h>

/* Constant time in len (not in where the first difference is). */
bool secmem_eq(const void *a, const void *b, size_t len);
/* Zero memory in a way the compiler may not elide. */
void secmem_wipe(void *p, size_t len);
/* Cryptographically strong random bytes; 0 or -1. */
int secmem_random(void *p, size_t len);

#endif
