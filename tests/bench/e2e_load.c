/*
 * End-to-end load generator for `make bench-e2e`: C closed-loop clients
 * spread over the given raftd sockets, each with one `put` in flight
 * (1 KiB value, 256-byte key), for D seconds. Prints
 *   RESULT e2e clients=<c> writes=<acknowledged> writes_per_s=<n> p50_ms=<x>
 *              p99_ms=<x> p999_ms=<x>
 *
 * usage: e2e_load CLIENTS SECONDS SOCKET [SOCKET...]
 */
#include <errno.h>
#include <signal.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "raftd.pb-c.h"
#include "transport/wire.h"
#include "util/frame.h"
#include "util/clock.h"

#define KEY_LEN     256
#define VALUE_LEN   1024
#define MAX_SAMPLES (8u << 20)

struct client {
	struct bufferevent *bev;
	unsigned id;
	uint64_t seq;
	uint64_t sent_ns;
	uint64_t done;
	uint64_t lat_sum;
};

static uint64_t *lat;
static size_t n_lat;
static uint64_t errors, done_ops;
static uint64_t errors_by_code[16];
static uint64_t end_ns;
static struct event_base *base;
static uint8_t value[VALUE_LEN];

static uint64_t now_ns(void)
{
	return rd_clock_now_ns();
}

static void send_put(struct client *c)
{
	Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
	Raftd__PutRequest put = RAFTD__PUT_REQUEST__INIT;
	uint8_t key[KEY_LEN], buf[2048], hdr[RD_FRAME_HEADER];
	size_t len;

	memset(key, 'k', sizeof key);
	snprintf((char *)key, sizeof key, "c%u-%llu", c->id,
	         (unsigned long long)c->seq++);
	key[strlen((char *)key)] = 'k';
	put.key.data = key;
	put.key.len = KEY_LEN;
	put.value.data = value;
	put.value.len = VALUE_LEN;
	req.request_id = c->seq;
	req.deadline_ms = 10000;
	req.op_case = RAFTD__CLIENT_REQUEST__OP_PUT;
	req.put = &put;
	len = raftd__client_request__pack(&req, buf);
	rd_frame_header(hdr, (uint32_t)len);
	c->sent_ns = now_ns();
	bufferevent_write(c->bev, hdr, sizeof hdr);
	bufferevent_write(c->bev, buf, len);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint32_t len;

	while (rd_frame_peek(in, 1u << 20, &len) == 0) {
		uint8_t *p;
		Raftd__ClientResponse *r;
		evbuffer_drain(in, RD_FRAME_HEADER);
		p = evbuffer_pullup(in, len);
		r = raftd__client_response__unpack(NULL, len, p);
		evbuffer_drain(in, len);
		uint64_t t = now_ns();
		if (r == NULL || r->error != RAFTD__ERROR_CODE__OK) {
			errors++;
			errors_by_code[r != NULL && r->error < 16 ? r->error : 8]++;
			if (errors == 1 && r != NULL)
				fprintf(stderr, "e2e_load: first error: %s\n",
				        r->error_message);
		} else if (n_lat < MAX_SAMPLES)
			lat[n_lat++] = t - c->sent_ns;
		done_ops++;
		c->done++;
		c->lat_sum += t - c->sent_ns;
		if (r != NULL)
			raftd__client_response__free_unpacked(r, NULL);
		if (t < end_ns)
			send_put(c);
	}
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev, (void)arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		fprintf(stderr, "e2e_load: connection lost\n");
		event_base_loopbreak(base);
	}
}

static void on_end(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what, (void)arg;
	event_base_loopbreak(base);
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double pct(double p)
{
	if (n_lat == 0)
		return 0;
	size_t i = (size_t)(p * (double)(n_lat - 1));
	return (double)lat[i] / 1e6;
}

int main(int argc, char **argv)
{
	unsigned clients, secs;
	struct client *cs;
	struct timeval tv;
	uint64_t t0;

	if (argc < 4) {
		fprintf(stderr, "usage: e2e_load CLIENTS SECONDS SOCKET [SOCKET...]\n");
		return 2;
	}
	/* A node that refuses or drops a connection must show up as an error
	 * line, not as a silent death by SIGPIPE on the next write. */
	signal(SIGPIPE, SIG_IGN);
	clients = (unsigned)atoi(argv[1]);
	secs = (unsigned)atoi(argv[2]);
	lat = malloc(MAX_SAMPLES * sizeof *lat);
	cs = calloc(clients, sizeof *cs);
	base = event_base_new();
	memset(value, 'v', sizeof value);
	for (unsigned i = 0; i < clients; i++) {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};
		const char *path = argv[3 + i % (unsigned)(argc - 3)];
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
		if (connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
			fprintf(stderr, "e2e_load: connect %s: %s\n", path,
			        strerror(errno));
			return 3;
		}
		evutil_make_socket_nonblocking(fd);
		cs[i].id = i;
		cs[i].bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
		bufferevent_setcb(cs[i].bev, on_read, NULL, on_event, &cs[i]);
		bufferevent_enable(cs[i].bev, EV_READ | EV_WRITE);
	}
	t0 = now_ns();
	end_ns = t0 + (uint64_t)secs * 1000000000ull;
	for (unsigned i = 0; i < clients; i++)
		send_put(&cs[i]);
	tv.tv_sec = secs;
	tv.tv_usec = 0;
	event_base_once(base, -1, EV_TIMEOUT, on_end, NULL, &tv);
	event_base_dispatch(base);
	double elapsed = (double)(now_ns() - t0) / 1e9;
	qsort(lat, n_lat, sizeof *lat, cmp);
	const char *nodes = getenv("BENCH_NODES");
	const char *extra = getenv("BENCH_EXTRA_CONF");
	printf("setup: %s raftd nodes on loopback, mutual TLS, fsync on; %u closed-loop "
	       "clients "
	       "over %d sockets; put of %d-byte keys and %d-byte values for %u s; %llu "
	       "errors%s%s\n",
	       nodes != NULL && nodes[0] != '\0' ? nodes : "3", clients, argc - 3,
	       KEY_LEN, VALUE_LEN, secs, (unsigned long long)errors,
	       extra != NULL && extra[0] != '\0' ? "; extra config: " : "",
	       extra != NULL ? extra : "");
	for (int k = 0; k < 16; k++)
		if (errors_by_code[k] != 0)
			printf("errors: %s %llu\n", rd_wire_code_name(k),
			       (unsigned long long)errors_by_code[k]);
	printf("RESULT e2e clients=%u writes=%zu writes_per_s=%.0f p50_ms=%.3f "
	       "p99_ms=%.3f p999_ms=%.3f\n",
	       clients, n_lat, (double)n_lat / elapsed, pct(0.50), pct(0.99), pct(0.999));
	uint64_t dmin = UINT64_MAX, dmax = 0;
	for (unsigned i = 0; i < clients; i++) {
		dmin = cs[i].done < dmin ? cs[i].done : dmin;
		dmax = cs[i].done > dmax ? cs[i].done : dmax;
	}
	uint64_t lsum = 0, dsum = 0;
	for (unsigned i = 0; i < clients; i++)
		lsum += cs[i].lat_sum, dsum += cs[i].done;
	fprintf(stderr,
	        "e2e_load: requests per client min=%llu max=%llu, mean latency %.1f ms\n",
	        (unsigned long long)dmin, (unsigned long long)dmax,
	        dsum ? (double)lsum / (double)dsum / 1e6 : 0.0);
	for (unsigned i = 0; i < clients; i++)
		bufferevent_free(cs[i].bev);
	event_base_free(base);
	free(cs);
	free(lat);
	return errors > 0 && n_lat == 0 ? 1 : 0;
}
