/*
 * SIP message parser (RFC 3261 §7, §25). Pure: no I/O, no allocation.
 *
 * sip_msg_parse() splits a complete message held in the caller's buffer into
 * start line, header fields and body, recognising header names (long and
 * compact forms, case-insensitive) but parsing no header value. Accessors
 * parse a value only when someone asks for it (lazy): Via, From, To, CSeq,
 * Contact, Expires, ... All returned struct str point into the buffer, so
 * the buffer must outlive the struct sip_msg.
 *
 * Limits: the parser refuses more than SIP_MAX_HEADERS header fields, header
 * lines longer than SIP_MAX_LINE, and bodies whose Content-Length disagrees
 * with the bytes present (see sip_msg_parse for the rules).
 */
#ifndef RTC_SIP_MSG_H
#define RTC_SIP_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

#define SIP_MAX_HEADERS 128
#define SIP_MAX_LINE	8192

enum sip_method {
	SIP_M_OTHER = 0,
	SIP_M_INVITE,
	SIP_M_ACK,
	SIP_M_BYE,
	SIP_M_CANCEL,
	SIP_M_REGISTER,
	SIP_M_OPTIONS,
	SIP_M_MESSAGE,
	SIP_M_SUBSCRIBE,
	SIP_M_NOTIFY,
	SIP_M_PUBLISH,
	SIP_M_INFO,
	SIP_M_PRACK,
	SIP_M_UPDATE,
	SIP_M_REFER,
	SIP_M_SERVICE,
	SIP_M_NEGOTIATE,
};

/* Header ids; compact forms map to the same id (RFC 3261 §7.3.3, RFC 3515...). */
enum sip_hdr {
	SIP_H_OTHER = 0,
	SIP_H_VIA,     /* v */
	SIP_H_FROM,    /* f */
	SIP_H_TO,      /* t */
	SIP_H_CALL_ID, /* i */
	SIP_H_CSEQ,
	SIP_H_CONTACT, /* m */
	SIP_H_EXPIRES,
	SIP_H_CONTENT_LENGTH,	/* l */
	SIP_H_CONTENT_TYPE,	/* c */
	SIP_H_CONTENT_ENCODING, /* e */
	SIP_H_MAX_FORWARDS,
	SIP_H_ROUTE,
	SIP_H_RECORD_ROUTE,
	SIP_H_PATH,
	SIP_H_AUTHORIZATION,
	SIP_H_PROXY_AUTHORIZATION,
	SIP_H_WWW_AUTHENTICATE,
	SIP_H_PROXY_AUTHENTICATE,
	SIP_H_AUTHENTICATION_INFO,
	SIP_H_PROXY_AUTHENTICATION_INFO,
	SIP_H_REQUIRE,
	SIP_H_PROXY_REQUIRE,
	SIP_H_SUPPORTED, /* k */
	SIP_H_UNSUPPORTED,
	SIP_H_ALLOW,
	SIP_H_USER_AGENT,
	SIP_H_SERVER,
	SIP_H_MIN_EXPIRES,
	SIP_H_DATE,
	SIP_H_P_ASSERTED_IDENTITY,
	SIP_H_SUBJECT,	/* s */
	SIP_H_EVENT,	/* o */
	SIP_H_REFER_TO, /* r */
	SIP_H_ACCEPT,
	SIP_H_RETRY_AFTER,
	SIP_H__COUNT
};

struct sip_header {
	enum sip_hdr id;
	struct str name;  /* as written */
	struct str value; /* trimmed; may contain folded CRLF+WSP (treat as SP) */
};

struct sip_via {
	struct str raw;	      /* the whole via-parm */
	struct str transport; /* "UDP", "TCP", "TLS", ... */
	struct str host;      /* IPv6 without brackets */
	uint16_t port;	      /* 0 = absent */
	struct str branch;
	struct str received;
	bool has_rport;
	struct str rport; /* value, empty when "rport" has none */
	struct str params;
};

/* SIP/SIPS/TEL URI (RFC 3261 §19.1, §25.1). */
struct sip_uri {
	struct str scheme; /* "sip", "sips", "tel", other */
	struct str user;   /* may be empty; escaped as written */
	struct str password;
	struct str host; /* IPv6 without brackets */
	bool host_is_v6;
	uint16_t port;	      /* 0 = absent */
	struct str params;    /* ";a=b;lr" without the first ';', or empty */
	struct str headers;   /* after '?', or empty */
	struct str transport; /* value of the transport param, or empty */
	bool lr;
};

/* name-addr / addr-spec with header params (From, To, Contact, Route...). */
struct sip_nameaddr {
	struct str display; /* unquoted as written, may be empty */
	struct str uri_str; /* inside <>, or the addr-spec */
	struct sip_uri uri;
	struct str params; /* header params after the URI, without the first ';' */
	struct str tag;	   /* value of ;tag=, empty if absent */
};

/* One Contact value; for "*" is_star is set and the rest is empty. */
struct sip_contact {
	bool is_star;
	struct sip_nameaddr na;
	bool has_expires;
	uint32_t expires;    /* ;expires= clamped to 2^32-1 */
	struct str instance; /* +sip.instance value with quotes and <> removed */
	bool has_reg_id;
	uint32_t reg_id;
	struct str q;
};

struct sip_msg {
	const char *buf;
	size_t len; /* bytes of this message (start line to end of body) */

	bool is_request;
	/* request line */
	struct str method;
	enum sip_method method_id;
	struct str ruri;
	/* status line */
	int status;
	struct str reason;
	struct str version; /* "SIP/2.0" */

	struct sip_header hdrs[SIP_MAX_HEADERS];
	size_t n_hdrs;
	/* index into hdrs of the first header with each id, or -1 */
	int16_t first[SIP_H__COUNT];

	struct str body;
	bool has_content_length;
	uint64_t content_length;

	/* memo of sip_msg_top_via (every request asks for it several times);
	 * filled on first call, reset by sip_msg_parse. Makes a parsed message
	 * unsafe to share between threads, which nothing does. */
	int8_t top_via_state; /* 0 unknown, 1 parsed, -1 malformed */
	struct sip_via top_via;
	/* likewise for From, To, the Request-URI and one Contact value (the
	 * sanity checks, authentication and the registrar each look at them) */
	int8_t from_state, to_state, ruri_state, contact_state;
	struct sip_nameaddr from, to;
	struct sip_uri ruri_parsed;
	struct str contact_raw; /* the value contact_parsed was parsed from */
	struct sip_contact contact_parsed;
};

/* Error codes: negative; sip_msg_strerror() gives a short reason phrase. */
enum {
	SIP_E_OK = 0,
	SIP_E_INCOMPLETE = -1, /* more bytes needed (stream framing) */
	SIP_E_START_LINE = -2, /* malformed request or status line */
	SIP_E_VERSION = -3,    /* not SIP/2.0: answer 505 */
	SIP_E_HEADER = -4,     /* malformed header line */
	SIP_E_TOO_MANY = -5,   /* more than SIP_MAX_HEADERS */
	SIP_E_TOO_LONG = -6,   /* a line over SIP_MAX_LINE, or message over the cap: 513 */
	SIP_E_CLEN = -7,       /* Content-Length bad, or larger than the bytes present */
	SIP_E_MISSING = -8,    /* a mandatory header is missing (Via, From, To, Call-ID, CSeq) */
	SIP_E_BAD_VALUE = -9,  /* a mandatory header's value is malformed */
	SIP_E_NUL = -10,       /* NUL byte in the header section */
};
const char *sip_msg_strerror(int err);

/*
 * Parse one complete message (datagram, or a message framed by
 * sip_msg_frame). Rules:
 *  - leading CRLFs are skipped (RFC 3261 §7.5);
 *  - the start line must be well formed; unknown methods are accepted
 *    (method_id SIP_M_OTHER); version must be SIP/2.0 (SIP_E_VERSION);
 *  - header lines end with CRLF (bare LF accepted); continuation lines start
 *    with SP or HTAB and are folded into the previous value;
 *  - Via, From, To, Call-ID, CSeq and (for requests) Max-Forwards... are
 *    checked for presence; From, To, CSeq, Call-ID must be single-valued and
 *    CSeq's number and method must parse and (requests) match the request
 *    method; duplicated single headers -> SIP_E_BAD_VALUE;
 *  - datagram (stream == false): the body is bytes after the blank line,
 *    truncated to Content-Length if that is smaller; larger -> SIP_E_CLEN;
 *    stream: Content-Length is mandatory (RFC 3261 §18.3) and exact.
 * On error *m is partly filled (enough to answer 400 if Via/From/To/Call-ID/
 * CSeq were found) and the return value says why.
 */
int sip_msg_parse(struct sip_msg *m, const char *buf, size_t len, bool stream);

/*
 * Stream framing: look at the bytes received so far on a TCP/TLS connection.
 * Returns the length of the first complete message (>0), SIP_E_INCOMPLETE if
 * more bytes are needed, SIP_E_TOO_LONG if the header section or
 * Content-Length exceeds max_size, SIP_E_CLEN for a missing/bad
 * Content-Length. *skip is set to the number of leading CRLF bytes (RFC 5626
 * keep-alives: "\r\n\r\n" ping, "\r\n" pong) to drop before the message; a
 * buffer that is only CRLFs returns SIP_E_INCOMPLETE with *skip = its length.
 */
long sip_msg_frame(const char *buf, size_t len, size_t max_size, size_t *skip);

/* First header with this id, or NULL. */
const struct sip_header *sip_msg_header(const struct sip_msg *m, enum sip_hdr id);
/* Next header with the same id after h, or NULL. */
const struct sip_header *sip_msg_next_header(const struct sip_msg *m, const struct sip_header *h);
/* First header whose name equals name (case-insensitive), for SIP_H_OTHER ones. */
const struct sip_header *sip_msg_header_by_name(const struct sip_msg *m, const char *name);

/*
 * Iterate comma-separated values across all headers with one id
 * (RFC 3261 §7.3.1), respecting quoted strings and <...>.
 *   struct sip_hdr_iter it; struct str v;
 *   sip_hdr_iter_init(&it, m, SIP_H_CONTACT);
 *   while (sip_hdr_iter_next(&it, &v) > 0) ...
 * next returns 1 with a trimmed value, 0 at the end, -1 malformed.
 */
struct sip_hdr_iter {
	const struct sip_msg *m;
	const struct sip_header *h;
	size_t off;
};
void sip_hdr_iter_init(struct sip_hdr_iter *it, const struct sip_msg *m, enum sip_hdr id);
int sip_hdr_iter_next(struct sip_hdr_iter *it, struct str *value);

/* ---- values ---- */

/* 0 or -1. Accepts only sip: and sips: fully; tel: and others fill scheme
 * and put the rest in user. */
int sip_uri_parse(struct str s, struct sip_uri *out);
/* Find a URI parameter (name case-insensitive); 1 found (value may be empty), 0 not. */
int sip_param_get(struct str params, const char *name, struct str *value);

/* 0 or -1 (also -1 if the URI does not parse as sip/sips/tel). */
int sip_nameaddr_parse(struct str s, struct sip_nameaddr *out);

int sip_msg_from(const struct sip_msg *m, struct sip_nameaddr *out);
int sip_msg_to(const struct sip_msg *m, struct sip_nameaddr *out);
/* The Call-ID value, empty if absent. */
struct str sip_msg_call_id(const struct sip_msg *m);
int sip_msg_cseq(const struct sip_msg *m, uint32_t *num, struct str *method);
/* Expires header: 0 ok, 1 absent, -1 malformed (not a 32-bit delta-seconds). */
int sip_msg_expires(const struct sip_msg *m, uint32_t *out);
/* Max-Forwards: 0 ok, 1 absent, -1 malformed. */
int sip_msg_max_forwards(const struct sip_msg *m, uint32_t *out);

/* Parse one via-parm (a value from sip_hdr_iter over SIP_H_VIA). 0 or -1. */
int sip_via_parse(struct str s, struct sip_via *out);
/* The topmost via-parm. 0 or -1. */
int sip_msg_top_via(const struct sip_msg *m, struct sip_via *out);
/* The Request-URI parsed (memoised); 0 or -1 if malformed. */
int sip_msg_ruri(const struct sip_msg *m, struct sip_uri *out);
/* sip_contact_parse of a Contact value v of m, memoised for one value (a
 * REGISTER usually has one Contact, parsed by several steps). */
int sip_msg_contact(const struct sip_msg *m, struct str v, struct sip_contact *out);

/* Parse one Contact value. 0 or -1. */
int sip_contact_parse(struct str s, struct sip_contact *out);

#endif
