/* The backup file (storage/backup.h): groups written as records of
 * snapshot chunks round-trip into another node under new members, and
 * every single flipped byte and every truncation of a file is refused. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "storage/backup.h"
#include "storage/kv.h"
#include "storage/snapshot.h"
#include "storage/storage.h"
#include "util/err.h"

static char dira[256], dirb[256], file[320], bad[320];
static struct rd_storage *a, *bst;
static char msg[RD_ERRMSG_SIZE];

static void setup(void)
{
	a = th_tmp_open(dira, sizeof dira);
	bst = th_tmp_open(dirb, sizeof dirb);
	snprintf(file, sizeof file, "%s/b.rdbk", dira);
	snprintf(bad, sizeof bad, "%s/bad.rdbk", dira);
}

static void teardown(void)
{
	th_close_rm(a, dira);
	th_close_rm(bst, dirb);
}

TestSuite(backup, .init = setup, .fini = teardown);

/* Write groups 0..n-1 of `s` into `path` as raftctl backup save does,
 * with snapshot chunks of at most `cap` bytes. */
static void save(struct rd_storage *s, unsigned n, size_t cap, const char *path)
{
	struct rd_backup_manifest m = {.version = RD_BACKUP_VERSION,
	                               .created_ms = 1234,
	                               .node = 1,
	                               .data_groups = n - 1};
	struct rd_backup_group gs[8];
	uint8_t *rec = malloc(RD_BACKUP_REC_HEADER + cap + 4096), *p;
	uint32_t seq = 0;
	FILE *f = fopen(path, "wb");

	cr_assert(n <= 8 && f != NULL && rec != NULL);
	p = rec + RD_BACKUP_REC_HEADER;
	snprintf(m.cluster_id, sizeof m.cluster_id, "raftd-test");
	fwrite(
	    rec, 1,
	    rd_backup_record(rec, RD_BACKUP_HEADER, seq++, rd_backup_header_put(p, &m)),
	    f);
	for (unsigned g = 0; g < n; g++) {
		struct rd_snapshot_reader *r;
		struct rd_snapshot_meta meta;
		bool last = false;
		size_t len;
		cr_assert_eq(rd_snapshot_reader_open(s, g, &r, &meta, msg), 0, "%s", msg);
		gs[g] = (struct rd_backup_group){
		    .group = g, .index = meta.index, .term = meta.term};
		while (!last) {
			cr_assert_eq(rd_snapshot_reader_next(r, p, cap, &len, &last, msg),
			             0, "%s", msg);
			gs[g].crc = rd_backup_crc(gs[g].crc, p, len);
			gs[g].bytes += len;
			gs[g].chunks++;
			fwrite(rec, 1,
			       rd_backup_record(rec, RD_BACKUP_CHUNK_REC, seq++, len), f);
		}
		rd_snapshot_reader_close(r);
		fwrite(rec, 1,
		       rd_backup_record(rec, RD_BACKUP_GROUP_END, seq++,
		                        rd_backup_group_put(p, &gs[g])),
		       f);
	}
	m.groups = gs;
	m.n_groups = n;
	fwrite(rec, 1,
	       rd_backup_record(rec, RD_BACKUP_MANIFEST, seq++,
	                        rd_backup_manifest_put(p, &m)),
	       f);
	cr_assert_eq(fclose(f), 0);
	free(rec);
}

struct restore {
	struct rd_storage *st;
	struct rd_snapshot_writer *w;
	struct rd_conf_state conf;
	unsigned groups, chunks;
	bool spill; /* write staged keys out after every chunk (restore.c) */
};

static int install(void *arg, uint64_t group, const uint8_t *chunk, size_t len, bool last,
                   char *m)
{
	struct restore *r = arg;
	(void)group;
	r->chunks++;
	if (r->w == NULL)
		cr_assert_eq(rd_snapshot_writer_open(r->st, &r->w, m), 0);
	int rv = rd_snapshot_writer_add(r->w, chunk, len, m);
	if (rv == 0 && !last && r->spill)
		rv = rd_snapshot_writer_spill(r->w, m);
	if (rv != 0 || !last)
		return rv;
	rd_snapshot_writer_set_conf(r->w, &r->conf);
	rv = rd_snapshot_writer_finish(r->w, NULL, m);
	r->w = NULL;
	r->groups++;
	return rv;
}

/* Copy `n` bytes of `src` to `dst`, byte `flip` (if < n) xor-ed with x. */
static void copy(const char *src, const char *dst, long n, long flip, int x)
{
	FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
	cr_assert(in != NULL && out != NULL);
	for (long i = 0; i < n; i++) {
		int c = fgetc(in);
		cr_assert_neq(c, EOF);
		fputc(i == flip ? c ^ x : c, out);
	}
	fclose(in);
	fclose(out);
}

static long size_of(const char *path)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fclose(f);
	return n;
}

Test(backup, groups_round_trip_under_new_members)
{
	struct rd_backup_manifest m;
	struct restore r = {
	    .st = bst, .conf = {.n_voters = 2, .voters = {7, 9}}, .spill = true};
	struct rd_storage_group_info info;
	uint8_t *v;
	size_t vlen;

	th_put_keys(a, 0, "meta", 3, 10, 2);
	th_put_keys(a, 1, "one", 300, 1000, 2);
	th_put_keys(a, 2, "two", 5, 10, 2);
	/* Small chunks: group 1 spans several. */
	save(a, 3, RD_SNAPSHOT_HEADER + 40 + 16 * RD_RAFT_MAX_MEMBERS + 12 + 8192, file);
	cr_assert_eq(rd_backup_read(file, install, &r, &m, msg), 0, "%s", msg);
	cr_assert_eq(r.groups, 3);
	cr_assert_gt(r.chunks, 4);
	cr_assert_eq(m.n_groups, 3);
	cr_assert_eq(m.data_groups, 2);
	cr_assert_str_eq(m.cluster_id, "raftd-test");
	cr_assert_eq(m.groups[1].index, 300);
	cr_assert_eq(m.groups[1].term, 2);
	cr_assert_gt(m.groups[1].chunks, 1);
	rd_backup_manifest_free(&m);
	cr_assert_eq(
	    rd_storage_kv_get(bst, 1, (const uint8_t *)"one00299", 8, &v, &vlen, msg), 0,
	    "%s", msg);
	cr_assert_eq(vlen, 1000);
	free(v);
	/* Keys of the first chunk, written out early by the spill. */
	cr_assert_eq(
	    rd_storage_kv_get(bst, 1, (const uint8_t *)"one00000", 8, &v, &vlen, msg), 0,
	    "%s", msg);
	free(v);
	cr_assert_eq(
	    rd_storage_kv_get(bst, 0, (const uint8_t *)"meta00002", 9, &v, &vlen, msg), 0,
	    "%s", msg);
	free(v);
	/* Under the new members, at the backup's index and term. */
	cr_assert_eq(rd_storage_group_info(bst, 1, &info), 0);
	cr_assert_eq(info.applied, 300);
	cr_assert_eq(info.conf.n_voters, 2);
	cr_assert_eq(info.conf.voters[1], 9);
	cr_assert_eq(info.first_index, 301);
	cr_assert_eq(info.compact_term, 2);
}

Test(backup, every_flipped_byte_and_every_truncation_is_refused, .timeout = 120)
{
	struct rd_backup_manifest m;

	th_put_keys(a, 0, "m", 2, 8, 2);
	th_put_keys(a, 1, "k", 4, 8, 2);
	save(a, 2, RD_SNAPSHOT_CHUNK_MIN, file);
	long n = size_of(file);
	cr_assert_eq(rd_backup_read(file, NULL, NULL, &m, msg), 0, "%s", msg);
	rd_backup_manifest_free(&m);
	for (long i = 0; i < n; i++) {
		copy(file, bad, n, i, 0x01);
		int rv = rd_backup_read(bad, NULL, NULL, &m, msg);
		cr_assert_neq(rv, 0, "a flip at byte %ld of %ld went unnoticed", i, n);
		cr_assert(strstr(msg, "record ") != NULL, "byte %ld: %s", i, msg);
	}
	for (long i = 0; i < n; i++) {
		copy(file, bad, i, n, 0);
		cr_assert_eq(rd_backup_read(bad, NULL, NULL, &m, msg), RD_ECORRUPT,
		             "cut at %ld of %ld", i, n);
		cr_assert(strstr(msg, "truncated") != NULL || i == 0, "cut at %ld: %s", i,
		          msg);
	}
}

Test(backup, a_newer_format_is_refused_as_such)
{
	struct rd_backup_manifest m = {.version = RD_BACKUP_VERSION + 1};
	uint8_t rec[128];
	FILE *f = fopen(file, "wb");

	snprintf(m.cluster_id, sizeof m.cluster_id, "x");
	fwrite(rec, 1,
	       rd_backup_record(rec, RD_BACKUP_HEADER, 0,
	                        rd_backup_header_put(rec + RD_BACKUP_REC_HEADER, &m)),
	       f);
	fclose(f);
	cr_assert_eq(rd_backup_read(file, NULL, NULL, &m, msg), RD_EMISMATCH);
	cr_assert(strstr(msg, "newer") != NULL, "%s", msg);
}
