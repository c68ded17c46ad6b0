/*
 * proto/raftd.proto round trips: every message type, each oneof
 * variant in turn, filled with non-default values, survives encode ->
 * decode -> encode byte for byte; truncated and garbage frames are refused
 * by the frame decoder.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raftd.pb-c.h"
#include "transport/wire.h"
#include "util/err.h"

/* Every message of proto/raftd.proto: keep in step with the file (the
 * generated header lists them as raftd__*__descriptor). */
static const ProtobufCMessageDescriptor *all[] = {
    &raftd__entry__descriptor,
    &raftd__conf_change__descriptor,
    &raftd__snapshot_meta__descriptor,
    &raftd__raft_message__descriptor,
    &raftd__coalesced_heartbeat__descriptor,
    &raftd__raft_batch__descriptor,
    &raftd__snapshot_chunk__descriptor,
    &raftd__snapshot_ack__descriptor,
    &raftd__metadata_propose_request__descriptor,
    &raftd__metadata_propose_response__descriptor,
    &raftd__data_propose_request__descriptor,
    &raftd__data_propose_response__descriptor,
    &raftd__read_index_request__descriptor,
    &raftd__read_index_response__descriptor,
    &raftd__kv_read_request__descriptor,
    &raftd__kv_read_response__descriptor,
    &raftd__forward_batch_request__descriptor,
    &raftd__forward_batch_response__descriptor,
    &raftd__backup_fetch_request__descriptor,
    &raftd__backup_fetch_response__descriptor,
    &raftd__member_probe__descriptor,
    &raftd__member_probe_response__descriptor,
    &raftd__members_change_request__descriptor,
    &raftd__members_change_response__descriptor,
    &raftd__placement_transfer__descriptor,
    &raftd__placement_request__descriptor,
    &raftd__placement_group_report__descriptor,
    &raftd__placement_response__descriptor,
    &raftd__members_promote_request__descriptor,
    &raftd__join_request__descriptor,
    &raftd__join_response__descriptor,
    &raftd__member__descriptor,
    &raftd__topology__descriptor,
    &raftd__topology_update__descriptor,
    &raftd__topology_ack__descriptor,
    &raftd__ping__descriptor,
    &raftd__pong__descriptor,
    &raftd__vshard_envelope__descriptor,
    &raftd__vshard_reply__descriptor,
    &raftd__peer_request__descriptor,
    &raftd__peer_response__descriptor,
    &raftd__peer_frame__descriptor,
    &raftd__put_request__descriptor,
    &raftd__get_request__descriptor,
    &raftd__delete_request__descriptor,
    &raftd__cas_request__descriptor,
    &raftd__propose_request__descriptor,
    &raftd__meta_put_request__descriptor,
    &raftd__meta_get_request__descriptor,
    &raftd__status_request__descriptor,
    &raftd__groups_request__descriptor,
    &raftd__members_request__descriptor,
    &raftd__members_add_request__descriptor,
    &raftd__members_remove_request__descriptor,
    &raftd__transfer_leader_request__descriptor,
    &raftd__ready_request__descriptor,
    &raftd__shutdown_request__descriptor,
    &raftd__backup_request__descriptor,
    &raftd__backup_part__descriptor,
    &raftd__client_request__descriptor,
    &raftd__value_result__descriptor,
    &raftd__index_result__descriptor,
    &raftd__loop_stats__descriptor,
    &raftd__status_result__descriptor,
    &raftd__group_row__descriptor,
    &raftd__groups_result__descriptor,
    &raftd__member_row__descriptor,
    &raftd__members_result__descriptor,
    &raftd__kv_change__descriptor,
    &raftd__subscribe_request__descriptor,
    &raftd__credit_request__descriptor,
    &raftd__stream_entry__descriptor,
    &raftd__stream_end__descriptor,
    &raftd__send_request__descriptor,
    &raftd__handle_request__descriptor,
    &raftd__delivery_reply__descriptor,
    &raftd__envelope_result__descriptor,
    &raftd__delivery__descriptor,
    &raftd__client_response__descriptor,
};

/* A bump arena: the filled messages are freed all at once. */
static uint8_t arena[1 << 20];
static size_t used;

static void *alloc(size_t n)
{
	void *p = arena + used;
	used += (n + 15) & ~(size_t)15;
	cr_assert_leq(used, sizeof arena);
	memset(p, 0, n);
	return p;
}

static void fill(ProtobufCMessage *m, const ProtobufCMessageDescriptor *d, int depth,
                 unsigned v);

static void set_value(void *slot, const ProtobufCFieldDescriptor *f, int depth,
                      unsigned v)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor *e = f->descriptor;
		*(int *)slot = e->values[e->n_values - 1].value;
		break;
	}
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		*(uint32_t *)slot = 1000 + f->id;
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		*(uint64_t *)slot = 0x100000000ull + f->id;
		break;
	case PROTOBUF_C_TYPE_BOOL:
		*(protobuf_c_boolean *)slot = 1;
		break;
	case PROTOBUF_C_TYPE_STRING:
		*(const char **)slot = "raftd";
		break;
	case PROTOBUF_C_TYPE_BYTES: {
		ProtobufCBinaryData *b = slot;
		b->len = 3 + f->id % 5;
		b->data = alloc(b->len);
		memset(b->data, 0xa0 + (int)f->id, b->len);
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessageDescriptor *sd = f->descriptor;
		ProtobufCMessage *sub = alloc(sd->sizeof_message);
		sd->message_init(sub);
		if (depth < 4)
			fill(sub, sd, depth + 1, v);
		*(ProtobufCMessage **)slot = sub;
		break;
	}
	default:
		cr_assert_fail("field type %d not handled", (int)f->type);
	}
}

static size_t type_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return 8;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	default:
		return 4;
	}
}

/* Oneof members sharing a case slot: member number v (mod their count). */
static bool oneof_pick(const ProtobufCMessageDescriptor *d, unsigned i, unsigned v)
{
	unsigned off = d->fields[i].quantifier_offset, n = 0, my = 0;

	for (unsigned j = 0; j < d->n_fields; j++) {
		if ((d->fields[j].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    d->fields[j].quantifier_offset == off) {
			if (j == i)
				my = n;
			n++;
		}
	}
	return my == v % n;
}

static void fill(ProtobufCMessage *m, const ProtobufCMessageDescriptor *d, int depth,
                 unsigned v)
{
	uint8_t *base = (uint8_t *)m;

	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		void *slot = base + f->offset;

		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			if (!oneof_pick(d, i, v))
				continue;
			*(uint32_t *)(base + f->quantifier_offset) = f->id;
			set_value(slot, f, depth, v);
		} else if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t sz = type_size(f);
			uint8_t *arr = alloc(2 * sz);
			set_value(arr, f, depth, v);
			set_value(arr + sz, f, depth, v);
			*(size_t *)(base + f->quantifier_offset) = 2;
			*(void **)slot = arr;
		} else {
			set_value(slot, f, depth, v);
		}
	}
}

static unsigned variants(const ProtobufCMessageDescriptor *d)
{
	unsigned most = 1;

	for (unsigned i = 0; i < d->n_fields; i++) {
		unsigned n = 0;
		if (!(d->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
			continue;
		for (unsigned j = 0; j < d->n_fields; j++)
			if ((d->fields[j].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
			    d->fields[j].quantifier_offset ==
			        d->fields[i].quantifier_offset)
				n++;
		if (n > most)
			most = n;
	}
	return most;
}

Test(proto, every_message_round_trips)
{
	unsigned checked = 0;

	for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) {
		const ProtobufCMessageDescriptor *d = all[k];
		for (unsigned v = 0; v < variants(d); v++) {
			ProtobufCMessage *m, *back;
			uint8_t *a, *b;
			size_t n, n2;

			used = 0;
			m = alloc(d->sizeof_message);
			d->message_init(m);
			fill(m, d, 0, v);
			n = protobuf_c_message_get_packed_size(m);
			a = malloc(n + 1);
			protobuf_c_message_pack(m, a);
			back = protobuf_c_message_unpack(d, NULL, n, a);
			cr_assert_not_null(back, "%s variant %u does not decode", d->name,
			                   v);
			n2 = protobuf_c_message_get_packed_size(back);
			cr_assert_eq(n2, n, "%s variant %u: size %zu -> %zu", d->name, v,
			             n, n2);
			b = malloc(n2 + 1);
			protobuf_c_message_pack(back, b);
			cr_assert_eq(memcmp(a, b, n), 0,
			             "%s variant %u differs after a round trip", d->name,
			             v);
			protobuf_c_message_free_unpacked(back, NULL);
			free(a);
			free(b);
			checked++;
		}
	}
	cr_expect_geq(checked, sizeof all / sizeof all[0]);
}

/* A RaftMessage keeps every field the core sends (spot check by name). */
Test(proto, raft_message_fields)
{
	Raftd__RaftMessage m = RAFTD__RAFT_MESSAGE__INIT, *back;
	Raftd__Entry e = RAFTD__ENTRY__INIT, *ents[1] = {&e};
	Raftd__SnapshotMeta meta = RAFTD__SNAPSHOT_META__INIT;
	uint64_t voters[3] = {1, 2, 3};
	uint8_t buf[256];
	size_t n;

	m.type = RAFTD__RAFT_MESSAGE_TYPE__RAFT_MSG_APPEND_RESP;
	m.group = 17, m.from = 2, m.to = 3, m.term = 9, m.log_term = 8, m.index = 100;
	m.commit = 99, m.reject = 1, m.reject_hint = 50, m.conflict_term = 7,
	m.context = 0xabc;
	e.term = 9, e.index = 101, e.type = RAFTD__ENTRY_TYPE__ENTRY_CONF_CHANGE;
	e.data.data = (uint8_t *)"xyz", e.data.len = 3;
	m.n_entries = 1, m.entries = ents;
	meta.index = 90, meta.term = 6, meta.n_voters = 3, meta.voters = voters;
	m.snapshot = &meta;
	n = raftd__raft_message__pack(&m, buf);
	back = raftd__raft_message__unpack(NULL, n, buf);
	cr_assert_not_null(back);
	cr_expect_eq(back->type, m.type);
	cr_expect_eq(back->group, 17);
	cr_expect_eq(back->reject_hint, 50);
	cr_expect_eq(back->conflict_term, 7);
	cr_expect_eq(back->context, 0xabc);
	cr_expect_eq(back->entries[0]->index, 101);
	cr_expect_eq(back->entries[0]->data.len, 3);
	cr_expect_eq(back->snapshot->n_voters, 3);
	raftd__raft_message__free_unpacked(back, NULL);
}

static Raftd__PeerFrame *sample_frame(Raftd__PeerFrame *f, Raftd__RaftBatch *b,
                                      Raftd__RaftMessage *m, Raftd__RaftMessage **mp)
{
	raftd__peer_frame__init(f);
	raftd__raft_batch__init(b);
	raftd__raft_message__init(m);
	m->type = RAFTD__RAFT_MESSAGE_TYPE__RAFT_MSG_HEARTBEAT;
	m->group = 3, m->from = 1, m->to = 2, m->term = 5, m->commit = 40;
	*mp = m;
	b->from = 1, b->to = 2, b->n_messages = 1, b->messages = mp;
	f->kind_case = RAFTD__PEER_FRAME__KIND_BATCH;
	f->batch = b;
	return f;
}

/* sample_frame as encoded by rd_wire_encode into a buffer the caller frees. */
static uint8_t *sample_encoded(size_t *n)
{
	Raftd__PeerFrame f;
	Raftd__RaftBatch b;
	Raftd__RaftMessage m, *mp;
	uint8_t *buf;

	cr_assert_eq(rd_wire_encode(sample_frame(&f, &b, &m, &mp), 1024, &buf, n, NULL),
	             0);
	return buf;
}

static int count_cb(void *arg, const uint8_t *p, size_t n)
{
	Raftd__PeerFrame *f;

	cr_assert_eq(rd_wire_decode(p, n, &f, NULL), 0);
	rd_wire_free(f);
	(*(int *)arg)++;
	return 0;
}

/* Frames survive being split anywhere: byte by byte gives the same frames. */
Test(proto, frames_reassemble_from_any_split)
{
	struct rd_wire_reader r;
	size_t n;
	uint8_t *buf = sample_encoded(&n);
	int frames = 0;

	rd_wire_reader_init(&r, 1024);
	for (int rep = 0; rep < 3; rep++)
		for (size_t i = 0; i < n; i++)
			cr_assert_eq(
			    rd_wire_reader_feed(&r, buf + i, 1, count_cb, &frames), 0);
	cr_expect_eq(frames, 3);
	cr_expect_not(rd_wire_reader_partial(&r));
	rd_wire_reader_close(&r);
	free(buf);
}

/* A payload cut anywhere inside its batch does not decode. */
Test(proto, truncated_frames_refused)
{
	Raftd__PeerFrame *out;
	struct rd_wire_reader r;
	size_t n;
	uint8_t *buf = sample_encoded(&n);
	int frames = 0;

	/* Payload = tag, length, batch: any cut after the length is short. */
	for (size_t k = RD_WIRE_HEADER + 2; k < n; k++)
		cr_expect_eq(
		    rd_wire_decode(buf + RD_WIRE_HEADER, k - RD_WIRE_HEADER, &out, NULL),
		    RD_EPROTO, "cut at %zu", k);
	/* A stream ending inside a frame leaves it partial, delivering nothing. */
	rd_wire_reader_init(&r, 1024);
	cr_assert_eq(rd_wire_reader_feed(&r, buf, n - 1, count_cb, &frames), 0);
	cr_expect_eq(frames, 0);
	cr_expect(rd_wire_reader_partial(&r));
	rd_wire_reader_close(&r);
	free(buf);
}

Test(proto, garbage_refused)
{
	uint8_t junk[32];
	Raftd__PeerFrame *out;
	struct rd_wire_reader r;
	const uint8_t big[] = {0x7f, 0xff, 0xff, 0xff};
	int frames = 0;

	memset(junk, 0xff, sizeof junk);
	cr_expect_eq(rd_wire_decode(junk, sizeof junk, &out, NULL), RD_EPROTO);
	cr_expect_eq(rd_wire_decode(junk, 0, &out, NULL), RD_EPROTO, "no kind set");
	/* A known field of the wrong wire type. */
	cr_expect_eq(rd_wire_decode((const uint8_t *)"\x08\x01", 2, &out, NULL),
	             RD_EPROTO);
	/* Announced length over the limit: refused before any allocation. */
	rd_wire_reader_init(&r, 1024);
	cr_expect_eq(rd_wire_reader_feed(&r, big, sizeof big, count_cb, &frames),
	             RD_ETOOBIG);
	cr_expect_eq(rd_wire_reader_feed(&r, junk, 4, count_cb, &frames), RD_EPROTO,
	             "a failed reader stays failed");
	rd_wire_reader_close(&r);
}

/* Validation: an unknown Raft message type is refused. */
Test(proto, unknown_raft_type_refused)
{
	Raftd__PeerFrame f, *out;
	Raftd__RaftBatch b;
	Raftd__RaftMessage m, *mp;
	uint8_t *buf;
	size_t n;

	sample_frame(&f, &b, &m, &mp);
	m.type = 99;
	cr_assert_eq(rd_wire_encode(&f, 1024, &buf, &n, NULL), 0);
	cr_expect_eq(rd_wire_decode(buf + RD_WIRE_HEADER, n - RD_WIRE_HEADER, &out, NULL),
	             RD_EPROTO);
	free(buf);
}

/* The list above covers every message the generated code declares (a new
 * message in proto/raftd.proto must be added to `all`). */
Test(proto, list_covers_every_message)
{
	char path[4096], line[512];
	const char *b = getenv("RD_BUILD");
	unsigned n = 0;
	FILE *f;

	snprintf(path, sizeof path, "%s/gen/raftd.pb-c.h", b ? b : "build");
	f = fopen(path, "r");
	cr_assert_not_null(f, "%s", path);
	while (fgets(line, sizeof line, f))
		if (strstr(line, "extern const ProtobufCMessageDescriptor raftd__"))
			n++;
	fclose(f);
	cr_expect_eq(n, sizeof all / sizeof all[0], "%u messages declared, %zu listed", n,
	             sizeof all / sizeof all[0]);
}
