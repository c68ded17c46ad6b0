/*
 * make bench-tail: one subscriber (proto/raftd.proto "Commit streams") on
 * one node tails data group 1 from now while a writer proposes 100-byte
 * raw entries through another node, 64 in flight, for SECS seconds. Each
 * payload carries its send time; the subscriber's receive time minus it is
 * the propose-to-delivery latency (both on this host's monotonic clock).
 *
 *   tail_bench SECS WRITER_SOCKET SUBSCRIBER_SOCKET
 *
 * Prints the setup, then "RESULT tail entries=N entries_per_s=R p50_ms=A
 * p99_ms=B".
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl/client.h"
#include "raftd.pb-c.h"
#include "util/clock.h"
#include "util/frame.h"

#define WINDOW  64
#define PAYLOAD 100

static int dial(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
		fprintf(stderr, "tail_bench: connect %s: %s\n", path, strerror(errno));
		exit(1);
	}
	return fd;
}

static void send_req(int fd, Raftd__ClientRequest *req)
{
	if (rd_ctl_send_request(fd, req) != 0) {
		fprintf(stderr, "tail_bench: write failed\n");
		exit(1);
	}
}

static Raftd__ClientResponse *recv_resp(int fd)
{
	uint8_t *in;
	size_t len;

	if (rd_frame_read_fd(fd, 64u << 20, &in, &len) != 0) {
		fprintf(stderr, "tail_bench: connection closed\n");
		exit(1);
	}
	Raftd__ClientResponse *r = raftd__client_response__unpack(NULL, len, in);
	free(in);
	return r;
}

static void propose(int fd, uint64_t id)
{
	Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
	Raftd__ProposeRequest p = RAFTD__PROPOSE_REQUEST__INIT;
	uint8_t data[PAYLOAD];
	uint64_t now = rd_clock_now_ns();

	memset(data, 'x', sizeof data);
	memcpy(data, "tb", 2);
	memcpy(data + 2, &now, sizeof now);
	p.vshard = 0;
	p.data.data = data;
	p.data.len = sizeof data;
	req.request_id = id;
	req.op_case = RAFTD__CLIENT_REQUEST__OP_PROPOSE;
	req.propose = &p;
	send_req(fd, &req);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr,
		        "usage: tail_bench SECS WRITER_SOCKET SUBSCRIBER_SOCKET\n");
		return 2;
	}
	double secs = atof(argv[1]);
	int w = dial(argv[2]), s = dial(argv[3]);
	Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
	Raftd__SubscribeRequest sub = RAFTD__SUBSCRIBE_REQUEST__INIT;
	size_t cap = 1u << 20, n = 0;
	uint64_t *lat = malloc(cap * sizeof *lat), next_id = 1, inflight = 0, used = 0;

	sub.scope = RAFTD__SUBSCRIBE_SCOPE__SCOPE_GROUP;
	sub.group = 1;
	sub.credit = 4096;
	req.request_id = 1;
	req.op_case = RAFTD__CLIENT_REQUEST__OP_SUBSCRIBE;
	req.subscribe = &sub;
	send_req(s, &req);
	usleep(200000); /* the subscription starts "from now" */

	uint64_t t0 = rd_clock_now_ns(), end = t0 + (uint64_t)(secs * 1e9), first = 0,
	         last = 0;
	bool writing = true;
	while (writing || inflight > 0) {
		struct pollfd p[2] = {{.fd = w, .events = POLLIN},
		                      {.fd = s, .events = POLLIN}};
		if (writing && rd_clock_now_ns() >= end)
			writing = false;
		while (writing && inflight < WINDOW) {
			propose(w, next_id++);
			inflight++;
		}
		if (poll(p, 2, 1000) <= 0)
			continue;
		if (p[0].revents & POLLIN) {
			Raftd__ClientResponse *r = recv_resp(w);
			inflight--;
			raftd__client_response__free_unpacked(r, NULL);
		}
		if (p[1].revents & POLLIN) {
			Raftd__ClientResponse *r = recv_resp(s);
			uint64_t now = rd_clock_now_ns(), sent;
			if (r->entry == NULL) {
				fprintf(stderr, "tail_bench: stream ended: %s\n",
				        r->error_message);
				return 1;
			}
			if (r->entry->payload.len == PAYLOAD &&
			    memcmp(r->entry->payload.data, "tb", 2) == 0) {
				memcpy(&sent, r->entry->payload.data + 2, sizeof sent);
				if (n == cap)
					lat = realloc(lat, (cap *= 2) * sizeof *lat);
				lat[n++] = now - sent;
				if (first == 0)
					first = now;
				last = now;
			}
			raftd__client_response__free_unpacked(r, NULL);
			if (++used == 2048) {
				if (rd_ctl_send_credit(s, 2, 1, 2048) != 0) {
					fprintf(stderr, "tail_bench: write failed\n");
					return 1;
				}
				used = 0;
			}
		}
	}
	/* Drain what is still on its way to the subscriber. */
	while (n < next_id - 1) {
		struct pollfd p = {.fd = s, .events = POLLIN};
		if (poll(&p, 1, 3000) <= 0)
			break;
		Raftd__ClientResponse *r = recv_resp(s);
		uint64_t now = rd_clock_now_ns(), sent;
		if (r->entry != NULL && r->entry->payload.len == PAYLOAD) {
			memcpy(&sent, r->entry->payload.data + 2, sizeof sent);
			if (n == cap)
				lat = realloc(lat, (cap *= 2) * sizeof *lat);
			lat[n++] = now - sent;
			last = now;
		}
		raftd__client_response__free_unpacked(r, NULL);
	}
	if (n == 0) {
		fprintf(stderr, "tail_bench: nothing delivered\n");
		return 1;
	}
	qsort(lat, n, sizeof *lat, cmp_u64);
	double span = (double)(last - first) / 1e9;
	printf("RESULT tail entries=%zu entries_per_s=%.0f p50_ms=%.2f p99_ms=%.2f\n", n,
	       span > 0 ? (double)n / span : 0, (double)lat[n / 2] / 1e6,
	       (double)lat[n * 99 / 100] / 1e6);
	free(lat);
	return 0;
}
