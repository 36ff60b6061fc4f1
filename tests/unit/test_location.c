/*
 * Unit tests for the in-memory location service (src/sip/location.h):
 * put/replace by key, remove, newest-first lookup, expiry (in lookup, in
 * location_update and in location_expire with its callback), foreach and
 * count, concurrent updates from several threads on overlapping AORs, and
 * the memory taken by 100,000 typical registrations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <malloc.h>
#include <pthread.h>

#include "core/config.h"
#include "sip/location.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ASAN 1
#endif

#ifdef HAVE_ASAN
/* ASan replaces malloc, so mallinfo2() does not see the heap: ask ASan. */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

#define NOW 1700000000

static int setup(void **state)
{
	(void)state;
	return location_init(4);
}

static int teardown(void **state)
{
	(void)state;
	location_shutdown();
	return 0;
}

static void make_binding(struct location_binding *b, const char *aor, const char *key,
			 int64_t expires, int64_t updated)
{
	memset(b, 0, sizeof(*b));
	snprintf(b->aor, sizeof(b->aor), "%s", aor);
	snprintf(b->key, sizeof(b->key), "%s", key);
	snprintf(b->contact, sizeof(b->contact), "<%s>;expires=3600", key);
	snprintf(b->contact_uri, sizeof(b->contact_uri), "%s", key);
	b->reg_id = -1;
	snprintf(b->call_id, sizeof(b->call_id), "cid-%s", key);
	b->cseq = 1;
	snprintf(b->user_agent, sizeof(b->user_agent), "test-ua/1.0");
	b->expires = expires;
	b->updated = updated;
	b->flow.transport = TRANSPORT_UDP;
	b->flow.addr.in.sin_family = AF_INET;
	b->flow.addr.in.sin_port = htons(5060);
	b->flow.addr.in.sin_addr.s_addr = htonl(0x7f000001);
	b->flow.addrlen = sizeof(struct sockaddr_in);
}

struct put_ctx {
	const struct location_binding *b;
	size_t n;
};

static int put_fn(void *vctx, struct location_aor *rec)
{
	struct put_ctx *c = vctx;
	for (size_t i = 0; i < c->n; i++)
		if (location_aor_put(rec, &c->b[i]) != 0)
			return -1;
	return 0;
}

static int put1(const struct location_binding *b, int64_t now)
{
	struct put_ctx c = {b, 1};
	return location_update(str_cstr(b->aor), now, put_fn, &c);
}

static int put(const char *aor, const char *key, int64_t expires, int64_t updated)
{
	struct location_binding b;
	make_binding(&b, aor, key, expires, updated);
	return put1(&b, NOW);
}

/* location_aor_contact of binding 0 into ctx (a struct sbuf) */
static int contact_fn(void *vctx, struct location_aor *rec)
{
	return location_aor_count(rec) ? (int)location_aor_contact(rec, 0, vctx) : -1;
}

static int remove_fn(void *vctx, struct location_aor *rec)
{
	int i = location_aor_find(rec, vctx);
	if (i < 0)
		return -1;
	location_aor_remove(rec, (size_t)i);
	return 0;
}

static size_t lookup(const char *aor, int64_t now, struct location_binding *out, size_t max)
{
	return location_lookup(str_cstr(aor), now, out, max);
}

/* ---- put, replace, remove, lookup ---- */

/* The key and Contact are kept once when they are the URI and "<URI>";
 * every combination must come back exactly as it went in. */
static void test_location_key_and_contact_round_trip_whether_or_not_derived(void **state)
{
	static const struct {
		const char *key, *contact, *uri;
	} cases[] = {
	    {"sip:a@192.0.2.1:5060", "<sip:a@192.0.2.1:5060>", "sip:a@192.0.2.1:5060"},
	    {"urn:uuid:1;reg-id=1", "<sip:b@192.0.2.2>", "sip:b@192.0.2.2"},
	    {"sip:c@192.0.2.3", "<sip:c@192.0.2.3>;+sip.instance=\"<urn:x>\"", "sip:c@192.0.2.3"},
	    {"sip:d@192.0.2.4", "sip:d@192.0.2.4", "sip:d@192.0.2.4"},
	    {"", "<>", ""},
	};
	struct location_binding b, got;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char aor[64];
		snprintf(aor, sizeof(aor), "sip:user%zu@example.com", i);
		make_binding(&b, aor, "x", NOW + 600, NOW);
		snprintf(b.key, sizeof(b.key), "%s", cases[i].key);
		snprintf(b.contact, sizeof(b.contact), "%s", cases[i].contact);
		snprintf(b.contact_uri, sizeof(b.contact_uri), "%s", cases[i].uri);
		assert_int_equal(put1(&b, NOW), 0);
		assert_int_equal(lookup(aor, NOW, &got, 1), 1);
		assert_string_equal(got.key, cases[i].key);
		assert_string_equal(got.contact, cases[i].contact);
		assert_string_equal(got.contact_uri, cases[i].uri);
		/* the Contact alone, as the 200 lists it: the same text */
		{
			char mem[300];
			struct sbuf sb;

			sbuf_init(&sb, mem, sizeof(mem));
			assert_int_equal(location_update(str_cstr(aor), NOW, contact_fn, &sb),
					 NOW + 600);
			assert_string_equal(sbuf_cstr(&sb), cases[i].contact);
		}
		/* found by its key whether stored or derived */
		assert_int_equal(
		    location_update(str_cstr(aor), NOW, remove_fn, (void *)cases[i].key), 0);
		assert_int_equal(lookup(aor, NOW, &got, 1), 0);
	}
}

static void test_location_put_then_lookup_copies_every_field(void **state)
{
	struct location_binding b, out[2];

	(void)state;
	make_binding(&b, "sip:alice@example.com",
		     "<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>;1", NOW + 3600, NOW);
	snprintf(b.contact_uri, sizeof(b.contact_uri), "sip:alice@192.0.2.4:5060;transport=tcp");
	snprintf(b.instance, sizeof(b.instance), "<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>");
	b.reg_id = 1;
	snprintf(b.path, sizeof(b.path), "<sip:edge.example.com;lr>");
	b.cseq = 42;
	b.flow.transport = TRANSPORT_TCP;
	b.flow.conn_id = 77;
	b.flow.listen_idx = 2;
	assert_int_equal(put1(&b, NOW), 0);
	assert_int_equal(location_count(), 1);
	memset(out, 0x55, sizeof(out));
	assert_int_equal(lookup("sip:alice@example.com", NOW, out, 2), 1);
	assert_string_equal(out[0].aor, "sip:alice@example.com");
	assert_string_equal(out[0].key, b.key);
	assert_string_equal(out[0].contact, b.contact);
	assert_string_equal(out[0].contact_uri, b.contact_uri);
	assert_string_equal(out[0].instance, b.instance);
	assert_int_equal(out[0].reg_id, 1);
	assert_string_equal(out[0].path, b.path);
	assert_string_equal(out[0].call_id, b.call_id);
	assert_int_equal(out[0].cseq, 42);
	assert_string_equal(out[0].user_agent, b.user_agent);
	assert_int_equal(out[0].expires, NOW + 3600);
	assert_int_equal(out[0].updated, NOW);
	assert_int_equal(out[0].flow.transport, TRANSPORT_TCP);
	assert_int_equal(out[0].flow.conn_id, 77);
	assert_int_equal(out[0].flow.listen_idx, 2);
	assert_int_equal(out[0].flow.addrlen, sizeof(struct sockaddr_in));
	assert_memory_equal(&out[0].flow.addr.in, &b.flow.addr.in, sizeof(struct sockaddr_in));
}

/* The stored expiry is kept as a lag behind the expiry: every value the
 * registrar may give comes back, and what cannot be kept reads as unknown (0),
 * which makes the next refresh write the row. */
static void test_location_stored_expires_round_trips_or_reads_unknown(void **state)
{
	const int64_t stored[] = {NOW + 3600, NOW + 1800, NOW + 1, 0, NOW + 7200, NOW - 5};
	const int64_t want[] = {NOW + 3600, NOW + 1800, NOW + 1, 0, 0, NOW - 5};
	struct location_binding b, out;

	(void)state;
	for (size_t i = 0; i < sizeof(stored) / sizeof(stored[0]); i++) {
		make_binding(&b, "sip:alice@example.com", "sip:alice@192.0.2.4", NOW + 3600, NOW);
		b.stored_expires = stored[i];
		assert_int_equal(put1(&b, NOW), 0);
		assert_int_equal(lookup("sip:alice@example.com", NOW, &out, 1), 1);
		assert_int_equal(out.stored_expires, want[i]);
	}
}

/* Bindings keep their flow packed: an IPv6 source with its scope and a
 * flow without an address come back as they were put. */
static void test_location_ipv6_and_addressless_flows_round_trip(void **state)
{
	struct location_binding b, out;
	static const uint8_t v6[16] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7};

	(void)state;
	make_binding(&b, "sip:alice@example.com", "sip:alice@[fe80::7]", NOW + 600, NOW);
	memset(&b.flow, 0, sizeof(b.flow));
	b.flow.transport = TRANSPORT_TLS;
	b.flow.addr.in6.sin6_family = AF_INET6;
	b.flow.addr.in6.sin6_port = htons(5061);
	b.flow.addr.in6.sin6_scope_id = 3;
	memcpy(&b.flow.addr.in6.sin6_addr, v6, 16);
	b.flow.addrlen = sizeof(struct sockaddr_in6);
	b.flow.conn_id = (2ull << 48) | 99;
	b.flow.listen_idx = 5;
	assert_int_equal(put1(&b, NOW), 0);
	assert_int_equal(lookup("sip:alice@example.com", NOW, &out, 1), 1);
	assert_int_equal(out.flow.transport, TRANSPORT_TLS);
	assert_int_equal(out.flow.addrlen, sizeof(struct sockaddr_in6));
	assert_int_equal(out.flow.addr.in6.sin6_family, AF_INET6);
	assert_int_equal(out.flow.addr.in6.sin6_port, htons(5061));
	assert_int_equal(out.flow.addr.in6.sin6_scope_id, 3);
	assert_memory_equal(&out.flow.addr.in6.sin6_addr, v6, 16);
	assert_true(out.flow.conn_id == ((2ull << 48) | 99));
	assert_int_equal(out.flow.listen_idx, 5);

	memset(&b.flow, 0, sizeof(b.flow));
	b.flow.transport = TRANSPORT_TCP;
	b.flow.listen_idx = -1;
	assert_int_equal(put1(&b, NOW), 0);
	assert_int_equal(lookup("sip:alice@example.com", NOW, &out, 1), 1);
	assert_int_equal(out.flow.transport, TRANSPORT_TCP);
	assert_int_equal(out.flow.addrlen, 0);
	assert_int_equal(out.flow.listen_idx, -1);
	assert_int_equal(out.flow.addr.sa.sa_family, 0);
}

static void test_location_lookup_of_unknown_aor_finds_nothing(void **state)
{
	struct location_binding out[1];

	(void)state;
	assert_int_equal(put("sip:alice@example.com", "sip:a@192.0.2.1", NOW + 60, NOW), 0);
	assert_int_equal(lookup("sip:bob@example.com", NOW, out, 1), 0);
	assert_int_equal(lookup("sip:alice@example.co", NOW, out, 1), 0);
	assert_int_equal(lookup("sip:alice@example.comx", NOW, out, 1), 0);
	assert_int_equal(lookup("SIP:alice@example.com", NOW, out, 1), 0);
	assert_int_equal(lookup("sip:alice@example.com", NOW, out, 0), 0);
}

static void test_location_put_with_same_key_replaces(void **state)
{
	struct location_binding b, out[4];

	(void)state;
	assert_int_equal(put("sip:alice@example.com", "sip:a@192.0.2.1", NOW + 60, NOW), 0);
	make_binding(&b, "sip:alice@example.com", "sip:a@192.0.2.1", NOW + 120, NOW + 1);
	b.cseq = 2;
	snprintf(b.user_agent, sizeof(b.user_agent), "new-ua");
	assert_int_equal(put1(&b, NOW + 1), 0);
	assert_int_equal(location_count(), 1);
	assert_int_equal(lookup("sip:alice@example.com", NOW + 1, out, 4), 1);
	assert_int_equal(out[0].cseq, 2);
	assert_int_equal(out[0].expires, NOW + 120);
	assert_string_equal(out[0].user_agent, "new-ua");
	/* a different key is a second binding */
	assert_int_equal(put("sip:alice@example.com", "sip:a@192.0.2.2", NOW + 60, NOW), 0);
	assert_int_equal(location_count(), 2);
	assert_int_equal(lookup("sip:alice@example.com", NOW + 1, out, 4), 2);
}

static void test_location_remove_by_key_drops_only_that_binding(void **state)
{
	struct location_binding out[4];

	(void)state;
	assert_int_equal(put("sip:alice@example.com", "k1", NOW + 60, NOW), 0);
	assert_int_equal(put("sip:alice@example.com", "k2", NOW + 60, NOW + 1), 0);
	assert_int_equal(put("sip:alice@example.com", "k3", NOW + 60, NOW + 2), 0);
	assert_int_equal(location_update(STR_LIT("sip:alice@example.com"), NOW, remove_fn, "k2"),
			 0);
	assert_int_equal(location_count(), 2);
	assert_int_equal(lookup("sip:alice@example.com", NOW, out, 4), 2);
	assert_string_equal(out[0].key, "k3");
	assert_string_equal(out[1].key, "k1");
	/* removing a missing key: fn's value comes back, nothing changes */
	assert_int_equal(location_update(STR_LIT("sip:alice@example.com"), NOW, remove_fn, "k2"),
			 -1);
	assert_int_equal(location_count(), 2);
	assert_int_equal(location_update(STR_LIT("sip:alice@example.com"), NOW, remove_fn, "k1"),
			 0);
	assert_int_equal(location_update(STR_LIT("sip:alice@example.com"), NOW, remove_fn, "k3"),
			 0);
	assert_int_equal(location_count(), 0);
	assert_int_equal(lookup("sip:alice@example.com", NOW, out, 4), 0);
}

static void test_location_lookup_returns_newest_first(void **state)
{
	static const int order[] = {3, 0, 4, 1, 2};
	struct location_binding out[8];
	char key[32];

	(void)state;
	for (size_t i = 0; i < 5; i++) {
		snprintf(key, sizeof(key), "k%d", order[i]);
		assert_int_equal(put("sip:alice@example.com", key, NOW + 600, NOW + order[i]), 0);
	}
	assert_int_equal(lookup("sip:alice@example.com", NOW, out, 8), 5);
	for (int i = 0; i < 5; i++) {
		snprintf(key, sizeof(key), "k%d", 4 - i);
		assert_string_equal(out[i].key, key);
	}
	/* max cuts the oldest, never the newest */
	assert_int_equal(lookup("sip:alice@example.com", NOW, out, 2), 2);
	assert_string_equal(out[0].key, "k4");
	assert_string_equal(out[1].key, "k3");
	assert_int_equal(lookup("sip:alice@example.com", NOW, out, 1), 1);
	assert_string_equal(out[0].key, "k4");
}

/* Two devices registering within one second: the one that registered (or
 * refreshed) last is the newest, whatever the storage order. */
static void test_location_lookup_same_second_newest_is_the_last_put(void **state)
{
	struct location_binding out[4];

	(void)state;
	assert_int_equal(put("sip:alice@example.com", "k-a", NOW + 600, NOW), 0);
	assert_int_equal(put("sip:alice@example.com", "k-b", NOW + 600, NOW), 0);
	assert_int_equal(lookup("sip:alice@example.com", NOW, out, 4), 2);
	assert_string_equal(out[0].key, "k-b");
	assert_int_equal(lookup("sip:alice@example.com", NOW, out, 1), 1);
	assert_string_equal(out[0].key, "k-b");
	/* k-a refreshes in the same second: now it is the newest */
	assert_int_equal(put("sip:alice@example.com", "k-a", NOW + 600, NOW), 0);
	assert_int_equal(lookup("sip:alice@example.com", NOW, out, 4), 2);
	assert_string_equal(out[0].key, "k-a");
	assert_string_equal(out[1].key, "k-b");
	assert_int_equal(lookup("sip:alice@example.com", NOW, out, 1), 1);
	assert_string_equal(out[0].key, "k-a");
}

static void test_location_lookup_newest_first_after_removals_reorder_storage(void **state)
{
	struct location_binding out[8];
	char key[32];

	(void)state;
	for (int i = 0; i < 6; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(put("sip:a@x", key, NOW + 600, NOW + i), 0);
	}
	/* removal moves the last binding into the hole */
	assert_int_equal(location_update(STR_LIT("sip:a@x"), NOW, remove_fn, "k1"), 0);
	assert_int_equal(lookup("sip:a@x", NOW, out, 8), 5);
	assert_string_equal(out[0].key, "k5");
	assert_string_equal(out[1].key, "k4");
	assert_string_equal(out[2].key, "k3");
	assert_string_equal(out[3].key, "k2");
	assert_string_equal(out[4].key, "k0");
}

/* ---- expiry ---- */

static void test_location_lookup_skips_expired_bindings(void **state)
{
	struct location_binding out[4];

	(void)state;
	assert_int_equal(put("sip:alice@example.com", "old", NOW + 10, NOW + 5), 0);
	assert_int_equal(put("sip:alice@example.com", "new", NOW + 100, NOW), 0);
	assert_int_equal(lookup("sip:alice@example.com", NOW + 9, out, 4), 2);
	assert_string_equal(out[0].key, "old"); /* newer "updated" comes first */
	/* expires <= now is gone */
	assert_int_equal(lookup("sip:alice@example.com", NOW + 10, out, 4), 1);
	assert_string_equal(out[0].key, "new");
	assert_int_equal(lookup("sip:alice@example.com", NOW + 100, out, 4), 0);
}

static int count_fn(void *vctx, struct location_aor *rec)
{
	*(size_t *)vctx = location_aor_count(rec);
	return 7;
}

static void test_location_update_sees_only_live_bindings_and_drops_expired(void **state)
{
	size_t n = 99;

	(void)state;
	assert_int_equal(put("sip:alice@example.com", "a", NOW + 10, NOW), 0);
	assert_int_equal(put("sip:alice@example.com", "b", NOW + 20, NOW), 0);
	assert_int_equal(location_update(STR_LIT("sip:alice@example.com"), NOW + 10, count_fn, &n),
			 7);
	assert_int_equal(n, 1);
	assert_int_equal(location_count(), 1);
	assert_int_equal(location_update(STR_LIT("sip:alice@example.com"), NOW + 20, count_fn, &n),
			 7);
	assert_int_equal(n, 0);
	assert_int_equal(location_count(), 0);
	/* an update that adds nothing leaves no empty AOR behind */
	assert_int_equal(location_update(STR_LIT("sip:nobody@example.com"), NOW, count_fn, &n), 7);
	assert_int_equal(n, 0);
}

struct expired_log {
	size_t n;
	char keys[16][32];
	char aors[16][64];
	size_t count_seen[16];
};

static void expired_cb(void *vctx, const struct location_binding *b)
{
	struct expired_log *l = vctx;
	if (l->n < 16) {
		snprintf(l->keys[l->n], sizeof(l->keys[0]), "%s", b->key);
		snprintf(l->aors[l->n], sizeof(l->aors[0]), "%s", b->aor);
		l->count_seen[l->n] = location_count();
	}
	l->n++;
}

static void test_location_expire_drops_due_bindings_and_tells_the_callback(void **state)
{
	struct expired_log l;
	struct location_binding out[4];

	(void)state;
	memset(&l, 0, sizeof(l));
	assert_int_equal(put("sip:alice@example.com", "a1", NOW + 10, NOW), 0);
	assert_int_equal(put("sip:alice@example.com", "a2", NOW + 30, NOW), 0);
	assert_int_equal(put("sip:bob@example.com", "b1", NOW + 5, NOW), 0);
	assert_int_equal(put("sip:carol@example.com", "c1", NOW + 60, NOW), 0);
	assert_int_equal(location_expire(NOW + 4, expired_cb, &l), 0);
	assert_int_equal(l.n, 0);
	assert_int_equal(location_expire(NOW + 10, expired_cb, &l), 2);
	assert_int_equal(l.n, 2);
	assert_int_equal(location_count(), 2);
	/* the callback gets a full copy, with the AOR */
	for (size_t i = 0; i < 2; i++) {
		if (strcmp(l.keys[i], "a1") == 0)
			assert_string_equal(l.aors[i], "sip:alice@example.com");
		else if (strcmp(l.keys[i], "b1") == 0)
			assert_string_equal(l.aors[i], "sip:bob@example.com");
		else
			fail_msg("unexpected expired key %s", l.keys[i]);
	}
	assert_int_equal(lookup("sip:bob@example.com", NOW, out, 4), 0);
	assert_int_equal(lookup("sip:alice@example.com", NOW, out, 4), 1);
	assert_string_equal(out[0].key, "a2");
	/* sweeps skip shards with nothing due: a binding added, or refreshed
	 * to a shorter expiry, after a sweep must still be found by the next */
	assert_int_equal(put("sip:carol@example.com", "c2", NOW + 12, NOW), 0);
	assert_int_equal(put("sip:carol@example.com", "c1", NOW + 11, NOW), 0);
	assert_int_equal(location_expire(NOW + 11, expired_cb, &l), 1);
	assert_int_equal(location_expire(NOW + 12, expired_cb, &l), 1);
	assert_int_equal(l.n, 4);
	assert_int_equal(location_count(), 1);
	assert_int_equal(put("sip:dave@example.com", "d1", NOW + 40, NOW), 0);
	/* without a callback */
	assert_int_equal(location_expire(NOW + 1000, NULL, NULL), 2);
	assert_int_equal(location_count(), 0);
	assert_int_equal(location_expire(NOW + 2000, expired_cb, &l), 0);
}

/*
 * Regression (fixed in b819055; was location_expire): location.h promises
 * that fn "is told about each, after it was removed", but fn runs before
 * location_aor_remove() (and under the shard lock): inside fn,
 * location_count() still counts the binding. With 1 binding, fn sees
 * location_count() == 1, expected 0. It also means fn must never call a
 * location function (deadlock), and the daemon's expired_one() logs under
 * the shard lock although location.c says never to call out holding it.
 */
static void test_location_expire_calls_back_after_removal(void **state)
{
	struct expired_log l;

	(void)state;
	memset(&l, 0, sizeof(l));
	assert_int_equal(put("sip:alice@example.com", "a1", NOW + 10, NOW), 0);
	assert_int_equal(location_expire(NOW + 10, expired_cb, &l), 1);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.count_seen[0], 0);
}

/* ---- update callbacks ---- */

struct swap_ctx {
	const char *drop;
	struct location_binding add;
	size_t seen;
};

static int swap_fn(void *vctx, struct location_aor *rec)
{
	struct swap_ctx *c = vctx;
	struct location_binding b;
	int i;

	c->seen = location_aor_count(rec);
	for (size_t k = 0; k < location_aor_count(rec); k++) {
		location_aor_get(rec, k, &b);
		assert_string_equal(b.aor, c->add.aor);
	}
	i = location_aor_find(rec, c->drop);
	if (i >= 0)
		location_aor_remove(rec, (size_t)i);
	assert_int_equal(location_aor_find(rec, c->drop), -1);
	assert_int_equal(location_aor_put(rec, &c->add), 0);
	assert_true(location_aor_find(rec, c->add.key) >= 0);
	return 3;
}

static void test_location_update_callback_adds_and_removes_in_one_step(void **state)
{
	struct swap_ctx c = {.drop = "old"};
	struct location_binding out[4];

	(void)state;
	assert_int_equal(put("sip:alice@example.com", "old", NOW + 60, NOW), 0);
	assert_int_equal(put("sip:alice@example.com", "keep", NOW + 60, NOW), 0);
	make_binding(&c.add, "sip:alice@example.com", "new", NOW + 60, NOW + 5);
	assert_int_equal(location_update(STR_LIT("sip:alice@example.com"), NOW, swap_fn, &c), 3);
	assert_int_equal(c.seen, 2);
	assert_int_equal(location_count(), 2);
	assert_int_equal(lookup("sip:alice@example.com", NOW, out, 4), 2);
	assert_string_equal(out[0].key, "new");
	assert_string_equal(out[1].key, "keep");
}

static void test_location_aor_find_matches_whole_keys_only(void **state)
{
	struct location_binding b[3];
	struct put_ctx c = {b, 3};
	size_t n;

	(void)state;
	make_binding(&b[0], "sip:a@x", "sip:a@192.0.2.1", NOW + 60, NOW);
	make_binding(&b[1], "sip:a@x", "sip:a@192.0.2.10", NOW + 60, NOW);
	make_binding(&b[2], "sip:a@x", "", NOW + 60, NOW);
	assert_int_equal(location_update(STR_LIT("sip:a@x"), NOW, put_fn, &c), 0);
	assert_int_equal(location_update(STR_LIT("sip:a@x"), NOW, count_fn, &n), 7);
	assert_int_equal(n, 3);
	assert_int_equal(location_count(), 3);
	assert_int_equal(location_update(STR_LIT("sip:a@x"), NOW, remove_fn, "sip:a@192.0.2"), -1);
	assert_int_equal(location_update(STR_LIT("sip:a@x"), NOW, remove_fn, "sip:a@192.0.2.10"),
			 0);
	assert_int_equal(location_update(STR_LIT("sip:a@x"), NOW, remove_fn, ""), 0);
	assert_int_equal(location_count(), 1);
}

/* ---- many bindings per AOR ---- */

static void put_many(const char *aor, int n, int newest_at)
{
	/* binding i has updated NOW + i, except newest_at which is newest */
	for (int i = 0; i < n; i++) {
		char key[32];
		snprintf(key, sizeof(key), "k%03d", i);
		assert_int_equal(put(aor, key, NOW + 600, i == newest_at ? NOW + 10000 : NOW + i),
				 0);
	}
}

static void test_location_lookup_with_many_bindings_returns_live_sorted_distinct(void **state)
{
	struct location_binding *out = calloc(200, sizeof(*out));
	size_t n;

	(void)state;
	assert_non_null(out);
	put_many("sip:busy@example.com", 100, -1);
	assert_int_equal(location_count(), 100);
	n = lookup("sip:busy@example.com", NOW, out, 200);
	/* at most 64 come back (a fixed bound on the work done under the lock) */
	assert_true(n >= 1 && n <= 64);
	for (size_t i = 1; i < n; i++) {
		assert_true(out[i - 1].updated >= out[i].updated);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(out[i].key, out[j].key);
	}
	assert_int_equal(lookup("sip:busy@example.com", NOW, out, 10), 10);
	free(out);
}

/*
 * Regression (fixed in b819055; was location_lookup): the scan stops after the
 * first 64 live bindings in storage order (`n < 64`), so with more than 64
 * bindings the newest one is missed when it is stored after them. 100
 * bindings of one AOR, updated NOW+i, put in order: lookup(max=1) returns
 * k063 instead of k099. max_contacts may be configured up to 1000, and the
 * proxy routes with location_lookup(.., 1) to the "newest" binding.
 */
static void test_location_lookup_with_more_than_64_bindings_returns_the_newest(void **state)
{
	struct location_binding out[1];

	(void)state;
	put_many("sip:busy@example.com", 100, -1);
	assert_int_equal(lookup("sip:busy@example.com", NOW, out, 1), 1);
	assert_string_equal(out[0].key, "k099");
}

static void test_location_lookup_with_64_bindings_returns_the_newest(void **state)
{
	struct location_binding out[2];

	(void)state;
	put_many("sip:busy@example.com", 64, 40);
	assert_int_equal(lookup("sip:busy@example.com", NOW, out, 2), 2);
	assert_string_equal(out[0].key, "k040");
	assert_string_equal(out[1].key, "k063");
}

/* ---- foreach, count ---- */

struct seen_set {
	size_t n;
	char names[64][80];
};

static void foreach_cb(void *vctx, const struct location_binding *b)
{
	struct seen_set *s = vctx;
	if (s->n < 64)
		snprintf(s->names[s->n], sizeof(s->names[0]), "%s|%s", b->aor, b->key);
	s->n++;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void test_location_foreach_visits_every_binding_once(void **state)
{
	struct seen_set s;
	char aor[32], key[32];

	(void)state;
	memset(&s, 0, sizeof(s));
	location_foreach(foreach_cb, &s);
	assert_int_equal(s.n, 0);
	for (int a = 0; a < 10; a++)
		for (int k = 0; k <= a % 4; k++) {
			snprintf(aor, sizeof(aor), "sip:u%d@x", a);
			snprintf(key, sizeof(key), "c%d", k);
			assert_int_equal(put(aor, key, NOW + 60, NOW), 0);
		}
	assert_int_equal(location_count(), 1 + 2 + 3 + 4 + 1 + 2 + 3 + 4 + 1 + 2);
	location_foreach(foreach_cb, &s);
	assert_int_equal(s.n, location_count());
	qsort(s.names, s.n, sizeof(s.names[0]), cmp_names);
	for (size_t i = 1; i < s.n; i++)
		assert_string_not_equal(s.names[i - 1], s.names[i]);
	assert_string_equal(s.names[0], "sip:u0@x|c0");
	assert_string_equal(s.names[s.n - 1], "sip:u9@x|c1");
}

static void test_location_count_follows_puts_replaces_and_removes(void **state)
{
	char aor[32];

	(void)state;
	assert_int_equal(location_count(), 0);
	for (int i = 0; i < 500; i++) {
		snprintf(aor, sizeof(aor), "sip:user%d@example.com", i);
		assert_int_equal(put(aor, "c", NOW + 60, NOW), 0);
	}
	assert_int_equal(location_count(), 500);
	for (int i = 0; i < 500; i++) {
		snprintf(aor, sizeof(aor), "sip:user%d@example.com", i);
		assert_int_equal(put(aor, "c", NOW + 120, NOW), 0);
	}
	assert_int_equal(location_count(), 500);
	for (int i = 0; i < 500; i += 2) {
		snprintf(aor, sizeof(aor), "sip:user%d@example.com", i);
		assert_int_equal(location_update(str_cstr(aor), NOW, remove_fn, "c"), 0);
	}
	assert_int_equal(location_count(), 250);
	/* the shard tables grew past 64 buckets: everything is still found */
	for (int i = 0; i < 500; i++) {
		struct location_binding out[1];
		snprintf(aor, sizeof(aor), "sip:user%d@example.com", i);
		assert_int_equal(lookup(aor, NOW, out, 1), i % 2 ? 1 : 0);
	}
}

/* ---- concurrency ---- */

#define C_THREADS 4
#define C_AORS	  16
#define C_ROUNDS  3000

/*
 * Each thread owns keys "t<tid>-<k>" (k < 50) spread over 16 shared AORs.
 * It puts, replaces and removes them in a fixed pattern; at the end key k of
 * thread t exists iff (k % 3) != 0, with cseq = the last round that put it.
 */
static void *c_worker(void *arg)
{
	int tid = (int)(intptr_t)arg;
	struct location_binding *b = malloc(sizeof(*b));
	char aor[32], key[32];

	if (!b)
		return (void *)1;
	for (int r = 0; r < C_ROUNDS; r++) {
		int k = r % 50;
		snprintf(aor, sizeof(aor), "sip:shared%d@example.com", k % C_AORS);
		snprintf(key, sizeof(key), "t%d-%d", tid, k);
		if (k % 3 == 0 && r >= C_ROUNDS - 50) {
			if (location_update(str_cstr(aor), NOW, remove_fn, key) != 0) {
				free(b);
				return (void *)2;
			}
			continue;
		}
		make_binding(b, aor, key, NOW + 3600, NOW + r);
		b->cseq = (uint32_t)r;
		if (put1(b, NOW) != 0) {
			free(b);
			return (void *)3;
		}
		if (r % 7 == 0) {
			struct location_binding out[8];
			size_t n = lookup(aor, NOW, out, 8);
			if (n == 0) {
				free(b);
				return (void *)4;
			}
		}
	}
	free(b);
	return NULL;
}

struct c_check {
	int seen[C_THREADS][50];
	uint32_t cseq[C_THREADS][50];
	int bad;
};

static void c_check_cb(void *vctx, const struct location_binding *b)
{
	struct c_check *c = vctx;
	int t, k;
	char aor[32];

	if (sscanf(b->key, "t%d-%d", &t, &k) != 2 || t < 0 || t >= C_THREADS || k < 0 || k >= 50) {
		c->bad++;
		return;
	}
	snprintf(aor, sizeof(aor), "sip:shared%d@example.com", k % C_AORS);
	if (strcmp(aor, b->aor) != 0)
		c->bad++;
	c->seen[t][k]++;
	c->cseq[t][k] = b->cseq;
}

static void test_location_concurrent_updates_lose_and_duplicate_nothing(void **state)
{
	pthread_t th[C_THREADS];
	struct c_check *c = calloc(1, sizeof(*c));
	size_t expect = 0;

	(void)state;
	assert_non_null(c);
	for (int i = 0; i < C_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, c_worker, (void *)(intptr_t)i), 0);
	for (int i = 0; i < C_THREADS; i++) {
		void *r;
		pthread_join(th[i], &r);
		assert_null(r);
	}
	location_foreach(c_check_cb, c);
	assert_int_equal(c->bad, 0);
	for (int t = 0; t < C_THREADS; t++)
		for (int k = 0; k < 50; k++) {
			int last = C_ROUNDS - 1 - ((C_ROUNDS - 1 - k) % 50);
			if (k % 3 == 0) {
				assert_int_equal(c->seen[t][k], 0);
				continue;
			}
			expect++;
			assert_int_equal(c->seen[t][k], 1);
			assert_int_equal(c->cseq[t][k], (uint32_t)last);
		}
	assert_int_equal(location_count(), expect);
	free(c);
}

/* ---- memory ---- */

static size_t heap_in_use(void)
{
#ifdef HAVE_ASAN
	return __sanitizer_get_current_allocated_bytes();
#else
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
#endif
}

#define MEM_BINDINGS 100000

static void test_location_100k_typical_bindings_fit_under_100mb(void **state)
{
	struct location_binding *b = malloc(sizeof(*b));
	char aor[64];
	size_t before, after;
	double per;

	(void)state;
	assert_non_null(b);
	before = heap_in_use();
	for (int i = 0; i < MEM_BINDINGS; i++) {
		memset(b, 0, sizeof(*b));
		snprintf(aor, sizeof(aor), "sip:user%06d@example.com", i); /* 28 bytes */
		snprintf(b->aor, sizeof(b->aor), "%s", aor);
		/* contact ~60 bytes, key = contact URI, call-id ~40, user agent ~20 */
		snprintf(b->contact_uri, sizeof(b->contact_uri),
			 "sip:user%06d@198.51.100.%d:5060;transport=udp", i, i % 250);
		snprintf(b->contact, sizeof(b->contact), "<%s>;expires=3600", b->contact_uri);
		snprintf(b->key, sizeof(b->key), "%s", b->contact_uri);
		snprintf(b->call_id, sizeof(b->call_id), "%08x-%08x-4c1d-9a2e@198.51.100.%d",
			 (unsigned)i * 2654435761u, (unsigned)i, i % 250);
		snprintf(b->user_agent, sizeof(b->user_agent), "Linphone/5.2.0 (x%d)", i % 10);
		b->reg_id = -1;
		b->cseq = 1;
		b->expires = NOW + 3600;
		b->updated = NOW;
		b->flow.transport = TRANSPORT_UDP;
		b->flow.addr.in.sin_family = AF_INET;
		b->flow.addrlen = sizeof(struct sockaddr_in);
		assert_int_equal(put1(b, NOW), 0);
	}
	after = heap_in_use();
	assert_int_equal(location_count(), MEM_BINDINGS);
	per = (double)(after - before) / MEM_BINDINGS;
	print_message("# location: %d bindings (one per AOR) use %.1f MB of heap, %.0f bytes "
		      "per binding (%s)\n",
		      MEM_BINDINGS, (double)(after - before) / 1e6, per,
#ifdef HAVE_ASAN
		      "ASan allocator"
#else
		      "mallinfo2"
#endif
	);
	assert_true(after > before);
	assert_true(after - before < (size_t)100 * 1000 * 1000);
	/* far below the 2.7 KB of a struct location_binding */
	assert_true(per < sizeof(struct location_binding) / 2);
	free(b);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_location_put_then_lookup_copies_every_field),
	    T(test_location_key_and_contact_round_trip_whether_or_not_derived),
	    T(test_location_lookup_of_unknown_aor_finds_nothing),
	    T(test_location_ipv6_and_addressless_flows_round_trip),
	    T(test_location_stored_expires_round_trips_or_reads_unknown),
	    T(test_location_put_with_same_key_replaces),
	    T(test_location_remove_by_key_drops_only_that_binding),
	    T(test_location_lookup_returns_newest_first),
	    T(test_location_lookup_same_second_newest_is_the_last_put),
	    T(test_location_lookup_newest_first_after_removals_reorder_storage),
	    T(test_location_lookup_skips_expired_bindings),
	    T(test_location_update_sees_only_live_bindings_and_drops_expired),
	    T(test_location_expire_drops_due_bindings_and_tells_the_callback),
	    T(test_location_expire_calls_back_after_removal),
	    T(test_location_update_callback_adds_and_removes_in_one_step),
	    T(test_location_aor_find_matches_whole_keys_only),
	    T(test_location_lookup_with_many_bindings_returns_live_sorted_distinct),
	    T(test_location_lookup_with_more_than_64_bindings_returns_the_newest),
	    T(test_location_lookup_with_64_bindings_returns_the_newest),
	    T(test_location_foreach_visits_every_binding_once),
	    T(test_location_count_follows_puts_replaces_and_removes),
	    T(test_location_concurrent_updates_lose_and_duplicate_nothing),
	    T(test_location_100k_typical_bindings_fit_under_100mb),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
