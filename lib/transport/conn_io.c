/*
 * One connection's I/O: feeding a packet to ngtcp2, the write loop that
 * drains the streams' queues into packets, the timer re-armed from
 * ngtcp2_conn_get_expiry after every read and write (as ngtcp2's
 * examples/server.cc does), and
 * closing.
 *
 * Happy path: after a read the connection is marked dirty; the flush calls
 * rd_conn_write, which applies deferred stream resets, opens streams for
 * waiting calls, then loops ngtcp2_conn_writev_stream over the streams with
 * data, with NGTCP2_WRITE_STREAM_FLAG_MORE so that several streams share a
 * packet, until ngtcp2 has nothing more (or congestion control says wait).
 *
 * Failure modes: a fatal ngtcp2 result closes the connection; a full socket
 * (RD_EAGAIN) stops the loop with the packet kept by the endpoint; a
 * handshake refused by either side is logged with the address and reason.
 */
#include <stdio.h>
#include <string.h>

#include "transport/internal.h"
#include "util/err.h"
#include "util/log.h"

/* A new congestion recovery period starts on a loss (RFC 9002 §7.3.2). */
static void note_loss_events(struct rd_conn *c)
{
	ngtcp2_conn_stat cs;

	ngtcp2_conn_get_conn_stat(c->qc, &cs);
	if (cs.congestion_recovery_start_ts != UINT64_MAX &&
	    cs.congestion_recovery_start_ts != c->recovery_ts) {
		c->recovery_ts = cs.congestion_recovery_start_ts;
		c->loss_events++;
	}
}

/* RFC 8446 §6.2 alert descriptions for the refusals raftd meets. */
static const char *alert_text(uint8_t alert)
{
	switch (alert) {
	case 40:
		return "handshake_failure";
	case 42:
		return "bad_certificate";
	case 45:
		return "certificate_expired";
	case 48:
		return "unknown_ca: certificate not signed by the cluster CA";
	case 112:
		return "unrecognized_name";
	case 116:
		return "certificate_required: the peer sent no certificate";
	case 120:
		return "no_application_protocol: no common ALPN";
	default:
		return NULL;
	}
}

static void log_refusal(struct rd_conn *c, int rv)
{
	uint8_t alert = ngtcp2_conn_get_tls_alert(c->qc);
	const char *why = c->tp.reason[0] ? c->tp.reason : alert_text(alert);

	c->t->st.tls_rejected++;
	if (!c->tp.client && !rd_t_log_ok(c->t))
		return;
	rd_log_warn("transport: TLS handshake refused addr=%s peer=%llu side=%s alert=%u "
	            "reason=\"%s\"",
	            c->addr_text, (unsigned long long)c->tp.expect_id,
	            c->tp.client ? "client" : "server", alert,
	            why ? why : ngtcp2_strerror(rv));
}

/* The handshake proved an identity that is not a member: application
 * error APP_REMOVED, "peer removed", as for a member that was removed. */
static void refuse_nonmember(struct rd_conn *c)
{
	static const char reason[] = "peer removed";
	struct rd_transport *t = c->t;

	t->st.nonmember_refused++;
	if (rd_t_log_ok(t))
		rd_log_warn(
		    "transport: refused peer=%llu addr=%s reason=\"not a member\"",
		    (unsigned long long)c->tp.auth_id, c->addr_text);
	ngtcp2_connection_close_error_set_application_error(
	    &c->ccerr, RD_TRANSPORT_APP_REMOVED, (const uint8_t *)reason,
	    sizeof reason - 1);
	c->ccerr_set = true;
	rd_conn_close(c, RD_TRANSPORT_APP_REMOVED, NULL);
}

void rd_conn_read(struct rd_conn *c, const struct sockaddr *from, socklen_t fromlen,
                  const uint8_t *pkt, size_t len)
{
	ngtcp2_path path = rd_conn_path(c);
	ngtcp2_pkt_info pi = {0};
	bool was_established = c->established;
	int rv;

	path.remote.addr = (struct sockaddr *)from;
	path.remote.addrlen = fromlen;
	c->in_read = true;
	rv = ngtcp2_conn_read_pkt(c->qc, &path, &pi, pkt, len, rd_clock_now_ns());
	c->in_read = false;
	if (rv == 0 && c->close_pending) {
		/* A callback (the application's) asked to close meanwhile. */
		rd_conn_close(c, c->close_code, "closed from a callback");
		return;
	}
	if (rv != 0) {
		switch (rv) {
		case NGTCP2_ERR_DRAINING:
			/* The peer closed (RFC 9000 §10.2.2): nothing more to send. */
			if (!c->established)
				rd_log_warn(
				    "transport: peer closed the connection during the "
				    "handshake addr=%s peer=%llu",
				    c->addr_text, (unsigned long long)c->tp.expect_id);
			c->silent = true;
			rd_conn_close(c, 0, NULL);
			return;
		case NGTCP2_ERR_DROP_CONN:
			c->silent = true;
			rd_conn_close(c, 0, NULL);
			return;
		case NGTCP2_ERR_CRYPTO:
			if (!c->ccerr_set) {
				ngtcp2_connection_close_error_set_transport_error_tls_alert(
				    &c->ccerr, ngtcp2_conn_get_tls_alert(c->qc), NULL, 0);
				c->ccerr_set = true;
			}
			log_refusal(c, rv);
			rd_conn_close(c, 0, NULL);
			return;
		case NGTCP2_ERR_CALLBACK_FAILURE:
			if (!c->established && c->tp.reason[0])
				log_refusal(c, rv);
			rd_conn_close(c, 0, NULL);
			return;
		default:
			if (!c->ccerr_set) {
				ngtcp2_connection_close_error_set_transport_error_liberr(
				    &c->ccerr, rv, NULL, 0);
				c->ccerr_set = true;
			}
			rd_conn_close(c, 0, ngtcp2_strerror(rv));
			return;
		}
	}
	if (c->refused) {
		refuse_nonmember(c);
		return;
	}
	note_loss_events(c);
	if (c->half_open && c->established) {
		c->half_open = false;
		c->t->half_open--;
	}
	if (!was_established && c->established) {
		rd_conn_watch_cert(c);
		rd_peer_conn_up(c->t, c);
	}
	if (!c->dead)
		rd_t_mark_dirty(c);
}

static void pop_wlist(struct rd_conn *c)
{
	struct rd_stream *s = c->whead;

	c->whead = s->wnext;
	if (c->whead == NULL)
		c->wtail = NULL;
	s->in_wlist = false;
	s->wnext = NULL;
}

static void rearm(struct rd_conn *c)
{
	ngtcp2_tstamp expiry = ngtcp2_conn_get_expiry(c->qc), now = rd_clock_now_ns();
	uint64_t ns = expiry > now ? expiry - now : 0;
	struct timeval tv;

	if (expiry == UINT64_MAX) {
		evtimer_del(c->timer);
		return;
	}
	tv.tv_sec = (time_t)(ns / NGTCP2_SECONDS);
	tv.tv_usec = (suseconds_t)((ns % NGTCP2_SECONDS) / 1000);
	evtimer_add(c->timer, &tv);
}

/* Send the packets batched in t->txbuf (all `seg` bytes but the last). */
static bool flush_batch(struct rd_conn *c, const ngtcp2_path *path, size_t *len,
                        size_t seg, unsigned *nseg)
{
	int rv = 0;

	if (*len > 0)
		rv = rd_t_send_batch(c->t, path->remote.addr, path->remote.addrlen,
		                     c->t->txbuf, *len, seg);
	*len = 0;
	*nseg = 0;
	return rv == 0;
}

void rd_conn_write(struct rd_conn *c)
{
	struct rd_transport *t = c->t;
	size_t blen = 0, seg = 0;
	unsigned nseg = 0, max_segs = t->no_gso ? 1 : RD_T_GSO_SEGS;
	ngtcp2_path_storage ps;
	ngtcp2_pkt_info pi;
	ngtcp2_tstamp ts = rd_clock_now_ns();
	unsigned budget = 512;

	if (c->dead)
		return;
	for (size_t i = 0; i < c->n_shut; i++)
		ngtcp2_conn_shutdown_stream(c->qc, c->shut[i].id, c->shut[i].code);
	c->n_shut = 0;
	if (c->peer && c->peer->conn == c)
		rd_rpc_start_waiting(c->peer);
	ngtcp2_path_storage_zero(&ps);
	while (!t->blocked) {
		struct rd_stream *s = c->whead;
		ngtcp2_vec v[16];
		size_t nv = 0, total = 0;
		int64_t sid = -1;
		uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
		ngtcp2_ssize n, ndata = -1;

		if (s != NULL) {
			nv = rd_squeue_vecs(&s->out, v, 16);
			for (size_t i = 0; i < nv; i++)
				total += v[i].len;
			if (s->out.fin && !s->out.fin_sent && total == s->out.unsent)
				flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
			if (nv == 0 && !(flags & NGTCP2_WRITE_STREAM_FLAG_FIN)) {
				pop_wlist(c);
				continue;
			}
			sid = s->id;
		}
		n = ngtcp2_conn_writev_stream(c->qc, &ps.path, &pi, t->txbuf + blen,
		                              RD_T_MAX_PKT, &ndata, flags, sid,
		                              nv ? v : NULL, nv, ts);
		if (s != NULL && ndata >= 0) {
			rd_squeue_advance(&s->out, (size_t)ndata);
			if ((flags & NGTCP2_WRITE_STREAM_FLAG_FIN) &&
			    (size_t)ndata == total)
				s->out.fin_sent = true;
			if (s->out.unsent == 0 && (!s->out.fin || s->out.fin_sent))
				pop_wlist(c);
		}
		if (n < 0) {
			if (n == NGTCP2_ERR_WRITE_MORE)
				continue;
			if (n == NGTCP2_ERR_STREAM_DATA_BLOCKED && c->peer != NULL)
				c->peer->st.credit_waits++;
			if (n == NGTCP2_ERR_STREAM_DATA_BLOCKED ||
			    n == NGTCP2_ERR_STREAM_SHUT_WR ||
			    n == NGTCP2_ERR_STREAM_NOT_FOUND) {
				if (s != NULL && c->whead == s)
					pop_wlist(c);
				continue;
			}
			ngtcp2_connection_close_error_set_transport_error_liberr(
			    &c->ccerr, (int)n, NULL, 0);
			c->ccerr_set = true;
			rd_conn_close(c, 0, ngtcp2_strerror((int)n));
			return;
		}
		if (n == 0)
			break;
		t->st.packets_out++;
		/* GSO: equal-sized datagrams go out in one call; a shorter one
		 * ends the batch (RFC 9000 §14 leaves sizes to the sender). */
		if (nseg == 0)
			seg = (size_t)n;
		blen += (size_t)n;
		nseg++;
		if ((size_t)n < seg || nseg >= max_segs ||
		    blen + RD_T_MAX_PKT > RD_T_TX_MAX) {
			if (!flush_batch(c, &ps.path, &blen, seg, &nseg))
				break;
		}
		if (--budget == 0) {
			/* Let the loop breathe; finish on the next turn. */
			rd_t_mark_dirty(c);
			break;
		}
	}
	flush_batch(c, &ps.path, &blen, seg, &nseg);
	rearm(c);
}

void rd_conn_close(struct rd_conn *c, uint64_t app_error, const char *why)
{
	struct rd_transport *t = c->t;
	uint8_t pkt[RD_T_MAX_PKT];
	ngtcp2_path_storage ps;
	ngtcp2_pkt_info pi;
	ngtcp2_ssize n;

	if (c->dead)
		return;
	if (c->in_read) {
		/* Inside ngtcp2_conn_read_pkt: writing now is not allowed. */
		c->close_pending = true;
		c->close_code = app_error;
		return;
	}
	if (!c->ccerr_set)
		ngtcp2_connection_close_error_set_application_error(&c->ccerr, app_error,
		                                                    NULL, 0);
	if (why != NULL)
		rd_log_info(
		    "transport: closing connection peer=%llu addr=%s reason=\"%s\"",
		    (unsigned long long)(c->peer ? c->peer->id : c->tp.expect_id),
		    c->addr_text, why);
	if (c->qc && !c->silent && !ngtcp2_conn_is_in_closing_period(c->qc) &&
	    !ngtcp2_conn_is_in_draining_period(c->qc)) {
		ngtcp2_path_storage_zero(&ps);
		n = ngtcp2_conn_write_connection_close(
		    c->qc, &ps.path, &pi, pkt, sizeof pkt, &c->ccerr, rd_clock_now_ns());
		if (n > 0)
			rd_t_send_pkt(t, (struct sockaddr *)&c->remote, c->remote_len,
			              pkt, (size_t)n);
	}
	c->dead = true;
	evtimer_del(c->timer);
	rd_peer_conn_down(t, c, !c->established);
	rd_t_mark_dirty(c); /* freed by the flush */
}
