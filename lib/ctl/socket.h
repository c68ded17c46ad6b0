/*
 * The local client socket: a Unix stream socket speaking framed protobuf
 * (proto/raftd.proto, ClientRequest / ClientResponse). This layer owns the
 * socket file, connections and framing; it hands each whole frame to the
 * `on_frame` callback and sends back whatever the handler answers, possibly
 * much later (a write is answered once it has applied).
 *
 * Happy path: accept -> read frames -> on_frame -> rd_ctl_reply (any time).
 * Failure modes: a frame longer than `max_frame` closes that connection and
 * counts it; a client that disconnects with requests still pending leaves
 * its connection object alive (as a zombie) until every pending reply has
 * been released, so handlers never touch freed memory.
 *
 * Limits (struct rd_ctl_limits), so that one local client cannot take the
 * daemon's memory or loop: past `max_conns` open connections a new one is
 * closed at once; with `max_inflight` requests of a connection unanswered,
 * further ones are answered BUSY by this layer; once a connection's unread
 * answers pass `high_water` bytes, reading from it stops until the client
 * has read them down to half of that; a partial frame that makes no
 * progress (no frame completed) for `partial_timeout_ms` closes the
 * connection; accept failing for want of descriptors pauses accepting for
 * 100 ms instead of spinning. Memory per connection is thus bounded by
 * high_water + max_inflight answers + one frame of input.
 */
#ifndef RD_CTL_SOCKET_H
#define RD_CTL_SOCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct event_base;
struct rd_ctl_server;
struct rd_ctl_conn;

/* Called with one whole request frame. `frame` is valid only during the
 * call. The handler must eventually call rd_ctl_reply or rd_ctl_release on
 * `conn` exactly once per frame it was given (it holds one reference). */
typedef void (*rd_ctl_frame_cb)(void *ud, struct rd_ctl_conn *conn, const uint8_t *frame,
                                size_t len);

struct rd_ctl_stats {
	uint64_t accepted;
	uint64_t frames;
	uint64_t oversized;     /* connections closed for a frame over max_frame */
	uint64_t open;          /* connections currently open */
	uint64_t refused;       /* connections closed at accept: max_conns */
	uint64_t busy;          /* requests answered BUSY: max_inflight */
	uint64_t paused;        /* times reading stopped at the high-water mark */
	uint64_t timeouts;      /* connections closed: partial frame stalled */
	uint64_t accept_errors; /* accept() failures (EMFILE, ...) */
};

struct rd_ctl_limits {
	unsigned max_conns;          /* open connections */
	unsigned max_inflight;       /* unanswered requests per connection */
	size_t high_water;           /* unread answer bytes before reading stops */
	unsigned partial_timeout_ms; /* a partial frame must progress within */
};

/* The defaults: 64 connections, 64 in flight, 4 MiB, 10 s. */
void rd_ctl_limits_default(struct rd_ctl_limits *l);

/* Create the socket file at `path` with permissions `mode` and listen.
 * A stale socket file (nobody accepting) is replaced; a live one is
 * RD_EEXIST ("another raftd is running"). Returns 0 or an RD_E* code with a
 * message. */
int rd_ctl_server_start(struct event_base *base, const char *path, mode_t mode,
                        size_t max_frame, rd_ctl_frame_cb on_frame, void *ud,
                        struct rd_ctl_server **out, char *msg);

/* Replace the limits (rd_ctl_limits_default until called). */
void rd_ctl_server_set_limits(struct rd_ctl_server *s, const struct rd_ctl_limits *l);

/* Stop accepting new connections (shutdown, first step). Existing ones
 * stay until rd_ctl_server_free. */
void rd_ctl_server_stop_accepting(struct rd_ctl_server *s);

/* Close every connection, remove the socket file and free the server.
 * Pending references stay valid: replies on them are dropped. */
void rd_ctl_server_free(struct rd_ctl_server *s);

/* The server's counters (accepted, frames, oversized, open), owned by `s`
 * and valid until rd_ctl_server_free; they change as the loop runs. */
const struct rd_ctl_stats *rd_ctl_server_stats(const struct rd_ctl_server *s);

/* Send one response frame on `conn` and drop the reference the handler
 * held. The bytes are copied. A reply on a closed connection is dropped. */
void rd_ctl_reply(struct rd_ctl_conn *conn, const uint8_t *buf, size_t len);

/*
 * Streamed answers (a backup: many frames for one request). rd_ctl_send
 * sends one frame and keeps the handler's reference; the last frame goes
 * with rd_ctl_reply (or rd_ctl_release). A producer keeps memory bounded
 * by sending only while rd_ctl_conn_queued is at most rd_ctl_conn_low_water,
 * and otherwise asks for a call when the client has read down to it.
 */
void rd_ctl_send(struct rd_ctl_conn *conn, const uint8_t *buf, size_t len);

/* Answer bytes queued on `conn` that the client has not read (0 once
 * closed). */
size_t rd_ctl_conn_queued(const struct rd_ctl_conn *conn);

/* Half the high-water mark: where a paused connection reads again. */
size_t rd_ctl_conn_low_water(const struct rd_ctl_conn *conn);

/* Whether `conn` is still open (a reference keeps the object, not the
 * connection). */
bool rd_ctl_conn_open(const struct rd_ctl_conn *conn);

/* Call cb(arg) once, when the queued answers of `conn` have drained to the
 * low-water mark or the connection closes; cb NULL cancels. One callback
 * per connection. */
void rd_ctl_conn_on_drain(struct rd_ctl_conn *conn, void (*cb)(void *), void *arg);

/* Take an extra reference (for a request that fans out), or drop one
 * without replying. */
void rd_ctl_retain(struct rd_ctl_conn *conn);
void rd_ctl_release(struct rd_ctl_conn *conn);

/* True the first time it is called for `conn`: lets the handler log the
 * client's uid with its first write request. */
bool rd_ctl_conn_first_write(struct rd_ctl_conn *conn);

/* The peer's credentials, from SO_PEERCRED at accept time. */
pid_t rd_ctl_conn_pid(const struct rd_ctl_conn *conn);
uid_t rd_ctl_conn_uid(const struct rd_ctl_conn *conn);

#endif
