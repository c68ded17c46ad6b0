/*
 * Config parsing on top of inih. Debian's inih is built without line numbers
 * in the handler callback, so the file is fed through a reader that counts
 * lines; inih calls the handler right after reading the line it belongs to.
 * Inline comments start with '#' or ';' after whitespace.
 */
#include "util/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/err.h"

enum key_id {
#define KEYS(X)                                                                          \
	X(node, id)                                                                      \
	X(node, data_dir)                                                                \
	X(cluster, listen)                                                               \
	X(cluster, peers)                                                                \
	X(cluster, join)                                                                 \
	X(cluster, data_groups)                                                          \
	X(cluster, replication_factor)                                                   \
	X(raft, tick_ms)                                                                 \
	X(raft, election_ticks)                                                          \
	X(raft, heartbeat_ticks)                                                         \
	X(raft, max_inflight_msgs)                                                       \
	X(raft, max_msg_bytes)                                                           \
	X(raft, snapshot_entries)                                                        \
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

static const struct {
	const char *section;
	const char *key;
} key_names[K_COUNT] = {
#define X(s, k) [K_##s##_##k] = {#s, #k},
    KEYS(X)
#undef X
};

struct parse {
	struct rd_config *c;
	const char *name;
	FILE *fp;
	const char *str; /* string input, when fp is NULL */
	int line;
	int lines[K_COUNT]; /* where each key was set, 0 = not set */
	int err;
	char *msg;
};

static char *reader(char *buf, int size, void *stream)
{
	struct parse *p = stream;
	char *r;

	if (p->fp != NULL) {
		r = fgets(buf, size, p->fp);
	} else {
		size_t n = 0;
		if (*p->str == '\0')
			return NULL;
		while (p->str[n] != '\0' && p->str[n] != '\n' && n + 2 < (size_t)size)
			n++;
		if (p->str[n] == '\n')
			n++;
		memcpy(buf, p->str, n);
		buf[n] = '\0';
		p->str += n;
		r = buf;
	}
	if (r != NULL)
		p->line++;
	return r;
}

static int fail(struct parse *p, int k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record an error about key `k` at the line where it was set; returns 0 so
 * that the inih handler stops. */
static int fail(struct parse *p, int k, const char *fmt, ...)
{
	char what[RD_ERRMSG_SIZE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	p->err = rd_errorf(p->msg, RD_ECONFIG, "%s:%d: [%s] %s: %s", p->name,
	                   p->lines[k] ? p->lines[k] : p->line, key_names[k].section,
	                   key_names[k].key, what);
	return 0;
}

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

static int set_addr(struct parse *p, int k, struct rd_addr *a, const char *v)
{
	char m[RD_ERRMSG_SIZE];
	if (rd_addr_parse(a, v, m) != 0)
		return fail(p, k, "%s", m);
	return 1;
}

static int set_path(struct parse *p, int k, char *dst, size_t size, const char *v)
{
	if (*v == '\0')
		return fail(p, k, "%s", "must not be empty");
	if (strlen(v) >= size)
		return fail(p, k, "%s", "path too long");
	memcpy(dst, v, strlen(v) + 1);
	return 1;
}

/* "1@127.0.0.1:7001, 2@127.0.0.1:7002" */
static int set_peers(struct parse *p, const char *v)
{
	struct rd_config *c = p->c;
	char buf[4096], *save = NULL, *tok;
	const int k = K_cluster_peers;

	if (strlen(v) >= sizeof buf)
		return fail(p, k, "%s", "value too long");
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
			return fail(p, k, "'%s' is not ID@HOST:PORT", tok);
		*at = '\0';
		if (!parse_u64(tok, 1, UINT64_MAX, &id))
			return fail(p, k, "peer id '%s' is not a positive integer", tok);
		if (rd_config_peer(c, id) != NULL)
			return fail(p, k, "peer id %s appears twice", tok);
		if (c->n_peers == RD_CONFIG_MAX_PEERS)
			return fail(p, k, "%s", "too many peers");
		peer = &c->peers[c->n_peers];
		peer->id = id;
		if (!set_addr(p, k, &peer->addr, at + 1))
			return 0;
		c->n_peers++;
	}
	if (c->n_peers == 0)
		return fail(p, k, "%s", "no peers listed");
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

static int set_value(struct parse *p, int k, const char *v)
{
	struct rd_config *c = p->c;
	uint64_t u;

	switch ((enum key_id)k) {
	case K_node_id:
		if (!parse_u64(v, 1, UINT64_MAX, &c->node_id))
			return fail(p, k, "'%s' is not a positive integer", v);
		return 1;
	case K_node_data_dir:
		return set_path(p, k, c->data_dir, sizeof c->data_dir, v);
	case K_cluster_listen:
		return set_addr(p, k, &c->listen, v);
	case K_cluster_peers:
		return set_peers(p, v);
	case K_cluster_join:
		c->has_join = true;
		return set_addr(p, k, &c->join, v);
	case K_cluster_data_groups:
		if (!parse_uint(v, 1, 4096, &c->data_groups))
			return fail(p, k, "'%s' is not a number in 1..4096", v);
		return 1;
	case K_cluster_replication_factor:
		if (!parse_uint(v, 1, 7, &c->replication_factor))
			return fail(p, k, "'%s' is not a number in 1..7", v);
		return 1;
	case K_raft_tick_ms:
		if (!parse_uint(v, 1, 1000, &c->tick_ms))
			return fail(p, k,
			            "'%s' is not a number of milliseconds in 1..1000", v);
		return 1;
	case K_raft_election_ticks:
		if (!parse_uint(v, 2, 100000, &c->election_ticks))
			return fail(p, k, "'%s' is not a number in 2..100000", v);
		return 1;
	case K_raft_heartbeat_ticks:
		if (!parse_uint(v, 1, 100000, &c->heartbeat_ticks))
			return fail(p, k, "'%s' is not a number in 1..100000", v);
		return 1;
	case K_raft_max_inflight_msgs:
		if (!parse_uint(v, 1, 65536, &c->max_inflight_msgs))
			return fail(p, k, "'%s' is not a number in 1..65536", v);
		return 1;
	case K_raft_max_msg_bytes:
		if (!parse_u64(v, 1024, 1ull << 30, &c->max_msg_bytes))
			return fail(p, k, "'%s' is not a size in 1KiB..1GiB", v);
		return 1;
	case K_raft_snapshot_entries:
		if (!parse_u64(v, 1, UINT64_MAX, &c->snapshot_entries))
			return fail(p, k, "'%s' is not a positive integer", v);
		return 1;
	case K_sessions_max_per_group:
		if (!parse_u64(v, 1, UINT64_MAX, &c->session_max))
			return fail(p, k, "'%s' is not a positive integer", v);
		return 1;
	case K_sessions_expiry_entries:
		if (!parse_u64(v, 1, UINT64_MAX, &c->session_expiry))
			return fail(p, k, "'%s' is not a positive integer", v);
		return 1;
	case K_streams_retention_entries:
		if (!parse_u64(v, 0, UINT64_MAX, &c->journal_entries))
			return fail(p, k, "'%s' is not a number of entries", v);
		return 1;
	case K_streams_retention_bytes:
		if (!parse_u64(v, 0, UINT64_MAX, &c->journal_bytes))
			return fail(p, k, "'%s' is not a number of bytes", v);
		return 1;
	case K_streams_max_credit:
		if (!parse_uint(v, 1, 1000000, &c->stream_max_credit))
			return fail(p, k, "'%s' is not a number in 1..1000000", v);
		return 1;
	case K_streams_stall_timeout_ms:
		if (!parse_uint(v, 10, 3600000, &c->stream_stall_ms))
			return fail(p, k,
			            "'%s' is not a number of milliseconds in 10..3600000",
			            v);
		return 1;
	case K_transport_max_frame_bytes:
		if (!parse_u64(v, 4096, 1ull << 30, &c->max_frame_bytes))
			return fail(p, k, "'%s' is not a size in 4KiB..1GiB", v);
		return 1;
	case K_transport_idle_timeout_ms:
		if (!parse_uint(v, 100, 3600000, &c->idle_timeout_ms))
			return fail(
			    p, k, "'%s' is not a number of milliseconds in 100..3600000",
			    v);
		return 1;
	case K_transport_keepalive_ms:
		if (!parse_uint(v, 10, 3600000, &c->keepalive_ms))
			return fail(p, k,
			            "'%s' is not a number of milliseconds in 10..3600000",
			            v);
		return 1;
	case K_transport_handshake_timeout_ms:
		if (!parse_uint(v, 100, 600000, &c->handshake_timeout_ms))
			return fail(p, k,
			            "'%s' is not a number of milliseconds in 100..600000",
			            v);
		return 1;
	case K_tls_mode:
		if (strcmp(v, "mutual") == 0)
			c->tls_mode = RD_TLS_MUTUAL;
		else if (strcmp(v, "insecure") == 0)
			c->tls_mode = RD_TLS_INSECURE;
		else
			return fail(p, k, "'%s' is neither 'mutual' nor 'insecure'", v);
		return 1;
	case K_tls_ca:
		return set_path(p, k, c->tls_ca, sizeof c->tls_ca, v);
	case K_tls_cert:
		return set_path(p, k, c->tls_cert, sizeof c->tls_cert, v);
	case K_tls_key:
		return set_path(p, k, c->tls_key, sizeof c->tls_key, v);
	case K_tls_allow_insecure_remote:
		if (!parse_bool(v, &c->tls_insecure_remote))
			return fail(p, k, "'%s' is neither 'yes' nor 'no'", v);
		return 1;
	case K_control_socket:
		return set_path(p, k, c->socket_path, sizeof c->socket_path, v);
	case K_control_socket_mode: {
		char *end;
		errno = 0;
		u = strtoull(v, &end, 8);
		if (*v == '\0' || *end != '\0' || errno != 0 || u > 0777)
			return fail(p, k, "'%s' is not an octal mode such as 0660", v);
		c->socket_mode = (mode_t)u;
		return 1;
	}
	case K_control_request_timeout_ms:
		if (!parse_uint(v, 1, 3600000, &c->request_timeout_ms))
			return fail(p, k,
			            "'%s' is not a number of milliseconds in 1..3600000",
			            v);
		return 1;
	case K_control_allow_world_access:
		if (!parse_bool(v, &c->socket_world))
			return fail(p, k, "'%s' is neither 'yes' nor 'no'", v);
		return 1;
	case K_control_max_connections:
		if (!parse_uint(v, 1, 65536, &c->ctl_max_conns))
			return fail(p, k, "'%s' is not a number in 1..65536", v);
		return 1;
	case K_control_max_requests_in_flight:
		if (!parse_uint(v, 1, 65536, &c->ctl_max_inflight))
			return fail(p, k, "'%s' is not a number in 1..65536", v);
		return 1;
	case K_control_output_high_water_bytes:
		if (!parse_u64(v, 4096, 1ull << 30, &c->ctl_high_water))
			return fail(p, k, "'%s' is not a number of bytes in 4096..2^30",
			            v);
		return 1;
	case K_control_partial_frame_timeout_ms:
		if (!parse_uint(v, 1, 3600000, &c->ctl_partial_timeout_ms))
			return fail(p, k,
			            "'%s' is not a number of milliseconds in 1..3600000",
			            v);
		return 1;
	case K_envelopes_max_payload_bytes:
		if (!parse_u64(v, 1, RD_CONFIG_ENV_PAYLOAD_MAX, &c->env_max_payload))
			return fail(p, k, "'%s' is not a number of bytes in 1..%u", v,
			            RD_CONFIG_ENV_PAYLOAD_MAX);
		return 1;
	case K_envelopes_max_in_flight:
		if (!parse_uint(v, 1, 1000000, &c->env_max_inflight))
			return fail(p, k, "'%s' is not a number in 1..1000000", v);
		return 1;
	case K_envelopes_max_in_flight_per_connection:
		if (!parse_uint(v, 1, 65536, &c->env_max_inflight_conn))
			return fail(p, k, "'%s' is not a number in 1..65536", v);
		return 1;
	case K_admin_max_connections:
		if (!parse_uint(v, 1, 65536, &c->admin_max_conns))
			return fail(p, k, "'%s' is not a number in 1..65536", v);
		return 1;
	case K_admin_request_timeout_ms:
		if (!parse_uint(v, 1, 3600000, &c->admin_timeout_ms))
			return fail(p, k,
			            "'%s' is not a number of milliseconds in 1..3600000",
			            v);
		return 1;
	case K_transport_max_half_open:
		if (!parse_uint(v, 1, 1000000, &c->max_half_open))
			return fail(p, k, "'%s' is not a number in 1..1000000", v);
		return 1;
	case K_transport_max_half_open_per_source:
		if (!parse_uint(v, 1, 1000000, &c->max_half_open_per_source))
			return fail(p, k, "'%s' is not a number in 1..1000000", v);
		return 1;
	case K_transport_retry_threshold:
		if (!parse_uint(v, 0, 1000000, &c->retry_threshold))
			return fail(p, k, "'%s' is not a number in 0..1000000", v);
		return 1;
	case K_transport_count_lost_packets:
		if (!parse_bool(v, &c->count_lost_packets))
			return fail(p, k, "'%s' is neither 'yes' nor 'no'", v);
		return 1;
	case K_transport_max_partial_bytes:
		if (!parse_u64(v, 1u << 20, 1ull << 34, &c->max_partial_bytes))
			return fail(p, k, "'%s' is not a number of bytes in 2^20..2^34",
			            v);
		return 1;
	case K_health_disk_slow_ms:
		if (!parse_uint(v, 0, 3600000, &c->disk_slow_ms))
			return fail(p, k,
			            "'%s' is not a number of milliseconds in 0..3600000 "
			            "(0 turns evacuation off)",
			            v);
		return 1;
	case K_health_disk_slow_window_ms:
		if (!parse_uint(v, 100, 3600000, &c->disk_slow_window_ms))
			return fail(
			    p, k, "'%s' is not a number of milliseconds in 100..3600000",
			    v);
		return 1;
	case K_health_disk_recover_ms:
		if (!parse_uint(v, 100, 3600000, &c->disk_recover_ms))
			return fail(
			    p, k, "'%s' is not a number of milliseconds in 100..3600000",
			    v);
		return 1;
	case K_health_disk_stall_ms:
		if (!parse_uint(v, 0, 3600000, &c->disk_stall_ms))
			return fail(p, k,
			            "'%s' is not a number of milliseconds in 0..3600000 "
			            "(0 turns the guard off)",
			            v);
		return 1;
	case K_health_canary_interval_ms:
		if (!parse_uint(v, 0, 3600000, &c->canary_interval_ms))
			return fail(p, k,
			            "'%s' is not a number of milliseconds in 0..3600000 "
			            "(0 turns the canary off)",
			            v);
		return 1;
	case K_admin_listen:
		if (strcmp(v, "off") == 0) {
			c->admin_enabled = false;
			return 1;
		}
		c->env_max_payload = 256u << 10;
		c->env_max_inflight = 4096;
		c->env_max_inflight_conn = 16;
		c->admin_enabled = true;
		return set_addr(p, k, &c->admin_listen, v);
	case K_log_level:
		if (!rd_log_parse_level(v, &c->log_level))
			return fail(
			    p, k,
			    "'%s' is not one of error, warning, notice, info, debug", v);
		return 1;
	case K_COUNT:
		break;
	}
	return 0;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse *p = user;
	char v[4096];
	size_t n;
	int k;

	if (p->err != 0)
		return 0;
	/* Strip an inline '#' comment and surrounding blanks. */
	snprintf(v, sizeof v, "%s", value);
	for (char *h = strchr(v, '#'); h != NULL; h = strchr(h + 1, '#')) {
		if (h == v || isspace((unsigned char)h[-1])) {
			*h = '\0';
			break;
		}
	}
	n = strlen(v);
	while (n > 0 && isspace((unsigned char)v[n - 1]))
		v[--n] = '\0';

	for (k = 0; k < K_COUNT; k++)
		if (strcmp(section, key_names[k].section) == 0 &&
		    strcmp(name, key_names[k].key) == 0)
			break;
	if (k == K_COUNT) {
		bool known_section = false;
		for (int i = 0; i < K_COUNT; i++)
			known_section |= strcmp(section, key_names[i].section) == 0;
		if (!known_section)
			p->err =
			    rd_errorf(p->msg, RD_ECONFIG, "%s:%d: unknown section [%s]",
			              p->name, p->line, section);
		else
			p->err =
			    rd_errorf(p->msg, RD_ECONFIG, "%s:%d: [%s] %s: unknown key",
			              p->name, p->line, section, name);
		return 0;
	}
	if (p->lines[k] != 0) {
		char first[32];
		snprintf(first, sizeof first, "%d", p->lines[k]);
		p->lines[k] = p->line;
		return fail(p, k, "set twice (first on line %s)", first);
	}
	p->lines[k] = p->line;
	return set_value(p, k, v);
}

void rd_config_defaults(struct rd_config *c)
{
	memset(c, 0, sizeof *c);
	c->data_groups = 16;
	c->replication_factor = 3;
	c->tick_ms = 10;
	c->election_ticks = 30;
	c->heartbeat_ticks = 3;
	c->max_inflight_msgs = 256;
	c->max_msg_bytes = 1u << 20;
	c->snapshot_entries = 10000;
	c->session_max = 10000;
	c->session_expiry = 100000;
	c->journal_entries = 100000;
	c->journal_bytes = 64u << 20;
	c->stream_max_credit = 4096;
	c->stream_stall_ms = 10000;
	c->max_frame_bytes = 64u << 20;
	c->idle_timeout_ms = 30000;
	c->keepalive_ms = 1000;
	c->handshake_timeout_ms = 5000;
	c->max_half_open = 256;
	c->max_half_open_per_source = 8;
	c->retry_threshold = 16;
	c->tls_mode = RD_TLS_MUTUAL;
	snprintf(c->socket_path, sizeof c->socket_path, "/run/raftd/raftd.sock");
	c->socket_mode = 0660;
	c->request_timeout_ms = 5000;
	c->ctl_max_conns = 64;
	c->ctl_max_inflight = 64;
	c->ctl_high_water = 4u << 20;
	c->ctl_partial_timeout_ms = 10000;
	c->disk_slow_ms = 100;
	c->disk_slow_window_ms = 5000;
	c->disk_recover_ms = 30000;
	c->disk_stall_ms = 60000;
	c->canary_interval_ms = 10000;
	c->env_max_payload = 256u << 10;
	c->env_max_inflight = 4096;
	c->env_max_inflight_conn = 16;
	c->admin_enabled = true;
	c->admin_max_conns = 16;
	c->admin_timeout_ms = 5000;
	rd_addr_parse(&c->admin_listen, "127.0.0.1:9101", NULL);
	c->log_level = RD_LOG_INFO;
}

static int require(struct parse *p, int k)
{
	if (p->lines[k] != 0)
		return 1;
	p->err = rd_errorf(p->msg, RD_ECONFIG, "%s: [%s] %s: required key is missing",
	                   p->name, key_names[k].section, key_names[k].key);
	return 0;
}

static int check_file(struct parse *p, int k, const char *path)
{
	if (access(path, R_OK) == 0)
		return 1;
	p->err = rd_errorf(p->msg, RD_ECONFIG, "%s:%d: [%s] %s: cannot read '%s': %s",
	                   p->name, p->lines[k], key_names[k].section, key_names[k].key,
	                   path, strerror(errno));
	return 0;
}

static bool addr_is_loopback(const struct rd_addr *a)
{
	if (a->sa.ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)(const void *)&a->sa)
		                  ->sin_addr.s_addr) >>
		        24) == 127;
	if (a->sa.ss_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(
		    &((const struct sockaddr_in6 *)(const void *)&a->sa)->sin6_addr);
	return false;
}

static int validate(struct parse *p)
{
	struct rd_config *c = p->c;

	if (!require(p, K_node_id) || !require(p, K_node_data_dir) ||
	    !require(p, K_cluster_listen))
		return 0;
	if (p->lines[K_cluster_peers] == 0 && !c->has_join)
		return require(p, K_cluster_peers);
	if (p->lines[K_cluster_peers] != 0 && c->has_join) {
		p->err = rd_errorf(p->msg, RD_ECONFIG,
		                   "%s:%d: [cluster] join: 'peers' (line %d) and 'join' "
		                   "exclude each other",
		                   p->name, p->lines[K_cluster_join],
		                   p->lines[K_cluster_peers]);
		return 0;
	}
	if (c->n_peers > 0 && rd_config_peer(c, c->node_id) == NULL) {
		char id[32];
		snprintf(id, sizeof id, "%llu", (unsigned long long)c->node_id);
		return fail(p, K_cluster_peers, "this node's id %s is not listed", id);
	}
	if (c->heartbeat_ticks >= c->election_ticks)
		return fail(p, K_raft_heartbeat_ticks, "%s",
		            "must be smaller than [raft] election_ticks");
	if (c->disk_slow_ms != 0 && c->disk_recover_ms < c->disk_slow_window_ms)
		return fail(p, K_health_disk_recover_ms, "%s",
		            "must be at least [health] disk_slow_window_ms");
	if (c->keepalive_ms >= c->idle_timeout_ms)
		return fail(p, K_transport_keepalive_ms, "%s",
		            "must be smaller than [transport] idle_timeout_ms");
	/* Without verification anyone who can reach the port is a peer. */
	if (c->tls_mode == RD_TLS_INSECURE && !addr_is_loopback(&c->listen) &&
	    !c->tls_insecure_remote)
		return fail(p, K_tls_mode,
		            "insecure mode on the non-loopback address %s; set [tls] "
		            "allow_insecure_remote = yes to mean it",
		            c->listen.text);
	/* A frame must fit in the window that holds it until it is whole. */
	if (c->max_partial_bytes != 0 && c->max_partial_bytes < c->max_frame_bytes + 4)
		return fail(p, K_transport_max_partial_bytes, "%s",
		            "must be larger than [transport] max_frame_bytes");
	/* An envelope travels between nodes in one RPC frame, whose cap
	 * comes from [raft] max_msg_bytes. */
	if (c->env_max_payload > c->max_msg_bytes &&
	    p->lines[K_envelopes_max_payload_bytes] == 0)
		c->env_max_payload = c->max_msg_bytes;
	if (c->env_max_payload > c->max_msg_bytes)
		return fail(p, K_envelopes_max_payload_bytes, "%s",
		            "must not be larger than [raft] max_msg_bytes");
	/* Anyone on the host could then write to the cluster. */
	if ((c->socket_mode & 0007) != 0 && !c->socket_world)
		return fail(p, K_control_socket_mode,
		            "mode %04o lets every local user in; set [control] "
		            "allow_world_access = yes to mean it",
		            (unsigned)c->socket_mode);
	if (c->tls_mode == RD_TLS_MUTUAL) {
		if (!require(p, K_tls_ca) || !require(p, K_tls_cert) ||
		    !require(p, K_tls_key))
			return 0;
		if (!check_file(p, K_tls_ca, c->tls_ca) ||
		    !check_file(p, K_tls_cert, c->tls_cert) ||
		    !check_file(p, K_tls_key, c->tls_key))
			return 0;
	}
	return 1;
}

static int load(struct rd_config *c, struct parse *p)
{
	int rv;

	rd_config_defaults(c);
	snprintf(c->path, sizeof c->path, "%s", p->name);
	rv = ini_parse_stream(reader, p, handler, p);
	if (p->err != 0)
		return p->err;
	if (rv != 0)
		return rd_errorf(p->msg, RD_ECONFIG, "%s:%d: syntax error", p->name, rv);
	if (!validate(p))
		return p->err;
	return 0;
}

int rd_config_load(struct rd_config *c, const char *path, char *msg)
{
	struct parse p = {.c = c, .name = path, .msg = msg};
	int rv;

	p.fp = fopen(path, "r");
	if (p.fp == NULL)
		return rd_errorf(msg, RD_EIO, "%s: cannot open: %s", path,
		                 strerror(errno));
	rv = load(c, &p);
	fclose(p.fp);
	return rv;
}

int rd_config_load_string(struct rd_config *c, const char *name, const char *text,
                          char *msg)
{
	struct parse p = {.c = c, .name = name, .str = text, .msg = msg};
	return load(c, &p);
}

const struct rd_config_peer *rd_config_peer(const struct rd_config *c, uint64_t id)
{
	for (unsigned i = 0; i < c->n_peers; i++)
		if (c->peers[i].id == id)
			return &c->peers[i];
	return NULL;
}
