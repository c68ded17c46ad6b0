/*
 * Hosting one Raft group on this node: restore it from storage (hard state,
 * membership, compaction point, log) or create it at bootstrap with its
 * initial voters; and the cores' log source, through which a core reads
 * back the entries below its in-memory tail (lib/raft/raft.h, "The
 * in-memory tail").
 */
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <string.h>
#include <sys/random.h>

#include "multiraft/node_internal.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/sort.h"

struct load {
	struct rd_entry *ents;
	size_t n, cap;
	uint8_t **datas;
};

static int collect(void *arg, const struct rd_entry *e)
{
	struct load *l = arg;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		struct rd_entry *ents = realloc(l->ents, cap * sizeof *ents);
		if (ents == NULL)
			return RD_ENOMEM;
		l->ents = ents;
		l->cap = cap;
	}
	l->ents[l->n] = *e;
	l->ents[l->n].data = NULL;
	if (e->len > 0) {
		l->ents[l->n].data = malloc(e->len);
		if (l->ents[l->n].data == NULL)
			return RD_ENOMEM;
		memcpy(l->ents[l->n].data, e->data, e->len);
	}
	l->n++;
	return 0;
}

/* The cores' log source: entries below a core's in-memory tail, from the
 * storage's entry cache or RocksDB. A failure is logged (at most once a
 * second) and counted; the core sends nothing for it and tries again. */
static int source_entries(void *ud, uint64_t group, uint64_t lo, uint64_t hi,
                          uint64_t max_bytes, const struct rd_entry **ents, size_t *n)
{
	struct rd_node *nd = ud;
	char msg[RD_ERRMSG_SIZE];

	nd->log_reads++;
	int rv = rd_storage_entries(nd->st, group, lo, hi, max_bytes, &nd->log_buf, msg);
	if (rv != 0) {
		uint64_t now = rd_clock_now_ns();
		nd->log_read_errors++;
		if (now - nd->log_error_logged_ns >= 1000000000u) {
			nd->log_error_logged_ns = now;
			rd_log_warn("log read failed group=%llu from=%llu: %s "
			            "(errors so far: %llu)",
			            (unsigned long long)group, (unsigned long long)lo,
			            msg, (unsigned long long)nd->log_read_errors);
		}
		return rv;
	}
	*ents = nd->log_buf.ents;
	*n = nd->log_buf.n;
	return 0;
}

static void load_free(struct load *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->ents[i].data);
	free(l->ents);
}

void rd_group_raft_config(const struct rd_config *cfg, uint64_t group,
                          struct rd_raft_config *rc)
{
	memset(rc, 0, sizeof *rc);
	rc->group = group;
	rc->id = cfg->node_id;
	rc->election_ticks = cfg->election_ticks;
	rc->heartbeat_ticks = cfg->heartbeat_ticks;
	rc->max_inflight_msgs = cfg->max_inflight_msgs;
	/* A returning follower gets at most this much at once per group, not
	 * max_inflight_msgs whole appends (256 MiB at the defaults) in one
	 * frame ahead of every heartbeat to its node. */
	rc->max_inflight_bytes = cfg->max_inflight_bytes;
	rc->max_msg_bytes = cfg->max_msg_bytes;
	rc->pre_vote = true;
	rc->check_quorum = true;
	/* Idle groups stop ticking; node liveness wakes them (liveness.c). */
	rc->quiesce = cfg->quiesce;
	/* A bounded tail of the log in memory, none while quiesced. */
	rc->log_mem_bytes = cfg->log_cache_bytes;
}

int rd_group_open(struct rd_node *n, uint64_t id, const uint64_t *voters, size_t n_voters,
                  char *msg)
{
	struct rd_storage_group_info info;
	struct rd_raft_config rc;
	struct load l = {0};
	struct rd_group *g;
	bool fresh;
	int rv;

	if (id >= n->n_slots)
		return rd_errorf(msg, RD_EINVAL, "group %llu out of range",
		                 (unsigned long long)id);
	g = calloc(1, sizeof *g);
	if (g == NULL)
		return rd_errorf(msg, RD_ENOMEM, "out of memory");
	g->id = id;
	g->conf_persisted = &rd_conf_none;
	/* Read contexts never repeat across starts (a random base below 2^63,
	 * so the increasing ctx that waiter.c matches by never wraps). */
	if (getrandom(&g->next_ctx, sizeof g->next_ctx, 0) != sizeof g->next_ctx)
		g->next_ctx = n->seed ^ (uint64_t)rd_clock_now_ns();
	g->next_ctx = (g->next_ctx >> 2) | (1ull << 62);

	fresh = rd_storage_group_info(n->st, id, &info) == RD_ENOTFOUND;
	rd_group_raft_config(&n->cfg, id, &rc);
	rc.seed = n->seed ^ (id * 0x9e3779b97f4a7c15ull);
	/* A bounded tail of the log in memory, none while quiesced. */
	n->log_source.entries = source_entries;
	n->log_source.ud = n;
	rc.log_source = &n->log_source;
	if (fresh || info.conf.n_voters == 0) {
		if (n_voters > RD_RAFT_MAX_MEMBERS) {
			rv = rd_errorf(msg, RD_EINVAL, "group %llu: too many voters",
			               (unsigned long long)id);
			goto err_after_alloc;
		}
		/* A new group writes its voters into the log as entries 1..n
		 * (lib/raft): every founding node must list them in the same
		 * order, whatever order its config gave, or the logs diverge. */
		rc.conf.n_voters = (uint32_t)n_voters;
		memcpy(rc.conf.voters, voters, n_voters * sizeof *voters);
		rd_sort_u64(rc.conf.voters, rc.conf.n_voters);
	} else {
		rc.conf = info.conf;
		rd_conf_assign(&g->conf_persisted, &info.conf);
	}
	if (!fresh) {
		rc.hard_state = info.hs;
		rc.applied = info.applied;
		if (info.has_snapshot || info.first_index > 1) {
			rc.snapshot.index = info.first_index - 1;
			rc.snapshot.term = info.compact_term;
			/* The membership at the compaction point, to which
			 * the log's conf changes apply (thesis §4.1); not the
			 * last snapshot's, which later compaction passed, nor
			 * the applied one, which the log's changes after the
			 * compaction point already include. */
			rc.snapshot.conf = info.start_conf;
		}
		if (info.last_index >= info.first_index) {
			rv = rd_storage_log_scan(n->st, id, info.first_index, collect, &l,
			                         msg);
			if (rv != 0) {
				rd_errprefix(msg, "group %llu: loading the log: ",
				             (unsigned long long)id);
				goto err_after_load;
			}
		}
		rc.entries = l.ents;
		rc.n_entries = l.n;
		if (rc.applied < rc.snapshot.index)
			rc.applied = rc.snapshot.index;
	}
	rv = rd_raft_new(&rc, &g->raft, msg);
	if (rv != 0) {
		rd_errprefix(msg, "group %llu: ", (unsigned long long)id);
		goto err_after_load;
	}
	load_free(&l);
	g->fresh = fresh;
	g->applier = id == 0 ? &n->meta_applier : &n->data_applier;
	g->applied = rd_raft_applied_index(g->raft);
	n->groups[id] = g;
	rd_membership_replicas_load(n, g);
	rd_log_info(
	    "group opened group=%llu term=%llu commit=%llu applied=%llu last=%llu "
	    "voters=%u%s",
	    (unsigned long long)id, (unsigned long long)rd_raft_term(g->raft),
	    (unsigned long long)rd_raft_commit(g->raft),
	    (unsigned long long)rd_raft_applied_index(g->raft),
	    (unsigned long long)rd_raft_last_index(g->raft),
	    rd_raft_conf(g->raft)->n_voters, fresh ? " new=1" : "");
	return 0;

err_after_load:
	load_free(&l);
err_after_alloc:
	rd_conf_release(g->conf_persisted);
	free(g);
	return rv;
}

void rd_group_trim_memory(struct rd_node *n)
{
	uint64_t now = rd_clock_now_ns();
	uint64_t many = n->n_slots / 8 > 64 ? n->n_slots / 8 : 64;

	/* Once the wave has passed: none quiesced in the last second. */
	bool settled = n->mem_quiesced == n->mem_quiesced_seen;
	n->mem_quiesced_seen = n->mem_quiesced;
	if (n->mem_quiesced < many || !settled || now - n->mem_trim_ns < 30000000000u)
		return;
	/* The batch's buffers are sized to the largest batch (the start's
	 * held every group); its write in flight keeps them for now. */
	if (!n->writing)
		rd_storage_batch_trim(n->batch);
#ifdef __GLIBC__
	(void)malloc_trim(0);
#endif
	rd_log_debug("memory trimmed groups_quiesced=%llu ms=%.1f",
	             (unsigned long long)n->mem_quiesced,
	             (double)(rd_clock_now_ns() - now) / 1e6);
	n->mem_quiesced = n->mem_quiesced_seen = 0;
	n->mem_trim_ns = rd_clock_now_ns();
}

void rd_group_release_idle(struct rd_group *g)
{
	struct rd_written *w = &g->w;

	free(w->committed);
	free(w->reads);
	free(w->reads_failed);
	free(w->snap_sends);
	free(w->msgs);
	free(g->results);
	*w = (struct rd_written){0};
	g->results = NULL;
	g->results_cap = 0;
}

void rd_group_free(struct rd_group *g)
{
	if (g == NULL)
		return;
	rd_raft_free(g->raft);
	rd_conf_release(g->conf_persisted);
	free(g->replicas);
	free(g->results);
	free(g->w.committed);
	free(g->w.reads);
	free(g->w.reads_failed);
	free(g->w.snap_sends);
	free(g->w.msgs);
	free(g);
}

enum rd_conf_role rd_group_conf_role(const struct rd_conf_state *cs, uint64_t id)
{
	for (uint32_t i = 0; i < cs->n_voters; i++)
		if (cs->voters[i] == id)
			return RD_CONF_ROLE_VOTER;
	for (uint32_t i = 0; i < cs->n_learners; i++)
		if (cs->learners[i] == id)
			return RD_CONF_ROLE_LEARNER;
	return RD_CONF_ROLE_NONE;
}
