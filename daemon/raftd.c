/*
 * raftd: the multi-raft cluster daemon's main(). Parses arguments and the
 * config, installs signal handling, and runs the node on one libevent base.
 * Everything else lives in libraftd (lib/multiraft/node.h).
 */
#include <event2/event.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "multiraft/node.h"
#include "util/config.h"
#include "util/err.h"
#include "util/log.h"

/* The exit status for a config that does not load or that the node refuses
 * at start (EX_CONFIG in BSD's sysexits.h, which systemd names "CONFIG").
 * Retrying cannot fix it, so systemd/raftd.service lists it in
 * RestartPreventExitStatus= and the unit settles in "failed" instead of
 * restarting; every other failure exits 1. */
#define RAFTD_EXIT_CONFIG 78

struct daemon {
	const char *config_path;
	struct event_base *base;
	struct rd_node *node;
	int signals; /* SIGTERM/SIGINT received so far */
};

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: raftd --config FILE        run the node in the foreground\n"
	        "       raftd --config FILE --restore BACKUP\n"
	        "                                  found a new cluster from BACKUP\n"
	        "                                  (empty data directory), then run\n"
	        "       raftd --config FILE --force-new-cluster\n"
	        "                                  UNSAFE: make this node the only\n"
	        "                                  member of every group it holds\n"
	        "                                  (lost quorum), then run\n"
	        "       raftd --check-config FILE  validate FILE and exit\n"
	        "       raftd --version\n");
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	(void)what;
	if (++d->signals > 1) {
		rd_log_warn("second signal %d: exiting at once", (int)sig);
		_exit(1);
	}
	rd_log_notice("signal %d: shutting down", (int)sig);
	rd_node_shutdown(d->node);
}

/* SIGHUP: re-read the config file; apply the log level and the TLS files.
 * A file that no longer parses changes nothing. */
static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	struct rd_config *cfg = malloc(sizeof *cfg);
	char msg[RD_ERRMSG_SIZE];

	(void)sig, (void)what;
	if (cfg == NULL)
		return;
	if (rd_config_load(cfg, d->config_path, msg) != 0) {
		rd_log_err("config reload failed, keeping the current settings: %s", msg);
	} else {
		rd_log_set_level(cfg->log_level);
		rd_node_reload(d->node, cfg);
		rd_log_notice("config reloaded path=%s level=%s", d->config_path,
		              rd_log_level_name(cfg->log_level));
	}
	free(cfg);
}

int main(int argc, char **argv)
{
	struct daemon d = {0};
	struct rd_config *cfg;
	struct event *ev_term, *ev_int, *ev_hup;
	char msg[RD_ERRMSG_SIZE];
	int rv;

	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("raftd %s\n", RD_VERSION);
		return 0;
	}
	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	const char *restore = NULL;
	bool force_new = false;
	if (argc == 5 && strcmp(argv[1], "--config") == 0 &&
	    strcmp(argv[3], "--restore") == 0) {
		restore = argv[4];
		argc = 3;
	} else if (argc == 4 && strcmp(argv[1], "--config") == 0 &&
	           strcmp(argv[3], "--force-new-cluster") == 0) {
		force_new = true;
		argc = 3;
	}
	if (argc != 3 || (strcmp(argv[1], "--config") != 0 &&
	                  strcmp(argv[1], "--check-config") != 0)) {
		usage(stderr);
		return 2;
	}
	cfg = malloc(sizeof *cfg);
	if (cfg == NULL)
		return 1;
	if (rd_config_load(cfg, argv[2], msg) != 0) {
		rd_log_err("invalid config: %s", msg);
		free(cfg);
		return RAFTD_EXIT_CONFIG;
	}
	if (strcmp(argv[1], "--check-config") == 0) {
		printf("%s: ok\n", argv[2]);
		free(cfg);
		return 0;
	}
	rd_log_set_level(cfg->log_level);
	if (restore != NULL && (rv = rd_node_restore(cfg, restore, msg)) != 0) {
		rd_log_err("cannot restore: %s", msg);
		free(cfg);
		return rv == RD_ECONFIG ? RAFTD_EXIT_CONFIG : 1;
	}
	if (force_new && (rv = rd_node_force_new_cluster(cfg, msg)) != 0) {
		rd_log_err("cannot force a new cluster: %s", msg);
		free(cfg);
		return 1;
	}
	d.config_path = argv[2];
	d.base = event_base_new();
	if (d.base == NULL) {
		rd_log_err("cannot create the event loop");
		return 1;
	}
	rv = rd_node_start(cfg, d.base, &d.node, msg);
	free(cfg);
	if (rv != 0) {
		rd_log_err("cannot start: %s", msg);
		event_base_free(d.base);
		return rv == RD_ECONFIG ? RAFTD_EXIT_CONFIG : 1;
	}
	ev_term = evsignal_new(d.base, SIGTERM, on_stop_signal, &d);
	ev_int = evsignal_new(d.base, SIGINT, on_stop_signal, &d);
	ev_hup = evsignal_new(d.base, SIGHUP, on_hup, &d);
	evsignal_add(ev_term, NULL);
	evsignal_add(ev_int, NULL);
	evsignal_add(ev_hup, NULL);
	signal(SIGPIPE, SIG_IGN);

	event_base_dispatch(d.base);

	rv = rd_node_exit_code(d.node);
	rd_node_free(d.node);
	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_hup);
	event_base_free(d.base);
	rd_log_notice("stopped exit=%d", rv);
	return rv;
}
