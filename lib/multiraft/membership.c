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
#include "util/bytes.h"
#include "util/err.h"
#include "util/log.h"

static void say_removed(struct rd_node *n, const char *how);

/* Read node `id`'s registration from the durable state machine of group 0.
 * 0 and *r, RD_ENOTFOUND, or another RD_E* code. */
int rd_membership_read_record(struct rd_node *n, uint64_t id, struct rd_member_record *r)
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

/* Group 0's applied index as storage holds it (what rd_membership_read_record sees). */
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
	rv = rd_membership_read_record(n, id, &r);
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
	    ((rv = rd_membership_read_record(n, peer, &rec)) != 0 &&
	     rv != RD_ENOTFOUND)) {
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
			rd_membership_note_replacement(n, peer, incarnation);
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
 * ten election timeouts (33 s with the defaults). A peer replaces its
 * connection to this node's previous process as soon as this process's
 * dial proves another boot id (lib/transport/peer.c), so probes normally
 * get through at once; the idle timeout stays in the bound for a peer
 * that cannot tell (a build from before boot ids in connection ids keeps
 * the old connection until it times out and prefers it to our dials), and
 * the election timeouts leave room for one probe round after that. A peer
 * that does not answer within the bound is taken as one that knows
 * nothing. */
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

	/* A directory that joined founds nothing (its groups open without a
	 * configuration): there is nothing to ask before opening them. */
	if (n->members.joined || n->topo.n_members < 2 ||
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
 * member state), and also every RD_REMOVED_PROBE_MS while it does: a
 * quiesced group 0 whose leader's node stays live never loses its leader
 * (liveness.c), so a removed follower would otherwise wait forever. */
#define RD_REMOVED_PROBE_MS 5000

static void check_removed(struct rd_node *n, struct rd_group *g0)
{
	struct rd_member_record own = {0};
	uint64_t mine = rd_storage_incarnation(n->st);

	if (rd_membership_read_record(n, n->cfg.node_id, &own) == 0 &&
	    own.state == RD_MEMBER_REMOVED &&
	    (own.incarnation == 0 || own.incarnation == mine)) {
		say_removed(n, "its member table says so");
		return;
	}
	/* A leaving node (a decommission, placement_drive.c) is removed
	 * while its group 0 may still follow a leader that no longer
	 * replicates to it: it asks too; so does any node every
	 * RD_REMOVED_PROBE_MS (above). */
	if (g0 != NULL && n->members.registered &&
	    (rd_raft_leader(g0->raft) == 0 ||
	     (own.state == RD_MEMBER_LEAVING && own.incarnation == mine) ||
	     rd_clock_now_ns() - n->members.last_probe_ns >=
	         RD_REMOVED_PROBE_MS * 1000000ull))
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
	rd_membership_reconcile(n);
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
	rv = rd_membership_read_record(n, n->cfg.node_id, &r);
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
	w = rd_waiter_new_write(on_registered, n, 0,
	                        rd_clock_now_ns() +
	                            (uint64_t)n->cfg.request_timeout_ms * 1000000ull,
	                        RD_STORAGE_META_GROUP, &cmd, &rv);
	if (w == NULL)
		return;
	m->in_flight = true;
	rd_node_submit(n, w);
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
	id = rd_be64_get(key + c->prefix_len);
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
