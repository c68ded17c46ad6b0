/*
 * The core's in-memory log: every entry since the compaction point, as etcd's
 * MemoryStorage keeps it. Entry structs live in one array used as a sliding
 * window (compaction moves `head`; the array is slid down or grown only when
 * it is full, so the cost is amortized and stops once the caller compacts
 * regularly). Payload bytes are bump-allocated in a FIFO of chunks; a chunk
 * is recycled once every entry in it is compacted or truncated away, so the
 * steady state performs no allocation per entry.
 */
#include <stdlib.h>
#include <string.h>

#include "raft/core.h"
#include "util/err.h"

/* Chunks start small (a group that sees little traffic stays small) and
 * double up to CHUNK_MAX as the group writes more. */
#define CHUNK_MIN ((size_t)4 << 10)
#define CHUNK_MAX ((size_t)1 << 20)

void rd__log_init(struct rd__log *l, uint64_t snap_index, uint64_t snap_term)
{
	memset(l, 0, sizeof(*l));
	l->snap_index = snap_index;
	l->snap_term = snap_term;
}

void rd__log_free(struct rd__log *l)
{
	for (size_t i = 0; i < l->n_chunks; i++)
		free(l->chunks[i].buf);
	for (size_t i = 0; i < l->n_spare; i++)
		free(l->spare[i].buf);
	free(l->chunks);
	free(l->ents);
	memset(l, 0, sizeof(*l));
}

uint64_t rd__log_term(const struct rd__log *l, uint64_t i)
{
	if (i == l->snap_index)
		return l->snap_term;
	if (i < l->snap_index || i > rd__log_last(l))
		return 0;
	return rd__log_at(l, i)->term;
}

/* Give a chunk back: keep a few for reuse, free the rest. */
static void release_chunk(struct rd__log *l, struct rd__chunk *c)
{
	if (l->n_spare < sizeof(l->spare) / sizeof(l->spare[0]) &&
	    c->cap >= l->chunk_target) {
		c->used = 0;
		c->last_index = 0;
		l->spare[l->n_spare++] = *c;
	} else {
		free(c->buf);
	}
}

static uint8_t *alloc_payload(struct rd__log *l, uint32_t len, uint64_t index)
{
	struct rd__chunk *c = l->n_chunks ? &l->chunks[l->n_chunks - 1] : NULL;
	if (c == NULL || c->cap - c->used < len) {
		if (!rd__vec_grow((void **)&l->chunks, &l->cap_chunks, l->n_chunks,
		                  sizeof(*l->chunks)))
			return NULL;
		struct rd__chunk nw = {0};
		if (l->n_spare > 0 && l->spare[l->n_spare - 1].cap >= len) {
			nw = l->spare[--l->n_spare];
		} else {
			if (l->chunk_target < CHUNK_MIN)
				l->chunk_target = CHUNK_MIN;
			nw.cap = len > l->chunk_target ? len : l->chunk_target;
			nw.buf = malloc(nw.cap);
			if (nw.buf == NULL)
				return NULL;
			if (l->chunk_target < CHUNK_MAX)
				l->chunk_target *= 2;
		}
		l->chunks[l->n_chunks++] = nw;
		c = &l->chunks[l->n_chunks - 1];
	}
	uint8_t *p = c->buf + c->used;
	c->used += len;
	c->last_index = index;
	return p;
}

int rd__log_append(struct rd__log *l, uint64_t term, uint8_t type, const void *data,
                   uint32_t len)
{
	assert(term >= rd__log_term(l, rd__log_last(l)));
	if (l->head + l->n == l->cap) {
		if (l->head > 0 && l->head >= l->n) {
			memmove(l->ents, l->ents + l->head, l->n * sizeof(*l->ents));
			l->head = 0;
		} else if (!rd__vec_grow((void **)&l->ents, &l->cap, l->head + l->n,
		                         sizeof(*l->ents))) {
			return RD_ENOMEM;
		}
	}
	uint64_t index = rd__log_last(l) + 1;
	uint8_t *buf = NULL;
	if (len > 0) {
		buf = alloc_payload(l, len, index);
		if (buf == NULL)
			return RD_ENOMEM;
		memcpy(buf, data, len);
	}
	struct rd_entry *e = &l->ents[l->head + l->n];
	e->term = term;
	e->index = index;
	e->type = type;
	e->len = len;
	e->data = buf;
	l->n++;
	return 0;
}

void rd__log_truncate(struct rd__log *l, uint64_t from)
{
	assert(from > l->snap_index);
	if (from > rd__log_last(l))
		return;
	l->gen++;
	/* Find the first removed payload and cut its chunk there. */
	const uint8_t *cut = NULL;
	for (uint64_t i = from; i <= rd__log_last(l) && cut == NULL; i++) {
		const struct rd_entry *e = rd__log_at(l, i);
		if (e->len > 0)
			cut = e->data;
	}
	l->n = (size_t)(from - l->snap_index - 1);
	if (cut == NULL)
		return;
	while (l->n_chunks > 0) {
		struct rd__chunk *c = &l->chunks[l->n_chunks - 1];
		if (cut >= c->buf && cut < c->buf + c->cap) {
			c->used = (size_t)(cut - c->buf);
			c->last_index = from - 1;
			if (c->used == 0) {
				release_chunk(l, c);
				l->n_chunks--;
			}
			break;
		}
		release_chunk(l, c);
		l->n_chunks--;
	}
}

void rd__log_compact(struct rd__log *l, uint64_t to)
{
	if (to <= l->snap_index)
		return;
	assert(to <= rd__log_last(l));
	uint64_t term = rd__log_term(l, to);
	size_t drop = (size_t)(to - l->snap_index);
	l->head += drop;
	l->n -= drop;
	l->snap_index = to;
	l->snap_term = term;
	if (l->n == 0)
		l->head = 0;
	/* Recycle chunks whose every payload is now compacted. The newest chunk
	 * stays while entries remain (it is still being filled). */
	size_t k = 0;
	while (k < l->n_chunks && l->chunks[k].last_index <= to &&
	       (k + 1 < l->n_chunks || l->n == 0))
		release_chunk(l, &l->chunks[k++]);
	if (k > 0) {
		memmove(l->chunks, l->chunks + k, (l->n_chunks - k) * sizeof(*l->chunks));
		l->n_chunks -= k;
	}
}

void rd__log_reset(struct rd__log *l, uint64_t index, uint64_t term)
{
	for (size_t i = 0; i < l->n_chunks; i++)
		release_chunk(l, &l->chunks[i]);
	l->n_chunks = 0;
	l->head = 0;
	l->n = 0;
	l->snap_index = index;
	l->snap_term = term;
	l->gen++;
}
