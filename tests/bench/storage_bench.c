/*
 * make bench-storage: what group commit buys on this machine's disk.
 *
 * 1. The raw fdatasync(2) rate of the data directory's file system: append
 *    512 bytes to a file, fdatasync, repeat (what a WAL append costs).
 * 2. rd_storage group commits of 256-byte entries, one entry per group per
 *    batch, for 1, 64 and 1024 groups per batch: entries/s and syncs per
 *    batch (the storage's own sync counter; it should be exactly 1), and
 *    the process's CPU time per entry (all threads; steadier than the rate
 *    on a shared machine, where the sync rate varies).
 * 3. The daemon's write path for 64 groups: each entry a session put (256-byte
 *    key, 1 KiB value), appended, applied into the state machine and put in
 *    the journal in the same batch, as drive.c does: entries/s, CPU per entry
 *    and the bytes of the synced write batch per entry (the WAL record size;
 *    the log, the KV value and the journal each carry the command).
 *
 * Each figure is the best of REPEATS runs (the machine may be shared; the
 * best run is the closest to what the disk and the code can do) and every
 * run is printed.
 *
 * Usage: storage_bench [OUTDIR [SECONDS]]   (default build/bench, 1.5 s a run)
 * The data directory is OUTDIR/storage-data (removed afterwards), unless
 * RD_BENCH_DIR names another directory to measure. Prints the setup, one
 * line per measurement, CSV in OUTDIR/storage.csv, and the RESULT line.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "storage/journal.h"
#include "storage/kv.h"
#include "storage/storage.h"
#include "util/err.h"
#include "util/log.h"
#include "util/clock.h"

#define ENTRY_BYTES 256
#define REPEATS     3

static double now_s(void)
{
	return (double)rd_clock_now_ns() / 1e9;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

static double bench_fdatasync(const char *dir, double secs)
{
	char path[4200];
	char buf[512];
	snprintf(path, sizeof path, "%s/fdatasync.bench", dir);
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_APPEND, 0644);
	if (fd < 0) {
		fprintf(stderr, "open %s: %s\n", path, strerror(errno));
		exit(1);
	}
	memset(buf, 0xab, sizeof buf);
	long n = 0;
	double t0 = now_s(), t;
	do {
		if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf ||
		    fdatasync(fd) != 0) {
			fprintf(stderr, "write/fdatasync: %s\n", strerror(errno));
			exit(1);
		}
		n++;
		t = now_s();
	} while (t - t0 < secs);
	close(fd);
	unlink(path);
	return (double)n / (t - t0);
}

struct run {
	double entries_per_s, batches_per_s, syncs_per_batch, p50_us, p99_us;
	double cpu_us_per_entry, batch_bytes_per_entry, nowal_bytes_per_entry;
};

/* CPU time of the whole process (every thread, RocksDB's background
 * flushes and compactions included), in seconds. */
static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Entry data for index i of group g: a session PUT of a 256-byte key and a
 * 1 KiB value (buf holds at least 2 KiB); its length. */
static uint32_t put_cmd(uint8_t *buf, uint8_t *key, const uint8_t *val, unsigned g,
                        uint64_t i)
{
	struct rd_kv_cmd c = {.op = RD_KV_PUT,
	                      .key = key,
	                      .key_len = 256,
	                      .value = val,
	                      .value_len = 1024,
	                      .client_id = (uint64_t)g * 1024 + i % 500 + 1,
	                      .sequence = i};
	size_t len = 0;
	memset(key, 'k', 256);
	snprintf((char *)key, 32, "%u-%llu", g, (unsigned long long)i);
	if (rd_kv_encode(&c, buf, 2048, &len) != 0) {
		fprintf(stderr, "kv encode failed\n");
		exit(1);
	}
	return (uint32_t)len;
}

/* apply: each entry is put_cmd's, applied and journaled in its batch. */
static struct run bench_groups(const char *dir, unsigned groups, double secs, bool apply)
{
	char path[4200], msg[RD_ERRMSG_SIZE];
	struct rd_storage_options o;
	struct rd_storage *st;
	struct rd_storage_stats s0, s1;
	struct run r = {0};

	snprintf(path, sizeof path, "%s/db-%u%s", dir, groups, apply ? "-apply" : "");
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	rd_storage_options_init(&o);
	o.create_if_missing = true;
	o.cluster_id = "bench";
	if (rd_storage_open(path, &o, &st, msg) != 0) {
		fprintf(stderr, "open: %s\n", msg);
		exit(1);
	}
	struct rd_storage_batch *b = rd_storage_batch_new(st);
	uint8_t data[ENTRY_BYTES], *cmds = NULL, key[256], val[1024];
	memset(data, 0x5c, sizeof data);
	memset(val, 'v', sizeof val);
	if (apply)
		cmds = malloc((size_t)groups * 2048);
	size_t cap = 1 << 16, nlat = 0;
	double *lat = malloc(cap * sizeof *lat);
	uint64_t index = 1, batches = 0;
	rd_storage_get_stats(st, &s0);
	double c0 = cpu_s();
	double t0 = now_s(), t = t0;
	while (t - t0 < secs) {
		for (unsigned g = 0; g < groups; g++) {
			struct rd_entry e = {.term = 1,
			                     .index = index,
			                     .type = RD_ENTRY_NORMAL,
			                     .len = ENTRY_BYTES,
			                     .data = data};
			if (apply) {
				e.data = cmds + (size_t)g * 2048;
				e.len =
				    put_cmd(cmds + (size_t)g * 2048, key, val, g, index);
			}
			if (rd_storage_batch_append(b, g, &e, 1, msg) != 0) {
				fprintf(stderr, "append: %s\n", msg);
				exit(1);
			}
			if (!apply)
				continue;
			struct rd_hard_state hs = {.term = 1, .commit = index};
			struct rd_kv_result res;
			struct rd_journal_rec jr = {.group = g,
			                            .index = index,
			                            .term = 1,
			                            .kind = RD_JOURNAL_KV,
			                            .status = RD_JOURNAL_APPLIED,
			                            .data = e.data,
			                            .len = e.len};
			if (rd_storage_batch_set_hard_state(b, g, &hs, msg) != 0 ||
			    rd_storage_batch_apply_kv(b, g, index, e.data, e.len, &res,
			                              msg) != 0 ||
			    rd_storage_batch_journal_put(b, &jr, msg) != 0) {
				fprintf(stderr, "apply: %s\n", msg);
				exit(1);
			}
		}
		double a = now_s();
		rd_storage_commit(st, b);
		t = now_s();
		if (nlat == cap)
			lat = realloc(lat, (cap *= 2) * sizeof *lat);
		lat[nlat++] = (t - a) * 1e6;
		index++;
		batches++;
	}
	rd_storage_get_stats(st, &s1);
	r.cpu_us_per_entry = (cpu_s() - c0) * 1e6 / (double)(batches * groups);
	qsort(lat, nlat, sizeof *lat, cmp_d);
	r.batches_per_s = (double)batches / (t - t0);
	r.entries_per_s = r.batches_per_s * groups;
	r.syncs_per_batch = (double)(s1.syncs - s0.syncs) / (double)batches;
	r.batch_bytes_per_entry =
	    (double)(s1.bytes_written - s0.bytes_written) / (double)(batches * groups);
	r.nowal_bytes_per_entry =
	    (double)(s1.state_bytes_written - s0.state_bytes_written) /
	    (double)(batches * groups);
	r.p50_us = lat[nlat / 2];
	r.p99_us = lat[nlat * 99 / 100];
	free(lat);
	free(cmds);
	rd_storage_batch_free(b);
	rd_storage_close(st);
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return r;
}

int main(int argc, char **argv)
{
	const char *out = argc > 1 ? argv[1] : "build/bench";
	double secs = argc > 2 ? atof(argv[2]) : 1.5;
	char dir[4096], csv[4200];
	const char *env = getenv("RD_BENCH_DIR");
	struct statfs sf;
	static const unsigned groups[3] = {1, 64, 1024};
	struct run runs[3], ap = {0};

	rd_log_set_level(RD_LOG_WARNING);
	mkdir(out, 0755);
	snprintf(dir, sizeof dir, "%s/storage-data", env && *env ? env : out);
	mkdir(dir, 0755);
	if (statfs(dir, &sf) != 0) {
		fprintf(stderr, "statfs %s: %s\n", dir, strerror(errno));
		return 1;
	}
	printf("storage bench: data dir %s (fs magic 0x%lx), %ld CPUs, %.1f s a run, "
	       "best of "
	       "%d runs\n",
	       dir, (unsigned long)sf.f_type, sysconf(_SC_NPROCESSORS_ONLN), secs,
	       REPEATS);
	printf("  entries of %d bytes, one per group per batch, one rd_storage_commit "
	       "(sync=true) per batch\n",
	       ENTRY_BYTES);

	double fds = 0;
	for (int k = 0; k < REPEATS; k++) {
		double x = bench_fdatasync(dir, secs);
		printf("  raw append+fdatasync (512 B):       %10.0f /s\n", x);
		if (x > fds)
			fds = x;
	}
	for (int i = 0; i < 3; i++) {
		memset(&runs[i], 0, sizeof runs[i]);
		for (int k = 0; k < REPEATS; k++) {
			struct run x = bench_groups(dir, groups[i], secs, false);
			printf(
			    "  %4u groups/batch: %10.0f entries/s  %8.0f batches/s  "
			    "syncs/batch "
			    "%.2f  commit p50 %.0f us p99 %.0f us  cpu %.2f us/entry\n",
			    groups[i], x.entries_per_s, x.batches_per_s,
			    x.syncs_per_batch, x.p50_us, x.p99_us, x.cpu_us_per_entry);
			if (x.entries_per_s > runs[i].entries_per_s)
				runs[i] = x;
		}
	}
	for (int k = 0; k < REPEATS; k++) {
		struct run x = bench_groups(dir, 64, secs, true);
		printf("    64 groups/batch, session put 256 B key + 1 KiB value applied "
		       "and "
		       "journaled: %8.0f entries/s  commit p50 %.0f us p99 %.0f us  cpu "
		       "%.2f "
		       "us/entry  synced batch %.0f B/entry  without the WAL %.0f "
		       "B/entry\n",
		       x.entries_per_s, x.p50_us, x.p99_us, x.cpu_us_per_entry,
		       x.batch_bytes_per_entry, x.nowal_bytes_per_entry);
		if (x.entries_per_s > ap.entries_per_s)
			ap = x;
	}
	double spb = (runs[0].syncs_per_batch + runs[1].syncs_per_batch +
	              runs[2].syncs_per_batch) /
	             3;

	snprintf(csv, sizeof csv, "%s/storage.csv", out);
	FILE *f = fopen(csv, "w");
	if (f != NULL) {
		fprintf(f, "measure,groups_per_batch,per_s,batches_per_s,syncs_per_batch,"
		           "commit_p50_us,commit_p99_us,cpu_us_per_entry\n");
		fprintf(f, "fdatasync,,%.0f,,,,,\n", fds);
		for (int i = 0; i < 3; i++)
			fprintf(f, "entries,%u,%.0f,%.0f,%.3f,%.1f,%.1f,%.2f\n",
			        groups[i], runs[i].entries_per_s, runs[i].batches_per_s,
			        runs[i].syncs_per_batch, runs[i].p50_us, runs[i].p99_us,
			        runs[i].cpu_us_per_entry);
		fprintf(f, "applied_puts,64,%.0f,%.0f,%.3f,%.1f,%.1f,%.2f\n",
		        ap.entries_per_s, ap.batches_per_s, ap.syncs_per_batch, ap.p50_us,
		        ap.p99_us, ap.cpu_us_per_entry);
		fclose(f);
		printf("  CSV: %s\n", csv);
	}
	rmdir(dir);
	printf("RESULT storage fdatasync_per_s=%.0f entries_per_s_1g=%.0f "
	       "entries_per_s_64g=%.0f "
	       "entries_per_s_1024g=%.0f syncs_per_batch=%.2f cpu_us_per_entry_64g=%.2f "
	       "cpu_us_per_entry_1024g=%.2f applied_puts_per_s_64g=%.0f "
	       "cpu_us_per_applied_put_64g=%.2f synced_bytes_per_applied_put=%.0f "
	       "nowal_bytes_per_applied_put=%.0f\n",
	       fds, runs[0].entries_per_s, runs[1].entries_per_s, runs[2].entries_per_s,
	       spb, runs[1].cpu_us_per_entry, runs[2].cpu_us_per_entry, ap.entries_per_s,
	       ap.cpu_us_per_entry, ap.batch_bytes_per_entry, ap.nowal_bytes_per_entry);
	return 0;
}
