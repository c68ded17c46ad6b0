/*
 * Prometheus text format 0.0.4 writer. The format, as the Prometheus
 * exposition documentation defines it:
 *
 *   # HELP <name> <help, with \\ and \n escaped>
 *   # TYPE <name> counter|gauge|histogram
 *   <name>{<label>="<value, with \\, \" and \n escaped>",...} <value>
 *
 * Values are Go-style floats: "+Inf", "-Inf", "NaN" or a decimal number.
 * A histogram is written as cumulative <name>_bucket{le="<bound>"} samples,
 * the last one le="+Inf" (equal to _count), then <name>_sum and
 * <name>_count.
 *
 * Writing only appends to the evbuffer; a failed append (out of memory)
 * shows as a truncated scrape, which Prometheus reports as a failed scrape.
 */
#include "ctl/metrics.h"

#include <assert.h>
#include <event2/buffer.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct rd_metric_desc catalog[RD_METRIC_COUNT] = {
#define RD__METRIC_DESC(id, name, type, labels, help)                                    \
	[RD_METRIC_##id] = {name, RD_METRIC_##type, labels, help},
    RD_METRICS_CATALOG(RD__METRIC_DESC)
#undef RD__METRIC_DESC
};

/* Powers of 1-2.5-5 from 50 us to 10 s: sub-millisecond ticks and fsyncs on
 * NVMe land in the low buckets, a stalled disk in the high ones. */
const double rd_metrics_latency_buckets[] = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10,
};
const unsigned rd_metrics_latency_buckets_n =
    sizeof rd_metrics_latency_buckets / sizeof rd_metrics_latency_buckets[0];

const struct rd_metric_desc *rd_metrics_desc(enum rd_metric_id id)
{
	assert((unsigned)id < RD_METRIC_COUNT);
	return &catalog[id];
}

const char *rd_metrics_u64_str(char *buf, uint64_t v)
{
	snprintf(buf, 21, "%" PRIu64, v);
	return buf;
}

static bool name_char(char c, bool first, bool colon_ok)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
		return true;
	if (c == ':')
		return colon_ok;
	return !first && c >= '0' && c <= '9';
}

static bool valid_name(const char *s, bool colon_ok)
{
	if (s == NULL || *s == '\0')
		return false;
	for (size_t i = 0; s[i] != '\0'; i++)
		if (!name_char(s[i], i == 0, colon_ok))
			return false;
	return true;
}

bool rd_metrics_name_valid(const char *name)
{
	return valid_name(name, true);
}

static const char *type_name(enum rd_metric_type t)
{
	switch (t) {
	case RD_METRIC_COUNTER:
		return "counter";
	case RD_METRIC_GAUGE:
		return "gauge";
	case RD_METRIC_HISTOGRAM:
		return "histogram";
	}
	return "untyped";
}

/* A line assembled on the stack and appended to the evbuffer at once: one
 * evbuffer_add per sample instead of one per fragment (evbuffer_add_printf
 * costs a vsnprintf and a chain lookup each). A long label value flushes
 * early; the output is the same. */
struct line {
	struct evbuffer *out;
	size_t n;
	char buf[512];
};

static void lflush(struct line *l)
{
	evbuffer_add(l->out, l->buf, l->n);
	l->n = 0;
}

static void lput(struct line *l, const char *s, size_t n)
{
	if (l->n + n > sizeof l->buf) {
		lflush(l);
		if (n > sizeof l->buf) {
			evbuffer_add(l->out, s, n);
			return;
		}
	}
	memcpy(l->buf + l->n, s, n);
	l->n += n;
}

static void lputs(struct line *l, const char *s)
{
	lput(l, s, strlen(s));
}

static void lput_u64(struct line *l, uint64_t v)
{
	char t[20];
	size_t i = sizeof t;
	do {
		t[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	lput(l, t + i, sizeof t - i);
}

/* Append `s`, escaping backslash and newline, and '"' when `quote`. */
static void lput_escaped(struct line *l, const char *s, bool quote)
{
	const char *run = s;

	for (; *s != '\0'; s++) {
		const char *esc = NULL;
		if (*s == '\\')
			esc = "\\\\";
		else if (*s == '\n')
			esc = "\\n";
		else if (*s == '"' && quote)
			esc = "\\\"";
		if (esc == NULL)
			continue;
		lput(l, run, (size_t)(s - run));
		lput(l, esc, 2);
		run = s + 1;
	}
	lput(l, run, (size_t)(s - run));
}

void rd_metrics_header(struct evbuffer *out, const char *name, enum rd_metric_type type,
                       const char *help)
{
	struct line l = {.out = out};

	assert(rd_metrics_name_valid(name));
	lputs(&l, "# HELP ");
	lputs(&l, name);
	lput(&l, " ", 1);
	lput_escaped(&l, help, false);
	lputs(&l, "\n# TYPE ");
	lputs(&l, name);
	lput(&l, " ", 1);
	lputs(&l, type_name(type));
	lput(&l, "\n", 1);
	lflush(&l);
}

void rd_metrics_family(struct evbuffer *out, enum rd_metric_id id)
{
	const struct rd_metric_desc *d = rd_metrics_desc(id);
	rd_metrics_header(out, d->name, d->type, d->help);
}

const char *rd_metrics_fmt_double(char *buf, double v)
{
	if (isnan(v))
		return strcpy(buf, "NaN");
	if (isinf(v))
		return strcpy(buf, v > 0 ? "+Inf" : "-Inf");
	/* Whole numbers (counts, indexes, most gauges) print as integers. */
	if (v == floor(v) && fabs(v) < 1e15) {
		snprintf(buf, 32, "%lld", (long long)v);
		return buf;
	}
	/* The shortest of %.15g .. %.17g that parses back to the same double,
	 * so 0.1 prints as "0.1" and not as "0.10000000000000001". */
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, 32, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	return buf;
}

/* name{k="v",k2="v2",le="x"}: `suffix` is appended to the name ("_bucket"),
 * `le` is the extra histogram label or NULL. */
static void put_series(struct line *out, const char *name, const char *suffix,
                       const struct rd_metric_labels *l, const char *le)
{
	assert(rd_metrics_name_valid(name));
	assert(l->n <= 2);
	lputs(out, name);
	lputs(out, suffix);
	if (l->n == 0 && le == NULL)
		return;
	lput(out, "{", 1);
	for (unsigned i = 0; i < l->n; i++) {
		assert(valid_name(l->name[i], false) &&
		       strncmp(l->name[i], "__", 2) != 0 &&
		       strcmp(l->name[i], "le") != 0);
		if (i > 0)
			lput(out, ",", 1);
		lputs(out, l->name[i]);
		lput(out, "=\"", 2);
		lput_escaped(out, l->value[i] != NULL ? l->value[i] : "", true);
		lput(out, "\"", 1);
	}
	if (le != NULL) {
		lputs(out, l->n > 0 ? ",le=\"" : "le=\"");
		lputs(out, le);
		lput(out, "\"", 1);
	}
	lput(out, "}", 1);
}

/* One sample line with an integer or a float value (`num` != NULL). */
static void sample(struct evbuffer *out, const char *name, const char *suffix,
                   const struct rd_metric_labels *l, const char *le, uint64_t v,
                   const char *num)
{
	struct line ln = {.out = out};

	put_series(&ln, name, suffix, l, le);
	lput(&ln, " ", 1);
	if (num != NULL)
		lputs(&ln, num);
	else
		lput_u64(&ln, v);
	lput(&ln, "\n", 1);
	lflush(&ln);
}

void rd_metrics_counter(struct evbuffer *out, const char *name, struct rd_metric_labels l,
                        uint64_t value)
{
	sample(out, name, "", &l, NULL, value, NULL);
}

void rd_metrics_gauge_u64(struct evbuffer *out, const char *name,
                          struct rd_metric_labels l, uint64_t value)
{
	sample(out, name, "", &l, NULL, value, NULL);
}

void rd_metrics_gauge(struct evbuffer *out, const char *name, struct rd_metric_labels l,
                      double value)
{
	char num[32];
	sample(out, name, "", &l, NULL, 0, rd_metrics_fmt_double(num, value));
}

void rd_metrics_hist_init(struct rd_metric_hist *h, const double *bounds,
                          unsigned n_bounds)
{
	assert(n_bounds <= RD_METRICS_MAX_BUCKETS);
	for (unsigned i = 0; i < n_bounds; i++)
		assert(isfinite(bounds[i]) && (i == 0 || bounds[i - 1] < bounds[i]));
	memset(h, 0, sizeof *h);
	h->bounds = bounds;
	h->n_bounds = n_bounds;
}

void rd_metrics_hist_observe(struct rd_metric_hist *h, double v)
{
	unsigned lo = 0, hi = h->n_bounds;

	if (isnan(v))
		return;
	/* The first bound >= v (Prometheus buckets are "less than or equal"). */
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		if (h->bounds[mid] < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	h->counts[lo]++;
	h->count++;
	h->sum += v;
}

void rd_metrics_histogram(struct evbuffer *out, const char *name,
                          struct rd_metric_labels l, const struct rd_metric_hist *h)
{
	char num[32];
	uint64_t cum = 0;

	for (unsigned i = 0; i < h->n_bounds; i++) {
		cum += h->counts[i];
		sample(out, name, "_bucket", &l, rd_metrics_fmt_double(num, h->bounds[i]),
		       cum, NULL);
	}
	sample(out, name, "_bucket", &l, "+Inf", h->count, NULL);
	sample(out, name, "_sum", &l, NULL, 0, rd_metrics_fmt_double(num, h->sum));
	sample(out, name, "_count", &l, NULL, h->count, NULL);
}

void rd_metrics_single_u64(struct evbuffer *out, enum rd_metric_id id, uint64_t value)
{
	const struct rd_metric_desc *d = rd_metrics_desc(id);
	assert(d->type != RD_METRIC_HISTOGRAM);
	rd_metrics_family(out, id);
	rd_metrics_counter(out, d->name, RD_METRICS_L0, value);
}

void rd_metrics_single(struct evbuffer *out, enum rd_metric_id id, double value)
{
	const struct rd_metric_desc *d = rd_metrics_desc(id);
	assert(d->type == RD_METRIC_GAUGE);
	rd_metrics_family(out, id);
	rd_metrics_gauge(out, d->name, RD_METRICS_L0, value);
}

void rd_metrics_single_hist(struct evbuffer *out, enum rd_metric_id id,
                            const struct rd_metric_hist *h)
{
	const struct rd_metric_desc *d = rd_metrics_desc(id);
	assert(d->type == RD_METRIC_HISTOGRAM);
	rd_metrics_family(out, id);
	rd_metrics_histogram(out, d->name, RD_METRICS_L0, h);
}
