/*
 * Membership in the runtime (membership.c, member_ops.c, replicas.c,
 * replace.c, placement_host.c, placement_drive.c, join.c): registration, members add /
 * remove / promote, replica identity, placement, joining. Part of the runtime's internal
 * state (node_internal.h); not a public interface.
 */
#ifndef RD_MULTIRAFT_MEMBERSHIP_H
#define RD_MULTIRAFT_MEMBERSHIP_H

#include <stdbool.h>
#include <stdint.h>

#include "cluster/members.h"
#include "cluster/placement.h"
#include "storage/storage.h"

struct Raftd__ClientRequest;

#include "multiraft/waiter.h"

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
	bool replace; /* part of replacing a replica (replace.c) */
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
	struct rd_member_cache cache[RD_TOPOLOGY_MAX_MEMBERS];
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
	uint64_t founded_ns;                 /* bootstrap campaigns not before (node.c) */
	bool clear[RD_TOPOLOGY_MAX_MEMBERS]; /* by topo.members index: answered 0 */
	struct rd_member_probe_ctx {
		struct rd_node *n;
		unsigned idx;
	} probe_ctx[RD_TOPOLOGY_MAX_MEMBERS];
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

#define RD_PLACE_UNPLACED_MAX 64

struct rd_place_call {
	struct rd_node *n;
	uint64_t peer;
	bool in_flight;
	/* The callee's last answer: groups it hosts that their target does
	 * not name (PlacementResponse.unplaced), for the next round's close
	 * list. */
	uint32_t n_unplaced;
	uint64_t unplaced[RD_PLACE_UNPLACED_MAX];
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
	uint64_t closed; /* replicas moved away from this node and closed */
	/* Last round, for metrics: per node id, target replicas and leaders. */
	unsigned n_nodes;
	uint64_t node_ids[RD_TOPOLOGY_MAX_MEMBERS];
	uint32_t node_replicas[RD_TOPOLOGY_MAX_MEMBERS];
	uint32_t node_leaders[RD_TOPOLOGY_MAX_MEMBERS];
	uint64_t decommission_logged; /* leaving node whose removal was asked */
};

/* ---- membership.c ---- */

/* Read node `id`'s registration from the durable state machine of group 0.
 * 0 and *r, RD_ENOTFOUND, or another RD_E* code. */
int rd_membership_read_record(struct rd_node *n, uint64_t id, struct rd_member_record *r);

/* ---- replace.c: replacing a wiped node's replicas ---- */

/* Group-0 leader: a probe showed node `peer` running `incarnation`, not the
 * registered one: start replacing its replicas. */
void rd_membership_note_replacement(struct rd_node *n, uint64_t peer,
                                    uint64_t incarnation);

/* Group-0 leader: carry the replacements on from what the groups' logs say
 * (one change at a time per group). Called every second. */
void rd_membership_reconcile(struct rd_node *n);

/* ---- member_ops.c: raftctl members add / remove / promote ---- */

/* Start a membership op of `kind` for `node` (its address `addr`,
 * `incarnation` for an add) in `group`, handed to `via` when nonzero; as
 * part of a replacement or placement flow (retried by the next round, so
 * refusals of promotions and handed-over ops are logged at debug). A
 * no-op while one for the same group and node runs. */
void rd_membership_flow_op(struct rd_node *n, uint8_t kind, uint64_t group, uint64_t node,
                           uint64_t incarnation, const char *addr, uint64_t via);

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

/* ---- placement (placement_host.c: every node; placement_drive.c: the
 * group-0 leader's driver) ---- */

/* Allocate the driver's per-group state (n_slots set). 0 or RD_ENOMEM. */
int rd_placement_init(struct rd_node *n, char *msg);
void rd_placement_free(struct rd_node *n);

/* Read every data group's target placement from group 0's applied state
 * into n->topo.routing (and the topology version). */
void rd_placement_reload(struct rd_node *n);

/* Open the data groups this node is a target of and does not host, from
 * what storage holds of them or empty (the group's leader then adds this
 * node as a learner), and close the replicas moved away from this node
 * (placement_host.c, closable). Outside a loop iteration only. */
void rd_placement_host(struct rd_node *n);

/* The group-0 leader reports that group `id` removed this node: close
 * its replica here if it is hosted, not leading, and its target does not
 * name this node (placement_host.c, closable). */
void rd_placement_close_asked(struct rd_node *n, uint64_t id);

/* Up to `max` data groups hosted here, not led here, whose target does not
 * name this node, into `out`; returns how many. */
size_t rd_placement_unplaced(const struct rd_node *n, uint64_t *out, size_t max);

/* Every second: on the group-0 leader, one round of the driver
 * (cluster/placement.h): gather reports, decide, act. */
void rd_placement_tick(struct rd_node *n);

/* A peer's PeerRequest placement (the group-0 leader asking). */
void rd_placement_serve(struct rd_node *n, uint64_t peer,
                        const struct Raftd__PeerRequest *req,
                        struct rd_transport_responder *r);

/* Fill *r with group g's report (configuration, lags, replica
 * incarnations, busy) as its leader on this node sees it; g is led here. */
void rd_placement_report_local(const struct rd_node *n, const struct rd_group *g,
                               struct rd_place_report *r);

/* Hand leadership of g, led here, to `to` when `to` is a voter holding the
 * whole log and not reporting a slow disk (thesis §3.10); else nothing. */
void rd_placement_transfer_local(struct rd_node *n, struct rd_group *g, uint64_t to);

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

#endif
