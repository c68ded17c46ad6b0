/*
 * Logging: one event a line on stderr, prefixed with the syslog priority in
 * angle brackets ("<6>") so that journald files it at the right level, then
 * a short event text and stable key=value fields:
 *
 *   <6>leader elected group=3 term=7 node=2
 *
 * The level is global and may be changed at run time (SIGHUP reload).
 */
#ifndef RD_UTIL_LOG_H
#define RD_UTIL_LOG_H

#include <stdbool.h>

enum rd_log_level {
	RD_LOG_CRIT = 2, /* the node found itself broken (canary, stalled disk) */
	RD_LOG_ERR = 3,
	RD_LOG_WARNING = 4,
	RD_LOG_NOTICE = 5,
	RD_LOG_INFO = 6,
	RD_LOG_DEBUG = 7,
};

/* Messages with a priority numerically above `level` are dropped. The level
 * is a plain variable: set it from the thread that logs (the loop), as the
 * SIGHUP reload does. */
void rd_log_set_level(enum rd_log_level level);
/* The level set last (RD_LOG_INFO until rd_log_set_level is called). */
enum rd_log_level rd_log_get_level(void);

/* Parse "error", "warning", "notice", "info" or "debug". Returns false for
 * anything else and leaves *out alone. */
bool rd_log_parse_level(const char *name, enum rd_log_level *out);

/* The name of a level, as rd_log_parse_level accepts it. */
const char *rd_log_level_name(enum rd_log_level level);

/* True when a message at `level` would be written. */
bool rd_log_enabled(enum rd_log_level level);

/* Write one line. The text must not contain newlines; they are replaced. */
void rd_log(enum rd_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define rd_log_crit(...)   rd_log(RD_LOG_CRIT, __VA_ARGS__)
#define rd_log_err(...)    rd_log(RD_LOG_ERR, __VA_ARGS__)
#define rd_log_warn(...)   rd_log(RD_LOG_WARNING, __VA_ARGS__)
#define rd_log_notice(...) rd_log(RD_LOG_NOTICE, __VA_ARGS__)
#define rd_log_info(...)   rd_log(RD_LOG_INFO, __VA_ARGS__)
#define rd_log_debug(...)                                                                \
	do {                                                                             \
		if (rd_log_enabled(RD_LOG_DEBUG))                                        \
			rd_log(RD_LOG_DEBUG, __VA_ARGS__);                               \
	} while (0)

#endif
