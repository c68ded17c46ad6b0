/*
 * Peers: the node id -> address table, the one connection used per peer,
 * frames waiting for a connection, redial with backoff, counters, and the
 * public send functions.
 *
 * One connection per pair of nodes. Each process draws a boot id at start
 * and carries it in the first connection id of every connection it opens
 * (cidmap.c, rd_t_initial_scid); the peer reads it from the authenticated
 * transport parameters at the end of the handshake (conn.c). When a
 * connection completes its handshake while another to the same peer is in
 * use:
 *
 *   - another boot id than the one behind the connection in use: the peer
 *     restarted, and the connection in use leads to a process that is
 *     gone. The new connection replaces it at once (APP_DUPLICATE, counted
 *     in stale_replaced), and every frame queued for the old process is
 *     dropped and counted (stale_dropped) instead of being replayed to the
 *     new one: appends and heartbeats built for the old process's state
 *     would cost the new one work and could confuse a node that lost its
 *     data; Raft retransmits what still matters (thesis §3.5). Without the
 *     boot id, a restarted higher-id node's dials lost the tie-break below
 *     to the dead connection until the idle timeout (a stateless reset
 *     kills it sooner only when the restarted node kept its reset secret).
 *   - the same boot id (a simultaneous dial between the same two
 *     processes): both ends apply the same rule, so they agree without
 *     talking: keep the connection dialed by the lower node id; between two
 *     dialed by the same node keep the newer (that node abandoned the
 *     older one). The loser is closed with APP_DUPLICATE.
 *
 * Who can displace a connection: only a connection whose handshake proved
 * the same node id (mutual TLS: a certificate for that id, signed by the
 * cluster CA, and its key), since each peer entry is keyed by the proven
 * id; a stranger's connection (another id, a non-member) has its own entry
 * and is never compared with a member's. The boot id is authenticated with
 * the rest of the transport parameters (RFC 9000 §7.3), so an on-path
 * attacker cannot change it either. In insecure mode nothing is proven and
 * anyone may claim any id, this rule included, as the mode says.
 *
 * Redial: a dial starts when something waits for a peer that has no
 * connection; after a failed dial the next one waits
 * min(backoff_min * 2^(failures-1), backoff_max), drawn uniformly from the
 * upper half of that interval (jitter keeps restarted nodes from dialing in
 * lockstep).
 */
#include <stdlib.h>
#include <string.h>

#include "transport/internal.h"
#include "util/bytes.h"
#include "util/err.h"
#include "util/log.h"

struct rd_peer *rd_peer_find(const struct rd_transport *t, uint64_t id)
{
	for (struct rd_peer *p = t->peers; p; p = p->next)
		if (p->id == id)
			return p;
	return NULL;
}

static void redial_cb(evutil_socket_t fd, short what, void *arg);

static void dial(struct rd_transport *t, struct rd_peer *p)
{
	p->dialing = rd_conn_dial(t, p);
	if (p->dialing == NULL) {
		p->failures++;
		rd_peer_kick(t, p);
	}
}

void rd_peer_kick(struct rd_transport *t, struct rd_peer *p)
{
	uint64_t delay, half;
	uint8_t r[4];
	struct timeval tv;

	if (t->freeing || !p->registered || p->conn || p->dialing || p->redial_armed)
		return;
	if (p->pend_raft.head == NULL && p->pend_snap.head == NULL &&
	    p->calls_head == NULL)
		return;
	if (p->failures == 0) {
		dial(t, p);
		return;
	}
	delay = t->cfg.backoff_min_ms;
	for (unsigned i = 1; i < p->failures && delay < t->cfg.backoff_max_ms; i++)
		delay *= 2;
	if (delay > t->cfg.backoff_max_ms)
		delay = t->cfg.backoff_max_ms;
	half = delay / 2;
	rd_t_rand(r, sizeof r);
	delay = half + ((uint64_t)r[0] << 24 | (uint64_t)r[1] << 16 | r[2] << 8 | r[3]) %
	                   (delay - half + 1);
	if (p->redial == NULL && (p->redial = evtimer_new(t->base, redial_cb, p)) == NULL)
		return;
	p->redial_armed = true;
	tv.tv_sec = (time_t)(delay / 1000);
	tv.tv_usec = (suseconds_t)(delay % 1000) * 1000;
	evtimer_add(p->redial, &tv);
}

static void redial_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rd_peer *p = arg;

	(void)fd, (void)what;
	p->redial_armed = false;
	if (p->conn || p->dialing || !p->registered || p->t->freeing)
		return;
	dial(p->t, p);
}

/* Drop every frame of `q`; returns how many there were. */
static uint64_t drop_queued(struct rd_squeue *q)
{
	uint64_t n = q->frames_unsent;

	rd_squeue_clear(q);
	return n;
}

static void open_out_streams(struct rd_conn *c)
{
	int64_t id;

	/* Raft first: the receiver tells the two apart by stream id. */
	if (ngtcp2_conn_open_uni_stream(c->qc, &id, NULL) == 0)
		c->raft_out = rd_stream_new(c, id, RD_S_RAFT_OUT);
	if (ngtcp2_conn_open_uni_stream(c->qc, &id, NULL) == 0)
		c->snap_out = rd_stream_new(c, id, RD_S_SNAP_OUT);
}

void rd_peer_conn_up(struct rd_transport *t, struct rd_conn *c)
{
	struct rd_peer *p = c->peer;
	struct rd_conn *other = p->conn;
	const char *cipher;

	bool restarted = p->boot != 0 && c->peer_boot != p->boot;

	if (!c->tp.client)
		c->dialer = p->id;
	if (p->dialing == c)
		p->dialing = NULL;
	if (restarted) {
		rd_log_info("transport: peer restarted peer=%llu addr=%s boot=%016llx "
		            "previous=%016llx",
		            (unsigned long long)p->id, c->addr_text,
		            (unsigned long long)c->peer_boot,
		            (unsigned long long)p->boot);
		p->st.restarts++;
		if (other != NULL && other != c && !other->dead) {
			t->st.stale_replaced++;
			p->conn = c; /* closing `other` must not report the peer down */
			rd_conn_close(other, RD_TRANSPORT_APP_DUPLICATE,
			              "stale connection: the peer restarted");
		}
		/* What waited for the old process (its unsent frames were just
		 * moved here by rd_peer_conn_down) never reaches the new one. */
		p->st.stale_dropped +=
		    drop_queued(&p->pend_raft) + drop_queued(&p->pend_snap);
	} else if (other != NULL && other != c && !other->dead) {
		bool keep_new = c->dialer == other->dialer || c->dialer < other->dialer;
		t->st.duplicates_closed++;
		if (!keep_new) {
			rd_conn_close(c, RD_TRANSPORT_APP_DUPLICATE,
			              "second connection to the peer (tie-break)");
			return;
		}
		p->conn = c; /* so that closing `other` does not report the peer down */
		rd_conn_close(other, RD_TRANSPORT_APP_DUPLICATE,
		              "second connection to the peer (tie-break)");
	}
	p->conn = c;
	p->boot = c->peer_boot;
	c->up_at = rd_clock_now_ns();
	/* Our own dial still in its handshake can only lose a later tie-break
	 * against this working connection and take its streams down with it.
	 * A client completes its handshake before the server does, so the
	 * peer has not seen that dial complete either: abandoning it now
	 * keeps both ends on this connection. */
	if (p->dialing != NULL && p->dialing != c && !p->dialing->established) {
		struct rd_conn *d = p->dialing;
		p->dialing = NULL;
		rd_conn_close(d, RD_TRANSPORT_APP_DUPLICATE,
		              "dial abandoned: the peer's connection came up first");
	}
	if (p->redial_armed) {
		evtimer_del(p->redial);
		p->redial_armed = false;
	}
	p->st.connects++;
	if (p->st.connects > 1)
		p->st.reconnects++;
	cipher = wolfSSL_get_cipher_name(c->ssl);
	snprintf(p->st.cipher, sizeof p->st.cipher, "%s", cipher ? cipher : "");
	open_out_streams(c);
	if (c->raft_out) {
		rd_squeue_salvage(&p->pend_raft, &c->raft_out->out);
		if (c->raft_out->out.unsent)
			rd_stream_want_write(c->raft_out);
	}
	if (c->snap_out) {
		rd_squeue_salvage(&p->pend_snap, &c->snap_out->out);
		if (c->snap_out->out.unsent)
			rd_stream_want_write(c->snap_out);
	}
	rd_log_info("transport: connected peer=%llu addr=%s dialer=%llu cipher=%s",
	            (unsigned long long)p->id, c->addr_text,
	            (unsigned long long)c->dialer, p->st.cipher);
	rd_t_mark_dirty(c);
	if (t->cbs.on_peer)
		t->cbs.on_peer(t->cbs.arg, p->id, true);
}

void rd_peer_conn_down(struct rd_transport *t, struct rd_conn *c, bool failed)
{
	struct rd_peer *p = c->peer;

	if (p == NULL)
		return;
	p->lost_total += c->lost_packets;
	p->loss_events_total += c->loss_events;
	c->lost_packets = 0;
	c->loss_events = 0;
	/* Frames that never started leaving go to the next connection. */
	if (c->raft_out)
		p->st.dropped += rd_squeue_salvage(&c->raft_out->out, &p->pend_raft);
	if (c->snap_out)
		p->st.dropped += rd_squeue_salvage(&c->snap_out->out, &p->pend_snap);
	if (p->dialing == c) {
		p->dialing = NULL;
		if (failed) {
			p->failures++;
			p->st.handshake_failures++;
		}
	}
	if (p->conn == c) {
		/* A connection that lived a while resets the backoff; one closed
		 * right after it came up (refused as a duplicate, say) counts as a
		 * failure, so that dialing cannot spin. */
		if (rd_clock_now_ns() - c->up_at >= NGTCP2_SECONDS)
			p->failures = 0;
		else
			p->failures++;
		p->conn = NULL;
		rd_log_info("transport: disconnected peer=%llu addr=%s",
		            (unsigned long long)p->id, c->addr_text);
		if (t->cbs.on_peer && !t->freeing)
			t->cbs.on_peer(t->cbs.arg, p->id, false);
	}
	rd_peer_kick(t, p);
}

void rd_peer_free(struct rd_transport *t, struct rd_peer *p, int err)
{
	(void)t;
	while (p->calls_head)
		rd_rpc_finish(p->calls_head, err, NULL,
		              err == RD_ESHUTDOWN ? "transport shutting down"
		                                  : "peer removed");
	rd_squeue_clear(&p->pend_raft);
	rd_squeue_clear(&p->pend_snap);
	if (p->redial)
		event_free(p->redial);
	free(p);
}

void rd_peer_count_malformed(struct rd_conn *c)
{
	c->t->st.malformed++;
	if (c->peer)
		c->peer->st.malformed++;
}

int rd_transport_peer_add(struct rd_transport *t, uint64_t id, const struct sockaddr *sa,
                          socklen_t salen, char *msg)
{
	struct rd_peer *p;

	if (id == 0 || id == t->cfg.node_id)
		return rd_errorf(msg, RD_EINVAL, "peer id %llu is not another node",
		                 (unsigned long long)id);
	if (salen > sizeof p->addr)
		return rd_errorf(msg, RD_EINVAL, "peer %llu: address too long",
		                 (unsigned long long)id);
	p = rd_peer_find(t, id);
	if (p == NULL) {
		p = calloc(1, sizeof *p);
		if (p == NULL)
			return rd_errorf(msg, RD_ENOMEM, "peer %llu",
			                 (unsigned long long)id);
		p->id = id;
		p->t = t;
		p->next = t->peers;
		t->peers = p;
	}
	p->registered = true;
	memcpy(&p->addr, sa, salen);
	p->addrlen = salen;
	p->failures = 0;
	rd_peer_kick(t, p);
	return 0;
}

int rd_transport_peer_add_any(struct rd_transport *t, uint64_t handle,
                              const struct sockaddr *sa, socklen_t salen, char *msg)
{
	struct rd_peer *p;
	int rv;

	if (handle < RD_TRANSPORT_ANY_BASE)
		return rd_errorf(msg, RD_EINVAL, "handle %llu may be a node id",
		                 (unsigned long long)handle);
	rv = rd_transport_peer_add(t, handle, sa, salen, msg);
	if (rv == 0 && (p = rd_peer_find(t, handle)) != NULL)
		p->any = true;
	return rv;
}

uint64_t rd_transport_peer_proven(const struct rd_transport *t, uint64_t handle)
{
	const struct rd_peer *p = rd_peer_find(t, handle);
	return p != NULL && p->any ? p->proven : 0;
}

int rd_transport_peer_remove(struct rd_transport *t, uint64_t id)
{
	struct rd_peer **pp = &t->peers, *p;

	while (*pp && (*pp)->id != id)
		pp = &(*pp)->next;
	if ((p = *pp) == NULL)
		return RD_ENOTFOUND;
	*pp = p->next;
	p->registered = false; /* no redial from conn_down */
	for (struct rd_conn *c = t->conns; c; c = c->next) {
		if (c->peer != p)
			continue;
		rd_conn_close(c, RD_TRANSPORT_APP_REMOVED, "peer removed");
		c->peer = NULL;
	}
	rd_peer_free(t, p, RD_ENOTFOUND);
	return 0;
}

static int enqueue(struct rd_transport *t, uint64_t peer, struct rd_sbuf *b, bool snap,
                   char *msg)
{
	struct rd_peer *p = rd_peer_find(t, peer);
	struct rd_stream *s = NULL;
	struct rd_squeue *q;

	if (p == NULL || (!p->registered && p->conn == NULL)) {
		free(b);
		return rd_errorf(msg, RD_ENOTFOUND, "peer %llu is not registered",
		                 (unsigned long long)peer);
	}
	if (p->conn != NULL)
		s = snap ? p->conn->snap_out : p->conn->raft_out;
	q = s ? &s->out : snap ? &p->pend_snap : &p->pend_raft;
	if (q->unsent + b->len > t->cfg.max_queue_bytes) {
		free(b);
		p->st.dropped++;
		return rd_errorf(msg, RD_EAGAIN, "peer %llu: %llu bytes already queued",
		                 (unsigned long long)peer, (unsigned long long)q->unsent);
	}
	p->st.frames_out++;
	p->st.bytes_out += b->len;
	rd_squeue_push(q, b);
	if (s != NULL)
		rd_stream_want_write(s);
	else
		rd_peer_kick(t, p);
	return 0;
}

int rd_transport_send_encoded(struct rd_transport *t, uint64_t peer,
                              const uint8_t *payload, size_t len, uint64_t n_msgs,
                              char *msg)
{
	struct rd_peer *p;
	struct rd_sbuf *b;
	int rv;

	if (len > t->cfg.max_frame_bytes || len > UINT32_MAX)
		return rd_errorf(msg, RD_ETOOBIG, "frame of %zu bytes exceeds the limit",
		                 len);
	b = malloc(sizeof *b + RD_WIRE_HEADER + len);
	if (b == NULL)
		return rd_errorf(msg, RD_ENOMEM, "frame of %zu bytes", len);
	b->next = NULL;
	b->len = RD_WIRE_HEADER + len;
	rd_be32_put(b->data, (uint32_t)len);
	if (len > 0)
		memcpy(b->data + RD_WIRE_HEADER, payload, len);
	rv = enqueue(t, peer, b, false, msg);
	if (rv == 0 && (p = rd_peer_find(t, peer)) != NULL)
		p->st.raft_msgs_out += n_msgs;
	return rv;
}

int rd_transport_send_snapshot(struct rd_transport *t, uint64_t peer,
                               const Raftd__PeerFrame *frame, char *msg)
{
	struct rd_sbuf *b;
	int rv;

	if (frame->kind_case != RAFTD__PEER_FRAME__KIND_SNAPSHOT_CHUNK &&
	    frame->kind_case != RAFTD__PEER_FRAME__KIND_SNAPSHOT_ACK)
		return rd_errorf(msg, RD_EINVAL, "not a snapshot frame");
	b = rd_sbuf_frame(frame, t->cfg.max_snapshot_frame_bytes, msg, &rv);
	if (b == NULL)
		return rv;
	return enqueue(t, peer, b, true, msg);
}

size_t rd_transport_max_frame_bytes(const struct rd_transport *t)
{
	return t->cfg.max_frame_bytes;
}

int rd_transport_peer_stats(const struct rd_transport *t, uint64_t peer,
                            struct rd_transport_peer_stats *out)
{
	const struct rd_peer *p = rd_peer_find(t, peer);

	if (p == NULL)
		return RD_ENOTFOUND;
	*out = p->st;
	out->connected = p->conn != NULL;
	out->lost_packets = p->lost_total;
	out->loss_events = p->loss_events_total;
	out->queued_bytes = p->pend_raft.unsent + p->pend_snap.unsent;
	if (p->conn != NULL) {
		ngtcp2_conn_stat cs;
		ngtcp2_conn_get_conn_stat(p->conn->qc, &cs);
		out->rtt_us = cs.smoothed_rtt / 1000;
		out->min_rtt_us = cs.min_rtt == UINT64_MAX ? 0 : cs.min_rtt / 1000;
		out->lost_packets += p->conn->lost_packets;
		out->loss_events += p->conn->loss_events;
		if (p->conn->raft_out)
			out->queued_bytes += p->conn->raft_out->out.unsent;
		if (p->conn->snap_out)
			out->queued_bytes += p->conn->snap_out->out.unsent;
	} else {
		out->cipher[0] = '\0';
	}
	return 0;
}

int rd_transport_test_send_raw(struct rd_transport *t, uint64_t peer, bool snapshot,
                               const uint8_t *bytes, size_t len)
{
	struct rd_sbuf *b = malloc(sizeof *b + len);

	if (b == NULL)
		return RD_ENOMEM;
	b->next = NULL;
	b->len = len;
	memcpy(b->data, bytes, len);
	return enqueue(t, peer, b, snapshot, NULL);
}

int rd_transport_test_got_ticket(const struct rd_transport *t, uint64_t peer)
{
	const struct rd_peer *p = rd_peer_find(t, peer);
	unsigned char buf[2048];
	word32 n = sizeof buf;

	if (p == NULL || p->conn == NULL)
		return -1;
	if (wolfSSL_get_SessionTicket(p->conn->ssl, buf, &n) != WOLFSSL_SUCCESS)
		return 0;
	return n > 0;
}

int rd_transport_test_dial_flood(struct rd_transport *t, const struct sockaddr *to,
                                 socklen_t tolen, uint64_t as_id, unsigned count)
{
	struct rd_peer p;

	memset(&p, 0, sizeof p);
	p.t = t;
	p.id = as_id;
	memcpy(&p.addr, to, tolen);
	p.addrlen = tolen;
	for (unsigned i = 0; i < count; i++) {
		struct rd_conn *c = rd_conn_dial(t, &p);
		if (c == NULL)
			return RD_ENOMEM;
		rd_conn_write(c); /* the Initial leaves now */
		/* Abandoned without a word; the flush frees it. */
		c->peer = NULL;
		c->silent = true;
		c->dead = true;
		rd_t_mark_dirty(c);
	}
	return 0;
}
