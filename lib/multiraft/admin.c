/*
 * The node as the admin HTTP server sees it (lib/ctl/admin.h): readiness,
 * liveness, the /status JSON document and the /metrics text.
 */
#include <event2/buffer.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ctl/admin.h"
#include "ctl/metrics.h"
#include "ctl/socket.h"
#include "multiraft/node_internal.h"
#include "transport/transport.h"
#include "transport/wire.h"
#include "util/err.h"

static bool ready(void *ud, const char **reason)
{
	struct rd_node *n = ud;
	struct rd_group *g0 = rd_node_group(n, 0);

	if (n->ready && !n->stopping)
		return true;
	if (n->stopping)
		*reason = "shutting down";
	else if (g0 == NULL || rd_raft_leader(g0->raft) == 0)
		*reason = "no leader known for the metadata group";
	else
		*reason = "catching up with the metadata group";
	return false;
}

static uint64_t last_tick_ns(void *ud)
{
	return ((struct rd_node *)ud)->loop.last_tick_done_ns;
}

static uint64_t write_outstanding_since(void *ud)
{
	return rd_storage_sync_outstanding_since(((struct rd_node *)ud)->st);
}

static const char *role_name(const struct rd_group *g)
{
	return rd_raft_role_name(rd_raft_role(g->raft));
}

static void json_ids(struct evbuffer *out, const uint64_t *ids, uint32_t n)
{
	evbuffer_add(out, "[", 1);
	for (uint32_t i = 0; i < n; i++)
		evbuffer_add_printf(out, "%s%" PRIu64, i ? "," : "", ids[i]);
	evbuffer_add(out, "]", 1);
}

static int status_json(void *ud, struct evbuffer *out)
{
	struct rd_node *n = ud;
	struct rd_group *g0 = rd_node_group(n, 0);
	bool first = true;

	evbuffer_add_printf(out,
	                    "{\"node\":%" PRIu64 ",\"incarnation\":\"%016" PRIx64
	                    "\",\"version\":\"%s\",\"ready\":%s,\"uptime_seconds\":%.3f,"
	                    "\"metadata_leader\":%" PRIu64 ",\"disk_slow\":%s,"
	                    "\"disk_evacuations\":%" PRIu64 ",\"canary_checks\":%" PRIu64
	                    ",\"canary_violations\":%" PRIu64 ",\"groups\":[",
	                    n->cfg.node_id, rd_storage_incarnation(n->st), RD_VERSION,
	                    n->ready ? "true" : "false",
	                    (double)(rd_clock_now_ns() - n->started_ns) / 1e9,
	                    g0 != NULL ? rd_raft_leader(g0->raft) : 0,
	                    n->health.slow ? "true" : "false", n->health.evacuations,
	                    n->canary.checks, n->canary.violations);
	for (size_t id = 0; id < n->n_slots; id++) {
		struct rd_group *g = n->groups[id];
		const struct rd_conf_state *cs;
		if (g == NULL)
			continue;
		cs = rd_raft_conf(g->raft);
		evbuffer_add_printf(
		    out,
		    "%s{\"group\":%zu,\"role\":\"%s\",\"leader\":%" PRIu64
		    ",\"term\":%" PRIu64 ",\"commit\":%" PRIu64 ",\"applied\":%" PRIu64
		    ",\"last_index\":%" PRIu64 ",\"vshards\":%u,\"voters\":",
		    first ? "" : ",", id, role_name(g), rd_raft_leader(g->raft),
		    rd_raft_term(g->raft), rd_raft_commit(g->raft),
		    rd_raft_applied_index(g->raft), rd_raft_last_index(g->raft),
		    id == 0 ? 0
		            : rd_routing_vshard_count(&n->topo.routing, (uint32_t)id));
		json_ids(out, cs->voters, cs->n_voters);
		evbuffer_add_printf(out, ",\"learners\":");
		json_ids(out, cs->learners, cs->n_learners);
		evbuffer_add(out, "}", 1);
		first = false;
	}
	evbuffer_add_printf(out, "],\"peers\":[");
	first = true;
	for (unsigned i = 0; i < n->topo.n_members; i++) {
		uint64_t rtt = 0;
		bool up;
		if (n->topo.members[i].id == n->cfg.node_id)
			continue;
		up = rd_peers_connected(n, n->topo.members[i].id, &rtt);
		evbuffer_add_printf(out, "%s{\"id\":%" PRIu64 ",\"address\":",
		                    first ? "" : ",", n->topo.members[i].id);
		rd_admin_json_string(out, n->topo.members[i].addr.text);
		evbuffer_add_printf(out, ",\"connected\":%s,\"rtt_seconds\":%.6f}",
		                    up ? "true" : "false", (double)rtt / 1e6);
		first = false;
	}
	evbuffer_add_printf(out, "]}\n");
	return 0;
}

static void per_group(struct evbuffer *out, struct rd_node *n, enum rd_metric_id id)
{
	const char *name = rd_metrics_desc(id)->name;
	char gs[24];

	rd_metrics_family(out, id);
	for (size_t gid = 0; gid < n->n_slots; gid++) {
		struct rd_group *g = n->groups[gid];
		struct rd_metric_labels l;
		if (g == NULL)
			continue;
		l = RD_METRICS_L1("group", rd_metrics_u64_str(gs, gid));
		switch (id) {
		case RD_METRIC_GROUP_TERM:
			rd_metrics_gauge_u64(out, name, l, rd_raft_term(g->raft));
			break;
		case RD_METRIC_GROUP_COMMIT_INDEX:
			rd_metrics_gauge_u64(out, name, l, rd_raft_commit(g->raft));
			break;
		case RD_METRIC_GROUP_APPLIED_INDEX:
			rd_metrics_gauge_u64(out, name, l,
			                     rd_raft_applied_index(g->raft));
			break;
		case RD_METRIC_GROUP_IS_LEADER:
			rd_metrics_gauge_u64(out, name, l,
			                     rd_raft_role(g->raft) == RD_RAFT_LEADER);
			break;
		case RD_METRIC_GROUP_LEADER:
			rd_metrics_gauge_u64(out, name, l, rd_raft_leader(g->raft));
			break;
		case RD_METRIC_GROUP_PROPOSALS:
			rd_metrics_counter(out, name, l, g->proposals);
			break;
		case RD_METRIC_GROUP_FORWARDED_PROPOSALS:
			rd_metrics_counter(out, name, l, g->forwarded);
			break;
		case RD_METRIC_GROUP_ROLE:
			rd_metrics_gauge_u64(
			    out, name, RD_METRICS_L2("group", gs, "role", role_name(g)),
			    1);
			break;
		default:
			break;
		}
	}
}

static void per_peer(struct evbuffer *out, struct rd_node *n, enum rd_metric_id id)
{
	const char *name = rd_metrics_desc(id)->name;
	char ps[24];

	rd_metrics_family(out, id);
	for (unsigned i = 0; i < n->topo.n_members; i++) {
		struct rd_peer_figures f;
		struct rd_metric_labels l;
		if (n->topo.members[i].id == n->cfg.node_id)
			continue;
		rd_peers_figures(n, n->topo.members[i].id, &f);
		l = RD_METRICS_L1("peer", rd_metrics_u64_str(ps, n->topo.members[i].id));
		switch (id) {
		case RD_METRIC_PEER_CONNECTED:
			rd_metrics_gauge_u64(out, name, l, f.connected);
			break;
		case RD_METRIC_PEER_MESSAGES_SENT:
			rd_metrics_counter(out, name, l, f.msgs_out);
			break;
		case RD_METRIC_PEER_MESSAGES_RECEIVED:
			rd_metrics_counter(out, name, l, f.msgs_in);
			break;
		case RD_METRIC_PEER_FRAMES_SENT:
			rd_metrics_counter(out, name, l, f.frames_out);
			break;
		case RD_METRIC_PEER_NODE_HEARTBEATS:
			rd_metrics_counter(out, name, l, f.node_heartbeats);
			break;
		case RD_METRIC_PEER_LIVE:
			rd_metrics_gauge_u64(out, name, l,
			                     rd_liveness_live(n, n->topo.members[i].id));
			break;
		case RD_METRIC_PEER_BYTES_SENT:
			rd_metrics_counter(out, name, l, f.bytes_out);
			break;
		case RD_METRIC_PEER_BYTES_RECEIVED:
			rd_metrics_counter(out, name, l, f.bytes_in);
			break;
		case RD_METRIC_PEER_RTT:
			rd_metrics_gauge(out, name, l, (double)f.rtt_us / 1e6);
			break;
		case RD_METRIC_PEER_LOST_PACKETS:
			rd_metrics_counter(out, name, l, f.lost);
			break;
		case RD_METRIC_PEER_RECONNECTS:
			rd_metrics_counter(out, name, l, f.reconnects);
			break;
		case RD_METRIC_PEER_RESTARTS:
			rd_metrics_counter(out, name, l, f.restarts);
			break;
		case RD_METRIC_PEER_STALE_DROPPED:
			rd_metrics_counter(out, name, l, f.stale_dropped);
			break;
		case RD_METRIC_PEER_BATCHES_DROPPED:
			rd_metrics_counter(out, name, l, f.batches_dropped);
			break;
		case RD_METRIC_PEER_BATCH_SPLITS:
			rd_metrics_counter(out, name, l, f.batch_splits);
			break;
		case RD_METRIC_PEER_OVERSIZED:
			rd_metrics_counter(out, name, l, f.oversized);
			break;
		case RD_METRIC_PEER_QUEUED_BYTES:
			rd_metrics_gauge_u64(out, name, l, f.queued_bytes);
			break;
		case RD_METRIC_PEER_CREDIT_WAITS:
			rd_metrics_counter(out, name, l, f.credit_waits);
			break;
		default:
			break;
		}
	}
}

static void placement_metrics(struct evbuffer *out, const struct rd_node *n)
{
	const struct rd_placement_drive *p = &n->place;
	const struct rd_routing *rt = &n->topo.routing;
	char ids[24];

	rd_metrics_single_u64(out, RD_METRIC_PLACEMENT_MOVES_IN_FLIGHT,
	                      p->leading ? p->moves_in_flight : 0);
	rd_metrics_family(out, RD_METRIC_PLACEMENT_MOVES);
	rd_metrics_counter(out, "raft_placement_moves_total",
	                   RD_METRICS_L1("result", "started"), p->moves_started);
	rd_metrics_counter(out, "raft_placement_moves_total",
	                   RD_METRICS_L1("result", "done"), p->moves_done);
	rd_metrics_counter(out, "raft_placement_moves_total",
	                   RD_METRICS_L1("result", "abandoned"), p->moves_abandoned);
	rd_metrics_single_u64(out, RD_METRIC_PLACEMENT_TRANSFERS, p->transfers);
	rd_metrics_single_u64(out, RD_METRIC_PLACEMENT_CLOSED, p->closed);
	rd_metrics_family(out, RD_METRIC_NODE_REPLICAS);
	for (unsigned i = 0; i < n->topo.n_members; i++) {
		uint64_t id = n->topo.members[i].id, k = 0;
		for (uint32_t g = 1; g <= rt->n_groups; g++)
			k += (uint64_t)rd_routing_has_replica(rt, g, id);
		rd_metrics_gauge_u64(out, "raft_node_replicas",
		                     RD_METRICS_L1("node", rd_metrics_u64_str(ids, id)),
		                     k);
	}
	rd_metrics_family(out, RD_METRIC_NODE_LEADERS);
	for (unsigned i = 0; i < n->topo.n_members; i++) {
		uint64_t id = n->topo.members[i].id, k = 0;
		bool seen = false;
		for (unsigned j = 0; p->leading && j < p->n_nodes; j++)
			if (p->node_ids[j] == id) {
				k = p->node_leaders[j];
				seen = true;
			}
		for (size_t g = 1; !seen && g < n->n_slots; g++)
			k += n->groups[g] != NULL &&
			     rd_raft_leader(n->groups[g]->raft) == id;
		rd_metrics_gauge_u64(out, "raft_node_leaders",
		                     RD_METRICS_L1("node", rd_metrics_u64_str(ids, id)),
		                     k);
	}
}

static void envelope_metrics(struct evbuffer *out, const struct rd_node *n)
{
	const struct rd_envelope_stats *es = &n->env.stats;
	const struct rd_env_figures *ef = rd_node_envelope_figures(n);

	rd_metrics_single_u64(out, RD_METRIC_ENVELOPES_SENT, es->sent);
	rd_metrics_single_u64(out, RD_METRIC_ENVELOPES_DELIVERED, ef->delivered);
	rd_metrics_family(out, RD_METRIC_ENVELOPES_FAILED);
	for (int code = 1; code < RD_ENVELOPE_CODES; code++) {
		const char *name = rd_wire_code_name(code);
		if (name != NULL)
			rd_metrics_counter(out, "raft_envelopes_failed_total",
			                   RD_METRICS_L1("code", name), es->failed[code]);
	}
	rd_metrics_single_u64(out, RD_METRIC_ENVELOPE_HANDLERS, ef->handlers);
	rd_metrics_single_hist(out, RD_METRIC_ENVELOPE_DELIVERY_DURATION, &ef->latency);
}

static void forward_metrics(struct evbuffer *out, const struct rd_node *n)
{
	const struct rd_forward_stats *fs = &n->fwd.stats;

	rd_metrics_single_u64(out, RD_METRIC_FORWARD_BATCHES, fs->batches_sent);
	rd_metrics_single_u64(out, RD_METRIC_FORWARD_BATCHED, fs->batched_items);
	rd_metrics_single_u64(out, RD_METRIC_FORWARD_BATCHES_REJECTED,
	                      fs->batches_rejected);
}

static struct rd_transport_stats transport_stats(const struct rd_node *n)
{
	struct rd_transport_stats st;

	rd_peers_transport_stats(n, &st);
	return st;
}

static void stream_metrics(struct evbuffer *out, struct rd_node *n)
{
	static const char *const kinds[RD_SUB_KINDS] = {"group", "all", "meta", "watch"};
	struct rd_subs_stats s;
	char gs[24];

	rd_subs_stats(n, &s);
	rd_metrics_family(out, RD_METRIC_STREAM_SUBSCRIPTIONS);
	for (int k = 0; k < RD_SUB_KINDS; k++)
		rd_metrics_gauge_u64(out, "raft_stream_subscriptions",
		                     RD_METRICS_L1("kind", kinds[k]), s.open[k]);
	rd_metrics_single_u64(out, RD_METRIC_STREAM_DELIVERED, s.delivered);
	rd_metrics_single_u64(out, RD_METRIC_STREAM_CUT_OFF, s.cut_off);
	rd_metrics_family(out, RD_METRIC_STREAM_JOURNAL_BYTES);
	for (size_t gid = 0; gid < n->n_slots; gid++) {
		if (n->groups[gid] == NULL)
			continue;
		rd_metrics_gauge_u64(out, "raft_stream_journal_bytes",
		                     RD_METRICS_L1("group", rd_metrics_u64_str(gs, gid)),
		                     rd_subs_journal_bytes(n, gid));
	}
}

static int metrics(void *ud, struct evbuffer *out)
{
	struct rd_node *n = ud;
	struct rd_storage_stats ss;
	struct rd_storage_mem sm;
	struct rd_metric_hist sync;
	uint64_t now = rd_clock_now_ns();
	bool up = n->loop.last_tick_done_ns != 0 &&
	          now - n->loop.last_tick_done_ns <
	              (uint64_t)RD_ADMIN_LIVEZ_TICKS * n->live.interval_ns;
	struct rd_transport_stats ts = transport_stats(n);
	const struct rd_ctl_stats *cs =
	    n->ctl != NULL ? rd_ctl_server_stats(n->ctl) : NULL;
	struct {
		const char *kind;
		uint64_t v;
	} errors[] = {
	    {"malformed_client_request", n->loop.malformed_client},
	    {"unknown_group_message", rd_peers_unknown_group(n)},
	    {"nonmember_message", rd_peers_nonmember(n)},
	    {"stale_incarnation_batch", n->members.refused_incarnation},
	    {"foreign_cluster_batch", n->members.refused_cluster},
	    {"misaddressed_replica_message", n->members.misaddressed},
	    {"malformed_peer_frame", rd_peers_malformed(n)},
	    {"peer_not_member", ts.nonmember_refused},
	    {"nonmember_refused", ts.stranger_refused},
	    {"peer_certificate_closed", ts.cert_closed},
	    {"quic_initial_dropped", ts.initials_dropped},
	    {"client_busy", cs != NULL ? cs->busy : 0},
	    {"client_connection_refused", cs != NULL ? cs->refused : 0},
	    {"client_slow_frame", cs != NULL ? cs->timeouts : 0},
	};

	rd_metrics_single_u64(out, RD_METRIC_TICK_LOOP_ITERATIONS, n->loop.iterations);
	rd_metrics_single(out, RD_METRIC_TICK_LOOP_LAST_DURATION,
	                  (double)n->loop.last_iter_ns / 1e9);
	rd_metrics_single_hist(out, RD_METRIC_TICK_LOOP_DURATION, &n->loop.iter_hist);
	rd_metrics_single_hist(out, RD_METRIC_TICK_DURATION, &n->loop.tick_hist);
	rd_metrics_single_u64(out, RD_METRIC_TICK_LOOP_UP, up);
	rd_metrics_family(out, RD_METRIC_TICK_LOOP_ERRORS);
	for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
		rd_metrics_counter(out, "raft_tick_loop_errors_total",
		                   RD_METRICS_L1("kind", errors[i].kind), errors[i].v);
	rd_metrics_single_u64(out, RD_METRIC_TICK_LOOP_PENDING_GROUPS,
	                      n->loop.pending_groups);
	size_t hosted = 0;
	for (size_t i = 0; i < n->n_slots; i++)
		hosted += n->groups[i] != NULL;
	rd_metrics_single(out, RD_METRIC_TICK_PERIOD,
	                  (double)n->loop.tick_period_ms / 1e3);
	rd_metrics_single_u64(out, RD_METRIC_GROUPS_ACTIVE, n->n_ticking);
	rd_metrics_single_u64(out, RD_METRIC_GROUPS_QUIESCED, hosted - n->n_ticking);
	rd_metrics_single_u64(out, RD_METRIC_GROUP_QUIESCES, n->live.quiesces);
	rd_metrics_family(out, RD_METRIC_GROUP_WAKEUPS);
	for (uint8_t c = 1; c <= RD_WAKE_MAX; c++)
		rd_metrics_counter(out, "raft_group_wakeups_total",
		                   RD_METRICS_L1("cause", rd_raft_wake_name(c)),
		                   n->live.wakeups[c]);
	uint64_t log_bytes = 0;
	for (size_t i = 0; i < n->n_slots; i++) {
		struct rd_raft_log_stats ls;
		if (n->groups[i] == NULL)
			continue;
		rd_raft_log_stats(n->groups[i]->raft, &ls);
		log_bytes += ls.mem_bytes;
	}
	rd_metrics_single_u64(out, RD_METRIC_LOG_MEMORY_BYTES, log_bytes);
	rd_metrics_single_u64(out, RD_METRIC_LOG_SOURCE_READS, n->log_reads);
	rd_metrics_single_u64(out, RD_METRIC_LOG_SOURCE_ERRORS, n->log_read_errors);
	rd_metrics_single_u64(out, RD_METRIC_NODE_READY, n->ready);
	rd_metrics_single(out, RD_METRIC_NODE_UPTIME,
	                  (double)(now - n->started_ns) / 1e9);
	for (int id = RD_METRIC_GROUP_TERM; id <= RD_METRIC_GROUP_FORWARDED_PROPOSALS;
	     id++)
		per_group(out, n, (enum rd_metric_id)id);
	for (int id = RD_METRIC_PEER_CONNECTED; id <= RD_METRIC_PEER_CREDIT_WAITS; id++)
		per_peer(out, n, (enum rd_metric_id)id);

	rd_storage_get_stats(n->st, &ss);
	rd_metrics_hist_init(&sync, rd_storage_sync_bucket_le, RD_STORAGE_SYNC_BUCKETS);
	memcpy(sync.counts, ss.sync_buckets, sizeof ss.sync_buckets);
	sync.count = ss.syncs;
	sync.sum = (double)ss.sync_ns_total / 1e9;
	rd_metrics_single_hist(out, RD_METRIC_STORAGE_SYNC_DURATION, &sync);
	rd_metrics_single_u64(out, RD_METRIC_STORAGE_SYNCED_BYTES, ss.bytes_written);
	rd_metrics_single_u64(out, RD_METRIC_STORAGE_APPLIED_BYTES,
	                      ss.state_bytes_written);
	rd_storage_get_mem(n->st, &sm);
	rd_metrics_single_u64(out, RD_METRIC_STORAGE_MEMTABLE_BYTES, sm.memtables);
	rd_metrics_single_u64(out, RD_METRIC_STORAGE_BLOCK_CACHE_BYTES, sm.block_cache);
	rd_metrics_single_u64(out, RD_METRIC_STORAGE_TABLE_READERS_BYTES,
	                      sm.table_readers);
	rd_metrics_single_u64(out, RD_METRIC_STORAGE_COMMIT_ONLY, ss.commit_only_writes);
	rd_metrics_single_u64(out, RD_METRIC_DISK_SLOW, n->health.slow);
	rd_metrics_single_u64(out, RD_METRIC_DISK_EVACUATIONS, n->health.evacuations);
	rd_metrics_single_u64(out, RD_METRIC_DISK_TRANSFERS, n->health.transfers);
	rd_metrics_single_u64(out, RD_METRIC_CANARY_CHECKS, n->canary.checks);
	rd_metrics_single_u64(out, RD_METRIC_CANARY_VIOLATIONS, n->canary.violations);
	stream_metrics(out, n);
	envelope_metrics(out, n);
	forward_metrics(out, n);
	placement_metrics(out, n);
	return 0;
}

static const struct rd_admin_ops ops = {
    .ready = ready,
    .last_tick_ns = last_tick_ns,
    .write_outstanding_since = write_outstanding_since,
    .write_status_json = status_json,
    .write_metrics = metrics,
};

int rd_node_admin_start(struct rd_node *n, char *msg)
{
	/* The tick timer's longest period (node.c): every group quiesced. */
	struct rd_admin_opts o = {.tick_interval_ns = n->live.interval_ns,
	                          .max_conns = n->cfg.admin_max_conns,
	                          .timeout_ms = n->cfg.admin_timeout_ms};
	int rv;

	if (!n->cfg.admin_enabled)
		return 0;
	rv = rd_admin_start(n->base, (const struct sockaddr *)&n->cfg.admin_listen.sa,
	                    n->cfg.admin_listen.salen, &ops, n, &o, &n->admin, msg);
	if (rv != 0)
		rd_errprefix(msg, "%s: [admin] listen: ", n->cfg.path);
	return rv;
}

void rd_node_admin_stop(struct rd_node *n)
{
	rd_admin_stop(n->admin);
	n->admin = NULL;
}
