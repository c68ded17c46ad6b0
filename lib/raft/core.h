/*
 * Internal state of the Raft core, shared by the files of lib/raft. Not part
 * of the public API (raft/raft.h is).
 *
 *   log.c          in-memory log, term runs and payload arena
 *   tail.c         the bounded in-memory tail: eviction, reads from the source
 *   lifecycle.c    create (restore or bootstrap), free, accessors
 *   raft.c         tick, step dispatch, term rules, role changes
 *   election.c     pre-vote, vote, campaigns (§5.2, thesis §9.6)
 *   replication.c  append, heartbeat, progress, commit, snapshots (§5.3, §7)
 *   membership.c   conf changes, learners, leadership transfer (thesis §4, §3.10)
 *   readindex.c    ReadIndex (thesis §6.4)
 *   update.c       message queue and the update hand-out
 */
#ifndef RD_RAFT_CORE_H
#define RD_RAFT_CORE_H

#include <assert.h>

#include "raft/conf.h"
#include "raft/raft.h"

/* --- log.c ------------------------------------------------------------------ */

struct rd__chunk {
	uint8_t *buf;
	size_t cap;
	size_t used;
	uint64_t last_index; /* highest index whose payload lives here */
};

/* Entries whose term is `term`, from index `start` on (until the next run):
 * the terms of the whole log in a few pairs, one per term change. */
struct rd__term_run {
	uint64_t start;
	uint64_t term;
};

/* The log holds entries snap_index+1 .. last. The newest of them, lo .. last,
 * are in memory: ents[head .. head+n). The older ones, snap_index+1 .. lo-1,
 * were evicted (rd__log_evict): they are durable and applied, and only the
 * caller's storage holds their payloads (tail.c reads them back); their
 * terms stay here, in `runs`, which cover every index of the log, so the
 * Log Matching checks (§5.3) never need storage. Payloads in a FIFO of
 * chunks that are recycled, so steady state allocates nothing. */
struct rd__log {
	uint64_t snap_index;
	uint64_t snap_term;
	uint64_t lo; /* first index in memory (last + 1 when none) */
	struct rd_entry *ents;
	size_t head;
	size_t n;
	size_t cap;
	uint64_t bytes; /* in memory: payloads plus sizeof(struct rd_entry) each */
	struct rd__term_run *runs; /* ascending starts; runs[0].start <= lo */
	size_t n_runs;
	size_t cap_runs;
	struct rd__chunk *chunks; /* FIFO, chunks[0] oldest */
	size_t n_chunks;
	size_t cap_chunks;
	struct rd__chunk spare[4]; /* recycled buffers (at most 4 MiB kept) */
	size_t n_spare;
	size_t chunk_target; /* size of the next new chunk */
	uint64_t gen;        /* bumped on every truncation or reset */
};

/* Initialise `l` as an empty log that starts after (snap_index, snap_term):
 * the next append gets index snap_index + 1. `l` need not be initialised;
 * nothing is allocated until the first append. */
void rd__log_init(struct rd__log *l, uint64_t snap_index, uint64_t snap_term);
/* Free every entry and payload chunk of `l` and zero it; entry pointers
 * taken from it are invalid afterwards. `l` was initialised. */
void rd__log_free(struct rd__log *l);
static inline uint64_t rd__log_last(const struct rd__log *l)
{
	return l->lo - 1 + l->n;
}
static inline uint64_t rd__log_first(const struct rd__log *l)
{
	return l->snap_index + 1;
}
/* The entry at `i`, which must be in memory (lo <= i <= last, asserted). */
static inline struct rd_entry *rd__log_at(const struct rd__log *l, uint64_t i)
{
	assert(i >= l->lo && i <= rd__log_last(l));
	return &l->ents[l->head + (size_t)(i - l->lo)];
}
/* The term of entry `i`, in memory or evicted: snap_term when i is the
 * compaction point, 0 when i is before it or past the last entry (so a 0
 * never matches a real term, which starts at 1). Any i is allowed. */
uint64_t rd__log_term(const struct rd__log *l, uint64_t i);
/* Append an entry (term, type, len bytes of data copied into the log's
 * arena) at index last + 1. Precondition (asserted): `term` is not below
 * the last entry's term (§5.3, terms in a log never decrease). `data` may be
 * NULL when len is 0. Returns 0 or RD_ENOMEM, in which case `l` is
 * unchanged. Pointers from rd__log_at stay valid until truncate, compact,
 * evict or reset drops the entry. */
int rd__log_append(struct rd__log *l, uint64_t term, uint8_t type, const void *data,
                   uint32_t len);
/* Remove entries from `from` on (a conflicting suffix, §5.3) and bump the
 * log generation so queued messages that refer to them are dropped.
 * Precondition (asserted): from >= lo, since only committed entries are
 * evicted or compacted and those are never truncated (§5.4); from past the
 * last entry is a no-op. */
void rd__log_truncate(struct rd__log *l, uint64_t from);
/* Remove entries up to and including `to` (§7 log compaction); their term
 * becomes snap_term. to <= snap_index is a no-op; otherwise `to` must not
 * pass the last entry (asserted). Payload chunks wholly before `to` are
 * recycled. */
void rd__log_compact(struct rd__log *l, uint64_t to);
/* Drop entries up to and including `to` from memory only: they stay in
 * the log (their terms too), read back from the caller's storage. No-op
 * for to < lo; `to` must not pass the last entry (asserted). */
void rd__log_evict(struct rd__log *l, uint64_t to);
/* Give the recycled chunks back to the allocator and, when no entry is in
 * memory, the entry array and every chunk too (an idle group, raft.h). */
void rd__log_release(struct rd__log *l);
/* Drop every entry: the log restarts after (index, term), as after
 * installing a snapshot (§7). Bumps the generation like truncate. */
void rd__log_reset(struct rd__log *l, uint64_t index, uint64_t term);

/* --- the group --------------------------------------------------------------- */

struct rd__pr {
	uint64_t id;
	uint64_t match;
	uint64_t next;
	uint8_t state;
	bool learner;
	bool recent_active;
	bool probe_sent; /* probe: an append is outstanding */
	uint64_t pending_snapshot;
	uint64_t read_ack; /* highest ReadIndex round acknowledged */
	/* first tick at which a heartbeat response may resume sending to a
	 * paused follower again (rd__handle_heartbeat_resp) */
	uint64_t resume_tick;
	/* in-flight window: ring of (last index, bytes) of infl_cap slots,
	 * allocated when a leader starts pipelining to the member
	 * (rd__pr_window) with a few slots and doubled as appends fill it, up
	 * to max_inflight (NULL if that failed: the follower then stays in
	 * probe, one append at a time) */
	uint64_t *infl_idx;
	uint64_t *infl_bytes;
	uint32_t infl_cap;
	uint32_t infl_start;
	uint32_t infl_count;
	uint64_t infl_total;
	int vote; /* 0 none, 1 granted, -1 rejected (campaigns) */
	/* The runtime says its node is not live (rd_raft_peer_down) and
	 * nothing came from it since: quiescence does not wait for it. */
	bool down;
};

struct rd__qmsg {
	struct rd_message m;
	uint64_t gen;    /* log generation the entries refer to */
	uint64_t ent_lo; /* first entry index, when n_entries > 0 */
	/* Entries read from the log source (tail.c): one malloc'd block of
	 * m.n_entries entries and their payloads, owned by the message;
	 * NULL for entries that are in memory. */
	struct rd_entry *owned;
};

/* The configuration after an evicted membership change (tail.c), shared
 * (raft/conf.h). */
struct rd__conf_rec {
	uint64_t index;
	const struct rd_conf_state *conf;
};

struct rd__read {
	uint64_t seq;
	uint64_t ctx;
	uint64_t from;
	uint64_t index; /* 0 = not yet known (no commit in this term yet) */
	uint64_t tick;  /* r->ticks when it arrived (expiry) */
};

/* A read this node forwarded to the leader and has no answer for yet. */
struct rd__sent_read {
	uint64_t ctx;
	uint64_t tick; /* r->ticks when it was sent */
};

#define RD__VEC(T)                                                                       \
	struct {                                                                         \
		T *v;                                                                    \
		size_t n;                                                                \
		size_t cap;                                                              \
	}

struct rd_raft {
	/* configuration */
	uint64_t group;
	uint64_t id;
	uint32_t election_ticks;
	uint32_t heartbeat_ticks;
	uint32_t max_inflight;
	uint64_t max_inflight_bytes;
	uint64_t max_msg_bytes;
	bool pre_vote;
	bool check_quorum;
	uint64_t rng;
	const struct rd_raft_log_source *src; /* the in-memory tail (raft.h) */
	uint64_t log_mem_bytes;
	uint64_t src_reads;
	uint64_t src_errors;

	/* persistent and volatile state (figure 2) */
	uint64_t term;
	uint64_t vote;
	uint64_t commit;
	uint64_t lead;
	enum rd_raft_role role;
	uint64_t commit_hint; /* follower: commit known from the leader */
	uint64_t persisted;   /* durable log prefix (entries <= persisted) */
	uint64_t applied;
	uint64_t applying; /* last entry handed out to apply */
	uint64_t handed;   /* last entry handed out to persist */
	struct rd__log log;

	/* membership (thesis §4.1: latest appended configuration). Each is
	 * a shared configuration (raft/conf.h), never NULL, changed only with
	 * rd_conf_assign: a node's groups nearly all hold the same one. */
	const struct rd_conf_state *conf;
	const struct rd_conf_state *snap_conf; /* at the compaction point */
	/* After each membership change evicted from memory, oldest first
	 * (tail.c): with snap_conf, the configuration at any index below the
	 * in-memory tail (thesis §4.1). */
	RD__VEC(struct rd__conf_rec) evicted_confs;
	const struct rd_conf_state *prev_conf; /* before the latest conf entry */
	uint64_t conf_index; /* entry that produced conf (0 = snapshot) */
	/* As of `applying` (thesis §5.1: a snapshot of the state machine
	 * carries the configuration as of its last included index, which
	 * is not the latest appended one while a change is uncommitted). */
	const struct rd_conf_state *applied_conf;
	uint64_t pending_conf_index; /* leader: no new change until committed */
	/* One per member of conf, self included (rd__sync_progress), in a
	 * buffer sized to the membership: most groups have three members,
	 * and an idle node hosts thousands of groups. */
	struct rd__pr *prs;
	uint32_t cap_prs;
	uint32_t n_prs;

	/* timers */
	uint32_t election_elapsed;
	uint32_t heartbeat_elapsed;
	uint32_t randomized_timeout;
	uint64_t ticks; /* ticks since this instance was created */
	uint64_t transferee;
	bool transfer_campaign;
	bool no_campaign; /* the caller forbade campaigns (rd_raft_set_campaign) */

	/* quiescence (raft.h) */
	bool quiesce_on;      /* cfg.quiesce */
	bool quiesced;        /* ticks are no-ops */
	bool quiesce_changed; /* since the last update */
	uint8_t wake_cause;   /* enum rd_raft_wake of the last wake, for the update */

	/* ReadIndex */
	uint64_t read_seq;
	RD__VEC(struct rd__read) reads_pending; /* leader: awaiting quorum */
	RD__VEC(struct rd_read_state) reads_ready;
	RD__VEC(struct rd_read_state) reads_out;
	/* Forwarded reads awaiting the leader's answer, oldest first from
	 * reads_sent_head; answered ones in the middle have ctx 0. */
	RD__VEC(struct rd__sent_read) reads_sent;
	size_t reads_sent_head;
	RD__VEC(uint64_t) reads_failed; /* ctxs to report as failed */
	RD__VEC(uint64_t) reads_failed_out;

	/* outputs */
	RD__VEC(struct rd__qmsg) msgq;
	RD__VEC(struct rd_entry *) owned_out; /* handed out, freed at advance */
	RD__VEC(struct rd_message) out_early;
	RD__VEC(struct rd_message) out_late;
	RD__VEC(struct rd_snap_send) snap_sends;
	RD__VEC(struct rd_snap_send) snap_out;
	/* An installed snapshot's meta, handed out in the next update; its
	 * configuration shared (rd_conf_none while none is pending). */
	bool has_pending_snapshot;
	uint64_t pending_snap_index;
	uint64_t pending_snap_term;
	const struct rd_conf_state *pending_snap_conf;
	struct rd_hard_state prev_hs;
	bool role_changed;
	bool in_update;
	bool bcast_pending; /* proposals since the last hand-out: batch them */
};

/* Grow the vector (*v, *cap) holding `n` elements of `elem` bytes so that
 * it can take one more: no-op while n < *cap, else doubles (16 at first,
 * 4 for elements of 128 bytes or more).
 * Returns false on ENOMEM, leaving the vector as it was. */
bool rd__vec_grow(void **v, size_t *cap, size_t n, size_t elem);
#define RD__VEC_PUSH(vec, val)                                                           \
	(rd__vec_grow((void **)&(vec).v, &(vec).cap, (vec).n, sizeof(*(vec).v))          \
	     ? ((vec).v[(vec).n++] = (val), true)                                        \
	     : false)

/*
 * Every function below takes a group `r` created by rd_raft_new and is
 * called from inside the public API (raft/raft.h: step, tick, propose, ...).
 * None blocks, reads a clock or does I/O: messages go to r->msgq and
 * entries to r->log, and leave in the next update.
 */

/* --- raft.c --- */

/* Become a follower of `lead` (0: unknown) in `term`. Precondition
 * (asserted): term >= r->term, the term never decreases (§5.1); a higher
 * term clears the vote. Resets the election timer and drops pending reads
 * and a leadership transfer. */
void rd__become_follower(struct rd_raft *r, uint64_t term, uint64_t lead);
/* Become leader of the current term: reset every follower's progress to
 * probe from the end of the log, append the no-op of §5.4.2 and §8 so
 * that earlier terms can commit, and block conf changes until it commits
 * (thesis §4.1). Precondition (asserted): r is a candidate that won the
 * vote. Falls back to follower if the no-op cannot be allocated. */
void rd__become_leader(struct rd_raft *r);
/* Draw a new randomized election timeout in [election_ticks,
 * 2 * election_ticks) from the group's seeded generator (§5.2). */
void rd__reset_timeout(struct rd_raft *r);
/* The progress of member `id` (voter or learner, self included), or NULL
 * when `id` is not in the configuration. Valid until the configuration
 * changes (rd__sync_progress moves entries). */
struct rd__pr *rd__pr(struct rd_raft *r, uint64_t id);
/* True when `id` is a voter of the latest configuration (thesis §4.1:
 * the latest appended one, committed or not). */
bool rd__is_voter(const struct rd_raft *r, uint64_t id);
/* True when this node may start an election: it is a voter, or it was one
 * before a removal that has not committed yet (thesis §4.2.2). */
bool rd__promotable(const struct rd_raft *r);
/* Votes or acknowledgements needed: a majority of the latest
 * configuration's voters (§5.2, thesis §4.1). At least 1. */
uint32_t rd__quorum(const struct rd_raft *r);

/* Wake a quiesced group (no-op otherwise): ticks count again, from an
 * election and heartbeat timer at 0; a leader starts a fresh check-quorum
 * round (thesis §6.2: only members heard from after the wake count). */
void rd__wake(struct rd_raft *r, uint8_t cause);
/* Leader: has it nothing to do, so that it may quiesce (raft.h)? */
bool rd__can_quiesce(const struct rd_raft *r);

/* --- update.c --- */

/* Queue `m` for the next update, stamped with the group, this node as
 * sender and the current term unless m->term is set. For an append,
 * `ent_lo` is the index of its first entry: the entries are attached from
 * the log when the update is handed out, and the message is dropped if the
 * log was truncated in between (generation check). m->entries is ignored.
 * A message that cannot be queued (ENOMEM) is lost, which Raft tolerates. */
void rd__send(struct rd_raft *r, const struct rd_message *m, uint64_t ent_lo);
/* Queue append `m` whose m->n_entries entries are `owned` (read from the
 * log source, tail.c): ownership of the block passes to the queue, which
 * frees it once the update that hands the message out is advanced. */
void rd__send_owned(struct rd_raft *r, const struct rd_message *m,
                    struct rd_entry *owned);

/* --- tail.c --- */

/* Leave in memory only what the bound allows (raft.h, "The in-memory
 * tail"), or, with `all`, nothing the log source can serve: evict the
 * oldest entries that are durable, applied and referenced by no queued
 * message, recording the configurations of evicted membership changes.
 * No-op without a source. Not between get_update and advance. */
void rd__tail_trim(struct rd_raft *r, bool all);
/* Read the entries of an append to follower `from` index `lo` (< the
 * in-memory tail) from the log source: up to max_msg_bytes as rd__send_append
 * counts them (at least one), checked against the log's terms. On success
 * stores a block for rd__send_owned in *owned, the count in *n and the
 * counted bytes in *bytes; false (counted) when the source failed or gave
 * entries that do not match the log, or on ENOMEM. */
bool rd__tail_read(struct rd_raft *r, uint64_t lo, struct rd_entry **owned, uint32_t *n,
                   uint64_t *bytes);
/* The configuration as of the last evicted membership change, and the one
 * before it (snap_conf when there is none), and that change's index (0:
 * none): where rd__conf_recompute starts its scan of the memory tail. */
void rd__tail_confs(const struct rd_raft *r, struct rd_conf_state *conf,
                    struct rd_conf_state *prev, uint64_t *index);
/* The configuration at `index` (snap_index <= index < lo) from the
 * evicted changes; drops the records at or below it (a compaction). */
struct rd_conf_state rd__tail_conf_compact(struct rd_raft *r, uint64_t index);
/* Forget every evicted change's configuration (a snapshot replaced the
 * log: they are its history now). */
void rd__tail_confs_clear(struct rd_raft *r);

/* --- election.c --- */

/* Start an election (pre = true: a pre-vote round for term + 1, thesis
 * §9.6, that changes no state on the voters) and ask every voter. A
 * single-voter group wins at once. `transfer` marks a campaign started by
 * TIMEOUT_NOW (thesis §3.10), which voters grant despite a known leader.
 * Precondition: rd__promotable(r). */
void rd__campaign(struct rd_raft *r, bool pre, bool transfer);
/* Answer a (pre-)vote request `m` whose term was already reconciled by
 * the step dispatch: grant at most one vote per term (§5.2) to a candidate
 * whose log is at least as up to date (§5.4.1). */
void rd__handle_vote(struct rd_raft *r, const struct rd_message *m);
/* Count a (pre-)vote answer `m` for the current campaign; ignored unless
 * r is (pre-)candidate for that round. A quorum of grants moves on (pre-vote
 * to vote, vote to leader); a quorum of rejections ends as follower. */
void rd__handle_vote_resp(struct rd_raft *r, const struct rd_message *m);

/* --- replication.c --- */

/* Leader only: send `pr` the next append (up to max_msg_bytes of entries
 * from pr->next), or a snapshot when the entries it needs are compacted
 * (§7). `send_if_empty` sends an empty append (a probe or commit update)
 * when there is nothing new. Returns false when nothing was sent: not
 * leader, `pr` is self, the in-flight window is full, a probe is
 * outstanding or a snapshot is being sent. */
bool rd__send_append(struct rd_raft *r, struct rd__pr *pr, bool send_if_empty);
/* Leader only: rd__send_append to every member, then fill each replicating
 * member's window (pipelining). */
void rd__bcast_append(struct rd_raft *r);
/* Leader only: a heartbeat to every other member, carrying a commit index
 * no higher than what that member is known to hold, and `ctx` (the
 * ReadIndex round, thesis §6.4; 0: none). */
void rd__bcast_heartbeat(struct rd_raft *r, uint64_t ctx, bool quiesce);
/* Leader only: advance commit to the highest index durable on a quorum
 * (this node counts with its persisted prefix, never more: §10.2.1), if that
 * entry is of the current term (§5.4.2). Returns true when commit moved;
 * then completes reads waiting on it and handles a committed removal of
 * this leader. */
bool rd__maybe_commit(struct rd_raft *r);
/* Follower: commit up to the leader's commit hint, but never past this
 * node's persisted prefix or last entry (invariant: commit <= durable). */
void rd__follower_commit(struct rd_raft *r);
/* Follower: handle an append `m` from the leader of the current term (the
 * dispatch checked the term): the §5.3 consistency check on (index,
 * log_term), truncation of a conflicting suffix, append, commit hint, and
 * the answer (a reject carries a hint for fast backtracking). */
void rd__handle_append(struct rd_raft *r, const struct rd_message *m);
/* Leader: handle an append answer `m`: on reject step pr->next back and
 * probe again; on success advance match/next, maybe commit, and keep
 * sending. Answers from non-members are ignored. */
void rd__handle_append_resp(struct rd_raft *r, const struct rd_message *m);
/* Follower: take the commit of heartbeat `m` (bounded by the log) and
 * answer with its context, which acknowledges a ReadIndex round. */
void rd__handle_heartbeat(struct rd_raft *r, const struct rd_message *m);
/* Leader: a heartbeat answer `m` marks the member active, acknowledges
 * its ReadIndex round and resumes sending if it lags; ignored from
 * non-members. */
void rd__handle_heartbeat_resp(struct rd_raft *r, const struct rd_message *m);
/* Follower: install the snapshot of `m` unless it is not newer than commit
 * (§7): the log restarts after it and the membership becomes the
 * snapshot's. Answers with the resulting last index. */
void rd__handle_snapshot(struct rd_raft *r, const struct rd_message *m);
/* Reset `pr` to probe from the end of the leader's log, nothing matched,
 * nothing in flight (on election and when a member is added). */
void rd__pr_reset(struct rd_raft *r, struct rd__pr *pr);
/* The in-flight window of `pr` (max_inflight slots): allocated on demand
 * when a leader starts pipelining to it (false on ENOMEM: it stays in
 * probe, one append at a time); released when the leader quiesces or steps
 * down, so that only a working leader holds windows. */
bool rd__pr_window(struct rd_raft *r, struct rd__pr *pr);
void rd__pr_window_free(struct rd__pr *pr);
/* Leader: append one entry of the current term to the local log (a conf
 * change also becomes the latest configuration, thesis §4.1) and set
 * *index_out (may be NULL) to its index. Returns 0 or RD_ENOMEM. The entry
 * is sent by the caller's next broadcast and committed once a quorum,
 * this node's durable prefix included, holds it. */
int rd__append_local(struct rd_raft *r, uint8_t type, const void *data, uint32_t len,
                     uint64_t *index_out);

/* --- membership.c --- */

/* A conf-change entry `e` was just appended to the log (by the leader or
 * a follower): it becomes the latest configuration at once, committed or
 * not (thesis §4.1), the previous one is kept for rd__promotable, and
 * progress entries follow. `e` must be the last entry of the log. */
void rd__conf_entry_appended(struct rd_raft *r, const struct rd_entry *e);
/* Apply the membership change in entry `e` to `cs` (thesis §4.1); a change
 * that does not apply is skipped, identically on every node. */
void rd__conf_apply_entry(struct rd_conf_state *cs, const struct rd_entry *e);
/* Rebuild the configuration from the snapshot's and the conf entries still
 * in the log, after a truncation removed some (thesis §4.1: a server falls
 * back to the previous configuration then). */
void rd__conf_recompute(struct rd_raft *r);
/* Advance r->applied_conf over the conf-change entries among `n`
 * committed entries `e` just handed out for applying. */
void rd__conf_applying(struct rd_raft *r, const struct rd_entry *e, size_t n);
/* Make r->prs hold exactly the members of r->conf: add progress for new
 * members (reset to probe), drop removed ones, update learner flags. */
void rd__sync_progress(struct rd_raft *r);
/* Called when commit advanced on a leader: if the latest configuration is
 * committed and no longer has this node as a voter, broadcast the commit
 * and step down (thesis §4.2.2). */
void rd__leader_conf_committed(struct rd_raft *r);
/* TIMEOUT_NOW from the current leader (thesis §3.10): campaign at once,
 * skipping pre-vote, if this node may be elected. */
void rd__handle_timeout_now(struct rd_raft *r, const struct rd_message *m);

/* --- readindex.c --- */

/* Leader: start a ReadIndex round (thesis §6.4) for context `ctx` asked by
 * member `from` (self for a local read). The read index is commit once an
 * entry of this term has committed, else it waits for that; a heartbeat
 * round confirms leadership. Dropped silently on ENOMEM (the asker times
 * out). */
void rd__handle_read_index(struct rd_raft *r, uint64_t from, uint64_t ctx);
/* Leader: deliver, in order, the pending reads whose index is known and
 * whose heartbeat round a quorum acknowledged. */
void rd__reads_advance(struct rd_raft *r);
/* Leader, after commit advanced: once the commit is of this term, pending
 * reads without an index take it; then rd__reads_advance. */
void rd__reads_on_commit(struct rd_raft *r);
/* Drop every unconfirmed read (leadership lost); the callers time out. */
void rd__reads_reset(struct rd_raft *r);
void rd__reads_tick(struct rd_raft *r);
void rd__handle_read_index_resp(struct rd_raft *r, const struct rd_message *m);

#endif
