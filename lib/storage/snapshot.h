/*
 * Snapshots of one group's state machine (Raft §7, thesis §5): produced as a
 * stream of bounded chunks from a consistent RocksDB snapshot, and installed
 * atomically from chunks received in order.
 *
 * Chunk format (all integers big-endian):
 *
 *   off  size  field
 *   0    4     magic "RDSN"
 *   4    1     version (2; a reader accepts 1, every chunk of a stream has
 *              the same)
 *   5    1     flags: bit 0 = first chunk, bit 1 = last chunk
 *   6    2     reserved, zero
 *   8    4     seq: chunk number, 0, 1, 2, ... in stream order
 *   12   4     payload length P
 *   16   4     CRC-32C (Castagnoli) of bytes [0, 16) followed by the payload
 *   20   P     payload
 *
 * The payload of the first chunk starts with the snapshot metadata:
 *   group u64, index u64, term u64, n_voters u32, n_learners u32,
 *   voters u64 x n_voters, learners u64 x n_learners
 * and every payload then carries whole records:
 *   version 2: kind u8, key length u32, value length u32, key, value
 *   version 1: key length u32, value length u32, key, value (kind 0)
 * kind 0: a key of the group's state machine ("kv", the user key) and its
 * value; kind 1: a client session ("session" in schema.h), key = client_id
 * u64, value = the session value as stored. Sessions follow the keys.
 * The last chunk ends with a trailer: record count u64 and a CRC-32C over
 * the concatenation of every payload before the trailer (so that a chunk
 * dropped or repeated whole is caught even though each chunk checks itself).
 */
#ifndef RD_STORAGE_SNAPSHOT_H
#define RD_STORAGE_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/types.h"
#include "storage/storage.h"

#define RD_SNAPSHOT_HEADER 20u
/* Smallest chunk capacity a reader accepts: header, metadata with a full
 * membership, one record of maximal key and value (kv.h limits), trailer. */
#define RD_SNAPSHOT_CHUNK_MIN                                                            \
	(RD_SNAPSHOT_HEADER + 40u + 8u * 2u * RD_RAFT_MAX_MEMBERS + 9u + 4096u +         \
	 (1u << 20) + 12u)

struct rd_snapshot_reader;
struct rd_snapshot_writer;

/*
 * Start producing a snapshot of `group`: takes a RocksDB snapshot and reads,
 * under it, the applied index, its term and the conf state (*meta), so the
 * data and metadata agree. The reader owns the RocksDB snapshot until
 * rd_snapshot_reader_close. The log is not part of the snapshot.
 */
int rd_snapshot_reader_open(struct rd_storage *st, uint64_t group,
                            struct rd_snapshot_reader **out,
                            struct rd_snapshot_meta *meta, char *msg);

/* Write the next chunk into buf[0..cap) (cap ≥ RD_SNAPSHOT_CHUNK_MIN, or
 * smaller when no record is that large: RD_ETOOBIG if one does not fit).
 * *len gets its size, *last is set on the final chunk; after that, further
 * calls return RD_EINVAL. */
int rd_snapshot_reader_next(struct rd_snapshot_reader *r, uint8_t *buf, size_t cap,
                            size_t *len, bool *last, char *msg);

/* Release the reader and its RocksDB snapshot. NULL is a no-op. */
void rd_snapshot_reader_close(struct rd_snapshot_reader *r);

/* Start installing a snapshot into `st`; the group is named by the first
 * chunk. Nothing is visible until rd_snapshot_writer_finish. */
int rd_snapshot_writer_open(struct rd_storage *st, struct rd_snapshot_writer **out,
                            char *msg);

/* Feed the next chunk (copied). Chunks must come in order; a bad checksum,
 * magic, sequence number or record is RD_ECORRUPT and the writer must then
 * be aborted. */
int rd_snapshot_writer_add(struct rd_snapshot_writer *w, const uint8_t *chunk, size_t len,
                           char *msg);

/*
 * After the last chunk: atomically (one synced RocksDB write) remove every
 * key and session of the group, write the snapshot's keys and sessions (the
 * group's session table then is the snapshot's), set applied = index, the conf
 * state and the snapshot metadata, raise the hard state's commit to index if
 * below, and cut the log: if the log holds entry `index` with the
 * snapshot's term, entries after it are kept (Raft §7), else the whole log
 * is discarded and the log restarts after `index`. *meta (may be NULL) gets
 * the installed metadata.
 *
 * Refused with RD_EAGAIN, writing nothing and keeping the writer (call
 * finish again, or abort), while the batch being filled holds work for the
 * same group: that batch was built on the state the install replaces, and
 * committing it afterwards would publish the old log start and applied
 * index back over the snapshot. Commit the batch first. In every other
 * case the writer is freed.
 */
int rd_snapshot_writer_finish(struct rd_snapshot_writer *w, struct rd_snapshot_meta *meta,
                              char *msg);

/* Replace the membership the install records (the conf state and the
 * snapshot's) with `conf`: a restore founding a new cluster from a backup
 * (raftd --restore) installs the old data under the new members. Call
 * after the first chunk, before rd_snapshot_writer_finish. */
void rd_snapshot_writer_set_conf(struct rd_snapshot_writer *w,
                                 const struct rd_conf_state *conf);

/* Write the keys staged so far now (not synced) and start staging anew,
 * so that memory stays bounded however large the group. This gives up the
 * install's atomicity: only for a database nothing else uses until the
 * install finishes (raftd --restore into an empty data directory, which is
 * started over after a crash). The synced write of
 * rd_snapshot_writer_finish makes everything durable. */
int rd_snapshot_writer_spill(struct rd_snapshot_writer *w, char *msg);

/* Drop an unfinished install. NULL is a no-op. */
void rd_snapshot_writer_abort(struct rd_snapshot_writer *w);

#endif
