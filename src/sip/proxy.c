/*
 * Stateless proxy (RFC 3261 §16.11) between authenticated users of our
 * domain. Requests go to the newest binding of the target AOR; responses
 * travel back along Via, over the stream connection the request came in on
 * (its id rides in a parameter of our own Via). Record-Route keeps in-dialog
 * requests coming through us. No DNS: only IP literals are ever a next hop.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/stats.h"
#include "core/tbuf.h"
#include "auth/sa.h"
#include "auth/sipae.h"
#include "sip/server_int.h"
#include "store/store.h"
#include "vault/vault.h"

#define BRANCH_MAGIC "z9hG4bKrtc"
#define FWD_MAX	     (70 * 1024)

/* Bytes of the line holding header h, CRLF included. */
static struct str header_line(const struct sip_msg *m, const struct sip_header *h)
{
	const char *end = m->buf + m->len;
	const char *p = h->value.p + h->value.len;
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	return str_make(h->name.p, (size_t)((nl ? nl + 1 : end) - h->name.p));
}

static int parse_ip(struct str host, uint16_t port, struct location_flow *f)
{
	char ip[64];

	if (str_copy(host, ip, sizeof(ip)) < 0)
		return -1;
	memset(&f->addr, 0, sizeof(f->addr));
	if (inet_pton(AF_INET, ip, &f->addr.in.sin_addr) == 1) {
		f->addr.in.sin_family = AF_INET;
		f->addr.in.sin_port = htons(port);
		f->addrlen = sizeof(f->addr.in);
		return 0;
	}
	if (inet_pton(AF_INET6, ip, &f->addr.in6.sin6_addr) == 1) {
		f->addr.in6.sin6_family = AF_INET6;
		f->addr.in6.sin6_port = htons(port);
		f->addrlen = sizeof(f->addr.in6);
		return 0;
	}
	return -1;
}

static int transport_of(struct str name)
{
	if (str_caseeq_cstr(name, "tcp"))
		return TRANSPORT_TCP;
	if (str_caseeq_cstr(name, "tls"))
		return TRANSPORT_TLS;
	if (name.len == 0 || str_caseeq_cstr(name, "udp"))
		return TRANSPORT_UDP;
	return -1;
}

static int first_listener(const struct sip_runtime *rt, int kind)
{
	for (size_t i = 0; i < rt->n_listeners; i++)
		if ((int)rt->listeners[i].kind == kind)
			return (int)i;
	return -1;
}

static bool flow_is_us(const struct sip_runtime *rt, const struct location_flow *f)
{
	char ip[64];
	uint16_t port =
	    ntohs(f->addr.sa.sa_family == AF_INET6 ? f->addr.in6.sin6_port : f->addr.in.sin_port);
	sip_flow_ip(f, ip, sizeof(ip));
	for (size_t i = 0; i < rt->n_listeners; i++)
		if (rt->listeners[i].port == port && strcmp(rt->listeners[i].host, ip) == 0)
			return true;
	return false;
}

/* A next hop from a URI (Route or in-dialog target): IP literal only. */
static int flow_from_uri(const struct sip_runtime *rt, const struct sip_uri *u,
			 struct location_flow *f)
{
	int kind = transport_of(u->transport);
	if (str_caseeq_cstr(u->scheme, "sips"))
		kind = TRANSPORT_TLS;
	if (kind < 0)
		return -1;
	memset(f, 0, sizeof(*f));
	f->transport = kind;
	f->listen_idx = first_listener(rt, kind);
	if (f->listen_idx < 0)
		return -1;
	return parse_ip(u->host, u->port ? u->port : (kind == TRANSPORT_TLS ? 5061 : 5060), f);
}

struct target {
	struct location_flow flow;
	char ruri[LOC_CONTACT_MAX]; /* new Request-URI, empty = keep */
	char path[LOC_PATH_MAX];
	char sa_opaque[16]; /* the binding's [MS-SIPAE] SA: sign with it */
};

/* Resolve where the request goes. 0, or answered (-1), or dropped (-2). */
static int resolve(const struct sip_tx *t, bool strip_route, struct target *tg)
{
	const struct sip_runtime *rt = t->w->rt;
	const struct sip_msg *m = t->m;
	bool quiet = m->method_id == SIP_M_ACK;
	struct sip_hdr_iter it;
	struct str v;
	struct sip_uri ru;
	struct sip_nameaddr to;
	int skip = strip_route ? 1 : 0;

	memset(tg, 0, sizeof(*tg));
	/* a Route left after ours: loose routing to the next hop (RFC 3261 §16.12) */
	sip_hdr_iter_init(&it, m, SIP_H_ROUTE);
	while (sip_hdr_iter_next(&it, &v) > 0) {
		struct sip_nameaddr na;
		if (skip-- > 0)
			continue;
		if (sip_nameaddr_parse(v, &na) < 0 || flow_from_uri(rt, &na.uri, &tg->flow) < 0)
			goto unroutable;
		return 0;
	}
	if (sip_msg_ruri(m, &ru) < 0)
		goto unroutable;
	if (sip_host_is_us(rt, ru.host, ru.port) && ru.user.len) {
		char aor[LOC_AOR_MAX];
		struct location_binding b;
		struct store_user u;
		int rc;
		if (sip_aor_from_uri(&ru, aor, sizeof(aor)) < 0)
			goto unroutable;
		if (location_lookup(str_cstr(aor), t->now, &b, 1) == 0) {
			rc = vault_user_get(t->w->store, aor, &u);
			if (quiet)
				return -2;
			stats_inc(ST_ROUTE_FAIL);
			if (rc == STORE_NOTFOUND)
				reply_simple(t, 404, "Not Found", NULL);
			else if (rc == STORE_OK)
				reply_simple(t, 480, "Temporarily Unavailable", NULL);
			else
				reply_simple(t, 503, "Service Unavailable", "Retry-After: 5\r\n");
			return -1;
		}
		tg->flow = b.flow;
		snprintf(tg->ruri, sizeof(tg->ruri), "%s", b.contact_uri);
		snprintf(tg->path, sizeof(tg->path), "%s", b.path);
		snprintf(tg->sa_opaque, sizeof(tg->sa_opaque), "%s", b.sa_opaque);
		return 0;
	}
	/* in-dialog request whose target is a contact (came via our Record-Route) */
	if (sip_msg_to(m, &to) == 0 && to.tag.len && strip_route &&
	    flow_from_uri(rt, &ru, &tg->flow) == 0)
		return 0;
	if (quiet)
		return -2;
	stats_inc(ST_ROUTE_FAIL);
	reply_simple(t, 403, "Forbidden (domain not served here)", NULL);
	return -1;
unroutable:
	if (quiet)
		return -2;
	stats_inc(ST_ROUTE_FAIL);
	reply_simple(t, 400, "Bad Request (unroutable)", NULL);
	return -1;
}

/* Is the topmost Route one of our addresses? */
static bool top_route_is_us(const struct sip_tx *t)
{
	struct sip_hdr_iter it;
	struct str v;
	struct sip_nameaddr na;

	sip_hdr_iter_init(&it, t->m, SIP_H_ROUTE);
	if (sip_hdr_iter_next(&it, &v) <= 0 || sip_nameaddr_parse(v, &na) < 0)
		return false;
	return sip_host_is_us(t->w->rt, na.uri.host, na.uri.port) && na.uri.user.len == 0;
}

static uint64_t branch_hash(const struct sip_msg *m)
{
	struct sip_via v;
	uint64_t h = 1469598103934665603ULL;
	struct str s = sip_msg_top_via(m, &v) == 0 ? v.branch : sip_msg_call_id(m);
	for (size_t i = 0; i < s.len; i++) {
		h ^= (unsigned char)s.p[i];
		h *= 1099511628211ULL;
	}
	if (m->method_id == SIP_M_ACK)
		h ^= 0x41434b; /* RFC 3261 §17.2.3 ACK for 2xx is its own transaction */
	return h;
}

/* Every Route value except the first (ours) when strip. */
static void put_routes(struct sbuf *b, const struct sip_msg *m, bool strip, const char *path)
{
	struct sip_hdr_iter it;
	struct str v;
	int skip = strip ? 1 : 0;

	if (path[0])
		sbuf_printf(b, "Route: %s\r\n", path);
	sip_hdr_iter_init(&it, m, SIP_H_ROUTE);
	while (sip_hdr_iter_next(&it, &v) > 0) {
		if (skip-- > 0)
			continue;
		sbuf_puts(b, "Route: ");
		sbuf_putstr(b, v);
		sbuf_puts(b, "\r\n");
	}
}

static void build_forward(struct sbuf *b, const struct sip_tx *t, const struct target *tg,
			  bool strip, struct sa *callee)
{
	const struct sip_runtime *rt = t->w->rt;
	const struct sip_msg *m = t->m;
	const struct sip_listener *out = &rt->listeners[tg->flow.listen_idx];
	const struct sip_listener *in = &rt->listeners[t->src->listen_idx];
	uint32_t mf = 70;
	struct sip_nameaddr to;
	bool first_via = true;

	if (sip_msg_max_forwards(m, &mf) != 0)
		mf = 70;
	sbuf_putstr(b, m->method);
	sbuf_putc(b, ' ');
	if (tg->ruri[0])
		sbuf_puts(b, tg->ruri);
	else
		sbuf_putstr(b, m->ruri);
	sbuf_puts(b, " SIP/2.0\r\n");
	sbuf_printf(b, "Via: SIP/2.0/%s %s:%u;branch=" BRANCH_MAGIC "%016llx;rtcf=%d.%d.%llx",
		    out->kind == TRANSPORT_TLS	 ? "TLS"
		    : out->kind == TRANSPORT_TCP ? "TCP"
						 : "UDP",
		    out->host, out->port, (unsigned long long)branch_hash(m), t->src->transport,
		    t->src->listen_idx, (unsigned long long)t->src->conn_id);
	/* [MS-SIPAE]: the SAs the response is checked with and re-signed with */
	if (callee || t->sa)
		sbuf_printf(b, ";rtcsa=%s.%s", callee ? sa_opaque(callee) : "",
			    t->sa ? sa_opaque(t->sa) : "");
	sbuf_puts(b, "\r\n");
	/* RFC 3261 §16.6 item 4: Record-Route on requests outside a dialog */
	if (sip_msg_to(m, &to) == 0 && to.tag.len == 0 && m->method_id != SIP_M_REGISTER)
		sbuf_printf(b, "Record-Route: <sip:%s:%u;transport=%s;lr>\r\n", in->host, in->port,
			    sip_transport_name(in->kind));
	put_routes(b, m, strip, tg->path);
	for (size_t i = 0; i < m->n_hdrs; i++) {
		const struct sip_header *h = &m->hdrs[i];
		if (h->id == SIP_H_ROUTE || h->id == SIP_H_MAX_FORWARDS ||
		    h->id == SIP_H_CONTENT_LENGTH || h->id == SIP_H_PROXY_AUTHORIZATION ||
		    (h->id == SIP_H_AUTHORIZATION && t->sa))
			continue;
		if (h->id == SIP_H_VIA && first_via) {
			/* the received Via gets received/rport (RFC 3261 §18.2.1) */
			struct sip_hdr_iter it;
			struct str v;
			int k = 0;
			first_via = false;
			sip_hdr_iter_init(&it, m, SIP_H_VIA);
			sbuf_puts(b, "Via: ");
			while (sip_hdr_iter_next(&it, &v) > 0) {
				if (k++ == 0) {
					/* reuse the reply path: it knows received/rport */
					char tmp[1024];
					struct sbuf vb;
					sbuf_init(&vb, tmp, sizeof(tmp));
					reply_via_value(&vb, v, t);
					sbuf_put(b, tmp, vb.len);
				} else {
					sbuf_puts(b, ", ");
					sbuf_putstr(b, v);
				}
			}
			sbuf_puts(b, "\r\n");
			continue;
		}
		if (h->id == SIP_H_VIA)
			continue; /* all Via values were written above */
		sbuf_putstr(b, header_line(m, h));
	}
	if (callee) {
		/* re-signed for the recipient: the buffer's fields are the
		 * request's own (the proxy changes none of them) */
		struct sipae_fields f;
		char status[4];
		if (sipae_fields_from_msg(m, &f, status) == 0)
			sipae_sign_write(b, callee, &f, STR_NULL);
	}
	sbuf_printf(b, "Max-Forwards: %u\r\n", mf ? mf - 1 : 0);
	sbuf_printf(b, "Content-Length: %zu\r\n\r\n", m->body.len);
	sbuf_putstr(b, m->body);
}

void proxy_request(const struct sip_tx *t, const struct store_user *user)
{
	char *mem = tbuf(TBUF_PROXY_REQ, FWD_MAX);
	const struct sip_msg *m = t->m;
	struct sa *callee = NULL;
	struct target tg;
	struct sbuf b;
	bool strip;
	int rc;

	if (!mem) {
		log_err("route.no_memory", "src=%s", t->src_addr);
		if (m->method_id != SIP_M_ACK)
			reply_simple(t, 500, "Server Internal Error", NULL);
		return;
	}
	if (user) {
		struct sip_nameaddr from;
		char aor[LOC_AOR_MAX];
		if (sip_msg_from(m, &from) < 0 ||
		    sip_aor_from_uri(&from.uri, aor, sizeof(aor)) < 0 ||
		    strcmp(aor, user->uri) != 0) {
			stats_inc(ST_ROUTE_FAIL);
			log_warn("route.forbidden", "user=%s reason=from_mismatch src=%s",
				 user->uri, t->src_addr);
			reply_simple(t, 403, "Forbidden (From is not the authenticated user)",
				     NULL);
			return;
		}
	}
	strip = top_route_is_us(t);
	rc = resolve(t, strip, &tg);
	if (rc < 0) {
		if (rc == -2)
			log_debug("route.drop", "method=ack src=%s", t->src_addr);
		return;
	}
	if (tg.flow.listen_idx < 0 || (size_t)tg.flow.listen_idx >= t->w->rt->n_listeners ||
	    flow_is_us(t->w->rt, &tg.flow)) {
		if (m->method_id != SIP_M_ACK)
			reply_simple(t, 482, "Loop Detected", NULL);
		return;
	}
	if (tg.sa_opaque[0]) {
		callee = sa_find(t->w->rt->sas, str_cstr(tg.sa_opaque), (uint64_t)t->now);
		if (!callee) {
			/* the recipient's SA expired: it cannot verify us */
			if (m->method_id != SIP_M_ACK)
				reply_simple(t, 480,
					     "Temporarily Unavailable (no security association)",
					     NULL);
			return;
		}
	}
	sbuf_init(&b, mem, FWD_MAX);
	build_forward(&b, t, &tg, strip, callee);
	if (callee)
		sa_put(callee);
	if (!sbuf_ok(&b)) {
		reply_simple(t, 513, "Message Too Large", NULL);
		return;
	}
	if (sip_io_send(t->w->io, &tg.flow, b.p, b.len) < 0) {
		if (m->method_id != SIP_M_ACK)
			reply_simple(t, 480, "Temporarily Unavailable (flow closed)", NULL);
		return;
	}
	stats_inc(ST_ROUTED);
	stats_inc(ST_SIP_TX);
	log_info("route.forward", "method=%.*s from=%s to=%s",
		 (int)(m->method.len > 16 ? 16 : m->method.len), m->method.p,
		 user ? user->uri : "-", tg.ruri[0] ? tg.ruri : "-");
}

/* Parse "rtcf=T.L.CONNHEX" from our Via's params. */
static int parse_rtcf(struct str params, struct location_flow *f)
{
	struct str v;
	char buf[64];
	int kind, idx;
	unsigned long long conn;

	if (sip_param_get(params, "rtcf", &v) != 1 || str_copy(v, buf, sizeof(buf)) < 0)
		return -1;
	if (sscanf(buf, "%d.%d.%llx", &kind, &idx, &conn) != 3)
		return -1;
	f->transport = kind;
	f->listen_idx = idx;
	f->conn_id = conn;
	return 0;
}

/*
 * A response from a client with an SA must carry its signature
 * ([MS-SIPAE]): verify it with that SA. 0, or -1 (drop it).
 */
static int response_verify(struct sip_worker *w, const struct sip_msg *m, struct str opaque)
{
	static _Thread_local char buf[SIPAE_SIGBUF_MAX];
	static const enum sip_hdr ids[2] = {SIP_H_AUTHORIZATION, SIP_H_PROXY_AUTHORIZATION};
	struct sipae_fields f;
	struct sipae_creds c;
	struct sa *sa;
	char status[4];
	long len;
	int rc = -1;

	sa = sa_find(w->rt->sas, opaque, (uint64_t)clock_wall_s());
	if (!sa) {
		log_info("route.response_dropped", "reason=sa_gone status=%d", m->status);
		return -1;
	}
	for (int k = 0; k < 2 && rc != 0; k++) {
		for (const struct sip_header *h = sip_msg_header(m, ids[k]); h && rc != 0;
		     h = sip_msg_next_header(m, h)) {
			if (sipae_parse_credentials(h->value, &c) != 0 || !c.has_cnum ||
			    !str_eq_cstr(c.opaque, sa_opaque(sa)))
				continue;
			if (sipae_fields_from_msg(m, &f, status) != 0)
				break;
			len = sipae_sig_buffer(c.scheme_str, c.crand, c.cnum_str, c.realm,
					       c.targetname, &f, buf, sizeof(buf));
			if (len < 0)
				break;
			rc = sa_verify(sa, c.cnum, (const uint8_t *)buf, (size_t)len, c.response,
				       (uint64_t)clock_wall_s());
			if (rc != 0)
				log_warn("route.response_bad_signature",
					 "opaque=%s status=%d reason=%s", sa_opaque(sa), m->status,
					 sa_strerror(rc));
			break;
		}
	}
	if (rc != 0)
		log_info("route.response_dropped", "reason=unsigned status=%d", m->status);
	sa_put(sa);
	return rc == 0 ? 0 : -1;
}

void proxy_response(struct sip_worker *w, const struct sip_msg *m, const struct location_flow *src)
{
	char *mem = tbuf(TBUF_PROXY_RESP, FWD_MAX);
	const struct sip_runtime *rt = w->rt;
	struct sip_hdr_iter it;
	struct str v, ours = STR_NULL;
	struct sip_via top, next;
	struct location_flow f;
	struct sbuf b;
	const struct sip_header *vh;
	struct str sav, callee_op = STR_NULL, caller_op = STR_NULL;
	struct sa *caller = NULL;
	int n = 0;

	if (!mem) {
		log_err("route.response_dropped", "reason=no_memory status=%d", m->status);
		return;
	}
	sip_hdr_iter_init(&it, m, SIP_H_VIA);
	while (n < 2 && sip_hdr_iter_next(&it, &v) > 0) {
		if (n == 0) {
			ours = v;
			if (sip_via_parse(v, &top) < 0)
				return;
		} else if (sip_via_parse(v, &next) < 0) {
			return;
		}
		n++;
	}
	/* RFC 3261 §16.7 item 3: not ours, or nothing left: drop */
	if (n < 2 || top.branch.len < sizeof(BRANCH_MAGIC) - 1 ||
	    memcmp(top.branch.p, BRANCH_MAGIC, sizeof(BRANCH_MAGIC) - 1) != 0 ||
	    !sip_host_is_us(rt, top.host, top.port)) {
		log_debug("route.response_dropped", "reason=not_our_via");
		return;
	}
	memset(&f, 0, sizeof(f));
	if (parse_rtcf(top.params, &f) < 0 || f.listen_idx < 0 ||
	    (size_t)f.listen_idx >= rt->n_listeners)
		return;
	if (f.conn_id == 0) {
		uint16_t port = next.port ? next.port : 5060;
		uint64_t rp;
		if (next.has_rport && next.rport.len && str_to_u64(next.rport, 65535, &rp) == 0)
			port = (uint16_t)rp;
		if (parse_ip(next.received.len ? next.received : next.host, port, &f) < 0)
			return;
	}
	if (sip_param_get(top.params, "rtcsa", &sav) == 1) {
		long dot = str_chr(sav, '.');
		if (dot < 0)
			return;
		callee_op = str_make(sav.p, (size_t)dot);
		caller_op = str_make(sav.p + dot + 1, sav.len - (size_t)dot - 1);
	}
	if (callee_op.len && response_verify(w, m, callee_op) < 0)
		return; /* the recipient's SA did not sign it: dropped */
	if (caller_op.len) {
		caller = sa_find(rt->sas, caller_op, (uint64_t)clock_wall_s());
		if (!caller) {
			log_info("route.response_dropped", "reason=sa_gone status=%d", m->status);
			return;
		}
	}
	/* copy the response without our via-parm (and, with SAs, without the
	 * recipient's signature, replaced by ours for the caller) */
	sbuf_init(&b, mem, FWD_MAX);
	vh = sip_msg_header(m, SIP_H_VIA);
	{
		struct str line = header_line(m, vh);
		const char *after = ours.p + ours.len;
		const char *line_end = line.p + line.len;
		/* our value alone on its line: drop the line; else drop "ours," */
		const char *q = after;
		const char *rest;
		while (q < line_end && (*q == ' ' || *q == '\t'))
			q++;
		sbuf_put(&b, m->buf, (size_t)(line.p - m->buf));
		if (q < line_end && *q == ',') {
			sbuf_put(&b, line.p, (size_t)(ours.p - line.p));
			q++;
			while (q < line_end && (*q == ' ' || *q == '\t'))
				q++;
			rest = q;
		} else {
			rest = line_end;
		}
		if (!callee_op.len && !caller) {
			sbuf_put(&b, rest, (size_t)(m->buf + m->len - rest));
		} else {
			/* header by header after the Via line, so that the
			 * signature headers can be left out */
			size_t i = 0;
			while (i < m->n_hdrs && m->hdrs[i].name.p < line_end)
				i++;
			if (rest < line_end)
				sbuf_put(&b, rest, (size_t)(line_end - rest));
			for (; i < m->n_hdrs; i++) {
				const struct sip_header *h = &m->hdrs[i];
				if (h->id == SIP_H_AUTHORIZATION ||
				    h->id == SIP_H_PROXY_AUTHORIZATION ||
				    h->id == SIP_H_AUTHENTICATION_INFO ||
				    h->id == SIP_H_PROXY_AUTHENTICATION_INFO ||
				    h->id == SIP_H_CONTENT_LENGTH)
					continue;
				sbuf_putstr(&b, header_line(m, h));
			}
			if (caller) {
				struct sipae_fields fl;
				char status[4];
				if (sipae_fields_from_msg(m, &fl, status) == 0)
					sipae_sign_write(&b, caller, &fl, STR_NULL);
			}
			sbuf_printf(&b, "Content-Length: %zu\r\n\r\n", m->body.len);
			sbuf_putstr(&b, m->body);
		}
	}
	if (caller)
		sa_put(caller);
	if (!sbuf_ok(&b) || sip_io_send(w->io, &f, b.p, b.len) < 0) {
		log_info("route.response_lost", "status=%d", m->status);
		return;
	}
	stats_inc(ST_SIP_TX);
}
