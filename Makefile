# raftd — build, test, run. See README.md for the two commands that matter:
# `make run` and `make test`. Everything else is listed by `make help`.
#
# Layout of the build tree:
#   build/deps/        wolfSSL + ngtcp2 built from Debian source (make deps)
#   build/             normal build (objects, libraftd.a, raftd, raftctl, tests)
#   build/asan/        the same with ASan + UBSan (make ... SANITIZE=1)
#
# Areas may add their own targets in fragments `tests/<dir>/*.mk`,
# appending to TEST_TARGETS, BENCH_TARGETS or FUZZ_TARGETS.

.DEFAULT_GOAL := all
SHELL := /bin/bash

DEPS ?= build/deps
DEPS_STAMP := $(DEPS)/stamp
SANITIZE ?= 0
VERSION := 0.1.0

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
# other .c file in that directory is a helper linked into the same binary.
TEST_DIRS := $(sort $(patsubst tests/%/,%,$(dir $(wildcard tests/*/test_*.c))))
TEST_BINS := $(TEST_DIRS:%=$(B)/tests/test-%)
TEST_TARGETS := $(TEST_DIRS:%=test-%)
BENCH_TARGETS :=
FUZZ_TARGETS :=

-include $(sort $(wildcard tests/*/*.mk))

.PHONY: all deps test bench fuzz run install format format-check lint clean help \
        $(TEST_DIRS:%=test-%)

all: $(DAEMONS)

help:
	@echo "make deps          install packages, build wolfSSL+ngtcp2 into $(DEPS)"
	@echo "make [all]         build raftd and raftctl into $(B)/"
	@echo "make test          build and run every test (SANITIZE=1: ASan+UBSan)"
	@echo "make run           local 3-node cluster on loopback (NODES=5 for five)"
	@echo "make bench         every benchmark ($(BENCH_TARGETS))"
	@echo "make fuzz          build the libFuzzer targets ($(FUZZ_TARGETS))"
	@echo "make test-SUITE    one suite ($(TEST_TARGETS))"
	@echo "make jepsen        Jepsen-style fault runs: JEPSEN_RUNS, JEPSEN_SECONDS, JEPSEN_NEMESIS, JEPSEN_SEED"
	@echo "make install       PREFIX=/usr/local DESTDIR="
	@echo "make format | format-check | lint | clean"

deps: $(DEPS_STAMP)
$(DEPS_STAMP): .ci/deps.sh
	bash .ci/deps.sh $(DEPS)

# --- protobuf -----------------------------------------------------------------
$(GEN_C) $(GEN_H) &: $(PROTO) $(DEPS_STAMP)
	@mkdir -p $(B)/gen
	protoc-c --proto_path=proto --c_out=$(B)/gen $(PROTO)

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

$(B)/raftctl: $(B)/daemon/raftctl.o $(LIBRAFTD)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS_ALL) $^ $(LDLIBS_ALL) -o $@

# --- tests -----------------------------------------------------------------------
define test_bin
$(B)/tests/test-$(1): $(patsubst %.c,$(B)/%.o,$(wildcard tests/$(1)/*.c)) $(LIBRAFTD) | $(DAEMONS)
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

fuzz: $(FUZZ_TARGETS)

# --- operating ---------------------------------------------------------------------
NODES ?= 3
run: $(DAEMONS)
	bash conf/run-local.sh $(NODES)

PREFIX ?= /usr/local
MANDIR ?= $(PREFIX)/share/man
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
	clang-format -i $(SRC_FILES)
format-check:
	clang-format --dry-run --Werror $(SRC_FILES)

lint: $(GEN_H)
	cppcheck --quiet --error-exitcode=1 --std=c11 --inline-suppr \
	  --enable=warning,portability --suppress=missingIncludeSystem \
	  -Ilib -I$(B)/gen lib daemon

clean:
	rm -rf build/tests build/lib build/daemon build/gen build/asan build/*.a build/raftd build/raftctl

-include $(shell find $(B) -path build/deps -prune -o -name '*.d' -type f -print 2>/dev/null)
