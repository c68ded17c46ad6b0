/*
 * Frame codec: see wire.h. Happy path: a stream's bytes are fed in whatever
 * pieces QUIC delivers them; the header is collected first (it may itself be
 * split), then exactly `need` payload bytes into a buffer that grows as
 * they arrive (doubling, never past `need`), so that a header announcing a
 * large frame costs nothing until the bytes are actually sent; then the
 * callback sees the payload and the reader starts over.
 * Failure modes: an announced length over `max` fails the reader for good
 * (no allocation is made for it); allocation failure is RD_ENOMEM.
 *
 * Decoding goes through a counting protobuf-c allocator (util/pbbudget.h):
 * unpacking stops (RD_EPROTO) once the allocations pass
 * RD_WIRE_DECODE_BUDGET(len).
 */
#include "transport/wire.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/pbbudget.h"

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

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
	put_be32(buf, (uint32_t)n);
	raftd__peer_frame__pack(frame, buf + RD_WIRE_HEADER);
	*out = buf;
	*outlen = RD_WIRE_HEADER + n;
	return 0;
}

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
static int reserve(struct rd_wire_reader *r, size_t want)
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
			r->need = get_be32(r->hdr);
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
		if (reserve(r, r->have + take) != 0) {
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
