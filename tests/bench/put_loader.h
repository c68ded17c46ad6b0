/*
 * The put loader the state-loading benchmarks share (backup_load,
 * join_load): puts of keys "<prefix>00000000", ... through a raftd's client
 * socket, a window of requests in flight on one connection.
 */
#ifndef RD_TESTS_BENCH_PUT_LOADER_H
#define RD_TESTS_BENCH_PUT_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Put `total` keys "<prefix>%08u" (0, 1, ...) with values of `value_len`
 * bytes ('v', the key's number in the first 8 bytes so that values differ)
 * through the socket at `sock`, at most `window` unanswered. Returns 0 once
 * every put was answered OK, 1 after printing to stderr (under `prog`'s
 * name) why not: no connection, a lost connection or a failed put. */
int rd_bench_put_load(const char *prog, const char *sock, const char *prefix,
                      uint64_t total, size_t value_len, unsigned window);

/* A loader's main: `prog SOCKET MB` (`by_mb`: as many puts as make MB
 * megabytes of values) or `prog SOCKET COUNT` (COUNT puts), through
 * rd_bench_put_load; prints "loaded <bytes> bytes in <s> s" or "loaded
 * <count> keys in <s> s". Returns the exit status: 2 on bad usage. */
int rd_bench_put_load_main(int argc, char **argv, const char *prog, bool by_mb,
                           const char *prefix, size_t value_len, unsigned window);

#endif
