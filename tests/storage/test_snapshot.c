/* Snapshots (Raft §7): a consistent stream of checksummed chunks, installed
 * atomically; the log is cut as §7 says. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "storage/journal.h"
#include "storage/kv.h"
#include "storage/schema.h"
#include "storage/snapshot.h"
#include "storage/storage.h"
#include "util/err.h"

static char dira[256], dirb[256];
static struct rd_storage *a, *bst;
static char msg[RD_ERRMSG_SIZE];

static void setup(void)
{
	a = th_tmp_open(dira, sizeof dira);
	bst = th_tmp_open(dirb, sizeof dirb);
}

static void teardown(void)
{
	th_close_rm(a, dira);
	th_close_rm(bst, dirb);
}

TestSuite(snapshot, .init = setup, .fini = teardown);

/* The stream of `group` of `s` as chunks of at most `cap` bytes. */
struct stream {
	uint8_t *chunk[4096];
	size_t len[4096];
	size_t n;
	struct rd_snapshot_meta meta;
};

static void produce(struct rd_storage *s, uint64_t group, size_t cap, struct stream *out)
{
	struct rd_snapshot_reader *r;
	bool last = false;
	cr_assert_eq(rd_snapshot_reader_open(s, group, &r, &out->meta, msg), 0, "%s",
	             msg);
	out->n = 0;
	while (!last) {
		cr_assert_lt(out->n, 4096);
		out->chunk[out->n] = malloc(cap);
		cr_assert_eq(rd_snapshot_reader_next(r, out->chunk[out->n], cap,
		                                     &out->len[out->n], &last, msg),
		             0, "%s", msg);
		cr_assert_leq(out->len[out->n], cap);
		out->n++;
	}
	size_t l;
	cr_assert_eq(rd_snapshot_reader_next(r, out->chunk[0], cap, &l, &last, msg),
	             RD_EINVAL);
	rd_snapshot_reader_close(r);
}

static void stream_free(struct stream *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->chunk[i]);
}

static int install(struct rd_storage *s, struct stream *in, struct rd_snapshot_meta *m)
{
	struct rd_snapshot_writer *w;
	cr_assert_eq(rd_snapshot_writer_open(s, &w, msg), 0);
	for (size_t i = 0; i < in->n; i++) {
		int rv = rd_snapshot_writer_add(w, in->chunk[i], in->len[i], msg);
		if (rv != 0) {
			rd_snapshot_writer_abort(w);
			return rv;
		}
	}
	return rd_snapshot_writer_finish(w, m, msg);
}

struct kvlist {
	int n;
	char keys[2048][16];
	size_t vlen[2048];
};

static int collect(void *arg, const uint8_t *k, size_t klen, const uint8_t *v,
                   size_t vlen)
{
	struct kvlist *l = arg;
	(void)v;
	cr_assert_lt(klen, 16);
	memcpy(l->keys[l->n], k, klen);
	l->keys[l->n][klen] = 0;
	l->vlen[l->n++] = vlen;
	return 0;
}

/* The keys of `group` of s, collected into l afresh; returns how many. */
static int rescan(struct rd_storage *s, uint64_t group, struct kvlist *l)
{
	l->n = 0;
	rd_storage_kv_scan(s, group, collect, l, msg);
	return l->n;
}

static void same_kv(struct rd_storage *x, struct rd_storage *y, uint64_t group)
{
	static struct kvlist lx, ly;
	lx.n = ly.n = 0;
	cr_assert_eq(rd_storage_kv_scan(x, group, collect, &lx, msg), 0);
	cr_assert_eq(rd_storage_kv_scan(y, group, collect, &ly, msg), 0);
	cr_assert_eq(lx.n, ly.n);
	for (int i = 0; i < lx.n; i++) {
		cr_assert_str_eq(lx.keys[i], ly.keys[i]);
		cr_assert_eq(lx.vlen[i], ly.vlen[i]);
	}
}

Test(snapshot, stream_installs_into_an_empty_node_and_survives_reopen)
{
	static struct stream s;
	struct rd_snapshot_meta m;
	struct rd_conf_state cs = {.n_voters = 3, .voters = {1, 2, 3}};
	th_set_conf(a, 5, &cs, 0);
	th_put_keys(a, 5, "k", 600, 100, 2);
	th_put_keys(a, 6, "other", 10, 10, 1);
	produce(a, 5, 2048, &s);
	cr_assert_gt(s.n, 10, "bounded chunks: %zu", s.n);
	cr_assert_eq(s.meta.index, 600);
	cr_assert_eq(s.meta.term, 2);
	cr_assert_eq(s.meta.conf.n_voters, 3);
	cr_assert_eq(install(bst, &s, &m), 0, "%s", msg);
	cr_assert_eq(m.index, 600);
	for (int pass = 0; pass < 2; pass++) {
		same_kv(a, bst, 5);
		struct rd_storage_group_info gi;
		cr_assert_eq(rd_storage_group_info(bst, 5, &gi), 0);
		cr_assert_eq(gi.applied, 600);
		cr_assert_eq(gi.first_index, 601);
		cr_assert_eq(gi.last_index, 600);
		cr_assert_eq(gi.last_term, 2);
		cr_assert_eq(gi.hs.commit, 600);
		cr_assert(gi.has_snapshot);
		cr_assert_eq(gi.snap.index, 600);
		cr_assert_eq(gi.conf.n_voters, 3);
		struct kvlist *l = calloc(1, sizeof *l);
		rd_storage_kv_scan(bst, 6, collect, l, msg);
		cr_assert_eq(l->n, 0, "other groups are not part of the snapshot");
		free(l);
		bst = th_reopen(bst, dirb);
	}
	/* The log continues after the snapshot. */
	th_put_keys(bst, 5, "z", 1, 1, 3);
	cr_assert_eq(rd_storage_last_index(bst, 5), 601);
	stream_free(&s);
}

/* The stream reflects the moment the reader was opened. */
Test(snapshot, reader_sees_a_consistent_view_while_writes_continue)
{
	struct rd_snapshot_reader *r;
	struct rd_snapshot_meta meta, m;
	static struct stream s;
	bool last = false;
	th_put_keys(a, 1, "a", 100, 10, 1);
	cr_assert_eq(rd_snapshot_reader_open(a, 1, &r, &meta, msg), 0);
	th_put_keys(a, 1, "b", 100, 10, 1);
	s.n = 0;
	s.meta = meta;
	while (!last) {
		s.chunk[s.n] = malloc(1024);
		cr_assert_eq(rd_snapshot_reader_next(r, s.chunk[s.n], 1024, &s.len[s.n],
		                                     &last, msg),
		             0);
		s.n++;
	}
	rd_snapshot_reader_close(r);
	cr_assert_eq(meta.index, 100);
	cr_assert_eq(install(bst, &s, &m), 0, "%s", msg);
	struct kvlist *l = calloc(1, sizeof *l);
	rd_storage_kv_scan(bst, 1, collect, l, msg);
	cr_assert_eq(l->n, 100);
	cr_assert_str_eq(l->keys[99], "a00099");
	free(l);
	stream_free(&s);
}

/* Atomic install: old keys of the group are gone, other groups untouched;
 * a broken stream changes nothing. */
Test(snapshot, install_replaces_keys_and_a_broken_stream_changes_nothing)
{
	static struct stream s;
	struct rd_snapshot_meta m;
	th_put_keys(a, 2, "new", 50, 10, 3);
	th_put_keys(bst, 2, "old", 20, 10, 1);
	th_put_keys(bst, 3, "keep", 5, 10, 1);
	produce(a, 2, 400, &s);
	cr_assert_gt(s.n, 3);

	/* flipped byte */
	s.chunk[1][RD_SNAPSHOT_HEADER + 3] ^= 0x40;
	cr_assert_eq(install(bst, &s, &m), RD_ECORRUPT);
	cr_assert(strstr(msg, "checksum") != NULL, "%s", msg);
	s.chunk[1][RD_SNAPSHOT_HEADER + 3] ^= 0x40;
	/* a chunk lost */
	uint8_t *c1 = s.chunk[1];
	size_t l1 = s.len[1];
	memmove(&s.chunk[1], &s.chunk[2], (s.n - 2) * sizeof s.chunk[0]);
	memmove(&s.len[1], &s.len[2], (s.n - 2) * sizeof s.len[0]);
	s.n--;
	cr_assert_eq(install(bst, &s, &m), RD_ECORRUPT);
	cr_assert(strstr(msg, "order") != NULL, "%s", msg);
	/* the last chunk missing: incomplete */
	cr_assert_eq(install(bst, &s, &m) == 0, false);
	memmove(&s.chunk[2], &s.chunk[1], (s.n - 1) * sizeof s.chunk[0]);
	memmove(&s.len[2], &s.len[1], (s.n - 1) * sizeof s.len[0]);
	s.chunk[1] = c1;
	s.len[1] = l1;
	s.n++;
	size_t n = s.n;
	s.n = n - 1;
	cr_assert_eq(install(bst, &s, &m), RD_EINVAL);
	cr_assert(strstr(msg, "incomplete") != NULL, "%s", msg);
	s.n = n;

	struct kvlist *l = calloc(1, sizeof *l);
	rd_storage_kv_scan(bst, 2, collect, l, msg);
	cr_assert_eq(l->n, 20);
	cr_assert_str_eq(l->keys[0], "old00000");

	cr_assert_eq(install(bst, &s, &m), 0, "%s", msg);
	bst = th_reopen(bst, dirb);
	cr_assert_eq(rescan(bst, 2, l), 50);
	cr_assert_str_eq(l->keys[0], "new00000");
	cr_assert_eq(rescan(bst, 3, l), 5);
	free(l);
	stream_free(&s);
}

/* `group` of a: 6 entries of `term`, its snapshot streamed into *s; of
 * bst: 10 entries of term 1, only 2 committed and applied. Install the
 * snapshot on bst: its log starts at 7 and ends at `want_last`, also
 * after a reopen. */
static void install_over_ten(uint64_t group, uint64_t term, uint64_t want_last,
                             struct stream *s)
{
	struct rd_snapshot_meta m;

	th_put_keys(a, group, "k", 6, 5, term);
	produce(a, group, 1024, s);
	th_put_keys(bst, group, "x", 2, 5, 1);
	th_append(bst, group, 3, 8, 1);
	cr_assert_eq(install(bst, s, &m), 0, "%s", msg);
	cr_assert_eq(rd_storage_first_index(bst, group), 7);
	cr_assert_eq(rd_storage_last_index(bst, group), want_last);
	bst = th_reopen(bst, dirb);
	cr_assert_eq(rd_storage_last_index(bst, group), want_last);
}

/* Raft §7: an existing entry with the snapshot's index and term keeps the
 * log after it; otherwise the whole log is discarded. */
Test(snapshot, log_suffix_kept_only_when_index_and_term_match)
{
	static struct stream s;
	struct rd_snapshot_meta m;

	/* group 4: the node's entry 6 has the snapshot's term (1) */
	install_over_ten(4, 1, 10, &s);
	stream_free(&s);
	/* group 8: the node's entry 6 has term 1, the snapshot's term 2 */
	install_over_ten(8, 2, 6, &s);
	uint64_t t;
	cr_assert_eq(rd_storage_term(bst, 8, 6, &t, msg), 0);
	cr_assert_eq(t, 2);
	/* an older snapshot is refused */
	cr_assert_eq(install(bst, &s, &m), RD_EINVAL);
	stream_free(&s);
}

Test(snapshot, record_larger_than_the_chunk_is_reported)
{
	struct rd_snapshot_reader *r;
	struct rd_snapshot_meta meta;
	uint8_t buf[1024];
	size_t len;
	bool last;
	th_put_keys(a, 1, "big", 1, 1500, 1);
	cr_assert_eq(rd_snapshot_reader_open(a, 1, &r, &meta, msg), 0);
	cr_assert_eq(rd_snapshot_reader_next(r, buf, sizeof buf, &len, &last, msg), 0);
	cr_assert_not(last);
	cr_assert_eq(rd_snapshot_reader_next(r, buf, sizeof buf, &len, &last, msg),
	             RD_ETOOBIG);
	rd_snapshot_reader_close(r);
}

Test(snapshot, empty_group_snapshot)
{
	static struct stream s;
	struct rd_snapshot_meta m;
	struct rd_storage_batch *b = rd_storage_batch_new(a);
	th_append(a, 9, 1, 1, 1);
	struct rd_hard_state hs = {.term = 1, .commit = 1};
	rd_storage_batch_set_hard_state(b, 9, &hs, msg);
	rd_storage_batch_set_applied(b, 9, 1, msg);
	rd_storage_commit(a, b);
	rd_storage_batch_free(b);
	produce(a, 9, 512, &s);
	cr_assert_eq(s.n, 1);
	cr_assert_eq(install(bst, &s, &m), 0, "%s", msg);
	cr_assert_eq(m.index, 1);
	cr_assert_eq(m.term, 1);
	stream_free(&s);
}

/* storage/snapshot.h: an install is refused (RD_EAGAIN, nothing written, the
 * writer kept) while the batch being filled holds work for the same group.
 * Here the batch holds a compaction of the old log, as the node leaves it
 * between loop iterations; installing under it and then committing it would
 * publish the pre-install log start and applied index over the snapshot. */
Test(snapshot, install_waits_for_a_batch_that_holds_work_for_the_group)
{
	static struct stream s;
	struct rd_snapshot_writer *w;
	struct rd_snapshot_meta m;
	struct rd_storage_group_info gi;
	struct kvlist *l = calloc(1, sizeof *l);

	th_put_keys(a, 7, "new", 50, 10, 2);
	produce(a, 7, 1024, &s);
	th_put_keys(bst, 7, "old", 20, 10, 1);
	th_put_keys(bst, 3, "keep", 5, 10, 1);
	/* A close flushes what was applied: compaction may then reach it. */
	bst = th_reopen(bst, dirb);

	struct rd_storage_batch *b = rd_storage_batch_new(bst);
	cr_assert_eq(rd_storage_batch_compact(b, 7, 10, &no_conf, msg), 0, "%s", msg);
	cr_assert_eq(rd_snapshot_writer_open(bst, &w, msg), 0);
	for (size_t i = 0; i < s.n; i++)
		cr_assert_eq(rd_snapshot_writer_add(w, s.chunk[i], s.len[i], msg), 0);
	cr_assert_eq(rd_snapshot_writer_finish(w, &m, msg), RD_EAGAIN);
	cr_assert(strstr(msg, "group 7") != NULL, "%s", msg);
	/* Nothing written: the old state machine and log are intact. */
	cr_assert_eq(rd_storage_group_info(bst, 7, &gi), 0);
	cr_assert_eq(gi.applied, 20);
	cr_assert_eq(gi.first_index, 1);
	rd_storage_kv_scan(bst, 7, collect, l, msg);
	cr_assert_eq(l->n, 20);
	cr_assert_str_eq(l->keys[0], "old00000");
	/* Work for another group does not hold the install up, but holds a
	 * drop of that group. */
	struct rd_hard_state hs = {.term = 1, .commit = 5};
	cr_assert_eq(rd_storage_batch_set_hard_state(b, 3, &hs, msg), 0, "%s", msg);
	cr_assert_eq(rd_storage_drop_group(bst, 3, msg), RD_EAGAIN);

	rd_storage_commit(bst, b);
	cr_assert_eq(rd_storage_first_index(bst, 7), 11);
	/* After the commit the same writer finishes the install. */
	cr_assert_eq(rd_snapshot_writer_finish(w, &m, msg), 0, "%s", msg);
	cr_assert_eq(m.index, 50);
	rd_storage_batch_free(b);
	cr_assert_eq(rd_storage_group_info(bst, 7, &gi), 0);
	cr_assert_eq(gi.applied, 50);
	cr_assert_eq(gi.first_index, 51);
	cr_assert_eq(gi.last_index, 50);
	cr_assert_eq(gi.compact_term, 2);
	/* The next batch builds on the installed state, and it all reopens
	 * (before, the log start went back to 11 while the entries were gone:
	 * "gap in the log"). */
	th_put_keys(bst, 7, "z", 1, 1, 3);
	bst = th_reopen(bst, dirb);
	cr_assert_eq(rd_storage_group_info(bst, 7, &gi), 0);
	cr_assert_eq(gi.applied, 51);
	cr_assert_eq(gi.first_index, 51);
	cr_assert_eq(gi.last_index, 51);
	cr_assert_eq(rescan(bst, 7, l), 51);
	cr_assert_str_eq(l->keys[0], "new00000");
	cr_assert_eq(rescan(bst, 3, l), 5);
	cr_assert_eq(rd_storage_drop_group(bst, 3, msg), 0, "%s", msg);
	free(l);
	stream_free(&s);
}

/* The journal of applied commands is not state-machine state: an install
 * drops the receiver's and restarts it after the snapshot (journal.h), so
 * a subscriber never reads across the entries it did not apply. */
Test(snapshot, install_restarts_the_journal_after_the_snapshot)
{
	static struct stream s;
	struct rd_snapshot_meta m;
	struct rd_journal_info in;
	struct rd_storage_batch *b = rd_storage_batch_new(bst);
	struct rd_journal_rec r = {.group = 5,
	                           .index = 3,
	                           .term = 1,
	                           .kind = RD_JOURNAL_RAW,
	                           .data = (const uint8_t *)"x",
	                           .len = 1};

	cr_assert_eq(rd_storage_batch_journal_put(b, &r, msg), 0);
	rd_storage_commit(bst, b);
	rd_storage_batch_free(b);
	th_put_keys(a, 5, "k", 50, 10, 2);
	produce(a, 5, 4096, &s);
	cr_assert_eq(install(bst, &s, &m), 0, "%s", msg);
	cr_assert_eq(rd_storage_journal_info(bst, 5, &in, msg), 0, "%s", msg);
	cr_assert_eq(in.start, 51);
	cr_assert_eq(in.count, 0, "the receiver's old journal entries are gone");
	stream_free(&s);
}

/* A batch call that leaves no work (here a compaction below the log start)
 * still gives the batch a view of the group, taken from its durable state.
 * An install is allowed under it (the batch holds no work for the group),
 * but the batch's later calls for the group must see the installed log: a
 * core that stepped the snapshot persists commit = the snapshot's index
 * next, and a view of the old log refused it ("commit beyond the last
 * index", then an abort in the node). The same holds after a group drop. */
Test(snapshot, batch_calls_after_an_install_see_the_installed_log)
{
	static struct stream s;
	struct rd_snapshot_meta m;
	struct rd_storage_group_info gi;

	th_put_keys(a, 7, "new", 50, 10, 2);
	produce(a, 7, 1024, &s);
	th_put_keys(bst, 7, "old", 20, 10, 1);

	struct rd_storage_batch *b = rd_storage_batch_new(bst);
	cr_assert_eq(rd_storage_batch_compact(b, 7, 0, &no_conf, msg), 0, "%s", msg);
	cr_assert(rd_storage_batch_empty(b));
	cr_assert_eq(install(bst, &s, &m), 0, "%s", msg);
	cr_assert_eq(m.index, 50);
	struct rd_hard_state hs = {.term = 2, .commit = 50};
	cr_assert_eq(rd_storage_batch_set_hard_state(b, 7, &hs, msg), 0, "%s", msg);
	rd_storage_commit(bst, b);
	rd_storage_batch_free(b);
	cr_assert_eq(rd_storage_group_info(bst, 7, &gi), 0);
	cr_assert_eq(gi.first_index, 51);
	cr_assert_eq(gi.last_index, 50);
	bst = th_reopen(bst, dirb);
	cr_assert_eq(rd_storage_group_info(bst, 7, &gi), 0);
	cr_assert_eq(gi.applied, 50);
	cr_assert_eq(gi.first_index, 51);

	/* A drop: the batch's view of the dropped group is not reused. */
	b = rd_storage_batch_new(bst);
	cr_assert_eq(rd_storage_batch_truncate(b, 7, 99, msg), 0, "%s", msg);
	cr_assert_eq(rd_storage_drop_group(bst, 7, msg), 0, "%s", msg);
	struct rd_entry e[1];
	uint8_t data[64];
	th_entries(e, data, 1, 7, 1, 1, 32);
	cr_assert_eq(rd_storage_batch_append(b, 7, e, 1, msg), 0, "%s", msg);
	rd_storage_commit(bst, b);
	rd_storage_batch_free(b);
	cr_assert_eq(rd_storage_last_index(bst, 7), 1);
	stream_free(&s);
}

static bool same_conf(const struct rd_conf_state *x, const struct rd_conf_state *y)
{
	return x->n_voters == y->n_voters && x->n_learners == y->n_learners &&
	       memcmp(x->voters, y->voters, x->n_voters * sizeof *x->voters) == 0 &&
	       memcmp(x->learners, y->learners, x->n_learners * sizeof *x->learners) == 0;
}

/* Thesis §4.1: a restart rebuilds the latest configuration from the one at
 * the compaction point plus the conf changes still in the log. After an
 * install at 600 (members {1,2,3}) and a membership change applied at 603
 * (to {1,2}), compacting to 605 moves the log start past the change: the
 * start's membership must be {1,2}, not the installed snapshot's, or the
 * change would be lost at the next start. */
Test(snapshot, compaction_after_an_install_records_the_membership_of_the_new_start)
{
	static struct stream s, s2;
	struct rd_snapshot_meta m;
	struct rd_conf_state three = {.n_voters = 3, .voters = {1, 2, 3}};
	struct rd_conf_state two = {.n_voters = 2, .voters = {1, 2}};
	struct rd_storage_group_info gi;
	th_set_conf(a, 5, &three, 0);
	th_put_keys(a, 5, "k", 600, 10, 2);
	produce(a, 5, 4096, &s);
	cr_assert_eq(install(bst, &s, &m), 0, "%s", msg);
	cr_assert_eq(rd_storage_group_info(bst, 5, &gi), 0);
	cr_assert(same_conf(&gi.start_conf, &three), "an install starts the log there");

	th_put_keys(bst, 5, "z", 10, 1, 3); /* 601..610, applied */
	bst = th_reopen(bst, dirb);         /* a close flushes: the apply is on disk */
	th_set_conf(bst, 5, &two, 605);
	for (int pass = 0; pass < 2; pass++) {
		cr_assert_eq(rd_storage_group_info(bst, 5, &gi), 0);
		cr_assert_eq(gi.first_index, 606);
		cr_assert(gi.has_snapshot);
		cr_assert_eq(gi.snap.index, 600, "the install is still the last one");
		cr_assert(
		    same_conf(&gi.start_conf, &two),
		    "pass %d: the membership at the log start is {1,2}, got %u voters",
		    pass, gi.start_conf.n_voters);
		cr_assert(same_conf(&gi.conf, &two));
		bst = th_reopen(bst, dirb);
	}
	/* And a snapshot of it ships the applied membership. */
	produce(bst, 5, 4096, &s2);
	cr_assert_eq(s2.meta.index, 610);
	cr_assert(same_conf(&s2.meta.conf, &two));
	stream_free(&s);
	stream_free(&s2);
}

/* A log start record from before it carried the membership (16 bytes):
 * taken from an install at that index, else from the conf state record. */
Test(snapshot, a_log_start_record_without_membership_still_opens)
{
	static struct stream s;
	struct rd_snapshot_meta m;
	struct rd_conf_state three = {.n_voters = 3, .voters = {1, 2, 3}};
	struct rd_conf_state four = {.n_voters = 4, .voters = {1, 2, 3, 4}};
	struct rd_storage_group_info gi;
	th_set_conf(a, 5, &three, 0);
	th_put_keys(a, 5, "k", 20, 10, 2);
	th_put_keys(a, 6, "k", 20, 10, 2);
	produce(a, 5, 4096, &s);
	cr_assert_eq(install(bst, &s, &m), 0, "%s", msg); /* group 5 of bst: at 20 */
	a = th_reopen(a, dira); /* a close flushes: the apply is on disk */
	th_set_conf(a, 6, &four, 10);
	rd_storage_close(a);
	rd_storage_close(bst);
	a = bst = NULL;

	/* Rewrite both log start records in the old 16-byte form. */
	const char *dirs[2] = {dira, dirb};
	const uint64_t grp[2] = {6, 5}, idx[2] = {10, 20};
	for (int i = 0; i < 2; i++) {
		struct th_raw raw;
		uint8_t k[RD_STATE_KEY_LEN], v[20];
		th_raw_open(&raw, dirs[i]);
		rd_state_key(k, grp[i], RD_STATE_LOGSTART);
		rd_be64_put(v + 4, idx[i]);
		rd_be64_put(v + 12, 2);
		rd_be32_put(v, rd_crc32c(rd_crc32c(0, k, sizeof k), v + 4, 16));
		th_raw_put(&raw, RD_CF_STATE, k, sizeof k, v, sizeof v);
		th_raw_close(&raw);
	}
	a = th_open(dira);
	bst = th_open(dirb);
	cr_assert_eq(rd_storage_group_info(a, 6, &gi), 0);
	cr_assert_eq(gi.first_index, 11);
	cr_assert(same_conf(&gi.start_conf, &four), "from the conf state record");
	cr_assert_eq(rd_storage_group_info(bst, 5, &gi), 0);
	cr_assert_eq(gi.first_index, 21);
	cr_assert(same_conf(&gi.start_conf, &three), "from the install at that index");
	stream_free(&s);
}
