/*
 * Envelope routing, both sides: see envelope.h.
 *
 * Happy path (sender): rd_envelope_send looks up the group's leader; when
 * it is this node the runtime delivers at once, else one PeerRequest
 * (body `vshard`) goes to the leader with what is left of the deadline, and
 * its VShardReply becomes the result. Receiver: a PeerRequest whose group
 * this node leads is handed to ops->deliver; the outcome leaves as the
 * VShardReply.
 * Failure modes: NOT_LEADER with a hint is followed, NO_LEADER waits for a
 * leader (both at most RD_FORWARD_HOPS times: the asked node did not
 * deliver, so sending again keeps delivery at most once); an RPC that fails
 * after leaving (lost connection, deadline) ends with UNAVAILABLE or
 * TIMEOUT, outcome unknown; an envelope waiting for a leader at its
 * deadline ends with NO_LEADER.
 */
#include "cluster/envelope.h"

#include <stdlib.h>
#include <string.h>

#include "cluster/forward.h"
#include "cluster/topology.h"
#include "raftd.pb-c.h"
#include "transport/transport.h"
#include "transport/wire.h"
#include "util/err.h"
#include "util/log.h"

/* An envelope sent from this node, waiting for a leader or out on an RPC
 * (whose callback then owns it). Owns a copy of the payload. */
struct rd_out_envelope {
	struct rd_envelopes *e;
	struct rd_envelope_msg m; /* m.payload points into `bytes` */
	rd_envelope_done_fn done;
	void *arg;
	uint32_t hops;
	struct rd_out_envelope *next; /* in e->waiting */
	uint8_t bytes[];
};

void rd_envelope_init(struct rd_envelopes *e, const struct rd_envelope_ops *ops, void *ud,
                      uint64_t self, const struct rd_topology *topo, size_t max_payload,
                      unsigned max_inflight)
{
	*e = (struct rd_envelopes){.ops = ops,
	                           .ud = ud,
	                           .self = self,
	                           .topo = topo,
	                           .max_payload = max_payload,
	                           .max_inflight = max_inflight};
}

void rd_envelope_attach(struct rd_envelopes *e, struct rd_transport *t)
{
	e->t = t;
}

static void count_failure(struct rd_envelopes *e, int code)
{
	if (code != RAFTD__ERROR_CODE__OK)
		e->stats.failed[code >= 0 && code < RD_ENVELOPE_CODES ? code : 0]++;
}

/* End an envelope of the sending side with `res`. */
static void out_finish(struct rd_out_envelope *o, const struct rd_envelope_result *res)
{
	struct rd_envelopes *e = o->e;

	count_failure(e, res->code);
	e->inflight--;
	o->done(o->arg, res);
	free(o);
}

static void out_fail(struct rd_out_envelope *o, int code, const char *message)
{
	struct rd_envelope_result r = {
	    .code = code, .message = message, .group = o->m.group};
	out_finish(o, &r);
}

static void wait_push(struct rd_out_envelope *o)
{
	o->next = o->e->waiting;
	o->e->waiting = o;
}

/* A local delivery on the sending side ends: add the group, pass it on. */
static void local_done(void *arg, const struct rd_envelope_result *res)
{
	struct rd_out_envelope *o = arg;
	struct rd_envelope_result r = *res;

	r.group = o->m.group;
	out_finish(o, &r);
}

static void on_reply(void *arg, int err, const Raftd__PeerResponse *resp,
                     const char *errmsg);

/* Route `o` now: deliver it here, send it to `to`, or wait for a leader. */
static void route(struct rd_out_envelope *o, uint64_t to)
{
	struct rd_envelopes *e = o->e;
	Raftd__PeerRequest req = RAFTD__PEER_REQUEST__INIT;
	Raftd__VShardEnvelope env = RAFTD__VSHARD_ENVELOPE__INIT;
	uint64_t now = e->ops->now_ns(e->ud);
	unsigned ms =
	    o->m.deadline_ns > now ? (unsigned)((o->m.deadline_ns - now) / 1000000) : 0;
	char msg[RD_ERRMSG_SIZE];
	const char *why = NULL;
	int code;

	if (ms == 0) {
		out_fail(o, RAFTD__ERROR_CODE__TIMEOUT,
		         "deadline passed before the envelope was delivered");
		return;
	}
	if (to == 0) {
		wait_push(o);
		return;
	}
	if (to == e->self) {
		code = e->ops->deliver(e->ud, &o->m, local_done, o, &why);
		if (code != RAFTD__ERROR_CODE__OK)
			out_fail(o, code, why);
		return;
	}
	if (e->t == NULL) {
		out_fail(o, RAFTD__ERROR_CODE__SHUTTING_DOWN, "node is shutting down");
		return;
	}
	env.vshard = o->m.vshard;
	env.group = o->m.group;
	env.kind = o->m.kind;
	env.payload.data = (uint8_t *)o->m.payload;
	env.payload.len = o->m.len;
	req.body_case = RAFTD__PEER_REQUEST__BODY_VSHARD;
	req.vshard = &env;
	if (rd_transport_call(e->t, to, &req, ms, on_reply, o, msg) == 0) {
		e->stats.forwarded++;
		return;
	}
	/* Nothing left: the envelope was not sent and may wait for a retry. */
	rd_log_debug("envelope to node %llu not sent: %s", (unsigned long long)to, msg);
	wait_push(o);
}

static void on_reply(void *arg, int err, const Raftd__PeerResponse *resp,
                     const char *errmsg)
{
	struct rd_out_envelope *o = arg;
	struct rd_envelopes *e = o->e;
	const Raftd__VShardReply *vr;
	struct rd_envelope_result r = {.group = o->m.group};

	if (err != 0) {
		/* It left: the peer may have delivered it. */
		r.code = rd_err_to_wire(err == RD_ETIMEDOUT   ? RD_ETIMEDOUT
		                        : err == RD_ESHUTDOWN ? RD_ESHUTDOWN
		                                              : RD_ECLOSED);
		r.message = errmsg;
		out_finish(o, &r);
		return;
	}
	if (resp->error != RAFTD__ERROR_CODE__OK ||
	    resp->body_case != RAFTD__PEER_RESPONSE__BODY_VSHARD) {
		r.code = resp->error != RAFTD__ERROR_CODE__OK
		             ? (int)resp->error
		             : RAFTD__ERROR_CODE__INTERNAL;
		r.message = resp->error != RAFTD__ERROR_CODE__OK
		                ? resp->error_message
		                : "unexpected answer to an envelope";
		out_finish(o, &r);
		return;
	}
	vr = resp->vshard;
	if ((vr->error == RAFTD__ERROR_CODE__NOT_LEADER ||
	     vr->error == RAFTD__ERROR_CODE__NO_LEADER) &&
	    o->hops + 1 < RD_FORWARD_HOPS && !e->stopping) {
		/* Not delivered there: follow the hint, or wait for a leader. */
		uint64_t to = vr->leader_hint;
		o->hops++;
		if (to == e->self)
			to = e->ops->leader(e->ud, o->m.group);
		route(o, to);
		return;
	}
	r.code = vr->error;
	r.message = vr->error_message;
	r.leader_hint = vr->leader_hint;
	r.node = vr->node;
	r.payload = vr->payload.data;
	r.len = vr->payload.len;
	out_finish(o, &r);
}

void rd_envelope_send(struct rd_envelopes *e, const struct rd_envelope_msg *m,
                      rd_envelope_done_fn done, void *arg)
{
	struct rd_envelope_result r = {.group = m->group};
	struct rd_out_envelope *o;

	if (e->stopping) {
		r.code = RAFTD__ERROR_CODE__SHUTTING_DOWN;
		r.message = "node is shutting down";
	} else if (m->len > e->max_payload) {
		r.code = RAFTD__ERROR_CODE__TOO_LARGE;
		r.message = "payload over [envelopes] max_payload_bytes";
	} else if (e->inflight >= e->max_inflight) {
		r.code = RAFTD__ERROR_CODE__BUSY;
		r.message = "too many envelopes in flight on this node "
		            "([envelopes] max_in_flight)";
	} else if ((o = malloc(sizeof *o + m->len)) == NULL) {
		r.code = RAFTD__ERROR_CODE__INTERNAL;
		r.message = "out of memory";
	} else {
		o->e = e;
		o->m = *m;
		memcpy(o->bytes, m->payload, m->len);
		o->m.payload = o->bytes;
		o->done = done;
		o->arg = arg;
		o->hops = 0;
		o->next = NULL;
		e->inflight++;
		e->stats.sent++;
		route(o, e->ops->leader(e->ud, m->group));
		return;
	}
	count_failure(e, r.code);
	done(arg, &r);
}

void rd_envelope_tick(struct rd_envelopes *e, uint64_t now_ns)
{
	struct rd_out_envelope *o = e->waiting;

	e->waiting = NULL;
	while (o != NULL) {
		struct rd_out_envelope *next = o->next;
		uint64_t to = e->ops->leader(e->ud, o->m.group);

		o->next = NULL;
		if (o->m.deadline_ns <= now_ns)
			out_fail(o, RAFTD__ERROR_CODE__NO_LEADER,
			         "no leader known before the deadline (not delivered)");
		else
			route(o, to); /* may wait again: then it is back in the list */
		o = next;
	}
}

void rd_envelope_shutdown(struct rd_envelopes *e)
{
	struct rd_out_envelope *o = e->waiting;

	e->stopping = true;
	e->waiting = NULL;
	while (o != NULL) {
		struct rd_out_envelope *next = o->next;
		out_fail(o, RAFTD__ERROR_CODE__SHUTTING_DOWN, "node is shutting down");
		o = next;
	}
}

/* ---- the receiving side --------------------------------------------------------- */

/* A delivery for a peer; owns the responder until answered. */
struct in_envelope {
	struct rd_envelopes *e;
	struct rd_transport_responder *r;
};

static void respond(struct rd_transport_responder *r,
                    const struct rd_envelope_result *res)
{
	Raftd__PeerResponse resp = RAFTD__PEER_RESPONSE__INIT;
	Raftd__VShardReply vr = RAFTD__VSHARD_REPLY__INIT;

	vr.error = (Raftd__ErrorCode)res->code;
	vr.error_message = (char *)(res->message != NULL ? res->message : "");
	vr.leader_hint = res->leader_hint;
	vr.node = res->node;
	vr.payload.data = (uint8_t *)res->payload;
	vr.payload.len = res->len;
	resp.body_case = RAFTD__PEER_RESPONSE__BODY_VSHARD;
	resp.vshard = &vr;
	rd_transport_respond(r, &resp);
}

static void in_done(void *arg, const struct rd_envelope_result *res)
{
	struct in_envelope *in = arg;

	in->e->inflight--;
	respond(in->r, res);
	free(in);
}

void rd_envelope_on_request(struct rd_envelopes *e, uint64_t peer,
                            const Raftd__PeerRequest *req,
                            struct rd_transport_responder *r)
{
	const Raftd__VShardEnvelope *env = req->vshard;
	struct rd_envelope_result res = {.node = e->self};
	struct rd_envelope_msg m = {0};
	struct in_envelope *in;
	uint64_t leader;
	const char *why = NULL;

	m.vshard = env->vshard;
	m.group = env->group;
	if (env->vshard < RD_VSHARDS)
		m.group = rd_routing_group_of(&e->topo->routing, env->vshard);
	res.group = m.group;
	leader = e->ops->leader(e->ud, m.group);
	if (env->vshard >= RD_VSHARDS) {
		res.code = RAFTD__ERROR_CODE__INVALID;
		res.message = "vshard must be 0..1023";
	} else if (e->stopping) {
		res.code = RAFTD__ERROR_CODE__SHUTTING_DOWN;
		res.message = "node is shutting down";
	} else if (leader != e->self) {
		res.code = leader != 0 ? RAFTD__ERROR_CODE__NOT_LEADER
		                       : RAFTD__ERROR_CODE__NO_LEADER;
		res.leader_hint = leader;
		res.message = leader != 0 ? "not the leader of the vShard's group"
		                          : "no leader known for the vShard's group";
	} else if (env->payload.len > e->max_payload) {
		res.code = RAFTD__ERROR_CODE__TOO_LARGE;
		res.message = "payload over [envelopes] max_payload_bytes";
	} else if (e->inflight >= e->max_inflight) {
		res.code = RAFTD__ERROR_CODE__BUSY;
		res.message = "too many envelopes in flight on the receiving node";
	} else if ((in = malloc(sizeof *in)) == NULL) {
		res.code = RAFTD__ERROR_CODE__INTERNAL;
		res.message = "out of memory";
	} else {
		m.kind = env->kind;
		m.source = peer;
		m.payload = env->payload.data;
		m.len = env->payload.len;
		m.deadline_ns =
		    e->ops->now_ns(e->ud) +
		    (uint64_t)(req->deadline_ms ? req->deadline_ms : 1) * 1000000ull;
		in->e = e;
		in->r = r;
		res.code = e->ops->deliver(e->ud, &m, in_done, in, &why);
		if (res.code == RAFTD__ERROR_CODE__OK) {
			e->inflight++;
			e->stats.received++;
			return;
		}
		free(in);
		res.message = why;
	}
	respond(r, &res);
}
