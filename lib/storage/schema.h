/*
 * The on-disk schema of raftd's RocksDB database (internal to lib/storage).
 *
 * Column families and their keys, byte by byte. All integers are big-endian
 * so that RocksDB's bytewise key order is numeric order.
 *
 * "default"  unused (RocksDB requires it).
 *
 * "log"      one record per Raft log entry.
 *            key   (16)  group u64 | index u64
 *            value       crc u32 | term u64 | type u8 | data...
 *            crc = CRC-32C over key (16 bytes) then value bytes [4, end), so
 *            a record moved to another key or flipped in place is caught.
 *
 * "state"    per-group Raft state, one record per kind.
 *            key   (9)   group u64 | kind u8
 *            value       crc u32 | body, crc over key then body:
 *              kind 1 hard state    term u64 | vote u64 | commit u64
 *              kind 2 conf state    n_voters u32 | n_learners u32 |
 *                                   voters u64 x n | learners u64 x n:
 *                                   the membership as of the applied index
 *                                   (written with it), which a snapshot
 *                                   of the state machine carries
 *              kind 3 applied       index u64
 *              kind 4 log start     index u64 | term u64 | conf state body:
 *                                   entries up to `index` were compacted
 *                                   (or replaced by a snapshot); `term` is
 *                                   that entry's term, the conf state the
 *                                   membership as of it, to which the conf
 *                                   changes still in the log apply (Raft
 *                                   thesis §4.1). Written before the conf
 *                                   body existed: 16 bytes, no membership
 *              kind 5 snapshot      index u64 | term u64 | conf state body
 *
 * "kv"       the key-value state machine of every group.
 *            key         group u64 | user key bytes
 *            value       user value bytes
 *            (RocksDB's block checksums cover these; every read verifies.)
 *
 * "session"  client sessions of every group (thesis §6.3; kvsm.c, session.c):
 *            per (group, client) the highest applied sequence and its result.
 *            key   (16)  group u64 | client_id u64 (never 0)
 *            value       seq u64 | last_index u64 | status u8 | flags u8 |
 *                        current value bytes
 *              seq         the highest sequence applied for this client
 *              last_index  the log index of the entry that applied it (the
 *                          session expires when the group applies entry
 *                          last_index + [sessions] expiry_entries)
 *              status      result of that command: 0 OK, 1 CAS_FAILED
 *              flags       bit 0: CAS_FAILED and the key existed; the value
 *                          bytes that follow are its value then (else none)
 *            Written in the same batch as the apply it records; part of the
 *            group's state machine, so snapshots carry it (snapshot.h).
 *
 * "journal"  per group, the applied entries that carry a command, kept for
 *            subscribers (journal.h, [streams] retention): written in the
 *            same batch as the apply of the entry, trimmed from the oldest.
 *            key   (16)  group u64 | index u64
 *            index 0: the start record (absent = start 1)
 *            value (12)  crc u32 | start u64: every journaled entry from
 *                        `start` on is held; below it they were trimmed
 *                        (retention) or never held (a snapshot install)
 *            index >= 1: one entry
 *            value       crc u32 | term u64 | kind u8 | status u8 | data...
 *              kind    1 raw proposal, 2 KV write, 3 group-0 command
 *              status  0 applied; 1 CAS failed; 2 malformed (not applied)
 *              data    the entry's data as in the log (kv.h encoding)
 *            crc = CRC-32C over key (16 bytes) then value bytes [4, end).
 *            Not part of the state machine: snapshots do not carry it.
 *
 * "catalog"  node-wide records.
 *            key         ASCII name, no terminator:
 *              "format"       u32 version, currently 1
 *              "incarnation"  u64, random, written once at creation
 *              "cluster_id"   the cluster id bytes (absent until known)
 *              anything else  opaque blobs of the node runtime
 *                             ("topology", "routing")
 */
#ifndef RD_STORAGE_SCHEMA_H
#define RD_STORAGE_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#include "raft/types.h"
#include "util/bytes.h"

#define RD_SCHEMA_FORMAT 1u

enum rd_schema_cf {
	RD_CF_DEFAULT = 0,
	RD_CF_LOG,
	RD_CF_STATE,
	RD_CF_KV,
	RD_CF_CATALOG,
	RD_CF_SESSION,
	RD_CF_JOURNAL,
	RD_CF_COUNT
};

enum rd_schema_state_kind {
	RD_STATE_HARD = 1,
	RD_STATE_CONF = 2,
	RD_STATE_APPLIED = 3,
	RD_STATE_LOGSTART = 4,
	RD_STATE_SNAPSHOT = 5,
};

#define RD_LOG_KEY_LEN     16u
#define RD_LOG_VAL_HDR     13u /* crc + term + type */
#define RD_STATE_KEY_LEN   9u
#define RD_KV_KEY_PREFIX   8u
#define RD_SESSION_KEY_LEN 16u
#define RD_JOURNAL_VAL_HDR 14u /* crc + term + kind + status */
#define RD_SESSION_VAL_HDR 18u
enum { RD_SESSION_OK = 0, RD_SESSION_CAS_FAILED = 1 };
#define RD_SESSION_F_PRESENT 1u
/* Largest state value: crc + index + term + a full conf state. */
#define RD_STATE_VAL_MAX (4u + 16u + 8u + 16u * RD_RAFT_MAX_MEMBERS)

extern const char *const rd_schema_cf_names[RD_CF_COUNT];

static inline void rd_log_key(uint8_t k[RD_LOG_KEY_LEN], uint64_t group, uint64_t index)
{
	rd_be64_put(k, group);
	rd_be64_put(k + 8, index);
}

static inline void rd_state_key(uint8_t k[RD_STATE_KEY_LEN], uint64_t group, uint8_t kind)
{
	rd_be64_put(k, group);
	k[8] = kind;
}

/* CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), as in iSCSI and
 * RocksDB. Start with crc = 0; chain calls to cover several buffers. */
uint32_t rd_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
