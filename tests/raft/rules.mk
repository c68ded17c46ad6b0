# Raft core tools: the simulation driver (make sim), the core benchmark
# (make bench-core) and the libFuzzer target (make fuzz-raft).

RAFT_HARNESS_SRC := tests/raft/cluster.c tests/raft/checker.c tests/raft/scenario.c \
	tests/raft/sim.c
RAFT_HARNESS_OBJ := $(RAFT_HARNESS_SRC:%.c=$(B)/%.o)
RAFT_CORE_SRC := $(sort $(wildcard lib/raft/*.c)) lib/util/err.c

$(B)/tests/raft-sim: $(B)/tests/bench/raft_sim.o $(RAFT_HARNESS_OBJ) $(LIBRAFTD)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) $(filter %.o %.a,$^) $(LDLIBS_ALL) -o $@

# make sim [SEEDS=N] runs seeds 1..N; make sim SEED=S replays one seed with
# a trace of every message and role change.
SEEDS ?= 2000
.PHONY: sim bench-core fuzz-raft
sim: $(B)/tests/raft-sim
	$< $(if $(SEED),--seed $(SEED) -v,--seeds $(SEEDS))

$(B)/tests/core-bench: $(B)/tests/bench/core_bench.o $(LIBRAFTD)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc \
	  $(filter %.o %.a,$^) $(LDLIBS_ALL) -o $@

bench-core: $(B)/tests/core-bench
	@mkdir -p $(B)/bench
	$< $(B)/bench/core.csv

BENCH_TARGETS += bench-core

# libFuzzer: the core and the harness compiled by clang with coverage.
FUZZ_CC ?= $(shell command -v clang-14 || echo clang)
$(B)/fuzz/raft-fuzz: tests/fuzz/raft_fuzz.c $(RAFT_HARNESS_SRC) $(RAFT_CORE_SRC) \
		tests/raft/cluster.h lib/raft/raft.h lib/raft/core.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Ilib \
	  -Itests/raft tests/fuzz/raft_fuzz.c $(RAFT_HARNESS_SRC) $(RAFT_CORE_SRC) -o $@

# Builds, then fuzzes for FUZZ_SECONDS (default 60; 0 = build only).
FUZZ_SECONDS ?= 60
fuzz-raft: $(B)/fuzz/raft-fuzz
	@mkdir -p $(B)/fuzz/raft-corpus
	@if [ "$(FUZZ_SECONDS)" != 0 ]; then \
	  $< -max_total_time=$(FUZZ_SECONDS) -max_len=512 $(B)/fuzz/raft-corpus; fi

FUZZ_TARGETS += fuzz-raft
