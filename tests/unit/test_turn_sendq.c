/*
 * The TURN server's send queue (turn/relayport.h, struct turn_sendq): the
 * relay path queues relayed datagrams and sends them with one sendmmsg per
 * run of entries on the same socket. Real UDP sockets on 127.0.0.1: every
 * datagram arrives, in order, at its own address; runs are grouped by
 * socket; a full queue sends itself; a datagram the kernel refuses is
 * counted as failed and the rest still go.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "turn/relayport.h"

struct fx {
	int s1, s2; /* senders */
	int ra, rb; /* receivers */
	struct sockaddr_in a, b;
	struct turn_sendq q;
};

static int udp_bound(struct sockaddr_in *out)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	if (out)
		*out = sa;
	return fd;
}

static int setup(void **state)
{
	static struct fx f;

	memset(&f, 0, sizeof(f));
	f.s1 = udp_bound(NULL);
	f.s2 = udp_bound(NULL);
	f.ra = udp_bound(&f.a);
	f.rb = udp_bound(&f.b);
	assert_int_equal(turn_sendq_init(&f.q, 2048), 0);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	turn_sendq_free(&f->q);
	close(f->s1);
	close(f->s2);
	close(f->ra);
	close(f->rb);
	return 0;
}

/* The next datagram on fd into buf (NUL-terminated); its length or -1 if none. */
static int next(int fd, char *buf, size_t cap)
{
	ssize_t n = recv(fd, buf, cap - 1, MSG_DONTWAIT);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return (int)n;
}

static void push_str(struct fx *f, int fd, const struct sockaddr_in *to, const char *s,
		     uint64_t *ok, uint64_t *fail)
{
	turn_sendq_push(&f->q, fd, (const struct sockaddr *)to, sizeof(*to), s, strlen(s), ok,
			fail);
}

static void
test_sendq_sends_each_datagram_in_order_to_its_address_one_call_per_socket_run(void **state)
{
	struct fx *f = *state;
	uint64_t ok = 0, fail = 0;
	char buf[64];

	push_str(f, f->s1, &f->a, "a0", &ok, &fail);
	push_str(f, f->s1, &f->a, "a1", &ok, &fail);
	push_str(f, f->s1, &f->b, "b0", &ok, &fail);
	push_str(f, f->s2, &f->a, "a2", &ok, &fail);
	push_str(f, f->s1, &f->b, "b1", NULL, NULL);
	/* nothing leaves before the flush */
	assert_int_equal(next(f->ra, buf, sizeof(buf)), -1);
	turn_sendq_flush(&f->q);
	assert_int_equal(f->q.n, 0);
	/* runs: s1 x3, s2, s1: three sendmmsg calls */
	assert_int_equal(f->q.syscalls, 3);
	assert_int_equal(ok, 4);
	assert_int_equal(fail, 0);
	assert_int_equal(next(f->ra, buf, sizeof(buf)), 2);
	assert_string_equal(buf, "a0");
	assert_int_equal(next(f->ra, buf, sizeof(buf)), 2);
	assert_string_equal(buf, "a1");
	assert_int_equal(next(f->ra, buf, sizeof(buf)), 2);
	assert_string_equal(buf, "a2");
	assert_int_equal(next(f->ra, buf, sizeof(buf)), -1);
	assert_int_equal(next(f->rb, buf, sizeof(buf)), 2);
	assert_string_equal(buf, "b0");
	assert_int_equal(next(f->rb, buf, sizeof(buf)), 2);
	assert_string_equal(buf, "b1");
	assert_int_equal(next(f->rb, buf, sizeof(buf)), -1);
}

static void test_sendq_full_queue_sends_itself_before_taking_more(void **state)
{
	struct fx *f = *state;
	uint64_t ok = 0;
	char buf[64], want[16];
	int got = 0;

	for (int i = 0; i < TURN_SENDQ_MAX + 5; i++) {
		uint8_t *slot = turn_sendq_slot(&f->q);
		int n = snprintf((char *)slot, f->q.slot, "m%d", i);
		turn_sendq_push(&f->q, f->s1, (const struct sockaddr *)&f->a, sizeof(f->a), slot,
				(size_t)n, &ok, NULL);
	}
	assert_int_equal(f->q.n, 5);
	assert_int_equal(ok, TURN_SENDQ_MAX);
	turn_sendq_flush(&f->q);
	assert_int_equal(ok, TURN_SENDQ_MAX + 5);
	/* every slot kept its own bytes until it was sent */
	while (next(f->ra, buf, sizeof(buf)) >= 0) {
		snprintf(want, sizeof(want), "m%d", got++);
		assert_string_equal(buf, want);
	}
	assert_int_equal(got, TURN_SENDQ_MAX + 5);
}

static void test_sendq_refused_datagram_is_counted_failed_and_the_rest_still_go(void **state)
{
	static uint8_t big[70000]; /* beyond a UDP datagram: EMSGSIZE */
	struct fx *f = *state;
	uint64_t ok = 0, fail = 0;
	char buf[64];

	push_str(f, f->s1, &f->a, "x0", &ok, &fail);
	turn_sendq_push(&f->q, f->s1, (const struct sockaddr *)&f->a, sizeof(f->a), big,
			sizeof(big), &ok, &fail);
	push_str(f, f->s1, &f->a, "x1", &ok, &fail);
	push_str(f, -1, &f->a, "bad socket", &ok, &fail);
	push_str(f, f->s2, &f->b, "y0", &ok, &fail);
	turn_sendq_flush(&f->q);
	assert_int_equal(ok, 3);
	assert_int_equal(fail, 2);
	assert_int_equal(next(f->ra, buf, sizeof(buf)), 2);
	assert_string_equal(buf, "x0");
	assert_int_equal(next(f->ra, buf, sizeof(buf)), 2);
	assert_string_equal(buf, "x1");
	assert_int_equal(next(f->ra, buf, sizeof(buf)), -1);
	assert_int_equal(next(f->rb, buf, sizeof(buf)), 2);
	assert_string_equal(buf, "y0");
}

static void test_sendq_flush_of_an_empty_queue_sends_nothing(void **state)
{
	struct fx *f = *state;

	turn_sendq_flush(&f->q);
	assert_int_equal(f->q.syscalls, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
		test_sendq_sends_each_datagram_in_order_to_its_address_one_call_per_socket_run,
		setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sendq_full_queue_sends_itself_before_taking_more,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_sendq_refused_datagram_is_counted_failed_and_the_rest_still_go, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_sendq_flush_of_an_empty_queue_sends_nothing, setup,
					    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
