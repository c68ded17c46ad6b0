/*
 * Envelopes: an opaque message to a vShard, routed to the node that leads
 * the vShard's group and answered by an application handler there
 * (proto/raftd.proto, "Envelopes"). This file is the routing: the sending
 * side (vShard -> group -> leader, one RPC, NOT_LEADER hints followed) and
 * the receiving side (a peer's VShardEnvelope). Delivery to a handler is the
 * runtime's (lib/multiraft/envelopes.c), reached only through
 * `struct rd_envelope_ops` (lib/README.md, "Layers"):
 *
 *   runtime                         router
 *   rd_envelope_send(m, done) ---->  leader(group) == self ? deliver : RPC
 *                             <----  deliver(m, done)      (local handler)
 *                             <----  done(arg, result)     (exactly once)
 *   rd_envelope_tick (every tick)    retry the ones waiting for a leader,
 *                                    expire them at their deadline
 *   transport on_request ------>     rd_envelope_on_request -> deliver
 *
 * Envelopes are neither replicated nor persisted: delivery is at most once.
 * An envelope is sent again (to a hinted leader) only after a node answered
 * that it did not deliver it (NOT_LEADER, NO_LEADER); a lost connection or
 * a deadline passed while it was out ends it with UNAVAILABLE or TIMEOUT,
 * "outcome unknown".
 *
 * Bounds: a payload over `max_payload` is refused with TOO_LARGE; with
 * `max_inflight` envelopes in flight on this node (sent from here plus
 * delivered here), a new one is refused with BUSY. Nothing queues without
 * bound: an envelope waiting for a leader counts toward `max_inflight`.
 */
#ifndef RD_CLUSTER_ENVELOPE_H
#define RD_CLUSTER_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rd_topology;
struct rd_transport;
struct rd_transport_responder;
struct Raftd__PeerRequest;

/* One envelope as the router and the runtime see it. The bytes are
 * borrowed for the call they are passed to. */
struct rd_envelope_msg {
	uint32_t vshard;
	uint64_t group;
	uint32_t kind;
	uint64_t source; /* node it was sent from */
	const uint8_t *payload;
	size_t len;
	uint64_t deadline_ns;
};

/* The outcome. `code` is a Raftd__ErrorCode value; the pointers are valid
 * during the done call only. */
struct rd_envelope_result {
	int code;
	const char *message;
	uint64_t leader_hint;
	uint64_t node;  /* the node that delivered it (OK, APP_ERROR) */
	uint64_t group; /* the vShard's group */
	const uint8_t *payload;
	size_t len;
};

typedef void (*rd_envelope_done_fn)(void *arg, const struct rd_envelope_result *res);

struct rd_envelope_ops {
	/* The leader of `group` as this node sees it (this node's id when it
	 * leads), or the placement's hint for a group not hosted here; 0 when
	 * none is known. */
	uint64_t (*leader)(void *ud, uint64_t group);
	/* Deliver `m` to a local handler: return 0 and call done(arg, ...)
	 * exactly once later (never before returning), or return a
	 * Raftd__ErrorCode (NO_HANDLER, BUSY, ...) with a reason in *why and
	 * never call done. */
	int (*deliver)(void *ud, const struct rd_envelope_msg *m,
	               rd_envelope_done_fn done, void *arg, const char **why);
	/* Monotonic time in nanoseconds. */
	uint64_t (*now_ns)(void *ud);
};

/* Counters, for /metrics: failures by Raftd__ErrorCode value. */
#define RD_ENVELOPE_CODES 16
struct rd_envelope_stats {
	uint64_t sent;                      /* accepted from local clients */
	uint64_t received;                  /* accepted from peers */
	uint64_t forwarded;                 /* RPCs sent (hops included) */
	uint64_t failed[RD_ENVELOPE_CODES]; /* sender side, by code */
};

struct rd_out_envelope;

struct rd_envelopes {
	const struct rd_envelope_ops *ops;
	void *ud;
	uint64_t self;
	const struct rd_topology *topo; /* owned by the runtime */
	struct rd_transport *t;         /* NULL while stopped */
	size_t max_payload;
	unsigned max_inflight;
	unsigned inflight;               /* sent from here + delivered here */
	struct rd_out_envelope *waiting; /* for a leader to be known */
	bool stopping;
	struct rd_envelope_stats stats;
};

/* Set up `e`; `ops`, `ud` and `topo` outlive it. Nothing is allocated. */
void rd_envelope_init(struct rd_envelopes *e, const struct rd_envelope_ops *ops, void *ud,
                      uint64_t self, const struct rd_topology *topo, size_t max_payload,
                      unsigned max_inflight);

/* Use transport `t` (NULL before freeing it). */
void rd_envelope_attach(struct rd_envelopes *e, struct rd_transport *t);

/* Route `m` (m->group set from the routing table, m->source = self) and
 * call done(arg, result) exactly once, possibly before this returns. The
 * payload is copied when the envelope has to wait or travel. */
void rd_envelope_send(struct rd_envelopes *e, const struct rd_envelope_msg *m,
                      rd_envelope_done_fn done, void *arg);

/* Every tick: send the waiting envelopes whose group has a leader now; end
 * those past their deadline with NO_LEADER (not delivered). */
void rd_envelope_tick(struct rd_envelopes *e, uint64_t now_ns);

/* Shutdown: new envelopes are refused and the waiting ones end with
 * SHUTTING_DOWN; envelopes out on RPCs end when the transport is freed. */
void rd_envelope_shutdown(struct rd_envelopes *e);

/* The transport's on_request body for a PeerRequest whose body is
 * `vshard`: deliver it here if this node leads its group, else answer
 * NOT_LEADER / NO_LEADER. `r` is answered exactly once. */
void rd_envelope_on_request(struct rd_envelopes *e, uint64_t peer,
                            const struct Raftd__PeerRequest *req,
                            struct rd_transport_responder *r);

#endif
