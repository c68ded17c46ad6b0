# make bench-gray: the time from "one node's disk turned slow" to "no
# leadership left on that node", with 3 nodes and 16 data groups and the
# default [health] thresholds (tests/cluster/test_gray.c, run with
# RD_GRAY_BENCH=1), once per injected fsync delay in GRAY_DELAYS_MS and
# [raft] election_ticks in GRAY_ELECTION_TICKS (set in the Makefile's
# defaults). With the default 30 ticks (300 ms) a slow loop misses
# heartbeats and elections move leadership before the verdict; with 300
# (3 s) only the evacuation does.

.PHONY: bench-gray
BENCH_TARGETS += bench-gray
HELP_bench-gray := slow-disk evacuation: 3 nodes, 16 groups, time until the slow node leads nothing (GRAY_DELAYS_MS x GRAY_ELECTION_TICKS)
bench-gray: $(B)/tests/test-cluster
	$(call msg,RUN,$@)
	$(Q)for e in $(GRAY_ELECTION_TICKS); do for d in $(GRAY_DELAYS_MS); do \
	  RD_GRAY_BENCH=1 RD_GRAY_DELAY_MS=$$d RD_GRAY_ELECTION_TICKS=$$e \
	    $< --filter 'gray/slow_disk*' 2>&1 | grep '^bench-gray' || exit 1; \
	done; done
