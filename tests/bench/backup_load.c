/*
 * State loader for `make bench-backup`: writes MB megabytes of KV state
 * into a raftd through its socket, as puts of VALUE_KIB KiB values
 * (keys "bk00000000", ...), WINDOW requests in flight on one connection.
 * Prints "loaded <bytes> bytes in <s> s". Exits 1 on any failed put.
 *
 * usage: backup_load SOCKET MB
 */
#include <stdio.h>
#include <stdlib.h>

#include "put_loader.h"
#include "util/clock.h"

#define VALUE_KIB 256
#define WINDOW    16

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: backup_load SOCKET MB\n");
		return 2;
	}
	uint64_t total = strtoull(argv[2], NULL, 10) * 1024 / VALUE_KIB;
	uint64_t t0 = rd_clock_now_ns();
	if (rd_bench_put_load("backup_load", argv[1], "bk", total, VALUE_KIB * 1024,
	                      WINDOW) != 0)
		return 1;
	printf("loaded %llu bytes in %.1f s\n",
	       (unsigned long long)(total * VALUE_KIB * 1024),
	       (double)(rd_clock_now_ns() - t0) / 1e9);
	return 0;
}
