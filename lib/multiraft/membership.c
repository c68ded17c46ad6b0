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
#include "util/err.h"
#include "util/log.h"

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

void rd_membership_serve_probe(struct rd_node *n, uint64_t peer,
                               struct rd_transport_responder *r)
{
	Raftd__PeerResponse resp = RAFTD__PEER_RESPONSE__INIT;
	Raftd__MemberProbeResponse pr = RAFTD__MEMBER_PROBE_RESPONSE__INIT;
	uint64_t have = 0;

	if (rd_membership_registered(n, peer, &have) != 0) {
		resp.error = RAFTD__ERROR_CODE__INTERNAL;
		resp.error_message = (char *)"member table unreadable";
	} else {
		pr.registered = have;
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

void rd_membership_tick(struct rd_node *n)
{
	struct rd_membership *m = &n->members;
	struct rd_group *g0 = rd_node_group(n, RD_STORAGE_META_GROUP);
	uint64_t mine = rd_storage_incarnation(n->st), have;
	uint8_t key[RD_MEMBERS_KEY_MAX], val[RD_MEMBERS_VALUE_MAX];
	struct rd_member_record r = {.state = RD_MEMBER_VOTER, .incarnation = mine};
	struct rd_kv_cmd cmd = {.op = RD_KV_CAS};
	struct rd_waiter *w;
	size_t size, len;

	if (m->registered || m->foreign || n->stopping)
		return;
	if (rd_membership_registered(n, n->cfg.node_id, &have) != 0)
		return;
	if (have == mine) {
		m->registered = true;
		return;
	}
	if (have != 0) {
		say_foreign(n, have, "as its own member table says");
		return;
	}
	probe_peers(n);
	if (m->in_flight || g0 == NULL || rd_raft_leader(g0->raft) == 0)
		return;
	snprintf(r.addr, sizeof r.addr, "%s", own_addr(n));
	cmd.key = key;
	cmd.key_len =
	    (uint32_t)rd_members_key(rd_storage_cluster_id(n->st), n->cfg.node_id, key);
	cmd.has_expected = false; /* only if absent: the first one wins */
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
