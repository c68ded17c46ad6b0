/*
 * Simulated cluster: see cluster.h. The driver follows the ordering the core
 * documents: send `msgs`, persist, rd_raft_persisted, send
 * `msgs_after_persist`, apply, advance. A crash between taking an update and
 * persisting it loses that update's writes, as a real crash would.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "util/err.h"

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
	h *= 0xff51afd7ed558ccdULL;
	return h ^ (h >> 33);
}

static uint64_t entry_hash(const struct rd_entry *e)
{
	uint64_t h = mix(mix(mix(1, e->term), e->index), e->type);
	for (uint32_t i = 0; i < e->len; i++)
		h = mix(h, e->data[i]);
	return h;
}

uint64_t rc_rand(struct rc_cluster *c)
{
	uint64_t z = (c->rng += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void rc_print(struct rc_cluster *c, const char *fmt, ...)
{
	if (c->out == NULL)
		return;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(c->out, fmt, ap);
	va_end(ap);
}

void rc_init(struct rc_cluster *c, uint64_t seed)
{
	memset(c, 0, sizeof(*c));
	c->rng = seed;
	c->base.election_ticks = 10;
	c->base.heartbeat_ticks = 1;
	c->base.max_inflight_msgs = 16;
	c->base.max_msg_bytes = 1 << 20;
	c->base.pre_vote = false;
	c->base.check_quorum = false;
	c->auto_snapshot_reports = true;
}

static void disk_free(struct rc_disk *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->ents[i].e.data);
	free(d->ents);
	memset(d, 0, sizeof(*d));
}

void rc_free(struct rc_cluster *c)
{
	for (uint64_t id = 1; id <= RC_MAX; id++) {
		struct rc_node *nd = &c->nodes[id];
		if (!nd->exists)
			continue;
		rd_raft_free(nd->r);
		free(nd->pend_ents);
		free(nd->asked);
		free(nd->src_buf);
		disk_free(&nd->disk);
	}
	for (size_t i = 0; i < c->n_net; i++)
		free(c->net[i].m.entries);
	free(c->net);
	free(c->leader_of);
	free(c->lm);
	free(c->sm_at);
	free(c->commit_term);
	free(c->conf_at);
	free(c->read_floor);
}

void rc_add(struct rc_cluster *c, uint64_t id, const uint64_t *voters, uint32_t n)
{
	struct rc_node *nd = &c->nodes[id];
	memset(nd, 0, sizeof(*nd));
	nd->id = id;
	nd->exists = true;
	nd->boot_conf.n_voters = n;
	for (uint32_t i = 0; i < n; i++)
		nd->boot_conf.voters[i] = voters[i];
	rc_start(c, id);
}

void rc_add_voters(struct rc_cluster *c, uint32_t n)
{
	uint64_t v[RC_MAX];
	for (uint32_t i = 0; i < n; i++)
		v[i] = i + 1;
	for (uint32_t i = 0; i < n; i++)
		rc_add(c, v[i], v, n);
}

/* The log source of a node: entries [lo, hi) from its disk, the payload
 * bytes bounded by max_bytes (at least one), as lib/storage serves them. */
static int src_entries(void *ud, uint64_t group, uint64_t lo, uint64_t hi,
                       uint64_t max_bytes, const struct rd_entry **ents, size_t *n)
{
	struct rc_node *nd = ud;
	const struct rc_disk *d = &nd->disk;
	uint64_t bytes = 0;
	size_t k = 0;

	(void)group;
	if (nd->src_fail)
		return RD_EIO;
	if (lo <= d->snap.index || lo >= hi || hi - 1 > d->snap.index + d->n)
		return RD_EUNAVAILABLE;
	for (uint64_t i = lo; i < hi; i++) {
		const struct rd_entry *e = &d->ents[i - d->snap.index - 1].e;
		if (k > 0 && bytes + e->len > max_bytes)
			break;
		if (k == nd->src_cap) {
			nd->src_cap = nd->src_cap ? nd->src_cap * 2 : 16;
			nd->src_buf =
			    realloc(nd->src_buf, nd->src_cap * sizeof(*nd->src_buf));
		}
		nd->src_buf[k++] = *e;
		bytes += e->len;
	}
	if (nd->src_bad_term)
		nd->src_buf[0].term++;
	nd->src_reads++;
	*ents = nd->src_buf;
	*n = k;
	return 0;
}

void rc_start(struct rc_cluster *c, uint64_t id)
{
	struct rc_node *nd = &c->nodes[id];
	if (nd->up || nd->retired)
		return;
	struct rd_raft_config cfg = c->base;
	cfg.id = id;
	cfg.seed = rc_rand(c);
	cfg.hard_state = nd->disk.hs;
	cfg.conf = nd->boot_conf;
	cfg.snapshot = nd->disk.snap;
	cfg.applied = nd->disk.snap.index;
	struct rd_entry *ents = calloc(nd->disk.n + 1, sizeof(*ents));
	for (size_t i = 0; i < nd->disk.n; i++)
		ents[i] = nd->disk.ents[i].e;
	cfg.entries = ents;
	cfg.n_entries = nd->disk.n;
	if (c->log_source) {
		nd->src.entries = src_entries;
		nd->src.ud = nd;
		cfg.log_source = &nd->src;
	}
	char msg[RD_ERRMSG_SIZE] = "";
	int rc = rd_raft_new(&cfg, &nd->r, msg);
	free(ents);
	if (rc != 0) {
		rc_violation(c, "restart of %llu failed: %s", (unsigned long long)id,
		             msg);
		return;
	}
	nd->up = true;
	c->epoch[id]++;
	nd->n_asked = 0; /* a new instance has asked for nothing yet */
	nd->sm_hash = nd->disk.snap_sm;
	nd->sm_index = nd->disk.snap.index;
	nd->sm_conf = nd->disk.snap.conf;
	nd->lead_term = 0;
}

void rc_crash(struct rc_cluster *c, uint64_t id)
{
	struct rc_node *nd = &c->nodes[id];
	if (!nd->up)
		return;
	if (c->verbose)
		rc_print(c, "t=%llu crash %llu\n", (unsigned long long)c->now,
		         (unsigned long long)id);
	rd_raft_free(nd->r);
	nd->r = NULL;
	nd->up = false;
	c->st_crashes++;
	c->st_lost_updates += nd->holding;
	nd->holding = false;
	free(nd->pend_ents);
	nd->pend_ents = NULL;
	size_t keep = 0;
	for (size_t i = 0; i < c->n_net; i++) {
		if (c->net[i].held_by == id)
			free(c->net[i].m.entries);
		else
			c->net[keep++] = c->net[i];
	}
	c->n_net = keep;
}

/* --- node liveness (cluster.h) ----------------------------------------------------- */

void rc_liveness(struct rc_cluster *c)
{
	if (!c->liveness)
		return;
	for (uint64_t x = 1; x <= RC_MAX; x++) {
		struct rc_node *nx = &c->nodes[x];
		if (!nx->up)
			continue;
		for (uint64_t y = 1; y <= RC_MAX; y++) {
			if (y == x || !c->nodes[y].exists)
				continue;
			bool down = false;
			if (c->nodes[y].up && !c->cut[y][x]) {
				c->heard[x][y] = c->now;
				/* A new process there leads nothing it led. */
				down = c->seen_epoch[x][y] != 0 &&
				       c->seen_epoch[x][y] != c->epoch[y];
				c->seen_epoch[x][y] = c->epoch[y];
			} else {
				down = c->now - c->heard[x][y] >= c->base.election_ticks;
			}
			if (down && rd_raft_peer_down(nx->r, y)) {
				c->st_peer_down_wakes++;
				if (c->verbose)
					rc_print(c, "t=%llu %llu: peer %llu down, woke\n",
					         (unsigned long long)c->now,
					         (unsigned long long)x,
					         (unsigned long long)y);
			}
		}
	}
}

/* --- network --------------------------------------------------------------------- */

static void net_push(struct rc_cluster *c, const struct rd_message *m, uint64_t snap_sm,
                     uint64_t snap_ph, uint64_t held_by)
{
	if (m->to == 0 || m->to > RC_MAX || !c->nodes[m->to].exists)
		return;
	int copies = 1;
	if (c->p_drop && rc_rand(c) % 1000 < c->p_drop)
		copies = 0;
	else if (c->p_dup && rc_rand(c) % 1000 < c->p_dup)
		copies = 2;
	for (int k = 0; k < copies; k++) {
		if (c->n_net == c->cap_net) {
			c->cap_net = c->cap_net ? c->cap_net * 2 : 64;
			c->net = realloc(c->net, c->cap_net * sizeof(*c->net));
		}
		struct rc_env *e = &c->net[c->n_net++];
		e->m = *m;
		e->at = c->now + (c->max_delay ? rc_rand(c) % (c->max_delay + 1) : 0);
		e->snap_sm = snap_sm;
		e->snap_ph = snap_ph;
		e->held_by = held_by;
		e->m.entries = NULL;
		if (m->n_entries > 0) {
			/* One block: the entry array followed by every payload. */
			size_t bytes = m->n_entries * sizeof(struct rd_entry);
			for (uint32_t i = 0; i < m->n_entries; i++)
				bytes += m->entries[i].len;
			struct rd_entry *ents = malloc(bytes);
			uint8_t *p = (uint8_t *)(ents + m->n_entries);
			for (uint32_t i = 0; i < m->n_entries; i++) {
				ents[i] = m->entries[i];
				if (ents[i].len) {
					memcpy(p, m->entries[i].data, ents[i].len);
					ents[i].data = p;
					p += ents[i].len;
				}
			}
			e->m.entries = ents;
		}
	}
}

size_t rc_deliver(struct rc_cluster *c, uint64_t to)
{
	size_t done = 0;
	/* Take the due messages out first: stepping produces new ones. */
	size_t n = c->n_net;
	struct rc_env *due = malloc((n + 1) * sizeof(*due));
	size_t nd = 0, keep = 0;
	for (size_t i = 0; i < n; i++) {
		struct rc_env *e = &c->net[i];
		if (e->at <= c->now && e->held_by == 0 && (to == 0 || e->m.to == to))
			due[nd++] = *e;
		else
			c->net[keep++] = *e;
	}
	c->n_net = keep;
	for (size_t i = 0; i < nd; i++) {
		struct rc_env *e = &due[i];
		struct rc_node *dst = &c->nodes[e->m.to];
		bool ok = dst->up && !c->cut[e->m.from][e->m.to];
		if (c->out && c->verbose) {
			char buf[256];
			rc_fmt_msg(buf, sizeof(buf), &e->m);
			rc_print(c, "  %s%s\n", buf, ok ? "" : " (dropped)");
		}
		if (ok) {
			uint64_t before = rd_raft_snapshot(dst->r)->index;
			rd_raft_step(dst->r, &e->m);
			if (e->m.type == RD_MSG_SNAPSHOT &&
			    rd_raft_snapshot(dst->r)->index == e->m.snapshot.index &&
			    before != e->m.snapshot.index) {
				/* Installed: the data came out of band with it. */
				dst->rx_snap_sm = e->snap_sm;
				dst->rx_snap_ph = e->snap_ph;
			}
			done++;
		}
		free(e->m.entries);
	}
	free(due);
	return done;
}

/* --- disk and application ---------------------------------------------------------- */

static uint64_t disk_ph_at(const struct rc_disk *d, uint64_t index)
{
	if (index == d->snap.index)
		return d->snap_ph;
	return d->ents[index - d->snap.index - 1].ph;
}

static void disk_append(struct rc_cluster *c, struct rc_disk *d, const struct rd_entry *e)
{
	if (e->index <= d->snap.index)
		return;
	size_t pos = (size_t)(e->index - d->snap.index - 1);
	for (size_t i = pos; i < d->n; i++)
		free(d->ents[i].e.data);
	if (pos < d->n)
		d->n = pos;
	if (pos != d->n) {
		rc_violation(c, "persist gap: entry %llu after %zu",
		             (unsigned long long)e->index, d->n);
		return;
	}
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 64;
		d->ents = realloc(d->ents, d->cap * sizeof(*d->ents));
	}
	struct rc_entry *x = &d->ents[d->n++];
	x->e = *e;
	x->e.data = NULL;
	if (e->len) {
		x->e.data = malloc(e->len);
		memcpy(x->e.data, e->data, e->len);
	}
	x->ph = mix(disk_ph_at(d, e->index - 1), entry_hash(e));
	rc__note_prefix(c, e->index, e->term, x->ph);
}

static uint64_t conf_hash(const struct rd_conf_state *cs)
{
	uint64_t h = mix(mix(7, cs->n_voters), cs->n_learners);
	for (uint32_t i = 0; i < cs->n_voters; i++)
		h = mix(h, cs->voters[i]);
	for (uint32_t i = 0; i < cs->n_learners; i++)
		h = mix(h, cs->learners[i]);
	return h | 1; /* 0 = unknown */
}

/* Membership is state too (thesis §5.1): at an index, every node's and
 * every snapshot's is the one the committed log defines. */
static void note_conf(struct rc_cluster *c, struct rc_node *nd, uint64_t index,
                      const struct rd_conf_state *cs, const char *what)
{
	uint64_t h = conf_hash(cs);
	rc__grow_idx(c, index);
	if (c->conf_at[index] == 0)
		c->conf_at[index] = h;
	else if (c->conf_at[index] != h)
		rc_violation(c, "membership at index %llu differs (%s of node %llu)",
		             (unsigned long long)index, what, (unsigned long long)nd->id);
}

static void apply_entry(struct rc_cluster *c, struct rc_node *nd,
                        const struct rd_entry *e)
{
	if (e->index != nd->sm_index + 1) {
		rc_violation(c, "node %llu applies %llu after %llu",
		             (unsigned long long)nd->id, (unsigned long long)e->index,
		             (unsigned long long)nd->sm_index);
		return;
	}
	nd->sm_hash = mix(nd->sm_hash, entry_hash(e));
	nd->sm_index = e->index;
	if (e->type == RD_ENTRY_CONF_CHANGE) {
		uint8_t t;
		uint64_t id;
		if (rd_raft_cc_decode(e->data, e->len, &t, &id) == 0)
			(void)rd_raft_conf_apply(&nd->sm_conf, t, id);
	}
	note_conf(c, nd, e->index, &nd->sm_conf, "applied entries");
	rc__grow_idx(c, e->index);
	/* State machine safety: every node applies the same entry at an index. */
	if (c->sm_at[e->index] == 0)
		c->sm_at[e->index] = nd->sm_hash;
	else if (c->sm_at[e->index] != nd->sm_hash)
		rc_violation(c, "state machine safety: node %llu index %llu",
		             (unsigned long long)nd->id, (unsigned long long)e->index);
	c->applied_total++;
	if (c->out && e->type == RD_ENTRY_NORMAL) {
		size_t l = strlen(nd->applied_txt);
		if (l + e->len + 24 < sizeof(nd->applied_txt))
			snprintf(nd->applied_txt + l, sizeof(nd->applied_txt) - l,
			         "%s%llu:%.*s", l ? " " : "",
			         (unsigned long long)e->index, (int)e->len,
			         (const char *)e->data);
	}
}

static void send_all(struct rc_cluster *c, const struct rd_message *m, size_t n,
                     uint64_t held_by)
{
	for (size_t i = 0; i < n; i++)
		net_push(c, &m[i], 0, 0, held_by);
}

static void print_update(struct rc_cluster *c, struct rc_node *nd,
                         const struct rd_raft_update *u)
{
	if (c->out && c->verbose && (u->role_changed || u->hard_state_changed))
		rc_print(c,
		         "t=%llu n%llu %s term=%llu lead=%llu commit=%llu last=%llu "
		         "persisted=%llu\n",
		         (unsigned long long)c->now, (unsigned long long)nd->id,
		         rd_raft_role_name(rd_raft_role(nd->r)),
		         (unsigned long long)rd_raft_term(nd->r),
		         (unsigned long long)rd_raft_leader(nd->r),
		         (unsigned long long)rd_raft_commit(nd->r),
		         (unsigned long long)rd_raft_last_index(nd->r),
		         (unsigned long long)rd_raft_persisted_index(nd->r));
	c->st_quiesces += u->quiesce_changed && u->quiesced;
	if (c->out && c->verbose && u->quiesce_changed)
		rc_print(c, "t=%llu n%llu %s\n", (unsigned long long)c->now,
		         (unsigned long long)nd->id,
		         u->quiesced ? "quiesced" : rd_raft_wake_name(u->wake_cause));
}

/* The write: snapshot, entries, hard state, then tell the core. */
static void write_disk(struct rc_cluster *c, struct rc_node *nd, bool hs_changed,
                       const struct rd_hard_state *hs, bool has_snap,
                       const struct rd_snapshot_meta *snap, uint64_t snap_sm,
                       uint64_t snap_ph, const struct rd_entry *ents, size_t n)
{
	struct rc_disk *d = &nd->disk;
	if (has_snap) {
		c->st_snap_installs++;
		/* Raft §7, as lib/storage does: entries after the snapshot stay
		 * when the log holds its last entry with its term. */
		size_t drop = d->n;
		if (snap->index > d->snap.index && snap->index <= d->snap.index + d->n &&
		    d->ents[snap->index - d->snap.index - 1].e.term == snap->term)
			drop = (size_t)(snap->index - d->snap.index);
		for (size_t i = 0; i < drop; i++)
			free(d->ents[i].e.data);
		if (drop < d->n)
			memmove(d->ents, d->ents + drop,
			        (d->n - drop) * sizeof(*d->ents));
		d->n -= drop;
		d->snap = *snap;
		d->snap_sm = snap_sm;
		d->snap_ph = snap_ph;
		rc__note_prefix(c, d->snap.index, d->snap.term, d->snap_ph);
	}
	for (size_t i = 0; i < n; i++)
		disk_append(c, d, &ents[i]);
	if (hs_changed)
		d->hs = *hs;
	if (nd->up && n > 0)
		rd_raft_persisted(nd->r, ents[n - 1].index, ents[n - 1].term);
}

int rc_read(struct rc_cluster *c, uint64_t id, uint64_t ctx)
{
	struct rc_node *nd = &c->nodes[id];
	int rv = rd_raft_read_index(nd->r, ctx);
	(void)c;
	if (rv == 0) {
		if (nd->n_asked == nd->cap_asked) {
			nd->cap_asked = nd->cap_asked ? nd->cap_asked * 2 : 16;
			nd->asked =
			    realloc(nd->asked, nd->cap_asked * sizeof(*nd->asked));
		}
		nd->asked[nd->n_asked++] = ctx;
	}
	return rv;
}

/* A read state or failure for `ctx` is handed out: it must answer a
 * request of this instance that has no answer yet. */
static void answered(struct rc_cluster *c, struct rc_node *nd, uint64_t ctx,
                     const char *what)
{
	for (size_t i = 0; i < nd->n_asked; i++) {
		if (nd->asked[i] == ctx) {
			nd->asked[i] = nd->asked[--nd->n_asked];
			return;
		}
	}
	rc_violation(c, "node %llu %s read %llu it has not asked for since its start",
	             (unsigned long long)nd->id, what, (unsigned long long)ctx);
}

/* Apply, serve reads, stream snapshots, advance. */
static void apply_and_advance(struct rc_cluster *c, struct rc_node *nd,
                              const struct rd_raft_update *u)
{
	struct rc_disk *d = &nd->disk;
	if (u->has_snapshot) {
		rc__grow_idx(c, u->snapshot.index);
		if (c->sm_at[u->snapshot.index] &&
		    c->sm_at[u->snapshot.index] != nd->rx_snap_sm)
			rc_violation(c, "snapshot state differs at %llu",
			             (unsigned long long)u->snapshot.index);
		nd->sm_hash = nd->rx_snap_sm;
		nd->sm_index = u->snapshot.index;
		nd->sm_conf = u->snapshot.conf;
		note_conf(c, nd, u->snapshot.index, &u->snapshot.conf,
		          "installed snapshot");
	}
	for (size_t i = 0; i < u->n_committed; i++)
		apply_entry(c, nd, &u->committed[i]);
	if (conf_hash(rd_raft_conf_applied(nd->r)) != conf_hash(&nd->sm_conf))
		rc_violation(c,
		             "node %llu: the core's applied configuration is not the "
		             "one of its applied entries at %llu",
		             (unsigned long long)nd->id,
		             (unsigned long long)nd->sm_index);
	for (size_t i = 0; i < u->n_reads; i++) {
		const struct rd_read_state *rs = &u->reads[i];
		c->st_reads++;
		answered(c, nd, rs->ctx, "served");
		if (rs->index > nd->sm_index)
			rc_violation(c, "read %llu served before apply",
			             (unsigned long long)rs->ctx);
		if (rs->ctx < c->n_read_floor && rs->index < c->read_floor[rs->ctx])
			rc_violation(
			    c, "stale read %llu at %llu, %llu was committed before it",
			    (unsigned long long)rs->ctx, (unsigned long long)rs->index,
			    (unsigned long long)c->read_floor[rs->ctx]);
		if (c->out) {
			size_t l = strlen(nd->reads_txt);
			snprintf(nd->reads_txt + l, sizeof(nd->reads_txt) - l,
			         "%sctx=%llu@%llu", l ? " " : "",
			         (unsigned long long)rs->ctx,
			         (unsigned long long)rs->index);
		}
	}
	for (size_t i = 0; i < u->n_reads_failed; i++) {
		answered(c, nd, u->reads_failed[i], "failed");
		if (c->out) {
			size_t l = strlen(nd->reads_txt);
			snprintf(nd->reads_txt + l, sizeof(nd->reads_txt) - l,
			         "%sctx=%llu failed", l ? " " : "",
			         (unsigned long long)u->reads_failed[i]);
		}
	}
	for (size_t i = 0; i < u->n_snap_sends; i++) {
		const struct rd_snap_send *s = &u->snap_sends[i];
		/* The runtime sends its latest snapshot, which may be newer
		 * than the request if it compacted since. */
		if (d->snap.index < s->meta.index) {
			rc_violation(c, "snapshot request at %llu but disk has %llu",
			             (unsigned long long)s->meta.index,
			             (unsigned long long)d->snap.index);
			continue;
		}
		struct rd_message m = {.type = RD_MSG_SNAPSHOT,
		                       .group = rd_raft_group(nd->r),
		                       .from = nd->id,
		                       .to = s->to,
		                       .term = s->term,
		                       .snapshot = d->snap};
		uint64_t sm = d->snap_sm, ph = d->snap_ph;
		if (c->ship_applied && nd->sm_index > d->snap.index &&
		    nd->sm_index <= d->snap.index + d->n) {
			/* The state at the applied index, which this update's
			 * entries reached; the log holds them (applied <=
			 * commit <= persisted). */
			m.snapshot.index = nd->sm_index;
			m.snapshot.term = rd_raft_term_at(nd->r, nd->sm_index);
			m.snapshot.conf = *rd_raft_conf_applied(nd->r);
			sm = nd->sm_hash;
			ph = disk_ph_at(d, nd->sm_index);
			c->st_applied_snapshots++;
		}
		net_push(c, &m, sm, ph, 0);
	}
	size_t nss = u->n_snap_sends < RC_MAX * 2 ? u->n_snap_sends : RC_MAX * 2;
	uint64_t tos[RC_MAX * 2];
	for (size_t i = 0; i < nss; i++)
		tos[i] = u->snap_sends[i].to;
	rd_raft_advance(nd->r, u);
	if (c->auto_snapshot_reports)
		for (size_t i = 0; i < nss; i++)
			rd_raft_report_snapshot(nd->r, tos[i], true);
}

bool rc_process(struct rc_cluster *c, uint64_t id)
{
	struct rc_node *nd = &c->nodes[id];
	bool any = false;
	if (!nd->up || nd->holding)
		return false;
	for (int guard = 0; guard < 1000 && rd_raft_has_update(nd->r); guard++) {
		struct rd_raft_update u;
		rd_raft_get_update(nd->r, &u);
		print_update(c, nd, &u);
		send_all(c, u.msgs, u.n_msgs, 0);
		/* Snapshot data arrived with the message (rc_deliver). */
		write_disk(c, nd, u.hard_state_changed, &u.hard_state, u.has_snapshot,
		           &u.snapshot, nd->rx_snap_sm, nd->rx_snap_ph, u.entries,
		           u.n_entries);
		send_all(c, u.msgs_after_persist, u.n_msgs_after_persist, 0);
		apply_and_advance(c, nd, &u);
		rc_check(c);
		any = true;
	}
	return any;
}

bool rc_process_early(struct rc_cluster *c, uint64_t id)
{
	struct rc_node *nd = &c->nodes[id];
	if (!nd->up || nd->holding || !rd_raft_has_update(nd->r))
		return false;
	struct rd_raft_update u;
	rd_raft_get_update(nd->r, &u);
	print_update(c, nd, &u);
	send_all(c, u.msgs, u.n_msgs, 0);
	send_all(c, u.msgs_after_persist, u.n_msgs_after_persist, id);
	/* Copy what the write needs: the update's pointers die at advance. */
	nd->pend_hs_changed = u.hard_state_changed;
	nd->pend_hs = u.hard_state;
	nd->pend_has_snap = u.has_snapshot;
	nd->pend_snap = u.snapshot;
	nd->pend_snap_sm = nd->rx_snap_sm; /* later snapshots may arrive meanwhile */
	nd->pend_snap_ph = nd->rx_snap_ph;
	size_t bytes = (u.n_entries + 1) * sizeof(struct rd_entry);
	for (size_t i = 0; i < u.n_entries; i++)
		bytes += u.entries[i].len;
	nd->pend_ents = malloc(bytes);
	uint8_t *p = (uint8_t *)(nd->pend_ents + u.n_entries);
	for (size_t i = 0; i < u.n_entries; i++) {
		nd->pend_ents[i] = u.entries[i];
		if (u.entries[i].len) {
			memcpy(p, u.entries[i].data, u.entries[i].len);
			nd->pend_ents[i].data = p;
			p += u.entries[i].len;
		}
	}
	nd->pend_n = u.n_entries;
	nd->holding = true;
	apply_and_advance(c, nd, &u);
	rc_check(c);
	return true;
}

void rc_finish(struct rc_cluster *c, uint64_t id)
{
	struct rc_node *nd = &c->nodes[id];
	if (!nd->holding)
		return;
	nd->holding = false;
	write_disk(c, nd, nd->pend_hs_changed, &nd->pend_hs, nd->pend_has_snap,
	           &nd->pend_snap, nd->pend_snap_sm, nd->pend_snap_ph, nd->pend_ents,
	           nd->pend_n);
	free(nd->pend_ents);
	nd->pend_ents = NULL;
	for (size_t i = 0; i < c->n_net; i++)
		if (c->net[i].held_by == id)
			c->net[i].held_by = 0;
	rc_check(c);
}

void rc_stabilize(struct rc_cluster *c)
{
	for (int round = 0; round < 200; round++) {
		bool any = false;
		for (uint64_t id = 1; id <= RC_MAX; id++)
			if (c->nodes[id].exists)
				any |= rc_process(c, id);
		any |= rc_deliver(c, 0) > 0;
		if (!any)
			break;
	}
}

void rc_compact(struct rc_cluster *c, uint64_t id, uint64_t index)
{
	struct rc_node *nd = &c->nodes[id];
	if (!nd->up || nd->holding)
		return;
	/* The toy snapshot is the state machine at the applied index. */
	if (index == 0 || index > rd_raft_applied_index(nd->r))
		index = rd_raft_applied_index(nd->r);
	if (index <= nd->disk.snap.index || index > nd->sm_index)
		return;
	/* The state at an earlier index is known from the checker's table,
	 * which every node agreed on (state machine safety). */
	rc__grow_idx(c, index);
	uint64_t sm = index == nd->sm_index ? nd->sm_hash : c->sm_at[index];
	if (sm == 0)
		return;
	struct rd_snapshot_meta meta;
	if (rd_raft_compact(nd->r, index, &meta) != 0) {
		rc_violation(c, "compact %llu refused", (unsigned long long)index);
		return;
	}
	struct rc_disk *d = &nd->disk;
	uint64_t ph = disk_ph_at(d, index);
	size_t drop = (size_t)(index - d->snap.index);
	for (size_t i = 0; i < drop; i++)
		free(d->ents[i].e.data);
	memmove(d->ents, d->ents + drop, (d->n - drop) * sizeof(*d->ents));
	d->n -= drop;
	d->snap = meta;
	c->st_compactions++;
	d->snap_ph = ph;
	d->snap_sm = sm;
}

void rc_send_snapshot(struct rc_cluster *c, uint64_t from, uint64_t to)
{
	struct rc_node *nd = &c->nodes[from];
	if (!nd->up)
		return;
	struct rd_message m = {.type = RD_MSG_SNAPSHOT,
	                       .group = rd_raft_group(nd->r),
	                       .from = from,
	                       .to = to,
	                       .term = rd_raft_term(nd->r),
	                       .snapshot = nd->disk.snap};
	net_push(c, &m, nd->disk.snap_sm, nd->disk.snap_ph, 0);
}
