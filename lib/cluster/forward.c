/*
 * Forwarding to a group's leader, both sides: see forward.h.
 *
 * Happy path (asking side): rd_forward_start finds the leader through
 * ops->target and sends a PeerRequest with what is left of the deadline;
 * the answer is decoded into a struct rd_result and handed back through
 * ops->done. Leader side: a PeerRequest becomes a struct
 * rd_forward_request for ops->serve; the runtime's outcome comes back
 * through rd_forward_answer and leaves as the matching PeerResponse.
 * Failure modes: see forward.h.
 */
#include "cluster/forward.h"

#include <stdlib.h>
#include <string.h>

#include "cluster/topology.h"
#include "raftd.pb-c.h"
#include "transport/transport.h"
#include "transport/wire.h"
#include "util/err.h"
#include "util/log.h"

/* The context of one RPC; outlives its forward when detached. */
struct rd_forward_call {
	struct rd_forwarder *f;
	struct rd_forward *fw; /* NULL once detached: the answer is ignored */
};

struct rd_forward_reply {
	struct rd_transport_responder *r;
	Raftd__PeerRequest__BodyCase kind;
};

void rd_forward_init(struct rd_forwarder *f, const struct rd_forward_ops *ops, void *ud,
                     uint64_t self, const struct rd_topology *topo,
                     unsigned default_timeout_ms)
{
	memset(f, 0, sizeof *f);
	f->ops = ops;
	f->ud = ud;
	f->self = self;
	f->topo = topo;
	f->default_timeout_ms = default_timeout_ms;
}

void rd_forward_attach(struct rd_forwarder *f, struct rd_transport *t)
{
	f->t = t;
}

void rd_forward_shutdown(struct rd_forwarder *f)
{
	f->stopping = true;
}

/* ---- the lists ---------------------------------------------------------------- */

static void wait_push(struct rd_forwarder *f, struct rd_forward *fw)
{
	fw->target = 0;
	fw->next = NULL;
	fw->prev = NULL;
	if (f->wait_tail != NULL)
		f->wait_tail->next = fw;
	else
		f->wait_head = fw;
	f->wait_tail = fw;
}

static void flight_add(struct rd_forwarder *f, struct rd_forward *fw)
{
	fw->prev = NULL;
	fw->next = f->in_flight;
	if (f->in_flight != NULL)
		f->in_flight->prev = fw;
	f->in_flight = fw;
}

static void flight_remove(struct rd_forwarder *f, struct rd_forward *fw)
{
	if (fw->prev != NULL)
		fw->prev->next = fw->next;
	else
		f->in_flight = fw->next;
	if (fw->next != NULL)
		fw->next->prev = fw->prev;
	fw->next = fw->prev = NULL;
}

static void finish(struct rd_forwarder *f, struct rd_forward *fw,
                   const struct rd_result *res)
{
	fw->call = NULL;
	f->ops->done(f->ud, fw, res);
}

/* ---- the asking side ------------------------------------------------------------ */

static void on_reply(void *arg, int err, const Raftd__PeerResponse *resp,
                     const char *errmsg);

/* Send fw to node `to`; on a local failure, wait for the next retry or end
 * with TIMEOUT. */
static void send_to(struct rd_forwarder *f, struct rd_forward *fw, uint64_t to)
{
	Raftd__PeerRequest req = RAFTD__PEER_REQUEST__INIT;
	Raftd__MetadataProposeRequest mp = RAFTD__METADATA_PROPOSE_REQUEST__INIT;
	Raftd__DataProposeRequest dp = RAFTD__DATA_PROPOSE_REQUEST__INIT;
	Raftd__KvReadRequest kr = RAFTD__KV_READ_REQUEST__INIT;
	struct rd_forward_call *c = malloc(sizeof *c);
	uint64_t now = f->ops->now_ns(f->ud);
	unsigned ms =
	    fw->deadline_ns > now ? (unsigned)((fw->deadline_ns - now) / 1000000) : 0;
	char msg[RD_ERRMSG_SIZE];

	if (c == NULL || ms == 0 || f->t == NULL)
		goto err;
	c->f = f;
	c->fw = fw;
	if (fw->op == RD_OP_WRITE && fw->group == 0) {
		mp.data.data = (uint8_t *)fw->data;
		mp.data.len = fw->len;
		mp.hops = fw->hops;
		req.body_case = RAFTD__PEER_REQUEST__BODY_METADATA_PROPOSE;
		req.metadata_propose = &mp;
	} else if (fw->op == RD_OP_WRITE) {
		dp.group = fw->group;
		dp.data.data = (uint8_t *)fw->data;
		dp.data.len = fw->len;
		dp.hops = fw->hops;
		req.body_case = RAFTD__PEER_REQUEST__BODY_DATA_PROPOSE;
		req.data_propose = &dp;
	} else {
		kr.group = fw->group;
		kr.key.data = (uint8_t *)fw->data;
		kr.key.len = fw->len;
		kr.stale = fw->op == RD_OP_STALE_READ;
		kr.hops = fw->hops;
		req.body_case = RAFTD__PEER_REQUEST__BODY_KV_READ;
		req.kv_read = &kr;
	}
	/* While its RPC is out, the forward belongs to the RPC's callback
	 * (through the call record); the RPC's deadline ends it. */
	fw->target = to;
	fw->call = c;
	flight_add(f, fw);
	if (rd_transport_call(f->t, to, &req, ms, on_reply, c, msg) == 0)
		return;
	flight_remove(f, fw);
	fw->call = NULL;
	rd_log_debug("forward to node %llu failed: %s", (unsigned long long)to, msg);
err:
	free(c);
	fw->target = 0;
	if (ms == 0) {
		struct rd_result r = {.code = RAFTD__ERROR_CODE__TIMEOUT,
		                      .group = fw->group,
		                      .message = "deadline passed"};
		finish(f, fw, &r);
		return;
	}
	/* Try again on the next tick, or time out. */
	wait_push(f, fw);
}

bool rd_forward_start(struct rd_forwarder *f, struct rd_forward *fw)
{
	uint64_t to = f->ops->target(f->ud, fw->group);

	fw->target = to;
	if (fw->no_forward) {
		struct rd_result r = {.code = to != 0 ? RAFTD__ERROR_CODE__NOT_LEADER
		                                      : RAFTD__ERROR_CODE__NO_LEADER,
		                      .leader_hint = to,
		                      .group = fw->group,
		                      .message =
		                          to != 0 ? "not the leader" : "no leader known"};
		finish(f, fw, &r);
		return false;
	}
	if (to == 0) {
		/* No leader known (or we are mid-election): wait for one. */
		wait_push(f, fw);
		return false;
	}
	send_to(f, fw, to);
	return true;
}

/* Decode the leader's answer into *r; returns the leader hint it gave. */
static uint64_t decode_answer(const Raftd__PeerResponse *resp, struct rd_result *r)
{
	uint64_t hint = 0;

	switch (resp->body_case) {
	case RAFTD__PEER_RESPONSE__BODY_METADATA_PROPOSE:
		r->code = resp->metadata_propose->error;
		r->message = resp->metadata_propose->error_message;
		hint = resp->metadata_propose->leader_hint;
		r->index = resp->metadata_propose->index;
		r->group = 0;
		break;
	case RAFTD__PEER_RESPONSE__BODY_DATA_PROPOSE:
		r->code = resp->data_propose->error;
		r->message = resp->data_propose->error_message;
		hint = resp->data_propose->leader_hint;
		r->index = resp->data_propose->index;
		if (r->code == RAFTD__ERROR_CODE__CAS_FAILED &&
		    resp->data_propose->result.len >= 1) {
			r->has_value = true;
			r->found = resp->data_propose->result.data[0] != 0;
			r->value = resp->data_propose->result.data + 1;
			r->value_len = resp->data_propose->result.len - 1;
		}
		break;
	case RAFTD__PEER_RESPONSE__BODY_KV_READ:
		r->code = resp->kv_read->error;
		r->message = resp->kv_read->error_message;
		hint = resp->kv_read->leader_hint;
		r->index = resp->kv_read->index;
		r->has_value = r->code == RAFTD__ERROR_CODE__OK;
		r->found = resp->kv_read->found;
		r->value = resp->kv_read->value.data;
		r->value_len = resp->kv_read->value.len;
		break;
	default:
		r->code = RAFTD__ERROR_CODE__INTERNAL;
		r->message = "unexpected answer from the leader";
		break;
	}
	return hint;
}

static void on_reply(void *arg, int err, const Raftd__PeerResponse *resp,
                     const char *errmsg)
{
	struct rd_forward_call *c = arg;
	struct rd_forwarder *f = c->f;
	struct rd_forward *fw = c->fw;
	uint64_t hint;

	free(c);
	if (fw == NULL)
		return; /* detached: the forward went on without this call */
	flight_remove(f, fw);
	fw->call = NULL;

	struct rd_result r = {.group = fw->group};
	if (err != 0 || f->stopping) {
		/* A call that failed for any reason but its deadline counts as
		 * a lost connection: the peer is unavailable. */
		r.code = rd_err_to_wire(f->stopping           ? RD_ESHUTDOWN
		                        : err == RD_ETIMEDOUT ? RD_ETIMEDOUT
		                                              : RD_ECLOSED);
		r.message = errmsg;
		finish(f, fw, &r);
		return;
	}
	if (resp->error != RAFTD__ERROR_CODE__OK) {
		r.code = resp->error;
		r.message = resp->error_message;
		finish(f, fw, &r);
		return;
	}
	hint = decode_answer(resp, &r);
	if (r.code == RAFTD__ERROR_CODE__NOT_LEADER ||
	    r.code == RAFTD__ERROR_CODE__NO_LEADER) {
		fw->target = 0;
		if (hint != 0 && hint != f->self && fw->hops + 1 < RD_FORWARD_HOPS) {
			fw->hops++;
			send_to(f, fw, hint);
			return;
		}
		if (fw->hops + 1 < RD_FORWARD_HOPS) {
			/* Wait for a leader to be known, then retry (tick). */
			fw->hops++;
			wait_push(f, fw);
			return;
		}
		r.leader_hint = hint;
	}
	finish(f, fw, &r);
}

void rd_forward_retry(struct rd_forwarder *f)
{
	/* Take the queue as it is now: a retry that fails again goes back into
	 * the queue and waits for the next call rather than spinning here. */
	struct rd_forward *fw = f->wait_head;

	f->wait_head = f->wait_tail = NULL;
	while (fw != NULL) {
		struct rd_forward *next = fw->next;
		if (f->ops->target(f->ud, fw->group) != 0) {
			fw->next = NULL;
			f->ops->resubmit(f->ud, fw);
		} else {
			wait_push(f, fw);
		}
		fw = next;
	}
}

void rd_forward_expire(struct rd_forwarder *f, uint64_t now_ns)
{
	struct rd_forward *prev = NULL, *fw = f->wait_head;

	while (fw != NULL) {
		struct rd_forward *next = fw->next;
		if (fw->deadline_ns <= now_ns) {
			struct rd_result r = {.code = RAFTD__ERROR_CODE__NO_LEADER,
			                      .message =
			                          "no leader known before the deadline",
			                      .group = fw->group};
			if (prev != NULL)
				prev->next = next;
			else
				f->wait_head = next;
			if (f->wait_tail == fw)
				f->wait_tail = prev;
			finish(f, fw, &r);
		} else {
			prev = fw;
		}
		fw = next;
	}
}

void rd_forward_fail_all(struct rd_forwarder *f, const struct rd_result *res)
{
	struct rd_forward *fw = f->wait_head;

	f->wait_head = f->wait_tail = NULL;
	while (fw != NULL) {
		struct rd_forward *next = fw->next;
		finish(f, fw, res);
		fw = next;
	}
}

/* ---- the leader's side ------------------------------------------------------------ */

void rd_forward_answer(void *reply, uint64_t request_id, const struct rd_result *res)
{
	struct rd_forward_reply *pr = reply;
	Raftd__PeerResponse resp = RAFTD__PEER_RESPONSE__INIT;
	Raftd__MetadataProposeResponse mp = RAFTD__METADATA_PROPOSE_RESPONSE__INIT;
	Raftd__DataProposeResponse dp = RAFTD__DATA_PROPOSE_RESPONSE__INIT;
	Raftd__KvReadResponse kr = RAFTD__KV_READ_RESPONSE__INIT;
	char *msgtxt = (char *)(res->message != NULL ? res->message : "");
	uint8_t *result = NULL;

	(void)request_id;
	switch (pr->kind) {
	case RAFTD__PEER_REQUEST__BODY_METADATA_PROPOSE:
		mp.error = (Raftd__ErrorCode)res->code;
		mp.error_message = msgtxt;
		mp.leader_hint = res->leader_hint;
		mp.index = res->index;
		resp.body_case = RAFTD__PEER_RESPONSE__BODY_METADATA_PROPOSE;
		resp.metadata_propose = &mp;
		break;
	case RAFTD__PEER_REQUEST__BODY_DATA_PROPOSE:
		dp.error = (Raftd__ErrorCode)res->code;
		dp.error_message = msgtxt;
		dp.leader_hint = res->leader_hint;
		dp.group = res->group;
		dp.index = res->index;
		if (res->has_value && (result = malloc(res->value_len + 1)) != NULL) {
			result[0] = res->found;
			memcpy(result + 1, res->value, res->value_len);
			dp.result.data = result;
			dp.result.len = res->value_len + 1;
		}
		resp.body_case = RAFTD__PEER_RESPONSE__BODY_DATA_PROPOSE;
		resp.data_propose = &dp;
		break;
	default:
		kr.error = (Raftd__ErrorCode)res->code;
		kr.error_message = msgtxt;
		kr.leader_hint = res->leader_hint;
		kr.found = res->found;
		kr.value.data = (uint8_t *)res->value;
		kr.value.len = res->value_len;
		kr.index = res->index;
		resp.body_case = RAFTD__PEER_RESPONSE__BODY_KV_READ;
		resp.kv_read = &kr;
		break;
	}
	rd_transport_respond(pr->r, &resp);
	free(result);
	free(pr);
}

void rd_forward_on_request(struct rd_forwarder *f, uint64_t peer,
                           const Raftd__PeerRequest *req,
                           struct rd_transport_responder *r)
{
	Raftd__PeerResponse resp = RAFTD__PEER_RESPONSE__INIT;
	Raftd__Pong pong = RAFTD__PONG__INIT;
	const ProtobufCBinaryData *data;
	struct rd_forward_request fr = {.op = RD_OP_WRITE};
	struct rd_forward_reply *pr;
	int code;

	(void)peer;
	switch (req->body_case) {
	case RAFTD__PEER_REQUEST__BODY_PING:
		pong.topology_version = f->topo->routing.version;
		pong.sent_us = req->ping->sent_us;
		resp.body_case = RAFTD__PEER_RESPONSE__BODY_PONG;
		resp.pong = &pong;
		rd_transport_respond(r, &resp);
		return;
	case RAFTD__PEER_REQUEST__BODY_METADATA_PROPOSE:
		fr.group = 0;
		data = &req->metadata_propose->data;
		break;
	case RAFTD__PEER_REQUEST__BODY_DATA_PROPOSE:
		fr.group = req->data_propose->group;
		if (fr.group == 0 && req->data_propose->vshard < RD_VSHARDS)
			fr.group = rd_routing_group_of(&f->topo->routing,
			                               req->data_propose->vshard);
		data = &req->data_propose->data;
		break;
	case RAFTD__PEER_REQUEST__BODY_KV_READ:
		fr.group = req->kv_read->group;
		data = &req->kv_read->key;
		fr.op = req->kv_read->stale ? RD_OP_STALE_READ : RD_OP_READ;
		break;
	default:
		resp.error = RAFTD__ERROR_CODE__INVALID;
		resp.error_message = (char *)"request kind not served by this node";
		rd_transport_respond(r, &resp);
		return;
	}
	fr.data = data->data;
	fr.len = data->len;
	fr.deadline_ns =
	    f->ops->now_ns(f->ud) +
	    (uint64_t)(req->deadline_ms ? req->deadline_ms : f->default_timeout_ms) *
	        1000000ull;
	pr = malloc(sizeof *pr);
	if (pr == NULL) {
		resp.error = RAFTD__ERROR_CODE__INTERNAL;
		rd_transport_respond(r, &resp);
		return;
	}
	pr->r = r;
	pr->kind = req->body_case;
	code = f->ops->serve(f->ud, &fr, pr);
	if (code != RAFTD__ERROR_CODE__OK) {
		free(pr);
		resp.error = (Raftd__ErrorCode)code;
		rd_transport_respond(r, &resp);
	}
}
