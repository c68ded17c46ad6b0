/* raftd's command line and config errors: a bad config exits 1 with a
 * FILE:LINE message before touching the data directory. */
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

static void expect_config_error(const char *body, const char *want)
{
	char err[2048], datadir[128];
	const char *path = write_conf(body);
	struct stat st;

	cr_assert_eq(rd_h_raftd(err, sizeof err, "--config", path), 1, "stderr: %s", err);
	cr_assert(strstr(err, path) != NULL, "no file name in: %s", err);
	cr_assert(strstr(err, want) != NULL, "'%s' not in: %s", want, err);
	snprintf(datadir, sizeof datadir, "%s/data", dir);
	cr_assert_neq(stat(datadir, &st), 0, "data dir was created");
	cr_assert_eq(rd_h_raftd(err, sizeof err, "--check-config", path), 1);
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
