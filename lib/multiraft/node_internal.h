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
 *   member_ops.c, membership.c, replicas.c, replace.c, placement_host.c,
 *   placement_drive.c, join.c
 *               membership, placement and joining
 * Declarations by concern, included here: waiter.h (waiters and their
 * queues), health.h (loop figures, gray failures, canary), peers.h (peers,
 * snapshot streams, node liveness), membership.h (the five files above);
 * this file keeps the group, the node and what node.c, group.c, drive.c
 * and the request-serving files share.
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
#include "raft/conf.h"
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

#include "multiraft/waiter.h"
#include "multiraft/health.h"
#include "multiraft/peers.h"
#include "multiraft/membership.h"

#define RD_GROUP_MAX_REPLICAS (2 * RD_RAFT_MAX_MEMBERS)

struct rd_group {
	uint64_t id;
	struct rd_raft *raft;
	const struct rd_applier *applier;
	struct rd_raft_update u;
	/* Shared (raft/conf.h), like the core's, so the loop compares
	 * pointers to see a change. */
	const struct rd_conf_state *conf_persisted;
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
	/* The group-0 leader says this replica's group removed it (its
	 * leader's report names this node in no role, with no change
	 * pending) and the target does not name this node: placement_host.c
	 * closes it. */
	bool close_asked;
	/* Replica identities (cluster/members.h; replicas.c): the
	 * incarnation of each node this group's log added with one, latest
	 * add wins; a member not listed is a founding replica (0). On the
	 * heap, at most RD_GROUP_MAX_REPLICAS: a group whose members all
	 * founded it (most) lists none and allocates nothing. */
	struct rd_replica_inc {
		uint64_t id, incarnation;
	} * replicas;
	unsigned n_replicas, cap_replicas;
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

/* The core's configuration of group `group` from the node's config: the
 * fields every replica of this node shares (timers, windows, limits,
 * pre-vote, check-quorum, quiescence, the in-memory tail). The caller adds
 * the seed, the log source and what storage holds (membership, hard
 * state, entries). Precondition: `cfg` passed rd_config validation. */
void rd_group_raft_config(const struct rd_config *cfg, uint64_t group,
                          struct rd_raft_config *rc);

/* Host group `id`: restore it from storage, or create it with `voters`
 * (n_voters <= RD_RAFT_MAX_MEMBERS) when storage has no state for it.
 * Precondition: storage is open and n->groups has a slot for `id`. Returns
 * 0 or an RD_E* code with a message. */
int rd_group_open(struct rd_node *n, uint64_t id, const uint64_t *voters, size_t n_voters,
                  char *msg);

/* Free a group and its core (NULL is fine). Its waiters must have been
 * resolved. */
void rd_group_free(struct rd_group *g);
/* A quiesced group's update copies (drive.c keep_update) and apply
 * results go back to the allocator once its last update is done with:
 * some 8 KiB a group, as the message copies start at 16 of some 400
 * bytes. An idle group holds none; one that wakes allocates them again.
 * Precondition: g->u holds no copied update (drive.c drop_update). */
void rd_group_release_idle(struct rd_group *g);
/* Called once a second: when many groups quiesced since the last trim
 * (an eighth of those hosted, at least 64), give the allocator's free
 * pages back to the system (malloc_trim), once none quiesced in the last
 * second, and at most once every 30 s.
 * Before it, the storage batch gives back its buffers, which the start's
 * batch (every group) sized (rd_storage_batch_trim).
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

/* The node's envelope figures, owned by it and valid until it is freed. */
const struct rd_env_figures *rd_node_envelope_figures(const struct rd_node *n);

#endif
