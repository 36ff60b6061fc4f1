/*
 * Partner metadata over verified HTTPS (issue 3 item 5): the documents a
 * partner publishes (a JWKS, an RFC 8414 authorization server metadata
 * document whose jwks_uri is then fetched, or the Microsoft-style auth
 * metadata document at /metadata/json/1; PROTOCOLS.md §6), fetched with
 * libcurl, checked, turned into one JWKS text and stored as the partner's
 * last good keys.
 *
 * Three layers:
 *   - fetch_doc_parse(): a pure, bounded parser of the three document shapes
 *     (no I/O; fuzzed by fuzz/fuzz_metadata.c).
 *   - fetch_https(): one blocking HTTPS request with the rules every fetch
 *     obeys: https only (redirects too, at most FETCH_MAX_REDIRECTS),
 *     certificate and host name verified against the system CA bundle plus
 *     an optional extra CA file, connect timeout 5 s, total 10 s, body at
 *     most FETCH_MAX_BODY bytes, no content decoding, Content-Type ignored.
 *     fetch_partner_keys() and extas.c build on it. Blocking: never call
 *     these on a worker loop thread.
 *   - the daemon's fetcher (oauth_fetch_*): one thread of its own that
 *     fetches every enabled partner with a metadata URL at start (start-up
 *     does not wait for it), every [oauth] metadata_refresh seconds, on
 *     demand (rtcauthctl partner refresh), and when a token names a key id
 *     the partner's keys lack (rate-limited). A good fetch stores the keys
 *     and reloads the OAuth snapshot on the main thread; a failed one
 *     records the error and keeps the last good keys.
 */
#ifndef RTC_OAUTH_FETCH_H
#define RTC_OAUTH_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

struct event_base;

#define FETCH_MAX_BODY	    (256 * 1024) /* bytes of one document */
#define FETCH_MAX_REDIRECTS 3
#define FETCH_CONNECT_MS    5000
#define FETCH_TOTAL_MS	    10000
#define FETCH_URL_MAX	    1024 /* NUL included */
#define FETCH_ID_MAX	    256	 /* issuer / realm, NUL included */
#define FETCH_MAX_KEYS	    64	 /* keys in one document */
#define FETCH_HINT_INTERVAL 300	 /* seconds between unknown-kid fetches of a partner */
#define FETCH_ERR_MAX	    256

/* ---- documents ---- */

enum fetch_doc_kind {
	FETCH_DOC_JWKS = 1,    /* RFC 7517 {"keys": [JWK...]} */
	FETCH_DOC_RFC8414 = 2, /* RFC 8414 authorization server metadata */
	FETCH_DOC_MS = 3,      /* Microsoft auth metadata: keys[].keyValue certificates */
};

struct fetch_doc {
	enum fetch_doc_kind kind;
	/* JWKS and MS: the usable keys as one JWKS text (our own JWK form:
	 * kty, use, alg, kid, key members, x5c/x5t when a certificate came),
	 * malloc'd, at least one key. NULL for RFC 8414. */
	char *jwks;
	size_t n_keys;
	char issuer[FETCH_ID_MAX];	    /* 8414: issuer URL; MS: the id of "id@realm" */
	char realm[FETCH_ID_MAX];	    /* MS: the realm of "id@realm"; else '' */
	char jwks_uri[FETCH_URL_MAX];	    /* 8414 */
	char token_endpoint[FETCH_URL_MAX]; /* 8414; MS: the OAuth2 issuance endpoint */
};

/*
 * Parse one document of at most FETCH_MAX_BODY bytes (JSON, duplicate
 * members refused, at most FETCH_MAX_KEYS keys). The kind is told by the
 * content, never by a Content-Type: an object with "jwks_uri" or
 * "token_endpoint" and no "keys" is RFC 8414; "keys" whose members carry
 * "keyValue" is Microsoft's; other "keys" is a JWKS. A JWKS or MS document
 * with no key this server can verify with is an error. 0, or -1 with a
 * message for a person in err; doc is cleared either way first.
 */
int fetch_doc_parse(const char *buf, size_t len, struct fetch_doc *doc, char *err, size_t errlen);
void fetch_doc_clear(struct fetch_doc *doc);

/* ---- one HTTPS request (blocking) ---- */

struct fetch_opts {
	const char *ca_file; /* extra trusted CAs (PEM), added to the system's; or NULL */
	const char
	    *post_form; /* NULL: GET; else POST this application/x-www-form-urlencoded body */
	bool allow_error_body;	 /* keep the body of a non-200 answer (token endpoints) */
	const _Atomic int *stop; /* when set non-zero, the transfer is abandoned; or NULL */
};

/*
 * GET (or POST) url under the rules above. *body (malloc'd, NUL-terminated,
 * *len bytes) and *status on a complete answer: 200, or another status
 * when allow_error_body (else that is an error). 0, or -1 with err.
 */
int fetch_https(const char *url, const struct fetch_opts *o, char **body, size_t *len, long *status,
		char *err, size_t errlen);

/* Is url an https URL we would fetch (scheme, host, no credentials)? */
bool fetch_url_ok(const char *url);

/*
 * The keys behind a partner's metadata URL: fetch it, parse it, follow an
 * RFC 8414 document's jwks_uri once (which must be a JWKS), and check the
 * result loads with jose (at least one key, text below the store's limit).
 * *jwks malloc'd. issuer/realm get what the document says about the
 * partner's identity ('' when nothing). 0, or -1 with err.
 */
int fetch_partner_keys(const char *url, const struct fetch_opts *o, char **jwks, char *issuer,
		       size_t issuer_cap, char *realm, size_t realm_cap, char *err, size_t errlen);

/* ---- the daemon's fetcher ---- */

/*
 * Start the fetcher thread (after the main loop's base exists; base must
 * have been made after evthread_use_pthreads()). reload rebuilds the OAuth
 * snapshot; it is called on the main thread (base's loop) after a fetch
 * changed keys. The first pass starts at once in the background.
 * 0, or -1 with err.
 */
int oauth_fetch_start(struct event_base *base, const struct config *cfg,
		      int (*reload)(char *err, size_t errlen), char *err, size_t errlen);
/* Stop the thread (an in-flight transfer is abandoned); pending requests
 * are answered "shutting down"; the external AS token cache (extas.h) is
 * dropped. Main thread. Safe when not started. */
void oauth_fetch_stop(void);

/*
 * Fetch partner name now. done(arg, rc, error) runs once on the main thread
 * when the fetch finished (rc 0: keys stored and loaded; -1: error says
 * why, the last good keys stay) or when the fetcher stops. 0 queued, -1 if
 * the fetcher is not running (done is not called).
 */
typedef void (*oauth_fetch_done_fn)(void *arg, int rc, const char *error);
int oauth_fetch_refresh(const char *name, oauth_fetch_done_fn done, void *arg);

/* The daemon's fetch options (the [oauth] fetch_ca_file, the stop flag) for
 * other blocking clients (extas.c); zeroes when the fetcher never started. */
void oauth_fetch_client_opts(struct fetch_opts *o);

/*
 * A token from partner_name named a key id its keys lack: fetch its
 * metadata again, at most once per FETCH_HINT_INTERVAL seconds per partner
 * (other hints are dropped). Never blocks: callable from worker threads.
 * Partners without a metadata URL are ignored by the fetcher.
 */
void oauth_fetch_hint_unknown_kid(const char *partner_name);

#endif
