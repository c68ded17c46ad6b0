/*
 * Joining a running cluster ([cluster] join = ADDR, ...), both sides.
 *
 * The joining node (rd_join_run), once, before it opens any group: its
 * data directory is empty, so it holds no Raft state and founds nothing. It
 * dials every join address (the server may prove any node id the CA signed,
 * rd_transport_peer_add_any) and sends a JoinRequest with its id, address
 * and incarnation. A member that does not lead group 0 answers NOT_LEADER
 * with the leader's id and address, and the node asks the leader next. The
 * leader's OK carries the cluster id, the members and the routing table;
 * the node records them in its catalog ("joined" first: a directory that
 * joined founds nothing, lib/README.md "Replacing a wiped node"; the routing
 * table last: it marks the join done) and the runtime starts as a
 * learner of group 0 that the leader catches up by log or snapshot. A
 * restart finds the routing table and skips all of this.
 *
 * The group-0 leader (rd_join_serve): the request is checked (the id is the
 * certificate's; no live incarnation holds it; the address parses), then
 * proposed as the conf change `raftctl members add --learner` proposes
 * (member_ops.c), carrying the new replica's incarnation: that entry is its
 * registration (member record: joining). The answer leaves once the entry
 * applied here; a retried request of the same incarnation after that is
 * answered OK at once. The leader promotes the learner once its match index
 * is within [cluster] promote_max_lag, while group 0 has fewer than 5
 * voters (rd_membership_reconcile).
 *
 * Why it is safe (thesis §4.1, §4.2.1): the node enters group 0 through one
 * single-server change, as a learner that counts in no majority until the
 * log it holds is the leader's; it has cast no vote, and its replica
 * identity is the new incarnation's, so no message meant for another
 * replica of its id is ever stepped here (replicas.c).
 *
 * Failure modes: no member answers (down, unreachable, not yet started):
 * retried with backoff (100 ms doubling to 5 s), one log line per outcome;
 * refused (INVALID: an id held by a live incarnation, a bad address, an
 * id that is not the certificate's): logged and the node exits with the
 * config error status (RD_ECONFIG), nothing changed; TIMEOUT after the proposal (outcome
 * unknown): the retry is answered OK if the change applied, else proposed again.
 */
#include <event2/event.h>
#include <inttypes.h>
#include <protobuf-c/protobuf-c.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/members.h"
#include "multiraft/node_internal.h"
#include "raftd.pb-c.h"
#include "transport/transport.h"
#include "transport/wire.h"
#include "util/err.h"
#include "util/log.h"

#define JOIN_BACKOFF_MIN_MS 100
#define JOIN_BACKOFF_MAX_MS 5000
#define JOIN_CALL_MS        15000
/* Leaders named by NOT_LEADER answers, kept as extra addresses to ask. */
#define JOIN_MAX_HINTS 8
#define JOIN_MEMBERS   "join_members" /* catalog: "id@addr,id@addr,..." */

/* ---- the group-0 leader's side -------------------------------------------- */

static Raftd__MemberRole role_in(const struct rd_conf_state *cs, uint64_t id)
{
	switch (rd_group_conf_role(cs, id)) {
	case RD_CONF_ROLE_VOTER:
		return RAFTD__MEMBER_ROLE__MEMBER_VOTER;
	case RD_CONF_ROLE_LEARNER:
		return RAFTD__MEMBER_ROLE__MEMBER_LEARNER;
	default:
		return RAFTD__MEMBER_ROLE__MEMBER_REMOVED;
	}
}

void rd_join_respond(struct rd_node *n, struct rd_transport_responder *r, uint64_t node,
                     int code, const char *message)
{
	Raftd__PeerResponse resp = RAFTD__PEER_RESPONSE__INIT;
	Raftd__JoinResponse jr = RAFTD__JOIN_RESPONSE__INIT;
	Raftd__Topology topo = RAFTD__TOPOLOGY__INIT;
	Raftd__Member mem[RD_NODE_MAX_MEMBERS], *memp[RD_NODE_MAX_MEMBERS];
	struct rd_group *g0 = rd_node_group(n, RD_STORAGE_META_GROUP);
	uint8_t *routing = NULL;
	size_t routing_len = 0;
	uint64_t leader = g0 != NULL ? rd_raft_leader(g0->raft) : 0;

	jr.error = (Raftd__ErrorCode)code;
	jr.error_message = (char *)(message != NULL ? message : "");
	if (code == RAFTD__ERROR_CODE__NOT_LEADER && leader != 0) {
		jr.leader_hint = leader;
		for (unsigned i = 0; i < n->topo.n_members; i++)
			if (n->topo.members[i].id == leader)
				jr.leader_address = n->topo.members[i].addr.text;
	}
	if (code == RAFTD__ERROR_CODE__OK && g0 != NULL &&
	    rd_routing_encode(&n->topo.routing, &routing, &routing_len) == 0) {
		const struct rd_conf_state *cs = rd_raft_conf(g0->raft);
		for (unsigned i = 0; i < n->topo.n_members; i++) {
			uint64_t inc = 0;
			raftd__member__init(&mem[i]);
			mem[i].id = n->topo.members[i].id;
			mem[i].address = n->topo.members[i].addr.text;
			mem[i].role = role_in(cs, mem[i].id);
			if (rd_membership_registered(n, mem[i].id, &inc) == 0)
				mem[i].incarnation = inc;
			memp[i] = &mem[i];
		}
		topo.version = rd_raft_applied_index(g0->raft);
		topo.n_members = n->topo.n_members;
		topo.members = memp;
		jr.topology = &topo;
		jr.routing.data = routing;
		jr.routing.len = routing_len;
		jr.cluster = (char *)rd_storage_cluster_id(n->st);
		(void)node;
	}
	resp.body_case = RAFTD__PEER_RESPONSE__BODY_JOIN;
	resp.join = &jr;
	rd_transport_respond(r, &resp);
	free(routing);
}

static void refuse(struct rd_node *n, struct rd_transport_responder *r, uint64_t peer,
                   int code, const char *why)
{
	if (code == RAFTD__ERROR_CODE__INVALID)
		rd_log_warn("join of node %llu refused: %s", (unsigned long long)peer,
		            why);
	rd_join_respond(n, r, peer, code, why);
}

void rd_join_serve(struct rd_node *n, uint64_t peer, const Raftd__PeerRequest *req,
                   struct rd_transport_responder *r)
{
	const Raftd__JoinRequest *jq = req->join;
	struct rd_group *g0 = rd_node_group(n, RD_STORAGE_META_GROUP);
	struct rd_member_record rec;
	char msg[RD_ERRMSG_SIZE];
	struct rd_addr addr;
	int rv;

	if (jq->node_id != peer) {
		snprintf(msg, sizeof msg,
		         "the request names node %llu but the certificate node %llu: a "
		         "node joins under its certificate's id",
		         (unsigned long long)jq->node_id, (unsigned long long)peer);
		refuse(n, r, peer, RAFTD__ERROR_CODE__INVALID, msg);
		return;
	}
	if (jq->incarnation == 0) {
		refuse(n, r, peer, RAFTD__ERROR_CODE__INVALID,
		       "the request carries no incarnation");
		return;
	}
	if (rd_addr_parse(&addr, jq->address, msg) != 0) {
		char why[RD_ERRMSG_SIZE];
		snprintf(why, sizeof why, "address '%.64s': %.160s", jq->address, msg);
		refuse(n, r, peer, RAFTD__ERROR_CODE__INVALID, why);
		return;
	}
	if (n->stopping) {
		refuse(n, r, peer, RAFTD__ERROR_CODE__SHUTTING_DOWN, "node is stopping");
		return;
	}
	if (g0 == NULL || rd_raft_leader(g0->raft) == 0) {
		refuse(n, r, peer, RAFTD__ERROR_CODE__NO_LEADER,
		       "group 0 has no known leader here");
		return;
	}
	if (rd_raft_role(g0->raft) != RD_RAFT_LEADER) {
		refuse(n, r, peer, RAFTD__ERROR_CODE__NOT_LEADER,
		       "this node does not lead group 0");
		return;
	}
	rv = rd_membership_read_record(n, peer, &rec);
	if (rv != 0 && rv != RD_ENOTFOUND) {
		refuse(n, r, peer, RAFTD__ERROR_CODE__UNAVAILABLE,
		       "member table unreadable");
		return;
	}
	if (rv == 0 && rec.state != RD_MEMBER_REMOVED &&
	    rec.incarnation == jq->incarnation &&
	    rd_group_conf_role(rd_raft_conf(g0->raft), peer) != RD_CONF_ROLE_NONE) {
		/* A retry of a join that applied (its answer was lost). */
		rd_join_respond(n, r, peer, RAFTD__ERROR_CODE__OK, NULL);
		return;
	}
	if (rv == 0 && rec.state != RD_MEMBER_REMOVED && rec.incarnation != 0 &&
	    rec.incarnation != jq->incarnation) {
		snprintf(msg, sizeof msg,
		         "node id %llu is held by a live member (incarnation %016" PRIx64
		         ", %s); this data directory is incarnation %016" PRIx64
		         ": give the new node another id, or remove node %llu first",
		         (unsigned long long)peer, rec.incarnation,
		         rd_members_state_name(rec.state), jq->incarnation,
		         (unsigned long long)peer);
		refuse(n, r, peer, RAFTD__ERROR_CODE__INVALID, msg);
		return;
	}
	rv = rd_membership_start_join(n, peer, addr.text, jq->incarnation,
	                              req->deadline_ms, r, msg);
	if (rv != 0)
		refuse(n, r, peer, rd_err_to_wire(rv), msg);
	else
		rd_log_notice(
		    "join requested by node %llu addr=%s incarnation=%016" PRIx64,
		    (unsigned long long)peer, addr.text, jq->incarnation);
}

/* ---- the joining node's side ---------------------------------------------- */

static const char *code_name(int code)
{
	const ProtobufCEnumValue *v =
	    protobuf_c_enum_descriptor_get_value(&raftd__error_code__descriptor, code);
	return v != NULL ? v->name : "error";
}

struct join_target {
	uint64_t handle;
	char addr[RD_CONFIG_ADDR_LEN];
	bool busy;                 /* a call in flight */
	char last[RD_ERRMSG_SIZE]; /* its last outcome, logged once */
};

struct joiner {
	struct rd_node *n;
	struct rd_transport *t;
	struct join_target targets[RD_CONFIG_MAX_JOIN + JOIN_MAX_HINTS];
	unsigned n_targets, n_hints;
	unsigned in_flight;
	unsigned backoff_ms;
	uint64_t next_ask_ns; /* monotonic: when idle addresses are asked again */
	bool done, stop;
	int err;
	char msg[RD_ERRMSG_SIZE];
	struct event *timer;
};

struct join_call {
	struct joiner *j;
	struct join_target *tg;
};

static void say(struct join_target *tg, bool warn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(struct join_target *tg, bool warn, const char *fmt, ...)
{
	char line[RD_ERRMSG_SIZE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (strcmp(line, tg->last) == 0)
		return;
	snprintf(tg->last, sizeof tg->last, "%s", line);
	if (warn)
		rd_log_warn("join via %s: %s", tg->addr, line);
	else
		rd_log_info("join via %s: %s", tg->addr, line);
}

static int add_target(struct joiner *j, const struct rd_addr *a, char *msg)
{
	struct join_target *tg;
	int rv;

	for (unsigned i = 0; i < j->n_targets; i++)
		if (strcmp(j->targets[i].addr, a->text) == 0)
			return 0;
	if (j->n_targets == sizeof j->targets / sizeof j->targets[0])
		return 0;
	tg = &j->targets[j->n_targets];
	memset(tg, 0, sizeof *tg);
	tg->handle = RD_TRANSPORT_ANY_BASE + j->n_targets;
	snprintf(tg->addr, sizeof tg->addr, "%s", a->text);
	rv = rd_transport_peer_add_any(j->t, tg->handle, (const struct sockaddr *)&a->sa,
	                               a->salen, msg);
	if (rv == 0)
		j->n_targets++;
	return rv;
}

/* Record what the leader answered: the cluster id, "joined", the members,
 * and last the routing table (its presence means the join is done). */
static int persist(struct rd_node *n, const Raftd__JoinResponse *jr, char *msg)
{
	struct rd_routing rt;
	char *members = NULL;
	size_t cap = 1, len = 0;
	int rv;

	if (jr->cluster == NULL || jr->cluster[0] == 0 || jr->topology == NULL)
		return rd_errorf(msg, RD_EPROTO, "the leader's answer has no topology");
	rv = rd_routing_decode(&rt, jr->routing.data, jr->routing.len, msg);
	if (rv != 0)
		return rv;
	rd_routing_free(&rt);
	for (size_t i = 0; i < jr->topology->n_members; i++)
		cap += strlen(jr->topology->members[i]->address) + 32;
	members = malloc(cap);
	if (members == NULL)
		return rd_errorf(msg, RD_ENOMEM, "out of memory");
	members[0] = 0;
	for (size_t i = 0; i < jr->topology->n_members; i++) {
		const Raftd__Member *m = jr->topology->members[i];
		if (m->role == RAFTD__MEMBER_ROLE__MEMBER_REMOVED)
			continue;
		len += (size_t)snprintf(members + len, cap - len, "%s%llu@%s",
		                        len > 0 ? "," : "", (unsigned long long)m->id,
		                        m->address);
	}
	rv = rd_storage_catalog_put(n->st, "joined", (const uint8_t *)"1", 1, msg);
	if (rv == 0)
		rv = rd_storage_set_cluster_id(n->st, jr->cluster, msg);
	if (rv == 0)
		rv = rd_storage_catalog_put(n->st, JOIN_MEMBERS, (const uint8_t *)members,
		                            len, msg);
	if (rv == 0)
		rv = rd_storage_catalog_put(n->st, RD_STORAGE_CATALOG_ROUTING,
		                            jr->routing.data, jr->routing.len, msg);
	free(members);
	return rv;
}

static void on_answer(void *arg, int err, const Raftd__PeerResponse *resp,
                      const char *errmsg)
{
	struct join_call *jc = arg;
	struct joiner *j = jc->j;
	struct join_target *tg = jc->tg;
	const Raftd__JoinResponse *jr;
	struct rd_addr a;
	char msg[RD_ERRMSG_SIZE];

	free(jc);
	tg->busy = false;
	j->in_flight--;
	if (j->done)
		return;
	if (err != 0) {
		say(tg, false, "no answer (%s): retrying",
		    errmsg != NULL ? errmsg : rd_strerror(err));
		return;
	}
	if (resp->error != RAFTD__ERROR_CODE__OK ||
	    resp->body_case != RAFTD__PEER_RESPONSE__BODY_JOIN) {
		say(tg, false, "refused by the transport (%s): retrying",
		    resp->error_message != NULL ? resp->error_message : "no join answer");
		return;
	}
	jr = resp->join;
	switch (jr->error) {
	case RAFTD__ERROR_CODE__OK:
		if (persist(j->n, jr, msg) != 0) {
			j->err = RD_EIO;
			snprintf(j->msg, sizeof j->msg,
			         "join accepted but not recorded: %.200s", msg);
		} else {
			rd_log_notice(
			    "joined the cluster %s through node %llu (%s): node "
			    "%llu is a learner of group 0, promoted once caught "
			    "up; %zu members",
			    jr->cluster,
			    (unsigned long long)rd_transport_peer_proven(j->t,
			                                                 tg->handle),
			    tg->addr, (unsigned long long)j->n->cfg.node_id,
			    jr->topology->n_members);
		}
		j->done = true;
		return;
	case RAFTD__ERROR_CODE__NOT_LEADER:
		if (jr->leader_address != NULL && jr->leader_address[0] != 0 &&
		    rd_addr_parse(&a, jr->leader_address, msg) == 0) {
			say(tg, false, "not the group-0 leader: asking node %llu at %s",
			    (unsigned long long)jr->leader_hint, jr->leader_address);
			if (add_target(j, &a, msg) != 0)
				rd_log_warn("join: leader %s not dialed: %s",
				            jr->leader_address, msg);
			j->backoff_ms = 0; /* ask it at once */
			j->next_ask_ns = 0;
		} else {
			say(tg, false, "not the group-0 leader, which it does not know");
		}
		return;
	case RAFTD__ERROR_CODE__INVALID:
		/* Nothing changed, and asking again changes nothing: a
		 * config error (systemd does not restart it in a loop). */
		j->err = RD_ECONFIG;
		snprintf(j->msg, sizeof j->msg,
		         "the cluster refused to add node %llu (answered by node %llu "
		         "at %s): %s",
		         (unsigned long long)j->n->cfg.node_id,
		         (unsigned long long)rd_transport_peer_proven(j->t, tg->handle),
		         tg->addr, jr->error_message);
		j->done = true;
		return;
	default:
		say(tg, false, "%s (%s): retrying", code_name((int)jr->error),
		    jr->error_message != NULL ? jr->error_message : "");
		return;
	}
}

static void ask_all(struct joiner *j)
{
	struct rd_node *n = j->n;
	Raftd__PeerRequest req = RAFTD__PEER_REQUEST__INIT;
	Raftd__JoinRequest jq = RAFTD__JOIN_REQUEST__INIT;
	char msg[RD_ERRMSG_SIZE];

	jq.node_id = n->cfg.node_id;
	jq.address = (char *)n->cfg.listen.text;
	jq.incarnation = rd_storage_incarnation(n->st);
	req.body_case = RAFTD__PEER_REQUEST__BODY_JOIN;
	req.join = &jq;
	for (unsigned i = 0; i < j->n_targets; i++) {
		struct join_target *tg = &j->targets[i];
		struct join_call *jc;
		if (tg->busy)
			continue;
		jc = malloc(sizeof *jc);
		if (jc == NULL)
			return;
		jc->j = j;
		jc->tg = tg;
		if (rd_transport_call(j->t, tg->handle, &req, JOIN_CALL_MS, on_answer, jc,
		                      msg) != 0) {
			free(jc);
			say(tg, true, "not sent: %s", msg);
			continue;
		}
		tg->busy = true;
		j->in_flight++;
	}
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct joiner *j = arg;
	struct timeval tv;

	(void)fd, (void)what;
	if (j->done || j->stop)
		return;
	/* Every address without a call in flight is asked again once the
	 * backoff passed (at once after a NOT_LEADER hint): an address that
	 * does not answer holds up only its own call. */
	if (rd_clock_now_ns() >= j->next_ask_ns) {
		ask_all(j);
		j->backoff_ms =
		    j->backoff_ms == 0 ? JOIN_BACKOFF_MIN_MS : j->backoff_ms * 2;
		if (j->backoff_ms > JOIN_BACKOFF_MAX_MS)
			j->backoff_ms = JOIN_BACKOFF_MAX_MS;
		j->next_ask_ns = rd_clock_now_ns() + j->backoff_ms * 1000000ull;
	}
	tv.tv_sec = 0;
	tv.tv_usec = 20 * 1000;
	evtimer_add(j->timer, &tv);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct joiner *j = arg;

	(void)what;
	j->stop = true;
	rd_log_notice("signal %d while joining: stopping (nothing was joined)", (int)sig);
	event_base_loopbreak(j->n->base);
}

/* Load the members the join answer listed (catalog JOIN_MEMBERS) into the
 * topology: the peers a joined node talks to before its group 0 caught up
 * (afterwards the member table adds the rest, rd_membership_load). */
static int load_members(struct rd_node *n, char *msg)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	char *text, *save = NULL, *tok;
	int rv = rd_storage_catalog_get(n->st, JOIN_MEMBERS, &buf, &len, msg);

	if (rv != 0)
		return rv == RD_ENOTFOUND ? 0 : rv;
	text = malloc(len + 1);
	if (text == NULL) {
		free(buf);
		return rd_errorf(msg, RD_ENOMEM, "out of memory");
	}
	memcpy(text, buf, len);
	text[len] = 0;
	free(buf);
	for (tok = strtok_r(text, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		struct rd_member m = {0};
		char *at = strchr(tok, '@');
		bool have = false;
		if (at == NULL)
			continue;
		*at = 0;
		m.id = strtoull(tok, NULL, 10);
		if (m.id == 0 || rd_addr_parse(&m.addr, at + 1, msg) != 0)
			continue;
		for (unsigned i = 0; i < n->topo.n_members; i++)
			have |= n->topo.members[i].id == m.id;
		if (!have && n->topo.n_members < RD_TOPOLOGY_MAX_MEMBERS)
			n->topo.members[n->topo.n_members++] = m;
	}
	free(text);
	return 0;
}

int rd_join_run(struct rd_node *n, char *msg)
{
	struct rd_transport_config tc;
	struct rd_transport_callbacks cbs = {.arg = n};
	struct joiner *j;
	struct event *ev_term, *ev_int;
	uint8_t *buf = NULL;
	size_t len = 0;
	struct timeval now = {0, 0};
	int rv;

	rv = rd_storage_catalog_get(n->st, RD_STORAGE_CATALOG_ROUTING, &buf, &len, msg);
	free(buf);
	if (rv == 0)
		return load_members(n, msg); /* joined before: a restart */
	if (rv != RD_ENOTFOUND)
		return rv;
	j = calloc(1, sizeof *j);
	if (j == NULL)
		return rd_errorf(msg, RD_ENOMEM, "out of memory");
	j->n = n;
	rd_transport_config_init(&tc, &n->cfg);
	rv = rd_transport_new(&j->t, n->base, &tc, &cbs, msg);
	if (rv != 0) {
		rd_errprefix(msg, "transport: ");
		free(j);
		return rv;
	}
	for (unsigned i = 0; i < n->cfg.n_join && rv == 0; i++)
		rv = add_target(j, &n->cfg.join[i], msg);
	if (rv != 0)
		goto out;
	rd_log_notice("joining a running cluster as node %llu (incarnation %016" PRIx64
	              ") through %u addresses",
	              (unsigned long long)n->cfg.node_id, rd_storage_incarnation(n->st),
	              n->cfg.n_join);
	j->timer = evtimer_new(n->base, on_timer, j);
	ev_term = evsignal_new(n->base, SIGTERM, on_signal, j);
	ev_int = evsignal_new(n->base, SIGINT, on_signal, j);
	if (j->timer == NULL || ev_term == NULL || ev_int == NULL) {
		rv = rd_errorf(msg, RD_ENOMEM, "out of memory");
	} else {
		evsignal_add(ev_term, NULL);
		evsignal_add(ev_int, NULL);
		evtimer_add(j->timer, &now);
		while (!j->done && !j->stop)
			event_base_loop(n->base, EVLOOP_ONCE);
		if (j->stop)
			rv = rd_errorf(msg, RD_ESHUTDOWN, "stopped while joining");
		else if (j->err != 0)
			rv = rd_errorf(msg, j->err, "%s", j->msg);
	}
	if (ev_term != NULL)
		event_free(ev_term);
	if (ev_int != NULL)
		event_free(ev_int);
	if (j->timer != NULL)
		event_free(j->timer);
out:
	/* Calls in flight are answered RD_ESHUTDOWN (on_answer frees them). */
	j->done = true;
	rd_transport_free(j->t);
	free(j);
	if (rv == 0)
		rv = load_members(n, msg);
	return rv;
}
