/*
 * Placement decisions (pure): given the members, each data group's target
 * placement (state of group 0) and what its leader reports of its
 * configuration, the next steps that keep every group at
 * `replication_factor` replicas, one per node, move replicas off leaving
 * nodes and onto empty ones, and balance leaders. No I/O, no clock: the
 * group-0 leader's driver (multiraft/placement_drive.c) gathers the input,
 * calls rd_placement_decide once per interval and carries the actions out.
 *
 * Truth and target (as TiKV's PD and regions): a data group's own
 * configuration (its conf state, from its log) is the truth of who holds
 * it; group 0 holds the target placement, which the driver changes first
 * and the group's conf changes then follow, one server at a time (Raft
 * thesis §4.1). A move of group g from node S to node T:
 *   1. RETARGET: group 0's target for g becomes target - S + T;
 *   2. ADD_LEARNER T (T opens the group empty and catches up from the
 *      leader's log or a snapshot; a learner counts in no quorum, §4.2.1);
 *   3. PROMOTE T once its match index is within promote_max_lag of the
 *      leader's last index (thesis §4.2.1: a new server joins the quorum
 *      only once caught up, so availability is not lost);
 *   4. REMOVE S once every target node is a voter; if S leads, TRANSFER
 *      to a caught-up target voter first (§3.10), and S is removed by the
 *      next leader (a leader removing itself would step down leaderless,
 *      §4.2.2).
 * A group never has fewer voters than its target during a move (the
 * source goes only after the target is a voter), every change keeps a
 * live majority of the new configuration, and a target never names a
 * node twice. A move whose target node is not live before its promotion
 * is abandoned: RETARGET back (the source, still a voter, in its place),
 * then REMOVE its learner; the group keeps replication_factor replicas.
 */
#ifndef RD_CLUSTER_PLACEMENT_H
#define RD_CLUSTER_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/topology.h"

/* A member of the cluster as the driver sees it. */
struct rd_placement_node {
	uint64_t id;
	bool live;    /* reachable from the group-0 leader now (it is, itself) */
	bool leaving; /* decommissioned: its replicas move away, it takes none */
	bool slow;    /* reports a slow disk: takes no leadership (it may hold
	               * replicas) */
};

/* Replicas of one group's configuration, as its leader reports them. */
#define RD_PLACEMENT_MAX_CONF 16

struct rd_placement_group {
	uint32_t id;
	/* Target placement, state of group 0. */
	uint32_t n_target;
	uint64_t target[RD_ROUTING_MAX_REPLICAS];
	/* What the group's leader reported; known = false: no report (no
	 * leader, or it did not answer): the group is left alone. */
	bool known;
	uint64_t leader;
	bool busy; /* a conf change is uncommitted or a transfer runs */
	uint32_t n_voters, n_learners;
	uint64_t voters[RD_PLACEMENT_MAX_CONF];
	uint64_t learners[RD_PLACEMENT_MAX_CONF];
	/* Entries each voter / learner is behind the leader's last index
	 * (UINT64_MAX: acknowledged nothing yet). The leader's own is 0. */
	uint64_t voter_lag[RD_PLACEMENT_MAX_CONF];
	uint64_t learner_lag[RD_PLACEMENT_MAX_CONF];
};

struct rd_placement_in {
	const struct rd_placement_node *nodes;
	size_t n_nodes;
	const struct rd_placement_group *groups;
	size_t n_groups;
	uint32_t replication_factor;
	uint32_t max_moves;       /* groups whose configuration differs from
	                           * their target, at most */
	uint32_t max_transfers;   /* leader-balancing transfers per decision */
	uint64_t promote_max_lag; /* [cluster] promote_max_lag */
};

enum rd_placement_kind {
	RD_PLACE_RETARGET = 1,    /* group 0: target of `group` := target[] */
	RD_PLACE_ADD_LEARNER = 2, /* `group`: add `node` as a learner */
	RD_PLACE_PROMOTE = 3,     /* `group`: promote learner `node` */
	RD_PLACE_REMOVE = 4,      /* `group`: remove `node` */
	RD_PLACE_TRANSFER = 5,    /* `group`: leadership from `from` to `node` */
};

struct rd_placement_action {
	uint8_t kind;
	uint32_t group;
	uint64_t node;
	uint64_t from; /* TRANSFER: the current leader; RETARGET: the node
	                * moved off (0 when none) */
	bool abandon;  /* RETARGET: a move given up, `from` its dead target,
	                * `node` the source put back (0 when none) */
	uint32_t n_target;
	uint64_t target[RD_ROUTING_MAX_REPLICAS];
};

/* Counters of one decision, for metrics and logs. */
struct rd_placement_stats {
	uint32_t moves_in_flight; /* groups whose configuration differs from
	                           * their target, after the actions */
	uint32_t stuck;           /* groups that need a move no node can take */
};

/* Decide the next actions: at most one per group (one conf change at a
 * time, thesis §4.1) besides leader transfers, at most `max` in `out`.
 * Returns the number written. Deterministic: the same input gives the
 * same output (nodes and groups are visited in the order given; ties are
 * broken by the lowest node id). `st` may be NULL. */
size_t rd_placement_decide(const struct rd_placement_in *in,
                           struct rd_placement_action *out, size_t max,
                           struct rd_placement_stats *st);

/* Could the nodes other than `node` that are live and not leaving hold
 * every group `node` holds in its target, one replica per node (at least
 * min(replication_factor, ...) is not enough: each such group must keep
 * its full target)? 0, or RD_EINVAL with a message naming a group that
 * could not be moved. Used to refuse a decommission up front. */
int rd_placement_can_drain(const struct rd_placement_in *in, uint64_t node, char *msg);

/* The value of a group's target placement in group 0 (the key is
 * cluster/members.h's rd_members_placement_key). Layout, integers
 * big-endian:
 *   u8 format (1) | u64 version | u8 n | u64 node[n]
 * `version` counts the changes of this group's target (1 for the first
 * one written; the bootstrap placement is version 0 and is not written).
 * RD_PLACEMENT_VALUE_MAX bytes at most. */
#define RD_PLACEMENT_VALUE_MAX (1u + 8u + 1u + 8u * RD_ROUTING_MAX_REPLICAS)

/* Write the value of target `nodes[0..n)` at `version` into `out` (room for
 * RD_PLACEMENT_VALUE_MAX bytes; nodes past RD_ROUTING_MAX_REPLICAS are cut)
 * and return its length. */
size_t rd_placement_encode(uint64_t version, const uint64_t *nodes, uint32_t n,
                           uint8_t *out);

/* 0, or RD_ECORRUPT for a short or trailing value, an unknown format, no
 * node or more than RD_ROUTING_MAX_REPLICAS, node 0 or a node twice. */
int rd_placement_decode(const uint8_t *buf, size_t len, uint64_t *version,
                        uint64_t *nodes, uint32_t *n);

#endif
