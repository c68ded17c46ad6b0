/*
 * Key loader for `make bench-join`: writes keys "jk00000000" ... (COUNT of
 * them, 100-byte values) into a raftd through its socket, WINDOW puts in
 * flight on one connection. Prints "loaded <count> keys in <s> s". Exits 1
 * on any failed put.
 *
 * usage: join_load SOCKET COUNT
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "raftd.pb-c.h"
#include "util/clock.h"
#include "util/frame.h"

#define VALUE_LEN 100
#define WINDOW    32

static int send_put(int fd, uint64_t i)
{
	Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
	Raftd__PutRequest put = RAFTD__PUT_REQUEST__INIT;
	uint8_t value[VALUE_LEN], buf[512];
	char key[32];

	snprintf(key, sizeof key, "jk%08llu", (unsigned long long)i);
	memset(value, 'v', sizeof value);
	memcpy(value, &i, sizeof i);
	put.key.data = (uint8_t *)key;
	put.key.len = strlen(key);
	put.value.data = value;
	put.value.len = sizeof value;
	req.request_id = i + 1;
	req.deadline_ms = 60000;
	req.op_case = RAFTD__CLIENT_REQUEST__OP_PUT;
	req.put = &put;
	return rd_frame_write_fd(fd, buf, raftd__client_request__pack(&req, buf));
}

int main(int argc, char **argv)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	uint64_t total, sent = 0, done = 0, t0;
	int fd;

	if (argc != 3) {
		fprintf(stderr, "usage: join_load SOCKET COUNT\n");
		return 2;
	}
	total = strtoull(argv[2], NULL, 10);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", argv[1]);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
		fprintf(stderr, "join_load: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	t0 = rd_clock_now_ns();
	while (done < total) {
		uint8_t *in;
		size_t inlen;
		Raftd__ClientResponse *r;

		while (sent < total && sent - done < WINDOW)
			if (send_put(fd, sent++) != 0) {
				fprintf(stderr, "join_load: send failed\n");
				return 1;
			}
		if (rd_frame_read_fd(fd, 1u << 20, &in, &inlen) != 0) {
			fprintf(stderr, "join_load: connection lost\n");
			return 1;
		}
		r = raftd__client_response__unpack(NULL, inlen, in);
		free(in);
		if (r == NULL || r->error != RAFTD__ERROR_CODE__OK) {
			fprintf(stderr, "join_load: put failed: %s\n",
			        r != NULL ? r->error_message : "undecodable reply");
			return 1;
		}
		raftd__client_response__free_unpacked(r, NULL);
		done++;
	}
	printf("loaded %llu keys in %.1f s\n", (unsigned long long)total,
	       (double)(rd_clock_now_ns() - t0) / 1e9);
	close(fd);
	return 0;
}
