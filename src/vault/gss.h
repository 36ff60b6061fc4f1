/*
 * The Kerberos acceptor ([MS-SIPAE] Kerberos, HTTP Negotiate): MIT krb5
 * GSSAPI with the keytab of `[kerberos] keytab`. Only this module opens the
 * keytab. The acceptor takes any service principal in it, so
 * `sip/<fqdn>@REALM` serves SIP and `HTTP/<fqdn>@REALM` the web services;
 * the caller says which service a token must be for.
 *
 * Tokens: a raw Kerberos mechanism token (RFC 4121 §4.1: [APPLICATION 0],
 * the krb5 OID, AP-REQ; what SIP clients send) or SPNEGO (RFC 4178) wrapping
 * Kerberos (what HTTP Negotiate sends). Kerberos is one round trip: an
 * AP-REQ in, the AP-REP (mutual authentication) out. SPNEGO is one leg too
 * when the optimistic token is Kerberos and Kerberos leads the initiator's
 * list: curl --negotiate sends [krb5] with no mechListMIC, Windows sends
 * [MS krb5, krb5, NTLM...]; both complete in one call (tested). A SPNEGO
 * exchange that needs a second leg (NTLM listed first) is refused. NTLM,
 * raw or inside SPNEGO, is not taken here (src/vault/vault_ntlm.c).
 *
 * Clock skew: the libdefaults `clockskew` of the krb5.conf the process uses
 * (KRB5_CONFIG; MIT's default is 300 s). Replay cache: MIT's default one
 * (KRB5RCACHEDIR, else /var/tmp), shared by all threads and processes of the
 * host: an AP-REQ is accepted once.
 *
 * Thread safety: vault_krb_init and vault_krb_shutdown once, at start-up
 * and exit (they take a write lock, so a shutdown waits for accepts under
 * way). vault_krb_accept may run on any number of threads at once: the
 * acceptor credential is shared read-only, each accept has its own context.
 * A context returned in *ctx belongs to one SA: its sign/verify calls must
 * not run concurrently (the SA's mutex serialises them, sa.h).
 *
 * Never logs: the caller logs the verdict's reason.
 */
#ifndef RTC_VAULT_GSS_H
#define RTC_VAULT_GSS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/sa.h"
#include "auth/verdict.h"

/* Largest accepted input token in bytes (Windows' default MaxTokenSize is
 * 48,000; a ticket with a large PAC comes close). Larger: "malformed". */
#define VAULT_KRB_MAX_TOKEN 48000
/* out_cap that always suffices for the AP-REP (it is ~100-200 bytes). */
#define VAULT_KRB_OUT_MAX 1024
/* principal capacity that always suffices. */
#define VAULT_KRB_PRINCIPAL_MAX 512

/*
 * Check the keytab and acquire acceptor credentials for every principal in
 * it. 0, or -1 with err saying which path and why: it does not exist, is
 * not a regular file, cannot be read, is not a keytab, or holds no key.
 * Calling it again replaces the credentials (reload). On failure an
 * acceptor that was ready keeps its previous credentials; one that was not
 * stays unavailable (Kerberos must not be offered; other schemes keep
 * working).
 */
int vault_krb_init(const char *keytab, char *err, size_t errlen);
/* True between a successful vault_krb_init and vault_krb_shutdown. */
bool vault_krb_ready(void);
/* Release the acceptor credentials. Contexts already handed out stay valid. */
void vault_krb_shutdown(void);

/*
 * Accept one client token (the decoded gssapi-data or Negotiate blob).
 * want_service: the first component the ticket's service principal must
 * have ("sip", "HTTP"; compared case-insensitively), NULL for any.
 * On OK:
 *   *mech, *ctx   the SA mechanism (sign = GSS GetMIC, verify = VerifyMIC,
 *                 free = delete the context); the caller owns ctx and frees
 *                 it with (*mech)->free(ctx)
 *   principal     the client, "alice@EXAMPLE.TEST" (NUL-terminated)
 *   *expires_wall wall-clock second the context (the ticket) expires, not
 *                 capped (sa_create takes min(8 h, it)); 0 if unlimited
 *   out_token     the token to send back (the AP-REP, or a SPNEGO answer
 *                 carrying it), *out_len bytes, 0 when there is none;
 *                 out_token may be NULL (out_cap 0) to drop it
 * On failure *mech and *ctx are NULL, *out_len is 0, principal is empty
 * except after "wrong_service" (the ticket was good: the client's name is
 * there for the log), and the reason is one of (PERMFAIL unless said):
 *   "malformed"     not a Kerberos or SPNEGO token, bad DER, too large, a
 *                   token of another mechanism, or a multi-leg SPNEGO
 *   "wrong_service" a valid ticket for another service than want_service
 *   "expired"       the ticket expired (beyond the clock skew)
 *   "clock_skew"    the authenticator's time is off by more than the skew,
 *                   or the ticket is not yet valid
 *   "bad_ticket"    cannot be decrypted: wrong key or kvno, a service not
 *                   in the keytab, a modified ticket
 *   "replay"        this AP-REQ was accepted before (replay cache)
 *   "unavailable"   TEMPFAIL: vault_krb_init not done or failed; the
 *                   keytab cannot be read any more (moved, permissions) or
 *                   the replay cache cannot be written; out of memory;
 *                   out_cap or pcap too small: never the client's fault
 * Every output pointer must be valid except out_token (see above).
 */
struct verdict vault_krb_accept(const uint8_t *token, size_t len, const char *want_service,
				const struct sa_mech **mech, void **ctx, char *principal,
				size_t pcap, uint64_t *expires_wall, uint8_t *out_token,
				size_t out_cap, size_t *out_len);

/*
 * The SA mechanism vault_krb_accept hands out (exposed for tests). sign and
 * verify take the ctx vault_krb_accept returned. verify fails only on GSS
 * routine errors (bad or malformed MIC); the supplementary bits (duplicate,
 * old, gap, unseq token) are not failures: the SA's cnum window handles
 * replay.
 */
extern const struct sa_mech vault_krb_mech;

/*
 * Map a Kerberos client principal to a SIP address of record:
 * "alice@EXAMPLE.TEST" with krb_realm "example.test" and sip_domain
 * "example.test" -> "sip:alice@example.test".
 * -1 when the principal's realm is not krb_realm (compared
 * case-insensitively), when it has an instance ("alice/admin@R"), escapes
 * or characters that cannot stand in a SIP user part, or when aor (cap
 * bytes) is too small. The user part keeps the principal's case (Kerberos
 * names are case-sensitive); a caller matching it against the directory
 * compares users case-insensitively. 0 on success.
 */
int vault_krb_principal_to_aor(const char *principal, const char *krb_realm, const char *sip_domain,
			       char *aor, size_t cap);

#endif
