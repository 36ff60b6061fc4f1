/*
 * SIP URI normalisation for the store's keys (users.uri, registrations.aor).
 * One canonical spelling per user: "sip:" + user part as written + "@" +
 * host in lower case. Strict on purpose: anything that is not a plain
 * user@host (ports, parameters, headers, passwords, name-addr brackets,
 * spaces, control or non-ASCII bytes) is refused rather than guessed at.
 * No allocation, no I/O.
 */
#include "store/store.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

/* RFC 3261 §25.1: user = 1*( unreserved / escaped / user-unreserved ). */
static bool user_char_ok(unsigned char c)
{
	if (isalnum(c))
		return true;
	return c != '\0' && strchr("-_.!~*'()&=+$,;?/", c) != NULL;
}

static bool is_hex(unsigned char c)
{
	return isxdigit(c) != 0;
}

static int check_user(const char *p, size_t len)
{
	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '%') {
			if (i + 2 >= len || !is_hex((unsigned char)p[i + 1]) ||
			    !is_hex((unsigned char)p[i + 2]))
				return -1;
			i += 2;
			continue;
		}
		if (!user_char_ok(c))
			return -1;
	}
	return 0;
}

/* hostname (labels of letters, digits, '-', no empty label) or [IPv6]. */
static int check_host(const char *p, size_t len)
{
	if (len == 0)
		return -1;
	if (p[0] == '[') {
		if (len < 3 || p[len - 1] != ']')
			return -1;
		for (size_t i = 1; i + 1 < len; i++) {
			unsigned char c = (unsigned char)p[i];
			if (!is_hex(c) && c != ':' && c != '.')
				return -1;
		}
		return 0;
	}
	if (p[0] == '.' || p[len - 1] == '.' || p[0] == '-')
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '.') {
			if (p[i + 1] == '.')
				return -1;
			continue;
		}
		if (!isalnum(c) && c != '-')
			return -1;
	}
	return 0;
}

int store_uri_normalise(const char *in, char *uri, char *user, char *domain)
{
	const char *rest, *at, *host;
	size_t ulen, hlen;

	if (!in)
		return STORE_INVALID;
	/* No spaces, control or non-ASCII bytes anywhere. */
	for (const char *q = in; *q; q++) {
		unsigned char c = (unsigned char)*q;
		if (c <= 0x20 || c >= 0x7f)
			return STORE_INVALID;
	}
	if (strncasecmp(in, "sip:", 4) == 0)
		rest = in + 4;
	else if (strncasecmp(in, "sips:", 5) == 0)
		rest = in + 5; /* stored as sip: one user, whatever the transport */
	else
		rest = in; /* bare "user@host" */

	at = strchr(rest, '@');
	if (!at || strchr(at + 1, '@'))
		return STORE_INVALID;
	ulen = (size_t)(at - rest);
	host = at + 1;
	hlen = strlen(host);
	/* ':' in the user part would be a password; in the host, a port. */
	if (check_user(rest, ulen) < 0 || check_host(host, hlen) < 0)
		return STORE_INVALID;
	if (ulen >= STORE_URI_MAX || hlen >= STORE_URI_MAX || 4 + ulen + 1 + hlen >= STORE_URI_MAX)
		return STORE_INVALID;

	memcpy(user, rest, ulen);
	user[ulen] = '\0';
	for (size_t i = 0; i < hlen; i++)
		domain[i] = (char)tolower((unsigned char)host[i]);
	domain[hlen] = '\0';
	memcpy(uri, "sip:", 4);
	memcpy(uri + 4, user, ulen);
	uri[4 + ulen] = '@';
	memcpy(uri + 5 + ulen, domain, hlen + 1);
	return STORE_OK;
}
