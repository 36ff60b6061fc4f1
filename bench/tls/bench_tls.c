/*
 * TLS client certificate benchmark (bench/tls/run, `make bench-tls`,
 * issue 5): a load client for full TLS handshakes with a client
 * certificate, and certificate issuance in process against the raw
 * signing rate of the CA key.
 *
 *   bench_tls load PORT sip|http CONNS SECONDS CERT KEY [REQUEST_PATH]
 *       CONNS connections to 127.0.0.1:PORT in parallel (epoll, non-
 *       blocking), each: TCP connect, a full TLS handshake presenting CERT
 *       (chain, PEM) and KEY (no session is ever offered again: no
 *       resumption, no tickets kept), one small request, its answer read,
 *       close (close_notify, then SO_LINGER 0 so no TIME_WAIT piles up on
 *       the loopback), then a new connection in its place. "sip": an
 *       OPTIONS to the server, complete at the end of a 200's headers (the
 *       answer has Content-Length: 0); "http": GET REQUEST_PATH HTTP/1.0
 *       (openssl s_server -HTTP serves the file, which holds a whole
 *       HTTP/1.0 200 answer), complete likewise at the end of its
 *       headers and Content-Length bytes. The server certificate is not verified by the client (its
 *       signature in the TLS 1.3 CertificateVerify is): the client does
 *       the least it must so one client core drives one server core.
 *       Counts completed connections for SECONDS; anything else (refused,
 *       reset, other status) is an error and its connection replaced.
 *   bench_tls issue CONF N ROUNDS
 *       The PKI of the rtcauth.conf CONF in process: pki_init (its CA,
 *       made in <state_dir>/pki on the first call), the store, a user
 *       sip:bench@<domain>; N CSRs per key type (RSA 2048 and EC P-256,
 *       from 8 keys per type, each CSR with its own subject) made untimed.
 *       Timed, per type, in ROUNDS rounds: pki_issue for each CSR (parse,
 *       key policy, CSR signature check, build, sign with the CA key,
 *       record in SQLite); against, on the same round, the raw signing
 *       rate of the CA key: EVP_DigestSign (SHA-256) of the TBS bytes of
 *       a certificate just issued, N times; and X509_REQ_verify of the
 *       same CSRs (PEM parse + the other public key operation issuance
 *       must do), and the PEM parse alone (with the public key decoded).
 *
 * Results go to stdout, one "result name=... key=value ..." line each, for
 * the driver; progress and errors to stderr. Never a timed test and never
 * part of `make test`. Talks only to 127.0.0.1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "pki/pki.h"
#include "store/store.h"

_Noreturn static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("bench_tls: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double self_cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- load ---------------------------------------------------------------- */

enum lstate { L_CONNECTING, L_HANDSHAKE, L_WRITE, L_READ };

struct lconn {
	int fd;
	SSL *ssl;
	enum lstate st;
	uint32_t events; /* what epoll waits for */
	size_t sent;
	size_t got;
	size_t answer;
	char buf[4096];
};

struct load {
	SSL_CTX *ctx;
	int ep;
	struct sockaddr_in addr;
	bool sip;
	char req[512];
	size_t req_len;
	long done, errors, handshakes;
	size_t answer_bytes; /* of the last answer */
	long err_connect, err_tls, err_status;
};

static void lconn_close(struct load *L, struct lconn *c, bool ok)
{
	struct linger lg = {1, 0};

	if (c->ssl) {
		if (ok)
			SSL_shutdown(c->ssl); /* one close_notify, not waited for */
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0) {
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		epoll_ctl(L->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
	}
	ERR_clear_error();
}

static void lconn_start(struct load *L, struct lconn *c)
{
	struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = c};
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (c->fd < 0)
		die("socket: %s", strerror(errno));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->st = L_CONNECTING;
	c->events = ev.events;
	c->sent = c->got = 0;
	if (connect(c->fd, (struct sockaddr *)&L->addr, sizeof(L->addr)) < 0 &&
	    errno != EINPROGRESS)
		die("connect: %s", strerror(errno));
	if (epoll_ctl(L->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		die("epoll_ctl: %s", strerror(errno));
}

/* Wait for what OpenSSL needs next (level-triggered epoll: asking for
 * EPOLLOUT on a connected socket would spin). */
static void lconn_want(struct load *L, struct lconn *c, int e)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};

	if (e == SSL_ERROR_WANT_WRITE)
		ev.events |= EPOLLOUT;
	if (ev.events != c->events) {
		epoll_ctl(L->ep, EPOLL_CTL_MOD, c->fd, &ev);
		c->events = ev.events;
	}
}

static void lconn_fail(struct load *L, struct lconn *c, long *kind)
{
	L->errors++;
	(*kind)++;
	lconn_close(L, c, false);
	lconn_start(L, c);
}

/* Is the answer in c->buf complete (headers and Content-Length bytes of
 * body)? 1 yes, a 200; -1 another status or no Content-Length; 0 not yet. */
static int answer_done(const struct load *L, struct lconn *c)
{
	const char *end, *cl;
	size_t body;

	c->buf[c->got] = '\0';
	end = strstr(c->buf, "\r\n\r\n");
	if (!end)
		return 0;
	if (strncmp(c->buf, L->sip ? "SIP/2.0 200 " : "HTTP/1.0 200 ", 12) != 0)
		return -1;
	cl = strcasestr(c->buf, "\r\nContent-Length:");
	if (!cl || cl > end)
		return -1;
	body = (size_t)strtoul(cl + 17, NULL, 10);
	return c->got >= (size_t)(end + 4 - c->buf) + body ? 1 : 0;
}

/* Drive one connection as far as it goes without blocking. */
static void lconn_step(struct load *L, struct lconn *c, bool *counting)
{
	int rc, e;

	if (c->st == L_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
			lconn_fail(L, c, &L->err_connect);
			return;
		}
		c->ssl = SSL_new(L->ctx);
		if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1)
			die("SSL_new");
		SSL_set_connect_state(c->ssl);
		c->st = L_HANDSHAKE;
	}
	if (c->st == L_HANDSHAKE) {
		rc = SSL_do_handshake(c->ssl);
		if (rc != 1) {
			e = SSL_get_error(c->ssl, rc);
			if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
				lconn_fail(L, c, &L->err_tls);
			else
				lconn_want(L, c, e);
			return;
		}
		if (*counting)
			L->handshakes++;
		c->st = L_WRITE;
	}
	if (c->st == L_WRITE) {
		while (c->sent < L->req_len) {
			size_t n = 0;
			rc = SSL_write_ex(c->ssl, L->req + c->sent, L->req_len - c->sent, &n);
			if (rc != 1) {
				e = SSL_get_error(c->ssl, rc);
				if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
					lconn_fail(L, c, &L->err_tls);
				else
					lconn_want(L, c, e);
				return;
			}
			c->sent += n;
		}
		c->st = L_READ;
	}
	for (;;) {
		size_t n = 0;
		if (c->got >= sizeof(c->buf) - 1) {
			lconn_fail(L, c, &L->err_status); /* no answer is that long */
			return;
		}
		rc = SSL_read_ex(c->ssl, c->buf + c->got, sizeof(c->buf) - 1 - c->got, &n);
		if (rc == 1) {
			int d;
			c->got += n;
			d = answer_done(L, c);
			if (d == 0)
				continue;
			if (d < 0) {
				lconn_fail(L, c, &L->err_status);
				return;
			}
			c->answer = c->got;
			goto done;
		}
		e = SSL_get_error(c->ssl, rc);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			lconn_want(L, c, e);
			return;
		}
		lconn_fail(L, c, c->got ? &L->err_status : &L->err_tls);
		return;
	}
done:
	if (*counting) {
		L->done++;
		L->answer_bytes = c->answer;
	}
	lconn_close(L, c, true);
	lconn_start(L, c);
}

static SSL_CTX *client_ctx(const char *cert, const char *key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx)
		die("SSL_CTX_new");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1)
		die("cannot load the client certificate %s / key %s", cert, key);
	return ctx;
}

static int load_main(int argc, char **argv)
{
	struct load L;
	struct lconn *conns;
	struct epoll_event evs[256];
	int nconn, port;
	double secs, t0, t1, c0, c1, warm_end;
	bool counting = false;

	if (argc < 8)
		die("usage: bench_tls load PORT sip|http CONNS SECONDS CERT KEY [PATH]");
	memset(&L, 0, sizeof(L));
	port = atoi(argv[2]);
	L.sip = strcmp(argv[3], "sip") == 0;
	nconn = atoi(argv[4]);
	secs = atof(argv[5]);
	if (port <= 0 || port > 65535 || nconn <= 0 || nconn > 4096 || secs <= 0)
		die("bad arguments");
	L.ctx = client_ctx(argv[6], argv[7]);
	L.addr.sin_family = AF_INET;
	L.addr.sin_port = htons((uint16_t)port);
	L.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (L.sip)
		snprintf(L.req, sizeof(L.req),
			 "OPTIONS sip:127.0.0.1:%d;transport=tls SIP/2.0\r\n"
			 "Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK-bench-tls\r\n"
			 "Max-Forwards: 70\r\n"
			 "From: <sip:bench@example.test>;tag=bt1\r\n"
			 "To: <sip:127.0.0.1:%d>\r\n"
			 "Call-ID: bench-tls-options@127.0.0.1\r\n"
			 "CSeq: 1 OPTIONS\r\n"
			 "Content-Length: 0\r\n\r\n",
			 port, port);
	else
		snprintf(L.req, sizeof(L.req), "GET %s HTTP/1.0\r\n\r\n",
			 argc > 8 ? argv[8] : "/answer.txt");
	L.req_len = strlen(L.req);
	L.ep = epoll_create1(0);
	conns = calloc((size_t)nconn, sizeof(*conns));
	if (L.ep < 0 || !conns)
		die("epoll_create1 / calloc");
	for (int i = 0; i < nconn; i++)
		lconn_start(&L, &conns[i]);
	/* half a second of warm-up, not counted */
	t0 = now_s();
	warm_end = t0 + 0.5;
	c0 = 0;
	for (;;) {
		double t = now_s();
		int n;
		if (!counting && t >= warm_end) {
			counting = true;
			t0 = t;
			c0 = self_cpu_s();
			L.errors = L.err_connect = L.err_tls = L.err_status = 0;
			printf("info name=start t=%.6f\n", t0);
			fflush(stdout);
		}
		if (counting && t - t0 >= secs)
			break;
		n = epoll_wait(L.ep, evs, 256, 50);
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++) {
			struct lconn *c = evs[i].data.ptr;
			if (c->fd >= 0)
				lconn_step(&L, c, &counting);
		}
	}
	t1 = now_s();
	c1 = self_cpu_s();
	for (int i = 0; i < nconn; i++)
		lconn_close(&L, &conns[i], false);
	printf(
	    "result name=load ops=%ld handshakes=%ld secs=%.3f rate=%.1f errors=%ld "
	    "err_connect=%ld err_tls=%ld err_status=%ld cpu_secs=%.3f conns=%d answer_bytes=%zu\n",
	    L.done, L.handshakes, t1 - t0, (double)L.done / (t1 - t0), L.errors, L.err_connect,
	    L.err_tls, L.err_status, c1 - c0, nconn, L.answer_bytes);
	free(conns);
	SSL_CTX_free(L.ctx);
	close(L.ep);
	return 0;
}

/* ---- issuance ------------------------------------------------------------ */

#define KEYS_PER_TYPE 8

static char *make_csr(EVP_PKEY *pk, int i, size_t *len)
{
	X509_REQ *req = X509_REQ_new();
	BIO *bio = BIO_new(BIO_s_mem());
	char cn[64], *data = NULL, *out = NULL;
	long n = 0;

	snprintf(cn, sizeof(cn), "bench-device-%06d", i);
	if (!req || !bio || X509_REQ_set_version(req, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_ASC,
				       (const unsigned char *)cn, -1, -1, 0) != 1 ||
	    X509_REQ_set_pubkey(req, pk) != 1 || X509_REQ_sign(req, pk, EVP_sha256()) <= 0 ||
	    PEM_write_bio_X509_REQ(bio, req) != 1 || (n = BIO_get_mem_data(bio, &data)) <= 0 ||
	    !(out = malloc((size_t)n + 1)))
		die("cannot make a CSR");
	memcpy(out, data, (size_t)n);
	out[n] = '\0';
	*len = (size_t)n;
	BIO_free(bio);
	X509_REQ_free(req);
	return out;
}

static X509_REQ *csr_parse(const char *pem, size_t len)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	X509_REQ *r = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	if (!r)
		die("cannot parse our own CSR");
	return r;
}

static EVP_PKEY *read_key(const char *path)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *pk = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	if (!pk)
		die("cannot read the CA key %s", path);
	return pk;
}

struct issue_run {
	double issue_s, sign_s, csrv_s, parse_s;
};

/* One round of one key type: pki_issue on every CSR, then the raw CA
 * signature of the last TBS n times, then X509_REQ_verify of every CSR. */
static void issue_round(struct store *s, const struct store_user *u, char **csrs, size_t *lens,
			int n, EVP_PKEY *cakey, struct issue_run *r)
{
	char *chain = NULL, serial[PKI_SERIAL_MAX];
	unsigned char *tbs = NULL, sig[512];
	int64_t not_after;
	X509 *last = NULL;
	BIO *bio;
	int tbs_len;
	double t;

	t = now_s();
	for (int i = 0; i < n; i++) {
		int rc = pki_issue(s, u, csrs[i], lens[i], 0, &chain, serial, &not_after);
		if (rc != PKI_OK)
			die("pki_issue: %s", pki_issue_strerror(rc));
		if (i == n - 1) {
			bio = BIO_new_mem_buf(chain, -1);
			last = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
			BIO_free(bio);
		}
		free(chain);
	}
	r->issue_s = now_s() - t;
	if (!last || (tbs_len = i2d_re_X509_tbs(last, &tbs)) <= 0)
		die("cannot re-encode an issued certificate");

	t = now_s();
	for (int i = 0; i < n; i++) {
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		size_t siglen = sizeof(sig);
		if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, cakey) != 1 ||
		    EVP_DigestSign(md, sig, &siglen, tbs, (size_t)tbs_len) != 1)
			die("EVP_DigestSign");
		EVP_MD_CTX_free(md);
	}
	r->sign_s = now_s() - t;

	t = now_s();
	for (int i = 0; i < n; i++) {
		X509_REQ *req = csr_parse(csrs[i], lens[i]);
		if (X509_REQ_verify(req, X509_REQ_get0_pubkey(req)) != 1)
			die("X509_REQ_verify");
		X509_REQ_free(req);
	}
	r->csrv_s = now_s() - t;

	t = now_s();
	for (int i = 0; i < n; i++) {
		X509_REQ *req = csr_parse(csrs[i], lens[i]);
		if (!X509_REQ_get0_pubkey(req))
			die("X509_REQ_get0_pubkey");
		X509_REQ_free(req);
	}
	r->parse_s = now_s() - t;
	OPENSSL_free(tbs);
	X509_free(last);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void issue_type(struct store *s, const struct store_user *u, const char *type, int n,
		       int rounds, EVP_PKEY *cakey)
{
	EVP_PKEY *keys[KEYS_PER_TYPE];
	char **csrs = calloc((size_t)n, sizeof(*csrs));
	size_t *lens = calloc((size_t)n, sizeof(*lens));
	double *iss = calloc((size_t)rounds, sizeof(double));
	double *sgn = calloc((size_t)rounds, sizeof(double));
	double *csv = calloc((size_t)rounds, sizeof(double));
	double *prs = calloc((size_t)rounds, sizeof(double));
	double ti = 0, ts = 0, tc = 0, tp = 0, t;
	bool rsa = strcmp(type, "rsa2048") == 0;

	if (!csrs || !lens || !iss || !sgn || !csv || !prs)
		die("calloc");
	fprintf(stderr, "  making %d %s keys and %d CSRs\n", KEYS_PER_TYPE, type, n);
	t = now_s();
	for (int i = 0; i < KEYS_PER_TYPE; i++) {
		keys[i] = rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
		if (!keys[i])
			die("key generation");
	}
	for (int i = 0; i < n; i++)
		csrs[i] = make_csr(keys[i % KEYS_PER_TYPE], i, &lens[i]);
	fprintf(stderr, "  made in %.1f s\n", now_s() - t);
	for (int r = 0; r < rounds; r++) {
		struct issue_run run;
		issue_round(s, u, csrs, lens, n, cakey, &run);
		iss[r] = n / run.issue_s;
		sgn[r] = n / run.sign_s;
		csv[r] = n / run.csrv_s;
		prs[r] = n / run.parse_s;
		tp += run.parse_s;
		ti += run.issue_s;
		ts += run.sign_s;
		tc += run.csrv_s;
		fprintf(stderr, "  round %d: issue %.0f/s, raw CA sign %.0f/s, CSR verify %.0f/s\n",
			r + 1, iss[r], sgn[r], csv[r]);
	}
	printf("result name=issue_%s ops=%d rounds=%d rate=%.1f median_rate=%.1f us_per_op=%.2f\n",
	       type, n * rounds, rounds, n * rounds / ti, median(iss, rounds),
	       1e6 * ti / (n * rounds));
	printf(
	    "result name=ca_sign_%s ops=%d rounds=%d rate=%.1f median_rate=%.1f us_per_op=%.2f\n",
	    type, n * rounds, rounds, n * rounds / ts, median(sgn, rounds),
	    1e6 * ts / (n * rounds));
	printf("result name=csr_verify_%s ops=%d rounds=%d rate=%.1f median_rate=%.1f "
	       "us_per_op=%.2f\n",
	       type, n * rounds, rounds, n * rounds / tc, median(csv, rounds),
	       1e6 * tc / (n * rounds));
	printf("result name=csr_parse_%s ops=%d rounds=%d rate=%.1f median_rate=%.1f "
	       "us_per_op=%.2f\n",
	       type, n * rounds, rounds, n * rounds / tp, median(prs, rounds),
	       1e6 * tp / (n * rounds));
	fflush(stdout);
	for (int i = 0; i < n; i++)
		free(csrs[i]);
	for (int i = 0; i < KEYS_PER_TYPE; i++)
		EVP_PKEY_free(keys[i]);
	free(csrs);
	free(lens);
	free(iss);
	free(sgn);
	free(csv);
	free(prs);
}

static int issue_main(int argc, char **argv)
{
	static struct config cfg;
	struct store *s = NULL;
	struct store_user u;
	char err[512], path[PATH_MAX + 32], uri[STORE_URI_MAX + 16];
	EVP_PKEY *cakey;
	int n, rounds, rc;

	if (argc < 5)
		die("usage: bench_tls issue CONF N ROUNDS");
	n = atoi(argv[3]);
	rounds = atoi(argv[4]);
	if (n <= 0 || rounds <= 0)
		die("bad arguments");
	if (config_load(argv[2], &cfg, err, sizeof(err)) < 0)
		die("%s", err);
	if (mkdir(cfg.state_dir, 0700) < 0 && errno != EEXIST)
		die("mkdir %s: %s", cfg.state_dir, strerror(errno));
	if (store_open(cfg.sqlite_path, STORE_CREATE, 5000, &s, err, sizeof(err)) != STORE_OK)
		die("store_open %s: %s", cfg.sqlite_path, err);
	snprintf(uri, sizeof(uri), "sip:bench@%s", cfg.domain);
	memset(&u, 0, sizeof(u));
	if (store_uri_normalise(uri, u.uri, u.user, u.domain) != 0)
		die("store_uri_normalise %s", uri);
	u.enabled = true;
	rc = store_user_get(s, u.uri, &u);
	if (rc == STORE_NOTFOUND) {
		u.enabled = true;
		if (store_user_add(s, &u) != STORE_OK || store_user_get(s, u.uri, &u) != STORE_OK)
			die("store_user_add %s", uri);
	} else if (rc != STORE_OK) {
		die("store_user_get %s", uri);
	}
	if (pki_init(&cfg, err, sizeof(err)) < 0)
		die("pki_init: %s", err);
	snprintf(path, sizeof(path), "%s/pki/ca.key", cfg.state_dir);
	cakey = read_key(path);
	printf("info name=ca key=%s bits=%d\n", EVP_PKEY_get0_type_name(cakey),
	       EVP_PKEY_get_bits(cakey));
	issue_type(s, &u, "ecp256", n, rounds, cakey);
	issue_type(s, &u, "rsa2048", n, rounds, cakey);
	EVP_PKEY_free(cakey);
	pki_shutdown();
	store_close(s);
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 2 && strcmp(argv[1], "load") == 0)
		return load_main(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "issue") == 0)
		return issue_main(argc, argv);
	fprintf(stderr, "usage: bench_tls load PORT sip|http CONNS SECONDS CERT KEY [PATH]\n"
			"       bench_tls issue CONF N ROUNDS\n");
	return 2;
}
