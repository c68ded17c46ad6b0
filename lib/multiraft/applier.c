/*
 * The two appliers (applier.h). `ud` is the node's struct rd_storage.
 */
#include "multiraft/applier.h"

#include <stdlib.h>
#include <string.h>

#include "cluster/members.h"
#include "raft/raft.h"
#include "storage/kv.h"
#include "util/bytes.h"
#include "util/err.h"
#include "util/log.h"

static int conf_change(struct rd_storage *st, struct rd_storage_batch *b, uint64_t group,
                       const struct rd_entry *e, struct rd_kv_result *res, char *msg);

static int kv_apply(void *ud, struct rd_storage_batch *b, uint64_t group,
                    const struct rd_entry *e, struct rd_kv_result *res, char *msg)
{
	(void)ud;
	memset(res, 0, sizeof *res);
	if (e->type == RD_ENTRY_NORMAL && e->len > 0)
		return rd_storage_batch_apply_kv(b, group, e->index, e->data, e->len, res,
		                                 msg);
	if (e->type == RD_ENTRY_CONF_CHANGE)
		return conf_change(ud, b, group, e, res, msg);
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

/* A conf change with a context (raftctl members add / remove / promote, a
 * replica replaced; the founding entries have none) sets, in the same batch
 * as the entry's applied index, the replica identity of its node in the
 * group's own state machine (cluster/members.h: added, the context's
 * incarnation; removed, none) and, in group 0, its member record: the
 * member table and the replica identities follow the configuration entry
 * by entry, on every replica alike (they depend only on the entry and the
 * state before it). */
static int conf_change(struct rd_storage *st, struct rd_storage_batch *b, uint64_t group,
                       const struct rd_entry *e, struct rd_kv_result *res, char *msg)
{
	uint8_t type, key[RD_MEMBERS_REPLICA_KEY_MAX], val[RD_MEMBERS_VALUE_MAX];
	struct rd_member_record cur, next;
	const uint8_t *cv;
	size_t kl, cl;
	uint64_t node, inc;
	char addr[256];
	bool have, joining;

	memset(res, 0, sizeof *res);
	if (rd_raft_cc_decode(e->data, e->len, &type, &node) != 0 ||
	    e->len == RD_RAFT_CC_HEADER ||
	    rd_members_cc_ctx_decode(e->data + RD_RAFT_CC_HEADER,
	                             e->len - RD_RAFT_CC_HEADER, &inc, addr,
	                             &joining) != 0)
		return rd_storage_batch_set_applied(b, group, e->index, msg);
	kl = rd_members_replica_key(rd_storage_cluster_id(st), node, key);
	if (type == RD_CC_ADD_VOTER || type == RD_CC_ADD_LEARNER) {
		rd_be64_put(val, inc);
		rd_storage_batch_kv_write(b, group, key, kl, val, 8);
	} else if (type == RD_CC_REMOVE) {
		rd_storage_batch_kv_write(b, group, key, kl, NULL, 0);
	}
	if (group == 0) {
		kl = rd_members_key(rd_storage_cluster_id(st), node, key);
		have = rd_storage_batch_kv_get(b, group, key, kl, &cv, &cl) == 0 &&
		       rd_members_decode(cv, cl, &cur) == 0;
		rd_members_after_cc(type, have ? &cur : NULL, inc, addr, joining, &next);
		rd_storage_batch_kv_write(b, group, key, kl, val,
		                          rd_members_encode(&next, val));
	}
	return rd_storage_batch_set_applied(b, group, e->index, msg);
}

/* Membership entries of group 0: the core tracks the configuration; the
 * applier keeps the member table in step and makes them visible in the
 * node's log. */
static int meta_apply(void *ud, struct rd_storage_batch *b, uint64_t group,
                      const struct rd_entry *e, struct rd_kv_result *res, char *msg)
{
	if (e->type == RD_ENTRY_CONF_CHANGE) {
		uint8_t type;
		uint64_t node;
		if (rd_raft_cc_decode(e->data, e->len, &type, &node) == 0)
			rd_log_info(
			    "membership change applied group=%llu index=%llu type=%u "
			    "node=%llu",
			    (unsigned long long)group, (unsigned long long)e->index,
			    (unsigned)type, (unsigned long long)node);
		return conf_change(ud, b, group, e, res, msg);
	}
	return kv_apply(ud, b, group, e, res, msg);
}

const struct rd_applier_ops rd_applier_meta_ops = {
    .name = "metadata",
    .apply = meta_apply,
    .read = kv_read,
};
