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

# The frame decoder under libFuzzer (clang 14, libclang-rt-14-dev).
TRANSPORT_FUZZ := $(B)/fuzz/transport_frame_fuzz

$(TRANSPORT_FUZZ): tests/fuzz/transport_frame_fuzz.c lib/transport/wire.c lib/util/err.c lib/util/pbbudget.c $(GEN_C)
	@mkdir -p $(dir $@)
	clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Ilib -I$(B)/gen \
	  -Wall $(filter %.c,$^) -lprotobuf-c -o $@

fuzz-transport: $(TRANSPORT_FUZZ)

# A short run, for a quick check: make fuzz-transport-run FUZZ_SECONDS=30
FUZZ_SECONDS ?= 20
.PHONY: fuzz-transport-run
fuzz-transport-run: $(TRANSPORT_FUZZ)
	@mkdir -p $(B)/fuzz/transport-corpus
	$(TRANSPORT_FUZZ) -max_total_time=$(FUZZ_SECONDS) $(B)/fuzz/transport-corpus

FUZZ_TARGETS += fuzz-transport
