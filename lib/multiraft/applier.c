/*
 * The two appliers (applier.h). `ud` is the node's struct rd_storage.
 */
#include "multiraft/applier.h"

#include <string.h>

#include "raft/raft.h"
#include "util/err.h"
#include "util/log.h"

static int kv_apply(void *ud, struct rd_storage_batch *b, uint64_t group,
                    const struct rd_entry *e, struct rd_kv_result *res, char *msg)
{
	(void)ud;
	memset(res, 0, sizeof *res);
	if (e->type == RD_ENTRY_NORMAL && e->len > 0)
		return rd_storage_batch_apply_kv(b, group, e->index, e->data, e->len, res,
		                                 msg);
	return rd_storage_batch_set_applied(b, group, e->index, msg);
}

static int kv_read(void *ud, uint64_t group, const uint8_t *key, size_t key_len,
                   uint8_t **val, size_t *len, char *msg)
{
	return rd_storage_kv_get(ud, group, key, key_len, val, len, msg);
}

const struct rd_applier_ops rd_applier_kv_ops = {
    .name = "kv",
    .apply = kv_apply,
    .read = kv_read,
};

/* Membership entries of group 0 are recorded in the log (the core tracks
 * the configuration); the applier makes them visible in the node's log. */
static int meta_apply(void *ud, struct rd_storage_batch *b, uint64_t group,
                      const struct rd_entry *e, struct rd_kv_result *res, char *msg)
{
	if (e->type == RD_ENTRY_CONF_CHANGE) {
		uint8_t type;
		uint64_t node;
		memset(res, 0, sizeof *res);
		if (rd_raft_cc_decode(e->data, e->len, &type, &node) == 0)
			rd_log_info(
			    "membership change applied group=%llu index=%llu type=%u "
			    "node=%llu",
			    (unsigned long long)group, (unsigned long long)e->index,
			    (unsigned)type, (unsigned long long)node);
		return rd_storage_batch_set_applied(b, group, e->index, msg);
	}
	return kv_apply(ud, b, group, e, res, msg);
}

const struct rd_applier_ops rd_applier_meta_ops = {
    .name = "metadata",
    .apply = meta_apply,
    .read = kv_read,
};
