/* The KV command format and the key-to-vShard hash (lib/storage/kv.h): the
 * encoder and decoder agree, the decoder rejects every malformed input, and
 * the hash matches the documented FNV-1a 64 vectors. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "storage/kv.h"
#include "util/hash.h"
#include "util/err.h"

static const uint8_t *B(const char *s)
{
	return (const uint8_t *)s;
}

/* A PUT of `k` = `v` (both borrowed). */
static struct rd_kv_cmd kv_put(const char *k, const char *v)
{
	struct rd_kv_cmd c = {.op = RD_KV_PUT,
	                      .key = B(k),
	                      .key_len = (uint32_t)strlen(k),
	                      .value = B(v),
	                      .value_len = (uint32_t)strlen(v)};
	return c;
}

static void roundtrip(const struct rd_kv_cmd *c)
{
	uint8_t buf[256];
	size_t len = 0;
	struct rd_kv_cmd d;
	cr_assert_eq(rd_kv_encode(c, buf, sizeof buf, &len), 0);
	cr_assert_eq(len, rd_kv_encoded_size(c));
	cr_assert_eq(rd_kv_decode(buf, len, &d, NULL), 0);
	cr_assert_eq(d.op, c->op);
	if (c->op != RD_KV_RAW) {
		cr_assert_eq(d.key_len, c->key_len);
		cr_assert_eq(memcmp(d.key, c->key, c->key_len), 0);
	}
	if (c->op != RD_KV_DELETE) {
		cr_assert_eq(d.value_len, c->value_len);
		cr_assert_eq(memcmp(d.value, c->value, c->value_len), 0);
	}
	cr_assert_eq(d.client_id, c->client_id);
	cr_assert_eq(d.sequence, c->client_id != 0 ? c->sequence : 0);
	cr_assert_eq(d.has_expected, c->op == RD_KV_CAS && c->has_expected);
	if (d.has_expected) {
		cr_assert_eq(d.expected_len, c->expected_len);
		cr_assert_eq(memcmp(d.expected, c->expected, c->expected_len), 0);
	}
	/* Every strict prefix is truncated, hence malformed. */
	for (size_t n = 0; n < len; n++)
		if (c->op != RD_KV_RAW || n == 0)
			cr_assert_neq(rd_kv_decode(buf, n, &d, NULL), 0, "prefix %zu", n);
	/* A trailing byte is malformed too (except RAW, whose payload is the rest). */
	if (c->op != RD_KV_RAW) {
		buf[len] = 0;
		cr_assert_eq(rd_kv_decode(buf, len + 1, &d, NULL), RD_ECORRUPT);
	}
}

Test(kvcodec, every_op_round_trips)
{
	struct rd_kv_cmd put = kv_put("k", "value");
	struct rd_kv_cmd del = {.op = RD_KV_DELETE, .key = B("key2"), .key_len = 4};
	struct rd_kv_cmd cas = {.op = RD_KV_CAS,
	                        .key = B("k"),
	                        .key_len = 1,
	                        .value = B("new"),
	                        .value_len = 3,
	                        .has_expected = true,
	                        .expected = B("old"),
	                        .expected_len = 3};
	struct rd_kv_cmd cas0 = {
	    .op = RD_KV_CAS, .key = B("k"), .key_len = 1, .value = B(""), .value_len = 0};
	struct rd_kv_cmd raw = {.op = RD_KV_RAW, .value = B("opaque"), .value_len = 6};
	uint8_t big[200];
	memset(big, 'x', sizeof big);
	struct rd_kv_cmd longv = {.op = RD_KV_PUT,
	                          .key = big,
	                          .key_len = 130,
	                          .value = big,
	                          .value_len = 200 - 130};
	roundtrip(&put);
	roundtrip(&del);
	roundtrip(&cas);
	roundtrip(&cas0);
	roundtrip(&raw);
	roundtrip(&longv);
}

Test(kvcodec, encoding_is_byte_exact)
{
	struct rd_kv_cmd put = kv_put("ab", "xyz");
	uint8_t buf[16];
	size_t len;
	cr_assert_eq(rd_kv_encode(&put, buf, sizeof buf, &len), 0);
	cr_assert_eq(len, 8);
	cr_assert_eq(memcmp(buf,
	                    "\x01\x02"
	                    "ab"
	                    "\x03"
	                    "xyz",
	                    8),
	             0);
}

Test(kvcodec, decoder_rejects_malformed_input)
{
	struct rd_kv_cmd d;
	char msg[RD_ERRMSG_SIZE];
	cr_assert_eq(rd_kv_decode(NULL, 0, &d, msg), RD_ECORRUPT);
	cr_assert_eq(rd_kv_decode(B("\x09\x01k"), 3, &d, msg), RD_ECORRUPT); /* op */
	cr_assert_eq(rd_kv_decode(B("\x01\x05k"), 3, &d, msg), RD_ECORRUPT); /* klen */
	/* A 6-byte varint and a 5-byte one above 2^32 - 1. */
	cr_assert_eq(rd_kv_decode(B("\x02\x81\x80\x80\x80\x80\x00"), 7, &d, msg),
	             RD_ECORRUPT);
	cr_assert_eq(rd_kv_decode(B("\x02\xff\xff\xff\xff\x1f"), 6, &d, msg),
	             RD_ECORRUPT);
	/* CAS with unknown flag bits. */
	cr_assert_eq(rd_kv_decode(B("\x03\x01k\x02\x00"), 5, &d, msg), RD_ECORRUPT);
	/* Empty key is outside the limits. */
	cr_assert_eq(rd_kv_decode(B("\x02\x00"), 2, &d, msg), RD_EINVAL);
	/* A key longer than RD_KV_KEY_MAX. */
	static uint8_t big[RD_KV_KEY_MAX + 8];
	big[0] = RD_KV_DELETE;
	big[1] = 0x81; /* 4097 = 0x1001: 0x81 0x20 */
	big[2] = 0x20;
	cr_assert_eq(rd_kv_decode(big, 3 + RD_KV_KEY_MAX + 1, &d, msg), RD_EINVAL);
}

Test(kvcodec, encoder_checks_limits_and_capacity)
{
	uint8_t buf[8];
	size_t len;
	struct rd_kv_cmd empty = {.op = RD_KV_PUT, .key = B(""), .key_len = 0};
	struct rd_kv_cmd put = kv_put("k", "0123456789");
	struct rd_kv_cmd bad = {.op = 77, .key = B("k"), .key_len = 1};
	cr_assert_eq(rd_kv_encode(&empty, buf, sizeof buf, &len), RD_EINVAL);
	cr_assert_eq(rd_kv_encode(&bad, buf, sizeof buf, &len), RD_EINVAL);
	cr_assert_eq(rd_kv_encode(&put, buf, sizeof buf, &len), RD_ETOOBIG);
}

/* FNV-1a 64 reference vectors (Fowler/Noll/Vo test suite). */
Test(kvcodec, vshard_hash_is_fnv1a64_mod_1024)
{
	cr_assert_eq(rd_fnv1a64(B(""), 0), 0xcbf29ce484222325ull);
	cr_assert_eq(rd_fnv1a64(B("a"), 1), 0xaf63dc4c8601ec8cull);
	cr_assert_eq(rd_fnv1a64(B("foobar"), 6), 0x85944171f73967e8ull);
	cr_assert_eq(rd_kv_vshard(B("foobar"), 6), 1000);
	for (int i = 0; i < 1000; i++) {
		char k[16];
		int n = snprintf(k, sizeof k, "key%d", i);
		cr_assert_lt(rd_kv_vshard(B(k), (size_t)n), RD_KV_VSHARDS);
	}
}

/* Version 2 (kv.h): a session header in front of a version-1 command; a
 * command without a session keeps its version-1 bytes. */
Test(kvcodec, session_header_round_trips_and_is_byte_exact)
{
	struct rd_kv_cmd c = {.op = RD_KV_PUT,
	                      .key = B("k"),
	                      .key_len = 1,
	                      .value = B("v"),
	                      .value_len = 1,
	                      .client_id = 0x0102030405060708ull,
	                      .sequence = 9};
	uint8_t buf[64];
	size_t len;
	roundtrip(&c);
	cr_assert_eq(rd_kv_encode(&c, buf, sizeof buf, &len), 0);
	const uint8_t want[] = {0x80, 1, 2, 3, 4, 5, 6,         7, 8,   0, 0,
	                        0,    0, 0, 0, 0, 9, RD_KV_PUT, 1, 'k', 1, 'v'};
	cr_assert_eq(len, sizeof want);
	cr_assert_arr_eq(buf, want, len);
	/* Without a session: exactly the version-1 bytes. */
	c.client_id = 0;
	cr_assert_eq(rd_kv_encode(&c, buf, sizeof buf, &len), 0);
	cr_assert_eq(len, sizeof want - RD_KV_SESSION_HDR);
	cr_assert_arr_eq(buf, want + RD_KV_SESSION_HDR, len);
	struct rd_kv_cmd raw = {.op = RD_KV_RAW,
	                        .value = B("xy"),
	                        .value_len = 2,
	                        .client_id = 5,
	                        .sequence = 1};
	roundtrip(&raw);
	/* A session needs a sequence. */
	c.client_id = 4;
	c.sequence = 0;
	cr_assert_eq(rd_kv_encode(&c, buf, sizeof buf, &len), RD_EINVAL);
}

Test(kvcodec, decoder_rejects_malformed_session_headers)
{
	struct rd_kv_cmd d;
	uint8_t m[40] = {0x80,         0, 0,  0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1,
	                 RD_KV_DELETE, 1, 'k'};
	cr_assert_eq(rd_kv_decode(m, 20, &d, NULL), 0);
	cr_assert_eq(d.client_id, 1);
	cr_assert_eq(d.sequence, 1);
	cr_assert_eq(rd_kv_decode(m, 17, &d, NULL), RD_ECORRUPT, "no command");
	m[8] = 0;
	cr_assert_eq(rd_kv_decode(m, 20, &d, NULL), RD_ECORRUPT, "client 0");
	m[8] = 1;
	m[16] = 0;
	cr_assert_eq(rd_kv_decode(m, 20, &d, NULL), RD_ECORRUPT, "sequence 0");
	m[16] = 1;
	/* A header after a header is an unknown op. */
	memmove(m + 17, m, 20);
	cr_assert_eq(rd_kv_decode(m, 37, &d, NULL), RD_ECORRUPT);
}
