/*
 * Durable storage for one raftd node: one RocksDB instance holding every
 * group's Raft log, Raft state, key-value state machine and the node catalog
 * (durability rules under "Failure policy" below). The byte-by-byte key schema is in
 * lib/storage/schema.h.
 *
 * Threading: a storage handle is used from the node's event-loop thread only.
 * At most one rd_storage_batch is being filled at a time. The one exception
 * is the writer thread (rd_storage_writer_start): it makes a started batch's
 * two writes while the loop goes on; everything it publishes is published
 * on the loop's thread by rd_storage_commit_finish.
 *
 * Reads (log, Raft state, KV) see what the last rd_storage_commit made
 * durable, never what a batch still holds.
 *
 * Failure policy: a failed RocksDB write or sync is fatal. rd_storage_commit
 * logs the RocksDB error and calls abort(); it never returns a failure that
 * a caller could retry and then acknowledge (Raft thesis §3.8: state must
 * be on stable storage before the message that depends on it is sent).
 */
#ifndef RD_STORAGE_STORAGE_H
#define RD_STORAGE_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/types.h"

struct rd_storage;
struct rd_storage_batch;

/* Longest cluster id (bytes, excluding the NUL). */
#define RD_STORAGE_CLUSTER_ID_MAX 64
/* Longest catalog name (bytes, excluding the NUL). */
#define RD_STORAGE_CATALOG_NAME_MAX 64

/* Catalog names the node runtime uses for its opaque blobs. */
#define RD_STORAGE_CATALOG_TOPOLOGY "topology"
#define RD_STORAGE_CATALOG_ROUTING  "routing"

/* The metadata group. Its user data (`raftctl meta put/get`) lives in the
 * same key-value state machine as the data groups, under group id 0; nothing
 * about it is special to storage. */
#define RD_STORAGE_META_GROUP 0

struct rd_storage_options {
	/* Create the data directory and a fresh database when none exists.
	 * When false, a missing directory or database is refused (RD_ENOTFOUND). */
	bool create_if_missing;
	/* The cluster this node belongs to, NUL-terminated, or NULL / "" when
	 * not known yet (a joining node). A database that records a different
	 * cluster id is refused (RD_EMISMATCH). A database without one records
	 * this one. */
	const char *cluster_id;
	/* Bound of the per-group cache of recent log entries (data bytes plus
	 * a fixed per-entry overhead); 0 picks RD_STORAGE_CACHE_DEFAULT. */
	size_t cache_bytes_per_group;
	/* RocksDB block cache for reads; 0 picks 32 MiB. */
	size_t block_cache_bytes;
	/* Client sessions (kv.h, thesis §6.3): at most session_max per group
	 * (the least recently applied one goes first; 0 picks
	 * RD_STORAGE_SESSION_MAX_DEFAULT), and a session not seen for
	 * session_expiry applied entries of its group expires (0 picks
	 * RD_STORAGE_SESSION_EXPIRY_DEFAULT). Both decide what the state
	 * machine answers to a retried command, so every node of a cluster
	 * must use the same values. */
	uint64_t session_max;
	uint64_t session_expiry;
	/* RocksDB write_buffer_size of every column family; 0 picks RocksDB's
	 * default (64 MiB). A full memtable flushes every family (atomic
	 * flush), which is what moves the durable applied index
	 * (rd_storage_durable_applied); tests set it small to flush often. */
	size_t memtable_bytes;
	/* Least nanoseconds between two flushes rd_storage_flush_soon asks
	 * for; 0 picks RD_STORAGE_FLUSH_INTERVAL_NS. */
	uint64_t flush_interval_ns;
};

#define RD_STORAGE_SESSION_MAX_DEFAULT    10000u
#define RD_STORAGE_SESSION_EXPIRY_DEFAULT 100000u

/* RocksDB's max_total_wal_size: above it the families holding the oldest
 * WAL file are flushed, which bounds the WAL replayed at open. */
#define RD_STORAGE_WAL_MAX (256u << 20)

/* Memory for caches is at most groups x this bound. */
#define RD_STORAGE_CACHE_DEFAULT (256u << 10)

/* Fill `o` with defaults: create_if_missing false, no cluster id. */
void rd_storage_options_init(struct rd_storage_options *o);

/*
 * Open (and with o->create_if_missing, create) the database in `dir`, check
 * it, and load every group's Raft state into memory.
 *
 * Checked at open, each refusal naming what and where in `msg`:
 *   - RocksDB reports corruption (WAL in the middle, SST checksums): RD_ECORRUPT
 *   - a log entry or state record whose own checksum fails: RD_ECORRUPT,
 *     "group G index I: ..."
 *   - a gap in a group's log, a term that decreases along the log: RD_ECORRUPT
 *   - a hard state whose commit is beyond the group's last index, an applied
 *     index beyond commit: RD_ECORRUPT, naming group and indexes
 *   - missing directory / database without create_if_missing: RD_ENOTFOUND
 *   - a different cluster id: RD_EMISMATCH
 * On success *out owns the handle (close with rd_storage_close).
 */
int rd_storage_open(const char *dir, const struct rd_storage_options *o,
                    struct rd_storage **out, char *msg);

/* Close the handle and free everything it owns; NULL is a no-op. Every
 * write already returned by rd_storage_commit is durable; batches must have
 * been freed first. */
void rd_storage_close(struct rd_storage *st);

/* ---- catalog ------------------------------------------------------------- */

/* The cluster id recorded in the database ("" when none yet). The string is
 * owned by the handle. */
const char *rd_storage_cluster_id(const struct rd_storage *st);

/* Record the cluster id once it becomes known (a joining node). Returns 0 if
 * it is recorded now or was already this one, RD_EMISMATCH if another one is
 * recorded, RD_EINVAL if empty or longer than RD_STORAGE_CLUSTER_ID_MAX.
 * Synced write. */
int rd_storage_set_cluster_id(struct rd_storage *st, const char *cluster_id, char *msg);

/* This node's incarnation: a random non-zero 64-bit value written once when
 * the database is created and never changed; a peer that sees a different
 * incarnation for the same node id knows the node lost its disk. */
uint64_t rd_storage_incarnation(const struct rd_storage *st);

/* Read the catalog blob `name` (e.g. RD_STORAGE_CATALOG_TOPOLOGY). On success
 * *data is a malloc'd copy (caller frees; NULL when *len is 0) and 0 is
 * returned; RD_ENOTFOUND when absent. */
int rd_storage_catalog_get(struct rd_storage *st, const char *name, uint8_t **data,
                           size_t *len, char *msg);

/* Write the catalog blob `name` with its own synced write. Names
 * "cluster_id" and "incarnation" are reserved (RD_EINVAL). */
int rd_storage_catalog_put(struct rd_storage *st, const char *name, const uint8_t *data,
                           size_t len, char *msg);

/* ---- groups and Raft state (as loaded at open, kept current by commits) -- */

struct rd_storage_group_info {
	uint64_t group;
	struct rd_hard_state hs; /* zero when never written */
	/* The membership as of `applied` (zero members when never written):
	 * what a snapshot of the state machine carries (thesis §5.1). */
	struct rd_conf_state conf;
	uint64_t applied;             /* last entry applied to the state machine */
	bool has_snapshot;            /* a snapshot was installed */
	struct rd_snapshot_meta snap; /* the last one installed */
	/* The membership as of first_index - 1, the compaction point: the
	 * base to which the conf changes still in the log apply, in order,
	 * to give the latest configuration (thesis §4.1). Empty for a log
	 * that starts at 1. */
	struct rd_conf_state start_conf;
	/* The log holds [first_index, last_index]; it is empty when
	 * first_index == last_index + 1. Entries up to first_index - 1 were
	 * compacted away; that entry's term is compact_term. */
	uint64_t first_index;
	uint64_t last_index;
	uint64_t last_term;
	uint64_t compact_term;
};

/* Number of groups that have any state or log. */
size_t rd_storage_group_count(const struct rd_storage *st);

/* Copy up to `cap` group ids, ascending, into `out`; returns how many groups
 * exist (may be more than cap). */
size_t rd_storage_groups(const struct rd_storage *st, uint64_t *out, size_t cap);

/* Fill *info for `group`. Returns 0, or RD_ENOTFOUND for a group that has
 * never been written (then *info still describes an empty group: first 1,
 * last 0, all state zero). */
int rd_storage_group_info(const struct rd_storage *st, uint64_t group,
                          struct rd_storage_group_info *info);

/* Remove every record of `group` (log, Raft state, state machine) with one
 * synced write, e.g. after this node was removed from the group. Afterwards
 * the group is absent (rd_storage_group_info returns RD_ENOTFOUND). Refused
 * (RD_EAGAIN, nothing written) while the batch being filled holds work for
 * the group: commit it first. Group ids must be below
 * 2^64 - 1. Aborts the process if the write fails. */
int rd_storage_drop_group(struct rd_storage *st, uint64_t group, char *msg);

/* ---- log reads ------------------------------------------------------------- */

/* A reusable buffer of entries. rd_storage_entries fills it; entry data
 * points into `data`, valid until the next fill or rd_entry_buf_free. */
struct rd_entry_buf {
	struct rd_entry *ents;
	size_t n, cap;
	uint8_t *data;
	size_t data_len, data_cap;
};

/* Release the buffer's memory; the struct may be reused (all zero). */
void rd_entry_buf_free(struct rd_entry_buf *b);

/*
 * Entries [lo, hi) of `group` into `out` (replacing its contents), stopping
 * before the entry that would take the total data size past max_bytes, but
 * always at least one entry when lo < hi (as etcd-raft's Storage.Entries).
 * max_bytes 0 means no limit. Served from the per-group cache when it holds
 * [lo, ...), else from RocksDB.
 * Errors: RD_ECOMPACTED when lo < first_index, RD_EUNAVAILABLE when
 * hi > last_index + 1, RD_EINVAL when lo > hi, RD_ECORRUPT on a bad record.
 */
int rd_storage_entries(struct rd_storage *st, uint64_t group, uint64_t lo, uint64_t hi,
                       uint64_t max_bytes, struct rd_entry_buf *out, char *msg);

/* Empty the entry cache of `group` and free its buffers (a quiesced group:
 * it holds no log in memory, lib/raft/raft.h "The in-memory tail"). Reads
 * of its entries go to RocksDB until new entries are cached at the next
 * commit. Call from the thread that commits batches. Unknown group: no-op. */
void rd_storage_cache_drop(struct rd_storage *st, uint64_t group);

/* Term of entry `index`: 0 for index 0, compact_term for first_index - 1.
 * RD_ECOMPACTED below that, RD_EUNAVAILABLE beyond last_index. */
int rd_storage_term(struct rd_storage *st, uint64_t group, uint64_t index, uint64_t *term,
                    char *msg);

/* First and last index of the group's log (see rd_storage_group_info). */
uint64_t rd_storage_first_index(const struct rd_storage *st, uint64_t group);
uint64_t rd_storage_last_index(const struct rd_storage *st, uint64_t group);

/* Call `fn` for each entry of `group` from `lo` (≥ first_index) to the last,
 * in order, without holding more than one entry in memory (for loading the
 * log at start). The entry's data is valid during the call only. A non-zero
 * return from fn stops the scan and is returned. */
typedef int (*rd_storage_entry_fn)(void *arg, const struct rd_entry *e);
int rd_storage_log_scan(struct rd_storage *st, uint64_t group, uint64_t lo,
                        rd_storage_entry_fn fn, void *arg, char *msg);

/* ---- group commit ------------------------------------------------------------ */

/* Create a batch for `st` (allocates; reused across loop iterations without
 * further allocation once its buffers have grown to the working size). */
struct rd_storage_batch *rd_storage_batch_new(struct rd_storage *st);

/* Free a batch; uncommitted work in it is dropped. NULL is a no-op. Call it
 * before rd_storage_close of the batch's handle (it touches the handle). */
void rd_storage_batch_free(struct rd_storage_batch *b);

/* Drop everything in the batch (and the results of its KV applies). The
 * first mutation after rd_storage_commit resets implicitly. */
void rd_storage_batch_reset(struct rd_storage_batch *b);

/* Give back the buffers a batch keeps from one write to the next, which
 * are sized to the largest batch so far (the start's holds every group):
 * for an idle node, after its groups quiesced. No-op while the batch's
 * write is in flight or it holds work. */
void rd_storage_batch_trim(struct rd_storage_batch *b);

/* True when the batch holds no work. */
bool rd_storage_batch_empty(const struct rd_storage_batch *b);

/*
 * Append `n` entries to the log of `group`. Their indexes must be
 * consecutive, with ents[0].index ≤ last + 1 (last as left by earlier calls
 * in this batch) and ≥ first_index. Entries from ents[0].index on that the
 * log already holds are replaced and any tail beyond the new last entry is
 * deleted (Raft §5.3: a conflicting suffix is removed). Replacing an entry
 * at or below the durable commit index is refused (RD_EINVAL): committed
 * entries never change (§5.4); so is a replacement that would end the log
 * below a commit index set earlier in this batch. Terms must not decrease
 * along the log. Entry data is copied; the caller keeps ownership of `ents`.
 */
int rd_storage_batch_append(struct rd_storage_batch *b, uint64_t group,
                            const struct rd_entry *ents, size_t n, char *msg);

/* Delete the log entries of `group` from `index` on (index ≥ first_index).
 * Refused (RD_EINVAL) when index ≤ the durable commit index: committed
 * entries are never removed (Raft §5.4). Truncating beyond the last entry
 * is a no-op. (rd_storage_batch_append already removes a conflicting
 * suffix; this is for callers that drop a tail without replacing it.) */
int rd_storage_batch_truncate(struct rd_storage_batch *b, uint64_t group, uint64_t index,
                              char *msg);

/* Set the group's hard state. Refused (RD_EINVAL) if the term goes below the
 * durable one or the commit index goes backwards. */
int rd_storage_batch_set_hard_state(struct rd_storage_batch *b, uint64_t group,
                                    const struct rd_hard_state *hs, char *msg);

/* Set the group's conf state: the membership as of the applied index, set
 * in the batch that applies the entries that changed it (a snapshot of the
 * state machine at that index carries it, snapshot.h). Not the latest
 * appended configuration: that one is in the log, and may yet be cut off
 * with the uncommitted entry that made it (thesis §4.1). */
int rd_storage_batch_set_conf_state(struct rd_storage_batch *b, uint64_t group,
                                    const struct rd_conf_state *cs, char *msg);

/* Outcome of one KV command applied by rd_storage_batch_apply_kv. */
struct rd_kv_result {
	/* 0, RD_ECASFAILED, RD_EINVAL for a malformed command, RD_EOLDSEQ for
	 * a session command older than the client's last applied one */
	int status;
	uint8_t op;             /* enum rd_kv_op of the command, 0 if malformed */
	bool duplicate;         /* a retry: status and value are the recorded ones */
	bool present;           /* CAS failure: whether the key currently exists */
	const uint8_t *current; /* CAS failure: its current value */
	size_t current_len;
	/* `current` points into the batch; it stays valid until the batch is
	 * reset (explicitly or by the first mutation after the commit). */
};

/*
 * Apply the committed entry `index` of `group`, whose data is a KV command
 * (lib/storage/kv.h), to the state machine and set applied = index, in this
 * batch. `index` must be above the applied index (durable or set earlier in
 * this batch; RD_EINVAL otherwise: an entry is never applied twice) and at
 * most the commit index (durable or set in this batch). The command sees the
 * writes of earlier commands in the same batch (put then cas on one key).
 * A malformed command changes nothing but still advances applied: it is
 * committed and every replica skips it the same way (res->status
 * RD_EINVAL). Returns 0 with the outcome in *res, or RD_EINVAL for a bad
 * index; aborts the process if reading the current value fails.
 *
 * Sessions (thesis §6.3): a command with a client id (kv.h) is applied only
 * if its sequence is above the one recorded for (group, client); then its
 * sequence and result are recorded in this batch (schema.h, "session").
 * Equal: nothing changes and *res is the recorded result (res->duplicate).
 * Lower: nothing changes, res->status RD_EOLDSEQ ("not applied"). Before
 * each command the sessions last seen session_expiry or more entries ago
 * expire; beyond session_max sessions the least recently seen goes. A
 * client whose session expired starts a new one with its next command, so
 * a retry is recognised only within those bounds.
 */
int rd_storage_batch_apply_kv(struct rd_storage_batch *b, uint64_t group, uint64_t index,
                              const uint8_t *data, size_t len, struct rd_kv_result *res,
                              char *msg);

/* The value of `key` in `group`'s state machine as this batch leaves it so
 * far: the batch's own writes first, then the durable state (what a CAS
 * applied now would compare). 0 with *val (in the batch's arena, valid
 * until the batch is reset) and *len, or RD_ENOTFOUND. Aborts if reading
 * fails, like applying. */
int rd_storage_batch_kv_get(struct rd_storage_batch *b, uint64_t group,
                            const uint8_t *key, size_t key_len, const uint8_t **val,
                            size_t *len);

/* Put (val != NULL) or delete (val == NULL) `key` of `group`'s state
 * machine in this batch, outside any command: raftd's own records that a
 * conf-change entry sets (cluster/members.h), followed by
 * rd_storage_batch_set_applied for that entry (a batch holding nothing
 * else counts as empty: rd_storage_commit writes nothing). Later reads
 * through the batch see it. */
void rd_storage_batch_kv_write(struct rd_storage_batch *b, uint64_t group,
                               const uint8_t *key, size_t key_len, const uint8_t *val,
                               size_t len);

/* Set applied = index without a state-machine change (no-op and
 * conf-change entries, raw proposals). Same preconditions as apply_kv. */
int rd_storage_batch_set_applied(struct rd_storage_batch *b, uint64_t group,
                                 uint64_t index, char *msg);

/*
 * Compact the log of `group` up to and including `index` (Raft §7): the
 * entries [first_index, index] are deleted (one point deletion each; see
 * rd__log_delete in internal.h) and first_index becomes index + 1; term(index) stays
 * known, and so does `conf`, the membership as of `index` (the core's
 * compaction point, rd_raft_compact), which becomes start_conf: the conf
 * changes among the deleted entries are gone from the log but not from
 * the membership a restart rebuilds. `index` must be ≤ the durable applied
 * index (rd_storage_durable_applied: the state machine up to it survives a
 * crash, so the entries are no longer needed to rebuild it; RD_EINVAL
 * otherwise) and ≤ last; compacting to the last index leaves an empty log.
 * Compacting at or below the current compaction point is a no-op.
 */
int rd_storage_batch_compact(struct rd_storage_batch *b, uint64_t group, uint64_t index,
                             const struct rd_conf_state *conf, char *msg);

/* Put a catalog blob in the batch (see rd_storage_catalog_put). */
int rd_storage_batch_catalog_put(struct rd_storage_batch *b, const char *name,
                                 const uint8_t *data, size_t len, char *msg);

/*
 * Write the batch in two RocksDB writes, then update the in-memory state and
 * caches (README.md, "Writing each command once"):
 *   W1, sync=true (one fsync for every group in it): log entries, deletions
 *       of log entries (truncation, compaction), hard states, log starts,
 *       catalog records; a W1 that holds only hard states moving commit
 *       (term and vote as before) goes through the WAL without a sync
 *       (README.md, "Commit advances without a sync");
 *   W2, without the WAL: what applying entries changed (KV state, client
 *       sessions, journal, applied indexes, and conf states: the membership
 *       as of the applied index). W2 follows W1, so it only ever
 *       holds the apply of entries whose commit W1 (or an earlier one) made
 *       durable. It reaches the disk when RocksDB flushes its memtables, all
 *       column families at once (atomic flush); a crash before that loses it,
 *       and the open replays (applied, commit] from the log.
 * When it returns, the log and the Raft state in the batch are durable (a
 * commit index at least reaches the WAL file, which a kill keeps); only
 * then may the caller send messages or replies that depend on them. A reply
 * that depends on an apply depends on the committed log it comes from, which
 * is durable: the apply is recomputed identically after a crash. An empty
 * batch writes nothing and does not sync. A failed write aborts the process
 * after logging the RocksDB error.
 */
void rd_storage_commit(struct rd_storage *st, struct rd_storage_batch *b);

/*
 * The same commit in two halves, so that the loop can step input while the
 * fsync runs (etcd's asynchronous storage writes, TiKV's store I/O thread):
 *
 *   rd_storage_commit_start   encodes the batch and starts W1 then W2: on the
 *                             writer thread when one runs
 *                             (rd_storage_writer_start), else on this thread
 *                             before it returns. Returns false for an empty
 *                             batch (nothing written, nothing to finish).
 *   rd_storage_commit_done    true once the started writes returned (the
 *                             doorbell rd_storage_commit_fd was rung).
 *   rd_storage_commit_finish  waits for them if needed, then publishes the
 *                             durable state and feeds the caches, as
 *                             rd_storage_commit does after its writes.
 *
 * Between start and finish the batch must not change (a mutation aborts)
 * and nothing the batch holds is visible to reads or durable as far as the
 * caller may assume: messages and replies that depend on it wait for
 * finish. Other synced writes (catalog, snapshot install, group drop) wait
 * for the writer first; an install or drop for a group the batch holds
 * work for is refused (RD_EAGAIN) until finish, as while filling. One
 * batch at a time: start is fatal while another batch is in flight.
 */
bool rd_storage_commit_start(struct rd_storage *st, struct rd_storage_batch *b);
bool rd_storage_commit_done(struct rd_storage *st);
void rd_storage_commit_finish(struct rd_storage *st, struct rd_storage_batch *b);
/* A batch is started and not finished. */
bool rd_storage_commit_busy(const struct rd_storage *st);

/* Start the writer thread of `st` (once; a no-op when running). It is
 * stopped by rd_storage_close, after the batch in hand is written.
 * RD_EIO/RD_ENOMEM when the thread or its eventfd cannot be made. */
int rd_storage_writer_start(struct rd_storage *st, char *msg);
/* The writer's doorbell: an eventfd that turns readable once per batch
 * written, for the caller's event loop; -1 without a writer. Read it (or
 * call rd_storage_commit_doorbell_clear) before waiting on it again. */
int rd_storage_commit_fd(const struct rd_storage *st);
void rd_storage_commit_doorbell_clear(struct rd_storage *st);

/*
 * The highest applied index of `group` whose state-machine effects are on
 * disk: in SST files (read from RocksDB's persisted tier, skipping the
 * memtables) or written by a synced write (a snapshot install). A crash
 * never leaves the group's applied index below it, so log entries up to it
 * may be compacted. Re-read from RocksDB at most every
 * RD_STORAGE_DURABLE_CHECK_NS per group; between reads the value held is
 * returned (never above the truth). Aborts on a RocksDB read error.
 */
uint64_t rd_storage_durable_applied(struct rd_storage *st, uint64_t group);

#define RD_STORAGE_DURABLE_CHECK_NS (50u * 1000u * 1000u)

/*
 * Have RocksDB flush every column family soon (one atomic flush, in the
 * background), so that rd_storage_durable_applied moves up without waiting
 * for a memtable to fill: for a caller whose compaction waits for it. At
 * most once every flush_interval_ns (rd_storage_options); calls in between
 * do nothing. Aborts on a RocksDB write error.
 */
void rd_storage_flush_soon(struct rd_storage *st);

#define RD_STORAGE_FLUSH_INTERVAL_NS (2000ull * 1000u * 1000u)

/* ---- state machine reads --------------------------------------------------- */

/* Read `key` of `group` from the durable state machine. On success (0) *val
 * is a malloc'd copy the caller frees (NULL when *len is 0); RD_ENOTFOUND
 * when absent; RD_ECORRUPT / RD_EIO when RocksDB fails to read. */
int rd_storage_kv_get(struct rd_storage *st, uint64_t group, const uint8_t *key,
                      size_t key_len, uint8_t **val, size_t *len, char *msg);

/* Call `fn` for each key of `group` in key order (a consistent view taken at
 * the call); stops at a non-zero return and passes it up. */
typedef int (*rd_storage_kv_fn)(void *arg, const uint8_t *key, size_t key_len,
                                const uint8_t *val, size_t val_len);
int rd_storage_kv_scan(struct rd_storage *st, uint64_t group, rd_storage_kv_fn fn,
                       void *arg, char *msg);

/* Client sessions `group` holds (durable; at most the session_max bound). */
size_t rd_storage_sessions(const struct rd_storage *st, uint64_t group);

/* The highest applied sequence of `client`'s durable session in `group`
 * (in *seq), or false when the group holds no session for it (never seen,
 * or expired). */
bool rd_storage_session_seq(const struct rd_storage *st, uint64_t group, uint64_t client,
                            uint64_t *seq);

/* ---- metrics ---------------------------------------------------------------- */

/* Upper bounds (seconds) of the sync-latency histogram buckets, for the
 * Prometheus metric raft_storage_sync_duration_seconds; the last bucket is
 * +Inf and not listed. */
#define RD_STORAGE_SYNC_BUCKETS 12
extern const double rd_storage_sync_bucket_le[RD_STORAGE_SYNC_BUCKETS];

struct rd_storage_stats {
	uint64_t syncs;         /* synced writes done (one per commit with W1 records,
	                         * bar commit-only ones) */
	uint64_t sync_ns_total; /* sum of their durations */
	uint64_t sync_ns_last;
	/* counts per bucket (non-cumulative); [RD_STORAGE_SYNC_BUCKETS] is +Inf */
	uint64_t sync_buckets[RD_STORAGE_SYNC_BUCKETS + 1];
	uint64_t entries_written;
	uint64_t bytes_written; /* RocksDB batch bytes of the synced writes (W1) */
	/* W1s written without a sync: every Raft state change in them was a
	 * commit advance (batch.c, rd__commit_write); their bytes are in
	 * bytes_written too, and the next synced W1 makes them durable. */
	uint64_t commit_only_writes;
	uint64_t state_bytes_written; /* of the writes without the WAL (W2) */
	uint64_t cache_hits;          /* rd_storage_entries served from the cache */
	uint64_t cache_misses;
};

/* Snapshot of the counters. */
void rd_storage_get_stats(const struct rd_storage *st, struct rd_storage_stats *out);

/* RocksDB's memory, as RocksDB counts it: the memtables of every column
 * family (active and immutable ones not yet flushed), the block cache's
 * usage, and the table readers' (index and filter blocks held outside the
 * cache). What a node's RSS holds beyond these is raftd's own. */
struct rd_storage_mem {
	uint64_t memtables;
	uint64_t block_cache;
	uint64_t table_readers;
};
void rd_storage_get_mem(struct rd_storage *st, struct rd_storage_mem *out);

/* ---- synced writes in flight (stall.c) ---------------------------------------- */

/* Start time (rd_clock_now_ns) of the synced write in progress, 0 when
 * none is. Safe from any thread. */
uint64_t rd_storage_sync_outstanding_since(const struct rd_storage *st);

/* The durations (ns) of the synced writes finished since *cursor (0 at
 * first), oldest first, into ns[0..max): at most the last 256 and at most
 * `max` of them (the newest). Advances *cursor; returns how many. Call from
 * the thread that commits. */
size_t rd_storage_sync_recent(const struct rd_storage *st, uint64_t *cursor, uint64_t *ns,
                              size_t max);

/* Start a thread that aborts the process, after one line at crit level,
 * when a synced write stays outstanding longer than `limit_ms` (0: no
 * guard). A hung disk ends the process instead of hanging it: peers elect,
 * the supervisor restarts it. Idempotent; stopped by rd_storage_close.
 * Returns 0 or RD_EIO. */
int rd_storage_stall_guard(struct rd_storage *st, uint64_t limit_ms, char *msg);

#endif
