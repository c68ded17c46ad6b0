/*
 * FNV-1a 64 (Fowler, Noll, Vo; draft-eastlake-fnv), the one hash of the
 * tree: a key's vShard (storage/kv.h), the cluster id and the state hash
 * that compares replicas. Not cryptographic; stable across versions and
 * platforms, since vShards of stored keys depend on it.
 */
#ifndef RD_UTIL_HASH_H
#define RD_UTIL_HASH_H

#include <stddef.h>
#include <stdint.h>

/* The FNV-1a 64 offset basis: the state to start an incremental hash. */
#define RD_FNV1A64_INIT 0xcbf29ce484222325ull

/* Fold `len` bytes at `p` into the running hash `h` and return the new
 * state; `p` may be NULL only when `len` is 0. Hashing pieces one after the
 * other gives the hash of their concatenation. */
uint64_t rd_fnv1a64_update(uint64_t h, const void *p, size_t len);

/* FNV-1a 64 of `len` bytes at `p`: rd_fnv1a64_update(RD_FNV1A64_INIT, ...).
 * FNV-1a 64 of "foobar" is 0x85944171f73967e8. */
uint64_t rd_fnv1a64(const void *p, size_t len);

#endif
