/*
 * PKI queries that run on every TLS connection with a client certificate
 * (src/store/sqlite_pki.c): kept apart from the certificate records of
 * store.h, whose rows carry the whole PEM.
 */
#ifndef RTC_STORE_STORE_PKI_H
#define RTC_STORE_STORE_PKI_H

#include <stdint.h>

#include "store/store.h"

/*
 * The revocation time of the certificate our CA issued with this serial
 * (upper-case hex, as store_cert_add stored it): STORE_OK with *revoked_at
 * (0: not revoked), STORE_NOTFOUND when there is no such record,
 * STORE_INVALID for a malformed serial, or STORE_UNAVAILABLE. Reads one
 * column through a statement prepared once per connection.
 */
int store_cert_revoked_at(struct store *s, const char *serial, int64_t *revoked_at);

#endif
