/*
 * The table of groups known to a storage handle and each group's cache of
 * recent log entries.
 *
 * The cache holds consecutive entries [first, first + n) in a ring, bounded
 * by st->cache_bytes (data plus RD_CACHE_ENTRY_OVERHEAD per entry). New
 * entries enter at commit; the oldest are evicted to stay in the bound, so a
 * healthy follower that is at most a cache's worth behind is fed from memory
 * and a lagging one from RocksDB.
 */
#include <stdlib.h>
#include <string.h>

#include "storage/internal.h"
#include "util/log.h"

static size_t slot_of(uint64_t id, size_t nslots)
{
	/* Fibonacci hashing: group ids are small consecutive integers. */
	return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 32) & (nslots - 1);
}

struct rd_sgroup *rd__group_find(const struct rd_storage *st, uint64_t id)
{
	if (st->nslots == 0)
		return NULL;
	for (size_t i = slot_of(id, st->nslots);; i = (i + 1) & (st->nslots - 1)) {
		struct rd_sgroup *g = st->slots[i];
		if (g == NULL)
			return NULL;
		if (g->id == id)
			return g;
	}
}

static void insert(struct rd_sgroup **slots, size_t nslots, struct rd_sgroup *g)
{
	size_t i = slot_of(g->id, nslots);
	while (slots[i] != NULL)
		i = (i + 1) & (nslots - 1);
	slots[i] = g;
}

struct rd_sgroup *rd__group_get(struct rd_storage *st, uint64_t id)
{
	struct rd_sgroup *g = rd__group_find(st, id);
	if (g != NULL)
		return g;
	if ((st->ngroups + 1) * 2 > st->nslots) {
		size_t n = st->nslots ? st->nslots * 2 : 64;
		struct rd_sgroup **s = rd_xcalloc(n, sizeof *s);
		for (size_t i = 0; i < st->nslots; i++)
			if (st->slots[i] != NULL)
				insert(s, n, st->slots[i]);
		free(st->slots);
		st->slots = s;
		st->nslots = n;
	}
	g = rd_xcalloc(1, sizeof *g);
	rd__group_release_confs(g);
	g->id = id;
	g->first = 1;
	g->last = 0;
	insert(st->slots, st->nslots, g);
	st->ngroups++;
	return g;
}

void rd__group_release_confs(struct rd_sgroup *g)
{
	rd_conf_assign(&g->conf, &rd_conf_none);
	rd_conf_assign(&g->start_conf, &rd_conf_none);
	rd_conf_assign(&g->snap_conf, &rd_conf_none);
}

void rd__groups_free(struct rd_storage *st)
{
	for (size_t i = 0; i < st->nslots; i++) {
		if (st->slots[i] == NULL)
			continue;
		rd__cache_clear(st->slots[i]);
		rd__sessions_clear(st->slots[i]);
		free(st->slots[i]->cache.ring);
		free(st->slots[i]->cache.spare);
		rd__group_release_confs(st->slots[i]);
		free(st->slots[i]);
	}
	free(st->slots);
	st->slots = NULL;
	st->nslots = st->ngroups = 0;
}

static struct rd_centry *at(const struct rd_cache *c, size_t i)
{
	return &c->ring[(c->head + i) & (c->cap - 1)];
}

/* Keep the larger of the spare buffer and `p` for reuse, free the other. */
static void keep_spare(struct rd_cache *c, uint8_t *p, uint32_t cap)
{
	if (c->spare == NULL || cap > c->spare_cap) {
		free(c->spare);
		c->spare = p;
		c->spare_cap = cap;
	} else {
		free(p);
	}
}

static void pop_front(struct rd_cache *c)
{
	struct rd_centry *e = at(c, 0);
	c->bytes -= e->len + RD_CACHE_ENTRY_OVERHEAD;
	keep_spare(c, e->data, e->cap);
	e->data = NULL;
	c->head = (c->head + 1) & (c->cap - 1);
	c->n--;
	c->first++;
}

static void pop_back(struct rd_cache *c)
{
	struct rd_centry *e = at(c, c->n - 1);
	c->bytes -= e->len + RD_CACHE_ENTRY_OVERHEAD;
	free(e->data);
	e->data = NULL;
	c->n--;
}

void rd__cache_clear(struct rd_sgroup *g)
{
	while (g->cache.n > 0)
		pop_back(&g->cache);
	g->cache.head = 0;
}

void rd__cache_drop_from(struct rd_sgroup *g, uint64_t index)
{
	struct rd_cache *c = &g->cache;
	while (c->n > 0 && c->first + c->n - 1 >= index)
		pop_back(c);
}

void rd__cache_drop_upto(struct rd_sgroup *g, uint64_t index)
{
	struct rd_cache *c = &g->cache;
	while (c->n > 0 && c->first <= index)
		pop_front(c);
}

void rd_storage_cache_drop(struct rd_storage *st, uint64_t group)
{
	struct rd_sgroup *g = rd__group_find(st, group);
	if (g == NULL)
		return;
	rd__cache_clear(g);
	free(g->cache.ring);
	free(g->cache.spare);
	g->cache.ring = NULL;
	g->cache.cap = 0;
	g->cache.spare = NULL;
	g->cache.spare_cap = 0;
	g->cache.bytes = 0;
}

const struct rd_centry *rd__cache_get(const struct rd_sgroup *g, uint64_t index)
{
	const struct rd_cache *c = &g->cache;
	if (c->n == 0 || index < c->first || index >= c->first + c->n)
		return NULL;
	return at(c, (size_t)(index - c->first));
}

static void grow(struct rd_cache *c)
{
	size_t n = c->cap ? c->cap * 2 : 16;
	struct rd_centry *r = rd_xcalloc(n, sizeof *r);
	for (size_t i = 0; i < c->n; i++)
		r[i] = *at(c, i);
	free(c->ring);
	c->ring = r;
	c->cap = n;
	c->head = 0;
}

void rd__cache_push(struct rd_storage *st, struct rd_sgroup *g, uint64_t index,
                    uint64_t term, uint8_t type, const uint8_t *data, uint32_t len)
{
	struct rd_cache *c = &g->cache;
	size_t cost = (size_t)len + RD_CACHE_ENTRY_OVERHEAD;

	rd__cache_drop_from(g, index);
	if (c->n > 0 && c->first + c->n != index)
		rd__cache_clear(g);
	if (cost > st->cache_bytes) {
		/* Larger than the whole cache: keep the cache consecutive by
		 * emptying it; this entry is read from RocksDB. */
		rd__cache_clear(g);
		return;
	}
	while (c->n > 0 && c->bytes + cost > st->cache_bytes)
		pop_front(c);
	if (c->n == c->cap)
		grow(c);
	if (c->n == 0)
		c->first = index;
	struct rd_centry *e = at(c, c->n);
	e->term = term;
	e->type = type;
	e->len = len;
	if (c->spare != NULL && c->spare_cap >= len) {
		e->data = c->spare;
		e->cap = c->spare_cap;
		c->spare = NULL;
		c->spare_cap = 0;
	} else {
		e->cap = len ? len : 1;
		e->data = rd_xrealloc(NULL, e->cap);
	}
	if (len > 0)
		memcpy(e->data, data, len);
	c->n++;
	c->bytes += cost;
}
