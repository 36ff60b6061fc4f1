/*
 * A user's own consent for application-trust partners (issue 3;
 * PROTOCOLS.md §6: such a partner acts for a user only with that user's
 * consent):
 *
 *   POST   /oauth/consent            client_id=NAME (form body): consent
 *   DELETE /oauth/consent?client_id=NAME                   : withdraw it
 *   GET    /oauth/consent                                  : list them
 *
 * client_id is the partner's name or its issuer id. The user authenticates
 * with any scheme the HTTPS listener offers users: a web ticket (Bearer,
 * GET /webticket), Negotiate, NTLM or Digest (http/httpauth.h); the consent
 * is always the authenticated user's own. Answers: 200 {"client_id",
 * "user", "consent": true|false} (the list: {"user", "consents": [{"client_id",
 * "granted_at", "granted_by"}]}), 400 invalid_request, 401 with challenges,
 * 404 unknown partner (or, for DELETE, no consent to withdraw), 503 when the
 * store cannot answer. Each change writes an audit row (actor the user).
 *
 * Operators do the same with rtcauthctl partner consent. Must never log a
 * credential or a token.
 */
#ifndef RTC_OAUTH_CONSENT_H
#define RTC_OAUTH_CONSENT_H

#define CONSENT_PATH "/oauth/consent"

/* Register the three methods of CONSENT_PATH. Before the HTTPS servers run.
 * 0 or -1. */
int consent_routes(void);

#endif
