/* make sim SEEDS=N: run the randomized Raft simulation over seeds 1..N (or
 * one seed with --seed S) and end with
 * "simulation: <N> seeds, <V> violations". A failing seed prints the command
 * that replays it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../raft/cluster.h"

int main(int argc, char **argv)
{
	uint64_t seeds = 2000, first = 1;
	bool verbose = false, one = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seeds") && i + 1 < argc)
			seeds = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
			first = strtoull(argv[++i], NULL, 10);
			one = true;
		} else if (!strcmp(argv[i], "-v"))
			verbose = true;
		else {
			fprintf(stderr, "usage: %s [--seeds N | --seed S] [-v]\n",
			        argv[0]);
			return 2;
		}
	}
	if (one)
		seeds = 1;
	uint64_t bad = 0, st[RC_SIM_NSTATS] = {0};
	time_t t0 = time(NULL);
	for (uint64_t s = first; s < first + seeds; s++) {
		char why[512] = "";
		if (rc_sim_run(s, verbose, why, sizeof(why), st) != 0) {
			bad++;
			printf("seed %llu FAILED: %s\n  replay: make sim SEED=%llu  (or "
			       "%s --seed %llu -v)\n",
			       (unsigned long long)s, why, (unsigned long long)s, argv[0],
			       (unsigned long long)s);
			fflush(stdout);
		}
	}
	printf("coverage: applied=%llu elections=%llu snapshot_installs=%llu reads=%llu "
	       "crashes=%llu lost_updates=%llu conf_changes=%llu transfers=%llu "
	       "compactions=%llu quiesces=%llu peer_down_wakes=%llu "
	       "conf_changes_interrupted=%llu snapshots_at_applied=%llu "
	       "log_source_reads=%llu\n",
	       (unsigned long long)st[0], (unsigned long long)st[1],
	       (unsigned long long)st[2], (unsigned long long)st[3],
	       (unsigned long long)st[4], (unsigned long long)st[5],
	       (unsigned long long)st[6], (unsigned long long)st[7],
	       (unsigned long long)st[8], (unsigned long long)st[9],
	       (unsigned long long)st[10], (unsigned long long)st[11],
	       (unsigned long long)st[12], (unsigned long long)st[13]);
	printf("duration: %ld s\n", (long)(time(NULL) - t0));
	printf("simulation: %llu seeds, %llu violations\n", (unsigned long long)seeds,
	       (unsigned long long)bad);
	return bad ? 1 : 0;
}
