/*
 * The pure Raft core: one `struct rd_raft` per group, no I/O, no clock, no
 * random source of its own. The caller feeds events in (received messages,
 * proposals, ticks, "persisted up to", "applied up to", read requests) and
 * takes back an update (`struct rd_raft_update`) holding what to persist,
 * what to send, what to apply. Time is the caller's ticks; randomness is a
 * 64-bit seed given at creation, so every run replays exactly.
 *
 * Driving one group synchronously (the driver owns the ordering: persist,
 * send, apply; lib/README.md and lib/multiraft/drive.c):
 *
 *   while (rd_raft_has_update(r)) {
 *       rd_raft_get_update(r, &u);
 *       send(u.msgs);                              // may leave before the write
 *       persist(u.hard_state, u.snapshot, u.entries);   // one synced batch
 *       rd_raft_persisted(r, last entry's index, its term);
 *       send(u.msgs_after_persist);                // only once durable
 *       apply(u.committed); serve(u.reads); fail(u.reads_failed);
 *       stream(u.snap_sends);
 *       rd_raft_advance(r, &u);
 *   }
 *
 * Between rd_raft_get_update and rd_raft_advance the caller may call
 * rd_raft_persisted and the accessors, nothing else: the update's pointers
 * point into the core's log and message buffers, valid until advance.
 *
 * Asynchronous writes are allowed too: advance does not mean "durable". A
 * driver may advance before the write completes (copying what it still
 * needs), keep stepping messages, and call rd_raft_persisted when the write
 * is durable, provided updates are written in order and each update's
 * msgs_after_persist are held until its write is durable. The core never
 * counts undurable entries: commit <= the persisted index, always.
 *
 * Which messages may leave before the update's writes are durable (thesis
 * §10.2.1): `msgs` holds only a leader's APPEND / HEARTBEAT / TIMEOUT_NOW
 * messages, and only when the update carries no new term or vote; everything
 * that acknowledges or depends on durable state (vote and pre-vote requests
 * and responses, append responses, read-index traffic, anything after a term
 * or vote change) is in `msgs_after_persist`. The leader counts its own log
 * toward commit only up to the index passed to rd_raft_persisted.
 *
 * Snapshots: a follower behind the compaction point appears in `snap_sends`.
 * The runtime streams its latest snapshot (at or after the requested index)
 * out of band and, when the follower's runtime has the data, that runtime
 * steps an RD_MSG_SNAPSHOT carrying only the metadata (term = the leader's
 * term). If the core accepts it (rd_raft_snapshot_acceptable), the
 * follower's next update has `has_snapshot`: install it (state machine :=
 * snapshot; the log is cut up to it, and emptied unless it holds the
 * snapshot's last entry with its term, Raft §7) as part of that update's
 * write, or, if the
 * runtime installed it before stepping, just persist the update. The leader's runtime
 * reports the stream's outcome with rd_raft_report_snapshot (or the follower's node sends
 * RD_MSG_SNAPSHOT_STATUS); the follower's append response then moves the
 * leader on.
 *
 * Threading: none. A group must be used from one thread at a time.
 */
#ifndef RD_RAFT_RAFT_H
#define RD_RAFT_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/types.h"

/* Message kinds. Values mirror RaftMessageType in proto/raftd.proto. */
enum rd_msg_type {
	RD_MSG_VOTE = 1,             /* RequestVote (§5.2) */
	RD_MSG_VOTE_RESP = 2,        /* reject = not granted */
	RD_MSG_PRE_VOTE = 3,         /* thesis §9.6; term = term it would use */
	RD_MSG_PRE_VOTE_RESP = 4,    /* term = the request's term when granted */
	RD_MSG_APPEND = 5,           /* AppendEntries (§5.3) */
	RD_MSG_APPEND_RESP = 6,      /* index = last matching index, or rejected */
	RD_MSG_HEARTBEAT = 7,        /* commit, context = ReadIndex round */
	RD_MSG_HEARTBEAT_RESP = 8,   /* context echoed */
	RD_MSG_TIMEOUT_NOW = 9,      /* leadership transfer (thesis §3.10) */
	RD_MSG_SNAPSHOT = 10,        /* InstallSnapshot: meta only, data out of band */
	RD_MSG_SNAPSHOT_STATUS = 11, /* to the leader: snapshot sent (reject = failed) */
	RD_MSG_READ_INDEX = 12,      /* follower -> leader: context = caller's read ctx */
	RD_MSG_READ_INDEX_RESP = 13, /* leader -> follower: index; reject = failed */
};
#define RD_MSG_TYPE_MAX 13

/* VOTE / PRE_VOTE `context` value marking a campaign started by TimeoutNow:
 * voters then ignore their leader lease (thesis §3.10, §4.2.3). */
#define RD_RAFT_CTX_TRANSFER 1

/* One Raft message. Plain data: maps 1:1 to RaftMessage in the proto. Fields
 * unused by a type are 0. `entries` points at `n_entries` entries; when the
 * core hands a message out they stay valid until rd_raft_advance; when the
 * caller steps one in they need only stay valid for the call (copied). */
struct rd_message {
	uint8_t type; /* enum rd_msg_type */
	bool reject;
	uint64_t group;
	uint64_t from;
	uint64_t to;
	uint64_t term;
	uint64_t log_term;
	uint64_t index;
	uint64_t commit;
	uint64_t reject_hint;   /* APPEND_RESP reject: follower's last index */
	uint64_t conflict_term; /* APPEND_RESP reject: term at reject_hint (0 = none) */
	uint64_t context;       /* heartbeat round / read ctx / transfer mark */
	bool quiesce;           /* HEARTBEAT: the leader stops ticking (see below) */
	struct rd_entry *entries;
	uint32_t n_entries;
	struct rd_snapshot_meta snapshot; /* SNAPSHOT only */
};

enum rd_raft_role {
	RD_RAFT_FOLLOWER = 0,
	RD_RAFT_PRE_CANDIDATE = 1,
	RD_RAFT_CANDIDATE = 2,
	RD_RAFT_LEADER = 3,
};

/* Per-follower replication state on the leader (etcd's probe/replicate). */
enum rd_progress_state {
	RD_PROGRESS_PROBE = 0,     /* one append at a time until a match is found */
	RD_PROGRESS_REPLICATE = 1, /* pipelined within the in-flight window */
	RD_PROGRESS_SNAPSHOT = 2,  /* waiting for a snapshot to be sent */
};

struct rd_progress {
	uint64_t id;
	uint64_t match;
	uint64_t next;
	uint8_t state; /* enum rd_progress_state */
	bool learner;
	bool recent_active; /* heard from since the last check-quorum round */
	uint32_t inflight;  /* append messages in flight */
	uint64_t inflight_bytes;
};

/* Membership change kinds (thesis §4.1, one server at a time); values mirror
 * ConfChangeType in the proto. */
enum rd_cc_type {
	RD_CC_ADD_VOTER = 0,
	RD_CC_ADD_LEARNER = 1,
	RD_CC_PROMOTE_LEARNER = 2,
	RD_CC_REMOVE = 3,
};

/* Encoded form of a CONF_CHANGE entry's data, as the core reads it: byte 0
 * the rd_cc_type, bytes 1..8 the node id little-endian, then opaque context
 * bytes (e.g. the node's address) that the core ignores. */
#define RD_RAFT_CC_HEADER 9

/* Largest in-flight window (messages per follower). */
#define RD_RAFT_MAX_INFLIGHT 4096

/* Per-entry cost counted against max_msg_bytes (index, term, type). */
#define RD_RAFT_ENTRY_OVERHEAD 24

/*
 * The in-memory tail. Every entry since the compaction point is in the
 * log, but a group given a log source keeps only the newest in memory: up
 * to log_mem_bytes of them (payloads plus sizeof(struct rd_entry) each)
 * while it works, and none while it is quiesced. A leader keeps up to four
 * times that when its pipelining (replicate-state) followers have not yet
 * acknowledged the entries, as TiKV's entry cache waits for its
 * followers, so that a healthy follower is fed from memory. Older entries
 * are read
 * back through the source, as etcd-raft's Storage interface serves them:
 * a lagging follower's appends are built from it (one read per append, up
 * to max_msg_bytes), so a follower behind the tail but not behind the
 * compaction point catches up from the log, not by snapshot (§7 is for
 * entries that are gone).
 *
 * What never leaves memory: an entry not yet durable here (not covered by
 * rd_raft_persisted: it is to be written, and the source would not have
 * it) or not yet applied (rd_raft_applied: the update hands committed
 * entries out from memory, and the runtime applies each update's entries
 * before advancing, so what waits for the applier is at most what arrived
 * since the last update, or what a restart found unapplied). A restart's
 * replay therefore needs no source read: rd_raft_new gets those entries
 * from the caller and keeps them until they are applied, then evicts.
 *
 * Terms never leave: the core keeps the term of every index of the log
 * as runs (one pair per term change), so the AppendEntries consistency
 * check and conflict hints (§5.3), the leader's backtracking and the
 * up-to-date check of §5.4.1 (last entry only) never read storage, and
 * there is no term(i) call to fail. The configurations of evicted
 * membership changes are kept too (one per change), so a truncation or a
 * compaction still finds the configuration at any index (thesis §4.1).
 *
 * entries(ud, group, lo, hi, max_bytes, &ents, &n): the entries [lo, hi)
 * of `group`'s durable log (lo < hi, none compacted by this core),
 * stopping before the entry that would take the payload bytes past
 * max_bytes, but at least one. Returns 0 with n >= 1 entries in *ents,
 * valid until the next call on the source (the core copies them), or an
 * RD_E* code. The core checks every entry's index and term against its
 * own: an entry that differs is refused like a read error. On an error
 * the core sends that follower nothing (it invents no entries), counts it
 * (rd_raft_log_stats) and tries again at the follower's next heartbeat
 * answer. Called from inside the core's calls (step, tick, propose,
 * persisted, ...), on the group's thread.
 */
struct rd_raft_log_source {
	int (*entries)(void *ud, uint64_t group, uint64_t lo, uint64_t hi,
	               uint64_t max_bytes, const struct rd_entry **ents, size_t *n);
	void *ud;
};

/* What the in-memory tail holds and how often it was read past. */
struct rd_raft_log_stats {
	uint64_t mem_first;     /* first index in memory (last + 1: none) */
	uint64_t mem_entries;   /* entries in memory */
	uint64_t mem_bytes;     /* their payloads + sizeof(struct rd_entry) each */
	uint64_t source_reads;  /* calls of source->entries */
	uint64_t source_errors; /* failed or refused reads */
};

struct rd_raft_config {
	uint64_t group;
	uint64_t id;              /* this node, nonzero */
	uint32_t election_ticks;  /* timeout drawn from [election, 2*election) */
	uint32_t heartbeat_ticks; /* < election_ticks */
	uint32_t
	    max_inflight_msgs; /* append window per follower, 1..RD_RAFT_MAX_INFLIGHT */
	uint64_t max_inflight_bytes; /* 0 = unlimited */
	/* Bytes per append: payloads plus RD_RAFT_ENTRY_OVERHEAD per entry; an
	 * append always carries at least one entry. Also the largest proposal
	 * accepted. The in-flight byte window counts the same way. */
	uint64_t max_msg_bytes;
	bool pre_vote;
	bool check_quorum;
	/* Quiescence (rd_raft_quiesced): an idle group stops ticking. Off,
	 * the group ticks forever as in plain Raft. */
	bool quiesce;
	uint64_t seed; /* randomized election timeout */
	/* The in-memory tail (above): NULL keeps every entry in memory; with
	 * a source, log_mem_bytes bounds a working group's tail (0: no
	 * bound while it works) and a quiesced group holds none. The source
	 * must outlive the group. */
	const struct rd_raft_log_source *log_source;
	uint64_t log_mem_bytes;
	/* Restored durable state (all zero for a brand-new group). */
	struct rd_hard_state hard_state;
	/* Bootstrap membership, used only by a brand-new founding node (no
	 * hard state, snapshot or entries): the core then writes one committed
	 * add-voter entry of term 1 per voter, in this order, at indexes 1..n
	 * (every founding node must be given the same list), and hands them out
	 * in the first update like any entries. A node that joins an existing
	 * group starts with n_voters = 0 and learns the membership from the
	 * leader. On restart membership comes from snapshot.conf and the log's
	 * conf entries (the latest wins, thesis §4.1). */
	struct rd_conf_state conf;
	struct rd_snapshot_meta snapshot; /* compaction point (index 0 = none) */
	const struct rd_entry *entries;   /* snapshot.index+1 .. , copied */
	size_t n_entries;
	uint64_t applied; /* state machine applied index, >= snapshot.index */
};

struct rd_raft;

/* What the in-memory tail of `r` holds now, and its source reads. */
void rd_raft_log_stats(const struct rd_raft *r, struct rd_raft_log_stats *out);

/* A ready read: the read with `ctx` may be served once the local state
 * machine has applied `index` (it has, when it is handed out). */
struct rd_read_state {
	uint64_t ctx;
	uint64_t index;
};

/* "Stream the snapshot at meta to node `to`", then step a SNAPSHOT message
 * carrying only `meta` into that follower (see rd_raft_report_snapshot). */
struct rd_snap_send {
	uint64_t to;
	uint64_t term;
	struct rd_snapshot_meta meta;
};

/* What the caller must do. Every pointer stays valid until rd_raft_advance.
 * Entries in `entries` are to be appended to the durable log, replacing any
 * durable entries at the same or higher indexes. */
struct rd_raft_update {
	bool hard_state_changed;
	struct rd_hard_state hard_state;
	const struct rd_entry *entries; /* to persist */
	size_t n_entries;
	bool has_snapshot; /* install `snapshot` (data received out of band) */
	struct rd_snapshot_meta snapshot;
	const struct rd_message *msgs; /* may be sent before the write */
	size_t n_msgs;
	const struct rd_message *msgs_after_persist; /* only after it */
	size_t n_msgs_after_persist;
	const struct rd_entry *committed; /* to apply, in order */
	size_t n_committed;
	const struct rd_read_state *reads;
	size_t n_reads;
	/* Contexts of reads that will not be served (rd_raft_read_index):
	 * fail their waiters. A context appears at most once, in reads or
	 * here, and never both. */
	const uint64_t *reads_failed;
	size_t n_reads_failed;
	const struct rd_snap_send *snap_sends;
	size_t n_snap_sends;
	bool role_changed; /* informational: role or leader changed */
	/* Quiescence: the group quiesced or woke since the last update
	 * (quiesce_changed); `quiesced` is its state now, `wake_cause` (enum
	 * rd_raft_wake) why it woke, 0 when it did not. */
	bool quiesce_changed;
	bool quiesced;
	uint8_t wake_cause;
};

/*
 * Quiescence (as CockroachDB's quiesced ranges and TiKV's hibernate
 * regions). A leader with nothing to do (every entry committed and durable
 * here, the log of every member not reported down (rd_raft_peer_down)
 * matched with nothing in flight, no pending read, transfer or snapshot, no
 * read of its own forwarded elsewhere unanswered, and a quorum heard from
 * in this check-quorum round)
 * sends, at a heartbeat time, one last heartbeat flagged `quiesce` and then
 * ignores its ticks; a follower that takes such a heartbeat from its leader
 * (with no forwarded read outstanding) ignores its ticks too: its election
 * timer stands still. A quiesced group's ticks are no-ops, so the caller
 * need not tick it at all.
 *
 * It wakes (resumes ticking, timers restarted) on: a proposal, conf
 * change, read or transfer on this node; any message other than the
 * answers a quiesced leader expects (heartbeat and append responses, which
 * wake it only when they show it has work, e.g. a follower that lost its
 * log) and a follower's quiesce heartbeat; a vote or pre-vote request of a
 * later term (a leader, even for one refused by its lease: the candidate
 * cannot hear it and it must heartbeat the candidate; a follower, only from
 * its own leader, which no longer leads then); a change of term or role;
 * and rd_raft_peer_down. Once woken it is a plain Raft group until
 * it quiesces again.
 *
 * Liveness comes from the caller: a follower of a quiesced group campaigns
 * only after rd_raft_peer_down(leader), which the runtime calls when the
 * leader's node stopped being live (no node heartbeat for an election
 * timeout, or a new process there). Why Raft's rules still hold:
 *  - Safety is untouched: quiescence only stops timers; every message is
 *    handled as in Raft, and a term or role change wakes.
 *  - ReadIndex (thesis §6.4) never relies on a lease here: every read is
 *    confirmed by a heartbeat round answered by a quorum in the current
 *    term, and a read wakes the leader, so a deposed quiesced leader gets
 *    no quorum (the others answer with their higher term, and it steps
 *    down) and serves nothing.
 *  - Check-quorum (§6.2) stops with the timers, but a leader quiesces only
 *    in a round where a quorum answered, anything that needs it to lead
 *    wakes it, and waking starts a fresh round: it counts only members heard
 *    from after the wake, so a leader cut off while quiesced steps down
 *    within an election timeout of its next request.
 *  - The vote-refusing lease (§4.2.3) and pre-vote (§9.6): a quiesced
 *    follower refuses (pre-)votes, as its election timer stands still,
 *    while the runtime says the leader's node is live; that is the lease
 *    extended by node liveness instead of by heartbeats. When the leader's
 *    node is down, rd_raft_peer_down ends the lease at once (no message
 *    came from it for an election timeout, which is what the lease asks)
 *    and the follower campaigns, pre-vote first, as after any timeout; so
 *    does a (pre-)vote request from the leader itself, which says that it
 *    leads no more. A candidate cut off from a live leader wakes only that
 *    leader (pre-vote requests reach it), which heartbeats it back: the
 *    other followers' timers stay still, so they never grant it a vote
 *    against a leader that is alive
 *    (tests/raft/scenarios/43_quiesce_one_cut_link.txt).
 */
enum rd_raft_wake {
	RD_WAKE_NONE = 0,
	RD_WAKE_PROPOSAL = 1,    /* rd_raft_propose */
	RD_WAKE_CONF_CHANGE = 2, /* rd_raft_propose_conf_change */
	RD_WAKE_READ = 3,        /* rd_raft_read_index */
	RD_WAKE_TRANSFER = 4,    /* rd_raft_transfer_leader */
	RD_WAKE_MESSAGE = 5,     /* a message stepped */
	RD_WAKE_PEER_DOWN = 6,   /* rd_raft_peer_down */
	RD_WAKE_ELECTION = 7,    /* a term or role change, a campaign */
};
#define RD_WAKE_MAX 7

/* Static name of a wake cause ("proposal", ...; "?" when unknown). */
const char *rd_raft_wake_name(uint8_t cause);

/* Is the group quiesced now (its ticks are no-ops)? */
bool rd_raft_quiesced(const struct rd_raft *r);

/* The runtime's word that node `node` is not live: it sent no node
 * heartbeat for an election timeout, or it restarted (a new process does
 * not remember leading). A quiesced follower whose leader is `node` wakes
 * with its leader lease over, so it grants votes and campaigns after its
 * randomized timeout. A leader notes that `node` is down, so that it may
 * quiesce without `node`'s acknowledgement (it catches up when it is
 * back: its first message wakes the group), and wakes if it was quiesced
 * (a fresh check-quorum round). A leader forgets the note on any message
 * from `node` and when it is elected: call again for the nodes still not
 * live when a group becomes leader. Returns true when the group woke. */
bool rd_raft_peer_down(struct rd_raft *r, uint64_t node);

/* Create a group from `cfg` (which need not outlive the call; entries and
 * their data are copied). On success stores the group in *out and returns
 * 0; RD_EINVAL for a bad config (msg says why), RD_ENOMEM. */
int rd_raft_new(const struct rd_raft_config *cfg, struct rd_raft **out, char *msg);

/* Free a group and everything it owns. NULL is fine. */
void rd_raft_free(struct rd_raft *r);

/* Step a received message. The caller checks nothing; foreign-group,
 * misaddressed and malformed messages are refused (RD_EINVAL / RD_EPROTO,
 * state unchanged); stale ones are dropped (0). `m` and its entries are only
 * read during the call (entries and payloads are copied). */
int rd_raft_step(struct rd_raft *r, const struct rd_message *m);

/* Advance logical time by one tick (election and heartbeat timers). */
void rd_raft_tick(struct rd_raft *r);

/* Propose an entry (RD_ENTRY_NORMAL; `data` copied). On success the entry's
 * index is stored in *index_out (may be NULL). RD_ENOTLEADER (see
 * rd_raft_leader), RD_EBUSY during a leadership transfer, RD_ETOOBIG over
 * max_msg_bytes. */
int rd_raft_propose(struct rd_raft *r, uint8_t type, const void *data, uint32_t len,
                    uint64_t *index_out);

/* Propose a membership change (thesis §4.1). `ctx` (len bytes, may be NULL)
 * is stored after the header and ignored by the core. RD_EBUSY while another
 * change is uncommitted or before the leader committed an entry of its term;
 * RD_EINVAL for a change that does not apply (adding a member, removing a
 * stranger, promoting a non-learner, removing the last voter). */
int rd_raft_propose_conf_change(struct rd_raft *r, uint8_t cc_type, uint64_t node,
                                const void *ctx, uint32_t len, uint64_t *index_out);

/* Encode / decode a conf change entry payload (RD_RAFT_CC_HEADER bytes).
 * decode returns RD_EINVAL on a short or unknown payload. */
void rd_raft_cc_encode(uint8_t out[RD_RAFT_CC_HEADER], uint8_t cc_type, uint64_t node);
int rd_raft_cc_decode(const uint8_t *data, uint32_t len, uint8_t *cc_type,
                      uint64_t *node);

/* Apply a conf change to `cs` (pure; used by the core and by callers who
 * track membership). RD_EINVAL when it does not apply. */
int rd_raft_conf_apply(struct rd_conf_state *cs, uint8_t cc_type, uint64_t node);

/* Whether `id` is a voter (has_voter) or a learner (has_learner) of `cs`.
 * Pure, like rd_raft_conf_apply. */
bool rd_raft_conf_has_voter(const struct rd_conf_state *cs, uint64_t id);
bool rd_raft_conf_has_learner(const struct rd_conf_state *cs, uint64_t id);

/* Request a linearizable read (thesis §6.4). When it is safe, a read state
 * {ctx, index} appears in an update, handed out only once applied >= index.
 * Followers forward to the leader. RD_ENOLEADER when no leader is known,
 * RD_EINVAL for ctx 0. A read that cannot be confirmed appears in an
 * update's reads_failed instead: the leader lost its leadership, or did not
 * hear from a quorum within election_ticks, or (forwarded) no answer came
 * within 2 x election_ticks (ticks of this node).
 *
 * `ctx` is the caller's: the core takes an answer from the leader only for
 * a context this instance sent and has no answer for yet, so answers to an
 * earlier instance of the group (a restart: the network may deliver them
 * late) and duplicates are dropped. The caller should still not reuse a
 * context across instances, e.g. by drawing a random start per process. */
int rd_raft_read_index(struct rd_raft *r, uint64_t ctx);

/* Leader: transfer leadership to `to` (thesis §3.10). Proposals are refused
 * (RD_EBUSY) until it completes or aborts after an election timeout.
 * RD_ENOTLEADER, RD_EINVAL (not a voter), RD_EBUSY (already transferring). */
int rd_raft_transfer_leader(struct rd_raft *r, uint64_t to);

/* Start an election now (pre-vote first when configured). RD_EINVAL when
 * this node may not campaign (not a voter, unless removed by a change that
 * is not yet committed, thesis §4.2.2); no-op for a leader. */
int rd_raft_campaign(struct rd_raft *r);

/* Allow or forbid this node to campaign (allowed at creation). While
 * forbidden, election timeouts and TIMEOUT_NOW start no election and
 * rd_raft_campaign returns RD_EBUSY; the node still votes, replicates and,
 * if it leads, keeps leading. The runtime forbids campaigns on a node whose
 * disk is slow, so that leadership it moved away does not come back.
 * Liveness: a group whose other voters cannot win an election (down, or
 * behind this node's log, §5.4.1) stays without a leader until it is
 * allowed again. */
void rd_raft_set_campaign(struct rd_raft *r, bool allowed);
bool rd_raft_campaign_allowed(const struct rd_raft *r);

/* The entries up to `index` (whose term is `term`) are durable, and so is
 * everything handed out in the updates before it (hard state, snapshot).
 * Stale notices (the entry was since replaced) are ignored. May be called at
 * any time, also between rd_raft_get_update and rd_raft_advance. */
void rd_raft_persisted(struct rd_raft *r, uint64_t index, uint64_t term);

/* The state machine has applied up to `index` (<= last entry handed out for
 * applying). rd_raft_advance calls this for the update's entries. */
void rd_raft_applied(struct rd_raft *r, uint64_t index);

/* Follower: would stepping an RD_MSG_SNAPSHOT of leader term `term` with
 * `meta` install it? True iff term >= our term and meta->index > commit.
 * A runtime that installs the snapshot data into its state machine before
 * stepping the message must ask this first (and discard the data when
 * false): a snapshot the core does not take would leave the state machine
 * ahead of or behind the core's applied index. Stepping it right after a
 * true answer always installs (has_snapshot in the next update). */
bool rd_raft_snapshot_acceptable(const struct rd_raft *r, uint64_t term,
                                 const struct rd_snapshot_meta *meta);

/* Leader: the snapshot stream to `to` finished; ok = the follower got it
 * (the leader then waits for its append response), !ok = retry later. */
void rd_raft_report_snapshot(struct rd_raft *r, uint64_t to, bool ok);

/* Discard the in-memory log up to `index` (<= applied) after the caller took
 * a snapshot there; stores the new compaction point in *meta_out (may be
 * NULL) for the caller to persist with its snapshot. RD_EINVAL past
 * applied; 0 (no-op) at or before the current compaction point. */
int rd_raft_compact(struct rd_raft *r, uint64_t index, struct rd_snapshot_meta *meta_out);

/* Is there anything for the caller to do? */
bool rd_raft_has_update(const struct rd_raft *r);

/* Fill *u with the pending work (see the file comment). Committed entries
 * are those up to the commit index not yet handed out; read states are
 * those whose index is covered once this update's entries are applied. */
void rd_raft_get_update(struct rd_raft *r, struct rd_raft_update *u);

/* The caller has done what `u` asked (applied its committed entries; sent
 * its messages). Frees the update's buffers for reuse. Durability is
 * reported separately with rd_raft_persisted. */
void rd_raft_advance(struct rd_raft *r, const struct rd_raft_update *u);

/* Accessors: read-only views of the group's state as the core sees it
 * now, callable at any time; of the log, only up to rd_raft_persisted_index
 * is known to be durable. */
enum rd_raft_role rd_raft_role(const struct rd_raft *r);
uint64_t rd_raft_id(const struct rd_raft *r);
uint64_t rd_raft_group(const struct rd_raft *r);
uint64_t rd_raft_leader(const struct rd_raft *r); /* 0 = unknown */
uint64_t rd_raft_term(const struct rd_raft *r);
uint64_t rd_raft_vote(const struct rd_raft *r);
uint64_t rd_raft_commit(const struct rd_raft *r);
uint64_t rd_raft_applied_index(const struct rd_raft *r);
uint64_t rd_raft_first_index(const struct rd_raft *r);
uint64_t rd_raft_last_index(const struct rd_raft *r);
uint64_t rd_raft_persisted_index(const struct rd_raft *r);
uint64_t rd_raft_transferee(const struct rd_raft *r); /* 0 = none */
/* Leader: the highest index known replicated on `id` (its own last index
 * for itself); 0 for a stranger or when not leading. */
uint64_t rd_raft_match(const struct rd_raft *r, uint64_t id);
/* The latest configuration in the log, committed or not: the one this node
 * uses (thesis §4.1). */
const struct rd_conf_state *rd_raft_conf(const struct rd_raft *r);
/* The configuration as of the last entry handed out for applying (or of an
 * installed snapshot): what the state machine holds once the current
 * update's committed entries are applied. It is what a snapshot of the
 * state machine at that index must carry (thesis §5.1) and what the
 * caller persists beside its applied index; the latest appended one may
 * still be undone by a truncation (thesis §4.1). */
const struct rd_conf_state *rd_raft_conf_applied(const struct rd_raft *r);
const struct rd_snapshot_meta *rd_raft_snapshot(const struct rd_raft *r);
/* Term of the entry at `index`; 0 when compacted away or beyond the log. */
uint64_t rd_raft_term_at(const struct rd_raft *r, uint64_t index);
/* Leader only: copy the progress of member `id` into *out. false otherwise. */
bool rd_raft_progress(const struct rd_raft *r, uint64_t id, struct rd_progress *out);
/* Static names for logs and traces ("leader", ...); an unknown value
 * gets "?", never NULL. */
const char *rd_raft_role_name(enum rd_raft_role role);
const char *rd_msg_type_name(uint8_t type);

#endif
