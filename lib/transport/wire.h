/*
 * Peer framing (proto/raftd.proto): every
 * frame on a QUIC stream is a 4-byte big-endian length N followed by N bytes
 * of one protobuf `PeerFrame`.
 *
 * This file owns the wire format: encoding a frame into one malloc'd
 * buffer, building a RaftBatch message by message, reassembling frames from
 * stream data that arrives in arbitrary pieces, decoding and validating one
 * payload, and converting between the Raft core's types and the generated
 * protobuf-c ones. No other file writes a protobuf key by hand. It knows nothing of QUIC,
 * so the fuzzer (tests/fuzz/transport_frame_fuzz.c) drives it directly.
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

#include "raft/raft.h"
#include "raftd.pb-c.h"

#define RD_WIRE_HEADER            4
#define RD_WIRE_DEFAULT_MAX_FRAME (64u << 20)
#define RD_WIRE_READER_START      (16u << 10) /* first payload buffer */
/* What protobuf-c may allocate to unpack a payload of `len` bytes: large
 * frames are dominated by entry data (about 1x); tiny entries and
 * heartbeats cost up to ~11x their wire size in structs, which the
 * constant covers for any batch under ~1 MiB. */
#define RD_WIRE_DECODE_BUDGET(len) ((size_t)(len)*6 + (16u << 20))

/* Field numbers of proto/raftd.proto that the batch encoder below writes
 * by hand (a protobuf key is field << 3 | wire type). */
#define RD_WIRE_FRAME_BATCH           1  /* PeerFrame.batch */
#define RD_WIRE_BATCH_FROM            1  /* RaftBatch.from */
#define RD_WIRE_BATCH_TO              2  /* RaftBatch.to */
#define RD_WIRE_BATCH_MESSAGES        3  /* RaftBatch.messages */
#define RD_WIRE_BATCH_HEARTBEATS      4  /* RaftBatch.heartbeats */
#define RD_WIRE_BATCH_HEARTBEAT_RESPS 5  /* RaftBatch.heartbeat_resps */
#define RD_WIRE_BATCH_FLAGS           6  /* RaftBatch.flags */
#define RD_WIRE_BATCH_INCARNATION     7  /* RaftBatch.incarnation */
#define RD_WIRE_BATCH_CLUSTER         8  /* RaftBatch.cluster */
#define RD_WIRE_BATCH_BOOT            9  /* RaftBatch.boot */
#define RD_WIRE_BATCH_CLUSTER_MAX     64 /* bytes of RaftBatch.cluster sealed */
#define RD_WIRE_BATCH_F_DISK_SLOW     1u /* the sender's disk is slow */
#define RD_WIRE_TYPE_VARINT           0
#define RD_WIRE_TYPE_LEN              2

/* Room kept at the front of a batch buffer for the frame's head
 * (PeerFrame.batch key and length, RaftBatch.from and .to, .flags when
 * set, .incarnation, .cluster and .boot: at most 1 + 10 + 2 * 11 + 6 + 11 +
 * 2 + RD_WIRE_BATCH_CLUSTER_MAX + 11 bytes), so that the sealed frame is handed to
 * the transport from the batch buffer itself, without another copy. */
#define RD_WIRE_BATCH_HEAD 128

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

/* Free a frame rd_wire_decode returned (NULL is fine). */
void rd_wire_free(Raftd__PeerFrame *frame);

/* ---- RaftBatch, encoded incrementally -------------------------------------

 * A batch to one peer is built message by message as the driver produces
 * them (so the core's buffers may be reused at once), then sealed into one
 * PeerFrame payload: PeerFrame{ batch: RaftBatch{ from, to, <added> } }.
 * The result decodes with raftd__peer_frame__unpack like any other frame. */
struct rd_wire_batch {
	uint8_t *buf;    /* [RD_WIRE_BATCH_HEAD room][RaftBatch fields 3..5] */
	size_t len, cap; /* len >= RD_WIRE_BATCH_HEAD once buf exists */
	uint64_t msgs;   /* messages and heartbeats added since the last reset */
};

/* Reused conversion space, so that adding a message allocates nothing in
 * steady state. Zero-initialise; free with rd_wire_scratch_free. */
struct rd_wire_scratch {
	Raftd__Entry *ents;
	Raftd__Entry **entp;
	size_t ents_cap, entp_cap; /* in items */
};

/* An empty batch (no allocation until the first message). */
void rd_wire_batch_init(struct rd_wire_batch *b);

/* Append `m` to `b`: a heartbeat or heartbeat response that carries
 * nothing but group, term, commit and context goes in the coalesced form
 * (rd_wire_batch_add_heartbeat), anything else as a RaftMessage. The bytes
 * of `m` (entries included) are copied. Returns 0 or RD_ENOMEM (then `b`
 * is unchanged and the message is lost; Raft retransmits). */
int rd_wire_batch_add_msg(struct rd_wire_batch *b, struct rd_wire_scratch *s,
                          const struct rd_message *m);

/* The same, addressed to the replica of m->to with incarnation
 * `to_incarnation` (RaftMessage.to_incarnation; 0 = the founding replica,
 * which is what rd_wire_batch_add_msg and coalesced heartbeats address).
 * A nonzero one is never coalesced. */
int rd_wire_batch_add_msg_to(struct rd_wire_batch *b, struct rd_wire_scratch *s,
                             const struct rd_message *m, uint64_t to_incarnation);

/* rd_wire_batch_add_msg_to, keeping the sealed payload within `cap` bytes
 * (a frame limit such as [transport] max_frame_bytes): returns 0 (added),
 * RD_EAGAIN when `m` would take the batch past `cap` (nothing added: seal
 * and send what `b` holds, reset it and add `m` again), RD_ETOOBIG when `m`
 * alone does not fit in an empty batch of `cap` bytes (nothing added), or
 * RD_ENOMEM (nothing added). */
int rd_wire_batch_add_msg_within(struct rd_wire_batch *b, struct rd_wire_scratch *s,
                                 const struct rd_message *m, uint64_t to_incarnation,
                                 size_t cap);

/* Append heartbeat (or heartbeat response) `m` as a CoalescedHeartbeat;
 * only group, term, commit and context travel. Precondition: m->type is
 * RD_MSG_HEARTBEAT or RD_MSG_HEARTBEAT_RESP. 0 or RD_ENOMEM. */
int rd_wire_batch_add_heartbeat(struct rd_wire_batch *b, const struct rd_message *m);

/* True when nothing was added since the last reset. */
bool rd_wire_batch_empty(const struct rd_wire_batch *b);

/* Write the frame head (`from`, `to`) into the reserved room and return
 * the PeerFrame payload (no length header; *len its size), which stays
 * valid until the next add, reset or free. Precondition: not empty. */
const uint8_t *rd_wire_batch_seal(struct rd_wire_batch *b, uint64_t from, uint64_t to,
                                  size_t *len);

/* The same with RaftBatch.flags (RD_WIRE_BATCH_F_*; 0 writes no field). */
const uint8_t *rd_wire_batch_seal_flags(struct rd_wire_batch *b, uint64_t from,
                                        uint64_t to, uint32_t flags, size_t *len);

/* The sender's identity a batch carries (RaftBatch.incarnation, .cluster). */
struct rd_wire_ident {
	uint64_t incarnation; /* 0 writes no field */
	uint64_t boot;        /* RaftBatch.boot; 0 writes no field */
	const char *cluster;  /* NULL or "" writes no field; at most
	                       * RD_WIRE_BATCH_CLUSTER_MAX bytes are sealed */
};

/* The same with the sender's identity (`id` may be NULL: none). An empty
 * batch may be sealed too (a node heartbeat: the head alone). */
const uint8_t *rd_wire_batch_seal_ident(struct rd_wire_batch *b, uint64_t from,
                                        uint64_t to, uint32_t flags,
                                        const struct rd_wire_ident *id, size_t *len);

/* Forget the messages added (the buffer is kept for the next batch). */
void rd_wire_batch_reset(struct rd_wire_batch *b);

/* Release b's buffer; `b` is an empty batch again afterwards. */
void rd_wire_batch_free(struct rd_wire_batch *b);

/* Release s's arrays; `s` is zeroed afterwards. */
void rd_wire_scratch_free(struct rd_wire_scratch *s);

/* The ErrorCode (Raftd__ErrorCode value) a client or peer sees for RD_E*
 * code `err` (the wire column of RD_ERR_MAP in util/err.h): OK for 0,
 * INTERNAL for a code outside the table. */
int rd_err_to_wire(int err);

/* What an error answer tells a client about its request (proto/raftd.proto,
 * ErrorCode): the request was certainly not applied (retrying it, even
 * without a session, cannot apply it twice), or its outcome is unknown (a
 * write may have applied; retry with the same client session to learn the
 * outcome without applying it twice). The one copy of this classification:
 * raftctl's messages and exit codes read it. */
enum rd_outcome {
	RD_OUTCOME_OK = 0,
	RD_OUTCOME_NOT_APPLIED = 1,
	RD_OUTCOME_UNKNOWN = 2,
};

/* X(ErrorCode without its RAFTD__ERROR_CODE__ prefix, outcome). */
#define RD_WIRE_OUTCOME_MAP(X)                                                           \
	X(OK, OK)                                                                        \
	X(NOT_READY, NOT_APPLIED)                                                        \
	X(NOT_LEADER, NOT_APPLIED)                                                       \
	X(NO_LEADER, NOT_APPLIED)                                                        \
	X(TIMEOUT, UNKNOWN)                                                              \
	X(CAS_FAILED, NOT_APPLIED)                                                       \
	X(INVALID, NOT_APPLIED)                                                          \
	X(NOT_FOUND, NOT_APPLIED)                                                        \
	X(INTERNAL, UNKNOWN)                                                             \
	X(UNAVAILABLE, UNKNOWN)                                                          \
	X(TOO_LARGE, NOT_APPLIED)                                                        \
	X(SHUTTING_DOWN, UNKNOWN)                                                        \
	X(BUSY, NOT_APPLIED)                                                             \
	X(SEQUENCE_TOO_OLD, NOT_APPLIED)                                                 \
	X(COMPACTED, NOT_APPLIED)                                                        \
	X(CUT_OFF, NOT_APPLIED)                                                          \
	X(NO_HANDLER, NOT_APPLIED)                                                       \
	X(APP_ERROR, NOT_APPLIED) /* an envelope's handler answered with an error */

/* The outcome class of ErrorCode `code`; RD_OUTCOME_UNKNOWN for a code
 * outside the table (a newer server's). */
enum rd_outcome rd_wire_outcome(int code);

/* "not applied" / "outcome unknown" / "ok". */
const char *rd_wire_outcome_name(enum rd_outcome o);

/* ErrorCode `code`'s name as proto/raftd.proto spells it ("NO_LEADER"), or
 * NULL for a code outside the enum (a newer peer's). */
const char *rd_wire_code_name(int code);

/* ---- conversions between the core's types and the generated ones --------- */

/* Fill `out` from `sm` (zeroed when `sm` is NULL); member lists longer than
 * RD_RAFT_MAX_MEMBERS are cut. */
void rd_wire_meta_from_proto(struct rd_snapshot_meta *out, const Raftd__SnapshotMeta *sm);

/* Point `sm` (initialised here) at `meta`'s fields: `meta` must outlive
 * every use of `sm`. */
void rd_wire_meta_to_proto(Raftd__SnapshotMeta *sm, const struct rd_snapshot_meta *meta);

/* Fill `m` from `rm`, entries included: they point into `rm`'s data (valid
 * as long as `rm`) from an array that is `stack` when it holds `n_stack`
 * entries or more, else malloc'd (free m->entries when it is not `stack`).
 * Returns 0 or RD_ENOMEM. Precondition: `rm` passed rd_wire_validate. */
int rd_wire_msg_from_proto(const Raftd__RaftMessage *rm, struct rd_message *m,
                           struct rd_entry *stack, size_t n_stack);

/* Fill `m` from coalesced heartbeat `hb` (`resp`: a heartbeat response)
 * sent by `from` to `to`. */
void rd_wire_heartbeat_from_proto(const Raftd__CoalescedHeartbeat *hb, bool resp,
                                  uint64_t from, uint64_t to, struct rd_message *m);

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

/* An empty reader accepting payloads of at most `max` bytes. */
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
