/*
 * `raftctl backup save`: the node streams a backup of every group over the
 * client socket (file format in storage/backup.h, the stream in
 * proto/raftd.proto, BackupRequest).
 *
 * Happy path, per group in ascending id: a ReadIndex read (thesis §6.4:
 * the read is linearizable once the node has applied up to the read index),
 * then, once it is served, a storage snapshot reader opened at that moment,
 * whose applied index is therefore at least the read index: everything
 * acknowledged before the save asked for the group is in the backup. The
 * reader's chunks go out one record per response frame, one frame per loop
 * turn of a low-priority event, so ticks, peer traffic and other clients run
 * between two chunks (heartbeats keep flowing while a large group is read).
 * A frame is produced only while the connection's unread output is under
 * its low-water mark (ctl/socket.h): memory is one record buffer and the
 * socket's high-water mark, whatever the size of the state.
 *
 * Failure modes: a read index that fails or times out, a group this node
 * does not host, a storage read error, or shutdown end the stream with an
 * error response naming the group; a client that disconnects ends the save
 * silently. raftctl writes to a temporary file and renames it only after
 * the last part, so a failed save never leaves a file that looks complete.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl/request.h"
#include "ctl/socket.h"
#include "multiraft/node_internal.h"
#include "raftd.pb-c.h"
#include "storage/backup.h"
#include "storage/snapshot.h"
#include "transport/transport.h"
#include "transport/wire.h"
#include "util/err.h"
#include "util/log.h"

#define ULL(x) ((unsigned long long)(x))

struct rd_backup_save {
	struct rd_backup_save *next;
	struct rd_node *n;
	struct rd_ctl_conn *conn; /* holds the request's reference */
	uint64_t request_id;
	uint32_t deadline_ms;
	struct event *ev;
	uint32_t seq;                 /* next record number */
	uint64_t next_group;          /* next group to read */
	uint32_t total;               /* groups in the backup */
	bool reading;                 /* a read index is outstanding */
	bool calling;                 /* a BackupFetch call is outstanding */
	bool dead;                    /* freed while a read or call was out */
	struct rd_snapshot_reader *r; /* the current group, hosted here */
	/* The current group, fetched from a replica (backup_fetch.c). */
	bool remote;
	uint64_t peer, session;
	uint32_t fetch_seq;
	struct rd_backup_group cur;
	struct rd_backup_manifest m; /* groups appended as they complete */
	uint8_t *rec;                /* one record */
	uint8_t *out;                /* one response frame */
	uint64_t bytes;
	uint64_t started_ns;
	int failed; /* an RD_E* code once the save has failed */
	char err[RD_ERRMSG_SIZE];
};

static void schedule(struct rd_backup_save *s)
{
	event_active(s->ev, 0, 0);
}

static const char *code_name(int code)
{
	const char *name = rd_wire_code_name(code);
	return name != NULL ? name : "error";
}

static void start_fetch(struct rd_backup_save *s);

/* The client read its answers down, or the connection closed: step
 * again (step sees a closed connection and ends the save). */
static void on_conn(void *ud, struct rd_ctl_conn *conn)
{
	(void)conn;
	schedule(ud);
}

static const struct rd_ctl_stream_ops save_conn_ops = {.drained = on_conn,
                                                       .closed = on_conn};

/* Unlink the save and free it; while a read or a call is out, its
 * callback frees it instead (it sees `dead`). The connection reference
 * must be gone already (end_stream). */
static void save_free(struct rd_backup_save *s)
{
	struct rd_backup_save **pp = &s->n->backups;

	while (*pp != NULL && *pp != s)
		pp = &(*pp)->next;
	if (*pp == s)
		*pp = s->next;
	s->dead = true;
	if (s->reading || s->calling)
		return;
	rd_snapshot_reader_close(s->r);
	rd_backup_manifest_free(&s->m);
	event_free(s->ev);
	free(s->rec);
	free(s->out);
	free(s);
}

/* Give the request's connection reference back with a last frame (or
 * none): the watch goes first, while `conn` is surely alive. */
static void end_stream(struct rd_backup_save *s, const uint8_t *buf, size_t len)
{
	rd_ctl_stream_watch(s->conn, NULL, NULL);
	if (buf != NULL)
		rd_ctl_reply(s->conn, buf, len);
	else
		rd_ctl_release(s->conn);
}

/* End the stream with an error response and free the save. */
static void finish_error(struct rd_backup_save *s)
{
	size_t len;
	uint8_t *buf =
	    rd_ctl_error_response(s->request_id, rd_err_to_wire(s->failed), s->err, &len);

	rd_log_warn("backup failed pid=%d: %s", (int)rd_ctl_conn_pid(s->conn), s->err);
	end_stream(s, buf, len);
	free(buf);
	save_free(s);
}

static void fail(struct rd_backup_save *s, int code)
{
	if (!s->failed)
		s->failed = code;
	schedule(s);
}

/* Send the record in s->rec (`len` bytes) as one BackupPart; the last one
 * ends the request. */
static void send_part(struct rd_backup_save *s, size_t len, bool last)
{
	Raftd__ClientResponse resp = RAFTD__CLIENT_RESPONSE__INIT;
	Raftd__BackupPart part = RAFTD__BACKUP_PART__INIT;

	s->bytes += len;
	part.data.data = s->rec;
	part.data.len = len;
	part.groups_done = (uint32_t)s->m.n_groups;
	part.groups_total = s->total;
	part.bytes_done = s->bytes;
	part.last = last;
	resp.request_id = s->request_id;
	resp.result_case = RAFTD__CLIENT_RESPONSE__RESULT_BACKUP_PART;
	resp.backup_part = &part;
	size_t n = raftd__client_response__pack(&resp, s->out);
	if (last)
		end_stream(s, s->out, n);
	else
		rd_ctl_send(s->conn, s->out, n);
}

/* The read index of group s->next_group is served: the node has applied
 * at least up to it, so a storage snapshot taken now holds every write
 * acknowledged before the read began. */
static void on_read(void *ud, uint64_t request_id, const struct rd_result *res)
{
	struct rd_backup_save *s = ud;
	struct rd_snapshot_meta meta;
	uint64_t group = s->next_group;

	(void)request_id;
	s->reading = false;
	if (s->dead) {
		save_free(s);
		return;
	}
	if (s->failed) {
		schedule(s);
		return;
	}
	if (res->code != RAFTD__ERROR_CODE__OK) {
		snprintf(s->err, sizeof s->err, "group %llu: read index failed: %s%s%s",
		         ULL(group), code_name((int)res->code),
		         res->message != NULL && res->message[0] ? ": " : "",
		         res->message != NULL ? res->message : "");
		fail(s, RD_EUNAVAILABLE);
		return;
	}
	int rv = rd_snapshot_reader_open(s->n->st, group, &s->r, &meta, s->err);
	if (rv == 0 && meta.index < res->index)
		rv = rd_errorf(s->err, RD_EIO,
		               "storage applied index %llu is behind the read index %llu",
		               ULL(meta.index), ULL(res->index));
	if (rv != 0) {
		rd_errprefix(s->err, "group %llu: ", ULL(group));
		fail(s, rv);
		return;
	}
	memset(&s->cur, 0, sizeof s->cur);
	s->cur.group = group;
	s->cur.index = meta.index;
	s->cur.term = meta.term;
	schedule(s);
}

static void start_read(struct rd_backup_save *s)
{
	struct rd_node *n = s->n;
	uint64_t group = s->next_group;
	uint32_t ms = s->deadline_ms ? s->deadline_ms : n->cfg.request_timeout_ms;

	if (rd_node_group(n, group) == NULL) {
		start_fetch(s);
		return;
	}
	struct rd_waiter *w =
	    rd_waiter_new(RD_WAIT_FORWARD, on_read, s, 0,
	                  rd_clock_now_ns() + (uint64_t)ms * 1000000ull);
	if (w == NULL || (w->data = malloc(1)) == NULL) {
		free(w);
		snprintf(s->err, sizeof s->err, "out of memory");
		fail(s, RD_ENOMEM);
		return;
	}
	/* The key read is irrelevant: what counts is that the read is served
	 * at or after the group's read index. */
	w->data[0] = 0;
	w->len = 1;
	w->group = group;
	w->op = RD_OP_READ;
	s->reading = true;
	rd_node_submit(n, w); /* may answer before it returns */
}

/* The chunk at s->rec + 20 (`len` bytes) goes out as a record; after the
 * group's last chunk, its group-end record too. */
static int emit_chunk(struct rd_backup_save *s, size_t len, bool last)
{
	uint8_t *p = s->rec + RD_BACKUP_REC_HEADER;

	s->cur.crc = rd_backup_crc(s->cur.crc, p, len);
	s->cur.bytes += len;
	s->cur.chunks++;
	send_part(s, rd_backup_record(s->rec, RD_BACKUP_CHUNK_REC, s->seq++, len), false);
	if (!last)
		return 0;
	struct rd_backup_group *gs =
	    realloc(s->m.groups, (s->m.n_groups + 1) * sizeof *gs);
	if (gs == NULL)
		return rd_errorf(s->err, RD_ENOMEM, "out of memory");
	s->m.groups = gs;
	gs[s->m.n_groups++] = s->cur;
	len = rd_backup_group_put(p, &s->cur);
	send_part(s, rd_backup_record(s->rec, RD_BACKUP_GROUP_END, s->seq++, len), false);
	rd_log_info("backup group=%llu index=%llu term=%llu bytes=%llu from=%llu",
	            ULL(s->cur.group), ULL(s->cur.index), ULL(s->cur.term),
	            ULL(s->cur.bytes), ULL(s->remote ? s->peer : s->n->cfg.node_id));
	s->next_group++;
	return 0;
}

/* The next chunk of a group hosted here. */
static int produce_chunk(struct rd_backup_save *s)
{
	size_t len;
	bool last;
	int rv = rd_snapshot_reader_next(s->r, s->rec + RD_BACKUP_REC_HEADER,
	                                 RD_BACKUP_CHUNK, &len, &last, s->err);

	if (rv != 0) {
		rd_errprefix(s->err, "group %llu: ", ULL(s->cur.group));
		return rv;
	}
	if (last) {
		rd_snapshot_reader_close(s->r);
		s->r = NULL;
	}
	return emit_chunk(s, len, last);
}

/* A chunk of a group fetched from a replica (or why not). */
static void on_fetch(void *arg, int err, const Raftd__PeerResponse *resp,
                     const char *errmsg)
{
	struct rd_backup_save *s = arg;
	const Raftd__BackupFetchResponse *b = NULL;
	uint64_t group = s->cur.group;

	s->calling = false;
	if (s->dead) {
		save_free(s);
		return;
	}
	if (err == 0 && resp->error != RAFTD__ERROR_CODE__OK) {
		err = RD_EUNAVAILABLE;
		errmsg = resp->error_message;
	} else if (err == 0 &&
	           resp->body_case != RAFTD__PEER_RESPONSE__BODY_BACKUP_FETCH) {
		err = RD_EPROTO;
		errmsg = "unexpected answer";
	}
	if (err == 0)
		b = resp->backup_fetch;
	if (err == 0 && b->error != RAFTD__ERROR_CODE__OK) {
		snprintf(s->err, sizeof s->err, "group %llu from node %llu: %s: %s",
		         ULL(group), ULL(s->peer), code_name((int)b->error),
		         b->error_message);
		fail(s, RD_EUNAVAILABLE);
		return;
	}
	if (err == 0 &&
	    (b->chunk.len > RD_BACKUP_CHUNK || b->chunk.len < RD_SNAPSHOT_HEADER + 24 ||
	     (s->fetch_seq > 0 && b->session != s->session))) {
		err = RD_EPROTO;
		errmsg = "malformed chunk";
	}
	if (err != 0) {
		snprintf(s->err, sizeof s->err, "group %llu from node %llu: %s",
		         ULL(group), ULL(s->peer),
		         errmsg != NULL ? errmsg : rd_strerror(err));
		fail(s, err);
		return;
	}
	uint8_t *p = s->rec + RD_BACKUP_REC_HEADER;
	memcpy(p, b->chunk.data, b->chunk.len);
	if (s->fetch_seq == 0) {
		/* snapshot.h: the first payload opens with group, index, term */
		const uint8_t *m = p + RD_SNAPSHOT_HEADER;
		uint64_t g = 0, idx = 0, term = 0;
		for (int i = 0; i < 8; i++) {
			g = g << 8 | m[i];
			idx = idx << 8 | m[8 + i];
			term = term << 8 | m[16 + i];
		}
		if (g != group) {
			snprintf(s->err, sizeof s->err,
			         "group %llu from node %llu: a chunk of group %llu",
			         ULL(group), ULL(s->peer), ULL(g));
			fail(s, RD_EPROTO);
			return;
		}
		s->cur.index = idx;
		s->cur.term = term;
		s->session = b->session;
	}
	s->fetch_seq++;
	if (b->last)
		s->remote = false;
	int rv = emit_chunk(s, b->chunk.len, b->last);
	if (rv != 0)
		fail(s, rv);
	else
		schedule(s);
}

static void fetch_next(struct rd_backup_save *s)
{
	Raftd__PeerRequest req = RAFTD__PEER_REQUEST__INIT;
	Raftd__BackupFetchRequest b = RAFTD__BACKUP_FETCH_REQUEST__INIT;
	struct rd_transport *t = rd_peers_transport(s->n);
	uint32_t ms = s->deadline_ms ? s->deadline_ms : s->n->cfg.request_timeout_ms;
	int rv;

	b.group = s->cur.group;
	b.session = s->session;
	b.seq = s->fetch_seq;
	req.body_case = RAFTD__PEER_REQUEST__BODY_BACKUP_FETCH;
	req.backup_fetch = &b;
	rv = t == NULL ? rd_errorf(s->err, RD_ESHUTDOWN, "transport stopped")
	               : rd_transport_call(t, s->peer, &req, ms, on_fetch, s, s->err);
	if (rv != 0) {
		rd_errprefix(s->err, "group %llu from node %llu: ", ULL(s->cur.group),
		             ULL(s->peer));
		fail(s, rv);
		return;
	}
	s->calling = true;
}

/* A group this node does not host: pull it from a replica, starting with
 * its placement's leadership hint. */
static void start_fetch(struct rd_backup_save *s)
{
	const struct rd_group_placement *p =
	    rd_routing_placement(&s->n->topo.routing, (uint32_t)s->next_group);
	uint64_t peer = 0;

	for (unsigned i = 0; p != NULL && i < p->n_replicas && peer == 0; i++)
		if (p->replicas[i] != s->n->cfg.node_id)
			peer = p->replicas[i];
	if (peer == 0) {
		snprintf(s->err, sizeof s->err,
		         "group %llu has no replica to fetch it from",
		         ULL(s->next_group));
		fail(s, RD_ENOTFOUND);
		return;
	}
	memset(&s->cur, 0, sizeof s->cur);
	s->cur.group = s->next_group;
	s->remote = true;
	s->peer = peer;
	s->session = 0;
	s->fetch_seq = 0;
	fetch_next(s);
}

static void step(evutil_socket_t fd, short what, void *arg)
{
	struct rd_backup_save *s = arg;
	uint8_t *p = s->rec + RD_BACKUP_REC_HEADER;
	size_t len;

	(void)fd, (void)what;
	if (s->reading || s->calling)
		return; /* the answer schedules the next step */
	if (!rd_ctl_conn_open(s->conn)) {
		rd_log_info("backup abandoned by its client");
		end_stream(s, NULL, 0);
		save_free(s);
		return;
	}
	if (s->failed) {
		finish_error(s);
		return;
	}
	if (rd_ctl_unsent(s->conn) > rd_ctl_high_water(s->conn) / 2) {
		rd_ctl_stream_watch(s->conn, &save_conn_ops, s);
		return;
	}
	if (s->seq == 0) {
		len = rd_backup_header_put(p, &s->m);
		send_part(s, rd_backup_record(s->rec, RD_BACKUP_HEADER, s->seq++, len),
		          false);
		schedule(s);
	} else if (s->remote) {
		fetch_next(s);
	} else if (s->r != NULL) {
		int rv = produce_chunk(s);
		if (rv != 0)
			fail(s, rv);
		else
			schedule(s);
	} else if (s->next_group < s->total) {
		start_read(s);
	} else {
		len = rd_backup_manifest_put(p, &s->m);
		send_part(s, rd_backup_record(s->rec, RD_BACKUP_MANIFEST, s->seq++, len),
		          true);
		rd_log_notice("backup complete groups=%u bytes=%llu seconds=%.1f",
		              s->total, ULL(s->bytes),
		              (double)(rd_clock_now_ns() - s->started_ns) / 1e9);
		save_free(s);
	}
}

void rd_backup_start(struct rd_node *n, struct rd_ctl_conn *conn,
                     const Raftd__ClientRequest *req)
{
	struct rd_backup_save *s = calloc(1, sizeof *s);
	uint8_t *buf;
	size_t len;

	if (s == NULL || (s->rec = malloc(RD_BACKUP_REC_MAX)) == NULL ||
	    (s->out = malloc(RD_BACKUP_REC_MAX + 64)) == NULL ||
	    (s->ev = event_new(n->base, -1, 0, step, s)) == NULL) {
		if (s != NULL) {
			free(s->rec);
			free(s->out);
		}
		free(s);
		buf = rd_ctl_error_response(req->request_id, RAFTD__ERROR_CODE__INTERNAL,
		                            "out of memory", &len);
		if (buf != NULL)
			rd_ctl_reply(conn, buf, len);
		else
			rd_ctl_release(conn);
		free(buf);
		return;
	}
	event_priority_set(s->ev, RD_NODE_PRIO_LOW);
	s->n = n;
	s->conn = conn;
	s->request_id = req->request_id;
	s->deadline_ms = req->deadline_ms;
	s->total = n->topo.routing.n_groups + 1;
	s->started_ns = rd_clock_now_ns();
	s->m.version = RD_BACKUP_VERSION;
	s->m.created_ms = (uint64_t)time(NULL) * 1000;
	s->m.node = n->cfg.node_id;
	s->m.data_groups = n->topo.routing.n_groups;
	snprintf(s->m.cluster_id, sizeof s->m.cluster_id, "%s",
	         rd_storage_cluster_id(n->st));
	s->next = n->backups;
	n->backups = s;
	rd_log_notice("backup started by client pid=%d uid=%u groups=%u",
	              (int)rd_ctl_conn_pid(conn), (unsigned)rd_ctl_conn_uid(conn),
	              s->total);
	schedule(s);
}

void rd_backup_fail_all(struct rd_node *n, const char *why)
{
	while (n->backups != NULL) {
		struct rd_backup_save *s = n->backups;
		if (!s->failed) {
			s->failed = RD_ESHUTDOWN;
			snprintf(s->err, sizeof s->err, "%s", why);
		}
		finish_error(s);
	}
}
