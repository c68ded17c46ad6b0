/* Backup and restore (conf/man/raftctl.1 "backup", conf/man/raftd.8
 * "--restore"): a backup saved from a cluster under writes founds a new
 * cluster holding every write acknowledged before the save started; a
 * damaged file is refused with a message that names the damage. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "raftd.pb-c.h"
#include "util/frame.h"
#include "storage/backup.h"

#define WAIT_S 30
#define KEYS   60

static struct rd_h_cluster C, D;
static char dir[64];
static pid_t writer;

static void teardown(void)
{
	char cmd[128];

	if (writer > 0) {
		kill(writer, SIGKILL);
		waitpid(writer, NULL, 0);
		writer = 0;
	}
	rd_h_cluster_free(&C);
	rd_h_cluster_free(&D);
	if (dir[0] != '\0' && getenv("RD_KEEP_TMP") == NULL) {
		snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
		(void)system(cmd);
	}
}

/* A client writing w0, w1, ... to node 1 until killed. */
static pid_t start_writer(void)
{
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		char out[256], key[32];
		for (int i = 0;; i++) {
			snprintf(key, sizeof key, "w%d", i);
			rd_h_ctl(&C, 1, out, sizeof out, "put", key, "x", (char *)NULL);
		}
	}
	return pid;
}

/* Run a shell command; its stderr (and stdout) in `out`; the exit code. */
static int sh(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int sh(char *out, size_t size, const char *fmt, ...)
{
	char cmd[2048], path[96];
	va_list ap;

	snprintf(path, sizeof path, "%s/sh.out", dir);
	cmd[0] = '{';
	cmd[1] = ' ';
	va_start(ap, fmt);
	int n = 2 + vsnprintf(cmd + 2, sizeof cmd - 128, fmt, ap);
	va_end(ap);
	snprintf(cmd + n, sizeof cmd - (size_t)n, "; } >%s 2>&1", path);
	int st = system(cmd);
	FILE *f = fopen(path, "r");
	size_t got = f != NULL ? fread(out, 1, size - 1, f) : 0;
	out[got] = '\0';
	if (f != NULL)
		fclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Make `dir` and `file` (`name` in it), C := a cluster of three with
 * options o, ready, holding "k<i>" = "v<i>" for every i < KEYS, the i-th
 * written through node 1 + i % nodes. */
static void up_with_keys(const struct rd_h_opts *o, unsigned nodes, char *file,
                         size_t size, const char *name)
{
	char key[32], val[32];

	snprintf(dir, sizeof dir, "/tmp/rd-backup-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(file, size, "%s/%s", dir, name);
	rd_h_cluster_init(&C, 3, o);
	rd_h_start_all(&C);
	cr_assert(rd_h_wait_ready(&C, WAIT_S), "cluster not ready (logs in %s)", C.dir);
	for (int i = 0; i < KEYS; i++) {
		snprintf(key, sizeof key, "k%d", i);
		snprintf(val, sizeof val, "v%d", i);
		rd_h_put(&C, 1 + (unsigned)i % nodes, WAIT_S, key, val);
	}
}

/* A raw client on node i's socket that asks for a backup (request `id`)
 * and reads nothing yet; returns the connection. */
static int ask_backup(unsigned i, uint64_t id)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
	Raftd__BackupRequest b = RAFTD__BACKUP_REQUEST__INIT;
	uint8_t buf[64];
	size_t len;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	cr_assert_lt(strlen(C.nodes[i - 1].sock), sizeof sun.sun_path);
	memcpy(sun.sun_path, C.nodes[i - 1].sock, strlen(C.nodes[i - 1].sock) + 1);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sun, sizeof sun), 0);
	req.request_id = id;
	req.op_case = RAFTD__CLIENT_REQUEST__OP_BACKUP;
	req.backup = &b;
	len = raftd__client_request__pack(&req, buf);
	cr_assert_eq(rd_frame_write_fd(fd, buf, len), 0);
	return fd;
}

/* D := a new cluster of three founded from backup `file`, ready; every key
 * the writers of these tests wrote ("k<i>" = "v<i>") reads back on it. */
static void restore_three(const struct rd_h_opts *o, const char *file)
{
	char key[32], val[32];

	rd_h_cluster_init(&D, 3, o);
	for (unsigned i = 0; i < 3; i++)
		snprintf(D.nodes[i].restore, sizeof D.nodes[i].restore, "%s", file);
	rd_h_start_all(&D);
	cr_assert(rd_h_wait_ready(&D, WAIT_S), "restored cluster not ready (logs in %s)",
	          D.dir);
	for (int i = 0; i < KEYS; i++) {
		snprintf(key, sizeof key, "k%d", i);
		snprintf(val, sizeof val, "v%d", i);
		rd_h_expect_get(&D, 1 + (unsigned)(i % 3), WAIT_S, key, val);
	}
}

Test(backup, save_under_writes_then_restore_into_a_new_cluster, .fini = teardown,
     .timeout = 300)
{
	struct rd_h_opts o = {.data_groups = 4};
	char out[16384], file[128];

	up_with_keys(&o, 3, file, sizeof file, "cluster.rdbk");
	cr_assert_eq(rd_h_ctl_retry(&C, 2, WAIT_S, out, sizeof out, "meta", "put",
	                            "owner", "ops", (char *)NULL),
	             0);
	/* Every write above was acknowledged before the save starts; the
	 * writer's keep landing while it runs. Saved from a node that leads
	 * few of the groups: the read index comes from their leaders. */
	writer = start_writer();
	usleep(300 * 1000);
	cr_assert_eq(rd_h_ctl(&C, 3, out, sizeof out, "--json", "backup", "save", file,
	                      (char *)NULL),
	             0, "backup save: %s (logs in %s)", out, C.dir);
	cr_assert(strstr(out, "\"groups\":5") != NULL, "%s", out);
	kill(writer, SIGKILL);
	waitpid(writer, NULL, 0);
	writer = 0;
	char tmp[256];
	snprintf(tmp, sizeof tmp, "ls %s | grep -c tmp-", dir);
	cr_assert_neq(sh(out, sizeof out, "%s", tmp), 0, "a temporary file was left");

	cr_assert_eq(
	    rd_h_ctl(&C, 1, out, sizeof out, "backup", "inspect", file, (char *)NULL), 0);
	cr_assert(strstr(out, "verified     every checksum") != NULL, "%s", out);
	cr_assert(strstr(out, "data groups  4") != NULL, "%s", out);
	rd_h_cluster_free(&C);

	/* A new cluster of three founded from the file. */
	restore_three(&o, file);
	cr_assert_eq(rd_h_ctl_retry(&D, 3, WAIT_S, out, sizeof out, "meta", "get",
	                            "owner", (char *)NULL),
	             0);
	cr_assert_str_eq(out, "ops\n");
	/* It accepts writes, and every replica agrees on them. */
	cr_assert_eq(rd_h_ctl_retry(&D, 2, WAIT_S, out, sizeof out, "put", "after",
	                            "restore", (char *)NULL),
	             0);
	for (unsigned i = 1; i <= 3; i++)
		rd_h_expect_get(&D, i, WAIT_S, "after", "restore");
	/* Under a new cluster id. */
	cr_assert_eq(
	    sh(out, sizeof out, "grep -h 'restored from backup' %s/*.log", D.dir), 0,
	    "no restore logged");
	cr_assert(strstr(out, "new_cluster=raftd-") != NULL && strstr(out, "-r") != NULL,
	          "%s", out);

	/* A data directory that is not empty is refused. */
	int st = rd_h_stop(&D, 1, SIGTERM);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	cr_assert_neq(sh(out, sizeof out, "%s --config %s --restore %s",
	                 rd_h_build_path("raftd"), D.nodes[0].conf, file),
	              0);
	cr_assert(strstr(out, "is not empty") != NULL, "%s", out);
	/* And a restarted restored node starts as usual. */
	D.nodes[0].restore[0] = '\0';
	rd_h_start(&D, 1);
	cr_assert(rd_h_wait_ready(&D, WAIT_S), "restarted node not ready (logs in %s)",
	          D.dir);
	rd_h_expect_get(&D, 1, WAIT_S, "after", "restore");
}

/* Damaged files: refused by inspect and by restore, naming the record. */
Test(backup, truncated_and_bit_flipped_backups_are_refused, .fini = teardown,
     .timeout = 300)
{
	struct rd_h_opts o = {.data_groups = 2};
	char out[16384], file[128], bad[160];
	struct stat st;

	snprintf(dir, sizeof dir, "/tmp/rd-backup-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(file, sizeof file, "%s/ok.rdbk", dir);
	rd_h_cluster_init(&C, 1, &o);
	rd_h_start_all(&C);
	cr_assert(rd_h_wait_ready(&C, WAIT_S));
	rd_h_put_keys(&C, 1, WAIT_S, "k", 20, "some value");
	cr_assert_eq(
	    rd_h_ctl(&C, 1, out, sizeof out, "backup", "save", file, (char *)NULL), 0,
	    "%s", out);
	cr_assert(strstr(out, "OK ") == out, "%s", out);
	cr_assert_eq(stat(file, &st), 0);

	/* Truncated: the file ends inside a record. */
	snprintf(bad, sizeof bad, "%s/cut.rdbk", dir);
	cr_assert_eq(sh(out, sizeof out, "head -c %lld %s > %s",
	                (long long)st.st_size / 2, file, bad),
	             0);
	cr_assert_eq(
	    sh(out, sizeof out, "%s backup inspect %s", rd_h_build_path("raftctl"), bad),
	    1);
	cr_assert(strstr(out, "truncated") != NULL, "%s", out);
	/* Cut exactly before the manifest (a record of 20 + 30 bytes, three
	 * 40-byte entries and the 22-byte cluster id): still truncated. */
	cr_assert_eq(sh(out, sizeof out, "head -c %lld %s > %s",
	                (long long)st.st_size - (20 + 30 + 3 * 40 + 22), file, bad),
	             0);
	cr_assert_eq(
	    sh(out, sizeof out, "%s backup inspect %s", rd_h_build_path("raftctl"), bad),
	    1);
	cr_assert(strstr(out, "truncated: the file ends before the manifest") != NULL,
	          "%s", out);

	/* One bit flipped inside group 1's data: the chunk is named. */
	snprintf(bad, sizeof bad, "%s/flip.rdbk", dir);
	cr_assert_eq(sh(out, sizeof out, "cp %s %s", file, bad), 0);
	cr_assert_eq(
	    sh(out, sizeof out, "%s backup inspect %s", rd_h_build_path("raftctl"), bad),
	    0, "%s", out);
	/* Find group 1's first chunk: the second "RDSN" in the file. */
	FILE *f = fopen(bad, "r+b");
	cr_assert_not_null(f);
	long at = -1;
	int seen = 0, ch, m = 0;
	for (long pos = 0; (ch = fgetc(f)) != EOF; pos++) {
		m = ch == "RDSN"[m] ? m + 1 : (ch == 'R' ? 1 : 0);
		if (m == 4) {
			m = 0;
			if (++seen == 2) {
				at = pos + 40; /* inside the chunk, past its header */
				break;
			}
		}
	}
	cr_assert_geq(at, 0, "no second snapshot chunk");
	fseek(f, at, SEEK_SET);
	ch = fgetc(f);
	fseek(f, at, SEEK_SET);
	fputc(ch ^ 0x10, f);
	fclose(f);
	cr_assert_eq(
	    sh(out, sizeof out, "%s backup inspect %s", rd_h_build_path("raftctl"), bad),
	    1);
	cr_assert(strstr(out, "checksum mismatch") != NULL, "%s", out);
	cr_assert(strstr(out, "group 1 chunk 0") != NULL, "%s", out);

	/* raftd --restore refuses both, and writes nothing. */
	rd_h_cluster_init(&D, 1, &o);
	cr_assert_neq(sh(out, sizeof out, "%s --config %s --restore %s",
	                 rd_h_build_path("raftd"), D.nodes[0].conf, bad),
	              0);
	cr_assert(strstr(out, "checksum mismatch") != NULL, "%s", out);
	cr_assert_neq(sh(out, sizeof out, "ls %s/data1", D.dir), 0,
	              "a data directory was created: %s", out);
	/* A newer format is refused as such. */
	snprintf(bad, sizeof bad, "%s/new.rdbk", dir);
	cr_assert_eq(sh(out, sizeof out, "cp %s %s", file, bad), 0);
	/* Rewrite the header record with version 9 and a valid checksum. */
	uint8_t rec[256];
	f = fopen(bad, "r+b");
	cr_assert_not_null(f);
	cr_assert_eq(fread(rec, 1, 20, f), 20);
	size_t plen =
	    (size_t)rec[12] << 24 | (size_t)rec[13] << 16 | rec[14] << 8 | rec[15];
	cr_assert_leq(plen, sizeof rec - 20);
	cr_assert_eq(fread(rec + 20, 1, plen, f), plen);
	rec[20 + 3] = 9;
	rd_backup_record(rec, RD_BACKUP_HEADER, 0, plen);
	fseek(f, 0, SEEK_SET);
	cr_assert_eq(fwrite(rec, 1, 20 + plen, f), 20 + plen);
	fclose(f);
	cr_assert_neq(sh(out, sizeof out, "%s --config %s --restore %s",
	                 rd_h_build_path("raftd"), D.nodes[0].conf, bad),
	              0);
	cr_assert(strstr(out, "newer") != NULL, "%s", out);
}

/* A node that does not host every group pulls the others from their
 * replicas over QUIC (the BackupFetch peer RPC), and the restored cluster,
 * placed the same way, holds every group's data. */
Test(backup, groups_not_hosted_here_are_fetched_from_a_replica, .fini = teardown,
     .timeout = 300)
{
	struct rd_h_opts o = {.data_groups = 3, .replication = 1};
	char out[16384], file[128];

	up_with_keys(&o, 1, file, sizeof file, "rf1.rdbk");
	/* Node 1 hosts one data group of three. */
	cr_assert_eq(rd_h_ctl(&C, 1, out, sizeof out, "groups", (char *)NULL), 0);
	unsigned rows = 0;
	for (char *l = strchr(out, '\n'); l != NULL; l = strchr(l + 1, '\n'))
		rows++;
	cr_assert_lt(rows, 1 + 4, "node 1 hosts every group:\n%s", out);
	cr_assert_eq(
	    rd_h_ctl(&C, 1, out, sizeof out, "backup", "save", file, (char *)NULL), 0,
	    "backup save: %s (logs in %s)", out, C.dir);
	cr_assert(strstr(out, "groups=4") != NULL, "%s", out);
	cr_assert_eq(sh(out, sizeof out, "grep -h 'backup fetch done' %s/*.log", C.dir),
	             0, "no group was fetched from a peer");
	rd_h_cluster_free(&C);

	restore_three(&o, file);
}

/* Bounded resources: a client that stops reading a save stops the save
 * (the node produces a chunk only while the connection's output is under
 * its low-water mark), and meanwhile the node keeps serving, electing no
 * one new (heartbeats flow), and finishes the stream once it reads on. */
Test(backup, a_client_that_stops_reading_holds_the_save_back, .fini = teardown,
     .timeout = 300)
{
	struct rd_h_opts o = {.data_groups = 1,
	                      .extra_conf =
	                          "[control]\noutput_high_water_bytes = 1048576\n"};
	char out[16384], terms[2][16384];
	static char value[100 * 1024 + 1];

	rd_h_cluster_init(&C, 3, &o);
	rd_h_start_all(&C);
	cr_assert(rd_h_wait_ready(&C, WAIT_S));
	memset(value, 'x', sizeof value - 1);
	rd_h_put_keys(&C, 1, WAIT_S, "big", 160, value); /* 16 MB in group 1 */
	cr_assert_eq(rd_h_ctl(&C, 2, terms[0], sizeof terms[0], "groups", (char *)NULL),
	             0);

	int fd = ask_backup(2, 7);
	sleep(3);
	/* The node is not stalled: writes and reads are served. */
	cr_assert_eq(rd_h_ctl_retry(&C, 2, WAIT_S, out, sizeof out, "put", "during",
	                            "save", (char *)NULL),
	             0);
	rd_h_expect_get(&C, 2, WAIT_S, "during", "save");
	/* What waits for the client is bounded by the high-water mark, one
	 * record and the kernel's socket buffer, far below the state. */
	int queued = 0;
	cr_assert_eq(ioctl(fd, FIONREAD, &queued), 0);
	cr_assert_lt(queued, 4 << 20, "%d bytes queued", queued);
	cr_assert_gt(queued, 0);
	/* No new term in any group: leaders kept their heartbeats going. */
	cr_assert_eq(rd_h_ctl(&C, 2, terms[1], sizeof terms[1], "groups", (char *)NULL),
	             0);
	for (int k = 0; k < 2; k++) { /* keep GROUP ROLE LEADER TERM */
		char keep[4096] = "", *save = NULL;
		for (char *l = strtok_r(terms[k], "\n", &save); l != NULL;
		     l = strtok_r(NULL, "\n", &save)) {
			unsigned g, leader, term;
			char role[16], row[64];
			if (sscanf(l, "%u %15s %u %u", &g, role, &leader, &term) == 4) {
				snprintf(row, sizeof row, "%u %u %u;", g, leader, term);
				strncat(keep, row, sizeof keep - strlen(keep) - 1);
			}
		}
		snprintf(terms[k], sizeof terms[k], "%s", keep);
	}
	cr_assert_str_eq(terms[0], terms[1]);
	/* Reading on, the stream completes. */
	uint64_t total = 0;
	for (bool last = false; !last;) {
		uint8_t *in;
		size_t inlen;
		cr_assert_eq(rd_frame_read_fd(fd, 8u << 20, &in, &inlen), 0);
		Raftd__ClientResponse *r =
		    raftd__client_response__unpack(NULL, inlen, in);
		free(in);
		cr_assert_not_null(r);
		cr_assert_eq(r->error, RAFTD__ERROR_CODE__OK, "%s", r->error_message);
		cr_assert_eq(r->request_id, 7);
		cr_assert_eq(r->result_case, RAFTD__CLIENT_RESPONSE__RESULT_BACKUP_PART);
		total += r->backup_part->data.len;
		last = r->backup_part->last;
		raftd__client_response__free_unpacked(r, NULL);
	}
	close(fd);
	cr_assert_gt(total, 16000000u, "%llu bytes", (unsigned long long)total);
}

/* A client that goes away in the middle of a save ends it; the node goes
 * on (the save gives its connection back and frees itself once). */
Test(backup, a_client_that_goes_away_ends_the_save, .fini = teardown, .timeout = 300)
{
	struct rd_h_opts o = {.data_groups = 1,
	                      .extra_conf =
	                          "[control]\noutput_high_water_bytes = 1048576\n"};
	char out[16384];
	static char value[100 * 1024 + 1];

	snprintf(dir, sizeof dir, "/tmp/rd-backup-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	rd_h_cluster_init(&C, 1, &o);
	rd_h_start_all(&C);
	cr_assert(rd_h_wait_ready(&C, WAIT_S));
	memset(value, 'x', sizeof value - 1);
	rd_h_put_keys(&C, 1, WAIT_S, "big", 60,
	              value); /* 6 MB: more than the output may hold */
	for (int round = 0; round < 3; round++) {
		int fd = ask_backup(1, 1);
		uint8_t *in;
		size_t inlen;
		cr_assert_eq(rd_frame_read_fd(fd, 8u << 20, &in, &inlen), 0);
		free(in);
		usleep(500 * 1000);
		close(fd);
		usleep(500 * 1000);
	}
	cr_assert_eq(rd_h_ctl(&C, 1, out, sizeof out, "status", (char *)NULL), 0,
	             "node gone (logs in %s)", C.dir);
	cr_assert_eq(sh(out, sizeof out, "grep -c 'backup abandoned by its client' %s",
	                C.nodes[0].log),
	             0);
	cr_assert_eq(atoi(out), 3, "%s", out);
	/* And a later save completes. */
	char file[128];
	snprintf(file, sizeof file, "%s/after.rdbk", dir);
	cr_assert_eq(
	    rd_h_ctl(&C, 1, out, sizeof out, "backup", "save", file, (char *)NULL), 0,
	    "%s", out);
}
