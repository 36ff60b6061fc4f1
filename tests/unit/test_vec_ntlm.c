/*
 * NTLM vectors: [MS-NLMP] §4.2.1/§4.2.4 (NTLMv2 with extended session
 * security: user "User", domain "Domain", password "Password", server
 * challenge 0123456789abcdef, client challenge aa.., time 0, random session
 * key 55..), and the real Office Communicator 2007 R2 / OCS 2007 R2 trace
 * from pidgin-sipe's src/core/sip-sec-ntlm-tests.c (its CHALLENGE and
 * AUTHENTICATE messages, password, signature buffers and the MS-SIPAE
 * signatures both directions, sequence number 100). Test data only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth/ntlm.h"
#include "store/store.h"
#include "vault/vault_ntlm.h"

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex) / 2;

	assert_true(n <= cap);
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
	return n;
}

static void assert_hex(const uint8_t *got, size_t len, const char *want)
{
	uint8_t w[512];

	assert_int_equal(unhex(want, w, sizeof(w)), len);
	assert_memory_equal(got, w, len);
}

/* ---- [MS-NLMP] §4.2 ---- */

#define MS_CHALLENGE                                                                               \
	"4e544c4d53535000020000000c000c003800000033828ae20123456789abcdef000000000000000024002400" \
	"44000000060070170000000f53006500720076006500720002000c0044006f006d00610069006e0001000c00" \
	"53006500720076006500720000000000"

#define MS_AUTHENTICATE                                                                            \
	"4e544c4d5353500003000000180018006c00000054005400840000000c000c00480000000800080054000000" \
	"100010005c00000010001000d8000000358288e20501280a0000000f44006f006d00610069006e0055007300" \
	"6500720043004f004d005000550054004500520086c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa" \
	"68cd0ab851e51c96aabc927bebef6a1c01010000000000000000000000000000aaaaaaaaaaaaaaaa00000000" \
	"02000c0044006f006d00610069006e0001000c005300650072007600650072000000000000000000c5dad254" \
	"4fc9799094ce1ce90bc9d03e"

static const uint8_t ms_server_challenge[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};

static void test_vec_ntowfv1_is_md4_of_utf16_password(void **state)
{
	uint8_t h[16];

	(void)state;
	assert_int_equal(ntlm_nt_hash("Password", 8, h), 0);
	assert_hex(h, 16, "a4f49c406510bdcab6824ee7c30fd852");
}

static void test_vec_ntowfv2_uppercases_user_and_keeps_domain(void **state)
{
	static const uint8_t user[] = {'u', 0, 's', 0, 'e', 0, 'r', 0};
	static const uint8_t dom[] = {'D', 0, 'o', 0, 'm', 0, 'a', 0, 'i', 0, 'n', 0};
	uint8_t h[16], v2[16];

	(void)state;
	assert_int_equal(ntlm_nt_hash("Password", 8, h), 0);
	/* "user" upper-cases to "User" upper-cased: the same key as for "USER" */
	assert_int_equal(ntlm_ntowfv2(h, user, sizeof(user), dom, sizeof(dom), v2), 0);
	assert_hex(v2, 16, "0c868a403bfd7a93a3001ef22ef02e3f");
}

static void test_vec_ntlmv2_authenticate_verifies_and_yields_keys(void **state)
{
	uint8_t chal[256], auth[512], h[16], sig[16], pt_and_ck[18 + 8], enc[18 + 8];
	struct ntlm_transcript tr = {0};
	struct ntlm_session s;
	struct ntlm_auth a;
	size_t clen, alen;

	(void)state;
	clen = unhex(MS_CHALLENGE, chal, sizeof(chal));
	alen = unhex(MS_AUTHENTICATE, auth, sizeof(auth));
	assert_int_equal(ntlm_parse_authenticate(auth, alen, &a), 0);
	assert_int_equal(a.nt_len, 84);
	assert_false(a.has_mic);
	assert_int_equal(a.blob_time, 0);
	/* NTProofStr as sent */
	assert_hex(a.nt, 16, "68cd0ab851e51c96aabc927bebef6a1c");
	/* LMv2 response as sent (we ignore it) */
	assert_hex(a.lm, 24, "86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa");

	assert_int_equal(ntlm_nt_hash("Password", 8, h), 0);
	tr.challenge = chal;
	tr.challenge_len = clen;
	memcpy(tr.server_challenge, ms_server_challenge, 8);
	assert_int_equal(ntlm_accept_v2(&a, h, &tr, NULL, &s), 0);
	/* KEY_EXCH: RC4(SessionBaseKey 8de40cca.., c5dad254..) = RandomSessionKey 55.. */
	assert_hex(s.exported_key, 16, "55555555555555555555555555555555");
	assert_hex(s.client_sign, 16, "4788dc861b4782f35d43fd98fe1a2d39");
	assert_hex(s.client_seal, 16, "59f600973cc4960a25480a7c196e4c58");

	/* §4.2.4.4: the checksum before RC4, without KEY_EXCH */
	assert_int_equal(ntlm_mac(s.flags & ~NTLM_NEGOTIATE_KEY_EXCH, s.client_sign, s.client_seal,
				  0, (const uint8_t *)"P\0l\0a\0i\0n\0t\0e\0x\0t\0", 18, sig),
			 0);
	assert_hex(sig, 16, "0100000070352851f256430900000000");
	/* §4.2.4.4 SEAL: in connection-oriented mode the same RC4 stream seals
	 * the data, then encrypts the checksum (one handle): the vector's
	 * sealed data and RC4'd checksum come out of one pass. */
	memcpy(pt_and_ck, "P\0l\0a\0i\0n\0t\0e\0x\0t\0", 18);
	memcpy(pt_and_ck + 18, sig + 4, 8);
	assert_int_equal(ntlm_rc4(s.client_seal, pt_and_ck, sizeof(pt_and_ck), enc), 0);
	assert_hex(enc, 18, "54e50165bf1936dc996020c1811b0f06fb5f");
	assert_hex(enc + 18, 8, "7fb38ec5c55d4976");
	/* Connection-oriented KEY_EXCH needs that stream state: refused */
	assert_int_equal(ntlm_mac(s.flags, s.client_sign, s.client_seal, 0, pt_and_ck, 18, sig),
			 NTLM_E_UNSUPPORTED);
}

static void test_vec_ntlmv2_authenticate_wrong_password_is_bad_response(void **state)
{
	uint8_t chal[256], auth[512], h[16];
	struct ntlm_transcript tr = {0};
	struct ntlm_session s;
	struct ntlm_auth a;
	size_t alen;

	(void)state;
	tr.challenge_len = unhex(MS_CHALLENGE, chal, sizeof(chal));
	tr.challenge = chal;
	memcpy(tr.server_challenge, ms_server_challenge, 8);
	alen = unhex(MS_AUTHENTICATE, auth, sizeof(auth));
	assert_int_equal(ntlm_parse_authenticate(auth, alen, &a), 0);
	assert_int_equal(ntlm_nt_hash("password", 8, h), 0);
	assert_int_equal(ntlm_accept_v2(&a, h, &tr, NULL, &s), NTLM_E_BAD_RESPONSE);
	/* and another server challenge with the right password */
	assert_int_equal(ntlm_nt_hash("Password", 8, h), 0);
	tr.server_challenge[7] ^= 1;
	assert_int_equal(ntlm_accept_v2(&a, h, &tr, NULL, &s), NTLM_E_BAD_RESPONSE);
}

/* ---- pidgin-sipe: Communicator 2007 R2 <-> OCS 2007 R2 ---- */

#define SIPE_CHALLENGE                                                                             \
	"4E544C4D53535000020000000000000038000000F38298E2DD1BAAF4E7E218D1000000000000000096009600" \
	"380000000502CE0E0000000F02000A0043004F0053004D004F000100180043004F0053004D004F002D004F00" \
	"430053002D00520032000400160063006F0073006D006F002E006C006F00630061006C000300300063006F00" \
	"73006D006F002D006F00630073002D00720032002E0063006F0073006D006F002E006C006F00630061006C00" \
	"0500160063006F0073006D006F002E006C006F00630061006C0000000000"

#define SIPE_AUTHENTICATE                                                                          \
	"4E544C4D53535000030000001800180072000000C600C6008A0000000A000A00480000000800080052000000" \
	"180018005A0000001000100050010000558298620502CE0E0000000F43004F0053004D004F00550073006500" \
	"720043004F0053004D004F002D004F00430053002D0052003200A1E92EFE4E078BF7C5C0049ACC6166C2D6AE" \
	"875CB0FDAA418DC0C800AE76ECA606D2B9FBEBD04731010100000000000059519A1727B9CA01D6AE875CB0FD" \
	"AA410000000002000A0043004F0053004D004F000100180043004F0053004D004F002D004F00430053002D00" \
	"520032000400160063006F0073006D006F002E006C006F00630061006C000300300063006F0073006D006F00" \
	"2D006F00630073002D00720032002E0063006F0073006D006F002E006C006F00630061006C00050016006300" \
	"6F0073006D006F002E006C006F00630061006C00000000000000000031CB739E1CA80A498591E8AE797115E4"

#define SIPE_PASSWORD "Pa$$word"

static const char sipe_request_sig[] =
    "<NTLM><13317733><1><SIP Communications Service><cosmo-ocs-r2.cosmo.local>"
    "<4037df9284354df39065195bd57a4b14><3><REGISTER><sip:user@cosmo.local><3e49177a52>"
    "<sip:user@cosmo.local><><><><>";
static const char sipe_response_sig[] =
    "<NTLM><9616454F><1><SIP Communications Service><cosmo-ocs-r2.cosmo.local>"
    "<4037df9284354df39065195bd57a4b14><3><REGISTER><sip:user@cosmo.local><3e49177a52>"
    "<sip:user@cosmo.local><5E61CCD925D17E043D9A74835A88F664><><><7200><200>";
#define SIPE_REQUEST_MAC  "0100000029618e9651b65a7764000000"
#define SIPE_RESPONSE_MAC "01000000E615438A917661BE64000000"
#define SIPE_BLOB_TIME	  0x01cab927179a5159ull /* Mon Mar 01 10:08:08 2010 */

static void sipe_session(struct ntlm_session *s)
{
	uint8_t chal[512], auth[512], h[16];
	struct ntlm_transcript tr = {0};
	struct ntlm_auth a;
	size_t alen;

	tr.challenge_len = unhex(SIPE_CHALLENGE, chal, sizeof(chal));
	tr.challenge = chal;
	memcpy(tr.server_challenge, chal + 24, 8);
	assert_hex(tr.server_challenge, 8, "DD1BAAF4E7E218D1");
	alen = unhex(SIPE_AUTHENTICATE, auth, sizeof(auth));
	assert_int_equal(ntlm_parse_authenticate(auth, alen, &a), 0);
	assert_true(a.flags & NTLM_NEGOTIATE_DATAGRAM);
	assert_true(a.flags & NTLM_NEGOTIATE_KEY_EXCH);
	assert_int_equal(a.blob_time, SIPE_BLOB_TIME);
	assert_int_equal(ntlm_nt_hash(SIPE_PASSWORD, strlen(SIPE_PASSWORD), h), 0);
	assert_int_equal(ntlm_accept_v2(&a, h, &tr, NULL, s), 0);
}

static void test_vec_sipe_trace_authenticate_verifies(void **state)
{
	struct ntlm_session s;

	(void)state;
	sipe_session(&s);
	assert_true(s.flags & NTLM_NEGOTIATE_EXTENDED_SESSION);
}

static void test_vec_sipe_trace_client_signature_verifies_with_seq_100(void **state)
{
	const uint8_t *buf = (const uint8_t *)sipe_request_sig;
	uint8_t want[16], sig[16];
	struct ntlm_session s;

	(void)state;
	sipe_session(&s);
	unhex(SIPE_REQUEST_MAC, want, sizeof(want));
	assert_int_equal(ntlm_mac(s.flags, s.client_sign, s.client_seal, 100, buf,
				  strlen(sipe_request_sig), sig),
			 0);
	assert_memory_equal(sig, want, 16);
	assert_int_equal(ntlm_server_verify(&s, 100, buf, strlen(sipe_request_sig), want, 16), 0);
	/* another sequence number, one changed byte, or a short MAC: refused */
	assert_int_equal(ntlm_server_verify(&s, 1, buf, strlen(sipe_request_sig), want, 16), -1);
	assert_int_equal(ntlm_server_verify(&s, 100, buf, strlen(sipe_request_sig) - 1, want, 16),
			 -1);
	assert_int_equal(ntlm_server_verify(&s, 100, buf, strlen(sipe_request_sig), want, 15), -1);
}

static void test_vec_sipe_trace_server_signature_reproduced(void **state)
{
	const uint8_t *buf = (const uint8_t *)sipe_response_sig;
	struct ntlm_session s;
	uint8_t sig[16];

	(void)state;
	sipe_session(&s);
	assert_int_equal(ntlm_server_sign(&s, 100, buf, strlen(sipe_response_sig), sig), 0);
	assert_hex(sig, 16, SIPE_RESPONSE_MAC);
}

/* ---- the vault over the same trace ---- */

static const struct vault_ntlm_names cosmo = {"COSMO", "COSMO-OCS-R2", "cosmo.local",
					      "cosmo-ocs-r2.cosmo.local"};

struct fx {
	char dir[64];
	char path[128];
	struct store *s;
	struct store_user u;
};

static int vault_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256], user[STORE_URI_MAX], domain[STORE_URI_MAX];
	struct store_cred c[2];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/rtc-vecntlm-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/store.db", f->dir);
	assert_int_equal(store_open(f->path, STORE_CREATE, 50, &f->s, err, sizeof(err)), STORE_OK);
	assert_int_equal(store_uri_normalise("sip:User@cosmo.local", f->u.uri, user, domain), 0);
	f->u.enabled = true;
	assert_int_equal(store_user_add(f->s, &f->u), STORE_OK);
	memset(c, 0, sizeof(c));
	for (int i = 0; i < 2; i++) {
		snprintf(c[i].mech, sizeof(c[i].mech), "nt");
		snprintf(c[i].variant, sizeof(c[i].variant), i ? "user@domain" : "user");
		assert_int_equal(ntlm_nt_hash(SIPE_PASSWORD, strlen(SIPE_PASSWORD), c[i].key), 0);
		c[i].key_len = 16;
	}
	assert_int_equal(store_cred_replace(f->s, f->u.id, c, 2), STORE_OK);
	*state = f;
	return 0;
}

static int vault_teardown(void **state)
{
	struct fx *f = *state;
	char p[200];

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

static void test_vec_sipe_trace_vault_accepts_and_signs(void **state)
{
	struct fx *f = *state;
	uint8_t chal[512], auth[512], want[16], mac[64];
	const struct sa_mech *mech;
	struct store_user u;
	struct verdict v;
	size_t clen, alen, mlen;
	void *ctx;

	clen = unhex(SIPE_CHALLENGE, chal, sizeof(chal));
	alen = unhex(SIPE_AUTHENTICATE, auth, sizeof(auth));
	assert_int_equal(vault_ntlm_ctx_with_challenge(chal, clen, &cosmo, &mech, &ctx), 0);
	/* before the handshake completes nothing signs */
	assert_int_equal(mech->sign(ctx, (const uint8_t *)"x", 1, mac, sizeof(mac), &mlen), -1);
	v = vault_ntlm_accept(f->s, ctx, auth, alen, STR_LIT("cosmo.local"),
			      ntlm_filetime_to_unix(SIPE_BLOB_TIME) + 60, &u);
	assert_int_equal(v.kind, VERDICT_OK);
	assert_string_equal(u.uri, "sip:User@cosmo.local");
	unhex(SIPE_REQUEST_MAC, want, sizeof(want));
	assert_int_equal(mech->verify(ctx, (const uint8_t *)sipe_request_sig,
				      strlen(sipe_request_sig), want, 16),
			 0);
	assert_int_equal(mech->sign(ctx, (const uint8_t *)sipe_response_sig,
				    strlen(sipe_response_sig), mac, sizeof(mac), &mlen),
			 0);
	assert_int_equal(mlen, 16);
	assert_hex(mac, 16, SIPE_RESPONSE_MAC);
	mech->free(ctx);
}

static void test_vec_sipe_trace_vault_refuses_old_timestamp(void **state)
{
	struct fx *f = *state;
	uint8_t chal[512], auth[512];
	const struct sa_mech *mech;
	struct store_user u;
	struct verdict v;
	size_t clen, alen;
	void *ctx;

	clen = unhex(SIPE_CHALLENGE, chal, sizeof(chal));
	alen = unhex(SIPE_AUTHENTICATE, auth, sizeof(auth));
	assert_int_equal(vault_ntlm_ctx_with_challenge(chal, clen, &cosmo, &mech, &ctx), 0);
	v = vault_ntlm_accept(f->s, ctx, auth, alen, STR_LIT("cosmo.local"),
			      ntlm_filetime_to_unix(SIPE_BLOB_TIME) + 16 * 60, &u);
	assert_int_equal(v.kind, VERDICT_PERMFAIL);
	assert_string_equal(v.reason, "clock_skew");
	mech->free(ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vec_ntowfv1_is_md4_of_utf16_password),
	    cmocka_unit_test(test_vec_ntowfv2_uppercases_user_and_keeps_domain),
	    cmocka_unit_test(test_vec_ntlmv2_authenticate_verifies_and_yields_keys),
	    cmocka_unit_test(test_vec_ntlmv2_authenticate_wrong_password_is_bad_response),
	    cmocka_unit_test(test_vec_sipe_trace_authenticate_verifies),
	    cmocka_unit_test(test_vec_sipe_trace_client_signature_verifies_with_seq_100),
	    cmocka_unit_test(test_vec_sipe_trace_server_signature_reproduced),
	    cmocka_unit_test_setup_teardown(test_vec_sipe_trace_vault_accepts_and_signs,
					    vault_setup, vault_teardown),
	    cmocka_unit_test_setup_teardown(test_vec_sipe_trace_vault_refuses_old_timestamp,
					    vault_setup, vault_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
