/* core/jsonw.h: compact JSON text of plain values without jansson's writer. */
#include "core/jsonw.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct out {
	char *buf;
	size_t cap, n;
};

static bool put(struct out *o, const char *s, size_t len)
{
	if (o->n + len >= o->cap)
		return false;
	memcpy(o->buf + o->n, s, len);
	o->n += len;
	return true;
}

/* printable ASCII without '"' and '\\': JSON string text as it stands */
static bool plain(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e || s[i] == '"' ||
		    s[i] == '\\')
			return false;
	return true;
}

static bool string(struct out *o, const char *s, size_t len)
{
	return plain(s, len) && put(o, "\"", 1) && put(o, s, len) && put(o, "\"", 1);
}

static bool value(struct out *o, const json_t *v, unsigned depth)
{
	char num[24];
	int m;

	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *m_v;
		bool first = true;

		if (depth >= JSONW_DEPTH || !put(o, "{", 1))
			return false;
		json_object_foreach((json_t *)v, k, m_v)
		{
			if ((!first && !put(o, ",", 1)) || !string(o, k, strlen(k)) ||
			    !put(o, ":", 1) || !value(o, m_v, depth + 1))
				return false;
			first = false;
		}
		return put(o, "}", 1);
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *e;

		if (depth >= JSONW_DEPTH || !put(o, "[", 1))
			return false;
		json_array_foreach(v, i, e)
		{
			if ((i && !put(o, ",", 1)) || !value(o, e, depth + 1))
				return false;
		}
		return put(o, "]", 1);
	}
	case JSON_STRING:
		return string(o, json_string_value(v), json_string_length(v));
	case JSON_INTEGER:
		m = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return m > 0 && (size_t)m < sizeof(num) && put(o, num, (size_t)m);
	case JSON_TRUE:
		return put(o, "true", 4);
	case JSON_FALSE:
		return put(o, "false", 5);
	case JSON_NULL:
		return put(o, "null", 4);
	default: /* JSON_REAL: jansson's own formatting */
		return false;
	}
}

long jsonw_compact(const json_t *v, char *buf, size_t cap)
{
	struct out o = {buf, cap, 0};

	/* json_dumps writes objects and arrays only (no JSON_ENCODE_ANY) */
	if (!json_is_object(v) && !json_is_array(v))
		return -1;
	if (!buf || !cap || !value(&o, v, 0))
		return -1;
	buf[o.n] = '\0';
	return (long)o.n;
}
