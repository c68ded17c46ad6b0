/* Manual pages: raftd(8), raftctl(1) and raftd.conf(5) render with
 * `man --warnings -l` (and with every groff warning enabled) without a
 * single warning; raftd.conf(5) documents every key the parser accepts, in
 * its section, with its default; raftd(8) lists every metric of the catalog. */
#include <criterion/criterion.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/metrics.h"
#include "util/config_keys.h"
#include "sh.h"

static const char *const pages[] = {
    "conf/man/raftd.8",
    "conf/man/raftctl.1",
    "conf/man/raftd.conf.5",
};

/* Render `path` and return groff's complaints (stderr) in `out`. */
static int render(const char *path, const char *warnings, char *out, size_t size)
{
	return ops_sh(out, size,
	              "MANWIDTH=80 LC_ALL=C.UTF-8 MAN_KEEP_FORMATTING= man %s -l '%s' "
	              "2>&1 >/dev/null",
	              warnings, path);
}

static void need_man(void)
{
	cr_assert_eq(
	    ops_sh(NULL, 0, "command -v man >/dev/null && command -v groff >/dev/null"),
	    0, "man or groff is missing: install 'man-db' and 'groff-base' (make deps)");
}

/* "--warnings" is man-db's default set (-wmac); "--warnings=w" turns on
 * every groff warning. */
Test(man, pages_render_without_warnings, .timeout = 60)
{
	char out[8192];

	need_man();
	for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
		const char *w[] = {"--warnings", "--warnings=w"};
		for (size_t j = 0; j < 2; j++) {
			int rv = render(ops_src(pages[i]), w[j], out, sizeof out);
			cr_assert_eq(rv, 0, "man %s -l %s failed:\n%s", w[j], pages[i],
			             out);
			cr_assert_str_empty(out, "man %s -l %s:\n%s", w[j], pages[i],
			                    out);
		}
	}
}

/* The check is live: an undefined macro is reported. */
Test(man, a_broken_page_is_reported)
{
	char dir[256], path[512], out[8192];

	need_man();
	ops_mkdtemp(dir);
	snprintf(path, sizeof path, "%s/broken.1", dir);
	ops_write_file(path, ".TH BROKEN 1\n.SH NAME\nbroken \\- a test\n.NOSUCHMACRO\n");
	render(path, "--warnings", out, sizeof out);
	ops_rmrf(dir);
	cr_assert_not_null(strstr(out, "NOSUCHMACRO"), "no warning: '%s'", out);
}

/* Each page has the sections a reader looks for. */
Test(man, pages_have_the_usual_sections)
{
	const char *const sections[] = {".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION",
	                                "SEE ALSO"};
	for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
		char *text = ops_read_file(ops_src(pages[i]));
		cr_assert_not_null(text, "%s", pages[i]);
		for (size_t j = 0; j < sizeof sections / sizeof sections[0]; j++)
			cr_assert_not_null(strstr(text, sections[j]), "%s lacks %s",
			                   pages[i], sections[j]);
		free(text);
	}
}

/* The entry of [sec] key in raftd.conf(5) `text`, from its ".BI key" line to
 * the next entry or section (NUL-terminated copy in `out`), or NULL. */
static char *man_entry(const char *text, const char *sec, const char *key, char *out,
                       size_t size)
{
	char head[96], entry[96];
	const char *start, *end, *at, *next;

	snprintf(head, sizeof head, ".SH \"[%s] SECTION\"", sec);
	start = strstr(text, head);
	cr_assert_not_null(start, "raftd.conf(5) has no section for [%s]", sec);
	end = strstr(start + 1, "\n.SH ");
	snprintf(entry, sizeof entry, "\n.BI %s \" = \"", key);
	at = strstr(start, entry);
	if (at == NULL || (end != NULL && at > end))
		return NULL;
	next = strstr(at + 1, "\n.TP");
	if (next == NULL || (end != NULL && end < next))
		next = end != NULL ? end : at + strlen(at);
	snprintf(out, size, "%.*s", (int)(next - at), at);
	return out;
}

/* True when man entry `e` gives `def` as the default: "Default: DEF" (or
 * "Default:\n.IR DEF") followed by a blank, a stop or a parenthesis, or
 * ".B DEF\n(the default)". */
static bool states_default(const char *e, const char *def)
{
	size_t n = strlen(def);
	char the[128];

	for (const char *p = strstr(e, "Default:"); p != NULL;
	     p = strstr(p + 1, "Default:")) {
		const char *v = p + strlen("Default:");
		if (strncmp(v, "\n.IR ", 5) == 0 || strncmp(v, "\n.B ", 4) == 0)
			v = strchr(v + 1, ' ');
		v += strspn(v, " ");
		if (strncmp(v, def, n) == 0 && strchr(" .(\n", v[n]) != NULL)
			return true;
	}
	snprintf(the, sizeof the, "\n.B %s\n(the default)", def);
	return strstr(e, the) != NULL;
}

/* Every key the parser accepts (the KEYS table, util/config_keys.h) has an
 * entry in its section of raftd.conf(5), and the entry of every key with a
 * default states the table's. */
Test(man, config_page_documents_every_key_and_its_default)
{
	char *text = ops_read_file(ops_src("conf/man/raftd.conf.5"));
	char e[8192];

	cr_assert_not_null(text);
	cr_assert_geq(K_COUNT, 20);
	for (int k = 0; k < K_COUNT; k++) {
		const struct rd_config_key_spec *key = &rd_config_keys[k];
		cr_assert_not_null(
		    man_entry(text, key->section, key->key, e, sizeof e),
		    "raftd.conf(5) does not document [%s] %s in its section",
		    key->section, key->key);
		cr_assert(key->def == NULL || states_default(e, key->def),
		          "raftd.conf(5) does not give [%s] %s's default %s:\n%s",
		          key->section, key->key, key->def, e);
	}
	free(text);
}

/* The check is live: an entry stating another default is caught. */
Test(man, a_wrong_default_in_the_page_is_caught)
{
	const char *e = ".BI tick_ms \" = \" N\nTick.\nDefault: 100.\n";

	cr_assert(states_default(e, "100"));
	cr_assert(!states_default(e, "10"));
	cr_assert(states_default(".BI mode\n.B mutual\n(the default): both", "mutual"));
	cr_assert(states_default("Default:\n.IR /run/x.sock .\n", "/run/x.sock"));
}

/* Every metric of RD_METRICS_CATALOG is described in raftd(8). */
Test(man, daemon_page_lists_every_metric)
{
	char *text = ops_read_file(ops_src("conf/man/raftd.8"));
	cr_assert_not_null(text);
	for (unsigned i = 0; i < RD_METRIC_COUNT; i++) {
		const char *name = rd_metrics_desc(i)->name;
		size_t n = strlen(name);
		bool found = false;
		for (const char *p = strstr(text, name); p != NULL && !found;
		     p = strstr(p + n, name))
			found = p[n] == '\n' || p[n] == '{' || p[n] == ' ';
		cr_assert(found, "raftd(8) does not list %s", name);
	}
	free(text);
}

/* The page rendered as plain text, 200 columns wide (malloc'ed). */
static char *rendered(const char *page)
{
	char *out = malloc(1 << 18);
	cr_assert_not_null(out);
	cr_assert_eq(ops_sh(out, 1 << 18,
	                    "MANWIDTH=200 LC_ALL=C.UTF-8 man -l '%s' 2>/dev/null",
	                    ops_src(page)),
	             0);
	return out;
}

/* True when a tagged paragraph of `text` starts with `tag` (seven spaces of
 * indent, then the tag and a blank or the end of the line). */
static bool has_tag(const char *text, const char *tag)
{
	size_t n = strlen(tag);
	for (const char *p = strstr(text, "\n       "); p != NULL;
	     p = strstr(p + 1, "\n       "))
		if (strncmp(p + 8, tag, n) == 0 && (p[8 + n] == ' ' || p[8 + n] == '\n'))
			return true;
	return false;
}

/* Every command that `raftctl --help` lists has its entry in raftctl(1). */
Test(man, raftctl_page_documents_every_command)
{
	char help[8192];
	char *page;
	unsigned n = 0;

	need_man();
	cr_assert_eq(ops_sh(help, sizeof help, "'%s' --help", ops_build("raftctl")), 0,
	             "%s", help);
	if (strstr(help, "commands:") == NULL)
		cr_skip_test("this raftctl lists no commands yet");
	page = rendered("conf/man/raftctl.1");
	for (char *line = strtok(strstr(help, "commands:"), "\n"); line != NULL;
	     line = strtok(NULL, "\n")) {
		char name[64];
		size_t len;
		if (strncmp(line, "  ", 2) != 0 || line[2] == ' ')
			continue;
		/* The name ends at the first run of two blanks ("meta put  KEY"). */
		len = (size_t)(strstr(line + 2, "  ") != NULL
		                   ? strstr(line + 2, "  ") - (line + 2)
		                   : (ptrdiff_t)strlen(line + 2));
		snprintf(name, sizeof name, "%.*s", (int)len, line + 2);
		cr_assert(has_tag(page, name), "raftctl(1) does not document '%s'", name);
		n++;
	}
	cr_assert_geq(n, 10, "parsed only %u commands from:\n%s", n, help);
	free(page);
}

/* raftd(8) documents every option. */
Test(man, raftd_page_documents_every_option)
{
	char *page;
	const char *opts[] = {"--config FILE", "--config FILE --restore BACKUP",
	                      "--check-config FILE", "--version"};

	need_man();
	page = rendered("conf/man/raftd.8");
	for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
		cr_assert(has_tag(page, opts[i]), "raftd(8) does not document %s",
		          opts[i]);
	free(page);
}
