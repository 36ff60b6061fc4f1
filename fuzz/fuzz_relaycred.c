/*
 * libFuzzer target for the media relay credentials request of SIP SERVICE
 * (relaycred_sip_response, turn/relaycred.h): the body is copied into an
 * exact-size buffer so any read past its end is caught. Its promises: 0,
 * -1 (malformed) or -2 (no credentials: no TURN secret is loaded here);
 * the answer buffer is never overrun, and an input it refuses writes
 * nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/sbuf.h"
#include "turn/relaycred.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config cfg;
	static int init;
	char out[4096];
	struct sbuf b;
	char *body = malloc(size ? size : 1);
	int rc;

	if (!body)
		return 0;
	if (!init) {
		config_defaults(&cfg);
		strcpy(cfg.domain, "example.test");
		cfg.turn_listen[0] = (struct listen_addr){TRANSPORT_UDP, "127.0.0.1", 3478};
		cfg.n_turn_listen = 1;
		init = 1;
	}
	memcpy(body, data, size);
	sbuf_init(&b, out, sizeof(out));
	rc = relaycred_sip_response(&cfg, "sip:alice@example.test", str_make(body, size), 1000, &b);
	if (rc != 0 && rc != -1 && rc != -2)
		abort();
	if (rc != 0 && b.len != 0)
		abort();
	free(body);
	return 0;
}
