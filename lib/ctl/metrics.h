/*
 * Prometheus text exposition format (version 0.0.4) helpers for /metrics.
 *
 * The node keeps its counters, gauges and histograms in its own structs and,
 * when /metrics is scraped, writes them with these functions into an
 * evbuffer: one family header (# HELP, # TYPE) followed by its samples.
 *
 *   rd_metrics_family(out, RD_METRIC_GROUP_TERM);
 *   for each group:
 *           rd_metrics_gauge_u64(out, "raft_group_term", RD_METRICS_L1("group", id), t);
 *
 * Names follow the Prometheus conventions: base units (seconds, bytes),
 * counters end in _total, a metric's samples follow its header without
 * interruption. Every metric raftd exports is listed once in
 * RD_METRICS_CATALOG with its type and help text, so that the HELP lines,
 * the man page and the tests agree.
 *
 * Histograms have a fixed array of buckets: observing a value never
 * allocates and costs one short search, so it can sit on the tick and sync
 * paths. Counts are kept per bucket and made cumulative only when written.
 */
#ifndef RD_CTL_METRICS_H
#define RD_CTL_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;

enum rd_metric_type {
	RD_METRIC_COUNTER,
	RD_METRIC_GAUGE,
	RD_METRIC_HISTOGRAM,
};

/* X(ID, name, type, label names separated by commas, help). The node writes
 * every one of these; tests check that each is present in /metrics. */
#define RD_METRICS_CATALOG(X)                                                            \
	X(TICK_LOOP_ITERATIONS, "raft_tick_loop_iterations_total", COUNTER, "",          \
	  "Event-loop iterations that drained ready state (sync, send, apply).")         \
	X(TICK_LOOP_LAST_DURATION, "raft_tick_loop_last_iteration_duration_seconds",     \
	  GAUGE, "", "Duration of the most recent tick-loop iteration.")                 \
	X(TICK_LOOP_DURATION, "raft_tick_loop_iteration_duration_seconds", HISTOGRAM,    \
	  "", "Distribution of tick-loop iteration durations.")                          \
	X(TICK_DURATION, "raft_tick_duration_seconds", HISTOGRAM, "",                    \
	  "Distribution of the time taken to tick every group once.")                    \
	X(TICK_LOOP_UP, "raft_tick_loop_up", GAUGE, "",                                  \
	  "1 while the tick loop completes ticks on time, 0 when it is stalled.")        \
	X(TICK_LOOP_ERRORS, "raft_tick_loop_errors_total", COUNTER, "kind",              \
	  "Errors met by the tick loop, by kind.")                                       \
	X(TICK_LOOP_PENDING_GROUPS, "raft_tick_loop_pending_groups", GAUGE, "",          \
	  "Groups with ready state waiting for the next iteration.")                     \
	X(TICK_PERIOD, "raft_tick_period_seconds", GAUGE, "",                            \
	  "Period of the tick timer: tick_ms while a group ticks, else the node "        \
	  "heartbeat interval.")                                                         \
	X(GROUPS_ACTIVE, "raft_groups_active", GAUGE, "",                                \
	  "Hosted groups that tick (not quiesced).")                                     \
	X(GROUPS_QUIESCED, "raft_groups_quiesced", GAUGE, "",                            \
	  "Hosted groups that are quiesced: no tick, no heartbeat of their own.")        \
	X(GROUP_QUIESCES, "raft_group_quiesces_total", COUNTER, "",                      \
	  "Times a hosted group quiesced.")                                              \
	X(GROUP_WAKEUPS, "raft_group_wakeups_total", COUNTER, "cause",                   \
	  "Times a quiesced group woke, by cause.")                                      \
	X(LOG_MEMORY_BYTES, "raft_log_memory_bytes", GAUGE, "",                          \
	  "Log entries the hosted groups' Raft cores hold in memory, in bytes.")         \
	X(LOG_SOURCE_READS, "raft_log_source_reads_total", COUNTER, "",                  \
	  "Reads of log entries below a core's in-memory tail from storage.")            \
	X(LOG_SOURCE_ERRORS, "raft_log_source_errors_total", COUNTER, "",                \
	  "Such reads that failed (nothing was sent for them).")                         \
	X(NODE_READY, "raft_node_ready", GAUGE, "",                                      \
	  "1 when this node serves requests (metadata leader known, caught up).")        \
	X(NODE_UPTIME, "raft_node_uptime_seconds", GAUGE, "",                            \
	  "Seconds since this raftd process started.")                                   \
	X(GROUP_TERM, "raft_group_term", GAUGE, "group",                                 \
	  "Current Raft term of the group.")                                             \
	X(GROUP_COMMIT_INDEX, "raft_group_commit_index", GAUGE, "group",                 \
	  "Highest log index known to be committed in the group.")                       \
	X(GROUP_APPLIED_INDEX, "raft_group_applied_index", GAUGE, "group",               \
	  "Highest log index applied to the group's state machine on this node.")        \
	X(GROUP_IS_LEADER, "raft_group_is_leader", GAUGE, "group",                       \
	  "1 when this node leads the group, else 0.")                                   \
	X(GROUP_LEADER, "raft_group_leader_id", GAUGE, "group",                          \
	  "Node id of the group's known leader, 0 when none is known.")                  \
	X(GROUP_ROLE, "raft_group_role", GAUGE, "group,role",                            \
	  "1 for this node's current role in the group.")                                \
	X(GROUP_PROPOSALS, "raft_group_proposals_total", COUNTER, "group",               \
	  "Proposals appended by this node as the group's leader.")                      \
	X(GROUP_FORWARDED_PROPOSALS, "raft_group_forwarded_proposals_total", COUNTER,    \
	  "group", "Proposals this node forwarded to the group's leader.")               \
	X(PEER_CONNECTED, "raft_peer_connected", GAUGE, "peer",                          \
	  "1 while a QUIC connection to the peer is established.")                       \
	X(PEER_MESSAGES_SENT, "raft_peer_messages_sent_total", COUNTER, "peer",          \
	  "Raft messages sent to the peer.")                                             \
	X(PEER_MESSAGES_RECEIVED, "raft_peer_messages_received_total", COUNTER, "peer",  \
	  "Raft messages received from the peer.")                                       \
	X(PEER_FRAMES_SENT, "raft_peer_frames_sent_total", COUNTER, "peer",              \
	  "Frames of every kind sent to the peer.")                                      \
	X(PEER_NODE_HEARTBEATS, "raft_peer_node_heartbeats_sent_total", COUNTER, "peer", \
	  "Empty batches sent to the peer as node heartbeats (liveness).")               \
	X(PEER_LIVE, "raft_peer_live", GAUGE, "peer",                                    \
	  "1 while a batch from the peer arrived within an election timeout.")           \
	X(PEER_BYTES_SENT, "raft_peer_bytes_sent_total", COUNTER, "peer",                \
	  "Frame bytes sent to the peer.")                                               \
	X(PEER_BYTES_RECEIVED, "raft_peer_bytes_received_total", COUNTER, "peer",        \
	  "Frame bytes received from the peer.")                                         \
	X(PEER_RTT, "raft_peer_rtt_seconds", GAUGE, "peer",                              \
	  "Smoothed QUIC round-trip time to the peer (RFC 9002 section 5.3).")           \
	X(PEER_LOST_PACKETS, "raft_peer_lost_packets_total", COUNTER, "peer",            \
	  "QUIC packets to the peer declared lost.")                                     \
	X(PEER_RECONNECTS, "raft_peer_reconnects_total", COUNTER, "peer",                \
	  "Connections to the peer established again after a loss.")                     \
	X(PEER_RESTARTS, "raft_peer_restarts_total", COUNTER, "peer",                    \
	  "Connections from a new process of the peer (another boot id).")               \
	X(PEER_STALE_DROPPED, "raft_peer_stale_frames_dropped_total", COUNTER, "peer",   \
	  "Frames queued for a previous process of the peer, dropped.")                  \
	X(PEER_BATCHES_DROPPED, "raft_peer_batches_dropped_total", COUNTER, "peer",      \
	  "Raft batches to the peer the transport refused (queue full, no peer).")       \
	X(PEER_BATCH_SPLITS, "raft_peer_batch_splits_total", COUNTER, "peer",            \
	  "Raft batches sent early because the next message passed max_frame_bytes.")    \
	X(PEER_OVERSIZED, "raft_peer_oversized_messages_dropped_total", COUNTER, "peer", \
	  "Raft messages to the peer dropped: alone over max_frame_bytes.")              \
	X(PEER_QUEUED_BYTES, "raft_peer_queued_bytes", GAUGE, "peer",                    \
	  "Bytes queued for the peer and not yet handed to QUIC.")                       \
	X(PEER_CREDIT_WAITS, "raft_peer_credit_waits_total", COUNTER, "peer",            \
	  "Times a stream to the peer had bytes to send and no flow-control credit.")    \
	X(STORAGE_SYNC_DURATION, "raft_storage_sync_duration_seconds", HISTOGRAM, "",    \
	  "Duration of synced RocksDB write batches (one per loop iteration).")          \
	X(STORAGE_SYNCED_BYTES, "raft_storage_synced_bytes_total", COUNTER, "",          \
	  "Bytes of synced write batches: log entries and Raft state (the WAL).")        \
	X(STORAGE_APPLIED_BYTES, "raft_storage_applied_bytes_total", COUNTER, "",        \
	  "Bytes of write batches without the WAL: what applying entries changed.")      \
	X(STORAGE_MEMTABLE_BYTES, "raft_storage_memtable_bytes", GAUGE, "",              \
	  "RocksDB memtables of every column family, in bytes (not yet flushed).")       \
	X(STORAGE_BLOCK_CACHE_BYTES, "raft_storage_block_cache_bytes", GAUGE, "",        \
	  "RocksDB block cache in use, in bytes.")                                       \
	X(STORAGE_TABLE_READERS_BYTES, "raft_storage_table_readers_bytes", GAUGE, "",    \
	  "RocksDB table readers (index and filter blocks outside the cache), bytes.")   \
	X(STORAGE_COMMIT_ONLY, "raft_storage_commit_only_writes_total", COUNTER, "",     \
	  "WAL writes without a sync: every Raft state change in them moved commit.")    \
	X(DISK_SLOW, "raftd_disk_slow", GAUGE, "",                                       \
	  "1 while this node judges its disk slow and keeps no leadership.")             \
	X(DISK_EVACUATIONS, "raftd_disk_evacuations_total", COUNTER, "",                 \
	  "Times this node turned slow and moved its leaderships away.")                 \
	X(DISK_TRANSFERS, "raftd_disk_evacuation_transfers_total", COUNTER, "",          \
	  "Leadership transfers started because the disk was slow.")                     \
	X(CANARY_CHECKS, "raftd_canary_checks_total", COUNTER, "",                       \
	  "Canary read-backs compared with the acknowledged canary write.")              \
	X(CANARY_VIOLATIONS, "raftd_canary_violations_total", COUNTER, "",               \
	  "Canary reads older than an acknowledged canary write (lost write or stale "   \
	  "read).")                                                                      \
	X(STREAM_SUBSCRIPTIONS, "raft_stream_subscriptions", GAUGE, "kind",              \
	  "Open commit-stream subscriptions by kind (group, all, meta, watch).")         \
	X(STREAM_DELIVERED, "raft_stream_entries_delivered_total", COUNTER, "",          \
	  "Entries and watch events sent to subscribers.")                               \
	X(STREAM_CUT_OFF, "raft_stream_subscribers_cut_off_total", COUNTER, "",          \
	  "Subscribers cut off because they stopped reading.")                           \
	X(STREAM_JOURNAL_BYTES, "raft_stream_journal_bytes", GAUGE, "group",             \
	  "Bytes held in the group's journal of applied commands.")                      \
	X(ENVELOPES_SENT, "raft_envelopes_sent_total", COUNTER, "",                      \
	  "Envelopes local clients sent through this node.")                             \
	X(ENVELOPES_DELIVERED, "raft_envelopes_delivered_total", COUNTER, "",            \
	  "Envelopes a local handler answered (reply or application error).")            \
	X(ENVELOPES_FAILED, "raft_envelopes_failed_total", COUNTER, "code",              \
	  "Envelopes sent through this node that did not end OK, by error code.")        \
	X(ENVELOPE_HANDLERS, "raft_envelope_handler_connections", GAUGE, "",             \
	  "Envelope handler connections registered on this node.")                       \
	X(PLACEMENT_MOVES_IN_FLIGHT, "raft_placement_moves_in_flight", GAUGE, "",        \
	  "Data groups whose configuration differs from their target placement "         \
	  "(group-0 leader; 0 elsewhere).")                                              \
	X(PLACEMENT_MOVES, "raft_placement_moves_total", COUNTER, "result",              \
	  "Replica moves this node's placement driver started, finished (the "           \
	  "configuration its target again) or abandoned (target gone).")                 \
	X(PLACEMENT_TRANSFERS, "raft_placement_leader_transfers_total", COUNTER, "",     \
	  "Leadership transfers the placement driver asked for (balancing, sources).")   \
	X(PLACEMENT_CLOSED, "raft_placement_replicas_closed_total", COUNTER, "",         \
	  "Replicas moved away from this node and closed (their data stays on disk).")   \
	X(NODE_REPLICAS, "raft_node_replicas", GAUGE, "node",                            \
	  "Data-group replicas the target placement puts on each member.")               \
	X(NODE_LEADERS, "raft_node_leaders", GAUGE, "node",                              \
	  "Data groups each member leads, as the group-0 leader's driver last saw "      \
	  "them (elsewhere: of the groups this node hosts).")                            \
	X(ENVELOPE_DELIVERY_DURATION, "raft_envelope_delivery_duration_seconds",         \
	  HISTOGRAM, "", "Time from delivery to a local handler to its answer.")         \
	X(FORWARD_BATCHES, "raft_forward_batches_sent_total", COUNTER, "",               \
	  "RPCs that carried two or more forwarded requests to a leader.")               \
	X(FORWARD_BATCHED, "raft_forward_batched_requests_total", COUNTER, "",           \
	  "Forwarded requests that left in such a batch.")                               \
	X(FORWARD_BATCHES_REJECTED, "raft_forward_batches_rejected_total", COUNTER, "",  \
	  "Malformed forward batches refused, or batch answers dropped.")

enum rd_metric_id {
#define RD__METRIC_ENUM(id, name, type, labels, help) RD_METRIC_##id,
	RD_METRICS_CATALOG(RD__METRIC_ENUM)
#undef RD__METRIC_ENUM
	    RD_METRIC_COUNT
};

struct rd_metric_desc {
	const char *name;
	enum rd_metric_type type;
	const char *labels; /* "" or "group" or "group,role" */
	const char *help;
};

/* The catalog entry of `id` (id < RD_METRIC_COUNT). */
const struct rd_metric_desc *rd_metrics_desc(enum rd_metric_id id);

/* Up to two labels on one sample. Values are escaped when written; names
 * must match [a-zA-Z_][a-zA-Z0-9_]* and not be "le" (asserted). The strings
 * are borrowed for the duration of the call. */
struct rd_metric_labels {
	unsigned n;
	const char *name[2];
	const char *value[2];
};

#define RD_METRICS_L0       ((struct rd_metric_labels){0})
#define RD_METRICS_L1(k, v) ((struct rd_metric_labels){1, {(k), NULL}, {(v), NULL}})
#define RD_METRICS_L2(k1, v1, k2, v2)                                                    \
	((struct rd_metric_labels){2, {(k1), (k2)}, {(v1), (v2)}})

/* A label value from a number ("group" => "3"): formats `v` into `buf`
 * (at least 21 bytes) and returns `buf`. */
const char *rd_metrics_u64_str(char *buf, uint64_t v);

/* True when `name` is a valid metric name: [a-zA-Z_:][a-zA-Z0-9_:]*. */
bool rd_metrics_name_valid(const char *name);

/* Write "# HELP name help" and "# TYPE name type" for `id`. */
void rd_metrics_family(struct evbuffer *out, enum rd_metric_id id);

/* The same for a metric outside the catalog. `help` is escaped (backslash,
 * newline) as the format requires. */
void rd_metrics_header(struct evbuffer *out, const char *name, enum rd_metric_type type,
                       const char *help);

/* One unlabelled metric of the catalog: the family header of `id`, then its
 * one sample under the catalog's name. `id` is a COUNTER or GAUGE for the
 * first two (rd_metrics_single: a gauge's fractional value), a HISTOGRAM for
 * the third (asserted). */
void rd_metrics_single_u64(struct evbuffer *out, enum rd_metric_id id, uint64_t value);
void rd_metrics_single(struct evbuffer *out, enum rd_metric_id id, double value);
struct rd_metric_hist;
void rd_metrics_single_hist(struct evbuffer *out, enum rd_metric_id id,
                            const struct rd_metric_hist *h);

/* One sample line "name{labels} value". Use after the family header. */
void rd_metrics_counter(struct evbuffer *out, const char *name, struct rd_metric_labels l,
                        uint64_t value);
void rd_metrics_gauge_u64(struct evbuffer *out, const char *name,
                          struct rd_metric_labels l, uint64_t value);
void rd_metrics_gauge(struct evbuffer *out, const char *name, struct rd_metric_labels l,
                      double value);

/* Format `v` the shortest way that reads back exactly, or +Inf, -Inf, NaN.
 * `buf` holds at least 32 bytes. Returns `buf`. */
const char *rd_metrics_fmt_double(char *buf, double v);

/* --- histograms ---------------------------------------------------------- */

#define RD_METRICS_MAX_BUCKETS 24

struct rd_metric_hist {
	const double *bounds; /* RD_METRICS_MAX_BUCKETS at most, ascending */
	unsigned n_bounds;
	/* counts[i]: observations <= bounds[i] and > bounds[i-1];
	 * counts[n_bounds]: above the last bound (the +Inf bucket's share). */
	uint64_t counts[RD_METRICS_MAX_BUCKETS + 1];
	uint64_t count;
	double sum;
};

/* Latency bucket bounds in seconds, 50 us to 10 s, fit for tick-loop
 * iterations and fsyncs alike. */
extern const double rd_metrics_latency_buckets[];
extern const unsigned rd_metrics_latency_buckets_n;

/* Zero `h` and use `bounds` (borrowed: must outlive `h`; strictly ascending,
 * finite, at most RD_METRICS_MAX_BUCKETS, asserted). */
void rd_metrics_hist_init(struct rd_metric_hist *h, const double *bounds,
                          unsigned n_bounds);

/* Count one observation. Never allocates. NaN is ignored. */
void rd_metrics_hist_observe(struct rd_metric_hist *h, double v);

/* Write the histogram's samples: cumulative name_bucket{...,le="B"} lines
 * ending with le="+Inf", then name_sum and name_count, all with labels `l`
 * (at most two, le is appended last). */
void rd_metrics_histogram(struct evbuffer *out, const char *name,
                          struct rd_metric_labels l, const struct rd_metric_hist *h);

#endif
