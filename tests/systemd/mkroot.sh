#!/usr/bin/env bash
# mkroot.sh CACHE BINARY...: print the path of a minimal Debian root that can
# boot under systemd-nspawn and run BINARY..., building it with debootstrap
# into CACHE/root-HASH when it is not there yet.
#
# The root holds systemd (PID 1 inside the container), dbus (for
# systemd-analyze), and the Debian packages that provide the shared
# libraries the binaries link (found with ldd and dpkg -S, so a new library
# in the build changes the package list). HASH covers the suite, the
# architecture, that package list and this script, so a change to any of
# them builds a new root; older roots in CACHE are removed.
#
# The mirror is the machine's own: the first URI of an apt source for the
# running Debian release (deb822 files in /etc/apt/sources.list.d, then the
# one-line format), as .ci/deps.sh reads them. No host is named here.
set -euo pipefail

say() { printf 'mkroot: %s\n' "$*" >&2; }
die() { printf 'mkroot: error: %s\n' "$*" >&2; exit 1; }

[ $# -ge 2 ] || die "usage: mkroot.sh CACHE BINARY..."
CACHE=$1
shift
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)

. /etc/os-release
SUITE=${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}
ARCH=$(dpkg --print-architecture)

# The archive for $SUITE: a deb822 stanza whose Suites lists it, else a
# one-line "deb URI SUITE ..." entry.
mirror() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk -v suite="$SUITE" 'BEGIN { RS=""; FS="\n" }
		{
			types = ""; uris = ""; suites = ""
			for (i = 1; i <= NF; i++) {
				if ($i ~ /^Types:/) types = $i
				if ($i ~ /^URIs:/) uris = $i
				if ($i ~ /^Suites:/) suites = $i
			}
			if (types !~ /[ \t]deb([ \t]|$)/) next
			n = split(suites, s, /[ \t]+/)
			for (i = 2; i <= n; i++)
				if (s[i] == suite) {
					split(uris, u, /[ \t]+/); print u[2]; exit
				}
		}' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		sed -n 's/\[[^]]*\]//; s/^[[:space:]]*deb[[:space:]]\+\([^[:space:]]\+\)[[:space:]]\+'"$SUITE"'[[:space:]].*/\1/p' "$f"
	done
}
MIRROR=$(mirror | head -n 1)
[ -n "$MIRROR" ] || die "no apt source for $SUITE under /etc/apt"

libs=""
for bin in "$@"; do
	[ -x "$bin" ] || die "not an executable: $bin"
	for lib in $(ldd "$bin" | awk '/=>/ && $3 ~ /^\// { print $3 }'); do
		pkg=$(dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")" 2>/dev/null) ||
			die "no package provides $lib (needed by $bin)"
		libs="$libs ${pkg%%:*}"
	done
done
PKGS=$(printf '%s\n' systemd systemd-sysv dbus $libs | sort -u | tr '\n' ' ')
HASH=$( (echo "$SUITE $ARCH $PKGS"; cat "$0") | sha256sum | cut -c1-16)
ROOT=$CACHE/root-$HASH

if [ -f "$ROOT/.complete" ]; then
	echo "$ROOT"
	exit 0
fi
for old in "$CACHE"/root-*; do
	[ -e "$old" ] && [ "$old" != "$ROOT" ] && rm -rf --one-file-system "$old"
done
rm -rf --one-file-system "$ROOT" "$ROOT.tmp"
say "building a $SUITE root with: $PKGS"
say "(log: $CACHE/debootstrap.log)"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f $keyring ] || die "$keyring is missing (package debian-archive-keyring)"
debootstrap --variant=minbase --arch="$ARCH" --keyring=$keyring \
	--include="$(echo $PKGS | tr ' ' ',')" "$SUITE" "$ROOT.tmp" "$MIRROR" \
	>"$CACHE/debootstrap.log" 2>&1 ||
	die "debootstrap failed (see $CACHE/debootstrap.log)"

# Boot straight to multi-user.target, with no login prompt on the console
# (nobody logs in: a test unit runs the checks and powers off).
ln -sf /lib/systemd/system/multi-user.target "$ROOT.tmp/etc/systemd/system/default.target"
for u in console-getty.service getty@tty1.service systemd-logind.service \
	apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer \
	fstrim.timer; do
	ln -sf /dev/null "$ROOT.tmp/etc/systemd/system/$u"
done
# The package caches are of no use in the image.
rm -rf "$ROOT.tmp"/var/cache/apt/archives/*.deb "$ROOT.tmp"/var/lib/apt/lists/*
touch "$ROOT.tmp/.complete"
mv "$ROOT.tmp" "$ROOT"
echo "$ROOT"
