/*
 * The PKI of rtcauth (issue 5, PROTOCOLS.md §3): a built-in issuing CA (made
 * at first start) or an imported enterprise CA, the trusted roots client
 * certificates may chain to, issuance from a CSR under a policy,
 * revocation (our own serials in the store; CRL files and OCSP for other
 * CAs) and the mapping of a client certificate to a user.
 *
 * The issuing CA's private key is the vault's (src/vault): this module asks
 * it to sign. Certificates issued are recorded in the store (migration 5,
 * table certificates) with a unique serial.
 *
 * Thread safety: pki_init once at start (and on reload); the other calls
 * from any thread.
 */
#ifndef RTC_PKI_PKI_H
#define RTC_PKI_PKI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "core/config.h"
#include "store/store.h"

#define PKI_LIFETIME_DEFAULT (180 * 86400)
#define PKI_LIFETIME_MIN     (8 * 3600)
#define PKI_LIFETIME_MAX     (365 * 86400)
#define PKI_CSR_MAX	     16384	/* bytes of PEM */
#define PKI_SERIAL_MAX	     64		/* hex digits + NUL */
#define PKI_PATH_CRL	     "/pki/crl" /* GET: the CA's DER CRL (application/pkix-crl) */

/*
 * Load (or, on the first start, make) the issuing CA and the trusted roots
 * from cfg; the CA key goes to the vault. 0, or -1 with err for a person
 * ("cannot read the CA certificate /etc/...: ...").
 */
int pki_init(const struct config *cfg, char *err, size_t errlen);
void pki_shutdown(void);

/*
 * Re-read what [pki] says, on a reload (SIGHUP), while every other call may
 * run: trusted roots, CRL files, OCSP on/off, the identity mapping order,
 * the certificate lifetime and the CRL distribution point. The issuing CA
 * is kept unless its configured files changed (other paths, or the files'
 * size or time): an imported CA may be swapped for another (its key goes
 * to the vault); the built-in CA always stays. All or nothing: everything
 * is read first; any bad file or setting keeps the whole old state and
 * gives -1 with err naming the setting and the file. The OCSP cache is
 * flushed (answers were checked against the old trust). [pin] needs
 * nothing here (min_length is read where PINs are set; the lockout limits
 * are fixed by PROTOCOLS.md §3). pki_init must have succeeded before.
 */
int pki_reload(const struct config *cfg, char *err, size_t errlen);

/* The issuing CA certificate (owned by the module; valid until
 * pki_shutdown, or a pki_reload that swaps the CA), and the chain PEM we
 * hand out with issued certificates. */
X509 *pki_ca_cert(void);

enum pki_issue_result {
	PKI_OK = 0,
	PKI_E_CSR = -1,	     /* not a PEM PKCS#10 CSR, or its signature is bad */
	PKI_E_WEAK_KEY = -2, /* not RSA >= 2048 nor EC P-256 */
	PKI_E_LIFETIME = -3, /* outside PKI_LIFETIME_MIN..MAX */
	PKI_E_STORE = -4,    /* the store could not record it (temporary) */
	PKI_E_INTERNAL = -5,
};
const char *pki_issue_strerror(int rc);

/*
 * Issue a certificate for user u from the CSR (PEM): the public key is the
 * CSR's, everything else is ours (subject CN and SAN URI sip: from the
 * user, never from the CSR; a CSR naming someone else is not an error: its
 * names are ignored and the fact logged by the caller). lifetime_s 0 = the
 * default. On PKI_OK *chain_pem (malloc'd, free it) is the leaf then the
 * CA, *serial the hex serial, *not_after the expiry (unix seconds).
 */
int pki_issue(struct store *s, const struct store_user *u, const char *csr_pem, size_t csr_len,
	      int lifetime_s, char **chain_pem, char serial[PKI_SERIAL_MAX], int64_t *not_after);

/* Does the CSR ask for a name other than uri (a subject CN or a SAN URI or
 * email naming someone else)? pki_issue ignores such names; callers log
 * the fact (pki.csr_names_other). A CSR that cannot be parsed: false. */
bool pki_csr_names_other(const char *csr_pem, size_t csr_len, const char *uri);

/* Revoke by serial (hex, any case) or every certificate of a user URI.
 * Count revoked (0: none found), or a negative store error. */
int pki_revoke_serial(struct store *s, const char *serial, const char *reason);
int pki_revoke_user(struct store *s, const char *uri, const char *reason);

/* The current CRL of the issuing CA, DER (malloc'd). 0 or -1. */
int pki_crl_der(struct store *s, unsigned char **der, size_t *len);

enum pki_verify_result {
	PKI_VERIFY_OK = 0,
	PKI_VERIFY_UNTRUSTED = -1, /* no chain to a trusted root */
	PKI_VERIFY_EXPIRED = -2,   /* outside its validity period */
	PKI_VERIFY_REVOKED = -3,
	PKI_VERIFY_NO_USER = -4,     /* names no user of ours */
	PKI_VERIFY_UNAVAILABLE = -5, /* revocation status unknown (store, OCSP down) */
	/* the OCSP status is being asked for on the pool (core/workq), never on
	 * the caller's thread: ask again shortly (the answer lands in the OCSP
	 * cache; a responder that does not answer gives UNAVAILABLE within its
	 * 3 s budget). Only pki_verify_client answers this, and only while the
	 * pool runs (the daemon); without a pool the query is made inline. */
	PKI_VERIFY_PENDING = -6,
};
const char *pki_verify_strerror(int rc);

/*
 * A client certificate (TLS on SIP and HTTPS, TLS-DSK): chain to a trusted
 * root (chain: the untrusted intermediates the peer sent, may be NULL),
 * validity, revocation, then the user it names (SAN URI sip:, then SAN UPN
 * or email, then subject CN, as configured), an enabled user in the store.
 * On PKI_VERIFY_OK user_uri gets "sip:user@domain".
 */
int pki_verify_client(struct store *s, X509 *leaf, STACK_OF(X509) * chain, int64_t now,
		      char *user_uri, size_t cap);

/*
 * The same checks without naming a user: chain to a trusted root, validity,
 * revocation. For certificates of servers rather than users (an OAuth
 * partner's RFC 8705 §2.1 client certificate). PKI_VERIFY_OK or an error
 * above (never PKI_VERIFY_NO_USER, never PKI_VERIFY_PENDING: an OCSP query
 * under way on the pool is PKI_VERIFY_UNAVAILABLE, "retry later").
 */
int pki_verify_cert(struct store *s, X509 *leaf, STACK_OF(X509) * chain, int64_t now);

/* A serial as typed (hex, any case, colons allowed) in the form the store
 * keeps: upper-case hex without leading zeros. 0 or -1. */
int pki_serial_normalise(const char *in, char out[PKI_SERIAL_MAX]);
/* The serial of x in that form (for pki_serial_revoked on a live
 * connection). 0 or -1. */
int pki_cert_serial(const X509 *x, char out[PKI_SERIAL_MAX]);
/* A revocation reason pki_revoke_* takes: an RFC 5280 §5.3.1 CRLReason
 * name (keyCompromise, superseded, ...; any case), or NULL/'' (unspecified). */
bool pki_reason_valid(const char *reason);

/* Register GET /pki/crl (src/http) before any HTTPS server runs; the
 * handler reads the revoked serials with the worker's store. 0 or -1. */
int pki_routes_add(void);

/* Is this serial of our CA revoked (for live connections: closed within a
 * minute of the revocation)? 1 yes, 0 no, -1 unknown. */
int pki_serial_revoked(struct store *s, const char *serial);

#endif
