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
	r.incarnation = 0;
	n = rd_members_encode(&r, buf);
	cr_assert_eq(rd_members_decode(buf, n, &back), RD_ECORRUPT, "incarnation 0");
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

Test(members, first_registration_wins_and_survives_a_restart)
{
	char dir[] = "/tmp/rd-members-XXXXXX", cmd[64];
	struct rd_storage_options o;
	struct rd_storage *st;
	struct rd_storage_group_info info;
	char msg[RD_ERRMSG_SIZE];
	int status;

	cr_assert_not_null(mkdtemp(dir));
	rd_storage_options_init(&o);
	o.create_if_missing = true;
	o.cluster_id = "raftd-test";
	cr_assert_eq(rd_storage_open(dir, &o, &st, msg), 0, "%s", msg);
	cr_assert_eq(registered(st), 0);
	cr_assert_eq(apply_register(st, 1, 0xaaaa, &status), 0);
	cr_assert_eq(status, 0);
	cr_assert_eq(registered(st), 0xaaaa);
	/* The same id with a new incarnation (a wiped node): refused. */
	cr_assert_eq(apply_register(st, 2, 0xbbbb, &status), 0);
	cr_assert_eq(status, RD_ECASFAILED);
	cr_assert_eq(registered(st), 0xaaaa);
	rd_storage_close(st);

	cr_assert_eq(rd_storage_open(dir, &o, &st, msg), 0, "%s", msg);
	cr_assert_eq(registered(st), 0xaaaa, "the table is loaded at restart");
	cr_assert_eq(rd_storage_group_info(st, RD_STORAGE_META_GROUP, &info), 0);
	cr_assert_eq(info.applied, 2, "applied with the same batch");
	rd_storage_close(st);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}
