/*
 * TURN peer address policy: every built-in denied range (IPv4, IPv6, the
 * IPv4-mapped, IPv4-compatible and NAT64 spellings, the cloud metadata
 * address), public addresses allowed, and the operator's lists with their
 * precedence (denied_peer over allowed_peer over the built-in ranges).
 * Also the [turn] CIDR parser of config.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "turn/policy.h"

static struct stun_addr addr(const char *ip)
{
	struct stun_addr a;

	memset(&a, 0, sizeof(a));
	a.port = 3480;
	if (inet_pton(AF_INET, ip, a.ip) == 1) {
		a.family = STUN_AF_IPV4;
	} else {
		a.family = STUN_AF_IPV6;
		assert_int_equal(inet_pton(AF_INET6, ip, a.ip), 1);
	}
	return a;
}

static bool allows(const struct turn_policy *p, const char *ip, const char **why)
{
	struct stun_addr a = addr(ip);
	return turn_policy_allows(p, &a, why);
}

static void test_policy_denies_every_default_range(void **state)
{
	static const struct {
		const char *ip, *why;
	} cases[] = {
	    {"127.0.0.1", "loopback"},
	    {"127.255.255.254", "loopback"},
	    {"0.0.0.0", "this_network"},
	    {"0.1.2.3", "this_network"},
	    {"10.0.0.1", "private"},
	    {"10.255.255.255", "private"},
	    {"172.16.0.1", "private"},
	    {"172.31.255.255", "private"},
	    {"192.168.1.1", "private"},
	    {"100.64.0.1", "private"},
	    {"100.127.255.255", "private"},
	    {"169.254.169.254", "link_local"},
	    {"169.254.0.1", "link_local"},
	    {"224.0.0.1", "multicast"},
	    {"239.255.255.250", "multicast"},
	    {"255.255.255.255", "reserved"},
	    {"::", "unspecified"},
	    {"::1", "loopback"},
	    {"fe80::1", "link_local"},
	    {"febf:ffff::1", "link_local"},
	    {"fc00::1", "private"},
	    {"fd12:3456::1", "private"},
	    {"ff02::1", "multicast"},
	    /* IPv4-mapped forms */
	    {"::ffff:127.0.0.1", "loopback"},
	    {"::ffff:169.254.169.254", "link_local"},
	    {"::ffff:0.0.0.0", "this_network"},
	    {"::ffff:10.1.2.3", "private"},
	    {"::ffff:192.168.0.1", "private"},
	    {"::ffff:224.0.0.1", "multicast"},
	    /* IPv4-compatible (deprecated) and NAT64 spellings */
	    {"::127.0.0.1", "loopback"},
	    {"::169.254.169.254", "link_local"},
	    {"64:ff9b::127.0.0.1", "loopback"},
	    {"64:ff9b::a9fe:a9fe", "link_local"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *why = NULL;
		bool ok = allows(NULL, cases[i].ip, &why);
		if (ok || strcmp(why, cases[i].why) != 0)
			fail_msg("%s: allowed=%d why=%s, want denied %s", cases[i].ip, ok,
				 why ? why : "(null)", cases[i].why);
	}
}

static void test_policy_allows_public_addresses_and_neighbours_of_denied_ranges(void **state)
{
	static const char *const ok[] = {
	    "8.8.8.8",	   "1.1.1.1",	   "172.15.255.255",  "172.32.0.0",	 "100.63.255.255",
	    "100.128.0.0", "11.0.0.1",	   "169.253.255.255", "223.255.255.255", "192.169.0.1",
	    "2001:db8::1", "2a00:1450::1", "::ffff:8.8.8.8",  "64:ff9b::808:808"};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		const char *why = NULL;
		if (!allows(NULL, ok[i], &why))
			fail_msg("%s refused: %s", ok[i], why);
		assert_string_equal(why, "ok");
	}
}

static struct config_cidr cidr(const char *s)
{
	struct config_cidr c;
	assert_int_equal(config_parse_cidr(s, &c), 0);
	return c;
}

static void test_policy_allowed_peer_opens_a_default_denied_range(void **state)
{
	struct config_cidr allow[] = {cidr("127.0.0.1/32"), cidr("10.1.0.0/16"), cidr("fd00::/8")};
	struct turn_policy p = {allow, 3, NULL, 0};
	const char *why;

	assert_true(allows(&p, "127.0.0.1", &why));
	assert_string_equal(why, "allowed_peer");
	assert_true(allows(&p, "::ffff:127.0.0.1", &why)); /* the same address, mapped */
	assert_true(allows(&p, "10.1.200.3", &why));
	assert_true(allows(&p, "fd00::5", &why));
	/* only what is listed */
	assert_false(allows(&p, "127.0.0.2", &why));
	assert_string_equal(why, "loopback");
	assert_false(allows(&p, "10.2.0.1", &why));
	assert_false(allows(&p, "fc00::5", &why));
	assert_false(allows(&p, "169.254.169.254", &why));
}

static void test_policy_denied_peer_wins_over_allowed_peer(void **state)
{
	struct config_cidr allow[] = {cidr("10.0.0.0/8"), cidr("0.0.0.0/0")};
	struct config_cidr deny[] = {cidr("10.9.0.0/16"), cidr("8.8.8.8"), cidr("2001:db8::/32")};
	struct turn_policy p = {allow, 1, deny, 3};
	const char *why;

	assert_true(allows(&p, "10.8.1.1", &why));
	assert_false(allows(&p, "10.9.1.1", &why));
	assert_string_equal(why, "denied_peer");
	/* deny lists also cover public addresses, in both spellings */
	assert_false(allows(&p, "8.8.8.8", &why));
	assert_false(allows(&p, "::ffff:8.8.8.8", &why));
	assert_false(allows(&p, "2001:db8::7", &why));
	assert_true(allows(&p, "8.8.4.4", &why));
	/* allowing everything still does not override a denied_peer */
	p.nallow = 2;
	assert_true(allows(&p, "127.0.0.1", &why));
	assert_false(allows(&p, "10.9.0.1", &why));
}

static void test_cidr_parser_accepts_prefixes_and_refuses_junk(void **state)
{
	struct config_cidr c;

	c = cidr("192.168.0.0/16");
	assert_int_equal(c.prefix, 112);
	assert_int_equal(c.ip[10], 0xff);
	assert_int_equal(c.ip[12], 192);
	c = cidr("fe80::/10");
	assert_int_equal(c.prefix, 10);
	c = cidr("1.2.3.4");
	assert_int_equal(c.prefix, 128);
	c = cidr("::/0");
	assert_int_equal(c.prefix, 0);
	assert_int_equal(config_parse_cidr("1.2.3.4/33", &c), -1);
	assert_int_equal(config_parse_cidr("::/129", &c), -1);
	assert_int_equal(config_parse_cidr("1.2.3.4/", &c), -1);
	assert_int_equal(config_parse_cidr("/8", &c), -1);
	assert_int_equal(config_parse_cidr("10.0.0.0/8x", &c), -1);
	assert_int_equal(config_parse_cidr("10.0.0/8", &c), -1);
	assert_int_equal(config_parse_cidr("example.com/8", &c), -1);
	assert_int_equal(config_parse_cidr("10.0.0.0/-1", &c), -1);
}

static void test_cidr_contains_respects_partial_bytes(void **state)
{
	struct config_cidr c = cidr("172.16.0.0/12");
	struct stun_addr a = addr("172.31.0.1"), b = addr("172.32.0.1");
	uint8_t ip[16];

	turn_addr_v6(&a, ip);
	assert_true(turn_cidr_contains(&c, ip));
	turn_addr_v6(&b, ip);
	assert_false(turn_cidr_contains(&c, ip));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_policy_denies_every_default_range),
	    cmocka_unit_test(test_policy_allows_public_addresses_and_neighbours_of_denied_ranges),
	    cmocka_unit_test(test_policy_allowed_peer_opens_a_default_denied_range),
	    cmocka_unit_test(test_policy_denied_peer_wins_over_allowed_peer),
	    cmocka_unit_test(test_cidr_parser_accepts_prefixes_and_refuses_junk),
	    cmocka_unit_test(test_cidr_contains_respects_partial_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
