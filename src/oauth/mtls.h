/*
 * RFC 8705 §2.1 tls_client_auth (the PKI method): the names a partner
 * registers for its client certificate, and the match of a certificate
 * against them. Either a subject distinguished name (tls_client_auth_subject_dn,
 * an RFC 4514 string) or one subject alternative name
 * (tls_client_auth_san_dns / _uri / _email / _ip, written here
 * "dns:NAME", "uri:URI", "email:ADDR", "ip:ADDR").
 *
 * The chain of trust is not decided here (pki_verify_cert in src/pki does
 * it): a certificate matching the names is the partner's only once it
 * chains to a trusted root, is in its validity period and is not revoked.
 *
 * Parsers are bounded (MTLS_DN_MAX bytes, MTLS_DN_MAX_AVAS attributes,
 * MTLS_VALUE_MAX bytes per value) and never allocate beyond that.
 */
#ifndef RTC_OAUTH_MTLS_H
#define RTC_OAUTH_MTLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/x509.h>

#define MTLS_DN_MAX	 512 /* bytes of a DN string, NUL included (STORE_TLS_SUBJECT_MAX) */
#define MTLS_SAN_MAX	 320 /* bytes of a "type:value" SAN, NUL included (STORE_TLS_SAN_MAX) */
#define MTLS_DN_MAX_AVAS 32
#define MTLS_VALUE_MAX	 256

/*
 * Parse an RFC 4514 string ("CN=mail,O=Example Corp,C=DE"; the first RDN
 * written is the last of the name; '+' joins attributes of one RDN;
 * attribute types by short or long name or dotted OID; backslash escapes
 * of a special character or of two hex digits; spaces around ',', '+' and
 * '=' ignored; "#hex" values are not supported) into a new X509_NAME.
 * 0, or -1 with why in err (for a person).
 */
int mtls_dn_parse(const char *in, X509_NAME **out, char *err, size_t errlen);

/* The canonical text of an RFC 4514 string (parsed, then printed back as
 * RFC 4514, UTF-8 unescaped): what the store keeps. 0, or -1 with err. */
int mtls_dn_normalise(const char *in, char out[MTLS_DN_MAX], char *err, size_t errlen);

/* Check and normalise "dns:NAME" (lower case), "uri:URI", "email:ADDR"
 * (domain lower case), "ip:ADDR" (IPv4 or IPv6, printed back canonically);
 * the type case-insensitive. 0, or -1 with err. */
int mtls_san_normalise(const char *in, char out[MTLS_SAN_MAX], char *err, size_t errlen);

/*
 * Does cert carry the registered names? subject (an RFC 4514 string, or
 * NULL/''): the certificate's subject equals it under X.520 matching
 * (X509_NAME_cmp: case and inner spaces of string values do not matter);
 * san (or NULL/''): one of the certificate's subjectAltName entries of
 * that type equals it (DNS and email case-insensitive, URI exact, IP by
 * address). Both given: both must match; neither: false.
 */
bool mtls_cert_matches(X509 *cert, const char *subject, const char *san);

#endif
