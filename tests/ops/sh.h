/*
 * Helpers for the ops tests that run programs: a shell command with its
 * output captured, paths of the source and build trees (RD_SRC, RD_BUILD,
 * exported by the Makefile), whole files, temporary directories.
 */
#ifndef RD_TESTS_OPS_SH_H
#define RD_TESTS_OPS_SH_H

#include <stddef.h>

/* Run the command built from `fmt` with /bin/sh -c, stdin from /dev/null;
 * whatever it writes to stdout lands in `out` (`size` bytes, NUL-terminated,
 * truncated when longer). Redirect stderr in the command to capture it.
 * Returns the exit status, 128+N when killed by signal N, -1 when it could
 * not run. */
int ops_sh(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* $RD_SRC/rel and $RD_BUILD/rel (the current directory and its build/ when
 * unset: absolute either way), in one of a
 * few rotating static buffers. */
const char *ops_src(const char *rel);
const char *ops_build(const char *rel);

/* The whole file, NUL-terminated, malloc'ed (caller frees); NULL on error. */
char *ops_read_file(const char *path);

/* Write `text` to `path`; asserts on failure. */
void ops_write_file(const char *path, const char *text);

/* A new directory under $TMPDIR or /tmp (into `dir`, 256 bytes). */
void ops_mkdtemp(char *dir);

/* rm -rf `dir` (which must be one ops_mkdtemp made). */
void ops_rmrf(const char *dir);

/* `text` with every occurrence of `from` replaced by `to`, malloc'ed. */
char *ops_replace(const char *text, const char *from, const char *to);

#endif
