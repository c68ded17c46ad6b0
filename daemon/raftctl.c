/*
 * raftctl: the command-line client of a local raftd (proto/raftd.proto,
 * ClientRequest/ClientResponse over the Unix socket).
 *
 * Exit codes: 0 success, 1 the operation failed and was not applied
 * (message on stderr), 2 usage error, 3 the daemon could not be reached, 4
 * the operation failed and its outcome is unknown (a write may have
 * applied; transport/wire.h rd_wire_outcome is the classification), 5 a
 * stream (tail, watch) was ended by the node.
 *
 * Every write carries a client session (proto/raftd.proto, ClientRequest):
 * a random client id per invocation and sequence 1, so that the node may
 * re-send it to a new leader without applying it twice; --client-id and
 * --sequence repeat one on purpose.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl/client.h"
#include "ctl/request.h"
#include "raftctl.h"
#include "raftd.pb-c.h"
#include "util/err.h"
#include "util/frame.h"
#include "util/clock.h"

#define EXIT_FAILED      RC_EXIT_FAILED
#define EXIT_USAGE       RC_EXIT_USAGE
#define EXIT_UNREACHABLE RC_EXIT_UNREACHABLE
#define DEFAULT_SOCKET   "/run/raftd/raftd.sock"
#define MAX_RESPONSE     (64u << 20)
#define REPLY_GRACE_MS   5000u /* past the deadline, before giving up */

/* One command: how it is typed and described, how its request is built
 * from the arguments after the command name, and how the answer is printed.
 * A builder returns 0, or an exit code after a usage message. build_fields
 * needs no code per command: it reads `fields` and `flag`. */
struct cmd {
	const char *name; /* "meta put" for two-word commands */
	const char *args;
	const char *help;
	Raftd__ClientRequest__OpCase op;
	int (*build)(const struct cmd *c, struct rc_request *rq, int argc, char **argv);
	enum rc_output out;
	const char *const *fields; /* build_fields: bytes fields, one per argument */
	const char *flag;          /* build_fields: "--NAME" sets bool field NAME */
	const char *what;          /* RC_OUT_VALUE: what a missing key is called */
	/* A command that is not one request and one answer (handle, backup):
	 * the whole command, given the arguments after its name (a --json
	 * before any "--" already taken out); `build` is then unused. */
	int (*run)(const struct rc_opts *o, int argc, char **argv);
};

static const struct cmd commands[];

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: raftctl [-s SOCKET] [--json] [--timeout MS] [--client-id ID]\n"
	        "               [--sequence N] COMMAND [ARGS]\n\n"
	        "commands:\n");
	for (const struct cmd *c = commands; c->name != NULL; c++)
		fprintf(out, "  %-16s %-26s %s\n", c->name, c->args, c->help);
	fprintf(
	    out,
	    "\nSOCKET defaults to $RAFTD_SOCKET, else %s.\n"
	    "Writes carry a client session: a random client id (or --client-id) and\n"
	    "sequence 1 (or --sequence), so a write is applied at most once.\n"
	    "Exit codes: 0 ok, 1 failed and not applied, 2 usage, 3 raftd unreachable,\n"
	    "4 failed with the outcome unknown (a write may have applied),\n"
	    "5 stream ended by the server (tail, watch).\n"
	    "'raftctl COMMAND --help' describes one command.\n",
	    DEFAULT_SOCKET);
}

void rc_vcomplain(const char *command, const char *after, const char *fmt, va_list ap)
{
	fprintf(stderr, "raftctl: %s%s", command != NULL ? command : "",
	        command != NULL ? ": " : "");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "%s\n", after);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rc_vcomplain(NULL, "\n(see 'raftctl --help')", fmt, ap);
	va_end(ap);
	return EXIT_USAGE;
}

int rc_dial(const char *path)
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

int rc_unreachable(const char *path, const char *what)
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
static int call(const struct rc_opts *o, Raftd__ClientRequest *req, unsigned retry_ms,
                Raftd__ClientResponse **resp)
{
	uint64_t until = rd_clock_now_ms() + retry_ms;
	uint8_t *in;
	size_t inlen;
	int fd, rv;

	while ((fd = rc_dial(o->socket)) < 0) {
		if (rd_clock_now_ms() >= until)
			return rc_unreachable(o->socket, strerror(errno));
		usleep(100 * 1000);
	}
	req->request_id = 1;
	if (req->deadline_ms == 0)
		req->deadline_ms = o->timeout_ms;
	rv = rd_ctl_send_request(fd, req);
	if (rv == RD_ENOMEM) {
		close(fd);
		return EXIT_FAILED;
	}
	if (rv != 0) {
		close(fd);
		return rc_unreachable(o->socket, strerror(errno));
	}
	/* The node answers every request by its deadline (TIMEOUT at the
	 * latest); a node that does not (stopped by a debugger, stuck in a
	 * dying disk) must not keep the caller waiting forever. */
	uint64_t wait_ms = (uint64_t)req->deadline_ms + REPLY_GRACE_MS;
	struct timeval tv = {.tv_sec = (time_t)(wait_ms / 1000),
	                     .tv_usec = (suseconds_t)(wait_ms % 1000) * 1000};
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	rv = rd_frame_read_fd(fd, MAX_RESPONSE, &in, &inlen);
	int read_errno = errno;
	close(fd);
	if (rv == RD_EIO && (read_errno == EAGAIN || read_errno == EWOULDBLOCK)) {
		fprintf(
		    stderr,
		    "raftctl: no answer from %s within %llu ms (the request's deadline "
		    "and %u ms more): outcome unknown\n",
		    o->socket, (unsigned long long)wait_ms, REPLY_GRACE_MS);
		return RC_EXIT_UNKNOWN;
	}
	if (rv != 0)
		return rc_unreachable(o->socket, rv == RD_ECLOSED
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

/* ---- request builders ---------------------------------------------------- */

int rc_need(int argc, int want, const char *cmd)
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

/* Make `c->op` the request's operation: its message lives in rq->op, is
 * initialised to its defaults, and is returned for the builder to fill. The
 * oneof member is found through the generated descriptor (protobuf-c makes
 * op_case the field number), so no builder names the envelope's field. */
static void *op_msg(const struct cmd *c, struct rc_request *rq)
{
	const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(
	    &raftd__client_request__descriptor, (unsigned)c->op);

	protobuf_c_message_init(f->descriptor, &rq->op);
	rq->req.op_case = c->op;
	*(void **)((char *)&rq->req + f->offset) = &rq->op;
	return &rq->op;
}

/* The field `name` of the operation message in rq->op (a field the
 * generated code has, of type `type`: a mismatch is a bug in the table). */
static void *field(struct rc_request *rq, const char *name, ProtobufCType type)
{
	const ProtobufCMessageDescriptor *d = ((ProtobufCMessage *)&rq->op)->descriptor;
	const ProtobufCFieldDescriptor *f =
	    protobuf_c_message_descriptor_get_field_by_name(d, name);

	assert(f != NULL && f->type == type);
	return (char *)&rq->op + f->offset;
}

/* The commands whose arguments are bytes fields in order (put, get,
 * delete, meta put, meta get) or nothing at all (status, groups, members,
 * shutdown), with at most one boolean flag (--stale). */
static int build_fields(const struct cmd *c, struct rc_request *rq, int argc, char **argv)
{
	int n = 0;

	op_msg(c, rq);
	while (c->fields != NULL && c->fields[n] != NULL)
		n++;
	if (c->flag != NULL) {
		char flag[32];
		snprintf(flag, sizeof flag, "--%s", c->flag);
		*(protobuf_c_boolean *)field(rq, c->flag, PROTOBUF_C_TYPE_BOOL) =
		    take_flag(&argc, argv, flag);
	}
	if (rc_need(argc, n, c->name))
		return EXIT_USAGE;
	for (int i = 0; i < n; i++)
		*(ProtobufCBinaryData *)field(rq, c->fields[i], PROTOBUF_C_TYPE_BYTES) =
		    bin(argv[i]);
	rq->what = c->what;
	rq->key = n > 0 ? argv[0] : NULL;
	return 0;
}

static int build_cas(const struct cmd *c, struct rc_request *rq, int argc, char **argv)
{
	Raftd__CasRequest *cas = op_msg(c, rq);

	cas->expected_absent = take_flag(&argc, argv, "--absent");
	if (cas->expected_absent) {
		if (rc_need(argc, 2, "cas --absent"))
			return EXIT_USAGE;
		cas->key = bin(argv[0]);
		cas->value = bin(argv[1]);
	} else {
		if (rc_need(argc, 3, c->name))
			return EXIT_USAGE;
		cas->key = bin(argv[0]);
		cas->expected = bin(argv[1]);
		cas->value = bin(argv[2]);
	}
	return 0;
}

static int build_propose(const struct cmd *c, struct rc_request *rq, int argc,
                         char **argv)
{
	Raftd__ProposeRequest *p = op_msg(c, rq);
	const char *v = take_opt(&argc, argv, "--vshard");
	uint64_t vs;

	if (v == NULL || !parse_u64(v, &vs) || vs >= 1024)
		return usage_error("propose needs --vshard V with V in 0..1023");
	if (rc_need(argc, 1, c->name))
		return EXIT_USAGE;
	p->vshard = (uint32_t)vs;
	p->data = bin(argv[0]);
	return 0;
}

/* A positive node id, or a usage error. */
static int node_id(const char *s, uint64_t *id)
{
	if (!parse_u64(s, id) || *id == 0)
		return usage_error("node id '%s' is not a positive integer", s);
	return 0;
}

/* members add ID ADDR [--learner] / members remove ID / members promote ID. */
static int build_member(const struct cmd *c, struct rc_request *rq, int argc, char **argv)
{
	bool add = c->op == RAFTD__CLIENT_REQUEST__OP_MEMBERS_ADD;
	bool learner = add && take_flag(&argc, argv, "--learner");
	uint64_t id;

	if (rc_need(argc, add ? 2 : 1, c->name))
		return EXIT_USAGE;
	if (node_id(argv[0], &id) != 0)
		return EXIT_USAGE;
	op_msg(c, rq);
	if (add) {
		rq->op.members_add.node_id = id;
		rq->op.members_add.address = argv[1];
		rq->op.members_add.learner = learner;
	} else if (c->op == RAFTD__CLIENT_REQUEST__OP_MEMBERS_PROMOTE) {
		rq->op.members_promote.node_id = id;
	} else {
		rq->op.members_remove.node_id = id;
	}
	return 0;
}

static int build_transfer(const struct cmd *c, struct rc_request *rq, int argc,
                          char **argv)
{
	Raftd__TransferLeaderRequest *t = op_msg(c, rq);

	if (rc_need(argc, 2, c->name))
		return EXIT_USAGE;
	if (!parse_u64(argv[0], &t->group) || !parse_u64(argv[1], &t->node_id) ||
	    t->node_id == 0)
		return usage_error("transfer-leader takes a group number and a node id");
	return 0;
}

/* ready [--wait S]: the node may hold the answer back up to S seconds
 * (deadline_ms), and the connection is retried as long; the answer is
 * printed whatever its error. */
static int build_ready(const struct cmd *c, struct rc_request *rq, int argc, char **argv)
{
	const char *w = take_opt(&argc, argv, "--wait");
	uint64_t wait_s = 0;

	(void)argv;
	if (w != NULL && !parse_u64(w, &wait_s))
		return usage_error("--wait takes a number of seconds");
	if (rc_need(argc, 0, c->name))
		return EXIT_USAGE;
	op_msg(c, rq);
	rq->req.deadline_ms = wait_s > 0 ? (uint32_t)(wait_s * 1000) : 1;
	rq->retry_ms = (unsigned)(wait_s * 1000);
	rq->prints_errors = true;
	return 0;
}

/* tail and watch are streams, not one round trip: they build a
 * SubscribeRequest and run it in rc_stream. */
static int stream_cmd(const struct rc_opts *o, const struct cmd *c, int argc, char **argv)
{
	Raftd__SubscribeRequest sub = RAFTD__SUBSCRIBE_REQUEST__INIT;
	const char *v;
	uint64_t x, count = 0;
	int fd, scopes = 0;

	if ((v = take_opt(&argc, argv, "--count")) != NULL &&
	    (!parse_u64(v, &count) || count == 0))
		return usage_error("--count takes a positive number of entries");
	if (strcmp(c->name, "watch") == 0) {
		sub.watch = true;
		sub.scope = RAFTD__SUBSCRIBE_SCOPE__SCOPE_ALL_DATA;
		sub.from_oldest = !take_flag(&argc, argv, "--from-now");
		if (argc != 1)
			return usage_error(
			    "watch takes one PREFIX (\"\" watches every key)");
		sub.prefix = bin(argv[0]);
	} else {
		if ((v = take_opt(&argc, argv, "--vshard")) != NULL) {
			if (!parse_u64(v, &x) || x > 1023)
				return usage_error("--vshard takes V in 0..1023");
			sub.scope = RAFTD__SUBSCRIBE_SCOPE__SCOPE_VSHARD;
			sub.vshard = (uint32_t)x;
			scopes++;
		}
		if ((v = take_opt(&argc, argv, "--group")) != NULL) {
			if (!parse_u64(v, &x))
				return usage_error("--group takes a group number");
			sub.scope = RAFTD__SUBSCRIBE_SCOPE__SCOPE_GROUP;
			sub.group = x;
			scopes++;
		}
		if (take_flag(&argc, argv, "--meta")) {
			sub.scope = RAFTD__SUBSCRIBE_SCOPE__SCOPE_META;
			scopes++;
		}
		if (take_flag(&argc, argv, "--all")) {
			sub.scope = RAFTD__SUBSCRIBE_SCOPE__SCOPE_ALL_DATA;
			scopes++;
		}
		if ((v = take_opt(&argc, argv, "--from")) != NULL) {
			if (!parse_u64(v, &x) || x == 0)
				return usage_error("--from takes an index >= 1");
			sub.from_index = x;
		}
		if (scopes != 1 || argc != 0)
			return usage_error(
			    "tail takes one of --vshard V, --group G, --meta, --all");
	}
	fd = rc_dial(o->socket);
	if (fd < 0)
		return rc_unreachable(o->socket, strerror(errno));
	return rc_stream(o, fd, &sub, count);
}

/* send (--vshard V | --key KEY) DATA. */
static int build_send(const struct cmd *c, struct rc_request *rq, int argc, char **argv)
{
	Raftd__SendRequest *p = op_msg(c, rq);
	const char *v = take_opt(&argc, argv, "--vshard");
	const char *k = take_opt(&argc, argv, "--key");
	uint64_t vs = 0;

	if ((v == NULL) == (k == NULL) ||
	    (v != NULL && (!parse_u64(v, &vs) || vs >= 1024)) ||
	    (k != NULL && k[0] == '\0'))
		return usage_error("send needs --vshard V (0..1023) or --key KEY");
	if (rc_need(argc, 1, c->name))
		return EXIT_USAGE;
	p->vshard = (uint32_t)vs;
	if (k != NULL)
		p->key = bin(k);
	p->payload = bin(argv[0]);
	rq->prints_errors = true;
	return 0;
}

static const char *const key[] = {"key", NULL};
static const char *const key_value[] = {"key", "value", NULL};

/* The positional part of a table row; the build_fields extras follow it
 * by name. */
#define CMD(n, a, h, o, b, p)                                                            \
	.name = (n), .args = (a), .help = (h), .op = RAFTD__CLIENT_REQUEST__OP_##o,      \
	.build = (b), .out = (p)

static const struct cmd commands[] = {
    {CMD("put", "KEY VALUE", "linearizable write; returns once applied", PUT,
         build_fields, RC_OUT_INDEX),
     .fields = key_value},
    {CMD("get", "KEY [--stale]", "linearizable read (ReadIndex) unless --stale", GET,
         build_fields, RC_OUT_VALUE),
     .fields = key, .flag = "stale", .what = "key"},
    {CMD("delete", "KEY", "linearizable delete", DELETE, build_fields, RC_OUT_INDEX),
     .fields = key},
    {CMD("cas", "KEY EXPECTED NEW", "compare-and-set (--absent KEY NEW: only if absent)",
         CAS, build_cas, RC_OUT_INDEX)},
    {CMD("propose", "--vshard V DATA", "raw proposal to the group owning vShard V",
         PROPOSE, build_propose, RC_OUT_INDEX)},
    {CMD("meta put", "KEY VALUE", "write to the metadata group", META_PUT, build_fields,
         RC_OUT_INDEX),
     .fields = key_value},
    {CMD("meta get", "KEY [--stale]", "read from the metadata group", META_GET,
         build_fields, RC_OUT_VALUE),
     .fields = key, .flag = "stale", .what = "metadata key"},
    {CMD("status", "", "node, readiness, metadata leader, topology, loop figures", STATUS,
         build_fields, RC_OUT_STATUS)},
    {CMD("groups", "", "one row per group hosted here", GROUPS, build_fields,
         RC_OUT_GROUPS)},
    {CMD("members", "", "cluster members", MEMBERS, build_fields, RC_OUT_MEMBERS)},
    {CMD("members add", "ID ADDR [--learner]", "add a node to the cluster", MEMBERS_ADD,
         build_member, RC_OUT_INDEX)},
    {CMD("members remove", "ID", "remove a node from the cluster", MEMBERS_REMOVE,
         build_member, RC_OUT_INDEX)},
    {CMD("members promote", "ID", "make a caught-up learner of group 0 a voter",
         MEMBERS_PROMOTE, build_member, RC_OUT_INDEX)},
    {CMD("transfer-leader", "GROUP NODE", "move a group's leadership to NODE",
         TRANSFER_LEADER, build_transfer, RC_OUT_OK)},
    {CMD("send", "(--vshard V | --key KEY) DATA",
         "send an envelope to the node leading V's group; print the reply", SEND,
         build_send, RC_OUT_ENVELOPE)},
    {CMD("handle", "[--vshard V ...] -- CMD ARGS...",
         "serve envelopes: run CMD per delivery (payload on stdin)", HANDLE, NULL,
         RC_OUT_OK),
     .run = rc_handle},
    {CMD("ready", "[--wait SECONDS]", "exit 0 when ready, 1 when not (after waiting)",
         READY, build_ready, RC_OUT_READY)},
    {CMD("shutdown", "", "graceful shutdown of the node", SHUTDOWN, build_fields,
         RC_OUT_OK)},
    {CMD("tail", "(--vshard V|--group G|--meta|--all) [--from I] [--count N]",
         "print committed entries as they apply", SUBSCRIBE, NULL, RC_OUT_OK)},
    {CMD("watch", "PREFIX [--from-now] [--count N]",
         "print KV changes on keys starting with PREFIX", SUBSCRIBE, NULL, RC_OUT_OK)},
    {CMD("backup save", "FILE", "stream a backup of every group into FILE", BACKUP, NULL,
         RC_OUT_OK),
     .run = rc_backup_save},
    {CMD("backup inspect", "FILE", "verify every checksum of FILE, print its manifest",
         BACKUP, NULL, RC_OUT_OK),
     .run = rc_backup_inspect},
    {.name = NULL},
};

/* A random non-zero client id: a new session per invocation. */
static uint64_t random_client_id(void)
{
	uint64_t id = 0;
	while (id == 0)
		if (getrandom(&id, sizeof id, 0) != sizeof id)
			id = rd_clock_now_ns() ^ ((uint64_t)getpid() << 32);
	return id;
}

/* Build `c`'s request from its arguments, send it, print the answer. */
static int run(const struct rc_opts *o, const struct cmd *c, int argc, char **argv)
{
	struct rc_request rq = {.req = RAFTD__CLIENT_REQUEST__INIT};
	Raftd__ClientResponse *r;
	int rv;

	if (c->run != NULL)
		return c->run(o, argc, argv);
	if (c->build == NULL)
		return stream_cmd(o, c, argc, argv);
	rv = c->build(c, &rq, argc, argv);
	if (rv != 0)
		return rv;
	if (rd_ctl_request_is_write(c->op)) {
		rq.req.client_id = o->client_id;
		rq.req.sequence = o->sequence;
	}
	rv = call(o, &rq.req, rq.retry_ms, &r);
	if (rv != 0)
		return rv;
	if (r->error != RAFTD__ERROR_CODE__OK && !rq.prints_errors)
		rv = rc_print_failed(o, r);
	else
		rv = rc_print(c->out, o, &rq, r);
	raftd__client_response__free_unpacked(r, NULL);
	return rv;
}

int main(int argc, char **argv)
{
	struct rc_opts o = {.socket = getenv("RAFTD_SOCKET"), .timeout_ms = 5000};
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
		} else if (strcmp(argv[i], "--client-id") == 0 && i + 1 < argc) {
			if (!parse_u64(argv[++i], &o.client_id) || o.client_id == 0)
				return usage_error(
				    "--client-id takes a non-zero integer");
		} else if (strcmp(argv[i], "--sequence") == 0 && i + 1 < argc) {
			if (!parse_u64(argv[++i], &o.sequence) || o.sequence == 0)
				return usage_error("--sequence takes a non-zero integer");
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
	if (o.client_id == 0)
		o.client_id = random_client_id();
	if (o.sequence == 0)
		o.sequence = 1;
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
	for (int k = i; k < argc && strcmp(argv[k], "--") != 0; k++) {
		if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0) {
			printf("usage: raftctl [-s SOCKET] [--json] %s %s\n  %s\n",
			       match->name, match->args, match->help);
			return 0;
		}
	}
	/* Accept --json after the command too, but not among the arguments
	 * after "--" (handle's CMD ARGS are the handler's own). */
	int n = argc - i, before = 0;
	while (before < n && strcmp(argv[i + before], "--") != 0)
		before++;
	if (take_flag(&before, argv + i, "--json")) {
		o.json = true;
		memmove(&argv[i + before], &argv[i + before + 1],
		        (size_t)(n - before - 1) * sizeof *argv);
		n--;
	}
	return run(&o, match, n, argv + i);
}
