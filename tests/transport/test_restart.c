/*
 * A peer that restarts (lib/transport/peer.c): each process carries its
 * boot id in the first connection id of its connections, so the node that
 * still holds a connection to the previous process replaces it as soon as
 * the new process connects, and drops the frames it had queued for the
 * previous process instead of replaying them to the new one.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "helpers.h"

/* Far beyond every bound below: a stale connection is never freed by its
 * idle timeout while a test runs. */
#define IDLE_MS 600000

/* Node w[0] is connected to a new process of node w[1]. */
static bool reconnected(struct tenv *e, void *arg)
{
	const uint64_t *w = arg; /* {at, peer} */
	struct rd_transport_peer_stats st = tstats(e, w[0], w[1]);
	return st.connected && st.restarts >= 1;
}

/* Nodes 1 and 2 (mutual TLS), node 1 having dialed node 2 (the lower id
 * dials, so node 2's dials after a restart lose the simultaneous-dial
 * tie-break against it); node 2's configuration is left in *cfg2 with its
 * bound address, so that it can start again on that address. */
static void pair(struct tenv *e, struct rd_transport_config *cfg2)
{
	struct rd_transport_config cfg;
	uint64_t want[2] = {2, 5};

	tenv_init(e, true);
	tnode_config(e, 1, false, &cfg);
	cfg.idle_timeout_ms = IDLE_MS;
	cfg.keepalive_ms = 200;
	tnode_start(e, 1, &cfg);
	tnode_config(e, 2, false, cfg2);
	cfg2->idle_timeout_ms = IDLE_MS;
	cfg2->keepalive_ms = 200;
	tnode_start(e, 2, cfg2);
	tenv_mesh(e);
	cr_assert_eq(tsend(e, 1, 2, 1, 5, 8), 0);
	cr_assert(trun(e, tgot, want, 10000));
	memcpy(&cfg2->listen, &e->n[2].addr, e->n[2].addrlen);
	cfg2->listen_len = e->n[2].addrlen;
}

/* Node 2 crashes and comes back without the file that held its stateless
 * reset secret (a wiped data directory), so node 1 cannot recognise its
 * stateless resets and its connection to the dead process stays up until
 * the idle timeout. Node 2's dial proves another boot id: node 1 replaces
 * the stale connection at once (the idle timeout is far beyond the bound),
 * counts it, and traffic flows both ways on the new connection. */
Test(restart, a_restarted_peer_replaces_the_stale_connection, .timeout = 120)
{
	struct tenv e;
	struct rd_transport_config cfg2;
	uint64_t up[2] = {1, 2}, want[2] = {2, 3};
	struct rd_transport_stats st;

	pair(&e, &cfg2);
	rd_transport_test_abandon(e.n[2].t);
	e.n[2].t = NULL;
	snprintf(cfg2.reset_secret_file, sizeof cfg2.reset_secret_file,
	         "%s/reset-secret-2-wiped", e.dir);
	tnode_start(&e, 2, &cfg2);
	tnode_add_peer(&e, 2, 1);
	e.n[2].msgs = 0;
	for (unsigned i = 0; i < 60 && !reconnected(&e, up); i++) {
		tsend(&e, 2, 1, 100 + i, 1, 8);
		trun(&e, reconnected, up, 500);
	}
	cr_assert(reconnected(&e, up),
	          "node 1 still uses its connection to the dead process");
	rd_transport_stats(e.n[1].t, &st);
	cr_expect_eq(st.stale_replaced, 1);
	cr_expect_eq(st.established, 1);
	cr_expect_geq(e.n[1].msgs, 1, "restarted node 2 -> node 1");
	e.n[2].next_index[1] = 1000;
	e.n[2].out_of_order = false;
	cr_assert_eq(tsend(&e, 1, 2, 1000, 3, 8), 0);
	cr_assert(trun(&e, tgot, want, 20000), "node 1 -> restarted node 2");
	cr_expect(!e.n[2].out_of_order);
	tenv_fini(&e);
}

/* Frames node 1 queued while node 2 was down (its connection to the dead
 * process still up) were built for that process: none reaches node 2's new
 * process, they are counted as dropped, and what node 1 sends afterwards
 * arrives, in order, alone. Node 2 keeps its reset secret here, so the old
 * connection may also die by a stateless reset before the new one comes
 * up; either way nothing queued for the old process is replayed. */
Test(restart, frames_queued_for_the_old_process_are_not_replayed, .timeout = 120)
{
	struct tenv e;
	struct rd_transport_config cfg2;
	uint64_t up[2] = {1, 2}, want[2] = {2, 10};

	pair(&e, &cfg2);
	rd_transport_test_abandon(e.n[2].t);
	e.n[2].t = NULL;
	/* Far more than the congestion window lets leave: most stay queued. */
	for (unsigned i = 0; i < 200; i++)
		cr_assert_eq(tsend(&e, 1, 2, 10 + 10 * i, 10, 1000), 0);
	trun_for(&e, 300);
	tnode_start(&e, 2, &cfg2);
	tnode_add_peer(&e, 2, 1);
	e.n[2].msgs = 0;
	e.n[2].next_index[1] = 100000;
	e.n[2].out_of_order = false;
	for (unsigned i = 0; i < 60 && !reconnected(&e, up); i++) {
		tsend(&e, 2, 1, 100 + i, 1, 8);
		trun(&e, reconnected, up, 500);
	}
	cr_assert(reconnected(&e, up), "no connection to the restarted node");
	cr_assert_eq(tsend(&e, 1, 2, 100000, 10, 8), 0);
	cr_assert(trun(&e, tgot, want, 20000),
	          "node 1 -> restarted node 2: %llu messages",
	          (unsigned long long)e.n[2].msgs);
	trun_for(&e, 300);
	cr_expect_eq(e.n[2].msgs, 10,
	             "%llu messages of the old process's frames replayed",
	             (unsigned long long)(e.n[2].msgs - 10));
	cr_expect(!e.n[2].out_of_order);
	cr_expect_gt(tstats(&e, 1, 2).stale_dropped, 0);
	cr_expect_eq(tstats(&e, 1, 2).restarts, 1);
	tenv_fini(&e);
}

/* Both ends dial at once between the same two processes: the boot ids
 * agree, so the tie-break (not the restart rule) picks one connection,
 * nothing is counted as a restart and no queued frame is dropped as
 * stale. */
Test(restart, a_simultaneous_dial_is_not_a_restart, .timeout = 120)
{
	struct tenv e;
	uint64_t w1[2] = {1, 5}, w2[2] = {2, 5};

	tenv_up(&e, true, 2);
	tsend(&e, 1, 2, 1, 5, 8);
	tsend(&e, 2, 1, 1, 5, 8);
	trun(&e, tgot, w2, 5000);
	trun(&e, tgot, w1, 5000);
	trun_for(&e, 300);
	cr_expect_eq(tstats(&e, 1, 2).restarts, 0);
	cr_expect_eq(tstats(&e, 2, 1).restarts, 0);
	cr_expect_eq(tstats(&e, 1, 2).stale_dropped, 0);
	cr_expect_eq(tstats(&e, 2, 1).stale_dropped, 0);
	cr_expect_eq(tstats_all(&e, 1).stale_replaced, 0);
	cr_expect_eq(tstats_all(&e, 2).stale_replaced, 0);
	tenv_fini(&e);
}
