/*
 * Frame codec and batch encoder: see wire.h. Reading: Happy path: a stream's bytes are
 * fed in whatever pieces QUIC delivers them; the header is collected first (it may itself
 * be split), then exactly `need` payload bytes into a buffer that grows as they arrive
 * (doubling, never past `need`), so that a header announcing a large frame costs nothing
 * until the bytes are actually sent; then the callback sees the payload and the reader
 * starts over. Failure modes: an announced length over `max` fails the reader for good
 * (no allocation is made for it); allocation failure is RD_ENOMEM.
 *
 * Decoding goes through a counting protobuf-c allocator (util/pbbudget.h):
 * unpacking stops (RD_EPROTO) once the allocations pass
 * RD_WIRE_DECODE_BUDGET(len).
 */
#include "transport/wire.h"

#include <stdlib.h>
#include <string.h>

#include "util/bytes.h"
#include "util/err.h"
#include "util/pbbudget.h"

int rd_wire_encode(const Raftd__PeerFrame *frame, size_t max, uint8_t **out,
                   size_t *outlen, char *msg)
{
	size_t n = raftd__peer_frame__get_packed_size(frame);
	uint8_t *buf;

	if (n > max || n > UINT32_MAX)
		return rd_errorf(msg, RD_ETOOBIG,
		                 "frame of %zu bytes exceeds the limit of %zu", n, max);
	buf = malloc(RD_WIRE_HEADER + n);
	if (buf == NULL)
		return rd_errorf(msg, RD_ENOMEM, "frame of %zu bytes", n);
	rd_be32_put(buf, (uint32_t)n);
	raftd__peer_frame__pack(frame, buf + RD_WIRE_HEADER);
	*out = buf;
	*outlen = RD_WIRE_HEADER + n;
	return 0;
}

/* ---- RaftBatch ------------------------------------------------------------- */

/* `buf` grown to hold `need` (> *cap) items of `size` bytes (capacity
 * *cap items, doubling from `first`), or NULL when out of memory (`buf`
 * still valid). */
static void *grow(void *buf, size_t *cap, size_t need, size_t size, size_t first)
{
	size_t c = *cap ? *cap : first;
	void *nb;

	while (c < need)
		c *= 2;
	if ((nb = realloc(buf, c * size)) != NULL)
		*cap = c;
	return nb;
}

static int reserve(struct rd_wire_batch *b, size_t need)
{
	if (need <= b->cap)
		return 0;
	uint8_t *nb = grow(b->buf, &b->cap, need, 1, 4096);
	if (nb == NULL)
		return RD_ENOMEM;
	b->buf = nb;
	return 0;
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* A key of a field numbered below 16: one byte. */
static uint8_t key(unsigned field, unsigned type)
{
	return (uint8_t)(field << 3 | type);
}

void rd_wire_batch_init(struct rd_wire_batch *b)
{
	memset(b, 0, sizeof *b);
	b->len = RD_WIRE_BATCH_HEAD;
}

bool rd_wire_batch_empty(const struct rd_wire_batch *b)
{
	return b->len <= RD_WIRE_BATCH_HEAD;
}

void rd_wire_batch_reset(struct rd_wire_batch *b)
{
	b->len = RD_WIRE_BATCH_HEAD;
	b->msgs = 0;
}

void rd_wire_batch_free(struct rd_wire_batch *b)
{
	free(b->buf);
	rd_wire_batch_init(b);
}

void rd_wire_scratch_free(struct rd_wire_scratch *s)
{
	free(s->ents);
	free(s->entp);
	memset(s, 0, sizeof *s);
}

/* Append one length-delimited field: key, length (at most 10 bytes), body
 * packed in place by `pack`. */
#define APPEND_FIELD(b, field, size, pack_call)                                          \
	do {                                                                             \
		if (reserve((b), (b)->len + (size) + 11) != 0)                           \
			return RD_ENOMEM;                                                \
		(b)->buf[(b)->len++] = key((field), RD_WIRE_TYPE_LEN);                   \
		(b)->len += put_varint((b)->buf + (b)->len, (size));                     \
		(b)->len += (pack_call);                                                 \
		(b)->msgs++;                                                             \
	} while (0)

int rd_wire_batch_add_heartbeat(struct rd_wire_batch *b, const struct rd_message *m)
{
	Raftd__CoalescedHeartbeat hb = RAFTD__COALESCED_HEARTBEAT__INIT;
	unsigned field = m->type == RD_MSG_HEARTBEAT ? RD_WIRE_BATCH_HEARTBEATS
	                                             : RD_WIRE_BATCH_HEARTBEAT_RESPS;
	size_t size;

	hb.group = m->group;
	hb.term = m->term;
	hb.commit = m->commit;
	hb.context = m->context;
	size = raftd__coalesced_heartbeat__get_packed_size(&hb);
	APPEND_FIELD(b, field, size,
	             raftd__coalesced_heartbeat__pack(&hb, b->buf + b->len));
	return 0;
}

static int scratch_reserve(struct rd_wire_scratch *s, size_t n)
{
	if (n <= s->ents_cap && n <= s->entp_cap)
		return 0;
	Raftd__Entry *e = grow(s->ents, &s->ents_cap, n, sizeof *e, 64);
	if (e == NULL)
		return RD_ENOMEM;
	s->ents = e;
	Raftd__Entry **ep = grow(s->entp, &s->entp_cap, n, sizeof *ep, 64);
	if (ep == NULL)
		return RD_ENOMEM;
	s->entp = ep;
	return 0;
}

int rd_wire_batch_add_msg(struct rd_wire_batch *b, struct rd_wire_scratch *s,
                          const struct rd_message *m)
{
	return rd_wire_batch_add_msg_to(b, s, m, 0);
}

int rd_wire_batch_add_msg_to(struct rd_wire_batch *b, struct rd_wire_scratch *s,
                             const struct rd_message *m, uint64_t to_incarnation)
{
	Raftd__RaftMessage rm = RAFTD__RAFT_MESSAGE__INIT;
	Raftd__SnapshotMeta sm;
	size_t size;

	if ((m->type == RD_MSG_HEARTBEAT || m->type == RD_MSG_HEARTBEAT_RESP) &&
	    !m->reject && !m->quiesce && m->n_entries == 0 && m->index == 0 &&
	    m->log_term == 0 && to_incarnation == 0)
		return rd_wire_batch_add_heartbeat(b, m);
	rm.to_incarnation = to_incarnation;
	rm.type = (Raftd__RaftMessageType)m->type;
	rm.group = m->group;
	rm.from = m->from;
	rm.to = m->to;
	rm.term = m->term;
	rm.log_term = m->log_term;
	rm.index = m->index;
	rm.commit = m->commit;
	rm.reject = m->reject;
	rm.reject_hint = m->reject_hint;
	rm.conflict_term = m->conflict_term;
	rm.context = m->context;
	rm.quiesce = m->quiesce;
	if (scratch_reserve(s, m->n_entries) != 0)
		return RD_ENOMEM;
	for (uint32_t i = 0; i < m->n_entries; i++) {
		Raftd__Entry *e = &s->ents[i];
		raftd__entry__init(e);
		e->term = m->entries[i].term;
		e->index = m->entries[i].index;
		e->type = (Raftd__EntryType)m->entries[i].type;
		e->data.data = m->entries[i].data;
		e->data.len = m->entries[i].len;
		s->entp[i] = e;
	}
	rm.n_entries = m->n_entries;
	rm.entries = s->entp;
	if (m->type == RD_MSG_SNAPSHOT) {
		rd_wire_meta_to_proto(&sm, &m->snapshot);
		rm.snapshot = &sm;
	}
	size = raftd__raft_message__get_packed_size(&rm);
	APPEND_FIELD(b, RD_WIRE_BATCH_MESSAGES, size,
	             raftd__raft_message__pack(&rm, b->buf + b->len));
	return 0;
}

int rd_wire_batch_add_msg_within(struct rd_wire_batch *b, struct rd_wire_scratch *s,
                                 const struct rd_message *m, uint64_t to_incarnation,
                                 size_t cap)
{
	size_t len = b->len;
	uint64_t msgs = b->msgs;
	int rv = rd_wire_batch_add_msg_to(b, s, m, to_incarnation);

	if (rv != 0) {
		b->len = len;
		b->msgs = msgs;
		return rv;
	}
	/* A sealed payload takes at most b->len bytes: the head written into
	 * the reserved room is never longer than the room. */
	if (b->len <= cap)
		return 0;
	b->len = len;
	b->msgs = msgs;
	return rd_wire_batch_empty(b) ? RD_ETOOBIG : RD_EAGAIN;
}

const uint8_t *rd_wire_batch_seal(struct rd_wire_batch *b, uint64_t from, uint64_t to,
                                  size_t *len)
{
	return rd_wire_batch_seal_flags(b, from, to, 0, len);
}

const uint8_t *rd_wire_batch_seal_flags(struct rd_wire_batch *b, uint64_t from,
                                        uint64_t to, uint32_t flags, size_t *len)
{
	return rd_wire_batch_seal_ident(b, from, to, flags, NULL, len);
}

const uint8_t *rd_wire_batch_seal_ident(struct rd_wire_batch *b, uint64_t from,
                                        uint64_t to, uint32_t flags,
                                        const struct rd_wire_ident *id, size_t *len)
{
	uint8_t head[RD_WIRE_BATCH_HEAD], ft[RD_WIRE_BATCH_HEAD - 11];
	size_t hl = 0, fl = 0, body;

	if (b->buf == NULL) {
		/* Nothing was ever added: room for the head alone. */
		if (reserve(b, RD_WIRE_BATCH_HEAD) != 0) {
			*len = 0;
			return NULL;
		}
		b->len = RD_WIRE_BATCH_HEAD;
	}

	/* PeerFrame{ batch: RaftBatch{ from, to, [flags,] [incarnation,]
	 * [cluster,] <added> } } */
	ft[fl++] = key(RD_WIRE_BATCH_FROM, RD_WIRE_TYPE_VARINT);
	fl += put_varint(ft + fl, from);
	ft[fl++] = key(RD_WIRE_BATCH_TO, RD_WIRE_TYPE_VARINT);
	fl += put_varint(ft + fl, to);
	if (flags != 0) {
		ft[fl++] = key(RD_WIRE_BATCH_FLAGS, RD_WIRE_TYPE_VARINT);
		fl += put_varint(ft + fl, flags);
	}
	if (id != NULL && id->incarnation != 0) {
		ft[fl++] = key(RD_WIRE_BATCH_INCARNATION, RD_WIRE_TYPE_VARINT);
		fl += put_varint(ft + fl, id->incarnation);
	}
	if (id != NULL && id->cluster != NULL && id->cluster[0] != 0) {
		size_t cl = strnlen(id->cluster, RD_WIRE_BATCH_CLUSTER_MAX);
		ft[fl++] = key(RD_WIRE_BATCH_CLUSTER, RD_WIRE_TYPE_LEN);
		fl += put_varint(ft + fl, cl);
		memcpy(ft + fl, id->cluster, cl);
		fl += cl;
	}
	if (id != NULL && id->boot != 0) {
		ft[fl++] = key(RD_WIRE_BATCH_BOOT, RD_WIRE_TYPE_VARINT);
		fl += put_varint(ft + fl, id->boot);
	}
	body = fl + b->len - RD_WIRE_BATCH_HEAD;
	head[hl++] = key(RD_WIRE_FRAME_BATCH, RD_WIRE_TYPE_LEN);
	hl += put_varint(head + hl, body);
	memcpy(head + hl, ft, fl);
	hl += fl;
	memcpy(b->buf + RD_WIRE_BATCH_HEAD - hl, head, hl);
	*len = b->len - RD_WIRE_BATCH_HEAD + hl;
	return b->buf + RD_WIRE_BATCH_HEAD - hl;
}

/* ---- error codes -------------------------------------------------------------- */

static const int wire_codes[RD_ERR_COUNT] = {[RD_OK] = RAFTD__ERROR_CODE__OK,
#define X(name, wire, desc) [RD_##name] = RAFTD__ERROR_CODE__##wire,
                                             RD_ERR_MAP(X)
#undef X
};

int rd_err_to_wire(int err)
{
	if (err < 0 || err >= RD_ERR_COUNT)
		return RAFTD__ERROR_CODE__INTERNAL;
	return wire_codes[err];
}

enum rd_outcome rd_wire_outcome(int code)
{
	switch (code) {
#define RD__OUTCOME_CASE(c, o)                                                           \
	case RAFTD__ERROR_CODE__##c:                                                     \
		return RD_OUTCOME_##o;
		RD_WIRE_OUTCOME_MAP(RD__OUTCOME_CASE)
#undef RD__OUTCOME_CASE
	default:
		return RD_OUTCOME_UNKNOWN;
	}
}

const char *rd_wire_outcome_name(enum rd_outcome o)
{
	switch (o) {
	case RD_OUTCOME_OK:
		return "ok";
	case RD_OUTCOME_NOT_APPLIED:
		return "not applied";
	default:
		return "outcome unknown";
	}
}

const char *rd_wire_code_name(int code)
{
	const ProtobufCEnumValue *v =
	    protobuf_c_enum_descriptor_get_value(&raftd__error_code__descriptor, code);
	return v != NULL ? v->name : NULL;
}

/* ---- conversions ------------------------------------------------------------ */

/* Copy at most RD_RAFT_MAX_MEMBERS of the `n` ids at `src`; the count. */
static uint32_t copy_ids(uint64_t *dst, const uint64_t *src, size_t n)
{
	if (n > RD_RAFT_MAX_MEMBERS)
		n = RD_RAFT_MAX_MEMBERS;
	if (n > 0)
		memcpy(dst, src, n * sizeof *dst);
	return (uint32_t)n;
}

void rd_wire_meta_from_proto(struct rd_snapshot_meta *out, const Raftd__SnapshotMeta *sm)
{
	memset(out, 0, sizeof *out);
	if (sm == NULL)
		return;
	out->index = sm->index;
	out->term = sm->term;
	out->conf.n_voters = copy_ids(out->conf.voters, sm->voters, sm->n_voters);
	out->conf.n_learners = copy_ids(out->conf.learners, sm->learners, sm->n_learners);
}

void rd_wire_meta_to_proto(Raftd__SnapshotMeta *sm, const struct rd_snapshot_meta *meta)
{
	raftd__snapshot_meta__init(sm);
	sm->index = meta->index;
	sm->term = meta->term;
	sm->n_voters = meta->conf.n_voters;
	sm->voters = (uint64_t *)meta->conf.voters;
	sm->n_learners = meta->conf.n_learners;
	sm->learners = (uint64_t *)meta->conf.learners;
}

int rd_wire_msg_from_proto(const Raftd__RaftMessage *rm, struct rd_message *m,
                           struct rd_entry *stack, size_t n_stack)
{
	struct rd_entry *ents = stack;

	memset(m, 0, sizeof *m);
	m->type = (uint8_t)rm->type;
	m->group = rm->group;
	m->from = rm->from;
	m->to = rm->to;
	m->term = rm->term;
	m->log_term = rm->log_term;
	m->index = rm->index;
	m->commit = rm->commit;
	m->reject = rm->reject;
	m->reject_hint = rm->reject_hint;
	m->conflict_term = rm->conflict_term;
	m->context = rm->context;
	m->quiesce = rm->quiesce;
	if (rm->type == RAFTD__RAFT_MESSAGE_TYPE__RAFT_MSG_SNAPSHOT)
		rd_wire_meta_from_proto(&m->snapshot, rm->snapshot);
	m->n_entries = (uint32_t)rm->n_entries;
	if (rm->n_entries == 0)
		return 0;
	if (rm->n_entries > n_stack) {
		ents = malloc(rm->n_entries * sizeof *ents);
		if (ents == NULL)
			return RD_ENOMEM;
	}
	for (size_t k = 0; k < rm->n_entries; k++) {
		ents[k].term = rm->entries[k]->term;
		ents[k].index = rm->entries[k]->index;
		ents[k].type = (uint8_t)rm->entries[k]->type;
		ents[k].len = (uint32_t)rm->entries[k]->data.len;
		ents[k].data = rm->entries[k]->data.data;
	}
	m->entries = ents;
	return 0;
}

void rd_wire_heartbeat_from_proto(const Raftd__CoalescedHeartbeat *hb, bool resp,
                                  uint64_t from, uint64_t to, struct rd_message *m)
{
	memset(m, 0, sizeof *m);
	m->type = resp ? RD_MSG_HEARTBEAT_RESP : RD_MSG_HEARTBEAT;
	m->group = hb->group;
	m->from = from;
	m->to = to;
	m->term = hb->term;
	m->commit = hb->commit;
	m->context = hb->context;
}

/* ---- decoding ---------------------------------------------------------------- */

static int validate_raft_message(const Raftd__RaftMessage *m, char *msg)
{
	if (m == NULL)
		return rd_errorf(msg, RD_EPROTO, "empty Raft message");
	if (m->type <= RAFTD__RAFT_MESSAGE_TYPE__RAFT_MSG_UNSPECIFIED ||
	    m->type > RAFTD__RAFT_MESSAGE_TYPE__RAFT_MSG_READ_INDEX_RESP)
		return rd_errorf(msg, RD_EPROTO, "unknown Raft message type %d",
		                 (int)m->type);
	for (size_t i = 0; i < m->n_entries; i++) {
		const Raftd__Entry *e = m->entries[i];
		if (e == NULL || e->type < RAFTD__ENTRY_TYPE__ENTRY_NORMAL ||
		    e->type > RAFTD__ENTRY_TYPE__ENTRY_CONF_CHANGE)
			return rd_errorf(msg, RD_EPROTO,
			                 "group %llu: entry %zu has unknown type",
			                 (unsigned long long)m->group, i);
	}
	if (m->type == RAFTD__RAFT_MESSAGE_TYPE__RAFT_MSG_SNAPSHOT && m->snapshot == NULL)
		return rd_errorf(msg, RD_EPROTO,
		                 "group %llu: snapshot message without metadata",
		                 (unsigned long long)m->group);
	return 0;
}

int rd_wire_validate(const Raftd__PeerFrame *f, char *msg)
{
	int rv;

	switch (f->kind_case) {
	case RAFTD__PEER_FRAME__KIND_BATCH:
		for (size_t i = 0; i < f->batch->n_messages; i++)
			if ((rv = validate_raft_message(f->batch->messages[i], msg)) != 0)
				return rv;
		for (size_t i = 0; i < f->batch->n_heartbeats; i++)
			if (f->batch->heartbeats[i] == NULL)
				return rd_errorf(msg, RD_EPROTO, "empty heartbeat");
		for (size_t i = 0; i < f->batch->n_heartbeat_resps; i++)
			if (f->batch->heartbeat_resps[i] == NULL)
				return rd_errorf(msg, RD_EPROTO,
				                 "empty heartbeat response");
		return 0;
	case RAFTD__PEER_FRAME__KIND_SNAPSHOT_CHUNK:
		if (f->snapshot_chunk->meta == NULL)
			return rd_errorf(msg, RD_EPROTO,
			                 "snapshot chunk without metadata");
		if (f->snapshot_chunk->message != NULL)
			return validate_raft_message(f->snapshot_chunk->message, msg);
		return 0;
	case RAFTD__PEER_FRAME__KIND_SNAPSHOT_ACK:
		return 0;
	case RAFTD__PEER_FRAME__KIND_REQUEST:
		if (f->request->body_case == RAFTD__PEER_REQUEST__BODY__NOT_SET)
			return rd_errorf(msg, RD_EPROTO, "request without a body");
		return 0;
	case RAFTD__PEER_FRAME__KIND_RESPONSE:
		if (f->response->body_case == RAFTD__PEER_RESPONSE__BODY__NOT_SET &&
		    f->response->error == RAFTD__ERROR_CODE__OK)
			return rd_errorf(msg, RD_EPROTO,
			                 "successful response without a body");
		return 0;
	default:
		return rd_errorf(msg, RD_EPROTO, "frame of unknown kind %d",
		                 (int)f->kind_case);
	}
}

int rd_wire_decode(const uint8_t *buf, size_t len, Raftd__PeerFrame **out, char *msg)
{
	struct rd_pb_budget b;
	Raftd__PeerFrame *f;
	int rv;

	rd_pb_budget_init(&b, RD_WIRE_DECODE_BUDGET(len));
	f = raftd__peer_frame__unpack(&b.a, len, buf);
	if (f == NULL && b.spent)
		return rd_errorf(msg, RD_EPROTO,
		                 "frame of %zu bytes needs more than %zu bytes to decode",
		                 len, (size_t)RD_WIRE_DECODE_BUDGET(len));
	if (f == NULL)
		return rd_errorf(msg, RD_EPROTO,
		                 "frame of %zu bytes does not decode as PeerFrame", len);
	if ((rv = rd_wire_validate(f, msg)) != 0) {
		raftd__peer_frame__free_unpacked(f, NULL);
		return rv;
	}
	*out = f;
	return 0;
}

void rd_wire_free(Raftd__PeerFrame *frame)
{
	if (frame != NULL)
		raftd__peer_frame__free_unpacked(frame, NULL);
}

void rd_wire_reader_init(struct rd_wire_reader *r, size_t max)
{
	memset(r, 0, sizeof *r);
	r->max = max;
}

void rd_wire_reader_close(struct rd_wire_reader *r)
{
	free(r->buf);
	r->buf = NULL;
	r->hdr_have = r->need = r->have = r->cap = 0;
}

bool rd_wire_reader_partial(const struct rd_wire_reader *r)
{
	return r->hdr_have > 0;
}

size_t rd_wire_reader_held(const struct rd_wire_reader *r)
{
	return r->hdr_have + r->have;
}

/* Room for `want` payload bytes, growing by doubling from a small start. */
static int reader_reserve(struct rd_wire_reader *r, size_t want)
{
	size_t cap = r->cap ? r->cap : RD_WIRE_READER_START;
	uint8_t *nb;

	if (want <= r->cap)
		return 0;
	while (cap < want)
		cap *= 2;
	if (cap > r->need)
		cap = r->need;
	nb = realloc(r->buf, cap ? cap : 1);
	if (nb == NULL)
		return RD_ENOMEM;
	r->buf = nb;
	r->cap = cap;
	return 0;
}

int rd_wire_reader_feed(struct rd_wire_reader *r, const uint8_t *data, size_t len,
                        rd_wire_frame_cb cb, void *arg)
{
	int rv;

	if (r->failed)
		return RD_EPROTO;
	for (;;) {
		size_t take;

		if (r->hdr_have < RD_WIRE_HEADER) {
			if (len == 0)
				break;
			take = RD_WIRE_HEADER - r->hdr_have;
			if (take > len)
				take = len;
			memcpy(r->hdr + r->hdr_have, data, take);
			r->hdr_have += take;
			data += take;
			len -= take;
			if (r->hdr_have < RD_WIRE_HEADER)
				break;
			r->need = rd_be32_get(r->hdr);
			if (r->need > r->max) {
				/* Checked before allocating: a hostile length costs
				 * nothing. */
				r->failed = true;
				return RD_ETOOBIG;
			}
			r->have = 0;
			r->cap = 0;
		}
		take = r->need - r->have;
		if (take > len)
			take = len;
		if (reader_reserve(r, r->have + take) != 0) {
			r->failed = true;
			return RD_ENOMEM;
		}
		if (take > 0)
			memcpy(r->buf + r->have, data, take);
		r->have += take;
		data += take;
		len -= take;
		if (r->have < r->need)
			break;
		rv = cb(arg, r->buf, r->need);
		free(r->buf);
		r->buf = NULL;
		r->hdr_have = r->have = r->cap = 0;
		if (rv != 0)
			return rv;
	}
	return 0;
}
