#include "util/watchdog.h"

#include <systemd/sd-daemon.h>

void rd_watchdog_set(struct rd_watchdog *w, uint64_t period_usec)
{
	w->interval_ns = period_usec / 4 * 1000;
	if (period_usec != 0 && w->interval_ns == 0)
		w->interval_ns = 1;
	w->last_ns = 0;
	w->sent = false;
}

void rd_watchdog_init(struct rd_watchdog *w)
{
	uint64_t usec = 0;

	rd_watchdog_set(w, sd_watchdog_enabled(0, &usec) > 0 ? usec : 0);
}

bool rd_watchdog_due(struct rd_watchdog *w, uint64_t now_ns)
{
	if (w->interval_ns == 0)
		return false;
	if (w->sent && now_ns - w->last_ns < w->interval_ns)
		return false;
	w->sent = true;
	w->last_ns = now_ns;
	return true;
}

void rd_watchdog_kick(struct rd_watchdog *w, uint64_t now_ns)
{
	if (rd_watchdog_due(w, now_ns))
		sd_notify(0, "WATCHDOG=1");
}
