/*
 * raftctl: the command-line client of a local raftd (proto/raftd.proto,
 * ClientRequest/ClientResponse over the Unix socket).
 *
 * Exit codes: 0 success, 1 the operation failed (message on stderr), 2 usage
 * error, 3 the daemon could not be reached.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "raftd.pb-c.h"
#include "util/err.h"
#include "util/frame.h"
#include "util/json.h"
#include "util/clock.h"

#define EXIT_FAILED      1
#define EXIT_USAGE       2
#define EXIT_UNREACHABLE 3
#define DEFAULT_SOCKET   "/run/raftd/raftd.sock"
#define MAX_RESPONSE     (64u << 20)

struct opts {
	const char *socket;
	bool json;
	unsigned timeout_ms;
};

struct cmd {
	const char *name; /* "meta put" for two-word commands */
	const char *args;
	const char *help;
	int (*run)(const struct opts *o, int argc, char **argv);
};

static const struct cmd commands[];

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: raftctl [-s SOCKET] [--json] [--timeout MS] COMMAND [ARGS]\n\n"
	        "commands:\n");
	for (const struct cmd *c = commands; c->name != NULL; c++)
		fprintf(out, "  %-16s %-26s %s\n", c->name, c->args, c->help);
	fprintf(out,
	        "\nSOCKET defaults to $RAFTD_SOCKET, else %s.\n"
	        "Exit codes: 0 ok, 1 operation failed, 2 usage, 3 raftd unreachable.\n"
	        "'raftctl COMMAND --help' describes one command.\n",
	        DEFAULT_SOCKET);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "raftctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(see 'raftctl --help')\n");
	return EXIT_USAGE;
}

static int dial(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof sun.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int unreachable(const char *path, const char *what)
{
	fprintf(
	    stderr,
	    "raftctl: no raftd at %s (%s): is it running? see `systemctl status raftd`, "
	    "or pass -s SOCKET\n",
	    path, what);
	return EXIT_UNREACHABLE;
}

/* Send `req`, wait for its response. Returns 0 with *resp set (free with
 * raftd__client_response__free_unpacked) or an exit code. `retry_ms` > 0
 * keeps trying to connect that long (ready --wait). */
static int call(const struct opts *o, Raftd__ClientRequest *req, unsigned retry_ms,
                Raftd__ClientResponse **resp)
{
	uint64_t until = rd_clock_now_ms() + retry_ms;
	uint8_t *buf, *in;
	size_t len, inlen;
	int fd, rv;

	while ((fd = dial(o->socket)) < 0) {
		if (rd_clock_now_ms() >= until)
			return unreachable(o->socket, strerror(errno));
		usleep(100 * 1000);
	}
	req->request_id = 1;
	if (req->deadline_ms == 0)
		req->deadline_ms = o->timeout_ms;
	len = raftd__client_request__get_packed_size(req);
	buf = malloc(len ? len : 1);
	if (buf == NULL) {
		close(fd);
		return EXIT_FAILED;
	}
	raftd__client_request__pack(req, buf);
	rv = rd_frame_write_fd(fd, buf, len);
	free(buf);
	if (rv != 0) {
		close(fd);
		return unreachable(o->socket, strerror(errno));
	}
	rv = rd_frame_read_fd(fd, MAX_RESPONSE, &in, &inlen);
	close(fd);
	if (rv != 0)
		return unreachable(o->socket, rv == RD_ECLOSED
		                                  ? "connection closed before a reply"
		                                  : rd_strerror(rv));
	*resp = raftd__client_response__unpack(NULL, inlen, in);
	free(in);
	if (*resp == NULL) {
		fprintf(stderr, "raftctl: the reply from %s could not be decoded\n",
		        o->socket);
		return EXIT_FAILED;
	}
	return 0;
}

/* "key": value, for the flat fields of --json output. */
static void ju64(struct rd_json *j, const char *key, uint64_t v)
{
	rd_json_key(j, key);
	rd_json_u64(j, v);
}

static void jstr(struct rd_json *j, const char *key, const char *v)
{
	rd_json_key(j, key);
	rd_json_str(j, v);
}

static void jbool(struct rd_json *j, const char *key, int v)
{
	rd_json_key(j, key);
	rd_json_bool(j, v);
}

static const char *code_name(Raftd__ErrorCode c)
{
	const ProtobufCEnumValue *v =
	    protobuf_c_enum_descriptor_get_value(&raftd__error_code__descriptor, (int)c);
	return v != NULL ? v->name : "UNKNOWN";
}

/* Print a failed response; returns EXIT_FAILED. */
static int failed(const struct opts *o, const Raftd__ClientResponse *r)
{
	if (o->json) {
		struct rd_json j;
		rd_json_init(&j);
		rd_json_obj_begin(&j);
		jstr(&j, "error", code_name(r->error));
		jstr(&j, "message", r->error_message);
		if (r->leader_hint) {
			ju64(&j, "leader_hint", r->leader_hint);
		}
		if (r->result_case == RAFTD__CLIENT_RESPONSE__RESULT_VALUE) {
			jbool(&j, "found", r->value->found);
			rd_json_key(&j, "value");
			rd_json_bytes(&j, r->value->value.data, r->value->value.len);
		}
		rd_json_obj_end(&j);
		printf("%s\n", j.buf);
		rd_json_free(&j);
	}
	fprintf(stderr, "raftctl: %s", code_name(r->error));
	if (r->error_message[0] != '\0')
		fprintf(stderr, ": %s", r->error_message);
	if (r->leader_hint)
		fprintf(stderr, " (leader is node %" PRIu64 ")", r->leader_hint);
	if (r->error == RAFTD__ERROR_CODE__CAS_FAILED &&
	    r->result_case == RAFTD__CLIENT_RESPONSE__RESULT_VALUE) {
		if (r->value->found)
			fprintf(stderr, "; current value: %.*s", (int)r->value->value.len,
			        (const char *)r->value->value.data);
		else
			fprintf(stderr, "; the key does not exist");
	}
	if (r->error == RAFTD__ERROR_CODE__NOT_READY)
		fprintf(
		    stderr,
		    " (the node is still catching up; try 'raftctl ready --wait 10')");
	fprintf(stderr, "\n");
	return EXIT_FAILED;
}

/* Run one request and hand a successful response to `print`. */
static int roundtrip(const struct opts *o, Raftd__ClientRequest *req,
                     void (*print)(const struct opts *, const Raftd__ClientResponse *))
{
	Raftd__ClientResponse *r;
	int rv = call(o, req, 0, &r);
	if (rv != 0)
		return rv;
	if (r->error != RAFTD__ERROR_CODE__OK) {
		rv = failed(o, r);
	} else {
		print(o, r);
		rv = 0;
	}
	raftd__client_response__free_unpacked(r, NULL);
	return rv;
}

static ProtobufCBinaryData bin(const char *s)
{
	return (ProtobufCBinaryData){.len = strlen(s), .data = (uint8_t *)s};
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;
	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno == 0 && *end == '\0';
}

/* ---- printers ------------------------------------------------------------- */

static void print_index(const struct opts *o, const Raftd__ClientResponse *r)
{
	uint64_t g = 0, i = 0;
	if (r->result_case == RAFTD__CLIENT_RESPONSE__RESULT_INDEX)
		g = r->index->group, i = r->index->index;
	if (o->json)
		printf("{\"ok\":true,\"group\":%" PRIu64 ",\"index\":%" PRIu64 "}\n", g,
		       i);
	else
		printf("OK group=%" PRIu64 " index=%" PRIu64 "\n", g, i);
}

static void print_value(const struct opts *o, const Raftd__ClientResponse *r)
{
	const Raftd__ValueResult *v =
	    r->result_case == RAFTD__CLIENT_RESPONSE__RESULT_VALUE ? r->value : NULL;
	if (o->json) {
		struct rd_json j;
		rd_json_init(&j);
		rd_json_obj_begin(&j);
		jbool(&j, "found", v != NULL && v->found);
		rd_json_key(&j, "value");
		if (v != NULL && v->found)
			rd_json_bytes(&j, v->value.data, v->value.len);
		else
			rd_json_null(&j);
		rd_json_obj_end(&j);
		printf("%s\n", j.buf);
		rd_json_free(&j);
	} else if (v != NULL && v->found) {
		fwrite(v->value.data, 1, v->value.len, stdout);
		putchar('\n');
	}
}

static void print_ok(const struct opts *o, const Raftd__ClientResponse *r)
{
	(void)r;
	printf(o->json ? "{\"ok\":true}\n" : "OK\n");
}

static const char *role_name(Raftd__GroupRole role)
{
	switch (role) {
	case RAFTD__GROUP_ROLE__ROLE_LEADER:
		return "leader";
	case RAFTD__GROUP_ROLE__ROLE_CANDIDATE:
		return "candidate";
	case RAFTD__GROUP_ROLE__ROLE_PRE_CANDIDATE:
		return "pre-candidate";
	case RAFTD__GROUP_ROLE__ROLE_LEARNER:
		return "learner";
	default:
		return "follower";
	}
}

static const char *member_role(Raftd__MemberRole role)
{
	return role == RAFTD__MEMBER_ROLE__MEMBER_LEARNER   ? "learner"
	       : role == RAFTD__MEMBER_ROLE__MEMBER_REMOVED ? "removed"
	                                                    : "voter";
}

static void ids(char *out, size_t size, const uint64_t *v, size_t n)
{
	size_t l = 0;
	out[0] = '\0';
	for (size_t i = 0; i < n && l + 1 < size; i++)
		l +=
		    (size_t)snprintf(out + l, size - l, "%s%" PRIu64, i ? "," : "", v[i]);
	if (n == 0)
		snprintf(out, size, "-");
}

static void json_ids(struct rd_json *j, const char *key, const uint64_t *v, size_t n)
{
	rd_json_key(j, key);
	rd_json_arr_begin(j);
	for (size_t i = 0; i < n; i++)
		rd_json_u64(j, v[i]);
	rd_json_arr_end(j);
}

static void print_groups(const struct opts *o, const Raftd__ClientResponse *r)
{
	const Raftd__GroupsResult *g = r->groups;
	char voters[256], learners[256];

	if (r->result_case != RAFTD__CLIENT_RESPONSE__RESULT_GROUPS)
		return;
	if (o->json) {
		struct rd_json j;
		rd_json_init(&j);
		rd_json_arr_begin(&j);
		for (size_t i = 0; i < g->n_groups; i++) {
			const Raftd__GroupRow *row = g->groups[i];
			rd_json_obj_begin(&j);
			ju64(&j, "group", row->group);
			jstr(&j, "role", role_name(row->role));
			ju64(&j, "leader", row->leader);
			ju64(&j, "term", row->term);
			ju64(&j, "commit", row->commit);
			ju64(&j, "applied", row->applied);
			ju64(&j, "last_index", row->last_index);
			json_ids(&j, "voters", row->voters, row->n_voters);
			json_ids(&j, "learners", row->learners, row->n_learners);
			ju64(&j, "vshards", row->n_vshards);
			rd_json_obj_end(&j);
		}
		rd_json_arr_end(&j);
		printf("%s\n", j.buf);
		rd_json_free(&j);
		return;
	}
	printf("%-6s %-13s %-7s %-6s %-8s %-8s %-12s %-8s %s\n", "GROUP", "ROLE",
	       "LEADER", "TERM", "COMMIT", "APPLIED", "VOTERS", "LEARNERS", "VSHARDS");
	for (size_t i = 0; i < g->n_groups; i++) {
		const Raftd__GroupRow *row = g->groups[i];
		ids(voters, sizeof voters, row->voters, row->n_voters);
		ids(learners, sizeof learners, row->learners, row->n_learners);
		printf("%-6" PRIu64 " %-13s %-7" PRIu64 " %-6" PRIu64 " %-8" PRIu64
		       " %-8" PRIu64 " %-12s %-8s %zu\n",
		       row->group, role_name(row->role), row->leader, row->term,
		       row->commit, row->applied, voters, learners, row->n_vshards);
	}
}

static void print_members(const struct opts *o, const Raftd__ClientResponse *r)
{
	const Raftd__MembersResult *m = r->members;

	if (r->result_case != RAFTD__CLIENT_RESPONSE__RESULT_MEMBERS)
		return;
	if (o->json) {
		struct rd_json j;
		rd_json_init(&j);
		rd_json_obj_begin(&j);
		ju64(&j, "topology_version", m->topology_version);
		rd_json_key(&j, "members");
		rd_json_arr_begin(&j);
		for (size_t i = 0; i < m->n_members; i++) {
			rd_json_obj_begin(&j);
			ju64(&j, "id", m->members[i]->id);
			jstr(&j, "address", m->members[i]->address);
			jstr(&j, "role", member_role(m->members[i]->role));
			jbool(&j, "self", m->members[i]->self);
			jbool(&j, "connected", m->members[i]->connected);
			ju64(&j, "rtt_us", m->members[i]->rtt_us);
			rd_json_obj_end(&j);
		}
		rd_json_arr_end(&j);
		rd_json_obj_end(&j);
		printf("%s\n", j.buf);
		rd_json_free(&j);
		return;
	}
	printf("%-6s %-24s %-8s %-10s %s\n", "ID", "ADDRESS", "ROLE", "CONNECTED", "RTT");
	for (size_t i = 0; i < m->n_members; i++) {
		const Raftd__MemberRow *row = m->members[i];
		char rtt[32];
		if (row->self)
			snprintf(rtt, sizeof rtt, "(self)");
		else if (row->rtt_us)
			snprintf(rtt, sizeof rtt, "%.2fms", (double)row->rtt_us / 1000.0);
		else
			snprintf(rtt, sizeof rtt, "-");
		printf("%-6" PRIu64 " %-24s %-8s %-10s %s\n", row->id, row->address,
		       member_role(row->role),
		       row->self        ? "-"
		       : row->connected ? "yes"
		                        : "no",
		       rtt);
	}
}

static void print_status(const struct opts *o, const Raftd__ClientResponse *r)
{
	const Raftd__StatusResult *s = r->status;
	const Raftd__LoopStats *l;
	size_t n_members;

	if (r->result_case != RAFTD__CLIENT_RESPONSE__RESULT_STATUS)
		return;
	l = s->loop;
	n_members = s->topology != NULL ? s->topology->n_members : 0;
	if (o->json) {
		struct rd_json j;
		rd_json_init(&j);
		rd_json_obj_begin(&j);
		ju64(&j, "node_id", s->node_id);
		jstr(&j, "version", s->version);
		jbool(&j, "ready", s->ready);
		ju64(&j, "meta_leader", s->meta_leader);
		ju64(&j, "uptime_ms", s->uptime_ms);
		ju64(&j, "state_machine_hash", s->state_machine_hash);
		ju64(&j, "topology_version",
		     s->topology != NULL ? s->topology->version : 0);
		rd_json_key(&j, "members");
		rd_json_arr_begin(&j);
		for (size_t i = 0; i < n_members; i++) {
			rd_json_obj_begin(&j);
			ju64(&j, "id", s->topology->members[i]->id);
			jstr(&j, "address", s->topology->members[i]->address);
			rd_json_obj_end(&j);
		}
		rd_json_arr_end(&j);
		if (l != NULL) {
			rd_json_key(&j, "loop");
			rd_json_obj_begin(&j);
			ju64(&j, "iterations", l->iterations);
			ju64(&j, "ticks", l->ticks);
			ju64(&j, "last_iteration_us", l->last_iteration_us);
			ju64(&j, "max_iteration_us", l->max_iteration_us);
			ju64(&j, "last_tick_us", l->last_tick_us);
			ju64(&j, "max_tick_us", l->max_tick_us);
			rd_json_obj_end(&j);
		}
		rd_json_obj_end(&j);
		printf("%s\n", j.buf);
		rd_json_free(&j);
		return;
	}
	printf("%-20s %" PRIu64 "\n", "node", s->node_id);
	printf("%-20s %s\n", "version", s->version);
	printf("%-20s %s\n", "ready", s->ready ? "yes" : "no");
	printf("%-20s %" PRIu64 "\n", "metadata leader", s->meta_leader);
	printf("%-20s %.1fs\n", "uptime", (double)s->uptime_ms / 1000.0);
	printf("%-20s %016" PRIx64 "\n", "state machine hash", s->state_machine_hash);
	printf("%-20s %zu (version %" PRIu64 ")\n", "members", n_members,
	       s->topology != NULL ? s->topology->version : 0);
	for (size_t i = 0; i < n_members; i++)
		printf("%-20s %" PRIu64 " %s\n", "", s->topology->members[i]->id,
		       s->topology->members[i]->address);
	if (l != NULL) {
		printf("%-20s %" PRIu64 " (last %" PRIu64 "us, max %" PRIu64 "us)\n",
		       "loop iterations", l->iterations, l->last_iteration_us,
		       l->max_iteration_us);
		printf("%-20s %" PRIu64 " (last %" PRIu64 "us, max %" PRIu64 "us)\n",
		       "ticks", l->ticks, l->last_tick_us, l->max_tick_us);
	}
}

/* ---- commands --------------------------------------------------------------- */

static int need(int argc, int want, const char *cmd)
{
	if (argc != want)
		return usage_error("'%s' takes %d argument%s, got %d", cmd, want,
		                   want == 1 ? "" : "s", argc);
	return 0;
}

/* Pull "--flag" out of argv (anywhere after the command). */
static bool take_flag(int *argc, char **argv, const char *flag)
{
	for (int i = 0; i < *argc; i++) {
		if (strcmp(argv[i], flag) == 0) {
			memmove(&argv[i], &argv[i + 1],
			        (size_t)(*argc - i - 1) * sizeof *argv);
			(*argc)--;
			return true;
		}
	}
	return false;
}

/* Pull "--flag VALUE" out of argv; NULL when absent, "" when the value is
 * missing. */
static const char *take_opt(int *argc, char **argv, const char *flag)
{
	for (int i = 0; i < *argc; i++) {
		if (strcmp(argv[i], flag) == 0) {
			const char *v = i + 1 < *argc ? argv[i + 1] : "";
			int n = i + 1 < *argc ? 2 : 1;
			memmove(&argv[i], &argv[i + n],
			        (size_t)(*argc - i - n) * sizeof *argv);
			*argc -= n;
			return v;
		}
	}
	return NULL;
}

static int cmd_put(const struct opts *o, int argc, char **argv)
{
	Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
	Raftd__PutRequest put = RAFTD__PUT_REQUEST__INIT;
	if (need(argc, 2, "put"))
		return EXIT_USAGE;
	put.key = bin(argv[0]);
	put.value = bin(argv[1]);
	req.op_case = RAFTD__CLIENT_REQUEST__OP_PUT;
	req.put = &put;
	return roundtrip(o, &req, print_index);
}

/* get / meta get: print the value; a missing key is a failed operation
 * (exit 1) in human output, {"found":false} with --json. */
static int read_value(const struct opts *o, Raftd__ClientRequest *req, const char *what,
                      const char *key)
{
	Raftd__ClientResponse *r;
	int rv = call(o, req, 0, &r);

	if (rv != 0)
		return rv;
	if (r->error != RAFTD__ERROR_CODE__OK) {
		rv = failed(o, r);
	} else {
		print_value(o, r);
		rv = 0;
		if (!o->json && (r->result_case != RAFTD__CLIENT_RESPONSE__RESULT_VALUE ||
		                 !r->value->found)) {
			fprintf(stderr, "raftctl: %s '%s' not found\n", what, key);
			rv = EXIT_FAILED;
		}
	}
	raftd__client_response__free_unpacked(r, NULL);
	return rv;
}

static int cmd_get(const struct opts *o, int argc, char **argv)
{
	Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
	Raftd__GetRequest get = RAFTD__GET_REQUEST__INIT;

	get.stale = take_flag(&argc, argv, "--stale");
	if (need(argc, 1, "get"))
		return EXIT_USAGE;
	get.key = bin(argv[0]);
	req.op_case = RAFTD__CLIENT_REQUEST__OP_GET;
	req.get = &get;
	return read_value(o, &req, "key", argv[0]);
}

static int cmd_delete(const struct opts *o, int argc, char **argv)
{
	Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
	Raftd__DeleteRequest del = RAFTD__DELETE_REQUEST__INIT;
	if (need(argc, 1, "delete"))
		return EXIT_USAGE;
	del.key = bin(argv[0]);
	req.op_case = RAFTD__CLIENT_REQUEST__OP_DELETE;
	req.delete_ = &del;
	return roundtrip(o, &req, print_index);
}

static int cmd_cas(const struct opts *o, int argc, char **argv)
{
	Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
	Raftd__CasRequest cas = RAFTD__CAS_REQUEST__INIT;

	cas.expected_absent = take_flag(&argc, argv, "--absent");
	if (cas.expected_absent) {
		if (need(argc, 2, "cas --absent"))
			return EXIT_USAGE;
		cas.key = bin(argv[0]);
		cas.value = bin(argv[1]);
	} else {
		if (need(argc, 3, "cas"))
			return EXIT_USAGE;
		cas.key = bin(argv[0]);
		cas.expected = bin(argv[1]);
		cas.value = bin(argv[2]);
	}
	req.op_case = RAFTD__CLIENT_REQUEST__OP_CAS;
	req.cas = &cas;
	return roundtrip(o, &req, print_index);
}

static int cmd_propose(const struct opts *o, int argc, char **argv)
{
	Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
	Raftd__ProposeRequest p = RAFTD__PROPOSE_REQUEST__INIT;
	const char *v = take_opt(&argc, argv, "--vshard");
	uint64_t vs;

	if (v == NULL || !parse_u64(v, &vs) || vs >= 1024)
		return usage_error("propose needs --vshard V with V in 0..1023");
	if (need(argc, 1, "propose"))
		return EXIT_USAGE;
	p.vshard = (uint32_t)vs;
	p.data = bin(argv[0]);
	req.op_case = RAFTD__CLIENT_REQUEST__OP_PROPOSE;
	req.propose = &p;
	return roundtrip(o, &req, print_index);
}

static int cmd_meta_put(const struct opts *o, int argc, char **argv)
{
	Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
	Raftd__MetaPutRequest m = RAFTD__META_PUT_REQUEST__INIT;
	if (need(argc, 2, "meta put"))
		return EXIT_USAGE;
	m.key = bin(argv[0]);
	m.value = bin(argv[1]);
	req.op_case = RAFTD__CLIENT_REQUEST__OP_META_PUT;
	req.meta_put = &m;
	return roundtrip(o, &req, print_index);
}

static int cmd_meta_get(const struct opts *o, int argc, char **argv)
{
	Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
	Raftd__MetaGetRequest m = RAFTD__META_GET_REQUEST__INIT;

	m.stale = take_flag(&argc, argv, "--stale");
	if (need(argc, 1, "meta get"))
		return EXIT_USAGE;
	m.key = bin(argv[0]);
	req.op_case = RAFTD__CLIENT_REQUEST__OP_META_GET;
	req.meta_get = &m;
	return read_value(o, &req, "metadata key", argv[0]);
}

static int cmd_status(const struct opts *o, int argc, char **argv)
{
	Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
	Raftd__StatusRequest s = RAFTD__STATUS_REQUEST__INIT;
	(void)argv;
	if (need(argc, 0, "status"))
		return EXIT_USAGE;
	req.op_case = RAFTD__CLIENT_REQUEST__OP_STATUS;
	req.status = &s;
	return roundtrip(o, &req, print_status);
}

static int cmd_groups(const struct opts *o, int argc, char **argv)
{
	Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
	Raftd__GroupsRequest g = RAFTD__GROUPS_REQUEST__INIT;
	(void)argv;
	if (need(argc, 0, "groups"))
		return EXIT_USAGE;
	req.op_case = RAFTD__CLIENT_REQUEST__OP_GROUPS;
	req.groups = &g;
	return roundtrip(o, &req, print_groups);
}

static int cmd_members(const struct opts *o, int argc, char **argv)
{
	Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
	Raftd__MembersRequest m = RAFTD__MEMBERS_REQUEST__INIT;
	(void)argv;
	if (need(argc, 0, "members"))
		return EXIT_USAGE;
	req.op_case = RAFTD__CLIENT_REQUEST__OP_MEMBERS;
	req.members = &m;
	return roundtrip(o, &req, print_members);
}

static int cmd_members_add(const struct opts *o, int argc, char **argv)
{
	Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
	Raftd__MembersAddRequest m = RAFTD__MEMBERS_ADD_REQUEST__INIT;
	uint64_t id;

	m.learner = take_flag(&argc, argv, "--learner");
	if (need(argc, 2, "members add"))
		return EXIT_USAGE;
	if (!parse_u64(argv[0], &id) || id == 0)
		return usage_error("node id '%s' is not a positive integer", argv[0]);
	m.node_id = id;
	m.address = argv[1];
	req.op_case = RAFTD__CLIENT_REQUEST__OP_MEMBERS_ADD;
	req.members_add = &m;
	return roundtrip(o, &req, print_index);
}

static int cmd_members_remove(const struct opts *o, int argc, char **argv)
{
	Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
	Raftd__MembersRemoveRequest m = RAFTD__MEMBERS_REMOVE_REQUEST__INIT;
	uint64_t id;

	if (need(argc, 1, "members remove"))
		return EXIT_USAGE;
	if (!parse_u64(argv[0], &id) || id == 0)
		return usage_error("node id '%s' is not a positive integer", argv[0]);
	m.node_id = id;
	req.op_case = RAFTD__CLIENT_REQUEST__OP_MEMBERS_REMOVE;
	req.members_remove = &m;
	return roundtrip(o, &req, print_index);
}

static int cmd_transfer(const struct opts *o, int argc, char **argv)
{
	Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
	Raftd__TransferLeaderRequest t = RAFTD__TRANSFER_LEADER_REQUEST__INIT;
	uint64_t g, n;

	if (need(argc, 2, "transfer-leader"))
		return EXIT_USAGE;
	if (!parse_u64(argv[0], &g) || !parse_u64(argv[1], &n) || n == 0)
		return usage_error("transfer-leader takes a group number and a node id");
	t.group = g;
	t.node_id = n;
	req.op_case = RAFTD__CLIENT_REQUEST__OP_TRANSFER_LEADER;
	req.transfer_leader = &t;
	return roundtrip(o, &req, print_ok);
}

static int cmd_ready(const struct opts *o, int argc, char **argv)
{
	Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
	Raftd__ReadyRequest rr = RAFTD__READY_REQUEST__INIT;
	Raftd__ClientResponse *r;
	const char *w = take_opt(&argc, argv, "--wait");
	uint64_t wait_s = 0;
	int rv;

	(void)argv;
	if (w != NULL && !parse_u64(w, &wait_s))
		return usage_error("--wait takes a number of seconds");
	if (need(argc, 0, "ready"))
		return EXIT_USAGE;
	req.op_case = RAFTD__CLIENT_REQUEST__OP_READY;
	req.ready = &rr;
	/* deadline_ms = how long the node may hold the answer back. */
	req.deadline_ms = wait_s > 0 ? (uint32_t)(wait_s * 1000) : 1;
	rv = call(o, &req, (unsigned)(wait_s * 1000), &r);
	if (rv != 0)
		return rv;
	rv = r->error == RAFTD__ERROR_CODE__OK ? 0 : EXIT_FAILED;
	if (o->json)
		printf("{\"ready\":%s}\n", rv == 0 ? "true" : "false");
	else
		printf("%s\n", rv == 0 ? "ready" : "not ready");
	raftd__client_response__free_unpacked(r, NULL);
	return rv;
}

static int cmd_shutdown(const struct opts *o, int argc, char **argv)
{
	Raftd__ClientRequest req = RAFTD__CLIENT_REQUEST__INIT;
	Raftd__ShutdownRequest s = RAFTD__SHUTDOWN_REQUEST__INIT;
	(void)argv;
	if (need(argc, 0, "shutdown"))
		return EXIT_USAGE;
	req.op_case = RAFTD__CLIENT_REQUEST__OP_SHUTDOWN;
	req.shutdown = &s;
	return roundtrip(o, &req, print_ok);
}

static const struct cmd commands[] = {
    {"put", "KEY VALUE", "linearizable write; returns once applied", cmd_put},
    {"get", "KEY [--stale]", "linearizable read (ReadIndex) unless --stale", cmd_get},
    {"delete", "KEY", "linearizable delete", cmd_delete},
    {"cas", "KEY EXPECTED NEW", "compare-and-set (--absent KEY NEW: only if absent)",
     cmd_cas},
    {"propose", "--vshard V DATA", "raw proposal to the group owning vShard V",
     cmd_propose},
    {"meta put", "KEY VALUE", "write to the metadata group", cmd_meta_put},
    {"meta get", "KEY [--stale]", "read from the metadata group", cmd_meta_get},
    {"status", "", "node, readiness, metadata leader, topology, loop figures",
     cmd_status},
    {"groups", "", "one row per group hosted here", cmd_groups},
    {"members", "", "cluster members", cmd_members},
    {"members add", "ID ADDR [--learner]", "add a node to the cluster", cmd_members_add},
    {"members remove", "ID", "remove a node from the cluster", cmd_members_remove},
    {"transfer-leader", "GROUP NODE", "move a group's leadership to NODE", cmd_transfer},
    {"ready", "[--wait SECONDS]", "exit 0 when ready, 1 when not (after waiting)",
     cmd_ready},
    {"shutdown", "", "graceful shutdown of the node", cmd_shutdown},
    {NULL, NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
	struct opts o = {.socket = getenv("RAFTD_SOCKET"), .timeout_ms = 5000};
	const struct cmd *c, *match = NULL;
	int i = 1;

	if (o.socket == NULL || o.socket[0] == '\0')
		o.socket = DEFAULT_SOCKET;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if ((strcmp(argv[i], "-s") == 0 || strcmp(argv[i], "--socket") == 0) &&
		    i + 1 < argc) {
			o.socket = argv[++i];
		} else if (strcmp(argv[i], "--json") == 0) {
			o.json = true;
		} else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
			uint64_t t;
			if (!parse_u64(argv[++i], &t) || t == 0 || t > 3600000)
				return usage_error(
				    "--timeout takes milliseconds (1..3600000)");
			o.timeout_ms = (unsigned)t;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("raftctl %s\n", RD_VERSION);
			return 0;
		} else {
			return usage_error("unknown option '%s'", argv[i]);
		}
	}
	if (i == argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	/* Two-word commands first ("meta put", "members add"). */
	for (c = commands; c->name != NULL; c++) {
		size_t l = strlen(argv[i]);
		if (strncmp(c->name, argv[i], l) != 0)
			continue;
		if (c->name[l] == '\0' && match == NULL)
			match = c;
		else if (c->name[l] == ' ' && i + 1 < argc &&
		         strcmp(c->name + l + 1, argv[i + 1]) == 0)
			match = c;
	}
	if (match == NULL)
		return usage_error("unknown command '%s'", argv[i]);
	i += strchr(match->name, ' ') != NULL ? 2 : 1;
	for (int k = i; k < argc; k++) {
		if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0) {
			printf("usage: raftctl [-s SOCKET] [--json] %s %s\n  %s\n",
			       match->name, match->args, match->help);
			return 0;
		}
	}
	/* Accept --json after the command too. */
	int n = argc - i;
	if (take_flag(&n, argv + i, "--json"))
		o.json = true;
	return match->run(&o, n, argv + i);
}
