/*
 * How the runtime answers the proposals waiting in a group
 * (lib/multiraft/drive.c rd_drive_resolve_applied, waiter.c
 * rd_waiter_track), against a real core that leads nothing and a
 * hand-made update: a committed write is answered with its result even
 * when a proposal of an earlier term waits at a higher index; NOT_LEADER
 * ("not applied") only when the entry at the index has another term
 * (Raft §5.3, Log Matching); an index covered by a snapshot install is
 * "outcome unknown", never NOT_LEADER, since the write may be in the
 * snapshot and a NOT_LEADER would make the asking node send it again.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "multiraft/node_internal.h"
#include "raftd.pb-c.h"
#include "storage/kv.h"
#include "util/err.h"

#define MAX_ANSWERS 8

static struct {
	uint64_t id;
	int code;
	uint64_t index;
} answers[MAX_ANSWERS];
static int n_answers;

static void record(void *ud, uint64_t request_id, const struct rd_result *res)
{
	(void)ud;
	cr_assert_lt(n_answers, MAX_ANSWERS);
	answers[n_answers].id = request_id;
	answers[n_answers].code = res->code;
	answers[n_answers].index = res->index;
	n_answers++;
}

static int code_of(uint64_t id)
{
	for (int i = 0; i < n_answers; i++)
		if (answers[i].id == id)
			return answers[i].code;
	return -1;
}

static struct rd_group g;
static struct rd_kv_result results[4];

static void setup(void)
{
	struct rd_raft_config cfg = {.group = 1,
	                             .id = 1,
	                             .election_ticks = 10,
	                             .heartbeat_ticks = 1,
	                             .max_inflight_msgs = 4,
	                             .max_msg_bytes = 1 << 20,
	                             .seed = 1};
	char msg[RD_ERRMSG_SIZE];

	memset(&g, 0, sizeof g);
	memset(results, 0, sizeof results);
	n_answers = 0;
	g.id = 1;
	cr_assert_eq(rd_raft_new(&cfg, &g.raft, msg), 0, "%s", msg);
	g.results = results;
	g.results_cap = 4;
}

static void teardown(void)
{
	g.results = NULL;
	rd_raft_free(g.raft);
}

TestSuite(waiters, .init = setup, .fini = teardown);

static void track(uint64_t id, uint64_t index, uint64_t term)
{
	struct rd_waiter *w = rd_waiter_new(RD_WAIT_PROPOSE, record, NULL, id, ~0ull);
	cr_assert_not_null(w);
	w->group = 1;
	w->op = RD_OP_WRITE;
	rd_waiter_track(&g, w, index, term);
}

/* A leader proposed at 100 in term 5, lost its leadership, had its log cut
 * back below 99, won term 7 and proposed at 99. Entry 99 (term 7) commits
 * first, then 100 (term 7, another proposal's). */
Test(waiters, a_committed_write_below_an_older_proposal_gets_its_result)
{
	struct rd_entry ents[2] = {{.index = 99, .term = 7, .type = RD_ENTRY_NORMAL},
	                           {.index = 100, .term = 7, .type = RD_ENTRY_NORMAL}};

	track(1, 100, 5);
	track(2, 99, 7);
	g.u.committed = ents;
	g.u.n_committed = 2;
	rd_drive_resolve_applied(NULL, NULL, &g);
	cr_assert_eq(n_answers, 2);
	cr_expect_eq(code_of(2), RAFTD__ERROR_CODE__OK, "the write at 99 committed");
	cr_expect_eq(code_of(1), RAFTD__ERROR_CODE__NOT_LEADER,
	             "100 holds another term's entry: not applied");
	cr_expect_null(g.props.head);
}

/* In the runtime a replaced proposal is not answered but submitted again
 * (to the leader known after the pass). */
Test(waiters, a_replaced_proposal_goes_back_to_be_submitted_again)
{
	struct rd_entry e = {.index = 7, .term = 9, .type = RD_ENTRY_NORMAL};
	struct rd_waitq again = {0};

	track(1, 7, 8);
	g.u.committed = &e;
	g.u.n_committed = 1;
	rd_drive_resolve_applied(NULL, &again, &g);
	cr_expect_eq(n_answers, 0, "not answered");
	cr_assert_not_null(again.head);
	cr_expect_eq(again.head->request_id, 1);
	cr_expect_null(g.props.head);
	rd_waitq_fail_all(&again, &(struct rd_result){.code = 0});
}

Test(waiters, an_entry_of_the_same_index_and_term_is_the_proposal)
{
	struct rd_entry e = {.index = 5, .term = 3, .type = RD_ENTRY_NORMAL};

	track(1, 5, 2); /* an earlier term's proposal at the same index */
	track(2, 5, 3);
	track(3, 6, 3); /* not committed yet: keeps waiting */
	results[0].status = RD_ECASFAILED;
	g.u.committed = &e;
	g.u.n_committed = 1;
	rd_drive_resolve_applied(NULL, NULL, &g);
	cr_assert_eq(n_answers, 2);
	cr_expect_eq(code_of(1), RAFTD__ERROR_CODE__NOT_LEADER);
	cr_expect_eq(code_of(2), RAFTD__ERROR_CODE__CAS_FAILED, "its own result");
	cr_assert_not_null(g.props.head);
	cr_expect_eq(g.props.head->request_id, 3);
	rd_waitq_fail_all(&g.props, &(struct rd_result){.code = 0});
}

Test(waiters, an_index_covered_by_a_snapshot_is_outcome_unknown)
{
	struct rd_entry e = {.index = 21, .term = 4, .type = RD_ENTRY_NORMAL};

	track(1, 12, 3);
	track(2, 20, 3);
	track(3, 21, 4);
	g.u.has_snapshot = true;
	g.u.snapshot.index = 20;
	g.u.snapshot.term = 3;
	g.u.committed = &e;
	g.u.n_committed = 1;
	rd_drive_resolve_applied(NULL, NULL, &g);
	cr_assert_eq(n_answers, 3);
	cr_expect_eq(code_of(1), RAFTD__ERROR_CODE__UNAVAILABLE);
	cr_expect_eq(code_of(2), RAFTD__ERROR_CODE__UNAVAILABLE);
	cr_expect_eq(code_of(3), RAFTD__ERROR_CODE__OK);
}

Test(waiters, the_queue_stays_in_index_order)
{
	static const uint64_t idx[] = {10, 14, 12, 12, 9, 15};
	for (size_t i = 0; i < sizeof idx / sizeof idx[0]; i++)
		track(i + 1, idx[i], 1);
	uint64_t last = 0;
	size_t n = 0;
	for (struct rd_waiter *w = g.props.head; w != NULL; w = w->next, n++) {
		cr_expect_geq(w->index, last);
		last = w->index;
		if (w->next == NULL)
			cr_expect_eq(g.props.tail, w);
	}
	cr_expect_eq(n, 6);
	rd_waitq_fail_all(&g.props, &(struct rd_result){.code = 0});
}

/* With a session, the installed state says more: the session table (thesis
 * §6.3) records the client's applied sequence, so a put covered by the
 * snapshot is known applied; a put of a sequence the table does not hold
 * stays "outcome unknown". The table here is built by applying the
 * commands, as the leader's snapshot would carry it. */
static uint8_t *session_put(uint64_t client, uint64_t seq, size_t *len)
{
	struct rd_kv_cmd k = {.op = RD_KV_PUT,
	                      .key = (const uint8_t *)"k",
	                      .key_len = 1,
	                      .value = (const uint8_t *)"v",
	                      .value_len = 1,
	                      .client_id = client,
	                      .sequence = seq};
	uint8_t *buf = malloc(64);
	cr_assert_eq(rd_kv_encode(&k, buf, 64, len), 0);
	return buf;
}

Test(waiters, a_snapshot_covered_session_write_is_answered_from_the_session_table)
{
	char dir[] = "/tmp/rd-waiters-XXXXXX", msg[RD_ERRMSG_SIZE];
	struct rd_storage_options o;
	struct rd_storage *st;
	size_t len;

	cr_assert_not_null(mkdtemp(dir));
	rd_storage_options_init(&o);
	o.create_if_missing = true;
	cr_assert_eq(rd_storage_open(dir, &o, &st, msg), 0, "%s", msg);
	/* Client 9 applied sequence 4 at index 1. */
	struct rd_storage_batch *b = rd_storage_batch_new(st);
	uint8_t *data = session_put(9, 4, &len);
	struct rd_entry e = {.term = 1,
	                     .index = 1,
	                     .type = RD_ENTRY_NORMAL,
	                     .len = (uint32_t)len,
	                     .data = data};
	struct rd_hard_state hs = {.term = 1, .commit = 1};
	struct rd_kv_result kr;
	cr_assert_eq(rd_storage_batch_append(b, 1, &e, 1, msg), 0, "%s", msg);
	cr_assert_eq(rd_storage_batch_set_hard_state(b, 1, &hs, msg), 0, "%s", msg);
	cr_assert_eq(rd_storage_batch_apply_kv(b, 1, 1, data, len, &kr, msg), 0, "%s",
	             msg);
	rd_storage_commit(st, b);
	rd_storage_batch_free(b);

	struct rd_waiter *w4 = rd_waiter_new(RD_WAIT_PROPOSE, record, NULL, 4, ~0ull);
	struct rd_waiter *w5 = rd_waiter_new(RD_WAIT_PROPOSE, record, NULL, 5, ~0ull);
	w4->data = data;
	w4->len = len;
	w5->data = session_put(9, 5, &w5->len);
	rd_waiter_track(&g, w4, 1, 1);
	rd_waiter_track(&g, w5, 2, 1);
	g.u.has_snapshot = true;
	g.u.snapshot.index = 2;
	g.u.snapshot.term = 1;
	rd_drive_resolve_applied(st, NULL, &g);
	cr_assert_eq(n_answers, 2);
	cr_expect_eq(code_of(4), RAFTD__ERROR_CODE__OK, "sequence 4 is recorded");
	cr_expect_eq(code_of(5), RAFTD__ERROR_CODE__UNAVAILABLE, "sequence 5 is not");
	rd_storage_close(st);
	char cmd[64];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0);
}

/* Deadlines (waiter.c rd_waitq_expire): a waiter ends with TIMEOUT once
 * its deadline passed, however the queue learned it: pushed in any order
 * of deadlines, inserted by index, or pushed after a scan that found
 * nothing due (the scan is skipped while the earliest deadline is ahead). */
/* A write waiter (request `id`, due at `deadline`) appended to q. */
static void push_due(struct rd_waitq *q, uint64_t id, uint64_t deadline)
{
	struct rd_waiter *w = rd_waiter_new(RD_WAIT_PROPOSE, record, NULL, id, deadline);
	cr_assert_not_null(w);
	rd_waitq_push(q, w);
}

Test(waiters, each_waiter_times_out_at_its_own_deadline)
{
	struct rd_waitq q = {0};
	static const uint64_t dl[] = {500, 300, 900, 300};
	for (size_t i = 0; i < 4; i++) {
		struct rd_waiter *w =
		    rd_waiter_new(RD_WAIT_PROPOSE, record, NULL, i + 1, dl[i]);
		cr_assert_not_null(w);
		w->index = 10 + i;
		if (i == 2)
			rd_waitq_insert(&q, w);
		else
			rd_waitq_push(&q, w);
	}
	rd_waitq_expire(&q, 299);
	cr_expect_eq(n_answers, 0);
	rd_waitq_expire(&q, 300);
	cr_expect_eq(n_answers, 2, "both waiters due at 300 end");
	cr_expect_eq(code_of(2), RAFTD__ERROR_CODE__TIMEOUT);
	cr_expect_eq(code_of(4), RAFTD__ERROR_CODE__TIMEOUT);
	/* Pushed after the scan, due before what the queue still holds. */
	push_due(&q, 5, 400);
	rd_waitq_expire(&q, 399);
	cr_expect_eq(n_answers, 2);
	rd_waitq_expire(&q, 400);
	cr_expect_eq(n_answers, 3);
	cr_expect_eq(code_of(5), RAFTD__ERROR_CODE__TIMEOUT);
	rd_waitq_expire(&q, 899);
	cr_expect_eq(n_answers, 4);
	cr_expect_eq(code_of(1), RAFTD__ERROR_CODE__TIMEOUT);
	rd_waitq_expire(&q, 900);
	cr_expect_eq(n_answers, 5);
	cr_expect_null(q.head);
	cr_expect_null(q.tail);
	/* Emptied: the next push starts the bound afresh. */
	push_due(&q, 6, 2000);
	rd_waitq_expire(&q, 1999);
	cr_expect_eq(n_answers, 5);
	rd_waitq_expire(&q, 2000);
	cr_expect_eq(n_answers, 6);
}
