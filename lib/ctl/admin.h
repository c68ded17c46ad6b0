/*
 * The admin HTTP server ([admin] listen, loopback by default), on libevent's
 * evhttp and the node's event base:
 *
 *   GET /livez    200 "ok" while ticks complete; 503 when no tick completed
 *                 for RD_ADMIN_LIVEZ_TICKS tick intervals, or a storage
 *                 write has been outstanding that long
 *   GET /readyz   200 "ready", or 503 with a one-line reason
 *   GET /status   200 application/json, written by the node
 *   GET /metrics  200 Prometheus text format 0.0.4, written by the node
 *   other paths   404;  methods other than GET and HEAD: 405 (Allow: GET, HEAD)
 *
 * The server knows nothing of the node's internals: everything it serves
 * comes from the callbacks in struct rd_admin_ops, called on the event
 * base's thread while a request is handled. HEAD is answered like GET
 * without a body (RFC 9110 section 9.3.2).
 *
 * Since the server runs on the same loop as the ticks, a loop that is
 * blocked entirely does not answer at all; a probe's timeout covers that
 * case, /livez covers a loop that turns but no longer ticks.
 */
#ifndef RD_CTL_ADMIN_H
#define RD_CTL_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct evbuffer;
struct rd_admin;

/* /livez fails after this many tick intervals without a completed tick. */
#define RD_ADMIN_LIVEZ_TICKS 5

struct rd_admin_ops {
	/* True when the node is ready. When not, set *reason to a short text
	 * ("no leader for the metadata group") that stays valid until the
	 * next call; NULL is answered as "not ready". */
	bool (*ready)(void *ud, const char **reason);
	/* Monotonic time (ns, same clock as rd_admin_clock_fn) at which the
	 * last tick completed; 0 when none has yet. */
	uint64_t (*last_tick_ns)(void *ud);
	/* Start time (same clock) of the storage write in progress, 0 when
	 * none is; may be NULL. /livez fails while one has been outstanding
	 * for RD_ADMIN_LIVEZ_TICKS intervals, as for a missing tick. */
	uint64_t (*write_outstanding_since)(void *ud);
	/* Append the /status JSON document to `out`. Return 0, or an RD_E*
	 * code to answer 500 (whatever was appended is discarded). */
	int (*write_status_json)(void *ud, struct evbuffer *out);
	/* Append the /metrics text to `out` (see ctl/metrics.h). Return as
	 * above. */
	int (*write_metrics)(void *ud, struct evbuffer *out);
};

/* A monotonic clock in nanoseconds. */
typedef uint64_t (*rd_admin_clock_fn)(void *clock_ud);

struct rd_admin_opts {
	uint64_t tick_interval_ns; /* the longest period of the node's tick; > 0 */
	rd_admin_clock_fn clock;   /* NULL: CLOCK_MONOTONIC */
	void *clock_ud;
	unsigned max_conns;  /* open connections; 0: RD_ADMIN_MAX_CONNS */
	unsigned timeout_ms; /* connection lifetime; 0: RD_ADMIN_TIMEOUT_MS */
};

/* Limits, so that slow or numerous clients cannot hold the server: at most
 * max_conns connections are open (beyond, new ones wait in the kernel's
 * backlog: accepting pauses); every connection is closed timeout_ms after
 * it was accepted whatever it is doing, so headers sent a byte at a time
 * cannot keep it open (evhttp's own timeout restarts with every byte).
 * /status, which names hosts and addresses, is answered only when the Host
 * header is absent, "localhost" or an IP literal (a DNS-rebinding page
 * sends its own hostname): 403 otherwise. */
#define RD_ADMIN_MAX_CONNS  16
#define RD_ADMIN_TIMEOUT_MS 5000

/* Listen on `addr` (port 0 picks a free one, see rd_admin_port) and serve on
 * `base`. `ops` and `ud` are borrowed and must outlive the server; `opts` is
 * copied. A node that has not ticked yet counts as live for
 * RD_ADMIN_LIVEZ_TICKS intervals from this call. Returns 0 and *out, or
 * RD_EIO (cannot bind: address in use, permission) / RD_ENOMEM with a
 * message naming the address. */
int rd_admin_start(struct event_base *base, const struct sockaddr *addr,
                   socklen_t addrlen, const struct rd_admin_ops *ops, void *ud,
                   const struct rd_admin_opts *opts, struct rd_admin **out, char *msg);

/* The TCP port actually bound. */
uint16_t rd_admin_port(const struct rd_admin *a);

/* Stop listening, drop open admin connections and free `a`. NULL is fine. */
void rd_admin_stop(struct rd_admin *a);

/* --- JSON for write_status_json --------------------------------------------- */

/* Append the NUL-terminated `s` to `out` as a JSON string, with its quotes,
 * escaped by util/json.h's rd_json_escape in RD_JSON_UTF8 mode (the one
 * escaper); NULL writes null. Only the evbuffer adapter lives here. */
void rd_admin_json_string(struct evbuffer *out, const char *s);

#endif
