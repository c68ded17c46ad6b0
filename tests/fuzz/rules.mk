# libFuzzer target for the peer frame decoder (lib/transport/wire.c); the
# Raft core's is in tests/raft/rules.mk, next to the harness it uses. Both go
# through fuzz_target (Makefile): `make fuzz` builds, `make fuzz-X` runs.

# The peer frame decoder (lib/transport/wire.c).
HELP_fuzz-transport := the peer frame decoder (tests/fuzz/transport_frame_fuzz.c)
$(B)/fuzz/transport_frame_fuzz: tests/fuzz/transport_frame_fuzz.c lib/transport/wire.c \
		lib/util/err.c $(GEN_C)
	@mkdir -p $(dir $@)
	$(call msg,FUZZCC,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(filter %.c,$^) -lprotobuf-c -o $@
$(eval $(call fuzz_target,transport,$(B)/fuzz/transport_frame_fuzz,))
