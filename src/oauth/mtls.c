/*
 * RFC 8705 §2.1 names of a partner's PKI client certificate (mtls.h): an
 * RFC 4514 parser into an X509_NAME (compared with X509_NAME_cmp, which
 * applies X.520 caseIgnoreMatch to string values), SAN checks. Decides no
 * trust: the chain is src/pki's. Must never read past its bounds.
 */
#include "oauth/mtls.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "core/str.h"

static int say(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int say(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* ---- RFC 4514 ---- */

struct ava {
	int nid;
	bool joined; /* '+' before it: same RDN as the previous one */
	size_t len;
	unsigned char val[MTLS_VALUE_MAX];
};

static bool special(char c)
{
	return strchr(",+\"\\<>;=# ", c) != NULL;
}

/* RFC 4514 §3: attribute type names are case-insensitive; OpenSSL's
 * tables are not. The usual names by any case, then OpenSSL's own short
 * or long name or a dotted OID. */
static int type_nid(const char *name)
{
	static const char *const common[] = {"CN",
					     "C",
					     "L",
					     "ST",
					     "O",
					     "OU",
					     "DC",
					     "UID",
					     "street",
					     "title",
					     "GN",
					     "SN",
					     "name",
					     "serialNumber",
					     "emailAddress",
					     "postalCode",
					     "businessCategory",
					     "organizationIdentifier"};

	for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++)
		if (strcasecmp(name, common[i]) == 0)
			return OBJ_sn2nid(common[i]) != NID_undef ? OBJ_sn2nid(common[i])
								  : OBJ_ln2nid(common[i]);
	return OBJ_txt2nid(name);
}

/* The attribute type at *p up to '=' (spaces around it skipped). */
static int parse_type(const char **p, int *nid, char *err, size_t errlen)
{
	char name[64];
	size_t n = 0;
	const char *s = *p;

	while (*s == ' ')
		s++;
	while (*s && *s != '=' && *s != ' ') {
		if (n + 1 >= sizeof(name) ||
		    !(isalnum((unsigned char)*s) || *s == '-' || *s == '.'))
			return say(err, errlen, "bad attribute type near \"%.16s\"", *p);
		name[n++] = *s++;
	}
	name[n] = '\0';
	while (*s == ' ')
		s++;
	if (n == 0 || *s != '=')
		return say(err, errlen, "expected TYPE=value near \"%.16s\"", *p);
	*nid = type_nid(name);
	if (*nid == NID_undef)
		return say(err, errlen,
			   "unknown attribute type \"%s\" (use CN, O, OU, C, L, ST, "
			   "DC, emailAddress, ... or a dotted OID)",
			   name);
	*p = s + 1;
	return 0;
}

/* The value at *p up to an unescaped ',' or '+' or the end. */
static int parse_value(const char **p, struct ava *a, char *err, size_t errlen)
{
	const char *s = *p;
	size_t keep = 0; /* length without trailing unescaped spaces */

	a->len = 0;
	while (*s == ' ')
		s++;
	if (*s == '#')
		return say(err, errlen, "hex-encoded (#...) values are not supported");
	while (*s && *s != ',' && *s != '+') {
		unsigned char c = (unsigned char)*s++;
		bool escaped = false;

		if (c == '\\') {
			int hi = str_hexval(s[0]), lo = hi < 0 ? -1 : str_hexval(s[1]);

			if (hi >= 0 && lo >= 0) {
				c = (unsigned char)(hi << 4 | lo);
				s += 2;
			} else if (*s && special(*s)) {
				c = (unsigned char)*s++;
			} else {
				return say(err, errlen, "bad escape \"\\%.2s\"", s);
			}
			escaped = true;
		} else if (c == '"' || c == ';' || c == '<' || c == '>' || c < 0x20 || c == 0x7f) {
			return say(err, errlen, "character '%c' must be escaped with a backslash",
				   c >= 0x20 && c != 0x7f ? c : '?');
		}
		if (c == 0)
			return say(err, errlen, "a value holds a NUL byte");
		if (a->len >= sizeof(a->val))
			return say(err, errlen, "a value is longer than %d bytes", MTLS_VALUE_MAX);
		a->val[a->len++] = c;
		if (c != ' ' || escaped)
			keep = a->len;
	}
	a->len = keep;
	if (a->len == 0)
		return say(err, errlen, "an attribute has an empty value");
	*p = s;
	return 0;
}

int mtls_dn_parse(const char *in, X509_NAME **out, char *err, size_t errlen)
{
	struct ava *avas = NULL;
	const char *p = in;
	X509_NAME *name = NULL;
	size_t n = 0, first;
	int rc = -1;

	*out = NULL;
	if (!in || !in[0])
		return say(err, errlen, "the subject DN is empty");
	if (strnlen(in, MTLS_DN_MAX) >= MTLS_DN_MAX)
		return say(err, errlen, "the subject DN is longer than %d bytes", MTLS_DN_MAX - 1);
	avas = calloc(MTLS_DN_MAX_AVAS, sizeof(*avas));
	if (!avas)
		return say(err, errlen, "out of memory");
	for (;;) {
		if (n >= MTLS_DN_MAX_AVAS) {
			say(err, errlen, "more than %d attributes", MTLS_DN_MAX_AVAS);
			goto out;
		}
		if (parse_type(&p, &avas[n].nid, err, errlen) < 0 ||
		    parse_value(&p, &avas[n], err, errlen) < 0)
			goto out;
		n++;
		if (!*p)
			break;
		avas[n < MTLS_DN_MAX_AVAS ? n : 0].joined = *p == '+';
		p++;
	}
	name = X509_NAME_new();
	if (!name) {
		say(err, errlen, "out of memory");
		goto out;
	}
	/* RFC 4514 §2.1: the string starts with the last RDN. The attributes
	 * of one RDN are a set; they go in backwards too, so that printing
	 * (which reverses every entry) gives them back in the order written and
	 * the normalised text normalises to itself (found by fuzz/fuzz_dn) */
	for (size_t end = n; end > 0; end = first) {
		first = end - 1;
		while (first > 0 && avas[first].joined)
			first--;
		for (size_t i = end; i-- > first;) {
			if (!X509_NAME_add_entry_by_NID(name, avas[i].nid, MBSTRING_UTF8,
							avas[i].val, (int)avas[i].len, -1,
							i == end - 1 ? 0 : -1)) {
				ERR_clear_error();
				say(err, errlen,
				    "attribute %s does not take the value given (e.g. C is two "
				    "letters)",
				    OBJ_nid2sn(avas[i].nid));
				goto out;
			}
		}
	}
	*out = name;
	name = NULL;
	rc = 0;
out:
	X509_NAME_free(name);
	if (avas)
		OPENSSL_cleanse(avas, MTLS_DN_MAX_AVAS * sizeof(*avas));
	free(avas);
	return rc;
}

/*
 * Does text (OpenSSL's RFC 2253 printing of name) parse back into name? Not
 * always: OpenSSL leaves a value that is only "#" unescaped, which reads as
 * a hex value (found by fuzz/fuzz_dn). What the store keeps must match the
 * very certificates it was written for, so such a name is refused.
 */
static int same_name(const X509_NAME *name, char *text, char *err, size_t errlen)
{
	X509_NAME *again = NULL;
	bool same = mtls_dn_parse(text, &again, NULL, 0) == 0 && X509_NAME_cmp(name, again) == 0;

	X509_NAME_free(again);
	if (same)
		return 0;
	text[0] = '\0';
	return say(err, errlen,
		   "the subject DN cannot be written back as it was given (a value that is "
		   "only '#'?); write it differently");
}

int mtls_dn_normalise(const char *in, char out[MTLS_DN_MAX], char *err, size_t errlen)
{
	X509_NAME *name = NULL;
	BIO *b;
	char *data;
	long len;
	int rc = -1;

	out[0] = '\0';
	if (mtls_dn_parse(in, &name, err, errlen) < 0)
		return -1;
	b = BIO_new(BIO_s_mem());
	if (b && X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
		len = BIO_get_mem_data(b, &data);
		if (len > 0 && len < MTLS_DN_MAX) {
			memcpy(out, data, (size_t)len);
			out[len] = '\0';
			rc = same_name(name, out, err, errlen);
		} else {
			say(err, errlen, "the subject DN is too long once normalised");
		}
	} else {
		say(err, errlen, "the subject DN could not be printed");
	}
	BIO_free(b);
	X509_NAME_free(name);
	return rc;
}

/* ---- subject alternative names ---- */

enum san_type { SAN_DNS, SAN_URI, SAN_EMAIL, SAN_IP };

static const struct {
	const char *prefix;
	enum san_type type;
} san_types[] = {{"dns:", SAN_DNS}, {"uri:", SAN_URI}, {"email:", SAN_EMAIL}, {"ip:", SAN_IP}};

static int san_split(const char *in, enum san_type *type, const char **val)
{
	for (size_t i = 0; i < sizeof(san_types) / sizeof(san_types[0]); i++) {
		size_t n = strlen(san_types[i].prefix);

		if (strncasecmp(in, san_types[i].prefix, n) == 0) {
			*type = san_types[i].type;
			*val = in + n;
			return 0;
		}
	}
	return -1;
}

static bool dns_name_ok(const char *s)
{
	size_t label = 0, n = 0;

	for (; *s; s++, n++) {
		if (*s == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (isalnum((unsigned char)*s) || *s == '-' || *s == '_') {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return n > 0 && n <= 253 && label > 0;
}

int mtls_san_normalise(const char *in, char out[MTLS_SAN_MAX], char *err, size_t errlen)
{
	enum san_type t;
	const char *v;
	unsigned char ip[16];
	char buf[INET6_ADDRSTRLEN];
	size_t n;

	out[0] = '\0';
	if (!in || san_split(in, &t, &v) < 0)
		return say(err, errlen, "a SAN is dns:NAME, uri:URI, email:ADDR or ip:ADDR");
	n = strnlen(v, MTLS_SAN_MAX);
	if (n == 0 || n + 7 >= MTLS_SAN_MAX)
		return say(err, errlen, "the SAN value is empty or longer than %d bytes",
			   MTLS_SAN_MAX - 8);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f)
			return say(err, errlen,
				   "the SAN value holds a space, a control or a "
				   "non-ASCII character");
	switch (t) {
	case SAN_DNS:
		if (!dns_name_ok(v))
			return say(err, errlen, "\"%s\" is not a DNS name", v);
		snprintf(out, MTLS_SAN_MAX, "dns:%s", v);
		for (char *c = out; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		return 0;
	case SAN_URI:
		if (!strchr(v, ':'))
			return say(err, errlen, "\"%s\" is not an absolute URI", v);
		snprintf(out, MTLS_SAN_MAX, "uri:%s", v);
		return 0;
	case SAN_EMAIL: {
		const char *at = strchr(v, '@');

		if (!at || at == v || !at[1] || strchr(at + 1, '@') || !dns_name_ok(at + 1))
			return say(err, errlen, "\"%s\" is not a mail address", v);
		snprintf(out, MTLS_SAN_MAX, "email:%s", v);
		for (char *c = strchr(out, '@'); *c; c++)
			*c = (char)tolower((unsigned char)*c);
		return 0;
	}
	case SAN_IP:
		if (inet_pton(AF_INET, v, ip) == 1)
			inet_ntop(AF_INET, ip, buf, sizeof(buf));
		else if (inet_pton(AF_INET6, v, ip) == 1)
			inet_ntop(AF_INET6, ip, buf, sizeof(buf));
		else
			return say(err, errlen, "\"%s\" is not an IPv4 or IPv6 address", v);
		snprintf(out, MTLS_SAN_MAX, "ip:%s", buf);
		return 0;
	}
	return -1;
}

/* An IA5String SAN value as text (no NUL inside), or NULL. */
static const char *ia5(const ASN1_IA5STRING *s, size_t *len)
{
	const char *d = s ? (const char *)ASN1_STRING_get0_data(s) : NULL;
	int n = s ? ASN1_STRING_length(s) : 0;

	if (!d || n <= 0 || memchr(d, '\0', (size_t)n))
		return NULL;
	*len = (size_t)n;
	return d;
}

static bool san_matches(X509 *cert, const char *san)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	unsigned char ip[16];
	size_t iplen = 0;
	enum san_type t;
	const char *v;
	bool found = false;

	if (!gens || san_split(san, &t, &v) < 0)
		goto out;
	if (t == SAN_IP) {
		if (inet_pton(AF_INET, v, ip) == 1)
			iplen = 4;
		else if (inet_pton(AF_INET6, v, ip) == 1)
			iplen = 16;
		else
			goto out;
	}
	for (int i = 0; !found && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const char *d;
		size_t n = 0;

		switch (t) {
		case SAN_DNS:
			d = g->type == GEN_DNS ? ia5(g->d.dNSName, &n) : NULL;
			found = d && n == strlen(v) && strncasecmp(d, v, n) == 0;
			break;
		case SAN_EMAIL:
			d = g->type == GEN_EMAIL ? ia5(g->d.rfc822Name, &n) : NULL;
			found = d && n == strlen(v) && strncasecmp(d, v, n) == 0;
			break;
		case SAN_URI:
			d = g->type == GEN_URI ? ia5(g->d.uniformResourceIdentifier, &n) : NULL;
			found = d && n == strlen(v) && memcmp(d, v, n) == 0;
			break;
		case SAN_IP:
			found = g->type == GEN_IPADD &&
				ASN1_STRING_length(g->d.iPAddress) == (int)iplen &&
				memcmp(ASN1_STRING_get0_data(g->d.iPAddress), ip, iplen) == 0;
			break;
		}
	}
out:
	GENERAL_NAMES_free(gens);
	return found;
}

bool mtls_cert_matches(X509 *cert, const char *subject, const char *san)
{
	bool has_subject = subject && subject[0], has_san = san && san[0];

	if (!cert || (!has_subject && !has_san))
		return false;
	if (has_subject) {
		X509_NAME *want = NULL;
		bool eq;

		if (mtls_dn_parse(subject, &want, NULL, 0) < 0)
			return false;
		eq = X509_NAME_cmp(X509_get_subject_name(cert), want) == 0;
		X509_NAME_free(want);
		if (!eq)
			return false;
	}
	return !has_san || san_matches(cert, san);
}
