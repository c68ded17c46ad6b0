/*
 * The node runtime's internal state, shared by the files of lib/multiraft
 * (node.c: lifecycle and loop; drive.c: persist/send/apply; and the client
 * request handling). Not a public interface.
 */
#ifndef RD_MULTIRAFT_NODE_INTERNAL_H
#define RD_MULTIRAFT_NODE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "multiraft/node.h"
#include "util/config.h"

struct event;
struct rd_ctl_server;

/* Tick-loop figures, for `raftctl status` and /metrics. */
struct rd_loop_stats {
	uint64_t iterations;   /* drain passes */
	uint64_t last_iter_ns; /* duration of the last drain pass */
	uint64_t ticks;
	uint64_t last_tick_ns;        /* duration of the last tick pass */
	uint64_t last_tick_done_ns;   /* monotonic time the last tick finished */
	uint64_t tick_hist[12];       /* tick durations, see RD_LOOP_TICK_BUCKETS */
	uint64_t tick_ns_total;
	uint64_t errors_malformed_client;
};

struct rd_node {
	struct rd_config cfg;
	struct event_base *base;
	struct event *tick_ev;
	struct event *drain_ev;
	struct rd_ctl_server *ctl;
	bool ready;
	bool stopping;
	bool watchdog;
	int exit_code;
	uint64_t started_ns;
	struct rd_loop_stats loop;
};

/* Monotonic clock in nanoseconds. */
uint64_t rd_node_now_ns(void);

/* Ask for a drain pass at the end of this loop iteration. */
void rd_node_wake(struct rd_node *n);

#endif
