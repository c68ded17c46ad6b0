/*
 * Helpers for the transport tests: endpoints on loopback with ephemeral
 * ports, certificates made by conf/raftd-certs in a temporary directory,
 * and a loop runner that stops on a condition or a generous time bound
 * (the bound only stops a broken test; nothing asserts on time).
 */
#ifndef RD_TESTS_TRANSPORT_HELPERS_H
#define RD_TESTS_TRANSPORT_HELPERS_H

#include <stdbool.h>
#include <stdint.h>

#include "transport/transport.h"
#include "util/err.h"

#define TN_MAX 4

struct tenv;

struct tnode {
	struct tenv *env;
	struct rd_transport *t;
	uint64_t id;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	/* What arrived. */
	uint64_t batches, msgs;
	uint64_t next_index[TN_MAX + 1]; /* per sender: next expected RaftMessage.index */
	bool out_of_order;
	uint64_t snapshots;
	uint64_t requests;
	uint64_t ups, downs;
	bool hold_requests;   /* keep responders instead of answering */
	bool remove_on_batch; /* unregister the sender from on_batch */
	uint64_t members;     /* bit i: node i is a member; 0: no membership check */
	uint64_t replies, reply_errors; /* calls answered / failed */
	struct rd_transport_responder *held[16];
	unsigned n_held;
	/* When set, requests go here instead (after counting). */
	void (*on_request)(void *arg, uint64_t peer, const Raftd__PeerRequest *req,
	                   struct rd_transport_responder *r);
	void *on_request_arg;
};

struct tenv {
	struct event_base *base;
	char dir[256];
	struct tnode n[TN_MAX + 1]; /* index = node id */
};

/* Make a base and (if `certs`) a CA and node certificates 1..3 in a temp dir. */
void tenv_init(struct tenv *e, bool certs);
/* Free every endpoint, the base, and remove the temp dir. */
void tenv_fini(struct tenv *e);
/* Run a raftd-certs command line in the env's directory ("node 3 --expired"). */
void tenv_certs(struct tenv *e, const char *args);

/* Start nodes 1..n with tnode_config's configuration (mutual TLS when
 * `tls`, else insecure) and mesh them. */
void tenv_start(struct tenv *e, bool tls, unsigned n);
/* tenv_init(e, tls), then tenv_start(e, tls, n). */
void tenv_up(struct tenv *e, bool tls, unsigned n);
/* Send one message from node 1 to node 2 and wait until node 1 has the
 * connection up (fails the test after 20 s). */
void tconnect_1_2(struct tenv *e);
/* Make a second CA in DIR/<sub> and a certificate it signs for node `id`
 * (DIR/<sub>/node<id>.pem and .key). */
void tenv_other_ca(struct tenv *e, const char *sub, uint64_t id);
/* Point cfg's certificate and key at DIR/<name>.pem and DIR/<name>.key
 * ("node3", "exp2", "other/node2"). */
void tcfg_cert(const struct tenv *e, struct rd_transport_config *cfg, const char *name);

/* A config for node `id`: mutual with DIR/node<id>.pem unless `insecure`. */
void tnode_config(struct tenv *e, uint64_t id, bool insecure,
                  struct rd_transport_config *cfg);
/* Start node `id` with `cfg` (its listen address may be port 0). */
void tnode_start(struct tenv *e, uint64_t id, const struct rd_transport_config *cfg);
/* The same on another base, which the caller runs (and frees after
 * tnode_stop): a node whose loop runs only when the caller says. */
void tnode_start_on(struct tenv *e, uint64_t id, const struct rd_transport_config *cfg,
                    struct event_base *base);
void tnode_stop(struct tenv *e, uint64_t id);
/* Register every running node with every other. */
void tenv_mesh(struct tenv *e);
void tnode_add_peer(struct tenv *e, uint64_t at, uint64_t peer);

/* Queue batch `b` for `peer` the way the runtime does: one encoded
 * PeerFrame through rd_transport_send_encoded. */
int tsend_batch(struct rd_transport *t, uint64_t peer, const Raftd__RaftBatch *b,
                char *msg);
/* Send a batch of `n` messages from `from` to `to`, indices starting at `first`. */
int tsend(struct tenv *e, uint64_t from, uint64_t to, uint64_t first, unsigned n,
          size_t payload);

/* Run the loop until pred(arg) or `ms` milliseconds; returns pred(arg). */
bool trun(struct tenv *e, bool (*pred)(struct tenv *, void *), void *arg, unsigned ms);
/* trun conditions on what a node counted; `arg` is a const uint64_t[2]
 * {node, count}: the node's `msgs` (tgot) or `downs` (tdowns) reached count. */
bool tgot(struct tenv *e, void *arg);
bool tdowns(struct tenv *e, void *arg);
/* A SnapshotChunk frame and its parts: chunk of `group` from node `from` to
 * node `to`, of the snapshot at (index, term), no data; the caller adds what
 * its test needs. The frame points into the struct: do not move it. */
struct tsnap {
	Raftd__PeerFrame f;
	Raftd__SnapshotChunk ch;
	Raftd__SnapshotMeta meta;
};
void tsnap_init(struct tsnap *s, uint32_t group, uint64_t from, uint64_t to,
                uint64_t index, uint64_t term);
/* A Ping request and its body (the request points into the struct: do not
 * move it). */
struct tping {
	Raftd__PeerRequest req;
	Raftd__Ping ping;
};
void tping_init(struct tping *p);
/* trun condition: node arg[0] received at least arg[1] snapshot frames
 * (`arg` a const uint64_t[2], as for tgot). */
bool tsnaps(struct tenv *e, void *arg);
/* Run the loop for `ms` milliseconds. */
void trun_for(struct tenv *e, unsigned ms);

struct rd_transport_peer_stats tstats(struct tenv *e, uint64_t at, uint64_t peer);
struct rd_transport_stats tstats_all(struct tenv *e, uint64_t at);
/* Reply callback counting into the tnode passed as `arg`. */
void treply_count(void *arg, int err, const Raftd__PeerResponse *resp,
                  const char *errmsg);

#endif
