/*
 * TURN allocation load generator for bench/turn/run: C concurrent sessions
 * over UDP, each repeating Allocate (401) -> Allocate with
 * MESSAGE-INTEGRITY (success) -> Refresh LIFETIME 0 (success) on a fresh
 * socket (a new 5-tuple every time), with coturn-style ephemeral
 * credentials from the shared secret. The same program drives rtcauthd and
 * coturn, so the figure compares the servers, not two clients.
 *
 * usage: turn_alloc_load HOST PORT SECRET REALM CONCURRENCY SECONDS
 *        (SECRET "lt:USER:PASSWORD": long-term credentials of a directory user)
 * prints: "allocations=N seconds=T rate=R timeouts=X errors=E"
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "turn/cred.h"
#include "turn/stun.h"

#define MAXC 1024

struct sess {
	int fd;
	int state; /* 0: unauthenticated Allocate sent, 1: Allocate, 2: Refresh 0 */
	uint8_t tid[STUN_TID_LEN];
	double sent_at;
	char nonce[256];
	size_t nonce_len;
};

static struct sockaddr_in srv;
static char user[128], pw[64], realm[128];
static uint8_t key[TURN_KEY_MAX];
static int keylen;
static long n_alloc, n_timeout, n_error;
static long n_code[700]; /* error answers by code */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void tid_new(uint8_t *t)
{
	static uint64_t ctr;
	ctr++;
	memcpy(t, &ctr, 8);
	t[8] = (uint8_t)rand();
	t[9] = (uint8_t)rand();
	t[10] = (uint8_t)rand();
	t[11] = (uint8_t)rand();
}

static int open_sock(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&srv, sizeof(srv)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void send_req(struct sess *s)
{
	static const uint8_t transport[4] = {STUN_TRANSPORT_UDP, 0, 0, 0};
	uint8_t buf[512];
	struct stun_builder b;
	long n;

	tid_new(s->tid);
	stun_build_init(&b, buf, sizeof(buf),
			s->state == 2 ? STUN_METHOD_REFRESH : STUN_METHOD_ALLOCATE, STUN_REQUEST,
			s->tid);
	if (s->state == 2)
		stun_build_u32(&b, STUN_ATTR_LIFETIME, 0);
	else
		stun_build_attr(&b, STUN_ATTR_REQUESTED_TRANSPORT, transport, 4);
	if (s->state > 0) {
		stun_build_str(&b, STUN_ATTR_USERNAME, str_cstr(user));
		stun_build_str(&b, STUN_ATTR_REALM, str_cstr(realm));
		stun_build_attr(&b, STUN_ATTR_NONCE, s->nonce, s->nonce_len);
		stun_build_integrity(&b, key, (size_t)keylen);
	}
	n = stun_build_finish(&b);
	if (n > 0 && send(s->fd, buf, (size_t)n, 0) < 0)
		n_error++;
	s->sent_at = now_s();
}

static void restart(struct sess *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = open_sock();
	s->state = 0;
	if (s->fd >= 0)
		send_req(s);
}

static void on_answer(struct sess *s, const uint8_t *buf, size_t len)
{
	struct stun_msg m;
	const struct stun_attr *ea;
	int code = 0;
	struct str r, nonce;

	if (stun_parse(buf, len, &m) < 0 || memcmp(m.tid, s->tid, STUN_TID_LEN) != 0)
		return;
	ea = stun_find(&m, STUN_ATTR_ERROR_CODE);
	if (m.cls == STUN_ERROR_RESPONSE && ea && stun_get_error(&m, ea, &code, &r) == 0 &&
	    code < 700)
		n_code[code]++;
	if (s->state == 0 || code == 438) {
		if ((code != 401 && code != 438) || stun_get_nonce(&m, &nonce) < 0 ||
		    nonce.len > sizeof(s->nonce)) {
			n_error++;
			restart(s);
			return;
		}
		memcpy(s->nonce, nonce.p, nonce.len);
		s->nonce_len = nonce.len;
		if (s->state == 0)
			s->state = 1;
		send_req(s);
		return;
	}
	if (m.cls != STUN_SUCCESS) {
		n_error++;
		restart(s);
		return;
	}
	if (s->state == 1) {
		n_alloc++;
		s->state = 2;
		send_req(s);
		return;
	}
	restart(s); /* deleted: next allocation on a new 5-tuple */
}

int main(int argc, char **argv)
{
	static struct sess ss[MAXC];
	static struct pollfd pf[MAXC];
	uint8_t buf[2048];
	int conc;
	double dur, t0, end;

	if (argc != 7) {
		fprintf(stderr, "usage: %s HOST PORT SECRET REALM CONCURRENCY SECONDS\n", argv[0]);
		return 2;
	}
	memset(&srv, 0, sizeof(srv));
	srv.sin_family = AF_INET;
	srv.sin_port = htons((uint16_t)atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &srv.sin_addr) != 1)
		return 2;
	snprintf(realm, sizeof(realm), "%s", argv[4]);
	conc = atoi(argv[5]);
	dur = atof(argv[6]);
	if (conc < 1 || conc > MAXC || dur <= 0)
		return 2;
	if (strncmp(argv[3], "lt:", 3) == 0 && strchr(argv[3] + 3, ':')) {
		/* "lt:USER:PASSWORD": a directory user's long-term credentials */
		const char *c = strchr(argv[3] + 3, ':');
		snprintf(user, sizeof(user), "%.*s", (int)(c - argv[3] - 3), argv[3] + 3);
		snprintf(pw, sizeof(pw), "%s", c + 1);
	} else if (turn_cred_ephemeral_make(str_cstr(argv[3]), (int64_t)time(NULL) + 86400,
					    str_cstr("bench"), user, sizeof(user), pw,
					    sizeof(pw)) != 0) {
		return 1;
	}
	keylen = turn_cred_key(TURN_PWALG_MD5, str_cstr(user), str_cstr(realm), str_cstr(pw), key);
	if (keylen < 0)
		return 1;
	srand((unsigned)getpid());
	for (int i = 0; i < conc; i++) {
		ss[i].fd = -1;
		restart(&ss[i]);
	}
	t0 = now_s();
	end = t0 + dur;
	while (now_s() < end) {
		double t = now_s();
		for (int i = 0; i < conc; i++) {
			pf[i].fd = ss[i].fd;
			pf[i].events = POLLIN;
			if (ss[i].fd >= 0 && t - ss[i].sent_at > 1.0) {
				n_timeout++;
				restart(&ss[i]);
				pf[i].fd = ss[i].fd;
			}
		}
		if (poll(pf, (nfds_t)conc, 50) < 0 && errno != EINTR)
			return 1;
		for (int i = 0; i < conc; i++) {
			ssize_t n;
			if (!(pf[i].revents & (POLLIN | POLLERR)))
				continue;
			n = recv(ss[i].fd, buf, sizeof(buf), 0);
			if (n > 0)
				on_answer(&ss[i], buf, (size_t)n);
			else if (n < 0 && errno != EAGAIN) {
				n_error++;
				restart(&ss[i]);
			}
		}
	}
	dur = now_s() - t0;
	printf("allocations=%ld seconds=%.2f rate=%.1f timeouts=%ld errors=%ld\n", n_alloc, dur,
	       n_alloc / dur, n_timeout, n_error);
	for (int i = 0; i < 700; i++)
		if (n_code[i] && i != 401)
			fprintf(stderr, "error %d: %ld\n", i, n_code[i]);
	for (int i = 0; i < conc; i++)
		if (ss[i].fd >= 0)
			close(ss[i].fd);
	return 0;
}
