/*
 * The per-group journal of applied commands, for subscribers (commit
 * streams, proto/raftd.proto "Commit streams"). Every applied entry that
 * carries a command is written into the journal in the same batch as its
 * apply, so what a subscriber reads from it is exactly what applied; like
 * the apply it is written without the WAL (storage.h rd_storage_commit): a
 * crash may lose the newest records with the applies, and replaying the
 * committed log writes the same records again. The runtime trims it from
 * the oldest entry to the retention it was configured with. The layout,
 * byte by byte, is schema.h's "journal".
 *
 * The journal is not state-machine state: a snapshot does not carry it. A
 * snapshot install drops the group's journal and restarts it after the
 * snapshot's index (install.c), so a subscriber asking for an entry the
 * node never applied one by one gets COMPACTED, never a silent gap.
 */
#ifndef RD_STORAGE_JOURNAL_H
#define RD_STORAGE_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "storage/storage.h"

enum rd_journal_kind {
	RD_JOURNAL_RAW = 1,  /* raftctl propose */
	RD_JOURNAL_KV = 2,   /* a KV write of a data group */
	RD_JOURNAL_META = 3, /* a command of group 0 */
};

enum rd_journal_status {
	RD_JOURNAL_APPLIED = 0,
	RD_JOURNAL_CAS_FAILED = 1,
	RD_JOURNAL_NOT_APPLIED = 2, /* malformed, or a session sequence too old */
};

/* One journal entry. `data` points into storage-owned memory that is valid
 * only during the callback that receives it (rd_storage_journal_read), or
 * into the caller's memory (rd_storage_batch_journal_put). */
struct rd_journal_rec {
	uint64_t group;
	uint64_t index; /* >= 1 */
	uint64_t term;
	uint8_t kind;   /* enum rd_journal_kind */
	uint8_t status; /* enum rd_journal_status */
	const uint8_t *data;
	size_t len;
};

/* What the journal of one group holds, as durable. */
struct rd_journal_info {
	uint64_t start; /* every entry journaled from here on is held */
	uint64_t first; /* lowest index held (0: none) */
	uint64_t last;  /* highest index held (0: none) */
	uint64_t count; /* entries held */
	uint64_t bytes; /* their key + value bytes */
};

/* Journal bytes charged for one entry of `len` data bytes. */
static inline uint64_t rd_journal_rec_bytes(size_t len)
{
	return 16u + 14u + (uint64_t)len;
}

/* Add `r` (copied) to the batch. The caller puts entries of a group in
 * index order, with the apply of the same entry. Returns 0 or RD_EINVAL
 * (index 0, unknown kind or status). */
int rd_storage_batch_journal_put(struct rd_storage_batch *b,
                                 const struct rd_journal_rec *r, char *msg);

/* Delete the group's entries below `start` and record `start` as the
 * journal's start, in the batch. */
int rd_storage_batch_journal_trim(struct rd_storage_batch *b, uint64_t group,
                                  uint64_t start, char *msg);

/* Scan the group's journal (at open: the runtime keeps the figures up to
 * date afterwards). Returns 0, RD_ECORRUPT naming group and index for a
 * record whose checksum fails, or RD_EIO. */
int rd_storage_journal_info(struct rd_storage *st, uint64_t group,
                            struct rd_journal_info *out, char *msg);

/* Called for each entry read; non-zero stops the read. */
typedef int (*rd_journal_fn)(void *ud, const struct rd_journal_rec *r);

/* Call fn for the group's durable entries with index >= from, in index
 * order, at most `max` of them. *scanned (may be NULL) receives the number
 * of entries passed to fn. Returns 0 (also when fn stopped the read),
 * RD_ECORRUPT or RD_EIO. */
int rd_storage_journal_read(struct rd_storage *st, uint64_t group, uint64_t from,
                            size_t max, rd_journal_fn fn, void *ud, size_t *scanned,
                            char *msg);

#endif
