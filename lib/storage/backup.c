/*
 * The cluster backup file (format in backup.h).
 *
 * Reading is one sequential pass with one record buffer
 * (RD_BACKUP_REC_MAX), so memory does not depend on the file's size.
 * Failure modes: every refusal names the record number, its byte offset
 * and, inside a group, the group and chunk; a file that ends inside a
 * record or before the manifest is "truncated".
 */
#include "storage/backup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/schema.h"
#include "util/err.h"

#define MAGIC      "RDBK"
#define SNAP_FIRST 1u
#define SNAP_LAST  2u
#define ULL(x)     ((unsigned long long)(x))

size_t rd_backup_record(uint8_t *buf, enum rd_backup_type type, uint32_t seq, size_t plen)
{
	memcpy(buf, MAGIC, 4);
	buf[4] = (uint8_t)type;
	buf[5] = buf[6] = buf[7] = 0;
	rd_be32_put(buf + 8, seq);
	rd_be32_put(buf + 12, (uint32_t)plen);
	uint32_t crc = rd_crc32c(rd_crc32c(0, buf, 16), buf + RD_BACKUP_REC_HEADER, plen);
	rd_be32_put(buf + 16, crc);
	return RD_BACKUP_REC_HEADER + plen;
}

uint32_t rd_backup_crc(uint32_t crc, const uint8_t *chunk, size_t len)
{
	return rd_crc32c(crc, chunk, len);
}

static size_t id_len(const struct rd_backup_manifest *m)
{
	return strnlen(m->cluster_id, RD_STORAGE_CLUSTER_ID_MAX);
}

size_t rd_backup_header_size(const struct rd_backup_manifest *m)
{
	return 26 + id_len(m);
}

size_t rd_backup_header_put(uint8_t *p, const struct rd_backup_manifest *m)
{
	size_t n = id_len(m);
	rd_be32_put(p, m->version);
	rd_be64_put(p + 4, m->created_ms);
	rd_be64_put(p + 12, m->node);
	rd_be32_put(p + 20, m->data_groups);
	p[24] = (uint8_t)(n >> 8);
	p[25] = (uint8_t)n;
	memcpy(p + 26, m->cluster_id, n);
	return 26 + n;
}

size_t rd_backup_group_put(uint8_t *p, const struct rd_backup_group *g)
{
	rd_be64_put(p, g->group);
	rd_be64_put(p + 8, g->index);
	rd_be64_put(p + 16, g->term);
	rd_be64_put(p + 24, g->bytes);
	rd_be32_put(p + 32, g->chunks);
	rd_be32_put(p + 36, g->crc);
	return RD_BACKUP_ENTRY;
}

static void group_get(const uint8_t *p, struct rd_backup_group *g)
{
	g->group = rd_be64_get(p);
	g->index = rd_be64_get(p + 8);
	g->term = rd_be64_get(p + 16);
	g->bytes = rd_be64_get(p + 24);
	g->chunks = rd_be32_get(p + 32);
	g->crc = rd_be32_get(p + 36);
}

size_t rd_backup_manifest_size(const struct rd_backup_manifest *m)
{
	return 30 + m->n_groups * RD_BACKUP_ENTRY + id_len(m);
}

size_t rd_backup_manifest_put(uint8_t *p, const struct rd_backup_manifest *m)
{
	size_t n = id_len(m), off = 28;
	rd_be32_put(p, m->version);
	rd_be64_put(p + 4, m->created_ms);
	rd_be64_put(p + 12, m->node);
	rd_be32_put(p + 20, m->data_groups);
	rd_be32_put(p + 24, (uint32_t)m->n_groups);
	for (size_t i = 0; i < m->n_groups; i++)
		off += rd_backup_group_put(p + off, &m->groups[i]);
	p[off] = (uint8_t)(n >> 8);
	p[off + 1] = (uint8_t)n;
	memcpy(p + off + 2, m->cluster_id, n);
	return off + 2 + n;
}

void rd_backup_manifest_free(struct rd_backup_manifest *m)
{
	free(m->groups);
	m->groups = NULL;
	m->n_groups = 0;
}

/* ---- reading -------------------------------------------------------------- */

struct rd_backup_in {
	FILE *f;
	uint8_t *buf;
	uint32_t seq;     /* number of the record being read */
	uint64_t off;     /* its byte offset */
	uint64_t group;   /* group of the section being read */
	uint32_t chunk;   /* chunk number inside the section */
	bool in_group;    /* a section is open (chunks seen, no group end yet) */
	bool snap_closed; /* the section's last snapshot chunk was seen */
	struct rd_backup_group cur;
	size_t cap_groups;
	uint8_t type;        /* of the record being read, as its header says */
	uint64_t next_group; /* the group a new section is expected to hold */
};

/* "record 7 (group 2 chunk 3) at byte 6291600: ", then the reason. */
static int bad(const struct rd_backup_in *in, char *msg, int code, const char *what)
{
	char where[96] = "";
	if (in->in_group)
		snprintf(where, sizeof where, " (group %llu chunk %u)", ULL(in->group),
		         in->chunk);
	else if (in->type == RD_BACKUP_CHUNK_REC)
		snprintf(where, sizeof where, " (group %llu chunk 0)",
		         ULL(in->next_group));
	return rd_errorf(msg, code, "record %u%s at byte %llu: %s", in->seq, where,
	                 ULL(in->off), what);
}

/* Read the next record into in->buf; RD_ENOTFOUND at a clean end of file. */
static int next(struct rd_backup_in *in, uint8_t *type, uint8_t **payload, size_t *plen,
                char *msg)
{
	size_t got = fread(in->buf, 1, RD_BACKUP_REC_HEADER, in->f);
	if (ferror(in->f))
		return rd_errorf(msg, RD_EIO, "read: %s", strerror(errno));
	in->type = 0;
	if (got == 0)
		return RD_ENOTFOUND;
	if (got < RD_BACKUP_REC_HEADER)
		return bad(in, msg, RD_ECORRUPT, "truncated: the file ends inside it");
	if (memcmp(in->buf, MAGIC, 4) != 0 || in->buf[5] || in->buf[6] || in->buf[7])
		return bad(in, msg, RD_ECORRUPT,
		           "bad record header (not a raftd backup?)");
	uint32_t len = rd_be32_get(in->buf + 12);
	in->type = in->buf[4];
	if (rd_be32_get(in->buf + 8) != in->seq)
		return bad(in, msg, RD_ECORRUPT, "out of sequence");
	if (len > RD_BACKUP_REC_MAX - RD_BACKUP_REC_HEADER)
		return bad(in, msg, RD_ECORRUPT, "length over the maximum");
	got = fread(in->buf + RD_BACKUP_REC_HEADER, 1, len, in->f);
	if (ferror(in->f))
		return rd_errorf(msg, RD_EIO, "read: %s", strerror(errno));
	if (got < len)
		return bad(in, msg, RD_ECORRUPT, "truncated: the file ends inside it");
	if (rd_crc32c(rd_crc32c(0, in->buf, 16), in->buf + RD_BACKUP_REC_HEADER, len) !=
	    rd_be32_get(in->buf + 16))
		return bad(in, msg, RD_ECORRUPT, "checksum mismatch");
	*type = in->buf[4];
	*payload = in->buf + RD_BACKUP_REC_HEADER;
	*plen = len;
	return 0;
}

static int parse_id(const struct rd_backup_in *in, const uint8_t *p, size_t left,
                    struct rd_backup_manifest *m, char *msg)
{
	if (left < 2)
		return bad(in, msg, RD_ECORRUPT, "malformed cluster id");
	size_t n = (size_t)p[0] << 8 | p[1];
	if (n != left - 2 || n > RD_STORAGE_CLUSTER_ID_MAX)
		return bad(in, msg, RD_ECORRUPT, "malformed cluster id");
	memcpy(m->cluster_id, p + 2, n);
	m->cluster_id[n] = 0;
	return 0;
}

static int parse_header(struct rd_backup_in *in, const uint8_t *p, size_t len,
                        struct rd_backup_manifest *m, char *msg)
{
	if (len < 4)
		return bad(in, msg, RD_ECORRUPT, "malformed header");
	m->version = rd_be32_get(p);
	if (m->version > RD_BACKUP_VERSION)
		return rd_errorf(msg, RD_EMISMATCH,
		                 "backup format version %u is newer than this raftd "
		                 "reads (%u): restore it with a newer raftd",
		                 m->version, RD_BACKUP_VERSION);
	if (m->version == 0 || len < 26)
		return bad(in, msg, RD_ECORRUPT, "malformed header");
	m->created_ms = rd_be64_get(p + 4);
	m->node = rd_be64_get(p + 12);
	m->data_groups = rd_be32_get(p + 20);
	return parse_id(in, p + 24, len - 24, m, msg);
}

/* A chunk record: a snapshot chunk of the open (or a new) group section. */
static int on_chunk(struct rd_backup_in *in, const uint8_t *p, size_t len,
                    rd_backup_chunk_fn cb, void *arg, char *msg)
{
	if (len < RD_SNAPSHOT_HEADER + 8 || memcmp(p, "RDSN", 4) != 0)
		return bad(in, msg, RD_ECORRUPT, "not a snapshot chunk");
	bool first = (p[5] & SNAP_FIRST) != 0, last = (p[5] & SNAP_LAST) != 0;
	if (!in->in_group) {
		if (!first)
			return bad(in, msg, RD_ECORRUPT,
			           "a group section does not start with its first chunk");
		memset(&in->cur, 0, sizeof in->cur);
		in->in_group = true;
		in->snap_closed = false;
		in->chunk = 0;
		in->group = in->cur.group = rd_be64_get(p + RD_SNAPSHOT_HEADER);
		in->cur.index = rd_be64_get(p + RD_SNAPSHOT_HEADER + 8);
		in->cur.term = rd_be64_get(p + RD_SNAPSHOT_HEADER + 16);
	} else if (first || in->snap_closed) {
		return bad(in, msg, RD_ECORRUPT, "chunk outside its group's stream");
	}
	if (rd_be32_get(p + 8) != in->chunk)
		return bad(in, msg, RD_ECORRUPT, "snapshot chunk out of sequence");
	if (rd_crc32c(rd_crc32c(0, p, 16), p + RD_SNAPSHOT_HEADER,
	              len - RD_SNAPSHOT_HEADER) != rd_be32_get(p + 16) ||
	    rd_be32_get(p + 12) != len - RD_SNAPSHOT_HEADER)
		return bad(in, msg, RD_ECORRUPT, "snapshot chunk checksum mismatch");
	in->cur.crc = rd_crc32c(in->cur.crc, p, len);
	in->cur.bytes += len;
	in->cur.chunks++;
	in->snap_closed = last;
	if (cb != NULL) {
		int rv = cb(arg, in->group, p, len, last, msg);
		if (rv != 0)
			return rv;
	}
	in->chunk++;
	return 0;
}

static int on_group_end(struct rd_backup_in *in, const uint8_t *p, size_t len,
                        struct rd_backup_manifest *m, char *msg)
{
	struct rd_backup_group g;

	if (!in->in_group || !in->snap_closed)
		return bad(in, msg, RD_ECORRUPT,
		           "group end before the group's last chunk");
	if (len != RD_BACKUP_ENTRY)
		return bad(in, msg, RD_ECORRUPT, "malformed group end");
	group_get(p, &g);
	if (memcmp(&g, &in->cur, sizeof g) != 0)
		return bad(in, msg, RD_ECORRUPT,
		           "group end does not match the group's chunks "
		           "(chunk lost, repeated or altered)");
	if (m->n_groups > 0 && g.group <= m->groups[m->n_groups - 1].group)
		return bad(in, msg, RD_ECORRUPT, "groups out of order");
	if (m->n_groups == in->cap_groups) {
		size_t cap = in->cap_groups ? in->cap_groups * 2 : 16;
		struct rd_backup_group *gs = realloc(m->groups, cap * sizeof *gs);
		if (gs == NULL)
			return rd_errorf(msg, RD_ENOMEM, "out of memory");
		m->groups = gs;
		in->cap_groups = cap;
	}
	m->groups[m->n_groups++] = g;
	in->in_group = false;
	in->next_group = g.group + 1;
	return 0;
}

static int on_manifest(struct rd_backup_in *in, const uint8_t *p, size_t len,
                       const struct rd_backup_manifest *m, char *msg)
{
	struct rd_backup_manifest x = {0};
	struct rd_backup_group g;

	if (in->in_group)
		return bad(in, msg, RD_ECORRUPT, "manifest inside a group section");
	if (len < 30 || rd_be32_get(p + 24) != m->n_groups ||
	    len < 30 + m->n_groups * RD_BACKUP_ENTRY)
		return bad(in, msg, RD_ECORRUPT,
		           "manifest does not list the groups the file holds");
	size_t off = 28;
	for (size_t i = 0; i < m->n_groups; i++, off += RD_BACKUP_ENTRY) {
		group_get(p + off, &g);
		if (memcmp(&g, &m->groups[i], sizeof g) != 0)
			return bad(in, msg, RD_ECORRUPT,
			           "manifest entry does not match its group section");
	}
	int rv = parse_id(in, p + off, len - off, &x, msg);
	if (rv != 0)
		return rv;
	if (rd_be32_get(p) != m->version || rd_be64_get(p + 4) != m->created_ms ||
	    rd_be64_get(p + 12) != m->node || rd_be32_get(p + 20) != m->data_groups ||
	    strcmp(x.cluster_id, m->cluster_id) != 0)
		return bad(in, msg, RD_ECORRUPT, "manifest does not match the header");
	return 0;
}

int rd_backup_read(const char *path, rd_backup_chunk_fn cb, void *arg,
                   struct rd_backup_manifest *m, char *msg)
{
	struct rd_backup_in in = {0};
	uint8_t type = 0, *p = NULL;
	size_t len = 0;
	bool done = false;
	int rv;

	memset(m, 0, sizeof *m);
	in.f = fopen(path, "rb");
	if (in.f == NULL)
		return rd_errorf(msg, RD_EIO, "%s: %s", path, strerror(errno));
	in.buf = malloc(RD_BACKUP_REC_MAX);
	if (in.buf == NULL) {
		rv = rd_errorf(msg, RD_ENOMEM, "out of memory");
		goto out;
	}
	for (;; in.seq++) {
		in.off = (uint64_t)ftello(in.f);
		rv = next(&in, &type, &p, &len, msg);
		if (rv == RD_ENOTFOUND) {
			rv = done ? 0
			          : (in.seq == 0
			                 ? rd_errorf(msg, RD_ECORRUPT,
			                             "empty file: not a raftd backup")
			                 : bad(&in, msg, RD_ECORRUPT,
			                       "truncated: the file ends before the "
			                       "manifest"));
			break;
		}
		if (rv != 0)
			break;
		if (done) {
			rv = bad(&in, msg, RD_ECORRUPT, "data after the manifest");
			break;
		}
		if ((in.seq == 0) != (type == RD_BACKUP_HEADER)) {
			rv = bad(&in, msg, RD_ECORRUPT,
			         in.seq == 0 ? "the file does not start with a header"
			                     : "a second header");
			break;
		}
		switch (type) {
		case RD_BACKUP_HEADER:
			rv = parse_header(&in, p, len, m, msg);
			break;
		case RD_BACKUP_CHUNK_REC:
			rv = on_chunk(&in, p, len, cb, arg, msg);
			break;
		case RD_BACKUP_GROUP_END:
			rv = on_group_end(&in, p, len, m, msg);
			break;
		case RD_BACKUP_MANIFEST:
			rv = on_manifest(&in, p, len, m, msg);
			done = true;
			break;
		default:
			rv = bad(&in, msg, RD_ECORRUPT, "unknown record type");
		}
		if (rv != 0)
			break;
	}
out:
	free(in.buf);
	fclose(in.f);
	if (rv != 0)
		rd_backup_manifest_free(m);
	return rv;
}
