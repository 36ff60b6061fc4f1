/*
 * rtcauthctl probe: read one challenge (WWW-Authenticate,
 * Proxy-Authenticate) or signature header (Authentication-Info,
 * Proxy-Authentication-Info) of any scheme into fixed fields, using the
 * shared auth-param walker. Bounded: a field over its size is an error,
 * never truncated. Reads only what the server sent; holds no secret.
 */
#include "ctl/probe.h"

#include <stddef.h>
#include <string.h>

#include "auth/digest.h"

struct field {
	const char *name;
	size_t off;
	size_t cap;
};

#define F(n, m)                                                                                    \
	{                                                                                          \
		n, offsetof(struct probe_auth, m), sizeof(((struct probe_auth *)0)->m)             \
	}
static const struct field fields[] = {
    F("realm", realm),	   F("targetname", targetname),
    F("opaque", opaque),   F("gssapi-data", gssapi_data),
    F("nonce", nonce),	   F("algorithm", algorithm),
    F("qop", qop),	   F("rspauth", rspauth),
    F("srand", srand),	   F("snum", snum),
    F("sts-uri", sts_uri),
};
#undef F

static int on_param(void *ctx, struct str name, struct str val, bool quoted)
{
	struct probe_auth *a = ctx;

	(void)quoted;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (!str_caseeq_cstr(name, fields[i].name))
			continue;
		if (str_copy(val, (char *)a + fields[i].off, fields[i].cap) < 0)
			return 1;
		if (strcmp(fields[i].name, "gssapi-data") == 0)
			a->has_gssapi_data = true;
		return 0;
	}
	if (str_caseeq_cstr(name, "version")) {
		uint64_t v;
		if (str_to_u64(val, 1000, &v) < 0)
			return 1;
		a->version = (int)v;
	} else if (str_caseeq_cstr(name, "stale")) {
		a->stale = str_caseeq_cstr(val, "true");
	}
	return 0; /* unknown parameters are ignored (RFC 7235 §2.1) */
}

int probe_auth_parse(struct str value, struct probe_auth *out)
{
	struct str scheme;

	memset(out, 0, sizeof(*out));
	if (auth_params_parse(value, &scheme, on_param, out) != 0 || scheme.len == 0 ||
	    str_copy(scheme, out->scheme, sizeof(out->scheme)) < 0) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 0;
}
