#!/usr/bin/env bash
# Content benchmark: ipkg's importer against Kubo and openssl, in one run.
#
#   bash benches/content.sh            # 1 GiB file + 10,000-file tree, 3 runs each
#   BENCH_SIZE_MIB=256 BENCH_FILES=2000 BENCH_RUNS=1 bash benches/content.sh   # quick
#
# Builds `cargo build --release`, makes a file of random bytes and a tree of
# small files in a temporary directory, and measures wall time and peak RSS
# (`/usr/bin/time -f '%e %M'`) of:
#   - `ipkg add --only-hash -q` under both profiles, and `ipfs add --only-hash -Q`
#     with Kubo's default settings and with the unixfs-v1-2025 profile;
#   - `openssl dgst -sha256` of the file (the floor: one pass of SHA-256);
#   - `ipkg add -q` into a fresh store and `ipfs add -Q` into a fresh Kubo repo
#     (offline, no daemon), under both profiles.
# Each figure is the median of BENCH_RUNS runs; the page cache is warmed
# first, so this measures CPU and the store, not the disk read of the input.
# The report gives MB/s, peak RSS, and the ratios ipkg/Kubo and ipkg/openssl
# (below 1 means ipkg is faster / smaller), and checks that ipkg and Kubo
# print the same CID for the same settings.
#
# No network: Kubo runs offline from a repo made with `--profile=test`.
# Everything is made under one temporary directory, removed on exit.
#
# Knobs: BENCH_SIZE_MIB (1024), BENCH_FILES (10000), BENCH_RUNS (3),
#        BENCH_TIMEOUT (seconds per command, 900), BENCH_TMPDIR (default $TMPDIR
#        or /var/tmp: the 1 GiB file and the stores go there),
#        IPKG_BIN (skip the build and use this binary).
set -euo pipefail

SIZE_MIB="${BENCH_SIZE_MIB:-1024}"
FILES="${BENCH_FILES:-10000}"
RUNS="${BENCH_RUNS:-3}"
TIMEOUT="${BENCH_TIMEOUT:-900}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/.." && pwd)"

say() { printf '%s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# --- tools -----------------------------------------------------------------
if [ ! -x /usr/bin/time ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing GNU time"
    apt-get install -y -qq time >/dev/null 2>&1 \
      || { apt-get update -qq && apt-get install -y -qq time; }
  else
    die "/usr/bin/time (GNU time) is needed: apt-get install time"
  fi
fi
command -v ipfs >/dev/null || die "ipfs (Kubo) is not on PATH; see docs/ci.md for the build recipe"
command -v openssl >/dev/null || die "openssl is not on PATH"
command -v python3 >/dev/null || die "python3 is not on PATH"

if [ -n "${IPKG_BIN:-}" ]; then
  IPKG="$IPKG_BIN"
else
  say "building ipkg (release)"
  (cd "$REPO_ROOT" && cargo build --release --quiet)
  target_dir=$(cd "$REPO_ROOT" && cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  IPKG="$target_dir/release/ipkg"
fi
[ -x "$IPKG" ] || die "no ipkg binary at $IPKG"

# --- workspace -------------------------------------------------------------
WORK=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/var/tmp}}/ipkg-bench.XXXXXX")
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
RESULTS="$WORK/results.tsv"
: >"$RESULTS"
FAILED=0

export IPFS_TELEMETRY=off
unset IPFS_HTTP_ROUTERS IPFS_PATH

# A Kubo repo locked down as the tests do (docs/ci.md): offline, loopback only.
kubo_repo() { # DIR [PROFILE]
  local dir=$1 profile=test
  [ -n "${2:-}" ] && profile="test,$2"
  IPFS_PATH="$dir" ipfs init --empty-repo --profile="$profile" >/dev/null
  IPFS_PATH="$dir" ipfs config --json Plugins.Plugins.telemetry.Disabled true
  IPFS_PATH="$dir" ipfs config --json AutoConf.Enabled false
  IPFS_PATH="$dir" ipfs config --json Bootstrap '[]'
}

# measure INPUT TOOL SETTINGS BYTES PREP -- CMD...
# Runs PREP (untimed: e.g. make a fresh store) then CMD, RUNS times; records
# the median wall time, the median peak RSS and the first line of stdout.
measure() {
  local input=$1 tool=$2 settings=$3 bytes=$4 prep=$5
  shift 6
  local times=() rss=() out="" i
  for ((i = 0; i < RUNS; i++)); do
    eval "$prep"
    if ! timeout "$TIMEOUT" /usr/bin/time -f '%e %M' -o "$WORK/time" "$@" \
      >"$WORK/stdout" 2>"$WORK/stderr"; then
      say "FAILED: $tool $settings on $input: $*"
      sed 's/^/    /' "$WORK/stderr" | tail -n 5 >&2
      printf '%s\t%s\t%s\t%s\tFAILED\tFAILED\t-\n' "$input" "$tool" "$settings" "$bytes" >>"$RESULTS"
      FAILED=1
      return 0
    fi
    read -r t m < <(tail -n 1 "$WORK/time")
    times+=("$t")
    rss+=("$m")
    out=$(awk 'NR == 1 {print $NF}' "$WORK/stdout")
  done
  local mt mr
  mt=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  mr=$(printf '%s\n' "${rss[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$input" "$tool" "$settings" "$bytes" "$mt" "$mr" "$out" >>"$RESULTS"
  say "  $(printf '%-6s %-7s %-28s %8ss %8s KiB  %s' "$input" "$tool" "$settings" "$mt" "$mr" "$out")"
}

# --- inputs ----------------------------------------------------------------
say "making a ${SIZE_MIB} MiB random file and a tree of $FILES files in $WORK"
FILE="$WORK/data.bin"
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom >"$FILE"
TREE="$WORK/tree"
python3 - "$TREE" "$FILES" <<'EOF'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(1)
os.makedirs(root)
# ~100 files per directory, two levels, sizes skewed small as in real packages.
for i in range(n):
    d = os.path.join(root, f"d{i // 1000:02}", f"e{(i // 100) % 10}")
    os.makedirs(d, exist_ok=True)
    size = min(int(rng.expovariate(1 / 6000)), 256 * 1024)
    with open(os.path.join(d, f"file-{i:05}.dat"), "wb") as f:
        f.write(rng.randbytes(size))
EOF
FILE_BYTES=$(stat -c %s "$FILE")
TREE_BYTES=$(find "$TREE" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}')

KUBO_V0="$WORK/kubo-v0"
KUBO_V1="$WORK/kubo-v1"
kubo_repo "$KUBO_V0"
kubo_repo "$KUBO_V1" unixfs-v1-2025

say "warming the page cache"
cat "$FILE" >/dev/null
find "$TREE" -type f -exec cat {} + >/dev/null

say "ipkg: $IPKG"
say "kubo: $(ipfs version)"
say "openssl: $(openssl version)"
say "runs: $RUNS (median)"

# ipkg with a private HOME and prefix, nothing else from the environment.
mkdir -p "$WORK/home"
IPKG_ENV=(env -i PATH="$PATH" HOME="$WORK/home" IPKG_PREFIX="$WORK/prefix" NO_COLOR=1 "$IPKG")
FRESH_PREFIX='rm -rf "$WORK/prefix"; mkdir -p "$WORK/prefix"'
FRESH_KUBO_V0='rm -rf "$WORK/store-v0"; kubo_repo "$WORK/store-v0"'
FRESH_KUBO_V1='rm -rf "$WORK/store-v1"; kubo_repo "$WORK/store-v1" unixfs-v1-2025'

for input in file tree; do
  if [ "$input" = file ]; then path=$FILE bytes=$FILE_BYTES; else path=$TREE bytes=$TREE_BYTES; fi
  say "== $input ($bytes bytes)"
  if [ "$input" = file ]; then
    measure "$input" openssl "sha256" "$bytes" ":" -- openssl dgst -sha256 "$path"
  fi
  measure "$input" ipkg "hash unixfs-v1-2025" "$bytes" "$FRESH_PREFIX" -- \
    "${IPKG_ENV[@]}" add --only-hash -q --profile unixfs-v1-2025 "$path"
  measure "$input" kubo "hash unixfs-v1-2025" "$bytes" ":" -- \
    env IPFS_PATH="$KUBO_V1" ipfs add -r --only-hash -Q "$path"
  measure "$input" ipkg "hash unixfs-v0-2015" "$bytes" "$FRESH_PREFIX" -- \
    "${IPKG_ENV[@]}" add --only-hash -q --profile unixfs-v0-2015 "$path"
  measure "$input" kubo "hash unixfs-v0-2015" "$bytes" ":" -- \
    env IPFS_PATH="$KUBO_V0" ipfs add -r --only-hash -Q "$path"
  measure "$input" ipkg "store unixfs-v1-2025" "$bytes" "$FRESH_PREFIX" -- \
    "${IPKG_ENV[@]}" add -q --profile unixfs-v1-2025 "$path"
  measure "$input" kubo "store unixfs-v1-2025" "$bytes" "$FRESH_KUBO_V1" -- \
    env IPFS_PATH="$WORK/store-v1" ipfs add -r -Q "$path"
  measure "$input" ipkg "store unixfs-v0-2015" "$bytes" "$FRESH_PREFIX" -- \
    "${IPKG_ENV[@]}" add -q --profile unixfs-v0-2015 "$path"
  measure "$input" kubo "store unixfs-v0-2015" "$bytes" "$FRESH_KUBO_V0" -- \
    env IPFS_PATH="$WORK/store-v0" ipfs add -r -Q "$path"
  rm -rf "$WORK/prefix" "$WORK/store-v0" "$WORK/store-v1"
done

echo
python3 "$HERE/content_report.py" "$RESULTS" "$FILES"
exit "$FAILED"
