/*
 * Hostile peers and clients against a running 3-node cluster, from outside
 * the daemons: an "evil peer" (libraftd's transport in this process) with a
 * certificate the cluster CA signed, raw Unix-socket clients and raw HTTP.
 * Each test asserts the refusal and that the node keeps serving: a put and
 * a get still work and, where a peer tried to move it, the term did not.
 *
 * The memory tests state their bound in RSS_BOUND_KB: the daemon's
 * resident set may grow by less than that while the attack is held open.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/http.h"
#include "common/quic.h"
#include "harness.h"
#include "raftd.pb-c.h"
#include "transport/transport.h"
#include "util/err.h"
#include "util/frame.h"

#define WAIT_S 60
#if defined(__SANITIZE_ADDRESS__)
/* ASan's redzones and quarantine of freed memory inflate the daemon; its
 * quarantine is shrunk for the daemons (start()) and the bound doubled. */
#define RSS_BOUND_KB (512 * 1024)
#else
#define RSS_BOUND_KB (256 * 1024) /* 256 MiB */
#endif

static struct rd_h_cluster C;

static void teardown(void)
{
	rd_h_cluster_free(&C);
}

static void start(const char *extra)
{
	struct rd_h_opts o = {.data_groups = 2, .extra_conf = extra};

	signal(SIGPIPE, SIG_IGN); /* writes to sockets the node closed */
#if defined(__SANITIZE_ADDRESS__)
	setenv("ASAN_OPTIONS", "quarantine_size_mb=16", 0);
#endif
	rd_h_cluster_init(&C, 3, &o);
	rd_h_start_all(&C);
	cr_assert(rd_h_wait_ready(&C, WAIT_S), "cluster not ready (logs in %s)", C.dir);
}

static void put_get(unsigned node, const char *key, const char *value)
{
	char out[4096], want[4096];

	cr_assert_eq(rd_h_ctl_retry(&C, node, WAIT_S, out, sizeof out, "put", key, value,
	                            (char *)NULL),
	             0, "put on node %u: %s", node, out);
	cr_assert_eq(
	    rd_h_ctl_retry(&C, node, WAIT_S, out, sizeof out, "get", key, (char *)NULL),
	    0, "get on node %u: %s", node, out);
	snprintf(want, sizeof want, "%s\n", value);
	cr_assert_str_eq(out, want);
}

/* Term of group 0 as node `node` sees it. */
static unsigned long long term0(unsigned node)
{
	char out[16384];
	const char *p;
	unsigned long long t = 0;

	cr_assert_eq(
	    rd_h_ctl(&C, node, out, sizeof out, "--json", "groups", (char *)NULL), 0,
	    "%s", out);
	p = strstr(out, "\"group\":0,");
	cr_assert_not_null(p, "%s", out);
	p = strstr(p, "\"term\":");
	cr_assert_not_null(p, "%s", out);
	sscanf(p + 7, "%llu", &t);
	return t;
}

static long rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* ---- raw HTTP ------------------------------------------------------------- */

/* A connection to the admin port; the test fails when it is refused. */
static int tcp_connect(int port)
{
	int fd = rd_t_tcp_connect(port);

	cr_assert_geq(fd, 0, "%s", strerror(errno));
	return fd;
}

/* ---- the evil peer ----------------------------------------------------------- */

struct evil {
	struct event_base *base;
	struct rd_transport *t;
	unsigned ups, downs;
	unsigned replies, errors;
};

static void evil_on_peer(void *arg, uint64_t peer, bool up)
{
	struct evil *e = arg;

	(void)peer;
	if (up)
		e->ups++;
	else
		e->downs++;
}

static void evil_reply(void *arg, int err, const Raftd__PeerResponse *resp,
                       const char *errmsg)
{
	struct evil *e = arg;

	(void)resp, (void)errmsg;
	if (err == 0)
		e->replies++;
	else
		e->errors++;
}

/* A transport for node `id` with DIR/certs/node<id>.pem, dialing node 1. */
static void evil_start(struct evil *e, uint64_t id)
{
	struct rd_transport_config tc;
	struct rd_transport_callbacks cbs = {.on_peer = evil_on_peer, .arg = e};
	struct sockaddr_in sa = {.sin_family = AF_INET,
	                         .sin_port = htons((uint16_t)C.nodes[0].quic_port),
	                         .sin_addr.s_addr = htonl(0x7f000001)};
	char msg[RD_ERRMSG_SIZE];

	memset(e, 0, sizeof *e);
	e->base = event_base_new();
	cr_assert_not_null(e->base);
	rd_transport_config_init(&tc, NULL);
	tc.node_id = id;
	tc.tls_mode = RD_TLS_MUTUAL;
	snprintf(tc.tls_ca, sizeof tc.tls_ca, "%s/certs/ca.pem", C.dir);
	snprintf(tc.tls_cert, sizeof tc.tls_cert, "%s/certs/node%llu.pem", C.dir,
	         (unsigned long long)id);
	snprintf(tc.tls_key, sizeof tc.tls_key, "%s/certs/node%llu.key", C.dir,
	         (unsigned long long)id);
	cr_assert_eq(rd_transport_new(&e->t, e->base, &tc, &cbs, msg), 0, "%s", msg);
	cr_assert_eq(
	    rd_transport_peer_add(e->t, 1, (struct sockaddr *)&sa, sizeof sa, msg), 0,
	    "%s", msg);
}

static void evil_run(struct evil *e, unsigned ms)
{
	struct timeval tv = {ms / 1000, (suseconds_t)(ms % 1000) * 1000};

	event_base_loopexit(e->base, &tv);
	event_base_dispatch(e->base);
}

static void evil_free(struct evil *e)
{
	rd_transport_free(e->t);
	event_base_free(e->base);
}

/* `b` as one PeerFrame on the Raft stream to `peer` (the transport's own
 * encoder is for core messages; an evil peer writes protobuf directly). */
static int send_raw_batch(struct rd_transport *t, uint64_t peer,
                          const Raftd__RaftBatch *b, char *msg)
{
	Raftd__PeerFrame f = RAFTD__PEER_FRAME__INIT;
	size_t len;
	uint8_t *buf;
	int rv;

	f.kind_case = RAFTD__PEER_FRAME__KIND_BATCH;
	f.batch = (Raftd__RaftBatch *)b;
	len = raftd__peer_frame__get_packed_size(&f);
	buf = malloc(len ? len : 1);
	cr_assert(buf != NULL);
	raftd__peer_frame__pack(&f, buf);
	rv = rd_transport_send_encoded(t, peer, buf, len, b->n_messages + b->n_heartbeats,
	                               msg);
	free(buf);
	return rv;
}

/* A heartbeat with a term far ahead and a commit index past any log, and a
 * TIMEOUT_NOW: from a member, the first would make a follower commit its
 * uncommitted tail and the second would skip the leader lease. */
static void evil_send_takeover(struct evil *e, uint64_t from, unsigned long long term)
{
	Raftd__RaftBatch b = RAFTD__RAFT_BATCH__INIT;
	Raftd__CoalescedHeartbeat hb = RAFTD__COALESCED_HEARTBEAT__INIT, *hbs[1] = {&hb};
	Raftd__RaftMessage m = RAFTD__RAFT_MESSAGE__INIT, *ms[1] = {&m};
	char msg[RD_ERRMSG_SIZE];

	b.from = from;
	b.to = 1;
	hb.group = 0;
	hb.term = term;
	hb.commit = 1ull << 40;
	b.n_heartbeats = 1;
	b.heartbeats = hbs;
	m.type = RAFTD__RAFT_MESSAGE_TYPE__RAFT_MSG_TIMEOUT_NOW;
	m.group = 0;
	m.from = from;
	m.to = 1;
	m.term = term;
	b.n_messages = 1;
	b.messages = ms;
	cr_assert_eq(send_raw_batch(e->t, 1, &b, msg), 0, "%s", msg);
}

struct call_result {
	int got, err, code;
	char message[256];
};

/* Call node 1 with `req` from the evil endpoint and run it until `cb` marks
 * the reply in `*got` (a field of `res`), ten seconds at the most. */
static void evil_call(struct evil *e, const Raftd__PeerRequest *req,
                      rd_transport_reply_cb cb, void *res, const int *got)
{
	char msg[RD_ERRMSG_SIZE];

	cr_assert_eq(rd_transport_call(e->t, 1, req, 5000, cb, res, msg), 0, "%s", msg);
	for (unsigned i = 0; i < 100 && *got == 0; i++)
		evil_run(e, 100);
}

static void call_reply(void *arg, int err, const Raftd__PeerResponse *resp,
                       const char *errmsg)
{
	struct call_result *r = arg;

	(void)errmsg;
	r->got = 1;
	r->err = err;
	if (err == 0) {
		r->code = resp->error;
		snprintf(r->message, sizeof r->message, "%s",
		         resp->error_message != NULL ? resp->error_message : "");
		if (resp->error == 0 &&
		    resp->body_case == RAFTD__PEER_RESPONSE__BODY_JOIN)
			r->code = resp->join->error;
	}
}

/* A node whose certificate the cluster CA signed but that is not a member
 * (a decommissioned node, a certificate issued early, a node about to
 * join) gets a stranger's connection: it may only ask to join (and probe
 * the member table). Its Raft batch (a far term, a TIMEOUT_NOW) is dropped
 * and a proposal it sends is answered INVALID, both counted in /metrics
 * (nonmember_refused); nothing it sent is stepped or applied; a join
 * request is served (here refused: it names another node than its
 * certificate); the cluster serves. Beyond RD_TRANSPORT_MAX_STRANGERS such
 * connections, one more is closed at the handshake ("peer removed",
 * counted as peer_not_member). */
Test(hostile, nonmember_certificate_refused, .fini = teardown, .timeout = 240)
{
	struct evil e;
	char cmd[1024];
	unsigned long long t0;
	Raftd__PeerRequest req = RAFTD__PEER_REQUEST__INIT;
	Raftd__MetadataProposeRequest mp = RAFTD__METADATA_PROPOSE_REQUEST__INIT;
	Raftd__JoinRequest jq = RAFTD__JOIN_REQUEST__INIT;
	struct call_result prop = {0}, join = {0};
	uint8_t data[] = "evil";

	start(NULL);
	put_get(1, "before", "1");
	t0 = term0(1);
	snprintf(cmd, sizeof cmd, "%s node %s/certs 9 >/dev/null 2>&1",
	         rd_h_src_path("conf/raftd-certs"), C.dir);
	cr_assert_eq(system(cmd), 0);
	evil_start(&e, 9);
	evil_send_takeover(&e, 9, t0 + 1000);
	mp.data.data = data;
	mp.data.len = sizeof data;
	req.body_case = RAFTD__PEER_REQUEST__BODY_METADATA_PROPOSE;
	req.metadata_propose = &mp;
	evil_call(&e, &req, call_reply, &prop, &prop.got);
	jq.node_id = 8; /* not its certificate's id */
	jq.address = "127.0.0.1:1";
	jq.incarnation = 1;
	req.body_case = RAFTD__PEER_REQUEST__BODY_JOIN;
	req.join = &jq;
	evil_call(&e, &req, call_reply, &join, &join.got);
	evil_free(&e);
	cr_expect_eq(prop.err, 0, "the proposal got no answer");
	cr_expect_eq(prop.code, RAFTD__ERROR_CODE__INVALID, "proposal: %d %s", prop.code,
	             prop.message);
	cr_expect(strstr(prop.message, "not a member") != NULL, "%s", prop.message);
	cr_expect_eq(join.err, 0, "the join request got no answer");
	cr_expect_eq(join.code, RAFTD__ERROR_CODE__INVALID, "join: %d", join.code);
	cr_expect_geq(
	    rd_h_metric(&C, 1, "raft_tick_loop_errors_total{kind=\"nonmember_refused\"}",
	                true),
	    2);
	cr_expect_lt(term0(1), t0 + 1000, "the hostile term was not adopted");

	/* More strangers than the bound (each its own id: one connection per
	 * node id): the one past it is closed. */
	struct evil many[RD_TRANSPORT_MAX_STRANGERS + 1];
	for (unsigned k = 0; k <= RD_TRANSPORT_MAX_STRANGERS; k++) {
		snprintf(cmd, sizeof cmd, "%s node %s/certs %u >/dev/null 2>&1",
		         rd_h_src_path("conf/raftd-certs"), C.dir, 20 + k);
		cr_assert_eq(system(cmd), 0);
		evil_start(&many[k], 20 + k);
		evil_send_takeover(&many[k], 20 + k, t0 + 1000);
		evil_run(&many[k], 300);
	}
	for (unsigned i = 0; i < 50; i++)
		for (unsigned k = 0; k <= RD_TRANSPORT_MAX_STRANGERS; k++)
			evil_run(&many[k], 20);
	for (unsigned k = 0; k <= RD_TRANSPORT_MAX_STRANGERS; k++)
		evil_free(&many[k]);
	cr_expect_geq(rd_h_metric(&C, 1,
	                          "raft_tick_loop_errors_total{kind=\"peer_not_member\"}",
	                          true),
	              1);
	put_get(1, "after", "2");
	put_get(2, "before", "1");
}

/* A member (node 3's certificate, node 3 stopped) opens 1,000 request
 * streams announcing 64 MiB frames and 1,000 announcing frames just under
 * the request cap, sends a little of each and stalls. The first are
 * refused before any memory is set aside (per-stream-kind caps), the
 * second hold only what the connection's window let in (credit returns
 * only for consumed frames): the node's RSS stays within the bound and
 * it keeps serving; the term does not move. */
Test(hostile, stalled_streams_stay_bounded, .fini = teardown, .timeout = 300)
{
	struct evil e;
	static uint8_t big[RD_FRAME_HEADER + 16], near[RD_FRAME_HEADER + (64u << 10)];
	uint32_t near_len = 2u << 20; /* the request cap: max_msg_bytes + 1 MiB */
	unsigned long long t0;
	long before, after;

	start(NULL);
	put_get(1, "k", "v");
	rd_h_stop(&C, 3, SIGTERM);
	t0 = term0(1);
	before = rss_kb(C.nodes[0].pid);
	evil_start(&e, 3);
	rd_frame_header(big, 64u << 20);
	rd_frame_header(near, near_len);
	for (unsigned i = 0; i < 1000; i++) {
		cr_assert_eq(rd_transport_test_call_raw(e.t, 1, big, sizeof big, 120000,
		                                        evil_reply, &e),
		             0);
		cr_assert_eq(rd_transport_test_call_raw(e.t, 1, near, sizeof near, 120000,
		                                        evil_reply, &e),
		             0);
	}
	for (unsigned i = 0; i < 300 && e.errors < 1000; i++)
		evil_run(&e, 100);
	evil_run(&e, 2000);
	after = rss_kb(C.nodes[0].pid);
	cr_log_info("stalled streams: %u refused, RSS %ld -> %ld kB", e.errors, before,
	            after);
	cr_expect_geq(e.errors, 1000, "the 64 MiB announcements were refused");
	cr_expect_lt(after - before, RSS_BOUND_KB, "RSS grew by %ld kB", after - before);
	cr_expect_gt(
	    rd_h_metric(&C, 1,
	                "raft_tick_loop_errors_total{kind=\"malformed_peer_frame\"}",
	                true),
	    0);
	put_get(1, "during", "d");
	evil_free(&e);
	cr_expect_lt(term0(1), t0 + 1000);
	put_get(2, "after", "a");
}

/* 20,000 Initials, each of which would cost a connection, a TLS object and
 * a handshake: 10,000 real ClientHellos from clients that never finish and
 * 10,000 that do not even decrypt. Past the Retry threshold they get a
 * stateless Retry, past the caps they are dropped, so RSS stays within the
 * bound and the node keeps serving (its peers are established and
 * unaffected). */
Test(hostile, initial_flood_stays_bounded, .fini = teardown, .timeout = 300)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
	                         .sin_addr.s_addr = htonl(0x7f000001)};
	uint8_t pkt[1200];
	long before, after;
	struct evil e;
	int fd;

	start(NULL);
	put_get(1, "k", "v");
	sa.sin_port = htons((uint16_t)C.nodes[0].quic_port);
	before = rss_kb(C.nodes[0].pid);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	for (unsigned i = 0; i < 10000; i++) {
		size_t n = rd_t_junk_initial(pkt, sizeof pkt);
		sendto(fd, pkt, n, 0, (struct sockaddr *)&sa, sizeof sa);
		if (i % 64 == 63)
			usleep(1000); /* stay under the socket's receive buffer */
	}
	close(fd);
	evil_start(&e, 3); /* its credentials are never checked: no handshake ends */
	for (unsigned i = 0; i < 100; i++) {
		cr_assert_eq(rd_transport_test_dial_flood(e.t, (struct sockaddr *)&sa,
		                                          sizeof sa, 1, 100),
		             0);
		evil_run(&e, 5);
	}
	evil_run(&e, 1000);
	evil_free(&e);
	after = rss_kb(C.nodes[0].pid);
	cr_log_info(
	    "Initial flood: RSS %ld -> %ld kB, %.0f Initials dropped", before, after,
	    rd_h_metric(&C, 1,
	                "raft_tick_loop_errors_total{kind=\"quic_initial_dropped\"}",
	                true));
	cr_expect_lt(after - before, RSS_BOUND_KB, "RSS grew by %ld kB", after - before);
	put_get(1, "after", "a");
	put_get(2, "after2", "b");
}

/* ---- raw Unix-socket clients -------------------------------------------------- */

static int unix_connect(unsigned node)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	cr_assert_lt(strlen(C.nodes[node - 1].sock), sizeof sun.sun_path);
	memcpy(sun.sun_path, C.nodes[node - 1].sock, strlen(C.nodes[node - 1].sock) + 1);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sun, sizeof sun), 0, "%s",
	             strerror(errno));
	return fd;
}

/* Frame `req` into `buf` (header + payload); returns the length. */
static size_t frame_req(const Raftd__ClientRequest *req, uint8_t *buf, size_t size)
{
	size_t n = raftd__client_request__get_packed_size(req);

	cr_assert_leq(n + RD_FRAME_HEADER, size);
	rd_frame_header(buf, (uint32_t)n);
	raftd__client_request__pack(req, buf + RD_FRAME_HEADER);
	return n + RD_FRAME_HEADER;
}

static size_t frame_get(uint64_t id, const char *key, uint8_t *buf, size_t size)
{
	Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
	Raftd__GetRequest get = RAFTD__GET_REQUEST__INIT;

	req.request_id = id;
	req.op_case = RAFTD__CLIENT_REQUEST__OP_GET;
	req.get = &get;
	get.key.data = (uint8_t *)key;
	get.key.len = strlen(key);
	return frame_req(&req, buf, size);
}

static void write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		cr_assert_gt(w, 0, "%s", strerror(errno));
		p += w;
		n -= (size_t)w;
	}
}

/* Read one response frame (blocking); returns NULL at EOF. */
static Raftd__ClientResponse *read_resp(int fd)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	Raftd__ClientResponse *r;

	if (rd_frame_read_fd(fd, 64u << 20, &buf, &len) != 0)
		return NULL;
	r = raftd__client_response__unpack(NULL, len, buf);
	free(buf);
	return r;
}

/* Put a value of `len` bytes through a raw connection. */
static void put_big(unsigned node, const char *key, size_t len)
{
	Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
	Raftd__PutRequest put = RAFTD__PUT_REQUEST__INIT;
	size_t cap = len + 1024, n;
	uint8_t *buf = malloc(cap);
	Raftd__ClientResponse *r;
	int fd = unix_connect(node);

	cr_assert_not_null(buf);
	req.request_id = 1;
	req.op_case = RAFTD__CLIENT_REQUEST__OP_PUT;
	req.put = &put;
	put.key.data = (uint8_t *)key;
	put.key.len = strlen(key);
	put.value.data = calloc(1, len);
	put.value.len = len;
	memset(put.value.data, 'v', len);
	n = frame_req(&req, buf, cap);
	write_all(fd, buf, n);
	r = read_resp(fd);
	cr_assert_not_null(r);
	cr_assert_eq(r->error, RAFTD__ERROR_CODE__OK, "%s", r->error_message);
	raftd__client_response__free_unpacked(r, NULL);
	free(put.value.data);
	free(buf);
	close(fd);
}

/* Pipelined gets of a 900 KiB value, never read: the node stops reading
 * that connection at its high-water mark and answers BUSY past the cap on
 * requests in flight, so its memory stays bounded (it grew by 1.6 GiB for
 * 1,901 such gets before) and other clients are served meanwhile. */
Test(hostile, pipelined_gets_never_read_stay_bounded, .fini = teardown, .timeout = 300)
{
	uint8_t *buf;
	size_t one, cap = 200000 * 32, n = 0, off = 0;
	long before, after;
	int fd;

	start(NULL);
	put_big(1, "big", 900 * 1024);
	put_get(1, "small", "s");
	before = rss_kb(C.nodes[0].pid);
	buf = malloc(cap);
	cr_assert_not_null(buf);
	for (uint64_t i = 0; i < 200000; i++) {
		one = frame_get(i + 1, "big", buf + n, cap - n);
		n += one;
	}
	fd = unix_connect(1);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	/* Write what the node takes; it stops reading, so the kernel buffers
	 * fill and writes would block: then give it time and try again. */
	for (unsigned round = 0; round < 100 && off < n; round++) {
		ssize_t w;
		while (off < n && (w = write(fd, buf + off, n - off)) > 0)
			off += (size_t)w;
		if (off < n)
			usleep(50 * 1000);
	}
	sleep(2);
	after = rss_kb(C.nodes[0].pid);
	cr_log_info("pipelined gets: %zu of %zu bytes written, RSS %ld -> %ld kB", off, n,
	            before, after);
	cr_expect_lt(after - before, RSS_BOUND_KB, "RSS grew by %ld kB", after - before);
	put_get(1, "during", "d");
	close(fd);
	free(buf);
	put_get(1, "after", "a");
}

/* Past max_requests_in_flight a request is answered BUSY, not queued. */
Test(hostile, requests_in_flight_capped_busy, .fini = teardown, .timeout = 240)
{
	uint8_t buf[64 * 64];
	size_t n = 0;
	unsigned ok = 0, busy = 0;
	int fd;

	start("[control]\nmax_requests_in_flight = 2\n");
	put_get(1, "k", "v");
	for (uint64_t i = 0; i < 64; i++)
		n += frame_get(i + 1, "k", buf + n, sizeof buf - n);
	fd = unix_connect(1);
	write_all(fd, buf, n);
	for (unsigned i = 0; i < 64; i++) {
		Raftd__ClientResponse *r = read_resp(fd);
		cr_assert_not_null(r, "answer %u", i);
		if (r->error == RAFTD__ERROR_CODE__BUSY)
			busy++;
		else if (r->error == RAFTD__ERROR_CODE__OK)
			ok++;
		raftd__client_response__free_unpacked(r, NULL);
	}
	close(fd);
	cr_expect_geq(busy, 1);
	cr_expect_geq(ok, 2);
	cr_expect_eq(ok + busy, 64);
	put_get(1, "k2", "v2");
}

/* Did the node close `fd` (EOF or reset) within `ms`? */
static bool closed_by_peer(int fd, unsigned ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char c;

	for (unsigned waited = 0;; waited += 100) {
		if (poll(&p, 1, ms == 0 ? 0 : 100) == 1) {
			ssize_t r = read(fd, &c, 1);
			if (r == 0 || (r < 0 && errno == ECONNRESET))
				return true;
		}
		if (waited >= ms)
			return false;
	}
}

/* Write one byte every 100 ms until the node closes `fd`, at most `n`. */
static bool dribble_until_closed(int fd, unsigned n, uint8_t byte)
{
	for (unsigned i = 0; i < n; i++) {
		if (write(fd, &byte, 1) != 1 || closed_by_peer(fd, 100))
			return true;
	}
	return false;
}

/* Connections past max_connections are closed at once; a partial frame that
 * makes no progress closes its connection however the bytes dribble in. */
Test(hostile, socket_connection_cap_and_slow_frame, .fini = teardown, .timeout = 240)
{
	int fds[4], extra, slow;
	const uint8_t head[4] = {0, 0, 1, 0}; /* a 256-byte frame follows */

	start("[control]\nmax_connections = 4\npartial_frame_timeout_ms = 300\n");
	put_get(1, "k", "v");
	for (int i = 0; i < 4; i++)
		fds[i] = unix_connect(1);
	extra = unix_connect(1);
	cr_expect(closed_by_peer(extra, 20000), "the fifth connection is closed");
	close(extra);
	for (int i = 0; i < 4; i++)
		close(fds[i]);
	slow = -1;
	for (unsigned i = 0; i < 50 && slow < 0; i++) {
		slow = unix_connect(1);
		/* The node may not have seen the four closes yet. */
		if (closed_by_peer(slow, 200)) {
			close(slow);
			slow = -1;
		}
	}
	cr_assert_geq(slow, 0);
	write_all(slow, head, sizeof head);
	/* One byte of the payload every 100 ms: the frame would take 25 s. */
	cr_expect(dribble_until_closed(slow, 200, 0x08), "the slow frame was cut off");
	close(slow);
	put_get(1, "k2", "v2");
}

/* ---- admin HTTP ------------------------------------------------------------- */

/* /status answers only to loopback names and IP literals (a DNS-rebinding
 * page sends its own host name); headers sent a byte at a time do not keep
 * a connection past the admin request timeout. */
Test(hostile, admin_host_check_and_slow_headers, .fini = teardown, .timeout = 240)
{
	static char out[1 << 20];
	int port, fd;
	bool closed = false;
	const char *head = "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n";

	start("[admin]\nrequest_timeout_ms = 500\n");
	port = C.nodes[0].admin_port;
	cr_expect_eq(rd_t_http_raw(port,
	                           "GET /status HTTP/1.1\r\nHost: rebind.example:9101\r\n"
	                           "Connection: close\r\n\r\n",
	                           out, sizeof out),
	             403, "%s", out);
	cr_expect_eq(rd_t_http_raw(port,
	                           "GET /status HTTP/1.1\r\nHost: localhost:9101\r\n"
	                           "Connection: close\r\n\r\n",
	                           out, sizeof out),
	             200, "%s", out);
	cr_expect_eq(rd_t_http_raw(port,
	                           "GET /metrics HTTP/1.1\r\nHost: rebind.example\r\n"
	                           "Connection: close\r\n\r\n",
	                           out, sizeof out),
	             200);
	fd = tcp_connect(port);
	write_all(fd, (const uint8_t *)head, strlen(head));
	closed = dribble_until_closed(fd, 300, 'X');
	cr_expect(closed, "the byte-at-a-time request was cut off");
	close(fd);
	cr_expect_eq(rd_t_http_raw(port,
	                           "GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	                           "Connection: close\r\n\r\n",
	                           out, sizeof out),
	             200);
	put_get(1, "k", "v");
}

/* Past [admin] max_connections, accepting pauses: with both slots held by
 * clients that send nothing, a third client is answered only after the
 * request timeout has closed one of them (an order, not a duration). */
Test(hostile, admin_connection_cap, .fini = teardown, .timeout = 240)
{
	static char out[1 << 16];
	const char *req =
	    "GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
	int port, idle[2], third;
	size_t got = 0;
	ssize_t r;
	bool idle_closed;

	start("[admin]\nmax_connections = 2\nrequest_timeout_ms = 1500\n");
	port = C.nodes[0].admin_port;
	for (int i = 0; i < 2; i++)
		idle[i] = tcp_connect(port);
	usleep(200 * 1000); /* let the node accept both */
	third = tcp_connect(port);
	write_all(third, (const uint8_t *)req, strlen(req));
	while (got + 1 < sizeof out &&
	       (r = read(third, out + got, sizeof out - 1 - got)) > 0)
		got += (size_t)r;
	out[got] = '\0';
	idle_closed = closed_by_peer(idle[0], 0) || closed_by_peer(idle[1], 0);
	cr_expect_not_null(strstr(out, "200 OK"), "%s", out);
	cr_expect(idle_closed, "the third client was served while both slots were held");
	close(third);
	close(idle[0]);
	close(idle[1]);
	put_get(1, "k", "v");
}

struct change_reply {
	int got;
	int code;
	char message[256];
};

static void change_reply(void *arg, int err, const Raftd__PeerResponse *resp,
                         const char *errmsg)
{
	struct change_reply *c = arg;

	(void)errmsg;
	c->got++;
	c->code = -1;
	if (err == 0 && resp != NULL &&
	    resp->body_case == RAFTD__PEER_RESPONSE__BODY_MEMBERS_CHANGE) {
		c->code = resp->members_change->code;
		snprintf(c->message, sizeof c->message, "%s",
		         resp->members_change->message);
	}
}

/* A member (node 3's certificate and incarnation, node 3 stopped) sends
 * node 1 a TIMEOUT_NOW with a far term, addressed to another replica of
 * node 1 (RaftMessage.to_incarnation): dropped and counted
 * (misaddressed_replica_message), the term does not move. Its membership
 * requests of an unknown kind or for a group that does not exist are
 * refused with why (INVALID, NOT_FOUND), and the cluster serves. */
Test(hostile, misaddressed_messages_and_bad_membership_requests_refused, .fini = teardown,
     .timeout = 240)
{
	Raftd__RaftBatch b = RAFTD__RAFT_BATCH__INIT;
	Raftd__RaftMessage m = RAFTD__RAFT_MESSAGE__INIT, *ms[1] = {&m};
	Raftd__PeerRequest req = RAFTD__PEER_REQUEST__INIT;
	Raftd__MembersChangeRequest mc = RAFTD__MEMBERS_CHANGE_REQUEST__INIT;
	struct change_reply cr1 = {0}, cr2 = {0};
	unsigned long long t0, inc3 = 0;
	char msg[RD_ERRMSG_SIZE], line[512];
	struct evil e;
	FILE *f;

	start(NULL);
	put_get(1, "before", "1");
	cr_assert(WIFEXITED(rd_h_stop(&C, 3, SIGTERM)));
	f = fopen(C.nodes[2].log, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof line, f) != NULL && inc3 == 0) {
		const char *p = strstr(line, "incarnation=");
		if (strstr(line, "storage created") != NULL && p != NULL)
			sscanf(p + 12, "%llx", &inc3);
	}
	fclose(f);
	cr_assert_neq(inc3, 0, "node 3's incarnation (logs in %s)", C.dir);
	t0 = term0(1);

	evil_start(&e, 3);
	b.from = 3;
	b.to = 1;
	b.incarnation = inc3;
	m.type = RAFTD__RAFT_MESSAGE_TYPE__RAFT_MSG_TIMEOUT_NOW;
	m.group = 0;
	m.from = 3;
	m.to = 1;
	m.term = t0 + 1000;
	m.to_incarnation = 0x1234; /* not node 1's */
	b.n_messages = 1;
	b.messages = ms;
	cr_assert_eq(send_raw_batch(e.t, 1, &b, msg), 0, "%s", msg);
	evil_run(&e, 500);

	mc.kind = 9;
	mc.node_id = 3;
	req.body_case = RAFTD__PEER_REQUEST__BODY_MEMBERS_CHANGE;
	req.members_change = &mc;
	evil_call(&e, &req, change_reply, &cr1, &cr1.got);
	mc.kind = 2;
	mc.group = 999;
	evil_call(&e, &req, change_reply, &cr2, &cr2.got);
	evil_free(&e);

	cr_expect_eq(cr1.code, RAFTD__ERROR_CODE__INVALID, "kind 9: %d %s", cr1.code,
	             cr1.message);
	cr_expect(strstr(cr1.message, "unknown membership change") != NULL, "%s",
	          cr1.message);
	cr_expect_eq(cr2.code, RAFTD__ERROR_CODE__NOT_FOUND, "group 999: %d %s", cr2.code,
	             cr2.message);
	cr_expect_geq(
	    rd_h_metric(
	        &C, 1,
	        "raft_tick_loop_errors_total{kind=\"misaddressed_replica_message\"}",
	        true),
	    1);
	cr_expect_lt(term0(1), t0 + 1000, "the misaddressed term was not adopted");
	put_get(1, "after", "2");
}
