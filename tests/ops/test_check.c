/* The JSON and Prometheus checkers accept what they must and reject each
 * kind of mistake with its position; and a node writing the whole metrics
 * catalog through ctl/metrics.h produces text they accept, with every
 * family present. */
#include <criterion/criterion.h>
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/check.h"
#include "ctl/metrics.h"
#include "util/err.h"

static void json_ok(const char *s)
{
	char msg[RD_ERRMSG_SIZE] = "";
	cr_assert_eq(rd_check_json(s, strlen(s), msg), 0, "rejected %s: %s", s, msg);
}

static void json_bad(const char *s, const char *want)
{
	char msg[RD_ERRMSG_SIZE] = "";
	cr_assert_eq(rd_check_json(s, strlen(s), msg), RD_EINVAL, "accepted %s", s);
	cr_assert_not_null(strstr(msg, want), "%s: message '%s' lacks '%s'", s, msg,
	                   want);
}

Test(check, json_accepts_valid_documents)
{
	json_ok("{}");
	json_ok(" [] \n");
	json_ok("0");
	json_ok("{\"a\":[1,-2.5e3,0.5,1E+2,true,false,null,\"x\\u00e9\\n\"],\"b\":{}}");
	json_ok("\"caf\xc3\xa9\"");
}

Test(check, json_rejects_mistakes)
{
	json_bad("", "unexpected end");
	json_bad("{", "expected a string");
	json_bad("{\"a\":}", "expected a value");
	json_bad("[1,]", "expected a value");
	json_bad("01", "leading zero");
	json_bad("1.", "digits expected");
	json_bad("\"a\x01\"", "control character");
	json_bad("\"\\q\"", "bad escape");
	json_bad("\"\\u12\"", "bad \\u escape");
	json_bad("{\"a\" 1}", "expected ':'");
	json_bad("[1 2]", "expected ',' or ']'");
	json_bad("tru", "expected a value");
	json_bad("1 2", "trailing characters");
	json_bad("\"abc", "unterminated string");
	json_bad("offset", "offset 0");
}

Test(check, json_limits_nesting)
{
	char deep[200];
	memset(deep, '[', 100);
	memset(deep + 100, ']', 100);
	cr_assert_eq(rd_check_json(deep, 200, NULL), RD_EINVAL);
}

static void prom_ok(const char *s)
{
	char msg[RD_ERRMSG_SIZE] = "";
	cr_assert_eq(rd_check_prometheus(s, strlen(s), msg), 0, "rejected:\n%s\n%s", s,
	             msg);
}

static void prom_bad(const char *s, const char *want)
{
	char msg[RD_ERRMSG_SIZE] = "";
	cr_assert_eq(rd_check_prometheus(s, strlen(s), msg), RD_EINVAL, "accepted:\n%s",
	             s);
	cr_assert_not_null(strstr(msg, want), "message '%s' lacks '%s' for:\n%s", msg,
	                   want, s);
}

#define H "# HELP h_seconds x\n# TYPE h_seconds histogram\n"

Test(check, prometheus_accepts_valid_text)
{
	prom_ok("");
	prom_ok("# a free comment\n\nup 1\n");
	prom_ok("# HELP c_total x\n# TYPE c_total counter\nc_total{a=\"1\"} 3\n"
	        "c_total{a=\"2\",b=\"q\\\"\\\\\\n\"} 4 1700000000000\n");
	prom_ok("# TYPE g gauge\ng -1.5e-3\ng{x=\"y\",} +Inf\n");
	prom_ok(H "h_seconds_bucket{le=\"0.5\"} 1\nh_seconds_bucket{le=\"+Inf\"} 2\n"
	          "h_seconds_sum 0.7\nh_seconds_count 2\n"
	          "h_seconds_bucket{g=\"1\",le=\"0.5\"} "
	          "0\nh_seconds_bucket{g=\"1\",le=\"+Inf\"} 0\n"
	          "h_seconds_sum{g=\"1\"} 0\nh_seconds_count{g=\"1\"} 0\n");
}

Test(check, prometheus_rejects_format_mistakes)
{
	prom_bad("up 1", "newline");
	prom_bad("9up 1\n", "bad metric name");
	prom_bad("up\n", "no value");
	prom_bad("up one\n", "bad value");
	prom_bad("up 1 x\n", "bad timestamp");
	prom_bad("up{a=1} 1\n", "bad label");
	prom_bad("up{a=\"1\" 1\n", "expected ',' or '}'");
	prom_bad("up{a=\"\\t\"} 1\n", "bad escape");
	prom_bad("up{a=\"1\",a=\"2\"} 1\n", "given twice");
	prom_bad("# TYPE up gauge\n# TYPE up gauge\nup 1\n", "second TYPE");
	prom_bad("# HELP up a\n# HELP up b\nup 1\n", "second HELP");
	prom_bad("up 1\n# TYPE up gauge\n", "after its samples");
	prom_bad("# TYPE up meter\n", "unknown type");
}

Test(check, prometheus_rejects_semantic_mistakes)
{
	prom_bad("a 1\nb 1\na{x=\"1\"} 2\n", "not contiguous");
	prom_bad("a{x=\"1\"} 1\na{x=\"1\"} 2\n", "twice");
	prom_bad("# TYPE c_total counter\nc_total -1\n", "negative");
	prom_bad(H "h_seconds_bucket{le=\"1\"} 1\nh_seconds_bucket{le=\"0.5\"} 1\n",
	         "ascending");
	prom_bad(H "h_seconds_bucket{le=\"0.5\"} 2\nh_seconds_bucket{le=\"1\"} 1\n",
	         "decrease");
	prom_bad(H "h_seconds_bucket{le=\"0.5\"} 1\nh_seconds_sum 1\n",
	         "before the +Inf");
	prom_bad(H
	         "h_seconds_bucket{le=\"+Inf\"} 2\nh_seconds_sum 1\nh_seconds_count 3\n",
	         "differs");
	prom_bad(H "h_seconds_bucket{le=\"+Inf\"} 2\nh_seconds_count 2\n", "before _sum");
	prom_bad(H "h_seconds_bucket{le=\"+Inf\"} 2\nh_seconds_sum 1\n", "ends before");
	prom_bad(H "h_seconds 1\n", "suffix");
	prom_bad(H "h_seconds_bucket 1\n", "without a valid le");
}

static void labels_for(enum rd_metric_id id, const char *a, const char *b,
                       struct rd_metric_labels *l)
{
	const char *names = rd_metrics_desc(id)->labels;
	if (names[0] == '\0')
		*l = RD_METRICS_L0;
	else if (strchr(names, ',') == NULL)
		*l = RD_METRICS_L1(names, a);
	else
		*l = RD_METRICS_L2("group", a, "role", b);
}

/* A node's whole /metrics, written from the catalog with two series per
 * labelled family: valid, and every family is there. */
Test(check, whole_catalog_is_valid_prometheus)
{
	struct evbuffer *out = evbuffer_new();
	struct rd_metric_hist h;
	char msg[RD_ERRMSG_SIZE] = "";

	rd_metrics_hist_init(&h, rd_metrics_latency_buckets,
	                     rd_metrics_latency_buckets_n);
	rd_metrics_hist_observe(&h, 0.003);
	rd_metrics_hist_observe(&h, 20);
	for (unsigned i = 0; i < RD_METRIC_COUNT; i++) {
		const struct rd_metric_desc *d = rd_metrics_desc(i);
		const char *const ids[] = {"1", "2"};
		rd_metrics_family(out, i);
		for (int k = 0; k < (d->labels[0] != '\0' ? 2 : 1); k++) {
			struct rd_metric_labels l;
			labels_for(i, ids[k], "follower", &l);
			if (d->type == RD_METRIC_HISTOGRAM)
				rd_metrics_histogram(out, d->name, l, &h);
			else if (d->type == RD_METRIC_COUNTER)
				rd_metrics_counter(out, d->name, l, 7);
			else
				rd_metrics_gauge(out, d->name, l, 0.25);
		}
	}
	size_t n = evbuffer_get_length(out);
	char *text = malloc(n + 1);
	evbuffer_remove(out, text, n);
	text[n] = '\0';
	cr_assert_eq(rd_check_prometheus(text, n, msg), 0, "%s\n%s", msg, text);
	for (unsigned i = 0; i < RD_METRIC_COUNT; i++)
		cr_assert(rd_check_prometheus_has(text, rd_metrics_desc(i)->name), "%s",
		          rd_metrics_desc(i)->name);
	cr_assert_not(rd_check_prometheus_has(text, "raft_group"));
	cr_assert_not(rd_check_prometheus_has(text, "raft_nope"));
	free(text);
	evbuffer_free(out);
}
