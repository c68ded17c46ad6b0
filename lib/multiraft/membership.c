/*
 * This node's side of the member table (cluster/members.h): registering
 * its own incarnation in group 0, and refusing Raft traffic from an
 * incarnation of a peer that the table does not register.
 *
 * Why a wiped node cannot vote twice (Raft thesis §3.8: a server must not
 * forget its vote): a node whose data directory is lost comes back with a
 * new random incarnation (storage.c). Once the cluster registered its old
 * incarnation, every peer drops each RaftBatch that carries the new one
 * (RaftBatch.incarnation), so none of the votes, pre-votes or append
 * acknowledgements of the node with forgotten state ever counts, in any
 * group; and it cannot register the new incarnation over the old one, since
 * registration is a CAS on an absent key, decided by group 0's log.
 *
 * A node whose storage has no group 0 (new or wiped directory) asks its
 * peers before it creates any founding state (rd_membership_ask_tick), so a
 * wiped node that reaches a peer never holds Raft state at all.
 *
 * Happy path: once group 0 has a leader, a node whose registration is
 * absent proposes it (a group-0 write, forwarded to the leader when this
 * node is not); retried every second until it applies. The check on an
 * incoming batch reads the peer's registration from the durable state
 * machine once per change of group 0's durable applied index, then from a
 * cache.
 * Failure modes: a registration that times out or fails is retried; a
 * node that finds another incarnation registered under its own id logs
 * it once and stays refused by its peers.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "cluster/members.h"
#include "multiraft/node_internal.h"
#include "multiraft/subscribe.h"
#include "raftd.pb-c.h"
#include "storage/kv.h"
#include "transport/transport.h"
#include "transport/wire.h"
#include "util/err.h"
#include "util/log.h"

static void say_removed(struct rd_node *n, const char *how);
static void reconcile(struct rd_node *n);

/* Read node `id`'s registration from the durable state machine of group 0.
 * 0 and *r, RD_ENOTFOUND, or another RD_E* code. */
static int read_record(struct rd_node *n, uint64_t id, struct rd_member_record *r)
{
	uint8_t key[RD_MEMBERS_KEY_MAX], *val = NULL;
	size_t kl = rd_members_key(rd_storage_cluster_id(n->st), id, key), vl = 0;
	char msg[RD_ERRMSG_SIZE];
	int rv = rd_storage_kv_get(n->st, RD_STORAGE_META_GROUP, key, kl, &val, &vl, msg);

	if (rv != 0)
		return rv;
	rv = rd_members_decode(val, vl, r);
	free(val);
	if (rv != 0)
		rd_log_err("member table: node %llu: malformed registration",
		           (unsigned long long)id);
	return rv;
}

/* Group 0's applied index as storage holds it (what read_record sees). */
static uint64_t durable_applied(const struct rd_node *n)
{
	struct rd_storage_group_info info;
	if (rd_storage_group_info(n->st, RD_STORAGE_META_GROUP, &info) != 0)
		return 0;
	return info.applied;
}

int rd_membership_registered(struct rd_node *n, uint64_t id, uint64_t *incarnation)
{
	struct rd_membership *m = &n->members;
	struct rd_member_cache *c = NULL;
	uint64_t applied = durable_applied(n);
	struct rd_member_record r;
	int rv;

	for (unsigned i = 0; i < m->n_cache; i++)
		if (m->cache[i].id == id)
			c = &m->cache[i];
	if (c == NULL && m->n_cache < RD_NODE_MAX_MEMBERS) {
		c = &m->cache[m->n_cache++];
		c->id = id;
		c->valid = false;
	}
	if (c != NULL && c->valid && c->at_applied == applied) {
		*incarnation = c->incarnation;
		return 0;
	}
	rv = read_record(n, id, &r);
	if (rv != 0 && rv != RD_ENOTFOUND)
		return rv;
	*incarnation = rv == 0 ? r.incarnation : 0;
	if (c != NULL) {
		c->valid = true;
		c->at_applied = applied;
		c->incarnation = *incarnation;
	}
	return 0;
}

bool rd_membership_accept(struct rd_node *n, uint64_t peer, uint64_t incarnation,
                          const uint8_t *cluster, size_t cluster_len)
{
	struct rd_membership *m = &n->members;
	const char *own = rd_storage_cluster_id(n->st);
	uint64_t want;

	/* This node's own state is forgotten (its id is registered with
	 * another incarnation): it steps nothing, so it grants no vote and
	 * acknowledges no entry with that state. */
	if (m->foreign)
		return false;

	if (cluster_len > 0 &&
	    (strlen(own) != cluster_len || memcmp(own, cluster, cluster_len) != 0)) {
		if (m->refused_cluster++ == 0)
			rd_log_warn("raft batch from another cluster refused peer=%llu "
			            "cluster=%.*s own=%s",
			            (unsigned long long)peer, (int)cluster_len,
			            (const char *)cluster, own);
		return false;
	}
	/* A read error refuses: the batch is retransmitted later. */
	if (rd_membership_registered(n, peer, &want) != 0)
		return false;
	if (want == 0 || want == incarnation)
		return true;
	if (m->refused_incarnation++ % 1000 == 0)
		rd_log_warn("raft batch from an unregistered incarnation refused "
		            "peer=%llu incarnation=%016" PRIx64 " registered=%016" PRIx64
		            " (its data directory was replaced: it forgot its votes)",
		            (unsigned long long)peer, incarnation, want);
	return false;
}

static void on_registered(void *ud, uint64_t request_id, const struct rd_result *res)
{
	struct rd_node *n = ud;

	(void)request_id;
	n->members.in_flight = false;
	if (res->code == RAFTD__ERROR_CODE__OK)
		rd_log_notice("incarnation registered node=%llu incarnation=%016" PRIx64,
		              (unsigned long long)n->cfg.node_id,
		              rd_storage_incarnation(n->st));
	else if (res->code != RAFTD__ERROR_CODE__CAS_FAILED)
		rd_log_info("incarnation registration not applied (retried): %s",
		            res->message != NULL ? res->message : "");
	/* CAS_FAILED: another registration holds the key; the next tick reads
	 * it and says so. */
}

static void say_foreign(struct rd_node *n, uint64_t have, const char *who)
{
	struct rd_membership *m = &n->members;

	m->foreign = true;
	if (m->foreign_logged)
		return;
	m->foreign_logged = true;
	/* It may have looked ready for a moment (a leader's heartbeat before
	 * the answer): it is not a member that can serve. */
	n->ready = false;
	sd_notify(0, "STATUS=data directory lost: not a member");
	rd_log_crit("the cluster registers node %llu with incarnation %016" PRIx64
	            ", not this data directory's %016" PRIx64 " (%s): this node's "
	            "data was lost, so it takes no part in any group and its peers "
	            "refuse its Raft traffic; remove the node and add it again as a "
	            "new member",
	            (unsigned long long)n->cfg.node_id, have,
	            rd_storage_incarnation(n->st), who);
}

static void note_replacement(struct rd_node *n, uint64_t peer, uint64_t incarnation);

void rd_membership_serve_probe(struct rd_node *n, uint64_t peer,
                               const Raftd__PeerRequest *req,
                               struct rd_transport_responder *r)
{
	uint64_t incarnation = req->member_probe->incarnation;
	Raftd__PeerResponse resp = RAFTD__PEER_RESPONSE__INIT;
	Raftd__MemberProbeResponse pr = RAFTD__MEMBER_PROBE_RESPONSE__INIT;
	struct rd_member_record rec;
	uint64_t have = 0;
	int rv;

	if (rd_membership_registered(n, peer, &have) != 0 ||
	    ((rv = read_record(n, peer, &rec)) != 0 && rv != RD_ENOTFOUND)) {
		resp.error = RAFTD__ERROR_CODE__INTERNAL;
		resp.error_message = (char *)"member table unreadable";
	} else {
		pr.registered = have;
		pr.state = rv == 0 ? rec.state : 0;
		/* Only a directory that founded nothing can be a new replica:
		 * one that founded alone holds founding state it forgot
		 * nothing of, but under an identity the cluster gave another
		 * directory; it stays refused (say_foreign). */
		if (rv == 0 && have != 0 && incarnation != 0 && incarnation != have &&
		    req->member_probe->joined && rec.state != RD_MEMBER_REMOVED)
			note_replacement(n, peer, incarnation);
		pr.cluster = (char *)rd_storage_cluster_id(n->st);
		resp.body_case = RAFTD__PEER_RESPONSE__BODY_MEMBER_PROBE;
		resp.member_probe = &pr;
	}
	rd_transport_respond(r, &resp);
}

#define RD_ASK_PROBE_MS 100

static void on_probe(void *arg, int err, const Raftd__PeerResponse *resp,
                     const char *errmsg)
{
	struct rd_member_probe_ctx *ctx = arg;
	struct rd_node *n = ctx->n;
	uint64_t have;

	(void)errmsg;
	if (err != 0 || resp == NULL ||
	    resp->body_case != RAFTD__PEER_RESPONSE__BODY_MEMBER_PROBE ||
	    strcmp(resp->member_probe->cluster, rd_storage_cluster_id(n->st)) != 0)
		return;
	have = resp->member_probe->registered;
	/* Asking before founding (no Raft state at all): the cluster knows
	 * another incarnation of this id, so this directory joins as a new
	 * replica (rd_membership_ask_tick opens the groups for it). */
	if (n->members.asking && have != 0 && have != rd_storage_incarnation(n->st) &&
	    resp->member_probe->state != RD_MEMBER_REMOVED) {
		if (!n->members.rejoin)
			n->members.rejoin_have = have;
		n->members.rejoin = true;
		return;
	}
	/* A new replica waits for the group-0 leader to register it. */
	if (n->members.joined && have != rd_storage_incarnation(n->st))
		return;
	if (resp->member_probe->state == RD_MEMBER_REMOVED &&
	    (have == 0 || have == rd_storage_incarnation(n->st))) {
		if (!n->members.asking)
			say_removed(n, "as a peer's member table says");
		return;
	}
	if (have != 0 && have != rd_storage_incarnation(n->st))
		say_foreign(n, have, "as a peer reports");
	else if (have == 0)
		n->members.clear[ctx->idx] = true;
}

/* While this node's own table does not register it, ask every peer once a
 * second which incarnation theirs does: a node with a wiped data directory
 * has an empty table, but its peers know. */
static void probe_peers(struct rd_node *n)
{
	struct rd_transport *t = rd_peers_transport(n);
	Raftd__PeerRequest req = RAFTD__PEER_REQUEST__INIT;
	Raftd__MemberProbe mp = RAFTD__MEMBER_PROBE__INIT;
	char msg[RD_ERRMSG_SIZE];
	uint64_t now = rd_clock_now_ns();
	/* Before founding, every RD_ASK_PROBE_MS: the founders of a new
	 * cluster then open their groups within about that of each other. */
	uint64_t every = n->members.asking ? RD_ASK_PROBE_MS * 1000000ull : 1000000000ull;

	if (t == NULL || now - n->members.last_probe_ns < every)
		return;
	n->members.last_probe_ns = now;
	mp.incarnation = rd_storage_incarnation(n->st);
	mp.joined = n->members.joined;
	req.body_case = RAFTD__PEER_REQUEST__BODY_MEMBER_PROBE;
	req.member_probe = &mp;
	for (unsigned i = 0; i < n->topo.n_members; i++) {
		struct rd_member_probe_ctx *ctx = &n->members.probe_ctx[i];
		if (n->topo.members[i].id == n->cfg.node_id)
			continue;
		ctx->n = n;
		ctx->idx = i;
		rd_transport_call(t, n->topo.members[i].id, &req, 1000, on_probe, ctx,
		                  msg);
	}
}

/* The bound on asking before founding: [transport] idle_timeout_ms plus
 * ten election timeouts (33 s with the defaults). A peer still holds its
 * connection to this node's previous process until the idle timeout and
 * prefers it to this process's dials, so a probe of a node restarted right
 * after a wipe may only get through after it; the election timeouts leave
 * room for one probe round after that. A peer that does not answer within
 * the bound is taken as one that knows nothing. */
static uint64_t ask_bound_ms(const struct rd_node *n)
{
	return (uint64_t)n->cfg.idle_timeout_ms +
	       10ull * n->cfg.election_ticks * n->cfg.tick_ms;
}

bool rd_membership_ask_first(struct rd_node *n)
{
	struct rd_storage_group_info info;
	char msg[RD_ERRMSG_SIZE];
	uint8_t *j = NULL;
	size_t jl = 0;

	if (rd_storage_catalog_get(n->st, "joined", &j, &jl, msg) == 0)
		n->members.joined = true;
	free(j);

	if (n->topo.n_members < 2 ||
	    rd_storage_group_info(n->st, RD_STORAGE_META_GROUP, &info) != RD_ENOTFOUND)
		return false;
	n->members.asking = true;
	n->members.ask_deadline_ns = rd_clock_now_ns() + ask_bound_ms(n) * 1000000ull;
	rd_log_notice("no founding state: asking %u peers whether the cluster "
	              "registers node %llu before founding (up to %llu ms)",
	              n->topo.n_members - 1, (unsigned long long)n->cfg.node_id,
	              (unsigned long long)ask_bound_ms(n));
	return true;
}

/* This data directory lost its data and the cluster registers another
 * incarnation of its id: it takes part again only as a new replica
 * (lib/README.md, "Replacing a wiped node"). It marks itself joined, for
 * good, before any Raft state exists (so it never steps a message for a
 * founding replica, rd_membership_addressed), opens its groups empty (no
 * founding configuration: the leaders' logs or snapshots give them one),
 * and keeps probing so that the group-0 leader replaces the old replica. */
static void rejoin(struct rd_node *n)
{
	struct rd_membership *m = &n->members;
	char msg[RD_ERRMSG_SIZE];
	int rv;

	m->asking = false;
	m->rejoin = false;
	rv = rd_storage_catalog_put(n->st, "joined", (const uint8_t *)"1", 1, msg);
	if (rv == 0) {
		m->joined = true;
		rd_log_notice("data directory lost: rejoining as a new replica of node "
		              "%llu (incarnation %016" PRIx64 "; the cluster registers "
		              "%016" PRIx64
		              "): the group-0 leader removes the old replica "
		              "from every group and adds this one as a learner, promoted "
		              "once caught up",
		              (unsigned long long)n->cfg.node_id,
		              rd_storage_incarnation(n->st), m->rejoin_have);
		rv = rd_node_open_groups(n, msg);
	}
	if (rv == 0)
		rv = rd_subs_scan(n, msg);
	if (rv != 0) {
		rd_log_crit("rejoining failed: %s", msg);
		n->exit_code = 1;
		rd_node_shutdown(n);
	}
}

/* Founding state for a node whose data directory has no group 0 (Raft
 * thesis §3.8: a server that forgot its vote must not vote again): the
 * groups, which would be created with this node as a founding voter, open
 * only once every peer answered that its member table registers no
 * incarnation for this node's id, or once the bound passed without a peer
 * saying otherwise. A peer that names another incarnation (a running
 * cluster that registered this node's old data directory) makes this node
 * open nothing, ever: it holds no hard state, so it can grant no vote and
 * acknowledge no entry in any group, and it is never ready. */
void rd_membership_ask_tick(struct rd_node *n)
{
	struct rd_membership *m = &n->members;
	char msg[RD_ERRMSG_SIZE];
	unsigned pending = 0;
	uint64_t now = rd_clock_now_ns();
	int rv;

	if (m->foreign || n->stopping)
		return;
	if (m->rejoin) {
		rejoin(n);
		return;
	}
	for (unsigned i = 0; i < n->topo.n_members; i++)
		if (n->topo.members[i].id != n->cfg.node_id && !m->clear[i])
			pending++;
	if (pending > 0 && now < m->ask_deadline_ns) {
		probe_peers(n);
		return;
	}
	m->asking = false;
	/* node.c holds the bootstrap campaigns until the peers, asking at
	 * the same pace, have likely opened their groups too. */
	m->founded_ns = now + 2ull * RD_ASK_PROBE_MS * 1000000ull;
	if (pending == 0)
		rd_log_notice("founding: every peer answered that no incarnation "
		              "holds node %llu",
		              (unsigned long long)n->cfg.node_id);
	else
		rd_log_notice("founding: %u of %u peers did not answer within %llu ms; "
		              "none said the cluster registers node %llu",
		              pending, n->topo.n_members - 1,
		              (unsigned long long)ask_bound_ms(n),
		              (unsigned long long)n->cfg.node_id);
	rv = rd_node_open_groups(n, msg);
	if (rv == 0)
		rv = rd_subs_scan(n, msg);
	if (rv != 0) {
		rd_log_crit("founding failed: %s", msg);
		n->exit_code = 1;
		rd_node_shutdown(n);
	}
}

static const char *own_addr(const struct rd_node *n)
{
	for (unsigned i = 0; i < n->topo.n_members; i++)
		if (n->topo.members[i].id == n->cfg.node_id)
			return n->topo.members[i].addr.text;
	return n->cfg.listen.text;
}

/* A node removed from group 0 may never see its removal commit: the
 * leader stops replicating to it once the change is in its log (thesis
 * §4.2.2). Its own table says so when it applied it; otherwise, while its
 * group 0 hears no leader, it asks its peers (the probe answers carry its
 * member state). */
static void check_removed(struct rd_node *n, struct rd_group *g0)
{
	struct rd_member_record own;
	uint64_t mine = rd_storage_incarnation(n->st);

	if (read_record(n, n->cfg.node_id, &own) == 0 && own.state == RD_MEMBER_REMOVED &&
	    (own.incarnation == 0 || own.incarnation == mine)) {
		say_removed(n, "its member table says so");
		return;
	}
	if (g0 != NULL && n->members.registered && rd_raft_leader(g0->raft) == 0)
		probe_peers(n);
}

void rd_membership_tick(struct rd_node *n)
{
	struct rd_membership *m = &n->members;
	struct rd_group *g0 = rd_node_group(n, RD_STORAGE_META_GROUP);
	uint64_t mine = rd_storage_incarnation(n->st), have;
	uint8_t key[RD_MEMBERS_KEY_MAX], val[RD_MEMBERS_VALUE_MAX],
	    old[RD_MEMBERS_VALUE_MAX];
	struct rd_member_record r = {.state = RD_MEMBER_VOTER, .incarnation = mine};
	struct rd_kv_cmd cmd = {.op = RD_KV_CAS};
	struct rd_waiter *w;
	size_t size, len;
	int rv;

	if (n->stopping)
		return;
	if (m->removed) {
		rd_node_shutdown(n);
		return;
	}
	if (m->foreign || m->asking)
		return;
	check_removed(n, g0);
	reconcile(n);
	if (m->registered || m->removed)
		return;
	if (rd_membership_registered(n, n->cfg.node_id, &have) != 0)
		return;
	if (have == mine) {
		m->registered = true;
		if (m->joined)
			rd_log_notice(
			    "rejoined: the cluster registers this data directory "
			    "as node %llu",
			    (unsigned long long)n->cfg.node_id);
		return;
	}
	if (m->joined) {
		/* A new replica: the group-0 leader registers it (probes). */
		probe_peers(n);
		return;
	}
	if (have != 0) {
		say_foreign(n, have, "as its own member table says");
		return;
	}
	probe_peers(n);
	if (m->in_flight || g0 == NULL || rd_raft_leader(g0->raft) == 0)
		return;
	cmd.key = key;
	cmd.key_len =
	    (uint32_t)rd_members_key(rd_storage_cluster_id(n->st), n->cfg.node_id, key);
	rv = read_record(n, n->cfg.node_id, &r);
	if (rv == 0) {
		/* Added by `raftctl members add` (incarnation 0): the record
		 * becomes this incarnation's, if it is still the one read. */
		cmd.has_expected = true;
		cmd.expected = old;
		cmd.expected_len = (uint32_t)rd_members_encode(&r, old);
		r.incarnation = mine;
	} else if (rv == RD_ENOTFOUND) {
		r = (struct rd_member_record){.state = RD_MEMBER_VOTER,
		                              .incarnation = mine};
		snprintf(r.addr, sizeof r.addr, "%s", own_addr(n));
		cmd.has_expected = false; /* only if absent: the first one wins */
	} else {
		return;
	}
	cmd.value = val;
	cmd.value_len = (uint32_t)rd_members_encode(&r, val);
	size = rd_kv_encoded_size(&cmd);
	w = rd_waiter_new(RD_WAIT_FORWARD, on_registered, n, 0,
	                  rd_clock_now_ns() +
	                      (uint64_t)n->cfg.request_timeout_ms * 1000000ull);
	if (w == NULL || (w->data = malloc(size)) == NULL ||
	    rd_kv_encode(&cmd, w->data, size, &len) != 0) {
		if (w != NULL)
			free(w->data);
		free(w);
		return;
	}
	w->len = len;
	w->group = RD_STORAGE_META_GROUP;
	w->op = RD_OP_WRITE;
	m->in_flight = true;
	rd_node_submit(n, w);
}

/* ---- membership changes: raftctl members add / remove / promote ---------- */

/*
 * A request is checked and proposed only by the node leading group 0 (the
 * conf change needs its log, thesis §4.1); any other node hands it over
 * (PeerRequest members_change) and relays the answer. One change at a time:
 * the core refuses a second one while the first is uncommitted (RD_EBUSY),
 * and the request waits for its turn until its deadline. The member record
 * changes with the conf change entry (applier.c), so nothing is proposed
 * but that one entry.
 *
 * Answers: OK once the entry applied on this node with the term it was
 * proposed in; INVALID (nothing changed) when rd_members_check or the
 * address refuses it; TIMEOUT when the deadline passed after proposing
 * (outcome unknown: `raftctl members` shows it); NOT_LEADER when another
 * leader's entry replaced it (not applied).
 *
 * A leader asked to remove itself first hands leadership to the voter with
 * the longest log that is reachable (thesis §3.10), then hands the request
 * to it like any follower would: the removal commits under a leader that
 * stays in the group. (The core would also step down after committing its
 * own removal, §4.2.2, but leaderless until an election timeout.)
 */

enum { OP_WAIT = 0, OP_FORWARDED = 1, OP_PROPOSED = 2 };

/* A peer's request is handed on at most this many times (a leader that
 * changed while it travelled). */
#define OP_MAX_HOPS 3

static uint8_t op_kind(const Raftd__ClientRequest *req)
{
	switch (req->op_case) {
	case RAFTD__CLIENT_REQUEST__OP_MEMBERS_ADD:
		return RD_MEMBERS_ADD;
	case RAFTD__CLIENT_REQUEST__OP_MEMBERS_REMOVE:
		return RD_MEMBERS_REMOVE;
	default:
		return RD_MEMBERS_PROMOTE;
	}
}

static const char *kind_name(uint8_t kind)
{
	return kind == RD_MEMBERS_ADD      ? "add"
	       : kind == RD_MEMBERS_REMOVE ? "remove"
	                                   : "promote";
}

static struct rd_member_op *op_new(struct rd_node *n)
{
	for (unsigned i = 0; i < RD_MEMBER_OPS; i++)
		if (!n->members.ops[i].used) {
			struct rd_member_op *op = &n->members.ops[i];
			memset(op, 0, sizeof *op);
			op->used = true;
			op->n = n;
			return op;
		}
	return NULL;
}

static void op_finish(struct rd_member_op *op, int code, const char *message,
                      uint64_t index)
{
	if (code == RAFTD__ERROR_CODE__OK)
		rd_log_notice(
		    "membership change done: %s node=%llu group=%llu index=%llu",
		    kind_name(op->kind), (unsigned long long)op->node,
		    (unsigned long long)op->group, (unsigned long long)index);
	else if (!op->quiet)
		rd_log_info("membership change %s node=%llu group=%llu not done: %s",
		            kind_name(op->kind), (unsigned long long)op->node,
		            (unsigned long long)op->group,
		            message != NULL ? message : "");
	if (op->responder != NULL) {
		Raftd__PeerResponse resp = RAFTD__PEER_RESPONSE__INIT;
		Raftd__MembersChangeResponse mc = RAFTD__MEMBERS_CHANGE_RESPONSE__INIT;
		mc.code = (Raftd__ErrorCode)code;
		mc.message = (char *)(message != NULL ? message : "");
		mc.index = index;
		resp.body_case = RAFTD__PEER_RESPONSE__BODY_MEMBERS_CHANGE;
		resp.members_change = &mc;
		rd_transport_respond(op->responder, &resp);
	} else if (op->reply != NULL) {
		struct rd_result r = {
		    .code = code, .message = message, .group = op->group, .index = index};
		op->reply(op->reply_ud, op->request_id, &r);
	}
	op->used = false;
}

static bool reachable(const struct rd_node *n, uint64_t id)
{
	uint64_t rtt;
	return rd_peers_connected(n, id, &rtt);
}

struct view_ctx {
	struct rd_node *n;
	struct rd_group *g;
};

static uint64_t match_of(void *arg, uint64_t id)
{
	struct view_ctx *c = arg;
	return rd_raft_match(c->g->raft, id);
}

static bool live_of(void *arg, uint64_t id)
{
	struct view_ctx *c = arg;
	return reachable(c->n, id);
}

/* Removing `node` from group 0 (not from the data groups: a replaced
 * replica is removed from each by its own change, and this version moves
 * no replica of a node removed by an operator) must leave every data group
 * it holds a replica of with a reachable majority of its replicas. */
static int check_data_groups(struct rd_node *n, uint64_t node, char *msg)
{
	const struct rd_routing *rt = &n->topo.routing;

	for (uint32_t g = 1; g <= rt->n_groups; g++) {
		const struct rd_group_placement *p = rd_routing_placement(rt, g);
		uint32_t live = 0;
		if (p == NULL || !rd_routing_has_replica(rt, g, node))
			continue;
		for (uint32_t i = 0; i < p->n_replicas; i++)
			if (p->replicas[i] != node && (p->replicas[i] == n->cfg.node_id ||
			                               reachable(n, p->replicas[i])))
				live++;
		if (live < p->n_replicas / 2 + 1)
			return rd_errorf(
			    msg, RD_EINVAL,
			    "removing node %llu would leave data group %u with "
			    "%u reachable replicas of %u, no quorum",
			    (unsigned long long)node, g, live, p->n_replicas);
	}
	return 0;
}

/* Leader: hand leadership of g to the reachable voter with the longest
 * log (thesis §3.10), before removing this node from it. */
static int hand_over(struct rd_node *n, struct rd_group *g, char *msg)
{
	const struct rd_conf_state *cs = rd_raft_conf(g->raft);
	uint64_t best = 0, best_match = 0;

	if (rd_raft_transferee(g->raft) != 0)
		return 0;
	for (uint32_t i = 0; i < cs->n_voters; i++) {
		uint64_t id = cs->voters[i], m = rd_raft_match(g->raft, id);
		if (id == n->cfg.node_id || !reachable(n, id) ||
		    rd_health_peer_slow(n, id))
			continue;
		if (best == 0 || m > best_match)
			best = id, best_match = m;
	}
	if (best == 0)
		return rd_errorf(msg, RD_EINVAL,
		                 "no other reachable voter of group %llu to hand its "
		                 "leadership to before removing node %llu",
		                 (unsigned long long)g->id,
		                 (unsigned long long)n->cfg.node_id);
	if (rd_raft_transfer_leader(g->raft, best) == 0) {
		rd_log_notice("group %llu leadership handed to node %llu before removing "
		              "this node",
		              (unsigned long long)g->id, (unsigned long long)best);
		rd_node_touch(n, g);
		rd_node_wake(n);
	}
	return 0;
}

static void on_forwarded(void *arg, int err, const Raftd__PeerResponse *resp,
                         const char *errmsg)
{
	struct rd_member_op *op = arg;
	char msg[RD_ERRMSG_SIZE];

	if (!op->used || op->phase != OP_FORWARDED)
		return;
	if (err != 0 || resp == NULL || resp->error != RAFTD__ERROR_CODE__OK ||
	    resp->body_case != RAFTD__PEER_RESPONSE__BODY_MEMBERS_CHANGE) {
		snprintf(msg, sizeof msg,
		         "the group's leader did not answer (%s): outcome unknown, see "
		         "raftctl members",
		         err != 0 ? (errmsg != NULL ? errmsg : rd_strerror(err))
		         : resp != NULL && resp->error_message != NULL
		             ? resp->error_message
		             : "bad answer");
		op_finish(op, RAFTD__ERROR_CODE__UNAVAILABLE, msg, 0);
		return;
	}
	/* It no longer leads (and proposed nothing): try the new leader. */
	if (resp->members_change->code == RAFTD__ERROR_CODE__NOT_LEADER &&
	    resp->members_change->index == 0) {
		op->phase = OP_WAIT;
		return;
	}
	op_finish(op, resp->members_change->code, resp->members_change->message,
	          resp->members_change->index);
}

static void op_forward(struct rd_node *n, struct rd_member_op *op, uint64_t leader,
                       uint64_t now)
{
	Raftd__PeerRequest req = RAFTD__PEER_REQUEST__INIT;
	Raftd__MembersChangeRequest mc = RAFTD__MEMBERS_CHANGE_REQUEST__INIT;
	struct rd_transport *t = rd_peers_transport(n);
	char msg[RD_ERRMSG_SIZE];
	unsigned ms = (unsigned)((op->deadline_ns - now) / 1000000ull);

	if (t == NULL)
		return;
	mc.kind = op->kind;
	mc.node_id = op->node;
	mc.address = op->addr;
	mc.learner = op->learner;
	mc.group = op->group;
	mc.incarnation = op->incarnation;
	mc.joining = op->joining;
	mc.hops = op->hops + 1;
	req.body_case = RAFTD__PEER_REQUEST__BODY_MEMBERS_CHANGE;
	req.members_change = &mc;
	op->phase = OP_FORWARDED;
	if (rd_transport_call(t, leader, &req, ms > 0 ? ms : 1, on_forwarded, op, msg) !=
	    0)
		op->phase = OP_WAIT; /* retried at the next tick */
}

/* The leader's part: check, then propose the conf change. */
static void op_propose(struct rd_node *n, struct rd_member_op *op, struct rd_group *g)
{
	struct view_ctx vc = {n, g};
	struct rd_members_view v = {
	    .conf = rd_raft_conf(g->raft),
	    .max_voters = g->id == RD_STORAGE_META_GROUP ? RD_MEMBERS_MAX_VOTERS
	                                                 : RD_RAFT_MAX_MEMBERS,
	    .self = n->cfg.node_id,
	    .last_index = rd_raft_last_index(g->raft),
	    .promote_max_lag = n->cfg.promote_max_lag,
	    .match = match_of,
	    .live = live_of,
	    .arg = &vc,
	};
	uint8_t ctx[RD_MEMBERS_CC_CTX_MAX], cc;
	struct rd_member_record cur = {0};
	char msg[RD_ERRMSG_SIZE];
	struct rd_addr addr;
	uint64_t inc;
	size_t len;
	int rv;

	if (op->kind == RD_MEMBERS_ADD && g->id == RD_STORAGE_META_GROUP &&
	    rd_addr_parse(&addr, op->addr, msg) != 0) {
		op_finish(op, RAFTD__ERROR_CODE__INVALID, msg, 0);
		return;
	}
	rv = rd_members_check(op->kind, op->node, op->learner, &v, msg);
	if (rv == 0 && op->kind == RD_MEMBERS_REMOVE && g->id == RD_STORAGE_META_GROUP &&
	    !op->replace)
		rv = check_data_groups(n, op->node, msg);
	if (rv != 0) {
		op_finish(op, rd_err_to_wire(rv), msg, 0);
		return;
	}
	if (op->kind == RD_MEMBERS_REMOVE && op->node == n->cfg.node_id) {
		if (hand_over(n, g, msg) != 0)
			op_finish(op, RAFTD__ERROR_CODE__INVALID, msg, 0);
		return; /* proposed by the next leader */
	}
	/* Promote and remove keep the registration the table holds. */
	if (read_record(n, op->node, &cur) == 0 && op->addr[0] == 0)
		snprintf(op->addr, sizeof op->addr, "%s", cur.addr);
	/* Removal names the replica it removes (the one the configuration
	 * has), additions the one they add. */
	inc = op->incarnation != 0 ? op->incarnation : cur.incarnation;
	if (op->kind == RD_MEMBERS_REMOVE && g->id != RD_STORAGE_META_GROUP)
		inc = rd_membership_replica_inc(g, op->node);
	else if (op->kind == RD_MEMBERS_REMOVE && op->replace)
		inc = rd_membership_replica_inc(g, op->node) != 0
		          ? rd_membership_replica_inc(g, op->node)
		          : cur.incarnation;
	cc = op->kind == RD_MEMBERS_ADD
	         ? (op->learner ? RD_CC_ADD_LEARNER : RD_CC_ADD_VOTER)
	     : op->kind == RD_MEMBERS_REMOVE ? RD_CC_REMOVE
	                                     : RD_CC_PROMOTE_LEARNER;
	len = rd_members_cc_ctx_encode(inc, op->addr, op->joining, ctx);
	rv = rd_raft_propose_conf_change(g->raft, cc, op->node, ctx, (uint32_t)len,
	                                 &op->index);
	if (rv == RD_EBUSY)
		return; /* another change is uncommitted, or a transfer runs */
	if (rv != 0) {
		op_finish(op, rd_err_to_wire(rv),
		          rv == RD_ENOTLEADER ? "no longer the group's leader"
		                              : "the change does not apply to the group",
		          0);
		return;
	}
	op->term = rd_raft_term(g->raft);
	op->phase = OP_PROPOSED;
	rd_log_notice(
	    "membership change proposed: %s node=%llu group=%llu "
	    "incarnation=%016" PRIx64 "%s%s index=%llu",
	    kind_name(op->kind), (unsigned long long)op->node, (unsigned long long)g->id,
	    inc, op->kind == RD_MEMBERS_ADD ? " addr=" : "",
	    op->kind == RD_MEMBERS_ADD ? op->addr : "", (unsigned long long)op->index);
	rd_node_touch(n, g);
	rd_node_wake(n);
}

static void op_step(struct rd_node *n, struct rd_member_op *op, uint64_t now)
{
	struct rd_group *g = rd_node_group(n, op->group);
	uint64_t leader;

	if (op->phase == OP_FORWARDED)
		return; /* on_forwarded answers, by the call's deadline */
	if (op->phase == OP_PROPOSED && g != NULL &&
	    rd_raft_applied_index(g->raft) >= op->index) {
		if (rd_raft_term_at(g->raft, op->index) == op->term ||
		    rd_raft_term_at(g->raft, op->index) == 0)
			op_finish(op, RAFTD__ERROR_CODE__OK, NULL, op->index);
		else
			op_finish(op, RAFTD__ERROR_CODE__NOT_LEADER,
			          "replaced by a new leader's entry: not applied", 0);
		return;
	}
	if (now >= op->deadline_ns) {
		op_finish(op, RAFTD__ERROR_CODE__TIMEOUT,
		          op->phase == OP_PROPOSED
		              ? "not applied within the deadline: outcome unknown, see "
		                "raftctl members"
		              : "the group had no leader that took the change within the "
		                "deadline: not applied",
		          0);
		return;
	}
	if (op->phase == OP_PROPOSED || n->in_pass)
		return;
	if (g == NULL) {
		op_finish(op, RAFTD__ERROR_CODE__NOT_FOUND,
		          "group not hosted on this node", 0);
		return;
	}
	leader = rd_raft_leader(g->raft);
	if (leader == 0)
		return;
	if (leader == n->cfg.node_id)
		op_propose(n, op, g);
	else if (op->responder != NULL && op->hops >= OP_MAX_HOPS)
		op_finish(op, RAFTD__ERROR_CODE__NOT_LEADER,
		          "this node does not lead the group", 0);
	else
		op_forward(n, op, leader, now);
}

void rd_membership_ops_tick(struct rd_node *n)
{
	uint64_t now = rd_clock_now_ns();
	for (unsigned i = 0; i < RD_MEMBER_OPS; i++)
		if (n->members.ops[i].used)
			op_step(n, &n->members.ops[i], now);
}

static struct rd_member_op *op_start(struct rd_node *n, uint8_t kind, uint64_t node,
                                     const char *addr, bool learner, uint32_t deadline_ms,
                                     char *msg)
{
	struct rd_member_op *op;
	uint32_t ms = deadline_ms ? deadline_ms : n->cfg.request_timeout_ms;

	if (n->stopping) {
		rd_errorf(msg, RD_ESHUTDOWN, "node is shutting down");
		return NULL;
	}
	if (kind < RD_MEMBERS_ADD || kind > RD_MEMBERS_PROMOTE) {
		rd_errorf(msg, RD_EINVAL, "unknown membership change %u", kind);
		return NULL;
	}
	if (addr != NULL && strlen(addr) > 255) {
		rd_errorf(msg, RD_EINVAL, "address longer than 255 bytes");
		return NULL;
	}
	op = op_new(n);
	if (op == NULL) {
		rd_errorf(msg, RD_EBUSY, "%u membership changes already in progress",
		          RD_MEMBER_OPS);
		return NULL;
	}
	op->kind = kind;
	op->node = node;
	op->learner = learner;
	snprintf(op->addr, sizeof op->addr, "%s", addr != NULL ? addr : "");
	op->deadline_ns = rd_clock_now_ns() + (uint64_t)ms * 1000000ull;
	return op;
}

void rd_membership_request(struct rd_node *n, rd_reply_fn reply, void *ud,
                           const Raftd__ClientRequest *req)
{
	uint8_t kind = op_kind(req);
	uint64_t node = kind == RD_MEMBERS_ADD      ? req->members_add->node_id
	                : kind == RD_MEMBERS_REMOVE ? req->members_remove->node_id
	                                            : req->members_promote->node_id;
	const char *addr = kind == RD_MEMBERS_ADD ? req->members_add->address : NULL;
	char msg[RD_ERRMSG_SIZE];
	struct rd_member_op *op;

	op = op_start(n, kind, node, addr,
	              kind == RD_MEMBERS_ADD && req->members_add->learner,
	              req->deadline_ms, msg);
	if (op == NULL) {
		struct rd_result r = {.code = RAFTD__ERROR_CODE__BUSY, .message = msg};
		if (n->stopping)
			r.code = RAFTD__ERROR_CODE__SHUTTING_DOWN;
		else if (strstr(msg, "in progress") == NULL)
			r.code = RAFTD__ERROR_CODE__INVALID;
		reply(ud, req->request_id, &r);
		return;
	}
	rd_log_notice("membership change requested: %s node=%llu", kind_name(kind),
	              (unsigned long long)node);
	op->reply = reply;
	op->reply_ud = ud;
	op->request_id = req->request_id;
	op_step(n, op, rd_clock_now_ns());
}

void rd_membership_serve_change(struct rd_node *n, uint64_t peer,
                                const Raftd__PeerRequest *req,
                                struct rd_transport_responder *r)
{
	const Raftd__MembersChangeRequest *mc = req->members_change;
	char msg[RD_ERRMSG_SIZE];
	struct rd_member_op *op;

	(void)peer;
	op = op_start(n, (uint8_t)mc->kind, mc->node_id, mc->address, mc->learner,
	              req->deadline_ms, msg);
	if (op == NULL) {
		Raftd__PeerResponse resp = RAFTD__PEER_RESPONSE__INIT;
		Raftd__MembersChangeResponse res = RAFTD__MEMBERS_CHANGE_RESPONSE__INIT;
		res.code = n->stopping ? RAFTD__ERROR_CODE__SHUTTING_DOWN
		           : strstr(msg, "in progress") != NULL
		               ? RAFTD__ERROR_CODE__BUSY
		               : RAFTD__ERROR_CODE__INVALID;
		res.message = msg;
		resp.body_case = RAFTD__PEER_RESPONSE__BODY_MEMBERS_CHANGE;
		resp.members_change = &res;
		rd_transport_respond(r, &resp);
		return;
	}
	op->group = mc->group;
	op->incarnation = mc->incarnation;
	op->joining = mc->joining;
	op->replace = mc->incarnation != 0 || mc->joining;
	op->hops = mc->hops;
	op->responder = r;
	op_step(n, op, rd_clock_now_ns());
}

/* ---- replacing a replica (the group-0 leader) ---------------------------- */

/*
 * The flow (lib/README.md "Replacing a wiped node"): a node whose probes
 * carry another incarnation than the registered one lost its data
 * (note_replacement). The group-0 leader then, one change at a time per
 * group, each proposed by that group's leader (handed over like any
 * membership request):
 *   1. group 0: removes the old replica, then adds the new one as a
 *      joining learner with its incarnation: that entry is the new
 *      registration (member record: added, joining);
 *   2. every data group whose placement holds the node: removes the
 *      replica its configuration has (a founding one, or another
 *      incarnation), adds the registered incarnation's as a joining
 *      learner; it catches up from the leader's log or a snapshot;
 *   3. promotes each such learner once within promote_max_lag (refusals
 *      are retried), group 0's while it has fewer than 5 voters.
 * Nothing of it is kept but the groups' own state: a new group-0 leader
 * picks it up where the logs say it is (reconcile, every second), and the
 * wiped node probes until its registration applied.
 */

static void note_replacement(struct rd_node *n, uint64_t peer, uint64_t incarnation)
{
	struct rd_membership *m = &n->members;
	struct rd_group *g0 = rd_node_group(n, RD_STORAGE_META_GROUP);

	if (g0 == NULL || rd_raft_role(g0->raft) != RD_RAFT_LEADER)
		return;
	for (unsigned i = 0; i < m->n_replace; i++)
		if (m->replace[i].node == peer) {
			m->replace[i].incarnation = incarnation;
			return;
		}
	if (m->n_replace == sizeof m->replace / sizeof m->replace[0])
		return;
	m->replace[m->n_replace++] = (struct rd_replace){peer, incarnation};
	rd_log_notice("node %llu answers with incarnation %016" PRIx64 ", not the "
	              "registered one: replacing its replicas with new ones",
	              (unsigned long long)peer, incarnation);
}

static bool op_busy(const struct rd_node *n, uint64_t group, uint64_t node)
{
	for (unsigned i = 0; i < RD_MEMBER_OPS; i++)
		if (n->members.ops[i].used && n->members.ops[i].group == group &&
		    n->members.ops[i].node == node)
			return true;
	return false;
}

static void flow_op(struct rd_node *n, uint8_t kind, uint64_t group, uint64_t node,
                    uint64_t incarnation, const char *addr)
{
	char msg[RD_ERRMSG_SIZE];
	struct rd_member_op *op;

	if (op_busy(n, group, node))
		return;
	op = op_start(n, kind, node, addr, kind == RD_MEMBERS_ADD, 0, msg);
	if (op == NULL)
		return;
	op->group = group;
	op->incarnation = incarnation;
	op->joining = kind == RD_MEMBERS_ADD;
	op->replace = true;
	op->quiet = kind == RD_MEMBERS_PROMOTE;
	op_step(n, op, rd_clock_now_ns());
}

static int member_role_in(const struct rd_conf_state *cs, uint64_t id)
{
	for (uint32_t i = 0; i < cs->n_voters; i++)
		if (cs->voters[i] == id)
			return 2;
	for (uint32_t i = 0; i < cs->n_learners; i++)
		if (cs->learners[i] == id)
			return 1;
	return 0;
}

/* One data group g for member `id`, registered as rec (added). */
static void reconcile_group(struct rd_node *n, struct rd_group *g, uint64_t id,
                            const struct rd_member_record *rec)
{
	const struct rd_conf_state *cs = rd_raft_conf(g->raft);
	int role = member_role_in(cs, id);
	bool right = role != 0 && rd_membership_replica_inc(g, id) == rec->incarnation;

	if (role != 0 && !right)
		flow_op(n, RD_MEMBERS_REMOVE, g->id, id, 0, rec->addr);
	else if (role == 0)
		flow_op(n, RD_MEMBERS_ADD, g->id, id, rec->incarnation, rec->addr);
	else if (role == 1)
		flow_op(n, RD_MEMBERS_PROMOTE, g->id, id, 0, rec->addr);
}

static void reconcile(struct rd_node *n)
{
	struct rd_membership *m = &n->members;
	struct rd_group *g0 = rd_node_group(n, RD_STORAGE_META_GROUP);
	const struct rd_routing *rt = &n->topo.routing;
	struct rd_member_record rec;

	if (g0 == NULL || rd_raft_role(g0->raft) != RD_RAFT_LEADER)
		return;
	/* 1. group 0: old replica out, new one in (its registration). */
	for (unsigned i = 0; i < m->n_replace;) {
		struct rd_replace *r = &m->replace[i];
		if (read_record(n, r->node, &rec) != 0 ||
		    rec.incarnation == r->incarnation) {
			m->replace[i] = m->replace[--m->n_replace];
			continue;
		}
		if (member_role_in(rd_raft_conf(g0->raft), r->node) != 0)
			flow_op(n, RD_MEMBERS_REMOVE, 0, r->node, 0, rec.addr);
		else
			flow_op(n, RD_MEMBERS_ADD, 0, r->node, r->incarnation, rec.addr);
		i++;
	}
	/* 2, 3. every registered new replica, in every group it belongs to. */
	for (unsigned i = 0; i < n->topo.n_members; i++) {
		uint64_t id = n->topo.members[i].id;
		if (read_record(n, id, &rec) != 0 || !rec.added || rec.incarnation == 0 ||
		    rec.state == RD_MEMBER_REMOVED)
			continue;
		if (rec.state == RD_MEMBER_JOINING &&
		    member_role_in(rd_raft_conf(g0->raft), id) == 1 &&
		    rd_raft_conf(g0->raft)->n_voters < RD_MEMBERS_MAX_VOTERS)
			flow_op(n, RD_MEMBERS_PROMOTE, 0, id, 0, rec.addr);
		if (rec.state != RD_MEMBER_JOINING && rec.state != RD_MEMBER_VOTER)
			continue;
		for (uint32_t gi = 1; gi <= rt->n_groups; gi++) {
			struct rd_group *g = rd_node_group(n, gi);
			if (g != NULL && rd_routing_has_replica(rt, gi, id))
				reconcile_group(n, g, id, &rec);
		}
	}
}

void rd_membership_shutdown(struct rd_node *n)
{
	for (unsigned i = 0; i < RD_MEMBER_OPS; i++) {
		struct rd_member_op *op = &n->members.ops[i];
		if (!op->used || op->phase == OP_FORWARDED)
			continue;
		op_finish(op, RAFTD__ERROR_CODE__SHUTTING_DOWN,
		          op->phase == OP_PROPOSED ? "node shutting down: outcome unknown"
		                                   : "node shutting down: not applied",
		          0);
	}
}

/* ---- following group 0's conf changes ------------------------------------ */

static void add_member(struct rd_node *n, uint64_t id, const char *addr)
{
	struct rd_topology *t = &n->topo;
	struct rd_member *m = NULL;
	char msg[RD_ERRMSG_SIZE];

	for (unsigned i = 0; i < t->n_members; i++)
		if (t->members[i].id == id)
			m = &t->members[i];
	if (m != NULL && strcmp(m->addr.text, addr) == 0)
		return;
	if (m == NULL && t->n_members == RD_TOPOLOGY_MAX_MEMBERS) {
		rd_log_err("member %llu not added to the topology: %u members at most",
		           (unsigned long long)id, RD_TOPOLOGY_MAX_MEMBERS);
		return;
	}
	struct rd_member nm = {.id = id};
	if (rd_addr_parse(&nm.addr, addr, msg) != 0) {
		rd_log_err("member %llu: address refused: %s", (unsigned long long)id,
		           msg);
		return;
	}
	if (m == NULL)
		m = &t->members[t->n_members++];
	*m = nm;
	if (rd_peers_add(n, m, msg) != 0)
		rd_log_err("member %llu: transport peer not added: %s",
		           (unsigned long long)id, msg);
	else
		rd_log_info("member joined the topology node=%llu addr=%s",
		            (unsigned long long)id, addr);
}

static void say_removed(struct rd_node *n, const char *how)
{
	if (n->members.removed)
		return;
	n->members.removed = true;
	n->exit_code = 0;
	rd_log_notice("this node (%llu) was removed from the cluster (%s): stopping "
	              "every group and exiting 0",
	              (unsigned long long)n->cfg.node_id, how);
	sd_notify(0, "STATUS=removed from the cluster");
}

void rd_membership_applied(struct rd_node *n, struct rd_group *g0)
{
	const struct rd_raft_update *u = &g0->u;

	for (size_t i = 0; i < u->n_committed; i++) {
		const struct rd_entry *e = &u->committed[i];
		uint8_t type;
		uint64_t node, inc;
		char addr[256];
		bool joining;
		if (e->type != RD_ENTRY_CONF_CHANGE ||
		    rd_raft_cc_decode(e->data, e->len, &type, &node) != 0 ||
		    e->len == RD_RAFT_CC_HEADER ||
		    rd_members_cc_ctx_decode(e->data + RD_RAFT_CC_HEADER,
		                             e->len - RD_RAFT_CC_HEADER, &inc, addr,
		                             &joining) != 0)
			continue;
		if (type == RD_CC_REMOVE && node == n->cfg.node_id &&
		    (inc == 0 || inc == rd_storage_incarnation(n->st)))
			say_removed(n, "its removal applied");
		else if (type != RD_CC_REMOVE && addr[0] != 0)
			add_member(n, node, addr);
	}
}

#define LOAD_DONE (RD_ERR_COUNT + 1) /* not an RD_E* code */

struct load_ctx {
	struct rd_node *n;
	size_t prefix_len;
	uint8_t prefix[RD_MEMBERS_KEY_MAX];
};

static int load_one(void *arg, const uint8_t *key, size_t key_len, const uint8_t *val,
                    size_t val_len)
{
	struct load_ctx *c = arg;
	struct rd_member_record r;
	uint64_t id = 0;

	if (key_len < c->prefix_len || memcmp(key, c->prefix, c->prefix_len) != 0)
		/* Keys are in order: past the table, stop. */
		return memcmp(key, c->prefix,
		              key_len < c->prefix_len ? key_len : c->prefix_len) > 0
		           ? LOAD_DONE
		           : 0;
	if (key_len != c->prefix_len + 8 || rd_members_decode(val, val_len, &r) != 0)
		return 0;
	for (size_t i = c->prefix_len; i < key_len; i++)
		id = id << 8 | key[i];
	if (r.state != RD_MEMBER_REMOVED && r.addr[0] != 0 && id != c->n->cfg.node_id)
		add_member(c->n, id, r.addr);
	return 0;
}

void rd_membership_load(struct rd_node *n)
{
	struct load_ctx c = {.n = n};
	char msg[RD_ERRMSG_SIZE];

	if (rd_node_group(n, RD_STORAGE_META_GROUP) == NULL)
		return;
	/* The key of id 0 without its id: the cluster's prefix. */
	c.prefix_len = rd_members_key(rd_storage_cluster_id(n->st), 0, c.prefix) - 8;
	int rv = rd_storage_kv_scan(n->st, RD_STORAGE_META_GROUP, load_one, &c, msg);

	if (rv != 0 && rv != LOAD_DONE)
		rd_log_err("member table not read: %s", msg);
}

/* ---- replica identity ------------------------------------------------------ */

/*
 * Why messages are addressed to replicas (thesis §3.8, §4; the counter-
 * example in lib/README.md "Replacing a wiped node"): a node id names a
 * server only as long as its data directory lives. When node N's directory
 * is lost, a new incarnation N' may come back under the same id; a member
 * whose configuration of a group still lists the old replica (a lagging
 * follower, a stale leader or candidate, in any group) would count N''s
 * answers as N's: a vote N already gave in that term, an acknowledgement of
 * entries N' never had. So every message names the replica it is for, as
 * the sender's own configuration of the group has it: the incarnation the
 * conf-change entry that added `to` carried (RaftMessage.to_incarnation),
 * or 0 for a founding replica (the group's bootstrap entries name none).
 *
 * Rules at the receiver, per message:
 *   R1. addressed to an incarnation that is not this data directory's:
 *       dropped (it is for another replica of this node id);
 *   R2. addressed to a founding replica (0) while this directory joined as
 *       a new replica (catalog "joined"): dropped (it founded nothing);
 *   R3. sent by a node whose replica in the group's configuration, as this
 *       node knows it, has another incarnation than the batch carries:
 *       dropped (it is not the replica the configuration counts).
 * Plus, per batch (rd_membership_accept): a sender whose member table
 * registration is another incarnation is dropped whole.
 *
 * Safety: a message's effect on its receiver's core is that of Raft's
 * RPC to the replica it names, since only that replica (the one data
 * directory with that incarnation, whose hard state and log persist, §3.8)
 * steps it (R1, R2). Each replica is added to a group by its own conf
 * change, one server at a time (§4.1, §4.3): from the group's point of view
 * N and N' are two different servers, the old one removed before the new
 * one is added as a learner, so the configurations a stale sender may
 * hold count N's old votes and acknowledgements only, which N' never
 * sends. A sender learns an incarnation from the same log as the
 * configuration (the replica key is state of the group and ships with its
 * snapshots, cluster/members.h), so its address and its configuration
 * always agree. Answers count only for the replica that was asked (R3).
 */

static uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void replica_set(struct rd_group *g, uint64_t id, uint64_t inc)
{
	for (unsigned i = 0; i < g->n_replicas; i++)
		if (g->replicas[i].id == id) {
			g->replicas[i].incarnation = inc;
			return;
		}
	if (g->n_replicas < sizeof g->replicas / sizeof g->replicas[0])
		g->replicas[g->n_replicas++] = (struct rd_replica_inc){id, inc};
}

uint64_t rd_membership_replica_inc(const struct rd_group *g, uint64_t id)
{
	for (unsigned i = 0; i < g->n_replicas; i++)
		if (g->replicas[i].id == id)
			return g->replicas[i].incarnation;
	return 0;
}

void rd_membership_replicas_appended(struct rd_group *g, const struct rd_entry *e,
                                     size_t n_entries)
{
	for (size_t i = 0; i < n_entries; i++) {
		uint8_t type;
		uint64_t node, inc;
		char addr[256];
		bool joining;
		if (e[i].type != RD_ENTRY_CONF_CHANGE ||
		    rd_raft_cc_decode(e[i].data, e[i].len, &type, &node) != 0 ||
		    e[i].len == RD_RAFT_CC_HEADER ||
		    (type != RD_CC_ADD_VOTER && type != RD_CC_ADD_LEARNER) ||
		    rd_members_cc_ctx_decode(e[i].data + RD_RAFT_CC_HEADER,
		                             e[i].len - RD_RAFT_CC_HEADER, &inc, addr,
		                             &joining) != 0)
			continue;
		replica_set(g, node, inc);
	}
}

static int replicas_scan(void *arg, const struct rd_entry *e)
{
	rd_membership_replicas_appended(arg, e, 1);
	return 0;
}

void rd_membership_replicas_load(struct rd_node *n, struct rd_group *g)
{
	const struct rd_conf_state *cs = rd_raft_conf(g->raft);
	uint8_t key[RD_MEMBERS_REPLICA_KEY_MAX], *val;
	char msg[RD_ERRMSG_SIZE];
	size_t vl;

	g->n_replicas = 0;
	for (uint32_t i = 0; i < cs->n_voters + cs->n_learners; i++) {
		uint64_t id =
		    i < cs->n_voters ? cs->voters[i] : cs->learners[i - cs->n_voters];
		size_t kl = rd_members_replica_key(rd_storage_cluster_id(n->st), id, key);
		if (rd_storage_kv_get(n->st, g->id, key, kl, &val, &vl, msg) != 0)
			continue;
		if (vl == 8)
			replica_set(g, id, be64(val));
		free(val);
	}
	/* Configurations take effect when appended (thesis §4.1): the log
	 * after the applied index may add replicas the state machine does not
	 * hold yet. */
	if (rd_raft_last_index(g->raft) > rd_raft_applied_index(g->raft) &&
	    rd_storage_log_scan(n->st, g->id, rd_raft_applied_index(g->raft) + 1,
	                        replicas_scan, g, msg) != 0)
		rd_log_err("group %llu: replica identities from the log: %s",
		           (unsigned long long)g->id, msg);
}

bool rd_membership_addressed(struct rd_node *n, uint64_t group, uint64_t from,
                             uint64_t from_incarnation, uint64_t to_incarnation)
{
	struct rd_membership *m = &n->members;
	struct rd_group *g = rd_node_group(n, group);
	uint64_t want;
	const char *why = NULL;

	if (to_incarnation != 0 && to_incarnation != rd_storage_incarnation(n->st))
		why = "addressed to another replica of this node"; /* R1 */
	else if (to_incarnation == 0 && m->joined)
		why = "addressed to this node's founding replica, which this data "
		      "directory is not"; /* R2 */
	else if (g != NULL && from_incarnation != 0 &&
	         (want = rd_membership_replica_inc(g, from)) != 0 &&
	         want != from_incarnation)
		why = "from a replica the group's configuration does not list"; /* R3 */
	if (why == NULL)
		return true;
	if (m->misaddressed++ % 1000 == 0)
		rd_log_warn("raft message dropped group=%llu from=%llu: %s",
		            (unsigned long long)group, (unsigned long long)from, why);
	return false;
}
