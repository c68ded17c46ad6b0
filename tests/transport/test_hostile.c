/*
 * Hostile peers that hold a certificate the cluster CA signed: a node that
 * is not a member gets a stranger's connection, on which its Raft frames
 * are dropped and counted; a member cannot
 * step a message in another node's name through a snapshot chunk, cannot
 * make the receiver hold more than its partial-frame budget, and cannot
 * make protobuf-c allocate without bound. Each test checks that the
 * endpoint keeps serving the well-behaved peers.
 */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/quic.h"
#include "helpers.h"
#include "transport/tls.h"
#include "transport/wire.h"

static bool stranger_refused(struct tenv *e, void *arg)
{
	(void)arg;
	return tstats_all(e, 1).stranger_refused >= 1;
}

/* A certificate for node 3, signed by the cluster CA, while node 1's
 * members are {1, 2}: the handshake completes (the identity is genuine)
 * and node 1 holds the connection as a stranger's (a node that may only
 * ask to join): the Raft frame it sends is dropped and counted, nothing of
 * it is delivered, and node 1 keeps serving node 2. */
Test(hostile, nonmember_refused_after_handshake)
{
	struct tenv e;
	struct rd_transport_config cfg;
	uint64_t want = 3;

	tenv_init(&e, true);
	for (uint64_t i = 1; i <= 3; i++) {
		tnode_config(&e, i, false, &cfg);
		tnode_start(&e, i, &cfg);
	}
	e.n[1].members = 1u << 1 | 1u << 2;
	tnode_add_peer(&e, 2, 1);
	tnode_add_peer(&e, 3, 1);
	e.n[1].next_index[2] = 1;
	cr_assert_eq(tsend(&e, 3, 1, 1, 3, 8), 0);
	cr_assert(trun(&e, stranger_refused, NULL, 20000), "refused: %llu",
	          (unsigned long long)tstats_all(&e, 1).stranger_refused);
	cr_expect_eq(e.n[1].msgs, 0, "nothing from node 3 was delivered");
	cr_expect_eq(tstats_all(&e, 1).strangers, 1, "held as a stranger's connection");
	cr_expect_eq(tstats_all(&e, 1).nonmember_refused, 0, "within the bound");
	cr_assert_eq(tsend(&e, 2, 1, 1, 3, 8), 0);
	cr_expect(trun(&e, tgot, (uint64_t[]){1, want}, 20000), "node 1 serves node 2");
	cr_expect_eq(e.n[1].msgs, 3);
	tenv_fini(&e);
}

/* The Raft message a snapshot chunk carries is stepped after the install:
 * its `from` must be the authenticated peer, its `to` this node, its group
 * the chunk's; the chunk itself must be for this node. Frames on one
 * stream arrive in order, so once the good chunk is in, the bad ones
 * before it have been judged. */
Test(hostile, snapshot_chunk_message_checked)
{
	struct tenv e;
	struct tsnap s;
	Raftd__RaftMessage m = RAFTD__RAFT_MESSAGE__INIT;
	char msg[RD_ERRMSG_SIZE];
	struct {
		uint64_t ch_to, m_from, m_to, m_group;
	} bad[] = {
	    {2, 3, 2, 4}, /* message in node 3's name */
	    {3, 1, 3, 4}, /* chunk for node 3 */
	    {2, 1, 3, 4}, /* message for node 3 */
	    {2, 1, 2, 5}, /* message for another group */
	};

	tenv_up(&e, false, 3);
	tsnap_init(&s, 4, 1, 0, 10, 2);
	m.type = RAFTD__RAFT_MESSAGE_TYPE__RAFT_MSG_SNAPSHOT;
	m.term = 2;
	m.snapshot = &s.meta;
	s.ch.last = true;
	s.ch.message = &m;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		s.ch.to = bad[i].ch_to;
		m.from = bad[i].m_from;
		m.to = bad[i].m_to;
		m.group = bad[i].m_group;
		cr_assert_eq(rd_transport_send_snapshot(e.n[1].t, 2, &s.f, msg), 0, "%s",
		             msg);
	}
	s.ch.to = 2;
	m.from = 1;
	m.to = 2;
	m.group = 4;
	cr_assert_eq(rd_transport_send_snapshot(e.n[1].t, 2, &s.f, msg), 0, "%s", msg);
	cr_assert(trun(&e, tsnaps, (uint64_t[]){2, 1}, 20000));
	cr_expect_eq(e.n[2].snapshots, 1, "only the well-formed chunk is delivered");
	cr_expect_eq(tstats(&e, 2, 1).foreign_from, 4);
	tenv_fini(&e);
}

static bool call_failed(struct tenv *e, void *arg)
{
	(void)arg;
	return e->n[1].reply_errors >= 1;
}

static bool replied(struct tenv *e, void *arg)
{
	(void)arg;
	return e->n[1].replies >= 1;
}

static void ping(struct tenv *e, uint64_t from, uint64_t to)
{
	struct tping p;
	char msg[RD_ERRMSG_SIZE];

	tping_init(&p);
	cr_assert_eq(rd_transport_call(e->n[from].t, to, &p.req, 10000, treply_count,
	                               &e->n[from], msg),
	             0, "%s", msg);
}

/* A request stream accepts a frame about one proposal, not max_frame_bytes:
 * announcing 64 MiB there resets that stream only (counted), before any
 * memory is set aside for it; the connection keeps answering. */
Test(hostile, rpc_stream_frame_cap)
{
	struct tenv e;
	const uint8_t raw[] = {0x04, 0x00, 0x00, 0x00, 0x22, 0x00};

	tenv_up(&e, false, 2);
	ping(&e, 1, 2);
	cr_assert(trun(&e, replied, NULL, 20000));
	cr_assert_eq(rd_transport_test_call_raw(e.n[1].t, 2, raw, sizeof raw, 10000,
	                                        treply_count, &e.n[1]),
	             0);
	cr_assert(trun(&e, call_failed, NULL, 20000), "the oversized call is refused");
	cr_expect_geq(tstats(&e, 2, 1).malformed, 1);
	cr_expect_eq(tstats_all(&e, 2).partial_bytes, 0);
	e.n[1].replies = 0;
	ping(&e, 1, 2);
	cr_expect(trun(&e, replied, NULL, 20000), "the connection still serves");
	cr_expect(tstats(&e, 1, 2).connected);
	tenv_fini(&e);
}

static bool held_at_least(struct tenv *e, void *arg)
{
	return tstats_all(e, 2).partial_bytes >= *(uint64_t *)arg;
}

/* Flow-control credit comes back only for frames handed on: requests that
 * announce 1 MiB and never finish are held only up to the receiver's
 * partial-frame budget (its connection window); the rest stays with the
 * sender. Credit returned on arrival would let all 8 MiB in. */
Test(hostile, stalled_frames_bounded_by_window)
{
	struct tenv e;
	struct rd_transport_config cfg;
	const size_t frame = 1u << 20, sent = frame - 1, budget = 3u << 20;
	uint8_t *raw = calloc(1, RD_WIRE_HEADER + sent);
	uint64_t want = budget - 64 * 1024;

	cr_assert_not_null(raw);
	raw[1] = (uint8_t)(frame >> 16);
	tenv_init(&e, false);
	tnode_config(&e, 1, true, &cfg);
	tnode_start(&e, 1, &cfg);
	tnode_config(&e, 2, true, &cfg);
	cfg.max_partial_bytes = budget;
	tnode_start(&e, 2, &cfg);
	tenv_mesh(&e);
	for (int i = 0; i < 8; i++)
		cr_assert_eq(rd_transport_test_call_raw(e.n[1].t, 2, raw,
		                                        RD_WIRE_HEADER + sent, 60000,
		                                        treply_count, &e.n[1]),
		             0);
	cr_assert(trun(&e, held_at_least, &want, 20000),
	          "held %llu connected %d errors %llu requests %llu bytes_in %llu",
	          (unsigned long long)tstats_all(&e, 2).partial_bytes,
	          tstats(&e, 1, 2).connected, (unsigned long long)e.n[1].reply_errors,
	          (unsigned long long)e.n[2].requests,
	          (unsigned long long)tstats(&e, 2, 1).bytes_in);
	trun_for(&e, 300);
	cr_expect_leq(tstats_all(&e, 2).partial_bytes, budget);
	cr_expect_eq(e.n[1].reply_errors, 0, "no call was refused: they wait");
	free(raw);
	tenv_fini(&e);
}

/* "1a 00" is an empty RaftMessage: 2 bytes on the wire, ~150 bytes once
 * unpacked. A batch of them stops decoding at the allocation budget
 * instead of building millions of structs. */
Test(hostile, decode_allocation_bounded)
{
	size_t k = 4u << 20, len = 1 + 4 + 2 * k;
	uint8_t *p = malloc(len);
	Raftd__PeerFrame *f = NULL;
	char msg[RD_ERRMSG_SIZE] = "";
	size_t inner = 2 * k;

	cr_assert_not_null(p);
	p[0] = 0x0a; /* PeerFrame.batch, length-delimited */
	p[1] = (uint8_t)(0x80 | (inner & 0x7f));
	p[2] = (uint8_t)(0x80 | ((inner >> 7) & 0x7f));
	p[3] = (uint8_t)(0x80 | ((inner >> 14) & 0x7f));
	p[4] = (uint8_t)(inner >> 21);
	for (size_t i = 0; i < k; i++) {
		p[5 + 2 * i] = 0x1a;
		p[6 + 2 * i] = 0x00;
	}
	cr_assert_eq(rd_wire_decode(p, len, &f, msg), RD_EPROTO);
	cr_expect_not_null(strstr(msg, "needs more than"), "%s", msg);
	free(p);
}

static void flood(struct tenv *e, uint64_t at, unsigned count)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	uint8_t pkt[1200];

	cr_assert_geq(fd, 0);
	for (unsigned i = 0; i < count; i++) {
		size_t n = rd_t_junk_initial(pkt, sizeof pkt);
		sendto(fd, pkt, n, 0, (struct sockaddr *)&e->n[at].addr,
		       e->n[at].addrlen);
		if (i % 32 == 31)
			trun_for(e, 1); /* let the endpoint read */
	}
	close(fd);
}

/* Junk Initials from one host: at most max_half_open_per_source of them get
 * a connection, the rest are dropped without state (counted); once those
 * time out, a real node from the same host gets in. */
Test(hostile, initial_flood_capped_per_source)
{
	struct tenv e;
	struct rd_transport_config cfg;
	struct rd_transport_stats st;

	tenv_init(&e, false);
	tnode_config(&e, 1, true, &cfg);
	cfg.retry_threshold = 1000000; /* caps only */
	cfg.max_half_open_per_source = 4;
	cfg.handshake_timeout_ms = 500;
	tnode_start(&e, 1, &cfg);
	flood(&e, 1, 200);
	trun_for(&e, 50);
	st = tstats_all(&e, 1);
	cr_expect_leq(st.half_open, 4);
	cr_expect_geq(st.initials_dropped, 100, "dropped %llu",
	              (unsigned long long)st.initials_dropped);
	tnode_config(&e, 2, true, &cfg);
	tnode_start(&e, 2, &cfg);
	tnode_add_peer(&e, 2, 1);
	e.n[1].next_index[2] = 1;
	for (unsigned i = 0; i < 40 && e.n[1].msgs == 0; i++) {
		tsend(&e, 2, 1, 1, 1, 8);
		trun(&e, tgot, (uint64_t[]){1, 1}, 500);
	}
	cr_expect_geq(e.n[1].msgs, 1, "node 2 got in after the flood timed out");
	tenv_fini(&e);
}

/* Past retry_threshold handshakes, an Initial without a token gets a Retry
 * (RFC 9000 §8.1.2) and costs no state; a real client comes back with the
 * token and completes. Threshold 0: every new connection goes through it. */
Test(hostile, retry_above_threshold)
{
	struct tenv e;
	struct rd_transport_config cfg;
	struct rd_transport_stats st;
	uint64_t want = 3;

	tenv_init(&e, false);
	tnode_config(&e, 1, true, &cfg);
	cfg.retry_threshold = 0;
	tnode_start(&e, 1, &cfg);
	tnode_config(&e, 2, true, &cfg);
	tnode_start(&e, 2, &cfg);
	tnode_add_peer(&e, 2, 1);
	flood(&e, 1, 100);
	trun_for(&e, 50);
	st = tstats_all(&e, 1);
	cr_expect_eq(st.half_open, 0, "no junk Initial got a connection");
	cr_expect_geq(st.retries_sent, 100);
	e.n[1].next_index[2] = 1;
	cr_assert_eq(tsend(&e, 2, 1, 1, 3, 8), 0);
	cr_expect(trun(&e, tgot, (uint64_t[]){1, want}, 20000),
	          "node 2 connects through a Retry");
	tenv_fini(&e);
}

static bool two_up(struct tenv *e, void *arg)
{
	(void)arg;
	return tstats(e, 1, 2).connected && tstats(e, 2, 1).connected;
}

/* Sessions are never resumed (a resumed session skips the certificate
 * check that binds the node id) and 0-RTT is off: the server issues no
 * session ticket, so a client has nothing to resume or send early with. */
Test(hostile, no_session_tickets)
{
	struct tenv e;

	tenv_up(&e, true, 2);
	cr_assert_eq(tsend(&e, 1, 2, 1, 1, 8), 0);
	cr_assert(trun(&e, two_up, NULL, 20000));
	trun_for(&e, 300); /* tickets come after the handshake */
	cr_expect_eq(rd_transport_test_got_ticket(e.n[1].t, 2) +
	                 rd_transport_test_got_ticket(e.n[2].t, 1),
	             0, "a session ticket was issued");
	tenv_fini(&e);
}

/* The 32 bytes of node `id`'s stateless-reset secret file. */
static void read_secret(const struct tenv *e, uint64_t id, uint8_t out[32])
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof path, "%s/reset-secret-%llu", e->dir,
	         (unsigned long long)id);
	f = fopen(path, "rb");
	cr_assert_not_null(f);
	cr_assert_eq(fread(out, 1, 32, f), 32);
	fclose(f);
}

/* The stateless-reset secret is random and kept in the data directory: two
 * nodes never share it (whoever knows it can reset our connections), one
 * node keeps it across restarts (RFC 9000 §10.3.2). */
Test(hostile, reset_secret_random_and_kept)
{
	struct tenv e;
	struct rd_transport_config cfg;
	uint8_t a[32], b[32], a2[32];

	tenv_init(&e, false);
	for (uint64_t i = 1; i <= 2; i++) {
		tnode_config(&e, i, true, &cfg);
		tnode_start(&e, i, &cfg);
	}
	read_secret(&e, 1, a);
	read_secret(&e, 2, b);
	cr_expect_neq(memcmp(a, b, sizeof a), 0, "two nodes share a reset secret");
	tnode_stop(&e, 1);
	tnode_config(&e, 1, true, &cfg);
	tnode_start(&e, 1, &cfg);
	read_secret(&e, 1, a2);
	cr_expect_eq(memcmp(a, a2, sizeof a), 0, "the secret changed across a restart");
	tenv_fini(&e);
}

static bool refused_at_1(struct tenv *e, void *arg)
{
	(void)arg;
	return tstats_all(e, 1).tls_rejected >= 1;
}

/* Node 2 presents a CA-signed certificate with the given extra raftd-certs
 * options; node 1 must refuse it and never see its messages. */
static void expect_identity_refused(const char *certopts)
{
	struct tenv e;
	struct rd_transport_config cfg;
	char args[256];

	tenv_init(&e, true);
	snprintf(args, sizeof args, "node 2 %s", certopts);
	tenv_certs(&e, args);
	for (uint64_t i = 1; i <= 2; i++) {
		tnode_config(&e, i, false, &cfg);
		tnode_start(&e, i, &cfg);
	}
	tnode_add_peer(&e, 2, 1);
	cr_assert_eq(tsend(&e, 2, 1, 1, 1, 8), 0);
	cr_expect(trun(&e, refused_at_1, NULL, 20000), "certificate %s accepted",
	          certopts);
	trun_for(&e, 200);
	cr_expect_eq(e.n[1].msgs, 0, "certificate %s let messages in", certopts);
	tenv_fini(&e);
}

/* Identity comes from DNS SANs only, byte for byte, in canonical decimal,
 * and a certificate may name one node only; the CN counts only without a
 * SAN. */
Test(hostile, certificate_identity_strict)
{
	expect_identity_refused("--san DNS:raftd-node-2,DNS:raftd-node-3");
	expect_identity_refused("--san DNS:raftd-node-02");
	expect_identity_refused("--san IP:127.0.0.1");      /* CN raftd-node-2 ignored */
	expect_identity_refused("--san DNS:node2.example"); /* CN ignored too */
}

Test(hostile, node_name_parsing)
{
	cr_expect_eq(rd_tls_parse_node_name("raftd-node-2", 12), 2);
	cr_expect_eq(rd_tls_parse_node_name("raftd-node-02", 13), 0);
	cr_expect_eq(rd_tls_parse_node_name("raftd-node-0", 12), 0);
	cr_expect_eq(rd_tls_parse_node_name("raftd-node-2\0.evil", 18), 0);
	cr_expect_eq(rd_tls_parse_node_name("raftd-node-2x", 13), 0);
	cr_expect_eq(rd_tls_parse_node_name("raftd-node-1844674407370955161", 30),
	             1844674407370955161ull);
	cr_expect_eq(rd_tls_parse_node_name("raftd-node-18446744073709551616", 31), 0);
}

static bool cert_closed_at_1(struct tenv *e, void *arg)
{
	(void)arg;
	return tstats_all(e, 1).cert_closed >= 1;
}

/* Nodes 1 and 2 with mutual TLS, connected. */
static void mesh_up(struct tenv *e)
{
	tenv_start(e, true, 2);
	tconnect_1_2(e);
}

/* SIGHUP: a new certificate is checked before it replaces the working one
 * (it must name this node and chain to the CA), a mode change is refused,
 * and the node keeps its connections and credentials in both cases. */
Test(hostile, reload_checks_new_certificate)
{
	struct tenv e;
	struct rd_transport_config cfg;
	char msg[RD_ERRMSG_SIZE] = "";
	uint64_t want;

	tenv_init(&e, true);
	mesh_up(&e);
	tnode_config(&e, 1, false, &cfg);
	tcfg_cert(&e, &cfg, "node2");
	cr_expect_eq(rd_transport_reload(e.n[1].t, &cfg, msg), RD_ETLS);
	cr_expect_not_null(strstr(msg, "names node 2"), "%s", msg);
	tnode_config(&e, 1, true, &cfg);
	cr_expect_eq(rd_transport_reload(e.n[1].t, &cfg, msg), RD_EINVAL);
	cr_expect_not_null(strstr(msg, "tls.mode cannot change"), "%s", msg);
	e.n[2].next_index[1] = 2;
	want = e.n[2].msgs + 1;
	cr_assert_eq(tsend(&e, 1, 2, 2, 1, 8), 0);
	cr_expect(trun(&e, tgot, (uint64_t[]){2, want}, 20000), "still connected");
	tenv_fini(&e);
}

/* After a reload to another CA, a peer whose certificate the new CA did
 * not sign loses its established connection at once. */
Test(hostile, reload_to_new_ca_closes_unverified_peers)
{
	struct tenv e;
	struct rd_transport_config cfg;
	char msg[RD_ERRMSG_SIZE] = "";

	tenv_init(&e, true);
	mesh_up(&e);
	tenv_other_ca(&e, "other", 1);
	tnode_config(&e, 1, false, &cfg);
	snprintf(cfg.tls_ca, sizeof cfg.tls_ca, "%s/other/ca.pem", e.dir);
	tcfg_cert(&e, &cfg, "other/node1");
	cr_assert_eq(rd_transport_reload(e.n[1].t, &cfg, msg), 0, "%s", msg);
	cr_expect(trun(&e, cert_closed_at_1, NULL, 20000));
	trun_for(&e, 200);
	cr_expect_not(tstats(&e, 1, 2).connected);
	tenv_fini(&e);
}

/* A peer certificate that expires while its connection is up ends that
 * connection (and the next handshake is refused). */
Test(hostile, peer_certificate_expiring_mid_connection)
{
	struct tenv e;
	char args[128];
	time_t end = time(NULL) + 4;
	struct tm tm;

	gmtime_r(&end, &tm);
	tenv_init(&e, true);
	strftime(args, sizeof args, "node 2 --enddate %Y%m%d%H%M%SZ", &tm);
	tenv_certs(&e, args);
	mesh_up(&e);
	cr_expect(trun(&e, cert_closed_at_1, NULL, 30000), "connection outlived the "
	                                                   "certificate");
	trun_for(&e, 500);
	cr_expect_not(tstats(&e, 1, 2).connected);
	tenv_fini(&e);
}
