/*
 * The config file's key table (KEYS, config_keys.h) and the parsers of its
 * kinds of value: numbers in bounds, flags, paths, addresses, and the few
 * keys with a parser of their own (the peer list, enums, the octal mode).
 * Each error names the key; config.c adds file and line (rd_config_fail)
 * and checks what spans several keys.
 */
#include "util/config_keys.h"

#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

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
static int set_peers(struct rd_config_parse *p, int k, const char *v)
{
	struct rd_config *c = p->c;
	char buf[4096], *save = NULL, *tok;

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

static bool parse_bool(const char *v, bool *out)
{
	if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 || strcmp(v, "on") == 0 ||
	    strcmp(v, "1") == 0)
		*out = true;
	else if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0 ||
	         strcmp(v, "off") == 0 || strcmp(v, "0") == 0)
		*out = false;
	else
		return false;
	return true;
}

/* "127.0.0.1:7001, 127.0.0.1:7002": members of a running cluster to ask
 * (instead of peers; validate() refuses both). */
static int set_join(struct rd_config_parse *p, int k, const char *v)
{
	struct rd_config *c = p->c;
	char buf[4096], *save = NULL, *tok;

	c->has_join = true;
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

static int set_tls_mode(struct rd_config_parse *p, int k, const char *v)
{
	if (strcmp(v, "mutual") == 0)
		p->c->tls_mode = RD_TLS_MUTUAL;
	else if (strcmp(v, "insecure") == 0)
		p->c->tls_mode = RD_TLS_INSECURE;
	else
		return rd_config_fail(p, k, "'%s' is neither 'mutual' nor 'insecure'", v);
	return 1;
}

static int set_socket_mode(struct rd_config_parse *p, int k, const char *v)
{
	char *end;
	unsigned long long u;

	errno = 0;
	u = strtoull(v, &end, 8);
	if (*v == '\0' || *end != '\0' || errno != 0 || u > 0777)
		return rd_config_fail(p, k, "'%s' is not an octal mode such as 0660", v);
	p->c->socket_mode = (mode_t)u;
	return 1;
}

/* "off", or the address to listen on. */
static int set_admin_listen(struct rd_config_parse *p, int k, const char *v)
{
	p->c->admin_enabled = strcmp(v, "off") != 0;
	if (!p->c->admin_enabled)
		return 1;
	return set_addr(p, k, &p->c->admin_listen, v);
}

static int set_log_level(struct rd_config_parse *p, int k, const char *v)
{
	if (!rd_log_parse_level(v, &p->c->log_level))
		return rd_config_fail(
		    p, k, "'%s' is not one of error, warning, notice, info, debug", v);
	return 1;
}

/* The third column of KEYS, as designated initializers. */
#define FIELD(f)                                                                         \
	.offset = offsetof(struct rd_config, f),                                         \
	.size = sizeof(((struct rd_config *)0)->f)
#define NUM(f, lo, hi, u)                                                                \
	.kind = RD_CONFIG_NUM, FIELD(f), .min = (lo), .max = (hi),                       \
	.unit = RD_CONFIG_UNIT_##u
#define NUM_OFF(f, hi, u, what) NUM(f, 0, hi, u), .zero_turns_off = (what)
#define FLAG(f)                 .kind = RD_CONFIG_FLAG, FIELD(f)
#define PATH(f)                 .kind = RD_CONFIG_PATH, FIELD(f)
#define ADDR(f)                 .kind = RD_CONFIG_ADDR, FIELD(f)
#define CUSTOM(fn)              .kind = RD_CONFIG_CUSTOM, .set = (fn)

const struct rd_config_key_spec rd_config_keys[K_COUNT] = {
#define X(s, k, how, d) [K_##s##_##k] = {.section = #s, .key = #k, how, .def = (d)},
    KEYS(X)
#undef X
};

/* `x` as the file would best write it: with a binary suffix when it is a
 * byte count that has one. */
static void format_bound(char *buf, size_t size, uint64_t x, enum rd_config_unit unit)
{
	static const char *const suffix[] = {"GiB", "MiB", "KiB"};

	for (unsigned i = 0; unit == RD_CONFIG_UNIT_BYTES && x != 0 && i < 3; i++) {
		unsigned shift = 30 - 10 * i;
		if ((x & ((1ull << shift) - 1)) == 0) {
			snprintf(buf, size, "%llu%s", (unsigned long long)(x >> shift),
			         suffix[i]);
			return;
		}
	}
	snprintf(buf, size, "%llu", (unsigned long long)x);
}

/* Refuse `v` for number key `k`, saying what the key takes: "'v' is not a
 * number of milliseconds in 1..1000", "'v' is not a positive integer". */
static int fail_number(struct rd_config_parse *p, int k, const char *v)
{
	static const char *const noun[] = {
	    [RD_CONFIG_UNIT_N] = "a number",
	    [RD_CONFIG_UNIT_MS] = "a number of milliseconds",
	    [RD_CONFIG_UNIT_BYTES] = "a number of bytes",
	    [RD_CONFIG_UNIT_ENTRIES] = "a number of entries",
	};
	const struct rd_config_key_spec *key = &rd_config_keys[k];
	char lo[32], hi[32], range[80] = "", off[80] = "";

	if (key->max == UINT64_MAX && key->min == 1 && key->unit == RD_CONFIG_UNIT_N)
		return rd_config_fail(p, k, "'%s' is not a positive integer", v);
	if (key->max != UINT64_MAX) {
		format_bound(lo, sizeof lo, key->min, key->unit);
		format_bound(hi, sizeof hi, key->max, key->unit);
		snprintf(range, sizeof range, " in %s..%s", lo, hi);
	}
	if (key->zero_turns_off != NULL)
		snprintf(off, sizeof off, " (0 turns %s off)", key->zero_turns_off);
	return rd_config_fail(p, k, "'%s' is not %s%s%s", v, noun[key->unit], range, off);
}

int rd_config_set(struct rd_config_parse *p, int k, const char *v)
{
	const struct rd_config_key_spec *key = &rd_config_keys[k];
	char *field = (char *)p->c + key->offset;
	uint64_t u;

	switch (key->kind) {
	case RD_CONFIG_NUM:
		if (!parse_u64(v, key->min, key->max, &u))
			return fail_number(p, k, v);
		if (key->size == sizeof(unsigned)) {
			unsigned x = (unsigned)u;
			memcpy(field, &x, sizeof x);
		} else {
			memcpy(field, &u, sizeof u);
		}
		return 1;
	case RD_CONFIG_FLAG:
		if (!parse_bool(v, (bool *)(void *)field))
			return rd_config_fail(p, k, "'%s' is neither 'yes' nor 'no'", v);
		return 1;
	case RD_CONFIG_PATH:
		return set_path(p, k, field, key->size, v);
	case RD_CONFIG_ADDR:
		return set_addr(p, k, (struct rd_addr *)(void *)field, v);
	case RD_CONFIG_CUSTOM:
		return key->set(p, k, v);
	}
	return 0;
}
