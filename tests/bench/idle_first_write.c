/*
 * make bench-idle, last step: the latency of the first write to each of
 * N idle data groups. One raw proposal (proto/raftd.proto ProposeRequest)
 * at a time, through one node, to vShards 0, STRIDE, 2*STRIDE, ... (each
 * its own group when every vShard has one); the time from sending it to
 * its answer, on this host's monotonic clock. A write to a group another
 * node leads is forwarded there, as a client's would be. Right after each
 * first write, a second one to the same vShard (its group awake now) is
 * timed too: the reference a first write is to be compared with.
 *
 *   idle_first_write SOCKET N STRIDE
 *
 * Prints "RESULT first-write n=N p50_ms=A p99_ms=B max_ms=C" and
 * "RESULT second-write ..." the same way; exits 1 if any write failed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "raftd.pb-c.h"
#include "util/clock.h"
#include "util/frame.h"

static int dial(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
		fprintf(stderr, "idle_first_write: connect %s: %s\n", path,
		        strerror(errno));
		exit(1);
	}
	return fd;
}

/* Propose 16 bytes to `vshard` and wait for the answer; 0 on success. */
static int write_once(int fd, uint64_t id, uint32_t vshard)
{
	Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
	Raftd__ProposeRequest p = RAFTD__PROPOSE_REQUEST__INIT;
	uint8_t data[16] = "idle-first-write", buf[256], *in;
	size_t len;
	int rc = 0;

	p.vshard = vshard;
	p.data.data = data;
	p.data.len = sizeof data;
	req.request_id = id;
	req.op_case = RAFTD__CLIENT_REQUEST__OP_PROPOSE;
	req.propose = &p;
	len = raftd__client_request__get_packed_size(&req);
	raftd__client_request__pack(&req, buf);
	if (rd_frame_write_fd(fd, buf, len) != 0 ||
	    rd_frame_read_fd(fd, 1u << 20, &in, &len) != 0) {
		fprintf(stderr, "idle_first_write: connection lost\n");
		exit(1);
	}
	Raftd__ClientResponse *r = raftd__client_response__unpack(NULL, len, in);
	free(in);
	if (r == NULL || r->error != RAFTD__ERROR_CODE__OK) {
		fprintf(stderr, "idle_first_write: vshard %" PRIu32 ": %s\n", vshard,
		        r != NULL ? r->error_message : "undecodable answer");
		rc = -1;
	}
	if (r != NULL)
		raftd__client_response__free_unpacked(r, NULL);
	return rc;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void print(const char *what, uint64_t *lat, size_t n)
{
	qsort(lat, n, sizeof *lat, cmp_u64);
	printf("RESULT %s n=%zu p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n", what, n,
	       (double)lat[n / 2] / 1e6,
	       (double)lat[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] / 1e6,
	       (double)lat[n - 1] / 1e6);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: idle_first_write SOCKET N STRIDE\n");
		return 2;
	}
	int fd = dial(argv[1]);
	size_t n = strtoul(argv[2], NULL, 10);
	uint32_t stride = (uint32_t)strtoul(argv[3], NULL, 10);
	uint64_t *lat = calloc(n ? n : 1, sizeof *lat);
	uint64_t *lat2 = calloc(n ? n : 1, sizeof *lat2);
	int failed = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t t0 = rd_clock_now_ns(), t1;
		if (write_once(fd, 2 * i + 1, (uint32_t)i * stride) != 0)
			failed = 1;
		t1 = rd_clock_now_ns();
		lat[i] = t1 - t0;
		if (write_once(fd, 2 * i + 2, (uint32_t)i * stride) != 0)
			failed = 1;
		lat2[i] = rd_clock_now_ns() - t1;
	}
	if (n == 0 || failed)
		return 1;
	print("first-write", lat, n);
	print("second-write", lat2, n);
	free(lat);
	free(lat2);
	close(fd);
	return 0;
}
