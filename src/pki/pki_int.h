/*
 * Internals shared by the files of src/pki (pki.c: CA, issuance,
 * revocation, CRL; pki_verify.c: client certificates, CRL files, mapping;
 * pki_ocsp.c: OCSP with a cache; pki_http.c: GET /pki/crl). Not for other
 * modules: they use pki.h.
 */
#ifndef RTC_PKI_PKI_INT_H
#define RTC_PKI_PKI_INT_H

#include <pthread.h>
#include <stdbool.h>

#include <openssl/x509.h>

#include "core/config.h"
#include "pki/pki.h"

#define PKI_CDP_MAX 512

/* The state pki_init sets; read under pki_lock (read side) by every call. */
struct pki_state {
	X509 *ca;		/* the issuing CA */
	STACK_OF(X509) * extra; /* its issuers from [pki] ca_cert, may be NULL */
	char *chain_pem;	/* the CA then extra, PEM */
	bool builtin;		/* the built-in CA: a serial missing from the store is revoked */
	X509_STORE *trust;	/* [pki] trusted_root + the CA */
	int lifetime;		/* [pki] cert_lifetime */
	enum config_pki_map map[CONFIG_PKI_MAP_COUNT];
	size_t n_map;
	bool ocsp;
	char cdp[PKI_CDP_MAX]; /* https://<fqdn>[:port]/pki/crl */
};

extern struct pki_state pki_g;
extern pthread_rwlock_t pki_lock;

/* Hex serial (upper case, no leading zeros) of an ASN1_INTEGER. 0 or -1. */
int pki_serial_of(const ASN1_INTEGER *ai, char out[PKI_SERIAL_MAX]);

/* ---- CRL files of external CAs (pki_verify.c) ---- */
int pki_crlfiles_load(const struct config *cfg, char *err, size_t errlen);
void pki_crlfiles_free(void);
/* A reload in two steps: prepare reads every CRL file of cfg (NULL with
 * err naming the file that cannot be read: nothing changed); commit
 * replaces the set (and frees set), discard drops it. */
struct pki_crlset;
struct pki_crlset *pki_crlfiles_prepare(const struct config *cfg, char *err, size_t errlen);
void pki_crlfiles_commit(struct pki_crlset *set);
void pki_crlfiles_discard(struct pki_crlset *set);
/* Is cert (issued by issuer) listed in a CRL file of that issuer? 1 revoked,
 * 0 not listed or no CRL of that issuer, -1 that issuer's CRL is out of
 * date (status unknown). *found set when a CRL of issuer was consulted. */
int pki_crlfiles_check(X509 *cert, X509 *issuer, int64_t now, bool *found);

/* ---- OCSP (pki_ocsp.c) ---- */
/*
 * Ask cert's AIA OCSP responder (http only; cached until the answer's
 * nextUpdate, at most an hour). PKI_VERIFY_OK (good), PKI_VERIFY_REVOKED,
 * PKI_VERIFY_UNAVAILABLE (responder down, bad or unknown answer), or 1
 * when cert names no OCSP responder. While the pool (core/workq) runs the
 * query is made there, never on the caller's thread: an answer not cached
 * yet gives PKI_VERIFY_PENDING (one query per certificate at a time; a
 * failure is remembered for a few seconds so that waiters see it). Called
 * with pki_lock held for reading.
 */
int pki_ocsp_check(X509 *cert, X509 *issuer, int64_t now);
void pki_ocsp_flush(void);

#endif
