/*
 * Gray failures: a node that is alive but slow should stop being the one
 * everybody waits on.
 *
 * Slow disk. Every synced write's duration comes from the storage layer
 * (rd_storage_sync_recent, lib/storage/stall.c). The detection window
 * ([health] disk_slow_window_ms) is cut in RD_HEALTH_SLOTS slots; a slot
 * is "slow" when more than 1% of its syncs took longer than
 * [health] disk_slow_ms (its p99 is above the threshold) or one sync was
 * outstanding past the threshold, "healthy" when it had syncs and is not
 * slow, "empty" otherwise. The node turns slow when, over the last
 * RD_HEALTH_SLOTS slots, none was healthy and most were slow: one slow
 * fsync in a healthy stream never moves anything. It turns healthy again
 * after [health] disk_recover_ms without a slow slot and with a healthy
 * one since.
 *
 * While slow, the node transfers every group it leads (thesis §3.10) to
 * the connected voter with the highest match index (the core sends
 * TIMEOUT_NOW once that voter has caught up), and forbids its cores to
 * campaign (rd_raft_set_campaign): election timeouts and TIMEOUT_NOW start
 * nothing, so leadership does not come back to it, whether by an election
 * or by a peer's transfer, until it recovers. Its Raft batches carry the
 * verdict (RaftBatch.flags), so that peers neither pick it as the target
 * of their own evacuations nor start an operator's transfer to it. Each
 * change is logged once and counted (raftd_disk_slow,
 * raftd_disk_evacuations_total).
 *
 * Progress. WATCHDOG=1 and /livez mean "the loop turned recently and no
 * storage write is stuck" (rd_health_alive); a stalled write beyond
 * [health] disk_stall_ms ends the process (lib/storage/stall.c).
 */
#include "multiraft/node_internal.h"
#include "transport/wire.h"
#include "util/log.h"

enum { SLOT_EMPTY = 0, SLOT_HEALTHY = 1, SLOT_SLOW = 2 };

/* Evacuation passes are repeated at this pace while the node is slow and
 * still leads something (a transfer the core abandoned is retried). */
#define EVAC_PERIOD_NS 100000000ull

static void set_campaign_all(struct rd_node *n, bool allowed)
{
	for (size_t id = 0; id < n->n_slots; id++) {
		struct rd_group *g = n->groups[id];
		if (g != NULL && rd_raft_campaign_allowed(g->raft) != allowed) {
			rd_raft_set_campaign(g->raft, allowed);
			rd_node_touch(n, g);
		}
	}
}

/* The connected voter of `g` other than this node with the highest match
 * index; 0 when there is none. */
static uint64_t pick_target(struct rd_node *n, struct rd_group *g)
{
	const struct rd_conf_state *cs = rd_raft_conf(g->raft);
	uint64_t best = 0, best_match = 0;

	for (uint32_t i = 0; i < cs->n_voters; i++) {
		struct rd_progress pr;
		uint64_t id = cs->voters[i], rtt;
		if (id == n->cfg.node_id || rd_health_peer_slow(n, id) ||
		    !rd_peers_connected(n, id, &rtt) ||
		    !rd_raft_progress(g->raft, id, &pr))
			continue;
		if (best == 0 || pr.match > best_match) {
			best = id;
			best_match = pr.match;
		}
	}
	return best;
}

/* One evacuation pass over the groups this node leads. */
static void evacuate(struct rd_node *n)
{
	for (size_t id = 0; id < n->n_slots; id++) {
		struct rd_group *g = n->groups[id];
		uint64_t to;
		if (g == NULL || rd_raft_leader(g->raft) != n->cfg.node_id)
			continue;
		if (rd_raft_transferee(g->raft) != 0 || (to = pick_target(n, g)) == 0)
			continue;
		if (rd_raft_transfer_leader(g->raft, to) == 0) {
			n->health.transfers++;
			rd_log_debug("slow disk: leadership transfer group=%zu to=%llu",
			             id, (unsigned long long)to);
			rd_node_touch(n, g);
			rd_node_wake(n);
		}
	}
}

static unsigned count(const struct rd_health *h, uint8_t kind)
{
	unsigned c = 0;
	for (unsigned i = 0; i < RD_HEALTH_SLOTS; i++)
		c += h->hist[i] == kind;
	return c;
}

static void close_slot(struct rd_node *n, uint64_t now)
{
	struct rd_health *h = &n->health;
	uint8_t kind = SLOT_EMPTY;

	if (h->slot_stuck || (uint64_t)h->slot_over * 100 > h->slot_n)
		kind = SLOT_SLOW;
	else if (h->slot_n > 0)
		kind = SLOT_HEALTHY;
	for (unsigned i = RD_HEALTH_SLOTS - 1; i > 0; i--)
		h->hist[i] = h->hist[i - 1];
	h->hist[0] = kind;
	if (kind == SLOT_SLOW)
		h->last_bad_ns = now;
	else if (kind == SLOT_HEALTHY)
		h->last_good_ns = now;
	h->slot_start_ns = now;
	h->slot_n = h->slot_over = 0;
	h->slot_stuck = false;

	uint64_t recover = (uint64_t)n->cfg.disk_recover_ms * 1000000ull;
	if (!h->slow && count(h, SLOT_HEALTHY) == 0 &&
	    count(h, SLOT_SLOW) > RD_HEALTH_SLOTS / 2) {
		h->slow = true;
		h->changed_ns = now;
		h->evacuations++;
		h->last_evac_ns = 0;
		set_campaign_all(n, false);
		rd_log_warn("disk slow: synced writes above %u ms for %u ms; moving "
		            "leadership away and campaigning for none node=%llu",
		            n->cfg.disk_slow_ms, n->cfg.disk_slow_window_ms,
		            (unsigned long long)n->cfg.node_id);
	} else if (h->slow && now - h->last_bad_ns >= recover &&
	           h->last_good_ns > h->last_bad_ns) {
		h->slow = false;
		h->changed_ns = now;
		set_campaign_all(n, true);
		rd_log_notice("disk healthy again: synced writes below %u ms for %u ms; "
		              "campaigning again node=%llu",
		              n->cfg.disk_slow_ms, n->cfg.disk_recover_ms,
		              (unsigned long long)n->cfg.node_id);
	}
}

void rd_health_tick(struct rd_node *n, uint64_t now)
{
	struct rd_health *h = &n->health;
	uint64_t thr = (uint64_t)n->cfg.disk_slow_ms * 1000000ull;
	uint64_t slot =
	    (uint64_t)n->cfg.disk_slow_window_ms * 1000000ull / RD_HEALTH_SLOTS;
	uint64_t ns[64], since;
	size_t k;

	if (thr == 0)
		return;
	if (h->slot_start_ns == 0)
		h->slot_start_ns = now;
	while ((k = rd_storage_sync_recent(n->st, &h->sync_cursor, ns, 64)) > 0) {
		for (size_t i = 0; i < k; i++) {
			h->slot_n++;
			h->slot_over += ns[i] > thr;
		}
		if (k < 64)
			break;
	}
	since = rd_storage_sync_outstanding_since(n->st);
	if (since != 0 && now > since && now - since > thr)
		h->slot_stuck = true;
	if (now - h->slot_start_ns >= slot)
		close_slot(n, now);
	if (!h->slow || now - h->last_evac_ns < EVAC_PERIOD_NS)
		return;
	h->last_evac_ns = now;
	/* Groups hosted since the node turned slow get the same rule. */
	set_campaign_all(n, false);
	evacuate(n);
}

uint32_t rd_health_batch_flags(const struct rd_node *n)
{
	return n->health.slow ? RD_WIRE_BATCH_F_DISK_SLOW : 0;
}

void rd_health_peer_flags(struct rd_node *n, uint64_t peer, uint32_t flags)
{
	struct rd_health *h = &n->health;
	bool slow = (flags & RD_WIRE_BATCH_F_DISK_SLOW) != 0;

	for (unsigned i = 0; i < h->n_slow_peers; i++) {
		if (h->slow_peers[i] != peer)
			continue;
		if (!slow)
			h->slow_peers[i] = h->slow_peers[--h->n_slow_peers];
		return;
	}
	if (!slow || h->n_slow_peers == RD_NODE_MAX_MEMBERS)
		return;
	h->slow_peers[h->n_slow_peers++] = peer;
	rd_log_info("peer reports a slow disk; no leadership goes to it peer=%llu",
	            (unsigned long long)peer);
}

bool rd_health_peer_slow(const struct rd_node *n, uint64_t peer)
{
	for (unsigned i = 0; i < n->health.n_slow_peers; i++)
		if (n->health.slow_peers[i] == peer)
			return true;
	return false;
}

bool rd_health_alive(const struct rd_node *n, uint64_t now, uint64_t limit_ns)
{
	uint64_t last = n->loop.last_tick_done_ns;
	uint64_t since = rd_storage_sync_outstanding_since(n->st);

	if (last != 0 && now > last && now - last > limit_ns)
		return false;
	if (since != 0 && now > since && now - since > limit_ns)
		return false;
	return true;
}

static const char *const phase_names[RD_PHASE_COUNT] = {
    [RD_PHASE_COLLECT] = "collect", [RD_PHASE_SEND] = "send",
    [RD_PHASE_WRITE] = "write",     [RD_PHASE_APPLY] = "apply",
    [RD_PHASE_ANSWER] = "answer",
};

void rd_health_note_iteration(struct rd_node *n, uint64_t limit_ns)
{
	const struct rd_iter_trace *t = &n->loop.trace;
	unsigned worst = 0;

	for (unsigned p = 1; p < RD_PHASE_COUNT; p++)
		if (t->ns[p] > t->ns[worst])
			worst = p;
	if (t->worst_ns[worst] != 0)
		rd_log_warn("slow loop iteration duration_ms=%.1f limit_ms=%.1f phase=%s "
		            "phase_ms=%.1f group=%llu group_ms=%.1f pending_groups=%llu",
		            (double)n->loop.last_iter_ns / 1e6, (double)limit_ns / 1e6,
		            phase_names[worst], (double)t->ns[worst] / 1e6,
		            (unsigned long long)t->worst_group[worst],
		            (double)t->worst_ns[worst] / 1e6,
		            (unsigned long long)n->loop.pending_groups);
	else
		rd_log_warn("slow loop iteration duration_ms=%.1f limit_ms=%.1f phase=%s "
		            "phase_ms=%.1f groups=all pending_groups=%llu",
		            (double)n->loop.last_iter_ns / 1e6, (double)limit_ns / 1e6,
		            phase_names[worst], (double)t->ns[worst] / 1e6,
		            (unsigned long long)n->loop.pending_groups);
}
