/*
 * Streams: what is queued to send and what arrives.
 *
 * Sending: each frame is one rd_sbuf appended to the stream's queue; the
 * connection's write loop hands bytes from `cur` to ngtcp2 and the queue
 * keeps them until ngtcp2 reports them acknowledged (acked_stream_data_offset
 * arrives in order, RFC 9000 §2.2 allows no other use of the memory before).
 *
 * Receiving: bytes go through the stream's wire reader; each complete frame
 * is decoded and dispatched by stream kind. Failure modes (the close codes
 * are RD_TRANSPORT_APP_* in transport.h): a frame over the limit, one that does not
 * decode or one of a kind not allowed on the stream is logged with the peer id and
 * counted; on the Raft stream it closes the connection, elsewhere only the stream.
 */
#include <stdlib.h>
#include <string.h>

#include "transport/internal.h"
#include "util/bytes.h"
#include "util/err.h"
#include "util/list.h"
#include "util/log.h"

static const char *kind_name(enum rd_stream_kind k)
{
	switch (k) {
	case RD_S_RAFT_OUT:
	case RD_S_RAFT_IN:
		return "raft";
	case RD_S_SNAP_OUT:
	case RD_S_SNAP_IN:
		return "snapshot";
	case RD_S_CALL:
	case RD_S_SERVE:
		return "rpc";
	default:
		return "extra";
	}
}

struct rd_sbuf *rd_sbuf_frame(const Raftd__PeerFrame *f, size_t max, char *msg, int *rv)
{
	size_t n = raftd__peer_frame__get_packed_size(f);
	struct rd_sbuf *b;

	if (n > max || n > UINT32_MAX) {
		*rv = rd_errorf(msg, RD_ETOOBIG,
		                "frame of %zu bytes exceeds the limit of %zu", n, max);
		return NULL;
	}
	b = malloc(sizeof *b + RD_WIRE_HEADER + n);
	if (b == NULL) {
		*rv = rd_errorf(msg, RD_ENOMEM, "frame of %zu bytes", n);
		return NULL;
	}
	b->next = NULL;
	b->len = RD_WIRE_HEADER + n;
	rd_be32_put(b->data, (uint32_t)n);
	raftd__peer_frame__pack(f, b->data + RD_WIRE_HEADER);
	*rv = 0;
	return b;
}

void rd_squeue_push(struct rd_squeue *q, struct rd_sbuf *b)
{
	RD_QUEUE_PUSH(q->head, q->tail, b, next);
	if (q->cur == NULL) {
		q->cur = b;
		q->cur_off = 0;
	}
	q->unsent += b->len;
	q->frames_unsent++;
}

size_t rd_squeue_vecs(const struct rd_squeue *q, ngtcp2_vec *v, size_t max)
{
	size_t n = 0;
	size_t off = q->cur_off;

	for (const struct rd_sbuf *b = q->cur; b && n < max; b = b->next, off = 0) {
		v[n].base = (uint8_t *)b->data + off;
		v[n].len = b->len - off;
		n++;
	}
	return n;
}

void rd_squeue_advance(struct rd_squeue *q, size_t n)
{
	q->unsent -= n;
	while (n > 0 && q->cur) {
		size_t left = q->cur->len - q->cur_off;
		if (q->cur_off == 0)
			q->frames_unsent--;
		if (n < left) {
			q->cur_off += n;
			return;
		}
		n -= left;
		q->cur = q->cur->next;
		q->cur_off = 0;
	}
}

void rd_squeue_ack(struct rd_squeue *q, uint64_t len)
{
	while (len > 0 && q->head && q->head != q->cur) {
		size_t left = q->head->len - q->head_acked;
		struct rd_sbuf *b = q->head;
		if (len < left) {
			q->head_acked += len;
			return;
		}
		len -= left;
		q->head = b->next;
		if (q->head == NULL)
			q->tail = NULL;
		q->head_acked = 0;
		free(b);
	}
	/* The head may be the partly sent `cur`: count into it. */
	if (len > 0 && q->head)
		q->head_acked += len;
}

uint64_t rd_squeue_clear(struct rd_squeue *q)
{
	uint64_t frames = 0;
	struct rd_sbuf *b = q->head, *next;
	bool unsent = false;

	for (; b; b = next) {
		next = b->next;
		if (b == q->cur)
			unsent = true;
		if (unsent)
			frames++;
		free(b);
	}
	memset(q, 0, sizeof *q);
	return frames;
}

uint64_t rd_squeue_salvage(struct rd_squeue *from, struct rd_squeue *to)
{
	struct rd_sbuf *b = from->head, *next, *keep;
	uint64_t lost = 0;

	keep = from->cur;
	if (keep && from->cur_off > 0)
		keep = keep->next;
	for (; b && b != keep; b = next) {
		next = b->next;
		if (b == from->cur)
			lost++; /* partly sent */
		free(b);
	}
	for (b = keep; b; b = next) {
		next = b->next;
		rd_squeue_push(to, b);
	}
	memset(from, 0, sizeof *from);
	return lost;
}

/* Largest frame each kind of stream accepts: a Raft batch may carry many
 * groups' messages; a snapshot frame is one chunk; a request or response
 * about one proposal or read. */
static size_t frame_cap(const struct rd_transport_config *cfg, enum rd_stream_kind k)
{
	switch (k) {
	case RD_S_RAFT_IN:
		return cfg->max_frame_bytes;
	case RD_S_SNAP_IN:
		return cfg->max_snapshot_frame_bytes;
	case RD_S_CALL:
	case RD_S_SERVE:
		return cfg->max_rpc_frame_bytes;
	default:
		return 0;
	}
}

struct rd_stream *rd_stream_new(struct rd_conn *c, int64_t id, enum rd_stream_kind kind)
{
	struct rd_stream *s = calloc(1, sizeof *s);

	if (s == NULL)
		return NULL;
	s->id = id;
	s->kind = kind;
	s->conn = c;
	rd_wire_reader_init(&s->in, frame_cap(&c->t->cfg, kind));
	s->next = c->streams;
	if (c->streams)
		c->streams->prev = s;
	c->streams = s;
	ngtcp2_conn_set_stream_user_data(c->qc, id, s);
	return s;
}

void rd_stream_free(struct rd_stream *s, int err)
{
	struct rd_conn *c = s->conn;

	RD_LIST_UNLINK(c->streams, s, prev, next);
	if (s->in_wlist)
		RD_QUEUE_REMOVE(struct rd_stream, c->whead, c->wtail, s, wnext);
	if (c->raft_out == s)
		c->raft_out = NULL;
	if (c->snap_out == s)
		c->snap_out = NULL;
	if (s->call) {
		struct rd_call *call = s->call;
		s->call = NULL;
		call->stream = NULL;
		rd_rpc_finish(call, err ? err : RD_ECLOSED, NULL,
		              "stream closed before a response arrived");
	}
	if (s->resp) {
		s->resp->stream = NULL;
		s->resp = NULL;
	}
	if (c->peer && (s->kind == RD_S_RAFT_OUT || s->kind == RD_S_SNAP_OUT))
		c->peer->st.dropped += rd_squeue_clear(&s->out);
	else
		rd_squeue_clear(&s->out);
	/* Bytes of a frame the stream ended inside (reset by the peer, say)
	 * were passed to us, so ngtcp2 gives no credit back for them (it does
	 * for bytes it never passed on): they go back to the connection's
	 * window here, or each such stream would shrink it for good. */
	size_t held = rd_wire_reader_held(&s->in);
	c->held -= held;
	if (held > 0 && c->qc != NULL && !c->dead)
		ngtcp2_conn_extend_max_offset(c->qc, held);
	rd_wire_reader_close(&s->in);
	if (c->qc)
		ngtcp2_conn_set_stream_user_data(c->qc, s->id, NULL);
	free(s);
}

void rd_stream_want_write(struct rd_stream *s)
{
	struct rd_conn *c = s->conn;

	if (!s->in_wlist) {
		s->in_wlist = true;
		RD_QUEUE_PUSH(c->whead, c->wtail, s, wnext);
	}
	rd_t_mark_dirty(c);
}

void rd_stream_shut(struct rd_stream *s, uint64_t code)
{
	struct rd_conn *c = s->conn;

	s->read_dead = true;
	if (c->n_shut < RD_T_MAX_PENDING_SHUT) {
		c->shut[c->n_shut].id = s->id;
		c->shut[c->n_shut].code = code;
		c->n_shut++;
	}
	/* Else: too many at once; the stream stays unread until it closes. */
	rd_t_mark_dirty(c);
}

/* Refuse input on `s`: connection-wide on the Raft stream. Returns -1 when
 * the connection must close (ccerr set), 0 otherwise. */
static int refuse(struct rd_stream *s, uint64_t code, int err, const char *why)
{
	struct rd_conn *c = s->conn;
	uint64_t peer = c->peer ? c->peer->id : 0;

	rd_log_warn(
	    "transport: refused frame peer=%llu addr=%s stream=%lld kind=%s error=%s "
	    "reason=\"%s\"",
	    (unsigned long long)peer, c->addr_text, (long long)s->id, kind_name(s->kind),
	    rd_errname(err), why);
	rd_peer_count_malformed(c);
	s->read_dead = true;
	if (s->kind == RD_S_RAFT_IN) {
		ngtcp2_connection_close_error_set_application_error(&c->ccerr, code, NULL,
		                                                    0);
		c->ccerr_set = true;
		return -1;
	}
	rd_stream_shut(s, code);
	return 0;
}

/* Messages not from the authenticated peer, or not for us, are dropped
 * and counted: a node speaks only for itself (the peer id is the one its
 * certificate proved, tls.h). */
static void filter_batch(struct rd_conn *c, Raftd__RaftBatch *b)
{
	uint64_t me = c->t->cfg.node_id, peer = c->peer->id;
	size_t keep = 0;

	if (b->from != peer || b->to != me) {
		c->peer->st.foreign_from +=
		    b->n_messages + b->n_heartbeats + b->n_heartbeat_resps + 1;
		for (size_t i = 0; i < b->n_messages; i++)
			raftd__raft_message__free_unpacked(b->messages[i], NULL);
		b->n_messages = 0;
		for (size_t i = 0; i < b->n_heartbeats; i++)
			raftd__coalesced_heartbeat__free_unpacked(b->heartbeats[i], NULL);
		b->n_heartbeats = 0;
		for (size_t i = 0; i < b->n_heartbeat_resps; i++)
			raftd__coalesced_heartbeat__free_unpacked(b->heartbeat_resps[i],
			                                          NULL);
		b->n_heartbeat_resps = 0;
		return;
	}
	for (size_t i = 0; i < b->n_messages; i++) {
		Raftd__RaftMessage *m = b->messages[i];
		if (m->from != peer || m->to != me) {
			c->peer->st.foreign_from++;
			raftd__raft_message__free_unpacked(m, NULL);
		} else {
			b->messages[keep++] = m;
		}
	}
	b->n_messages = keep;
}

/* A snapshot chunk is from the authenticated peer, for us, and the Raft
 * message it carries (stepped after the install) says the same, for the
 * same group: otherwise a peer could step a message in another's name. */
static bool chunk_ok(const Raftd__SnapshotChunk *ch, uint64_t peer, uint64_t me)
{
	const Raftd__RaftMessage *m = ch->message;

	if (ch->from != peer || ch->to != me)
		return false;
	return m == NULL || (m->from == peer && m->to == me && m->group == ch->group);
}

static int feed(struct rd_stream *s, const uint8_t *data, size_t len, bool fin);

static int on_frame(void *arg, const uint8_t *payload, size_t len)
{
	struct rd_stream *s = arg;
	struct rd_conn *c = s->conn;
	struct rd_transport *t = c->t;
	struct rd_peer *p = c->peer;
	Raftd__PeerFrame *f = NULL;
	char msg[RD_ERRMSG_SIZE];
	int rv;

	/* A callback for an earlier frame of this packet removed the peer. */
	if (p == NULL)
		return RD_ECLOSED;
	rv = rd_wire_decode(payload, len, &f, msg);
	if (rv != 0)
		return refuse(s, RD_TRANSPORT_APP_MALFORMED, rv, msg) ? RD_EPROTO
		                                                      : RD_ECLOSED;
	p->st.frames_in++;
	p->st.bytes_in += RD_WIRE_HEADER + len;
	/* A stranger (a node asking to join) speaks no Raft: its batches and
	 * snapshot frames are dropped and counted. */
	if ((s->kind == RD_S_RAFT_IN || s->kind == RD_S_SNAP_IN) && rd_conn_stranger(c)) {
		t->st.stranger_refused++;
		if (rd_t_log_ok(t))
			rd_log_warn(
			    "transport: %s frame from a non-member refused peer=%llu "
			    "addr=%s",
			    s->kind == RD_S_RAFT_IN ? "Raft" : "snapshot",
			    (unsigned long long)p->id, c->addr_text);
		rd_wire_free(f);
		return 0;
	}
	switch (s->kind) {
	case RD_S_RAFT_IN:
		if (f->kind_case != RAFTD__PEER_FRAME__KIND_BATCH)
			break;
		filter_batch(c, f->batch);
		p->st.raft_msgs_in += f->batch->n_messages + f->batch->n_heartbeats +
		                      f->batch->n_heartbeat_resps;
		if (t->cbs.on_batch)
			t->cbs.on_batch(t->cbs.arg, p->id, f->batch);
		rd_wire_free(f);
		return 0;
	case RD_S_SNAP_IN:
		if (f->kind_case == RAFTD__PEER_FRAME__KIND_SNAPSHOT_CHUNK) {
			if (!chunk_ok(f->snapshot_chunk, p->id, t->cfg.node_id)) {
				p->st.foreign_from++;
				rd_wire_free(f);
				return 0;
			}
		} else if (f->kind_case == RAFTD__PEER_FRAME__KIND_SNAPSHOT_ACK) {
			if (f->snapshot_ack->from != p->id ||
			    f->snapshot_ack->to != t->cfg.node_id) {
				p->st.foreign_from++;
				rd_wire_free(f);
				return 0;
			}
		} else {
			break;
		}
		if (t->cbs.on_snapshot)
			t->cbs.on_snapshot(t->cbs.arg, p->id, f);
		rd_wire_free(f);
		return 0;
	case RD_S_SERVE:
		if (f->kind_case != RAFTD__PEER_FRAME__KIND_REQUEST || s->got_request)
			break;
		s->got_request = true;
		rd_rpc_deliver_request(s, f); /* takes f */
		return 0;
	case RD_S_CALL:
		if (f->kind_case != RAFTD__PEER_FRAME__KIND_RESPONSE || s->call == NULL)
			break;
		{
			struct rd_call *call = s->call;
			s->call = NULL;
			call->stream = NULL;
			rd_rpc_finish(call, 0, f->response, NULL);
		}
		rd_wire_free(f);
		return 0;
	default:
		break;
	}
	snprintf(msg, sizeof msg, "frame kind %d not allowed on a %s stream",
	         (int)f->kind_case, kind_name(s->kind));
	rd_wire_free(f);
	return refuse(s, RD_TRANSPORT_APP_WRONG_TYPE, RD_EPROTO, msg) ? RD_EPROTO
	                                                              : RD_ECLOSED;
}

int rd_stream_recv(struct rd_stream *s, const uint8_t *data, size_t len, bool fin,
                   size_t *consumed)
{
	struct rd_conn *c = s->conn;
	size_t before = rd_wire_reader_held(&s->in), after;
	int rv;

	*consumed = len;
	if (s->read_dead || c->refused)
		return 0; /* discarded */
	rv = feed(s, data, len, fin);
	after = s->read_dead ? 0 : rd_wire_reader_held(&s->in);
	if (s->read_dead)
		rd_wire_reader_close(&s->in);
	/* Held bytes moved from `before` to `after`: the rest was consumed. */
	*consumed = before + len - after;
	c->held = c->held - before + after;
	if (rv >= 0 && c->held > c->t->cfg.max_partial_bytes) {
		ngtcp2_connection_close_error_set_application_error(
		    &c->ccerr, RD_TRANSPORT_APP_TOO_BIG, NULL, 0);
		c->ccerr_set = true;
		rd_log_warn("transport: partial frames over %llu bytes peer=%llu addr=%s",
		            (unsigned long long)c->t->cfg.max_partial_bytes,
		            (unsigned long long)(c->peer ? c->peer->id : 0),
		            c->addr_text);
		rd_peer_count_malformed(c);
		return -1;
	}
	return rv;
}

static int feed(struct rd_stream *s, const uint8_t *data, size_t len, bool fin)
{
	char msg[RD_ERRMSG_SIZE];
	int rv;

	/* Stream data only once the handshake is done and the identity checked
	 * (no 0-RTT or 0.5-RTT data is accepted). */
	if (s->conn->peer == NULL || !s->conn->established) {
		ngtcp2_connection_close_error_set_application_error(
		    &s->conn->ccerr, RD_TRANSPORT_APP_MALFORMED, NULL, 0);
		s->conn->ccerr_set = true;
		return -1;
	}
	if (s->kind == RD_S_OTHER_IN)
		return refuse(s, RD_TRANSPORT_APP_WRONG_TYPE, RD_EPROTO,
		              "only two unidirectional streams are allowed");
	rv = rd_wire_reader_feed(&s->in, data, len, on_frame, s);
	if (rv == RD_EPROTO)
		return -1; /* refuse() closed the connection */
	if (rv == RD_ECLOSED)
		return 0; /* refuse() shut the stream */
	if (rv == RD_ETOOBIG) {
		snprintf(msg, sizeof msg,
		         "announced frame length over the limit of %llu bytes",
		         (unsigned long long)s->in.max);
		return refuse(s, RD_TRANSPORT_APP_TOO_BIG, rv, msg);
	}
	if (rv != 0)
		return refuse(s, RD_TRANSPORT_APP_INTERNAL, rv,
		              "cannot buffer the frame");
	if (fin && rd_wire_reader_partial(&s->in))
		return refuse(s, RD_TRANSPORT_APP_MALFORMED, RD_EPROTO,
		              "stream ended inside a frame");
	return 0;
}
