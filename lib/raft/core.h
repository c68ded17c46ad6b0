/*
 * Internal state of the Raft core, shared by the files of lib/raft. Not part
 * of the public API (raft/raft.h is).
 *
 *   log.c          in-memory log and payload arena
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

#include "raft/raft.h"

/* --- log.c ------------------------------------------------------------------ */

struct rd__chunk {
	uint8_t *buf;
	size_t cap;
	size_t used;
	uint64_t last_index; /* highest index whose payload lives here */
};

/* Entries snap_index+1 .. snap_index+n in ents[head .. head+n). Payloads in a
 * FIFO of chunks that are recycled, so steady state allocates nothing. */
struct rd__log {
	uint64_t snap_index;
	uint64_t snap_term;
	struct rd_entry *ents;
	size_t head;
	size_t n;
	size_t cap;
	struct rd__chunk *chunks; /* FIFO, chunks[0] oldest */
	size_t n_chunks;
	size_t cap_chunks;
	struct rd__chunk spare[4]; /* recycled buffers (at most 4 MiB kept) */
	size_t n_spare;
	size_t chunk_target; /* size of the next new chunk */
	uint64_t gen;        /* bumped on every truncation or reset */
};

void rd__log_init(struct rd__log *l, uint64_t snap_index, uint64_t snap_term);
void rd__log_free(struct rd__log *l);
static inline uint64_t rd__log_last(const struct rd__log *l)
{
	return l->snap_index + l->n;
}
static inline uint64_t rd__log_first(const struct rd__log *l)
{
	return l->snap_index + 1;
}
static inline struct rd_entry *rd__log_at(const struct rd__log *l, uint64_t i)
{
	assert(i > l->snap_index && i <= rd__log_last(l));
	return &l->ents[l->head + (size_t)(i - l->snap_index - 1)];
}
/* Term at i: snap_term at the compaction point, 0 outside the log. */
uint64_t rd__log_term(const struct rd__log *l, uint64_t i);
/* Append a copy of e (payload copied) at index last+1. */
int rd__log_append(struct rd__log *l, uint64_t term, uint8_t type, const void *data,
                   uint32_t len);
/* Remove entries >= from. */
void rd__log_truncate(struct rd__log *l, uint64_t from);
/* Remove entries <= to (to <= last). */
void rd__log_compact(struct rd__log *l, uint64_t to);
/* Drop everything; the log restarts after (index, term). */
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
	/* in-flight window: ring of (last index, bytes), allocated when the
	 * member is added (NULL if that failed: the follower then stays in
	 * probe, one append at a time) */
	uint64_t *infl_idx;
	uint64_t *infl_bytes;
	uint32_t infl_start;
	uint32_t infl_count;
	uint64_t infl_total;
	int vote; /* 0 none, 1 granted, -1 rejected (campaigns) */
};

struct rd__qmsg {
	struct rd_message m;
	uint64_t gen;    /* log generation the entries refer to */
	uint64_t ent_lo; /* first entry index, when n_entries > 0 */
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

	/* membership (thesis §4.1: latest appended configuration) */
	struct rd_conf_state conf;
	struct rd_conf_state snap_conf; /* at the compaction point */
	struct rd_conf_state prev_conf; /* before the latest conf entry */
	uint64_t conf_index;            /* entry that produced conf (0 = snapshot) */
	uint64_t pending_conf_index;    /* leader: no new change until committed */
	struct rd__pr prs[RD_RAFT_MAX_MEMBERS * 2];
	uint32_t n_prs;

	/* timers */
	uint32_t election_elapsed;
	uint32_t heartbeat_elapsed;
	uint32_t randomized_timeout;
	uint64_t ticks; /* ticks since this instance was created */
	uint64_t transferee;
	bool transfer_campaign;

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
	RD__VEC(struct rd_message) out_early;
	RD__VEC(struct rd_message) out_late;
	RD__VEC(struct rd_snap_send) snap_sends;
	RD__VEC(struct rd_snap_send) snap_out;
	bool has_pending_snapshot;
	struct rd_snapshot_meta pending_snapshot;
	struct rd_hard_state prev_hs;
	bool role_changed;
	bool in_update;
	bool bcast_pending; /* proposals since the last hand-out: batch them */
};

/* Grow a vector to hold one more element; false on ENOMEM. */
bool rd__vec_grow(void **v, size_t *cap, size_t n, size_t elem);
#define RD__VEC_PUSH(vec, val)                                                           \
	(rd__vec_grow((void **)&(vec).v, &(vec).cap, (vec).n, sizeof(*(vec).v))          \
	     ? ((vec).v[(vec).n++] = (val), true)                                        \
	     : false)

/* raft.c */
void rd__become_follower(struct rd_raft *r, uint64_t term, uint64_t lead);
void rd__become_leader(struct rd_raft *r);
void rd__reset_timeout(struct rd_raft *r);
struct rd__pr *rd__pr(struct rd_raft *r, uint64_t id);
bool rd__is_voter(const struct rd_raft *r, uint64_t id);
bool rd__promotable(const struct rd_raft *r);
uint32_t rd__quorum(const struct rd_raft *r);

/* update.c */
void rd__send(struct rd_raft *r, const struct rd_message *m, uint64_t ent_lo);

/* election.c */
void rd__campaign(struct rd_raft *r, bool pre, bool transfer);
void rd__handle_vote(struct rd_raft *r, const struct rd_message *m);
void rd__handle_vote_resp(struct rd_raft *r, const struct rd_message *m);

/* replication.c */
bool rd__send_append(struct rd_raft *r, struct rd__pr *pr, bool send_if_empty);
void rd__bcast_append(struct rd_raft *r);
void rd__bcast_heartbeat(struct rd_raft *r, uint64_t ctx);
bool rd__maybe_commit(struct rd_raft *r);
void rd__follower_commit(struct rd_raft *r);
void rd__handle_append(struct rd_raft *r, const struct rd_message *m);
void rd__handle_append_resp(struct rd_raft *r, const struct rd_message *m);
void rd__handle_heartbeat(struct rd_raft *r, const struct rd_message *m);
void rd__handle_heartbeat_resp(struct rd_raft *r, const struct rd_message *m);
void rd__handle_snapshot(struct rd_raft *r, const struct rd_message *m);
void rd__pr_reset(struct rd_raft *r, struct rd__pr *pr);
int rd__append_local(struct rd_raft *r, uint8_t type, const void *data, uint32_t len,
                     uint64_t *index_out);

/* membership.c */
void rd__conf_entry_appended(struct rd_raft *r, const struct rd_entry *e);
void rd__conf_recompute(struct rd_raft *r);
void rd__sync_progress(struct rd_raft *r);
void rd__leader_conf_committed(struct rd_raft *r);
void rd__handle_timeout_now(struct rd_raft *r, const struct rd_message *m);

/* readindex.c */
void rd__handle_read_index(struct rd_raft *r, uint64_t from, uint64_t ctx);
void rd__reads_advance(struct rd_raft *r);
void rd__reads_on_commit(struct rd_raft *r);
void rd__reads_reset(struct rd_raft *r);
void rd__reads_tick(struct rd_raft *r);
void rd__handle_read_index_resp(struct rd_raft *r, const struct rd_message *m);

#endif
