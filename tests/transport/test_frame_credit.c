/*
 * Flow-control credit and frames near the size limit (lib/transport/conn.c,
 * params_for). Credit goes back to the sender only as whole frames are
 * consumed, and ngtcp2 advertises new credit (MAX_STREAM_DATA, MAX_DATA)
 * only once more than half a window is waiting to be advertised. With a
 * window of one largest frame, small frames consumed but not yet
 * advertised plus one frame near the limit no longer fit: the receiver
 * waits for the rest of that frame, the sender for credit, and the stream
 * (every later frame to that peer, heartbeats too) stalls for good while
 * the connection stays up. Each test sends such a sequence and requires
 * every message to arrive, in order.
 */
#include <criterion/criterion.h>
#include <event2/event.h>

#include <unistd.h>

#include "helpers.h"
#include "util/clock.h"
#include "transport/wire.h"

#define FRAME_MAX (64u << 10)

/* Small frames of about 10 KiB in all: under half a window, so no credit
 * is advertised for them, then one frame of nearly FRAME_MAX bytes, then
 * small frames again (heartbeats behind it). */
static void send_sequence(struct tenv *e, uint64_t *next)
{
	for (int i = 0; i < 10; i++, (*next)++)
		cr_assert_eq(tsend(e, 1, 2, *next, 1, 1000), 0);
	cr_assert_eq(tsend(e, 1, 2, (*next)++, 1, FRAME_MAX - 512), 0);
	for (int i = 0; i < 5; i++, (*next)++)
		cr_assert_eq(tsend(e, 1, 2, *next, 1, 0), 0);
}

static void start_pair(struct tenv *e, uint64_t max_frame)
{
	struct rd_transport_config cfg;

	tenv_init(e, false);
	for (uint64_t id = 1; id <= 2; id++) {
		tnode_config(e, id, true, &cfg);
		cfg.max_frame_bytes = max_frame;
		tnode_start(e, id, &cfg);
	}
	tenv_mesh(e);
	e->n[2].next_index[1] = 1;
}

/* Run until node 2 got every message up to next - 1. */
static void expect_all(struct tenv *e, uint64_t next, int round)
{
	uint64_t want[2] = {2, next - 1};

	/* The bound only stops a broken test. */
	cr_assert(trun(e, tgot, want, 30000), "round %d: %llu of %llu messages arrived",
	          round, (unsigned long long)e->n[2].msgs, (unsigned long long)want[1]);
}

/* The Raft stream's window: the connection's is far larger here (frames
 * of every kind are capped at FRAME_MAX), so only the stream's credit can
 * run out. */
Test(frame_credit, large_frame_after_unadvertised_stream_credit_arrives)
{
	struct tenv e;
	uint64_t next = 1;

	start_pair(&e, FRAME_MAX);
	for (int round = 0; round < 3; round++) {
		send_sequence(&e, &next);
		expect_all(&e, next, round);
	}
	cr_expect_not(e.n[2].out_of_order);
	tenv_fini(&e);
}

/* The connection's window with the default max_partial_bytes: Raft frames
 * of 8 MiB next to the usual snapshot and request caps (3 and 2 MiB), as
 * the daemon's defaults are (64 MiB next to the same). Frames consumed
 * and not yet advertised (just under half the window: 74 of 100 KiB) and
 * a frame near the cap behind them exceeded a window of one frame of each
 * kind and a second request. */
Test(frame_credit, large_frame_after_unadvertised_connection_credit_arrives,
     .timeout = 120)
{
	struct tenv e;
	const size_t frame = 8u << 20;
	uint64_t next = 1;

	start_pair(&e, frame);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 74; i++, next++)
			cr_assert_eq(tsend(&e, 1, 2, next, 1, 100u << 10), 0);
		cr_assert_eq(tsend(&e, 1, 2, next++, 1, frame - 4096), 0);
		for (int i = 0; i < 5; i++, next++)
			cr_assert_eq(tsend(&e, 1, 2, next, 1, 0), 0);
		expect_all(&e, next, round);
	}
	cr_expect_not(e.n[2].out_of_order);
	tenv_fini(&e);
}

static bool replied_or_failed(struct tenv *e, void *arg)
{
	return e->n[1].replies + e->n[1].reply_errors >= *(uint64_t *)arg;
}

static bool nothing_held(struct tenv *e, void *arg)
{
	(void)arg;
	return tstats_all(e, 2).partial_bytes == 0;
}

/* A request stream reset inside a frame (the caller's deadline passed
 * while the request was on its way) gives the bytes held of that frame
 * back to the connection's window: ngtcp2 returns credit only for bytes
 * it did not pass on. Without that, 20 such requests of 30 KB, one after
 * the other, used up the 512 KiB window, and nothing more arrived. */
Test(frame_credit, reset_request_streams_give_their_credit_back, .timeout = 120)
{
	struct tenv e;
	const size_t announced = 60000, sent = 30000;
	uint8_t *raw = calloc(1, RD_WIRE_HEADER + sent);
	uint64_t next = 1;

	cr_assert_not_null(raw);
	raw[1] = (uint8_t)(announced >> 16);
	raw[2] = (uint8_t)(announced >> 8);
	raw[3] = (uint8_t)announced;
	start_pair(&e, FRAME_MAX);
	for (uint64_t i = 1; i <= 20; i++) {
		cr_assert_eq(rd_transport_test_call_raw(e.n[1].t, 2, raw,
		                                        RD_WIRE_HEADER + sent, 100,
		                                        treply_count, &e.n[1]),
		             0);
		cr_assert(trun(&e, replied_or_failed, &i, 20000));
		cr_assert(trun(&e, nothing_held, NULL, 20000),
		          "call %llu: %llu bytes held", (unsigned long long)i,
		          (unsigned long long)tstats_all(&e, 2).partial_bytes);
	}
	cr_expect_eq(e.n[1].reply_errors, 20, "every call passed its deadline");
	cr_assert_eq(tsend(&e, 1, 2, next++, 1, 100), 0);
	expect_all(&e, next, 0);
	cr_expect(tstats(&e, 1, 2).connected);
	free(raw);
	tenv_fini(&e);
}

/* A peer that reads only every 20 ms (its loop busy): between its reads
 * the sender fills the Raft stream's window and waits for credit, which
 * is counted (raft_peer_credit_waits_total); every message arrives, in
 * order, and nothing stays queued. */
Test(frame_credit, a_slow_reader_shows_as_credit_waits, .timeout = 120)
{
	struct tenv e;
	struct rd_transport_config cfg;
	struct event_base *slow = event_base_new();
	const unsigned frames = 128;

	cr_assert_not_null(slow);
	tenv_init(&e, false);
	tnode_config(&e, 1, true, &cfg);
	cfg.max_frame_bytes = FRAME_MAX;
	tnode_start(&e, 1, &cfg);
	tnode_config(&e, 2, true, &cfg);
	cfg.max_frame_bytes = FRAME_MAX;
	tnode_start_on(&e, 2, &cfg, slow);
	tenv_mesh(&e);
	e.n[2].next_index[1] = 1;
	for (unsigned i = 0; i < frames; i++)
		cr_assert_eq(tsend(&e, 1, 2, 1 + i, 1, FRAME_MAX - 512), 0);
	/* The bound only stops a broken test. */
	uint64_t end = rd_clock_now_ns() + 60ull * 1000000000ull, slow_at = 0;
	while (e.n[2].msgs < frames && rd_clock_now_ns() < end) {
		event_base_loop(e.base, EVLOOP_NONBLOCK);
		if (rd_clock_now_ns() >= slow_at) {
			event_base_loop(slow, EVLOOP_NONBLOCK);
			slow_at = rd_clock_now_ns() + 20ull * 1000000ull;
		}
		usleep(100);
	}
	cr_expect_eq(e.n[2].msgs, frames);
	cr_expect_not(e.n[2].out_of_order);
	cr_expect_gt(tstats(&e, 1, 2).credit_waits, 0, "no wait for credit counted");
	cr_expect_eq(tstats(&e, 1, 2).queued_bytes, 0);
	tnode_stop(&e, 2);
	event_base_free(slow);
	tenv_fini(&e);
}
