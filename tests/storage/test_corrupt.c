/* Corruption found at open refuses to start with a message that names the
 * group and index (lib/storage/storage.h, "Failure policy"); never a crash, never a
 * silent truncation. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "storage/internal.h"
#include "storage/storage.h"
#include "util/err.h"

static char dir[256];
static char msg[RD_ERRMSG_SIZE];

static void setup(void)
{
	th_tmpdir(dir, sizeof dir);
}

static void teardown(void)
{
	th_rmtree(dir);
}

TestSuite(corrupt, .init = setup, .fini = teardown);

/* Groups 1..3 with 20 entries each, commit 15 and applied 10 on each. */
static void populate(void)
{
	struct rd_storage *st = th_open(dir);
	struct rd_storage_batch *b = rd_storage_batch_new(st);
	for (uint64_t g = 1; g <= 3; g++) {
		th_append(st, g, 1, 20, 1);
		struct rd_hard_state hs = {.term = 1, .vote = 1, .commit = 15};
		cr_assert_eq(rd_storage_batch_set_hard_state(b, g, &hs, msg), 0);
		cr_assert_eq(rd_storage_batch_set_applied(b, g, 10, msg), 0);
	}
	rd_storage_commit(st, b);
	rd_storage_batch_free(b);
	rd_storage_close(st);
	cr_assert_eq(th_try_open(dir, msg), 0, "%s", msg);
}

/* populate, then open the directory raw to damage it. */
static void populate_raw(struct th_raw *r)
{
	populate();
	th_raw_open(r, dir);
}

static void expect_refusal(const char *a, const char *b)
{
	int rv = th_try_open(dir, msg);
	cr_assert_eq(rv, RD_ECORRUPT, "open gave %s: %s", rd_errname(rv), msg);
	cr_log_info("refused: %s", msg);
	cr_assert(strstr(msg, a) != NULL, "message lacks \"%s\": %s", a, msg);
	if (b != NULL)
		cr_assert(strstr(msg, b) != NULL, "message lacks \"%s\": %s", b, msg);
}

Test(corrupt, flipped_byte_in_a_log_entry)
{
	struct th_raw r;
	uint8_t k[RD_LOG_KEY_LEN];
	populate_raw(&r);
	rd_log_key(k, 2, 7);
	th_raw_flip(&r, 1, k, sizeof k, 3, 0x10);
	th_raw_close(&r);
	expect_refusal("group 2 index 7", "checksum");
}

Test(corrupt, flipped_byte_in_the_hard_state)
{
	struct th_raw r;
	uint8_t k[RD_STATE_KEY_LEN];
	populate_raw(&r);
	rd_state_key(k, 3, RD_STATE_HARD);
	th_raw_flip(&r, 2, k, sizeof k, 1, 0x01);
	th_raw_close(&r);
	expect_refusal("group 3", "hard state");
}

Test(corrupt, entry_removed_from_the_middle)
{
	struct th_raw r;
	uint8_t k[RD_LOG_KEY_LEN];
	populate_raw(&r);
	rd_log_key(k, 1, 12);
	th_raw_delete(&r, 1, k, sizeof k);
	th_raw_close(&r);
	expect_refusal("group 1 index 12", "gap");
}

/* Losing the log tail makes the commit index point past the last entry. */
Test(corrupt, committed_tail_missing)
{
	struct th_raw r;
	uint8_t k[RD_LOG_KEY_LEN];
	populate_raw(&r);
	for (uint64_t i = 14; i <= 20; i++) {
		rd_log_key(k, 3, i);
		th_raw_delete(&r, 1, k, sizeof k);
	}
	th_raw_close(&r);
	expect_refusal("group 3 index 15", "beyond the last log index 13");
}

static void put_hard(uint64_t group, struct rd_hard_state hs)
{
	struct th_raw r;
	uint8_t k[RD_STATE_KEY_LEN], v[RD_STATE_VAL_MAX];
	th_raw_open(&r, dir);
	rd_state_key(k, group, RD_STATE_HARD);
	size_t vlen = rd__enc_hard(v, group, &hs);
	th_raw_put(&r, 2, k, sizeof k, v, vlen);
	th_raw_close(&r);
}

/* A well-formed record with an impossible value: commit past the log. */
Test(corrupt, impossible_hard_state)
{
	populate();
	put_hard(2, (struct rd_hard_state){.term = 1, .vote = 1, .commit = 500});
	expect_refusal("group 2 index 500", "commit");
}

Test(corrupt, applied_beyond_commit)
{
	struct th_raw r;
	uint8_t k[RD_STATE_KEY_LEN], v[RD_STATE_VAL_MAX];
	populate_raw(&r);
	rd_state_key(k, 1, RD_STATE_APPLIED);
	size_t vlen = rd__enc_u64(v, 1, RD_STATE_APPLIED, 17);
	th_raw_put(&r, 2, k, sizeof k, v, vlen);
	th_raw_close(&r);
	expect_refusal("group 1 index 17", "applied");
}

/* A record copied to another key fails its checksum (the key is covered). */
Test(corrupt, entry_moved_to_another_index)
{
	struct th_raw r;
	uint8_t k[RD_LOG_KEY_LEN];
	size_t vlen;
	populate_raw(&r);
	rd_log_key(k, 1, 4);
	char *v = th_raw_get(&r, 1, k, sizeof k, &vlen);
	rd_log_key(k, 1, 5);
	th_raw_put(&r, 1, k, sizeof k, v, vlen);
	free(v);
	th_raw_close(&r);
	expect_refusal("group 1 index 5", "checksum");
}

/* Flip one byte at `off` of every file in dir whose name ends in `suffix`;
 * returns how many files were changed. */
static int flip_files(const char *suffix, long off_from_middle)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name), sl = strlen(suffix);
		if (l < sl || strcmp(de->d_name + l - sl, suffix) != 0)
			continue;
		char p[512];
		struct stat sb;
		snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
		int fd = open(p, O_RDWR);
		cr_assert_geq(fd, 0);
		fstat(fd, &sb);
		if (sb.st_size < 64) {
			close(fd);
			continue;
		}
		off_t off = sb.st_size / 2 + off_from_middle;
		uint8_t c;
		cr_assert_eq(pread(fd, &c, 1, off), 1);
		c ^= 0x5a;
		cr_assert_eq(pwrite(fd, &c, 1, off), 1);
		close(fd);
		n++;
	}
	closedir(d);
	return n;
}

/* Damage inside RocksDB's own files is caught by its block checksums. */
Test(corrupt, flipped_byte_in_a_table_file)
{
	struct th_raw r;
	populate_raw(&r);
	th_raw_flush(&r);
	th_raw_close(&r);
	cr_assert_gt(flip_files(".sst", 0), 0);
	int rv = th_try_open(dir, msg);
	cr_assert_eq(rv, RD_ECORRUPT, "open gave %s: %s", rd_errname(rv), msg);
	cr_log_info("refused: %s", msg);
	cr_assert(strstr(msg, "orruption") != NULL, "%s", msg);
}

/* kTolerateCorruptedTailRecords: damage before the WAL's tail (acknowledged
 * writes) refuses the open instead of replaying up to the damage. */
Test(corrupt, flipped_byte_in_the_middle_of_the_wal)
{
	struct rd_storage *st = th_open(dir);
	for (int i = 0; i < 50; i++)
		th_append(st, 1, (uint64_t)i * 4 + 1, 4, 1);
	rd_storage_close(st);
	cr_assert_gt(flip_files(".log", 0), 0);
	int rv = th_try_open(dir, msg);
	cr_assert_eq(rv, RD_ECORRUPT, "open gave %s: %s", rd_errname(rv), msg);
	cr_log_info("refused: %s", msg);
}

/* A torn last record (power lost mid-write, never acknowledged) is dropped:
 * the open succeeds and the log is an intact prefix. */
Test(corrupt, torn_wal_tail_is_tolerated)
{
	struct rd_storage *st = th_open(dir);
	for (int i = 0; i < 50; i++)
		th_append(st, 1, (uint64_t)i * 4 + 1, 4, 1);
	rd_storage_close(st);
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		if (l < 4 || strcmp(de->d_name + l - 4, ".log") != 0)
			continue;
		char p[512];
		struct stat sb;
		snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
		stat(p, &sb);
		if (sb.st_size > 100) {
			cr_assert_eq(truncate(p, sb.st_size - 20), 0);
			n++;
		}
	}
	closedir(d);
	cr_assert_gt(n, 0);
	st = th_open(dir);
	uint64_t last = rd_storage_last_index(st, 1);
	cr_assert(last == 196, "the last write (197..200) is gone, the rest intact: %llu",
	          (unsigned long long)last);
	rd_storage_close(st);
}
