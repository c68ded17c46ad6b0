/* A failed write or sync is fatal (lib/storage/storage.h, "Failure
 * policy"): the process
 * logs the RocksDB error and aborts, never returning to a caller that could
 * retry and then acknowledge. The failure is provoked with RLIMIT_FSIZE, so
 * that RocksDB's WAL append fails with EFBIG. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "storage/storage.h"
#include "util/err.h"

Test(fatal, failed_synced_write_logs_and_aborts)
{
	char dir[256], out[4096] = "";
	int p[2];

	th_tmpdir(dir, sizeof dir);
	cr_assert_eq(pipe(p), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(p[1], 2);
		close(p[0]);
		struct rd_storage *st = th_open(dir);
		th_append(st, 1, 1, 1, 1);
		signal(SIGXFSZ, SIG_IGN);
		struct rlimit rl;
		getrlimit(RLIMIT_FSIZE, &rl);
		rl.rlim_cur = 64 << 10;
		setrlimit(RLIMIT_FSIZE, &rl);
		struct rd_storage_batch *b = rd_storage_batch_new(st);
		static uint8_t data[512 << 10];
		struct rd_entry e = {
		    .term = 1, .index = 2, .len = sizeof data, .data = data};
		rd_storage_batch_append(b, 1, &e, 1, NULL);
		rd_storage_commit(st, b);
		_exit(0); /* not reached: the commit must not return */
	}
	close(p[1]);
	size_t n = 0;
	ssize_t r;
	while (n < sizeof out - 1 && (r = read(p[0], out + n, sizeof out - 1 - n)) > 0)
		n += (size_t)r;
	out[n] = 0;
	close(p[0]);
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
	          "child status 0x%x, stderr: %s", status, out);
	cr_assert(strstr(out, "<3>storage failure") != NULL, "stderr: %s", out);
	cr_assert(strstr(out, "IO error") != NULL, "the RocksDB error is logged: %s",
	          out);
	/* The directory still opens: the failed write was not acknowledged and
	 * entry 1 is intact. */
	struct rd_storage *st = th_open(dir);
	cr_assert_eq(rd_storage_last_index(st, 1), 1);
	th_close_rm(st, dir);
}
