/* Group commit, Raft state, the KV state machine and the catalog: one sync
 * per commit however many groups, state persisted with the entries it
 * belongs to, applied index and state machine written together. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "storage/kv.h"
#include "storage/storage.h"
#include "util/err.h"

static char dir[256];
static struct rd_storage *st;
static struct rd_storage_batch *b;
static char msg[RD_ERRMSG_SIZE];

static void setup(void)
{
	st = th_tmp_open(dir, sizeof dir);
	b = rd_storage_batch_new(st);
}

static void teardown(void)
{
	rd_storage_batch_free(b);
	th_close_rm(st, dir);
}

static void reopen(void)
{
	rd_storage_batch_free(b);
	st = th_reopen(st, dir);
	b = rd_storage_batch_new(st);
}

TestSuite(batch, .init = setup, .fini = teardown);

static uint64_t syncs(void)
{
	struct rd_storage_stats s;
	rd_storage_get_stats(st, &s);
	return s.syncs;
}

/* Group commit (lib/storage/batch.c): one synced write per loop iteration for every
 * group; an empty iteration does not sync. */
Test(batch, one_sync_per_commit_for_many_groups_and_none_when_empty)
{
	struct rd_entry e[2];
	uint8_t data[64];
	uint64_t s0 = syncs();
	for (uint64_t g = 0; g < 200; g++) {
		th_entries(e, data, 2, g, 1, 1, 32);
		cr_assert_eq(rd_storage_batch_append(b, g, e, 2, msg), 0, "%s", msg);
		struct rd_hard_state hs = {.term = 1, .vote = 2, .commit = 1};
		cr_assert_eq(rd_storage_batch_set_hard_state(b, g, &hs, msg), 0, "%s",
		             msg);
	}
	cr_assert_not(rd_storage_batch_empty(b));
	rd_storage_commit(st, b);
	cr_assert_eq(syncs(), s0 + 1);
	cr_assert(rd_storage_batch_empty(b));
	rd_storage_commit(st, b);
	cr_assert_eq(syncs(), s0 + 1);
	rd_storage_batch_reset(b);
	rd_storage_commit(st, b);
	cr_assert_eq(syncs(), s0 + 1);
	struct rd_storage_stats s;
	rd_storage_get_stats(st, &s);
	cr_assert_eq(s.entries_written, 400);
	uint64_t nb = 0;
	for (int i = 0; i <= RD_STORAGE_SYNC_BUCKETS; i++)
		nb += s.sync_buckets[i];
	cr_assert_eq(nb, s.syncs);
	cr_assert_eq(s.sync_ns_last > 0, true);
	reopen();
	cr_assert_eq(rd_storage_group_count(st), 200);
	struct rd_storage_group_info gi;
	cr_assert_eq(rd_storage_group_info(st, 199, &gi), 0);
	cr_assert_eq(gi.hs.term, 1);
	cr_assert_eq(gi.hs.vote, 2);
	cr_assert_eq(gi.hs.commit, 1);
	cr_assert_eq(gi.last_index, 2);
	cr_assert_eq(gi.last_term, 1);
}

/* rd_storage_batch_trim gives back the buffers sized to the largest batch
 * (an idle node's, after its groups quiesced): it leaves a batch that holds
 * work alone, and a trimmed batch takes the next iteration's work as a new
 * one would. */
Test(batch, trim_keeps_pending_work_and_the_batch_works_after_it)
{
	struct rd_entry e[2];
	uint8_t data[64];
	for (uint64_t g = 0; g < 300; g++) {
		th_entries(e, data, 2, g, 1, 1, 32);
		cr_assert_eq(rd_storage_batch_append(b, g, e, 2, msg), 0, "%s", msg);
	}
	rd_storage_batch_trim(b); /* holds work: nothing goes */
	rd_storage_commit(st, b);
	struct rd_storage_group_info gi;
	cr_assert_eq(rd_storage_group_info(st, 299, &gi), 0);
	cr_assert_eq(gi.last_index, 2, "the pending work was written");
	rd_storage_batch_trim(b);
	cr_assert(rd_storage_batch_empty(b));
	for (uint64_t g = 0; g < 300; g++) {
		th_entries(e, data, 1, g, 3, 1, 32);
		cr_assert_eq(rd_storage_batch_append(b, g, e, 1, msg), 0, "%s", msg);
		struct rd_hard_state hs = {.term = 1, .vote = 1, .commit = 3};
		cr_assert_eq(rd_storage_batch_set_hard_state(b, g, &hs, msg), 0, "%s",
		             msg);
	}
	rd_storage_commit(st, b);
	rd_storage_batch_trim(b);
	reopen();
	for (uint64_t g = 0; g < 300; g += 37) {
		cr_assert_eq(rd_storage_group_info(st, g, &gi), 0);
		cr_assert_eq(gi.last_index, 3);
		cr_assert_eq(gi.hs.commit, 3);
	}
}

/* rd_storage_get_mem reports RocksDB's own count of its memory: the
 * memtables grow with what was written and is not flushed yet. */
Test(batch, memory_figures_count_the_memtables_written)
{
	struct rd_storage_mem m0, m1;
	struct rd_entry e[4];
	uint8_t data[4 * 512];
	rd_storage_get_mem(st, &m0);
	for (uint64_t g = 0; g < 64; g++) {
		th_entries(e, data, 4, g, 1, 1, 512);
		cr_assert_eq(rd_storage_batch_append(b, g, e, 4, msg), 0, "%s", msg);
	}
	rd_storage_commit(st, b);
	rd_storage_get_mem(st, &m1);
	cr_assert_geq(m1.memtables, m0.memtables + 64 * 4 * 512,
	              "memtables %llu then %llu", (unsigned long long)m0.memtables,
	              (unsigned long long)m1.memtables);
}

/* Nothing of a batch is visible before commit. */
Test(batch, reads_see_only_committed_state)
{
	struct rd_entry e[1];
	uint8_t data[32];
	th_entries(e, data, 1, 1, 1, 1, 32);
	cr_assert_eq(rd_storage_batch_append(b, 1, e, 1, msg), 0);
	cr_assert_eq(rd_storage_last_index(st, 1), 0);
	rd_storage_batch_reset(b);
	rd_storage_commit(st, b);
	cr_assert_eq(rd_storage_last_index(st, 1), 0);
	reopen();
	cr_assert_eq(rd_storage_group_count(st), 0);
}

/* Raft §5.2, figure 2: term never decreases, at most one vote per term,
 * commit never goes back and never passes the last entry. */
Test(batch, hard_state_rules)
{
	struct rd_hard_state hs = {.term = 3, .vote = 1, .commit = 0};
	th_append(st, 1, 1, 3, 3);
	cr_assert_eq(rd_storage_batch_set_hard_state(b, 1, &hs, msg), 0);
	rd_storage_commit(st, b);
	hs.term = 2;
	cr_assert_eq(rd_storage_batch_set_hard_state(b, 1, &hs, msg), RD_EINVAL);
	hs = (struct rd_hard_state){.term = 3, .vote = 2, .commit = 0};
	cr_assert_eq(rd_storage_batch_set_hard_state(b, 1, &hs, msg), RD_EINVAL);
	hs = (struct rd_hard_state){.term = 4, .vote = 2, .commit = 4};
	cr_assert_eq(rd_storage_batch_set_hard_state(b, 1, &hs, msg), RD_EINVAL);
	hs.commit = 3;
	cr_assert_eq(rd_storage_batch_set_hard_state(b, 1, &hs, msg), 0, "%s", msg);
	rd_storage_commit(st, b);
	hs.commit = 2;
	cr_assert_eq(rd_storage_batch_set_hard_state(b, 1, &hs, msg), RD_EINVAL);
	reopen();
	struct rd_storage_group_info gi;
	rd_storage_group_info(st, 1, &gi);
	cr_assert_eq(gi.hs.term, 4);
	cr_assert_eq(gi.hs.vote, 2);
	cr_assert_eq(gi.hs.commit, 3);
}

/* A follower's Ready may carry the new commit with the entries that reach
 * it: set in either order within one batch. */
Test(batch, commit_may_cover_entries_appended_in_the_same_batch)
{
	struct rd_entry e[3];
	uint8_t data[96];
	struct rd_hard_state hs = {.term = 1, .vote = 0, .commit = 3};
	th_entries(e, data, 3, 1, 1, 1, 32);
	cr_assert_eq(rd_storage_batch_set_hard_state(b, 1, &hs, msg), RD_EINVAL);
	cr_assert_eq(rd_storage_batch_append(b, 1, e, 3, msg), 0);
	cr_assert_eq(rd_storage_batch_set_hard_state(b, 1, &hs, msg), 0, "%s", msg);
	rd_storage_commit(st, b);
	reopen();
	cr_assert_eq(rd_storage_last_index(st, 1), 3);
}

Test(batch, conf_state_persists)
{
	struct rd_conf_state cs = {
	    .n_voters = 3, .n_learners = 1, .voters = {1, 2, 3}, .learners = {9}};
	cr_assert_eq(rd_storage_batch_set_conf_state(b, 2, &cs, msg), 0);
	rd_storage_commit(st, b);
	reopen();
	struct rd_storage_group_info gi;
	cr_assert_eq(rd_storage_group_info(st, 2, &gi), 0);
	cr_assert_eq(gi.conf.n_voters, 3);
	cr_assert_eq(gi.conf.voters[2], 3);
	cr_assert_eq(gi.conf.n_learners, 1);
	cr_assert_eq(gi.conf.learners[0], 9);
	cs.n_voters = RD_RAFT_MAX_MEMBERS + 1;
	cr_assert_eq(rd_storage_batch_set_conf_state(b, 2, &cs, msg), RD_EINVAL);
}

static size_t enc(uint8_t *buf, uint8_t op, const char *k, const char *v, const char *exp)
{
	struct rd_kv_cmd c = {
	    .op = op, .key = (const uint8_t *)k, .key_len = (uint32_t)strlen(k)};
	if (v != NULL) {
		c.value = (const uint8_t *)v;
		c.value_len = (uint32_t)strlen(v);
	}
	if (exp != NULL) {
		c.has_expected = true;
		c.expected = (const uint8_t *)exp;
		c.expected_len = (uint32_t)strlen(exp);
	}
	size_t len;
	cr_assert_eq(rd_kv_encode(&c, buf, 256, &len), 0);
	return len;
}

/* Commit entries 1..n of `group` (data = the KV commands) so they can be applied. */
static void log_commands(uint64_t group, uint8_t cmds[][256], size_t *lens, size_t n)
{
	struct rd_entry e[16];
	for (size_t i = 0; i < n; i++)
		e[i] = (struct rd_entry){.term = 1,
		                         .index = i + 1,
		                         .type = RD_ENTRY_NORMAL,
		                         .len = (uint32_t)lens[i],
		                         .data = cmds[i]};
	cr_assert_eq(rd_storage_batch_append(b, group, e, n, msg), 0, "%s", msg);
	struct rd_hard_state hs = {.term = 1, .vote = 0, .commit = n};
	cr_assert_eq(rd_storage_batch_set_hard_state(b, group, &hs, msg), 0, "%s", msg);
	rd_storage_commit(st, b);
}

/* PUT k0=v0 into cmds[0] and PUT k1=v1 into cmds[1]. */
static void two_puts(uint8_t cmds[][256], size_t *lens, const char *k0, const char *v0,
                     const char *k1, const char *v1)
{
	lens[0] = enc(cmds[0], RD_KV_PUT, k0, v0, NULL);
	lens[1] = enc(cmds[1], RD_KV_PUT, k1, v1, NULL);
}

static void expect_value(uint64_t group, const char *k, const char *want)
{
	uint8_t *v = NULL;
	size_t len = 0;
	int rv =
	    rd_storage_kv_get(st, group, (const uint8_t *)k, strlen(k), &v, &len, msg);
	if (want == NULL) {
		cr_assert_eq(rv, RD_ENOTFOUND, "key %s", k);
		return;
	}
	cr_assert_eq(rv, 0, "key %s: %s", k, msg);
	cr_assert_eq(len, strlen(want));
	cr_assert_eq(memcmp(v, want, len), 0);
	free(v);
}

/* Put, delete and CAS; a CAS sees a put earlier in the same batch; a failed
 * CAS reports the current value; the applied index advances with them. */
Test(batch, kv_commands_apply_and_see_earlier_writes_in_the_batch)
{
	uint8_t cmds[8][256];
	size_t lens[8];
	struct rd_kv_result r[8];
	lens[0] = enc(cmds[0], RD_KV_PUT, "a", "1", NULL);
	lens[1] = enc(cmds[1], RD_KV_CAS, "a", "2", "1");    /* sees the put: ok */
	lens[2] = enc(cmds[2], RD_KV_CAS, "a", "3", "1");    /* fails, current 2 */
	lens[3] = enc(cmds[3], RD_KV_CAS, "b", "new", NULL); /* absent: ok */
	lens[4] = enc(cmds[4], RD_KV_PUT, "c", "x", NULL);
	lens[5] = enc(cmds[5], RD_KV_DELETE, "c", NULL, NULL);
	lens[6] = enc(cmds[6], RD_KV_CAS, "c", "y", "x"); /* deleted: fails, absent */
	memcpy(cmds[7], "\x7f garbage", 9);
	lens[7] = 9;
	log_commands(3, cmds, lens, 8);
	for (uint64_t i = 0; i < 8; i++)
		cr_assert_eq(
		    rd_storage_batch_apply_kv(b, 3, i + 1, cmds[i], lens[i], &r[i], msg),
		    0, "%s", msg);
	cr_assert_eq(r[0].status, 0);
	cr_assert_eq(r[1].status, 0);
	cr_assert_eq(r[2].status, RD_ECASFAILED);
	cr_assert(r[2].present);
	cr_assert_eq(r[2].current_len, 1);
	cr_assert_eq(r[2].current[0], '2');
	cr_assert_eq(r[3].status, 0);
	cr_assert_eq(r[6].status, RD_ECASFAILED);
	cr_assert_not(r[6].present);
	cr_assert_eq(r[7].status, RD_EINVAL);
	/* Not visible before the commit. */
	expect_value(3, "a", NULL);
	rd_storage_commit(st, b);
	/* Results stay valid after the commit, until the next mutation. */
	cr_assert_eq(r[2].current[0], '2');
	reopen();
	expect_value(3, "a", "2");
	expect_value(3, "b", "new");
	expect_value(3, "c", NULL);
	struct rd_storage_group_info gi;
	rd_storage_group_info(st, 3, &gi);
	cr_assert_eq(gi.applied, 8);
	/* Another group's keys are separate. */
	expect_value(4, "a", NULL);
}

/* A CAS in a later batch reads the durable value from RocksDB. */
Test(batch, cas_against_durable_value)
{
	uint8_t cmds[3][256];
	size_t lens[3];
	struct rd_kv_result r;
	lens[0] = enc(cmds[0], RD_KV_PUT, "k", "v1", NULL);
	lens[1] = enc(cmds[1], RD_KV_CAS, "k", "v2", "v0");
	lens[2] = enc(cmds[2], RD_KV_CAS, "k", "v3", "v1");
	log_commands(1, cmds, lens, 3);
	cr_assert_eq(rd_storage_batch_apply_kv(b, 1, 1, cmds[0], lens[0], &r, msg), 0);
	rd_storage_commit(st, b);
	reopen();
	cr_assert_eq(rd_storage_batch_apply_kv(b, 1, 2, cmds[1], lens[1], &r, msg), 0);
	cr_assert_eq(r.status, RD_ECASFAILED);
	cr_assert_eq(r.current_len, 2);
	cr_assert_eq(memcmp(r.current, "v1", 2), 0);
	cr_assert_eq(rd_storage_batch_apply_kv(b, 1, 3, cmds[2], lens[2], &r, msg), 0);
	cr_assert_eq(r.status, 0);
	rd_storage_commit(st, b);
	expect_value(1, "k", "v3");
}

/* An entry is applied at most once and only when committed. */
Test(batch, apply_refuses_reapply_and_uncommitted_entries)
{
	uint8_t cmds[2][256];
	size_t lens[2];
	struct rd_kv_result r;
	two_puts(cmds, lens, "k", "1", "k", "2");
	log_commands(1, cmds, lens, 1);
	cr_assert_eq(rd_storage_batch_apply_kv(b, 1, 1, cmds[0], lens[0], &r, msg), 0);
	rd_storage_commit(st, b);
	reopen();
	cr_assert_eq(rd_storage_batch_apply_kv(b, 1, 1, cmds[1], lens[1], &r, msg),
	             RD_EINVAL);
	cr_assert_eq(rd_storage_batch_apply_kv(b, 1, 2, cmds[1], lens[1], &r, msg),
	             RD_EINVAL);
	cr_assert_eq(rd_storage_batch_set_applied(b, 1, 2, msg), RD_EINVAL);
	cr_assert(rd_storage_batch_empty(b));
	expect_value(1, "k", "1");
}

static int collect(void *arg, const uint8_t *k, size_t klen, const uint8_t *v,
                   size_t vlen)
{
	int *n = arg;
	(void)v, (void)vlen;
	cr_assert_eq(klen, 2);
	cr_assert_eq(k[0], 'k');
	cr_assert_eq(k[1], '0' + *n);
	(*n)++;
	return 0;
}

Test(batch, kv_scan_lists_one_groups_keys_in_order)
{
	uint8_t cmds[5][256];
	size_t lens[5];
	struct rd_kv_result r;
	const char *keys[5] = {"k3", "k1", "k0", "k4", "k2"};
	for (int i = 0; i < 5; i++)
		lens[i] = enc(cmds[i], RD_KV_PUT, keys[i], "v", NULL);
	log_commands(2, cmds, lens, 5);
	for (uint64_t i = 0; i < 5; i++)
		cr_assert_eq(
		    rd_storage_batch_apply_kv(b, 2, i + 1, cmds[i], lens[i], &r, msg), 0);
	rd_storage_commit(st, b);
	int n = 0;
	cr_assert_eq(rd_storage_kv_scan(st, 2, collect, &n, msg), 0);
	cr_assert_eq(n, 5);
	n = 0;
	cr_assert_eq(rd_storage_kv_scan(st, 1, collect, &n, msg), 0);
	cr_assert_eq(n, 0);
}

Test(batch, catalog_blobs_incarnation_and_cluster_id)
{
	uint8_t *v;
	size_t len;
	uint64_t inc = rd_storage_incarnation(st);
	cr_assert_neq(inc, 0);
	cr_assert_str_eq(rd_storage_cluster_id(st), "test");
	cr_assert_eq(
	    rd_storage_catalog_get(st, RD_STORAGE_CATALOG_TOPOLOGY, &v, &len, msg),
	    RD_ENOTFOUND);
	cr_assert_eq(rd_storage_catalog_put(st, RD_STORAGE_CATALOG_TOPOLOGY,
	                                    (const uint8_t *)"topo", 4, msg),
	             0);
	cr_assert_eq(rd_storage_batch_catalog_put(b, RD_STORAGE_CATALOG_ROUTING,
	                                          (const uint8_t *)"route", 5, msg),
	             0);
	cr_assert_eq(
	    rd_storage_catalog_put(st, "incarnation", (const uint8_t *)"x", 1, msg),
	    RD_EINVAL);
	rd_storage_commit(st, b);
	reopen();
	cr_assert_eq(rd_storage_incarnation(st), inc, "incarnation is written once");
	cr_assert_eq(
	    rd_storage_catalog_get(st, RD_STORAGE_CATALOG_TOPOLOGY, &v, &len, msg), 0);
	cr_assert_eq(len, 4);
	cr_assert_eq(memcmp(v, "topo", 4), 0);
	free(v);
	cr_assert_eq(
	    rd_storage_catalog_get(st, RD_STORAGE_CATALOG_ROUTING, &v, &len, msg), 0);
	cr_assert_eq(len, 5);
	free(v);
	cr_assert_eq(rd_storage_set_cluster_id(st, "test", msg), 0);
	cr_assert_eq(rd_storage_set_cluster_id(st, "other", msg), RD_EMISMATCH);
}

Test(batch, a_new_directory_gets_a_new_incarnation)
{
	char d2[256];
	struct rd_storage *s2 = th_tmp_open(d2, sizeof d2);
	cr_assert_neq(rd_storage_incarnation(s2), rd_storage_incarnation(st));
	th_close_rm(s2, d2);
}

/* A database written before incarnations existed (no "incarnation" catalog
 * record) still holds its state: it gets an incarnation at open instead of
 * being refused, and keeps it from then on; the rest of the state stays. */
Test(batch, a_directory_without_an_incarnation_gets_one_at_open)
{
	struct th_raw raw;
	uint64_t first;

	th_append(st, 1, 1, 3, 2);
	rd_storage_batch_free(b);
	b = NULL;
	rd_storage_close(st);
	st = NULL;
	th_raw_open(&raw, dir);
	th_raw_delete(&raw, 4, "incarnation", 11);
	th_raw_close(&raw);
	st = th_open(dir);
	first = rd_storage_incarnation(st);
	cr_assert_neq(first, 0);
	struct rd_storage_group_info info;
	cr_assert_eq(rd_storage_group_info(st, 1, &info), 0);
	cr_assert_eq(info.last_index, 3, "the old state is kept");
	rd_storage_close(st);
	st = th_open(dir);
	cr_assert_eq(rd_storage_incarnation(st), first, "assigned once, then kept");
	b = rd_storage_batch_new(st);
}

/* The node catalog (lib/storage/storage.h): another cluster's directory, or a missing
 * one when the node may not create it, is refused with a clear message. */
Test(batch, foreign_cluster_and_missing_directory_are_refused)
{
	struct rd_storage_options o;
	struct rd_storage *s2 = NULL;
	char d2[300];

	rd_storage_batch_free(b);
	b = NULL;
	rd_storage_close(st);
	st = NULL;
	rd_storage_options_init(&o);
	o.cluster_id = "another";
	cr_assert_eq(rd_storage_open(dir, &o, &s2, msg), RD_EMISMATCH);
	cr_assert(strstr(msg, "test") != NULL && strstr(msg, "another") != NULL, "%s",
	          msg);
	snprintf(d2, sizeof d2, "%s/missing", dir);
	cr_assert_eq(rd_storage_open(d2, &o, &s2, msg), RD_ENOTFOUND);
	cr_assert(strstr(msg, d2) != NULL, "%s", msg);
	/* Without an expected id, the recorded one is accepted and reported. */
	o.cluster_id = NULL;
	cr_assert_eq(rd_storage_open(dir, &o, &s2, msg), 0, "%s", msg);
	cr_assert_str_eq(rd_storage_cluster_id(s2), "test");
	st = s2;
	b = rd_storage_batch_new(st);
}

Test(batch, joining_node_learns_its_cluster_id_later)
{
	struct rd_storage_options o;
	struct rd_storage *s2 = NULL;
	char d2[256];
	th_tmpdir(d2, sizeof d2);
	rd_storage_options_init(&o);
	o.create_if_missing = true;
	cr_assert_eq(rd_storage_open(d2, &o, &s2, msg), 0, "%s", msg);
	cr_assert_str_eq(rd_storage_cluster_id(s2), "");
	cr_assert_eq(rd_storage_set_cluster_id(s2, "c1", msg), 0);
	rd_storage_close(s2);
	o.create_if_missing = false;
	o.cluster_id = "c1";
	cr_assert_eq(rd_storage_open(d2, &o, &s2, msg), 0, "%s", msg);
	th_close_rm(s2, d2);
}

Test(batch, dropping_a_group_removes_log_state_and_keys)
{
	uint8_t cmds[2][256];
	size_t lens[2];
	struct rd_kv_result r;
	two_puts(cmds, lens, "a", "1", "b", "2");
	log_commands(3, cmds, lens, 2);
	log_commands(4, cmds, lens, 2);
	for (uint64_t g = 3; g <= 4; g++)
		for (uint64_t i = 0; i < 2; i++)
			cr_assert_eq(rd_storage_batch_apply_kv(b, g, i + 1, cmds[i],
			                                       lens[i], &r, msg),
			             0);
	rd_storage_commit(st, b);
	cr_assert_eq(rd_storage_drop_group(st, 3, msg), 0, "%s", msg);
	for (int pass = 0; pass < 2; pass++) {
		struct rd_storage_group_info gi;
		cr_assert_eq(rd_storage_group_info(st, 3, &gi), RD_ENOTFOUND);
		cr_assert_eq(rd_storage_last_index(st, 3), 0);
		expect_value(3, "a", NULL);
		expect_value(4, "a", "1");
		cr_assert_eq(rd_storage_group_info(st, 4, &gi), 0);
		cr_assert_eq(gi.applied, 2);
		cr_assert_eq(rd_storage_group_count(st), 1);
		reopen();
	}
	/* The group can start again from scratch. */
	th_append(st, 3, 1, 1, 1);
	cr_assert_eq(rd_storage_last_index(st, 3), 1);
}

/* Keys up to RD_KV_KEY_MAX work end to end (the read path copies long
 * composite keys to the heap). */
Test(batch, long_keys_round_trip)
{
	static uint8_t key[RD_KV_KEY_MAX], cmd[RD_KV_KEY_MAX + 64];
	struct rd_kv_cmd c = {.op = RD_KV_PUT,
	                      .key = key,
	                      .key_len = RD_KV_KEY_MAX,
	                      .value = (const uint8_t *)"v",
	                      .value_len = 1};
	struct rd_entry e = {.term = 1, .index = 1, .type = RD_ENTRY_NORMAL, .data = cmd};
	struct rd_hard_state hs = {.term = 1, .commit = 1};
	struct rd_kv_result r;
	size_t len;
	memset(key, 'k', sizeof key);
	cr_assert_eq(rd_kv_encode(&c, cmd, sizeof cmd, &len), 0);
	e.len = (uint32_t)len;
	cr_assert_eq(rd_storage_batch_append(b, 1, &e, 1, msg), 0);
	cr_assert_eq(rd_storage_batch_set_hard_state(b, 1, &hs, msg), 0);
	cr_assert_eq(rd_storage_batch_apply_kv(b, 1, 1, cmd, len, &r, msg), 0);
	cr_assert_eq(r.status, 0);
	rd_storage_commit(st, b);
	uint8_t *v;
	size_t vlen;
	cr_assert_eq(rd_storage_kv_get(st, 1, key, sizeof key, &v, &vlen, msg), 0, "%s",
	             msg);
	cr_assert_eq(vlen, 1);
	cr_assert_eq(v[0], 'v');
	free(v);
	key[0] = 'x';
	cr_assert_eq(rd_storage_kv_get(st, 1, key, sizeof key, &v, &vlen, msg),
	             RD_ENOTFOUND);
}

/* The conf state record is the membership as of the applied index
 * (storage.h), written with it: a kill that loses the last applies (they
 * are written without the WAL, rd_storage_commit) loses that membership
 * with them, and the pair stays consistent: applied 3 with {1,2,3}, or
 * applied 4 with {1,2}, never applied 3 with {1,2}. */
Test(batch, a_kill_keeps_the_conf_state_with_the_applied_index)
{
	struct rd_conf_state three = {.n_voters = 3, .voters = {1, 2, 3}};
	struct rd_conf_state two = {.n_voters = 2, .voters = {1, 2}};
	struct rd_hard_state hs = {.term = 1, .commit = 3};
	struct rd_storage_group_info gi;

	th_append(st, 4, 1, 3, 1);
	cr_assert_eq(rd_storage_batch_set_hard_state(b, 4, &hs, msg), 0, "%s", msg);
	cr_assert_eq(rd_storage_batch_set_applied(b, 4, 3, msg), 0, "%s", msg);
	cr_assert_eq(rd_storage_batch_set_conf_state(b, 4, &three, msg), 0, "%s", msg);
	rd_storage_commit(st, b);
	/* A close flushes: applied 3 and {1,2,3} on disk. */
	rd_storage_batch_free(b);
	rd_storage_close(st);

	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		/* Entry 4 (the removal of 3) committed and applied, then
		 * the process dies before any flush. */
		st = th_open(dir);
		b = rd_storage_batch_new(st);
		th_append(st, 4, 4, 1, 1);
		hs.commit = 4;
		if (rd_storage_batch_set_hard_state(b, 4, &hs, msg) != 0 ||
		    rd_storage_batch_set_applied(b, 4, 4, msg) != 0 ||
		    rd_storage_batch_set_conf_state(b, 4, &two, msg) != 0)
			_exit(2);
		rd_storage_commit(st, b);
		_exit(0);
	}
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	st = th_open(dir);
	b = rd_storage_batch_new(st);
	cr_assert_eq(rd_storage_group_info(st, 4, &gi), 0);
	cr_assert_eq(gi.hs.commit, 4, "the synced part survives");
	if (gi.applied == 3)
		cr_assert_eq(gi.conf.n_voters, 3,
		             "applied 3 goes with {1,2,3}, got %u voters",
		             gi.conf.n_voters);
	else
		cr_assert(gi.applied == 4 && gi.conf.n_voters == 2,
		          "applied %llu, %u voters", (unsigned long long)gi.applied,
		          gi.conf.n_voters);
}

static uint64_t commit_only_writes(void)
{
	struct rd_storage_stats s;
	rd_storage_get_stats(st, &s);
	return s.commit_only_writes;
}

/* A commit index need not be on stable storage (Raft paper Fig. 2, thesis
 * §3.8): a batch whose only Raft state changes are commit advances goes
 * through the WAL without a sync; anything else in W1 (entries, a term or
 * vote, a group's first hard state, a catalog record) syncs the whole
 * write as before. The commit written without a sync is read back. */
/* Set the hard states given (group 1, group 2; NULL: none) and commit. */
static void commit_states(const struct rd_hard_state *hs1,
                          const struct rd_hard_state *hs2)
{
	if (hs1 != NULL)
		cr_assert_eq(rd_storage_batch_set_hard_state(b, 1, hs1, msg), 0, "%s",
		             msg);
	if (hs2 != NULL)
		cr_assert_eq(rd_storage_batch_set_hard_state(b, 2, hs2, msg), 0, "%s",
		             msg);
	rd_storage_commit(st, b);
}

Test(batch, commit_only_hard_states_skip_the_sync)
{
	struct rd_hard_state hs1 = {.term = 2, .vote = 1, .commit = 0};
	struct rd_hard_state hs2 = {.term = 2, .vote = 3, .commit = 0};
	th_append(st, 1, 1, 4, 2);
	th_append(st, 2, 1, 4, 2);
	uint64_t s0 = syncs();
	commit_states(&hs1, &hs2);
	cr_assert_eq(syncs(), s0 + 1, "a group's first hard state is synced");
	cr_assert_eq(commit_only_writes(), 0);

	hs1.commit = 2;
	hs2.commit = 3;
	commit_states(&hs1, &hs2);
	cr_assert_eq(syncs(), s0 + 1, "commit advances alone are not synced");
	cr_assert_eq(commit_only_writes(), 1);

	/* A commit advance beside a new term, entries or a catalog record. */
	hs1.commit = 3;
	hs2 = (struct rd_hard_state){.term = 3, .vote = 0, .commit = 3};
	commit_states(&hs1, &hs2);
	cr_assert_eq(syncs(), s0 + 2, "a term change is synced");
	hs2.vote = 1;
	commit_states(NULL, &hs2);
	cr_assert_eq(syncs(), s0 + 3, "a vote is synced");
	struct rd_entry e[1];
	uint8_t data[32];
	th_entries(e, data, 1, 1, 5, 2, 32);
	cr_assert_eq(rd_storage_batch_append(b, 1, e, 1, msg), 0, "%s", msg);
	hs1.commit = 4;
	cr_assert_eq(rd_storage_batch_set_hard_state(b, 1, &hs1, msg), 0, "%s", msg);
	rd_storage_commit(st, b);
	cr_assert_eq(syncs(), s0 + 4, "entries are synced");
	hs1.commit = 5;
	cr_assert_eq(rd_storage_batch_set_hard_state(b, 1, &hs1, msg), 0, "%s", msg);
	cr_assert_eq(rd_storage_batch_catalog_put(b, "x", (const uint8_t *)"y", 1, msg),
	             0, "%s", msg);
	rd_storage_commit(st, b);
	cr_assert_eq(syncs(), s0 + 5, "a catalog record is synced");
	cr_assert_eq(commit_only_writes(), 1);

	hs2.commit = 4;
	commit_states(NULL, &hs2);
	cr_assert_eq(syncs(), s0 + 5);
	cr_assert_eq(commit_only_writes(), 2);

	reopen();
	struct rd_storage_group_info gi;
	cr_assert_eq(rd_storage_group_info(st, 1, &gi), 0);
	cr_assert_eq(gi.hs.commit, 5);
	cr_assert_eq(rd_storage_group_info(st, 2, &gi), 0);
	cr_assert_eq(gi.hs.term, 3);
	cr_assert_eq(gi.hs.vote, 1);
	cr_assert_eq(gi.hs.commit, 4);
}
