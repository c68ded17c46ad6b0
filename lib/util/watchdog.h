/*
 * The systemd watchdog keep-alive, paced. With WatchdogSec= set, systemd
 * passes the period in $WATCHDOG_USEC and kills the service when no
 * WATCHDOG=1 arrives within it (sd_watchdog_enabled(3)). The tick loop
 * calls rd_watchdog_kick() on every tick, which proves the loop turned; the
 * keep-alive itself goes out at most once every quarter period, so that a
 * 10 ms tick does not cost PID 1 a hundred notifications a second while a
 * stuck loop is still caught within one period.
 */
#ifndef RD_UTIL_WATCHDOG_H
#define RD_UTIL_WATCHDOG_H

#include <stdbool.h>
#include <stdint.h>

struct rd_watchdog {
	uint64_t interval_ns; /* between keep-alives; 0: no watchdog */
	uint64_t last_ns;     /* when the last keep-alive went out */
	bool sent;            /* one has gone out since rd_watchdog_set() */
};

/* Arm `w` from the environment systemd set for this process (the period
 * only applies when $WATCHDOG_PID, if set, names this process); leaves it
 * disarmed when there is no watchdog. */
void rd_watchdog_init(struct rd_watchdog *w);

/* Arm `w` for a watchdog period of `period_usec` (0 disarms it). */
void rd_watchdog_set(struct rd_watchdog *w, uint64_t period_usec);

/* Whether a keep-alive is due at monotonic time `now_ns`: true for the
 * first call after rd_watchdog_set(), then once `interval_ns` has passed
 * since the last true; records a true answer as sent. Always false when
 * disarmed. Pure, so the pacing is tested without a clock. */
bool rd_watchdog_due(struct rd_watchdog *w, uint64_t now_ns);

/* Send WATCHDOG=1 to systemd if rd_watchdog_due(w, now_ns). */
void rd_watchdog_kick(struct rd_watchdog *w, uint64_t now_ns);

#endif
