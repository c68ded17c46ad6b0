/*
 * The canary's key search (multiraft/canary.c): every vShard has a group,
 * but with more data groups than vShards (RD_VSHARDS) some groups own
 * none, and no key can map to them. The search must see that at once
 * instead of trying every candidate key on every tick (65,536 hashes per
 * such group, which stalled the loop of a node with thousands of groups).
 */
#include <criterion/criterion.h>

#include "cluster/topology.h"
#include "multiraft/node_internal.h"
#include "storage/kv.h"

Test(canary_key, a_group_without_vshards_is_given_up_at_once)
{
	struct rd_routing r;
	uint64_t nodes[] = {1, 2, 3};
	uint8_t key[48];
	size_t len = 99;
	uint32_t g = 1;

	cr_assert_eq(rd_routing_bootstrap(&r, RD_VSHARDS * 2, 3, nodes, 3), 0);
	while (rd_routing_vshard_count(&r, g) != 0)
		g++;
	cr_assert_leq(g, RD_VSHARDS * 2);
	unsigned tried = rd_canary_find_key(&r, 2, g, key, sizeof key, &len);
	cr_assert_eq(len, 0, "a key was found for a group that owns no vShard");
	cr_assert_eq(tried, 0, "tried %u keys for a group that owns no vShard", tried);
	rd_routing_free(&r);
}

Test(canary_key, a_group_with_a_vshard_gets_a_key_it_owns)
{
	struct rd_routing r;
	uint64_t nodes[] = {1, 2, 3};
	uint8_t key[48];
	size_t len = 0;

	cr_assert_eq(rd_routing_bootstrap(&r, RD_VSHARDS * 2, 3, nodes, 3), 0);
	for (uint32_t g = 1; g <= RD_VSHARDS * 2; g += 97) {
		if (rd_routing_vshard_count(&r, g) == 0)
			continue;
		unsigned tried = rd_canary_find_key(&r, 2, g, key, sizeof key, &len);
		cr_assert_gt(tried, 0);
		cr_assert_gt(len, 0, "no key for group %u", g);
		cr_assert_eq(rd_routing_group_of(&r, rd_kv_vshard(key, len)), g);
	}
	rd_routing_free(&r);
}
