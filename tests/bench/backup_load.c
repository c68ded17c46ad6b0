/*
 * State loader for `make bench-backup`: writes MB megabytes of KV state
 * into a raftd through its socket, as puts of VALUE_KIB KiB values
 * (keys "bk00000000", ...), WINDOW requests in flight on one connection.
 * Prints "loaded <bytes> bytes in <s> s". Exits 1 on any failed put.
 *
 * usage: backup_load SOCKET MB
 */
#include "put_loader.h"

#define VALUE_KIB 256
#define WINDOW    16

int main(int argc, char **argv)
{
	return rd_bench_put_load_main(argc, argv, "backup_load", true, "bk",
	                              VALUE_KIB * 1024, WINDOW);
}
