/*
 * Requests in flight: proposals waiting to apply, reads waiting for a read
 * index, forwards waiting for a leader or its answer, readiness waits.
 *
 * A waiter lives in exactly one queue and is resolved exactly once: by its
 * event (apply, read state, answer) or by its deadline (TIMEOUT), or by
 * shutdown (SHUTTING_DOWN).
 */
#include <stdlib.h>
#include <string.h>

#include "multiraft/node_internal.h"
#include "raftd.pb-c.h"
#include "util/err.h"
#include "util/log.h"

struct rd_waiter *rd_waiter_new(enum rd_waiter_kind kind, rd_reply_fn reply, void *ud,
                                uint64_t request_id, uint64_t deadline_ns)
{
	struct rd_waiter *w = calloc(1, sizeof *w);
	if (w == NULL)
		return NULL;
	w->kind = kind;
	w->reply = reply;
	w->reply_ud = ud;
	w->request_id = request_id;
	w->deadline_ns = deadline_ns;
	return w;
}

void rd_waiter_finish(struct rd_waiter *w, const struct rd_result *res)
{
	w->reply(w->reply_ud, w->request_id, res);
	free(w->data);
	free(w->remote_value);
	free(w);
}

void rd_waitq_push(struct rd_waitq *q, struct rd_waiter *w)
{
	w->next = NULL;
	if (q->tail != NULL)
		q->tail->next = w;
	else
		q->head = w;
	q->tail = w;
}

static void unlink_after(struct rd_waitq *q, struct rd_waiter *prev, struct rd_waiter *w)
{
	if (prev != NULL)
		prev->next = w->next;
	else
		q->head = w->next;
	if (q->tail == w)
		q->tail = prev;
}

void rd_waitq_expire(struct rd_waitq *q, uint64_t now_ns)
{
	struct rd_waiter *prev = NULL, *w = q->head;
	while (w != NULL) {
		struct rd_waiter *next = w->next;
		if (w->deadline_ns <= now_ns) {
			struct rd_result r = {
			    .code = w->kind == RD_WAIT_READY
			                ? RAFTD__ERROR_CODE__NOT_READY
			                : RAFTD__ERROR_CODE__TIMEOUT,
			    .message = w->kind == RD_WAIT_FORWARD && w->target == 0
			                   ? "no leader known before the deadline"
			                   : "deadline passed",
			    .group = w->group};
			if (w->kind == RD_WAIT_FORWARD && w->target == 0)
				r.code = RAFTD__ERROR_CODE__NO_LEADER;
			unlink_after(q, prev, w);
			rd_waiter_finish(w, &r);
		} else {
			prev = w;
		}
		w = next;
	}
}

void rd_waitq_fail_all(struct rd_waitq *q, const struct rd_result *res)
{
	struct rd_waiter *w = q->head;
	q->head = q->tail = NULL;
	while (w != NULL) {
		struct rd_waiter *next = w->next;
		rd_waiter_finish(w, res);
		w = next;
	}
}

void rd_node_serve_read(struct rd_node *n, struct rd_waiter *w)
{
	struct rd_result r = {
	    .code = RAFTD__ERROR_CODE__OK, .group = w->group, .has_value = true};
	char msg[RD_ERRMSG_SIZE];
	uint8_t *val = NULL;
	size_t len = 0;
	struct rd_group *g = rd_node_group(n, w->group);
	const struct rd_applier *a = g != NULL ? g->applier : &n->data_applier;
	int rv = a->ops->read(a->ud, w->group, w->data, w->len, &val, &len, msg);

	if (rv == 0) {
		r.found = true;
		r.value = val;
		r.value_len = len;
	} else if (rv != RD_ENOTFOUND) {
		r.code = RAFTD__ERROR_CODE__INTERNAL;
		r.has_value = false;
		r.message = msg;
	}
	r.index = g != NULL ? rd_raft_applied_index(g->raft) : 0;
	rd_waiter_finish(w, &r);
	free(val);
}

/* Start a local proposal on group g, whose leader this node is. */
static void propose_local(struct rd_node *n, struct rd_group *g, struct rd_waiter *w)
{
	struct rd_result r = {.group = g->id};
	uint64_t index;
	int rv =
	    rd_raft_propose(g->raft, RD_ENTRY_NORMAL, w->data, (uint32_t)w->len, &index);

	switch (rv) {
	case 0:
		n->loop.proposals++;
		g->proposals++;
		w->kind = RD_WAIT_PROPOSE;
		w->index = index;
		w->term = rd_raft_term(g->raft);
		rd_waitq_push(&g->props, w);
		rd_node_wake(n);
		return;
	case RD_EBUSY:
		r.code = RAFTD__ERROR_CODE__BUSY;
		r.message = "leadership transfer in progress";
		break;
	case RD_ETOOBIG:
		r.code = RAFTD__ERROR_CODE__TOO_LARGE;
		r.message = "command larger than [raft] max_msg_bytes";
		break;
	default:
		r.code = RAFTD__ERROR_CODE__NOT_LEADER;
		r.leader_hint = rd_raft_leader(g->raft);
		r.message = rd_strerror(rv);
		break;
	}
	rd_waiter_finish(w, &r);
}

static void read_local(struct rd_node *n, struct rd_group *g, struct rd_waiter *w)
{
	int rv;

	w->kind = RD_WAIT_READ;
	w->ctx = g->next_ctx++;
	rv = rd_raft_read_index(g->raft, w->ctx);
	if (rv != 0) {
		struct rd_result r = {.code = RAFTD__ERROR_CODE__NO_LEADER,
		                      .group = g->id,
		                      .message = "no leader known"};
		rd_waiter_finish(w, &r);
		return;
	}
	rd_waitq_push(&g->reads, w);
	rd_node_wake(n);
}

/* Whom to forward to: the group's leader as this node sees it, or, for a
 * group not hosted here, its placement's leadership hint. */
static uint64_t forward_target(const struct rd_node *n, uint64_t group)
{
	const struct rd_group *g = rd_node_group(n, group);
	const struct rd_group_placement *p;

	uint64_t to;

	if (g != NULL) {
		to = rd_raft_leader(g->raft);
	} else {
		p = rd_routing_placement(&n->topo.routing, (uint32_t)group);
		to = p != NULL ? p->replicas[0] : 0;
	}
	return to == n->cfg.node_id ? 0 : to;
}

static void try_forward(struct rd_node *n, struct rd_waiter *w)
{
	uint64_t to = forward_target(n, w->group);

	w->kind = RD_WAIT_FORWARD;
	w->target = to;
	if (w->no_forward) {
		struct rd_result r = {.code = to != 0 ? RAFTD__ERROR_CODE__NOT_LEADER
		                                      : RAFTD__ERROR_CODE__NO_LEADER,
		                      .leader_hint = to,
		                      .group = w->group,
		                      .message =
		                          to != 0 ? "not the leader" : "no leader known"};
		rd_waiter_finish(w, &r);
		return;
	}
	if (to == 0) {
		/* No leader known (or we are mid-election): wait for one. */
		w->target = 0;
		rd_waitq_push(&n->forwards, w);
		return;
	}
	/* While its RPC is out, the waiter belongs to the RPC's callback and
	 * sits in no queue; the RPC's deadline ends it. */
	n->loop.forwarded++;
	if (rd_node_group(n, w->group) != NULL)
		rd_node_group(n, w->group)->forwarded++;
	rd_peers_forward(n, w, to);
}

void rd_node_submit(struct rd_node *n, struct rd_waiter *w)
{
	struct rd_group *g = rd_node_group(n, w->group);

	if (n->stopping) {
		struct rd_result r = {.code = RAFTD__ERROR_CODE__SHUTTING_DOWN,
		                      .message = "node is shutting down"};
		rd_waiter_finish(w, &r);
		return;
	}
	if (w->op == RD_OP_STALE_READ && g != NULL) {
		rd_node_serve_read(n, w);
		return;
	}
	if (g != NULL && rd_raft_role(g->raft) == RD_RAFT_LEADER) {
		if (w->op == RD_OP_WRITE)
			propose_local(n, g, w);
		else
			read_local(n, g, w);
		return;
	}
	/* A follower serves linearizable reads itself: the core fetches the
	 * read index from the leader (thesis §6.4). */
	if (g != NULL && w->op == RD_OP_READ && rd_raft_leader(g->raft) != 0) {
		read_local(n, g, w);
		return;
	}
	try_forward(n, w);
}

void rd_node_retry_forwards(struct rd_node *n)
{
	/* Take the queue as it is now: a retry that fails again goes back into
	 * the queue and waits for the next tick rather than spinning here. */
	struct rd_waiter *w = n->forwards.head;

	n->forwards.head = n->forwards.tail = NULL;
	while (w != NULL) {
		struct rd_waiter *next = w->next;
		if (w->target == 0 && forward_target(n, w->group) != 0)
			rd_node_submit(n, w);
		else
			rd_waitq_push(&n->forwards, w);
		w = next;
	}
}
