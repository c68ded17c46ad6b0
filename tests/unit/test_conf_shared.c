/*
 * Shared configurations (lib/raft/conf.h): equal memberships share one
 * copy, a copy lives while it has a holder, and unused slots of a value do
 * not make two equal memberships differ. Then a core whose membership
 * changes holds every configuration by reference: freeing the groups
 * leaves nothing shared behind (no reference lost or leaked).
 */
#include <criterion/criterion.h>
#include <string.h>

#include "raft/conf.h"
#include "raft/raft.h"

static struct rd_conf_state three(uint64_t a, uint64_t b, uint64_t c)
{
	struct rd_conf_state cs;
	memset(&cs, 0, sizeof cs);
	cs.n_voters = 3;
	cs.voters[0] = a;
	cs.voters[1] = b;
	cs.voters[2] = c;
	return cs;
}

Test(conf_shared, equal_memberships_share_one_copy_until_the_last_release)
{
	size_t base = rd_conf_shared_count();
	struct rd_conf_state a = three(1, 2, 3), b = three(1, 2, 3);
	b.voters[7] = 99; /* an unused slot: not part of the membership */
	b.learners[0] = 42;
	const struct rd_conf_state *sa = rd_conf_share(&a);
	const struct rd_conf_state *sb = rd_conf_share(&b);
	cr_assert_eq(sa, sb);
	cr_assert_eq(rd_conf_shared_count(), base + 1);
	cr_assert(rd_conf_equal(sa, &a));
	cr_assert_eq(sa->voters[7], 0, "the shared copy holds only the lists");

	struct rd_conf_state c = three(1, 2, 4);
	const struct rd_conf_state *sc = rd_conf_share(&c);
	cr_assert_neq(sc, sa);
	cr_assert_eq(rd_conf_shared_count(), base + 2);

	rd_conf_release(sa);
	cr_assert_eq(rd_conf_shared_count(), base + 2, "sb still holds it");
	cr_assert_eq(sb->voters[2], 3);
	rd_conf_release(sb);
	rd_conf_release(sc);
	cr_assert_eq(rd_conf_shared_count(), base);
}

Test(conf_shared, order_and_role_tell_memberships_apart)
{
	struct rd_conf_state a = three(1, 2, 3), b = three(1, 3, 2);
	struct rd_conf_state l = three(1, 2, 3);
	l.n_voters = 2;
	l.n_learners = 1;
	l.learners[0] = 3;
	cr_assert_not(rd_conf_equal(&a, &b));
	cr_assert_not(rd_conf_equal(&a, &l));
	const struct rd_conf_state *sa = rd_conf_share(&a), *sl = rd_conf_share(&l);
	cr_assert_neq(sa, sl);
	cr_assert_eq(sl->n_learners, 1);
	cr_assert_eq(sl->learners[0], 3);
	rd_conf_release(sa);
	rd_conf_release(sl);
}

Test(conf_shared, assign_to_itself_and_the_empty_configuration)
{
	size_t base = rd_conf_shared_count();
	struct rd_conf_state a = three(5, 6, 7), none;
	memset(&none, 0, sizeof none);
	const struct rd_conf_state *slot = &rd_conf_none;
	rd_conf_assign(&slot, &a);
	cr_assert(rd_conf_equal(slot, &a));
	/* Its own last reference: shared again before it is released. */
	rd_conf_assign(&slot, slot);
	cr_assert(rd_conf_equal(slot, &a));
	cr_assert_eq(rd_conf_shared_count(), base + 1);
	cr_assert_eq(rd_conf_share(&none), &rd_conf_none);
	rd_conf_assign(&slot, &none);
	cr_assert_eq(slot, &rd_conf_none);
	cr_assert_eq(rd_conf_shared_count(), base);
	rd_conf_release(rd_conf_hold(&rd_conf_none)); /* no-ops */
	rd_conf_release(NULL);
}

Test(conf_shared, many_memberships_grow_the_table_and_are_all_found)
{
	enum { N = 500 };
	static const struct rd_conf_state *held[N];
	size_t base = rd_conf_shared_count();
	for (uint64_t i = 0; i < N; i++) {
		struct rd_conf_state cs = three(i + 1, i + 2, i + 3);
		held[i] = rd_conf_share(&cs);
	}
	cr_assert_eq(rd_conf_shared_count(), base + N);
	for (uint64_t i = 0; i < N; i++) {
		struct rd_conf_state cs = three(i + 1, i + 2, i + 3);
		const struct rd_conf_state *again = rd_conf_share(&cs);
		cr_assert_eq(again, held[i]);
		rd_conf_release(again);
	}
	for (size_t i = 0; i < N; i++)
		rd_conf_release(held[i]);
	cr_assert_eq(rd_conf_shared_count(), base);
}

/* Two founding voters of {1, 2, 3}: their cores hold one shared copy,
 * and freeing them releases every configuration they held. */
Test(conf_shared, a_core_releases_every_configuration_it_held)
{
	size_t base = rd_conf_shared_count();
	struct rd_raft_config cfg;
	memset(&cfg, 0, sizeof cfg);
	cfg.group = 1;
	cfg.id = 1;
	cfg.election_ticks = 10;
	cfg.heartbeat_ticks = 1;
	cfg.max_inflight_msgs = 4;
	cfg.max_msg_bytes = 1 << 20;
	cfg.conf = three(1, 2, 3);
	struct rd_raft *r[2];
	char msg[256];
	for (int i = 0; i < 2; i++)
		cr_assert_eq(rd_raft_new(&cfg, &r[i], msg), 0, "%s", msg);
	cr_assert(rd_conf_equal(rd_raft_conf(r[0]), &cfg.conf));
	cr_assert_eq(rd_raft_conf(r[0]), rd_raft_conf(r[1]), "one shared copy");
	rd_raft_free(r[0]);
	rd_raft_free(r[1]);
	cr_assert_eq(rd_conf_shared_count(), base);
}
