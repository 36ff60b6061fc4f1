/*
 * The TURN server (src/turn/server.c) on a real event loop and a UDP socket
 * on 127.0.0.1, driven by STUN requests from this test:
 *   - USERHASH (RFC 8489 §9.2.4, §14.4): the nonce cookie offers username
 *     anonymity; an Allocate naming the user only by USERHASH succeeds (MD5
 *     and SHA-256), a wrong password and a hash of nobody get the same 401,
 *     USERHASH with USERNAME is 400, USERHASH under a nonce that did not
 *     offer it is 401, no answer names the user, and the allocation is
 *     refreshed only with the same hash (441);
 *   - turn_reload: a peer denied after a reload loses its permission at
 *     once and is refused at the next CreatePermission while the
 *     allocation lives on; a lowered quota
 *     applies to new allocations only; a lowered max_lifetime to the next
 *     Refresh; a bad secret file changes nothing; a changed listen line is
 *     reported as restart-only and the old socket keeps answering;
 *   - the relay's batched reads and writes: bursts of datagrams from a peer
 *     and of Send indications from the client, longer than a read batch,
 *     arrive whole and in order, each Data indication with its own
 *     transaction id.
 * Keys are computed here with OpenSSL directly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/secmem.h"
#include "store/store.h"
#include "turn/alloc.h"
#include "turn/cred.h"
#include "turn/server.h"
#include "turn/stun.h"
#include "vault/vault.h"
#include "vault/vault_turn.h"

#define REALM "example.test"
#define PW    "Circle of Life"

struct fx {
	char dir[64];
	char db[128];
	struct config cfg;
	struct store *s;
	struct event_base *base;
	struct turn_server *ts;
	uint16_t port;
};

/* A client: its own socket (its own 5-tuple) and what the 401 told it. */
struct cli {
	int fd;
	char nonce[256];
	const char *name; /* USERNAME, or the name hashed into USERHASH */
	const char *pw;
	bool hash, both, sha256;
	uint8_t rbuf[2048];
	size_t rlen;
	struct stun_msg r;
};

static uint16_t free_udp_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static void add_user(struct store *s, const char *uri, bool enabled)
{
	struct store_user u;
	char user[STORE_URI_MAX], domain[STORE_URI_MAX];

	memset(&u, 0, sizeof(u));
	assert_int_equal(store_uri_normalise(uri, u.uri, user, domain), 0);
	u.enabled = enabled;
	assert_int_equal(store_user_add(s, &u), STORE_OK);
	assert_int_equal(vault_set_password(s, &u, PW, strlen(PW)), STORE_OK);
}

static void base_config(struct fx *f, struct config *c)
{
	char l[64];

	config_defaults(c);
	snprintf(c->domain, sizeof(c->domain), REALM);
	snprintf(c->fqdn, sizeof(c->fqdn), "relay." REALM);
	snprintf(l, sizeof(l), "udp:127.0.0.1:%u", f->port);
	assert_int_equal(config_parse_listen(l, &c->turn_listen[0]), 0);
	c->n_turn_listen = 1;
	snprintf(c->turn_relay_address, sizeof(c->turn_relay_address), "127.0.0.1");
	c->turn_min_port = 30000 + (int)(f->port % 300) * 100;
	c->turn_max_port = c->turn_min_port + 99;
	assert_int_equal(config_parse_cidr("127.0.0.1/32", &c->turn_allowed_peer[0]), 0);
	c->n_turn_allowed_peer = 1;
	c->turn_user_quota = 10;
	snprintf(c->turn_secret_file, sizeof(c->turn_secret_file), "%s/turn.secret", f->dir);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/rtc-tlive-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->db, sizeof(f->db), "%s/store.db", f->dir);
	assert_int_equal(vault_bootstrap_secret(f->dir, err, sizeof(err)), 0);
	assert_int_equal(vault_init(f->dir, err, sizeof(err)), 0);
	assert_int_equal(store_open(f->db, STORE_CREATE, 50, &f->s, err, sizeof(err)), STORE_OK);
	add_user(f->s, "sip:alice@" REALM, true);
	add_user(f->s, "sip:dave@" REALM, false);
	f->port = free_udp_port();
	base_config(f, &f->cfg);
	if (turn_global_init(&f->cfg, err, sizeof(err)) < 0)
		fail_msg("turn_global_init: %s", err);
	f->base = event_base_new();
	assert_non_null(f->base);
	f->ts = turn_server_new(&f->cfg, f->base, f->s, 0, NULL, err, sizeof(err));
	if (!f->ts)
		fail_msg("turn_server_new: %s", err);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char p[200];

	turn_server_free(f->ts);
	event_base_free(f->base);
	turn_global_shutdown();
	vault_shutdown();
	store_close(f->s);
	for (const char *const *x =
		 (const char *const[]){"store.db", "store.db-wal", "store.db-shm", "turn.secret",
				       "pool.secret", "other.secret", NULL};
	     *x; x++) {
		snprintf(p, sizeof(p), "%s/%s", f->dir, *x);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static void cli_open(struct fx *f, struct cli *c, uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

	(void)f;
	memset(c, 0, sizeof(*c));
	c->fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(c->fd >= 0);
	sa.sin_port = htons(port);
	assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	c->name = "alice";
	c->pw = PW;
	c->hash = true;
}

/* Send buf, run the loop until an answer comes (or 2 s): true with c->r set. */
static bool roundtrip(struct fx *f, struct cli *c, const uint8_t *buf, size_t len)
{
	uint64_t end = clock_mono_ms() + 2000;

	assert_int_equal(send(c->fd, buf, len, 0), (ssize_t)len);
	while (clock_mono_ms() < end) {
		ssize_t n;
		event_base_loop(f->base, EVLOOP_NONBLOCK);
		n = recv(c->fd, c->rbuf, sizeof(c->rbuf), MSG_DONTWAIT);
		if (n > 0) {
			c->rlen = (size_t)n;
			assert_int_equal(stun_parse(c->rbuf, c->rlen, &c->r), 0);
			return true;
		}
		usleep(1000);
	}
	return false;
}

static int code_of(const struct stun_msg *m)
{
	const struct stun_attr *a = stun_find(m, STUN_ATTR_ERROR_CODE);
	struct str reason;
	int code = 0;

	if (m->cls == STUN_SUCCESS)
		return 200;
	assert_non_null(a);
	assert_int_equal(stun_get_error(m, a, &code, &reason), 0);
	return code;
}

static size_t key_of(const char *name, const char *pw, bool sha256, uint8_t out[32])
{
	char buf[512];
	unsigned n = 0;

	snprintf(buf, sizeof(buf), "%s:%s:%s", name, REALM, pw);
	assert_int_equal(
	    EVP_Digest(buf, strlen(buf), out, &n, sha256 ? EVP_sha256() : EVP_md5(), NULL), 1);
	return n;
}

static void userhash_of(const char *name, uint8_t out[32])
{
	char buf[512];
	unsigned n = 0;

	snprintf(buf, sizeof(buf), "%s:%s", name, REALM);
	assert_int_equal(EVP_Digest(buf, strlen(buf), out, &n, EVP_sha256(), NULL), 1);
}

/* The answer names nobody: neither user name form appears anywhere in it. */
static void assert_no_name(const struct cli *c)
{
	assert_null(memmem(c->rbuf, c->rlen, "alice", 5));
	assert_null(stun_find(&c->r, STUN_ATTR_USERNAME));
	assert_null(stun_find(&c->r, STUN_ATTR_USERHASH));
}

/* The extra attributes of a request. */
struct extra {
	uint32_t lifetime; /* 0: none */
	const char *peer;  /* XOR-PEER-ADDRESS 127.0.0.1:9 of a CreatePermission */
};

/* An authenticated request from c (a 401 first when it has no nonce). */
static void request(struct fx *f, struct cli *c, uint16_t method, const struct extra *x)
{
	static const uint8_t transport[4] = {17, 0, 0, 0};
	static const uint16_t algs[] = {STUN_PWALG_MD5, STUN_PWALG_SHA256};
	uint8_t buf[1024], tid[STUN_TID_LEN], key[32], uh[32];
	struct stun_builder b;
	size_t kl;
	long n;

	if (!c->nonce[0]) {
		const struct stun_attr *a;
		struct str v;
		secmem_random(tid, sizeof(tid));
		stun_build_init(&b, buf, sizeof(buf), method, STUN_REQUEST, tid);
		stun_build_attr(&b, STUN_ATTR_REQUESTED_TRANSPORT, transport, 4);
		n = stun_build_finish(&b);
		assert_true(n > 0);
		assert_true(roundtrip(f, c, buf, (size_t)n));
		assert_int_equal(code_of(&c->r), 401);
		a = stun_find(&c->r, STUN_ATTR_NONCE);
		assert_non_null(a);
		assert_int_equal(stun_get_nonce(&c->r, &v), 0);
		assert_true(v.len < sizeof(c->nonce));
		memcpy(c->nonce, v.p, v.len);
		c->nonce[v.len] = '\0';
	}
	secmem_random(tid, sizeof(tid));
	stun_build_init(&b, buf, sizeof(buf), method, STUN_REQUEST, tid);
	if (method == STUN_METHOD_ALLOCATE)
		stun_build_attr(&b, STUN_ATTR_REQUESTED_TRANSPORT, transport, 4);
	if (x && x->lifetime)
		stun_build_u32(&b, STUN_ATTR_LIFETIME, x->lifetime);
	if (x && x->peer) {
		struct stun_addr p = {.family = STUN_AF_IPV4, .port = 9};
		assert_int_equal(inet_pton(AF_INET, x->peer, p.ip), 1);
		stun_build_xor_addr(&b, STUN_ATTR_XOR_PEER_ADDRESS, &p);
	}
	if (c->hash) {
		userhash_of(c->name, uh);
		stun_build_attr(&b, STUN_ATTR_USERHASH, uh, 32);
	}
	if (!c->hash || c->both)
		stun_build_str(&b, STUN_ATTR_USERNAME, str_cstr(c->name));
	stun_build_str(&b, STUN_ATTR_REALM, str_cstr(REALM));
	stun_build_str(&b, STUN_ATTR_NONCE, str_cstr(c->nonce));
	stun_build_password_algorithms(&b, algs, 2);
	stun_build_password_algorithm(&b, c->sha256 ? STUN_PWALG_SHA256 : STUN_PWALG_MD5);
	kl = key_of(c->name, c->pw, c->sha256, key);
	if (c->sha256)
		stun_build_integrity_sha256(&b, key, kl);
	else
		stun_build_integrity(&b, key, kl);
	n = stun_build_finish(&b);
	assert_true(n > 0);
	assert_true(roundtrip(f, c, buf, (size_t)n));
}

/* The answer is signed with c's key. */
static void assert_signed(const struct cli *c)
{
	uint8_t key[32];
	size_t kl = key_of(c->name, c->pw, c->sha256, key);

	if (c->sha256)
		assert_int_equal(stun_check_integrity_sha256(&c->r, key, kl), 0);
	else
		assert_int_equal(stun_check_integrity(&c->r, key, kl), 0);
}

/* ---- USERHASH ---- */

static void test_challenge_nonce_offers_password_algorithms_and_username_anonymity(void **state)
{
	struct fx *f = *state;
	struct cli c;
	uint32_t feat = 0;

	cli_open(f, &c, f->port);
	request(f, &c, STUN_METHOD_ALLOCATE, NULL);
	assert_int_equal(turn_nonce_features(str_cstr(c.nonce), &feat), 0);
	assert_int_equal(feat, TURN_FEATURE_PASSWORD_ALGORITHMS | TURN_FEATURE_USERNAME_ANONYMITY);
	close(c.fd);
}

static void test_allocate_by_userhash_md5_and_sha256_never_names_the_user(void **state)
{
	struct fx *f = *state;
	struct cli c, d;

	cli_open(f, &c, f->port);
	request(f, &c, STUN_METHOD_ALLOCATE, NULL);
	assert_int_equal(code_of(&c.r), 200);
	assert_null(stun_find(&c.r, STUN_ATTR_MESSAGE_INTEGRITY_SHA256));
	assert_signed(&c);
	assert_no_name(&c);
	/* the user@domain form, SHA-256: MESSAGE-INTEGRITY-SHA256 both ways */
	cli_open(f, &d, f->port);
	d.name = "alice@" REALM;
	d.sha256 = true;
	request(f, &d, STUN_METHOD_ALLOCATE, NULL);
	assert_int_equal(code_of(&d.r), 200);
	assert_non_null(stun_find(&d.r, STUN_ATTR_MESSAGE_INTEGRITY_SHA256));
	assert_signed(&d);
	assert_no_name(&d);
	assert_int_equal(turn_server_allocations(f->ts), 2);
	/* the allocation goes on with the same hash; the name instead is 441 */
	request(f, &c, STUN_METHOD_REFRESH, &(struct extra){.lifetime = 600});
	assert_int_equal(code_of(&c.r), 200);
	assert_no_name(&c);
	c.hash = false;
	request(f, &c, STUN_METHOD_REFRESH, &(struct extra){.lifetime = 600});
	assert_int_equal(code_of(&c.r), 441);
	close(c.fd);
	close(d.fd);
}

static void test_userhash_wrong_password_and_unknown_hash_get_the_same_401(void **state)
{
	struct fx *f = *state;
	struct cli c, d, e;

	cli_open(f, &c, f->port);
	c.pw = "not the password";
	request(f, &c, STUN_METHOD_ALLOCATE, NULL);
	assert_int_equal(code_of(&c.r), 401);
	assert_non_null(stun_find(&c.r, STUN_ATTR_REALM));
	assert_non_null(stun_find(&c.r, STUN_ATTR_NONCE));
	assert_null(stun_find(&c.r, STUN_ATTR_MESSAGE_INTEGRITY));
	assert_no_name(&c);
	cli_open(f, &d, f->port);
	d.name = "mallory"; /* nobody has this hash */
	request(f, &d, STUN_METHOD_ALLOCATE, NULL);
	assert_int_equal(code_of(&d.r), 401);
	/* the same answer: same attributes, same length */
	assert_int_equal(d.rlen, c.rlen);
	assert_int_equal(d.r.nattrs, c.r.nattrs);
	for (size_t i = 0; i < c.r.nattrs; i++)
		assert_int_equal(d.r.attrs[i].type, c.r.attrs[i].type);
	/* the right password of a disabled user, by hash: refused too */
	cli_open(f, &e, f->port);
	e.name = "dave";
	request(f, &e, STUN_METHOD_ALLOCATE, NULL);
	assert_int_equal(code_of(&e.r), 401);
	assert_int_equal(turn_server_allocations(f->ts), 0);
	close(c.fd);
	close(d.fd);
	close(e.fd);
}

static void test_userhash_together_with_username_is_400(void **state)
{
	struct fx *f = *state;
	struct cli c;

	cli_open(f, &c, f->port);
	c.both = true;
	request(f, &c, STUN_METHOD_ALLOCATE, NULL);
	assert_int_equal(code_of(&c.r), 400);
	assert_null(stun_find(&c.r, STUN_ATTR_MESSAGE_INTEGRITY));
	assert_no_name(&c);
	assert_int_equal(turn_server_allocations(f->ts), 0);
	close(c.fd);
}

static void test_userhash_under_a_nonce_without_the_anonymity_bit_is_401(void **state)
{
	struct fx *f = *state;
	uint8_t bind[sizeof(REALM) + 4];
	struct cli c;
	char nonce[TURN_NONCE_MAX + 1];

	/* a genuine nonce of ours for this client that offers only password algorithms */
	memcpy(bind, REALM, sizeof(REALM)); /* with its NUL */
	bind[sizeof(REALM)] = 127;
	bind[sizeof(REALM) + 1] = 0;
	bind[sizeof(REALM) + 2] = 0;
	bind[sizeof(REALM) + 3] = 1;
	assert_true(vault_turn_nonce_make(str_make((const char *)bind, sizeof(bind)),
					  TURN_FEATURE_PASSWORD_ALGORITHMS, clock_wall_s(), nonce,
					  sizeof(nonce)) > 0);
	cli_open(f, &c, f->port);
	snprintf(c.nonce, sizeof(c.nonce), "%s", nonce);
	request(f, &c, STUN_METHOD_ALLOCATE, NULL);
	assert_int_equal(code_of(&c.r), 401);
	assert_no_name(&c);
	/* the nonce itself is good: the same request with USERNAME succeeds */
	snprintf(c.nonce, sizeof(c.nonce), "%s", nonce);
	c.hash = false;
	request(f, &c, STUN_METHOD_ALLOCATE, NULL);
	assert_int_equal(code_of(&c.r), 200);
	close(c.fd);
}

/* ---- turn_reload ---- */

static void reload(struct fx *f, struct config *c, int want)
{
	char err[512];
	int rc = turn_reload(c, err, sizeof(err));

	if (rc != want)
		fail_msg("turn_reload: %d (want %d): %s", rc, want, err);
}

/* The XOR-RELAYED-ADDRESS of c's Allocate success. */
static void relay_of(const struct cli *c, struct sockaddr_in *out)
{
	const struct stun_attr *at = stun_find(&c->r, STUN_ATTR_XOR_RELAYED_ADDRESS);
	struct stun_addr ra;

	assert_non_null(at);
	assert_int_equal(stun_get_xor_addr(&c->r, at, &ra), 0);
	assert_int_equal(ra.family, STUN_AF_IPV4);
	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	memcpy(&out->sin_addr, ra.ip, 4);
	out->sin_port = htons(ra.port);
}

/* A datagram from a peer on 127.0.0.1 to the relay: does c get it (within 300 ms)? */
static bool peer_reaches_client(struct fx *f, struct cli *c, const struct sockaddr_in *relay)
{
	int p = socket(AF_INET, SOCK_DGRAM, 0);
	uint64_t end = clock_mono_ms() + 300;
	bool got = false;

	assert_true(p >= 0);
	assert_int_equal(sendto(p, "media", 5, 0, (const struct sockaddr *)relay, sizeof(*relay)),
			 5);
	while (!got && clock_mono_ms() < end) {
		event_base_loop(f->base, EVLOOP_NONBLOCK);
		got = recv(c->fd, c->rbuf, sizeof(c->rbuf), MSG_DONTWAIT) > 0 &&
		      memmem(c->rbuf, 64, "media", 5) != NULL;
		usleep(1000);
	}
	close(p);
	return got;
}

static void test_reload_denied_peer_applies_to_the_next_permission_allocation_kept(void **state)
{
	struct fx *f = *state;
	struct config *c = calloc(1, sizeof(*c));
	struct sockaddr_in relay;
	struct cli a;

	assert_non_null(c);
	cli_open(f, &a, f->port);
	a.hash = false;
	request(f, &a, STUN_METHOD_ALLOCATE, NULL);
	assert_int_equal(code_of(&a.r), 200);
	relay_of(&a, &relay);
	request(f, &a, STUN_METHOD_CREATE_PERMISSION, &(struct extra){.peer = "127.0.0.1"});
	assert_int_equal(code_of(&a.r), 200);
	assert_true(peer_reaches_client(f, &a, &relay)); /* relayed as a Data indication */
	base_config(f, c);
	assert_int_equal(config_parse_cidr("127.0.0.1/32", &c->turn_denied_peer[0]), 0);
	c->n_turn_denied_peer = 1;
	reload(f, c, 0);
	/* the permission the peer had is gone at once, not when it expires */
	assert_false(peer_reaches_client(f, &a, &relay));
	request(f, &a, STUN_METHOD_CREATE_PERMISSION, &(struct extra){.peer = "127.0.0.1"});
	assert_int_equal(code_of(&a.r), 403);
	/* the allocation itself lives on */
	assert_int_equal(turn_server_allocations(f->ts), 1);
	request(f, &a, STUN_METHOD_REFRESH, &(struct extra){.lifetime = 600});
	assert_int_equal(code_of(&a.r), 200);
	/* and the deny list can be emptied again */
	c->n_turn_denied_peer = 0;
	reload(f, c, 0);
	request(f, &a, STUN_METHOD_CREATE_PERMISSION, &(struct extra){.peer = "127.0.0.1"});
	assert_int_equal(code_of(&a.r), 200);
	close(a.fd);
	free(c);
}

static void test_reload_lower_quota_applies_to_new_allocations_only(void **state)
{
	struct fx *f = *state;
	struct config *c = calloc(1, sizeof(*c));
	struct cli a[3];

	assert_non_null(c);
	for (int i = 0; i < 2; i++) {
		cli_open(f, &a[i], f->port);
		request(f, &a[i], STUN_METHOD_ALLOCATE, NULL);
		assert_int_equal(code_of(&a[i].r), 200);
	}
	base_config(f, c);
	c->turn_user_quota = 1;
	reload(f, c, 0);
	for (int i = 0; i < 2; i++) { /* the two held go on */
		request(f, &a[i], STUN_METHOD_REFRESH, &(struct extra){.lifetime = 600});
		assert_int_equal(code_of(&a[i].r), 200);
	}
	cli_open(f, &a[2], f->port);
	request(f, &a[2], STUN_METHOD_ALLOCATE, NULL);
	assert_int_equal(code_of(&a[2].r), 486);
	/* raised again: room for the third */
	c->turn_user_quota = 3;
	reload(f, c, 0);
	request(f, &a[2], STUN_METHOD_ALLOCATE, NULL);
	assert_int_equal(code_of(&a[2].r), 200);
	for (int i = 0; i < 3; i++)
		close(a[i].fd);
	free(c);
}

static void test_reload_lower_max_lifetime_applies_to_the_next_refresh(void **state)
{
	struct fx *f = *state;
	struct config *c = calloc(1, sizeof(*c));
	const struct stun_attr *at;
	struct cli a;
	uint32_t life = 0;

	assert_non_null(c);
	cli_open(f, &a, f->port);
	request(f, &a, STUN_METHOD_ALLOCATE, NULL);
	assert_int_equal(code_of(&a.r), 200);
	base_config(f, c);
	c->turn_default_lifetime = 120;
	c->turn_max_lifetime = 300;
	reload(f, c, 0);
	request(f, &a, STUN_METHOD_REFRESH, &(struct extra){.lifetime = 3600});
	assert_int_equal(code_of(&a.r), 200);
	at = stun_find(&a.r, STUN_ATTR_LIFETIME);
	assert_non_null(at);
	assert_int_equal(stun_get_u32(&a.r, at, &life), 0);
	assert_int_equal(life, 300);
	close(a.fd);
	free(c);
}

static void test_reload_bad_secret_file_keeps_every_old_setting(void **state)
{
	struct fx *f = *state;
	struct config *c = calloc(1, sizeof(*c));
	char err[512];
	struct cli a;

	assert_non_null(c);
	base_config(f, c);
	assert_int_equal(config_parse_cidr("127.0.0.1/32", &c->turn_denied_peer[0]), 0);
	c->n_turn_denied_peer = 1;
	snprintf(c->turn_secret_file, sizeof(c->turn_secret_file), "%s/missing.secret", f->dir);
	assert_int_equal(turn_reload(c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "missing.secret"));
	assert_non_null(strstr(err, "kept"));
	/* the deny list of that reload was not applied either */
	cli_open(f, &a, f->port);
	request(f, &a, STUN_METHOD_ALLOCATE, NULL);
	assert_int_equal(code_of(&a.r), 200);
	request(f, &a, STUN_METHOD_CREATE_PERMISSION, &(struct extra){.peer = "127.0.0.1"});
	assert_int_equal(code_of(&a.r), 200);
	close(a.fd);
	free(c);
}

static void test_reload_listen_change_is_restart_only_and_reported(void **state)
{
	struct fx *f = *state;
	struct config *c = calloc(1, sizeof(*c));
	struct listen_addr ls[CONFIG_MAX_LISTEN];
	char err[512], fqdn[CONFIG_HOST_MAX];
	struct cli a;

	assert_non_null(c);
	base_config(f, c);
	c->turn_listen[0].port = (uint16_t)(f->port + 1);
	c->turn_min_port += 1;
	snprintf(c->fqdn, sizeof(c->fqdn), "new." REALM);
	assert_int_equal(turn_reload(c, err, sizeof(err)), 1);
	assert_non_null(strstr(err, "listen"));
	assert_non_null(strstr(err, "min_port"));
	assert_non_null(strstr(err, "restart"));
	/* relay URIs keep naming the running listener, with the new fqdn */
	assert_int_equal(turn_relay_listeners(ls, CONFIG_MAX_LISTEN, fqdn, sizeof(fqdn)), 1);
	assert_int_equal(ls[0].port, f->port);
	assert_string_equal(fqdn, "new." REALM);
	/* the old socket keeps answering */
	cli_open(f, &a, f->port);
	request(f, &a, STUN_METHOD_ALLOCATE, NULL);
	assert_int_equal(code_of(&a.r), 200);
	close(a.fd);
	/* the same listeners: nothing to report */
	base_config(f, c);
	assert_int_equal(turn_reload(c, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	free(c);
}

/* ---- relay batching (recvmmsg / sendmmsg) ---- */

#define BURST 100 /* more than one read batch (32) and one recvmmsg (16) */

/* The payload of burst datagram i: its own length and bytes. */
static size_t burst_payload(char tag, int i, char *out)
{
	size_t n = 20 + (size_t)(i * 7) % 180;

	memset(out, 'a' + i % 26, n);
	snprintf(out, n, "%c%03d", tag, i);
	return n;
}

static void test_relay_bursts_arrive_whole_in_order_with_distinct_indication_ids(void **state)
{
	struct fx *f = *state;
	struct sockaddr_in relay,
	    pa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t pl = sizeof(pa);
	struct stun_addr peer = {.family = STUN_AF_IPV4};
	static uint8_t tids[BURST][STUN_TID_LEN];
	char want[256], buf[2048];
	uint64_t end;
	int p, got = 0;
	struct cli a;

	cli_open(f, &a, f->port);
	a.hash = false;
	request(f, &a, STUN_METHOD_ALLOCATE, NULL);
	assert_int_equal(code_of(&a.r), 200);
	relay_of(&a, &relay);
	request(f, &a, STUN_METHOD_CREATE_PERMISSION, &(struct extra){.peer = "127.0.0.1"});
	assert_int_equal(code_of(&a.r), 200);
	p = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(p >= 0);
	assert_int_equal(bind(p, (struct sockaddr *)&pa, sizeof(pa)), 0);
	assert_int_equal(getsockname(p, (struct sockaddr *)&pa, &pl), 0);
	memcpy(peer.ip, &pa.sin_addr, 4);
	peer.port = ntohs(pa.sin_port);

	/* peer -> relay, all queued before the server reads any: Data indications */
	for (int i = 0; i < BURST; i++) {
		size_t n = burst_payload('p', i, want);
		assert_int_equal(sendto(p, want, n, 0, (struct sockaddr *)&relay, sizeof(relay)),
				 (ssize_t)n);
	}
	end = clock_mono_ms() + 3000;
	while (got < BURST && clock_mono_ms() < end) {
		ssize_t n;
		event_base_loop(f->base, EVLOOP_NONBLOCK);
		while (got < BURST && (n = recv(a.fd, a.rbuf, sizeof(a.rbuf), MSG_DONTWAIT)) > 0) {
			const struct stun_attr *d;
			size_t wl = burst_payload('p', got, want);
			assert_int_equal(stun_parse(a.rbuf, (size_t)n, &a.r), 0);
			assert_int_equal(a.r.method, STUN_METHOD_DATA);
			assert_int_equal(a.r.cls, STUN_INDICATION);
			d = stun_find(&a.r, STUN_ATTR_DATA);
			assert_non_null(d);
			assert_int_equal(d->len, wl);
			assert_memory_equal(stun_attr_value(&a.r, d), want, wl);
			memcpy(tids[got], a.r.tid, STUN_TID_LEN);
			for (int k = 0; k < got; k++)
				assert_memory_not_equal(tids[k], tids[got], STUN_TID_LEN);
			got++;
		}
		usleep(1000);
	}
	assert_int_equal(got, BURST);

	/* client -> peer: Send indications, all queued before the server reads any */
	for (int i = 0; i < BURST; i++) {
		uint8_t ind[512], tid[STUN_TID_LEN];
		struct stun_builder b;
		size_t n = burst_payload('c', i, want);
		long m;
		secmem_random(tid, sizeof(tid));
		stun_build_init(&b, ind, sizeof(ind), STUN_METHOD_SEND, STUN_INDICATION, tid);
		stun_build_xor_addr(&b, STUN_ATTR_XOR_PEER_ADDRESS, &peer);
		stun_build_attr(&b, STUN_ATTR_DATA, want, n);
		m = stun_build_finish(&b);
		assert_true(m > 0);
		assert_int_equal(send(a.fd, ind, (size_t)m, 0), m);
	}
	got = 0;
	end = clock_mono_ms() + 3000;
	while (got < BURST && clock_mono_ms() < end) {
		ssize_t n;
		event_base_loop(f->base, EVLOOP_NONBLOCK);
		while (got < BURST && (n = recv(p, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
			size_t wl = burst_payload('c', got, want);
			assert_int_equal(n, (ssize_t)wl);
			assert_memory_equal(buf, want, wl);
			got++;
		}
		usleep(1000);
	}
	assert_int_equal(got, BURST);
	close(p);
	close(a.fd);
}

#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_challenge_nonce_offers_password_algorithms_and_username_anonymity),
	    T(test_allocate_by_userhash_md5_and_sha256_never_names_the_user),
	    T(test_userhash_wrong_password_and_unknown_hash_get_the_same_401),
	    T(test_userhash_together_with_username_is_400),
	    T(test_userhash_under_a_nonce_without_the_anonymity_bit_is_401),
	    T(test_reload_denied_peer_applies_to_the_next_permission_allocation_kept),
	    T(test_reload_lower_quota_applies_to_new_allocations_only),
	    T(test_reload_lower_max_lifetime_applies_to_the_next_refresh),
	    T(test_reload_bad_secret_file_keeps_every_old_setting),
	    T(test_reload_listen_change_is_restart_only_and_reported),
	    T(test_relay_bursts_arrive_whole_in_order_with_distinct_indication_ids),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
