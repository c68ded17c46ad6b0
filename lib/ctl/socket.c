/*
 * Unix socket server for local clients. See socket.h for the contract.
 */
#include "ctl/socket.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/err.h"
#include "util/frame.h"
#include "util/log.h"

struct rd_ctl_conn {
	struct rd_ctl_server *server; /* NULL once the server is gone */
	struct bufferevent *bev;      /* NULL once closed */
	struct rd_ctl_conn *prev, *next;
	unsigned refs; /* the connection's own + one per pending request */
	pid_t pid;
	uid_t uid;
};

struct rd_ctl_server {
	struct evconnlistener *listener;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	size_t max_frame;
	rd_ctl_frame_cb on_frame;
	void *ud;
	struct rd_ctl_conn *conns;
	struct rd_ctl_stats stats;
};

static void conn_unref(struct rd_ctl_conn *c)
{
	if (--c->refs == 0)
		free(c);
}

static void conn_close(struct rd_ctl_conn *c)
{
	struct rd_ctl_server *s = c->server;

	if (c->bev == NULL)
		return;
	bufferevent_free(c->bev);
	c->bev = NULL;
	if (s != NULL) {
		if (c->prev != NULL)
			c->prev->next = c->next;
		else
			s->conns = c->next;
		if (c->next != NULL)
			c->next->prev = c->prev;
		s->stats.open--;
	}
	c->server = NULL;
	conn_unref(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct rd_ctl_conn *c = arg;
	struct rd_ctl_server *s = c->server;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint32_t len;
	int rv;

	while ((rv = rd_frame_peek(in, s->max_frame, &len)) == 0) {
		const uint8_t *frame;
		bool alive;

		evbuffer_drain(in, RD_FRAME_HEADER);
		frame = evbuffer_pullup(in, len);
		s->stats.frames++;
		/* One reference for the handler, one to keep `c` valid across
		 * the call even if the handler replies and the peer is gone. */
		c->refs += 2;
		s->on_frame(s->ud, c, frame, len);
		alive = c->bev != NULL;
		if (alive)
			evbuffer_drain(in, len);
		conn_unref(c);
		if (!alive)
			return;
	}
	if (c->bev != NULL && rv == RD_ETOOBIG) {
		s->stats.oversized++;
		rd_log_warn("ctl: request frame over %zu bytes, closing pid=%d",
		            s->max_frame, (int)c->pid);
		conn_close(c);
	}
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		conn_close(arg);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
	struct rd_ctl_server *s = arg;
	struct rd_ctl_conn *c;
	struct ucred cred;
	socklen_t clen = sizeof cred;

	(void)l, (void)sa, (void)salen;
	c = calloc(1, sizeof *c);
	if (c == NULL) {
		close(fd);
		return;
	}
	c->bev =
	    bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		close(fd);
		free(c);
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0) {
		c->pid = cred.pid;
		c->uid = cred.uid;
		rd_log_debug("ctl: client connected pid=%d uid=%u gid=%u", (int)cred.pid,
		             (unsigned)cred.uid, (unsigned)cred.gid);
	}
	c->server = s;
	c->refs = 1;
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	s->stats.accepted++;
	s->stats.open++;
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* Is someone accepting on `path`? */
static bool socket_is_live(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool live;

	if (fd < 0)
		return false;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	live = connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0;
	close(fd);
	return live;
}

int rd_ctl_server_start(struct event_base *base, const char *path, mode_t mode,
                        size_t max_frame, rd_ctl_frame_cb on_frame, void *ud,
                        struct rd_ctl_server **out, char *msg)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct rd_ctl_server *s;
	struct stat st;
	int fd, rv;

	if (strlen(path) >= sizeof sun.sun_path)
		return rd_errorf(msg, RD_EINVAL, "socket path '%s' is too long", path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return rd_errorf(msg, RD_EEXIST, "%s exists and is not a socket",
			                 path);
		if (socket_is_live(path))
			return rd_errorf(msg, RD_EEXIST,
			                 "%s is in use: another raftd is running", path);
		rd_log_notice("ctl: replacing stale socket file path=%s", path);
		unlink(path);
	}
	s = calloc(1, sizeof *s);
	if (s == NULL)
		return rd_errorf(msg, RD_ENOMEM, "out of memory");
	memcpy(s->path, path, strlen(path) + 1);
	memcpy(sun.sun_path, path, strlen(path) + 1);
	s->max_frame = max_frame;
	s->on_frame = on_frame;
	s->ud = ud;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		rv = rd_errorf(msg, RD_EIO, "socket: %s", strerror(errno));
		goto err_after_alloc;
	}
	/* Create the file with no permissions at all, then open it up to
	 * `mode`, so that it is never briefly wider than configured. */
	mode_t old = umask(0777);
	rv = bind(fd, (struct sockaddr *)&sun, sizeof sun);
	umask(old);
	if (rv != 0) {
		rv = rd_errorf(msg, RD_EIO, "bind %s: %s", path, strerror(errno));
		goto err_after_socket;
	}
	if (chmod(path, mode) != 0) {
		rv = rd_errorf(msg, RD_EIO, "chmod %s: %s", path, strerror(errno));
		goto err_after_bind;
	}
	s->listener = evconnlistener_new(
	    base, on_accept, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 128, fd);
	if (s->listener == NULL) {
		rv = rd_errorf(msg, RD_EIO, "listen %s: %s", path, strerror(errno));
		goto err_after_bind;
	}
	*out = s;
	return 0;

err_after_bind:
	unlink(path);
err_after_socket:
	close(fd);
err_after_alloc:
	free(s);
	return rv;
}

void rd_ctl_server_stop_accepting(struct rd_ctl_server *s)
{
	if (s->listener != NULL) {
		evconnlistener_free(s->listener);
		s->listener = NULL;
		unlink(s->path);
	}
}

void rd_ctl_server_free(struct rd_ctl_server *s)
{
	if (s == NULL)
		return;
	rd_ctl_server_stop_accepting(s);
	while (s->conns != NULL) {
		/* Best effort: hand replies already queued (the answer to
		 * `raftctl shutdown`) to the kernel before closing. */
		struct bufferevent *bev = s->conns->bev;
		evbuffer_write(bufferevent_get_output(bev), bufferevent_getfd(bev));
		conn_close(s->conns);
	}
	free(s);
}

const struct rd_ctl_stats *rd_ctl_server_stats(const struct rd_ctl_server *s)
{
	return &s->stats;
}

void rd_ctl_reply(struct rd_ctl_conn *c, const uint8_t *buf, size_t len)
{
	if (c->bev != NULL) {
		uint8_t hdr[RD_FRAME_HEADER];
		rd_frame_header(hdr, (uint32_t)len);
		bufferevent_write(c->bev, hdr, sizeof hdr);
		bufferevent_write(c->bev, buf, len);
	}
	conn_unref(c);
}

void rd_ctl_retain(struct rd_ctl_conn *c)
{
	c->refs++;
}

void rd_ctl_release(struct rd_ctl_conn *c)
{
	conn_unref(c);
}

pid_t rd_ctl_conn_pid(const struct rd_ctl_conn *c)
{
	return c->pid;
}

uid_t rd_ctl_conn_uid(const struct rd_ctl_conn *c)
{
	return c->uid;
}
