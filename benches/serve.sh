#!/usr/bin/env bash
# Gateway benchmark: `ipkg serve` against Kubo's gateway, in one run, with wrk.
#
#   bash benches/serve.sh
#   BENCH_SECONDS=2 BENCH_CONNS="1 64" bash benches/serve.sh   # quick
#
# The same content in both (Kubo imports ipkg's CAR, so CIDs are equal):
#   raw159  a 159-byte raw block      GET /ipfs/CID?format=raw
#   raw1m   a 1 MiB raw block         GET /ipfs/CID?format=raw
#   car100m a 100 MiB file's DAG      GET /ipfs/CID?format=car
# Each at 1, 16, 64 and 256 connections (wrk -t2, keep-alive), for
# BENCH_SECONDS (3; 6 for the CAR). Reported per cell: requests/s, p50 and
# p99 latency, and the server's peak RSS during the cell (VmRSS sampled
# every 100 ms), with ipkg/Kubo ratios. Goals (issue 14): at least Kubo's
# requests/s in every cell, p99 at 256 connections under Kubo's, RSS under
# 64 MiB.
#
# Loopback only: both servers listen on 127.0.0.1; Kubo runs `--offline`
# with `--profile=test`. Everything lives in one temporary directory.
#
# Knobs: BENCH_SECONDS, BENCH_CONNS ("1 16 64 256"), BENCH_TMPDIR,
#        IPKG_BIN (skip the build), IPKG_SERVE_THREADS (2: the machine's cores).
set -euo pipefail

SECS="${BENCH_SECONDS:-3}"
CONNS="${BENCH_CONNS:-1 16 64 256}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/.." && pwd)"
say() { printf '%s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
for tool in ipfs wrk python3 openssl; do
  command -v "$tool" >/dev/null || die "$tool is needed (apt-get install wrk; Kubo from .ci/run)"
done
if [ -z "${IPKG_BIN:-}" ]; then
  say "building the release binary"
  (cd "$REPO_ROOT" && cargo build --release --quiet --bin ipkg)
  IPKG_BIN="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/ipkg"
fi

T=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/var/tmp}}/ipkg-servebench.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT

IENV=(env -i PATH="$PATH" HOME="$T/home" XDG_CONFIG_HOME="$T/home/.config"
  IPKG_PREFIX="$T/prefix" IPKG_NO_DEFAULT_SOURCES=1 NO_COLOR=1 TMPDIR="$T")
mkdir -p "$T/home/.config" "$T/prefix" "$T/data"
ipkg() { "${IENV[@]}" "$IPKG_BIN" "$@"; }

say "making the content"
head -c 159 /dev/urandom >"$T/data/b159"
openssl rand -out "$T/data/b1m" $((1024 * 1024))
openssl rand -out "$T/data/f100m" $((100 * 1024 * 1024))
RAW159=$(ipkg add -q "$T/data/b159" | tail -1)
RAW1M=$(ipkg add -q "$T/data/b1m" | tail -1)
CAR100M=$(ipkg add -q "$T/data/f100m" | tail -1)
for c in "$RAW159" "$RAW1M" "$CAR100M"; do
  ipkg car export "$c" -o "$T/data/$c.car" >/dev/null
done

say "starting Kubo (offline) and ipkg serve"
KENV=(env -i PATH="$PATH" HOME="$T/kubo" IPFS_PATH="$T/kubo/repo" IPFS_TELEMETRY=off)
mkdir -p "$T/kubo"
"${KENV[@]}" ipfs init --empty-repo --profile=test >/dev/null
python3 - "$T/kubo/repo/config" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
pl = c.get("Plugins") or {}; c["Plugins"] = pl
pp = pl.get("Plugins") or {}; pl["Plugins"] = pp; pp["telemetry"] = {"Disabled": True}
c["AutoConf"] = {"Enabled": False}; c["Bootstrap"] = []
c["Gateway"] = c.get("Gateway") or {}; c["Gateway"]["NoDNSLink"] = True
a = c["Addresses"]; a["API"] = "/ip4/127.0.0.1/tcp/0"; a["Gateway"] = "/ip4/127.0.0.1/tcp/0"
a["Swarm"] = []; a["Announce"] = []; a["NoAnnounce"] = []
json.dump(c, open(p, "w"), indent=2)
PY
for c in "$RAW159" "$RAW1M" "$CAR100M"; do
  "${KENV[@]}" ipfs dag import --pin-roots=false "$T/data/$c.car" >/dev/null
done
"${KENV[@]}" ipfs daemon --offline >"$T/kubo/daemon.log" 2>&1 &
KUBO_PID=$!
PIDS+=("$KUBO_PID")
for _ in $(seq 300); do [ -s "$T/kubo/repo/gateway" ] && break; sleep 0.1; done
[ -s "$T/kubo/repo/gateway" ] || die "Kubo did not start: $(cat "$T/kubo/daemon.log")"
KUBO_URL=$(cat "$T/kubo/repo/gateway")
KUBO_URL=${KUBO_URL%/}

# Not through the `ipkg` function: `$!` must be the server itself.
"${IENV[@]}" "$IPKG_BIN" serve --listen 127.0.0.1:0 --threads "${IPKG_SERVE_THREADS:-2}" \
  >"$T/serve.out" 2>"$T/serve.err" &
IPKG_PID=$!
PIDS+=("$IPKG_PID")
for _ in $(seq 100); do [ -s "$T/serve.out" ] && break; sleep 0.1; done
IPKG_URL=$(head -1 "$T/serve.out")
[ -n "$IPKG_URL" ] || die "ipkg serve did not start: $(cat "$T/serve.err")"
for u in "$IPKG_URL" "$KUBO_URL"; do
  curl -sf -o /dev/null "$u/ipfs/$CAR100M?format=car" || die "$u does not serve the CAR"
done

# `cell NAME PID URL CONNS SECS`: one wrk run; prints "rps p50_ms p99_ms rss_kib".
cell() {
  local pid=$2 url=$3 conns=$4 secs=$5
  local peak=0 rss
  (
    while sleep 0.1; do
      awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null
    done
  ) >"$T/rss.samples" &
  local sampler=$!
  local threads=2
  [ "$conns" -lt 2 ] && threads=1
  wrk -t"$threads" -c"$conns" -d"${secs}s" --timeout 60s --latency "$url" >"$T/wrk.out" 2>&1 || true
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  peak=$(sort -n "$T/rss.samples" | tail -1)
  python3 - "$T/wrk.out" "${peak:-0}" <<'PY'
import re, sys
out = open(sys.argv[1]).read()
def ms(s):
    m = re.match(r"([\d.]+)(us|ms|s)", s)
    if not m: return float("nan")
    v, u = float(m.group(1)), m.group(2)
    return v / 1000 if u == "us" else v * 1000 if u == "s" else v
rps = re.search(r"Requests/sec:\s*([\d.]+)", out)
p50 = re.search(r"^\s*50%\s+(\S+)", out, re.M)
p99 = re.search(r"^\s*99%\s+(\S+)", out, re.M)
errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
sock = re.search(r"Socket errors: (.*)", out)
print(rps.group(1) if rps else "0", ms(p50.group(1)) if p50 else "nan",
      ms(p99.group(1)) if p99 else "nan", sys.argv[2],
      (errs.group(1) if errs else "0"), (sock.group(1).replace(" ", "") if sock else "-"))
PY
}

say "measuring (${SECS}s per cell; CAR cells $((SECS * 2))s)"
printf '| object | conns | ipkg req/s | Kubo req/s | ratio | ipkg p50/p99 ms | Kubo p50/p99 ms | ipkg RSS MiB | Kubo RSS MiB |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
for obj in raw159 raw1m car100m; do
  case $obj in
    raw159) path="/ipfs/$RAW159?format=raw"; secs=$SECS ;;
    raw1m) path="/ipfs/$RAW1M?format=raw"; secs=$SECS ;;
    car100m) path="/ipfs/$CAR100M?format=car"; secs=$((SECS * 2)) ;;
  esac
  for c in $CONNS; do
    read -r i_rps i_p50 i_p99 i_rss i_err i_sock < <(cell ipkg "$IPKG_PID" "$IPKG_URL$path" "$c" "$secs")
    read -r k_rps k_p50 k_p99 k_rss k_err k_sock < <(cell kubo "$KUBO_PID" "$KUBO_URL$path" "$c" "$secs")
    python3 - "$obj" "$c" "$i_rps" "$k_rps" "$i_p50" "$i_p99" "$k_p50" "$k_p99" "$i_rss" "$k_rss" \
      "$i_err" "$i_sock" "$k_err" "$k_sock" <<'PY'
import sys
o, c, ir, kr, i50, i99, k50, k99, irss, krss, ie, isock, ke, ksock = sys.argv[1:]
ir, kr = float(ir), float(kr)
ratio = f"{ir / kr:.2f}" if kr > 0 else "-"
note = ""
if ie != "0" or isock != "-": note += f" (ipkg errors: {ie} non-2xx, sockets {isock})"
if ke != "0" or ksock != "-": note += f" (Kubo errors: {ke} non-2xx, sockets {ksock})"
print(f"| {o} | {c} | {ir:.1f} | {kr:.1f} | {ratio} | {float(i50):.2f}/{float(i99):.2f} | "
      f"{float(k50):.2f}/{float(k99):.2f} | {int(irss)/1024:.1f} | {int(krss)/1024:.1f} |{note}")
PY
  done
done
