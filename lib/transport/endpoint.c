/*
 * The endpoint: one UDP socket on the caller's libevent base, the
 * connection-id map, packet dispatch, stateless resets and the flush that
 * writes every connection touched during a loop turn.
 *
 * Happy path: the socket becomes readable, up to a batch of datagrams is
 * read with recvmmsg, each is routed by its destination connection id to a
 * connection (or, for an Initial packet with an unknown id, a new server
 * connection); connections marked dirty are written by one deferred event
 * at the end of the turn, so that one turn's frames share packets.
 *
 * Failure modes: a send that would block keeps the packet (only one: every
 * connection stops writing until the socket drains, then all are written
 * again); other send errors drop the packet, which QUIC recovers like a
 * loss. Packets for no connection of ours go to stranger.c (new
 * connections, Retry, stateless resets).
 */
#include "transport/internal.h" /* first: wolfssl/options.h */

#include <errno.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/udp.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "util/err.h"
#include "util/log.h"

#define RX_BATCH 32
#define RX_SLOT  2048

void rd_t_rand(uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t got = getrandom(p, n, 0);
		if (got <= 0) {
			/* getrandom only fails before the pool is seeded at boot. */
			for (size_t i = 0; i < n; i++)
				p[i] = (uint8_t)rand();
			return;
		}
		p += got;
		n -= (size_t)got;
	}
}

/* One sendmsg; with seg < len the kernel cuts the buffer into datagrams of
 * `seg` bytes (UDP GSO, Linux 4.18+), the last one possibly shorter. */
static ssize_t send_once(struct rd_transport *t, const struct sockaddr *to,
                         socklen_t tolen, const uint8_t *buf, size_t len, size_t seg)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr m = {.msg_name = (void *)to,
	                   .msg_namelen = tolen,
	                   .msg_iov = &iov,
	                   .msg_iovlen = 1};
	union {
		char buf[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} ctl;
	ssize_t n;

	if (seg < len) {
		struct cmsghdr *cm;
		memset(&ctl, 0, sizeof ctl);
		m.msg_control = ctl.buf;
		m.msg_controllen = sizeof ctl.buf;
		cm = CMSG_FIRSTHDR(&m);
		cm->cmsg_level = SOL_UDP;
		cm->cmsg_type = UDP_SEGMENT;
		cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
		*(uint16_t *)(void *)CMSG_DATA(cm) = (uint16_t)seg;
	}
	do
		n = sendmsg(t->fd, &m, 0);
	while (n < 0 && errno == EINTR);
	return n;
}

int rd_t_send_batch(struct rd_transport *t, const struct sockaddr *to, socklen_t tolen,
                    const uint8_t *buf, size_t len, size_t seg)
{
	if (t->blocked)
		return RD_EAGAIN;
	if (t->test_drop_every != 0 && ++t->test_sends % t->test_drop_every == 0)
		return 0; /* a lossy path (tests only) */
	if (send_once(t, to, tolen, buf, len, seg) >= 0)
		return 0;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
		memcpy(t->saved_pkt, buf, len);
		t->saved_len = len;
		t->saved_seg = seg;
		memcpy(&t->saved_to, to, tolen);
		t->saved_tolen = tolen;
		t->blocked = true;
		t->st.send_blocked++;
		event_add(t->wev, NULL);
		return RD_EAGAIN;
	}
	if (seg < len && !t->no_gso) {
		/* No GSO on this path: from now on one datagram per call. The
		 * batch is dropped; QUIC loss recovery resends it. */
		rd_log_info(
		    "transport: UDP GSO unavailable (errno %d), sending datagrams singly",
		    errno);
		t->no_gso = true;
		return 0;
	}
	rd_log_debug("transport: sendmsg failed errno=%d", errno);
	return 0; /* dropped: QUIC loss recovery resends */
}

int rd_t_send_pkt(struct rd_transport *t, const struct sockaddr *to, socklen_t tolen,
                  const uint8_t *pkt, size_t len)
{
	return rd_t_send_batch(t, to, tolen, pkt, len, len);
}

void rd_t_mark_dirty(struct rd_conn *c)
{
	struct rd_transport *t = c->t;

	if (c->dirty)
		return;
	c->dirty = true;
	c->dnext = t->dirty;
	t->dirty = c;
	if (!t->freeing)
		event_active(t->flush_ev, 0, 0);
}

/* Write every dirty connection; free the dead ones only when `free_dead`
 * (the flush event), else they stay on the list for it: freeing fails the
 * calls on their streams, whose callbacks must not run inside the caller
 * of rd_transport_flush. */
static void flush(struct rd_transport *t, bool free_dead)
{
	struct rd_conn *list = t->dirty, *c;

	t->dirty = NULL;
	while ((c = list) != NULL) {
		list = c->dnext;
		if (c->dead && !free_dead) {
			c->dnext = t->dirty; /* still dirty; flush_ev is active */
			t->dirty = c;
			continue;
		}
		c->dirty = false;
		if (c->dead)
			rd_conn_free(c);
		else
			rd_conn_write(c);
	}
}

void rd_transport_flush(struct rd_transport *t)
{
	flush(t, false);
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	flush(arg, true);
}

static void write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rd_transport *t = arg;
	ssize_t n;

	(void)fd, (void)what;
	n = send_once(t, (struct sockaddr *)&t->saved_to, t->saved_tolen, t->saved_pkt,
	              t->saved_len, t->saved_seg);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
		event_add(t->wev, NULL);
		return;
	}
	t->blocked = false;
	for (struct rd_conn *c = t->conns; c; c = c->next)
		rd_t_mark_dirty(c);
}

bool rd_t_log_ok(struct rd_transport *t)
{
	uint64_t now = rd_clock_now_ns();

	if (now - t->log_window > NGTCP2_SECONDS) {
		if (t->log_held > 0)
			rd_log_warn("transport: %llu more refusals not logged",
			            (unsigned long long)t->log_held);
		t->log_window = now;
		t->log_count = 0;
		t->log_held = 0;
	}
	if (t->log_count >= RD_T_LOGS_PER_S) {
		t->log_held++;
		return false;
	}
	t->log_count++;
	return true;
}

static void dispatch(struct rd_transport *t, const uint8_t *pkt, size_t len,
                     const struct sockaddr *from, socklen_t fromlen)
{
	ngtcp2_version_cid vc;
	struct rd_conn *c;
	int rv;

	t->st.packets_in++;
	rv = ngtcp2_pkt_decode_version_cid(&vc, pkt, len, RD_T_SCID_LEN);
	if (rv == NGTCP2_ERR_VERSION_NEGOTIATION) {
		uint8_t out[256];
		uint32_t sv[] = {NGTCP2_PROTO_VER_V1};
		ngtcp2_ssize n = ngtcp2_pkt_write_version_negotiation(
		    out, sizeof out, 0, vc.scid, vc.scidlen, vc.dcid, vc.dcidlen, sv, 1);
		if (n > 0)
			rd_t_send_pkt(t, from, fromlen, out, (size_t)n);
		return;
	}
	if (rv != 0)
		return;
	c = rd_t_cid_find(t, vc.dcid, vc.dcidlen);
	if (c != NULL) {
		if (!c->dead)
			rd_conn_read(c, from, fromlen, pkt, len);
		return;
	}
	rd_t_stranger(t, pkt, len, vc.dcid, vc.dcidlen, from, fromlen);
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rd_transport *t = arg;
	static uint8_t bufs[RX_BATCH][RX_SLOT];
	struct sockaddr_storage addrs[RX_BATCH];
	struct mmsghdr m[RX_BATCH];
	struct iovec iov[RX_BATCH];

	(void)what;
	for (unsigned round = 0; round < 8; round++) {
		int n;

		for (unsigned i = 0; i < RX_BATCH; i++) {
			iov[i].iov_base = bufs[i];
			iov[i].iov_len = RX_SLOT;
			memset(&m[i].msg_hdr, 0, sizeof m[i].msg_hdr);
			m[i].msg_hdr.msg_name = &addrs[i];
			m[i].msg_hdr.msg_namelen = sizeof addrs[i];
			m[i].msg_hdr.msg_iov = &iov[i];
			m[i].msg_hdr.msg_iovlen = 1;
		}
		n = recvmmsg(fd, m, RX_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		for (int i = 0; i < n; i++) {
			if (m[i].msg_hdr.msg_flags & MSG_TRUNC)
				continue;
			dispatch(t, bufs[i], m[i].msg_len, (struct sockaddr *)&addrs[i],
			         m[i].msg_hdr.msg_namelen);
		}
		if (n < RX_BATCH)
			return;
	}
}

/* Redial backoff (peer.c); not configurable, so not in the config. */
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 5000

/* A timeout or size from `c`, or the config's default when `c` leaves it 0
 * (a caller that zeroed its rd_config rather than calling rd_config_defaults). */
static uint64_t pick(uint64_t v, uint64_t dflt)
{
	return v ? v : dflt;
}

void rd_transport_config_init(struct rd_transport_config *tc, const struct rd_config *c)
{
	struct sockaddr_in *in = (struct sockaddr_in *)&tc->listen;
	struct rd_config d;
	const struct rd_config *k;

	/* One source of defaults: the config's (util/config.c), so that a
	 * transport set up without a config file, as the tests do, runs on the
	 * values production uses. */
	rd_config_defaults(&d);
	k = c != NULL ? c : &d;
	memset(tc, 0, sizeof *tc);
	in->sin_family = AF_INET;
	in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	tc->listen_len = sizeof *in;
	tc->tls_mode = RD_TLS_INSECURE;
	tc->max_frame_bytes = pick(k->max_frame_bytes, d.max_frame_bytes);
	/* A request carries one proposal or read of at most max_msg_bytes; a
	 * snapshot frame one chunk. */
	tc->max_rpc_frame_bytes =
	    pick(k->max_msg_bytes, d.max_msg_bytes) + RD_TRANSPORT_FRAME_HEADROOM;
	tc->max_snapshot_frame_bytes =
	    RD_TRANSPORT_SNAPSHOT_CHUNK + RD_TRANSPORT_FRAME_HEADROOM;
	tc->idle_timeout_ms = (unsigned)pick(k->idle_timeout_ms, d.idle_timeout_ms);
	tc->keepalive_ms = (unsigned)pick(k->keepalive_ms, d.keepalive_ms);
	tc->handshake_timeout_ms =
	    (unsigned)pick(k->handshake_timeout_ms, d.handshake_timeout_ms);
	tc->backoff_min_ms = BACKOFF_MIN_MS;
	tc->backoff_max_ms = BACKOFF_MAX_MS;
	tc->max_queue_bytes = 256u << 20;
	tc->max_half_open = (unsigned)pick(k->max_half_open, d.max_half_open);
	tc->max_half_open_per_source =
	    (unsigned)pick(k->max_half_open_per_source, d.max_half_open_per_source);
	tc->retry_threshold = (unsigned)pick(k->retry_threshold, d.retry_threshold);
	tc->count_lost_packets = d.count_lost_packets;
	snprintf(tc->alpn, sizeof tc->alpn, "%s", RD_TRANSPORT_ALPN);
	if (c == NULL)
		return;
	tc->node_id = c->node_id;
	memcpy(&tc->listen, &c->listen.sa, c->listen.salen);
	tc->listen_len = c->listen.salen;
	tc->tls_mode = c->tls_mode;
	snprintf(tc->tls_ca, sizeof tc->tls_ca, "%s", c->tls_ca);
	snprintf(tc->tls_cert, sizeof tc->tls_cert, "%s", c->tls_cert);
	snprintf(tc->tls_key, sizeof tc->tls_key, "%s", c->tls_key);
	tc->max_partial_bytes = c->max_partial_bytes;
	if (c->data_dir[0] != '\0')
		snprintf(tc->reset_secret_file, sizeof tc->reset_secret_file,
		         "%.*s/quic-reset-secret", PATH_MAX - 20, c->data_dir);
	tc->count_lost_packets = c->count_lost_packets;
}

static int open_socket(struct rd_transport *t, char *msg)
{
	int fd, one = 1, bufsz = 8 << 20;

	fd =
	    socket(t->cfg.listen.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return rd_errorf(msg, RD_EIO, "socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	/* Larger buffers absorb bursts of a whole congestion window. */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof bufsz);
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof bufsz);
	if (bind(fd, (struct sockaddr *)&t->cfg.listen, t->cfg.listen_len) != 0) {
		int e = errno;
		close(fd);
		return rd_errorf(msg, RD_EIO, "bind UDP: %s", strerror(e));
	}
	t->local_len = sizeof t->local;
	getsockname(fd, (struct sockaddr *)&t->local, &t->local_len);
	t->fd = fd;
	return 0;
}

int rd_transport_new(struct rd_transport **out, struct event_base *base,
                     const struct rd_transport_config *cfg,
                     const struct rd_transport_callbacks *cbs, char *msg)
{
	struct rd_transport *t;
	int rv;

	if (cfg->node_id == 0)
		return rd_errorf(msg, RD_EINVAL, "transport: node id 0");
	t = calloc(1, sizeof *t);
	if (t == NULL)
		return rd_errorf(msg, RD_ENOMEM, "transport");
	t->base = base;
	t->cfg = *cfg;
	if (t->cfg.max_rpc_frame_bytes == 0 ||
	    t->cfg.max_rpc_frame_bytes > cfg->max_frame_bytes)
		t->cfg.max_rpc_frame_bytes = cfg->max_frame_bytes;
	if (t->cfg.max_snapshot_frame_bytes == 0 ||
	    t->cfg.max_snapshot_frame_bytes > cfg->max_frame_bytes)
		t->cfg.max_snapshot_frame_bytes = cfg->max_frame_bytes;
	/* Twice the room for one frame of each stream kind at its largest, in
	 * flight at once (two requests: one each way): credit consumed and not
	 * yet advertised takes up to half the window (conn.c, stream_window). */
	if (t->cfg.max_partial_bytes == 0)
		t->cfg.max_partial_bytes =
		    2 * (t->cfg.max_frame_bytes + t->cfg.max_snapshot_frame_bytes +
		         2 * t->cfg.max_rpc_frame_bytes);
	while (t->cfg.boot == 0)
		rd_t_rand((uint8_t *)&t->cfg.boot, sizeof t->cfg.boot);
	if (cbs)
		t->cbs = *cbs;
	t->fd = -1;
	if ((rv = rd_tls_new(&t->tls, cfg, msg)) != 0)
		goto err_after_alloc;
	if ((rv = open_socket(t, msg)) != 0)
		goto err_after_tls;
	rd_t_load_reset_secret(t);
	rd_t_rand(t->cid_key, sizeof t->cid_key);
	rd_t_rand(t->token_secret, sizeof t->token_secret);
	t->rev = event_new(base, t->fd, EV_READ | EV_PERSIST, read_cb, t);
	t->wev = event_new(base, t->fd, EV_WRITE, write_cb, t);
	t->flush_ev = event_new(base, -1, 0, flush_cb, t);
	if (t->rev == NULL || t->wev == NULL || t->flush_ev == NULL ||
	    event_add(t->rev, NULL) != 0) {
		rv = rd_errorf(msg, RD_ENOMEM, "transport events");
		goto err_after_events;
	}
	if (cfg->tls_mode == RD_TLS_INSECURE)
		rd_log_warn(
		    "transport: tls.mode = insecure: ephemeral self-signed certificate, "
		    "NO peer verification; for development only node=%llu",
		    (unsigned long long)cfg->node_id);
	*out = t;
	return 0;
err_after_events:
	if (t->rev)
		event_free(t->rev);
	if (t->wev)
		event_free(t->wev);
	if (t->flush_ev)
		event_free(t->flush_ev);
	close(t->fd);
err_after_tls:
	rd_tls_free(t->tls);
err_after_alloc:
	free(t);
	return rv;
}

void rd_transport_free(struct rd_transport *t)
{
	if (t == NULL)
		return;
	t->freeing = true;
	for (struct rd_conn *c = t->conns; c; c = c->next)
		rd_conn_close(c, RD_TRANSPORT_APP_SHUTDOWN, NULL);
	while (t->conns)
		rd_conn_free(t->conns);
	while (t->peers) {
		struct rd_peer *p = t->peers;
		t->peers = p->next;
		rd_peer_free(t, p, RD_ESHUTDOWN);
	}
	event_free(t->rev);
	event_free(t->wev);
	event_free(t->flush_ev);
	close(t->fd);
	rd_tls_free(t->tls);
	free(t);
}

void rd_transport_test_drop(struct rd_transport *t, unsigned every)
{
	t->test_drop_every = every;
}

void rd_transport_test_abandon(struct rd_transport *t)
{
	for (struct rd_conn *c = t->conns; c; c = c->next)
		c->silent = true;
	rd_transport_free(t);
}

void rd_transport_local_addr(const struct rd_transport *t, struct sockaddr_storage *ss,
                             socklen_t *len)
{
	memcpy(ss, &t->local, t->local_len);
	*len = t->local_len;
}

void rd_transport_stats(const struct rd_transport *t, struct rd_transport_stats *out)
{
	*out = t->st;
	out->established = 0;
	out->half_open = t->half_open;
	out->strangers = t->strangers;
	out->partial_bytes = 0;
	for (const struct rd_conn *c = t->conns; c; c = c->next) {
		if (c->established && !c->dead)
			out->established++;
		out->partial_bytes += c->held;
	}
}

int rd_transport_reload_tls(struct rd_transport *t, char *msg)
{
	return rd_transport_reload(t, &t->cfg, msg);
}

int rd_transport_reload(struct rd_transport *t, const struct rd_transport_config *cfg,
                        char *msg)
{
	struct rd_transport_config next = t->cfg;
	char why[RD_ERRMSG_SIZE];
	unsigned closed = 0;
	int rv;

	next.tls_mode = cfg->tls_mode;
	memcpy(next.tls_ca, cfg->tls_ca, sizeof next.tls_ca);
	memcpy(next.tls_cert, cfg->tls_cert, sizeof next.tls_cert);
	memcpy(next.tls_key, cfg->tls_key, sizeof next.tls_key);
	rv = rd_tls_reload(t->tls, &next, msg);
	if (rv != 0)
		return rv;
	if (strcmp(next.tls_ca, t->cfg.tls_ca) != 0 ||
	    strcmp(next.tls_cert, t->cfg.tls_cert) != 0 ||
	    strcmp(next.tls_key, t->cfg.tls_key) != 0)
		rd_log_notice("transport: TLS files changed ca=%s cert=%s key=%s",
		              next.tls_ca, next.tls_cert, next.tls_key);
	t->cfg = next;
	/* The CA may have changed: a peer whose certificate the new CA does
	 * not sign (or that has expired) loses its connection now rather than
	 * keeping it until the next reconnect. */
	for (struct rd_conn *c = t->conns; c; c = c->next) {
		if (!c->established || c->dead ||
		    rd_tls_peer_still_valid(t->tls, c->ssl, t->cfg.tls_ca, why) == 0)
			continue;
		closed++;
		t->st.cert_closed++;
		rd_log_warn("transport: peer certificate no longer accepted peer=%llu "
		            "addr=%s reason=\"%s\"",
		            (unsigned long long)(c->peer ? c->peer->id : 0), c->addr_text,
		            why);
		rd_conn_close(c, RD_TRANSPORT_APP_CERT,
		              "peer certificate no longer accepted");
	}
	rd_log_info("transport: TLS credentials reloaded cert=%s connections_closed=%u",
	            t->cfg.tls_cert, closed);
	return 0;
}
