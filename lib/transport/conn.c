/*
 * One QUIC connection (RFC 9000) driven by ngtcp2: creation for both roles,
 * the callbacks and the timer. Reading, writing and closing are in
 * conn_io.c.
 *
 * Happy path: a packet comes in (endpoint.c found us by connection id),
 * ngtcp2_conn_read_pkt runs our callbacks (stream data is dispatched at
 * once), then the connection is marked dirty and written at the end of the
 * loop turn: streams with queued data are drained into packets with
 * NGTCP2_WRITE_STREAM_FLAG_MORE so that several streams share a packet, and
 * the one timer is re-armed from ngtcp2_conn_get_expiry.
 *
 * Failure modes: any fatal ngtcp2 result (handshake timeout, idle timeout,
 * TLS alert, protocol violation, our own refusal of a frame on the Raft
 * stream) ends in rd_conn_close: CONNECTION_CLOSE is written when the
 * connection is not already closing or draining, the peer is told the
 * connection is gone, and the object is freed at the end of the turn. The
 * closing period of RFC 9000 §10.2 is not kept: a late packet for a freed
 * connection gets a stateless reset instead.
 *
 * Our callbacks never call back into ngtcp2's write functions: decisions
 * that need a write (tie-break, stream refusal, close) are recorded and
 * carried out after ngtcp2_conn_read_pkt returns.
 */
#include <arpa/inet.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "transport/internal.h"
#include "util/err.h"
#include "util/list.h"
#include "util/log.h"

static struct rd_conn *conn_of(void *user_data)
{
	return user_data;
}

static ngtcp2_conn *get_conn(ngtcp2_crypto_conn_ref *ref)
{
	return ((struct rd_conn *)ref->user_data)->qc;
}

static void rand_cb(uint8_t *dest, size_t len, const ngtcp2_rand_ctx *ctx)
{
	(void)ctx;
	rd_t_rand(dest, len);
}

static int new_cid_cb(ngtcp2_conn *qc, ngtcp2_cid *cid, uint8_t *token, size_t cidlen,
                      void *ud)
{
	struct rd_conn *c = conn_of(ud);

	(void)qc;
	rd_t_rand(cid->data, cidlen);
	cid->datalen = cidlen;
	/* Tokens derive from a secret that survives restarts (endpoint.c), so
	 * a restarted node can reset connections its previous life held. */
	if (ngtcp2_crypto_generate_stateless_reset_token(
	        token, c->t->reset_secret, sizeof c->t->reset_secret, cid) != 0)
		return NGTCP2_ERR_CALLBACK_FAILURE;
	if (rd_t_cid_add(c->t, cid, c) != 0)
		return NGTCP2_ERR_CALLBACK_FAILURE;
	return 0;
}

static int remove_cid_cb(ngtcp2_conn *qc, const ngtcp2_cid *cid, void *ud)
{
	(void)qc;
	rd_t_cid_del(conn_of(ud)->t, cid);
	return 0;
}

static int handshake_completed_cb(ngtcp2_conn *qc, void *ud)
{
	struct rd_conn *c = conn_of(ud);
	struct rd_transport *t = c->t;
	struct rd_peer *p;

	(void)qc;
	if (!rd_tls_alpn_ok(t->tls, c->ssl)) {
		snprintf(c->tp.reason, sizeof c->tp.reason, "ALPN %s not negotiated",
		         t->cfg.alpn);
		/* no_application_protocol, RFC 9001 §8.1 */
		ngtcp2_connection_close_error_set_transport_error_tls_alert(&c->ccerr,
		                                                            120, NULL, 0);
		c->ccerr_set = true;
		return NGTCP2_ERR_CALLBACK_FAILURE;
	}
	if (c->tp.auth_id == 0 || c->tp.auth_id == t->cfg.node_id) {
		snprintf(c->tp.reason, sizeof c->tp.reason,
		         "peer identity not established");
		ngtcp2_connection_close_error_set_transport_error_tls_alert(&c->ccerr, 42,
		                                                            NULL, 0);
		c->ccerr_set = true;
		return NGTCP2_ERR_CALLBACK_FAILURE;
	}
	if (c->peer == NULL) {
		/* Server side: a CA-signed certificate is not enough, the id must
		 * be a member (a decommissioned node, a certificate issued early
		 * and never used): refused before any stream data is read. */
		p = rd_peer_find(t, c->tp.auth_id);
		if ((p == NULL || !p->registered) && t->cbs.is_member != NULL &&
		    !t->cbs.is_member(t->cbs.arg, c->tp.auth_id)) {
			/* A node asking to join: admitted as a stranger, which
			 * may only send join requests and member probes
			 * (rd_conn_stranger), as long as fewer than
			 * RD_TRANSPORT_MAX_STRANGERS are held. Beyond that,
			 * closed by rd_conn_read once ngtcp2 returns: closing
			 * from inside this callback is not allowed. */
			if (t->strangers >= RD_TRANSPORT_MAX_STRANGERS) {
				c->refused = true;
				return 0;
			}
			c->stranger = true;
			t->strangers++;
		}
		if (p == NULL) {
			p = calloc(1, sizeof *p);
			if (p == NULL)
				return NGTCP2_ERR_CALLBACK_FAILURE;
			p->id = c->tp.auth_id;
			p->t = t;
			memcpy(&p->addr, &c->remote, c->remote_len);
			p->addrlen = c->remote_len;
			p->next = t->peers;
			t->peers = p;
		}
		c->peer = p;
	} else if (c->peer->any) {
		c->peer->proven = c->tp.auth_id;
	}
	/* The peer's boot id: its initial source connection id, which ngtcp2
	 * checked against the authenticated transport parameters (RFC 9000
	 * §7.3), so it comes from the holder of the certificate just
	 * verified. */
	{
		const ngtcp2_transport_params *rp =
		    ngtcp2_conn_get_remote_transport_params(c->qc);
		c->peer_boot = rp != NULL ? rd_t_cid_boot(&rp->initial_scid) : 0;
	}
	c->established = true;
	if (t->cfg.keepalive_ms)
		ngtcp2_conn_set_keep_alive_timeout(
		    c->qc, (ngtcp2_duration)t->cfg.keepalive_ms * NGTCP2_MILLISECONDS);
	return 0;
}

static int recv_stream_data_cb(ngtcp2_conn *qc, uint32_t flags, int64_t id,
                               uint64_t offset, const uint8_t *data, size_t len, void *ud,
                               void *sud)
{
	struct rd_stream *s = sud;
	int rv = 0;
	size_t consumed = len;

	(void)offset;
	if (s != NULL)
		rv = rd_stream_recv(
		    s, data, len, (flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0, &consumed);
	/* Credit goes back only for bytes of frames that were handed on (or
	 * discarded): bytes of a partial frame stay counted against the
	 * stream and connection windows (RFC 9000 §4.1), so that the windows,
	 * not the sender, bound what a peer can make us hold (their sizes:
	 * stream_window). */
	if (rv >= 0 && consumed > 0) {
		ngtcp2_conn_extend_max_stream_offset(qc, id, consumed);
		ngtcp2_conn_extend_max_offset(qc, consumed);
	}
	(void)ud;
	return rv < 0 ? NGTCP2_ERR_CALLBACK_FAILURE : 0;
}

static int acked_cb(ngtcp2_conn *qc, int64_t id, uint64_t offset, uint64_t len, void *ud,
                    void *sud)
{
	struct rd_stream *s = sud;

	(void)qc, (void)id, (void)offset, (void)ud;
	if (s != NULL)
		rd_squeue_ack(&s->out, len);
	return 0;
}

static int stream_open_cb(ngtcp2_conn *qc, int64_t id, void *ud)
{
	struct rd_conn *c = conn_of(ud);
	enum rd_stream_kind kind;

	(void)qc;
	if ((id & 0x2) == 0)
		kind = RD_S_SERVE;
	else if ((id >> 2) == 0)
		kind = RD_S_RAFT_IN;
	else if ((id >> 2) == 1)
		kind = RD_S_SNAP_IN;
	else
		kind = RD_S_OTHER_IN;
	return rd_stream_new(c, id, kind) ? 0 : NGTCP2_ERR_CALLBACK_FAILURE;
}

static int stream_close_cb(ngtcp2_conn *qc, uint32_t flags, int64_t id,
                           uint64_t app_error, void *ud, void *sud)
{
	struct rd_stream *s = sud;

	(void)flags, (void)app_error, (void)ud;
	/* ngtcp2 returns stream credit by itself only for reset streams: give
	 * the peer one more stream of the kind it just finished (RFC 9000
	 * §4.6), or its RPCs stall once initial_max_streams_bidi are used. */
	if (!ngtcp2_conn_is_local_stream(qc, id)) {
		if (ngtcp2_is_bidi_stream(id))
			ngtcp2_conn_extend_max_streams_bidi(qc, 1);
		else
			ngtcp2_conn_extend_max_streams_uni(qc, 1);
	}
	if (s != NULL)
		rd_stream_free(s, RD_ECLOSED);
	return 0;
}

static int extend_max_stream_data_cb(ngtcp2_conn *qc, int64_t id, uint64_t max, void *ud,
                                     void *sud)
{
	struct rd_stream *s = sud;

	(void)qc, (void)id, (void)max, (void)ud;
	if (s != NULL && s->out.unsent > 0)
		rd_stream_want_write(s);
	return 0;
}

static int extend_max_bidi_cb(ngtcp2_conn *qc, uint64_t max, void *ud)
{
	(void)qc, (void)max;
	rd_t_mark_dirty(conn_of(ud));
	return 0;
}

/* RFC 9002 §6 losses, counted from ngtcp2's qlog events: 0.12 exposes no
 * counter. Only the short "packet_lost" records are looked at. */
static void qlog_cb(void *ud, uint32_t flags, const void *data, size_t len)
{
	static const char needle[] = "recovery:packet_lost";

	(void)flags;
	if (len < 256 && memmem(data, len, needle, sizeof needle - 1) != NULL)
		conn_of(ud)->lost_packets++;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rd_conn *c = arg;
	int rv;

	(void)fd, (void)what;
	if (c->dead)
		return;
	rv = ngtcp2_conn_handle_expiry(c->qc, rd_clock_now_ns());
	if (rv == NGTCP2_ERR_IDLE_CLOSE) {
		rd_log_info("transport: connection idle, closed peer=%llu addr=%s",
		            (unsigned long long)(c->peer ? c->peer->id : 0),
		            c->addr_text);
		c->silent = true; /* nothing is sent on idle close (RFC 9000 §10.1) */
		rd_conn_close(c, 0, NULL);
		return;
	}
	if (rv != 0) {
		if (rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT &&
		    (c->tp.client || rd_t_log_ok(c->t)))
			rd_log_warn("transport: handshake timed out peer=%llu addr=%s",
			            (unsigned long long)(c->peer ? c->peer->id : 0),
			            c->addr_text);
		ngtcp2_connection_close_error_set_transport_error_liberr(&c->ccerr, rv,
		                                                         NULL, 0);
		c->ccerr_set = true;
		rd_conn_close(c, 0, ngtcp2_strerror(rv));
		return;
	}
	rd_conn_write(c);
}

static const ngtcp2_callbacks callbacks_template = {
    .recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb,
    .handshake_completed = handshake_completed_cb,
    .encrypt = ngtcp2_crypto_encrypt_cb,
    .decrypt = ngtcp2_crypto_decrypt_cb,
    .hp_mask = ngtcp2_crypto_hp_mask_cb,
    .recv_stream_data = recv_stream_data_cb,
    .acked_stream_data_offset = acked_cb,
    .stream_open = stream_open_cb,
    .stream_close = stream_close_cb,
    .recv_retry = ngtcp2_crypto_recv_retry_cb,
    .extend_max_local_streams_bidi = extend_max_bidi_cb,
    .rand = rand_cb,
    .get_new_connection_id = new_cid_cb,
    .remove_connection_id = remove_cid_cb,
    .update_key = ngtcp2_crypto_update_key_cb,
    .extend_max_stream_data = extend_max_stream_data_cb,
    .delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb,
    .delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb,
    .get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb,
    .version_negotiation = ngtcp2_crypto_version_negotiation_cb,
};

/*
 * Flow-control windows (RFC 9000 §4). Credit comes back only as frames are
 * consumed (recv_stream_data_cb), so the connection's window,
 * max_partial_bytes, is what a peer can make us hold. ngtcp2 advertises
 * credit given back (MAX_STREAM_DATA, MAX_DATA) only once more than half
 * a window waits to be advertised (conn_should_send_max_stream_data in
 * ngtcp2_conn.c), so up to half a window may be consumed and not yet
 * usable by the sender. A window of one largest frame then stalls for
 * good: small frames consumed but not advertised, plus a frame near the
 * cap behind them, exceed it; the receiver waits for the rest of that
 * frame and the sender for credit, and every later frame on the stream
 * (heartbeats, node liveness) waits behind it while the connection stays
 * up.
 *
 * Hence windows of twice what is held: a stream holds less than one frame
 * of its cap while that frame is incomplete, so with a window of twice
 * the cap, at most half of it unadvertised, the next byte of the frame
 * always has credit (bytes received already need none when resent). A
 * stream's window adds no memory: the connection's bounds them all. For
 * the connection the same holds when max_partial_bytes is at least twice
 * what is incomplete at once: its default is twice one frame of each kind
 * and a second request (rd_transport_new), and the config asks for twice
 * a Raft frame at least (util/config.c).
 */
static uint64_t stream_window(size_t frame_cap)
{
	return 2 * ((uint64_t)frame_cap + RD_WIRE_HEADER);
}

static void settings_for(struct rd_transport *t, ngtcp2_settings *s,
                         const ngtcp2_cid *odcid, bool client)
{
	ngtcp2_settings_default(s);
	s->initial_ts = rd_clock_now_ns();
	s->handshake_timeout =
	    (ngtcp2_duration)t->cfg.handshake_timeout_ms * NGTCP2_MILLISECONDS;
	/* No window auto-tuning past the initial windows (params_for): they
	 * are the memory bound. */
	s->max_window = t->cfg.max_partial_bytes;
	s->max_stream_window = stream_window(t->cfg.max_frame_bytes);
	/* Raft traffic flows both ways (appends one way, acknowledgements
	 * the other), so most ACKs ride on packets we send anyway: an ACK of
	 * its own after every second packet costs a datagram each way at
	 * load. RFC 9000 §13.2.2 makes "after two" a SHOULD and allows
	 * fewer ACKs; loss detection still gets one within max_ack_delay. */
	s->ack_thresh = RD_T_ACK_THRESH;
	/* ngtcp2 formats every packet as JSON once qlog is on (it costs a part
	 * of the throughput, see make bench-transport), hence the switch; and
	 * only on connections we dialed, so that no stranger's handshake makes
	 * us format anything. */
	if (t->cfg.count_lost_packets && client)
		s->qlog.write = qlog_cb;
	s->qlog.odcid = *odcid;
}

static void params_for(struct rd_transport *t, ngtcp2_transport_params *p)
{
	ngtcp2_transport_params_default(p);
	p->initial_max_data = t->cfg.max_partial_bytes;
	p->initial_max_stream_data_bidi_local = stream_window(t->cfg.max_rpc_frame_bytes);
	p->initial_max_stream_data_bidi_remote =
	    stream_window(t->cfg.max_rpc_frame_bytes);
	p->initial_max_stream_data_uni = stream_window(t->cfg.max_frame_bytes);
	p->initial_max_streams_bidi = 1024;
	p->initial_max_streams_uni = 3; /* Raft, snapshot, and one to refuse */
	p->max_idle_timeout =
	    (ngtcp2_duration)t->cfg.idle_timeout_ms * NGTCP2_MILLISECONDS;
}

static struct rd_conn *conn_alloc(struct rd_transport *t, const struct sockaddr *remote,
                                  socklen_t remote_len)
{
	struct rd_conn *c = calloc(1, sizeof *c);
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (c == NULL)
		return NULL;
	c->t = t;
	rd_t_mem_init(&c->mem);
	c->tp.ref.get_conn = get_conn;
	c->tp.ref.user_data = c;
	memcpy(&c->remote, remote, remote_len);
	c->remote_len = remote_len;
	if (remote->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)remote;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
		port = ntohs(in->sin_port);
	} else if (remote->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)remote;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
		port = ntohs(in6->sin6_port);
	}
	snprintf(c->addr_text, sizeof c->addr_text, "%s:%u", host, port);
	ngtcp2_connection_close_error_default(&c->ccerr);
	c->timer = evtimer_new(t->base, timer_cb, c);
	if (c->timer == NULL) {
		free(c);
		return NULL;
	}
	c->next = t->conns;
	if (t->conns)
		t->conns->prev = c;
	t->conns = c;
	t->st.conns++;
	return c;
}

ngtcp2_path rd_conn_path(struct rd_conn *c)
{
	ngtcp2_path path = {
	    .local = {.addr = (struct sockaddr *)&c->t->local,
	              .addrlen = c->t->local_len},
	    .remote = {.addr = (struct sockaddr *)&c->remote, .addrlen = c->remote_len},
	};
	return path;
}

struct rd_conn *rd_conn_dial(struct rd_transport *t, struct rd_peer *p)
{
	struct rd_conn *c = conn_alloc(t, (const struct sockaddr *)&p->addr, p->addrlen);
	ngtcp2_callbacks cbs = callbacks_template;
	ngtcp2_cid dcid, scid;
	ngtcp2_settings settings;
	ngtcp2_transport_params params;
	ngtcp2_path path;

	if (c == NULL)
		return NULL;
	c->peer = p;
	c->dialer = t->cfg.node_id;
	c->tp.client = true;
	c->tp.expect_id = p->id;
	c->tp.any = p->any;
	dcid.datalen = 18;
	rd_t_rand(dcid.data, dcid.datalen);
	rd_t_initial_scid(t, &scid);
	settings_for(t, &settings, &dcid, true);
	params_for(t, &params);
	path = rd_conn_path(c);
	c->ssl = rd_tls_session(t->tls, &c->tp);
	if (c->ssl == NULL)
		goto err_after_alloc;
	cbs.client_initial = ngtcp2_crypto_client_initial_cb;
	if (ngtcp2_conn_client_new(&c->qc, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1, &cbs,
	                           &settings, &params, &c->mem.mem, c) != 0)
		goto err_after_alloc;
	ngtcp2_conn_set_tls_native_handle(c->qc, c->ssl);
	if (rd_t_cid_add(t, &scid, c) != 0)
		goto err_after_alloc;
	t->st.dialed++;
	rd_t_mark_dirty(c);
	return c;
err_after_alloc:
	c->dead = true;
	rd_conn_free(c);
	return NULL;
}

struct rd_conn *rd_conn_accept(struct rd_transport *t, const ngtcp2_pkt_hd *hd,
                               const ngtcp2_cid *odcid, const struct sockaddr *from,
                               socklen_t fromlen)
{
	struct rd_conn *c = conn_alloc(t, from, fromlen);
	ngtcp2_callbacks cbs = callbacks_template;
	ngtcp2_cid scid;
	ngtcp2_settings settings;
	ngtcp2_transport_params params;
	ngtcp2_path path;

	if (c == NULL)
		return NULL;
	cbs.recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
	rd_t_initial_scid(t, &scid);
	settings_for(t, &settings, odcid ? odcid : &hd->dcid, false);
	params_for(t, &params);
	params.original_dcid = odcid ? *odcid : hd->dcid;
	if (odcid != NULL) {
		/* RFC 9000 §7.3: the id our Retry chose is authenticated too. */
		params.retry_scid = hd->dcid;
		params.retry_scid_present = 1;
		settings.token = hd->token;
	}
	params.stateless_reset_token_present = 1;
	if (ngtcp2_crypto_generate_stateless_reset_token(
	        params.stateless_reset_token, t->reset_secret, sizeof t->reset_secret,
	        &scid) != 0)
		goto err_after_alloc;
	path = rd_conn_path(c);
	c->ssl = rd_tls_session(t->tls, &c->tp);
	if (c->ssl == NULL)
		goto err_after_alloc;
	if (ngtcp2_conn_server_new(&c->qc, &hd->scid, &scid, &path, hd->version, &cbs,
	                           &settings, &params, &c->mem.mem, c) != 0)
		goto err_after_alloc;
	ngtcp2_conn_set_tls_native_handle(c->qc, c->ssl);
	/* The client keeps using the original DCID until it hears from us. */
	if (rd_t_cid_add(t, &scid, c) != 0 || rd_t_cid_add(t, &hd->dcid, c) != 0)
		goto err_after_alloc;
	t->st.accepted++;
	c->half_open = true;
	t->half_open++;
	return c;
err_after_alloc:
	c->dead = true;
	rd_conn_free(c);
	return NULL;
}

static void cert_expired_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rd_conn *c = arg;
	struct timeval tv = {1, 0};
	int64_t now = (int64_t)time(NULL);

	(void)fd, (void)what;
	if (c->dead)
		return;
	if (now < c->cert_not_after) {
		/* Woken early (a timer is relative, the certificate's date is
		 * absolute): look again in a second. */
		evtimer_add(c->cert_ev, &tv);
		return;
	}
	c->t->st.cert_closed++;
	rd_log_warn("transport: peer certificate expired, closing peer=%llu addr=%s",
	            (unsigned long long)(c->peer ? c->peer->id : 0), c->addr_text);
	rd_conn_close(c, RD_TRANSPORT_APP_CERT, "peer certificate expired");
}

void rd_conn_watch_cert(struct rd_conn *c)
{
	struct timeval tv;
	int64_t left;

	if (c->t->cfg.tls_mode != RD_TLS_MUTUAL)
		return;
	c->cert_not_after = rd_tls_peer_not_after(c->ssl);
	if (c->cert_not_after < 0)
		return;
	left = c->cert_not_after - (int64_t)time(NULL);
	if (left < 0)
		left = 0;
	if (c->cert_ev == NULL &&
	    (c->cert_ev = evtimer_new(c->t->base, cert_expired_cb, c)) == NULL)
		return;
	tv.tv_sec = (time_t)left + 1;
	tv.tv_usec = 0;
	evtimer_add(c->cert_ev, &tv);
}

bool rd_conn_stranger(struct rd_conn *c)
{
	struct rd_transport *t = c->t;

	if (!c->stranger)
		return false;
	/* Added since the handshake (its join applied here): a member now. */
	if ((c->peer != NULL && c->peer->registered) ||
	    (t->cbs.is_member != NULL && t->cbs.is_member(t->cbs.arg, c->tp.auth_id))) {
		c->stranger = false;
		t->strangers--;
		return false;
	}
	return true;
}

void rd_conn_free(struct rd_conn *c)
{
	struct rd_transport *t = c->t;

	while (c->streams)
		rd_stream_free(c->streams, t->freeing ? RD_ESHUTDOWN : RD_ECLOSED);
	if (c->stranger) {
		c->stranger = false;
		t->strangers--;
	}
	if (c->half_open) {
		c->half_open = false;
		t->half_open--;
	}
	rd_t_cid_del_conn(t, c);
	if (c->timer)
		event_free(c->timer);
	if (c->cert_ev)
		event_free(c->cert_ev);
	if (c->qc)
		ngtcp2_conn_del(c->qc);
	size_t left = rd_t_mem_release(&c->mem); /* what ngtcp2 lost (mem.c) */
	if (left > 0) {
		t->st.ngtcp2_blocks_reclaimed += left;
		rd_log_debug("transport: freed %zu blocks ngtcp2 left peer=%llu", left,
		             (unsigned long long)(c->peer ? c->peer->id : 0));
	}
	if (c->ssl)
		wolfSSL_free(c->ssl);
	RD_LIST_UNLINK(t->conns, c, prev, next);
	t->st.conns--;
	free(c);
}
