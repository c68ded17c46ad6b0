# The local-client request decoder under libFuzzer (clang 14,
# libclang-rt-14-dev): make fuzz-ctl, then a run of FUZZ_SECONDS with
# make fuzz-ctl-run. Kept beside the tests of lib/ctl (tests/unit).

CTL_FUZZ := $(B)/fuzz/ctl_request_fuzz

$(CTL_FUZZ): tests/fuzz/ctl_request_fuzz.c lib/ctl/request.c lib/util/frame.c lib/util/pbbudget.c lib/util/err.c $(GEN_C)
	@mkdir -p $(dir $@)
	clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Ilib -I$(B)/gen \
	  -Wall $(filter %.c,$^) -lprotobuf-c -levent -o $@

.PHONY: fuzz-ctl fuzz-ctl-run
fuzz-ctl: $(CTL_FUZZ)

fuzz-ctl-run: $(CTL_FUZZ)
	@mkdir -p $(B)/fuzz/ctl-corpus
	$(CTL_FUZZ) -max_total_time=$(FUZZ_SECONDS) $(B)/fuzz/ctl-corpus

FUZZ_TARGETS += fuzz-ctl
