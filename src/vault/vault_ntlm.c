/*
 * The vault's NTLM acceptor (see vault_ntlm.h and docs/design.md "NTLM
 * acceptor: our own"): NT hashes come from the store and never leave this
 * file; the NTLM codec and crypto are src/auth/ntlm.c. Must never log, and
 * never tell an unknown user from a wrong password by the work it does.
 */
#include "vault/vault_ntlm.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "auth/ntlm.h"
#include "core/secmem.h"

enum ctx_state { CTX_PENDING = 0, CTX_ESTABLISHED, CTX_FAILED };

#define NAME_MAX_LEN 256

struct vault_ntlm_ctx {
	enum ctx_state state;
	uint8_t server_challenge[8];
	uint8_t challenge[NTLM_CHALLENGE_MAX];
	size_t challenge_len;
	char nb_domain[NAME_MAX_LEN];
	char dns_domain[NAME_MAX_LEN];
	bool has_cbt;
	uint8_t cbt[16];
	struct ntlm_session sess; /* valid when CTX_ESTABLISHED */
	/* connection-oriented (vault_ntlm_challenge_co): the NEGOTIATE the MIC
	 * covers, and once established one signing state per direction */
	bool co;
	uint8_t negotiate[NTLM_NEGOTIATE_MAX];
	size_t negotiate_len;
	struct ntlm_co co_in;  /* client -> server */
	struct ntlm_co co_out; /* server -> client */
};

/*
 * Stand-in NT hash for unknown users and users without one: the response
 * is computed against it exactly as against a real hash. It can never lead
 * to OK: the verdict for those paths is fixed before the comparison.
 */
static const uint8_t dummy_nt[16] = {0x3c, 0x91, 0x0e, 0xa7, 0x58, 0xd2, 0x6b, 0x14,
				     0xf0, 0x29, 0x8e, 0x47, 0xb5, 0x63, 0xca, 0x1d};

static int ctx_sign(void *p, const uint8_t *buf, size_t len, uint8_t *mac, size_t cap,
		    size_t *mac_len)
{
	struct vault_ntlm_ctx *c = p;

	if (mac_len)
		*mac_len = 0;
	if (!c || c->state != CTX_ESTABLISHED || !mac || cap < NTLM_SIG_LEN || !mac_len)
		return -1;
	if (ntlm_server_sign(&c->sess, VAULT_NTLM_SIPAE_SEQ, buf, len, mac))
		return -1;
	*mac_len = NTLM_SIG_LEN;
	return 0;
}

static int ctx_verify(void *p, const uint8_t *buf, size_t len, const uint8_t *mac, size_t mac_len)
{
	struct vault_ntlm_ctx *c = p;

	if (!c || c->state != CTX_ESTABLISHED)
		return -1;
	return ntlm_server_verify(&c->sess, VAULT_NTLM_SIPAE_SEQ, buf, len, mac, mac_len);
}

static void ctx_free(void *p)
{
	struct vault_ntlm_ctx *c = p;

	if (!c)
		return;
	ntlm_co_free(&c->co_in);
	ntlm_co_free(&c->co_out);
	secmem_wipe(c, sizeof(*c));
	free(c);
}

static const struct sa_mech ntlm_mech = {
    .sign = ctx_sign,
    .verify = ctx_verify,
    .free = ctx_free,
};

static int copy_name(const char *in, char *out)
{
	size_t n = in ? strlen(in) : 0;

	if (n >= NAME_MAX_LEN)
		return -1;
	memcpy(out, in ? in : "", n);
	out[n] = '\0';
	return 0;
}

static struct vault_ntlm_ctx *ctx_new(const struct vault_ntlm_names *names)
{
	struct vault_ntlm_ctx *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	if (names && (copy_name(names->nb_domain, c->nb_domain) < 0 ||
		      copy_name(names->dns_domain, c->dns_domain) < 0)) {
		free(c);
		return NULL;
	}
	return c;
}

int vault_ntlm_challenge(const struct vault_ntlm_names *names, uint64_t now_wall_s,
			 const struct sa_mech **mech, void **ctx, uint8_t *challenge_msg,
			 size_t cap, size_t *len)
{
	struct ntlm_target t;
	struct vault_ntlm_ctx *c;

	if (mech)
		*mech = NULL;
	if (ctx)
		*ctx = NULL;
	if (len)
		*len = 0;
	if (!names || !mech || !ctx || !challenge_msg || !len)
		return -1;
	c = ctx_new(names);
	if (!c)
		return -1;
	t.nb_domain = str_cstr(names->nb_domain);
	t.nb_computer = str_cstr(names->nb_computer);
	t.dns_domain = str_cstr(names->dns_domain);
	t.dns_computer = str_cstr(names->dns_computer);
	if (secmem_random(c->server_challenge, sizeof(c->server_challenge)) < 0 ||
	    ntlm_build_challenge(&t, c->server_challenge, ntlm_filetime(now_wall_s), c->challenge,
				 sizeof(c->challenge), &c->challenge_len) != 0 ||
	    c->challenge_len > cap) {
		ctx_free(c);
		return -1;
	}
	memcpy(challenge_msg, c->challenge, c->challenge_len);
	*len = c->challenge_len;
	*mech = &ntlm_mech;
	*ctx = c;
	return 0;
}

int vault_ntlm_ctx_with_challenge(const uint8_t *challenge_msg, size_t len,
				  const struct vault_ntlm_names *names, const struct sa_mech **mech,
				  void **ctx)
{
	static const uint8_t sig[12] = {'N', 'T', 'L', 'M', 'S', 'S', 'P', 0, 2, 0, 0, 0};
	struct vault_ntlm_ctx *c;

	if (mech)
		*mech = NULL;
	if (ctx)
		*ctx = NULL;
	if (!challenge_msg || len < 32 || len > NTLM_CHALLENGE_MAX || !mech || !ctx ||
	    memcmp(challenge_msg, sig, sizeof(sig)) != 0)
		return -1;
	c = ctx_new(names);
	if (!c)
		return -1;
	memcpy(c->server_challenge, challenge_msg + 24, 8);
	memcpy(c->challenge, challenge_msg, len);
	c->challenge_len = len;
	*mech = &ntlm_mech;
	*ctx = c;
	return 0;
}

int vault_ntlm_set_channel_bindings(void *ctx, const uint8_t hash[16])
{
	struct vault_ntlm_ctx *c = ctx;

	if (!c || c->state != CTX_PENDING)
		return -1;
	c->has_cbt = hash != NULL;
	if (hash)
		memcpy(c->cbt, hash, 16);
	else
		memset(c->cbt, 0, 16);
	return 0;
}

/*
 * The store name for the AUTHENTICATE's user and domain fields: "user" or
 * "user@domain" as sent, "DOMAIN\user" split when the domain field is empty.
 * The domain must be empty or one of ours. *known false: a name we cannot
 * have (checked against the dummy hash). -1: not valid UTF-16.
 */
static int map_name(const struct ntlm_auth *a, const struct vault_ntlm_ctx *c, struct str realm,
		    char *name, size_t cap, bool *known)
{
	char user[NTLM_NAME_MAX * 2], dom[NTLM_NAME_MAX * 2];
	const char *u = user;
	struct str d;
	char *bs;

	*known = false;
	name[0] = '\0';
	if (ntlm_utf16_to_utf8(a->user, a->user_len, user, sizeof(user)) ||
	    ntlm_utf16_to_utf8(a->domain, a->domain_len, dom, sizeof(dom)))
		return -1;
	d = str_cstr(dom);
	bs = strchr(user, '\\');
	if (bs && d.len == 0) {
		d = str_make(user, (size_t)(bs - user));
		u = bs + 1;
	}
	if (*u == '\0' || strchr(u, '\\') || strlen(u) >= cap)
		return 0;
	if (d.len && !str_caseeq_cstr(d, c->nb_domain) && !str_caseeq_cstr(d, c->dns_domain) &&
	    !str_caseeq(d, realm))
		return 0;
	memcpy(name, u, strlen(u) + 1);
	*known = true;
	return 0;
}

static const char *ntlm_reason(int rc)
{
	switch (rc) {
	case NTLM_E_V1:
		return "ntlm_v1";
	case NTLM_E_BAD_RESPONSE:
		return "bad_response";
	case NTLM_E_BAD_MIC:
		return "bad_mic";
	case NTLM_E_CBT:
		return "bad_channel_bindings";
	default:
		return "malformed";
	}
}

static bool skewed(uint64_t blob_time, uint64_t now_wall_s)
{
	uint64_t now = ntlm_filetime(now_wall_s), max = (uint64_t)VAULT_NTLM_MAX_SKEW * 10000000ull;

	return blob_time > now ? blob_time - now > max : now - blob_time > max;
}

/* MS-SIPAE signs with extended session security in connectionless mode. */
#define REQUIRED_FLAGS (NTLM_NEGOTIATE_EXTENDED_SESSION | NTLM_NEGOTIATE_DATAGRAM)

struct verdict vault_ntlm_accept(struct store *s, void *ctx, const uint8_t *auth_msg, size_t len,
				 struct str realm, uint64_t now_wall_s, struct store_user *user)
{
	struct vault_ntlm_ctx *c = ctx;
	char name[NAME_MAX_LEN];
	struct ntlm_transcript tr;
	struct ntlm_session sess;
	struct store_user u;
	struct store_cred key;
	struct ntlm_auth a;
	const uint8_t *hash = dummy_nt;
	const char *reason = NULL; /* set: PERMFAIL whatever the response */
	bool known;
	int rc;

	if (!s || !c)
		return verdict_tempfail("internal_error");
	if (c->state != CTX_PENDING)
		return verdict_permfail("bad_state");
	memset(&u, 0, sizeof(u));
	memset(&key, 0, sizeof(key));

	rc = ntlm_parse_authenticate(auth_msg, len, &a);
	if (rc == 0 && !c->co && (a.flags & REQUIRED_FLAGS) != REQUIRED_FLAGS)
		rc = NTLM_E_MALFORMED;
	/* connection-oriented: signing needs extended session security; a
	 * DATAGRAM we did not offer is a confused or tampered message */
	if (rc == 0 && c->co &&
	    (!(a.flags & NTLM_NEGOTIATE_EXTENDED_SESSION) || (a.flags & NTLM_NEGOTIATE_DATAGRAM)))
		rc = NTLM_E_MALFORMED;
	if (rc == 0 && map_name(&a, c, realm, name, sizeof(name), &known) < 0)
		rc = NTLM_E_MALFORMED;
	if (rc) {
		c->state = CTX_FAILED;
		return verdict_permfail(ntlm_reason(rc));
	}

	/* A name we cannot have is still looked up (the same store work as any
	 * other), but whatever the store says it is an unknown user. */
	rc = store_digest_lookup(s, str_cstr(known ? name : "\x01"), realm, "nt", &u, &key);
	if (!known && (rc == STORE_OK || rc == STORE_NOTFOUND || rc == STORE_INVALID)) {
		secmem_wipe(&key, sizeof(key));
		memset(&u, 0, sizeof(u));
		reason = "unknown_user";
	} else {
		switch (rc) {
		case STORE_OK:
			if (key.key_len != 16) {
				secmem_wipe(&key, sizeof(key));
				return verdict_tempfail("store_unavailable"); /* wrong size */
			}
			hash = key.key;
			if (!u.enabled)
				reason = "disabled";
			break;
		case STORE_NOTFOUND:
		case STORE_INVALID:
			reason = u.id > 0 && rc == STORE_NOTFOUND ? "no_password" : "unknown_user";
			break;
		default:
			/* An outage is "try later", never "wrong password"; ctx stays pending. */
			secmem_wipe(&key, sizeof(key));
			return verdict_tempfail("store_unavailable");
		}
	}

	/* The same work on every path from here. */
	memset(&tr, 0, sizeof(tr));
	if (c->co) {
		tr.negotiate = c->negotiate;
		tr.negotiate_len = c->negotiate_len;
	}
	tr.challenge = c->challenge;
	tr.challenge_len = c->challenge_len;
	memcpy(tr.server_challenge, c->server_challenge, 8);
	rc = ntlm_accept_v2(&a, hash, &tr, c->has_cbt ? c->cbt : NULL, &sess);
	secmem_wipe(&key, sizeof(key));

	if (rc == NTLM_E_CRYPTO)
		return verdict_tempfail("internal_error");
	c->state = CTX_FAILED;
	if (reason || rc) {
		secmem_wipe(&sess, sizeof(sess));
		return verdict_permfail(reason ? reason : ntlm_reason(rc));
	}
	/* MS-NLMP 3.3.2: the client's timestamp must be recent */
	if (skewed(a.blob_time, now_wall_s)) {
		secmem_wipe(&sess, sizeof(sess));
		return verdict_permfail("clock_skew");
	}
	if (c->co && (ntlm_co_init(&c->co_in, sess.flags, sess.client_sign, sess.client_seal) ||
		      ntlm_co_init(&c->co_out, sess.flags, sess.server_sign, sess.server_seal))) {
		secmem_wipe(&sess, sizeof(sess));
		ntlm_co_free(&c->co_in);
		return verdict_tempfail("internal_error");
	}
	c->sess = sess;
	secmem_wipe(&sess, sizeof(sess));
	c->state = CTX_ESTABLISHED;
	if (user)
		*user = u;
	return verdict_ok();
}

/* MS-NLMP 2.2.1.2: NegotiateFlags of a CHALLENGE message. */
#define CHALLENGE_FLAGS_OFF 20

int vault_ntlm_challenge_co(const struct vault_ntlm_names *names, uint64_t now_wall_s,
			    const uint8_t *negotiate, size_t neg_len, const struct sa_mech **mech,
			    void **ctx, uint8_t *challenge_msg, size_t cap, size_t *len)
{
	struct vault_ntlm_ctx *c;
	uint32_t nf = 0, cf;

	if (mech)
		*mech = NULL;
	if (ctx)
		*ctx = NULL;
	if (len)
		*len = 0;
	if (!negotiate || ntlm_negotiate_flags(negotiate, neg_len, &nf) != 0)
		return -2;
	cf = ntlm_co_challenge_flags(nf);
	if (cf == 0)
		return -2;
	if (vault_ntlm_challenge(names, now_wall_s, mech, ctx, challenge_msg, cap, len) != 0)
		return -1;
	c = *ctx;
	/* the same message with the connection-oriented flags, in both the
	 * copy the MIC covers and the caller's */
	for (int i = 0; i < 4; i++)
		c->challenge[CHALLENGE_FLAGS_OFF + i] = challenge_msg[CHALLENGE_FLAGS_OFF + i] =
		    (uint8_t)(cf >> (8 * i));
	memcpy(c->negotiate, negotiate, neg_len);
	c->negotiate_len = neg_len;
	c->co = true;
	return 0;
}

int vault_ntlm_co_verify(void *ctx, const uint8_t *msg, size_t len, const uint8_t *sig,
			 size_t sig_len)
{
	struct vault_ntlm_ctx *c = ctx;

	if (!c || !c->co || c->state != CTX_ESTABLISHED)
		return -1;
	return ntlm_co_verify(&c->co_in, msg, len, sig, sig_len);
}

int vault_ntlm_co_sign(void *ctx, const uint8_t *msg, size_t len, uint8_t *sig, size_t cap,
		       size_t *sig_len)
{
	struct vault_ntlm_ctx *c = ctx;

	if (sig_len)
		*sig_len = 0;
	if (!c || !c->co || c->state != CTX_ESTABLISHED || !sig || cap < NTLM_SIG_LEN || !sig_len)
		return -1;
	if (ntlm_co_sign(&c->co_out, msg, len, sig))
		return -1;
	*sig_len = NTLM_SIG_LEN;
	return 0;
}
