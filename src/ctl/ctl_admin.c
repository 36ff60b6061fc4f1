/*
 * rtcauthctl's client for rtcauthd's admin socket: a Unix stream socket;
 * one JSON request line out, one JSON reply line back, then close; 5 s for
 * the whole exchange. The reply is bounded (CTL_ADMIN_REPLY_MAX) and parsed
 * with jansson. The socket carries no secrets in either direction.
 */
#include "ctl/ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/clock.h"

#define CTL_ADMIN_REPLY_MAX (64u << 20)

/* Wait for fd to become ready for events before the deadline. 0, or -1 (timeout/error). */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	for (;;) {
		uint64_t now = clock_mono_ms();
		struct pollfd p = {fd, events, 0};
		int r;

		if (now >= deadline)
			return -1;
		r = poll(&p, 1, (int)(deadline - now));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		return 0;
	}
}

static int connect_socket(const char *path, uint64_t deadline, char *reason, size_t rlen)
{
	struct sockaddr_un sa;
	int fd, err = 0;
	socklen_t elen = sizeof(err);

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(reason, rlen, "socket path too long (at most %zu bytes)",
			 sizeof(sa.sun_path) - 1);
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(reason, rlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	if (errno != EINPROGRESS && errno != EAGAIN) {
		snprintf(reason, rlen, "%s", strerror(errno));
		close(fd);
		return -1;
	}
	/* A full backlog: wait for the daemon to accept. */
	if (wait_fd(fd, POLLOUT, deadline) < 0) {
		snprintf(reason, rlen, "no answer within %d s", CTL_ADMIN_TIMEOUT_MS / 1000);
		close(fd);
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0 || err != 0) {
		snprintf(reason, rlen, "%s", strerror(err ? err : errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int send_all(int fd, const char *p, size_t len, uint64_t deadline)
{
	while (len > 0) {
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			if (wait_fd(fd, POLLOUT, deadline) < 0)
				return -1;
			continue;
		}
		if (w <= 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Read one line (without the LF) into a malloc'd buffer. */
static char *recv_line(int fd, uint64_t deadline, size_t *out_len, char *reason, size_t rlen)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);

	if (!buf) {
		snprintf(reason, rlen, "out of memory");
		return NULL;
	}
	for (;;) {
		char *nl;
		ssize_t r;

		if (len == cap) {
			char *n;

			if (cap >= CTL_ADMIN_REPLY_MAX) {
				snprintf(reason, rlen, "reply larger than %u MiB",
					 CTL_ADMIN_REPLY_MAX >> 20);
				goto fail;
			}
			n = realloc(buf, cap * 2);
			if (!n) {
				snprintf(reason, rlen, "out of memory");
				goto fail;
			}
			buf = n;
			cap *= 2;
		}
		r = recv(fd, buf + len, cap - len, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN) {
			if (wait_fd(fd, POLLIN, deadline) < 0) {
				snprintf(reason, rlen, "no reply within %d s",
					 CTL_ADMIN_TIMEOUT_MS / 1000);
				goto fail;
			}
			continue;
		}
		if (r < 0) {
			snprintf(reason, rlen, "%s", strerror(errno));
			goto fail;
		}
		if (r == 0) {
			snprintf(reason, rlen, "the daemon closed the connection without a reply");
			goto fail;
		}
		nl = memchr(buf + len, '\n', (size_t)r);
		len += (size_t)r;
		if (nl) {
			*out_len = (size_t)(nl - buf);
			return buf;
		}
	}
fail:
	free(buf);
	return NULL;
}

int ctl_admin_call(const char *socket_path, json_t *request, json_t **reply, char *reason,
		   size_t reason_len)
{
	uint64_t deadline = clock_mono_ms() + CTL_ADMIN_TIMEOUT_MS;
	char *req = NULL, *line = NULL;
	size_t line_len = 0;
	json_error_t jerr;
	int fd, rc = CTL_EXIT_DAEMON;

	*reply = NULL;
	reason[0] = '\0';
	req = json_dumps(request, JSON_COMPACT);
	if (!req) {
		snprintf(reason, reason_len, "cannot encode the request");
		return CTL_EXIT_ERR;
	}
	fd = connect_socket(socket_path, deadline, reason, reason_len);
	if (fd < 0)
		goto out;
	if (send_all(fd, req, strlen(req), deadline) < 0 || send_all(fd, "\n", 1, deadline) < 0) {
		snprintf(reason, reason_len, "cannot send the request: %s", strerror(errno));
		goto out;
	}
	line = recv_line(fd, deadline, &line_len, reason, reason_len);
	if (!line)
		goto out;
	*reply = json_loadb(line, line_len, 0, &jerr);
	if (!*reply || !json_is_object(*reply)) {
		json_decref(*reply);
		*reply = NULL;
		snprintf(reason, reason_len,
			 "the daemon sent a reply that is not a JSON object (%s)", jerr.text);
		rc = CTL_EXIT_ERR;
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(req);
	free(line);
	return rc;
}

int ctl_admin_check(json_t *reply)
{
	json_t *ok = json_object_get(reply, "ok");
	const char *error, *code;

	if (json_is_true(ok))
		return 0;
	error = json_string_value(json_object_get(reply, "error"));
	code = json_string_value(json_object_get(reply, "code"));
	ctl_err("rtcauthd refused the request: %s", error ? error : "(no reason given)");
	if (code && strcmp(code, "not_found") == 0)
		return CTL_EXIT_NOTFOUND;
	if (code && strcmp(code, "bad_request") == 0)
		return CTL_EXIT_USAGE;
	return CTL_EXIT_ERR;
}

int ctl_admin_unreachable(struct ctl *c, const char *reason)
{
	ctl_err("cannot reach rtcauthd at %s: %s; is it running?", c->cfg.admin_socket, reason);
	return CTL_EXIT_DAEMON;
}

void ctl_admin_flush_cache(struct ctl *c)
{
	json_t *req = json_pack("{s:s}", "cmd", "cache.flush"), *rep = NULL;
	char reason[256];

	if (req && ctl_admin_call(c->cfg.admin_socket, req, &rep, reason, sizeof(reason)) == 0)
		json_decref(rep);
	json_decref(req);
}

void ctl_admin_oauth_reload(struct ctl *c)
{
	json_t *req = json_pack("{s:s}", "cmd", "oauth.reload"), *rep = NULL;
	char reason[256];

	if (!req || ctl_admin_call(c->cfg.admin_socket, req, &rep, reason, sizeof(reason)) != 0) {
		json_decref(req);
		return;
	}
	if (!json_is_true(json_object_get(rep, "ok"))) {
		const char *e = json_string_value(json_object_get(rep, "error"));
		ctl_note("the change is stored, but the running rtcauthd could not load it: %s; it "
			 "keeps the keys it had until this is fixed (see its log)",
			 e ? e : "no reason given");
	}
	json_decref(rep);
	json_decref(req);
}
