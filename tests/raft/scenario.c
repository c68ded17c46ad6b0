/*
 * Scenario runner, in the spirit of etcd-raft's interaction tests: a script of
 * commands drives a simulated cluster and the transcript (each command echoed
 * as "> cmd", then its output) is compared with the golden text after the
 * `----` line of the scenario file. Commands:
 *
 *   config key=value...      election= heartbeat= inflight= inflightbytes=
 *                            msgbytes= prevote=0|1 checkquorum=0|1
 *                            quiesce=0|1 (with node liveness, cluster.h)
 *   add ID... [voters=A,B]   new nodes (voters default to the listed ids;
 *                            "voters=" for a blank joiner)
 *   campaign ID | tick ID [N] | tick-all [N]
 *   run N                    N times: tick every node once, then stabilize
 *   process [ID...] | deliver [ID...] | stabilize [-v]
 *   process-early ID | finish ID          split an update around its write
 *   propose ID DATA | propose-n ID N | conf ID add-voter|add-learner|promote|remove N
 *   transfer ID TO | read ID CTX
 *   partition A B / C | cut A B | heal | drop-msgs [ID] | msgs
 *   crash ID | restart ID | compact ID [INDEX]
 *   no-snapshot-report | report-snapshot ID TO ok|fail
 *   send-snapshot ID TO      queue ID's latest snapshot to TO
 *   status [ID...] | log ID | applied ID | reads ID | progress ID
 */
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "util/err.h"

#define MAXTOK 16

static int tokenize(char *line, char **tok)
{
	int n = 0;
	for (char *s = strtok(line, " \t"); s && n < MAXTOK; s = strtok(NULL, " \t"))
		tok[n++] = s;
	return n;
}

static uint64_t num(const char *s)
{
	return strtoull(s, NULL, 10);
}

/* Whether a command's node list tok[1..n) names node `id`; no list names
 * every node. */
static bool selected(char **tok, int n, uint64_t id)
{
	bool sel = n == 1;

	for (int i = 1; i < n; i++)
		sel |= num(tok[i]) == id;
	return sel;
}

static void print_status(struct rc_cluster *c, uint64_t id)
{
	struct rc_node *nd = &c->nodes[id];
	if (!nd->exists)
		return;
	if (!nd->up) {
		rc_print(c, "%llu: %s\n", (unsigned long long)id,
		         nd->retired ? "retired" : "down");
		return;
	}
	struct rd_raft *r = nd->r;
	const struct rd_conf_state *cs = rd_raft_conf(r);
	char conf[256] = "";
	size_t l = 0;
	for (uint32_t i = 0; i < cs->n_voters; i++)
		l += (size_t)snprintf(conf + l, sizeof(conf) - l, "%s%llu", i ? "," : "",
		                      (unsigned long long)cs->voters[i]);
	for (uint32_t i = 0; i < cs->n_learners; i++)
		l += (size_t)snprintf(conf + l, sizeof(conf) - l, "%s%llul",
		                      (i || cs->n_voters) ? "," : "",
		                      (unsigned long long)cs->learners[i]);
	rc_print(
	    c,
	    "%llu: %s term=%llu vote=%llu lead=%llu commit=%llu applied=%llu last=%llu "
	    "conf=%s%s\n",
	    (unsigned long long)id, rd_raft_role_name(rd_raft_role(r)),
	    (unsigned long long)rd_raft_term(r), (unsigned long long)rd_raft_vote(r),
	    (unsigned long long)rd_raft_leader(r), (unsigned long long)rd_raft_commit(r),
	    (unsigned long long)rd_raft_applied_index(r),
	    (unsigned long long)rd_raft_last_index(r), conf,
	    rd_raft_quiesced(r) ? " quiesced" : "");
}

static const char *entry_type(uint8_t t)
{
	return t == RD_ENTRY_NOOP          ? "noop"
	       : t == RD_ENTRY_CONF_CHANGE ? "conf"
	                                   : "normal";
}

static void print_log(struct rc_cluster *c, uint64_t id)
{
	struct rc_node *nd = &c->nodes[id];
	if (!nd->up)
		return;
	struct rd_raft *r = nd->r;
	uint64_t first = rd_raft_first_index(r), last = rd_raft_last_index(r);
	rc_print(c, "log %llu: first=%llu last=%llu\n", (unsigned long long)id,
	         (unsigned long long)first, (unsigned long long)last);
	/* Payloads are shown from the node's disk (the core has the same). */
	struct rc_disk *d = &nd->disk;
	for (size_t i = 0; i < d->n; i++) {
		const struct rd_entry *e = &d->ents[i].e;
		rc_print(c, "  %llu/%llu %s", (unsigned long long)e->index,
		         (unsigned long long)e->term, entry_type(e->type));
		if (e->type == RD_ENTRY_NORMAL)
			rc_print(c, " %.*s", (int)e->len, (const char *)e->data);
		if (e->type == RD_ENTRY_CONF_CHANGE) {
			uint8_t t;
			uint64_t node;
			if (rd_raft_cc_decode(e->data, e->len, &t, &node) == 0)
				rc_print(c, " %s %llu",
				         t == RD_CC_ADD_VOTER         ? "add-voter"
				         : t == RD_CC_ADD_LEARNER     ? "add-learner"
				         : t == RD_CC_PROMOTE_LEARNER ? "promote"
				                                      : "remove",
				         (unsigned long long)node);
		}
		rc_print(c, "\n");
	}
	if (d->n != last - first + 1)
		rc_print(c, "  (%llu entries not yet persisted)\n",
		         (unsigned long long)(last - first + 1 - d->n));
}

static void print_progress(struct rc_cluster *c, uint64_t id)
{
	static const char *st[] = {"probe", "replicate", "snapshot"};
	struct rc_node *nd = &c->nodes[id];
	if (!nd->up)
		return;
	for (uint64_t p = 1; p <= RC_MAX; p++) {
		struct rd_progress pr;
		if (!rd_raft_progress(nd->r, p, &pr))
			continue;
		rc_print(c, "  %llu: match=%llu next=%llu %s%s inflight=%u\n",
		         (unsigned long long)p, (unsigned long long)pr.match,
		         (unsigned long long)pr.next, st[pr.state],
		         pr.learner ? " learner" : "", pr.inflight);
	}
}

static int cc_type(const char *s)
{
	if (!strcmp(s, "add-voter"))
		return RD_CC_ADD_VOTER;
	if (!strcmp(s, "add-learner"))
		return RD_CC_ADD_LEARNER;
	if (!strcmp(s, "promote"))
		return RD_CC_PROMOTE_LEARNER;
	if (!strcmp(s, "remove"))
		return RD_CC_REMOVE;
	return -1;
}

static void result(struct rc_cluster *c, int rc, const char *what, uint64_t v)
{
	if (rc == 0)
		rc_print(c, "%s %llu\n", what, (unsigned long long)v);
	else
		rc_print(c, "error %s\n", rd_errname(rc));
}

static struct rd_raft *node_r(struct rc_cluster *c, uint64_t id)
{
	if (id == 0 || id > RC_MAX || !c->nodes[id].up)
		return NULL;
	return c->nodes[id].r;
}

static int run_cmd(struct rc_cluster *c, char **tok, int n, char *err, size_t errlen)
{
	const char *cmd = tok[0];
	uint64_t a = n > 1 ? num(tok[1]) : 0;
	struct rd_raft *r = node_r(c, a);
	bool needs_node = !strcmp(cmd, "campaign") || !strcmp(cmd, "tick") ||
	                  !strcmp(cmd, "propose") || !strcmp(cmd, "propose-n") ||
	                  !strcmp(cmd, "conf") || !strcmp(cmd, "transfer") ||
	                  !strcmp(cmd, "read") || !strcmp(cmd, "report-snapshot");
	if (needs_node && r == NULL) {
		rc_print(c, "node %llu is not running\n", (unsigned long long)a);
		return 0;
	}
	if (!strcmp(cmd, "config")) {
		for (int i = 1; i < n; i++) {
			char *eq = strchr(tok[i], '=');
			if (!eq)
				goto bad;
			*eq = 0;
			uint64_t v = num(eq + 1);
			if (!strcmp(tok[i], "election"))
				c->base.election_ticks = (uint32_t)v;
			else if (!strcmp(tok[i], "heartbeat"))
				c->base.heartbeat_ticks = (uint32_t)v;
			else if (!strcmp(tok[i], "inflight"))
				c->base.max_inflight_msgs = (uint32_t)v;
			else if (!strcmp(tok[i], "inflightbytes"))
				c->base.max_inflight_bytes = v;
			else if (!strcmp(tok[i], "msgbytes"))
				c->base.max_msg_bytes = v;
			else if (!strcmp(tok[i], "prevote"))
				c->base.pre_vote = v != 0;
			else if (!strcmp(tok[i], "checkquorum"))
				c->base.check_quorum = v != 0;
			else if (!strcmp(tok[i], "quiesce"))
				c->base.quiesce = c->liveness = v != 0;
			else if (!strcmp(tok[i], "logbytes")) {
				/* a log source and an in-memory tail bound */
				c->log_source = true;
				c->base.log_mem_bytes = v;
			} else
				goto bad;
		}
	} else if (!strcmp(cmd, "add")) {
		uint64_t ids[RC_MAX], voters[RC_MAX];
		uint32_t ni = 0, nv = 0;
		bool explicit_voters = false;
		for (int i = 1; i < n; i++) {
			if (!strncmp(tok[i], "voters=", 7)) {
				explicit_voters = true;
				for (char *s = strtok(tok[i] + 7, ","); s && nv < RC_MAX;
				     s = strtok(NULL, ","))
					voters[nv++] = num(s);
			} else if (ni < RC_MAX) {
				ids[ni++] = num(tok[i]);
			}
		}
		if (!explicit_voters) {
			memcpy(voters, ids, sizeof(ids));
			nv = ni;
		}
		for (uint32_t i = 0; i < ni; i++) {
			if (ids[i] == 0 || ids[i] > RC_MAX)
				goto bad;
			rc_add(c, ids[i], voters, nv);
		}
	} else if (!strcmp(cmd, "campaign")) {
		result(c, rd_raft_campaign(r), "ok", 0);
	} else if (!strcmp(cmd, "tick")) {
		uint64_t k = n > 2 ? num(tok[2]) : 1;
		for (uint64_t i = 0; i < k; i++)
			rd_raft_tick(r);
	} else if (!strcmp(cmd, "tick-all")) {
		uint64_t k = n > 1 ? num(tok[1]) : 1;
		for (uint64_t i = 0; i < k; i++) {
			c->now++;
			for (uint64_t id = 1; id <= RC_MAX; id++)
				if (node_r(c, id))
					rd_raft_tick(c->nodes[id].r);
			rc_liveness(c);
		}
	} else if (!strcmp(cmd, "run")) {
		bool v = c->verbose;
		c->verbose = false;
		for (uint64_t i = 0; i < a; i++) {
			c->now++;
			for (uint64_t id = 1; id <= RC_MAX; id++)
				if (node_r(c, id))
					rd_raft_tick(c->nodes[id].r);
			rc_liveness(c);
			rc_stabilize(c);
		}
		c->verbose = v;
	} else if (!strcmp(cmd, "process")) {
		for (uint64_t id = 1; id <= RC_MAX; id++)
			if (selected(tok, n, id))
				rc_process(c, id);
	} else if (!strcmp(cmd, "deliver")) {
		bool v = c->verbose;
		c->verbose = true;
		if (n == 1)
			rc_deliver(c, 0);
		for (int i = 1; i < n; i++)
			rc_deliver(c, num(tok[i]));
		c->verbose = v;
	} else if (!strcmp(cmd, "stabilize")) {
		bool v = c->verbose;
		c->verbose = n > 1 && !strcmp(tok[1], "-v");
		rc_stabilize(c);
		c->verbose = v;
	} else if (!strcmp(cmd, "process-early")) {
		rc_print(c, "%s\n", rc_process_early(c, a) ? "holding" : "nothing");
	} else if (!strcmp(cmd, "finish")) {
		rc_finish(c, a);
	} else if (!strcmp(cmd, "propose")) {
		uint64_t idx = 0;
		const char *d = n > 2 ? tok[2] : "";
		int rc =
		    rd_raft_propose(r, RD_ENTRY_NORMAL, d, (uint32_t)strlen(d), &idx);
		result(c, rc, "index", idx);
		if (rc == RD_ENOTLEADER)
			rc_print(c, "leader hint %llu\n",
			         (unsigned long long)rd_raft_leader(r));
	} else if (!strcmp(cmd, "propose-n")) {
		uint64_t k = n > 2 ? num(tok[2]) : 1, idx = 0;
		int rc = 0;
		for (uint64_t i = 0; i < k && rc == 0; i++) {
			char d[32];
			int l =
			    snprintf(d, sizeof(d), "v%llu", (unsigned long long)(i + 1));
			rc = rd_raft_propose(r, RD_ENTRY_NORMAL, d, (uint32_t)l, &idx);
		}
		result(c, rc, "last index", idx);
	} else if (!strcmp(cmd, "conf")) {
		if (n < 4 || cc_type(tok[2]) < 0)
			goto bad;
		uint64_t idx = 0;
		int rc = rd_raft_propose_conf_change(r, (uint8_t)cc_type(tok[2]),
		                                     num(tok[3]), NULL, 0, &idx);
		result(c, rc, "index", idx);
	} else if (!strcmp(cmd, "transfer")) {
		result(c, rd_raft_transfer_leader(r, n > 2 ? num(tok[2]) : 0), "ok", 0);
	} else if (!strcmp(cmd, "read")) {
		result(c, rc_read(c, a, n > 2 ? num(tok[2]) : 0), "ok", 0);
	} else if (!strcmp(cmd, "partition")) {
		int grp[RC_MAX + 1] = {0};
		int g = 1;
		for (int i = 1; i < n; i++) {
			if (!strcmp(tok[i], "/"))
				g++;
			else if (num(tok[i]) <= RC_MAX)
				grp[num(tok[i])] = g;
		}
		for (int x = 1; x <= RC_MAX; x++)
			for (int y = 1; y <= RC_MAX; y++)
				c->cut[x][y] = grp[x] != grp[y];
	} else if (!strcmp(cmd, "cut")) {
		uint64_t b = n > 2 ? num(tok[2]) : 0;
		if (a > RC_MAX || b > RC_MAX)
			goto bad;
		c->cut[a][b] = c->cut[b][a] = true;
	} else if (!strcmp(cmd, "heal")) {
		memset(c->cut, 0, sizeof(c->cut));
	} else if (!strcmp(cmd, "drop-msgs")) {
		size_t keep = 0;
		for (size_t i = 0; i < c->n_net; i++) {
			if (n == 1 || c->net[i].m.to == a)
				free(c->net[i].m.entries);
			else
				c->net[keep++] = c->net[i];
		}
		c->n_net = keep;
	} else if (!strcmp(cmd, "msgs")) {
		for (size_t i = 0; i < c->n_net; i++) {
			char buf[256];
			rc_fmt_msg(buf, sizeof(buf), &c->net[i].m);
			rc_print(c, "  %s\n", buf);
		}
	} else if (!strcmp(cmd, "crash")) {
		rc_crash(c, a);
	} else if (!strcmp(cmd, "restart")) {
		rc_start(c, a);
	} else if (!strcmp(cmd, "compact")) {
		rc_compact(c, a, n > 2 ? num(tok[2]) : 0);
		if (node_r(c, a))
			rc_print(c, "first index %llu\n",
			         (unsigned long long)rd_raft_first_index(node_r(c, a)));
	} else if (!strcmp(cmd, "send-snapshot")) {
		if (a == 0 || a > RC_MAX || n < 3 || num(tok[2]) == 0 ||
		    num(tok[2]) > RC_MAX)
			goto bad;
		rc_send_snapshot(c, a, num(tok[2]));
	} else if (!strcmp(cmd, "no-snapshot-report")) {
		c->auto_snapshot_reports = false;
	} else if (!strcmp(cmd, "report-snapshot")) {
		rd_raft_report_snapshot(r, n > 2 ? num(tok[2]) : 0,
		                        n > 3 && !strcmp(tok[3], "ok"));
	} else if (!strcmp(cmd, "status")) {
		for (uint64_t id = 1; id <= RC_MAX; id++)
			if (selected(tok, n, id))
				print_status(c, id);
	} else if (!strcmp(cmd, "log")) {
		print_log(c, a);
	} else if (!strcmp(cmd, "applied")) {
		if (a == 0 || a > RC_MAX)
			goto bad;
		rc_print(c, "applied %llu: %s\n", (unsigned long long)a,
		         c->nodes[a].applied_txt);
		c->nodes[a].applied_txt[0] = 0;
	} else if (!strcmp(cmd, "reads")) {
		if (a == 0 || a > RC_MAX)
			goto bad;
		rc_print(c, "reads %llu: %s\n", (unsigned long long)a,
		         c->nodes[a].reads_txt);
		c->nodes[a].reads_txt[0] = 0;
	} else if (!strcmp(cmd, "progress")) {
		print_progress(c, a);
	} else if (!strcmp(cmd, "tail")) {
		/* tail ID: what node ID's core holds of its log in memory */
		if (node_r(c, a) == NULL)
			goto bad;
		struct rd_raft_log_stats ls;
		rd_raft_log_stats(node_r(c, a), &ls);
		rc_print(c,
		         "tail %llu: memory %llu..%llu (%llu entries, %llu bytes) "
		         "source reads=%llu errors=%llu\n",
		         (unsigned long long)a, (unsigned long long)ls.mem_first,
		         (unsigned long long)rd_raft_last_index(node_r(c, a)),
		         (unsigned long long)ls.mem_entries,
		         (unsigned long long)ls.mem_bytes,
		         (unsigned long long)ls.source_reads,
		         (unsigned long long)ls.source_errors);
	} else if (!strcmp(cmd, "source-fail") || !strcmp(cmd, "source-bad-term")) {
		/* source-fail ID on|off: node ID's log reads fail (or return
		 * an entry with a wrong term) */
		if (a == 0 || a > RC_MAX || n < 3)
			goto bad;
		bool on = !strcmp(tok[2], "on");
		if (!strcmp(cmd, "source-fail"))
			c->nodes[a].src_fail = on;
		else
			c->nodes[a].src_bad_term = on;
	} else {
		goto bad;
	}
	return 0;
bad:
	snprintf(err, errlen, "bad command: %s", cmd);
	return -1;
}

int rc_scenario_run(const char *script, FILE *out, char *err, size_t errlen)
{
	struct rc_cluster *c = malloc(sizeof(*c));
	rc_init(c, 1);
	c->out = out;
	char *copy = strdup(script);
	int rc = 0;
	for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		while (*line == ' ' || *line == '\t')
			line++;
		if (*line == 0 || *line == '#')
			continue;
		rc_print(c, "> %s\n", line);
		char buf[512];
		snprintf(buf, sizeof(buf), "%s", line);
		char *tok[MAXTOK];
		int n = tokenize(buf, tok);
		if (n == 0)
			continue;
		rc = run_cmd(c, tok, n, err, errlen);
		if (rc != 0)
			break;
		rc_check(c);
	}
	if (rc == 0 && c->violations > 0) {
		snprintf(err, errlen, "%llu safety violations, first: %s",
		         (unsigned long long)c->violations, c->violation);
		rc = -1;
	}
	free(copy);
	rc_free(c);
	free(c);
	return rc;
}
