/*
 * Request/response RPCs: one bidirectional stream per call (RFC 9000 §2:
 * streams are independent, so a large snapshot or a slow proposal never
 * blocks Raft traffic).
 *
 * Happy path (caller): rd_transport_call encodes the request and queues the
 * call on the peer; when the peer's connection has stream credit, the call
 * gets a stream, the request goes out with FIN, the response frame finishes
 * the call. Callee: the request frame is handed to on_request with a
 * responder; rd_transport_respond writes the response with FIN.
 *
 * Failure modes: the deadline fires first (RD_ETIMEDOUT; the stream is
 * reset with APP_CANCELLED so the callee may stop); the connection or
 * stream dies (RD_ECLOSED); the peer is removed or the transport freed
 * (RD_ENOTFOUND, RD_ESHUTDOWN). Every call's callback runs exactly once.
 */
#include <stdlib.h>
#include <string.h>

#include "transport/internal.h"
#include "util/err.h"
#include "util/list.h"
#include "util/log.h"

static void unlink_waiting(struct rd_call *call)
{
	struct rd_peer *p = call->peer;

	RD_QUEUE_REMOVE(struct rd_call, p->calls_head, p->calls_tail, call, next);
	call->peer = NULL;
}

void rd_rpc_finish(struct rd_call *call, int err, const Raftd__PeerResponse *resp,
                   const char *errmsg)
{
	if (call->peer != NULL)
		unlink_waiting(call);
	if (call->stream != NULL) {
		call->stream->call = NULL;
		call->stream = NULL;
	}
	if (call->deadline)
		event_free(call->deadline);
	free(call->req);
	call->cb(call->arg, err, resp, errmsg);
	free(call);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rd_call *call = arg;
	struct rd_stream *s = call->stream;

	(void)fd, (void)what;
	if (s != NULL) {
		s->call = NULL;
		call->stream = NULL;
		rd_stream_shut(s, RD_TRANSPORT_APP_CANCELLED);
	}
	rd_rpc_finish(call, RD_ETIMEDOUT, NULL, "deadline passed before the response");
}

/* Queue a call whose encoded request is `req` (ownership passes here). */
static int call_start(struct rd_transport *t, struct rd_peer *p, struct rd_sbuf *req,
                      unsigned deadline_ms, rd_transport_reply_cb cb, void *arg,
                      char *msg)
{
	struct rd_call *call = calloc(1, sizeof *call);
	struct timeval tv;
	int rv;

	if (call == NULL) {
		free(req);
		return rd_errorf(msg, RD_ENOMEM, "call");
	}
	call->req = req;
	call->deadline = evtimer_new(t->base, deadline_cb, call);
	if (call->deadline == NULL) {
		rv = rd_errorf(msg, RD_ENOMEM, "call deadline");
		goto err_after_call;
	}
	tv.tv_sec = deadline_ms / 1000;
	tv.tv_usec = (suseconds_t)(deadline_ms % 1000) * 1000;
	evtimer_add(call->deadline, &tv);
	call->t = t;
	call->peer_id = p->id;
	call->cb = cb;
	call->arg = arg;
	call->peer = p;
	if (p->calls_tail)
		p->calls_tail->next = call;
	else
		p->calls_head = call;
	p->calls_tail = call;
	p->st.calls_out++;
	if (p->conn != NULL)
		rd_t_mark_dirty(p->conn);
	else
		rd_peer_kick(t, p);
	return 0;
err_after_call:
	free(call->req);
	free(call);
	return rv;
}

int rd_transport_call(struct rd_transport *t, uint64_t peer,
                      const Raftd__PeerRequest *req, unsigned deadline_ms,
                      rd_transport_reply_cb cb, void *arg, char *msg)
{
	struct rd_peer *p = rd_peer_find(t, peer);
	Raftd__PeerFrame f = RAFTD__PEER_FRAME__INIT;
	Raftd__PeerRequest r = *req;
	struct rd_sbuf *b;
	int rv;

	if (p == NULL || (!p->registered && p->conn == NULL))
		return rd_errorf(msg, RD_ENOTFOUND, "peer %llu is not registered",
		                 (unsigned long long)peer);
	r.from = t->cfg.node_id;
	r.deadline_ms = deadline_ms;
	f.kind_case = RAFTD__PEER_FRAME__KIND_REQUEST;
	f.request = &r;
	b = rd_sbuf_frame(&f, t->cfg.max_rpc_frame_bytes, msg, &rv);
	if (b == NULL)
		return rv;
	return call_start(t, p, b, deadline_ms, cb, arg, msg);
}

int rd_transport_test_call_raw(struct rd_transport *t, uint64_t peer,
                               const uint8_t *bytes, size_t len, unsigned deadline_ms,
                               rd_transport_reply_cb cb, void *arg)
{
	struct rd_peer *p = rd_peer_find(t, peer);
	struct rd_sbuf *b;
	int rv;

	if (p == NULL || !p->registered)
		return RD_ENOTFOUND;
	b = malloc(sizeof *b + len);
	if (b == NULL)
		return RD_ENOMEM;
	b->next = NULL;
	b->len = len;
	memcpy(b->data, bytes, len);
	rv = call_start(t, p, b, deadline_ms, cb, arg, NULL);
	if (rv == 0)
		p->calls_tail->no_fin = true; /* a stalled request stays open */
	return rv;
}

void rd_rpc_start_waiting(struct rd_peer *p)
{
	struct rd_conn *c = p->conn;

	while (p->calls_head != NULL && ngtcp2_conn_get_streams_bidi_left(c->qc) > 0) {
		struct rd_call *call = p->calls_head;
		struct rd_stream *s;
		int64_t id;

		if (ngtcp2_conn_open_bidi_stream(c->qc, &id, NULL) != 0)
			return;
		s = rd_stream_new(c, id, RD_S_CALL);
		if (s == NULL) {
			ngtcp2_conn_shutdown_stream(c->qc, id, RD_TRANSPORT_APP_INTERNAL);
			return;
		}
		unlink_waiting(call);
		s->call = call;
		call->stream = s;
		s->out.fin = !call->no_fin;
		p->st.frames_out++;
		p->st.bytes_out += call->req->len;
		rd_squeue_push(&s->out, call->req);
		call->req = NULL;
		rd_stream_want_write(s);
	}
}

void rd_rpc_deliver_request(struct rd_stream *s, Raftd__PeerFrame *f)
{
	struct rd_conn *c = s->conn;
	struct rd_transport *t = c->t;
	struct rd_transport_responder *r;

	if (f->request->from != c->peer->id) {
		c->peer->st.foreign_from++;
		rd_stream_shut(s, RD_TRANSPORT_APP_MALFORMED);
		rd_wire_free(f);
		return;
	}
	r = calloc(1, sizeof *r);
	if (r == NULL) {
		rd_stream_shut(s, RD_TRANSPORT_APP_INTERNAL);
		rd_wire_free(f);
		return;
	}
	r->stream = s;
	s->resp = r;
	c->peer->st.calls_in++;
	/* A stranger may only ask to join, and probe the member table. */
	if (f->request->body_case != RAFTD__PEER_REQUEST__BODY_JOIN &&
	    f->request->body_case != RAFTD__PEER_REQUEST__BODY_MEMBER_PROBE &&
	    rd_conn_stranger(c)) {
		Raftd__PeerResponse resp = RAFTD__PEER_RESPONSE__INIT;
		t->st.stranger_refused++;
		if (rd_t_log_ok(t))
			rd_log_warn("transport: request from a non-member refused "
			            "peer=%llu addr=%s kind=%d",
			            (unsigned long long)c->peer->id, c->addr_text,
			            (int)f->request->body_case);
		resp.error = RAFTD__ERROR_CODE__INVALID;
		resp.error_message = "not a member of the cluster: only a join request "
		                     "is served";
		rd_transport_respond(r, &resp);
		rd_wire_free(f);
		return;
	}
	if (t->cbs.on_request != NULL) {
		t->cbs.on_request(t->cbs.arg, c->peer->id, f->request, r);
	} else {
		Raftd__PeerResponse resp = RAFTD__PEER_RESPONSE__INIT;
		resp.error = RAFTD__ERROR_CODE__UNAVAILABLE;
		resp.error_message = "this node serves no requests";
		rd_transport_respond(r, &resp);
	}
	rd_wire_free(f);
}

int rd_transport_respond(struct rd_transport_responder *r,
                         const Raftd__PeerResponse *resp)
{
	struct rd_stream *s = r->stream;
	Raftd__PeerFrame f = RAFTD__PEER_FRAME__INIT;
	struct rd_sbuf *b;
	int rv;

	free(r);
	if (s == NULL)
		return RD_ECLOSED;
	s->resp = NULL;
	f.kind_case = RAFTD__PEER_FRAME__KIND_RESPONSE;
	f.response = (Raftd__PeerResponse *)resp;
	b = rd_sbuf_frame(&f, s->conn->t->cfg.max_rpc_frame_bytes, NULL, &rv);
	if (b == NULL) {
		rd_stream_shut(s, RD_TRANSPORT_APP_INTERNAL);
		return rv;
	}
	if (s->conn->peer) {
		s->conn->peer->st.frames_out++;
		s->conn->peer->st.bytes_out += b->len;
	}
	s->out.fin = true;
	rd_squeue_push(&s->out, b);
	rd_stream_want_write(s);
	return 0;
}

void rd_transport_responder_drop(struct rd_transport_responder *r)
{
	struct rd_stream *s = r->stream;

	free(r);
	if (s == NULL)
		return;
	s->resp = NULL;
	rd_stream_shut(s, RD_TRANSPORT_APP_CANCELLED);
}
