/*
 * The RocksDB options storage.c chooses are the ones in force: RocksDB
 * writes what it opened with into OPTIONS-<n> in the data directory, and
 * these tests read them back from there.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "storage/internal.h"
#include "storage/storage.h"

/* The value of `key` in section `section` of the newest OPTIONS file of
 * `dir`, into out (empty when absent). */
static void option(const char *dir, const char *section, const char *key, char *out,
                   size_t cap)
{
	char path[4200] = "", line[1024], sec[256] = "";
	long best = -1;
	struct dirent *de;
	DIR *d = opendir(dir);

	cr_assert_not_null(d);
	while ((de = readdir(d)) != NULL) {
		long n;
		if (sscanf(de->d_name, "OPTIONS-%ld", &n) == 1 && n > best) {
			best = n;
			snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		}
	}
	closedir(d);
	cr_assert(best >= 0, "no OPTIONS file in %s", dir);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	out[0] = 0;
	size_t klen = strlen(key);
	while (fgets(line, sizeof line, f) != NULL) {
		char *p = line + strspn(line, " \t");
		p[strcspn(p, "\r\n")] = 0;
		if (p[0] == '[') {
			snprintf(sec, sizeof sec, "%s", p);
			continue;
		}
		if (strcmp(sec, section) == 0 && strncmp(p, key, klen) == 0 &&
		    p[klen] == '=') {
			snprintf(out, cap, "%s", p + klen + 1);
			break;
		}
	}
	fclose(f);
}

Test(options, insert_hint_per_group_on_the_log_only)
{
	char dir[512], v[256];
	struct rd_storage *st = th_tmp_open(dir, sizeof dir);

	option(dir, "[CFOptions \"log\"]", "memtable_insert_with_hint_prefix_extractor",
	       v, sizeof v);
	cr_expect_str_eq(v, "rocksdb.FixedPrefix.8");
	option(dir, "[CFOptions \"state\"]", "memtable_insert_with_hint_prefix_extractor",
	       v, sizeof v);
	/* No hint where range deletions happen (a group drop removes its state
	 * records by range; storage.c says why). */
	cr_expect_str_eq(v, "nullptr");
	/* KV and session keys arrive in no order: no hint there. */
	option(dir, "[CFOptions \"kv\"]", "memtable_insert_with_hint_prefix_extractor", v,
	       sizeof v);
	cr_expect_str_eq(v, "nullptr");
	/* The hint came through the options-string parser from the family's
	 * options: the choices made before it are still in force. */
	option(dir, "[CFOptions \"log\"]", "compression", v, sizeof v);
	cr_expect_str_eq(v, "kNoCompression");
	th_close_rm(st, dir);
}

/* Log values go to blob files, with garbage collection; the state machine's
 * families keep theirs in the SST files (storage.c). */
Test(options, log_values_in_blob_files)
{
	char dir[512], v[256], min[32];
	struct rd_storage *st = th_tmp_open(dir, sizeof dir);
	snprintf(min, sizeof min, "%u", RD_LOG_BLOB_MIN);
	const char *const want[][3] = {
	    {"log", "enable_blob_files", "true"},
	    {"log", "min_blob_size", min},
	    {"log", "enable_blob_garbage_collection", "true"},
	    {"log", "blob_garbage_collection_force_threshold", "0.500000"},
	    {"kv", "enable_blob_files", "false"},
	    {"journal", "enable_blob_files", "false"},
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		char section[64];
		snprintf(section, sizeof section, "[CFOptions \"%s\"]", want[i][0]);
		option(dir, section, want[i][1], v, sizeof v);
		cr_expect_str_eq(v, want[i][2], "%s %s", want[i][0], want[i][1]);
	}
	th_close_rm(st, dir);
}

Test(options, wal_capped)
{
	char dir[512], v[256], want[32];
	struct rd_storage *st = th_tmp_open(dir, sizeof dir);

	option(dir, "[DBOptions]", "max_total_wal_size", v, sizeof v);
	snprintf(want, sizeof want, "%u", RD_STORAGE_WAL_MAX);
	cr_expect_str_eq(v, want);
	th_close_rm(st, dir);
}

/* What applying changes is written without the WAL (storage.h
 * rd_storage_commit): it is consistent on disk only because every flush
 * writes all column families at one point (README.md, "Writing each command
 * once"). */
Test(options, atomic_flush_across_the_column_families)
{
	char dir[512], v[256];
	th_tmpdir(dir, sizeof dir);
	struct rd_storage *st = th_open(dir);

	option(dir, "[DBOptions]", "atomic_flush", v, sizeof v);
	cr_expect_str_eq(v, "true");
	rd_storage_close(st);
	th_rmtree(dir);
}
