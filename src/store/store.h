/*
 * The store: the single trusted place for users, their password-derived keys,
 * registrations and the audit log. One interface; the SQLite implementation
 * (sqlite.c) is the default, PostgreSQL comes later behind the same calls.
 *
 * A struct store is one connection: use it from one thread at a time (the
 * daemon opens one per worker thread). Every function returns STORE_OK (0)
 * or a negative enum store_err; STORE_UNAVAILABLE means the backend could not
 * answer (locked, I/O error, read-only): callers must answer "try later",
 * never "wrong password" nor "no such user".
 *
 * Keys (struct store_cred) are secrets: only src/vault and this module touch
 * them. Nothing here logs a key.
 */
#ifndef RTC_STORE_STORE_H
#define RTC_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

enum store_err {
	STORE_OK = 0,
	STORE_NOTFOUND = -1,
	STORE_CONFLICT = -2,	/* unique constraint (user exists, ...) */
	STORE_UNAVAILABLE = -3, /* busy, locked, I/O error, read-only, disk full */
	STORE_INVALID = -4,	/* argument fails validation */
	STORE_TOO_NEW = -5,	/* database schema newer than this program */
	STORE_CORRUPT = -6,	/* not an rtcauth database / corrupt */
};
const char *store_strerror(int err);

/* Current schema version this program writes (numbered migrations). */
int store_schema_latest(void);

enum store_open_flags {
	STORE_CREATE = 1,   /* create the file and apply migrations if needed */
	STORE_READONLY = 2, /* open read-only (no migrations applied) */
};

struct store;

/*
 * Open (and migrate) the SQLite database at path. WAL mode, busy timeout
 * (busy_ms), foreign keys on. A database whose schema version is newer than
 * store_schema_latest() is refused with STORE_TOO_NEW and err says so
 * ("database schema version 7 is newer than this rtcauth (5); upgrade rtcauth").
 * On failure *out is NULL and err holds a message for a person.
 */
int store_open(const char *path, int flags, int busy_ms, struct store **out, char *err,
	       size_t errlen);
void store_close(struct store *s);

/*
 * Background WAL checkpoints, for the daemon: from start to stop, a thread
 * with a connection of its own to path copies the WAL back into the
 * database (PASSIVE checkpoints) when a commit of any connection of this
 * process takes it to 1000 pages, instead of that connection doing it,
 * fsyncs included, before its commit returns (SQLite's default, and what
 * happens without a checkpointer). Should the WAL reach 3000 pages all the
 * same (writers that never pause leave the thread no complete checkpoint,
 * and the WAL starts over only after one), the writing connection
 * checkpoints itself as by default, as soon as the thread's checkpoint in
 * progress is done: the WAL does not grow with the number of commits. One per
 * process. stats: checkpoints run by the thread, failed ones (neither BUSY
 * nor OK), and commits whose connection checkpointed itself while the
 * thread ran, since the process started.
 */
int store_checkpointer_start(const char *path, char *err, size_t errlen);
void store_checkpointer_stop(void);
void store_checkpointer_stats(unsigned long *runs, unsigned long *failures,
			      unsigned long *by_writers);
/* The last backend error message (for logs; never contains secrets). */
const char *store_errmsg(struct store *s);

int store_begin(struct store *s);
int store_commit(struct store *s);
void store_rollback(struct store *s);

/* ---- users ---- */

#define STORE_URI_MAX  256
#define STORE_NAME_MAX 256

struct store_user {
	int64_t id;
	char uri[STORE_URI_MAX];    /* normalised "sip:user@host" (host lower case) */
	char user[STORE_URI_MAX];   /* user part as in the URI */
	char domain[STORE_URI_MAX]; /* host part, lower case */
	char display_name[STORE_NAME_MAX];
	bool enabled;
	bool has_password;
	int64_t created; /* unix seconds */
	int64_t updated;
	int64_t password_changed; /* 0 = never */
};

/*
 * Normalise a SIP URI for storage and lookup: "sip:" or "sips:" scheme (sips
 * stored as sip), user part kept as written (case-sensitive), host lowered,
 * no port/params/headers allowed. Also accepts "user@host" without scheme.
 * 0 or STORE_INVALID; writes uri/user/domain (each STORE_URI_MAX).
 */
int store_uri_normalise(const char *in, char *uri, char *user, char *domain);

/* Insert; u->uri must be normalised. Sets u->id. STORE_CONFLICT if present. */
int store_user_add(struct store *s, struct store_user *u);
int store_user_get(struct store *s, const char *uri, struct store_user *out);
int store_user_set_enabled(struct store *s, const char *uri, bool enabled);
int store_user_set_display_name(struct store *s, const char *uri, const char *name);
/* Deletes the user, their keys and their registrations. */
int store_user_del(struct store *s, const char *uri);
/* Calls fn for each user ordered by uri; stops early if fn returns non-zero
 * (and returns that value). */
int store_user_list(struct store *s, int (*fn)(void *ctx, const struct store_user *u), void *ctx);
int store_user_count(struct store *s, int64_t *count);
/*
 * A number that changes whenever a user or a key changes, by any process
 * (triggers in the database): key caches compare it to know they are
 * current. STORE_OK with *version set, or an error.
 */
int store_cred_version(struct store *s, int64_t *version);

/* ---- password-derived keys (secrets) ---- */

/*
 * A key is identified by mechanism and variant, e.g.
 *   mech "digest-md5" | "digest-sha256" | "digest-sha512-256"
 *   variant "user" (HA1 over the user part) | "user@domain"
 * Later mechanisms add their own ("nt", "turn-...").
 */
#define STORE_KEY_MAX 64
struct store_cred {
	char mech[32];
	char variant[32];
	uint8_t key[STORE_KEY_MAX];
	size_t key_len;
};

/* Replace all keys of the user atomically (password change). */
int store_cred_replace(struct store *s, int64_t user_id, const struct store_cred *creds, size_t n);

/*
 * The Digest hot path: find the user whose Digest user name is `username`
 * (either the user part, with domain == realm, or "user@domain") and fetch
 * the key (mech, variant chosen by the form used). Fills *u and the key.
 * STORE_NOTFOUND when no such user or no such key.
 */
int store_digest_lookup(struct store *s, struct str username, struct str realm, const char *mech,
			struct store_user *u, struct store_cred *key);

/* ---- registrations ---- */

#define STORE_CONTACT_MAX 1024
struct store_reg {
	char aor[STORE_URI_MAX];
	char binding_key[STORE_CONTACT_MAX]; /* unique per AOR (RFC 5626 instance+reg-id, or contact
						URI) */
	char contact[STORE_CONTACT_MAX];     /* the Contact value as received (name-addr) */
	char instance[STORE_URI_MAX];	     /* +sip.instance, may be empty */
	int32_t reg_id;			     /* -1 = none */
	char path[STORE_CONTACT_MAX];	     /* Path header values, comma-joined, may be empty */
	int64_t expires;		     /* absolute unix seconds */
	char source[80];		     /* "ip:port" (IPv6 as [..]:port) */
	int transport;			     /* enum transport_kind */
	char call_id[STORE_URI_MAX];
	uint32_t cseq;
	char user_agent[STORE_NAME_MAX];
	int64_t updated;
};

/* Insert or replace by (aor, binding_key). */
int store_reg_put(struct store *s, const struct store_reg *r);
int store_reg_del(struct store *s, const char *aor, const char *binding_key);
/* Delete all bindings of an AOR; *n (may be NULL) gets the count. */
int store_reg_del_aor(struct store *s, const char *aor, int *n);
/* All bindings (aor NULL) or one AOR's, ordered by aor, binding_key. */
int store_reg_list(struct store *s, const char *aor,
		   int (*fn)(void *ctx, const struct store_reg *r), void *ctx);
/* Every binding whose row falls in part `part` of `nparts` (0 <= part <
 * nparts), in no particular order: the parts together are the whole table,
 * each read once. Lets a restart read its bindings on several threads. */
int store_reg_scan(struct store *s, int part, int nparts,
		   int (*fn)(void *ctx, const struct store_reg *r), void *ctx);
/* Delete bindings with expires <= now; *n gets the count. */
int store_reg_purge(struct store *s, int64_t now, int *n);

/* ---- audit ---- */

struct store_audit {
	int64_t id;
	int64_t ts;
	char actor[STORE_URI_MAX];  /* "rtcauthctl:root", "sip" ... */
	char action[64];	    /* "user.add", "auth.fail", ... */
	char target[STORE_URI_MAX]; /* the user/AOR concerned */
	char source[80];	    /* ip:port or "local" */
	char detail[512];	    /* reason; never a secret */
};
int store_audit_add(struct store *s, const char *actor, const char *action, const char *target,
		    const char *source, const char *detail);
/* Most recent first, at most limit rows. */
int store_audit_list(struct store *s, int limit, int (*fn)(void *ctx, const struct store_audit *a),
		     void *ctx);

/* ---- phone numbers, extensions and PINs (issue 5 item 2; src/pki/pin.c,
 * src/vault/vault_pin.c) ---- */

#define STORE_PHONE_MAX	     32 /* "+" and up to 15 digits (E.164), NUL included */
#define STORE_EXTENSION_MAX  16 /* digits, NUL included */
#define STORE_PIN_PARAMS_MAX 96 /* "scrypt:N=32768,r=8,p=1,dklen=32,class=6" */
#define STORE_PIN_BLOB_MAX   64 /* salt and hash, bytes */

/* A user's phone number and extension ('' = none). The caller validates
 * them (src/pki/pin.h pin_phone_normalise); the store only checks sizes.
 * NULL keeps a field as it is. STORE_NOTFOUND for an unknown URI. */
int store_user_set_phone(struct store *s, const char *uri, const char *phone,
			 const char *extension);
int store_user_get_phone(struct store *s, const char *uri, char phone[STORE_PHONE_MAX],
			 char extension[STORE_EXTENSION_MAX]);
/*
 * The users whose phone number is phone and whose extension is extension
 * ('' or NULL: that field is not compared; both empty is STORE_INVALID),
 * ordered by uri. fn may use the store; it stops the walk by returning
 * non-zero (returned).
 */
int store_user_find_phone(struct store *s, const char *phone, const char *extension,
			  int (*fn)(void *ctx, const struct store_user *u), void *ctx);

/* A PIN's record without its secret half: what the lockout logic reads. */
struct store_pin_state {
	int64_t user_id;
	char params[STORE_PIN_PARAMS_MAX]; /* how the hash was made (not secret) */
	int64_t set_at;
	int64_t window_start;	 /* first failure of the current local window; 0 none */
	int32_t local_failures;	 /* in the window */
	int32_t global_failures; /* since the last success or unlock */
	int64_t locked_until;	 /* temporary lockout end; 0 none */
	bool admin_locked;	 /* global limit reached: `rtcauthctl pin unlock` */
};

/* Set (or replace) a user's PIN hash; the counters start again at zero.
 * Only the vault calls it. */
int store_pin_put(struct store *s, int64_t user_id, const uint8_t *hash, size_t hash_len,
		  const uint8_t *salt, size_t salt_len, const char *params, int64_t set_at);
/* The hash, salt and params (only the vault reads them). *_len are in:
 * the capacity, out: the length. STORE_NOTFOUND: the user has no PIN. */
int store_pin_get_hash(struct store *s, int64_t user_id, uint8_t *hash, size_t *hash_len,
		       uint8_t *salt, size_t *salt_len, char params[STORE_PIN_PARAMS_MAX]);
int store_pin_get_state(struct store *s, int64_t user_id, struct store_pin_state *out);
/* Write the counters of st (window, failures, locks) for st->user_id. */
int store_pin_set_state(struct store *s, const struct store_pin_state *st);
int store_pin_del(struct store *s, int64_t user_id);

/* ---- OAuth signing keys (public side; the private keys are files that
 * only src/vault/keys.c opens) ---- */

/*
 * Rollover states. A key is created "next" (published in JWKS and metadata,
 * not yet signing), becomes "current" (the one key that signs) and, when
 * another key is activated, "previous" (published, still accepted, no longer
 * signing). "retired" keys are neither published nor accepted. At most one
 * key is current at any time (a unique index); set_state moves the old
 * current key to previous in the same transaction.
 */
enum store_oauth_key_state {
	STORE_OAUTH_KEY_NEXT = 0,
	STORE_OAUTH_KEY_CURRENT = 1,
	STORE_OAUTH_KEY_PREVIOUS = 2,
	STORE_OAUTH_KEY_RETIRED = 3,
};
/* "next", "current", "previous", "retired" ("?" for another value). */
const char *store_oauth_key_state_name(int state);
/* 0 and *state, or STORE_INVALID for an unknown name. */
int store_oauth_key_state_parse(const char *name, int *state);

#define STORE_OAUTH_KID_MAX  32	  /* key id, base64url, NUL included */
#define STORE_OAUTH_ALG_MAX  8	  /* "RS256" | "PS256" | "ES256" | "EdDSA" */
#define STORE_OAUTH_CERT_MAX 8192 /* certificate PEM, NUL included */

struct store_oauth_key {
	char kid[STORE_OAUTH_KID_MAX];
	char alg[STORE_OAUTH_ALG_MAX]; /* pinned: this key signs with this algorithm only */
	int state;		       /* enum store_oauth_key_state */
	char cert_pem[STORE_OAUTH_CERT_MAX];
	char x5t[32];	   /* base64url SHA-1 of the certificate DER (27 chars) */
	char x5t_s256[48]; /* base64url SHA-256 of the certificate DER (43 chars) */
	int64_t created;   /* unix seconds */
	int64_t activated; /* when it last became current; 0 = never */
	int64_t retired;   /* 0 = not retired */
};

/*
 * Insert a key record (k->created is set to now if 0). The state must be
 * next, or current when no key is current (else STORE_CONFLICT, as for a
 * duplicate kid). alg must be one of the four names. STORE_INVALID for a
 * bad field.
 */
int store_oauth_key_add(struct store *s, struct store_oauth_key *k);
int store_oauth_key_get(struct store *s, const char *kid, struct store_oauth_key *out);
/* The current key; STORE_NOTFOUND when there is none yet. */
int store_oauth_key_current(struct store *s, struct store_oauth_key *out);

enum store_oauth_key_list_flags {
	STORE_OAUTH_KEYS_ALL = 0,
	STORE_OAUTH_KEYS_PUBLISHED = 1, /* current, next and previous: JWKS and metadata */
};
/* Calls fn for each key, current first, then next, previous, retired, newest
 * first within a state; stops early if fn returns non-zero (and returns it). */
int store_oauth_key_list(struct store *s, int flags,
			 int (*fn)(void *ctx, const struct store_oauth_key *k), void *ctx);

/*
 * Move a key to another state, in one transaction:
 *   -> current:  from next or previous; the current key becomes previous
 *                (activated = now); already current: no change, STORE_OK
 *   -> retired:  from next or previous (retired = now); already retired: no
 *                change, STORE_OK; the current key: STORE_CONFLICT (activate
 *                another key first)
 *   -> next:     only a next key (no change); else STORE_CONFLICT
 *   -> previous: only by activating another key: STORE_INVALID
 * A retired key never comes back (STORE_CONFLICT). STORE_NOTFOUND for an
 * unknown kid. store_errmsg says why a change was refused.
 */
int store_oauth_key_set_state(struct store *s, const char *kid, int state);

/* ---- partner applications (servers whose tokens we accept and to whom we
 * issue tokens) ---- */

enum store_partner_trust {
	STORE_TRUST_FULL = 0,	     /* as itself and as any user of the realm */
	STORE_TRUST_APPLICATION = 1, /* as itself; as a user only with consent */
	STORE_TRUST_USER = 2,	     /* only on behalf of a user */
};
const char *store_partner_trust_name(int trust); /* "full" | "application" | "user" */
int store_partner_trust_parse(const char *name, int *trust);

enum store_partner_source {
	STORE_PARTNER_METADATA = 0, /* keys from metadata_url, fetched by the daemon */
	STORE_PARTNER_CERT = 1,	    /* certificate PEM(s) given by the operator */
	STORE_PARTNER_JWKS = 2,	    /* a JWKS document given by the operator */
};
const char *store_partner_source_name(int source); /* "metadata" | "cert" | "jwks" */

#define STORE_PARTNER_NAME_MAX	    64	  /* NUL included */
#define STORE_PARTNER_URL_MAX	    1024  /* NUL included */
#define STORE_PARTNER_RESOURCES_MAX 1024  /* NUL included */
#define STORE_PARTNER_KEYS_MAX	    65536 /* certs / jwks text, NUL included */

/*
 * certs and jwks are heap strings (NULL = none): after store_partner_get the
 * caller frees them with store_partner_clear; in store_partner_list's
 * callback they belong to the store and are freed after fn returns.
 */
struct store_partner {
	int64_t id;
	char name[STORE_PARTNER_NAME_MAX];
	bool enabled;
	char issuer[STORE_URI_MAX]; /* principal id or issuer URL; '' = not known yet */
	char realm[STORE_URI_MAX];
	int trust;				     /* enum store_partner_trust */
	char resources[STORE_PARTNER_RESOURCES_MAX]; /* "r1,r2" normalised, may be '' */
	int32_t lifetime;			     /* token lifetime, seconds */
	int source;				     /* enum store_partner_source */
	char metadata_url[STORE_PARTNER_URL_MAX];    /* https, for source metadata */
	char *certs;				     /* PEM certificates (source cert) */
	char *jwks;	    /* JSON (source jwks; for metadata: the last good keys fetched) */
	int64_t last_fetch; /* last metadata fetch attempt; 0 = never */
	char last_error[STORE_NAME_MAX]; /* '' after a good fetch */
	int64_t created;
	int64_t updated;
	/* tokens for it come from [oauth] authorization_server (issue 3 item 8)
	 * instead of being minted here */
	bool use_oauth_server;
};
/* Free certs and jwks (NULLs them); the rest of p stays. */
void store_partner_clear(struct store_partner *p);

/* Insert (created/updated = now; sets p->id). STORE_CONFLICT when the name,
 * or the (issuer, realm) pair of a non-empty issuer, is taken. The store only
 * checks sizes and enums: callers validate URLs, certificates and JSON. */
int store_partner_add(struct store *s, struct store_partner *p);
int store_partner_get(struct store *s, const char *name, struct store_partner *out);
/* Ordered by name; see above for certs/jwks ownership. */
int store_partner_list(struct store *s, int (*fn)(void *ctx, const struct store_partner *p),
		       void *ctx);
int store_partner_set_enabled(struct store *s, const char *name, bool enabled);
int store_partner_del(struct store *s, const char *name);
/*
 * Record a metadata fetch (for the daemon's refresh): last_fetch = when,
 * last_error = error ('' or NULL after success); jwks, when not NULL,
 * replaces the stored keys (the last good keys stay when it is NULL).
 */
int store_partner_set_fetch(struct store *s, const char *name, int64_t when, const char *error,
			    const char *jwks);
/*
 * Set the issuer id of a partner registered without one (learnt from its
 * metadata); a partner that has an issuer keeps it (STORE_OK, no change).
 * STORE_CONFLICT when another partner has this issuer in the same realm.
 */
int store_partner_set_issuer(struct store *s, const char *name, const char *issuer);

/* ---- certificates issued by our CA (issue 5; src/pki) ---- */

#define STORE_CERT_SERIAL_MAX  64   /* upper-case hex, NUL included */
#define STORE_CERT_SUBJECT_MAX 512  /* one-line subject, NUL included */
#define STORE_CERT_REASON_MAX  64   /* revocation reason, NUL included */
#define STORE_CERT_PEM_MAX     8192 /* the certificate PEM, NUL included */

struct store_cert {
	char serial[STORE_CERT_SERIAL_MAX];
	int64_t user_id; /* 0: the user has been deleted since */
	char uri[STORE_URI_MAX];
	char subject[STORE_CERT_SUBJECT_MAX];
	int64_t not_before; /* unix seconds */
	int64_t not_after;
	int64_t issued;
	int64_t revoked_at; /* 0 = not revoked */
	char reason[STORE_CERT_REASON_MAX];
	char pem[STORE_CERT_PEM_MAX];
};

/* Insert (revoked_at and reason are ignored: a new certificate is good).
 * STORE_CONFLICT when the serial exists (the caller draws another). */
int store_cert_add(struct store *s, const struct store_cert *c);
int store_cert_get(struct store *s, const char *serial, struct store_cert *out);
/* Every certificate (uri NULL) or one user's, newest first; stops early if
 * fn returns non-zero (and returns it). */
int store_cert_list(struct store *s, const char *uri,
		    int (*fn)(void *ctx, const struct store_cert *c), void *ctx);
/* The revoked ones (for the CRL), by serial. */
int store_cert_list_revoked(struct store *s, int (*fn)(void *ctx, const struct store_cert *c),
			    void *ctx);
/*
 * Revoke one certificate (at when, with reason; may be NULL) or every
 * certificate of a URI not yet revoked. *n (may be NULL) gets how many
 * changed: revoking a revoked certificate again changes nothing (STORE_OK,
 * *n 0). store_cert_revoke returns STORE_NOTFOUND for an unknown serial.
 */
int store_cert_revoke(struct store *s, const char *serial, int64_t when, const char *reason,
		      int *n);
int store_cert_revoke_uri(struct store *s, const char *uri, int64_t when, const char *reason,
			  int *n);

#endif
