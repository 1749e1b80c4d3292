#!/usr/bin/env bash
# What the bundled `xmr` costs, against Debian's own packages, in one run.
#
#   bash benches/xmr.sh [RUNS]        (IPKG=/path/to/ipkg, else target/release/ipkg)
#
# 1. Size: the bundle tree (and its CAR) against the Installed-Size and the
#    .deb sizes of the Debian packages its files came from (the
#    `debian-package` fields of its [bundle] table).
# 2. Install time, RUNS times each (default 5), median: `ipkg install xmr` by
#    name into an empty user prefix, through a registry subscription and
#    `ipkg serve` on 127.0.0.1, against `apt-get install --reinstall -y
#    monero` from a local package cache (the .debs downloaded beforehand into
#    a private archives directory, `--no-download`). apt reinstalls only the
#    monero .deb (its libraries are already installed); the bundle brings all
#    of them.
# 3. Disk for two versions sharing their libraries: du of the user prefix with
#    one version, with both, and the store alone.
# Needs root (apt-get), Debian's monero, and a C compiler. Loopback only.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
runs=${1:-5}
ipkg=${IPKG:-$here/target/release/ipkg}
[ -x "$ipkg" ] || { echo "xmr.sh: no ipkg at $ipkg: cargo build --release, or set IPKG" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "xmr.sh: apt-get needs root" >&2; exit 2; }
dpkg-query -W -f '${Status}' monero 2>/dev/null | grep -q 'install ok installed' ||
  { echo "xmr.sh: install Debian's monero first: apt-get install -y monero" >&2; exit 2; }
export IPKG_NO_DEFAULT_SOURCES=1 NO_COLOR=1
unset IPFS_PATH IPFS_API IPKG_GATEWAYS IPKG_CONFIG IPKG_PREFIX IPKG_BIN_DIR

work=$(mktemp -d)
serve_pid=
cleanup() {
  local status=$?
  set +e
  if [ -n "$serve_pid" ]; then kill "$serve_pid" 2>/dev/null; wait "$serve_pid" 2>/dev/null; fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

world() { # NAME [GATEWAY]
  local h="$work/$1"
  rm -rf "$h"
  mkdir -p "$h/home" "$h/config" "$h/data" "$h/cache" "$h/bin"
  printf 'kubo-api = "off"\nprefix = "%s"\nbin-dir = "%s"\n' "$h/prefix" "$h/bin" > "$h/config.toml"
  [ -n "${2:-}" ] && printf 'gateways = ["%s"]\ntimeout = "10s"\n' "$2" >> "$h/config.toml"
  return 0
}
as() { # NAME COMMAND...
  local h="$work/$1"
  shift
  env -i PATH="$h/bin:/usr/local/bin:/usr/bin:/bin" HOME="$h/home" \
    XDG_CONFIG_HOME="$h/config" XDG_DATA_HOME="$h/data" XDG_CACHE_HOME="$h/cache" \
    IPKG_CONFIG="$h/config.toml" TMPDIR="${TMPDIR:-/tmp}" NO_COLOR=1 IPKG_NO_DEFAULT_SOURCES=1 "$@"
}
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
kib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b/1048576}'; }

# The same, replacing the (background) shell, so `$!` is the program's PID.
as_exec() { # NAME COMMAND...
  local h="$work/$1"
  shift
  exec env -i PATH="$h/bin:/usr/local/bin:/usr/bin:/bin" HOME="$h/home" \
    XDG_CONFIG_HOME="$h/config" XDG_DATA_HOME="$h/data" XDG_CACHE_HOME="$h/cache" \
    IPKG_CONFIG="$h/config.toml" TMPDIR="${TMPDIR:-/tmp}" NO_COLOR=1 IPKG_NO_DEFAULT_SOURCES=1 "$@"
}
world maintainer
IPKG="$ipkg" sh examples/packages/xmr/build.sh "$work/xmr-1" 1 >/dev/null
IPKG="$ipkg" sh examples/packages/xmr/build.sh "$work/xmr-2" 2 >/dev/null

echo "== size"
tree_bytes=$(du -sb "$work/xmr-1" | cut -f1)
cid=$(as maintainer "$ipkg" add -q --preserve-mode "$work/xmr-1" 2>/dev/null | tail -n1)
as maintainer "$ipkg" car export "$cid" -o "$work/xmr.car" >/dev/null 2>&1
car_bytes=$(stat -c %s "$work/xmr.car")
mapfile -t debs < <(sed -n 's/.*debian-package = "\([^":]*\).*/\1/p' "$work/xmr-1/ipkg.toml" | sort -u)
installed_kib=0
deb_bytes=0
for d in "${debs[@]}"; do
  installed_kib=$((installed_kib + $(dpkg-query -W -f '${Installed-Size}' "$d")))
  deb_bytes=$((deb_bytes + $(apt-cache show --no-all-versions "$d" | sed -n 's/^Size: //p' | head -n1)))
done
echo "bundle tree:       $(kib "$tree_bytes") ($(ls "$work/xmr-1/lib" | wc -l) files in lib/)"
echo "bundle CAR:        $(kib "$car_bytes")"
echo "Debian packages:   ${#debs[@]} (${debs[*]})"
echo "  Installed-Size:  $(kib $((installed_kib * 1024)))  -> bundle/Debian = $(awk -v a="$tree_bytes" -v b=$((installed_kib * 1024)) 'BEGIN {printf "%.2f", a/b}')"
echo "  .deb files:      $(kib "$deb_bytes")  -> CAR/.debs = $(awk -v a="$car_bytes" -v b="$deb_bytes" 'BEGIN {printf "%.2f", a/b}')"

echo "== install time (median of $runs)"
registry=$(as maintainer "$ipkg" registry init monero --key "$(as maintainer "$ipkg" key gen team >/dev/null 2>&1; echo team)" 2>/dev/null)
as maintainer "$ipkg" publish "$work/xmr-1" --registry monero >/dev/null 2>&1
as_exec maintainer "$ipkg" serve --listen 127.0.0.1:0 >"$work/serve.out" 2>/dev/null &
serve_pid=$!
for _ in $(seq 100); do [ -s "$work/serve.out" ] && break; sleep 0.1; done
gateway=$(head -n1 "$work/serve.out")
ipkg_times=()
for _ in $(seq "$runs"); do
  world user "$gateway"
  as user "$ipkg" registry add monero "$registry" >/dev/null 2>&1
  t0=$(now)
  as user "$ipkg" install xmr >/dev/null 2>&1
  t1=$(now)
  as user xmr --version | grep -q "^Monero '" || { echo "xmr.sh: installed xmr does not run" >&2; exit 1; }
  ipkg_times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b-a}')")
done
archives="$work/archives"
mkdir -p "$archives/partial"
apt-get install --reinstall -y -qq --download-only -o Dir::Cache::archives="$archives" monero >/dev/null 2>&1
apt_times=()
for _ in $(seq "$runs"); do
  t0=$(now)
  DEBIAN_FRONTEND=noninteractive apt-get install --reinstall -y -qq --no-download \
    -o Dir::Cache::archives="$archives" monero >/dev/null 2>&1
  t1=$(now)
  apt_times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b-a}')")
done
it=$(printf '%s\n' "${ipkg_times[@]}" | median)
at=$(printf '%s\n' "${apt_times[@]}" | median)
echo "ipkg install xmr (by name, ipkg serve on loopback): ${it}s   runs: ${ipkg_times[*]}"
echo "apt-get install --reinstall monero (local cache):   ${at}s   runs: ${apt_times[*]}"
echo "  ratio ipkg/apt = $(awk -v a="$it" -v b="$at" 'BEGIN {printf "%.2f", a/b}')"

echo "== disk for two versions"
one=$(du -sb "$work/user/prefix" | cut -f1)
as maintainer "$ipkg" publish "$work/xmr-2" --registry monero >/dev/null 2>&1
as user "$ipkg" update >/dev/null 2>&1
as user "$ipkg" upgrade >/dev/null 2>&1
two=$(du -sb "$work/user/prefix" | cut -f1)
store=$(du -sb "$work/user/prefix/.ipkg" | cut -f1)
echo "prefix with one version:  $(kib "$one")"
echo "prefix with two versions: $(kib "$two")  (+$(kib $((two - one))); two separate trees would be $(kib $((2 * tree_bytes))) of files)"
echo "  of which .ipkg (store, state): $(kib "$store")"
