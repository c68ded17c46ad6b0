/*
 * Member table keys and records: format in members.h.
 */
#include "cluster/members.h"

#include <string.h>

#include "util/err.h"

size_t rd_members_key(const char *cluster, uint64_t id, uint8_t *out)
{
	size_t cl = strnlen(cluster, 64), n = 0;

	memcpy(out, RD_MEMBERS_PREFIX, RD_MEMBERS_PREFIX_LEN);
	n += RD_MEMBERS_PREFIX_LEN;
	memcpy(out + n, cluster, cl);
	n += cl;
	out[n++] = '/';
	for (int i = 7; i >= 0; i--)
		out[n++] = (uint8_t)(id >> (8 * i));
	return n;
}

bool rd_members_reserved(const uint8_t *key, size_t len)
{
	return len >= RD_MEMBERS_PREFIX_LEN &&
	       memcmp(key, RD_MEMBERS_PREFIX, RD_MEMBERS_PREFIX_LEN) == 0;
}

size_t rd_members_encode(const struct rd_member_record *r, uint8_t *out)
{
	size_t al = strnlen(r->addr, 255), n = 0;

	out[n++] = 1;
	out[n++] = r->state;
	for (int i = 7; i >= 0; i--)
		out[n++] = (uint8_t)(r->incarnation >> (8 * i));
	out[n++] = (uint8_t)al;
	memcpy(out + n, r->addr, al);
	return n + al;
}

int rd_members_decode(const uint8_t *buf, size_t len, struct rd_member_record *r)
{
	size_t al;

	memset(r, 0, sizeof *r);
	if (len < 11 || buf[0] != 1 || buf[1] < RD_MEMBER_JOINING ||
	    buf[1] > RD_MEMBER_LEAVING)
		return RD_ECORRUPT;
	r->state = buf[1];
	for (int i = 0; i < 8; i++)
		r->incarnation = r->incarnation << 8 | buf[2 + i];
	al = buf[10];
	if (len != 11 + al || r->incarnation == 0)
		return RD_ECORRUPT;
	memcpy(r->addr, buf + 11, al);
	r->addr[al] = 0;
	return 0;
}

const char *rd_members_state_name(uint8_t state)
{
	switch (state) {
	case RD_MEMBER_JOINING:
		return "joining";
	case RD_MEMBER_VOTER:
		return "voter";
	case RD_MEMBER_LEARNER:
		return "learner";
	case RD_MEMBER_LEAVING:
		return "leaving";
	default:
		return "unknown";
	}
}
