/*
 * JSON (RFC 8259) and Prometheus text format 0.0.4 checkers for tests; see
 * check.h for the rules. Both work on one line or value at a time and report
 * the first problem with its position.
 */
#include "ctl/check.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

/* --- JSON ------------------------------------------------------------------ */

#define JSON_MAX_DEPTH 64

struct jp {
	const char *s;
	size_t n, i;
	int depth;
	char *msg;
};

static int jfail(struct jp *p, const char *what)
{
	return rd_errorf(p->msg, RD_EINVAL, "offset %zu: %s", p->i, what);
}

static void jws(struct jp *p)
{
	while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' ||
	                       p->s[p->i] == '\n' || p->s[p->i] == '\r'))
		p->i++;
}

static bool jeat(struct jp *p, char c)
{
	if (p->i < p->n && p->s[p->i] == c) {
		p->i++;
		return true;
	}
	return false;
}

static int jstring(struct jp *p)
{
	if (!jeat(p, '"'))
		return jfail(p, "expected a string");
	while (p->i < p->n) {
		unsigned char c = (unsigned char)p->s[p->i++];
		if (c == '"')
			return 0;
		if (c < 0x20)
			return jfail(p, "control character in a string");
		if (c != '\\')
			continue;
		if (p->i >= p->n)
			break;
		c = (unsigned char)p->s[p->i++];
		if (c == 'u') {
			for (int k = 0; k < 4; k++, p->i++)
				if (p->i >= p->n || !isxdigit((unsigned char)p->s[p->i]))
					return jfail(p, "bad \\u escape");
		} else if (strchr("\"\\/bfnrt", c) == NULL) {
			return jfail(p, "bad escape");
		}
	}
	return jfail(p, "unterminated string");
}

static size_t jdigits(struct jp *p)
{
	size_t start = p->i;
	while (p->i < p->n && isdigit((unsigned char)p->s[p->i]))
		p->i++;
	return p->i - start;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static int jnumber(struct jp *p)
{
	jeat(p, '-');
	if (jeat(p, '0')) {
		if (p->i < p->n && isdigit((unsigned char)p->s[p->i]))
			return jfail(p, "leading zero");
	} else if (jdigits(p) == 0) {
		return jfail(p, "expected a value");
	}
	if (jeat(p, '.') && jdigits(p) == 0)
		return jfail(p, "digits expected after '.'");
	if (jeat(p, 'e') || jeat(p, 'E')) {
		if (!jeat(p, '+'))
			jeat(p, '-');
		if (jdigits(p) == 0)
			return jfail(p, "digits expected in the exponent");
	}
	return 0;
}

static int jvalue(struct jp *p);

/* Object or array: `close` ends it, members are "string: value" when
 * `object`. */
static int jcompound(struct jp *p, bool object, char close)
{
	int rv;

	if (++p->depth > JSON_MAX_DEPTH)
		return jfail(p, "nested too deeply");
	p->i++;
	jws(p);
	if (jeat(p, close)) {
		p->depth--;
		return 0;
	}
	for (;;) {
		if (object) {
			if ((rv = jstring(p)) != 0)
				return rv;
			jws(p);
			if (!jeat(p, ':'))
				return jfail(p, "expected ':'");
		}
		if ((rv = jvalue(p)) != 0)
			return rv;
		jws(p);
		if (jeat(p, close)) {
			p->depth--;
			return 0;
		}
		if (!jeat(p, ','))
			return jfail(p, object ? "expected ',' or '}'"
			                       : "expected ',' or ']'");
		jws(p);
	}
}

static int jvalue(struct jp *p)
{
	static const char *const words[] = {"true", "false", "null"};

	jws(p);
	if (p->i >= p->n)
		return jfail(p, "unexpected end");
	switch (p->s[p->i]) {
	case '{':
		return jcompound(p, true, '}');
	case '[':
		return jcompound(p, false, ']');
	case '"':
		return jstring(p);
	}
	for (size_t w = 0; w < 3; w++) {
		size_t len = strlen(words[w]);
		if (p->n - p->i >= len && memcmp(p->s + p->i, words[w], len) == 0) {
			p->i += len;
			return 0;
		}
	}
	return jnumber(p);
}

int rd_check_json(const char *text, size_t len, char *msg)
{
	struct jp p = {.s = text, .n = len, .msg = msg};
	int rv = jvalue(&p);

	if (rv != 0)
		return rv;
	jws(&p);
	if (p.i != p.n)
		return jfail(&p, "trailing characters after the value");
	return 0;
}

/* --- Prometheus text format ----------------------------------------------------- */

#define LINE_MAX_LEN 4096

enum ptype { P_UNTYPED, P_COUNTER, P_GAUGE, P_HISTOGRAM, P_SUMMARY };

struct family {
	char name[256];
	enum ptype type;
	bool help, typed, sampled, closed;
};

/* Where a histogram series stands: after its buckets come _sum, _count. */
enum hstate { H_IDLE, H_BUCKETS, H_SUM, H_COUNT };

struct pp {
	struct family *fam;
	size_t n_fam, cap_fam;
	char **series;
	size_t n_series, cap_series;
	struct family *cur;
	enum hstate hs;
	char hlabels[LINE_MAX_LEN]; /* labels of the histogram series, without le */
	double hle, hcount, hinf;
	int line;
	char *msg;
};

static int pfail(struct pp *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int pfail(struct pp *p, const char *fmt, ...)
{
	char what[RD_ERRMSG_SIZE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	return rd_errorf(p->msg, RD_EINVAL, "line %d: %s", p->line, what);
}

static struct family *family(struct pp *p, const char *name, bool create)
{
	for (size_t i = 0; i < p->n_fam; i++)
		if (strcmp(p->fam[i].name, name) == 0)
			return &p->fam[i];
	if (!create || strlen(name) >= sizeof p->fam[0].name)
		return NULL;
	if (p->n_fam == p->cap_fam) {
		size_t cap = p->cap_fam ? 2 * p->cap_fam : 32;
		size_t cur = p->cur != NULL ? (size_t)(p->cur - p->fam) : SIZE_MAX;
		struct family *f = realloc(p->fam, cap * sizeof *f);
		if (f == NULL)
			return NULL;
		p->fam = f;
		p->cap_fam = cap;
		/* p->cur pointed into the old array. */
		p->cur = cur != SIZE_MAX ? &f[cur] : NULL;
	}
	memset(&p->fam[p->n_fam], 0, sizeof p->fam[0]);
	strcpy(p->fam[p->n_fam].name, name);
	return &p->fam[p->n_fam++];
}

static size_t name_len(const char *s, bool colon_ok)
{
	size_t i = 0;
	while (isalpha((unsigned char)s[i]) || s[i] == '_' || (colon_ok && s[i] == ':') ||
	       (i > 0 && isdigit((unsigned char)s[i])))
		i++;
	return i;
}

/* A Go-syntax float: +Inf, -Inf, NaN or a decimal number. */
static bool parse_value(const char *s, size_t len, double *out)
{
	char buf[64];
	char *end;

	if (len == 0 || len >= sizeof buf)
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (strcmp(buf, "+Inf") == 0 || strcmp(buf, "Inf") == 0)
		return *out = INFINITY, true;
	if (strcmp(buf, "-Inf") == 0)
		return *out = -INFINITY, true;
	if (strcmp(buf, "NaN") == 0)
		return *out = NAN, true;
	if (strspn(buf, "0123456789.eE+-") != len)
		return false;
	*out = strtod(buf, &end);
	return *end == '\0';
}

static int add_series(struct pp *p, const char *key)
{
	for (size_t i = 0; i < p->n_series; i++)
		if (strcmp(p->series[i], key) == 0)
			return pfail(p, "series %s appears twice", key);
	if (p->n_series == p->cap_series) {
		size_t cap = p->cap_series ? 2 * p->cap_series : 64;
		char **s = realloc(p->series, cap * sizeof *s);
		if (s == NULL)
			return rd_errorf(p->msg, RD_ENOMEM, "out of memory");
		p->series = s;
		p->cap_series = cap;
	}
	p->series[p->n_series] = strdup(key);
	if (p->series[p->n_series] == NULL)
		return rd_errorf(p->msg, RD_ENOMEM, "out of memory");
	p->n_series++;
	return 0;
}

static int close_family(struct pp *p)
{
	if (p->cur != NULL && p->cur->type == P_HISTOGRAM && p->hs != H_IDLE)
		return pfail(p, "histogram %s: series ends before its _sum and _count",
		             p->cur->name);
	if (p->cur != NULL)
		p->cur->closed = true;
	p->cur = NULL;
	p->hs = H_IDLE;
	return 0;
}

/* The family a sample named `name` belongs to (histograms own three
 * suffixed names); *suffix gets "_bucket", "_sum", "_count" or "". */
static struct family *owner(struct pp *p, const char *name, const char **suffix)
{
	static const char *const sfx[] = {"_bucket", "_sum", "_count"};
	size_t n = strlen(name);

	for (size_t i = 0; i < 3; i++) {
		size_t k = strlen(sfx[i]);
		char base[256];
		struct family *f;
		if (n <= k || n - k >= sizeof base || strcmp(name + n - k, sfx[i]) != 0)
			continue;
		memcpy(base, name, n - k);
		base[n - k] = '\0';
		f = family(p, base, false);
		if (f != NULL && (f->type == P_HISTOGRAM || f->type == P_SUMMARY)) {
			*suffix = sfx[i];
			return f;
		}
	}
	*suffix = "";
	return family(p, name, true);
}

static int histogram_sample(struct pp *p, const char *suffix, const char *labels,
                            const char *le, double v)
{
	if (strcmp(suffix, "_bucket") == 0) {
		double bound;
		if (le == NULL || !parse_value(le, strlen(le), &bound))
			return pfail(p, "bucket of %s without a valid le", p->cur->name);
		if (p->hs == H_BUCKETS && strcmp(labels, p->hlabels) == 0) {
			if (!(bound > p->hle))
				return pfail(p, "%s: le not ascending", p->cur->name);
			if (v < p->hcount)
				return pfail(p, "%s: bucket counts decrease",
				             p->cur->name);
		} else if (p->hs != H_IDLE) {
			return pfail(p, "%s: new series before _sum and _count",
			             p->cur->name);
		}
		snprintf(p->hlabels, sizeof p->hlabels, "%s", labels);
		p->hs = isinf(bound) && bound > 0 ? H_SUM : H_BUCKETS;
		p->hle = bound;
		p->hcount = v;
		p->hinf = v;
		return 0;
	}
	if (strcmp(labels, p->hlabels) != 0 || le != NULL)
		return pfail(p, "%s: _sum or _count with other labels than its buckets",
		             p->cur->name);
	if (strcmp(suffix, "_sum") == 0) {
		if (p->hs != H_SUM)
			return pfail(p, "%s: _sum before the +Inf bucket", p->cur->name);
		p->hs = H_COUNT;
		return 0;
	}
	if (strcmp(suffix, "_count") == 0) {
		if (p->hs != H_COUNT)
			return pfail(p, "%s: _count before _sum", p->cur->name);
		if (v != p->hinf)
			return pfail(p, "%s: _count differs from the +Inf bucket",
			             p->cur->name);
		p->hs = H_IDLE;
		return 0;
	}
	return pfail(p, "histogram %s: sample without a _bucket/_sum/_count suffix",
	             p->cur->name);
}

/* name{labels} value [timestamp] */
static int sample_line(struct pp *p, const char *s)
{
	char name[256], labels[LINE_MAX_LEN] = "", key[2 * LINE_MAX_LEN], le[64];
	bool has_le = false;
	const char *suffix;
	size_t n = name_len(s, true), lo = 0;
	struct family *f;
	double v;
	int rv;

	if (n == 0 || n >= sizeof name)
		return pfail(p, "bad metric name in '%s'", s);
	memcpy(name, s, n);
	name[n] = '\0';
	s += n;
	if (*s == '{') {
		char seen[LINE_MAX_LEN] = ",";
		s++;
		while (*s != '}') {
			size_t k = name_len(s, false);
			char lname[128];
			if (k == 0 || k >= sizeof lname || s[k] != '=' || s[k + 1] != '"')
				return pfail(p, "bad label in %s", name);
			memcpy(lname, s, k);
			lname[k] = '\0';
			snprintf(key, sizeof key, ",%s,", lname);
			if (strstr(seen, key) != NULL)
				return pfail(p, "label %s given twice", lname);
			strncat(seen, key + 1, sizeof seen - strlen(seen) - 1);
			const char *v0 = s + k + 2, *q = v0;
			while (*q != '"') {
				if (*q == '\0' || *q == '\n')
					return pfail(p, "unterminated label value in %s",
					             name);
				if (*q == '\\' && strchr("\\\"n", q[1]) == NULL)
					return pfail(
					    p, "bad escape in a label value of %s", name);
				q += *q == '\\' ? 2 : 1;
			}
			if (strcmp(lname, "le") == 0) {
				has_le = true;
				snprintf(le, sizeof le, "%.*s", (int)(q - v0), v0);
			} else {
				lo += (size_t)snprintf(labels + lo, sizeof labels - lo,
				                       "%s%.*s", lo ? "," : "",
				                       (int)(q + 1 - s), s);
			}
			s = q + 1;
			if (*s == ',')
				s++;
			else if (*s != '}')
				return pfail(p, "expected ',' or '}' in %s", name);
		}
		s++;
	}
	if (*s != ' ')
		return pfail(p, "no value for %s", name);
	s++;
	n = strcspn(s, " ");
	if (!parse_value(s, n, &v))
		return pfail(p, "bad value in '%s'", s);
	if (s[n] == ' ' &&
	    (s[n + 1] == '\0' || strspn(s + n + 1, "-0123456789") != strlen(s + n + 1)))
		return pfail(p, "bad timestamp for %s", name);

	f = owner(p, name, &suffix);
	if (f == NULL)
		return rd_errorf(p->msg, RD_ENOMEM, "out of memory");
	if (f != p->cur) {
		if ((rv = close_family(p)) != 0)
			return rv;
		if (f->closed)
			return pfail(p, "samples of %s are not contiguous", f->name);
		p->cur = f;
	}
	f->sampled = true;
	snprintf(key, sizeof key, "%s{%s%s%s}", name, labels, has_le ? ",le=" : "",
	         has_le ? le : "");
	if ((rv = add_series(p, key)) != 0)
		return rv;
	if (f->type == P_COUNTER && !(v >= 0))
		return pfail(p, "counter %s is negative or NaN", name);
	if (f->type == P_HISTOGRAM)
		return histogram_sample(p, suffix, labels, has_le ? le : NULL, v);
	return 0;
}

/* "# HELP name text" or "# TYPE name type"; other comments pass. */
static int comment_line(struct pp *p, const char *s)
{
	static const char *const types[] = {"untyped", "counter", "gauge", "histogram",
	                                    "summary"};
	bool help = strncmp(s, "# HELP ", 7) == 0, type = strncmp(s, "# TYPE ", 7) == 0;
	char name[256];
	struct family *f;
	size_t n;

	if (!help && !type)
		return 0;
	s += 7;
	n = name_len(s, true);
	if (n == 0 || n >= sizeof name || (s[n] != ' ' && s[n] != '\0'))
		return pfail(p, "bad metric name in a %s line", help ? "HELP" : "TYPE");
	memcpy(name, s, n);
	name[n] = '\0';
	f = family(p, name, true);
	if (f == NULL)
		return rd_errorf(p->msg, RD_ENOMEM, "out of memory");
	if (f->sampled)
		return pfail(p, "HELP or TYPE of %s after its samples", name);
	if (help) {
		if (f->help)
			return pfail(p, "second HELP for %s", name);
		f->help = true;
		return 0;
	}
	if (f->typed)
		return pfail(p, "second TYPE for %s", name);
	f->typed = true;
	s += n + (s[n] == ' ');
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		if (strcmp(s, types[i]) == 0) {
			f->type = (enum ptype)i;
			return 0;
		}
	return pfail(p, "unknown type '%s'", s);
}

int rd_check_prometheus(const char *text, size_t len, char *msg)
{
	struct pp p = {.msg = msg};
	size_t i = 0;
	int rv = 0;

	while (rv == 0 && i < len) {
		const char *nl = memchr(text + i, '\n', len - i);
		char line[LINE_MAX_LEN];
		size_t n;

		p.line++;
		if (nl == NULL) {
			rv = pfail(&p, "%s", "last line does not end with a newline");
			break;
		}
		n = (size_t)(nl - (text + i));
		if (n >= sizeof line || memchr(text + i, '\0', n) != NULL) {
			rv = pfail(&p, "%s", "line too long or holding a NUL byte");
			break;
		}
		memcpy(line, text + i, n);
		line[n] = '\0';
		i += n + 1;
		if (n == 0)
			continue;
		rv = line[0] == '#' ? comment_line(&p, line) : sample_line(&p, line);
	}
	if (rv == 0)
		rv = close_family(&p);
	for (size_t k = 0; k < p.n_series; k++)
		free(p.series[k]);
	free(p.series);
	free(p.fam);
	return rv;
}

bool rd_check_prometheus_has(const char *text, const char *name)
{
	static const char *const sfx[] = {"", "_bucket", "_sum", "_count"};
	size_t n = strlen(name);

	for (const char *line = text; *line != '\0';) {
		const char *end = strchr(line, '\n');
		if (line[0] != '#' && strncmp(line, name, n) == 0) {
			for (size_t i = 0; i < 4; i++) {
				size_t k = strlen(sfx[i]);
				char c;
				if (strncmp(line + n, sfx[i], k) != 0)
					continue;
				c = line[n + k];
				if (c == '{' || c == ' ')
					return true;
			}
		}
		if (end == NULL)
			break;
		line = end + 1;
	}
	return false;
}
