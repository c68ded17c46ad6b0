/*
 * The config file's keys and what reads them, shared by the two halves of
 * the parser: config_keys.c (the key table and one value parser per key)
 * and config.c (the line reader, defaults, cross-key validation, loading).
 * Internal to lib/util; everything else uses util/config.h.
 */
#ifndef RD_UTIL_CONFIG_KEYS_H
#define RD_UTIL_CONFIG_KEYS_H

#include <stdio.h>

#include "util/config.h"

/* Every key of the file, by section, in the order raftd.conf(5) lists them. */
enum rd_config_key {
#define KEYS(X)                                                                          \
	X(node, id)                                                                      \
	X(node, data_dir)                                                                \
	X(cluster, listen)                                                               \
	X(cluster, peers)                                                                \
	X(cluster, join)                                                                 \
	X(cluster, data_groups)                                                          \
	X(cluster, replication_factor)                                                   \
	X(cluster, promote_max_lag)                                                      \
	X(cluster, max_moves)                                                            \
	X(raft, tick_ms)                                                                 \
	X(raft, election_ticks)                                                          \
	X(raft, heartbeat_ticks)                                                         \
	X(raft, max_inflight_msgs)                                                       \
	X(raft, max_msg_bytes)                                                           \
	X(raft, snapshot_entries)                                                        \
	X(raft, flush_interval_ms)                                                       \
	X(sessions, max_per_group)                                                       \
	X(sessions, expiry_entries)                                                      \
	X(streams, retention_entries)                                                    \
	X(streams, retention_bytes)                                                      \
	X(streams, max_credit)                                                           \
	X(streams, stall_timeout_ms)                                                     \
	X(transport, max_frame_bytes)                                                    \
	X(transport, idle_timeout_ms)                                                    \
	X(transport, keepalive_ms)                                                       \
	X(transport, handshake_timeout_ms)                                               \
	X(transport, max_partial_bytes)                                                  \
	X(transport, max_half_open)                                                      \
	X(transport, max_half_open_per_source)                                           \
	X(transport, retry_threshold)                                                    \
	X(transport, count_lost_packets)                                                 \
	X(tls, mode)                                                                     \
	X(tls, ca)                                                                       \
	X(tls, cert)                                                                     \
	X(tls, key)                                                                      \
	X(tls, allow_insecure_remote)                                                    \
	X(control, socket)                                                               \
	X(control, socket_mode)                                                          \
	X(control, request_timeout_ms)                                                   \
	X(control, allow_world_access)                                                   \
	X(control, max_connections)                                                      \
	X(control, max_requests_in_flight)                                               \
	X(control, output_high_water_bytes)                                              \
	X(control, partial_frame_timeout_ms)                                             \
	X(envelopes, max_payload_bytes)                                                  \
	X(envelopes, max_in_flight)                                                      \
	X(envelopes, max_in_flight_per_connection)                                       \
	X(admin, listen)                                                                 \
	X(admin, max_connections)                                                        \
	X(admin, request_timeout_ms)                                                     \
	X(health, disk_slow_ms)                                                          \
	X(health, disk_slow_window_ms)                                                   \
	X(health, disk_recover_ms)                                                       \
	X(health, disk_stall_ms)                                                         \
	X(health, canary_interval_ms)                                                    \
	X(log, level)
#define X(s, k) K_##s##_##k,
	KEYS(X)
#undef X
	    K_COUNT
};

/* The section and key names of each key, indexed by enum rd_config_key. */
struct rd_config_key_name {
	const char *section;
	const char *key;
};
extern const struct rd_config_key_name rd_config_keys[K_COUNT];

/* One parse in progress: the config being filled, where its text comes
 * from, and the line each key was set on (0 = not set). */
struct rd_config_parse {
	struct rd_config *c;
	const char *name;
	FILE *fp;
	const char *str; /* string input, when fp is NULL */
	int line;
	int lines[K_COUNT]; /* where each key was set, 0 = not set */
	int err;
	char *msg;
};

/*
 * Record an error about key `k` of parse `p`, as "FILE:LINE: [section] key:
 * WHAT" with the line `k` was set on (the current line while it has none),
 * into p->err and p->msg. Returns 0, so that the inih handler that returns
 * it stops the parse.
 */
int rd_config_fail(struct rd_config_parse *p, int k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Parse value `v` (inline comment and trailing blanks already stripped) of
 * key `k` into p->c. Returns 1 when it is valid, else 0 with the error
 * recorded by rd_config_fail. Precondition: k < K_COUNT and p->lines[k] is
 * the line `v` was read on.
 */
int rd_config_set(struct rd_config_parse *p, int k, const char *v);

#endif
