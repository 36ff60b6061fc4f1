/*
 * TURN allocation table: 5-tuple lookup, 437 on a second allocation of a
 * 5-tuple, lifetimes (RFC 8656 §7.2/§8 rules, expiry), quotas per user and
 * in total (and their release), permissions (300 s, refresh, capacity),
 * channel bindings (600 s, conflicts, the 5-minute hold after expiry) and
 * the bandwidth bucket.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "turn/alloc.h"
#include "turn/policy.h"

static struct stun_addr addr4(const char *ip, uint16_t port)
{
	struct stun_addr a;
	memset(&a, 0, sizeof(a));
	a.family = STUN_AF_IPV4;
	a.port = port;
	assert_int_equal(inet_pton(AF_INET, ip, a.ip), 1);
	return a;
}

static struct turn_tuple tuple(const char *ip, uint16_t port)
{
	struct turn_tuple k;
	memset(&k, 0, sizeof(k));
	k.client = addr4(ip, port);
	return k;
}

static int freed;
static void on_free(struct turn_alloc *a, void *ctx)
{
	(void)a;
	(void)ctx;
	freed++;
}

static int setup(void **state)
{
	turn_quota_reset();
	turn_quota_init(3, 5);
	freed = 0;
	*state = turn_alloc_table_new();
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	turn_alloc_table_free(*state, on_free, NULL);
	assert_int_equal(turn_quota_total(), 0);
	return 0;
}

static struct turn_alloc *add(struct turn_alloc_table *t, const char *ip, uint16_t port,
			      const char *user, uint64_t now, int want)
{
	struct turn_tuple k = tuple(ip, port);
	struct turn_alloc *a = (void *)1;
	int rc = turn_alloc_add(t, &k, str_cstr(user), user, 600, now, &a);
	assert_int_equal(rc, want);
	if (rc != TURN_ALLOC_OK)
		assert_null(a);
	return a;
}

static void test_alloc_is_found_by_its_five_tuple_only(void **state)
{
	struct turn_alloc_table *t = *state;
	struct turn_alloc *a = add(t, "192.0.2.1", 1000, "alice", 0, TURN_ALLOC_OK);
	struct turn_tuple k = tuple("192.0.2.1", 1000);

	assert_ptr_equal(turn_alloc_find(t, &k, 1), a);
	assert_string_equal(a->username, "alice");
	assert_int_equal(a->relay_fd, -1);
	k.client.port = 1001;
	assert_null(turn_alloc_find(t, &k, 1));
	k = tuple("192.0.2.1", 1000);
	k.transport = 1; /* same address over TCP is another 5-tuple */
	assert_null(turn_alloc_find(t, &k, 1));
	k = tuple("192.0.2.1", 1000);
	k.listen_idx = 1;
	assert_null(turn_alloc_find(t, &k, 1));
	assert_int_equal(turn_alloc_count(t), 1);
}

static void test_alloc_second_allocation_of_a_tuple_is_a_mismatch(void **state)
{
	struct turn_alloc_table *t = *state;
	add(t, "192.0.2.1", 1000, "alice", 0, TURN_ALLOC_OK);
	add(t, "192.0.2.1", 1000, "alice", 0, TURN_ALLOC_EXISTS);
	add(t, "192.0.2.1", 1000, "bob", 0, TURN_ALLOC_EXISTS);
	assert_int_equal(turn_quota_total(), 1); /* refusals hold no quota */
}

static void test_alloc_lifetime_rules(void **state)
{
	assert_int_equal(turn_lifetime(false, 0, 600, 3600), 600);
	assert_int_equal(turn_lifetime(true, 1200, 600, 3600), 1200);
	assert_int_equal(turn_lifetime(true, 100000, 600, 3600), 3600);
	assert_int_equal(turn_lifetime(true, 30, 600, 3600), 600); /* never below the default */
	assert_int_equal(turn_lifetime(true, 0xFFFFFFFFu, 600, 3600), 3600);
}

static void test_alloc_expires_and_refresh_extends(void **state)
{
	struct turn_alloc_table *t = *state;
	struct turn_alloc *a = add(t, "192.0.2.1", 1000, "alice", 0, TURN_ALLOC_OK);
	struct turn_tuple k = tuple("192.0.2.1", 1000);

	assert_non_null(turn_alloc_find(t, &k, 599999));
	assert_null(turn_alloc_find(t, &k, 600000)); /* expired, not yet swept */
	turn_alloc_refresh(a, 1200, 500000);
	assert_non_null(turn_alloc_find(t, &k, 1600000));
	assert_int_equal(turn_alloc_expire(t, 1699999, on_free, NULL), 0);
	assert_int_equal(turn_alloc_expire(t, 1700000, on_free, NULL), 1);
	assert_int_equal(freed, 1);
	assert_int_equal(turn_alloc_count(t), 0);
	assert_int_equal(turn_quota_total(), 0);
	/* the 5-tuple is free again */
	add(t, "192.0.2.1", 1000, "alice", 1700000, TURN_ALLOC_OK);
}

static void test_alloc_quota_per_user_then_total_and_release(void **state)
{
	struct turn_alloc_table *t = *state;
	struct turn_alloc *a1 = add(t, "192.0.2.1", 1, "alice", 0, TURN_ALLOC_OK);
	add(t, "192.0.2.1", 2, "alice", 0, TURN_ALLOC_OK);
	add(t, "192.0.2.1", 3, "alice", 0, TURN_ALLOC_OK);
	add(t, "192.0.2.1", 4, "alice", 0, TURN_ALLOC_QUOTA_USER);
	add(t, "192.0.2.1", 5, "bob", 0, TURN_ALLOC_OK);
	add(t, "192.0.2.1", 6, "carol", 0, TURN_ALLOC_OK);
	add(t, "192.0.2.1", 7, "dave", 0, TURN_ALLOC_QUOTA_TOTAL);
	assert_int_equal(turn_quota_total(), 5);
	/* deleting one gives its user (and the total) one back */
	turn_alloc_del(t, a1, on_free, NULL);
	assert_int_equal(freed, 1);
	add(t, "192.0.2.1", 8, "alice", 0, TURN_ALLOC_OK);
	add(t, "192.0.2.1", 9, "dave", 0, TURN_ALLOC_QUOTA_TOTAL);
}

static void test_quota_is_shared_by_tables(void **state)
{
	struct turn_alloc_table *t = *state, *t2 = turn_alloc_table_new();
	add(t, "192.0.2.1", 1, "alice", 0, TURN_ALLOC_OK);
	add(t2, "192.0.2.1", 1, "alice", 0, TURN_ALLOC_OK); /* another worker */
	add(t2, "192.0.2.1", 2, "alice", 0, TURN_ALLOC_OK);
	add(t, "192.0.2.1", 2, "alice", 0, TURN_ALLOC_QUOTA_USER);
	turn_alloc_table_free(t2, on_free, NULL);
	assert_int_equal(freed, 2);
	assert_int_equal(turn_quota_total(), 1);
}

static void test_alloc_permissions_last_300s_and_are_per_ip(void **state)
{
	struct turn_alloc_table *t = *state;
	struct turn_alloc *a = add(t, "192.0.2.1", 1, "alice", 0, TURN_ALLOC_OK);
	struct stun_addr p = addr4("198.51.100.7", 5000), q = addr4("198.51.100.8", 5000);
	uint8_t ip[16], ipq[16];

	turn_addr_v6(&p, ip);
	turn_addr_v6(&q, ipq);
	assert_false(turn_alloc_permitted(a, ip, 0));
	assert_int_equal(turn_alloc_perm_add(a, ip, 1000), 0);
	assert_true(turn_alloc_permitted(a, ip, 300999));
	assert_false(turn_alloc_permitted(a, ip, 301000));
	assert_false(turn_alloc_permitted(a, ipq, 2000));
	/* refreshing moves the expiry, it does not add an entry */
	assert_int_equal(turn_alloc_perm_add(a, ip, 200000), 0);
	assert_int_equal(a->nperms, 1);
	assert_true(turn_alloc_permitted(a, ip, 499999));
}

static void test_alloc_permission_capacity_frees_expired_entries(void **state)
{
	struct turn_alloc_table *t = *state;
	struct turn_alloc *a = add(t, "192.0.2.1", 1, "alice", 0, TURN_ALLOC_OK);
	struct stun_addr p = addr4("198.51.100.0", 1);
	uint8_t ip[16];

	for (int i = 0; i < TURN_MAX_PERMS; i++) {
		p.ip[3] = (uint8_t)i;
		turn_addr_v6(&p, ip);
		assert_int_equal(turn_alloc_perm_add(a, ip, 0), 0);
	}
	p.ip[3] = 200;
	turn_addr_v6(&p, ip);
	assert_int_equal(turn_alloc_perm_add(a, ip, 1000), TURN_ALLOC_FULL);
	assert_int_equal(turn_alloc_perm_add(a, ip, 300000), 0); /* the old ones expired */
	assert_int_equal(a->nperms, 1);
}

static void test_alloc_channel_binding_rules(void **state)
{
	struct turn_alloc_table *t = *state;
	struct turn_alloc *a = add(t, "192.0.2.1", 1, "alice", 0, TURN_ALLOC_OK);
	struct stun_addr p = addr4("198.51.100.7", 5000), p2 = addr4("198.51.100.7", 5001);
	uint8_t ip[16];

	assert_int_equal(turn_alloc_channel_bind(a, 0x4000, &p, 0), 0);
	/* binding also installs the permission */
	turn_addr_v6(&p, ip);
	assert_true(turn_alloc_permitted(a, ip, 1000));
	assert_non_null(turn_alloc_channel_by_num(a, 0x4000, 1000));
	assert_ptr_equal(turn_alloc_channel_by_peer(a, &p, 1000),
			 turn_alloc_channel_by_num(a, 0x4000, 1000));
	assert_null(turn_alloc_channel_by_peer(a, &p2, 1000)); /* another port, another peer */
	/* same number to another peer, same peer to another number: refused */
	assert_int_equal(turn_alloc_channel_bind(a, 0x4000, &p2, 1000), TURN_ALLOC_CONFLICT);
	assert_int_equal(turn_alloc_channel_bind(a, 0x4001, &p, 1000), TURN_ALLOC_CONFLICT);
	/* rebinding the same pair refreshes */
	assert_int_equal(turn_alloc_channel_bind(a, 0x4000, &p, 100000), 0);
	assert_non_null(turn_alloc_channel_by_num(a, 0x4000, 699999));
	assert_null(turn_alloc_channel_by_num(a, 0x4000, 700000));
	/* still reserved for 5 minutes after it expired */
	assert_int_equal(turn_alloc_channel_bind(a, 0x4000, &p2, 800000), TURN_ALLOC_CONFLICT);
	turn_alloc_refresh(a, 3600, 800000);
	turn_alloc_expire(t, 1000000, on_free, NULL);
	assert_int_equal(a->nchans, 0);
	assert_int_equal(turn_alloc_channel_bind(a, 0x4000, &p2, 1000000), 0);
}

static void test_alloc_channel_capacity(void **state)
{
	struct turn_alloc_table *t = *state;
	struct turn_alloc *a = add(t, "192.0.2.1", 1, "alice", 0, TURN_ALLOC_OK);
	struct stun_addr p = addr4("198.51.100.7", 1);

	for (int i = 0; i < TURN_MAX_CHANNELS; i++) {
		p.port = (uint16_t)(1000 + i);
		assert_int_equal(turn_alloc_channel_bind(a, (uint16_t)(0x4000 + i), &p, 0), 0);
	}
	p.port = 9;
	assert_int_equal(turn_alloc_channel_bind(a, 0x4FFF, &p, 0), TURN_ALLOC_FULL);
	assert_int_equal(a->nchans, TURN_MAX_CHANNELS);
}

static void test_alloc_apply_policy_drops_newly_denied_peers_only(void **state)
{
	struct turn_alloc_table *t = *state;
	struct turn_alloc *a = add(t, "192.0.2.1", 1, "alice", 0, TURN_ALLOC_OK);
	struct stun_addr p = addr4("198.51.100.7", 5000), q = addr4("203.0.113.9", 6000);
	struct config_cidr deny;
	struct turn_policy pol = {0};
	uint8_t ip[16], ipq[16];

	turn_addr_v6(&p, ip);
	turn_addr_v6(&q, ipq);
	assert_int_equal(turn_alloc_perm_add(a, ip, 1000), 0);
	assert_int_equal(turn_alloc_channel_bind(a, 0x4001, &q, 1000), 0); /* permits q too */
	/* the default policy allows both: nothing dropped */
	assert_int_equal(turn_alloc_apply_policy(a, &pol), 0);
	assert_int_equal(a->nperms, 2);
	assert_int_equal(config_parse_cidr("203.0.113.0/24", &deny), 0);
	pol.deny = &deny;
	pol.ndeny = 1;
	assert_int_equal(turn_alloc_apply_policy(a, &pol), 2); /* q's permission and channel */
	assert_true(turn_alloc_permitted(a, ip, 2000));
	assert_false(turn_alloc_permitted(a, ipq, 2000));
	assert_null(turn_alloc_channel_by_num(a, 0x4001, 2000));
	assert_null(turn_alloc_channel_by_peer(a, &q, 2000));
}

static void test_alloc_bandwidth_bucket_caps_and_refills(void **state)
{
	struct turn_alloc_table *t = *state;
	struct turn_alloc *a = add(t, "192.0.2.1", 1, "alice", 0, TURN_ALLOC_OK);
	size_t sent = 0;

	assert_true(turn_alloc_bucket_take(a, 100000, 0, 0)); /* no cap */
	/* 100 kB/s: one second's worth passes at once, then it is dropped */
	for (int i = 0; i < 200; i++)
		if (turn_alloc_bucket_take(a, 1000, 100000, 10))
			sent += 1000;
	assert_int_equal(sent, 100000);
	assert_false(turn_alloc_bucket_take(a, 1000, 100000, 10));
	/* 50 ms later: 5 kB more */
	sent = 0;
	for (int i = 0; i < 20; i++)
		if (turn_alloc_bucket_take(a, 1000, 100000, 60))
			sent += 1000;
	assert_int_equal(sent, 5000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_alloc_is_found_by_its_five_tuple_only, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_alloc_second_allocation_of_a_tuple_is_a_mismatch,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_alloc_lifetime_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_alloc_expires_and_refresh_extends, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_alloc_quota_per_user_then_total_and_release, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_quota_is_shared_by_tables, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_alloc_permissions_last_300s_and_are_per_ip, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_alloc_permission_capacity_frees_expired_entries,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_alloc_channel_binding_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_alloc_channel_capacity, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_alloc_apply_policy_drops_newly_denied_peers_only,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_alloc_bandwidth_bucket_caps_and_refills, setup,
					    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
