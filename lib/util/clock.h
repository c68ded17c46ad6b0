/*
 * The one clock of the process: CLOCK_MONOTONIC, which never jumps with
 * wall-clock changes, so deadlines, timeouts, latencies and ngtcp2
 * timestamps (which are nanoseconds, NGTCP2_SECONDS = 1e9) all read it.
 * The Raft core never does: time reaches it as ticks (lib/raft/raft.h).
 */
#ifndef RD_UTIL_CLOCK_H
#define RD_UTIL_CLOCK_H

#include <stdint.h>

/* Monotonic time in nanoseconds since an arbitrary origin (boot). Only
 * differences are meaningful; no precondition, safe from any thread. */
uint64_t rd_clock_now_ns(void);

/* The same clock in milliseconds (rd_clock_now_ns() / 1e6, truncated). */
uint64_t rd_clock_now_ms(void);

#endif
