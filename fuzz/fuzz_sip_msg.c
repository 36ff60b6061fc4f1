/*
 * libFuzzer target for the SIP message parser: stream framing, both parse
 * modes, then every accessor a server would call on the result (From, To,
 * CSeq, Call-ID, Expires, Max-Forwards, every Via and Contact, the
 * Request-URI). The input is copied into an exact-size buffer so any read
 * past the end is caught by ASan.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sip/msg.h"

static struct sip_msg msg;

static void touch(struct str s)
{
	/* read every byte so ASan checks the range */
	volatile unsigned char x = 0;
	for (size_t i = 0; i < s.len; i++)
		x ^= (unsigned char)s.p[i];
	(void)x;
}

static void accessors(const struct sip_msg *m)
{
	struct sip_nameaddr na;
	struct sip_via v;
	struct sip_contact c;
	struct sip_uri u;
	struct sip_hdr_iter it;
	struct str s;
	uint32_t n;

	if (sip_msg_from(m, &na) == 0)
		touch(na.tag);
	if (sip_msg_to(m, &na) == 0)
		touch(na.display);
	if (sip_msg_cseq(m, &n, &s) == 0)
		touch(s);
	touch(sip_msg_call_id(m));
	sip_msg_expires(m, &n);
	sip_msg_max_forwards(m, &n);
	if (sip_msg_top_via(m, &v) == 0)
		touch(v.branch);
	sip_hdr_iter_init(&it, m, SIP_H_VIA);
	while (sip_hdr_iter_next(&it, &s) > 0)
		if (sip_via_parse(s, &v) == 0) {
			touch(v.host);
			touch(v.rport);
		}
	sip_hdr_iter_init(&it, m, SIP_H_CONTACT);
	while (sip_hdr_iter_next(&it, &s) > 0)
		if (sip_contact_parse(s, &c) == 0) {
			touch(c.instance);
			touch(c.na.uri.headers);
		}
	sip_hdr_iter_init(&it, m, SIP_H_ROUTE);
	while (sip_hdr_iter_next(&it, &s) > 0)
		sip_nameaddr_parse(s, &na);
	if (m->is_request && sip_uri_parse(m->ruri, &u) == 0) {
		touch(u.host);
		sip_param_get(u.params, "transport", &s);
	}
	if (sip_msg_header_by_name(m, "X-Unknown"))
		touch(m->body);
	for (size_t i = 0; i < m->n_hdrs; i++)
		touch(m->hdrs[i].value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);
	size_t skip = 0;
	long n;

	if (!buf)
		return 0;
	if (size)
		memcpy(buf, data, size);
	n = sip_msg_frame(buf, size, 65536, &skip);
	if (skip > size)
		abort();
	if (n > 0) {
		if ((size_t)n > size - skip)
			abort();
		sip_msg_parse(&msg, buf + skip, (size_t)n, true);
		accessors(&msg); /* accessors must be safe after any result */
	}
	for (int stream = 0; stream < 2; stream++) {
		int rc = sip_msg_parse(&msg, buf, size, stream);
		if (rc > 0 || msg.n_hdrs > SIP_MAX_HEADERS)
			abort();
		if (rc == 0 && (msg.buf < buf || msg.buf + msg.len > buf + size))
			abort();
		accessors(&msg);
		sip_msg_strerror(rc);
	}
	free(buf);
	return 0;
}
