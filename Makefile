# raftd — build, test, run. See README.md for the two commands that matter:
# `make run` and `make test`. Everything else is listed by `make help`.
#
# Layout of the build tree:
#   build/deps/        wolfSSL + ngtcp2 built from Debian source (make deps)
#   build/             normal build (objects, libraftd.a, raftd, raftctl, tests)
#   build/asan/        the same with ASan + UBSan (make ... SANITIZE=1)
#
# Areas may add their own targets in fragments `tests/<dir>/*.mk`,
# appending to TEST_TARGETS, BENCH_TARGETS, FUZZ_TARGETS or TOOL_TARGETS and
# setting HELP_<target> to the line `make help` prints for it. Fragment
# rules use $(call msg,...) and $(Q) like the rules here, and the macros
# bench_prog (tests/bench/rules.mk) and fuzz_target (below).

.DEFAULT_GOAL := all
SHELL := /bin/bash

# --- defaults: every knob of every target, set here and nowhere else ------------
DEPS ?= build/deps
SANITIZE ?= 0
# make run: cluster size. make sim: seeds 1..SEEDS (SEED=S replays one).
NODES ?= 3
SEEDS ?= 2000
# make fuzz-X: seconds of fuzzing (0: build only), and the compiler.
FUZZ_SECONDS ?= 60
FUZZ_CC ?= $(shell command -v clang-14 || echo clang)
# make bench-e2e: load duration; make bench-storage: seconds per case.
E2E_SECONDS ?= 10
# make bench-gray: the fsync delays (ms) injected on one node, and the
# [raft] election_ticks values, one run per pair.
GRAY_DELAYS_MS ?= 150 400
GRAY_ELECTION_TICKS ?= 30 300
# make bench-tail: seconds of writing while one subscriber tails.
TAIL_SECONDS ?= 5
# make bench-idle: data groups per node and seconds of idleness measured.
GROUPS ?= 1024
IDLE_SECONDS ?= 30
STORAGE_BENCH_SECONDS ?= 1.5
# make bench-backup: megabytes of state saved and restored.
BACKUP_MB ?= 1024
PREFIX ?= /usr/local
MANDIR ?= $(PREFIX)/share/man

DEPS_STAMP := $(DEPS)/stamp
VERSION := 0.1.0
comma := ,

ifeq ($(SANITIZE),1)
B := build/asan
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
OPT := -O1
else
B := build
SANFLAGS :=
OPT := -O2
endif

CC ?= gcc
# Quiet by default; `make V=1` shows every command.
ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-6s %s\n' $(1) $(2)
endif
WARN := -Wall -Wextra -Wshadow -Wformat=2 -Wimplicit-fallthrough \
        -Wstrict-prototypes -Wmissing-prototypes -Werror
CORE_WARN := -Wconversion
CPPFLAGS_ALL := -D_GNU_SOURCE -DRD_VERSION='"$(VERSION)"' -Ilib -I$(B)/gen \
        -I$(DEPS)/include
CFLAGS_ALL := -std=c11 $(OPT) -g -pthread $(SANFLAGS) -MMD -MP $(CFLAGS)
GEN_CFLAGS := -std=c11 $(OPT) -g -pthread $(SANFLAGS) -MMD -MP -w $(CFLAGS)
LDLIBS_ALL := $(DEPS)/lib/libngtcp2_crypto_wolfssl.a $(DEPS)/lib/libngtcp2.a \
        $(DEPS)/lib/libwolfssl.a -lrocksdb -levent -lprotobuf-c -linih \
        -lsystemd -lm -lpthread
LDFLAGS_ALL := -pthread $(SANFLAGS) $(LDFLAGS)

PROTO := proto/raftd.proto
GEN_C := $(B)/gen/raftd.pb-c.c
GEN_H := $(B)/gen/raftd.pb-c.h

LIB_SRC := $(sort $(wildcard lib/*/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o) $(B)/gen/raftd.pb-c.o
LIBRAFTD := $(B)/libraftd.a

DAEMONS := $(B)/raftd $(B)/raftctl

# One Criterion binary per test directory that holds test_*.c files; every
# other .c file in that directory is a helper linked into the same binary,
# and so is every file of tests/common/ (helpers more than one suite uses,
# included as "common/NAME.h").
TEST_COMMON_SRC := $(sort $(wildcard tests/common/*.c))
TEST_DIRS := $(sort $(patsubst tests/%/,%,$(dir $(wildcard tests/*/test_*.c))))
TEST_BINS := $(TEST_DIRS:%=$(B)/tests/test-%)
TEST_TARGETS := $(TEST_DIRS:%=test-%)
BENCH_TARGETS :=
FUZZ_TARGETS :=
FUZZ_BINS :=
TOOL_TARGETS :=
$(foreach d,$(TEST_DIRS),$(eval HELP_test-$(d) := the tests/$(d)/ suite))

# libFuzzer: every target is compiled by $(FUZZ_CC) with these flags.
FUZZ_CFLAGS := -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
        -Wall -Ilib -I$(B)/gen

# fuzz_target(name, binary, extra libFuzzer options): make fuzz-<name> builds
# <binary> and fuzzes it for FUZZ_SECONDS on $(B)/fuzz/<name>-corpus;
# make fuzz builds every such binary.
define fuzz_target
FUZZ_TARGETS += fuzz-$(1)
FUZZ_BINS += $(2)
.PHONY: fuzz-$(1)
fuzz-$(1): $(2)
	@mkdir -p $(B)/fuzz/$(1)-corpus
	$$(call msg,FUZZ,$(1))
	$$(Q)if [ "$$(FUZZ_SECONDS)" != 0 ]; then \
	  $(2) -max_total_time=$$(FUZZ_SECONDS) $(3) $(B)/fuzz/$(1)-corpus; fi
endef

-include $(sort $(wildcard tests/*/*.mk))

.PHONY: all deps test bench fuzz run install format format-check lint clean help \
        $(TEST_DIRS:%=test-%)

all: $(DAEMONS)

# One line per target; the lists come from the fragments.
define help_line
	@printf 'make %-21s %s\n' '$(1)' '$(HELP_$(1))'

endef
help:
	@echo "make deps                  install packages, build wolfSSL+ngtcp2 into $(DEPS)"
	@echo "make [all]                 build raftd and raftctl into $(B)/"
	@echo "make test                  build and run every suite (SANITIZE=1: ASan+UBSan)"
	$(foreach t,$(TEST_TARGETS),$(call help_line,$(t)))
	@echo "make bench                 every benchmark below"
	$(foreach t,$(BENCH_TARGETS),$(call help_line,$(t)))
	@echo "make fuzz                  build every libFuzzer target below"
	$(foreach t,$(FUZZ_TARGETS),$(call help_line,$(t)))
	$(foreach t,$(TOOL_TARGETS),$(call help_line,$(t)))
	@echo "make run                   local cluster on loopback (NODES=$(NODES))"
	@echo "make install               PREFIX=$(PREFIX) DESTDIR=$(DESTDIR)"
	@echo "make format | format-check | lint | clean"
	@echo "defaults: SANITIZE=$(SANITIZE) FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_CC=$(FUZZ_CC) SEEDS=$(SEEDS)"
	@echo "          E2E_SECONDS=$(E2E_SECONDS) STORAGE_BENCH_SECONDS=$(STORAGE_BENCH_SECONDS) TAIL_SECONDS=$(TAIL_SECONDS) BACKUP_MB=$(BACKUP_MB) V=1: show commands"
	@echo "          GRAY_DELAYS_MS=\"$(GRAY_DELAYS_MS)\" GRAY_ELECTION_TICKS=\"$(GRAY_ELECTION_TICKS)\""

deps: $(DEPS_STAMP)
$(DEPS_STAMP): .ci/deps.sh
	bash .ci/deps.sh $(DEPS)

# --- protobuf -----------------------------------------------------------------
$(GEN_C) $(GEN_H) &: $(PROTO) $(DEPS_STAMP)
	@mkdir -p $(B)/gen
	$(call msg,PROTOC,$(PROTO))
	$(Q)protoc-c --proto_path=proto --c_out=$(B)/gen $(PROTO)

$(B)/gen/raftd.pb-c.o: $(GEN_C)
	$(call msg,CC,$<)
	$(Q)$(CC) $(CPPFLAGS_ALL) $(GEN_CFLAGS) -c $< -o $@

# --- library and programs -------------------------------------------------------
$(B)/lib/raft/%.o: lib/raft/%.c $(GEN_H)
	@mkdir -p $(dir $@)
	$(call msg,CC,$<)
	$(Q)$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) $(WARN) $(CORE_WARN) -c $< -o $@

$(B)/%.o: %.c $(GEN_H)
	@mkdir -p $(dir $@)
	$(call msg,CC,$<)
	$(Q)$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) $(WARN) -c $< -o $@

$(LIBRAFTD): $(LIB_OBJ)
	@rm -f $@
	$(call msg,AR,$@)
	$(Q)ar rcs $@ $^

$(B)/raftd: $(B)/daemon/raftd.o $(LIBRAFTD)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS_ALL) $^ $(LDLIBS_ALL) -o $@

$(B)/raftctl: $(B)/daemon/raftctl.o $(B)/daemon/raftctl_print.o \
        $(B)/daemon/raftctl_stream.o $(B)/daemon/raftctl_handle.o \
        $(B)/daemon/raftctl_backup.o $(LIBRAFTD)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS_ALL) $^ $(LDLIBS_ALL) -o $@

# --- tests -----------------------------------------------------------------------
$(B)/tests/%.o: CPPFLAGS_ALL += -Itests
define test_bin
$(B)/tests/test-$(1): $(patsubst %.c,$(B)/%.o,$(wildcard tests/$(1)/*.c) $(TEST_COMMON_SRC)) $(LIBRAFTD) | $(DAEMONS)
	@mkdir -p $$(dir $$@)
	$$(call msg,LD,$$@)
	$$(Q)$$(CC) $$(LDFLAGS_ALL) $$(filter %.o %.a,$$^) $$(LDLIBS_ALL) -lcriterion -o $$@
endef
$(foreach d,$(TEST_DIRS),$(eval $(call test_bin,$(d))))

# Tests find the programs under test through these variables.
export RD_BUILD := $(abspath $(B))
export RD_SRC := $(abspath .)
export RD_DEPS := $(abspath $(DEPS))
ifeq ($(SANITIZE),1)
export LSAN_OPTIONS := suppressions=$(abspath tests/lsan.supp):print_suppressions=0
export UBSAN_OPTIONS := print_stacktrace=1:halt_on_error=1
endif

$(TEST_DIRS:%=test-%): test-%: $(B)/tests/test-%
	$< --jobs 2

test: $(TEST_TARGETS)
	@echo "make test: all suites passed ($(TEST_TARGETS))"

bench: $(BENCH_TARGETS)

fuzz: $(FUZZ_BINS)

# --- operating ---------------------------------------------------------------------
run: $(DAEMONS)
	bash conf/run-local.sh $(NODES)

install: $(DAEMONS)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/etc/raftd
	install -m 0755 $(B)/raftd $(B)/raftctl $(DESTDIR)$(PREFIX)/bin/
	install -d $(DESTDIR)/lib/systemd/system
	install -m 0644 systemd/raftd.service systemd/raftd@.service $(DESTDIR)/lib/systemd/system/
	[ -e $(DESTDIR)/etc/raftd/raftd.conf ] || install -m 0640 conf/raftd.conf.example $(DESTDIR)/etc/raftd/raftd.conf
	sed -i 's|/usr/local/bin/raftd|$(PREFIX)/bin/raftd|' $(DESTDIR)/lib/systemd/system/raftd.service $(DESTDIR)/lib/systemd/system/raftd@.service
	install -m 0644 conf/raftd.conf.example $(DESTDIR)/etc/raftd/raftd.conf.example
	install -d $(DESTDIR)/usr/lib/sysusers.d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 0644 systemd/raftd.sysusers $(DESTDIR)/usr/lib/sysusers.d/raftd.conf
	install -m 0644 conf/man/raftctl.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 conf/man/raftd.conf.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 conf/man/raftd.8 $(DESTDIR)$(MANDIR)/man8/
	@# On the live system: create the raftd user and let its group read the config.
	if [ -z "$(DESTDIR)" ] && command -v systemd-sysusers >/dev/null; then \
	  systemd-sysusers /usr/lib/sysusers.d/raftd.conf && chgrp raftd /etc/raftd /etc/raftd/raftd.conf && chmod 0750 /etc/raftd; fi

SRC_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null || find lib daemon tests -name '*.[ch]')
format:
	$(call msg,FORMAT,C sources)
	$(Q)clang-format -i $(SRC_FILES)
format-check:
	$(call msg,FORMAT,check)
	$(Q)clang-format --dry-run --Werror $(SRC_FILES)

lint: $(GEN_H)
	$(call msg,LINT,lib daemon)
	$(Q)cppcheck --quiet --error-exitcode=1 --std=c11 --inline-suppr \
	  --enable=warning,portability --suppress=missingIncludeSystem \
	  -Ilib -I$(B)/gen lib daemon

clean:
	rm -rf build/tests build/lib build/daemon build/gen build/asan build/*.a build/raftd build/raftctl

-include $(shell find $(B) -path build/deps -prune -o -path build/systemd -prune -o -name '*.d' -type f -print 2>/dev/null)
