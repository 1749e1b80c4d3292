#!/bin/sh
# Make the all-in-one package `xmr` from Debian's `monero` with `ipkg bundle`.
#
#   examples/packages/xmr/build.sh OUTDIR [REBUILD]
#
# Commands: `xmr` (monerod, the daemon) and `xmr-wallet` (monero-wallet-cli).
# `ipkg bundle` copies both programs, every shared library they load and the
# dynamic loader into OUTDIR, with static launchers in bin/, so the package
# runs on a Linux machine that has none of Monero's libraries (nor any libc).
#
# The version is Monero's upstream version as semver, Debian's revision as
# build metadata: 0.18.0.0+~0+20200826-1+deb12u1 -> 0.18.0+debian.1.deb12u1.
# REBUILD (default 1) > 1 makes another package of the same programs, for
# upgrade demos: version `...rebuild.N` (ipkg orders build metadata after the
# semver precedence) and a different `share/doc/xmr/BUILD`.
#
# Needs Debian's `monero` installed (`apt-get install -y monero`), a C
# compiler with a static libc (gcc, libc6-dev) for the launcher, and `ipkg`
# on PATH or in $IPKG.
set -eu

out=${1:?usage: build.sh OUTDIR [REBUILD]}
rebuild=${2:-1}
ipkg=${IPKG:-ipkg}
case $rebuild in '' | *[!0-9]*) echo "build.sh: REBUILD must be a number, not \`$rebuild\`" >&2; exit 2 ;; esac

if ! dpkg-query -W -f '${Status}' monero 2>/dev/null | grep -q 'install ok installed'; then
    echo "build.sh: Debian's \`monero\` package is not installed on this machine;" >&2
    echo "  install it first: \`sudo apt-get install -y monero\`" >&2
    exit 3
fi
version=$(dpkg-query -W -f '${Version}' monero)

upstream=${version#*:}
revision=
case $upstream in *-*) revision=${upstream##*-}; upstream=${upstream%-*} ;; esac
upstream=${upstream%%+*}
upstream=$(echo "$upstream" | cut -d. -f1-3)
semver=$upstream
[ -n "$revision" ] && semver="$semver+debian.$(echo "$revision" | tr -c 'A-Za-z0-9\n' '.')"
[ "$rebuild" -gt 1 ] && semver="$semver.rebuild.$rebuild"
case $semver in *+*) ;; *) [ "$rebuild" -gt 1 ] && semver="$upstream+rebuild.$rebuild" ;; esac

"$ipkg" bundle --silent -o "$out" --name xmr --version "$semver" \
    --description "Monero $upstream from Debian (monerod as xmr, monero-wallet-cli as xmr-wallet), bundled with its libraries" \
    --license BSD-3-Clause --homepage https://www.getmonero.org \
    xmr=/usr/bin/monerod xmr-wallet=/usr/bin/monero-wallet-cli >/dev/null

mkdir -p "$out/share/doc/xmr"
cp /usr/share/doc/monero/copyright "$out/share/doc/xmr/copyright"
printf 'Debian monero %s, ipkg bundle rebuild %s\n' "$version" "$rebuild" > "$out/share/doc/xmr/BUILD"
echo "$out"
