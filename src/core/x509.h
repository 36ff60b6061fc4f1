/*
 * Small OpenSSL certificate helpers shared by the bootstrap (local CA and
 * server certificate) and the vault (token-signing certificates).
 */
#ifndef RTC_CORE_X509_H
#define RTC_CORE_X509_H

#include <openssl/x509.h>

/* A random positive serial of 127 bits: unique without a counter (RFC 5280
 * §4.1.2.2). 0 or -1. */
int x509_random_serial(X509 *x);
/* Add extension nid with an OpenSSL config value ("critical,CA:FALSE",
 * "hash", "keyid:always"...), issuer being the signing certificate (x
 * itself when self-signed). 0 or -1. */
int x509_add_ext(X509 *x, X509 *issuer, int nid, const char *value);

#endif
