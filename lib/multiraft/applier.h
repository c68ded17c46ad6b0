/*
 * The seam between the driver and a replicated state machine. The driver
 * hands every committed entry of a group, in log order, to the group's
 * applier inside the iteration's write batch; the applier writes its
 * effects and the new applied index into that same batch (so a restart
 * neither loses nor re-applies an entry) and reports the outcome for the
 * client that proposed the entry. Reads go through the same applier.
 *
 * Two appliers exist: the key-value state machine of the data groups and
 * the metadata applier of group 0 (user metadata as key-value pairs, plus
 * membership records). Another state machine plugs in by providing one
 * more `struct rd_applier_ops`.
 */
#ifndef RD_MULTIRAFT_APPLIER_H
#define RD_MULTIRAFT_APPLIER_H

#include <stddef.h>
#include <stdint.h>

#include "raft/types.h"
#include "storage/storage.h"

struct rd_applier_ops {
	const char *name;
	/* Apply committed entry `e` of `group` into `b` (setting the applied
	 * index to e->index) and describe the outcome in *res. Returns 0, or
	 * an RD_E* code for a refusal the driver treats as fatal. */
	int (*apply)(void *ud, struct rd_storage_batch *b, uint64_t group,
	             const struct rd_entry *e, struct rd_kv_result *res, char *msg);
	/* Read `key` from the durable state of `group`: 0 with a malloc'd copy
	 * in *val (caller frees), RD_ENOTFOUND, or another RD_E* code. */
	int (*read)(void *ud, uint64_t group, const uint8_t *key, size_t key_len,
	            uint8_t **val, size_t *len, char *msg);
};

struct rd_applier {
	const struct rd_applier_ops *ops;
	void *ud;
};

/* The key-value state machine of the data groups (lib/storage/kv.h). */
extern const struct rd_applier_ops rd_applier_kv_ops;

/* Group 0: user metadata as key-value pairs, and membership entries. */
extern const struct rd_applier_ops rd_applier_meta_ops;

#endif
