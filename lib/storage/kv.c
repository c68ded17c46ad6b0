/*
 * KV command encoding and the key to vShard hash; the format is described
 * in kv.h. The decoder trusts nothing: every length is checked against the
 * bytes that remain before it is used.
 */
#include "storage/kv.h"

#include "util/err.h"
#include "util/hash.h"

uint32_t rd_kv_vshard(const uint8_t *key, size_t len)
{
	return (uint32_t)(rd_fnv1a64(key, len) % RD_KV_VSHARDS);
}

static size_t varint_size(uint32_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static uint8_t *varint_put(uint8_t *p, uint32_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static int check_limits(const struct rd_kv_cmd *c)
{
	switch (c->op) {
	case RD_KV_PUT:
	case RD_KV_DELETE:
	case RD_KV_CAS:
		if (c->key_len == 0 || c->key_len > RD_KV_KEY_MAX)
			return RD_EINVAL;
		if (c->op != RD_KV_DELETE && c->value_len > RD_KV_VALUE_MAX)
			return RD_EINVAL;
		if (c->op == RD_KV_CAS && c->has_expected &&
		    c->expected_len > RD_KV_VALUE_MAX)
			return RD_EINVAL;
		return 0;
	case RD_KV_RAW:
		return 0;
	default:
		return RD_EINVAL;
	}
}

size_t rd_kv_encoded_size(const struct rd_kv_cmd *c)
{
	size_t n = c->client_id != 0 ? RD_KV_SESSION_HDR + 1 : 1;

	if (c->op == RD_KV_RAW)
		return n + c->value_len;
	n += varint_size(c->key_len) + c->key_len;
	if (c->op == RD_KV_PUT)
		n += varint_size(c->value_len) + c->value_len;
	if (c->op == RD_KV_CAS) {
		n += 1 + varint_size(c->value_len) + c->value_len;
		if (c->has_expected)
			n += varint_size(c->expected_len) + c->expected_len;
	}
	return n;
}

static uint8_t *bytes_put(uint8_t *p, const uint8_t *src, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = src[i];
	return p + len;
}

int rd_kv_encode(const struct rd_kv_cmd *c, uint8_t *buf, size_t cap, size_t *len)
{
	uint8_t *p = buf;

	if (check_limits(c) != 0 || (c->client_id != 0 && c->sequence == 0))
		return RD_EINVAL;
	if (rd_kv_encoded_size(c) > cap)
		return RD_ETOOBIG;
	if (c->client_id != 0) {
		*p++ = RD_KV_SESSION;
		for (int i = 7; i >= 0; i--)
			*p++ = (uint8_t)(c->client_id >> (8 * i));
		for (int i = 7; i >= 0; i--)
			*p++ = (uint8_t)(c->sequence >> (8 * i));
	}
	*p++ = c->op;
	if (c->op == RD_KV_RAW) {
		p = bytes_put(p, c->value, c->value_len);
		*len = (size_t)(p - buf);
		return 0;
	}
	p = varint_put(p, c->key_len);
	p = bytes_put(p, c->key, c->key_len);
	if (c->op == RD_KV_CAS) {
		*p++ = c->has_expected ? 1 : 0;
		if (c->has_expected) {
			p = varint_put(p, c->expected_len);
			p = bytes_put(p, c->expected, c->expected_len);
		}
	}
	if (c->op == RD_KV_PUT || c->op == RD_KV_CAS) {
		p = varint_put(p, c->value_len);
		p = bytes_put(p, c->value, c->value_len);
	}
	*len = (size_t)(p - buf);
	return 0;
}

struct cursor {
	const uint8_t *p, *end;
};

static int get_varint(struct cursor *c, uint32_t *out)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 35; shift += 7) {
		if (c->p == c->end)
			return RD_ECORRUPT;
		uint8_t b = *c->p++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0) {
			if (v > UINT32_MAX)
				return RD_ECORRUPT;
			*out = (uint32_t)v;
			return 0;
		}
	}
	return RD_ECORRUPT;
}

static int get_bytes(struct cursor *c, uint32_t *len, const uint8_t **out)
{
	if (get_varint(c, len) != 0)
		return RD_ECORRUPT;
	if ((size_t)(c->end - c->p) < *len)
		return RD_ECORRUPT;
	*out = c->p;
	c->p += *len;
	return 0;
}

static uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

int rd_kv_decode(const uint8_t *data, size_t len, struct rd_kv_cmd *cmd, char *msg)
{
	struct rd_kv_cmd k = {0};

	if (len > 0 && data[0] == RD_KV_SESSION) {
		if (len < RD_KV_SESSION_HDR + 1)
			return rd_errorf(msg, RD_ECORRUPT,
			                 "kv command: truncated session header");
		k.client_id = be64(data + 1);
		k.sequence = be64(data + 9);
		if (k.client_id == 0 || k.sequence == 0)
			return rd_errorf(msg, RD_ECORRUPT,
			                 "kv command: session with a zero client id or "
			                 "sequence");
		data += RD_KV_SESSION_HDR;
		len -= RD_KV_SESSION_HDR;
	}
	struct cursor c = {data, data + len};

	if (len == 0)
		return rd_errorf(msg, RD_ECORRUPT, "kv command: empty");
	k.op = *c.p++;
	switch (k.op) {
	case RD_KV_RAW:
		k.value = c.p;
		k.value_len = (uint32_t)(len - 1 > UINT32_MAX ? UINT32_MAX : len - 1);
		if (len - 1 > UINT32_MAX)
			return rd_errorf(msg, RD_EINVAL,
			                 "kv command: raw payload too large");
		*cmd = k;
		return 0;
	case RD_KV_PUT:
	case RD_KV_DELETE:
	case RD_KV_CAS:
		break;
	default:
		return rd_errorf(msg, RD_ECORRUPT, "kv command: unknown op %u", k.op);
	}
	if (get_bytes(&c, &k.key_len, &k.key) != 0)
		return rd_errorf(msg, RD_ECORRUPT, "kv command: truncated key");
	if (k.op == RD_KV_CAS) {
		if (c.p == c.end)
			return rd_errorf(msg, RD_ECORRUPT,
			                 "kv command: truncated cas flags");
		uint8_t flags = *c.p++;
		if (flags & ~1u)
			return rd_errorf(msg, RD_ECORRUPT,
			                 "kv command: bad cas flags 0x%x", flags);
		k.has_expected = flags & 1u;
		if (k.has_expected && get_bytes(&c, &k.expected_len, &k.expected) != 0)
			return rd_errorf(msg, RD_ECORRUPT,
			                 "kv command: truncated expected value");
	}
	if (k.op != RD_KV_DELETE && get_bytes(&c, &k.value_len, &k.value) != 0)
		return rd_errorf(msg, RD_ECORRUPT, "kv command: truncated value");
	if (c.p != c.end)
		return rd_errorf(msg, RD_ECORRUPT, "kv command: %zu trailing bytes",
		                 (size_t)(c.end - c.p));
	if (check_limits(&k) != 0)
		return rd_errorf(msg, RD_EINVAL,
		                 "kv command: key or value outside the limits");
	*cmd = k;
	return 0;
}
