/* raftd's command line and config errors: a bad config exits with the
 * status systemd/raftd.service lists in RestartPreventExitStatus= (so that
 * systemd does not restart it in a loop) and a FILE:LINE message, before
 * touching the data directory. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static char dir[64];

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/rd-args-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

static const char *write_conf(const char *body)
{
	static char path[128];
	FILE *f;
	snprintf(path, sizeof path, "%s/bad.conf", dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fprintf(f, "[node]\nid = 1\ndata_dir = %s/data\n%s", dir, body);
	fclose(f);
	return path;
}

/* The number in "RestartPreventExitStatus=N" of a unit file. */
static int prevent_status(const char *unit)
{
	char line[256];
	const char *key = "RestartPreventExitStatus=";
	FILE *f = fopen(rd_h_src_path(unit), "r");
	int status = -1;

	cr_assert_not_null(f, "cannot open %s", unit);
	while (fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, key, strlen(key)) == 0)
			status = atoi(line + strlen(key));
	fclose(f);
	cr_assert_gt(status, 2, "%s: no RestartPreventExitStatus= above 2", unit);
	return status;
}

static void expect_config_error(const char *body, const char *want)
{
	char err[2048], datadir[128];
	const char *path = write_conf(body);
	int status = prevent_status("systemd/raftd.service");
	struct stat st;

	cr_assert_eq(prevent_status("systemd/raftd@.service"), status);
	cr_assert_eq(rd_h_raftd(err, sizeof err, "--config", path), status, "stderr: %s",
	             err);
	cr_assert(strstr(err, path) != NULL, "no file name in: %s", err);
	cr_assert(strstr(err, want) != NULL, "'%s' not in: %s", want, err);
	snprintf(datadir, sizeof datadir, "%s/data", dir);
	cr_assert_neq(stat(datadir, &st), 0, "data dir was created");
	cr_assert_eq(rd_h_raftd(err, sizeof err, "--check-config", path), status);
}

Test(daemon_args, unknown_key_is_named_with_line, .init = setup, .fini = teardown)
{
	expect_config_error(
	    "[cluster]\nlisten = 127.0.0.1:7001\npeers = 1@127.0.0.1:7001\n"
	    "[tls]\nmode = insecure\nfoo = bar\n",
	    ":9: [tls] foo: unknown key");
}

Test(daemon_args, bad_address, .init = setup, .fini = teardown)
{
	expect_config_error("[cluster]\nlisten = 127.0.0.1\n", ":5: [cluster] listen:");
}

Test(daemon_args, missing_certificate_file, .init = setup, .fini = teardown)
{
	char body[512];
	snprintf(body, sizeof body,
	         "[cluster]\nlisten = 127.0.0.1:7001\npeers = 1@127.0.0.1:7001\n"
	         "[tls]\nca = %s/none-ca.pem\ncert = %s/c.pem\nkey = %s/k.pem\n",
	         dir, dir, dir);
	expect_config_error(body, ":8: [tls] ca: cannot read");
}

Test(daemon_args, version_and_usage)
{
	char err[512];
	cr_assert_eq(rd_h_raftd(err, sizeof err, "--version", NULL), 0);
	cr_assert_eq(rd_h_raftd(err, sizeof err, "--bogus", "x"), 2);
	cr_assert(strstr(err, "usage") != NULL);
}

/* A node configured with [cluster] join whose join addresses nobody
 * answers keeps asking (one line per outcome), opens nothing and is not
 * ready; SIGTERM stops it with exit 1 ("stopped while joining"), not the
 * config error status: it may join later. (A join the cluster refuses
 * exits with the config error status: tests/cluster/test_join.c.) */
Test(daemon_args, a_join_nobody_answers_is_retried_until_stopped, .init = setup,
     .fini = teardown)
{
	char body[512], err[2048], log[128], sock[128], out[8192];
	int status;
	pid_t pid;

	snprintf(sock, sizeof sock, "%s/raftd.sock", dir);
	snprintf(
	    body, sizeof body,
	    "[cluster]\nlisten = 127.0.0.1:%d\njoin = 127.0.0.1:%d\n"
	    "[tls]\nmode = insecure\n[control]\nsocket = %s\n[admin]\nlisten = off\n",
	    rd_h_free_port(true), rd_h_free_port(true), sock);
	const char *path = write_conf(body);
	cr_assert_eq(rd_h_raftd(err, sizeof err, "--check-config", path), 0, "%s", err);
	snprintf(log, sizeof log, "%s/raftd.log", dir);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		FILE *f = freopen(log, "w", stderr);
		(void)f;
		execl(rd_h_build_path("raftd"), "raftd", "--config", path, (char *)NULL);
		_exit(127);
	}
	bool asked = false;
	for (int t = 0; t < 600 && !asked; t++) {
		char cmd[256];
		usleep(100 * 1000);
		snprintf(cmd, sizeof cmd, "grep -q 'join via' '%s'", log);
		asked = system(cmd) == 0;
	}
	bool serving = access(sock, F_OK) == 0;
	kill(pid, SIGTERM);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(asked, "no line about the join attempt");
	cr_expect(!serving, "a joining node serves no client yet");
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %d", status);
	FILE *f = fopen(log, "r");
	size_t n = f != NULL ? fread(out, 1, sizeof out - 1, f) : 0;
	out[n] = 0;
	if (f != NULL)
		fclose(f);
	cr_expect(strstr(out, "joining a running cluster as node 1") != NULL, "%s", out);
}
