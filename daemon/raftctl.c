/*
 * raftctl: the command-line client of the local raftd socket.
 */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("raftctl %s\n", RD_VERSION);
		return 0;
	}
	fprintf(stderr, "usage: raftctl [-s SOCKET] [--json] COMMAND ...\n");
	return 2;
}
