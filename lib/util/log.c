#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static enum rd_log_level current = RD_LOG_INFO;

static const struct {
	const char *name;
	enum rd_log_level level;
} levels[] = {
    {"error", RD_LOG_ERR}, {"warning", RD_LOG_WARNING}, {"notice", RD_LOG_NOTICE},
    {"info", RD_LOG_INFO}, {"debug", RD_LOG_DEBUG},
};

void rd_log_set_level(enum rd_log_level level)
{
	current = level;
}

enum rd_log_level rd_log_get_level(void)
{
	return current;
}

bool rd_log_parse_level(const char *name, enum rd_log_level *out)
{
	for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
		if (strcmp(name, levels[i].name) == 0) {
			*out = levels[i].level;
			return true;
		}
	}
	return false;
}

const char *rd_log_level_name(enum rd_log_level level)
{
	for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
		if (levels[i].level == level)
			return levels[i].name;
	return "unknown";
}

bool rd_log_enabled(enum rd_log_level level)
{
	return level <= current;
}

void rd_log(enum rd_log_level level, const char *fmt, ...)
{
	char line[1024];
	int n, len;
	va_list ap;

	if (!rd_log_enabled(level))
		return;
	n = snprintf(line, sizeof line, "<%d>", (int)level);
	va_start(ap, fmt);
	len = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (len < 0)
		return;
	len += n;
	if (len > (int)sizeof line - 2)
		len = (int)sizeof line - 2;
	for (int i = n; i < len; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[len++] = '\n';
	/* One write per line keeps lines whole when several processes share the
	 * same stderr (make run). */
	ssize_t w = write(STDERR_FILENO, line, (size_t)len);
	(void)w;
}
