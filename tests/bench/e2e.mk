# make bench-e2e: 3 local raftd nodes (mutual TLS, fsync on) under a
# closed-loop put load; see tests/bench/e2e.sh.
E2E_LOAD := $(B)/bench/e2e_load

$(E2E_LOAD): $(B)/tests/bench/e2e_load.o $(LIBRAFTD)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) $^ $(LDLIBS_ALL) -o $@

.PHONY: bench-e2e
bench-e2e: $(DAEMONS) $(E2E_LOAD)
	bash tests/bench/e2e.sh $(abspath $(B)) $(E2E_SECONDS)

BENCH_TARGETS += bench-e2e
E2E_SECONDS ?= 10
