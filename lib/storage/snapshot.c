/*
 * Snapshot streams (format in snapshot.h).
 *
 * Producing: a RocksDB snapshot pins one consistent view; the metadata
 * (applied index, its term, conf state) and every key of the group are read
 * under it, so the stream describes exactly the state after `index`, however
 * many writes the node commits while the stream is being sent.
 *
 * Installing: chunks are checked (magic, sequence, per-chunk CRC, then a
 * whole-stream CRC and record count in the trailer) and staged in a RocksDB
 * write batch; nothing is visible until the last chunk is in and
 * rd_snapshot_writer_finish commits the staged keys, the deletion of the
 * group's old keys, the new metadata and the log cut in one synced write.
 * A crash before that write leaves the old state intact; after it, the new.
 */
#include <stdlib.h>
#include <string.h>

#include "storage/internal.h"
#include "storage/kv.h"
#include "storage/snapshot.h"
#include "util/err.h"
#include "util/log.h"

#define MAGIC   "RDSN"
#define VERSION 2
#define F_FIRST 1u
#define F_LAST  2u
#define TRAILER 12u
#define ULL(x)  ((unsigned long long)(x))

struct rd_snapshot_reader {
	struct rd_storage *st;
	uint64_t group;
	const rocksdb_snapshot_t *snap;
	rocksdb_readoptions_t *ro;
	rocksdb_iterator_t *it;  /* the group's keys ("kv") */
	rocksdb_iterator_t *sit; /* then its sessions ("session") */
	bool in_sessions;
	struct rd_snapshot_meta meta;
	uint32_t seq;
	bool done;
	uint64_t count;
	uint32_t total_crc;
};

/* Read one state record of `g` under `ro` into g (absent: left as is). */
static int read_state(struct rd_storage *st, rocksdb_readoptions_t *ro,
                      struct rd_sgroup *g, uint8_t kind, char *msg)
{
	uint8_t k[RD_STATE_KEY_LEN];
	char *err = NULL;
	size_t vlen;

	rd_state_key(k, g->id, kind);
	char *v = rocksdb_get_cf(st->db, ro, st->cf[RD_CF_STATE], (const char *)k,
	                         sizeof k, &vlen, &err);
	if (err != NULL)
		return rd__rocks_err(err, msg, "snapshot: read state");
	if (v == NULL)
		return 0;
	int rv = rd__dec_state(g, kind, (const uint8_t *)v, vlen, msg);
	rocksdb_free(v);
	return rv;
}

static int snap_meta_of(struct rd_snapshot_reader *r, struct rd_sgroup *g, char *msg)
{
	uint8_t k[RD_LOG_KEY_LEN];
	char *err = NULL;
	size_t vlen;
	int rv;

	if ((rv = read_state(r->st, r->ro, g, RD_STATE_APPLIED, msg)) != 0 ||
	    (rv = read_state(r->st, r->ro, g, RD_STATE_CONF, msg)) != 0 ||
	    (rv = read_state(r->st, r->ro, g, RD_STATE_LOGSTART, msg)) != 0)
		return rv;
	r->meta.index = g->applied;
	r->meta.conf = *g->conf;
	if (g->applied == 0 || g->applied + 1 == g->first) {
		r->meta.term = g->applied == 0 ? 0 : g->compact_term;
		return 0;
	}
	rd_log_key(k, r->group, g->applied);
	char *v = rocksdb_get_cf(r->st->db, r->ro, r->st->cf[RD_CF_LOG], (const char *)k,
	                         sizeof k, &vlen, &err);
	if (err != NULL)
		return rd__rocks_err(err, msg, "snapshot: read log");
	if (v == NULL)
		return rd_errorf(
		    msg, RD_ECORRUPT,
		    "group %llu index %llu: applied entry missing from the log",
		    ULL(r->group), ULL(g->applied));
	uint8_t type;
	const uint8_t *data;
	uint32_t dlen;
	rv = rd__dec_entry(r->group, g->applied, (const uint8_t *)v, vlen, &r->meta.term,
	                   &type, &data, &dlen, msg);
	rocksdb_free(v);
	return rv;
}

/* The applied index, its term and the membership, read into a scratch
 * group whose shared configurations (raft/conf.h) are released after. */
static int snap_meta(struct rd_snapshot_reader *r, char *msg)
{
	struct rd_sgroup g = {.id = r->group, .first = 1};
	rd__group_release_confs(&g);
	int rv = snap_meta_of(r, &g, msg);
	rd__group_release_confs(&g);
	return rv;
}

int rd_snapshot_reader_open(struct rd_storage *st, uint64_t group,
                            struct rd_snapshot_reader **out,
                            struct rd_snapshot_meta *meta, char *msg)
{
	uint8_t prefix[RD_KV_KEY_PREFIX];
	int rv;
	struct rd_snapshot_reader *r = calloc(1, sizeof *r);

	if (r == NULL)
		return rd_errorf(msg, RD_ENOMEM, "snapshot: out of memory");
	r->st = st;
	r->group = group;
	r->snap = rocksdb_create_snapshot(st->db);
	r->ro = rocksdb_readoptions_create();
	rocksdb_readoptions_set_snapshot(r->ro, r->snap);
	rocksdb_readoptions_set_verify_checksums(r->ro, 1);
	rocksdb_readoptions_set_fill_cache(r->ro, 0);
	if ((rv = snap_meta(r, msg)) != 0) {
		rd_snapshot_reader_close(r);
		return rv;
	}
	r->it = rocksdb_create_iterator_cf(st->db, r->ro, st->cf[RD_CF_KV]);
	r->sit = rocksdb_create_iterator_cf(st->db, r->ro, st->cf[RD_CF_SESSION]);
	rd_be64_put(prefix, group);
	rocksdb_iter_seek(r->it, (const char *)prefix, sizeof prefix);
	rocksdb_iter_seek(r->sit, (const char *)prefix, sizeof prefix);
	*meta = r->meta;
	*out = r;
	return 0;
}

void rd_snapshot_reader_close(struct rd_snapshot_reader *r)
{
	if (r == NULL)
		return;
	if (r->it != NULL)
		rocksdb_iter_destroy(r->it);
	if (r->sit != NULL)
		rocksdb_iter_destroy(r->sit);
	rocksdb_readoptions_destroy(r->ro);
	rocksdb_release_snapshot(r->st->db, r->snap);
	free(r);
}

/* The current record of `it` if it belongs to the group (key without the
 * group prefix). */
static bool it_rec(rocksdb_iterator_t *it, uint64_t group, const uint8_t **k,
                   size_t *klen, const uint8_t **v, size_t *vlen)
{
	if (!rocksdb_iter_valid(it))
		return false;
	*k = (const uint8_t *)rocksdb_iter_key(it, klen);
	if (*klen < RD_KV_KEY_PREFIX || rd_be64_get(*k) != group)
		return false;
	*v = (const uint8_t *)rocksdb_iter_value(it, vlen);
	*k += RD_KV_KEY_PREFIX;
	*klen -= RD_KV_KEY_PREFIX;
	return true;
}

/* The next record of the stream: the group's keys, then its sessions. */
static bool cur_rec(struct rd_snapshot_reader *r, uint8_t *kind, const uint8_t **k,
                    size_t *klen, const uint8_t **v, size_t *vlen)
{
	if (!r->in_sessions && it_rec(r->it, r->group, k, klen, v, vlen)) {
		*kind = 0;
		return true;
	}
	r->in_sessions = true;
	*kind = 1;
	return it_rec(r->sit, r->group, k, klen, v, vlen);
}

static int iter_err(struct rd_snapshot_reader *r, char *msg)
{
	char *err = NULL;
	rocksdb_iter_get_error(r->it, &err);
	if (err == NULL)
		rocksdb_iter_get_error(r->sit, &err);
	return err != NULL ? rd__rocks_err(err, msg, "snapshot: read state machine") : 0;
}

int rd_snapshot_reader_next(struct rd_snapshot_reader *r, uint8_t *buf, size_t cap,
                            size_t *len, bool *last, char *msg)
{
	uint8_t *p = buf + RD_SNAPSHOT_HEADER;
	const uint8_t *k, *v;
	size_t klen, vlen, nrec = 0;
	int rv;
	uint8_t flags = r->seq == 0 ? F_FIRST : 0;

	if (r->done)
		return rd_errorf(msg, RD_EINVAL, "snapshot: stream already complete");
	if (cap < RD_SNAPSHOT_HEADER + 40 + 16 * RD_RAFT_MAX_MEMBERS + TRAILER)
		return rd_errorf(msg, RD_ETOOBIG, "snapshot: chunk buffer too small");
	size_t room = cap - RD_SNAPSHOT_HEADER - TRAILER;
	if (flags & F_FIRST) {
		rd_be64_put(p, r->group);
		rd_be64_put(p + 8, r->meta.index);
		rd_be64_put(p + 16, r->meta.term);
		p += 24 + rd__conf_put(p + 24, &r->meta.conf);
	}
	uint8_t kind;
	while (cur_rec(r, &kind, &k, &klen, &v, &vlen)) {
		size_t need = 9 + klen + vlen;
		if ((size_t)(p - buf - RD_SNAPSHOT_HEADER) + need > room) {
			if (nrec == 0 && !(flags & F_FIRST))
				return rd_errorf(
				    msg, RD_ETOOBIG,
				    "snapshot: a %zu-byte record does not fit a "
				    "%zu-byte chunk",
				    need, cap);
			break;
		}
		p[0] = kind;
		rd_be32_put(p + 1, (uint32_t)klen);
		rd_be32_put(p + 5, (uint32_t)vlen);
		memcpy(p + 9, k, klen);
		if (vlen > 0)
			memcpy(p + 9 + klen, v, vlen);
		p += need;
		nrec++;
		r->count++;
		rocksdb_iter_next(kind == 0 ? r->it : r->sit);
	}
	if ((rv = iter_err(r, msg)) != 0)
		return rv;
	size_t plen = (size_t)(p - buf - RD_SNAPSHOT_HEADER);
	r->total_crc = rd_crc32c(r->total_crc, buf + RD_SNAPSHOT_HEADER, plen);
	if (!cur_rec(r, &kind, &k, &klen, &v, &vlen)) {
		if ((rv = iter_err(r, msg)) != 0)
			return rv;
		flags |= F_LAST;
		rd_be64_put(p, r->count);
		rd_be32_put(p + 8, r->total_crc);
		plen += TRAILER;
		r->done = true;
	}
	memcpy(buf, MAGIC, 4);
	buf[4] = VERSION;
	buf[5] = flags;
	buf[6] = buf[7] = 0;
	rd_be32_put(buf + 8, r->seq++);
	rd_be32_put(buf + 12, (uint32_t)plen);
	uint32_t crc = rd_crc32c(rd_crc32c(0, buf, 16), buf + RD_SNAPSHOT_HEADER, plen);
	rd_be32_put(buf + 16, crc);
	*len = RD_SNAPSHOT_HEADER + plen;
	*last = r->done;
	return 0;
}

int rd_snapshot_writer_open(struct rd_storage *st, struct rd_snapshot_writer **out,
                            char *msg)
{
	struct rd_snapshot_writer *w = calloc(1, sizeof *w);
	if (w == NULL || (w->key = malloc(RD_KV_KEY_PREFIX + RD_KV_KEY_MAX)) == NULL) {
		free(w);
		return rd_errorf(msg, RD_ENOMEM, "snapshot: out of memory");
	}
	w->st = st;
	w->wb = rocksdb_writebatch_create();
	*out = w;
	return 0;
}

void rd_snapshot_writer_abort(struct rd_snapshot_writer *w)
{
	if (w == NULL)
		return;
	rocksdb_writebatch_destroy(w->wb);
	free(w->key);
	free(w->sess);
	free(w);
}

static int bad(char *msg, const struct rd_snapshot_writer *w, const char *what)
{
	return rd_errorf(msg, RD_ECORRUPT, "snapshot chunk %u: %s", w->next_seq, what);
}

static int parse_meta(struct rd_snapshot_writer *w, const uint8_t **pp,
                      const uint8_t *end, char *msg)
{
	const uint8_t *p = *pp;
	size_t used;
	uint8_t lo[RD_KV_KEY_PREFIX], hi[RD_KV_KEY_PREFIX];

	if (end - p < 24 ||
	    rd__conf_get(p + 24, (size_t)(end - p - 24), &w->meta.conf, &used) != 0)
		return bad(msg, w, "malformed metadata");
	w->group = rd_be64_get(p);
	w->meta.index = rd_be64_get(p + 8);
	w->meta.term = rd_be64_get(p + 16);
	*pp = p + 24 + used;
	/* Every old key of the group goes, in the same write as the new ones. */
	rd_be64_put(lo, w->group);
	rd_be64_put(hi, w->group + 1);
	if (w->group == UINT64_MAX)
		memset(hi, 0xff, sizeof hi); /* group ids stop below 2^64 - 1 */
	rocksdb_writebatch_delete_range_cf(w->wb, w->st->cf[RD_CF_KV], (const char *)lo,
	                                   sizeof lo, (const char *)hi, sizeof hi);
	rocksdb_writebatch_delete_range_cf(w->wb, w->st->cf[RD_CF_SESSION],
	                                   (const char *)lo, sizeof lo, (const char *)hi,
	                                   sizeof hi);
	return 0;
}

/* Stage a session record (kind 1). */
static int add_session(struct rd_snapshot_writer *w, const uint8_t *k, uint32_t klen,
                       const uint8_t *v, uint32_t vlen, char *msg)
{
	uint64_t seq, last;
	uint8_t status;
	bool present;
	if (klen != 8 || rd__session_dec(v, vlen, &seq, &last, &status, &present) != 0 ||
	    rd_be64_get(k) == 0 || (!present && vlen != RD_SESSION_VAL_HDR))
		return bad(msg, w, "malformed session record");
	if (w->nsess + 3 > w->capsess) {
		size_t cap = w->capsess ? w->capsess * 2 : 96;
		uint64_t *s = realloc(w->sess, cap * sizeof *s);
		if (s == NULL)
			return rd_errorf(msg, RD_ENOMEM, "snapshot: out of memory");
		w->sess = s;
		w->capsess = cap;
	}
	w->sess[w->nsess++] = rd_be64_get(k);
	w->sess[w->nsess++] = seq;
	w->sess[w->nsess++] = last;
	uint8_t key[RD_SESSION_KEY_LEN];
	rd_be64_put(key, w->group);
	memcpy(key + 8, k, 8);
	rocksdb_writebatch_put_cf(w->wb, w->st->cf[RD_CF_SESSION], (const char *)key,
	                          sizeof key, (const char *)v, vlen);
	return 0;
}

int rd_snapshot_writer_add(struct rd_snapshot_writer *w, const uint8_t *c, size_t len,
                           char *msg)
{
	if (w->done)
		return bad(msg, w, "data after the last chunk");
	if (len < RD_SNAPSHOT_HEADER || memcmp(c, MAGIC, 4) != 0 || c[4] < 1 ||
	    c[4] > VERSION || (w->next_seq > 0 && c[4] != w->version))
		return bad(msg, w, "bad header");
	w->version = c[4];
	uint8_t flags = c[5];
	uint32_t seq = rd_be32_get(c + 8), plen = rd_be32_get(c + 12);
	if ((flags & ~(F_FIRST | F_LAST)) != 0 || c[6] != 0 || c[7] != 0)
		return bad(msg, w, "bad flags");
	if (seq != w->next_seq)
		return bad(msg, w, "out of order");
	if ((size_t)plen != len - RD_SNAPSHOT_HEADER)
		return bad(msg, w, "length mismatch");
	if (rd_crc32c(rd_crc32c(0, c, 16), c + RD_SNAPSHOT_HEADER, plen) !=
	    rd_be32_get(c + 16))
		return bad(msg, w, "checksum mismatch");
	if (((flags & F_FIRST) != 0) != (seq == 0))
		return bad(msg, w, "first-chunk flag on the wrong chunk");

	const uint8_t *p = c + RD_SNAPSHOT_HEADER, *end = p + plen;
	if (flags & F_LAST) {
		if (plen < TRAILER)
			return bad(msg, w, "missing trailer");
		end -= TRAILER;
	}
	w->total_crc = rd_crc32c(w->total_crc, p, (size_t)(end - p));
	int rv;
	if ((flags & F_FIRST) && (rv = parse_meta(w, &p, end, msg)) != 0)
		return rv;
	size_t tag = w->version >= 2 ? 1 : 0;
	while (p < end) {
		if ((size_t)(end - p) < 8 + tag)
			return bad(msg, w, "truncated record");
		uint8_t kind = tag ? p[0] : 0;
		uint32_t klen = rd_be32_get(p + tag), vlen = rd_be32_get(p + tag + 4);
		const uint8_t *k = p + tag + 8;
		if (kind > 1 || klen == 0 || klen > RD_KV_KEY_MAX ||
		    vlen > RD_SESSION_VAL_HDR + RD_KV_VALUE_MAX ||
		    (kind == 0 && vlen > RD_KV_VALUE_MAX) ||
		    (size_t)(end - k) < (size_t)klen + vlen)
			return bad(msg, w, "malformed record");
		if (kind == 1) {
			if ((rv = add_session(w, k, klen, k + klen, vlen, msg)) != 0)
				return rv;
		} else {
			rd_be64_put(w->key, w->group);
			memcpy(w->key + RD_KV_KEY_PREFIX, k, klen);
			rocksdb_writebatch_put_cf(
			    w->wb, w->st->cf[RD_CF_KV], (const char *)w->key,
			    RD_KV_KEY_PREFIX + klen, (const char *)k + klen, vlen);
		}
		w->count++;
		p = k + klen + vlen;
	}
	if (flags & F_LAST) {
		if (rd_be64_get(end) != w->count || rd_be32_get(end + 8) != w->total_crc)
			return bad(msg, w,
			           "stream trailer mismatch (chunk lost or repeated)");
		w->done = true;
	}
	w->next_seq++;
	return 0;
}
