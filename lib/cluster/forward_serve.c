/*
 * Forwarding, the leader's side: a peer's forwarded write or read (a lone
 * PeerRequest or a ForwardBatchRequest of writes) becomes a struct
 * rd_forward_request for ops->serve, and the runtime's outcome, handed
 * back through rd_forward_answer, leaves as the matching PeerResponse (a
 * batch's once every item has its outcome). The asking side is forward.c;
 * the contract of both is forward.h.
 *
 * Happy path: rd_forward_on_request checks the body, serve_one hands it
 * to the runtime, rd_forward_answer encodes the answer and responds.
 * Failure modes: a body this node does not serve, or a batch that is
 * empty, too large or holds anything but forwarded writes and reads,
 * answers INVALID (a batch is counted in stats.batches_rejected); a
 * request the runtime refuses before serving answers its code at the top
 * level; a batch's answer that would not fit one frame loses CAS_FAILED's
 * current values until it fits.
 */
#include "cluster/forward.h"

#include <stdlib.h>
#include <string.h>

#include "cluster/topology.h"
#include "raftd.pb-c.h"
#include "transport/transport.h"
#include "util/fatal.h"
#include "util/log.h"

/* A batch being served: its answers fill in as the items' outcomes come. */
struct rd_forward_batch {
	struct rd_transport_responder *r;
	size_t limit;   /* the answer's encoded size at most */
	size_t n, left; /* items; outcomes still missing (+1 while serving) */
	struct rd_forward_answer_msg *a; /* [n] */
};

/* One answer as protobuf-c wants it, with what it owns. */
struct rd_forward_answer_msg {
	Raftd__PeerResponse resp;
	Raftd__MetadataProposeResponse mp;
	Raftd__DataProposeResponse dp;
	Raftd__KvReadResponse kr;
	uint8_t *result; /* dp.result's bytes, owned */
	uint8_t *value;  /* kr.value's bytes, owned when copied */
	char *message;   /* the error message, owned when copied */
};

struct rd_forward_reply {
	struct rd_transport_responder *r; /* a lone request; NULL in a batch */
	Raftd__PeerRequest__BodyCase kind;
	struct rd_forward_batch *b; /* the batch the item is in, or NULL */
	size_t slot;
};

/* Fill a with the answer to a request of `kind` with outcome res; with
 * `copy`, a's message and bytes are its own (res is valid only now). */
static void fill_answer(struct rd_forward_answer_msg *a,
                        Raftd__PeerRequest__BodyCase kind, const struct rd_result *res,
                        bool copy)
{
	const char *text = res->message != NULL ? res->message : "";
	char *msgtxt = copy && *text != '\0' ? (a->message = strdup(text)) : NULL;

	if (msgtxt == NULL)
		msgtxt = (char *)(copy ? "" : text);
	raftd__peer_response__init(&a->resp);
	switch (kind) {
	case RAFTD__PEER_REQUEST__BODY_METADATA_PROPOSE:
		raftd__metadata_propose_response__init(&a->mp);
		a->mp.error = (Raftd__ErrorCode)res->code;
		a->mp.error_message = msgtxt;
		a->mp.leader_hint = res->leader_hint;
		a->mp.index = res->index;
		a->resp.body_case = RAFTD__PEER_RESPONSE__BODY_METADATA_PROPOSE;
		a->resp.metadata_propose = &a->mp;
		break;
	case RAFTD__PEER_REQUEST__BODY_DATA_PROPOSE:
		raftd__data_propose_response__init(&a->dp);
		a->dp.error = (Raftd__ErrorCode)res->code;
		a->dp.error_message = msgtxt;
		a->dp.leader_hint = res->leader_hint;
		a->dp.group = res->group;
		a->dp.index = res->index;
		if (res->has_value && (a->result = malloc(res->value_len + 1)) != NULL) {
			a->result[0] = res->found;
			if (res->value_len > 0) /* an absent key has no value */
				memcpy(a->result + 1, res->value, res->value_len);
			a->dp.result.data = a->result;
			a->dp.result.len = res->value_len + 1;
		}
		a->resp.body_case = RAFTD__PEER_RESPONSE__BODY_DATA_PROPOSE;
		a->resp.data_propose = &a->dp;
		break;
	default:
		raftd__kv_read_response__init(&a->kr);
		a->kr.error = (Raftd__ErrorCode)res->code;
		a->kr.error_message = msgtxt;
		a->kr.leader_hint = res->leader_hint;
		a->kr.found = res->found;
		a->kr.value.data = (uint8_t *)res->value;
		a->kr.value.len = res->value_len;
		if (copy && res->value_len > 0) {
			a->value = rd_xrealloc(NULL, res->value_len);
			memcpy(a->value, res->value, res->value_len);
			a->kr.value.data = a->value;
		}
		a->kr.index = res->index;
		a->resp.body_case = RAFTD__PEER_RESPONSE__BODY_KV_READ;
		a->resp.kv_read = &a->kr;
		break;
	}
}

static void answer_free(struct rd_forward_answer_msg *a)
{
	free(a->result);
	free(a->value);
	free(a->message);
}

/* One outcome of batch b is in: answer the batch once it has them all. */
static void batch_put(struct rd_forward_batch *b)
{
	Raftd__PeerResponse resp = RAFTD__PEER_RESPONSE__INIT;
	Raftd__ForwardBatchResponse fb = RAFTD__FORWARD_BATCH_RESPONSE__INIT;
	Raftd__PeerResponse **answers;

	if (--b->left > 0)
		return;
	answers = rd_xrealloc(NULL, b->n * sizeof *answers);
	for (size_t i = 0; i < b->n; i++)
		answers[i] = &b->a[i].resp;
	fb.n_answers = b->n;
	fb.answers = answers;
	resp.body_case = RAFTD__PEER_RESPONSE__BODY_FORWARD_BATCH;
	resp.forward_batch = &fb;
	/* A batch holds writes only (rd_forward_flush), whose answers are
	 * small but for CAS_FAILED's current value, of any size: when they
	 * would not fit one frame, values are left out (the outcome, CAS
	 * failed, stands) until the answer fits. */
	for (size_t i = 0;
	     i < b->n && raftd__peer_response__get_packed_size(&resp) > b->limit; i++) {
		if (b->a[i].dp.result.len > 1) {
			b->a[i].dp.result.data = NULL;
			b->a[i].dp.result.len = 0;
		}
	}
	rd_transport_respond(b->r, &resp);
	free(answers);
	for (size_t i = 0; i < b->n; i++)
		answer_free(&b->a[i]);
	free(b->a);
	free(b);
}

void rd_forward_answer(void *reply, uint64_t request_id, const struct rd_result *res)
{
	struct rd_forward_reply *pr = reply;
	struct rd_forward_batch *b = pr->b;

	(void)request_id;
	if (b != NULL) {
		fill_answer(&b->a[pr->slot], pr->kind, res, true);
		free(pr);
		batch_put(b);
		return;
	}
	struct rd_forward_answer_msg a = {0};
	fill_answer(&a, pr->kind, res, false);
	rd_transport_respond(pr->r, &a.resp);
	answer_free(&a);
	free(pr);
}

/* Whether a peer request's body is a forwarded write or read. */
static bool is_forwarded(const Raftd__PeerRequest *req)
{
	return (req->body_case == RAFTD__PEER_REQUEST__BODY_METADATA_PROPOSE &&
	        req->metadata_propose != NULL) ||
	       (req->body_case == RAFTD__PEER_REQUEST__BODY_DATA_PROPOSE &&
	        req->data_propose != NULL) ||
	       (req->body_case == RAFTD__PEER_REQUEST__BODY_KV_READ &&
	        req->kv_read != NULL);
}

/* Hand one forwarded write or read (is_forwarded) to ops->serve; its
 * answer goes to pr, which the runtime now owns, or the refusal code is
 * returned and pr is still the caller's. `deadline_ms` 0 means the
 * node's default. */
static int serve_one(struct rd_forwarder *f, const Raftd__PeerRequest *req,
                     uint32_t deadline_ms, struct rd_forward_reply *pr)
{
	const ProtobufCBinaryData *data;
	struct rd_forward_request fr = {.op = RD_OP_WRITE};

	switch (req->body_case) {
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
	default:
		fr.group = req->kv_read->group;
		data = &req->kv_read->key;
		fr.op = req->kv_read->stale ? RD_OP_STALE_READ : RD_OP_READ;
		break;
	}
	fr.data = data->data;
	fr.len = data->len;
	fr.deadline_ns =
	    f->ops->now_ns(f->ud) +
	    (uint64_t)(deadline_ms ? deadline_ms : f->default_timeout_ms) * 1000000ull;
	pr->kind = req->body_case;
	return f->ops->serve(f->ud, &fr, pr);
}

/* A ForwardBatchRequest: check it whole, then serve every item. */
static void serve_batch(struct rd_forwarder *f, uint64_t peer,
                        const Raftd__PeerRequest *req, struct rd_transport_responder *r)
{
	const Raftd__ForwardBatchRequest *fb = req->forward_batch;
	Raftd__PeerResponse resp = RAFTD__PEER_RESPONSE__INIT;
	struct rd_forward_batch *b;
	bool ok = fb != NULL && fb->n_items > 0 && fb->n_items <= RD_FORWARD_BATCH_MAX;

	for (size_t i = 0; ok && i < fb->n_items; i++)
		ok = is_forwarded(fb->items[i]);
	if (!ok) {
		f->stats.batches_rejected++;
		rd_log_warn("forward batch from node %llu refused: items=%zu",
		            (unsigned long long)peer, fb != NULL ? fb->n_items : 0);
		resp.error = RAFTD__ERROR_CODE__INVALID;
		resp.error_message = (char *)"malformed forward batch";
		rd_transport_respond(r, &resp);
		return;
	}
	b = rd_xrealloc(NULL, sizeof *b);
	b->r = r;
	b->limit = f->max_batch_bytes + RD_TRANSPORT_FRAME_HEADROOM / 2;
	b->n = fb->n_items;
	b->left = b->n + 1; /* the loop below holds one */
	b->a = rd_xcalloc(b->n, sizeof *b->a);
	for (size_t i = 0; i < fb->n_items; i++) {
		const Raftd__PeerRequest *item = fb->items[i];
		struct rd_forward_reply *pr = rd_xrealloc(NULL, sizeof *pr);
		int code;

		pr->r = NULL;
		pr->b = b;
		pr->slot = i;
		code = serve_one(f, item,
		                 item->deadline_ms ? item->deadline_ms : req->deadline_ms,
		                 pr);
		if (code != RAFTD__ERROR_CODE__OK) {
			/* Refused before serving: the item's own top-level error,
			 * as a lone request's would be. */
			fill_answer(&b->a[i], item->body_case,
			            &(struct rd_result){.code = RAFTD__ERROR_CODE__OK},
			            true);
			b->a[i].resp.error = (Raftd__ErrorCode)code;
			free(pr);
			batch_put(b);
		}
	}
	batch_put(b);
}

void rd_forward_on_request(struct rd_forwarder *f, uint64_t peer,
                           const Raftd__PeerRequest *req,
                           struct rd_transport_responder *r)
{
	Raftd__PeerResponse resp = RAFTD__PEER_RESPONSE__INIT;
	Raftd__Pong pong = RAFTD__PONG__INIT;
	struct rd_forward_reply *pr;
	int code;

	if (req->body_case == RAFTD__PEER_REQUEST__BODY_PING) {
		pong.topology_version = f->topo->routing.version;
		pong.sent_us = req->ping->sent_us;
		resp.body_case = RAFTD__PEER_RESPONSE__BODY_PONG;
		resp.pong = &pong;
		rd_transport_respond(r, &resp);
		return;
	}
	if (req->body_case == RAFTD__PEER_REQUEST__BODY_FORWARD_BATCH) {
		serve_batch(f, peer, req, r);
		return;
	}
	if (!is_forwarded(req)) {
		resp.error = RAFTD__ERROR_CODE__INVALID;
		resp.error_message = (char *)"request kind not served by this node";
		rd_transport_respond(r, &resp);
		return;
	}
	pr = malloc(sizeof *pr);
	if (pr == NULL) {
		resp.error = RAFTD__ERROR_CODE__INTERNAL;
		rd_transport_respond(r, &resp);
		return;
	}
	pr->r = r;
	pr->b = NULL;
	pr->slot = 0;
	code = serve_one(f, req, req->deadline_ms, pr);
	if (code != RAFTD__ERROR_CODE__OK) {
		free(pr);
		resp.error = (Raftd__ErrorCode)code;
		rd_transport_respond(r, &resp);
	}
}
