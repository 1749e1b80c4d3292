#!/usr/bin/env python3
"""Install-lifecycle benchmark: ipkg against `cp -r` and Kubo's `ipfs get`.

    python3 benches/install.py                 # the full run (1 GiB included)
    BENCH_MAX_MIB=100 python3 benches/install.py   # quick: switch sizes up to 100 MiB

Measured in one run, with the page cache warm (so this is CPU, the store and
the file system, not the disk read of the input):

- a 100 MiB package (10 files of 10 MiB) and a 10,000-file package
  (1-4 KiB files in 100 directories):
  - cold install: `ipkg install --allow-unsigned PKG.car` into a fresh
    prefix (CAR import, verification, unpacking, links);
  - warm install: the same after `ipkg remove` (blocks and unpacked files
    still stored, so no file data is copied);
  - peers: `cp -r` of the package directory, and `ipfs get CID` from a local
    Kubo repo holding the content (offline, no daemon);
- switch and rollback latency, median of 100 each, for packages of 1 MiB,
  10 MiB, 100 MiB and 1 GiB (two versions that differ in one file);
- disk used by two versions sharing 99% of their files (100 files of 1 MiB,
  one changed) against one version.

Each timed figure is the median of BENCH_RUNS runs (3), wall clock, including
process start. Knobs: BENCH_RUNS, BENCH_SWITCHES (100), BENCH_MAX_MIB (1024),
BENCH_TMPDIR, IPKG_BIN (skip the build). No network: Kubo runs offline from a
repo made with `--profile=test`.
"""

import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SWITCHES = int(os.environ.get("BENCH_SWITCHES", "100"))
MAX_MIB = int(os.environ.get("BENCH_MAX_MIB", "1024"))
REPO = Path(__file__).resolve().parent.parent


def say(*a):
    print(*a, file=sys.stderr, flush=True)


def build():
    if os.environ.get("IPKG_BIN"):
        return os.environ["IPKG_BIN"]
    say("building ipkg (release)")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
    meta = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=REPO, check=True, capture_output=True, text=True,
    )
    return str(Path(json.loads(meta.stdout)["target_directory"]) / "release" / "ipkg")


def write_pkg(root: Path, name: str, version: str, files):
    """files: iterable of (relative path, bytes)."""
    (root / "bin").mkdir(parents=True, exist_ok=True)
    (root / "ipkg.toml").write_text(
        f'[package]\nname = "{name}"\nversion = "{version}"\ntargets = ["any"]\n\n'
        f'[commands]\n{name} = "bin/{name}"\n'
    )
    prog = root / "bin" / name
    prog.write_text(f"#!/bin/sh\necho {name} {version}\n")
    prog.chmod(0o755)
    for rel, data in files:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def rand(rng: random.Random, n: int) -> bytes:
    return rng.randbytes(n)


class Env:
    """A prefix, a bin dir and a home for one ipkg world."""

    def __init__(self, ipkg: str, base: Path, name: str):
        self.ipkg = ipkg
        self.root = base / name
        self.root.mkdir(parents=True)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.root / "home"),
            "IPKG_PREFIX": str(self.root / "prefix"),
            "IPKG_BIN_DIR": str(self.root / "bin"),
            "IPKG_CONFIG": "/dev/null",
            "NO_COLOR": "1",
        }
        (self.root / "home").mkdir()

    def run(self, *args, check=True):
        out = subprocess.run(
            [self.ipkg, *args], env=self.env, capture_output=True, text=True
        )
        if check and out.returncode != 0:
            raise SystemExit(f"ipkg {' '.join(args)} failed:\n{out.stderr}")
        return out

    def timed(self, *args):
        t = time.perf_counter()
        self.run(*args)
        return time.perf_counter() - t


def timed_cmd(cmd, env=None, cwd=None):
    t = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - t


def du(*paths) -> int:
    """Bytes on disk, hard links counted once (GNU du)."""
    out = subprocess.run(
        ["du", "-s", "-B1", "-c", *map(str, paths)], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip().splitlines()[-1].split()[0])


def kubo_repo(base: Path, car: Path):
    repo = base / "kubo"
    repo.mkdir(parents=True)
    env = dict(os.environ, IPFS_PATH=str(repo), IPFS_TELEMETRY="off")
    env.pop("IPFS_HTTP_ROUTERS", None)
    subprocess.run(["ipfs", "init", "--profile=test"], env=env, check=True, capture_output=True)
    for k, v in [
        ("Plugins.Plugins.telemetry.Disabled", "true"),
        ("AutoConf.Enabled", "false"),
        ("Bootstrap", "[]"),
        ("Gateway.NoDNSLink", "true"),
    ]:
        subprocess.run(["ipfs", "config", "--json", k, v], env=env, check=True, capture_output=True)
    subprocess.run(["ipfs", "dag", "import", "--pin-roots", str(car)], env=env, check=True, capture_output=True)
    return env


def median(xs):
    return statistics.median(xs)


def ms(x):
    return f"{x * 1000:.1f} ms"


def main():
    ipkg = build()
    have_kubo = shutil.which("ipfs") is not None
    if not have_kubo:
        say("note: `ipfs` (Kubo) is not on PATH; the `ipfs get` column is skipped")
    base = Path(tempfile.mkdtemp(prefix="ipkg-bench-install-", dir=os.environ.get("BENCH_TMPDIR")))
    rng = random.Random(4)
    rows = []
    try:
        # --- cold and warm install ------------------------------------------
        packages = {
            "100 MiB (10 files)": [(f"data/blob{i}", rand(rng, 10 << 20)) for i in range(10)],
            "10,000 files": [
                (f"data/d{i // 100:03}/f{i:05}", rand(rng, rng.randint(1024, 4096)))
                for i in range(10_000)
            ],
        }
        for label, files in packages.items():
            say(f"== {label}")
            src = base / f"src-{len(rows)}"
            write_pkg(src, "big", "1.0.0", files)
            pub = Env(ipkg, base, f"pub-{len(rows)}")
            cid = pub.run("add", "-q", "--preserve-mode", str(src)).stdout.strip()
            car = base / f"pkg-{len(rows)}.car"
            pub.run("car", "export", cid, "-o", str(car))
            cold, warm, cp, get = [], [], [], []
            written = None
            for r in range(RUNS):
                e = Env(ipkg, base, f"cold-{len(rows)}-{r}")
                cold.append(e.timed("install", "--allow-unsigned", str(car)))
                e.run("remove", "big")
                t = time.perf_counter()
                out = e.run("install", "--allow-unsigned", "--json", cid)
                warm.append(time.perf_counter() - t)
                written = json.loads(out.stdout)[0]["written_bytes"]
                dest = base / f"cp-{len(rows)}-{r}"
                cp.append(timed_cmd(["cp", "-r", str(src), str(dest)]))
                shutil.rmtree(dest)
            if have_kubo:
                kenv = kubo_repo(base / f"k-{len(rows)}", car)
                for r in range(RUNS):
                    dest = base / f"get-{len(rows)}-{r}"
                    get.append(timed_cmd(["ipfs", "get", "-o", str(dest), cid], env=kenv))
                    shutil.rmtree(dest)
            rows.append((label, median(cold), median(warm), median(cp), median(get) if get else None, written))

        # --- switch and rollback latency ----------------------------------
        sizes = [s for s in (1, 10, 100, 1024) if s <= MAX_MIB]
        latency = []
        for mib in sizes:
            say(f"== switch and rollback, {mib} MiB")
            e = Env(ipkg, base, f"switch-{mib}")
            n = max(1, mib // 4) if mib > 4 else 1
            chunk = (mib << 20) // n
            files = [(f"data/part{i}", rand(rng, chunk)) for i in range(n)]
            for v in ("1.0.0", "1.0.1"):
                d = base / f"sw-{mib}-{v}"
                write_pkg(d, "sw", v, files)
                e.run("install", "--allow-unsigned", str(d))
            sw, rb = [], []
            for i in range(SWITCHES):
                sw.append(e.timed("switch", "sw", "1.0.0" if i % 2 == 0 else "1.0.1"))
            for _ in range(SWITCHES):
                rb.append(e.timed("rollback", "sw"))
            e.run("verify")
            latency.append((mib, median(sw), median(rb), max(sw)))
            shutil.rmtree(e.root)
            for v in ("1.0.0", "1.0.1"):
                shutil.rmtree(base / f"sw-{mib}-{v}")
        # The floor: starting the process at all.
        e = Env(ipkg, base, "floor")
        floor = median([e.timed("--version") for _ in range(SWITCHES)])

        # --- disk used by two versions sharing 99% ------------------------
        say("== disk: two versions sharing 99% of their files")
        files = [(f"data/f{i:03}", rand(rng, 1 << 20)) for i in range(100)]
        one = Env(ipkg, base, "disk-one")
        two = Env(ipkg, base, "disk-two")
        d1 = base / "disk-v1"
        write_pkg(d1, "dd", "1.0.0", files)
        files2 = list(files)
        files2[0] = ("data/f000", rand(rng, 1 << 20))
        d2 = base / "disk-v2"
        write_pkg(d2, "dd", "1.0.1", files2)
        one.run("install", "--allow-unsigned", str(d1))
        two.run("install", "--allow-unsigned", str(d1))
        two.run("install", "--allow-unsigned", str(d2))

        def installed(env):
            p = env.root / "prefix" / ".ipkg"
            return du(p / "pkgs", p / "files")

        def whole(env):
            return du(env.root / "prefix")

        disk = (installed(one), installed(two), whole(one), whole(two), du(d1))
    finally:
        shutil.rmtree(base, ignore_errors=True)

    # --- report -------------------------------------------------------------
    print("\n## Install (median of %d runs; ratio = ipkg time / peer time)\n" % RUNS)
    print("| package | ipkg cold (CAR) | ipkg warm | cp -r | ipfs get | cold/cp | cold/get | warm/cp | warm/get | file bytes written warm |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, cold, warm, cp, get, written in rows:
        g = ms(get) if get else "n/a"
        cg = f"{cold / get:.2f}" if get else "n/a"
        wg = f"{warm / get:.2f}" if get else "n/a"
        print(f"| {label} | {ms(cold)} | {ms(warm)} | {ms(cp)} | {g} | {cold / cp:.2f} | {cg} | {warm / cp:.2f} | {wg} | {written} |")
    print(f"\n## Switch and rollback (median of {SWITCHES}, process start included; `ipkg --version` alone: {ms(floor)})\n")
    print("| package | switch | rollback | slowest switch |")
    print("|---|---|---|---|")
    for mib, sw, rb, worst in latency:
        print(f"| {mib} MiB | {ms(sw)} | {ms(rb)} | {ms(worst)} |")
    i1, i2, w1, w2, src = disk
    print("\n## Disk: two versions sharing 99% of 100 MiB\n")
    print(f"- installed trees (`pkgs/` + `files/`): one version {i1 / 2**20:.1f} MiB, two versions {i2 / 2**20:.1f} MiB: **{i2 / i1:.3f}x**")
    print(f"- whole prefix (blocks included): one {w1 / 2**20:.1f} MiB, two {w2 / 2**20:.1f} MiB: **{w2 / w1:.3f}x**")
    print(f"- the package directory itself: {src / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
