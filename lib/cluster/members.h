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
 *   u8 format (1: registered by a founder; 2: written by a conf change that
 *   added a replica, rd_member_record.added) | u8 state (enum rd_member_state) | u64
 * incarnation | u8 address length | address ("host:port", at most 255 bytes) Incarnation
 * 0: a member added by `raftctl members add` that has not registered yet; its first
 * registration replaces the record with one holding its incarnation (a CAS expecting the
 * record read), and from then on no other incarnation can.
 *
 * Membership changes of group 0 (`raftctl members add / remove /
 * promote`, multiraft/membership.c) are conf-change entries (thesis §4.1,
 * one server at a time) whose context, after the core's header, is
 *   u8 format (1; 2: a joining learner, to be promoted once caught up) |
 *   u64 incarnation | u8 address length | address
 * and the metadata applier writes the member's record in the same batch as
 * the entry's applied index (rd_members_after_cc), so the member table and
 * group 0's configuration change together, deterministically on every
 * replica. A removed member keeps its record in state "removed", with its
 * incarnation: it cannot register again by itself, and a node that finds
 * itself removed exits.
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
	RD_MEMBER_REMOVED = 5,
};

/* One registration. `addr` is NUL-terminated. */
struct rd_member_record {
	uint8_t state; /* enum rd_member_state */
	/* Written by a conf change that added a replica (value format 2): the
	 * incarnation is that replica's in every group it is added to, not a
	 * founding replica's (format 1: registered by the node itself). */
	bool added;
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

/*
 * Replica identity (thesis §4, §3.8). A member of a group is a replica:
 * a node id and the incarnation of the data directory that holds it. The
 * group's own log says which: a conf change with a context (add voter or
 * learner) names the incarnation, and every group's applier keeps it in
 * the group's state machine under the replica key
 *   "\0raftd/member/" | cluster id | "/r/" | u64 node id big-endian
 * with the value u64 incarnation big-endian (absent, or 0: a founding
 * replica, created by the group's bootstrap entries). Being state of the
 * group, it ships with the group's snapshots. Every Raft message is
 * addressed to a replica (RaftMessage.to_incarnation, 0 = the founding
 * replica), as the sender's configuration of that group has it, and a node
 * steps only messages addressed to itself: see multiraft/replicas.c
 * rd_membership_addressed for the rules and why they are safe.
 */
#define RD_MEMBERS_REPLICA_KEY_MAX (RD_MEMBERS_PREFIX_LEN + 64u + 3u + 8u)

/* Write the replica key of node `id` into `out` (at least
 * RD_MEMBERS_REPLICA_KEY_MAX bytes); returns its length. */
size_t rd_members_replica_key(const char *cluster, uint64_t id, uint8_t *out);

/*
 * Target placement of a data group (cluster/placement.h), state of group
 * 0 under the key
 *   "\0raftd/member/" | cluster id | "/p/" | u64 group id big-endian
 * with the value rd_placement_encode writes. Absent: the bootstrap
 * placement (cluster/topology.h). Written by the group-0 leader's
 * placement driver only, as a CAS on the value it read.
 */
#define RD_MEMBERS_PLACEMENT_KEY_MAX (RD_MEMBERS_PREFIX_LEN + 64u + 3u + 8u)

/* Write the placement key of data group `group` into `out` (at least
 * RD_MEMBERS_PLACEMENT_KEY_MAX bytes); returns its length. With group 0,
 * the length minus 8 is the prefix every placement key starts with. */
size_t rd_members_placement_key(const char *cluster, uint64_t group, uint8_t *out);

/* Longest conf-change context: format, incarnation, a 255-byte address. */
#define RD_MEMBERS_CC_CTX_MAX (1u + 8u + 1u + 255u)

/* Encode the context of a group-0 conf change into `out` (at least
 * RD_MEMBERS_CC_CTX_MAX bytes); returns its length. */
size_t rd_members_cc_ctx_encode(uint64_t incarnation, const char *addr, bool joining,
                                uint8_t *out);

/* Decode a context rd_members_cc_ctx_encode wrote; an empty one (a conf
 * change without context) gives incarnation 0 and an empty address. 0 or
 * RD_ECORRUPT. `addr` holds 256 bytes. */
int rd_members_cc_ctx_decode(const uint8_t *buf, size_t len, uint64_t *incarnation,
                             char *addr, bool *joining);

/* The record a conf change of `cc_type` (enum rd_cc_type, raft/raft.h)
 * leaves for its node, given the current record (`cur`, NULL when absent)
 * and the change's context. Adding writes a new record (state voter or
 * learner, or joining for a learner added to be promoted once caught up,
 * the context's incarnation and address, `added`); promoting keeps the
 * incarnation and address and sets "voter"; removing keeps them and sets
 * "removed". Pure: every replica computes the same record. */
void rd_members_after_cc(uint8_t cc_type, const struct rd_member_record *cur,
                         uint64_t incarnation, const char *addr, bool joining,
                         struct rd_member_record *out);

/* A membership request (raftctl members add / remove / promote). */
enum rd_members_kind {
	RD_MEMBERS_ADD = 1,
	RD_MEMBERS_REMOVE = 2,
	RD_MEMBERS_PROMOTE = 3,
};

/* Group 0 keeps up to this many voters; further members are learners. */
#define RD_MEMBERS_MAX_VOTERS 5

struct rd_conf_state;

/* What the group-0 leader knows when it checks a request. */
struct rd_members_view {
	const struct rd_conf_state *conf; /* the group's latest configuration */
	uint64_t group;                   /* its id, for the messages */
	uint32_t max_voters;              /* RD_MEMBERS_MAX_VOTERS for group 0 */
	uint64_t self;                    /* the leader */
	uint64_t last_index;              /* its last log index */
	uint64_t promote_max_lag;         /* [cluster] promote_max_lag */
	/* The leader's match index for `id`; is `id` reachable now (the
	 * leader itself always is)? */
	uint64_t (*match)(void *arg, uint64_t id);
	bool (*live)(void *arg, uint64_t id);
	void *arg;
};

/* Check a request against group v->group (group 0 or a data group) before
 * anything is proposed: 0, or an RD_E* code (RD_EINVAL for a request that
 * can never apply as asked) with a message that names the group and says
 * why. Refused: node id 0; adding a member of the group;
 * adding a voter beyond RD_MEMBERS_MAX_VOTERS; removing or promoting a
 * node that is not a member (not a learner); removing the last voter;
 * removing a voter when the voters left, counting only the reachable ones,
 * are not a majority of the new configuration (the group would have no
 * quorum); adding a voter whose new configuration has no reachable
 * majority; promoting a learner that acknowledged nothing yet (match 0),
 * whose match index is more than promote_max_lag entries behind
 * last_index, or whose promotion leaves no reachable majority. The address of an add is
 * checked by the caller (it resolves names). */
int rd_members_check(uint8_t kind, uint64_t node, bool learner,
                     const struct rd_members_view *v, char *msg);

#endif
