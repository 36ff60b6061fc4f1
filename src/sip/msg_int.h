/*
 * Internals shared by msg.c and uri.c: character classes and the small
 * lexical helpers of RFC 3261 §25.1. Not part of the module interface.
 */
#ifndef RTC_SIP_MSG_INT_H
#define RTC_SIP_MSG_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/str.h"

/* Character class bits (sip_cc[c]). */
#define SIP_CC_TOKEN 0x01 /* token: alphanum / "-.!%*_+`'~" (RFC 3261 §25.1) */
#define SIP_CC_UNRES 0x02 /* unreserved: alphanum / mark "-_.!~*'()" */
#define SIP_CC_USER  0x04 /* user-unreserved "&=+$,;?/" */
#define SIP_CC_PASS  0x08 /* password extra "&=+$," */
#define SIP_CC_PARAM 0x10 /* param-unreserved "[]/:&+$" */
#define SIP_CC_HNV   0x20 /* hnv-unreserved "[]/?:+$" */
#define SIP_CC_HOST  0x40 /* hostname / IPv4: alphanum "-." */
#define SIP_CC_HEX   0x80

extern const unsigned char sip_cc[256];

static inline bool sip_is(unsigned char c, unsigned cls)
{
	return (sip_cc[c] & cls) != 0;
}

static inline bool sip_is_lws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Skip SP, HTAB and folded line ends (CRLF / LF followed by WSP) from i. */
static inline size_t sip_skip_lws(struct str s, size_t i)
{
	while (i < s.len && sip_is_lws(s.p[i]))
		i++;
	return i;
}

/*
 * Validate a generic-param list "a=b;c;d = "q"" (without the first ';'):
 * every element is a token name with an optional token/host/quoted-string
 * value, LWS allowed around ';' and '=' (RFC 3261 §25.1 generic-param).
 * 0 or -1. An empty list is valid.
 */
int sip_params_check(struct str params);

/* Length of a quoted-string starting at s.p[i] == '"' (both quotes
 * included), or 0 if unterminated or holding a bare CR/LF. */
size_t sip_quoted_len(struct str s, size_t i);

#endif
