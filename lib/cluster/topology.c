/*
 * Members, cluster id and routing table: see topology.h. The routing table
 * is the one piece that is persisted (storage catalog, format in
 * topology.h); members come from the config until membership changes go
 * through group 0.
 */
#include "cluster/topology.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/kv.h"
#include "storage/storage.h"
#include "util/hash.h"
#include "util/err.h"
#include "util/log.h"
#include "util/sort.h"

int rd_routing_bootstrap(struct rd_routing *r, uint32_t n_groups,
                         uint32_t replication_factor, const uint64_t *nodes,
                         size_t n_nodes)
{
	uint64_t sorted[RD_ROUTING_MAX_GROUPS];
	uint32_t reps;

	if (n_groups == 0 || n_groups > RD_ROUTING_MAX_GROUPS || n_nodes == 0 ||
	    n_nodes > RD_ROUTING_MAX_GROUPS || replication_factor == 0)
		return RD_EINVAL;
	memset(r, 0, sizeof *r);
	r->groups = calloc(n_groups, sizeof *r->groups);
	if (r->groups == NULL)
		return RD_ENOMEM;
	r->version = 1;
	r->n_groups = n_groups;
	memcpy(sorted, nodes, n_nodes * sizeof *nodes);
	rd_sort_u64(sorted, n_nodes);
	reps = replication_factor < n_nodes ? replication_factor : (uint32_t)n_nodes;
	if (reps > RD_ROUTING_MAX_REPLICAS)
		reps = RD_ROUTING_MAX_REPLICAS;
	for (uint32_t v = 0; v < RD_VSHARDS; v++)
		r->vshard[v] = 1 + (uint32_t)((uint64_t)v * n_groups / RD_VSHARDS);
	for (uint32_t g = 0; g < n_groups; g++) {
		struct rd_group_placement *p = &r->groups[g];
		p->n_replicas = reps;
		for (uint32_t i = 0; i < reps; i++)
			p->replicas[i] = sorted[(g + i) % n_nodes];
	}
	return 0;
}

void rd_routing_free(struct rd_routing *r)
{
	free(r->groups);
	r->groups = NULL;
	r->n_groups = 0;
}

uint32_t rd_routing_group_of(const struct rd_routing *r, uint32_t vshard)
{
	return r->vshard[vshard % RD_VSHARDS];
}

const struct rd_group_placement *rd_routing_placement(const struct rd_routing *r,
                                                      uint32_t g)
{
	if (g == 0 || g > r->n_groups)
		return NULL;
	return &r->groups[g - 1];
}

int rd_routing_has_replica(const struct rd_routing *r, uint32_t g, uint64_t node)
{
	const struct rd_group_placement *p = rd_routing_placement(r, g);
	if (p == NULL)
		return 0;
	for (uint32_t i = 0; i < p->n_replicas; i++)
		if (p->replicas[i] == node)
			return 1;
	return 0;
}

uint32_t rd_routing_vshard_count(const struct rd_routing *r, uint32_t g)
{
	uint32_t n = 0;
	for (uint32_t v = 0; v < RD_VSHARDS; v++)
		n += r->vshard[v] == g;
	return n;
}

static uint8_t *put_be(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

static uint64_t get_be(const uint8_t *p, int bytes)
{
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++)
		v = v << 8 | p[i];
	return v;
}

#define HEAD_LEN (1 + 8 + 4 + 4 * RD_VSHARDS)

int rd_routing_encode(const struct rd_routing *r, uint8_t **out, size_t *len)
{
	size_t n = HEAD_LEN;
	uint8_t *buf, *p;

	for (uint32_t g = 0; g < r->n_groups; g++)
		n += 1 + 8 * (size_t)r->groups[g].n_replicas;
	buf = malloc(n);
	if (buf == NULL)
		return RD_ENOMEM;
	p = put_be(buf, 1, 1);
	p = put_be(p, r->version, 8);
	p = put_be(p, r->n_groups, 4);
	for (uint32_t v = 0; v < RD_VSHARDS; v++)
		p = put_be(p, r->vshard[v], 4);
	for (uint32_t g = 0; g < r->n_groups; g++) {
		p = put_be(p, r->groups[g].n_replicas, 1);
		for (uint32_t i = 0; i < r->groups[g].n_replicas; i++)
			p = put_be(p, r->groups[g].replicas[i], 8);
	}
	*out = buf;
	*len = n;
	return 0;
}

int rd_routing_decode(struct rd_routing *r, const uint8_t *buf, size_t len, char *msg)
{
	const uint8_t *p = buf + HEAD_LEN, *end = buf + len;
	uint32_t n_groups;

	if (len < HEAD_LEN || buf[0] != 1)
		return rd_errorf(msg, RD_ECORRUPT, "routing table: bad header");
	n_groups = (uint32_t)get_be(buf + 9, 4);
	if (n_groups == 0 || n_groups > RD_ROUTING_MAX_GROUPS)
		return rd_errorf(msg, RD_ECORRUPT, "routing table: %u groups", n_groups);
	memset(r, 0, sizeof *r);
	r->version = get_be(buf + 1, 8);
	r->n_groups = n_groups;
	for (uint32_t v = 0; v < RD_VSHARDS; v++) {
		r->vshard[v] = (uint32_t)get_be(buf + 13 + 4 * v, 4);
		if (r->vshard[v] == 0 || r->vshard[v] > n_groups)
			return rd_errorf(msg, RD_ECORRUPT,
			                 "routing table: vshard %u -> group %u", v,
			                 r->vshard[v]);
	}
	r->groups = calloc(n_groups, sizeof *r->groups);
	if (r->groups == NULL)
		return RD_ENOMEM;
	for (uint32_t g = 0; g < n_groups; g++) {
		struct rd_group_placement *pl = &r->groups[g];
		if (p >= end || *p == 0 || *p > RD_ROUTING_MAX_REPLICAS ||
		    (size_t)(end - p) < 1 + 8 * (size_t)*p)
			goto corrupt;
		pl->n_replicas = *p++;
		for (uint32_t i = 0; i < pl->n_replicas; i++, p += 8)
			pl->replicas[i] = get_be(p, 8);
	}
	if (p != end)
		goto corrupt;
	return 0;
corrupt:
	rd_routing_free(r);
	return rd_errorf(msg, RD_ECORRUPT, "routing table: bad group placement");
}

void rd_topology_init(struct rd_topology *t, const struct rd_config *cfg)
{
	memset(t, 0, sizeof *t);
	for (unsigned i = 0; i < cfg->n_peers && i < RD_TOPOLOGY_MAX_MEMBERS; i++) {
		t->members[i].id = cfg->peers[i].id;
		t->members[i].addr = cfg->peers[i].addr;
	}
	t->n_members = cfg->n_peers < RD_TOPOLOGY_MAX_MEMBERS ? cfg->n_peers
	                                                      : RD_TOPOLOGY_MAX_MEMBERS;
	/* [cluster] join: this node alone, until the cluster says more. */
	if (cfg->n_peers == 0 && cfg->has_join) {
		t->members[0].id = cfg->node_id;
		t->members[0].addr = cfg->listen;
		t->n_members = 1;
	}
}

void rd_topology_cluster_id(const struct rd_topology *t, char *out, size_t size)
{
	uint64_t ids[RD_TOPOLOGY_MAX_MEMBERS], h;
	unsigned k = t->n_members;

	for (unsigned i = 0; i < k; i++)
		ids[i] = t->members[i].id;
	rd_sort_u64(ids, k);
	h = rd_fnv1a64((const uint8_t *)ids, k * sizeof *ids);
	snprintf(out, size, "raftd-%016llx", (unsigned long long)h);
}

int rd_topology_load(struct rd_topology *t, struct rd_storage *st, uint32_t data_groups,
                     uint32_t replication_factor, char *msg)
{
	uint64_t ids[RD_TOPOLOGY_MAX_MEMBERS];
	uint8_t *buf;
	size_t len;
	int rv;

	rv = rd_storage_catalog_get(st, RD_STORAGE_CATALOG_ROUTING, &buf, &len, msg);
	if (rv == 0) {
		rv = rd_routing_decode(&t->routing, buf, len, msg);
		free(buf);
		if (rv != 0)
			rd_errprefix(msg, "catalog: ");
		return rv;
	}
	if (rv != RD_ENOTFOUND)
		return rv;
	for (unsigned i = 0; i < t->n_members; i++)
		ids[i] = t->members[i].id;
	rv = rd_routing_bootstrap(&t->routing, data_groups, replication_factor, ids,
	                          t->n_members);
	if (rv != 0)
		return rd_errorf(msg, rv, "cannot compute the routing table");
	rv = rd_routing_encode(&t->routing, &buf, &len);
	if (rv != 0)
		return rd_errorf(msg, rv, "out of memory");
	rv = rd_storage_catalog_put(st, RD_STORAGE_CATALOG_ROUTING, buf, len, msg);
	free(buf);
	if (rv == 0)
		rd_log_info(
		    "bootstrap: routing table computed groups=%u replicas=%u nodes=%u",
		    t->routing.n_groups, rd_routing_placement(&t->routing, 1)->n_replicas,
		    t->n_members);
	return rv;
}

uint64_t rd_topology_lowest_member(const struct rd_topology *t)
{
	uint64_t lowest = UINT64_MAX;
	for (unsigned i = 0; i < t->n_members; i++)
		if (t->members[i].id < lowest)
			lowest = t->members[i].id;
	return lowest;
}

void rd_topology_free(struct rd_topology *t)
{
	rd_routing_free(&t->routing);
}
