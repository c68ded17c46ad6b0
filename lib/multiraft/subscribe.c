/*
 * Commit streams: the journal's retention and the subscriptions
 * (subscribe.h; the protocol is proto/raftd.proto "Commit streams").
 *
 * Happy path: subscribe -> cursor per group -> after every synced batch,
 * read the journal from the cursor, send one frame per entry while the
 * subscription has credit and its unread bytes are under half the socket's
 * high-water mark -> the client reads and grants more credit.
 *
 * Failure modes: a subscriber whose cursor fell below its group's journal
 * start (retention, snapshot install) is ended with COMPACTED and the
 * oldest index held; one whose unread bytes stay over the mark for
 * [streams] stall_timeout_ms is cut off (connection closed, counted); a
 * closed connection ends its subscriptions silently; a corrupt journal
 * record ends the subscription with INTERNAL, naming group and index.
 *
 * Memory per subscription: its cursors, and at most half the high-water
 * mark plus one entry frame in the socket's output buffer; nothing is
 * queued in here. Journal entries are read back from RocksDB (its block
 * cache keeps the tail hot).
 */
#include "multiraft/subscribe.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/socket.h"
#include "multiraft/node_internal.h"
#include "storage/journal.h"
#include "storage/kv.h"
#include "util/err.h"
#include "util/fatal.h"
#include "util/log.h"

#define ULL(x) ((unsigned long long)(x))

/* Entries read from the journal per subscription and pump, at most: the
 * loop turns between pumps (a watch skips entries that do not match). */
#define PUMP_BATCH 512u

struct rd_sub {
	struct rd_sub *next;
	struct rd_subs *subs;
	struct rd_ctl_conn *conn;
	uint64_t id;
	enum rd_sub_kind kind;
	uint64_t group;   /* GROUP and META: the group */
	uint64_t *cursor; /* next index per group id (0: not started) */
	size_t ncursor;
	uint64_t from;
	bool from_oldest;
	uint64_t credit;
	uint8_t *prefix;
	size_t prefix_len;
	bool blocked; /* unread bytes over the mark: wait for `drained` */
	struct event *stall;
};

struct rd_subs {
	struct rd_node *n;
	struct rd_sub *head;
	struct rd_journal_info *j; /* [nj], by group id */
	size_t nj;
	struct event *pump_ev;
	struct rd_subs_stats stats;
};

static const struct rd_ctl_stream_ops stream_ops;

static struct rd_journal_info *jinfo(struct rd_subs *s, uint64_t group)
{
	if (group >= s->nj) {
		size_t nj = (size_t)group + 1;
		s->j = rd_xrealloc(s->j, nj * sizeof *s->j);
		for (size_t i = s->nj; i < nj; i++)
			s->j[i] = (struct rd_journal_info){.start = 1};
		s->nj = nj;
	}
	return &s->j[group];
}

int rd_subs_start(struct rd_node *n, char *msg)
{
	struct rd_subs *s = rd_xcalloc(1, sizeof *s);

	s->n = n;
	n->subs = s;
	return rd_subs_scan(n, msg);
}

int rd_subs_scan(struct rd_node *n, char *msg)
{
	struct rd_subs *s = n->subs;
	int rv;

	for (size_t id = 0; id < n->n_slots; id++) {
		if (n->groups[id] == NULL)
			continue;
		rv = rd_storage_journal_info(n->st, id, jinfo(s, id), msg);
		if (rv != 0)
			return rv;
	}
	return 0;
}

static void sub_free(struct rd_sub *sub)
{
	if (sub->stall != NULL)
		event_free(sub->stall);
	free(sub->cursor);
	free(sub->prefix);
	free(sub);
}

static void unlink_sub(struct rd_sub *sub)
{
	struct rd_subs *s = sub->subs;

	for (struct rd_sub **p = &s->head; *p != NULL; p = &(*p)->next)
		if (*p == sub) {
			*p = sub->next;
			break;
		}
	s->stats.open[sub->kind]--;
}

static bool conn_has_subs(const struct rd_subs *s, const struct rd_ctl_conn *conn)
{
	for (const struct rd_sub *x = s->head; x != NULL; x = x->next)
		if (x->conn == conn)
			return true;
	return false;
}

void rd_subs_free(struct rd_node *n)
{
	struct rd_subs *s = n->subs;

	if (s == NULL)
		return;
	while (s->head != NULL) {
		struct rd_sub *sub = s->head;
		unlink_sub(sub);
		rd_ctl_stream_watch(sub->conn, NULL, NULL);
		rd_ctl_release(sub->conn);
		sub_free(sub);
	}
	if (s->pump_ev != NULL)
		event_free(s->pump_ev);
	free(s->j);
	free(s);
	n->subs = NULL;
}

static void send_resp(struct rd_ctl_conn *conn, Raftd__ClientResponse *resp, bool last)
{
	uint8_t stackbuf[1024], *buf = stackbuf;
	size_t len = raftd__client_response__get_packed_size(resp);

	if (len > sizeof stackbuf)
		buf = rd_xrealloc(NULL, len);
	raftd__client_response__pack(resp, buf);
	if (last)
		rd_ctl_reply(conn, buf, len);
	else
		rd_ctl_send(conn, buf, len);
	if (buf != stackbuf)
		free(buf);
}

/* End `sub` with `code` (an ErrorCode); its reference goes with the last
 * frame. */
static void end_sub(struct rd_sub *sub, Raftd__ErrorCode code, const char *text,
                    uint64_t group, uint64_t oldest)
{
	struct rd_subs *s = sub->subs;
	Raftd__ClientResponse resp = RAFTD__CLIENT_RESPONSE__INIT;
	Raftd__StreamEnd end = RAFTD__STREAM_END__INIT;

	unlink_sub(sub);
	if (!conn_has_subs(s, sub->conn))
		rd_ctl_stream_watch(sub->conn, NULL, NULL);
	resp.request_id = sub->id;
	resp.error = code;
	resp.error_message = (char *)text;
	end.group = group;
	end.oldest_index = oldest;
	resp.result_case = RAFTD__CLIENT_RESPONSE__RESULT_STREAM_END;
	resp.stream_end = &end;
	send_resp(sub->conn, &resp, true);
	sub_free(sub);
}

/* ---- the journal ------------------------------------------------------- */

void rd_subs_journal(struct rd_node *n, struct rd_group *g, const struct rd_entry *e,
                     const struct rd_kv_result *res)
{
	struct rd_subs *s = n->subs;
	struct rd_journal_rec r = {.group = g->id, .index = e->index, .term = e->term};
	char msg[RD_ERRMSG_SIZE];

	/* Only commands; a retried session command applied nothing again. */
	if (s == NULL || e->type != RD_ENTRY_NORMAL || e->len == 0 || res->duplicate)
		return;
	if (g->id == RD_STORAGE_META_GROUP)
		r.kind = RD_JOURNAL_META;
	else
		r.kind = res->op == RD_KV_RAW ? RD_JOURNAL_RAW : RD_JOURNAL_KV;
	r.status = res->status == 0               ? RD_JOURNAL_APPLIED
	           : res->status == RD_ECASFAILED ? RD_JOURNAL_CAS_FAILED
	                                          : RD_JOURNAL_NOT_APPLIED;
	r.data = e->data;
	r.len = e->len;
	if (rd_storage_batch_journal_put(n->batch, &r, msg) != 0)
		rd_fatal("fatal: journal refused group=%llu: %s", ULL(g->id), msg);
	struct rd_journal_info *j = jinfo(s, g->id);
	if (j->count == 0)
		j->first = e->index;
	j->last = e->index;
	j->count++;
	j->bytes += rd_journal_rec_bytes(e->len);
}

struct trim_ctx {
	uint64_t drop_n, keep_bytes, bytes, count, dropped, upto, first;
};

static int trim_fn(void *ud, const struct rd_journal_rec *r)
{
	struct trim_ctx *t = ud;

	if (t->dropped >= t->drop_n && t->bytes <= t->keep_bytes) {
		t->first = r->index;
		return 1;
	}
	t->dropped++;
	t->bytes -= rd_journal_rec_bytes(r->len);
	t->upto = r->index;
	return 0;
}

/* Retention: once a journal passes its bounds by an eighth, drop its
 * oldest entries down to the bounds (a delete range in the next batch). */
static void trim(struct rd_subs *s, uint64_t group)
{
	struct rd_node *n = s->n;
	struct rd_journal_info *j = jinfo(s, group);
	uint64_t me = n->cfg.journal_entries, mb = n->cfg.journal_bytes;
	char msg[RD_ERRMSG_SIZE];
	size_t scanned;

	bool over_n = me != 0 && j->count > me + me / 8;
	bool over_b = mb != 0 && j->bytes > mb + mb / 8;
	if (!over_n && !over_b)
		return;
	struct trim_ctx t = {.drop_n = me != 0 && j->count > me ? j->count - me : 0,
	                     .keep_bytes = mb != 0 ? mb : UINT64_MAX,
	                     .bytes = j->bytes};
	if (rd_storage_journal_read(n->st, group, j->first, SIZE_MAX, trim_fn, &t,
	                            &scanned, msg) != 0) {
		rd_log_warn("journal trim failed group=%llu: %s", ULL(group), msg);
		return;
	}
	if (t.dropped == 0)
		return;
	if (rd_storage_batch_journal_trim(n->batch, group, t.upto + 1, msg) != 0)
		rd_fatal("fatal: journal trim refused group=%llu: %s", ULL(group), msg);
	j->start = t.upto + 1;
	j->count -= t.dropped;
	j->bytes = t.bytes;
	j->first = j->count > 0 ? t.first : 0;
	if (j->count == 0)
		j->last = 0;
	rd_log_debug("journal trimmed group=%llu start=%llu entries=%llu bytes=%llu",
	             ULL(group), ULL(j->start), ULL(j->count), ULL(j->bytes));
}

void rd_subs_snapshot_installed(struct rd_node *n, uint64_t group, uint64_t index)
{
	if (n->subs == NULL)
		return;
	*jinfo(n->subs, group) = (struct rd_journal_info){.start = index + 1};
}

/* ---- delivery ---------------------------------------------------------- */

struct pump_ctx {
	struct rd_sub *sub;
	uint64_t next; /* cursor after the entries seen */
	bool stop;
	int err;
};

static bool watch_match(const struct rd_sub *sub, const struct rd_kv_cmd *c)
{
	return c->key_len >= sub->prefix_len &&
	       memcmp(c->key, sub->prefix, sub->prefix_len) == 0;
}

static int pump_fn(void *ud, const struct rd_journal_rec *r)
{
	struct pump_ctx *p = ud;
	struct rd_sub *sub = p->sub;
	Raftd__ClientResponse resp = RAFTD__CLIENT_RESPONSE__INIT;
	Raftd__StreamEntry ent = RAFTD__STREAM_ENTRY__INIT;
	Raftd__KvChange kv = RAFTD__KV_CHANGE__INIT;
	struct rd_kv_cmd cmd;
	bool decoded =
	    r->kind != RD_JOURNAL_META && rd_kv_decode(r->data, r->len, &cmd, NULL) == 0;

	p->next = r->index + 1;
	if (sub->kind == RD_SUB_WATCH &&
	    (r->kind != RD_JOURNAL_KV || r->status != RD_JOURNAL_APPLIED || !decoded ||
	     !watch_match(sub, &cmd)))
		return 0;
	ent.group = r->group;
	ent.index = r->index;
	ent.term = r->term;
	ent.payload.data = (uint8_t *)r->data;
	ent.payload.len = r->len;
	if (r->kind == RD_JOURNAL_META) {
		ent.kind = RAFTD__ENTRY_KIND__KIND_META;
	} else if (r->kind == RD_JOURNAL_RAW && decoded) {
		ent.kind = RAFTD__ENTRY_KIND__KIND_RAW;
		ent.payload.data = (uint8_t *)cmd.value;
		ent.payload.len = cmd.value_len;
	} else {
		ent.kind = RAFTD__ENTRY_KIND__KIND_KV;
		ent.kv = &kv;
		kv.applied = r->status == RD_JOURNAL_APPLIED;
		if (decoded) {
			kv.op = cmd.op == RD_KV_DELETE ? RAFTD__KV_OP__KV_DELETE
			        : cmd.op == RD_KV_CAS  ? RAFTD__KV_OP__KV_CAS
			                               : RAFTD__KV_OP__KV_PUT;
			kv.key.data = (uint8_t *)cmd.key;
			kv.key.len = cmd.key_len;
			if (cmd.op != RD_KV_DELETE) {
				kv.value.data = (uint8_t *)cmd.value;
				kv.value.len = cmd.value_len;
			}
		}
	}
	resp.request_id = sub->id;
	resp.result_case = RAFTD__CLIENT_RESPONSE__RESULT_ENTRY;
	resp.entry = &ent;
	send_resp(sub->conn, &resp, false);
	sub->subs->stats.delivered++;
	sub->credit--;
	if (rd_ctl_unsent(sub->conn) > rd_ctl_high_water(sub->conn) / 2)
		sub->blocked = true;
	if (sub->credit == 0 || sub->blocked) {
		p->stop = true;
		return 1;
	}
	return 0;
}

static void arm_stall(struct rd_sub *sub)
{
	unsigned ms = sub->subs->n->cfg.stream_stall_ms;
	struct timeval tv = {ms / 1000, (suseconds_t)(ms % 1000) * 1000};

	if (!evtimer_pending(sub->stall, NULL))
		evtimer_add(sub->stall, &tv);
}

static uint64_t start_of(struct rd_sub *sub, struct rd_group *g)
{
	struct rd_journal_info *j = jinfo(sub->subs, g->id);

	if (sub->from_oldest)
		return j->start;
	if (sub->from != 0)
		return sub->from;
	return g->applied + 1;
}

/* Send `sub` what its credit allows. Returns false when it ended. */
static bool pump_group(struct rd_sub *sub, uint64_t gid, uint64_t *cur, bool *more)
{
	struct rd_subs *s = sub->subs;
	struct rd_node *n = s->n;
	struct rd_group *g = rd_node_group(n, gid);
	char msg[RD_ERRMSG_SIZE], text[RD_ERRMSG_SIZE];
	size_t scanned;

	if (g == NULL) {
		if (sub->kind == RD_SUB_ALL || sub->kind == RD_SUB_WATCH)
			return true;
		end_sub(sub, RAFTD__ERROR_CODE__NOT_FOUND,
		        "group not hosted on this node", gid, 0);
		return false;
	}
	/* While a batch is written its journal records are not readable
	 * yet, though the journal's bounds count them: the pump after the
	 * write (rd_subs_applied) sends them. */
	if (n->writing)
		return true;
	if (*cur == 0)
		*cur = start_of(sub, g);
	struct rd_journal_info *j = jinfo(s, gid);
	if (*cur < j->start) {
		snprintf(text, sizeof text,
		         "group %llu: index %llu is older than the journal; oldest %llu",
		         ULL(gid), ULL(*cur), ULL(j->start));
		end_sub(sub, RAFTD__ERROR_CODE__COMPACTED, text, gid, j->start);
		return false;
	}
	if (sub->credit == 0 || sub->blocked || *cur > j->last)
		return true;
	struct pump_ctx p = {.sub = sub, .next = *cur};
	int rv = rd_storage_journal_read(n->st, gid, *cur, PUMP_BATCH, pump_fn, &p,
	                                 &scanned, msg);
	if (rv != 0) {
		rd_log_err("journal read failed group=%llu: %s", ULL(gid), msg);
		end_sub(sub, RAFTD__ERROR_CODE__INTERNAL, msg, gid, 0);
		return false;
	}
	if (!p.stop && scanned < PUMP_BATCH)
		p.next = j->last + 1; /* read to the end */
	*cur = p.next;
	if (!p.stop && *cur <= j->last)
		*more = true;
	return true;
}

/* Returns false when `sub` ended. */
static bool pump(struct rd_sub *sub, bool *more)
{
	if (sub->kind == RD_SUB_GROUP || sub->kind == RD_SUB_META) {
		if (!pump_group(sub, sub->group, &sub->cursor[0], more))
			return false;
	} else {
		for (size_t gid = 1; gid < sub->ncursor; gid++)
			if (!pump_group(sub, gid, &sub->cursor[gid], more))
				return false;
	}
	if (sub->blocked)
		arm_stall(sub);
	return true;
}

static void pump_all(struct rd_subs *s)
{
	bool more = false;
	struct rd_sub *sub = s->head, *next;

	for (; sub != NULL; sub = next) {
		next = sub->next;
		pump(sub, &more);
	}
	if (more)
		event_active(s->pump_ev, EV_TIMEOUT, 0);
}

static void on_pump(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	pump_all(arg);
}

void rd_subs_applied(struct rd_node *n)
{
	struct rd_subs *s = n->subs;

	if (s == NULL)
		return;
	for (size_t gid = 0; gid < s->nj; gid++)
		trim(s, gid);
	pump_all(s);
}

static void on_stall(evutil_socket_t fd, short what, void *arg)
{
	struct rd_sub *sub = arg;
	struct rd_subs *s = sub->subs;

	(void)fd, (void)what;
	if (!sub->blocked)
		return;
	s->stats.cut_off++;
	rd_log_warn("stream subscriber cut off: %zu bytes unread for %u ms pid=%d uid=%u",
	            rd_ctl_unsent(sub->conn), s->n->cfg.stream_stall_ms,
	            (int)rd_ctl_conn_pid(sub->conn),
	            (unsigned)rd_ctl_conn_uid(sub->conn));
	/* The connection's `closed` ends every subscription on it. */
	rd_ctl_conn_close(sub->conn);
}

static void on_drained(void *ud, struct rd_ctl_conn *conn)
{
	struct rd_subs *s = ud;
	bool any = false;

	for (struct rd_sub *x = s->head; x != NULL; x = x->next)
		if (x->conn == conn && x->blocked) {
			x->blocked = false;
			evtimer_del(x->stall);
			any = true;
		}
	if (any)
		pump_all(s);
}

static void on_closed(void *ud, struct rd_ctl_conn *conn)
{
	struct rd_subs *s = ud;
	struct rd_sub *sub = s->head, *next;

	for (; sub != NULL; sub = next) {
		next = sub->next;
		if (sub->conn != conn)
			continue;
		unlink_sub(sub);
		rd_ctl_release(conn);
		sub_free(sub);
	}
}

static const struct rd_ctl_stream_ops stream_ops = {
    .drained = on_drained,
    .closed = on_closed,
};

/* ---- requests ---------------------------------------------------------- */

static void refuse(struct rd_ctl_conn *conn, uint64_t id, Raftd__ErrorCode code,
                   const char *text)
{
	Raftd__ClientResponse resp = RAFTD__CLIENT_RESPONSE__INIT;
	Raftd__StreamEnd end = RAFTD__STREAM_END__INIT;

	resp.request_id = id;
	resp.error = code;
	resp.error_message = (char *)text;
	resp.result_case = RAFTD__CLIENT_RESPONSE__RESULT_STREAM_END;
	resp.stream_end = &end;
	send_resp(conn, &resp, true);
}

static uint64_t capped(uint64_t credit, unsigned max)
{
	return credit > max ? max : credit;
}

void rd_subs_subscribe(struct rd_node *n, struct rd_ctl_conn *conn,
                       const Raftd__ClientRequest *req)
{
	struct rd_subs *s = n->subs;
	const Raftd__SubscribeRequest *r = req->subscribe;
	struct rd_sub *sub;

	if (!rd_ctl_conn_open(conn)) {
		rd_ctl_release(conn);
		return;
	}
	for (struct rd_sub *x = s->head; x != NULL; x = x->next)
		if (x->conn == conn && x->id == req->request_id) {
			refuse(conn, req->request_id, RAFTD__ERROR_CODE__INVALID,
			       "a subscription with this request id is open");
			return;
		}
	sub = rd_xcalloc(1, sizeof *sub);
	sub->subs = s;
	sub->conn = conn;
	sub->id = req->request_id;
	sub->from = r->from_index;
	sub->from_oldest = r->from_oldest;
	sub->credit = capped(r->credit, n->cfg.stream_max_credit);
	if (r->watch) {
		sub->kind = RD_SUB_WATCH;
		if (r->prefix.len > RD_KV_KEY_MAX) {
			free(sub);
			refuse(conn, req->request_id, RAFTD__ERROR_CODE__INVALID,
			       "prefix longer than a key");
			return;
		}
		sub->prefix_len = r->prefix.len;
		sub->prefix = rd_xrealloc(NULL, r->prefix.len + 1);
		memcpy(sub->prefix, r->prefix.data, r->prefix.len);
	} else {
		switch (r->scope) {
		case RAFTD__SUBSCRIBE_SCOPE__SCOPE_GROUP:
			sub->kind = r->group == RD_STORAGE_META_GROUP ? RD_SUB_META
			                                              : RD_SUB_GROUP;
			sub->group = r->group;
			break;
		case RAFTD__SUBSCRIBE_SCOPE__SCOPE_VSHARD:
			if (r->vshard >= RD_VSHARDS) {
				free(sub);
				refuse(conn, req->request_id, RAFTD__ERROR_CODE__INVALID,
				       "vshard must be 0..1023");
				return;
			}
			sub->kind = RD_SUB_GROUP;
			sub->group = rd_routing_group_of(&n->topo.routing, r->vshard);
			break;
		case RAFTD__SUBSCRIBE_SCOPE__SCOPE_META:
			sub->kind = RD_SUB_META;
			sub->group = RD_STORAGE_META_GROUP;
			break;
		default:
			sub->kind = RD_SUB_ALL;
			break;
		}
	}
	sub->ncursor =
	    sub->kind == RD_SUB_ALL || sub->kind == RD_SUB_WATCH ? n->n_slots : 1;
	sub->cursor = rd_xcalloc(sub->ncursor, sizeof *sub->cursor);
	sub->stall = evtimer_new(n->base, on_stall, sub);
	if (s->pump_ev == NULL)
		s->pump_ev = event_new(n->base, -1, 0, on_pump, s);
	sub->next = s->head;
	s->head = sub;
	s->stats.open[sub->kind]++;
	rd_ctl_stream_watch(conn, &stream_ops, s);
	rd_log_info("stream subscribed kind=%d group=%llu from=%llu pid=%d uid=%u",
	            (int)sub->kind, ULL(sub->group), ULL(sub->from),
	            (int)rd_ctl_conn_pid(conn), (unsigned)rd_ctl_conn_uid(conn));
	/* Start the cursors now, so that "from now" means this moment. */
	bool more = false;
	if (pump(sub, &more) && more)
		event_active(s->pump_ev, EV_TIMEOUT, 0);
}

void rd_subs_credit(struct rd_node *n, struct rd_ctl_conn *conn,
                    const Raftd__ClientRequest *req)
{
	struct rd_subs *s = n->subs;

	for (struct rd_sub *x = s->head; x != NULL; x = x->next) {
		if (x->conn != conn || x->id != req->credit->subscription)
			continue;
		x->credit =
		    capped(x->credit + req->credit->credit, n->cfg.stream_max_credit);
		bool more = false;
		if (pump(x, &more) && more)
			event_active(s->pump_ev, EV_TIMEOUT, 0);
		break;
	}
	rd_ctl_release(conn);
}

void rd_subs_shutdown(struct rd_node *n)
{
	struct rd_subs *s = n->subs;

	while (s != NULL && s->head != NULL)
		end_sub(s->head, RAFTD__ERROR_CODE__SHUTTING_DOWN,
		        "node is shutting down", 0, 0);
}

void rd_subs_stats(const struct rd_node *n, struct rd_subs_stats *out)
{
	memset(out, 0, sizeof *out);
	if (n->subs != NULL)
		*out = n->subs->stats;
}

uint64_t rd_subs_journal_bytes(const struct rd_node *n, uint64_t group)
{
	const struct rd_subs *s = n->subs;

	return s != NULL && group < s->nj ? s->j[group].bytes : 0;
}
