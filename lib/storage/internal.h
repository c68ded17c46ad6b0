/*
 * Shared internals of lib/storage: the storage handle, the in-memory state
 * of each group (what is durable), its entry cache, and the batch.
 */
#ifndef RD_STORAGE_INTERNAL_H
#define RD_STORAGE_INTERNAL_H

#include <rocksdb/c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/conf.h"
#include "storage/schema.h"
#include "storage/storage.h"
#include "util/clock.h"
#include "util/fatal.h"

/* One cached entry; `data` (capacity `cap`) is malloc'd and owned by the
 * cache. */
struct rd_centry {
	uint64_t term;
	uint8_t type;
	uint32_t len;
	uint32_t cap;
	uint8_t *data;
};

/* Recent consecutive entries [first, first + n) of one group, in a ring.
 * The buffer of the entry evicted last is kept in `spare` and reused by the
 * next push, so a full cache in steady state does not allocate. */
struct rd_cache {
	struct rd_centry *ring;
	size_t cap; /* power of two or 0 */
	size_t head;
	size_t n;
	uint64_t first;
	size_t bytes;
	uint8_t *spare;
	uint32_t spare_cap;
};

/* Per-entry bookkeeping charged to the cache bound on top of the data. */
#define RD_CACHE_ENTRY_OVERHEAD 48u

/* One client session of a group as durable (session.c, thesis §6.3). */
struct rd_session {
	uint64_t client;
	uint64_t seq;                     /* highest applied sequence */
	uint64_t last_index;              /* entry that applied it */
	struct rd_session *older, *newer; /* list by last_index */
	struct rd_session *hnext;         /* hash chain */
};

/* A group's durable session table: a hash by client and a list ordered by
 * last_index (oldest first), which is the order of expiry and eviction. */
struct rd_sessions {
	struct rd_session **buckets;
	size_t nbuckets; /* power of two, or 0 */
	size_t count;
	struct rd_session *oldest, *newest;
};

/* What is durable for one group. Its configurations are shared
 * (raft/conf.h: a node's groups nearly all have the same membership),
 * never NULL (rd_conf_none for none), changed with rd_conf_assign and
 * released by rd__group_release_confs. */
struct rd_sgroup {
	uint64_t id;
	bool present; /* has any record on disk */
	struct rd_hard_state hs;
	const struct rd_conf_state *conf;
	uint64_t applied;
	/* Applied index known to be on disk (rd_storage_durable_applied), when
	 * it was last read from RocksDB's persisted tier, and whether such
	 * reads are to be ignored: after a group drop, the persisted tier may
	 * still hold the dropped group's applied record until the next flush,
	 * and nothing tells when that flush happened. */
	uint64_t durable;
	uint64_t durable_ns;
	bool durable_fenced;
	bool has_snap;
	uint64_t snap_index, snap_term; /* the last installed snapshot's */
	const struct rd_conf_state *snap_conf;
	/* Membership as of first - 1 (the log start record); empty for a
	 * log that starts at 1. start_conf_legacy: the record has no
	 * membership (written by an older raftd), resolved at open (load.c). */
	const struct rd_conf_state *start_conf;
	bool start_conf_legacy;
	uint64_t first; /* first index held by the log */
	uint64_t last;  /* last index (first - 1 when empty) */
	uint64_t last_term;
	uint64_t compact_term; /* term of entry first - 1 */
	struct rd_cache cache;
	struct rd_sessions sessions;
	/* Link to the batch being filled: pend[batch_slot] when batch_epoch
	 * equals that batch's epoch. */
	uint64_t batch_epoch;
	uint32_t batch_slot;
};

struct rd_storage {
	rocksdb_t *db;
	rocksdb_options_t *opts;
	rocksdb_options_t *cf_opts[RD_CF_COUNT];
	rocksdb_block_based_table_options_t *table_opts;
	rocksdb_cache_t *block_cache;
	rocksdb_column_family_handle_t *cf[RD_CF_COUNT];
	rocksdb_readoptions_t *ro;
	rocksdb_readoptions_t *ro_disk;   /* persisted tier: SST files only */
	rocksdb_writeoptions_t *wo;       /* sync=true: W1 */
	rocksdb_writeoptions_t *wo_lazy;  /* WAL, no sync: a commit-only W1 */
	rocksdb_writeoptions_t *wo_nowal; /* disableWAL: W2 (rd_storage_commit) */
	char *dir;
	char cluster_id[RD_STORAGE_CLUSTER_ID_MAX + 1];
	uint64_t incarnation;
	size_t cache_bytes;
	/* open-addressing table of groups; slots hold pointers or NULL */
	struct rd_sgroup **slots;
	size_t nslots, ngroups;
	uint64_t epoch;
	uint64_t session_max;    /* sessions kept per group */
	uint64_t session_expiry; /* applied entries a session lives unseen */
	/* The batch reset last (the one being filled, if not committed). */
	const struct rd_storage_batch *filling;
	struct rd_storage_stats stats;
	struct rd__sync_track *track; /* synced writes in flight (stall.c) */
	uint64_t flush_ns;            /* last rd_storage_flush_soon that wrote */
	uint64_t flush_interval_ns;   /* least time between two of them */
	uint8_t *flush_poke;          /* RD_FLUSH_POKE_BYTES of zeros, or NULL */
	struct rd__writer *writer;    /* the writer thread (writer.c), or NULL */
	/* Started by rd_storage_commit_start and not finished yet: the
	 * writer thread may be reading it. */
	struct rd_storage_batch *inflight;
};

/* The "default" family's write buffer, and the value rd_storage_flush_soon
 * writes there to fill it (storage.c). */
#define RD_DEFAULT_CF_BUFFER (1u << 20)
#define RD_FLUSH_POKE_BYTES  (RD_DEFAULT_CF_BUFFER + (64u << 10))
/* Log records from this size on go to blob files at a flush (storage.c). */
#define RD_LOG_BLOB_MIN 1024u

/* ---- the batch (batch.c, kvsm.c) ---- */

enum { RD_P_HS = 1, RD_P_CONF = 2, RD_P_APPLIED = 4, RD_P_COMPACT = 8, RD_P_LOG = 16 };

/* A group's state as it will be once the batch commits. */
struct rd_pend {
	struct rd_sgroup *g;
	unsigned flags;
	uint64_t first, last, last_term, compact_term;
	uint64_t min_written; /* lowest index appended in this batch, or UINT64_MAX */
	struct rd_hard_state hs;
	struct rd_conf_state cs;
	struct rd_conf_state start_conf; /* as of first - 1 */
	uint64_t applied;
	/* sessions as the batch leaves them (session.c) */
	size_t n_sessions;
	uint32_t sop_head, sop_tail;         /* the group's ops: index + 1 */
	uint32_t sop_cursor;                 /* expiry walk: index + 1 */
	const struct rd_session *dur_cursor; /* expiry walk of the durable list */
};

/* A session change in the batch, in apply order: the session of `client`
 * is (re)written with this sequence and result, or deleted. */
struct rd_sop {
	struct rd_sgroup *g;
	uint64_t client;
	uint64_t seq;
	uint64_t last_index;
	bool deleted;
	uint8_t status;       /* RD_SESSION_OK / RD_SESSION_CAS_FAILED */
	bool present;         /* CAS failure: the key existed */
	const uint8_t *value; /* CAS failure: its value (arena) */
	size_t vlen;
	uint32_t next; /* the group's next op: index + 1, 0 = none */
};

/* An entry appended in this batch; `val` is its encoded log value. */
struct rd_bent {
	struct rd_sgroup *g;
	uint64_t index;
	const uint8_t *val;
	uint32_t len; /* data bytes (val holds RD_LOG_VAL_HDR more) */
};

/* A KV write in this batch: the latest value of a (group, key). */
struct rd_kvrec {
	uint64_t hash;
	const uint8_t *key; /* group prefix + user key */
	size_t klen;
	const uint8_t *val; /* NULL: deleted */
	size_t vlen;
};

/* Memory handed out stays put until the batch is reset. */
struct rd_arena_block {
	uint8_t *p;
	size_t cap, used;
};

struct rd_storage_batch {
	struct rd_storage *st;
	rocksdb_writebatch_t *wb;  /* W1: synced (log, Raft state, catalog) */
	rocksdb_writebatch_t *wb2; /* W2: no WAL (what applies changed) */
	bool committed;
	uint64_t epoch;
	struct rd_pend *pend;
	size_t npend, cappend;
	struct rd_bent *ents;
	size_t nents, capents;
	struct rd_arena_block *blocks;
	size_t nblocks, curblock;
	struct rd_kvrec *kv;
	size_t nkv, capkv;
	uint32_t *kvslots; /* index + 1 into kv, 0 = free */
	size_t nkvslots;
	struct rd_sop *sops;
	size_t nsops, capsops;
	uint32_t *sslots; /* (group, client) -> latest op: index + 1, 0 = free */
	size_t nsslots;
	/* Figures of its last write (rd__commit_write), published on the
	 * loop's thread (rd__commit_publish). */
	bool w1_synced;
	bool w1_lazy;         /* W1 held only commit advances: written without a sync */
	size_t n_commit_only; /* W1's hard-state records that only move commit */
	uint64_t sync_ns;
	size_t w1_bytes, w2_bytes;
};

/* Drop group's journal and record `start` as its start (journal.c). */
void rd__journal_restart(struct rd_storage *st, rocksdb_writebatch_t *wb, uint64_t group,
                         uint64_t start);

/* Does the batch being filled hold work for g (batch.c)? */
bool rd__batch_holds(const struct rd_storage *st, const struct rd_sgroup *g);
/* Unlink g from the batch's view of it, taken from g's durable state by a
 * call that left no work (a compaction already done, a truncation past the
 * end): after g's durable state is replaced (snapshot install, group drop)
 * the next call of the batch takes a fresh view. Precondition: the batch
 * holds no work for g (rd__batch_holds is false). */
void rd__batch_forget(struct rd_sgroup *g);
/* Arena memory of the batch (batch.c); aborts on out-of-memory. */
uint8_t *rd__arena_alloc(struct rd_storage_batch *b, size_t n);
/* Delete log keys [from, to] of `group` into `wb`, one point deletion each.
 * Never a range deletion on the log family: RocksDB 7.8 keeps one memtable
 * insert hint per key prefix for the point and the range-deletion tables
 * alike, so a range deletion there would splice into the wrong skiplist
 * (storage.c, with_hint). */
void rd__log_delete(struct rd_storage *st, rocksdb_writebatch_t *wb, uint64_t group,
                    uint64_t from, uint64_t to);
/* Reset the batch if it was committed (first mutation after a commit). */
void rd__batch_begin(struct rd_storage_batch *b);
/* The pending state of `group` in the batch, created from the durable one. */
struct rd_pend *rd__pend_get(struct rd_storage_batch *b, uint64_t group);
/* Forget the KV overlay (kvsm.c): the batch's uncommitted writes are no
 * longer visible to reads while applying. Keeps the buffers for reuse. */
void rd__kv_reset(struct rd_storage_batch *b);
/* Free the KV overlay's buffers (when the batch itself is freed). */
void rd__kv_free(struct rd_storage_batch *b);

/* Sessions (session.c). A command with a session is checked first:
 * RD_SESSION_NEW (apply it, then rd__session_record), RD_SESSION_DUP (*res
 * holds the recorded result) or RD_SESSION_OLD (refused). */
enum { RD_SESSION_NEW, RD_SESSION_DUP, RD_SESSION_OLD };
/* Expire the sessions not seen for session_expiry entries at `index`. */
void rd__session_expire(struct rd_storage_batch *b, struct rd_pend *p, uint64_t index);
int rd__session_check(struct rd_storage_batch *b, struct rd_pend *p, uint64_t client,
                      uint64_t seq, struct rd_kv_result *res);
void rd__session_record(struct rd_storage_batch *b, struct rd_pend *p, uint64_t client,
                        uint64_t seq, uint64_t index, const struct rd_kv_result *res);
/* After the batch's write: publish its session ops to the tables. */
void rd__session_publish(struct rd_storage_batch *b);
void rd__session_reset(struct rd_storage_batch *b);
void rd__session_batch_free(struct rd_storage_batch *b);
/* Durable tables: add (load, install), clear, order by last_index. */
void rd__session_put(struct rd_sgroup *g, uint64_t client, uint64_t seq,
                     uint64_t last_index);
void rd__sessions_clear(struct rd_sgroup *g);
void rd__sessions_sort(struct rd_sgroup *g);
/* Open-time load of the "session" column family (load.c calls it). */
int rd__session_load(struct rd_storage *st, char *msg);
/* Session value layout (schema.h): encode into v (RD_SESSION_VAL_HDR + vlen
 * bytes) / decode; RD_ECORRUPT on a short value or unknown status. */
void rd__session_enc(uint8_t *v, uint64_t seq, uint64_t last_index, uint8_t status,
                     bool present);
int rd__session_dec(const uint8_t *v, size_t len, uint64_t *seq, uint64_t *last_index,
                    uint8_t *status, bool *present);

/* A snapshot being installed (snapshot.c, install.c). */
struct rd_snapshot_writer {
	struct rd_storage *st;
	rocksdb_writebatch_t *wb;
	uint32_t next_seq;
	bool done;
	struct rd_snapshot_meta meta;
	uint64_t group;
	uint64_t count;
	uint32_t total_crc;
	uint8_t version; /* of the stream's chunks */
	uint8_t *key;    /* scratch for composite keys */
	/* session records staged (client, seq, last_index each) */
	uint64_t *sess;
	size_t nsess, capsess;
};

/* Finish an install: see rd_snapshot_writer_finish (install.c). */
int rd__snapshot_install(struct rd_storage *st, rocksdb_writebatch_t *wb, uint64_t group,
                         const struct rd_snapshot_meta *m, const uint64_t *sess,
                         size_t nsess, char *msg);

/* The batch's state records into its write batches (batch.c), before its
 * write starts. */
void rd__encode_states(struct rd_storage_batch *b);
/* The batch's two writes, W1 synced then W2 without the WAL (batch.c); on
 * the writer thread or the caller's. Aborts when one fails. */
void rd__commit_write(struct rd_storage *st, struct rd_storage_batch *b);
/* After rd__commit_write, on the loop's thread: figures, durable state,
 * caches (batch.c). */
void rd__commit_publish(struct rd_storage *st, struct rd_storage_batch *b);
/* Writer thread (writer.c): wait until it holds no batch (before another
 * synced write, so that one synced write at a time is outstanding), and
 * stop it (at close, after the batch in hand is written). No-ops without
 * a writer. */
void rd__writer_idle(struct rd_storage *st);
void rd__writer_stop(struct rd_storage *st);

/* Count one synced write of `ns` nanoseconds (batch.c). */
void rd__record_sync(struct rd_storage *st, uint64_t ns);

/* ---- stall.c: every synced write is bracketed by these ---- */

/* Set up / tear down the tracking of st (and stop its stall guard). */
int rd__sync_track_open(struct rd_storage *st, char *msg);
void rd__sync_track_close(struct rd_storage *st);
/* Call right before a synced write: marks it outstanding (and applies the
 * test-only fault hook) and returns its start time for rd__record_sync. */
uint64_t rd__sync_begin(struct rd_storage *st);
/* Write `wb` to st with sync (st->wo), bracketed by rd__sync_begin and
 * rd__record_sync; a failed write aborts the process (nothing may be
 * acknowledged on a write that did not reach the disk), `what` naming it
 * ("drop group (synced write)"). `wb` stays the caller's. */
void rd__synced_write(struct rd_storage *st, rocksdb_writebatch_t *wb, const char *what);
/* The synced write marked by rd__sync_begin returned (any thread); its
 * duration is recorded later with rd__record_sync. */
void rd__sync_clear(struct rd_storage *st);
/* Called by rd__record_sync: the write of `ns` nanoseconds returned. */
void rd__sync_end(struct rd_storage *st, uint64_t ns);

/* Group table (groups.c): the in-memory state of a group, found by id in
 * an open-addressing table. NULL when `st` holds no group `id`. */
struct rd_sgroup *rd__group_find(const struct rd_storage *st, uint64_t id);
/* Find or create (empty: first 1, last 0). Aborts on out-of-memory. */
struct rd_sgroup *rd__group_get(struct rd_storage *st, uint64_t id);
/* Drop the references g's configurations hold and set them to
 * rd_conf_none (a group freed, dropped or created). */
void rd__group_release_confs(struct rd_sgroup *g);
/* Free every group and its entry cache (at close); the table is empty
 * afterwards. */
void rd__groups_free(struct rd_storage *st);

/* Entry cache (groups.c): the newest durable entries of each group, held
 * consecutively so that followers are fed without reading RocksDB. */
/* Cache entry `index` (data copied). Entries from `index` on are dropped
 * first (a rewritten suffix); a gap before `index` empties the cache; an
 * entry larger than the budget (st->cache_bytes, per group) empties the
 * cache and is not cached. The group's oldest entries are evicted to make
 * room. Aborts on out-of-memory. */
void rd__cache_push(struct rd_storage *st, struct rd_sgroup *g, uint64_t index,
                    uint64_t term, uint8_t type, const uint8_t *data, uint32_t len);
/* Drop cached entries from `index` on (log truncation). */
void rd__cache_drop_from(struct rd_sgroup *g, uint64_t index);
/* Drop cached entries up to and including `index` (log compaction). */
void rd__cache_drop_upto(struct rd_sgroup *g, uint64_t index);
/* Drop every cached entry of `g` (snapshot install, group drop, close). */
void rd__cache_clear(struct rd_sgroup *g);
/* The cached entry at `index` or NULL. */
const struct rd_centry *rd__cache_get(const struct rd_sgroup *g, uint64_t index);

/* Record encodings (records.c), laid out in schema.h. Each rd__enc_* writes
 * one state value for `group` into `v` (RD_STATE_VAL_MAX bytes of room),
 * CRC first (it covers the key too), and returns its length. */
/* The hard state (term, vote, commit). */
size_t rd__enc_hard(uint8_t *v, uint64_t group, const struct rd_hard_state *hs);
/* The conf state (voters and learners). */
size_t rd__enc_conf(uint8_t *v, uint64_t group, const struct rd_conf_state *cs);
/* A one-number state record of `kind` (e.g. applied index). */
size_t rd__enc_u64(uint8_t *v, uint64_t group, uint8_t kind, uint64_t x);
/* The log start: (index, term) of the entry before the first one kept. */
size_t rd__enc_logstart(uint8_t *v, uint64_t group, uint64_t index, uint64_t term,
                        const struct rd_conf_state *cs);
/* The metadata of the latest snapshot. */
size_t rd__enc_snap(uint8_t *v, uint64_t group, const struct rd_snapshot_meta *m);
/* Decode a state record of `kind` for `group` into the matching field of g.
 * RD_ECORRUPT on a bad checksum or length. */
int rd__dec_state(struct rd_sgroup *g, uint8_t kind, const uint8_t *v, size_t len,
                  char *msg);
/* Encode a log value (RD_LOG_VAL_HDR + len bytes) into v. */
void rd__enc_entry(uint8_t *v, uint64_t group, uint64_t index, uint64_t term,
                   uint8_t type, const uint8_t *data, uint32_t len);
/* Check a log value's checksum and split it; RD_ECORRUPT naming group and
 * index on failure. */
int rd__dec_entry(uint64_t group, uint64_t index, const uint8_t *v, size_t len,
                  uint64_t *term, uint8_t *type, const uint8_t **data, uint32_t *dlen,
                  char *msg);
/* Encode the conf state body (counts, then ids; no CRC) at `p`, which has
 * room for RD_RAFT_MAX_MEMBERS voters and learners; returns its length. */
size_t rd__conf_put(uint8_t *p, const struct rd_conf_state *cs);
/* Decode a conf state body from p[0..len) into *cs and set *used to its
 * length; RD_ECORRUPT when it is truncated or its counts exceed the limits. */
int rd__conf_get(const uint8_t *p, size_t len, struct rd_conf_state *cs, size_t *used);

/* The key and value under iterator `it` (valid: rocksdb_iter_valid), as
 * bytes owned by the iterator until it moves. */
static inline void rd__iter_kv(rocksdb_iterator_t *it, const uint8_t **k, size_t *klen,
                               const uint8_t **v, size_t *vlen)
{
	*k = (const uint8_t *)rocksdb_iter_key(it, klen);
	*v = (const uint8_t *)rocksdb_iter_value(it, vlen);
}

/* Translate a RocksDB error string (freed here) into an RD_E* code and a
 * message with `what` as context. */
int rd__rocks_err(char *err, char *msg, const char *what);

/* RD_EINVAL for an empty, too long or reserved catalog name (storage.c). */
int rd__catalog_check_name(const char *name, char *msg);

/* Open-time scan of the state and log column families (load.c). */
int rd__load(struct rd_storage *st, char *msg);

/* The line a failed RocksDB write or read while applying logs before the
 * process aborts: rd_fatal(RD_STORAGE_FATAL_FMT, what, err). Nothing is
 * retried and then acknowledged (storage.h, "Failure policy"). */
#define RD_STORAGE_FATAL_FMT "storage failure, aborting what=\"%s\" error=\"%s\""

#endif
