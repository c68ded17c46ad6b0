/*
 * The process's last resort: conditions after which continuing could
 * acknowledge something that was never made durable, or corrupt memory.
 * Nothing here returns. A failed fsync, a storage write RocksDB refused and
 * an allocation that failed all end here (see lib/storage/storage.h,
 * "Failure policy"), so that no caller is tempted to retry and then answer.
 */
#ifndef RD_UTIL_FATAL_H
#define RD_UTIL_FATAL_H

#include <stddef.h>

/* Log one line at error level (printf-style, through util/log.h) and
 * abort(). `fmt` must not contain newlines (util/log.h replaces them). Safe
 * from any thread; never returns. */
_Noreturn void rd_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* realloc(p, n) that never fails: on out of memory it calls rd_fatal. A
 * request for 0 bytes allocates 1, so the result is never NULL. `p` must be
 * NULL or a pointer from the malloc family; ownership of the result passes
 * to the caller (free it with free()). */
void *rd_xrealloc(void *p, size_t n);

/* calloc(n, size) that never fails: on out of memory or an overflowing
 * n * size it calls rd_fatal. A zero count or size allocates one byte, so
 * the result is never NULL. The caller owns the zeroed result. */
void *rd_xcalloc(size_t n, size_t size);

#endif
