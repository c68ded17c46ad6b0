/*
 * Encoding and checking of the log and state records laid out in schema.h,
 * and the translation of RocksDB errors into RD_E* codes.
 */
#include <stdlib.h>
#include <string.h>

#include "storage/internal.h"
#include "util/err.h"
#include "util/log.h"

const char *const rd_schema_cf_names[RD_CF_COUNT] = {
    [RD_CF_DEFAULT] = "default", [RD_CF_LOG] = "log",         [RD_CF_STATE] = "state",
    [RD_CF_KV] = "kv",           [RD_CF_CATALOG] = "catalog", [RD_CF_SESSION] = "session",
    [RD_CF_JOURNAL] = "journal",
};

static const char *const kind_names[] = {
    [RD_STATE_HARD] = "hard state",
    [RD_STATE_CONF] = "conf state",
    [RD_STATE_APPLIED] = "applied index",
    [RD_STATE_LOGSTART] = "log start",
    [RD_STATE_SNAPSHOT] = "snapshot metadata",
};

/* crc over key || body, stored in v[0..4). */
static size_t seal(uint8_t *v, uint64_t group, uint8_t kind, size_t body_len)
{
	uint8_t k[RD_STATE_KEY_LEN];
	rd_state_key(k, group, kind);
	uint32_t crc = rd_crc32c(rd_crc32c(0, k, sizeof k), v + 4, body_len);
	rd_be32_put(v, crc);
	return 4 + body_len;
}

size_t rd__conf_put(uint8_t *p, const struct rd_conf_state *cs)
{
	uint8_t *s = p;
	rd_be32_put(p, cs->n_voters);
	rd_be32_put(p + 4, cs->n_learners);
	p += 8;
	for (uint32_t i = 0; i < cs->n_voters; i++, p += 8)
		rd_be64_put(p, cs->voters[i]);
	for (uint32_t i = 0; i < cs->n_learners; i++, p += 8)
		rd_be64_put(p, cs->learners[i]);
	return (size_t)(p - s);
}

int rd__conf_get(const uint8_t *p, size_t len, struct rd_conf_state *cs, size_t *used)
{
	if (len < 8)
		return RD_ECORRUPT;
	uint32_t nv = rd_be32_get(p), nl = rd_be32_get(p + 4);
	if (nv > RD_RAFT_MAX_MEMBERS || nl > RD_RAFT_MAX_MEMBERS)
		return RD_ECORRUPT;
	size_t need = 8 + 8 * (size_t)(nv + nl);
	if (len < need)
		return RD_ECORRUPT;
	memset(cs, 0, sizeof *cs);
	cs->n_voters = nv;
	cs->n_learners = nl;
	for (uint32_t i = 0; i < nv; i++)
		cs->voters[i] = rd_be64_get(p + 8 + 8 * i);
	for (uint32_t i = 0; i < nl; i++)
		cs->learners[i] = rd_be64_get(p + 8 + 8 * (nv + i));
	*used = need;
	return 0;
}

size_t rd__enc_hard(uint8_t *v, uint64_t group, const struct rd_hard_state *hs)
{
	rd_be64_put(v + 4, hs->term);
	rd_be64_put(v + 12, hs->vote);
	rd_be64_put(v + 20, hs->commit);
	return seal(v, group, RD_STATE_HARD, 24);
}

size_t rd__enc_conf(uint8_t *v, uint64_t group, const struct rd_conf_state *cs)
{
	return seal(v, group, RD_STATE_CONF, rd__conf_put(v + 4, cs));
}

size_t rd__enc_u64(uint8_t *v, uint64_t group, uint8_t kind, uint64_t x)
{
	rd_be64_put(v + 4, x);
	return seal(v, group, kind, 8);
}

size_t rd__enc_logstart(uint8_t *v, uint64_t group, uint64_t index, uint64_t term,
                        const struct rd_conf_state *cs)
{
	rd_be64_put(v + 4, index);
	rd_be64_put(v + 12, term);
	return seal(v, group, RD_STATE_LOGSTART, 16 + rd__conf_put(v + 20, cs));
}

size_t rd__enc_snap(uint8_t *v, uint64_t group, const struct rd_snapshot_meta *m)
{
	rd_be64_put(v + 4, m->index);
	rd_be64_put(v + 12, m->term);
	return seal(v, group, RD_STATE_SNAPSHOT, 16 + rd__conf_put(v + 20, &m->conf));
}

int rd__dec_state(struct rd_sgroup *g, uint8_t kind, const uint8_t *v, size_t len,
                  char *msg)
{
	uint8_t k[RD_STATE_KEY_LEN];
	const char *name = kind >= RD_STATE_HARD && kind <= RD_STATE_SNAPSHOT
	                       ? kind_names[kind]
	                       : "unknown record";
	struct rd_conf_state cs;
	size_t used = 0;

	if (len < 4)
		goto bad;
	rd_state_key(k, g->id, kind);
	if (rd_crc32c(rd_crc32c(0, k, sizeof k), v + 4, len - 4) != rd_be32_get(v))
		return rd_errorf(msg, RD_ECORRUPT, "group %llu: %s: checksum mismatch",
		                 (unsigned long long)g->id, name);
	v += 4;
	len -= 4;
	switch (kind) {
	case RD_STATE_HARD:
		if (len != 24)
			goto bad;
		g->hs.term = rd_be64_get(v);
		g->hs.vote = rd_be64_get(v + 8);
		g->hs.commit = rd_be64_get(v + 16);
		return 0;
	case RD_STATE_CONF:
		if (rd__conf_get(v, len, &cs, &used) != 0 || used != len)
			goto bad;
		rd_conf_assign(&g->conf, &cs);
		return 0;
	case RD_STATE_APPLIED:
		if (len != 8)
			goto bad;
		g->applied = rd_be64_get(v);
		return 0;
	case RD_STATE_LOGSTART:
		if (len < 16)
			goto bad;
		g->first = rd_be64_get(v) + 1;
		g->compact_term = rd_be64_get(v + 8);
		g->start_conf_legacy = len == 16;
		memset(&cs, 0, sizeof cs);
		if (len > 16 &&
		    (rd__conf_get(v + 16, len - 16, &cs, &used) != 0 || used != len - 16))
			goto bad;
		rd_conf_assign(&g->start_conf, &cs);
		return 0;
	case RD_STATE_SNAPSHOT:
		if (len < 16)
			goto bad;
		g->snap_index = rd_be64_get(v);
		g->snap_term = rd_be64_get(v + 8);
		if (rd__conf_get(v + 16, len - 16, &cs, &used) != 0 || used != len - 16)
			goto bad;
		rd_conf_assign(&g->snap_conf, &cs);
		g->has_snap = true;
		return 0;
	default:
		break;
	}
bad:
	return rd_errorf(msg, RD_ECORRUPT, "group %llu: %s: malformed record (%zu bytes)",
	                 (unsigned long long)g->id, name, len);
}

void rd__enc_entry(uint8_t *v, uint64_t group, uint64_t index, uint64_t term,
                   uint8_t type, const uint8_t *data, uint32_t len)
{
	uint8_t k[RD_LOG_KEY_LEN];
	rd_log_key(k, group, index);
	rd_be64_put(v + 4, term);
	v[12] = type;
	if (len > 0)
		memcpy(v + RD_LOG_VAL_HDR, data, len);
	uint32_t crc = rd_crc32c(rd_crc32c(0, k, sizeof k), v + 4, 9 + (size_t)len);
	rd_be32_put(v, crc);
}

int rd__dec_entry(uint64_t group, uint64_t index, const uint8_t *v, size_t len,
                  uint64_t *term, uint8_t *type, const uint8_t **data, uint32_t *dlen,
                  char *msg)
{
	uint8_t k[RD_LOG_KEY_LEN];

	if (len < RD_LOG_VAL_HDR || len - RD_LOG_VAL_HDR > UINT32_MAX)
		return rd_errorf(msg, RD_ECORRUPT,
		                 "group %llu index %llu: malformed entry",
		                 (unsigned long long)group, (unsigned long long)index);
	rd_log_key(k, group, index);
	if (rd_crc32c(rd_crc32c(0, k, sizeof k), v + 4, len - 4) != rd_be32_get(v))
		return rd_errorf(msg, RD_ECORRUPT,
		                 "group %llu index %llu: entry checksum mismatch",
		                 (unsigned long long)group, (unsigned long long)index);
	*term = rd_be64_get(v + 4);
	*type = v[12];
	*data = v + RD_LOG_VAL_HDR;
	*dlen = (uint32_t)(len - RD_LOG_VAL_HDR);
	return 0;
}

int rd__rocks_err(char *err, char *msg, const char *what)
{
	int code = RD_EIO;
	if (strncmp(err, "Corruption", 10) == 0)
		code = RD_ECORRUPT;
	else if (strncmp(err, "IO error", 8) == 0)
		code = RD_EIO;
	rd_errorf(msg, code, "%s: rocksdb: %s", what, err);
	rocksdb_free(err);
	return code;
}
