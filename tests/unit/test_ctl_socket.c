/* The local client socket: framing, replies, socket-file rules (stale file
 * replaced, live one refused, mode applied) and oversized frames. */
#include <criterion/criterion.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl/socket.h"
#include "util/err.h"
#include "util/frame.h"

static char dir[64];
static char path[128];
static struct event_base *base;

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/rd-ctl-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/raftd.sock", dir);
	base = event_base_new();
}

static void teardown(void)
{
	event_base_free(base);
	unlink(path);
	rmdir(dir);
}

/* Echo handler: replies with the request reversed. */
static void echo(void *ud, struct rd_ctl_conn *conn, const uint8_t *frame, size_t len)
{
	uint8_t out[256];
	(void)ud;
	for (size_t i = 0; i < len && i < sizeof out; i++)
		out[i] = frame[len - 1 - i];
	rd_ctl_reply(conn, out, len);
}

static int client(void)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	strcpy(sun.sun_path, path);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sun, sizeof sun), 0, "%s",
	             strerror(errno));
	return fd;
}

static void spin(void)
{
	for (int i = 0; i < 20; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

Test(ctl_socket, pipelined_requests_get_replies_in_order, .init = setup, .fini = teardown)
{
	struct rd_ctl_server *s;
	char msg[RD_ERRMSG_SIZE];
	uint8_t *buf;
	size_t len;
	struct stat st;

	cr_assert_eq(rd_ctl_server_start(base, path, 0600, 1024, echo, NULL, &s, msg), 0,
	             "%s", msg);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
	int fd = client();
	cr_assert_eq(rd_frame_write_fd(fd, (const uint8_t *)"abc", 3), 0);
	cr_assert_eq(rd_frame_write_fd(fd, (const uint8_t *)"hello", 5), 0);
	spin();
	cr_assert_eq(rd_frame_read_fd(fd, 1024, &buf, &len), 0);
	cr_assert_eq(len, 3);
	cr_assert_eq(memcmp(buf, "cba", 3), 0);
	free(buf);
	cr_assert_eq(rd_frame_read_fd(fd, 1024, &buf, &len), 0);
	cr_assert_eq(len, 5);
	cr_assert_eq(memcmp(buf, "olleh", 5), 0);
	free(buf);
	cr_assert_eq(rd_ctl_server_stats(s)->frames, 2);
	close(fd);
	rd_ctl_server_free(s);
	cr_assert_eq(access(path, F_OK), -1, "socket file removed");
}

Test(ctl_socket, oversized_frame_closes_connection, .init = setup, .fini = teardown)
{
	struct rd_ctl_server *s;
	char msg[RD_ERRMSG_SIZE];
	uint8_t hdr[4], *buf;
	size_t len;

	cr_assert_eq(rd_ctl_server_start(base, path, 0600, 16, echo, NULL, &s, msg), 0);
	int fd = client();
	rd_frame_header(hdr, 1u << 30);
	cr_assert_eq(write(fd, hdr, 4), 4);
	spin();
	cr_assert_eq(rd_frame_read_fd(fd, 1024, &buf, &len), RD_ECLOSED);
	cr_assert_eq(rd_ctl_server_stats(s)->oversized, 1);
	cr_assert_eq(rd_ctl_server_stats(s)->open, 0);
	/* The server still serves others. */
	int fd2 = client();
	cr_assert_eq(rd_frame_write_fd(fd2, (const uint8_t *)"xy", 2), 0);
	spin();
	cr_assert_eq(rd_frame_read_fd(fd2, 1024, &buf, &len), 0);
	cr_assert_eq(memcmp(buf, "yx", 2), 0);
	free(buf);
	close(fd);
	close(fd2);
	rd_ctl_server_free(s);
}

Test(ctl_socket, live_socket_refused_stale_socket_replaced, .init = setup,
     .fini = teardown)
{
	struct rd_ctl_server *s, *s2;
	char msg[RD_ERRMSG_SIZE];
	int fd;
	struct sockaddr_un sun = {.sun_family = AF_UNIX};

	cr_assert_eq(rd_ctl_server_start(base, path, 0660, 16, echo, NULL, &s, msg), 0);
	cr_assert_eq(rd_ctl_server_start(base, path, 0660, 16, echo, NULL, &s2, msg),
	             RD_EEXIST);
	cr_assert(strstr(msg, "another raftd is running") != NULL, "%s", msg);
	rd_ctl_server_free(s);

	/* A socket file left behind by a crashed process: bound, never listened. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	strcpy(sun.sun_path, path);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sun, sizeof sun), 0);
	close(fd);
	cr_assert_eq(rd_ctl_server_start(base, path, 0660, 16, echo, NULL, &s, msg), 0,
	             "%s", msg);
	rd_ctl_server_free(s);
}

static struct rd_ctl_conn *held;
static void hold(void *ud, struct rd_ctl_conn *conn, const uint8_t *frame, size_t len)
{
	(void)ud, (void)frame, (void)len;
	held = conn;
}

Test(ctl_socket, reply_after_client_left_is_dropped, .init = setup, .fini = teardown)
{
	struct rd_ctl_server *s;
	char msg[RD_ERRMSG_SIZE];

	cr_assert_eq(rd_ctl_server_start(base, path, 0600, 16, hold, NULL, &s, msg), 0);
	int fd = client();
	cr_assert_eq(rd_frame_write_fd(fd, (const uint8_t *)"q", 1), 0);
	spin();
	cr_assert_not_null(held);
	close(fd);
	spin();
	cr_assert_eq(rd_ctl_server_stats(s)->open, 0);
	rd_ctl_reply(held, (const uint8_t *)"late", 4); /* must not crash (ASan) */
	rd_ctl_server_free(s);
}

/* A long-lived connection (an envelope handler): frames sent without
 * answering keep the request's reference; the close callback runs once when
 * the client goes, and the holder can then let go of its reference. */
static struct rd_ctl_conn *longlived;
static int closes;

static void on_closed(void *arg, struct rd_ctl_conn *conn)
{
	cr_assert_eq(arg, &closes);
	cr_assert_eq(conn, longlived);
	closes++;
	rd_ctl_release(conn);
}

static void keep(void *ud, struct rd_ctl_conn *conn, const uint8_t *frame, size_t len)
{
	(void)ud, (void)frame, (void)len;
	longlived = conn;
	rd_ctl_conn_on_close(conn, on_closed, &closes);
}

Test(ctl_socket, long_lived_connection_sends_frames_and_hears_its_close, .init = setup,
     .fini = teardown)
{
	struct rd_ctl_server *s;
	char msg[RD_ERRMSG_SIZE];
	uint8_t *buf;
	size_t len;

	cr_assert_eq(rd_ctl_server_start(base, path, 0600, 16, keep, NULL, &s, msg), 0);
	int fd = client();
	cr_assert_eq(rd_frame_write_fd(fd, (const uint8_t *)"h", 1), 0);
	spin();
	cr_assert_not_null(longlived);
	cr_assert(rd_ctl_conn_writable(longlived));
	cr_assert(rd_ctl_send(longlived, (const uint8_t *)"one", 3));
	cr_assert(rd_ctl_send(longlived, (const uint8_t *)"two", 3));
	spin();
	cr_assert_eq(rd_frame_read_fd(fd, 16, &buf, &len), 0);
	cr_assert(len == 3 && memcmp(buf, "one", 3) == 0);
	free(buf);
	cr_assert_eq(rd_frame_read_fd(fd, 16, &buf, &len), 0);
	cr_assert(len == 3 && memcmp(buf, "two", 3) == 0);
	free(buf);
	cr_assert_eq(closes, 0);
	close(fd);
	spin();
	cr_assert_eq(closes, 1);
	cr_assert_eq(rd_ctl_server_stats(s)->open, 0);
	rd_ctl_server_free(s);
	cr_assert_eq(closes, 1); /* once, not again when the server goes */
}
