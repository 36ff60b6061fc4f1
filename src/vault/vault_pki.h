/*
 * The issuing CA's private key (issue 5, src/pki): loaded, or made at the
 * first start, and used to sign certificates and CRLs. Nothing else in the
 * program sees it; src/pki hands over a certificate or a CRL with every
 * field set and gets it back signed.
 *
 * The built-in CA (no [pki] ca_cert / ca_key):
 *
 *   <state_dir>/pki/         0700
 *   <state_dir>/pki/ca.key   0600  EC P-256, PEM (PKCS#8)
 *   <state_dir>/pki/ca.crt   0644  self-signed, "rtcauth issuing CA <domain>",
 *                                  10 years, CA:TRUE pathlen:0 (critical),
 *                                  keyCertSign and cRLSign (critical), SKI/AKI
 *
 * It is self-signed (a root of its own) rather than signed by the bootstrap
 * CA in <state_dir>/ca: that key belongs to the bootstrap of the TLS server
 * certificate, and a client certificate trusted must not follow from
 * trusting the server's certificate chain (or the reverse).
 * Both files are made under an exclusive lock (<state_dir>/pki/.lock), so
 * rtcauthd and rtcauthctl starting together make one CA, not two.
 *
 * An enterprise CA ([pki] ca_cert + ca_key): the certificate file's first
 * certificate is the CA (CA:TRUE; keyCertSign when keyUsage is present),
 * further ones its issuers (handed out in chains); the key must match it,
 * be unencrypted and readable by its owner only.
 *
 * Thread safety: vault_pki_init / vault_pki_shutdown once (start, exit);
 * the signing calls from any thread.
 */
#ifndef RTC_VAULT_VAULT_PKI_H
#define RTC_VAULT_VAULT_PKI_H

#include <stddef.h>

#include <openssl/x509.h>

#define VAULT_PKI_CA_DAYS 3650

/*
 * Load the CA (or make the built-in one): ca_cert and ca_key both NULL/''
 * for the built-in CA under state_dir, named after domain. On success
 * *ca (a new reference: X509_free it) is the CA certificate and *extra
 * (may be NULL; a new stack, sk_X509_pop_free it) the further certificates
 * of ca_cert. 0, or -1 with a message for a person in err.
 */
int vault_pki_init(const char *state_dir, const char *domain, const char *ca_cert,
		   const char *ca_key, X509 **ca, STACK_OF(X509) * *extra, char *err,
		   size_t errlen);
/* Forget (and wipe) the key. */
void vault_pki_shutdown(void);

/* Sign a certificate whose issuer name is the CA's (SHA-256). 0 or -1. */
int vault_pki_sign_cert(X509 *x);
/* Sign a CRL (SHA-256). 0 or -1. */
int vault_pki_sign_crl(X509_CRL *crl);

#endif
