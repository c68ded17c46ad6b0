/*
 * Basic Raft types shared by the core (lib/raft), storage (lib/storage) and
 * the node runtime (lib/multiraft). Plain data, no behaviour.
 */
#ifndef RD_RAFT_TYPES_H
#define RD_RAFT_TYPES_H

#include <stddef.h>
#include <stdint.h>

/* Upper bound on voters + learners of one group. Groups are small (the
 * replication factor is at most 7); a fixed bound keeps conf states
 * allocation-free and trivially copyable. */
#define RD_RAFT_MAX_MEMBERS 16

enum rd_entry_type {
	RD_ENTRY_NORMAL = 0,      /* application command (opaque bytes) */
	RD_ENTRY_NOOP = 1,        /* appended by a new leader (Raft §5.4.2, §8) */
	RD_ENTRY_CONF_CHANGE = 2, /* a membership change (thesis §4.1) */
};

/* One log entry. `data` points at `len` bytes; who owns them is stated by
 * each function that hands out or takes entries. */
struct rd_entry {
	uint64_t term;
	uint64_t index;
	uint8_t type; /* enum rd_entry_type */
	uint32_t len;
	uint8_t *data;
};

/* What must be durable before a vote or an acknowledgement leaves the node
 * (Raft figure 2, "persistent state"); commit is kept for faster restart. */
struct rd_hard_state {
	uint64_t term;
	uint64_t vote; /* node id voted for in `term`, 0 = none */
	uint64_t commit;
};

/* Group membership. */
struct rd_conf_state {
	uint32_t n_voters;
	uint32_t n_learners;
	uint64_t voters[RD_RAFT_MAX_MEMBERS];
	uint64_t learners[RD_RAFT_MAX_MEMBERS];
};

/* Describes a snapshot: the state after applying every entry up to `index`
 * (whose term is `term`) with membership `conf`. */
struct rd_snapshot_meta {
	uint64_t index;
	uint64_t term;
	struct rd_conf_state conf;
};

#endif
