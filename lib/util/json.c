#include "util/json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rd_json_init(struct rd_json *j)
{
	memset(j, 0, sizeof *j);
}

void rd_json_free(struct rd_json *j)
{
	free(j->buf);
	memset(j, 0, sizeof *j);
}

static void put(struct rd_json *j, const char *s, size_t n)
{
	if (j->failed)
		return;
	if (j->len + n + 1 > j->cap) {
		size_t cap = j->cap ? j->cap * 2 : 256;
		while (cap < j->len + n + 1)
			cap *= 2;
		char *b = realloc(j->buf, cap);
		if (b == NULL) {
			j->failed = 1;
			return;
		}
		j->buf = b;
		j->cap = cap;
	}
	memcpy(j->buf + j->len, s, n);
	j->len += n;
	j->buf[j->len] = '\0';
}

static void value_start(struct rd_json *j)
{
	if (j->need_comma)
		put(j, ",", 1);
	j->need_comma = 1;
}

void rd_json_obj_begin(struct rd_json *j)
{
	value_start(j);
	put(j, "{", 1);
	j->need_comma = 0;
}

void rd_json_obj_end(struct rd_json *j)
{
	put(j, "}", 1);
	j->need_comma = 1;
}

void rd_json_arr_begin(struct rd_json *j)
{
	value_start(j);
	put(j, "[", 1);
	j->need_comma = 0;
}

void rd_json_arr_end(struct rd_json *j)
{
	put(j, "]", 1);
	j->need_comma = 1;
}

void rd_json_bytes(struct rd_json *j, const uint8_t *s, size_t len)
{
	value_start(j);
	put(j, "\"", 1);
	for (size_t i = 0; i < len; i++) {
		char esc[8];
		uint8_t c = s[i];
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			put(j, esc, 2);
		} else if (c < 0x20 || c >= 0x7f) {
			snprintf(esc, sizeof esc, "\\u%04x", c);
			put(j, esc, 6);
		} else {
			put(j, (const char *)&s[i], 1);
		}
	}
	put(j, "\"", 1);
}

void rd_json_str(struct rd_json *j, const char *s)
{
	rd_json_bytes(j, (const uint8_t *)s, strlen(s));
}

void rd_json_key(struct rd_json *j, const char *key)
{
	rd_json_str(j, key);
	put(j, ":", 1);
	j->need_comma = 0;
}

void rd_json_u64(struct rd_json *j, uint64_t v)
{
	char b[32];
	value_start(j);
	put(j, b, (size_t)snprintf(b, sizeof b, "%" PRIu64, v));
}

void rd_json_double(struct rd_json *j, double v)
{
	char b[64];
	value_start(j);
	put(j, b, (size_t)snprintf(b, sizeof b, "%.9g", v));
}

void rd_json_bool(struct rd_json *j, int v)
{
	value_start(j);
	put(j, v ? "true" : "false", v ? 4 : 5);
}

void rd_json_null(struct rd_json *j)
{
	value_start(j);
	put(j, "null", 4);
}
