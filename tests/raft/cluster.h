/*
 * A simulated cluster for the Raft core: nodes with a fake disk (hard state,
 * log, snapshot), a fake network (queue with delivery times, drops,
 * duplicates, partitions), crash and restart, a toy state machine (a hash
 * chain of applied entries), and a checker of Raft's five safety properties
 * (paper figure 3) run after every processing step.
 *
 * Shared by the scenario runner, the randomized simulation, the paper tests,
 * the fuzzer and (not the bench) — no Criterion in here, so tools link it.
 */
#ifndef RD_TESTS_RAFT_CLUSTER_H
#define RD_TESTS_RAFT_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "raft/raft.h"

#define RC_MAX 8 /* node ids 1..RC_MAX */

struct rc_entry {
	struct rd_entry e; /* data owned */
	uint64_t ph;       /* prefix hash through this entry */
};

struct rc_disk {
	struct rd_hard_state hs;
	struct rd_snapshot_meta snap;
	uint64_t snap_sm;      /* state machine hash at snap.index */
	uint64_t snap_ph;      /* prefix hash at snap.index */
	struct rc_entry *ents; /* snap.index+1 .. */
	size_t n, cap;
};

struct rc_node {
	uint64_t id;
	bool exists;
	bool up;
	bool retired; /* removed from the group and stopped for good */
	struct rd_raft *r;
	struct rc_disk disk;
	struct rd_conf_state boot_conf;
	uint64_t sm_hash, sm_index;
	/* The membership the state machine holds at sm_index, replayed by
	 * the harness from the conf changes it applies (and snapshots). */
	struct rd_conf_state sm_conf;
	uint64_t rx_snap_sm, rx_snap_ph; /* last snapshot data received */
	/* An asynchronous write in progress (rc_process_early .. rc_finish):
	 * the update was advanced, its writes are pending, and its
	 * msgs_after_persist wait in the network marked held. */
	bool holding;
	struct rd_hard_state pend_hs;
	bool pend_hs_changed, pend_has_snap;
	struct rd_snapshot_meta pend_snap;
	uint64_t pend_snap_sm, pend_snap_ph;
	struct rd_entry *pend_ents; /* one block with payloads */
	size_t pend_n;
	/* leader append-only check */
	uint64_t lead_term, lead_last, lead_last_term;
	/* reads this instance asked for and got no answer for yet (a
	 * multiset: callers may reuse a context) */
	uint64_t *asked;
	size_t n_asked, cap_asked;
	/* what the node applied / read since the last report (scenarios) */
	char applied_txt[4096];
	char reads_txt[1024];
	/* The core's log source (rc_cluster.log_source): entries from
	 * `disk`, into a scratch array; src_fail makes every read fail,
	 * src_bad_term makes the first entry returned carry a wrong term. */
	struct rd_raft_log_source src;
	struct rd_entry *src_buf;
	size_t src_cap;
	bool src_fail, src_bad_term;
	uint64_t src_reads; /* reads served, over every instance */
};

struct rc_env {
	struct rd_message m;
	uint64_t at;
	uint64_t held_by; /* waits for this node's pending write */
	uint64_t snap_sm, snap_ph;
};

struct rc_lm {
	uint64_t term, ph;
};

struct rc_cluster {
	struct rc_node nodes[RC_MAX + 1];
	struct rd_raft_config base; /* parameters for every node */
	struct rc_env *net;
	size_t n_net, cap_net;
	bool cut[RC_MAX + 1][RC_MAX + 1];
	uint64_t now;
	uint64_t rng;
	uint32_t p_drop, p_dup; /* per mille */
	uint32_t max_delay;     /* ticks */
	bool auto_snapshot_reports;
	/* Leaders ship the state machine at their applied index with the
	 * core's applied configuration, as the node runtime does, instead
	 * of the snapshot at the compaction point. */
	bool ship_applied;
	/* Cores get a log source reading their node's disk, and keep
	 * base.log_mem_bytes of their log in memory (raft.h, "The in-memory
	 * tail"). */
	bool log_source;
	/* safety tables */
	uint64_t *leader_of; /* by term */
	size_t n_leader_of;
	struct rc_lm (*lm)[4]; /* by index: up to 4 (term, prefix hash) */
	uint64_t *sm_at;       /* by index: state machine hash, 0 = unknown */
	uint64_t *commit_term; /* by index: term of the committed entry */
	uint64_t *conf_at;     /* by index: membership hash as of it, 0 = unknown */
	size_t n_idx;
	uint64_t max_commit;
	uint64_t *read_floor; /* by read ctx: max_commit when the read began */
	size_t n_read_floor;
	uint64_t violations;
	char violation[512];
	FILE *out;    /* scenario transcript; NULL = quiet */
	bool verbose; /* print delivered messages */
	uint64_t applied_total;
	/* Node liveness, as the runtime gives it to quiesced groups
	 * (rd_raft_peer_down): node X takes node Y for live while Y is up and
	 * its node heartbeats reach X (not cut Y -> X); after an election
	 * timeout without them, or once Y restarted, X calls
	 * rd_raft_peer_down(Y) on its group, on every tick while Y stays not
	 * live. Only with `liveness` (config quiesce=1). */
	bool liveness;
	uint64_t heard[RC_MAX + 1][RC_MAX + 1]; /* [x][y]: tick x last heard y */
	uint64_t epoch[RC_MAX + 1];             /* starts of node y */
	uint64_t seen_epoch[RC_MAX + 1][RC_MAX + 1];
	uint64_t st_quiesces, st_peer_down_wakes;
	/* coverage counters (reported by the simulation) */
	uint64_t st_elections, st_snap_installs, st_reads, st_crashes, st_lost_updates;
	uint64_t st_conf_changes, st_transfers, st_compactions;
	uint64_t st_conf_interrupted, st_applied_snapshots;
};

void rc_init(struct rc_cluster *c, uint64_t seed);
void rc_free(struct rc_cluster *c);
/* A node whose bootstrap conf is `voters` (n may be 0: a blank joiner). */
void rc_add(struct rc_cluster *c, uint64_t id, const uint64_t *voters, uint32_t n);
/* Nodes 1..n (n <= RC_MAX), each booting with voters 1..n, added and
 * started in id order with the cluster's `base` parameters as they are now. */
void rc_add_voters(struct rc_cluster *c, uint32_t n);
void rc_start(struct rc_cluster *c, uint64_t id);
void rc_crash(struct rc_cluster *c, uint64_t id);
/* Drain every update of `id` (persist synchronously). True if any. */
bool rc_process(struct rc_cluster *c, uint64_t id);
/* Asynchronous write: take one update, send what may leave before the
 * write, apply, advance; the write stays pending (the node keeps stepping
 * messages but processes no further update) until rc_finish. */
bool rc_process_early(struct rc_cluster *c, uint64_t id);
/* The pending write completes: persist, rd_raft_persisted, release the
 * messages that waited for it. */
void rc_finish(struct rc_cluster *c, uint64_t id);
/* Deliver queued messages due now (to == 0: any). Returns how many. */
size_t rc_deliver(struct rc_cluster *c, uint64_t to);
/* process + deliver until nothing moves (bounded). */
void rc_stabilize(struct rc_cluster *c);
/* rd_raft_read_index on node `id`, remembering the context: a node that
 * hands out a read state (or a failure) for a context it did not ask for
 * since its start, or twice for one request, is a violation. */
int rc_read(struct rc_cluster *c, uint64_t id, uint64_t ctx);
/* Queue node `from`'s latest snapshot (with its data) to `to`, as a
 * leader's runtime streams it. */
void rc_send_snapshot(struct rc_cluster *c, uint64_t from, uint64_t to);
/* Take a snapshot at the applied index and compact the log there. */
void rc_compact(struct rc_cluster *c, uint64_t id, uint64_t index);
void rc_check(struct rc_cluster *c);
/* Once per tick, after the nodes ticked: node liveness (see `liveness`). */
void rc_liveness(struct rc_cluster *c);
/* checker.c internals used by cluster.c */
void rc__grow_idx(struct rc_cluster *c, uint64_t index);
void rc__note_prefix(struct rc_cluster *c, uint64_t index, uint64_t term, uint64_t ph);
/* Linearizable reads: remember the commit index observed when read `ctx`
 * starts; the read must be served at an index at least that high. */
void rc_note_read(struct rc_cluster *c, uint64_t ctx);
uint64_t
rc_leader(struct rc_cluster *c); /* a live leader with the highest term, 0 none */
uint64_t rc_rand(struct rc_cluster *c);
void rc_violation(struct rc_cluster *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void rc_fmt_msg(char *buf, size_t n, const struct rd_message *m);
void rc_print(struct rc_cluster *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Scenario runner: run script text, write the transcript into out. */
int rc_scenario_run(const char *script, FILE *out, char *err, size_t errlen);

/* Randomized simulation of one seed; returns violations (0 = pass). `why`
 * gets the first violation; `stats` (RC_SIM_NSTATS counters, may be NULL)
 * accumulates coverage figures: applied, elections, snapshot installs,
 * reads, crashes, lost updates, conf changes, transfers, compactions,
 * quiesces, wake-ups by rd_raft_peer_down, conf changes interrupted by a
 * leader crash, snapshots shipped at the applied index, log source reads. */
#define RC_SIM_NSTATS 14
uint64_t rc_sim_run(uint64_t seed, bool verbose, char *why, size_t whylen,
                    uint64_t *stats);

#endif
