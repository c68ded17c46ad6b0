/*
 * Minimal JSON writing into a growable buffer (status output, raftctl
 * --json), and the one string escaper of the tree (RFC 8259 section 7).
 * rd_json_str and rd_json_bytes write bytes that are not printable ASCII as
 * \u00XX, so any key or value, binary included, yields valid JSON; text
 * meant for people (the admin /status page) is escaped as UTF-8 instead.
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

/* How rd_json_escape writes bytes outside printable ASCII. */
enum rd_json_escape_mode {
	/* Every byte below 0x20 or from 0x7f up as \u00XX: reversible for
	 * binary keys and values (each byte becomes the code point of the same
	 * number). */
	RD_JSON_BYTES,
	/* Text: \n \r \t as such, other controls as \u00XX, valid UTF-8
	 * (RFC 3629 section 4: no overlong forms, no surrogates, nothing above
	 * U+10FFFF) as it is, each byte of an invalid sequence as U+FFFD, so the
	 * document always parses. */
	RD_JSON_UTF8,
};

/* Where rd_json_escape writes: `n` bytes at `p`, to be copied. */
typedef void (*rd_json_put_fn)(void *ctx, const char *p, size_t n);

/* Write `len` bytes at `s` as one JSON string, quotes included, through
 * `put(ctx, ...)` (called several times). `s` may be NULL only when `len` is
 * 0. Both modes escape '"' and '\'; `mode` decides the rest (see above). */
void rd_json_escape(const void *s, size_t len, enum rd_json_escape_mode mode,
                    rd_json_put_fn put, void *ctx);

/* Start an empty document in `j` (no allocation until the first write). */
void rd_json_init(struct rd_json *j);
/* Free `j`'s buffer and reset it to empty; `j` may be reused after
 * rd_json_init. */
void rd_json_free(struct rd_json *j);

/* The writers below append to `j->buf` (NUL-terminated, owned by `j`) and
 * put the commas between values. Preconditions: `j` was initialised;
 * objects and arrays are closed in the order they were opened; inside an
 * object every value follows an rd_json_key. After an allocation failure
 * `j->failed` is set and further writes do nothing. */

/* Open an object (a value: a comma goes before it when needed). */
void rd_json_obj_begin(struct rd_json *j);
/* Close the innermost open object. */
void rd_json_obj_end(struct rd_json *j);
/* Open an array. */
void rd_json_arr_begin(struct rd_json *j);
/* Close the innermost open array. */
void rd_json_arr_end(struct rd_json *j);
/* An object key; the next value follows it. */
void rd_json_key(struct rd_json *j, const char *key);
/* A NUL-terminated string (must not be NULL), escaped as RD_JSON_BYTES. */
void rd_json_str(struct rd_json *j, const char *s);
/* `len` bytes at `s` as a string, escaped as RD_JSON_BYTES. */
void rd_json_bytes(struct rd_json *j, const uint8_t *s, size_t len);
/* An unsigned integer, in decimal (all 64 bits: readers that parse numbers
 * as doubles lose precision above 2^53). */
void rd_json_u64(struct rd_json *j, uint64_t v);
/* A number with 9 significant digits (%.9g); `v` must be finite. */
void rd_json_double(struct rd_json *j, double v);
/* true when `v` is non-zero, else false. */
void rd_json_bool(struct rd_json *j, int v);
/* null. */
void rd_json_null(struct rd_json *j);

#endif
