# make bench-metrics: the cost of rendering /metrics (tests/ops/bench/).
BENCH_METRICS := $(B)/bench/metrics_bench

$(BENCH_METRICS): $(B)/tests/ops/bench/metrics_bench.o $(LIBRAFTD)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) $^ $(LDLIBS_ALL) -o $@

.PHONY: bench-metrics
bench-metrics: $(BENCH_METRICS)
	@mkdir -p $(B)/bench
	$(BENCH_METRICS) $(B)/bench/metrics.csv

BENCH_TARGETS += bench-metrics
