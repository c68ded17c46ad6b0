/*
 * The BackupFetch peer RPC (proto/raftd.proto), callee side: a node saving
 * a backup pulls a group it does not host from this node, one snapshot
 * chunk per request, on the transport's RPC streams (never the Raft
 * stream: heartbeats are not delayed by a large group).
 *
 * Happy path: seq 0 submits a ReadIndex read of the group (thesis §6.4);
 * once it is served the node has applied at least up to the read index,
 * so a storage snapshot reader opened then holds every write acknowledged
 * before the fetch began. The reader becomes a session; chunk 0 goes back
 * with its id, and each later request reads the next chunk from it. The
 * caller asks for chunk n + 1 only after it has passed chunk n on, so one
 * chunk per session is in flight and memory is one chunk buffer.
 *
 * Failure modes: a group not hosted here, a read index that fails, a
 * storage error, an unknown session or a chunk out of order are answered
 * with an error and end the session; a session idle for 60 s is closed;
 * more than 4 at once are refused BUSY.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "multiraft/node_internal.h"
#include "raftd.pb-c.h"
#include "storage/backup.h"
#include "storage/snapshot.h"
#include "transport/transport.h"
#include "transport/wire.h"
#include "util/err.h"
#include "util/log.h"

#define ULL(x)       ((unsigned long long)(x))
#define MAX_SESSIONS 4
#define IDLE_NS      (60ull * 1000000000ull)

struct rd_backup_serve {
	struct rd_backup_serve *next;
	struct rd_node *n;
	uint64_t id, peer, group;
	struct rd_snapshot_reader *r;
	uint32_t next_seq;
	uint64_t used_ns;
	bool reading;                        /* the read index is out */
	struct rd_transport_responder *resp; /* while reading: chunk 0's */
};

static void serve_free(struct rd_backup_serve *v)
{
	struct rd_backup_serve **pp = &v->n->backup_serves;

	while (*pp != NULL && *pp != v)
		pp = &(*pp)->next;
	if (*pp == v)
		*pp = v->next;
	rd_snapshot_reader_close(v->r);
	free(v);
}

static void answer_error(struct rd_transport_responder *r, int code, const char *text)
{
	Raftd__PeerResponse resp = RAFTD__PEER_RESPONSE__INIT;
	Raftd__BackupFetchResponse b = RAFTD__BACKUP_FETCH_RESPONSE__INIT;

	b.error = rd_err_to_wire(code);
	b.error_message = (char *)text;
	resp.body_case = RAFTD__PEER_RESPONSE__BODY_BACKUP_FETCH;
	resp.backup_fetch = &b;
	rd_transport_respond(r, &resp);
}

/* The chunk size: one chunk and its envelope fit an RPC frame. */
static size_t chunk_cap(const struct rd_node *n)
{
	size_t cap = (size_t)n->cfg.max_msg_bytes + RD_TRANSPORT_FRAME_HEADROOM - 4096;
	return cap < RD_BACKUP_CHUNK ? cap : RD_BACKUP_CHUNK;
}

/* Read the session's next chunk and answer `r` with it. */
static void answer_chunk(struct rd_backup_serve *v, struct rd_transport_responder *r)
{
	Raftd__PeerResponse resp = RAFTD__PEER_RESPONSE__INIT;
	Raftd__BackupFetchResponse b = RAFTD__BACKUP_FETCH_RESPONSE__INIT;
	char msg[RD_ERRMSG_SIZE];
	size_t cap = chunk_cap(v->n), len;
	bool last;
	uint8_t *buf = malloc(cap);
	int rv = buf == NULL ? rd_errorf(msg, RD_ENOMEM, "out of memory")
	                     : rd_snapshot_reader_next(v->r, buf, cap, &len, &last, msg);

	if (rv != 0) {
		rd_log_warn("backup fetch failed group=%llu peer=%llu: %s", ULL(v->group),
		            ULL(v->peer), msg);
		answer_error(r, rv, msg);
		free(buf);
		serve_free(v);
		return;
	}
	v->next_seq++;
	v->used_ns = rd_clock_now_ns();
	b.session = v->id;
	b.chunk.data = buf;
	b.chunk.len = len;
	b.last = last;
	resp.body_case = RAFTD__PEER_RESPONSE__BODY_BACKUP_FETCH;
	resp.backup_fetch = &b;
	rd_transport_respond(r, &resp);
	free(buf);
	if (last) {
		rd_log_info("backup fetch done group=%llu peer=%llu chunks=%u",
		            ULL(v->group), ULL(v->peer), v->next_seq);
		serve_free(v);
	}
}

static void on_read(void *ud, uint64_t request_id, const struct rd_result *res)
{
	struct rd_backup_serve *v = ud;
	struct rd_transport_responder *r = v->resp;
	struct rd_snapshot_meta meta;
	char msg[RD_ERRMSG_SIZE];

	(void)request_id;
	v->reading = false;
	v->resp = NULL;
	if (res->code != RAFTD__ERROR_CODE__OK) {
		Raftd__PeerResponse resp = RAFTD__PEER_RESPONSE__INIT;
		Raftd__BackupFetchResponse b = RAFTD__BACKUP_FETCH_RESPONSE__INIT;
		b.error = (Raftd__ErrorCode)res->code;
		b.error_message = (char *)(res->message != NULL ? res->message : "");
		resp.body_case = RAFTD__PEER_RESPONSE__BODY_BACKUP_FETCH;
		resp.backup_fetch = &b;
		rd_transport_respond(r, &resp);
		serve_free(v);
		return;
	}
	int rv = rd_snapshot_reader_open(v->n->st, v->group, &v->r, &meta, msg);
	if (rv == 0 && meta.index < res->index)
		rv = rd_errorf(msg, RD_EIO,
		               "storage applied index %llu is behind the read "
		               "index %llu",
		               ULL(meta.index), ULL(res->index));
	if (rv != 0) {
		answer_error(r, rv, msg);
		serve_free(v);
		return;
	}
	answer_chunk(v, r);
}

/* Close sessions idle for too long. */
static void expire(struct rd_node *n, uint64_t now)
{
	struct rd_backup_serve *v = n->backup_serves, *next;

	for (; v != NULL; v = next) {
		next = v->next;
		if (!v->reading && now - v->used_ns > IDLE_NS) {
			rd_log_info("backup fetch session expired group=%llu peer=%llu",
			            ULL(v->group), ULL(v->peer));
			serve_free(v);
		}
	}
}

static void start_session(struct rd_node *n, uint64_t peer, const Raftd__PeerRequest *req,
                          struct rd_transport_responder *r)
{
	const Raftd__BackupFetchRequest *q = req->backup_fetch;
	unsigned count = 0;

	for (struct rd_backup_serve *v = n->backup_serves; v != NULL; v = v->next)
		count++;
	if (count >= MAX_SESSIONS) {
		answer_error(r, RD_EBUSY, "too many backup fetches at once");
		return;
	}
	if (rd_node_group(n, q->group) == NULL) {
		answer_error(r, RD_ENOTFOUND, "group not hosted on this node");
		return;
	}
	struct rd_backup_serve *v = calloc(1, sizeof *v);
	uint32_t ms = req->deadline_ms ? req->deadline_ms : n->cfg.request_timeout_ms;
	struct rd_waiter *w =
	    rd_waiter_new(RD_WAIT_FORWARD, on_read, v, 0,
	                  rd_clock_now_ns() + (uint64_t)ms * 1000000ull);
	if (v == NULL || w == NULL || (w->data = malloc(1)) == NULL) {
		free(v);
		free(w);
		answer_error(r, RD_ENOMEM, "out of memory");
		return;
	}
	if (getrandom(&v->id, sizeof v->id, 0) != sizeof v->id || v->id == 0)
		v->id = rd_clock_now_ns() | 1;
	v->n = n;
	v->peer = peer;
	v->group = q->group;
	v->used_ns = rd_clock_now_ns();
	v->reading = true;
	v->resp = r;
	v->next = n->backup_serves;
	n->backup_serves = v;
	rd_log_info("backup fetch started group=%llu peer=%llu", ULL(v->group),
	            ULL(peer));
	w->data[0] = 0;
	w->len = 1;
	w->group = q->group;
	w->op = RD_OP_READ;
	w->fw.no_forward = true; /* the caller picked this node as a replica */
	rd_node_submit(n, w);
}

void rd_backup_fetch_serve(struct rd_node *n, uint64_t peer,
                           const Raftd__PeerRequest *req,
                           struct rd_transport_responder *r)
{
	const Raftd__BackupFetchRequest *q = req->backup_fetch;

	expire(n, rd_clock_now_ns());
	if (n->stopping || !n->ready) {
		answer_error(r, n->stopping ? RD_ESHUTDOWN : RD_ENOTREADY,
		             n->stopping ? "node is shutting down" : "node not ready");
		return;
	}
	if (q->seq == 0) {
		start_session(n, peer, req, r);
		return;
	}
	struct rd_backup_serve *v = n->backup_serves;
	while (v != NULL && !(v->id == q->session && v->peer == peer))
		v = v->next;
	if (v == NULL || v->reading || v->group != q->group) {
		answer_error(r, RD_ENOTFOUND, "no such backup fetch session (expired?)");
		return;
	}
	if (q->seq != v->next_seq) {
		answer_error(r, RD_EINVAL, "backup fetch chunk out of order");
		serve_free(v);
		return;
	}
	answer_chunk(v, r);
}

void rd_backup_fetch_free_all(struct rd_node *n)
{
	struct rd_backup_serve *v = n->backup_serves, *next;

	for (; v != NULL; v = next) {
		next = v->next;
		if (v->reading) {
			/* its read waiter still points at it: it frees it */
			continue;
		}
		serve_free(v);
	}
}
