/*
 * Requests waiting in the node runtime (waiter.c): for an apply, a read
 * index, readiness or a leader; the forwarder's callbacks.
 * Part of the runtime's internal state (node_internal.h); not a public
 * interface.
 */
#ifndef RD_MULTIRAFT_WAITER_H
#define RD_MULTIRAFT_WAITER_H

#include <stdbool.h>
#include <stdint.h>

#include "cluster/forward.h"

struct rd_group;
struct rd_node;

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
	/* No waiter in the queue has an earlier deadline (a lower bound:
	 * set by push and insert, recomputed by expire; a waiter taken off
	 * the queue elsewhere leaves it low, which costs one scan). Lets
	 * expire skip the scan of a queue whose oldest deadline is far,
	 * which under load is every tick: the ticking groups each hold
	 * hundreds of proposals. */
	uint64_t soonest_ns;
};

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

#endif
