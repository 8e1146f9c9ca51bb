#!/usr/bin/env python3
"""Renders bench/rematch.sh's raw figures (a TSV file) as a markdown report.

Rows: step COMMAND BACKEND ROUND key=value... (the harness's result line, then
scan-measure.py's cost and the machine's state), and info size BACKEND - bytes=N. Run
metadata comes from BENCH_META_* environment variables.
"""

import statistics
import sys
from collections import defaultdict

from benchlib import CLK_TCK, DISTURBED, disturbed, meta, others, parse

TARGET_MS = 5000
BACKENDS = ("sqlite", "postgres")
BACKEND_NAME = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


def n(value):
    return f"{int(value):,}"


def secs(ms):
    ms = float(ms)
    return f"{ms:,.0f} ms" if ms < 10_000 else f"{ms / 1000:,.1f} s"


def cpu(f):
    """The step's CPU: the harness's own, plus the PostgreSQL cluster's."""
    own = float(f["user_s"]) + float(f["sys_s"])
    pg = int(f.get("pg_ticks", 0)) / CLK_TCK
    return f"{own:.1f} s" + (f" + {pg:.1f} s PG" if pg else "")


def mib(f):
    return f"{int(f['maxrss_kib']) / 1024:.0f} MiB"


def main():
    steps = defaultdict(dict)  # (backend, round) -> {command: fields or [fields]}
    sizes = {}
    for kind, name, backend, rnd, f in parse(sys.argv[1]):
        if kind == "info":
            sizes[backend] = int(f["bytes"])
        elif name == "digest":
            steps[(backend, int(rnd))].setdefault("digest", []).append(f)
        else:
            steps[(backend, int(rnd))][name] = f
    backends = [b for b in BACKENDS if (b, 0) in steps]
    rounds = sorted({r for (_, r) in steps if r > 0})
    measured = [f for s in steps.values() for c, f in s.items() if c in ("reassess", "rescan")]

    out = []
    w = out.append
    w(f"# Re-match after a feed update, {n(meta('IMAGES', '0'))} images: benchmark run")
    w("")
    w(f"- Date: {meta('DATE')}")
    w(f"- Machine: {meta('NPROC')} CPUs ({meta('CPU')}), {int(meta('MEM_KB', '0')) / 1024 / 1024:.1f} GiB RAM, "
      f"Linux {meta('KERNEL')}")
    w(f"- Load average at start: {meta('LOAD_START')}; at end: {meta('LOAD_END')}; compiler processes of others at "
      f"start {meta('BUILDS_START')}, at end {meta('BUILDS_END')}")
    n_dist = sum(1 for f in measured if disturbed(f))
    w(f"- Disturbed measurements (others > {DISTURBED:.0f}% of the machine, or steal > {DISTURBED:.0f}%): "
      f"{n_dist} of {len(measured)}")
    w(f"- Slipway: {meta('REV')}; harness `crates/slipway-security/examples/rematch.rs` (release build)")
    w(f"- Knobs: {meta('ROUNDS')} rounds (the peer in the first {meta('RESCAN_ROUNDS', meta('ROUNDS'))}), update share {meta('SHARE')} of the distinct indexed packages, "
      f"concurrency {meta('CONCURRENCY')} (fill and rescan), seed {meta('SEED')}"
      + (f"; PostgreSQL {meta('POSTGRES')}" if "postgres" in backends else ""))
    w("")

    w("## Data")
    w("")
    w("| | " + " | ".join(BACKEND_NAME[b] for b in backends) + " |")
    w("|---|" + "---:|" * len(backends))
    fills = {b: steps[(b, 0)]["fill"] for b in backends}

    def row(label, fn):
        w(f"| {label} | " + " | ".join(fn(fills[b], b) for b in backends) + " |")

    row("images", lambda f, b: n(f["images"]))
    row("packages in the index (rows)", lambda f, b: n(f["packages"]))
    row("distinct indexed packages: Debian sources / PyPI / npm / Go",
        lambda f, b: f"{n(f['distinct'])}: {n(f['distinct_debian'])} / {n(f['distinct_pypi'])} / "
                     f"{n(f['distinct_npm'])} / {n(f['distinct_go'])}")
    row("advisories in the initial feed (imported)", lambda f, b: f"{n(f['advisories'])} ({n(f['imported'])})")
    row("findings after round 1", lambda f, b: n(steps[(b, 1)]["digest"][0]["findings"]) if (b, 1) in steps else "")
    row("fill: feed import", lambda f, b: secs(f["import_ms"]))
    row("fill: storing the images' scans", lambda f, b: f"{secs(f['store_ms'])} "
        f"({int(f['images']) / (float(f['store_ms']) / 1000):,.0f} images/s)")
    row("fill: settling the initial import (packages re-matched, changes)",
        lambda f, b: f"{secs(f['settle_ms'])} ({n(f['settle_packages'])}; "
                     f"+{f['settle_added']} ~{f['settle_updated']} -{f['settle_removed']})")
    row("database size at the end", lambda f, b: f"{sizes.get(b, 0) / 1e6:,.0f} MB")
    w("")

    w("## Verdict")
    w("")
    w("| backend | incremental re-match (median, in process) | rescan of every image (median, in process) | "
      "rescan / incremental | same findings | target | result |")
    w("|---|---:|---:|---:|---|---|---|")
    missed = []
    for b in backends:
        rs = [steps[(b, r)] for r in rounds if (b, r) in steps]
        inc = statistics.median(float(s["reassess"]["ms"]) for s in rs)
        # The peer may have run in the first rounds only (BENCH_REMATCH_RESCAN_ROUNDS).
        peered = [s for s in rs if "rescan" in s]
        peer = statistics.median(float(s["rescan"]["ms"]) for s in peered)
        same = all(s["digest"][0]["hash"] == s["digest"][1]["hash"] for s in peered)
        met = inc < TARGET_MS
        if not met:
            missed.append(BACKEND_NAME[b])
        w(f"| {BACKEND_NAME[b]} | {secs(inc)} | {secs(peer)} | {peer / inc:,.1f}x | "
          f"{'yes' if same else '**NO**'} ({len(peered)} of {len(rs)} rounds) | < {TARGET_MS / 1000:.0f} s | "
          f"{'met' if met else '**MISSED**'} |")
    w("")
    w("Targets missed: " + (", ".join(missed) if missed else "none") + ".")
    w("")

    w("## Every round")
    w("")
    w("| backend | round | update: packages changed (new / changed range / withdrawn) + unindexed | way | "
      "re-matched packages | images touched | findings +added ~updated -removed | events | in process | wall | "
      "CPU | peak RSS | others / steal / builds |")
    w("|---|---:|---|---|---:|---:|---|---:|---:|---:|---:|---:|---|")
    for b in backends:
        for r in rounds:
            s = steps.get((b, r))
            if not s:
                continue
            u, inc, peer = s["update"], s["reassess"], s.get("rescan")
            update = (f"{u['changed_packages']} of {n(u['indexed'])} ({u['new_advisories']} / {u['changed_ranges']} / "
                      f"{u['withdrawn']}) + {u['unindexed_changes']}")
            w(f"| {BACKEND_NAME[b]} | {r} | {update} | incremental | {n(inc['packages'])} | {n(inc['images'])} | "
              f"+{n(inc['added'])} ~{n(inc['updated'])} -{n(inc['removed'])} | {n(inc['events'])} | {secs(inc['ms'])} | "
              f"{secs(float(inc['wall_s']) * 1000)} | {cpu(inc)} | {mib(inc)} | {others(inc)} |")
            if peer:
                w(f"| | | | rescan | {n(peer['images'])} images | {n(peer['images'])} | | | {secs(peer['ms'])} | "
                  f"{secs(float(peer['wall_s']) * 1000)} | {cpu(peer)} | {mib(peer)} | {others(peer)} |")
    w("")
    w("In process: the step's own time (`reassess()`, or storing every image's rescan), without the process's "
      "start and connection; wall: the whole process. CPU: user + system of the harness, plus the PostgreSQL "
      "cluster's. Peak RSS: the harness process (wait4). Same findings: the findings of every image hashed after "
      "the incremental re-match and again after the rescan (first-seen times aside) are equal.")
    print("\n".join(out))


if __name__ == "__main__":
    main()
