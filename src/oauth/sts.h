/*
 * The built-in token service: mints the tokens rtcauth issues (issue 3
 * items 6 and 7). Nothing here decides WHO may get a token (token.c does,
 * for /oauth/token; an operator does, for rtcauthctl token issue); this
 * module only builds claims exactly as the specifications want them and
 * has them signed.
 *
 *  - RFC 9068 JWT access tokens for partners (typ "at+jwt").
 *  - The Microsoft-style actor token of [MS-XOAUTH] / [MS-SPS2SAUTH]
 *    (PROTOCOLS.md §6): iss and nameid = <our principal>@<realm>, aud =
 *    <target principal>/<target host>@<target realm>, nbf, exp, and
 *    trustedfordelegation "true" when it is the inner token of an act-as-user
 *    call. Every claim value is a string, nbf and exp too (decimal unix
 *    seconds, as the tokens Exchange and SharePoint send carry them).
 *  - The unsigned outer token for acting as a user: iss = the actor token's
 *    nameid, the same aud, nbf, exp, the user's identity claims (nameid,
 *    nii, sip, smtp, upn) and actortoken = the compact actor token.
 *
 * Signing goes through a callback (struct sts_issuer.sign): rtcauthd uses
 * oauth_sign() with the current key of the OAuth snapshot; rtcauthctl
 * signs with the vault's keys_sign() (sts_keys_sign). The private key never
 * passes through here.
 */
#ifndef RTC_OAUTH_STS_H
#define RTC_OAUTH_STS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "store/store.h"

struct oauth_snapshot;
struct keys;

/*
 * Sign payload as a compact JWS; header (may be NULL) gives extra members
 * ("typ"); the signer adds alg, kid, x5t as oauth_sign() does. *out is
 * malloc'd. 0 or negative.
 */
typedef int (*sts_sign_fn)(void *arg, const json_t *header, const json_t *payload, char **out,
			   size_t *outlen);

/* Who we are when we issue, and how we sign. Strings are borrowed. */
struct sts_issuer {
	const char *issuer;	  /* our issuer URL (RFC 8414), iss of access tokens */
	const char *principal_id; /* our principal id (the MS-style client id) */
	const char *realm;	  /* our realm */
	int default_lifetime;	  /* seconds, when a partner has none */
	int max_lifetime;	  /* seconds: no token lives longer */
	sts_sign_fn sign;
	void *sign_arg;
};

#define STS_JTI_BYTES 16 /* 128 bits of randomness */
#define STS_CLAIM_MAX 1024
#define STS_SCOPE_MAX 2048

enum sts_err {
	STS_OK = 0,
	STS_EINVAL = -1, /* a missing or oversized input */
	STS_ENOMEM = -2,
	STS_ESIGN = -3,	  /* the signer failed (no key, vault error) */
	STS_ERANDOM = -4, /* no randomness for the jti */
};

/* The issuer identity of a snapshot, signing with oauth_sign(snap). */
void sts_issuer_from_snapshot(struct sts_issuer *iss, const struct oauth_snapshot *snap);

/*
 * The lifetime of a token: requested (a partner's registered lifetime; <= 0
 * means the issuer's default), never above max_lifetime, at least 1 s.
 */
int sts_lifetime(const struct sts_issuer *iss, int requested);

/* A fresh jti: 128 random bits, base64url (22 characters). 0 or STS_ERANDOM. */
int sts_new_jti(char out[32]);

/* An RFC 9068 access token request. */
struct sts_access {
	const char *client_id; /* the partner's client id (its issuer id) */
	const char *subject;   /* sub: the user acted for, or NULL = client_id */
	const char *audience;  /* aud: a resource, or NULL = our issuer */
	const char *scope;     /* space-separated, or NULL/"" for none */
	int lifetime;	       /* requested seconds (bounded by sts_lifetime) */
	/* RFC 8693 §4.1 "act": the acting party when subject is a user (NULL:
	 * no act claim) */
	const char *actor;
	/* RFC 8705 §3.1: the x5t#S256 of the client's TLS certificate the
	 * token is bound to (cnf claim), or NULL for an unbound token */
	const char *cnf_x5t_s256;
	/* Why the client may act for subject (STS_GRANT_CLAIM), or NULL for
	 * none: one of the STS_BASIS_* values. The validator re-checks it
	 * against the partner's trust level at every use (validate.h). */
	const char *grant_basis;
};

/* The private claim that says how a token acting for a user was obtained. */
#define STS_GRANT_CLAIM	     "rtc_grant"
#define STS_BASIS_FULL	     "full"	  /* the partner had full trust */
#define STS_BASIS_CONSENT    "consent"	  /* application trust with the user's consent */
#define STS_BASIS_USER_TOKEN "user-token" /* exchanged for a token the user obtained here */

/*
 * Mint an RFC 9068 access token: header typ "at+jwt"; claims iss, sub,
 * aud, client_id, iat, nbf, exp, jti, scope (when not empty), act {"sub":
 * actor} (when actor), cnf {"x5t#S256": cnf_x5t_s256} (when given),
 * rtc_grant (STS_GRANT_CLAIM, when grant_basis is given). *out
 * malloc'd; *expires_in the lifetime granted.
 */
int sts_access_token(const struct sts_issuer *iss, const struct sts_access *req, int64_t now,
		     char **out, size_t *outlen, int *expires_in);

/* The target of a Microsoft-style token. */
struct sts_target {
	const char *principal; /* e.g. 00000002-0000-0ff1-ce00-000000000000 */
	const char *host;      /* e.g. mail.example.com (written lower case) */
	const char *realm;     /* NULL: ours */
	int lifetime;	       /* requested seconds (bounded by sts_lifetime) */
};

/* The user a Microsoft-style outer token speaks for. */
struct sts_user {
	const char *sip_uri; /* "sip:alice@example.com" (required) */
	const char *smtp;    /* mail address, or NULL */
	const char *upn;     /* user principal name, or NULL */
	const char *nii;     /* name identifier issuer; NULL: urn:office:idp:activedirectory */
};

/*
 * aud of a Microsoft-style token into buf: <principal>/<host>@<realm>.
 * 0 or STS_EINVAL (missing part, '/' or '@' in the principal, or too long).
 */
int sts_ms_audience(const struct sts_issuer *iss, const struct sts_target *t, char *buf,
		    size_t cap);

/*
 * The Microsoft-style actor token, signed by our current key (RS256 with
 * x5t when the current key is RSA, as Microsoft peers require):
 *   {"aud","iss","nbf","exp","nameid"[,"trustedfordelegation":"true"]}
 * for_user: it will be the inner token of an outer token.
 */
int sts_actor_token(const struct sts_issuer *iss, const struct sts_target *t, bool for_user,
		    int64_t now, char **out, size_t *outlen);

/*
 * The unsigned outer token (alg "none") acting as user, around a fresh
 * actor token (trustedfordelegation "true") for the same target:
 *   {"aud","iss" (= the actor's nameid),"nbf","exp","nameid","nii","sip",
 *    ["smtp"],["upn"],"actortoken"}
 * nameid and sip are the user's SIP address without the "sip:" scheme;
 * smtp and upn are written only when given. Every claim value a string.
 */
int sts_outer_token(const struct sts_issuer *iss, const struct sts_target *t,
		    const struct sts_user *u, int64_t now, char **out, size_t *outlen);

/*
 * A signer over the vault for processes without a snapshot (rtcauthctl):
 * arg is a struct sts_keys_signer; the header gets alg, kid, x5t and typ
 * (JWT unless the caller's header sets one), like oauth_sign().
 */
struct sts_keys_signer {
	struct keys *keys;
	const struct store_oauth_key *key; /* the current key */
};
int sts_keys_sign(void *arg, const json_t *header, const json_t *payload, char **out,
		  size_t *outlen);

#endif
