#include "util/hash.h"

#define FNV_PRIME 0x100000001b3ull

uint64_t rd_fnv1a64_update(uint64_t h, const void *p, size_t len)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < len; i++) {
		h ^= b[i];
		h *= FNV_PRIME;
	}
	return h;
}

uint64_t rd_fnv1a64(const void *p, size_t len)
{
	return rd_fnv1a64_update(RD_FNV1A64_INIT, p, len);
}
