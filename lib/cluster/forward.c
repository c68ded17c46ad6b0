/*
 * Forwarding to a group's leader, the asking side (the leader's side, which
 * serves a peer's forwarded requests, is forward_serve.c): see forward.h.
 *
 * Happy path: rd_forward_start finds the leader through ops->target and
 * queues the request for it; rd_forward_flush sends each node's queue in
 * one RPC with what is left of each deadline; the answer is decoded into
 * a struct rd_result and handed back through ops->done.
 * Failure modes: see forward.h.
 */
#include "cluster/forward.h"

#include <stdlib.h>
#include <string.h>

#include "raftd.pb-c.h"
#include "transport/transport.h"
#include "transport/wire.h"
#include "util/err.h"
#include "util/fatal.h"
#include "util/list.h"
#include "util/log.h"

/* The context of one RPC; outlives its forwards when detached. */
struct rd_forward_call {
	struct rd_forwarder *f;
	bool batch;              /* sent as a ForwardBatchRequest */
	size_t n;                /* items */
	struct rd_forward *fw[]; /* [n]; a slot is NULL once detached */
};

void rd_forward_init(struct rd_forwarder *f, const struct rd_forward_ops *ops, void *ud,
                     uint64_t self, const struct rd_topology *topo,
                     unsigned default_timeout_ms)
{
	*f = (struct rd_forwarder){.ops = ops,
	                           .ud = ud,
	                           .self = self,
	                           .topo = topo,
	                           .default_timeout_ms = default_timeout_ms,
	                           .max_batch_bytes = 1u << 20};
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
	RD_LIST_UNLINK(f->inflight, fw, fl_prev, fl_next);
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

/* The request message of one forward, with its body. */
struct item_msg {
	Raftd__PeerRequest req;
	Raftd__MetadataProposeRequest mp;
	Raftd__DataProposeRequest dp;
	Raftd__KvReadRequest kr;
};

/* Fill m with fw's request (borrowing fw's bytes) and relative deadline. */
static void fill_request(struct item_msg *m, const struct rd_forward *fw, unsigned ms)
{
	ProtobufCBinaryData *body;
	uint32_t *hops;

	raftd__peer_request__init(&m->req);
	raftd__metadata_propose_request__init(&m->mp);
	raftd__data_propose_request__init(&m->dp);
	raftd__kv_read_request__init(&m->kr);
	m->req.deadline_ms = ms;
	if (fw->op != RD_OP_WRITE) {
		m->kr.group = fw->group;
		m->kr.stale = fw->op == RD_OP_STALE_READ;
		m->req.body_case = RAFTD__PEER_REQUEST__BODY_KV_READ;
		m->req.kv_read = &m->kr;
		body = &m->kr.key;
		hops = &m->kr.hops;
	} else if (fw->group == 0) {
		m->req.body_case = RAFTD__PEER_REQUEST__BODY_METADATA_PROPOSE;
		m->req.metadata_propose = &m->mp;
		body = &m->mp.data;
		hops = &m->mp.hops;
	} else {
		m->dp.group = fw->group;
		m->req.body_case = RAFTD__PEER_REQUEST__BODY_DATA_PROPOSE;
		m->req.data_propose = &m->dp;
		body = &m->dp.data;
		hops = &m->dp.hops;
	}
	body->data = (uint8_t *)fw->data;
	body->len = fw->len;
	*hops = fw->hops;
}

/* The send queue for node `to`, made on first use. */
static struct rd_forward_out *out_of(struct rd_forwarder *f, uint64_t to)
{
	for (size_t i = 0; i < f->n_out; i++)
		if (f->out[i].to == to)
			return &f->out[i];
	f->out = rd_xrealloc(f->out, (f->n_out + 1) * sizeof *f->out);
	struct rd_forward_out *o = &f->out[f->n_out++];
	o->to = to;
	o->head = o->tail = NULL;
	o->n = 0;
	return o;
}

/* Queue fw for node `to`; it leaves at the next rd_forward_flush. */
static void send_to(struct rd_forwarder *f, struct rd_forward *fw, uint64_t to)
{
	struct rd_forward_out *o = out_of(f, to);

	fw->target = to;
	fw->call = NULL;
	RD_QUEUE_PUSH(o->head, o->tail, fw, next);
	o->n++;
	if (f->ops->wake != NULL)
		f->ops->wake(f->ud);
}

static unsigned ms_left(const struct rd_forward *fw, uint64_t now)
{
	uint64_t ms = fw->deadline_ns > now ? (fw->deadline_ns - now) / 1000000 : 0;
	return ms > UINT32_MAX ? UINT32_MAX : (unsigned)ms;
}

/* Send fw[0..n) (n >= 1, every one with time left) to node `to` in one
 * RPC: a lone request for one, a ForwardBatchRequest for more. On a local
 * failure each waits for the next retry. */
static void send_call(struct rd_forwarder *f, uint64_t to, struct rd_forward **fw,
                      size_t n, const unsigned *ms)
{
	struct rd_forward_call *c = rd_xrealloc(NULL, sizeof *c + n * sizeof *c->fw);
	struct item_msg *m = rd_xrealloc(NULL, n * sizeof *m);
	Raftd__PeerRequest **items = NULL, batch = RAFTD__PEER_REQUEST__INIT;
	Raftd__ForwardBatchRequest fb = RAFTD__FORWARD_BATCH_REQUEST__INIT;
	const Raftd__PeerRequest *req = &m[0].req;
	unsigned call_ms = 0;
	char msg[RD_ERRMSG_SIZE];

	c->f = f;
	c->batch = n > 1;
	c->n = n;
	for (size_t i = 0; i < n; i++) {
		fill_request(&m[i], fw[i], ms[i]);
		if (ms[i] > call_ms)
			call_ms = ms[i];
		c->fw[i] = fw[i];
		fw[i]->target = to;
		fw[i]->call = c;
		fw[i]->slot = (uint32_t)i;
	}
	if (c->batch) {
		items = rd_xrealloc(NULL, n * sizeof *items);
		for (size_t i = 0; i < n; i++)
			items[i] = &m[i].req;
		fb.n_items = n;
		fb.items = items;
		batch.body_case = RAFTD__PEER_REQUEST__BODY_FORWARD_BATCH;
		batch.forward_batch = &fb;
		req = &batch;
	}
	/* While its RPC is out, a forward belongs to the RPC's callback
	 * (through the call record); the RPC's deadline, the latest of its
	 * items', ends it at the latest (rd_forward_expire ends an item
	 * sooner). */
	int rv = f->t != NULL
	             ? rd_transport_call(f->t, to, req, call_ms, on_reply, c, msg)
	             : RD_ECLOSED;
	free(items);
	free(m);
	if (rv == 0) {
		for (size_t i = 0; i < n; i++)
			inflight_link(f, fw[i]);
		if (c->batch) {
			f->stats.batches_sent++;
			f->stats.batched_items += n;
		}
		return;
	}
	if (f->t != NULL)
		rd_log_debug("forward to node %llu failed: %s", (unsigned long long)to,
		             msg);
	free(c);
	for (size_t i = 0; i < n; i++) {
		fw[i]->call = NULL;
		wait_push(f, fw[i]); /* try again on the next tick, or time out */
	}
}

void rd_forward_flush(struct rd_forwarder *f)
{
	uint64_t now = f->ops->now_ns(f->ud);

	for (size_t i = 0; i < f->n_out; i++) {
		/* Taken whole: what a callback queues meanwhile (f->out may
		 * move) waits for the next flush. */
		struct rd_forward_out *o = &f->out[i];
		struct rd_forward *fw = o->head;
		uint64_t to = o->to;
		size_t cap = o->n < RD_FORWARD_BATCH_MAX ? o->n : RD_FORWARD_BATCH_MAX;
		struct rd_forward **pick;
		unsigned *ms;

		if (fw == NULL)
			continue;
		o->head = o->tail = NULL;
		o->n = 0;
		pick = rd_xrealloc(NULL, cap * sizeof *pick);
		ms = rd_xrealloc(NULL, cap * sizeof *ms);
		/* Cut the queue, in order, into calls within the caps. Only
		 * writes share a call: a read's answer carries a value of any
		 * size, so the answers to a batch of reads might not fit one
		 * frame; each read goes alone. */
		size_t k = 0, bytes = 0;
		while (fw != NULL) {
			struct rd_forward *next = fw->next;
			size_t b = fw->len + RD_FORWARD_ITEM_OVERHEAD;
			unsigned left = ms_left(fw, now);

			fw->next = NULL;
			if (left == 0) {
				struct rd_result r = {.code = RAFTD__ERROR_CODE__TIMEOUT,
				                      .group = fw->group,
				                      .message = "deadline passed"};
				fw->target = 0;
				finish(f, fw, &r);
			} else if (fw->op != RD_OP_WRITE) {
				send_call(f, to, &fw, 1, &left);
			} else {
				if (k == cap ||
				    (k > 0 && bytes + b > f->max_batch_bytes)) {
					send_call(f, to, pick, k, ms);
					k = bytes = 0;
				}
				bytes += b;
				ms[k] = left;
				pick[k++] = fw;
			}
			fw = next;
		}
		if (k > 0)
			send_call(f, to, pick, k, ms);
		free(pick);
		free(ms);
	}
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
	free(f->out);
	f->out = NULL;
	f->n_out = 0;
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

/* The outcome of fw's attempt: err and errmsg as the transport gave them,
 * or err 0 and `resp`, the answer to fw's own request. */
static void settle(struct rd_forwarder *f, struct rd_forward *fw, int err,
                   const Raftd__PeerResponse *resp, const char *errmsg)
{
	uint64_t hint;
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

static void on_reply(void *arg, int err, const Raftd__PeerResponse *resp,
                     const char *errmsg)
{
	struct rd_forward_call *c = arg;
	struct rd_forwarder *f = c->f;
	const Raftd__ForwardBatchResponse *fb = NULL;

	/* A batch's answer holds one answer per item, in order; any other
	 * shape is a peer's bug or hostility: every item's outcome is then
	 * unknown, as with a malformed response (RD_EPROTO). A refusal of
	 * the whole batch (resp->error) is every item's. */
	if (err == 0 && c->batch && resp->error == RAFTD__ERROR_CODE__OK) {
		fb = resp->body_case == RAFTD__PEER_RESPONSE__BODY_FORWARD_BATCH
		         ? resp->forward_batch
		         : NULL;
		if (fb == NULL || fb->n_answers != c->n) {
			f->stats.batches_rejected++;
			rd_log_warn(
			    "forward batch answer malformed: items=%zu answers=%zu", c->n,
			    fb != NULL ? fb->n_answers : 0);
			err = RD_EPROTO;
			errmsg = "malformed batch answer";
			fb = NULL;
		}
	}
	for (size_t i = 0; i < c->n; i++) {
		struct rd_forward *fw = c->fw[i];
		if (fw == NULL)
			continue; /* detached: the forward went on without this call */
		fw->call = NULL;
		inflight_unlink(f, fw);
		settle(f, fw, err, fb != NULL ? fb->answers[i] : resp, errmsg);
	}
	free(c);
}

void rd_forward_leader_changed(struct rd_forwarder *f, uint64_t group)
{
	struct rd_forward *fw = f->inflight;
	uint64_t leader = f->ops->target(f->ud, group);

	while (fw != NULL) {
		struct rd_forward *next = fw->fl_next;
		if (fw->group == group && fw->retry_safe && fw->target != leader) {
			fw->call->fw[fw->slot] = NULL; /* a late answer is dropped */
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
	struct rd_forward *fw = f->inflight;

	sweep(f, now_ns, false);
	/* A batch's RPC lasts as long as its latest item: an item past its
	 * own deadline ends now, its outcome unknown like a lone request's
	 * at its RPC's deadline. */
	while (fw != NULL) {
		struct rd_forward *next = fw->fl_next;
		if (fw->call->batch && fw->deadline_ns <= now_ns) {
			struct rd_result r = {
			    .code = rd_err_to_wire(RD_ETIMEDOUT),
			    .group = fw->group,
			    .message = "deadline passed waiting for the leader's answer"};
			fw->call->fw[fw->slot] = NULL;
			inflight_unlink(f, fw);
			fw->target = 0;
			finish(f, fw, &r);
		}
		fw = next;
	}
}

void rd_forward_fail_all(struct rd_forwarder *f, const struct rd_result *res)
{
	struct rd_forward *fw = wait_take(f);

	while (fw != NULL) {
		struct rd_forward *next = fw->next;
		finish(f, fw, res);
		fw = next;
	}
	for (size_t i = 0; i < f->n_out; i++) {
		fw = f->out[i].head;
		f->out[i].head = f->out[i].tail = NULL;
		f->out[i].n = 0;
		while (fw != NULL) {
			struct rd_forward *next = fw->next;
			fw->next = NULL;
			fw->target = 0;
			finish(f, fw, res);
			fw = next;
		}
	}
}
