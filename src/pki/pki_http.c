/*
 * GET /pki/crl on the HTTPS listener: the issuing CA's CRL, DER
 * (application/pkix-crl, RFC 5280 §4.2.1.13 and RFC 2585 §4.2), built from
 * the revoked serials in the store (pki_crl_der caches it while the set is
 * unchanged). A store outage is a 503, never an empty CRL.
 */
#include <stdlib.h>

#include "http/http.h"
#include "pki/pki.h"
#include "sip/server.h"

static void crl_get(const struct http_request *req, struct http_response *resp, void *arg)
{
	const struct sip_worker *w = req->worker;
	unsigned char *der = NULL;
	size_t len = 0;

	(void)arg;
	if (!w || !w->store || pki_crl_der(w->store, &der, &len) < 0) {
		http_response_error(resp, 503, "temporarily_unavailable",
				    "the CRL cannot be built now; try again later");
		return;
	}
	http_response_set(resp, 200, "application/pkix-crl", der, len);
	http_response_header(resp, "Cache-Control", "max-age=300");
	free(der);
}

int pki_routes_add(void)
{
	return http_route_add(HTTP_GET, PKI_PATH_CRL, false, crl_get, NULL);
}
