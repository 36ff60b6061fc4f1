/*
 * SIP message dispatch and stateless replies. See server.h.
 * This file decides what to answer; it never touches sockets (sip_io_send)
 * and never sees a secret (sipauth.c asks the vault).
 */
#include "sip/server.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/secmem.h"
#include "core/stats.h"
#include "auth/sa.h"
#include "sip/server_int.h"
#include "turn/relaycred.h"
#include "vault/vault.h"

const char *sip_transport_name(int kind)
{
	switch (kind) {
	case TRANSPORT_TCP:
		return "tcp";
	case TRANSPORT_TLS:
		return "tls";
	default:
		return "udp";
	}
}

/* Dotted quad without inet_ntop/snprintf: every message needs its source
 * address as text (lockout key, Via received=), and the libc path cost
 * ~2,700 instructions a message. */
static size_t fmt_ipv4(const struct in_addr *a, char *buf)
{
	const uint8_t *b = (const uint8_t *)&a->s_addr;
	size_t o = 0;

	for (int i = 0; i < 4; i++) {
		unsigned v = b[i];
		if (i)
			buf[o++] = '.';
		if (v >= 100)
			buf[o++] = (char)('0' + v / 100);
		if (v >= 10)
			buf[o++] = (char)('0' + v / 10 % 10);
		buf[o++] = (char)('0' + v % 10);
	}
	buf[o] = '\0';
	return o;
}

const char *sip_flow_ip(const struct location_flow *f, char *buf, size_t cap)
{
	if (f->addr.sa.sa_family == AF_INET6)
		inet_ntop(AF_INET6, &f->addr.in6.sin6_addr, buf, (socklen_t)cap);
	else if (cap >= 16)
		fmt_ipv4(&f->addr.in.sin_addr, buf);
	else
		inet_ntop(AF_INET, &f->addr.in.sin_addr, buf, (socklen_t)cap);
	return buf;
}

const char *sip_flow_addr(const struct location_flow *f, char *buf, size_t cap)
{
	char ip[INET6_ADDRSTRLEN];

	if (f->addr.sa.sa_family != AF_INET6 && cap >= 22) {
		size_t o = fmt_ipv4(&f->addr.in.sin_addr, buf);
		unsigned port = ntohs(f->addr.in.sin_port);
		char d[5];
		int n = 0;
		buf[o++] = ':';
		do
			d[n++] = (char)('0' + port % 10);
		while ((port /= 10) && n < 5);
		while (n)
			buf[o++] = d[--n];
		buf[o] = '\0';
		return buf;
	}
	sip_flow_ip(f, ip, sizeof(ip));
	if (f->addr.sa.sa_family == AF_INET6)
		snprintf(buf, cap, "[%s]:%u", ip, ntohs(f->addr.in6.sin6_port));
	else
		snprintf(buf, cap, "%s:%u", ip, ntohs(f->addr.in.sin_port));
	return buf;
}

static uint16_t flow_port(const struct location_flow *f)
{
	return ntohs(f->addr.sa.sa_family == AF_INET6 ? f->addr.in6.sin6_port
						      : f->addr.in.sin_port);
}

bool sip_host_is_us(const struct sip_runtime *rt, struct str host, uint16_t port)
{
	if (str_caseeq_cstr(host, rt->cfg->domain) || str_caseeq_cstr(host, rt->cfg->fqdn))
		return true;
	for (size_t i = 0; i < rt->n_listeners; i++) {
		const struct sip_listener *l = &rt->listeners[i];
		uint16_t p = port ? port : (l->kind == TRANSPORT_TLS ? 5061 : 5060);
		if (str_caseeq_cstr(host, l->host) && p == l->port)
			return true;
	}
	return false;
}

int sip_aor_from_uri(const struct sip_uri *u, char *out, size_t cap)
{
	size_t o;

	if (u->user.len == 0 || u->host.len == 0)
		return -1;
	if (!str_caseeq_cstr(u->scheme, "sip") && !str_caseeq_cstr(u->scheme, "sips"))
		return -1;
	if (4 + u->user.len + 1 + u->host.len + 1 > cap)
		return -1;
	memcpy(out, "sip:", 4);
	o = 4;
	memcpy(out + o, u->user.p, u->user.len);
	o += u->user.len;
	out[o++] = '@';
	for (size_t i = 0; i < u->host.len; i++) {
		char c = u->host.p[i];
		out[o++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
	}
	out[o] = '\0';
	return 0;
}

/* A To tag that is the same for retransmissions of one request. */
static void stable_tag(const struct sip_msg *m, char out[17])
{
	uint64_t h = 1469598103934665603ULL;
	struct str parts[2];
	struct sip_via v;

	parts[0] = sip_msg_call_id(m);
	parts[1] = sip_msg_top_via(m, &v) == 0 ? v.branch : STR_NULL;
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < parts[k].len; i++) {
			h ^= (unsigned char)parts[k].p[i];
			h *= 1099511628211ULL;
		}
	for (int i = 15; i >= 0; i--, h >>= 4)
		out[i] = "0123456789abcdef"[h & 15];
	out[16] = '\0';
}

static void put_header_lines(struct sbuf *b, const struct sip_msg *m, enum sip_hdr id,
			     const char *name)
{
	for (const struct sip_header *h = sip_msg_header(m, id); h; h = sip_msg_next_header(m, h)) {
		sbuf_puts(b, name);
		sbuf_puts(b, ": ");
		sbuf_putstr(b, h->value);
		sbuf_puts(b, "\r\n");
	}
}

/* Where a valueless ";rport" ends inside v, or NULL. */
static const char *find_empty_rport(struct str v)
{
	const char *end = v.p + v.len;
	for (const char *p = v.p; p < end; p++) {
		const char *q;
		if (*p != ';')
			continue;
		q = p + 1;
		while (q < end && (*q == ' ' || *q == '\t'))
			q++;
		if (end - q < 5 || strncasecmp(q, "rport", 5) != 0)
			continue;
		q += 5;
		if (q == end || *q == ';' || *q == ' ' || *q == '\t' || *q == '\r')
			return q;
	}
	return NULL;
}

void reply_via_value(struct sbuf *b, struct str v, const struct sip_tx *t)
{
	struct sip_via via;
	const char *q;

	/* the top Via is already parsed (sip_msg_top_via's memo) */
	if (!(sip_msg_top_via(t->m, &via) == 0 && via.raw.p == v.p && via.raw.len == v.len) &&
	    sip_via_parse(v, &via) < 0) {
		sbuf_putstr(b, v);
		return;
	}
	q = via.has_rport ? find_empty_rport(v) : NULL;
	if (q) {
		sbuf_put(b, v.p, (size_t)(q - v.p));
		sbuf_putc(b, '=');
		sbuf_putu(b, flow_port(t->src));
		sbuf_put(b, q, (size_t)(v.p + v.len - q));
	} else {
		sbuf_putstr(b, v);
	}
	if (via.received.len == 0 && (via.has_rport || !str_eq_cstr(via.host, t->src_ip))) {
		sbuf_puts(b, ";received=");
		sbuf_puts(b, t->src_ip);
	}
}

void reply_start(struct sbuf *b, const struct sip_tx *t, int status, const char *reason)
{
	const struct sip_msg *m = t->m;
	const struct sip_header *h;
	struct sip_nameaddr to;
	struct sip_via top;

	sbuf_puts(b, "SIP/2.0 ");
	sbuf_putu(b, (unsigned)status);
	sbuf_putc(b, ' ');
	sbuf_puts(b, reason);
	sbuf_puts(b, "\r\n");
	/* RFC 3261 §18.2.1 received, RFC 3581 rport on the top Via only */
	h = sip_msg_header(m, SIP_H_VIA);
	if (h && sip_msg_top_via(m, &top) == 0 && top.raw.p == h->value.p &&
	    top.raw.len == h->value.len) {
		/* the usual case: the first Via line is just the top value (parsed
		 * once, by the sanity checks); later lines are copied as they are
		 * (a line of comma-separated values means the same, RFC 3261 §7.3) */
		sbuf_puts(b, "Via: ");
		reply_via_value(b, top.raw, t);
		sbuf_puts(b, "\r\n");
		for (h = sip_msg_next_header(m, h); h; h = sip_msg_next_header(m, h)) {
			sbuf_puts(b, "Via: ");
			sbuf_putstr(b, h->value);
			sbuf_puts(b, "\r\n");
		}
	} else if (h) {
		struct sip_hdr_iter it;
		struct str v;
		bool first = true;
		sip_hdr_iter_init(&it, m, SIP_H_VIA);
		while (sip_hdr_iter_next(&it, &v) > 0) {
			sbuf_puts(b, "Via: ");
			if (first)
				reply_via_value(b, v, t);
			else
				sbuf_putstr(b, v);
			first = false;
			sbuf_puts(b, "\r\n");
		}
	}
	put_header_lines(b, m, SIP_H_FROM, "From");
	h = sip_msg_header(m, SIP_H_TO);
	if (h) {
		sbuf_puts(b, "To: ");
		sbuf_putstr(b, h->value);
		if (status > 100 && sip_msg_to(m, &to) == 0 && to.tag.len == 0) {
			char tag[17];
			stable_tag(m, tag);
			sbuf_puts(b, ";tag=");
			sbuf_puts(b, tag);
		}
		sbuf_puts(b, "\r\n");
	}
	put_header_lines(b, m, SIP_H_CALL_ID, "Call-ID");
	put_header_lines(b, m, SIP_H_CSEQ, "CSeq");
	sbuf_puts(b, "Server: " SIP_SERVER_NAME "\r\n");
}

void reply_finish_send(struct sbuf *b, const struct sip_tx *t)
{
	reply_finish_send_body(b, t, NULL, STR_NULL);
}

void reply_finish_send_body(struct sbuf *b, const struct sip_tx *t, const char *ctype,
			    struct str body)
{
	struct location_flow dst = *t->src;
	struct sip_via via;

	if (ctype) {
		sbuf_puts(b, "Content-Type: ");
		sbuf_puts(b, ctype);
		sbuf_puts(b, "\r\n");
	}
	if (t->sa)
		sipae_sign_reply(b, t);
	sbuf_puts(b, "Content-Length: ");
	sbuf_putu(b, body.len);
	sbuf_puts(b, "\r\n\r\n");
	sbuf_putstr(b, body);
	if (!sbuf_ok(b)) {
		log_err("sip.reply_too_large", "status_line_dropped=1");
		return;
	}
	/* RFC 3261 §18.2.2: over UDP without rport, answer to the Via port */
	if (t->src->transport == TRANSPORT_UDP && sip_msg_top_via(t->m, &via) == 0 &&
	    !via.has_rport) {
		uint16_t p = via.port ? via.port : 5060;
		if (dst.addr.sa.sa_family == AF_INET6)
			dst.addr.in6.sin6_port = htons(p);
		else
			dst.addr.in.sin_port = htons(p);
	}
	if (sip_io_send(t->w->io, &dst, b->p, b->len) == 0)
		stats_inc(ST_SIP_TX);
}

void reply_simple(const struct sip_tx *t, int status, const char *reason, const char *extra)
{
	char mem[SIP_REPLY_MAX];
	struct sbuf b;

	sbuf_init(&b, mem, sizeof(mem));
	reply_start(&b, t, status, reason);
	if (extra)
		sbuf_puts(&b, extra);
	reply_finish_send(&b, t);
	log_debug("sip.reply", "status=%d src=%s", status, t->src_addr);
}

/* Can we answer at all? A 400 needs Via, From, To, Call-ID and CSeq. A 505
 * may echo a Via of the other version (RFC 4475 badvers): it goes back to
 * the source. */
static bool answerable(const struct sip_msg *m, int err)
{
	struct sip_via v;
	bool via = err == SIP_E_VERSION ? sip_msg_header(m, SIP_H_VIA) != NULL
					: sip_msg_top_via(m, &v) == 0;
	return m->is_request && m->method_id != SIP_M_ACK && via && sip_msg_header(m, SIP_H_FROM) &&
	       sip_msg_header(m, SIP_H_TO) && sip_msg_header(m, SIP_H_CALL_ID) &&
	       sip_msg_header(m, SIP_H_CSEQ);
}

/*
 * The parser stops at a malformed request line (RFC 4475 lwsstart, trws,
 * lwsruri), another SIP version (badvers) or a NUL byte, so the headers a
 * response needs may never have been split. Parse a copy for the reply
 * only: a stand-in request line with the same method, NULs in the header
 * section made '_'. 0 with *m2 filled (and *copy to free), or -1.
 */
static int reparse_for_reply(const struct sip_msg *m, const char *buf, size_t len, bool stream,
			     struct sip_msg *m2, char **copy)
{
	const char *start = m->buf, *end = buf + len, *lf, *sp;
	size_t n, rest;
	char *hend;

	*copy = NULL;
	if (start < buf || start >= end || (size_t)(end - start) < 4 ||
	    strncasecmp(start, "SIP/", 4) == 0)
		return -1; /* a response: never answered */
	lf = memchr(start, '\n', (size_t)(end - start));
	sp = memchr(start, ' ', (size_t)(end - start));
	if (!lf || !sp || sp > lf || sp == start || sp - start > 32)
		return -1;
	rest = (size_t)(end - (lf + 1));
	*copy = malloc((size_t)(sp - start) + 32 + rest + 1);
	if (!*copy)
		return -1;
	n = (size_t)sprintf(*copy, "%.*s sip:invalid SIP/2.0\r\n", (int)(sp - start), start);
	memcpy(*copy + n, lf + 1, rest);
	(*copy)[n + rest] = '\0';
	hend = memmem(*copy + n, rest, "\r\n\r\n", 4);
	for (char *p = *copy; p < (hend ? hend : *copy + n + rest); p++)
		if (*p == '\0')
			*p = '_'; /* a token character: a name stays a name */
	sip_msg_parse(m2, *copy, n + rest, stream);
	return 0;
}

static void reject_malformed(struct sip_tx *t, int err, const char *buf, size_t len)
{
	char why[96];
	int status = 400;
	const char *reason = "Bad Request";
	struct sip_msg m2;
	char *copy = NULL;

	stats_inc(ST_SIP_BAD);
	if (err == SIP_E_VERSION) {
		status = 505;
		reason = "Version Not Supported";
	} else if (err == SIP_E_TOO_LONG) {
		status = 513;
		reason = "Message Too Large";
	}
	log_info("sip.malformed", "src=%s reason=\"%s\"", t->src_addr, sip_msg_strerror(err));
	if ((err == SIP_E_START_LINE || err == SIP_E_VERSION || err == SIP_E_NUL) &&
	    reparse_for_reply(t->m, buf, len, t->src->transport != TRANSPORT_UDP, &m2, &copy) == 0)
		t->m = &m2;
	if (answerable(t->m, err)) {
		snprintf(why, sizeof(why), "%s (%s)", reason, sip_msg_strerror(err));
		reply_simple(t, status, why, NULL);
	}
	free(copy);
}

/* Checks every request passes before authentication (RFC 3261 §16.3). */
static int request_sanity(const struct sip_tx *t)
{
	const struct sip_msg *m = t->m;
	struct sip_uri ru;
	uint32_t mf;
	int rc;

	if (sip_msg_ruri(m, &ru) < 0) {
		reply_simple(t, 400, "Bad Request (Request-URI)", NULL);
		return -1;
	}
	if (!str_caseeq_cstr(ru.scheme, "sip") && !str_caseeq_cstr(ru.scheme, "sips")) {
		/* RFC 3261 §8.2.2.1 */
		reply_simple(t, 416, "Unsupported URI Scheme", NULL);
		return -1;
	}
	if (ru.headers.len) {
		reply_simple(t, 400, "Bad Request (headers in Request-URI)", NULL);
		return -1;
	}
	/* values every later step relies on must parse: answer 400 now rather
	 * than challenge a request we could never accept (RFC 4475 §3.1.2) */
	{
		struct sip_nameaddr na;
		struct sip_via via;
		const char *bad = NULL;
		if (sip_msg_top_via(m, &via) < 0)
			bad = "Bad Request (Via)";
		else if (sip_msg_from(m, &na) < 0)
			bad = "Bad Request (From)";
		else if (sip_msg_to(m, &na) < 0)
			bad = "Bad Request (To)";
		if (!bad && m->method_id == SIP_M_REGISTER) {
			struct sip_hdr_iter it;
			struct sip_contact ct;
			struct str v;
			int r;
			sip_hdr_iter_init(&it, m, SIP_H_CONTACT);
			while ((r = sip_hdr_iter_next(&it, &v)) > 0)
				if (sip_msg_contact(m, v, &ct) < 0)
					break;
			if (r != 0)
				bad = "Bad Request (Contact)";
		}
		if (bad) {
			stats_inc(ST_SIP_BAD);
			reply_simple(t, 400, bad, NULL);
			return -1;
		}
	}
	rc = sip_msg_max_forwards(m, &mf);
	if (rc < 0) {
		reply_simple(t, 400, "Bad Request (Max-Forwards)", NULL);
		return -1;
	}
	if (rc == 0 && mf == 0 && m->method_id != SIP_M_REGISTER &&
	    !(m->method_id == SIP_M_OPTIONS && ru.user.len == 0)) {
		stats_inc(ST_ROUTE_FAIL);
		reply_simple(t, 483, "Too Many Hops", NULL);
		return -1;
	}
	if (m->method_id == SIP_M_REGISTER || m->method_id == SIP_M_OPTIONS) {
		uint32_t e;
		if (sip_msg_expires(m, &e) < 0) {
			reply_simple(t, 400, "Bad Request (Expires)", NULL);
			return -1;
		}
	}
	/* RFC 3261 §16.3 item 6 / §8.2.2.3: we support no extension that a
	 * proxy must understand */
	if (sip_msg_header(m, SIP_H_PROXY_REQUIRE)) {
		char extra[512];
		struct sbuf b;
		sbuf_init(&b, extra, sizeof(extra));
		sbuf_puts(&b, "Unsupported: ");
		sbuf_putstr(&b, sip_msg_header(m, SIP_H_PROXY_REQUIRE)->value);
		sbuf_puts(&b, "\r\n");
		reply_simple(t, 420, "Bad Extension", sbuf_ok(&b) ? sbuf_cstr(&b) : NULL);
		return -1;
	}
	return 0;
}

static bool is_options_to_us(const struct sip_tx *t)
{
	struct sip_uri ru;
	if (t->m->method_id != SIP_M_OPTIONS || sip_uri_parse(t->m->ruri, &ru) < 0)
		return false;
	return ru.user.len == 0 && sip_host_is_us(t->w->rt, ru.host, ru.port);
}

/*
 * TLS client certificate (issue 5 item 4): the connection's verified
 * certificate names a user; a request whose From is that user is
 * authenticated without a challenge (a REGISTER too). 1 authenticated,
 * 0 not (no certificate, another From, user gone: Digest and the others
 * decide).
 */
static int cert_identity(const struct sip_tx *t, struct store_user *user)
{
	struct sip_nameaddr from;
	char aor[LOC_AOR_MAX];

	if (!t->w->peer_user || sip_msg_from(t->m, &from) != 0 ||
	    sip_aor_from_uri(&from.uri, aor, sizeof(aor)) != 0 ||
	    strcasecmp(aor, t->w->peer_user) != 0)
		return 0;
	if (vault_user_get(t->w->store, t->w->peer_user, user) != STORE_OK || !user->enabled) {
		log_warn("auth.cert_user_gone", "user=%s src=%s", t->w->peer_user, t->src_addr);
		return 0;
	}
	stats_inc(ST_AUTH_OK);
	log_debug("auth.ok", "user=%s mech=certificate src=%s", user->uri, t->src_addr);
	return 1;
}

/* SERVICE with a media relay credentials request ([MS-SIPAE] world's
 * msrtc-media-relay-auth), to us or to the sender's own AOR. */
static bool is_relay_auth(const struct sip_tx *t)
{
	const struct sip_header *ct = sip_msg_header(t->m, SIP_H_CONTENT_TYPE);
	return ct && str_caseeq_cstr(str_trim(ct->value), RELAYCRED_CTYPE);
}

static void relay_auth(const struct sip_tx *t, const struct store_user *user)
{
	static _Thread_local char mem[8192];
	char reply[SIP_REPLY_MAX];
	struct sbuf body, b;
	int rc;

	sbuf_init(&body, mem, sizeof(mem));
	rc = relaycred_sip_response(t->w->rt->cfg, user->uri, t->m->body, t->now, &body);
	if (rc == -1) {
		reply_simple(t, 400, "Bad Request (credentialsRequest)", NULL);
		return;
	}
	if (rc < 0) {
		reply_simple(t, 503, "Service Unavailable (no media relay)", "Retry-After: 60\r\n");
		return;
	}
	log_info("turn.credentials", "user=%s via=sip src=%s", user->uri, t->src_addr);
	sbuf_init(&b, reply, sizeof(reply));
	reply_start(&b, t, 200, "OK");
	reply_finish_send_body(&b, t, RELAYCRED_CTYPE, str_make(body.p, body.len));
	secmem_wipe(mem, sizeof(mem));
	secmem_wipe(reply, sizeof(reply));
}

static void handle_request(struct sip_tx *t)
{
	const struct sip_msg *m = t->m;
	struct store_user user;

	struct store_user *uptr = &user;
	int rc;

	if (m->method_id == SIP_M_ACK || m->method_id == SIP_M_CANCEL) {
		/* never challenged (RFC 3261 §22.1); forwarded statelessly; a
		 * signed one is verified, an unsigned one from a flow that
		 * signs ([MS-SIPAE]) is dropped */
		rc = sipae_check(t, &user);
		if (rc == 0)
			return;
		if (rc < 0 && sipae_unsigned_from_sa_flow(t))
			return;
		proxy_request(t, rc > 0 ? &user : NULL);
		return;
	}
	if (request_sanity(t) < 0)
		return;
	/* [MS-SIPAE] credentials first: a signed OPTIONS gets a signed 200 */
	rc = sipae_check(t, &user);
	if (rc == 0)
		return;
	if (is_options_to_us(t)) {
		reply_simple(t, 200, "OK",
			     "Allow: REGISTER, OPTIONS, INVITE, ACK, CANCEL, BYE, MESSAGE, "
			     "SUBSCRIBE, NOTIFY, INFO, UPDATE, PRACK, REFER, PUBLISH\r\n"
			     "Accept: application/sdp\r\nSupported: path, outbound\r\n");
		return;
	}
	if (rc < 0 && cert_identity(t, &user))
		rc = 1; /* the connection's client certificate names the sender */
	if (rc < 0) {
		if (sipae_unsigned_from_sa_flow(t))
			return;
		if (!sipauth_check(t, &user))
			return;
	}
	if (m->method_id == SIP_M_SERVICE && is_relay_auth(t)) {
		relay_auth(t, uptr);
		return;
	}
	if (m->method_id == SIP_M_REGISTER)
		registrar_handle(t, uptr);
	else
		proxy_request(t, uptr);
}

void sip_server_handle(struct sip_worker *w, const char *buf, size_t len,
		       const struct location_flow *src)
{
	struct sip_msg m;
	struct sip_tx t;
	int rc;

	stats_inc(ST_SIP_RX);
	rc = sip_msg_parse(&m, buf, len, src->transport != TRANSPORT_UDP);
	t.w = w;
	t.m = &m;
	t.src = src;
	t.sa = NULL;
	t.sa_token = STR_NULL;
	t.now = clock_wall_s();
	sip_flow_ip(src, t.src_ip, sizeof(t.src_ip));
	sip_flow_addr(src, t.src_addr, sizeof(t.src_addr));
	log_ctx_set("call_id", sip_msg_call_id(&m));
	if (rc < 0) {
		reject_malformed(&t, rc, buf, len);
		goto out;
	}
	if (!m.is_request) {
		proxy_response(w, &m, src);
		goto out;
	}
	log_debug("sip.request", "method=%.*s src=%s", (int)(m.method.len > 32 ? 32 : m.method.len),
		  m.method.p, t.src_addr);
	handle_request(&t);
	if (t.sa)
		sa_put(t.sa);
out:
	log_ctx_clear();
}
