/*
 * Malformed input (lib/transport/wire.h, stream.c): a frame whose
 * announced length is over the limit, bytes that do not decode, or a valid
 * frame of the wrong kind close the Raft stream's connection (other
 * streams: only the stream) with an application error, are counted against
 * the peer, and the endpoint keeps serving.
 */
#include <criterion/criterion.h>

#include "helpers.h"

static void setup(struct tenv *e)
{
	struct rd_transport_config cfg;
	uint64_t want = 1;

	tenv_init(e, false);
	for (uint64_t i = 1; i <= 3; i++) {
		tnode_config(e, i, true, &cfg);
		tnode_start(e, i, &cfg);
	}
	tenv_mesh(e);
	cr_assert_eq(tsend(e, 1, 2, 1, 1, 8), 0);
	cr_assert(trun(e, tgot, (uint64_t[]){2, want}, 10000));
}

/* After node 1 broke its Raft stream: counted at node 2, connection closed,
 * node 2 still serves node 3, and node 1's traffic resumes on a new one. */
static void expect_conn_closed(struct tenv *e)
{
	uint64_t want;

	cr_assert(trun(e, tdowns, (uint64_t[]){1, 1}, 10000), "connection closed");
	cr_expect_geq(tstats(e, 2, 1).malformed, 1);
	want = e->n[2].msgs + 5;
	cr_assert_eq(tsend(e, 3, 2, 1, 5, 8), 0);
	cr_expect(trun(e, tgot, (uint64_t[]){2, want}, 10000), "node 2 serves node 3");
	want = e->n[2].msgs + 5;
	for (unsigned i = 0; i < 20 && e->n[2].msgs < want; i++) {
		tsend(e, 1, 2, 100, 5, 8);
		trun(e, tgot, (uint64_t[]){2, want}, 300);
	}
	cr_expect_geq(e->n[2].msgs, want, "node 1 reconnected");
	tenv_fini(e);
}

Test(malformed, oversized_length_closes_connection)
{
	struct tenv e;
	const uint8_t raw[] = {0xff, 0xff, 0xff, 0xff, 1, 2, 3};

	setup(&e);
	cr_assert_eq(rd_transport_test_send_raw(e.n[1].t, 2, false, raw, sizeof raw), 0);
	expect_conn_closed(&e);
}

Test(malformed, garbage_closes_connection)
{
	struct tenv e;
	const uint8_t raw[] = {0,    0,    0,    8,    0xff, 0xff,
	                       0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

	setup(&e);
	cr_assert_eq(rd_transport_test_send_raw(e.n[1].t, 2, false, raw, sizeof raw), 0);
	expect_conn_closed(&e);
}

Test(malformed, wrong_kind_on_raft_stream_closes_connection)
{
	struct tenv e;
	Raftd__PeerFrame f = RAFTD__PEER_FRAME__INIT;
	struct tping p;
	uint8_t buf[64];
	size_t n;

	setup(&e);
	tping_init(&p);
	p.req.from = 1;
	f.kind_case = RAFTD__PEER_FRAME__KIND_REQUEST;
	f.request = &p.req;
	n = raftd__peer_frame__pack(&f, buf);
	cr_assert_eq(rd_transport_send_encoded(e.n[1].t, 2, buf, n, 0, NULL), 0);
	expect_conn_closed(&e);
}

/* On the snapshot stream only that stream is refused: the connection and
 * its Raft stream carry on. */
Test(malformed, garbage_on_snapshot_stream_closes_only_the_stream)
{
	struct tenv e;
	const uint8_t raw[] = {0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff};
	uint64_t want;

	setup(&e);
	cr_assert_eq(rd_transport_test_send_raw(e.n[1].t, 2, true, raw, sizeof raw), 0);
	trun_for(&e, 300);
	cr_expect_geq(tstats(&e, 2, 1).malformed, 1);
	want = e.n[2].msgs + 5;
	cr_assert_eq(tsend(&e, 1, 2, 2, 5, 8), 0);
	cr_expect(trun(&e, tgot, (uint64_t[]){2, want}, 10000));
	cr_expect_eq(e.n[1].downs, 0, "connection kept");
	cr_expect_eq(tstats(&e, 1, 2).connects, 1);
	tenv_fini(&e);
}

/* Messages claiming another sender are dropped and counted. */
Test(malformed, foreign_from_dropped)
{
	struct tenv e;
	uint64_t want;

	setup(&e);
	want = e.n[2].msgs + 3;
	cr_assert_eq(tsend(&e, 1, 2, 2, 3, 8), 0);
	/* Same batch but pretending to come from node 3. */
	{
		Raftd__RaftBatch b = RAFTD__RAFT_BATCH__INIT;
		Raftd__RaftMessage m = RAFTD__RAFT_MESSAGE__INIT, *mp = &m;
		m.type = RAFTD__RAFT_MESSAGE_TYPE__RAFT_MSG_HEARTBEAT;
		m.from = 3;
		m.to = 2;
		b.from = 1;
		b.to = 2;
		b.n_messages = 1;
		b.messages = &mp;
		cr_assert_eq(tsend_batch(e.n[1].t, 2, &b, NULL), 0);
	}
	cr_assert(trun(&e, tgot, (uint64_t[]){2, want}, 10000));
	trun_for(&e, 100);
	cr_expect_eq(e.n[2].msgs, want);
	cr_expect_eq(tstats(&e, 2, 1).foreign_from, 1);
	tenv_fini(&e);
}

/* The sender refuses a frame over max_frame_bytes before it leaves. */
Test(malformed, sender_refuses_oversized_frame)
{
	struct tenv e;
	struct rd_transport_config cfg;

	tenv_init(&e, false);
	tnode_config(&e, 1, true, &cfg);
	cfg.max_frame_bytes = 4096;
	tnode_start(&e, 1, &cfg);
	tnode_config(&e, 2, true, &cfg);
	tnode_start(&e, 2, &cfg);
	tenv_mesh(&e);
	cr_expect_eq(tsend(&e, 1, 2, 1, 1, 8192), RD_ETOOBIG);
	cr_expect_eq(tsend(&e, 1, 2, 1, 1, 100), 0);
	tenv_fini(&e);
}
