/* The watchdog keep-alive pacing (lib/util/watchdog.h): at most one
 * WATCHDOG=1 per quarter of WatchdogSec=, the first at once, none without a
 * watchdog, and the period read from the environment systemd sets
 * (sd_watchdog_enabled(3)). Time is passed in, so no clock is involved. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "util/watchdog.h"

#define MS 1000000ull

/* Tick every 10 ms for `span_ms` of virtual time; count keep-alives. */
static unsigned count_sends(struct rd_watchdog *w, uint64_t start, uint64_t span_ms)
{
	unsigned sent = 0;
	for (uint64_t t = start; t <= start + span_ms * MS; t += 10 * MS)
		sent += rd_watchdog_due(w, t);
	return sent;
}

Test(watchdog, one_keepalive_per_quarter_period)
{
	struct rd_watchdog w;

	rd_watchdog_set(&w, 30000000); /* WatchdogSec=30s */
	cr_assert_eq(w.interval_ns, 7500 * MS);
	/* 60 s of 10 ms ticks: at 0, 7.5, 15, ... 60 s, not 6001 times. */
	cr_assert_eq(count_sends(&w, 5000 * MS, 60000), 9);
}

Test(watchdog, the_first_tick_sends_and_spacing_holds)
{
	struct rd_watchdog w;

	rd_watchdog_set(&w, 2000000); /* 2 s: every 500 ms */
	cr_assert(rd_watchdog_due(&w, 0), "the first tick after start must send");
	cr_assert_not(rd_watchdog_due(&w, 10 * MS));
	cr_assert_not(rd_watchdog_due(&w, 499 * MS));
	cr_assert(rd_watchdog_due(&w, 500 * MS));
	/* A late tick (a slow iteration) sends at once, and the next one a
	 * full interval after it. */
	cr_assert(rd_watchdog_due(&w, 1700 * MS));
	cr_assert_not(rd_watchdog_due(&w, 2100 * MS));
	cr_assert(rd_watchdog_due(&w, 2200 * MS));
}

Test(watchdog, nothing_is_sent_without_a_watchdog)
{
	struct rd_watchdog w;

	rd_watchdog_set(&w, 0);
	cr_assert_eq(count_sends(&w, 0, 10000), 0);
}

Test(watchdog, period_comes_from_the_environment)
{
	struct rd_watchdog w;
	char pid[32];

	snprintf(pid, sizeof pid, "%ld", (long)getpid());
	setenv("WATCHDOG_USEC", "4000000", 1);
	setenv("WATCHDOG_PID", pid, 1);
	rd_watchdog_init(&w);
	cr_assert_eq(w.interval_ns, 1000 * MS);

	/* The period is for another process (a child that inherited it). */
	snprintf(pid, sizeof pid, "%ld", (long)getpid() + 1);
	setenv("WATCHDOG_PID", pid, 1);
	rd_watchdog_init(&w);
	cr_assert_eq(w.interval_ns, 0);

	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	rd_watchdog_init(&w);
	cr_assert_eq(w.interval_ns, 0);
	cr_assert_not(rd_watchdog_due(&w, 0));
}
