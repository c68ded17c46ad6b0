/*
 * The QUIC transport between raftd nodes (frames: lib/transport/wire.h and
 * proto/raftd.proto):
 * one UDP socket, one QUIC connection per pair of nodes, TLS 1.3 through
 * wolfSSL with ALPN "raftd/1", driven by the caller's libevent base.
 *
 * What the node runtime sees, without knowing QUIC:
 *   - rd_transport_peer_add: node id -> address;
 *   - rd_transport_send_encoded: at most one RaftBatch per peer per loop
 *     iteration (encoded by wire.h's rd_wire_batch_*), carried on a long-lived
 * unidirectional stream per direction, delivered in order while the connection lives;
 *   - rd_transport_send_snapshot: snapshot chunks and acks on their own
 *     stream, so that a large snapshot never delays heartbeats;
 *   - rd_transport_call: one request, one response or an error, with a
 *     deadline, on a fresh bidirectional stream;
 *   - callbacks for received batches, snapshot frames and requests; a
 *     request is answered later through its responder handle;
 *   - per-peer counters.
 *
 * Identity: in mutual mode each side's node id comes from its certificate
 * (SAN DNS "raftd-node-<id>", else CN) verified against the cluster CA. The
 * dialer names the node it expects (the id registered for the address) and
 * rejects a server whose certificate names another; the dialer names itself
 * in SNI ("raftd-node-<id>") and the server rejects a client whose
 * certificate names another. Either mismatch, an unknown CA, an expired
 * certificate, a missing client certificate or a wrong ALPN ends the
 * handshake with a TLS alert and a log line with the address and reason.
 * Messages whose `from` is not the authenticated peer are dropped and counted.
 * A server-side connection whose proven identity is not a member (the
 * is_member callback) is closed right after the handshake with APP_REMOVED.
 *
 * Memory a peer can make us hold: one partial frame per stream, at most the
 * stream kind's cap (Raft: max_frame_bytes; snapshot: one chunk plus
 * headroom; requests: max_rpc_frame_bytes), buffers growing only as bytes
 * arrive, and all of them within the connection's flow-control window
 * (max_partial_bytes), since credit is returned only as frames are consumed.
 * A stream's window is twice its cap (conn.c, stream_window), and
 * max_partial_bytes should be at least twice what is incomplete at once:
 * up to half a window may be consumed and not yet advertised, and a frame
 * that does not fit in the rest stalls its stream for good.
 * Decoding one frame allocates at most RD_WIRE_DECODE_BUDGET of its length.
 *
 * Threading: everything runs on the libevent base's thread. Callbacks must
 * not call rd_transport_free.
 */
#ifndef RD_TRANSPORT_TRANSPORT_H
#define RD_TRANSPORT_TRANSPORT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "raftd.pb-c.h"
#include "util/config.h"

struct event_base;
struct rd_transport;
struct rd_transport_responder;

#define RD_TRANSPORT_ALPN "raftd/1"

/* Connections held at once from nodes that the CA signed but that are not
 * members (is_member false): each may only send join requests and member
 * probes; more are closed at the handshake (APP_REMOVED). */
#define RD_TRANSPORT_MAX_STRANGERS 8

/* Largest snapshot data carried by one chunk (the sender cuts snapshots
 * into chunks of this size; the receiver accepts a chunk frame of this
 * plus RD_TRANSPORT_FRAME_HEADROOM). */
#define RD_TRANSPORT_SNAPSHOT_CHUNK (2u << 20)
#define RD_TRANSPORT_FRAME_HEADROOM (1u << 20)

/* QUIC application error codes (RFC 9000 §20.2) raftd sends in
 * CONNECTION_CLOSE, RESET_STREAM and STOP_SENDING. */
enum rd_transport_app_error {
	RD_TRANSPORT_APP_NO_ERROR = 0,   /* orderly close */
	RD_TRANSPORT_APP_SHUTDOWN = 1,   /* the node is stopping */
	RD_TRANSPORT_APP_DUPLICATE = 2,  /* lost the simultaneous-dial tie-break */
	RD_TRANSPORT_APP_TOO_BIG = 3,    /* frame length over max_frame_bytes */
	RD_TRANSPORT_APP_MALFORMED = 4,  /* frame does not decode / breaks a rule */
	RD_TRANSPORT_APP_WRONG_TYPE = 5, /* valid frame of a kind not allowed there */
	RD_TRANSPORT_APP_CANCELLED = 6,  /* the caller gave up (deadline) */
	RD_TRANSPORT_APP_INTERNAL = 7,   /* local failure (memory) */
	RD_TRANSPORT_APP_CERT = 9,       /* the peer's certificate expired or no
	                                  * longer verifies (after a CA reload) */
	RD_TRANSPORT_APP_REMOVED = 8,    /* the peer was unregistered, or is not a
	                                  * member ("peer removed") */
};

struct rd_transport_config {
	uint64_t node_id;
	struct sockaddr_storage listen; /* UDP address to bind (port 0: ephemeral) */
	socklen_t listen_len;
	enum rd_tls_mode tls_mode;
	char tls_ca[PATH_MAX];
	char tls_cert[PATH_MAX];
	char tls_key[PATH_MAX];
	char reset_secret_file[PATH_MAX];  /* "": a random secret per process */
	uint64_t max_frame_bytes;          /* largest frame payload accepted and sent
	                                    * (on the Raft stream) */
	uint64_t max_rpc_frame_bytes;      /* largest request or response accepted */
	uint64_t max_snapshot_frame_bytes; /* largest snapshot frame accepted */
	uint64_t max_partial_bytes;        /* per connection: bytes of frames not yet
	                                    * complete; also its flow-control window
	                                    * (0: twice one frame of each kind and a
	                                    * second request) */
	unsigned idle_timeout_ms;          /* QUIC max_idle_timeout */
	unsigned keepalive_ms;             /* PING after this much silence (0: never) */
	unsigned handshake_timeout_ms;     /* give up on a handshake after this */
	unsigned backoff_min_ms;           /* first redial delay after a failure */
	unsigned backoff_max_ms;           /* redial delay cap */
	uint64_t max_queue_bytes;          /* per peer, per stream: unsent bytes before
	                                    * sends fail with RD_EAGAIN */
	unsigned max_half_open;            /* inbound handshakes in progress */
	unsigned max_half_open_per_source; /* ... from one host */
	unsigned retry_threshold;          /* beyond this many, an Initial without
	                                    * a Retry token gets a Retry
	                                    * (RFC 9000 §8.1.2) */
	char alpn[32];                     /* RD_TRANSPORT_ALPN; tests change it */
	bool tls_omit_client_cert;         /* tests only: dial without a certificate */
	uint64_t boot;                     /* this process's boot id, carried in the
	                                    * first connection id of each
	                                    * connection (peer.c); 0: drawn at
	                                    * random by rd_transport_new */
	bool count_lost_packets;           /* per-packet loss count from ngtcp2's qlog
	                                    * events on dialed connections (off by
	                                    * default; costs some throughput) */
};

/* Fill `tc` from the node config `c` (transport, tls, cluster.listen and
 * node.id). With c == NULL: listen 127.0.0.1:0, insecure, and the timeouts
 * and frame limit of rd_config_defaults (util/config.c), the one source of
 * defaults, so a transport built without a config runs as production does.
 * A field `c` leaves 0 takes the same default. `c` is only read. */
void rd_transport_config_init(struct rd_transport_config *tc, const struct rd_config *c);

/* Callbacks. Decoded messages are borrowed: valid only during the call. */
struct rd_transport_callbacks {
	/* A RaftBatch from `peer`; messages with a foreign `from` are already
	 * removed. */
	void (*on_batch)(void *arg, uint64_t peer, const Raftd__RaftBatch *batch);
	/* A SnapshotChunk or SnapshotAck frame from `peer`. */
	void (*on_snapshot)(void *arg, uint64_t peer, const Raftd__PeerFrame *frame);
	/* A request from `peer`. Ownership of `r` passes to the callee, who must
	 * eventually call rd_transport_respond or rd_transport_responder_drop
	 * (also after the connection died: then those just free it). */
	void (*on_request)(void *arg, uint64_t peer, const Raftd__PeerRequest *req,
	                   struct rd_transport_responder *r);
	/* Is `peer` a member of the cluster? Asked when a connection from a
	 * node that was not registered with rd_transport_peer_add completes
	 * its handshake; false refuses it (CONNECTION_CLOSE with APP_REMOVED,
	 * "peer removed"). NULL: every authenticated node is accepted. */
	bool (*is_member)(void *arg, uint64_t peer);
	/* The connection to `peer` came up or went down. May be NULL. */
	void (*on_peer)(void *arg, uint64_t peer, bool connected);
	void *arg;
};

/* Bind the socket, build the TLS contexts and start reading on `base`.
 * Returns 0, RD_EIO (socket), RD_ETLS (certificates), RD_ENOMEM. In insecure
 * mode a warning is logged. */
int rd_transport_new(struct rd_transport **out, struct event_base *base,
                     const struct rd_transport_config *cfg,
                     const struct rd_transport_callbacks *cbs, char *msg);

/* Close every connection (CONNECTION_CLOSE with APP_SHUTDOWN), fail pending
 * calls with RD_ESHUTDOWN, drop responders' streams and free everything.
 * Responders still held by the caller stay valid until answered/dropped. */
void rd_transport_free(struct rd_transport *t);

/* The bound UDP address (after binding port 0). */
void rd_transport_local_addr(const struct rd_transport *t, struct sockaddr_storage *ss,
                             socklen_t *len);

/* Register or update peer `id` at `sa`. The connection is dialed when
 * something is to be sent. Returns 0, RD_EINVAL (id 0 or this node). */
int rd_transport_peer_add(struct rd_transport *t, uint64_t id, const struct sockaddr *sa,
                          socklen_t salen, char *msg);

/* Register peer `handle` at `sa` as an address to dial whose node id is
 * not known yet (a [cluster] join address): the server may prove any id
 * the CA signed but this node's own. `handle` is a local name for it that
 * is no node's id (RD_TRANSPORT_ANY_BASE and up); calls to it work as to
 * any peer; it is forgotten with rd_transport_peer_remove. Returns 0,
 * RD_EINVAL. */
#define RD_TRANSPORT_ANY_BASE (UINT64_C(1) << 62)
int rd_transport_peer_add_any(struct rd_transport *t, uint64_t handle,
                              const struct sockaddr *sa, socklen_t salen, char *msg);

/* The node id that the server registered with rd_transport_peer_add_any
 * proved in its last handshake, or 0 before any. */
uint64_t rd_transport_peer_proven(const struct rd_transport *t, uint64_t handle);

/* Forget peer `id`: its connection is closed (APP_REMOVED), queued frames
 * dropped, calls not yet sent fail with RD_ENOTFOUND, calls in flight with
 * RD_ECLOSED. May be called from the callbacks. RD_ENOTFOUND if unknown. */
int rd_transport_peer_remove(struct rd_transport *t, uint64_t id);

/* Queue an already encoded PeerFrame payload (no length header) holding a
 * batch of `n_msgs` Raft messages and heartbeats (rd_wire_batch_seal
 * builds one), for `peer`; the bytes are copied. Frames to one peer are
 * delivered in order while a connection lives. When a connection is lost,
 * frames not yet started wait for the next connection to the same process
 * of the peer; frames queued for a process that is gone (another boot id
 * came up, peer.c) are dropped and counted (stale_dropped): Raft
 * retransmits what still matters. Returns
 * 0, RD_ENOTFOUND (unregistered peer), RD_ETOOBIG (over max_frame_bytes),
 * RD_EAGAIN (more than max_queue_bytes unsent: dropped). */
int rd_transport_send_encoded(struct rd_transport *t, uint64_t peer,
                              const uint8_t *payload, size_t len, uint64_t n_msgs,
                              char *msg);

/* Write what is queued to every peer now, instead of from the event that
 * queueing activated (which runs only once the current callback returns):
 * the node loop calls it between sending a leader's appends and its
 * synced write, so that they overlap (Raft thesis §10.2.1). */
void rd_transport_flush(struct rd_transport *t);

/* Queue a frame holding a snapshot_chunk or snapshot_ack on the snapshot
 * stream. Same return values; RD_EINVAL for any other kind. */
int rd_transport_send_snapshot(struct rd_transport *t, uint64_t peer,
                               const Raftd__PeerFrame *frame, char *msg);

/* Outcome of a call: err is 0 and `resp` the decoded response (borrowed,
 * valid during the call), or err is RD_ETIMEDOUT (deadline), RD_ECLOSED
 * (connection lost or stream reset after the request left), RD_EPROTO
 * (malformed response), RD_ESHUTDOWN (transport freed) or RD_ENOTFOUND (peer
 * removed), with resp NULL and a reason in `errmsg`. Called exactly once,
 * never from inside rd_transport_call. */
typedef void (*rd_transport_reply_cb)(void *arg, int err, const Raftd__PeerResponse *resp,
                                      const char *errmsg);

/* Send `req` to `peer` on a new stream; `req->from` and `req->deadline_ms`
 * are filled in by the transport. `cb(arg, ...)` is called once with the
 * response or an error at the latest `deadline_ms` from now. Returns 0, or
 * RD_ENOTFOUND / RD_ETOOBIG / RD_ENOMEM without calling `cb`. */
int rd_transport_call(struct rd_transport *t, uint64_t peer,
                      const Raftd__PeerRequest *req, unsigned deadline_ms,
                      rd_transport_reply_cb cb, void *arg, char *msg);

/* Answer the request `r` was handed with, and free `r`. Returns 0, or
 * RD_ECLOSED when the stream is gone (caller gave up, connection lost):
 * the answer is then discarded. */
int rd_transport_respond(struct rd_transport_responder *r,
                         const Raftd__PeerResponse *resp);

/* Free `r` without answering (the caller sees its stream reset). */
void rd_transport_responder_drop(struct rd_transport_responder *r);

/* Per-peer counters (frames and bytes are at the frame level, header
 * included; RTT and loss come from the QUIC connection). */
struct rd_transport_peer_stats {
	bool connected;
	uint64_t frames_out, frames_in;       /* frames of every kind */
	uint64_t raft_msgs_out, raft_msgs_in; /* Raft messages + coalesced heartbeats */
	uint64_t bytes_out, bytes_in;
	uint64_t calls_out, calls_in;
	uint64_t rtt_us, min_rtt_us; /* smoothed and minimum RTT, 0 when unknown */
	uint64_t lost_packets; /* QUIC packets declared lost (RFC 9002 §6.1); 0 when
	                        * config count_lost_packets is off */
	uint64_t loss_events;  /* congestion recovery periods entered (RFC 9002
	                        * §7.3.2): each began with a loss; always counted */
	uint64_t connects;     /* connections established */
	uint64_t reconnects;   /* ... after the first */
	uint64_t handshake_failures; /* outbound dials that did not complete */
	uint64_t malformed;     /* frames rejected (too big, undecodable, wrong type) */
	uint64_t foreign_from;  /* messages dropped: `from` not the authenticated peer */
	uint64_t dropped;       /* frames dropped unsent (queue full, connection lost) */
	uint64_t stale_dropped; /* frames queued for a previous process of the
	                         * peer, dropped when a new one connected */
	uint64_t restarts;      /* connections that came up from a new process of
	                         * the peer (another boot id than the last one) */
	uint64_t queued_bytes;  /* unsent bytes queued for the peer now */
	uint64_t credit_waits;  /* times a stream to the peer had bytes to send
	                         * and no flow-control credit from it (its
	                         * window full of frames it has not consumed) */
	char cipher[48];        /* negotiated TLS cipher suite, "" when down */
};

/* The largest frame payload rd_transport_send_encoded takes (the
 * configuration's max_frame_bytes). */
size_t rd_transport_max_frame_bytes(const struct rd_transport *t);

/* Returns 0 or RD_ENOTFOUND. */
int rd_transport_peer_stats(const struct rd_transport *t, uint64_t peer,
                            struct rd_transport_peer_stats *out);

/* Endpoint-wide counters. */
struct rd_transport_stats {
	uint64_t conns;                   /* connections open now (any state) */
	uint64_t established;             /* ... of which established */
	uint64_t accepted;                /* inbound connections created */
	uint64_t dialed;                  /* outbound connections created */
	uint64_t ngtcp2_blocks_reclaimed; /* blocks ngtcp2 still held at a
	                                   * connection's deletion (mem.c) */
	uint64_t tls_rejected;      /* handshakes refused (alert sent or received) */
	uint64_t nonmember_refused; /* authenticated, but not a member, beyond
	                             * RD_TRANSPORT_MAX_STRANGERS: closed */
	uint64_t strangers;         /* non-members' connections held now */
	uint64_t stranger_refused;  /* a non-member's Raft or snapshot frames and
	                             * requests other than join or member probe:
	                             * dropped or answered INVALID */
	uint64_t partial_bytes;     /* bytes of incomplete frames held now */
	uint64_t cert_closed;       /* closed: peer certificate expired or no
	                             * longer verifies */
	uint64_t half_open;         /* inbound handshakes in progress now */
	uint64_t retries_sent;      /* Retry packets sent */
	uint64_t initials_dropped;  /* Initials refused: caps, bad token */
	uint64_t duplicates_closed; /* connections closed by the tie-break */
	uint64_t stale_replaced;    /* connections to a previous process of a
	                             * peer, closed when its new one connected */
	uint64_t malformed;         /* frames rejected, all peers */
	uint64_t packets_in, packets_out;
	uint64_t stateless_resets; /* sent */
	uint64_t send_blocked;     /* times the socket said EAGAIN */
};

/* Copy the transport-wide counters of `t` into *out (a snapshot; the
 * counters only grow). Cheap, for /metrics and raftctl status. */
void rd_transport_stats(const struct rd_transport *t, struct rd_transport_stats *out);

/* Tests only: queue `len` raw bytes (not a frame) on the Raft stream, or
 * the snapshot stream, to `peer`, as a broken or hostile node would. */
int rd_transport_test_send_raw(struct rd_transport *t, uint64_t peer, bool snapshot,
                               const uint8_t *bytes, size_t len);

/* Tests only: a call whose request is `len` raw bytes (not necessarily a
 * frame), on a stream of its own left open (no FIN), as a hostile node
 * would send it. */
int rd_transport_test_call_raw(struct rd_transport *t, uint64_t peer,
                               const uint8_t *bytes, size_t len, unsigned deadline_ms,
                               rd_transport_reply_cb cb, void *arg);

/* Tests only: 1 when the TLS session of the connection to `peer` holds a
 * session ticket from it, 0 when not, -1 without a connection. */
int rd_transport_test_got_ticket(const struct rd_transport *t, uint64_t peer);

/* Tests only: start `count` handshakes with `to` (as if dialing node
 * `as_id`) and abandon each right after its first Initial left: the
 * handshake flood of a client that never finishes. The connections are
 * freed at the end of the loop turn. */
int rd_transport_test_dial_flood(struct rd_transport *t, const struct sockaddr *to,
                                 socklen_t tolen, uint64_t as_id, unsigned count);

/* Tests only: drop every `every`-th send (a datagram, or a batch of them)
 * as a lossy path would; 0 stops dropping. */
void rd_transport_test_drop(struct rd_transport *t, unsigned every);

/* Tests only: free `t` like a crash would, without telling any peer
 * (no CONNECTION_CLOSE), so that peers must notice by themselves. */
void rd_transport_test_abandon(struct rd_transport *t);

/* Re-read the certificate, key and CA named in the config given at
 * creation: rd_transport_reload with that config. */
int rd_transport_reload_tls(struct rd_transport *t, char *msg);

/* SIGHUP: take the TLS mode and files of `cfg` (other fields are ignored).
 * Refused with RD_EINVAL when the mode changes; in mutual mode the new
 * certificate must name this node, be within its dates and chain to the new
 * CA, else RD_ETLS; on refusal the old credentials stay. New connections
 * use the new credentials; every established connection whose peer
 * certificate no longer verifies against the new CA is closed
 * (APP_CERT). */
int rd_transport_reload(struct rd_transport *t, const struct rd_transport_config *cfg,
                        char *msg);

#endif
