/*
 * key=value logging to stderr or syslog. Lines are formatted into a stack
 * buffer and written with one write(2) so concurrent workers never interleave.
 * Must never allocate on the hot path nor log anything the caller did not
 * escape with log_val().
 */
#include "core/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static _Atomic int g_level = LOG_INFO;
static enum log_dest g_dest = LOG_TO_STDERR;

/* The context is kept raw and escaped only when a line is written: at the
 * usual levels most messages log nothing, and escaping every Call-ID up
 * front showed in profiles. The caller keeps the bytes alive until
 * log_ctx_clear (they are the message being handled). */
static _Thread_local const char *ctx_key;
static _Thread_local struct str ctx_raw;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_setup(enum log_level level, enum log_dest dest, const char *ident)
{
	g_level = level;
	if (dest == LOG_TO_SYSLOG && g_dest != LOG_TO_SYSLOG)
		openlog(ident ? ident : "rtcauthd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	g_dest = dest;
}

void log_set_level(enum log_level level)
{
	g_level = level;
}

bool log_enabled(enum log_level level)
{
	return (int)level <= g_level;
}

int log_level_parse(const char *s, enum log_level *out)
{
	for (int i = 0; i < 4; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcmp(s, "warning") == 0) {
		*out = LOG_WARN;
		return 0;
	}
	return -1;
}

void log_ctx_set(const char *key, struct str value)
{
	ctx_key = key;
	ctx_raw = value;
}

void log_ctx_clear(void)
{
	ctx_key = NULL;
}

const char *log_val(struct str v, char *buf, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	bool quote = v.len == 0;

	for (size_t i = 0; i < v.len && !quote; i++) {
		unsigned char c = (unsigned char)v.p[i];
		if (c <= ' ' || c >= 0x7f || c == '"' || c == '\\' || c == '=')
			quote = true;
	}
	if (cap < 8)
		return "";
	if (quote)
		buf[o++] = '"';
	for (size_t i = 0; i < v.len; i++) {
		unsigned char c = (unsigned char)v.p[i];
		/* room for the widest item (a 4-byte escape) plus "..", the
		 * closing quote and the NUL */
		if (o + 4 + 4 > cap) {
			buf[o++] = '.';
			buf[o++] = '.';
			break;
		}
		if (c == '"' || c == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c < ' ' || c >= 0x7f) {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		} else {
			buf[o++] = (char)c;
		}
	}
	if (quote)
		buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

void log_emit(enum log_level level, const char *event, const char *fmt, ...)
{
	char line[2048];
	size_t o = 0;
	int n;
	va_list ap;

	if (!log_enabled(level))
		return;
	if (g_dest == LOG_TO_STDERR) {
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		o = strftime(line, sizeof(line), "ts=%Y-%m-%dT%H:%M:%S", &tm);
		n = snprintf(line + o, sizeof(line) - o, ".%03ldZ ", ts.tv_nsec / 1000000);
		o += n > 0 ? (size_t)n : 0;
	}
	n = snprintf(line + o, sizeof(line) - o, "level=%s event=%s", level_names[level], event);
	if (n > 0)
		o += (size_t)n;
	if (ctx_key && o < sizeof(line)) {
		char ctx_val[LOG_VAL_MAX];
		log_val(ctx_raw, ctx_val, sizeof(ctx_val));
		n = snprintf(line + o, sizeof(line) - o, " %s=%s", ctx_key, ctx_val);
		if (n > 0)
			o += (size_t)n;
	}
	if (fmt && fmt[0] && o < sizeof(line) - 1) {
		line[o++] = ' ';
		va_start(ap, fmt);
		n = vsnprintf(line + o, sizeof(line) - o, fmt, ap);
		va_end(ap);
		if (n > 0)
			o += (size_t)n;
	}
	if (o > sizeof(line) - 2)
		o = sizeof(line) - 2;
	if (g_dest == LOG_TO_SYSLOG) {
		static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
		line[o] = '\0';
		syslog(prio[level], "%s", line);
		return;
	}
	line[o++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, o);
	(void)w;
}
