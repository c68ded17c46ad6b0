# Benchmarks: one program each under tests/bench/, built against libraftd
# and run by `make bench-X` (all of them: `make bench`). Each prints its
# setup with its figures; none is part of `make test`.

# bench_prog(name, extra link flags): $(B)/bench/<name> from
# tests/bench/<name>.c and libraftd (and objects added as prerequisites).
define bench_prog
$(B)/bench/$(1): $(B)/tests/bench/$(1).o $(LIBRAFTD)
	@mkdir -p $$(dir $$@)
	$$(call msg,LD,$$@)
	$$(Q)$$(CC) $$(LDFLAGS_ALL) $(2) $$(filter %.o,$$^) $$(filter %.a,$$^) $$(LDLIBS_ALL) -o $$@
endef

$(eval $(call bench_prog,core_bench,-Wl$(comma)--wrap=malloc -Wl$(comma)--wrap=calloc -Wl$(comma)--wrap=realloc))
$(eval $(call bench_prog,storage_bench,))
$(eval $(call bench_prog,transport_bench,))
$(eval $(call bench_prog,metrics_bench,))
$(eval $(call bench_prog,e2e_load,))
$(eval $(call bench_prog,failover_bench,))
$(eval $(call bench_prog,backup_load,))
$(eval $(call bench_prog,idle_first_write,))
# The state loaders share the put loader (tests/bench/put_loader.c).
$(B)/bench/backup_load $(B)/bench/join_load: $(B)/tests/bench/put_loader.o

.PHONY: bench-core bench-storage bench-transport bench-metrics bench-e2e bench-failover bench-vs-etcd bench-backup

HELP_bench-core := the Raft core alone: entries/s, allocations per entry
bench-core: $(B)/bench/core_bench
	$(call msg,RUN,$@)
	$(Q)$< $(B)/bench/core.csv

HELP_bench-storage := fdatasync rate and group commit on RocksDB (STORAGE_BENCH_SECONDS per case)
bench-storage: $(B)/bench/storage_bench
	$(call msg,RUN,$@)
	$(Q)$< $(B)/bench $(STORAGE_BENCH_SECONDS)

HELP_bench-transport := two QUIC endpoints on loopback: messages/s and MB/s
bench-transport: $(B)/bench/transport_bench
	$(call msg,RUN,$@)
	$(Q)$< $(B)/bench/transport.csv

HELP_bench-metrics := the cost of rendering /metrics
bench-metrics: $(B)/bench/metrics_bench
	$(call msg,RUN,$@)
	$(Q)$< $(B)/bench/metrics.csv

HELP_bench-e2e := 3 local raftd nodes (mutual TLS, fsync) under put load (E2E_SECONDS)
bench-e2e: $(DAEMONS) $(B)/bench/e2e_load
	$(call msg,RUN,$@)
	$(Q)bash tests/bench/e2e.sh $(abspath $(B)) $(E2E_SECONDS)

# make bench-failover: kill rounds (two kills each) and writers.
FAILOVER_ROUNDS ?= 5
FAILOVER_CLIENTS ?= 50

HELP_bench-failover := 3 nodes, FAILOVER_CLIENTS session writers, FAILOVER_ROUNDS x kill the leaders of group 0 and the busiest data group
bench-failover: $(DAEMONS) $(B)/bench/failover_bench
	$(call msg,RUN,$@)
	$(Q)bash tests/bench/failover.sh $(abspath $(B)) $(FAILOVER_ROUNDS) $(FAILOVER_CLIENTS)

BENCH_TARGETS += bench-core bench-storage bench-transport bench-metrics bench-e2e bench-failover
$(eval $(call bench_prog,tail_bench,))
.PHONY: bench-tail
HELP_bench-tail := 3 local raftd nodes: entries/s to one subscriber, propose-to-delivery p50/p99
bench-tail: $(DAEMONS) $(B)/bench/tail_bench
	$(call msg,RUN,$@)
	$(Q)bash tests/bench/tail.sh $(abspath $(B)) $(TAIL_SECONDS)
BENCH_TARGETS += bench-tail

HELP_bench-vs-etcd := etcd x3 (etcdctl check perf --load=l) then bench-e2e at 500 clients: both and the ratio
bench-vs-etcd: $(DAEMONS) $(B)/bench/e2e_load
	$(call msg,RUN,$@)
	$(Q)bash tests/bench/vs_etcd.sh $(abspath $(B)) $(E2E_SECONDS)

# Not part of `make bench`: it installs etcd, which nothing else needs.
TOOL_TARGETS += bench-vs-etcd

HELP_bench-backup := backup save and restore of BACKUP_MB MB of state: MB/s, daemon RSS
bench-backup: $(DAEMONS) $(B)/bench/backup_load
	$(call msg,RUN,$@)
	$(Q)bash tests/bench/backup.sh $(abspath $(B)) $(BACKUP_MB)

BENCH_TARGETS += bench-backup

.PHONY: bench-idle
HELP_bench-idle := 3 nodes x GROUPS data groups idle IDLE_SECONDS: CPU and RSS per replica, frames per peer/s, first write p50/p99 (BENCH_TMPDIR=/dev/shm: data on a tmpfs)
bench-idle: $(DAEMONS) $(B)/bench/idle_first_write
	$(call msg,RUN,$@)
	$(Q)bash tests/bench/idle.sh $(abspath $(B)) $(GROUPS) $(IDLE_SECONDS)

BENCH_TARGETS += bench-idle

$(eval $(call bench_prog,join_load,))
.PHONY: bench-join
# make bench-join: data groups and keys loaded before the joins.
JOIN_GROUPS ?= 16
JOIN_KEYS ?= 10000
HELP_bench-join := 3 nodes, JOIN_GROUPS data groups, JOIN_KEYS keys: seconds until a 5th node joined with [cluster] join is a learner, ready, a voter, holding its share of data replicas
bench-join: $(DAEMONS) $(B)/bench/join_load
	$(call msg,RUN,$@)
	$(Q)bash tests/bench/join.sh $(abspath $(B)) $(JOIN_GROUPS) $(JOIN_KEYS)

BENCH_TARGETS += bench-join
