/*
 * TURN relay load generator for bench/turn/run: S sessions over UDP, each
 * an allocation with a permission (and, in channel mode, a channel) for
 * this program's own peer socket, keeping W packets of LEN bytes in flight
 * through the relay: client -> server (Send indication or ChannelData) ->
 * relayed address -> peer socket, which echoes each packet back to the
 * relayed address -> server (Data indication or ChannelData) -> client,
 * which sends the next one. A closed loop: the rate is what the server
 * relays, not what a pacer offers; a packet lost for 200 ms is counted and
 * replaced. The same program drives rtcauthd and coturn.
 *
 * usage: turn_relay_load HOST PORT SECRET REALM SESSIONS WINDOW SECONDS send|channel [LEN]
 * prints "ready" when every session is set up, starts when a line arrives
 * on stdin (the measured window starts), then at the end
 * "relayed=N seconds=T rate=R lost=L setup_errors=E" where N counts both
 * directions (client -> peer and peer -> client), each a relayed packet.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "turn/cred.h"
#include "turn/stun.h"

#define MAXS  512
#define BATCH 64
#define PKT   1500

struct sess {
	int fd;
	struct stun_addr relay;
	uint8_t out[PKT]; /* the packet it sends, built once */
	size_t out_len;
	unsigned inflight;
	double last_rx;
};

static struct sockaddr_in srv;
static char user[128], pw[64], realm[128];
static uint8_t key[TURN_KEY_MAX];
static int keylen;
static struct stun_addr peer_addr;
static int setup_step, setup_code; /* where the last setup failed, and how */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Send a request and wait (1 s) for the answer with its transaction id. */
static int transact(int fd, uint16_t method, const char *nonce, size_t nonce_len,
		    const struct stun_addr *peer, uint16_t chan, uint8_t *ans, size_t cap,
		    struct stun_msg *m)
{
	static const uint8_t transport[4] = {STUN_TRANSPORT_UDP, 0, 0, 0};
	uint8_t buf[512], tid[STUN_TID_LEN];
	struct stun_builder b;
	long n;

	for (size_t i = 0; i < sizeof(tid); i++)
		tid[i] = (uint8_t)rand();
	stun_build_init(&b, buf, sizeof(buf), method, STUN_REQUEST, tid);
	if (method == STUN_METHOD_ALLOCATE)
		stun_build_attr(&b, STUN_ATTR_REQUESTED_TRANSPORT, transport, 4);
	if (chan)
		stun_build_attr(&b, STUN_ATTR_CHANNEL_NUMBER,
				(uint8_t[]){chan >> 8, chan & 0xFF, 0, 0}, 4);
	if (peer)
		stun_build_xor_addr(&b, STUN_ATTR_XOR_PEER_ADDRESS, peer);
	if (nonce) {
		stun_build_str(&b, STUN_ATTR_USERNAME, str_cstr(user));
		stun_build_str(&b, STUN_ATTR_REALM, str_cstr(realm));
		stun_build_attr(&b, STUN_ATTR_NONCE, nonce, nonce_len);
		stun_build_integrity(&b, key, (size_t)keylen);
	}
	n = stun_build_finish(&b);
	if (n < 0)
		return -1;
	for (int tries = 0; tries < 3; tries++) {
		double end = now_s() + 1.0;
		if (send(fd, buf, (size_t)n, 0) < 0)
			return -1;
		while (now_s() < end) {
			struct pollfd pf = {.fd = fd, .events = POLLIN};
			ssize_t r;
			if (poll(&pf, 1, 100) <= 0)
				continue;
			r = recv(fd, ans, cap, 0);
			if (r > 0 && stun_parse(ans, (size_t)r, m) == 0 &&
			    memcmp(m->tid, tid, STUN_TID_LEN) == 0)
				return 0;
		}
	}
	return -1;
}

/* Record how setup step n ended (for the diagnostic); 0 when it succeeded. */
static int step(int n, int rc, const struct stun_msg *m, bool success)
{
	const struct stun_attr *ea;
	struct str reason;

	setup_step = n;
	setup_code = rc < 0 ? -1 : 0;
	if (rc == 0 && m->cls == STUN_ERROR_RESPONSE &&
	    (ea = stun_find(m, STUN_ATTR_ERROR_CODE)) != NULL)
		stun_get_error(m, ea, &setup_code, &reason);
	if (rc < 0 || (success && m->cls != STUN_SUCCESS))
		return -1;
	return 0;
}

/* Allocate (401, then authenticated), CreatePermission or ChannelBind. */
static int setup(struct sess *s, int idx, bool channel, size_t len)
{
	uint8_t ans[1024], nonce[256];
	size_t nonce_len;
	struct stun_msg m;
	struct str nv;
	const struct stun_attr *ra;
	struct stun_builder b;
	uint8_t tid[STUN_TID_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
	uint8_t data[PKT];
	uint16_t chan = (uint16_t)(0x4000 + idx);
	long n;

	s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0 || connect(s->fd, (struct sockaddr *)&srv, sizeof(srv)) < 0)
		return -1;
	if (step(1, transact(s->fd, STUN_METHOD_ALLOCATE, NULL, 0, NULL, 0, ans, sizeof(ans), &m),
		 &m, false) < 0 ||
	    stun_get_nonce(&m, &nv) < 0 || nv.len > sizeof(nonce))
		return -1;
	memcpy(nonce, nv.p, nv.len);
	nonce_len = nv.len;
	if (step(2,
		 transact(s->fd, STUN_METHOD_ALLOCATE, (char *)nonce, nonce_len, NULL, 0, ans,
			  sizeof(ans), &m),
		 &m, true) < 0)
		return -1;
	ra = stun_find(&m, STUN_ATTR_XOR_RELAYED_ADDRESS);
	if (!ra || stun_get_xor_addr(&m, ra, &s->relay) < 0)
		return -1;
	if (step(3,
		 transact(s->fd, channel ? STUN_METHOD_CHANNEL_BIND : STUN_METHOD_CREATE_PERMISSION,
			  (char *)nonce, nonce_len, &peer_addr, channel ? chan : 0, ans,
			  sizeof(ans), &m),
		 &m, true) < 0)
		return -1;
	memset(data, 0x5A, len);
	if (channel) {
		if (stun_channel_data_header(s->out, chan, (uint16_t)len) < 0)
			return -1;
		memcpy(s->out + 4, data, len);
		s->out_len = stun_channel_data_size(len, false);
		memset(s->out + 4 + len, 0, s->out_len - 4 - len);
		return 0;
	}
	stun_build_init(&b, s->out, sizeof(s->out), STUN_METHOD_SEND, STUN_INDICATION, tid);
	stun_build_xor_addr(&b, STUN_ATTR_XOR_PEER_ADDRESS, &peer_addr);
	stun_build_attr(&b, STUN_ATTR_DATA, data, len);
	n = stun_build_finish(&b);
	if (n < 0)
		return -1;
	s->out_len = (size_t)n;
	return 0;
}

/* k more copies of the session's packet, BATCH per sendmmsg (the generator
 * must spend less per packet than the servers it measures) */
static void send_n(struct sess *s, unsigned k)
{
	struct mmsghdr mm[BATCH];
	struct iovec iov = {.iov_base = s->out, .iov_len = s->out_len};

	memset(mm, 0, sizeof(mm));
	for (int i = 0; i < BATCH; i++) {
		mm[i].msg_hdr.msg_iov = &iov;
		mm[i].msg_hdr.msg_iovlen = 1;
	}
	while (k > 0) {
		int n = sendmmsg(s->fd, mm, k < BATCH ? k : BATCH, MSG_DONTWAIT);
		if (n <= 0)
			return;
		s->inflight += (unsigned)n;
		k -= (unsigned)n;
	}
}

int main(int argc, char **argv)
{
	static struct sess ss[MAXS];
	static struct pollfd pf[MAXS + 1];
	static uint8_t bufs[BATCH][PKT];
	static struct mmsghdr mm[BATCH];
	static struct iovec iov[BATCH];
	static struct sockaddr_storage from[BATCH];
	struct sockaddr_in pa;
	socklen_t pl = sizeof(pa);
	int nsess, win, peer_fd, errors = 0;
	size_t len = 100;
	bool channel;
	double dur, t0, end;
	unsigned long long relayed = 0, lost = 0;

	if (argc < 9 || argc > 10) {
		fprintf(
		    stderr,
		    "usage: %s HOST PORT SECRET REALM SESSIONS WINDOW SECONDS send|channel [LEN]\n",
		    argv[0]);
		return 2;
	}
	memset(&srv, 0, sizeof(srv));
	srv.sin_family = AF_INET;
	srv.sin_port = htons((uint16_t)atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &srv.sin_addr) != 1)
		return 2;
	snprintf(realm, sizeof(realm), "%s", argv[4]);
	nsess = atoi(argv[5]);
	win = atoi(argv[6]);
	dur = atof(argv[7]);
	channel = strcmp(argv[8], "channel") == 0;
	if (argc == 10)
		len = (size_t)atoi(argv[9]);
	if (nsess < 1 || nsess > MAXS || win < 1 || dur <= 0 || len < 1 || len > 1200 ||
	    (!channel && strcmp(argv[8], "send") != 0))
		return 2;
	if (turn_cred_ephemeral_make(str_cstr(argv[3]), (int64_t)time(NULL) + 86400,
				     str_cstr("relay"), user, sizeof(user), pw, sizeof(pw)) != 0)
		return 1;
	keylen = turn_cred_key(TURN_PWALG_MD5, str_cstr(user), str_cstr(realm), str_cstr(pw), key);
	if (keylen < 0)
		return 1;
	srand((unsigned)getpid());

	/* the peer: our own socket on the server's address family */
	peer_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	memset(&pa, 0, sizeof(pa));
	pa.sin_family = AF_INET;
	pa.sin_addr = srv.sin_addr;
	if (peer_fd < 0 || bind(peer_fd, (struct sockaddr *)&pa, sizeof(pa)) < 0 ||
	    getsockname(peer_fd, (struct sockaddr *)&pa, &pl) < 0 ||
	    stun_addr_from_sockaddr(&peer_addr, (struct sockaddr *)&pa) < 0)
		return 1;
	setsockopt(peer_fd, SOL_SOCKET, SO_RCVBUF, &(int){1 << 22}, sizeof(int));
	for (int i = 0; i < nsess; i++) {
		int rc = setup(&ss[i], i, channel, len);
		/* 437: an earlier run's allocation still holds this 5-tuple (a
		 * reused ephemeral port): try again from another port */
		for (int t = 0; rc < 0 && setup_code == 437 && t < 8; t++) {
			int held = ss[i].fd; /* kept open meanwhile: the next port differs */
			rc = setup(&ss[i], i, channel, len);
			close(held);
		}
		if (rc < 0) {
			fprintf(stderr,
				"session %d: setup failed at step %d (error %d, -1: no answer)\n",
				i, setup_step, setup_code);
			errors++;
			if (ss[i].fd >= 0)
				close(ss[i].fd);
			ss[i].fd = -1;
		}
	}
	if (errors == nsess) {
		printf("relayed=0 seconds=0 rate=0 lost=0 setup_errors=%d\n", errors);
		return 1;
	}
	for (int i = 0; i < BATCH; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = PKT;
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
	}
	printf("ready\n");
	fflush(stdout);
	{
		/* several generators start their floods together, after all are set up */
		char go[16];
		if (!fgets(go, sizeof(go), stdin))
			return 1;
	}
	t0 = now_s();
	end = t0 + dur;
	for (int i = 0; i < nsess; i++) {
		ss[i].last_rx = t0;
		if (ss[i].fd >= 0)
			send_n(&ss[i], (unsigned)win);
	}
	pf[nsess].fd = peer_fd;
	pf[nsess].events = POLLIN;
	for (int i = 0; i < nsess; i++) {
		pf[i].fd = ss[i].fd;
		pf[i].events = POLLIN;
	}
	for (double t = t0; t < end; t = now_s()) {
		if (poll(pf, (nfds_t)nsess + 1, 50) < 0 && errno != EINTR)
			return 1;
		if (pf[nsess].revents & POLLIN) {
			/* the echo peer: every packet goes back to the relayed address it came from
			 */
			for (;;) {
				int got;
				for (int i = 0; i < BATCH; i++) {
					iov[i].iov_len = PKT;
					mm[i].msg_hdr.msg_name = &from[i];
					mm[i].msg_hdr.msg_namelen = sizeof(from[i]);
				}
				got = recvmmsg(peer_fd, mm, BATCH, MSG_DONTWAIT, NULL);
				if (got <= 0)
					break;
				relayed += (unsigned)got;
				for (int i = 0; i < got; i++)
					iov[i].iov_len = mm[i].msg_len;
				sendmmsg(peer_fd, mm, (unsigned)got, MSG_DONTWAIT);
				if (got < BATCH)
					break;
			}
		}
		for (int i = 0; i < nsess; i++) {
			struct sess *s = &ss[i];
			unsigned back = 0;
			if (s->fd < 0)
				continue;
			if (pf[i].revents & POLLIN) {
				int got;
				for (int k = 0; k < BATCH; k++) {
					iov[k].iov_len = PKT;
					mm[k].msg_hdr.msg_name = NULL;
					mm[k].msg_hdr.msg_namelen = 0;
				}
				while ((got = recvmmsg(s->fd, mm, BATCH, MSG_DONTWAIT, NULL)) > 0) {
					for (int k = 0; k < got; k++)
						if (mm[k].msg_len >= 4 &&
						    ((bufs[k][0] & 0xC0) == 0x40 ||
						     (bufs[k][0] == 0x00 && bufs[k][1] == 0x17)))
							back++;
					if (got < BATCH)
						break;
				}
			}
			if (back) {
				relayed += back;
				s->inflight = s->inflight > back ? s->inflight - back : 0;
				s->last_rx = t;
				send_n(s, back);
			} else if (t - s->last_rx > 0.2) {
				/* lost on the way: count them and refill the window */
				lost += s->inflight;
				s->inflight = 0;
				s->last_rx = t;
				send_n(s, (unsigned)win);
			}
		}
	}
	dur = now_s() - t0;
	printf("relayed=%llu seconds=%.2f rate=%.1f lost=%llu setup_errors=%d\n", relayed, dur,
	       relayed / dur, lost, errors);
	for (int i = 0; i < nsess; i++)
		if (ss[i].fd >= 0)
			close(ss[i].fd);
	close(peer_fd);
	return 0;
}
