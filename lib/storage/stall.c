/*
 * Watching the synced writes: how long each took, whether one is still
 * outstanding, and the guard that ends the process when one never returns.
 *
 * Every synced write (batch.c, install.c) goes through rd__sync_begin
 * before the RocksDB call and rd__record_sync after it (rd__synced_write
 * does both around the write). Begin stores the
 * start time in an atomic "outstanding since" word that other threads may
 * read; record clears it and keeps the duration in a small ring that the
 * node's health check reads (rd_storage_sync_recent).
 *
 * The stall guard (rd_storage_stall_guard) is a thread, because the loop
 * that would otherwise notice is the one blocked in fdatasync. It wakes a
 * few times per limit and aborts the process when one write has been
 * outstanding past the limit: a hung disk never comes back in a useful
 * time, peers elect new leaders as soon as this node is gone, and systemd
 * restarts it (etcd and TiKV treat a disk the same way).
 *
 * Test-only fault hook: when $RAFTD_TEST_FSYNC_FAULT names a file at open,
 * every synced write first reads that file: "delay MS" sleeps MS
 * milliseconds before the write, "block" waits until the file says
 * something else, anything else (or no file) does nothing. The time spent
 * there counts as the write's, as a slow disk's would. Never set it in
 * production.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/internal.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/fatal.h"
#include "util/log.h"

#define RING      256u
#define FAULT_ENV "RAFTD_TEST_FSYNC_FAULT"

struct rd__sync_track {
	_Atomic uint64_t since_ns; /* start of the outstanding write; 0: none */
	uint64_t ring[RING];       /* durations (ns) of the last writes */
	uint64_t done;             /* writes recorded; ring[(done - 1) % RING] newest */
	char *fault_path;          /* test-only hook; NULL when unset */

	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool running, stop;
	uint64_t limit_ns;
};

int rd__sync_track_open(struct rd_storage *st, char *msg)
{
	struct rd__sync_track *t = calloc(1, sizeof *t);
	const char *fault = getenv(FAULT_ENV);

	if (t == NULL)
		return rd_errorf(msg, RD_ENOMEM, "out of memory");
	if (fault != NULL && fault[0] != '\0') {
		t->fault_path = strdup(fault);
		if (t->fault_path == NULL) {
			free(t);
			return rd_errorf(msg, RD_ENOMEM, "out of memory");
		}
		rd_log_warn("storage fault hook armed (test only) " FAULT_ENV "=%s",
		            fault);
	}
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
	st->track = t;
	return 0;
}

void rd__sync_track_close(struct rd_storage *st)
{
	struct rd__sync_track *t = st->track;

	if (t == NULL)
		return;
	if (t->running) {
		pthread_mutex_lock(&t->mu);
		t->stop = true;
		pthread_cond_signal(&t->cv);
		pthread_mutex_unlock(&t->mu);
		pthread_join(t->thread, NULL);
	}
	pthread_cond_destroy(&t->cv);
	pthread_mutex_destroy(&t->mu);
	free(t->fault_path);
	free(t);
	st->track = NULL;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* What the fault file says now: 0 nothing, 1 delay (*ms), 2 block. */
static int read_fault(const char *path, unsigned *ms)
{
	char buf[64] = {0};
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return 0;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	if (strncmp(buf, "block", 5) == 0)
		return 2;
	if (sscanf(buf, "delay %u", ms) == 1)
		return 1;
	return 0;
}

static void apply_fault(const char *path)
{
	unsigned ms = 0;
	int kind = read_fault(path, &ms);

	if (kind == 1)
		sleep_ms(ms);
	while (kind == 2) {
		sleep_ms(10);
		kind = read_fault(path, &ms);
	}
}

uint64_t rd__sync_begin(struct rd_storage *st)
{
	struct rd__sync_track *t = st->track;
	uint64_t t0 = rd_clock_now_ns();

	atomic_store_explicit(&t->since_ns, t0, memory_order_release);
	if (t->fault_path != NULL)
		apply_fault(t->fault_path);
	return t0;
}

void rd__synced_write(struct rd_storage *st, rocksdb_writebatch_t *wb, const char *what)
{
	char *err = NULL;
	uint64_t t0;

	rd__writer_idle(st); /* one synced write outstanding at a time */
	t0 = rd__sync_begin(st);

	rocksdb_write(st->db, st->wo, wb, &err);
	if (err != NULL)
		rd_fatal(RD_STORAGE_FATAL_FMT, what, err);
	rd__record_sync(st, rd_clock_now_ns() - t0);
}

void rd__sync_clear(struct rd_storage *st)
{
	atomic_store_explicit(&st->track->since_ns, 0, memory_order_release);
}

void rd__sync_end(struct rd_storage *st, uint64_t ns)
{
	struct rd__sync_track *t = st->track;

	atomic_store_explicit(&t->since_ns, 0, memory_order_release);
	t->ring[t->done++ % RING] = ns;
}

uint64_t rd_storage_sync_outstanding_since(const struct rd_storage *st)
{
	return atomic_load_explicit(&st->track->since_ns, memory_order_acquire);
}

size_t rd_storage_sync_recent(const struct rd_storage *st, uint64_t *cursor, uint64_t *ns,
                              size_t max)
{
	const struct rd__sync_track *t = st->track;
	uint64_t from = *cursor;
	size_t n = 0;

	if (t->done - from > RING)
		from = t->done - RING;
	if (t->done - from > max)
		from = t->done - max;
	for (uint64_t i = from; i < t->done; i++)
		ns[n++] = t->ring[i % RING];
	*cursor = t->done;
	return n;
}

static void *guard_main(void *arg)
{
	struct rd__sync_track *t = arg;
	uint64_t period = t->limit_ns / 4;

	if (period > 1000000000ull)
		period = 1000000000ull;
	if (period < 1000000ull)
		period = 1000000ull;
	pthread_mutex_lock(&t->mu);
	while (!t->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t ns = (uint64_t)ts.tv_nsec + period;
		ts.tv_sec += (time_t)(ns / 1000000000ull);
		ts.tv_nsec = (long)(ns % 1000000000ull);
		pthread_cond_timedwait(&t->cv, &t->mu, &ts);
		uint64_t since = atomic_load_explicit(&t->since_ns, memory_order_acquire);
		uint64_t now = rd_clock_now_ns();
		if (since != 0 && now > since && now - since > t->limit_ns) {
			rd_log_crit("storage stalled, aborting: a synced write has been "
			            "outstanding for %llu ms (limit_ms=%llu)",
			            (unsigned long long)((now - since) / 1000000ull),
			            (unsigned long long)(t->limit_ns / 1000000ull));
			abort();
		}
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

int rd_storage_stall_guard(struct rd_storage *st, uint64_t limit_ms, char *msg)
{
	struct rd__sync_track *t = st->track;
	int rv;

	if (limit_ms == 0 || t->running)
		return 0;
	t->limit_ns = limit_ms * 1000000ull;
	rv = pthread_create(&t->thread, NULL, guard_main, t);
	if (rv != 0)
		return rd_errorf(msg, RD_EIO, "stall guard thread: %s", strerror(rv));
	t->running = true;
	return 0;
}
