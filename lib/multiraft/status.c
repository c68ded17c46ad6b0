/*
 * Answers to `raftctl status`, `groups` and `members`.
 */
#include <stdlib.h>
#include <string.h>

#include "multiraft/node_internal.h"
#include "raftd.pb-c.h"
#include "util/hash.h"
#include "util/err.h"

struct hash_ctx {
	uint64_t h;
};

static void fnv(struct hash_ctx *c, const void *p, size_t len)
{
	c->h = rd_fnv1a64_update(c->h, p, len);
}

static int hash_kv(void *arg, const uint8_t *key, size_t key_len, const uint8_t *val,
                   size_t val_len)
{
	struct hash_ctx *c = arg;
	uint32_t kl = (uint32_t)key_len, vl = (uint32_t)val_len;
	fnv(c, &kl, sizeof kl);
	fnv(c, key, key_len);
	fnv(c, &vl, sizeof vl);
	fnv(c, val, val_len);
	return 0;
}

uint64_t rd_node_state_hash(struct rd_node *n)
{
	struct hash_ctx c = {.h = RD_FNV1A64_INIT};
	char msg[RD_ERRMSG_SIZE];

	for (uint64_t id = 0; id < n->n_slots; id++) {
		if (n->groups[id] == NULL)
			continue;
		fnv(&c, &id, sizeof id);
		rd_storage_kv_scan(n->st, id, hash_kv, &c, msg);
	}
	return c.h;
}

static Raftd__GroupRole role_of(const struct rd_group *g)
{
	const struct rd_conf_state *cs = rd_raft_conf(g->raft);

	if (rd_group_conf_role(cs, rd_raft_id(g->raft)) == RD_CONF_ROLE_LEARNER)
		return RAFTD__GROUP_ROLE__ROLE_LEARNER;
	return (Raftd__GroupRole)rd_raft_role(g->raft);
}

void rd_requests_status(struct rd_node *n, struct Raftd__ClientResponse *resp,
                        rd_send_resp_fn send, struct rd_ctl_conn *conn)
{
	Raftd__StatusResult st = RAFTD__STATUS_RESULT__INIT;
	Raftd__Topology topo = RAFTD__TOPOLOGY__INIT;
	Raftd__LoopStats loop = RAFTD__LOOP_STATS__INIT;
	Raftd__Member mem[RD_NODE_MAX_MEMBERS], *memp[RD_NODE_MAX_MEMBERS];
	uint64_t routing[RD_VSHARDS];
	struct rd_group *g0 = rd_node_group(n, 0);

	st.node_id = n->cfg.node_id;
	st.ready = n->ready;
	st.meta_leader = g0 != NULL ? rd_raft_leader(g0->raft) : 0;
	st.version = (char *)RD_VERSION;
	st.uptime_ms = (rd_clock_now_ns() - n->started_ns) / 1000000ull;
	st.state_machine_hash = rd_node_state_hash(n);
	for (unsigned i = 0; i < n->topo.n_members; i++) {
		raftd__member__init(&mem[i]);
		mem[i].id = n->topo.members[i].id;
		mem[i].address = n->topo.members[i].addr.text;
		memp[i] = &mem[i];
	}
	for (unsigned v = 0; v < RD_VSHARDS; v++)
		routing[v] = n->topo.routing.vshard[v];
	topo.version = n->topo.routing.version;
	topo.n_members = n->topo.n_members;
	topo.members = memp;
	topo.n_routing = RD_VSHARDS;
	topo.routing = routing;
	st.topology = &topo;
	loop.iterations = n->loop.iterations;
	loop.ticks = n->loop.ticks;
	loop.last_iteration_us = n->loop.last_iter_ns / 1000;
	loop.max_iteration_us = n->loop.max_iter_ns / 1000;
	loop.last_tick_us = n->loop.last_tick_ns / 1000;
	loop.max_tick_us = n->loop.max_tick_ns / 1000;
	st.loop = &loop;
	st.disk_slow = n->health.slow;
	st.disk_evacuations = n->health.evacuations;
	st.canary_checks = n->canary.checks;
	st.canary_violations = n->canary.violations;
	resp->result_case = RAFTD__CLIENT_RESPONSE__RESULT_STATUS;
	resp->status = &st;
	send(conn, resp);
}

void rd_requests_groups(struct rd_node *n, struct Raftd__ClientResponse *resp,
                        rd_send_resp_fn send, struct rd_ctl_conn *conn)
{
	Raftd__GroupsResult res = RAFTD__GROUPS_RESULT__INIT;
	Raftd__GroupRow *rows = calloc(n->n_slots, sizeof *rows);
	Raftd__GroupRow **rowp = calloc(n->n_slots, sizeof *rowp);
	uint32_t *vshards = calloc(n->n_slots * RD_VSHARDS, sizeof *vshards);
	size_t k = 0;

	if (rows == NULL || rowp == NULL || vshards == NULL)
		goto out;
	for (size_t id = 0; id < n->n_slots; id++) {
		struct rd_group *g = n->groups[id];
		Raftd__GroupRow *row = &rows[k];
		const struct rd_conf_state *cs;
		if (g == NULL)
			continue;
		cs = rd_raft_conf(g->raft);
		raftd__group_row__init(row);
		row->group = id;
		row->role = role_of(g);
		row->leader = rd_raft_leader(g->raft);
		row->term = rd_raft_term(g->raft);
		row->commit = rd_raft_commit(g->raft);
		row->applied = rd_raft_applied_index(g->raft);
		row->last_index = rd_raft_last_index(g->raft);
		row->n_voters = cs->n_voters;
		row->voters = (uint64_t *)cs->voters;
		row->n_learners = cs->n_learners;
		row->learners = (uint64_t *)cs->learners;
		if (id > 0) {
			const struct rd_group_placement *p =
			    rd_routing_placement(&n->topo.routing, (uint32_t)id);
			row->n_placement = p->n_replicas;
			row->placement = (uint64_t *)p->replicas;
		}
		row->vshards = &vshards[k * RD_VSHARDS];
		for (uint32_t v = 0; id > 0 && v < RD_VSHARDS; v++)
			if (n->topo.routing.vshard[v] == id)
				row->vshards[row->n_vshards++] = v;
		rowp[k++] = row;
	}
	res.n_groups = k;
	res.groups = rowp;
	res.topology_version = n->topo.routing.version;
	resp->result_case = RAFTD__CLIENT_RESPONSE__RESULT_GROUPS;
	resp->groups = &res;
out:
	send(conn, resp);
	free(rows);
	free(rowp);
	free(vshards);
}

/* A member's role in group 0 as this node's configuration has it. */
static Raftd__MemberRole member_role(const struct rd_node *n, uint64_t id)
{
	const struct rd_group *g0 = rd_node_group(n, RD_STORAGE_META_GROUP);

	if (g0 == NULL)
		return RAFTD__MEMBER_ROLE__MEMBER_VOTER;
	switch (rd_group_conf_role(rd_raft_conf(g0->raft), id)) {
	case RD_CONF_ROLE_VOTER:
		return RAFTD__MEMBER_ROLE__MEMBER_VOTER;
	case RD_CONF_ROLE_LEARNER:
		return RAFTD__MEMBER_ROLE__MEMBER_LEARNER;
	default:
		return RAFTD__MEMBER_ROLE__MEMBER_REMOVED;
	}
}

void rd_requests_members(struct rd_node *n, struct Raftd__ClientResponse *resp,
                         rd_send_resp_fn send, struct rd_ctl_conn *conn)
{
	Raftd__MembersResult res = RAFTD__MEMBERS_RESULT__INIT;
	Raftd__MemberRow rows[RD_NODE_MAX_MEMBERS], *rowp[RD_NODE_MAX_MEMBERS];

	for (unsigned i = 0; i < n->topo.n_members; i++) {
		raftd__member_row__init(&rows[i]);
		rows[i].id = n->topo.members[i].id;
		rows[i].address = n->topo.members[i].addr.text;
		rows[i].role = member_role(n, rows[i].id);
		rows[i].self = n->topo.members[i].id == n->cfg.node_id;
		if (rd_membership_registered(n, rows[i].id, &rows[i].incarnation) != 0)
			rows[i].incarnation = 0;
		if (!rows[i].self)
			rows[i].connected =
			    rd_peers_connected(n, rows[i].id, &rows[i].rtt_us);
		rowp[i] = &rows[i];
	}
	res.topology_version = n->topo.routing.version;
	res.n_members = n->topo.n_members;
	res.members = rowp;
	resp->result_case = RAFTD__CLIENT_RESPONSE__RESULT_MEMBERS;
	resp->members = &res;
	send(conn, resp);
}
