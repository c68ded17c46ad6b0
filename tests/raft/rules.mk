# Raft core tools: the simulation driver (make sim), the core benchmark
# (make bench-core) and the libFuzzer target (make fuzz-raft).

RAFT_HARNESS_SRC := tests/raft/cluster.c tests/raft/scenario.c tests/raft/sim.c
RAFT_HARNESS_OBJ := $(RAFT_HARNESS_SRC:%.c=$(B)/%.o)
RAFT_CORE_SRC := $(sort $(wildcard lib/raft/*.c)) lib/util/err.c

$(B)/tests/raft-sim: $(B)/tests/bench/raft_sim.o $(RAFT_HARNESS_OBJ) $(LIBRAFTD)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) $(filter %.o %.a,$^) $(LDLIBS_ALL) -o $@

SEEDS ?= 2000
.PHONY: sim bench-core fuzz-raft
sim: $(B)/tests/raft-sim
	@start=$$(date +%s); $< --seeds $(SEEDS); rc=$$?; \
	echo "sim took $$(( $$(date +%s) - start )) s"; exit $$rc

$(B)/tests/core-bench: $(B)/tests/bench/core_bench.o $(LIBRAFTD)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc \
	  $(filter %.o %.a,$^) $(LDLIBS_ALL) -o $@

bench-core: $(B)/tests/core-bench
	@mkdir -p $(B)/bench
	$< $(B)/bench/core.csv

BENCH_TARGETS += bench-core

# libFuzzer: the core and the harness compiled by clang with coverage.
FUZZ_CC ?= clang
$(B)/fuzz/raft-fuzz: tests/fuzz/raft_fuzz.c $(RAFT_HARNESS_SRC) $(RAFT_CORE_SRC) \
		tests/raft/cluster.h lib/raft/raft.h lib/raft/core.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Ilib \
	  -Itests/raft tests/fuzz/raft_fuzz.c $(RAFT_HARNESS_SRC) $(RAFT_CORE_SRC) -o $@

fuzz-raft: $(B)/fuzz/raft-fuzz
	@mkdir -p $(B)/fuzz/raft-corpus
	$< -max_total_time=$${FUZZ_SECONDS:-60} -max_len=512 $(B)/fuzz/raft-corpus

FUZZ_TARGETS += fuzz-raft
