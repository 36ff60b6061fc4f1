/*
 * The OAuth runtime every web-service endpoint shares (issue 3; OAuth is
 * always on): the deployment's issuer identity from [oauth], the signing
 * keys (vault/keys.h), our own published keys as a jose key set (to
 * validate tokens we issued), and the enabled partner applications from the
 * store, each with its jose key set (to verify their client assertions and
 * tokens). Wire facts: PROTOCOLS.md §6.
 *
 * Lifecycle:
 *   - oauth_start() once at daemon start, after the store is migrated and
 *     before the workers run: makes sure a current signing key exists
 *     (keys_ensure_current, so the first start of a deployment creates
 *     one), loads it and builds the first snapshot. Failure stops the daemon
 *     with a clear message.
 *   - oauth_reload() rebuilds the snapshot from the store (rtcauthctl sends
 *     the admin command "oauth.reload" after every key or partner change;
 *     SIGHUP calls it too) and swaps it in atomically. On failure the old
 *     snapshot stays and the error is returned (and logged by the caller).
 *   - oauth_stop() at exit.
 *
 * Readers (handlers on worker threads) take the current snapshot with
 * oauth_snapshot_get() and give it back with oauth_snapshot_put(); a
 * snapshot is immutable, so no lock is held while it is used.
 */
#ifndef RTC_OAUTH_OAUTH_H
#define RTC_OAUTH_OAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/config.h"
#include "oauth/jose.h"
#include "store/store.h"
#include "store/store_oauth.h"

/* Well-known principal ids (PROTOCOLS.md §6). */
#define OAUTH_PRINCIPAL_LYNC	 "00000004-0000-0ff1-ce00-000000000000"
#define OAUTH_PRINCIPAL_EXCHANGE "00000002-0000-0ff1-ce00-000000000000"

/* One enabled partner application: its store record (certs/jwks freed)
 * and the public keys it signs with. */
struct oauth_partner {
	struct store_partner rec;
	struct jose_keyset keys;
	/* RFC 8705 §2.1 tls_client_auth: the registered subject DN (RFC 4514)
	 * and SAN ("dns:...", ...) of its PKI client certificate, '' = none
	 * (store_oauth.h store_partner_tls_get) */
	char tls_subject[STORE_TLS_SUBJECT_MAX];
	char tls_san[STORE_TLS_SAN_MAX];
};

struct oauth_snapshot {
	/* from [oauth] and [server]; see config.h for defaults */
	char issuer[CONFIG_URL_MAX];	     /* our issuer URL (RFC 8414 "issuer") */
	char realm[CONFIG_HOST_MAX];	     /* the realm: [oauth] realm or the SIP domain */
	char principal_id[CONFIG_HOST_MAX];  /* our principal (client) id */
	char host[CONFIG_HOST_MAX];	     /* our host name: [server] fqdn */
	char token_endpoint[CONFIG_URL_MAX]; /* <issuer>/oauth/token */
	int default_lifetime;		     /* seconds */
	int max_lifetime;		     /* seconds: no token we issue or accept lives longer */
	int clock_skew;			     /* seconds */
	size_t max_token_size;		     /* bytes */
	char service_name[CONFIG_NAME_MAX];  /* [oauth] service_name (metadata "name") */
	char authorization_server[CONFIG_URL_MAX]; /* [oauth] authorization_server, or '' */

	/* the signing key now (state current) and every published key
	 * (current, next, previous: the JWKS and the metadata list these) */
	struct store_oauth_key current;
	struct store_oauth_key *published;
	size_t n_published;
	struct jose_keyset own; /* public keys of the published keys */

	struct oauth_partner *partners; /* enabled partners only */
	size_t n_partners;
};

/* cfg and the store s (a connection the caller keeps; used only during the
 * call). 0, or -1 with a message for a person in err. */
int oauth_start(const struct config *cfg, struct store *s, char *err, size_t errlen);
/* Re-read keys and partners (and cfg, which may have changed on SIGHUP). */
int oauth_reload(const struct config *cfg, struct store *s, char *err, size_t errlen);
void oauth_stop(void);

/* The current snapshot (never NULL after oauth_start); give it back. */
const struct oauth_snapshot *oauth_snapshot_get(void);
void oauth_snapshot_put(const struct oauth_snapshot *snap);

/* The enabled partner whose issuer id is issuer (exact) in realm (exact;
 * NULL: any realm), or by name. NULL if none. */
const struct oauth_partner *oauth_partner_by_issuer(const struct oauth_snapshot *snap,
						    const char *issuer, const char *realm);
const struct oauth_partner *oauth_partner_by_name(const struct oauth_snapshot *snap,
						  const char *name);
/* The enabled partner whose issuer id is id, exact or "<id>@<realm>" (the
 * partner's realm, or ours when it has none). NULL if none. */
const struct oauth_partner *oauth_partner_by_id(const struct oauth_snapshot *snap, const char *id);

/* Does the audience value a name this server: our issuer URL, or
 * "<principal>/<host>@<realm>" checked part by part (principal exact, host
 * case-insensitive, realm exact; PROTOCOLS.md §6)? */
bool oauth_audience_is_us(const struct oauth_snapshot *snap, const char *a);

/*
 * Sign payload as a compact JWS with the current key: the header gets
 * "alg" (the key's pinned algorithm), "kid", "x5t" and "typ" (typ: "JWT"
 * unless header sets another; header may be NULL). *out is malloc'd (free
 * it). 0 or a negative enum jose_err / keys_err.
 */
int oauth_sign(const struct oauth_snapshot *snap, const json_t *header, const json_t *payload,
	       char **out, size_t *outlen);

#endif
