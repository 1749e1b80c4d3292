#!/usr/bin/env bash
# The main job, on the embedded default (no IPFS daemon): build ipkg, then
# add a program directory (recording its executable bits), export it as a CAR, import the CAR into a second,
# empty store and rebuild the program from it, byte for byte.
#
# Later milestones extend this to publish -> install -> run -> switch -> remove.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

echo "==> building ipkg (release)"
cargo build --release --quiet
ipkg="$here/target/release/ipkg"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export IPKG_CONFIG=/dev/null HOME="$work/home" XDG_CONFIG_HOME="$work/config"
mkdir -p "$HOME"

src="$here/examples/packages/hello/1.0.0"
echo "==> ipkg add $src (publisher's store)"
cid=$("$ipkg" --prefix "$work/publisher" add -q --preserve-mode "$src")
echo "    root CID: $cid"

echo "==> ipkg car export $cid"
"$ipkg" --prefix "$work/publisher" car export "$cid" -o "$work/hello.car"

echo "==> ipkg car import (user's store, verified block by block)"
"$ipkg" --prefix "$work/user" car import "$work/hello.car"

echo "==> ipkg get $cid -o hello"
"$ipkg" --prefix "$work/user" get "$cid" -o "$work/hello"
diff -r "$src" "$work/hello"
echo "==> running the program we got back"
"$work/hello/bin/hello" world

echo "==> the same tree gives the same CID every time"
again=$("$ipkg" --prefix "$work/user" add -q --preserve-mode --only-hash "$work/hello")
[ "$again" = "$cid" ] && echo "    $again"
echo "ok: add -> car export -> car import -> get reproduced the program"
