#!/usr/bin/env bash
# llama-libs.sh installs the llama.cpp shared libraries that emberd loads
# through yzma, taken from node-llama-cpp's prebuilt npm packages.
#
#   scripts/llama-libs.sh [DEST]      (default: lib/ember/llama)
#   ARCH=arm64 scripts/llama-libs.sh lib/ember/llama-arm64
#
# The tarball is checked against the sha512 integrity the npm registry
# published for this exact version (pinned below) before anything is
# unpacked. Idempotent: a complete install is left alone. Works offline once
# the tarball is in .cache/llama-libs or npm's own cache.
set -euo pipefail

VERSION=3.22.1
DEST=${1:-lib/ember/llama}
ARCH=${ARCH:-$(uname -m)}

case "$ARCH" in
x86_64 | amd64)
	PKG=linux-x64
	INTEGRITY='sha512-5uCCDNqWCNfaAm8aR/Uzxbo4HBpKgNF91kCHPepKhgMgV2OAmatoefbOlMihsqCiH2Od35E/eUHQCFbfRBJuOg=='
	;;
aarch64 | arm64)
	PKG=linux-arm64
	INTEGRITY='sha512-W+7naKCXX9/eEjjFmRS8vvx91QyLXDbeFxexZc3bh/PtQABZgmRL3C0AtYYXn4YGTj/3Qor4lWZn2tpjZFPLdQ=='
	;;
*)
	echo "llama-libs: no prebuilt llama.cpp libraries for architecture $ARCH" >&2
	echo "llama-libs: ember runs on 64-bit x86 and ARM only (a Raspberry Pi needs the 64-bit OS)" >&2
	exit 1
	;;
esac

SPEC="@node-llama-cpp/$PKG@$VERSION"
STAMP="$DEST/.installed"
WANT="$SPEC $INTEGRITY"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && [ -e "$DEST/libllama.so" ] && [ -e "$DEST/libggml.so" ]; then
	echo "llama-libs: $SPEC already installed in $DEST"
	exit 0
fi

if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
	cat >&2 <<MSG
llama-libs: npm (and node) are needed to fetch $SPEC, and neither was found.
  Debian/Ubuntu:  apt-get install nodejs npm
  Or point emberd at llama.cpp libraries you already have:
    EMBER_LLAMA_LIB=/path/to/dir   (or llama.lib_dir in the config)
  The directory must hold libllama.so, libggml.so and libggml-base.so.
MSG
	exit 1
fi

CACHE=.cache/llama-libs
TARBALL="$CACHE/node-llama-cpp-$PKG-$VERSION.tgz"
mkdir -p "$CACHE"

if [ ! -f "$TARBALL" ]; then
	echo "llama-libs: fetching $SPEC from the npm registry (about 11 MB)..."
	npm pack --prefer-offline --silent --pack-destination "$CACHE" "$SPEC" >/dev/null
fi

echo "llama-libs: verifying $(basename "$TARBALL") against the registry's sha512 integrity..."
GOT=$(node -e 'const c=require("crypto"),f=require("fs");process.stdout.write("sha512-"+c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64"))' "$TARBALL")
if [ "$GOT" != "$INTEGRITY" ]; then
	rm -f "$TARBALL"
	echo "llama-libs: integrity mismatch for $SPEC" >&2
	echo "  expected $INTEGRITY" >&2
	echo "  got      $GOT" >&2
	echo "  the tarball was deleted; nothing was installed" >&2
	exit 1
fi

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/ember-llama-libs.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
tar -xzf "$TARBALL" -C "$STAGE"
BINS="$STAGE/package/bins/$PKG"
[ -d "$BINS" ] || { echo "llama-libs: $SPEC has no bins/$PKG directory" >&2; exit 1; }

mkdir -p "$STAGE/out"
cp "$BINS"/*.so "$STAGE/out/"
cp "$STAGE/package/LICENSE" "$STAGE/out/LICENSE.node-llama-cpp"
# yzma opens libllama.so and libggml.so by those exact names.
(cd "$STAGE/out" && ln -sf "$(ls libllama.v*.so | head -n1)" libllama.so && ln -sf "$(ls libggml.v*.so | head -n1)" libggml.so)
echo "$WANT" >"$STAGE/out/.installed"

# Swap the whole directory so a reader never sees a half-installed set.
mkdir -p "$(dirname "$DEST")"
rm -rf "$DEST.old"
[ -d "$DEST" ] && mv "$DEST" "$DEST.old"
mv "$STAGE/out" "$DEST"
rm -rf "$DEST.old"
echo "llama-libs: installed $SPEC into $DEST ($(ls "$DEST" | grep -c '\.so$') libraries)"
