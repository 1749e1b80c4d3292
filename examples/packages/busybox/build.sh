#!/bin/sh
# Assemble an ipkg package from Debian's busybox-static into OUTDIR.
#
#   examples/packages/busybox/build.sh OUTDIR
#
# Uses /bin/busybox from the installed `busybox-static` package when present,
# else `apt-get download busybox-static` and `dpkg-deb -x`. The layout is a
# small root file system (bin/, sbin/init, etc/), so the package can later serve
# as a rootfs; applets are symlinks to bin/busybox and the manifest links the
# common ones as commands. The binary is never committed: build it when needed.
set -eu

out=${1:?usage: build.sh OUTDIR}
if [ -e "$out" ] && [ -n "$(ls -A "$out" 2>/dev/null)" ]; then
    echo "build.sh: $out exists and is not empty" >&2
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ -x /bin/busybox ] && dpkg -S /bin/busybox 2>/dev/null | grep -q '^busybox-static:'; then
    src=/bin/busybox
    version=$(dpkg-query -W -f '${Version}' busybox-static)
else
    (cd "$work" && apt-get download busybox-static >/dev/null)
    deb=$(ls "$work"/busybox-static_*.deb)
    dpkg-deb -x "$deb" "$work/root"
    src="$work/root/bin/busybox"
    version=$(dpkg-deb -f "$deb" Version)
fi

# Debian versions (1:1.36.1-9) into semver: drop the epoch, keep the upstream
# version, and the Debian revision as build metadata.
upstream=${version#*:}
revision=
case $upstream in *-*) revision=${upstream##*-}; upstream=${upstream%-*} ;; esac
upstream=$(echo "$upstream" | cut -d. -f1-3)
case $upstream in *.*.*) ;; *.*) upstream=$upstream.0 ;; *) upstream=$upstream.0.0 ;; esac
semver=$upstream
[ -n "$revision" ] && semver="$upstream+debian.$(echo "$revision" | tr -c 'A-Za-z0-9\n' '.')"

case $(uname -m) in
    x86_64) target=x86_64-linux ;;
    aarch64) target=aarch64-linux ;;
    armv7l) target=armv7-linux ;;
    riscv64) target=riscv64-linux ;;
    i686) target=i686-linux ;;
    *) echo "build.sh: unsupported machine $(uname -m)" >&2; exit 1 ;;
esac

mkdir -p "$out/bin" "$out/sbin" "$out/etc" "$out/tmp" "$out/proc" "$out/dev"
cp "$src" "$out/bin/busybox"
chmod 755 "$out/bin/busybox"
applets="sh ls echo cat cp mv rm mkdir rmdir ln grep sed awk head tail wc sort uniq tr env sleep true false test find xargs tar gzip vi"
for a in $applets; do ln -s busybox "$out/bin/$a"; done
# As in ipfs-execute's busybox image, init calls busybox with its arguments
# (`ipkg execute ROOTFS INPUT sh -c '...'`), a shell when there are none. A
# symlink would start busybox's own init, which insists on being PID 1.
cat > "$out/sbin/init" <<'INIT'
#!/bin/sh
[ $# -eq 0 ] && set -- sh
exec /bin/busybox "$@"
INIT
chmod 755 "$out/sbin/init"

{
    echo '[package]'
    echo 'name = "busybox"'
    echo "version = \"$semver\""
    echo 'description = "BusyBox from Debian busybox-static: shell and core utilities in one binary"'
    echo 'license = "GPL-2.0-only"'
    echo 'homepage = "https://busybox.net"'
    echo "targets = [\"$target\"]"
    echo
    echo '[commands]'
    echo 'busybox = "bin/busybox"'
    for a in $applets; do echo "$a = \"bin/$a\""; done
} > "$out/ipkg.toml"
echo "$out"
