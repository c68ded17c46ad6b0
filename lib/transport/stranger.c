/*
 * Packets for no connection of ours: who gets a connection, and who gets a
 * stateless reset.
 *
 * Happy path: a member's Initial opens a server connection (rd_conn_accept)
 * while few handshakes are in progress; a short-header packet for a
 * connection we forgot (after a restart) gets a stateless reset (RFC 9000
 * §10.3), smaller than the packet that caused it (§10.3.3), so the peer
 * redials at once.
 *
 * Failure modes, all towards refusing cheaply: past retry_threshold
 * handshakes in progress a client must first prove its address with a
 * Retry token (§8.1.2); past max_half_open (or max_half_open_per_source
 * from one host) Initials are dropped; resets are rate-limited so they
 * cannot become an amplifier; every refusal is counted, and logged at most
 * RD_T_LOGS_PER_S a second.
 */
#include "transport/internal.h" /* first: wolfssl/options.h */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/log.h"

#define RESETS_PER_S 100

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

void rd_t_stranger(struct rd_transport *t, const uint8_t *pkt, size_t len,
                   const uint8_t *dcid, size_t dcidlen, const struct sockaddr *from,
                   socklen_t fromlen)
{
	if (pkt[0] & 0x80) {
		accept_initial(t, pkt, len, from, fromlen);
		return;
	}
	if (!try_reset(t, pkt, len, from, fromlen))
		send_reset(t, dcid, dcidlen, len, from, fromlen);
}

/* The stateless reset secret must survive restarts (RFC 9000 §10.3.2) so
 * that a restarted node can reset the connections its previous life held,
 * and must be unknown to others (§10.3.2: whoever knows it can end our
 * connections): 32 random bytes kept in the data directory, made on first
 * use. Without a file (tests), a random one per process. */
void rd_t_load_reset_secret(struct rd_transport *t)
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
