/*
 * The storage writer thread: rd_storage_commit_start hands it a filled
 * batch, it makes the batch's two RocksDB writes (W1 synced, then W2
 * without the WAL, batch.c rd__commit_write) while the event loop goes on
 * stepping input, and rings a doorbell (an eventfd) when both returned.
 * The loop then calls rd_storage_commit_finish, which publishes the new
 * durable state and feeds the caches on the loop's own thread: the writer
 * touches nothing but the batch's two RocksDB write batches, the database
 * and the "outstanding since" word of stall.c, so every in-memory view of
 * storage keeps a single thread.
 *
 * One batch at a time: a batch is started only after the previous one was
 * finished, so W1 N, W2 N, W1 N+1 reach RocksDB in that order and the
 * write-once argument of README.md ("What is on disk at any moment") holds
 * as with writes on the loop's thread.
 *
 * Happy path: start (loop) -> W1 + fdatasync, W2 (writer) -> doorbell ->
 * finish (loop). Failure modes: a failed write aborts the process from the
 * writer thread (rd_fatal, as on the loop's thread: nothing is retried and
 * then acknowledged); a write that never returns is caught by the stall
 * guard (stall.c), which reads the same "outstanding since" word.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "storage/internal.h"
#include "util/err.h"
#include "util/fatal.h"
#include "util/log.h"

struct rd__writer {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct rd_storage *st;
	struct rd_storage_batch *job; /* being written; NULL when idle */
	bool done;                    /* the started batch's writes returned */
	bool stop;
	int efd; /* the doorbell: written once per batch written */
};

static void *writer_main(void *arg)
{
	struct rd__writer *w = arg;
	uint64_t one = 1;

	/* Per thread, like the loop's (batch.c rd_storage_batch_new). */
	rocksdb_set_perf_level(1 /* rocksdb_disable */);
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (w->job == NULL && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->job == NULL)
			break;
		struct rd_storage_batch *b = w->job;
		pthread_mutex_unlock(&w->mu);
		rd__commit_write(w->st, b);
		pthread_mutex_lock(&w->mu);
		w->job = NULL;
		w->done = true;
		pthread_cond_broadcast(&w->cv);
		/* An eventfd write fails only on a counter overflow, which one
		 * write per batch cannot reach before the loop reads it. */
		while (write(w->efd, &one, sizeof one) < 0 && errno == EINTR)
			;
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

int rd_storage_writer_start(struct rd_storage *st, char *msg)
{
	struct rd__writer *w;
	int rv;

	if (st->writer != NULL)
		return 0;
	w = calloc(1, sizeof *w);
	if (w == NULL)
		return rd_errorf(msg, RD_ENOMEM, "storage writer: out of memory");
	w->st = st;
	w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->efd < 0) {
		rv = rd_errorf(msg, RD_EIO, "storage writer: eventfd: %s",
		               strerror(errno));
		goto err_after_alloc;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	rv = pthread_create(&w->thread, NULL, writer_main, w);
	if (rv != 0) {
		rv = rd_errorf(msg, RD_EIO, "storage writer thread: %s", strerror(rv));
		goto err_after_sync;
	}
	st->writer = w;
	return 0;

err_after_sync:
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	close(w->efd);
err_after_alloc:
	free(w);
	return rv;
}

void rd__writer_stop(struct rd_storage *st)
{
	struct rd__writer *w = st->writer;

	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL); /* writes the job in hand first */
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	close(w->efd);
	free(w);
	st->writer = NULL;
}

void rd__writer_idle(struct rd_storage *st)
{
	struct rd__writer *w = st->writer;

	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	while (w->job != NULL)
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
}

int rd_storage_commit_fd(const struct rd_storage *st)
{
	return st->writer != NULL ? st->writer->efd : -1;
}

void rd_storage_commit_doorbell_clear(struct rd_storage *st)
{
	uint64_t v;

	if (st->writer != NULL)
		while (read(st->writer->efd, &v, sizeof v) < 0 && errno == EINTR)
			;
}

bool rd_storage_commit_start(struct rd_storage *st, struct rd_storage_batch *b)
{
	if (st->inflight != NULL)
		rd_fatal("fatal: storage batch started while another one is in flight");
	if (rd_storage_batch_empty(b)) {
		b->committed = true;
		return false;
	}
	rd__encode_states(b);
	st->inflight = b;
	if (st->writer == NULL) {
		rd__commit_write(st, b); /* on this thread: done when it returns */
		return true;
	}
	pthread_mutex_lock(&st->writer->mu);
	st->writer->job = b;
	st->writer->done = false;
	pthread_cond_broadcast(&st->writer->cv);
	pthread_mutex_unlock(&st->writer->mu);
	return true;
}

bool rd_storage_commit_busy(const struct rd_storage *st)
{
	return st->inflight != NULL;
}

bool rd_storage_commit_done(struct rd_storage *st)
{
	struct rd__writer *w = st->writer;
	bool done;

	if (st->inflight == NULL || w == NULL)
		return true;
	pthread_mutex_lock(&w->mu);
	done = w->job == NULL;
	pthread_mutex_unlock(&w->mu);
	return done;
}

void rd_storage_commit_finish(struct rd_storage *st, struct rd_storage_batch *b)
{
	if (st->inflight == NULL)
		return;
	if (st->inflight != b)
		rd_fatal(
		    "fatal: storage commit finished with another batch than started");
	rd__writer_idle(st); /* the writer's unlock orders its writes before ours */
	st->inflight = NULL;
	rd__commit_publish(st, b);
}
