/*
 * SIP value parsers: URIs, parameters, name-addr, Via and Contact values
 * (RFC 3261 §19.1, §20, §25.1). Called lazily by accessors of msg.c.
 *
 * Pure and zero-copy: every struct str points into the input string; no
 * allocation, no escapes decoded. Must never accept a URI with LWS inside
 * (RFC 4475 lwsruri, badaspec) nor read outside the input.
 */
#include <string.h>

#include "sip/msg.h"
#include "sip/msg_int.h"

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Run of bytes in class cls, or escaped "%" HEX HEX when esc; the length, or
 * (size_t)-1 on a bad escape. */
static size_t run(struct str s, size_t i, unsigned cls, bool esc)
{
	size_t j = i;

	while (j < s.len) {
		unsigned char c = (unsigned char)s.p[j];
		if (sip_is(c, cls)) {
			j++;
		} else if (esc && c == '%') {
			if (j + 2 >= s.len)
				return (size_t)-1;
			if (!sip_is((unsigned char)s.p[j + 1], SIP_CC_HEX) ||
			    !sip_is((unsigned char)s.p[j + 2], SIP_CC_HEX))
				return (size_t)-1;
			j += 3;
		} else {
			break;
		}
	}
	return j - i;
}

size_t sip_quoted_len(struct str s, size_t i)
{
	/* quoted-string = SWS DQUOTE *(qdtext / quoted-pair) DQUOTE (§25.1) */
	for (size_t j = i + 1; j < s.len; j++) {
		if (s.p[j] == '\\') {
			if (j + 1 >= s.len || s.p[j + 1] == '\r' || s.p[j + 1] == '\n')
				return 0;
			j++;
		} else if (s.p[j] == '"') {
			return j + 1 - i;
		}
	}
	return 0;
}

int sip_params_check(struct str params)
{
	size_t i = 0, n;

	if (params.len == 0)
		return 0;
	for (;;) {
		i = sip_skip_lws(params, i);
		n = run(params, i, SIP_CC_TOKEN, false);
		if (n == 0)
			return -1; /* empty parameter: RFC 4475 badinv01 */
		i = sip_skip_lws(params, i + n);
		if (i < params.len && params.p[i] == '=') {
			i = sip_skip_lws(params, i + 1);
			if (i < params.len && params.p[i] == '"') {
				n = sip_quoted_len(params, i);
			} else {
				/* gen-value = token / host (IPv6 reference included) */
				n = 0;
				while (i + n < params.len &&
				       (sip_is((unsigned char)params.p[i + n], SIP_CC_TOKEN) ||
					params.p[i + n] == ':' || params.p[i + n] == '[' ||
					params.p[i + n] == ']'))
					n++;
			}
			if (n == 0)
				return -1;
			i = sip_skip_lws(params, i + n);
		}
		if (i == params.len)
			return 0;
		if (params.p[i] != ';')
			return -1;
		i++;
	}
}

/*
 * sip_param_get for several names in one pass over params: found[k] set to
 * 1 and values[k] filled for the first occurrence of names[k]. Via, URI
 * and Contact parsing look up 2-4 names each; one scan instead of one per
 * name keeps the hot path linear.
 */
static void params_get_many(struct str params, const char *const *names, size_t n,
			    struct str *values, int *found)
{
	size_t i = 0, nlen[8];

	for (size_t k = 0; k < n; k++) {
		nlen[k] = strlen(names[k]);
		found[k] = 0;
		values[k] = STR_NULL;
	}
	while (i < params.len) {
		size_t start = i, eq = (size_t)-1;
		while (i < params.len && params.p[i] != ';') {
			if (params.p[i] == '"') {
				size_t q = sip_quoted_len(params, i);
				i = q ? i + q : params.len;
				continue;
			}
			if (params.p[i] == '=' && eq == (size_t)-1)
				eq = i;
			i++;
		}
		struct str nm =
		    str_trim(str_make(params.p + start, (eq == (size_t)-1 ? i : eq) - start));
		for (size_t k = 0; k < n; k++) {
			if (found[k] || nm.len != nlen[k] || !str_caseeq_cstr(nm, names[k]))
				continue;
			found[k] = 1;
			if (eq != (size_t)-1)
				values[k] = str_trim(str_make(params.p + eq + 1, i - eq - 1));
			else
				values[k] = str_make(params.p + i, 0);
			break;
		}
		i++; /* past ';' */
	}
}

int sip_param_get(struct str params, const char *name, struct str *value)
{
	int found;

	params_get_many(params, &name, 1, value, &found);
	return found;
}

/* hostport after "sip:" userinfo (RFC 3261 §25.1); returns the end offset
 * or (size_t)-1. */
static size_t parse_hostport(struct str s, size_t i, struct sip_uri *out)
{
	if (i < s.len && s.p[i] == '[') {
		/* IPv6reference = "[" IPv6address "]" */
		const char *rb = memchr(s.p + i, ']', s.len - i);
		size_t j;
		if (!rb)
			return (size_t)-1;
		for (j = i + 1; s.p + j < rb; j++)
			if (!sip_is((unsigned char)s.p[j], SIP_CC_HEX) && s.p[j] != ':' &&
			    s.p[j] != '.')
				return (size_t)-1;
		if (j == i + 1)
			return (size_t)-1;
		out->host = str_make(s.p + i + 1, j - i - 1);
		out->host_is_v6 = true;
		i = j + 1;
	} else {
		size_t n = run(s, i, SIP_CC_HOST, false);
		if (n == 0)
			return (size_t)-1;
		out->host = str_make(s.p + i, n);
		i += n;
	}
	if (i < s.len && s.p[i] == ':') {
		unsigned port = 0;
		size_t d = 0;
		for (i++; i < s.len && is_digit(s.p[i]) && d < 6; i++, d++)
			port = port * 10 + (unsigned)(s.p[i] - '0');
		if (d == 0 || d > 5 || port > 65535)
			return (size_t)-1;
		out->port = (uint16_t)port;
	}
	return i;
}

/* "sip:" / "sips:" remainder: [userinfo "@"] hostport uri-parameters
 * [headers] (RFC 3261 §19.1.1, §25.1). */
static int parse_sip(struct str s, struct sip_uri *out)
{
	const char *at = memchr(s.p, '@', s.len);
	size_t i = 0, n;

	if (at) {
		struct str ui = str_make(s.p, (size_t)(at - s.p));
		const char *colon = memchr(ui.p, ':', ui.len);
		out->user = colon ? str_make(ui.p, (size_t)(colon - ui.p)) : ui;
		if (out->user.len == 0 ||
		    run(out->user, 0, SIP_CC_UNRES | SIP_CC_USER, true) != out->user.len)
			return -1;
		if (colon) {
			out->password = str_make(colon + 1, ui.len - out->user.len - 1);
			if (run(out->password, 0, SIP_CC_UNRES | SIP_CC_PASS, true) !=
			    out->password.len)
				return -1;
		}
		i = ui.len + 1;
	}
	i = parse_hostport(s, i, out);
	if (i == (size_t)-1)
		return -1;
	if (i < s.len && s.p[i] == ';') {
		/* uri-parameters = *( ";" pname [ "=" pvalue ] ) */
		size_t start = ++i;
		for (;;) {
			n = run(s, i, SIP_CC_UNRES | SIP_CC_PARAM, true);
			if (n == 0 || n == (size_t)-1)
				return -1;
			i += n;
			if (i < s.len && s.p[i] == '=') {
				n = run(s, i + 1, SIP_CC_UNRES | SIP_CC_PARAM, true);
				if (n == 0 || n == (size_t)-1)
					return -1;
				i += n + 1;
			}
			if (i < s.len && s.p[i] == ';') {
				i++;
				continue;
			}
			break;
		}
		out->params = str_make(s.p + start, i - start);
	}
	if (i < s.len && s.p[i] == '?') {
		/* headers = "?" header *( "&" header ); header = hname "=" hvalue */
		size_t start = ++i;
		for (;;) {
			n = run(s, i, SIP_CC_UNRES | SIP_CC_HNV, true);
			if (n == 0 || n == (size_t)-1 || i + n >= s.len || s.p[i + n] != '=')
				return -1;
			i += n + 1;
			n = run(s, i, SIP_CC_UNRES | SIP_CC_HNV, true);
			if (n == (size_t)-1)
				return -1;
			i += n;
			if (i < s.len && s.p[i] == '&') {
				i++;
				continue;
			}
			break;
		}
		out->headers = str_make(s.p + start, i - start);
	}
	if (i != s.len)
		return -1;
	if (sip_param_get(out->params, "transport", &out->transport) == 0)
		out->transport = STR_NULL;
	struct str lr;
	out->lr = sip_param_get(out->params, "lr", &lr) == 1;
	return 0;
}

int sip_uri_parse(struct str s, struct sip_uri *out)
{
	const char *colon;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (s.len == 0 || !s.p)
		return -1;
	for (i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.p[i];
		if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>' || c == '"')
			return -1;
	}
	colon = memchr(s.p, ':', s.len);
	if (!colon || colon == s.p)
		return -1;
	/* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
	out->scheme = str_make(s.p, (size_t)(colon - s.p));
	if (!((s.p[0] | 0x20) >= 'a' && (s.p[0] | 0x20) <= 'z'))
		return -1;
	for (i = 1; i < out->scheme.len; i++) {
		char c = s.p[i];
		if (!sip_is((unsigned char)c, SIP_CC_HOST) && c != '+')
			return -1;
	}
	struct str rest = str_make(colon + 1, s.len - out->scheme.len - 1);
	if (str_caseeq_cstr(out->scheme, "sip") || str_caseeq_cstr(out->scheme, "sips")) {
		int rc = parse_sip(rest, out);
		if (rc) {
			struct str sch = out->scheme;
			memset(out, 0, sizeof(*out));
			out->scheme = sch;
		}
		return rc;
	}
	/* tel: and unknown schemes: opaque (RFC 3261 §19.1.6, RFC 4475 unkscm) */
	if (rest.len == 0)
		return -1;
	out->user = rest;
	return 0;
}

static bool display_ok(struct str d)
{
	/* display-name = *(token LWS) when not quoted (RFC 4475 baddn) */
	for (size_t i = 0; i < d.len; i++)
		if (!sip_is((unsigned char)d.p[i], SIP_CC_TOKEN) && !sip_is_lws(d.p[i]))
			return false;
	return true;
}

static bool scheme_known(struct str sch)
{
	return str_caseeq_cstr(sch, "sip") || str_caseeq_cstr(sch, "sips") ||
	       str_caseeq_cstr(sch, "tel");
}

int sip_nameaddr_parse(struct str s, struct sip_nameaddr *out)
{
	size_t i = 0, k;

	memset(out, 0, sizeof(*out));
	s = str_trim(s);
	if (s.len == 0)
		return -1;
	if (s.p[0] == '"') {
		size_t q = sip_quoted_len(s, 0);
		if (q == 0)
			return -1; /* RFC 4475 quotbal */
		out->display = str_make(s.p + 1, q - 2);
		i = sip_skip_lws(s, q);
		if (i >= s.len || s.p[i] != '<')
			return -1;
	} else {
		while (i < s.len && s.p[i] != '<' && s.p[i] != ';' && s.p[i] != '"')
			i++;
		if (i < s.len && s.p[i] == '<') {
			out->display = str_trim(str_make(s.p, i));
			if (!display_ok(out->display))
				return -1;
		} else {
			i = s.len; /* addr-spec */
		}
	}
	if (i < s.len) {
		/* name-addr = [ display-name ] LAQUOT addr-spec RAQUOT */
		const char *gt = memchr(s.p + i, '>', s.len - i);
		if (!gt)
			return -1;
		out->uri_str = str_make(s.p + i + 1, (size_t)(gt - s.p) - i - 1);
		k = (size_t)(gt - s.p) + 1;
	} else {
		/* RFC 3261 §20.10: an addr-spec URI holds no ',', '?' or ';' */
		for (k = 0; k < s.len && s.p[k] != ';' && !sip_is_lws(s.p[k]); k++)
			if (s.p[k] == ',' || s.p[k] == '?')
				return -1; /* RFC 4475 regbadct */
		out->uri_str = str_make(s.p, k);
	}
	if (sip_uri_parse(out->uri_str, &out->uri) || !scheme_known(out->uri.scheme))
		return -1;
	k = sip_skip_lws(s, k);
	if (k < s.len) {
		if (s.p[k] != ';')
			return -1;
		out->params = str_trim(str_make(s.p + k + 1, s.len - k - 1));
		if (out->params.len == 0 || sip_params_check(out->params))
			return -1;
		sip_param_get(out->params, "tag", &out->tag);
	}
	return 0;
}

/* via-parm = sent-protocol LWS sent-by *( SEMI via-params ) (RFC 3261 §20.42);
 * SLASH and HCOLON allow LWS around them (RFC 4475 wsinv). */
int sip_via_parse(struct str s, struct sip_via *out)
{
	size_t i, n;
	struct sip_uri hp;

	memset(out, 0, sizeof(*out));
	out->raw = s;
	i = sip_skip_lws(s, 0);
	n = run(s, i, SIP_CC_TOKEN, false);
	if (n != 3 || !str_caseeq_cstr(str_make(s.p + i, 3), "sip"))
		return -1;
	i = sip_skip_lws(s, i + n);
	if (i >= s.len || s.p[i] != '/')
		return -1;
	i = sip_skip_lws(s, i + 1);
	n = run(s, i, SIP_CC_TOKEN, false);
	if (n != 3 || memcmp(s.p + i, "2.0", 3) != 0)
		return -1;
	i = sip_skip_lws(s, i + n);
	if (i >= s.len || s.p[i] != '/')
		return -1;
	i = sip_skip_lws(s, i + 1);
	n = run(s, i, SIP_CC_TOKEN, false);
	if (n == 0)
		return -1;
	out->transport = str_make(s.p + i, n);
	n = sip_skip_lws(s, i + n);
	if (n == i + out->transport.len)
		return -1; /* LWS required before sent-by */
	i = n;
	/* sent-by = host [ COLON port ] */
	memset(&hp, 0, sizeof(hp));
	{
		size_t e = i;
		while (e < s.len && s.p[e] != ';' && s.p[e] != ':' && !sip_is_lws(s.p[e]))
			e++;
		if (s.p[i] == '[') {
			const char *rb = memchr(s.p + i, ']', s.len - i);
			if (!rb)
				return -1;
			e = (size_t)(rb - s.p) + 1;
		}
		if (parse_hostport(str_make(s.p, e), i, &hp) != e)
			return -1;
		out->host = hp.host;
		i = sip_skip_lws(s, e);
	}
	if (i < s.len && s.p[i] == ':') {
		unsigned port = 0;
		size_t d = 0;
		i = sip_skip_lws(s, i + 1);
		for (; i < s.len && is_digit(s.p[i]) && d < 6; i++, d++)
			port = port * 10 + (unsigned)(s.p[i] - '0');
		if (d == 0 || d > 5 || port > 65535)
			return -1;
		out->port = (uint16_t)port;
		i = sip_skip_lws(s, i);
	}
	if (i == s.len)
		return 0;
	if (s.p[i] != ';')
		return -1;
	out->params = str_trim(str_make(s.p + i + 1, s.len - i - 1));
	if (out->params.len == 0 || sip_params_check(out->params))
		return -1; /* RFC 4475 badinv01 */
	{
		static const char *const names[] = {"branch", "received", "rport"};
		struct str v[3];
		int f[3];
		params_get_many(out->params, names, 3, v, f);
		out->branch = v[0];
		out->received = v[1];
		out->rport = v[2];
		out->has_rport = f[2] == 1;
	}
	return 0;
}

/* Decimal, saturating at 2^32-1; -1 if not 1*DIGIT. */
static int u32_clamp(struct str v, uint32_t *out)
{
	uint64_t n = 0;

	if (v.len == 0)
		return -1;
	for (size_t i = 0; i < v.len; i++) {
		if (!is_digit(v.p[i]))
			return -1;
		n = n * 10 + (uint64_t)(v.p[i] - '0');
		if (n > UINT32_MAX)
			n = UINT32_MAX;
	}
	*out = (uint32_t)n;
	return 0;
}

/* contact-param = (name-addr / addr-spec) *(SEMI contact-params) (RFC 3261
 * §20.10), with +sip.instance and reg-id of RFC 5626 §4.2. */
int sip_contact_parse(struct str s, struct sip_contact *out)
{
	struct str v;

	memset(out, 0, sizeof(*out));
	s = str_trim(s);
	if (s.len == 1 && s.p[0] == '*') {
		out->is_star = true;
		return 0;
	}
	if (sip_nameaddr_parse(s, &out->na))
		return -1;
	static const char *const names[] = {"expires", "+sip.instance", "reg-id", "q"};
	struct str pv[4];
	int f[4];
	params_get_many(out->na.params, names, 4, pv, f);
	if (f[0]) {
		if (u32_clamp(pv[0], &out->expires))
			return -1;
		out->has_expires = true;
	}
	if (f[1]) {
		v = pv[1];
		if (v.len >= 2 && v.p[0] == '"' && v.p[v.len - 1] == '"')
			v = str_make(v.p + 1, v.len - 2);
		if (v.len >= 2 && v.p[0] == '<' && v.p[v.len - 1] == '>')
			v = str_make(v.p + 1, v.len - 2);
		out->instance = v;
	}
	if (f[2]) {
		uint64_t r;
		if (str_to_u64(pv[2], UINT32_MAX, &r))
			return -1;
		out->reg_id = (uint32_t)r;
		out->has_reg_id = true;
	}
	out->q = pv[3];
	return 0;
}
