# Storage benchmark (issue 4): `make bench-storage`, also part of `make bench`.
# The program lives in tests/bench/storage_bench.c (it has a main(), so it is
# built here rather than as part of a Criterion binary).
STORAGE_BENCH := $(B)/bench/storage_bench

$(STORAGE_BENCH): $(B)/tests/bench/storage_bench.o $(LIBRAFTD)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) $^ $(LDLIBS_ALL) -o $@

.PHONY: bench-storage
bench-storage: $(STORAGE_BENCH)
	$(STORAGE_BENCH) $(B)/bench $(STORAGE_BENCH_SECONDS)

STORAGE_BENCH_SECONDS ?= 2
BENCH_TARGETS += bench-storage
