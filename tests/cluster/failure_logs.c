/*
 * The nodes' logs of a failed cluster test, printed where CI shows them.
 *
 * A test runs in a worker process; only the runner learns whether it
 * passed. So the worker registers each cluster directory it creates under
 * the runner's record directory (RD_H_RUN_DIR, made by the PRE_ALL hook and
 * inherited by every worker), and leaves the directory in place at cleanup.
 * After the test, the runner prints the tail of every node's log when the
 * test failed, crashed or timed out, then removes the directories either
 * way (RD_KEEP_TMP keeps them, as before).
 *
 * Without the runner's directory (a worker started some other way), the
 * worker removes its directories itself, as it always did.
 */
#include "harness.h"

#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RUN_ENV    "RD_H_RUN_DIR"
#define TAIL_LINES 120

static char run_dir[64];

static void record_path(char *out, size_t size, const char *base,
                        const struct criterion_test *t)
{
	snprintf(out, size, "%s/%s.%s", base, t->category, t->name);
}

bool rd_h_runner_keeps(const char *dir)
{
	const char *base = getenv(RUN_ENV);
	char path[512];
	FILE *f;

	if (base == NULL || criterion_current_test == NULL)
		return false;
	record_path(path, sizeof path, base, criterion_current_test);
	f = fopen(path, "a");
	if (f == NULL)
		return false;
	fprintf(f, "%s\n", dir);
	return fclose(f) == 0;
}

/* The last TAIL_LINES lines of `path` to stderr. */
static void print_tail(const char *path)
{
	static char lines[TAIL_LINES][512];
	unsigned n = 0;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return;
	while (fgets(lines[n % TAIL_LINES], sizeof lines[0], f) != NULL)
		n++;
	fclose(f);
	fprintf(stderr, "---- %s: last %u of %u lines ----\n", path,
	        n < TAIL_LINES ? n : TAIL_LINES, n);
	for (unsigned k = n < TAIL_LINES ? 0 : n - TAIL_LINES; k < n; k++) {
		const char *l = lines[k % TAIL_LINES];
		fprintf(stderr, "%s%s", l, strchr(l, '\n') != NULL ? "" : "\n");
	}
}

static void print_logs(const char *dir)
{
	char path[1024];

	for (unsigned i = 1; i <= RD_H_MAX_NODES; i++) {
		snprintf(path, sizeof path, "%s/node%u.log", dir, i);
		if (access(path, R_OK) == 0)
			print_tail(path);
	}
}

static void settle(const struct criterion_test *t, bool failed)
{
	char path[512], dir[512], cmd[600];
	FILE *f;

	if (run_dir[0] == '\0' || t == NULL)
		return;
	record_path(path, sizeof path, run_dir, t);
	f = fopen(path, "r");
	if (f == NULL)
		return;
	while (fgets(dir, sizeof dir, f) != NULL) {
		dir[strcspn(dir, "\n")] = '\0';
		if (strncmp(dir, "/tmp/rd-", 8) != 0 || strchr(dir, '\'') != NULL)
			continue;
		if (failed)
			print_logs(dir);
		if (getenv("RD_KEEP_TMP") != NULL)
			continue;
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
	fclose(f);
	unlink(path);
}

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
	(void)set;
	snprintf(run_dir, sizeof run_dir, "/tmp/rd-h-run-XXXXXX");
	if (mkdtemp(run_dir) == NULL || setenv(RUN_ENV, run_dir, 1) != 0)
		run_dir[0] = '\0';
}

ReportHook(POST_TEST)(struct criterion_test_stats *st)
{
	settle(st->test,
	       st->test_status != CR_STATUS_PASSED || st->crashed || st->timed_out);
}

/* A crashed or timed-out worker may never report POST_TEST. */
ReportHook(TEST_CRASH)(struct criterion_test_stats *st)
{
	settle(st->test, true);
}

ReportHook(POST_ALL)(struct criterion_global_stats *gs)
{
	(void)gs;
	if (run_dir[0] != '\0')
		rmdir(run_dir);
}
