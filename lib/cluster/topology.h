/*
 * The cluster's topology: its members and their addresses, the cluster id,
 * and the routing table (which data group owns each of the 1024 vShards,
 * and which nodes hold a replica of each group). Group 0 (metadata) is not in it:
 * it lives on every voting node of the topology.
 *
 * Keys map to vShards with rd_kv_vshard (storage/kv.h: FNV-1a 64 mod 1024).
 *
 * Bootstrap placement is deterministic, so that every initial node computes
 * the same table from the same config without talking to the others:
 *   - vShard v belongs to group 1 + v * G / 1024 (contiguous, uniform ranges);
 *   - the nodes are sorted by id; group g (1-based) is placed on the R nodes
 *     starting at position (g - 1) mod N, wrapping around;
 *   - the first of them is the group's leadership hint, which spreads
 *     leadership evenly across nodes.
 * Later changes go through group 0 and replace the table as a whole.
 */
#ifndef RD_CLUSTER_TOPOLOGY_H
#define RD_CLUSTER_TOPOLOGY_H

#include <stddef.h>
#include <stdint.h>

#include "util/config.h"

struct rd_storage;

#define RD_VSHARDS              1024
#define RD_ROUTING_MAX_GROUPS   4096
#define RD_ROUTING_MAX_REPLICAS 7
#define RD_TOPOLOGY_MAX_MEMBERS 64

struct rd_group_placement {
	uint32_t n_replicas;
	uint64_t replicas[RD_ROUTING_MAX_REPLICAS]; /* replicas[0] is the leader hint */
	/* Changes of this group's target through group 0 (cluster/members.h
	 * placement key); 0: the bootstrap placement, the one its founding
	 * replicas were created with. Not in the catalog's encoding. */
	uint64_t version;
};

struct rd_routing {
	uint64_t version;  /* bumped by every change applied through group 0 */
	uint32_t n_groups; /* data groups 1..n_groups */
	uint32_t vshard[RD_VSHARDS];
	struct rd_group_placement *groups; /* [n_groups], index g - 1 */
};

/* Compute the bootstrap table for `n_groups` data groups with
 * `replication_factor` replicas over `nodes` (any order; ids distinct).
 * The replica count is min(replication_factor, n_nodes). On success the
 * caller owns r->groups (free with rd_routing_free). */
int rd_routing_bootstrap(struct rd_routing *r, uint32_t n_groups,
                         uint32_t replication_factor, const uint64_t *nodes,
                         size_t n_nodes);

/* Release r->groups (NULL afterwards; n_groups 0). Safe on a zeroed or
 * already freed table. */
void rd_routing_free(struct rd_routing *r);

/* The group that owns vShard `v` (taken modulo RD_VSHARDS). */
uint32_t rd_routing_group_of(const struct rd_routing *r, uint32_t vshard);

/* The placement of data group `g` (1..n_groups), or NULL for group 0 and
 * groups past n_groups. The pointer lives as long as the table. */
const struct rd_group_placement *rd_routing_placement(const struct rd_routing *r,
                                                      uint32_t g);

/* Does `node` hold a replica of data group `g`? 0 for an unknown group. */
int rd_routing_has_replica(const struct rd_routing *r, uint32_t g, uint64_t node);

/* Number of vShards that group `g` owns (0 for an unknown group). */
uint32_t rd_routing_vshard_count(const struct rd_routing *r, uint32_t g);

/* Encode into a malloc'd buffer (*out, *len; the caller frees). Layout,
 * all integers big-endian:
 *   u8 format (1) | u64 version | u32 n_groups | u32 vshard[1024] |
 *   per group: u8 n_replicas | u64 replicas[n_replicas]
 */
int rd_routing_encode(const struct rd_routing *r, uint8_t **out, size_t *len);

/* Decode what rd_routing_encode wrote into `r` (overwritten; on success the
 * caller owns r->groups). RD_ECORRUPT on anything malformed (short, unknown
 * format, group numbers out of range), RD_ENOMEM. */
int rd_routing_decode(struct rd_routing *r, const uint8_t *buf, size_t len, char *msg);

/* A member of the cluster: its node id and peer address. */
struct rd_member {
	uint64_t id;
	struct rd_addr addr;
};

/* What this node knows of the cluster: the members (this node included)
 * and the routing table. Owned by the runtime; changed only through group
 * 0 once the cluster runs. */
struct rd_topology {
	struct rd_member members[RD_TOPOLOGY_MAX_MEMBERS];
	unsigned n_members;
	struct rd_routing routing;
};

/* Fill t's members from the config's [cluster] peers (the first
 * RD_TOPOLOGY_MAX_MEMBERS of them), or with this node alone when the config
 * has [cluster] join instead; the routing table is left empty. */
void rd_topology_init(struct rd_topology *t, const struct rd_config *cfg);

/* The cluster id of a bootstrapped cluster: "raftd-" and the FNV-1a 64
 * hash of the sorted initial member ids (16 hex digits), so that a data
 * directory of another cluster is recognised and refused. `out` holds at
 * least 23 bytes. */
void rd_topology_cluster_id(const struct rd_topology *t, char *out, size_t size);

/* Load the routing table from the storage catalog, or, on a fresh data
 * directory, compute the bootstrap table (`data_groups` groups,
 * `replication_factor` replicas over the members) and record it in the
 * catalog before returning. Precondition: storage is open and t's members
 * are set. Returns 0 or an RD_E* code with a message. */
int rd_topology_load(struct rd_topology *t, struct rd_storage *st, uint32_t data_groups,
                     uint32_t replication_factor, char *msg);

/* The lowest member id (group 0's leadership hint at bootstrap), or
 * UINT64_MAX without members. */
uint64_t rd_topology_lowest_member(const struct rd_topology *t);

/* Release the routing table. */
void rd_topology_free(struct rd_topology *t);

#endif
