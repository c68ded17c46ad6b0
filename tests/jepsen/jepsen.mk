# Jepsen-style suite (tests/jepsen/, Python 3 from Debian + two small C
# helpers built here):
#   make jepsen          the long form: JEPSEN_RUNS (1), JEPSEN_SECONDS (30),
#                        JEPSEN_NEMESIS (mixed), JEPSEN_SEED (replay one
#                        run), JEPSEN_NODES (3), JEPSEN_WORKLOAD (all)
#   make test-jepsen     the bounded form in `make test`: the checker's and
#                        codec's own tests, then JEPSEN_TEST_RUNS (2) runs of
#                        JEPSEN_TEST_SECONDS (30) with mixed nemeses
#   make test-jepsen-checker   only the checker's and codec's own tests
# Partitions need nftables (installed through .ci/pkgs.sh) and root.
JEPSEN_SHIM := $(B)/jepsen/slowfs.so
JEPSEN_CODEC := $(B)/jepsen/jepsen-codec
JEPSEN_PY := /usr/bin/python3

$(JEPSEN_SHIM): tests/jepsen/slowfs.c
	@mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)$(CC) -std=c11 -O2 -g -D_GNU_SOURCE $(WARN) -fPIC -shared $< -o $@

$(JEPSEN_CODEC): tests/jepsen/codec.c $(B)/gen/raftd.pb-c.o
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)
	$(Q)$(CC) $(CPPFLAGS_ALL) -std=c11 $(OPT) -g $(SANFLAGS) $(WARN) $^ \
	  -lprotobuf-c $(LDFLAGS_ALL) -o $@

.PHONY: jepsen test-jepsen test-jepsen-checker jepsen-tools
jepsen-tools: $(DAEMONS) $(JEPSEN_SHIM) $(JEPSEN_CODEC)
	@bash .ci/pkgs.sh nftables

test-jepsen-checker: $(JEPSEN_CODEC) $(JEPSEN_SHIM)
	cd tests/jepsen && $(JEPSEN_PY) -B -m unittest test_checker test_codec test_slowfs test_leaders test_nemesis

JEPSEN_TEST_RUNS ?= 2
JEPSEN_TEST_SECONDS ?= 30
test-jepsen: test-jepsen-checker $(if $(filter 0,$(JEPSEN_TEST_RUNS)),,jepsen-tools)
	$(if $(filter 0,$(JEPSEN_TEST_RUNS)),@echo "test-jepsen: JEPSEN_TEST_RUNS=0: no fault runs",\
	  $(JEPSEN_PY) -B tests/jepsen/jepsen.py --runs $(JEPSEN_TEST_RUNS) \
	  --seconds $(JEPSEN_TEST_SECONDS) --nemesis mixed)

JEPSEN_RUNS ?= 1
JEPSEN_SECONDS ?= 30
JEPSEN_NEMESIS ?= mixed
JEPSEN_NODES ?= 3
JEPSEN_WORKLOAD ?= all
export JEPSEN_CLIENTS JEPSEN_KEYS JEPSEN_EXTRA_CONF JEPSEN_SNAPSHOT_ENTRIES JEPSEN_KEEP \
  JEPSEN_THINK_MS
jepsen: jepsen-tools
	$(JEPSEN_PY) -B tests/jepsen/jepsen.py --runs $(JEPSEN_RUNS) \
	  --seconds $(JEPSEN_SECONDS) --nemesis '$(JEPSEN_NEMESIS)' \
	  --nodes $(JEPSEN_NODES) --workload $(JEPSEN_WORKLOAD) \
	  $(if $(JEPSEN_SEED),--seed $(JEPSEN_SEED))

TEST_TARGETS += test-jepsen
TOOL_TARGETS += jepsen test-jepsen-checker
HELP_test-jepsen := the bounded Jepsen-style run (JEPSEN_TEST_RUNS x JEPSEN_TEST_SECONDS, mixed nemeses)
HELP_jepsen := Jepsen-style fault runs: JEPSEN_RUNS, JEPSEN_SECONDS, JEPSEN_NEMESIS, JEPSEN_SEED
HELP_test-jepsen-checker := the own tests of the checker, the codec and the slow-disk shim
