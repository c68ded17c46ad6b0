/*
 * The member table: which incarnation of each node the cluster knows
 * (DESIGN: "Identity"). It is state of the metadata group, kept in group
 * 0's key-value state machine under reserved keys, so it is changed only
 * by group-0 entries, applied and persisted in the same batch as group 0's
 * applied index (storage/storage.h: rd_storage_batch_apply_kv), shipped in
 * group 0's snapshots, and read back at restart like any applied state.
 *
 * Key (bytes):
 *   "\0raftd/member/" | cluster id (as in the catalog) | "/" | u64 node id
 *   big-endian
 * The cluster id in the key keeps a restored cluster (a new cluster id,
 * multiraft/restore.c) from inheriting the registrations of the cluster
 * its backup came from: its nodes register afresh.
 *
 * Value (bytes, integers big-endian):
 *   u8 format (1) | u8 state (enum rd_member_state) | u64 incarnation |
 *   u8 address length | address ("host:port", at most 255 bytes)
 *
 * A node registers itself once group 0 has a leader, with a CAS whose
 * expected value is "absent" (storage/kv.h): the first registration of a
 * node id wins, deterministically on every replica, and a node whose data
 * directory was wiped (a new incarnation) can never overwrite the one the
 * cluster knows. Peers then refuse Raft traffic from any other
 * incarnation of that id (multiraft/membership.c).
 *
 * Client writes to the reserved prefix are refused (`raftctl meta put`).
 */
#ifndef RD_CLUSTER_MEMBERS_H
#define RD_CLUSTER_MEMBERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RD_MEMBERS_PREFIX     "\0raftd/member/"
#define RD_MEMBERS_PREFIX_LEN 14u
/* Longest key: prefix, a cluster id of at most 64 bytes, "/", the id. */
#define RD_MEMBERS_KEY_MAX (RD_MEMBERS_PREFIX_LEN + 64u + 1u + 8u)
/* Longest value: header and a 255-byte address. */
#define RD_MEMBERS_VALUE_MAX (1u + 1u + 8u + 1u + 255u)

enum rd_member_state {
	RD_MEMBER_JOINING = 1,
	RD_MEMBER_VOTER = 2,
	RD_MEMBER_LEARNER = 3,
	RD_MEMBER_LEAVING = 4,
};

/* One registration. `addr` is NUL-terminated. */
struct rd_member_record {
	uint8_t state; /* enum rd_member_state */
	uint64_t incarnation;
	char addr[256];
};

/* Write the key of node `id` in cluster `cluster` into `out` (at least
 * RD_MEMBERS_KEY_MAX bytes) and return its length. A cluster id longer
 * than 64 bytes is cut at 64. */
size_t rd_members_key(const char *cluster, uint64_t id, uint8_t *out);

/* Does `key` lie under the reserved prefix (any cluster)? */
bool rd_members_reserved(const uint8_t *key, size_t len);

/* Encode `r` into `out` (at least RD_MEMBERS_VALUE_MAX bytes); returns the
 * length. An address over 255 bytes is cut. */
size_t rd_members_encode(const struct rd_member_record *r, uint8_t *out);

/* Decode a value rd_members_encode wrote. 0, or RD_ECORRUPT for a short or
 * trailing value, an unknown format or state, or incarnation 0. */
int rd_members_decode(const uint8_t *buf, size_t len, struct rd_member_record *r);

/* The name of a state ("joining", "voter", ...; "unknown" otherwise). */
const char *rd_members_state_name(uint8_t state);

#endif
