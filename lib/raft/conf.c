/*
 * Shared configurations (conf.h): a chained hash table of refcounted,
 * immutable copies, keyed by the voter and learner lists.
 *
 * Happy path: a group's membership changes a handful of times in its life,
 * and every change shares one value and releases one, so the table is
 * touched rarely and holds about as many entries as there are distinct
 * memberships among the groups of this process. Failure modes: none that
 * returns; out of memory aborts (conf.h says why).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "raft/conf.h"
#include "util/fatal.h"
#include "util/hash.h"

const struct rd_conf_state rd_conf_none;

struct shared {
	struct rd_conf_state cs; /* first: a holder's pointer is to it */
	struct shared *next;
	uint64_t hash;
	uint64_t refs;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct shared **buckets;
static size_t nbuckets; /* power of two, or 0 */
static size_t count;

static bool is_empty(const struct rd_conf_state *cs)
{
	return cs->n_voters == 0 && cs->n_learners == 0;
}

bool rd_conf_equal(const struct rd_conf_state *a, const struct rd_conf_state *b)
{
	return a->n_voters == b->n_voters && a->n_learners == b->n_learners &&
	       memcmp(a->voters, b->voters, a->n_voters * sizeof(a->voters[0])) == 0 &&
	       memcmp(a->learners, b->learners, a->n_learners * sizeof(a->learners[0])) ==
	           0;
}

static uint64_t hash_of(const struct rd_conf_state *cs)
{
	uint64_t h =
	    rd_fnv1a64_update(RD_FNV1A64_INIT, &cs->n_voters, sizeof(cs->n_voters));
	h = rd_fnv1a64_update(h, &cs->n_learners, sizeof(cs->n_learners));
	h = rd_fnv1a64_update(h, cs->voters, cs->n_voters * sizeof(cs->voters[0]));
	return rd_fnv1a64_update(h, cs->learners,
	                         cs->n_learners * sizeof(cs->learners[0]));
}

/* Double the table once it holds two entries per bucket (under mu). */
static void grow(void)
{
	size_t n = nbuckets == 0 ? 16 : nbuckets * 2;
	struct shared **b = rd_xcalloc(n, sizeof(*b));
	for (size_t i = 0; i < nbuckets; i++) {
		struct shared *s = buckets[i];
		while (s != NULL) {
			struct shared *next = s->next;
			size_t k = (size_t)(s->hash & (n - 1));
			s->next = b[k];
			b[k] = s;
			s = next;
		}
	}
	free(buckets);
	buckets = b;
	nbuckets = n;
}

const struct rd_conf_state *rd_conf_share(const struct rd_conf_state *cs)
{
	if (is_empty(cs))
		return &rd_conf_none;
	uint64_t h = hash_of(cs);
	pthread_mutex_lock(&mu);
	if (count >= 2 * nbuckets)
		grow();
	size_t k = (size_t)(h & (nbuckets - 1));
	struct shared *s = buckets[k];
	while (s != NULL && (s->hash != h || !rd_conf_equal(&s->cs, cs)))
		s = s->next;
	if (s == NULL) {
		/* calloc: the unused slots are zero, whatever cs held there */
		s = rd_xcalloc(1, sizeof(*s));
		s->cs.n_voters = cs->n_voters;
		s->cs.n_learners = cs->n_learners;
		memcpy(s->cs.voters, cs->voters, cs->n_voters * sizeof(cs->voters[0]));
		memcpy(s->cs.learners, cs->learners,
		       cs->n_learners * sizeof(cs->learners[0]));
		s->hash = h;
		s->next = buckets[k];
		buckets[k] = s;
		count++;
	}
	s->refs++;
	pthread_mutex_unlock(&mu);
	return &s->cs;
}

const struct rd_conf_state *rd_conf_hold(const struct rd_conf_state *shared)
{
	if (shared == &rd_conf_none)
		return shared;
	pthread_mutex_lock(&mu);
	((struct shared *)(void *)shared)->refs++;
	pthread_mutex_unlock(&mu);
	return shared;
}

void rd_conf_release(const struct rd_conf_state *shared)
{
	if (shared == NULL || shared == &rd_conf_none)
		return;
	struct shared *s = (struct shared *)(void *)shared;
	pthread_mutex_lock(&mu);
	if (--s->refs == 0) {
		struct shared **p = &buckets[s->hash & (nbuckets - 1)];
		while (*p != s)
			p = &(*p)->next;
		*p = s->next;
		count--;
		free(s);
	}
	pthread_mutex_unlock(&mu);
}

void rd_conf_assign(const struct rd_conf_state **slot, const struct rd_conf_state *cs)
{
	/* Share first: cs may be the one *slot holds, whose last reference
	 * this may be. */
	const struct rd_conf_state *next = rd_conf_share(cs);
	rd_conf_release(*slot);
	*slot = next;
}

size_t rd_conf_shared_count(void)
{
	pthread_mutex_lock(&mu);
	size_t n = count;
	pthread_mutex_unlock(&mu);
	return n;
}
