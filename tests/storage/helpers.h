/* Shared helpers of the storage tests: temporary data directories, opening
 * and reopening a storage handle, entry construction, raw RocksDB access
 * for the corruption tests. */
#ifndef RD_TESTS_STORAGE_HELPERS_H
#define RD_TESTS_STORAGE_HELPERS_H

#include <rocksdb/c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/types.h"
#include "storage/storage.h"

/* An empty membership, for compactions whose membership a test does not
 * look at (rd_storage_batch_compact). */
static const struct rd_conf_state no_conf;

/* Create a fresh directory under $TMPDIR (or /tmp); its path goes to out. */
void th_tmpdir(char *out, size_t cap);
/* rm -rf */
void th_rmtree(const char *path);

/* Open `dir` (creating), cluster id "test"; asserts success. */
struct rd_storage *th_open(const char *dir);
/* Close and open again (asserts success). */
/* In one committed batch: set `group`'s membership to cs and, when
 * compact_to > 0, compact its log up to compact_to with cs as the
 * membership there (asserts success). */
void th_set_conf(struct rd_storage *s, uint64_t group, const struct rd_conf_state *cs,
                 uint64_t compact_to);
/* th_tmpdir into `dir`, then th_open on it. */
struct rd_storage *th_tmp_open(char *dir, size_t cap);
/* rd_storage_close(st), then th_rmtree(dir). */
void th_close_rm(struct rd_storage *st, const char *dir);
struct rd_storage *th_reopen(struct rd_storage *st, const char *dir);
/* Try to open an existing directory; returns the code, message in msg. */
int th_try_open(const char *dir, char *msg);

/* Deterministic entry data for (group, index, term): `len` bytes. */
void th_fill(uint8_t *buf, uint32_t len, uint64_t group, uint64_t index, uint64_t term);
/* Build n entries [first, first+n) of `term` with th_fill data of `len`
 * bytes each, in caller storage ents[n] and data[n * len]. */
void th_entries(struct rd_entry *ents, uint8_t *data, size_t n, uint64_t group,
                uint64_t first, uint64_t term, uint32_t len);
/* Append [first, first+n) with term and commit (one batch, one commit). */
void th_append(struct rd_storage *st, uint64_t group, uint64_t first, size_t n,
               uint64_t term);

/* Put n keys "<prefix><i>" = value of vlen bytes into `group` of `s`, as
 * committed and applied log entries of `term` after its last index, in one
 * batch (asserts success). */
void th_put_keys(struct rd_storage *s, uint64_t group, const char *prefix, int n,
                 size_t vlen, uint64_t term);

/* Raw RocksDB access to a closed data directory (all column families). */
struct th_raw {
	rocksdb_t *db;
	rocksdb_options_t *opts;
	rocksdb_column_family_handle_t *cf[7];
};
void th_raw_open(struct th_raw *r, const char *dir);
void th_raw_close(struct th_raw *r);
/* cf index as in lib/storage/schema.h: 1 log, 2 state, 3 kv, 4 catalog, 5 session,
 * 6 journal */
void th_raw_put(struct th_raw *r, int cf, const void *k, size_t klen, const void *v,
                size_t vlen);
void th_raw_delete(struct th_raw *r, int cf, const void *k, size_t klen);
/* malloc'd value or NULL */
char *th_raw_get(struct th_raw *r, int cf, const void *k, size_t klen, size_t *vlen);
/* XOR `mask` into the byte `from_end` bytes before the end of the value
 * under key k in column family `cf`, and write it back (asserts the key
 * is there and its value that long). */
void th_raw_flip(struct th_raw *r, int cf, const void *k, size_t klen, size_t from_end,
                 uint8_t mask);
/* Flush memtables into SST files. */
void th_raw_flush(struct th_raw *r);

#endif
