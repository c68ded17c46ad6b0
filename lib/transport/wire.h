/*
 * Peer framing (proto/raftd.proto, "Wire protocol" in DESIGN.md): every
 * frame on a QUIC stream is a 4-byte big-endian length N followed by N bytes
 * of one protobuf `PeerFrame`.
 *
 * This file owns the byte-level part: encoding a frame into one malloc'd
 * buffer, reassembling frames from stream data that arrives in arbitrary
 * pieces, decoding and validating one payload. It knows nothing of QUIC, so
 * the fuzzer (tests/fuzz/transport_frame_fuzz.c) drives it directly.
 *
 * Decoding allocates at most RD_WIRE_DECODE_BUDGET(len) bytes.
 *
 * Failure modes: a length over the configured maximum (RD_ETOOBIG) leaves
 * the reader unusable, because the stream cannot be resynchronised; a
 * payload that does not decode or breaks a protocol rule is RD_EPROTO.
 */
#ifndef RD_TRANSPORT_WIRE_H
#define RD_TRANSPORT_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raftd.pb-c.h"

#define RD_WIRE_HEADER            4
#define RD_WIRE_DEFAULT_MAX_FRAME (64u << 20)
#define RD_WIRE_READER_START      (16u << 10) /* first payload buffer */
/* What protobuf-c may allocate to unpack a payload of `len` bytes: large
 * frames are dominated by entry data (about 1x); tiny entries and
 * heartbeats cost up to ~11x their wire size in structs, which the
 * constant covers for any batch under ~1 MiB. */
#define RD_WIRE_DECODE_BUDGET(len) ((size_t)(len)*6 + (16u << 20))

/* Encode `frame` into a new buffer holding header + payload. On success
 * *out is malloc'd and owned by the caller (free()). Returns 0, RD_ETOOBIG
 * when the payload exceeds `max`, RD_ENOMEM. */
int rd_wire_encode(const Raftd__PeerFrame *frame, size_t max, uint8_t **out,
                   size_t *outlen, char *msg);

/* Decode and validate one payload (without the header). On success *out is
 * owned by the caller, to be released with rd_wire_free(). Returns 0 or
 * RD_EPROTO with the reason in `msg`. */
int rd_wire_decode(const uint8_t *buf, size_t len, Raftd__PeerFrame **out, char *msg);

/* Check the rules protobuf cannot express: a frame holds exactly one kind,
 * Raft message types are known, required sub-messages are present. */
int rd_wire_validate(const Raftd__PeerFrame *frame, char *msg);

void rd_wire_free(Raftd__PeerFrame *frame);

/* Reassembles frames from a byte stream. */
struct rd_wire_reader {
	size_t max; /* largest payload accepted */
	uint8_t hdr[RD_WIRE_HEADER];
	size_t hdr_have; /* header bytes collected */
	uint8_t *buf;    /* payload being collected (malloc'd), NULL between frames */
	size_t cap;      /* bytes allocated at `buf` (grows with `have`) */
	size_t need;     /* payload length announced by the header */
	size_t have;     /* payload bytes collected */
	bool failed;     /* a fatal error was seen; further input is ignored */
};

/* Called once per complete payload; the bytes are valid only during the
 * call. A non-zero return stops rd_wire_reader_feed, which returns it. */
typedef int (*rd_wire_frame_cb)(void *arg, const uint8_t *payload, size_t len);

void rd_wire_reader_init(struct rd_wire_reader *r, size_t max);

/* Release the partial frame, if any. The reader may be fed again after
 * rd_wire_reader_init(). */
void rd_wire_reader_close(struct rd_wire_reader *r);

/* Consume `len` bytes, calling `cb` for each frame completed. Returns 0,
 * RD_ETOOBIG (announced length over `max`; the reader is then failed),
 * RD_ENOMEM, or the first non-zero value `cb` returned. */
int rd_wire_reader_feed(struct rd_wire_reader *r, const uint8_t *data, size_t len,
                        rd_wire_frame_cb cb, void *arg);

/* True when the reader holds a partial frame (a stream ending now was cut). */
bool rd_wire_reader_partial(const struct rd_wire_reader *r);

/* Bytes of the partial frame held (header included): what was fed but not
 * yet handed to the callback. Flow-control credit for these is withheld. */
size_t rd_wire_reader_held(const struct rd_wire_reader *r);

#endif
