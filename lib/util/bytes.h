/*
 * Big-endian integers in byte buffers: the one encoding of every length
 * and number the formats we own put on disk or on the wire in a fixed
 * width (storage keys and values, storage/schema.h; frame headers,
 * transport/wire.h and util/frame.h). `p` holds at least 8 (be64) or 4
 * (be32) bytes.
 */
#ifndef RD_UTIL_BYTES_H
#define RD_UTIL_BYTES_H

#include <stdint.h>

static inline void rd_be64_put(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static inline uint64_t rd_be64_get(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static inline void rd_be32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline uint32_t rd_be32_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

#endif
