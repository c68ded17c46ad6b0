/*
 * The config file's keys and what reads them, shared by the two halves of
 * the parser: config_keys.c (the key table and one value parser per key)
 * and config.c (the line reader, defaults, cross-key validation, loading).
 * Internal to lib/util; everything else uses util/config.h.
 */
#ifndef RD_UTIL_CONFIG_KEYS_H
#define RD_UTIL_CONFIG_KEYS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/config.h"

/*
 * The key table: every key of the file, by section, in the order
 * raftd.conf(5) lists them, one row each:
 *
 *   X(section, key, what it is and where it goes, default)
 *
 * The third column is one of (config_keys.c; `f` a field of struct rd_config):
 *   NUM(f, min, max, unit)      a decimal number in min..max (byte counts take
 *                               KiB, MiB, GiB) into an unsigned or uint64_t;
 *                               unit N, MS, BYTES or ENTRIES names it in errors
 *   NUM_OFF(f, max, unit, what) the same in 0..max, where 0 turns `what` off
 *   FLAG(f)                     yes/true/1 or no/false/0 into a bool
 *   PATH(f)                     a non-empty path into a char array
 *   ADDR(f)                     host:port or [v6]:port, resolved (util/config.h)
 *   CUSTOM(fn)                  parsed by fn (peer list, enums, octal mode...)
 * The default is written as the file would write it and parsed by the same
 * code (rd_config_defaults), so it obeys the bounds and raftd.conf(5) can
 * be checked against it (tests/ops/test_man.c); NULL: none, the field stays
 * zero (a required key, or one whose default is derived from others).
 * A new key is a row here, its field in struct rd_config, its entry (with
 * the default) in raftd.conf(5) and its line in conf/raftd.conf.example;
 * checks across keys go to config.c validate().
 */
/* clang-format off */
#define KEYS(X) \
	X(node, id, NUM(node_id, 1, UINT64_MAX, N), NULL) \
	X(node, data_dir, PATH(data_dir), NULL) \
	X(cluster, listen, ADDR(listen), NULL) \
	X(cluster, peers, CUSTOM(set_peers), NULL) \
	X(cluster, join, CUSTOM(set_join), NULL) \
	X(cluster, data_groups, NUM(data_groups, 1, 4096, N), "16") \
	X(cluster, replication_factor, NUM(replication_factor, 1, 7, N), "3") \
	X(cluster, promote_max_lag, NUM(promote_max_lag, 0, UINT64_MAX, ENTRIES), "1000") \
	X(cluster, max_moves, NUM(max_moves, 1, 64, N), "4") \
	X(raft, tick_ms, NUM(tick_ms, 1, 1000, MS), "10") \
	X(raft, election_ticks, NUM(election_ticks, 2, 100000, N), "30") \
	X(raft, heartbeat_ticks, NUM(heartbeat_ticks, 1, 100000, N), "3") \
	X(raft, max_inflight_msgs, NUM(max_inflight_msgs, 1, 65536, N), "256") \
	X(raft, max_inflight_bytes, NUM_OFF(max_inflight_bytes, 1ull << 34, BYTES, "the byte bound"), "16MiB") \
	X(raft, max_msg_bytes, NUM(max_msg_bytes, 1024, 1ull << 30, BYTES), "1MiB") \
	X(raft, snapshot_entries, NUM(snapshot_entries, 1, UINT64_MAX, N), "10000") \
	X(raft, flush_interval_ms, NUM(flush_interval_ms, 10, 600000, MS), "2000") \
	X(raft, quiesce, FLAG(quiesce), "yes") \
	X(raft, log_cache_bytes, NUM(log_cache_bytes, 0, 1ull << 30, BYTES), "64KiB") \
	X(storage, async_write, FLAG(async_write), "yes") \
	X(sessions, max_per_group, NUM(session_max, 1, UINT64_MAX, N), "10000") \
	X(sessions, expiry_entries, NUM(session_expiry, 1, UINT64_MAX, N), "100000") \
	X(streams, retention_entries, NUM(journal_entries, 0, UINT64_MAX, ENTRIES), "100000") \
	X(streams, retention_bytes, NUM(journal_bytes, 0, UINT64_MAX, BYTES), "64MiB") \
	X(streams, max_credit, NUM(stream_max_credit, 1, 1000000, N), "4096") \
	X(streams, stall_timeout_ms, NUM(stream_stall_ms, 10, 3600000, MS), "10000") \
	X(transport, max_frame_bytes, NUM(max_frame_bytes, 4096, 1ull << 30, BYTES), "64MiB") \
	X(transport, idle_timeout_ms, NUM(idle_timeout_ms, 100, 3600000, MS), "30000") \
	X(transport, keepalive_ms, NUM(keepalive_ms, 10, 3600000, MS), "1000") \
	X(transport, handshake_timeout_ms, NUM(handshake_timeout_ms, 100, 600000, MS), "5000") \
	X(transport, max_partial_bytes, NUM(max_partial_bytes, 1u << 20, 1ull << 34, BYTES), NULL) \
	X(transport, max_half_open, NUM(max_half_open, 1, 1000000, N), "256") \
	X(transport, max_half_open_per_source, NUM(max_half_open_per_source, 1, 1000000, N), "8") \
	X(transport, retry_threshold, NUM(retry_threshold, 0, 1000000, N), "16") \
	X(transport, count_lost_packets, FLAG(count_lost_packets), "no") \
	X(tls, mode, CUSTOM(set_tls_mode), "mutual") \
	X(tls, ca, PATH(tls_ca), NULL) \
	X(tls, cert, PATH(tls_cert), NULL) \
	X(tls, key, PATH(tls_key), NULL) \
	X(tls, allow_insecure_remote, FLAG(tls_insecure_remote), "no") \
	X(control, socket, PATH(socket_path), "/run/raftd/raftd.sock") \
	X(control, socket_mode, CUSTOM(set_socket_mode), "0660") \
	X(control, request_timeout_ms, NUM(request_timeout_ms, 1, 3600000, MS), "5000") \
	X(control, allow_world_access, FLAG(socket_world), "no") \
	X(control, max_connections, NUM(ctl_max_conns, 1, 65536, N), "64") \
	X(control, max_requests_in_flight, NUM(ctl_max_inflight, 1, 65536, N), "64") \
	X(control, output_high_water_bytes, NUM(ctl_high_water, 4096, 1ull << 30, BYTES), "4MiB") \
	X(control, partial_frame_timeout_ms, NUM(ctl_partial_timeout_ms, 1, 3600000, MS), "10000") \
	X(envelopes, max_payload_bytes, NUM(env_max_payload, 1, RD_CONFIG_ENV_PAYLOAD_MAX, BYTES), "256KiB") \
	X(envelopes, max_in_flight, NUM(env_max_inflight, 1, 1000000, N), "4096") \
	X(envelopes, max_in_flight_per_connection, NUM(env_max_inflight_conn, 1, 65536, N), "16") \
	X(admin, listen, CUSTOM(set_admin_listen), "127.0.0.1:9101") \
	X(admin, max_connections, NUM(admin_max_conns, 1, 65536, N), "16") \
	X(admin, request_timeout_ms, NUM(admin_timeout_ms, 1, 3600000, MS), "5000") \
	X(health, disk_slow_ms, NUM_OFF(disk_slow_ms, 3600000, MS, "evacuation"), "100") \
	X(health, disk_slow_window_ms, NUM(disk_slow_window_ms, 100, 3600000, MS), "5000") \
	X(health, disk_recover_ms, NUM(disk_recover_ms, 100, 3600000, MS), "30000") \
	X(health, disk_stall_ms, NUM_OFF(disk_stall_ms, 3600000, MS, "the guard"), "60000") \
	X(health, canary_interval_ms, NUM_OFF(canary_interval_ms, 3600000, MS, "the canary"), "10000") \
	X(log, level, CUSTOM(set_log_level), "info")
/* clang-format on */

enum rd_config_key {
#define X(s, k, ...) K_##s##_##k,
	KEYS(X)
#undef X
	    K_COUNT
};

struct rd_config_parse;

/* What a key's value is (the third column of KEYS). */
enum rd_config_kind {
	RD_CONFIG_NUM,
	RD_CONFIG_FLAG,
	RD_CONFIG_PATH,
	RD_CONFIG_ADDR,
	RD_CONFIG_CUSTOM,
};

/* How a number is named in an error: "a number", "a number of ...". */
enum rd_config_unit {
	RD_CONFIG_UNIT_N,
	RD_CONFIG_UNIT_MS,
	RD_CONFIG_UNIT_BYTES,
	RD_CONFIG_UNIT_ENTRIES,
};

/* One row of KEYS, indexed by enum rd_config_key. */
struct rd_config_key_spec {
	const char *section;
	const char *key;
	enum rd_config_kind kind;
	size_t offset; /* of the field in struct rd_config (all but CUSTOM) */
	size_t size;   /* of the field: 4 or 8 for a number, a path's capacity */
	uint64_t min, max;
	enum rd_config_unit unit;
	const char *zero_turns_off; /* NUM_OFF: what 0 turns off */
	/* CUSTOM: parse `v` into p->c; returns 1, or 0 after rd_config_fail */
	int (*set)(struct rd_config_parse *p, int k, const char *v);
	const char *def; /* the default as the file writes it, or NULL */
};
extern const struct rd_config_key_spec rd_config_keys[K_COUNT];

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
