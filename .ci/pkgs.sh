#!/usr/bin/env bash
# Install the Debian packages named as arguments that are not installed yet
# (as root, else through sudo, else print the command to run and fail).
# Used by .ci/deps.sh for the build's packages and by test suites that need
# more (the Jepsen suite's nftables, the systemd suite's debootstrap), so that
# one place knows how raftd installs a package.
set -euo pipefail

say() { printf 'pkgs: %s\n' "$*" >&2; }
die() { printf 'pkgs: error: %s\n' "$*" >&2; exit 1; }

as_root() {
	if [ "$(id -u)" = 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo "$@"
	else
		die "need root to run: $*  (run it yourself, then try again)"
	fi
}

missing=""
for p in "$@"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing="$missing $p"
done
[ -n "$missing" ] || exit 0
say "installing:$missing"
as_root apt-get update -qq || die "apt-get update failed"
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing ||
	die "apt-get install failed for:$missing"
