/*
 * The built-in token service (see sts.h): claims exactly as RFC 9068 and
 * [MS-XOAUTH] / [MS-SPS2SAUTH] want them, signed through a callback. Must
 * never see a private key, and never decides who may have a token.
 */
#include "oauth/sts.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/b64.h"
#include "core/secmem.h"
#include "oauth/jose.h"
#include "oauth/oauth.h"
#include "vault/keys.h"

#define STS_NII_DEFAULT "urn:office:idp:activedirectory"

static int sts_snapshot_sign(void *arg, const json_t *header, const json_t *payload, char **out,
			     size_t *outlen)
{
	return oauth_sign(arg, header, payload, out, outlen);
}

void sts_issuer_from_snapshot(struct sts_issuer *iss, const struct oauth_snapshot *snap)
{
	memset(iss, 0, sizeof(*iss));
	iss->issuer = snap->issuer;
	iss->principal_id = snap->principal_id;
	iss->realm = snap->realm;
	iss->default_lifetime = snap->default_lifetime;
	iss->max_lifetime = snap->max_lifetime;
	iss->sign = sts_snapshot_sign;
	iss->sign_arg = (void *)snap;
}

int sts_lifetime(const struct sts_issuer *iss, int requested)
{
	int t = requested > 0 ? requested : iss->default_lifetime;

	if (iss->max_lifetime > 0 && t > iss->max_lifetime)
		t = iss->max_lifetime;
	return t > 0 ? t : 1;
}

/*
 * Random bytes for token ids, drawn from the DRBG 32 ids at a time: one
 * RAND_bytes call per token (~2 us: the thread's DRBG, its reseed and fork
 * checks) showed in profiles. Ids are public once issued; the pool only
 * ever hands out bytes once. Per thread; nothing here is a secret key.
 */
#define JTI_POOL (32 * STS_JTI_BYTES)
static _Thread_local uint8_t jti_pool[JTI_POOL];
static _Thread_local size_t jti_left;

static int jti_bytes(uint8_t *out)
{
	if (jti_left < STS_JTI_BYTES) {
		if (secmem_random(jti_pool, sizeof(jti_pool)) < 0)
			return -1;
		jti_left = sizeof(jti_pool);
	}
	jti_left -= STS_JTI_BYTES;
	memcpy(out, jti_pool + jti_left, STS_JTI_BYTES);
	memset(jti_pool + jti_left, 0, STS_JTI_BYTES);
	return 0;
}

int sts_new_jti(char out[32])
{
	uint8_t rnd[STS_JTI_BYTES];

	out[0] = '\0';
	if (jti_bytes(rnd) < 0)
		return STS_ERANDOM;
	if (b64_url_encode(rnd, sizeof(rnd), out, 32) < 0)
		return STS_ERANDOM;
	return STS_OK;
}

static bool ok_str(const char *s, size_t max)
{
	return s && s[0] && strlen(s) < max;
}

static int sign(const struct sts_issuer *iss, json_t *header, json_t *payload, char **out,
		size_t *outlen)
{
	int rc;

	if (!header || !payload)
		return STS_ENOMEM;
	rc = iss->sign(iss->sign_arg, header, payload, out, outlen);
	return rc < 0 ? STS_ESIGN : STS_OK;
}

int sts_access_token(const struct sts_issuer *iss, const struct sts_access *req, int64_t now,
		     char **out, size_t *outlen, int *expires_in)
{
	json_t *header = NULL, *payload = NULL;
	char jti[32];
	int life, rc;

	*out = NULL;
	if (outlen)
		*outlen = 0;
	*expires_in = 0;
	if (!ok_str(iss->issuer, STS_CLAIM_MAX) || !ok_str(req->client_id, STS_CLAIM_MAX) ||
	    (req->subject && !ok_str(req->subject, STS_CLAIM_MAX)) ||
	    (req->audience && !ok_str(req->audience, STS_CLAIM_MAX)) ||
	    (req->actor && !ok_str(req->actor, STS_CLAIM_MAX)) ||
	    (req->cnf_x5t_s256 && !ok_str(req->cnf_x5t_s256, STS_CLAIM_MAX)) ||
	    (req->grant_basis && !ok_str(req->grant_basis, STS_CLAIM_MAX)) ||
	    (req->scope && strlen(req->scope) >= STS_SCOPE_MAX))
		return STS_EINVAL;
	rc = sts_new_jti(jti);
	if (rc)
		return rc;
	life = sts_lifetime(iss, req->lifetime);
	/* RFC 9068 §2.1: typ "at+jwt"; §2.2: iss, exp, aud, sub, client_id,
	 * iat, jti required; scope when the request had one (§2.2.3) */
	header = json_pack("{s:s}", "typ", "at+jwt");
	payload = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s}", "iss", iss->issuer, "sub",
			    req->subject ? req->subject : req->client_id, "aud",
			    req->audience ? req->audience : iss->issuer, "client_id",
			    req->client_id, "iat", (json_int_t)now, "nbf", (json_int_t)now, "exp",
			    (json_int_t)(now + life), "jti", jti);
	if (payload && req->scope && req->scope[0] &&
	    json_object_set_new(payload, "scope", json_string(req->scope)) < 0)
		goto nomem;
	/* RFC 8693 §4.1: the actor is the party acting for the subject */
	if (payload && req->actor &&
	    json_object_set_new(payload, "act", json_pack("{s:s}", "sub", req->actor)) < 0)
		goto nomem;
	/* RFC 8705 §3.1: bound to the client's TLS certificate */
	if (payload && req->cnf_x5t_s256 &&
	    json_object_set_new(payload, "cnf", json_pack("{s:s}", "x5t#S256", req->cnf_x5t_s256)) <
		0)
		goto nomem;
	/* how the client came to act for the user: re-checked at every use */
	if (payload && req->grant_basis &&
	    json_object_set_new(payload, STS_GRANT_CLAIM, json_string(req->grant_basis)) < 0)
		goto nomem;
	rc = sign(iss, header, payload, out, outlen);
	if (rc == STS_OK)
		*expires_in = life;
	json_decref(header);
	json_decref(payload);
	return rc;
nomem:
	json_decref(header);
	json_decref(payload);
	return STS_ENOMEM;
}

int sts_ms_audience(const struct sts_issuer *iss, const struct sts_target *t, char *buf, size_t cap)
{
	const char *realm = t->realm && t->realm[0] ? t->realm : iss->realm;
	char host[STS_CLAIM_MAX];
	size_t i;
	int n;

	if (cap)
		buf[0] = '\0';
	if (!ok_str(t->principal, STS_CLAIM_MAX) || !ok_str(t->host, sizeof(host)) ||
	    !ok_str(realm, STS_CLAIM_MAX) || strpbrk(t->principal, "/@") ||
	    strpbrk(t->host, "/@") || strchr(realm, '@'))
		return STS_EINVAL;
	/* [MS-SPS2SAUTH] 3.1.5: host names compare case-insensitively; we
	 * write them lower case as Microsoft servers do */
	for (i = 0; t->host[i]; i++)
		host[i] = (char)tolower((unsigned char)t->host[i]);
	host[i] = '\0';
	n = snprintf(buf, cap, "%s/%s@%s", t->principal, host, realm);
	if (n < 0 || (size_t)n >= cap) {
		if (cap)
			buf[0] = '\0';
		return STS_EINVAL;
	}
	return STS_OK;
}

/* <our principal>@<our realm>: the actor's iss and nameid. */
static int our_nameid(const struct sts_issuer *iss, char *buf, size_t cap)
{
	int n;

	if (!ok_str(iss->principal_id, STS_CLAIM_MAX) || !ok_str(iss->realm, STS_CLAIM_MAX))
		return STS_EINVAL;
	n = snprintf(buf, cap, "%s@%s", iss->principal_id, iss->realm);
	return n < 0 || (size_t)n >= cap ? STS_EINVAL : STS_OK;
}

/* The claims both Microsoft-style tokens share, as strings ([MS-XOAUTH] 2.2:
 * "The claim values are all of data type STRING"). */
static json_t *ms_claims(const char *aud, const char *iss, int64_t nbf, int64_t exp)
{
	char snbf[24], sexp[24];

	snprintf(snbf, sizeof(snbf), "%" PRId64, nbf);
	snprintf(sexp, sizeof(sexp), "%" PRId64, exp);
	return json_pack("{s:s, s:s, s:s, s:s}", "aud", aud, "iss", iss, "nbf", snbf, "exp", sexp);
}

int sts_actor_token(const struct sts_issuer *iss, const struct sts_target *t, bool for_user,
		    int64_t now, char **out, size_t *outlen)
{
	char aud[3 * STS_CLAIM_MAX], nameid[2 * STS_CLAIM_MAX];
	json_t *header = NULL, *payload = NULL;
	int rc;

	*out = NULL;
	if (outlen)
		*outlen = 0;
	if (sts_ms_audience(iss, t, aud, sizeof(aud)) || our_nameid(iss, nameid, sizeof(nameid)))
		return STS_EINVAL;
	/* PROTOCOLS.md §6: {"typ":"JWT","alg":"RS256","x5t":...}; the signer
	 * adds alg and x5t (and kid, which JWKS clients need) */
	header = json_pack("{s:s}", "typ", "JWT");
	payload = ms_claims(aud, nameid, now, now + sts_lifetime(iss, t->lifetime));
	if (payload && json_object_set_new(payload, "nameid", json_string(nameid)) < 0)
		goto nomem;
	if (payload && for_user &&
	    json_object_set_new(payload, "trustedfordelegation", json_string("true")) < 0)
		goto nomem;
	rc = sign(iss, header, payload, out, outlen);
	json_decref(header);
	json_decref(payload);
	return rc;
nomem:
	json_decref(header);
	json_decref(payload);
	return STS_ENOMEM;
}

static int set_str(json_t *o, const char *name, const char *v)
{
	if (!v)
		return 0;
	if (!ok_str(v, STS_CLAIM_MAX))
		return STS_EINVAL;
	return json_object_set_new(o, name, json_string(v)) < 0 ? STS_ENOMEM : 0;
}

int sts_outer_token(const struct sts_issuer *iss, const struct sts_target *t,
		    const struct sts_user *u, int64_t now, char **out, size_t *outlen)
{
	char aud[3 * STS_CLAIM_MAX], nameid[2 * STS_CLAIM_MAX];
	const char *addr;
	char *actor = NULL;
	json_t *payload = NULL;
	int rc;

	*out = NULL;
	if (outlen)
		*outlen = 0;
	if (!u || !ok_str(u->sip_uri, STS_CLAIM_MAX))
		return STS_EINVAL;
	addr = u->sip_uri;
	if (strncasecmp(addr, "sip:", 4) == 0)
		addr += 4;
	if (!addr[0] || !strchr(addr, '@'))
		return STS_EINVAL;
	if (sts_ms_audience(iss, t, aud, sizeof(aud)) || our_nameid(iss, nameid, sizeof(nameid)))
		return STS_EINVAL;
	rc = sts_actor_token(iss, t, true, now, &actor, NULL);
	if (rc)
		return rc;
	/* PROTOCOLS.md §6: outer iss = the actor's nameid, the same aud and
	 * window as the actor token */
	payload = ms_claims(aud, nameid, now, now + sts_lifetime(iss, t->lifetime));
	rc = payload ? 0 : STS_ENOMEM;
	if (!rc)
		rc = set_str(payload, "nameid", addr);
	if (!rc)
		rc = set_str(payload, "nii", u->nii ? u->nii : STS_NII_DEFAULT);
	if (!rc)
		rc = set_str(payload, "sip", addr);
	if (!rc)
		rc = set_str(payload, "smtp", u->smtp);
	if (!rc)
		rc = set_str(payload, "upn", u->upn);
	if (!rc && json_object_set_new(payload, "actortoken", json_string(actor)) < 0)
		rc = STS_ENOMEM;
	if (!rc && jose_unsigned_compact(NULL, payload, out, outlen) < 0)
		rc = STS_ENOMEM;
	json_decref(payload);
	free(actor);
	return rc;
}

/* ---- signing with the vault (rtcauthctl) ---- */

struct keys_sign_ctx {
	struct keys *keys;
	const char *kid;
	const char *alg;
};

static int keys_signer(void *arg, const uint8_t *input, size_t len, uint8_t *sig, size_t cap,
		       size_t *siglen)
{
	struct keys_sign_ctx *c = arg;

	*siglen = cap;
	if (keys_sign(c->keys, c->kid, c->alg, input, len, sig, siglen) != KEYS_OK) {
		*siglen = 0;
		return -1;
	}
	return 0;
}

int sts_keys_sign(void *arg, const json_t *header, const json_t *payload, char **out,
		  size_t *outlen)
{
	const struct sts_keys_signer *ks = arg;
	struct keys_sign_ctx c;
	const char *typ = NULL;
	json_t *h;
	int rc;

	*out = NULL;
	if (outlen)
		*outlen = 0;
	if (!ks || !ks->keys || !ks->key || !ks->key->kid[0])
		return JOSE_EINTERNAL;
	if (header)
		typ = json_string_value(json_object_get(header, "typ"));
	h = json_pack("{s:s, s:s, s:s, s:s}", "typ", typ ? typ : "JWT", "alg", ks->key->alg, "x5t",
		      ks->key->x5t, "kid", ks->key->kid);
	if (!h)
		return JOSE_ENOMEM;
	c.keys = ks->keys;
	c.kid = ks->key->kid;
	c.alg = ks->key->alg;
	rc = jose_sign_compact(h, payload, keys_signer, &c, out, outlen);
	json_decref(h);
	return rc;
}
