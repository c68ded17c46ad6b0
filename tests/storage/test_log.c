/* The Raft log in RocksDB: append, conflicting-suffix overwrite, range reads
 * with a byte limit, term lookups, compaction, and the cache agreeing with
 * RocksDB. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "storage/internal.h"
#include "storage/storage.h"
#include "util/err.h"

static char dir[256];
static struct rd_storage *st;
static struct rd_entry_buf eb;
static char msg[RD_ERRMSG_SIZE];

static void setup(void)
{
	st = th_tmp_open(dir, sizeof dir);
	memset(&eb, 0, sizeof eb);
}

static void teardown(void)
{
	rd_entry_buf_free(&eb);
	th_close_rm(st, dir);
}

TestSuite(log, .init = setup, .fini = teardown);

/* Every entry in [lo, hi) reads back with its term and th_fill bytes. */
static void expect_range(uint64_t group, uint64_t lo, uint64_t hi, const uint64_t *terms)
{
	uint8_t want[64];
	int rv = rd_storage_entries(st, group, lo, hi, 0, &eb, msg);
	cr_assert_eq(rv, 0, "entries: %s", msg);
	cr_assert_eq(eb.n, hi - lo);
	for (size_t i = 0; i < eb.n; i++) {
		struct rd_entry *e = &eb.ents[i];
		cr_assert_eq(e->index, lo + i);
		cr_assert_eq(e->term, terms[lo + i], "index %llu",
		             (unsigned long long)e->index);
		cr_assert_eq(e->len, 32);
		th_fill(want, 32, group, e->index, e->term);
		cr_assert_eq(memcmp(e->data, want, 32), 0, "bytes of index %llu",
		             (unsigned long long)e->index);
	}
}

Test(log, empty_log_has_first_1_last_0_and_term_0_at_0)
{
	uint64_t t = 99;
	cr_assert_eq(rd_storage_first_index(st, 5), 1);
	cr_assert_eq(rd_storage_last_index(st, 5), 0);
	cr_assert_eq(rd_storage_term(st, 5, 0, &t, msg), 0);
	cr_assert_eq(t, 0);
	cr_assert_eq(rd_storage_term(st, 5, 1, &t, msg), RD_EUNAVAILABLE);
	cr_assert_eq(rd_storage_entries(st, 5, 1, 1, 0, &eb, msg), 0);
	cr_assert_eq(eb.n, 0);
	cr_assert_eq(rd_storage_entries(st, 5, 1, 2, 0, &eb, msg), RD_EUNAVAILABLE);
	struct rd_storage_group_info gi;
	cr_assert_eq(rd_storage_group_info(st, 5, &gi), RD_ENOTFOUND);
	cr_assert_eq(gi.first_index, 1);
	cr_assert_eq(gi.last_index, 0);
}

Test(log, append_reads_back_from_cache_and_after_reopen_from_rocksdb)
{
	uint64_t terms[11] = {0, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3};
	th_append(st, 7, 1, 3, 1);
	th_append(st, 7, 4, 4, 2);
	th_append(st, 7, 8, 3, 3);
	cr_assert_eq(rd_storage_last_index(st, 7), 10);
	expect_range(7, 1, 11, terms);
	struct rd_storage_stats s;
	rd_storage_get_stats(st, &s);
	cr_assert_eq(s.cache_hits, 1);
	st = th_reopen(st, dir);
	expect_range(7, 1, 11, terms);
	expect_range(7, 4, 6, terms);
	rd_storage_get_stats(st, &s);
	cr_assert_eq(s.cache_misses, 2);
	for (uint64_t i = 1; i <= 10; i++) {
		uint64_t t;
		cr_assert_eq(rd_storage_term(st, 7, i, &t, msg), 0);
		cr_assert_eq(t, terms[i]);
	}
}

Test(log, groups_are_separate)
{
	th_append(st, 1, 1, 5, 1);
	th_append(st, 2, 1, 2, 4);
	cr_assert_eq(rd_storage_last_index(st, 1), 5);
	cr_assert_eq(rd_storage_last_index(st, 2), 2);
	uint64_t ids[4];
	cr_assert_eq(rd_storage_groups(st, ids, 4), 2);
	cr_assert_eq(ids[0], 1);
	cr_assert_eq(ids[1], 2);
	st = th_reopen(st, dir);
	cr_assert_eq(rd_storage_groups(st, ids, 4), 2);
	uint64_t terms1[6] = {0, 1, 1, 1, 1, 1}, terms2[3] = {0, 4, 4};
	expect_range(1, 1, 6, terms1);
	expect_range(2, 1, 3, terms2);
}

/* Raft §5.3: a conflicting suffix is removed, including entries beyond the
 * new ones, both in the cache and in RocksDB. */
Test(log, overwrite_removes_conflicting_suffix)
{
	uint64_t terms[7] = {0, 1, 1, 1, 2, 2, 0};
	th_append(st, 3, 1, 6, 1);
	th_append(st, 3, 4, 2, 2);
	cr_assert_eq(rd_storage_last_index(st, 3), 5);
	expect_range(3, 1, 6, terms);
	cr_assert_eq(rd_storage_entries(st, 3, 1, 7, 0, &eb, msg), RD_EUNAVAILABLE);
	st = th_reopen(st, dir);
	cr_assert_eq(rd_storage_last_index(st, 3), 5);
	expect_range(3, 1, 6, terms);
}

Test(log, long_suffix_truncation_survives_reopen)
{
	uint64_t *terms = calloc(301, sizeof *terms);
	th_append(st, 3, 1, 300, 1);
	th_append(st, 3, 11, 1, 2);
	for (int i = 1; i <= 11; i++)
		terms[i] = i == 11 ? 2 : 1;
	st = th_reopen(st, dir);
	cr_assert_eq(rd_storage_last_index(st, 3), 11);
	expect_range(3, 1, 12, terms);
	th_append(st, 3, 12, 1, 2);
	st = th_reopen(st, dir);
	cr_assert_eq(rd_storage_last_index(st, 3), 12);
	free(terms);
}

/* rd_storage_batch_append of n (at most 2) entries [first, first+n) of
 * `term`, 32 bytes each, to group 1 in `b` (data is copied). */
static int append_run(struct rd_storage_batch *b, size_t n, uint64_t first, uint64_t term)
{
	struct rd_entry e[2];
	uint8_t data[64];

	th_entries(e, data, n, 1, first, term, 32);
	return rd_storage_batch_append(b, 1, e, n, msg);
}

/* Raft §5.4: committed entries never change; the storage refuses. */
Test(log, truncation_below_commit_is_refused)
{
	struct rd_storage_batch *b = rd_storage_batch_new(st);
	struct rd_hard_state hs = {.term = 1, .vote = 0, .commit = 4};

	th_append(st, 1, 1, 5, 1);
	cr_assert_eq(rd_storage_batch_set_hard_state(b, 1, &hs, msg), 0, "%s", msg);
	rd_storage_commit(st, b);
	cr_assert_eq(append_run(b, 2, 4, 2), RD_EINVAL);
	cr_assert(strstr(msg, "commit") != NULL, "%s", msg);
	cr_assert_eq(append_run(b, 2, 5, 2), 0, "%s", msg);
	rd_storage_commit(st, b);
	cr_assert_eq(rd_storage_last_index(st, 1), 6);
	rd_storage_batch_free(b);
}

Test(log, appends_that_leave_a_gap_or_go_back_in_term_are_refused)
{
	struct rd_storage_batch *b = rd_storage_batch_new(st);
	struct rd_entry e[2];
	uint8_t data[64];

	th_append(st, 1, 1, 3, 2);
	cr_assert_eq(append_run(b, 1, 5, 2), RD_EINVAL);
	cr_assert_eq(append_run(b, 1, 4, 1), RD_EINVAL);
	th_entries(e, data, 2, 1, 4, 2, 32);
	e[1].index = 6;
	cr_assert_eq(rd_storage_batch_append(b, 1, e, 2, msg), RD_EINVAL);
	cr_assert(rd_storage_batch_empty(b));
	rd_storage_batch_free(b);
}

Test(log, byte_limit_stops_before_the_entry_that_passes_it_but_returns_one)
{
	th_append(st, 1, 1, 10, 1);
	cr_assert_eq(rd_storage_entries(st, 1, 1, 11, 100, &eb, msg), 0);
	cr_assert_eq(eb.n, 3); /* 3 * 32 = 96 ≤ 100 < 128 */
	cr_assert_eq(rd_storage_entries(st, 1, 2, 11, 1, &eb, msg), 0);
	cr_assert_eq(eb.n, 1);
	cr_assert_eq(eb.ents[0].index, 2);
	st = th_reopen(st, dir);
	cr_assert_eq(rd_storage_entries(st, 1, 1, 11, 64, &eb, msg), 0);
	cr_assert_eq(eb.n, 2);
	cr_assert_eq(rd_storage_entries(st, 1, 1, 11, 0, &eb, msg), 0);
	cr_assert_eq(eb.n, 10);
}

static void compact(uint64_t group, uint64_t index, int want)
{
	struct rd_storage_batch *b = rd_storage_batch_new(st);
	cr_assert_eq(rd_storage_batch_compact(b, group, index, &no_conf, msg), want, "%s",
	             msg);
	rd_storage_commit(st, b);
	rd_storage_batch_free(b);
}

static void commit_applied(uint64_t group, uint64_t upto, uint64_t term)
{
	struct rd_storage_batch *b = rd_storage_batch_new(st);
	struct rd_hard_state hs = {.term = term, .vote = 0, .commit = upto};
	cr_assert_eq(rd_storage_batch_set_hard_state(b, group, &hs, msg), 0, "%s", msg);
	cr_assert_eq(rd_storage_batch_set_applied(b, group, upto, msg), 0, "%s", msg);
	rd_storage_commit(st, b);
	rd_storage_batch_free(b);
	/* The apply reaches the disk with a flush (a close flushes): only
	 * then may the log be compacted up to it. */
	cr_assert_lt(rd_storage_durable_applied(st, group), upto);
	compact(group, upto, RD_EINVAL);
	st = th_reopen(st, dir);
	cr_assert_eq(rd_storage_durable_applied(st, group), upto);
}

/* Raft §7: compaction drops a prefix; the term of the last compacted entry
 * stays known and reads across the compaction point fail cleanly. */
Test(log, compaction_drops_prefix_and_keeps_term_at_the_point)
{
	uint64_t t;
	uint64_t terms[11] = {0, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2};
	th_append(st, 4, 1, 4, 1);
	th_append(st, 4, 5, 6, 2);
	compact(4, 3, RD_EINVAL); /* not applied yet */
	commit_applied(4, 6, 2);
	compact(4, 7, RD_EINVAL); /* beyond applied */
	compact(4, 4, 0);
	for (int pass = 0; pass < 2; pass++) {
		cr_assert_eq(rd_storage_first_index(st, 4), 5);
		cr_assert_eq(rd_storage_term(st, 4, 4, &t, msg), 0);
		cr_assert_eq(t, 1);
		cr_assert_eq(rd_storage_term(st, 4, 3, &t, msg), RD_ECOMPACTED);
		cr_assert_eq(rd_storage_entries(st, 4, 4, 6, 0, &eb, msg), RD_ECOMPACTED);
		expect_range(4, 5, 11, terms);
		st = th_reopen(st, dir);
	}
	compact(4, 2, 0); /* at or below the point: no-op */
	cr_assert_eq(rd_storage_first_index(st, 4), 5);
}

Test(log, compaction_to_the_last_index_leaves_an_empty_log_that_continues)
{
	uint64_t t;
	th_append(st, 4, 1, 5, 3);
	commit_applied(4, 5, 3);
	compact(4, 5, 0);
	for (int pass = 0; pass < 2; pass++) {
		cr_assert_eq(rd_storage_first_index(st, 4), 6);
		cr_assert_eq(rd_storage_last_index(st, 4), 5);
		cr_assert_eq(rd_storage_term(st, 4, 5, &t, msg), 0);
		cr_assert_eq(t, 3);
		cr_assert_eq(rd_storage_entries(st, 4, 6, 6, 0, &eb, msg), 0);
		cr_assert_eq(eb.n, 0);
		st = th_reopen(st, dir);
	}
	/* An append must continue at 6 with a term ≥ 3. */
	th_append(st, 4, 6, 2, 3);
	uint64_t terms[8] = {0, 0, 0, 0, 0, 0, 3, 3};
	st = th_reopen(st, dir);
	expect_range(4, 6, 8, terms);
}

Test(log, entries_across_a_compaction_point_and_an_append_below_it)
{
	struct rd_storage_batch *b;
	struct rd_entry e[1];
	uint8_t data[32];
	th_append(st, 2, 1, 10, 1);
	commit_applied(2, 8, 1);
	compact(2, 6, 0);
	b = rd_storage_batch_new(st);
	cr_assert_eq(rd_storage_entries(st, 2, 6, 9, 0, &eb, msg), RD_ECOMPACTED);
	cr_assert_eq(rd_storage_entries(st, 2, 7, 11, 0, &eb, msg), 0);
	cr_assert_eq(eb.n, 4);
	th_entries(e, data, 1, 2, 6, 1, 32);
	cr_assert_eq(rd_storage_batch_append(b, 2, e, 1, msg), RD_ECOMPACTED);
	rd_storage_batch_free(b);
}

/* The cache is bounded: with a tiny bound old entries come from RocksDB,
 * and both paths return the same bytes. */
Test(log, small_cache_evicts_and_reads_fall_back_to_rocksdb)
{
	struct rd_storage_options o;
	uint64_t terms[101];
	rd_storage_close(st);
	rd_storage_options_init(&o);
	o.create_if_missing = true;
	o.cache_bytes_per_group = 10 * (32 + 48);
	cr_assert_eq(rd_storage_open(dir, &o, &st, msg), 0, "%s", msg);
	for (int i = 0; i <= 100; i++)
		terms[i] = 1;
	for (int i = 1; i <= 100; i += 10)
		th_append(st, 9, (uint64_t)i, 10, 1);
	struct rd_storage_stats s0, s1;
	rd_storage_get_stats(st, &s0);
	expect_range(9, 91, 101, terms);
	rd_storage_get_stats(st, &s1);
	cr_assert_eq(s1.cache_hits, s0.cache_hits + 1);
	expect_range(9, 50, 101, terms);
	rd_storage_get_stats(st, &s0);
	cr_assert_eq(s0.cache_misses, s1.cache_misses + 1);
}

/* An idle group's cache is dropped (rd_storage_cache_drop): the same
 * entries come from RocksDB, and new commits are cached again. */
Test(log, a_dropped_cache_reads_from_rocksdb_and_refills)
{
	uint64_t terms[31];
	for (int i = 0; i <= 30; i++)
		terms[i] = 1;
	th_append(st, 4, 1, 20, 1);
	struct rd_storage_stats s0, s1;
	rd_storage_get_stats(st, &s0);
	expect_range(4, 11, 21, terms);
	rd_storage_get_stats(st, &s1);
	cr_assert_eq(s1.cache_hits, s0.cache_hits + 1);
	rd_storage_cache_drop(st, 4);
	rd_storage_cache_drop(st, 99); /* unknown: no-op */
	expect_range(4, 11, 21, terms);
	rd_storage_get_stats(st, &s0);
	cr_assert_eq(s0.cache_misses, s1.cache_misses + 1, "read from RocksDB");
	th_append(st, 4, 21, 10, 1);
	expect_range(4, 21, 31, terms);
	rd_storage_get_stats(st, &s1);
	cr_assert_eq(s1.cache_hits, s0.cache_hits + 1, "cached again");
}

static int count_cb(void *arg, const struct rd_entry *e)
{
	uint64_t *n = arg;
	cr_assert_eq(e->index, *n + 1);
	(*n)++;
	return 0;
}

Test(log, scan_visits_every_entry_in_order)
{
	uint64_t n = 0;
	th_append(st, 1, 1, 50, 1);
	st = th_reopen(st, dir);
	cr_assert_eq(rd_storage_log_scan(st, 1, 1, count_cb, &n, msg), 0, "%s", msg);
	cr_assert_eq(n, 50);
	n = 9;
	cr_assert_eq(rd_storage_log_scan(st, 1, 10, count_cb, &n, msg), 0);
	cr_assert_eq(n, 50);
}

Test(log, truncate_drops_an_uncommitted_tail_but_never_a_committed_entry)
{
	struct rd_storage_batch *b = rd_storage_batch_new(st);
	struct rd_hard_state hs = {.term = 2, .commit = 3};
	uint64_t terms[5] = {0, 1, 1, 2, 2};
	th_append(st, 1, 1, 2, 1);
	th_append(st, 1, 3, 8, 2);
	cr_assert_eq(rd_storage_batch_set_hard_state(b, 1, &hs, msg), 0);
	rd_storage_commit(st, b);
	cr_assert_eq(rd_storage_batch_truncate(b, 1, 3, msg), RD_EINVAL);
	cr_assert_eq(rd_storage_batch_truncate(b, 1, 11, msg), 0);
	cr_assert(rd_storage_batch_empty(b));
	cr_assert_eq(rd_storage_batch_truncate(b, 1, 5, msg), 0, "%s", msg);
	rd_storage_commit(st, b);
	for (int pass = 0; pass < 2; pass++) {
		cr_assert_eq(rd_storage_last_index(st, 1), 4);
		uint64_t t;
		cr_assert_eq(rd_storage_term(st, 1, 4, &t, msg), 0);
		cr_assert_eq(t, 2);
		expect_range(1, 1, 5, terms);
		cr_assert_eq(rd_storage_entries(st, 1, 1, 6, 0, &eb, msg),
		             RD_EUNAVAILABLE);
		rd_storage_batch_free(b);
		st = th_reopen(st, dir);
		b = rd_storage_batch_new(st);
	}
	rd_storage_batch_free(b);
}

/* Several appends to one group in one batch compose: the later overwrite
 * wins, in the cache and in RocksDB alike. */
Test(log, overwrite_within_one_batch_agrees_in_cache_and_rocksdb)
{
	struct rd_storage_batch *b = rd_storage_batch_new(st);
	struct rd_entry e[5];
	uint8_t data[5 * 32];
	uint64_t terms[5] = {0, 1, 1, 2, 2};
	th_entries(e, data, 5, 6, 1, 1, 32);
	cr_assert_eq(rd_storage_batch_append(b, 6, e, 5, msg), 0, "%s", msg);
	th_entries(e, data, 2, 6, 3, 2, 32);
	cr_assert_eq(rd_storage_batch_append(b, 6, e, 2, msg), 0, "%s", msg);
	rd_storage_commit(st, b);
	cr_assert_eq(rd_storage_last_index(st, 6), 4);
	expect_range(6, 1, 5, terms);
	struct rd_storage_stats s;
	rd_storage_get_stats(st, &s);
	cr_assert_eq(s.cache_hits, 1);
	rd_storage_batch_free(b); /* before the close (storage.h) */
	st = th_reopen(st, dir);
	expect_range(6, 1, 5, terms);
}

/* Append, commit and apply in one batch: compacting the entries in the same
 * batch is refused, since their apply is not on disk yet (storage.h
 * rd_storage_commit: it reaches the disk with a flush); after one (a close
 * flushes), compaction in a batch that also appends keeps the term at the
 * point. */
Test(log, compaction_of_entries_appended_in_the_same_batch_waits_for_the_disk)
{
	struct rd_storage_batch *b = rd_storage_batch_new(st);
	struct rd_entry e[5], more[1];
	uint8_t data[5 * 32], mdata[32];
	struct rd_hard_state hs = {.term = 3, .commit = 5};
	uint64_t t, terms[7] = {0, 0, 0, 0, 3, 3, 3};
	th_entries(e, data, 5, 2, 1, 3, 32);
	cr_assert_eq(rd_storage_batch_append(b, 2, e, 5, msg), 0, "%s", msg);
	cr_assert_eq(rd_storage_batch_set_hard_state(b, 2, &hs, msg), 0, "%s", msg);
	cr_assert_eq(rd_storage_batch_set_applied(b, 2, 5, msg), 0, "%s", msg);
	cr_assert_eq(rd_storage_batch_compact(b, 2, 3, &no_conf, msg), RD_EINVAL);
	cr_assert(strstr(msg, "applied index on disk") != NULL, "%s", msg);
	rd_storage_commit(st, b);
	rd_storage_batch_free(b); /* before the close (storage.h) */
	st = th_reopen(st, dir);
	b = rd_storage_batch_new(st);
	th_entries(more, mdata, 1, 2, 6, 3, 32);
	cr_assert_eq(rd_storage_batch_append(b, 2, more, 1, msg), 0, "%s", msg);
	cr_assert_eq(rd_storage_batch_compact(b, 2, 3, &no_conf, msg), 0, "%s", msg);
	rd_storage_commit(st, b);
	rd_storage_batch_free(b);
	for (int pass = 0; pass < 2; pass++) {
		cr_assert_eq(rd_storage_first_index(st, 2), 4);
		cr_assert_eq(rd_storage_term(st, 2, 3, &t, msg), 0);
		cr_assert_eq(t, 3);
		expect_range(2, 4, 7, terms);
		cr_assert_eq(rd_storage_entries(st, 2, 3, 6, 0, &eb, msg), RD_ECOMPACTED);
		st = th_reopen(st, dir);
	}
}

/* The apply reaches the disk when RocksDB flushes on its own (a full
 * memtable): rd_storage_durable_applied then moves up to an index that was
 * applied, never past the applied index, and compaction may follow it. */
Test(log, durable_applied_follows_the_flushes_rocksdb_starts)
{
	struct rd_storage_options o;
	struct rd_storage_group_info gi;
	uint64_t durable = 0;
	char prefix[16];

	rd_storage_close(st);
	rd_storage_options_init(&o);
	o.create_if_missing = true;
	o.memtable_bytes = 64u << 10;
	cr_assert_eq(rd_storage_open(dir, &o, &st, msg), 0, "%s", msg);
	/* 1 KiB values: a 64 KiB memtable fills within a few batches. */
	for (int round = 0; round < 400 && durable == 0; round++) {
		snprintf(prefix, sizeof prefix, "r%03d-", round);
		th_put_keys(st, 3, prefix, 8, 1024, 1);
		if (round % 20 == 19)
			usleep(60 * 1000); /* past RD_STORAGE_DURABLE_CHECK_NS */
		durable = rd_storage_durable_applied(st, 3);
	}
	rd_storage_group_info(st, 3, &gi);
	cr_assert_gt(durable, 0, "no flush moved the applied index on disk");
	cr_assert_leq(durable, gi.applied);
	compact(3, durable, 0);
	cr_assert_eq(rd_storage_first_index(st, 3), durable + 1);
	if (durable < gi.applied)
		compact(3, gi.applied, RD_EINVAL);
	/* Reopened (the close flushes), the state is whole. */
	st = th_reopen(st, dir);
	rd_storage_group_info(st, 3, &gi);
	cr_assert_eq(gi.applied, gi.hs.commit);
	cr_assert_eq(rd_storage_durable_applied(st, 3), gi.applied);
}

/* rd_storage_flush_soon has RocksDB flush every family, so a few applies
 * reach the disk without filling a memtable; a second call right after
 * does nothing (it is paced). */
Test(log, flush_soon_puts_the_apply_on_disk)
{
	th_append(st, 5, 1, 6, 1);
	struct rd_storage_batch *b = rd_storage_batch_new(st);
	struct rd_hard_state hs = {.term = 1, .commit = 6};
	cr_assert_eq(rd_storage_batch_set_hard_state(b, 5, &hs, msg), 0, "%s", msg);
	cr_assert_eq(rd_storage_batch_set_applied(b, 5, 6, msg), 0, "%s", msg);
	rd_storage_commit(st, b);
	rd_storage_batch_free(b);
	cr_assert_eq(rd_storage_durable_applied(st, 5), 0);
	rd_storage_flush_soon(st);
	uint64_t durable = 0;
	for (int i = 0; i < 100 && durable < 6; i++) {
		usleep(60 * 1000); /* past RD_STORAGE_DURABLE_CHECK_NS */
		durable = rd_storage_durable_applied(st, 5);
	}
	cr_assert_eq(durable, 6, "the flush did not reach the disk");
	compact(5, 6, 0);
	cr_assert_eq(rd_storage_first_index(st, 5), 7);
}

/* How many files of the data directory end in `suffix`. */
static int files_ending(const char *d, const char *suffix)
{
	DIR *dp = opendir(d);
	struct dirent *de;
	size_t sl = strlen(suffix);
	int n = 0;

	cr_assert_not_null(dp);
	while ((de = readdir(dp)) != NULL) {
		size_t l = strlen(de->d_name);
		n += l > sl && strcmp(de->d_name + l - sl, suffix) == 0;
	}
	closedir(dp);
	return n;
}

/* Entries of RD_LOG_BLOB_MIN bytes and more are in blob files once flushed
 * (storage.c), the small ones in the SST files: both read back whole after
 * a reopen (whose load checks every record's checksum) and a compaction. */
Test(log, entries_in_blob_files_read_back_after_a_flush_and_a_compaction)
{
	enum { N = 24, BIG = 1024, SMALL = 32 };
	struct rd_entry ents[N];
	static uint8_t data[N * BIG];
	struct rd_storage_batch *b = rd_storage_batch_new(st);

	for (size_t i = 0; i < N; i++) {
		uint32_t len = i % 3 == 2 ? SMALL : BIG;
		th_entries(&ents[i], data + i * BIG, 1, 5, 1 + i, 1, len);
	}
	cr_assert_eq(rd_storage_batch_append(b, 5, ents, N, msg), 0, "%s", msg);
	rd_storage_commit(st, b);
	rd_storage_batch_free(b);
	cr_assert_eq(files_ending(dir, ".blob"), 0, "no flush yet");
	commit_applied(5, N, 1); /* reopens: the close flushed */
	cr_assert_geq(files_ending(dir, ".blob"), 1, "the flush wrote no blob file");
	compact(5, N / 2, 0);
	for (int pass = 0; pass < 2; pass++) {
		uint8_t want[BIG];
		cr_assert_eq(rd_storage_first_index(st, 5), N / 2 + 1);
		cr_assert_eq(rd_storage_entries(st, 5, N / 2 + 1, N + 1, 0, &eb, msg), 0,
		             "%s", msg);
		cr_assert_eq(eb.n, N / 2);
		for (size_t i = 0; i < eb.n; i++) {
			struct rd_entry *e = &eb.ents[i];
			uint32_t len = (e->index - 1) % 3 == 2 ? SMALL : BIG;
			cr_assert_eq(e->len, len, "index %llu",
			             (unsigned long long)e->index);
			th_fill(want, len, 5, e->index, 1);
			cr_assert_eq(memcmp(e->data, want, len), 0, "bytes of index %llu",
			             (unsigned long long)e->index);
		}
		st = th_reopen(st, dir);
	}
}
