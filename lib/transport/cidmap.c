/*
 * The connection-id map: every connection id we issued (and, for a server
 * connection, the client's original destination id, which it keeps using
 * until it hears from us: RFC 9000 §7.2) points at its connection, so that
 * a packet finds its connection by the id it carries (§5.2).
 *
 * A chained hash table keyed with SipHash-2-4 under a random key drawn at
 * startup: destination ids of Initial packets are chosen by whoever sends
 * them, and with an unkeyed hash a sender could aim every lookup at one
 * chain. Each connection also lists its own entries, so that freeing it
 * touches only its chains, not the whole table.
 *
 * The first connection id of each connection we open carries this
 * process's boot id (rd_t_initial_scid), so that a peer can tell a new
 * process of ours from the one it still holds a connection to (peer.c).
 */
#include <stdlib.h>
#include <string.h>

#include "transport/internal.h"
#include "util/bytes.h"
#include "util/err.h"

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF",
 * 2012) of `n` bytes under the 16-byte key `k`. */
static uint64_t siphash(const uint8_t k[16], const uint8_t *d, size_t n)
{
	uint64_t k0 = le64(k), k1 = le64(k + 8);
	uint64_t v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull;
	uint64_t v2 = k0 ^ 0x6c7967656e657261ull, v3 = k1 ^ 0x7465646279746573ull;
	uint64_t m, b = (uint64_t)n << 56;
	size_t i;
	uint8_t tail[8] = {0};

#define SIPROUND                                                                         \
	do {                                                                             \
		v0 += v1;                                                                \
		v1 = ROTL(v1, 13);                                                       \
		v1 ^= v0;                                                                \
		v0 = ROTL(v0, 32);                                                       \
		v2 += v3;                                                                \
		v3 = ROTL(v3, 16);                                                       \
		v3 ^= v2;                                                                \
		v0 += v3;                                                                \
		v3 = ROTL(v3, 21);                                                       \
		v3 ^= v0;                                                                \
		v2 += v1;                                                                \
		v1 = ROTL(v1, 17);                                                       \
		v1 ^= v2;                                                                \
		v2 = ROTL(v2, 32);                                                       \
	} while (0)

	for (i = 0; i + 8 <= n; i += 8) {
		m = le64(d + i);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	memcpy(tail, d + i, n - i);
	b |= le64(tail);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
#undef SIPROUND
	return v0 ^ v1 ^ v2 ^ v3;
}

static unsigned cid_hash(const struct rd_transport *t, const uint8_t *d, size_t n)
{
	return (unsigned)(siphash(t->cid_key, d, n) % RD_T_CID_BUCKETS);
}

int rd_t_cid_add(struct rd_transport *t, const ngtcp2_cid *cid, struct rd_conn *c)
{
	struct rd_cident *e = malloc(sizeof *e);
	unsigned h = cid_hash(t, cid->data, cid->datalen);

	if (e == NULL)
		return RD_ENOMEM;
	e->cid = *cid;
	e->conn = c;
	e->next = t->cids[h];
	t->cids[h] = e;
	e->cnext = c->cids;
	c->cids = e;
	return 0;
}

struct rd_conn *rd_t_cid_find(struct rd_transport *t, const uint8_t *d, size_t n)
{
	for (struct rd_cident *e = t->cids[cid_hash(t, d, n)]; e; e = e->next)
		if (e->cid.datalen == n && memcmp(e->cid.data, d, n) == 0)
			return e->conn;
	return NULL;
}

/* Unlink `e` from its chain (not from its connection's list). */
static void unchain(struct rd_transport *t, struct rd_cident *e)
{
	struct rd_cident **pp = &t->cids[cid_hash(t, e->cid.data, e->cid.datalen)];

	for (; *pp; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			return;
		}
	}
}

void rd_t_cid_del(struct rd_transport *t, const ngtcp2_cid *cid)
{
	struct rd_cident *e = t->cids[cid_hash(t, cid->data, cid->datalen)];

	for (; e; e = e->next)
		if (ngtcp2_cid_eq(&e->cid, cid))
			break;
	if (e == NULL)
		return;
	unchain(t, e);
	for (struct rd_cident **pp = &e->conn->cids; *pp; pp = &(*pp)->cnext) {
		if (*pp == e) {
			*pp = e->cnext;
			break;
		}
	}
	free(e);
}

void rd_t_cid_del_conn(struct rd_transport *t, struct rd_conn *c)
{
	while (c->cids) {
		struct rd_cident *e = c->cids;
		c->cids = e->cnext;
		unchain(t, e);
		free(e);
	}
}

void rd_t_initial_scid(const struct rd_transport *t, ngtcp2_cid *cid)
{
	cid->datalen = RD_T_SCID_LEN;
	rd_be64_put(cid->data, t->cfg.boot);
	rd_t_rand(cid->data + 8, RD_T_SCID_LEN - 8);
}

uint64_t rd_t_cid_boot(const ngtcp2_cid *cid)
{
	return cid->datalen == RD_T_SCID_LEN ? rd_be64_get(cid->data) : 0;
}
