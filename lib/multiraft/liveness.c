/*
 * Idle groups and node liveness (raftd(8), "Idle groups"). Groups quiesce
 * in the core (raft/raft.h, "Quiescence"): an idle group stops ticking, and
 * this file takes it off the node's ticking list, so an idle node's tick
 * costs what its active groups cost. What keeps a quiesced group safe to
 * leave alone is node liveness, one heartbeat per peer whatever the number
 * of groups:
 *
 *   - every batch to a peer carries this process's boot id (RaftBatch.boot,
 *     random per start); a peer that got no batch for a node heartbeat
 *     interval gets an empty one (rd_peers_node_heartbeats). The interval
 *     is a third of the shortest election timeout (and never shorter than
 *     the Raft heartbeat interval): three beats per timeout, so one lost
 *     or late beat never makes a peer look silent, at a third of what a
 *     beat per Raft heartbeat costs an idle node (packets, their ACKs and
 *     the wake-ups they cause are nearly all of it);
 *   - a peer is live while a batch from it arrived within an election
 *     timeout (election_ticks ticks, the shortest election timeout),
 *     measured in loop time as Raft's timers are: each tick adds the time
 *     since the previous one, but never more than the period the tick
 *     timer was armed with (node.c), so a loop that stalls does not count
 *     the stall, and peers never look silent because of it;
 *   - when a peer stops being live, or a batch carries a new boot id (a new
 *     process: it leads nothing it led), every hosted group with that peer
 *     as a member is told (rd_raft_peer_down): quiesced followers of its
 *     groups wake and elect, leaders stop waiting for it;
 *   - the news is also given to a group that quiesces as a follower of a
 *     node already not live, and to a group that becomes leader, for the
 *     peers not live then (the core forgets it on election).
 *
 * The scan over the groups happens only on those transitions, never per
 * tick. Failure modes: a lost batch only delays liveness by an interval; a
 * peer that is up but cannot reach us is not live, so its quiesced groups
 * elect without it, which is the partition case Raft handles anyway.
 */
#include <stdlib.h>
#include <string.h>

#include "multiraft/node_internal.h"
#include "util/clock.h"
#include "util/log.h"

static struct rd_live_peer *find(struct rd_node *n, uint64_t id)
{
	struct rd_liveness *lv = &n->live;

	for (unsigned i = 0; i < lv->n_peers; i++)
		if (lv->peers[i].id == id)
			return &lv->peers[i];
	if (lv->n_peers == RD_NODE_MAX_MEMBERS || id == 0 || id == n->cfg.node_id)
		return NULL;
	struct rd_live_peer *p = &lv->peers[lv->n_peers++];
	memset(p, 0, sizeof *p);
	p->id = id;
	return p;
}

void rd_liveness_init(struct rd_node *n)
{
	uint64_t s = n->seed ^ rd_clock_now_ns();

	/* splitmix64 of the node's seed and the clock: distinct per start. */
	s += 0x9e3779b97f4a7c15ull;
	s = (s ^ (s >> 30)) * 0xbf58476d1ce4e5b9ull;
	s = (s ^ (s >> 27)) * 0x94d049bb133111ebull;
	s ^= s >> 31;
	n->live.boot = s != 0 ? s : 1;
	n->live.timeout_ns =
	    (uint64_t)n->cfg.election_ticks * n->cfg.tick_ms * 1000000ull;
	n->live.interval_ns = rd_liveness_interval_ms(&n->cfg) * 1000000ull;
}

uint64_t rd_liveness_interval_ms(const struct rd_config *cfg)
{
	uint64_t ticks = cfg->election_ticks / 3;

	if (ticks < cfg->heartbeat_ticks)
		ticks = cfg->heartbeat_ticks;
	return ticks * cfg->tick_ms;
}

/* Tell every hosted group that node `id` is not live. */
static void peer_down(struct rd_node *n, uint64_t id)
{
	for (size_t i = 0; i < n->n_slots; i++) {
		struct rd_group *g = n->groups[i];
		if (g == NULL)
			continue;
		rd_raft_peer_down(g->raft, id);
		rd_node_touch(n, g);
	}
}

void rd_liveness_heard(struct rd_node *n, uint64_t peer, uint64_t boot)
{
	struct rd_live_peer *p = find(n, peer);

	if (p == NULL)
		return;
	p->silent_ns = 0;
	p->heard_ns = rd_clock_now_ns();
	if (boot != 0 && p->boot != 0 && boot != p->boot) {
		rd_log_info("peer restarted peer=%llu: its quiesced groups wake",
		            (unsigned long long)peer);
		p->boot = boot;
		p->live = true;
		peer_down(n, peer);
		return;
	}
	if (boot != 0)
		p->boot = boot;
	if (!p->live) {
		p->live = true;
		rd_log_debug("peer live peer=%llu", (unsigned long long)peer);
	}
}

bool rd_liveness_live(const struct rd_node *n, uint64_t peer)
{
	for (unsigned i = 0; i < n->live.n_peers; i++)
		if (n->live.peers[i].id == peer)
			return n->live.peers[i].live;
	return false;
}

void rd_liveness_tick(struct rd_node *n, uint64_t now, uint64_t period_ns)
{
	struct rd_liveness *lv = &n->live;
	/* Half a period early is on time: the timer fires a little late or
	 * early each time, and waiting for the next one would skip a beat. */
	uint64_t due =
	    lv->interval_ns > period_ns / 2 ? lv->interval_ns - period_ns / 2 : 0;

	for (unsigned i = 0; i < lv->n_peers; i++) {
		struct rd_live_peer *p = &lv->peers[i];
		uint64_t from =
		    p->heard_ns > lv->last_tick_ns ? p->heard_ns : lv->last_tick_ns;
		uint64_t d = now > from ? now - from : 0;
		p->silent_ns += d < period_ns ? d : period_ns;
		if (!p->live || p->silent_ns < lv->timeout_ns)
			continue;
		p->live = false;
		lv->down_events++;
		rd_log_info("peer not live peer=%llu silent_ms=%llu: its quiesced groups "
		            "wake",
		            (unsigned long long)p->id,
		            (unsigned long long)(p->silent_ns / 1000000u));
		peer_down(n, p->id);
	}
	lv->last_tick_ns = now;
	if (now - lv->last_hb_ns >= due) {
		lv->last_hb_ns = now;
		rd_peers_node_heartbeats(n, now, due);
	}
}

void rd_liveness_after_update(struct rd_node *n, struct rd_group *g, bool changed,
                              bool quiesced, uint8_t cause, bool became_leader)
{
	struct rd_liveness *lv = &n->live;

	if (changed) {
		rd_node_set_ticking(n, g, !quiesced);
		if (quiesced)
			lv->quiesces++;
		else if (cause <= RD_WAKE_MAX)
			lv->wakeups[cause]++;
	}
	if (became_leader) {
		for (unsigned i = 0; i < lv->n_peers; i++)
			if (!lv->peers[i].live)
				rd_raft_peer_down(g->raft, lv->peers[i].id);
	} else if (changed && quiesced) {
		uint64_t lead = rd_raft_leader(g->raft);
		if (lead != 0 && lead != n->cfg.node_id && !rd_liveness_live(n, lead))
			rd_raft_peer_down(g->raft, lead);
	}
}
