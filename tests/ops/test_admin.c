/* Admin HTTP server: status codes, content types and bodies of /livez,
 * /readyz, /status and /metrics against a fake node, readiness flipping
 * from 503 to 200, liveness failing after RD_ADMIN_LIVEZ_TICKS silent tick
 * intervals, 404 and 405. The server runs on a libevent base that the test
 * drives itself while a raw HTTP/1.1 client waits for the answer, and time
 * comes from a fake clock. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ctl/admin.h"
#include "ctl/check.h"
#include "ctl/metrics.h"
#include "util/err.h"

#define MS   1000000ull
#define TICK (10 * MS)

struct fake {
	bool ready;
	const char *reason;
	uint64_t last_tick;
	uint64_t now;
	int status_rv;
};

static bool fake_ready(void *ud, const char **reason)
{
	struct fake *f = ud;
	*reason = f->reason;
	return f->ready;
}

static uint64_t fake_last_tick(void *ud)
{
	return ((struct fake *)ud)->last_tick;
}

static int fake_status(void *ud, struct evbuffer *out)
{
	struct fake *f = ud;
	evbuffer_add_printf(out, "{\"node\":1,\"name\":");
	rd_admin_json_string(out, "n\"1");
	evbuffer_add_printf(out, "}");
	return f->status_rv;
}

static int fake_metrics(void *ud, struct evbuffer *out)
{
	(void)ud;
	rd_metrics_family(out, RD_METRIC_TICK_LOOP_UP);
	rd_metrics_gauge_u64(out, "raft_tick_loop_up", RD_METRICS_L0, 1);
	return 0;
}

static uint64_t fake_clock(void *ud)
{
	return ((struct fake *)ud)->now;
}

static const struct rd_admin_ops ops = {
    .ready = fake_ready,
    .last_tick_ns = fake_last_tick,
    .write_status_json = fake_status,
    .write_metrics = fake_metrics,
};

static struct event_base *base;
static struct rd_admin *admin;
static struct fake node;

static void start_server(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = 0};
	struct rd_admin_opts o = {
	    .tick_interval_ns = TICK, .clock = fake_clock, .clock_ud = &node};
	char msg[RD_ERRMSG_SIZE] = "";

	memset(&node, 0, sizeof node);
	node.now = 1000 * MS;
	node.reason = "no leader for the metadata group";
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	base = event_base_new();
	cr_assert_not_null(base);
	cr_assert_eq(rd_admin_start(base, (struct sockaddr *)&sin, sizeof sin, &ops,
	                            &node, &o, &admin, msg),
	             0, "%s", msg);
	cr_assert_neq(rd_admin_port(admin), 0);
}

static void stop_server(void)
{
	rd_admin_stop(admin);
	event_base_free(base);
}

struct resp {
	int status;
	char head[4096];
	char body[8192];
	size_t body_len;
};

/* Send `method path` with Connection: close and read the whole answer,
 * turning the server's event loop between reads. */
static void http(const char *method, const char *path, struct resp *r)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
	                          .sin_port = htons(rd_admin_port(admin))};
	char raw[sizeof r->head + sizeof r->body];
	size_t got = 0;
	char req[512];
	int fd, n;
	time_t deadline = time(NULL) + 20; /* a guard against a hang, not a check */

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	n = snprintf(req, sizeof req,
	             "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n"
	             "Connection: close\r\n\r\n",
	             method, path);
	cr_assert_eq(write(fd, req, (size_t)n), n);
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		event_base_loop(base, EVLOOP_NONBLOCK);
		if (poll(&p, 1, 5) == 1) {
			ssize_t k = read(fd, raw + got, sizeof raw - 1 - got);
			cr_assert_geq(k, 0);
			if (k == 0)
				break;
			got += (size_t)k;
		}
		cr_assert_lt(time(NULL), deadline, "no complete answer to %s %s", method,
		             path);
	}
	close(fd);
	raw[got] = '\0';

	char *end = strstr(raw, "\r\n\r\n");
	cr_assert_not_null(end, "no header end in: %s", raw);
	*end = '\0';
	cr_assert_lt(strlen(raw), sizeof r->head);
	memcpy(r->head, raw, strlen(raw) + 1);
	r->body_len = got - (size_t)(end + 4 - raw);
	cr_assert_lt(r->body_len, sizeof r->body);
	memcpy(r->body, end + 4, r->body_len);
	r->body[r->body_len] = '\0';
	cr_assert_eq(sscanf(r->head, "HTTP/1.1 %d", &r->status), 1, "%s", r->head);
}

/* The value of header `name` (case-insensitive), or NULL. */
static const char *header(struct resp *r, const char *name, char *val, size_t size)
{
	size_t n = strlen(name);
	for (char *line = strstr(r->head, "\r\n"); line != NULL;
	     line = strstr(line, "\r\n")) {
		line += 2;
		if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
			const char *v = line + n + 1;
			size_t len;
			while (*v == ' ')
				v++;
			len = strcspn(v, "\r\n");
			snprintf(val, size, "%.*s", (int)len, v);
			return val;
		}
	}
	return NULL;
}

static void expect(const char *method, const char *path, int status, const char *ctype,
                   const char *body)
{
	struct resp r;
	char v[256];

	http(method, path, &r);
	cr_assert_eq(r.status, status, "%s %s: %s\n\n%s", method, path, r.head, r.body);
	if (ctype != NULL) {
		cr_assert_not_null(header(&r, "Content-Type", v, sizeof v), "%s", r.head);
		cr_assert_str_eq(v, ctype);
	}
	if (body != NULL)
		cr_assert_str_eq(r.body, body, "%s %s", method, path);
}

TestSuite(admin, .init = start_server, .fini = stop_server);

/* /readyz answers 503 with the node's reason until it is ready, then 200. */
Test(admin, readiness_flips_from_503_to_200)
{
	expect("GET", "/readyz", 503, "text/plain; charset=utf-8",
	       "not ready: no leader for the metadata group\n");
	node.reason = NULL;
	expect("GET", "/readyz", 503, NULL, "not ready: not ready\n");
	node.ready = true;
	expect("GET", "/readyz", 200, "text/plain; charset=utf-8", "ready\n");
}

/* /livez: live while ticks complete; 503 once no tick completed for more
 * than RD_ADMIN_LIVEZ_TICKS intervals; live again after the next tick.
 * Before the first tick, the server's start counts as one. */
Test(admin, livez_follows_tick_progress)
{
	uint64_t start = node.now;

	expect("GET", "/livez", 200, "text/plain; charset=utf-8", "ok\n");
	node.now = start + RD_ADMIN_LIVEZ_TICKS * TICK;
	expect("GET", "/livez", 200, NULL, "ok\n");
	node.now = start + 80 * MS;
	expect("GET", "/livez", 503, "text/plain; charset=utf-8",
	       "stalled: no tick completed for 80 ms (limit 50 ms)\n");
	node.last_tick = node.now - TICK;
	expect("GET", "/livez", 200, NULL, "ok\n");
	node.now += RD_ADMIN_LIVEZ_TICKS * TICK;
	expect("GET", "/livez", 503, NULL, NULL);
}

/* /status is the node's JSON document, as application/json. */
Test(admin, status_is_json)
{
	struct resp r;
	char msg[RD_ERRMSG_SIZE] = "";

	expect("GET", "/status", 200, "application/json",
	       "{\"node\":1,\"name\":\"n\\\"1\"}");
	http("GET", "/status", &r);
	cr_assert_eq(rd_check_json(r.body, r.body_len, msg), 0, "%s", msg);
}

/* A failing status writer gives 500 and none of its partial output. */
Test(admin, status_failure_is_500)
{
	struct resp r;
	node.status_rv = RD_EIO;
	http("GET", "/status", &r);
	cr_assert_eq(r.status, 500);
	cr_assert_null(strstr(r.body, "{\"node\""), "%s", r.body);
	cr_assert_not_null(strstr(r.body, "EIO"), "%s", r.body);
}

/* /metrics has the Prometheus text format's content type and the node's
 * text. */
Test(admin, metrics_text_format)
{
	expect("GET", "/metrics", 200, "text/plain; version=0.0.4; charset=utf-8",
	       "# HELP raft_tick_loop_up 1 while the tick loop completes ticks on time, "
	       "0 when it is stalled.\n"
	       "# TYPE raft_tick_loop_up gauge\n"
	       "raft_tick_loop_up 1\n");

	struct resp r;
	char msg[RD_ERRMSG_SIZE] = "";
	http("GET", "/metrics", &r);
	cr_assert_eq(rd_check_prometheus(r.body, r.body_len, msg), 0, "%s", msg);
	cr_assert(rd_check_prometheus_has(r.body, "raft_tick_loop_up"));
}

/* The query string does not change the route. */
Test(admin, query_string_is_ignored)
{
	node.ready = true;
	expect("GET", "/readyz?verbose=1", 200, NULL, "ready\n");
}

/* Paths other than the four endpoints are 404, whatever the method. */
Test(admin, unknown_paths_are_404)
{
	expect("GET", "/", 404, "text/plain; charset=utf-8", NULL);
	expect("GET", "/nope", 404, NULL, NULL);
	expect("GET", "/livez/extra", 404, NULL, NULL);
	expect("GET", "/metrics/", 404, NULL, NULL);
	expect("POST", "/nope", 404, NULL, NULL);
}

/* Methods other than GET and HEAD are 405 with Allow: GET, HEAD. */
Test(admin, non_get_is_405_with_allow)
{
	const char *methods[] = {"POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
	for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
		struct resp r;
		char v[64];
		http(methods[i], "/metrics", &r);
		cr_assert_eq(r.status, 405, "%s: %s", methods[i], r.head);
		cr_assert_not_null(header(&r, "Allow", v, sizeof v), "%s", r.head);
		cr_assert_str_eq(v, "GET, HEAD");
	}
}

/* HEAD answers like GET, without a body (RFC 9110 section 9.3.2). */
Test(admin, head_has_no_body)
{
	struct resp r;
	char v[64];
	node.ready = true;
	http("HEAD", "/readyz", &r);
	cr_assert_eq(r.status, 200);
	cr_assert_eq(r.body_len, 0, "%s", r.body);
	cr_assert_not_null(header(&r, "Content-Type", v, sizeof v));
	cr_assert_not_null(header(&r, "Content-Length", v, sizeof v), "%s", r.head);
	cr_assert_str_eq(v, "6"); /* "ready\n", as GET would send */
}

/* Answers carry Cache-Control: no-store and a Content-Length. */
Test(admin, answers_are_not_cacheable)
{
	struct resp r;
	char v[64];
	http("GET", "/livez", &r);
	cr_assert_not_null(header(&r, "Cache-Control", v, sizeof v), "%s", r.head);
	cr_assert_str_eq(v, "no-store");
	cr_assert_not_null(header(&r, "Content-Length", v, sizeof v), "%s", r.head);
	cr_assert_str_eq(v, "3");
}

/* A second server on a port already in use fails with RD_EIO and a message;
 * the first keeps serving. */
Test(admin, bind_conflict_is_an_error)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
	                          .sin_port = htons(rd_admin_port(admin))};
	struct rd_admin_opts o = {.tick_interval_ns = TICK};
	struct rd_admin *second = NULL;
	char msg[RD_ERRMSG_SIZE] = "";

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(rd_admin_start(base, (struct sockaddr *)&sin, sizeof sin, &ops,
	                            &node, &o, &second, msg),
	             RD_EIO);
	cr_assert_null(second);
	cr_assert_not_null(strstr(msg, "cannot listen"), "%s", msg);
	expect("GET", "/livez", 200, NULL, "ok\n");
}
