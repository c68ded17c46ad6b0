/*
 * Failover benchmark for `make bench-failover` (tests/bench/failover.sh
 * writes the configs): runs 3 raftd nodes itself, drives C closed-loop
 * writers with client sessions (proto/raftd.proto, "Client sessions")
 * spread over the three sockets, and ROUNDS times SIGKILLs the leader of
 * group 0, then the leader of the busiest data group (highest commit),
 * restarting the killed node each time. A writer re-sends a failed write
 * with the same (client_id, sequence), on another node when its own died,
 * so an error is only a retry hidden inside the writer. Per kill it
 * prints the time from the kill to the first acknowledged write to the
 * killed leader's group that was first sent after the kill (through a
 * surviving node), and the longest any single write took (first send to
 * acknowledgement, retries included) from the kill to the next kill; then
 * the median and max over the kills.
 *
 * usage: failover_bench RAFTD DIR ROUNDS CLIENTS
 *   DIR holds node1.conf .. node3.conf; sockets DIR/nodeI.sock, logs
 *   DIR/nodeI.log.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "raftd.pb-c.h"
#include "transport/wire.h"
#include "util/clock.h"
#include "util/frame.h"

#define NODES      3
#define MAX_KILLS  64
#define META_EVERY 5 /* every 5th writer writes group 0 (meta put) */
#define RETRY_MS   20

struct client {
	unsigned id;
	int node; /* 0-based node it talks to */
	struct bufferevent *bev;
	uint64_t client_id, seq;
	bool meta;
	uint64_t first_ns;   /* first send of the current write */
	bool in_flight;      /* a request is out on bev */
	struct event *retry; /* re-send after an error */
};

struct kill_rec {
	uint64_t group, victim;
	uint64_t kill_ns;
	uint64_t recovered_ns; /* 0 = not yet */
	unsigned via;
	uint64_t longest_ns;
};

static const char *raftd_path, *dir;
static pid_t pids[NODES];
static struct event_base *base;
static struct client *cs;
static unsigned n_clients;
static struct kill_rec kills[MAX_KILLS];
static unsigned n_kills, kills_wanted;
static int dead = -1; /* node index killed and not yet restarted */
static uint64_t acked, errors_by_code[16];

static void sock_path(int node, char *out, size_t size)
{
	snprintf(out, size, "%s/node%d.sock", dir, node + 1);
}

static void spawn(int node)
{
	char conf[512], log[512];
	snprintf(conf, sizeof conf, "%s/node%d.conf", dir, node + 1);
	snprintf(log, sizeof log, "%s/node%d.log", dir, node + 1);
	pid_t p = fork();
	if (p == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0)
			dup2(fd, 2);
		execl(raftd_path, raftd_path, "--config", conf, (char *)NULL);
		_exit(127);
	}
	pids[node] = p;
}

/* One blocking request to node `node`; NULL when it cannot be reached. */
static Raftd__ClientResponse *sync_call(int node, Raftd__ClientRequest *req)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	uint8_t buf[256], *in;
	size_t inlen;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	Raftd__ClientResponse *r = NULL;

	sock_path(node, sun.sun_path, sizeof sun.sun_path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0)
		goto out;
	size_t len = raftd__client_request__pack(req, buf);
	if (rd_frame_write_fd(fd, buf, len) != 0 ||
	    rd_frame_read_fd(fd, 16u << 20, &in, &inlen) != 0)
		goto out;
	r = raftd__client_response__unpack(NULL, inlen, in);
	free(in);
out:
	if (fd >= 0)
		close(fd);
	return r;
}

static bool ready(int node)
{
	Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
	Raftd__ReadyRequest rr = RAFTD__READY_REQUEST__INIT;
	req.op_case = RAFTD__CLIENT_REQUEST__OP_READY;
	req.ready = &rr;
	Raftd__ClientResponse *r = sync_call(node, &req);
	bool ok = r != NULL && r->error == RAFTD__ERROR_CODE__OK;
	if (r != NULL)
		raftd__client_response__free_unpacked(r, NULL);
	return ok;
}

/* Ask a live node for the leader of group 0 (busiest = false) or of the
 * data group with the highest commit index; *group gets the group. */
static uint64_t find_leader(bool busiest, uint64_t *group)
{
	Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
	Raftd__GroupsRequest gr = RAFTD__GROUPS_REQUEST__INIT;
	req.op_case = RAFTD__CLIENT_REQUEST__OP_GROUPS;
	req.groups = &gr;
	for (int node = 0; node < NODES; node++) {
		if (node == dead)
			continue;
		Raftd__ClientResponse *r = sync_call(node, &req);
		if (r == NULL)
			continue;
		uint64_t leader = 0, best = 0;
		if (r->result_case == RAFTD__CLIENT_RESPONSE__RESULT_GROUPS) {
			for (size_t i = 0; i < r->groups->n_groups; i++) {
				const Raftd__GroupRow *g = r->groups->groups[i];
				if (!busiest && g->group == 0) {
					leader = g->leader;
					*group = 0;
				} else if (busiest && g->group != 0 &&
				           g->commit >= best) {
					best = g->commit;
					leader = g->leader;
					*group = g->group;
				}
			}
		}
		raftd__client_response__free_unpacked(r, NULL);
		if (leader != 0)
			return leader;
	}
	return 0;
}

/* ---- writers ---------------------------------------------------------------- */

static void connect_client(struct client *c);

static void send_write(struct client *c)
{
	Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
	Raftd__PutRequest put = RAFTD__PUT_REQUEST__INIT;
	Raftd__MetaPutRequest mp = RAFTD__META_PUT_REQUEST__INIT;
	uint8_t key[64], val[64], buf[512], hdr[RD_FRAME_HEADER];
	int kl = snprintf((char *)key, sizeof key, "fo-%u-%llu", c->id,
	                  (unsigned long long)c->seq);
	int vl = snprintf((char *)val, sizeof val, "%llu", (unsigned long long)c->seq);

	if (c->bev == NULL)
		return;
	req.request_id = c->seq;
	req.deadline_ms = 5000;
	req.client_id = c->client_id;
	req.sequence = c->seq;
	if (c->meta) {
		mp.key = (ProtobufCBinaryData){.len = (size_t)kl, .data = key};
		mp.value = (ProtobufCBinaryData){.len = (size_t)vl, .data = val};
		req.op_case = RAFTD__CLIENT_REQUEST__OP_META_PUT;
		req.meta_put = &mp;
	} else {
		put.key = (ProtobufCBinaryData){.len = (size_t)kl, .data = key};
		put.value = (ProtobufCBinaryData){.len = (size_t)vl, .data = val};
		req.op_case = RAFTD__CLIENT_REQUEST__OP_PUT;
		req.put = &put;
	}
	size_t len = raftd__client_request__pack(&req, buf);
	rd_frame_header(hdr, (uint32_t)len);
	if (c->first_ns == 0)
		c->first_ns = rd_clock_now_ns();
	c->in_flight = true;
	bufferevent_write(c->bev, hdr, sizeof hdr);
	bufferevent_write(c->bev, buf, len);
}

static void acknowledged(struct client *c, uint64_t group, uint64_t now)
{
	uint64_t took = now - c->first_ns;
	acked++;
	if (n_kills > 0) {
		struct kill_rec *k = &kills[n_kills - 1];
		if (took > k->longest_ns && now >= k->kill_ns) {
			k->longest_ns = took;
			if (getenv("FAILOVER_DEBUG") != NULL)
				fprintf(
				    stderr,
				    "slow: client %u node %d group %llu sent %+.0f ms "
				    "after the kill, took %.0f ms\n",
				    c->id, c->node + 1, (unsigned long long)group,
				    ((double)c->first_ns - (double)k->kill_ns) / 1e6,
				    (double)took / 1e6);
		}
		if (k->recovered_ns == 0 && group == k->group &&
		    c->first_ns >= k->kill_ns && c->node != dead) {
			k->recovered_ns = now;
			k->via = (unsigned)c->node + 1;
		}
	}
	c->seq++;
	c->first_ns = 0;
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint32_t len;

	while (rd_frame_peek(in, 1u << 20, &len) == 0) {
		evbuffer_drain(in, RD_FRAME_HEADER);
		Raftd__ClientResponse *r =
		    raftd__client_response__unpack(NULL, len, evbuffer_pullup(in, len));
		evbuffer_drain(in, len);
		uint64_t now = rd_clock_now_ns();
		c->in_flight = false;
		if (r != NULL && r->error == RAFTD__ERROR_CODE__OK) {
			uint64_t g =
			    c->meta ? 0
			    : r->result_case == RAFTD__CLIENT_RESPONSE__RESULT_INDEX
			        ? r->index->group
			        : ~0ull;
			acknowledged(c, g, now);
			send_write(c);
		} else {
			errors_by_code[r != NULL && r->error < 16 ? r->error : 8]++;
			struct timeval tv = {0, RETRY_MS * 1000};
			event_add(c->retry, &tv); /* same (client_id, sequence) */
		}
		if (r != NULL)
			raftd__client_response__free_unpacked(r, NULL);
	}
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct client *c = arg;
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		bufferevent_free(c->bev);
		c->bev = NULL;
		c->in_flight = false;
		c->node = (c->node + 1) % NODES;
		connect_client(c);
	}
}

/* Connect to c->node, or the next live one; then (re-)send the write. */
static void connect_client(struct client *c)
{
	for (int tries = 0; tries < NODES; tries++, c->node = (c->node + 1) % NODES) {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};
		if (c->node == dead)
			continue;
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		sock_path(c->node, sun.sun_path, sizeof sun.sun_path);
		if (connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
			close(fd);
			continue;
		}
		evutil_make_socket_nonblocking(fd);
		c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
		bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
		bufferevent_enable(c->bev, EV_READ | EV_WRITE);
		send_write(c);
		return;
	}
	struct timeval tv = {0, 100 * 1000};
	event_add(c->retry, &tv); /* nobody answers: try again shortly */
}

static void on_retry_connect(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;
	(void)fd, (void)what;
	if (c->bev == NULL)
		connect_client(c);
	else
		send_write(c);
}

/* ---- the kill schedule -------------------------------------------------------- */

enum phase { WARMUP, MEASURE, RESTARTING, SETTLE, DONE };
static enum phase phase = WARMUP;
static uint64_t phase_ns;

static void do_kill(void)
{
	struct kill_rec *k = &kills[n_kills];
	uint64_t group = 0;
	uint64_t leader = find_leader(n_kills % 2 == 1, &group);

	if (leader == 0 || leader > NODES) {
		phase_ns = rd_clock_now_ns(); /* no leader yet: try again */
		return;
	}
	k->group = group;
	k->victim = leader;
	dead = (int)leader - 1;
	kill(pids[dead], SIGKILL);
	waitpid(pids[dead], NULL, 0);
	k->kill_ns = rd_clock_now_ns();
	n_kills++;
	phase = MEASURE;
	phase_ns = k->kill_ns;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	uint64_t now = rd_clock_now_ns();
	(void)fd, (void)what, (void)arg;

	switch (phase) {
	case WARMUP:
	case SETTLE:
		if (now - phase_ns < 2000000000ull)
			return;
		if (n_kills == kills_wanted) {
			phase = DONE;
			event_base_loopbreak(base);
			return;
		}
		do_kill();
		return;
	case MEASURE:
		/* Long enough to see the recovery and the slowest write. */
		if (now - phase_ns < 3000000000ull ||
		    (kills[n_kills - 1].recovered_ns == 0 &&
		     now - phase_ns < 20000000000ull))
			return;
		spawn(dead);
		phase = RESTARTING;
		phase_ns = now;
		return;
	case RESTARTING:
		if (!ready(dead) && now - phase_ns < 30000000000ull)
			return;
		dead = -1;
		phase = SETTLE;
		phase_ns = now;
		return;
	case DONE:
		return;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void summary(const char *what, uint64_t *v, unsigned n)
{
	if (n == 0)
		return;
	qsort(v, n, sizeof *v, cmp_u64);
	double med =
	    n % 2 ? (double)v[n / 2] : ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2;
	printf("RESULT failover %s median_ms=%.0f max_ms=%.0f kills=%u\n", what,
	       med / 1e6, (double)v[n - 1] / 1e6, n);
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: failover_bench RAFTD DIR ROUNDS CLIENTS\n");
		return 2;
	}
	raftd_path = argv[1];
	dir = argv[2];
	kills_wanted = 2 * (unsigned)atoi(argv[3]);
	n_clients = (unsigned)atoi(argv[4]);
	if (kills_wanted == 0 || kills_wanted > MAX_KILLS || n_clients == 0) {
		fprintf(stderr, "failover_bench: 1..%d rounds and at least one client\n",
		        MAX_KILLS / 2);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < NODES; i++)
		spawn(i);
	for (int t = 0; t < 600; t++) {
		bool all = true;
		for (int i = 0; i < NODES; i++)
			all &= ready(i);
		if (all)
			break;
		usleep(100 * 1000);
	}
	base = event_base_new();
	cs = calloc(n_clients, sizeof *cs);
	for (unsigned i = 0; i < n_clients; i++) {
		struct client *c = &cs[i];
		c->id = i;
		c->node = (int)(i % NODES);
		c->meta = i % META_EVERY == 0;
		c->seq = 1;
		while (c->client_id == 0)
			if (getrandom(&c->client_id, sizeof c->client_id, 0) < 0)
				c->client_id = rd_clock_now_ns() + i;
		c->retry = evtimer_new(base, on_retry_connect, c);
		connect_client(c);
	}
	struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
	struct timeval tv = {0, 50 * 1000};
	event_add(tick, &tv);
	phase_ns = rd_clock_now_ns();
	event_base_dispatch(base);

	printf("setup: 3 raftd nodes on loopback (mutual TLS, fsync, 16 data groups, "
	       "default [raft] timing); %u closed-loop writers with client sessions over "
	       "3 sockets (every %dth a meta put to group 0, the others puts); %u kills: "
	       "SIGKILL of group 0's leader, then of the busiest data group's, restart, "
	       "2 s between kills\n",
	       n_clients, META_EVERY, n_kills);
	uint64_t rec[MAX_KILLS], lng[MAX_KILLS];
	unsigned n_rec = 0;
	for (unsigned i = 0; i < n_kills; i++) {
		const struct kill_rec *k = &kills[i];
		double r =
		    k->recovered_ns ? (double)(k->recovered_ns - k->kill_ns) / 1e6 : -1;
		printf("kill %u: group %llu leader node %llu: first write acknowledged "
		       "after %.0f ms (via node %u), longest write %.0f ms\n",
		       i + 1, (unsigned long long)k->group, (unsigned long long)k->victim,
		       r, k->via, (double)k->longest_ns / 1e6);
		if (k->recovered_ns)
			rec[n_rec++] = k->recovered_ns - k->kill_ns;
		lng[i] = k->longest_ns;
	}
	summary("kill_to_first_ack", rec, n_rec);
	summary("longest_write", lng, n_kills);
	printf("acknowledged writes: %llu; retried errors:", (unsigned long long)acked);
	for (int k = 0; k < 16; k++)
		if (errors_by_code[k] != 0)
			printf(" %s=%llu", rd_wire_code_name(k),
			       (unsigned long long)errors_by_code[k]);
	printf("\n");
	for (int i = 0; i < NODES; i++)
		if (pids[i] > 0) {
			kill(pids[i], SIGTERM);
			waitpid(pids[i], NULL, 0);
		}
	return n_rec == n_kills ? 0 : 1;
}
