/* Envelopes between real raftd processes (proto/raftd.proto, "Envelopes";
 * conf/man/raftctl.1, send and handle): an envelope to a vShard is answered
 * by a handler on the node that leads the vShard's group, wherever it was
 * sent from; errors say whether it was delivered. Nothing here is timed:
 * deadlines only bound how long a test may wait. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define WAIT_S 30
#define GROUPS 4

static struct rd_h_cluster C;
static pid_t handlers[RD_H_MAX_NODES + 4];
static unsigned n_handlers;

static void teardown(void)
{
	for (unsigned i = 0; i < n_handlers; i++) {
		kill(-handlers[i], SIGKILL);
		waitpid(handlers[i], NULL, 0);
	}
	n_handlers = 0;
	rd_h_cluster_free(&C);
}

static void start(unsigned n, const char *extra)
{
	struct rd_h_opts o = {.data_groups = GROUPS, .extra_conf = extra};
	rd_h_cluster_init(&C, n, &o);
	rd_h_start_all(&C);
	cr_assert(rd_h_wait_ready(&C, WAIT_S), "cluster not ready (logs in %s)", C.dir);
}

/* `raftctl handle -- sh -c SCRIPT` on node i, in a process group of its own
 * (so that teardown also ends the commands it runs). */
static pid_t start_handler(unsigned i, const char *script)
{
	pid_t pid = fork();

	cr_assert(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		setpgid(0, 0);
		dup2(null, 0);
		dup2(null, 1);
		execl(rd_h_build_path("raftctl"), "raftctl", "-s", C.nodes[i - 1].sock,
		      "handle", "--", "sh", "-c", script, (char *)NULL);
		_exit(127);
	}
	setpgid(pid, pid);
	handlers[n_handlers++] = pid;
	return pid;
}

/* Wait until every node sees the same leader for every group. */
static bool leaders_agree(void)
{
	for (int tries = 0; tries < WAIT_S * 10; tries++) {
		bool ok = true;
		for (unsigned g = 0; g <= GROUPS && ok; g++) {
			unsigned l = rd_h_leader_of(&C, 1, g);
			ok = l != 0;
			for (unsigned i = 2; i <= C.n && ok; i++)
				ok = rd_h_leader_of(&C, i, g) == l;
		}
		if (ok)
			return true;
		usleep(100 * 1000);
	}
	return false;
}

/* The first vShard of data group g (bootstrap placement: vShard v belongs
 * to group 1 + v * GROUPS / 1024, lib/cluster/topology.c). */
static unsigned vshard_of(unsigned g)
{
	return (g - 1) * 1024 / GROUPS;
}

static const char node_script[] =
    "echo \"node=$NODE vshard=$RAFTD_VSHARD from=$RAFTD_SOURCE_NODE got=$(cat)\"";

static void start_echo_handlers(void)
{
	char script[512];

	for (unsigned i = 1; i <= C.n; i++) {
		snprintf(script, sizeof script, "NODE=%u; %s", i, node_script);
		start_handler(i, script);
	}
}

/* send from `from` to vShard v, retried while it fails (handlers still
 * registering, an election); returns the reply. */
static void send_ok(unsigned from, unsigned v, const char *payload, char *out,
                    size_t size)
{
	char vs[16];
	int rv;

	snprintf(vs, sizeof vs, "%u", v);
	rv = rd_h_ctl_retry(&C, from, WAIT_S, out, size, "send", "--vshard", vs, payload,
	                    (char *)NULL);
	cr_assert_eq(rv, 0, "send from node %u to vshard %u: exit %d (logs in %s)", from,
	             v, rv, C.dir);
}

/* send `payload` from `from` to group g's first vShard and check that the
 * node leading g answered. The placement driver may hand leaderships
 * over at any time (it balances them): a send during which the leader
 * `from` sees changed is sent again. */
static void send_to_leader(unsigned from, unsigned g, const char *payload)
{
	char out[4096], want[256];
	unsigned before = 0, after = 1;

	for (int tries = 0; tries < 20 && (before != after || before == 0); tries++) {
		before = rd_h_leader_of(&C, from, g);
		send_ok(from, vshard_of(g), payload, out, sizeof out);
		after = rd_h_leader_of(&C, from, g);
	}
	cr_assert(before == after && before != 0,
	          "group %u's leader kept changing under the sends (logs in %s)", g,
	          C.dir);
	snprintf(want, sizeof want, "node=%u vshard=%u from=%u got=%s\n", before,
	         vshard_of(g), from, payload);
	cr_assert_str_eq(out, want, "from node %u, group %u", from, g);
}

Test(envelopes, answered_by_the_node_leading_the_vshard_group_and_follow_a_transfer,
     .fini = teardown, .timeout = 180)
{
	char out[4096], gs[8], ts[8];
	unsigned l, target;

	start(3, NULL);
	cr_assert(leaders_agree(), "leaders never agreed (logs in %s)", C.dir);
	start_echo_handlers();
	for (unsigned from = 1; from <= 3; from++)
		for (unsigned g = 1; g <= GROUPS; g++)
			send_to_leader(from, g, "hello");
	/* --key addresses the vShard of the key; --json names the node. */
	cr_assert_eq(rd_h_ctl_retry(&C, 2, WAIT_S, out, sizeof out, "--json", "send",
	                            "--key", "some-key", "x", (char *)NULL),
	             0);
	cr_assert(strstr(out, "\"ok\":true") != NULL, "%s", out);

	/* Leadership moves (Raft thesis §3.10): the new leader's node answers.
	 * The placement driver balances leaders meanwhile, so the transfer is
	 * asked of whoever leads group 1 now, and the answers are checked
	 * against the leader each node sees when it sends. */
	bool moved = false;
	for (int tries = 0; tries < WAIT_S * 10 && !moved; tries++) {
		l = rd_h_leader_of(&C, 1, 1);
		target = l % 3 + 1;
		snprintf(gs, sizeof gs, "%u", 1);
		snprintf(ts, sizeof ts, "%u", target);
		if (l == 0 || rd_h_ctl(&C, l, out, sizeof out, "transfer-leader", gs, ts,
		                       (char *)NULL) != 0) {
			usleep(100 * 1000);
			continue;
		}
		for (int t = 0; t < 50 && !moved; t++) {
			moved = true;
			for (unsigned i = 1; i <= 3; i++)
				moved &= rd_h_leader_of(&C, i, 1) == target;
			if (!moved)
				usleep(100 * 1000);
		}
	}
	cr_assert(moved, "group 1's leadership never moved as asked (logs in %s)", C.dir);
	for (unsigned from = 1; from <= 3; from++)
		send_to_leader(from, 1, "again");
}

/* Kill handler `h` and wait until node 1 no longer finds a handler for
 * vShard `vs` (the node has seen the connection close). */
static void stop_handler(pid_t h, const char *vs)
{
	char out[4096];

	kill(-h, SIGKILL);
	waitpid(h, NULL, 0);
	for (int tries = 0; tries < WAIT_S * 10; tries++) {
		rd_h_ctl(&C, 1, out, sizeof out, "--json", "--timeout", "1000", "send",
		         "--vshard", vs, "x", (char *)NULL);
		if (strstr(out, "NO_HANDLER") != NULL)
			return;
		usleep(100 * 1000);
	}
	cr_assert_fail("handler still registered: %s", out);
}

/* `raftctl --json [--timeout MS] send --vshard vs x` through `node` until
 * the answer is other than NO_HANDLER (a handler just started has been
 * registered), for at most WAIT_S; the last answer is left in out. */
static void send_handled(unsigned node, const char *vs, const char *timeout_ms, char *out,
                         size_t size)
{
	for (int tries = 0; tries < WAIT_S * 10; tries++) {
		if (timeout_ms != NULL)
			rd_h_ctl(&C, node, out, size, "--json", "--timeout", timeout_ms,
			         "send", "--vshard", vs, "x", (char *)NULL);
		else
			rd_h_ctl(&C, node, out, size, "--json", "send", "--vshard", vs,
			         "x", (char *)NULL);
		if (strstr(out, "NO_HANDLER") == NULL)
			return;
		usleep(100 * 1000);
	}
}

Test(envelopes, no_handler_oversize_app_error_and_handler_exit_are_errors,
     .fini = teardown, .timeout = 180)
{
	char out[4096], vs[16], big[200], marker[300], script[600], path[300];
	pid_t sender, h;
	int status, fd;
	unsigned l;

	start(3, "[envelopes]\nmax_payload_bytes = 100\n");
	cr_assert(leaders_agree(), "leaders never agreed (logs in %s)", C.dir);
	snprintf(vs, sizeof vs, "%u", vshard_of(2));
	l = rd_h_leader_of(&C, 1, 2);

	/* No handler anywhere: NO_HANDLER, not delivered. */
	for (unsigned from = 1; from <= 3; from++) {
		cr_assert_eq(rd_h_ctl(&C, from, out, sizeof out, "--json", "send",
		                      "--vshard", vs, "x", (char *)NULL),
		             1);
		cr_assert(strstr(out, "\"error\":\"NO_HANDLER\"") != NULL, "%s", out);
	}

	/* Over [envelopes] max_payload_bytes: TOO_LARGE, refused. */
	memset(big, 'b', 150);
	big[150] = '\0';
	cr_assert_eq(rd_h_ctl(&C, 1, out, sizeof out, "--json", "send", "--vshard", vs,
	                      big, (char *)NULL),
	             1);
	cr_assert(strstr(out, "\"error\":\"TOO_LARGE\"") != NULL, "%s", out);

	/* A command that fails: APP_ERROR with its stderr. */
	h = start_handler(l, "cat >/dev/null; echo 'no such thing' >&2; exit 3");
	send_handled(1, vs, NULL, out, sizeof out);
	cr_assert(strstr(out, "\"error\":\"APP_ERROR\"") != NULL, "%s", out);
	cr_assert(strstr(out, "no such thing") != NULL, "%s", out);
	stop_handler(h, vs);

	/* A reply over the payload cap: delivered, answered APP_ERROR. */
	h = start_handler(l, "cat >/dev/null; head -c 150 /dev/zero | tr '\\0' r");
	send_handled(2, vs, NULL, out, sizeof out);
	cr_assert(strstr(out, "\"error\":\"APP_ERROR\"") != NULL, "%s", out);
	cr_assert(strstr(out, "max_payload_bytes") != NULL, "%s", out);
	stop_handler(h, vs);

	/* The handler process dies mid-delivery: the sender gets an error
	 * (outcome unknown) well before its deadline is the only way out. */
	snprintf(marker, sizeof marker, "%s/delivering", C.dir);
	snprintf(script, sizeof script, "touch %s; sleep 60", marker);
	h = start_handler(l, script);
	snprintf(path, sizeof path, "%s/send.out", C.dir);
	sender = fork();
	cr_assert(sender >= 0);
	if (sender == 0) {
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 1);
		/* Retry while the handler is not registered yet. */
		for (;;) {
			pid_t p = fork();
			if (p == 0) {
				lseek(fd, 0, SEEK_SET);
				if (ftruncate(fd, 0) != 0)
					_exit(126);
				execl(rd_h_build_path("raftctl"), "raftctl", "-s",
				      C.nodes[0].sock, "--json", "--timeout", "60000",
				      "send", "--vshard", vs, "x", (char *)NULL);
				_exit(127);
			}
			waitpid(p, &status, 0);
			char buf[512] = {0};
			int rfd = open(path, O_RDONLY);
			ssize_t n = rfd >= 0 ? read(rfd, buf, sizeof buf - 1) : -1;
			if (rfd >= 0)
				close(rfd);
			if (n <= 0 || strstr(buf, "NO_HANDLER") == NULL)
				_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 126);
			usleep(100 * 1000);
		}
	}
	for (int tries = 0; tries < WAIT_S * 10 && access(marker, F_OK) != 0; tries++)
		usleep(100 * 1000);
	cr_assert_eq(access(marker, F_OK), 0, "the handler never got the envelope");
	stop_handler(h, vs);
	cr_assert_eq(waitpid(sender, &status, 0), sender);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1);
	fd = open(path, O_RDONLY);
	memset(out, 0, sizeof out);
	cr_assert_gt(read(fd, out, sizeof out - 1), 0);
	close(fd);
	cr_assert(strstr(out, "\"error\":\"UNAVAILABLE\"") != NULL, "%s", out);

	/* A handler that never answers: TIMEOUT at the deadline. */
	h = start_handler(l, "sleep 60");
	send_handled(3, vs, "1500", out, sizeof out);
	cr_assert(strstr(out, "\"error\":\"TIMEOUT\"") != NULL, "%s", out);
}
