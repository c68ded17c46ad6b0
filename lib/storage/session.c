/*
 * Client sessions (Raft thesis §6.3), the state-machine half: per group and
 * client, the highest applied sequence and its result, so that a retried
 * command is answered with the recorded result and applied once.
 *
 * The table lives in the "session" column family (layout in schema.h) and,
 * for lookups and expiry, in memory per group (struct rd_sessions: a hash by
 * client, a list ordered by the index that last touched a session). The
 * in-memory table shows what is durable; a batch records its changes as an
 * ordered list of ops (struct rd_sop) and publishes them after its write,
 * as the rest of the batch does.
 *
 * Expiry is deterministic, from the log alone: when a group applies entry I,
 * every session last touched at an index <= I - expiry is removed, and
 * beyond the bound (session_max) the least recently touched session goes.
 * Every replica applies the same entries, so every replica keeps the same
 * table whatever its batch boundaries (the walk below sees the durable
 * table and the batch's ops as one list ordered by last index). Both
 * parameters must be the same on every node.
 *
 * Failure modes: a failed RocksDB read of a recorded result is fatal, as
 * every read while applying (the outcome must not depend on it).
 */
#include <stdlib.h>
#include <string.h>

#include "storage/internal.h"
#include "util/err.h"
#include "util/fatal.h"
#include "util/list.h"
#include "util/log.h"

static uint64_t mix(uint64_t group, uint64_t client)
{
	uint64_t h = client * 0x9e3779b97f4a7c15ull ^ (group + 0x632be59bd9b4e019ull);
	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ull;
	return h ^ (h >> 29);
}

/* ---- value layout ---------------------------------------------------------- */

void rd__session_enc(uint8_t *v, uint64_t seq, uint64_t last_index, uint8_t status,
                     bool present)
{
	rd_be64_put(v, seq);
	rd_be64_put(v + 8, last_index);
	v[16] = status;
	v[17] = present ? RD_SESSION_F_PRESENT : 0;
}

int rd__session_dec(const uint8_t *v, size_t len, uint64_t *seq, uint64_t *last_index,
                    uint8_t *status, bool *present)
{
	if (len < RD_SESSION_VAL_HDR || v[16] > RD_SESSION_CAS_FAILED ||
	    (v[17] & ~RD_SESSION_F_PRESENT) != 0)
		return RD_ECORRUPT;
	*seq = rd_be64_get(v);
	*last_index = rd_be64_get(v + 8);
	*status = v[16];
	*present = (v[17] & RD_SESSION_F_PRESENT) != 0;
	return 0;
}

/* ---- the durable table ------------------------------------------------------- */

static struct rd_session *dur_find(const struct rd_sgroup *g, uint64_t client)
{
	const struct rd_sessions *t = &g->sessions;
	if (t->nbuckets == 0)
		return NULL;
	struct rd_session *s = t->buckets[mix(0, client) & (t->nbuckets - 1)];
	while (s != NULL && s->client != client)
		s = s->hnext;
	return s;
}

static void list_unlink(struct rd_sessions *t, struct rd_session *s)
{
	RD_LIST_UNLINK(t->oldest, s, older, newer);
	if (s->newer == NULL)
		t->newest = s->older;
	s->older = s->newer = NULL;
}

static void list_append(struct rd_sessions *t, struct rd_session *s)
{
	s->older = t->newest;
	RD_QUEUE_PUSH(t->oldest, t->newest, s, newer);
}

static void rehash(struct rd_sessions *t, size_t n)
{
	struct rd_session **b = rd_xcalloc(n, sizeof *b);
	for (struct rd_session *s = t->oldest; s != NULL; s = s->newer) {
		size_t i = mix(0, s->client) & (n - 1);
		s->hnext = b[i];
		b[i] = s;
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = n;
}

/* Set the session of `client`, making it the newest. */
void rd__session_put(struct rd_sgroup *g, uint64_t client, uint64_t seq,
                     uint64_t last_index)
{
	struct rd_sessions *t = &g->sessions;
	struct rd_session *s = dur_find(g, client);
	if (s == NULL) {
		s = rd_xrealloc(NULL, sizeof *s);
		memset(s, 0, sizeof *s);
		s->client = client;
		list_append(t, s);
		t->count++;
		if (t->count > t->nbuckets)
			rehash(t, t->nbuckets ? t->nbuckets * 2 : 64);
		else {
			size_t i = mix(0, client) & (t->nbuckets - 1);
			s->hnext = t->buckets[i];
			t->buckets[i] = s;
		}
	} else {
		list_unlink(t, s);
		list_append(t, s);
	}
	s->seq = seq;
	s->last_index = last_index;
}

static void dur_delete(struct rd_sgroup *g, uint64_t client)
{
	struct rd_sessions *t = &g->sessions;
	if (t->nbuckets == 0)
		return;
	struct rd_session **pp = &t->buckets[mix(0, client) & (t->nbuckets - 1)];
	while (*pp != NULL && (*pp)->client != client)
		pp = &(*pp)->hnext;
	struct rd_session *s = *pp;
	if (s == NULL)
		return;
	*pp = s->hnext;
	list_unlink(t, s);
	t->count--;
	free(s);
}

void rd__sessions_clear(struct rd_sgroup *g)
{
	struct rd_sessions *t = &g->sessions;
	struct rd_session *s = t->oldest;
	while (s != NULL) {
		struct rd_session *next = s->newer;
		free(s);
		s = next;
	}
	free(t->buckets);
	memset(t, 0, sizeof *t);
}

static int by_last_index(const void *a, const void *b)
{
	const struct rd_session *x = *(const struct rd_session *const *)a;
	const struct rd_session *y = *(const struct rd_session *const *)b;
	if (x->last_index != y->last_index)
		return x->last_index < y->last_index ? -1 : 1;
	return x->client < y->client ? -1 : x->client > y->client;
}

void rd__sessions_sort(struct rd_sgroup *g)
{
	struct rd_sessions *t = &g->sessions;
	if (t->count < 2)
		return;
	struct rd_session **v = rd_xrealloc(NULL, t->count * sizeof *v);
	size_t n = 0;
	for (struct rd_session *s = t->oldest; s != NULL; s = s->newer)
		v[n++] = s;
	qsort(v, n, sizeof *v, by_last_index);
	t->oldest = t->newest = NULL;
	for (size_t i = 0; i < n; i++)
		list_append(t, v[i]);
	free(v);
}

int rd__session_load(struct rd_storage *st, char *msg)
{
	rocksdb_iterator_t *it =
	    rocksdb_create_iterator_cf(st->db, st->ro, st->cf[RD_CF_SESSION]);
	struct rd_sgroup *g = NULL;
	char *err = NULL;
	int rv = 0;

	for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
		const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vlen);
		uint64_t seq, last;
		uint8_t status;
		bool present;
		if (klen != RD_SESSION_KEY_LEN ||
		    rd__session_dec(v, vlen, &seq, &last, &status, &present) != 0) {
			rv = rd_errorf(
			    msg, RD_ECORRUPT, "group %llu: malformed session record",
			    klen >= 8 ? (unsigned long long)rd_be64_get(k) : 0ull);
			goto out;
		}
		if (g == NULL || g->id != rd_be64_get(k)) {
			if (g != NULL)
				rd__sessions_sort(g);
			g = rd__group_get(st, rd_be64_get(k));
		}
		rd__session_put(g, rd_be64_get(k + 8), seq, last);
	}
	if (g != NULL)
		rd__sessions_sort(g);
	rocksdb_iter_get_error(it, &err);
	if (err != NULL)
		rv = rd__rocks_err(err, msg, "session scan");
out:
	rocksdb_iter_destroy(it);
	return rv;
}

size_t rd_storage_sessions(const struct rd_storage *st, uint64_t group)
{
	const struct rd_sgroup *g = rd__group_find(st, group);
	return g != NULL ? g->sessions.count : 0;
}

bool rd_storage_session_seq(const struct rd_storage *st, uint64_t group, uint64_t client,
                            uint64_t *seq)
{
	const struct rd_sgroup *g = rd__group_find(st, group);
	const struct rd_session *s = g != NULL ? dur_find(g, client) : NULL;
	if (s == NULL)
		return false;
	*seq = s->seq;
	return true;
}

/* ---- the batch's ops ------------------------------------------------------------ */

static struct rd_sop *sop_latest(const struct rd_storage_batch *b,
                                 const struct rd_sgroup *g, uint64_t client)
{
	if (b->nsops == 0)
		return NULL;
	for (size_t i = mix(g->id, client) & (b->nsslots - 1);;
	     i = (i + 1) & (b->nsslots - 1)) {
		uint32_t s = b->sslots[i];
		if (s == 0)
			return NULL;
		struct rd_sop *op = &b->sops[s - 1];
		if (op->g == g && op->client == client)
			return op;
	}
}

static void sslot_set(struct rd_storage_batch *b, const struct rd_sop *op, uint32_t idx)
{
	size_t i = mix(op->g->id, op->client) & (b->nsslots - 1);
	while (b->sslots[i] != 0) {
		const struct rd_sop *o = &b->sops[b->sslots[i] - 1];
		if (o->g == op->g && o->client == op->client)
			break;
		i = (i + 1) & (b->nsslots - 1);
	}
	b->sslots[i] = idx + 1;
}

static struct rd_sop *sop_push(struct rd_storage_batch *b, struct rd_pend *p,
                               uint64_t client)
{
	if ((b->nsops + 1) * 2 > b->nsslots) {
		size_t n = b->nsslots ? b->nsslots * 2 : 64;
		free(b->sslots);
		b->sslots = rd_xcalloc(n, sizeof *b->sslots);
		b->nsslots = n;
		/* Ops in order: the last one of a client wins its slot. */
		for (size_t i = 0; i < b->nsops; i++)
			sslot_set(b, &b->sops[i], (uint32_t)i);
	}
	if (b->nsops == b->capsops) {
		b->capsops = b->capsops ? b->capsops * 2 : 64;
		b->sops = rd_xrealloc(b->sops, b->capsops * sizeof *b->sops);
	}
	uint32_t idx = (uint32_t)b->nsops++;
	struct rd_sop *op = &b->sops[idx];
	memset(op, 0, sizeof *op);
	op->g = p->g;
	op->client = client;
	if (p->sop_tail != 0)
		b->sops[p->sop_tail - 1].next = idx + 1;
	else
		p->sop_head = idx + 1;
	p->sop_tail = idx + 1;
	if (p->sop_cursor == 0)
		p->sop_cursor = idx + 1;
	sslot_set(b, op, idx);
	return op;
}

static void session_key(uint8_t k[RD_SESSION_KEY_LEN], uint64_t group, uint64_t client)
{
	rd_be64_put(k, group);
	rd_be64_put(k + 8, client);
}

/* The least recently touched live session of the group as the batch leaves
 * it: first the durable ones the batch has not touched (all older than
 * anything applied in this batch), then the batch's latest ops. Both
 * cursors only move forward: what they pass stays dead for the batch. */
static bool oldest(struct rd_storage_batch *b, struct rd_pend *p, uint64_t *client,
                   uint64_t *last_index)
{
	while (p->dur_cursor != NULL &&
	       sop_latest(b, p->g, p->dur_cursor->client) != NULL)
		p->dur_cursor = p->dur_cursor->newer;
	if (p->dur_cursor != NULL) {
		*client = p->dur_cursor->client;
		*last_index = p->dur_cursor->last_index;
		return true;
	}
	while (p->sop_cursor != 0) {
		struct rd_sop *op = &b->sops[p->sop_cursor - 1];
		if (!op->deleted && sop_latest(b, p->g, op->client) == op) {
			*client = op->client;
			*last_index = op->last_index;
			return true;
		}
		p->sop_cursor = op->next;
	}
	return false;
}

static void remove_session(struct rd_storage_batch *b, struct rd_pend *p, uint64_t client)
{
	uint8_t k[RD_SESSION_KEY_LEN];
	struct rd_sop *op = sop_push(b, p, client);
	op->deleted = true;
	session_key(k, p->g->id, client);
	rocksdb_writebatch_delete_cf(b->wb2, b->st->cf[RD_CF_SESSION], (const char *)k,
	                             sizeof k);
	p->n_sessions--;
}

void rd__session_expire(struct rd_storage_batch *b, struct rd_pend *p, uint64_t index)
{
	uint64_t client, last, expiry = b->st->session_expiry;
	while (oldest(b, p, &client, &last) && index - last >= expiry)
		remove_session(b, p, client);
}

int rd__session_check(struct rd_storage_batch *b, struct rd_pend *p, uint64_t client,
                      uint64_t seq, struct rd_kv_result *res)
{
	struct rd_sop *op = sop_latest(b, p->g, client);
	uint64_t rseq;
	if (op != NULL) {
		if (op->deleted)
			return RD_SESSION_NEW;
		rseq = op->seq;
	} else {
		const struct rd_session *s = dur_find(p->g, client);
		if (s == NULL)
			return RD_SESSION_NEW;
		rseq = s->seq;
	}
	if (seq > rseq)
		return RD_SESSION_NEW;
	if (seq < rseq) {
		res->status = RD_EOLDSEQ;
		return RD_SESSION_OLD;
	}
	res->duplicate = true;
	if (op != NULL) {
		res->status = op->status == RD_SESSION_CAS_FAILED ? RD_ECASFAILED : 0;
		res->present = op->present;
		res->current = op->value;
		res->current_len = op->vlen;
		return RD_SESSION_DUP;
	}
	/* The recorded result of a durable session is read back. */
	uint8_t k[RD_SESSION_KEY_LEN], status;
	uint64_t s2, last;
	bool present;
	char *err = NULL;
	size_t vlen;
	session_key(k, p->g->id, client);
	rocksdb_pinnableslice_t *ps =
	    rocksdb_get_pinned_cf(b->st->db, b->st->ro, b->st->cf[RD_CF_SESSION],
	                          (const char *)k, sizeof k, &err);
	if (err != NULL)
		rd_fatal(RD_STORAGE_FATAL_FMT, "session read while applying", err);
	const uint8_t *v =
	    ps != NULL ? (const uint8_t *)rocksdb_pinnableslice_value(ps, &vlen) : NULL;
	if (v == NULL || rd__session_dec(v, vlen, &s2, &last, &status, &present) != 0) {
		rd_log_err("storage: group %llu: session of client %llu missing or "
		           "malformed",
		           (unsigned long long)p->g->id, (unsigned long long)client);
		abort();
	}
	res->status = status == RD_SESSION_CAS_FAILED ? RD_ECASFAILED : 0;
	res->present = present;
	res->current = NULL;
	res->current_len = vlen - RD_SESSION_VAL_HDR;
	if (present) {
		uint8_t *copy =
		    rd__arena_alloc(b, res->current_len ? res->current_len : 1);
		memcpy(copy, v + RD_SESSION_VAL_HDR, res->current_len);
		res->current = copy;
	}
	rocksdb_pinnableslice_destroy(ps);
	return RD_SESSION_DUP;
}

void rd__session_record(struct rd_storage_batch *b, struct rd_pend *p, uint64_t client,
                        uint64_t seq, uint64_t index, const struct rd_kv_result *res)
{
	uint8_t k[RD_SESSION_KEY_LEN];
	const struct rd_sop *prev = sop_latest(b, p->g, client);
	bool fresh = prev != NULL ? prev->deleted : dur_find(p->g, client) == NULL;
	bool cas_failed = res->status == RD_ECASFAILED;
	size_t vlen = cas_failed && res->present ? res->current_len : 0;
	uint8_t *v = rd__arena_alloc(b, RD_SESSION_VAL_HDR + vlen);

	rd__session_enc(v, seq, index, cas_failed ? RD_SESSION_CAS_FAILED : RD_SESSION_OK,
	                cas_failed && res->present);
	if (vlen > 0)
		memcpy(v + RD_SESSION_VAL_HDR, res->current, vlen);
	session_key(k, p->g->id, client);
	rocksdb_writebatch_put_cf(b->wb2, b->st->cf[RD_CF_SESSION], (const char *)k,
	                          sizeof k, (const char *)v, RD_SESSION_VAL_HDR + vlen);
	struct rd_sop *op = sop_push(b, p, client);
	op->seq = seq;
	op->last_index = index;
	op->status = v[16];
	op->present = cas_failed && res->present;
	op->value = vlen > 0 ? v + RD_SESSION_VAL_HDR : NULL;
	op->vlen = vlen;
	if (fresh)
		p->n_sessions++;
	/* The bound: the least recently touched sessions go (thesis §6.3).
	 * The one just written is the newest, so it stays (session_max >= 1). */
	uint64_t oc, ol;
	while (p->n_sessions > b->st->session_max && oldest(b, p, &oc, &ol))
		remove_session(b, p, oc);
}

void rd__session_publish(struct rd_storage_batch *b)
{
	for (size_t i = 0; i < b->nsops; i++) {
		const struct rd_sop *op = &b->sops[i];
		if (op->deleted)
			dur_delete(op->g, op->client);
		else
			rd__session_put(op->g, op->client, op->seq, op->last_index);
	}
}

void rd__session_reset(struct rd_storage_batch *b)
{
	if (b->nsops > 0)
		memset(b->sslots, 0, b->nsslots * sizeof *b->sslots);
	b->nsops = 0;
}

void rd__session_batch_free(struct rd_storage_batch *b)
{
	free(b->sops);
	free(b->sslots);
}
