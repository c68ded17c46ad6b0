/*
 * The forwarder's state machine (cluster/forward.h) against a fake
 * runtime, without a transport: a forward waits while no leader is known,
 * goes back to the runtime once one is, ends NO_LEADER at its deadline,
 * and a peer's request is never forwarded again.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "cluster/forward.h"
#include "cluster/topology.h"
#include "raftd.pb-c.h"

struct fake {
	uint64_t leader; /* what target() answers */
	uint64_t now;
	struct rd_forward *done_fw, *resubmitted;
	struct rd_result res;
	int dones, resubmits, wakes;
};

static uint64_t f_target(void *ud, uint64_t group)
{
	(void)group;
	return ((struct fake *)ud)->leader;
}

static void f_done(void *ud, struct rd_forward *fw, const struct rd_result *res)
{
	struct fake *k = ud;
	k->done_fw = fw;
	k->res = *res;
	k->dones++;
}

static void f_resubmit(void *ud, struct rd_forward *fw)
{
	struct fake *k = ud;
	k->resubmitted = fw;
	k->resubmits++;
}

static int f_serve(void *ud, const struct rd_forward_request *req,
                   struct rd_forward_reply *reply)
{
	(void)ud, (void)req, (void)reply;
	return RAFTD__ERROR_CODE__NOT_READY;
}

static uint64_t f_now(void *ud)
{
	return ((struct fake *)ud)->now;
}

static void f_wake(void *ud)
{
	((struct fake *)ud)->wakes++;
}

static const struct rd_forward_ops ops = {f_target, f_done, f_resubmit,
                                          f_serve,  f_now,  f_wake};

static struct rd_forwarder f;
static struct fake k;
static struct rd_topology topo;

static void setup(void)
{
	memset(&k, 0, sizeof k);
	memset(&topo, 0, sizeof topo);
	k.now = 1000000000ull;
	rd_forward_init(&f, &ops, &k, 1, &topo, 5000);
}

TestSuite(forward, .init = setup);

Test(forward, waits_for_a_leader_then_goes_back_to_the_runtime)
{
	struct rd_forward fw = {
	    .group = 3, .op = RD_OP_WRITE, .deadline_ns = 5000000000ull};

	cr_assert_not(rd_forward_start(&f, &fw), "nothing sent without a leader");
	cr_expect_eq(k.dones, 0);
	rd_forward_retry(&f);
	cr_expect_eq(k.resubmits, 0, "still no leader: keeps waiting");
	k.leader = 2;
	rd_forward_retry(&f);
	cr_expect_eq(k.resubmits, 1);
	cr_expect_eq(k.resubmitted, &fw);
	rd_forward_retry(&f);
	cr_expect_eq(k.resubmits, 1, "handed back once, no longer held");
	cr_expect_eq(k.dones, 0);
}

Test(forward, waiting_past_the_deadline_ends_no_leader)
{
	struct rd_forward a = {
	    .group = 1, .op = RD_OP_READ, .deadline_ns = 2000000000ull};
	struct rd_forward b = {
	    .group = 1, .op = RD_OP_READ, .deadline_ns = 9000000000ull};
	struct rd_result bye = {.code = RAFTD__ERROR_CODE__SHUTTING_DOWN};

	rd_forward_start(&f, &a);
	rd_forward_start(&f, &b);
	rd_forward_expire(&f, 3000000000ull);
	cr_assert_eq(k.dones, 1);
	cr_expect_eq(k.done_fw, &a);
	cr_expect_eq(k.res.code, RAFTD__ERROR_CODE__NO_LEADER);
	cr_expect_eq(k.res.group, 1);
	rd_forward_fail_all(&f, &bye);
	cr_assert_eq(k.dones, 2);
	cr_expect_eq(k.done_fw, &b);
	cr_expect_eq(k.res.code, RAFTD__ERROR_CODE__SHUTTING_DOWN);
}

Test(forward, a_peers_request_is_not_forwarded_again)
{
	struct rd_forward fw = {.group = 4, .no_forward = true, .deadline_ns = ~0ull};

	k.leader = 3;
	cr_expect_not(rd_forward_start(&f, &fw));
	cr_assert_eq(k.dones, 1);
	cr_expect_eq(k.res.code, RAFTD__ERROR_CODE__NOT_LEADER);
	cr_expect_eq(k.res.leader_hint, 3);
	k.leader = 0;
	rd_forward_start(&f, &fw);
	cr_assert_eq(k.dones, 2);
	cr_expect_eq(k.res.code, RAFTD__ERROR_CODE__NO_LEADER);
}

/* No transport is attached: a send to a known leader is queued, and at
 * the flush cannot leave. */
Test(forward, a_send_that_cannot_leave_waits_or_times_out)
{
	struct rd_forward fw = {
	    .group = 2, .op = RD_OP_WRITE, .deadline_ns = 9000000000ull};
	struct rd_forward late = {.group = 2, .op = RD_OP_WRITE, .deadline_ns = 10};

	k.leader = 2;
	cr_expect(rd_forward_start(&f, &fw), "a send to the leader was queued");
	cr_expect(rd_forward_start(&f, &late));
	cr_expect_eq(k.wakes, 2, "each queued send asks for a flush");
	cr_expect_eq(k.dones, 0, "nothing leaves before the flush");
	cr_expect_eq(fw.target, 2, "queued for the leader");
	rd_forward_flush(&f);
	cr_assert_eq(k.dones, 1);
	cr_expect_eq(k.done_fw, &late);
	cr_expect_eq(k.res.code, RAFTD__ERROR_CODE__TIMEOUT);
	cr_expect_eq(fw.target, 0, "waits for the next retry");
	rd_forward_retry(&f);
	cr_expect_eq(k.resubmitted, &fw);
	cr_expect_eq(f.stats.batches_sent, 0, "nothing left");
}

/* A node that shuts down with sends still queued (not yet flushed) ends
 * them with the shutdown's outcome: none is left behind. */
Test(forward, queued_sends_end_at_shutdown)
{
	struct rd_forward a = {.group = 2, .op = RD_OP_WRITE, .deadline_ns = ~0ull};
	struct rd_forward b = {.group = 5, .op = RD_OP_READ, .deadline_ns = ~0ull};
	struct rd_result bye = {.code = RAFTD__ERROR_CODE__SHUTTING_DOWN};

	k.leader = 3;
	rd_forward_start(&f, &a);
	k.leader = 2;
	rd_forward_start(&f, &b);
	rd_forward_fail_all(&f, &bye);
	cr_assert_eq(k.dones, 2);
	cr_expect_eq(k.res.code, RAFTD__ERROR_CODE__SHUTTING_DOWN);
	rd_forward_flush(&f);
	cr_expect_eq(k.dones, 2, "the queues are empty");
	rd_forward_free(&f);
}

/* Sends queued for several nodes, interleaved, all leave at the flush
 * (here: none can, so each comes back to wait): a queue stays whole when
 * a new node's queue is added (the first version lost sends after that). */
Test(forward, queues_for_many_nodes_keep_every_send)
{
	struct rd_forward fw[24];

	for (int i = 0; i < 24; i++) {
		fw[i] = (struct rd_forward){
		    .group = 1, .op = RD_OP_WRITE, .deadline_ns = ~0ull};
		k.leader = 2 + (uint64_t)(i % 6);
		cr_assert(rd_forward_start(&f, &fw[i]));
	}
	rd_forward_flush(&f);
	k.leader = 2;
	rd_forward_retry(&f);
	cr_expect_eq(k.resubmits, 24, "every queued send came back");
	cr_expect_eq(k.dones, 0);
	rd_forward_free(&f);
}
