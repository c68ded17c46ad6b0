/*
 * make bench-transport: two QUIC endpoints in one process on loopback,
 * mutual TLS with certificates from conf/raftd-certs, one libevent loop.
 *
 *   1. 256-byte messages (Raft APPEND messages carrying one 256-byte entry),
 *      64 per RaftBatch frame, for BENCH_SECONDS: messages delivered per second;
 *      also one message per frame, for comparison.
 *   2. 64 KiB messages, one per frame: payload MB/s delivered.
 *   3. Handshakes: the peer is removed and re-added, each time a full TLS 1.3
 *      handshake with ECDSA P-256 certificates on both sides.
 *
 * The sender keeps at most QUEUE_CAP bytes queued (the transport's own
 * backpressure figure), so the numbers are delivered, not queued, rates.
 * Prints the setup, a RESULT line, and writes CSV to argv[1].
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "transport/transport.h"
#include "transport/wire.h"
#include "util/err.h"
#include "util/log.h"
#include "util/clock.h"

#define BENCH_SECONDS 2.0
#define QUEUE_CAP     (8u << 20)

struct node {
	struct rd_transport *t;
	struct sockaddr_storage addr;
	socklen_t len;
	uint64_t msgs, bytes, ups;
};

static struct node nodes[3];
static struct event_base *base;
static char dir[256];

static double now_s(void)
{
	return (double)rd_clock_now_ns() / 1e9;
}

static void on_batch(void *arg, uint64_t peer, const Raftd__RaftBatch *b)
{
	struct node *n = arg;

	(void)peer;
	n->msgs += b->n_messages;
	for (size_t i = 0; i < b->n_messages; i++)
		for (size_t j = 0; j < b->messages[i]->n_entries; j++)
			n->bytes += b->messages[i]->entries[j]->data.len;
}

static void on_peer(void *arg, uint64_t peer, bool up)
{
	struct node *n = arg;

	(void)peer;
	if (up)
		n->ups++;
}

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "transport_bench: %s: %s\n", what, msg);
	exit(1);
}

static void start(uint64_t id)
{
	struct rd_transport_config cfg;
	struct rd_transport_callbacks cbs = {
	    .on_batch = on_batch, .on_peer = on_peer, .arg = &nodes[id]};
	char msg[RD_ERRMSG_SIZE];

	rd_transport_config_init(&cfg, NULL);
	cfg.node_id = id;
	cfg.tls_mode = RD_TLS_MUTUAL;
	snprintf(cfg.tls_ca, sizeof cfg.tls_ca, "%s/ca.pem", dir);
	snprintf(cfg.tls_cert, sizeof cfg.tls_cert, "%s/node%llu.pem", dir,
	         (unsigned long long)id);
	snprintf(cfg.tls_key, sizeof cfg.tls_key, "%s/node%llu.key", dir,
	         (unsigned long long)id);
	/* Defaults otherwise (per-packet loss accounting on); RD_BENCH_NO_LOSS_COUNT=1
	 * measures without it. */
	if (getenv("RD_BENCH_NO_LOSS_COUNT") != NULL)
		cfg.count_lost_packets = false;
	cfg.backoff_min_ms = 1;
	cfg.backoff_max_ms = 10;
	if (rd_transport_new(&nodes[id].t, base, &cfg, &cbs, msg) != 0)
		die("start", msg);
	rd_transport_local_addr(nodes[id].t, &nodes[id].addr, &nodes[id].len);
}

static void add_peer(uint64_t at, uint64_t id)
{
	char msg[RD_ERRMSG_SIZE];

	if (rd_transport_peer_add(nodes[at].t, id, (struct sockaddr *)&nodes[id].addr,
	                          nodes[id].len, msg) != 0)
		die("peer_add", msg);
}

/* A batch of `n` APPEND messages with one `size`-byte entry each, encoded
 * the way the node runtime does it (transport/wire.h). */
static int send_batch(unsigned n, size_t size)
{
	static struct rd_wire_batch b;
	static struct rd_wire_scratch scratch;
	static uint8_t *data;
	static size_t data_len;
	struct rd_entry ent = {.term = 7, .index = 100, .type = RD_ENTRY_NORMAL};
	struct rd_message m = {.type = RD_MSG_APPEND, .from = 1, .to = 2, .term = 7};
	const uint8_t *frame;
	size_t len;
	char msg[RD_ERRMSG_SIZE];

	if (data_len < size) {
		free(data);
		data = calloc(1, size);
		data_len = size;
	}
	ent.data = data;
	ent.len = (uint32_t)size;
	m.log_term = 7;
	m.index = 99;
	m.commit = 98;
	m.entries = &ent;
	m.n_entries = 1;
	if (b.len == 0)
		rd_wire_batch_init(&b);
	rd_wire_batch_reset(&b);
	for (unsigned i = 0; i < n; i++) {
		m.group = i + 1;
		if (rd_wire_batch_add_msg(&b, &scratch, &m) != 0)
			return RD_ENOMEM;
	}
	frame = rd_wire_batch_seal(&b, 1, 2, &len);
	return rd_transport_send_encoded(nodes[1].t, 2, frame, len, b.msgs, msg);
}

static uint64_t queued(void)
{
	struct rd_transport_peer_stats st;

	rd_transport_peer_stats(nodes[1].t, 2, &st);
	return st.queued_bytes;
}

static void loop_until_connected(void)
{
	double end = now_s() + 10;
	while (nodes[2].ups == 0 || nodes[1].ups == 0) {
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		if (now_s() > end)
			die("connect", "no connection within 10 s");
	}
}

/* Returns messages (or bytes when `bytes`) delivered per second. */
static double stream_phase(unsigned per_batch, size_t size, bool bytes)
{
	uint64_t m0 = nodes[2].msgs, b0 = nodes[2].bytes;
	double t0 = now_s(), t1;

	while ((t1 = now_s()) - t0 < BENCH_SECONDS) {
		for (int k = 0; k < 8 && queued() < QUEUE_CAP; k++)
			send_batch(per_batch, size);
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	}
	return bytes ? (double)(nodes[2].bytes - b0) / (t1 - t0)
	             : (double)(nodes[2].msgs - m0) / (t1 - t0);
}

static double handshake_phase(void)
{
	unsigned done = 0;
	double t0 = now_s(), t1;

	while ((t1 = now_s()) - t0 < BENCH_SECONDS) {
		uint64_t ups = nodes[1].ups;
		rd_transport_peer_remove(nodes[1].t, 2);
		add_peer(1, 2);
		send_batch(1, 16);
		while (nodes[1].ups == ups)
			event_base_loop(base, EVLOOP_ONCE);
		done++;
	}
	return done / (t1 - t0);
}

int main(int argc, char **argv)
{
	const char *csv = argc > 1 ? argv[1] : "build/bench/transport.csv";
	const char *src = getenv("RD_SRC");
	char cmd[1024], cipher[48];
	struct rd_transport_peer_stats st;
	double msgs, single, mbps, hs;
	FILE *f;

	rd_log_set_level(RD_LOG_ERR);
	snprintf(dir, sizeof dir, "/tmp/rd-bench-XXXXXX");
	if (mkdtemp(dir) == NULL)
		die("mkdtemp", "failed");
	snprintf(cmd, sizeof cmd, "%s/conf/raftd-certs all %s 2", src ? src : ".", dir);
	if (system(cmd) != 0)
		die("raftd-certs", cmd);
	base = event_base_new();
	start(1);
	start(2);
	add_peer(1, 2);
	add_peer(2, 1);
	send_batch(1, 16);
	loop_until_connected();
	rd_transport_peer_stats(nodes[1].t, 2, &st);
	snprintf(cipher, sizeof cipher, "%s", st.cipher);

	printf("transport bench: 2 endpoints, 1 process, 1 libevent loop, loopback UDP, "
	       "QUIC v1 + TLS 1.3 mutual (ECDSA P-256), UDP GSO, %.0f s per phase, send "
	       "queue cap "
	       "%u MiB, per-packet loss accounting %s\n",
	       BENCH_SECONDS, QUEUE_CAP >> 20,
	       getenv("RD_BENCH_NO_LOSS_COUNT") ? "off" : "on");
	msgs = stream_phase(64, 256, false);
	printf("  256 B messages, 64 per batch frame:   %12.0f msgs/s\n", msgs);
	single = stream_phase(1, 256, false);
	printf("  256 B messages, 1 per frame:          %12.0f msgs/s\n", single);
	mbps = stream_phase(1, 64 << 10, true) / 1e6;
	printf("  64 KiB messages, 1 per frame:         %12.1f MB/s\n", mbps);
	hs = handshake_phase();
	printf("  full handshakes (remove + re-add peer): %10.0f /s\n", hs);
	rd_transport_peer_stats(nodes[1].t, 2, &st);
	printf("  node 1 -> 2, all phases: lost packets %llu, loss events %llu, smoothed "
	       "rtt "
	       "%llu us\n",
	       (unsigned long long)st.lost_packets, (unsigned long long)st.loss_events,
	       (unsigned long long)st.rtt_us);
	printf("RESULT transport msgs_per_s_256b=%.0f mb_per_s_64kib=%.1f "
	       "handshakes_per_s=%.0f "
	       "cipher=%s\n",
	       msgs, mbps, hs, cipher);

	f = fopen(csv, "w");
	if (f != NULL) {
		fprintf(f,
		        "msgs_per_s_256b,msgs_per_s_256b_single,mb_per_s_64kib,"
		        "handshakes_per_s,"
		        "cipher\n%.0f,%.0f,%.1f,%.0f,%s\n",
		        msgs, single, mbps, hs, cipher);
		fclose(f);
	}
	rd_transport_free(nodes[1].t);
	rd_transport_free(nodes[2].t);
	event_base_free(base);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : 1;
}
