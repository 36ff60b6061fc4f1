/*
 * The NTLM acceptor (src/auth/ntlm.c, src/vault/vault_ntlm.c) against bad
 * input: NTLMv1/LM responses, bad MIC, wrong password, unknown users,
 * truncated / overlapping / out-of-range fields, oversized fields, wrong
 * signature or type, garbage; and the rules around names, clock skew,
 * channel bindings and context reuse.
 *
 * AUTHENTICATE messages are built here by an NTLMv2 client of our own
 * (HMAC-MD5 from OpenSSL's default provider, formulas of [MS-NLMP] §3.3.2
 * spelled out), not with the code under test; only RC4 (for the
 * EncryptedRandomSessionKey) is ntlm_rc4, which test_vec_ntlm checks
 * against the spec's vectors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "auth/ntlm.h"
#include "store/store.h"
#include "vault/vault_ntlm.h"

#define PASSWORD "Correct horse"
#define NOW	 1767225600ull /* 2026-01-01 */

static const struct vault_ntlm_names names = {"EXAMPLE", "FE01", "example.test",
					      "fe01.example.test"};

/* ---- an independent NTLMv2 client ---- */

static void hmac_md5(const uint8_t *key, size_t klen, const uint8_t *d, size_t n, uint8_t out[16])
{
	size_t outl = 0;

	assert_non_null(
	    EVP_Q_mac(NULL, "HMAC", NULL, "MD5", NULL, key, klen, d, n, out, 16, &outl));
	assert_int_equal(outl, 16);
}

static size_t utf16(const char *s, uint8_t *out, bool upper)
{
	size_t n = strlen(s);

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (upper && c >= 'a' && c <= 'z')
			c = (char)(c - 32);
		out[2 * i] = (uint8_t)c;
		out[2 * i + 1] = 0;
	}
	return 2 * n;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* What to build. */
struct amsg {
	uint32_t flags;
	const char *user, *domain;
	const char *password;
	uint64_t time_s; /* blob timestamp, unix seconds */
	bool mic;	 /* MsvAvFlags 0x2 and a MIC */
	bool cbt;
	uint8_t cbt_val[16];
	bool v1;		  /* a 24-byte NT response instead */
	bool lm_only;		  /* no NT response, 24-byte LM response */
	const uint8_t *challenge; /* CHALLENGE message (server challenge at 24) */
	size_t challenge_len;
};

#define DEFAULT_FLAGS                                                                              \
	(NTLM_NEGOTIATE_UNICODE | NTLM_NEGOTIATE_SIGN | NTLM_NEGOTIATE_DATAGRAM |                  \
	 NTLM_NEGOTIATE_NTLM | NTLM_NEGOTIATE_ALWAYS_SIGN | NTLM_NEGOTIATE_EXTENDED_SESSION |      \
	 NTLM_NEGOTIATE_TARGET_INFO | NTLM_NEGOTIATE_VERSION | NTLM_NEGOTIATE_128 |                \
	 NTLM_NEGOTIATE_KEY_EXCH)

/* Build an AUTHENTICATE; returns its length. Layout: header (72, or 88
 * with a MIC), then domain, user, workstation, LM, NT, session key. */
static size_t build_auth(const struct amsg *m, uint8_t *out, size_t cap)
{
	uint8_t nt_hash[16], ntowf[16], up[256], tmp[1024], blob[512], proof[16], sbk[16];
	uint8_t exported[16], enc[16], mic[16];
	const uint8_t *sc = m->challenge + 24;
	size_t hdr = m->mic ? 88 : 72, o, ul, dl, bl = 0, ntl, lml = 24;
	uint64_t ft = (m->time_s + 11644473600ull) * 10000000ull;

	assert_true(cap >= 1024);
	memset(out, 0, cap);
	assert_int_equal(ntlm_nt_hash(m->password, strlen(m->password), nt_hash), 0);
	/* NTOWFv2 */
	ul = utf16(m->user, up, true);
	dl = utf16(m->domain, up + ul, false);
	hmac_md5(nt_hash, 16, up, ul + dl, ntowf);
	/* blob: RespType, HiRespType, reserved, time, client challenge, reserved, AV pairs */
	blob[bl++] = 1, blob[bl++] = 1;
	memset(blob + bl, 0, 6), bl += 6;
	for (int i = 0; i < 8; i++)
		blob[bl++] = (uint8_t)(ft >> (8 * i));
	memset(blob + bl, 0xcc, 8), bl += 8;
	memset(blob + bl, 0, 4), bl += 4;
	put16(blob + bl, 2), put16(blob + bl + 2, 14), bl += 4; /* MsvAvNbDomainName */
	bl += utf16("EXAMPLE", blob + bl, false);
	if (m->mic) {
		put16(blob + bl, 6), put16(blob + bl + 2, 4), put32(blob + bl + 4, 2);
		bl += 8;
	}
	if (m->cbt) {
		put16(blob + bl, 10), put16(blob + bl + 2, 16);
		memcpy(blob + bl + 4, m->cbt_val, 16);
		bl += 20;
	}
	memset(blob + bl, 0, 8), bl += 8; /* MsvAvEOL + padding */
	memcpy(tmp, sc, 8);
	memcpy(tmp + 8, blob, bl);
	hmac_md5(ntowf, 16, tmp, 8 + bl, proof);
	hmac_md5(ntowf, 16, proof, 16, sbk);
	memset(exported, 0x42, 16);
	assert_int_equal(ntlm_rc4(sbk, exported, 16, enc), 0);

	memcpy(out, "NTLMSSP\0\3\0\0\0", 12);
	o = hdr;
	dl = utf16(m->domain, out + o, false);
	put16(out + 28, (uint16_t)dl), put16(out + 30, (uint16_t)dl), put32(out + 32, (uint32_t)o);
	o += dl;
	ul = utf16(m->user, out + o, false);
	put16(out + 36, (uint16_t)ul), put16(out + 38, (uint16_t)ul), put32(out + 40, (uint32_t)o);
	o += ul;
	ul = utf16("WS01", out + o, false);
	put16(out + 44, (uint16_t)ul), put16(out + 46, (uint16_t)ul), put32(out + 48, (uint32_t)o);
	o += ul;
	if (m->v1 || m->lm_only)
		memset(out + o, 0x5a, 24);
	put16(out + 12, (uint16_t)lml), put16(out + 14, (uint16_t)lml),
	    put32(out + 16, (uint32_t)o);
	o += lml;
	if (m->lm_only) {
		ntl = 0;
	} else if (m->v1) {
		memset(out + o, 0xa5, 24);
		ntl = 24;
	} else {
		memcpy(out + o, proof, 16);
		memcpy(out + o + 16, blob, bl);
		ntl = 16 + bl;
	}
	put16(out + 20, (uint16_t)ntl), put16(out + 22, (uint16_t)ntl),
	    put32(out + 24, (uint32_t)o);
	o += ntl;
	memcpy(out + o, enc, 16);
	put16(out + 52, 16), put16(out + 54, 16), put32(out + 56, (uint32_t)o);
	o += 16;
	put32(out + 60, m->flags);
	memcpy(out + 64, "\x06\x01\xb1\x1d\0\0\0\x0f", 8);
	if (m->mic) {
		memcpy(tmp, m->challenge, m->challenge_len);
		memcpy(tmp + m->challenge_len, out, o);
		hmac_md5(exported, 16, tmp, m->challenge_len + o, mic);
		memcpy(out + 72, mic, 16);
	}
	return o;
}

/* ---- fixture: a store with alice (NT hash), bob (disabled), carol (no NT hash) ---- */

struct fx {
	char dir[64];
	char path[128];
	struct store *s;
	uint8_t chal[NTLM_CHALLENGE_MAX];
	size_t chal_len;
	const struct sa_mech *mech;
	void *ctx;
	struct amsg m;
};

static void add_user(struct fx *f, const char *uri, bool enabled, bool nt)
{
	char user[STORE_URI_MAX], domain[STORE_URI_MAX];
	struct store_user u;
	struct store_cred c[2];

	memset(&u, 0, sizeof(u));
	assert_int_equal(store_uri_normalise(uri, u.uri, user, domain), 0);
	u.enabled = enabled;
	assert_int_equal(store_user_add(f->s, &u), STORE_OK);
	memset(c, 0, sizeof(c));
	for (int i = 0; i < 2; i++) {
		snprintf(c[i].mech, sizeof(c[i].mech), nt ? "nt" : "digest-md5");
		snprintf(c[i].variant, sizeof(c[i].variant), i ? "user@domain" : "user");
		assert_int_equal(ntlm_nt_hash(PASSWORD, strlen(PASSWORD), c[i].key), 0);
		c[i].key_len = 16;
	}
	assert_int_equal(store_cred_replace(f->s, u.id, c, 2), STORE_OK);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/rtc-ntlm-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/store.db", f->dir);
	assert_int_equal(store_open(f->path, STORE_CREATE, 50, &f->s, err, sizeof(err)), STORE_OK);
	add_user(f, "sip:alice@example.test", true, true);
	add_user(f, "sip:bob@example.test", false, true);
	add_user(f, "sip:carol@example.test", true, false);
	assert_int_equal(vault_ntlm_challenge(&names, NOW, &f->mech, &f->ctx, f->chal,
					      sizeof(f->chal), &f->chal_len),
			 0);
	f->m = (struct amsg){.flags = DEFAULT_FLAGS,
			     .user = "alice",
			     .domain = "EXAMPLE",
			     .password = PASSWORD,
			     .time_s = NOW,
			     .challenge = f->chal,
			     .challenge_len = f->chal_len};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char p[200];

	if (f->mech)
		f->mech->free(f->ctx);
	store_close(f->s);
	unlink(f->path);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", f->path);
	unlink(p);
	rmdir(f->dir);
	free(f);
	return 0;
}

static struct verdict accept_msg(struct fx *f, const uint8_t *msg, size_t len)
{
	struct store_user u;

	return vault_ntlm_accept(f->s, f->ctx, msg, len, STR_LIT("example.test"), NOW, &u);
}

static struct verdict accept_built(struct fx *f)
{
	uint8_t msg[2048];
	size_t n = build_auth(&f->m, msg, sizeof(msg));

	return accept_msg(f, msg, n);
}

#define assert_reason(v, r) assert_string_equal((v).reason, (r))

/* ---- the good path, and what the context does after ---- */

static void test_ntlm_well_formed_v2_is_accepted_and_ctx_signs(void **state)
{
	struct fx *f = *state;
	uint8_t mac[SA_MAC_MAX];
	struct store_user u;
	size_t mac_len;
	uint8_t msg[2048];
	size_t n = build_auth(&f->m, msg, sizeof(msg));
	struct verdict v;

	v = vault_ntlm_accept(f->s, f->ctx, msg, n, STR_LIT("example.test"), NOW, &u);
	assert_int_equal(v.kind, VERDICT_OK);
	assert_string_equal(u.uri, "sip:alice@example.test");
	assert_int_equal(
	    f->mech->sign(f->ctx, (const uint8_t *)"<x>", 3, mac, sizeof(mac), &mac_len), 0);
	assert_int_equal(mac_len, 16);
	/* our own (server) signature is not a valid client signature */
	assert_int_equal(f->mech->verify(f->ctx, (const uint8_t *)"<x>", 3, mac, 16), -1);
	/* a signature buffer too small for the MAC */
	assert_int_equal(f->mech->sign(f->ctx, (const uint8_t *)"<x>", 3, mac, 15, &mac_len), -1);
	/* one AUTHENTICATE per context: a second one (even the same) is refused */
	assert_reason(accept_msg(f, msg, n), "bad_state");
}

static void test_ntlm_mic_is_checked_when_announced(void **state)
{
	struct fx *f = *state;
	uint8_t msg[2048];
	size_t n;

	f->m.mic = true;
	n = build_auth(&f->m, msg, sizeof(msg));
	msg[80] ^= 1;
	assert_reason(accept_msg(f, msg, n), "bad_mic");
}

static void test_ntlm_good_mic_is_accepted(void **state)
{
	struct fx *f = *state;

	f->m.mic = true;
	assert_reason(accept_built(f), "ok");
}

static void test_ntlm_mic_announced_but_payload_in_mic_slot_is_malformed(void **state)
{
	struct fx *f = *state;
	uint8_t msg[2048];
	size_t n;

	f->m.mic = true;
	n = build_auth(&f->m, msg, sizeof(msg));
	/* domain field moved into the MIC slot (offset 76) */
	put32(msg + 32, 76);
	assert_reason(accept_msg(f, msg, n), "malformed");
}

static void test_ntlm_refuses_ntlmv1_response(void **state)
{
	struct fx *f = *state;
	struct ntlm_auth a;
	uint8_t msg[2048];
	size_t n;

	f->m.v1 = true;
	n = build_auth(&f->m, msg, sizeof(msg));
	assert_int_equal(ntlm_parse_authenticate(msg, n, &a), NTLM_E_V1);
	assert_reason(accept_msg(f, msg, n), "ntlm_v1");
}

static void test_ntlm_refuses_lm_only_response(void **state)
{
	struct fx *f = *state;
	struct ntlm_auth a;
	uint8_t msg[2048];
	size_t n;

	f->m.lm_only = true;
	n = build_auth(&f->m, msg, sizeof(msg));
	assert_int_equal(ntlm_parse_authenticate(msg, n, &a), NTLM_E_V1);
	assert_reason(accept_msg(f, msg, n), "ntlm_v1");
}

static void test_ntlm_refuses_anonymous(void **state)
{
	struct fx *f = *state;
	struct ntlm_auth a;
	uint8_t msg[2048];
	size_t n;

	n = build_auth(&f->m, msg, sizeof(msg));
	put16(msg + 20, 0); /* no NT response */
	put16(msg + 12, 0); /* no LM response */
	assert_int_equal(ntlm_parse_authenticate(msg, n, &a), NTLM_E_MALFORMED);
}

static void test_ntlm_wrong_password_is_bad_response(void **state)
{
	struct fx *f = *state;

	f->m.password = "Correct horsf";
	assert_reason(accept_built(f), "bad_response");
}

static void test_ntlm_response_for_another_challenge_is_bad_response(void **state)
{
	struct fx *f = *state;
	uint8_t other[NTLM_CHALLENGE_MAX];
	const struct sa_mech *mech;
	size_t len;
	void *ctx;

	/* a valid AUTHENTICATE replayed into another handshake */
	assert_int_equal(vault_ntlm_challenge(&names, NOW, &mech, &ctx, other, sizeof(other), &len),
			 0);
	f->m.challenge = other;
	f->m.challenge_len = len;
	assert_reason(accept_built(f), "bad_response");
	mech->free(ctx);
}

static void test_ntlm_unknown_user_disabled_and_no_hash(void **state)
{
	struct fx *f = *state;
	const struct sa_mech *mech;
	uint8_t chal[NTLM_CHALLENGE_MAX];
	size_t len;

	f->m.user = "mallory";
	assert_reason(accept_built(f), "unknown_user");
	/* each case in its own handshake */
	const char *users[] = {"bob", "carol"};
	const char *want[] = {"disabled", "no_password"};
	for (int i = 0; i < 2; i++) {
		f->mech->free(f->ctx);
		assert_int_equal(
		    vault_ntlm_challenge(&names, NOW, &mech, &f->ctx, chal, sizeof(chal), &len), 0);
		f->m.challenge = chal;
		f->m.challenge_len = len;
		f->m.user = users[i];
		assert_reason(accept_built(f), want[i]);
	}
}

static void test_ntlm_user_name_forms(void **state)
{
	struct fx *f = *state;
	const struct {
		const char *user, *domain, *want;
	} cases[] = {
	    {"alice", "", "ok"},
	    {"alice", "example", "ok"}, /* NetBIOS domain, any case */
	    {"alice", "EXAMPLE.TEST", "ok"},
	    {"alice@example.test", "", "ok"},
	    {"EXAMPLE\\alice", "", "ok"},
	    {"alice", "OTHER", "unknown_user"},
	    {"OTHER\\alice", "", "unknown_user"},
	    {"EXAMPLE\\alice", "EXAMPLE", "unknown_user"},
	    {"alice@other.test", "", "unknown_user"},
	    {"", "EXAMPLE", "unknown_user"},
	};
	uint8_t chal[NTLM_CHALLENGE_MAX];
	size_t len;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (i) {
			f->mech->free(f->ctx);
			assert_int_equal(vault_ntlm_challenge(&names, NOW, &f->mech, &f->ctx, chal,
							      sizeof(chal), &len),
					 0);
			f->m.challenge = chal;
			f->m.challenge_len = len;
		}
		f->m.user = cases[i].user;
		f->m.domain = cases[i].domain;
		assert_reason(accept_built(f), cases[i].want);
	}
}

static void test_ntlm_clock_skew_over_15_minutes_is_refused(void **state)
{
	struct fx *f = *state;
	uint8_t chal[NTLM_CHALLENGE_MAX];
	size_t len;

	f->m.time_s = NOW - 16 * 60;
	assert_reason(accept_built(f), "clock_skew");
	f->mech->free(f->ctx);
	assert_int_equal(
	    vault_ntlm_challenge(&names, NOW, &f->mech, &f->ctx, chal, sizeof(chal), &len), 0);
	f->m.challenge = chal;
	f->m.time_s = NOW + 14 * 60;
	assert_reason(accept_built(f), "ok");
}

static void test_ntlm_channel_bindings_required_when_set(void **state)
{
	struct fx *f = *state;
	uint8_t cb[16], chal[NTLM_CHALLENGE_MAX];
	size_t len;

	memset(cb, 0x77, sizeof(cb));
	/* absent */
	assert_int_equal(vault_ntlm_set_channel_bindings(f->ctx, cb), 0);
	assert_reason(accept_built(f), "bad_channel_bindings");
	/* different, then equal */
	for (int i = 0; i < 2; i++) {
		f->mech->free(f->ctx);
		assert_int_equal(
		    vault_ntlm_challenge(&names, NOW, &f->mech, &f->ctx, chal, sizeof(chal), &len),
		    0);
		assert_int_equal(vault_ntlm_set_channel_bindings(f->ctx, cb), 0);
		f->m.challenge = chal;
		f->m.cbt = true;
		memset(f->m.cbt_val, i ? 0x77 : 0x78, 16);
		assert_reason(accept_built(f), i ? "ok" : "bad_channel_bindings");
	}
	/* not configured: whatever the client sends is accepted */
	f->mech->free(f->ctx);
	assert_int_equal(
	    vault_ntlm_challenge(&names, NOW, &f->mech, &f->ctx, chal, sizeof(chal), &len), 0);
	f->m.challenge = chal;
	assert_int_equal(vault_ntlm_set_channel_bindings(f->ctx, NULL), 0);
	assert_reason(accept_built(f), "ok");
	assert_int_equal(vault_ntlm_set_channel_bindings(f->ctx, cb), -1); /* not pending */
}

static void test_ntlm_without_datagram_or_ess_is_malformed(void **state)
{
	struct fx *f = *state;

	f->m.flags &= ~NTLM_NEGOTIATE_DATAGRAM;
	assert_reason(accept_built(f), "malformed");
}

/* ---- the parser ---- */

static void test_ntlm_parse_every_truncation_fails(void **state)
{
	struct fx *f = *state;
	struct ntlm_auth a;
	uint8_t msg[2048];
	size_t n;

	f->m.mic = true;
	n = build_auth(&f->m, msg, sizeof(msg));
	assert_int_equal(ntlm_parse_authenticate(msg, n, &a), 0);
	for (size_t i = 0; i < n; i++) {
		uint8_t *copy = malloc(i ? i : 1); /* exact size: ASan sees overreads */

		memcpy(copy, msg, i);
		assert_int_not_equal(ntlm_parse_authenticate(copy, i, &a), 0);
		free(copy);
	}
}

static void test_ntlm_parse_rejects_overlapping_fields(void **state)
{
	struct fx *f = *state;
	struct ntlm_auth a;
	uint8_t msg[2048];
	size_t n = build_auth(&f->m, msg, sizeof(msg));

	/* user field pointing into the domain field */
	memcpy(msg + 40, msg + 32, 4);
	assert_int_equal(ntlm_parse_authenticate(msg, n, &a), NTLM_E_MALFORMED);
	assert_null(a.msg); /* zeroed on error */
}

static void test_ntlm_parse_rejects_out_of_range_offsets(void **state)
{
	struct fx *f = *state;
	const size_t offs[] = {12, 20, 28, 36, 44, 52};
	const uint32_t bad[] = {0xffffffffu, 0xfffffff0u, 40, 0};
	struct ntlm_auth a;
	uint8_t msg[2048], copy[2048];
	size_t n = build_auth(&f->m, msg, sizeof(msg));

	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		for (size_t j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
			memcpy(copy, msg, n);
			put32(copy + offs[i] + 4, bad[j]);
			assert_int_not_equal(ntlm_parse_authenticate(copy, n, &a), 0);
		}
		/* a length running past the end */
		memcpy(copy, msg, n);
		put16(copy + offs[i], (uint16_t)(n + 2));
		assert_int_not_equal(ntlm_parse_authenticate(copy, n, &a), 0);
	}
}

static void test_ntlm_parse_rejects_oversized_fields(void **state)
{
	struct fx *f = *state;
	struct ntlm_auth a;
	uint8_t msg[2048], *big;
	size_t n = build_auth(&f->m, msg, sizeof(msg));

	/* whole message over NTLM_AUTH_MAX */
	big = calloc(1, NTLM_AUTH_MAX + 1);
	assert_non_null(big);
	memcpy(big, msg, n);
	assert_int_equal(ntlm_parse_authenticate(big, NTLM_AUTH_MAX + 1, &a), NTLM_E_TOO_LARGE);
	/* a user name over NTLM_NAME_MAX, inside a message that holds it */
	put16(big + 36, NTLM_NAME_MAX + 2);
	put32(big + 40, (uint32_t)n);
	assert_int_equal(ntlm_parse_authenticate(big, NTLM_AUTH_MAX, &a), NTLM_E_TOO_LARGE);
	memcpy(big, msg, n);
	/* an NT response over NTLM_NT_RESP_MAX */
	put16(big + 20, NTLM_NT_RESP_MAX + 1);
	put32(big + 24, (uint32_t)n);
	assert_int_equal(ntlm_parse_authenticate(big, NTLM_AUTH_MAX, &a), NTLM_E_TOO_LARGE);
	free(big);
}

static void test_ntlm_parse_rejects_wrong_signature_and_type(void **state)
{
	struct fx *f = *state;
	struct ntlm_auth a;
	uint8_t msg[2048];
	size_t n = build_auth(&f->m, msg, sizeof(msg));

	msg[0] = 'n';
	assert_int_equal(ntlm_parse_authenticate(msg, n, &a), NTLM_E_MALFORMED);
	msg[0] = 'N';
	for (uint8_t t = 0; t < 5; t++) {
		msg[8] = t;
		assert_int_equal(ntlm_parse_authenticate(msg, n, &a),
				 t == 3 ? 0 : NTLM_E_MALFORMED);
	}
	/* our own CHALLENGE is not an AUTHENTICATE */
	assert_int_equal(ntlm_parse_authenticate(f->chal, f->chal_len, &a), NTLM_E_MALFORMED);
	assert_int_equal(ntlm_parse_authenticate(NULL, 0, &a), NTLM_E_MALFORMED);
}

static void test_ntlm_parse_rejects_oem_odd_names_short_key(void **state)
{
	struct fx *f = *state;
	struct ntlm_auth a;
	uint8_t msg[2048], copy[2048];
	size_t n = build_auth(&f->m, msg, sizeof(msg));

	memcpy(copy, msg, n);
	put32(copy + 60, DEFAULT_FLAGS & ~NTLM_NEGOTIATE_UNICODE);
	assert_int_equal(ntlm_parse_authenticate(copy, n, &a), NTLM_E_MALFORMED);
	memcpy(copy, msg, n);
	put16(copy + 36, 9); /* odd UTF-16 length */
	assert_int_equal(ntlm_parse_authenticate(copy, n, &a), NTLM_E_MALFORMED);
	memcpy(copy, msg, n);
	put16(copy + 52, 8); /* KEY_EXCH with an 8-byte key */
	assert_int_equal(ntlm_parse_authenticate(copy, n, &a), NTLM_E_MALFORMED);
	memcpy(copy, msg, n);
	put16(copy + 12, 25); /* LM response longer than 24 */
	assert_int_equal(ntlm_parse_authenticate(copy, n, &a), NTLM_E_MALFORMED);
}

/* Offset of the NTLMv2 blob in a built message. */
static size_t blob_off(const uint8_t *msg)
{
	return (size_t)msg[24] + ((size_t)msg[25] << 8) + 16;
}

static void test_ntlm_parse_rejects_bad_blobs(void **state)
{
	struct fx *f = *state;
	struct ntlm_auth a;
	uint8_t msg[2048], copy[2048];
	size_t n, b;

	f->m.mic = true;
	n = build_auth(&f->m, msg, sizeof(msg));
	b = blob_off(msg);
	/* RespType 2 */
	memcpy(copy, msg, n);
	copy[b] = 2;
	assert_int_equal(ntlm_parse_authenticate(copy, n, &a), NTLM_E_MALFORMED);
	/* first AV pair (MsvAvNbDomainName) claims more than the blob holds */
	memcpy(copy, msg, n);
	put16(copy + b + 28 + 2, 0x4000);
	assert_int_equal(ntlm_parse_authenticate(copy, n, &a), NTLM_E_MALFORMED);
	/* MsvAvFlags twice: turn MsvAvNbDomainName (14 bytes) into pairs ... */
	memcpy(copy, msg, n);
	put16(copy + b + 28, 6), put16(copy + b + 30, 4), put32(copy + b + 32, 2);
	put16(copy + b + 36, 7), put16(copy + b + 38, 6); /* filler pair */
	assert_int_equal(ntlm_parse_authenticate(copy, n, &a), NTLM_E_MALFORMED);
	/* MsvAvFlags of the wrong size */
	memcpy(copy, msg, n);
	put16(copy + b + 28, 6), put16(copy + b + 30, 14);
	assert_int_equal(ntlm_parse_authenticate(copy, n, &a), NTLM_E_MALFORMED);
	/* no MsvAvEOL: the NT response ends right after the last pair's header */
	memcpy(copy, msg, n);
	put16(copy + 20, (uint16_t)(16 + 28 + 4 + 14));
	put16(copy + 22, (uint16_t)(16 + 28 + 4 + 14));
	assert_int_equal(ntlm_parse_authenticate(copy, n, &a), NTLM_E_MALFORMED);
	/* MsvAvEOL with a length */
	memcpy(copy, msg, n);
	put16(copy + b + 28, 0), put16(copy + b + 30, 2);
	assert_int_equal(ntlm_parse_authenticate(copy, n, &a), NTLM_E_MALFORMED);
}

static void test_ntlm_parse_av_pair_count_is_bounded(void **state)
{
	struct ntlm_auth a;
	uint8_t *msg = calloc(1, NTLM_AUTH_MAX);
	size_t bl = 28 + 4 * (NTLM_AV_MAX + 1) + 4, n = 72 + 16 + bl;

	(void)state;
	assert_non_null(msg);
	memcpy(msg, "NTLMSSP\0\3\0\0\0", 12);
	put16(msg + 20, (uint16_t)(16 + bl)), put32(msg + 24, 72);
	put32(msg + 60, NTLM_NEGOTIATE_UNICODE | NTLM_NEGOTIATE_VERSION);
	msg[72 + 16] = 1, msg[72 + 17] = 1;
	for (size_t i = 0; i < NTLM_AV_MAX + 1; i++)
		put16(msg + 72 + 16 + 28 + 4 * i, 8); /* empty MsvAvSingleHost pairs */
	assert_int_equal(ntlm_parse_authenticate(msg, n, &a), NTLM_E_TOO_LARGE);
	/* one pair fewer, then MsvAvEOL: fine */
	put16(msg + 72 + 16 + 28 + 4 * (NTLM_AV_MAX - 1), 0);
	assert_int_equal(ntlm_parse_authenticate(msg, n, &a), 0);
	free(msg);
}

static void test_ntlm_garbage_never_verifies(void **state)
{
	struct fx *f = *state;
	uint8_t buf[512], h[16];
	struct ntlm_transcript tr = {0};
	struct ntlm_session s;
	struct ntlm_auth a;
	unsigned seed = 12345;

	assert_int_equal(ntlm_nt_hash(PASSWORD, strlen(PASSWORD), h), 0);
	tr.challenge = f->chal;
	tr.challenge_len = f->chal_len;
	memcpy(tr.server_challenge, f->chal + 24, 8);
	for (int i = 0; i < 2000; i++) {
		size_t n = (size_t)(rand_r(&seed) % sizeof(buf));

		for (size_t k = 0; k < n; k++)
			buf[k] = (uint8_t)rand_r(&seed);
		if (i % 2 && n >= 64) /* a valid header half the time */
			memcpy(buf, "NTLMSSP\0\3\0\0\0", 12);
		if (ntlm_parse_authenticate(buf, n, &a) == 0)
			assert_int_not_equal(ntlm_accept_v2(&a, h, &tr, NULL, &s), 0);
	}
	assert_reason(accept_msg(f, (const uint8_t *)"garbage", 7), "malformed");
}

/* ---- the rest of the codec ---- */

static void test_ntlm_nt_hash_refuses_invalid_utf8(void **state)
{
	const char *bad[] = {"\xc0\xaf",	 "\xed\xa0\x80", "\xe2\x82",
			     "\xf4\x90\x80\x80", "\xff",	 "a\x80"};
	uint8_t h[16], h2[16];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(ntlm_nt_hash(bad[i], strlen(bad[i]), h), -1);
	/* "€" (U+20AC) and U+1F600 are fine and hash as UTF-16 (a surrogate pair) */
	assert_int_equal(ntlm_nt_hash("\xe2\x82\xac", 3, h), 0);
	assert_int_equal(ntlm_nt_hash("\xf0\x9f\x98\x80", 4, h2), 0);
	assert_memory_not_equal(h, h2, 16);
	/* a long password streams through */
	char *longpw = malloc(5000);
	memset(longpw, 'x', 5000);
	assert_int_equal(ntlm_nt_hash(longpw, 5000, h), 0);
	free(longpw);
}

static void test_ntlm_utf16_to_utf8_rules(void **state)
{
	char out[16];

	(void)state;
	assert_int_equal(ntlm_utf16_to_utf8((const uint8_t *)"a\0\xac\x20", 4, out, sizeof(out)),
			 0);
	assert_string_equal(out, "a\xe2\x82\xac");
	assert_int_equal(ntlm_utf16_to_utf8((const uint8_t *)"\x3d\xd8\x00\xde", 4, out, 16), 0);
	assert_string_equal(out, "\xf0\x9f\x98\x80");
	assert_int_equal(ntlm_utf16_to_utf8((const uint8_t *)"\x3d\xd8", 2, out, 16),
			 NTLM_E_MALFORMED); /* lone high surrogate */
	assert_int_equal(ntlm_utf16_to_utf8((const uint8_t *)"\x00\xde", 2, out, 16),
			 NTLM_E_MALFORMED); /* lone low surrogate */
	assert_int_equal(ntlm_utf16_to_utf8((const uint8_t *)"a\0\0\0", 4, out, 16),
			 NTLM_E_MALFORMED); /* NUL */
	assert_int_equal(ntlm_utf16_to_utf8((const uint8_t *)"a\0", 1, out, 16), NTLM_E_MALFORMED);
	assert_int_equal(ntlm_utf16_to_utf8((const uint8_t *)"a\0b\0", 4, out, 2), NTLM_E_BUFFER);
}

static void test_ntlm_challenge_carries_flags_names_and_timestamp(void **state)
{
	struct fx *f = *state;
	struct ntlm_target t = {STR_LIT("EXAMPLE"), STR_LIT("FE01"), STR_LIT("example.test"),
				STR_LIT("fe01.example.test")};
	uint8_t out[NTLM_CHALLENGE_MAX], sc[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	uint32_t flags,
	    want = NTLM_NEGOTIATE_UNICODE | NTLM_NEGOTIATE_NTLM | NTLM_NEGOTIATE_ALWAYS_SIGN |
		   NTLM_NEGOTIATE_EXTENDED_SESSION | NTLM_NEGOTIATE_TARGET_INFO |
		   NTLM_NEGOTIATE_SIGN | NTLM_NEGOTIATE_DATAGRAM | NTLM_NEGOTIATE_IDENTIFY |
		   NTLM_NEGOTIATE_KEY_EXCH | NTLM_NEGOTIATE_128 | NTLM_TARGET_TYPE_DOMAIN;
	size_t len, ti, til, p;
	bool seen[8] = {false};

	assert_int_equal(ntlm_build_challenge(&t, sc, ntlm_filetime(NOW), out, sizeof(out), &len),
			 0);
	assert_memory_equal(out, "NTLMSSP\0\2\0\0\0", 12);
	flags = (uint32_t)out[20] | (uint32_t)out[21] << 8 | (uint32_t)out[22] << 16 |
		(uint32_t)out[23] << 24;
	assert_int_equal(flags & want, want);
	assert_memory_equal(out + 24, sc, 8);
	/* TargetName "EXAMPLE" in UTF-16 */
	assert_int_equal(out[12], 14);
	assert_memory_equal(out + out[16], "E\0X\0A\0M\0P\0L\0E\0", 14);
	ti = (size_t)out[44] | (size_t)out[45] << 8;
	til = (size_t)out[40] | (size_t)out[41] << 8;
	assert_int_equal(ti + til, len);
	for (p = ti; p + 4 <= ti + til;) {
		uint16_t id = (uint16_t)(out[p] | out[p + 1] << 8);
		uint16_t l = (uint16_t)(out[p + 2] | out[p + 3] << 8);

		if (id == 0)
			break;
		assert_true(id < 8);
		seen[id] = true;
		if (id == 7) {
			uint64_t ft = 0;

			for (int k = 7; k >= 0; k--)
				ft = ft << 8 | out[p + 4 + k];
			assert_int_equal(ntlm_filetime_to_unix(ft), NOW);
		}
		p += 4 + l;
	}
	assert_true(seen[1] && seen[2] && seen[3] && seen[4] && seen[7]);
	/* too small a buffer, and a name that is not UTF-8 */
	assert_int_equal(ntlm_build_challenge(&t, sc, 0, out, 60, &len), NTLM_E_BUFFER);
	t.nb_computer = STR_LIT("\xff");
	assert_int_equal(ntlm_build_challenge(&t, sc, 0, out, sizeof(out), &len), NTLM_E_MALFORMED);
	/* vault: the CHALLENGE is what the context will check the MIC against */
	assert_true(f->chal_len > 56);
}

static void test_ntlm_pending_ctx_neither_signs_nor_verifies(void **state)
{
	struct fx *f = *state;
	uint8_t mac[16] = {1};
	size_t ml;

	assert_int_equal(f->mech->sign(f->ctx, mac, 1, mac, sizeof(mac), &ml), -1);
	assert_int_equal(f->mech->verify(f->ctx, mac, 1, mac, sizeof(mac)), -1);
	/* after a failure it never does either */
	f->m.password = "nope";
	assert_reason(accept_built(f), "bad_response");
	assert_int_equal(f->mech->sign(f->ctx, mac, 1, mac, sizeof(mac), &ml), -1);
	assert_reason(accept_built(f), "bad_state");
}

static void test_ntlm_store_outage_is_tempfail_and_ctx_stays_pending(void **state)
{
	struct fx *f = *state;
	sqlite3 *db;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(db, "ALTER TABLE users RENAME TO users_gone", NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(accept_built(f).kind, VERDICT_TEMPFAIL);
	assert_reason(accept_built(f), "store_unavailable");
	assert_int_equal(
	    sqlite3_exec(db, "ALTER TABLE users_gone RENAME TO users", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	/* the client may retry the same handshake once the store is back */
	assert_reason(accept_built(f), "ok");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_ntlm_well_formed_v2_is_accepted_and_ctx_signs),
	    T(test_ntlm_mic_is_checked_when_announced),
	    T(test_ntlm_good_mic_is_accepted),
	    T(test_ntlm_mic_announced_but_payload_in_mic_slot_is_malformed),
	    T(test_ntlm_refuses_ntlmv1_response),
	    T(test_ntlm_refuses_lm_only_response),
	    T(test_ntlm_refuses_anonymous),
	    T(test_ntlm_wrong_password_is_bad_response),
	    T(test_ntlm_response_for_another_challenge_is_bad_response),
	    T(test_ntlm_unknown_user_disabled_and_no_hash),
	    T(test_ntlm_user_name_forms),
	    T(test_ntlm_clock_skew_over_15_minutes_is_refused),
	    T(test_ntlm_channel_bindings_required_when_set),
	    T(test_ntlm_without_datagram_or_ess_is_malformed),
	    T(test_ntlm_parse_every_truncation_fails),
	    T(test_ntlm_parse_rejects_overlapping_fields),
	    T(test_ntlm_parse_rejects_out_of_range_offsets),
	    T(test_ntlm_parse_rejects_oversized_fields),
	    T(test_ntlm_parse_rejects_wrong_signature_and_type),
	    T(test_ntlm_parse_rejects_oem_odd_names_short_key),
	    T(test_ntlm_parse_rejects_bad_blobs),
	    cmocka_unit_test(test_ntlm_parse_av_pair_count_is_bounded),
	    T(test_ntlm_garbage_never_verifies),
	    cmocka_unit_test(test_ntlm_nt_hash_refuses_invalid_utf8),
	    cmocka_unit_test(test_ntlm_utf16_to_utf8_rules),
	    T(test_ntlm_challenge_carries_flags_names_and_timestamp),
	    T(test_ntlm_pending_ctx_neither_signs_nor_verifies),
	    T(test_ntlm_store_outage_is_tempfail_and_ctx_stays_pending),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
