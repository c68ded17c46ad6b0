/* Bootstrap placement and the routing table encoding. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/topology.h"
#include "util/err.h"

Test(routing, vshards_are_spread_uniformly_and_contiguously)
{
	struct rd_routing r;
	uint64_t nodes[] = {3, 1, 2};
	cr_assert_eq(rd_routing_bootstrap(&r, 16, 3, nodes, 3), 0);
	for (uint32_t g = 1; g <= 16; g++)
		cr_assert_eq(rd_routing_vshard_count(&r, g), 64, "group %u", g);
	for (uint32_t v = 1; v < RD_VSHARDS; v++)
		cr_assert_geq(rd_routing_group_of(&r, v), rd_routing_group_of(&r, v - 1));
	rd_routing_free(&r);
}

Test(routing, replicas_and_leader_hints_spread_evenly)
{
	struct rd_routing r;
	uint64_t nodes[] = {10, 20, 30, 40, 50};
	unsigned hints[5] = {0}, replicas[5] = {0};
	cr_assert_eq(rd_routing_bootstrap(&r, 10, 3, nodes, 5), 0);
	for (uint32_t g = 1; g <= 10; g++) {
		const struct rd_group_placement *p = rd_routing_placement(&r, g);
		cr_assert_eq(p->n_replicas, 3);
		hints[p->replicas[0] / 10 - 1]++;
		for (unsigned i = 0; i < 3; i++) {
			replicas[p->replicas[i] / 10 - 1]++;
			for (unsigned j = 0; j < i; j++)
				cr_assert_neq(p->replicas[i], p->replicas[j]);
		}
	}
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(hints[i], 2, "node %d leads %u", i, hints[i]);
		cr_assert_eq(replicas[i], 6);
	}
	cr_assert(rd_routing_has_replica(&r, 1, 10));
	cr_assert_not(rd_routing_has_replica(&r, 1, 40));
	rd_routing_free(&r);
}

Test(routing, replication_factor_capped_by_node_count)
{
	struct rd_routing r;
	uint64_t nodes[] = {1};
	cr_assert_eq(rd_routing_bootstrap(&r, 4, 3, nodes, 1), 0);
	cr_assert_eq(rd_routing_placement(&r, 4)->n_replicas, 1);
	cr_assert_null(rd_routing_placement(&r, 5));
	cr_assert_null(rd_routing_placement(&r, 0));
	rd_routing_free(&r);
}

Test(routing, encode_decode_round_trip_and_corruption)
{
	struct rd_routing r, d;
	uint64_t nodes[] = {1, 2, 3};
	uint8_t *buf;
	size_t len;
	char msg[RD_ERRMSG_SIZE];

	cr_assert_eq(rd_routing_bootstrap(&r, 7, 3, nodes, 3), 0);
	r.version = 42;
	cr_assert_eq(rd_routing_encode(&r, &buf, &len), 0);
	cr_assert_eq(rd_routing_decode(&d, buf, len, msg), 0, "%s", msg);
	cr_assert_eq(d.version, 42);
	cr_assert_eq(memcmp(d.vshard, r.vshard, sizeof r.vshard), 0);
	cr_assert_eq(memcmp(d.groups, r.groups, 7 * sizeof *r.groups), 0);
	rd_routing_free(&d);
	cr_assert_eq(rd_routing_decode(&d, buf, len - 1, msg), RD_ECORRUPT);
	cr_assert_eq(rd_routing_decode(&d, buf, 10, msg), RD_ECORRUPT);
	buf[13 + 3] = 99; /* vshard 0 -> group 99 */
	cr_assert_eq(rd_routing_decode(&d, buf, len, msg), RD_ECORRUPT);
	free(buf);
	rd_routing_free(&r);
}
