/* Commit streams (proto/raftd.proto "Commit streams"): subscribers on every
 * node across a leader kill, resume by index after a reconnect and after a
 * restart, COMPACTED below the journal's retention, a subscriber that never
 * reads (cut off, memory bounded), watch across groups, group 0's stream. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/http.h"
#include "ctl/client.h"
#include "harness.h"
#include "raftd.pb-c.h"
#include "util/clock.h"
#include "util/frame.h"

static struct rd_h_cluster C;

static void teardown(void)
{
	rd_h_cluster_free(&C);
}

static int dial(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One response, or NULL on close / after `ms` without one. */
static Raftd__ClientResponse *recv_resp(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	uint8_t *in;
	size_t len;

	if (poll(&p, 1, ms) <= 0)
		return NULL;
	if (rd_frame_read_fd(fd, 64u << 20, &in, &len) != 0)
		return NULL;
	Raftd__ClientResponse *r = raftd__client_response__unpack(NULL, len, in);
	free(in);
	return r;
}

/* A subscription on its own connection. */
struct sub {
	int fd;
	uint64_t used;
};

static void sub_open(struct sub *s, unsigned node, Raftd__SubscribeRequest *r)
{
	Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;

	s->fd = dial(C.nodes[node - 1].sock);
	s->used = 0;
	cr_assert_geq(s->fd, 0);
	req.request_id = 7;
	req.op_case = RAFTD__CLIENT_REQUEST__OP_SUBSCRIBE;
	req.subscribe = r;
	cr_assert_eq(rd_ctl_send_request(s->fd, &req), 0);
}

/* The next frame of the subscription (granting credit as it goes). */
static Raftd__ClientResponse *sub_next(struct sub *s, int ms)
{
	Raftd__ClientResponse *r = recv_resp(s->fd, ms);

	if (r != NULL && r->entry != NULL && ++s->used == 64) {
		rd_ctl_send_credit(s->fd, 8, 7, 64);
		s->used = 0;
	}
	return r;
}

static Raftd__SubscribeRequest group_sub(uint64_t group, uint64_t from)
{
	Raftd__SubscribeRequest r = RAFTD__SUBSCRIBE_REQUEST__INIT;
	r.scope = RAFTD__SUBSCRIBE_SCOPE__SCOPE_GROUP;
	r.group = group;
	r.from_index = from;
	r.credit = 128;
	return r;
}

/* Propose `n` raw entries "<tag>-<i>" to vShard 0 through `node`, 16 in
 * flight; returns how many were acknowledged OK. */
static unsigned propose_n(unsigned node, const char *tag, unsigned n, size_t pad)
{
	int fd = dial(C.nodes[node - 1].sock);
	unsigned sent = 0, done = 0, ok = 0;
	char *buf = malloc(pad + 64);

	cr_assert_geq(fd, 0);
	while (done < n) {
		while (sent < n && sent - done < 16) {
			Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
			Raftd__ProposeRequest p = RAFTD__PROPOSE_REQUEST__INIT;
			int l = snprintf(buf, 64, "%s-%u", tag, sent);
			memset(buf + l, 'x', pad);
			p.data.data = (uint8_t *)buf;
			p.data.len = (size_t)l + pad;
			req.request_id = ++sent;
			req.op_case = RAFTD__CLIENT_REQUEST__OP_PROPOSE;
			req.propose = &p;
			cr_assert_eq(rd_ctl_send_request(fd, &req), 0);
		}
		Raftd__ClientResponse *r = recv_resp(fd, 30000);
		cr_assert_not_null(r, "no answer to a proposal");
		ok += r->error == RAFTD__ERROR_CODE__OK;
		raftd__client_response__free_unpacked(r, NULL);
		done++;
	}
	close(fd);
	free(buf);
	return ok;
}

static void start_cluster(unsigned groups, const char *extra)
{
	struct rd_h_opts o = {.data_groups = groups, .extra_conf = extra};
	rd_h_cluster_init(&C, 3, &o);
	rd_h_start_all(&C);
	cr_assert(rd_h_wait_ready(&C, 60), "cluster not ready");
}

/* ---- the acceptance test ----------------------------------------------- */

/* A writer child: proposes `n` entries "n<node>-<i>" through `node`, one
 * connection, 8 in flight, reconnecting when the node goes away; appends
 * each acknowledged payload to `acked`. Outcome-unknown attempts are
 * retried under a new name ("...-r<k>"). */
static void writer(unsigned node, unsigned n, const char *acked)
{
	FILE *f = fopen(acked, "w");
	unsigned next = 0, retry = 0;

	setvbuf(f, NULL, _IOLBF, 0);
	while (next < n) {
		int fd = dial(C.nodes[node - 1].sock);
		if (fd < 0) {
			usleep(100000);
			continue;
		}
		char names[8][64];
		unsigned ids[8], k = 0;
		for (; k < 8 && next + k < n; k++) {
			Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
			Raftd__ProposeRequest p = RAFTD__PROPOSE_REQUEST__INIT;
			snprintf(names[k], 64, "n%u-%u-r%u", node, next + k, retry);
			ids[k] = next + k;
			p.data.data = (uint8_t *)names[k];
			p.data.len = strlen(names[k]);
			req.request_id = k + 1;
			req.op_case = RAFTD__CLIENT_REQUEST__OP_PROPOSE;
			req.propose = &p;
			if (rd_ctl_send_request(fd, &req) != 0)
				break;
		}
		unsigned got = 0, okc = 0;
		bool ok[8] = {0};
		while (got < k) {
			Raftd__ClientResponse *r = recv_resp(fd, 20000);
			if (r == NULL)
				break;
			if (r->request_id >= 1 && r->request_id <= 8 &&
			    r->error == RAFTD__ERROR_CODE__OK) {
				ok[r->request_id - 1] = true;
				okc++;
			}
			raftd__client_response__free_unpacked(r, NULL);
			got++;
		}
		close(fd);
		for (unsigned i = 0; i < k; i++)
			if (ok[i])
				fprintf(f, "%s\n", names[i]);
		(void)ids;
		if (okc == k) {
			next += k;
			retry = 0;
		} else {
			/* Retry the whole window under new names: an entry of
			 * this window whose answer was lost is "unknown". */
			for (unsigned i = 0; i < k; i++)
				if (!ok[i])
					break;
			unsigned first_bad = 0;
			while (first_bad < k && ok[first_bad])
				first_bad++;
			next += first_bad;
			retry++;
			usleep(50000);
		}
	}
	fclose(f);
	_exit(0);
}

static pid_t spawn_tail(unsigned node, uint64_t from, const char *out)
{
	char fromarg[32];
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	snprintf(fromarg, sizeof fromarg, "%" PRIu64, from);
	if (pid == 0) {
		int fd = open(out, O_WRONLY | O_CREAT | O_APPEND, 0600);
		int e = open("/dev/null", O_WRONLY);
		dup2(fd, 1);
		dup2(e, 2);
		execl(rd_h_build_path("raftctl"), "raftctl", "-s", C.nodes[node - 1].sock,
		      "tail", "--group", "1", "--from", fromarg, "--json", (char *)NULL);
		_exit(127);
	}
	return pid;
}

struct rec {
	uint64_t index;
	char payload[64];
};

/* Parse raftctl tail --json lines. */
static size_t read_tail(const char *path, struct rec **out)
{
	FILE *f = fopen(path, "r");
	char line[512];
	size_t n = 0, cap = 0;
	struct rec *v = NULL;

	if (f == NULL) {
		*out = NULL;
		return 0;
	}
	while (fgets(line, sizeof line, f) != NULL) {
		struct rec r = {0};
		const char *p = strstr(line, "\"index\":"),
		           *q = strstr(line, "\"payload\":\"");
		if (p == NULL || q == NULL || strchr(line, '\n') == NULL)
			continue;
		r.index = strtoull(p + 8, NULL, 10);
		q += 11;
		size_t l = strcspn(q, "\"");
		if (l >= sizeof r.payload)
			l = sizeof r.payload - 1;
		memcpy(r.payload, q, l);
		if (n == cap)
			v = realloc(v, (cap = cap ? cap * 2 : 1024) * sizeof *v);
		v[n++] = r;
	}
	fclose(f);
	*out = v;
	return n;
}

static size_t count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;
	int ch;
	if (f == NULL)
		return 0;
	while ((ch = fgetc(f)) != EOF)
		n += ch == '\n';
	fclose(f);
	return n;
}

static unsigned leader_of_group1(void)
{
	char out[8192];
	for (int tries = 0; tries < 100; tries++) {
		for (unsigned i = 1; i <= 3; i++) {
			if (C.nodes[i - 1].pid == 0)
				continue;
			if (rd_h_ctl(&C, i, out, sizeof out, "--json", "groups", NULL) !=
			    0)
				continue;
			const char *p = strstr(out, "\"group\":1,");
			const char *l = p != NULL ? strstr(p, "\"leader\":") : NULL;
			unsigned id = l != NULL ? (unsigned)strtoul(l + 9, NULL, 10) : 0;
			if (id != 0)
				return id;
		}
		usleep(100000);
	}
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

Test(streams,
     subscribers_on_every_node_see_every_acknowledged_entry_once_across_a_leader_kill,
     .fini = teardown, .timeout = 600)
{
	const unsigned per_writer = 3334, total = 3 * per_writer;
	char acked[3][300], tails[3][300];
	pid_t wpid[3], tpid[3];

	start_cluster(1, "");
	for (unsigned i = 0; i < 3; i++) {
		snprintf(acked[i], sizeof acked[i], "%s/acked%u", C.dir, i + 1);
		snprintf(tails[i], sizeof tails[i], "%s/tail%u", C.dir, i + 1);
		tpid[i] = spawn_tail(i + 1, 1, tails[i]);
	}
	for (unsigned i = 0; i < 3; i++) {
		wpid[i] = fork();
		cr_assert_geq(wpid[i], 0);
		if (wpid[i] == 0)
			writer(i + 1, per_writer, acked[i]);
	}
	/* Half-way: SIGKILL the leader of group 1, restart it. */
	uint64_t until = rd_clock_now_ms() + 300000;
	while (count_lines(acked[0]) + count_lines(acked[1]) + count_lines(acked[2]) <
	       total / 2) {
		cr_assert_lt(rd_clock_now_ms(), until, "writers stalled before half-way");
		usleep(50000);
	}
	unsigned victim = leader_of_group1();
	cr_assert_neq(victim, 0);
	rd_h_stop(&C, victim, SIGKILL);
	int st;
	waitpid(tpid[victim - 1], &st, 0); /* its tail ends with the node */
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 5,
	          "tail on the killed node: exit %d, want 5 (stream ended)",
	          WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	usleep(500000);
	rd_h_start(&C, victim);
	cr_assert(rd_h_wait_ready(&C, 60));
	/* Resume where that subscriber stopped. */
	struct rec *v;
	size_t nv = read_tail(tails[victim - 1], &v);
	tpid[victim - 1] =
	    spawn_tail(victim, nv > 0 ? v[nv - 1].index + 1 : 1, tails[victim - 1]);
	free(v);
	for (unsigned i = 0; i < 3; i++) {
		waitpid(wpid[i], &st, 0);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}

	/* Every acknowledged payload, sorted. */
	char **ack = NULL;
	size_t nack = 0;
	for (unsigned i = 0; i < 3; i++) {
		FILE *f = fopen(acked[i], "r");
		char line[128];
		while (f != NULL && fgets(line, sizeof line, f) != NULL) {
			line[strcspn(line, "\n")] = '\0';
			ack = realloc(ack, (nack + 1) * sizeof *ack);
			ack[nack++] = strdup(line);
		}
		if (f != NULL)
			fclose(f);
	}
	cr_assert_geq(nack, total, "writers acknowledged %zu of %u", nack, total);
	qsort(ack, nack, sizeof *ack, cmp_str);

	/* Each subscriber: wait until it has everything acknowledged. */
	struct rec *ref = NULL;
	size_t nref = 0;
	for (unsigned i = 0; i < 3; i++) {
		size_t nr = 0;
		struct rec *r = NULL;
		char **seen = NULL;
		size_t missing = 0;
		until = rd_clock_now_ms() + 120000;
		for (;;) {
			free(r);
			free(seen);
			nr = read_tail(tails[i], &r);
			seen = malloc((nr + 1) * sizeof *seen);
			for (size_t k = 0; k < nr; k++)
				seen[k] = r[k].payload;
			qsort(seen, nr, sizeof *seen, cmp_str);
			missing = 0;
			for (size_t k = 0; k < nack; k++)
				if (bsearch(&ack[k], seen, nr, sizeof *seen, cmp_str) ==
				        NULL &&
				    missing++ == 0 && rd_clock_now_ms() > until)
					cr_assert_fail("node %u: acknowledged %s missing",
					               i + 1, ack[k]);
			if (missing == 0)
				break;
			usleep(200000);
		}
		/* Index order, no duplicate index, no duplicate payload. */
		for (size_t k = 1; k < nr; k++) {
			cr_assert_gt(r[k].index, r[k - 1].index,
			             "node %u: index %" PRIu64 " after %" PRIu64, i + 1,
			             r[k].index, r[k - 1].index);
			cr_assert_str_neq(seen[k], seen[k - 1], "node %u: %s twice",
			                  i + 1, seen[k]);
		}
		free(seen);
		/* No gap: every node delivers the same (index, payload) list. */
		if (i == 0) {
			ref = r;
			nref = nr;
			continue;
		}
		/* (Entries of unknown outcome may still be arriving: compare
		 * what both have; each holds every acknowledged one.) */
		for (size_t k = 0; k < nr && k < nref; k++)
			cr_assert(r[k].index == ref[k].index &&
			              strcmp(r[k].payload, ref[k].payload) == 0,
			          "node %u differs from node 1 at entry %zu", i + 1, k);
		free(r);
	}
	free(ref);
	for (unsigned i = 0; i < 3; i++) {
		kill(tpid[i], SIGINT);
		waitpid(tpid[i], &st, 0);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		          "tail on SIGINT: exit 0");
	}
	for (size_t k = 0; k < nack; k++)
		free(ack[k]);
	free(ack);
}

/* ---- resume, retention, slow subscribers ------------------------------- */

/* Read entries of a subscription until `n` arrived; their indexes in `idx`. */
static size_t take(struct sub *s, size_t n, uint64_t *idx, int ms)
{
	size_t got = 0;
	while (got < n) {
		Raftd__ClientResponse *r = sub_next(s, ms);
		if (r == NULL)
			break;
		cr_assert_eq(r->error, RAFTD__ERROR_CODE__OK, "stream ended: %s",
		             r->error_message);
		idx[got++] = r->entry->index;
		raftd__client_response__free_unpacked(r, NULL);
	}
	return got;
}

Test(streams, resume_after_reconnect_and_restart_without_gap_or_duplicate,
     .fini = teardown, .timeout = 300)
{
	uint64_t a[100], b[100], c[100];
	struct sub s;

	start_cluster(1, "");
	cr_assert_eq(propose_n(1, "a", 100, 0), 100);
	Raftd__SubscribeRequest r = group_sub(1, 1);
	sub_open(&s, 2, &r);
	cr_assert_eq(take(&s, 60, a, 20000), 60);
	close(s.fd);
	/* Reconnect: resume from the last index seen + 1. */
	r = group_sub(1, a[59] + 1);
	sub_open(&s, 2, &r);
	cr_assert_eq(take(&s, 40, b, 20000), 40);
	cr_assert_eq(b[0], a[59] + 1 > b[0] ? 0 : b[0]);
	cr_assert_gt(b[0], a[59]);
	for (size_t i = 1; i < 40; i++)
		cr_assert_gt(b[i], b[i - 1]);
	close(s.fd);
	/* Restart node 2 gracefully; a subscription ends with SHUTTING_DOWN. */
	r = group_sub(1, 0);
	sub_open(&s, 2, &r);
	usleep(200000);
	rd_h_stop(&C, 2, SIGTERM);
	Raftd__ClientResponse *end = sub_next(&s, 20000);
	cr_assert_not_null(end, "no end-of-stream frame on shutdown");
	cr_assert_eq(end->error, RAFTD__ERROR_CODE__SHUTTING_DOWN);
	raftd__client_response__free_unpacked(end, NULL);
	close(s.fd);
	cr_assert_eq(propose_n(1, "c", 50, 0), 50);
	rd_h_start(&C, 2);
	cr_assert(rd_h_wait_ready(&C, 60));
	r = group_sub(1, b[39] + 1);
	sub_open(&s, 2, &r);
	cr_assert_eq(take(&s, 50, c, 30000), 50,
	             "entries proposed while node 2 was down");
	cr_assert_gt(c[0], b[39]);
	close(s.fd);
}

Test(streams, compacted_below_the_retention_with_the_oldest_index, .fini = teardown,
     .timeout = 300)
{
	struct sub s;
	uint64_t idx[60];

	start_cluster(1, "[streams]\nretention_entries = 40\n");
	cr_assert_eq(propose_n(1, "k", 200, 0), 200);
	Raftd__SubscribeRequest r = group_sub(1, 1);
	sub_open(&s, 1, &r);
	Raftd__ClientResponse *end = sub_next(&s, 20000);
	cr_assert_not_null(end);
	cr_assert_eq(end->error, RAFTD__ERROR_CODE__COMPACTED, "got %d", end->error);
	cr_assert_not_null(end->stream_end);
	uint64_t oldest = end->stream_end->oldest_index;
	cr_assert_gt(oldest, 100, "oldest %" PRIu64 " kept too much", oldest);
	raftd__client_response__free_unpacked(end, NULL);
	close(s.fd);
	/* From the oldest index named, the stream works. */
	r = group_sub(1, oldest);
	sub_open(&s, 1, &r);
	cr_assert_geq(take(&s, 40, idx, 20000), 40);
	cr_assert_eq(idx[0], oldest);
	close(s.fd);
}

/* GET /metrics from the node's admin port, look up one sample. */
static double metric(unsigned node, const char *name)
{
	static char out[1 << 20];
	char key[128];
	const char *p;

	cr_assert_geq(
	    rd_t_http_get(C.nodes[node - 1].admin_port, "/metrics", out, sizeof out), 0);
	snprintf(key, sizeof key, "\n%s ", name);
	p = strstr(out, key);
	return p != NULL ? strtod(p + strlen(key), NULL) : -1;
}

Test(streams, a_subscriber_that_never_reads_is_cut_off_and_memory_stays_bounded,
     .fini = teardown, .timeout = 300)
{
	struct sub s;

	start_cluster(1, "[control]\noutput_high_water_bytes = 65536\n"
	                 "[streams]\nstall_timeout_ms = 500\nmax_credit = 100000\n");
	Raftd__SubscribeRequest r = group_sub(1, 0);
	r.credit = 100000;
	sub_open(&s, 1, &r);
	/* Shrink the client's receive buffer so the node's side fills. */
	int small = 4096;
	setsockopt(s.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
	usleep(300000);
	/* 2000 entries of 8 KiB: 16 MiB, far more than the socket buffers. */
	cr_assert_eq(propose_n(1, "big", 2000, 8192), 2000);
	uint64_t until = rd_clock_now_ms() + 30000;
	while (metric(1, "raft_stream_subscribers_cut_off_total") < 1)
		cr_assert_lt(rd_clock_now_ms(), until, "the subscriber was not cut off");
	/* What the client can still read ends with the connection closed, and
	 * is all the node ever queued for it: far less than the 16 MiB its
	 * credit allowed (half the high-water mark, one frame, the kernel's
	 * socket buffers). */
	size_t bytes = 0;
	char buf[65536];
	ssize_t n;
	while ((n = read(s.fd, buf, sizeof buf)) > 0)
		bytes += (size_t)n;
	cr_assert_eq(n, 0, "connection not closed");
	cr_assert_lt(bytes, 2u << 20, "%zu bytes were queued for the subscriber", bytes);
	close(s.fd);
	cr_assert_eq(metric(1, "raft_stream_subscriptions{kind=\"group\"}"), 0);
}

/* ---- watch, metadata ----------------------------------------------------- */

Test(streams, watch_reports_put_delete_and_cas_on_a_prefix_spanning_groups,
     .fini = teardown, .timeout = 300)
{
	char out[65536], key[32], val[32];

	start_cluster(4, "");
	for (int i = 0; i < 12; i++) {
		snprintf(key, sizeof key, "w/%02d", i);
		snprintf(val, sizeof val, "v%d", i);
		cr_assert_eq(rd_h_ctl_retry(&C, 1 + i % 3, 30, out, sizeof out, "put",
		                            key, val, NULL),
		             0);
	}
	cr_assert_eq(rd_h_ctl(&C, 1, out, sizeof out, "put", "x/1", "no", NULL), 0);
	cr_assert_eq(rd_h_ctl(&C, 2, out, sizeof out, "delete", "w/03", NULL), 0);
	cr_assert_eq(rd_h_ctl(&C, 3, out, sizeof out, "cas", "w/04", "v4", "cas4", NULL),
	             0);
	cr_assert_eq(rd_h_ctl(&C, 1, out, sizeof out, "cas", "w/05", "wrong", "no", NULL),
	             1);
	/* 12 puts + 1 delete + 1 cas on w/; x/1 and the failed cas are not events. */
	cr_assert_eq(rd_h_ctl(&C, 2, out, sizeof out, "watch", "w/", "--json", "--count",
	                      "14", NULL),
	             0, "%s", out);
	cr_assert_null(strstr(out, "x/1"));
	cr_assert_null(strstr(out, "\"no\""));
	cr_assert_not_null(strstr(out, "\"op\":\"delete\",\"key\":\"w/03\""), "%s", out);
	cr_assert_not_null(
	    strstr(out, "\"op\":\"cas\",\"key\":\"w/04\",\"value\":\"cas4\""));
	/* Per key, put before delete / cas; several groups. */
	cr_assert_lt(strstr(out, "\"key\":\"w/03\",\"value\""),
	             strstr(out, "\"op\":\"delete\",\"key\":\"w/03\""));
	cr_assert_lt(strstr(out, "\"key\":\"w/04\",\"value\":\"v4\""),
	             strstr(out, "\"value\":\"cas4\""));
	bool group_seen[5] = {0};
	int groups = 0;
	for (const char *p = out; (p = strstr(p, "\"group\":")) != NULL; p++) {
		unsigned g = (unsigned)strtoul(p + 8, NULL, 10);
		if (g < 5 && !group_seen[g]) {
			group_seen[g] = true;
			groups++;
		}
	}
	cr_assert_geq(groups, 2, "the prefix spans %d groups: %s", groups, out);
	/* --from-now: only what happens after. */
	struct sub s;
	Raftd__SubscribeRequest r = RAFTD__SUBSCRIBE_REQUEST__INIT;
	r.watch = true;
	r.prefix.data = (uint8_t *)"w/";
	r.prefix.len = 2;
	r.credit = 10;
	sub_open(&s, 3, &r);
	usleep(300000);
	cr_assert_eq(rd_h_ctl(&C, 1, out, sizeof out, "put", "w/new", "late", NULL), 0);
	Raftd__ClientResponse *e = sub_next(&s, 20000);
	cr_assert_not_null(e);
	cr_assert_not_null(e->entry);
	cr_assert_eq(e->entry->kv->key.len, 5);
	cr_assert_eq(memcmp(e->entry->kv->key.data, "w/new", 5), 0);
	raftd__client_response__free_unpacked(e, NULL);
	close(s.fd);
}

Test(streams, group_0_metadata_stream, .fini = teardown, .timeout = 300)
{
	char out[4096];
	struct sub s;
	int found = 0;

	start_cluster(1, "");
	cr_assert_eq(
	    rd_h_ctl_retry(&C, 1, 30, out, sizeof out, "meta", "put", "m1", "one", NULL),
	    0);
	cr_assert_eq(rd_h_ctl(&C, 2, out, sizeof out, "meta", "put", "m2", "two", NULL),
	             0);
	Raftd__SubscribeRequest r = RAFTD__SUBSCRIBE_REQUEST__INIT;
	r.scope = RAFTD__SUBSCRIBE_SCOPE__SCOPE_META;
	r.from_index = 1;
	r.credit = 1000;
	sub_open(&s, 3, &r);
	uint64_t last = 0;
	while (found < 2) {
		Raftd__ClientResponse *e = sub_next(&s, 20000);
		cr_assert_not_null(e, "metadata entries missing");
		cr_assert_not_null(e->entry);
		cr_assert_eq(e->entry->group, 0);
		cr_assert_eq(e->entry->kind, RAFTD__ENTRY_KIND__KIND_META);
		cr_assert_gt(e->entry->index, last);
		last = e->entry->index;
		if (memmem(e->entry->payload.data, e->entry->payload.len, "m1", 2) !=
		        NULL ||
		    memmem(e->entry->payload.data, e->entry->payload.len, "m2", 2) !=
		        NULL)
			found++;
		raftd__client_response__free_unpacked(e, NULL);
	}
	close(s.fd);
	/* raftctl tail --meta prints the same entries. */
	cr_assert_eq(rd_h_ctl(&C, 1, out, sizeof out, "tail", "--meta", "--from", "1",
	                      "--count", "2", NULL),
	             0);
	cr_assert_not_null(strstr(out, "meta"), "%s", out);
}
