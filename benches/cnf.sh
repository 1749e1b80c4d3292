#!/usr/bin/env bash
# Command-not-found benchmark: ipkg's handler against Debian's, in one run.
#
#   bash benches/cnf.sh                 # 100,000-command index, 100 runs each
#   BENCH_COMMANDS=10000 BENCH_RUNS=30 bash benches/cnf.sh   # quick
#
# Builds `cargo build --release` (or uses IPKG_BIN), writes a command index of
# BENCH_COMMANDS entries through the same code as `ipkg update` (the hidden
# `ipkg update --commands-from LIST`: `ops::cnf::cmdindex::write`), then measures
# the wall time of one process run, median of BENCH_RUNS, for:
#   - ipkg miss: `ipkg command-not-found zzqx-no-such-command`
#   - ipkg hit:  `ipkg command-not-found xmr` (stdin not a terminal, so the
#     non-interactive path: it prints the suggestion and exits 127, nothing
#     is installed)
#   - Debian miss and hit: `/usr/lib/command-not-found -- CMD` (package
#     `command-not-found`) with its database as the system has it, for a
#     command it does not know and one it does (`htop` when not installed)
#   - `/bin/true`, the floor: what starting any process costs here.
# Runs alternate between the commands so that they see the same machine.
# Ratios are Debian / ipkg (above 1 means ipkg is faster). The goal is an
# ipkg median under 5 ms and at least 10x faster than Debian's.
#
# Debian's database (/var/lib/command-not-found/commands.db) is built by
# `cnf-update-db` from APT's Contents files, which APT downloads when
# `apt-file` is installed; `apt update` runs it. When the database is
# missing and we are root, this script runs `apt-get update` and
# `/usr/lib/cnf-update-db` once (network to Debian's package servers only).
#
# Knobs: BENCH_COMMANDS (100000), BENCH_RUNS (100), IPKG_BIN (skip the build),
#        BENCH_TMPDIR (where the index goes; default $TMPDIR or /tmp).
set -euo pipefail

COMMANDS="${BENCH_COMMANDS:-100000}"
RUNS="${BENCH_RUNS:-100}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/.." && pwd)"
DEBIAN_CNF=/usr/lib/command-not-found
DEBIAN_DB=/var/lib/command-not-found/commands.db

say() { printf '%s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

command -v python3 >/dev/null || die "python3 is not on PATH"
[ -x "$DEBIAN_CNF" ] || die "$DEBIAN_CNF is missing: apt-get install command-not-found"

if [ ! -s "$DEBIAN_DB" ]; then
  if [ "$(id -u)" = 0 ]; then
    say "Debian's command-not-found database is missing: apt-get update + cnf-update-db"
    dpkg-query -W -f='${Status}' apt-file 2>/dev/null | grep -q 'install ok installed' \
      || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq apt-file >/dev/null
    apt-get update -qq
    /usr/lib/cnf-update-db >/dev/null 2>&1 || true
  fi
  [ -s "$DEBIAN_DB" ] || die "no $DEBIAN_DB: run 'apt-get install apt-file && apt-get update' as root"
fi

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

WORK=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/ipkg-cnf-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export IPKG_PREFIX="$WORK/prefix" IPKG_BIN_DIR="$WORK/bin" IPKG_CONFIG="$WORK/config.toml"
printf 'prefix = "%s"\n' "$IPKG_PREFIX" >"$IPKG_CONFIG"
export HOME="$WORK/home" NO_COLOR=1
mkdir -p "$HOME" "$IPKG_PREFIX"

python3 - "$WORK/list.tsv" "$COMMANDS" <<'EOF'
# A registry-shaped list: 5 registries, packages of 1 to 4 commands, some
# commands provided by two packages; `xmr` is one of the commands.
import random, string, sys
path, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
alphabet = string.ascii_lowercase + string.digits
def key():
    return "k51qzi5uqu5d" + "".join(rng.choice(alphabet) for _ in range(50))
publishers = [key() for _ in range(200)]
registries = ["main", "community", "alice", "bob", "example.org"]
lines, count, p = [], 0, 0
while count < n - 1:
    p += 1
    pkg = f"pkg{p:06d}"
    reg, pub = rng.choice(registries), rng.choice(publishers)
    ver = f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 99)}"
    for c in range(rng.randint(1, 4)):
        if count >= n - 1:
            break
        cmd = f"{pkg}-{c}" if rng.random() > 0.05 else f"tool{rng.randint(0, n // 20)}"
        lines.append(f"{cmd}\t{reg}\t{pkg}\t{ver}\t{pub}")
        count += 1
lines.append(f"xmr\talice\txmr\t1.2.3\t{publishers[0]}")
with open(path, "w") as f:
    f.write("\n".join(lines) + "\n")
EOF

"$IPKG" update --commands-from "$WORK/list.tsv"
INDEX="$IPKG_PREFIX/.ipkg/state/commands.idx"
say "index: $(stat -c %s "$INDEX") bytes"

# Debian's hit: a command its database knows that is not installed here.
DEB_HIT=""
for c in htop tree jq ncdu sl cowsay figlet; do
  said=$("$DEBIAN_CNF" -- "$c" 2>&1 || true)
  if ! command -v "$c" >/dev/null 2>&1 && [[ $said == *"apt install"* ]]; then
    DEB_HIT=$c
    break
  fi
done
[ -n "$DEB_HIT" ] || die "found no command that Debian's database knows and is not installed"
DEB_COMMANDS=$(python3 -c "import sqlite3; print(sqlite3.connect('file:$DEBIAN_DB?mode=ro', uri=True).execute('select count(*) from commands').fetchone()[0])")

# Sanity: the cases do what they should.
set +e
"$IPKG" command-not-found xmr </dev/null 2>"$WORK/hit.txt"; st=$?
set -e
[ "$st" = 127 ] && grep -q 'ipkg install alice/xmr@=1.2.3' "$WORK/hit.txt" \
  || die "ipkg hit misbehaves (exit $st): $(cat "$WORK/hit.txt")"

python3 - "$RUNS" "$IPKG" "$DEBIAN_CNF" "$DEB_HIT" "$COMMANDS" "$DEB_COMMANDS" <<'EOF'
import os, statistics, sys, time
runs, ipkg, deb, deb_hit, n, deb_n = int(sys.argv[1]), *sys.argv[2:4], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
cases = {
    "ipkg miss": [ipkg, "command-not-found", "zzqx-no-such-command"],
    "ipkg hit": [ipkg, "command-not-found", "xmr"],
    "debian miss": [deb, "--", "zzqx-no-such-command"],
    "debian hit": [deb, "--", deb_hit],
    "/bin/true": ["/bin/true"],
}
devnull = os.open(os.devnull, os.O_RDWR)
acts = [(os.POSIX_SPAWN_DUP2, devnull, fd) for fd in (0, 1, 2)]
env = dict(os.environ)
def once(argv):
    t = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=acts)
    os.waitpid(pid, 0)
    return (time.perf_counter_ns() - t) / 1e6
for argv in cases.values():  # warm the page cache
    for _ in range(3):
        once(argv)
times = {k: [] for k in cases}
for _ in range(runs):
    for k, argv in cases.items():
        times[k].append(once(argv))
med = {k: statistics.median(v) for k, v in times.items()}
print(f"command-not-found latency, median of {runs} runs (ms); ipkg index: {n:,} commands, "
      f"Debian database: {deb_n:,} commands (hit: `{deb_hit}`)")
print(f"{'case':<14}{'median':>9}{'p10':>9}{'p90':>9}")
for k, v in times.items():
    q = statistics.quantiles(v, n=10)
    print(f"{k:<14}{med[k]:>9.2f}{q[0]:>9.2f}{q[-1]:>9.2f}")
for kind in ("miss", "hit"):
    r = med[f"debian {kind}"] / med[f"ipkg {kind}"]
    goal = "met" if med[f"ipkg {kind}"] < 5 and r >= 10 else "NOT met"
    print(f"ratio debian/ipkg ({kind}): {r:.1f}x  (goal < 5 ms and >= 10x: {goal})")
EOF
