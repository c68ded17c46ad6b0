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
 * loss. A short-header packet for an unknown connection gets a stateless
 * reset (RFC 9000 §10.3), smaller than the packet that caused it (§10.3.3).
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

#define RX_BATCH     32
#define RX_SLOT      2048
#define RESETS_PER_S 100

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

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rd_transport *t = arg;
	struct rd_conn *list = t->dirty, *c;

	(void)fd, (void)what;
	t->dirty = NULL;
	while ((c = list) != NULL) {
		list = c->dnext;
		c->dirty = false;
		if (c->dead)
			rd_conn_free(c);
		else
			rd_conn_write(c);
	}
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

static void send_reset(struct rd_transport *t, const uint8_t *dcid, size_t dcidlen,
                       size_t trigger_len, const struct sockaddr *to, socklen_t tolen)
{
	uint8_t token[NGTCP2_STATELESS_RESET_TOKENLEN], rnd[64], pkt[128];
	ngtcp2_cid cid;
	size_t randlen;
	ngtcp2_ssize n;

	uint64_t now = rd_clock_now_ns();

	/* Smallest valid reset is 21 bytes + token; stay below the trigger. */
	if (trigger_len < 43 || dcidlen > NGTCP2_MAX_CIDLEN)
		return;
	/* At most RESETS_PER_S a second: resets cost us little but must not
	 * become an amplifier. */
	if (now - t->reset_window > NGTCP2_SECONDS) {
		t->reset_window = now;
		t->reset_count = 0;
	}
	if (++t->reset_count > RESETS_PER_S)
		return;
	randlen = trigger_len - 1 - NGTCP2_STATELESS_RESET_TOKENLEN - 1;
	if (randlen > sizeof rnd)
		randlen = sizeof rnd;
	ngtcp2_cid_init(&cid, dcid, dcidlen);
	if (ngtcp2_crypto_generate_stateless_reset_token(
	        token, t->reset_secret, sizeof t->reset_secret, &cid) != 0)
		return;
	rd_t_rand(rnd, randlen);
	n = ngtcp2_pkt_write_stateless_reset(pkt, sizeof pkt, token, rnd, randlen);
	if (n > 0 && rd_t_send_pkt(t, to, tolen, pkt, (size_t)n) == 0)
		t->st.stateless_resets++;
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

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr *b)
{
	if (a->ss_family != b->sa_family)
		return false;
	if (b->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port &&
		       x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (b->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
	}
	return false;
}

/* A stateless reset carries no connection id we chose (RFC 9000 §10.3.1):
 * offer the packet to the connections with that peer address; ngtcp2
 * recognises a reset by its trailing token and drains the connection. */
static bool try_reset(struct rd_transport *t, const uint8_t *pkt, size_t len,
                      const struct sockaddr *from, socklen_t fromlen)
{
	bool hit = false;

	/* Established connections only: feeding garbage to a handshake in
	 * progress could end it, and a reset can only end an established one
	 * anyway (the token arrives with the handshake). */
	for (struct rd_conn *c = t->conns; c; c = c->next) {
		if (c->dead || !c->established || !same_addr(&c->remote, from))
			continue;
		rd_conn_read(c, from, fromlen, pkt, len);
		if (c->dead) {
			rd_log_info(
			    "transport: stateless reset received peer=%llu addr=%s",
			    (unsigned long long)(c->peer ? c->peer->id : 0),
			    c->addr_text);
			hit = true;
		}
	}
	return hit;
}

static bool same_host(const struct sockaddr_storage *a, const struct sockaddr *b)
{
	if (a->ss_family != b->sa_family)
		return false;
	if (b->sa_family == AF_INET)
		return ((const struct sockaddr_in *)(const void *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)(const void *)b)->sin_addr.s_addr;
	if (b->sa_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)(const void *)a)->sin6_addr,
		              &((const struct sockaddr_in6 *)(const void *)b)->sin6_addr,
		              16) == 0;
	return false;
}

static unsigned half_open_from(const struct rd_transport *t, const struct sockaddr *from)
{
	unsigned n = 0;

	for (const struct rd_conn *c = t->conns; c; c = c->next)
		if (c->half_open && same_host(&c->remote, from))
			n++;
	return n;
}

/* Answer an Initial with a Retry (RFC 9000 §8.1.2): no state is kept; a
 * client at a real address comes back with the token. */
static void send_retry(struct rd_transport *t, const ngtcp2_pkt_hd *hd,
                       const struct sockaddr *from, socklen_t fromlen)
{
	uint8_t token[NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN], pkt[256];
	ngtcp2_cid scid;
	ngtcp2_ssize tl, n;

	scid.datalen = RD_T_SCID_LEN;
	rd_t_rand(scid.data, scid.datalen);
	tl = ngtcp2_crypto_generate_retry_token(
	    token, t->token_secret, sizeof t->token_secret, hd->version, from, fromlen,
	    &scid, &hd->dcid, rd_clock_now_ns());
	if (tl < 0)
		return;
	n = ngtcp2_crypto_write_retry(pkt, sizeof pkt, hd->version, &hd->scid, &scid,
	                              &hd->dcid, token, (size_t)tl);
	if (n > 0 && rd_t_send_pkt(t, from, fromlen, pkt, (size_t)n) == 0)
		t->st.retries_sent++;
}

/* A long-header packet for no connection of ours: only an Initial may open
 * one. Past retry_threshold half-open connections a client must prove its
 * address with a Retry token first; past max_half_open in all, or
 * max_half_open_per_source from one host, the Initial is dropped (the
 * client retransmits it; a peer that is a member gets in once the flood's
 * connections time out). */
static void accept_initial(struct rd_transport *t, const uint8_t *pkt, size_t len,
                           const struct sockaddr *from, socklen_t fromlen)
{
	ngtcp2_pkt_hd hd;
	ngtcp2_cid odcid;
	bool validated = false;
	struct rd_conn *c;
	int rv = ngtcp2_accept(&hd, pkt, len);

	if ((rv != 0 && rv != NGTCP2_ERR_RETRY) || hd.type != NGTCP2_PKT_INITIAL)
		return;
	if (hd.token.len > 0 && hd.token.base[0] == NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY) {
		if (ngtcp2_crypto_verify_retry_token(
		        &odcid, hd.token.base, hd.token.len, t->token_secret,
		        sizeof t->token_secret, hd.version, from, fromlen, &hd.dcid,
		        RD_T_RETRY_TOKEN_S * NGTCP2_SECONDS, rd_clock_now_ns()) != 0) {
			t->st.initials_dropped++;
			return;
		}
		validated = true;
	}
	if (!validated && t->half_open >= t->cfg.retry_threshold) {
		send_retry(t, &hd, from, fromlen);
		return;
	}
	if (t->half_open >= t->cfg.max_half_open ||
	    half_open_from(t, from) >= t->cfg.max_half_open_per_source) {
		t->st.initials_dropped++;
		if (rd_t_log_ok(t))
			rd_log_warn("transport: Initial dropped: %u connections in their "
			            "handshake (max_half_open %u, per source %u)",
			            t->half_open, t->cfg.max_half_open,
			            t->cfg.max_half_open_per_source);
		return;
	}
	c = rd_conn_accept(t, &hd, validated ? &odcid : NULL, from, fromlen);
	if (c != NULL)
		rd_conn_read(c, from, fromlen, pkt, len);
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
	if (pkt[0] & 0x80) {
		accept_initial(t, pkt, len, from, fromlen);
		return;
	}
	if (!try_reset(t, pkt, len, from, fromlen))
		send_reset(t, vc.dcid, vc.dcidlen, len, from, fromlen);
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

/* The stateless reset secret must survive restarts (RFC 9000 §10.3.2) so
 * that a restarted node can reset the connections its previous life held,
 * and must be unknown to others (§10.3.2: whoever knows it can end our
 * connections): 32 random bytes kept in the data directory, made on first
 * use. Without a file (tests), a random one per process. */
static void load_reset_secret(struct rd_transport *t)
{
	const char *path = t->cfg.reset_secret_file;
	char tmp[PATH_MAX + 8];
	ssize_t got = -1;
	int fd;

	rd_t_rand(t->reset_secret, sizeof t->reset_secret);
	if (path[0] == '\0')
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		got = read(fd, t->reset_secret, sizeof t->reset_secret);
		close(fd);
		if (got == (ssize_t)sizeof t->reset_secret)
			return;
		rd_log_warn("transport: %s is not a 32-byte reset secret: replaced",
		            path);
		rd_t_rand(t->reset_secret, sizeof t->reset_secret);
	}
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 ||
	    write(fd, t->reset_secret, sizeof t->reset_secret) !=
	        (ssize_t)sizeof t->reset_secret ||
	    fsync(fd) != 0 || rename(tmp, path) != 0) {
		rd_log_warn(
		    "transport: cannot keep the reset secret in %s: %s; a restart "
		    "will not reset old connections",
		    path, strerror(errno));
		if (fd >= 0)
			close(fd);
		unlink(tmp);
		return;
	}
	close(fd);
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
	/* Room for one frame of each stream kind at its largest, in flight at
	 * once (two requests: one each way). */
	if (t->cfg.max_partial_bytes == 0)
		t->cfg.max_partial_bytes = t->cfg.max_frame_bytes +
		                           t->cfg.max_snapshot_frame_bytes +
		                           2 * t->cfg.max_rpc_frame_bytes;
	if (cbs)
		t->cbs = *cbs;
	t->fd = -1;
	if ((rv = rd_tls_new(&t->tls, cfg, msg)) != 0)
		goto err_after_alloc;
	if ((rv = open_socket(t, msg)) != 0)
		goto err_after_tls;
	load_reset_secret(t);
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
