#!/usr/bin/env bash
# The main job: `ipkg install xmr`, a real all-in-one program resolved by name
# through IPNS, on the embedded default (no IPFS daemon).
#
#   bash examples/demo.sh          (IPKG=/path/to/ipkg to use a built binary)
#
# Two people on one machine, each with their own HOME, XDG dirs and prefix:
# - a maintainer bundles Debian's monero into the all-in-one package `xmr`
#   (examples/packages/xmr/build.sh, `ipkg bundle`), publishes it to a signed
#   registry and serves the store with `ipkg serve` on 127.0.0.1;
# - a user who has only the registry's `/ipns/k51…` name and the gateway's
#   address subscribes, installs `xmr` by name, runs it, upgrades, switches
#   back by CID, removes it, and gets it again from the command-not-found hook
#   in a bash under tmux.
# Loopback only, IPKG_NO_DEFAULT_SOURCES=1; everything is removed at the end.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
export IPKG_NO_DEFAULT_SOURCES=1 NO_COLOR=1
unset IPFS_PATH IPFS_API IPKG_GATEWAYS IPKG_CONFIG IPKG_PREFIX IPKG_BIN_DIR

say() { printf '\n==> %s\n' "$*"; }

if [ -n "${IPKG:-}" ]; then
  ipkg=$IPKG
else
  say "building ipkg (release)"
  cargo build --release --quiet
  ipkg="$here/target/release/ipkg"
fi

if ! dpkg-query -W -f '${Status}' monero 2>/dev/null | grep -q 'install ok installed'; then
  if [ "$(id -u)" = 0 ]; then
    say "installing Debian's monero for the maintainer to bundle (apt-get install -y monero)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends monero >/dev/null
  else
    echo "demo.sh: the maintainer bundles Debian's \`monero\`, which is not installed here;" >&2
    echo "  run \`sudo apt-get install -y monero\` (or run this demo as root) and try again" >&2
    exit 2
  fi
fi

work=$(mktemp -d)
serve_pid=
tmux_sock="$work/tmux.sock"
cleanup() {
  local status=$?
  set +e
  if [ -n "$serve_pid" ]; then kill "$serve_pid" 2>/dev/null; wait "$serve_pid" 2>/dev/null; fi
  if [ -S "$tmux_sock" ]; then tmux -S "$tmux_sock" kill-server 2>/dev/null; fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

# Each person's world: HOME, XDG dirs, prefix, bin dir, config; nothing else
# from the caller's environment.
world() { # NAME
  local h="$work/$1"
  mkdir -p "$h/home" "$h/config/ipkg" "$h/data" "$h/cache" "$h/bin"
  printf 'kubo-api = "off"\nprefix = "%s"\nbin-dir = "%s"\n' "$h/prefix" "$h/bin" > "$h/config.toml"
}
as() { # NAME COMMAND...
  local h="$work/$1"
  shift
  env -i PATH="$h/bin:/usr/local/bin:/usr/bin:/bin" HOME="$h/home" \
    XDG_CONFIG_HOME="$h/config" XDG_DATA_HOME="$h/data" XDG_CACHE_HOME="$h/cache" \
    IPKG_CONFIG="$h/config.toml" TMPDIR="${TMPDIR:-/tmp}" NO_COLOR=1 IPKG_NO_DEFAULT_SOURCES=1 \
    TERM="${TERM:-dumb}" "$@"
}
# The same, replacing the (background) shell, so `$!` is the program's PID.
as_exec() { # NAME COMMAND...
  local h="$work/$1"
  shift
  exec env -i PATH="$h/bin:/usr/local/bin:/usr/bin:/bin" HOME="$h/home" \
    XDG_CONFIG_HOME="$h/config" XDG_DATA_HOME="$h/data" XDG_CACHE_HOME="$h/cache" \
    IPKG_CONFIG="$h/config.toml" TMPDIR="${TMPDIR:-/tmp}" NO_COLOR=1 IPKG_NO_DEFAULT_SOURCES=1 "$@"
}
world maintainer
world user

say "maintainer: bundle Debian's monero into the all-in-one package xmr (ipkg bundle)"
IPKG="$ipkg" sh examples/packages/xmr/build.sh "$work/maintainer/xmr-1" 1 >/dev/null
IPKG="$ipkg" sh examples/packages/xmr/build.sh "$work/maintainer/xmr-2" 2 >/dev/null
v1=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$work/maintainer/xmr-1/ipkg.toml")
v2=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$work/maintainer/xmr-2/ipkg.toml")
echo "    xmr $v1: $(ls "$work/maintainer/xmr-1/lib" | wc -l) files in lib/ ($(du -sh "$work/maintainer/xmr-1" | cut -f1)), commands: $(ls "$work/maintainer/xmr-1/bin" | tr '\n' ' ')"

say "maintainer: a signing key and a registry it signs"
as maintainer "$ipkg" key gen monero-team >/dev/null
registry=$(as maintainer "$ipkg" registry init monero --key monero-team)
echo "    registry name: $registry"

say "maintainer: ipkg publish xmr $v1"
as maintainer "$ipkg" publish "$work/maintainer/xmr-1" --registry monero

say "maintainer: ipkg serve on 127.0.0.1 (a free port)"
as_exec maintainer "$ipkg" serve --listen 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.err" &
serve_pid=$!
for _ in $(seq 100); do [ -s "$work/serve.out" ] && break; sleep 0.1; done
gateway=$(head -n1 "$work/serve.out")
case $gateway in http://127.0.0.1:*) ;; *) echo "demo.sh: ipkg serve did not start: $(cat "$work/serve.err")" >&2; exit 1 ;; esac
echo "    gateway: $gateway"

say "user: all they have is $registry and $gateway"
printf 'gateways = ["%s"]\ntimeout = "5s"\n' "$gateway" >> "$work/user/config.toml"
as user "$ipkg" registry add monero "$registry"

say "user: ipkg install xmr"
as user "$ipkg" install xmr
say "user: xmr --version   (from PATH: the bundled loader and libraries, nothing of the host's)"
as user xmr --version

say "maintainer: ipkg publish xmr $v2"
as maintainer "$ipkg" publish "$work/maintainer/xmr-2" --registry monero >/dev/null
say "user: ipkg update; ipkg upgrade"
as user "$ipkg" update
as user "$ipkg" upgrade
as user xmr --version
as user "$ipkg" list

cid1=$(as maintainer "$ipkg" pack -n "$work/maintainer/xmr-1" 2>/dev/null)
say "user: ipkg switch $cid1   (back to $v1 by CID; one rename(2))"
as user "$ipkg" switch "$cid1"
as user xmr --version
echo "    both versions on disk, sharing their libraries: $(du -sh "$work/user/prefix" | cut -f1) for the prefix"

say "user: ipkg remove xmr"
as user "$ipkg" remove xmr
if as user sh -c 'command -v xmr' >/dev/null; then
  echo "demo.sh: xmr is still on PATH" >&2
  exit 1
fi

say "user: a bash under tmux with the command-not-found hook types \`xmr --version\`, answers y"
as user "$ipkg" update >/dev/null 2>&1
as user tmux -S "$tmux_sock" -f /dev/null new-session -d -x 160 -y 40 \
  "bash --norc --noprofile -i"
tmux -S "$tmux_sock" send-keys -l "PS1='user\$ '; eval \"\$('$ipkg' shell-init bash)\"; clear" \; send-keys Enter
sleep 0.5
tmux -S "$tmux_sock" send-keys -l "xmr --version" \; send-keys Enter
pane() { tmux -S "$tmux_sock" capture-pane -p -J -S -100; }
wait_for() { # TEXT
  for _ in $(seq 200); do pane | grep -qF -- "$1" && return 0; sleep 0.1; done
  echo "demo.sh: timed out waiting for \`$1\` in the tmux pane:" >&2
  pane >&2
  exit 1
}
wait_for "[y/N]"
tmux -S "$tmux_sock" send-keys -l y \; send-keys Enter
wait_for "Monero '"
tmux -S "$tmux_sock" send-keys -l "echo exit=\$?" \; send-keys Enter
wait_for "exit="
pane | sed -n '/./p' | sed 's/^/    | /'
if ! pane | grep -q '^exit=0'; then
  echo "demo.sh: the command-not-found install did not run xmr" >&2
  exit 1
fi

echo
echo "ok: xmr bundled, published, served on loopback, installed by name through /ipns/, upgraded, switched back, removed, and offered by the command-not-found hook"
