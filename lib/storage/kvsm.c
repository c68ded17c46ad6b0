/*
 * The key-value state machine: committed KV commands (kv.h) are applied into
 * the "kv" column family in the same batch that advances the group's
 * applied index, so a restart neither loses nor re-applies an entry.
 *
 * Within one batch, commands must see the writes of earlier commands that
 * are not in RocksDB yet (a put then a cas on the same key). The batch keeps
 * an overlay: a hash table from (group, key) to the latest value or
 * deletion, in arena memory, consulted before RocksDB.
 *
 * Failure modes: a malformed command is skipped deterministically (every
 * replica sees the same bytes); a failed RocksDB read while applying is
 * fatal (the apply result must not depend on a transient error).
 */
#include <stdlib.h>
#include <string.h>

#include "storage/internal.h"
#include "storage/kv.h"
#include "util/err.h"
#include "util/log.h"

void rd__kv_reset(struct rd_storage_batch *b)
{
	if (b->nkv > 0)
		memset(b->kvslots, 0, b->nkvslots * sizeof *b->kvslots);
	b->nkv = 0;
}

void rd__kv_free(struct rd_storage_batch *b)
{
	free(b->kv);
	free(b->kvslots);
}

static struct rd_kvrec *lookup(struct rd_storage_batch *b, uint64_t h, const uint8_t *key,
                               size_t klen)
{
	if (b->nkv == 0)
		return NULL;
	for (size_t i = h & (b->nkvslots - 1);; i = (i + 1) & (b->nkvslots - 1)) {
		uint32_t s = b->kvslots[i];
		if (s == 0)
			return NULL;
		struct rd_kvrec *r = &b->kv[s - 1];
		if (r->hash == h && r->klen == klen && memcmp(r->key, key, klen) == 0)
			return r;
	}
}

static void slot_insert(struct rd_storage_batch *b, uint64_t h, uint32_t idx)
{
	size_t i = h & (b->nkvslots - 1);
	while (b->kvslots[i] != 0)
		i = (i + 1) & (b->nkvslots - 1);
	b->kvslots[i] = idx + 1;
}

/* Record the latest value (val NULL: deleted) of a composite key. */
static void overlay_set(struct rd_storage_batch *b, uint64_t h, const uint8_t *key,
                        size_t klen, const uint8_t *val, size_t vlen)
{
	struct rd_kvrec *r = lookup(b, h, key, klen);
	if (r != NULL) {
		r->val = val;
		r->vlen = vlen;
		return;
	}
	if ((b->nkv + 1) * 2 > b->nkvslots) {
		size_t n = b->nkvslots ? b->nkvslots * 2 : 256;
		free(b->kvslots);
		b->kvslots = rd_xcalloc(n, sizeof *b->kvslots);
		b->nkvslots = n;
		for (size_t i = 0; i < b->nkv; i++)
			slot_insert(b, b->kv[i].hash, (uint32_t)i);
	}
	if (b->nkv == b->capkv) {
		b->capkv = b->capkv ? b->capkv * 2 : 128;
		b->kv = rd_xrealloc(b->kv, b->capkv * sizeof *b->kv);
	}
	b->kv[b->nkv] = (struct rd_kvrec){h, key, klen, val, vlen};
	slot_insert(b, h, (uint32_t)b->nkv);
	b->nkv++;
}

/* The current value of a composite key: overlay first, then RocksDB. The
 * value is copied into the arena (valid until the batch is reset). */
static bool current(struct rd_storage_batch *b, uint64_t h, const uint8_t *key,
                    size_t klen, const uint8_t **val, size_t *vlen)
{
	struct rd_kvrec *r = lookup(b, h, key, klen);
	char *err = NULL;

	if (r != NULL) {
		*val = r->val;
		*vlen = r->vlen;
		return r->val != NULL;
	}
	struct rd_storage *st = b->st;
	rocksdb_pinnableslice_t *ps = rocksdb_get_pinned_cf(
	    st->db, st->ro, st->cf[RD_CF_KV], (const char *)key, klen, &err);
	if (err != NULL)
		rd_fatal(RD_STORAGE_FATAL_FMT, "state machine read while applying", err);
	if (ps == NULL)
		return false;
	size_t n;
	const char *v = rocksdb_pinnableslice_value(ps, &n);
	uint8_t *copy = rd__arena_alloc(b, n ? n : 1);
	memcpy(copy, v, n);
	rocksdb_pinnableslice_destroy(ps);
	*val = copy;
	*vlen = n;
	return true;
}

static void write_kv(struct rd_storage_batch *b, uint64_t h, const uint8_t *key,
                     size_t klen, const uint8_t *val, size_t vlen, bool del)
{
	rocksdb_column_family_handle_t *cf = b->st->cf[RD_CF_KV];
	if (del) {
		rocksdb_writebatch_delete_cf(b->wb2, cf, (const char *)key, klen);
		overlay_set(b, h, key, klen, NULL, 0);
		return;
	}
	uint8_t *copy = rd__arena_alloc(b, vlen ? vlen : 1);
	if (vlen > 0)
		memcpy(copy, val, vlen);
	rocksdb_writebatch_put_cf(b->wb2, cf, (const char *)key, klen, (const char *)copy,
	                          vlen);
	overlay_set(b, h, key, klen, copy, vlen);
}

/* Apply a decoded PUT, DELETE or CAS of `group`. */
static void apply_cmd(struct rd_storage_batch *b, uint64_t group,
                      const struct rd_kv_cmd *c, struct rd_kv_result *res)
{
	size_t klen = RD_KV_KEY_PREFIX + c->key_len;
	uint8_t *key = rd__arena_alloc(b, klen);
	rd_be64_put(key, group);
	memcpy(key + RD_KV_KEY_PREFIX, c->key, c->key_len);
	uint64_t h = rd_fnv1a64(key, klen);

	switch (c->op) {
	case RD_KV_PUT:
		write_kv(b, h, key, klen, c->value, c->value_len, false);
		break;
	case RD_KV_DELETE:
		write_kv(b, h, key, klen, NULL, 0, true);
		break;
	case RD_KV_CAS: {
		const uint8_t *cur = NULL;
		size_t clen = 0;
		bool present = current(b, h, key, klen, &cur, &clen);
		bool match = c->has_expected
		                 ? present && clen == c->expected_len &&
		                       (clen == 0 || memcmp(cur, c->expected, clen) == 0)
		                 : !present;
		if (match) {
			write_kv(b, h, key, klen, c->value, c->value_len, false);
		} else {
			res->status = RD_ECASFAILED;
			res->present = present;
			res->current = present ? cur : NULL;
			res->current_len = present ? clen : 0;
		}
		break;
	}
	default:
		break;
	}
}

int rd_storage_batch_apply_kv(struct rd_storage_batch *b, uint64_t group, uint64_t index,
                              const uint8_t *data, size_t len, struct rd_kv_result *res,
                              char *msg)
{
	struct rd_kv_cmd cmd;
	int rv;

	memset(res, 0, sizeof *res);
	if ((rv = rd_storage_batch_set_applied(b, group, index, msg)) != 0)
		return rv;
	struct rd_pend *p = rd__pend_get(b, group);
	rd__session_expire(b, p, index);
	if (rd_kv_decode(data, len, &cmd, NULL) != 0) {
		res->status = RD_EINVAL;
		return 0;
	}
	res->op = cmd.op;
	/* Thesis §6.3: a command already applied for this client is answered
	 * from the session, an older one is refused; neither changes a key. */
	if (cmd.client_id != 0 &&
	    rd__session_check(b, p, cmd.client_id, cmd.sequence, res) != RD_SESSION_NEW)
		return 0;
	if (cmd.op != RD_KV_RAW)
		apply_cmd(b, group, &cmd, res);
	if (cmd.client_id != 0)
		rd__session_record(b, p, cmd.client_id, cmd.sequence, index, res);
	return 0;
}

int rd_storage_batch_kv_get(struct rd_storage_batch *b, uint64_t group,
                            const uint8_t *key, size_t key_len, const uint8_t **val,
                            size_t *len)
{
	size_t klen = RD_KV_KEY_PREFIX + key_len;
	uint8_t *k = rd__arena_alloc(b, klen);

	rd_be64_put(k, group);
	memcpy(k + RD_KV_KEY_PREFIX, key, key_len);
	return current(b, rd_fnv1a64(k, klen), k, klen, val, len) ? 0 : RD_ENOTFOUND;
}

void rd_storage_batch_kv_write(struct rd_storage_batch *b, uint64_t group,
                               const uint8_t *key, size_t key_len, const uint8_t *val,
                               size_t len)
{
	size_t klen = RD_KV_KEY_PREFIX + key_len;
	uint8_t *k;

	rd__batch_begin(b);
	k = rd__arena_alloc(b, klen);
	rd_be64_put(k, group);
	memcpy(k + RD_KV_KEY_PREFIX, key, key_len);
	write_kv(b, rd_fnv1a64(k, klen), k, klen, val, len, val == NULL);
}

int rd_storage_kv_get(struct rd_storage *st, uint64_t group, const uint8_t *key,
                      size_t key_len, uint8_t **val, size_t *len, char *msg)
{
	uint8_t stackkey[256];
	uint8_t *k = stackkey;
	char *err = NULL;
	int rv = 0;

	*val = NULL;
	*len = 0;
	if (key_len + RD_KV_KEY_PREFIX > sizeof stackkey &&
	    (k = malloc(key_len + RD_KV_KEY_PREFIX)) == NULL)
		return rd_errorf(msg, RD_ENOMEM, "kv get: out of memory");
	rd_be64_put(k, group);
	if (key_len > 0)
		memcpy(k + RD_KV_KEY_PREFIX, key, key_len);
	rocksdb_pinnableslice_t *ps =
	    rocksdb_get_pinned_cf(st->db, st->ro, st->cf[RD_CF_KV], (const char *)k,
	                          key_len + RD_KV_KEY_PREFIX, &err);
	if (err != NULL) {
		rv = rd__rocks_err(err, msg, "kv get");
		goto out;
	}
	if (ps == NULL) {
		rv = rd_errorf(msg, RD_ENOTFOUND, "group %llu: no such key",
		               (unsigned long long)group);
		goto out;
	}
	size_t n;
	const char *v = rocksdb_pinnableslice_value(ps, &n);
	if (n > 0) {
		*val = malloc(n);
		if (*val == NULL) {
			rv = rd_errorf(msg, RD_ENOMEM, "kv get: out of memory");
		} else {
			memcpy(*val, v, n);
			*len = n;
		}
	}
	rocksdb_pinnableslice_destroy(ps);
out:
	if (k != stackkey)
		free(k);
	return rv;
}

int rd_storage_kv_scan(struct rd_storage *st, uint64_t group, rd_storage_kv_fn fn,
                       void *arg, char *msg)
{
	uint8_t prefix[RD_KV_KEY_PREFIX];
	char *err = NULL;
	int rv = 0;

	rd_be64_put(prefix, group);
	/* An iterator reads from the implicit snapshot taken at its creation. */
	rocksdb_iterator_t *it =
	    rocksdb_create_iterator_cf(st->db, st->ro, st->cf[RD_CF_KV]);
	for (rocksdb_iter_seek(it, (const char *)prefix, sizeof prefix);
	     rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k, *v;
		rd__iter_kv(it, &k, &klen, &v, &vlen);
		if (klen < RD_KV_KEY_PREFIX || memcmp(k, prefix, sizeof prefix) != 0)
			break;
		if ((rv = fn(arg, k + RD_KV_KEY_PREFIX, klen - RD_KV_KEY_PREFIX, v,
		             vlen)) != 0)
			goto out;
	}
	rocksdb_iter_get_error(it, &err);
	if (err != NULL)
		rv = rd__rocks_err(err, msg, "kv scan");
out:
	rocksdb_iter_destroy(it);
	return rv;
}
