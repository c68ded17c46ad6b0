/*
 * Node lifecycle: start (storage, groups, transport, client socket, admin
 * HTTP), the tick timer, readiness, systemd notifications and shutdown.
 * The per-iteration work is in drive.c.
 */
#include <assert.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "ctl/socket.h"
#include "multiraft/node_internal.h"
#include "raftd.pb-c.h"
#include "util/err.h"
#include "util/log.h"

/* Event priorities: inputs run first; the drain pass last in an iteration. */
#define PRIO_INPUT RD_NODE_PRIO_INPUT
#define PRIO_DRAIN RD_NODE_PRIO_LOW
#define N_PRIOS    RD_NODE_N_PRIOS

void rd_node_wake(struct rd_node *n)
{
	if (!n->wake_pending) {
		n->wake_pending = true;
		event_active(n->drain_ev, 0, 0);
	}
}

/* Put g on the dirty list if its core has an update or its compaction
 * waits for a flush (drive.c compact); true if so. */
static bool mark_dirty(struct rd_node *n, struct rd_group *g)
{
	if (!rd_raft_has_update(g->raft) && !g->compact_wait)
		return false;
	if (!g->dirty) {
		assert(n->n_dirty < n->n_slots);
		g->dirty = true;
		n->dirty[n->n_dirty++] = g;
	}
	return true;
}

void rd_node_touch(struct rd_node *n, struct rd_group *g)
{
	if (mark_dirty(n, g))
		rd_node_wake(n);
}

void rd_node_check_dirty(const struct rd_node *n)
{
	assert(!n->in_pass);
	for (size_t i = 0; i < n->n_slots; i++) {
		const struct rd_group *g = n->groups[i];
		(void)g;
		assert(g == NULL || g->dirty || !rd_raft_has_update(g->raft));
	}
}

/* A group just opened: tick its core (on_tick visits only these), and
 * drive what it has from the start (entries committed but not applied
 * before a restart, a bootstrap configuration) from the first iteration,
 * which the first tick schedules. */
static void tick_add(struct rd_node *n, struct rd_group *g)
{
	rd_node_set_ticking(n, g, true);
	mark_dirty(n, g);
}

void rd_node_set_ticking(struct rd_node *n, struct rd_group *g, bool on)
{
	if (on == g->ticking)
		return;
	if (!on && (g->props.head != NULL || g->reads.head != NULL || g->compact_wait))
		return; /* on_tick takes it off once its requests are answered
		         * and its compaction is through */
	if (on) {
		assert(n->n_ticking < n->n_slots);
		g->tick_pos = n->n_ticking;
		n->ticking[n->n_ticking++] = g;
		rd_node_tick_arm(n);
	} else {
		/* The last one takes its place: the order of ticks within one
		 * tick does not matter (each core has its own timers). */
		struct rd_group *last = n->ticking[--n->n_ticking];
		n->ticking[g->tick_pos] = last;
		last->tick_pos = g->tick_pos;
	}
	g->ticking = on;
}

struct rd_group *rd_node_group(const struct rd_node *n, uint64_t id)
{
	return id < n->n_slots ? n->groups[id] : NULL;
}

/* Log an iteration or tick that took longer than 5 tick intervals (what
 * /livez tolerates), at most once a second so a sick disk cannot flood the
 * log. */
static void note_slow(struct rd_node *n, const char *what, uint64_t ns)
{
	uint64_t limit = 5ull * n->cfg.tick_ms * 1000000ull, now;

	if (ns < limit)
		return;
	now = rd_clock_now_ns();
	if (now - n->last_slow_log_ns < 1000000000ull)
		return;
	n->last_slow_log_ns = now;
	rd_log_warn("slow %s duration_ms=%.1f limit_ms=%u pending_groups=%llu", what,
	            (double)ns / 1e6, 5 * n->cfg.tick_ms,
	            (unsigned long long)n->loop.pending_groups);
}

/* The storage writer wrote the batch in flight: finish it in the drain
 * pass (drive.c), which runs after the inputs already waiting. */
static void on_written(evutil_socket_t fd, short what, void *arg)
{
	struct rd_node *n = arg;

	(void)fd, (void)what;
	rd_storage_commit_doorbell_clear(n->st);
	rd_node_wake(n);
}

static void on_drain(evutil_socket_t fd, short what, void *arg)
{
	struct rd_node *n = arg;
	uint64_t before = n->loop.iterations;
	uint64_t limit = 5ull * n->cfg.tick_ms * 1000000ull, now;

	(void)fd, (void)what;
	n->wake_pending = false;
	rd_drive_iteration(n);
	/* What this iteration's inputs and pass forwarded leaves now, one RPC
	 * per leader (cluster/forward.h, "Batches"). */
	rd_forward_flush(&n->fwd);
	if (n->loop.iterations == before || n->loop.last_iter_ns < limit)
		return;
	/* Say which phase and group took the time (health.c), at most once a
	 * second. */
	now = rd_clock_now_ns();
	if (now - n->last_slow_log_ns < 1000000000ull)
		return;
	n->last_slow_log_ns = now;
	rd_health_note_iteration(n, limit);
}

void rd_node_check_ready(struct rd_node *n)
{
	struct rd_group *g0 = rd_node_group(n, 0);
	char status[128];

	if (n->ready || n->members.foreign || g0 == NULL || rd_raft_leader(g0->raft) == 0)
		return;
	if (!n->ready_target_set) {
		n->ready_target = rd_raft_commit(g0->raft);
		n->ready_target_set = true;
	}
	if (g0->applied < n->ready_target)
		return;
	n->ready = true;
	size_t hosted = 0;
	for (size_t i = 0; i < n->n_slots; i++)
		hosted += n->groups[i] != NULL;
	snprintf(status, sizeof status, "READY=1\nSTATUS=ready with %zu groups", hosted);
	sd_notify(0, status);
	rd_log_notice("node ready node=%llu groups=%zu metadata_leader=%llu",
	              (unsigned long long)n->cfg.node_id, hosted,
	              (unsigned long long)rd_raft_leader(g0->raft));
	struct rd_result ok = {.code = RAFTD__ERROR_CODE__OK};
	rd_waitq_fail_all(&n->ready_waiters, &ok);
}

/* At bootstrap every group has a leadership hint (cluster/topology.h): the hinted
 * node campaigns at once instead of waiting for an election timeout, which
 * spreads leadership evenly and makes start-up fast. Group 0's hint is the
 * lowest node id. */
static void campaign_hinted(struct rd_node *n)
{
	uint64_t lowest = rd_topology_lowest_member(&n->topo);
	for (size_t id = 0; id < n->n_slots; id++) {
		struct rd_group *g = n->groups[id];
		const struct rd_group_placement *p;
		uint64_t hint;
		if (g == NULL || !g->fresh)
			continue;
		p = id == 0 ? NULL : rd_routing_placement(&n->topo.routing, (uint32_t)id);
		hint = p != NULL ? p->replicas[0] : lowest;
		if (hint == n->cfg.node_id) {
			rd_raft_campaign(g->raft);
			rd_node_touch(n, g);
		}
	}
}

/* Leader balancing at bootstrap: a node that won the first election of a
 * fresh data group whose hint is another node (the hinted node started
 * later, or campaigned later) hands the leadership over once, when the
 * hinted node has the whole log (Raft thesis §3.10) and is not slow
 * (health.c). A node that saw another leader first never does (drive.c
 * note_role), so an operator's transfer is not undone. */
static void hand_to_hints(struct rd_node *n)
{
	for (size_t id = 1; id < n->n_slots; id++) {
		struct rd_group *g = n->groups[id];
		const struct rd_group_placement *p;
		if (g == NULL || !g->fresh || g->hint_handed ||
		    rd_raft_role(g->raft) != RD_RAFT_LEADER)
			continue;
		p = rd_routing_placement(&n->topo.routing, (uint32_t)id);
		if (p == NULL || p->replicas[0] == n->cfg.node_id) {
			g->hint_handed = true;
			continue;
		}
		if (!rd_health_peer_slow(n, p->replicas[0]) &&
		    rd_raft_match(g->raft, p->replicas[0]) ==
		        rd_raft_last_index(g->raft) &&
		    rd_raft_transfer_leader(g->raft, p->replicas[0]) == 0) {
			g->hint_handed = true;
			rd_log_info(
			    "leadership handed to the hinted node group=%zu to=%llu", id,
			    (unsigned long long)p->replicas[0]);
			rd_node_touch(n, g);
			rd_node_wake(n);
		}
	}
}

/*
 * The tick timer fires every [raft] tick_ms while a group ticks, and once
 * per node heartbeat interval (rd_liveness_interval_ms, a third of an
 * election timeout) while every group is quiesced: what is left then is
 * the node's own work (liveness and its heartbeats, deadlines of requests
 * and forwards, health, the canary, WATCHDOG=1, the once-a-second
 * chores), none of which needs a finer pace. Whatever
 * puts a group back on the ticking list (a proposal, read, conf change,
 * message or liveness change that wakes it: liveness.c) re-arms it at
 * tick_ms. No Raft timer depends on the pace: a quiesced core's timers
 * stand still (raft/raft.h, "Quiescence"), and an active group ticks at
 * tick_ms from its first tick on.
 */
static bool tick_fine(const struct rd_node *n)
{
	return n->n_ticking > 0 || n->members.asking || !n->bootstrapped;
}

void rd_node_tick_arm(struct rd_node *n)
{
	uint64_t ms = tick_fine(n) ? n->cfg.tick_ms : rd_liveness_interval_ms(&n->cfg);
	struct timeval tv;

	if (n->tick_ev == NULL || n->stopping || ms == n->loop.tick_period_ms)
		return;
	n->loop.tick_period_ms = ms;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	event_add(n->tick_ev, &tv); /* re-added: the next firing is ms from now */
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct rd_node *n = arg;
	uint64_t t0 = rd_clock_now_ns();

	(void)fd, (void)what;
	if (n->members.asking)
		rd_membership_ask_tick(n);
	if (!n->bootstrapped && !n->members.asking && t0 >= n->members.founded_ns) {
		n->bootstrapped = true;
		campaign_hinted(n);
	}
	if (n->loop.last_second_ns == 0 || t0 - n->loop.last_second_ns >= 1000000000ull) {
		n->loop.last_second_ns = t0;
		rd_peers_keepalive(n);
		hand_to_hints(n);
		rd_node_check_dirty(n);
		rd_membership_tick(n);
		rd_group_trim_memory(n);
		rd_placement_tick(n);
	} else if (n->place.reload) {
		rd_placement_reload(n);
		rd_placement_host(n);
	}
	for (size_t i = 0; i < n->n_ticking;) {
		struct rd_group *g = n->ticking[i];
		rd_raft_tick(g->raft);
		rd_node_touch(n, g);
		rd_waitq_expire(&g->props, t0);
		rd_waitq_expire(&g->reads, t0);
		/* A quiesced group stays here while requests wait on it (their
		 * deadlines are checked here) or its compaction waits for a
		 * flush; then it leaves, and the last group takes slot i. */
		if (rd_raft_quiesced(g->raft) && g->props.head == NULL &&
		    g->reads.head == NULL && !g->compact_wait)
			rd_node_set_ticking(n, g, false);
		else
			i++;
	}
	/* This firing stands for at most the period it was armed with. */
	rd_liveness_tick(n, t0, n->loop.tick_period_ms * 1000000ull);
	rd_membership_ops_tick(n);
	rd_forward_expire(&n->fwd, t0);
	rd_waitq_expire(&n->ready_waiters, t0);
	rd_forward_retry(&n->fwd);
	rd_health_tick(n, t0);
	rd_canary_tick(n, t0);
	rd_node_envelopes_tick(n, t0);
	/* WATCHDOG=1 only while the node makes progress (health.c): the loop
	 * turned within the period and no write is stuck. */
	if (rd_health_alive(n, t0, n->watchdog.interval_ns * 4))
		rd_watchdog_kick(&n->watchdog, t0);
	rd_node_tick_arm(n);
	n->loop.ticks++;
	n->loop.last_tick_done_ns = rd_clock_now_ns();
	n->loop.last_tick_ns = n->loop.last_tick_done_ns - t0;
	rd_metrics_hist_observe(&n->loop.tick_hist, (double)n->loop.last_tick_ns / 1e9);
	note_slow(n, "tick", n->loop.last_tick_ns);
	if (n->loop.last_tick_ns > n->loop.max_tick_ns)
		n->loop.max_tick_ns = n->loop.last_tick_ns;
}

int rd_node_mkdirs(const char *path, char *msg)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof buf, "%s", path);
	for (char *p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) != 0 && errno != EEXIST)
			return rd_errorf(msg, RD_EIO, "mkdir %s: %s", buf,
			                 strerror(errno));
		*p = '/';
	}
	if (mkdir(buf, 0700) != 0 && errno != EEXIST)
		return rd_errorf(msg, RD_EIO, "mkdir %s: %s", buf, strerror(errno));
	return 0;
}

static int open_storage(struct rd_node *n, char *msg)
{
	struct rd_storage_options o;
	char cid[64];
	int rv;

	rv = rd_node_mkdirs(n->cfg.data_dir, msg);
	if (rv != 0)
		return rv;
	rd_topology_cluster_id(&n->topo, cid, sizeof cid);
	rd_storage_options_init(&o);
	o.create_if_missing = true;
	o.session_max = n->cfg.session_max;
	o.session_expiry = n->cfg.session_expiry;
	o.flush_interval_ns = (uint64_t)n->cfg.flush_interval_ms * 1000000u;
	rv = rd_storage_open(n->cfg.data_dir, &o, &n->st, msg);
	/* A joining node learns its cluster id from the cluster (join.c). */
	if (rv == 0 && !n->cfg.has_join)
		rv = rd_restore_check_cluster_id(n->st, cid, msg);
	if (rv != 0) {
		rd_errprefix(msg, "data directory %s: ", n->cfg.data_dir);
		return rv;
	}
	n->batch = rd_storage_batch_new(n->st);
	if (n->batch == NULL)
		return rd_errorf(msg, RD_ENOMEM, "out of memory");
	return 0;
}

static int alloc_slots(struct rd_node *n, char *msg)
{
	n->n_slots = (size_t)n->topo.routing.n_groups + 1;
	n->groups = calloc(n->n_slots, sizeof *n->groups);
	n->active = calloc(n->n_slots, sizeof *n->active);
	n->dirty = calloc(n->n_slots, sizeof *n->dirty);
	n->ticking = calloc(n->n_slots, sizeof *n->ticking);
	if (n->groups == NULL || n->active == NULL || n->dirty == NULL ||
	    n->ticking == NULL)
		return rd_errorf(msg, RD_ENOMEM, "out of memory");
	return 0;
}

int rd_node_open_groups(struct rd_node *n, char *msg)
{
	uint64_t voters[RD_NODE_MAX_MEMBERS];
	int rv;

	/* A directory that joined as a new replica founds nothing: its groups
	 * start without a configuration (membership.c rejoin). */
	bool found = !n->members.joined;

	for (unsigned i = 0; i < n->topo.n_members; i++)
		voters[i] = n->topo.members[i].id;
	rv =
	    rd_group_open(n, 0, voters,
	                  !found                                    ? 0
	                  : n->topo.n_members < RD_RAFT_MAX_MEMBERS ? n->topo.n_members
	                                                            : RD_RAFT_MAX_MEMBERS,
	                  msg);
	if (rv != 0)
		return rv;
	tick_add(n, n->groups[0]);
	/* The targets group 0 holds (placement_drive.c), over the bootstrap
	 * table of the catalog. */
	rd_placement_reload(n);
	for (uint32_t g = 1; g <= n->topo.routing.n_groups; g++) {
		const struct rd_group_placement *p =
		    rd_routing_placement(&n->topo.routing, g);
		struct rd_storage_group_info info;
		if (!rd_routing_has_replica(&n->topo.routing, g, n->cfg.node_id) &&
		    (rd_storage_group_info(n->st, g, &info) != 0 ||
		     rd_group_conf_role(&info.conf, n->cfg.node_id) == RD_CONF_ROLE_NONE))
			continue;
		/* Founding voters only for a group of the bootstrap placement
		 * this node founds; a target of a later placement (or a source
		 * not removed yet) opens with what its storage holds, or
		 * empty, and learns its configuration from the leader. */
		rv = rd_group_open(
		    n, g, p->replicas,
		    found && p->version == 0 &&
		            rd_routing_has_replica(&n->topo.routing, g, n->cfg.node_id)
		        ? p->n_replicas
		        : 0,
		    msg);
		if (rv != 0)
			return rv;
		tick_add(n, n->groups[g]);
	}
	/* Members added through group 0 since the cluster was founded. */
	rd_membership_load(n);
	return 0;
}

int rd_node_start(const struct rd_config *cfg, struct event_base *base,
                  struct rd_node **out, char *msg)
{
	struct rd_node *n;
	int rv;

	n = calloc(1, sizeof *n);
	if (n == NULL)
		return rd_errorf(msg, RD_ENOMEM, "out of memory");
	n->cfg = *cfg;
	n->base = base;
	n->started_ns = rd_clock_now_ns();
	rd_metrics_hist_init(&n->loop.iter_hist, rd_metrics_latency_buckets,
	                     rd_metrics_latency_buckets_n);
	rd_metrics_hist_init(&n->loop.tick_hist, rd_metrics_latency_buckets,
	                     rd_metrics_latency_buckets_n);
	n->seed = (uint64_t)time(NULL) ^ (cfg->node_id << 32) ^ (uint64_t)getpid();
	rd_topology_init(&n->topo, cfg);
	rd_liveness_init(n);
	sd_notify(0, "STATUS=bootstrapping");

	event_base_priority_init(base, N_PRIOS);
	rv = open_storage(n, msg);
	if (rv != 0)
		goto err_after_alloc;
	n->data_applier = (struct rd_applier){&rd_applier_kv_ops, n->st};
	n->meta_applier = (struct rd_applier){&rd_applier_meta_ops, n->st};
	/* [cluster] join: added by the cluster before anything is opened. */
	if (n->cfg.has_join && (rv = rd_join_run(n, msg)) != 0)
		goto err_after_storage;
	rv = rd_topology_load(&n->topo, n->st, n->cfg.data_groups,
	                      n->cfg.replication_factor, msg);
	if (rv != 0)
		goto err_after_storage;
	rv = alloc_slots(n, msg);
	if (rv == 0)
		rv = rd_placement_init(n, msg);
	/* A data directory without group 0 would found the cluster: ask the
	 * peers first (membership.c); the groups open from the tick. */
	if (rv == 0 && !rd_membership_ask_first(n))
		rv = rd_node_open_groups(n, msg);
	if (rv != 0)
		goto err_after_groups;
	rv = rd_subs_start(n, msg);
	if (rv != 0)
		goto err_after_groups;
	n->drain_ev = event_new(base, -1, 0, on_drain, n);
	event_priority_set(n->drain_ev, PRIO_DRAIN);
	n->tick_ev = event_new(base, -1, EV_PERSIST, on_tick, n);
	event_priority_set(n->tick_ev, PRIO_INPUT);
	if (cfg->async_write) {
		/* The batch is written by storage's writer thread while the
		 * loop steps input; its doorbell calls the drain back. */
		rv = rd_storage_writer_start(n->st, msg);
		if (rv != 0)
			goto err_after_events;
		n->written_ev = event_new(base, rd_storage_commit_fd(n->st),
		                          EV_READ | EV_PERSIST, on_written, n);
		event_priority_set(n->written_ev, PRIO_INPUT);
		event_add(n->written_ev, NULL);
	}
	rd_node_tick_arm(n);
	rd_watchdog_init(&n->watchdog);
	rv = rd_storage_stall_guard(n->st, cfg->disk_stall_ms, msg);
	if (rv == 0)
		rv = rd_canary_init(n, msg);
	if (rv != 0)
		goto err_after_events;

	rd_forward_init(&n->fwd, &rd_node_forward_ops, n, cfg->node_id, &n->topo,
	                cfg->request_timeout_ms);
	n->fwd.max_batch_bytes = cfg->max_msg_bytes;
	rv = rd_node_envelopes_init(n);
	if (rv != 0) {
		rd_errorf(msg, rv, "out of memory");
		goto err_after_events;
	}
	rv = rd_peers_start(n, msg);
	if (rv != 0)
		goto err_after_envelopes;
	rv = rd_ctl_server_start(base, cfg->socket_path, cfg->socket_mode, 1u << 20,
	                         rd_requests_on_frame, n, &n->ctl, msg);
	if (rv != 0) {
		rd_errprefix(msg, "%s: [control] socket: ", cfg->path);
		goto err_after_peers;
	}
	rd_ctl_server_set_limits(
	    n->ctl,
	    &(struct rd_ctl_limits){cfg->ctl_max_conns, cfg->ctl_max_inflight,
	                            cfg->ctl_high_water, cfg->ctl_partial_timeout_ms});
	rv = rd_node_admin_start(n, msg);
	if (rv != 0)
		goto err_after_ctl;
	rd_log_notice("started node=%llu listen=%s socket=%s groups=%zu version=%s",
	              (unsigned long long)cfg->node_id, cfg->listen.text,
	              cfg->socket_path, n->n_slots, RD_VERSION);
	*out = n;
	return 0;

err_after_ctl:
	rd_ctl_server_free(n->ctl);
err_after_peers:
	rd_peers_free(n);
err_after_envelopes:
	rd_node_envelopes_free(n);
err_after_events:
	rd_canary_free(n);
	if (n->written_ev != NULL)
		event_free(n->written_ev);
	event_free(n->tick_ev);
	event_free(n->drain_ev);
err_after_groups:
	rd_subs_free(n);
	for (size_t i = 0; i < n->n_slots; i++)
		rd_group_free(n->groups[i]);
	free(n->groups);
	free(n->active);
	free(n->dirty);
	free(n->ticking);
	rd_placement_free(n);
	rd_topology_free(&n->topo);
err_after_storage:
	rd_storage_batch_free(n->batch);
	rd_storage_close(n->st);
err_after_alloc:
	free(n);
	return rv;
}

static void fail_everything(struct rd_node *n, const struct rd_result *r)
{
	for (size_t id = 0; id < n->n_slots; id++) {
		struct rd_group *g = n->groups[id];
		if (g == NULL)
			continue;
		rd_waitq_fail_all(&g->props, r);
		rd_waitq_fail_all(&g->reads, r);
	}
	rd_forward_fail_all(&n->fwd, r);
	rd_waitq_fail_all(&n->ready_waiters, r);
	rd_waitq_fail_all(&n->resubmit, r);
	rd_backup_fail_all(n, r->message);
}

/* The last steps of a graceful shutdown, once the iteration that was
 * running when it began has finished. */
static void on_finish(evutil_socket_t fd, short what, void *arg)
{
	struct rd_node *n = arg;
	struct rd_result r = {.code = RAFTD__ERROR_CODE__SHUTTING_DOWN,
	                      .message = "node is shutting down"};

	(void)fd, (void)what;
	/* Flush: whatever the cores produced is persisted and sent. */
	rd_drive_finish_write(n);
	rd_drive_iteration(n);
	rd_drive_finish_write(n);
	/* Close peers first: forwards still in flight are answered by it. */
	rd_peers_stop(n);
	fail_everything(n, &r);
	rd_subs_shutdown(n);
	rd_node_admin_stop(n);
	rd_ctl_server_free(n->ctl);
	n->ctl = NULL;
	sd_notify(0, "STOPPING=1\nSTATUS=stopping");
	rd_log_notice("shutdown complete node=%llu", (unsigned long long)n->cfg.node_id);
	event_base_loopexit(n->base, NULL);
}

void rd_node_shutdown(struct rd_node *n)
{
	struct timeval now = {0, 0};

	if (n->stopping)
		return;
	n->stopping = true;
	rd_membership_shutdown(n);
	rd_forward_shutdown(&n->fwd);
	rd_envelope_shutdown(&n->env);
	rd_log_notice("shutting down node=%llu", (unsigned long long)n->cfg.node_id);
	rd_ctl_server_stop_accepting(n->ctl);
	event_del(n->tick_ev);
	/* Lowest priority: runs after the current iteration's inputs and drain. */
	struct event *ev = evtimer_new(n->base, on_finish, n);
	event_priority_set(ev, PRIO_DRAIN);
	event_add(ev, &now);
	n->finish_ev = ev;
}

void rd_node_reload(struct rd_node *n, const struct rd_config *cfg)
{
	n->cfg.log_level = cfg->log_level;
	rd_peers_reload(n, cfg);
}

int rd_node_exit_code(const struct rd_node *n)
{
	return n->exit_code;
}

void rd_node_free(struct rd_node *n)
{
	if (n == NULL)
		return;
	/* A batch still in flight is written and its groups' copies freed
	 * (what it answers goes nowhere once the servers are gone). */
	rd_drive_finish_write(n);
	rd_node_admin_stop(n);
	rd_backup_fail_all(n, "node is shutting down");
	rd_ctl_server_free(n->ctl);
	rd_subs_free(n);
	rd_peers_free(n);
	rd_node_envelopes_free(n);
	rd_backup_fetch_free_all(n);
	if (n->finish_ev != NULL)
		event_free(n->finish_ev);
	event_free(n->tick_ev);
	event_free(n->drain_ev);
	if (n->written_ev != NULL)
		event_free(n->written_ev);
	for (size_t i = 0; i < n->n_slots; i++)
		rd_group_free(n->groups[i]);
	rd_canary_free(n);
	free(n->groups);
	free(n->active);
	free(n->dirty);
	free(n->ticking);
	rd_placement_free(n);
	rd_forward_free(&n->fwd);
	rd_topology_free(&n->topo);
	rd_storage_batch_free(n->batch);
	rd_entry_buf_free(&n->log_buf);
	rd_storage_close(n->st);
	free(n);
}
