/*
 * Private structures of lib/transport, shared by its files:
 *
 *   endpoint.c  the UDP socket, packet dispatch by connection id, stateless
 *               reset, the deferred flush, rd_transport_new/free
 *   cidmap.c    connection id -> connection
 *   conn.c      one ngtcp2 connection: creation, callbacks, timer
 *   conn_io.c   its read, write loop and close
 *   stream.c    send queues kept until acknowledged, frame dispatch on receipt
 *   peer.c      peers, the connection chosen per peer, backoff, send API
 *   rpc.c       calls with deadlines and responders
 *   tls.c, wire.c  see their headers
 */
#ifndef RD_TRANSPORT_INTERNAL_H
#define RD_TRANSPORT_INTERNAL_H

#include "transport/tls.h" /* first: wolfssl/options.h before other wolfSSL headers */

#include <event2/event.h>
#include <ngtcp2/ngtcp2.h>
#include <stdbool.h>
#include <stdint.h>

#include "transport/transport.h"
#include "transport/wire.h"
#include "util/clock.h" /* rd_clock_now_ns: ngtcp2 timestamps are its ns */

#define RD_T_SCID_LEN         16
#define RD_T_MAX_PKT          NGTCP2_MAX_PMTUD_UDP_PAYLOAD_SIZE
#define RD_T_CID_BUCKETS      256
#define RD_T_MAX_PENDING_SHUT 32
#define RD_T_TX_MAX           65000 /* one GSO batch: under the 64 KiB UDP limit */
#define RD_T_GSO_SEGS         44    /* datagrams per batch (kernel limit: 64) */
#define RD_T_LOGS_PER_S       10    /* refusal warnings per second */
#define RD_T_RETRY_TOKEN_S    10    /* a Retry token is valid this long */
/* Ack-eliciting packets received before an ACK goes at once (ngtcp2's
 * default is 2, RFC 9000 §13.2.2); short of it, an ACK waits for the next
 * packet we send or the peer's max_ack_delay. */
#define RD_T_ACK_THRESH 8

/* One frame (header + payload) waiting to be sent or acknowledged. */
struct rd_sbuf {
	struct rd_sbuf *next;
	size_t len;
	uint8_t data[];
};

/* The sending half of a stream. ngtcp2 does not copy stream data, so bytes
 * stay here until ngtcp2 reports them acknowledged (ngtcp2.h,
 * acked_stream_data_offset). */
struct rd_squeue {
	struct rd_sbuf *head, *tail; /* head: oldest not fully acknowledged */
	struct rd_sbuf *cur;         /* first buffer with unsent bytes, NULL: all sent */
	size_t cur_off;              /* bytes of `cur` already handed to ngtcp2 */
	size_t head_acked;           /* bytes of `head` acknowledged */
	uint64_t unsent;             /* bytes not yet handed to ngtcp2 */
	uint64_t frames_unsent;      /* buffers not started */
	bool fin;                    /* end the stream after the last byte */
	bool fin_sent;
};

enum rd_stream_kind {
	RD_S_RAFT_OUT, /* our unidirectional Raft stream */
	RD_S_SNAP_OUT, /* our unidirectional snapshot stream */
	RD_S_RAFT_IN,  /* the peer's Raft stream (its first uni stream) */
	RD_S_SNAP_IN,  /* the peer's snapshot stream (its second) */
	RD_S_OTHER_IN, /* any further uni stream: refused */
	RD_S_CALL,     /* bidirectional, opened by us for a call */
	RD_S_SERVE,    /* bidirectional, opened by the peer: a request to us */
};

struct rd_stream {
	int64_t id;
	enum rd_stream_kind kind;
	struct rd_conn *conn;
	struct rd_squeue out;
	struct rd_wire_reader in;
	struct rd_stream *next, *prev; /* conn->streams */
	struct rd_stream *wnext;       /* conn's list of streams with data to send */
	bool in_wlist;
	bool read_dead;                      /* input refused: ignore further bytes */
	bool got_request;                    /* RD_S_SERVE: the request arrived */
	struct rd_call *call;                /* RD_S_CALL */
	struct rd_transport_responder *resp; /* RD_S_SERVE, while unanswered */
};

/* A connection's allocator for ngtcp2 (mem.c): the C library's, with each
 * block listed so that rd_t_mem_release, after ngtcp2_conn_del, frees what
 * ngtcp2 failed to. Must not move while ngtcp2 uses it. */
struct rd_t_blk {
	struct rd_t_blk *prev, *next;
};
struct rd_t_mem {
	ngtcp2_mem mem; /* user_data = this */
	struct rd_t_blk head;
	size_t live; /* blocks allocated and not freed */
};
/* Make *m an empty allocator whose m->mem ngtcp2 may use from now on. */
void rd_t_mem_init(struct rd_t_mem *m);
/* Free every block still listed; returns how many there were. Call only
 * once nothing (ngtcp2_conn_del done) refers to them. */
size_t rd_t_mem_release(struct rd_t_mem *m);

struct rd_conn {
	struct rd_tls_peer tp; /* first: WOLFSSL app data, ngtcp2_crypto_conn_ref */
	struct rd_transport *t;
	ngtcp2_conn *qc;
	struct rd_t_mem mem; /* qc's allocator */
	WOLFSSL *ssl;
	struct sockaddr_storage remote;
	socklen_t remote_len;
	char addr_text[64];
	struct rd_peer *peer; /* NULL until the server side knows who it is */
	uint64_t dialer;      /* node id of the side that dialed */
	bool established;     /* handshake done and identity checked */
	bool refused;         /* identity is not a member: to be closed */
	bool stranger;        /* server side: an authenticated non-member that may
	                       * only ask to join (counted in t->strangers) */
	bool dead;            /* closed: freed at the end of the flush */
	bool ccerr_set;       /* ccerr holds our reason to close */
	bool silent;          /* close without sending CONNECTION_CLOSE */
	bool in_read;         /* inside ngtcp2_conn_read_pkt */
	bool close_pending;   /* rd_conn_close was called during the read */
	uint64_t close_code;
	ngtcp2_connection_close_error ccerr;
	struct event *timer;
	struct rd_stream *streams;
	struct rd_stream *raft_out, *snap_out;
	struct rd_stream *whead, *wtail;
	struct rd_cident *cids;      /* its entries in the connection-id map */
	bool half_open;              /* accepted, handshake not done: counted */
	struct rd_conn *next, *prev; /* t->conns */
	struct rd_conn *dnext;       /* t->dirty list */
	bool dirty;
	struct {
		int64_t id;
		uint64_t code;
	} shut[RD_T_MAX_PENDING_SHUT];
	size_t n_shut;
	uint64_t lost_packets;
	uint64_t loss_events;
	uint64_t recovery_ts;   /* last congestion recovery start seen */
	uint64_t up_at;         /* when it became the peer's connection (ns) */
	uint64_t held;          /* bytes of partial frames held by its streams */
	struct event *cert_ev;  /* fires when the peer certificate expires */
	int64_t cert_not_after; /* its notAfter (Unix time), -1 unknown */
	uint64_t peer_boot;     /* the peer process's boot id, from its initial
	                         * source connection id (rd_t_cid_boot); valid
	                         * once established */
};

struct rd_peer {
	struct rd_transport *t;
	uint64_t id;
	bool registered; /* added by the caller (else: an inbound stranger) */
	bool any;        /* dialed by address: the server may prove any node id
	                  * (rd_transport_peer_add_any); `proven` is the one it did */
	uint64_t proven;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	struct rd_conn *conn;                    /* established connection in use */
	struct rd_conn *dialing;                 /* our outbound attempt */
	struct rd_squeue pend_raft, pend_snap;   /* frames waiting for a connection */
	struct rd_call *calls_head, *calls_tail; /* calls waiting for a stream */
	uint64_t boot;     /* boot id of the peer process behind the last
	                    * connection that came up; 0: none came up yet */
	unsigned failures; /* consecutive failed dials, for backoff */
	struct event *redial;
	bool redial_armed;
	struct rd_transport_peer_stats st;
	uint64_t lost_total; /* lost packets of closed connections */
	uint64_t loss_events_total;
	struct rd_peer *next;
};

struct rd_call {
	struct rd_transport *t;
	uint64_t peer_id;
	struct rd_peer *peer;     /* while waiting in the peer's list */
	struct rd_stream *stream; /* once sent */
	struct rd_sbuf *req;      /* the encoded request until handed to a stream */
	struct event *deadline;
	rd_transport_reply_cb cb;
	void *arg;
	bool no_fin; /* tests: leave the request stream open */
	struct rd_call *next;
};

struct rd_transport_responder {
	struct rd_stream *stream; /* NULL once the stream is gone */
};

struct rd_cident {
	ngtcp2_cid cid;
	struct rd_conn *conn;
	struct rd_cident *next;  /* same bucket */
	struct rd_cident *cnext; /* same connection */
};

struct rd_transport {
	struct event_base *base;
	unsigned test_drop_every; /* rd_transport_test_drop; 0 = none */
	uint64_t test_sends;
	struct rd_transport_config cfg; /* cfg.boot is never 0 */
	struct rd_transport_callbacks cbs;
	struct rd_tls *tls;
	int fd;
	struct sockaddr_storage local;
	socklen_t local_len;
	struct event *rev, *wev, *flush_ev;
	struct rd_conn *conns;
	struct rd_peer *peers;
	struct rd_cident *cids[RD_T_CID_BUCKETS];
	uint8_t cid_key[16];      /* SipHash key of the map, random */
	uint8_t token_secret[32]; /* Retry tokens, random */
	unsigned half_open;       /* server connections in their handshake */
	unsigned strangers;       /* connections with `stranger` set */
	uint8_t reset_secret[32];
	struct rd_transport_stats st;
	bool blocked; /* socket said EAGAIN: wait for writability */
	uint8_t saved_pkt[RD_T_TX_MAX];
	size_t saved_len;
	size_t saved_seg;
	uint8_t txbuf[RD_T_TX_MAX]; /* packets being batched by rd_conn_write */
	bool no_gso;
	struct sockaddr_storage saved_to;
	socklen_t saved_tolen;
	struct rd_conn *dirty;
	uint64_t reset_window; /* start of the current second (ns) */
	unsigned reset_count;  /* resets sent in it */
	uint64_t log_window;   /* start of the current second for refusal logs */
	unsigned log_count;    /* refusal warnings logged in it */
	uint64_t log_held;     /* ... and held back */
	bool freeing;
};

/* endpoint.c, cidmap.c */
/* Fill p[0..n) with random bytes from getrandom(2) (connection ids,
 * stateless-reset tokens); falls back to rand() only before the kernel pool
 * is seeded at boot. Never fails. */
void rd_t_rand(uint8_t *p, size_t n);
/* The initial source connection id of a connection we open, either role:
 * RD_T_SCID_LEN bytes, the first 8 this process's boot id (t->cfg.boot,
 * big-endian), the rest random. The peer reads the boot id back with
 * rd_t_cid_boot from the initial_source_connection_id transport parameter,
 * which the handshake authenticates (RFC 9000 §7.3). Connection ids issued
 * later (NEW_CONNECTION_ID) are wholly random. */
void rd_t_initial_scid(const struct rd_transport *t, ngtcp2_cid *cid);
/* The boot id an initial connection id carries; 0 when `cid` is not
 * RD_T_SCID_LEN bytes long. */
uint64_t rd_t_cid_boot(const ngtcp2_cid *cid);
/* Map connection id `cid` to `c` (RFC 9000 §5.1: every id we issued routes
 * incoming packets to its connection). Returns 0 or RD_ENOMEM. The id must
 * not be mapped yet. */
int rd_t_cid_add(struct rd_transport *t, const ngtcp2_cid *cid, struct rd_conn *c);
/* Forget connection id `cid` (retired by ngtcp2); unknown ids are ignored. */
void rd_t_cid_del(struct rd_transport *t, const ngtcp2_cid *cid);
/* The connection that owns the `len`-byte id at `id` (a packet's
 * destination id), or NULL. */
struct rd_conn *rd_t_cid_find(struct rd_transport *t, const uint8_t *id, size_t len);
/* Forget every id that maps to `c`; called before `c` is freed. */
void rd_t_cid_del_conn(struct rd_transport *t, struct rd_conn *c);
/* Send `len` bytes as UDP datagrams of `seg` bytes (GSO when seg < len) to
 * `to`. Returns 0 when sent or dropped (QUIC loss recovery resends), or
 * RD_EAGAIN when the socket is full: the packets are kept (len must fit the
 * saved-packet buffer) and sent first when it drains, and nothing else is
 * sent until then. */
int rd_t_send_batch(struct rd_transport *t, const struct sockaddr *to, socklen_t tolen,
                    const uint8_t *buf, size_t len, size_t seg);
/* rd_t_send_batch for one packet of `len` bytes. */
int rd_t_send_pkt(struct rd_transport *t, const struct sockaddr *to, socklen_t tolen,
                  const uint8_t *pkt, size_t len);
/* Write `c` at the end of this loop turn (coalesces sends). */
void rd_t_mark_dirty(struct rd_conn *c);
/* May a warning about a refused stranger be logged now? At most
 * RD_T_LOGS_PER_S a second; the number held back is logged with the next. */
bool rd_t_log_ok(struct rd_transport *t);

/* stranger.c */
/* A packet from `from` whose destination id `dcid` maps to no connection:
 * an Initial may open one (within the half-open caps, after a Retry past
 * retry_threshold); anything else gets a stateless reset unless it is one
 * for an established connection to that address. */
void rd_t_stranger(struct rd_transport *t, const uint8_t *pkt, size_t len,
                   const uint8_t *dcid, size_t dcidlen, const struct sockaddr *from,
                   socklen_t fromlen);
/* Fill t->reset_secret: from t->cfg.reset_secret_file when it holds one,
 * else random (and kept in that file when one is named). */
void rd_t_load_reset_secret(struct rd_transport *t);

/* conn.c */
/* Open a client connection to `p` (random ids, TLS session expecting p's
 * node id) and schedule its first flight. Returns the connection, owned by
 * the transport and linked to `p`, or NULL when any step fails (nothing is
 * left behind). */
struct rd_conn *rd_conn_dial(struct rd_transport *t, struct rd_peer *p);
/* Accept a client Initial with header `hd` from `from`: a server
 * connection whose ids (ours and the client's chosen destination id) are
 * mapped. `odcid`: the client's first destination id when `hd` carries a
 * valid Retry token (then hd->dcid is the id our Retry chose), else NULL.
 * Returns it, or NULL on failure (the packet is then dropped). The peer is
 * known only after the handshake's identity check. */
struct rd_conn *rd_conn_accept(struct rd_transport *t, const ngtcp2_pkt_hd *hd,
                               const ngtcp2_cid *odcid, const struct sockaddr *from,
                               socklen_t fromlen);
/* Feed one packet. A fatal error closes the connection (it becomes dead). */
void rd_conn_read(struct rd_conn *c, const struct sockaddr *from, socklen_t fromlen,
                  const uint8_t *pkt, size_t len);
/* Write what can be written now and re-arm the timer. */
void rd_conn_write(struct rd_conn *c);
/* Close with an application error: CONNECTION_CLOSE is sent and the
 * connection becomes dead. */
void rd_conn_close(struct rd_conn *c, uint64_t app_error, const char *why);
/* The path (our socket address, the peer's) of `c`. */
ngtcp2_path rd_conn_path(struct rd_conn *c);
/* Established, mutual mode: close the connection when the peer's
 * certificate expires. */
void rd_conn_watch_cert(struct rd_conn *c);
/* Free a dead connection (after the peer was told). */
void rd_conn_free(struct rd_conn *c);
/* Is `c` a stranger's connection (server side: an authenticated node that
 * is not a member, which may only send join requests and member probes)?
 * Asks is_member again, so a stranger whose join applied becomes a member's
 * connection. */
bool rd_conn_stranger(struct rd_conn *c);

/* stream.c */
/* A stream object for ngtcp2 stream `id` of `c`, linked into c's list and
 * set as ngtcp2's stream user data; `kind` says what it carries. Returns
 * NULL on ENOMEM. The stream must already exist in ngtcp2 (opened by us or
 * by the peer). */
struct rd_stream *rd_stream_new(struct rd_conn *c, int64_t id, enum rd_stream_kind kind);
/* Unlink and free `s`: a call waiting on it fails with `err` (RD_ECLOSED
 * when 0), unsent frames are dropped (and counted for Raft and snapshot
 * streams), a responder loses its stream. Safe while `c` is being torn down. */
void rd_stream_free(struct rd_stream *s, int err);
/* Append buffer `b` to the send queue `q`; ownership of `b` passes to the
 * queue, which frees it once ngtcp2 reports every byte acknowledged (bytes
 * handed to ngtcp2 stay alive until then). */
void rd_squeue_push(struct rd_squeue *q, struct rd_sbuf *b);
/* `len` more bytes at the head of `q` were acknowledged by the peer: free
 * the buffers now wholly acknowledged. Only bytes already handed out
 * (before `cur`) can be acknowledged. */
void rd_squeue_ack(struct rd_squeue *q, uint64_t len);
/* Up to `max` vectors over the unsent bytes, from `cur` on. */
size_t rd_squeue_vecs(const struct rd_squeue *q, ngtcp2_vec *v, size_t max);
/* `n` more bytes were handed to ngtcp2. */
void rd_squeue_advance(struct rd_squeue *q, size_t n);
/* Drop everything; returns the number of frames that never left in full. */
uint64_t rd_squeue_clear(struct rd_squeue *q);
/* Move buffers not yet started from `from` to the end of `to`; returns
 * the number of frames lost (partially sent, unacknowledged). */
uint64_t rd_squeue_salvage(struct rd_squeue *from, struct rd_squeue *to);
/* Put `s` on its connection's write list (once) and mark the connection
 * dirty, so its queue is drained at the end of this loop turn. */
void rd_stream_want_write(struct rd_stream *s);
/* Feed `len` bytes received on `s` (fin: the peer's last ones) to its
 * frame reader; every complete frame is checked and delivered. *consumed is
 * set to the bytes no longer held (frames handed on, or input discarded),
 * for which flow-control credit may be returned. Returns 0 (also when the
 * stream alone was refused and shut) or -1 when the whole connection must
 * close (the close error is already set in c->ccerr). */
int rd_stream_recv(struct rd_stream *s, const uint8_t *data, size_t len, bool fin,
                   size_t *consumed);
/* Ask for a stream to be reset (applied after the current ngtcp2 call). */
void rd_stream_shut(struct rd_stream *s, uint64_t code);
/* `f` packed into a new send buffer behind the wire header (lib/transport/
 * wire.h). Returns the buffer (the caller owns it until rd_squeue_push), or
 * NULL with *rv = RD_ETOOBIG (over `max` bytes) or RD_ENOMEM and `msg` set. */
struct rd_sbuf *rd_sbuf_frame(const Raftd__PeerFrame *f, size_t max, char *msg, int *rv);

/* peer.c */
/* The peer with node id `id`, or NULL when it was never added. */
struct rd_peer *rd_peer_find(const struct rd_transport *t, uint64_t id);
/* A connection finished its handshake and identity check: choose. */
void rd_peer_conn_up(struct rd_transport *t, struct rd_conn *c);
/* A connection is going away (called once, before it is freed). */
void rd_peer_conn_down(struct rd_transport *t, struct rd_conn *c, bool failed);
/* Start or schedule a dial when something waits for `p`. */
void rd_peer_kick(struct rd_transport *t, struct rd_peer *p);
/* Free `p`: its waiting calls fail with `err` (RD_ESHUTDOWN on transport
 * shutdown, else "peer removed"), queued frames are dropped, the redial
 * timer goes. `p` must already be unlinked and have no connection. */
void rd_peer_free(struct rd_transport *t, struct rd_peer *p, int err);
/* Count a malformed input on `c` in the transport's and (when known) its
 * peer's statistics. */
void rd_peer_count_malformed(struct rd_conn *c);

/* rpc.c */
/* Open streams for the calls waiting on `p` while the connection allows. */
void rd_rpc_start_waiting(struct rd_peer *p);
/* Complete `call` exactly once: unlink it from its peer and stream, cancel
 * its deadline, run its callback with (err, resp, errmsg) and free it.
 * `resp` (NULL on error) is borrowed for the callback only. */
void rd_rpc_finish(struct rd_call *call, int err, const Raftd__PeerResponse *resp,
                   const char *errmsg);
/* A request frame `f` arrived on incoming RPC stream `s`: check its sender
 * against the connection's authenticated peer, then hand it to
 * cbs.on_request with a responder (or answer UNAVAILABLE when none is
 * set). Takes ownership of `f` and frees it. */
void rd_rpc_deliver_request(struct rd_stream *s, Raftd__PeerFrame *f);

#endif
