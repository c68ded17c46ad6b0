/* Scenario files (tests/raft/scenarios/NN_name.txt): the script before the `----`
 * line drives a simulated cluster; the transcript must equal the golden text
 * after it, and no safety property may be violated along the way. Set
 * RD_SCENARIO_REWRITE=1 to rewrite the golden text on purpose (then review
 * the diff). Each file states the rule it checks in its leading comments. */
#include <criterion/criterion.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	size_t got = fread(buf, 1, (size_t)n, f);
	buf[got] = 0;
	fclose(f);
	return buf;
}

static void first_diff(const char *want, const char *got, char *out, size_t n)
{
	int line = 1;
	const char *w0 = want, *g0 = got;
	while (*want && *want == *got) {
		if (*want == '\n') {
			line++;
			w0 = want + 1;
			g0 = got + 1;
		}
		want++;
		got++;
	}
	want = w0; /* show whole lines */
	got = g0;
	const char *we = strchr(want, '\n'), *ge = strchr(got, '\n');
	snprintf(out, n, "line %d of the output:\n  want: %.*s\n  got:  %.*s", line,
	         (int)(we ? we - want : (long)strlen(want)), want,
	         (int)(ge ? ge - got : (long)strlen(got)), got);
}

static int run_file(const char *path, bool rewrite)
{
	char *text = slurp(path);
	if (text == NULL) {
		cr_log_error("%s: cannot read", path);
		return 1;
	}
	char *sep = strstr(text, "\n----\n");
	const char *want = "";
	if (sep != NULL) {
		*sep = 0;
		want = sep + 6;
	}
	char *got = NULL;
	size_t got_len = 0;
	FILE *out = open_memstream(&got, &got_len);
	char err[512] = "";
	int rc = rc_scenario_run(text, out, err, sizeof(err));
	fclose(out);
	int bad = 0;
	if (rc != 0) {
		cr_log_error("%s: %s", path, err);
		bad = 1;
	} else if (rewrite) {
		size_t l = strlen(text);
		while (l > 0 && (text[l - 1] == '\n' || text[l - 1] == ' '))
			text[--l] = 0;
		FILE *f = fopen(path, "wb");
		fprintf(f, "%s\n----\n%s", text, got);
		fclose(f);
	} else if (strcmp(want, got) != 0) {
		char d[1024];
		first_diff(want, got, d, sizeof(d));
		cr_log_error(
		    "%s: transcript differs at %s\n(RD_SCENARIO_REWRITE=1 rewrites)",
		    path, d);
		bad = 1;
	}
	free(got);
	free(text);
	return bad;
}

Test(scenarios, every_file_matches_its_golden_transcript, .timeout = 120)
{
	const char *src = getenv("RD_SRC");
	char pattern[1024];
	snprintf(pattern, sizeof(pattern), "%s/tests/raft/scenarios/*.txt",
	         src ? src : ".");
	glob_t g;
	cr_assert_eq(glob(pattern, 0, NULL, &g), 0, "no scenario files under %s",
	             pattern);
	const char *rw = getenv("RD_SCENARIO_REWRITE");
	bool rewrite = rw != NULL && strcmp(rw, "1") == 0;
	int bad = 0;
	for (size_t i = 0; i < g.gl_pathc; i++)
		bad += run_file(g.gl_pathv[i], rewrite);
	cr_log_info("%zu scenario files, %d failing", g.gl_pathc, bad);
	cr_assert_geq(g.gl_pathc, 25, "expected at least 25 scenarios");
	globfree(&g);
	cr_assert_eq(bad, 0, "%d scenario files failed", bad);
}
