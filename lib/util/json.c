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

/* Open an object or array with `ch`: a value, then nothing to separate. */
static void open_with(struct rd_json *j, const char *ch)
{
	value_start(j);
	put(j, ch, 1);
	j->need_comma = 0;
}

/* Close with `ch`: what follows is the next value of the enclosing one. */
static void close_with(struct rd_json *j, const char *ch)
{
	put(j, ch, 1);
	j->need_comma = 1;
}

void rd_json_obj_begin(struct rd_json *j)
{
	open_with(j, "{");
}

void rd_json_obj_end(struct rd_json *j)
{
	close_with(j, "}");
}

void rd_json_arr_begin(struct rd_json *j)
{
	open_with(j, "[");
}

void rd_json_arr_end(struct rd_json *j)
{
	close_with(j, "]");
}

/* Length of the valid UTF-8 sequence at `s` (RFC 3629 section 4: no
 * overlong forms, no surrogates, nothing above U+10FFFF), or 0. */
static size_t utf8_seq(const uint8_t *s, size_t n)
{
	size_t need;
	uint32_t cp, min;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xE0) == 0xC0)
		need = 2, cp = s[0] & 0x1Fu, min = 0x80;
	else if ((s[0] & 0xF0) == 0xE0)
		need = 3, cp = s[0] & 0x0Fu, min = 0x800;
	else if ((s[0] & 0xF8) == 0xF0)
		need = 4, cp = s[0] & 0x07u, min = 0x10000;
	else
		return 0;
	if (n < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3Fu);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return need;
}

/* The escape for the byte(s) at p[0..n), or NULL when they go out as they
 * are; *adv is set to how many bytes the answer covers. */
static const char *escape_at(const uint8_t *p, size_t n, enum rd_json_escape_mode mode,
                             char hex[8], size_t *adv)
{
	uint8_t c = p[0];

	*adv = 1;
	if (c == '"')
		return "\\\"";
	if (c == '\\')
		return "\\\\";
	if (mode == RD_JSON_BYTES) {
		if (c >= 0x20 && c < 0x7f)
			return NULL;
		snprintf(hex, 8, "\\u%04x", c);
		return hex;
	}
	if (c == '\n')
		return "\\n";
	if (c == '\r')
		return "\\r";
	if (c == '\t')
		return "\\t";
	if (c < 0x20) {
		snprintf(hex, 8, "\\u%04x", c);
		return hex;
	}
	if (c >= 0x80) {
		*adv = utf8_seq(p, n);
		if (*adv == 0) {
			*adv = 1;
			return "\\ufffd";
		}
	}
	return NULL;
}

void rd_json_escape(const void *s, size_t len, enum rd_json_escape_mode mode,
                    rd_json_put_fn out, void *ctx)
{
	const uint8_t *p = s;
	size_t i = 0, run = 0;

	out(ctx, "\"", 1);
	while (i < len) {
		char hex[8];
		size_t adv;
		const char *esc = escape_at(p + i, len - i, mode, hex, &adv);
		if (esc != NULL) {
			if (i > run)
				out(ctx, (const char *)p + run, i - run);
			out(ctx, esc, strlen(esc));
			run = i + adv;
		}
		i += adv;
	}
	if (len > run)
		out(ctx, (const char *)p + run, len - run);
	out(ctx, "\"", 1);
}

static void put_cb(void *ctx, const char *p, size_t n)
{
	put(ctx, p, n);
}

void rd_json_bytes(struct rd_json *j, const uint8_t *s, size_t len)
{
	value_start(j);
	rd_json_escape(s, len, RD_JSON_BYTES, put_cb, j);
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
