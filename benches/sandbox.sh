#!/usr/bin/env bash
# Sandbox benchmark: the overhead of `ipkg execute` (a pure run) for a trivial
# program, against running the program directly and against bubblewrap invoked
# by hand with the same mounts; and the memoised path.
#
#   bash benches/sandbox.sh            # 30 runs each (hyperfine when present)
#   BENCH_RUNS=10 bash benches/sandbox.sh
#
# The trivial program is busybox `true` in the busybox example rootfs
# (examples/packages/busybox/build.sh). Measured:
#   direct    the rootfs' busybox, run on the host:     bb/bin/busybox true
#   bwrap     bwrap with the mounts ipkg makes (tmpfs root, the rootfs'
#             top-level entries read-only, /input, /output, /tmp, /proc,
#             /dev, namespaces), by hand
#   pure      ipkg execute --no-cache ROOTFS INPUT true  (runs, adds /output)
#   memo      ipkg execute ROOTFS INPUT true              (memoised: nothing runs)
# Goals (from issue #6): pure within 20 ms of bwrap; memo under 10 ms.
#
# Knobs: BENCH_RUNS (30), IPKG_BIN (default: build --release and use it).
set -euo pipefail

RUNS="${BENCH_RUNS:-30}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/.." && pwd)"

say() { printf '%s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

command -v bwrap >/dev/null || die "bubblewrap (bwrap) is needed"
if [ -z "${IPKG_BIN:-}" ]; then
  (cd "$REPO_ROOT" && cargo build --release --bin ipkg >&2)
  IPKG_BIN="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/ipkg"
fi
[ -x "$IPKG_BIN" ] || die "no ipkg binary at $IPKG_BIN"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export IPKG_PREFIX="$WORK/prefix"
sh "$REPO_ROOT/examples/packages/busybox/build.sh" "$WORK/bb" >/dev/null
mkdir -p "$WORK/input" "$WORK/out"
echo data > "$WORK/input/f"
ROOTFS=$("$IPKG_BIN" pack "$WORK/bb" 2>/dev/null | tail -n 1)
INPUT=$("$IPKG_BIN" add -Q "$WORK/input" 2>/dev/null)
# One run materialises the rootfs and the input in the prefix's cache, where
# the hand-made bwrap command line finds them too.
"$IPKG_BIN" --silent execute --no-cache "$ROOTFS" "$INPUT" true >/dev/null
ROOT="$IPKG_PREFIX/.ipkg/run/$ROOTFS"
IN="$IPKG_PREFIX/.ipkg/run/$INPUT"
[ -d "$ROOT" ] && [ -d "$IN" ] || die "rootfs or input not materialised under $IPKG_PREFIX/.ipkg/run"

bwrap_args=(--unshare-user --unshare-pid --unshare-ipc --unshare-uts --unshare-cgroup-try
  --die-with-parent --unshare-net --new-session --uid 1000 --gid 1000 --hostname ipkg
  --tmpfs /)
for e in "$ROOT"/*; do
  name=$(basename "$e")
  case $name in input|output|tmp|proc|dev|pkg) continue ;; esac
  if [ -L "$e" ]; then bwrap_args+=(--symlink "$(readlink "$e")" "/$name")
  else bwrap_args+=(--ro-bind "$e" "/$name"); fi
done
bwrap_args+=(--ro-bind "$IN" /input --proc /proc --dev /dev --tmpfs /tmp
  --bind "$WORK/out" /output --remount-ro / --chdir /)

direct=("$WORK/bb/bin/busybox" true)
by_hand=(env -i PATH=/bin bwrap "${bwrap_args[@]}" -- /sbin/init true)
pure=("$IPKG_BIN" --silent execute --no-cache "$ROOTFS" "$INPUT" true)
memo=("$IPKG_BIN" --silent execute "$ROOTFS" "$INPUT" true)
"${by_hand[@]}" || die "bwrap by hand failed"
"${memo[@]}" >/dev/null

# Mean wall time in ms of RUNS runs (after 3 warm-ups).
measure() {
  local i start end
  for i in 1 2 3; do "$@" >/dev/null 2>&1; done
  start=$(date +%s%N)
  for ((i = 0; i < RUNS; i++)); do "$@" >/dev/null 2>&1; done
  end=$(date +%s%N)
  echo "scale=3; ($end - $start) / $RUNS / 1000000" | bc
}
if command -v hyperfine >/dev/null; then
  measure() {
    local json="$WORK/h.json"
    hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$json" -- "$(printf '%q ' "$@")" >/dev/null 2>&1 \
      || hyperfine --warmup 3 --runs "$RUNS" --export-json "$json" -- "$(printf '%q ' "$@")" >/dev/null
    python3 -c 'import json,sys; print("%.3f" % (json.load(open(sys.argv[1]))["results"][0]["mean"]*1000))' "$json"
  }
fi

say "measuring ($RUNS runs each)…"
t_direct=$(measure "${direct[@]}")
t_bwrap=$(measure "${by_hand[@]}")
t_pure=$(measure "${pure[@]}")
t_memo=$(measure "${memo[@]}")

ratio() { echo "scale=2; $1 / $2" | bc; }
delta() { echo "scale=3; $1 - $2" | bc; }
printf '\n%-8s %10s\n' "" "mean ms"
printf '%-8s %10s\n' direct "$t_direct" bwrap "$t_bwrap" pure "$t_pure" memo "$t_memo"
printf '\n'
printf 'pure - bwrap  = %8s ms   (goal: <= 20 ms)   pure / bwrap  = %sx\n' "$(delta "$t_pure" "$t_bwrap")" "$(ratio "$t_pure" "$t_bwrap")"
printf 'pure - direct = %8s ms                       pure / direct = %sx\n' "$(delta "$t_pure" "$t_direct")" "$(ratio "$t_pure" "$t_direct")"
printf 'bwrap - direct= %8s ms                       bwrap / direct= %sx\n' "$(delta "$t_bwrap" "$t_direct")" "$(ratio "$t_bwrap" "$t_direct")"
printf 'memo          = %8s ms   (goal: < 10 ms)    memo / bwrap  = %sx\n' "$t_memo" "$(ratio "$t_memo" "$t_bwrap")"
enf=$("$IPKG_BIN" execute --no-cache "$ROOTFS" "$INPUT" true 2>&1 >/dev/null | tail -n 1)
say "(last run: $enf)"
