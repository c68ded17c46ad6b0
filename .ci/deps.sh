#!/usr/bin/env bash
# make deps: install the Debian packages raftd builds with, then build wolfSSL
# (with QUIC) and ngtcp2 (with its wolfSSL crypto backend) from Debian's source
# packages into $DEPS as static, position-independent libraries.
#
# Why from source: Debian 12's binary wolfSSL is built without QUIC support and
# its ngtcp2 ships only the GnuTLS backend. The source packages are fetched
# through a private apt configuration (sources derived from the machine's own,
# as Types: deb-src; private state and cache), so the system's apt setup is
# never changed. A stamp naming versions and options makes a second run a no-op.
set -euo pipefail

DEPS=${1:-build/deps}
mkdir -p "$DEPS"
DEPS=$(cd "$DEPS" && pwd)

PKGS="build-essential pkg-config autoconf automake libtool dpkg-dev openssl
  librocksdb-dev libevent-dev libprotobuf-c-dev protobuf-c-compiler
  libcriterion-dev libsystemd-dev libinih-dev systemd man-db groff-base
  clang clang-14 libclang-rt-14-dev"

ARCH=$(uname -m)
WOLFSSL_OPTS="--enable-static --disable-shared --with-pic --enable-quic
  --enable-session-ticket --enable-earlydata --enable-psk --enable-harden
  --enable-altcertchains --enable-aesgcm --enable-chacha --enable-poly1305
  --enable-certgen --enable-keygen --enable-ecc --enable-supportedcurves
  --enable-tlsx --enable-sni --enable-alpn --enable-opensslextra
  --enable-keepcert --enable-sessioncerts"
if [ "$ARCH" = x86_64 ]; then
	WOLFSSL_OPTS="$WOLFSSL_OPTS --enable-aesni --enable-intelasm"
fi
NGTCP2_OPTS="--enable-static --disable-shared --with-pic --enable-lib-only
  --with-wolfssl --without-openssl --without-gnutls --without-boringssl
  --without-picotls --without-libev --without-libnghttp3"

say() { printf 'deps: %s\n' "$*" >&2; }
die() { printf 'deps: error: %s\n' "$*" >&2; exit 1; }

# --- 1. Debian packages ---------------------------------------------------
bash "$(dirname "$0")/pkgs.sh" $PKGS

# --- 2. the stamp -----------------------------------------------------------
STAMP="$DEPS/stamp"
want="wolfssl[$(echo $WOLFSSL_OPTS)] ngtcp2[$(echo $NGTCP2_OPTS)] arch=$ARCH"
if [ -f "$STAMP" ] && [ "$(sed -n 2p "$STAMP")" = "$want" ] &&
	[ -f "$DEPS/lib/libwolfssl.a" ] && [ -f "$DEPS/lib/libngtcp2.a" ]; then
	# Up to date: refresh the stamp's time so that make, which reran this
	# script because it is newer than the stamp, does not rerun it (and
	# regenerate the protobuf code) on every build.
	touch "$STAMP"
	exit 0
fi

# --- 3. private apt configuration for deb-src -----------------------------
APT="$DEPS/apt"
rm -rf "$APT"
mkdir -p "$APT/etc/sources.list.d" "$APT/etc/preferences.d" \
	"$APT/state/lists/partial" "$APT/cache/archives/partial" "$APT/src"
touch "$APT/state/status"
srcs="$APT/etc/sources.list.d/src.sources"
: >"$srcs"
# deb822 files: every stanza whose Types has "deb" becomes a deb-src stanza.
for f in /etc/apt/sources.list.d/*.sources; do
	[ -f "$f" ] || continue
	awk 'BEGIN { RS=""; ORS="\n\n" }
	     /(^|\n)Types:[^\n]*(^|[ \t])deb([ \t]|\n|$)/ {
	         sub(/Types:[^\n]*/, "Types: deb-src"); print }' "$f" >>"$srcs"
done
# one-line format
lists="$APT/etc/sources.list"
: >"$lists"
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
	[ -f "$f" ] || continue
	sed -n 's/^[[:space:]]*deb[[:space:]]/deb-src /p' "$f" >>"$lists"
done
[ -s "$srcs" ] || [ -s "$lists" ] || die "no apt sources found under /etc/apt"

apt_private() {
	apt-get -q -o Dir::Etc="$APT/etc" -o Dir::Etc::sourcelist="$lists" \
		-o Dir::Etc::sourceparts="$APT/etc/sources.list.d" \
		-o Dir::Etc::preferencesparts="$APT/etc/preferences.d" \
		-o Dir::State="$APT/state" -o Dir::State::status="$APT/state/status" \
		-o Dir::Cache="$APT/cache" -o Debug::NoLocking=1 \
		-o APT::Sandbox::User=root "$@"
}
say "fetching source indexes (private apt state under $APT)"
apt_private update >"$APT/update.log" 2>&1 ||
	say "apt-get update reported errors (see $APT/update.log); trying anyway"

fetch_src() { # name -> prints the extracted directory
	local name=$1 dir
	(cd "$APT/src" && apt_private source --download-only "$name" \
		>"$APT/source-$name.log" 2>&1) ||
		die "could not fetch the Debian source package '$name' (see $APT/source-$name.log)"
	local dsc
	dsc=$(ls "$APT/src/${name}"_*.dsc | head -n 1)
	dir="$APT/src/$name-src"
	rm -rf "$dir"
	dpkg-source --no-check -x "$dsc" "$dir" >"$APT/extract-$name.log" 2>&1 ||
		die "could not unpack $dsc (see $APT/extract-$name.log)"
	echo "$dir"
}

JOBS=$(nproc 2>/dev/null || echo 2)

# --- 4. wolfSSL -------------------------------------------------------------
wdir=$(fetch_src wolfssl)
wver=$(basename "$(ls "$APT/src"/wolfssl_*.dsc | head -n 1)" .dsc)
say "building $wver"
(
	cd "$wdir"
	[ -x configure ] || ./autogen.sh
	./configure --prefix="$DEPS" $WOLFSSL_OPTS CFLAGS="-O2 -fPIC -DKEEP_PEER_CERT"
	make -j"$JOBS"
	make install
) >"$DEPS/wolfssl-build.log" 2>&1 || die "wolfSSL build failed (see $DEPS/wolfssl-build.log)"
grep -q 'define WOLFSSL_QUIC' "$DEPS/include/wolfssl/options.h" ||
	die "wolfSSL was built without QUIC support"

# --- 5. ngtcp2 --------------------------------------------------------------
ndir=$(fetch_src ngtcp2)
nver=$(basename "$(ls "$APT/src"/ngtcp2_*.dsc | head -n 1)" .dsc)
say "building $nver"
(
	cd "$ndir"
	autoreconf -i
	PKG_CONFIG_PATH="$DEPS/lib/pkgconfig" ./configure --prefix="$DEPS" \
		$NGTCP2_OPTS CFLAGS="-O2 -fPIC"
	make -j"$JOBS"
	make install
) >"$DEPS/ngtcp2-build.log" 2>&1 || die "ngtcp2 build failed (see $DEPS/ngtcp2-build.log)"
[ -f "$DEPS/lib/libngtcp2_crypto_wolfssl.a" ] ||
	die "ngtcp2 was built without its wolfSSL crypto backend"

printf '%s %s\n%s\n' "$wver" "$nver" "$want" >"$STAMP"
say "done: $wver, $nver in $DEPS"
