/*
 * Two and three transport endpoints on loopback (lib/transport/transport.h).
 */
#include <criterion/criterion.h>
#include <string.h>

#include "helpers.h"

/* Batches from one peer arrive in the order they were sent, over one
 * mutually authenticated connection. */
Test(loopback, batches_in_order_mutual)
{
	struct tenv e;
	uint64_t want = 50;

	tenv_up(&e, true, 2);
	e.n[2].next_index[1] = 1;
	for (unsigned i = 0; i < 10; i++)
		cr_assert_eq(tsend(&e, 1, 2, 1 + 5 * i, 5, 100), 0);
	cr_assert(trun(&e, tgot, (uint64_t[]){2, want}, 10000), "got %llu messages",
	          (unsigned long long)e.n[2].msgs);
	cr_expect_not(e.n[2].out_of_order);
	cr_expect_eq(e.n[2].batches, 10);
	struct rd_transport_peer_stats st = tstats(&e, 1, 2);
	cr_expect(st.connected);
	cr_expect_eq(st.frames_out, 10);
	cr_expect_eq(st.raft_msgs_out, 50);
	cr_expect_neq(st.cipher[0], '\0');
	tenv_fini(&e);
}

/* 10,000 messages in 100 batches reach the peer, none lost, in order. */
Test(loopback, ten_thousand_messages)
{
	struct tenv e;
	uint64_t want[2] = {2, 10000};

	tenv_up(&e, false, 2);
	e.n[2].next_index[1] = 1;
	for (unsigned i = 0; i < 100; i++)
		cr_assert_eq(tsend(&e, 1, 2, 1 + 100 * i, 100, 64), 0);
	cr_assert(trun(&e, tgot, want, 30000), "got %llu",
	          (unsigned long long)e.n[2].msgs);
	cr_expect_eq(e.n[2].msgs, 10000);
	cr_expect_not(e.n[2].out_of_order);
	cr_expect_eq(tstats(&e, 2, 1).raft_msgs_in, 10000);
	cr_expect_eq(tstats(&e, 1, 2).dropped, 0);
	tenv_fini(&e);
}

static bool all_got(struct tenv *e, void *arg)
{
	const uint64_t *want = arg;
	for (int i = 1; i <= 3; i++)
		if (e->n[i].msgs < *want)
			return false;
	return true;
}

static bool settled(struct tenv *e, void *arg)
{
	struct rd_transport_stats st;

	(void)arg;
	for (int i = 1; i <= 3; i++) {
		rd_transport_stats(e->n[i].t, &st);
		if (st.conns != 2 || st.established != 2)
			return false;
	}
	return true;
}

/* Three endpoints, every one sending to every other: each receives both
 * peers' messages, in order per sender, over one connection per pair.
 * Connections are set up first: frames in flight on a connection that
 * loses the simultaneous-dial tie-break may be lost (Raft resends). */
Test(loopback, three_endpoints_mesh)
{
	struct tenv e;
	uint64_t want = 2 * 200;
	struct rd_transport_stats st;

	tenv_up(&e, true, 3);
	for (uint64_t a = 1; a <= 3; a++)
		for (uint64_t b = 1; b <= 3; b++)
			if (a != b)
				tsend(&e, a, b, 0, 1, 0);
	cr_assert(trun(&e, settled, NULL, 20000));
	trun_for(&e, 100);
	for (uint64_t a = 1; a <= 3; a++) {
		e.n[a].msgs = 0;
		e.n[a].out_of_order = false;
		for (uint64_t b = 1; b <= 3; b++)
			e.n[a].next_index[b] = 1;
	}
	for (unsigned r = 0; r < 10; r++)
		for (uint64_t a = 1; a <= 3; a++)
			for (uint64_t b = 1; b <= 3; b++)
				if (a != b)
					cr_assert_eq(tsend(&e, a, b, 1 + 20 * r, 20, 32),
					             0);
	cr_assert(trun(&e, all_got, &want, 20000));
	trun_for(&e, 200);
	for (uint64_t i = 1; i <= 3; i++) {
		cr_expect_eq(e.n[i].msgs, want);
		cr_expect_not(e.n[i].out_of_order);
		rd_transport_stats(e.n[i].t, &st);
		cr_expect_eq(st.established, 2, "node %llu has %llu connections",
		             (unsigned long long)i, (unsigned long long)st.established);
	}
	tenv_fini(&e);
}

struct reply {
	int calls, err;
	uint64_t version;
};

static void on_reply(void *arg, int err, const Raftd__PeerResponse *resp, const char *m)
{
	struct reply *r = arg;

	(void)m;
	r->calls++;
	r->err = err;
	if (err == 0 && resp->body_case == RAFTD__PEER_RESPONSE__BODY_PONG)
		r->version = resp->pong->topology_version;
}

static bool replied(struct tenv *e, void *arg)
{
	(void)e;
	return ((struct reply *)arg)->calls > 0;
}

/* A call gets the callee's response on its own stream (Ping -> Pong). */
Test(loopback, request_response)
{
	struct tenv e;
	struct tping p;
	struct reply r = {0};
	char msg[RD_ERRMSG_SIZE];

	tenv_up(&e, true, 2);
	tping_init(&p);
	p.ping.topology_version = 41;
	cr_assert_eq(rd_transport_call(e.n[1].t, 2, &p.req, 5000, on_reply, &r, msg), 0,
	             "%s", msg);
	cr_expect_eq(r.calls, 0, "never called back from inside rd_transport_call");
	cr_assert(trun(&e, replied, &r, 10000));
	cr_expect_eq(r.err, 0);
	cr_expect_eq(r.version, 42);
	cr_expect_eq(e.n[2].requests, 1);
	tenv_fini(&e);
}

/* A call whose callee does not answer fails with RD_ETIMEDOUT at its
 * deadline, exactly once; the late answer is discarded (RD_ECLOSED). */
Test(loopback, request_deadline)
{
	struct tenv e;
	struct tping p;
	Raftd__PeerResponse resp = RAFTD__PEER_RESPONSE__INIT;
	struct reply r = {0};
	char msg[RD_ERRMSG_SIZE];

	tenv_up(&e, false, 2);
	e.n[2].hold_requests = true;
	tping_init(&p);
	cr_assert_eq(rd_transport_call(e.n[1].t, 2, &p.req, 300, on_reply, &r, msg), 0);
	cr_assert(trun(&e, replied, &r, 10000));
	cr_expect_eq(r.err, RD_ETIMEDOUT);
	trun_for(&e, 100);
	cr_expect_eq(r.calls, 1);
	cr_assert_eq(e.n[2].n_held, 1);
	e.n[2].n_held = 0;
	resp.error = RAFTD__ERROR_CODE__TIMEOUT;
	cr_expect_eq(rd_transport_respond(e.n[2].held[0], &resp), RD_ECLOSED);
	trun_for(&e, 50);
	cr_expect_eq(r.calls, 1);
	tenv_fini(&e);
}

/* Two mutual endpoints, node 2's configuration left in *cfg2 with its
 * bound address, so that it can start again on the same address; `n`
 * messages from node 1 have reached it. */
static void pair_for_restart(struct tenv *e, struct rd_transport_config *cfg2, uint64_t n)
{
	struct rd_transport_config cfg;
	uint64_t want[2] = {2, n};

	tenv_init(e, true);
	tnode_config(e, 1, false, &cfg);
	tnode_start(e, 1, &cfg);
	tnode_config(e, 2, false, cfg2);
	tnode_start(e, 2, cfg2);
	tenv_mesh(e);
	cr_assert_eq(tsend(e, 1, 2, 1, (unsigned)n, 8), 0);
	cr_assert(trun(e, tgot, want, 10000));
	memcpy(&cfg2->listen, &e->n[2].addr, e->n[2].addrlen);
	cfg2->listen_len = e->n[2].addrlen;
}

/* A peer restarted on the same address is dialed again and traffic resumes;
 * the reconnect is counted. */
Test(loopback, restart_reconnects)
{
	struct tenv e;
	struct rd_transport_config cfg2;
	uint64_t want[2] = {2, 10};

	pair_for_restart(&e, &cfg2, 10);
	tnode_stop(&e, 2);
	/* Same address, fresh process state. */
	trun_for(&e, 100);
	tnode_start(&e, 2, &cfg2);
	e.n[2].msgs = 0;
	tnode_add_peer(&e, 2, 1);
	for (unsigned i = 0; i < 20 && e.n[2].msgs < 10; i++) {
		tsend(&e, 1, 2, 100 + 10 * i, 10, 8);
		trun(&e, tgot, want, 500);
	}
	cr_assert_geq(e.n[2].msgs, 10);
	cr_expect_geq(tstats(&e, 1, 2).reconnects, 1);
	tenv_fini(&e);
}

static bool one_each(struct tenv *e, void *arg)
{
	struct rd_transport_stats a, b;

	(void)arg;
	rd_transport_stats(e->n[1].t, &a);
	rd_transport_stats(e->n[2].t, &b);
	return a.conns == 1 && b.conns == 1 && a.established == 1 && b.established == 1 &&
	       e->n[1].msgs >= 5 && e->n[2].msgs >= 5;
}

/* Both nodes dial each other in the same loop turn: the tie-break leaves
 * exactly one connection at each end and traffic flows both ways. */
Test(loopback, simultaneous_dial)
{
	struct tenv e;
	struct rd_transport_stats a;

	tenv_up(&e, true, 2);
	tsend(&e, 1, 2, 1, 5, 8);
	tsend(&e, 2, 1, 1, 5, 8);
	trun_for(&e, 300);
	/* Messages sent on the losing connection may be gone (Raft resends). */
	for (unsigned i = 0; i < 20 && !one_each(&e, NULL); i++) {
		tsend(&e, 1, 2, 10 + i, 5, 8);
		tsend(&e, 2, 1, 10 + i, 5, 8);
		trun(&e, one_each, NULL, 300);
	}
	cr_assert(one_each(&e, NULL));
	rd_transport_stats(e.n[1].t, &a);
	cr_expect_eq(a.dialed, 1);
	cr_expect_eq(a.accepted, 1);
	tenv_fini(&e);
}

/* A peer that crashes (no CONNECTION_CLOSE) and restarts on the same address
 * is noticed through a stateless reset (RFC 9000 §10.3: the restarted node
 * derives the same reset tokens) and traffic resumes both ways. */
Test(loopback, crash_restart_recovers)
{
	struct tenv e;
	struct rd_transport_config cfg2;
	uint64_t want[2] = {2, 5};
	uint64_t base1;

	pair_for_restart(&e, &cfg2, 5);
	rd_transport_test_abandon(e.n[2].t);
	e.n[2].t = NULL;
	tnode_start(&e, 2, &cfg2);
	tnode_add_peer(&e, 2, 1);
	e.n[2].msgs = 0;
	base1 = e.n[1].msgs;
	for (unsigned i = 0; i < 40 && (e.n[2].msgs < 5 || e.n[1].msgs < base1 + 5);
	     i++) {
		tsend(&e, 1, 2, 100 + 10 * i, 5, 8);
		tsend(&e, 2, 1, 100 + 10 * i, 5, 8);
		trun(&e, tgot, want, 250);
	}
	cr_expect_geq(e.n[2].msgs, 5, "node 1 -> restarted node 2");
	cr_expect_geq(e.n[1].msgs, base1 + 5, "restarted node 2 -> node 1");
	tenv_fini(&e);
}

static bool snap_and_msgs(struct tenv *e, void *arg)
{
	(void)arg;
	return e->n[2].snapshots >= 3 && e->n[2].msgs >= 5;
}

/* Snapshot chunks and acks travel on their own stream next to Raft traffic
 * (transport.h: RPCs and snapshots on their own streams); both arrive. */
Test(loopback, snapshot_stream)
{
	struct tenv e;
	struct tsnap s;
	Raftd__SnapshotAck ack = RAFTD__SNAPSHOT_ACK__INIT;
	static uint8_t big[RD_TRANSPORT_SNAPSHOT_CHUNK];
	char msg[RD_ERRMSG_SIZE];

	tenv_up(&e, false, 2);
	tsnap_init(&s, 4, 1, 2, 10, 2);
	s.ch.data.data = big;
	s.ch.data.len = sizeof big;
	for (int i = 0; i < 2; i++) {
		s.ch.offset = (uint64_t)i * sizeof big;
		cr_assert_eq(rd_transport_send_snapshot(e.n[1].t, 2, &s.f, msg), 0, "%s",
		             msg);
	}
	ack.from = 1;
	ack.to = 2;
	ack.group = 4;
	s.f.kind_case = RAFTD__PEER_FRAME__KIND_SNAPSHOT_ACK;
	s.f.snapshot_ack = &ack;
	cr_assert_eq(rd_transport_send_snapshot(e.n[1].t, 2, &s.f, msg), 0, "%s", msg);
	e.n[2].next_index[1] = 1;
	cr_assert_eq(tsend(&e, 1, 2, 1, 5, 8), 0);
	cr_expect_eq(rd_transport_send_snapshot(
	                 e.n[1].t, 2, &(Raftd__PeerFrame)RAFTD__PEER_FRAME__INIT, msg),
	             RD_EINVAL);
	cr_assert(trun(&e, snap_and_msgs, NULL, 20000));
	cr_expect_not(e.n[2].out_of_order);
	tenv_fini(&e);
}

/* Two insecure endpoints with a 300 ms idle timeout and `keepalive_ms`,
 * connected by a first batch. */
static void idle_pair(struct tenv *e, unsigned keepalive_ms)
{
	struct rd_transport_config cfg;

	tenv_init(e, false);
	for (uint64_t i = 1; i <= 2; i++) {
		tnode_config(e, i, true, &cfg);
		cfg.keepalive_ms = keepalive_ms;
		cfg.idle_timeout_ms = 300;
		tnode_start(e, i, &cfg);
	}
	tenv_mesh(e);
	tconnect_1_2(e);
}

/* Without keep-alive a silent connection ends at the idle timeout (RFC 9000
 * §10.1); with keep-alive shorter than it, the connection stays up. */
Test(loopback, idle_timeout_and_keepalive)
{
	struct tenv e;

	idle_pair(&e, 0);
	cr_expect(trun(&e, tdowns, (uint64_t[]){1, 1}, 5000), "idle connection closed");
	tenv_fini(&e);

	idle_pair(&e, 50);
	trun_for(&e, 1200);
	cr_expect_eq(e.n[1].downs, 0, "keep-alive kept the connection");
	cr_expect(tstats(&e, 1, 2).connected);
	tenv_fini(&e);
}

/* Removing a peer from inside its own batch callback is safe: later frames
 * of the same packet are not delivered, the connection closes, the sender
 * sees it go down. */
Test(loopback, peer_removed_from_callback)
{
	struct tenv e;

	tenv_up(&e, false, 2);
	e.n[2].remove_on_batch = true;
	for (unsigned i = 0; i < 5; i++)
		cr_assert_eq(tsend(&e, 1, 2, 1 + i, 1, 8), 0);
	cr_expect(trun(&e, tdowns, (uint64_t[]){1, 1}, 10000),
	          "sender saw the connection close");
	cr_expect_eq(e.n[2].batches, 1, "nothing delivered after the removal");
	cr_expect_eq(
	    rd_transport_peer_stats(e.n[2].t, 1, &(struct rd_transport_peer_stats){0}),
	    RD_ENOTFOUND);
	tenv_fini(&e);
}

/* rd_transport_flush writes what is queued at once, inside the caller:
 * the node loop sends a leader's appends with it before its synced write
 * (multiraft/peers.c), where queueing alone would leave them until the
 * loop runs again, after the write. */
Test(loopback, flush_writes_queued_frames_before_the_loop_runs)
{
	struct tenv e;
	struct rd_transport_stats before, queued, flushed;

	tenv_up(&e, true, 2);
	e.n[2].next_index[1] = 1;
	tconnect_1_2(&e);
	rd_transport_stats(e.n[1].t, &before);
	cr_assert_eq(tsend(&e, 1, 2, 2, 1, 100), 0);
	rd_transport_stats(e.n[1].t, &queued);
	cr_expect_eq(queued.packets_out, before.packets_out, "queueing wrote packets");
	rd_transport_flush(e.n[1].t);
	rd_transport_stats(e.n[1].t, &flushed);
	cr_assert_gt(flushed.packets_out, queued.packets_out, "nothing written");
	cr_assert(trun(&e, tgot, (uint64_t[]){2, 2}, 10000), "got %llu messages",
	          (unsigned long long)e.n[2].msgs);
	tenv_fini(&e);
}
