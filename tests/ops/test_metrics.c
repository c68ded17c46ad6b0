/* Prometheus text format writer: exact output for each kind of sample, the
 * escaping rules of the exposition format, histogram bucketing, and the
 * catalog's names following the Prometheus naming conventions. */
#include <criterion/criterion.h>
#include <event2/buffer.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/metrics.h"

static struct evbuffer *buf;

static void setup(void)
{
	buf = evbuffer_new();
	cr_assert_not_null(buf);
}

static void teardown(void)
{
	evbuffer_free(buf);
}

/* The buffer's contents as a NUL-terminated string (freed by the caller). */
static char *text(void)
{
	size_t n = evbuffer_get_length(buf);
	char *s = malloc(n + 1);
	evbuffer_remove(buf, s, n);
	s[n] = '\0';
	return s;
}

static void expect(const char *want)
{
	char *got = text();
	cr_assert_str_eq(got, want);
	free(got);
}

TestSuite(metrics, .init = setup, .fini = teardown);

/* HELP comes before TYPE; the type is spelled in lower case. */
Test(metrics, family_header_from_catalog)
{
	rd_metrics_family(buf, RD_METRIC_TICK_LOOP_ITERATIONS);
	expect(
	    "# HELP raft_tick_loop_iterations_total Event-loop iterations that drained "
	    "ready state (sync, send, apply).\n"
	    "# TYPE raft_tick_loop_iterations_total counter\n");
}

/* In HELP text, backslash and newline are escaped (but not quotes). */
Test(metrics, help_escapes_backslash_and_newline)
{
	rd_metrics_header(buf, "x_total", RD_METRIC_COUNTER, "a\\b\nc \"q\"");
	expect("# HELP x_total a\\\\b\\nc \"q\"\n# TYPE x_total counter\n");
}

Test(metrics, samples_without_labels)
{
	rd_metrics_counter(buf, "c_total", RD_METRICS_L0, 18446744073709551615ull);
	rd_metrics_gauge_u64(buf, "g", RD_METRICS_L0, 0);
	rd_metrics_gauge(buf, "d_seconds", RD_METRICS_L0, 0.1);
	expect("c_total 18446744073709551615\n"
	       "g 0\n"
	       "d_seconds 0.1\n");
}

Test(metrics, samples_with_one_and_two_labels)
{
	char id[21];
	rd_metrics_gauge_u64(buf, "raft_group_term",
	                     RD_METRICS_L1("group", rd_metrics_u64_str(id, 3)), 7);
	rd_metrics_gauge_u64(buf, "raft_group_role",
	                     RD_METRICS_L2("group", "3", "role", "leader"), 1);
	expect("raft_group_term{group=\"3\"} 7\n"
	       "raft_group_role{group=\"3\",role=\"leader\"} 1\n");
}

/* Label values escape backslash, double quote and newline. */
Test(metrics, label_values_are_escaped)
{
	rd_metrics_counter(buf, "e_total", RD_METRICS_L1("kind", "a\"b\\c\nd"), 2);
	expect("e_total{kind=\"a\\\"b\\\\c\\nd\"} 2\n");
}

/* Go-style special values, and the shortest exact decimal form. */
Test(metrics, double_formatting)
{
	char b[32];
	cr_assert_str_eq(rd_metrics_fmt_double(b, INFINITY), "+Inf");
	cr_assert_str_eq(rd_metrics_fmt_double(b, -INFINITY), "-Inf");
	cr_assert_str_eq(rd_metrics_fmt_double(b, NAN), "NaN");
	cr_assert_str_eq(rd_metrics_fmt_double(b, 0.25), "0.25");
	cr_assert_str_eq(rd_metrics_fmt_double(b, 1e-3), "0.001");
	cr_assert_str_eq(rd_metrics_fmt_double(b, 12), "12");
	cr_assert_str_eq(rd_metrics_fmt_double(b, -3), "-3");
	cr_assert_str_eq(rd_metrics_fmt_double(b, 1e15), "1e+15");
	cr_assert_str_eq(rd_metrics_fmt_double(b, 123456789012345.0), "123456789012345");
	cr_assert_eq(strtod(rd_metrics_fmt_double(b, 0.1 + 0.2), NULL), 0.1 + 0.2);
}

/* Buckets are "less than or equal" and cumulative when written; +Inf equals
 * _count; _sum adds every observation. */
Test(metrics, histogram_buckets_are_cumulative)
{
	static const double bounds[] = {0.5, 1, 2};
	struct rd_metric_hist h;

	rd_metrics_hist_init(&h, bounds, 3);
	rd_metrics_hist_observe(&h, 0.25);
	rd_metrics_hist_observe(&h, 0.5); /* on the bound: counts in le="0.5" */
	rd_metrics_hist_observe(&h, 1.5);
	rd_metrics_hist_observe(&h, 3);
	rd_metrics_hist_observe(&h, NAN); /* ignored */
	rd_metrics_histogram(buf, "lat_seconds", RD_METRICS_L0, &h);
	expect("lat_seconds_bucket{le=\"0.5\"} 2\n"
	       "lat_seconds_bucket{le=\"1\"} 2\n"
	       "lat_seconds_bucket{le=\"2\"} 3\n"
	       "lat_seconds_bucket{le=\"+Inf\"} 4\n"
	       "lat_seconds_sum 5.25\n"
	       "lat_seconds_count 4\n");
}

/* The le label comes after the caller's labels. */
Test(metrics, histogram_with_labels)
{
	static const double bounds[] = {1};
	struct rd_metric_hist h;

	rd_metrics_hist_init(&h, bounds, 1);
	rd_metrics_hist_observe(&h, 1);
	rd_metrics_histogram(buf, "h", RD_METRICS_L2("a", "x", "b", "y"), &h);
	expect("h_bucket{a=\"x\",b=\"y\",le=\"1\"} 1\n"
	       "h_bucket{a=\"x\",b=\"y\",le=\"+Inf\"} 1\n"
	       "h_sum{a=\"x\",b=\"y\"} 1\n"
	       "h_count{a=\"x\",b=\"y\"} 1\n");
}

/* An empty histogram still writes every bucket, all zero. */
Test(metrics, empty_histogram)
{
	struct rd_metric_hist h;
	rd_metrics_hist_init(&h, rd_metrics_latency_buckets,
	                     rd_metrics_latency_buckets_n);
	rd_metrics_histogram(buf, "s", RD_METRICS_L0, &h);
	char *got = text();
	cr_assert(strstr(got, "s_bucket{le=\"5e-05\"} 0\n") != NULL, "%s", got);
	cr_assert(strstr(got, "s_bucket{le=\"10\"} 0\n") != NULL, "%s", got);
	cr_assert(strstr(got, "s_bucket{le=\"+Inf\"} 0\ns_sum 0\ns_count 0\n") != NULL,
	          "%s", got);
	free(got);
}

/* The latency buckets are strictly ascending and fit the fixed array. */
Test(metrics, latency_buckets_are_valid)
{
	cr_assert_leq(rd_metrics_latency_buckets_n, RD_METRICS_MAX_BUCKETS);
	for (unsigned i = 1; i < rd_metrics_latency_buckets_n; i++)
		cr_assert_lt(rd_metrics_latency_buckets[i - 1],
		             rd_metrics_latency_buckets[i]);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Prometheus naming: valid names, "raft_" namespace ("raftd_" for the
 * node's own health: disk verdict, canary), counters and only
 * counters end in _total, durations are in seconds, every help text is a
 * sentence, no name appears twice. */
Test(metrics, catalog_follows_naming_conventions)
{
	for (unsigned i = 0; i < RD_METRIC_COUNT; i++) {
		const struct rd_metric_desc *d = rd_metrics_desc(i);
		cr_assert(rd_metrics_name_valid(d->name), "%s", d->name);
		cr_assert(strncmp(d->name, "raft_", 5) == 0 ||
		              strncmp(d->name, "raftd_disk_", 11) == 0 ||
		              strncmp(d->name, "raftd_canary_", 13) == 0,
		          "%s", d->name);
		cr_assert_eq(ends_with(d->name, "_total"), d->type == RD_METRIC_COUNTER,
		             "%s", d->name);
		if (strstr(d->name, "duration") != NULL || strstr(d->name, "rtt") != NULL)
			cr_assert(ends_with(d->name, "_seconds"), "%s", d->name);
		cr_assert(strlen(d->help) > 0 && ends_with(d->help, "."), "%s", d->name);
		for (unsigned j = 0; j < i; j++)
			cr_assert_str_neq(d->name, rd_metrics_desc(j)->name);
	}
}

Test(metrics, name_validation)
{
	cr_assert(rd_metrics_name_valid("a:b_c9"));
	cr_assert_not(rd_metrics_name_valid(""));
	cr_assert_not(rd_metrics_name_valid("9a"));
	cr_assert_not(rd_metrics_name_valid("a-b"));
	cr_assert_not(rd_metrics_name_valid("a b"));
}

/* A label value longer than the line buffer is written whole, escaped. */
Test(metrics, long_label_value)
{
	char v[2001], want[4200];
	size_t n = 0;

	for (int i = 0; i < 2000; i++)
		v[i] = i % 100 == 99 ? '"' : 'a' + i % 26;
	v[2000] = '\0';
	n += (size_t)snprintf(want + n, sizeof want - n, "x{k=\"");
	for (int i = 0; i < 2000; i++) {
		if (v[i] == '"')
			want[n++] = '\\';
		want[n++] = v[i];
	}
	snprintf(want + n, sizeof want - n, "\"} 1\n");
	rd_metrics_counter(buf, "x", RD_METRICS_L1("k", v), 1);
	expect(want);
}
