/*
 * State loader for `make bench-backup`: writes MB megabytes of KV state
 * into a raftd through its socket, as puts of VALUE_KIB KiB values
 * (keys "bk00000000", ...), WINDOW requests in flight on one connection.
 * Prints "loaded <bytes> bytes in <s> s". Exits 1 on any failed put.
 *
 * usage: backup_load SOCKET MB
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

#define VALUE_KIB 256
#define WINDOW    16

static int send_put(int fd, uint64_t i, uint8_t *value)
{
	Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
	Raftd__PutRequest put = RAFTD__PUT_REQUEST__INIT;
	char key[32];
	static uint8_t buf[VALUE_KIB * 1024 + 256];

	snprintf(key, sizeof key, "bk%08llu", (unsigned long long)i);
	memcpy(value, &i, sizeof i); /* values differ */
	put.key.data = (uint8_t *)key;
	put.key.len = strlen(key);
	put.value.data = value;
	put.value.len = VALUE_KIB * 1024;
	req.request_id = i + 1;
	req.deadline_ms = 60000;
	req.op_case = RAFTD__CLIENT_REQUEST__OP_PUT;
	req.put = &put;
	size_t len = raftd__client_request__pack(&req, buf);
	return rd_frame_write_fd(fd, buf, len);
}

int main(int argc, char **argv)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	static uint8_t value[VALUE_KIB * 1024];

	if (argc != 3) {
		fprintf(stderr, "usage: backup_load SOCKET MB\n");
		return 2;
	}
	uint64_t total = strtoull(argv[2], NULL, 10) * 1024 / VALUE_KIB, sent = 0,
	         done = 0;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", argv[1]);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
		fprintf(stderr, "backup_load: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	memset(value, 'v', sizeof value);
	uint64_t t0 = rd_clock_now_ns();
	while (done < total) {
		while (sent < total && sent - done < WINDOW)
			if (send_put(fd, sent++, value) != 0) {
				fprintf(stderr, "backup_load: send failed\n");
				return 1;
			}
		uint8_t *in;
		size_t inlen;
		if (rd_frame_read_fd(fd, 1u << 20, &in, &inlen) != 0) {
			fprintf(stderr, "backup_load: connection lost\n");
			return 1;
		}
		Raftd__ClientResponse *r =
		    raftd__client_response__unpack(NULL, inlen, in);
		free(in);
		if (r == NULL || r->error != RAFTD__ERROR_CODE__OK) {
			fprintf(stderr, "backup_load: put failed: %s\n",
			        r != NULL ? r->error_message : "undecodable reply");
			return 1;
		}
		raftd__client_response__free_unpacked(r, NULL);
		done++;
	}
	printf("loaded %llu bytes in %.1f s\n",
	       (unsigned long long)(total * VALUE_KIB * 1024),
	       (double)(rd_clock_now_ns() - t0) / 1e9);
	close(fd);
	return 0;
}
