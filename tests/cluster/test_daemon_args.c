/* raftd's command line and config errors: a bad config exits with the
 * status systemd/raftd.service lists in RestartPreventExitStatus= (so that
 * systemd does not restart it in a loop) and a FILE:LINE message, before
 * touching the data directory. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* A config that loads but that the node refuses at start (joining a running
 * cluster) is a config error too: the same status, so systemd does not
 * retry it either, while --check-config accepts the file. */
Test(daemon_args, refused_at_start_is_a_config_error, .init = setup, .fini = teardown)
{
	char err[2048];
	const char *path = write_conf("[cluster]\nlisten = 127.0.0.1:7001\n"
	                              "join = 127.0.0.1:7002\n[tls]\nmode = insecure\n");

	cr_assert_eq(rd_h_raftd(err, sizeof err, "--check-config", path), 0, "%s", err);
	cr_assert_eq(rd_h_raftd(err, sizeof err, "--config", path),
	             prevent_status("systemd/raftd.service"), "stderr: %s", err);
	cr_assert(strstr(err, "[cluster] join") != NULL, "%s", err);
}
