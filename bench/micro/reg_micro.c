/*
 * In-process REGISTER benchmark: the daemon's SIP core (sip_server_handle:
 * parse, Digest, registrar, reply) without sockets, so its CPU cost can be
 * measured exactly (`valgrind --tool=callgrind` counts instructions) and
 * profiled without kernel noise. Each iteration is one registration: a
 * REGISTER answered 401, then the REGISTER with Digest credentials answered
 * 200, for one of N users, with a new Call-ID each time, as in bench/sip.
 * The client side (building requests, computing the response) is timed
 * separately and reported apart.
 *
 *   bench/micro/run [ITERATIONS] [USERS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/digest.h"
#include "auth/lockout.h"
#include "auth/nonce.h"
#include "auth/retrans.h"
#include "core/config.h"
#include "core/log.h"
#include "sip/location.h"
#include "sip/server.h"
#include "store/store.h"
#include "store/wb.h"
#include "vault/vault.h"

static char last[8192];
static size_t last_len;

/* The transport: keep the last answer instead of sending it. */
int sip_io_send(struct sip_io *io, const struct location_flow *to, const void *buf, size_t len)
{
	(void)io;
	(void)to;
	if (len >= sizeof(last))
		len = sizeof(last) - 1;
	memcpy(last, buf, len);
	last[len] = '\0';
	last_len = len;
	return 0;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int status_of(void)
{
	return last_len > 12 ? atoi(last + 8) : 0;
}

/* The value of name="..." in the last answer. */
static int param(const char *name, char *out, size_t cap)
{
	char key[32];
	const char *p, *e;
	snprintf(key, sizeof(key), "%s=\"", name);
	p = strstr(last, key);
	if (!p)
		return -1;
	p += strlen(key);
	e = strchr(p, '"');
	if (!e || (size_t)(e - p) >= cap)
		return -1;
	memcpy(out, p, (size_t)(e - p));
	out[e - p] = '\0';
	return 0;
}

static size_t build(char *buf, size_t cap, int user, int iter, int cseq, const char *auth)
{
	int n = snprintf(buf, cap,
			 "REGISTER sip:example.test SIP/2.0\r\n"
			 "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-%d-%d;rport\r\n"
			 "From: <sip:user%05d@example.test>;tag=%d\r\n"
			 "To: <sip:user%05d@example.test>\r\n"
			 "Call-ID: %d-bench@127.0.0.1\r\n"
			 "CSeq: %d REGISTER\r\n"
			 "Contact: <sip:user%05d@127.0.0.1:5070;transport=UDP>\r\n"
			 "%s%s%s"
			 "Max-Forwards: 70\r\n"
			 "Expires: 3600\r\n"
			 "User-Agent: reg_micro\r\n"
			 "Content-Length: 0\r\n\r\n",
			 iter, cseq, user, iter, user, iter, cseq, user, auth ? "Authorization: " : "",
			 auth ? auth : "", auth ? "\r\n" : "");
	return (size_t)n;
}

static void client_auth(int user, char *out, size_t cap)
{
	char nonce[128], opaque[64], username[32], pw[32], resp[129];
	uint8_t ha1[16];
	struct digest_creds c;

	param("nonce", nonce, sizeof(nonce));
	param("opaque", opaque, sizeof(opaque));
	snprintf(username, sizeof(username), "user%05d", user);
	snprintf(pw, sizeof(pw), "pw-%05d", user);
	memset(&c, 0, sizeof(c));
	c.username = str_cstr(username);
	c.realm = STR_LIT("example.test");
	c.nonce = str_cstr(nonce);
	c.uri = STR_LIT("sip:example.test");
	c.alg = DIGEST_MD5;
	c.qop = DIGEST_QOP_AUTH;
	c.qop_str = STR_LIT("auth");
	c.nc_str = STR_LIT("00000001");
	c.nc = 1;
	c.cnonce = STR_LIT("0a4f113b");
	digest_ha1(DIGEST_MD5, c.username, c.realm, str_cstr(pw), ha1);
	digest_response(&c, ha1, STR_LIT("REGISTER"), STR_NULL, resp, sizeof(resp));
	snprintf(out, cap,
		 "Digest username=\"%s\", realm=\"example.test\", nonce=\"%s\", "
		 "uri=\"sip:example.test\", response=\"%s\", algorithm=MD5, qop=auth, "
		 "nc=00000001, cnonce=\"0a4f113b\", opaque=\"%s\"",
		 username, nonce, resp, opaque);
}

int main(int argc, char **argv)
{
	int iters = argc > 1 ? atoi(argv[1]) : 20000;
	int users = argc > 2 ? atoi(argv[2]) : 10000;
	char dir[] = "/tmp/rtcauth-micro.XXXXXX", db[256], err[512], auth[1024], req[4096];
	struct config *cfg = calloc(1, sizeof(*cfg));
	struct sip_runtime rt;
	struct sip_worker w;
	struct location_flow src;
	struct lockout_policy pol = {10, 300, 300, 3600, 30, 60, 300};
	struct store *s;
	double t_server = 0, t0;
	int ok = 0;

	if (!mkdtemp(dir) || !cfg)
		return 1;
	log_setup(LOG_WARN, LOG_TO_STDERR, "reg_micro");
	snprintf(db, sizeof(db), "%s/rtcauth.db", dir);
	config_defaults(cfg);
	snprintf(cfg->domain, sizeof(cfg->domain), "example.test");
	snprintf(cfg->fqdn, sizeof(cfg->fqdn), "localhost");
	cfg->digest_algs[0] = DIGEST_MD5;
	cfg->n_digest_algs = 1;
	cfg->digest_qop_auth_int = false;
	if (vault_bootstrap_secret(dir, err, sizeof(err)) || vault_init(dir, err, sizeof(err)) ||
	    store_open(db, STORE_CREATE, 5000, &s, err, sizeof(err)) != STORE_OK) {
		fprintf(stderr, "setup: %s\n", err);
		return 1;
	}
	store_begin(s);
	for (int i = 0; i < users; i++) {
		struct store_user u;
		char uri[64], pw[32];
		memset(&u, 0, sizeof(u));
		snprintf(uri, sizeof(uri), "sip:user%05d@example.test", i);
		snprintf(pw, sizeof(pw), "pw-%05d", i);
		store_uri_normalise(uri, u.uri, u.user, u.domain);
		u.enabled = true;
		u.has_password = true;
		store_user_add(s, &u);
		vault_set_password(s, &u, pw, strlen(pw));
	}
	store_commit(s);
	location_init(8);
	retrans_init(19);
	wb_start(db, 100, err, sizeof(err));
	memset(&rt, 0, sizeof(rt));
	rt.cfg = cfg;
	rt.nonces = nonce_table_new(1u << 20, 300);
	rt.lockout = lockout_new(&pol);
	rt.listeners[0].kind = TRANSPORT_UDP;
	snprintf(rt.listeners[0].host, sizeof(rt.listeners[0].host), "127.0.0.1");
	rt.listeners[0].port = 5060;
	rt.n_listeners = 1;
	snprintf(rt.opaque, sizeof(rt.opaque), "0123456789abcdef");
	memset(&w, 0, sizeof(w));
	w.store = s;
	w.rt = &rt;
	memset(&src, 0, sizeof(src));
	src.transport = TRANSPORT_UDP;
	src.addr.in.sin_family = AF_INET;
	src.addr.in.sin_port = htons(5070);
	src.addr.in.sin_addr.s_addr = htonl(0x7f000001);
	src.addrlen = sizeof(src.addr.in);

	for (int i = 0; i < iters; i++) {
		int user = i % users;
		size_t n = build(req, sizeof(req), user, i, 1, NULL);
		t0 = now_s();
		sip_server_handle(&w, req, n, &src);
		t_server += now_s() - t0;
		if (status_of() != 401)
			continue;
		client_auth(user, auth, sizeof(auth));
		n = build(req, sizeof(req), user, i, 2, auth);
		t0 = now_s();
		sip_server_handle(&w, req, n, &src);
		t_server += now_s() - t0;
		ok += status_of() == 200;
	}
	t0 = now_s();
	wb_stop();
	printf("registrations: %d of %d answered 200\n", ok, iters);
	printf("server CPU per registration: %.2f us (SIP core, 2 messages; write-behind %.2f us "
	       "more at the end)\n",
	       t_server / iters * 1e6, (now_s() - t0) / iters * 1e6);
	location_shutdown();
	retrans_shutdown();
	nonce_table_free(rt.nonces);
	lockout_free(rt.lockout);
	store_close(s);
	vault_shutdown();
	free(cfg);
	return ok == iters ? 0 : 1;
}
