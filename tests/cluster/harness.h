/*
 * Multi-process test harness: real raftd processes on loopback, with
 * ephemeral ports, a temporary directory per cluster, development
 * certificates from conf/raftd-certs, and raftctl run as a child process.
 * Everything is cleaned up by rd_h_cluster_free (processes killed, the
 * directory removed).
 */
#ifndef RD_TESTS_CLUSTER_HARNESS_H
#define RD_TESTS_CLUSTER_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define RD_H_MAX_NODES 5

struct rd_h_node {
	unsigned id;
	pid_t pid; /* 0 when not running */
	int quic_port;
	int admin_port;
	char conf[256];
	char sock[256];
	char log[256];
	char restore[256]; /* non-empty: rd_h_start passes --restore FILE */
	bool force_new;    /* rd_h_start passes --force-new-cluster */
};

struct rd_h_cluster {
	char dir[128];
	unsigned n;
	struct rd_h_node nodes[RD_H_MAX_NODES];
	bool runner_keeps; /* the runner removes dir (failure_logs.c) */
};

struct rd_h_opts {
	unsigned data_groups;   /* default 4 */
	unsigned replication;   /* [cluster] replication_factor, default 3 */
	const char *extra_conf; /* appended to every node's config */
	const char *log_level;  /* default "info"; env RD_TEST_LOG_LEVEL overrides */
	bool rotate_peers;      /* node i lists the peers starting at node i */
	/* Nodes 1..founders list each other in [cluster] peers; the others
	 * have [cluster] join = the founders' addresses. 0: every node founds. */
	unsigned founders;
};

/* Write configs and certificates for `n` nodes (does not start them). */
void rd_h_cluster_init(struct rd_h_cluster *c, unsigned n, const struct rd_h_opts *o);
/* Start node i (1-based) / all nodes. */
void rd_h_start(struct rd_h_cluster *c, unsigned i);
void rd_h_start_all(struct rd_h_cluster *c);
/* Send `sig` to node i and wait for it; returns its exit status as from
 * waitpid (use WIFEXITED etc.). */
int rd_h_stop(struct rd_h_cluster *c, unsigned i, int sig);
/* Wait until every running node answers `raftctl ready`, at most `secs`. */
bool rd_h_wait_ready(struct rd_h_cluster *c, unsigned secs);
/* Kill everything and remove the directory. */
void rd_h_cluster_free(struct rd_h_cluster *c);
/* Register `dir` with the test runner, which prints its nodes' logs if the
 * test fails and removes it afterwards (failure_logs.c). False: no runner
 * took it, the caller removes it. */
bool rd_h_runner_keeps(const char *dir);
/* rd_h_cluster_init with `groups` data groups and the other options at
 * their defaults, rd_h_start_all, then fail the test unless every node is
 * ready within `secs` (the message names the directory with the logs). */
void rd_h_cluster_up(struct rd_h_cluster *c, unsigned n, unsigned groups, unsigned secs);

/* Run `raftctl -s <node i socket> args...` (NULL-terminated); capture
 * stdout into `out` (size `size`, NUL-terminated). Returns the exit code. */
int rd_h_ctl(struct rd_h_cluster *c, unsigned i, char *out, size_t size, ...);

/* Same as rd_h_ctl, retrying while the exit code is 1 (a failed operation,
 * e.g. no leader yet) for at most `secs`. */
int rd_h_ctl_retry(struct rd_h_cluster *c, unsigned i, unsigned secs, char *out,
                   size_t size, ...);

/* `raftctl put key value` through node i, retried as rd_h_ctl_retry does
 * for at most `secs`; fails the test unless it succeeds. */
void rd_h_put(struct rd_h_cluster *c, unsigned i, unsigned secs, const char *key,
              const char *value);
/* rd_h_put of keys `prefix`0 .. `prefix`(n - 1), each set to `value`, the
 * i-th through node 1 + i % nodes. */
void rd_h_put_keys(struct rd_h_cluster *c, unsigned nodes, unsigned secs,
                   const char *prefix, int n, const char *value);
/* `raftctl get key` through node i, retried as rd_h_ctl_retry does for at
 * most `secs`; fails the test unless it succeeds with `want`. */
void rd_h_expect_get(struct rd_h_cluster *c, unsigned i, unsigned secs, const char *key,
                     const char *want);
/* rd_h_expect_get of keys `prefix`0 .. `prefix`(n - 1), each to hold
 * `want`, the i-th through node 1 + i % nodes. */
void rd_h_expect_keys(struct rd_h_cluster *c, unsigned nodes, unsigned secs,
                      const char *prefix, int n, const char *want);

/* Run `raftd` with arbitrary arguments, capture stderr into `err`. */
int rd_h_raftd(char *err, size_t size, const char *arg1, const char *arg2);

/* An unused loopback port (UDP when `udp`, else TCP). */
int rd_h_free_port(bool udp);

/* Path of a built program ("raftd", "raftctl") or a source file. */
const char *rd_h_build_path(const char *name);
/* Whether node i's (1-based) log file has a line containing `needle`. */
bool rd_h_log_has(const struct rd_h_cluster *c, unsigned i, const char *needle);
/* How many lines of node i's log file contain `needle` and, unless it is
 * NULL, `also`. */
unsigned rd_h_log_count(const struct rd_h_cluster *c, unsigned i, const char *needle,
                        const char *also);
/* Wait at most `secs` for node i's process to end by itself (it is not
 * signalled); its wait status (node i is then marked stopped), or -1 while
 * it still runs. */
int rd_h_wait_exit(struct rd_h_cluster *c, unsigned i, unsigned secs);
/* Wait at most `secs` until node i's log has a line containing `needle`. */
bool rd_h_wait_log(const struct rd_h_cluster *c, unsigned i, const char *needle,
                   unsigned secs);
/* Wait at most `secs` until `raftctl members` on node i has a row for
 * member `id` that holds `what` (with want false: until no row for `id`
 * holds it). */
bool rd_h_wait_member(struct rd_h_cluster *c, unsigned i, unsigned id, const char *what,
                      bool want, unsigned secs);
/* Wait at most `secs` until `raftctl members` on node i shows a registered
 * incarnation for every member (none is all zeros). */
bool rd_h_wait_registered(struct rd_h_cluster *c, unsigned i, unsigned secs);
/* The leader of `group` as node `asker` sees it (`raftctl groups`), 0 when
 * it knows none or does not answer. */
unsigned rd_h_leader_of(struct rd_h_cluster *c, unsigned asker, unsigned group);
/* A comma-separated id list as `raftctl groups` prints it ("-": none)
 * into v, at most `max` ids; returns how many. */
unsigned rd_h_parse_ids(const char *s, unsigned *v, unsigned max);
/* Sample `raftctl groups` on every running node: whether every data group
 * 1..groups has a leader whose row shows `rf` voters, no learner, its
 * voters its target placement, each voter an id in 1..max_id. `held`
 * (NULL, or RD_H_MAX_NODES + 1 entries, by node id) gets how many groups
 * each node is a voter of, as those leaders say. */
bool rd_h_data_settled(struct rd_h_cluster *c, unsigned groups, unsigned rf,
                       unsigned max_id, unsigned *held);
/* rd_h_data_settled until it holds, at most `secs`. */
bool rd_h_wait_data_settled(struct rd_h_cluster *c, unsigned groups, unsigned rf,
                            unsigned max_id, unsigned *held, unsigned secs);
/* Node `node`'s fault-hook file (the path its config's fault hook names)
 * and setting what its synced writes do ("" = nothing), atomically. */
void rd_h_fault_path(const struct rd_h_cluster *c, unsigned node, char *out, size_t size);
void rd_h_set_fault(const struct rd_h_cluster *c, unsigned node, const char *what);
/* Start node `i` with $RAFTD_TEST_FSYNC_FAULT naming its fault-hook file
 * (lib/storage/stall.c), and `env2`=`val2` too when `env2` is not NULL;
 * both variables are unset again once it is started. */
void rd_h_start_hooked(struct rd_h_cluster *c, unsigned i, const char *env2,
                       const char *val2);
/* A cluster of one node (rd_h_cluster_init with `o`) started with the fault
 * hook, ready within `secs`, and its first write (a=1) answered: the test
 * fails otherwise. */
void rd_h_hooked_node_up(struct rd_h_cluster *c, const struct rd_h_opts *o,
                         unsigned secs);
/* `raftctl --timeout TIMEOUT_MS put KEY v` on node i from a child process
 * (stderr to /dev/null), not waited for: the caller reaps the child
 * (waitpid, or rd_h_reap). */
pid_t rd_h_put_async(struct rd_h_cluster *c, unsigned i, const char *timeout_ms,
                     const char *key);
/* Kill child `pid` with SIGKILL and wait for it. */
void rd_h_reap(pid_t pid);
/* Bind a datagram socket at <dir>/notify and point NOTIFY_SOCKET and
 * WATCHDOG_USEC (`watchdog_usec`) at it for the next node started; the
 * caller reads sd_notify messages from the returned fd and unsets both
 * variables once its node is started. */
int rd_h_notify_bind(const struct rd_h_cluster *c, const char *watchdog_usec);
/* The value of sample `name` (labels included, as /metrics writes the line)
 * on node i's admin port; 0 when the page has no such line. With
 * `must_answer`, the test fails unless the node answers 200; without, a
 * node that does not answer gives 0. */
double rd_h_metric(const struct rd_h_cluster *c, unsigned i, const char *name,
                   bool must_answer);
/* Sample `raftctl groups` on every running node and fail the test when a
 * (group, term) shows a second leader: every sample of the test process
 * is remembered (groups below 64, terms below 512; others are skipped). */
void rd_h_check_leaders(struct rd_h_cluster *c);
const char *rd_h_src_path(const char *name);

#endif
