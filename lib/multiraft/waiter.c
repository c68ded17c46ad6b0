/*
 * Requests in flight: proposals waiting to apply, reads waiting for a read
 * index, forwards waiting for a leader or its answer, readiness waits.
 *
 * A waiter sits in at most one queue: its group's props or reads, the
 * ready queue, or, while forwarded, the forwarder's wait queue
 * (cluster/forward.h) or none at all while its RPC is out (the RPC's
 * callback holds it then). It is resolved exactly once: by its event
 * (apply, read state, answer), by its deadline (TIMEOUT), or by shutdown
 * (SHUTTING_DOWN).
 *
 * The forwarder's callbacks (rd_node_forward_ops) live here too: a
 * forwarded waiter is the runtime object the cluster code sees only as
 * the struct rd_forward inside it.
 */
#include <assert.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "multiraft/node_internal.h"
#include "raftd.pb-c.h"
#include "storage/kv.h"
#include "transport/wire.h"
#include "util/err.h"
#include "util/list.h"
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

struct rd_waiter *rd_waiter_new_write(rd_reply_fn reply, void *ud, uint64_t request_id,
                                      uint64_t deadline_ns, uint64_t group,
                                      const struct rd_kv_cmd *cmd, int *err)
{
	size_t size = rd_kv_encoded_size(cmd);
	struct rd_waiter *w =
	    rd_waiter_new(RD_WAIT_FORWARD, reply, ud, request_id, deadline_ns);

	*err = RD_ENOMEM;
	if (w == NULL || (w->data = malloc(size)) == NULL)
		goto err_after_waiter;
	*err = rd_kv_encode(cmd, w->data, size, &w->len);
	if (*err != 0)
		goto err_after_data;
	w->client_id = cmd->client_id;
	w->sequence = cmd->sequence;
	w->group = group;
	w->op = RD_OP_WRITE;
	return w;

err_after_data:
	free(w->data);
err_after_waiter:
	free(w);
	return NULL;
}

void rd_waiter_finish(struct rd_waiter *w, const struct rd_result *res)
{
	w->reply(w->reply_ud, w->request_id, res);
	free(w->data);
	free(w->remote_value);
	free(w);
}

/* Keep q->soonest_ns a lower bound of the deadlines with w about to join. */
static void note_deadline(struct rd_waitq *q, const struct rd_waiter *w)
{
	if (q->head == NULL || w->deadline_ns < q->soonest_ns)
		q->soonest_ns = w->deadline_ns;
}

void rd_waitq_push(struct rd_waitq *q, struct rd_waiter *w)
{
	note_deadline(q, w);
	RD_QUEUE_PUSH(q->head, q->tail, w, next);
}

void rd_waitq_insert(struct rd_waitq *q, struct rd_waiter *w)
{
	struct rd_waiter *prev = NULL, *cur = q->head;

	note_deadline(q, w);

	/* Almost always at the tail: walk only when the tail is past w. */
	if (q->tail != NULL && q->tail->index > w->index) {
		while (cur != NULL && cur->index <= w->index) {
			prev = cur;
			cur = cur->next;
		}
	} else {
		prev = q->tail;
		cur = NULL;
	}
	w->next = cur;
	if (prev != NULL)
		prev->next = w;
	else
		q->head = w;
	if (cur == NULL)
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
	uint64_t soonest = UINT64_MAX;

	if (w == NULL || now_ns < q->soonest_ns)
		return;
	/* A waiter pushed while this scan runs (from a finish) lowers it
	 * again; the scan's own minimum is taken in at the end. */
	q->soonest_ns = UINT64_MAX;
	while (w != NULL) {
		struct rd_waiter *next = w->next;
		if (w->deadline_ns <= now_ns) {
			struct rd_result r = {.code = w->kind == RD_WAIT_READY
			                                  ? RAFTD__ERROR_CODE__NOT_READY
			                                  : RAFTD__ERROR_CODE__TIMEOUT,
			                      .message = "deadline passed",
			                      .group = w->group};
			unlink_after(q, prev, w);
			rd_waiter_finish(w, &r);
		} else {
			if (w->deadline_ns < soonest)
				soonest = w->deadline_ns;
			prev = w;
		}
		w = next;
	}
	if (soonest < q->soonest_ns)
		q->soonest_ns = soonest;
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
		r.code = rd_err_to_wire(rv);
		r.has_value = false;
		r.message = msg;
	}
	r.index = g != NULL ? rd_raft_applied_index(g->raft) : 0;
	rd_waiter_finish(w, &r);
	free(val);
}

void rd_waiter_track(struct rd_group *g, struct rd_waiter *w, uint64_t index,
                     uint64_t term)
{
	w->kind = RD_WAIT_PROPOSE;
	w->index = index;
	w->term = term;
	/* In index order: a leader that lost its term and won again may
	 * propose below a waiter of its earlier term, whose entry the new one
	 * replaced (rd_drive_resolve_applied relies on the order). */
	rd_waitq_insert(&g->props, w);
}

/*
 * The group whose replica on this node serves requests for group `id`, or
 * NULL when this node holds none that may: then the request goes to the
 * leader as for a group this node never held. A replica moved away (group
 * 0's placement no longer lists this node for the group, placement_drive.c)
 * keeps its state on this node, but a removed server hears no more of its
 * group (thesis §4.2.2: the leader replicates only to the configuration),
 * so its view stops where the removal found it: the leader it followed,
 * maybe gone since; an applied index the leader's commit has left behind,
 * so a read it served (ReadIndex, §6.4) or a write answered elsewhere and
 * waiting to be applied here would wait for entries that never come. A
 * replica that leads still serves: a removed leader steps down by itself
 * once its removal commits (§4.2.2).
 */
static struct rd_group *serving_group(const struct rd_node *n, uint64_t id)
{
	struct rd_group *g = rd_node_group(n, id);

	if (g == NULL || id == 0 || rd_raft_role(g->raft) == RD_RAFT_LEADER ||
	    rd_routing_has_replica(&n->topo.routing, (uint32_t)id, n->cfg.node_id))
		return g;
	return NULL;
}

/* Start a local proposal on group g, whose leader this node is. */
static void propose_local(struct rd_node *n, struct rd_group *g, struct rd_waiter *w)
{
	struct rd_result r = {.group = g->id};
	uint64_t index;
	int rv =
	    rd_raft_propose(g->raft, RD_ENTRY_NORMAL, w->data, (uint32_t)w->len, &index);

	if (rv == 0) {
		n->loop.proposals++;
		g->proposals++;
		rd_waiter_track(g, w, index, rd_raft_term(g->raft));
		rd_node_touch(n, g);
		rd_node_wake(n);
		return;
	}
	r.code = rd_err_to_wire(rv);
	switch (rv) {
	case RD_EBUSY:
		r.message = "leadership transfer in progress";
		break;
	case RD_ETOOBIG:
		r.message = "command larger than [raft] max_msg_bytes";
		break;
	default:
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
		struct rd_result r = {.code = rd_err_to_wire(rv),
		                      .group = g->id,
		                      .message = rd_strerror(rv)};
		rd_waiter_finish(w, &r);
		return;
	}
	rd_waitq_push(&g->reads, w);
	rd_node_touch(n, g);
	rd_node_wake(n);
}

/* Whom to forward to: the group's leader as this node sees it (this node
 * itself when it leads: a waiting request is then resubmitted and served
 * here), or, for a group not served here, the last leader an answer named,
 * else the first connected node of its target placement (its leadership
 * hint; the first named may be down: a request sent to it waited for its
 * deadline, while any replica answers with the leader it knows). */
static uint64_t forward_target(void *ud, uint64_t group)
{
	const struct rd_node *n = ud;
	const struct rd_group *g = serving_group(n, group);
	const struct rd_group_placement *p;
	uint64_t to, rtt;

	if (g != NULL)
		return rd_raft_leader(g->raft);
	to = rd_forward_hint(&n->fwd, group);
	p = rd_routing_placement(&n->topo.routing, (uint32_t)group);
	if (to != 0 || p == NULL || p->n_replicas == 0)
		return to;
	for (uint32_t i = 0; i < p->n_replicas; i++)
		if (p->replicas[i] != n->cfg.node_id &&
		    rd_peers_connected(n, p->replicas[i], &rtt))
			return p->replicas[i];
	return p->replicas[0];
}

static void try_forward(struct rd_node *n, struct rd_waiter *w)
{
	struct rd_group *g = rd_node_group(n, w->group);

	w->kind = RD_WAIT_FORWARD;
	w->fw.group = w->group;
	w->fw.op = w->op;
	w->fw.data = w->data;
	w->fw.len = w->len;
	w->fw.deadline_ns = w->deadline_ns;
	/* Sending twice is harmless for a read and for a write with a
	 * session (thesis §6.3): those follow the leader (forward.h). */
	w->fw.retry_safe = w->op != RD_OP_WRITE || w->client_id != 0;
	/* w may be resolved before this returns: use only g afterwards. */
	if (rd_forward_start(&n->fwd, &w->fw)) {
		n->loop.forwarded++;
		if (g != NULL)
			g->forwarded++;
	}
}

void rd_node_submit(struct rd_node *n, struct rd_waiter *w)
{
	struct rd_group *g = serving_group(n, w->group);

	/* Never from inside drive.c's per-group pass (see there). */
	assert(!n->in_pass);
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

/* ---- the forwarder's callbacks (cluster/forward.h) ------------------------ */

static struct rd_waiter *waiter_of(struct rd_forward *fw)
{
	return (struct rd_waiter *)((char *)fw - offsetof(struct rd_waiter, fw));
}

static void forward_done(void *ud, struct rd_forward *fw, const struct rd_result *res)
{
	struct rd_node *n = ud;
	struct rd_waiter *w = waiter_of(fw);
	struct rd_group *g = serving_group(n, w->group);

	if (res->code == RAFTD__ERROR_CODE__OK && w->op == RD_OP_WRITE && g != NULL &&
	    g->applied < res->index) {
		w->kind = RD_WAIT_APPLIED;
		w->index = res->index;
		w->remote = *res;
		w->remote.message = NULL;
		/* Answered once this node has applied it too (read-your-writes
		 * on the node the client asked). Its deadline is checked on
		 * ticks (node.c): a quiesced group ticks while it waits. */
		rd_waitq_insert(&g->props, w);
		rd_node_set_ticking(n, g, true);
		return;
	}
	rd_waiter_finish(w, res);
}

static void forward_resubmit(void *ud, struct rd_forward *fw)
{
	rd_node_submit(ud, waiter_of(fw));
}

/* A peer's request: served like a local client's, except that it is never
 * forwarded again from here (the asking node follows the hint). */
static int forward_serve(void *ud, const struct rd_forward_request *req,
                         struct rd_forward_reply *reply)
{
	struct rd_node *n = ud;
	struct rd_waiter *w;

	if (!n->ready || n->stopping)
		return n->stopping ? RAFTD__ERROR_CODE__SHUTTING_DOWN
		                   : RAFTD__ERROR_CODE__NOT_READY;
	w = rd_waiter_new(RD_WAIT_FORWARD, rd_forward_answer, reply, 0, req->deadline_ns);
	if (w == NULL || (req->len > 0 && (w->data = malloc(req->len)) == NULL)) {
		free(w);
		return RAFTD__ERROR_CODE__INTERNAL;
	}
	if (req->len > 0)
		memcpy(w->data, req->data, req->len);
	w->len = req->len;
	w->group = req->group;
	w->op = req->op;
	w->fw.no_forward = true;
	rd_node_submit(n, w);
	return RAFTD__ERROR_CODE__OK;
}

static uint64_t forward_now(void *ud)
{
	(void)ud;
	return rd_clock_now_ns();
}

/* A forward was queued: the drain pass that flushes it (node.c on_drain)
 * runs at the end of this loop iteration. */
static void forward_wake(void *ud)
{
	rd_node_wake(ud);
}

const struct rd_forward_ops rd_node_forward_ops = {forward_target,   forward_done,
                                                   forward_resubmit, forward_serve,
                                                   forward_now,      forward_wake};
