/*
 * STUN message codec (RFC 8489) with the TURN attributes and ChannelData
 * framing (RFC 8656). A pure codec: no I/O, no allocation, no logging, no
 * secrets kept. Everything a parser hands out points into the caller's
 * buffer, which must outlive the parsed message: receiving the next datagram
 * into the same buffer changes a struct str taken from the previous one
 * (copy REALM or NONCE out if it must survive).
 *
 * Receiving, in order:
 *   1. stun_classify() on the first byte decides STUN vs ChannelData vs other
 *      (RFC 7983 demultiplexing); on a TCP/TLS stream stun_frame() says how
 *      many bytes the next message takes.
 *   2. stun_parse() checks the header and walks the attributes with bounds;
 *      on success struct stun_msg indexes every attribute that counts
 *      (RFC 8489 §14.5/§14.6: after MESSAGE-INTEGRITY only
 *      MESSAGE-INTEGRITY-SHA256 and FINGERPRINT count; after
 *      MESSAGE-INTEGRITY-SHA256 only FINGERPRINT; after FINGERPRINT nothing)
 *      and lists unknown comprehension-required types (a request gets 420
 *      with UNKNOWN-ATTRIBUTES: stun_build_unknown_attributes; an indication
 *      with one is discarded, RFC 8489 §6.3.1).
 *   3. stun_check_fingerprint(), then stun_check_integrity() /
 *      stun_check_integrity_sha256() with the key (constant time).
 *   4. stun_find() / stun_find_next() and the stun_get_*() decoders read the
 *      attributes on demand. Decoders validate the value's length and form.
 *
 * Sending: stun_build_init() over a caller buffer, stun_build_*() appends
 * (each attribute padded to 4 bytes, the header length kept current), then
 * optionally stun_build_integrity(), stun_build_integrity_sha256() and
 * stun_build_fingerprint() in that order, then stun_build_finish(). Errors
 * are sticky: after a failed append every later call fails too and
 * stun_build_finish() returns that first error, so callers may check once at
 * the end.
 *
 * What this module never does: SASLprep/OpaqueString (keys arrive already
 * derived, see turn/cred.h), compare a MAC with memcmp, read past the bytes
 * it was given.
 */
#ifndef RTC_TURN_STUN_H
#define RTC_TURN_STUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

#define STUN_HEADER_LEN	     20
#define STUN_MAGIC_COOKIE    0x2112A442u
#define STUN_TID_LEN	     12
#define STUN_MAX_ATTRS	     48 /* attributes indexed per message; more is STUN_E_TOO_MANY */
#define STUN_MAX_UNKNOWN     16 /* unknown comprehension-required types listed */
#define STUN_MAX_MSG	     (STUN_HEADER_LEN + 0xFFFC) /* largest length a header can state */
#define STUN_FINGERPRINT_XOR 0x5354554Eu
#define STUN_MI_LEN	     20 /* MESSAGE-INTEGRITY value (HMAC-SHA1) */
#define STUN_MI256_LEN	     32 /* MESSAGE-INTEGRITY-SHA256 value we send */
#define STUN_MI256_MIN	     16 /* shortest truncation a receiver accepts (§14.6) */
#define STUN_USERHASH_LEN    32

/* RFC 8489 §14.3: USERNAME < 513 bytes (we accept 513 as the issue asks); §14.9, §14.10:
 * REALM and NONCE < 128 characters, at most 763 bytes; §14.8/§14.14 reason and SOFTWARE too. */
#define STUN_MAX_USERNAME 513
#define STUN_MAX_TEXT	  763

/* Methods (RFC 8489 §18.2, RFC 8656 §17). */
enum {
	STUN_METHOD_BINDING = 0x001,
	STUN_METHOD_ALLOCATE = 0x003,
	STUN_METHOD_REFRESH = 0x004,
	STUN_METHOD_SEND = 0x006,
	STUN_METHOD_DATA = 0x007,
	STUN_METHOD_CREATE_PERMISSION = 0x008,
	STUN_METHOD_CHANNEL_BIND = 0x009,
};

/* Classes (RFC 8489 §5). */
enum stun_class {
	STUN_REQUEST = 0,
	STUN_INDICATION = 1,
	STUN_SUCCESS = 2,
	STUN_ERROR_RESPONSE = 3,
};

/* Attribute types (RFC 8489 §18.3, RFC 8656 §18, RFC 8445 §16.1). */
enum {
	/* comprehension-required (0x0000-0x7FFF) */
	STUN_ATTR_MAPPED_ADDRESS = 0x0001,
	STUN_ATTR_USERNAME = 0x0006,
	STUN_ATTR_MESSAGE_INTEGRITY = 0x0008,
	STUN_ATTR_ERROR_CODE = 0x0009,
	STUN_ATTR_UNKNOWN_ATTRIBUTES = 0x000A,
	STUN_ATTR_CHANNEL_NUMBER = 0x000C,
	STUN_ATTR_LIFETIME = 0x000D,
	STUN_ATTR_XOR_PEER_ADDRESS = 0x0012,
	STUN_ATTR_DATA = 0x0013,
	STUN_ATTR_REALM = 0x0014,
	STUN_ATTR_NONCE = 0x0015,
	STUN_ATTR_XOR_RELAYED_ADDRESS = 0x0016,
	STUN_ATTR_REQUESTED_ADDRESS_FAMILY = 0x0017,
	STUN_ATTR_EVEN_PORT = 0x0018,
	STUN_ATTR_REQUESTED_TRANSPORT = 0x0019,
	STUN_ATTR_DONT_FRAGMENT = 0x001A,
	STUN_ATTR_MESSAGE_INTEGRITY_SHA256 = 0x001C,
	STUN_ATTR_PASSWORD_ALGORITHM = 0x001D,
	STUN_ATTR_USERHASH = 0x001E,
	STUN_ATTR_XOR_MAPPED_ADDRESS = 0x0020,
	STUN_ATTR_RESERVATION_TOKEN = 0x0022,
	STUN_ATTR_PRIORITY = 0x0024,
	STUN_ATTR_USE_CANDIDATE = 0x0025,
	/* comprehension-optional (0x8000-0xFFFF) */
	STUN_ATTR_ADDITIONAL_ADDRESS_FAMILY = 0x8000,
	STUN_ATTR_ADDRESS_ERROR_CODE = 0x8001,
	STUN_ATTR_PASSWORD_ALGORITHMS = 0x8002,
	STUN_ATTR_ALTERNATE_DOMAIN = 0x8003,
	STUN_ATTR_ICMP = 0x8004,
	STUN_ATTR_SOFTWARE = 0x8022,
	STUN_ATTR_ALTERNATE_SERVER = 0x8023,
	STUN_ATTR_FINGERPRINT = 0x8028,
	STUN_ATTR_ICE_CONTROLLED = 0x8029,
	STUN_ATTR_ICE_CONTROLLING = 0x802A,
};

/* PASSWORD-ALGORITHM numbers (RFC 8489 §18.5). */
enum {
	STUN_PWALG_MD5 = 0x0001,
	STUN_PWALG_SHA256 = 0x0002,
};

/* Address families of the address attributes and REQUESTED-ADDRESS-FAMILY. */
enum {
	STUN_AF_IPV4 = 0x01,
	STUN_AF_IPV6 = 0x02,
};

/* Transport protocol numbers of REQUESTED-TRANSPORT (RFC 8656 §18.6). */
#define STUN_TRANSPORT_UDP 17
#define STUN_TRANSPORT_TCP 6

/*
 * Channel numbers a client may bind (RFC 8656 §12). 0x5000-0x7FFF look like
 * ChannelData on the wire (first bits 01) and were valid under RFC 5766, but
 * RFC 8656 reserves them (RFC 7983). coturn accepts the RFC 5766 range and its
 * turnutils_uclient binds numbers like 0x5DA3 and 0x73D9: a server that must
 * serve it accepts up to STUN_CHANNEL_MAX_RFC5766 (the decoders below report
 * STUN_E_CHANNEL and still fill in the number, so the caller decides).
 */
#define STUN_CHANNEL_MIN	 0x4000
#define STUN_CHANNEL_MAX	 0x4FFF
#define STUN_CHANNEL_MAX_RFC5766 0x7FFF

/* Errors: every function returns 0 (or a length) on success, one of these. */
enum stun_err {
	STUN_E_SHORT = -1,	  /* fewer bytes than a header, or than the header states */
	STUN_E_NOT_STUN = -2,	  /* first two bits not 00 (or not 01 for ChannelData) */
	STUN_E_COOKIE = -3,	  /* magic cookie is not 0x2112A442 */
	STUN_E_LENGTH = -4,	  /* length not a multiple of 4, or not the bytes present */
	STUN_E_ATTR_LEN = -5,	  /* an attribute's length runs past the message */
	STUN_E_TOO_MANY = -6,	  /* more than STUN_MAX_ATTRS attributes */
	STUN_E_VALUE = -7,	  /* an attribute's value is malformed (length, family, ...) */
	STUN_E_ABSENT = -8,	  /* the attribute to check or read is not in the message */
	STUN_E_INTEGRITY = -9,	  /* MESSAGE-INTEGRITY(-SHA256) does not match the key */
	STUN_E_FINGERPRINT = -10, /* FINGERPRINT does not match */
	STUN_E_CHANNEL = -11,	  /* channel number outside 0x4000-0x4FFF */
	STUN_E_SPACE = -12,	  /* builder: the caller's buffer is full */
	STUN_E_ORDER = -13,	  /* builder: attribute after integrity/fingerprint */
	STUN_E_INTERNAL = -14,	  /* a crypto library call failed */
};

/* A short constant name of an error ("attribute length overflow"), for logs. */
const char *stun_strerror(int err);

/* One attribute of a parsed message; the value is m->buf + off, len bytes. */
struct stun_attr {
	uint16_t type;
	uint16_t len;
	uint32_t off;
};

/*
 * A parsed message. Plain data, no ownership: buf is the caller's buffer.
 * attrs lists, in order, the attributes that count (see the top comment);
 * mi, mi256, fp index attrs (or -1). unknown lists distinct unknown
 * comprehension-required types (up to STUN_MAX_UNKNOWN; nunknown may be
 * larger when more were seen, only the first STUN_MAX_UNKNOWN are kept).
 */
struct stun_msg {
	const uint8_t *buf;
	size_t len; /* header + attributes */
	uint16_t type;
	uint16_t method;
	enum stun_class cls;
	const uint8_t *tid; /* STUN_TID_LEN bytes inside buf */
	unsigned nattrs;
	int mi, mi256, fp;
	unsigned nunknown;
	struct stun_attr attrs[STUN_MAX_ATTRS];
	uint16_t unknown[STUN_MAX_UNKNOWN];
};

/* What a datagram or stream chunk starts with (RFC 7983, RFC 8656 §12). */
enum stun_kind {
	STUN_KIND_OTHER = 0,
	STUN_KIND_STUN = 1,    /* first two bits 00 */
	STUN_KIND_CHANNEL = 2, /* first two bits 01 (0x4000-0x7FFF) */
};
enum stun_kind stun_classify(const uint8_t *buf, size_t n);

/*
 * Stream framing (TCP/TLS, RFC 8656 §12.5: ChannelData padded to 4 bytes on
 * streams). Given the n bytes received so far, *need is set to the total size
 * of the next message: read until n >= *need, then the message is
 * buf[0..*need). With fewer than 4 bytes, *need is 4. Returns 0, or
 * STUN_E_NOT_STUN (first bits 10/11), STUN_E_LENGTH (STUN length not a
 * multiple of 4), STUN_E_COOKIE (bad cookie, once 8 bytes are there): the
 * stream is then out of sync and must be closed. ChannelData with a reserved
 * number (0x5000-0x7FFF) is framed like any other, so the stream stays in
 * sync; stun_channel_data_parse() then refuses it (discard it).
 */
int stun_frame(const uint8_t *buf, size_t n, size_t *need);

/*
 * Parse a STUN message that is exactly n bytes (one UDP datagram, or one
 * framed stream message). RFC 8489 §6.3: first two bits zero, magic cookie,
 * length a multiple of 4 equal to n - 20; attributes walked with bounds;
 * MESSAGE-INTEGRITY must be 20 bytes, MESSAGE-INTEGRITY-SHA256 16-32 bytes in
 * steps of 4, FINGERPRINT 4 bytes (else STUN_E_VALUE). 0 or an error; on error
 * *m is unspecified.
 */
int stun_parse(const uint8_t *buf, size_t n, struct stun_msg *m);

/* Is this type one the codec decodes (reported as unknown otherwise)? */
bool stun_attr_known(uint16_t type);
/* Is this type comprehension-required (0x0000-0x7FFF)? */
static inline bool stun_attr_required(uint16_t type)
{
	return type < 0x8000;
}

/* The first attribute of this type, or NULL. */
const struct stun_attr *stun_find(const struct stun_msg *m, uint16_t type);
/* The next attribute of this type after prev (for XOR-PEER-ADDRESS), or NULL. */
const struct stun_attr *stun_find_next(const struct stun_msg *m, const struct stun_attr *prev);
static inline const uint8_t *stun_attr_value(const struct stun_msg *m, const struct stun_attr *a)
{
	return m->buf + a->off;
}

/* ---- checks ---- */

/*
 * MESSAGE-INTEGRITY (HMAC-SHA1, RFC 8489 §14.5) with this key (long-term:
 * 16 bytes from turn_cred_key(); short-term: the password). Constant-time
 * comparison. 0, STUN_E_ABSENT, STUN_E_INTEGRITY or STUN_E_INTERNAL.
 */
int stun_check_integrity(const struct stun_msg *m, const uint8_t *key, size_t keylen);
/* MESSAGE-INTEGRITY-SHA256 (HMAC-SHA256, possibly truncated, §14.6). Same returns. */
int stun_check_integrity_sha256(const struct stun_msg *m, const uint8_t *key, size_t keylen);
/* FINGERPRINT (§14.7). 0, STUN_E_ABSENT or STUN_E_FINGERPRINT. */
int stun_check_fingerprint(const struct stun_msg *m);

/* ---- attribute decoders: 0 or STUN_E_VALUE (or as noted) ---- */

/* An IP transport address. ip holds 4 (IPv4) or 16 (IPv6) bytes, network order. */
struct stun_addr {
	uint8_t family; /* STUN_AF_IPV4 or STUN_AF_IPV6 */
	uint16_t port;	/* host order */
	uint8_t ip[16];
};
struct sockaddr;
/* Conversions with struct sockaddr_in / sockaddr_in6. 0 or -1 (other family, short len). */
int stun_addr_from_sockaddr(struct stun_addr *a, const struct sockaddr *sa);
int stun_addr_to_sockaddr(const struct stun_addr *a, struct sockaddr *sa, size_t salen);

/* MAPPED-ADDRESS / ALTERNATE-SERVER form (§14.1). */
int stun_get_addr(const struct stun_msg *m, const struct stun_attr *a, struct stun_addr *out);
/* XOR-MAPPED-ADDRESS, XOR-PEER-ADDRESS, XOR-RELAYED-ADDRESS (§14.2). */
int stun_get_xor_addr(const struct stun_msg *m, const struct stun_attr *a, struct stun_addr *out);
/* A 32-bit value (LIFETIME, PRIORITY): exactly 4 bytes. */
int stun_get_u32(const struct stun_msg *m, const struct stun_attr *a, uint32_t *out);
/* Text at most max bytes (USERNAME: STUN_MAX_USERNAME; REALM, NONCE, SOFTWARE:
 * STUN_MAX_TEXT). Not NUL-terminated; no UTF-8 validation. */
int stun_get_text(const struct stun_msg *m, const struct stun_attr *a, size_t max, struct str *out);
/* USERNAME, REALM, NONCE of the message with their limits: 0, STUN_E_ABSENT, STUN_E_VALUE. */
int stun_get_username(const struct stun_msg *m, struct str *out);
int stun_get_realm(const struct stun_msg *m, struct str *out);
int stun_get_nonce(const struct stun_msg *m, struct str *out);
/* USERHASH: exactly 32 bytes; *out points into the message. */
int stun_get_userhash(const struct stun_msg *m, const struct stun_attr *a, const uint8_t **out);
/* ERROR-CODE (§14.8): code 300-699, reason at most STUN_MAX_TEXT bytes. */
int stun_get_error(const struct stun_msg *m, const struct stun_attr *a, int *code,
		   struct str *reason);
/* UNKNOWN-ATTRIBUTES (§14.13): up to cap types; *n the number present (may exceed cap). */
int stun_get_unknown_attributes(const struct stun_msg *m, const struct stun_attr *a,
				uint16_t *types, size_t cap, size_t *n);
/* PASSWORD-ALGORITHM (§14.12): the algorithm number; parameters are skipped (bounded). */
int stun_get_password_algorithm(const struct stun_msg *m, const struct stun_attr *a, uint16_t *alg);
/* PASSWORD-ALGORITHMS (§14.11): the algorithm numbers, up to cap; *n as above. */
int stun_get_password_algorithms(const struct stun_msg *m, const struct stun_attr *a,
				 uint16_t *algs, size_t cap, size_t *n);
/* REQUESTED-TRANSPORT (RFC 8656 §18.6): the protocol number (17 UDP, 6 TCP). */
int stun_get_requested_transport(const struct stun_msg *m, const struct stun_attr *a,
				 uint8_t *proto);
/* CHANNEL-NUMBER (RFC 8656 §18.1): *out is set; STUN_E_CHANNEL if outside
 * 0x4000-0x4FFF (RFC 8656 §12.2: answer 400; see STUN_CHANNEL_MAX_RFC5766). */
int stun_get_channel_number(const struct stun_msg *m, const struct stun_attr *a, uint16_t *out);
/* REQUESTED-ADDRESS-FAMILY / ADDITIONAL-ADDRESS-FAMILY: STUN_AF_IPV4 or STUN_AF_IPV6. */
int stun_get_family(const struct stun_msg *m, const struct stun_attr *a, uint8_t *family);
/* EVEN-PORT (RFC 8656 §18.8): one byte; *reserve = the R bit. */
int stun_get_even_port(const struct stun_msg *m, const struct stun_attr *a, bool *reserve);
/* RESERVATION-TOKEN: exactly 8 bytes, returned big-endian as a number. */
int stun_get_reservation_token(const struct stun_msg *m, const struct stun_attr *a,
			       uint64_t *token);

/* ---- ChannelData (RFC 8656 §12.4) ---- */

struct stun_channel_data {
	uint16_t channel;
	uint16_t len;	     /* application data bytes */
	const uint8_t *data; /* inside the caller's buffer */
};
/*
 * Parse a ChannelData message of n bytes. Over UDP (stream false) the data
 * may be followed by padding or nothing (§12.5); over a stream n must be the
 * framed size, 4 + len rounded up to 4. STUN_E_NOT_STUN (not 01 bits),
 * STUN_E_SHORT, STUN_E_LENGTH, or STUN_E_CHANNEL for a well-formed message on
 * a reserved number (0x5000-0x7FFF): *out is then filled in, and a server
 * that does not accept the RFC 5766 range discards it. Either way the server
 * must look the channel up among those bound (§12.5: unbound: discard).
 */
int stun_channel_data_parse(const uint8_t *buf, size_t n, bool stream,
			    struct stun_channel_data *out);
/* Write the 4-byte ChannelData header. STUN_E_CHANNEL for a number outside
 * 0x4000-0x7FFF (a bound channel of either range may be sent on). */
int stun_channel_data_header(uint8_t hdr[4], uint16_t channel, uint16_t len);
/* Bytes a ChannelData message with len data bytes takes (padded when stream). */
static inline size_t stun_channel_data_size(size_t len, bool stream)
{
	return 4 + (stream ? (len + 3) & ~(size_t)3 : len);
}

/* ---- building ---- */

struct stun_builder {
	uint8_t *buf;
	size_t cap;
	size_t len;
	int err;      /* 0 or the first error (sticky) */
	unsigned fin; /* bit 0: MI written, bit 1: MI-SHA256, bit 2: FINGERPRINT */
};

/*
 * Start a message of this method and class with this transaction id (12
 * bytes; for a response, the request's). 0 or STUN_E_SPACE / STUN_E_VALUE
 * (method above 0xFFF).
 */
int stun_build_init(struct stun_builder *b, uint8_t *buf, size_t cap, uint16_t method,
		    enum stun_class cls, const uint8_t tid[STUN_TID_LEN]);
/* Append an attribute with this value (len <= 0xFFFF), zero padding. */
int stun_build_attr(struct stun_builder *b, uint16_t type, const void *val, size_t len);
static inline int stun_build_str(struct stun_builder *b, uint16_t type, struct str s)
{
	return stun_build_attr(b, type, s.p, s.len);
}
/* A 32-bit value (LIFETIME). */
int stun_build_u32(struct stun_builder *b, uint16_t type, uint32_t v);
/* MAPPED-ADDRESS form / XOR form (XOR with the cookie and this message's tid). */
int stun_build_addr(struct stun_builder *b, uint16_t type, const struct stun_addr *a);
int stun_build_xor_addr(struct stun_builder *b, uint16_t type, const struct stun_addr *a);
/* ERROR-CODE 300-699 with reason (NULL: stun_error_reason(code)). */
int stun_build_error(struct stun_builder *b, int code, const char *reason);
/* UNKNOWN-ATTRIBUTES with these types (420). */
int stun_build_unknown_attributes(struct stun_builder *b, const uint16_t *types, size_t n);
/* PASSWORD-ALGORITHMS (algorithms without parameters) / PASSWORD-ALGORITHM. */
int stun_build_password_algorithms(struct stun_builder *b, const uint16_t *algs, size_t n);
int stun_build_password_algorithm(struct stun_builder *b, uint16_t alg);
/* MESSAGE-INTEGRITY (HMAC-SHA1 over the message so far, length adjusted). */
int stun_build_integrity(struct stun_builder *b, const uint8_t *key, size_t keylen);
/* MESSAGE-INTEGRITY-SHA256 (32 bytes). May follow MESSAGE-INTEGRITY. */
int stun_build_integrity_sha256(struct stun_builder *b, const uint8_t *key, size_t keylen);
/* FINGERPRINT: must be the last attribute. */
int stun_build_fingerprint(struct stun_builder *b);
/* The message's total length, or the sticky error (negative). */
long stun_build_finish(const struct stun_builder *b);

/*
 * HMAC-SHA1 / HMAC-SHA256 (RFC 2104) of len bytes, as MESSAGE-INTEGRITY(-SHA256)
 * computes them, for the credential code (turn/cred.h). 0 or STUN_E_INTERNAL.
 * out is a secret if the key is: wipe it.
 */
int stun_hmac_sha1(const void *key, size_t keylen, const void *data, size_t len, uint8_t out[20]);
int stun_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len, uint8_t out[32]);

/* The reason phrase of a STUN/TURN error code ("Stale Nonce"), or "Error". */
const char *stun_error_reason(int code);

#endif
