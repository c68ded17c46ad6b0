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
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/config_keys.h"
#include "util/err.h"
#include "util/fatal.h"

static char *reader(char *buf, int size, void *stream)
{
	struct rd_config_parse *p = stream;
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

/* The error's line is where `k` was set, so a cross-key check (validate)
 * points at the key it blames rather than at the end of the file. */
int rd_config_fail(struct rd_config_parse *p, int k, const char *fmt, ...)
{
	char what[RD_ERRMSG_SIZE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	p->err = rd_errorf(p->msg, RD_ECONFIG, "%s:%d: [%s] %s: %s", p->name,
	                   p->lines[k] ? p->lines[k] : p->line, rd_config_keys[k].section,
	                   rd_config_keys[k].key, what);
	return 0;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct rd_config_parse *p = user;
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
		if (strcmp(section, rd_config_keys[k].section) == 0 &&
		    strcmp(name, rd_config_keys[k].key) == 0)
			break;
	if (k == K_COUNT) {
		bool known_section = false;
		for (int i = 0; i < K_COUNT; i++)
			known_section |= strcmp(section, rd_config_keys[i].section) == 0;
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
		return rd_config_fail(p, k, "set twice (first on line %s)", first);
	}
	p->lines[k] = p->line;
	return rd_config_set(p, k, v);
}

/* Every default is the text of its KEYS row, parsed as a file's value would
 * be; one that does not parse is a bug of the table (tests/unit/
 * test_config.c loads them all). */
void rd_config_defaults(struct rd_config *c)
{
	char msg[RD_ERRMSG_SIZE];
	struct rd_config_parse p = {.c = c, .name = "default", .msg = msg};

	memset(c, 0, sizeof *c);
	for (int k = 0; k < K_COUNT; k++)
		if (rd_config_keys[k].def != NULL &&
		    !rd_config_set(&p, k, rd_config_keys[k].def))
			rd_fatal("%s", msg);
}

static int require(struct rd_config_parse *p, int k)
{
	if (p->lines[k] != 0)
		return 1;
	p->err = rd_errorf(p->msg, RD_ECONFIG, "%s: [%s] %s: required key is missing",
	                   p->name, rd_config_keys[k].section, rd_config_keys[k].key);
	return 0;
}

static int check_file(struct rd_config_parse *p, int k, const char *path)
{
	if (access(path, R_OK) == 0)
		return 1;
	p->err = rd_errorf(p->msg, RD_ECONFIG, "%s:%d: [%s] %s: cannot read '%s': %s",
	                   p->name, p->lines[k], rd_config_keys[k].section,
	                   rd_config_keys[k].key, path, strerror(errno));
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

static int validate(struct rd_config_parse *p)
{
	struct rd_config *c = p->c;

	if (!require(p, K_node_id) || !require(p, K_node_data_dir) ||
	    !require(p, K_cluster_listen))
		return 0;
	if (p->lines[K_cluster_peers] == 0 && !c->has_join) {
		p->err = rd_errorf(p->msg, RD_ECONFIG,
		                   "%s: [cluster] peers: required key is missing (or "
		                   "[cluster] join, to join a running cluster)",
		                   p->name);
		return 0;
	}
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
		return rd_config_fail(p, K_cluster_peers,
		                      "this node's id %s is not listed", id);
	}
	if (c->heartbeat_ticks >= c->election_ticks)
		return rd_config_fail(p, K_raft_heartbeat_ticks, "%s",
		                      "must be smaller than [raft] election_ticks");
	if (c->disk_slow_ms != 0 && c->disk_recover_ms < c->disk_slow_window_ms)
		return rd_config_fail(p, K_health_disk_recover_ms, "%s",
		                      "must be at least [health] disk_slow_window_ms");
	if (c->keepalive_ms >= c->idle_timeout_ms)
		return rd_config_fail(p, K_transport_keepalive_ms, "%s",
		                      "must be smaller than [transport] idle_timeout_ms");
	/* Without verification anyone who can reach the port is a peer. */
	if (c->tls_mode == RD_TLS_INSECURE && !addr_is_loopback(&c->listen) &&
	    !c->tls_insecure_remote)
		return rd_config_fail(
		    p, K_tls_mode,
		    "insecure mode on the non-loopback address %s; set [tls] "
		    "allow_insecure_remote = yes to mean it",
		    c->listen.text);
	/* A frame must fit in the window that holds it until it is whole,
	 * behind up to half a window of credit consumed and not yet
	 * advertised (lib/transport/conn.c, stream_window): twice a frame. */
	if (c->max_partial_bytes != 0 &&
	    c->max_partial_bytes < 2 * (c->max_frame_bytes + 4))
		return rd_config_fail(
		    p, K_transport_max_partial_bytes, "%s",
		    "must be at least twice [transport] max_frame_bytes "
		    "and 8 bytes");
	/* A Raft append carries up to max_msg_bytes of entries (or one entry
	 * of at most that size), each counted with RD_RAFT_ENTRY_OVERHEAD, and
	 * protobuf spends at most half as much again on an entry's fields; a
	 * message that alone passes max_frame_bytes is dropped, and the core
	 * would send it again forever (lib/multiraft/peers.c): the follower
	 * never catches up. Twice max_msg_bytes covers both. The key named is
	 * the one the file set, the frame's when it set both. */
	if (c->max_frame_bytes < 2 * c->max_msg_bytes) {
		if (p->lines[K_transport_max_frame_bytes] != 0 ||
		    p->lines[K_raft_max_msg_bytes] == 0)
			return rd_config_fail(
			    p, K_transport_max_frame_bytes, "%s",
			    "must be at least twice [raft] max_msg_bytes, so that "
			    "a Raft append fits in one frame");
		return rd_config_fail(p, K_raft_max_msg_bytes, "%s",
		                      "must be at most half [transport] max_frame_bytes, "
		                      "so that a Raft append fits in one frame");
	}
	/* One append always fits in the window (lib/raft/replication.c sends
	 * one whenever nothing is in flight); a bound below one append would
	 * read as more than it is. */
	if (c->max_inflight_bytes != 0 && c->max_inflight_bytes < c->max_msg_bytes)
		return rd_config_fail(
		    p,
		    p->lines[K_raft_max_inflight_bytes] != 0 ||
		            p->lines[K_raft_max_msg_bytes] == 0
		        ? K_raft_max_inflight_bytes
		        : K_raft_max_msg_bytes,
		    "%s",
		    "[raft] max_inflight_bytes must be 0 or at least [raft] "
		    "max_msg_bytes");
	/* An envelope travels between nodes in one RPC frame, whose cap
	 * comes from [raft] max_msg_bytes. */
	if (c->env_max_payload > c->max_msg_bytes &&
	    p->lines[K_envelopes_max_payload_bytes] == 0)
		c->env_max_payload = c->max_msg_bytes;
	if (c->env_max_payload > c->max_msg_bytes)
		return rd_config_fail(p, K_envelopes_max_payload_bytes, "%s",
		                      "must not be larger than [raft] max_msg_bytes");
	/* Anyone on the host could then write to the cluster. */
	if ((c->socket_mode & 0007) != 0 && !c->socket_world)
		return rd_config_fail(p, K_control_socket_mode,
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

static int load(struct rd_config *c, struct rd_config_parse *p)
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
	struct rd_config_parse p = {.c = c, .name = path, .msg = msg};
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
	struct rd_config_parse p = {.c = c, .name = name, .str = text, .msg = msg};
	return load(c, &p);
}

const struct rd_config_peer *rd_config_peer(const struct rd_config *c, uint64_t id)
{
	for (unsigned i = 0; i < c->n_peers; i++)
		if (c->peers[i].id == id)
			return &c->peers[i];
	return NULL;
}
