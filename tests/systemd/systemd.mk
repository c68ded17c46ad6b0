# make test-systemd: raftd under a real systemd, booted in a container with
# systemd-nspawn (tests/systemd/run.sh; needs root). Not part of `make test`;
# .ci/run runs it after.
.PHONY: test-systemd
test-systemd: $(DAEMONS)
	bash tests/systemd/run.sh $(B)

TOOL_TARGETS += test-systemd
HELP_test-systemd := raftd under systemd in a container (root; tests/systemd/)
