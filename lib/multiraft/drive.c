/*
 * One iteration of the node loop: the only place where the ordering rule
 * lives (lib/README.md, "The ordering rule").
 *
 *   1. collect every group's update;
 *   2. flush one frame per peer: the messages that may leave before this
 *      iteration's write (a leader's appends and heartbeats, thesis
 *      §10.2.1) plus the messages that waited for the previous iteration's
 *      write, which is durable by now;
 *   3. write everything: entries, hard states and membership in one
 *      RocksDB batch with one fsync (none for commit indexes alone: they
 *      are volatile, paper Fig. 2; storage/README.md "Commit advances
 *      without a sync"), then applied entries with their
 *      applied index without the WAL (storage.h rd_storage_commit: they
 *      are rebuilt from the committed log after a crash);
 *   4. tell the cores what is durable, queue the messages that had to wait
 *      for it (votes, append acknowledgements), answer the clients whose
 *      entries applied and serve the reads whose read index is applied.
 *
 * Messages queued in step 4 leave in step 2 of the next iteration, which is
 * scheduled at once; so a peer gets at most one frame per iteration.
 *
 * Between steps 3 and 4 each core is advanced on a copy of its update
 * (keep_update; raft.h, "Asynchronous writes": the core counts its own log
 * toward commit only once rd_raft_persisted says so, so advancing early
 * releases nothing). With [storage] async_write the write runs on
 * storage's writer thread (storage/README.md, "The writer thread") and the
 * loop steps input meanwhile; step 4 (after_write) runs when the writer's
 * doorbell wakes the next iteration, before that iteration collects. A
 * forwarded write is answered, a subscriber starts and readiness is judged
 * against g->applied, which moves in step 4: the core's applied index may
 * be ahead of what the state machine shows while a write is in flight.
 *
 * Step 1 visits only the groups on the node's dirty list (rd_node_touch:
 * everything that may give a core an update puts its group there), in
 * group-id order, so an iteration costs what the groups with work cost,
 * not what the hosted groups number.
 *
 * Failure modes: the storage layer aborts the process when a write fails;
 * a core/storage disagreement (an append storage refuses) is a bug and also
 * aborts, after logging the group and index.
 */
#include <stdint.h>
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
	size_t cap = g->results_cap ? g->results_cap : n;
	while (cap < n)
		cap *= 2;
	g->results = rd_xrealloc(g->results, cap * sizeof *g->results);
	g->results_cap = cap;
}

/* Put group g's update into the batch. */
static void persist(struct rd_node *n, struct rd_group *g)
{
	const struct rd_raft_update *u = &g->u;
	/* The membership as of the entries this batch applies (thesis §5.1),
	 * beside the applied index: a snapshot of the state machine ships it,
	 * and the latest appended one may still be truncated (thesis §4.1). */
	const struct rd_conf_state *conf = rd_raft_conf_applied(g->raft);
	char msg[RD_ERRMSG_SIZE];

	if (u->n_entries > 0 &&
	    rd_storage_batch_append(n->batch, g->id, u->entries, u->n_entries, msg) != 0)
		rd_fatal("fatal: append refused group=%llu: %s",
		         (unsigned long long)g->id, msg);
	rd_membership_replicas_appended(g, u->entries, u->n_entries);
	if (u->hard_state_changed &&
	    rd_storage_batch_set_hard_state(n->batch, g->id, &u->hard_state, msg) != 0)
		rd_fatal("fatal: hard state refused group=%llu: %s",
		         (unsigned long long)g->id, msg);
	if (conf != g->conf_persisted) { /* both shared (raft/conf.h) */
		if (rd_storage_batch_set_conf_state(n->batch, g->id, conf, msg) != 0)
			rd_fatal("fatal: conf state refused group=%llu: %s",
			         (unsigned long long)g->id, msg);
		rd_conf_assign(&g->conf_persisted, conf);
	}
	ensure_results(g, u->n_committed);
	for (size_t i = 0; i < u->n_committed; i++) {
		const struct rd_applier *a = g->applier;
		if (a->ops->apply(a->ud, n->batch, g->id, &u->committed[i],
		                  &g->results[i], msg) != 0)
			rd_fatal("fatal: apply refused group=%llu: %s",
			         (unsigned long long)g->id, msg);
		rd_subs_journal(n, g, &u->committed[i], &g->results[i]);
	}
}

/* Take the head of g's proposal queue if its index is at or below `upto`. */
static struct rd_waiter *take_upto(struct rd_group *g, uint64_t upto)
{
	struct rd_waiter *w = g->props.head;
	if (w == NULL || w->index > upto)
		return NULL;
	g->props.head = w->next;
	if (g->props.head == NULL)
		g->props.tail = NULL;
	return w;
}

/* The answer to a proposal whose entry `e` applied with result `kr`. */
static void answer_applied(struct rd_waitq *again, struct rd_group *g,
                           struct rd_waiter *w, const struct rd_entry *e,
                           const struct rd_kv_result *kr)
{
	struct rd_result r = {.group = g->id, .index = w->index};

	if (w->term != e->term) {
		/* Another leader's entry took this index (§5.3): by Log
		 * Matching ours is in no log that can commit, so it never
		 * applies, and proposing it again cannot apply it twice, with
		 * or without a session: it goes to the current leader. */
		if (again != NULL) {
			w->kind = RD_WAIT_FORWARD;
			rd_waitq_push(again, w);
			return;
		}
		r.code = RAFTD__ERROR_CODE__NOT_LEADER;
		r.message = "proposal replaced by a new leader's entry: not applied";
		r.leader_hint = rd_raft_leader(g->raft);
		rd_waiter_finish(w, &r);
		return;
	}
	r.code = rd_err_to_wire(kr->status);
	switch (kr->status) {
	case 0:
		break;
	case RD_ECASFAILED:
		r.has_value = true;
		r.found = kr->present;
		r.value = kr->current;
		r.value_len = kr->current_len;
		break;
	case RD_EOLDSEQ:
		r.message = rd_strerror(RD_EOLDSEQ);
		break;
	default:
		r.message = "malformed command";
		break;
	}
	if (kr->duplicate && r.message == NULL)
		r.message = "a retry: the recorded result of its first apply";
	rd_waiter_finish(w, &r);
}

/* A proposal whose index an installed snapshot covered: its entry may be
 * in the snapshot or may have been replaced, and the snapshot carries
 * state, not entries. A write with a session whose sequence the installed
 * session table records as applied did apply (thesis §6.3); for a put,
 * delete or raw proposal that is the whole answer. Otherwise (no session,
 * a cas whose recorded result only the state machine holds, or a session
 * that moved on or expired) the outcome is unknown. */
static void answer_skipped(const struct rd_storage *st, struct rd_group *g,
                           struct rd_waiter *w)
{
	struct rd_result r = {
	    .code = RAFTD__ERROR_CODE__UNAVAILABLE,
	    .group = g->id,
	    .message = "entry covered by a snapshot install: outcome unknown; retry "
	               "with the same session to learn it",
	};
	struct rd_kv_cmd cmd;
	uint64_t seq;

	if (st != NULL && w->data != NULL &&
	    rd_kv_decode(w->data, w->len, &cmd, NULL) == 0 && cmd.client_id != 0 &&
	    cmd.op != RD_KV_CAS &&
	    rd_storage_session_seq(st, g->id, cmd.client_id, &seq) &&
	    seq == cmd.sequence) {
		r.code = RAFTD__ERROR_CODE__OK;
		r.message = "applied (recorded by the client's session)";
	}
	rd_waiter_finish(w, &r);
}

/* The queue is in index order (rd_waiter_track); several waiters may
 * share an index (proposed in different terms): only one of them can
 * match its entry. */
void rd_drive_resolve_applied(const struct rd_storage *st, struct rd_waitq *again,
                              struct rd_group *g)
{
	const struct rd_raft_update *u = &g->u;
	struct rd_waiter *w;
	uint64_t applied;

	if (u->has_snapshot) {
		while ((w = take_upto(g, u->snapshot.index)) != NULL) {
			if (w->kind == RD_WAIT_APPLIED)
				rd_waiter_finish(w, &w->remote);
			else
				answer_skipped(st, g, w);
		}
	}
	for (size_t i = 0; i < u->n_committed; i++) {
		const struct rd_entry *e = &u->committed[i];
		while ((w = take_upto(g, e->index)) != NULL) {
			if (w->kind == RD_WAIT_APPLIED)
				rd_waiter_finish(w, &w->remote);
			else if (w->index < e->index)
				answer_skipped(st, g, w); /* not handed out: none left */
			else
				answer_applied(again, g, w, e, &g->results[i]);
		}
	}
	/* Forwarded writes that applied remotely wait for the local apply. */
	applied = g->applied;
	if (u->n_committed > 0)
		applied = u->committed[u->n_committed - 1].index;
	if (u->has_snapshot && u->snapshot.index > applied)
		applied = u->snapshot.index;
	while ((w = g->props.head) != NULL && w->kind == RD_WAIT_APPLIED &&
	       w->index <= applied) {
		g->props.head = w->next;
		if (g->props.head == NULL)
			g->props.tail = NULL;
		rd_waiter_finish(w, &w->remote);
	}
}

/* Reads the core will not serve (the leader lost its leadership or its
 * quorum, or the leader's answer did not come, raft.h rd_raft_read_index)
 * go back to the runtime: they change nothing, so running them again is
 * safe, and after the per-group pass (rd_drive_iteration) they reach the
 * leader known then. */
static void requeue_failed_reads(struct rd_node *n, struct rd_group *g)
{
	for (size_t i = 0; i < g->u.n_reads_failed; i++) {
		struct rd_waiter *prev = NULL, *w = g->reads.head;
		while (w != NULL && w->ctx != g->u.reads_failed[i]) {
			prev = w;
			w = w->next;
		}
		if (w == NULL)
			continue;
		if (prev != NULL)
			prev->next = w->next;
		else
			g->reads.head = w->next;
		if (g->reads.tail == w)
			g->reads.tail = prev;
		w->kind = RD_WAIT_FORWARD;
		rd_waitq_push(&n->resubmit, w);
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
	/* The bootstrap hand-off (node.c hand_to_hints) is for the first
	 * leader only: once another node was seen leading, a later leadership
	 * here (an operator's transfer) is kept. */
	if (leader != 0 && leader != n->cfg.node_id)
		g->hint_handed = true;
	/* Forwards out to the old leader go to the new one; those that
	 * waited for a leader can go now. Both only after the per-group
	 * pass: a resubmitted request may propose or read on any group, and
	 * a group between get_update and advance takes neither (raft.h). */
	rd_forward_leader_changed(&n->fwd, g->id);
	n->retry_forwards = true;
}

/* After every group of the iteration is advanced: the requests that the
 * pass handed back (failed reads, forwards whose leader changed) enter the
 * cores again. */
static void resubmit_after_pass(struct rd_node *n)
{
	struct rd_waiter *w = n->resubmit.head;

	n->resubmit.head = n->resubmit.tail = NULL;
	while (w != NULL) {
		struct rd_waiter *next = w->next;
		w->next = NULL;
		rd_node_submit(n, w);
		w = next;
	}
	if (n->retry_forwards) {
		n->retry_forwards = false;
		rd_forward_retry(&n->fwd);
	}
}

/* Once a group has applied `snapshot_entries` entries past its compaction
 * point, drop the log up to half that distance behind the applied index (and
 * never past the applied index on disk):
 * the state machine in RocksDB is the snapshot, and a follower that falls
 * further behind than the kept tail receives it (snapshots.c).
 *
 * A group whose compaction waits for a flush is called again each tick
 * with no update (g->compact_wait): an idle one has no next update to
 * retry from. Returns true when the batch got a compaction to write.
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
static bool compact(struct rd_node *n, struct rd_group *g)
{
	uint64_t applied = rd_raft_applied_index(g->raft);
	uint64_t first = rd_raft_first_index(g->raft);
	uint64_t keep = n->cfg.snapshot_entries / 2;
	char msg[RD_ERRMSG_SIZE];

	bool waited = g->compact_wait;
	g->compact_wait = false;
	if (applied < first || applied - first + 1 < n->cfg.snapshot_entries)
		return false;
	uint64_t upto = applied - keep;
	/* Only entries whose apply is on disk: the others rebuild the state
	 * machine after a crash (storage.h rd_storage_commit). Until a flush
	 * moves the durable applied index, the log keeps them. */
	uint64_t durable = rd_storage_durable_applied(n->st, g->id);
	g->compact_wait = upto > durable;
	if (g->compact_wait) {
		if (!waited)
			rd_log_debug("log compaction waits for a flush group=%llu "
			             "upto=%llu durable=%llu",
			             (unsigned long long)g->id, (unsigned long long)upto,
			             (unsigned long long)durable);
		rd_storage_flush_soon(n->st);
		rd_node_set_ticking(n, g, true);
		upto = durable;
	}
	if (upto < first)
		return false;
	struct rd_snapshot_meta point;
	if (rd_raft_compact(g->raft, upto, &point) != 0)
		return false;
	/* The membership as of `upto` goes with the log start: the conf
	 * changes compacted away still count at a restart (thesis §4.1). */
	if (rd_storage_batch_compact(n->batch, g->id, upto, &point.conf, msg) != 0)
		rd_fatal("fatal: compaction refused group=%llu: %s",
		         (unsigned long long)g->id, msg);
	rd_log_debug("log compacted group=%llu upto=%llu", (unsigned long long)g->id,
	             (unsigned long long)upto);
	return true;
}

/* Charge the time since *t to `phase` (and to group `g` when it is the
 * slowest there yet); *t becomes now. For the slow-iteration log. */
static void mark(struct rd_iter_trace *tr, enum rd_phase phase, uint64_t g, uint64_t *t)
{
	uint64_t now = rd_clock_now_ns(), d = now - *t;

	tr->ns[phase] += d;
	if (g != 0 && d > tr->worst_ns[phase]) {
		tr->worst_ns[phase] = d;
		tr->worst_group[phase] = g;
	}
	*t = now;
}

static int by_id(const void *a, const void *b)
{
	const struct rd_group *x = *(struct rd_group *const *)a;
	const struct rd_group *y = *(struct rd_group *const *)b;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Make room for n elements of `size` bytes in *p (capacity *cap): just n
 * at first (a quiescing group frees them, group.c rd_group_release_idle),
 * doubling then, so a working group stops allocating. */
static void grow(void *pp, size_t *cap, size_t n, size_t size)
{
	void **p = pp;
	size_t c = *cap ? *cap : n;

	if (*cap >= n)
		return;
	while (c < n)
		c *= 2;
	*p = rd_xrealloc(*p, c * size);
	*cap = c;
}

/* A malloc'd copy of m's entries with their data in the same block. */
static struct rd_entry *copy_entries(const struct rd_entry *e, uint32_t n)
{
	size_t bytes = n * sizeof *e;
	for (uint32_t i = 0; i < n; i++)
		bytes += e[i].len;
	struct rd_entry *c = rd_xrealloc(NULL, bytes);
	uint8_t *d = (uint8_t *)(c + n);
	for (uint32_t i = 0; i < n; i++) {
		c[i] = e[i];
		if (e[i].len > 0)
			memcpy(d, e[i].data, e[i].len);
		c[i].data = e[i].len > 0 ? d : NULL;
		d += e[i].len;
	}
	return c;
}

/* Copy what step 4 needs out of g->u, which points into the core, into
 * g->w, and point g->u at the copies, so that the core can be advanced
 * (and step input) while the update's write is in flight: raft.h,
 * "Asynchronous writes" (the core counts its own log toward commit only
 * up to what rd_raft_persisted says, and holds nothing else back). */
static void keep_update(struct rd_group *g)
{
	struct rd_raft_update *u = &g->u;
	struct rd_written *w = &g->w;

	if (u->n_entries > 0) {
		w->last = u->entries[u->n_entries - 1];
		w->last.data = NULL;
		w->last.len = 0;
		u->entries = &w->last;
		u->n_entries = 1;
	}
	grow(&w->committed, &w->committed_cap, u->n_committed, sizeof *w->committed);
	for (size_t i = 0; i < u->n_committed; i++) {
		w->committed[i] = u->committed[i];
		w->committed[i].data = NULL;
		w->committed[i].len = 0;
	}
	u->committed = w->committed;
	grow(&w->reads, &w->reads_cap, u->n_reads, sizeof *w->reads);
	if (u->n_reads > 0)
		memcpy(w->reads, u->reads, u->n_reads * sizeof *w->reads);
	u->reads = w->reads;
	grow(&w->reads_failed, &w->reads_failed_cap, u->n_reads_failed,
	     sizeof *w->reads_failed);
	if (u->n_reads_failed > 0)
		memcpy(w->reads_failed, u->reads_failed,
		       u->n_reads_failed * sizeof *w->reads_failed);
	u->reads_failed = w->reads_failed;
	grow(&w->snap_sends, &w->snap_sends_cap, u->n_snap_sends, sizeof *w->snap_sends);
	if (u->n_snap_sends > 0)
		memcpy(w->snap_sends, u->snap_sends,
		       u->n_snap_sends * sizeof *w->snap_sends);
	u->snap_sends = w->snap_sends;
	/* Entries in a message that waits (a new leader's first appends,
	 * after its term changed) are copied with their data. */
	grow(&w->msgs, &w->msgs_cap, u->n_msgs_after_persist, sizeof *w->msgs);
	for (size_t i = 0; i < u->n_msgs_after_persist; i++) {
		const struct rd_message *m = &u->msgs_after_persist[i];
		w->msgs[i] = *m;
		w->msgs[i].entries =
		    m->n_entries > 0 ? copy_entries(m->entries, m->n_entries) : NULL;
	}
	u->msgs_after_persist = w->msgs;
	u->msgs = NULL; /* sent in step 2 */
	u->n_msgs = 0;
}

/* The copied update of g is done with. */
static void drop_update(struct rd_group *g)
{
	for (size_t i = 0; i < g->u.n_msgs_after_persist; i++)
		free(g->w.msgs[i].entries);
	memset(&g->u, 0, sizeof g->u);
}

/* Step 4 for the groups of the batch just written (their cores were
 * advanced in rd_drive_iteration): everything that depends on the write. */
static void after_write(struct rd_node *n, struct rd_iter_trace *tr, uint64_t *t)
{
	n->in_pass = true;
	for (size_t i = 0; i < n->n_written; i++) {
		struct rd_group *g = n->active[i];
		const struct rd_raft_update *u = &g->u;

		if (u->n_entries > 0)
			rd_raft_persisted(g->raft, u->entries[0].index,
			                  u->entries[0].term);
		for (size_t k = 0; k < u->n_msgs_after_persist; k++)
			rd_peers_queue(n, &u->msgs_after_persist[k]);
		mark(tr, RD_PHASE_APPLY, g->id, t);
		rd_drive_resolve_applied(n->st, &n->resubmit, g);
		if (u->n_committed > 0)
			g->applied = u->committed[u->n_committed - 1].index;
		if (u->has_snapshot && u->snapshot.index > g->applied)
			g->applied = u->snapshot.index;
		/* The installed state holds the replica identities (and the
		 * update's entries are durable now). */
		if (u->has_snapshot)
			rd_membership_replicas_load(n, g);
		serve_reads(n, g);
		requeue_failed_reads(n, g);
		mark(tr, RD_PHASE_ANSWER, g->id, t);
		for (size_t k = 0; k < u->n_snap_sends; k++)
			rd_snapshots_send(n, g, u->snap_sends[k].to);
		/* Not only on role_changed: a follower learns a new leader
		 * from its first append or heartbeat without changing role. */
		note_role(n, g);
		drop_update(g);
		if (rd_raft_quiesced(g->raft))
			rd_group_release_idle(g);
		rd_node_touch(n, g);
		mark(tr, RD_PHASE_APPLY, g->id, t);
	}
	n->in_pass = false;
	n->writing = false;
	n->n_written = 0;
	/* Every group is advanced: requests may enter the cores again, and
	 * the batch is written, so a snapshot install that found work for its
	 * group in it can finish now (storage/snapshot.h). */
	resubmit_after_pass(n);
	/* Subscribers get what this batch made durable (subscribe.h). */
	rd_subs_applied(n);
	rd_snapshots_retry(n);
	mark(tr, RD_PHASE_APPLY, 0, t);
	if (rd_peers_pending(n))
		rd_node_wake(n);
	rd_node_check_ready(n);
}

/* A write on the writer thread does not make the loop slow (it steps
 * input meanwhile), so the slow-iteration line (health.c) never names it:
 * one taking longer than 5 tick intervals, what /livez tolerates for an
 * iteration, has its own line, at most once a second. */
static void note_slow_write(struct rd_node *n)
{
	uint64_t now = rd_clock_now_ns(), d = now - n->write_start_ns;
	uint64_t limit = 5ull * n->cfg.tick_ms * 1000000ull;

	if (rd_storage_commit_fd(n->st) < 0 || d < limit ||
	    now - n->last_slow_write_ns < 1000000000ull)
		return;
	n->last_slow_write_ns = now;
	rd_log_warn("slow storage write duration_ms=%.1f limit_ms=%u phase=write "
	            "groups=%zu (the loop stepped input meanwhile)",
	            (double)d / 1e6, 5 * n->cfg.tick_ms, n->n_written);
}

void rd_drive_finish_write(struct rd_node *n)
{
	struct rd_iter_trace tr = {0};
	uint64_t t = rd_clock_now_ns();

	if (!n->writing)
		return;
	rd_storage_commit_finish(n->st, n->batch);
	note_slow_write(n);
	mark(&tr, RD_PHASE_WRITE, 0, &t);
	after_write(n, &tr, &t);
}

void rd_drive_iteration(struct rd_node *n)
{
	uint64_t t0 = rd_clock_now_ns(), t = t0;
	struct rd_iter_trace tr = {0};
	size_t n_active = 0;
	bool compacted = false;

	/* The previous iteration's write first: until it is durable nothing
	 * that depends on it leaves, and its batch cannot take more. */
	if (n->writing) {
		if (!rd_storage_commit_done(n->st))
			return; /* the writer's doorbell wakes the loop */
		rd_storage_commit_finish(n->st, n->batch);
		note_slow_write(n);
		mark(&tr, RD_PHASE_WRITE, 0, &t);
		after_write(n, &tr, &t);
	}

	/* The dirty list empties here; groups touched from now on (in the
	 * pass below, or by input before the next iteration) fill it again.
	 * Id order, as a scan of every slot had: the batch and each peer's
	 * frame hold the groups in that order. */
	if (n->n_dirty > 1)
		qsort(n->dirty, n->n_dirty, sizeof *n->dirty, by_id);
	for (size_t i = 0; i < n->n_dirty; i++) {
		struct rd_group *g = n->dirty[i];
		g->dirty = false;
		if (rd_raft_has_update(g->raft)) {
			compact(n, g);
			rd_raft_get_update(g->raft, &g->u);
			n->active[n_active++] = g;
		} else if (g->compact_wait && compact(n, g)) {
			compacted = true;
		}
	}
	n->n_dirty = 0;
	if (n_active == 0 && !compacted && !rd_peers_pending(n) &&
	    !rd_snapshots_pending(n))
		return;
	mark(&tr, RD_PHASE_COLLECT, 0, &t);

	for (size_t i = 0; i < n_active; i++) {
		const struct rd_raft_update *u = &n->active[i]->u;
		for (size_t k = 0; k < u->n_msgs; k++)
			rd_peers_queue(n, &u->msgs[k]);
	}
	rd_peers_flush(n);
	mark(&tr, RD_PHASE_SEND, 0, &t);

	/* Filling the batch runs the state machines (apply); the synced
	 * write is the write. */
	for (size_t i = 0; i < n_active; i++) {
		persist(n, n->active[i]);
		mark(&tr, RD_PHASE_APPLY, n->active[i]->id, &t);
	}
	n->write_start_ns = rd_clock_now_ns();
	bool started = rd_storage_commit_start(n->st, n->batch);
	mark(&tr, RD_PHASE_WRITE, 0, &t);

	/* The cores go on before the write is durable (raft.h,
	 * "Asynchronous writes"): each update is copied (keep_update) and
	 * advanced, so that input can be stepped while the write runs. A
	 * group between get_update and advance takes no proposal or read
	 * (raft.h), so nothing here submits a request (rd_node_submit asserts
	 * it). What waits for the write is in after_write. */
	n->in_pass = true;
	for (size_t i = 0; i < n_active; i++) {
		struct rd_group *g = n->active[i];
		const struct rd_raft_update *u = &g->u;

		/* Group 0's applied conf changes reach the topology and the
		 * transport peers (they need the entries' data); targets may
		 * have changed (placement_drive.c reads them once the pass is
		 * over). */
		if (g->id == RD_STORAGE_META_GROUP) {
			rd_membership_applied(n, g);
			if (u->n_committed > 0)
				n->place.reload = true;
		}
		bool qc = u->quiesce_changed, q = u->quiesced;
		uint8_t cause = u->wake_cause;
		bool became_leader =
		    u->role_changed && rd_raft_role(g->raft) == RD_RAFT_LEADER;
		keep_update(g);
		rd_raft_advance(g->raft, u);
		rd_liveness_after_update(n, g, qc, q, cause, became_leader);
		/* A quiesced group holds no log in memory: the core dropped
		 * its tail in advance, storage drops its cached entries. */
		if (qc && q) {
			rd_storage_cache_drop(n->st, g->id);
			n->mem_quiesced++;
		}
		/* Advanced, the core may have more (a read now covered): on the
		 * dirty list for the iteration after the write (node.h rule). */
		rd_node_touch(n, g);
		mark(&tr, RD_PHASE_APPLY, g->id, &t);
	}
	n->in_pass = false;
	n->writing = true;
	n->n_written = n_active;
	/* Without the writer thread the write has returned already. */
	if (!started || rd_storage_commit_fd(n->st) < 0) {
		rd_storage_commit_finish(n->st, n->batch);
		mark(&tr, RD_PHASE_WRITE, 0, &t);
		after_write(n, &tr, &t);
	}

	n->loop.iterations++;
	n->loop.pending_groups = n_active;
	n->loop.last_iter_ns = rd_clock_now_ns() - t0;
	n->loop.trace = tr;
	rd_metrics_hist_observe(&n->loop.iter_hist, (double)n->loop.last_iter_ns / 1e9);
	if (n->loop.last_iter_ns > n->loop.max_iter_ns)
		n->loop.max_iter_ns = n->loop.last_iter_ns;
}
