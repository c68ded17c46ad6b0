/*
 * Endpoints on loopback (issue 5, "Two and three endpoints on loopback").
 */
#include <criterion/criterion.h>

#include "helpers.h"

static bool got_msgs(struct tenv *e, void *arg)
{
	uint64_t *want = arg;
	return e->n[2].msgs >= want[0];
}

/* Batches from one peer arrive in the order they were sent, over one
 * mutually authenticated connection. */
Test(loopback, batches_in_order_mutual)
{
	struct tenv e;
	struct rd_transport_config cfg;
	uint64_t want = 50;

	tenv_init(&e, true);
	tnode_config(&e, 1, false, &cfg);
	tnode_start(&e, 1, &cfg);
	tnode_config(&e, 2, false, &cfg);
	tnode_start(&e, 2, &cfg);
	tenv_mesh(&e);
	e.n[2].next_index[1] = 1;
	for (unsigned i = 0; i < 10; i++)
		cr_assert_eq(tsend(&e, 1, 2, 1 + 5 * i, 5, 100), 0);
	cr_assert(trun(&e, got_msgs, &want, 10000), "got %llu messages",
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
