/*
 * Checkers for what the admin server serves, so that tests (unit tests with
 * a fake node here, cluster tests against a running raftd) can assert that
 * /status is JSON and /metrics is well-formed Prometheus text without an
 * external parser. They read, never modify, and never allocate more than
 * the bookkeeping of one /metrics body.
 */
#ifndef RD_CTL_CHECK_H
#define RD_CTL_CHECK_H

#include <stdbool.h>
#include <stddef.h>

/* 0 when `text` (`len` bytes) is exactly one JSON value (RFC 8259),
 * optionally surrounded by whitespace; else RD_EINVAL with "offset N: what"
 * in `msg`. Nesting deeper than 64 levels is refused. */
int rd_check_json(const char *text, size_t len, char *msg);

/* 0 when `text` is valid Prometheus text format 0.0.4, with the rules a
 * scraper relies on:
 *   - every line ends with '\n'; "# HELP name text" and "# TYPE name type"
 *     at most once per family and before its samples; other comments are
 *     allowed;
 *   - a sample is name{label="value",...} value [timestamp], with valid
 *     names, escapes only \\ \" \n in label values, and Go-syntax floats;
 *   - the samples of a family are contiguous; no series appears twice;
 *   - counters are not negative;
 *   - a histogram series lists its buckets with ascending le and
 *     non-decreasing counts, ends them with le="+Inf", then gives _sum and
 *     _count, and _count equals the +Inf bucket.
 * Else RD_EINVAL with "line N: what" in `msg`. */
int rd_check_prometheus(const char *text, size_t len, char *msg);

/* True when `text` holds at least one sample of family `name` (for a
 * histogram: a name_bucket, name_sum or name_count sample). Assumes
 * rd_check_prometheus accepted `text`. */
bool rd_check_prometheus_has(const char *text, const char *name);

#endif
