#!/usr/bin/env bash
# The main job, on the embedded default (no IPFS daemon): build ipkg, then
# publish -> install -> run -> switch -> remove, in a throwaway prefix.
#
#   bash examples/demo.sh
#
# A maintainer key signs releases of examples/packages/hello into a registry
# on local disk; `ipkg install hello` resolves the name through that signed
# index, verifies every block against its CID, unpacks the package under the
# prefix and links its command onto PATH. Then: upgrade, switch back, roll
# back, verify, remove, and garbage-collect. Last, the package travels as a
# CAR file to a second, empty prefix and is installed from there.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

echo "==> building ipkg (release)"
cargo build --release --quiet
ipkg="$here/target/release/ipkg"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Everything lives under $work: keys, prefix, command links.
export IPKG_CONFIG=/dev/null HOME="$work/home" XDG_CONFIG_HOME="$work/config"
export IPKG_PREFIX="$work/prefix" IPKG_BIN_DIR="$work/bin"
export PATH="$IPKG_BIN_DIR:$PATH"
mkdir -p "$HOME"
hello="$here/examples/packages/hello"

echo "==> a maintainer key and a registry it signs"
"$ipkg" key gen alice >/dev/null
"$ipkg" registry init alice --key alice >/dev/null

echo "==> ipkg publish hello 1.0.0"
"$ipkg" publish --registry alice "$hello/1.0.0" >/dev/null

echo "==> ipkg install hello"
"$ipkg" install hello
echo "==> hello world   (the command, from PATH)"
hello world

echo "==> ipkg run hello -- again"
"$ipkg" run hello -- again

echo "==> ipkg publish hello 1.1.0, then ipkg upgrade"
"$ipkg" publish --registry alice "$hello/1.1.0" >/dev/null
"$ipkg" upgrade
hello world

echo "==> ipkg switch hello 1.0.0   (one rename(2); both versions stay on disk)"
"$ipkg" switch hello 1.0.0
hello world
echo "==> ipkg rollback hello"
"$ipkg" rollback hello
hello world

echo "==> ipkg list / history / verify"
"$ipkg" list
"$ipkg" history hello
"$ipkg" verify

echo "==> ipkg remove hello; ipkg gc"
"$ipkg" remove hello
hash -r
if command -v hello >/dev/null; then
  echo "error: hello is still on PATH" >&2
  exit 1
fi
"$ipkg" gc

echo "==> the package as a CAR file, installed into a second, empty prefix"
cid=$("$ipkg" add -q --preserve-mode "$hello/1.1.0")
"$ipkg" car export "$cid" -o "$work/hello.car"
IPKG_PREFIX="$work/other" IPKG_BIN_DIR="$work/other-bin" \
  "$ipkg" install --allow-unsigned "$work/hello.car"
"$work/other-bin/hello" from-a-car

echo "ok: publish -> install -> run -> switch -> rollback -> remove, with no daemon"
