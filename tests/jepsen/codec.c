/*
 * jepsen-codec: checks the suite's hand-written protobuf codec
 * (tests/jepsen/proto.py) against the generated protobuf-c code, so that
 * the Python clients speak exactly the protocol of proto/raftd.proto.
 *
 *   jepsen-codec requests    one hex ClientRequest per stdin line; prints a
 *                            canonical line per request as decoded by
 *                            protobuf-c (or "undecodable")
 *   jepsen-codec responses   prints a fixed set of ClientResponses packed by
 *                            protobuf-c, one hex line each; test_codec.py
 *                            holds what each must decode to
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raftd.pb-c.h"

static void hex(const char *name, const ProtobufCBinaryData *b)
{
	printf(" %s=", name);
	for (size_t i = 0; i < b->len; i++)
		printf("%02x", b->data[i]);
}

static int unhex(const char *s, uint8_t *out, size_t cap, size_t *len)
{
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		n--;
	if (n % 2 != 0 || n / 2 > cap)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	*len = n / 2;
	return 0;
}

static void print_request(const Raftd__ClientRequest *r)
{
	printf("id=%" PRIu64 " deadline=%" PRIu32, r->request_id, r->deadline_ms);
	switch (r->op_case) {
	case RAFTD__CLIENT_REQUEST__OP_PUT:
		printf(" op=put");
		hex("key", &r->put->key);
		hex("value", &r->put->value);
		break;
	case RAFTD__CLIENT_REQUEST__OP_GET:
		printf(" op=get");
		hex("key", &r->get->key);
		printf(" stale=%d", r->get->stale);
		break;
	case RAFTD__CLIENT_REQUEST__OP_DELETE:
		printf(" op=delete");
		hex("key", &r->delete_->key);
		break;
	case RAFTD__CLIENT_REQUEST__OP_CAS:
		printf(" op=cas");
		hex("key", &r->cas->key);
		hex("expected", &r->cas->expected);
		hex("value", &r->cas->value);
		printf(" absent=%d", r->cas->expected_absent);
		break;
	case RAFTD__CLIENT_REQUEST__OP_STATUS:
		printf(" op=status");
		break;
	case RAFTD__CLIENT_REQUEST__OP_GROUPS:
		printf(" op=groups");
		break;
	case RAFTD__CLIENT_REQUEST__OP_READY:
		printf(" op=ready");
		break;
	default:
		printf(" op=other(%d)", (int)r->op_case);
	}
	printf("\n");
}

static int requests(void)
{
	static char line[1 << 16];
	static uint8_t buf[1 << 15];
	size_t len;

	while (fgets(line, sizeof line, stdin) != NULL) {
		Raftd__ClientRequest *r;
		if (unhex(line, buf, sizeof buf, &len) != 0 ||
		    (r = raftd__client_request__unpack(NULL, len, buf)) == NULL) {
			printf("undecodable\n");
			continue;
		}
		print_request(r);
		raftd__client_request__free_unpacked(r, NULL);
	}
	return 0;
}

static void emit(const Raftd__ClientResponse *r)
{
	size_t len = raftd__client_response__get_packed_size(r);
	uint8_t *buf = malloc(len + 1);
	if (buf == NULL)
		exit(1);
	raftd__client_response__pack(r, buf);
	for (size_t i = 0; i < len; i++)
		printf("%02x", buf[i]);
	printf("\n");
	free(buf);
}

static ProtobufCBinaryData bin(const char *s)
{
	ProtobufCBinaryData b = {strlen(s), (uint8_t *)s};
	return b;
}

/* A response to request `id` with no result. */
static Raftd__ClientResponse response(uint64_t id)
{
	Raftd__ClientResponse r = RAFTD__CLIENT_RESPONSE__INIT;
	r.request_id = id;
	return r;
}

/* Response `r` with a value result (found, holding `value`, unless NULL),
 * packed and printed. */
static void emit_value(Raftd__ClientResponse *r, const char *value)
{
	Raftd__ValueResult v = RAFTD__VALUE_RESULT__INIT;
	if (value != NULL) {
		v.found = 1;
		v.value = bin(value);
	}
	r->result_case = RAFTD__CLIENT_RESPONSE__RESULT_VALUE;
	r->value = &v;
	emit(r);
}

/* A groups row's Raft figures. */
static void group_row(Raftd__GroupRow *g, uint32_t group, Raftd__GroupRole role,
                      uint64_t leader, uint64_t term, uint64_t commit, uint64_t applied,
                      uint64_t last_index)
{
	raftd__group_row__init(g);
	g->group = group;
	g->role = role;
	g->leader = leader;
	g->term = term;
	g->commit = commit;
	g->applied = applied;
	g->last_index = last_index;
}

static int responses(void)
{
	Raftd__ClientResponse r;
	Raftd__IndexResult ix = RAFTD__INDEX_RESULT__INIT;
	Raftd__StatusResult st = RAFTD__STATUS_RESULT__INIT;
	Raftd__Topology topo = RAFTD__TOPOLOGY__INIT;
	Raftd__Member m1 = RAFTD__MEMBER__INIT, *mp[1] = {&m1};
	Raftd__LoopStats loop = RAFTD__LOOP_STATS__INIT;
	Raftd__GroupsResult gr = RAFTD__GROUPS_RESULT__INIT;
	Raftd__GroupRow g0, g1, *gp[2] = {&g0, &g1};
	uint64_t routing[4] = {1, 2, 1, 2}, voters0[3] = {1, 2, 3}, voters1[2] = {2, 3};
	uint64_t learners1[1] = {1}, placement1[3] = {1, 2, 3};
	uint32_t vshards1[3] = {0, 511, 1023};

	/* 1: get answered with a value. */
	r = response(7);
	emit_value(&r, "abc");

	/* 2: CAS_FAILED with the current value. */
	r = response(8);
	r.error = RAFTD__ERROR_CODE__CAS_FAILED;
	r.error_message = "value differs";
	emit_value(&r, "cur");

	/* 3: NOT_LEADER with a hint, no result. */
	r = response(9);
	r.error = RAFTD__ERROR_CODE__NOT_LEADER;
	r.leader_hint = 3;
	emit(&r);

	/* 4: a write's index. */
	r = response(10);
	ix.group = 5;
	ix.index = 1234567890123ull;
	r.result_case = RAFTD__CLIENT_RESPONSE__RESULT_INDEX;
	r.index = &ix;
	emit(&r);

	/* 5: status, with fields the suite skips (topology, loop). */
	r = response(11);
	st.node_id = 2;
	st.ready = 1;
	st.meta_leader = 3;
	m1.id = 1;
	m1.address = "127.0.0.1:7001";
	topo.version = 4;
	topo.n_members = 1;
	topo.members = mp;
	topo.n_routing = 4;
	topo.routing = routing;
	st.topology = &topo;
	loop.iterations = 100;
	st.loop = &loop;
	st.state_machine_hash = 0xfedcba9876543210ull;
	st.version = "0.1.0";
	st.uptime_ms = 99;
	r.result_case = RAFTD__CLIENT_RESPONSE__RESULT_STATUS;
	r.status = &st;
	emit(&r);

	/* 6: groups. */
	r = response(12);
	group_row(&g0, 0, RAFTD__GROUP_ROLE__ROLE_LEADER, 2, 7, 40, 39, 41);
	g0.n_voters = 3;
	g0.voters = voters0;
	group_row(&g1, 1, RAFTD__GROUP_ROLE__ROLE_FOLLOWER, 3, 300, 100000, 100000,
	          100001);
	g1.n_voters = 2;
	g1.voters = voters1;
	g1.n_learners = 1;
	g1.learners = learners1;
	g1.n_vshards = 3;
	g1.vshards = vshards1;
	g1.n_placement = 3;
	g1.placement = placement1;
	gr.n_groups = 2;
	gr.groups = gp;
	r.result_case = RAFTD__CLIENT_RESPONSE__RESULT_GROUPS;
	r.groups = &gr;
	emit(&r);

	/* 7: an absent key, a large request id. */
	r = response((1ull << 63) + 5);
	emit_value(&r, NULL);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "requests") == 0)
		return requests();
	if (argc == 2 && strcmp(argv[1], "responses") == 0)
		return responses();
	fprintf(stderr, "usage: jepsen-codec requests|responses\n");
	return 2;
}
