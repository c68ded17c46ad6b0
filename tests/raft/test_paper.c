/*
 * One test per rule of the Raft paper (§5.1-5.4, §7) and of the thesis rules
 * the core implements (pre-vote §9.6, check-quorum §6.2, lease §4.2.3,
 * transfer §3.10, ReadIndex §6.4, membership §4.1-4.2, §10.2.1). Single-node
 * tests step hand-made messages into one core; the rest use the simulated
 * cluster (cluster.h). Each test names the rule it checks.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "cluster.h"
#include "util/err.h"

/* --- helpers ------------------------------------------------------------------ */

/* The configuration of member `id` of group 7 the tests start from. */
static struct rd_raft_config config(uint64_t id)
{
	struct rd_raft_config cfg = {
	    .group = 7,
	    .id = id,
	    .election_ticks = 10,
	    .heartbeat_ticks = 1,
	    .max_inflight_msgs = 4,
	    .max_msg_bytes = 1 << 16,
	    .seed = 42,
	};
	return cfg;
}

/* A core made from `cfg`, which must be valid. */
static struct rd_raft *make(const struct rd_raft_config *cfg)
{
	struct rd_raft *r = NULL;
	char msg[RD_ERRMSG_SIZE];
	cr_assert_eq(rd_raft_new(cfg, &r, msg), 0, "%s", msg);
	return r;
}

static struct rd_raft *node(uint64_t id, uint32_t n_voters, bool pre_vote,
                            bool check_quorum)
{
	struct rd_raft_config cfg = config(id);
	cfg.pre_vote = pre_vote;
	cfg.check_quorum = check_quorum;
	cfg.conf.n_voters = n_voters;
	for (uint32_t i = 0; i < n_voters; i++)
		cfg.conf.voters[i] = i + 1;
	return make(&cfg);
}

/* What the last drain() collected. Each test runs in its own process. */
static struct rd_message out[256];

/* Drain updates, persisting instantly; collect every message sent into out[]
 * (their entries are not valid after advance). Returns how many. */
static size_t drain(struct rd_raft *r)
{
	const size_t cap = sizeof out / sizeof out[0];
	size_t n = 0;
	while (rd_raft_has_update(r)) {
		struct rd_raft_update u;
		rd_raft_get_update(r, &u);
		for (size_t i = 0; i < u.n_msgs && n < cap; i++)
			out[n++] = u.msgs[i];
		if (u.n_entries)
			rd_raft_persisted(r, u.entries[u.n_entries - 1].index,
			                  u.entries[u.n_entries - 1].term);
		for (size_t i = 0; i < u.n_msgs_after_persist && n < cap; i++)
			out[n++] = u.msgs_after_persist[i];
		for (size_t i = 0; i < n; i++)
			out[i].entries = NULL; /* not valid after advance */
		rd_raft_advance(r, &u);
	}
	return n;
}

/* Step `m` into `r`. */
static int step(struct rd_raft *r, struct rd_message m)
{
	return rd_raft_step(r, &m);
}

/* Step `m` into `r` and drain (as drain()). */
static size_t deliver(struct rd_raft *r, struct rd_message m)
{
	step(r, m);
	return drain(r);
}

/* A core (node() parameters) that has handled its start-up update. */
static struct rd_raft *started(uint64_t id, uint32_t n_voters, bool pre_vote,
                               bool check_quorum)
{
	struct rd_raft *r = node(id, n_voters, pre_vote, check_quorum);
	drain(r);
	return r;
}

/* A started core of `n_voters` that campaigned and sent its vote requests. */
static struct rd_raft *candidate(uint64_t id, uint32_t n_voters)
{
	struct rd_raft *r = started(id, n_voters, false, false);
	rd_raft_campaign(r);
	drain(r);
	return r;
}

static struct rd_message msg(uint8_t type, uint64_t from, uint64_t to, uint64_t term)
{
	struct rd_message m = {
	    .type = type, .group = 7, .from = from, .to = to, .term = term};
	return m;
}

/* A RequestVote from a candidate whose last entry is (index, log_term). */
static struct rd_message vote_req(uint64_t from, uint64_t to, uint64_t term,
                                  uint64_t index, uint64_t log_term)
{
	struct rd_message v = msg(RD_MSG_VOTE, from, to, term);
	v.index = index;
	v.log_term = log_term;
	return v;
}

/* A vote from `from` for node 1 in `term` (refused when `reject`). */
static struct rd_message vote_resp(uint64_t from, uint64_t term, bool reject)
{
	struct rd_message g = msg(RD_MSG_VOTE_RESP, from, 1, term);
	g.reject = reject;
	return g;
}

/* An AppendEntries of entries e[0..n) after (prev, prev_term). */
static struct rd_message append_req(uint64_t from, uint64_t to, uint64_t term,
                                    uint64_t prev, uint64_t prev_term, uint64_t commit,
                                    struct rd_entry *e, size_t n)
{
	struct rd_message a = msg(RD_MSG_APPEND, from, to, term);
	a.index = prev;
	a.log_term = prev_term;
	a.commit = commit;
	a.entries = e;
	a.n_entries = n;
	return a;
}

/* Voters ids[0..n) into `cs`. */
static void set_voters(struct rd_conf_state *cs, const uint64_t *ids, uint32_t n)
{
	cs->n_voters = n;
	for (uint32_t i = 0; i < n; i++)
		cs->voters[i] = ids[i];
}

static size_t count(const struct rd_message *m, size_t n, uint8_t type)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += m[i].type == type;
	return k;
}

static void elect(struct rc_cluster *c, uint64_t id)
{
	rd_raft_campaign(c->nodes[id].r);
	rc_stabilize(c);
	cr_assert_eq(rd_raft_role(c->nodes[id].r), RD_RAFT_LEADER);
}

static void cluster(struct rc_cluster *c, uint32_t n)
{
	rc_init(c, 1);
	rc_add_voters(c, n);
}

/* A cluster of voters 1..n that elected node 1. */
static void led(struct rc_cluster *c, uint32_t n)
{
	cluster(c, n);
	elect(c, 1);
}

static void done(struct rc_cluster *c)
{
	cr_assert_eq(c->violations, 0, "%s", c->violation);
	rc_free(c);
}

/* --- §5.1 terms ----------------------------------------------------------------- */

Test(paper, s5_1_higher_term_makes_any_server_a_follower)
{
	struct rc_cluster c;
	led(&c, 3);
	struct rd_message m = msg(RD_MSG_APPEND_RESP, 2, 1, 9);
	m.group = rd_raft_group(c.nodes[1].r);
	cr_assert_eq(rd_raft_step(c.nodes[1].r, &m), 0);
	cr_assert_eq(rd_raft_role(c.nodes[1].r), RD_RAFT_FOLLOWER);
	cr_assert_eq(rd_raft_term(c.nodes[1].r), 9);
	cr_assert_eq(rd_raft_vote(c.nodes[1].r), 0, "a new term starts with no vote");
	done(&c);
}

Test(paper, s5_1_stale_term_requests_are_rejected)
{
	struct rd_raft *r = started(1, 3, false, false);
	deliver(r, msg(RD_MSG_HEARTBEAT, 2, 1, 5));
	cr_assert_eq(deliver(r, vote_req(3, 1, 4, 100, 4)), 0,
	             "a stale vote request is ignored");
	cr_assert_eq(rd_raft_term(r), 5);
	cr_assert_eq(rd_raft_vote(r), 0);
	rd_raft_free(r);
}

/* --- §5.2 leader election ------------------------------------------------------ */

Test(paper, s5_2_follower_campaigns_after_randomized_timeout)
{
	struct rd_raft *r = started(1, 3, false, false);
	int ticks = 0;
	while (rd_raft_role(r) == RD_RAFT_FOLLOWER && ticks < 100) {
		rd_raft_tick(r);
		ticks++;
	}
	cr_assert(ticks >= 10 && ticks < 20, "timeout %d not in [T, 2T)", ticks);
	cr_assert_eq(rd_raft_role(r), RD_RAFT_CANDIDATE);
	cr_assert_eq(rd_raft_term(r), 2);
	cr_assert_eq(rd_raft_vote(r), 1, "a candidate votes for itself");
	size_t n = drain(r);
	cr_assert_eq(count(out, n, RD_MSG_VOTE), 2,
	             "RequestVote goes to every other voter");
	rd_raft_free(r);
}

Test(paper, s5_2_timeouts_are_randomized_per_node)
{
	int seen[20] = {0}, distinct = 0;
	for (uint64_t id = 1; id <= 8; id++) {
		struct rd_raft *r = node(id, 8, false, false);
		int ticks = 0;
		while (rd_raft_role(r) == RD_RAFT_FOLLOWER && ticks < 100) {
			rd_raft_tick(r);
			ticks++;
		}
		cr_assert(ticks >= 10 && ticks < 20);
		distinct += seen[ticks]++ == 0;
		rd_raft_free(r);
	}
	cr_assert_geq(distinct, 3, "8 nodes drew only %d distinct timeouts", distinct);
}

Test(paper, s5_2_majority_of_votes_wins)
{
	struct rd_raft *r = candidate(1, 5);
	step(r, vote_resp(2, 2, false));
	cr_assert_eq(rd_raft_role(r), RD_RAFT_CANDIDATE, "2 of 5 is not a majority");
	step(r, vote_resp(3, 2, false));
	cr_assert_eq(rd_raft_role(r), RD_RAFT_LEADER);
	rd_raft_free(r);
}

Test(paper, s5_2_candidate_loses_on_majority_of_rejections)
{
	struct rd_raft *r = candidate(1, 3);
	step(r, vote_resp(2, 2, true));
	step(r, vote_resp(3, 2, true));
	cr_assert_eq(rd_raft_role(r), RD_RAFT_FOLLOWER);
	rd_raft_free(r);
}

Test(paper, s5_2_candidate_yields_to_leader_of_same_term)
{
	struct rd_raft *r = candidate(1, 3);
	step(r, msg(RD_MSG_HEARTBEAT, 2, 1, 2));
	cr_assert_eq(rd_raft_role(r), RD_RAFT_FOLLOWER);
	cr_assert_eq(rd_raft_leader(r), 2);
	rd_raft_free(r);
}

Test(paper, s5_2_split_vote_retries_in_a_new_term)
{
	struct rd_raft *r = candidate(1, 3);
	for (int i = 0; i < 20 && rd_raft_term(r) == 2; i++)
		rd_raft_tick(r);
	cr_assert_eq(rd_raft_term(r), 3,
	             "an unresolved election times out into a new one");
	cr_assert_eq(rd_raft_role(r), RD_RAFT_CANDIDATE);
	rd_raft_free(r);
}

Test(paper, s5_2_one_vote_per_term)
{
	struct rd_raft *r = started(1, 3, false, false);
	struct rd_message v = vote_req(2, 1, 2, 3, 1);
	rd_raft_step(r, &v);
	size_t n = drain(r);
	cr_assert_eq(n, 1);
	cr_assert_not(out[0].reject);
	v.from = 3;
	rd_raft_step(r, &v);
	n = drain(r);
	cr_assert_eq(n, 1);
	cr_assert(out[0].reject, "a second candidate in the same term is refused");
	v.from = 2;
	rd_raft_step(r, &v);
	n = drain(r);
	cr_assert_not(out[0].reject,
	              "the same candidate asking again gets the same answer");
	rd_raft_free(r);
}

Test(paper, s5_2_leader_heartbeats_every_interval)
{
	struct rc_cluster c;
	led(&c, 3);
	struct rd_raft *r = c.nodes[1].r;
	rd_raft_tick(r);
	struct rd_raft_update u;
	rd_raft_get_update(r, &u);
	cr_assert_eq(count(u.msgs, u.n_msgs, RD_MSG_HEARTBEAT), 2);
	rd_raft_advance(r, &u);
	done(&c);
}

/* --- §5.3 log replication --------------------------------------------------------- */

Test(paper, s5_3_follower_rejects_append_without_matching_prev)
{
	struct rd_raft *r = started(2, 3, false, false);
	struct rd_entry e = {.term = 2, .index = 6, .type = RD_ENTRY_NORMAL};
	struct rd_message a = append_req(1, 2, 2, 5, 2, 0, &e, 1);
	rd_raft_step(r, &a);
	size_t n = drain(r);
	cr_assert_eq(n, 1);
	cr_assert_eq(out[0].type, RD_MSG_APPEND_RESP);
	cr_assert(out[0].reject);
	cr_assert_eq(out[0].reject_hint, 3, "hint = follower's last index");
	cr_assert_eq(rd_raft_last_index(r), 3, "nothing appended");
	rd_raft_free(r);
}

/* A heartbeat response resumes sending to a follower whose probe may have
 * been lost, but responses to duplicated or delayed heartbeats (§5.3: the
 * network may duplicate and delay messages; a backlog queued while the
 * follower was down arrives at once) resume it once per heartbeat interval,
 * not once each: every resumption resends up to max_msg_bytes. */
static size_t appends_to(const struct rd_message *m, size_t n, uint64_t to)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += m[i].type == RD_MSG_APPEND && m[i].to == to;
	return k;
}

Test(paper, s5_3_duplicated_heartbeat_responses_resend_a_probe_once)
{
	struct rd_raft *r = candidate(1, 3);
	step(r, msg(RD_MSG_VOTE_RESP, 2, 1, rd_raft_term(r)));
	cr_assert_eq(rd_raft_role(r), RD_RAFT_LEADER);
	size_t n = drain(r);
	cr_assert_eq(appends_to(out, n, 3), 1, "the first probe to the silent follower");

	for (int i = 0; i < 50; i++) {
		struct rd_message hr = msg(RD_MSG_HEARTBEAT_RESP, 3, 1, rd_raft_term(r));
		rd_raft_step(r, &hr);
	}
	n = drain(r);
	cr_assert_eq(appends_to(out, n, 3), 1,
	             "50 responses in one heartbeat interval resend the probe once");

	rd_raft_tick(r); /* heartbeat_ticks = 1: the next interval */
	drain(r);
	n = deliver(r, msg(RD_MSG_HEARTBEAT_RESP, 3, 1, rd_raft_term(r)));
	cr_assert_eq(appends_to(out, n, 3), 1, "a later interval resends it again");
	rd_raft_free(r);
}

Test(paper, s5_3_follower_deletes_conflicting_suffix)
{
	struct rd_raft *r = started(2, 3, false, false);
	struct rd_entry e[3] = {
	    {.term = 2, .index = 4}, {.term = 2, .index = 5}, {.term = 2, .index = 6}};
	deliver(r, append_req(1, 2, 2, 3, 1, 0, e, 3));
	cr_assert_eq(rd_raft_last_index(r), 6);
	struct rd_entry f = {.term = 3, .index = 5};
	deliver(r, append_req(3, 2, 3, 4, 2, 0, &f, 1));
	cr_assert_eq(rd_raft_last_index(r), 5,
	             "entry 6 followed the conflict and is gone");
	cr_assert_eq(rd_raft_term_at(r, 5), 3);
	cr_assert_eq(rd_raft_term_at(r, 4), 2, "the matching prefix stays");
	rd_raft_free(r);
}

Test(paper, s5_3_follower_commit_is_min_of_leader_commit_and_last_new)
{
	struct rd_raft *r = started(2, 3, false, false);
	struct rd_entry e = {.term = 2, .index = 4};
	deliver(r, append_req(1, 2, 2, 3, 1, 10, &e, 1));
	cr_assert_eq(rd_raft_commit(r), 4);
	cr_assert_eq(rd_raft_applied_index(r), 4,
	             "committed entries are handed out to apply");
	rd_raft_free(r);
}

Test(paper, s5_3_leader_commits_on_majority_and_followers_apply_in_order)
{
	struct rc_cluster c;
	led(&c, 5);
	rc_crash(&c, 4);
	rc_crash(&c, 5);
	uint64_t idx;
	cr_assert_eq(rd_raft_propose(c.nodes[1].r, RD_ENTRY_NORMAL, "a", 1, &idx), 0);
	rc_stabilize(&c);
	cr_assert_eq(rd_raft_commit(c.nodes[1].r), idx, "3 of 5 replicas commit");
	for (uint64_t id = 1; id <= 3; id++)
		cr_assert_eq(c.nodes[id].sm_index, idx);
	done(&c);
}

/* --- §5.4 safety -------------------------------------------------------------------- */

Test(paper, s5_4_1_vote_denied_to_log_with_older_last_term)
{
	struct rd_raft *r = started(2, 3, false, false);
	deliver(r, vote_req(3, 2, 2, 50, 0));
	cr_assert(out[0].reject, "a longer log of an older term is less up to date");
	rd_raft_free(r);
}

Test(paper, s5_4_1_vote_denied_to_shorter_log_of_same_term)
{
	struct rd_raft *r = started(2, 3, false, false);
	deliver(r, vote_req(3, 2, 2, 2, 1));
	cr_assert(out[0].reject);
	rd_raft_free(r);
}

Test(paper, s5_4_2_no_commit_of_old_term_entry_by_counting)
{
	struct rd_raft *r = started(1, 3, false, false);
	/* An old-term entry 4 arrives from a term-2 leader, uncommitted. */
	struct rd_entry e = {.term = 2, .index = 4};
	struct rd_message a = append_req(2, 1, 2, 3, 1, 3, &e, 1);
	rd_raft_step(r, &a);
	drain(r);
	for (int i = 0; i < 30 && rd_raft_role(r) != RD_RAFT_CANDIDATE; i++)
		rd_raft_tick(r);
	drain(r);
	step(r, msg(RD_MSG_VOTE_RESP, 3, 1, rd_raft_term(r)));
	cr_assert_eq(rd_raft_role(r), RD_RAFT_LEADER);
	drain(r);
	/* Node 3 acknowledges entry 4 only: a majority holds it, but it is of
	 * term 2, so it is not committed by counting. */
	struct rd_message ack = msg(RD_MSG_APPEND_RESP, 3, 1, rd_raft_term(r));
	ack.index = 4;
	rd_raft_step(r, &ack);
	drain(r);
	cr_assert_eq(rd_raft_commit(r), 3);
	ack.index = 5; /* the no-op of the current term */
	rd_raft_step(r, &ack);
	drain(r);
	cr_assert_eq(rd_raft_commit(r), 5, "committing the no-op commits entry 4 too");
	rd_raft_free(r);
}

/* --- §7 snapshots --------------------------------------------------------------------
 */

Test(paper, s7_snapshot_replaces_log_and_membership)
{
	struct rd_raft *r = started(2, 3, false, false);
	struct rd_message s = msg(RD_MSG_SNAPSHOT, 1, 2, 4);
	s.snapshot.index = 40;
	s.snapshot.term = 3;
	set_voters(&s.snapshot.conf, (const uint64_t[]){1, 2, 3, 9}, 4);
	rd_raft_step(r, &s);
	struct rd_raft_update u;
	rd_raft_get_update(r, &u);
	cr_assert(u.has_snapshot);
	cr_assert_eq(u.snapshot.index, 40);
	cr_assert_eq(u.n_msgs, 0, "the ack waits for the install");
	cr_assert_eq(u.n_msgs_after_persist, 1);
	cr_assert_eq(u.msgs_after_persist[0].index, 40);
	rd_raft_advance(r, &u);
	cr_assert_eq(rd_raft_first_index(r), 41);
	cr_assert_eq(rd_raft_commit(r), 40);
	cr_assert_eq(rd_raft_applied_index(r), 40);
	cr_assert_eq(rd_raft_conf(r)->n_voters, 4);
	rd_raft_free(r);
}

Test(paper, s7_compaction_only_up_to_applied)
{
	struct rc_cluster c;
	led(&c, 3);
	struct rd_raft *r = c.nodes[1].r;
	struct rd_snapshot_meta meta;
	cr_assert_eq(rd_raft_compact(r, rd_raft_applied_index(r) + 1, &meta), RD_EINVAL);
	cr_assert_eq(rd_raft_compact(r, 3, &meta), 0);
	cr_assert_eq(meta.index, 3);
	cr_assert_eq(meta.term, 1);
	cr_assert_eq(meta.conf.n_voters, 3, "the membership at the compaction point");
	cr_assert_eq(rd_raft_first_index(r), 4);
	done(&c);
}

/* --- thesis rules ----------------------------------------------------------------------
 */

Test(paper, t9_6_pre_vote_does_not_raise_the_term)
{
	struct rd_raft *r = started(1, 3, true, false);
	rd_raft_campaign(r);
	cr_assert_eq(rd_raft_role(r), RD_RAFT_PRE_CANDIDATE);
	cr_assert_eq(rd_raft_term(r), 1);
	size_t n = drain(r);
	cr_assert_eq(count(out, n, RD_MSG_PRE_VOTE), 2);
	cr_assert_eq(out[0].term, 2, "pre-vote asks about the term it would use");
	step(r, msg(RD_MSG_PRE_VOTE_RESP, 2, 1, 2));
	cr_assert_eq(rd_raft_role(r), RD_RAFT_CANDIDATE);
	cr_assert_eq(rd_raft_term(r), 2, "the real election follows a won pre-vote");
	rd_raft_free(r);
}

Test(paper, t6_2_check_quorum_leader_steps_down)
{
	struct rc_cluster c;
	rc_init(&c, 1);
	c.base.check_quorum = true;
	rc_add_voters(&c, 3);
	elect(&c, 1);
	rc_crash(&c, 2);
	rc_crash(&c, 3);
	for (int i = 0; i < 20; i++)
		rd_raft_tick(c.nodes[1].r);
	cr_assert_eq(rd_raft_role(c.nodes[1].r), RD_RAFT_FOLLOWER);
	done(&c);
}

Test(paper, t4_2_3_lease_ignores_disruptive_votes)
{
	struct rd_raft *r = started(2, 3, false, true);
	deliver(r, msg(RD_MSG_HEARTBEAT, 1, 2, 2));
	struct rd_message v = vote_req(3, 2, 5, 100, 4);
	rd_raft_step(r, &v);
	cr_assert_eq(drain(r), 0);
	cr_assert_eq(rd_raft_term(r), 2, "the lease kept the term");
	v.context = RD_RAFT_CTX_TRANSFER;
	rd_raft_step(r, &v);
	size_t n = drain(r);
	cr_assert_eq(n, 1);
	cr_assert_not(out[0].reject, "a transfer campaign is not blocked by the lease");
	rd_raft_free(r);
}

/* A node forbidden to campaign (the runtime does it while its disk is
 * slow) starts no election on its timeout, nor on TIMEOUT_NOW (§3.10):
 * the transfer is abandoned after an election timeout and the leader stays.
 * Allowed again, it campaigns as usual. */
Test(paper, t3_10_a_node_forbidden_to_campaign_ignores_timeouts_and_timeout_now)
{
	struct rd_raft *r = started(1, 3, false, false);
	rd_raft_set_campaign(r, false);
	cr_assert_not(rd_raft_campaign_allowed(r));
	for (int i = 0; i < 100; i++)
		rd_raft_tick(r);
	cr_assert_eq(rd_raft_role(r), RD_RAFT_FOLLOWER);
	cr_assert_eq(rd_raft_campaign(r), RD_EBUSY);
	struct rd_message tn = msg(RD_MSG_TIMEOUT_NOW, 2, 1, 1);
	cr_assert_eq(rd_raft_step(r, &tn), 0);
	cr_assert_eq(rd_raft_role(r), RD_RAFT_FOLLOWER);
	cr_assert_eq(rd_raft_term(r), 1);
	rd_raft_set_campaign(r, true);
	for (int i = 0; i < 20 && rd_raft_role(r) == RD_RAFT_FOLLOWER; i++)
		rd_raft_tick(r);
	cr_assert_eq(rd_raft_role(r), RD_RAFT_CANDIDATE);
	rd_raft_free(r);

	struct rc_cluster c;
	led(&c, 3);
	rd_raft_set_campaign(c.nodes[3].r, false);
	cr_assert_eq(rd_raft_transfer_leader(c.nodes[1].r, 3), 0);
	rc_stabilize(&c);
	cr_assert_eq(rd_raft_role(c.nodes[3].r), RD_RAFT_FOLLOWER);
	for (int i = 0; i < 30; i++) {
		rd_raft_tick(c.nodes[1].r);
		rc_stabilize(&c);
	}
	cr_assert_eq(rd_raft_role(c.nodes[1].r), RD_RAFT_LEADER);
	cr_assert_eq(rd_raft_transferee(c.nodes[1].r), 0, "the transfer was abandoned");
	cr_assert_eq(rd_raft_propose(c.nodes[1].r, RD_ENTRY_NORMAL, "x", 1, NULL), 0);
	done(&c);
}

Test(paper, t3_10_transfer_refuses_proposals_and_completes)
{
	struct rc_cluster c;
	led(&c, 3);
	cr_assert_eq(rd_raft_transfer_leader(c.nodes[1].r, 3), 0);
	cr_assert_eq(rd_raft_propose(c.nodes[1].r, RD_ENTRY_NORMAL, "x", 1, NULL),
	             RD_EBUSY);
	rc_stabilize(&c);
	cr_assert_eq(rd_raft_role(c.nodes[3].r), RD_RAFT_LEADER);
	cr_assert_eq(rd_raft_role(c.nodes[1].r), RD_RAFT_FOLLOWER);
	done(&c);
}

Test(paper, t6_4_read_index_waits_for_quorum_and_apply)
{
	struct rd_raft *r = candidate(1, 3);
	deliver(r, msg(RD_MSG_VOTE_RESP, 2, 1, 2));
	struct rd_message ack = msg(RD_MSG_APPEND_RESP, 2, 1, 2);
	ack.index = 4;
	rd_raft_step(r, &ack);
	drain(r);
	cr_assert_eq(rd_raft_commit(r), 4);
	cr_assert_eq(rd_raft_read_index(r, 77), 0);
	struct rd_raft_update u;
	rd_raft_get_update(r, &u);
	cr_assert_eq(u.n_reads, 0, "not before a quorum confirms leadership");
	uint64_t round = 0;
	for (size_t i = 0; i < u.n_msgs; i++)
		if (u.msgs[i].type == RD_MSG_HEARTBEAT)
			round = u.msgs[i].context;
	rd_raft_advance(r, &u);
	cr_assert_neq(round, 0);
	struct rd_message hr = msg(RD_MSG_HEARTBEAT_RESP, 3, 1, 2);
	hr.context = round;
	rd_raft_step(r, &hr);
	rd_raft_get_update(r, &u);
	cr_assert_eq(u.n_reads, 1);
	cr_assert_eq(u.reads[0].ctx, 77);
	cr_assert_eq(u.reads[0].index, 4);
	rd_raft_advance(r, &u);
	rd_raft_free(r);
}

Test(paper, t10_2_1_leader_counts_itself_only_when_durable)
{
	struct rc_cluster c;
	led(&c, 3);
	uint64_t idx;
	rd_raft_propose(c.nodes[1].r, RD_ENTRY_NORMAL, "x", 1, &idx);
	cr_assert(rc_process_early(&c, 1), "write pending, appends sent");
	rc_deliver(&c, 2);
	rc_process(&c, 2);
	rc_deliver(&c, 1);
	cr_assert_lt(rd_raft_commit(c.nodes[1].r), idx, "1 follower + undurable leader");
	rc_finish(&c, 1);
	cr_assert_eq(rd_raft_commit(c.nodes[1].r), idx);
	done(&c);
}

Test(paper, t10_2_1_acks_and_votes_wait_for_durability)
{
	struct rd_raft *r = started(2, 3, false, false);
	step(r, vote_req(1, 2, 2, 3, 1));
	struct rd_raft_update u;
	rd_raft_get_update(r, &u);
	cr_assert(u.hard_state_changed);
	cr_assert_eq(u.hard_state.vote, 1);
	cr_assert_eq(u.n_msgs, 0);
	cr_assert_eq(u.n_msgs_after_persist, 1);
	rd_raft_advance(r, &u);
	struct rd_entry e = {.term = 2, .index = 4};
	step(r, append_req(1, 2, 2, 3, 1, 0, &e, 1));
	rd_raft_get_update(r, &u);
	cr_assert_eq(u.n_entries, 1);
	cr_assert_eq(u.n_msgs, 0, "an append ack is never sent before the write");
	cr_assert_eq(u.n_msgs_after_persist, 1);
	rd_raft_advance(r, &u);
	rd_raft_free(r);
}

Test(paper, t4_1_configuration_takes_effect_when_appended)
{
	struct rc_cluster c;
	led(&c, 3);
	uint64_t idx;
	cr_assert_eq(
	    rd_raft_propose_conf_change(c.nodes[1].r, RD_CC_ADD_VOTER, 4, NULL, 0, &idx),
	    0);
	cr_assert_eq(rd_raft_conf(c.nodes[1].r)->n_voters, 4, "before it commits");
	cr_assert_eq(
	    rd_raft_propose_conf_change(c.nodes[1].r, RD_CC_REMOVE, 2, NULL, 0, NULL),
	    RD_EBUSY, "one change at a time");
	done(&c);
}

Test(paper, t4_2_1_learners_neither_vote_nor_count)
{
	struct rc_cluster c;
	cluster(&c, 3);
	rc_add(&c, 4, NULL, 0);
	elect(&c, 1);
	rd_raft_propose_conf_change(c.nodes[1].r, RD_CC_ADD_LEARNER, 4, NULL, 0, NULL);
	rc_stabilize(&c);
	cr_assert_eq(rd_raft_conf(c.nodes[4].r)->n_learners, 1);
	for (int i = 0; i < 100; i++)
		rd_raft_tick(c.nodes[4].r);
	cr_assert_eq(rd_raft_role(c.nodes[4].r), RD_RAFT_FOLLOWER,
	             "a learner never campaigns");
	cr_assert_eq(rd_raft_campaign(c.nodes[4].r), RD_EINVAL);
	done(&c);
}

/* --- API contracts -------------------------------------------------------------------
 */

Test(api, conf_change_encoding_round_trips)
{
	uint8_t b[RD_RAFT_CC_HEADER];
	rd_raft_cc_encode(b, RD_CC_PROMOTE_LEARNER, 0x0102030405060708ULL);
	uint8_t t;
	uint64_t n;
	cr_assert_eq(rd_raft_cc_decode(b, sizeof(b), &t, &n), 0);
	cr_assert_eq(t, RD_CC_PROMOTE_LEARNER);
	cr_assert_eq(n, 0x0102030405060708ULL);
	cr_assert_eq(rd_raft_cc_decode(b, 3, &t, &n), RD_EINVAL);
	b[0] = 9;
	cr_assert_eq(rd_raft_cc_decode(b, sizeof(b), &t, &n), RD_EINVAL);
}

Test(api, conf_apply_rules)
{
	struct rd_conf_state cs = {.n_voters = 1, .voters = {1}};
	cr_assert_eq(rd_raft_conf_apply(&cs, RD_CC_REMOVE, 1), RD_EINVAL,
	             "last voter stays");
	cr_assert_eq(rd_raft_conf_apply(&cs, RD_CC_ADD_LEARNER, 2), 0);
	cr_assert_eq(rd_raft_conf_apply(&cs, RD_CC_ADD_VOTER, 2), RD_EINVAL);
	cr_assert_eq(rd_raft_conf_apply(&cs, RD_CC_PROMOTE_LEARNER, 2), 0);
	cr_assert_eq(cs.n_voters, 2);
	cr_assert_eq(cs.n_learners, 0);
	cr_assert_eq(rd_raft_conf_apply(&cs, RD_CC_PROMOTE_LEARNER, 2), RD_EINVAL);
	cr_assert_eq(rd_raft_conf_apply(&cs, RD_CC_REMOVE, 1), 0);
	cr_assert_eq(cs.voters[0], 2);
}

Test(api, foreign_group_and_malformed_messages_are_refused)
{
	struct rd_raft *r = node(1, 3, false, false);
	struct rd_message m = msg(RD_MSG_HEARTBEAT, 2, 1, 5);
	m.group = 8;
	cr_assert_eq(rd_raft_step(r, &m), RD_EINVAL);
	m.group = 7;
	m.to = 3;
	cr_assert_eq(rd_raft_step(r, &m), RD_EINVAL);
	m.to = 1;
	m.type = 99;
	cr_assert_eq(rd_raft_step(r, &m), RD_EINVAL);
	cr_assert_eq(rd_raft_term(r), 1, "nothing was taken from them");
	rd_raft_free(r);
}

Test(api, bad_config_is_refused_with_a_message)
{
	struct rd_raft_config cfg = {.id = 1,
	                             .election_ticks = 5,
	                             .heartbeat_ticks = 5,
	                             .max_inflight_msgs = 1,
	                             .max_msg_bytes = 1};
	struct rd_raft *r = NULL;
	char m[RD_ERRMSG_SIZE] = "";
	cr_assert_eq(rd_raft_new(&cfg, &r, m), RD_EINVAL);
	cr_assert(strstr(m, "heartbeat") != NULL, "%s", m);
	cr_assert_null(r);
}

Test(api, log_payloads_survive_compaction_and_truncation)
{
	struct rc_cluster c;
	led(&c, 3);
	char buf[5000];
	for (int i = 0; i < 3000; i++) {
		uint32_t len = (uint32_t)(i * 7919) % sizeof(buf);
		memset(buf, 'a' + i % 26, len);
		cr_assert_eq(
		    rd_raft_propose(c.nodes[1].r, RD_ENTRY_NORMAL, buf, len, NULL), 0);
		if (i % 97 == 0) {
			rc_stabilize(&c);
			rc_compact(&c, 1 + (uint64_t)(i % 3), 0);
		}
	}
	rc_stabilize(&c);
	/* The checker compared every applied entry across nodes (hashes of
	 * the payload bytes): any corruption is a violation. */
	cr_assert_geq(c.nodes[2].sm_index, 3000);
	done(&c);
}

Test(api, snapshot_acceptable_predicts_install)
{
	struct rd_raft *r = started(2, 3, false, false);
	struct rd_snapshot_meta meta = {.index = 3, .term = 1};
	cr_assert_not(rd_raft_snapshot_acceptable(r, 2, &meta), "not beyond commit");
	meta.index = 9;
	meta.term = 2;
	cr_assert_not(rd_raft_snapshot_acceptable(r, 0, &meta), "stale leader term");
	cr_assert(rd_raft_snapshot_acceptable(r, 2, &meta));
	struct rd_message s = msg(RD_MSG_SNAPSHOT, 1, 2, 2);
	s.snapshot = meta;
	set_voters(&s.snapshot.conf, (const uint64_t[]){1, 2, 3}, 3);
	rd_raft_step(r, &s);
	struct rd_raft_update u;
	rd_raft_get_update(r, &u);
	cr_assert(u.has_snapshot, "a true answer means the step installs it");
	rd_raft_advance(r, &u);
	cr_assert_not(rd_raft_snapshot_acceptable(r, 2, &meta),
	              "now it is behind commit");
	rd_raft_free(r);
}

Test(api, restart_adopts_a_log_term_above_the_hard_state)
{
	/* A crash after a snapshot install but before the hard state write. */
	struct rd_raft_config cfg = config(2);
	cfg.max_msg_bytes = 1024;
	cfg.seed = 0;
	cfg.hard_state = (struct rd_hard_state){.term = 2, .vote = 3, .commit = 4};
	cfg.snapshot.index = 20;
	cfg.snapshot.term = 5;
	set_voters(&cfg.snapshot.conf, (const uint64_t[]){1, 2, 3}, 3);
	struct rd_raft *r = make(&cfg);
	cr_assert_eq(rd_raft_term(r), 5);
	cr_assert_eq(rd_raft_vote(r), 0, "the old term's vote does not carry over");
	cr_assert_eq(rd_raft_commit(r), 20);
	cr_assert_eq(rd_raft_applied_index(r), 20);
	rd_raft_free(r);
}
