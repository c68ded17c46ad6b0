#include "put_loader.h"

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

/* Put number `i`; `value` (value_len bytes) and `buf` are the caller's. */
static int send_put(int fd, const char *prefix, uint64_t i, uint8_t *value,
                    size_t value_len, uint8_t *buf)
{
	Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
	Raftd__PutRequest put = RAFTD__PUT_REQUEST__INIT;
	char key[32];

	snprintf(key, sizeof key, "%s%08llu", prefix, (unsigned long long)i);
	memcpy(value, &i, sizeof i); /* values differ */
	put.key.data = (uint8_t *)key;
	put.key.len = strlen(key);
	put.value.data = value;
	put.value.len = value_len;
	req.request_id = i + 1;
	req.deadline_ms = 60000;
	req.op_case = RAFTD__CLIENT_REQUEST__OP_PUT;
	req.put = &put;
	return rd_frame_write_fd(fd, buf, raftd__client_request__pack(&req, buf));
}

/* Read one answer: 0 when it is OK. */
static int read_answer(const char *prog, int fd)
{
	uint8_t *in;
	size_t inlen;
	Raftd__ClientResponse *r;

	if (rd_frame_read_fd(fd, 1u << 20, &in, &inlen) != 0) {
		fprintf(stderr, "%s: connection lost\n", prog);
		return 1;
	}
	r = raftd__client_response__unpack(NULL, inlen, in);
	free(in);
	if (r == NULL || r->error != RAFTD__ERROR_CODE__OK) {
		fprintf(stderr, "%s: put failed: %s\n", prog,
		        r != NULL ? r->error_message : "undecodable reply");
		return 1;
	}
	raftd__client_response__free_unpacked(r, NULL);
	return 0;
}

int rd_bench_put_load(const char *prog, const char *sock, const char *prefix,
                      uint64_t total, size_t value_len, unsigned window)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	uint64_t sent = 0, done = 0;
	uint8_t *value = malloc(value_len + sizeof(uint64_t));
	uint8_t *buf = malloc(value_len + 256);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0), rc = 1;

	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", sock);
	if (value == NULL || buf == NULL) {
		fprintf(stderr, "%s: out of memory\n", prog);
		goto out;
	}
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, sock, strerror(errno));
		goto out;
	}
	memset(value, 'v', value_len);
	while (done < total) {
		while (sent < total && sent - done < window)
			if (send_put(fd, prefix, sent++, value, value_len, buf) != 0) {
				fprintf(stderr, "%s: send failed\n", prog);
				goto out;
			}
		if (read_answer(prog, fd) != 0)
			goto out;
		done++;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(value);
	return rc;
}

int rd_bench_put_load_main(int argc, char **argv, const char *prog, bool by_mb,
                           const char *prefix, size_t value_len, unsigned window)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s SOCKET %s\n", prog, by_mb ? "MB" : "COUNT");
		return 2;
	}
	uint64_t n = strtoull(argv[2], NULL, 10);
	uint64_t total = by_mb ? n * 1024 * 1024 / value_len : n;
	uint64_t t0 = rd_clock_now_ns();
	if (rd_bench_put_load(prog, argv[1], prefix, total, value_len, window) != 0)
		return 1;
	double s = (double)(rd_clock_now_ns() - t0) / 1e9;
	if (by_mb)
		printf("loaded %llu bytes in %.1f s\n",
		       (unsigned long long)(total * value_len), s);
	else
		printf("loaded %llu keys in %.1f s\n", (unsigned long long)total, s);
	return 0;
}
