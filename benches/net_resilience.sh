#!/usr/bin/env bash
# Network resilience benchmark (issue 14): what a dead first gateway costs,
# and what bounded concurrency saves on an upgrade of scattered changed blocks.
#
#   bash benches/net_resilience.sh                      # 100 MiB package
#   BENCH_SIZE_MIB=20 bash benches/net_resilience.sh     # quick
#
# The publisher's `ipkg serve` sits behind a small Python proxy that adds
# BENCH_RTT_MS (25) of latency to every request (a WAN round trip, without
# touching the loopback interface other processes share) and counts requests.
# A "dead" gateway is a loopback port that accepts connections and never
# answers. Measured (median of BENCH_RUNS, 3; each on a cold client):
#   1. cold `registry add` + `install` with gateways = [proxy];
#   2. the same with gateways = [dead, proxy] (default timeouts: 20 s idle,
#      one retry): the overhead of a dead first source;
#   3. an upgrade in which 1% of the file's 256 KiB chunks changed, spread over
#      the file: requests and time with up to 16 blocks in flight (default)
#      and with IPKG_MAX_IN_FLIGHT=1 (the old one round trip per block).
#
# Loopback only. Knobs: BENCH_SIZE_MIB (100), BENCH_RUNS (3), BENCH_RTT_MS
# (25), BENCH_CHANGE_EVERY (100: one chunk in 100 changed), BENCH_TMPDIR,
# IPKG_BIN (skip the release build).
set -euo pipefail

SIZE_MIB="${BENCH_SIZE_MIB:-100}"
RUNS="${BENCH_RUNS:-3}"
RTT_MS="${BENCH_RTT_MS:-25}"
EVERY="${BENCH_CHANGE_EVERY:-100}"   # one changed chunk in EVERY (100: 1%)
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/.." && pwd)"
say() { printf '%s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
command -v python3 >/dev/null || die "python3 is needed"
command -v openssl >/dev/null || die "openssl is needed"

if [ -z "${IPKG_BIN:-}" ]; then
  say "building the release binary"
  (cd "$REPO_ROOT" && cargo build --release --quiet --bin ipkg)
  IPKG_BIN="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/ipkg"
fi

T=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/var/tmp}}/ipkg-resbench.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT

renv() {
  local r=$1
  mkdir -p "$T/$r/home/.config/ipkg" "$T/$r/prefix" "$T/$r/bin"
  RENV=(env -i PATH="$PATH" HOME="$T/$r/home" XDG_CONFIG_HOME="$T/$r/home/.config"
    XDG_DATA_HOME="$T/$r/home/.local/share" IPKG_PREFIX="$T/$r/prefix"
    IPKG_BIN_DIR="$T/$r/bin" NO_COLOR=1 TMPDIR="$T" IPKG_NO_DEFAULT_SOURCES=1)
}
role() { renv "$1"; shift; "${RENV[@]}" "$@"; }
config() { mkdir -p "$T/$1/home/.config/ipkg"; printf '%s\n' "$2" >"$T/$1/home/.config/ipkg/config.toml"; }
now() { date +%s.%N; }
median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# --- the latency proxy and the dead gateway ----------------------------------
cat >"$T/proxy.py" <<'PY'
import http.server, socketserver, sys, threading, time, urllib.request, json, socket
mode, port_file = sys.argv[1], sys.argv[2]
if mode == "dead":
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(128)
    open(port_file, "w").write(str(s.getsockname()[1]))
    held = []
    while True:
        c, _ = s.accept(); held.append(c)   # accepted, never answered
upstream, delay = sys.argv[3], float(sys.argv[4]) / 1000
stats = {"raw": 0, "car": 0, "ipns": 0, "other": 0}
lock = threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        if self.path == "/__stats":
            body = json.dumps(stats).encode()
            self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
            self.wfile.write(body); return
        if self.path == "/__reset":
            with lock:
                for k in stats: stats[k] = 0
            self.send_response(204); self.send_header("Content-Length", "0"); self.end_headers(); return
        kind = "car" if "format=car" in self.path else "raw" if "format=raw" in self.path else "ipns" if self.path.startswith("/ipns/") else "other"
        with lock: stats[kind] += 1
        time.sleep(delay)
        req = urllib.request.Request(upstream + self.path, headers={"Accept": self.headers.get("Accept", "*/*")})
        try:
            r = urllib.request.urlopen(req)
            status = r.status
        except urllib.error.HTTPError as e:
            r, status = e, e.code
        self.send_response(status)
        for k in ("Content-Type",):
            if r.headers.get(k): self.send_header(k, r.headers[k])
        self.send_header("Connection", "close")
        self.end_headers()
        while True:
            b = r.read(1 << 16)
            if not b: break
            self.wfile.write(b)
        self.close_connection = True
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
srv = S(("127.0.0.1", 0), H)
open(port_file, "w").write(str(srv.server_address[1]))
srv.serve_forever()
PY
wait_port() { for _ in $(seq 200); do [ -s "$1" ] && return 0; sleep 0.05; done; die "no port in $1"; }

# --- the package ---------------------------------------------------------------
say "making a ${SIZE_MIB} MiB package"
mkpkg() {
  mkdir -p "$1/bin"
  printf '[package]\nname = "bench"\nversion = "%s"\ndescription = "benchmark payload"\nlicense = "MIT"\ntargets = ["any"]\n\n[commands]\nbench = "bin/bench"\n' "$2" >"$1/ipkg.toml"
  printf '#!/bin/sh\necho bench\n' >"$1/bin/bench"; chmod 755 "$1/bin/bench"
}
mkpkg "$T/pkg1" 1.0.0
openssl rand -out "$T/pkg1/data.bin" $((SIZE_MIB * 1024 * 1024))
cp -r "$T/pkg1" "$T/pkg2"
sed -i 's/version = "1.0.0"/version = "2.0.0"/' "$T/pkg2/ipkg.toml"
# 1% of the 256 KiB chunks changed, spread evenly over the file.
python3 - "$T/pkg2/data.bin" "$EVERY" <<'PY'
import os, sys
p = sys.argv[1]; every = int(sys.argv[2]); chunk = 256 * 1024; n = os.path.getsize(p) // chunk
with open(p, "r+b") as f:
    for i in range(0, n, every):
        f.seek(i * chunk + 17); f.write(os.urandom(64))
PY
config pub 'kubo-api = "off"'
role pub "$IPKG_BIN" key gen bench >/dev/null 2>&1
K=$(role pub "$IPKG_BIN" registry init main --key bench 2>/dev/null | sed 's#/ipns/##')
role pub "$IPKG_BIN" publish "$T/pkg1" --registry main >/dev/null 2>&1
renv pub
"${RENV[@]}" "$IPKG_BIN" serve --listen 127.0.0.1:0 >"$T/serve.url" 2>/dev/null &
PIDS+=($!)
wait_port "$T/serve.url"
SERVE=$(head -1 "$T/serve.url")
python3 "$T/proxy.py" proxy "$T/proxy.port" "$SERVE" "$RTT_MS" & PIDS+=($!)
python3 "$T/proxy.py" dead "$T/dead.port" & PIDS+=($!)
wait_port "$T/proxy.port"; wait_port "$T/dead.port"
PROXY="http://127.0.0.1:$(cat "$T/proxy.port")"
DEAD="http://127.0.0.1:$(cat "$T/dead.port")"
stats() { python3 -c 'import json,sys,urllib.request; print(json.load(urllib.request.urlopen(sys.argv[1] + "/__stats")))' "$PROXY"; }
reset() { python3 -c 'import sys,urllib.request; urllib.request.urlopen(sys.argv[1] + "/__reset")' "$PROXY"; }

# A cold client: subscribe and install; wall seconds of both.
cold() {
  local name=$1 gws=$2
  rm -rf "${T:?}/$name"
  config "$name" "kubo-api = \"off\"
gateways = [$gws]"
  local t0; t0=$(now)
  role "$name" "$IPKG_BIN" registry add pub "$K" >/dev/null 2>"$T/$name.err" || { cat "$T/$name.err"; die "registry add failed"; }
  role "$name" "$IPKG_BIN" install bench@1.0.0 >/dev/null 2>>"$T/$name.err" || { cat "$T/$name.err"; die "install failed"; }
  python3 -c "print(round($(now) - $t0, 2))"
}
t_honest="" t_dead=""
for run in $(seq "$RUNS"); do
  say "run $run/$RUNS: cold install, honest gateway alone, then a dead one first"
  t_honest="$t_honest $(cold c1 "\"$PROXY\"")"
  t_dead="$t_dead $(cold c2 "\"$DEAD\", \"$PROXY\"")"
done

say "upgrade with 1% of the chunks changed"
role pub "$IPKG_BIN" publish "$T/pkg2" --registry main >/dev/null 2>&1
up() {
  local name=$1; shift
  cold "$name" "\"$PROXY\"" >/dev/null
  reset
  local t0; t0=$(now)
  renv "$name"; "${RENV[@]}" "$@" "$IPKG_BIN" install bench@2.0.0 >/dev/null 2>"$T/$name.err" || { cat "$T/$name.err"; die "upgrade failed"; }
  printf '%s %s\n' "$(python3 -c "print(round($(now) - $t0, 2))")" "$(stats)"
}
t_par="" t_seq="" s_par="" s_seq=""
for run in $(seq "$RUNS"); do
  read -r t s < <(up u1 IPKG_MAX_IN_FLIGHT=16); t_par="$t_par $t"; s_par="$s"
  read -r t s < <(up u2 IPKG_MAX_IN_FLIGHT=1); t_seq="$t_seq $t"; s_seq="$s"
done

printf '\nipkg network resilience, %s MiB package, %s ms added per request, median of %s\n' "$SIZE_MIB" "$RTT_MS" "$RUNS"
printf '  cold subscribe+install, honest gateway alone:   %6ss\n' "$(median "$t_honest")"
printf '  cold subscribe+install, dead gateway first:     %6ss\n' "$(median "$t_dead")"
printf '  upgrade (1 chunk in %s changed), 16 in flight:  %6ss  requests %s\n' "$EVERY" "$(median "$t_par")" "$s_par"
printf '  upgrade (1 chunk in %s changed), 1 in flight:   %6ss  requests %s\n' "$EVERY" "$(median "$t_seq")" "$s_seq"
