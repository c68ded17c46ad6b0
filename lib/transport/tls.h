/*
 * TLS for the transport: wolfSSL contexts for both roles, node identity
 * from certificates, ALPN, cipher order, the insecure mode's ephemeral
 * certificate. Private to lib/transport.
 */
#ifndef RD_TRANSPORT_TLS_H
#define RD_TRANSPORT_TLS_H

#include <wolfssl/options.h>

#include <ngtcp2/ngtcp2_crypto.h>
#include <stdbool.h>
#include <stdint.h>
#include <wolfssl/ssl.h>

#include "transport/transport.h"

struct rd_tls;

/* Per-connection identity state; the WOLFSSL's app data points here, and
 * ngtcp2's wolfSSL glue reads it as an ngtcp2_crypto_conn_ref, so `ref`
 * must stay first. */
struct rd_tls_peer {
	ngtcp2_crypto_conn_ref ref;
	struct rd_tls *tls;
	bool client;
	uint64_t expect_id; /* client: the node dialed; server: the id claimed in SNI */
	uint64_t auth_id;   /* id proven by the certificate (insecure: claimed) */
	bool any;           /* client: the server may be any node the CA signed
	                     * (a join address, rd_transport_peer_add_any) */
	char reason[160];   /* why this side refused the handshake, "" if it did not */
};

/* Build both contexts from `cfg`. Returns 0, RD_ETLS, RD_ENOMEM. */
int rd_tls_new(struct rd_tls **out, const struct rd_transport_config *cfg, char *msg);
/* Free both contexts of `t` and its ephemeral credentials (NULL is fine),
 * then release wolfSSL. Sessions made from them must be freed first. */
void rd_tls_free(struct rd_tls *t);

/* Rebuild the contexts from the files in `cfg`; on failure keep the old.
 * Refused (RD_EINVAL) when the mode changes; in mutual mode the new
 * certificate must name this node, be within its dates and chain to the
 * new CA (RD_ETLS otherwise). */
int rd_tls_reload(struct rd_tls *t, const struct rd_transport_config *cfg, char *msg);

/* Does the peer certificate of an established session still verify against
 * the CA file `ca` (dates included)? 0, or RD_ETLS with the reason. Always
 * 0 in insecure mode. */
int rd_tls_peer_still_valid(struct rd_tls *t, WOLFSSL *ssl, const char *ca, char *msg);

/* The peer certificate's notAfter as a Unix time, -1 when unknown. */
int64_t rd_tls_peer_not_after(WOLFSSL *ssl);

/* A session for one connection, its app data set to `p` (whose client,
 * expect_id and tls fields the caller fills first). NULL on failure. The
 * caller frees it with wolfSSL_free. */
WOLFSSL *rd_tls_session(struct rd_tls *t, struct rd_tls_peer *p);

/* After the handshake: true when "raftd/1" (the configured ALPN) was
 * negotiated. */
bool rd_tls_alpn_ok(struct rd_tls *t, WOLFSSL *ssl);

/* "raftd-node-<id>" -> id; 0 when `s` has another form. */
uint64_t rd_tls_parse_node_name(const char *s, size_t len);

#endif
