/* systemd units: both pass `systemd-analyze verify` (which also checks that
 * ExecStart= names an executable and that the man pages in Documentation=
 * exist), carry every setting listed below, and keep their sandboxing:
 * `systemd-analyze security --offline` rates them at most 2.0 ("OK").
 *
 * verify needs the ExecStart binary to exist, so the units are copied into
 * a temporary directory with /usr/local/bin/raftd rewritten to the freshly
 * built $RD_BUILD/raftd; the man pages are offered through MANPATH. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sh.h"

static char dir[256];

static void copy_unit(const char *name)
{
	char path[512];
	char *text = ops_read_file(ops_src(name));
	char *fixed;

	cr_assert_not_null(text, "cannot read %s", name);
	fixed = ops_replace(text, "/usr/local/bin/raftd", ops_build("raftd"));
	snprintf(path, sizeof path, "%s/%s", dir, strrchr(name, '/') + 1);
	ops_write_file(path, fixed);
	free(fixed);
	free(text);
}

static void setup(void)
{
	ops_mkdtemp(dir);
	copy_unit("systemd/raftd.service");
	copy_unit("systemd/raftd@.service");
	cr_assert_eq(ops_sh(NULL, 0,
	                    "cd '%s' && mkdir -p man/man1 man/man5 man/man8 && "
	                    "cp '%s' man/man1/ && cp '%s' man/man5/ && cp '%s' man/man8/",
	                    dir, ops_src("conf/man/raftctl.1"),
	                    ops_src("conf/man/raftd.conf.5"),
	                    ops_src("conf/man/raftd.8")),
	             0);
}

static void teardown(void)
{
	ops_rmrf(dir);
}

TestSuite(systemd, .init = setup, .fini = teardown, .timeout = 120);

static void need_systemd_analyze(void)
{
	cr_assert_eq(
	    ops_sh(NULL, 0, "command -v systemd-analyze >/dev/null"), 0,
	    "systemd-analyze is missing: install the 'systemd' package (make deps)");
}

/* verify prints nothing and exits 0 for a correct unit. */
static void verify(const char *unit)
{
	char out[8192];
	int rv;

	need_systemd_analyze();
	rv = ops_sh(out, sizeof out,
	            "cd '%s' && MANPATH='%s/man' SYSTEMD_LOG_COLOR=0 "
	            "systemd-analyze verify '%s' 2>&1",
	            dir, dir, unit);
	cr_assert_eq(rv, 0, "systemd-analyze verify %s failed:\n%s", unit, out);
	cr_assert_str_empty(out, "systemd-analyze verify %s complained:\n%s", unit, out);
}

Test(systemd, service_verifies)
{
	verify("raftd.service");
}

Test(systemd, template_verifies)
{
	verify("raftd@.service");
	verify("raftd@node1.service");
}

/* The verifier really runs: a misspelt directive is reported (verify still
 * exits 0 for it, hence the check for empty output above) and a missing
 * executable fails. */
Test(systemd, verify_catches_a_bad_unit)
{
	char path[512], out[8192];

	need_systemd_analyze();
	snprintf(path, sizeof path, "%s/typo.service", dir);
	ops_write_file(
	    path, "[Service]\nType=notify\nExecStart=/bin/true\nProtectSystm=strict\n");
	ops_sh(out, sizeof out,
	       "cd '%s' && SYSTEMD_LOG_COLOR=0 systemd-analyze verify typo.service 2>&1",
	       dir);
	cr_assert_not_null(strstr(out, "ProtectSystm"), "%s", out);

	snprintf(path, sizeof path, "%s/noexec.service", dir);
	ops_write_file(path, "[Service]\nType=notify\nExecStart=/nonexistent/raftd\n");
	cr_assert_neq(ops_sh(out, sizeof out,
	                     "cd '%s' && SYSTEMD_LOG_COLOR=0 systemd-analyze verify "
	                     "noexec.service 2>&1",
	                     dir),
	              0, "%s", out);
}

/* The overall exposure level, from "Overall exposure level for U: 1.2 OK". */
static double exposure(const char *unit)
{
	char out[65536];
	const char *p;
	int rv;

	need_systemd_analyze();
	rv = ops_sh(
	    out, sizeof out,
	    "cd '%s' && SYSTEMD_LOG_COLOR=0 systemd-analyze security --offline=true "
	    "--no-pager '%s' 2>&1",
	    dir, unit);
	cr_assert_eq(rv, 0, "systemd-analyze security %s failed:\n%s", unit, out);
	p = strstr(out, "Overall exposure level for ");
	cr_assert_not_null(p, "%s", out);
	p = strchr(p, ':');
	cr_assert_not_null(p);
	return strtod(p + 1, NULL);
}

/* Sandboxing must not regress: both units stay at 2.0 or below on the
 * 0 (best) to 10 scale. */
Test(systemd, security_exposure_is_low)
{
	double s = exposure("raftd.service"), t = exposure("raftd@node1.service");
	cr_log_info(
	    "systemd-analyze security: raftd.service %.1f, raftd@node1.service %.1f", s,
	    t);
	cr_assert_leq(s, 2.0, "raftd.service exposure %.1f", s);
	cr_assert_leq(t, 2.0, "raftd@.service exposure %.1f", t);
}

static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	for (const char *p = text; (p = strstr(p, line)) != NULL; p += n)
		if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
			return true;
	return false;
}

static const char *const required[] = {
    "Type=notify",
    "ExecReload=/bin/kill -HUP $MAINPID",
    "Restart=on-failure",
    "User=raftd",
    "Group=raftd",
    "UMask=0077",
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
    "SystemCallFilter=@system-service",
    "SystemCallArchitectures=native",
    "MemoryDenyWriteExecute=yes",
    "LockPersonality=yes",
    "RestrictNamespaces=yes",
    "RestrictSUIDSGID=yes",
    "CapabilityBoundingSet=",
};

static void check_settings(const char *unit, const char *exec, const char *state,
                           const char *runtime)
{
	char *text = ops_read_file(ops_src(unit));
	const char *prefixed[] = {"WatchdogSec=", "LimitNOFILE="};

	cr_assert_not_null(text);
	for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
		cr_assert(has_line(text, required[i]), "%s lacks '%s'", unit,
		          required[i]);
	for (size_t i = 0; i < 2; i++)
		cr_assert_not_null(strstr(text, prefixed[i]), "%s lacks %s", unit,
		                   prefixed[i]);
	cr_assert(has_line(text, exec), "%s lacks '%s'", unit, exec);
	cr_assert(has_line(text, state), "%s lacks '%s'", unit, state);
	cr_assert(has_line(text, runtime), "%s lacks '%s'", unit, runtime);
	free(text);
}

/* The settings both units must carry (Type=notify, sandboxing, limits). */
Test(systemd, units_have_the_required_settings)
{
	check_settings("systemd/raftd.service",
	               "ExecStart=/usr/local/bin/raftd --config /etc/raftd/raftd.conf",
	               "StateDirectory=raftd", "RuntimeDirectory=raftd");
	check_settings("systemd/raftd@.service",
	               "ExecStart=/usr/local/bin/raftd --config /etc/raftd/%i.conf",
	               "StateDirectory=raftd/%i", "RuntimeDirectory=raftd/%i");
}
