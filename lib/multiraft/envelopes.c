/*
 * Envelope handlers and deliveries, the runtime's side of
 * cluster/envelope.h (proto/raftd.proto, "Envelopes").
 *
 * A handler is a local client connection that sent a HandleRequest: it
 * stays registered until it closes (rd_ctl_conn_on_close), holding the
 * socket reference of that request all along. A delivery is one envelope
 * sent to one handler as a ClientResponse with `delivery` set, waiting for
 * its DeliveryReply.
 *
 * Happy path: rd_node_envelope_send (raftctl send) -> cluster/envelope.c
 * routes -> on the leader's node deliver() picks the least loaded handler
 * that serves the vShard and is writable -> the handler's DeliveryReply
 * -> the router's done callback -> the sender's ClientResponse.
 * Failure modes: no handler serves the vShard: NO_HANDLER; every one is at
 * its in-flight cap or over its output high-water mark: BUSY (back-pressure,
 * nothing queues); the handler connection closes with deliveries
 * unanswered: UNAVAILABLE (outcome unknown); the deadline passes: TIMEOUT
 * (outcome unknown), and a late reply is ignored.
 */
#include <stdlib.h>
#include <string.h>

#include "cluster/envelope.h"
#include "ctl/request.h"
#include "ctl/socket.h"
#include "multiraft/node_internal.h"
#include "raftd.pb-c.h"
#include "storage/kv.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/list.h"
#include "util/log.h"

struct rd_env_handler {
	struct rd_env_registry *reg;
	struct rd_ctl_conn *conn;
	uint64_t request_id; /* of its HandleRequest: deliveries carry it */
	bool all;            /* every vShard this node leads */
	uint8_t vshards[RD_VSHARDS / 8];
	unsigned inflight;
	struct rd_env_handler *prev, *next;
};

struct rd_env_delivery {
	uint64_t id;
	struct rd_env_handler *h;
	uint64_t started_ns, deadline_ns;
	rd_envelope_done_fn done;
	void *arg;
	struct rd_env_delivery *next;
};

struct rd_env_registry {
	struct rd_node *n;
	struct rd_env_handler *handlers;
	struct rd_env_delivery *deliveries; /* bounded by [envelopes] max_in_flight */
	uint64_t next_id;
	struct rd_env_figures fig;
};

/* ---- deliveries ------------------------------------------------------------------ */

static void delivery_end(struct rd_env_registry *reg, struct rd_env_delivery *d,
                         const struct rd_envelope_result *res)
{
	struct rd_env_delivery **pp = &reg->deliveries;

	while (*pp != d)
		pp = &(*pp)->next;
	*pp = d->next;
	if (d->h != NULL)
		d->h->inflight--;
	if (res->code == RAFTD__ERROR_CODE__OK ||
	    res->code == RAFTD__ERROR_CODE__APP_ERROR) {
		reg->fig.delivered++;
		rd_metrics_hist_observe(
		    &reg->fig.latency, (double)(rd_clock_now_ns() - d->started_ns) / 1e9);
	}
	d->done(d->arg, res);
	free(d);
}

static void delivery_fail(struct rd_env_registry *reg, struct rd_env_delivery *d,
                          int code, const char *message)
{
	struct rd_envelope_result r = {
	    .code = code, .message = message, .node = reg->n->cfg.node_id};
	delivery_end(reg, d, &r);
}

static bool serves(const struct rd_env_handler *h, uint32_t vshard)
{
	return h->all || (h->vshards[vshard / 8] >> (vshard % 8) & 1);
}

/* Send `m` to `h` as delivery `d`. */
static bool send_delivery(struct rd_env_handler *h, const struct rd_env_delivery *d,
                          const struct rd_envelope_msg *m, uint64_t now)
{
	Raftd__ClientResponse resp = RAFTD__CLIENT_RESPONSE__INIT;
	Raftd__Delivery dv = RAFTD__DELIVERY__INIT;
	uint8_t *buf;
	size_t len;
	bool ok;

	dv.delivery_id = d->id;
	dv.vshard = m->vshard;
	dv.source_node = m->source;
	dv.payload.data = (uint8_t *)m->payload;
	dv.payload.len = m->len;
	dv.kind = m->kind;
	dv.deadline_ms = (uint32_t)((m->deadline_ns - now) / 1000000);
	resp.request_id = h->request_id;
	resp.result_case = RAFTD__CLIENT_RESPONSE__RESULT_DELIVERY;
	resp.delivery = &dv;
	len = raftd__client_response__get_packed_size(&resp);
	if ((buf = malloc(len)) == NULL)
		return false;
	raftd__client_response__pack(&resp, buf);
	ok = rd_ctl_send(h->conn, buf, len);
	free(buf);
	return ok;
}

static int deliver(void *ud, const struct rd_envelope_msg *m, rd_envelope_done_fn done,
                   void *arg, const char **why)
{
	struct rd_node *n = ud;
	struct rd_env_registry *reg = n->envreg;
	struct rd_env_handler *best = NULL;
	struct rd_env_delivery *d;
	bool any = false;
	uint64_t now = rd_clock_now_ns();

	for (struct rd_env_handler *h = reg->handlers; h != NULL; h = h->next) {
		if (!serves(h, m->vshard))
			continue;
		any = true;
		if (h->inflight >= n->cfg.env_max_inflight_conn ||
		    !rd_ctl_conn_writable(h->conn))
			continue;
		if (best == NULL || h->inflight < best->inflight)
			best = h;
	}
	if (!any) {
		*why = "no handler for the vShard on the node that leads its group";
		return RAFTD__ERROR_CODE__NO_HANDLER;
	}
	if (best == NULL) {
		*why = "every handler of the vShard is at its in-flight limit";
		return RAFTD__ERROR_CODE__BUSY;
	}
	if (m->deadline_ns <= now) {
		*why = "deadline passed before delivery";
		return RAFTD__ERROR_CODE__TIMEOUT;
	}
	if ((d = calloc(1, sizeof *d)) == NULL) {
		*why = "out of memory";
		return RAFTD__ERROR_CODE__INTERNAL;
	}
	d->id = ++reg->next_id;
	d->h = best;
	d->started_ns = now;
	d->deadline_ns = m->deadline_ns;
	d->done = done;
	d->arg = arg;
	if (!send_delivery(best, d, m, now)) {
		free(d);
		*why = "handler connection closed";
		return RAFTD__ERROR_CODE__UNAVAILABLE;
	}
	best->inflight++;
	d->next = reg->deliveries;
	reg->deliveries = d;
	return RAFTD__ERROR_CODE__OK;
}

/* ---- the router's view of the runtime ---------------------------------------------- */

static uint64_t leader(void *ud, uint64_t group)
{
	const struct rd_node *n = ud;
	const struct rd_group *g = rd_node_group(n, group);
	const struct rd_group_placement *p;

	if (g != NULL)
		return rd_raft_leader(g->raft);
	p = rd_routing_placement(&n->topo.routing, (uint32_t)group);
	return p != NULL ? p->replicas[0] : 0;
}

static uint64_t now_ns(void *ud)
{
	(void)ud;
	return rd_clock_now_ns();
}

static const struct rd_envelope_ops env_ops = {leader, deliver, now_ns};

/* ---- handlers ---------------------------------------------------------------------- */

static void handler_closed(void *arg, struct rd_ctl_conn *conn)
{
	struct rd_env_handler *h = arg;
	struct rd_env_registry *reg = h->reg;
	struct rd_env_delivery *d = reg->deliveries, *next;

	(void)conn;
	for (; d != NULL; d = next) {
		next = d->next;
		if (d->h == h)
			delivery_fail(reg, d, RAFTD__ERROR_CODE__UNAVAILABLE,
			              "handler connection closed before answering: "
			              "outcome unknown");
	}
	RD_LIST_UNLINK(reg->handlers, h, prev, next);
	reg->fig.handlers--;
	rd_log_info("envelope handler gone pid=%d", (int)rd_ctl_conn_pid(h->conn));
	rd_ctl_release(h->conn); /* the HandleRequest's reference */
	free(h);
}

int rd_node_envelopes_init(struct rd_node *n)
{
	n->envreg = calloc(1, sizeof *n->envreg);
	if (n->envreg == NULL)
		return RD_ENOMEM;
	n->envreg->n = n;
	rd_metrics_hist_init(&n->envreg->fig.latency, rd_metrics_latency_buckets,
	                     rd_metrics_latency_buckets_n);
	rd_envelope_init(&n->env, &env_ops, n, n->cfg.node_id, &n->topo,
	                 n->cfg.env_max_payload, n->cfg.env_max_inflight);
	return 0;
}

void rd_node_envelopes_free(struct rd_node *n)
{
	/* Handlers are gone with the socket (their close callbacks ran). */
	free(n->envreg);
	n->envreg = NULL;
}

const struct rd_env_figures *rd_node_envelope_figures(const struct rd_node *n)
{
	return &n->envreg->fig;
}

void rd_node_envelopes_tick(struct rd_node *n, uint64_t now_ns)
{
	struct rd_env_registry *reg = n->envreg;
	struct rd_env_delivery *d = reg->deliveries, *next;

	for (; d != NULL; d = next) {
		next = d->next;
		if (d->deadline_ns <= now_ns)
			delivery_fail(reg, d, RAFTD__ERROR_CODE__TIMEOUT,
			              "the handler did not answer before the deadline: "
			              "outcome unknown");
	}
	rd_envelope_tick(&n->env, now_ns);
}

/* The reply to a raftctl send. */
struct send_ctx {
	struct rd_ctl_conn *conn;
	uint64_t request_id;
};

static void send_answer(struct rd_ctl_conn *conn, uint64_t request_id,
                        const struct rd_envelope_result *res)
{
	Raftd__ClientResponse resp = RAFTD__CLIENT_RESPONSE__INIT;
	Raftd__EnvelopeResult er = RAFTD__ENVELOPE_RESULT__INIT;

	resp.request_id = request_id;
	resp.error = (Raftd__ErrorCode)res->code;
	resp.error_message = (char *)(res->message != NULL ? res->message : "");
	resp.leader_hint = res->leader_hint;
	if (res->code == RAFTD__ERROR_CODE__OK ||
	    res->code == RAFTD__ERROR_CODE__APP_ERROR) {
		er.payload.data = (uint8_t *)res->payload;
		er.payload.len = res->len;
		er.node = res->node;
		er.group = res->group;
		resp.result_case = RAFTD__CLIENT_RESPONSE__RESULT_ENVELOPE;
		resp.envelope = &er;
	}
	rd_ctl_reply_response(conn, &resp);
}

static void send_done(void *arg, const struct rd_envelope_result *res)
{
	struct send_ctx *c = arg;

	send_answer(c->conn, c->request_id, res);
	free(c);
}

static bool is_handler(const struct rd_env_registry *reg, const struct rd_ctl_conn *conn)
{
	for (const struct rd_env_handler *h = reg->handlers; h != NULL; h = h->next)
		if (h->conn == conn)
			return true;
	return false;
}

void rd_node_envelope_send(struct rd_node *n, struct rd_ctl_conn *conn,
                           const Raftd__ClientRequest *req, uint64_t deadline_ns)
{
	const Raftd__SendRequest *s = req->send;
	struct rd_envelope_msg m = {0};
	struct rd_envelope_result r = {0};
	struct send_ctx *c;

	if (s->key.len == 0 && s->vshard >= RD_VSHARDS) {
		r.code = RAFTD__ERROR_CODE__INVALID;
		r.message = "vshard must be 0..1023";
	} else if (s->key.len > RD_KV_KEY_MAX) {
		r.code = RAFTD__ERROR_CODE__INVALID;
		r.message = "key must be 1..4096 bytes";
	} else if ((c = malloc(sizeof *c)) == NULL) {
		r.code = RAFTD__ERROR_CODE__INTERNAL;
		r.message = "out of memory";
	} else {
		c->conn = conn;
		c->request_id = req->request_id;
		m.vshard =
		    s->key.len > 0 ? rd_kv_vshard(s->key.data, s->key.len) : s->vshard;
		m.group = rd_routing_group_of(&n->topo.routing, m.vshard);
		m.kind = s->kind;
		m.source = n->cfg.node_id;
		m.payload = s->payload.data;
		m.len = s->payload.len;
		m.deadline_ns = deadline_ns;
		rd_envelope_send(&n->env, &m, send_done, c);
		return;
	}
	send_answer(conn, req->request_id, &r);
}

void rd_node_envelope_handle(struct rd_node *n, struct rd_ctl_conn *conn,
                             const Raftd__ClientRequest *req)
{
	struct rd_env_registry *reg = n->envreg;
	Raftd__ClientResponse resp = RAFTD__CLIENT_RESPONSE__INIT;
	const Raftd__HandleRequest *hr = req->handle;
	struct rd_env_handler *h;
	uint8_t *buf;
	size_t len;

	if (is_handler(reg, conn)) {
		resp.error = RAFTD__ERROR_CODE__INVALID;
		resp.error_message = (char *)"this connection is already a handler";
		goto reply;
	}
	for (size_t i = 0; i < hr->n_vshards; i++) {
		if (hr->vshards[i] >= RD_VSHARDS) {
			resp.error = RAFTD__ERROR_CODE__INVALID;
			resp.error_message = (char *)"vshard must be 0..1023";
			goto reply;
		}
	}
	if ((h = calloc(1, sizeof *h)) == NULL) {
		resp.error = RAFTD__ERROR_CODE__INTERNAL;
		resp.error_message = (char *)"out of memory";
		goto reply;
	}
	h->reg = reg;
	h->conn = conn;
	h->request_id = req->request_id;
	h->all = hr->n_vshards == 0;
	for (size_t i = 0; i < hr->n_vshards; i++)
		h->vshards[hr->vshards[i] / 8] |= (uint8_t)(1u << (hr->vshards[i] % 8));
	h->next = reg->handlers;
	if (reg->handlers != NULL)
		reg->handlers->prev = h;
	reg->handlers = h;
	reg->fig.handlers++;
	rd_ctl_conn_on_close(conn, handler_closed, h);
	rd_log_info("envelope handler registered pid=%d uid=%u vshards=%s",
	            (int)rd_ctl_conn_pid(conn), (unsigned)rd_ctl_conn_uid(conn),
	            h->all ? "all" : "listed");
	/* Registered: OK now; the request's reference stays with `h`. */
	resp.request_id = req->request_id;
	len = raftd__client_response__get_packed_size(&resp);
	if ((buf = malloc(len ? len : 1)) != NULL) {
		raftd__client_response__pack(&resp, buf);
		rd_ctl_send(conn, buf, len);
		free(buf);
	}
	return;
reply:
	resp.request_id = req->request_id;
	rd_ctl_reply_response(conn, &resp);
}

void rd_node_envelope_reply(struct rd_node *n, struct rd_ctl_conn *conn,
                            const Raftd__ClientRequest *req)
{
	struct rd_env_registry *reg = n->envreg;
	const Raftd__DeliveryReply *dr = req->delivery_reply;
	struct rd_env_delivery *d = reg->deliveries;

	while (d != NULL &&
	       !(d->id == dr->delivery_id && d->h != NULL && d->h->conn == conn))
		d = d->next;
	if (d == NULL) {
		reg->fig.late_replies++;
	} else if (dr->payload.len > n->cfg.env_max_payload) {
		/* It would not fit the peer RPC back to the sender. */
		struct rd_envelope_result r = {
		    .code = RAFTD__ERROR_CODE__APP_ERROR,
		    .message =
		        "the handler's reply is over [envelopes] max_payload_bytes",
		    .node = n->cfg.node_id};
		delivery_end(reg, d, &r);
	} else if (dr->error != NULL && dr->error[0] != '\0') {
		struct rd_envelope_result r = {.code = RAFTD__ERROR_CODE__APP_ERROR,
		                               .message = dr->error,
		                               .node = n->cfg.node_id};
		delivery_end(reg, d, &r);
	} else {
		struct rd_envelope_result r = {.code = RAFTD__ERROR_CODE__OK,
		                               .node = n->cfg.node_id,
		                               .payload = dr->payload.data,
		                               .len = dr->payload.len};
		delivery_end(reg, d, &r);
	}
	rd_ctl_release(conn); /* replies get no answer */
}
