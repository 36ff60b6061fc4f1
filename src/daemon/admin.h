/*
 * The admin socket: a Unix stream socket (0600) in the state directory that
 * rtcauthctl uses for what only the running daemon knows (live bindings,
 * lockouts, counters). One JSON request line in, one JSON reply line out.
 * Protocol: docs/rtcauthctl.8 and src/ctl/ctl_daemon.c.
 */
#ifndef RTC_DAEMON_ADMIN_H
#define RTC_DAEMON_ADMIN_H

#include <event2/event.h>

#include "sip/server.h"

struct admin_ctx {
	const struct sip_runtime *(*runtime)(void);
	int64_t started; /* unix seconds */
};

/* Listen on path (an old socket file is replaced). 0 or -1 with err. */
int admin_start(struct event_base *base, const char *path, const struct admin_ctx *ctx, char *err,
		size_t errlen);
void admin_stop(void);
/*
 * What "oauth.reload" runs (rebuild the OAuth snapshot from the store; 0 or
 * -1 with err). Unset, the command answers that OAuth is not running.
 */
void admin_set_oauth_reload(int (*fn)(char *err, size_t errlen));
/* Answer one request line; returns a malloc'd reply line (with '\n'). */
char *admin_handle_line(const char *line, size_t len);

#endif
