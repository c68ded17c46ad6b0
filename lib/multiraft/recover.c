/*
 * `raftd --config FILE --force-new-cluster`: the way out of a permanent
 * loss of quorum, and explicitly unsafe. Run on one surviving node, it
 * rewrites every group this node holds (group 0 and the data groups) so
 * that this node is the group's only member, then the node starts as
 * usual and leads every group alone.
 *
 * Per group, in one synced write for all groups (all or nothing):
 *   1. the configuration as of the commit index this node knows is
 *      rebuilt (the log start's membership plus the committed conf
 *      changes, thesis §4.1) and logged;
 *   2. every entry after that commit index is discarded and logged (its
 *      index range, terms and how many were membership changes): this
 *      node cannot know whether the lost majority committed them;
 *   3. conf-change entries are appended that make this node the only
 *      voter (promote itself if it was a learner, remove every other
 *      voter and learner), in a term above any this node has seen, and
 *      the commit index is set to the last of them: committed by fiat,
 *      which is what makes this unsafe (no quorum stored them). Group 0's
 *      carry the member table's context (cluster/members.h), so the
 *      removed nodes' records say "removed" once they apply.
 *
 * Why this node alone and not "the survivors": each survivor would rewrite
 * its own log, with its own commit index, and append its own entries at
 * the same indexes in the same term; two logs holding different entries
 * at one (index, term) break Log Matching (Raft §5.3) the moment they
 * talk. A one-member cluster has one log. The other survivors are wiped
 * and come back as new members (raftd(8)), as with etcd's
 * --force-new-cluster.
 *
 * What can be lost (also in raftd(8)): every entry the old cluster
 * committed that this node had not learned was committed (its commit
 * index lagged the leader's), whether or not its log held the entry; for
 * a write acknowledged by another node than this one, that is the
 * acknowledged write. A write acknowledged by this node was applied here
 * (the runtime answers a client only after its local apply) and is kept.
 *
 * Failure modes: no data directory or database (nothing to recover), a
 * database that fails its open checks: refused before anything is written.
 * A group of which this node is no member at its commit index is left as
 * it is, with a line saying so.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/members.h"
#include "multiraft/node.h"
#include "raft/raft.h"
#include "storage/storage.h"
#include "util/config.h"
#include "util/err.h"
#include "util/log.h"

#define ULL(x) ((unsigned long long)(x))

/* A conf-change entry's payload: the core's header, then (group 0) the
 * member table's context (cluster/members.h). */
#define CC_MAX (RD_RAFT_CC_HEADER + RD_MEMBERS_CC_CTX_MAX)

/* What the scan of one group's log found. */
struct scan {
	uint64_t commit;
	struct rd_conf_state conf; /* as of commit */
	uint64_t dropped, dropped_conf;
	uint64_t drop_first, drop_last, drop_term_lo, drop_term_hi;
};

static int scan_entry(void *arg, const struct rd_entry *e)
{
	struct scan *s = arg;
	uint8_t t;
	uint64_t node;

	if (e->index <= s->commit) {
		if (e->type == RD_ENTRY_CONF_CHANGE &&
		    rd_raft_cc_decode(e->data, e->len, &t, &node) == 0)
			(void)rd_raft_conf_apply(&s->conf, t, node);
		return 0;
	}
	if (s->dropped++ == 0) {
		s->drop_first = e->index;
		s->drop_term_lo = e->term;
	}
	s->drop_last = e->index;
	s->drop_term_hi = e->term;
	s->dropped_conf += e->type == RD_ENTRY_CONF_CHANGE;
	return 0;
}

static void fmt_ids(char *out, size_t cap, const uint64_t *v, uint32_t n)
{
	size_t l = 0;
	out[0] = '\0';
	for (uint32_t i = 0; i < n && l < cap; i++)
		l +=
		    (size_t)snprintf(out + l, cap - l, "%s%llu", i ? "," : "", ULL(v[i]));
	if (n == 0)
		snprintf(out, cap, "-");
}

static bool has(const uint64_t *v, uint32_t n, uint64_t id)
{
	for (uint32_t i = 0; i < n; i++)
		if (v[i] == id)
			return true;
	return false;
}

/* Encode the change of `node` into cc; for group 0 with the context that
 * makes the metadata applier update the node's member record as a `raftctl
 * members` change would (its registered incarnation and address kept, state
 * "removed" or "voter"); without one when the table has no record to keep
 * (the record then stays as it is). Returns the payload length. */
static uint32_t encode_cc(struct rd_storage *st, uint64_t gid, uint8_t type,
                          uint64_t node, uint8_t *cc)
{
	uint8_t key[RD_MEMBERS_KEY_MAX], *val = NULL;
	struct rd_member_record rec;
	size_t kl, vl = 0;
	uint32_t len = RD_RAFT_CC_HEADER;
	char msg[RD_ERRMSG_SIZE];

	rd_raft_cc_encode(cc, type, node);
	if (gid != 0)
		return len;
	kl = rd_members_key(rd_storage_cluster_id(st), node, key);
	if (rd_storage_kv_get(st, 0, key, kl, &val, &vl, msg) == 0 &&
	    rd_members_decode(val, vl, &rec) == 0)
		len += (uint32_t)rd_members_cc_ctx_encode(rec.incarnation, rec.addr,
		                                          false, cc + RD_RAFT_CC_HEADER);
	free(val);
	return len;
}

/* Fill ents/cc with the changes that leave `self` the only voter of `cs`,
 * from index `next` in `term`. Returns how many. */
static size_t one_member(struct rd_storage *st, uint64_t gid,
                         const struct rd_conf_state *cs, uint64_t self, uint64_t next,
                         uint64_t term, struct rd_entry *ents, uint8_t (*cc)[CC_MAX])
{
	struct rd_conf_state c = *cs;
	size_t n = 0;
	uint64_t others[2 * RD_RAFT_MAX_MEMBERS];
	uint32_t k = 0;

	for (uint32_t i = 0; i < c.n_voters; i++)
		if (c.voters[i] != self)
			others[k++] = c.voters[i];
	for (uint32_t i = 0; i < c.n_learners; i++)
		if (c.learners[i] != self)
			others[k++] = c.learners[i];
	uint32_t len[2 * RD_RAFT_MAX_MEMBERS];
	if (has(c.learners, c.n_learners, self)) {
		len[n] = encode_cc(st, gid, RD_CC_PROMOTE_LEARNER, self, cc[n]);
		(void)rd_raft_conf_apply(&c, RD_CC_PROMOTE_LEARNER, self);
		n++;
	}
	for (uint32_t i = 0; i < k; i++) {
		len[n] = encode_cc(st, gid, RD_CC_REMOVE, others[i], cc[n]);
		(void)rd_raft_conf_apply(&c, RD_CC_REMOVE, others[i]);
		n++;
	}
	for (size_t i = 0; i < n; i++)
		ents[i] = (struct rd_entry){.term = term,
		                            .index = next + i,
		                            .type = RD_ENTRY_CONF_CHANGE,
		                            .len = len[i],
		                            .data = cc[i]};
	return n;
}

/* Rewrite group `gid` into batch b. Returns 0 or an error (msg). */
static int rewrite_group(struct rd_storage *st, struct rd_storage_batch *b, uint64_t self,
                         uint64_t gid, bool *changed, char *msg)
{
	struct rd_storage_group_info info;
	struct scan s = {0};
	struct rd_entry ents[2 * RD_RAFT_MAX_MEMBERS];
	uint8_t cc[2 * RD_RAFT_MAX_MEMBERS][CC_MAX];
	char voters[512], learners[512];
	int rv;

	*changed = false;
	if (rd_storage_group_info(st, gid, &info) != 0)
		return 0;
	s.commit = info.hs.commit;
	s.conf = info.start_conf;
	if (info.last_index >= info.first_index &&
	    (rv = rd_storage_log_scan(st, gid, info.first_index, scan_entry, &s, msg)) !=
	        0)
		return rv;
	fmt_ids(voters, sizeof voters, s.conf.voters, s.conf.n_voters);
	fmt_ids(learners, sizeof learners, s.conf.learners, s.conf.n_learners);
	if (!has(s.conf.voters, s.conf.n_voters, self) &&
	    !has(s.conf.learners, s.conf.n_learners, self)) {
		rd_log_warn(
		    "force-new-cluster: group=%llu left as it is: this node is no "
		    "member at commit=%llu (voters=%s learners=%s)",
		    ULL(gid), ULL(s.commit), voters, learners);
		return 0;
	}
	rd_log_crit("force-new-cluster: group=%llu old configuration voters=%s "
	            "learners=%s at commit=%llu term=%llu",
	            ULL(gid), voters, learners, ULL(s.commit), ULL(info.hs.term));
	if (s.dropped > 0)
		rd_log_crit("force-new-cluster: group=%llu DISCARDING %llu uncommitted "
		            "entries index=%llu..%llu terms=%llu..%llu (%llu membership "
		            "changes): whatever the lost majority committed among them "
		            "is gone",
		            ULL(gid), ULL(s.dropped), ULL(s.drop_first), ULL(s.drop_last),
		            ULL(s.drop_term_lo), ULL(s.drop_term_hi),
		            ULL(s.dropped_conf));
	uint64_t term = info.hs.term > info.last_term ? info.hs.term : info.last_term;
	term++;
	size_t n = one_member(st, gid, &s.conf, self, s.commit + 1, term, ents, cc);
	if (n == 0 && s.dropped == 0) {
		rd_log_notice("force-new-cluster: group=%llu already has this node as "
		              "its only member: unchanged",
		              ULL(gid));
		return 0;
	}
	if (s.dropped > 0 &&
	    (rv = rd_storage_batch_truncate(b, gid, s.commit + 1, msg)) != 0)
		return rv;
	if (n > 0 && (rv = rd_storage_batch_append(b, gid, ents, n, msg)) != 0)
		return rv;
	/* A new term with no vote: no message of the old terms can count in
	 * it, and the entries above are committed here and now. */
	struct rd_hard_state hs = {.term = term, .vote = 0, .commit = s.commit + n};
	if ((rv = rd_storage_batch_set_hard_state(b, gid, &hs, msg)) != 0)
		return rv;
	rd_log_crit("force-new-cluster: group=%llu new configuration voters=%llu "
	            "learners=- (%zu membership changes committed by fiat at "
	            "index=%llu..%llu term=%llu)",
	            ULL(gid), ULL(self), n, ULL(s.commit + 1), ULL(s.commit + n),
	            ULL(term));
	*changed = true;
	return 0;
}

int rd_node_force_new_cluster(const struct rd_config *cfg, char *msg)
{
	struct rd_storage_options o;
	struct rd_storage *st;
	struct rd_storage_batch *b;
	uint64_t *ids;
	size_t n, changed = 0;
	int rv;

	rd_storage_options_init(&o);
	o.session_max = cfg->session_max;
	o.session_expiry = cfg->session_expiry;
	if ((rv = rd_storage_open(cfg->data_dir, &o, &st, msg)) != 0) {
		rd_errprefix(msg, "data directory %s: ", cfg->data_dir);
		return rv;
	}
	n = rd_storage_group_count(st);
	ids = calloc(n ? n : 1, sizeof *ids);
	b = rd_storage_batch_new(st);
	if (ids == NULL || b == NULL) {
		rv = rd_errorf(msg, RD_ENOMEM, "out of memory");
		goto err_after_alloc;
	}
	rd_storage_groups(st, ids, n);
	rd_log_crit("force-new-cluster: UNSAFE recovery from a lost quorum: node=%llu "
	            "becomes the only member of its %zu groups (cluster=%s)",
	            ULL(cfg->node_id), n, rd_storage_cluster_id(st));
	for (size_t i = 0; i < n; i++) {
		bool c;
		if ((rv = rewrite_group(st, b, cfg->node_id, ids[i], &c, msg)) != 0) {
			rd_errprefix(msg, "group %llu: ", ULL(ids[i]));
			goto err_after_alloc;
		}
		changed += c;
	}
	rd_storage_commit(st, b);
	rd_log_crit("force-new-cluster: done, %zu of %zu groups rewritten; wipe the "
	            "data directory of every other node before it starts again",
	            changed, n);
	rv = 0;
err_after_alloc:
	rd_storage_batch_free(b);
	free(ids);
	rd_storage_close(st);
	return rv;
}
