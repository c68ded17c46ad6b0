/*
 * `raftd --config FILE --restore BACKUP`: found a new cluster from a
 * backup file (format in storage/backup.h). Every founding node runs it
 * with the same file on an empty data directory, then starts as usual.
 *
 * Happy path: check that the data directory is empty; read and verify the
 * whole file once (every checksum, the manifest) before writing anything;
 * create the database under the new cluster's id; compute and record the
 * bootstrap routing table of the config's members (as a fresh start
 * would); then read the file again and install, for every group this node
 * hosts, the group's snapshot chunks through a storage snapshot writer
 * (one synced write per group) with the membership replaced by the new
 * members. Each group then starts at the backup's index and term with an
 * empty log, identical on every founding node, so their logs agree from
 * the first entry the new cluster appends (Raft §7: a snapshot stands for
 * the log prefix it replaces).
 *
 * The new cluster id is the founding members' id (topology.h) followed by
 * "-r" and a hash of the old cluster's id and the backup's creation time:
 * the same on every founding node, never the old cluster's, so a node of
 * the old cluster can never mix in (its data directory is refused).
 *
 * Failure modes: a data directory that is not empty, a file that does not
 * verify (the message names the record, group and chunk), a newer format,
 * or a backup with another number of data groups than [cluster]
 * data_groups: refused before the data directory is touched. A crash
 * during the install leaves a partial database: remove the directory and
 * run the restore again.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/topology.h"
#include "multiraft/node.h"
#include "multiraft/node_internal.h"
#include "storage/backup.h"
#include "storage/snapshot.h"
#include "util/err.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/sort.h"

#define ULL(x) ((unsigned long long)(x))

static void restored_id(const char *derived, const struct rd_backup_manifest *m,
                        char *out, size_t size)
{
	char seed[RD_STORAGE_CLUSTER_ID_MAX + 32];
	int n = snprintf(seed, sizeof seed, "%s/%llu", m->cluster_id, ULL(m->created_ms));
	uint64_t h = rd_fnv1a64((const uint8_t *)seed, (size_t)n);
	size_t d = strnlen(derived, 32);
	snprintf(out, size, "%.*s-r%08x", (int)d, derived, (unsigned)(h ^ (h >> 32)));
}

int rd_restore_check_cluster_id(struct rd_storage *st, const char *derived, char *msg)
{
	const char *have = rd_storage_cluster_id(st);
	size_t n = strlen(derived);

	if (have[0] == 0 || strcmp(have, derived) == 0)
		return rd_storage_set_cluster_id(st, derived, msg);
	if (strncmp(have, derived, n) == 0 && strncmp(have + n, "-r", 2) == 0 &&
	    strlen(have + n + 2) == 8)
		return 0;
	return rd_errorf(msg, RD_EMISMATCH,
	                 "the database belongs to cluster \"%s\", not \"%s\" (the "
	                 "cluster of the members in [cluster] peers)",
	                 have, derived);
}

static int dir_empty(const char *path, char *msg)
{
	DIR *d = opendir(path);
	struct dirent *e;

	if (d == NULL)
		return errno == ENOENT ? 0
		                       : rd_errorf(msg, RD_EIO, "data directory %s: %s",
		                                   path, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
			closedir(d);
			return rd_errorf(
			    msg, RD_EEXIST,
			    "data directory %s is not empty: --restore founds "
			    "a new cluster and needs an empty one",
			    path);
		}
	}
	closedir(d);
	return 0;
}

struct install {
	struct rd_storage *st;
	const struct rd_topology *topo;
	uint64_t node;
	struct rd_snapshot_writer *w;
	uint64_t groups;
	unsigned staged; /* chunks staged since the last spill */
};

/* Chunks staged before they are written out (about 1 MiB each): restore
 * memory stays near this much, whatever the size of a group. */
#define SPILL_CHUNKS 32

/* The new members of `group`: group 0 the founding members (up to the
 * core's limit), a data group its bootstrap placement; sorted, as a fresh
 * start writes them (group.c). False when this node is not one. */
static bool new_conf(const struct install *in, uint64_t group, struct rd_conf_state *c)
{
	memset(c, 0, sizeof *c);
	if (group == 0) {
		for (unsigned i = 0; i < in->topo->n_members && i < RD_RAFT_MAX_MEMBERS;
		     i++)
			c->voters[c->n_voters++] = in->topo->members[i].id;
	} else {
		const struct rd_group_placement *p =
		    rd_routing_placement(&in->topo->routing, (uint32_t)group);
		if (p == NULL)
			return false;
		for (unsigned i = 0; i < p->n_replicas && i < RD_RAFT_MAX_MEMBERS; i++)
			c->voters[c->n_voters++] = p->replicas[i];
	}
	rd_sort_u64(c->voters, c->n_voters);
	for (uint32_t i = 0; i < c->n_voters; i++)
		if (c->voters[i] == in->node)
			return true;
	return false;
}

static int install_chunk(void *arg, uint64_t group, const uint8_t *chunk, size_t len,
                         bool last, char *msg)
{
	struct install *in = arg;
	struct rd_conf_state conf;
	struct rd_snapshot_meta meta;
	int rv;

	if (!new_conf(in, group, &conf))
		return 0; /* not hosted here */
	if (in->w == NULL && (rv = rd_snapshot_writer_open(in->st, &in->w, msg)) != 0)
		return rv;
	if ((rv = rd_snapshot_writer_add(in->w, chunk, len, msg)) != 0)
		goto err_after_writer;
	if (!last) {
		/* The data directory is new and unused until the restore
		 * returns: the install need not be atomic (a crash means
		 * starting the restore over, raftd(8)). */
		if (++in->staged >= SPILL_CHUNKS) {
			in->staged = 0;
			if ((rv = rd_snapshot_writer_spill(in->w, msg)) != 0)
				goto err_after_writer;
		}
		return 0;
	}
	in->staged = 0;
	rd_snapshot_writer_set_conf(in->w, &conf);
	rv = rd_snapshot_writer_finish(in->w, &meta, msg);
	in->w = NULL;
	if (rv != 0) {
		rd_errprefix(msg, "group %llu: ", ULL(group));
		return rv;
	}
	in->groups++;
	rd_log_info("restored group=%llu index=%llu term=%llu voters=%u", ULL(group),
	            ULL(meta.index), ULL(meta.term), (unsigned)conf.n_voters);
	return 0;

err_after_writer:
	rd_snapshot_writer_abort(in->w);
	in->w = NULL;
	rd_errprefix(msg, "group %llu: ", ULL(group));
	return rv;
}

int rd_node_restore(const struct rd_config *cfg, const char *backup, char *msg)
{
	struct rd_backup_manifest m;
	struct rd_storage_options o;
	struct rd_topology topo;
	struct install in = {0};
	char derived[64], cid[RD_STORAGE_CLUSTER_ID_MAX + 1];
	int rv;

	if ((rv = dir_empty(cfg->data_dir, msg)) != 0)
		return rv;
	if ((rv = rd_backup_read(backup, NULL, NULL, &m, msg)) != 0) {
		rd_errprefix(msg, "backup %s: ", backup);
		return rv;
	}
	if (m.data_groups != cfg->data_groups) {
		rv = rd_errorf(msg, RD_ECONFIG,
		               "%s: [cluster] data_groups = %u, but backup %s holds %u "
		               "data groups: restore with the same number",
		               cfg->path, cfg->data_groups, backup, m.data_groups);
		goto err_after_manifest;
	}
	rd_topology_init(&topo, cfg);
	rd_topology_cluster_id(&topo, derived, sizeof derived);
	restored_id(derived, &m, cid, sizeof cid);
	if ((rv = rd_node_mkdirs(cfg->data_dir, msg)) != 0)
		goto err_after_manifest;
	rd_storage_options_init(&o);
	o.create_if_missing = true;
	o.cluster_id = cid;
	o.session_max = cfg->session_max;
	o.session_expiry = cfg->session_expiry;
	if ((rv = rd_storage_open(cfg->data_dir, &o, &in.st, msg)) != 0) {
		rd_errprefix(msg, "data directory %s: ", cfg->data_dir);
		goto err_after_manifest;
	}
	rv = rd_topology_load(&topo, in.st, cfg->data_groups, cfg->replication_factor,
	                      msg);
	if (rv != 0)
		goto err_after_storage;
	in.topo = &topo;
	in.node = cfg->node_id;
	struct rd_backup_manifest again;
	rv = rd_backup_read(backup, install_chunk, &in, &again, msg);
	rd_snapshot_writer_abort(in.w);
	if (rv != 0) {
		rd_errprefix(msg, "backup %s: ", backup);
		goto err_after_topology;
	}
	rd_backup_manifest_free(&again);
	rd_log_notice("restored from backup=%s old_cluster=%s new_cluster=%s groups=%llu "
	              "created_ms=%llu",
	              backup, m.cluster_id, cid, ULL(in.groups), ULL(m.created_ms));

err_after_topology:
	rd_topology_free(&topo);
err_after_storage:
	rd_storage_close(in.st);
err_after_manifest:
	rd_backup_manifest_free(&m);
	return rv;
}
