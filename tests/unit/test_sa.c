/*
 * Security associations (src/auth/sa.h): lifecycle, the cnum window,
 * expiry, the bound on pending entries, reference counting, and concurrent
 * use. The mechanism is a fake: HMAC-SHA256 under a fixed key, with a
 * counter of freed contexts so that every test can check that each context
 * is freed exactly once (ASan checks the rest).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>

#include "auth/sa.h"

#define T0 1700000000ULL

/* ---- the fake mechanism ------------------------------------------------------ */

static atomic_int ctx_alloc, ctx_freed;

struct fake {
	uint8_t key[32];
	int id;
};

static int fake_sign(void *ctx, const uint8_t *buf, size_t len, uint8_t *mac, size_t cap,
		     size_t *mac_len)
{
	struct fake *f = ctx;
	unsigned int l = 0;

	if (cap < 32 || !HMAC(EVP_sha256(), f->key, sizeof(f->key), buf, len, mac, &l))
		return -1;
	*mac_len = l;
	return 0;
}

static int fake_verify(void *ctx, const uint8_t *buf, size_t len, const uint8_t *mac,
		       size_t mac_len)
{
	uint8_t want[32];
	size_t n = 0;

	if (mac_len != 32 || fake_sign(ctx, buf, len, want, sizeof(want), &n) != 0)
		return -1;
	return CRYPTO_memcmp(want, mac, 32) == 0 ? 0 : -1;
}

static void fake_free(void *ctx)
{
	atomic_fetch_add(&ctx_freed, 1);
	free(ctx);
}

static const struct sa_mech fake_mech = {fake_sign, fake_verify, fake_free};

static struct fake *fake_new(int id)
{
	struct fake *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	memset(f->key, 0x5a, sizeof(f->key));
	f->id = id;
	atomic_fetch_add(&ctx_alloc, 1);
	return f;
}

/* The hex MAC the client would send for buf. */
static void client_mac(const char *buf, char out[65])
{
	uint8_t key[32], mac[32];
	unsigned int l = 0;

	memset(key, 0x5a, sizeof(key));
	HMAC(EVP_sha256(), key, sizeof(key), (const uint8_t *)buf, strlen(buf), mac, &l);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02X", mac[i]);
}

static int verify_buf(struct sa *sa, uint32_t cnum, const char *buf, uint64_t now)
{
	char mac[65];

	client_mac(buf, mac);
	return sa_verify(sa, cnum, (const uint8_t *)buf, strlen(buf), str_cstr(mac), now);
}

static int verify_n(struct sa *sa, uint32_t cnum, uint64_t now)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "<NTLM><0A0B0C0D><%u><msg>", (unsigned)cnum);
	return verify_buf(sa, cnum, buf, now);
}

static struct sa_info base_info(void)
{
	struct sa_info i;

	memset(&i, 0, sizeof(i));
	i.scheme = SA_SCHEME_NTLM;
	strcpy(i.realm, "SIP Communications Service");
	strcpy(i.targetname, "fe01.example.test");
	i.version = 4;
	strcpy(i.user, "sip:alice@example.test");
	strcpy(i.instance, "urn:uuid:1");
	return i;
}

static struct sa *create(struct sa_table *t, const char *user, uint64_t cred_exp, uint64_t now)
{
	struct sa_info i = base_info();
	struct sa *sa;

	snprintf(i.user, sizeof(i.user), "%s", user);
	sa = sa_create(t, &i, &fake_mech, fake_new(0), cred_exp, now);
	assert_non_null(sa);
	return sa;
}

static int setup(void **state)
{
	(void)state;
	atomic_store(&ctx_alloc, 0);
	atomic_store(&ctx_freed, 0);
	return 0;
}

/* every context allocated was freed exactly once */
static int teardown(void **state)
{
	(void)state;
	assert_int_equal(atomic_load(&ctx_alloc), atomic_load(&ctx_freed));
	return 0;
}

/* ---- lifecycle --------------------------------------------------------------- */

static void test_sa_begin_gives_pending_sa_with_unique_upper_hex_opaque(void **state)
{
	struct sa_table *t = sa_table_new(0);
	struct sa_info info = base_info(), got;
	struct sa *sa[50];

	(void)state;
	assert_non_null(t);
	for (int i = 0; i < 50; i++) {
		sa[i] = sa_begin(t, &info, &fake_mech, fake_new(i), T0);
		assert_non_null(sa[i]);
		const char *o = sa_opaque(sa[i]);
		assert_int_equal(strlen(o), SA_OPAQUE_LEN);
		for (int k = 0; k < SA_OPAQUE_LEN; k++)
			assert_true((o[k] >= '0' && o[k] <= '9') || (o[k] >= 'A' && o[k] <= 'F'));
		for (int j = 0; j < i; j++)
			assert_string_not_equal(o, sa_opaque(sa[j]));
	}
	sa_get_info(sa[0], &got);
	assert_int_equal(got.state, SA_PENDING);
	assert_string_equal(got.user, ""); /* empty while pending */
	assert_string_equal(got.realm, "SIP Communications Service");
	assert_string_equal(got.targetname, "fe01.example.test");
	assert_int_equal(got.version, 4);
	assert_int_equal(got.created, T0);
	assert_int_equal(got.expires, T0 + SA_PENDING_TTL);
	size_t p, e;
	sa_count(t, &p, &e);
	assert_int_equal(p, 50);
	assert_int_equal(e, 0);
	for (int i = 0; i < 50; i++)
		sa_put(sa[i]);
	sa_table_free(t);
}

static void test_sa_find_by_opaque_any_case_and_not_by_others(void **state)
{
	struct sa_table *t = sa_table_new(0);
	struct sa *sa = create(t, "sip:alice@example.test", 0, T0), *f;
	char lower[9];

	(void)state;
	for (int i = 0; i < 9; i++)
		lower[i] =
		    (char)(sa_opaque(sa)[i] >= 'A' ? sa_opaque(sa)[i] + 32 : sa_opaque(sa)[i]);
	f = sa_find(t, str_cstr(sa_opaque(sa)), T0);
	assert_ptr_equal(f, sa);
	sa_put(f);
	f = sa_find(t, str_cstr(lower), T0);
	assert_ptr_equal(f, sa);
	sa_put(f);
	assert_null(sa_find(t, STR_LIT("0000000"), T0));
	assert_null(sa_find(t, STR_LIT("000000000"), T0));
	assert_null(sa_find(t, STR_LIT("0000000G"), T0));
	assert_null(sa_find(t, STR_NULL, T0));
	char other[9];
	snprintf(other, sizeof(other), "%08X", (unsigned)(strtoul(sa_opaque(sa), NULL, 16) ^ 1));
	assert_null(sa_find(t, str_cstr(other), T0));
	sa_put(sa);
	sa_table_free(t);
}

static void test_sa_establish_binds_user_and_caps_expiry(void **state)
{
	struct sa_table *t = sa_table_new(0);
	struct sa_info info = base_info(), got;
	struct sa *sa = sa_begin(t, &info, &fake_mech, fake_new(1), T0);

	(void)state;
	assert_int_equal(sa_verify(sa, 1, (const uint8_t *)"x", 1, STR_LIT("00"), T0), SA_E_STATE);
	char out[2 * SA_MAC_MAX + 1];
	assert_int_equal(sa_sign(sa, (const uint8_t *)"x", 1, out, sizeof(out)), SA_E_STATE);
	/* the new context replaces the pending one, which is freed now */
	assert_int_equal(sa_establish(sa, "sip:alice@example.test", "urn:uuid:1", 0, &fake_mech,
				      fake_new(2), T0 + 5),
			 0);
	assert_int_equal(atomic_load(&ctx_freed), 1);
	sa_get_info(sa, &got);
	assert_int_equal(got.state, SA_ESTABLISHED);
	assert_string_equal(got.user, "sip:alice@example.test");
	assert_string_equal(got.instance, "urn:uuid:1");
	assert_int_equal(got.expires, T0 + 5 + SA_MAX_LIFETIME);
	/* not pending any more: refused, and the offered context is freed */
	assert_int_equal(
	    sa_establish(sa, "sip:bob@example.test", NULL, 0, &fake_mech, fake_new(3), T0 + 6), -1);
	sa_get_info(sa, &got);
	assert_string_equal(got.user, "sip:alice@example.test");
	sa_put(sa);

	/* a credential that expires sooner caps the SA */
	sa = sa_begin(t, &info, &fake_mech, fake_new(4), T0);
	assert_int_equal(sa_establish(sa, "sip:alice@example.test", NULL, T0 + 600, NULL, NULL, T0),
			 0);
	sa_get_info(sa, &got);
	assert_int_equal(got.expires, T0 + 600);
	assert_string_equal(got.instance, "");
	sa_put(sa);

	/* a pending SA past its TTL cannot be established */
	sa = sa_begin(t, &info, &fake_mech, fake_new(5), T0);
	assert_int_equal(
	    sa_establish(sa, "sip:alice@example.test", NULL, 0, NULL, NULL, T0 + SA_PENDING_TTL),
	    -1);
	sa_put(sa);
	size_t p, e;
	sa_count(t, &p, &e);
	assert_int_equal(p, 1);
	assert_int_equal(e, 2);
	sa_table_free(t);
}

static void test_sa_create_is_established_at_once(void **state)
{
	struct sa_table *t = sa_table_new(0);
	struct sa_info got, info = base_info();
	struct sa *sa = create(t, "sip:bob@example.test", T0 + 100, T0);

	(void)state;
	sa_get_info(sa, &got);
	assert_int_equal(got.state, SA_ESTABLISHED);
	assert_string_equal(got.user, "sip:bob@example.test");
	assert_int_equal(got.expires, T0 + 100);
	assert_int_equal(verify_n(sa, 1, T0 + 1), SA_OK);
	sa_put(sa);
	/* no user: refused, context freed */
	info.user[0] = '\0';
	assert_null(sa_create(t, &info, &fake_mech, fake_new(0), 0, T0));
	sa_table_free(t);
}

static void test_sa_sign_is_lower_hex_mac_and_snum_counts_from_1(void **state)
{
	struct sa_table *t = sa_table_new(0);
	struct sa *sa = create(t, "sip:a@example.test", 0, T0);
	char out[2 * SA_MAC_MAX + 1], want[65];
	const char *buf = "<NTLM><9616454F><1><R><T><c><1><REGISTER><><><><><><><><200>";

	(void)state;
	assert_int_equal(sa_next_snum(sa), 1);
	assert_int_equal(sa_next_snum(sa), 2);
	assert_int_equal(sa_sign(sa, (const uint8_t *)buf, strlen(buf), out, sizeof(out)), 64);
	client_mac(buf, want);
	for (int i = 0; i < 64; i++)
		assert_int_equal(out[i], want[i] >= 'A' ? want[i] + 32 : want[i]);
	assert_int_equal(sa_sign(sa, (const uint8_t *)buf, strlen(buf), out, 2 * SA_MAC_MAX),
			 SA_E_MALFORMED);
	struct sa_info got;
	sa_get_info(sa, &got);
	assert_int_equal(got.snum, 2);
	sa_put(sa);
	sa_table_free(t);
}

/* ---- the cnum window ---------------------------------------------------------- */

static void test_sa_verify_rejects_replay_of_any_recent_cnum(void **state)
{
	struct sa_table *t = sa_table_new(0);
	struct sa *sa = create(t, "sip:a@example.test", 0, T0);

	(void)state;
	for (uint32_t c = 1; c <= 300; c++)
		assert_int_equal(verify_n(sa, c, T0), SA_OK);
	/* every cnum still inside the window is a replay, and so is anything older */
	for (uint32_t c = 1; c <= 300; c++)
		assert_int_equal(verify_n(sa, c, T0), SA_E_REPLAY);
	assert_int_equal(verify_n(sa, 0, T0), SA_E_REPLAY);
	assert_int_equal(verify_n(sa, 301, T0), SA_OK);
	struct sa_info got;
	sa_get_info(sa, &got);
	assert_int_equal(got.cnum_high, 301);
	sa_put(sa);
	sa_table_free(t);
}

static void test_sa_verify_retransmission_checks_signature_not_window(void **state)
{
	struct sa_table *t = sa_table_new(0);
	struct sa *sa = create(t, "sip:a@example.test", 0, T0);
	const char *buf = "<NTLM><0A0B0C0D><1><msg>";
	char mac[65];
	struct sa_info got;

	(void)state;
	client_mac(buf, mac);
	assert_int_equal(verify_buf(sa, 1, buf, T0), SA_OK);
	assert_int_equal(verify_buf(sa, 1, buf, T0), SA_E_REPLAY);
	/* the caller recognised a retransmission: the signature still counts */
	assert_int_equal(
	    sa_verify_retransmission(sa, (const uint8_t *)buf, strlen(buf), str_cstr(mac), T0),
	    SA_OK);
	assert_int_equal(
	    sa_verify_retransmission(sa, (const uint8_t *)"<NTLM><x>", 9, str_cstr(mac), T0),
	    SA_E_BAD_SIG);
	assert_int_equal(
	    sa_verify_retransmission(sa, (const uint8_t *)buf, strlen(buf), STR_LIT("zz"), T0),
	    SA_E_MALFORMED);
	sa_get_info(sa, &got);
	assert_int_equal(got.cnum_high, 1);
	/* and never past the SA's life */
	assert_int_equal(sa_verify_retransmission(sa, (const uint8_t *)buf, strlen(buf),
						  str_cstr(mac), T0 + SA_MAX_LIFETIME + 1),
			 SA_E_EXPIRED);
	sa_put(sa);
	sa_table_free(t);
}

static void test_sa_verify_accepts_out_of_order_within_window_once(void **state)
{
	struct sa_table *t = sa_table_new(0);
	struct sa *sa = create(t, "sip:a@example.test", 0, T0);

	(void)state;
	assert_int_equal(verify_n(sa, 1, T0), SA_OK);
	assert_int_equal(verify_n(sa, 3, T0), SA_OK);
	assert_int_equal(verify_n(sa, 2, T0), SA_OK);
	assert_int_equal(verify_n(sa, 2, T0), SA_E_REPLAY);
	assert_int_equal(verify_n(sa, 3, T0), SA_E_REPLAY);
	/* jump ahead; the oldest number still in the window is high - (SA_WINDOW - 1) */
	assert_int_equal(verify_n(sa, 1000, T0), SA_OK);
	assert_int_equal(verify_n(sa, 1000 - SA_WINDOW, T0), SA_E_REPLAY);
	assert_int_equal(verify_n(sa, 1000 - (SA_WINDOW - 1), T0), SA_OK);
	assert_int_equal(verify_n(sa, 1000 - (SA_WINDOW - 1), T0), SA_E_REPLAY);
	for (uint32_t c = 1000 - (SA_WINDOW - 2); c < 1000; c += 7)
		assert_int_equal(verify_n(sa, c, T0), SA_OK);
	for (uint32_t c = 1000 - (SA_WINDOW - 2); c < 1000; c += 7)
		assert_int_equal(verify_n(sa, c, T0), SA_E_REPLAY);
	/* a shift by less than a word and by more than one word keep the right bits */
	assert_int_equal(verify_n(sa, 1010, T0), SA_OK);
	assert_int_equal(verify_n(sa, 1000, T0), SA_E_REPLAY);
	assert_int_equal(verify_n(sa, 1001, T0), SA_OK);
	assert_int_equal(verify_n(sa, 1100, T0), SA_OK);
	assert_int_equal(verify_n(sa, 1010, T0), SA_E_REPLAY);
	assert_int_equal(verify_n(sa, 1001, T0), SA_E_REPLAY);
	assert_int_equal(verify_n(sa, 1002, T0), SA_OK);
	assert_int_equal(verify_n(sa, 1100 - SA_WINDOW, T0), SA_E_REPLAY);
	/* the top of the range */
	assert_int_equal(verify_n(sa, UINT32_MAX, T0), SA_OK);
	assert_int_equal(verify_n(sa, UINT32_MAX, T0), SA_E_REPLAY);
	assert_int_equal(verify_n(sa, UINT32_MAX - 1, T0), SA_OK);
	sa_put(sa);
	sa_table_free(t);
}

static void test_sa_verify_bad_signature_does_not_advance_window(void **state)
{
	struct sa_table *t = sa_table_new(0);
	struct sa *sa = create(t, "sip:a@example.test", 0, T0);
	char mac[65];
	const char *buf = "<NTLM><0A0B0C0D><5><msg>";
	struct sa_info got;

	(void)state;
	assert_int_equal(verify_n(sa, 1, T0), SA_OK);
	client_mac(buf, mac);
	mac[10] = mac[10] == '0' ? '1' : '0';
	assert_int_equal(sa_verify(sa, 5, (const uint8_t *)buf, strlen(buf), str_cstr(mac), T0 + 9),
			 SA_E_BAD_SIG);
	/* a right MAC over another buffer is a bad signature too */
	client_mac("<NTLM><0A0B0C0D><5><other>", mac);
	assert_int_equal(sa_verify(sa, 5, (const uint8_t *)buf, strlen(buf), str_cstr(mac), T0 + 9),
			 SA_E_BAD_SIG);
	sa_get_info(sa, &got);
	assert_int_equal(got.cnum_high, 1);
	assert_int_equal(got.last_used, T0); /* not refreshed by a failure */
	assert_int_equal(verify_buf(sa, 5, buf, T0 + 9), SA_OK);
	sa_get_info(sa, &got);
	assert_int_equal(got.cnum_high, 5);
	assert_int_equal(got.last_used, T0 + 9);
	sa_put(sa);
	sa_table_free(t);
}

static void test_sa_verify_rejects_malformed_response(void **state)
{
	struct sa_table *t = sa_table_new(0);
	struct sa *sa = create(t, "sip:a@example.test", 0, T0);
	char longhex[2 * SA_MAC_MAX + 3];
	const uint8_t *b = (const uint8_t *)"x";

	(void)state;
	memset(longhex, 'a', sizeof(longhex) - 1);
	longhex[sizeof(longhex) - 1] = '\0';
	assert_int_equal(sa_verify(sa, 1, b, 1, STR_LIT(""), T0), SA_E_MALFORMED);
	assert_int_equal(sa_verify(sa, 1, b, 1, STR_LIT("abc"), T0), SA_E_MALFORMED);
	assert_int_equal(sa_verify(sa, 1, b, 1, STR_LIT("zz"), T0), SA_E_MALFORMED);
	assert_int_equal(sa_verify(sa, 1, b, 1, str_cstr(longhex), T0), SA_E_MALFORMED);
	/* a short but well-formed MAC is the mechanism's to refuse */
	assert_int_equal(sa_verify(sa, 1, b, 1, STR_LIT("00"), T0), SA_E_BAD_SIG);
	assert_int_equal(verify_n(sa, 1, T0), SA_OK);
	sa_put(sa);
	sa_table_free(t);
}

/* ---- expiry -------------------------------------------------------------------- */

static void test_sa_hard_expiry_removes_sa(void **state)
{
	struct sa_table *t = sa_table_new(0);
	struct sa *sa = create(t, "sip:a@example.test", T0 + 100, T0), *f;
	char opaque[9];

	(void)state;
	strcpy(opaque, sa_opaque(sa));
	assert_int_equal(verify_n(sa, 1, T0 + 99), SA_OK);
	assert_int_equal(verify_n(sa, 2, T0 + 100), SA_E_EXPIRED);
	f = sa_find(t, str_cstr(opaque), T0 + 99);
	assert_ptr_equal(f, sa);
	sa_put(f);
	assert_null(sa_find(t, str_cstr(opaque), T0 + 100));
	/* gone from the table, but the holder's reference keeps it alive */
	assert_null(sa_find(t, str_cstr(opaque), T0));
	assert_int_equal(atomic_load(&ctx_freed), 0);
	sa_put(sa);
	assert_int_equal(atomic_load(&ctx_freed), 1);
	/* the 8-hour cap when the credential has none */
	sa = create(t, "sip:a@example.test", 0, T0);
	strcpy(opaque, sa_opaque(sa));
	sa_put(sa);
	for (uint64_t now = T0 + 600; now < T0 + SA_MAX_LIFETIME; now += 600) {
		sa = sa_find(t, str_cstr(opaque), now);
		assert_non_null(sa);
		assert_int_equal(verify_n(sa, (uint32_t)(now - T0), now), SA_OK);
		sa_put(sa);
	}
	assert_null(sa_find(t, str_cstr(opaque), T0 + SA_MAX_LIFETIME));
	sa_table_free(t);
}

static void test_sa_idle_expiry_unless_verified(void **state)
{
	struct sa_table *t = sa_table_new(0);
	struct sa *sa = create(t, "sip:a@example.test", 0, T0), *f;
	char opaque[9];

	(void)state;
	strcpy(opaque, sa_opaque(sa));
	f = sa_find(t, str_cstr(opaque), T0 + SA_IDLE_TTL - 1);
	assert_non_null(f);
	sa_put(f);
	/* a verified message at T0 + 600 moves the idle deadline */
	assert_int_equal(verify_n(sa, 1, T0 + 600), SA_OK);
	f = sa_find(t, str_cstr(opaque), T0 + 600 + SA_IDLE_TTL - 1);
	assert_non_null(f);
	sa_put(f);
	assert_int_equal(verify_n(sa, 2, T0 + 600 + SA_IDLE_TTL), SA_E_EXPIRED);
	assert_int_equal(sa_sweep(t, T0 + 600 + SA_IDLE_TTL - 1), 0);
	assert_int_equal(sa_sweep(t, T0 + 600 + SA_IDLE_TTL), 1);
	assert_null(sa_find(t, str_cstr(opaque), T0 + 600));
	sa_put(sa);
	sa_table_free(t);
}

static void test_sa_pending_ttl_expires_handshake(void **state)
{
	struct sa_table *t = sa_table_new(0);
	struct sa_info info = base_info();
	struct sa *a = sa_begin(t, &info, &fake_mech, fake_new(1), T0);
	struct sa *b = sa_begin(t, &info, &fake_mech, fake_new(2), T0 + 30);
	struct sa *f;
	size_t p, e;

	(void)state;
	f = sa_find(t, str_cstr(sa_opaque(a)), T0 + SA_PENDING_TTL - 1);
	assert_ptr_equal(f, a);
	sa_put(f);
	assert_null(sa_find(t, str_cstr(sa_opaque(a)), T0 + SA_PENDING_TTL));
	assert_int_equal(sa_sweep(t, T0 + SA_PENDING_TTL + 29), 0);
	sa_count(t, &p, &e);
	assert_int_equal(p, 1);
	assert_int_equal(sa_sweep(t, T0 + SA_PENDING_TTL + 30), 1);
	sa_count(t, &p, &e);
	assert_int_equal(p + e, 0);
	sa_put(a);
	sa_put(b);
	sa_table_free(t);
}

/* ---- bounds, drops, listing ------------------------------------------------------ */

static void test_sa_pending_bound_evicts_oldest_pending(void **state)
{
	struct sa_table *t = sa_table_new(3);
	struct sa_info info = base_info();
	char op[6][9];
	struct sa *f;
	size_t p, e;

	(void)state;
	for (int i = 0; i < 5; i++) {
		struct sa *sa = sa_begin(t, &info, &fake_mech, fake_new(i), T0 + (uint64_t)i);
		assert_non_null(sa);
		strcpy(op[i], sa_opaque(sa));
		sa_put(sa);
	}
	sa_count(t, &p, &e);
	assert_int_equal(p, 3);
	assert_null(sa_find(t, str_cstr(op[0]), T0 + 5));
	assert_null(sa_find(t, str_cstr(op[1]), T0 + 5));
	assert_int_equal(atomic_load(&ctx_freed), 2);
	/* establishing one frees its pending slot: the next begin evicts nobody */
	f = sa_find(t, str_cstr(op[2]), T0 + 5);
	assert_non_null(f);
	assert_int_equal(sa_establish(f, "sip:a@example.test", NULL, 0, NULL, NULL, T0 + 5), 0);
	sa_put(f);
	f = sa_begin(t, &info, &fake_mech, fake_new(9), T0 + 6);
	strcpy(op[5], sa_opaque(f));
	sa_put(f);
	for (int i = 2; i < 6; i++) {
		f = sa_find(t, str_cstr(op[i]), T0 + 6);
		assert_non_null(f);
		sa_put(f);
	}
	sa_count(t, &p, &e);
	assert_int_equal(p, 3);
	assert_int_equal(e, 1);
	/* an SA evicted while its handshake was held cannot be established */
	{
		struct sa_table *t1 = sa_table_new(1);
		struct sa *a = sa_begin(t1, &info, &fake_mech, fake_new(20), T0);
		struct sa *b = sa_begin(t1, &info, &fake_mech, fake_new(21), T0);
		assert_null(sa_find(t1, str_cstr(sa_opaque(a)), T0));
		assert_int_equal(
		    sa_establish(a, "sip:a@example.test", NULL, 0, &fake_mech, fake_new(22), T0),
		    -1);
		assert_int_equal(sa_establish(b, "sip:a@example.test", NULL, 0, NULL, NULL, T0), 0);
		sa_put(a);
		sa_put(b);
		sa_table_free(t1);
	}
	/* established SAs never count against the bound */
	for (int i = 0; i < 10; i++)
		sa_put(create(t, "sip:b@example.test", 0, T0 + 6));
	sa_count(t, &p, &e);
	assert_int_equal(p, 3);
	assert_int_equal(e, 11);
	sa_table_free(t);
}

static void test_sa_drop_while_held_frees_at_last_put(void **state)
{
	struct sa_table *t = sa_table_new(0);
	struct sa *sa = create(t, "sip:a@example.test", 0, T0), *again;
	char opaque[9];
	struct sa_info got;

	(void)state;
	strcpy(opaque, sa_opaque(sa));
	again = sa_find(t, str_cstr(opaque), T0);
	assert_non_null(again);
	assert_int_equal(sa_drop(t, str_cstr(opaque)), 0);
	assert_int_equal(sa_drop(t, str_cstr(opaque)), -1);
	assert_null(sa_find(t, str_cstr(opaque), T0));
	/* both holders can still use it */
	assert_int_equal(verify_n(again, 1, T0), SA_OK);
	sa_get_info(sa, &got);
	assert_int_equal(got.cnum_high, 1);
	sa_put(again);
	assert_int_equal(atomic_load(&ctx_freed), 0);
	sa_put(sa);
	assert_int_equal(atomic_load(&ctx_freed), 1);
	assert_int_equal(sa_drop(t, STR_LIT("xyz")), -1);
	sa_table_free(t);
}

static void test_sa_table_free_with_sa_still_held(void **state)
{
	struct sa_table *t = sa_table_new(0);
	struct sa *sa = create(t, "sip:a@example.test", 0, T0);

	(void)state;
	sa_put(create(t, "sip:b@example.test", 0, T0));
	sa_table_free(t);
	assert_int_equal(atomic_load(&ctx_freed), 1);
	assert_string_equal(sa_opaque(sa), sa_opaque(sa));
	sa_put(sa);
}

static void test_sa_drop_user_removes_only_that_user(void **state)
{
	struct sa_table *t = sa_table_new(0);
	struct sa_info info = base_info();
	size_t p, e;

	(void)state;
	for (int i = 0; i < 3; i++)
		sa_put(create(t, "sip:alice@example.test", 0, T0));
	sa_put(create(t, "sip:bob@example.test", 0, T0));
	sa_put(create(t, "sip:alice@example.test.evil", 0, T0));
	sa_put(sa_begin(t, &info, &fake_mech, fake_new(0), T0)); /* pending: no user */
	assert_int_equal(sa_drop_user(t, "sip:alice@example.test"), 3);
	assert_int_equal(sa_drop_user(t, "sip:alice@example.test"), 0);
	assert_int_equal(sa_drop_user(t, ""), 0);
	sa_count(t, &p, &e);
	assert_int_equal(p, 1);
	assert_int_equal(e, 2);
	sa_table_free(t);
}

struct list_ctx {
	int n, stop_at;
	int alice;
};
static int list_cb(void *ctx, const struct sa_info *i)
{
	struct list_ctx *l = ctx;

	l->n++;
	if (strcmp(i->user, "sip:alice@example.test") == 0)
		l->alice++;
	assert_int_equal(strlen(i->opaque), SA_OPAQUE_LEN);
	return l->n == l->stop_at ? 7 : 0;
}

static void test_sa_list_visits_every_sa_and_stops_on_request(void **state)
{
	struct sa_table *t = sa_table_new(0);
	struct list_ctx l = {0, 0, 0};

	(void)state;
	for (int i = 0; i < 40; i++)
		sa_put(create(t, i % 4 ? "sip:bob@example.test" : "sip:alice@example.test", 0, T0));
	assert_int_equal(sa_list(t, list_cb, &l), 0);
	assert_int_equal(l.n, 40);
	assert_int_equal(l.alice, 10);
	l = (struct list_ctx){0, 5, 0};
	assert_int_equal(sa_list(t, list_cb, &l), 7);
	assert_int_equal(l.n, 5);
	sa_table_free(t);
}

static int mech_fn(void *ctx, void *arg)
{
	*(int *)arg = ((struct fake *)ctx)->id;
	return 42;
}

static void test_sa_with_mech_runs_on_the_context(void **state)
{
	struct sa_table *t = sa_table_new(0);
	struct sa_info info = base_info();
	struct sa *sa = sa_begin(t, &info, &fake_mech, fake_new(77), T0);
	int id = 0;

	(void)state;
	assert_int_equal(sa_with_mech(sa, mech_fn, &id), 42);
	assert_int_equal(id, 77);
	assert_int_equal(sa_with_mech(sa, NULL, &id), -1);
	sa_put(sa);
	sa_table_free(t);
}

static void test_sa_strerror_and_scheme_names(void **state)
{
	(void)state;
	for (int e = SA_OK; e >= SA_E_MALFORMED; e--)
		assert_string_not_equal(sa_strerror(e), "unknown security association error");
	assert_string_equal(sa_strerror(-42), "unknown security association error");
	assert_string_equal(sa_scheme_name(SA_SCHEME_TLSDSK), "TLS-DSK");
	assert_int_equal(sa_scheme_parse(STR_LIT("ntlm")), SA_SCHEME_NTLM);
}

/* ---- concurrency ------------------------------------------------------------------ */

#define CONC_N 3000
static atomic_int accepted[CONC_N + 1];
static struct sa_table *conc_table;
static struct sa *conc_sa;

static void *conc_worker(void *arg)
{
	int id = (int)(intptr_t)arg;
	char opaque[9];

	strcpy(opaque, sa_opaque(conc_sa));
	for (uint32_t c = 1; c <= CONC_N; c++) {
		struct sa *sa = sa_find(conc_table, str_cstr(opaque), T0);
		if (!sa)
			return (void *)1;
		if (verify_n(sa, c, T0) == SA_OK)
			atomic_fetch_add(&accepted[c], 1);
		if (c % 16 == (uint32_t)id) {
			char out[2 * SA_MAC_MAX + 1];
			if (sa_sign(sa, (const uint8_t *)"abc", 3, out, sizeof(out)) != 64)
				return (void *)1;
			sa_next_snum(sa);
		}
		sa_put(sa);
		/* churn on the rest of the table: short-lived SAs, sweeps, drops */
		struct sa *tmp =
		    create(conc_table, id % 2 ? "sip:x@example.test" : "sip:y@example.test",
			   T0 + 1 + c % 3, T0);
		char top[9];
		strcpy(top, sa_opaque(tmp));
		sa_put(tmp);
		if (c % 5 == 0)
			sa_drop(conc_table, str_cstr(top));
		/* handshakes beyond the pending bound: evictions race establishes */
		struct sa_info pi = base_info();
		struct sa *hs = sa_begin(conc_table, &pi, &fake_mech, fake_new(id), T0);
		if (!hs)
			return (void *)1;
		if (c % 3 == 0)
			(void)sa_establish(hs, "sip:z@example.test", NULL, T0 + 1, NULL, NULL, T0);
		sa_put(hs);
		if (c % 50 == 0)
			sa_sweep(conc_table, T0 + 2);
		if (c % 200 == 0)
			sa_drop_user(conc_table, "sip:x@example.test");
		if (c % 300 == 0) {
			size_t p, e;
			sa_count(conc_table, &p, &e);
		}
	}
	return NULL;
}

static void test_sa_concurrent_find_verify_sign_sweep_accepts_each_cnum_once(void **state)
{
	pthread_t th[4];
	struct sa_info got;

	(void)state;
	conc_table = sa_table_new(8);
	conc_sa = create(conc_table, "sip:a@example.test", 0, T0);
	for (int i = 0; i <= CONC_N; i++)
		atomic_store(&accepted[i], 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, conc_worker, (void *)(intptr_t)i), 0);
	for (int i = 0; i < 4; i++) {
		void *rv;
		pthread_join(th[i], &rv);
		assert_null(rv);
	}
	/* every thread tried every cnum in order: each accepted exactly once */
	for (int c = 1; c <= CONC_N; c++)
		assert_int_equal(atomic_load(&accepted[c]), 1);
	sa_get_info(conc_sa, &got);
	assert_int_equal(got.cnum_high, CONC_N);
	assert_int_equal(got.snum, 4 * (CONC_N / 16) + (CONC_N % 16 >= 1) + (CONC_N % 16 >= 2) +
				       (CONC_N % 16 >= 3));
	sa_put(conc_sa);
	sa_table_free(conc_table);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
		test_sa_begin_gives_pending_sa_with_unique_upper_hex_opaque, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sa_find_by_opaque_any_case_and_not_by_others,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sa_establish_binds_user_and_caps_expiry, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_sa_create_is_established_at_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sa_sign_is_lower_hex_mac_and_snum_counts_from_1,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_sa_verify_retransmission_checks_signature_not_window, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sa_verify_rejects_replay_of_any_recent_cnum, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_sa_verify_accepts_out_of_order_within_window_once,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sa_verify_bad_signature_does_not_advance_window,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sa_verify_rejects_malformed_response, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_sa_hard_expiry_removes_sa, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sa_idle_expiry_unless_verified, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sa_pending_ttl_expires_handshake, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sa_pending_bound_evicts_oldest_pending, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_sa_drop_while_held_frees_at_last_put, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_sa_table_free_with_sa_still_held, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sa_drop_user_removes_only_that_user, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_sa_list_visits_every_sa_and_stops_on_request,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sa_with_mech_runs_on_the_context, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sa_strerror_and_scheme_names, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_sa_concurrent_find_verify_sign_sweep_accepts_each_cnum_once, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
