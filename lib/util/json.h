/*
 * Minimal JSON writing into a growable buffer (status output, raftctl
 * --json). Bytes that are not printable ASCII are written as \u00XX, so any
 * key or value, binary included, yields valid JSON.
 */
#ifndef RD_UTIL_JSON_H
#define RD_UTIL_JSON_H

#include <stddef.h>
#include <stdint.h>

struct rd_json {
	char *buf;
	size_t len, cap;
	int need_comma;
	int failed; /* out of memory: further writes are ignored */
};

void rd_json_init(struct rd_json *j);
void rd_json_free(struct rd_json *j);

void rd_json_obj_begin(struct rd_json *j);
void rd_json_obj_end(struct rd_json *j);
void rd_json_arr_begin(struct rd_json *j);
void rd_json_arr_end(struct rd_json *j);
/* An object key; the next value follows it. */
void rd_json_key(struct rd_json *j, const char *key);
void rd_json_str(struct rd_json *j, const char *s);
void rd_json_bytes(struct rd_json *j, const uint8_t *s, size_t len);
void rd_json_u64(struct rd_json *j, uint64_t v);
void rd_json_double(struct rd_json *j, double v);
void rd_json_bool(struct rd_json *j, int v);
void rd_json_null(struct rd_json *j);

#endif
