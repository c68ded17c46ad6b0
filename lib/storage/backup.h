/*
 * The cluster backup file (`raftctl backup save`, `raftd --restore`): every
 * group's state machine, each at a linearizable point of its own group,
 * in one file of checksummed records. There is no single cut across
 * groups: each group is consistent at its own index.
 *
 * The file is a sequence of records, numbered 0, 1, 2, ... (all integers
 * big-endian):
 *
 *   off  size  field
 *   0    4     magic "RDBK"
 *   4    1     type: 1 header, 2 chunk, 3 group end, 4 manifest
 *   5    3     reserved, zero
 *   8    4     seq: the record's number in the file
 *   12   4     payload length P (at most RD_BACKUP_REC_MAX - 20)
 *   16   4     CRC-32C (Castagnoli) of bytes [0, 16) followed by the payload
 *   20   P     payload
 *
 * Record 0 is the header:
 *   version u32 (RD_BACKUP_VERSION; a reader refuses a newer one) |
 *   created u64 (Unix time, milliseconds) | node u64 (the node that saved) |
 *   data_groups u32 | id length u16 | cluster id bytes
 * Then, for every group in ascending id (group 0, the metadata group, first):
 *   one or more chunk records, each payload one snapshot chunk exactly as
 *   storage/snapshot.h defines it (own header, CRC, metadata in the first,
 *   trailer in the last), then one group-end record whose payload is the
 *   group's manifest entry:
 *     group u64 | index u64 | term u64 | bytes u64 (sum of the chunk
 *     payloads) | chunks u32 | crc u32 (CRC-32C over the chunk payloads,
 *     in order: the group's state hash)
 * The last record is the manifest, which repeats the header's fields and
 * every group's entry, so that a file cut after a group end still lacks
 * it and is refused as truncated:
 *   version u32 | created u64 | node u64 | data_groups u32 | n u32 |
 *   n entries as above | id length u16 | cluster id bytes
 * Nothing may follow the manifest.
 */
#ifndef RD_STORAGE_BACKUP_H
#define RD_STORAGE_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/snapshot.h"
#include "storage/storage.h"

#define RD_BACKUP_VERSION    1u
#define RD_BACKUP_REC_HEADER 20u
/* A chunk record holds one snapshot chunk of this capacity. */
#define RD_BACKUP_CHUNK   RD_SNAPSHOT_CHUNK_MIN
#define RD_BACKUP_REC_MAX (RD_BACKUP_REC_HEADER + RD_BACKUP_CHUNK)
#define RD_BACKUP_ENTRY   40u

enum rd_backup_type {
	RD_BACKUP_HEADER = 1,
	RD_BACKUP_CHUNK_REC = 2,
	RD_BACKUP_GROUP_END = 3,
	RD_BACKUP_MANIFEST = 4,
};

/* One group's manifest entry. */
struct rd_backup_group {
	uint64_t group, index, term, bytes;
	uint32_t chunks, crc;
};

/* The header and manifest. `groups` is malloc'd by the reader
 * (rd_backup_manifest_free). */
struct rd_backup_manifest {
	uint32_t version;
	uint64_t created_ms;
	uint64_t node;
	uint32_t data_groups;
	char cluster_id[RD_STORAGE_CLUSTER_ID_MAX + 1];
	size_t n_groups;
	struct rd_backup_group *groups;
};

/* ---- writing: the caller owns every buffer ------------------------------- */

/* Fill the record header of buf (payload already at buf + 20, `plen`
 * bytes) and return the record's whole size. */
size_t rd_backup_record(uint8_t *buf, enum rd_backup_type type, uint32_t seq,
                        size_t plen);

/* Extend a group's state hash (the CRC-32C of its chunk payloads) over
 * one more chunk; start with 0. */
uint32_t rd_backup_crc(uint32_t crc, const uint8_t *chunk, size_t len);

/* Payload sizes and encoders (into p) of the header, a group end and the
 * manifest; each encoder returns the bytes written. */
size_t rd_backup_header_size(const struct rd_backup_manifest *m);
size_t rd_backup_header_put(uint8_t *p, const struct rd_backup_manifest *m);
size_t rd_backup_group_put(uint8_t *p, const struct rd_backup_group *g);
size_t rd_backup_manifest_size(const struct rd_backup_manifest *m);
size_t rd_backup_manifest_put(uint8_t *p, const struct rd_backup_manifest *m);

/* ---- reading -------------------------------------------------------------- */

/* Called by rd_backup_read for each snapshot chunk of a group, in order,
 * with `last` on the group's final chunk; `chunk` is valid during the call.
 * A non-zero return stops the read with that code (the callback has written
 * `msg`). */
typedef int (*rd_backup_chunk_fn)(void *arg, uint64_t group, const uint8_t *chunk,
                                  size_t len, bool last, char *msg);

/*
 * Read and verify the whole file at `path`: every record's magic, number
 * and CRC, the version, each group's chunk count, byte count and CRC
 * against its group end, the snapshot chunks' own headers, the manifest
 * against the group ends, and that the manifest is the last record. Every
 * refusal names the record (and group) where it was found:
 *   RD_EIO       the file cannot be read
 *   RD_ECORRUPT  a bad record ("record 7 (group 2 chunk 3) at byte 6291600:
 *                checksum mismatch"), or a file truncated ("ends inside
 *                record 9", "no manifest")
 *   RD_EMISMATCH a newer format version than this reader knows
 * `cb` (may be NULL) sees the chunks. On success *m is filled (free with
 * rd_backup_manifest_free).
 */
int rd_backup_read(const char *path, rd_backup_chunk_fn cb, void *arg,
                   struct rd_backup_manifest *m, char *msg);

/* Free what rd_backup_read put in *m and leave it empty; *m itself stays the
 * caller's. */
void rd_backup_manifest_free(struct rd_backup_manifest *m);

#endif
