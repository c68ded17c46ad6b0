/* conf/: the production template sets every key the parser knows, each
 * under its own section with a comment above it, shows the true default of
 * every optional key, and loads; the local cluster configs load; and
 * `make install` puts binaries, units, manual pages and the config where
 * the Makefile's install target and conf/man/raftd.8 say, never overwriting
 * an existing raftd.conf. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sh.h"
#include "util/config.h"
#include "util/config_keys.h"
#include "util/err.h"

static char dir[256];

static void setup(void)
{
	ops_mkdtemp(dir);
}

static void teardown(void)
{
	ops_rmrf(dir);
}

TestSuite(conf, .init = setup, .fini = teardown, .timeout = 120);

/* The line "key = ..." or "# key = ..." in section [sec] of `text`, or
 * NULL. */
static const char *find_key(const char *text, const char *sec, const char *key)
{
	char head[80], line[96], commented[96];
	const char *start, *end;

	snprintf(head, sizeof head, "\n[%s]\n", sec);
	start = strstr(text, head);
	if (start == NULL)
		return NULL;
	end = strstr(start + 1, "\n[");
	snprintf(line, sizeof line, "\n%s = ", key);
	snprintf(commented, sizeof commented, "\n# %s = ", key);
	for (const char *pat = line; pat != NULL; pat = pat == line ? commented : NULL) {
		const char *at = strstr(start, pat);
		if (at != NULL && (end == NULL || at < end))
			return at + 1;
	}
	return NULL;
}

/* Every key of the KEYS table (lib/util/config_keys.h) is in the template,
 * in its section, after a comment line. */
Test(conf, template_has_every_key_with_a_comment)
{
	char *text = ops_read_file(ops_src("conf/raftd.conf.example"));

	cr_assert_not_null(text);
	cr_assert_geq(K_COUNT, 20);
	for (int k = 0; k < K_COUNT; k++) {
		const char *sec = rd_config_keys[k].section, *key = rd_config_keys[k].key;
		const char *at = find_key(text, sec, key);
		cr_assert_not_null(at, "conf/raftd.conf.example lacks [%s] %s", sec, key);
		/* The line before is a comment (not a key of its own). */
		const char *prev = at - 2;
		while (prev > text && *prev != '\n')
			prev--;
		cr_assert(prev[1] == '#' && strncmp(prev + 1, "# join =", 8) != 0,
		          "[%s] %s has no comment above it", sec, key);
	}
	free(text);
}

/* The template, with its /etc/raftd files replaced by readable ones, loads;
 * every optional key it sets holds the parser's default, so its comments
 * tell the truth. */
Test(conf, template_loads_and_shows_the_defaults)
{
	char path[512], msg[RD_ERRMSG_SIZE] = "", repl[300];
	struct rd_config c, d;

	cr_assert_eq(ops_sh(NULL, 0, "cd '%s' && touch ca.pem node1.pem node1.key", dir),
	             0);
	char *text = ops_read_file(ops_src("conf/raftd.conf.example"));
	cr_assert_not_null(text);
	snprintf(repl, sizeof repl, "%s/", dir);
	char *fixed = ops_replace(text, "/etc/raftd/", repl);
	snprintf(path, sizeof path, "%s/raftd.conf", dir);
	ops_write_file(path, fixed);
	free(fixed);
	free(text);

	cr_assert_eq(rd_config_load(&c, path, msg), 0, "%s", msg);
	rd_config_defaults(&d);
	cr_assert_eq(c.data_groups, d.data_groups);
	cr_assert_eq(c.replication_factor, d.replication_factor);
	cr_assert_eq(c.tick_ms, d.tick_ms);
	cr_assert_eq(c.election_ticks, d.election_ticks);
	cr_assert_eq(c.heartbeat_ticks, d.heartbeat_ticks);
	cr_assert_eq(c.max_inflight_msgs, d.max_inflight_msgs);
	cr_assert_eq(c.max_inflight_bytes, d.max_inflight_bytes);
	cr_assert_eq(c.max_msg_bytes, d.max_msg_bytes);
	cr_assert_eq(c.snapshot_entries, d.snapshot_entries);
	cr_assert_eq(c.flush_interval_ms, d.flush_interval_ms);
	cr_assert_eq(c.log_cache_bytes, d.log_cache_bytes);
	cr_assert_eq(c.max_frame_bytes, d.max_frame_bytes);
	cr_assert_eq(c.idle_timeout_ms, d.idle_timeout_ms);
	cr_assert_eq(c.keepalive_ms, d.keepalive_ms);
	cr_assert_eq(c.handshake_timeout_ms, d.handshake_timeout_ms);
	cr_assert_eq(c.tls_mode, d.tls_mode);
	cr_assert_str_eq(c.socket_path, d.socket_path);
	cr_assert_eq(c.socket_mode, d.socket_mode);
	cr_assert_eq(c.request_timeout_ms, d.request_timeout_ms);
	cr_assert_eq(c.admin_enabled, d.admin_enabled);
	cr_assert_str_eq(c.admin_listen.text, d.admin_listen.text);
	cr_assert_eq(c.log_level, d.log_level);
	cr_assert_eq(c.has_join, false);
	cr_assert_eq(c.n_peers, 3);

	/* And the daemon agrees. */
	char out[1024];
	cr_assert_eq(ops_sh(out, sizeof out, "'%s' --check-config '%s' 2>&1",
	                    ops_build("raftd"), path),
	             0, "%s", out);
}

/* conf/node1..3.conf load (from the repository root, with the certificates
 * that make run creates standing in as placeholders). */
Test(conf, local_cluster_configs_load)
{
	char out[2048];

	for (unsigned i = 1; i <= 3; i++) {
		int rv =
		    ops_sh(out, sizeof out,
		           "cd '%s' && mkdir -p build/run/certs && cd build/run/certs && "
		           "touch ca.pem node%u.pem node%u.key && cd '%s' && "
		           "'%s' --check-config '%s/conf/node%u.conf' 2>&1",
		           dir, i, i, dir, ops_build("raftd"), ops_src(""), i);
		cr_assert_eq(rv, 0, "node%u.conf: %s", i, out);
	}
}

static bool exists(const char *rel, mode_t want_mode)
{
	char path[512];
	struct stat st;
	snprintf(path, sizeof path, "%s/%s", dir, rel);
	if (stat(path, &st) != 0)
		return false;
	return want_mode == 0 || (st.st_mode & 0777) == want_mode;
}

/* make install (DESTDIR, PREFIX): binaries, units pointing at the installed
 * binary, the sysusers file, the manual pages, the config and its template;
 * an existing raftd.conf survives a second install. */
Test(conf, make_install_layout)
{
	char out[16384];
	const char *sanitize = strstr(ops_build(""), "/asan/") != NULL ? "1" : "0";

	/* A fresh make, not the one running this test (its jobserver and
	 * variables must not leak in). */
	int rv = ops_sh(out, sizeof out,
	                "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C '%s' install "
	                "DESTDIR='%s' PREFIX=/opt/raftd SANITIZE=%s 2>&1",
	                ops_src(""), dir, sanitize);
	cr_assert_eq(rv, 0, "make install failed:\n%s", out);

	cr_assert(exists("opt/raftd/bin/raftd", 0755));
	cr_assert(exists("opt/raftd/bin/raftctl", 0755));
	cr_assert(exists("opt/raftd/share/man/man8/raftd.8", 0644));
	cr_assert(exists("opt/raftd/share/man/man1/raftctl.1", 0644));
	cr_assert(exists("opt/raftd/share/man/man5/raftd.conf.5", 0644));
	cr_assert(exists("usr/lib/sysusers.d/raftd.conf", 0644));
	cr_assert(exists("etc/raftd/raftd.conf", 0640));
	cr_assert(exists("etc/raftd/raftd.conf.example", 0644));
	for (int i = 0; i < 2; i++) {
		char path[512];
		snprintf(path, sizeof path, "%s/lib/systemd/system/%s", dir,
		         i == 0 ? "raftd.service" : "raftd@.service");
		char *unit = ops_read_file(path);
		cr_assert_not_null(unit, "%s", path);
		cr_assert_not_null(
		    strstr(unit, "\nExecStart=/opt/raftd/bin/raftd --config "), "%s",
		    unit);
		cr_assert_null(strstr(unit, "/usr/local/bin"), "%s", unit);
		free(unit);
	}

	char conf[512];
	snprintf(conf, sizeof conf, "%s/etc/raftd/raftd.conf", dir);
	ops_write_file(conf, "# edited by the operator\n");
	rv = ops_sh(out, sizeof out,
	            "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C '%s' install "
	            "DESTDIR='%s' PREFIX=/opt/raftd SANITIZE=%s 2>&1",
	            ops_src(""), dir, sanitize);
	cr_assert_eq(rv, 0, "second make install failed:\n%s", out);
	char *kept = ops_read_file(conf);
	cr_assert_str_eq(kept, "# edited by the operator\n");
	free(kept);
}
