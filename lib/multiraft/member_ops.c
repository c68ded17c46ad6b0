/*
 * Membership changes (raftctl members add / remove / promote) and the
 * group-0 leader's replacement of a wiped node's replicas: checked here,
 * proposed by the leader of the group they change. The member table and
 * replica identities they rely on: membership.c, replicas.c.
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

/* OP_MARKING: a decommission's "leaving" record is proposed
 * (placement_drive.c rd_placement_decommission). */
enum { OP_WAIT = 0, OP_FORWARDED = 1, OP_PROPOSED = 2, OP_MARKING = 3 };

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
	else
		rd_log(op->quiet ? RD_LOG_DEBUG : RD_LOG_INFO,
		       "membership change %s node=%llu group=%llu not done: %s",
		       kind_name(op->kind), (unsigned long long)op->node,
		       (unsigned long long)op->group, message != NULL ? message : "");
	if (op->responder != NULL && op->join) {
		rd_join_respond(op->n, op->responder, op->node, code, message);
	} else if (op->responder != NULL) {
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

static void on_marked(void *ud, uint64_t request_id, const struct rd_result *res)
{
	struct rd_member_op *op = ud;
	char msg[RD_ERRMSG_SIZE];

	if (!op->used || op->phase != OP_MARKING || op->deadline_ns != request_id)
		return;
	if (res->code != RAFTD__ERROR_CODE__OK) {
		op_finish(op, res->code, res->message, 0);
		return;
	}
	snprintf(msg, sizeof msg,
	         "node %llu is leaving: its data replicas move to other nodes, then "
	         "it is removed from group 0 and exits",
	         (unsigned long long)op->node);
	op_finish(op, RAFTD__ERROR_CODE__OK, msg, res->index);
}

/* The leader's part: check, then propose the conf change. */
static void op_propose(struct rd_node *n, struct rd_member_op *op, struct rd_group *g)
{
	struct view_ctx vc = {n, g};
	struct rd_members_view v = {
	    .conf = rd_raft_conf(g->raft),
	    .group = g->id,
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
	/* Removing a node that holds data replicas is a decommission: they
	 * move first (the placement driver removes it from group 0 last). */
	if (rv == 0 && op->kind == RD_MEMBERS_REMOVE && g->id == RD_STORAGE_META_GROUP &&
	    !op->replace) {
		int code = 0;
		switch (rd_placement_decommission(n, op->node, on_marked, op,
		                                  op->deadline_ns, &code, msg)) {
		case 1:
			op_finish(op, code, msg, 0);
			return;
		case 2:
			op->phase = OP_MARKING;
			return;
		default:
			break;
		}
		rv = check_data_groups(n, op->node, msg);
	}
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
	if (rd_membership_read_record(n, op->node, &cur) == 0 && op->addr[0] == 0)
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

	if (op->phase == OP_FORWARDED || op->phase == OP_MARKING)
		return; /* on_forwarded / on_marked answer, by the deadline */
	if (op->phase == OP_PROPOSED && g != NULL && g->applied >= op->index) {
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
	if (g == NULL && op->via != 0 && op->via != n->cfg.node_id &&
	    op->hops < OP_MAX_HOPS) {
		op_forward(n, op, op->via, now);
		return;
	}
	if (g == NULL) {
		op_finish(op, RAFTD__ERROR_CODE__NOT_FOUND,
		          "group not hosted on this node", 0);
		return;
	}
	leader = rd_raft_leader(g->raft);
	/* A replica that knows no leader yet (a move's target, hosted empty)
	 * hands it to the leader the placement driver heard from. */
	if (leader == 0 && op->via != 0 && op->via != n->cfg.node_id)
		leader = op->via;
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

/* A new op, or NULL with *err (RD_ESHUTDOWN, RD_EINVAL, RD_EBUSY) and msg. */
static struct rd_member_op *op_start(struct rd_node *n, uint8_t kind, uint64_t node,
                                     const char *addr, bool learner, uint32_t deadline_ms,
                                     int *err, char *msg)
{
	struct rd_member_op *op;
	uint32_t ms = deadline_ms ? deadline_ms : n->cfg.request_timeout_ms;

	if (n->stopping) {
		*err = rd_errorf(msg, RD_ESHUTDOWN, "node is shutting down");
		return NULL;
	}
	if (kind < RD_MEMBERS_ADD || kind > RD_MEMBERS_PROMOTE) {
		*err = rd_errorf(msg, RD_EINVAL, "unknown membership change %u", kind);
		return NULL;
	}
	if (addr != NULL && strlen(addr) > 255) {
		*err = rd_errorf(msg, RD_EINVAL, "address longer than 255 bytes");
		return NULL;
	}
	op = op_new(n);
	if (op == NULL) {
		*err =
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
	int err;

	op = op_start(n, kind, node, addr,
	              kind == RD_MEMBERS_ADD && req->members_add->learner,
	              req->deadline_ms, &err, msg);
	if (op == NULL) {
		struct rd_result r = {.code = rd_err_to_wire(err), .message = msg};
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
	int err;

	(void)peer;
	op = op_start(n, (uint8_t)mc->kind, mc->node_id, mc->address, mc->learner,
	              req->deadline_ms, &err, msg);
	if (op == NULL) {
		Raftd__PeerResponse resp = RAFTD__PEER_RESPONSE__INIT;
		Raftd__MembersChangeResponse res = RAFTD__MEMBERS_CHANGE_RESPONSE__INIT;
		res.code = rd_err_to_wire(err);
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

static bool op_busy(const struct rd_node *n, uint64_t group, uint64_t node);

int rd_membership_start_join(struct rd_node *n, uint64_t node, const char *addr,
                             uint64_t incarnation, uint32_t deadline_ms,
                             struct rd_transport_responder *r, char *msg)
{
	struct rd_member_op *op;
	int err;

	if (op_busy(n, RD_STORAGE_META_GROUP, node))
		return rd_errorf(msg, RD_EBUSY,
		                 "a membership change of node %llu is in "
		                 "progress",
		                 (unsigned long long)node);
	op = op_start(n, RD_MEMBERS_ADD, node, addr, true, deadline_ms, &err, msg);
	if (op == NULL)
		return err;
	op->group = RD_STORAGE_META_GROUP;
	op->incarnation = incarnation;
	op->joining = true;
	op->join = true;
	op->responder = r;
	op_step(n, op, rd_clock_now_ns());
	return 0;
}

static bool op_busy(const struct rd_node *n, uint64_t group, uint64_t node)
{
	for (unsigned i = 0; i < RD_MEMBER_OPS; i++)
		if (n->members.ops[i].used && n->members.ops[i].group == group &&
		    n->members.ops[i].node == node)
			return true;
	return false;
}

void rd_membership_flow_op(struct rd_node *n, uint8_t kind, uint64_t group, uint64_t node,
                           uint64_t incarnation, const char *addr, uint64_t via)
{
	char msg[RD_ERRMSG_SIZE];
	struct rd_member_op *op;

	if (op_busy(n, group, node))
		return;
	int err;

	op = op_start(n, kind, node, addr, kind == RD_MEMBERS_ADD, 0, &err, msg);
	if (op == NULL)
		return;
	op->group = group;
	op->incarnation = incarnation;
	op->joining = kind == RD_MEMBERS_ADD;
	op->replace = true;
	op->quiet = kind == RD_MEMBERS_PROMOTE || via != 0;
	op->via = via;
	op_step(n, op, rd_clock_now_ns());
}

void rd_membership_place_op(struct rd_node *n, uint8_t kind, uint64_t group,
                            uint64_t node, uint64_t incarnation, uint64_t via)
{
	struct rd_member_record rec;

	if (rd_membership_read_record(n, node, &rec) != 0)
		rec.addr[0] = 0;
	rd_membership_flow_op(n, kind, group, node, incarnation, rec.addr, via);
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
