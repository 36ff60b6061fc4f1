/*
 * Certificate provisioning (issue 5 item 3, PROTOCOLS.md §3): a phone, or a
 * client signed in elsewhere, sends a PKCS#10 request and gets a certificate
 * for its user from the PKI (pki.h pki_issue).
 *
 *   POST /certprov  (JSON)
 *     {"user": "+14255550100" | "+14255550100;ext=1234" | "1234" | "sip:u@d",
 *      "extension": "1234" (optional), "pin": "480913", "csr": "<PEM>"}
 *     or Authorization: Bearer <web ticket> (GET /webticket) instead of
 *     user + pin.
 *     200 {"certificate": "<PEM leaf then CA>", "expires": <unix seconds>,
 *          "serial": "<hex>", "user": "sip:u@d"}
 *     400 invalid_request / invalid_csr / weak_key; 401 invalid_pin (wrong
 *     PIN, unknown number: the same answer); 403 pin_locked with Retry-After
 *     (temporary) or without (an administrator must unlock); 409
 *     ambiguous_user (give the extension); 429 access_denied with Retry-After
 *     (too many failed PINs from this address: [auth] lockout_source_*);
 *     503 temporarily_unavailable (Retry-After: 1 when the pool for slow
 *     work is full or another attempt for the user is under way).
 *
 *   POST /CertProv/CertProvisioningService.svc  (SOAP 1.2, Lync-style
 *     devices): GetAndPublishCert with a WS-Trust RequestSecurityToken whose
 *     BinarySecurityToken (ValueType ...#PKCS10) holds the base64 DER
 *     request; authenticated by a web ticket (Authorization: Bearer). The
 *     answer is a RequestSecurityTokenResponse with the leaf (base64 DER,
 *     #X509v3) in RequestedSecurityToken and the chain as PKCS#7.
 *
 * The certificate names the authenticated user, never what the request
 * says: a request naming someone else is logged and its names ignored.
 * XML is read by a bounded scan for the few elements needed (no DTDs, no
 * entities, no external library): see certprov.c.
 *
 * Must never log a PIN, a web ticket or a request body.
 */
#ifndef RTC_PKI_CERTPROV_H
#define RTC_PKI_CERTPROV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pki/pki.h"
#include "store/store.h"

#define CERTPROV_PATH	   "/certprov"
#define CERTPROV_SOAP_PATH "/CertProv/CertProvisioningService.svc"
#define CERTPROV_REQID_MAX 128

/* pki_issue's signature: the issuer is handed in (tests use a fake one). */
typedef int (*certprov_issue_fn)(struct store *s, const struct store_user *u, const char *csr_pem,
				 size_t csr_len, int lifetime_s, char **chain_pem,
				 char serial[PKI_SERIAL_MAX], int64_t *not_after);

struct certprov_env {
	certprov_issue_fn issue;
	int lifetime; /* seconds; 0 = the PKI's default */
	int64_t now;  /* unix seconds */
};

/* The outcome of one request, before it becomes an HTTP answer. */
struct certprov_result {
	int status;	       /* HTTP status */
	const char *error;     /* RFC 6749-style code; NULL on 200 */
	char description[320]; /* for the client: what was wrong and what to do */
	int64_t retry_after;   /* > 0: a Retry-After header */
	bool www_authenticate; /* 401: WWW-Authenticate: Bearer */
	char *chain_pem;       /* 200: leaf then CA (malloc'd; certprov_result_free) */
	int64_t not_after;     /* 200 */
	char serial[PKI_SERIAL_MAX];
	char user[STORE_URI_MAX]; /* the authenticated user, when known */
	const char *via;	  /* "pin" | "webticket" */
	const char *reason;	  /* for the log: "ok", "wrong_pin", "locked", ... */
	bool csr_named_other;	  /* the request's subject named someone else */
};
void certprov_result_free(struct certprov_result *r);

/*
 * The JSON form: body (len bytes) from the client; ticket_user is the user
 * of a web ticket the handler has validated (NULL: authenticate with
 * "user" + "pin"). Fills r (always).
 */
void certprov_json(struct store *s, const struct certprov_env *env, const char *body, size_t len,
		   const char *ticket_user, struct certprov_result *r);

/*
 * The JSON form with a PIN, in steps, so that the PIN's scrypt work runs on
 * a pool thread (core/workq) and not on the event loop:
 *   p = certprov_json_begin(s, env, body, len, r): on the store's thread;
 *       NULL: r is the answer. Else the PIN's work is pending:
 *   certprov_pending_work(p): any thread, no store, no I/O;
 *   certprov_json_end(s, p, r): on a thread with a store: the PIN verdict
 *       (counted as in pin.h), then the certificate; fills r, frees p.
 *   certprov_pending_cancel(p): instead of end (nothing counted, no answer).
 * certprov_json without a ticket is these three in a row.
 */
struct certprov_pending;
struct certprov_pending *certprov_json_begin(struct store *s, const struct certprov_env *env,
					     const char *body, size_t len,
					     struct certprov_result *r);
void certprov_pending_work(struct certprov_pending *p);
void certprov_json_end(struct store *s, struct certprov_pending *p, struct certprov_result *r);
void certprov_pending_cancel(struct certprov_pending *p);

/*
 * The SOAP form's request: the PKCS#10 from the BinarySecurityToken (DER,
 * converted to PEM: *csr_pem malloc'd), the Entity attribute (may be '')
 * and the RequestID (echoed; may be ''). 0, or -1 with *why for a person.
 */
int certprov_soap_parse(const char *body, size_t len, char **csr_pem, size_t *csr_len,
			char entity[STORE_URI_MAX], char request_id[CERTPROV_REQID_MAX],
			const char **why);
/* The SOAP form with the web ticket's user. Fills r (always). */
void certprov_soap(struct store *s, const struct certprov_env *env, const char *body, size_t len,
		   const char *ticket_user, struct certprov_result *r,
		   char request_id[CERTPROV_REQID_MAX]);
/* The SOAP 1.2 answer for r (a response on 200, a Fault otherwise),
 * malloc'd, NUL-terminated; NULL when out of memory. */
char *certprov_soap_answer(const struct certprov_result *r, const char *request_id, size_t *len);

/* Register both endpoints with issue (pki_issue in the daemon). Before any
 * HTTPS server runs. 0 or -1. */
int certprov_routes_add(certprov_issue_fn issue);

#endif
