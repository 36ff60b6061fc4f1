/*
 * Bearer token validation (validate.h): who signed it, for whom, when, and
 * whether it was revoked; the cache of validated tokens; the RFC 6750
 * challenges of protected endpoints.
 *
 * Must never trust a claim before the signature that covers it verified
 * (the key lookup reads the unverified iss only to pick a key set), never
 * accept an unsigned token except as the outer half of a verified actor
 * token, and never log a token.
 */
#include "oauth/validate.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/md.h"
#include "core/secmem.h"
#include "core/stats.h"
#include "http/http.h"
#include "oauth/api.h"
#include "oauth/consent.h"
#include "oauth/introspect.h"
#include "oauth/fetch.h"
#include "oauth/jose.h"
#include "oauth/token.h"
#include "sip/server.h"
#include "store/store_oauth.h"
#include "vault/vault.h"

static const char *const result_names[VR_COUNT] = {
    [VR_OK] = "ok",
    [VR_MISSING] = "missing",
    [VR_TOO_LARGE] = "too_large",
    [VR_MALFORMED] = "malformed",
    [VR_BAD_BASE64URL] = "bad_base64url",
    [VR_BAD_JSON] = "bad_json",
    [VR_DUPLICATE_CLAIM] = "duplicate_claim",
    [VR_TOO_DEEP] = "too_deep",
    [VR_ALG_NONE] = "alg_none",
    [VR_ALG_NOT_ALLOWED] = "alg_not_allowed",
    [VR_CRIT_UNSUPPORTED] = "crit_unsupported",
    [VR_NO_KEY_ID] = "no_key_id",
    [VR_UNKNOWN_KID] = "unknown_kid",
    [VR_BAD_SIGNATURE] = "bad_signature",
    [VR_BAD_HEADER] = "bad_header",
    [VR_CLAIM_MISSING] = "claim_missing",
    [VR_CLAIM_TYPE] = "claim_type",
    [VR_UNKNOWN_ISSUER] = "unknown_issuer",
    [VR_PARTNER_DISABLED] = "partner_disabled",
    [VR_BAD_AUDIENCE] = "bad_audience",
    [VR_EXPIRED] = "expired",
    [VR_NOT_YET_VALID] = "not_yet_valid",
    [VR_LIFETIME_TOO_LONG] = "lifetime_too_long",
    [VR_REVOKED] = "revoked",
    [VR_ACTOR_MISMATCH] = "actor_mismatch",
    [VR_DELEGATION_NOT_ALLOWED] = "delegation_not_allowed",
    [VR_INSUFFICIENT_SCOPE] = "insufficient_scope",
    [VR_INTERNAL] = "internal",
    [VR_CERT_MISMATCH] = "certificate_mismatch",
};

/* the metric's label sets must stay in this order */
_Static_assert(sizeof((const char *[]){VALIDATE_RESULT_LABELS}) / sizeof(const char *) == VR_COUNT,
	       "VALIDATE_RESULT_LABELS (core/stats.h) and enum validate_result differ");

const char *validate_result_name(int r)
{
	return r >= 0 && r < VR_COUNT ? result_names[r] : "internal";
}

static int from_jose(int rc)
{
	switch (rc) {
	case JOSE_OK:
		return VR_OK;
	case JOSE_EMALFORMED:
		return VR_MALFORMED;
	case JOSE_EBASE64URL:
		return VR_BAD_BASE64URL;
	case JOSE_EJSON:
		return VR_BAD_JSON;
	case JOSE_EDUPLICATE:
		return VR_DUPLICATE_CLAIM;
	case JOSE_ETOODEEP:
		return VR_TOO_DEEP;
	case JOSE_ETOOLARGE:
		return VR_TOO_LARGE;
	case JOSE_EALG_NONE:
		return VR_ALG_NONE;
	case JOSE_EALG:
		return VR_ALG_NOT_ALLOWED;
	case JOSE_ECRIT:
		return VR_CRIT_UNSUPPORTED;
	case JOSE_ENOKEYID:
		return VR_NO_KEY_ID;
	case JOSE_EUNKNOWNKID:
		return VR_UNKNOWN_KID;
	case JOSE_EBADSIG:
		return VR_BAD_SIGNATURE;
	case JOSE_EHEADER:
		return VR_BAD_HEADER;
	case JOSE_ECLAIM_MISSING:
		return VR_CLAIM_MISSING;
	case JOSE_ECLAIM_TYPE:
		return VR_CLAIM_TYPE;
	default:
		return VR_INTERNAL;
	}
}

static _Thread_local struct store *pool_store; /* oauth_validate_bind_store */
static _Thread_local bool pool_failed;	       /* the last validation could not ask it */
static _Thread_local const char *vr_detail;    /* oauth_validate_detail */

/* A refusal with words for the client (static strings only). */
static int refuse(int rc, const char *why)
{
	vr_detail = why;
	return rc;
}

const char *oauth_validate_detail(void)
{
	return vr_detail ? vr_detail : "";
}

/* ---- issuers ---- */

/* iss "<principal id>@<realm>" of our own Microsoft-style tokens */
static bool own_ms_issuer(const struct oauth_snapshot *snap, const char *iss)
{
	size_t n = strlen(snap->principal_id);

	return n && strncmp(iss, snap->principal_id, n) == 0 && iss[n] == '@' &&
	       strcmp(iss + n + 1, snap->realm) == 0;
}

static bool own_issuer(const struct oauth_snapshot *snap, const char *iss)
{
	return (snap->issuer[0] && strcmp(iss, snap->issuer) == 0) || own_ms_issuer(snap, iss);
}

static const char *partner_realm(const struct oauth_snapshot *snap, const struct oauth_partner *p)
{
	return p->rec.realm[0] ? p->rec.realm : snap->realm;
}

/* ---- one signed token ---- */

struct lookup {
	const struct oauth_snapshot *snap;
	const struct oauth_partner *partner;
	bool own;
	bool unknown_issuer;
};

static struct jose_key *lookup_key(void *arg, const struct jose_jws *jws, int *err)
{
	struct lookup *l = arg;
	const struct jose_keyset *ks;
	const struct jose_key *k;
	const char *iss = NULL;

	*err = JOSE_EUNKNOWNKID;
	/* unverified: only picks the key set; the signature decides */
	if (jose_claim_str(jws->payload, "iss", &iss) != 0 || !iss[0]) {
		l->unknown_issuer = true;
		return NULL;
	}
	if (own_issuer(l->snap, iss)) {
		l->own = true;
		ks = &l->snap->own;
	} else {
		l->partner = oauth_partner_by_id(l->snap, iss);
		if (!l->partner) {
			l->unknown_issuer = true;
			return NULL;
		}
		ks = &l->partner->keys;
	}
	k = jose_keyset_find(ks, jws->kid, jws->x5t, jws->x5t_s256);
	if (!k && l->partner) /* maybe a key the partner published since: refetch (rate-limited) */
		oauth_fetch_hint_unknown_kid(l->partner->rec.name);
	return k ? jose_key_ref((struct jose_key *)k) : NULL;
}

/* aud: a string or an array (at most 16) of strings, one naming us; it is
 * copied into out. */
static int check_audience(const struct oauth_snapshot *snap, const json_t *payload, char *out,
			  size_t cap)
{
	const json_t *aud = json_object_get(payload, "aud");
	size_t i;
	json_t *v;

	if (!aud)
		return VR_CLAIM_MISSING;
	if (json_is_string(aud)) {
		if (!oauth_audience_is_us(snap, json_string_value(aud)))
			return VR_BAD_AUDIENCE;
		snprintf(out, cap, "%s", json_string_value(aud));
		return VR_OK;
	}
	if (!json_is_array(aud) || json_array_size(aud) > 16)
		return VR_CLAIM_TYPE;
	json_array_foreach(aud, i, v)
	{
		if (!json_is_string(v))
			return VR_CLAIM_TYPE;
	}
	json_array_foreach(aud, i, v)
	{
		if (oauth_audience_is_us(snap, json_string_value(v))) {
			snprintf(out, cap, "%s", json_string_value(v));
			return VR_OK;
		}
	}
	return VR_BAD_AUDIENCE;
}

struct times {
	int64_t iat, nbf, exp;
};

/* exp required; nbf / iat optional; skew and max_lifetime from snap */
static int check_times(const struct oauth_snapshot *snap, const json_t *payload, int64_t now,
		       struct times *t)
{
	int64_t skew = snap->clock_skew > 0 ? snap->clock_skew : 0, start;
	int rc;

	memset(t, 0, sizeof(*t));
	rc = jose_claim_time(payload, "exp", &t->exp);
	if (rc != 0)
		return from_jose(rc);
	if (json_object_get(payload, "nbf") && (rc = jose_claim_time(payload, "nbf", &t->nbf)) != 0)
		return from_jose(rc);
	if (json_object_get(payload, "iat") && (rc = jose_claim_time(payload, "iat", &t->iat)) != 0)
		return from_jose(rc);
	if (t->exp + skew < now)
		return VR_EXPIRED;
	if (t->nbf > now + skew || t->iat > now + skew)
		return VR_NOT_YET_VALID;
	/* the lifetime it was given, and what is left of it */
	start = json_object_get(payload, "nbf")	  ? t->nbf
		: json_object_get(payload, "iat") ? t->iat
						  : now;
	if (snap->max_lifetime > 0 &&
	    (t->exp - start > snap->max_lifetime || t->exp - now > snap->max_lifetime))
		return VR_LIFETIME_TOO_LONG;
	return VR_OK;
}

/* A verified signed token and what was learnt on the way. */
struct half {
	struct jose_jws jws;
	bool own;
	const struct oauth_partner *partner;
	struct times t;
	char aud[VALIDATE_AUD_MAX];
};

static int verify_signed(const struct oauth_snapshot *snap, const char *tok, size_t len,
			 int64_t now, struct half *h)
{
	struct jose_limits lim = {snap->max_token_size, 0, false};
	struct lookup l = {snap, NULL, false, false};
	int rc;

	memset(h, 0, sizeof(*h));
	rc = jose_verify(tok, len, &lim, lookup_key, &l, &h->jws);
	if (rc != 0)
		return l.unknown_issuer && rc == JOSE_EUNKNOWNKID ? VR_UNKNOWN_ISSUER
								  : from_jose(rc);
	h->own = l.own;
	h->partner = l.partner;
	rc = check_audience(snap, h->jws.payload, h->aud, sizeof(h->aud));
	if (rc == VR_OK)
		rc = check_times(snap, h->jws.payload, now, &h->t);
	if (rc != VR_OK)
		jose_jws_free(&h->jws);
	return rc;
}

/* ---- principals ---- */

static void copy_str(char *dst, size_t cap, const char *s)
{
	snprintf(dst, cap, "%s", s ? s : "");
}

/* Granted scopes: the partner's registered resources, narrowed to the
 * token's scope claim when it has one (a token never grants more than the
 * registration allows now). */
static int grant_scopes(const struct oauth_partner *p, const json_t *payload, char *out, size_t cap)
{
	const json_t *sc = json_object_get(payload, "scope");
	const char *reg = p->rec.resources, *s;
	size_t o = 0;

	out[0] = '\0';
	if (sc && !json_is_string(sc))
		return VR_CLAIM_TYPE;
	for (s = reg; *s;) {
		const char *e = strchr(s, ',');
		size_t n = e ? (size_t)(e - s) : strlen(s);

		if (n && (!sc || str_list_has(json_string_value(sc), ' ', s, n)) &&
		    !str_list_has(out, ' ', s, n) && o + n + 2 <= cap) {
			if (o)
				out[o++] = ' ';
			memcpy(out + o, s, n);
			o += n;
			out[o] = '\0';
		}
		if (!e)
			break;
		s = e + 1;
	}
	return VR_OK;
}

/* RFC 8705 §3.1: a certificate-bound token names its certificate in
 * cnf.x5t#S256. A cnf we cannot read binds to nothing ("!"): fail closed. */
static void fill_cnf(struct oauth_principal *p, const json_t *payload)
{
	const json_t *cnf = json_object_get(payload, "cnf");
	const char *t;

	if (!cnf)
		return;
	t = json_is_object(cnf) ? json_string_value(json_object_get(cnf, "x5t#S256")) : NULL;
	if (t && strlen(t) == JOSE_X5T256_LEN)
		copy_str(p->cnf_x5t_s256, sizeof(p->cnf_x5t_s256), t);
	else
		copy_str(p->cnf_x5t_s256, sizeof(p->cnf_x5t_s256), "!");
}

static void fill_common(struct oauth_principal *p, const struct half *h)
{
	const char *iss = NULL, *jti = NULL;

	jose_claim_str(h->jws.payload, "iss", &iss);
	copy_str(p->iss, sizeof(p->iss), iss);
	if (jose_claim_str(h->jws.payload, "jti", &jti) == 0 && strlen(jti) <= REPLAY_JTI_MAX)
		copy_str(p->jti, sizeof(p->jti), jti);
	copy_str(p->aud, sizeof(p->aud), h->aud);
	p->iat = h->t.iat;
	p->nbf = h->t.nbf;
	p->exp = h->t.exp;
	fill_cnf(p, h->jws.payload);
}

/* rtc_grant (sts.h): absent (a token minted before it existed), or one of
 * the bases we write; anything else is refused (fail closed). */
static int grant_basis(const json_t *payload, char *out, size_t cap)
{
	static const char *const known[] = {STS_BASIS_FULL, STS_BASIS_CONSENT,
					    STS_BASIS_USER_TOKEN};
	const json_t *v = json_object_get(payload, STS_GRANT_CLAIM);

	out[0] = '\0';
	if (!v)
		return VR_OK;
	if (!json_is_string(v))
		return VR_CLAIM_TYPE;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(json_string_value(v), known[i]) == 0) {
			copy_str(out, cap, known[i]);
			return VR_OK;
		}
	return VR_CLAIM_TYPE;
}

/* One of our RFC 9068 access tokens, issued to a partner (still enabled). */
static int principal_own(const struct oauth_snapshot *snap, const struct half *h,
			 struct oauth_principal *p)
{
	const struct oauth_partner *client;
	const char *cid = NULL, *sub = NULL;
	const json_t *act = json_object_get(h->jws.payload, "act");
	int rc;

	/* RFC 9068 §4: our access tokens say so; our actor tokens are for
	 * partners, never for us */
	if (!h->jws.typ || strcasecmp(h->jws.typ, "at+jwt") != 0)
		return VR_BAD_HEADER;
	rc = jose_claim_str(h->jws.payload, "client_id", &cid);
	if (rc == 0)
		rc = jose_claim_str(h->jws.payload, "sub", &sub);
	if (rc != 0)
		return from_jose(rc);
	client = oauth_partner_by_id(snap, cid);
	if (!client)
		return VR_PARTNER_DISABLED;
	if (act && !json_is_object(act))
		return VR_CLAIM_TYPE;
	rc = grant_basis(h->jws.payload, p->grant_basis, sizeof(p->grant_basis));
	if (rc != VR_OK)
		return rc;
	/* acting for a user: only while the partner's trust allows it, checked
	 * on every use by delegation_check */
	rc = grant_scopes(client, h->jws.payload, p->scope, sizeof(p->scope));
	if (rc != VR_OK)
		return rc;
	p->own = true;
	p->acts_for_user = act != NULL;
	copy_str(p->token_type, sizeof(p->token_type), "at+jwt");
	copy_str(p->client_id, sizeof(p->client_id), client->rec.issuer);
	copy_str(p->partner, sizeof(p->partner), client->rec.name);
	copy_str(p->sub, sizeof(p->sub), act ? sub : client->rec.issuer);
	fill_common(p, h);
	return VR_OK;
}

/* nameid, when there is one, must name the signing partner: a partner
 * cannot speak as another */
static int check_nameid(const struct oauth_snapshot *snap, const struct half *h)
{
	const json_t *v = json_object_get(h->jws.payload, "nameid");
	const char *nameid, *at;
	size_t n;

	if (!v)
		return VR_OK;
	if (!json_is_string(v))
		return VR_CLAIM_TYPE;
	nameid = json_string_value(v);
	at = strrchr(nameid, '@');
	n = at ? (size_t)(at - nameid) : strlen(nameid);
	if (n != strlen(h->partner->rec.issuer) || strncmp(nameid, h->partner->rec.issuer, n) != 0)
		return VR_ACTOR_MISMATCH;
	if (at && strcmp(at + 1, partner_realm(snap, h->partner)) != 0)
		return VR_ACTOR_MISMATCH;
	return VR_OK;
}

/* A partner's own token (app-only: the partner speaks as itself). */
static int principal_partner(const struct oauth_snapshot *snap, const struct half *h,
			     struct oauth_principal *p)
{
	int rc = check_nameid(snap, h);

	if (rc != VR_OK)
		return rc;
	/* PROTOCOLS.md §6 trust "user": only on behalf of a user */
	if (h->partner->rec.trust == STORE_TRUST_USER)
		return VR_DELEGATION_NOT_ALLOWED;
	rc = grant_scopes(h->partner, h->jws.payload, p->scope, sizeof(p->scope));
	if (rc != VR_OK)
		return rc;
	copy_str(p->token_type, sizeof(p->token_type), "actor");
	copy_str(p->client_id, sizeof(p->client_id), h->partner->rec.issuer);
	copy_str(p->partner, sizeof(p->partner), h->partner->rec.name);
	copy_str(p->sub, sizeof(p->sub), h->partner->rec.issuer);
	fill_common(p, h);
	return VR_OK;
}

/* "true" (the Microsoft form is a string) or JSON true */
static bool claim_true(const json_t *payload, const char *name)
{
	const json_t *v = json_object_get(payload, name);

	return json_is_true(v) || (json_is_string(v) && strcmp(json_string_value(v), "true") == 0);
}

/* The user an outer token speaks for: sip (as a sip: URI), else nameid. */
static int outer_user(const json_t *outer, char *out, size_t cap)
{
	const char *sip = NULL, *nameid = NULL;

	if (jose_claim_str(outer, "sip", &sip) == 0 && sip[0]) {
		snprintf(out, cap, "%s%s", strncasecmp(sip, "sip:", 4) == 0 ? "" : "sip:", sip);
		return VR_OK;
	}
	if (jose_claim_str(outer, "nameid", &nameid) == 0 && nameid[0]) {
		snprintf(out, cap, "%s", nameid);
		return VR_OK;
	}
	return VR_CLAIM_MISSING;
}

/*
 * The act-as-user form (PROTOCOLS.md §6, [MS-XOAUTH]): the outer token is
 * unsigned and proves nothing by itself; everything hangs on the actor.
 */
static int validate_outer(const struct oauth_snapshot *snap, const char *tok, size_t len,
			  int64_t now, struct oauth_principal *p, struct half *actor)
{
	struct jose_limits lim = {snap->max_token_size, 0, false};
	struct jose_jws outer;
	struct times ot;
	const char *at = NULL, *oiss = NULL, *nameid = NULL;
	char oaud[VALIDATE_AUD_MAX];
	int rc;

	rc = jose_parse_unsigned_outer(tok, len, &lim, &outer);
	if (rc != 0)
		return rc == JOSE_EALG ? VR_ALG_NONE : from_jose(rc);
	/* CVE-2023-29357: without a signed actor token it is nothing */
	if (!json_object_get(outer.payload, "actortoken")) {
		rc = VR_ALG_NONE;
		goto out;
	}
	if ((rc = jose_claim_str(outer.payload, "actortoken", &at)) != 0) {
		rc = from_jose(rc);
		goto out;
	}
	rc = verify_signed(snap, at, strlen(at), now, actor);
	if (rc != VR_OK)
		goto out;
	if (actor->own || !actor->partner) {
		/* we never act for our users towards ourselves */
		rc = VR_DELEGATION_NOT_ALLOWED;
		goto fail_actor;
	}
	if ((rc = check_nameid(snap, actor)) != VR_OK)
		goto fail_actor;
	if (jose_claim_str(actor->jws.payload, "nameid", &nameid) != 0 ||
	    jose_claim_str(outer.payload, "iss", &oiss) != 0 || strcmp(oiss, nameid) != 0) {
		rc = VR_ACTOR_MISMATCH;
		goto fail_actor;
	}
	if (!claim_true(actor->jws.payload, "trustedfordelegation")) {
		rc = refuse(VR_DELEGATION_NOT_ALLOWED,
			    "the actor token does not say trustedfordelegation");
		goto fail_actor;
	}
	/* PROTOCOLS.md §6: full trust acts for any user; application trust
	 * only with the user's consent (delegation_check, on every use); user
	 * trust only with a token the user obtained here, never its own */
	if (actor->partner->rec.trust == STORE_TRUST_USER) {
		rc = refuse(VR_DELEGATION_NOT_ALLOWED,
			    "a partner with trust level user acts for a user only with a token the "
			    "user obtained here (token exchange), never with its own actor token");
		goto fail_actor;
	}
	/* the outer's own aud and time window count too */
	rc = check_audience(snap, outer.payload, oaud, sizeof(oaud));
	if (rc == VR_OK)
		rc = check_times(snap, outer.payload, now, &ot);
	if (rc == VR_OK)
		rc = outer_user(outer.payload, p->sub, sizeof(p->sub));
	if (rc == VR_OK)
		rc = grant_scopes(actor->partner, actor->jws.payload, p->scope, sizeof(p->scope));
	if (rc != VR_OK)
		goto fail_actor;
	p->acts_for_user = true;
	copy_str(p->token_type, sizeof(p->token_type), "outer");
	copy_str(p->iss, sizeof(p->iss), oiss);
	copy_str(p->client_id, sizeof(p->client_id), actor->partner->rec.issuer);
	copy_str(p->partner, sizeof(p->partner), actor->partner->rec.name);
	copy_str(p->aud, sizeof(p->aud), oaud);
	p->iat = ot.iat;
	p->nbf = ot.nbf;
	p->exp = ot.exp < actor->t.exp ? ot.exp : actor->t.exp;
	rc = VR_OK;
	goto out; /* the caller frees the actor */
fail_actor:
	jose_jws_free(&actor->jws);
out:
	jose_jws_free(&outer);
	return rc;
}

/* ---- revocation list ---- */

#define REV_BUCKETS 4096

struct rev {
	struct rev *next;
	unsigned char key[32];
	int64_t until;
};

static pthread_mutex_t rev_mu = PTHREAD_MUTEX_INITIALIZER;
static struct rev *rev_tab[REV_BUCKETS];
static size_t rev_n;
static _Atomic size_t rev_live; /* lets the hot path skip the lock when empty */

/* (iss, jti) when there is a jti, else the token's hash */
static void rev_key(const struct oauth_principal *p, unsigned char key[32])
{
	EVP_MD_CTX *c;
	unsigned int n = 32;

	if (!p->jti[0]) {
		memcpy(key, p->hash, 32);
		return;
	}
	c = EVP_MD_CTX_new();
	if (!c || !md_sha256() || !EVP_DigestInit_ex(c, md_sha256(), NULL) ||
	    !EVP_DigestUpdate(c, "jti", 4) || !EVP_DigestUpdate(c, p->iss, strlen(p->iss) + 1) ||
	    !EVP_DigestUpdate(c, p->jti, strlen(p->jti)) || !EVP_DigestFinal_ex(c, key, &n))
		memcpy(key, p->hash, 32); /* still a key for this very token */
	EVP_MD_CTX_free(c);
}

static void rev_purge_locked(int64_t now)
{
	for (size_t b = 0; b < REV_BUCKETS; b++) {
		struct rev **pp = &rev_tab[b];

		while (*pp) {
			struct rev *r = *pp;

			if (r->until < now) {
				*pp = r->next;
				free(r);
				rev_n--;
			} else {
				pp = &r->next;
			}
		}
	}
	atomic_store(&rev_live, rev_n);
}

/* ---- the pool's revocation list (store_oauth.h) ---- */

#define POOL_POLL_MS	 1000 /* revocation version reads per thread: at most one a second */
#define POOL_PURGE_EVERY 64   /* revocations between two bounded purges */

void oauth_validate_bind_store(struct store *s)
{
	pool_store = s;
}

bool oauth_validate_unavailable(void)
{
	return pool_failed;
}

/*
 * The pool's revocation version as this thread last read it (at most
 * POOL_POLL_MS old), or -1 when the store cannot answer: fail closed.
 */
static _Atomic int64_t pool_latest = -1; /* the newest version any thread has read */

static int64_t pool_version(void)
{
	static _Thread_local int64_t seen = -1;
	static _Thread_local uint64_t checked;
	uint64_t now = clock_mono_ms();
	int64_t v, g;

	if (!(seen >= 0 && checked && now - checked < POOL_POLL_MS)) {
		if (store_oauth_revoked_version(pool_store, &v) != STORE_OK) {
			seen = -1;
			return -1;
		}
		checked = now;
		seen = v;
		/* what one thread learnt, every thread uses at once */
		g = atomic_load(&pool_latest);
		while (g < v && !atomic_compare_exchange_weak(&pool_latest, &g, v))
			;
	}
	g = atomic_load(&pool_latest);
	return g > seen ? g : seen;
}

/*
 * Is p revoked anywhere in the pool? 0 no, 1 yes, -1 the store could not
 * say (the caller refuses the token). *v gets the version the answer holds
 * for: a cached entry checked at that version needs no new lookup until
 * the version moves.
 */
static int pool_revoked(const struct oauth_principal *p, int64_t now, int64_t *v)
{
	unsigned char key[32];
	bool revoked = true;

	*v = pool_version();
	if (*v < 0)
		return -1;
	rev_key(p, key);
	if (store_oauth_revoked(pool_store, key, now, &revoked) != STORE_OK)
		return -1;
	return revoked ? 1 : 0;
}

static int pool_revoke(const struct oauth_principal *p, int64_t skew, int64_t now)
{
	static _Thread_local unsigned adds;
	unsigned char key[32];
	int rc;

	rev_key(p, key);
	rc = store_oauth_revoke_add(pool_store, key, p->exp + (skew > 0 ? skew : 0), now);
	if (rc != STORE_OK) {
		log_warn("oauth.revoke", "event=store_unavailable error=%s", store_strerror(rc));
		return -1;
	}
	if (++adds % POOL_PURGE_EVERY == 0)
		store_oauth_revoked_purge(pool_store, now, STORE_OAUTH_PURGE, NULL);
	return 0;
}

int oauth_revoke(const struct oauth_principal *p, int64_t skew, int64_t now)
{
	unsigned char key[32];
	struct rev *r;
	size_t b;
	int rc = 0;

	/* the pool first: a revocation only this process knew would let the
	 * token in at every other server */
	if (pool_store && pool_revoke(p, skew, now) < 0)
		return -1;
	rev_key(p, key);
	b = (((size_t)key[0] << 8) | key[1]) % REV_BUCKETS;
	pthread_mutex_lock(&rev_mu);
	for (r = rev_tab[b]; r; r = r->next)
		if (memcmp(r->key, key, 32) == 0)
			goto out; /* already */
	if (rev_n >= VALIDATE_REVOKE_MAX)
		rev_purge_locked(now);
	if (rev_n >= VALIDATE_REVOKE_MAX || !(r = malloc(sizeof(*r)))) {
		rc = -1;
		goto out;
	}
	memcpy(r->key, key, 32);
	r->until = p->exp + (skew > 0 ? skew : 0);
	r->next = rev_tab[b];
	rev_tab[b] = r;
	rev_n++;
	atomic_store(&rev_live, rev_n);
out:
	pthread_mutex_unlock(&rev_mu);
	return rc;
}

bool oauth_revoked(const struct oauth_principal *p, int64_t now)
{
	unsigned char key[32];
	const struct rev *r;
	bool found = false;
	size_t b;

	if (atomic_load_explicit(&rev_live, memory_order_acquire) == 0)
		return false;
	rev_key(p, key);
	b = (((size_t)key[0] << 8) | key[1]) % REV_BUCKETS;
	pthread_mutex_lock(&rev_mu);
	for (r = rev_tab[b]; r; r = r->next)
		if (memcmp(r->key, key, 32) == 0 && r->until >= now) {
			found = true;
			break;
		}
	pthread_mutex_unlock(&rev_mu);
	return found;
}

int oauth_validate_revocation(const struct oauth_principal *p, int64_t now)
{
	int64_t v;
	int pr;

	pool_failed = false;
	if (oauth_revoked(p, now))
		return VR_REVOKED;
	if (!pool_store)
		return VR_OK;
	pr = pool_revoked(p, now, &v);
	if (pr < 0)
		pool_failed = true;
	return pr < 0 ? VR_INTERNAL : pr > 0 ? VR_REVOKED : VR_OK;
}

static void rev_clear(void)
{
	pthread_mutex_lock(&rev_mu);
	for (size_t b = 0; b < REV_BUCKETS; b++) {
		while (rev_tab[b]) {
			struct rev *r = rev_tab[b];

			rev_tab[b] = r->next;
			free(r);
		}
	}
	rev_n = 0;
	atomic_store(&rev_live, 0);
	pthread_mutex_unlock(&rev_mu);
}

/* ---- cache of validated tokens ---- */

#define CACHE_SHARDS 16
#define CACHE_SLOTS  (VALIDATE_CACHE_MAX / CACHE_SHARDS) /* direct-mapped */

struct centry {
	struct oauth_principal p; /* p.hash is the cache key */
	struct jose_key *key;	  /* the key that verified it (one reference) */
	int64_t pool_v;		  /* pool revocation version it was last found unrevoked at */
};

static struct {
	pthread_mutex_t mu;
	struct centry *slot[CACHE_SLOTS];
} cache[CACHE_SHARDS];
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_init(void)
{
	for (size_t i = 0; i < CACHE_SHARDS; i++)
		pthread_mutex_init(&cache[i].mu, NULL);
}

static void centry_free(struct centry *e)
{
	if (!e)
		return;
	jose_key_free(e->key);
	free(e);
}

/* Is k one of snap's keys? Keys are built anew by every snapshot, so this
 * holds only for the snapshot (the configuration, keys and partners) the
 * entry was validated with. */
static bool key_in_snapshot(const struct oauth_snapshot *snap, const struct jose_key *k)
{
	for (size_t i = 0; i < snap->own.n; i++)
		if (snap->own.keys[i] == k)
			return true;
	for (size_t i = 0; i < snap->n_partners; i++)
		for (size_t j = 0; j < snap->partners[i].keys.n; j++)
			if (snap->partners[i].keys.keys[j] == k)
				return true;
	return false;
}

static void cache_pos(const unsigned char h[32], size_t *shard, size_t *slot)
{
	*shard = h[0] % CACHE_SHARDS;
	*slot = (((size_t)h[1] << 8) | h[2]) % CACHE_SLOTS;
}

static bool cache_get(const struct oauth_snapshot *snap, const unsigned char h[32], int64_t now,
		      struct oauth_principal *out, int64_t *pool_v)
{
	struct centry *e, *drop = NULL;
	size_t sh, sl;
	bool hit = false;

	pthread_once(&cache_once, cache_init);
	cache_pos(h, &sh, &sl);
	pthread_mutex_lock(&cache[sh].mu);
	e = cache[sh].slot[sl];
	if (e && memcmp(e->p.hash, h, 32) == 0) {
		if (e->p.exp >= now && key_in_snapshot(snap, e->key)) {
			*out = e->p;
			*pool_v = e->pool_v;
			hit = true;
		} else {
			drop = e; /* expired, or from an older snapshot */
			cache[sh].slot[sl] = NULL;
		}
	}
	pthread_mutex_unlock(&cache[sh].mu);
	centry_free(drop);
	return hit;
}

/* Has the user p acts for consented to client? VR_OK, or a refusal;
 * VR_INTERNAL (pool_failed) when the store cannot say. */
static int pool_consent(const struct oauth_partner *client, const struct oauth_principal *p)
{
	static const char no_consent[] =
	    "the user has not consented to this application-trust partner acting for them "
	    "(POST /oauth/consent, or rtcauthctl partner consent)";
	struct store_user u;
	bool yes = false;
	int rc;

	if (!pool_store)
		return refuse(VR_DELEGATION_NOT_ALLOWED, no_consent);
	/* a name that is no SIP URI (an outer token's nameid) is no user of
	 * ours: refused, not a store outage */
	rc = vault_user_get(pool_store, p->sub, &u);
	if (rc == STORE_OK)
		rc = store_oauth_consent_has(pool_store, client->rec.id, u.id, &yes);
	if (rc == STORE_OK || rc == STORE_NOTFOUND || rc == STORE_INVALID)
		return yes && u.enabled ? VR_OK : refuse(VR_DELEGATION_NOT_ALLOWED, no_consent);
	pool_failed = true;
	return VR_INTERNAL;
}

/* May a partner of trust level trust act for p's user? */
static int judge_trust(int trust, const struct oauth_partner *client,
		       const struct oauth_principal *p)
{
	switch (trust) {
	case STORE_TRUST_FULL:
		return VR_OK;
	case STORE_TRUST_APPLICATION:
		return pool_consent(client, p);
	case STORE_TRUST_USER:
		if (p->own &&
		    (!p->grant_basis[0] || strcmp(p->grant_basis, STS_BASIS_USER_TOKEN) == 0))
			return VR_OK;
		return refuse(
		    VR_DELEGATION_NOT_ALLOWED,
		    "the partner now has trust level user: it acts for a user only with a "
		    "token the user obtained here (token exchange)");
	default:
		return VR_DELEGATION_NOT_ALLOWED;
	}
}

/*
 * The partners' trust levels as the store has them, read by each thread at
 * most once every TRUST_POLL_MS and at once when its snapshot changed: a
 * trust change or a disabling made at another server of the pool (which
 * reloads only that server) is seen here within that time. Partners beyond
 * TRUST_ROWS_MAX are judged by the snapshot alone.
 */
#define TRUST_POLL_MS  1000
#define TRUST_ROWS_MAX 512

struct trust_row {
	int64_t id;
	int trust;
	bool enabled;
};

static _Thread_local struct {
	const struct oauth_snapshot *snap; /* the snapshot it was read under */
	const struct store *store;
	uint64_t at; /* clock_mono_ms of the read; 0: never */
	size_t n;
	struct trust_row rows[TRUST_ROWS_MAX];
} trust_view;

static int trust_row_add(void *ctx, int64_t id, int trust, bool enabled)
{
	(void)ctx;
	if (trust_view.n >= TRUST_ROWS_MAX)
		return 1; /* the rest: the snapshot's word */
	trust_view.rows[trust_view.n++] = (struct trust_row){id, trust, enabled};
	return 0;
}

/* The store's row of partner id (NULL: none, or beyond the rows kept); -1
 * when the store cannot answer. */
static int store_trust(const struct oauth_snapshot *snap, int64_t id, const struct trust_row **out)
{
	uint64_t now = clock_mono_ms();
	int rc;

	*out = NULL;
	if (trust_view.snap != snap || trust_view.store != pool_store || !trust_view.at ||
	    now - trust_view.at >= TRUST_POLL_MS) {
		trust_view.n = 0;
		trust_view.at = 0;
		rc = store_partner_trust_list(pool_store, trust_row_add, NULL);
		if (rc < 0)
			return -1;
		trust_view.snap = snap;
		trust_view.store = pool_store;
		trust_view.at = now ? now : 1;
	}
	/* rows are ordered by id */
	for (size_t lo = 0, hi = trust_view.n; lo < hi;) {
		size_t mid = lo + (hi - lo) / 2;

		if (trust_view.rows[mid].id == id) {
			*out = &trust_view.rows[mid];
			return 0;
		}
		if (trust_view.rows[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/*
 * May the client of p act for p's user now? Judged on every use, cached or
 * not, with the partner's current trust level (PROTOCOLS.md §6), so a
 * downgrade or a withdrawn consent stops the partner at once:
 *  - full: yes;
 *  - application: while the user's consent is recorded (the store);
 *  - user: only our access tokens exchanged for a token the user obtained
 *    here (rtc_grant "user-token"), or minted before rtc_grant existed;
 *    never a partner's own outer token (validate_outer refuses those).
 * A token issued under full trust or with consent is thus refused once the
 * partner is downgraded to user trust, and without consent once it is
 * downgraded to application trust; an app-only token once the partner has
 * user trust (it never acts as itself). With a store bound, the level the
 * store has now must allow it too (store_trust), and the partner must be
 * enabled there: the pool's other servers see a change within
 * TRUST_POLL_MS, before they reload.
 */
static int delegation_check(const struct oauth_snapshot *snap, const struct oauth_principal *p)
{
	static const char not_itself[] =
	    "the partner now has trust level user: it never acts as itself";
	const struct oauth_partner *client;
	const struct trust_row *row;
	int rc;

	client = oauth_partner_by_name(snap, p->partner);
	if (!client)
		return VR_PARTNER_DISABLED;
	/* as itself: any level but user (PROTOCOLS.md §6) */
	if (!p->acts_for_user)
		rc = client->rec.trust == STORE_TRUST_USER
			 ? refuse(VR_DELEGATION_NOT_ALLOWED, not_itself)
			 : VR_OK;
	else
		rc = judge_trust(client->rec.trust, client, p);
	if (rc != VR_OK || !pool_store || client->rec.id <= 0)
		return rc;
	if (store_trust(snap, client->rec.id, &row) < 0) {
		pool_failed = true;
		return VR_INTERNAL;
	}
	if (!row)
		return trust_view.n >= TRUST_ROWS_MAX ? VR_OK : VR_PARTNER_DISABLED; /* deleted */
	if (!row->enabled)
		return VR_PARTNER_DISABLED;
	if (row->trust == client->rec.trust)
		return VR_OK;
	if (!p->acts_for_user)
		return row->trust == STORE_TRUST_USER
			   ? refuse(VR_DELEGATION_NOT_ALLOWED, not_itself)
			   : VR_OK;
	return judge_trust(row->trust, client, p);
}

/* Remember that the entry of h was found unrevoked at pool version v. */
static void cache_confirm(const unsigned char h[32], int64_t v)
{
	struct centry *e;
	size_t sh, sl;

	cache_pos(h, &sh, &sl);
	pthread_mutex_lock(&cache[sh].mu);
	e = cache[sh].slot[sl];
	if (e && memcmp(e->p.hash, h, 32) == 0 && e->pool_v < v)
		e->pool_v = v;
	pthread_mutex_unlock(&cache[sh].mu);
}

static void cache_put(const struct oauth_principal *p, struct jose_key *key, int64_t pool_v)
{
	struct centry *e = malloc(sizeof(*e)), *old;
	size_t sh, sl;

	if (!e)
		return; /* the cache is an optimisation */
	e->p = *p;
	e->pool_v = pool_v;
	e->key = jose_key_ref(key);
	pthread_once(&cache_once, cache_init);
	cache_pos(p->hash, &sh, &sl);
	pthread_mutex_lock(&cache[sh].mu);
	old = cache[sh].slot[sl];
	cache[sh].slot[sl] = e;
	pthread_mutex_unlock(&cache[sh].mu);
	centry_free(old);
}

void oauth_validate_flush(void)
{
	pthread_once(&cache_once, cache_init);
	for (size_t i = 0; i < CACHE_SHARDS; i++) {
		pthread_mutex_lock(&cache[i].mu);
		for (size_t j = 0; j < CACHE_SLOTS; j++) {
			centry_free(cache[i].slot[j]);
			cache[i].slot[j] = NULL;
		}
		pthread_mutex_unlock(&cache[i].mu);
	}
}

/* ---- validation ---- */

static int validate_uncached(const struct oauth_snapshot *snap, const char *tok, size_t len,
			     int64_t now, struct oauth_principal *p)
{
	struct half h;
	int rc = verify_signed(snap, tok, len, now, &h);

	if (rc == VR_ALG_NONE) {
		rc = validate_outer(snap, tok, len, now, p, &h);
		if (rc != VR_OK)
			return rc;
	} else if (rc != VR_OK) {
		return rc;
	} else {
		rc = h.own ? principal_own(snap, &h, p) : principal_partner(snap, &h, p);
	}
	if (rc == VR_OK && oauth_revoked(p, now))
		rc = VR_REVOKED;
	if (rc == VR_OK)
		rc = delegation_check(snap, p);
	if (rc == VR_OK) {
		/* about to be accepted: the pool's list decides too (no store
		 * bound: this process's list only, version -1) */
		int64_t v = -1;
		int pr = pool_store ? pool_revoked(p, now, &v) : 0;

		if (pr < 0) {
			pool_failed = true;
			rc = VR_INTERNAL;
		} else if (pr > 0) {
			rc = VR_REVOKED;
		} else {
			cache_put(p, h.jws.key, v);
		}
	}
	jose_jws_free(&h.jws);
	return rc;
}

/* The cache key: SHA-256 of the token (core/md.h: fetched once). */
static int token_hash(const char *token, size_t len, unsigned char out[32])
{
	unsigned int n = 0;

	if (!md_sha256() || EVP_Digest(token, len, out, &n, md_sha256(), NULL) != 1 || n != 32)
		return -1;
	return 0;
}

int oauth_validate_token(const struct oauth_snapshot *snap, const char *token, size_t len,
			 int64_t now, struct oauth_principal *out)
{
	int64_t cached_v = -1;
	size_t max;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!snap)
		return VR_INTERNAL;
	if (!token || len == 0)
		return VR_MISSING;
	max = snap->max_token_size ? snap->max_token_size : JOSE_DEFAULT_MAX_TOKEN;
	if (len > max)
		return VR_TOO_LARGE;
	if (token_hash(token, len, out->hash) < 0)
		return VR_INTERNAL;
	pool_failed = false;
	vr_detail = NULL;
	if (cache_get(snap, out->hash, now, out, &cached_v)) {
		stats_family_inc(SF_OAUTH_VALIDATION_CACHE, 0);
		if (oauth_revoked(out, now)) {
			memset(out, 0, sizeof(*out));
			return VR_REVOKED;
		}
		/* the pool's list moved since this entry was checked: ask again
		 * (a revocation at another server is refused here within
		 * POOL_POLL_MS) */
		if (pool_store) {
			int64_t v = pool_version();
			int pr = 0;

			if (v < 0)
				pr = -1;
			else if (v != cached_v && (pr = pool_revoked(out, now, &v)) == 0)
				cache_confirm(out->hash, v);
			if (pr != 0) {
				pool_failed = pr < 0;
				memset(out, 0, sizeof(*out));
				return pr < 0 ? VR_INTERNAL : VR_REVOKED;
			}
		}
		rc = delegation_check(snap, out);
		if (rc != VR_OK)
			memset(out, 0, sizeof(*out));
		return rc;
	}
	stats_family_inc(SF_OAUTH_VALIDATION_CACHE, 1);
	rc = validate_uncached(snap, token, len, now, out);
	if (rc != VR_OK)
		memset(out, 0, sizeof(*out));
	return rc;
}

bool oauth_principal_has_scope(const struct oauth_principal *p, const char *scope)
{
	return scope && scope[0] && str_list_has(p->scope, ' ', scope, strlen(scope));
}

/* RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" /
 * "+" / "/" ) *"=" */
static bool b64token(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && (isalnum((unsigned char)s[i]) || strchr("-._~+/", s[i])))
		i++;
	if (i == 0)
		return false;
	while (i < n && s[i] == '=')
		i++;
	return i == n;
}

int oauth_validate_bearer(const struct oauth_snapshot *snap, const char *authorization, int64_t now,
			  const char *scope, struct oauth_principal *out)
{
	return oauth_validate_bearer_cert(snap, authorization, now, scope, NULL, out);
}

int oauth_validate_bearer_cert(const struct oauth_snapshot *snap, const char *authorization,
			       int64_t now, const char *scope, const char *peer_x5t_s256,
			       struct oauth_principal *out)
{
	const char *t;
	size_t n;
	int rc;

	memset(out, 0, sizeof(*out));
	vr_detail = NULL;
	if (!authorization || strncasecmp(authorization, "Bearer", 6) != 0 ||
	    (authorization[6] && authorization[6] != ' ' && authorization[6] != '\t')) {
		rc = VR_MISSING;
		goto out;
	}
	t = authorization + 6;
	while (*t == ' ' || *t == '\t')
		t++;
	n = strlen(t);
	while (n && (t[n - 1] == ' ' || t[n - 1] == '\t'))
		n--;
	if (n == 0) {
		rc = VR_MISSING;
		goto out;
	}
	if (snap && n > (snap->max_token_size ? snap->max_token_size : JOSE_DEFAULT_MAX_TOKEN)) {
		rc = VR_TOO_LARGE;
		goto out;
	}
	if (!b64token(t, n)) {
		rc = VR_MALFORMED;
		goto out;
	}
	rc = oauth_validate_token(snap, t, n, now, out);
	/* RFC 8705 §3: a bound token is only good with its certificate */
	if (rc == VR_OK && out->cnf_x5t_s256[0] &&
	    (!peer_x5t_s256 || strcmp(out->cnf_x5t_s256, peer_x5t_s256) != 0))
		rc = VR_CERT_MISMATCH; /* *out stays: the handler may log who */
	if (rc == VR_OK && scope && !oauth_principal_has_scope(out, scope))
		rc = VR_INSUFFICIENT_SCOPE; /* *out stays: the handler may log who */
out:
	stats_family_inc(SF_OAUTH_VALIDATIONS, (unsigned)rc);
	return rc;
}

/* ---- RFC 6750 challenges ---- */

static bool quotable(const char *s)
{
	if (!s[0])
		return false;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '"' || *s == '\\' || *s == ',')
			return false;
	return true;
}

const char *oauth_challenge(const struct oauth_snapshot *snap, char *buf, size_t cap)
{
	size_t o;
	int n;

	if (cap == 0)
		return buf;
	/* PROTOCOLS.md §6: ours first, then every partner's <id>@<realm> */
	n = snprintf(buf, cap, "Bearer client_id=\"%s\", realm=\"%s\", trusted_issuers=\"%s@%s",
		     snap->principal_id, snap->realm, snap->principal_id, snap->realm);
	o = n < 0 ? 0 : (size_t)n;
	for (size_t i = 0; i < snap->n_partners && o + 2 < cap; i++) {
		const struct oauth_partner *p = &snap->partners[i];
		const char *realm = partner_realm(snap, p);
		size_t need = strlen(p->rec.issuer) + strlen(realm) + 2;

		if (!quotable(p->rec.issuer) || !quotable(realm) || strchr(p->rec.issuer, '@') ||
		    o + need + 2 >= cap)
			continue;
		o += (size_t)snprintf(buf + o, cap - o, ",%s@%s", p->rec.issuer, realm);
	}
	if (o + 2 <= cap) {
		buf[o++] = '"';
		buf[o] = '\0';
	} else {
		buf[cap - 1] = '\0';
	}
	return buf;
}

#define CHALLENGE_MAX 4096

bool oauth_require(const struct http_request *req, struct http_response *resp, const char *scope,
		   struct oauth_principal *out)
{
	const struct oauth_snapshot *snap = oauth_snapshot_get();
	struct oauth_principal local, *p = out ? out : &local;
	char *h = NULL, pv[LOG_VAL_MAX];
	int rc;

	if (!snap) {
		memset(p, 0, sizeof(*p));
		http_response_error(resp, 503, "temporarily_unavailable",
				    "the OAuth runtime is not ready");
		return false;
	}
	{
		struct sip_worker *w = req->worker;
		X509 *cert = http_request_peer_cert(req);
		char x5t[JOSE_X5T256_LEN + 1];

		oauth_validate_bind_store(w ? w->store : NULL);
		bool have = cert && token_cert_thumbprint(cert, x5t) == 0;
		rc = oauth_validate_bearer_cert(snap, http_request_header(req, "Authorization"),
						clock_wall_s(), scope, have ? x5t : NULL, p);
	}
	if (rc == VR_OK)
		goto out;
	h = malloc(CHALLENGE_MAX);
	if (!h) {
		http_response_error(resp, 500, "server_error", "out of memory");
		goto out;
	}
	if (rc == VR_MISSING) {
		/* RFC 6750 §3.1: no error code when no token came */
		http_response_header(resp, "WWW-Authenticate",
				     oauth_challenge(snap, h, CHALLENGE_MAX));
		http_response_error(resp, 401, "invalid_request",
				    "this resource needs an OAuth access token "
				    "(Authorization: Bearer)");
	} else if (rc == VR_INSUFFICIENT_SCOPE) {
		snprintf(h, CHALLENGE_MAX,
			 "Bearer realm=\"%s\", error=\"insufficient_scope\", scope=\"%s\"",
			 snap->realm, scope);
		http_response_header(resp, "WWW-Authenticate", h);
		http_response_error(resp, 403, "insufficient_scope",
				    "the token does not grant the scope this resource needs");
	} else if (rc == VR_INTERNAL && oauth_validate_unavailable()) {
		/* fail closed: the pool's revocations or consents could not be read */
		http_response_header(resp, "Retry-After", "5");
		http_response_error(resp, 503, "temporarily_unavailable",
				    "the revocation list or the consent records are unavailable; "
				    "retry in a moment");
	} else if (rc == VR_INTERNAL) {
		http_response_error(resp, 500, "server_error", "the token could not be checked");
	} else {
		/* the body: the result's name, and what to do about it when known */
		char desc[400];
		const char *why = oauth_validate_detail();

		snprintf(desc, sizeof(desc), "%s%s%s", validate_result_name(rc), why[0] ? ": " : "",
			 why);
		/* the challenge keeps the bare name (clients match on it) */
		snprintf(h, CHALLENGE_MAX,
			 "Bearer realm=\"%s\", error=\"invalid_token\", error_description=\"%s\"",
			 snap->realm, validate_result_name(rc));
		http_response_header(resp, "WWW-Authenticate", h);
		http_response_error(resp, 401, "invalid_token", desc);
	}
out:
	log_emit(rc == VR_OK ? LOG_DEBUG : LOG_INFO, "oauth.validate", "result=%s partner=%s",
		 validate_result_name(rc), log_val(str_cstr(p->partner), pv, sizeof(pv)));
	free(h);
	oauth_snapshot_put(snap);
	if (rc != VR_OK && p != &local)
		memset(p, 0, sizeof(*p));
	return rc == VR_OK;
}

/* ---- routes ---- */

int oauth_validate_routes(void)
{
	if (api_routes() < 0 || introspect_routes() < 0 || consent_routes() < 0)
		return -1;
	return 0;
}

void oauth_validate_shutdown(void)
{
	oauth_validate_flush();
	rev_clear();
}
