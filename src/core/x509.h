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

/*
 * RFC 5929 §4.1 tls-server-end-point: the hash of the DER certificate with
 * the hash of its signature algorithm (SHA-256 when that is MD5 or SHA-1).
 * out (cap >= EVP_MAX_MD_SIZE); returns the length, or -1.
 */
int x509_tls_server_end_point(X509 *x, unsigned char *out, size_t cap);
/* The same for the first certificate of a PEM file. */
int x509_tls_server_end_point_file(const char *pem_path, unsigned char *out, size_t cap);
/*
 * The channel-binding hash NTLM carries in MsvAvChannelBindings ([MS-NLMP]
 * 2.2.2.1): MD5 of the gss_channel_bindings_struct (RFC 4121 §4.1.1.2
 * layout) with no addresses and application data
 * "tls-server-end-point:" || end-point hash. 0 or -1.
 */
int x509_ntlm_tls_cbt(const unsigned char *endpoint, size_t len, unsigned char out[16]);

#endif
