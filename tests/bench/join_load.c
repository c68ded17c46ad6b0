/*
 * Key loader for `make bench-join`: writes keys "jk00000000" ... (COUNT of
 * them, 100-byte values) into a raftd through its socket, WINDOW puts in
 * flight on one connection. Prints "loaded <count> keys in <s> s". Exits 1
 * on any failed put.
 *
 * usage: join_load SOCKET COUNT
 */
#include <stdio.h>
#include <stdlib.h>

#include "put_loader.h"
#include "util/clock.h"

#define VALUE_LEN 100
#define WINDOW    32

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: join_load SOCKET COUNT\n");
		return 2;
	}
	uint64_t total = strtoull(argv[2], NULL, 10);
	uint64_t t0 = rd_clock_now_ns();
	if (rd_bench_put_load("join_load", argv[1], "jk", total, VALUE_LEN, WINDOW) != 0)
		return 1;
	printf("loaded %llu keys in %.1f s\n", (unsigned long long)total,
	       (double)(rd_clock_now_ns() - t0) / 1e9);
	return 0;
}
