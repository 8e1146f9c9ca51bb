#!/usr/bin/env python3
"""Renders bench/search.sh's raw figures (a TSV file) as a markdown report.

Rows: KIND NAME BACKEND ROUND key=value... Run metadata comes from BENCH_META_*
environment variables.
"""

import statistics
import sys
from collections import defaultdict

from benchlib import CLK_TCK, DISTURBED, disturbed, meta, others, parse

TARGET_MS = 20.0
BACKENDS = ("sqlite", "postgres")
BACKEND_NAME = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
# bench -> (endpoint as shown, cache state, has a target)
BENCHES = {
    "api": ("GET /api/v1/search", "warm", True),
    "api_cold": ("GET /api/v1/search", "cold", True),
    "html": ("GET /search (HTML)", "warm", True),
    "html_cold": ("GET /search (HTML)", "cold", True),
    "suggest": ("GET /api/v1/search/suggest", "warm", True),
    "suggest_cold": ("GET /api/v1/search/suggest", "cold", True),
    "product": ("GET /products/PUB/SLUG (HTML)", "500 pages", True),
    "product_cold": ("GET /products/PUB/SLUG (HTML)", "all 99,500 in turn", True),
    "healthz": ("GET /healthz (floor)", "-", False),
}








def ms(us):
    return f"{int(us) / 1000:.2f}"


def main():
    rows = parse(sys.argv[1])
    runs = defaultdict(list)  # (bench, backend) -> [(round, fields)]
    info = {}
    mem = defaultdict(dict)
    for kind, name, backend, rnd, f in rows:
        if kind == "wrk":
            f = dict(f)
            dur = int(f["duration_us"]) / 1e6
            f["rps"] = int(f["requests"]) / dur
            f["errors"] = sum(int(f[k]) for k in ("connect", "read", "write", "status", "timeout"))
            f["cores"] = int(f.get("server_ticks", 0)) / CLK_TCK / dur
            f["pg_cores"] = int(f.get("pg_ticks", 0)) / CLK_TCK / dur
            runs[(name, backend)].append((int(rnd), f))
        elif kind == "info":
            info[backend] = f
        elif kind == "mem":
            mem[name][backend] = int(f["kb"])

    out = []
    w = out.append
    mem_total = int(meta("MEM_KB", "0"))
    w(f"# Slipway search and product pages over {int(meta('PRODUCTS', '0')):,} products: benchmark run")
    w("")
    w(f"- Date: {meta('DATE')}")
    w(f"- Machine: {meta('NPROC')} CPUs ({meta('CPU')}), {mem_total / 1024 / 1024:.1f} GiB RAM, Linux {meta('KERNEL')}")
    w(f"- Load average at start: {meta('LOAD_START')}; at end: {meta('LOAD_END')}")
    all_fields = [f for rs in runs.values() for _, f in rs]
    busiest = max((int(f.get("builds", 0)) for f in all_fields), default=0)
    top = max((float(f.get("others", 0)) for f in all_fields), default=0.0)
    top_steal = max((float(f.get("steal", 0)) for f in all_fields), default=0.0)
    w(f"- Other activity: compiler processes of others at start {meta('BUILDS_START')}, at end {meta('BUILDS_END')}, "
      f"most at the end of any run {busiest}; CPU used by processes outside this run, highest over any run: "
      f"{top:.1f}% of the machine; highest steal: {top_steal:.1f}%")
    n_dist = sum(1 for f in all_fields if disturbed(f))
    w(f"- Disturbed runs (others > {DISTURBED:.0f}% of the machine, or steal > {DISTURBED:.0f}%): {n_dist} of {len(all_fields)}"
      + (" -- re-run on a quieter machine before trusting close calls" if n_dist else ""))
    w(f"- Slipway: {meta('SLIPWAY_REV')}, binary {meta('SLIPWAY_BIN')}, auth mode default, storage on the filesystem")
    for b in BACKENDS:
        if b in info:
            f = info[b]
            load = f"loaded in {f.get('load_s', '?')} s on {f.get('loaded_at', '?').replace('_', ' ')}"
            if "vacuum_analyze_s" in f:
                load += f", then VACUUM ANALYZE {f['vacuum_analyze_s']} s"
            w(f"- {BACKEND_NAME[b]}: {f.get('engine', '?').replace('_', ' ')}; store {load} "
              f"(load average before/after: {f.get('loadavg_before', '?').replace('_', ' ')} / "
              f"{f.get('loadavg_after', '?').replace('_', ' ')}); database {f.get('size_mb', '?')} MB")
    w(f"- Client: wrk {meta('WRK')} `{meta('WRK_ARGS')}` with bench/search.lua, on the same 2 cores as the server; "
      f"{meta('ROUNDS')} runs per bench and backend (order reversed on even rounds); figures are medians over the runs")
    w(f"- Query mix: {meta('MIX')}")
    w(f"- Cold lists: {meta('COLD_DEPTH')}")
    w(f"- Raw figures and wrk's output: {meta('OUT')}")
    w("")

    w(f"## Summary (medians of {meta('ROUNDS')} runs)")
    w("")
    w("| endpoint | cache | backend | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | Slipway CPU | PostgreSQL CPU | p99 < 20 ms |")
    w("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    missed = []
    for bench, (label, cache, target) in BENCHES.items():
        for b in BACKENDS:
            rs = [f for _, f in runs.get((bench, b), [])]
            if not rs:
                continue
            med = lambda k: statistics.median(float(f[k]) for f in rs)
            p99 = med("p99_us") / 1000
            if target:
                ok = p99 < TARGET_MS
                verdict = "met" if ok else f"**MISSED** ({p99 / TARGET_MS:.1f}x)"
                if not ok:
                    missed.append(f"{label} {cache} on {BACKEND_NAME[b]} (p99 {p99:.1f} ms)")
            else:
                verdict = "floor"
            errors = sum(f["errors"] for f in rs)
            # Say how many searches came round again (no search page is cached since
            # search moved into memory, so a repeat is worked out afresh).
            wrapped = sum(int(f.get("wrapped", 0)) for f in rs) if bench in ("api_cold", "html_cold", "suggest_cold") else 0
            err = f"{errors}" + (f" ({wrapped} repeats)" if wrapped else "")
            pg = f"{med('pg_cores'):.2f}" if b == "postgres" else ""
            w(f"| {label} | {cache} | {BACKEND_NAME[b]} | {med('rps'):,.0f} | {med('p50_us') / 1000:.2f} | "
              f"{med('p90_us') / 1000:.2f} | {med('p99_us') / 1000:.2f} | {med('max_us') / 1000:.1f} | {err} | "
              f"{med('cores'):.2f} | {pg} | {verdict} |")
    w("")
    w("Latencies as wrk measures them (closed loop: 50 connections, each sends its next request when the "
      "previous answer is in). CPU in cores (2.00 = the whole machine), PostgreSQL's over all its processes. "
      "errors = socket errors + non-2xx/3xx answers + timeouts; for cold search lists, \"repeats\" counts "
      "requests that came back to the start of the list (searches are not cached: a repeat is worked out "
      "afresh). `product_cold` walks the 99,500 product pages outside the warm 500, "
      "starting over when a run gets through them; each page is asked for once a pass, so the server's cache "
      "of recent pages (a few thousand) never answers.")
    w("")
    w("Targets missed: " + ("; ".join(missed) if missed else "none") + ".")
    w("")
    w("## Every wrk run")
    w("")
    w("| bench | backend | round | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors | list entries | Slipway CPU | PostgreSQL CPU | Slipway peak RSS | others / steal / builds |")
    w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for bench in BENCHES:
        for b in BACKENDS:
            for rnd, f in sorted(runs.get((bench, b), []), key=lambda x: x[0]):
                pg = f"{f['pg_cores']:.2f}" if b == "postgres" else ""
                w(f"| {bench} | {BACKEND_NAME[b]} | {rnd} | {f['rps']:,.0f} | {ms(f['p50_us'])} | {ms(f['p90_us'])} | "
                  f"{ms(f['p99_us'])} | {ms(f['p999_us'])} | {int(f['max_us']) / 1000:.1f} | {f['errors']} | "
                  f"{int(f.get('entries', 0)):,} | {f['cores']:.2f} | {pg} | {int(f.get('hwm_kb', 0)) / 1024:.1f} MiB | {others(f)} |")
    w("")
    for b in BACKENDS:
        if b in mem.get("idle_start", {}):
            w(f"- {BACKEND_NAME[b]}: Slipway RSS after start {mem['idle_start'][b] / 1024:.1f} MiB, "
              f"after the runs {mem.get('idle_after', {}).get(b, 0) / 1024:.1f} MiB")
    print("\n".join(out))


if __name__ == "__main__":
    main()
