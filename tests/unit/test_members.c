/*
 * The member table's keys and records (cluster/members.h), and the rule
 * that makes a wiped node unable to take over its old identity: the
 * registration is a CAS on an absent key (storage/kv.h), so it applies
 * once per node id and a second incarnation's registration fails on every
 * replica alike; the record survives a restart of the storage (it is
 * applied state, persisted with group 0's applied index).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/members.h"
#include "raft/raft.h"
#include "storage/kv.h"
#include "storage/storage.h"
#include "util/err.h"

Test(members, records_round_trip_and_malformed_ones_are_refused)
{
	struct rd_member_record r = {.state = RD_MEMBER_VOTER, .incarnation = 0xfeed},
	                        back;
	uint8_t buf[RD_MEMBERS_VALUE_MAX];
	size_t n;

	snprintf(r.addr, sizeof r.addr, "127.0.0.1:7001");
	n = rd_members_encode(&r, buf);
	cr_assert_eq(rd_members_decode(buf, n, &back), 0);
	cr_assert_eq(back.incarnation, 0xfeed);
	cr_assert_eq(back.state, RD_MEMBER_VOTER);
	cr_assert_str_eq(back.addr, "127.0.0.1:7001");
	cr_assert_eq(rd_members_decode(buf, n - 1, &back), RD_ECORRUPT, "short");
	buf[n] = 0;
	cr_assert_eq(rd_members_decode(buf, n + 1, &back), RD_ECORRUPT, "trailing");
	buf[1] = 9;
	cr_assert_eq(rd_members_decode(buf, n, &back), RD_ECORRUPT, "state");
	/* Incarnation 0: added by members add, not registered yet. */
	r.incarnation = 0;
	r.state = RD_MEMBER_REMOVED;
	n = rd_members_encode(&r, buf);
	cr_assert_eq(rd_members_decode(buf, n, &back), 0, "incarnation 0");
	cr_assert_eq(back.incarnation, 0);
	cr_assert_eq(back.state, RD_MEMBER_REMOVED);
	cr_assert_str_eq(rd_members_state_name(back.state), "removed");
}

Test(members, conf_change_contexts_round_trip)
{
	uint8_t buf[RD_MEMBERS_CC_CTX_MAX];
	uint64_t inc;
	char addr[256];
	bool joining;
	size_t n = rd_members_cc_ctx_encode(0xabcdef, "10.0.0.4:7001", false, buf);

	cr_assert_eq(rd_members_cc_ctx_decode(buf, n, &inc, addr, &joining), 0);
	cr_assert_eq(inc, 0xabcdef);
	cr_assert_str_eq(addr, "10.0.0.4:7001");
	cr_assert_not(joining);
	cr_assert_eq(rd_members_cc_ctx_decode(buf, n - 1, &inc, addr, &joining),
	             RD_ECORRUPT);
	cr_assert_eq(rd_members_cc_ctx_decode(buf, 0, &inc, addr, &joining), 0,
	             "no context");
	cr_assert_eq(inc, 0);
	cr_assert_str_eq(addr, "");
	n = rd_members_cc_ctx_encode(5, "h:1", true, buf);
	cr_assert_eq(rd_members_cc_ctx_decode(buf, n, &inc, addr, &joining), 0);
	cr_assert(joining);
	buf[0] = 3;
	cr_assert_eq(rd_members_cc_ctx_decode(buf, n, &inc, addr, &joining), RD_ECORRUPT);
}

Test(members, a_conf_change_sets_the_record_it_names)
{
	struct rd_member_record cur = {.state = RD_MEMBER_LEARNER, .incarnation = 77},
	                        out;

	snprintf(cur.addr, sizeof cur.addr, "127.0.0.1:9");
	rd_members_after_cc(RD_CC_ADD_LEARNER, NULL, 0, "127.0.0.1:5", false, &out);
	cr_assert_eq(out.state, RD_MEMBER_LEARNER);
	cr_assert_eq(out.incarnation, 0);
	cr_assert(out.added);
	rd_members_after_cc(RD_CC_ADD_LEARNER, &cur, 99, "127.0.0.1:5", true, &out);
	cr_assert_eq(out.state, RD_MEMBER_JOINING, "a replacement joins");
	cr_assert_eq(out.incarnation, 99);
	cr_assert_str_eq(out.addr, "127.0.0.1:5");
	rd_members_after_cc(RD_CC_PROMOTE_LEARNER, &cur, 0, "", false, &out);
	cr_assert_eq(out.state, RD_MEMBER_VOTER);
	cr_assert_eq(out.incarnation, 77, "promotion keeps the registration");
	cr_assert_str_eq(out.addr, "127.0.0.1:9");
	rd_members_after_cc(RD_CC_REMOVE, &cur, 0, "", false, &out);
	cr_assert_eq(out.state, RD_MEMBER_REMOVED);
	cr_assert_eq(out.incarnation, 77, "a removed incarnation is remembered");
	rd_members_after_cc(RD_CC_ADD_VOTER, &out, 0, "127.0.0.1:6", false, &out);
	cr_assert_eq(out.state, RD_MEMBER_VOTER, "an id can be added again");
	cr_assert_eq(out.incarnation, 0);
}

/* rd_members_check: a leader (1) of voters {1,2,3} and learner 4. */
struct view {
	uint64_t match[8];
	bool live[8];
	uint64_t group;
};

static uint64_t v_match(void *arg, uint64_t id)
{
	return ((struct view *)arg)->match[id];
}

static bool v_live(void *arg, uint64_t id)
{
	return ((struct view *)arg)->live[id];
}

static int check(struct view *vw, struct rd_conf_state *cs, uint8_t kind, uint64_t node,
                 bool learner, char *msg)
{
	struct rd_members_view v = {.conf = cs,
	                            .group = vw->group,
	                            .max_voters = RD_MEMBERS_MAX_VOTERS,
	                            .self = 1,
	                            .last_index = 5000,
	                            .promote_max_lag = 100,
	                            .match = v_match,
	                            .live = v_live,
	                            .arg = vw};
	return rd_members_check(kind, node, learner, &v, msg);
}

Test(members, bad_membership_requests_are_refused_with_why)
{
	struct rd_conf_state cs = {
	    .n_voters = 3, .voters = {1, 2, 3}, .n_learners = 1, .learners = {4}};
	struct view vw = {.match = {0, 5000, 5000, 5000, 4000},
	                  .live = {false, true, true, true, true, true}};
	char msg[RD_ERRMSG_SIZE];

	cr_assert_eq(check(&vw, &cs, RD_MEMBERS_ADD, 2, false, msg), RD_EINVAL);
	cr_assert(strstr(msg, "already a voter") != NULL, "%s", msg);
	cr_assert_eq(check(&vw, &cs, RD_MEMBERS_ADD, 4, true, msg), RD_EINVAL);
	cr_assert_eq(check(&vw, &cs, RD_MEMBERS_ADD, 0, true, msg), RD_EINVAL);
	cr_assert_eq(check(&vw, &cs, RD_MEMBERS_ADD, 5, false, msg), 0);
	cr_assert_eq(check(&vw, &cs, RD_MEMBERS_ADD, 5, true, msg), 0);

	/* Far behind: 1000 entries, the bound is 100. */
	cr_assert_eq(check(&vw, &cs, RD_MEMBERS_PROMOTE, 4, false, msg), RD_EINVAL);
	cr_assert(strstr(msg, "1000 entries behind") != NULL, "%s", msg);
	vw.match[4] = 4900;
	cr_assert_eq(check(&vw, &cs, RD_MEMBERS_PROMOTE, 4, false, msg), 0);
	vw.match[4] = 0;
	cr_assert_eq(check(&vw, &cs, RD_MEMBERS_PROMOTE, 4, false, msg), RD_EINVAL);
	cr_assert(strstr(msg, "acknowledged no entry") != NULL, "%s", msg);
	vw.match[4] = 4900;
	cr_assert_eq(check(&vw, &cs, RD_MEMBERS_PROMOTE, 2, false, msg), RD_EINVAL);
	cr_assert_eq(check(&vw, &cs, RD_MEMBERS_PROMOTE, 6, false, msg), RD_EINVAL);

	cr_assert_eq(check(&vw, &cs, RD_MEMBERS_REMOVE, 6, false, msg), RD_EINVAL);
	cr_assert(strstr(msg, "not a member") != NULL, "%s", msg);
	cr_assert_eq(check(&vw, &cs, RD_MEMBERS_REMOVE, 4, false, msg), 0, "a learner");
	cr_assert_eq(check(&vw, &cs, RD_MEMBERS_REMOVE, 3, false, msg), 0);
	/* 2 is down: removing 3 leaves {1, 2} with one reachable voter. */
	vw.live[2] = false;
	cr_assert_eq(check(&vw, &cs, RD_MEMBERS_REMOVE, 3, false, msg), RD_EINVAL);
	cr_assert(strstr(msg, "no quorum") != NULL, "%s", msg);
	/* The message names the group it checked (a data group's too). */
	cr_assert(strstr(msg, "group 0 ") != NULL, "%s", msg);
	vw.group = 7;
	cr_assert_eq(check(&vw, &cs, RD_MEMBERS_REMOVE, 3, false, msg), RD_EINVAL);
	cr_assert(strstr(msg, "leave group 7 ") != NULL, "%s", msg);
	vw.group = 0;
	/* ... and adding a voter that is down too leaves no majority. */
	vw.live[5] = false;
	cr_assert_eq(check(&vw, &cs, RD_MEMBERS_ADD, 5, false, msg), RD_EINVAL);

	struct rd_conf_state one = {.n_voters = 1, .voters = {1}};
	cr_assert_eq(check(&vw, &one, RD_MEMBERS_REMOVE, 1, false, msg), RD_EINVAL);
	cr_assert(strstr(msg, "last voter") != NULL, "%s", msg);

	struct rd_conf_state five = {.n_voters = 5, .voters = {1, 2, 3, 4, 5}};
	memset(vw.live, true, sizeof vw.live);
	cr_assert_eq(check(&vw, &five, RD_MEMBERS_ADD, 6, false, msg), RD_EINVAL);
	cr_assert(strstr(msg, "up to 5 voters") != NULL, "%s", msg);
	cr_assert_eq(check(&vw, &five, RD_MEMBERS_ADD, 6, true, msg), 0);
}

/* Promoting a learner changes the majority (thesis §4.1): with voters
 * {1, 2, 3} and learner 4, the new majority of four is three reachable
 * voters, the learner counted. */
Test(members, a_promotion_that_leaves_no_reachable_majority_is_refused)
{
	struct rd_conf_state cs = {
	    .n_voters = 3, .voters = {1, 2, 3}, .n_learners = 1, .learners = {4}};
	struct view vw = {.match = {0, 5000, 5000, 5000, 4950},
	                  .live = {false, true, true, false, true}};
	char msg[RD_ERRMSG_SIZE];

	cr_assert_eq(check(&vw, &cs, RD_MEMBERS_PROMOTE, 4, false, msg), 0, "%s", msg);
	vw.live[4] = false;
	cr_assert_eq(check(&vw, &cs, RD_MEMBERS_PROMOTE, 4, false, msg), RD_EINVAL);
	cr_assert(strstr(msg, "2 reachable voters of 4, no majority") != NULL, "%s", msg);
	vw.live[4] = true;
	vw.live[2] = false;
	cr_assert_eq(check(&vw, &cs, RD_MEMBERS_PROMOTE, 4, false, msg), RD_EINVAL);
	cr_assert(strstr(msg, "2 reachable voters of 4") != NULL, "%s", msg);
}

Test(members, keys_are_reserved_and_name_the_cluster)
{
	uint8_t a[RD_MEMBERS_KEY_MAX], b[RD_MEMBERS_KEY_MAX];
	size_t la = rd_members_key("raftd-1", 3, a),
	       lb = rd_members_key("raftd-1-r2", 3, b);

	cr_assert(rd_members_reserved(a, la));
	cr_assert(rd_members_reserved(b, lb));
	cr_assert(la != lb || memcmp(a, b, la) != 0,
	          "a restored cluster does not see the old cluster's table");
	cr_assert_not(rd_members_reserved((const uint8_t *)"raftd/member/x", 14));
	cr_assert_not(rd_members_reserved(a, RD_MEMBERS_PREFIX_LEN - 1));
	cr_assert_eq(a[la - 1], 3);
}

static int apply_register(struct rd_storage *st, uint64_t index, uint64_t inc,
                          int *status)
{
	uint8_t key[RD_MEMBERS_KEY_MAX], val[RD_MEMBERS_VALUE_MAX], cmdbuf[512];
	struct rd_member_record r = {.state = RD_MEMBER_VOTER, .incarnation = inc};
	struct rd_kv_cmd cmd = {.op = RD_KV_CAS, .has_expected = false};
	struct rd_kv_result res;
	struct rd_storage_batch *b = rd_storage_batch_new(st);
	char msg[RD_ERRMSG_SIZE];
	size_t len;
	int rv;

	cmd.key = key;
	cmd.key_len = (uint32_t)rd_members_key(rd_storage_cluster_id(st), 2, key);
	cmd.value = val;
	cmd.value_len = (uint32_t)rd_members_encode(&r, val);
	cr_assert_eq(rd_kv_encode(&cmd, cmdbuf, sizeof cmdbuf, &len), 0);
	/* Committed first, as the driver does: entry `index` in group 0's log. */
	struct rd_entry e = {.term = 1,
	                     .index = index,
	                     .type = RD_ENTRY_NORMAL,
	                     .len = (uint32_t)len,
	                     .data = cmdbuf};
	struct rd_hard_state hs = {.term = 1, .commit = index};
	cr_assert_eq(rd_storage_batch_append(b, RD_STORAGE_META_GROUP, &e, 1, msg), 0,
	             "%s", msg);
	cr_assert_eq(rd_storage_batch_set_hard_state(b, RD_STORAGE_META_GROUP, &hs, msg),
	             0, "%s", msg);
	rd_storage_commit(st, b);
	rv = rd_storage_batch_apply_kv(b, RD_STORAGE_META_GROUP, index, cmdbuf, len, &res,
	                               msg);
	if (rv == 0)
		rd_storage_commit(st, b);
	*status = res.status;
	rd_storage_batch_free(b);
	return rv;
}

static uint64_t registered(struct rd_storage *st)
{
	uint8_t key[RD_MEMBERS_KEY_MAX], *val = NULL;
	size_t kl = rd_members_key(rd_storage_cluster_id(st), 2, key), vl = 0;
	struct rd_member_record r;
	char msg[RD_ERRMSG_SIZE];

	if (rd_storage_kv_get(st, RD_STORAGE_META_GROUP, key, kl, &val, &vl, msg) != 0)
		return 0;
	cr_assert_eq(rd_members_decode(val, vl, &r), 0);
	free(val);
	return r.incarnation;
}

/* Open the storage in `dir`, creating it, as cluster "raftd-test". */
static struct rd_storage *open_store(const char *dir)
{
	struct rd_storage_options o;
	struct rd_storage *st;
	char msg[RD_ERRMSG_SIZE];

	rd_storage_options_init(&o);
	o.create_if_missing = true;
	o.cluster_id = "raftd-test";
	cr_assert_eq(rd_storage_open(dir, &o, &st, msg), 0, "%s", msg);
	return st;
}

static void remove_dir(const char *dir)
{
	char cmd[64];

	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

Test(members, first_registration_wins_and_survives_a_restart)
{
	char dir[] = "/tmp/rd-members-XXXXXX";
	struct rd_storage *st;
	struct rd_storage_group_info info;
	int status;

	cr_assert_not_null(mkdtemp(dir));
	st = open_store(dir);
	cr_assert_eq(registered(st), 0);
	cr_assert_eq(apply_register(st, 1, 0xaaaa, &status), 0);
	cr_assert_eq(status, 0);
	cr_assert_eq(registered(st), 0xaaaa);
	/* The same id with a new incarnation (a wiped node): refused. */
	cr_assert_eq(apply_register(st, 2, 0xbbbb, &status), 0);
	cr_assert_eq(status, RD_ECASFAILED);
	cr_assert_eq(registered(st), 0xaaaa);
	rd_storage_close(st);

	st = open_store(dir);
	cr_assert_eq(registered(st), 0xaaaa, "the table is loaded at restart");
	cr_assert_eq(rd_storage_group_info(st, RD_STORAGE_META_GROUP, &info), 0);
	cr_assert_eq(info.applied, 2, "applied with the same batch");
	rd_storage_close(st);
	remove_dir(dir);
}

/* Commit entry `index` of group 0 (a conf change: no command) whose apply
 * writes `val` (NULL: deletes) under "k" outside any command, checking the
 * batch shows the write before the commit. */
static void apply_raw(struct rd_storage *st, uint64_t index, const char *val)
{
	struct rd_storage_batch *b = rd_storage_batch_new(st);
	struct rd_entry e = {.term = 1, .index = index, .type = RD_ENTRY_CONF_CHANGE};
	struct rd_hard_state hs = {.term = 1, .commit = index};
	const uint8_t *v;
	char msg[RD_ERRMSG_SIZE];
	size_t vl;

	cr_assert_eq(rd_storage_batch_append(b, 0, &e, 1, msg), 0, "%s", msg);
	cr_assert_eq(rd_storage_batch_set_hard_state(b, 0, &hs, msg), 0, "%s", msg);
	rd_storage_commit(st, b);
	rd_storage_batch_kv_write(b, 0, (const uint8_t *)"k", 1, (const uint8_t *)val,
	                          val != NULL ? strlen(val) : 0);
	if (val != NULL) {
		cr_assert_eq(
		    rd_storage_batch_kv_get(b, 0, (const uint8_t *)"k", 1, &v, &vl), 0);
		cr_assert_eq(vl, strlen(val));
		cr_assert_eq(memcmp(v, val, vl), 0);
	} else {
		cr_assert_eq(
		    rd_storage_batch_kv_get(b, 0, (const uint8_t *)"k", 1, &v, &vl),
		    RD_ENOTFOUND);
	}
	cr_assert_eq(rd_storage_batch_kv_get(b, 1, (const uint8_t *)"k", 1, &v, &vl),
	             RD_ENOTFOUND, "groups do not share keys");
	cr_assert_eq(rd_storage_batch_set_applied(b, 0, index, msg), 0, "%s", msg);
	rd_storage_commit(st, b);
	rd_storage_batch_free(b);
}

/* The writes a conf-change entry makes outside any command (a member
 * record, a replica key, multiraft/applier.c): seen through the batch
 * before the commit, as a later entry's CAS in the same batch sees them,
 * durable with the entry's applied index, and a delete hides the key. */
Test(members, batch_writes_are_read_through_the_batch)
{
	char dir[] = "/tmp/rd-members-XXXXXX", msg[RD_ERRMSG_SIZE];
	struct rd_storage *st;
	uint8_t *dv;
	size_t vl;

	cr_assert_not_null(mkdtemp(dir));
	st = open_store(dir);
	apply_raw(st, 1, "v1");
	cr_assert_eq(rd_storage_kv_get(st, 0, (const uint8_t *)"k", 1, &dv, &vl, msg), 0,
	             "%s", msg);
	cr_assert_eq(vl, 2);
	cr_assert_eq(memcmp(dv, "v1", 2), 0);
	free(dv);
	apply_raw(st, 2, NULL);
	cr_assert_eq(rd_storage_kv_get(st, 0, (const uint8_t *)"k", 1, &dv, &vl, msg),
	             RD_ENOTFOUND);
	rd_storage_close(st);
	remove_dir(dir);
}
