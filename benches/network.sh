#!/usr/bin/env bash
# Network benchmark: installs over loopback against peers measured in the
# same run.
#
#   bash benches/network.sh                 # 100 MiB package
#   BENCH_SIZE_MIB=20 bash benches/network.sh   # quick
#
# Makes a package holding one file of random bytes, publishes it from a
# publisher prefix, and measures (wall time, each on a cold client):
#   1. `ipkg install` from the publisher's `ipkg serve`;
#   2. `ipkg install` from Kubo node A's gateway (the registry pushed there
#      with `ipkg publish --to kubo`);
#   3. the floor: `curl` of the package CAR from `ipkg serve` plus
#      `openssl dgst -sha256` of it (goal: ipkg at least 0.7 of its speed);
#   4. `ipfs get` of the package on Kubo node B, connected to A in a private
#      swarm (bitswap);
#   5. an upgrade in which 1% of the file changed: bytes fetched, as a share
#      of the package (goal: at most 5%);
#   6. name resolution from the cached indexes (goal: under 5 ms) and a
#      refresh of the registry (one IPNS record request per source; blocks
#      only when the index changed).
# Peak RSS of the installs is reported too (memory stays flat as files grow).
#
# Loopback only: every server listens on 127.0.0.1; Kubo nodes use
# `--profile=test` (no bootstrap, no mDNS) and a private swarm key.
# Everything lives in one temporary directory, removed on exit.
#
# Installs, curl and `ipfs get` are run BENCH_RUNS times (3), each cold (a
# fresh client prefix, a fresh Kubo B), and the median is reported.
#
# Knobs: BENCH_SIZE_MIB (100), BENCH_RUNS (3), BENCH_TMPDIR, IPKG_BIN (skip the build),
#        NAME_RES_BIN (skip building the name_resolution example).
set -euo pipefail

SIZE_MIB="${BENCH_SIZE_MIB:-100}"
RUNS="${BENCH_RUNS:-3}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/.." && pwd)"
say() { printf '%s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

for tool in ipfs curl openssl python3; do
  command -v "$tool" >/dev/null || die "$tool is needed"
done
TIME=/usr/bin/time
[ -x "$TIME" ] || die "GNU time (/usr/bin/time) is needed: apt-get install time"

if [ -z "${IPKG_BIN:-}" ] || [ -z "${NAME_RES_BIN:-}" ]; then
  say "building release binaries"
  (cd "$REPO_ROOT" && cargo build --release --quiet --bin ipkg --example name_resolution)
  target="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
  IPKG_BIN="${IPKG_BIN:-$target/release/ipkg}"
  NAME_RES_BIN="${NAME_RES_BIN:-$target/release/examples/name_resolution}"
fi

T=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/var/tmp}}/ipkg-netbench.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT

# `renv NAME`: RENV becomes the `env -i …` prefix that gives a command NAME's
# private prefix, home and config. `role NAME CMD…` runs CMD with it.
renv() {
  local r=$1
  mkdir -p "$T/$r/home/.config/ipkg" "$T/$r/prefix" "$T/$r/bin"
  RENV=(env -i PATH="$PATH" HOME="$T/$r/home" XDG_CONFIG_HOME="$T/$r/home/.config"
    XDG_DATA_HOME="$T/$r/home/.local/share" IPKG_PREFIX="$T/$r/prefix"
    IPKG_BIN_DIR="$T/$r/bin" NO_COLOR=1 TMPDIR="$T")
}
role() { renv "$1"; shift; "${RENV[@]}" "$@"; }
config() { mkdir -p "$T/$1/home/.config/ipkg"; printf '%s\n' "$2" >"$T/$1/home/.config/ipkg/config.toml"; }
# `timed OUTVAR CMD…`: wall seconds appended to OUTVAR (a space-separated
# list), peak RSS (KiB) into OUTVAR_rss (the largest seen).
timed() {
  local var=$1; shift
  "$TIME" -f '%e %M' -o "$T/time.out" "$@" >"$T/cmd.out" 2>"$T/cmd.err" \
    || { cat "$T/cmd.err" >&2; die "failed: $*"; }
  read -r secs rss <"$T/time.out"
  local prev="${!var:-}" prev_rss
  prev_rss="${var}_rss"; prev_rss="${!prev_rss:-0}"
  printf -v "$var" '%s' "$prev $secs"
  [ "$rss" -gt "$prev_rss" ] && printf -v "${var}_rss" '%s' "$rss" || printf -v "${var}_rss" '%s' "$prev_rss"
}
median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# --- Kubo nodes ---------------------------------------------------------------
KEY="/key/swarm/psk/1.0.0/
/base16/
$(openssl rand -hex 32)"
kenv() { KENV=(env -i PATH="$PATH" HOME="$T/$1" IPFS_PATH="$T/$1/repo" IPFS_TELEMETRY=off LIBP2P_FORCE_PNET=1); }
kubo() { kenv "$1"; shift; "${KENV[@]}" ipfs "$@"; }
start_kubo() {
  local n=$1
  mkdir -p "$T/$n"
  kubo "$n" init --empty-repo --profile=test >/dev/null
  python3 - "$T/$n/repo/config" <<'EOF'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
pl = c.get("Plugins") or {}; c["Plugins"] = pl
pp = pl.get("Plugins") or {}; pl["Plugins"] = pp; pp["telemetry"] = {"Disabled": True}
c["AutoConf"] = {"Enabled": False}; c["Bootstrap"] = []
c["Gateway"] = c.get("Gateway") or {}; c["Gateway"]["NoDNSLink"] = True
a = c["Addresses"]; a["API"] = "/ip4/127.0.0.1/tcp/0"; a["Gateway"] = "/ip4/127.0.0.1/tcp/0"
a["Swarm"] = ["/ip4/127.0.0.1/tcp/0"]; a["Announce"] = []; a["NoAnnounce"] = []
json.dump(c, open(p, "w"), indent=2)
EOF
  printf '%s\n' "$KEY" >"$T/$n/repo/swarm.key"
  # Not through the `kubo` function: `$!` must be the daemon itself.
  kenv "$n"
  "${KENV[@]}" ipfs daemon >"$T/$n/daemon.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 300); do [ -s "$T/$n/repo/gateway" ] && kubo "$n" id >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "Kubo $n did not start: $(cat "$T/$n/daemon.log")"
}
say "starting Kubo nodes A and B (private swarm on loopback)"
start_kubo A
start_kubo B
kubo B swarm connect "$(kubo A id -f '<addrs>' | grep '/ip4/127.0.0.1/tcp/' | head -1)" >/dev/null
A_API=$(cat "$T/A/repo/api")
A_GW=$(cat "$T/A/repo/gateway")

# --- the package ----------------------------------------------------------------
say "making a ${SIZE_MIB} MiB package"
mkpkg() {
  local dir=$1 version=$2
  mkdir -p "$dir/bin"
  printf '[package]\nname = "bench"\nversion = "%s"\ndescription = "benchmark payload"\nlicense = "MIT"\ntargets = ["any"]\n\n[commands]\nbench = "bin/bench"\n' "$version" >"$dir/ipkg.toml"
  printf '#!/bin/sh\necho bench\n' >"$dir/bin/bench"
  chmod 755 "$dir/bin/bench"
}
mkpkg "$T/pkg1" 1.0.0
openssl rand -out "$T/pkg1/data.bin" $((SIZE_MIB * 1024 * 1024))
cp -r "$T/pkg1" "$T/pkg2"
sed -i 's/version = "1.0.0"/version = "2.0.0"/' "$T/pkg2/ipkg.toml"
# Change 1% of the file's bytes, in one place in the middle.
python3 - "$T/pkg2/data.bin" <<'EOF'
import os, sys
p = sys.argv[1]; size = os.path.getsize(p); n = max(1, size // 100)
with open(p, "r+b") as f:
    f.seek(size // 2); f.write(os.urandom(n))
EOF
config pub "kubo-api = \"$A_API\""
role pub "$IPKG_BIN" key gen bench >/dev/null 2>&1
K=$(role pub "$IPKG_BIN" registry init main --key bench 2>/dev/null | sed 's#/ipns/##')
role pub "$IPKG_BIN" publish "$T/pkg1" --registry main --to kubo >/dev/null 2>&1
CID1=$(role pub "$IPKG_BIN" pack -n "$T/pkg1" 2>/dev/null | tail -1)
[ -n "$CID1" ] || die "could not pack the package"

renv pub
"${RENV[@]}" "$IPKG_BIN" serve --listen 127.0.0.1:0 >"$T/serve.url" 2>/dev/null &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$T/serve.url" ] && break; sleep 0.05; done
SERVE=$(head -1 "$T/serve.url")

# --- measurements ---------------------------------------------------------------
# A cold client NAME with gateway URL, subscribed to the registry.
fresh_client() {
  rm -rf "${T:?}/$1"
  config "$1" "kubo-api = \"off\"
gateways = [\"$2\"]"
  role "$1" "$IPKG_BIN" registry add pub "$K" >/dev/null 2>&1
}
t_serve="" t_kubogw="" t_curl="" t_ipfsget=""
for run in $(seq "$RUNS"); do
  say "run $run/$RUNS"
  say "  1. ipkg install from ipkg serve"
  fresh_client c1 "$SERVE"
  renv c1; timed t_serve "${RENV[@]}" "$IPKG_BIN" install bench
  say "  2. ipkg install from Kubo A's gateway"
  fresh_client c2 "$A_GW"
  renv c2; timed t_kubogw "${RENV[@]}" "$IPKG_BIN" install bench
  say "  3. curl of the CAR from ipkg serve + openssl dgst -sha256"
  rm -f "$T/pkg.car"
  timed t_curl sh -c "curl -sf -o '$T/pkg.car' '$SERVE/ipfs/$CID1?format=car' && openssl dgst -sha256 '$T/pkg.car' >/dev/null"
  say "  4. ipfs get on Kubo B (bitswap from A)"
  rm -rf "$T/got"
  kubo B repo gc >/dev/null 2>&1 || true
  kenv B; timed t_ipfsget "${KENV[@]}" ipfs get -o "$T/got" "$CID1"
done
car_bytes=$(stat -c %s "$T/pkg.car")
t_serve=$(median "$t_serve"); t_kubogw=$(median "$t_kubogw")
t_curl=$(median "$t_curl"); t_ipfsget=$(median "$t_ipfsget")

say "5. upgrade with 1% changed"
role pub "$IPKG_BIN" publish "$T/pkg2" --registry main >/dev/null 2>&1
role c1 "$IPKG_BIN" update >/dev/null 2>&1
role c1 "$IPKG_BIN" --json install bench@2.0.0 >"$T/up.json" 2>"$T/up.err" || { cat "$T/up.err"; die "upgrade failed"; }
up_bytes=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(sum(x.get("fetched_bytes",0) for x in r))' "$T/up.json")

say "6. name resolution"
res=$(role c1 "$NAME_RES_BIN" bench 20)
cache_ms=$(sed 's/.*cache_ms=\([0-9.]*\).*/\1/' <<<"$res")
refresh_ms=$(sed 's/.*refresh_ms=\([0-9.]*\).*/\1/' <<<"$res")

python3 - "$SIZE_MIB" "$car_bytes" "$t_serve" "$t_serve_rss" "$t_kubogw" "$t_kubogw_rss" \
  "$t_curl" "$t_ipfsget" "$up_bytes" "$cache_ms" "$refresh_ms" <<'EOF'
import sys
size_mib, car, ts, ts_rss, tk, tk_rss, tc, tg, up, cache, refresh = sys.argv[1:]
size = int(size_mib) * 1024 * 1024
car = int(car); up = int(up)
ts, tk, tc, tg = map(float, (ts, tk, tc, tg))
mbs = lambda t: size / 1e6 / t if t > 0 else float("inf")
print(f"\nipkg network benchmark: {size_mib} MiB package, loopback, medians\n")
print(f"{'what':48} {'time s':>8} {'MB/s':>8} {'peak RSS':>10}  ratio vs curl+sha256")
rows = [
    ("ipkg install from ipkg serve", ts, f"{int(ts_rss)//1024} MiB"),
    ("ipkg install from Kubo gateway", tk, f"{int(tk_rss)//1024} MiB"),
    ("curl CAR from ipkg serve + openssl sha256", tc, ""),
    ("ipfs get on Kubo B (bitswap from A)", tg, ""),
]
for name, t, rss in rows:
    print(f"{name:48} {t:8.2f} {mbs(t):8.1f} {rss:>10}  {tc / t:6.2f}")
print(f"\nspeed ratio ipkg(serve)/curl+sha256: {tc/ts:.2f} (goal >= 0.70)")
print(f"speed ratio ipkg(Kubo gateway)/curl+sha256: {tc/tk:.2f}")
print(f"speed ratio ipkg(serve)/ipfs get: {tg/ts:.2f} (above 1: ipkg faster)")
print(f"upgrade with 1% changed: fetched {up} bytes = {100*up/size:.2f}% of the package (goal <= 5%)")
print(f"name resolution from cache: {float(cache):.3f} ms (goal < 5 ms)")
print(f"registry refresh (unchanged index, 1 registry): {float(refresh):.2f} ms")
EOF
