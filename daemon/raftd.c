/*
 * raftd: the multi-raft cluster daemon's main(). Everything but argument
 * handling lives in libraftd.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/config.h"
#include "util/err.h"
#include "util/log.h"

static void usage(FILE *out)
{
	fprintf(out, "usage: raftd --config FILE      run the node in the foreground\n"
		     "       raftd --check-config FILE  validate FILE and exit\n"
		     "       raftd --version\n");
}

int main(int argc, char **argv)
{
	struct rd_config cfg;
	char msg[RD_ERRMSG_SIZE];

	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("raftd %s\n", RD_VERSION);
		return 0;
	}
	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc != 3 ||
	    (strcmp(argv[1], "--config") != 0 && strcmp(argv[1], "--check-config") != 0)) {
		usage(stderr);
		return 2;
	}
	if (rd_config_load(&cfg, argv[2], msg) != 0) {
		rd_log_err("invalid config: %s", msg);
		return 1;
	}
	if (strcmp(argv[1], "--check-config") == 0) {
		printf("%s: ok\n", argv[2]);
		return 0;
	}
	rd_log_err("the node runtime is not built yet");
	return 1;
}
