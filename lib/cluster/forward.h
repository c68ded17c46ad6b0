/*
 * Forwarding: sending a client's write or read to the leader of its group
 * on another node, and getting the answer back; and, on the leader's side,
 * turning a peer's request into a request for the local runtime and its
 * outcome into the peer's answer.
 *
 * The runtime (lib/multiraft) owns the requests; this code sees each one
 * only as the `struct rd_forward` embedded in it, and reaches the runtime
 * only through `struct rd_forward_ops` (see lib/README.md, "Layers"):
 *
 *   runtime                          forwarder
 *   rd_forward_start(fw)  ------->   target(group) known? queue : wait
 *                         <-------   wake()                  (queued a send)
 *   rd_forward_flush      ------->   one RPC per target      (end of iteration)
 *                         <-------   done(fw, result)        (answered)
 *                         <-------   resubmit(fw)            (leader known now)
 *   rd_forward_retry / _expire       (called every tick)
 *   transport on_request  ------->   rd_forward_on_request
 *                         <-------   serve(request, reply)
 *   rd_forward_answer(reply, result) (once the runtime has the outcome)
 *
 * Batches: a send is queued per target node and leaves at the end of the
 * loop iteration (rd_forward_flush, called by the runtime after every
 * iteration): everything queued for one node goes in one RPC, a
 * ForwardBatchRequest (proto/raftd.proto) when it holds two or more
 * writes, cut at RD_FORWARD_BATCH_MAX items or max_batch_bytes (a read
 * goes alone: its answer's value may be of any size). A CAS_FAILED answer
 * in a batch leaves its current value out when the batch's answer would
 * not fit one frame otherwise. The leader serves each
 * item as it would a lone request, with the item's own deadline, and
 * answers once every item has its outcome, in one ForwardBatchResponse.
 * Each item keeps its own session, deadline and outcome class: the batch
 * is only how the bytes travel. An in-flight item whose deadline passes
 * before the batch's answer ends TIMEOUT at the next rd_forward_expire.
 *
 * A forward is in one of four states: waiting for a leader (in the
 * forwarder's wait queue, fw->target == 0), queued for fw->target (in its
 * send queue, fw->call == NULL), out to fw->target (in the in-flight list;
 * its RPC's call record points back at it), or done (handed back through
 * ops->done, never touched again by this code).
 * Detaching the call record (its slot for fw set to NULL) makes a late answer
 * harmless, which is how a forward follows the leader: when its target
 * stops being the group's leader (rd_forward_leader_changed, a lost
 * connection, a NOT_LEADER answer) it is detached and waits for the next
 * rd_forward_retry, which hands it back to the runtime to be sent to the
 * leader known then.
 *
 * Re-sending is safe only when the request cannot apply twice: a read, or
 * a write with a client session (the state machine answers a retried
 * (client_id, sequence) with its recorded result, thesis §6.3). The
 * runtime says so in fw->retry_safe. A write without a session is re-sent
 * only after an answer that says it was not applied (NOT_LEADER,
 * NO_LEADER, NOT_READY: the asked node never proposed it, or its entry
 * lost to another leader's); after a leader change or a lost connection
 * its outcome is unknown, so it waits for its RPC (which the old leader
 * may still answer) or ends with UNAVAILABLE.
 *
 * ops->resubmit runs only from rd_forward_retry, never from an answer or
 * from rd_forward_leader_changed: the runtime calls rd_forward_retry where
 * it may enter the Raft cores (outside a loop iteration's per-group pass;
 * see lib/multiraft/drive.c).
 *
 * Failure modes: a deadline passed with the request out answers TIMEOUT;
 * a lost connection re-sends a retry-safe forward and answers UNAVAILABLE
 * otherwise; NOT_LEADER or NO_LEADER from the asked node follows its hint
 * (at most RD_FORWARD_HOPS hops in a row), else waits for a leader; a
 * forward still waiting for a leader at its deadline answers NO_LEADER.
 * Leader hints from answers are remembered per group (rd_forward_hint) for
 * groups this node does not host.
 */
#ifndef RD_CLUSTER_FORWARD_H
#define RD_CLUSTER_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rd_topology;
struct rd_transport;
struct rd_transport_responder;
struct Raftd__PeerRequest;

#define RD_FORWARD_HOPS 3

/* Most items in one ForwardBatchRequest, both sides: a larger batch is
 * cut on sending and refused on receiving. */
#define RD_FORWARD_BATCH_MAX 1024

/* What one item costs in a batch besides its bytes, for the byte cap (an
 * over-estimate of its protobuf keys, lengths and integers). */
#define RD_FORWARD_ITEM_OVERHEAD 64

/* What a request asks for. */
enum { RD_OP_WRITE = 1, RD_OP_READ = 2, RD_OP_STALE_READ = 3 };

/* The outcome of a request, whoever asked (a local client or a peer that
 * forwarded it). `code` is a Raftd__ErrorCode value. */
struct rd_result {
	int code;
	const char *message; /* static or valid during the reply call */
	uint64_t leader_hint;
	uint64_t group;
	uint64_t index;
	bool has_value;
	bool found;
	const uint8_t *value;
	size_t value_len;
};

struct rd_forward_call;

/* One request on its way to a leader, embedded in the runtime's request
 * object. The runtime fills the first block before rd_forward_start; the
 * second is this code's. */
struct rd_forward {
	uint64_t group;
	uint8_t op;          /* RD_OP_* */
	const uint8_t *data; /* command or key, owned by the runtime until done */
	size_t len;
	uint64_t deadline_ns;
	bool no_forward; /* asked by a peer: answer NOT_LEADER rather than forward */
	bool retry_safe; /* a read or a write with a session: may be sent twice */

	uint32_t hops;                /* hint-following sends in a row */
	bool unknown;                 /* an earlier attempt's outcome is unknown */
	uint64_t target;              /* node the request is out to; 0 = waiting */
	struct rd_forward_call *call; /* the RPC while in flight */
	uint32_t slot;                /* fw's place in the call's items */
	struct rd_forward *next;      /* in the wait queue or a send queue */
	struct rd_forward *fl_prev, *fl_next; /* in the in-flight list */
};

/* A request a peer sent to this node, as the runtime serves it. The bytes
 * are valid during the serve call only. */
struct rd_forward_request {
	uint64_t group;
	uint8_t op; /* RD_OP_* */
	const uint8_t *data;
	size_t len;
	uint64_t deadline_ns;
};

/* Where the answer to a peer's request goes (see rd_forward_answer). */
struct rd_forward_reply;

struct rd_forward_ops {
	/* The leader of `group` as this node sees it (this node's own id when
	 * it leads), or for a group not hosted here the last hint an answer
	 * gave (rd_forward_hint) or the placement's; 0 when none is known. */
	uint64_t (*target)(void *ud, uint64_t group);
	/* `fw` is done with `res` (valid during the call). The forwarder has
	 * let go of `fw`: the runtime may free it. */
	void (*done)(void *ud, struct rd_forward *fw, const struct rd_result *res);
	/* A waiting forward whose group has a leader now: the forwarder has
	 * let go of `fw`; the runtime submits its request again (it may be
	 * served locally now) and calls rd_forward_start if it still has to be
	 * forwarded. */
	void (*resubmit)(void *ud, struct rd_forward *fw);
	/* Serve a peer's request: return 0 after taking it (then call
	 * rd_forward_answer(reply, ...) exactly once, later or at once), or a
	 * Raftd__ErrorCode to refuse it (the forwarder answers and frees
	 * `reply`). */
	int (*serve)(void *ud, const struct rd_forward_request *req,
	             struct rd_forward_reply *reply);
	/* Monotonic time in nanoseconds. */
	uint64_t (*now_ns)(void *ud);
	/* A send was queued: make sure rd_forward_flush runs at the end of
	 * this loop iteration (NULL: the caller flushes itself). */
	void (*wake)(void *ud);
};

/* The sends queued for one node, in order. */
struct rd_forward_out {
	uint64_t to;
	struct rd_forward *head, *tail; /* (a tail, not a link: the array moves) */
	size_t n;
};

struct rd_forward_stats {
	uint64_t batches_sent;     /* ForwardBatchRequests that left */
	uint64_t batched_items;    /* the items they carried */
	uint64_t batches_rejected; /* malformed batches refused, or answers dropped */
};

struct rd_forwarder {
	const struct rd_forward_ops *ops;
	void *ud;
	uint64_t self;                  /* this node's id */
	unsigned default_timeout_ms;    /* for peer requests without a deadline */
	const struct rd_topology *topo; /* owned by the runtime */
	struct rd_transport *t;         /* NULL while stopped */
	struct rd_forward *wait_head;   /* waiting for a leader, FIFO */
	struct rd_forward **wait_link;  /* where the next one is linked */
	struct rd_forward *inflight;    /* out to a node, doubly linked */
	uint64_t *hints;                /* [n_hints]: leader hint per group, 0 = none */
	size_t n_hints;
	struct rd_forward_out *out; /* [n_out]: send queues, one per node seen */
	size_t n_out;
	size_t max_batch_bytes; /* item bytes (and overheads) per batch */
	struct rd_forward_stats stats;
	bool stopping;
};

/* Set up `f`. `topo` and `ud` must outlive it; the transport is attached
 * later (rd_forward_attach). Nothing is allocated. A batch holds at most
 * max_batch_bytes of items (RD_FORWARD_ITEM_OVERHEAD each included; the
 * runtime sets it from [raft] max_msg_bytes, which the RPC frame cap
 * allows, transport.h); one item larger than that goes alone. */
void rd_forward_init(struct rd_forwarder *f, const struct rd_forward_ops *ops, void *ud,
                     uint64_t self, const struct rd_topology *topo,
                     unsigned default_timeout_ms);

/* Use transport `t` (NULL to detach before freeing the transport). */
void rd_forward_attach(struct rd_forwarder *f, struct rd_transport *t);

/* The node is shutting down: answers that arrive from now on resolve their
 * forwards with SHUTTING_DOWN. */
void rd_forward_shutdown(struct rd_forwarder *f);

/* Forward fw's request to the group's leader (queued for the next
 * rd_forward_flush), or wait until one is known. Precondition: fw's
 * request fields are set and fw is not already held by the forwarder.
 * ops->done may run before this returns (a peer's request that must not be
 * forwarded). Returns true when a send to a known leader was queued (for
 * the counters). */
bool rd_forward_start(struct rd_forwarder *f, struct rd_forward *fw);

/* Send everything queued: one RPC per target node (a ForwardBatchRequest
 * when it holds two or more items, cut at the caps). A forward whose
 * deadline passed ends TIMEOUT; one that cannot leave (no transport, a
 * local failure) waits for the next rd_forward_retry. Called by the
 * runtime at the end of every loop iteration; may call ops->done. */
void rd_forward_flush(struct rd_forwarder *f);

/* Hand every waiting forward whose group has a leader now back through
 * ops->resubmit (the queue is taken as it is: one that waits again stays
 * for the next call). Called every tick and when a leader changes. */
void rd_forward_retry(struct rd_forwarder *f);

/* The leader of `group` changed as this node sees it: every in-flight
 * retry-safe forward of the group whose target is no longer the leader is
 * detached and waits for the next rd_forward_retry. Never calls the
 * runtime back. */
void rd_forward_leader_changed(struct rd_forwarder *f, uint64_t group);

/* The leader of `group` the last answer from a peer named (0 = none). */
uint64_t rd_forward_hint(const struct rd_forwarder *f, uint64_t group);

/* Free the hint table and send queues (the forwarder must hold no
 * forwards). */
void rd_forward_free(struct rd_forwarder *f);

/* Resolve every waiting forward whose deadline passed with NO_LEADER
 * (TIMEOUT when an earlier attempt's outcome is unknown). A lone in-flight
 * forward ends with its RPC's deadline; an item of a batch whose deadline
 * passed is detached and ends TIMEOUT here. */
void rd_forward_expire(struct rd_forwarder *f, uint64_t now_ns);

/* Resolve every waiting or queued forward with `res` (shutdown). */
void rd_forward_fail_all(struct rd_forwarder *f, const struct rd_result *res);

/* The transport's on_request callback body: answer a ping, or decode a
 * forwarded write or read, or a batch of them, and hand each to
 * ops->serve. A batch is answered once all its items are; a malformed one
 * (empty, over RD_FORWARD_BATCH_MAX, an item of another kind) is refused
 * whole with INVALID and counted in stats.batches_rejected. `r` is
 * answered exactly once, now or through rd_forward_answer. */
void rd_forward_on_request(struct rd_forwarder *f, uint64_t peer,
                           const struct Raftd__PeerRequest *req,
                           struct rd_transport_responder *r);

/* Answer the peer request `reply` stands for with `res` and free `reply`.
 * Has the shape of the runtime's reply callbacks (`request_id` unused). */
void rd_forward_answer(void *reply, uint64_t request_id, const struct rd_result *res);

#endif
