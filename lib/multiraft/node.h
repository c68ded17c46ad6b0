/*
 * The node runtime: one per raftd process. It hosts group 0 (metadata) and
 * the data groups the routing table places here, and drives them from one
 * libevent base:
 *
 *   inputs (peer frames, client requests, proposals) are handled as they
 *   arrive and only mark groups dirty; once per loop iteration a low-priority
 *   "drain" event runs after every input of that iteration and (drive.c)
 *     1. collects every dirty group's update,
 *     2. sends, coalesced into one frame per peer, the messages that may
 *        leave before the write (thesis §10.2.1) and those that waited for
 *        the previous iteration's write,
 *     3. writes all updates with one synced RocksDB batch (group commit),
 *     4. tells the cores what is durable, queues the messages that waited
 *        for it, applies committed entries and answers the clients waiting
 *        on them.
 *   A timer ticks the groups on the ticking list every tick_ms; when every
 *   group is quiesced it fires once per node heartbeat interval instead
 *   (node.c rd_node_tick_arm).
 *
 * drive.c is the only place where this ordering lives (lib/README.md).
 */
#ifndef RD_MULTIRAFT_NODE_H
#define RD_MULTIRAFT_NODE_H

#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct rd_config;
struct rd_node;

/* Open storage, restore or bootstrap the groups, start the transport, the
 * client socket and the admin HTTP server on `base`. `cfg` is copied.
 * Returns 0, or an RD_E* code with a message naming what failed. */
int rd_node_start(const struct rd_config *cfg, struct event_base *base,
                  struct rd_node **out, char *msg);

/* raftd --restore (restore.c): make the empty data directory of cfg a
 * founding node of a new cluster holding the state of the backup file
 * `backup`; call before rd_node_start, which then starts it as usual.
 * Refuses (writing nothing) a data directory that is not empty, a file
 * that does not verify, a newer backup format, or another number of data
 * groups. Returns 0 or an RD_E* code with a message. */
int rd_node_restore(const struct rd_config *cfg, const char *backup, char *msg);

/* raftd --force-new-cluster (recover.c): UNSAFE, for a group of nodes that
 * lost its quorum for good. Rewrites every group in cfg's data directory so
 * that this node is its only member: the entries after the commit index
 * this node knows are discarded, and conf changes removing every other
 * member are appended and committed without a quorum; every step is logged
 * at crit level. Call before rd_node_start, which then starts the node as
 * usual. Refuses (writing nothing) a missing data directory or one that
 * fails its open checks. Returns 0 or an RD_E* code with a message. */
int rd_node_force_new_cluster(const struct rd_config *cfg, char *msg);

/* Begin a graceful shutdown: stop accepting clients, finish the current
 * iteration, flush storage, close peer connections, remove the socket,
 * notify systemd, then leave the event loop. Idempotent. */
void rd_node_shutdown(struct rd_node *n);

/* Apply a reloaded config: log level (done by the caller) and TLS files. A
 * reload that fails keeps the old settings and logs why. */
void rd_node_reload(struct rd_node *n, const struct rd_config *cfg);

/* 0 after a clean shutdown, 1 after a fatal error. */
int rd_node_exit_code(const struct rd_node *n);

/* Release everything. Call after the event loop has returned. */
void rd_node_free(struct rd_node *n);

#endif
