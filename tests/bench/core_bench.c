/*
 * make bench-core: throughput of the pure Raft core. Three nodes in one
 * process on one core; the "disk" is instant (persisted is reported right
 * after each update) and the "network" steps each message straight into its
 * receiver, so the figure is the core's own cost. The leader proposes
 * 64-byte entries in batches; every node compacts its log periodically as a
 * runtime would after a snapshot. Allocations are counted by wrapping
 * malloc/calloc/realloc at link time (-Wl,--wrap) over the measured phase.
 *
 * Prints the setup, then
 *   RESULT core entries_per_s=<n> ns_per_entry=<n> allocs_per_entry=<n>
 * and appends the same figures as CSV to the file named by argv[1].
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raft/raft.h"
#include "util/err.h"
#include "util/clock.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);

static unsigned long long n_allocs;

void *__wrap_malloc(size_t n)
{
	n_allocs++;
	return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
	n_allocs++;
	return __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
	n_allocs++;
	return __real_realloc(p, n);
}

#define NODES         3
#define ENTRY_BYTES   64
#define BATCH         256
#define WARMUP        500000ULL
#define MEASURE       5000000ULL
#define COMPACT_EVERY 65536ULL
#define KEEP          1024ULL

static struct rd_raft *nodes[NODES + 1];
static unsigned long long applied_on_leader;

static unsigned long long n_msgs_total;
static void drain(uint64_t id, uint64_t leader)
{
	struct rd_raft *r = nodes[id];
	while (rd_raft_has_update(r)) {
		struct rd_raft_update u;
		rd_raft_get_update(r, &u);
		/* Messages point into the sender's log until advance: step
		 * them into their receivers now. */
		for (size_t i = 0; i < u.n_msgs; i++)
			rd_raft_step(nodes[u.msgs[i].to], &u.msgs[i]);
		if (u.n_entries > 0)
			rd_raft_persisted(r, u.entries[u.n_entries - 1].index,
			                  u.entries[u.n_entries - 1].term);
		for (size_t i = 0; i < u.n_msgs_after_persist; i++)
			rd_raft_step(nodes[u.msgs_after_persist[i].to],
			             &u.msgs_after_persist[i]);
		n_msgs_total += u.n_msgs + u.n_msgs_after_persist;
		if (id == leader)
			applied_on_leader += u.n_committed;
		rd_raft_advance(r, &u);
		uint64_t applied = rd_raft_applied_index(r);
		if (applied > rd_raft_first_index(r) + COMPACT_EVERY + KEEP)
			rd_raft_compact(r, applied - KEEP, NULL);
	}
}

static double now_s(void)
{
	return (double)rd_clock_now_ns() / 1e9;
}

static void run(unsigned long long entries, uint64_t leader)
{
	static uint8_t payload[ENTRY_BYTES];
	unsigned long long target = applied_on_leader + entries;
	while (applied_on_leader < target) {
		for (int i = 0; i < BATCH; i++) {
			memset(payload, i, sizeof(payload));
			if (rd_raft_propose(nodes[leader], RD_ENTRY_NORMAL, payload,
			                    ENTRY_BYTES, NULL) != 0) {
				fprintf(stderr, "propose failed\n");
				exit(1);
			}
		}
		for (int round = 0; round < 4; round++)
			for (uint64_t id = 1; id <= NODES; id++)
				drain(id, leader);
	}
}

int main(int argc, char **argv)
{
	char msg[RD_ERRMSG_SIZE];
	for (uint64_t id = 1; id <= NODES; id++) {
		struct rd_raft_config cfg = {
		    .group = 1,
		    .id = id,
		    .election_ticks = 10,
		    .heartbeat_ticks = 1,
		    .max_inflight_msgs = 256,
		    .max_msg_bytes = 1 << 20,
		    .pre_vote = true,
		    .check_quorum = true,
		    .seed = id,
		    .conf = {.n_voters = NODES, .voters = {1, 2, 3}},
		};
		if (rd_raft_new(&cfg, &nodes[id], msg) != 0) {
			fprintf(stderr, "rd_raft_new: %s\n", msg);
			return 1;
		}
	}
	rd_raft_campaign(nodes[1]);
	for (int round = 0; round < 10; round++)
		for (uint64_t id = 1; id <= NODES; id++)
			drain(id, 1);
	if (rd_raft_role(nodes[1]) != RD_RAFT_LEADER) {
		fprintf(stderr, "node 1 did not become leader\n");
		return 1;
	}
	printf("bench-core: %d nodes in one process, one core; %d-byte entries, "
	       "proposals in "
	       "batches of %d;\n  instant disk and network; inflight window 256 msgs; "
	       "compaction every %llu entries; %llu warm-up, %llu measured entries\n",
	       NODES, ENTRY_BYTES, BATCH, COMPACT_EVERY, WARMUP, MEASURE);
	run(WARMUP, 1);
	unsigned long long a0 = n_allocs, e0 = applied_on_leader, m0 = n_msgs_total;
	double t0 = now_s();
	run(MEASURE, 1);
	double dt = now_s() - t0;
	unsigned long long e = applied_on_leader - e0, allocs = n_allocs - a0;
	double eps = (double)e / dt, ns = dt * 1e9 / (double)e;
	printf("messages per entry: %.4f\n", (double)(n_msgs_total - m0) / (double)e);
	double ape = (double)allocs / (double)e;
	printf("RESULT core entries_per_s=%.0f ns_per_entry=%.1f allocs_per_entry=%.6f\n",
	       eps, ns, ape);
	if (argc > 1) {
		FILE *f = fopen(argv[1], "a");
		if (f != NULL) {
			fprintf(f,
			        "time,nodes,entry_bytes,batch,entries,entries_per_s,ns_"
			        "per_entry,"
			        "allocs_per_entry\n%ld,%d,%d,%d,%llu,%.0f,%.1f,%.6f\n",
			        (long)time(NULL), NODES, ENTRY_BYTES, BATCH, e, eps, ns,
			        ape);
			fclose(f);
		}
	}
	for (uint64_t id = 1; id <= NODES; id++)
		rd_raft_free(nodes[id]);
	return 0;
}
