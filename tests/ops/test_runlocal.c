/* conf/run-local.sh (make run): the configs it writes are valid and match
 * conf/node1..3.conf, ports and directories follow the environment, data
 * survives a rerun of the same size and not a change of size; and its
 * process handling, run headless against a fake raftd/raftctl pair: every
 * node started with its log prefixed, readiness awaited, the raftctl hints
 * printed, SIGINT turned into exactly one SIGTERM per node, exit 0 when all
 * nodes exit 0, and a node failing at start stopping the others.
 *
 * The fakes stand in for the daemon until it runs a cluster; the fake
 * raftd still validates each config with the real `raftd --check-config`.
 * Everything happens in a temporary directory (RD_RUN_DIR) with binaries
 * from another one (RD_BUILD), so a developer's build/run is not touched. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctl/check.h"
#include "ctl/metrics.h"
#include "sh.h"
#include "util/err.h"

static char dir[256];
static char run[320], bin[320];
static pid_t script_pid; /* a script still running when a test fails */

static void setup(void)
{
	ops_mkdtemp(dir);
	snprintf(run, sizeof run, "%s/run", dir);
	snprintf(bin, sizeof bin, "%s/bin", dir);
}

static void teardown(void)
{
	/* After a failed assertion: let the script stop its nodes (SIGTERM,
	 * bounded by its own stop timeout), then kill what is left. The nodes
	 * run in their own sessions: they are found by the pids the script
	 * logged, and killed only while their command line still names this
	 * test's run directory. */
	if (script_pid > 0 && waitpid(script_pid, NULL, WNOHANG) == 0) {
		bool reaped = false;
		kill(script_pid, SIGTERM);
		for (int i = 0; i < 450 && !reaped; i++) {
			reaped = waitpid(script_pid, NULL, WNOHANG) == script_pid;
			if (!reaped)
				usleep(100 * 1000);
		}
		if (!reaped) {
			kill(script_pid, SIGKILL);
			waitpid(script_pid, NULL, 0);
		}
		ops_sh(NULL, 0,
		       "for p in $(sed -n 's/^\\[run\\] started .* pids //p' "
		       "'%s/out.log'); do "
		       "grep -qF '%s/' /proc/$p/cmdline && kill -KILL $p; done "
		       "2>/dev/null; true",
		       dir, run);
	}
	script_pid = 0;
	ops_rmrf(dir);
}

TestSuite(runlocal, .init = setup, .fini = teardown, .timeout = 120);

/* Readable placeholder certificates, enough for --check-config, so that the
 * script does not call conf/raftd-certs. */
static void dummy_certs(unsigned n)
{
	cr_assert_eq(ops_sh(NULL, 0,
	                    "mkdir -p '%s/certs' && cd '%s/certs' && touch ca.pem && "
	                    "for i in $(seq 1 %u); do touch node$i.pem node$i.key; done",
	                    run, run, n),
	             0);
}

/* Run the script to completion with `env` (shell assignments) prepended. */
static int script(char *out, size_t size, const char *env, const char *args)
{
	return ops_sh(out, size, "%s RD_RUN_DIR='%s' bash '%s' %s 2>&1", env, run,
	              ops_src("conf/run-local.sh"), args);
}

static char *node_conf(unsigned i)
{
	char path[512];
	snprintf(path, sizeof path, "%s/node%u/raftd.conf", run, i);
	char *t = ops_read_file(path);
	cr_assert_not_null(t, "%s was not written", path);
	return t;
}

/* With the default ports, the generated configs are conf/node1..3.conf
 * (with this run directory in place of build/run), and raftd accepts them.
 * The certificates come from conf/raftd-certs when it exists. */
Test(runlocal, configs_match_conf_and_validate)
{
	char out[8192];
	bool have_certs = access(ops_src("conf/raftd-certs"), X_OK) == 0;

	if (!have_certs) {
		cr_log_warn(
		    "conf/raftd-certs is not there yet: using placeholder certificates");
		dummy_certs(3);
	}
	cr_assert_eq(script(out, sizeof out, "", "--write-configs 3"), 0, "%s", out);
	for (unsigned i = 1; i <= 3; i++) {
		char name[64];
		snprintf(name, sizeof name, "conf/node%u.conf", i);
		char *want = ops_read_file(ops_src(name));
		cr_assert_not_null(want, "%s", name);
		char *expect = ops_replace(want, "build/run", run);
		char *got = node_conf(i);
		cr_assert_str_eq(got, expect, "node%u differs from %s", i, name);
		free(got);
		free(expect);
		free(want);
	}
	if (have_certs)
		cr_assert_eq(access(ops_src("conf/raftd-certs"), X_OK), 0);
}

/* NODES=5 on other ports: consecutive QUIC and admin ports from the bases,
 * all five founding peers listed in every config. */
Test(runlocal, five_nodes_on_chosen_ports)
{
	char out[8192];

	dummy_certs(5);
	cr_assert_eq(script(out, sizeof out,
	                    "RD_RUN_BASE_PORT=17001 RD_RUN_ADMIN_PORT=19001",
	                    "--write-configs 5"),
	             0, "%s", out);
	char *c = node_conf(5);
	cr_assert_not_null(strstr(c, "\nid = 5\n"), "%s", c);
	cr_assert_not_null(strstr(c, "\nlisten = 127.0.0.1:17005\n"), "%s", c);
	cr_assert_not_null(strstr(c, "\nlisten = 127.0.0.1:19005\n"), "%s", c);
	cr_assert_not_null(
	    strstr(c, "\npeers = 1@127.0.0.1:17001, 2@127.0.0.1:17002, "
	              "3@127.0.0.1:17003, 4@127.0.0.1:17004, 5@127.0.0.1:17005\n"),
	    "%s", c);
	cr_assert_not_null(strstr(c, "/node5/raftd.sock\n"), "%s", c);
	free(c);
}

/* The admin base defaults to the QUIC base + 2100 (7001 -> 9101). */
Test(runlocal, admin_port_follows_base)
{
	char out[8192];

	dummy_certs(1);
	cr_assert_eq(
	    script(out, sizeof out, "RD_RUN_BASE_PORT=20001", "--write-configs 1"), 0,
	    "%s", out);
	char *c = node_conf(1);
	cr_assert_not_null(strstr(c, "\nlisten = 127.0.0.1:22101\n"), "%s", c);
	free(c);
}

/* Bad arguments are refused with a message and status 1. */
Test(runlocal, bad_arguments)
{
	char out[8192];
	const char *bad[] = {"", "0", "x", "65", "3 4", "--write-configs"};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_assert_eq(script(out, sizeof out, "", bad[i]), 1, "'%s': %s", bad[i],
		             out);
		cr_assert_not_null(strstr(out, "[run] error:"), "'%s': %s", bad[i], out);
	}
	cr_assert_eq(
	    script(out, sizeof out, "RD_RUN_BASE_PORT=65534", "--write-configs 3"), 1);
	cr_assert_not_null(strstr(out, "does not leave room"), "%s", out);
}

/* Data survives a rerun with the same number of nodes, and is wiped when
 * the number changes (the founding peer list must match the data). */
Test(runlocal, data_kept_for_same_size_wiped_on_change)
{
	char out[8192], marker[512];

	dummy_certs(5);
	cr_assert_eq(script(out, sizeof out, "", "--write-configs 3"), 0, "%s", out);
	snprintf(marker, sizeof marker, "%s/node1/data/marker", run);
	cr_assert_eq(
	    ops_sh(NULL, 0, "mkdir -p '%s/node1/data' && touch '%s'", run, marker), 0);
	cr_assert_eq(script(out, sizeof out, "", "--write-configs 3"), 0, "%s", out);
	cr_assert_eq(access(marker, F_OK), 0, "data of the same cluster was removed");
	cr_assert_eq(script(out, sizeof out, "", "--write-configs 5"), 0, "%s", out);
	cr_assert_neq(access(marker, F_OK), 0,
	              "data of a 3-node cluster kept for 5 nodes");
}

/* --- the process handling, with fakes ----------------------------------------- */

static const char fake_raftd[] =
    "#!/bin/bash\n"
    "# Fake raftd: configs are checked by the real one; otherwise it pretends\n"
    "# to be a node until SIGTERM and records every signal it gets.\n"
    "if [ \"$1\" = --check-config ]; then exec \"$REAL_RAFTD\" --check-config \"$2\"; "
    "fi\n"
    "[ \"$1\" = --config ] || exit 2\n"
    "dir=$(dirname \"$2\")\n"
    "node=$(basename \"$dir\")\n"
    "echo $$ >\"$dir/pid\"\n"
    "trap 'echo INT >>\"$dir/signals\"' INT\n"
    "trap 'echo TERM >>\"$dir/signals\"; echo \"<5>fake stopping $node\"; exit 0' TERM\n"
    "echo \"<6>fake started $node\"\n"
    "if [ \"${FAKE_FAIL_NODE:-}\" = \"$node\" ]; then echo '<3>fake failing'; exit 1; "
    "fi\n"
    "touch \"$dir/ready\"\n"
    "while :; do sleep 0.05; done\n";

static const char fake_raftctl[] =
    "#!/bin/bash\n"
    "# Fake raftctl: only '-s SOCK ready --wait N', true once the node is up.\n"
    "[ \"$1\" = -s ] && [ \"$3\" = ready ] || exit 2\n"
    "[ -f \"$(dirname \"$2\")/ready\" ] && exit 0\n"
    "sleep 0.2\n"
    "exit 1\n";

static void install_fakes(void)
{
	char path[512];

	cr_assert_eq(mkdir(bin, 0755), 0);
	snprintf(path, sizeof path, "%s/raftd", bin);
	ops_write_file(path, fake_raftd);
	cr_assert_eq(chmod(path, 0755), 0);
	snprintf(path, sizeof path, "%s/raftctl", bin);
	ops_write_file(path, fake_raftctl);
	cr_assert_eq(chmod(path, 0755), 0);
}

/* The first of `n` consecutive free loopback ports of `type` (SOCK_STREAM
 * for the admin addresses, which the script probes; SOCK_DGRAM for QUIC). */
static int free_ports(int n, int type)
{
	for (int attempt = 0; attempt < 50; attempt++) {
		struct sockaddr_in sin = {.sin_family = AF_INET};
		socklen_t len = sizeof sin;
		int fd = socket(AF_INET, type, 0), base, ok = 1;

		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
		getsockname(fd, (struct sockaddr *)&sin, &len);
		base = ntohs(sin.sin_port);
		close(fd);
		if (base + n > 65535)
			continue;
		for (int i = 0; i < n && ok; i++) {
			fd = socket(AF_INET, type, 0);
			sin.sin_port = htons((uint16_t)(base + i));
			ok = bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0;
			close(fd);
		}
		if (ok)
			return base;
	}
	cr_assert_fail("no run of %d free ports", n);
	return 0;
}

static int admin_base;

/* Start the script in the background, its output into dir/out.log: with the
 * fakes in `bin`, or with the real programs when `real`. */
static pid_t spawn_script(unsigned nodes, const char *fail_node, bool real)
{
	char log[512], n[16], port[16], quic[16], real_raftd[512], build[512];
	pid_t pid;

	snprintf(log, sizeof log, "%s/out.log", dir);
	snprintf(n, sizeof n, "%u", nodes);
	admin_base = free_ports((int)nodes, SOCK_STREAM);
	snprintf(port, sizeof port, "%d", admin_base);
	snprintf(quic, sizeof quic, "%d", free_ports((int)nodes, SOCK_DGRAM));
	/* Before RD_BUILD is pointed at the fakes. */
	snprintf(real_raftd, sizeof real_raftd, "%s", ops_build("raftd"));
	snprintf(build, sizeof build, "%s", real ? ops_build("") : bin);
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		FILE *f = freopen(log, "w", stdout);
		if (f == NULL || dup2(STDOUT_FILENO, STDERR_FILENO) < 0)
			_exit(126);
		/* Its own process group, so that the test can signal the group
		 * as a terminal's Ctrl-C does. A shell cannot trap a signal that
		 * was ignored when it started: restore the defaults. */
		setsid();
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		setenv("RD_BUILD", build, 1);
		setenv("RD_RUN_DIR", run, 1);
		setenv("RD_RUN_BASE_PORT", quic, 1);
		setenv("RD_RUN_ADMIN_PORT", port, 1);
		setenv("RD_RUN_READY_TIMEOUT", real ? "90" : "30", 1);
		setenv("REAL_RAFTD", real_raftd, 1);
		if (fail_node != NULL)
			setenv("FAKE_FAIL_NODE", fail_node, 1);
		execlp("bash", "bash", ops_src("conf/run-local.sh"), n, (char *)NULL);
		_exit(127);
	}
	script_pid = pid;
	return pid;
}

static char *read_log(void)
{
	char log[512];
	snprintf(log, sizeof log, "%s/out.log", dir);
	char *t = ops_read_file(log);
	return t != NULL ? t : strdup("");
}

/* Wait until the script's output contains `what`; fail when the script
 * exits first (the deadline only guards against a hang). */
static void await_output(const char *what)
{
	time_t deadline = time(NULL) + 150;
	for (;;) {
		char *t = read_log();
		bool found = strstr(t, what) != NULL;
		int st;
		if (!found && waitpid(script_pid, &st, WNOHANG) == script_pid) {
			script_pid = 0;
			cr_assert_fail("the script exited (status 0x%x) before '%s':\n%s",
			               st, what, t);
		}
		if (found || time(NULL) > deadline) {
			cr_assert(found, "no '%s' in:\n%s", what, t);
			free(t);
			return;
		}
		free(t);
		usleep(50 * 1000);
	}
}

static int wait_exit(pid_t pid)
{
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	script_pid = 0;
	cr_assert(WIFEXITED(st), "script killed by signal %d", WTERMSIG(st));
	return WEXITSTATUS(st);
}

static void expect_signals(unsigned i, const char *want)
{
	char path[512];
	snprintf(path, sizeof path, "%s/node%u/signals", run, i);
	char *got = ops_read_file(path);
	cr_assert_not_null(got, "node%u got no signal", i);
	cr_assert_str_eq(got, want, "node%u got signals: %s", i, got);
	free(got);
}

/* Started, all ready, hints printed with the right -s paths, and a Ctrl-C
 * (SIGINT to the whole foreground process group: the script, its log
 * prefixers, its sleep) becomes one SIGTERM per node (never a second
 * signal, which would make raftd exit at once); the nodes' last lines still
 * get through; all exit 0, so the script exits 0. */
Test(runlocal, sigint_stops_every_node_once)
{
	char want[1024];
	pid_t pid;

	install_fakes();
	dummy_certs(3);
	pid = spawn_script(3, NULL, false);
	await_output("[run] all 3 nodes are ready");
	char *t = read_log();
	for (unsigned i = 1; i <= 3; i++) {
		snprintf(want, sizeof want, "[node%u] <6>fake started node%u\n", i, i);
		cr_assert_not_null(strstr(t, want), "%s", t);
	}
	snprintf(want, sizeof want,
	         "%s/raftctl -s %s/node1/raftd.sock put greeting hello", bin, run);
	cr_assert_not_null(strstr(t, want), "%s", t);
	snprintf(want, sizeof want, "%s/raftctl -s %s/node2/raftd.sock get greeting", bin,
	         run);
	cr_assert_not_null(strstr(t, want), "%s", t);
	free(t);

	cr_assert_eq(kill(-pid, SIGINT), 0);
	cr_assert_eq(wait_exit(pid), 0, "%s", read_log());
	t = read_log();
	for (unsigned i = 1; i <= 3; i++) {
		expect_signals(i, "TERM\n");
		snprintf(want, sizeof want, "[node%u] <5>fake stopping node%u\n", i, i);
		cr_assert_not_null(strstr(t, want), "%s", t);
		snprintf(want, sizeof want, "[run] node%u exited with status 0\n", i);
		cr_assert_not_null(strstr(t, want), "%s", t);
	}
	free(t);
}

/* SIGTERM to the script (systemd, a CI runner) works the same way. */
Test(runlocal, sigterm_stops_every_node_once)
{
	pid_t pid;

	install_fakes();
	dummy_certs(2);
	pid = spawn_script(2, NULL, false);
	await_output("[run] all 2 nodes are ready");
	cr_assert_eq(kill(pid, SIGTERM), 0);
	cr_assert_eq(wait_exit(pid), 0, "%s", read_log());
	expect_signals(1, "TERM\n");
	expect_signals(2, "TERM\n");
}

/* A node that exits before it is ready stops the run: the others get their
 * SIGTERM and the script exits 1 naming the node. */
Test(runlocal, failing_node_stops_the_others)
{
	pid_t pid;

	install_fakes();
	dummy_certs(3);
	pid = spawn_script(3, "node2", false);
	cr_assert_eq(wait_exit(pid), 1, "%s", read_log());
	char *t = read_log();
	cr_assert_not_null(strstr(t, "[node2] <3>fake failing"), "%s", t);
	cr_assert_not_null(strstr(t, "node2 exited before it was ready"), "%s", t);
	cr_assert_not_null(strstr(t, "[run] node2 exited with status 1"), "%s", t);
	free(t);
	expect_signals(1, "TERM\n");
	expect_signals(3, "TERM\n");
}

/* --- the real cluster ---------------------------------------------------------- */

/* GET http://127.0.0.1:port/path with a blocking client; returns the
 * status code, the body in `body`. */
static int admin_get(int port, const char *path, char *body, size_t size)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
	                          .sin_port = htons((uint16_t)port)};
	char *raw = malloc(1 << 20), req[256];
	size_t got = 0;
	int fd, code = 0, n;

	cr_assert_not_null(raw);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0, "admin port %d",
	             port);
	n = snprintf(req, sizeof req,
	             "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
	             path);
	cr_assert_eq(write(fd, req, (size_t)n), n);
	for (ssize_t k; (k = read(fd, raw + got, (1 << 20) - 1 - got)) > 0;)
		got += (size_t)k;
	close(fd);
	raw[got] = '\0';
	sscanf(raw, "HTTP/1.1 %d", &code);
	char *b = strstr(raw, "\r\n\r\n");
	snprintf(body, size, "%s", b != NULL ? b + 4 : "");
	free(raw);
	return code;
}

/* raftctl against node i; stdout into `out`. */
static int ctl(unsigned i, char *out, size_t size, const char *args)
{
	return ops_sh(out, size, "'%s' -s '%s/node%u/raftd.sock' %s 2>&1",
	              ops_build("raftctl"), run, i, args);
}

/* make run's script (conf/run-local.sh), headless, with the real raftd and raftctl:
 * three nodes start and all become ready; a write on one node is read on
 * another; raftctl groups answers; every node's admin server says ready,
 * serves JSON status and valid metrics with every catalog family; and a
 * Ctrl-C stops all three with exit status 0. */
Test(runlocal, real_three_node_cluster, .timeout = 240)
{
	char out[65536], *body = malloc(1 << 20);
	char msg[RD_ERRMSG_SIZE] = "";
	pid_t pid;

	if (access(ops_src("lib/multiraft/node.c"), F_OK) != 0 ||
	    access(ops_src("conf/raftd-certs"), X_OK) != 0) {
		ops_rmrf(dir); /* .fini does not run for a skipped test */
		cr_skip_test(
		    "the node runtime or conf/raftd-certs is not in this tree yet");
	}
	cr_assert_not_null(body);
	pid = spawn_script(3, NULL, true);
	await_output("[run] all 3 nodes are ready");

	cr_assert_eq(ctl(1, out, sizeof out, "put greeting hello"), 0, "%s", out);
	cr_assert_eq(ctl(2, out, sizeof out, "get greeting"), 0, "%s", out);
	cr_assert_str_eq(out, "hello\n");
	cr_assert_eq(ctl(3, out, sizeof out, "groups"), 0, "%s", out);
	cr_log_info("raftctl groups on node 3:\n%s", out);

	for (unsigned i = 0; i < 3; i++) {
		int port = admin_base + (int)i;
		cr_assert_eq(admin_get(port, "/livez", body, 1 << 20), 200, "%s", body);
		cr_assert_eq(admin_get(port, "/readyz", body, 1 << 20), 200, "%s", body);
		cr_assert_eq(admin_get(port, "/status", body, 1 << 20), 200, "%s", body);
		cr_assert_eq(rd_check_json(body, strlen(body), msg), 0, "%s\n%s", msg,
		             body);
		cr_assert_eq(admin_get(port, "/metrics", body, 1 << 20), 200, "%s", body);
		cr_assert_eq(rd_check_prometheus(body, strlen(body), msg), 0, "%s", msg);
		for (unsigned m = 0; m < RD_METRIC_COUNT; m++)
			cr_assert(rd_check_prometheus_has(body, rd_metrics_desc(m)->name),
			          "node%u /metrics lacks %s", i + 1,
			          rd_metrics_desc(m)->name);
		cr_assert_eq(admin_get(port, "/nope", body, 1 << 20), 404);
	}
	free(body);

	cr_assert_eq(kill(-pid, SIGINT), 0);
	cr_assert_eq(wait_exit(pid), 0, "%s", read_log());
	char *t = read_log();
	for (unsigned i = 1; i <= 3; i++) {
		char want[64];
		snprintf(want, sizeof want, "[run] node%u exited with status 0\n", i);
		cr_assert_not_null(strstr(t, want), "%s", t);
	}
	free(t);
}
