#include "sh.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int ops_sh(char *out, size_t size, const char *fmt, ...)
{
	char cmd[8192];
	size_t got = 0;
	va_list ap;
	FILE *p;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	/* The parenthesised subshell keeps the caller's redirections inside. */
	char full[sizeof cmd + 32];
	snprintf(full, sizeof full, "( %s ) </dev/null", cmd);
	p = popen(full, "r");
	if (p == NULL)
		return -1;
	for (;;) {
		char tmp[4096];
		size_t n = fread(tmp, 1, sizeof tmp, p);
		if (n == 0)
			break;
		if (out != NULL && got + 1 < size) {
			size_t k = n < size - 1 - got ? n : size - 1 - got;
			memcpy(out + got, tmp, k);
			got += k;
		}
	}
	if (out != NULL && size > 0)
		out[got] = '\0';
	st = pclose(p);
	if (st == -1)
		return -1;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -1;
}

static const char *join(const char *env, const char *dflt, const char *rel)
{
	static char bufs[8][4096];
	static unsigned next;
	const char *base = getenv(env);
	char *b = bufs[next++ % 8];

	char cwd[2048];

	/* Absolute paths, so that commands may cd elsewhere. */
	if (base == NULL || *base == '\0') {
		if (getcwd(cwd, sizeof cwd) == NULL)
			strcpy(cwd, ".");
		snprintf(b, sizeof bufs[0], "%s/%s%s", cwd, dflt, rel);
		return b;
	}
	snprintf(b, sizeof bufs[0], "%s/%s", base, rel);
	return b;
}

const char *ops_src(const char *rel)
{
	return join("RD_SRC", "", rel);
}

const char *ops_build(const char *rel)
{
	return join("RD_BUILD", "build/", rel);
}

char *ops_read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0)
		goto out;
	buf = malloc((size_t)n + 1);
	if (buf == NULL)
		goto out;
	if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
		goto out;
	}
	buf[n] = '\0';
out:
	fclose(f);
	return buf;
}

void ops_write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "cannot write %s", path);
	cr_assert_eq(fwrite(text, 1, strlen(text), f), strlen(text));
	cr_assert_eq(fclose(f), 0);
}

void ops_mkdtemp(char *dir)
{
	const char *t = getenv("TMPDIR");
	snprintf(dir, 256, "%s/raftd-ops-XXXXXX", t != NULL && *t != '\0' ? t : "/tmp");
	cr_assert_not_null(mkdtemp(dir), "mkdtemp %s", dir);
}

void ops_rmrf(const char *dir)
{
	if (dir[0] == '\0' || strstr(dir, "/raftd-ops-") == NULL)
		return;
	/* Again while something (a dying daemon) still writes into it. */
	ops_sh(NULL, 0,
	       "for i in 1 2 3 4 5; do rm -rf '%s'; [ -e '%s' ] || break; sleep 1; done",
	       dir, dir);
}

char *ops_replace(const char *text, const char *from, const char *to)
{
	size_t nf = strlen(from), nt = strlen(to), count = 0;
	const char *p;
	char *out, *o;

	for (p = strstr(text, from); p != NULL; p = strstr(p + nf, from))
		count++;
	out = malloc(strlen(text) + count * nt + 1);
	cr_assert_not_null(out);
	o = out;
	while ((p = strstr(text, from)) != NULL) {
		memcpy(o, text, (size_t)(p - text));
		o += p - text;
		memcpy(o, to, nt);
		o += nt;
		text = p + nf;
	}
	strcpy(o, text);
	return out;
}
