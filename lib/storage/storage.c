/*
 * Opening and closing the node's RocksDB database, the catalog, and the
 * accessors of per-group state.
 *
 * Happy path: open the column families, check the format record, read or
 * create the incarnation and cluster id, scan state and log (load.c), serve.
 * Failure modes: a missing database without create_if_missing, a foreign
 * cluster id, and any corruption RocksDB or our checksums find are refused
 * with a message; nothing is repaired or truncated silently.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/sort.h"

const double rd_storage_sync_bucket_le[RD_STORAGE_SYNC_BUCKETS] = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 1.0,
};

void rd_storage_options_init(struct rd_storage_options *o)
{
	memset(o, 0, sizeof *o);
}

/* `c` with a memtable insert hint per key prefix of `prefix` bytes (the
 * group id, or group id and kind): RocksDB's skiplist then starts each insert
 * from the position of the previous key with the same prefix, instead of
 * only from the previous key of the whole write. One batch writes the next
 * entry of many groups, so consecutive inserts are in different groups and
 * the plain hint never applies. The C API has no setter; the options-string
 * parser has. */
static rocksdb_options_t *with_hint(rocksdb_options_t *c, size_t prefix)
{
	char spec[96], *err = NULL;
	rocksdb_options_t *h = rocksdb_options_create();

	snprintf(spec, sizeof spec,
	         "memtable_insert_with_hint_prefix_extractor=rocksdb.FixedPrefix.%zu",
	         prefix);
	rocksdb_get_options_from_string(c, spec, h, &err);
	if (err != NULL)
		rd_fatal("fatal: storage options \"%s\": %s", spec, err);
	rocksdb_options_destroy(c);
	return h;
}

/*
 * Options, chosen on purpose:
 *
 * - WAL recovery mode kTolerateCorruptedTailRecords. A torn record at the
 *   very end of the WAL (power lost in the middle of a write) can only
 *   belong to a write whose sync never returned, so nobody was told it is
 *   durable: dropping it is correct. Corruption anywhere before the tail
 *   means acknowledged data is damaged: the open fails and we refuse to
 *   start. (kPointInTimeRecovery would silently stop replay at the damage
 *   and lose acknowledged writes after it; kAbsoluteConsistency would
 *   refuse to start after an ordinary power cut.)
 * - paranoid_checks on: RocksDB verifies file checksums it meets at open
 *   and turns background errors into a failed write (which aborts us).
 * - use_fsync off: WAL syncs are fdatasync(2), which is what durability of
 *   an appended file needs; RocksDB syncs the directory itself when it
 *   creates files.
 * - manual_wal_flush off and sync=true on every write of the log and the
 *   Raft state (W1): it is durable when rocksdb_write returns; one write
 *   per loop iteration makes that one fdatasync for every group (group
 *   commit). What applying changed (W2) is written without the WAL right
 *   after (rd_storage_commit, README.md "Writing each command once").
 * - atomic_flush on: W2 is on disk only once a flush put it into SST files,
 *   and a flush that RocksDB starts itself (a full memtable, the WAL cap)
 *   then writes every column family as of one point of the write sequence,
 *   so the state machine, sessions, journal and applied indexes on disk
 *   always belong together. (A manual rocksdb_flush_cf flushes one family
 *   only, even with atomic_flush: raftd never calls it.)
 * - Reads verify block checksums (on by default; set explicitly).
 * - max_total_wal_size RD_STORAGE_WAL_MAX: the WAL is one file sequence for
 *   all families, and a file stays alive until every family with data in it
 *   has flushed. The catalog family is written rarely, so without a cap one
 *   catalog record kept gigabytes of WAL alive, all replayed at open. Above
 *   the cap RocksDB flushes the families that hold the oldest file (a
 *   catalog flush is a few hundred bytes).
 * - The log family inserts into the memtable with a hint per group
 *   (with_hint): one batch writes every group's next entry. Not the state
 *   family: its records are few, and a group drop range-deletes them.
 * - The log family keeps values of RD_LOG_BLOB_MIN bytes and more in blob
 *   files (flushes write them there; SST files hold the references).
 */
static void set_options(struct rd_storage *st, bool create, size_t memtable_bytes)
{
	rocksdb_options_t *o = rocksdb_options_create();

	rocksdb_options_set_create_if_missing(o, create);
	/* A database from before a column family existed gets it empty. */
	rocksdb_options_set_create_missing_column_families(o, 1);
	rocksdb_options_set_paranoid_checks(o, 1);
	rocksdb_options_set_wal_recovery_mode(o, 0 /* kTolerateCorruptedTailRecords */);
	rocksdb_options_set_use_fsync(o, 0);
	rocksdb_options_set_manual_wal_flush(o, 0);
	rocksdb_options_set_max_background_jobs(o, 2);
	rocksdb_options_set_keep_log_file_num(o, 4);
	rocksdb_options_set_info_log_level(o, 2 /* WARN */);
	rocksdb_options_set_max_open_files(o, 512);
	rocksdb_options_set_atomic_flush(o, 1);
	if (memtable_bytes != 0)
		rocksdb_options_set_write_buffer_size(o, memtable_bytes);
	st->opts = o;

	rocksdb_options_set_max_total_wal_size(o, RD_STORAGE_WAL_MAX);
	st->table_opts = rocksdb_block_based_options_create();
	rocksdb_block_based_options_set_block_cache(st->table_opts, st->block_cache);
	for (int i = 0; i < RD_CF_COUNT; i++) {
		rocksdb_options_t *c = rocksdb_options_create_copy(o);
		rocksdb_options_set_block_based_table_factory(c, st->table_opts);
		/* Log records are written once and read rarely; compression
		 * would cost CPU on the hot path for little gain. */
		if (i == RD_CF_LOG)
			rocksdb_options_set_compression(c, 0 /* none */);
		/* The hint only on the log: a range deletion in a hinted
		 * family breaks RocksDB 7.8's memtable (rd__log_delete), and
		 * dropping a group range-deletes its state records. */
		if (i == RD_CF_LOG)
			c = with_hint(c, 8 /* group id */);
		/* A flush writes the log's values to a blob file and only
		 * keys and references to its SST, so compactions move
		 * references; entries die in log order, so a blob file goes
		 * whole once compaction dropped its keys. A quiet group's
		 * tail would pin its files: garbage collection moves the live
		 * values of the oldest quarter of the files, and once half of
		 * those are garbage RocksDB compacts what refers to them even
		 * when no new file overlaps it (README.md, "Memtables,
		 * flushes and compactions"). */
		if (i == RD_CF_LOG) {
			rocksdb_options_set_enable_blob_files(c, 1);
			rocksdb_options_set_min_blob_size(c, RD_LOG_BLOB_MIN);
			rocksdb_options_set_enable_blob_gc(c, 1);
			rocksdb_options_set_blob_gc_force_threshold(c, 0.5);
		}
		/* The unused default family has a small buffer, which
		 * rd_storage_flush_soon fills to have RocksDB flush. */
		if (i == RD_CF_DEFAULT)
			rocksdb_options_set_write_buffer_size(c, RD_DEFAULT_CF_BUFFER);
		st->cf_opts[i] = c;
	}
	st->ro = rocksdb_readoptions_create();
	rocksdb_readoptions_set_verify_checksums(st->ro, 1);
	st->ro_disk = rocksdb_readoptions_create();
	rocksdb_readoptions_set_verify_checksums(st->ro_disk, 1);
	rocksdb_readoptions_set_read_tier(st->ro_disk, 2 /* kPersistedTier */);
	st->wo = rocksdb_writeoptions_create();
	rocksdb_writeoptions_set_sync(st->wo, 1);
	st->wo_lazy = rocksdb_writeoptions_create();
	st->wo_nowal = rocksdb_writeoptions_create();
	rocksdb_writeoptions_disable_WAL(st->wo_nowal, 1);
}

static void free_handle(struct rd_storage *st)
{
	rd__writer_stop(st);
	for (int i = 0; i < RD_CF_COUNT; i++)
		if (st->cf[i] != NULL)
			rocksdb_column_family_handle_destroy(st->cf[i]);
	if (st->db != NULL)
		rocksdb_close(st->db);
	for (int i = 0; i < RD_CF_COUNT; i++)
		if (st->cf_opts[i] != NULL)
			rocksdb_options_destroy(st->cf_opts[i]);
	if (st->opts != NULL)
		rocksdb_options_destroy(st->opts);
	if (st->table_opts != NULL)
		rocksdb_block_based_options_destroy(st->table_opts);
	if (st->block_cache != NULL)
		rocksdb_cache_destroy(st->block_cache);
	if (st->ro != NULL)
		rocksdb_readoptions_destroy(st->ro);
	if (st->ro_disk != NULL)
		rocksdb_readoptions_destroy(st->ro_disk);
	if (st->wo != NULL)
		rocksdb_writeoptions_destroy(st->wo);
	if (st->wo_lazy != NULL)
		rocksdb_writeoptions_destroy(st->wo_lazy);
	if (st->wo_nowal != NULL)
		rocksdb_writeoptions_destroy(st->wo_nowal);
	rd__groups_free(st);
	rd__sync_track_close(st);
	free(st->flush_poke);
	free(st->dir);
	free(st);
}

void rd_storage_close(struct rd_storage *st)
{
	if (st != NULL)
		free_handle(st);
}

/* Read catalog record `name` into a malloc'd buffer; RD_ENOTFOUND if absent. */
static int cat_get(struct rd_storage *st, const char *name, uint8_t **data, size_t *len,
                   char *msg)
{
	char *err = NULL;
	size_t vlen = 0;
	char *v = rocksdb_get_cf(st->db, st->ro, st->cf[RD_CF_CATALOG], name,
	                         strlen(name), &vlen, &err);
	if (err != NULL)
		return rd__rocks_err(err, msg, "read catalog");
	if (v == NULL)
		return RD_ENOTFOUND;
	*data = (uint8_t *)v;
	*len = vlen;
	return 0;
}

static int cat_put(struct rd_storage *st, const char *name, const uint8_t *data,
                   size_t len, char *msg)
{
	char *err = NULL;
	rd__writer_idle(st); /* one synced write outstanding at a time */
	rocksdb_put_cf(st->db, st->wo, st->cf[RD_CF_CATALOG], name, strlen(name),
	               (const char *)data, len, &err);
	if (err != NULL)
		return rd__rocks_err(err, msg, "write catalog");
	return 0;
}

/* Draw a random non-zero incarnation for this data directory and write it
 * to the catalog (its own synced write). */
static int put_new_incarnation(struct rd_storage *st, uint64_t *out, char *msg)
{
	uint8_t buf[8];
	uint64_t inc = 0;

	while (inc == 0)
		if (getrandom(&inc, sizeof inc, 0) != sizeof inc)
			return rd_errorf(msg, RD_EIO, "getrandom: %s", strerror(errno));
	rd_be64_put(buf, inc);
	*out = inc;
	return cat_put(st, "incarnation", buf, sizeof buf, msg);
}

/* Does the database hold any record in `cf`? */
static bool cf_empty(struct rd_storage *st, int cf)
{
	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(st->db, st->ro, st->cf[cf]);
	rocksdb_iter_seek_to_first(it);
	bool empty = !rocksdb_iter_valid(it);
	rocksdb_iter_destroy(it);
	return empty;
}

/* Read the format and incarnation, or write them into a fresh database. */
static int init_catalog(struct rd_storage *st, bool create, char *msg)
{
	uint8_t *v = NULL, buf[8];
	size_t len = 0;
	int rv = cat_get(st, "format", &v, &len, msg);

	if (rv == RD_ENOTFOUND) {
		/* A database created by a start that died before its first
		 * catalog write is empty and may be initialised now. */
		if (!create || !cf_empty(st, RD_CF_LOG) || !cf_empty(st, RD_CF_STATE))
			return rd_errorf(msg, RD_ECORRUPT,
			                 "%s: not a raftd database (no format record)",
			                 st->dir);
		uint64_t inc;
		if ((rv = put_new_incarnation(st, &inc, msg)) != 0)
			return rv;
		rd_be32_put(buf, RD_SCHEMA_FORMAT);
		/* Written last: its presence means the catalog is complete. */
		if ((rv = cat_put(st, "format", buf, 4, msg)) != 0)
			return rv;
		rd_log_info("storage created dir=%s incarnation=%016llx", st->dir,
		            (unsigned long long)inc);
		st->incarnation = inc;
		return 0;
	}
	if (rv != 0)
		return rv;
	bool ok = len == 4 && rd_be32_get(v) == RD_SCHEMA_FORMAT;
	free(v);
	if (!ok)
		return rd_errorf(msg, RD_ECORRUPT, "%s: unsupported database format",
		                 st->dir);
	rv = cat_get(st, "incarnation", &v, &len, msg);
	if (rv == RD_ENOTFOUND) {
		/* A database written before incarnations existed: it keeps its
		 * state, so it gets one now (its own synced write) and
		 * registers it like any member (multiraft/membership.c). */
		uint64_t inc;
		if ((rv = put_new_incarnation(st, &inc, msg)) != 0)
			return rv;
		rd_log_notice("storage upgraded dir=%s: incarnation=%016llx assigned",
		              st->dir, (unsigned long long)inc);
		st->incarnation = inc;
		return 0;
	}
	if (rv != 0)
		return rv;
	ok = len == 8;
	if (ok)
		st->incarnation = rd_be64_get(v);
	free(v);
	if (!ok || st->incarnation == 0)
		return rd_errorf(msg, RD_ECORRUPT, "%s: malformed incarnation", st->dir);
	return 0;
}

static int init_cluster_id(struct rd_storage *st, const char *want, char *msg)
{
	uint8_t *v = NULL;
	size_t len = 0;
	int rv = cat_get(st, "cluster_id", &v, &len, msg);

	if (rv == 0) {
		if (len == 0 || len > RD_STORAGE_CLUSTER_ID_MAX) {
			free(v);
			return rd_errorf(msg, RD_ECORRUPT, "%s: malformed cluster id",
			                 st->dir);
		}
		memcpy(st->cluster_id, v, len);
		st->cluster_id[len] = 0;
		free(v);
	} else if (rv != RD_ENOTFOUND) {
		return rv;
	}
	if (want == NULL || want[0] == 0)
		return 0;
	return rd_storage_set_cluster_id(st, want, msg);
}

int rd_storage_open(const char *dir, const struct rd_storage_options *o,
                    struct rd_storage **out, char *msg)
{
	struct rd_storage_options defaults;
	struct rd_storage *st;
	struct stat sb;
	char *err = NULL;
	int rv;

	if (o == NULL) {
		rd_storage_options_init(&defaults);
		o = &defaults;
	}
	char current[4096];
	snprintf(current, sizeof current, "%s/CURRENT", dir);
	bool exists = stat(current, &sb) == 0;
	if (!exists && !o->create_if_missing)
		return rd_errorf(
		    msg, RD_ENOTFOUND,
		    "data directory %s holds no raftd database and this node is "
		    "not allowed to create one",
		    dir);
	if (!exists && mkdir(dir, 0750) != 0 && errno != EEXIST)
		return rd_errorf(msg, RD_EIO, "mkdir %s: %s", dir, strerror(errno));

	st = calloc(1, sizeof *st);
	if (st == NULL || (st->dir = strdup(dir)) == NULL) {
		free(st);
		return rd_errorf(msg, RD_ENOMEM, "open %s: out of memory", dir);
	}
	st->session_max =
	    o->session_max ? o->session_max : RD_STORAGE_SESSION_MAX_DEFAULT;
	st->session_expiry =
	    o->session_expiry ? o->session_expiry : RD_STORAGE_SESSION_EXPIRY_DEFAULT;
	st->flush_interval_ns =
	    o->flush_interval_ns ? o->flush_interval_ns : RD_STORAGE_FLUSH_INTERVAL_NS;
	st->cache_bytes = o->cache_bytes_per_group ? o->cache_bytes_per_group
	                                           : RD_STORAGE_CACHE_DEFAULT;
	st->block_cache = rocksdb_cache_create_lru(
	    o->block_cache_bytes ? o->block_cache_bytes : 32u << 20);
	if ((rv = rd__sync_track_open(st, msg)) != 0) {
		free_handle(st);
		return rv;
	}
	set_options(st, !exists, o->memtable_bytes);

	st->db = rocksdb_open_column_families(
	    st->opts, dir, RD_CF_COUNT, (const char *const *)rd_schema_cf_names,
	    (const rocksdb_options_t *const *)st->cf_opts, st->cf, &err);
	if (err != NULL) {
		st->db = NULL;
		memset(st->cf, 0, sizeof st->cf);
		rv = rd__rocks_err(err, msg, "open");
		rd_errprefix(msg, "data directory %s: ", dir);
		goto err_after_alloc;
	}
	if ((rv = init_catalog(st, o->create_if_missing, msg)) != 0)
		goto err_after_alloc;
	if ((rv = init_cluster_id(st, o->cluster_id, msg)) != 0)
		goto err_after_alloc;
	if ((rv = rd__load(st, msg)) != 0) {
		rd_errprefix(msg, "data directory %s: ", dir);
		goto err_after_alloc;
	}
	rd_log_info("storage opened dir=%s groups=%zu cluster=%s", dir, st->ngroups,
	            st->cluster_id[0] ? st->cluster_id : "(unknown)");
	*out = st;
	return 0;

err_after_alloc:
	free_handle(st);
	return rv;
}

const char *rd_storage_cluster_id(const struct rd_storage *st)
{
	return st->cluster_id;
}

int rd_storage_set_cluster_id(struct rd_storage *st, const char *id, char *msg)
{
	size_t len = id ? strlen(id) : 0;
	int rv;

	if (len == 0 || len > RD_STORAGE_CLUSTER_ID_MAX)
		return rd_errorf(msg, RD_EINVAL, "cluster id must be 1..%d bytes",
		                 RD_STORAGE_CLUSTER_ID_MAX);
	if (st->cluster_id[0] != 0) {
		if (strcmp(st->cluster_id, id) == 0)
			return 0;
		return rd_errorf(
		    msg, RD_EMISMATCH,
		    "data directory %s belongs to cluster \"%s\", not \"%s\"", st->dir,
		    st->cluster_id, id);
	}
	if ((rv = cat_put(st, "cluster_id", (const uint8_t *)id, len, msg)) != 0)
		return rv;
	memcpy(st->cluster_id, id, len + 1);
	return 0;
}

uint64_t rd_storage_incarnation(const struct rd_storage *st)
{
	return st->incarnation;
}

static int check_name(const char *name, char *msg)
{
	size_t len = name ? strlen(name) : 0;
	if (len == 0 || len > RD_STORAGE_CATALOG_NAME_MAX)
		return rd_errorf(msg, RD_EINVAL, "catalog name must be 1..%d bytes",
		                 RD_STORAGE_CATALOG_NAME_MAX);
	if (strcmp(name, "cluster_id") == 0 || strcmp(name, "incarnation") == 0 ||
	    strcmp(name, "format") == 0)
		return rd_errorf(msg, RD_EINVAL, "catalog name \"%s\" is reserved", name);
	return 0;
}

int rd_storage_catalog_get(struct rd_storage *st, const char *name, uint8_t **data,
                           size_t *len, char *msg)
{
	int rv = cat_get(st, name, data, len, msg);
	if (rv == RD_ENOTFOUND)
		return rd_errorf(msg, RD_ENOTFOUND, "catalog: no record \"%s\"", name);
	if (rv == 0 && *len == 0) {
		free(*data);
		*data = NULL;
	}
	return rv;
}

int rd_storage_catalog_put(struct rd_storage *st, const char *name, const uint8_t *data,
                           size_t len, char *msg)
{
	int rv = check_name(name, msg);
	if (rv != 0)
		return rv;
	return cat_put(st, name, data, len, msg);
}

int rd__catalog_check_name(const char *name, char *msg)
{
	return check_name(name, msg);
}

size_t rd_storage_group_count(const struct rd_storage *st)
{
	size_t n = 0;
	for (size_t i = 0; i < st->nslots; i++)
		if (st->slots[i] != NULL && st->slots[i]->present)
			n++;
	return n;
}

size_t rd_storage_groups(const struct rd_storage *st, uint64_t *out, size_t cap)
{
	size_t n = rd_storage_group_count(st);
	uint64_t *all = rd_xcalloc(n, sizeof *all);
	size_t k = 0;

	for (size_t i = 0; i < st->nslots; i++)
		if (st->slots[i] != NULL && st->slots[i]->present)
			all[k++] = st->slots[i]->id;
	rd_sort_u64(all, n);
	memcpy(out, all, (n < cap ? n : cap) * sizeof *all);
	free(all);
	return n;
}

int rd_storage_group_info(const struct rd_storage *st, uint64_t group,
                          struct rd_storage_group_info *info)
{
	const struct rd_sgroup *g = rd__group_find(st, group);

	memset(info, 0, sizeof *info);
	info->group = group;
	info->first_index = 1;
	if (g == NULL || !g->present)
		return RD_ENOTFOUND;
	info->hs = g->hs;
	info->conf = *g->conf;
	info->applied = g->applied;
	info->has_snapshot = g->has_snap;
	info->snap.index = g->snap_index;
	info->snap.term = g->snap_term;
	info->snap.conf = *g->snap_conf;
	info->start_conf = *g->start_conf;
	info->first_index = g->first;
	info->last_index = g->last;
	info->last_term = g->last_term;
	info->compact_term = g->compact_term;
	return 0;
}

uint64_t rd_storage_first_index(const struct rd_storage *st, uint64_t group)
{
	const struct rd_sgroup *g = rd__group_find(st, group);
	return g ? g->first : 1;
}

uint64_t rd_storage_last_index(const struct rd_storage *st, uint64_t group)
{
	const struct rd_sgroup *g = rd__group_find(st, group);
	return g ? g->last : 0;
}

uint64_t rd_storage_durable_applied(struct rd_storage *st, uint64_t group)
{
	struct rd_sgroup *g = rd__group_find(st, group);
	uint8_t k[RD_STATE_KEY_LEN];
	char *err = NULL, msg[RD_ERRMSG_SIZE];
	size_t vlen = 0;

	if (g == NULL)
		return 0;
	uint64_t now = rd_clock_now_ns();
	if (g->durable_fenced || g->durable >= g->applied ||
	    (g->durable_ns != 0 && now - g->durable_ns < RD_STORAGE_DURABLE_CHECK_NS))
		return g->durable;
	g->durable_ns = now;
	rd_state_key(k, group, RD_STATE_APPLIED);
	char *v = rocksdb_get_cf(st->db, st->ro_disk, st->cf[RD_CF_STATE],
	                         (const char *)k, sizeof k, &vlen, &err);
	if (err != NULL)
		rd_fatal(RD_STORAGE_FATAL_FMT, "read the applied index on disk", err);
	if (v == NULL)
		return g->durable;
	/* Decode into a scratch group: the record's CRC covers the key. */
	struct rd_sgroup tmp = {.id = group};
	int rv = rd__dec_state(&tmp, RD_STATE_APPLIED, (const uint8_t *)v, vlen, msg);
	free(v);
	if (rv != 0)
		rd_fatal("fatal: storage: applied index on disk: %s", msg);
	/* Flushed state only grows, and never passes what was applied. */
	if (tmp.applied > g->durable && tmp.applied <= g->applied)
		g->durable = tmp.applied;
	return g->durable;
}

/* The C API flushes one family at a time only (rocksdb_flush_cf), which
 * would put one family's memtable on disk without the others'. A family
 * whose memtable is full is flushed by RocksDB itself, and then with
 * atomic_flush every family at once: so fill the unused default family's
 * small buffer with one value (without the WAL) and write once more, which
 * is when RocksDB sees the full memtable and schedules the flush. The value
 * is overwritten each time and never read. */
void rd_storage_flush_soon(struct rd_storage *st)
{
	static const char key[] = "flush";
	uint64_t now = rd_clock_now_ns();
	char *err = NULL;

	if (st->flush_ns != 0 && now - st->flush_ns < st->flush_interval_ns)
		return;
	st->flush_ns = now;
	if (st->flush_poke == NULL)
		st->flush_poke = rd_xcalloc(1, RD_FLUSH_POKE_BYTES);
	rocksdb_put_cf(st->db, st->wo_nowal, st->cf[RD_CF_DEFAULT], key, sizeof key - 1,
	               (const char *)st->flush_poke, RD_FLUSH_POKE_BYTES, &err);
	if (err == NULL)
		rocksdb_put_cf(st->db, st->wo_nowal, st->cf[RD_CF_DEFAULT], key,
		               sizeof key - 1, "", 0, &err);
	if (err != NULL)
		rd_fatal(RD_STORAGE_FATAL_FMT, "request a flush", err);
}

void rd_storage_get_mem(struct rd_storage *st, struct rd_storage_mem *out)
{
	*out = (struct rd_storage_mem){0};
	for (int i = 0; i < RD_CF_COUNT; i++) {
		uint64_t v;
		if (rocksdb_property_int_cf(st->db, st->cf[i],
		                            "rocksdb.cur-size-all-mem-tables", &v) == 0)
			out->memtables += v;
		if (rocksdb_property_int_cf(
		        st->db, st->cf[i], "rocksdb.estimate-table-readers-mem", &v) == 0)
			out->table_readers += v;
	}
	out->block_cache = rocksdb_cache_get_usage(st->block_cache);
}

void rd_storage_get_stats(const struct rd_storage *st, struct rd_storage_stats *out)
{
	*out = st->stats;
}
