/*
 * raftctl's output: each response as a human table or line, or as one JSON
 * document with --json (written through util/json.h only). Human output is
 * what tests/cluster and tests/ops read, so its columns are a contract.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "raftctl.h"
#include "transport/wire.h"
#include "storage/backup.h"
#include "util/fatal.h"
#include "util/json.h"

/* Print the finished document `j` and a newline, then free it. */
static void emit(struct rd_json *j)
{
	printf("%s\n", j->buf);
	rd_json_free(j);
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

/*
 * "name": value for each of the space-separated `names` of message `m`'s
 * fields, in that order (NULL: every field, in the order of the .proto),
 * for the uint64, bool and string fields that --json prints as they are.
 * A name the message lacks or a field of another type is a bug of the
 * caller: it aborts.
 */
static void jfields(struct rd_json *j, const ProtobufCMessage *m, const char *names)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	char name[64];

	for (unsigned i = 0; names != NULL ? *names != '\0' : i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const void *v;

		if (names != NULL) {
			size_t n = strcspn(names, " ");
			snprintf(name, sizeof name, "%.*s", (int)n, names);
			names += n + strspn(names + n, " ");
			f = protobuf_c_message_descriptor_get_field_by_name(d, name);
			if (f == NULL)
				rd_fatal("raftctl: %s has no field %s", d->name, name);
		}
		v = (const char *)m + f->offset;
		rd_json_key(j, f->name);
		if (f->type == PROTOBUF_C_TYPE_UINT64)
			rd_json_u64(j, *(const uint64_t *)v);
		else if (f->type == PROTOBUF_C_TYPE_BOOL)
			rd_json_bool(j, *(const protobuf_c_boolean *)v);
		else if (f->type == PROTOBUF_C_TYPE_STRING)
			rd_json_str(j, *(const char *const *)v);
		else
			rd_fatal("raftctl: %s.%s is not printed as it is", d->name,
			         f->name);
	}
}

static const char *code_name(Raftd__ErrorCode c)
{
	const char *name = rd_wire_code_name((int)c);
	return name != NULL ? name : "UNKNOWN";
}

int rc_print_failed(const struct rc_opts *o, const Raftd__ClientResponse *r)
{
	if (o->json) {
		struct rd_json j;
		rd_json_init(&j);
		rd_json_obj_begin(&j);
		jstr(&j, "error", code_name(r->error));
		jstr(&j, "message", r->error_message);
		jstr(&j, "outcome", rd_wire_outcome_name(rd_wire_outcome(r->error)));
		if (r->leader_hint) {
			ju64(&j, "leader_hint", r->leader_hint);
		}
		if (r->result_case == RAFTD__CLIENT_RESPONSE__RESULT_VALUE) {
			jbool(&j, "found", r->value->found);
			rd_json_key(&j, "value");
			rd_json_bytes(&j, r->value->value.data, r->value->value.len);
		}
		rd_json_obj_end(&j);
		emit(&j);
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
	enum rd_outcome oc = rd_wire_outcome(r->error);
	fprintf(stderr, " [%s]\n", rd_wire_outcome_name(oc));
	return oc == RD_OUTCOME_NOT_APPLIED ? RC_EXIT_FAILED : RC_EXIT_UNKNOWN;
}

static int print_index(const struct rc_opts *o, const struct rc_request *rq,
                       const Raftd__ClientResponse *r)
{
	uint64_t g = 0, i = 0;

	(void)rq;
	if (r->result_case == RAFTD__CLIENT_RESPONSE__RESULT_INDEX)
		g = r->index->group, i = r->index->index;
	if (o->json) {
		struct rd_json j;
		rd_json_init(&j);
		rd_json_obj_begin(&j);
		jbool(&j, "ok", 1);
		ju64(&j, "group", g);
		ju64(&j, "index", i);
		rd_json_obj_end(&j);
		emit(&j);
	} else {
		printf("OK group=%" PRIu64 " index=%" PRIu64 "\n", g, i);
	}
	return 0;
}

static int print_value(const struct rc_opts *o, const struct rc_request *rq,
                       const Raftd__ClientResponse *r)
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
		emit(&j);
		return 0;
	}
	if (v == NULL || !v->found) {
		fprintf(stderr, "raftctl: %s '%s' not found\n", rq->what, rq->key);
		return RC_EXIT_FAILED;
	}
	fwrite(v->value.data, 1, v->value.len, stdout);
	putchar('\n');
	return 0;
}

/* {"<key>":<v>} with --json, else `text`. */
static void one_bool(const struct rc_opts *o, const char *key, int v, const char *text)
{
	if (o->json) {
		struct rd_json j;
		rd_json_init(&j);
		rd_json_obj_begin(&j);
		jbool(&j, key, v);
		rd_json_obj_end(&j);
		emit(&j);
	} else {
		printf("%s\n", text);
	}
}

static int print_ok(const struct rc_opts *o, const struct rc_request *rq,
                    const Raftd__ClientResponse *r)
{
	(void)rq, (void)r;
	one_bool(o, "ok", 1, "OK");
	return 0;
}

static int print_ready(const struct rc_opts *o, const struct rc_request *rq,
                       const Raftd__ClientResponse *r)
{
	int ready = r->error == RAFTD__ERROR_CODE__OK;

	(void)rq;
	one_bool(o, "ready", ready, ready ? "ready" : "not ready");
	return ready ? 0 : RC_EXIT_FAILED;
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

/* status, groups and members differ only in their two renderings; show()
 * does the rest: the result-kind check and the JSON document around it. */
struct view {
	Raftd__ClientResponse__ResultCase result;
	void (*json)(struct rd_json *j, const Raftd__ClientResponse *r);
	void (*table)(const Raftd__ClientResponse *r);
};

static int show(const struct rc_opts *o, const Raftd__ClientResponse *r,
                const struct view *v)
{
	if (r->result_case != v->result)
		return 0;
	if (o->json) {
		struct rd_json j;
		rd_json_init(&j);
		v->json(&j, r);
		emit(&j);
	} else {
		v->table(r);
	}
	return 0;
}

static void groups_json(struct rd_json *j, const Raftd__ClientResponse *r)
{
	const Raftd__GroupsResult *g = r->groups;

	rd_json_arr_begin(j);
	for (size_t i = 0; i < g->n_groups; i++) {
		const Raftd__GroupRow *row = g->groups[i];
		rd_json_obj_begin(j);
		ju64(j, "group", row->group);
		jstr(j, "role", role_name(row->role));
		jfields(j, &row->base, "leader term commit applied last_index");
		json_ids(j, "voters", row->voters, row->n_voters);
		json_ids(j, "learners", row->learners, row->n_learners);
		ju64(j, "vshards", row->n_vshards);
		json_ids(j, "placement", row->placement, row->n_placement);
		rd_json_obj_end(j);
	}
	rd_json_arr_end(j);
}

static void groups_table(const Raftd__ClientResponse *r)
{
	const Raftd__GroupsResult *g = r->groups;
	char voters[256], learners[256], placement[256];

	printf("%-6s %-13s %-7s %-6s %-8s %-8s %-12s %-8s %-7s %s\n", "GROUP", "ROLE",
	       "LEADER", "TERM", "COMMIT", "APPLIED", "VOTERS", "LEARNERS", "VSHARDS",
	       "PLACEMENT");
	for (size_t i = 0; i < g->n_groups; i++) {
		const Raftd__GroupRow *row = g->groups[i];
		ids(voters, sizeof voters, row->voters, row->n_voters);
		ids(learners, sizeof learners, row->learners, row->n_learners);
		ids(placement, sizeof placement, row->placement, row->n_placement);
		printf("%-6" PRIu64 " %-13s %-7" PRIu64 " %-6" PRIu64 " %-8" PRIu64
		       " %-8" PRIu64 " %-12s %-8s %-7zu %s\n",
		       row->group, role_name(row->role), row->leader, row->term,
		       row->commit, row->applied, voters, learners, row->n_vshards,
		       placement);
	}
	printf("topology version %" PRIu64 "\n", g->topology_version);
}

static void members_json(struct rd_json *j, const Raftd__ClientResponse *r)
{
	const Raftd__MembersResult *m = r->members;

	rd_json_obj_begin(j);
	ju64(j, "topology_version", m->topology_version);
	rd_json_key(j, "members");
	rd_json_arr_begin(j);
	for (size_t i = 0; i < m->n_members; i++) {
		rd_json_obj_begin(j);
		jfields(j, &m->members[i]->base, "id address");
		jstr(j, "role", member_role(m->members[i]->role));
		jbool(j, "self", m->members[i]->self);
		{
			char inc[17];
			snprintf(inc, sizeof inc, "%016" PRIx64,
			         m->members[i]->incarnation);
			jstr(j, "incarnation", inc);
		}
		jbool(j, "connected", m->members[i]->connected);
		ju64(j, "rtt_us", m->members[i]->rtt_us);
		rd_json_obj_end(j);
	}
	rd_json_arr_end(j);
	rd_json_obj_end(j);
}

static void members_table(const Raftd__ClientResponse *r)
{
	const Raftd__MembersResult *m = r->members;

	printf("%-6s %-24s %-8s %-10s %-10s %s\n", "ID", "ADDRESS", "ROLE", "CONNECTED",
	       "RTT", "INCARNATION");
	for (size_t i = 0; i < m->n_members; i++) {
		const Raftd__MemberRow *row = m->members[i];
		char rtt[32];
		if (row->self)
			snprintf(rtt, sizeof rtt, "(self)");
		else if (row->rtt_us)
			snprintf(rtt, sizeof rtt, "%.2fms", (double)row->rtt_us / 1000.0);
		else
			snprintf(rtt, sizeof rtt, "-");
		printf("%-6" PRIu64 " %-24s %-8s %-10s %-10s %016" PRIx64 "\n", row->id,
		       row->address, member_role(row->role),
		       row->self        ? "-"
		       : row->connected ? "yes"
		                        : "no",
		       rtt, row->incarnation);
	}
}

static void status_json(struct rd_json *j, const Raftd__ClientResponse *r)
{
	const Raftd__StatusResult *s = r->status;
	const Raftd__LoopStats *l = s->loop;
	size_t n_members = s->topology != NULL ? s->topology->n_members : 0;

	rd_json_obj_begin(j);
	jfields(j, &s->base,
	        "node_id version ready meta_leader uptime_ms state_machine_hash");
	ju64(j, "topology_version", s->topology != NULL ? s->topology->version : 0);
	jfields(j, &s->base,
	        "disk_slow disk_evacuations canary_checks canary_violations");
	rd_json_key(j, "members");
	rd_json_arr_begin(j);
	for (size_t i = 0; i < n_members; i++) {
		rd_json_obj_begin(j);
		jfields(j, &s->topology->members[i]->base, "id address");
		rd_json_obj_end(j);
	}
	rd_json_arr_end(j);
	if (l != NULL) {
		rd_json_key(j, "loop");
		rd_json_obj_begin(j);
		jfields(j, &l->base, NULL);
		rd_json_obj_end(j);
	}
	rd_json_obj_end(j);
}

static void status_table(const Raftd__ClientResponse *r)
{
	const Raftd__StatusResult *s = r->status;
	const Raftd__LoopStats *l = s->loop;
	size_t n_members = s->topology != NULL ? s->topology->n_members : 0;

	printf("%-20s %" PRIu64 "\n", "node", s->node_id);
	printf("%-20s %s\n", "version", s->version);
	printf("%-20s %s\n", "ready", s->ready ? "yes" : "no");
	printf("%-20s %" PRIu64 "\n", "metadata leader", s->meta_leader);
	printf("%-20s %.1fs\n", "uptime", (double)s->uptime_ms / 1000.0);
	printf("%-20s %016" PRIx64 "\n", "state machine hash", s->state_machine_hash);
	printf("%-20s %s (evacuations %" PRIu64 ")\n", "disk",
	       s->disk_slow ? "slow: leadership moved away" : "ok", s->disk_evacuations);
	printf("%-20s %" PRIu64 " checks, %" PRIu64 " violations\n", "canary",
	       s->canary_checks, s->canary_violations);
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

static const struct view groups_view = {RAFTD__CLIENT_RESPONSE__RESULT_GROUPS,
                                        groups_json, groups_table};
static const struct view members_view = {RAFTD__CLIENT_RESPONSE__RESULT_MEMBERS,
                                         members_json, members_table};
static const struct view status_view = {RAFTD__CLIENT_RESPONSE__RESULT_STATUS,
                                        status_json, status_table};

static int print_groups(const struct rc_opts *o, const struct rc_request *rq,
                        const Raftd__ClientResponse *r)
{
	(void)rq;
	return show(o, r, &groups_view);
}

static int print_members(const struct rc_opts *o, const struct rc_request *rq,
                         const Raftd__ClientResponse *r)
{
	(void)rq;
	return show(o, r, &members_view);
}

static int print_status(const struct rc_opts *o, const struct rc_request *rq,
                        const Raftd__ClientResponse *r)
{
	(void)rq;
	return show(o, r, &status_view);
}

/* Whether an envelope that failed with `c` reached a handler. */
static const char *delivery_outcome(Raftd__ErrorCode c)
{
	switch (c) {
	case RAFTD__ERROR_CODE__APP_ERROR:
		return "delivered: the handler answered with an error";
	case RAFTD__ERROR_CODE__TIMEOUT:
	case RAFTD__ERROR_CODE__UNAVAILABLE:
	case RAFTD__ERROR_CODE__INTERNAL:
		return "outcome unknown: the envelope may have been delivered";
	default:
		return "not delivered";
	}
}

static int print_envelope(const struct rc_opts *o, const struct rc_request *rq,
                          const Raftd__ClientResponse *r)
{
	const Raftd__EnvelopeResult *e =
	    r->result_case == RAFTD__CLIENT_RESPONSE__RESULT_ENVELOPE ? r->envelope
	                                                              : NULL;

	(void)rq;
	if (r->error != RAFTD__ERROR_CODE__OK) {
		rc_print_failed(o, r);
		fprintf(stderr, "raftctl: %s\n", delivery_outcome(r->error));
		return RC_EXIT_FAILED;
	}
	if (o->json) {
		struct rd_json j;
		rd_json_init(&j);
		rd_json_obj_begin(&j);
		jbool(&j, "ok", 1);
		ju64(&j, "node", e != NULL ? e->node : 0);
		ju64(&j, "group", e != NULL ? e->group : 0);
		rd_json_key(&j, "payload");
		rd_json_bytes(&j, e != NULL ? e->payload.data : NULL,
		              e != NULL ? e->payload.len : 0);
		rd_json_obj_end(&j);
		emit(&j);
	} else if (e != NULL) {
		fwrite(e->payload.data, 1, e->payload.len, stdout);
	}
	return 0;
}

int rc_print(enum rc_output out, const struct rc_opts *o, const struct rc_request *rq,
             const Raftd__ClientResponse *r)
{
	static int (*const printers[])(const struct rc_opts *, const struct rc_request *,
	                               const Raftd__ClientResponse *) = {
	    [RC_OUT_INDEX] = print_index,   [RC_OUT_VALUE] = print_value,
	    [RC_OUT_OK] = print_ok,         [RC_OUT_STATUS] = print_status,
	    [RC_OUT_GROUPS] = print_groups, [RC_OUT_MEMBERS] = print_members,
	    [RC_OUT_READY] = print_ready,   [RC_OUT_ENVELOPE] = print_envelope,
	};
	return printers[out](o, rq, r);
}

/* ---- backup --------------------------------------------------------------- */

void rc_print_backup_saved(const struct rc_opts *o, const char *file, uint32_t groups,
                           uint64_t bytes, double seconds)
{
	if (o->json) {
		struct rd_json j;
		rd_json_init(&j);
		rd_json_obj_begin(&j);
		jstr(&j, "file", file);
		ju64(&j, "groups", groups);
		ju64(&j, "bytes", bytes);
		rd_json_key(&j, "seconds");
		rd_json_double(&j, seconds);
		rd_json_obj_end(&j);
		emit(&j);
		return;
	}
	printf("OK %s groups=%u bytes=%" PRIu64 " seconds=%.1f\n", file, groups, bytes,
	       seconds);
}

void rc_print_manifest(const struct rc_opts *o, const char *file, uint64_t size,
                       const struct rd_backup_manifest *m)
{
	time_t t = (time_t)(m->created_ms / 1000);
	struct tm tm;
	char when[32];

	gmtime_r(&t, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (o->json) {
		struct rd_json j;
		rd_json_init(&j);
		rd_json_obj_begin(&j);
		jstr(&j, "file", file);
		jbool(&j, "verified", 1);
		ju64(&j, "bytes", size);
		ju64(&j, "format", m->version);
		jstr(&j, "cluster_id", m->cluster_id);
		jstr(&j, "created", when);
		ju64(&j, "created_ms", m->created_ms);
		ju64(&j, "node", m->node);
		ju64(&j, "data_groups", m->data_groups);
		rd_json_key(&j, "groups");
		rd_json_arr_begin(&j);
		for (size_t i = 0; i < m->n_groups; i++) {
			const struct rd_backup_group *g = &m->groups[i];
			rd_json_obj_begin(&j);
			ju64(&j, "group", g->group);
			ju64(&j, "index", g->index);
			ju64(&j, "term", g->term);
			ju64(&j, "bytes", g->bytes);
			ju64(&j, "chunks", g->chunks);
			ju64(&j, "hash", g->crc);
			rd_json_obj_end(&j);
		}
		rd_json_arr_end(&j);
		rd_json_obj_end(&j);
		emit(&j);
		return;
	}
	printf("file         %s\n"
	       "verified     every checksum\n"
	       "bytes        %" PRIu64 "\n"
	       "format       %u\n"
	       "cluster      %s\n"
	       "created      %s\n"
	       "saved by     node %" PRIu64 "\n"
	       "data groups  %u\n\n",
	       file, size, m->version, m->cluster_id, when, m->node, m->data_groups);
	printf("%-6s %-10s %-6s %-12s %-7s %s\n", "GROUP", "INDEX", "TERM", "BYTES",
	       "CHUNKS", "HASH");
	for (size_t i = 0; i < m->n_groups; i++) {
		const struct rd_backup_group *g = &m->groups[i];
		printf("%-6" PRIu64 " %-10" PRIu64 " %-6" PRIu64 " %-12" PRIu64
		       " %-7u %08x\n",
		       g->group, g->index, g->term, g->bytes, g->chunks, g->crc);
	}
}
