#include "harness.h"
#include "common/http.h"
#include "util/clock.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* `name` under the directory in environment variable `env` (else `dflt`),
 * in one of four rotating buffers so a call can take a few at once. */
static const char *path_under(const char *env, const char *dflt, const char *name)
{
	static char buf[4][512];
	static int k;
	const char *d = getenv(env);
	char *p = buf[k++ % 4];
	snprintf(p, 512, "%s/%s", d != NULL ? d : dflt, name);
	return p;
}

const char *rd_h_build_path(const char *name)
{
	return path_under("RD_BUILD", "build", name);
}

const char *rd_h_src_path(const char *name)
{
	return path_under("RD_SRC", ".", name);
}

int rd_h_free_port(bool udp)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
	                         .sin_addr.s_addr = htonl(0x7f000001)};
	socklen_t len = sizeof sa;
	int fd = socket(AF_INET, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static int run(const char *const argv[], char *out, size_t size, const char *errpath)
{
	int pipefd[2], status;
	size_t got = 0;
	pid_t pid;

	cr_assert_eq(pipe(pipefd), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int e = open(errpath != NULL ? errpath : "/dev/null",
		             O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(pipefd[1], 1);
		dup2(e, 2);
		close(pipefd[0]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pipefd[1]);
	for (;;) {
		ssize_t r = read(pipefd[0], out + got, size - 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
		if (got == size - 1)
			break;
	}
	out[got] = '\0';
	close(pipefd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void rd_h_cluster_init(struct rd_h_cluster *c, unsigned n, const struct rd_h_opts *o)
{
	char cmd[1024], peers[1024] = "";
	unsigned groups = o != NULL && o->data_groups ? o->data_groups : 4;
	const char *level = getenv("RD_TEST_LOG_LEVEL");

	if (level == NULL)
		level = o != NULL && o->log_level ? o->log_level : "info";

	memset(c, 0, sizeof *c);
	c->n = n;
	snprintf(c->dir, sizeof c->dir, "/tmp/rd-cluster-XXXXXX");
	cr_assert_not_null(mkdtemp(c->dir));
	c->runner_keeps = rd_h_runner_keeps(c->dir);
	snprintf(cmd, sizeof cmd, "%s all %s/certs %u >/dev/null 2>&1",
	         rd_h_src_path("conf/raftd-certs"), c->dir, n);
	cr_assert_eq(system(cmd), 0, "conf/raftd-certs failed");
	char dir[sizeof c->dir];
	memcpy(dir, c->dir, sizeof dir);
	for (unsigned i = 1; i <= n; i++) {
		struct rd_h_node *nd = &c->nodes[i - 1];
		nd->id = i;
		nd->quic_port = rd_h_free_port(true);
		nd->admin_port = rd_h_free_port(false);
		snprintf(nd->conf, sizeof nd->conf, "%s/node%u.conf", dir, i);
		snprintf(nd->sock, sizeof nd->sock, "%s/node%u.sock", dir, i);
		snprintf(nd->log, sizeof nd->log, "%s/node%u.log", dir, i);
	}
	unsigned founders =
	    o != NULL && o->founders != 0 && o->founders < n ? o->founders : n;
	for (unsigned i = 1; i <= n; i++) {
		struct rd_h_node *nd = &c->nodes[i - 1];
		FILE *f = fopen(nd->conf, "w");
		size_t l = 0;
		bool join = i > founders;
		peers[0] = '\0';
		for (unsigned k = 0; k < founders; k++) {
			unsigned id = o != NULL && o->rotate_peers
			                  ? (i - 1 + k) % founders + 1
			                  : k + 1;
			if (join)
				l += (size_t)snprintf(peers + l, sizeof peers - l,
				                      "%s127.0.0.1:%d", k > 0 ? ", " : "",
				                      c->nodes[id - 1].quic_port);
			else
				l += (size_t)snprintf(
				    peers + l, sizeof peers - l, "%s%u@127.0.0.1:%d",
				    k > 0 ? ", " : "", id, c->nodes[id - 1].quic_port);
		}
		cr_assert_not_null(f);
		fprintf(f,
		        "[node]\nid = %u\ndata_dir = %s/data%u\n"
		        "[cluster]\nlisten = 127.0.0.1:%d\n%s = %s\ndata_groups = %u\n"
		        "replication_factor = %u\n"
		        "[tls]\nmode = mutual\nca = %s/certs/ca.pem\n"
		        "cert = %s/certs/node%u.pem\nkey = %s/certs/node%u.key\n"
		        "[control]\nsocket = %s\nsocket_mode = 0600\n"
		        "[admin]\nlisten = 127.0.0.1:%d\n"
		        "[log]\nlevel = %s\n%s",
		        i, c->dir, i, nd->quic_port, join ? "join" : "peers", peers,
		        groups, o != NULL && o->replication ? o->replication : 3u, c->dir,
		        c->dir, i, c->dir, i, nd->sock, nd->admin_port, level,
		        o != NULL && o->extra_conf ? o->extra_conf : "");
		fclose(f);
	}
}

void rd_h_start(struct rd_h_cluster *c, unsigned i)
{
	struct rd_h_node *nd = &c->nodes[i - 1];
	pid_t pid;

	cr_assert_eq(nd->pid, 0, "node %u already running", i);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int e = open(nd->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		/* A test that times out or crashes never reaches its cleanup:
		 * its nodes die with it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(e, 2);
		dup2(e, 1);
		if (nd->restore[0] != '\0')
			execl(rd_h_build_path("raftd"), "raftd", "--config", nd->conf,
			      "--restore", nd->restore, (char *)NULL);
		else if (nd->force_new)
			execl(rd_h_build_path("raftd"), "raftd", "--config", nd->conf,
			      "--force-new-cluster", (char *)NULL);
		else
			execl(rd_h_build_path("raftd"), "raftd", "--config", nd->conf,
			      (char *)NULL);
		_exit(127);
	}
	nd->pid = pid;
}

void rd_h_start_all(struct rd_h_cluster *c)
{
	for (unsigned i = 1; i <= c->n; i++)
		rd_h_start(c, i);
}

int rd_h_stop(struct rd_h_cluster *c, unsigned i, int sig)
{
	struct rd_h_node *nd = &c->nodes[i - 1];
	int status = 0;

	if (nd->pid == 0)
		return 0;
	kill(nd->pid, sig);
	while (waitpid(nd->pid, &status, 0) < 0 && errno == EINTR)
		;
	nd->pid = 0;
	return status;
}

static void vctl(struct rd_h_cluster *c, unsigned i, const char **argv, va_list ap)
{
	int k = 0;
	const char *a;
	argv[k++] = rd_h_build_path("raftctl");
	argv[k++] = "-s";
	argv[k++] = c->nodes[i - 1].sock;
	while ((a = va_arg(ap, const char *)) != NULL && k < 30)
		argv[k++] = a;
	argv[k] = NULL;
}

int rd_h_ctl(struct rd_h_cluster *c, unsigned i, char *out, size_t size, ...)
{
	const char *argv[32];
	va_list ap;
	va_start(ap, size);
	vctl(c, i, argv, ap);
	va_end(ap);
	return run(argv, out, size, NULL);
}

static double now_s(void)
{
	return (double)rd_clock_now_ns() / 1e9;
}

int rd_h_ctl_retry(struct rd_h_cluster *c, unsigned i, unsigned secs, char *out,
                   size_t size, ...)
{
	const char *argv[32];
	double end = now_s() + secs;
	va_list ap;
	int rv;

	va_start(ap, size);
	vctl(c, i, argv, ap);
	va_end(ap);
	for (;;) {
		rv = run(argv, out, size, NULL);
		if ((rv != 1 && rv != 3) || now_s() > end)
			return rv;
		usleep(100 * 1000);
	}
}

void rd_h_put(struct rd_h_cluster *c, unsigned i, unsigned secs, const char *key,
              const char *value)
{
	char out[4096];
	int rv =
	    rd_h_ctl_retry(c, i, secs, out, sizeof out, "put", key, value, (char *)NULL);

	cr_assert_eq(rv, 0, "put %s on node %u: exit %d (logs in %s)", key, i, rv,
	             c->dir);
}

/* "<prefix><k>", valid until the next call. */
static const char *nth_key(const char *prefix, int k)
{
	static char key[64];

	snprintf(key, sizeof key, "%s%d", prefix, k);
	return key;
}

void rd_h_put_keys(struct rd_h_cluster *c, unsigned nodes, unsigned secs,
                   const char *prefix, int n, const char *value)
{
	for (int k = 0; k < n; k++)
		rd_h_put(c, 1 + (unsigned)k % nodes, secs, nth_key(prefix, k), value);
}

void rd_h_expect_get(struct rd_h_cluster *c, unsigned i, unsigned secs, const char *key,
                     const char *want)
{
	char out[4096], expect[4096];
	int rv = rd_h_ctl_retry(c, i, secs, out, sizeof out, "get", key, (char *)NULL);

	cr_assert_eq(rv, 0, "get %s on node %u: exit %d (logs in %s)", key, i, rv,
	             c->dir);
	snprintf(expect, sizeof expect, "%s\n", want);
	cr_assert_str_eq(out, expect, "node %u key %s", i, key);
}

void rd_h_expect_keys(struct rd_h_cluster *c, unsigned nodes, unsigned secs,
                      const char *prefix, int n, const char *want)
{
	for (int k = 0; k < n; k++)
		rd_h_expect_get(c, 1 + (unsigned)k % nodes, secs, nth_key(prefix, k),
		                want);
}

bool rd_h_wait_ready(struct rd_h_cluster *c, unsigned secs)
{
	double end = now_s() + secs;
	char out[256];

	for (unsigned i = 1; i <= c->n; i++) {
		if (c->nodes[i - 1].pid == 0)
			continue;
		while (rd_h_ctl(c, i, out, sizeof out, "ready", (char *)NULL) != 0) {
			if (now_s() > end)
				return false;
			usleep(100 * 1000);
		}
	}
	return true;
}

void rd_h_cluster_up(struct rd_h_cluster *c, unsigned n, unsigned groups, unsigned secs)
{
	struct rd_h_opts o = {.data_groups = groups};

	rd_h_cluster_init(c, n, &o);
	rd_h_start_all(c);
	cr_assert(rd_h_wait_ready(c, secs), "cluster not ready (logs in %s)", c->dir);
}

int rd_h_raftd(char *err, size_t size, const char *arg1, const char *arg2)
{
	char errpath[] = "/tmp/rd-raftd-err-XXXXXX";
	const char *argv[] = {rd_h_build_path("raftd"), arg1, arg2, NULL};
	char out[256];
	int fd = mkstemp(errpath), rv;
	FILE *f;
	size_t n;

	close(fd);
	rv = run(argv, out, sizeof out, errpath);
	f = fopen(errpath, "r");
	n = f != NULL ? fread(err, 1, size - 1, f) : 0;
	err[n] = '\0';
	if (f != NULL)
		fclose(f);
	unlink(errpath);
	return rv;
}

void rd_h_cluster_free(struct rd_h_cluster *c)
{
	char cmd[256];
	for (unsigned i = 1; i <= c->n; i++)
		rd_h_stop(c, i, SIGKILL);
	if (getenv("RD_KEEP_TMP") == NULL && !c->runner_keeps && c->dir[0] != '\0') {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", c->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", c->dir);
	}
}

bool rd_h_log_has(const struct rd_h_cluster *c, unsigned i, const char *needle)
{
	return rd_h_log_count(c, i, needle, NULL) > 0;
}

unsigned rd_h_log_count(const struct rd_h_cluster *c, unsigned i, const char *needle,
                        const char *also)
{
	char buf[1 << 16];
	FILE *f = fopen(c->nodes[i - 1].log, "r");
	unsigned k = 0;

	if (f == NULL)
		return 0;
	while (fgets(buf, sizeof buf, f) != NULL)
		k += strstr(buf, needle) != NULL &&
		     (also == NULL || strstr(buf, also) != NULL);
	fclose(f);
	return k;
}

int rd_h_wait_exit(struct rd_h_cluster *c, unsigned i, unsigned secs)
{
	struct rd_h_node *nd = &c->nodes[i - 1];
	int status;

	for (unsigned t = 0; t < secs * 10; t++) {
		if (waitpid(nd->pid, &status, WNOHANG) == nd->pid) {
			nd->pid = 0;
			return status;
		}
		usleep(100 * 1000);
	}
	return -1;
}

bool rd_h_wait_log(const struct rd_h_cluster *c, unsigned i, const char *needle,
                   unsigned secs)
{
	for (unsigned t = 0; t < secs * 10; t++) {
		if (rd_h_log_has(c, i, needle))
			return true;
		usleep(100 * 1000);
	}
	return false;
}

/* Whether `raftctl members` output `out` has a row for `id` holding `what`. */
static bool member_row_has(char *out, unsigned id, const char *what)
{
	char *line, *save = NULL;

	for (line = strtok_r(out, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned rid;
		if (sscanf(line, "%u", &rid) == 1 && rid == id &&
		    strstr(line, what) != NULL)
			return true;
	}
	return false;
}

bool rd_h_wait_member(struct rd_h_cluster *c, unsigned i, unsigned id, const char *what,
                      bool want, unsigned secs)
{
	for (unsigned t = 0; t < secs * 10; t++) {
		char out[8192];
		bool found =
		    rd_h_ctl(c, i, out, sizeof out, "members", (char *)NULL) == 0 &&
		    member_row_has(out, id, what);
		if (found == want)
			return true;
		usleep(100 * 1000);
	}
	return false;
}

bool rd_h_wait_registered(struct rd_h_cluster *c, unsigned i, unsigned secs)
{
	for (unsigned t = 0; t < secs * 10; t++) {
		char out[8192];
		if (rd_h_ctl(c, i, out, sizeof out, "members", (char *)NULL) == 0 &&
		    strstr(out, "0000000000000000") == NULL)
			return true;
		usleep(100 * 1000);
	}
	return false;
}

double rd_h_metric(const struct rd_h_cluster *c, unsigned i, const char *name,
                   bool must_answer)
{
	static char out[1 << 20];
	double v = 0;
	size_t len = strlen(name);
	int code = rd_t_http_get(c->nodes[i - 1].admin_port, "/metrics", out, sizeof out);

	if (must_answer)
		cr_assert_eq(code, 200, "node %u: GET /metrics answered %d", i, code);
	else if (code != 200)
		return 0;
	for (const char *p = strstr(out, name); p != NULL; p = strstr(p + 1, name))
		if ((p == out || p[-1] == '\n') && p[len] == ' ') {
			sscanf(p + len, " %lf", &v);
			break;
		}
	return v;
}

/* Call fn with every row of `raftctl groups` of every running node that
 * answers. */
static void each_group_row(struct rd_h_cluster *c,
                           void (*fn)(struct rd_h_cluster *c, unsigned node,
                                      const char *line, void *arg),
                           void *arg)
{
	for (unsigned i = 1; i <= c->n; i++) {
		char out[16384], *line, *save = NULL;
		if (c->nodes[i - 1].pid == 0 ||
		    rd_h_ctl(c, i, out, sizeof out, "groups", (char *)NULL) != 0)
			continue;
		for (line = strtok_r(out, "\n", &save); line != NULL;
		     line = strtok_r(NULL, "\n", &save))
			fn(c, i, line, arg);
	}
}

enum { CHECK_G = 64, CHECK_T = 512 };

static void check_row(struct rd_h_cluster *c, unsigned i, const char *line, void *arg)
{
	unsigned(*seen)[CHECK_T] = arg;
	unsigned g, leader, term;
	char role[16];

	if (sscanf(line, "%u %15s %u %u", &g, role, &leader, &term) != 4 || leader == 0 ||
	    g >= CHECK_G || term >= CHECK_T)
		return;
	if (strcmp(role, "leader") == 0)
		leader = i;
	cr_assert(seen[g][term] == 0 || seen[g][term] == leader,
	          "group %u term %u: leaders %u and %u (logs in %s)", g, term,
	          seen[g][term], leader, c->dir);
	seen[g][term] = leader;
}

void rd_h_check_leaders(struct rd_h_cluster *c)
{
	static unsigned seen[CHECK_G][CHECK_T];

	each_group_row(c, check_row, seen);
}

unsigned rd_h_leader_of(struct rd_h_cluster *c, unsigned asker, unsigned group)
{
	char out[16384], *line, *save = NULL;
	unsigned g, leader;
	char role[16];

	if (rd_h_ctl(c, asker, out, sizeof out, "groups", (char *)NULL) != 0)
		return 0;
	for (line = strtok_r(out, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save))
		if (sscanf(line, "%u %15s %u", &g, role, &leader) == 3 && g == group)
			return leader;
	return 0;
}

unsigned rd_h_parse_ids(const char *s, unsigned *v, unsigned max)
{
	unsigned k = 0;

	while (*s != 0 && *s != '-' && k < max) {
		char *end;
		v[k++] = (unsigned)strtoul(s, &end, 10);
		if (end == s)
			break;
		s = *end == ',' ? end + 1 : end;
	}
	return k;
}

#define SETTLED_G 64

struct settled {
	unsigned groups, rf, max_id, *held;
	bool good[SETTLED_G + 1];
};

static void settled_row(struct rd_h_cluster *c, unsigned i, const char *line, void *arg)
{
	struct settled *st = arg;
	unsigned g, leader, term, commit, applied, vsh, vs[8], ps[8], nv, np;
	char role[16], voters[64], learners[64], placement[64];
	bool ok;

	(void)c;
	(void)i;
	if (sscanf(line, "%u %15s %u %u %u %u %63s %63s %u %63s", &g, role, &leader,
	           &term, &commit, &applied, voters, learners, &vsh, placement) != 10 ||
	    g == 0 || g > st->groups || strcmp(role, "leader") != 0 || st->good[g])
		return;
	nv = rd_h_parse_ids(voters, vs, 8);
	np = rd_h_parse_ids(placement, ps, 8);
	ok = nv == st->rf && np == st->rf && strcmp(learners, "-") == 0;
	for (unsigned a = 0; a < nv && ok; a++) {
		bool in_p = false;
		for (unsigned b = 0; b < np; b++)
			in_p |= ps[b] == vs[a];
		ok = in_p && vs[a] >= 1 && vs[a] <= st->max_id;
	}
	if (!ok)
		return;
	st->good[g] = true;
	for (unsigned a = 0; st->held != NULL && a < nv; a++)
		st->held[vs[a]]++;
}

bool rd_h_data_settled(struct rd_h_cluster *c, unsigned groups, unsigned rf,
                       unsigned max_id, unsigned *held)
{
	struct settled st = {.groups = groups, .rf = rf, .max_id = max_id, .held = held};

	if (groups > SETTLED_G || max_id > RD_H_MAX_NODES)
		return false;
	if (held != NULL)
		memset(held, 0, (RD_H_MAX_NODES + 1) * sizeof *held);
	each_group_row(c, settled_row, &st);
	for (unsigned g = 1; g <= groups; g++)
		if (!st.good[g])
			return false;
	return true;
}

bool rd_h_wait_data_settled(struct rd_h_cluster *c, unsigned groups, unsigned rf,
                            unsigned max_id, unsigned *held, unsigned secs)
{
	for (unsigned t = 0; t < secs * 5; t++) {
		if (rd_h_data_settled(c, groups, rf, max_id, held))
			return true;
		usleep(200 * 1000);
	}
	return false;
}

void rd_h_fault_path(const struct rd_h_cluster *c, unsigned node, char *out, size_t size)
{
	snprintf(out, size, "%s/fault%u", c->dir, node);
}

void rd_h_set_fault(const struct rd_h_cluster *c, unsigned node, const char *what)
{
	char path[256], tmp[300];
	FILE *f;

	rd_h_fault_path(c, node, path, sizeof path);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	f = fopen(tmp, "w");
	cr_assert_not_null(f);
	fputs(what, f);
	fclose(f);
	cr_assert_eq(rename(tmp, path), 0);
}

void rd_h_start_hooked(struct rd_h_cluster *c, unsigned i, const char *env2,
                       const char *val2)
{
	char path[256];

	rd_h_fault_path(c, i, path, sizeof path);
	setenv("RAFTD_TEST_FSYNC_FAULT", path, 1);
	if (env2 != NULL)
		setenv(env2, val2, 1);
	rd_h_start(c, i);
	unsetenv("RAFTD_TEST_FSYNC_FAULT");
	if (env2 != NULL)
		unsetenv(env2);
}

void rd_h_hooked_node_up(struct rd_h_cluster *c, const struct rd_h_opts *o, unsigned secs)
{
	char out[256];

	rd_h_cluster_init(c, 1, o);
	rd_h_start_hooked(c, 1, NULL, NULL);
	cr_assert(rd_h_wait_ready(c, secs), "node not ready (logs in %s)", c->dir);
	cr_assert_eq(
	    rd_h_ctl_retry(c, 1, secs, out, sizeof out, "put", "a", "1", (char *)NULL),
	    0);
}

pid_t rd_h_put_async(struct rd_h_cluster *c, unsigned i, const char *timeout_ms,
                     const char *key)
{
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		char out[256];
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 2);
		_exit(rd_h_ctl(c, i, out, sizeof out, "--timeout", timeout_ms, "put", key,
		               "v", (char *)NULL));
	}
	return pid;
}

void rd_h_reap(pid_t pid)
{
	int st;
	kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
}

int rd_h_notify_bind(const struct rd_h_cluster *c, const char *watchdog_usec)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	cr_assert_lt(strlen(c->dir) + 8, sizeof sa.sun_path);
	memcpy(sa.sun_path, c->dir, strlen(c->dir));
	memcpy(sa.sun_path + strlen(c->dir), "/notify", 8);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0, "%s",
	             strerror(errno));
	setenv("NOTIFY_SOCKET", sa.sun_path, 1);
	setenv("WATCHDOG_USEC", watchdog_usec, 1);
	return fd;
}
