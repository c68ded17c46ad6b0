/*
 * The node's side of the transport: Raft messages out (one RaftBatch frame
 * per peer per iteration, heartbeats in coalesced form), Raft messages in,
 * peer requests handed to cluster/forward_serve.c. Snapshots travel through
 * snapshots.c.
 *
 * Happy path (out): drive.c queues core messages with rd_peers_queue, which
 * encodes each into the peer's open batch at once (so the core's buffers
 * may be reused); rd_peers_flush hands each non-empty batch to the
 * transport as one frame.
 * Failure modes: a frame the transport refuses (queue full, peer gone) is
 * dropped and counted; Raft retransmits. A batch that would pass
 * [transport] max_frame_bytes leaves as several frames; a message that
 * alone would pass it is dropped and counted. A forward whose connection dies
 * answers UNAVAILABLE; one that meets NOT_LEADER follows the hint for at
 * most RD_NODE_FORWARD_HOPS hops.
 */
#include <stdlib.h>
#include <string.h>

#include "multiraft/node_internal.h"
#include "raftd.pb-c.h"
#include "transport/transport.h"
#include "transport/wire.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"

struct peer_out {
	uint64_t id;
	struct rd_wire_batch b;   /* this iteration's messages, encoded */
	uint64_t msgs;            /* messages queued, ever */
	uint64_t dropped;         /* batches the transport refused */
	uint64_t splits;          /* batches sent early: the next message would
	                           * have taken them past max_frame_bytes */
	uint64_t oversized;       /* messages dropped: alone over max_frame_bytes */
	uint64_t heard_inc;       /* incarnation of the last batch accepted from it */
	uint64_t sent_ns;         /* last batch handed to the transport */
	uint64_t node_heartbeats; /* empty batches sent as node heartbeats */
	struct rd_wire_batch hb;  /* the empty batch of a node heartbeat */
};

struct rd_peers {
	struct rd_node *n;
	struct rd_transport *t;
	struct peer_out out[RD_NODE_MAX_MEMBERS];
	unsigned n_out;
	bool pending;
	struct rd_wire_scratch scratch;
	uint64_t unknown_group;
	uint64_t nonmember; /* Raft messages whose sender is not in the group */
};

static struct peer_out *peer_out(const struct rd_peers *p, uint64_t id)
{
	for (unsigned i = 0; i < p->n_out; i++)
		if (p->out[i].id == id)
			return (struct peer_out *)&p->out[i];
	return NULL;
}

/* ---- outgoing Raft traffic ------------------------------------------------- */

/* Seal o's batch, hand it to the transport as one frame and reset it. */
static void send_batch(struct rd_node *n, struct peer_out *o, uint64_t now)
{
	struct rd_peers *p = n->peers;
	char msg[RD_ERRMSG_SIZE];
	struct rd_wire_ident ident = {.incarnation = rd_storage_incarnation(n->st),
	                              .cluster = rd_storage_cluster_id(n->st),
	                              .boot = n->live.boot};
	const uint8_t *frame;
	size_t len;

	frame = rd_wire_batch_seal_ident(&o->b, n->cfg.node_id, o->id,
	                                 rd_health_batch_flags(n), &ident, &len);
	o->sent_ns = now; /* it is this interval's node heartbeat too */
	if (rd_transport_send_encoded(p->t, o->id, frame, len, o->b.msgs, msg) != 0) {
		o->dropped++;
		rd_log_debug("raft batch dropped peer=%llu: %s",
		             (unsigned long long)o->id, msg);
	}
	rd_wire_batch_reset(&o->b);
}

void rd_peers_queue(struct rd_node *n, const struct rd_message *m)
{
	struct rd_peers *p = n->peers;
	struct peer_out *o = peer_out(p, m->to);
	size_t cap = rd_transport_max_frame_bytes(p->t);
	int rv;

	if (o == NULL) {
		rd_log_debug("raft message to unknown node to=%llu group=%llu",
		             (unsigned long long)m->to, (unsigned long long)m->group);
		return;
	}
	/* Heartbeats and their responses travel in the compact form: one
	 * CoalescedHeartbeat per group inside the peer's single batch (to
	 * founding replicas; a replica added later is addressed by its
	 * incarnation, membership.c). */
	struct rd_group *g = rd_node_group(n, m->group);
	uint64_t inc = rd_membership_address(n, g, m->to, o->heard_inc);
	rv = rd_wire_batch_add_msg_within(&o->b, &p->scratch, m, inc, cap);
	if (rv == RD_EAGAIN) {
		/* The batch is full: it leaves now, and this message starts the
		 * next one, so that one frame over the transport's limit never
		 * takes every group's messages with it. Sending now keeps the
		 * ordering rule (drive.c): a message is queued only once it may
		 * leave, before this iteration's write (thesis §10.2.1) or after
		 * the write it waited for is durable. */
		send_batch(n, o, rd_clock_now_ns());
		o->splits++;
		rv = rd_wire_batch_add_msg_within(&o->b, &p->scratch, m, inc, cap);
	}
	if (rv == RD_ETOOBIG) {
		/* Alone over the limit: only this message is lost, and the core
		 * sends it again (thesis §3.5); [raft] max_msg_bytes below
		 * [transport] max_frame_bytes avoids it. */
		o->oversized++;
		rd_log_warn(
		    "raft message over [transport] max_frame_bytes dropped peer=%llu "
		    "group=%llu type=%u entries=%u",
		    (unsigned long long)m->to, (unsigned long long)m->group,
		    (unsigned)m->type, (unsigned)m->n_entries);
		return;
	}
	if (rv != 0)
		return;
	o->msgs++;
	p->pending = true;
}

bool rd_peers_pending(const struct rd_node *n)
{
	return n->peers != NULL && n->peers->pending;
}

void rd_peers_flush(struct rd_node *n)
{
	struct rd_peers *p = n->peers;
	uint64_t now;

	if (!p->pending)
		return;
	now = rd_clock_now_ns();
	for (unsigned i = 0; i < p->n_out; i++)
		if (!rd_wire_batch_empty(&p->out[i].b))
			send_batch(n, &p->out[i], now);
	p->pending = false;
	/* Out now, not once the iteration returns to the loop: a leader's
	 * appends are to travel while its own write syncs (drive.c step 2). */
	rd_transport_flush(p->t);
}

void rd_peers_node_heartbeats(struct rd_node *n, uint64_t now, uint64_t interval_ns)
{
	struct rd_peers *p = n->peers;
	char msg[RD_ERRMSG_SIZE];
	struct rd_wire_ident ident = {.incarnation = rd_storage_incarnation(n->st),
	                              .cluster = rd_storage_cluster_id(n->st),
	                              .boot = n->live.boot};

	if (p == NULL || p->t == NULL)
		return;
	for (unsigned i = 0; i < p->n_out; i++) {
		struct peer_out *o = &p->out[i];
		const uint8_t *frame;
		size_t len;

		/* A batch within the interval was this interval's heartbeat. */
		if (now - o->sent_ns < interval_ns)
			continue;
		frame = rd_wire_batch_seal_ident(&o->hb, n->cfg.node_id, o->id,
		                                 rd_health_batch_flags(n), &ident, &len);
		o->sent_ns = now;
		if (frame == NULL ||
		    rd_transport_send_encoded(p->t, o->id, frame, len, 0, msg) != 0) {
			o->dropped++;
			continue;
		}
		o->node_heartbeats++;
	}
}

/* ---- incoming Raft traffic ------------------------------------------------- */

/* Whether `from` may talk to g: a voter or learner of g's configuration as
 * this replica knows it. A removed server keeps campaigning with higher
 * terms once it stops hearing from the leader (thesis §4.2.3, disruptive
 * servers) and a stale node may send anything: both are dropped here. A
 * replica with an empty configuration (created to catch up, before the
 * leader's log or snapshot told it the members) must still take its
 * leader's appends and snapshots, so it accepts everyone. */
static bool from_member(const struct rd_group *g, uint64_t from)
{
	const struct rd_conf_state *cs = rd_raft_conf(g->raft);

	if (cs->n_voters == 0 && cs->n_learners == 0)
		return true;
	return rd_group_conf_role(cs, from) != RD_CONF_ROLE_NONE;
}

void rd_peers_step(struct rd_node *n, const struct rd_message *m)
{
	struct rd_group *g = rd_node_group(n, m->group);
	if (g == NULL) {
		n->peers->unknown_group++;
		return;
	}
	if (!from_member(g, m->from)) {
		n->peers->nonmember++;
		rd_log_debug(
		    "raft message from a non-member dropped group=%llu from=%llu",
		    (unsigned long long)m->group, (unsigned long long)m->from);
		return;
	}
	rd_raft_step(g->raft, m);
	rd_node_touch(n, g);
}

static void on_batch(void *arg, uint64_t peer, const Raftd__RaftBatch *b)
{
	struct rd_node *n = arg;
	struct rd_message m;

	if (n->stopping)
		return;
	/* A node that lost its data must not vote or acknowledge with its
	 * forgotten state (membership.c): its whole batch is dropped. */
	if (!rd_membership_accept(n, peer, b->incarnation, b->cluster.data,
	                          b->cluster.len))
		return;
	rd_health_peer_flags(n, peer, b->flags);
	rd_liveness_heard(n, peer, b->boot);
	struct peer_out *o = peer_out(n->peers, peer);
	if (o != NULL)
		o->heard_inc = b->incarnation;
	for (size_t i = 0; i < b->n_messages; i++) {
		const Raftd__RaftMessage *rm = b->messages[i];
		struct rd_entry stack[64];
		if (rm->to != n->cfg.node_id ||
		    !rd_membership_addressed(n, rm->group, peer, b->incarnation,
		                             rm->to_incarnation))
			continue;
		if (rd_wire_msg_from_proto(rm, &m, stack, 64) != 0)
			continue;
		rd_peers_step(n, &m);
		if (m.entries != NULL && m.entries != stack)
			free(m.entries);
	}
	for (size_t i = 0; i < b->n_heartbeats; i++) {
		rd_wire_heartbeat_from_proto(b->heartbeats[i], false, peer,
		                             n->cfg.node_id, &m);
		if (rd_membership_addressed(n, m.group, peer, b->incarnation, 0))
			rd_peers_step(n, &m);
	}
	for (size_t i = 0; i < b->n_heartbeat_resps; i++) {
		rd_wire_heartbeat_from_proto(b->heartbeat_resps[i], true, peer,
		                             n->cfg.node_id, &m);
		if (rd_membership_addressed(n, m.group, peer, b->incarnation, 0))
			rd_peers_step(n, &m);
	}
}

/* ---- requests from peers (cluster/forward_serve.c serves them) ---------------- */

static void on_request(void *arg, uint64_t peer, const Raftd__PeerRequest *req,
                       struct rd_transport_responder *r)
{
	struct rd_node *n = arg;
	if (req->body_case == RAFTD__PEER_REQUEST__BODY_VSHARD)
		rd_envelope_on_request(&n->env, peer, req, r);
	else if (req->body_case == RAFTD__PEER_REQUEST__BODY_BACKUP_FETCH)
		rd_backup_fetch_serve(n, peer, req, r);
	else if (req->body_case == RAFTD__PEER_REQUEST__BODY_MEMBER_PROBE)
		rd_membership_serve_probe(n, peer, req, r);
	else if (req->body_case == RAFTD__PEER_REQUEST__BODY_MEMBERS_CHANGE)
		rd_membership_serve_change(n, peer, req, r);
	else if (req->body_case == RAFTD__PEER_REQUEST__BODY_PLACEMENT)
		rd_placement_serve(n, peer, req, r);
	else if (req->body_case == RAFTD__PEER_REQUEST__BODY_JOIN)
		rd_join_serve(n, peer, req, r);
	else
		rd_forward_on_request(&n->fwd, peer, req, r);
}

/* ---- lifecycle ---------------------------------------------------------------- */

static void on_peer(void *arg, uint64_t peer, bool connected)
{
	(void)arg;
	rd_log_info("peer %s peer=%llu", connected ? "connected" : "disconnected",
	            (unsigned long long)peer);
}

/* Only members speak Raft: the members of the topology (n->topo). */
static bool is_member(void *arg, uint64_t peer)
{
	const struct rd_node *n = arg;

	for (unsigned i = 0; i < n->topo.n_members; i++)
		if (n->topo.members[i].id == peer)
			return true;
	return false;
}

int rd_peers_start(struct rd_node *n, char *msg)
{
	struct rd_transport_config tc;
	struct rd_transport_callbacks cbs = {.on_batch = on_batch,
	                                     .on_snapshot = rd_snapshots_on_frame,
	                                     .on_request = on_request,
	                                     .on_peer = on_peer,
	                                     .is_member = is_member,
	                                     .arg = n};
	struct rd_peers *p = calloc(1, sizeof *p);
	int rv;

	if (p == NULL)
		return rd_errorf(msg, RD_ENOMEM, "out of memory");
	p->n = n;
	n->peers = p;
	rd_transport_config_init(&tc, &n->cfg);
	/* One boot id per process, in the batches (liveness.c) and in the
	 * connection ids (a peer replaces its connection to our previous
	 * process by this one's at once: lib/transport/peer.c). */
	tc.boot = n->live.boot;
	rv = rd_transport_new(&p->t, n->base, &tc, &cbs, msg);
	if (rv != 0) {
		rd_errprefix(msg, "transport: ");
		return rv;
	}
	rd_forward_attach(&n->fwd, p->t);
	rd_envelope_attach(&n->env, p->t);
	for (unsigned i = 0; i < n->topo.n_members; i++) {
		const struct rd_member *m = &n->topo.members[i];
		if (m->id == n->cfg.node_id)
			continue;
		rv = rd_transport_peer_add(p->t, m->id,
		                           (const struct sockaddr *)&m->addr.sa,
		                           m->addr.salen, msg);
		if (rv != 0)
			return rv;
		p->out[p->n_out].id = m->id;
		rd_wire_batch_init(&p->out[p->n_out].hb);
		rd_wire_batch_init(&p->out[p->n_out++].b);
	}
	return 0;
}

int rd_peers_add(struct rd_node *n, const struct rd_member *m, char *msg)
{
	struct rd_peers *p = n->peers;
	int rv;

	if (p == NULL || p->t == NULL || m->id == n->cfg.node_id)
		return 0;
	rv = rd_transport_peer_add(p->t, m->id, (const struct sockaddr *)&m->addr.sa,
	                           m->addr.salen, msg);
	if (rv != 0 || peer_out(p, m->id) != NULL)
		return rv;
	if (p->n_out == RD_NODE_MAX_MEMBERS)
		return rd_errorf(msg, RD_EINVAL, "too many peers");
	p->out[p->n_out].id = m->id;
	rd_wire_batch_init(&p->out[p->n_out++].b);
	return 0;
}

void rd_peers_stop(struct rd_node *n)
{
	struct rd_peers *p = n->peers;
	if (p == NULL || p->t == NULL)
		return;
	rd_forward_attach(&n->fwd, NULL);
	rd_envelope_attach(&n->env, NULL);
	rd_transport_free(p->t);
	p->t = NULL;
}

void rd_peers_free(struct rd_node *n)
{
	struct rd_peers *p = n->peers;
	if (p == NULL)
		return;
	rd_peers_stop(n);
	rd_snapshots_free(n);
	for (unsigned i = 0; i < p->n_out; i++) {
		rd_wire_batch_free(&p->out[i].b);
		rd_wire_batch_free(&p->out[i].hb);
	}
	rd_wire_scratch_free(&p->scratch);
	free(p);
	n->peers = NULL;
}

void rd_peers_reload(struct rd_node *n, const struct rd_config *cfg)
{
	char msg[RD_ERRMSG_SIZE];
	struct rd_transport_config tc;
	if (n->peers == NULL || n->peers->t == NULL)
		return;
	rd_transport_config_init(&tc, cfg);
	if (rd_transport_reload(n->peers->t, &tc, msg) != 0)
		rd_log_err("TLS reload failed, keeping the current certificates: %s",
		           msg);
	else
		rd_log_notice("TLS certificates reloaded");
}

struct rd_transport *rd_peers_transport(const struct rd_node *n)
{
	return n->peers != NULL ? n->peers->t : NULL;
}

bool rd_peers_connected(const struct rd_node *n, uint64_t id, uint64_t *rtt_us)
{
	struct rd_transport_peer_stats st;
	if (n->peers == NULL || n->peers->t == NULL ||
	    rd_transport_peer_stats(n->peers->t, id, &st) != 0)
		return false;
	*rtt_us = st.rtt_us;
	return st.connected;
}

void rd_peers_figures(const struct rd_node *n, uint64_t id, struct rd_peer_figures *f)
{
	struct rd_transport_peer_stats st;
	memset(f, 0, sizeof *f);
	if (n->peers == NULL || n->peers->t == NULL ||
	    rd_transport_peer_stats(n->peers->t, id, &st) != 0)
		return;
	f->connected = st.connected;
	/* Batches go to the transport pre-encoded, so it cannot count their
	 * messages: this side does. */
	const struct peer_out *o = peer_out(n->peers, id);
	f->msgs_out = o != NULL ? o->msgs : st.raft_msgs_out;
	f->msgs_in = st.raft_msgs_in;
	f->frames_out = st.frames_out;
	f->bytes_out = st.bytes_out;
	f->bytes_in = st.bytes_in;
	f->rtt_us = st.rtt_us;
	f->lost = st.lost_packets;
	f->reconnects = st.reconnects;
	f->node_heartbeats = o != NULL ? o->node_heartbeats : 0;
	f->batches_dropped = o != NULL ? o->dropped : 0;
	f->batch_splits = o != NULL ? o->splits : 0;
	f->oversized = o != NULL ? o->oversized : 0;
	f->restarts = st.restarts;
	f->stale_dropped = st.stale_dropped;
	f->queued_bytes = st.queued_bytes;
	f->credit_waits = st.credit_waits;
}

uint64_t rd_peers_nonmember(const struct rd_node *n)
{
	return n->peers != NULL ? n->peers->nonmember : 0;
}

uint64_t rd_peers_unknown_group(const struct rd_node *n)
{
	return n->peers != NULL ? n->peers->unknown_group : 0;
}

uint64_t rd_peers_malformed(const struct rd_node *n)
{
	struct rd_transport_stats st;
	if (n->peers == NULL || n->peers->t == NULL)
		return 0;
	rd_transport_stats(n->peers->t, &st);
	return st.malformed;
}

void rd_peers_transport_stats(const struct rd_node *n, struct rd_transport_stats *st)
{
	memset(st, 0, sizeof *st);
	if (n->peers != NULL && n->peers->t != NULL)
		rd_transport_stats(n->peers->t, st);
}

/* ---- keeping connections up ------------------------------------------------------ */

static void on_pong(void *arg, int err, const Raftd__PeerResponse *resp,
                    const char *errmsg)
{
	(void)arg, (void)resp;
	if (err != 0)
		rd_log_debug("ping failed: %s", errmsg);
}

/* Ping every peer that has no established connection. Connections are
 * otherwise dialed on first use; pinging at start and then every second
 * brings them up (and settles the simultaneous-dial tie-break) before
 * client requests are forwarded over them. */
void rd_peers_keepalive(struct rd_node *n)
{
	struct rd_peers *p = n->peers;
	Raftd__PeerRequest req = RAFTD__PEER_REQUEST__INIT;
	Raftd__Ping ping = RAFTD__PING__INIT;
	char msg[RD_ERRMSG_SIZE];

	if (p == NULL || p->t == NULL)
		return;
	ping.topology_version = n->topo.routing.version;
	ping.sent_us = rd_clock_now_ns() / 1000;
	req.body_case = RAFTD__PEER_REQUEST__BODY_PING;
	req.ping = &ping;
	for (unsigned i = 0; i < p->n_out; i++) {
		struct rd_transport_peer_stats st;
		if (rd_transport_peer_stats(p->t, p->out[i].id, &st) == 0 && st.connected)
			continue;
		rd_transport_call(p->t, p->out[i].id, &req, 1000, on_pong, NULL, msg);
	}
}
