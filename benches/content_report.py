#!/usr/bin/env python3
"""Format benches/content.sh results: MB/s, peak RSS, ratios against Kubo and openssl.

Input: a TSV of `input tool settings bytes seconds rss_kib output` rows.
Ratios are ipkg / peer for the same input and settings: below 1 means ipkg
took less time (or memory). The CID columns check that ipkg and Kubo agree.
"""
import sys


def main():
    path, files = sys.argv[1], int(sys.argv[2])
    rows = []
    with open(path) as f:
        for line in f:
            inp, tool, settings, nbytes, secs, rss, out = line.rstrip("\n").split("\t")
            ok = secs != "FAILED"
            rows.append({
                "input": inp, "tool": tool, "settings": settings, "bytes": int(nbytes),
                "secs": float(secs) if ok else None, "rss": int(rss) if ok else None,
                "out": out, "ok": ok,
            })

    def find(inp, tool, settings):
        for r in rows:
            if (r["input"], r["tool"], r["settings"]) == (inp, tool, settings):
                return r
        return None

    def ratio(a, b, key):
        if a and b and a["ok"] and b["ok"] and b[key]:
            return f"{a[key] / b[key]:.2f}"
        return "-"

    head = ["input", "tool", "settings", "time s", "MB/s", "files/s", "peak RSS MiB",
            "time ipkg/kubo", "RSS ipkg/kubo", "time ipkg/openssl", "CID check"]
    table = [head]
    for r in rows:
        if r["ok"]:
            mbs = r["bytes"] / 1e6 / r["secs"] if r["secs"] > 0 else float("inf")
            secs, mbs, rss = f"{r['secs']:.2f}", f"{mbs:.0f}", f"{r['rss'] / 1024:.0f}"
            fps = f"{files / r['secs']:.0f}" if r["input"] == "tree" and r["secs"] > 0 else "-"
        else:
            secs = mbs = rss = fps = "FAILED"
        t_k = r_k = t_o = check = "-"
        if r["tool"] == "ipkg":
            kubo = find(r["input"], "kubo", r["settings"])
            t_k, r_k = ratio(r, kubo, "secs"), ratio(r, kubo, "rss")
            if r["input"] == "file" and r["settings"].startswith("hash"):
                t_o = ratio(r, find("file", "openssl", "sha256"), "secs")
            if r["ok"] and kubo and kubo["ok"]:
                check = "same" if r["out"] == kubo["out"] else f"DIFFERS ({r['out']} vs {kubo['out']})"
        table.append([r["input"], r["tool"], r["settings"], secs, mbs, fps, rss, t_k, r_k, t_o, check])

    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for n, row in enumerate(table):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    print()
    print("MB = 10^6 bytes; times are medians; ratios below 1 favour ipkg.")
    if any(not r["ok"] for r in rows):
        print("Some commands FAILED; see the messages above the table.")


if __name__ == "__main__":
    main()
