/* Operating a running raftd (conf/man/raftd.8): the admin HTTP endpoints against a
 * real node, SIGHUP with a broken certificate path, and `make run`'s script
 * end to end. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <ctype.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl/metrics.h"
#include "common/http.h"
#include "harness.h"

static struct rd_h_cluster C;

static void teardown(void)
{
	rd_h_cluster_free(&C);
}

static const char *body(const char *resp)
{
	const char *b = strstr(resp, "\r\n\r\n");
	return b != NULL ? b + 4 : "";
}

/* A small JSON validator (RFC 8259 grammar, no semantic checks). */
static const char *ws(const char *p)
{
	while (isspace((unsigned char)*p))
		p++;
	return p;
}

static const char *value(const char *p);

static const char *string(const char *p)
{
	if (*p++ != '"')
		return NULL;
	while (*p != '"') {
		if (*p == '\0' || (unsigned char)*p < 0x20)
			return NULL;
		if (*p == '\\')
			p++;
		p++;
	}
	return p + 1;
}

static const char *value(const char *p)
{
	p = ws(p);
	if (*p == '{' || *p == '[') {
		char close = *p == '{' ? '}' : ']';
		bool obj = *p == '{';
		p = ws(p + 1);
		if (*p == close)
			return p + 1;
		for (;;) {
			if (obj) {
				p = string(ws(p));
				if (p == NULL || *(p = ws(p)) != ':')
					return NULL;
				p++;
			}
			p = value(p);
			if (p == NULL)
				return NULL;
			p = ws(p);
			if (*p == close)
				return p + 1;
			if (*p++ != ',')
				return NULL;
		}
	}
	if (*p == '"')
		return string(p);
	if (strncmp(p, "true", 4) == 0)
		return p + 4;
	if (strncmp(p, "false", 5) == 0)
		return p + 5;
	if (strncmp(p, "null", 4) == 0)
		return p + 4;
	if (*p == '-' || isdigit((unsigned char)*p)) {
		char *end;
		strtod(p, &end);
		return end;
	}
	return NULL;
}

static bool json_valid(const char *s)
{
	const char *end = value(s);
	return end != NULL && *ws(end) == '\0';
}

Test(live_ops, admin_endpoints_on_a_running_node, .fini = teardown, .timeout = 120)
{
	static char resp[1 << 20];
	struct rd_h_opts o = {.data_groups = 2};
	int port;

	rd_h_cluster_init(&C, 3, &o);
	port = C.nodes[0].admin_port;
	rd_h_start(&C, 1);
	/* Alone, node 1 has no metadata leader: live but not ready. */
	for (int i = 0;
	     i < 100 && rd_t_http_get(port, "/livez", resp, sizeof resp) != 200; i++)
		usleep(50 * 1000);
	cr_assert_eq(rd_t_http_get(port, "/livez", resp, sizeof resp), 200);
	cr_assert_eq(rd_t_http_get(port, "/readyz", resp, sizeof resp), 503);
	cr_assert(strstr(body(resp), "metadata group") != NULL, "%s", resp);
	rd_h_start(&C, 2);
	rd_h_start(&C, 3);
	cr_assert(rd_h_wait_ready(&C, 30));
	cr_assert_eq(rd_t_http_get(port, "/readyz", resp, sizeof resp), 200);

	cr_assert_eq(rd_t_http_get(port, "/status", resp, sizeof resp), 200);
	cr_assert(strstr(resp, "application/json") != NULL);
	cr_assert(json_valid(body(resp)), "not JSON: %s", body(resp));
	cr_assert(strstr(body(resp), "\"groups\":[{\"group\":0") != NULL, "%s",
	          body(resp));
	cr_assert(strstr(body(resp), "\"connected\":true") != NULL, "%s", body(resp));

	cr_assert_eq(rd_t_http_get(port, "/metrics", resp, sizeof resp), 200);
	cr_assert(strstr(resp, "text/plain; version=0.0.4") != NULL);
	for (int id = 0; id < RD_METRIC_COUNT; id++) {
		char want[160];
		snprintf(want, sizeof want, "# TYPE %s ", rd_metrics_desc(id)->name);
		cr_assert(strstr(body(resp), want) != NULL, "metric %s missing",
		          rd_metrics_desc(id)->name);
	}
	cr_assert(strstr(body(resp), "raft_group_is_leader{group=\"0\"}") != NULL);
	cr_assert(strstr(body(resp), "raft_peer_connected{peer=\"2\"} 1") != NULL);
	cr_assert(strstr(body(resp), "raft_node_ready 1") != NULL);
	cr_assert_eq(rd_t_http_get(port, "/nope", resp, sizeof resp), 404);
}

Test(live_ops, sighup_with_a_bad_certificate_keeps_the_node_serving, .fini = teardown,
     .timeout = 120)
{
	struct rd_h_opts o = {.data_groups = 1};
	char out[256], cmd[1024];

	rd_h_cluster_init(&C, 1, &o);
	rd_h_start_all(&C);
	cr_assert(rd_h_wait_ready(&C, 30));
	/* Point the certificate at a file that does not exist, then reload. */
	snprintf(cmd, sizeof cmd, "sed -i 's|^cert = .*|cert = %s/missing.pem|' %s",
	         C.dir, C.nodes[0].conf);
	cr_assert_eq(system(cmd), 0);
	kill(C.nodes[0].pid, SIGHUP);
	usleep(300 * 1000);
	cr_assert_eq(waitpid(C.nodes[0].pid, NULL, WNOHANG), 0, "raftd exited on SIGHUP");
	snprintf(cmd, sizeof cmd, "grep -q 'reload failed, keeping' %s", C.nodes[0].log);
	cr_assert_eq(system(cmd), 0, "no log line about the failed reload");
	cr_assert_eq(
	    rd_h_ctl(&C, 1, out, sizeof out, "put", "after", "hup", (char *)NULL), 0);
}

Test(live_ops, make_run_script_starts_serves_and_stops, .timeout = 180)
{
	char dir[] = "/tmp/rd-run-XXXXXX", cmd[2048], out[4096], sock[256];
	int port = rd_h_free_port(true), st;
	pid_t pid;

	cr_assert_not_null(mkdtemp(dir));
	pid = fork();
	if (pid == 0) {
		char env_port[32];
		snprintf(env_port, sizeof env_port, "%d", port);
		setenv("RD_RUN_BASE_PORT", env_port, 1);
		snprintf(env_port, sizeof env_port, "%d", rd_h_free_port(false));
		setenv("RD_RUN_ADMIN_PORT", env_port, 1);
		setenv("RD_RUN_DIR", dir, 1);
		setenv("RD_RUN_FRESH", "1", 1);
		/* A shell cannot trap a signal ignored when it started (POSIX
		 * trap), and a test run as a background job inherits SIGINT
		 * ignored: the script would never hear the Ctrl-C below. */
		signal(SIGINT, SIG_DFL);
		snprintf(cmd, sizeof cmd, "%s/run.log", dir);
		freopen(cmd, "w", stdout);
		freopen(cmd, "a", stderr);
		execl("/bin/bash", "bash", rd_h_src_path("conf/run-local.sh"), "3",
		      (char *)NULL);
		_exit(127);
	}
	/* Every node ready, as the script waits for before it says so: a
	 * write on node 1 once only node 3 is ready may meet NOT_READY. */
	for (int i = 1; i <= 3; i++) {
		snprintf(cmd, sizeof cmd,
		         "%s -s %s/node%d/raftd.sock ready --wait 60 >/dev/null",
		         rd_h_build_path("raftctl"), dir, i);
		cr_assert_eq(system(cmd), 0, "make run's node %d never became ready", i);
	}
	snprintf(sock, sizeof sock, "%s/node3/raftd.sock", dir);
	snprintf(cmd, sizeof cmd,
	         "%s -s %s/node1/raftd.sock put greeting hello >/dev/null",
	         rd_h_build_path("raftctl"), dir);
	cr_assert_eq(system(cmd), 0);
	snprintf(cmd, sizeof cmd, "%s -s %s get greeting > %s/get.out",
	         rd_h_build_path("raftctl"), sock, dir);
	cr_assert_eq(system(cmd), 0);
	snprintf(cmd, sizeof cmd, "%s/get.out", dir);
	FILE *f = fopen(cmd, "r");
	cr_assert_not_null(fgets(out, sizeof out, f));
	fclose(f);
	cr_assert_str_eq(out, "hello\n");
	/* Ctrl-C once the script says it waits for one: a SIGINT that arrives
	 * while bash runs its own foreground readiness check is taken as that
	 * command's and never reaches the trap. */
	snprintf(cmd, sizeof cmd,
	         "for i in $(seq 600); do grep -q 'Press Ctrl-C' %s/run.log && exit 0; "
	         "sleep 0.1; done; exit 1",
	         dir);
	cr_assert_eq(system(cmd), 0, "make run's script never said it was ready");
	kill(pid, SIGINT);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "run-local.sh status %d", st);
	snprintf(cmd, sizeof cmd, "grep -c 'exited with status 0' %s/run.log | grep -q 3",
	         dir);
	cr_assert_eq(system(cmd), 0, "not every node exited 0");
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

/* A node that never answers (here stopped with SIGSTOP: its socket still
 * takes the connection and the request) does not keep raftctl waiting past
 * the request's deadline and a grace: it exits 4, outcome unknown. */
Test(live_ops, raftctl_gives_up_on_a_node_that_never_answers, .fini = teardown,
     .timeout = 120)
{
	struct rd_h_opts o = {.data_groups = 1};
	char cmd[1024], err[512], line[512] = "";
	int st;

	rd_h_cluster_init(&C, 1, &o);
	rd_h_start(&C, 1);
	cr_assert(rd_h_wait_ready(&C, 30), "node not ready (logs in %s)", C.dir);
	snprintf(err, sizeof err, "%s/raftctl.err", C.dir);
	cr_assert_eq(kill(C.nodes[0].pid, SIGSTOP), 0);
	snprintf(cmd, sizeof cmd, "%s -s %s --timeout 200 put k v 2>%s",
	         rd_h_build_path("raftctl"), C.nodes[0].sock, err);
	st = system(cmd);
	cr_assert_eq(kill(C.nodes[0].pid, SIGCONT), 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 4, "raftctl status %d", st);
	FILE *f = fopen(err, "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(line, sizeof line, f));
	fclose(f);
	cr_assert(strstr(line, "no answer from") != NULL &&
	              strstr(line, "outcome unknown") != NULL,
	          "%s", line);
	/* Running again, it answers as before. */
	rd_h_put(&C, 1, 30, "k", "v2");
}
