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

/* Every field but the entries and the snapshot. */
static bool same_header(const struct rd_message *a, const struct rd_message *b)
{
	return a->type == b->type && a->group == b->group && a->from == b->from &&
	       a->to == b->to && a->term == b->term && a->log_term == b->log_term &&
	       a->index == b->index && a->commit == b->commit && a->reject == b->reject &&
	       a->reject_hint == b->reject_hint && a->conflict_term == b->conflict_term &&
	       a->context == b->context;
}

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
	struct rd_message app = {
	    .type = RD_MSG_APPEND, .group = 7, .term = 4, .log_term = 3};
	struct rd_message rej = {
	    .type = RD_MSG_APPEND_RESP, .group = 1u << 20, .term = 5};
	struct rd_message snap = {.type = RD_MSG_SNAPSHOT, .group = 3, .term = 4};
	struct rd_message hb = {.type = RD_MSG_HEARTBEAT, .group = 2, .term = 6};
	struct rd_message hbr;
	const struct rd_message *in[] = {&app, &hb, &rej, &snap, &hbr};
	const struct rd_snapshot_meta meta = {
	    .index = 1000,
	    .term = 3,
	    .conf = {
	        .n_voters = 3, .voters = {1, 2, 300}, .n_learners = 1, .learners = {4}}};

	app.index = 9, app.commit = 8, app.entries = ents, app.n_entries = 2;
	rej.reject = true, rej.reject_hint = 17, rej.conflict_term = 2, rej.context = 99;
	snap.snapshot = meta;
	hb.commit = 5, hb.context = 41;
	hbr = hb;
	hbr.type = RD_MSG_HEARTBEAT_RESP;
	hbr.group = 9;
	for (size_t i = 0; i < 5; i++) {
		struct rd_message *w = (struct rd_message *)in[i];
		w->from = 1;
		w->to = 300;
	}
	memset(d2, 0xab, sizeof d2);

	rd_wire_batch_init(&b);
	cr_assert(rd_wire_batch_empty(&b));
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
		cr_expect(same_header(&m, w), "message %zu", i);
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
	cr_expect(same_header(&m, &hbr), "heartbeat response unchanged");
	cr_expect_eq(m.n_entries, 0);
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
		cr_expect(w != RAFTD__ERROR_CODE__OK &&
		              protobuf_c_enum_descriptor_get_value(
		                  &raftd__error_code__descriptor, w) != NULL,
		          "%s maps to %d, not an ErrorCode", rd_errname(e), w);
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
	cr_expect_eq(rd_err_to_wire(RD_EOLDSEQ), RAFTD__ERROR_CODE__SEQUENCE_TOO_OLD);
	cr_expect_eq(rd_err_to_wire(RD_ERR_COUNT), RAFTD__ERROR_CODE__INTERNAL);
	cr_expect_eq(rd_err_to_wire(-1), RAFTD__ERROR_CODE__INTERNAL);
}

/* The names raftctl, the metrics and the benchmarks print for ErrorCodes
 * are the .proto's; a code outside the enum has none. */
Test(wire_errors, codes_are_named_as_the_proto_spells_them)
{
	cr_expect_str_eq(rd_wire_code_name(RAFTD__ERROR_CODE__OK), "OK");
	cr_expect_str_eq(rd_wire_code_name(RAFTD__ERROR_CODE__NO_LEADER), "NO_LEADER");
	cr_expect_str_eq(rd_wire_code_name(RAFTD__ERROR_CODE__APP_ERROR), "APP_ERROR");
	cr_expect_null(rd_wire_code_name(-1));
	cr_expect_null(rd_wire_code_name(1 << 20));
}

/* A message without entries needs no conversion space: it encodes on a
 * scratch that has never grown. */
Test(wire_batch, a_message_without_entries_on_fresh_scratch)
{
	struct rd_wire_batch b;
	struct rd_wire_scratch s = {0};
	struct rd_message vote = {.type = RD_MSG_VOTE, .group = 1, .from = 1, .to = 2};

	vote.term = 3;
	rd_wire_batch_init(&b);
	cr_assert_eq(rd_wire_batch_add_msg(&b, &s, &vote), 0);
	Raftd__PeerFrame *f = seal_and_unpack(&b, 1, 2);
	cr_assert_eq(f->batch->n_messages, 1);
	cr_expect_eq(f->batch->messages[0]->type,
	             RAFTD__RAFT_MESSAGE_TYPE__RAFT_MSG_VOTE);
	cr_expect_eq(f->batch->messages[0]->term, 3);
	raftd__peer_frame__free_unpacked(f, NULL);
	rd_wire_batch_free(&b);
	rd_wire_scratch_free(&s);
}

/* RaftBatch.flags (the sender's disk is slow) travels in the frame head
 * when set, with the largest ids, and is absent (0) otherwise; the
 * messages after it are unchanged. */
Test(wire_batch, flags_travel_in_the_head)
{
	struct rd_wire_batch b;
	struct rd_wire_scratch s = {0};
	struct rd_message hb = {.type = RD_MSG_HEARTBEAT, .group = 9, .term = 2};
	size_t len;

	rd_wire_batch_init(&b);
	cr_assert_eq(rd_wire_batch_add_msg(&b, &s, &hb), 0);
	const uint8_t *p = rd_wire_batch_seal_flags(&b, UINT64_MAX, UINT64_MAX - 1,
	                                            RD_WIRE_BATCH_F_DISK_SLOW, &len);
	Raftd__PeerFrame *f = raftd__peer_frame__unpack(NULL, len, p);
	cr_assert_not_null(f);
	cr_assert_eq(f->batch->flags, RD_WIRE_BATCH_F_DISK_SLOW);
	cr_assert_eq(f->batch->from, UINT64_MAX);
	cr_assert_eq(f->batch->to, UINT64_MAX - 1);
	cr_assert_eq(f->batch->n_heartbeats, 1);
	cr_assert_eq(f->batch->heartbeats[0]->group, 9);
	raftd__peer_frame__free_unpacked(f, NULL);
	f = seal_and_unpack(&b, 1, 2);
	cr_assert_eq(f->batch->flags, 0);
	cr_assert_eq(f->batch->n_heartbeats, 1);
	raftd__peer_frame__free_unpacked(f, NULL);
	rd_wire_batch_free(&b);
	rd_wire_scratch_free(&s);
}

/* RaftBatch.incarnation (7) and .cluster (8), next to .flags (6): a peer
 * refuses a batch of an incarnation the member table does not register
 * (multiraft/membership.c), so both must reach it unchanged, with the
 * largest values, and a cluster id over the cap is cut, not overflowed. */
Test(wire_batch, incarnation_and_cluster_are_sealed)
{
	struct rd_wire_batch b;
	struct rd_wire_scratch s = {0};
	struct rd_message hb = {.type = RD_MSG_HEARTBEAT, .group = 2, .term = 6};
	char longid[200];
	struct rd_wire_ident id = {.incarnation = UINT64_MAX, .cluster = "raftd-0123"};
	size_t len;
	const uint8_t *p;
	Raftd__PeerFrame *f;

	rd_wire_batch_init(&b);
	cr_assert_eq(rd_wire_batch_add_msg(&b, &s, &hb), 0);
	p = rd_wire_batch_seal_ident(&b, UINT64_MAX, 2, 1, &id, &len);
	f = raftd__peer_frame__unpack(NULL, len, p);
	cr_assert_not_null(f);
	cr_assert_eq(f->batch->from, UINT64_MAX);
	cr_assert_eq(f->batch->flags, 1);
	cr_assert_eq(f->batch->incarnation, UINT64_MAX);
	cr_assert_eq(f->batch->cluster.len, 10);
	cr_assert_eq(memcmp(f->batch->cluster.data, "raftd-0123", 10), 0);
	cr_assert_eq(f->batch->n_heartbeats, 1);
	raftd__peer_frame__free_unpacked(f, NULL);

	memset(longid, 'x', sizeof longid - 1);
	longid[sizeof longid - 1] = 0;
	id.cluster = longid;
	p = rd_wire_batch_seal_ident(&b, 1, 2, 0, &id, &len);
	f = raftd__peer_frame__unpack(NULL, len, p);
	cr_assert_not_null(f);
	cr_assert_eq(f->batch->cluster.len, RD_WIRE_BATCH_CLUSTER_MAX);
	cr_assert_eq(f->batch->n_heartbeats, 1);
	raftd__peer_frame__free_unpacked(f, NULL);

	/* Without an identity nothing is written (older senders' shape). */
	p = rd_wire_batch_seal(&b, 1, 2, &len);
	f = raftd__peer_frame__unpack(NULL, len, p);
	cr_assert_not_null(f);
	cr_assert_eq(f->batch->incarnation, 0);
	cr_assert_eq(f->batch->cluster.len, 0);
	raftd__peer_frame__free_unpacked(f, NULL);
	rd_wire_batch_free(&b);
	rd_wire_scratch_free(&s);
}

/* A node heartbeat (multiraft/liveness.c) is an empty batch carrying the
 * boot id (RaftBatch.boot, 9), sealed even from a batch that never held a
 * message, next to the largest identity; and a quiesce heartbeat
 * (RaftMessage.quiesce, 15) is not coalesced, since CoalescedHeartbeat has
 * no room for the flag that stops the follower's election timer. */
Test(wire_batch, node_heartbeat_and_quiesce_flag_round_trip)
{
	struct rd_wire_batch b;
	struct rd_wire_scratch s = {0};
	char longid[200];
	struct rd_wire_ident id = {.incarnation = UINT64_MAX, .boot = UINT64_MAX};
	struct rd_message hb = {.type = RD_MSG_HEARTBEAT,
	                        .group = 7,
	                        .from = 1,
	                        .to = 2,
	                        .term = 3,
	                        .commit = 9,
	                        .quiesce = true},
	                  out;
	size_t len;
	const uint8_t *p;
	Raftd__PeerFrame *f;

	memset(longid, 'x', sizeof longid - 1);
	longid[sizeof longid - 1] = 0;
	id.cluster = longid;
	rd_wire_batch_init(&b);
	p = rd_wire_batch_seal_ident(&b, UINT64_MAX, UINT64_MAX, UINT32_MAX, &id, &len);
	cr_assert_not_null(p);
	f = raftd__peer_frame__unpack(NULL, len, p);
	cr_assert_not_null(f);
	cr_assert_eq(f->batch->boot, UINT64_MAX);
	cr_assert_eq(f->batch->incarnation, UINT64_MAX);
	cr_assert_eq(f->batch->cluster.len, RD_WIRE_BATCH_CLUSTER_MAX);
	cr_assert_eq(f->batch->n_messages + f->batch->n_heartbeats, 0);
	raftd__peer_frame__free_unpacked(f, NULL);

	cr_assert_eq(rd_wire_batch_add_msg(&b, &s, &hb), 0);
	p = rd_wire_batch_seal(&b, 1, 2, &len);
	f = raftd__peer_frame__unpack(NULL, len, p);
	cr_assert_not_null(f);
	cr_assert_eq(f->batch->boot, 0);
	cr_assert_eq(f->batch->n_heartbeats, 0, "a quiesce heartbeat was coalesced");
	cr_assert_eq(f->batch->n_messages, 1);
	cr_assert_eq(rd_wire_msg_from_proto(f->batch->messages[0], &out, NULL, 0), 0);
	cr_assert(same_header(&hb, &out));
	cr_assert(out.quiesce, "the quiesce flag was lost");
	raftd__peer_frame__free_unpacked(f, NULL);
	rd_wire_batch_free(&b);
	rd_wire_scratch_free(&s);
}

/* A batch filled up to a frame limit: the message that would take it past
 * the limit is refused with RD_EAGAIN and leaves the batch as it was (so
 * the caller sends what it holds and starts a new one), the sealed frame,
 * with the largest head, stays within the limit and decodes with every
 * message added; a message alone over the limit is RD_ETOOBIG, also
 * without a trace in the batch. */
Test(wire_batch, a_batch_stays_within_the_frame_limit)
{
	struct rd_wire_batch b;
	struct rd_wire_scratch s = {0};
	static uint8_t data[3000];
	struct rd_entry ent = {.term = 1,
	                       .index = 1,
	                       .type = RD_ENTRY_NORMAL,
	                       .data = data,
	                       .len = sizeof data};
	struct rd_message app = {.type = RD_MSG_APPEND,
	                         .from = 1,
	                         .to = 2,
	                         .term = 1,
	                         .entries = &ent,
	                         .n_entries = 1};
	struct rd_message hb = {.type = RD_MSG_HEARTBEAT, .from = 1, .to = 2, .term = 1};
	struct rd_wire_ident id = {.incarnation = ~0ull,
	                           .boot = ~0ull,
	                           .cluster = "0123456789abcdef0123456789abcdef"};
	const size_t cap = 8192;
	uint64_t added = 0;
	size_t len;
	int rv;

	rd_wire_batch_init(&b);
	for (;;) {
		app.group = added + 1;
		rv = rd_wire_batch_add_msg_within(&b, &s, &app, 0, cap);
		if (rv != 0)
			break;
		added++;
		hb.group = added;
		cr_assert_eq(rd_wire_batch_add_msg_within(&b, &s, &hb, 0, cap), 0);
	}
	cr_assert_eq(rv, RD_EAGAIN);
	cr_assert_eq(added, 2, "two appends of 3000 bytes fit in 8192, not three");
	const uint8_t *p = rd_wire_batch_seal_ident(&b, ~0ull, ~0ull, ~0u, &id, &len);
	cr_assert_leq(len, cap);
	Raftd__PeerFrame *f = raftd__peer_frame__unpack(NULL, len, p);
	cr_assert_not_null(f);
	cr_expect_eq(f->batch->n_messages, 2);
	cr_expect_eq(f->batch->n_heartbeats, 2);
	cr_expect_eq(f->batch->messages[1]->group, 2);
	raftd__peer_frame__free_unpacked(f, NULL);

	rd_wire_batch_reset(&b);
	cr_expect_eq(rd_wire_batch_add_msg_within(&b, &s, &app, 0, cap), 0);
	rd_wire_batch_reset(&b);
	cr_expect_eq(rd_wire_batch_add_msg_within(&b, &s, &app, 0, 2048), RD_ETOOBIG);
	cr_expect(rd_wire_batch_empty(&b));
	cr_expect_eq(b.msgs, 0);
	rd_wire_batch_free(&b);
	rd_wire_scratch_free(&s);
}
