/*
 * The checker of the simulated cluster: Raft's five safety properties (paper
 * figure 3) plus linearizable reads, evaluated after every processing step,
 * and the message formatter used by traces and scenario transcripts.
 *
 *   election safety      at most one leader per term (leader_of[term])
 *   leader append-only   a leader's log only grows within its term
 *   log matching         (index, term) determines the prefix (prefix hashes)
 *   leader completeness  a new leader holds every entry known committed
 *   state machine safety every node applies the same entry at an index
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

void rc_violation(struct rc_cluster *c, const char *fmt, ...)
{
	if (c->violations++ == 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(c->violation, sizeof(c->violation), fmt, ap);
		va_end(ap);
	}
	rc_print(c, "VIOLATION: %s\n", c->violation);
}

/* Make the zero-filled array *v of *n elements of `elem` bytes long enough
 * for index `i`: `first` elements at first, doubling; new ones are 0. */
static void grow_zeroed(void **v, size_t *n, uint64_t i, size_t first, size_t elem)
{
	size_t m = *n ? *n : first;

	if (i < *n)
		return;
	while (m <= i)
		m *= 2;
	*v = realloc(*v, m * elem);
	memset((char *)*v + *n * elem, 0, (m - *n) * elem);
	*n = m;
}

void rc_note_read(struct rc_cluster *c, uint64_t ctx)
{
	grow_zeroed((void **)&c->read_floor, &c->n_read_floor, ctx, 256,
	            sizeof(*c->read_floor));
	c->read_floor[ctx] = c->max_commit;
}

void rc__grow_idx(struct rc_cluster *c, uint64_t index)
{
	if (index < c->n_idx)
		return;
	size_t n = c->n_idx ? c->n_idx : 256;
	while (n <= index)
		n *= 2;
	c->lm = realloc(c->lm, n * sizeof(*c->lm));
	c->sm_at = realloc(c->sm_at, n * sizeof(*c->sm_at));
	c->commit_term = realloc(c->commit_term, n * sizeof(*c->commit_term));
	c->conf_at = realloc(c->conf_at, n * sizeof(*c->conf_at));
	memset(c->lm + c->n_idx, 0, (n - c->n_idx) * sizeof(*c->lm));
	memset(c->sm_at + c->n_idx, 0, (n - c->n_idx) * sizeof(*c->sm_at));
	memset(c->commit_term + c->n_idx, 0, (n - c->n_idx) * sizeof(*c->commit_term));
	memset(c->conf_at + c->n_idx, 0, (n - c->n_idx) * sizeof(*c->conf_at));
	c->n_idx = n;
}

/* Log matching (§5.3): same index and term => same prefix. */
void rc__note_prefix(struct rc_cluster *c, uint64_t index, uint64_t term, uint64_t ph)
{
	rc__grow_idx(c, index);
	struct rc_lm *s = c->lm[index];
	for (int i = 0; i < 4; i++) {
		if (s[i].term == term) {
			if (s[i].ph != ph)
				rc_violation(
				    c, "log matching: index %llu term %llu differs",
				    (unsigned long long)index, (unsigned long long)term);
			return;
		}
		if (s[i].term == 0) {
			s[i].term = term;
			s[i].ph = ph;
			return;
		}
	}
}

void rc_fmt_msg(char *buf, size_t n, const struct rd_message *m)
{
	int k = snprintf(buf, n, "%llu->%llu %s term=%llu", (unsigned long long)m->from,
	                 (unsigned long long)m->to, rd_msg_type_name(m->type),
	                 (unsigned long long)m->term);
	switch (m->type) {
	case RD_MSG_VOTE:
	case RD_MSG_PRE_VOTE:
		k += snprintf(buf + k, n - (size_t)k, " last=%llu/%llu%s",
		              (unsigned long long)m->index,
		              (unsigned long long)m->log_term,
		              m->context == RD_RAFT_CTX_TRANSFER ? " transfer" : "");
		break;
	case RD_MSG_VOTE_RESP:
	case RD_MSG_PRE_VOTE_RESP:
		k += snprintf(buf + k, n - (size_t)k, "%s",
		              m->reject ? " rejected" : " granted");
		break;
	case RD_MSG_APPEND:
		k += snprintf(
		    buf + k, n - (size_t)k, " prev=%llu/%llu commit=%llu ents=%u",
		    (unsigned long long)m->index, (unsigned long long)m->log_term,
		    (unsigned long long)m->commit, m->n_entries);
		break;
	case RD_MSG_APPEND_RESP:
		if (m->reject)
			k += snprintf(buf + k, n - (size_t)k,
			              " reject idx=%llu hint=%llu/%llu",
			              (unsigned long long)m->index,
			              (unsigned long long)m->reject_hint,
			              (unsigned long long)m->conflict_term);
		else
			k += snprintf(buf + k, n - (size_t)k, " idx=%llu",
			              (unsigned long long)m->index);
		break;
	case RD_MSG_HEARTBEAT:
	case RD_MSG_HEARTBEAT_RESP:
		k += snprintf(buf + k, n - (size_t)k, " commit=%llu ctx=%llu%s",
		              (unsigned long long)m->commit,
		              (unsigned long long)m->context,
		              m->quiesce ? " quiesce" : "");
		break;
	case RD_MSG_SNAPSHOT:
		k += snprintf(buf + k, n - (size_t)k, " snap=%llu/%llu",
		              (unsigned long long)m->snapshot.index,
		              (unsigned long long)m->snapshot.term);
		break;
	case RD_MSG_READ_INDEX:
	case RD_MSG_READ_INDEX_RESP:
		k += snprintf(buf + k, n - (size_t)k, " ctx=%llu idx=%llu",
		              (unsigned long long)m->context,
		              (unsigned long long)m->index);
		break;
	default:
		break;
	}
}

/* --- safety ------------------------------------------------------------------------- */

uint64_t rc_leader(struct rc_cluster *c)
{
	uint64_t best = 0, term = 0;
	for (uint64_t id = 1; id <= RC_MAX; id++) {
		struct rc_node *nd = &c->nodes[id];
		if (nd->up && rd_raft_role(nd->r) == RD_RAFT_LEADER &&
		    rd_raft_term(nd->r) >= term) {
			best = id;
			term = rd_raft_term(nd->r);
		}
	}
	return best;
}

void rc_check(struct rc_cluster *c)
{
	for (uint64_t id = 1; id <= RC_MAX; id++) {
		struct rc_node *nd = &c->nodes[id];
		if (!nd->up)
			continue;
		struct rd_raft *r = nd->r;
		uint64_t term = rd_raft_term(r);
		/* Committed entries: remember their terms. */
		uint64_t commit = rd_raft_commit(r);
		uint64_t first = rd_raft_first_index(r);
		for (uint64_t i = commit; i >= first && i > 0; i--) {
			rc__grow_idx(c, i);
			uint64_t t = rd_raft_term_at(r, i);
			if (c->commit_term[i] == t)
				break; /* log matching covers the prefix */
			if (c->commit_term[i] != 0) {
				rc_violation(
				    c, "committed entry %llu differs (term %llu vs %llu)",
				    (unsigned long long)i,
				    (unsigned long long)c->commit_term[i],
				    (unsigned long long)t);
				break;
			}
			c->commit_term[i] = t;
			if (i > c->max_commit)
				c->max_commit = i;
		}
		if (rd_raft_role(r) != RD_RAFT_LEADER)
			continue;
		/* Election safety: at most one leader per term. */
		grow_zeroed((void **)&c->leader_of, &c->n_leader_of, term, 64,
		            sizeof(*c->leader_of));
		uint64_t last = rd_raft_last_index(r);
		if (c->leader_of[term] == 0) {
			c->leader_of[term] = id;
			c->st_elections++;
			/* Leader completeness: a new leader holds every committed
			 * entry (§5.4). */
			for (uint64_t i = c->max_commit; i >= first && i > 0; i--) {
				if (c->commit_term[i] == 0)
					continue;
				if (rd_raft_term_at(r, i) != c->commit_term[i])
					rc_violation(
					    c,
					    "leader completeness: leader %llu term %llu "
					    "lacks committed %llu",
					    (unsigned long long)id,
					    (unsigned long long)term,
					    (unsigned long long)i);
				break;
			}
		} else if (c->leader_of[term] != id) {
			rc_violation(
			    c, "election safety: term %llu has leaders %llu and %llu",
			    (unsigned long long)term,
			    (unsigned long long)c->leader_of[term],
			    (unsigned long long)id);
		}
		/* Leader append-only. */
		if (nd->lead_term == term && nd->lead_last >= first) {
			if (last < nd->lead_last ||
			    rd_raft_term_at(r, nd->lead_last) != nd->lead_last_term)
				rc_violation(c, "leader append-only: %llu rewrote %llu",
				             (unsigned long long)id,
				             (unsigned long long)nd->lead_last);
		}
		nd->lead_term = term;
		nd->lead_last = last;
		nd->lead_last_term = rd_raft_term_at(r, last);
	}
}
