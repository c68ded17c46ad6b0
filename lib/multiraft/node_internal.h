/*
 * The node runtime's internal state, shared by the files of lib/multiraft:
 *   node.c      lifecycle, tick timer, readiness, shutdown
 *   group.c     hosting a group: restore from storage or bootstrap
 *   drive.c     one loop iteration: collect, send, persist, apply (the
 *               ordering rule)
 *   waiter.c    requests waiting for an apply, a read index, readiness or
 *               a leader (the forwarder's callbacks)
 *   requests.c  local client requests (ClientRequest -> ClientResponse)
 *   peers.c     the transport glue: batches to peers, peer lifecycle
 *   snapshots.c snapshot streaming, both sides
 *   health.c    gray failures: slow-disk evacuation, progress-tied liveness
 *   canary.c    the linearizability self-check per data group
 *   liveness.c  idle groups off the ticking list; node liveness
 *   envelopes.c envelope handlers and deliveries (cluster/envelope.h)
 *   backup.c    raftctl backup save: every group streamed to a client
 *   backup_fetch.c  the BackupFetch peer RPC: a group pulled by a saving node
 *   restore.c   raftd --restore: a new cluster's data from a backup file
 * Topology and forwarding are in lib/cluster (lib/README.md, "Layers").
 * Not a public interface.
 */
#ifndef RD_MULTIRAFT_NODE_INTERNAL_H
#define RD_MULTIRAFT_NODE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/envelope.h"
#include "cluster/forward.h"
#include "cluster/members.h"
#include "cluster/placement.h"
#include "cluster/topology.h"
#include "multiraft/applier.h"
#include "multiraft/node.h"
#include "multiraft/subscribe.h"
#include "raft/raft.h"
#include "storage/storage.h"
#include "ctl/metrics.h"
#include "util/clock.h"
#include "util/config.h"
#include "util/watchdog.h"

struct event;
struct rd_ctl_server;
struct rd_ctl_conn;
struct rd_admin;
struct rd_peers;
struct rd_snapshot_writer;
struct rd_transport;

#define RD_NODE_MAX_MEMBERS RD_TOPOLOGY_MAX_MEMBERS
/* Event priorities (node.c): inputs first, then the drain pass and
 * background work such as a backup's next chunk. */
#define RD_NODE_PRIO_INPUT 1
#define RD_NODE_PRIO_LOW   2
#define RD_NODE_N_PRIOS    3

struct rd_backup_save;
struct rd_backup_serve;
struct rd_transport_responder;

enum rd_waiter_kind {
	RD_WAIT_PROPOSE, /* local proposal: resolved when (group, index) applies */
	RD_WAIT_APPLIED, /* forwarded proposal done remotely: wait for local apply */
	RD_WAIT_READ,    /* ReadIndex: resolved by a read state with ctx >= ours */
	RD_WAIT_FORWARD, /* waiting for a leader to forward to, or for its answer */
	RD_WAIT_READY,   /* raftctl ready --wait */
};

/* Where the answer goes. */
typedef void (*rd_reply_fn)(void *ud, uint64_t request_id, const struct rd_result *res);

struct rd_waiter {
	struct rd_waiter *next;
	enum rd_waiter_kind kind;
	uint64_t group;
	uint64_t index;
	uint64_t term;
	uint64_t ctx;
	uint64_t deadline_ns;
	rd_reply_fn reply;
	void *reply_ud;
	uint64_t request_id;
	/* Reads: the key; forwards: the command. Owned by the waiter. */
	uint8_t *data;
	size_t len;
	uint8_t op; /* RD_OP_* (cluster/forward.h) */
	/* Writes: the client session of the command (0 = none), kv.h. */
	uint64_t client_id;
	uint64_t sequence;
	/* FORWARD: the request as the forwarder sees it. */
	struct rd_forward fw;
	/* A result computed remotely, kept until the local apply (APPLIED). */
	struct rd_result remote;
	uint8_t *remote_value;
};

struct rd_waitq {
	struct rd_waiter *head, *tail;
};

struct rd_group {
	uint64_t id;
	struct rd_raft *raft;
	const struct rd_applier *applier;
	struct rd_raft_update u;
	struct rd_conf_state conf_persisted;
	uint64_t last_leader;
	bool fresh;            /* created by this start (bootstrap) */
	bool hint_handed;      /* bootstrap leadership hint honoured (node.c) */
	struct rd_waitq props; /* PROPOSE and APPLIED, ascending index */
	struct rd_waitq reads; /* READ, ascending ctx */
	uint64_t next_ctx;
	uint64_t proposals;           /* appended here as leader */
	uint64_t forwarded;           /* forwarded to the leader from here */
	struct rd_kv_result *results; /* apply results of the current update */
	size_t results_cap;
	/* Once the core is advanced past it (drive.c, before the write is
	 * durable), `u` is a copy whose arrays live here: what step 4 reads
	 * once the write returns. Entries keep index, term and type (no data)
	 * and only the last one is kept; messages are deep copies. */
	struct rd_written {
		struct rd_entry last;
		struct rd_entry *committed;
		size_t committed_cap;
		struct rd_read_state *reads;
		size_t reads_cap;
		uint64_t *reads_failed;
		size_t reads_failed_cap;
		struct rd_snap_send *snap_sends;
		size_t snap_sends_cap;
		struct rd_message *msgs;
		size_t msgs_cap;
	} w;
	/* Last entry applied here whose apply a read can see (its batch was
	 * written; drive.c), which the core's applied index may be ahead of
	 * while that write is in flight. */
	uint64_t applied;
	bool dirty;      /* on the node's dirty list (rd_node_touch) */
	bool ticking;    /* on the node's ticking list (quiesced groups are not) */
	size_t tick_pos; /* its index there */
	/* A compaction waits for the apply to reach the disk (drive.c
	 * compact): the group stays on the ticking list, quiesced or not, and
	 * is visited each tick until the flush lets the compaction through. */
	bool compact_wait;
	/* Replica identities (cluster/members.h; replicas.c): the
	 * incarnation of each node this group's log added with one, latest
	 * add wins; a member not listed is a founding replica (0). */
	struct rd_replica_inc {
		uint64_t id, incarnation;
	} replicas[2 * RD_RAFT_MAX_MEMBERS];
	unsigned n_replicas;
};

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
	uint64_t slow_peers[RD_NODE_MAX_MEMBERS];
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

/* A snapshot being received (snapshots.c). A node receives up to
 * RD_SNAP_IN_SLOTS at once, one per group: the streams of different
 * groups' leaders interleave on the wire, and a single slot let each new
 * stream abort the one before it, so two followers' catch-ups could starve
 * each other forever. */
#define RD_SNAP_IN_SLOTS 4
struct rd_snap_in {
	struct rd_snapshot_writer *sw; /* NULL: slot free */
	uint64_t sw_group, sw_from;
	uint64_t used; /* n->snap_in_clock at its last chunk, for eviction */
	/* An install storage refused with RD_EAGAIN (the batch held work for
	 * the group): finished after the next commit (rd_snapshots_retry),
	 * then `msg` (no entries) is stepped. */
	bool pending;
	uint64_t term;
	struct rd_snapshot_meta offered;
	bool has_msg;
	struct rd_message msg;
};

/* Node liveness (liveness.c). */
struct rd_live_peer {
	uint64_t id;
	uint64_t silent_ns; /* loop time since its last batch (liveness.c) */
	uint64_t heard_ns;  /* when its last batch arrived */
	uint64_t boot;      /* its boot id (RaftBatch.boot), 0 = not known */
	bool live;
};

struct rd_liveness {
	uint64_t boot;        /* this process's boot id */
	uint64_t timeout_ns;  /* [raft] election_ticks ticks */
	uint64_t interval_ns; /* node heartbeats (rd_liveness_init) */
	uint64_t last_hb_ns;
	uint64_t last_tick_ns; /* the last rd_liveness_tick */
	struct rd_live_peer peers[RD_NODE_MAX_MEMBERS];
	unsigned n_peers;
	uint64_t down_events;              /* peers that stopped being live */
	uint64_t quiesces;                 /* groups quiesced here */
	uint64_t wakeups[RD_WAKE_MAX + 1]; /* by enum rd_raft_wake */
};

/* A peer's registration as last read (membership.c). */
struct rd_member_cache {
	uint64_t id;
	uint64_t at_applied;  /* group 0's durable applied index when read */
	uint64_t incarnation; /* 0 = not registered */
	bool valid;
};

/* A membership request in progress (raftctl members add / remove /
 * promote, from a local client or handed over by a peer), member_ops.c. */
#define RD_MEMBER_OPS 32
struct rd_member_op {
	bool used;
	uint8_t kind; /* enum rd_members_kind (cluster/members.h) */
	uint8_t phase;
	bool learner;
	bool joining; /* add: a learner to promote once caught up */
	bool replace; /* part of replacing a replica (member_ops.c) */
	bool quiet;   /* refusals are expected (retried): not logged */
	bool join;    /* a JoinRequest: answered with a JoinResponse (join.c) */
	uint32_t hops;
	uint64_t group;       /* 0 = metadata group */
	uint64_t incarnation; /* add: the replica's; 0 = the registered one */
	uint64_t node;
	char addr[256];
	uint64_t deadline_ns;
	uint64_t index, term; /* PROPOSED: the conf change entry */
	/* The answer goes to a local client (reply) or to the peer that
	 * handed the request over (responder). */
	rd_reply_fn reply;
	void *reply_ud;
	uint64_t request_id;
	struct rd_transport_responder *responder;
	struct rd_node *n;
	/* A data group this node does not host: the node to hand the
	 * request to (its leader, as the placement driver last heard). */
	uint64_t via;
};

struct rd_membership {
	struct rd_member_cache cache[RD_NODE_MAX_MEMBERS];
	unsigned n_cache;
	bool registered;     /* this node's incarnation is in the table */
	bool in_flight;      /* its registration is proposed */
	bool foreign_logged; /* another incarnation holds this node's id */
	bool foreign;        /* ... as this node's table or a peer says */
	uint64_t last_probe_ns;
	/* Asking before founding (membership.c rd_membership_ask_tick): group
	 * 0 is absent from storage, so opening the groups would create founding
	 * voter state; the groups stay closed until every peer answered that no
	 * incarnation holds this node's id, or ask_deadline_ns passed. */
	bool asking;
	uint64_t ask_deadline_ns;
	uint64_t founded_ns;             /* bootstrap campaigns not before (node.c) */
	bool clear[RD_NODE_MAX_MEMBERS]; /* by topo.members index: answered 0 */
	struct rd_member_probe_ctx {
		struct rd_node *n;
		unsigned idx;
	} probe_ctx[RD_NODE_MAX_MEMBERS];
	uint64_t refused_incarnation; /* batches from an unregistered incarnation */
	uint64_t refused_cluster;     /* batches from another cluster */
	struct rd_member_op ops[RD_MEMBER_OPS];
	/* This data directory joined as a new replica (catalog "joined"): it
	 * is a founding replica of no group, so it steps only messages
	 * addressed to its own incarnation. */
	bool joined;
	bool rejoin;           /* told its id is another incarnation's: join */
	uint64_t rejoin_have;  /* ... that one */
	uint64_t misaddressed; /* messages for another replica, dropped */
	/* Group-0 leader: nodes whose live incarnation (their probes) differs
	 * from the registered one, to be replaced by a new replica. */
	struct rd_replace {
		uint64_t node, incarnation;
	} replace[8];
	unsigned n_replace;
	bool removed;              /* group 0 removed this node: it exits 0 */
	uint64_t removed_probe_ns; /* last probe for a removal this node missed */
};

/* The placement driver's view of one data group (placement_drive.c). */
struct rd_place_report {
	struct rd_placement_group g; /* g.known: a report was received */
	uint64_t at_ns;              /* when */
	uint64_t term;               /* the reporting leader's term */
	uint64_t voter_inc[RD_PLACEMENT_MAX_CONF];
	uint64_t learner_inc[RD_PLACEMENT_MAX_CONF];
};

struct rd_place_call {
	struct rd_node *n;
	uint64_t peer;
	bool in_flight;
};

/* Placement: every node follows group 0's target placements (hosting the
 * groups it is a target of); the group-0 leader drives moves. */
struct rd_placement_drive {
	bool reload; /* group 0 applied entries: re-read the targets */
	struct rd_place_report *reports; /* [n_slots], by group id */
	bool *writing;                   /* [n_slots]: a retarget proposed */
	bool *moving; /* [n_slots]: its configuration was not its target */
	struct rd_place_call calls[RD_TOPOLOGY_MAX_MEMBERS];
	bool leading; /* this node drove the last round */
	uint32_t moves_in_flight, stuck;
	uint64_t moves_started, moves_done, moves_abandoned, transfers;
	/* Last round, for metrics: per node id, target replicas and leaders. */
	unsigned n_nodes;
	uint64_t node_ids[RD_TOPOLOGY_MAX_MEMBERS];
	uint32_t node_replicas[RD_TOPOLOGY_MAX_MEMBERS];
	uint32_t node_leaders[RD_TOPOLOGY_MAX_MEMBERS];
	uint64_t decommission_logged; /* leaving node whose removal was asked */
};

struct rd_node {
	struct rd_config cfg;
	struct event_base *base;
	struct event *tick_ev;
	struct event *drain_ev;
	struct event *finish_ev;
	struct rd_ctl_server *ctl;
	struct rd_admin *admin;
	struct rd_peers *peers;
	struct rd_snap_in snap_in[RD_SNAP_IN_SLOTS];
	uint64_t snap_in_clock;
	struct rd_storage *st;
	struct rd_storage_batch *batch;

	struct rd_topology topo;        /* members and routing table */
	struct rd_applier data_applier; /* groups 1.. */
	struct rd_applier meta_applier; /* group 0 */

	struct rd_group **groups; /* [n_slots], indexed by group id; NULL = not hosted */
	size_t n_slots;
	struct rd_group **active; /* groups with an update this iteration */
	/* Groups whose core may have an update (rd_node_touch): the loop
	 * visits these, not every slot. Each group at most once (`dirty`). */
	struct rd_group **dirty;
	size_t n_dirty;
	/* Groups whose core is ticked (node.c on_tick), so that a tick visits
	 * no empty slot and no quiesced group (liveness.c). */
	struct rd_group **ticking;
	size_t n_ticking;

	struct rd_forwarder fwd;        /* FORWARD waiters, through their `fw` */
	struct rd_envelopes env;        /* envelope routing (cluster/envelope.h) */
	struct rd_env_registry *envreg; /* handlers and deliveries (envelopes.c) */
	struct rd_waitq ready_waiters;
	struct rd_waitq resubmit;       /* handed back by the per-group pass (drive.c) */
	struct rd_backup_save *backups; /* saves streaming (backup.c) */
	struct rd_backup_serve *backup_serves; /* fetches served (backup_fetch.c) */

	bool wake_pending;
	bool retry_forwards; /* a leader changed in this iteration's pass */
	bool in_pass;        /* drive.c step 4 runs: no request may enter a core */
	/* drive.c: the batch of the last iteration is being written (its
	 * groups are n->active[0..n_written)); step 4 waits for it. */
	bool writing;
	size_t n_written;
	uint64_t write_start_ns;     /* when the writer got it */
	uint64_t last_slow_write_ns; /* the last "slow storage write" line */
	struct event *written_ev;    /* the storage writer's doorbell (node.c) */
	bool ready;
	bool ready_target_set;
	uint64_t ready_target; /* group 0 commit seen when its leader became known */
	bool stopping;
	struct rd_watchdog watchdog; /* WATCHDOG=1, paced */
	bool bootstrapped;           /* hinted campaigns done */
	int exit_code;
	uint64_t started_ns;
	uint64_t last_slow_log_ns;
	uint64_t seed;
	struct rd_loop_stats loop;
	struct rd_health health;
	struct rd_canary canary;
	struct rd_subs *subs;            /* commit streams (subscribe.h) */
	struct rd_membership members;    /* the member table's view (membership.c) */
	struct rd_placement_drive place; /* placement_drive.c */
	struct rd_liveness live;         /* node liveness, idle groups (liveness.c) */
	/* The cores' log source (raft.h, "The in-memory tail"): entries
	 * below a core's in-memory tail, read from storage (group.c). */
	struct rd_raft_log_source log_source;
	struct rd_entry_buf log_buf; /* the last read, until the next */
	uint64_t log_reads;
	uint64_t log_read_errors;
	uint64_t log_error_logged_ns;
	uint64_t mem_quiesced;      /* groups quiesced since the last trim (group.c) */
	uint64_t mem_quiesced_seen; /* the count a second ago */
	uint64_t mem_trim_ns;       /* when it ran */
};

/* ---- node.c ---- */

/* Schedule a drain pass (one rd_drive_iteration) after this iteration's
 * inputs; idempotent until the pass runs. Call whenever a core may have
 * an update. */
void rd_node_wake(struct rd_node *n);

/* Call after anything that may give group g's core an update (a step,
 * tick, proposal, read, transfer, campaign, snapshot report): puts g on
 * the dirty list that the next loop iteration visits (drive.c) and
 * schedules that iteration. The loop looks at no other group, so a core
 * changed without this call is not driven until it is touched again:
 * rd_node_check_dirty asserts the rule once a second. */
void rd_node_touch(struct rd_node *n, struct rd_group *g);

/* Assert that every hosted group whose core has an update is on the dirty
 * list (the rule of rd_node_touch). Outside a loop iteration only. */
void rd_node_check_dirty(const struct rd_node *n);

/* Put g on the ticking list (on) or take it off (quiesced); idempotent.
 * Putting one on arms the tick at [raft] tick_ms (rd_node_tick_arm). */
void rd_node_set_ticking(struct rd_node *n, struct rd_group *g, bool on);

/* Arm the tick timer at [raft] tick_ms when anything needs ticks at that
 * pace (a ticking group, asking peers before founding, the bootstrap
 * campaigns), else at the node heartbeat interval, which liveness, WATCHDOG=1
 * and the node's periodic chores need (raftd(8), "Idle groups"); a no-op
 * when the period is already that one or the node is stopping. */
void rd_node_tick_arm(struct rd_node *n);

/* The hosted group `id`, or NULL when it is not hosted here. */
struct rd_group *rd_node_group(const struct rd_node *n, uint64_t id);

/* Become ready (systemd READY=1, ready waiters answered OK) once group 0
 * has a leader and has applied the commit index seen when it got one.
 * Cheap once ready; called after every iteration. */
void rd_node_check_ready(struct rd_node *n);

/* mkdir -p with mode 0700. Returns 0 or RD_EIO with a message. */
int rd_node_mkdirs(const char *path, char *msg);

/* ---- admin.c: the admin HTTP server's view of the node ---- */

/* Start the admin HTTP server on [admin] listen, if configured. Returns 0
 * or an RD_E* code with a message naming the config key. */
int rd_node_admin_start(struct rd_node *n, char *msg);

/* Stop the admin server; idempotent. */
void rd_node_admin_stop(struct rd_node *n);

/* ---- group.c ---- */

/* Host group `id`: restore it from storage, or create it with `voters`
 * (n_voters <= RD_RAFT_MAX_MEMBERS) when storage has no state for it.
 * Precondition: storage is open and n->groups has a slot for `id`. Returns
 * 0 or an RD_E* code with a message. */
int rd_group_open(struct rd_node *n, uint64_t id, const uint64_t *voters, size_t n_voters,
                  char *msg);

/* Free a group and its core (NULL is fine). Its waiters must have been
 * resolved. */
void rd_group_free(struct rd_group *g);
/* Called once a second: when many groups quiesced since the last trim
 * (an eighth of those hosted, at least 64), give the allocator's free
 * pages back to the system (malloc_trim), once none quiesced in the last
 * second, and at most once every 30 s.
 * Quiesced groups free their log tails and message buffers, but freed
 * memory inside the heap stays resident until trimmed, so an idle node's
 * RSS would not show it. A trim walks the heap (tens of ms for a large
 * one) while the loop waits, hence only after mass quiescence, such as
 * the groups of a node going idle after its start or a burst. */
void rd_group_trim_memory(struct rd_node *n);

/* Where node `id` stands in the membership `cs` (a group's configuration,
 * thesis §4.1): one of its voters, one of its learners, or neither. */
enum rd_conf_role { RD_CONF_ROLE_NONE, RD_CONF_ROLE_VOTER, RD_CONF_ROLE_LEARNER };
enum rd_conf_role rd_group_conf_role(const struct rd_conf_state *cs, uint64_t id);

/* ---- drive.c ---- */

/* One loop iteration: collect, send, persist, apply (the ordering rule,
 * lib/README.md). Does nothing when no group has an update and no batch
 * is pending. With [storage] async_write the iteration returns while its
 * batch is written and the next call finishes it first (or returns at
 * once while the write is still in flight: the writer's doorbell calls
 * again). */
void rd_drive_iteration(struct rd_node *n);

/* Finish the batch in flight, waiting for its write if needed (shutdown,
 * tests). No-op when none is. */
void rd_drive_finish_write(struct rd_node *n);

/* Answer the proposals of g whose entries are in g->u.committed (results
 * in g->results) or covered by g->u's snapshot, and the forwarded writes
 * now applied here: the entry's result when its term is the proposal's;
 * when another term's entry took the index the proposal was not applied:
 * it goes to `again` to be submitted anew after the pass (NOT_LEADER when
 * `again` is NULL); and
 * for an index a snapshot install covered OK when `st`'s session table
 * records the write's (client, sequence) as applied, else "outcome
 * unknown" (UNAVAILABLE). `st` may be NULL (no session lookups).
 * Precondition: g->u is the current update or its copy (struct
 * rd_written), and g->applied what was applied before it. */
void rd_drive_resolve_applied(const struct rd_storage *st, struct rd_waitq *again,
                              struct rd_group *g);

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

/* ---- liveness.c ---- */

/* Draw this process's boot id; timeouts from the config. At start. */
void rd_liveness_init(struct rd_node *n);

/* The node heartbeat interval of `cfg` in ms: a third of the shortest
 * election timeout, never shorter than the Raft heartbeat interval; also
 * the tick timer's period while every group is quiesced (node.c). */
uint64_t rd_liveness_interval_ms(const struct rd_config *cfg);

/* A batch from `peer` carrying boot id `boot` (0: none) arrived. A new boot
 * id (a restart) tells every group that `peer` is down (rd_raft_peer_down).
 * Not from inside the drive pass. */
void rd_liveness_heard(struct rd_node *n, uint64_t peer, uint64_t boot);

/* Is `peer` live (a batch from it within an election timeout)? False for
 * a node never heard from. */
bool rd_liveness_live(const struct rd_node *n, uint64_t peer);

/* Once per tick, which stands for at most `period_ns` of silence: peers
 * silent for an election timeout stop being live (and every group hears
 * it); the node heartbeats once per interval. */
void rd_liveness_tick(struct rd_node *n, uint64_t now_ns, uint64_t period_ns);

/* After group g's update was advanced (drive.c): follow its quiescence
 * (`changed`, `quiesced`, wake `cause` from the update) on the ticking list
 * and in the counters, and give it the peers not live when it quiesced as
 * a follower or `became_leader`. */
void rd_liveness_after_update(struct rd_node *n, struct rd_group *g, bool changed,
                              bool quiesced, uint8_t cause, bool became_leader);

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

/* ---- waiter.c ---- */

/* A waiter of `kind` answered through reply(ud, request_id, ...) by
 * `deadline_ns` at the latest; NULL when out of memory. The caller fills
 * group, op and data (malloc'd; the waiter frees it). */
struct rd_waiter *rd_waiter_new(enum rd_waiter_kind kind, rd_reply_fn reply, void *ud,
                                uint64_t request_id, uint64_t deadline_ns);

struct rd_kv_cmd;

/* A waiter (RD_WAIT_FORWARD) for a write of `cmd` to `group`: the command
 * encoded as its data, with its client session. NULL with *err RD_ENOMEM,
 * or with rd_kv_encode's error when `cmd` does not encode (a key or value
 * out of bounds); then nothing is left allocated. */
struct rd_waiter *rd_waiter_new_write(rd_reply_fn reply, void *ud, uint64_t request_id,
                                      uint64_t deadline_ns, uint64_t group,
                                      const struct rd_kv_cmd *cmd, int *err);

/* Answer `w` with `res` and free it. Precondition: `w` is in no queue. */
void rd_waiter_finish(struct rd_waiter *w, const struct rd_result *res);

/* Insert `w` (in no queue) into `q` after every waiter with an index at or
 * below w->index (a queue kept in ascending index order stays so). */
void rd_waitq_insert(struct rd_waitq *q, struct rd_waiter *w);

/* A proposal of `w`'s command is in g's log at `index` in `term`: `w`
 * waits in g->props (in index order) for that entry to apply. */
void rd_waiter_track(struct rd_group *g, struct rd_waiter *w, uint64_t index,
                     uint64_t term);

/* Append `w` (in no queue) to `q`. */
void rd_waitq_push(struct rd_waitq *q, struct rd_waiter *w);

/* Resolve every waiter of `q` whose deadline passed with TIMEOUT
 * (NOT_READY for a readiness wait). */
void rd_waitq_expire(struct rd_waitq *q, uint64_t now_ns);

/* Resolve every waiter of `q` with `res`; `q` is empty afterwards. */
void rd_waitq_fail_all(struct rd_waitq *q, const struct rd_result *res);

/* A read or write: serve a stale read or propose / read locally when this
 * node can, else forward (cluster/forward.h). Takes ownership of w, which
 * may be answered before this returns. */
void rd_node_submit(struct rd_node *n, struct rd_waiter *w);

/* Serve a read of w->data in w->group from the applied state now, and
 * answer w. Precondition: the read's index is applied (or it is stale). */
void rd_node_serve_read(struct rd_node *n, struct rd_waiter *w);

/* The forwarder's view of the runtime: rd_forward_init gets these with
 * the node as `ud`. A forwarded waiter is the struct rd_forward inside
 * it. */
extern const struct rd_forward_ops rd_node_forward_ops;

/* ---- status.c ---- */

/* The status, groups and members answers. `send` packs and sends the
 * response (which the builders fill) to `conn` before they return. */
struct Raftd__ClientResponse;
typedef void (*rd_send_resp_fn)(struct rd_ctl_conn *conn,
                                struct Raftd__ClientResponse *r);
void rd_requests_status(struct rd_node *n, struct Raftd__ClientResponse *resp,
                        rd_send_resp_fn send, struct rd_ctl_conn *conn);
void rd_requests_groups(struct rd_node *n, struct Raftd__ClientResponse *resp,
                        rd_send_resp_fn send, struct rd_ctl_conn *conn);
void rd_requests_members(struct rd_node *n, struct Raftd__ClientResponse *resp,
                         rd_send_resp_fn send, struct rd_ctl_conn *conn);
/* FNV-1a 64 over every (group, key, value) of the hosted groups, in group
 * and key order: equal on replicas that applied the same entries. */
uint64_t rd_node_state_hash(struct rd_node *n);

/* ---- backup.c ---- */

/* Stream a backup of every group to `conn` (which holds the request's
 * reference until the stream ends). Precondition: the node is ready. */
struct Raftd__ClientRequest;
void rd_backup_start(struct rd_node *n, struct rd_ctl_conn *conn,
                     const struct Raftd__ClientRequest *req);

/* End every save in progress with SHUTTING_DOWN (`why`). Call after the
 * groups' read waiters have been resolved. */
void rd_backup_fail_all(struct rd_node *n, const char *why);

/* ---- backup_fetch.c ---- */

/* A BackupFetch request from `peer` (the transport's on_request, for that
 * body): answered through `r`, now or once the read index is served. */
struct Raftd__PeerRequest;
void rd_backup_fetch_serve(struct rd_node *n, uint64_t peer,
                           const struct Raftd__PeerRequest *req,
                           struct rd_transport_responder *r);

/* Close every fetch session whose read is not out (node free). */
void rd_backup_fetch_free_all(struct rd_node *n);

/* ---- restore.c ---- */

/* The cluster id check at start: record `derived` (the id of the members
 * listed in the config) in a database that has none; accept a database
 * that records it, or the id of a cluster restored from a backup by those
 * members; refuse any other with RD_EMISMATCH. */
int rd_restore_check_cluster_id(struct rd_storage *st, const char *derived, char *msg);

/* ---- requests.c ---- */

/* The client socket's frame callback (`ud` is the node): decode one
 * ClientRequest and answer it on `conn`, now or when its outcome is known. */
void rd_requests_on_frame(void *ud, struct rd_ctl_conn *conn, const uint8_t *frame,
                          size_t len);

/* ---- envelopes.c: handlers and deliveries of envelopes ---- */

struct Raftd__ClientRequest;

/* Figures for /metrics. */
struct rd_env_figures {
	uint64_t handlers;             /* handler connections registered now */
	uint64_t delivered;            /* answered by a handler (reply or app error) */
	uint64_t late_replies;         /* replies to no delivery (late, unknown id) */
	struct rd_metric_hist latency; /* delivery to handler's answer, seconds */
};

/* Set up n->env (the router) and n->envreg. Returns 0 or RD_ENOMEM. */
int rd_node_envelopes_init(struct rd_node *n);

/* Free n->envreg. Precondition: the socket is freed (no handlers left). */
void rd_node_envelopes_free(struct rd_node *n);

/* Every tick: deliveries past their deadline end with TIMEOUT; the
 * router's waiting envelopes are retried or expired. */
void rd_node_envelopes_tick(struct rd_node *n, uint64_t now_ns);

/* ClientRequest.send, .handle, .delivery_reply on `conn` (which holds one
 * reference for the request; each of these disposes of it). */
void rd_node_envelope_send(struct rd_node *n, struct rd_ctl_conn *conn,
                           const struct Raftd__ClientRequest *req, uint64_t deadline_ns);
void rd_node_envelope_handle(struct rd_node *n, struct rd_ctl_conn *conn,
                             const struct Raftd__ClientRequest *req);
void rd_node_envelope_reply(struct rd_node *n, struct rd_ctl_conn *conn,
                            const struct Raftd__ClientRequest *req);

const struct rd_env_figures *rd_node_envelope_figures(const struct rd_node *n);

/* ---- membership.c ---- */

/* Read node `id`'s registration from the durable state machine of group 0.
 * 0 and *r, RD_ENOTFOUND, or another RD_E* code. */
int rd_membership_read_record(struct rd_node *n, uint64_t id, struct rd_member_record *r);

/* ---- member_ops.c: raftctl members add / remove / promote, replacing a
 * wiped node's replicas ---- */

/* Group-0 leader: a probe showed node `peer` running `incarnation`, not the
 * registered one: start replacing its replicas (member_ops.c). */
void rd_membership_note_replacement(struct rd_node *n, uint64_t peer,
                                    uint64_t incarnation);

/* Group-0 leader: carry the replacements on from what the groups' logs say
 * (one change at a time per group). Called every second. */
void rd_membership_reconcile(struct rd_node *n);

/* Propose this node's registration in the member table once group 0 has a
 * leader and the table has none for it (cluster/members.h); log once when
 * another incarnation holds its id. Called every second. */
void rd_membership_tick(struct rd_node *n);

/* At start, before the groups open: whether this node must ask its peers
 * before founding (group 0 absent from storage and other members listed);
 * if so, sets members.asking and its deadline. */
bool rd_membership_ask_first(struct rd_node *n);

/* Every tick while members.asking: probe the peers; open the groups
 * (rd_node_open_groups) once every peer answered that no incarnation holds
 * this node's id, or the deadline passed; never once one answered that
 * another incarnation holds it. */
void rd_membership_ask_tick(struct rd_node *n);

/* node.c: open (restore or create) the groups this node hosts. */
int rd_node_open_groups(struct rd_node *n, char *msg);

/* Should a RaftBatch from `peer` carrying `incarnation` and `cluster` (not
 * NUL-terminated; length 0 when absent) be stepped? False, counted, when
 * the cluster id is another one or the member table registers another
 * incarnation for `peer`; true when it registers this one or none. */
bool rd_membership_accept(struct rd_node *n, uint64_t peer, uint64_t incarnation,
                          const uint8_t *cluster, size_t cluster_len);

/* Answer a peer's MemberProbe (the registration the table holds for it). */
void rd_membership_serve_probe(struct rd_node *n, uint64_t peer,
                               const struct Raftd__PeerRequest *req,
                               struct rd_transport_responder *r);

/* The incarnation the member table registers for `id` (0 when none), as of
 * group 0's durable applied index. 0 or an RD_E* storage error. */
int rd_membership_registered(struct rd_node *n, uint64_t id, uint64_t *incarnation);

/* A local client's raftctl members add / remove / promote: checked and
 * proposed by the group-0 leader (handed to it over PeerRequest
 * members_change when this node does not lead), answered once the conf
 * change applied here or was refused. */
void rd_membership_request(struct rd_node *n, rd_reply_fn reply, void *ud,
                           const struct Raftd__ClientRequest *req);

/* Every tick: move the membership requests in progress on (propose,
 * hand over, answer, expire). */
void rd_membership_ops_tick(struct rd_node *n);

/* At shutdown: answer the membership requests in progress. */
void rd_membership_shutdown(struct rd_node *n);

/* ---- placement (placement_drive.c) ---- */

/* Allocate the driver's per-group state (n_slots set). 0 or RD_ENOMEM. */
int rd_placement_init(struct rd_node *n, char *msg);
void rd_placement_free(struct rd_node *n);

/* Read every data group's target placement from group 0's applied state
 * into n->topo.routing (and the topology version). */
void rd_placement_reload(struct rd_node *n);

/* Open, empty, the data groups this node is a target of and does not host
 * (it is then added as a learner by the group's leader). Outside a loop
 * iteration only. */
void rd_placement_host(struct rd_node *n);

/* Every second: on the group-0 leader, one round of the driver
 * (cluster/placement.h): gather reports, decide, act. */
void rd_placement_tick(struct rd_node *n);

/* A peer's PeerRequest placement (the group-0 leader asking). */
void rd_placement_serve(struct rd_node *n, uint64_t peer,
                        const struct Raftd__PeerRequest *req,
                        struct rd_transport_responder *r);

/* Group-0 leader: `raftctl members remove ID`. 0: the node holds no
 * replica in any target, the plain removal goes on. 1: answered now
 * (*code, msg: refused because no node can take one of its replicas, or it
 * is already leaving). 2: its record's change to "leaving" is proposed;
 * cb(ud, request_id, result) answers once applied (or not). The placement
 * driver then moves its replicas and finally removes it from group 0. */
int rd_placement_decommission(struct rd_node *n, uint64_t node, rd_reply_fn cb, void *ud,
                              uint64_t request_id, int *code, char *msg);

/* Start a membership op for the placement driver (member_ops.c): `kind`
 * of `node` in `group`, handed to `via` (the group's leader) when this
 * node does not host the group. Refusals are retried by the next round,
 * so they are not logged. A no-op while one for the same group and node
 * runs. */
void rd_membership_place_op(struct rd_node *n, uint8_t kind, uint64_t group,
                            uint64_t node, uint64_t incarnation, uint64_t via);

/* A peer's PeerRequest members_change (this node should lead group 0). */
void rd_membership_serve_change(struct rd_node *n, uint64_t peer,
                                const struct Raftd__PeerRequest *req,
                                struct rd_transport_responder *r);

/* The group-0 leader's part of a JoinRequest that join.c checked: add
 * `node` (at `addr`, incarnation `incarnation`) to group 0 as a joining
 * learner, as `raftctl members add --learner` does, and answer `r` with
 * rd_join_respond once the entry applied or was refused. 0 (ownership of
 * `r` taken), or RD_EBUSY (a change of that node is in progress, or too
 * many), RD_ESHUTDOWN, RD_EINVAL with a message (r not taken). */
int rd_membership_start_join(struct rd_node *n, uint64_t node, const char *addr,
                             uint64_t incarnation, uint32_t deadline_ms,
                             struct rd_transport_responder *r, char *msg);

/* ---- join.c ---- */

/* A peer's JoinRequest (lib/multiraft/join.c): checked, and proposed when
 * this node leads group 0; otherwise answered NOT_LEADER with the leader's
 * address, or NO_LEADER. */
void rd_join_serve(struct rd_node *n, uint64_t peer, const struct Raftd__PeerRequest *req,
                   struct rd_transport_responder *r);

/* Answer a JoinRequest (and free r): on OK with the topology, the cluster
 * id and the routing table; NOT_LEADER with the leader's id and address. */
void rd_join_respond(struct rd_node *n, struct rd_transport_responder *r, uint64_t node,
                     int code, const char *message);

/* rd_node_start on a node configured with [cluster] join, storage open, no
 * group opened: unless the catalog already holds a routing table (a joined
 * node restarting), ask the join addresses until the group-0 leader added
 * this node (retried with backoff; RD_ECONFIG when refused, RD_ESHUTDOWN
 * on SIGTERM or SIGINT) and record the answer in the catalog. Then load
 * the members it listed into n->topo. 0 or an RD_E* code with a message. */
int rd_join_run(struct rd_node *n, char *msg);

/* drive.c, in the per-group pass after group 0's entries applied: follow
 * its conf changes (members join the topology and the transport; this
 * node's removal makes it exit 0 at the next tick). Submits nothing. */
void rd_membership_applied(struct rd_node *n, struct rd_group *g0);

/* Replica identities of group g: rebuild them from its state machine and
 * the log after its applied index (at open, after a snapshot install) /
 * follow the conf changes among entries being appended / the incarnation
 * of `id`'s replica in g (0: a founding replica). */
void rd_membership_replicas_load(struct rd_node *n, struct rd_group *g);
void rd_membership_replicas_appended(struct rd_group *g, const struct rd_entry *e,
                                     size_t n_entries);
uint64_t rd_membership_replica_inc(const struct rd_group *g, uint64_t id);
/* The incarnation a message of g to `to` is addressed to
 * (RaftMessage.to_incarnation): rd_membership_replica_inc, except while g's
 * configuration is empty (a replica waiting for its first append or
 * snapshot), when it answers the data directory the member table
 * registers for `to`, or, with no registration known, `heard` (the
 * incarnation of the last batch accepted from `to`). 0 (a founding
 * replica) when g is NULL. */
uint64_t rd_membership_address(struct rd_node *n, const struct rd_group *g, uint64_t to,
                               uint64_t heard);

/* Should a message of `group` from `from` (whose batch carries
 * `from_incarnation`), addressed to `to_incarnation`, be stepped here?
 * False, counted (members.misaddressed), when it is for another replica of
 * this node or comes from a replica g's configuration does not list. */
bool rd_membership_addressed(struct rd_node *n, uint64_t group, uint64_t from,
                             uint64_t from_incarnation, uint64_t to_incarnation);

/* node.c, once the groups are open: the members the member table lists
 * beyond the config's peers join the topology (and the transport). */
void rd_membership_load(struct rd_node *n);

/* ---- peers.c ---- */

/* Create the transport, attach it to the forwarder and register every
 * other member as a peer. Returns 0 or an RD_E* code with a message. */
int rd_peers_start(struct rd_node *n, char *msg);

/* Free the transport (calls in flight are answered with RD_ESHUTDOWN);
 * idempotent. */
void rd_peers_stop(struct rd_node *n);

/* A member added while running (a group-0 conf change, membership.c): its
 * transport peer and outgoing batch. No-op before rd_peers_start and for
 * this node; an address change updates the peer. */
int rd_peers_add(struct rd_node *n, const struct rd_member *m, char *msg);

/* rd_peers_stop, then free the batches and the snapshot receive state. */
void rd_peers_free(struct rd_node *n);

/* Encode core message `m` into its destination's batch at once (the
 * core's buffers may be reused after this returns). A message to an
 * unknown node is logged and dropped. */
void rd_peers_queue(struct rd_node *n, const struct rd_message *m);

/* Hand every non-empty batch to the transport as one frame; a frame the
 * transport refuses is counted and dropped (Raft retransmits). */
void rd_peers_flush(struct rd_node *n);

/* True when a batch holds messages not yet flushed. */
bool rd_peers_pending(const struct rd_node *n);

/* Step `m` (addressed to this node) into its group's core and wake the
 * loop; a message for a group not hosted here, or from a node that is not
 * a member of the group's non-empty configuration, is counted and dropped. */
void rd_peers_step(struct rd_node *n, const struct rd_message *m);

/* The node's transport; NULL before rd_peers_start and after
 * rd_peers_stop. */
struct rd_transport *rd_peers_transport(const struct rd_node *n);

/* Ping peers without an established connection (called every second). */
void rd_peers_keepalive(struct rd_node *n);

/* Reload the TLS files; a failure keeps the current ones and is logged. */
void rd_peers_reload(struct rd_node *n, const struct rd_config *cfg);

/* Whether peer `id` has an established connection; its RTT in *rtt_us
 * when it does. */
bool rd_peers_connected(const struct rd_node *n, uint64_t id, uint64_t *rtt_us);

/* Per-peer figures for /metrics (all zero for an unknown peer). */
struct rd_peer_figures {
	bool connected;
	uint64_t msgs_out, msgs_in, frames_out, bytes_out, bytes_in, rtt_us, lost,
	    reconnects;
	uint64_t node_heartbeats; /* empty batches sent as node heartbeats */
	uint64_t batches_dropped; /* batches the transport refused (queue full) */
	uint64_t batch_splits;    /* batches sent early, at max_frame_bytes */
	uint64_t oversized;       /* messages alone over max_frame_bytes, dropped */
	uint64_t restarts;        /* new processes of the peer seen connecting */
	uint64_t stale_dropped;   /* frames queued for its previous process, dropped */
};
void rd_peers_figures(const struct rd_node *n, uint64_t id, struct rd_peer_figures *f);

/* Node heartbeats (liveness.c): an empty batch, carrying the boot id, to
 * every peer that got no batch within `interval_ns` before `now_ns`. */
void rd_peers_node_heartbeats(struct rd_node *n, uint64_t now_ns, uint64_t interval_ns);

/* Raft messages dropped because their group is not hosted here. */
uint64_t rd_peers_unknown_group(const struct rd_node *n);

/* Raft messages dropped because their sender is not a member of the
 * group's configuration (rd_peers_step). */
uint64_t rd_peers_nonmember(const struct rd_node *n);

/* Frames the transport refused as malformed. */
uint64_t rd_peers_malformed(const struct rd_node *n);
struct rd_transport_stats;
/* The transport's endpoint-wide counters (zero before it starts). */
void rd_peers_transport_stats(const struct rd_node *n, struct rd_transport_stats *st);

/* ---- snapshots.c ---- */

/* Leader side: stream group g's current snapshot to `to`, then report the
 * outcome to the core (rd_raft_report_snapshot) and wake the loop. Call
 * after rd_raft_advance of the update that asked for the send. */
void rd_snapshots_send(struct rd_node *n, struct rd_group *g, uint64_t to);
/* Follower side: the transport's on_snapshot callback (`arg` is the node). */
struct Raftd__PeerFrame;
void rd_snapshots_on_frame(void *arg, uint64_t peer, const struct Raftd__PeerFrame *f);
/* Finish an install that storage refused with RD_EAGAIN, now that the
 * batch is committed (drive.c, after step 4); then step its message. */
void rd_snapshots_retry(struct rd_node *n);
/* Whether an install waits for the next commit (rd_snapshots_retry). */
bool rd_snapshots_pending(const struct rd_node *n);
/* The slot a stream for `group` starting now takes: the group's own, else a
 * free one, else the least recently used one that is not waiting to
 * install; n_slots when every slot waits (the chunk is then dropped and the
 * leader's core sends again later). The caller aborts what the slot held. */
size_t rd_snapshots_pick_slot(const struct rd_snap_in *slots, size_t n_slots,
                              uint64_t group);
/* Abort a receive in progress. */
void rd_snapshots_free(struct rd_node *n);

#endif
