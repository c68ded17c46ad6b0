/*
 * The runtime's side of other nodes (peers.c, snapshots.c, liveness.c):
 * batches to peers, snapshot streams, node liveness.
 * Part of the runtime's internal state (node_internal.h); not a public
 * interface.
 */
#ifndef RD_MULTIRAFT_PEERS_H
#define RD_MULTIRAFT_PEERS_H

#include <stdbool.h>
#include <stdint.h>

#include "cluster/topology.h"
#include "raft/raft.h"

#include "multiraft/waiter.h"

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
	struct rd_live_peer peers[RD_TOPOLOGY_MAX_MEMBERS];
	unsigned n_peers;
	uint64_t down_events;              /* peers that stopped being live */
	uint64_t quiesces;                 /* groups quiesced here */
	uint64_t wakeups[RD_WAKE_MAX + 1]; /* by enum rd_raft_wake */
};

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
	uint64_t queued_bytes;    /* queued for it, not yet handed to QUIC */
	uint64_t credit_waits;    /* a stream to it had bytes and no credit */
};
/* Fill *f with peer `id`'s figures (all zero when it is no peer). */
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
