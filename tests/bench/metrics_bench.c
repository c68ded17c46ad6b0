/*
 * make bench-metrics: the cost of serving /metrics and of observing a
 * histogram value. /metrics is written on the event loop that also drives
 * Raft, so its time per scrape is time the loop does not tick; the numbers
 * say how large a node can be before scrapes should be rate-limited.
 *
 * Setup: the whole catalog (lib/ctl/metrics.h) written through the ctl/
 * metrics API for G groups and P peers (integer gauges as integers, the
 * _seconds ones as fractions), three latency histograms, into one
 * evbuffer, repeated until at least 0.5 s passed; the median of 5 such runs.
 * Output on stdout and as CSV in build/bench/metrics.csv (or $1).
 */
#include <event2/buffer.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl/check.h"
#include "ctl/metrics.h"
#include "util/clock.h"

static double now_s(void)
{
	return (double)rd_clock_now_ns() / 1e9;
}

static struct rd_metric_hist hists[3];

/* One scrape of a node with `groups` groups and `peers` peers. */
static void scrape(struct evbuffer *out, unsigned groups, unsigned peers)
{
	char a[21], b[21];

	for (unsigned m = 0; m < RD_METRIC_COUNT; m++) {
		const struct rd_metric_desc *d = rd_metrics_desc(m);
		unsigned n = 1;
		rd_metrics_family(out, m);
		if (strcmp(d->labels, "group") == 0 ||
		    strcmp(d->labels, "group,role") == 0)
			n = groups;
		else if (strcmp(d->labels, "peer") == 0)
			n = peers;
		else if (strcmp(d->labels, "kind") == 0)
			n = 3;
		for (unsigned i = 0; i < n; i++) {
			struct rd_metric_labels l = RD_METRICS_L0;
			rd_metrics_u64_str(a, i);
			if (strcmp(d->labels, "group,role") == 0)
				l = RD_METRICS_L2("group", a, "role", "follower");
			else if (d->labels[0] != '\0')
				l = RD_METRICS_L1(d->labels, a);
			if (d->type == RD_METRIC_HISTOGRAM)
				rd_metrics_histogram(out, d->name, l, &hists[m % 3]);
			else if (d->type == RD_METRIC_COUNTER)
				rd_metrics_counter(out, d->name, l, 123456789u + i);
			else if (strstr(d->name, "_seconds") != NULL)
				rd_metrics_gauge(out, d->name, l, 0.000123 * (i + 1));
			else /* terms, indexes, flags: integers, as the node writes them
			      */
				rd_metrics_gauge_u64(out, d->name, l, 1000u + i);
		}
	}
	(void)b;
}

static int cmp(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return (a > b) - (a < b);
}

int main(int argc, char **argv)
{
	const char *csv_path = argc > 1 ? argv[1] : "build/bench/metrics.csv";
	static const unsigned sizes[][2] = {{17, 2}, {257, 4}, {1025, 8}, {4097, 16}};
	FILE *csv = fopen(csv_path, "w");
	struct evbuffer *out = evbuffer_new();
	double t0, ns_obs;
	uint64_t n;

	if (csv == NULL || out == NULL) {
		fprintf(stderr, "bench-metrics: cannot open %s\n", csv_path);
		return 1;
	}
	for (int h = 0; h < 3; h++) {
		rd_metrics_hist_init(&hists[h], rd_metrics_latency_buckets,
		                     rd_metrics_latency_buckets_n);
		for (int i = 0; i < 1000; i++)
			rd_metrics_hist_observe(&hists[h], 0.00001 * i * (h + 1));
	}
	printf(
	    "bench-metrics: /metrics rendering through lib/ctl/metrics (whole catalog, "
	    "%u families, 3 histograms of %u buckets), median of 5 runs of >= 0.5 s\n",
	    (unsigned)RD_METRIC_COUNT, rd_metrics_latency_buckets_n);
	fprintf(csv, "groups,peers,bytes,lines,render_us\n");
	for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
		unsigned g = sizes[s][0], p = sizes[s][1];
		double runs[5];
		size_t bytes = 0, lines = 0;

		for (int r = 0; r < 5; r++) {
			n = 0;
			t0 = now_s();
			do {
				evbuffer_drain(out, evbuffer_get_length(out));
				scrape(out, g, p);
				n++;
			} while (now_s() - t0 < 0.5);
			runs[r] = (now_s() - t0) / (double)n * 1e6;
		}
		qsort(runs, 5, sizeof runs[0], cmp);
		bytes = evbuffer_get_length(out);
		char *text = malloc(bytes + 1);
		evbuffer_copyout(out, text, bytes);
		text[bytes] = '\0';
		for (size_t i = 0; i < bytes; i++)
			lines += text[i] == '\n';
		if (rd_check_prometheus(text, bytes, NULL) != 0) {
			fprintf(stderr, "bench-metrics: invalid output\n");
			return 1;
		}
		free(text);
		printf(
		    "  groups=%-5u peers=%-3u  %8zu bytes %7zu lines  %9.1f us/scrape\n",
		    g, p, bytes, lines, runs[2]);
		fprintf(csv, "%u,%u,%zu,%zu,%.1f\n", g, p, bytes, lines, runs[2]);
	}

	n = 0;
	t0 = now_s();
	do {
		for (int i = 0; i < 1000; i++)
			rd_metrics_hist_observe(&hists[0],
			                        0.0000137 * (double)(i & 1023));
		n += 1000;
	} while (now_s() - t0 < 0.5);
	ns_obs = (now_s() - t0) / (double)n * 1e9;
	printf("  histogram observe (%u buckets, binary search): %.1f ns/op\n",
	       rd_metrics_latency_buckets_n, ns_obs);
	fprintf(csv, "# observe_ns,%.1f\n", ns_obs);
	fclose(csv);
	evbuffer_free(out);
	printf("  csv: %s\n", csv_path);
	return 0;
}
