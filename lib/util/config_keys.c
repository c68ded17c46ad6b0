/*
 * The config file's key table and one value parser per key: range checks,
 * addresses, paths, the peer list. Each error names the key; config.c adds
 * file and line (rd_config_fail) and checks what spans several keys.
 */
#include "util/config_keys.h"

#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

const struct rd_config_key_name rd_config_keys[K_COUNT] = {
#define X(s, k) [K_##s##_##k] = {#s, #k},
    KEYS(X)
#undef X
};

static bool parse_u64(const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long x;

	if (!isdigit((unsigned char)*v))
		return false;
	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno != 0)
		return false;
	/* Optional binary size suffix for byte counts. */
	if (strcmp(end, "KiB") == 0)
		x <<= 10, end += 3;
	else if (strcmp(end, "MiB") == 0)
		x <<= 20, end += 3;
	else if (strcmp(end, "GiB") == 0)
		x <<= 30, end += 3;
	if (*end != '\0' || x < min || x > max)
		return false;
	*out = x;
	return true;
}

static bool parse_uint(const char *v, unsigned min, unsigned max, unsigned *out)
{
	uint64_t x;
	if (!parse_u64(v, min, max, &x))
		return false;
	*out = (unsigned)x;
	return true;
}

int rd_addr_parse(struct rd_addr *out, const char *text, char *msg)
{
	char host[RD_CONFIG_ADDR_LEN];
	const char *port;
	struct addrinfo hints, *res;
	uint64_t pnum;
	size_t hlen;
	int rv;

	if (strlen(text) >= sizeof out->text)
		return rd_errorf(msg, RD_EINVAL, "address too long");
	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		if (close == NULL || close[1] != ':')
			return rd_errorf(msg, RD_EINVAL, "'%s' is not [ipv6]:port", text);
		hlen = (size_t)(close - text - 1);
		memcpy(host, text + 1, hlen);
		port = close + 2;
	} else {
		port = strrchr(text, ':');
		if (port == NULL)
			return rd_errorf(msg, RD_EINVAL, "'%s' has no :port", text);
		hlen = (size_t)(port - text);
		memcpy(host, text, hlen);
		port++;
	}
	host[hlen] = '\0';
	if (hlen == 0)
		return rd_errorf(msg, RD_EINVAL, "'%s' has no host", text);
	if (!parse_u64(port, 1, 65535, &pnum))
		return rd_errorf(msg, RD_EINVAL, "'%s': port must be 1..65535", text);
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_flags = AI_NUMERICSERV;
	rv = getaddrinfo(host, port, &hints, &res);
	if (rv != 0)
		return rd_errorf(msg, RD_EINVAL, "'%s': cannot resolve host '%s': %s",
		                 text, host, gai_strerror(rv));
	memcpy(&out->sa, res->ai_addr, res->ai_addrlen);
	out->salen = res->ai_addrlen;
	freeaddrinfo(res);
	snprintf(out->text, sizeof out->text, "%s", text);
	return 0;
}

static int set_addr(struct rd_config_parse *p, int k, struct rd_addr *a, const char *v)
{
	char m[RD_ERRMSG_SIZE];
	if (rd_addr_parse(a, v, m) != 0)
		return rd_config_fail(p, k, "%s", m);
	return 1;
}

static int set_path(struct rd_config_parse *p, int k, char *dst, size_t size,
                    const char *v)
{
	if (*v == '\0')
		return rd_config_fail(p, k, "%s", "must not be empty");
	if (strlen(v) >= size)
		return rd_config_fail(p, k, "%s", "path too long");
	memcpy(dst, v, strlen(v) + 1);
	return 1;
}

/* "1@127.0.0.1:7001, 2@127.0.0.1:7002" */
static int set_peers(struct rd_config_parse *p, const char *v)
{
	struct rd_config *c = p->c;
	char buf[4096], *save = NULL, *tok;
	const int k = K_cluster_peers;

	if (strlen(v) >= sizeof buf)
		return rd_config_fail(p, k, "%s", "value too long");
	strcpy(buf, v);
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		char *at, *end;
		uint64_t id;
		struct rd_config_peer *peer;

		while (isspace((unsigned char)*tok))
			tok++;
		end = tok + strlen(tok);
		while (end > tok && isspace((unsigned char)end[-1]))
			*--end = '\0';
		at = strchr(tok, '@');
		if (at == NULL)
			return rd_config_fail(p, k, "'%s' is not ID@HOST:PORT", tok);
		*at = '\0';
		if (!parse_u64(tok, 1, UINT64_MAX, &id))
			return rd_config_fail(
			    p, k, "peer id '%s' is not a positive integer", tok);
		if (rd_config_peer(c, id) != NULL)
			return rd_config_fail(p, k, "peer id %s appears twice", tok);
		if (c->n_peers == RD_CONFIG_MAX_PEERS)
			return rd_config_fail(p, k, "%s", "too many peers");
		peer = &c->peers[c->n_peers];
		peer->id = id;
		if (!set_addr(p, k, &peer->addr, at + 1))
			return 0;
		c->n_peers++;
	}
	if (c->n_peers == 0)
		return rd_config_fail(p, k, "%s", "no peers listed");
	return 1;
}

/* "127.0.0.1:7001, 127.0.0.1:7002" */
static int set_join(struct rd_config_parse *p, const char *v)
{
	struct rd_config *c = p->c;
	char buf[4096], *save = NULL, *tok;
	const int k = K_cluster_join;

	if (strlen(v) >= sizeof buf)
		return rd_config_fail(p, k, "%s", "value too long");
	strcpy(buf, v);
	c->n_join = 0;
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		char *end;

		while (isspace((unsigned char)*tok))
			tok++;
		end = tok + strlen(tok);
		while (end > tok && isspace((unsigned char)end[-1]))
			*--end = '\0';
		if (c->n_join == RD_CONFIG_MAX_JOIN)
			return rd_config_fail(p, k, "more than %d addresses",
			                      RD_CONFIG_MAX_JOIN);
		if (!set_addr(p, k, &c->join[c->n_join], tok))
			return 0;
		c->n_join++;
	}
	if (c->n_join == 0)
		return rd_config_fail(p, k, "%s", "no address listed");
	return 1;
}

static bool parse_bool(const char *v, bool *out)
{
	if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
		*out = true;
	else if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
		*out = false;
	else
		return false;
	return true;
}

int rd_config_set(struct rd_config_parse *p, int k, const char *v)
{
	struct rd_config *c = p->c;
	uint64_t u;

	switch ((enum rd_config_key)k) {
	case K_node_id:
		if (!parse_u64(v, 1, UINT64_MAX, &c->node_id))
			return rd_config_fail(p, k, "'%s' is not a positive integer", v);
		return 1;
	case K_node_data_dir:
		return set_path(p, k, c->data_dir, sizeof c->data_dir, v);
	case K_cluster_listen:
		return set_addr(p, k, &c->listen, v);
	case K_cluster_peers:
		return set_peers(p, v);
	case K_cluster_join:
		c->has_join = true;
		return set_join(p, v);
	case K_cluster_data_groups:
		if (!parse_uint(v, 1, 4096, &c->data_groups))
			return rd_config_fail(p, k, "'%s' is not a number in 1..4096", v);
		return 1;
	case K_cluster_replication_factor:
		if (!parse_uint(v, 1, 7, &c->replication_factor))
			return rd_config_fail(p, k, "'%s' is not a number in 1..7", v);
		return 1;
	case K_cluster_promote_max_lag:
		if (!parse_u64(v, 0, UINT64_MAX, &c->promote_max_lag))
			return rd_config_fail(p, k, "'%s' is not a number of entries", v);
		return 1;
	case K_raft_tick_ms:
		if (!parse_uint(v, 1, 1000, &c->tick_ms))
			return rd_config_fail(
			    p, k, "'%s' is not a number of milliseconds in 1..1000", v);
		return 1;
	case K_raft_election_ticks:
		if (!parse_uint(v, 2, 100000, &c->election_ticks))
			return rd_config_fail(p, k, "'%s' is not a number in 2..100000",
			                      v);
		return 1;
	case K_raft_heartbeat_ticks:
		if (!parse_uint(v, 1, 100000, &c->heartbeat_ticks))
			return rd_config_fail(p, k, "'%s' is not a number in 1..100000",
			                      v);
		return 1;
	case K_raft_max_inflight_msgs:
		if (!parse_uint(v, 1, 65536, &c->max_inflight_msgs))
			return rd_config_fail(p, k, "'%s' is not a number in 1..65536",
			                      v);
		return 1;
	case K_raft_max_msg_bytes:
		if (!parse_u64(v, 1024, 1ull << 30, &c->max_msg_bytes))
			return rd_config_fail(p, k, "'%s' is not a size in 1KiB..1GiB",
			                      v);
		return 1;
	case K_raft_snapshot_entries:
		if (!parse_u64(v, 1, UINT64_MAX, &c->snapshot_entries))
			return rd_config_fail(p, k, "'%s' is not a positive integer", v);
		return 1;
	case K_raft_flush_interval_ms:
		if (!parse_uint(v, 10, 600000, &c->flush_interval_ms))
			return rd_config_fail(p, k, "'%s' is not a number in 10..600000",
			                      v);
		return 1;
	case K_sessions_max_per_group:
		if (!parse_u64(v, 1, UINT64_MAX, &c->session_max))
			return rd_config_fail(p, k, "'%s' is not a positive integer", v);
		return 1;
	case K_sessions_expiry_entries:
		if (!parse_u64(v, 1, UINT64_MAX, &c->session_expiry))
			return rd_config_fail(p, k, "'%s' is not a positive integer", v);
		return 1;
	case K_streams_retention_entries:
		if (!parse_u64(v, 0, UINT64_MAX, &c->journal_entries))
			return rd_config_fail(p, k, "'%s' is not a number of entries", v);
		return 1;
	case K_streams_retention_bytes:
		if (!parse_u64(v, 0, UINT64_MAX, &c->journal_bytes))
			return rd_config_fail(p, k, "'%s' is not a number of bytes", v);
		return 1;
	case K_streams_max_credit:
		if (!parse_uint(v, 1, 1000000, &c->stream_max_credit))
			return rd_config_fail(p, k, "'%s' is not a number in 1..1000000",
			                      v);
		return 1;
	case K_streams_stall_timeout_ms:
		if (!parse_uint(v, 10, 3600000, &c->stream_stall_ms))
			return rd_config_fail(
			    p, k, "'%s' is not a number of milliseconds in 10..3600000",
			    v);
		return 1;
	case K_transport_max_frame_bytes:
		if (!parse_u64(v, 4096, 1ull << 30, &c->max_frame_bytes))
			return rd_config_fail(p, k, "'%s' is not a size in 4KiB..1GiB",
			                      v);
		return 1;
	case K_transport_idle_timeout_ms:
		if (!parse_uint(v, 100, 3600000, &c->idle_timeout_ms))
			return rd_config_fail(
			    p, k, "'%s' is not a number of milliseconds in 100..3600000",
			    v);
		return 1;
	case K_transport_keepalive_ms:
		if (!parse_uint(v, 10, 3600000, &c->keepalive_ms))
			return rd_config_fail(
			    p, k, "'%s' is not a number of milliseconds in 10..3600000",
			    v);
		return 1;
	case K_transport_handshake_timeout_ms:
		if (!parse_uint(v, 100, 600000, &c->handshake_timeout_ms))
			return rd_config_fail(
			    p, k, "'%s' is not a number of milliseconds in 100..600000",
			    v);
		return 1;
	case K_tls_mode:
		if (strcmp(v, "mutual") == 0)
			c->tls_mode = RD_TLS_MUTUAL;
		else if (strcmp(v, "insecure") == 0)
			c->tls_mode = RD_TLS_INSECURE;
		else
			return rd_config_fail(
			    p, k, "'%s' is neither 'mutual' nor 'insecure'", v);
		return 1;
	case K_tls_ca:
		return set_path(p, k, c->tls_ca, sizeof c->tls_ca, v);
	case K_tls_cert:
		return set_path(p, k, c->tls_cert, sizeof c->tls_cert, v);
	case K_tls_key:
		return set_path(p, k, c->tls_key, sizeof c->tls_key, v);
	case K_tls_allow_insecure_remote:
		if (!parse_bool(v, &c->tls_insecure_remote))
			return rd_config_fail(p, k, "'%s' is neither 'yes' nor 'no'", v);
		return 1;
	case K_control_socket:
		return set_path(p, k, c->socket_path, sizeof c->socket_path, v);
	case K_control_socket_mode: {
		char *end;
		errno = 0;
		u = strtoull(v, &end, 8);
		if (*v == '\0' || *end != '\0' || errno != 0 || u > 0777)
			return rd_config_fail(
			    p, k, "'%s' is not an octal mode such as 0660", v);
		c->socket_mode = (mode_t)u;
		return 1;
	}
	case K_control_request_timeout_ms:
		if (!parse_uint(v, 1, 3600000, &c->request_timeout_ms))
			return rd_config_fail(
			    p, k, "'%s' is not a number of milliseconds in 1..3600000",
			    v);
		return 1;
	case K_control_allow_world_access:
		if (!parse_bool(v, &c->socket_world))
			return rd_config_fail(p, k, "'%s' is neither 'yes' nor 'no'", v);
		return 1;
	case K_control_max_connections:
		if (!parse_uint(v, 1, 65536, &c->ctl_max_conns))
			return rd_config_fail(p, k, "'%s' is not a number in 1..65536",
			                      v);
		return 1;
	case K_control_max_requests_in_flight:
		if (!parse_uint(v, 1, 65536, &c->ctl_max_inflight))
			return rd_config_fail(p, k, "'%s' is not a number in 1..65536",
			                      v);
		return 1;
	case K_control_output_high_water_bytes:
		if (!parse_u64(v, 4096, 1ull << 30, &c->ctl_high_water))
			return rd_config_fail(
			    p, k, "'%s' is not a number of bytes in 4096..2^30", v);
		return 1;
	case K_control_partial_frame_timeout_ms:
		if (!parse_uint(v, 1, 3600000, &c->ctl_partial_timeout_ms))
			return rd_config_fail(
			    p, k, "'%s' is not a number of milliseconds in 1..3600000",
			    v);
		return 1;
	case K_envelopes_max_payload_bytes:
		if (!parse_u64(v, 1, RD_CONFIG_ENV_PAYLOAD_MAX, &c->env_max_payload))
			return rd_config_fail(p, k,
			                      "'%s' is not a number of bytes in 1..%u", v,
			                      RD_CONFIG_ENV_PAYLOAD_MAX);
		return 1;
	case K_envelopes_max_in_flight:
		if (!parse_uint(v, 1, 1000000, &c->env_max_inflight))
			return rd_config_fail(p, k, "'%s' is not a number in 1..1000000",
			                      v);
		return 1;
	case K_envelopes_max_in_flight_per_connection:
		if (!parse_uint(v, 1, 65536, &c->env_max_inflight_conn))
			return rd_config_fail(p, k, "'%s' is not a number in 1..65536",
			                      v);
		return 1;
	case K_admin_max_connections:
		if (!parse_uint(v, 1, 65536, &c->admin_max_conns))
			return rd_config_fail(p, k, "'%s' is not a number in 1..65536",
			                      v);
		return 1;
	case K_admin_request_timeout_ms:
		if (!parse_uint(v, 1, 3600000, &c->admin_timeout_ms))
			return rd_config_fail(
			    p, k, "'%s' is not a number of milliseconds in 1..3600000",
			    v);
		return 1;
	case K_transport_max_half_open:
		if (!parse_uint(v, 1, 1000000, &c->max_half_open))
			return rd_config_fail(p, k, "'%s' is not a number in 1..1000000",
			                      v);
		return 1;
	case K_transport_max_half_open_per_source:
		if (!parse_uint(v, 1, 1000000, &c->max_half_open_per_source))
			return rd_config_fail(p, k, "'%s' is not a number in 1..1000000",
			                      v);
		return 1;
	case K_transport_retry_threshold:
		if (!parse_uint(v, 0, 1000000, &c->retry_threshold))
			return rd_config_fail(p, k, "'%s' is not a number in 0..1000000",
			                      v);
		return 1;
	case K_transport_count_lost_packets:
		if (!parse_bool(v, &c->count_lost_packets))
			return rd_config_fail(p, k, "'%s' is neither 'yes' nor 'no'", v);
		return 1;
	case K_transport_max_partial_bytes:
		if (!parse_u64(v, 1u << 20, 1ull << 34, &c->max_partial_bytes))
			return rd_config_fail(
			    p, k, "'%s' is not a number of bytes in 2^20..2^34", v);
		return 1;
	case K_health_disk_slow_ms:
		if (!parse_uint(v, 0, 3600000, &c->disk_slow_ms))
			return rd_config_fail(
			    p, k,
			    "'%s' is not a number of milliseconds in 0..3600000 "
			    "(0 turns evacuation off)",
			    v);
		return 1;
	case K_health_disk_slow_window_ms:
		if (!parse_uint(v, 100, 3600000, &c->disk_slow_window_ms))
			return rd_config_fail(
			    p, k, "'%s' is not a number of milliseconds in 100..3600000",
			    v);
		return 1;
	case K_health_disk_recover_ms:
		if (!parse_uint(v, 100, 3600000, &c->disk_recover_ms))
			return rd_config_fail(
			    p, k, "'%s' is not a number of milliseconds in 100..3600000",
			    v);
		return 1;
	case K_health_disk_stall_ms:
		if (!parse_uint(v, 0, 3600000, &c->disk_stall_ms))
			return rd_config_fail(
			    p, k,
			    "'%s' is not a number of milliseconds in 0..3600000 "
			    "(0 turns the guard off)",
			    v);
		return 1;
	case K_health_canary_interval_ms:
		if (!parse_uint(v, 0, 3600000, &c->canary_interval_ms))
			return rd_config_fail(
			    p, k,
			    "'%s' is not a number of milliseconds in 0..3600000 "
			    "(0 turns the canary off)",
			    v);
		return 1;
	case K_admin_listen:
		if (strcmp(v, "off") == 0) {
			c->admin_enabled = false;
			return 1;
		}
		c->admin_enabled = true;
		return set_addr(p, k, &c->admin_listen, v);
	case K_log_level:
		if (!rd_log_parse_level(v, &c->log_level))
			return rd_config_fail(
			    p, k,
			    "'%s' is not one of error, warning, notice, info, debug", v);
		return 1;
	case K_COUNT:
		break;
	}
	return 0;
}
