#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const descs[RD_ERR_COUNT] = {[RD_OK] = "success",
#define X(name, wire, desc) [RD_##name] = desc,
                                                RD_ERR_MAP(X)
#undef X
};

static const char *const names[RD_ERR_COUNT] = {[RD_OK] = "OK",
#define X(name, wire, desc) [RD_##name] = #name,
                                                RD_ERR_MAP(X)
#undef X
};

const char *rd_strerror(int code)
{
	if (code < 0 || code >= RD_ERR_COUNT)
		return "unknown error";
	return descs[code];
}

const char *rd_errname(int code)
{
	if (code < 0 || code >= RD_ERR_COUNT)
		return "EUNKNOWN";
	return names[code];
}

int rd_errorf(char *msg, int code, const char *fmt, ...)
{
	if (msg != NULL) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(msg, RD_ERRMSG_SIZE, fmt, ap);
		va_end(ap);
	}
	return code;
}

void rd_errprefix(char *msg, const char *fmt, ...)
{
	char pre[RD_ERRMSG_SIZE];
	size_t plen, mlen;
	va_list ap;
	int n;

	if (msg == NULL)
		return;
	va_start(ap, fmt);
	n = vsnprintf(pre, sizeof pre, fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	plen = strlen(pre);
	mlen = strnlen(msg, RD_ERRMSG_SIZE - 1);
	if (plen + mlen > RD_ERRMSG_SIZE - 1)
		mlen = RD_ERRMSG_SIZE - 1 > plen ? RD_ERRMSG_SIZE - 1 - plen : 0;
	memmove(msg + plen, msg, mlen);
	memcpy(msg, pre, plen < RD_ERRMSG_SIZE ? plen : RD_ERRMSG_SIZE - 1);
	msg[plen + mlen < RD_ERRMSG_SIZE ? plen + mlen : RD_ERRMSG_SIZE - 1] = '\0';
}
