/*
 * The connection-id map: every connection id we issued (and, for a server
 * connection, the client's original destination id, which it keeps using
 * until it hears from us: RFC 9000 §7.2) points at its connection, so that
 * a packet finds its connection by the id it carries (§5.2). A chained hash
 * table: ids are random, a few per connection, and connections are few.
 */
#include <stdlib.h>
#include <string.h>

#include "transport/internal.h"
#include "util/err.h"

static unsigned cid_hash(const uint8_t *d, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ d[i]) * 16777619u;
	return h % RD_T_CID_BUCKETS;
}

int rd_t_cid_add(struct rd_transport *t, const ngtcp2_cid *cid, struct rd_conn *c)
{
	struct rd_cident *e = malloc(sizeof *e);
	unsigned h = cid_hash(cid->data, cid->datalen);

	if (e == NULL)
		return RD_ENOMEM;
	e->cid = *cid;
	e->conn = c;
	e->next = t->cids[h];
	t->cids[h] = e;
	return 0;
}

struct rd_conn *rd_t_cid_find(struct rd_transport *t, const uint8_t *d, size_t n)
{
	for (struct rd_cident *e = t->cids[cid_hash(d, n)]; e; e = e->next)
		if (e->cid.datalen == n && memcmp(e->cid.data, d, n) == 0)
			return e->conn;
	return NULL;
}

void rd_t_cid_del(struct rd_transport *t, const ngtcp2_cid *cid)
{
	struct rd_cident **pp = &t->cids[cid_hash(cid->data, cid->datalen)];

	for (; *pp; pp = &(*pp)->next) {
		if (ngtcp2_cid_eq(&(*pp)->cid, cid)) {
			struct rd_cident *e = *pp;
			*pp = e->next;
			free(e);
			return;
		}
	}
}

void rd_t_cid_del_conn(struct rd_transport *t, struct rd_conn *c)
{
	for (unsigned h = 0; h < RD_T_CID_BUCKETS; h++) {
		struct rd_cident **pp = &t->cids[h];
		while (*pp) {
			if ((*pp)->conn == c) {
				struct rd_cident *e = *pp;
				*pp = e->next;
				free(e);
			} else {
				pp = &(*pp)->next;
			}
		}
	}
}
