/*
 * A connection's ngtcp2 memory is all returned when the connection goes
 * (lib/transport/mem.c), also after packet loss made ngtcp2 split and trim
 * retransmitted STREAM frames: ngtcp2 0.12.1 puts such a frame chain, made
 * by malloc, back into its object pool once its vector count shrinks, and
 * the pool forgets it at ngtcp2_conn_del. Under `make test SANITIZE=1`
 * LeakSanitizer fails this suite when any block is lost.
 */
#include <criterion/criterion.h>
#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>
#include <stdio.h>
#include <unistd.h>

#include "helpers.h"
#include "transport/internal.h"
#include "util/clock.h"

/* The receiver's loop runs only now and then while the sender streams, so
 * its socket's receive buffer overflows and datagrams are dropped: loss
 * recovery (RFC 9002 §6) retransmits stream data that is partly
 * acknowledged. Every message still arrives once, in order; then the
 * connection and both ends go. */
Test(conn_mem, lossy_transfer_then_close_frees_everything, .timeout = 120)
{
	struct tenv e;
	struct rd_transport_config cfg;
	const unsigned batches = 5000, per = 1;
	uint64_t want[2] = {2, (uint64_t)batches * per};

	tenv_init(&e, false);
	struct event_base *slow = event_base_new();
	cr_assert_not_null(slow);
	tnode_config(&e, 1, true, &cfg);
	cfg.max_queue_bytes = 64u << 20;
	tnode_start(&e, 1, &cfg);
	tnode_config(&e, 2, true, &cfg);
	tnode_start_on(&e, 2, &cfg, slow);
	tenv_mesh(&e);
	rd_transport_test_drop(e.n[1].t, 3);
	rd_transport_test_drop(e.n[2].t, 2);
	e.n[2].next_index[1] = 1;
	for (unsigned i = 0; i < batches; i++)
		cr_assert_eq(tsend(&e, 1, 2, 1 + (uint64_t)per * i, per, 16), 0);
	/* The bound only stops a broken test. */
	uint64_t end = rd_clock_now_ns() + 60ull * 1000000000ull, slow_at = 0;
	while (e.n[2].msgs < want[1] && rd_clock_now_ns() < end) {
		event_base_loop(e.base, EVLOOP_NONBLOCK);
		if (rd_clock_now_ns() >= slow_at) {
			event_base_loop(slow, EVLOOP_NONBLOCK);
			slow_at = rd_clock_now_ns() + 20ull * 1000000ull;
		}
		usleep(100);
	}
	cr_expect_eq(e.n[2].msgs, want[1]);
	cr_expect_not(e.n[2].out_of_order);
	struct rd_transport_peer_stats st = tstats(&e, 1, 2);
	/* The connection goes with its ngtcp2 state; what ngtcp2 failed to
	 * free is counted and freed (mem.c). */
	cr_assert_eq(rd_transport_peer_remove(e.n[1].t, 2), 0);
	struct rd_transport_stats all = tstats_all(&e, 1);
	cr_expect_gt(st.loss_events, 0, "no loss: the test did not test loss");
	cr_log_info("loss events %llu, blocks reclaimed %llu",
	            (unsigned long long)st.loss_events,
	            (unsigned long long)all.ngtcp2_blocks_reclaimed);
	tnode_stop(&e, 2);
	event_base_free(slow);
	tenv_fini(&e);
}

/* The allocator itself: blocks still listed when the connection goes (what
 * ngtcp2 lost) are freed and counted; freed and reallocated ones are not. */
Test(conn_mem, release_frees_what_was_not_freed)
{
	struct rd_t_mem m;
	rd_t_mem_init(&m);
	const ngtcp2_mem *mem = &m.mem;
	void *a = mem->malloc(100, mem->user_data);
	void *b = mem->calloc(4, 64, mem->user_data);
	void *c = mem->malloc(10, mem->user_data);
	cr_assert(a != NULL && b != NULL && c != NULL);
	cr_assert_eq(((uintptr_t)b) % _Alignof(max_align_t), 0);
	cr_assert_eq(((unsigned char *)b)[255], 0);
	c = mem->realloc(c, 5000, mem->user_data);
	cr_assert_not_null(c);
	mem->free(a, mem->user_data);
	mem->free(NULL, mem->user_data);
	cr_assert_eq(m.live, 2);
	cr_assert_eq(rd_t_mem_release(&m), 2);
	cr_assert_eq(m.live, 0);
	cr_assert_eq(rd_t_mem_release(&m), 0);
}
