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

/* Append `s`, escaping backslash and newline, and '"' when `quote`. */
static void put_escaped(struct evbuffer *out, const char *s, bool quote)
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
		evbuffer_add(out, run, (size_t)(s - run));
		evbuffer_add(out, esc, strlen(esc));
		run = s + 1;
	}
	evbuffer_add(out, run, (size_t)(s - run));
}

void rd_metrics_header(struct evbuffer *out, const char *name, enum rd_metric_type type,
                       const char *help)
{
	assert(rd_metrics_name_valid(name));
	evbuffer_add_printf(out, "# HELP %s ", name);
	put_escaped(out, help, false);
	evbuffer_add_printf(out, "\n# TYPE %s %s\n", name, type_name(type));
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
static void put_series(struct evbuffer *out, const char *name, const char *suffix,
                       const struct rd_metric_labels *l, const char *le)
{
	assert(rd_metrics_name_valid(name));
	assert(l->n <= 2);
	evbuffer_add_printf(out, "%s%s", name, suffix);
	if (l->n == 0 && le == NULL)
		return;
	evbuffer_add(out, "{", 1);
	for (unsigned i = 0; i < l->n; i++) {
		assert(valid_name(l->name[i], false) &&
		       strncmp(l->name[i], "__", 2) != 0 &&
		       strcmp(l->name[i], "le") != 0);
		evbuffer_add_printf(out, "%s%s=\"", i > 0 ? "," : "", l->name[i]);
		put_escaped(out, l->value[i] != NULL ? l->value[i] : "", true);
		evbuffer_add(out, "\"", 1);
	}
	if (le != NULL)
		evbuffer_add_printf(out, "%sle=\"%s\"", l->n > 0 ? "," : "", le);
	evbuffer_add(out, "}", 1);
}

void rd_metrics_counter(struct evbuffer *out, const char *name, struct rd_metric_labels l,
                        uint64_t value)
{
	put_series(out, name, "", &l, NULL);
	evbuffer_add_printf(out, " %" PRIu64 "\n", value);
}

void rd_metrics_gauge_u64(struct evbuffer *out, const char *name,
                          struct rd_metric_labels l, uint64_t value)
{
	put_series(out, name, "", &l, NULL);
	evbuffer_add_printf(out, " %" PRIu64 "\n", value);
}

void rd_metrics_gauge(struct evbuffer *out, const char *name, struct rd_metric_labels l,
                      double value)
{
	char num[32];
	put_series(out, name, "", &l, NULL);
	evbuffer_add_printf(out, " %s\n", rd_metrics_fmt_double(num, value));
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
		put_series(out, name, "_bucket", &l,
		           rd_metrics_fmt_double(num, h->bounds[i]));
		evbuffer_add_printf(out, " %" PRIu64 "\n", cum);
	}
	put_series(out, name, "_bucket", &l, "+Inf");
	evbuffer_add_printf(out, " %" PRIu64 "\n", h->count);
	put_series(out, name, "_sum", &l, NULL);
	evbuffer_add_printf(out, " %s\n", rd_metrics_fmt_double(num, h->sum));
	put_series(out, name, "_count", &l, NULL);
	evbuffer_add_printf(out, " %" PRIu64 "\n", h->count);
}
