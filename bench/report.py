#!/usr/bin/env python3
"""Renders bench/run.sh's raw figures (a TSV file) as a markdown report.

Rows: KIND NAME REGISTRY ROUND key=value... (tab- or space-separated key=value
fields). Run metadata comes from BENCH_META_* environment variables.
"""

import statistics
import sys
from collections import defaultdict

from benchlib import CLK_TCK, DISTURBED, disturbed, meta, others, parse

REGS = ("peer", "slipway")
# Memory targets in bytes. "MB" is read as 10^6 bytes, the stricter reading.
IDLE_LIMIT = 30_000_000
LOAD_LIMIT = 100_000_000




def mib(kb):
    return f"{int(kb) / 1024:.1f} MiB"


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def cpu_s(f):
    return int(f.get("server_ticks", 0)) / CLK_TCK






def main():
    rows = parse(sys.argv[1])
    times = defaultdict(lambda: defaultdict(list))  # op -> reg -> [(round, s, builds)]
    wrk = defaultdict(lambda: defaultdict(list))  # bench -> reg -> [(round, fields)]
    mem = defaultdict(dict)  # name -> reg -> kb
    info = {}
    soak = []  # (round, fields): Slipway's memory after each soak round
    for kind, name, reg, rnd, f in rows:
        if kind == "time":
            times[name][reg].append((int(rnd), float(f["s"]), f))
        elif kind == "wrk":
            f = dict(f)
            dur = int(f["duration_us"]) / 1e6
            f["rps"] = int(f["requests"]) / dur
            f["mbps"] = int(f["bytes"]) / dur / 1e6
            f["errors"] = sum(int(f[k]) for k in ("connect", "read", "write", "status", "timeout"))
            f["cores"] = int(f.get("server_ticks", 0)) / CLK_TCK / dur
            f["peak"] = int(f["hwm_kb"]) if f.get("hwm_kb", "none") != "none" else int(f.get("peak_kb", 0))
            wrk[name][reg].append((int(rnd), f))
        elif kind == "mem":
            mem[name][reg] = int(f["kb"])
        elif kind == "info":
            info[name] = f
        elif kind == "soak":
            soak.append((int(rnd), f))

    out = []
    w = out.append
    mem_total = int(meta("MEM_KB", "0"))
    w("# Slipway vs docker-registry 2.8.2: benchmark run")
    w("")
    w(f"- Date: {meta('DATE')}")
    w(f"- Machine: {meta('NPROC')} CPUs ({meta('CPU')}), {mem_total / 1024 / 1024:.1f} GiB RAM, Linux {meta('KERNEL')}")
    w(f"- Load average at start: {meta('LOAD_START')}; at end: {meta('LOAD_END')}")
    all_fields = [f for kind, _, _, _, f in rows if kind in ("time", "wrk")]
    busiest = max((int(f.get("builds", 0)) for f in all_fields), default=0)
    top = max((float(f.get("others", 0)) for f in all_fields), default=0.0)
    top_steal = max((float(f.get("steal", 0)) for f in all_fields), default=0.0)
    w(f"- Other activity: compiler processes of others (rustc, cc, ld...) at start {meta('BUILDS_START')}, "
      f"at end {meta('BUILDS_END')}, most at the end of any measurement {busiest}; "
      f"CPU used by processes outside this run, highest over any measurement: {top:.1f}% of the machine; "
      f"highest steal: {top_steal:.1f}%")
    n_dist = sum(1 for f in all_fields if disturbed(f))
    w(f"- Disturbed measurements (others > {DISTURBED:.0f}% of the machine, or steal > {DISTURBED:.0f}%): "
      f"{n_dist} of {len(all_fields)}" + (" -- re-run on a quieter machine before trusting close calls" if n_dist else ""))
    w(f"- Slipway: {meta('SLIPWAY_REV')}, binary {meta('SLIPWAY_BIN')}, backend SQLite + filesystem, "
      "authentication off (auth mode open, as the e2e harness starts it; the peer has none either)")
    w(f"- Peer: docker-registry {meta('PEER')} (filesystem storage, blobdescriptor cache inmemory)")
    w(f"- Clients: skopeo {meta('SKOPEO')} (blob-info cache isolation: {meta('SKOPEO_ISOLATION')}), "
      f"wrk {meta('WRK')} `{meta('WRK_ARGS')}`")
    w(f"- Image: {meta('IMAGE')}; small blob {meta('SMALL_BYTES')} bytes; large blob {meta('LARGE_MB')} MiB"
      + (f"; manifest {info['manifest_bytes']['bytes']} bytes" if "manifest_bytes" in info else ""))
    if meta("NODELAY_SHIM", "0") == "1":
        w("- **EXPERIMENT: Slipway ran with TCP_NODELAY forced on by an LD_PRELOAD shim "
          "(BENCH_SLIPWAY_NODELAY_SHIM=1). These are not the figures of the shipped binary.**")
    w(f"- Mode: `{meta('WHAT')}`; {meta('RUNS')} push/pull runs per registry; "
      f"{meta('WRK_ROUNDS')} wrk rounds per bench and registry (order alternates by round)")
    w("")

    w("## Summary")
    w("")
    w("| measure | docker-registry 2.8.2 | Slipway | Slipway vs peer | target | result | quiet rounds only |")
    w("|---|---:|---:|---:|---|---|---|")

    def quiet(pairs, value, invert=False):
        """Median ratio over the rounds where neither measurement was disturbed."""
        by_round = defaultdict(dict)
        for r in REGS:
            for rnd, f in pairs[r]:
                by_round[rnd][r] = f
        ratios = []
        for rnd, both in by_round.items():
            if len(both) == 2 and not any(disturbed(f) for f in both.values()):
                a, b = value(both["peer"]), value(both["slipway"])
                ratios.append(a / b if invert else b / a)
        if not ratios:
            return "none quiet"
        return f"{statistics.median(ratios):.2f}x (n={len(ratios)})"
    missed = []

    def verdict(ok, what):
        if ok:
            return "met"
        missed.append(what)
        return "**MISSED**"

    for op in ("push", "pull"):
        if not all(times[op].get(r) for r in REGS):
            continue
        med = {r: statistics.median(s for _, s, _ in times[op][r]) for r in REGS}
        speed = med["peer"] / med["slipway"]
        n = len(times[op]["slipway"])
        pairs = {r: [(rnd, dict(f, s=secs)) for rnd, secs, f in times[op][r]] for r in REGS}
        q = quiet(pairs, lambda f: float(f["s"]), invert=True)
        w(f"| skopeo {op}, {meta('IMAGE_MB')} MB image (median of {n}) | {med['peer']:.3f} s | {med['slipway']:.3f} s | "
          f"{speed:.2f}x as fast | >= 1.00x | {verdict(speed >= 1.0, f'skopeo {op}')} | {q} |")
    for bench, label, metric, unit, target in (
        ("manifest", "manifest GET by tag", "rps", "req/s", 5.0),
        ("small_blob", f"small blob GET ({meta('SMALL_BYTES')} B)", "rps", "req/s", 5.0),
        ("large_blob", f"large blob GET ({meta('LARGE_MB')} MiB)", "mbps", "MB/s", 1.0),
    ):
        if not all(wrk[bench].get(r) for r in REGS):
            continue
        med = {r: statistics.median(f[metric] for _, f in wrk[bench][r]) for r in REGS}
        ratio = med["slipway"] / med["peer"]
        n = len(wrk[bench]["slipway"])
        q = quiet(wrk[bench], lambda f, m=metric: f[m])
        w(f"| {label}, {unit} (median of {n}) | {med['peer']:,.0f} | {med['slipway']:,.0f} | "
          f"{ratio:.2f}x | >= {target:.2f}x | {verdict(ratio >= target, label)} | {q} |")
    for name, label in (("idle_start", "RSS idle, after start"), ("idle_push", "RSS idle, after one push")):
        if all(r in mem[name] for r in REGS):
            kb = mem[name]["slipway"]
            w(f"| {label} | {mib(mem[name]['peer'])} | {mib(kb)} | | < 30 MB | "
              f"{verdict(kb * 1024 < IDLE_LIMIT, label)} | |")
    if wrk and all(wrk[b].get(r) for b in ("manifest", "small_blob", "large_blob") for r in REGS):
        peak = {r: max(f["peak"] for b in ("manifest", "small_blob", "large_blob") for _, f in wrk[b][r]) for r in REGS}
        w(f"| peak RSS under {meta('WRK_ARGS').split()[1][2:]}-connection load (all wrk runs) | {mib(peak['peer'])} | "
          f"{mib(peak['slipway'])} | | < 100 MB | {verdict(peak['slipway'] * 1024 < LOAD_LIMIT, 'peak RSS under load')} | |")
    for name, label in (("after_pushpull", "RSS after all push/pull runs (info)"),
                        ("idle_after_load", "RSS idle after the wrk load (info)")):
        if all(r in mem[name] for r in REGS):
            w(f"| {label} | {mib(mem[name]['peer'])} | {mib(mem[name]['slipway'])} | | | | |")
    w("")
    w("Ratios: push/pull = peer time / Slipway time; GETs = Slipway / peer. The verdict uses the "
      "medians of all runs; \"quiet rounds only\" is the median of the per-round ratios over the rounds "
      "in which neither measurement was disturbed (a cross-check, not the verdict). Memory is VmRSS "
      "(VmHWM for peaks) from /proc/PID/status; MB = 10^6 bytes.")
    w("")
    w("Targets missed: " + (", ".join(missed) if missed else "none") + ".")
    w("")

    if any(times[op].get(r) for op in ("push", "pull") for r in REGS):
        w("## Every push and pull (seconds)")
        w("")
        w("| op | run | docker-registry 2.8.2 | Slipway | peer CPU s | Slipway CPU s | others during peer run | others during Slipway run |")
        w("|---|---:|---:|---:|---:|---:|---|---|")
        for op in ("push", "pull"):
            by_round = defaultdict(dict)
            for r in REGS:
                for rnd, secs, f in times[op].get(r, []):
                    by_round[rnd][r] = (secs, f)
            for rnd in sorted(by_round):
                p, s = by_round[rnd].get("peer", (None, {})), by_round[rnd].get("slipway", (None, {}))
                fmt = lambda v: f"{v:.3f}" if v is not None else "-"
                w(f"| {op} | {rnd} | {fmt(p[0])} | {fmt(s[0])} | {cpu_s(p[1]):.2f} | {cpu_s(s[1]):.2f} | "
                  f"{others(p[1])} | {others(s[1])} |")
        for op in ("push", "pull"):
            if all(times[op].get(r) for r in REGS):
                med = {r: statistics.median(cpu_s(f) for _, _, f in times[op][r]) for r in REGS}
                w(f"| {op} | median CPU | | | {med['peer']:.2f} | {med['slipway']:.2f} | | |")
        w("")
        w("CPU s = CPU time (user + system) the server process used during the copy. "
          "others = CPU used by processes outside this run (% of the whole machine, with the two biggest users; includes kernel "
          "threads such as the journal and writeback that the run's own I/O wakes, so copies show a few % "
          "even on a quiet machine) / hypervisor steal / compiler processes of others at the end of the run.")
        w("")

    if soak:
        w("## Memory soak (Slipway alone)")
        w("")
        scrape = ("GET /metrics after each round (BENCH_SOAK_SCRAPE=1), as a Prometheus scrape would"
                  if meta("SOAK_SCRAPE", "0") == "1" else "nothing scrapes /metrics in between")
        w(f"Each round: wrk `{meta('WRK_ARGS')}` on the manifest, the small blob and the large blob, "
          f"one after the other; {scrape}.")
        w("")
        w("| round | requests served so far | RSS after the round | peak RSS during the round | threads |")
        w("|---:|---:|---:|---:|---:|")
        for rnd, f in sorted(soak):
            peaks = [g["peak"] for b in ("soak_manifest", "soak_small_blob", "soak_large_blob")
                     for n, g in wrk[b].get("slipway", []) if n == rnd]
            w(f"| {rnd} | {int(f['requests']):,} | {mib(f['kb'])} | {mib(max(peaks, default=0))} | {f['threads']} |")
        if len(soak) >= 2:
            (r0, f0), (r1, f1) = sorted(soak)[0], sorted(soak)[-1]
            dreq = int(f1["requests"]) - int(f0["requests"])
            dkb = int(f1["kb"]) - int(f0["kb"])
            if dreq > 0:
                w("")
                w(f"From round {r0} to round {r1}: RSS {'+' if dkb >= 0 else ''}{dkb / 1024:.1f} MiB over "
                  f"{dreq:,} requests ({dkb * 1024 / dreq:.1f} bytes per request).")
        w("")

    if wrk:
        w("## Every wrk run")
        w("")
        w("| bench | round | registry | req/s | MB/s | p50 ms | p99 ms | max ms | errors | server CPU (cores) | peak RSS | others |")
        w("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for bench in ("manifest", "small_blob", "large_blob", "soak_manifest", "soak_small_blob", "soak_large_blob"):
            entries = sorted((rnd, r, f) for r in REGS for rnd, f in wrk[bench].get(r, []))
            for rnd, r, f in entries:
                name = "docker-registry" if r == "peer" else "Slipway"
                w(f"| {bench} | {rnd} | {name} | {f['rps']:,.0f} | {f['mbps']:,.1f} | "
                  f"{int(f['p50_us']) / 1000:.2f} | {int(f['p99_us']) / 1000:.2f} | {int(f['max_us']) / 1000:.1f} | "
                  f"{f['errors']} | {f['cores']:.2f} | {mib(f['peak'])} | {others(f)} |")
        w("")
        w("server CPU = CPU time the server used / wall time (2.00 = both cores). "
          "errors = wrk socket errors + non-2xx/3xx responses + timeouts; peak RSS = VmHWM reset "
          "before the run (or the 50 ms VmRSS sampler where the reset is not allowed).")
        w("")

    print("\n".join(out))


if __name__ == "__main__":
    main()
