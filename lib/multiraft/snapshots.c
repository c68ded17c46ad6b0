/*
 * Snapshot streaming between peers (Raft thesis §5.1 and §3.10's
 * InstallSnapshot, carried on the transport's snapshot stream so that a
 * large snapshot never delays heartbeats).
 *
 * Happy path: the leader's driver asks for a send (drive.c, from the
 * update's snap_sends); rd_snapshots_send reads the group's state in
 * SNAP_CHUNK pieces and queues one SnapshotChunk frame per piece, the last
 * carrying the SNAPSHOT message. The follower writes the chunks, in order,
 * into a storage snapshot writer; the last one installs the data
 * atomically and steps the SNAPSHOT message into the core.
 * Failure modes: a read or send failure reports the send as failed to the
 * core (which retries later); a chunk out of order, from another sender
 * or for a snapshot the core would refuse, aborts that group's receive.
 * Up to RD_SNAP_IN_SLOTS groups receive at once (node_internal.h), each in
 * its own slot, so one leader's stream never cancels another's.
 */
#include <stdlib.h>
#include <string.h>

#include "multiraft/node_internal.h"
#include "raftd.pb-c.h"
#include "storage/snapshot.h"
#include "transport/transport.h"
#include "transport/wire.h"
#include "util/err.h"
#include "util/log.h"

#define SNAP_CHUNK RD_TRANSPORT_SNAPSHOT_CHUNK

/* Leader side: stream group g's current snapshot to `to` as SnapshotChunk
 * frames on the snapshot stream; the last one carries the SNAPSHOT message
 * the follower steps once it has installed the data. The core learns the
 * outcome of the send at once (the transport queues it whole); the
 * follower's answer to the SNAPSHOT message moves its progress. */
void rd_snapshots_send(struct rd_node *n, struct rd_group *g, uint64_t to)
{
	struct rd_transport *t = rd_peers_transport(n);
	struct rd_snapshot_reader *r;
	struct rd_snapshot_meta meta;
	char msg[RD_ERRMSG_SIZE];
	uint8_t *buf = malloc(SNAP_CHUNK);
	uint64_t offset = 0;
	bool last = false, ok = false;

	if (buf == NULL || t == NULL)
		goto out;
	if (rd_snapshot_reader_open(n->st, g->id, &r, &meta, msg) != 0) {
		rd_log_warn("snapshot not produced group=%llu to=%llu: %s",
		            (unsigned long long)g->id, (unsigned long long)to, msg);
		goto out;
	}
	while (!last) {
		Raftd__PeerFrame f = RAFTD__PEER_FRAME__INIT;
		Raftd__SnapshotChunk c = RAFTD__SNAPSHOT_CHUNK__INIT;
		Raftd__SnapshotMeta sm;
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
		rd_wire_meta_to_proto(&sm, &meta);
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
			rm.to_incarnation = rd_membership_replica_inc(g, to);
			rm.term = rd_raft_term(g->raft);
			rm.snapshot = &sm;
			c.message = &rm;
		}
		f.kind_case = RAFTD__PEER_FRAME__KIND_SNAPSHOT_CHUNK;
		f.snapshot_chunk = &c;
		if (rd_transport_send_snapshot(t, to, &f, msg) != 0) {
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
	rd_node_touch(n, g);
	rd_node_wake(n);
}

static void finish_install(struct rd_node *n, struct rd_snap_in *p);

static void slot_clear(struct rd_snap_in *p)
{
	rd_snapshot_writer_abort(p->sw);
	p->sw = NULL;
	p->pending = false;
	p->has_msg = false;
}

size_t rd_snapshots_pick_slot(const struct rd_snap_in *slots, size_t n_slots,
                              uint64_t group)
{
	size_t free_slot = n_slots, lru = n_slots;

	for (size_t i = 0; i < n_slots; i++) {
		const struct rd_snap_in *p = &slots[i];
		if (p->sw != NULL && p->sw_group == group)
			return i; /* a new stream of the group replaces its old one */
		if (p->sw == NULL) {
			if (free_slot == n_slots)
				free_slot = i;
		} else if (!p->pending && (lru == n_slots || p->used < slots[lru].used)) {
			lru = i;
		}
	}
	return free_slot != n_slots ? free_slot : lru;
}

static struct rd_snap_in *slot_of(struct rd_node *n, uint64_t group)
{
	for (size_t i = 0; i < RD_SNAP_IN_SLOTS; i++)
		if (n->snap_in[i].sw != NULL && n->snap_in[i].sw_group == group)
			return &n->snap_in[i];
	return NULL;
}

/* Follower side: chunks in order into a storage writer of the group's slot;
 * the last one installs the snapshot atomically and steps the SNAPSHOT
 * message. */
void rd_snapshots_on_frame(void *arg, uint64_t peer, const Raftd__PeerFrame *f)
{
	struct rd_node *n = arg;
	const Raftd__SnapshotChunk *c = f->snapshot_chunk;
	char msg[RD_ERRMSG_SIZE];
	struct rd_message m;
	struct rd_snap_in *p;

	if (f->kind_case != RAFTD__PEER_FRAME__KIND_SNAPSHOT_CHUNK || n->stopping)
		return;
	struct rd_group *g = rd_node_group(n, c->group);
	struct rd_snapshot_meta offered;
	if (g == NULL)
		return;
	p = slot_of(n, c->group);
	/* The data replaces the state machine before the core sees the
	 * message, so take only a snapshot the core will install. */
	rd_wire_meta_from_proto(&offered, c->meta);
	if (!rd_raft_snapshot_acceptable(g->raft, c->term, &offered)) {
		if (p != NULL)
			slot_clear(p);
		return;
	}
	if (c->offset == 0) {
		size_t i = rd_snapshots_pick_slot(n->snap_in, RD_SNAP_IN_SLOTS, c->group);
		if (i == RD_SNAP_IN_SLOTS) {
			rd_log_debug("snapshot receive deferred group=%llu: every slot "
			             "waits to install",
			             (unsigned long long)c->group);
			return;
		}
		p = &n->snap_in[i];
		if (p->sw != NULL && p->sw_group != c->group)
			rd_log_info("snapshot receive replaced group=%llu by group=%llu "
			            "(%d at once)",
			            (unsigned long long)p->sw_group,
			            (unsigned long long)c->group, RD_SNAP_IN_SLOTS);
		slot_clear(p);
		if (rd_snapshot_writer_open(n->st, &p->sw, msg) != 0) {
			rd_log_warn("snapshot receive failed group=%llu: %s",
			            (unsigned long long)c->group, msg);
			return;
		}
		p->sw_group = c->group;
		p->sw_from = peer;
	}
	if (p == NULL || p->sw_from != peer || p->pending)
		return;
	p->used = ++n->snap_in_clock;
	if (rd_snapshot_writer_add(p->sw, c->data.data, c->data.len, msg) != 0) {
		rd_log_warn("snapshot chunk rejected group=%llu from=%llu: %s",
		            (unsigned long long)c->group, (unsigned long long)peer, msg);
		slot_clear(p);
		return;
	}
	if (!c->last)
		return;
	p->pending = true;
	p->term = c->term;
	p->offered = offered;
	p->has_msg = false;
	if (c->message != NULL) {
		/* For another replica of this node (replicas.c): not
		 * installed, so nothing is acknowledged for it. */
		if (!rd_membership_addressed(n, c->group, peer, 0,
		                             c->message->to_incarnation) ||
		    rd_wire_msg_from_proto(c->message, &m, NULL, 0) != 0) {
			slot_clear(p);
			return;
		}
		/* A SNAPSHOT message carries no entries: ignore any. */
		free(m.entries);
		m.entries = NULL;
		m.n_entries = 0;
		p->msg = m;
		p->has_msg = true;
	}
	finish_install(n, p);
}

/* Install the received snapshot and step its message, unless storage
 * refuses for now (RD_EAGAIN: the batch holds work for the group, and
 * committing that batch afterwards would publish the replaced state back,
 * storage/snapshot.h): then the writer is kept and rd_snapshots_retry
 * finishes after the next commit. */
static void finish_install(struct rd_node *n, struct rd_snap_in *p)
{
	struct rd_group *g = rd_node_group(n, p->sw_group);
	struct rd_snapshot_meta meta;
	char msg[RD_ERRMSG_SIZE];
	int rv;

	if (g == NULL || !rd_raft_snapshot_acceptable(g->raft, p->term, &p->offered)) {
		/* The core moved past it while the install waited. */
		slot_clear(p);
		return;
	}
	rv = rd_snapshot_writer_finish(p->sw, &meta, msg);
	if (rv == RD_EAGAIN) {
		rd_log_debug("snapshot install deferred group=%llu: %s",
		             (unsigned long long)p->sw_group, msg);
		rd_node_wake(n);
		return; /* writer kept (storage/snapshot.h) */
	}
	p->sw = NULL; /* finish consumed the writer */
	p->pending = false;
	if (rv != 0) {
		p->has_msg = false;
		rd_log_warn("snapshot install failed group=%llu: %s",
		            (unsigned long long)p->sw_group, msg);
		return;
	}
	rd_subs_snapshot_installed(n, p->sw_group, meta.index);
	rd_log_info("snapshot installed group=%llu from=%llu index=%llu term=%llu",
	            (unsigned long long)p->sw_group, (unsigned long long)p->sw_from,
	            (unsigned long long)meta.index, (unsigned long long)meta.term);
	if (p->has_msg) {
		p->msg.snapshot = meta;
		p->has_msg = false;
		rd_peers_step(n, &p->msg);
	}
}

bool rd_snapshots_pending(const struct rd_node *n)
{
	for (size_t i = 0; i < RD_SNAP_IN_SLOTS; i++)
		if (n->snap_in[i].pending && n->snap_in[i].sw != NULL)
			return true;
	return false;
}

void rd_snapshots_retry(struct rd_node *n)
{
	for (size_t i = 0; i < RD_SNAP_IN_SLOTS; i++)
		if (n->snap_in[i].pending && n->snap_in[i].sw != NULL)
			finish_install(n, &n->snap_in[i]);
}

void rd_snapshots_free(struct rd_node *n)
{
	for (size_t i = 0; i < RD_SNAP_IN_SLOTS; i++)
		slot_clear(&n->snap_in[i]);
}
