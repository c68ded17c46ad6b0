#include "helpers.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/kv.h"
#include "storage/schema.h"
#include "util/err.h"
#include "util/log.h"

void th_tmpdir(char *out, size_t cap)
{
	const char *t = getenv("TMPDIR");
	snprintf(out, cap, "%s/rd-storage-XXXXXX", t && *t ? t : "/tmp");
	cr_assert_not_null(mkdtemp(out));
	rd_log_set_level(RD_LOG_WARNING);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

void th_rmtree(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

struct rd_storage *th_open(const char *dir)
{
	struct rd_storage_options o;
	struct rd_storage *st = NULL;
	char msg[RD_ERRMSG_SIZE] = "";

	rd_storage_options_init(&o);
	o.create_if_missing = true;
	o.cluster_id = "test";
	o.block_cache_bytes = 1u << 20;
	int rv = rd_storage_open(dir, &o, &st, msg);
	cr_assert_eq(rv, 0, "open %s: %s", dir, msg);
	return st;
}

void th_set_conf(struct rd_storage *s, uint64_t group, const struct rd_conf_state *cs,
                 uint64_t compact_to)
{
	struct rd_storage_batch *b = rd_storage_batch_new(s);
	char msg[RD_ERRMSG_SIZE] = "";

	cr_assert_eq(rd_storage_batch_set_conf_state(b, group, cs, msg), 0, "%s", msg);
	if (compact_to > 0)
		cr_assert_eq(rd_storage_batch_compact(b, group, compact_to, cs, msg), 0,
		             "%s", msg);
	rd_storage_commit(s, b);
	rd_storage_batch_free(b);
}

struct rd_storage *th_tmp_open(char *dir, size_t cap)
{
	th_tmpdir(dir, cap);
	return th_open(dir);
}

void th_close_rm(struct rd_storage *st, const char *dir)
{
	rd_storage_close(st);
	th_rmtree(dir);
}

struct rd_storage *th_reopen(struct rd_storage *st, const char *dir)
{
	rd_storage_close(st);
	return th_open(dir);
}

int th_try_open(const char *dir, char *msg)
{
	struct rd_storage_options o;
	struct rd_storage *st = NULL;

	rd_storage_options_init(&o);
	o.cluster_id = "test";
	int rv = rd_storage_open(dir, &o, &st, msg);
	if (rv == 0)
		rd_storage_close(st);
	return rv;
}

void th_fill(uint8_t *buf, uint32_t len, uint64_t group, uint64_t index, uint64_t term)
{
	uint64_t x = group * 0x9e3779b97f4a7c15ull ^ index * 0xc2b2ae3d27d4eb4full ^ term;
	for (uint32_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (uint8_t)x;
	}
}

void th_entries(struct rd_entry *ents, uint8_t *data, size_t n, uint64_t group,
                uint64_t first, uint64_t term, uint32_t len)
{
	for (size_t i = 0; i < n; i++) {
		ents[i].index = first + i;
		ents[i].term = term;
		ents[i].type = RD_ENTRY_NORMAL;
		ents[i].len = len;
		ents[i].data = data + i * len;
		th_fill(ents[i].data, len, group, first + i, term);
	}
}

void th_append(struct rd_storage *st, uint64_t group, uint64_t first, size_t n,
               uint64_t term)
{
	struct rd_entry *ents = calloc(n, sizeof *ents);
	uint8_t *data = malloc(n * 32 + 1);
	char msg[RD_ERRMSG_SIZE] = "";
	struct rd_storage_batch *b = rd_storage_batch_new(st);

	th_entries(ents, data, n, group, first, term, 32);
	int rv = rd_storage_batch_append(b, group, ents, n, msg);
	cr_assert_eq(rv, 0, "append: %s", msg);
	rd_storage_commit(st, b);
	rd_storage_batch_free(b);
	free(ents);
	free(data);
}

static const char *const cfn[7] = {"default", "log",     "state",  "kv",
                                   "catalog", "session", "journal"};

void th_raw_open(struct th_raw *r, const char *dir)
{
	char *err = NULL;
	const rocksdb_options_t *cfo[7];

	r->opts = rocksdb_options_create();
	for (int i = 0; i < 7; i++)
		cfo[i] = r->opts;
	r->db = rocksdb_open_column_families(r->opts, dir, 7, (const char *const *)cfn,
	                                     cfo, r->cf, &err);
	cr_assert_null(err, "raw open: %s", err);
}

void th_raw_close(struct th_raw *r)
{
	for (int i = 0; i < 7; i++)
		rocksdb_column_family_handle_destroy(r->cf[i]);
	rocksdb_close(r->db);
	rocksdb_options_destroy(r->opts);
}

void th_raw_put(struct th_raw *r, int cf, const void *k, size_t klen, const void *v,
                size_t vlen)
{
	char *err = NULL;
	rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
	rocksdb_writeoptions_set_sync(wo, 1);
	rocksdb_put_cf(r->db, wo, r->cf[cf], k, klen, v, vlen, &err);
	rocksdb_writeoptions_destroy(wo);
	cr_assert_null(err, "raw put: %s", err);
}

void th_raw_delete(struct th_raw *r, int cf, const void *k, size_t klen)
{
	char *err = NULL;
	rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
	rocksdb_writeoptions_set_sync(wo, 1);
	rocksdb_delete_cf(r->db, wo, r->cf[cf], k, klen, &err);
	rocksdb_writeoptions_destroy(wo);
	cr_assert_null(err, "raw delete: %s", err);
}

char *th_raw_get(struct th_raw *r, int cf, const void *k, size_t klen, size_t *vlen)
{
	char *err = NULL;
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	char *v = rocksdb_get_cf(r->db, ro, r->cf[cf], k, klen, vlen, &err);
	rocksdb_readoptions_destroy(ro);
	cr_assert_null(err, "raw get: %s", err);
	return v;
}

void th_raw_flip(struct th_raw *r, int cf, const void *k, size_t klen, size_t from_end,
                 uint8_t mask)
{
	size_t vlen;
	char *v = th_raw_get(r, cf, k, klen, &vlen);

	cr_assert_not_null(v);
	cr_assert_geq(vlen, from_end);
	v[vlen - from_end] ^= (char)mask;
	th_raw_put(r, cf, k, klen, v, vlen);
	free(v);
}

void th_raw_flush(struct th_raw *r)
{
	char *err = NULL;
	rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
	rocksdb_flushoptions_set_wait(fo, 1);
	for (int i = 0; i < 7; i++) {
		rocksdb_flush_cf(r->db, fo, r->cf[i], &err);
		cr_assert_null(err, "flush: %s", err);
	}
	rocksdb_flushoptions_destroy(fo);
}

void th_put_keys(struct rd_storage *s, uint64_t group, const char *prefix, int n,
                 size_t vlen, uint64_t term)
{
	struct rd_storage_batch *b = rd_storage_batch_new(s);
	uint64_t first = rd_storage_last_index(s, group) + 1;
	struct rd_entry *e = calloc((size_t)n, sizeof *e);
	uint8_t *val = malloc(vlen + 1);
	uint8_t(*cmds)[2048] = malloc((size_t)n * 2048);
	struct rd_kv_result r;
	char msg[RD_ERRMSG_SIZE];
	memset(val, 'v', vlen);
	for (int i = 0; i < n; i++) {
		char k[64];
		int kl = snprintf(k, sizeof k, "%s%05d", prefix, i);
		struct rd_kv_cmd c = {.op = RD_KV_PUT,
		                      .key = (uint8_t *)k,
		                      .key_len = (uint32_t)kl,
		                      .value = val,
		                      .value_len = (uint32_t)vlen};
		size_t len;
		cr_assert_eq(rd_kv_encode(&c, cmds[i], 2048, &len), 0);
		e[i] = (struct rd_entry){.term = term,
		                         .index = first + (uint64_t)i,
		                         .type = RD_ENTRY_NORMAL,
		                         .len = (uint32_t)len,
		                         .data = cmds[i]};
	}
	cr_assert_eq(rd_storage_batch_append(b, group, e, (size_t)n, msg), 0, "%s", msg);
	struct rd_hard_state hs = {.term = term, .commit = first + (uint64_t)n - 1};
	cr_assert_eq(rd_storage_batch_set_hard_state(b, group, &hs, msg), 0, "%s", msg);
	for (int i = 0; i < n; i++)
		cr_assert_eq(rd_storage_batch_apply_kv(b, group, e[i].index, e[i].data,
		                                       e[i].len, &r, msg),
		             0, "%s", msg);
	rd_storage_commit(s, b);
	rd_storage_batch_free(b);
	free(e);
	free(val);
	free(cmds);
}
