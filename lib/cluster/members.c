/*
 * Member table keys and records: format in members.h.
 */
#include "cluster/members.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "raft/raft.h"
#include "util/bytes.h"
#include "util/err.h"

/* The prefix and the cluster id (cut at 64 bytes) every member-table key
 * starts with; returns its length. */
static size_t key_head(const char *cluster, uint8_t *out)
{
	size_t cl = strnlen(cluster, 64);

	memcpy(out, RD_MEMBERS_PREFIX, RD_MEMBERS_PREFIX_LEN);
	memcpy(out + RD_MEMBERS_PREFIX_LEN, cluster, cl);
	return RD_MEMBERS_PREFIX_LEN + cl;
}

size_t rd_members_key(const char *cluster, uint64_t id, uint8_t *out)
{
	size_t n = key_head(cluster, out);

	out[n++] = '/';
	rd_be64_put(out + n, id);
	return n + 8;
}

size_t rd_members_replica_key(const char *cluster, uint64_t id, uint8_t *out)
{
	size_t n = key_head(cluster, out);

	memcpy(out + n, "/r/", 3);
	rd_be64_put(out + n + 3, id);
	return n + 3 + 8;
}

size_t rd_members_placement_key(const char *cluster, uint64_t group, uint8_t *out)
{
	size_t n = key_head(cluster, out);

	memcpy(out + n, "/p/", 3);
	rd_be64_put(out + n + 3, group);
	return n + 3 + 8;
}

bool rd_members_reserved(const uint8_t *key, size_t len)
{
	return len >= RD_MEMBERS_PREFIX_LEN &&
	       memcmp(key, RD_MEMBERS_PREFIX, RD_MEMBERS_PREFIX_LEN) == 0;
}

size_t rd_members_encode(const struct rd_member_record *r, uint8_t *out)
{
	size_t al = strnlen(r->addr, 255), n = 0;

	out[n++] = r->added ? 2 : 1;
	out[n++] = r->state;
	rd_be64_put(out + n, r->incarnation);
	n += 8;
	out[n++] = (uint8_t)al;
	memcpy(out + n, r->addr, al);
	return n + al;
}

int rd_members_decode(const uint8_t *buf, size_t len, struct rd_member_record *r)
{
	size_t al;

	memset(r, 0, sizeof *r);
	if (len < 11 || (buf[0] != 1 && buf[0] != 2) || buf[1] < RD_MEMBER_JOINING ||
	    buf[1] > RD_MEMBER_REMOVED)
		return RD_ECORRUPT;
	r->added = buf[0] == 2;
	r->state = buf[1];
	r->incarnation = rd_be64_get(buf + 2);
	al = buf[10];
	/* Incarnation 0: added, not registered yet (members.h). */
	if (len != 11 + al)
		return RD_ECORRUPT;
	memcpy(r->addr, buf + 11, al);
	r->addr[al] = 0;
	return 0;
}

const char *rd_members_state_name(uint8_t state)
{
	switch (state) {
	case RD_MEMBER_JOINING:
		return "joining";
	case RD_MEMBER_VOTER:
		return "voter";
	case RD_MEMBER_LEARNER:
		return "learner";
	case RD_MEMBER_LEAVING:
		return "leaving";
	case RD_MEMBER_REMOVED:
		return "removed";
	default:
		return "unknown";
	}
}

size_t rd_members_cc_ctx_encode(uint64_t incarnation, const char *addr, bool joining,
                                uint8_t *out)
{
	size_t al = strnlen(addr, 255), n = 0;

	out[n++] = joining ? 2 : 1;
	rd_be64_put(out + n, incarnation);
	n += 8;
	out[n++] = (uint8_t)al;
	memcpy(out + n, addr, al);
	return n + al;
}

int rd_members_cc_ctx_decode(const uint8_t *buf, size_t len, uint64_t *incarnation,
                             char *addr, bool *joining)
{
	size_t al;

	*incarnation = 0;
	*joining = false;
	addr[0] = 0;
	if (len == 0)
		return 0;
	if (len < 10 || (buf[0] != 1 && buf[0] != 2))
		return RD_ECORRUPT;
	*joining = buf[0] == 2;
	*incarnation = rd_be64_get(buf + 1);
	al = buf[9];
	if (len != 10 + al)
		return RD_ECORRUPT;
	memcpy(addr, buf + 10, al);
	addr[al] = 0;
	return 0;
}

void rd_members_after_cc(uint8_t cc_type, const struct rd_member_record *cur,
                         uint64_t incarnation, const char *addr, bool joining,
                         struct rd_member_record *out)
{
	memset(out, 0, sizeof *out);
	if (cur != NULL)
		*out = *cur;
	switch (cc_type) {
	case RD_CC_ADD_VOTER:
	case RD_CC_ADD_LEARNER:
		out->state = cc_type == RD_CC_ADD_VOTER ? RD_MEMBER_VOTER
		             : joining                  ? RD_MEMBER_JOINING
		                                        : RD_MEMBER_LEARNER;
		out->incarnation = incarnation;
		out->added = true;
		snprintf(out->addr, sizeof out->addr, "%s", addr);
		break;
	case RD_CC_PROMOTE_LEARNER:
		out->state = RD_MEMBER_VOTER;
		break;
	default:
		out->state = RD_MEMBER_REMOVED;
		break;
	}
	if (out->addr[0] == 0)
		snprintf(out->addr, sizeof out->addr, "%s", addr);
}

static bool in(const uint64_t *ids, uint32_t n, uint64_t id)
{
	for (uint32_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/* How many of the voters group 0 would have with `added` made a voter and
 * `removed` removed (0: neither) are reachable, the leader counting itself;
 * *n gets how many voters that is. */
static uint32_t live_after(const struct rd_members_view *v, uint64_t added,
                           uint64_t removed, uint32_t *n)
{
	const struct rd_conf_state *cs = v->conf;
	uint32_t live = 0;

	*n = 0;
	for (uint32_t i = 0; i <= cs->n_voters; i++) {
		uint64_t id = i < cs->n_voters ? cs->voters[i] : added;
		if (id == 0 || id == removed)
			continue;
		(*n)++;
		if (id == v->self || v->live(v->arg, id))
			live++;
	}
	return live;
}

int rd_members_check(uint8_t kind, uint64_t node, bool learner,
                     const struct rd_members_view *v, char *msg)
{
	const struct rd_conf_state *cs = v->conf;
	bool voter = in(cs->voters, cs->n_voters, node);
	bool learns = in(cs->learners, cs->n_learners, node);
	uint32_t nn, live;

	if (node == 0)
		return rd_errorf(msg, RD_EINVAL, "node id 0 is not a node");
	switch (kind) {
	case RD_MEMBERS_ADD:
		if (voter || learns)
			return rd_errorf(
			    msg, RD_EINVAL,
			    "node %llu is already a %s of group %llu: ids are unique",
			    (unsigned long long)node, voter ? "voter" : "learner",
			    (unsigned long long)v->group);
		if (cs->n_voters + cs->n_learners >= RD_RAFT_MAX_MEMBERS)
			return rd_errorf(msg, RD_EINVAL,
			                 "the group has %u members, the most it can hold",
			                 cs->n_voters + cs->n_learners);
		if (learner)
			return 0;
		if (cs->n_voters >= v->max_voters)
			return rd_errorf(
			    msg, RD_EINVAL,
			    "group %llu keeps up to %u voters and has %u: add node "
			    "%llu with --learner",
			    (unsigned long long)v->group, v->max_voters, cs->n_voters,
			    (unsigned long long)node);
		live = live_after(v, node, 0, &nn);
		if (live < nn / 2 + 1)
			return rd_errorf(
			    msg, RD_EINVAL,
			    "adding voter %llu would leave group %llu with %u "
			    "reachable voters of %u, no majority: add it with "
			    "--learner",
			    (unsigned long long)node, (unsigned long long)v->group, live,
			    nn);
		return 0;
	case RD_MEMBERS_PROMOTE: {
		uint64_t m, lag;
		if (voter)
			return rd_errorf(msg, RD_EINVAL, "node %llu is already a voter",
			                 (unsigned long long)node);
		if (!learns)
			return rd_errorf(
			    msg, RD_EINVAL, "node %llu is not a learner of group %llu",
			    (unsigned long long)node, (unsigned long long)v->group);
		if (cs->n_voters >= v->max_voters)
			return rd_errorf(
			    msg, RD_EINVAL, "group %llu keeps up to %u voters and has %u",
			    (unsigned long long)v->group, v->max_voters, cs->n_voters);
		m = v->match(v->arg, node);
		lag = v->last_index > m ? v->last_index - m : 0;
		if (m == 0)
			return rd_errorf(
			    msg, RD_EINVAL,
			    "learner %llu has acknowledged no entry of group %llu "
			    "yet: not promoted",
			    (unsigned long long)node, (unsigned long long)v->group);
		if (lag > v->promote_max_lag)
			return rd_errorf(msg, RD_EINVAL,
			                 "learner %llu is %" PRIu64 " entries behind the "
			                 "leader (match %" PRIu64 ", last %" PRIu64
			                 "; [cluster] promote_max_lag = %" PRIu64
			                 "): not promoted",
			                 (unsigned long long)node, lag, m, v->last_index,
			                 v->promote_max_lag);
		live = live_after(v, node, 0, &nn);
		if (live < nn / 2 + 1)
			return rd_errorf(
			    msg, RD_EINVAL,
			    "promoting learner %llu would leave group %llu with %u "
			    "reachable voters of %u, no majority",
			    (unsigned long long)node, (unsigned long long)v->group, live,
			    nn);
		return 0;
	}
	case RD_MEMBERS_REMOVE:
		if (learns)
			return 0;
		if (!voter)
			return rd_errorf(
			    msg, RD_EINVAL, "node %llu is not a member of group %llu",
			    (unsigned long long)node, (unsigned long long)v->group);
		if (cs->n_voters == 1)
			return rd_errorf(
			    msg, RD_EINVAL,
			    "node %llu is the last voter of group %llu: a group "
			    "needs one",
			    (unsigned long long)node, (unsigned long long)v->group);
		live = live_after(v, 0, node, &nn);
		if (live < nn / 2 + 1)
			return rd_errorf(
			    msg, RD_EINVAL,
			    "removing node %llu would leave group %llu with %u "
			    "reachable voters of %u, no quorum",
			    (unsigned long long)node, (unsigned long long)v->group, live,
			    nn);
		return 0;
	default:
		return rd_errorf(msg, RD_EINVAL, "unknown membership request %u", kind);
	}
}
