/*
 * Logging: one line per event, key=value fields.
 *   ts=2026-11-22T06:40:01.123Z level=info event=register.ok call_id=abc aor=sip:a@b
 * A per-thread context (the SIP Call-ID or the HTTP request id) is added to
 * every line written while it is set, so a transaction's lines can be found.
 * Values from the network must go through log_val() which quotes and escapes
 * them. Never pass a secret (password, HA1, expected response, nonce MAC key).
 */
#ifndef RTC_CORE_LOG_H
#define RTC_CORE_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "core/str.h"

enum log_level { LOG_ERR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

enum log_dest { LOG_TO_STDERR = 0, LOG_TO_SYSLOG = 1 };

void log_setup(enum log_level level, enum log_dest dest, const char *ident);
void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);
/* Parse "error", "warn", "info", "debug"; 0 or -1. */
int log_level_parse(const char *s, enum log_level *out);

/* Thread-local context: key is a literal ("call_id", "req_id"). The value's
 * bytes are not copied: they must stay valid until log_ctx_clear(). */
void log_ctx_set(const char *key, struct str value);
void log_ctx_clear(void);

/* fmt holds further " key=value" pairs (leading space not needed). */
void log_emit(enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Quote a value for a log line: printable ASCII kept, '"' and '\\' escaped,
 * other bytes as \xNN, truncated to fit. Returns buf. 128 bytes is enough for
 * most fields: LOG_VAL_MAX.
 */
#define LOG_VAL_MAX 160
const char *log_val(struct str v, char *buf, size_t cap);

#define log_err(ev, ...)  log_emit(LOG_ERR, ev, __VA_ARGS__)
#define log_warn(ev, ...) log_emit(LOG_WARN, ev, __VA_ARGS__)
#define log_info(ev, ...)                                                                          \
	do {                                                                                       \
		if (log_enabled(LOG_INFO))                                                         \
			log_emit(LOG_INFO, ev, __VA_ARGS__);                                       \
	} while (0)
#define log_debug(ev, ...)                                                                         \
	do {                                                                                       \
		if (log_enabled(LOG_DEBUG))                                                        \
			log_emit(LOG_DEBUG, ev, __VA_ARGS__);                                      \
	} while (0)

#endif
