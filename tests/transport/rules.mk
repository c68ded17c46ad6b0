# Transport extras: the benchmark (make bench-transport) and the libFuzzer
# target for the frame decoder (make fuzz). Kept here, in the transport's
# own test directory, so that tests/bench and tests/fuzz need no shared
# rules file.

TRANSPORT_BENCH := $(B)/bench/transport_bench

$(TRANSPORT_BENCH): $(B)/tests/bench/transport_bench.o $(LIBRAFTD)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) $^ $(LDLIBS_ALL) -o $@

.PHONY: bench-transport fuzz-transport
bench-transport: $(TRANSPORT_BENCH)
	@mkdir -p $(B)/bench
	$(TRANSPORT_BENCH) $(B)/bench/transport.csv

BENCH_TARGETS += bench-transport
