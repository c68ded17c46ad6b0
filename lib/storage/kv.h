/*
 * The key-value command format stored in the data of NORMAL log entries of
 * every group (data groups and the metadata group alike), and the key to
 * vShard hash. Both are part of the on-disk and on-wire contract: clients in
 * other languages can be written from this description.
 *
 * Command encoding (all lengths are unsigned LEB128 varints, at most 5 bytes,
 * value < 2^32; the shortest form is not required but a varint over 5 bytes
 * or above 2^32 - 1 is malformed):
 *
 *   byte 0      op: 1 = PUT, 2 = DELETE, 3 = CAS, 4 = RAW
 *   PUT         varint klen, key[klen], varint vlen, value[vlen]
 *   DELETE      varint klen, key[klen]
 *   CAS         varint klen, key[klen], byte flags, [varint elen,
 *               expected[elen] when flags bit 0 is set], varint vlen,
 *               value[vlen]
 *               flags bit 0: an expected value follows; clear means "only if
 *               the key is absent". Other flag bits must be zero.
 *   RAW         payload: every byte after the op, opaque (raftctl propose);
 *               applying it changes no key.
 *
 * Version 2 adds a client session (thesis §6.3) in front of a version-1
 * command:
 *
 *   byte 0      0x80 (RD_KV_SESSION: never an op of version 1)
 *   bytes 1-8   client_id, u64 big-endian, non-zero
 *   bytes 9-16  sequence, u64 big-endian, non-zero
 *   bytes 17-   a version-1 command as above (op PUT, DELETE, CAS or RAW)
 *
 * A command without a session (client_id 0) is encoded as version 1, so
 * entries written before sessions existed decode unchanged. The state
 * machine applies a command with a session at most once per (group,
 * client, sequence): see rd_storage_batch_apply_kv (storage.h).
 *
 * A command ends exactly at the end of the entry data (trailing bytes are
 * malformed). Keys are 1..RD_KV_KEY_MAX bytes, values and expected values
 * 0..RD_KV_VALUE_MAX bytes.
 *
 * CAS semantics: if the key's current value equals `expected` (or, without
 * an expected value, the key is absent), the key is set to `value`;
 * otherwise nothing changes and the result is RD_ECASFAILED with the current
 * value.
 */
#ifndef RD_STORAGE_KV_H
#define RD_STORAGE_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/hash.h"

#define RD_KV_KEY_MAX   4096u
#define RD_KV_VALUE_MAX (1u << 20)
#define RD_KV_VSHARDS   1024u

enum rd_kv_op {
	RD_KV_PUT = 1,
	RD_KV_DELETE = 2,
	RD_KV_CAS = 3,
	RD_KV_RAW = 4,
};

/* First byte of a version-2 command (a session header, then a command). */
#define RD_KV_SESSION     0x80u
#define RD_KV_SESSION_HDR 17u

/* A decoded (or to-be-encoded) command. Pointers refer to the buffer it was
 * decoded from (or to the caller's bytes for encoding); nothing is owned. */
struct rd_kv_cmd {
	uint8_t op; /* enum rd_kv_op */
	const uint8_t *key;
	uint32_t key_len;
	const uint8_t *value; /* PUT, CAS new value; RAW payload */
	uint32_t value_len;
	bool has_expected; /* CAS only */
	const uint8_t *expected;
	uint32_t expected_len;
	uint64_t client_id; /* 0 = no session (version 1) */
	uint64_t sequence;  /* with a session: non-zero, increasing per client */
};

/* Bytes rd_kv_encode needs for `cmd`. */
size_t rd_kv_encoded_size(const struct rd_kv_cmd *cmd);

/* Encode `cmd` into buf[0..cap). Returns 0 and the length in *len, RD_EINVAL
 * for an unknown op, a key/value outside the limits or a session with
 * sequence 0, RD_ETOOBIG when cap is too small. A cmd with client_id 0 is
 * encoded without a session (version 1), so callers that zero the struct
 * and set no session keep producing the version-1 bytes. */
int rd_kv_encode(const struct rd_kv_cmd *cmd, uint8_t *buf, size_t cap, size_t *len);

/* Decode data[0..len) into *cmd (pointing into `data`). Returns 0, or
 * RD_ECORRUPT for malformed input (unknown op, truncated field, bad varint,
 * trailing bytes, bad flags, a session header with a zero id or sequence or
 * without a command after it) and RD_EINVAL for a key or value outside the
 * limits; `msg` (may be NULL) says which. Version-1 bytes give client_id 0. */
int rd_kv_decode(const uint8_t *data, size_t len, struct rd_kv_cmd *cmd, char *msg);

/*
 * The vShard of a key: FNV-1a 64 over the key bytes, modulo 1024.
 *   h = 0xcbf29ce484222325 (offset basis)
 *   for each byte c: h = (h XOR c) * 0x100000001b3 (mod 2^64)
 *   vshard = h mod 1024 (the low 10 bits)
 * Example: FNV-1a 64 of "foobar" is 0x85944171f73967e8, vShard 0x3e8 = 1000.
 */
uint32_t rd_kv_vshard(const uint8_t *key, size_t len);

#endif
