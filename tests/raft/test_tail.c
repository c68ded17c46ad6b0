/*
 * The bounded in-memory log (lib/raft/raft.h, "The in-memory tail"): a core
 * given a log source keeps only its newest entries in memory, and the
 * rules of Raft still hold for the entries below: a lagging follower is
 * caught up from the log (§5.3), not by snapshot (§7 is for compacted
 * entries); the terms of evicted entries still answer the consistency check
 * (§5.3) and conflict hints; a failed read sends nothing rather than
 * anything the log does not hold; a quiesced group keeps no entry in memory.
 * The simulated cluster (cluster.h) gives each core a source reading its
 * node's disk and checks Raft's safety properties after every step.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "cluster.h"
#include "util/err.h"

#define BOUND 200 /* bytes: a few entries of 20 bytes (plus 32 each) */

static void cluster(struct rc_cluster *c, uint32_t n, bool quiesce)
{
	rc_init(c, 1);
	c->log_source = true;
	c->base.log_mem_bytes = BOUND;
	c->base.quiesce = c->liveness = quiesce;
	rc_add_voters(c, n);
}

static void done(struct rc_cluster *c)
{
	cr_assert_eq(c->violations, 0, "%s", c->violation);
	rc_free(c);
}

/* `ticks` ticks of every running node, each followed by a full drain. */
static void run(struct rc_cluster *c, int ticks)
{
	for (int i = 0; i < ticks; i++) {
		c->now++;
		for (uint64_t id = 1; id <= RC_MAX; id++)
			if (c->nodes[id].up)
				rd_raft_tick(c->nodes[id].r);
		rc_liveness(c);
		rc_stabilize(c);
	}
}

static void elect(struct rc_cluster *c, uint64_t id)
{
	cr_assert_eq(rd_raft_campaign(c->nodes[id].r), 0);
	rc_stabilize(c);
	cr_assert_eq(rd_raft_role(c->nodes[id].r), RD_RAFT_LEADER);
}

/* Three nodes without quiescence; node 1 elected. */
static void led(struct rc_cluster *c)
{
	cluster(c, 3, false);
	elect(c, 1);
}

static void propose(struct rc_cluster *c, uint64_t id, int n)
{
	for (int i = 0; i < n; i++) {
		char d[21];
		snprintf(d, sizeof d, "entry-%014d", i);
		cr_assert_eq(
		    rd_raft_propose(c->nodes[id].r, RD_ENTRY_NORMAL, d, 20, NULL), 0);
		rc_stabilize(c);
	}
}

/* Three nodes, node 1 leading; node 3 goes down and node 1 appends `n`
 * entries it misses. Returns the last index node 3 holds. */
static uint64_t lagging(struct rc_cluster *c, int n)
{
	led(c);
	rc_crash(c, 3);
	propose(c, 1, n);
	return rd_raft_last_index(c->nodes[1].r) - (uint64_t)n;
}

/* 30 ticks, after which node 3 holds node 1's whole log. */
static void catch_up(struct rc_cluster *c)
{
	run(c, 30);
	cr_assert_eq(rd_raft_last_index(c->nodes[3].r),
	             rd_raft_last_index(c->nodes[1].r));
}

/* Three quiesced nodes (config quiesce=1) after a few entries of node 1's. */
static void quiesced(struct rc_cluster *c)
{
	cluster(c, 3, true);
	elect(c, 1);
	propose(c, 1, 5);
	run(c, 40);
}

static struct rd_raft_log_stats stats(struct rc_cluster *c, uint64_t id)
{
	struct rd_raft_log_stats s;
	rd_raft_log_stats(c->nodes[id].r, &s);
	return s;
}

Test(tail, the_tail_stays_within_its_bound_and_the_log_keeps_every_entry)
{
	struct rc_cluster c;
	led(&c);
	propose(&c, 1, 40);
	for (uint64_t id = 1; id <= 3; id++) {
		struct rd_raft *r = c.nodes[id].r;
		struct rd_raft_log_stats s = stats(&c, id);
		cr_assert_eq(rd_raft_applied_index(r), rd_raft_last_index(r));
		cr_assert_leq(s.mem_bytes, BOUND, "node %llu holds %llu bytes",
		              (unsigned long long)id, (unsigned long long)s.mem_bytes);
		cr_assert_gt(s.mem_first, 30, "old entries left memory");
		cr_assert_eq(rd_raft_first_index(r), 1, "but not the log: no compaction");
	}
	done(&c);
}

Test(tail, s5_3_a_follower_behind_the_tail_catches_up_from_the_log_not_by_snapshot)
{
	struct rc_cluster c;
	uint64_t behind = lagging(&c, 40);
	struct rd_raft *l = c.nodes[1].r;
	cr_assert_gt(stats(&c, 1).mem_first, behind + 1,
	             "what node 3 lacks is below the leader's tail");
	rc_start(&c, 3);
	catch_up(&c);
	cr_assert_eq(rd_raft_applied_index(c.nodes[3].r), rd_raft_commit(l));
	cr_assert_eq(c.st_snap_installs, 0, "caught up from the log");
	cr_assert_gt(stats(&c, 1).source_reads, 0);
	cr_assert_eq(stats(&c, 1).source_errors, 0);
	done(&c);
}

Test(tail, s5_3_terms_below_the_tail_are_the_logs)
{
	struct rc_cluster c;
	led(&c);
	propose(&c, 1, 10);
	rc_crash(&c, 3); /* misses terms 3 and 4 */
	elect(&c, 2);    /* term 3 */
	propose(&c, 2, 10);
	elect(&c, 1); /* term 4 */
	propose(&c, 1, 20);
	for (uint64_t id = 1; id <= 2; id++) {
		struct rd_raft *r = c.nodes[id].r;
		const struct rc_disk *d = &c.nodes[id].disk;
		cr_assert_gt(stats(&c, id).mem_first, 30, "entries of three terms left");
		cr_assert_eq(d->snap.index, 0);
		for (uint64_t i = 1; i <= rd_raft_last_index(r); i++)
			cr_assert_eq(rd_raft_term_at(r, i), d->ents[i - 1].e.term,
			             "node %llu: term at %llu", (unsigned long long)id,
			             (unsigned long long)i);
	}
	/* The leader's appends to node 3 start below its tail, at a previous
	 * entry of term 2 whose term it knows without reading (§5.3). */
	rc_start(&c, 3);
	catch_up(&c);
	cr_assert_eq(c.st_snap_installs, 0);
	done(&c);
}

Test(tail, s5_3_an_evicted_last_entry_still_answers_the_consistency_check)
{
	struct rc_cluster c;
	quiesced(&c);
	struct rd_raft *f = c.nodes[3].r;
	uint64_t last = rd_raft_last_index(f);
	cr_assert_eq(stats(&c, 3).mem_entries, 0, "quiesced: nothing in memory");
	cr_assert_eq(rd_raft_commit(f), last);
	struct rd_message m = {.type = RD_MSG_APPEND,
	                       .group = rd_raft_group(f),
	                       .from = 1,
	                       .to = 3,
	                       .term = rd_raft_term(f),
	                       .index = last,
	                       .log_term = rd_raft_term_at(f, last) + 1,
	                       .commit = last};
	cr_assert_eq(rd_raft_step(f, &m), 0);
	struct rd_raft_update u;
	rd_raft_get_update(f, &u);
	cr_assert_eq(u.n_msgs_after_persist, 1);
	cr_assert(u.msgs_after_persist[0].reject, "a wrong term at an evicted entry");
	cr_assert_eq(u.msgs_after_persist[0].conflict_term, rd_raft_term_at(f, last));
	rd_raft_advance(f, &u);
	m.log_term = rd_raft_term_at(f, last);
	cr_assert_eq(rd_raft_step(f, &m), 0);
	rd_raft_get_update(f, &u);
	cr_assert_eq(u.n_msgs_after_persist, 1);
	cr_assert_not(u.msgs_after_persist[0].reject, "the right one");
	rd_raft_advance(f, &u);
	cr_assert_eq(rd_raft_last_index(f), last);
	done(&c);
}

/* Node 3, `had` entries behind, restarts while node 1's log source
 * misbehaves (`*fault` set): in 30 ticks no entry reaches it and node 1
 * counts source errors; the fault cleared, it catches up. Returns the
 * errors counted while the fault lasted. */
static uint64_t catch_up_after_fault(struct rc_cluster *c, uint64_t had, bool *fault)
{
	*fault = true;
	rc_start(c, 3);
	run(c, 30);
	cr_assert_leq(rd_raft_last_index(c->nodes[3].r), had,
	              "no entry reached node 3 without a good read");
	uint64_t errors = stats(c, 1).source_errors;
	cr_assert_gt(errors, 0);
	*fault = false;
	catch_up(c);
	return errors;
}

Test(tail, a_failed_log_read_sends_nothing_and_is_retried)
{
	struct rc_cluster c;
	uint64_t had = lagging(&c, 40);
	uint64_t errors = catch_up_after_fault(&c, had, &c.nodes[1].src_fail);
	cr_assert_gt(errors, 1, "counted, and tried again");
	cr_assert_eq(stats(&c, 1).source_errors, errors);
	cr_assert_eq(c.st_snap_installs, 0);
	done(&c);
}

Test(tail, s5_3_entries_the_log_does_not_hold_are_refused)
{
	struct rc_cluster c;
	uint64_t had = lagging(&c, 40);
	/* The source answers with an entry whose term is not the log's. */
	catch_up_after_fault(&c, had, &c.nodes[1].src_bad_term);
	done(&c); /* log matching held at every step (checker.c) */
}

Test(tail, a_quiesced_group_holds_no_entry_in_memory)
{
	struct rc_cluster c;
	quiesced(&c);
	for (uint64_t id = 1; id <= 3; id++) {
		struct rd_raft_log_stats s = stats(&c, id);
		cr_assert(rd_raft_quiesced(c.nodes[id].r), "node %llu quiesced",
		          (unsigned long long)id);
		cr_assert_eq(s.mem_entries, 0);
		cr_assert_eq(s.mem_bytes, 0);
		cr_assert_eq(s.mem_first, rd_raft_last_index(c.nodes[id].r) + 1);
	}
	/* It wakes and works as before; the last term is still known for
	 * the up-to-date check (§5.4.1). */
	uint64_t last = rd_raft_last_index(c.nodes[1].r);
	cr_assert_eq(rd_raft_term_at(c.nodes[2].r, last), rd_raft_term(c.nodes[1].r));
	propose(&c, 1, 3);
	run(&c, 5);
	cr_assert_eq(rd_raft_applied_index(c.nodes[2].r), last + 3);
	done(&c);
}

Test(tail, a_restart_keeps_unapplied_entries_in_memory_until_applied)
{
	struct rc_cluster c;
	led(&c);
	propose(&c, 1, 40);
	rc_crash(&c, 2);
	rc_start(&c, 2); /* the harness's state machine restarts empty */
	struct rd_raft *r = c.nodes[2].r;
	struct rd_raft_log_stats s = stats(&c, 2);
	cr_assert_eq(rd_raft_applied_index(r), 0);
	cr_assert_eq(s.mem_first, 1, "nothing unapplied left memory");
	rc_stabilize(&c);
	cr_assert_eq(rd_raft_applied_index(r), rd_raft_commit(c.nodes[1].r));
	cr_assert_leq(stats(&c, 2).mem_bytes, BOUND);
	cr_assert_eq(stats(&c, 2).source_reads, 0, "replayed from memory");
	done(&c);
}

Test(tail, s7_compaction_below_the_tail_keeps_the_membership_at_its_index)
{
	struct rc_cluster c;
	cluster(&c, 3, false);
	rc_add(&c, 4, NULL, 0);
	rc_start(&c, 4);
	elect(&c, 1);
	propose(&c, 1, 5);
	struct rd_raft *l = c.nodes[1].r;
	uint64_t cc;
	cr_assert_eq(rd_raft_propose_conf_change(l, RD_CC_ADD_LEARNER, 4, NULL, 0, &cc),
	             0);
	rc_stabilize(&c);
	propose(&c, 1, 40);
	cr_assert_gt(stats(&c, 1).mem_first, cc + 1, "the change left memory");
	struct rd_snapshot_meta meta;
	cr_assert_eq(rd_raft_compact(l, cc - 1, &meta), 0);
	cr_assert_eq(meta.conf.n_learners, 0, "before the change");
	cr_assert_eq(rd_raft_compact(l, cc + 2, &meta), 0);
	cr_assert_eq(meta.conf.n_learners, 1, "after it");
	cr_assert_eq(meta.conf.learners[0], 4);
	cr_assert_eq(meta.term, rd_raft_term(l));
	cr_assert_eq(rd_raft_conf(l)->n_learners, 1);
	done(&c);
}
