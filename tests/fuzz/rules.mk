# libFuzzer targets for the peer frame decoder (lib/transport/wire.c) and the
# local client's request decoder (lib/ctl/request.c); the Raft core's is in
# tests/raft/rules.mk, next to the harness it uses. All go through
# fuzz_target (Makefile): `make fuzz` builds, `make fuzz-X` runs.

# The peer frame decoder (lib/transport/wire.c).
HELP_fuzz-transport := the peer frame decoder (tests/fuzz/transport_frame_fuzz.c)
$(B)/fuzz/transport_frame_fuzz: tests/fuzz/transport_frame_fuzz.c lib/transport/wire.c \
		lib/util/err.c lib/util/pbbudget.c $(GEN_C)
	@mkdir -p $(dir $@)
	$(call msg,FUZZCC,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(filter %.c,$^) -lprotobuf-c -o $@
$(eval $(call fuzz_target,transport,$(B)/fuzz/transport_frame_fuzz,))

# The local client's request decoder (lib/ctl/request.c).
HELP_fuzz-ctl := the local client request decoder (tests/fuzz/ctl_request_fuzz.c)
$(B)/fuzz/ctl_request_fuzz: tests/fuzz/ctl_request_fuzz.c lib/ctl/request.c lib/util/frame.c \
		lib/util/pbbudget.c lib/util/err.c $(GEN_C)
	@mkdir -p $(dir $@)
	$(call msg,FUZZCC,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(filter %.c,$^) -lprotobuf-c -levent -o $@
$(eval $(call fuzz_target,ctl,$(B)/fuzz/ctl_request_fuzz,))
