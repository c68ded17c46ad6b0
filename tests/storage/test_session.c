/* Client sessions in the KV state machine (Raft thesis §6.3): a command with
 * (client_id, sequence) applies at most once; a retry is answered with the
 * recorded result, an older sequence is refused ("not applied"); sessions
 * expire from the log alone and the table stays bounded; snapshots and
 * reopens keep the table. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "storage/kv.h"
#include "storage/snapshot.h"
#include "storage/storage.h"
#include "util/err.h"

static char dira[256], dirb[256];
static struct rd_storage *a, *bst;
static char msg[RD_ERRMSG_SIZE];

static struct rd_storage *open_with(const char *dir, uint64_t max, uint64_t expiry)
{
	struct rd_storage_options o;
	struct rd_storage *st = NULL;
	rd_storage_options_init(&o);
	o.create_if_missing = true;
	o.cluster_id = "test";
	o.block_cache_bytes = 1u << 20;
	o.session_max = max;
	o.session_expiry = expiry;
	cr_assert_eq(rd_storage_open(dir, &o, &st, msg), 0, "%s", msg);
	return st;
}

static void setup(void)
{
	th_tmpdir(dira, sizeof dira);
	th_tmpdir(dirb, sizeof dirb);
	a = open_with(dira, 0, 0);
	bst = open_with(dirb, 0, 0);
}

static void teardown(void)
{
	th_close_rm(a, dira);
	th_close_rm(bst, dirb);
}

TestSuite(session, .init = setup, .fini = teardown);

/* What an apply answered, copied out of the batch. */
struct out {
	int status;
	bool duplicate, present;
	char value[64];
};

struct cmd {
	uint8_t op;
	const char *key, *value, *expected; /* expected NULL: cas if absent */
	uint64_t client, seq;
};

static size_t encode(const struct cmd *c, uint8_t *buf, size_t cap)
{
	struct rd_kv_cmd k = {.op = c->op,
	                      .key = (const uint8_t *)c->key,
	                      .key_len = (uint32_t)strlen(c->key),
	                      .client_id = c->client,
	                      .sequence = c->seq};
	if (c->value != NULL) {
		k.value = (const uint8_t *)c->value;
		k.value_len = (uint32_t)strlen(c->value);
	}
	if (c->expected != NULL) {
		k.has_expected = true;
		k.expected = (const uint8_t *)c->expected;
		k.expected_len = (uint32_t)strlen(c->expected);
	}
	size_t len;
	cr_assert_eq(rd_kv_encode(&k, buf, cap, &len), 0);
	return len;
}

/* Append the commands as entries of `group`, commit and apply them in one
 * batch; results into out[] (may be NULL). */
static void apply(struct rd_storage *st, uint64_t group, const struct cmd *cmds, size_t n,
                  struct out *out)
{
	struct rd_storage_batch *b = rd_storage_batch_new(st);
	uint64_t first = rd_storage_last_index(st, group) + 1;
	struct rd_entry *e = calloc(n, sizeof *e);
	uint8_t(*bufs)[256] = malloc(n * 256);
	for (size_t i = 0; i < n; i++)
		e[i] = (struct rd_entry){.term = 1,
		                         .index = first + i,
		                         .type = RD_ENTRY_NORMAL,
		                         .len = (uint32_t)encode(&cmds[i], bufs[i], 256),
		                         .data = bufs[i]};
	cr_assert_eq(rd_storage_batch_append(b, group, e, n, msg), 0, "%s", msg);
	struct rd_hard_state hs = {.term = 1, .commit = first + n - 1};
	cr_assert_eq(rd_storage_batch_set_hard_state(b, group, &hs, msg), 0, "%s", msg);
	for (size_t i = 0; i < n; i++) {
		struct rd_kv_result r;
		cr_assert_eq(rd_storage_batch_apply_kv(b, group, e[i].index, e[i].data,
		                                       e[i].len, &r, msg),
		             0, "%s", msg);
		if (out == NULL)
			continue;
		memset(&out[i], 0, sizeof out[i]);
		out[i].status = r.status;
		out[i].duplicate = r.duplicate;
		out[i].present = r.present;
		cr_assert_lt(r.current_len, sizeof out[i].value);
		if (r.current_len > 0)
			memcpy(out[i].value, r.current, r.current_len);
	}
	rd_storage_commit(st, b);
	rd_storage_batch_free(b);
	free(e);
	free(bufs);
}

static void apply1(struct rd_storage *st, uint64_t group, struct cmd c, struct out *o)
{
	apply(st, group, &c, 1, o);
}

static void expect_value(struct rd_storage *st, uint64_t group, const char *key,
                         const char *want)
{
	uint8_t *v = NULL;
	size_t len = 0;
	int rv = rd_storage_kv_get(st, group, (const uint8_t *)key, strlen(key), &v, &len,
	                           msg);
	if (want == NULL) {
		cr_assert_eq(rv, RD_ENOTFOUND, "%s present", key);
		return;
	}
	cr_assert_eq(rv, 0, "%s: %s", key, msg);
	cr_assert_eq(len, strlen(want));
	cr_assert_arr_eq(v, want, len);
	free(v);
}

#define PUT(k, v, c, s)    ((struct cmd){RD_KV_PUT, k, v, NULL, c, s})
#define CAS(k, e, v, c, s) ((struct cmd){RD_KV_CAS, k, v, e, c, s})
#define DEL(k, c, s)       ((struct cmd){RD_KV_DELETE, k, NULL, NULL, c, s})

Test(session, a_retry_is_answered_with_the_recorded_result_and_changes_nothing)
{
	struct out o[3];
	apply1(a, 1, PUT("k", "v1", 7, 1), o);
	cr_assert_eq(o[0].status, 0);
	cr_assert_not(o[0].duplicate);
	/* The same (client, sequence) again, even with other bytes: not applied
	 * again, answered as the first time. */
	apply1(a, 1, PUT("k", "v2", 7, 1), o);
	cr_assert_eq(o[0].status, 0);
	cr_assert(o[0].duplicate);
	expect_value(a, 1, "k", "v1");
	/* Twice in one batch (a retry that reached the log twice). */
	struct cmd two[3] = {PUT("j", "a", 7, 2), PUT("j", "b", 7, 2),
	                     PUT("j", "c", 8, 1)};
	apply(a, 1, two, 3, o);
	cr_assert_not(o[0].duplicate);
	cr_assert(o[1].duplicate);
	cr_assert_not(o[2].duplicate, "another client is another session");
	expect_value(a, 1, "j", "c");
	/* Sessions are per group. */
	apply1(a, 2, PUT("k", "g2", 7, 1), o);
	cr_assert_not(o[0].duplicate);
	expect_value(a, 2, "k", "g2");
	/* Without a session a command applies every time. */
	apply1(a, 1, PUT("k", "v3", 0, 0), o);
	apply1(a, 1, PUT("k", "v3", 0, 0), o);
	cr_assert_not(o[0].duplicate);
	expect_value(a, 1, "k", "v3");
	cr_assert_eq(rd_storage_sessions(a, 1), 2);
	cr_assert_eq(rd_storage_sessions(a, 2), 1);
}

Test(session, a_retried_cas_failure_returns_the_value_seen_then)
{
	struct out o[1];
	apply1(a, 1, PUT("c", "old", 1, 1), o);
	apply1(a, 1, CAS("c", "nope", "new", 2, 1), o);
	cr_assert_eq(o[0].status, RD_ECASFAILED);
	cr_assert(o[0].present);
	cr_assert_str_eq(o[0].value, "old");
	apply1(a, 1, PUT("c", "later", 1, 2), o);
	/* The retry gets the recorded outcome, not a new comparison. */
	apply1(a, 1, CAS("c", "nope", "new", 2, 1), o);
	cr_assert(o[0].duplicate);
	cr_assert_eq(o[0].status, RD_ECASFAILED);
	cr_assert(o[0].present);
	cr_assert_str_eq(o[0].value, "old");
	/* A CAS that succeeded is answered OK on retry though the value has
	 * changed since (it would fail now). */
	apply1(a, 1, CAS("c", "later", "mine", 2, 2), o);
	cr_assert_eq(o[0].status, 0);
	apply1(a, 1, PUT("c", "other", 1, 3), o);
	apply1(a, 1, CAS("c", "later", "mine", 2, 2), o);
	cr_assert(o[0].duplicate);
	cr_assert_eq(o[0].status, 0);
	expect_value(a, 1, "c", "other");
}

Test(session, an_older_sequence_is_refused_and_not_applied)
{
	struct out o[1];
	apply1(a, 1, PUT("k", "v5", 3, 5), o);
	apply1(a, 1, DEL("k", 3, 4), o);
	cr_assert_eq(o[0].status, RD_EOLDSEQ);
	cr_assert_not(o[0].duplicate);
	expect_value(a, 1, "k", "v5");
	cr_assert(strstr(rd_strerror(RD_EOLDSEQ), "not applied") != NULL);
	/* Sequences may skip; the next higher one applies. */
	apply1(a, 1, DEL("k", 3, 9), o);
	cr_assert_eq(o[0].status, 0);
	expect_value(a, 1, "k", NULL);
	apply1(a, 1, PUT("k", "again", 3, 6), o);
	cr_assert_eq(o[0].status, RD_EOLDSEQ);
	expect_value(a, 1, "k", NULL);
}

Test(session, the_table_survives_a_reopen)
{
	struct out o[1];
	apply1(a, 1, PUT("k", "v1", 7, 1), o);
	apply1(a, 1, CAS("k", "x", "y", 8, 1), o);
	a = th_reopen(a, dira);
	cr_assert_eq(rd_storage_sessions(a, 1), 2);
	apply1(a, 1, PUT("k", "v2", 7, 1), o);
	cr_assert(o[0].duplicate);
	apply1(a, 1, CAS("k", "x", "y", 8, 1), o);
	cr_assert(o[0].duplicate);
	cr_assert_eq(o[0].status, RD_ECASFAILED);
	cr_assert_str_eq(o[0].value, "v1");
	apply1(a, 1, PUT("k", "v0", 7, 1), o);
	cr_assert(o[0].duplicate);
	expect_value(a, 1, "k", "v1");
}

static int install_from(struct rd_storage *from, struct rd_storage *to, uint64_t group)
{
	struct rd_snapshot_reader *r;
	struct rd_snapshot_writer *w;
	struct rd_snapshot_meta meta;
	static uint8_t chunk[RD_SNAPSHOT_CHUNK_MIN];
	bool last = false;
	cr_assert_eq(rd_snapshot_reader_open(from, group, &r, &meta, msg), 0, "%s", msg);
	cr_assert_eq(rd_snapshot_writer_open(to, &w, msg), 0);
	while (!last) {
		size_t len;
		/* small chunks: records and sessions spread over several */
		cr_assert_eq(rd_snapshot_reader_next(r, chunk, 1024, &len, &last, msg), 0,
		             "%s", msg);
		cr_assert_eq(rd_snapshot_writer_add(w, chunk, len, msg), 0, "%s", msg);
	}
	rd_snapshot_reader_close(r);
	return rd_snapshot_writer_finish(w, &meta, msg);
}

Test(session, snapshots_ship_the_table_and_installs_replace_it)
{
	struct out o[1];
	char key[16];
	for (uint64_t c = 1; c <= 40; c++) {
		snprintf(key, sizeof key, "k%llu", (unsigned long long)c);
		apply1(a, 3, PUT(key, "v", c, 10), o);
	}
	apply1(a, 3, CAS("k1", "zz", "w", 41, 1), o);
	/* bst had its own sessions for the group: they go with the install. */
	apply1(bst, 3, PUT("mine", "m", 99, 1), o);
	cr_assert_eq(install_from(a, bst, 3), 0, "%s", msg);
	cr_assert_eq(rd_storage_sessions(bst, 3), 41);
	for (int pass = 0; pass < 2; pass++) {
		apply1(bst, 3, PUT("k5", "retry", 5, 10), o);
		cr_assert(o[0].duplicate, "pass %d", pass);
		apply1(bst, 3, PUT("k6", "old", 6, 9), o);
		cr_assert_eq(o[0].status, RD_EOLDSEQ);
		apply1(bst, 3, CAS("k1", "zz", "w", 41, 1), o);
		cr_assert(o[0].duplicate);
		cr_assert_eq(o[0].status, RD_ECASFAILED);
		cr_assert_str_eq(o[0].value, "v");
		bst = th_reopen(bst, dirb);
	}
	expect_value(bst, 3, "k5", "v");
	expect_value(bst, 3, "mine", NULL);
	/* Client 99's session went with the old state: its command is new. */
	apply1(bst, 3, PUT("mine", "m2", 99, 1), o);
	cr_assert_not(o[0].duplicate);
	cr_assert_eq(rd_storage_sessions(bst, 3), 42);
}

/* Replay the same log on two stores, one entry per batch and all in one
 * batch: expiry and the bound must leave the same table (replicas batch
 * differently). */
static void replay(struct rd_storage *st, bool one_batch, struct out *o, size_t n,
                   const struct cmd *cmds)
{
	if (one_batch) {
		apply(st, 1, cmds, n, o);
		return;
	}
	for (size_t i = 0; i < n; i++)
		apply1(st, 1, cmds[i], &o[i]);
}

Test(session, sessions_expire_after_expiry_entries_whatever_the_batching)
{
	rd_storage_close(a);
	rd_storage_close(bst);
	a = open_with(dira, 100, 5);
	bst = open_with(dirb, 100, 5);
	/* index: 1 client 1; 2-5 others; 6 client 1 retries seq 1 (5 entries
	 * after its last: expired, so applied again); 7 client 2 (index 2,
	 * 5 before) expired too; 8 client 3 (seen at 3, 5 before: expired). */
	struct cmd cmds[9] = {
	    PUT("a", "1", 1, 1), PUT("b", "1", 2, 1), PUT("c", "1", 3, 1),
	    PUT("d", "1", 0, 0), PUT("e", "1", 0, 0), PUT("a", "2", 1, 1),
	    PUT("b", "2", 2, 1), PUT("c", "2", 3, 1), PUT("a", "3", 1, 1),
	};
	struct out oa[9], ob[9];
	replay(a, false, oa, 9, cmds);
	replay(bst, true, ob, 9, cmds);
	for (int i = 0; i < 9; i++)
		cr_assert_eq(oa[i].duplicate, ob[i].duplicate, "entry %d", i + 1);
	cr_assert_not(oa[5].duplicate, "client 1 expired at index 6");
	cr_assert_not(oa[6].duplicate);
	cr_assert_not(oa[7].duplicate);
	cr_assert(oa[8].duplicate, "client 1 renewed at index 6");
	expect_value(a, 1, "a", "2");
	expect_value(bst, 1, "a", "2");
	cr_assert_eq(rd_storage_sessions(a, 1), rd_storage_sessions(bst, 1));
	cr_assert_eq(rd_storage_sessions(a, 1), 3);
	/* Within the window a retry is still recognised. */
	struct cmd in[2] = {PUT("x", "1", 9, 1), PUT("x", "2", 9, 1)};
	apply(a, 1, in, 2, oa);
	cr_assert(oa[1].duplicate);
}

Test(session, the_table_never_holds_more_than_the_bound)
{
	rd_storage_close(a);
	rd_storage_close(bst);
	a = open_with(dira, 3, 1000);
	bst = open_with(dirb, 3, 1000);
	struct cmd cmds[8];
	char keys[8][16];
	for (int i = 0; i < 8; i++) {
		snprintf(keys[i], sizeof keys[i], "k%d", i);
		/* clients 1..6, then client 4 again, then client 7 */
		uint64_t c = i < 6 ? (uint64_t)i + 1 : i == 6 ? 4 : 7;
		cmds[i] = PUT(keys[i], "v", c, (uint64_t)i + 1);
	}
	struct out oa[8], ob[8];
	replay(a, false, oa, 8, cmds);
	replay(bst, true, ob, 8, cmds);
	cr_assert_eq(rd_storage_sessions(a, 1), 3);
	cr_assert_eq(rd_storage_sessions(bst, 1), 3);
	/* Left: the three most recently seen, 6, 4 (renewed at 7) and 7; the
	 * least recently seen (5) went when 7 came. */
	struct cmd probe[4] = {PUT("p", "v", 6, 6), PUT("p", "v", 4, 7),
	                       PUT("p", "v", 7, 8), PUT("p", "v", 5, 5)};
	rd_storage_close(a);
	rd_storage_close(bst);
	a = open_with(dira, 3, 1000);
	bst = open_with(dirb, 3, 1000);
	cr_assert_eq(rd_storage_sessions(a, 1), 3);
	cr_assert_eq(rd_storage_sessions(bst, 1), 3);
	for (int s = 0; s < 2; s++) {
		struct rd_storage *st = s ? bst : a;
		struct out o[4];
		apply(st, 1, probe, 4, o);
		cr_assert(o[0].duplicate && o[1].duplicate && o[2].duplicate, "store %d",
		          s);
		cr_assert_not(o[3].duplicate, "client 5 was evicted");
		cr_assert_eq(rd_storage_sessions(st, 1), 3, "store %d: %zu", s,
		             rd_storage_sessions(st, 1));
	}
}
