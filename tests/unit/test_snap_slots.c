/*
 * Which slot an incoming snapshot stream takes (multiraft/snapshots.c):
 * streams of different groups, from different leaders, interleave on the
 * wire, so one group's new stream must never cancel another group's stream
 * while a slot is free, nor an install that waits for the next commit.
 */
#include <criterion/criterion.h>

#include "multiraft/node_internal.h"

/* The pick never dereferences a writer: any non-NULL marks a busy slot. */
#define BUSY ((struct rd_snapshot_writer *)(uintptr_t)1)

static void busy(struct rd_snap_in *p, uint64_t group, uint64_t used, bool pending)
{
	p->sw = BUSY;
	p->sw_group = group;
	p->used = used;
	p->pending = pending;
}

Test(snap_slots, a_second_group_takes_a_free_slot_not_the_first_groups)
{
	struct rd_snap_in s[RD_SNAP_IN_SLOTS] = {0};

	busy(&s[0], 3, 1, false); /* group 3 mid-stream */
	size_t i = rd_snapshots_pick_slot(s, RD_SNAP_IN_SLOTS, 4);
	cr_assert_neq(i, 0, "group 4's stream would cancel group 3's");
	cr_assert_lt(i, RD_SNAP_IN_SLOTS);
	cr_assert_null(s[i].sw);
}

Test(snap_slots, a_new_stream_of_a_group_replaces_its_own)
{
	struct rd_snap_in s[RD_SNAP_IN_SLOTS] = {0};

	busy(&s[0], 3, 1, false);
	busy(&s[2], 4, 2, true);
	cr_assert_eq(rd_snapshots_pick_slot(s, RD_SNAP_IN_SLOTS, 4), 2);
	cr_assert_eq(rd_snapshots_pick_slot(s, RD_SNAP_IN_SLOTS, 3), 0);
}

Test(snap_slots, when_full_the_least_recently_used_waiting_for_nothing_goes)
{
	struct rd_snap_in s[RD_SNAP_IN_SLOTS] = {0};

	for (size_t i = 0; i < RD_SNAP_IN_SLOTS; i++)
		busy(&s[i], 10 + i, 100 + i, false);
	s[0].pending = true; /* oldest, but its install waits for a commit */
	cr_assert_eq(rd_snapshots_pick_slot(s, RD_SNAP_IN_SLOTS, 99), 1);
	for (size_t i = 0; i < RD_SNAP_IN_SLOTS; i++)
		s[i].pending = true;
	cr_assert_eq(rd_snapshots_pick_slot(s, RD_SNAP_IN_SLOTS, 99), RD_SNAP_IN_SLOTS,
	             "an install that waits for a commit was evicted");
}
