/*
 * The node's side of the transport: Raft messages out (one RaftBatch frame
 * per peer per iteration, heartbeats in coalesced form), Raft messages in,
 * forwarded proposals and reads (both directions), snapshot streaming.
 *
 * Happy path (out): drive.c queues core messages with rd_peers_queue, which
 * encodes each into the peer's open batch at once (so the core's buffers
 * may be reused); rd_peers_flush hands each non-empty batch to the
 * transport as one frame.
 * Failure modes: a frame the transport refuses (queue full, peer gone) is
 * dropped and counted; Raft retransmits. A forward whose connection dies
 * answers UNAVAILABLE; one that meets NOT_LEADER follows the hint for at
 * most RD_NODE_FORWARD_HOPS hops.
 */
#include <stdlib.h>
#include <string.h>

#include "multiraft/node_internal.h"
#include "raftd.pb-c.h"
#include "storage/snapshot.h"
#include "transport/transport.h"
#include "util/err.h"
#include "util/log.h"

#define SNAP_CHUNK RD_TRANSPORT_SNAPSHOT_CHUNK
/* Room kept at the front of a peer's batch for the frame's head
 * (PeerFrame.batch tag and length, RaftBatch.from and .to: at most
 * 1 + 10 + 2 * 11 bytes), so that the frame is handed to the transport
 * from the batch buffer itself, without another copy. */
#define BATCH_HEAD 40

struct peer_out {
	uint64_t id;
	uint8_t *buf;    /* [BATCH_HEAD room][RaftBatch fields 3..5, encoded] */
	size_t len, cap; /* len >= BATCH_HEAD once the buffer exists */
	uint64_t msgs;
	uint64_t dropped;
};

struct rd_peers {
	struct rd_node *n;
	struct rd_transport *t;
	struct peer_out out[RD_NODE_MAX_MEMBERS];
	unsigned n_out;
	bool pending;
	/* Reused encoding scratch: no allocation per message in steady state. */
	Raftd__Entry *ents;
	Raftd__Entry **entp;
	size_t ents_cap;
	uint64_t unknown_group;
	/* Snapshot being received, one at a time. */
	struct rd_snapshot_writer *sw;
	uint64_t sw_group, sw_from;
};

static struct peer_out *peer_out(const struct rd_peers *p, uint64_t id)
{
	for (unsigned i = 0; i < p->n_out; i++)
		if (p->out[i].id == id)
			return (struct peer_out *)&p->out[i];
	return NULL;
}

static int reserve(uint8_t **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : 4096;
	while (c < need)
		c *= 2;
	uint8_t *b = realloc(*buf, c);
	if (b == NULL)
		return RD_ENOMEM;
	*buf = b;
	*cap = c;
	return 0;
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* ---- outgoing Raft traffic ------------------------------------------------- */

void rd_peers_queue(struct rd_node *n, const struct rd_message *m)
{
	struct rd_peers *p = n->peers;
	struct peer_out *o = peer_out(p, m->to);
	size_t size;

	if (o == NULL) {
		rd_log_debug("raft message to unknown node to=%llu group=%llu",
		             (unsigned long long)m->to, (unsigned long long)m->group);
		return;
	}
	/* Heartbeats and their responses travel in the compact form: one
	 * CoalescedHeartbeat per group inside the peer's single batch. */
	if ((m->type == RD_MSG_HEARTBEAT || m->type == RD_MSG_HEARTBEAT_RESP) &&
	    !m->reject && m->n_entries == 0 && m->index == 0 && m->log_term == 0) {
		Raftd__CoalescedHeartbeat hb = RAFTD__COALESCED_HEARTBEAT__INIT;
		hb.group = m->group;
		hb.term = m->term;
		hb.commit = m->commit;
		hb.context = m->context;
		size = raftd__coalesced_heartbeat__get_packed_size(&hb);
		if (reserve(&o->buf, &o->cap, o->len + size + 11) != 0)
			return;
		o->buf[o->len++] =
		    m->type == RD_MSG_HEARTBEAT ? (4 << 3 | 2) : (5 << 3 | 2);
		o->len += put_varint(o->buf + o->len, size);
		o->len += raftd__coalesced_heartbeat__pack(&hb, o->buf + o->len);
		o->msgs++;
		p->pending = true;
		return;
	}
	Raftd__RaftMessage rm = RAFTD__RAFT_MESSAGE__INIT;
	Raftd__SnapshotMeta sm = RAFTD__SNAPSHOT_META__INIT;
	rm.type = (Raftd__RaftMessageType)m->type;
	rm.group = m->group;
	rm.from = m->from;
	rm.to = m->to;
	rm.term = m->term;
	rm.log_term = m->log_term;
	rm.index = m->index;
	rm.commit = m->commit;
	rm.reject = m->reject;
	rm.reject_hint = m->reject_hint;
	rm.conflict_term = m->conflict_term;
	rm.context = m->context;
	if (m->n_entries > p->ents_cap) {
		size_t cap = p->ents_cap ? p->ents_cap : 64;
		while (cap < m->n_entries)
			cap *= 2;
		Raftd__Entry *e = realloc(p->ents, cap * sizeof *e);
		Raftd__Entry **ep = e != NULL ? realloc(p->entp, cap * sizeof *ep) : NULL;
		if (e != NULL)
			p->ents = e;
		if (ep == NULL)
			return;
		p->entp = ep;
		p->ents_cap = cap;
	}
	for (uint32_t i = 0; i < m->n_entries; i++) {
		Raftd__Entry *e = &p->ents[i];
		raftd__entry__init(e);
		e->term = m->entries[i].term;
		e->index = m->entries[i].index;
		e->type = (Raftd__EntryType)m->entries[i].type;
		e->data.data = m->entries[i].data;
		e->data.len = m->entries[i].len;
		p->entp[i] = e;
	}
	rm.n_entries = m->n_entries;
	rm.entries = p->entp;
	if (m->type == RD_MSG_SNAPSHOT) {
		sm.index = m->snapshot.index;
		sm.term = m->snapshot.term;
		sm.n_voters = m->snapshot.conf.n_voters;
		sm.voters = (uint64_t *)m->snapshot.conf.voters;
		sm.n_learners = m->snapshot.conf.n_learners;
		sm.learners = (uint64_t *)m->snapshot.conf.learners;
		rm.snapshot = &sm;
	}
	size = raftd__raft_message__get_packed_size(&rm);
	if (reserve(&o->buf, &o->cap, o->len + size + 11) != 0)
		return;
	o->buf[o->len++] = 3 << 3 | 2;
	o->len += put_varint(o->buf + o->len, size);
	o->len += raftd__raft_message__pack(&rm, o->buf + o->len);
	o->msgs++;
	p->pending = true;
}

bool rd_peers_pending(const struct rd_node *n)
{
	return n->peers != NULL && n->peers->pending;
}

void rd_peers_flush(struct rd_node *n)
{
	struct rd_peers *p = n->peers;
	char msg[RD_ERRMSG_SIZE];

	if (!p->pending)
		return;
	for (unsigned i = 0; i < p->n_out; i++) {
		struct peer_out *o = &p->out[i];
		uint8_t head[BATCH_HEAD];
		size_t hl = 0, fl = 0, body;
		uint8_t ft[24];

		if (o->len <= BATCH_HEAD)
			continue;
		/* PeerFrame{ batch(1): RaftBatch{ from(1), to(2), <queued> } } */
		ft[fl++] = 1 << 3;
		fl += put_varint(ft + fl, n->cfg.node_id);
		ft[fl++] = 2 << 3;
		fl += put_varint(ft + fl, o->id);
		body = fl + o->len - BATCH_HEAD;
		head[hl++] = 1 << 3 | 2;
		hl += put_varint(head + hl, body);
		memcpy(head + hl, ft, fl);
		hl += fl;
		memcpy(o->buf + BATCH_HEAD - hl, head, hl);
		if (rd_transport_send_encoded(p->t, o->id, o->buf + BATCH_HEAD - hl,
		                              o->len - BATCH_HEAD + hl, msg) != 0) {
			o->dropped++;
			rd_log_debug("raft batch dropped peer=%llu: %s",
			             (unsigned long long)o->id, msg);
		}
		o->len = BATCH_HEAD;
	}
	p->pending = false;
}

/* ---- incoming Raft traffic ------------------------------------------------- */

static void step(struct rd_node *n, const struct rd_message *m)
{
	struct rd_group *g = rd_node_group(n, m->group);
	if (g == NULL) {
		n->peers->unknown_group++;
		return;
	}
	rd_raft_step(g->raft, m);
	if (rd_raft_has_update(g->raft))
		rd_node_wake(n);
}

static void to_meta(struct rd_snapshot_meta *out, const Raftd__SnapshotMeta *sm)
{
	memset(out, 0, sizeof *out);
	if (sm == NULL)
		return;
	out->index = sm->index;
	out->term = sm->term;
	out->conf.n_voters =
	    (uint32_t)(sm->n_voters < RD_RAFT_MAX_MEMBERS ? sm->n_voters
	                                                  : RD_RAFT_MAX_MEMBERS);
	if (out->conf.n_voters > 0)
		memcpy(out->conf.voters, sm->voters,
		       out->conf.n_voters * sizeof(uint64_t));
	out->conf.n_learners =
	    (uint32_t)(sm->n_learners < RD_RAFT_MAX_MEMBERS ? sm->n_learners
	                                                    : RD_RAFT_MAX_MEMBERS);
	if (out->conf.n_learners > 0)
		memcpy(out->conf.learners, sm->learners,
		       out->conf.n_learners * sizeof(uint64_t));
}

static void from_proto(const Raftd__RaftMessage *rm, struct rd_message *m)
{
	memset(m, 0, sizeof *m);
	m->type = (uint8_t)rm->type;
	m->group = rm->group;
	m->from = rm->from;
	m->to = rm->to;
	m->term = rm->term;
	m->log_term = rm->log_term;
	m->index = rm->index;
	m->commit = rm->commit;
	m->reject = rm->reject;
	m->reject_hint = rm->reject_hint;
	m->conflict_term = rm->conflict_term;
	m->context = rm->context;
	if (rm->type == RAFTD__RAFT_MESSAGE_TYPE__RAFT_MSG_SNAPSHOT)
		to_meta(&m->snapshot, rm->snapshot);
	m->n_entries = (uint32_t)rm->n_entries;
}

static void on_batch(void *arg, uint64_t peer, const Raftd__RaftBatch *b)
{
	struct rd_node *n = arg;
	struct rd_message m;

	if (n->stopping)
		return;
	for (size_t i = 0; i < b->n_messages; i++) {
		const Raftd__RaftMessage *rm = b->messages[i];
		struct rd_entry stack[64], *ents = stack;
		if (rm->to != n->cfg.node_id)
			continue;
		from_proto(rm, &m);
		if (rm->n_entries > 64) {
			ents = malloc(rm->n_entries * sizeof *ents);
			if (ents == NULL)
				continue;
		}
		for (size_t k = 0; k < rm->n_entries; k++) {
			ents[k].term = rm->entries[k]->term;
			ents[k].index = rm->entries[k]->index;
			ents[k].type = (uint8_t)rm->entries[k]->type;
			ents[k].len = (uint32_t)rm->entries[k]->data.len;
			ents[k].data = rm->entries[k]->data.data;
		}
		m.entries = rm->n_entries ? ents : NULL;
		step(n, &m);
		if (ents != stack)
			free(ents);
	}
	for (int kind = 0; kind < 2; kind++) {
		size_t cnt = kind == 0 ? b->n_heartbeats : b->n_heartbeat_resps;
		Raftd__CoalescedHeartbeat **hbs =
		    kind == 0 ? b->heartbeats : b->heartbeat_resps;
		for (size_t i = 0; i < cnt; i++) {
			memset(&m, 0, sizeof m);
			m.type = kind == 0 ? RD_MSG_HEARTBEAT : RD_MSG_HEARTBEAT_RESP;
			m.group = hbs[i]->group;
			m.from = peer;
			m.to = n->cfg.node_id;
			m.term = hbs[i]->term;
			m.commit = hbs[i]->commit;
			m.context = hbs[i]->context;
			step(n, &m);
		}
	}
}

/* ---- snapshots -------------------------------------------------------------- */

/* Leader side: stream group g's current snapshot to `to` as SnapshotChunk
 * frames on the snapshot stream; the last one carries the SNAPSHOT message
 * the follower steps once it has installed the data. The core learns the
 * outcome of the send at once (the transport queues it whole); the
 * follower's answer to the SNAPSHOT message moves its progress. */
void rd_peers_send_snapshot(struct rd_node *n, struct rd_group *g, uint64_t to)
{
	struct rd_peers *p = n->peers;
	struct rd_snapshot_reader *r;
	struct rd_snapshot_meta meta;
	char msg[RD_ERRMSG_SIZE];
	uint8_t *buf = malloc(SNAP_CHUNK);
	uint64_t offset = 0;
	bool last = false, ok = false;

	if (buf == NULL)
		goto out;
	if (rd_snapshot_reader_open(n->st, g->id, &r, &meta, msg) != 0) {
		rd_log_warn("snapshot not produced group=%llu to=%llu: %s",
		            (unsigned long long)g->id, (unsigned long long)to, msg);
		goto out;
	}
	while (!last) {
		Raftd__PeerFrame f = RAFTD__PEER_FRAME__INIT;
		Raftd__SnapshotChunk c = RAFTD__SNAPSHOT_CHUNK__INIT;
		Raftd__SnapshotMeta sm = RAFTD__SNAPSHOT_META__INIT;
		Raftd__RaftMessage rm = RAFTD__RAFT_MESSAGE__INIT;
		size_t len;
		if (rd_snapshot_reader_next(r, buf, SNAP_CHUNK, &len, &last, msg) != 0) {
			rd_log_warn("snapshot read failed group=%llu: %s",
			            (unsigned long long)g->id, msg);
			break;
		}
		c.group = g->id;
		c.from = n->cfg.node_id;
		c.to = to;
		c.term = rd_raft_term(g->raft);
		sm.index = meta.index;
		sm.term = meta.term;
		sm.n_voters = meta.conf.n_voters;
		sm.voters = meta.conf.voters;
		sm.n_learners = meta.conf.n_learners;
		sm.learners = meta.conf.learners;
		c.meta = &sm;
		c.offset = offset;
		c.data.data = buf;
		c.data.len = len;
		c.last = last;
		if (last) {
			rm.type = RAFTD__RAFT_MESSAGE_TYPE__RAFT_MSG_SNAPSHOT;
			rm.group = g->id;
			rm.from = n->cfg.node_id;
			rm.to = to;
			rm.term = rd_raft_term(g->raft);
			rm.snapshot = &sm;
			c.message = &rm;
		}
		f.kind_case = RAFTD__PEER_FRAME__KIND_SNAPSHOT_CHUNK;
		f.snapshot_chunk = &c;
		if (rd_transport_send_snapshot(p->t, to, &f, msg) != 0) {
			rd_log_warn("snapshot send failed group=%llu to=%llu: %s",
			            (unsigned long long)g->id, (unsigned long long)to,
			            msg);
			break;
		}
		offset += len;
		ok = last;
	}
	rd_snapshot_reader_close(r);
	if (ok)
		rd_log_info("snapshot sent group=%llu to=%llu index=%llu bytes=%llu",
		            (unsigned long long)g->id, (unsigned long long)to,
		            (unsigned long long)meta.index, (unsigned long long)offset);
out:
	free(buf);
	rd_raft_report_snapshot(g->raft, to, ok);
	rd_node_wake(n);
}

/* Follower side: chunks in order into a storage writer; the last one
 * installs the snapshot atomically and steps the SNAPSHOT message. */
static void on_snapshot(void *arg, uint64_t peer, const Raftd__PeerFrame *f)
{
	struct rd_node *n = arg;
	struct rd_peers *p = n->peers;
	const Raftd__SnapshotChunk *c = f->snapshot_chunk;
	char msg[RD_ERRMSG_SIZE];
	struct rd_message m;

	if (f->kind_case != RAFTD__PEER_FRAME__KIND_SNAPSHOT_CHUNK || n->stopping)
		return;
	struct rd_group *g = rd_node_group(n, c->group);
	struct rd_snapshot_meta offered;
	if (g == NULL)
		return;
	/* The data replaces the state machine before the core sees the
	 * message, so take only a snapshot the core will install. */
	to_meta(&offered, c->meta);
	if (!rd_raft_snapshot_acceptable(g->raft, c->term, &offered)) {
		if (p->sw != NULL && p->sw_group == c->group) {
			rd_snapshot_writer_abort(p->sw);
			p->sw = NULL;
		}
		return;
	}
	if (c->offset == 0) {
		rd_snapshot_writer_abort(p->sw);
		p->sw = NULL;
		if (rd_snapshot_writer_open(n->st, &p->sw, msg) != 0) {
			rd_log_warn("snapshot receive failed group=%llu: %s",
			            (unsigned long long)c->group, msg);
			return;
		}
		p->sw_group = c->group;
		p->sw_from = peer;
	}
	if (p->sw == NULL || p->sw_group != c->group || p->sw_from != peer)
		return;
	if (rd_snapshot_writer_add(p->sw, c->data.data, c->data.len, msg) != 0) {
		rd_log_warn("snapshot chunk rejected group=%llu from=%llu: %s",
		            (unsigned long long)c->group, (unsigned long long)peer, msg);
		rd_snapshot_writer_abort(p->sw);
		p->sw = NULL;
		return;
	}
	if (!c->last)
		return;
	struct rd_snapshot_meta meta;
	int rv = rd_snapshot_writer_finish(p->sw, &meta, msg);
	p->sw = NULL;
	if (rv != 0) {
		rd_log_warn("snapshot install failed group=%llu: %s",
		            (unsigned long long)c->group, msg);
		return;
	}
	rd_log_info("snapshot installed group=%llu from=%llu index=%llu term=%llu",
	            (unsigned long long)c->group, (unsigned long long)peer,
	            (unsigned long long)meta.index, (unsigned long long)meta.term);
	if (c->message != NULL) {
		from_proto(c->message, &m);
		m.snapshot = meta;
		step(n, &m);
	}
}

/* ---- forwarding: the asking side ---------------------------------------------- */

struct fwd {
	struct rd_node *n;
	struct rd_waiter *w;
};

static void on_forward_reply(void *arg, int err, const Raftd__PeerResponse *resp,
                             const char *errmsg);

void rd_peers_forward(struct rd_node *n, struct rd_waiter *w, uint64_t to)
{
	Raftd__PeerRequest req = RAFTD__PEER_REQUEST__INIT;
	Raftd__MetadataProposeRequest mp = RAFTD__METADATA_PROPOSE_REQUEST__INIT;
	Raftd__DataProposeRequest dp = RAFTD__DATA_PROPOSE_REQUEST__INIT;
	Raftd__KvReadRequest kr = RAFTD__KV_READ_REQUEST__INIT;
	struct fwd *f = malloc(sizeof *f);
	uint64_t now = rd_node_now_ns();
	unsigned ms =
	    w->deadline_ns > now ? (unsigned)((w->deadline_ns - now) / 1000000) : 0;
	char msg[RD_ERRMSG_SIZE];

	if (f == NULL || ms == 0)
		goto err;
	f->n = n;
	f->w = w;
	if (w->op == RD_OP_WRITE && w->group == 0) {
		mp.data.data = w->data;
		mp.data.len = w->len;
		mp.hops = w->hops;
		req.body_case = RAFTD__PEER_REQUEST__BODY_METADATA_PROPOSE;
		req.metadata_propose = &mp;
	} else if (w->op == RD_OP_WRITE) {
		dp.group = w->group;
		dp.data.data = w->data;
		dp.data.len = w->len;
		dp.hops = w->hops;
		req.body_case = RAFTD__PEER_REQUEST__BODY_DATA_PROPOSE;
		req.data_propose = &dp;
	} else {
		kr.group = w->group;
		kr.key.data = w->data;
		kr.key.len = w->len;
		kr.stale = w->op == RD_OP_STALE_READ;
		kr.hops = w->hops;
		req.body_case = RAFTD__PEER_REQUEST__BODY_KV_READ;
		req.kv_read = &kr;
	}
	if (rd_transport_call(n->peers->t, to, &req, ms, on_forward_reply, f, msg) == 0)
		return;
	rd_log_debug("forward to node %llu failed: %s", (unsigned long long)to, msg);
err:
	free(f);
	w->target = 0;
	if (ms == 0) {
		struct rd_result r = {.code = RAFTD__ERROR_CODE__TIMEOUT,
		                      .group = w->group,
		                      .message = "deadline passed"};
		rd_waiter_finish(w, &r);
		return;
	}
	/* Try again on the next tick, or time out. */
	rd_waitq_push(&n->forwards, w);
}

/* Put a write that applied remotely in the group's apply queue, by index,
 * to be answered once this node has applied it too (read-your-writes on
 * the node the client asked). */
static void wait_local_apply(struct rd_group *g, struct rd_waiter *w)
{
	struct rd_waiter **pp = &g->props.head, *prev = NULL;
	while (*pp != NULL && (*pp)->index <= w->index) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	w->next = *pp;
	*pp = w;
	if (w->next == NULL)
		g->props.tail = w;
	(void)prev;
}

static void on_forward_reply(void *arg, int err, const Raftd__PeerResponse *resp,
                             const char *errmsg)
{
	struct fwd *f = arg;
	struct rd_node *n = f->n;
	struct rd_waiter *w = f->w;
	struct rd_result r = {.group = w->group};
	uint64_t hint = 0;

	free(f);
	if (err != 0 || n->stopping) {
		r.code = n->stopping           ? RAFTD__ERROR_CODE__SHUTTING_DOWN
		         : err == RD_ETIMEDOUT ? RAFTD__ERROR_CODE__TIMEOUT
		                               : RAFTD__ERROR_CODE__UNAVAILABLE;
		r.message = errmsg;
		rd_waiter_finish(w, &r);
		return;
	}
	if (resp->error != RAFTD__ERROR_CODE__OK) {
		r.code = resp->error;
		r.message = resp->error_message;
		rd_waiter_finish(w, &r);
		return;
	}
	switch (resp->body_case) {
	case RAFTD__PEER_RESPONSE__BODY_METADATA_PROPOSE:
		r.code = resp->metadata_propose->error;
		r.message = resp->metadata_propose->error_message;
		hint = resp->metadata_propose->leader_hint;
		r.index = resp->metadata_propose->index;
		r.group = 0;
		break;
	case RAFTD__PEER_RESPONSE__BODY_DATA_PROPOSE:
		r.code = resp->data_propose->error;
		r.message = resp->data_propose->error_message;
		hint = resp->data_propose->leader_hint;
		r.index = resp->data_propose->index;
		if (r.code == RAFTD__ERROR_CODE__CAS_FAILED &&
		    resp->data_propose->result.len >= 1) {
			r.has_value = true;
			r.found = resp->data_propose->result.data[0] != 0;
			r.value = resp->data_propose->result.data + 1;
			r.value_len = resp->data_propose->result.len - 1;
		}
		break;
	case RAFTD__PEER_RESPONSE__BODY_KV_READ:
		r.code = resp->kv_read->error;
		r.message = resp->kv_read->error_message;
		hint = resp->kv_read->leader_hint;
		r.index = resp->kv_read->index;
		r.has_value = r.code == RAFTD__ERROR_CODE__OK;
		r.found = resp->kv_read->found;
		r.value = resp->kv_read->value.data;
		r.value_len = resp->kv_read->value.len;
		break;
	default:
		r.code = RAFTD__ERROR_CODE__INTERNAL;
		r.message = "unexpected answer from the leader";
		break;
	}
	if (r.code == RAFTD__ERROR_CODE__NOT_LEADER ||
	    r.code == RAFTD__ERROR_CODE__NO_LEADER) {
		w->target = 0;
		if (hint != 0 && hint != n->cfg.node_id &&
		    w->hops + 1 < RD_NODE_FORWARD_HOPS) {
			w->hops++;
			w->target = hint;
			rd_peers_forward(n, w, hint);
			return;
		}
		if (w->hops + 1 < RD_NODE_FORWARD_HOPS) {
			/* Wait for a leader to be known, then retry (tick). */
			w->hops++;
			rd_waitq_push(&n->forwards, w);
			return;
		}
		r.leader_hint = hint;
		rd_waiter_finish(w, &r);
		return;
	}
	struct rd_group *g = rd_node_group(n, w->group);
	if (r.code == RAFTD__ERROR_CODE__OK && w->op == RD_OP_WRITE && g != NULL &&
	    rd_raft_applied_index(g->raft) < r.index) {
		w->kind = RD_WAIT_APPLIED;
		w->index = r.index;
		w->remote = r;
		w->remote.message = NULL;
		wait_local_apply(g, w);
		return;
	}
	rd_waiter_finish(w, &r);
}

/* ---- forwarding: the leader's side ----------------------------------------------- */

struct peer_reply {
	struct rd_transport_responder *r;
	Raftd__PeerRequest__BodyCase kind;
};

static void reply_peer(void *ud, uint64_t request_id, const struct rd_result *res)
{
	struct peer_reply *pr = ud;
	Raftd__PeerResponse resp = RAFTD__PEER_RESPONSE__INIT;
	Raftd__MetadataProposeResponse mp = RAFTD__METADATA_PROPOSE_RESPONSE__INIT;
	Raftd__DataProposeResponse dp = RAFTD__DATA_PROPOSE_RESPONSE__INIT;
	Raftd__KvReadResponse kr = RAFTD__KV_READ_RESPONSE__INIT;
	char *msgtxt = (char *)(res->message != NULL ? res->message : "");
	uint8_t *result = NULL;

	(void)request_id;
	switch (pr->kind) {
	case RAFTD__PEER_REQUEST__BODY_METADATA_PROPOSE:
		mp.error = (Raftd__ErrorCode)res->code;
		mp.error_message = msgtxt;
		mp.leader_hint = res->leader_hint;
		mp.index = res->index;
		resp.body_case = RAFTD__PEER_RESPONSE__BODY_METADATA_PROPOSE;
		resp.metadata_propose = &mp;
		break;
	case RAFTD__PEER_REQUEST__BODY_DATA_PROPOSE:
		dp.error = (Raftd__ErrorCode)res->code;
		dp.error_message = msgtxt;
		dp.leader_hint = res->leader_hint;
		dp.group = res->group;
		dp.index = res->index;
		if (res->has_value && (result = malloc(res->value_len + 1)) != NULL) {
			result[0] = res->found;
			memcpy(result + 1, res->value, res->value_len);
			dp.result.data = result;
			dp.result.len = res->value_len + 1;
		}
		resp.body_case = RAFTD__PEER_RESPONSE__BODY_DATA_PROPOSE;
		resp.data_propose = &dp;
		break;
	default:
		kr.error = (Raftd__ErrorCode)res->code;
		kr.error_message = msgtxt;
		kr.leader_hint = res->leader_hint;
		kr.found = res->found;
		kr.value.data = (uint8_t *)res->value;
		kr.value.len = res->value_len;
		kr.index = res->index;
		resp.body_case = RAFTD__PEER_RESPONSE__BODY_KV_READ;
		resp.kv_read = &kr;
		break;
	}
	rd_transport_respond(pr->r, &resp);
	free(result);
	free(pr);
}

static void on_request(void *arg, uint64_t peer, const Raftd__PeerRequest *req,
                       struct rd_transport_responder *r)
{
	struct rd_node *n = arg;
	Raftd__PeerResponse resp = RAFTD__PEER_RESPONSE__INIT;
	Raftd__Pong pong = RAFTD__PONG__INIT;
	const ProtobufCBinaryData *data;
	struct peer_reply *pr;
	struct rd_waiter *w;
	uint64_t group;
	uint8_t op = RD_OP_WRITE;

	(void)peer;
	switch (req->body_case) {
	case RAFTD__PEER_REQUEST__BODY_PING:
		pong.topology_version = n->routing.version;
		pong.sent_us = req->ping->sent_us;
		resp.body_case = RAFTD__PEER_RESPONSE__BODY_PONG;
		resp.pong = &pong;
		rd_transport_respond(r, &resp);
		return;
	case RAFTD__PEER_REQUEST__BODY_METADATA_PROPOSE:
		group = 0;
		data = &req->metadata_propose->data;
		break;
	case RAFTD__PEER_REQUEST__BODY_DATA_PROPOSE:
		group = req->data_propose->group;
		if (group == 0 && req->data_propose->vshard < RD_VSHARDS)
			group =
			    rd_routing_group_of(&n->routing, req->data_propose->vshard);
		data = &req->data_propose->data;
		break;
	case RAFTD__PEER_REQUEST__BODY_KV_READ:
		group = req->kv_read->group;
		data = &req->kv_read->key;
		op = req->kv_read->stale ? RD_OP_STALE_READ : RD_OP_READ;
		break;
	default:
		resp.error = RAFTD__ERROR_CODE__INVALID;
		resp.error_message = (char *)"request kind not served by this node";
		rd_transport_respond(r, &resp);
		return;
	}
	if (!n->ready || n->stopping) {
		resp.error = n->stopping ? RAFTD__ERROR_CODE__SHUTTING_DOWN
		                         : RAFTD__ERROR_CODE__NOT_READY;
		rd_transport_respond(r, &resp);
		return;
	}
	pr = malloc(sizeof *pr);
	w = pr != NULL ? rd_waiter_new(RD_WAIT_FORWARD, reply_peer, pr, 0,
	                               rd_node_now_ns() +
	                                   (uint64_t)(req->deadline_ms
	                                                  ? req->deadline_ms
	                                                  : n->cfg.request_timeout_ms) *
	                                       1000000ull)
	               : NULL;
	if (w == NULL || (data->len > 0 && (w->data = malloc(data->len)) == NULL)) {
		free(w);
		free(pr);
		resp.error = RAFTD__ERROR_CODE__INTERNAL;
		rd_transport_respond(r, &resp);
		return;
	}
	pr->r = r;
	pr->kind = req->body_case;
	if (data->len > 0)
		memcpy(w->data, data->data, data->len);
	w->len = data->len;
	w->group = group;
	w->op = op;
	w->no_forward = true;
	rd_node_submit(n, w);
}

/* ---- lifecycle ---------------------------------------------------------------- */

static void on_peer(void *arg, uint64_t peer, bool connected)
{
	(void)arg;
	rd_log_info("peer %s peer=%llu", connected ? "connected" : "disconnected",
	            (unsigned long long)peer);
}

/* Only members speak Raft: for now the founding peers of [cluster] peers
 * (n->members). */
static bool is_member(void *arg, uint64_t peer)
{
	const struct rd_node *n = arg;

	for (unsigned i = 0; i < n->n_members; i++)
		if (n->members[i].id == peer)
			return true;
	return false;
}

int rd_peers_start(struct rd_node *n, char *msg)
{
	struct rd_transport_config tc;
	struct rd_transport_callbacks cbs = {.on_batch = on_batch,
	                                     .on_snapshot = on_snapshot,
	                                     .on_request = on_request,
	                                     .on_peer = on_peer,
	                                     .is_member = is_member,
	                                     .arg = n};
	struct rd_peers *p = calloc(1, sizeof *p);
	int rv;

	if (p == NULL)
		return rd_errorf(msg, RD_ENOMEM, "out of memory");
	p->n = n;
	n->peers = p;
	rd_transport_config_init(&tc, &n->cfg);
	rv = rd_transport_new(&p->t, n->base, &tc, &cbs, msg);
	if (rv != 0) {
		rd_errprefix(msg, "transport: ");
		return rv;
	}
	for (unsigned i = 0; i < n->n_members; i++) {
		const struct rd_member *m = &n->members[i];
		if (m->id == n->cfg.node_id)
			continue;
		rv = rd_transport_peer_add(p->t, m->id,
		                           (const struct sockaddr *)&m->addr.sa,
		                           m->addr.salen, msg);
		if (rv != 0)
			return rv;
		p->out[p->n_out].id = m->id;
		p->out[p->n_out++].len = BATCH_HEAD;
	}
	return 0;
}

void rd_peers_stop(struct rd_node *n)
{
	struct rd_peers *p = n->peers;
	if (p == NULL || p->t == NULL)
		return;
	rd_transport_free(p->t);
	p->t = NULL;
}

void rd_peers_free(struct rd_node *n)
{
	struct rd_peers *p = n->peers;
	if (p == NULL)
		return;
	rd_peers_stop(n);
	rd_snapshot_writer_abort(p->sw);
	for (unsigned i = 0; i < p->n_out; i++)
		free(p->out[i].buf);
	free(p->ents);
	free(p->entp);
	free(p);
	n->peers = NULL;
}

void rd_peers_reload(struct rd_node *n, const struct rd_config *cfg)
{
	char msg[RD_ERRMSG_SIZE];
	struct rd_transport_config tc;
	if (n->peers == NULL || n->peers->t == NULL)
		return;
	rd_transport_config_init(&tc, cfg);
	if (rd_transport_reload(n->peers->t, &tc, msg) != 0)
		rd_log_err("TLS reload failed, keeping the current certificates: %s",
		           msg);
	else
		rd_log_notice("TLS certificates reloaded");
}

bool rd_peers_connected(const struct rd_node *n, uint64_t id, uint64_t *rtt_us)
{
	struct rd_transport_peer_stats st;
	if (n->peers == NULL || n->peers->t == NULL ||
	    rd_transport_peer_stats(n->peers->t, id, &st) != 0)
		return false;
	*rtt_us = st.rtt_us;
	return st.connected;
}

void rd_peers_figures(const struct rd_node *n, uint64_t id, struct rd_peer_figures *f)
{
	struct rd_transport_peer_stats st;
	memset(f, 0, sizeof *f);
	if (n->peers == NULL || n->peers->t == NULL ||
	    rd_transport_peer_stats(n->peers->t, id, &st) != 0)
		return;
	f->connected = st.connected;
	/* Batches go to the transport pre-encoded, so it cannot count their
	 * messages: this side does. */
	const struct peer_out *o = peer_out(n->peers, id);
	f->msgs_out = o != NULL ? o->msgs : st.raft_msgs_out;
	f->msgs_in = st.raft_msgs_in;
	f->bytes_out = st.bytes_out;
	f->bytes_in = st.bytes_in;
	f->rtt_us = st.rtt_us;
	f->lost = st.lost_packets;
	f->reconnects = st.reconnects;
}

uint64_t rd_peers_unknown_group(const struct rd_node *n)
{
	return n->peers != NULL ? n->peers->unknown_group : 0;
}

uint64_t rd_peers_malformed(const struct rd_node *n)
{
	struct rd_transport_stats st;
	if (n->peers == NULL || n->peers->t == NULL)
		return 0;
	rd_transport_stats(n->peers->t, &st);
	return st.malformed;
}

void rd_peers_transport_stats(const struct rd_node *n, struct rd_transport_stats *st)
{
	memset(st, 0, sizeof *st);
	if (n->peers != NULL && n->peers->t != NULL)
		rd_transport_stats(n->peers->t, st);
}

/* ---- keeping connections up ------------------------------------------------------ */

static void on_pong(void *arg, int err, const Raftd__PeerResponse *resp,
                    const char *errmsg)
{
	(void)arg, (void)resp;
	if (err != 0)
		rd_log_debug("ping failed: %s", errmsg);
}

/* Ping every peer that has no established connection. Connections are
 * otherwise dialed on first use; pinging at start and then every second
 * brings them up (and settles the simultaneous-dial tie-break) before
 * client requests are forwarded over them. */
void rd_peers_keepalive(struct rd_node *n)
{
	struct rd_peers *p = n->peers;
	Raftd__PeerRequest req = RAFTD__PEER_REQUEST__INIT;
	Raftd__Ping ping = RAFTD__PING__INIT;
	char msg[RD_ERRMSG_SIZE];

	if (p == NULL || p->t == NULL)
		return;
	ping.topology_version = n->routing.version;
	ping.sent_us = rd_node_now_ns() / 1000;
	req.body_case = RAFTD__PEER_REQUEST__BODY_PING;
	req.ping = &ping;
	for (unsigned i = 0; i < p->n_out; i++) {
		struct rd_transport_peer_stats st;
		if (rd_transport_peer_stats(p->t, p->out[i].id, &st) == 0 && st.connected)
			continue;
		rd_transport_call(p->t, p->out[i].id, &req, 1000, on_pong, NULL, msg);
	}
}
