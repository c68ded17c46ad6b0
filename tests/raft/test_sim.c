/* Randomized simulation sweep (tests/raft/sim.c): the five safety properties of Raft
 * (paper figure 3: election safety, leader append-only, log matching, leader
 * completeness, state machine safety) hold at every step, and after healing
 * a leader is elected and a proposal commits within a bound (liveness).
 * RD_SIM_SEEDS overrides the number of seeds (the count is printed). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "cluster.h"

#define SLICES 8

static uint64_t seeds_total(void)
{
	const char *s = getenv("RD_SIM_SEEDS");
	if (s != NULL)
		return strtoull(s, NULL, 10);
	return 2000; /* cheap enough to run in full under ASan too */
}

static void run_slice(int slice)
{
	uint64_t total = seeds_total();
	uint64_t per = (total + SLICES - 1) / SLICES;
	uint64_t lo = (uint64_t)slice * per, hi = lo + per > total ? total : lo + per;
	uint64_t bad = 0;
	for (uint64_t seed = lo + 1; seed <= hi; seed++) {
		char why[512] = "";
		if (rc_sim_run(seed, false, why, sizeof(why), NULL) != 0) {
			bad++;
			cr_log_error("seed %llu: %s; replay: make sim SEED=%llu",
			             (unsigned long long)seed, why,
			             (unsigned long long)seed);
		}
	}
	if (slice == 0)
		fprintf(stderr, "simulation: %llu seeds in %d slices\n",
		        (unsigned long long)total, SLICES);
	cr_assert_eq(bad, 0, "%llu of seeds %llu..%llu violated safety or liveness",
	             (unsigned long long)bad, (unsigned long long)lo + 1,
	             (unsigned long long)hi);
}

/* One test per slice of the seeds, so that --jobs runs them side by side. */
#define SLICE_TEST(k)                                                                    \
	Test(sim, seeds_slice_##k, .timeout = 600)                                       \
	{                                                                                \
		run_slice(k);                                                            \
	}

SLICE_TEST(0)
SLICE_TEST(1)
SLICE_TEST(2)
SLICE_TEST(3)
SLICE_TEST(4)
SLICE_TEST(5)
SLICE_TEST(6)
SLICE_TEST(7)
