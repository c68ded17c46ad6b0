/*
 * One iteration of the node loop: the only place where the ordering rule
 * lives (lib/README.md, "The ordering rule").
 *
 *   1. collect every group's update;
 *   2. flush one frame per peer: the messages that may leave before this
 *      iteration's write (a leader's appends and heartbeats, thesis
 *      §10.2.1) plus the messages that waited for the previous iteration's
 *      write, which is durable by now;
 *   3. write everything (entries, hard states, membership, applied entries
 *      with their applied index) in one RocksDB batch with one fsync;
 *   4. tell the cores what is durable, queue the messages that had to wait
 *      for it (votes, append acknowledgements), answer the clients whose
 *      entries applied and serve the reads whose read index is applied.
 *
 * Messages queued in step 4 leave in step 2 of the next iteration, which is
 * scheduled at once; so a peer gets at most one frame per iteration.
 *
 * Failure modes: the storage layer aborts the process when a write fails;
 * a core/storage disagreement (an append storage refuses) is a bug and also
 * aborts, after logging the group and index.
 */
#include <stdlib.h>
#include <string.h>

#include "multiraft/node_internal.h"
#include "raftd.pb-c.h"
#include "storage/kv.h"
#include "transport/wire.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/fatal.h"
#include "util/log.h"

static void ensure_results(struct rd_group *g, size_t n)
{
	if (g->results_cap >= n)
		return;
	size_t cap = g->results_cap ? g->results_cap : 64;
	while (cap < n)
		cap *= 2;
	g->results = rd_xrealloc(g->results, cap * sizeof *g->results);
	g->results_cap = cap;
}

/* Put group g's update into the batch. */
static void persist(struct rd_node *n, struct rd_group *g)
{
	const struct rd_raft_update *u = &g->u;
	const struct rd_conf_state *conf = rd_raft_conf(g->raft);
	char msg[RD_ERRMSG_SIZE];

	if (u->n_entries > 0 &&
	    rd_storage_batch_append(n->batch, g->id, u->entries, u->n_entries, msg) != 0)
		rd_fatal("fatal: append refused group=%llu: %s",
		         (unsigned long long)g->id, msg);
	if (u->hard_state_changed &&
	    rd_storage_batch_set_hard_state(n->batch, g->id, &u->hard_state, msg) != 0)
		rd_fatal("fatal: hard state refused group=%llu: %s",
		         (unsigned long long)g->id, msg);
	if (memcmp(conf, &g->conf_persisted, sizeof *conf) != 0) {
		if (rd_storage_batch_set_conf_state(n->batch, g->id, conf, msg) != 0)
			rd_fatal("fatal: conf state refused group=%llu: %s",
			         (unsigned long long)g->id, msg);
		g->conf_persisted = *conf;
	}
	ensure_results(g, u->n_committed);
	for (size_t i = 0; i < u->n_committed; i++) {
		const struct rd_applier *a = g->applier;
		if (a->ops->apply(a->ud, n->batch, g->id, &u->committed[i],
		                  &g->results[i], msg) != 0)
			rd_fatal("fatal: apply refused group=%llu: %s",
			         (unsigned long long)g->id, msg);
	}
}

/* Answer the proposals whose entries applied in this update. */
static void resolve_applied(struct rd_group *g)
{
	const struct rd_raft_update *u = &g->u;
	uint64_t applied;

	for (size_t i = 0; i < u->n_committed; i++) {
		const struct rd_entry *e = &u->committed[i];
		struct rd_waiter *w;

		while ((w = g->props.head) != NULL && w->index <= e->index) {
			struct rd_result r = {.group = g->id, .index = w->index};
			g->props.head = w->next;
			if (g->props.head == NULL)
				g->props.tail = NULL;
			if (w->kind == RD_WAIT_APPLIED) {
				rd_waiter_finish(w, &w->remote);
				continue;
			}
			if (w->index != e->index || w->term != e->term) {
				/* Another leader's entry took this index (§5.3). */
				r.code = RAFTD__ERROR_CODE__NOT_LEADER;
				r.message = "proposal dropped by a leader change; retry";
				r.leader_hint = rd_raft_leader(g->raft);
			} else {
				const struct rd_kv_result *kr = &g->results[i];
				r.code = rd_err_to_wire(kr->status);
				if (kr->status == RD_ECASFAILED) {
					r.has_value = true;
					r.found = kr->present;
					r.value = kr->current;
					r.value_len = kr->current_len;
				} else if (kr->status != 0) {
					r.message = "malformed command";
				}
			}
			rd_waiter_finish(w, &r);
		}
	}
	/* Forwarded writes that applied remotely wait for the local apply. */
	applied = rd_raft_applied_index(g->raft);
	if (u->n_committed > 0)
		applied = u->committed[u->n_committed - 1].index;
	struct rd_waiter *w;
	while ((w = g->props.head) != NULL && w->kind == RD_WAIT_APPLIED &&
	       w->index <= applied) {
		g->props.head = w->next;
		if (g->props.head == NULL)
			g->props.tail = NULL;
		rd_waiter_finish(w, &w->remote);
	}
}

static void serve_reads(struct rd_node *n, struct rd_group *g)
{
	for (size_t i = 0; i < g->u.n_reads; i++) {
		struct rd_waiter *w;
		while ((w = g->reads.head) != NULL && w->ctx <= g->u.reads[i].ctx) {
			g->reads.head = w->next;
			if (g->reads.head == NULL)
				g->reads.tail = NULL;
			rd_node_serve_read(n, w);
		}
	}
}

static void note_role(struct rd_node *n, struct rd_group *g)
{
	uint64_t leader = rd_raft_leader(g->raft);
	if (leader == g->last_leader)
		return;
	if (leader == n->cfg.node_id)
		rd_log_info("leader elected group=%llu term=%llu node=%llu",
		            (unsigned long long)g->id,
		            (unsigned long long)rd_raft_term(g->raft),
		            (unsigned long long)leader);
	else
		rd_log_info("leader changed group=%llu term=%llu leader=%llu",
		            (unsigned long long)g->id,
		            (unsigned long long)rd_raft_term(g->raft),
		            (unsigned long long)leader);
	g->last_leader = leader;
	/* Forwards that waited for a leader can go now. */
	rd_forward_retry(&n->fwd);
}

/* Once a group has applied `snapshot_entries` entries past its compaction
 * point, drop the log up to half that distance behind the applied index:
 * the state machine in RocksDB is the snapshot, and a follower that falls
 * further behind than the kept tail receives it (snapshots.c).
 *
 * Called for a group with an update, before the update is taken (the
 * update's entries live in the core's log) and so into the batch this
 * iteration commits in step 3: the batch never holds work between
 * iterations, when peer input runs. A snapshot install arriving there
 * (snapshots.c) must find no batch built on the state it replaces
 * (storage/snapshot.h); a compaction left over for the next iteration was
 * such a batch, and an install under it either published the old log start
 * back or, with the batch's view of the old log, refused the next hard
 * state ("commit beyond the last index"). The previous iteration's apply
 * results, which point into the batch, were handed out by then. */
static void compact(struct rd_node *n, struct rd_group *g)
{
	uint64_t applied = rd_raft_applied_index(g->raft);
	uint64_t first = rd_raft_first_index(g->raft);
	uint64_t keep = n->cfg.snapshot_entries / 2;
	char msg[RD_ERRMSG_SIZE];

	if (applied < first || applied - first + 1 < n->cfg.snapshot_entries)
		return;
	uint64_t upto = applied - keep;
	if (rd_raft_compact(g->raft, upto, NULL) != 0)
		return;
	if (rd_storage_batch_compact(n->batch, g->id, upto, msg) != 0)
		rd_fatal("fatal: compaction refused group=%llu: %s",
		         (unsigned long long)g->id, msg);
	rd_log_debug("log compacted group=%llu upto=%llu", (unsigned long long)g->id,
	             (unsigned long long)upto);
}

void rd_drive_iteration(struct rd_node *n)
{
	uint64_t t0 = rd_clock_now_ns();
	size_t n_active = 0;

	for (size_t id = 0; id < n->n_slots; id++) {
		struct rd_group *g = n->groups[id];
		if (g != NULL && rd_raft_has_update(g->raft)) {
			compact(n, g);
			rd_raft_get_update(g->raft, &g->u);
			n->active[n_active++] = g;
		}
	}
	if (n_active == 0 && !rd_peers_pending(n))
		return;

	for (size_t i = 0; i < n_active; i++) {
		const struct rd_raft_update *u = &n->active[i]->u;
		for (size_t k = 0; k < u->n_msgs; k++)
			rd_peers_queue(n, &u->msgs[k]);
	}
	rd_peers_flush(n);

	for (size_t i = 0; i < n_active; i++)
		persist(n, n->active[i]);
	rd_storage_commit(n->st, n->batch);

	for (size_t i = 0; i < n_active; i++) {
		struct rd_group *g = n->active[i];
		const struct rd_raft_update *u = &g->u;

		if (u->n_entries > 0)
			rd_raft_persisted(g->raft, u->entries[u->n_entries - 1].index,
			                  u->entries[u->n_entries - 1].term);
		for (size_t k = 0; k < u->n_msgs_after_persist; k++)
			rd_peers_queue(n, &u->msgs_after_persist[k]);
		resolve_applied(g);
		serve_reads(n, g);
		uint64_t snap_to[RD_RAFT_MAX_MEMBERS];
		size_t n_snap = 0;
		for (size_t k = 0; k < u->n_snap_sends && n_snap < RD_RAFT_MAX_MEMBERS;
		     k++)
			snap_to[n_snap++] = u->snap_sends[k].to;
		rd_raft_advance(g->raft, u);
		for (size_t k = 0; k < n_snap; k++)
			rd_snapshots_send(n, g, snap_to[k]);
		if (u->role_changed)
			note_role(n, g);
		if (rd_raft_has_update(g->raft))
			rd_node_wake(n);
	}
	if (rd_peers_pending(n))
		rd_node_wake(n);
	rd_node_check_ready(n);

	n->loop.iterations++;
	n->loop.pending_groups = n_active;
	n->loop.last_iter_ns = rd_clock_now_ns() - t0;
	rd_metrics_hist_observe(&n->loop.iter_hist, (double)n->loop.last_iter_ns / 1e9);
	if (n->loop.last_iter_ns > n->loop.max_iter_ns)
		n->loop.max_iter_ns = n->loop.last_iter_ns;
}
