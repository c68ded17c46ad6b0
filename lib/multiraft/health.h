/*
 * The loop's own figures and the node's health (drive.c, health.c,
 * canary.c): iteration phases, gray-failure verdicts, the canary.
 * Part of the runtime's internal state (node_internal.h); not a public
 * interface.
 */
#ifndef RD_MULTIRAFT_HEALTH_H
#define RD_MULTIRAFT_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

#include "cluster/topology.h"
#include "ctl/metrics.h"

#include "multiraft/waiter.h"

/* The phases of one loop iteration (drive.c), for the slow-iteration log. */
enum rd_phase {
	RD_PHASE_COLLECT,
	RD_PHASE_SEND,
	RD_PHASE_WRITE,
	RD_PHASE_APPLY,
	RD_PHASE_ANSWER,
	RD_PHASE_COUNT
};

/* Where the last iteration spent its time: per phase the total and the
 * group that took longest in it (0 ns and group 0 for the phases that are
 * one call for all groups: send, write). */
struct rd_iter_trace {
	uint64_t ns[RD_PHASE_COUNT];
	uint64_t worst_group[RD_PHASE_COUNT];
	uint64_t worst_ns[RD_PHASE_COUNT];
};

/* Slow-disk detection (health.c): the window is cut in RD_HEALTH_SLOTS
 * slots, each judged healthy, slow or empty when it closes. */
#define RD_HEALTH_SLOTS 5
struct rd_health {
	uint64_t sync_cursor; /* rd_storage_sync_recent position */
	uint64_t slot_start_ns;
	uint32_t slot_n, slot_over;    /* syncs in the open slot, and how many slow */
	bool slot_stuck;               /* a sync outstanding past the threshold */
	uint8_t hist[RD_HEALTH_SLOTS]; /* closed slots, [0] newest */
	bool slow;
	uint64_t changed_ns;   /* when `slow` last changed */
	uint64_t last_bad_ns;  /* when the last slow slot closed */
	uint64_t last_good_ns; /* when the last healthy slot closed */
	uint64_t evacuations;  /* times the node turned slow */
	uint64_t transfers;    /* leadership transfers started while slow */
	uint64_t last_evac_ns; /* last evacuation pass */
	/* Peers whose last Raft batch said their disk is slow. */
	uint64_t slow_peers[RD_TOPOLOGY_MAX_MEMBERS];
	unsigned n_slow_peers;
};

/* The canary of one data group (canary.c). */
struct rd_canary_slot {
	struct rd_node *n;
	uint64_t group;
	uint64_t next_ns;    /* next write */
	uint8_t busy;        /* a write or its read-back is in flight (canary.c) */
	uint64_t seq;        /* value of the write in flight */
	uint64_t acked;      /* highest value whose write was acknowledged */
	uint64_t unknown[4]; /* writes with an unknown outcome (may apply late) */
	uint8_t key[48];
	size_t key_len;
};

struct rd_canary {
	struct rd_canary_slot *slots; /* [n_slots], by group id */
	uint64_t next_seq;
	uint64_t last_write_ns; /* last write started, any group */
	bool stale_hook;        /* test-only: read answers are taken one older */
	uint64_t writes, checks, violations;
};

/* Tick-loop figures, for `raftctl status` and /metrics. */
struct rd_loop_stats {
	uint64_t iterations;
	uint64_t last_iter_ns;
	uint64_t max_iter_ns;
	uint64_t ticks;
	uint64_t last_tick_ns;
	uint64_t max_tick_ns;
	uint64_t last_tick_done_ns;
	uint64_t last_second_ns; /* the once-a-second chores (node.c on_tick) */
	/* The tick timer's period now: [raft] tick_ms while a group ticks
	 * (or the node starts), the node heartbeat interval while every group is
	 * quiesced (node.c rd_node_tick_arm). */
	uint64_t tick_period_ms;
	uint64_t pending_groups; /* groups with work in the last iteration */
	uint64_t proposals;
	uint64_t forwarded;
	uint64_t malformed_client;
	struct rd_metric_hist iter_hist;
	struct rd_metric_hist tick_hist;
	struct rd_iter_trace trace; /* the last iteration's phases */
};

/* ---- health.c ---- */

/* Once per tick: judge the disk from the recent syncs (lib/storage
 * stall.c), turn slow or healthy, and while slow move leadership away and
 * keep every group from campaigning. */
void rd_health_tick(struct rd_node *n, uint64_t now_ns);

/* Whether the node makes progress at `now_ns`: a tick completed within
 * `limit_ns` and no synced write has been outstanding longer than that.
 * WATCHDOG=1 and /livez follow it. */
bool rd_health_alive(const struct rd_node *n, uint64_t now_ns, uint64_t limit_ns);

/* RaftBatch.flags for the batches this node sends (RD_WIRE_BATCH_F_*). */
uint32_t rd_health_batch_flags(const struct rd_node *n);

/* Peer `peer` sent a batch with `flags`: remember whether it is slow. */
void rd_health_peer_flags(struct rd_node *n, uint64_t peer, uint32_t flags);

/* Whether peer `peer` said in its last batch that its disk is slow; such
 * a peer is no target for a leadership transfer. */
bool rd_health_peer_slow(const struct rd_node *n, uint64_t peer);

/* Log the phase (and group) that made the last iteration slow. */
void rd_health_note_iteration(struct rd_node *n, uint64_t limit_ns);

/* ---- canary.c ---- */

/* Set up the canary (nothing runs while [health] canary_interval_ms is 0).
 * Returns 0 or RD_ENOMEM. */
int rd_canary_init(struct rd_node *n, char *msg);

/* Once per tick: start the canary writes that are due (when ready). */
void rd_canary_tick(struct rd_node *n, uint64_t now_ns);

/* Free the canary state. Its requests must have been answered. */
void rd_canary_free(struct rd_node *n);

/* Find a canary key of node `node` that data group `group` owns under
 * `rt`: writes it into key[cap] and its length into *len_out (0 when none
 * was found). Returns how many candidate keys it tried, 0 when it knew at
 * once that no key can exist (the group owns no vShard). */
unsigned rd_canary_find_key(const struct rd_routing *rt, uint64_t node, uint64_t group,
                            uint8_t *key, size_t cap, size_t *len_out);

#endif
