/* Stream credit is returned as RPC streams finish (RFC 9000 §4.6): a
 * connection carries many more calls than its initial stream limit
 * (initial_max_streams_bidi), here 2,500 calls with 250 in flight. */
#include <criterion/criterion.h>

#include "helpers.h"

struct many {
	unsigned done, ok;
};

static void on_reply(void *arg, int err, const Raftd__PeerResponse *resp, const char *m)
{
	struct many *r = arg;
	(void)m;
	r->done++;
	r->ok += err == 0 && resp->body_case == RAFTD__PEER_RESPONSE__BODY_PONG;
}

static bool all_done(struct tenv *e, void *arg)
{
	(void)e;
	return ((struct many *)arg)->done >= 250;
}

Test(stream_credit, calls_beyond_the_initial_stream_limit_complete)
{
	struct tenv e;
	struct tping p;
	char msg[RD_ERRMSG_SIZE];

	tenv_up(&e, false, 2);
	tping_init(&p);
	for (int round = 0; round < 10; round++) {
		struct many r = {0};
		for (int i = 0; i < 250; i++)
			cr_assert_eq(rd_transport_call(e.n[1].t, 2, &p.req, 20000,
			                               on_reply, &r, msg),
			             0, "%s", msg);
		cr_assert(trun(&e, all_done, &r, 30000), "round %d: %u of 250 answered",
		          round, r.done);
		cr_assert_eq(r.ok, 250, "round %d: %u of 250 succeeded", round, r.ok);
	}
	tenv_fini(&e);
}
