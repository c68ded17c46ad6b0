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

#include "ctl/request.h"
#include "util/err.h"
#include "util/frame.h"
#include "util/list.h"
#include "util/log.h"

struct rd_ctl_conn {
	struct rd_ctl_server *server; /* NULL once the server is gone */
	struct bufferevent *bev;      /* NULL once closed */
	struct rd_ctl_conn *prev, *next;
	unsigned refs;         /* the connection's own + one per pending request */
	unsigned inflight;     /* requests handed to on_frame, not yet answered */
	bool paused;           /* reading stopped: output over the high-water mark */
	bool wrote;            /* a write request was logged with our uid */
	struct event *partial; /* a partial frame must complete before it fires */
	uint64_t frames;       /* frames read so far (progress, for `partial`) */
	uint64_t frames_at_arm;
	const struct rd_ctl_stream_ops *stream; /* a streaming handler's watch */
	void *stream_ud;
	pid_t pid;
	uid_t uid;
	rd_ctl_close_cb on_close; /* long-lived users (rd_ctl_conn_on_close) */
	void *close_arg;
};

struct rd_ctl_server {
	struct event_base *base;
	struct evconnlistener *listener;
	struct event *relisten; /* re-enables accepting after EMFILE */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	size_t max_frame;
	struct rd_ctl_limits lim;
	rd_ctl_frame_cb on_frame;
	void *ud;
	struct rd_ctl_conn *conns;
	struct rd_ctl_stats stats;
	uint64_t log_sec; /* rate limit of refusal warnings: one a second */
};

static bool log_ok(struct rd_ctl_server *s)
{
	struct timeval tv;

	event_base_gettimeofday_cached(s->base, &tv);
	if ((uint64_t)tv.tv_sec == s->log_sec)
		return false;
	s->log_sec = (uint64_t)tv.tv_sec;
	return true;
}

static void conn_unref(struct rd_ctl_conn *c)
{
	if (--c->refs == 0)
		free(c);
}

/* Tell a waiting producer that the output drained or the connection is
 * gone. */
static void conn_close(struct rd_ctl_conn *c)
{
	struct rd_ctl_server *s = c->server;

	if (c->bev == NULL)
		return;
	bufferevent_free(c->bev);
	c->bev = NULL;
	if (c->partial != NULL) {
		event_free(c->partial);
		c->partial = NULL;
	}
	if (s != NULL) {
		RD_LIST_UNLINK(s->conns, c, prev, next);
		s->stats.open--;
	}
	c->server = NULL;
	if (c->stream != NULL) {
		const struct rd_ctl_stream_ops *ops = c->stream;
		c->stream = NULL;
		c->refs++; /* `closed` may drop the handler's references */
		ops->closed(c->stream_ud, c);
		c->refs--;
	}
	if (c->on_close != NULL) {
		/* The connection's own reference keeps `c` valid through it. */
		rd_ctl_close_cb cb = c->on_close;
		c->on_close = NULL;
		cb(c->close_arg, c);
	}
	conn_unref(c);
}

static bool over_high_water(const struct rd_ctl_conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev)) >
	       c->server->lim.high_water;
}

/* Stop reading until the client has read its answers (write_cb). */
static void pause_reading(struct rd_ctl_conn *c)
{
	if (c->paused)
		return;
	c->paused = true;
	c->server->stats.paused++;
	bufferevent_disable(c->bev, EV_READ);
}

/* Answer BUSY without handing the request on: too many in flight. */
static void reply_busy(struct rd_ctl_conn *c, const uint8_t *frame, size_t len)
{
	Raftd__ClientRequest *req = NULL;
	uint64_t id = 0;
	char msg[RD_ERRMSG_SIZE];
	uint8_t hdr[RD_FRAME_HEADER], *buf;
	size_t n;

	if (rd_ctl_request_decode(frame, len, &req, msg) == 0) {
		id = req->request_id;
		rd_ctl_request_free(req);
	}
	buf = rd_ctl_error_response(id, RAFTD__ERROR_CODE__BUSY,
	                            "too many requests in flight on this connection", &n);
	if (buf == NULL)
		return;
	rd_frame_header(hdr, (uint32_t)n);
	bufferevent_write(c->bev, hdr, sizeof hdr);
	bufferevent_write(c->bev, buf, n);
	free(buf);
	c->server->stats.busy++;
}

/* A partial frame is waiting: it must complete (or another frame must) within
 * partial_timeout_ms, whatever the number of bytes dribbling in. */
static void arm_partial(struct rd_ctl_conn *c)
{
	struct timeval tv;
	unsigned ms = c->server->lim.partial_timeout_ms;

	if (evbuffer_get_length(bufferevent_get_input(c->bev)) == 0) {
		if (c->partial != NULL)
			evtimer_del(c->partial);
		return;
	}
	if (c->partial == NULL || evtimer_pending(c->partial, NULL))
		return;
	c->frames_at_arm = c->frames;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(c->partial, &tv);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct rd_ctl_conn *c = arg;
	struct rd_ctl_server *s = c->server;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint32_t len;
	int rv = RD_EAGAIN;

	while (!c->paused && (rv = rd_frame_peek(in, s->max_frame, &len)) == 0) {
		const uint8_t *frame;
		bool alive;

		evbuffer_drain(in, RD_FRAME_HEADER);
		frame = evbuffer_pullup(in, len);
		s->stats.frames++;
		c->frames++;
		if (c->inflight >= s->lim.max_inflight) {
			reply_busy(c, frame, len);
			evbuffer_drain(in, len);
		} else {
			/* One reference for the handler, one to keep `c` valid
			 * across the call even if the handler replies and the
			 * peer is gone. */
			c->refs += 2;
			c->inflight++;
			s->on_frame(s->ud, c, frame, len);
			alive = c->bev != NULL;
			if (alive)
				evbuffer_drain(in, len);
			conn_unref(c);
			if (!alive)
				return;
		}
		if (over_high_water(c))
			pause_reading(c);
	}
	if (rv == RD_ETOOBIG) {
		s->stats.oversized++;
		rd_log_warn("ctl: request frame over %zu bytes, closing pid=%d uid=%u",
		            s->max_frame, (int)c->pid, (unsigned)c->uid);
		conn_close(c);
		return;
	}
	arm_partial(c);
}

static void on_partial_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct rd_ctl_conn *c = arg;
	struct rd_ctl_server *s = c->server;

	(void)fd, (void)what;
	if (c->bev == NULL || s == NULL)
		return;
	if (c->paused || c->frames != c->frames_at_arm) {
		/* Progress, or we are the ones not reading: look again later. */
		arm_partial(c);
		return;
	}
	s->stats.timeouts++;
	if (log_ok(s))
		rd_log_warn("ctl: partial request frame not completed within %u ms, "
		            "closing pid=%d uid=%u",
		            s->lim.partial_timeout_ms, (int)c->pid, (unsigned)c->uid);
	conn_close(c);
}

/* The output drained to the low-water mark (half the high one): read again. */
static void on_write(struct bufferevent *bev, void *arg)
{
	struct rd_ctl_conn *c = arg;

	if (c->stream != NULL && c->server != NULL) {
		c->refs++;
		c->stream->drained(c->stream_ud, c);
		bool gone = c->bev == NULL;
		conn_unref(c);
		if (gone)
			return;
	}
	if (!c->paused || c->server == NULL)
		return;
	c->paused = false;
	bufferevent_enable(bev, EV_READ);
	on_read(bev, c); /* frames already buffered */
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
	if (s->stats.open >= s->lim.max_conns) {
		s->stats.refused++;
		if (log_ok(s))
			rd_log_warn("ctl: connection refused: %u open (max_connections)",
			            s->lim.max_conns);
		close(fd);
		return;
	}
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
	c->partial = evtimer_new(s->base, on_partial_timeout, c);
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
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, s->lim.high_water / 2, 0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void on_relisten(evutil_socket_t fd, short what, void *arg)
{
	struct rd_ctl_server *s = arg;

	(void)fd, (void)what;
	if (s->listener != NULL)
		evconnlistener_enable(s->listener);
}

/* accept() failed. Out of descriptors (EMFILE, ENFILE) or memory, the
 * pending connection stays in the backlog and the socket stays readable:
 * without a pause the loop would spin on it. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
	struct rd_ctl_server *s = arg;
	int e = EVUTIL_SOCKET_ERROR();
	struct timeval tv = {0, 100 * 1000};

	s->stats.accept_errors++;
	if (log_ok(s))
		rd_log_warn("ctl: accept failed, pausing for 100 ms: %s", strerror(e));
	evconnlistener_disable(l);
	evtimer_add(s->relisten, &tv);
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
	s->base = base;
	s->max_frame = max_frame;
	rd_ctl_limits_default(&s->lim);
	s->relisten = evtimer_new(base, on_relisten, s);
	if (s->relisten == NULL) {
		free(s);
		return rd_errorf(msg, RD_ENOMEM, "out of memory");
	}
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
	evconnlistener_set_error_cb(s->listener, on_accept_error);
	*out = s;
	return 0;

err_after_bind:
	unlink(path);
err_after_socket:
	close(fd);
err_after_alloc:
	event_free(s->relisten);
	free(s);
	return rv;
}

void rd_ctl_limits_default(struct rd_ctl_limits *l)
{
	l->max_conns = 64;
	l->max_inflight = 64;
	l->high_water = 4u << 20;
	l->partial_timeout_ms = 10000;
}

void rd_ctl_server_set_limits(struct rd_ctl_server *s, const struct rd_ctl_limits *l)
{
	s->lim = *l;
	for (struct rd_ctl_conn *c = s->conns; c != NULL; c = c->next)
		bufferevent_setwatermark(c->bev, EV_WRITE, s->lim.high_water / 2, 0);
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
		struct evbuffer *out = bufferevent_get_output(bev);
		/* A bufferevent freezes the front of its output (only it
		 * drains it): thaw it to write here. */
		evbuffer_unfreeze(out, 1);
		evbuffer_write(out, bufferevent_getfd(bev));
		conn_close(s->conns);
	}
	event_free(s->relisten);
	free(s);
}

const struct rd_ctl_stats *rd_ctl_server_stats(const struct rd_ctl_server *s)
{
	return &s->stats;
}

void rd_ctl_reply(struct rd_ctl_conn *c, const uint8_t *buf, size_t len)
{
	if (c->inflight > 0)
		c->inflight--;
	if (c->bev != NULL) {
		uint8_t hdr[RD_FRAME_HEADER];
		rd_frame_header(hdr, (uint32_t)len);
		bufferevent_write(c->bev, hdr, sizeof hdr);
		bufferevent_write(c->bev, buf, len);
		if (c->server != NULL && over_high_water(c))
			pause_reading(c);
	}
	conn_unref(c);
}

void rd_ctl_stream_watch(struct rd_ctl_conn *c, const struct rd_ctl_stream_ops *ops,
                         void *ud)
{
	c->stream = c->bev != NULL ? ops : NULL;
	c->stream_ud = ud;
}

size_t rd_ctl_unsent(const struct rd_ctl_conn *c)
{
	return c->bev != NULL ? evbuffer_get_length(bufferevent_get_output(c->bev)) : 0;
}

size_t rd_ctl_high_water(const struct rd_ctl_conn *c)
{
	return c->server != NULL ? c->server->lim.high_water : 0;
}

bool rd_ctl_conn_open(const struct rd_ctl_conn *c)
{
	return c->bev != NULL;
}

void rd_ctl_conn_close(struct rd_ctl_conn *c)
{
	conn_close(c);
}

void rd_ctl_retain(struct rd_ctl_conn *c)
{
	c->refs++;
	c->inflight++;
}

void rd_ctl_release(struct rd_ctl_conn *c)
{
	if (c->inflight > 0)
		c->inflight--;
	conn_unref(c);
}

bool rd_ctl_send(struct rd_ctl_conn *c, const uint8_t *buf, size_t len)
{
	uint8_t hdr[RD_FRAME_HEADER];

	if (c->bev == NULL)
		return false;
	rd_frame_header(hdr, (uint32_t)len);
	bufferevent_write(c->bev, hdr, sizeof hdr);
	bufferevent_write(c->bev, buf, len);
	/* No pause here: the peer's answers to these frames must stay
	 * readable; the producer checks rd_ctl_conn_writable instead. */
	return true;
}

bool rd_ctl_conn_writable(const struct rd_ctl_conn *c)
{
	return c->bev != NULL && c->server != NULL && !over_high_water(c);
}

void rd_ctl_conn_on_close(struct rd_ctl_conn *c, rd_ctl_close_cb cb, void *arg)
{
	c->on_close = cb;
	c->close_arg = arg;
}

bool rd_ctl_conn_first_write(struct rd_ctl_conn *c)
{
	bool first = !c->wrote;

	c->wrote = true;
	return first;
}

pid_t rd_ctl_conn_pid(const struct rd_ctl_conn *c)
{
	return c->pid;
}

uid_t rd_ctl_conn_uid(const struct rd_ctl_conn *c)
{
	return c->uid;
}
