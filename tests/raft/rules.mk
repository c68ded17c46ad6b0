# The Raft simulation driver: `make sim` runs seeds 1..SEEDS; `make sim
# SEED=S` replays one seed with a trace of every message and role change.
# fuzz-raft runs the core and the same harness under libFuzzer.

RAFT_HARNESS_SRC := tests/raft/cluster.c tests/raft/checker.c tests/raft/scenario.c \
	tests/raft/sim.c
RAFT_HARNESS_OBJ := $(RAFT_HARNESS_SRC:%.c=$(B)/%.o)

$(B)/tests/raft-sim: $(B)/tests/bench/raft_sim.o $(RAFT_HARNESS_OBJ) $(LIBRAFTD)
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS_ALL) $(filter %.o %.a,$^) $(LDLIBS_ALL) -o $@

.PHONY: sim
HELP_sim := the randomized Raft simulation (SEEDS=N seeds, or SEED=S traced)
sim: $(B)/tests/raft-sim
	$(call msg,RUN,$@)
	$(Q)$< $(if $(SEED),--seed $(SEED) -v,--seeds $(SEEDS))

TOOL_TARGETS += sim

# libFuzzer: the core and the harness, compiled with coverage.
RAFT_CORE_SRC := $(sort $(wildcard lib/raft/*.c)) lib/util/err.c lib/util/fatal.c lib/util/hash.c \
	lib/util/log.c
HELP_fuzz-raft := the Raft core under random message schedules (tests/fuzz/raft_fuzz.c)
$(B)/fuzz/raft-fuzz: tests/fuzz/raft_fuzz.c $(RAFT_HARNESS_SRC) $(RAFT_CORE_SRC) \
		tests/raft/cluster.h lib/raft/raft.h lib/raft/core.h
	@mkdir -p $(dir $@)
	$(call msg,FUZZCC,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -Itests/raft $(filter %.c,$^) -o $@
$(eval $(call fuzz_target,raft,$(B)/fuzz/raft-fuzz,-max_len=512))

