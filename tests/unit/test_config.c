/* Config parsing: a good file loads with its values and defaults; every kind
 * of mistake is an error that names file, line and key. */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "util/config.h"
#include "util/config_keys.h"
#include "util/err.h"

static const char *good = "[node]\n"
                          "id = 2\n"
                          "data_dir = /tmp/raftd-test\n"
                          "\n"
                          "[cluster]\n"
                          "listen = 127.0.0.1:7002   # QUIC\n"
                          "peers = 1@127.0.0.1:7001, 2@127.0.0.1:7002, 3@[::1]:7003\n"
                          "data_groups = 8\n"
                          "[tls]\n"
                          "mode = insecure\n"
                          "[control]\n"
                          "socket_mode = 0600\n"
                          "[log]\n"
                          "level = debug\n";

/* Load `text` as file `name` into c; fails the test unless it is
 * accepted. */
static void load_ok(struct rd_config *c, const char *name, const char *text)
{
	char msg[RD_ERRMSG_SIZE] = "";

	cr_assert_eq(rd_config_load_string(c, name, text, msg), 0, "%s", msg);
}

Test(config, good_file_loads_with_defaults)
{
	struct rd_config c;
	load_ok(&c, "n2.conf", good);
	cr_assert_eq(c.node_id, 2);
	cr_assert_str_eq(c.data_dir, "/tmp/raftd-test");
	cr_assert_str_eq(c.listen.text, "127.0.0.1:7002");
	cr_assert_eq(c.n_peers, 3);
	cr_assert_eq(c.peers[2].id, 3);
	cr_assert_eq(c.peers[2].addr.sa.ss_family, AF_INET6);
	cr_assert_eq(c.data_groups, 8);
	cr_assert_eq(c.replication_factor, 3);
	cr_assert_eq(c.tick_ms, 10);
	cr_assert_eq(c.election_ticks, 30);
	cr_assert_eq(c.tls_mode, RD_TLS_INSECURE);
	cr_assert_eq(c.socket_mode, 0600);
	cr_assert_eq(c.log_level, RD_LOG_DEBUG);
	cr_assert_eq(c.max_frame_bytes, 64u << 20);
}

static void expect_error(const char *text, const char *want)
{
	struct rd_config c;
	char msg[RD_ERRMSG_SIZE] = "";
	cr_assert_eq(rd_config_load_string(&c, "x.conf", text, msg), RD_ECONFIG,
	             "accepted: %s", text);
	cr_assert(strstr(msg, want) != NULL, "message '%s' lacks '%s'", msg, want);
}

#define BASE  "[node]\nid = 1\ndata_dir = /d\n[cluster]\nlisten = 127.0.0.1:1\n"
#define PEERS "peers = 1@127.0.0.1:1\n[tls]\nmode = insecure\n"

Test(config, unknown_key_names_file_line_and_key)
{
	expect_error(BASE PEERS "[raft]\nelection_tick = 5\n",
	             "x.conf:10: [raft] election_tick: unknown key");
}

Test(config, unknown_section)
{
	expect_error(BASE PEERS "[rafts]\nx = 1\n", "x.conf:10: unknown section [rafts]");
}

Test(config, bad_values)
{
	expect_error(BASE "peers = 1@127.0.0.1:99999\n", "x.conf:6: [cluster] peers:");
	expect_error("[node]\nid = zero\n", "x.conf:2: [node] id: 'zero'");
	expect_error(BASE PEERS "[log]\nlevel = loud\n", "x.conf:10: [log] level:");
	expect_error(BASE PEERS "[control]\nsocket_mode = 0999\n",
	             "[control] socket_mode");
	expect_error(BASE PEERS "[raft]\nheartbeat_ticks = 40\n",
	             "x.conf:10: [raft] heartbeat_ticks: must be smaller");
	expect_error(BASE "peers = 1@nohost.invalid:5\n", "cannot resolve host");
}

Test(config, missing_required_and_duplicates)
{
	expect_error("[node]\nid = 1\n", "[node] data_dir: required key is missing");
	expect_error(BASE "[tls]\nmode = insecure\n",
	             "[cluster] peers: required key is missing");
	expect_error(BASE PEERS "[node]\nid = 1\n",
	             "x.conf:10: [node] id: set twice (first on line 2)");
	expect_error(BASE "peers = 2@127.0.0.1:1\n[tls]\nmode = insecure\n",
	             "this node's id 1 is not listed");
}

Test(config, mutual_tls_needs_readable_files)
{
	expect_error(BASE "peers = 1@127.0.0.1:1\n[tls]\nca = /nonexistent/ca.pem\n"
	                  "cert = /nonexistent/c.pem\nkey = /nonexistent/k.pem\n",
	             "x.conf:8: [tls] ca: cannot read '/nonexistent/ca.pem'");
}

Test(config, missing_file)
{
	struct rd_config c;
	char msg[RD_ERRMSG_SIZE];
	cr_assert_eq(rd_config_load(&c, "/nonexistent/raftd.conf", msg), RD_EIO);
	cr_assert(strstr(msg, "/nonexistent/raftd.conf") != NULL);
}

/* [sessions] (raftd.conf(5)): defaults, values, refusals naming the key. */
Test(config, sessions_section)
{
	struct rd_config c;
	load_ok(&c, "n2.conf", good);
	cr_assert_eq(c.session_max, 10000);
	cr_assert_eq(c.session_expiry, 100000);
	load_ok(&c, "s.conf",
	        BASE PEERS "[sessions]\nmax_per_group = 5\nexpiry_entries = 7\n");
	cr_assert_eq(c.session_max, 5);
	cr_assert_eq(c.session_expiry, 7);
	expect_error(BASE PEERS "[sessions]\nmax_per_group = 0\n",
	             "x.conf:10: [sessions] max_per_group: '0'");
	expect_error(BASE PEERS "[sessions]\nexpiry_entries = -1\n",
	             "x.conf:10: [sessions] expiry_entries:");
}

/* [raft] flush_interval_ms: the pacing of the flushes a waiting compaction
 * asks for (storage.h rd_storage_flush_soon). */
Test(config, flush_interval_ms)
{
	struct rd_config c;
	load_ok(&c, "n2.conf", good);
	cr_assert_eq(c.flush_interval_ms, 2000);
	load_ok(&c, "f.conf", BASE PEERS "[raft]\nflush_interval_ms = 10\n");
	cr_assert_eq(c.flush_interval_ms, 10);
	expect_error(BASE PEERS "[raft]\nflush_interval_ms = 9\n",
	             "x.conf:10: [raft] flush_interval_ms: '9'");
}

Test(config, quiesce)
{
	struct rd_config c;
	load_ok(&c, "n2.conf", good);
	cr_assert(c.quiesce);
	load_ok(&c, "q.conf", BASE PEERS "[raft]\nquiesce = off\n");
	cr_assert_not(c.quiesce);
	load_ok(&c, "q.conf", BASE PEERS "[raft]\nquiesce = on\n");
	cr_assert(c.quiesce);
	expect_error(BASE PEERS "[raft]\nquiesce = sometimes\n",
	             "x.conf:10: [raft] quiesce: 'sometimes'");
}

/* A socket every local user may write to lets any of them change the
 * cluster: refused unless the operator says so in a second key. */
Test(config, world_accessible_socket_needs_explicit_key)
{
	struct rd_config c;

	expect_error(BASE PEERS "[control]\nsocket_mode = 0666\n",
	             "x.conf:10: [control] socket_mode: mode 0666 lets every local user");
	expect_error(BASE PEERS "[control]\nsocket_mode = 0662\n",
	             "[control] socket_mode");
	load_ok(&c, "x.conf",
	        BASE PEERS "[control]\nsocket_mode = 0666\n"
	                   "allow_world_access = yes\n");
	cr_assert_eq(c.socket_mode, 0666);
}

Test(config, hostile_client_limits)
{
	struct rd_config c;

	load_ok(&c, "x.conf",
	        BASE PEERS "[control]\nmax_connections = 3\n"
	                   "max_requests_in_flight = 2\n"
	                   "output_high_water_bytes = 64KiB\n"
	                   "partial_frame_timeout_ms = 50\n"
	                   "[admin]\nmax_connections = 4\n"
	                   "request_timeout_ms = 70\n");
	cr_assert_eq(c.ctl_max_conns, 3);
	cr_assert_eq(c.ctl_max_inflight, 2);
	cr_assert_eq(c.ctl_high_water, 64u << 10);
	cr_assert_eq(c.ctl_partial_timeout_ms, 50);
	cr_assert_eq(c.admin_max_conns, 4);
	cr_assert_eq(c.admin_timeout_ms, 70);
	expect_error(BASE PEERS "[control]\nmax_connections = 0\n",
	             "x.conf:10: [control] max_connections");
	expect_error(BASE PEERS "[transport]\nmax_partial_bytes = 2MiB\n",
	             "x.conf:10: [transport] max_partial_bytes: must be at least twice");
	/* Once a frame but not twice: a frame near the cap could stall
	 * behind credit not yet advertised (lib/transport/conn.c). */
	expect_error(BASE PEERS "[transport]\nmax_frame_bytes = 1MiB\n"
	                        "max_partial_bytes = 2MiB\n",
	             "[transport] max_partial_bytes: must be at least twice");
	load_ok(&c, "x.conf",
	        BASE PEERS "[transport]\nmax_frame_bytes = 2MiB\n"
	                   "max_partial_bytes = 4194312\n");
	cr_assert_eq(c.max_partial_bytes, 2 * ((2u << 20) + 4));
}

/* A Raft append of max_msg_bytes that no frame can carry is dropped each
 * time it is sent: the follower would never catch up. The error names the
 * key the file set. */
Test(config, frames_must_carry_a_whole_raft_append)
{
	struct rd_config c;

	expect_error(BASE PEERS "[transport]\nmax_frame_bytes = 1MiB\n",
	             "x.conf:10: [transport] max_frame_bytes: must be at least "
	             "twice [raft] max_msg_bytes");
	expect_error(BASE PEERS "[raft]\nmax_msg_bytes = 40MiB\n",
	             "x.conf:10: [raft] max_msg_bytes: must be at most half "
	             "[transport] max_frame_bytes");
	load_ok(&c, "x.conf",
	        BASE PEERS "[raft]\nmax_msg_bytes = 2KiB\n"
	                   "[transport]\nmax_frame_bytes = 4KiB\n");
	cr_assert_eq(c.max_frame_bytes, 4096);
	cr_assert_eq(c.max_msg_bytes, 2048);
}

/* The in-flight byte window holds at least one append, or is off (0). The
 * error names the key the file set. */
Test(config, inflight_bytes_hold_at_least_one_append)
{
	struct rd_config c;

	load_ok(&c, "x.conf", BASE PEERS);
	cr_assert_eq(c.max_inflight_bytes, 16u << 20);
	load_ok(&c, "x.conf", BASE PEERS "[raft]\nmax_inflight_bytes = 0\n");
	cr_assert_eq(c.max_inflight_bytes, 0);
	load_ok(&c, "x.conf", BASE PEERS "[raft]\nmax_inflight_bytes = 1MiB\n");
	cr_assert_eq(c.max_inflight_bytes, 1u << 20);
	expect_error(BASE PEERS "[raft]\nmax_inflight_bytes = 512KiB\n",
	             "x.conf:10: [raft] max_inflight_bytes: [raft] "
	             "max_inflight_bytes must be 0 or at least [raft] max_msg_bytes");
	expect_error(BASE PEERS "[raft]\nmax_msg_bytes = 32MiB\n",
	             "x.conf:10: [raft] max_msg_bytes: [raft] max_inflight_bytes "
	             "must be 0 or at least");
	expect_error(BASE PEERS "[raft]\nmax_inflight_bytes = 17GiB\n",
	             "x.conf:10: [raft] max_inflight_bytes: '17GiB' is not");
}

/* Insecure mode verifies no one: on an address others can reach it needs a
 * second, explicit key. */
Test(config, insecure_mode_off_loopback_needs_explicit_key)
{
	struct rd_config c;
	const char *remote = "[node]\nid = 1\ndata_dir = /d\n[cluster]\n"
	                     "listen = 0.0.0.0:7001\npeers = 1@127.0.0.1:7001\n"
	                     "[tls]\nmode = insecure\n";
	char text[512];

	expect_error(remote, "x.conf:8: [tls] mode: insecure mode on the non-loopback");
	snprintf(text, sizeof text, "%sallow_insecure_remote = yes\n", remote);
	load_ok(&c, "x.conf", text);
	cr_assert(c.tls_insecure_remote);
}

/* [health]: defaults that a healthy SSD and a busy shared disk both pass
 * (raftd.conf(5)); 0 turns each mechanism off; a recovery window shorter
 * than the detection window is refused, naming the key. */
Test(config, health_section)
{
	struct rd_config c;
	load_ok(&c, "n2.conf", good);
	cr_assert_eq(c.disk_slow_ms, 100);
	cr_assert_eq(c.disk_slow_window_ms, 5000);
	cr_assert_eq(c.disk_recover_ms, 30000);
	cr_assert_eq(c.disk_stall_ms, 60000);
	cr_assert_eq(c.canary_interval_ms, 10000);
	load_ok(&c, "h.conf",
	        BASE PEERS "[health]\ndisk_slow_ms = 0\n"
	                   "disk_stall_ms = 0\n"
	                   "canary_interval_ms = 0\n");
	cr_assert_eq(c.disk_slow_ms, 0);
	cr_assert_eq(c.disk_stall_ms, 0);
	cr_assert_eq(c.canary_interval_ms, 0);
	expect_error(BASE PEERS "[health]\ndisk_slow_window_ms = 50\n",
	             "x.conf:10: [health] disk_slow_window_ms: '50'");
	expect_error(BASE PEERS "[health]\ndisk_slow_window_ms = 5000\n"
	                        "disk_recover_ms = 1000\n",
	             "x.conf:11: [health] disk_recover_ms: must be at least");
	expect_error(BASE PEERS "[health]\ncanary_interval_ms = x\n",
	             "x.conf:10: [health] canary_interval_ms: 'x'");
}

/* [envelopes]: payload size and in-flight caps, with file, line and key in
 * every error; an envelope must fit in one peer RPC frame. */
#define ENVELOPES                                                                        \
	"[envelopes]\nmax_payload_bytes = 64KiB\nmax_in_flight = 10\n"                   \
	"max_in_flight_per_connection = 2\n"

/* `text` loads with the limits ENVELOPES sets. */
static void expect_envelopes(const char *text)
{
	struct rd_config c;

	load_ok(&c, "x.conf", text);
	cr_assert_eq(c.env_max_payload, 64u << 10);
	cr_assert_eq(c.env_max_inflight, 10);
	cr_assert_eq(c.env_max_inflight_conn, 2);
}

Test(config, envelopes_section)
{
	struct rd_config c;

	load_ok(&c, "x.conf", BASE PEERS);
	cr_assert_eq(c.env_max_payload, 256u << 10);
	cr_assert_eq(c.env_max_inflight, 4096);
	cr_assert_eq(c.env_max_inflight_conn, 16);
	expect_envelopes(BASE PEERS ENVELOPES);
	expect_error(BASE PEERS "[envelopes]\nmax_payload_bytes = 0\n",
	             "x.conf:10: [envelopes] max_payload_bytes:");
	expect_error(BASE PEERS "[envelopes]\nmax_payload_bytes = 2MiB\n",
	             "[envelopes] max_payload_bytes: '2MiB' is not a number of bytes");
	expect_error(BASE PEERS "[envelopes]\nmax_in_flight = none\n",
	             "x.conf:10: [envelopes] max_in_flight:");
	expect_error(BASE PEERS "[envelopes]\nmax_in_flight_per_connection = 0\n",
	             "[envelopes] max_in_flight_per_connection:");
	expect_error(BASE PEERS "[raft]\nmax_msg_bytes = 100000\n"
	                        "[envelopes]\nmax_payload_bytes = 200000\n",
	             "x.conf:12: [envelopes] max_payload_bytes: must not be larger than "
	             "[raft] max_msg_bytes");
	/* Not set: the default follows a smaller [raft] max_msg_bytes. */
	load_ok(&c, "x.conf", BASE PEERS "[raft]\nmax_msg_bytes = 100000\n");
	cr_assert_eq(c.env_max_payload, 100000);
}

/* Keys are independent of their order in the file: an [admin] section after
 * [envelopes] leaves the envelope limits as the file set them. */
Test(config, admin_after_envelopes_keeps_envelope_keys)
{
	struct rd_config c;
	const char *text = BASE PEERS ENVELOPES "[admin]\nlisten = 127.0.0.1:9109\n";

	expect_envelopes(text);
	load_ok(&c, "x.conf", text);
	cr_assert(c.admin_enabled);
	cr_assert_str_eq(c.admin_listen.text, "127.0.0.1:9109");
}

/* The key table (util/config_keys.h): a number goes into a field of its
 * width, a path into an array, every row is parsed by something, and
 * every default is a value the key accepts (rd_config_defaults parses
 * them; an unparseable one aborts). */
Test(config, key_table_rows_are_well_formed)
{
	struct rd_config c;

	for (int k = 0; k < K_COUNT; k++) {
		const struct rd_config_key_spec *key = &rd_config_keys[k];
		cr_assert(key->section != NULL && key->key != NULL, "row %d", k);
		switch (key->kind) {
		case RD_CONFIG_NUM:
			cr_assert(key->size == sizeof(unsigned) || key->size == 8,
			          "[%s] %s", key->section, key->key);
			cr_assert(key->size == 8 || key->max <= UINT_MAX, "[%s] %s",
			          key->section, key->key);
			cr_assert_leq(key->min, key->max, "[%s] %s", key->section,
			              key->key);
			break;
		case RD_CONFIG_FLAG:
			cr_assert_eq(key->size, sizeof(bool), "[%s] %s", key->section,
			             key->key);
			break;
		case RD_CONFIG_PATH:
			cr_assert_gt(key->size, 1, "[%s] %s", key->section, key->key);
			break;
		case RD_CONFIG_ADDR:
			cr_assert_eq(key->size, sizeof(struct rd_addr), "[%s] %s",
			             key->section, key->key);
			break;
		case RD_CONFIG_CUSTOM:
			cr_assert_not_null(key->set, "[%s] %s", key->section, key->key);
			break;
		}
		for (int j = 0; j < k; j++)
			cr_assert(strcmp(key->section, rd_config_keys[j].section) != 0 ||
			              strcmp(key->key, rd_config_keys[j].key) != 0,
			          "[%s] %s twice", key->section, key->key);
	}
	rd_config_defaults(&c);
	cr_assert_eq(c.socket_mode, 0660);
	cr_assert_eq(c.tls_mode, RD_TLS_MUTUAL);
	cr_assert_eq(c.log_level, RD_LOG_INFO);
	cr_assert(c.admin_enabled);
	cr_assert_str_eq(c.admin_listen.text, "127.0.0.1:9101");
	cr_assert_str_eq(c.socket_path, "/run/raftd/raftd.sock");
	cr_assert_eq(c.max_partial_bytes, 0);
	cr_assert_eq(c.env_max_payload, 256u << 10);
	cr_assert(!c.has_join);
}

/* A refused number says what the key takes, its bounds written as the
 * file would write them, from the same table row that checks them. */
Test(config, refused_numbers_name_their_bounds)
{
	expect_error(BASE PEERS "[raft]\ntick_ms = 0\n",
	             "x.conf:10: [raft] tick_ms: '0' is not a number of milliseconds in "
	             "1..1000");
	expect_error(
	    BASE PEERS "[raft]\nmax_msg_bytes = 1023\n",
	    "[raft] max_msg_bytes: '1023' is not a number of bytes in 1KiB..1GiB");
	expect_error(BASE PEERS "[transport]\nmax_partial_bytes = 17GiB\n",
	             "'17GiB' is not a number of bytes in 1MiB..16GiB");
	expect_error(BASE PEERS "[cluster]\ndata_groups = 4097\n",
	             "[cluster] data_groups: '4097' is not a number in 1..4096");
	expect_error(BASE PEERS "[streams]\nretention_entries = -1\n",
	             "[streams] retention_entries: '-1' is not a number of entries");
	expect_error(BASE PEERS "[health]\ndisk_stall_ms = 3600001\n",
	             "'3600001' is not a number of milliseconds in 0..3600000 (0 turns "
	             "the guard off)");
	expect_error(
	    BASE PEERS "[transport]\ncount_lost_packets = maybe\n",
	    "x.conf:10: [transport] count_lost_packets: 'maybe' is neither 'yes' "
	    "nor 'no'");
}

/* A value too large for an unsigned field is refused, not truncated. */
Test(config, numbers_do_not_wrap_into_narrow_fields)
{
	struct rd_config c;

	expect_error(BASE PEERS "[transport]\nretry_threshold = 4294967296\n",
	             "x.conf:10: [transport] retry_threshold: '4294967296'");
	load_ok(&c, "x.conf", BASE PEERS "[transport]\nretry_threshold = 1000000\n");
	cr_assert_eq(c.retry_threshold, 1000000);
	load_ok(&c, "x.conf",
	        BASE PEERS "[raft]\nsnapshot_entries = 18446744073709551615\n");
	cr_assert_eq(c.snapshot_entries, UINT64_MAX);
}

/* [cluster] join: a list of addresses instead of peers; both, or neither,
 * is an error that names the file, the line and the key. */
Test(config, join_is_an_address_list_instead_of_peers)
{
	struct rd_config c;

	load_ok(&c, "j.conf",
	        BASE "join = 127.0.0.1:7001, 127.0.0.1:7002 ,127.0.0.1:7003\n"
	             "[tls]\nmode = insecure\n");
	cr_assert(c.has_join);
	cr_assert_eq(c.n_join, 3);
	cr_assert_eq(c.n_peers, 0);
	cr_assert_str_eq(c.join[1].text, "127.0.0.1:7002");
	cr_assert_str_eq(c.join[2].text, "127.0.0.1:7003");
	expect_error(BASE PEERS "[cluster]\njoin = 127.0.0.1:7001\n",
	             "x.conf:10: [cluster] join: 'peers' (line 6) and 'join' exclude "
	             "each other");
	expect_error(BASE "join = 127.0.0.1:99999\n", "x.conf:6: [cluster] join:");
	expect_error(BASE "join = ,\n", "x.conf:6: [cluster] join: no address listed");
	expect_error(BASE "[tls]\nmode = insecure\n",
	             "[cluster] peers: required key is missing (or [cluster] join");
}
