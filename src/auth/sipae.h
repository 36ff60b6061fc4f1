/*
 * [MS-SIPAE] wire codec: the NTLM / Kerberos / TLS-DSK credentials a client
 * sends (Authorization, Proxy-Authorization), the challenges and
 * Authentication-Info headers the server writes, and the signature buffer
 * both sides sign (PROTOCOLS.md §1). Pure: no I/O, no allocation, no
 * secrets, no logging.
 */
#ifndef RTC_AUTH_SIPAE_H
#define RTC_AUTH_SIPAE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/sa.h"
#include "core/sbuf.h"
#include "core/str.h"

struct sip_msg;

#define SIPAE_MAX_FIELD	   256	 /* realm, targetname, opaque, crand, qop... */
#define SIPAE_MAX_GSSAPI   12288 /* base64 characters of gssapi-data */
#define SIPAE_MAX_RESPONSE 256	 /* hex characters of response / rspauth */
#define SIPAE_MAX_PARAMS   32
#define SIPAE_SIGBUF_MAX   4096 /* largest signature buffer built */

/* Parsed credentials; strings point into the header value, quotes removed. */
struct sipae_creds {
	enum sa_scheme scheme;
	struct str scheme_str;
	struct str qop;
	struct str realm;
	struct str targetname;
	struct str opaque;
	bool has_gssapi_data;	/* present, possibly empty ("") */
	struct str gssapi_data; /* base64 as sent */
	struct str crand;	/* 8 hex digits when present */
	bool has_cnum;
	struct str cnum_str;
	uint32_t cnum;
	struct str response; /* hex as sent */
	int version;	     /* 0 when absent */
	struct str epid;     /* optional client device id ("epid"), if sent */
};

enum {
	SIPAE_E_SCHEME = -1,	/* not NTLM, Kerberos or TLS-DSK */
	SIPAE_E_SYNTAX = -2,	/* quoting, token or '=' errors */
	SIPAE_E_DUPLICATE = -3, /* a parameter twice */
	SIPAE_E_TOO_LONG = -4,	/* a field over its bound, or too many parameters */
	SIPAE_E_VALUE = -5,	/* cnum not a decimal 1..2^32-1 (no sign, no leading
				   zero), crand not 8 hex digits, version not a decimal
				   1..99, response not hex (even length), gssapi-data
				   with a character outside the base64 alphabet */
	SIPAE_E_MISSING = -6,	/* neither gssapi-data nor (crand, cnum, response);
				   or crand/cnum/response given without the others */
};
const char *sipae_strerror(int err);

/* Parse an Authorization / Proxy-Authorization value. 0 or SIPAE_E_*. */
int sipae_parse_credentials(struct str value, struct sipae_creds *out);

/*
 * The message fields the signature covers (PROTOCOLS.md §1), in buffer
 * order after scheme, rand, num, realm and targetname. Each points into a
 * message (or anything the caller holds); empty = absent ("<>").
 */
enum {
	SIPAE_F_CALL_ID = 0,
	SIPAE_F_CSEQ_NUM,
	SIPAE_F_CSEQ_METHOD,
	SIPAE_F_FROM_URI,
	SIPAE_F_FROM_TAG,
	SIPAE_F_TO_URI,
	SIPAE_F_TO_TAG,
	SIPAE_F_PAI_SIP, /* P-Asserted-Identity sip: / sips: URI */
	SIPAE_F_PAI_TEL, /* P-Asserted-Identity tel: URI */
	SIPAE_F_EXPIRES,
	SIPAE_F_STATUS, /* responses only */
	SIPAE_F__COUNT
};
struct sipae_fields {
	struct str f[SIPAE_F__COUNT];
};

/*
 * Fill fields from a parsed message, exactly as [MS-SIPAE] takes them, byte
 * for byte as written ([MS-SIP] 3.1.4.2; checked against pidgin-sipe's
 * sipe-sign.c and its OCS 2007 R2 trace):
 *  - Call-ID: the header value; CSeq number and method: the two tokens of
 *    the CSeq value as written;
 *  - From/To URI: what is inside <> (URI parameters kept), or the bare
 *    addr-spec; header parameters (tag, epid) are not part of it; tag: the
 *    tag parameter's value;
 *  - PAI sip / tel: the first sip:/sips: and the first tel: URI among all
 *    P-Asserted-Identity values; with no P-Asserted-Identity header, the
 *    first P-Preferred-Identity value (as sipe signs it);
 *  - Expires: the Expires header value only, empty when there is none (a
 *    Contact's expires parameter is never used: sipe reads the header only,
 *    so a REGISTER 200 must carry an Expires header);
 *  - status: responses only.
 * status_buf (>= 4 bytes) holds the status digits. 0, or -1 when the message
 * lacks Call-ID, CSeq, From or To or they do not parse.
 */
int sipae_fields_from_msg(const struct sip_msg *m, struct sipae_fields *out, char status_buf[4]);

/*
 * Build the signature buffer: <scheme><rand><num><realm><targetname> then
 * the fields, each in <>; SIPAE_F_STATUS only when not empty (requests have
 * no status and no "<>" for it: [MS-SIP] 3.1.4.2, the sipe trace). scheme is
 * the scheme token as written in the header. Returns its length, or -1 when
 * it does not fit cap or SIPAE_SIGBUF_MAX.
 */
long sipae_sig_buffer(struct str scheme, struct str rand, struct str num, struct str realm,
		      struct str targetname, const struct sipae_fields *f, char *out, size_t cap);

/*
 * Write one challenge header line (hdr is "WWW-Authenticate" or
 * "Proxy-Authenticate"), CRLF-terminated:
 *   <hdr>: <scheme> realm="...", targetname="...", version=<v>
 * plus, when not empty, opaque="..." and gssapi-data="..." (the NTLM
 * CHALLENGE of the second leg), and for TLS-DSK sts-uri="...".
 */
void sipae_challenge_write(struct sbuf *b, const char *hdr, enum sa_scheme scheme, struct str realm,
			   struct str targetname, int version, struct str opaque,
			   struct str gssapi_data, struct str sts_uri);

/*
 * Write the signature header line of a signed server message (hdr is
 * "Authentication-Info" or "Proxy-Authentication-Info"):
 *   <hdr>: <scheme> opaque="...", qop="auth", realm="...", targetname="...",
 *     rspauth="<hex>", srand="<8 hex>", snum="<n>"[, version=<v>]
 * CRLF-terminated. gssapi_data, when not empty, is added (Kerberos mutual
 * authentication token in the final 200).
 */
void sipae_auth_info_write(struct sbuf *b, const char *hdr, enum sa_scheme scheme,
			   struct str opaque, struct str realm, struct str targetname,
			   struct str rspauth, struct str srand, uint32_t snum,
			   struct str gssapi_data);

/* 8 random upper-case hex digits (crand/srand), NUL-terminated. 0 or -1. */
int sipae_rand(char out[9]);

#endif
