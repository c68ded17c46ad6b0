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
	f->wait_link = &f->wait_head;
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

static void inflight_link(struct rd_forwarder *f, struct rd_forward *fw)
{
	fw->fl_prev = NULL;
	fw->fl_next = f->inflight;
	if (f->inflight != NULL)
		f->inflight->fl_prev = fw;
	f->inflight = fw;
}

static void inflight_unlink(struct rd_forwarder *f, struct rd_forward *fw)
{
	if (fw->fl_prev != NULL)
		fw->fl_prev->fl_next = fw->fl_next;
	else
		f->inflight = fw->fl_next;
	if (fw->fl_next != NULL)
		fw->fl_next->fl_prev = fw->fl_prev;
	fw->fl_prev = fw->fl_next = NULL;
}

static void wait_push(struct rd_forwarder *f, struct rd_forward *fw)
{
	fw->target = 0;
	fw->next = NULL;
	*f->wait_link = fw;
	f->wait_link = &fw->next;
}

/* Take the whole wait queue, leaving it empty. */
static struct rd_forward *wait_take(struct rd_forwarder *f)
{
	struct rd_forward *fw = f->wait_head;
	f->wait_head = NULL;
	f->wait_link = &f->wait_head;
	return fw;
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
	ProtobufCBinaryData *body;
	uint32_t *hops;
	struct rd_forward_call *c = malloc(sizeof *c);
	uint64_t now = f->ops->now_ns(f->ud);
	unsigned ms =
	    fw->deadline_ns > now ? (unsigned)((fw->deadline_ns - now) / 1000000) : 0;
	char msg[RD_ERRMSG_SIZE];

	if (c == NULL || ms == 0 || f->t == NULL)
		goto err;
	c->f = f;
	c->fw = fw;
	if (fw->op != RD_OP_WRITE) {
		kr.group = fw->group;
		kr.stale = fw->op == RD_OP_STALE_READ;
		req.body_case = RAFTD__PEER_REQUEST__BODY_KV_READ;
		req.kv_read = &kr;
		body = &kr.key;
		hops = &kr.hops;
	} else if (fw->group == 0) {
		req.body_case = RAFTD__PEER_REQUEST__BODY_METADATA_PROPOSE;
		req.metadata_propose = &mp;
		body = &mp.data;
		hops = &mp.hops;
	} else {
		dp.group = fw->group;
		req.body_case = RAFTD__PEER_REQUEST__BODY_DATA_PROPOSE;
		req.data_propose = &dp;
		body = &dp.data;
		hops = &dp.hops;
	}
	body->data = (uint8_t *)fw->data;
	body->len = fw->len;
	*hops = fw->hops;
	/* While its RPC is out, the forward belongs to the RPC's callback
	 * (through the call record); the RPC's deadline ends it. */
	fw->target = to;
	fw->call = c;
	if (rd_transport_call(f->t, to, &req, ms, on_reply, c, msg) == 0) {
		inflight_link(f, fw);
		return;
	}
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

	if (to == f->self)
		to = 0; /* the runtime serves it on the next retry */
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

/* The fields every answer body carries; returns the leader hint. */
static uint64_t answer_head(struct rd_result *r, Raftd__ErrorCode code,
                            const char *message, uint64_t hint, uint64_t index)
{
	r->code = code;
	r->message = message;
	r->index = index;
	return hint;
}

/* Decode the leader's answer into *r; returns the leader hint it gave. */
static uint64_t decode_answer(const Raftd__PeerResponse *resp, struct rd_result *r)
{
	const Raftd__MetadataProposeResponse *mp = resp->metadata_propose;
	const Raftd__DataProposeResponse *dp = resp->data_propose;
	const Raftd__KvReadResponse *kr = resp->kv_read;
	uint64_t hint = 0;

	switch (resp->body_case) {
	case RAFTD__PEER_RESPONSE__BODY_METADATA_PROPOSE:
		hint = answer_head(r, mp->error, mp->error_message, mp->leader_hint,
		                   mp->index);
		r->group = 0;
		break;
	case RAFTD__PEER_RESPONSE__BODY_DATA_PROPOSE:
		hint = answer_head(r, dp->error, dp->error_message, dp->leader_hint,
		                   dp->index);
		if (r->code == RAFTD__ERROR_CODE__CAS_FAILED && dp->result.len >= 1) {
			r->has_value = true;
			r->found = dp->result.data[0] != 0;
			r->value = dp->result.data + 1;
			r->value_len = dp->result.len - 1;
		}
		break;
	case RAFTD__PEER_RESPONSE__BODY_KV_READ:
		hint = answer_head(r, kr->error, kr->error_message, kr->leader_hint,
		                   kr->index);
		r->has_value = r->code == RAFTD__ERROR_CODE__OK;
		r->found = kr->found;
		r->value = kr->value.data;
		r->value_len = kr->value.len;
		break;
	default:
		r->code = RAFTD__ERROR_CODE__INTERNAL;
		r->message = "unexpected answer from the leader";
		break;
	}
	return hint;
}

static void set_hint(struct rd_forwarder *f, uint64_t group, uint64_t hint)
{
	if (group >= f->n_hints) {
		size_t n = f->n_hints ? f->n_hints : 16;
		while (n <= group)
			n *= 2;
		uint64_t *h = realloc(f->hints, n * sizeof *h);
		if (h == NULL)
			return; /* only a hint */
		memset(h + f->n_hints, 0, (n - f->n_hints) * sizeof *h);
		f->hints = h;
		f->n_hints = n;
	}
	f->hints[group] = hint;
}

uint64_t rd_forward_hint(const struct rd_forwarder *f, uint64_t group)
{
	return group < f->n_hints ? f->hints[group] : 0;
}

void rd_forward_free(struct rd_forwarder *f)
{
	free(f->hints);
	f->hints = NULL;
	f->n_hints = 0;
}

/* Whether an answer code says the asked node did not apply the request
 * (it never proposed it, or its entry lost to another leader's), so that
 * sending it again, even without a session, cannot apply it twice. */
static bool not_applied_retry(int code)
{
	return code == RAFTD__ERROR_CODE__NOT_LEADER ||
	       code == RAFTD__ERROR_CODE__NO_LEADER ||
	       code == RAFTD__ERROR_CODE__NOT_READY;
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
	fw->call = NULL;
	inflight_unlink(f, fw);

	struct rd_result r = {.group = fw->group};
	if (err != 0 || f->stopping) {
		/* A lost connection (any failure but the deadline): the
		 * outcome is unknown. A retry-safe forward waits for a leader
		 * (this one, reconnected, or a new one) and goes again. */
		if (!f->stopping && err != RD_ETIMEDOUT && fw->retry_safe &&
		    fw->deadline_ns > f->ops->now_ns(f->ud)) {
			fw->unknown = true;
			fw->hops = 0;
			wait_push(f, fw);
			return;
		}
		r.code = rd_err_to_wire(f->stopping           ? RD_ESHUTDOWN
		                        : err == RD_ETIMEDOUT ? RD_ETIMEDOUT
		                                              : RD_ECLOSED);
		r.message = errmsg;
		finish(f, fw, &r);
		return;
	}
	if (resp->error != RAFTD__ERROR_CODE__OK) {
		/* Refused before serving (NOT_READY, SHUTTING_DOWN): not applied. */
		if (resp->error == RAFTD__ERROR_CODE__NOT_READY ||
		    resp->error == RAFTD__ERROR_CODE__SHUTTING_DOWN) {
			fw->hops = 0;
			wait_push(f, fw);
			return;
		}
		r.code = resp->error;
		r.message = resp->error_message;
		finish(f, fw, &r);
		return;
	}
	hint = decode_answer(resp, &r);
	if (not_applied_retry(r.code)) {
		set_hint(f, fw->group, hint != f->self ? hint : 0);
		if (hint != 0 && hint != f->self && hint != fw->target &&
		    fw->hops + 1 < RD_FORWARD_HOPS) {
			fw->hops++;
			send_to(f, fw, hint);
			return;
		}
		/* Wait for a leader to be known, then go again (retry): the
		 * deadline bounds the waiting. */
		fw->hops = 0;
		wait_push(f, fw);
		return;
	}
	finish(f, fw, &r);
}

void rd_forward_leader_changed(struct rd_forwarder *f, uint64_t group)
{
	struct rd_forward *fw = f->inflight;
	uint64_t leader = f->ops->target(f->ud, group);

	while (fw != NULL) {
		struct rd_forward *next = fw->fl_next;
		if (fw->group == group && fw->retry_safe && fw->target != leader) {
			fw->call->fw = NULL; /* a late answer is dropped */
			fw->call = NULL;
			inflight_unlink(f, fw);
			fw->unknown = true;
			fw->hops = 0;
			wait_push(f, fw);
		}
		fw = next;
	}
}

/* One pass over the wait queue, taken as it is now (a forward that waits
 * again stays for the next pass rather than spinning here): with
 * `resubmit`, hand those whose group has a leader now back to the runtime;
 * without, end those whose deadline is at or before `now_ns` with
 * NO_LEADER. */
static void sweep(struct rd_forwarder *f, uint64_t now_ns, bool resubmit)
{
	struct rd_forward *fw = wait_take(f);

	while (fw != NULL) {
		struct rd_forward *next = fw->next;
		fw->next = NULL;
		if (!resubmit && fw->deadline_ns <= now_ns) {
			/* NO_LEADER says "not applied": only true when no
			 * attempt may have reached a leader. */
			struct rd_result r = {
			    .code = fw->unknown ? RAFTD__ERROR_CODE__TIMEOUT
			                        : RAFTD__ERROR_CODE__NO_LEADER,
			    .message = fw->unknown
			                   ? "deadline passed while following the "
			                     "leader; outcome unknown"
			                   : "no leader known before the deadline",
			    .group = fw->group};
			finish(f, fw, &r);
		} else if (resubmit && f->ops->target(f->ud, fw->group) != 0) {
			f->ops->resubmit(f->ud, fw);
		} else {
			wait_push(f, fw);
		}
		fw = next;
	}
}

void rd_forward_retry(struct rd_forwarder *f)
{
	sweep(f, 0, true);
}

void rd_forward_expire(struct rd_forwarder *f, uint64_t now_ns)
{
	sweep(f, now_ns, false);
}

void rd_forward_fail_all(struct rd_forwarder *f, const struct rd_result *res)
{
	struct rd_forward *fw = wait_take(f);

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
			if (res->value_len > 0) /* an absent key has no value */
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
