/*
 * libFuzzer target for the NTLM acceptor: ntlm_parse_authenticate on
 * arbitrary bytes, then for messages that parse, the name conversion and
 * the full NTLMv2 verification (NTProofStr, key exchange, MIC, channel
 * bindings) against a fixed NT hash and the CHALLENGE of the pidgin-sipe
 * trace (so its AUTHENTICATE, in the seed corpus, verifies and reaches the
 * signing code). Checks the parser's promises: every field inside the
 * message, lengths within their bounds. The input is copied into an
 * exact-size buffer so any read past the end is caught.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/ntlm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The first 56 bytes of pidgin-sipe's OCS 2007 R2 CHALLENGE (server challenge
 * DD1BAAF4E7E218D1); its AUTHENTICATE has no MIC, so the rest is not needed. */
static const uint8_t sipe_challenge[] = {
    0x4e, 0x54, 0x4c, 0x4d, 0x53, 0x53, 0x50, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x38, 0x00, 0x00, 0x00, 0xf3, 0x82, 0x98, 0xe2, 0xdd, 0x1b, 0xaa, 0xf4,
    0xe7, 0xe2, 0x18, 0xd1, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x96, 0x00,
    0x96, 0x00, 0x38, 0x00, 0x00, 0x00, 0x05, 0x02, 0xce, 0x0e, 0x00, 0x00, 0x00, 0x0f};

static const uint8_t *lo, *hi;

static void inside(const uint8_t *p, size_t len)
{
	volatile uint8_t x = 0;

	if (len && (p < lo || p + len > hi))
		abort();
	for (size_t i = 0; i < len; i++)
		x ^= p[i];
	(void)x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t hash[16];
	static int init;
	struct ntlm_transcript tr = {0};
	struct ntlm_session s;
	struct ntlm_auth a;
	uint8_t *msg, cbt[16], sig[NTLM_SIG_LEN];
	char name[NTLM_NAME_MAX * 2];
	int rc;

	if (!init) {
		if (ntlm_nt_hash("Pa$$word", 8, hash))
			abort();
		init = 1;
	}
	msg = malloc(size ? size : 1);
	if (!msg)
		return 0;
	memcpy(msg, data, size);
	lo = msg;
	hi = msg + size;
	rc = ntlm_parse_authenticate(msg, size, &a);
	if (rc == 0) {
		inside(a.lm, a.lm_len);
		inside(a.nt, a.nt_len);
		inside(a.domain, a.domain_len);
		inside(a.user, a.user_len);
		inside(a.workstation, a.workstation_len);
		inside(a.enc_key, a.enc_key_len);
		if (a.has_mic)
			inside(a.mic, 16);
		if (a.has_cbt)
			inside(a.cbt, 16);
		if (a.user_len > NTLM_NAME_MAX || a.domain_len > NTLM_NAME_MAX ||
		    a.nt_len > NTLM_NT_RESP_MAX || a.nt_len < 16 + 28 || a.lm_len > 24)
			abort();
		(void)ntlm_utf16_to_utf8(a.user, a.user_len, name, sizeof(name));
		(void)ntlm_utf16_to_utf8(a.domain, a.domain_len, name, sizeof(name));

		tr.challenge = sipe_challenge;
		tr.challenge_len = sizeof(sipe_challenge);
		memcpy(tr.server_challenge, sipe_challenge + 24, 8);
		memset(cbt, size & 1 ? 0 : 0x11, sizeof(cbt));
		rc = ntlm_accept_v2(&a, hash, &tr, cbt, &s);
		if (rc == 0 || rc == NTLM_E_CBT) {
			rc = ntlm_accept_v2(&a, hash, &tr, NULL, &s);
			if (rc == 0) {
				(void)ntlm_server_sign(&s, 100, msg, size, sig);
				(void)ntlm_server_verify(&s, 100, msg, size, sig, sizeof(sig));
			}
		}
	} else if (rc != NTLM_E_MALFORMED && rc != NTLM_E_TOO_LARGE && rc != NTLM_E_V1) {
		abort();
	}
	free(msg);
	return 0;
}
