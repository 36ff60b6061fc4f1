/*
 * First-run bootstrap of the state directory, so that `rtcauthd -c FILE`
 * works on a fresh machine with nothing but a domain in the config:
 *
 *   <state_dir>/            0700, created with its parents if missing
 *   <state_dir>/ca/ca.key   0600  local CA key (EC P-256)
 *   <state_dir>/ca/ca.crt   0644  local CA certificate, 10 years
 *   <state_dir>/tls/server.key 0600  server key (EC P-256)
 *   <state_dir>/tls/server.crt 0644  leaf for fqdn (+ domain, 127.0.0.1,
 *                                    ::1), 2 years, followed by the CA cert
 *   <state_dir>/pool.secret 0600  (vault_bootstrap_secret)
 *
 * The CA and server certificate are made only when [sip] tls_cert/tls_key
 * are the default paths; configured paths elsewhere must exist. Idempotent:
 * a second run changes nothing (an expired default server certificate is
 * reissued). The database is not created here (store_open with STORE_CREATE).
 * Files are written to a temporary name and renamed, so a crash leaves
 * either the old state or the new one.
 */
#ifndef RTC_DAEMON_BOOTSTRAP_H
#define RTC_DAEMON_BOOTSTRAP_H

#include <stddef.h>

struct config;

/* 0, or -1 with a message for a person in err (what, which path, what to do). */
int bootstrap_state(const struct config *cfg, char *err, size_t errlen);

/*
 * Load a PEM certificate (the first one in the file is the leaf) and a PEM
 * private key and check that they belong together, that the certificate is
 * within its validity period and that the key file is not world-readable.
 * Used at start and on SIGHUP before swapping TLS contexts. 0 or -1 with err.
 */
int bootstrap_check_cert(const char *cert, const char *key, char *err, size_t errlen);

#endif
