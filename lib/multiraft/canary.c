/*
 * The canary: a live linearizability self-check. Every node writes, once
 * per [health] canary_interval_ms per data group it hosts (spread over the
 * interval), an increasing number under a key of its own that maps to
 * that group, through the same path as a client's put (rd_node_submit:
 * proposed here or forwarded to the leader, answered once applied here).
 * Once the write is acknowledged it reads the key back with a
 * linearizable read (ReadIndex, thesis §6.4) from itself. Linearizability
 * says that read returns the acknowledged value or a later one; an older
 * value, or no value, means an acknowledged write was lost or a read was
 * served stale. That is logged at crit and counted
 * (raftd_canary_violations_total).
 *
 * Only one canary operation per group is in flight at a time, so the
 * values of one key are written in order. A write whose outcome is
 * unknown (timeout, leader change) may still apply later; the few most
 * recent such values are remembered and not taken for lost writes when a
 * read returns one of them.
 *
 * Requests are answered from inside the loop's apply step, where the
 * cores may not be driven; so an answer only records it, and the next
 * tick sends the read.
 *
 * Test-only hook: $RAFTD_TEST_CANARY_STALE_READ=1 at start makes the
 * canary take every value it reads as one older than it is, so a test can
 * see a violation detected and counted. Never set it in production.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "multiraft/node_internal.h"
#include "raftd.pb-c.h"
#include "storage/kv.h"
#include "util/err.h"
#include "util/log.h"

#define STALE_ENV "RAFTD_TEST_CANARY_STALE_READ"

/* slot->busy: what the group's canary waits for. */
enum { IDLE = 0, READ_DUE = 1 /* the next tick sends the read */, IN_FLIGHT = 2 };

int rd_canary_init(struct rd_node *n, char *msg)
{
	struct rd_canary *c = &n->canary;
	const char *hook = getenv(STALE_ENV);

	if (n->cfg.canary_interval_ms == 0)
		return 0;
	c->slots = calloc(n->n_slots, sizeof *c->slots);
	if (c->slots == NULL)
		return rd_errorf(msg, RD_ENOMEM, "out of memory");
	/* Values grow across restarts too (wall-clock microseconds at start),
	 * which keeps them readable in a dump; only their order matters. */
	c->next_seq = (uint64_t)time(NULL) * 1000000ull;
	c->stale_hook = hook != NULL && strcmp(hook, "1") == 0;
	if (c->stale_hook)
		rd_log_warn("canary stale-read hook armed (test only) " STALE_ENV "=1");
	return 0;
}

void rd_canary_free(struct rd_node *n)
{
	free(n->canary.slots);
	n->canary.slots = NULL;
}

unsigned rd_canary_find_key(const struct rd_routing *rt, uint64_t node, uint64_t group,
                            uint8_t *key, size_t cap, size_t *len_out)
{
	unsigned tried = 0;

	*len_out = 0;
	/* With more data groups than vShards some groups own none, and no
	 * key maps to them: trying all 65,536 candidates on every round cost
	 * each such group a few milliseconds of loop time. */
	if (rd_routing_vshard_count(rt, (uint32_t)group) == 0)
		return 0;
	for (unsigned i = 0; i < 1u << 16; i++) {
		int len = snprintf((char *)key, cap,
		                   "\xffraftd-canary/node-%" PRIu64 "/%u", node, i);
		tried++;
		if (len > 0 && (size_t)len < cap &&
		    rd_routing_group_of(rt, rd_kv_vshard(key, (size_t)len)) == group) {
			*len_out = (size_t)len;
			break;
		}
	}
	return tried;
}

/* A key of this node that group `group` owns under the current routing. */
static bool find_key(struct rd_node *n, struct rd_canary_slot *s)
{
	(void)rd_canary_find_key(&n->topo.routing, n->cfg.node_id, s->group, s->key,
	                         sizeof s->key, &s->key_len);
	return s->key_len != 0;
}

static bool owns_key(const struct rd_node *n, const struct rd_canary_slot *s)
{
	return s->key_len != 0 &&
	       rd_routing_group_of(&n->topo.routing, rd_kv_vshard(s->key, s->key_len)) ==
	           s->group;
}

static void remember_unknown(struct rd_canary_slot *s, uint64_t v)
{
	memmove(&s->unknown[1], &s->unknown[0], sizeof s->unknown - sizeof s->unknown[0]);
	s->unknown[0] = v;
}

static bool was_unknown(const struct rd_canary_slot *s, uint64_t v)
{
	for (size_t i = 0; i < sizeof s->unknown / sizeof s->unknown[0]; i++)
		if (s->unknown[i] == v)
			return true;
	return false;
}

static void on_write(void *ud, uint64_t request_id, const struct rd_result *res)
{
	struct rd_canary_slot *s = ud;

	if (res->code == RAFTD__ERROR_CODE__OK) {
		if (request_id > s->acked)
			s->acked = request_id;
		s->n->canary.writes++;
		s->busy = READ_DUE;
		return;
	}
	/* Not applied or outcome unknown: either way try again next round. */
	remember_unknown(s, request_id);
	s->busy = IDLE;
}

static void on_read(void *ud, uint64_t request_id, const struct rd_result *res)
{
	struct rd_canary_slot *s = ud;
	struct rd_canary *c = &s->n->canary;
	char buf[24];
	uint64_t v = 0;
	bool have = false;

	(void)request_id;
	s->busy = IDLE;
	if (res->code != RAFTD__ERROR_CODE__OK)
		return; /* no answer is not a wrong answer */
	if (res->found && res->value_len > 0 && res->value_len < sizeof buf) {
		memcpy(buf, res->value, res->value_len);
		buf[res->value_len] = '\0';
		have = sscanf(buf, "%" SCNu64, &v) == 1;
	}
	if (have && c->stale_hook)
		v--;
	c->checks++;
	if (have && (v >= s->acked || was_unknown(s, v)))
		return;
	c->violations++;
	rd_log_crit("canary violation: a linearizable read returned %s%s than the "
	            "acknowledged write group=%llu key=%.*s read=%" PRIu64
	            " acknowledged=%" PRIu64,
	            have ? "an older value" : "no value", have ? "" : " rather",
	            (unsigned long long)s->group, (int)s->key_len - 1,
	            (const char *)s->key + 1, v, s->acked);
}

static uint64_t deadline(const struct rd_node *n, uint64_t now)
{
	return now + (uint64_t)n->cfg.request_timeout_ms * 1000000ull;
}

static void start_write(struct rd_node *n, struct rd_canary_slot *s, uint64_t now)
{
	char val[24];
	struct rd_kv_cmd cmd = {.op = RD_KV_PUT};
	uint64_t seq = ++n->canary.next_seq;
	struct rd_waiter *w;
	int err;

	if (!owns_key(n, s) && !find_key(n, s))
		return;
	int vlen = snprintf(val, sizeof val, "%" PRIu64, seq);
	cmd.key = s->key;
	cmd.key_len = (uint32_t)s->key_len;
	cmd.value = (const uint8_t *)val;
	cmd.value_len = (uint32_t)vlen;
	w = rd_waiter_new_write(on_write, s, seq, deadline(n, now), s->group, &cmd, &err);
	if (w == NULL)
		return;
	s->seq = seq;
	s->busy = IN_FLIGHT;
	rd_node_submit(n, w);
}

static void start_read(struct rd_node *n, struct rd_canary_slot *s, uint64_t now)
{
	struct rd_waiter *w =
	    rd_waiter_new(RD_WAIT_FORWARD, on_read, s, s->seq, deadline(n, now));

	if (w == NULL || (w->data = malloc(s->key_len)) == NULL) {
		free(w);
		s->busy = IDLE;
		return;
	}
	memcpy(w->data, s->key, s->key_len);
	w->len = s->key_len;
	w->group = s->group;
	w->op = RD_OP_READ;
	s->busy = IN_FLIGHT;
	rd_node_submit(n, w);
}

void rd_canary_tick(struct rd_node *n, uint64_t now)
{
	struct rd_canary *c = &n->canary;
	uint64_t interval = (uint64_t)n->cfg.canary_interval_ms * 1000000ull;
	struct rd_canary_slot *idle = NULL; /* a due quiesced group, led here first */

	if (c->slots == NULL || !n->ready || n->stopping)
		return;
	for (size_t id = 1; id < n->n_slots; id++) {
		struct rd_canary_slot *s = &c->slots[id];
		if (n->groups[id] == NULL)
			continue;
		if (s->n == NULL) {
			/* First sight: spread the groups (and the nodes) over
			 * the interval. */
			s->n = n;
			s->group = id;
			s->next_ns = now + (interval / n->n_slots) * id +
			             (n->seed % (interval / n->n_slots + 1));
		}
		if (s->busy == READ_DUE) {
			start_read(n, s, now);
			continue;
		}
		if (s->busy != IDLE || now < s->next_ns)
			continue;
		/* A quiesced group is not probed: its log and state machine
		 * cannot change while it stays quiesced (any write or read
		 * wakes it, raft/raft.h), so a lost write or a stale read
		 * can only show once it is awake, and the probe, kept due,
		 * runs on the first tick after it wakes. Probing it would
		 * wake every idle group each interval, the cost quiescence
		 * removes. */
		if (rd_raft_quiesced(n->groups[id]->raft)) {
			if (idle == NULL ||
			    (rd_raft_role(n->groups[id]->raft) == RD_RAFT_LEADER &&
			     rd_raft_role(n->groups[idle->group]->raft) !=
			         RD_RAFT_LEADER))
				idle = s;
			continue;
		}
		s->next_ns = now + interval;
		c->last_write_ns = now;
		start_write(n, s, now);
	}
	/* But a node whose groups are all quiesced still probes one per
	 * interval (one led here when it can): that keeps a synced write
	 * going through its disk, so that a disk turning slow on an idle
	 * node is still judged (health.c) and its leaderships move, and
	 * keeps the canary checking something, at the cost of one group
	 * woken per interval instead of all. */
	if (idle != NULL && now - c->last_write_ns >= interval) {
		idle->next_ns = now + interval;
		c->last_write_ns = now;
		start_write(n, idle, now);
	}
}
