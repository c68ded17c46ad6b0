/* Tracking of synced writes (storage.h, lib/storage/stall.c): every synced
 * write is recorded once, in order, for rd_storage_sync_recent; none is
 * outstanding between writes; the test-only fault hook applies to the
 * writes of a handle opened with $RAFTD_TEST_FSYNC_FAULT set. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "storage/storage.h"

Test(stall, each_synced_write_is_seen_once_and_none_stays_outstanding)
{
	char dir[256];
	uint64_t cursor = 0, ns[300];
	struct rd_storage *st;

	st = th_tmp_open(dir, sizeof dir);
	cr_assert_eq(rd_storage_sync_outstanding_since(st), 0);
	(void)rd_storage_sync_recent(st, &cursor, ns, 300);
	for (uint64_t i = 1; i <= 3; i++)
		th_append(st, 1, i, 1, 1);
	cr_assert_eq(rd_storage_sync_recent(st, &cursor, ns, 300), 3);
	cr_assert_eq(rd_storage_sync_recent(st, &cursor, ns, 300), 0, "seen once");
	cr_assert_eq(rd_storage_sync_outstanding_since(st), 0);
	/* More than the ring holds: the newest 256, then `max` bounds it. */
	for (uint64_t i = 4; i < 4 + 300; i++)
		th_append(st, 1, i, 1, 1);
	cr_assert_eq(rd_storage_sync_recent(st, &cursor, ns, 300), 256);
	th_append(st, 1, 304, 1, 1);
	th_append(st, 1, 305, 1, 1);
	cr_assert_eq(rd_storage_sync_recent(st, &cursor, ns, 1), 1);
	th_close_rm(st, dir);
}

static struct rd_storage *hooked;

static void *append_one(void *arg)
{
	(void)arg;
	th_append(hooked, 1, 1, 1, 1);
	return NULL;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

/* A write the hook blocks is outstanding (since a time other threads can
 * read, as the stall guard does) until the file lets it go; then it is
 * recorded and nothing is outstanding. */
Test(stall, a_blocked_write_is_outstanding_until_it_returns)
{
	char dir[256], fault[300];
	uint64_t cursor = 0, ns[8];
	pthread_t t;

	th_tmpdir(dir, sizeof dir);
	snprintf(fault, sizeof fault, "%s.fault", dir);
	write_file(fault, "");
	setenv("RAFTD_TEST_FSYNC_FAULT", fault, 1);
	hooked = th_open(dir);
	unsetenv("RAFTD_TEST_FSYNC_FAULT");
	(void)rd_storage_sync_recent(hooked, &cursor, ns, 8);
	write_file(fault, "block");
	cr_assert_eq(pthread_create(&t, NULL, append_one, NULL), 0);
	uint64_t since = 0;
	for (int i = 0; i < 6000 && since == 0; i++) {
		since = rd_storage_sync_outstanding_since(hooked);
		if (since == 0)
			usleep(10000);
	}
	cr_assert_neq(since, 0, "the blocked write is not outstanding");
	usleep(50000);
	cr_assert_eq(rd_storage_sync_outstanding_since(hooked), since, "still blocked");
	write_file(fault, "");
	pthread_join(t, NULL);
	cr_assert_eq(rd_storage_sync_outstanding_since(hooked), 0);
	cr_assert_eq(rd_storage_sync_recent(hooked, &cursor, ns, 8), 1);
	rd_storage_close(hooked);
	remove(fault);
	th_rmtree(dir);
}
