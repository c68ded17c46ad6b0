/*
 * Admin HTTP server on evhttp.
 *
 * Happy path: evhttp accepts on a listener bound to [admin] listen, parses
 * one request, on_request routes it by exact path, the handler asks the
 * node through rd_admin_ops and answers with a complete body and an
 * explicit Content-Type. Nothing is kept between requests.
 *
 * Failure modes: a bind failure is returned to the caller (the node then
 * refuses to start, like any other bad listen address); a callback that
 * fails turns into 500 with the error's name; malformed HTTP, oversized
 * headers or an idle client are handled inside evhttp (400 or a closed
 * connection) and never reach the node. Every other method than GET and
 * HEAD is allowed through evhttp on purpose so that it reaches on_request
 * and gets a proper 405 with an Allow header instead of evhttp's 501.
 */
#include "ctl/admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <inttypes.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "util/clock.h"
#include "util/err.h"
#include "util/json.h"
#include "util/log.h"

/* Idle admin clients are dropped after this many seconds (evhttp's timer,
 * restarted by every byte; the whole-connection limit is opts.timeout_ms). */
#define ADMIN_TIMEOUT_SECS 10
#define ADMIN_MAX_HEADERS  8192
#define ADMIN_READ_HIGH    (64u << 10) /* input buffered per connection */
#define ADMIN_SWEEP_MS     100
#define ADMIN_MAX_BODY     1024

#define CT_TEXT "text/plain; charset=utf-8"
#define CT_JSON "application/json"
/* The content type Prometheus expects for the text format. */
#define CT_PROMETHEUS "text/plain; version=0.0.4; charset=utf-8"

/* One accepted connection. We create its bufferevent (evhttp_set_bevcb)
 * and hold a reference on it, so that it stays valid after evhttp freed it
 * (evhttp then clears its callbacks, which is how we notice). */
struct admin_conn {
	struct bufferevent *bev;
	uint64_t deadline_ns;
	struct admin_conn *next;
};

struct rd_admin {
	struct evhttp *http;
	struct evconnlistener *listener;
	const struct rd_admin_ops *ops;
	void *ud;
	struct rd_admin_opts opts;
	uint64_t started_ns;
	uint16_t port;
	struct admin_conn *conns;
	unsigned n_conns;
	bool paused; /* accepting stopped at max_conns */
	struct event *sweep;
	uint64_t closed_slow; /* connections closed at their deadline */
};

/* The default clock: util/clock.h's, behind the rd_admin_clock_fn shape. */
static uint64_t monotonic_ns(void *unused)
{
	(void)unused;
	return rd_clock_now_ns();
}

static uint64_t now_ns(const struct rd_admin *a)
{
	return a->opts.clock(a->opts.clock_ud);
}

static const char *reason_phrase(int code)
{
	switch (code) {
	case 200:
		return "OK";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	}
	return NULL;
}

/* Send `body` (may be NULL for an empty one) with `code`. */
static void reply(struct evhttp_request *req, int code, const char *ctype,
                  struct evbuffer *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Content-Type", ctype);
	/* Probes and scrapes must see the current state, never a cached one. */
	evhttp_add_header(h, "Cache-Control", "no-store");
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
		/* evhttp would send the body after the headers of a HEAD answer:
		 * announce its length (RFC 9110 section 8.6) and send none. */
		char len[24];
		snprintf(len, sizeof len, "%zu",
		         body != NULL ? evbuffer_get_length(body) : 0);
		evhttp_add_header(h, "Content-Length", len);
		evhttp_send_reply(req, code, reason_phrase(code), NULL);
		return;
	}
	evhttp_send_reply(req, code, reason_phrase(code), body);
}

static void reply_text(struct evhttp_request *req, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reply_text(struct evhttp_request *req, int code, const char *fmt, ...)
{
	struct evbuffer *body = evbuffer_new();
	va_list ap;

	if (body == NULL) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	va_start(ap, fmt);
	evbuffer_add_vprintf(body, fmt, ap);
	va_end(ap);
	reply(req, code, CT_TEXT, body);
	evbuffer_free(body);
}

/* Liveness is progress: it fails when no tick completed for
 * RD_ADMIN_LIVEZ_TICKS intervals, or a storage write has been outstanding
 * that long, so that a supervisor restarts a node whose loop turns but no
 * longer makes progress. Before the first tick the server's start time
 * stands in for it. */
static void serve_livez(struct rd_admin *a, struct evhttp_request *req)
{
	uint64_t last = a->ops->last_tick_ns(a->ud);
	uint64_t ref = last != 0 ? last : a->started_ns;
	uint64_t now = now_ns(a);
	uint64_t limit = RD_ADMIN_LIVEZ_TICKS * a->opts.tick_interval_ns;

	uint64_t since = a->ops->write_outstanding_since != NULL
	                     ? a->ops->write_outstanding_since(a->ud)
	                     : 0;

	if (now > ref && now - ref > limit) {
		reply_text(req, 503,
		           "stalled: no tick completed for %" PRIu64 " ms (limit %" PRIu64
		           " ms)\n",
		           (now - ref) / 1000000u, limit / 1000000u);
		return;
	}
	if (since != 0 && now > since && now - since > limit) {
		reply_text(req, 503,
		           "stalled: a storage write has been outstanding for %" PRIu64
		           " ms (limit %" PRIu64 " ms)\n",
		           (now - since) / 1000000u, limit / 1000000u);
		return;
	}
	reply_text(req, 200, "ok\n");
}

static void serve_readyz(struct rd_admin *a, struct evhttp_request *req)
{
	const char *reason = NULL;

	if (a->ops->ready(a->ud, &reason)) {
		reply_text(req, 200, "ready\n");
		return;
	}
	reply_text(req, 503, "not ready: %s\n", reason != NULL ? reason : "not ready");
}

static bool host_ok(struct evhttp_request *req);

/* /status and /metrics: the node writes the whole body; a failure discards
 * what it wrote so that a client never parses half a document. */
static void serve_document(struct rd_admin *a, struct evhttp_request *req,
                           int (*write)(void *, struct evbuffer *), const char *ctype)
{
	struct evbuffer *body = evbuffer_new();
	int rv;

	if (body == NULL) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	rv = write(a->ud, body);
	if (rv != 0) {
		evbuffer_free(body);
		reply_text(req, 500, "error: %s (%s)\n", rd_strerror(rv), rd_errname(rv));
		return;
	}
	reply(req, 200, ctype, body);
	evbuffer_free(body);
}

static void serve_status(struct rd_admin *a, struct evhttp_request *req)
{
	if (!host_ok(req)) {
		reply_text(req, 403,
		           "forbidden: Host must be localhost or an IP address\n");
		return;
	}
	serve_document(a, req, a->ops->write_status_json, CT_JSON);
}

static void serve_metrics(struct rd_admin *a, struct evhttp_request *req)
{
	serve_document(a, req, a->ops->write_metrics, CT_PROMETHEUS);
}

static const struct {
	const char *path;
	void (*serve)(struct rd_admin *, struct evhttp_request *);
} routes[] = {
    {"/livez", serve_livez},
    {"/readyz", serve_readyz},
    {"/status", serve_status},
    {"/metrics", serve_metrics},
};

static void on_request(struct evhttp_request *req, void *arg)
{
	struct rd_admin *a = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type m = evhttp_request_get_command(req);

	if (path == NULL)
		path = "";
	for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
		if (strcmp(path, routes[i].path) != 0)
			continue;
		if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
			/* RFC 9110 section 15.5.6: a 405 lists the allowed methods. */
			evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
			                  "GET, HEAD");
			reply_text(req, 405, "method not allowed: use GET\n");
			return;
		}
		routes[i].serve(a, req);
		return;
	}
	reply_text(req, 404, "not found; try /livez /readyz /status /metrics\n");
}

static bool gone(struct bufferevent *bev)
{
	bufferevent_event_cb ecb;

	bufferevent_getcb(bev, NULL, NULL, &ecb, NULL);
	return ecb == NULL;
}

/* Drop connections evhttp has freed; end those past their deadline by
 * shutting the socket down (evhttp then sees EOF and frees its side). */
static void sweep(struct rd_admin *a)
{
	uint64_t now = now_ns(a);

	for (struct admin_conn **pp = &a->conns, *c; (c = *pp) != NULL;) {
		if (gone(c->bev)) {
			*pp = c->next;
			bufferevent_decref(c->bev);
			free(c);
			a->n_conns--;
			continue;
		}
		if (now >= c->deadline_ns) {
			int fd = (int)bufferevent_getfd(c->bev);
			if (fd >= 0 && shutdown(fd, SHUT_RDWR) == 0)
				a->closed_slow++;
			c->deadline_ns = UINT64_MAX; /* once */
		}
		pp = &c->next;
	}
	if (a->paused && a->n_conns < a->opts.max_conns) {
		a->paused = false;
		evconnlistener_enable(a->listener);
	}
	if (a->conns != NULL) {
		struct timeval tv = {0, ADMIN_SWEEP_MS * 1000};
		evtimer_add(a->sweep, &tv);
	}
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	sweep(arg);
}

static struct bufferevent *new_conn(struct event_base *base, void *arg)
{
	struct rd_admin *a = arg;
	struct admin_conn *c = calloc(1, sizeof *c);
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);

	if (c == NULL || bev == NULL) {
		free(c);
		return bev; /* untracked: still served, still timed out by evhttp */
	}
	bufferevent_incref(bev);
	bufferevent_setwatermark(bev, EV_READ, 0, ADMIN_READ_HIGH);
	c->bev = bev;
	c->deadline_ns = now_ns(a) + (uint64_t)a->opts.timeout_ms * 1000000u;
	c->next = a->conns;
	a->conns = c;
	if (++a->n_conns >= a->opts.max_conns && !a->paused) {
		a->paused = true;
		evconnlistener_disable(a->listener);
	}
	if (!evtimer_pending(a->sweep, NULL)) {
		struct timeval tv = {0, ADMIN_SWEEP_MS * 1000};
		evtimer_add(a->sweep, &tv);
	}
	return bev;
}

/* Host header of a request to /status: absent, "localhost" or an IP literal,
 * with or without a port. */
static bool host_ok(struct evhttp_request *req)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Host");
	char name[256];
	size_t n;
	struct in6_addr a6;
	struct in_addr a4;

	if (h == NULL)
		return true;
	if (h[0] == '[') {
		const char *end = strchr(h, ']');
		n = end != NULL ? (size_t)(end - h - 1) : 0;
		if (end == NULL || n >= sizeof name || (end[1] != '\0' && end[1] != ':'))
			return false;
		memcpy(name, h + 1, n);
		name[n] = '\0';
		return inet_pton(AF_INET6, name, &a6) == 1;
	}
	n = strcspn(h, ":");
	if (n >= sizeof name)
		return false;
	memcpy(name, h, n);
	name[n] = '\0';
	return strcasecmp(name, "localhost") == 0 || inet_pton(AF_INET, name, &a4) == 1;
}

static bool is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)(const void *)sa)
		                  ->sin_addr.s_addr) >>
		        24) == 127;
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(
		    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr);
	return false;
}

static uint16_t bound_port(struct evconnlistener *l)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;

	if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&ss, &len) != 0)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

int rd_admin_start(struct event_base *base, const struct sockaddr *addr,
                   socklen_t addrlen, const struct rd_admin_ops *ops, void *ud,
                   const struct rd_admin_opts *opts, struct rd_admin **out, char *msg)
{
	struct rd_admin *a;
	struct evconnlistener *l;
	int rv;

	a = calloc(1, sizeof *a);
	if (a == NULL)
		return rd_errorf(msg, RD_ENOMEM, "admin server: out of memory");
	a->ops = ops;
	a->ud = ud;
	a->opts = *opts;
	if (a->opts.clock == NULL)
		a->opts.clock = monotonic_ns;
	if (a->opts.max_conns == 0)
		a->opts.max_conns = RD_ADMIN_MAX_CONNS;
	if (a->opts.timeout_ms == 0)
		a->opts.timeout_ms = RD_ADMIN_TIMEOUT_MS;
	a->started_ns = now_ns(a);
	a->sweep = evtimer_new(base, on_sweep, a);
	if (a->sweep == NULL) {
		free(a);
		return rd_errorf(msg, RD_ENOMEM, "admin server: out of memory");
	}

	a->http = evhttp_new(base);
	if (a->http == NULL) {
		rv = rd_errorf(msg, RD_ENOMEM, "admin server: cannot create evhttp");
		goto err_after_alloc;
	}
	evhttp_set_timeout(a->http, ADMIN_TIMEOUT_SECS);
	evhttp_set_max_headers_size(a->http, ADMIN_MAX_HEADERS);
	evhttp_set_max_body_size(a->http, ADMIN_MAX_BODY);
	evhttp_set_allowed_methods(
	    a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
	                 EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
	                 EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(a->http, on_request, a);
	evhttp_set_bevcb(a->http, new_conn, a);

	l = evconnlistener_new_bind(base, NULL, NULL,
	                            LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE |
	                                LEV_OPT_CLOSE_ON_EXEC,
	                            -1, addr, (int)addrlen);
	if (l == NULL) {
		rv = rd_errorf(msg, RD_EIO, "admin server: cannot listen: %s",
		               strerror(errno));
		goto err_after_http;
	}
	/* From here the listener belongs to the evhttp (freed with it). */
	if (evhttp_bind_listener(a->http, l) == NULL) {
		evconnlistener_free(l);
		rv =
		    rd_errorf(msg, RD_ENOMEM, "admin server: cannot attach the listener");
		goto err_after_http;
	}
	a->listener = l;
	a->port = bound_port(l);
	if (!is_loopback(addr))
		rd_log_warn(
		    "admin: listening on a non-loopback address (port %u): /metrics "
		    "and /status are readable by anyone who can reach it",
		    (unsigned)a->port);
	*out = a;
	return 0;

err_after_http:
	evhttp_free(a->http);
err_after_alloc:
	event_free(a->sweep);
	free(a);
	return rv;
}

uint16_t rd_admin_port(const struct rd_admin *a)
{
	return a->port;
}

void rd_admin_stop(struct rd_admin *a)
{
	if (a == NULL)
		return;
	evhttp_free(a->http);
	while (a->conns != NULL) {
		struct admin_conn *c = a->conns;
		a->conns = c->next;
		bufferevent_decref(c->bev);
		free(c);
	}
	event_free(a->sweep);
	free(a);
}

static void put_evbuffer(void *ctx, const char *p, size_t n)
{
	evbuffer_add(ctx, p, n);
}

void rd_admin_json_string(struct evbuffer *out, const char *s)
{
	if (s == NULL) {
		evbuffer_add(out, "null", 4);
		return;
	}
	rd_json_escape(s, strlen(s), RD_JSON_UTF8, put_evbuffer, out);
}
