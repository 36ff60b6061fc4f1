/*
 * SIP message framing and header splitting (RFC 3261 §7, §18.3, §25).
 *
 * DESIGN: one pass over the caller's buffer. The start line is checked
 * strictly; each header line is found with memchr, its name recognised
 * (long and compact forms, case-insensitive) and its value trimmed, but no
 * value is parsed except Content-Length and CSeq, which framing and the
 * mandatory checks need. Everything else is parsed by an accessor when a
 * caller asks. Nothing is allocated or copied: every struct str points into
 * the buffer. Every loop is bounded by the buffer, SIP_MAX_LINE and
 * SIP_MAX_HEADERS.
 *
 * Must never: write to the buffer, read past buf+len, or trust a length
 * from the wire before checking it against the bytes present.
 */
#include "sip/msg.h"

#include <string.h>

#include "sip/msg_int.h"

#define T  SIP_CC_TOKEN
#define U  SIP_CC_UNRES
#define R  SIP_CC_USER
#define P  SIP_CC_PASS
#define M  SIP_CC_PARAM
#define N  SIP_CC_HNV
#define H  SIP_CC_HOST
#define X  SIP_CC_HEX
#define AN (T | U | H)

/* RFC 3261 §25.1 character classes, indexed by byte. */
const unsigned char sip_cc[256] = {
    ['0'] = AN | X,
    ['1'] = AN | X,
    ['2'] = AN | X,
    ['3'] = AN | X,
    ['4'] = AN | X,
    ['5'] = AN | X,
    ['6'] = AN | X,
    ['7'] = AN | X,
    ['8'] = AN | X,
    ['9'] = AN | X,
    ['A'] = AN | X,
    ['B'] = AN | X,
    ['C'] = AN | X,
    ['D'] = AN | X,
    ['E'] = AN | X,
    ['F'] = AN | X,
    ['G'] = AN,
    ['H'] = AN,
    ['I'] = AN,
    ['J'] = AN,
    ['K'] = AN,
    ['L'] = AN,
    ['M'] = AN,
    ['N'] = AN,
    ['O'] = AN,
    ['P'] = AN,
    ['Q'] = AN,
    ['R'] = AN,
    ['S'] = AN,
    ['T'] = AN,
    ['U'] = AN,
    ['V'] = AN,
    ['W'] = AN,
    ['X'] = AN,
    ['Y'] = AN,
    ['Z'] = AN,
    ['a'] = AN | X,
    ['b'] = AN | X,
    ['c'] = AN | X,
    ['d'] = AN | X,
    ['e'] = AN | X,
    ['f'] = AN | X,
    ['g'] = AN,
    ['h'] = AN,
    ['i'] = AN,
    ['j'] = AN,
    ['k'] = AN,
    ['l'] = AN,
    ['m'] = AN,
    ['n'] = AN,
    ['o'] = AN,
    ['p'] = AN,
    ['q'] = AN,
    ['r'] = AN,
    ['s'] = AN,
    ['t'] = AN,
    ['u'] = AN,
    ['v'] = AN,
    ['w'] = AN,
    ['x'] = AN,
    ['y'] = AN,
    ['z'] = AN,
    ['-'] = T | U | H,
    ['.'] = T | U | H,
    ['!'] = T | U,
    ['%'] = T,
    ['*'] = T | U,
    ['_'] = T | U,
    ['+'] = T | R | P | M | N,
    ['`'] = T,
    ['\''] = T | U,
    ['~'] = T | U,
    ['('] = U,
    [')'] = U,
    ['&'] = R | P | M,
    ['='] = R | P,
    ['$'] = R | P | M | N,
    [','] = R | P,
    [';'] = R,
    ['?'] = R | N,
    ['/'] = R | M | N,
    [':'] = M | N,
    ['['] = M | N,
    [']'] = M | N,
};

#undef T
#undef U
#undef R
#undef P
#undef M
#undef N
#undef H
#undef X
#undef AN

static inline unsigned char lc(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

/* ASCII case-insensitive compare of n bytes; b is lower case. */
static bool ci_eq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (lc((unsigned char)a[i]) != (unsigned char)b[i])
			return false;
	return true;
}

const char *sip_msg_strerror(int err)
{
	switch (err) {
	case SIP_E_OK:
		return "ok";
	case SIP_E_INCOMPLETE:
		return "incomplete message";
	case SIP_E_START_LINE:
		return "malformed start line";
	case SIP_E_VERSION:
		return "unsupported SIP version";
	case SIP_E_HEADER:
		return "malformed header line";
	case SIP_E_TOO_MANY:
		return "too many header fields";
	case SIP_E_TOO_LONG:
		return "message too large";
	case SIP_E_CLEN:
		return "bad Content-Length";
	case SIP_E_MISSING:
		return "missing mandatory header field";
	case SIP_E_BAD_VALUE:
		return "malformed mandatory header field";
	case SIP_E_NUL:
		return "NUL byte in header";
	}
	return "unknown error";
}

/* ---- header names ---- */

struct hname {
	const char *lname; /* lower case */
	unsigned char len;
	unsigned char id;
};

/* Sorted by length; hdr_range() gives the slice for one length. */
static const struct hname hnames[] = {
    {"to", 2, SIP_H_TO},
    {"via", 3, SIP_H_VIA},
    {"from", 4, SIP_H_FROM},
    {"cseq", 4, SIP_H_CSEQ},
    {"path", 4, SIP_H_PATH},
    {"date", 4, SIP_H_DATE},
    {"route", 5, SIP_H_ROUTE},
    {"allow", 5, SIP_H_ALLOW},
    {"event", 5, SIP_H_EVENT},
    {"server", 6, SIP_H_SERVER},
    {"accept", 6, SIP_H_ACCEPT},
    {"call-id", 7, SIP_H_CALL_ID},
    {"contact", 7, SIP_H_CONTACT},
    {"expires", 7, SIP_H_EXPIRES},
    {"require", 7, SIP_H_REQUIRE},
    {"subject", 7, SIP_H_SUBJECT},
    {"refer-to", 8, SIP_H_REFER_TO},
    {"supported", 9, SIP_H_SUPPORTED},
    {"user-agent", 10, SIP_H_USER_AGENT},
    {"unsupported", 11, SIP_H_UNSUPPORTED},
    {"retry-after", 11, SIP_H_RETRY_AFTER},
    {"min-expires", 11, SIP_H_MIN_EXPIRES},
    {"max-forwards", 12, SIP_H_MAX_FORWARDS},
    {"content-type", 12, SIP_H_CONTENT_TYPE},
    {"record-route", 12, SIP_H_RECORD_ROUTE},
    {"authorization", 13, SIP_H_AUTHORIZATION},
    {"proxy-require", 13, SIP_H_PROXY_REQUIRE},
    {"content-length", 14, SIP_H_CONTENT_LENGTH},
    {"www-authenticate", 16, SIP_H_WWW_AUTHENTICATE},
    {"content-encoding", 16, SIP_H_CONTENT_ENCODING},
    {"proxy-authenticate", 18, SIP_H_PROXY_AUTHENTICATE},
    {"authentication-info", 19, SIP_H_AUTHENTICATION_INFO},
    {"proxy-authorization", 19, SIP_H_PROXY_AUTHORIZATION},
    {"p-asserted-identity", 19, SIP_H_P_ASSERTED_IDENTITY},
    {"proxy-authentication-info", 25, SIP_H_PROXY_AUTHENTICATION_INFO},
};

/* Compact forms (RFC 3261 §7.3.3, §20; RFC 3265 o/u; RFC 3515 r). */
static enum sip_hdr hdr_compact(unsigned char c)
{
	switch (lc(c)) {
	case 'v':
		return SIP_H_VIA;
	case 'f':
		return SIP_H_FROM;
	case 't':
		return SIP_H_TO;
	case 'i':
		return SIP_H_CALL_ID;
	case 'm':
		return SIP_H_CONTACT;
	case 'l':
		return SIP_H_CONTENT_LENGTH;
	case 'c':
		return SIP_H_CONTENT_TYPE;
	case 'e':
		return SIP_H_CONTENT_ENCODING;
	case 'k':
		return SIP_H_SUPPORTED;
	case 's':
		return SIP_H_SUBJECT;
	case 'o':
		return SIP_H_EVENT;
	case 'r':
		return SIP_H_REFER_TO;
	default: /* 'u' (Allow-Events) and others have no id */
		return SIP_H_OTHER;
	}
}

static enum sip_hdr hdr_lookup(const char *name, size_t len)
{
	size_t lo, hi;

	if (len == 1)
		return hdr_compact((unsigned char)name[0]);
	switch (len) {
	case 2:
		lo = 0, hi = 1;
		break;
	case 3:
		lo = 1, hi = 2;
		break;
	case 4:
		lo = 2, hi = 6;
		break;
	case 5:
		lo = 6, hi = 9;
		break;
	case 6:
		lo = 9, hi = 11;
		break;
	case 7:
		lo = 11, hi = 16;
		break;
	case 8:
		lo = 16, hi = 17;
		break;
	case 9:
		lo = 17, hi = 18;
		break;
	case 10:
		lo = 18, hi = 19;
		break;
	case 11:
		lo = 19, hi = 22;
		break;
	case 12:
		lo = 22, hi = 25;
		break;
	case 13:
		lo = 25, hi = 27;
		break;
	case 14:
		lo = 27, hi = 28;
		break;
	case 16:
		lo = 28, hi = 30;
		break;
	case 18:
		lo = 30, hi = 31;
		break;
	case 19:
		lo = 31, hi = 34;
		break;
	case 25:
		lo = 34, hi = 35;
		break;
	default:
		return SIP_H_OTHER;
	}
	unsigned char c0 = lc((unsigned char)name[0]);
	for (size_t i = lo; i < hi; i++)
		if ((unsigned char)hnames[i].lname[0] == c0 && ci_eq(name, hnames[i].lname, len))
			return (enum sip_hdr)hnames[i].id;
	return SIP_H_OTHER;
}

/* ---- start line ---- */

struct mname {
	const char *n;
	unsigned char len;
	unsigned char id;
};

static const struct mname methods[] = {
    {"INVITE", 6, SIP_M_INVITE},     {"ACK", 3, SIP_M_ACK},
    {"BYE", 3, SIP_M_BYE},	     {"CANCEL", 6, SIP_M_CANCEL},
    {"REGISTER", 8, SIP_M_REGISTER}, {"OPTIONS", 7, SIP_M_OPTIONS},
    {"MESSAGE", 7, SIP_M_MESSAGE},   {"SUBSCRIBE", 9, SIP_M_SUBSCRIBE},
    {"NOTIFY", 6, SIP_M_NOTIFY},     {"PUBLISH", 7, SIP_M_PUBLISH},
    {"INFO", 4, SIP_M_INFO},	     {"PRACK", 5, SIP_M_PRACK},
    {"UPDATE", 6, SIP_M_UPDATE},     {"REFER", 5, SIP_M_REFER},
    {"SERVICE", 7, SIP_M_SERVICE},   {"NEGOTIATE", 9, SIP_M_NEGOTIATE},
};

/* Methods are case-sensitive (RFC 3261 §7.1). */
static enum sip_method method_lookup(struct str m)
{
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (methods[i].len == m.len && memcmp(methods[i].n, m.p, m.len) == 0)
			return (enum sip_method)methods[i].id;
	return SIP_M_OTHER;
}

static bool all_token(struct str s)
{
	if (s.len == 0)
		return false;
	for (size_t i = 0; i < s.len; i++)
		if (!sip_is((unsigned char)s.p[i], SIP_CC_TOKEN))
			return false;
	return true;
}

/* SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT, case-insensitive
 * (RFC 3261 §7.1). 0 for SIP/2.0, SIP_E_VERSION for another well-formed
 * version, SIP_E_START_LINE for garbage. */
static int check_version(struct str v)
{
	size_t i, d1 = 0, d2 = 0;

	if (v.len < 7 || !ci_eq(v.p, "sip/", 4))
		return SIP_E_START_LINE;
	for (i = 4; i < v.len && v.p[i] >= '0' && v.p[i] <= '9'; i++)
		d1++;
	if (i >= v.len || v.p[i] != '.')
		return SIP_E_START_LINE;
	for (i++; i < v.len && v.p[i] >= '0' && v.p[i] <= '9'; i++)
		d2++;
	if (i != v.len || d1 == 0 || d2 == 0)
		return SIP_E_START_LINE;
	if (v.len != 7 || memcmp(v.p + 4, "2.0", 3) != 0)
		return SIP_E_VERSION; /* RFC 3261 §8.2.2.1... answer 505 */
	return 0;
}

/* Status-Line = SIP-Version SP Status-Code SP Reason-Phrase (RFC 3261 §7.2). */
static int parse_status_line(struct sip_msg *m, struct str line, const char *sp1)
{
	const char *end = line.p + line.len;
	const char *c = sp1 + 1;
	int rc = check_version(str_make(line.p, (size_t)(sp1 - line.p)));

	if (rc)
		return rc;
	m->version = str_make(line.p, (size_t)(sp1 - line.p));
	/* Status-Code = 3DIGIT; RFC 4475 bigcode: more digits is malformed */
	if (end - c < 4 || c[3] != ' ')
		return SIP_E_START_LINE;
	for (int i = 0; i < 3; i++)
		if (c[i] < '0' || c[i] > '9')
			return SIP_E_START_LINE;
	m->status = (c[0] - '0') * 100 + (c[1] - '0') * 10 + (c[2] - '0');
	if (m->status < 100 || m->status > 699)
		return SIP_E_START_LINE;
	m->reason = str_make(c + 4, (size_t)(end - (c + 4)));
	for (size_t i = 0; i < m->reason.len; i++) {
		unsigned char b = (unsigned char)m->reason.p[i];
		if ((b < 0x20 && b != '\t') || b == 0x7f)
			return SIP_E_START_LINE;
	}
	m->is_request = false;
	return 0;
}

/*
 * Request-Line = Method SP Request-URI SP SIP-Version CRLF (RFC 3261 §7.1),
 * exactly one SP between elements (RFC 4475 lwsstart, trws, lwsruri).
 */
static int parse_start_line(struct sip_msg *m, struct str line)
{
	const char *sp1 = memchr(line.p, ' ', line.len);
	const char *sp2;

	if (!sp1 || sp1 == line.p)
		return SIP_E_START_LINE;
	if (line.len >= 4 && ci_eq(line.p, "sip/", 4))
		return parse_status_line(m, line, sp1);
	m->is_request = true;
	m->method = str_make(line.p, (size_t)(sp1 - line.p));
	if (!all_token(m->method))
		return SIP_E_START_LINE;
	m->method_id = method_lookup(m->method);
	sp2 = memrchr(line.p, ' ', line.len);
	if (sp2 == sp1 || sp2 == line.p + line.len - 1)
		return SIP_E_START_LINE;
	m->ruri = str_make(sp1 + 1, (size_t)(sp2 - sp1 - 1));
	if (m->ruri.len == 0)
		return SIP_E_START_LINE;
	for (size_t i = 0; i < m->ruri.len; i++) {
		unsigned char b = (unsigned char)m->ruri.p[i];
		if (b <= 0x20 || b >= 0x7f) /* no LWS or raw octets in a URI */
			return SIP_E_START_LINE;
	}
	m->version = str_make(sp2 + 1, (size_t)(line.p + line.len - sp2 - 1));
	return check_version(m->version);
}

/* ---- header section ---- */

/* A NUL is legal only as the second byte of a quoted-pair (RFC 3261 §25.1
 * quoted-pair allows %x00; RFC 4475 intmeth). */
static bool bad_nul(const char *p, size_t len)
{
	const char *z = memchr(p, 0, len);

	while (z) {
		if (z == p || z[-1] != '\\')
			return true;
		z++;
		z = memchr(z, 0, len - (size_t)(z - p));
	}
	return false;
}

static int add_header(struct sip_msg *m, struct str name, struct str value)
{
	struct sip_header *h;
	enum sip_hdr id;

	if (m->n_hdrs >= SIP_MAX_HEADERS)
		return SIP_E_TOO_MANY;
	id = hdr_lookup(name.p, name.len);
	h = &m->hdrs[m->n_hdrs];
	h->id = id;
	h->name = name;
	h->value = value;
	if (m->first[id] < 0)
		m->first[id] = (int16_t)m->n_hdrs;
	m->n_hdrs++;
	return 0;
}

/*
 * One logical header line [p, e) without its final line end, continuation
 * lines included: header-name HCOLON header-value (RFC 3261 §7.3.1, where
 * HCOLON = *( SP / HTAB ) ":" SWS).
 */
static int split_header(struct sip_msg *m, const char *p, const char *e)
{
	const char *q = p;
	struct str name, value;

	while (q < e && sip_is((unsigned char)*q, SIP_CC_TOKEN))
		q++;
	if (q == p)
		return SIP_E_HEADER;
	name = str_make(p, (size_t)(q - p));
	while (q < e && (*q == ' ' || *q == '\t'))
		q++;
	if (q == e || *q != ':')
		return SIP_E_HEADER;
	q++;
	value = str_trim(str_make(q, (size_t)(e - q)));
	return add_header(m, name, value);
}

/*
 * Split header lines from off until the empty line. Sets *body_off to the
 * first byte after it. Lines end with CRLF or bare LF; a line starting with
 * SP or HTAB continues the previous one (RFC 3261 §7.3.1 folding).
 */
static int split_headers(struct sip_msg *m, const char *buf, size_t len, size_t off,
			 size_t *body_off)
{
	const char *end = buf + len;
	const char *p = buf + off;

	for (;;) {
		const char *lf, *e, *next;

		if (p >= end)
			return SIP_E_INCOMPLETE;
		if (*p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n')) {
			*body_off = (size_t)(p - buf) + (*p == '\n' ? 1 : 2);
			return 0;
		}
		if (*p == ' ' || *p == '\t') /* continuation without a header */
			return SIP_E_HEADER;
		/* find the end of the logical line, continuations included */
		/* RFC 3261 §7.3.1 folding; the limit covers the logical line */
		const char *lim = (size_t)(end - p) > SIP_MAX_LINE ? p + SIP_MAX_LINE + 1 : end;
		next = p;
		for (;;) {
			lf = memchr(next, '\n', (size_t)(lim - next));
			if (!lf)
				return lim == end ? SIP_E_INCOMPLETE : SIP_E_TOO_LONG;
			next = lf + 1;
			if (next >= end)
				return SIP_E_INCOMPLETE;
			if (*next != ' ' && *next != '\t')
				break;
		}
		size_t llen = (size_t)(lf - p);
		if (llen && p[llen - 1] == '\r')
			llen--;
		if (llen && bad_nul(p, llen))
			return SIP_E_NUL;
		e = p + llen;
		int rc = split_header(m, p, e);
		if (rc)
			return rc;
		p = next;
	}
}

/* Content-Length = 1*DIGIT (RFC 3261 §20.14); one header only (RFC 4475 mcl01). */
static int get_clen(const struct sip_msg *m, uint64_t *out)
{
	const struct sip_header *h = sip_msg_header(m, SIP_H_CONTENT_LENGTH);

	if (!h)
		return 1;
	if (sip_msg_next_header(m, h))
		return -1;
	return str_to_u64(h->value, UINT32_MAX, out) ? -1 : 0;
}

static int frame_body(struct sip_msg *m, size_t len, size_t body_off, bool stream)
{
	uint64_t cl = 0;
	size_t avail = len - body_off;
	int rc = get_clen(m, &cl);

	if (rc < 0)
		return SIP_E_CLEN;
	m->has_content_length = rc == 0;
	m->content_length = cl;
	if (rc == 1) {
		if (stream) /* RFC 3261 §18.3: mandatory on stream transports */
			return SIP_E_CLEN;
		cl = avail;
	}
	/* RFC 3261 §18.3: larger than the datagram -> discard / 400 */
	if (cl > avail || (stream && cl != avail))
		return SIP_E_CLEN;
	m->body = str_make(m->buf + body_off, (size_t)cl);
	m->len = body_off + (size_t)cl;
	return 0;
}

/* Mandatory header fields (RFC 3261 §8.1.1) and single-valued ones. */
static int check_mandatory(struct sip_msg *m)
{
	static const enum sip_hdr must[] = {SIP_H_VIA, SIP_H_FROM, SIP_H_TO, SIP_H_CALL_ID,
					    SIP_H_CSEQ};
	static const enum sip_hdr single[] = {SIP_H_FROM, SIP_H_TO, SIP_H_CALL_ID, SIP_H_CSEQ};
	uint32_t num;
	struct str meth;

	for (size_t i = 0; i < sizeof(must) / sizeof(must[0]); i++)
		if (m->first[must[i]] < 0)
			return SIP_E_MISSING;
	/* RFC 4475 multi01: duplicated single-valued fields -> 400 */
	for (size_t i = 0; i < sizeof(single) / sizeof(single[0]); i++)
		if (sip_msg_next_header(m, sip_msg_header(m, single[i])))
			return SIP_E_BAD_VALUE;
	if (sip_msg_call_id(m).len == 0)
		return SIP_E_BAD_VALUE;
	if (sip_msg_cseq(m, &num, &meth))
		return SIP_E_BAD_VALUE;
	/* RFC 3261 §8.2.2.3 / RFC 4475 mismatch01-02: CSeq method = request method */
	if (m->is_request && !str_eq(meth, m->method))
		return SIP_E_BAD_VALUE;
	return 0;
}

int sip_msg_parse(struct sip_msg *m, const char *buf, size_t len, bool stream)
{
	size_t off = 0, body_off = 0;
	const char *lf;
	struct str line;
	int rc;

	memset(m, 0, offsetof(struct sip_msg, hdrs));
	m->n_hdrs = 0;
	memset(m->first, 0xff, sizeof(m->first));
	m->body = STR_NULL;
	m->has_content_length = false;
	m->content_length = 0;
	m->top_via_state = 0;
	m->from_state = m->to_state = m->ruri_state = m->contact_state = 0;
	m->buf = buf;
	m->len = len;
	if (!buf)
		return SIP_E_INCOMPLETE;
	/* RFC 3261 §7.5: ignore CRLFs before the start line */
	while (off < len && (buf[off] == '\r' || buf[off] == '\n'))
		off++;
	m->buf = buf + off;
	buf += off;
	len -= off;
	if (len == 0)
		return SIP_E_INCOMPLETE;
	lf = memchr(buf, '\n', len < SIP_MAX_LINE + 1 ? len : SIP_MAX_LINE + 1);
	if (!lf)
		return len > SIP_MAX_LINE ? SIP_E_TOO_LONG : SIP_E_INCOMPLETE;
	line = str_make(buf, (size_t)(lf - buf));
	if (line.len && line.p[line.len - 1] == '\r')
		line.len--;
	if (memchr(line.p, 0, line.len))
		return SIP_E_NUL;
	rc = parse_start_line(m, line);
	if (rc)
		return rc;
	rc = split_headers(m, buf, len, (size_t)(lf - buf) + 1, &body_off);
	if (rc)
		return rc;
	rc = frame_body(m, len, body_off, stream);
	if (rc)
		return rc;
	return check_mandatory(m);
}

/* ---- stream framing ---- */

/* Offset just past the empty line ending the header section, or 0. */
static size_t find_hdr_end(const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len, *lf;

	while ((lf = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		const char *n = lf + 1;
		if (n < end && *n == '\n')
			return (size_t)(n + 1 - buf);
		if (n + 1 < end && n[0] == '\r' && n[1] == '\n')
			return (size_t)(n + 2 - buf);
		p = n;
	}
	return 0;
}

/* Content-Length from a raw header section; 0 ok, -1 missing/bad/duplicated. */
static int raw_clen(const char *buf, size_t hlen, uint64_t *out)
{
	const char *p = buf, *end = buf + hlen;
	int found = 0;

	/* skip the start line */
	p = memchr(p, '\n', hlen);
	while (p && ++p < end) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		const char *q = p, *e;
		if (!lf)
			break;
		while (q < lf && sip_is((unsigned char)*q, SIP_CC_TOKEN))
			q++;
		if (hdr_lookup(p, (size_t)(q - p)) == SIP_H_CONTENT_LENGTH && q > p) {
			while (q < lf && (*q == ' ' || *q == '\t'))
				q++;
			if (q == lf || *q != ':')
				return -1;
			/* value up to the end of this line and its continuations */
			e = lf;
			while (e + 1 < end && (e[1] == ' ' || e[1] == '\t')) {
				const char *l2 = memchr(e + 1, '\n', (size_t)(end - e - 1));
				if (!l2)
					break;
				e = l2;
			}
			if (found++ || str_to_u64(str_trim(str_make(q + 1, (size_t)(e - q - 1))),
						  UINT32_MAX, out))
				return -1;
		}
		p = lf;
	}
	return found ? 0 : -1;
}

long sip_msg_frame(const char *buf, size_t len, size_t max_size, size_t *skip)
{
	size_t s = 0, hlen;
	uint64_t cl;

	while (s < len && (buf[s] == '\r' || buf[s] == '\n'))
		s++;
	*skip = s;
	if (s == len)
		return SIP_E_INCOMPLETE;
	buf += s;
	len -= s;
	hlen = find_hdr_end(buf, len < max_size ? len : max_size);
	if (hlen == 0)
		return len >= max_size ? SIP_E_TOO_LONG : SIP_E_INCOMPLETE;
	if (raw_clen(buf, hlen, &cl))
		return SIP_E_CLEN; /* RFC 3261 §18.3: mandatory on streams */
	if (cl > max_size - hlen)
		return SIP_E_TOO_LONG;
	if (len - hlen < cl)
		return SIP_E_INCOMPLETE;
	return (long)(hlen + cl);
}

/* ---- headers ---- */

const struct sip_header *sip_msg_header(const struct sip_msg *m, enum sip_hdr id)
{
	if ((unsigned)id >= SIP_H__COUNT || m->first[id] < 0)
		return NULL;
	return &m->hdrs[m->first[id]];
}

const struct sip_header *sip_msg_next_header(const struct sip_msg *m, const struct sip_header *h)
{
	if (!h)
		return NULL;
	for (size_t i = (size_t)(h - m->hdrs) + 1; i < m->n_hdrs; i++)
		if (m->hdrs[i].id == h->id)
			return &m->hdrs[i];
	return NULL;
}

const struct sip_header *sip_msg_header_by_name(const struct sip_msg *m, const char *name)
{
	struct str n = str_cstr(name);

	for (size_t i = 0; i < m->n_hdrs; i++)
		if (str_caseeq(m->hdrs[i].name, n))
			return &m->hdrs[i];
	return NULL;
}

void sip_hdr_iter_init(struct sip_hdr_iter *it, const struct sip_msg *m, enum sip_hdr id)
{
	it->m = m;
	it->h = sip_msg_header(m, id);
	it->off = 0;
}

/*
 * Next element of a comma-separated list (RFC 3261 §7.3.1): commas inside
 * quoted strings and <...> do not separate. An empty element is malformed
 * (RFC 4475 badinv01); a header whose whole value is empty yields nothing.
 */
int sip_hdr_iter_next(struct sip_hdr_iter *it, struct str *value)
{
	while (it->h) {
		struct str v = it->h->value;
		size_t i = it->off, start;
		bool in_q = false, in_a = false;

		if (i == 0 && v.len == 0) {
			it->h = sip_msg_next_header(it->m, it->h);
			continue;
		}
		if (i > v.len) {
			it->h = sip_msg_next_header(it->m, it->h);
			it->off = 0;
			continue;
		}
		start = i;
		for (; i < v.len; i++) {
			char c = v.p[i];
			if (in_q) {
				if (c == '\\')
					i++;
				else if (c == '"')
					in_q = false;
			} else if (c == '"') {
				in_q = true;
			} else if (c == '<') {
				in_a = true;
			} else if (c == '>') {
				in_a = false;
			} else if (c == ',' && !in_a) {
				break;
			}
		}
		if (in_q || in_a) {
			it->h = NULL;
			return -1;
		}
		*value = str_trim(str_make(v.p + start, (i < v.len ? i : v.len) - start));
		it->off = i + 1; /* past the comma, or past the end */
		if (value->len == 0) {
			it->h = NULL;
			return -1;
		}
		return 1;
	}
	return 0;
}

/* ---- values ---- */

/* Parse the single header id into *memo once (state as top_via_state). */
static int nameaddr_memo(const struct sip_msg *m, enum sip_hdr id, int8_t *state,
			 struct sip_nameaddr *memo, struct sip_nameaddr *out)
{
	if (*state == 0) {
		const struct sip_header *h = sip_msg_header(m, id);
		memset(memo, 0, sizeof(*memo));
		*state = h && sip_nameaddr_parse(h->value, memo) == 0 ? 1 : -1;
	}
	*out = *memo;
	return *state == 1 ? 0 : -1;
}

int sip_msg_from(const struct sip_msg *m, struct sip_nameaddr *out)
{
	struct sip_msg *w = (struct sip_msg *)m; /* the memo; see top_via_state */
	return nameaddr_memo(m, SIP_H_FROM, &w->from_state, &w->from, out);
}

int sip_msg_to(const struct sip_msg *m, struct sip_nameaddr *out)
{
	struct sip_msg *w = (struct sip_msg *)m;
	return nameaddr_memo(m, SIP_H_TO, &w->to_state, &w->to, out);
}

int sip_msg_ruri(const struct sip_msg *m, struct sip_uri *out)
{
	struct sip_msg *w = (struct sip_msg *)m;

	if (m->ruri_state == 0) {
		memset(&w->ruri_parsed, 0, sizeof(w->ruri_parsed));
		w->ruri_state =
		    m->is_request && sip_uri_parse(m->ruri, &w->ruri_parsed) == 0 ? 1 : -1;
	}
	*out = m->ruri_parsed;
	return m->ruri_state == 1 ? 0 : -1;
}

int sip_msg_contact(const struct sip_msg *m, struct str v, struct sip_contact *out)
{
	struct sip_msg *w = (struct sip_msg *)m;

	if (m->contact_state != 0 && m->contact_raw.p == v.p && m->contact_raw.len == v.len) {
		if (m->contact_state != 1) {
			memset(out, 0, sizeof(*out));
			return -1;
		}
		*out = m->contact_parsed;
		return 0;
	}
	if (sip_contact_parse(v, out) == 0) {
		w->contact_parsed = *out;
		w->contact_state = 1;
	} else {
		w->contact_state = -1;
	}
	w->contact_raw = v;
	return m->contact_state == 1 ? 0 : -1;
}

struct str sip_msg_call_id(const struct sip_msg *m)
{
	const struct sip_header *h = sip_msg_header(m, SIP_H_CALL_ID);

	return h ? h->value : STR_NULL;
}

/* CSeq = 1*DIGIT LWS Method (RFC 3261 §20.16); number < 2**31 (§8.1.1.5). */
int sip_msg_cseq(const struct sip_msg *m, uint32_t *num, struct str *method)
{
	const struct sip_header *h = sip_msg_header(m, SIP_H_CSEQ);
	struct str v;
	size_t i = 0, j;
	uint64_t n;

	*num = 0;
	*method = STR_NULL;
	if (!h)
		return -1;
	v = h->value;
	while (i < v.len && v.p[i] >= '0' && v.p[i] <= '9')
		i++;
	if (i == 0 || i > 10 || str_to_u64(str_make(v.p, i), 0x7fffffffu, &n))
		return -1;
	j = sip_skip_lws(v, i);
	if (j == i || j == v.len)
		return -1;
	if (!all_token(str_make(v.p + j, v.len - j)))
		return -1;
	*num = (uint32_t)n;
	*method = str_make(v.p + j, v.len - j);
	return 0;
}

/* Unsigned decimal header value up to max; 0, 1 absent, -1 malformed. */
static int uint_header(const struct sip_msg *m, enum sip_hdr id, uint64_t max, uint32_t *out)
{
	const struct sip_header *h = sip_msg_header(m, id);
	uint64_t v;

	*out = 0;
	if (!h)
		return 1;
	if (str_to_u64(h->value, max, &v))
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* Expires = delta-seconds, 32 bits (RFC 3261 §20.19; RFC 4475 scalar02). */
int sip_msg_expires(const struct sip_msg *m, uint32_t *out)
{
	return uint_header(m, SIP_H_EXPIRES, UINT32_MAX, out);
}

/* Max-Forwards = 1*DIGIT in 0-255 (RFC 3261 §20.22; RFC 4475 scalar02). */
int sip_msg_max_forwards(const struct sip_msg *m, uint32_t *out)
{
	return uint_header(m, SIP_H_MAX_FORWARDS, 255, out);
}

int sip_msg_top_via(const struct sip_msg *m, struct sip_via *out)
{
	struct sip_msg *memo = (struct sip_msg *)m; /* see top_via_state */
	struct sip_hdr_iter it;
	struct str v;

	if (m->top_via_state == 0) {
		memset(&memo->top_via, 0, sizeof(memo->top_via));
		sip_hdr_iter_init(&it, m, SIP_H_VIA);
		memo->top_via_state =
		    sip_hdr_iter_next(&it, &v) > 0 && sip_via_parse(v, &memo->top_via) == 0 ? 1
											    : -1;
	}
	*out = m->top_via;
	return m->top_via_state == 1 ? 0 : -1;
}
