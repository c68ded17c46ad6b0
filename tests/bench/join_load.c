/*
 * Key loader for `make bench-join`: writes keys "jk00000000" ... (COUNT of
 * them, 100-byte values) into a raftd through its socket, WINDOW puts in
 * flight on one connection. Prints "loaded <count> keys in <s> s". Exits 1
 * on any failed put.
 *
 * usage: join_load SOCKET COUNT
 */
#include "put_loader.h"

#define VALUE_LEN 100
#define WINDOW    32

int main(int argc, char **argv)
{
	return rd_bench_put_load_main(argc, argv, "join_load", false, "jk", VALUE_LEN,
	                              WINDOW);
}
