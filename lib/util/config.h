/*
 * The node's config file (INI, one per node; see conf/raftd.conf.example and
 * raftd.conf(5)). rd_config_load parses and validates it without touching
 * the data directory: unknown sections or keys, bad values, duplicates and
 * missing required keys are errors whose message names file, line and key.
 */
#ifndef RD_UTIL_CONFIG_H
#define RD_UTIL_CONFIG_H

#include <limits.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "util/log.h"

#define RD_CONFIG_MAX_PEERS 64
#define RD_CONFIG_MAX_JOIN  16
#define RD_CONFIG_ADDR_LEN  128
/* [envelopes] max_payload_bytes at most: an envelope and its reply travel in
 * one client-socket frame (1 MiB) with room for the other fields. */
#define RD_CONFIG_ENV_PAYLOAD_MAX (1000u * 1024)

/* A "host:port" or "[v6]:port" address, resolved at load time. */
struct rd_addr {
	char text[RD_CONFIG_ADDR_LEN];
	struct sockaddr_storage sa;
	socklen_t salen;
};

struct rd_config_peer {
	uint64_t id;
	struct rd_addr addr;
};

enum rd_tls_mode { RD_TLS_MUTUAL = 0, RD_TLS_INSECURE = 1 };

struct rd_config {
	char path[PATH_MAX];

	/* [node] */
	uint64_t node_id;
	char data_dir[PATH_MAX];

	/* [cluster] */
	struct rd_addr listen;
	struct rd_config_peer peers[RD_CONFIG_MAX_PEERS];
	unsigned n_peers;
	/* [cluster] join: addresses of members of a running cluster that this
	 * node, with an empty data directory, asks to add it (instead of
	 * peers). */
	bool has_join;
	struct rd_addr join[RD_CONFIG_MAX_JOIN];
	unsigned n_join;
	unsigned data_groups;
	unsigned replication_factor;
	/* A learner of group 0 is promoted only when its match index is
	 * within this many entries of the leader's last index. */
	uint64_t promote_max_lag;
	/* Replica moves the placement driver keeps in flight at most. */
	unsigned max_moves;

	/* [raft] */
	unsigned tick_ms;
	unsigned election_ticks;
	unsigned heartbeat_ticks;
	unsigned max_inflight_msgs;
	/* bytes of appends in flight to one follower of a group, counted as
	 * max_msg_bytes counts them; 0: no bound */
	uint64_t max_inflight_bytes;
	uint64_t max_msg_bytes;
	uint64_t snapshot_entries;
	/* the shortest time between the storage flushes a compaction asks for
	 * (storage.h rd_storage_flush_soon) */
	unsigned flush_interval_ms;
	/* idle groups quiesce (raft/raft.h, "Quiescence"); no: every group
	 * ticks and heartbeats forever, as in plain Raft */
	bool quiesce;
	/* bytes of a working group's newest log entries its Raft core keeps in
	 * memory (raft.h, "The in-memory tail"); 0: no bound while working.
	 * A quiesced group keeps none. */
	uint64_t log_cache_bytes;

	/* [storage] */
	/* The group commit is written by a writer thread while the loop
	 * steps input (storage.h rd_storage_commit_start); no: on the loop's
	 * thread, which waits for the fsync. */
	bool async_write;
	/* [sessions]: client sessions kept per group, and applied entries of
	 * a group after which an unseen session expires (storage.h) */
	uint64_t session_max;
	uint64_t session_expiry;

	/* [streams]: the journal kept per group for subscribers (entries and
	 * bytes; 0 = no bound on that measure, subscribe.c trim) and flow
	 * control of subscriptions */
	uint64_t journal_entries;   /* retention_entries */
	uint64_t journal_bytes;     /* retention_bytes */
	unsigned stream_max_credit; /* max_credit */
	unsigned stream_stall_ms;   /* stall_timeout_ms */

	/* [transport] */
	uint64_t max_frame_bytes;
	unsigned idle_timeout_ms;
	unsigned keepalive_ms;
	unsigned handshake_timeout_ms;
	uint64_t max_partial_bytes; /* 0: derived from the frame caps */
	unsigned max_half_open;
	unsigned max_half_open_per_source;
	unsigned retry_threshold;
	bool count_lost_packets;

	/* [tls] */
	enum rd_tls_mode tls_mode;
	char tls_ca[PATH_MAX];
	char tls_cert[PATH_MAX];
	char tls_key[PATH_MAX];
	bool tls_insecure_remote; /* allow_insecure_remote */

	/* [control] */
	char socket_path[108]; /* sizeof sun_path */
	mode_t socket_mode;
	unsigned request_timeout_ms;
	bool socket_world;               /* allow_world_access */
	unsigned ctl_max_conns;          /* max_connections */
	unsigned ctl_max_inflight;       /* max_requests_in_flight, per connection */
	uint64_t ctl_high_water;         /* output_high_water_bytes */
	unsigned ctl_partial_timeout_ms; /* partial_frame_timeout_ms */

	/* [envelopes] */
	uint64_t env_max_payload;       /* max_payload_bytes */
	unsigned env_max_inflight;      /* max_in_flight, per node */
	unsigned env_max_inflight_conn; /* max_in_flight_per_connection */

	/* [admin] */
	bool admin_enabled;
	struct rd_addr admin_listen;
	unsigned admin_max_conns;  /* max_connections */
	unsigned admin_timeout_ms; /* request_timeout_ms: whole request */

	/* [health]: gray failures (lib/multiraft/health.c, lib/storage/stall.c) */
	unsigned disk_slow_ms;        /* sync p99 above this is slow; 0: off */
	unsigned disk_slow_window_ms; /* ... for this long: evacuate leaders */
	unsigned disk_recover_ms;     /* below it this long: campaign again */
	unsigned disk_stall_ms;       /* one sync outstanding this long: abort */
	unsigned canary_interval_ms;  /* per data group; 0: no canary */

	/* [log] */
	enum rd_log_level log_level;
};

/* Fill `c` with the defaults of every optional key (the last column of the
 * key table, util/config_keys.h). */
void rd_config_defaults(struct rd_config *c);

/* Load and validate `path` into `c`. Returns 0, or RD_ECONFIG / RD_EIO with a
 * message "FILE:LINE: [section] key: what is wrong" in `msg`. */
int rd_config_load(struct rd_config *c, const char *path, char *msg);

/* Same, from a string (for tests); `name` stands for the file in messages. */
int rd_config_load_string(struct rd_config *c, const char *name, const char *text,
                          char *msg);

/* Parse "host:port" / "[v6]:port" into `out`. Returns 0 or RD_EINVAL. */
int rd_addr_parse(struct rd_addr *out, const char *text, char *msg);

/* The peer with `id`, or NULL. */
const struct rd_config_peer *rd_config_peer(const struct rd_config *c, uint64_t id);

#endif
