/*
 * The core's in-memory log. Every entry since the compaction point is in
 * the log, but only the newest are in memory: older ones, durable and
 * applied, are evicted (rd__log_evict, driven by tail.c) and read back from
 * the caller's storage when a lagging follower needs them. The term of
 * every index stays here as a list of term runs, so the §5.3 consistency
 * check, conflict hints and the §5.4.1 up-to-date check never need storage.
 *
 * Entry structs live in one array used as a sliding window (compaction and
 * eviction move `head`; the array is slid down or grown only when it is
 * full, so the cost is amortized). Payload bytes are bump-allocated in a
 * FIFO of chunks; a chunk is recycled once every entry in it is gone from
 * memory, so the steady state performs no allocation per entry.
 */
#include <stdlib.h>
#include <string.h>

#include "raft/core.h"
#include "util/err.h"

/* Chunks start small (a group that sees little traffic stays small, and
 * one that quiesces frees them: what a node's thousands of groups leave
 * behind in the heap is the smaller for it) and double up to CHUNK_MAX as
 * the group writes more. */
#define CHUNK_MIN ((size_t)1 << 10)
#define CHUNK_MAX ((size_t)1 << 20)

void rd__log_init(struct rd__log *l, uint64_t snap_index, uint64_t snap_term)
{
	memset(l, 0, sizeof(*l));
	l->snap_index = snap_index;
	l->snap_term = snap_term;
	l->lo = snap_index + 1;
}

static void free_spare(struct rd__log *l)
{
	for (size_t i = 0; i < l->n_spare; i++)
		free(l->spare[i].buf);
	l->n_spare = 0;
}

void rd__log_free(struct rd__log *l)
{
	for (size_t i = 0; i < l->n_chunks; i++)
		free(l->chunks[i].buf);
	free_spare(l);
	free(l->chunks);
	free(l->ents);
	free(l->runs);
	memset(l, 0, sizeof(*l));
}

uint64_t rd__log_term(const struct rd__log *l, uint64_t i)
{
	if (i == l->snap_index)
		return l->snap_term;
	if (i < l->snap_index || i > rd__log_last(l))
		return 0;
	if (i >= l->lo)
		return rd__log_at(l, i)->term;
	/* Evicted: the last run starting at or before i. */
	size_t a = 0, b = l->n_runs;
	assert(b > 0 && l->runs[0].start <= i);
	while (b - a > 1) {
		size_t m = a + (b - a) / 2;
		if (l->runs[m].start <= i)
			a = m;
		else
			b = m;
	}
	return l->runs[a].term;
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
	uint64_t index = rd__log_last(l) + 1;
	bool new_run = l->n_runs == 0 || l->runs[l->n_runs - 1].term != term;
	if (new_run &&
	    !rd__vec_grow((void **)&l->runs, &l->cap_runs, l->n_runs, sizeof(*l->runs)))
		return RD_ENOMEM;
	if (l->head + l->n == l->cap) {
		if (l->head > 0 && l->head >= l->n) {
			memmove(l->ents, l->ents + l->head, l->n * sizeof(*l->ents));
			l->head = 0;
		} else if (!rd__vec_grow((void **)&l->ents, &l->cap, l->head + l->n,
		                         sizeof(*l->ents))) {
			return RD_ENOMEM;
		}
	}
	uint8_t *buf = NULL;
	if (len > 0) {
		buf = alloc_payload(l, len, index);
		if (buf == NULL)
			return RD_ENOMEM;
		memcpy(buf, data, len);
	}
	if (new_run)
		l->runs[l->n_runs++] = (struct rd__term_run){index, term};
	struct rd_entry *e = &l->ents[l->head + l->n];
	e->term = term;
	e->index = index;
	e->type = type;
	e->len = len;
	e->data = buf;
	l->n++;
	l->bytes += len + sizeof(*e);
	return 0;
}

void rd__log_truncate(struct rd__log *l, uint64_t from)
{
	assert(from > l->snap_index && from >= l->lo);
	if (from > rd__log_last(l))
		return;
	l->gen++;
	while (l->n_runs > 0 && l->runs[l->n_runs - 1].start >= from)
		l->n_runs--;
	/* Find the first removed payload and cut its chunk there. */
	const uint8_t *cut = NULL;
	for (uint64_t i = from; i <= rd__log_last(l); i++) {
		const struct rd_entry *e = rd__log_at(l, i);
		l->bytes -= e->len + sizeof(*e);
		if (e->len > 0 && cut == NULL)
			cut = e->data;
	}
	l->n = (size_t)(from - l->lo);
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

/* Drop the in-memory entries up to `to` (lo <= to <= last). */
static void drop_front(struct rd__log *l, uint64_t to)
{
	size_t drop = (size_t)(to - l->lo + 1);
	for (size_t i = 0; i < drop; i++)
		l->bytes -= l->ents[l->head + i].len + sizeof(struct rd_entry);
	l->head += drop;
	l->n -= drop;
	l->lo = to + 1;
	if (l->n == 0)
		l->head = 0;
	/* Recycle chunks whose every payload is now gone. The newest chunk
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

void rd__log_compact(struct rd__log *l, uint64_t to)
{
	if (to <= l->snap_index)
		return;
	assert(to <= rd__log_last(l));
	uint64_t term = rd__log_term(l, to);
	if (to >= l->lo)
		drop_front(l, to);
	l->snap_index = to;
	l->snap_term = term;
	/* Runs wholly before to + 1 are no longer needed. */
	size_t k = 0;
	while (k + 1 < l->n_runs && l->runs[k + 1].start <= to + 1)
		k++;
	if (k > 0) {
		memmove(l->runs, l->runs + k, (l->n_runs - k) * sizeof(*l->runs));
		l->n_runs -= k;
	}
}

void rd__log_evict(struct rd__log *l, uint64_t to)
{
	if (to < l->lo)
		return;
	assert(to <= rd__log_last(l));
	drop_front(l, to);
}

void rd__log_release(struct rd__log *l)
{
	free_spare(l);
	if (l->n == 0) {
		for (size_t i = 0; i < l->n_chunks; i++)
			free(l->chunks[i].buf);
		l->n_chunks = 0;
		free(l->chunks);
		l->chunks = NULL;
		l->cap_chunks = 0;
		free(l->ents);
		l->ents = NULL;
		l->cap = 0;
		l->head = 0;
		l->chunk_target = 0;
		if (l->cap_runs > l->n_runs && l->n_runs > 0) {
			void *p = realloc(l->runs, l->n_runs * sizeof(*l->runs));
			if (p != NULL) {
				l->runs = p;
				l->cap_runs = l->n_runs;
			}
		}
	}
}

void rd__log_reset(struct rd__log *l, uint64_t index, uint64_t term)
{
	for (size_t i = 0; i < l->n_chunks; i++)
		release_chunk(l, &l->chunks[i]);
	l->n_chunks = 0;
	l->head = 0;
	l->n = 0;
	l->bytes = 0;
	l->n_runs = 0;
	l->snap_index = index;
	l->snap_term = term;
	l->lo = index + 1;
	l->gen++;
}
