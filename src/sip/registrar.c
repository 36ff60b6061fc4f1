/*
 * Registrar (RFC 3261 §10.3, RFC 5626 §6 for +sip.instance / reg-id,
 * RFC 3327 Path). Runs after authentication; changes the location table
 * under the AOR's lock, then hands the changes to the write-behind store
 * queue and answers 200 with the current bindings.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/log.h"
#include "core/stats.h"
#include "core/tbuf.h"
#include "auth/sa.h"
#include "sip/server_int.h"
#include "store/wb.h"

#define REG_MAX_CONTACTS 32

struct reg_contact {
	struct sip_contact c;
	char key[LOC_KEY_MAX];
	char contact[LOC_CONTACT_MAX]; /* <uri>;params without expires */
	char uri[LOC_CONTACT_MAX];
	uint32_t expires;
};

struct reg_req {
	const struct sip_tx *t;
	const char *aor;
	struct reg_contact *cs;
	size_t n;
	bool star;
	char path[LOC_PATH_MAX];
	char ua[LOC_SMALL_MAX];
	struct str call_id;
	uint32_t cseq;
	int max_contacts;
	bool retransmission;
	/* results */
	int status;
	const char *reason;
	struct sbuf *out; /* Contact lines of the 200 */
	struct location_binding *changed;
	bool *removed;
	size_t n_changed;
};

static int copy_str(struct str s, char *dst, size_t cap)
{
	return str_copy(s, dst, cap);
}

/* "Date: ...\r\n" for now, formatted once per second per thread. */
const char *sip_date_header(int64_t now)
{
	static _Thread_local char date[64];
	static _Thread_local int64_t when = -1;

	if (now != when) {
		struct tm tm;
		time_t tt = (time_t)now;
		gmtime_r(&tt, &tm);
		strftime(date, sizeof(date), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
		when = now;
	}
	return date;
}

/* "<uri>;p1;p2" with the expires param removed. */
static int contact_text(const struct sip_contact *c, char *out, size_t cap)
{
	struct sbuf b;
	struct str p = c->na.params;

	sbuf_init(&b, out, cap);
	sbuf_putc(&b, '<');
	sbuf_putstr(&b, c->na.uri_str);
	sbuf_putc(&b, '>');
	while (p.len) {
		long semi = -1;
		bool q = false;
		for (size_t i = 0; i < p.len; i++) {
			if (p.p[i] == '"')
				q = !q;
			else if (p.p[i] == ';' && !q) {
				semi = (long)i;
				break;
			}
		}
		struct str one = str_trim(str_make(p.p, semi < 0 ? p.len : (size_t)semi));
		if (one.len && !(one.len >= 7 && strncasecmp(one.p, "expires", 7) == 0 &&
				 (one.len == 7 || one.p[7] == '=' || one.p[7] == ' '))) {
			sbuf_putc(&b, ';');
			sbuf_putstr(&b, one);
		}
		if (semi < 0)
			break;
		p.p += semi + 1;
		p.len -= (size_t)semi + 1;
	}
	sbuf_cstr(&b);
	return sbuf_ok(&b) ? 0 : -1;
}

static void to_store_reg(const struct location_binding *b, struct store_reg *r)
{
	char addr[80];
	memset(r, 0, sizeof(*r));
	str_copy_cstr(r->aor, sizeof(r->aor), b->aor);
	str_copy_cstr(r->binding_key, sizeof(r->binding_key), b->key);
	str_copy_cstr(r->contact, sizeof(r->contact), b->contact);
	str_copy_cstr(r->instance, sizeof(r->instance), b->instance);
	r->reg_id = b->reg_id;
	str_copy_cstr(r->path, sizeof(r->path), b->path);
	r->expires = b->expires;
	str_copy_cstr(r->source, sizeof(r->source), sip_flow_addr(&b->flow, addr, sizeof(addr)));
	r->transport = b->flow.transport;
	str_copy_cstr(r->call_id, sizeof(r->call_id), b->call_id);
	r->cseq = b->cseq;
	str_copy_cstr(r->user_agent, sizeof(r->user_agent), b->user_agent);
	r->updated = b->updated;
}

static void fill_binding(const struct reg_req *q, const struct reg_contact *rc,
			 struct location_binding *b)
{
	const struct sip_tx *t = q->t;
	memset(b, 0, sizeof(*b));
	str_copy_cstr(b->aor, sizeof(b->aor), q->aor);
	str_copy_cstr(b->key, sizeof(b->key), rc->key);
	str_copy_cstr(b->contact, sizeof(b->contact), rc->contact);
	str_copy_cstr(b->contact_uri, sizeof(b->contact_uri), rc->uri);
	copy_str(rc->c.instance, b->instance, sizeof(b->instance));
	b->reg_id = rc->c.has_reg_id ? (int32_t)rc->c.reg_id : -1;
	str_copy_cstr(b->path, sizeof(b->path), q->path);
	copy_str(q->call_id, b->call_id, sizeof(b->call_id));
	b->cseq = q->cseq;
	str_copy_cstr(b->user_agent, sizeof(b->user_agent), q->ua);
	b->expires = t->now + rc->expires;
	b->updated = t->now;
	b->flow = *t->src;
	if (t->sa)
		str_copy_cstr(b->sa_opaque, sizeof(b->sa_opaque), sa_opaque(t->sa));
}

/*
 * A refresh that changes nothing but the expiry (and the Call-ID/CSeq the
 * store keeps for information) need not rewrite the binding's row while
 * the expiry already stored covers at least half of the new lifetime from
 * now: a client refreshing that often (NAT keep-alive style re-REGISTERs,
 * every few seconds at worst) is then written about once per half
 * lifetime instead of on every refresh. After a crash such a binding comes
 * back with the stored expiry, which is never later than the one granted
 * and is later than the client's next refresh: skipping needs a refresh
 * period of at most half the lifetime (the stored expiry is at most one
 * period old). A clean stop writes the true expiries
 * (registrar_flush_refreshes). Anything else changed, an expiry that went
 * down, or a binding the store does not hold: written at once.
 */
static bool refresh_only(const struct location_binding *old, const struct location_binding *b,
			 int64_t now)
{
	if (old->stored_expires <= 0 || old->stored_expires > b->expires ||
	    old->stored_expires - now < (b->expires - now + 1) / 2)
		return false;
	return old->reg_id == b->reg_id && old->flow.transport == b->flow.transport &&
	       old->flow.addrlen == b->flow.addrlen && b->flow.addrlen <= sizeof(b->flow.addr) &&
	       memcmp(&old->flow.addr, &b->flow.addr, b->flow.addrlen) == 0 &&
	       strcmp(old->contact, b->contact) == 0 && strcmp(old->instance, b->instance) == 0 &&
	       strcmp(old->path, b->path) == 0 && strcmp(old->user_agent, b->user_agent) == 0 &&
	       strcmp(old->sa_opaque, b->sa_opaque) == 0;
}

static int update_fn(void *vctx, struct location_aor *rec)
{
	static _Thread_local struct location_binding scratch;
	struct reg_req *q = vctx;
	struct location_binding *cur = &scratch;
	size_t adds = 0;

	/* RFC 3261 §10.3 step 7: an older or equal CSeq on the same Call-ID
	 * aborts the whole request; new bindings must fit max_contacts */
	for (size_t i = 0; i < q->n; i++) {
		int idx = location_aor_find(rec, q->cs[i].key);
		if (idx >= 0) {
			location_aor_get(rec, (size_t)idx, cur);
			if (str_eq_cstr(q->call_id, cur->call_id) && q->cseq < cur->cseq) {
				q->status = 500;
				q->reason = "Server Internal Error (CSeq out of order)";
				return 0;
			}
			if (str_eq_cstr(q->call_id, cur->call_id) && q->cseq == cur->cseq)
				q->retransmission = true;
		} else if (q->cs[i].expires > 0) {
			adds++;
		}
	}
	if (location_aor_count(rec) + adds > (size_t)q->max_contacts) {
		q->status = 403;
		q->reason = "Forbidden (too many contacts for this address)";
		return 0;
	}
	q->n_changed = 0;
	if (q->retransmission) {
		/* the same REGISTER again: answer with what it already did */
		q->n = 0;
		q->star = false;
	}
	if (q->star) {
		while (location_aor_count(rec) > 0) {
			location_aor_get(rec, 0, &q->changed[q->n_changed]);
			q->removed[q->n_changed++] = true;
			location_aor_remove(rec, 0);
			if (q->n_changed >= REG_MAX_CONTACTS * 2)
				break;
		}
	}
	for (size_t i = 0; i < q->n && !q->star; i++) {
		struct location_binding *b = &q->changed[q->n_changed];
		int idx = location_aor_find(rec, q->cs[i].key);
		if (q->cs[i].expires == 0) {
			if (idx >= 0) {
				location_aor_get(rec, (size_t)idx, b);
				location_aor_remove(rec, (size_t)idx);
				q->removed[q->n_changed++] = true;
			}
			continue;
		}
		fill_binding(q, &q->cs[i], b);
		b->stored_expires = b->expires; /* written below, unless ... */
		if (idx >= 0) {
			location_aor_get(rec, (size_t)idx, cur);
			if (refresh_only(cur, b, q->t->now))
				b->stored_expires = cur->stored_expires; /* ... the row may stay */
		}
		if (location_aor_put(rec, b) < 0) {
			q->status = 500;
			q->reason = "Server Internal Error (out of memory)";
			return 0;
		}
		q->removed[q->n_changed++] = false;
	}
	/* RFC 3261 §10.3 step 8: the 200 lists every current binding */
	for (size_t i = 0; i < location_aor_count(rec); i++) {
		int64_t left;

		sbuf_puts(q->out, "Contact: ");
		left = location_aor_contact(rec, i, q->out) - q->t->now;
		sbuf_puts(q->out, ";expires=");
		sbuf_putu(q->out, left > 0 ? (unsigned long)left : 0);
		sbuf_puts(q->out, "\r\n");
	}
	q->status = 200;
	q->reason = "OK";
	return 0;
}

/* Parse and check every Contact before anything changes. 0 or answered. */
static int collect_contacts(struct reg_req *q, struct reg_contact *cs)
{
	const struct sip_tx *t = q->t;
	const struct config *cfg = t->w->rt->cfg;
	struct sip_hdr_iter it;
	struct str v;
	uint32_t hdr_exp = (uint32_t)cfg->default_expires;
	bool has_hdr_exp = sip_msg_expires(t->m, &hdr_exp) == 0;
	int rc;

	if (!has_hdr_exp)
		hdr_exp = (uint32_t)cfg->default_expires;
	sip_hdr_iter_init(&it, t->m, SIP_H_CONTACT);
	while ((rc = sip_hdr_iter_next(&it, &v)) > 0) {
		struct reg_contact *c;
		if (q->n >= REG_MAX_CONTACTS) {
			reply_simple(t, 403, "Forbidden (too many contacts in one request)", NULL);
			return -1;
		}
		c = &cs[q->n];
		if (sip_msg_contact(t->m, v, &c->c) < 0) {
			reply_simple(t, 400, "Bad Request (Contact)", NULL);
			return -1;
		}
		if (c->c.is_star) {
			q->star = true;
			q->n++;
			continue;
		}
		c->expires = c->c.has_expires ? c->c.expires : hdr_exp;
		if (c->expires > 0 && c->expires < (uint32_t)cfg->min_expires) {
			/* RFC 3261 §10.3 step 7, 423 with Min-Expires */
			char extra[64];
			snprintf(extra, sizeof(extra), "Min-Expires: %d\r\n", cfg->min_expires);
			reply_simple(t, 423, "Interval Too Brief", extra);
			return -1;
		}
		if (c->expires > (uint32_t)cfg->max_expires)
			c->expires = (uint32_t)cfg->max_expires;
		if (contact_text(&c->c, c->contact, sizeof(c->contact)) < 0 ||
		    copy_str(c->c.na.uri_str, c->uri, sizeof(c->uri)) < 0) {
			reply_simple(t, 400, "Bad Request (Contact too long)", NULL);
			return -1;
		}
		/* RFC 5626 §6: instance + reg-id identify the flow's binding */
		if (c->c.instance.len && c->c.has_reg_id)
			snprintf(c->key, sizeof(c->key), "%.*s;reg-id=%u", STR_FMT(c->c.instance),
				 c->c.reg_id);
		else if (c->c.instance.len)
			snprintf(c->key, sizeof(c->key), "%.*s", STR_FMT(c->c.instance));
		else
			str_copy_cstr(c->key, sizeof(c->key), c->uri);
		q->n++;
	}
	if (rc < 0) {
		reply_simple(t, 400, "Bad Request (Contact)", NULL);
		return -1;
	}
	/* RFC 3261 §10.3 step 6: "*" only alone and with Expires: 0 */
	if (q->star && (q->n != 1 || !has_hdr_exp || hdr_exp != 0)) {
		reply_simple(
		    t, 400, "Bad Request (Contact: * needs Expires: 0 and no other contact)", NULL);
		return -1;
	}
	return 0;
}

static int check_target(const struct sip_tx *t, const struct store_user *user, char *aor,
			size_t cap)
{
	struct sip_uri ru;
	struct sip_nameaddr to;

	if (sip_msg_ruri(t->m, &ru) < 0 || !sip_host_is_us(t->w->rt, ru.host, ru.port)) {
		reply_simple(t, 403, "Forbidden (domain not served here)", NULL);
		return -1;
	}
	if (sip_msg_to(t->m, &to) < 0 || sip_aor_from_uri(&to.uri, aor, cap) < 0) {
		reply_simple(t, 400, "Bad Request (To)", NULL);
		return -1;
	}
	if (strcmp(aor, user->uri) != 0) {
		/* a user may register only their own address */
		log_warn("register.forbidden", "user=%s aor=%s src=%s", user->uri, aor,
			 t->src_addr);
		reply_simple(t, 403, "Forbidden (To is not the authenticated user)", NULL);
		return -1;
	}
	/* RFC 3261 §8.2.2.3: every Require option must be one we support */
	{
		struct sip_hdr_iter it;
		struct str opt;
		sip_hdr_iter_init(&it, t->m, SIP_H_REQUIRE);
		while (sip_hdr_iter_next(&it, &opt) > 0) {
			if (!str_caseeq_cstr(opt, "path") && !str_caseeq_cstr(opt, "outbound")) {
				char extra[256];
				snprintf(extra, sizeof(extra), "Unsupported: %.*s\r\n",
					 (int)(opt.len > 200 ? 200 : opt.len), opt.p);
				reply_simple(t, 420, "Bad Extension", extra);
				return -1;
			}
		}
	}
	return 0;
}

static void collect_path(struct reg_req *q)
{
	struct sip_hdr_iter it;
	struct str v;
	struct sbuf b;

	sbuf_init(&b, q->path, sizeof(q->path));
	sip_hdr_iter_init(&it, q->t->m, SIP_H_PATH);
	while (sip_hdr_iter_next(&it, &v) > 0) {
		if (b.len)
			sbuf_puts(&b, ", ");
		sbuf_putstr(&b, v);
	}
	sbuf_cstr(&b);
	if (!sbuf_ok(&b))
		q->path[0] = '\0';
}

void registrar_handle(const struct sip_tx *t, const struct store_user *user)
{
	struct reg_contact *cs = tbuf(TBUF_REG_CONTACTS, sizeof(*cs) * REG_MAX_CONTACTS);
	struct location_binding *changed =
	    tbuf(TBUF_REG_CHANGED, sizeof(*changed) * REG_MAX_CONTACTS * 2);
	bool removed[REG_MAX_CONTACTS * 2];
	char aor[LOC_AOR_MAX];
	char contacts[SIP_REPLY_MAX / 2];
	struct sbuf cb;
	struct reg_req q;
	const struct sip_header *ua;

	if (!cs || !changed) {
		log_err("register.no_memory", "src=%s", t->src_addr);
		reply_simple(t, 500, "Server Internal Error", NULL);
		return;
	}
	if (check_target(t, user, aor, sizeof(aor)) < 0)
		return;
	memset(&q, 0, sizeof(q));
	q.t = t;
	q.aor = aor;
	q.cs = cs;
	q.max_contacts = t->w->rt->cfg->max_contacts;
	if (collect_contacts(&q, cs) < 0)
		return;
	collect_path(&q);
	ua = sip_msg_header(t->m, SIP_H_USER_AGENT);
	if (ua) {
		size_t n = ua->value.len < 120 ? ua->value.len : 120;
		memcpy(q.ua, ua->value.p, n);
		q.ua[n] = '\0';
	}
	q.call_id = sip_msg_call_id(t->m);
	sip_msg_cseq(t->m, &q.cseq, &(struct str){0});
	sbuf_init(&cb, contacts, sizeof(contacts));
	q.out = &cb;
	q.changed = changed;
	q.removed = removed;
	if (location_update(str_cstr(aor), t->now, update_fn, &q) < 0) {
		reply_simple(t, 500, "Server Internal Error", NULL);
		return;
	}
	if (q.status != 200) {
		reply_simple(t, q.status, q.reason, NULL);
		return;
	}
	for (size_t i = 0; i < q.n_changed; i++) {
		if (q.removed[i]) {
			wb_reg_del(changed[i].aor, changed[i].key);
		} else if (changed[i].stored_expires == changed[i].expires) {
			struct store_reg r;
			to_store_reg(&changed[i], &r);
			wb_reg_put(&r);
		}
	}
	if (q.path[0] && sbuf_ok(&cb))
		sbuf_printf(&cb, "Path: %s\r\nSupported: path\r\n", q.path);
	/* [MS-SIPAE] clients sign in on a signed 200 with Expires > 0, and
	 * Expires is in the signature buffer: state the granted time */
	if (t->sa && q.n > 0 && !q.star)
		sbuf_printf(&cb, "Expires: %lld\r\n", (long long)q.cs[0].expires);
	sbuf_puts(&cb, sip_date_header(t->now));
	if (!sbuf_ok(&cb)) {
		reply_simple(t, 500, "Server Internal Error (reply too large)", NULL);
		return;
	}
	stats_inc(ST_REG_OK);
	log_info("register.ok", "aor=%s contacts=%zu changed=%zu src=%s", aor, q.n, q.n_changed,
		 t->src_addr);
	reply_simple(t, 200, "OK", sbuf_cstr(&cb));
}

static void flush_one(void *ctx, const struct location_binding *b)
{
	size_t *n = ctx;
	struct store_reg r;

	if (b->stored_expires == b->expires)
		return;
	to_store_reg(b, &r);
	wb_reg_put(&r);
	(*n)++;
}

size_t registrar_flush_refreshes(void)
{
	size_t n = 0;
	location_foreach(flush_one, &n);
	return n;
}
