/*
 * The node runtime's internal state, shared by the files of lib/multiraft:
 *   node.c      lifecycle, tick timer, readiness, shutdown
 *   group.c     hosting a group: restore from storage or bootstrap
 *   drive.c     one loop iteration: persist, send, apply (the ordering rule)
 *   waiter.c    requests waiting for an apply, a read index or readiness
 *   requests.c  local client requests (ClientRequest -> ClientResponse)
 *   peers.c     the transport glue: batches to peers, forwarded requests
 * Not a public interface.
 */
#ifndef RD_MULTIRAFT_NODE_INTERNAL_H
#define RD_MULTIRAFT_NODE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "multiraft/applier.h"
#include "multiraft/node.h"
#include "multiraft/routing.h"
#include "raft/raft.h"
#include "storage/storage.h"
#include "ctl/metrics.h"
#include "util/config.h"

struct event;
struct rd_ctl_server;
struct rd_ctl_conn;
struct rd_admin;
struct rd_peers;

#define RD_NODE_MAX_MEMBERS  64
#define RD_NODE_FORWARD_HOPS 3

/* The outcome of a request, whoever asked (a local client or a peer that
 * forwarded it). `code` is a Raftd__ErrorCode value. */
struct rd_result {
	int code;
	const char *message; /* static or valid during the reply call */
	uint64_t leader_hint;
	uint64_t group;
	uint64_t index;
	bool has_value;
	bool found;
	const uint8_t *value;
	size_t value_len;
};

enum rd_waiter_kind {
	RD_WAIT_PROPOSE, /* local proposal: resolved when (group, index) applies */
	RD_WAIT_APPLIED, /* forwarded proposal done remotely: wait for local apply */
	RD_WAIT_READ,    /* ReadIndex: resolved by a read state with ctx >= ours */
	RD_WAIT_FORWARD, /* waiting for a leader to forward to, or for its answer */
	RD_WAIT_READY,   /* raftctl ready --wait */
};

/* Where the answer goes. */
typedef void (*rd_reply_fn)(void *ud, uint64_t request_id, const struct rd_result *res);

struct rd_waiter {
	struct rd_waiter *next;
	enum rd_waiter_kind kind;
	uint64_t group;
	uint64_t index;
	uint64_t term;
	uint64_t ctx;
	uint64_t deadline_ns;
	rd_reply_fn reply;
	void *reply_ud;
	uint64_t request_id;
	/* Reads: the key; forwards: the command. Owned by the waiter. */
	uint8_t *data;
	size_t len;
	uint8_t op;      /* RD_OP_* below */
	uint32_t hops;   /* forwards done so far */
	bool no_forward; /* asked by a peer: answer NOT_LEADER rather than forward */
	uint64_t target; /* node forwarded to */
	/* A result computed remotely, kept until the local apply (APPLIED). */
	struct rd_result remote;
	uint8_t *remote_value;
};

enum { RD_OP_WRITE = 1, RD_OP_READ = 2, RD_OP_STALE_READ = 3 };

struct rd_waitq {
	struct rd_waiter *head, *tail;
};

struct rd_group {
	uint64_t id;
	struct rd_raft *raft;
	const struct rd_applier *applier;
	struct rd_raft_update u;
	struct rd_conf_state conf_persisted;
	uint64_t last_leader;
	bool fresh;            /* created by this start (bootstrap) */
	struct rd_waitq props; /* PROPOSE and APPLIED, ascending index */
	struct rd_waitq reads; /* READ, ascending ctx */
	uint64_t next_ctx;
	uint64_t proposals;           /* appended here as leader */
	uint64_t forwarded;           /* forwarded to the leader from here */
	struct rd_kv_result *results; /* apply results of the current update */
	size_t results_cap;
};

struct rd_member {
	uint64_t id;
	struct rd_addr addr;
};

/* Tick-loop figures, for `raftctl status` and /metrics. */
struct rd_loop_stats {
	uint64_t iterations;
	uint64_t last_iter_ns;
	uint64_t max_iter_ns;
	uint64_t ticks;
	uint64_t last_tick_ns;
	uint64_t max_tick_ns;
	uint64_t last_tick_done_ns;
	uint64_t pending_groups; /* groups with work in the last iteration */
	uint64_t proposals;
	uint64_t forwarded;
	uint64_t malformed_client;
	struct rd_metric_hist iter_hist;
	struct rd_metric_hist tick_hist;
};

struct rd_node {
	struct rd_config cfg;
	struct event_base *base;
	struct event *tick_ev;
	struct event *drain_ev;
	struct event *finish_ev;
	struct rd_ctl_server *ctl;
	struct rd_admin *admin;
	struct rd_peers *peers;
	struct rd_storage *st;
	struct rd_storage_batch *batch;

	struct rd_member members[RD_NODE_MAX_MEMBERS];
	unsigned n_members;
	struct rd_routing routing;
	struct rd_applier data_applier; /* groups 1.. */
	struct rd_applier meta_applier; /* group 0 */

	struct rd_group **groups; /* [n_slots], indexed by group id; NULL = not hosted */
	size_t n_slots;
	struct rd_group **active; /* groups with an update this iteration */

	struct rd_waitq forwards; /* FORWARD */
	struct rd_waitq ready_waiters;

	bool wake_pending;
	bool ready;
	bool ready_target_set;
	uint64_t ready_target; /* group 0 commit seen when its leader became known */
	bool stopping;
	bool watchdog;
	bool bootstrapped; /* hinted campaigns done */
	int exit_code;
	uint64_t started_ns;
	uint64_t last_slow_log_ns;
	uint64_t seed;
	struct rd_loop_stats loop;
};

/* node.c */
uint64_t rd_node_now_ns(void);
void rd_node_wake(struct rd_node *n);
struct rd_group *rd_node_group(const struct rd_node *n, uint64_t id);
void rd_node_check_ready(struct rd_node *n);

/* admin.c: the admin HTTP server's view of the node */
int rd_node_admin_start(struct rd_node *n, char *msg);
void rd_node_admin_stop(struct rd_node *n);

/* group.c */
int rd_group_open(struct rd_node *n, uint64_t id, const uint64_t *voters, size_t n_voters,
                  char *msg);
void rd_group_free(struct rd_group *g);

/* drive.c: one iteration (persist, send, apply). */
void rd_drive_iteration(struct rd_node *n);

/* waiter.c */
struct rd_waiter *rd_waiter_new(enum rd_waiter_kind kind, rd_reply_fn reply, void *ud,
                                uint64_t request_id, uint64_t deadline_ns);
void rd_waiter_finish(struct rd_waiter *w, const struct rd_result *res);
void rd_waitq_push(struct rd_waitq *q, struct rd_waiter *w);
/* Resolve every waiter of `q` whose deadline passed with TIMEOUT. */
void rd_waitq_expire(struct rd_waitq *q, uint64_t now_ns);
/* Resolve every waiter of `q` with `res`. */
void rd_waitq_fail_all(struct rd_waitq *q, const struct rd_result *res);
/* A read or write: propose / read locally, or forward. Takes ownership of w. */
void rd_node_submit(struct rd_node *n, struct rd_waiter *w);
/* Serve a linearizable or stale read of w->data in w->group now. */
void rd_node_serve_read(struct rd_node *n, struct rd_waiter *w);
/* Retry forwards that wait for a leader; called every tick. */
void rd_node_retry_forwards(struct rd_node *n);

/* status.c: status, groups and members answers. `send` packs and sends
 * the response (which the builders fill) to `conn`. */
struct Raftd__ClientResponse;
typedef void (*rd_send_resp_fn)(struct rd_ctl_conn *conn,
                                struct Raftd__ClientResponse *r);
void rd_requests_status(struct rd_node *n, struct Raftd__ClientResponse *resp,
                        rd_send_resp_fn send, struct rd_ctl_conn *conn);
void rd_requests_groups(struct rd_node *n, struct Raftd__ClientResponse *resp,
                        rd_send_resp_fn send, struct rd_ctl_conn *conn);
void rd_requests_members(struct rd_node *n, struct Raftd__ClientResponse *resp,
                         rd_send_resp_fn send, struct rd_ctl_conn *conn);
/* FNV-1a 64 over every (group, key, value) of the hosted groups, in group
 * and key order: equal on replicas that applied the same entries. */
uint64_t rd_node_state_hash(struct rd_node *n);

/* requests.c */
void rd_requests_on_frame(void *ud, struct rd_ctl_conn *conn, const uint8_t *frame,
                          size_t len);

/* peers.c */
int rd_peers_start(struct rd_node *n, char *msg);
void rd_peers_stop(struct rd_node *n);
void rd_peers_free(struct rd_node *n);
void rd_peers_queue(struct rd_node *n, const struct rd_message *m);
void rd_peers_flush(struct rd_node *n);
bool rd_peers_pending(const struct rd_node *n);
/* Forward w (a write or read) to node `to`; the answer resolves w. */
void rd_peers_forward(struct rd_node *n, struct rd_waiter *w, uint64_t to);
/* Stream group g's snapshot to `to`; reports the outcome to the core. */
void rd_peers_send_snapshot(struct rd_node *n, struct rd_group *g, uint64_t to);
/* Ping peers without an established connection (called every second). */
void rd_peers_keepalive(struct rd_node *n);
void rd_peers_reload(struct rd_node *n, const struct rd_config *cfg);
bool rd_peers_connected(const struct rd_node *n, uint64_t id, uint64_t *rtt_us);
/* Per-peer figures for /metrics (all zero for an unknown peer). */
struct rd_peer_figures {
	bool connected;
	uint64_t msgs_out, msgs_in, bytes_out, bytes_in, rtt_us, lost, reconnects;
};
void rd_peers_figures(const struct rd_node *n, uint64_t id, struct rd_peer_figures *f);
uint64_t rd_peers_unknown_group(const struct rd_node *n);
uint64_t rd_peers_malformed(const struct rd_node *n);
struct rd_transport_stats;
/* The transport's endpoint-wide counters (zero before it starts). */
void rd_peers_transport_stats(const struct rd_node *n, struct rd_transport_stats *st);

#endif
