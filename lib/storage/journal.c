/*
 * The per-group journal of applied commands (journal.h; layout in
 * schema.h "journal").
 *
 * Happy path: the driver puts each applied command with its apply; the
 * runtime trims from the oldest with a delete range and a new start
 * record in a later batch; readers iterate from an index.
 * Failure modes: a record whose CRC fails is RD_ECORRUPT naming group and
 * index (a reader ends its stream with it); RocksDB errors are RD_EIO.
 */
#include "storage/journal.h"

#include <stdlib.h>
#include <string.h>

#include "storage/internal.h"
#include "util/err.h"

#define ULL(x) ((unsigned long long)(x))

static uint32_t rec_crc(const uint8_t *key, const uint8_t *v, size_t vlen)
{
	return rd_crc32c(rd_crc32c(0, key, RD_LOG_KEY_LEN), v + 4, vlen - 4);
}

int rd_storage_batch_journal_put(struct rd_storage_batch *b,
                                 const struct rd_journal_rec *r, char *msg)
{
	uint8_t key[RD_LOG_KEY_LEN];

	if (r->index == 0 || r->kind < RD_JOURNAL_RAW || r->kind > RD_JOURNAL_META ||
	    r->status > RD_JOURNAL_NOT_APPLIED)
		return rd_errorf(msg, RD_EINVAL,
		                 "group %llu index %llu: bad journal entry",
		                 ULL(r->group), ULL(r->index));
	rd__batch_begin(b);
	size_t vlen = RD_JOURNAL_VAL_HDR + r->len;
	uint8_t *v = rd__arena_alloc(b, vlen);
	rd_log_key(key, r->group, r->index);
	rd_be64_put(v + 4, r->term);
	v[12] = r->kind;
	v[13] = r->status;
	if (r->len > 0)
		memcpy(v + RD_JOURNAL_VAL_HDR, r->data, r->len);
	rd_be32_put(v, rec_crc(key, v, vlen));
	rocksdb_writebatch_put_cf(b->wb2, b->st->cf[RD_CF_JOURNAL], (const char *)key,
	                          sizeof key, (const char *)v, vlen);
	return 0;
}

static void put_start(struct rd_storage *st, rocksdb_writebatch_t *wb, uint64_t group,
                      uint64_t start)
{
	uint8_t key[RD_LOG_KEY_LEN], v[12];

	rd_log_key(key, group, 0);
	rd_be64_put(v + 4, start);
	rd_be32_put(v, rec_crc(key, v, sizeof v));
	rocksdb_writebatch_put_cf(wb, st->cf[RD_CF_JOURNAL], (const char *)key,
	                          sizeof key, (const char *)v, sizeof v);
}

int rd_storage_batch_journal_trim(struct rd_storage_batch *b, uint64_t group,
                                  uint64_t start, char *msg)
{
	uint8_t lo[RD_LOG_KEY_LEN], hi[RD_LOG_KEY_LEN];

	if (start == 0)
		return rd_errorf(msg, RD_EINVAL, "group %llu: journal start 0",
		                 ULL(group));
	rd__batch_begin(b);
	rd_log_key(lo, group, 1);
	rd_log_key(hi, group, start);
	if (start > 1)
		rocksdb_writebatch_delete_range_cf(b->wb2, b->st->cf[RD_CF_JOURNAL],
		                                   (const char *)lo, sizeof lo,
		                                   (const char *)hi, sizeof hi);
	put_start(b->st, b->wb2, group, start);
	return 0;
}

void rd__journal_restart(struct rd_storage *st, rocksdb_writebatch_t *wb, uint64_t group,
                         uint64_t start)
{
	uint8_t lo[RD_LOG_KEY_LEN], hi[RD_LOG_KEY_LEN];

	rd_log_key(lo, group, 1);
	rd_log_key(hi, group, UINT64_MAX);
	rocksdb_writebatch_delete_range_cf(wb, st->cf[RD_CF_JOURNAL], (const char *)lo,
	                                   sizeof lo, (const char *)hi, sizeof hi);
	put_start(st, wb, group, start);
}

/* Iterate the group's records from index `from`; fn gets each decoded
 * record (index 0 is the start record: kind 0, term = start). */
static int iterate(struct rd_storage *st, uint64_t group, uint64_t from, size_t max,
                   rd_journal_fn fn, void *ud, size_t *scanned, char *msg)
{
	uint8_t seek[RD_LOG_KEY_LEN];
	char *err = NULL;
	size_t n = 0;
	int rv = 0;

	rd_log_key(seek, group, from);
	rocksdb_iterator_t *it =
	    rocksdb_create_iterator_cf(st->db, st->ro, st->cf[RD_CF_JOURNAL]);
	for (rocksdb_iter_seek(it, (const char *)seek, sizeof seek);
	     n < max && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k, *v;
		struct rd_journal_rec r = {.group = group};

		rd__iter_kv(it, &k, &klen, &v, &vlen);
		if (klen != RD_LOG_KEY_LEN || rd_be64_get(k) != group)
			break;
		r.index = rd_be64_get(k + 8);
		if (vlen < 12 || (r.index > 0 && vlen < RD_JOURNAL_VAL_HDR) ||
		    rd_be32_get(v) != rec_crc(k, v, vlen)) {
			rv = rd_errorf(msg, RD_ECORRUPT,
			               "group %llu index %llu: journal record checksum "
			               "mismatch",
			               ULL(group), ULL(r.index));
			break;
		}
		r.term = rd_be64_get(v + 4);
		if (r.index > 0) {
			r.kind = v[12];
			r.status = v[13];
			r.data = v + RD_JOURNAL_VAL_HDR;
			r.len = vlen - RD_JOURNAL_VAL_HDR;
		}
		n++;
		if (fn(ud, &r) != 0)
			break;
	}
	if (rv == 0) {
		rocksdb_iter_get_error(it, &err);
		if (err != NULL)
			rv = rd__rocks_err(err, msg, "journal read");
	}
	rocksdb_iter_destroy(it);
	if (scanned != NULL)
		*scanned = n;
	return rv;
}

static int info_fn(void *ud, const struct rd_journal_rec *r)
{
	struct rd_journal_info *in = ud;

	if (r->index == 0) {
		in->start = r->term;
		return 0;
	}
	if (in->first == 0)
		in->first = r->index;
	in->last = r->index;
	in->count++;
	in->bytes += rd_journal_rec_bytes(r->len);
	return 0;
}

int rd_storage_journal_info(struct rd_storage *st, uint64_t group,
                            struct rd_journal_info *out, char *msg)
{
	memset(out, 0, sizeof *out);
	out->start = 1;
	return iterate(st, group, 0, SIZE_MAX, info_fn, out, NULL, msg);
}

struct read_ctx {
	rd_journal_fn fn;
	void *ud;
	size_t n;
};

static int read_fn(void *ud, const struct rd_journal_rec *r)
{
	struct read_ctx *c = ud;

	if (r->index == 0)
		return 0;
	c->n++;
	return c->fn(c->ud, r);
}

int rd_storage_journal_read(struct rd_storage *st, uint64_t group, uint64_t from,
                            size_t max, rd_journal_fn fn, void *ud, size_t *scanned,
                            char *msg)
{
	struct read_ctx c = {fn, ud, 0};
	int rv = iterate(st, group, from ? from : 1, max, read_fn, &c, NULL, msg);

	if (scanned != NULL)
		*scanned = c.n;
	return rv;
}
