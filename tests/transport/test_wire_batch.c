/*
 * The incremental RaftBatch encoder (transport/wire.h): what
 * rd_wire_batch_add_msg and rd_wire_batch_seal write is one PeerFrame that
 * the generated decoder (raftd__peer_frame__unpack) reads back field for
 * field, and that rd_wire_msg_from_proto turns back into the core's
 * messages unchanged.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "raftd.pb-c.h"
#include "transport/wire.h"
#include "util/err.h"

static Raftd__PeerFrame *seal_and_unpack(struct rd_wire_batch *b, uint64_t from,
                                         uint64_t to)
{
	size_t len;
	const uint8_t *p = rd_wire_batch_seal(b, from, to, &len);
	Raftd__PeerFrame *f = raftd__peer_frame__unpack(NULL, len, p);
	cr_assert_not_null(f, "sealed batch decodes as a PeerFrame");
	cr_assert_eq(f->kind_case, RAFTD__PEER_FRAME__KIND_BATCH);
	cr_assert_eq(rd_wire_validate(f, NULL), 0);
	return f;
}

Test(wire_batch, messages_and_heartbeats_round_trip)
{
	struct rd_wire_batch b;
	struct rd_wire_scratch s = {0};
	uint8_t d1[] = "first", d2[300];
	struct rd_entry ents[2] = {
	    {.term = 4, .index = 10, .type = RD_ENTRY_NORMAL, .data = d1, .len = 5},
	    {.term = 4, .index = 11, .type = RD_ENTRY_NORMAL, .data = d2, .len = 300}};
	struct rd_message app = {.type = RD_MSG_APPEND,
	                         .group = 7,
	                         .from = 1,
	                         .to = 300,
	                         .term = 4,
	                         .log_term = 3,
	                         .index = 9,
	                         .commit = 8,
	                         .entries = ents,
	                         .n_entries = 2};
	struct rd_message rej = {.type = RD_MSG_APPEND_RESP,
	                         .group = 1u << 20,
	                         .from = 1,
	                         .to = 300,
	                         .term = 5,
	                         .reject = true,
	                         .reject_hint = 17,
	                         .conflict_term = 2,
	                         .context = 99};
	struct rd_message snap = {
	    .type = RD_MSG_SNAPSHOT, .group = 3, .from = 1, .to = 300};
	struct rd_message hb = {.type = RD_MSG_HEARTBEAT,
	                        .group = 2,
	                        .from = 1,
	                        .to = 300,
	                        .term = 6,
	                        .commit = 5,
	                        .context = 41};
	struct rd_message hbr = hb;
	hbr.type = RD_MSG_HEARTBEAT_RESP;
	hbr.group = 9;
	snap.snapshot.index = 1000;
	snap.snapshot.term = 3;
	snap.snapshot.conf.n_voters = 3;
	snap.snapshot.conf.voters[0] = 1;
	snap.snapshot.conf.voters[1] = 2;
	snap.snapshot.conf.voters[2] = 300;
	snap.snapshot.conf.n_learners = 1;
	snap.snapshot.conf.learners[0] = 4;
	memset(d2, 0xab, sizeof d2);

	rd_wire_batch_init(&b);
	cr_assert(rd_wire_batch_empty(&b));
	const struct rd_message *in[] = {&app, &hb, &rej, &snap, &hbr};
	for (size_t i = 0; i < 5; i++)
		cr_assert_eq(rd_wire_batch_add_msg(&b, &s, in[i]), 0);
	cr_assert_not(rd_wire_batch_empty(&b));
	cr_assert_eq(b.msgs, 5);

	Raftd__PeerFrame *f = seal_and_unpack(&b, 1, 300);
	const Raftd__RaftBatch *rb = f->batch;
	cr_expect_eq(rb->from, 1);
	cr_expect_eq(rb->to, 300);
	cr_assert_eq(rb->n_messages, 3, "heartbeats travel coalesced");
	cr_assert_eq(rb->n_heartbeats, 1);
	cr_assert_eq(rb->n_heartbeat_resps, 1);
	cr_expect_eq(rb->heartbeats[0]->group, 2);
	cr_expect_eq(rb->heartbeats[0]->term, 6);
	cr_expect_eq(rb->heartbeats[0]->commit, 5);
	cr_expect_eq(rb->heartbeats[0]->context, 41);
	cr_expect_eq(rb->heartbeat_resps[0]->group, 9);

	const struct rd_message *want[] = {&app, &rej, &snap};
	for (size_t i = 0; i < 3; i++) {
		struct rd_entry stack[1];
		struct rd_message m;
		const struct rd_message *w = want[i];
		cr_assert_eq(rd_wire_msg_from_proto(rb->messages[i], &m, stack, 1), 0);
		cr_expect_eq(m.type, w->type, "message %zu", i);
		cr_expect_eq(m.group, w->group);
		cr_expect_eq(m.from, w->from);
		cr_expect_eq(m.to, w->to);
		cr_expect_eq(m.term, w->term);
		cr_expect_eq(m.log_term, w->log_term);
		cr_expect_eq(m.index, w->index);
		cr_expect_eq(m.commit, w->commit);
		cr_expect_eq(m.reject, w->reject);
		cr_expect_eq(m.reject_hint, w->reject_hint);
		cr_expect_eq(m.conflict_term, w->conflict_term);
		cr_expect_eq(m.context, w->context);
		cr_assert_eq(m.n_entries, w->n_entries);
		for (uint32_t k = 0; k < m.n_entries; k++) {
			cr_expect_eq(m.entries[k].term, w->entries[k].term);
			cr_expect_eq(m.entries[k].index, w->entries[k].index);
			cr_expect_eq(m.entries[k].type, w->entries[k].type);
			cr_assert_eq(m.entries[k].len, w->entries[k].len);
			cr_expect_eq(memcmp(m.entries[k].data, w->entries[k].data,
			                    m.entries[k].len),
			             0);
		}
		if (m.n_entries > 1)
			cr_expect_neq(m.entries, stack, "more entries than the stack");
		if (w->type == RD_MSG_SNAPSHOT)
			cr_expect_eq(memcmp(&m.snapshot, &w->snapshot, sizeof m.snapshot),
			             0);
		if (m.entries != stack)
			free(m.entries);
	}
	struct rd_message m;
	rd_wire_heartbeat_from_proto(rb->heartbeat_resps[0], true, 1, 300, &m);
	cr_expect_eq(memcmp(&m, &hbr, sizeof m), 0, "heartbeat response unchanged");
	raftd__peer_frame__free_unpacked(f, NULL);

	/* After a reset the buffer is reused for the next iteration's batch. */
	rd_wire_batch_reset(&b);
	cr_assert(rd_wire_batch_empty(&b));
	cr_assert_eq(rd_wire_batch_add_heartbeat(&b, &hb), 0);
	f = seal_and_unpack(&b, 1u << 30, 2);
	cr_expect_eq(f->batch->from, 1u << 30);
	cr_expect_eq(f->batch->n_messages, 0);
	cr_expect_eq(f->batch->n_heartbeats, 1);
	raftd__peer_frame__free_unpacked(f, NULL);
	rd_wire_batch_free(&b);
	rd_wire_scratch_free(&s);
}

/* Errors cross to the wire in one place: every RD_E* code has an ErrorCode,
 * and the ones clients act on keep their meaning. */
Test(wire_errors, every_code_maps_to_a_wire_code)
{
	cr_expect_eq(rd_err_to_wire(0), RAFTD__ERROR_CODE__OK);
	for (int e = 1; e < RD_ERR_COUNT; e++) {
		int w = rd_err_to_wire(e);
		cr_expect(w > RAFTD__ERROR_CODE__OK && w <= RAFTD__ERROR_CODE__BUSY,
		          "%s maps to %d", rd_errname(e), w);
	}
	cr_expect_eq(rd_err_to_wire(RD_ENOTLEADER), RAFTD__ERROR_CODE__NOT_LEADER);
	cr_expect_eq(rd_err_to_wire(RD_ENOLEADER), RAFTD__ERROR_CODE__NO_LEADER);
	cr_expect_eq(rd_err_to_wire(RD_ECASFAILED), RAFTD__ERROR_CODE__CAS_FAILED);
	cr_expect_eq(rd_err_to_wire(RD_EINVAL), RAFTD__ERROR_CODE__INVALID);
	cr_expect_eq(rd_err_to_wire(RD_EBUSY), RAFTD__ERROR_CODE__BUSY);
	cr_expect_eq(rd_err_to_wire(RD_ETOOBIG), RAFTD__ERROR_CODE__TOO_LARGE);
	cr_expect_eq(rd_err_to_wire(RD_ETIMEDOUT), RAFTD__ERROR_CODE__TIMEOUT);
	cr_expect_eq(rd_err_to_wire(RD_ECLOSED), RAFTD__ERROR_CODE__UNAVAILABLE);
	cr_expect_eq(rd_err_to_wire(RD_ESHUTDOWN), RAFTD__ERROR_CODE__SHUTTING_DOWN);
	cr_expect_eq(rd_err_to_wire(RD_ENOTFOUND), RAFTD__ERROR_CODE__NOT_FOUND);
	cr_expect_eq(rd_err_to_wire(RD_ERR_COUNT), RAFTD__ERROR_CODE__INTERNAL);
	cr_expect_eq(rd_err_to_wire(-1), RAFTD__ERROR_CODE__INTERNAL);
}
