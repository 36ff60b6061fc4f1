/*
 * Internals shared by jose.c, jose_key.c and jose_sig.c. Not for other
 * modules: everything here is reachable through jose.h.
 */
#ifndef RTC_OAUTH_JOSE_INT_H
#define RTC_OAUTH_JOSE_INT_H

#include <stddef.h>

#include <jansson.h>

/*
 * Parse text as one JSON object: nesting checked against max_depth before
 * jansson sees it, duplicate members refused (JSON_REJECT_DUPLICATES), NUL
 * escapes refused. 0 with *out set, or JOSE_EJSON / JOSE_EDUPLICATE /
 * JOSE_ETOODEEP / JOSE_ENOMEM.
 */
int jose_json_object(const char *text, size_t len, unsigned max_depth, json_t **out);

/* base64url of n bytes as a new JSON string, or NULL. */
json_t *jose_json_b64url(const unsigned char *p, size_t n);

#endif
