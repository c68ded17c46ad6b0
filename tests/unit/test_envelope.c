/*
 * The envelope router (cluster/envelope.h) against a fake runtime, without
 * a transport: delivered locally when this node leads the group; refused
 * (not delivered) over the payload cap, over the node's in-flight cap, with
 * no handler, when shutting down; an envelope waiting for a leader is
 * delivered once one is known, or ends NO_LEADER at its deadline.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "cluster/envelope.h"
#include "cluster/topology.h"
#include "raftd.pb-c.h"

struct fake {
	uint64_t leader; /* what leader() answers */
	uint64_t now;
	int refuse; /* deliver() returns this when non-zero */
	int delivers;
	rd_envelope_done_fn held_done; /* the delivery in progress */
	void *held_arg;
	char seen[64];
	struct rd_envelope_result res;
	char res_payload[64];
	int dones;
};

static uint64_t f_leader(void *ud, uint64_t group)
{
	(void)group;
	return ((struct fake *)ud)->leader;
}

static int f_deliver(void *ud, const struct rd_envelope_msg *m, rd_envelope_done_fn done,
                     void *arg, const char **why)
{
	struct fake *k = ud;

	if (k->refuse) {
		*why = "refused";
		return k->refuse;
	}
	k->delivers++;
	snprintf(k->seen, sizeof k->seen, "%.*s", (int)m->len, (const char *)m->payload);
	k->held_done = done;
	k->held_arg = arg;
	return RAFTD__ERROR_CODE__OK;
}

static uint64_t f_now(void *ud)
{
	return ((struct fake *)ud)->now;
}

static const struct rd_envelope_ops ops = {f_leader, f_deliver, f_now};

static void on_done(void *arg, const struct rd_envelope_result *res)
{
	struct fake *k = arg;

	k->res = *res;
	snprintf(
	    k->res_payload, sizeof k->res_payload, "%.*s", (int)res->len,
	    (const char *)(res->payload != NULL ? res->payload : (const uint8_t *)""));
	k->res.payload = NULL;
	k->res.message = NULL;
	k->dones++;
}

static struct rd_envelopes e;
static struct fake k;
static struct rd_topology topo;

static void setup(void)
{
	memset(&k, 0, sizeof k);
	memset(&topo, 0, sizeof topo);
	k.now = 1000000000ull;
	rd_envelope_init(&e, &ops, &k, 1, &topo, 16, 2);
}

TestSuite(envelope, .init = setup);

static void send_env(const char *payload)
{
	struct rd_envelope_msg m = {.vshard = 5,
	                            .group = 2,
	                            .source = 1,
	                            .payload = (const uint8_t *)payload,
	                            .len = strlen(payload),
	                            .deadline_ns = 5000000000ull};
	rd_envelope_send(&e, &m, on_done, &k);
}

/* Answer the delivery the fake holds. */
static void answer(int code, const char *payload)
{
	struct rd_envelope_result r = {.code = code,
	                               .node = 1,
	                               .payload = (const uint8_t *)payload,
	                               .len = strlen(payload)};
	cr_assert_not_null(k.held_done);
	k.held_done(k.held_arg, &r);
	k.held_done = NULL;
}

Test(envelope, delivered_here_when_this_node_leads_the_group)
{
	k.leader = 1;
	send_env("ping");
	cr_assert_eq(k.delivers, 1);
	cr_assert_str_eq(k.seen, "ping");
	cr_assert_eq(k.dones, 0, "answered only when the handler answers");
	cr_assert_eq(e.inflight, 1);
	answer(RAFTD__ERROR_CODE__OK, "pong");
	cr_assert_eq(k.dones, 1);
	cr_assert_eq(k.res.code, RAFTD__ERROR_CODE__OK);
	cr_assert_eq(k.res.group, 2);
	cr_assert_eq(k.res.node, 1);
	cr_assert_str_eq(k.res_payload, "pong");
	cr_assert_eq(e.inflight, 0);
	cr_assert_eq(e.stats.sent, 1);
}

Test(envelope, refusals_are_not_deliveries)
{
	k.leader = 1;
	send_env("0123456789abcdefX"); /* 17 bytes, cap 16 */
	cr_assert_eq(k.res.code, RAFTD__ERROR_CODE__TOO_LARGE);
	cr_assert_eq(k.delivers, 0);
	k.refuse = RAFTD__ERROR_CODE__NO_HANDLER;
	send_env("a");
	cr_assert_eq(k.res.code, RAFTD__ERROR_CODE__NO_HANDLER);
	cr_assert_eq(e.stats.failed[RAFTD__ERROR_CODE__NO_HANDLER], 1);
	cr_assert_eq(e.inflight, 0);
	/* Two in flight (the cap): the third is BUSY. */
	k.refuse = 0;
	send_env("a");
	rd_envelope_done_fn first_done = k.held_done;
	void *first_arg = k.held_arg;
	k.leader = 0;
	send_env("b"); /* waits for a leader: counts too */
	k.leader = 1;
	send_env("c");
	cr_assert_eq(k.res.code, RAFTD__ERROR_CODE__BUSY);
	cr_assert_eq(k.dones, 3);
	rd_envelope_shutdown(&e);
	cr_assert_eq(k.dones, 4, "the waiting one ends at shutdown");
	cr_assert_eq(k.res.code, RAFTD__ERROR_CODE__SHUTTING_DOWN);
	send_env("d");
	cr_assert_eq(k.res.code, RAFTD__ERROR_CODE__SHUTTING_DOWN);
	cr_assert_eq(k.delivers, 1);
	/* The delivery still out ends when its handler answers. */
	k.held_done = first_done;
	k.held_arg = first_arg;
	answer(RAFTD__ERROR_CODE__OK, "late");
	cr_assert_eq(k.res.code, RAFTD__ERROR_CODE__OK);
	cr_assert_eq(e.inflight, 0);
}

Test(envelope, waits_for_a_leader_then_is_delivered_or_ends_no_leader)
{
	send_env("w1");
	cr_assert_eq(k.dones, 0);
	rd_envelope_tick(&e, k.now);
	cr_assert_eq(k.delivers, 0, "still no leader");
	k.leader = 1;
	rd_envelope_tick(&e, k.now);
	cr_assert_eq(k.delivers, 1);
	cr_assert_str_eq(k.seen, "w1", "the payload was copied while waiting");
	answer(RAFTD__ERROR_CODE__APP_ERROR, "");
	cr_assert_eq(k.res.code, RAFTD__ERROR_CODE__APP_ERROR);

	k.leader = 0;
	send_env("w2");
	rd_envelope_tick(&e, 5000000000ull);
	cr_assert_eq(k.dones, 2);
	cr_assert_eq(k.res.code, RAFTD__ERROR_CODE__NO_LEADER);
	cr_assert_eq(k.delivers, 1, "never delivered");
	cr_assert_eq(e.inflight, 0);
}
