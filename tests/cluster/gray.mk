# make bench-gray: the time from "one node's disk turned slow" to "no
# leadership left on that node", with 3 nodes and 16 data groups and the
# default [health] thresholds (tests/cluster/test_gray.c, run with
# RD_GRAY_BENCH=1), once per injected fsync delay in GRAY_DELAYS_MS (set
# in the Makefile's defaults).

.PHONY: bench-gray
BENCH_TARGETS += bench-gray
HELP_bench-gray := slow-disk evacuation: 3 nodes, 16 groups, time until the slow node leads nothing (GRAY_DELAYS_MS)
bench-gray: $(B)/tests/test-cluster
	$(call msg,RUN,$@)
	$(Q)for d in $(GRAY_DELAYS_MS); do \
	  RD_GRAY_BENCH=1 RD_GRAY_DELAY_MS=$$d $< --filter 'gray/slow_disk*' 2>&1 | \
	    grep '^bench-gray' || exit 1; \
	done
