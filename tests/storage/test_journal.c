/* The journal of applied commands (storage/journal.h, schema.h "journal"):
 * entries written with the batch, read back in index order from any index,
 * trimmed with a start record that survives a reopen, dropped and restarted
 * by a snapshot install, a damaged record refused naming group and index. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "storage/journal.h"
#include "storage/storage.h"
#include "util/err.h"

static char dir[256];
static struct rd_storage *st;
static char msg[RD_ERRMSG_SIZE];

static void setup(void)
{
	st = th_tmp_open(dir, sizeof dir);
}

static void teardown(void)
{
	th_close_rm(st, dir);
}

TestSuite(journal, .init = setup, .fini = teardown);

/* Journal entries lo..hi of group 3 ("e<index>"), one batch. */
static void put_range(uint64_t lo, uint64_t hi)
{
	struct rd_storage_batch *b = rd_storage_batch_new(st);
	char data[32];

	for (uint64_t i = lo; i <= hi; i++) {
		int n = snprintf(data, sizeof data, "e%llu", (unsigned long long)i);
		struct rd_journal_rec r = {.group = 3,
		                           .index = i,
		                           .term = 2,
		                           .kind = RD_JOURNAL_RAW,
		                           .data = (const uint8_t *)data,
		                           .len = (size_t)n};
		cr_assert_eq(rd_storage_batch_journal_put(b, &r, msg), 0, "%s", msg);
	}
	rd_storage_commit(st, b);
	rd_storage_batch_free(b);
}

struct got {
	uint64_t idx[64];
	size_t n;
};

static int collect(void *ud, const struct rd_journal_rec *r)
{
	struct got *g = ud;
	char want[32];
	snprintf(want, sizeof want, "e%llu", (unsigned long long)r->index);
	cr_assert_eq(r->len, strlen(want));
	cr_assert_eq(memcmp(r->data, want, r->len), 0);
	cr_assert_eq(r->term, 2);
	g->idx[g->n++] = r->index;
	return 0;
}

Test(journal, read_from_an_index_in_order_bounded)
{
	struct got g = {0};
	size_t scanned;

	put_range(1, 10);
	cr_assert_eq(rd_storage_journal_read(st, 3, 4, 5, collect, &g, &scanned, msg), 0);
	cr_assert_eq(scanned, 5);
	for (size_t i = 0; i < 5; i++)
		cr_assert_eq(g.idx[i], 4 + i);
	/* Another group's entries are not read. */
	g.n = 0;
	cr_assert_eq(rd_storage_journal_read(st, 4, 1, 64, collect, &g, &scanned, msg),
	             0);
	cr_assert_eq(scanned, 0);
}

Test(journal, trim_records_the_start_and_survives_reopen)
{
	struct rd_journal_info in;
	struct got g = {0};

	put_range(1, 20);
	struct rd_storage_batch *b = rd_storage_batch_new(st);
	cr_assert_eq(rd_storage_batch_journal_trim(b, 3, 15, msg), 0);
	rd_storage_commit(st, b);
	rd_storage_batch_free(b);
	st = th_reopen(st, dir);
	cr_assert_eq(rd_storage_journal_info(st, 3, &in, msg), 0, "%s", msg);
	cr_assert_eq(in.start, 15);
	cr_assert_eq(in.first, 15);
	cr_assert_eq(in.last, 20);
	cr_assert_eq(in.count, 6);
	cr_assert_eq(in.bytes, 6 * rd_journal_rec_bytes(3));
	cr_assert_eq(rd_storage_journal_read(st, 3, 1, 64, collect, &g, NULL, msg), 0);
	cr_assert_eq(g.n, 6);
	cr_assert_eq(g.idx[0], 15);
	/* A group never written: start 1, empty. */
	cr_assert_eq(rd_storage_journal_info(st, 9, &in, msg), 0);
	cr_assert_eq(in.start, 1);
	cr_assert_eq(in.count, 0);
}

Test(journal, bad_entries_are_refused)
{
	struct rd_storage_batch *b = rd_storage_batch_new(st);
	struct rd_journal_rec r = {.group = 3, .index = 0, .kind = RD_JOURNAL_RAW};

	cr_assert_eq(rd_storage_batch_journal_put(b, &r, msg), RD_EINVAL);
	r.index = 1;
	r.kind = 9;
	cr_assert_eq(rd_storage_batch_journal_put(b, &r, msg), RD_EINVAL);
	cr_assert_eq(rd_storage_batch_journal_trim(b, 3, 0, msg), RD_EINVAL);
	rd_storage_batch_free(b);
}

Test(journal, a_flipped_byte_is_corruption_naming_group_and_index)
{
	struct th_raw raw;
	struct rd_journal_info in;
	uint8_t key[16] = {0};

	put_range(1, 3);
	rd_storage_close(st);
	st = NULL;
	th_raw_open(&raw, dir);
	key[7] = 3;
	key[15] = 2;
	th_raw_flip(&raw, 6, key, sizeof key, 1, 1);
	th_raw_close(&raw);
	st = th_open(dir);
	cr_assert_eq(rd_storage_journal_info(st, 3, &in, msg), RD_ECORRUPT);
	cr_assert_not_null(strstr(msg, "group 3 index 2"), "%s", msg);
}
