/*
 * TURN/STUN server on a worker loop; see server.h.
 *
 * Requests: Binding (no authentication), Allocate, Refresh,
 * CreatePermission, ChannelBind with the long-term credential mechanism
 * (RFC 8489 §9.2: 401 with REALM and a stateless NONCE, 438 when the nonce
 * is stale or not ours, MESSAGE-INTEGRITY or -SHA256 checked by the vault;
 * the nonce offers password algorithms and username anonymity, so the user
 * may be named by USERHASH instead of USERNAME).
 * Indications: Send. ChannelData over UDP and, padded, over TCP/TLS.
 * Relayed addresses: one UDP socket per allocation on [turn] relay_address
 * in min_port..max_port. Peers are checked against turn/policy.h.
 * Unauthenticated answers (401, 438, 400 and 420 before authentication)
 * are limited per source IP (a token bucket; beyond it, silence), so the
 * relay cannot be used to reflect traffic at a victim.
 *
 * Settings a reload may change live in an immutable snapshot behind an
 * atomic pointer (struct settings, turn_reload); listeners, relay address
 * and ports are the worker's own, fixed at start.
 *
 * Must never: log a key, a password or a MESSAGE-INTEGRITY; answer "wrong
 * password" for a store outage (that is 500); relay to a peer the policy
 * refuses or without a permission.
 */
#include "turn/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/sock.h"
#include "core/secmem.h"
#include "turn/alloc.h"
#include "turn/policy.h"
#include "turn/relayport.h"
#include "turn/stun.h"
#include "vault/vault_turn.h"

#define TURN_UDP_BUF	  65536
#define TURN_OUT_BUF	  (65536 + 128)
#define TURN_STREAM_MAX	  (65535 + 4 + 20) /* largest framed message */
#define TURN_CONN_OUT_MAX (1024 * 1024)	   /* relayed data beyond this on a stream is dropped */
#define RL_SLOTS	  4096		   /* unauthenticated-answer buckets per worker */
#define RELAY_READ_BATCH  32		   /* datagrams read per socket per wakeup */
#define RECV_BATCH	  16		   /* of those, per recvmmsg(2) */
#define TID_POOL	  256 /* Data indication transaction ids drawn per RAND_bytes */
#define SOFTWARE	  "rtcauth"
/* RFC 8489 §9.2 security features offered in every nonce cookie */
#define TURN_OFFERED_FEATURES (TURN_FEATURE_PASSWORD_ALGORITHMS | TURN_FEATURE_USERNAME_ANONYMITY)

/* A TCP/TLS client connection. */
struct tconn {
	struct tconn *next, *prev;
	struct turn_server *ts;
	struct bufferevent *bev;
	struct turn_tuple tuple;
	struct turn_alloc *alloc; /* the allocation of this 5-tuple, or NULL */
};

/* What an allocation holds of ours (turn_alloc.io). */
struct relay {
	struct turn_server *ts;
	struct event *ev;
	struct tconn *conn;
};

/* Unauthenticated-answer bucket of one source IP. */
struct rl_slot {
	uint8_t ip[16];
	uint32_t milli_tokens;
	uint64_t last_ms;
	uint64_t logged_ms;
	uint64_t dropped;
	bool used;
};

/*
 * The [turn] settings a reload may change (turn_reload), immutable once
 * published: workers load the pointer once per packet or request (one
 * atomic load, no lock) and use that snapshot throughout. Replaced ones
 * stay allocated until turn_global_shutdown (a worker may still hold one;
 * reloads are rare), like src/daemon/main.c keeps old configs.
 */
struct settings {
	struct settings *older; /* replaced settings (reload thread only) */
	uint64_t gen;		/* publication number (turn_alloc.policy_gen) */
	char realm[CONFIG_HOST_MAX];
	char fqdn[CONFIG_HOST_MAX]; /* handed out for wildcard listeners */
	uint32_t def_lifetime, max_lifetime, nonce_lifetime;
	uint64_t max_bps;
	uint32_t rl_rate, rl_burst;
	bool rfc5766_channels;	       /* also bind 0x5000-0x7FFF (coturn's clients) */
	unsigned max_conns_per_source; /* [sip] max_conns_per_source */
	unsigned user_quota, total_quota;
	struct config_cidr allow[CONFIG_MAX_CIDR], deny[CONFIG_MAX_CIDR];
	struct turn_policy policy; /* points into allow/deny */
	/* restart only: what the relay was started with */
	struct listen_addr listen[CONFIG_MAX_LISTEN];
	size_t n_listen;
	char relay_address[64];
	int min_port, max_port;
};

static _Atomic(const struct settings *) cur_settings;
static struct settings *retired_settings;
static uint64_t settings_gen;

static const struct settings *settings_get(void)
{
	return atomic_load_explicit(&cur_settings, memory_order_acquire);
}

/* After a reload, an allocation's permissions and channels are checked once
 * against the new peer lists before it relays anything again. */
static void policy_current(struct turn_alloc *a, const struct settings *st)
{
	if (a->policy_gen == st->gen)
		return;
	a->policy_gen = st->gen;
	if (turn_alloc_apply_policy(a, &st->policy))
		log_info("turn.peers_revoked", "user=%s reason=reload", a->quota_key);
}

struct turn_server {
	struct event_base *base;
	struct store *store;
	int worker_id;
	SSL *(*ssl_new)(void);
	/* fixed at start: the sockets are bound to them */
	struct listen_addr listen[CONFIG_MAX_LISTEN];
	size_t n_listen;
	struct stun_addr relay_ip;
	uint16_t min_port, max_port;
	/* sockets */
	int udp_fd[CONFIG_MAX_LISTEN];
	struct event *udp_ev[CONFIG_MAX_LISTEN];
	struct evconnlistener *lst[CONFIG_MAX_LISTEN];
	struct tconn *conns;
	uint64_t next_conn;
	struct event *tick;
	struct turn_alloc_table *allocs;
	struct rl_slot *rl;
	uint8_t *in;  /* RECV_BATCH x TURN_UDP_BUF */
	uint8_t *out; /* TURN_OUT_BUF */
	/* UDP fast path: a recvmmsg batch, relayed data queued for sendmmsg */
	struct mmsghdr rmm[RECV_BATCH];
	struct iovec riov[RECV_BATCH];
	struct sockaddr_storage rfrom[RECV_BATCH];
	struct turn_sendq sq;
	uint8_t tids[TID_POOL * STUN_TID_LEN];
	unsigned tids_left;
};

/* One request being answered. */
struct req {
	struct turn_server *ts;
	const struct settings *st; /* loaded once for the whole request */
	const struct stun_msg *m;
	const struct turn_tuple *from;
	struct tconn *conn;
	uint64_t now_ms;
	int64_t now_s;
	bool fp;     /* the request had a FINGERPRINT: so does the answer */
	bool sha256; /* it was authenticated with MESSAGE-INTEGRITY-SHA256 */
	bool authed; /* answers are signed */
	char who[VAULT_TURN_WHO_MAX];
	struct str username; /* USERNAME, or uhname for a USERHASH request */
	char uhname[9 + 2 * STUN_USERHASH_LEN + 1];
	uint16_t alg;
};

static const uint16_t offered_algs[] = {STUN_PWALG_MD5, STUN_PWALG_SHA256};

/* ---- small helpers ---- */

static const char *addr_str(const struct stun_addr *a, char *buf, size_t cap)
{
	char ip[INET6_ADDRSTRLEN];

	if (!inet_ntop(a->family == STUN_AF_IPV4 ? AF_INET : AF_INET6, a->ip, ip, sizeof(ip)))
		snprintf(ip, sizeof(ip), "?");
	snprintf(buf, cap, a->family == STUN_AF_IPV4 ? "%s:%u" : "[%s]:%u", ip, a->port);
	return buf;
}

static const char *transport_name(int t)
{
	return t == TRANSPORT_UDP ? "udp" : t == TRANSPORT_TCP ? "tcp" : "tls";
}

/* ---- sending to clients ---- */

/* data: relayed media (dropped when a stream's output is backed up). */
static void send_client(struct turn_server *ts, const struct turn_tuple *to, struct tconn *c,
			const void *buf, size_t len, bool data)
{
	if (to->transport == TRANSPORT_UDP) {
		struct sockaddr_storage ss;
		socklen_t sl = to->client.family == STUN_AF_IPV4 ? sizeof(struct sockaddr_in)
								 : sizeof(struct sockaddr_in6);
		if (to->listen_idx >= ts->n_listen || ts->udp_fd[to->listen_idx] < 0 ||
		    stun_addr_to_sockaddr(&to->client, (struct sockaddr *)&ss, sizeof(ss)) < 0)
			return;
		if (sendto(ts->udp_fd[to->listen_idx], buf, len, MSG_DONTWAIT,
			   (struct sockaddr *)&ss, sl) < 0)
			log_debug("turn.send_failed", "errno=%d", errno);
		return;
	}
	if (!c)
		return;
	if (data && evbuffer_get_length(bufferevent_get_output(c->bev)) > TURN_CONN_OUT_MAX)
		return;
	bufferevent_write(c->bev, buf, len);
}

/* Relayed data for a UDP client, built in the send queue's slot out: queued. */
static void queue_client(struct turn_server *ts, const struct turn_tuple *to, const uint8_t *out,
			 size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = to->client.family == STUN_AF_IPV4 ? sizeof(struct sockaddr_in)
							 : sizeof(struct sockaddr_in6);

	if (to->listen_idx >= ts->n_listen || ts->udp_fd[to->listen_idx] < 0 ||
	    stun_addr_to_sockaddr(&to->client, (struct sockaddr *)&ss, sizeof(ss)) < 0)
		return;
	turn_sendq_push(&ts->sq, ts->udp_fd[to->listen_idx], (struct sockaddr *)&ss, sl, out, len,
			NULL, NULL);
}

/*
 * A transaction id for a Data indication (RFC 8489 §5: random): drawn from
 * a pool filled TID_POOL at a time, one RAND_bytes call instead of one per
 * relayed packet (it was the most expensive user-space step of the relay).
 */
static const uint8_t *indication_tid(struct turn_server *ts)
{
	if (ts->tids_left == 0) {
		secmem_random(ts->tids, sizeof(ts->tids));
		ts->tids_left = TID_POOL;
	}
	return ts->tids + (size_t)--ts->tids_left * STUN_TID_LEN;
}

/* Finish an answer (sign when authenticated, FINGERPRINT when asked) and send it. */
static void answer(struct req *r, struct stun_builder *b)
{
	long n;

	if (r->authed && vault_turn_sign(b, r->sha256) < 0)
		log_warn("turn.sign_failed", "worker=%d", r->ts->worker_id);
	if (r->fp)
		stun_build_fingerprint(b);
	n = stun_build_finish(b);
	if (n < 0) {
		log_warn("turn.build_failed", "reason=\"%s\"", stun_strerror((int)n));
		return;
	}
	send_client(r->ts, r->from, r->conn, b->buf, (size_t)n, false);
}

static void start(struct req *r, struct stun_builder *b, enum stun_class cls)
{
	stun_build_init(b, r->ts->out, TURN_OUT_BUF, r->m->method, cls, r->m->tid);
}

static void answer_error(struct req *r, int code, const char *reason)
{
	struct stun_builder b;
	char c[64];

	log_debug("turn.error", "method=%u code=%d client=%s", r->m->method, code,
		  addr_str(&r->from->client, c, sizeof(c)));

	start(r, &b, STUN_ERROR_RESPONSE);
	stun_build_error(&b, code, reason);
	answer(r, &b);
}

/* ---- unauthenticated-answer rate limit (per source IP, per worker) ---- */

static bool unauth_allowed(struct turn_server *ts, const struct settings *st,
			   const struct stun_addr *src, uint64_t now_ms)
{
	uint8_t ip[16];
	uint64_t h = 1469598103934665603ULL;
	struct rl_slot *s;
	uint64_t burst = (uint64_t)st->rl_burst * 1000u;

	turn_addr_v6(src, ip);
	for (int i = 0; i < 16; i++)
		h = (h ^ ip[i]) * 1099511628211ULL;
	s = &ts->rl[(h ^ (h >> 32)) % RL_SLOTS];
	if (!s->used || memcmp(s->ip, ip, 16) != 0) {
		memset(s, 0, sizeof(*s));
		memcpy(s->ip, ip, 16);
		s->used = true;
		s->milli_tokens = (uint32_t)burst;
		s->last_ms = now_ms;
	}
	if (now_ms > s->last_ms) {
		uint64_t t = s->milli_tokens + (now_ms - s->last_ms) * st->rl_rate;
		s->milli_tokens = (uint32_t)(t > burst ? burst : t);
		s->last_ms = now_ms;
	}
	if (s->milli_tokens >= 1000) {
		s->milli_tokens -= 1000;
		return true;
	}
	s->dropped++;
	if (!s->logged_ms || now_ms - s->logged_ms >= 60000) {
		char a[64];
		log_warn("turn.rate_limited",
			 "source=%s limit=%u/s burst=%u dropped=%llu (once per minute per source)",
			 addr_str(src, a, sizeof(a)), st->rl_rate, st->rl_burst,
			 (unsigned long long)s->dropped);
		s->logged_ms = now_ms;
		s->dropped = 0;
	}
	return false;
}

/* An unauthenticated error answer, subject to the rate limit. */
static void answer_error_unauth(struct req *r, int code, const char *reason)
{
	if (unauth_allowed(r->ts, r->st, &r->from->client, r->now_ms))
		answer_error(r, code, reason);
}

/* ---- authentication (RFC 8489 §9.2) ---- */

static size_t nonce_bind(const struct settings *st, const struct stun_addr *client, uint8_t *buf,
			 size_t cap)
{
	size_t rl = strlen(st->realm), n = client->family == STUN_AF_IPV4 ? 4 : 16;

	if (rl + 1 + n > cap)
		return 0;
	memcpy(buf, st->realm, rl);
	buf[rl] = 0;
	memcpy(buf + rl + 1, client->ip, n);
	return rl + 1 + n;
}

/*
 * 401 or 438 with REALM, a fresh NONCE and PASSWORD-ALGORITHMS. The nonce
 * cookie offers both RFC 8489 §9.2 security features we have: password
 * algorithms and username anonymity (USERHASH instead of USERNAME).
 */
static void challenge(struct req *r, int code)
{
	struct stun_builder b;
	uint8_t bind[CONFIG_HOST_MAX + 17];
	size_t bl = nonce_bind(r->st, &r->from->client, bind, sizeof(bind));
	char nonce[TURN_NONCE_MAX + 1];
	int n;

	if (!unauth_allowed(r->ts, r->st, &r->from->client, r->now_ms))
		return;
	n = vault_turn_nonce_make(str_make((const char *)bind, bl), TURN_OFFERED_FEATURES, r->now_s,
				  nonce, sizeof(nonce));
	if (n < 0) {
		answer_error(r, 500, NULL);
		return;
	}
	start(r, &b, STUN_ERROR_RESPONSE);
	stun_build_error(&b, code, NULL);
	stun_build_str(&b, STUN_ATTR_REALM, str_cstr(r->st->realm));
	stun_build_attr(&b, STUN_ATTR_NONCE, nonce, (size_t)n);
	stun_build_password_algorithms(&b, offered_algs, 2);
	answer(r, &b);
}

/*
 * RFC 8489 §9.2.4 with the password-algorithms feature: the algorithm the
 * client chose, MD5 when it sent neither attribute. 0, or -1 after a 400.
 */
static int choose_alg(struct req *r, uint32_t features)
{
	const struct stun_attr *pas = stun_find(r->m, STUN_ATTR_PASSWORD_ALGORITHMS);
	const struct stun_attr *pa = stun_find(r->m, STUN_ATTR_PASSWORD_ALGORITHM);
	uint16_t algs[8], alg;
	size_t n = 0;

	r->alg = STUN_PWALG_MD5;
	if (!(features & TURN_FEATURE_PASSWORD_ALGORITHMS) || (!pas && !pa))
		return 0;
	if (!pas || !pa || stun_get_password_algorithms(r->m, pas, algs, 8, &n) < 0 ||
	    stun_get_password_algorithm(r->m, pa, &alg) < 0 || n != 2 ||
	    algs[0] != offered_algs[0] || algs[1] != offered_algs[1] ||
	    (alg != STUN_PWALG_MD5 && alg != STUN_PWALG_SHA256)) {
		answer_error_unauth(r, 400, "Bad PASSWORD-ALGORITHM(S)");
		return -1;
	}
	r->alg = alg;
	return 0;
}

/*
 * The user a request names: USERNAME, or USERHASH (RFC 8489 §14.4) instead
 * of it. *uh is set for a USERHASH, and r->username then is
 * "userhash:<hex>" (which no USERNAME can authenticate as: a ':' makes it an
 * ephemeral name, and this one has no expiry), so an allocation made with a
 * hash is refreshed with the same hash (441 otherwise). 0; 1 after a 400
 * for both attributes (ambiguous); -1 for neither, or a malformed one.
 */
static int request_user(struct req *r, const uint8_t **uh)
{
	const struct stun_attr *uha = stun_find(r->m, STUN_ATTR_USERHASH);
	static const char hex[] = "0123456789abcdef";

	*uh = NULL;
	if (uha && stun_find(r->m, STUN_ATTR_USERNAME)) {
		answer_error_unauth(r, 400, "USERNAME and USERHASH together");
		return 1;
	}
	if (!uha)
		return stun_get_username(r->m, &r->username) < 0 ? -1 : 0;
	if (stun_get_userhash(r->m, uha, uh) < 0)
		return -1;
	memcpy(r->uhname, "userhash:", 9);
	for (int i = 0; i < STUN_USERHASH_LEN; i++) {
		r->uhname[9 + 2 * i] = hex[(*uh)[i] >> 4];
		r->uhname[10 + 2 * i] = hex[(*uh)[i] & 15];
	}
	r->uhname[sizeof(r->uhname) - 1] = '\0';
	r->username = str_make(r->uhname, sizeof(r->uhname) - 1);
	return 0;
}

/* 0: authenticated (r->who, r->username, r->authed set); -1: answered or dropped. */
static int authenticate(struct req *r)
{
	const struct settings *st = r->st;
	struct str realm, nonce;
	uint8_t bind[CONFIG_HOST_MAX + 17];
	const uint8_t *uh = NULL;
	size_t bl;
	uint32_t features = 0;
	enum turn_nonce_status ns;
	struct verdict v;
	char ubuf[LOG_VAL_MAX], cbuf[64];
	int rc;

	if (r->m->mi < 0 && r->m->mi256 < 0) {
		challenge(r, 401);
		return -1;
	}
	rc = request_user(r, &uh);
	if (rc > 0)
		return -1; /* answered */
	if (rc < 0 || stun_get_realm(r->m, &realm) < 0 || stun_get_nonce(r->m, &nonce) < 0) {
		answer_error_unauth(r, 400, "Missing USERNAME or USERHASH, REALM or NONCE");
		return -1;
	}
	if (!str_eq(realm, str_cstr(st->realm))) {
		challenge(r, 401);
		return -1;
	}
	bl = nonce_bind(st, &r->from->client, bind, sizeof(bind));
	ns = vault_turn_nonce_check(str_make((const char *)bind, bl), nonce, st->nonce_lifetime,
				    r->now_s, &features);
	if (ns != TURN_NONCE_OK) {
		log_debug("turn.nonce", "client=%s status=%s",
			  addr_str(&r->from->client, cbuf, sizeof(cbuf)),
			  ns == TURN_NONCE_STALE ? "stale" : "invalid");
		challenge(r, 438);
		return -1;
	}
	if (choose_alg(r, features) < 0)
		return -1;
	r->sha256 = r->m->mi256 >= 0;
	if (uh && !(features & TURN_FEATURE_USERNAME_ANONYMITY))
		/* RFC 8489 §9.2.4: a USERHASH where the nonce did not offer
		 * username anonymity is not a valid user: 401 */
		v = verdict_permfail("userhash_not_offered");
	else if (uh)
		v = vault_turn_check_userhash(r->ts->store, uh, realm, (enum turn_pwalg)r->alg,
					      r->m, r->who, sizeof(r->who));
	else
		v = vault_turn_check(r->ts->store, r->username, realm, (enum turn_pwalg)r->alg,
				     r->m, r->now_s, r->who, sizeof(r->who));
	if (v.kind == VERDICT_OK) {
		r->authed = true;
		return 0;
	}
	/* a USERHASH is logged as the hash: the name is what it hides */
	log_info("turn.auth_failed", "user=%s client=%s transport=%s reason=%s",
		 log_val(r->username, ubuf, sizeof(ubuf)),
		 addr_str(&r->from->client, cbuf, sizeof(cbuf)), transport_name(r->from->transport),
		 v.reason);
	if (v.kind == VERDICT_TEMPFAIL)
		answer_error(r, 500, "Try Later"); /* an outage is never "wrong password" */
	else
		challenge(r, 401);
	return -1;
}

/* ---- relay sockets ---- */

static void relay_read(evutil_socket_t fd, short what, void *arg);

/* on_free of the allocation table: release what the allocation holds of ours. */
static void alloc_release(struct turn_alloc *a, void *ctx)
{
	struct relay *rel = a->io;
	char c[64], r[64];

	(void)ctx;
	log_info("turn.deallocate", "user=%s client=%s relay=%s relayed=%llu dropped=%llu",
		 a->quota_key, addr_str(&a->tuple.client, c, sizeof(c)),
		 addr_str(&a->relay, r, sizeof(r)), (unsigned long long)a->pkts_relayed,
		 (unsigned long long)a->pkts_dropped);
	if (rel) {
		if (rel->ev)
			event_free(rel->ev);
		if (rel->conn)
			rel->conn->alloc = NULL;
		free(rel);
	}
	if (a->relay_fd >= 0)
		close(a->relay_fd);
	a->io = NULL;
	a->relay_fd = -1;
}

/* Send payload to a peer from the allocation's relayed address. */
static void relay_to_peer(struct turn_server *ts, struct turn_alloc *a,
			  const struct stun_addr *peer, const uint8_t *data, size_t len,
			  uint64_t now_ms)
{
	const struct settings *st = settings_get();
	struct sockaddr_storage ss;
	socklen_t sl =
	    peer->family == STUN_AF_IPV4 ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);

	if (peer->port == 0 || !turn_alloc_bucket_take(a, len, st->max_bps, now_ms) ||
	    stun_addr_to_sockaddr(peer, (struct sockaddr *)&ss, sizeof(ss)) < 0) {
		a->pkts_dropped++;
		return;
	}
	/* data stays valid until the flush at the end of the read batch */
	turn_sendq_push(&ts->sq, a->relay_fd, (struct sockaddr *)&ss, sl, data, len,
			&a->pkts_relayed, &a->pkts_dropped);
}

/* A datagram from a peer: ChannelData when a channel is bound, else a Data indication. */
static void relay_from_peer(struct turn_server *ts, struct turn_alloc *a,
			    const struct stun_addr *peer, const uint8_t *data, size_t len,
			    uint64_t now_ms)
{
	const struct settings *st = settings_get();
	struct relay *rel = a->io;
	const struct turn_channel *ch;
	uint8_t ip[16], *out;
	bool stream = a->tuple.transport != TRANSPORT_UDP;
	long n;

	policy_current(a, st);
	turn_addr_v6(peer, ip);
	if (!turn_alloc_permitted(a, ip, now_ms) ||
	    !turn_alloc_bucket_take(a, len, st->max_bps, now_ms)) {
		a->pkts_dropped++; /* RFC 8656 §10.3: no permission, silently dropped */
		return;
	}
	ch = turn_alloc_channel_by_peer(a, peer, now_ms);
	/* UDP clients: built in the send queue's next slot, sent at the flush */
	out = stream ? ts->out : turn_sendq_slot(&ts->sq);
	if (ch && len <= 0xFFFF) {
		n = (long)stun_channel_data_size(len, stream);
		if (stun_channel_data_header(out, ch->num, (uint16_t)len) < 0)
			return;
		memcpy(out + 4, data, len);
		memset(out + 4 + len, 0, (size_t)n - 4 - len);
	} else {
		struct stun_builder b;
		stun_build_init(&b, out, TURN_OUT_BUF, STUN_METHOD_DATA, STUN_INDICATION,
				indication_tid(ts));
		stun_build_xor_addr(&b, STUN_ATTR_XOR_PEER_ADDRESS, peer);
		stun_build_attr(&b, STUN_ATTR_DATA, data, len);
		n = stun_build_finish(&b);
		if (n < 0)
			return;
	}
	if (stream)
		send_client(ts, &a->tuple, rel->conn, out, (size_t)n, true);
	else
		queue_client(ts, &a->tuple, out, (size_t)n);
	a->pkts_relayed++;
}

/*
 * Up to RELAY_READ_BATCH datagrams from fd, RECV_BATCH per recvmmsg(2),
 * each passed to fn with the sender's address. Returns how many were read.
 */
static int read_batch(struct turn_server *ts, int fd,
		      void (*fn)(struct turn_server *ts, void *arg, const struct stun_addr *from,
				 const uint8_t *data, size_t len),
		      void *arg)
{
	int total = 0;

	while (total < RELAY_READ_BATCH) {
		int want =
		    RELAY_READ_BATCH - total < RECV_BATCH ? RELAY_READ_BATCH - total : RECV_BATCH;
		int got;
		for (int i = 0; i < want; i++) {
			ts->riov[i].iov_base = ts->in + (size_t)i * TURN_UDP_BUF;
			ts->riov[i].iov_len = TURN_UDP_BUF;
			memset(&ts->rmm[i].msg_hdr, 0, sizeof(ts->rmm[i].msg_hdr));
			ts->rmm[i].msg_hdr.msg_name = &ts->rfrom[i];
			ts->rmm[i].msg_hdr.msg_namelen = sizeof(ts->rfrom[i]);
			ts->rmm[i].msg_hdr.msg_iov = &ts->riov[i];
			ts->rmm[i].msg_hdr.msg_iovlen = 1;
		}
		got = recvmmsg(fd, ts->rmm, (unsigned)want, MSG_DONTWAIT, NULL);
		if (got <= 0)
			break;
		for (int i = 0; i < got; i++) {
			struct stun_addr from;
			if (stun_addr_from_sockaddr(&from, (struct sockaddr *)&ts->rfrom[i]) < 0)
				continue;
			fn(ts, arg, &from, ts->riov[i].iov_base, ts->rmm[i].msg_len);
		}
		total += got;
		if (got < want)
			break;
		/* the data pushed by reference lives in ts->in: send it before reusing it */
		turn_sendq_flush(&ts->sq);
	}
	turn_sendq_flush(&ts->sq);
	return total;
}

struct relay_batch {
	struct turn_alloc *a;
	uint64_t now_ms;
};

static void relay_one(struct turn_server *ts, void *arg, const struct stun_addr *peer,
		      const uint8_t *data, size_t len)
{
	struct relay_batch *rb = arg;

	relay_from_peer(ts, rb->a, peer, data, len, rb->now_ms);
}

static void relay_read(evutil_socket_t fd, short what, void *arg)
{
	struct turn_alloc *a = arg;
	struct relay *rel = a->io;
	struct relay_batch rb = {a, clock_mono_ms()};

	(void)what;
	read_batch(rel->ts, fd, relay_one, &rb);
}

/* ---- requests ---- */

static struct turn_alloc *my_alloc(struct req *r)
{
	struct turn_alloc *a = turn_alloc_find(r->ts->allocs, r->from, r->now_ms);

	if (!a) {
		answer_error(r, 437, NULL);
		return NULL;
	}
	/* RFC 8656 §7.2/§8: requests on an allocation come with its user name */
	if (a->username[0] && !str_eq(r->username, str_cstr(a->username))) {
		answer_error(r, 441, NULL);
		return NULL;
	}
	policy_current(a, r->st);
	return a;
}

static void allocate_success(struct req *r, struct turn_alloc *a)
{
	struct stun_builder b;
	uint64_t left = a->expires_ms > r->now_ms ? (a->expires_ms - r->now_ms + 999) / 1000 : 0;

	start(r, &b, STUN_SUCCESS);
	stun_build_xor_addr(&b, STUN_ATTR_XOR_RELAYED_ADDRESS, &a->relay);
	stun_build_u32(&b, STUN_ATTR_LIFETIME, (uint32_t)left);
	stun_build_xor_addr(&b, STUN_ATTR_XOR_MAPPED_ADDRESS, &r->from->client);
	if (a->resv_token) {
		uint8_t t[8];
		for (int i = 0; i < 8; i++)
			t[i] = (uint8_t)(a->resv_token >> (56 - 8 * i));
		stun_build_attr(&b, STUN_ATTR_RESERVATION_TOKEN, t, 8);
	}
	stun_build_str(&b, STUN_ATTR_SOFTWARE, str_cstr(SOFTWARE));
	answer(r, &b);
}

/* What an Allocate asks of its relayed address. */
struct want {
	bool even, reserve, has_token;
	uint64_t token;
};

/* RFC 8656 §7.2 steps after authentication: what the request asks for. 0 or -1 (answered). */
static int allocate_checks(struct req *r, struct want *w)
{
	struct turn_server *ts = r->ts;
	const struct stun_attr *at, *tok;
	uint8_t proto, fam;

	memset(w, 0, sizeof(*w));
	at = stun_find(r->m, STUN_ATTR_REQUESTED_TRANSPORT);
	if (!at || stun_get_requested_transport(r->m, at, &proto) < 0) {
		answer_error(r, 400, "Missing REQUESTED-TRANSPORT");
		return -1;
	}
	if (proto != STUN_TRANSPORT_UDP) {
		answer_error(r, 442, NULL);
		return -1;
	}
	at = stun_find(r->m, STUN_ATTR_EVEN_PORT);
	tok = stun_find(r->m, STUN_ATTR_RESERVATION_TOKEN);
	if ((at && tok) || (tok && (stun_find(r->m, STUN_ATTR_REQUESTED_ADDRESS_FAMILY) ||
				    stun_get_reservation_token(r->m, tok, &w->token) < 0))) {
		answer_error(r, 400, NULL); /* §7.2: not together */
		return -1;
	}
	w->has_token = tok != NULL;
	if (at) {
		if (stun_get_even_port(r->m, at, &w->reserve) < 0) {
			answer_error(r, 400, NULL);
			return -1;
		}
		w->even = true;
	}
	at = stun_find(r->m, STUN_ATTR_REQUESTED_ADDRESS_FAMILY);
	if (at && stun_find(r->m, STUN_ATTR_ADDITIONAL_ADDRESS_FAMILY)) {
		answer_error(r, 400, NULL);
		return -1;
	}
	if (at && (stun_get_family(r->m, at, &fam) < 0 || fam != ts->relay_ip.family)) {
		answer_error(r, 440, NULL);
		return -1;
	}
	if (stun_find(r->m, STUN_ATTR_ADDITIONAL_ADDRESS_FAMILY)) {
		answer_error(r, 440, "Dual allocation not supported");
		return -1;
	}
	return 0;
}

/* The allocation's relay socket: reserved, a pair (one reserved), or one. 0 or -1. */
static int relay_setup(struct req *r, struct turn_alloc *a, const struct want *w, uint64_t *token)
{
	struct turn_server *ts = r->ts;
	struct stun_addr second;
	int fd2 = -1;

	*token = 0;
	if (w->has_token) {
		a->relay_fd = turn_resv_take(w->token, r->now_ms, &a->relay);
		return a->relay_fd < 0 ? -1 : 0;
	}
	a->relay_fd = turn_relay_open(&ts->relay_ip, ts->min_port, ts->max_port, w->even,
				      w->reserve ? &fd2 : NULL, &a->relay, &second);
	if (a->relay_fd < 0)
		return -1;
	if (w->reserve && turn_resv_put(fd2, &second, r->now_ms, token) < 0) {
		close(fd2);
		return -1;
	}
	return 0;
}

static void do_allocate(struct req *r)
{
	struct turn_server *ts = r->ts;
	struct turn_alloc *a = turn_alloc_find(ts->allocs, r->from, r->now_ms), *dead;
	const struct stun_attr *at;
	struct relay *rel;
	uint32_t req_life = 0;
	struct want w;
	uint64_t token = 0;
	int rc;
	char c[64], rl[64];

	if (a) {
		/* a retransmission of the Allocate that made it gets the same answer */
		if (memcmp(a->tid, r->m->tid, STUN_TID_LEN) == 0 &&
		    r->now_ms - a->created_ms < TURN_ALLOC_RETRANS_MS)
			allocate_success(r, a);
		else
			answer_error(r, 437, NULL);
		return;
	}
	if (allocate_checks(r, &w) < 0)
		return;
	/* an expired allocation of this 5-tuple not yet swept */
	dead = turn_alloc_find(ts->allocs, r->from, 0);
	if (dead)
		turn_alloc_del(ts->allocs, dead, alloc_release, ts);
	at = stun_find(r->m, STUN_ATTR_LIFETIME);
	if (at && stun_get_u32(r->m, at, &req_life) < 0)
		at = NULL;
	rc = turn_alloc_add(
	    ts->allocs, r->from, r->username, r->who,
	    turn_lifetime(at != NULL, req_life, r->st->def_lifetime, r->st->max_lifetime),
	    r->now_ms, &a);
	if (rc == TURN_ALLOC_QUOTA_USER || rc == TURN_ALLOC_QUOTA_TOTAL) {
		log_info("turn.quota", "user=%s scope=%s", r->who,
			 rc == TURN_ALLOC_QUOTA_USER ? "user" : "total");
		answer_error(r, 486, NULL);
		return;
	}
	if (rc != TURN_ALLOC_OK) {
		answer_error(r, rc == TURN_ALLOC_EXISTS ? 437 : 508, NULL);
		return;
	}
	memcpy(a->tid, r->m->tid, STUN_TID_LEN);
	a->pwalg = r->alg;
	a->policy_gen = r->st->gen;
	rel = calloc(1, sizeof(*rel));
	a->io = rel;
	if (rel)
		rel->ts = ts;
	if (rel && relay_setup(r, a, &w, &token) == 0)
		rel->ev = event_new(ts->base, a->relay_fd, EV_READ | EV_PERSIST, relay_read, a);
	if (!rel || a->relay_fd < 0 || !rel->ev || event_add(rel->ev, NULL) < 0) {
		log_warn("turn.no_relay_port", "range=%u-%u token=%s", ts->min_port, ts->max_port,
			 w.has_token ? "unknown_or_expired" : "none");
		turn_alloc_del(ts->allocs, a, alloc_release, ts);
		answer_error(r, 508, NULL);
		return;
	}
	a->resv_token = token;
	if (r->conn) {
		rel->conn = r->conn;
		r->conn->alloc = a;
	}
	log_info("turn.allocate", "user=%s client=%s transport=%s relay=%s lifetime=%llu", r->who,
		 addr_str(&r->from->client, c, sizeof(c)), transport_name(r->from->transport),
		 addr_str(&a->relay, rl, sizeof(rl)),
		 (unsigned long long)((a->expires_ms - r->now_ms) / 1000));
	allocate_success(r, a);
}

static void do_refresh(struct req *r)
{
	struct turn_server *ts = r->ts;
	struct turn_alloc *a = my_alloc(r);
	const struct stun_attr *at;
	struct stun_builder b;
	uint32_t req_life = 0, life;
	uint8_t fam;

	if (!a)
		return;
	at = stun_find(r->m, STUN_ATTR_REQUESTED_ADDRESS_FAMILY);
	if (at && (stun_get_family(r->m, at, &fam) < 0 || fam != a->relay.family)) {
		answer_error(r, 443, NULL);
		return;
	}
	at = stun_find(r->m, STUN_ATTR_LIFETIME);
	if (at && stun_get_u32(r->m, at, &req_life) < 0) {
		answer_error(r, 400, NULL);
		return;
	}
	if (at && req_life == 0) {
		turn_alloc_del(ts->allocs, a, alloc_release, ts); /* RFC 8656 §8: delete */
		life = 0;
	} else {
		life =
		    turn_lifetime(at != NULL, req_life, r->st->def_lifetime, r->st->max_lifetime);
		turn_alloc_refresh(a, life, r->now_ms);
	}
	start(r, &b, STUN_SUCCESS);
	stun_build_u32(&b, STUN_ATTR_LIFETIME, life);
	answer(r, &b);
}

/* A peer of a CreatePermission or ChannelBind: decoded, same family as the
 * relay, allowed by the policy. 0, or -1 after the error answer. */
static int peer_ok(struct req *r, const struct turn_alloc *a, const struct stun_attr *at,
		   struct stun_addr *peer)
{
	const char *why;
	char p[64];

	if (stun_get_xor_addr(r->m, at, peer) < 0) {
		answer_error(r, 400, "Bad XOR-PEER-ADDRESS");
		return -1;
	}
	/* the policy first: a denied peer is 403 in any spelling or family */
	if (!turn_policy_allows(&r->st->policy, peer, &why)) {
		log_info("turn.peer_denied", "user=%s peer=%s reason=%s", r->who,
			 addr_str(peer, p, sizeof(p)), why);
		answer_error(r, 403, NULL);
		return -1;
	}
	if (peer->family != a->relay.family) {
		answer_error(r, 443, NULL);
		return -1;
	}
	return 0;
}

static void do_create_permission(struct req *r)
{
	struct turn_alloc *a = my_alloc(r);
	const struct stun_attr *at;
	struct stun_addr peers[STUN_MAX_ATTRS];
	struct stun_builder b;
	size_t n = 0;

	if (!a)
		return;
	for (at = stun_find(r->m, STUN_ATTR_XOR_PEER_ADDRESS); at; at = stun_find_next(r->m, at))
		if (n == STUN_MAX_ATTRS || peer_ok(r, a, at, &peers[n++]) < 0)
			return;
	if (n == 0) {
		answer_error(r, 400, "Missing XOR-PEER-ADDRESS");
		return;
	}
	/* all or nothing (RFC 8656 §9.2) */
	if (a->nperms + n > TURN_MAX_PERMS) {
		unsigned fresh = 0;
		for (size_t i = 0; i < n; i++) {
			uint8_t ip[16];
			turn_addr_v6(&peers[i], ip);
			fresh += !turn_alloc_permitted(a, ip, r->now_ms);
		}
		if (a->nperms + fresh > TURN_MAX_PERMS) {
			answer_error(r, 508, NULL);
			return;
		}
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t ip[16];
		turn_addr_v6(&peers[i], ip);
		if (turn_alloc_perm_add(a, ip, r->now_ms) < 0) {
			answer_error(r, 508, NULL);
			return;
		}
	}
	start(r, &b, STUN_SUCCESS);
	answer(r, &b);
}

static void do_channel_bind(struct req *r)
{
	struct turn_alloc *a = my_alloc(r);
	const struct stun_attr *cn, *pa;
	struct stun_addr peer;
	struct stun_builder b;
	uint16_t num = 0;
	int rc;

	if (!a)
		return;
	cn = stun_find(r->m, STUN_ATTR_CHANNEL_NUMBER);
	pa = stun_find(r->m, STUN_ATTR_XOR_PEER_ADDRESS);
	if (!cn || !pa) {
		answer_error(r, 400, "Missing CHANNEL-NUMBER or XOR-PEER-ADDRESS");
		return;
	}
	rc = stun_get_channel_number(r->m, cn, &num);
	if (rc < 0 && !(rc == STUN_E_CHANNEL && r->st->rfc5766_channels &&
			num >= STUN_CHANNEL_MIN && num <= STUN_CHANNEL_MAX_RFC5766)) {
		answer_error(r, 400, "Channel number out of range");
		return;
	}
	if (peer_ok(r, a, pa, &peer) < 0)
		return;
	rc = turn_alloc_channel_bind(a, num, &peer, r->now_ms);
	if (rc == TURN_ALLOC_CONFLICT) {
		answer_error(r, 400, "Channel or peer already bound");
		return;
	}
	if (rc != TURN_ALLOC_OK) {
		answer_error(r, 508, NULL);
		return;
	}
	start(r, &b, STUN_SUCCESS);
	answer(r, &b);
}

static void do_binding(struct req *r)
{
	struct stun_builder b;

	start(r, &b, STUN_SUCCESS);
	stun_build_xor_addr(&b, STUN_ATTR_XOR_MAPPED_ADDRESS, &r->from->client);
	stun_build_str(&b, STUN_ATTR_SOFTWARE, str_cstr(SOFTWARE));
	answer(r, &b);
}

/* Send indication (RFC 8656 §10.2): never answered; problems drop it silently. */
static void do_send(struct turn_server *ts, const struct stun_msg *m, const struct turn_tuple *from,
		    uint64_t now_ms)
{
	const struct settings *st = settings_get();
	struct turn_alloc *a = turn_alloc_find(ts->allocs, from, now_ms);
	const struct stun_attr *pa = stun_find(m, STUN_ATTR_XOR_PEER_ADDRESS);
	const struct stun_attr *da = stun_find(m, STUN_ATTR_DATA);
	struct stun_addr peer;
	uint8_t ip[16];

	if (!a || !pa || !da || stun_get_xor_addr(m, pa, &peer) < 0 ||
	    peer.family != a->relay.family)
		return;
	turn_addr_v6(&peer, ip);
	policy_current(a, st);
	if (!turn_policy_allows(&st->policy, &peer, NULL) || !turn_alloc_permitted(a, ip, now_ms)) {
		a->pkts_dropped++;
		return;
	}
	relay_to_peer(ts, a, &peer, stun_attr_value(m, da), da->len, now_ms);
}

static void on_channel_data(struct turn_server *ts, const uint8_t *buf, size_t len,
			    const struct turn_tuple *from, uint64_t now_ms)
{
	const struct settings *st = settings_get();
	struct stun_channel_data cd;
	struct turn_alloc *a;
	const struct turn_channel *ch;
	uint8_t ip[16];
	int rc;

	rc = stun_channel_data_parse(buf, len, from->transport != TRANSPORT_UDP, &cd);
	if (rc < 0 && !(rc == STUN_E_CHANNEL && st->rfc5766_channels))
		return; /* a reserved number is only ever bound in RFC 5766 mode */
	a = turn_alloc_find(ts->allocs, from, now_ms);
	if (!a)
		return;
	policy_current(a, st);
	ch = turn_alloc_channel_by_num(a, cd.channel, now_ms);
	if (!ch)
		return; /* RFC 8656 §12.5: not bound, discard */
	turn_addr_v6(&ch->peer, ip);
	if (!turn_alloc_permitted(a, ip, now_ms)) {
		a->pkts_dropped++;
		return;
	}
	relay_to_peer(ts, a, &ch->peer, cd.data, cd.len, now_ms);
}

/* A message stun_parse refused: a request whose header is sound gets 400. */
static void on_unparsable(struct turn_server *ts, const uint8_t *buf, size_t len,
			  const struct turn_tuple *from, struct tconn *c, int err)
{
	struct stun_msg fake;
	struct req r;
	uint16_t type;
	uint32_t cookie;

	if (len < STUN_HEADER_LEN || (buf[0] & 0xC0) != 0)
		return;
	turn_sendq_flush(&ts->sq); /* relayed data first, and before any allocation changes */
	memcpy(&cookie, buf + 4, 4);
	if (ntohl(cookie) != STUN_MAGIC_COOKIE ||
	    (size_t)((buf[2] << 8) | buf[3]) + STUN_HEADER_LEN != len)
		return;
	type = (uint16_t)((buf[0] << 8) | buf[1]);
	if ((((type >> 4) & 1) | ((type >> 7) & 2)) != STUN_REQUEST)
		return; /* only requests are answered */
	memset(&fake, 0, sizeof(fake));
	fake.method = (uint16_t)((type & 0x000F) | ((type & 0x00E0) >> 1) | ((type & 0x3E00) >> 2));
	fake.tid = buf + 8;
	fake.mi = fake.mi256 = fake.fp = -1;
	memset(&r, 0, sizeof(r));
	r.ts = ts;
	r.st = settings_get();
	r.m = &fake;
	r.from = from;
	r.conn = c;
	r.now_ms = clock_mono_ms();
	log_debug("turn.bad_message", "reason=\"%s\"", stun_strerror(err));
	answer_error_unauth(&r, 400, "Malformed message");
}

static void on_request(struct turn_server *ts, const struct stun_msg *m,
		       const struct turn_tuple *from, struct tconn *c, uint64_t now_ms)
{
	struct req r;

	/* what was relayed before this request goes first; the request may free
	 * an allocation whose counters the queue points to */
	turn_sendq_flush(&ts->sq);
	memset(&r, 0, sizeof(r));
	r.ts = ts;
	r.st = settings_get();
	r.m = m;
	r.from = from;
	r.conn = c;
	r.now_ms = now_ms;
	r.now_s = clock_wall_s();
	r.fp = m->fp >= 0;
	if (m->nunknown) {
		/* RFC 8489 §6.3.1: 420 listing the unknown comprehension-required types */
		struct stun_builder b;
		if (!unauth_allowed(ts, r.st, &from->client, now_ms))
			return;
		start(&r, &b, STUN_ERROR_RESPONSE);
		stun_build_error(&b, 420, NULL);
		stun_build_unknown_attributes(&b, m->unknown,
					      m->nunknown < STUN_MAX_UNKNOWN ? m->nunknown
									     : STUN_MAX_UNKNOWN);
		answer(&r, &b);
		return;
	}
	if (m->method == STUN_METHOD_BINDING) {
		do_binding(&r);
		return;
	}
	if (m->method != STUN_METHOD_ALLOCATE && m->method != STUN_METHOD_REFRESH &&
	    m->method != STUN_METHOD_CREATE_PERMISSION && m->method != STUN_METHOD_CHANNEL_BIND) {
		answer_error_unauth(&r, 400, "Unknown method");
		return;
	}
	if (authenticate(&r) < 0)
		return;
	switch (m->method) {
	case STUN_METHOD_ALLOCATE:
		do_allocate(&r);
		break;
	case STUN_METHOD_REFRESH:
		do_refresh(&r);
		break;
	case STUN_METHOD_CREATE_PERMISSION:
		do_create_permission(&r);
		break;
	default:
		do_channel_bind(&r);
		break;
	}
	vault_turn_forget(); /* whatever was not used to sign */
}

/* One datagram, or one framed stream message, from a client. */
static void handle(struct turn_server *ts, const uint8_t *buf, size_t len,
		   const struct turn_tuple *from, struct tconn *c, uint64_t now_ms)
{
	struct stun_msg m;
	int rc;

	switch (stun_classify(buf, len)) {
	case STUN_KIND_CHANNEL:
		on_channel_data(ts, buf, len, from, now_ms);
		return;
	case STUN_KIND_STUN:
		break;
	default:
		return;
	}
	rc = stun_parse(buf, len, &m);
	if (rc < 0) {
		on_unparsable(ts, buf, len, from, c, rc);
		return;
	}
	if (m.fp >= 0 && stun_check_fingerprint(&m) < 0)
		return; /* RFC 8489 §7.3: not STUN after all */
	if (m.cls == STUN_REQUEST)
		on_request(ts, &m, from, c, now_ms);
	else if (m.cls == STUN_INDICATION && m.method == STUN_METHOD_SEND && m.nunknown == 0)
		do_send(ts, &m, from, now_ms);
	/* other indications and any response: ignored */
}

/* ---- UDP listeners ---- */

struct udp_batch {
	int idx;
	uint64_t now_ms;
};

static void udp_one(struct turn_server *ts, void *arg, const struct stun_addr *client,
		    const uint8_t *data, size_t len)
{
	struct udp_batch *ub = arg;
	struct turn_tuple from;

	memset(&from, 0, sizeof(from));
	from.transport = TRANSPORT_UDP;
	from.listen_idx = (uint8_t)ub->idx;
	from.client = *client;
	handle(ts, data, len, &from, NULL, ub->now_ms);
}

static void udp_read(evutil_socket_t fd, short what, void *arg)
{
	struct turn_server *ts = arg;
	struct udp_batch ub = {-1, 0};

	(void)what;
	for (size_t i = 0; i < ts->n_listen; i++)
		if (ts->udp_fd[i] == fd)
			ub.idx = (int)i;
	if (ub.idx < 0)
		return;
	/* one clock read per batch: a batch is read within microseconds */
	ub.now_ms = clock_mono_ms();
	read_batch(ts, fd, udp_one, &ub);
}

/* ---- TCP/TLS connections ---- */

static void conn_close(struct tconn *c, const char *why)
{
	struct turn_server *ts = c->ts;
	char a[64];

	if (c->alloc)
		turn_alloc_del(ts->allocs, c->alloc, alloc_release, ts); /* clears c->alloc */
	if (c->prev)
		c->prev->next = c->next;
	else
		ts->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	log_debug("turn.conn_close", "client=%s transport=%s reason=%s",
		  addr_str(&c->tuple.client, a, sizeof(a)), transport_name(c->tuple.transport),
		  why);
	{
		uint8_t ip[16];
		turn_addr_v6(&c->tuple.client, ip);
		turn_src_put(ip);
	}
	bufferevent_free(c->bev);
	free(c);
}

static void conn_read(struct bufferevent *bev, void *arg)
{
	struct tconn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	for (;;) {
		size_t len = evbuffer_get_length(in), need = 0;
		const uint8_t *p;
		int rc;

		if (len < 4)
			return;
		p = evbuffer_pullup(in, len < 8 ? (ssize_t)len : 8);
		rc = stun_frame(p, len < 8 ? len : 8, &need);
		if (rc < 0 || need > TURN_STREAM_MAX) {
			conn_close(c, "bad_framing"); /* out of sync: nothing more can be read */
			return;
		}
		if (len < need)
			return;
		p = evbuffer_pullup(in, (ssize_t)need);
		handle(c->ts, p, need, &c->tuple, c, clock_mono_ms());
		turn_sendq_flush(&c->ts->sq); /* before p is drained */
		evbuffer_drain(in, need);
	}
}

static void conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct tconn *c = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED)
		return;
	conn_close(c, what & BEV_EVENT_TIMEOUT ? "idle_timeout"
		      : what & BEV_EVENT_EOF   ? "eof"
					       : "error");
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		      void *arg)
{
	struct turn_server *ts = arg;
	const struct settings *st = settings_get();
	struct tconn *c;
	struct timeval idle = {(time_t)st->max_lifetime + 60, 0};
	int idx = -1;

	(void)salen;
	for (size_t i = 0; i < ts->n_listen; i++)
		if (ts->lst[i] == l)
			idx = (int)i;
	c = calloc(1, sizeof(*c));
	if (!c || idx < 0 || stun_addr_from_sockaddr(&c->tuple.client, sa) < 0) {
		free(c);
		evutil_closesocket(fd);
		return;
	}
	{
		uint8_t ip[16];
		char a[64];
		turn_addr_v6(&c->tuple.client, ip);
		if (!turn_src_take(ip, st->max_conns_per_source)) {
			log_info("turn.conn_refused", "client=%s reason=per_source_limit limit=%u",
				 addr_str(&c->tuple.client, a, sizeof(a)),
				 st->max_conns_per_source);
			free(c);
			evutil_closesocket(fd);
			return;
		}
	}
	c->ts = ts;
	c->tuple.transport = (uint8_t)ts->listen[idx].kind;
	c->tuple.listen_idx = (uint8_t)idx;
	c->tuple.conn_id = ++ts->next_conn;
	if (c->tuple.transport == TRANSPORT_TLS) {
		SSL *ssl = ts->ssl_new ? ts->ssl_new() : NULL;
		if (ssl)
			c->bev = bufferevent_openssl_socket_new(
			    ts->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	} else {
		c->bev = bufferevent_socket_new(ts->base, fd, BEV_OPT_CLOSE_ON_FREE);
	}
	if (!c->bev) {
		uint8_t ip[16];
		turn_addr_v6(&c->tuple.client, ip);
		turn_src_put(ip);
		evutil_closesocket(fd);
		free(c);
		return;
	}
	c->next = ts->conns;
	if (ts->conns)
		ts->conns->prev = c;
	ts->conns = c;
	bufferevent_setcb(c->bev, conn_read, NULL, conn_event, c);
	bufferevent_set_timeouts(c->bev, &idle, NULL);
	bufferevent_setwatermark(c->bev, EV_READ, 0, TURN_STREAM_MAX + 4096);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* ---- setup ---- */

static int open_listen(const struct listen_addr *la, bool reuseport, char *err, size_t errlen)
{
	return sock_listen(la, reuseport, transport_name(la->kind), "turn", err, errlen);
}

/* The settings of cfg; the restart-only ones from run when given (a reload). */
static struct settings *settings_make(const struct config *cfg, const struct settings *run)
{
	struct settings *st = calloc(1, sizeof(*st));

	if (!st)
		return NULL;
	snprintf(st->realm, sizeof(st->realm), "%s", cfg->domain);
	snprintf(st->fqdn, sizeof(st->fqdn), "%s", cfg->fqdn);
	st->def_lifetime = (uint32_t)cfg->turn_default_lifetime;
	st->max_lifetime = (uint32_t)cfg->turn_max_lifetime;
	st->nonce_lifetime = (uint32_t)cfg->turn_nonce_lifetime;
	st->max_bps = cfg->turn_max_bps;
	st->rl_rate = (uint32_t)cfg->turn_unauth_rate;
	st->rl_burst = (uint32_t)cfg->turn_unauth_burst;
	st->rfc5766_channels = cfg->turn_rfc5766_channels != 0;
	st->max_conns_per_source = (unsigned)cfg->max_conns_per_source;
	st->user_quota = (unsigned)cfg->turn_user_quota;
	st->total_quota = (unsigned)cfg->turn_total_quota;
	memcpy(st->allow, cfg->turn_allowed_peer, sizeof(st->allow));
	memcpy(st->deny, cfg->turn_denied_peer, sizeof(st->deny));
	st->policy.allow = st->allow;
	st->policy.nallow = cfg->n_turn_allowed_peer;
	st->policy.deny = st->deny;
	st->policy.ndeny = cfg->n_turn_denied_peer;
	if (run) {
		memcpy(st->listen, run->listen, sizeof(st->listen));
		st->n_listen = run->n_listen;
		memcpy(st->relay_address, run->relay_address, sizeof(st->relay_address));
		st->min_port = run->min_port;
		st->max_port = run->max_port;
	} else {
		memcpy(st->listen, cfg->turn_listen, sizeof(st->listen));
		st->n_listen = cfg->n_turn_listen;
		snprintf(st->relay_address, sizeof(st->relay_address), "%s",
			 cfg->turn_relay_address);
		st->min_port = cfg->turn_min_port;
		st->max_port = cfg->turn_max_port;
	}
	return st;
}

/* Publish st: workers see it from their next packet on. */
static void settings_publish(struct settings *st)
{
	struct settings *old;

	st->gen = ++settings_gen;
	old = (struct settings *)atomic_exchange(&cur_settings, st);

	turn_quota_init(st->user_quota, st->total_quota);
	if (old) {
		old->older = retired_settings;
		retired_settings = old;
	}
}

static void settings_free_all(void)
{
	struct settings *st = (struct settings *)atomic_exchange(&cur_settings, NULL);

	free(st);
	while (retired_settings) {
		st = retired_settings;
		retired_settings = st->older;
		free(st);
	}
}

int turn_global_init(const struct config *cfg, char *err, size_t errlen)
{
	struct settings *st;

	if (cfg->n_turn_listen == 0)
		return 0;
	for (size_t i = 0; i < cfg->n_turn_listen; i++) {
		int fd = open_listen(&cfg->turn_listen[i], false, err, errlen);
		if (fd < 0)
			return -1;
		close(fd);
	}
	settings_free_all();
	st = settings_make(cfg, NULL);
	if (!st) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	turn_quota_reset();
	if (vault_turn_init(cfg->turn_secret_file, err, errlen) < 0) {
		free(st);
		return -1;
	}
	settings_publish(st);
	return 0;
}

void turn_global_shutdown(void)
{
	turn_resv_clear();
	vault_turn_shutdown();
	turn_quota_reset();
	settings_free_all();
}

/* Append "what" to a list of restart-only changes in err. */
static void restart_only(char *err, size_t errlen, bool *any, const char *what)
{
	size_t n = strlen(err);

	if (n < errlen)
		snprintf(err + n, errlen - n, "%s%s", *any ? ", " : "[turn] ", what);
	*any = true;
}

int turn_reload(const struct config *cfg, char *err, size_t errlen)
{
	const struct settings *run = settings_get();
	struct settings *st;
	bool any = false;
	size_t n;

	if (errlen)
		err[0] = '\0';
	if (!run) {
		if (cfg->n_turn_listen == 0)
			return 0; /* off, and stays off */
		snprintf(err, errlen,
			 "[turn] listen changes only on restart (the relay was started without "
			 "one); nothing applied");
		return 1;
	}
	if (cfg->turn_default_lifetime > cfg->turn_max_lifetime) {
		snprintf(err, errlen, "[turn] default_lifetime (%d) is above max_lifetime (%d)",
			 cfg->turn_default_lifetime, cfg->turn_max_lifetime);
		return -1;
	}
	st = settings_make(cfg, run);
	if (!st) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* the secret last of what can fail: nothing is applied when it does */
	if (vault_turn_reload_secret(cfg->turn_secret_file, err, errlen) < 0) {
		n = strlen(err);
		if (n < errlen)
			snprintf(err + n, errlen - n, "; kept the old [turn] settings and secret");
		free(st);
		return -1;
	}
	settings_publish(st);
	if (cfg->n_turn_listen != run->n_listen ||
	    memcmp(cfg->turn_listen, run->listen, sizeof(run->listen)) != 0)
		restart_only(err, errlen, &any, "listen");
	if (strcmp(cfg->turn_relay_address, run->relay_address) != 0)
		restart_only(err, errlen, &any, "relay_address");
	if (cfg->turn_min_port != run->min_port || cfg->turn_max_port != run->max_port)
		restart_only(err, errlen, &any, "min_port/max_port");
	if (!any)
		return 0;
	n = strlen(err);
	if (n < errlen)
		snprintf(err + n, errlen - n, " change only on restart; the running ones stay");
	return 1;
}

size_t turn_relay_listeners(struct listen_addr *out, size_t cap, char *fqdn, size_t fqdncap)
{
	const struct settings *st = settings_get();
	size_t n = 0;

	if (fqdncap)
		fqdn[0] = '\0';
	if (!st)
		return 0;
	for (; n < st->n_listen && n < cap; n++)
		out[n] = st->listen[n];
	if (fqdncap)
		snprintf(fqdn, fqdncap, "%s", st->fqdn);
	return n;
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
	struct turn_server *ts = arg;

	(void)fd;
	(void)what;
	turn_alloc_expire(ts->allocs, clock_mono_ms(), alloc_release, ts);
}

/* What a worker binds: the running listeners, relay address and ports. */
static int copy_settings(struct turn_server *ts, const struct settings *st, char *err,
			 size_t errlen)
{
	struct sockaddr_storage ss;
	struct listen_addr la;

	memcpy(ts->listen, st->listen, sizeof(ts->listen));
	ts->n_listen = st->n_listen;
	memset(&la, 0, sizeof(la));
	snprintf(la.host, sizeof(la.host), "%s", st->relay_address);
	if (sock_addr(&la, &ss, &(socklen_t){0}) < 0 ||
	    stun_addr_from_sockaddr(&ts->relay_ip, (struct sockaddr *)&ss) < 0) {
		snprintf(err, errlen, "[turn] relay_address '%s' is not an IP address",
			 st->relay_address);
		return -1;
	}
	ts->min_port = (uint16_t)st->min_port;
	ts->max_port = (uint16_t)st->max_port;
	return 0;
}

/* Once per process, on the first worker's store: USERHASHes for users whose
 * TURN keys predate schema 7 (a lookup by hash cannot find them otherwise). */
static void userhash_backfill(struct store *s)
{
	static atomic_bool done;
	size_t n = 0;
	int rc;

	if (!s || atomic_exchange(&done, true))
		return;
	rc = vault_turn_userhash_backfill(s, &n);
	if (rc != STORE_OK)
		log_warn("turn.userhash_backfill_failed", "reason=\"%s\" filled=%zu",
			 store_strerror(rc), n);
	else if (n)
		log_info("turn.userhash_backfill", "users=%zu", n);
}

struct turn_server *turn_server_new(const struct config *cfg, struct event_base *base,
				    struct store *store, int worker_id, SSL *(*ssl_new)(void),
				    char *err, size_t errlen)
{
	struct turn_server *ts;
	struct timeval one = {1, 0};

	if (errlen)
		err[0] = '\0';
	if (cfg->n_turn_listen == 0)
		return NULL;
	ts = calloc(1, sizeof(*ts));
	if (!ts) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (int i = 0; i < CONFIG_MAX_LISTEN; i++)
		ts->udp_fd[i] = -1;
	ts->base = base;
	ts->store = store;
	ts->worker_id = worker_id;
	ts->ssl_new = ssl_new;
	ts->allocs = turn_alloc_table_new();
	ts->rl = calloc(RL_SLOTS, sizeof(*ts->rl));
	ts->in = malloc((size_t)RECV_BATCH * TURN_UDP_BUF);
	ts->out = malloc(TURN_OUT_BUF);
	ts->tick = event_new(base, -1, EV_PERSIST, tick, ts);
	if (!ts->allocs || !ts->rl || !ts->in || !ts->out || !ts->tick ||
	    turn_sendq_init(&ts->sq, TURN_OUT_BUF) < 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (!settings_get()) {
		snprintf(err, errlen, "turn_global_init has not run");
		goto fail;
	}
	if (copy_settings(ts, settings_get(), err, errlen) < 0)
		goto fail;
	userhash_backfill(store);
	for (size_t i = 0; i < ts->n_listen; i++) {
		const struct listen_addr *la = &ts->listen[i];
		int fd = open_listen(la, true, err, errlen);
		if (fd < 0)
			goto fail;
		if (la->kind == TRANSPORT_UDP) {
			ts->udp_fd[i] = fd;
			ts->udp_ev[i] = event_new(base, fd, EV_READ | EV_PERSIST, udp_read, ts);
			if (!ts->udp_ev[i] || event_add(ts->udp_ev[i], NULL) < 0) {
				snprintf(err, errlen, "cannot watch the TURN UDP socket");
				goto fail;
			}
		} else {
			ts->lst[i] =
			    evconnlistener_new(base, on_accept, ts, LEV_OPT_CLOSE_ON_FREE, -1, fd);
			if (!ts->lst[i]) {
				close(fd);
				snprintf(err, errlen, "cannot create the TURN listener");
				goto fail;
			}
		}
	}
	event_add(ts->tick, &one);
	return ts;
fail:
	turn_server_free(ts);
	return NULL;
}

void turn_server_stop(struct turn_server *ts)
{
	if (!ts)
		return;
	for (size_t i = 0; i < CONFIG_MAX_LISTEN; i++) {
		if (ts->udp_ev[i])
			event_del(ts->udp_ev[i]);
		if (ts->lst[i])
			evconnlistener_disable(ts->lst[i]);
	}
	if (ts->tick)
		event_del(ts->tick);
}

void turn_server_free(struct turn_server *ts)
{
	if (!ts)
		return;
	while (ts->conns)
		conn_close(ts->conns, "shutdown");
	turn_alloc_table_free(ts->allocs, alloc_release, ts);
	for (size_t i = 0; i < CONFIG_MAX_LISTEN; i++) {
		if (ts->udp_ev[i])
			event_free(ts->udp_ev[i]);
		if (ts->udp_fd[i] >= 0)
			close(ts->udp_fd[i]);
		if (ts->lst[i])
			evconnlistener_free(ts->lst[i]);
	}
	if (ts->tick)
		event_free(ts->tick);
	free(ts->rl);
	free(ts->in);
	free(ts->out);
	turn_sendq_free(&ts->sq);
	free(ts);
}

size_t turn_server_allocations(const struct turn_server *ts)
{
	return ts ? turn_alloc_count(ts->allocs) : 0;
}
