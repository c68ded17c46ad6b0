/*
 * Forwarding in batches (cluster/forward.h, "Batches") over a real QUIC
 * connection: two forwarders, each with a fake runtime. What one node
 * queues for a leader leaves as one RPC at the flush; the leader serves
 * every item as a lone request and answers them together, each with its
 * own outcome; an item keeps its own deadline; malformed batches and
 * answers are refused and counted. Nothing here asserts on time.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "cluster/forward.h"
#include "cluster/topology.h"
#include "helpers.h"
#include "raftd.pb-c.h"
#include "util/clock.h"

#define SLOTS 8

/* One node's forwarder and the fake runtime around it. */
struct side {
	struct rd_forwarder f;
	struct rd_topology topo;
	uint64_t leader; /* what target() answers */
	/* Asking side: the forwards that ended, in order. */
	int dones;
	struct rd_forward *done[SLOTS];
	int code[SLOTS];
	uint64_t index[SLOTS];
	bool has_value[SLOTS];
	size_t value_len[SLOTS];
	/* Leader side: what serve() saw; with `hold`, the replies it kept. */
	int served;
	bool hold;
	struct rd_forward_reply *held[SLOTS];
	uint64_t held_group[SLOTS];
	int n_held;
};

static uint64_t s_target(void *ud, uint64_t group)
{
	(void)group;
	return ((struct side *)ud)->leader;
}

static void s_done(void *ud, struct rd_forward *fw, const struct rd_result *res)
{
	struct side *s = ud;

	cr_assert_lt(s->dones, SLOTS);
	s->done[s->dones] = fw;
	s->code[s->dones] = res->code;
	s->index[s->dones] = res->index;
	s->has_value[s->dones] = res->has_value;
	s->value_len[s->dones] = res->value_len;
	s->dones++;
}

static void s_resubmit(void *ud, struct rd_forward *fw)
{
	(void)ud, (void)fw;
}

/* Group 9 is refused before serving (NOT_READY); any other is answered OK
 * at index 100 + group, at once or, with `hold`, when the test says. */
static int s_serve(void *ud, const struct rd_forward_request *req,
                   struct rd_forward_reply *reply)
{
	struct side *s = ud;

	s->served++;
	if (req->group == 9)
		return RAFTD__ERROR_CODE__NOT_READY;
	if (s->hold) {
		cr_assert_lt(s->n_held, SLOTS);
		s->held_group[s->n_held] = req->group;
		s->held[s->n_held++] = reply;
		return RAFTD__ERROR_CODE__OK;
	}
	struct rd_result r = {.code = RAFTD__ERROR_CODE__OK,
	                      .group = req->group,
	                      .index = 100 + req->group};
	rd_forward_answer(reply, 0, &r);
	return RAFTD__ERROR_CODE__OK;
}

static uint64_t s_now(void *ud)
{
	(void)ud;
	return rd_clock_now_ns();
}

static const struct rd_forward_ops ops = {s_target, s_done, s_resubmit,
                                          s_serve,  s_now,  NULL};

static void to_forwarder(void *arg, uint64_t peer, const Raftd__PeerRequest *req,
                         struct rd_transport_responder *r)
{
	rd_forward_on_request(&((struct side *)arg)->f, peer, req, r);
}

static struct tenv e;
static struct side s1, s2; /* node 1 asks, node 2 leads */

static void start(void)
{

	memset(&s1, 0, sizeof s1);
	memset(&s2, 0, sizeof s2);
	tenv_up(&e, true, 2);
	rd_forward_init(&s1.f, &ops, &s1, 1, &s1.topo, 5000);
	rd_forward_init(&s2.f, &ops, &s2, 2, &s2.topo, 5000);
	rd_forward_attach(&s1.f, e.n[1].t);
	rd_forward_attach(&s2.f, e.n[2].t);
	e.n[2].on_request = to_forwarder;
	e.n[2].on_request_arg = &s2;
	s1.leader = 2;
}

static void stop(void)
{
	struct rd_result bye = {.code = RAFTD__ERROR_CODE__SHUTTING_DOWN};

	rd_forward_fail_all(&s1.f, &bye);
	tenv_fini(&e);
	rd_forward_free(&s1.f);
	rd_forward_free(&s2.f);
}

static int done_at(const struct side *s, const struct rd_forward *fw)
{
	for (int i = 0; i < s->dones; i++)
		if (s->done[i] == fw)
			return i;
	return -1;
}

static bool dones_reach(struct tenv *env, void *arg)
{
	(void)env;
	return s1.dones >= *(int *)arg;
}

static bool held_reach(struct tenv *env, void *arg)
{
	(void)env;
	return s2.n_held >= *(int *)arg;
}

TestSuite(forward_batch, .init = start, .fini = stop, .timeout = 60);

/* Three writes queued for one leader leave as one RPC (a read goes alone);
 * each comes back with its own answer, and an item refused before serving
 * (NOT_READY: not applied) waits to go again, as a lone request would. */
Test(forward_batch, one_rpc_per_leader_and_an_answer_per_item)
{
	uint64_t dl = rd_clock_now_ns() + 30000000000ull;
	struct rd_forward fw[4] = {
	    {.group = 1, .op = RD_OP_WRITE, .deadline_ns = dl, .retry_safe = true},
	    {.group = 3, .op = RD_OP_READ, .deadline_ns = dl, .retry_safe = true},
	    {.group = 9, .op = RD_OP_WRITE, .deadline_ns = dl},
	    {.group = 0, .op = RD_OP_WRITE, .deadline_ns = dl}};
	int want = 3;

	for (int i = 0; i < 4; i++)
		cr_assert(rd_forward_start(&s1.f, &fw[i]));
	trun_for(&e, 50);
	cr_expect_eq(e.n[2].requests, 0, "nothing leaves before the flush");
	rd_forward_flush(&s1.f);
	cr_expect_eq(s1.f.stats.batches_sent, 1);
	cr_expect_eq(s1.f.stats.batched_items, 3);
	cr_assert(trun(&e, dones_reach, &want, 20000));
	cr_expect_eq(e.n[2].requests, 2, "one RPC for the writes, one for the read");
	cr_expect_eq(s2.served, 4);
	int w = done_at(&s1, &fw[0]), r = done_at(&s1, &fw[1]), m = done_at(&s1, &fw[3]);
	cr_assert(w >= 0 && r >= 0 && m >= 0);
	cr_expect_eq(s1.code[w], RAFTD__ERROR_CODE__OK);
	cr_expect_eq(s1.index[w], 101);
	cr_expect_eq(s1.code[r], RAFTD__ERROR_CODE__OK);
	cr_expect_eq(s1.index[r], 103);
	cr_expect_eq(s1.code[m], RAFTD__ERROR_CODE__OK);
	cr_expect_eq(s1.index[m], 100);
	cr_expect_eq(done_at(&s1, &fw[2]), -1, "the refused item is not ended");
	cr_expect_eq(fw[2].target, 0, "it waits for the next retry");
	cr_expect_eq(s2.f.stats.batches_rejected, 0);
}

/* The batch's answer waits for its slowest item, but an item whose own
 * deadline passes first ends TIMEOUT then (outcome unknown), and its late
 * answer is dropped. */
Test(forward_batch, an_item_keeps_its_own_deadline)
{
	uint64_t now = rd_clock_now_ns();
	struct rd_forward a = {
	    .group = 1, .op = RD_OP_WRITE, .deadline_ns = now + 10000000000ull};
	struct rd_forward b = {
	    .group = 2, .op = RD_OP_WRITE, .deadline_ns = now + 40000000000ull};
	int two = 2;

	s2.hold = true;
	rd_forward_start(&s1.f, &a);
	rd_forward_start(&s1.f, &b);
	rd_forward_flush(&s1.f);
	cr_assert(trun(&e, held_reach, &two, 20000));
	rd_forward_expire(&s1.f, a.deadline_ns);
	cr_assert_eq(s1.dones, 1);
	cr_expect_eq(s1.done[0], &a);
	cr_expect_eq(s1.code[0], RAFTD__ERROR_CODE__TIMEOUT);
	for (int i = 0; i < 2; i++) {
		struct rd_result r = {.code = RAFTD__ERROR_CODE__OK,
		                      .group = s2.held_group[i],
		                      .index = 100 + s2.held_group[i]};
		rd_forward_answer(s2.held[i], 0, &r);
	}
	cr_assert(trun(&e, dones_reach, &two, 20000));
	cr_expect_eq(s1.done[1], &b);
	cr_expect_eq(s1.code[1], RAFTD__ERROR_CODE__OK);
	cr_expect_eq(s1.index[1], 102);
	trun_for(&e, 100);
	cr_expect_eq(s1.dones, 2, "a's late answer is dropped");
}

struct raw_reply {
	int calls, err, code;
};

static void raw_cb(void *arg, int err, const Raftd__PeerResponse *resp,
                   const char *errmsg)
{
	struct raw_reply *r = arg;

	(void)errmsg;
	r->calls++;
	r->err = err;
	r->code = resp != NULL ? (int)resp->error : -1;
}

static bool raw_done(struct tenv *env, void *arg)
{
	(void)env;
	return ((struct raw_reply *)arg)->calls > 0;
}

/* A batch holding a request of another kind (a ping) or nothing at all is
 * refused whole with INVALID, counted, and none of it is served. */
Test(forward_batch, a_malformed_batch_is_refused_and_counted)
{
	Raftd__PeerRequest req = RAFTD__PEER_REQUEST__INIT,
	                   item = RAFTD__PEER_REQUEST__INIT;
	Raftd__PeerRequest item2 = RAFTD__PEER_REQUEST__INIT, *items[2] = {&item2, &item};
	Raftd__Ping ping = RAFTD__PING__INIT;
	Raftd__DataProposeRequest dp = RAFTD__DATA_PROPOSE_REQUEST__INIT;
	Raftd__ForwardBatchRequest fb = RAFTD__FORWARD_BATCH_REQUEST__INIT;
	struct raw_reply r = {0}, r2 = {0};
	char msg[RD_ERRMSG_SIZE];

	dp.group = 1;
	item2.body_case = RAFTD__PEER_REQUEST__BODY_DATA_PROPOSE;
	item2.data_propose = &dp;
	item.body_case = RAFTD__PEER_REQUEST__BODY_PING;
	item.ping = &ping;
	fb.n_items = 2;
	fb.items = items;
	req.body_case = RAFTD__PEER_REQUEST__BODY_FORWARD_BATCH;
	req.forward_batch = &fb;
	cr_assert_eq(rd_transport_call(e.n[1].t, 2, &req, 10000, raw_cb, &r, msg), 0,
	             "%s", msg);
	cr_assert(trun(&e, raw_done, &r, 20000));
	cr_expect_eq(r.err, 0);
	cr_expect_eq(r.code, RAFTD__ERROR_CODE__INVALID);
	cr_expect_eq(s2.f.stats.batches_rejected, 1);
	fb.n_items = 0;
	cr_assert_eq(rd_transport_call(e.n[1].t, 2, &req, 10000, raw_cb, &r2, msg), 0,
	             "%s", msg);
	cr_assert(trun(&e, raw_done, &r2, 20000));
	cr_expect_eq(r2.code, RAFTD__ERROR_CODE__INVALID);
	cr_expect_eq(s2.f.stats.batches_rejected, 2);
	cr_expect_eq(s2.served, 0, "nothing of a refused batch is served");
}

/* A leader that answers a batch with the wrong number of answers. */
static void short_answer(void *arg, uint64_t peer, const Raftd__PeerRequest *req,
                         struct rd_transport_responder *r)
{
	Raftd__PeerResponse resp = RAFTD__PEER_RESPONSE__INIT;
	Raftd__ForwardBatchResponse fb = RAFTD__FORWARD_BATCH_RESPONSE__INIT;

	(void)arg, (void)peer, (void)req;
	resp.body_case = RAFTD__PEER_RESPONSE__BODY_FORWARD_BATCH;
	resp.forward_batch = &fb;
	rd_transport_respond(r, &resp);
}

/* An answer that does not match its batch is dropped and counted: every
 * item's outcome is unknown, so a retry-safe one goes again and one
 * without a session ends UNAVAILABLE, as after a lost connection. */
Test(forward_batch, a_malformed_answer_is_dropped_and_counted)
{
	uint64_t dl = rd_clock_now_ns() + 30000000000ull;
	struct rd_forward safe = {
	    .group = 1, .op = RD_OP_WRITE, .deadline_ns = dl, .retry_safe = true};
	struct rd_forward bare = {.group = 2, .op = RD_OP_WRITE, .deadline_ns = dl};
	int one = 1;

	e.n[2].on_request = short_answer;
	rd_forward_start(&s1.f, &safe);
	rd_forward_start(&s1.f, &bare);
	rd_forward_flush(&s1.f);
	cr_assert(trun(&e, dones_reach, &one, 20000));
	cr_expect_eq(s1.f.stats.batches_rejected, 1);
	cr_expect_eq(s1.done[0], &bare);
	cr_expect_eq(s1.code[0], RAFTD__ERROR_CODE__UNAVAILABLE);
	cr_expect_eq(safe.target, 0, "the retry-safe one waits to go again");
	cr_expect(safe.unknown);
}

/* CAS_FAILED answers carry the current value: when a batch's answers
 * would not fit one frame, values are left out until they do, and every
 * item still ends CAS_FAILED. */
Test(forward_batch, cas_values_are_left_out_of_an_answer_too_large)
{
	static uint8_t big[400u << 10];
	uint64_t dl = rd_clock_now_ns() + 30000000000ull;
	struct rd_forward a = {.group = 1, .op = RD_OP_WRITE, .deadline_ns = dl};
	struct rd_forward b = {.group = 2, .op = RD_OP_WRITE, .deadline_ns = dl};
	int two = 2;

	s2.hold = true;
	s2.f.max_batch_bytes = 1000; /* answer limit: this + half the headroom */
	rd_forward_start(&s1.f, &a);
	rd_forward_start(&s1.f, &b);
	rd_forward_flush(&s1.f);
	cr_assert(trun(&e, held_reach, &two, 20000));
	for (int i = 0; i < 2; i++) {
		struct rd_result r = {.code = RAFTD__ERROR_CODE__CAS_FAILED,
		                      .group = s2.held_group[i],
		                      .has_value = true,
		                      .found = true,
		                      .value = big,
		                      .value_len = sizeof big};
		rd_forward_answer(s2.held[i], 0, &r);
	}
	cr_assert(trun(&e, dones_reach, &two, 20000));
	int ia = done_at(&s1, &a), ib = done_at(&s1, &b);
	cr_assert(ia >= 0 && ib >= 0);
	cr_expect_eq(s1.code[ia], RAFTD__ERROR_CODE__CAS_FAILED);
	cr_expect_eq(s1.code[ib], RAFTD__ERROR_CODE__CAS_FAILED);
	cr_expect_not(s1.has_value[ia], "the first value is left out");
	cr_expect(s1.has_value[ib], "the rest fits");
	cr_expect_eq(s1.value_len[ib], sizeof big);
}
