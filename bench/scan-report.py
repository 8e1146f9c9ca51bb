#!/usr/bin/env python3
"""Renders bench/scan.sh's raw figures as a markdown report.

    scan-report.py RESULTS.jsonl REV WHAT RUNS ADVISORIES_PER_PACKAGE

RESULTS.jsonl holds one JSON object a line: measurements ({"bench", "image", "tool",
"run", "wall_s", "user_s", "sys_s", "maxrss_kib", "loadavg", "others", "stats"}),
image sizes ({"bench": "image"}) and feed sizes ({"bench": "feed"}). MB = 10^6 bytes
in the targets; the report prints MiB.
"""

import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

MB = 10**6
MIB = 1 << 20


def output(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine():
    model = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo", encoding="utf-8") as handle:
        total_kib = int(handle.readline().split()[1])
    pretty = "unknown"
    if os.path.exists("/etc/os-release"):
        with open("/etc/os-release", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("PRETTY_NAME="):
                    pretty = line.split("=", 1)[1].strip().strip('"')
    debian = output(["cat", "/etc/debian_version"])
    return (
        f"`nproc` = {os.cpu_count()} ({model}), {total_kib / (1 << 20):.1f} GiB RAM, "
        f"{pretty} ({debian}), Linux {platform.release()}"
    )


def ms(seconds):
    return f"{seconds * 1000:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def mib(kib):
    return f"{kib / 1024:,.1f} MiB"


def main():
    path, rev, what, runs, per_package = sys.argv[1:]
    records = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    runs_of = {}
    for record in records:
        if "tool" in record:
            runs_of.setdefault((record["bench"], record["image"], record["tool"]), []).append(record)
    images = {r["image"]: r for r in records if r["bench"] == "image"}
    feeds = {r["image"]: r["advisories"] for r in records if r["bench"] == "feed"}

    def median(bench, image, tool, field):
        values = [field(r) for r in runs_of.get((bench, image, tool), [])]
        return statistics.median(values) if values else None

    wall = lambda r: r["wall_s"]
    cpu = lambda r: r["user_s"] + r["sys_s"]
    stat = lambda key: lambda r: float(r["stats"][key])
    tools_root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "tools", "bin")
    syft_version = output(["cat", os.path.join(tools_root, ".syft.version")])

    print("# Scanner benchmark results\n")
    print(
        f"The layer analyzer (`crates/slipway-scanner/examples/scan_oci.rs`, release build of "
        f"{rev}) against syft ({syft_version}) on the same OCI image layouts, measured by "
        f"`bench/scan.sh {what}` on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"both on the same machine in the same run.\n"
    )
    print(f"**Machine:** {machine()}.\n")
    print(
        f"**Tools:** {output(['rustc', '-V'])}; syft built with {output(['go', 'version'])}; "
        f"{output(['umoci', '--version'])}.\n"
    )
    print(
        "**How:** wall time from the monotonic clock, CPU time and peak RSS from wait4(2) "
        "of the measured process alone (bench/scan-measure.py). Each tool ran once untimed "
        f"before the timed runs (page cache warm for both), then {runs} runs each, alternating "
        "which goes first. The analyzer writes its inventory as JSON to a file, syft its "
        "syft-json SBOM to a file. \"Others\" counts compiler and scanner processes outside "
        "the run at the start of each measurement (0 = quiet).\n"
    )
    if images:
        print("| image | layers | compressed | unpacked |")
        print("|---|---:|---:|---:|")
        for name, image in images.items():
            unpacked = image.get("unpacked_bytes")
            print(
                f"| {name} | {image['layers']} | {image['compressed_bytes'] / MB:,.0f} MB | "
                f"{unpacked / MB:,.0f} MB |" if unpacked else
                f"| {name} | {image['layers']} | {image['compressed_bytes'] / MB:,.0f} MB | |"
            )
        print()

    print("## Verdict\n")
    print("| measure | syft | analyzer | analyzer / syft | target | result |")
    print("|---|---:|---:|---:|---|---|")
    missed = []

    def row(name, syft, ours, target, met, ratio=True):
        ratio_text = f"{ours / syft:.3f}" if ratio and syft and ours is not None else ""
        result = "" if met is None else ("met" if met else "**missed**")
        if met is False:
            missed.append(name)
        print(f"| {name} | {syft or ''} | {ours} | {ratio_text} | {target} | {result} |")

    for image, is_target in (("debian", True), ("apps", False)):
        s, o = median("cold", image, "syft", wall), median("cold", image, "slipway", wall)
        if s is None or o is None:
            continue
        print(
            f"| cold scan of {image}, wall (median of {len(runs_of[('cold', image, 'slipway')])}) | "
            f"{ms(s)} | {ms(o)} | {o / s:.3f} | {'<= 0.50' if is_target else '(information)'} | "
            f"{('met' if o <= 0.5 * s else '**missed**') if is_target else ''} |"
        )
        if is_target and o > 0.5 * s:
            missed.append(f"cold scan of {image}")
        sc, oc = median("cold", image, "syft", cpu), median("cold", image, "slipway", cpu)
        print(f"| cold scan of {image}, CPU user+sys (median) | {ms(sc)} | {ms(oc)} | {oc / sc:.3f} | | |")
    for image in ("debian", "apps"):
        key = ("warm", image, "slipway")
        if key not in runs_of:
            continue
        rescan = median(*key, lambda r: sum(float(r["stats"][k]) for k in ("load_ms", "merge_ms", "match_ms")) / 1000)
        process = median(*key, wall)
        is_target = image == "debian"
        met = rescan < 0.1 if is_target else None
        if met is False:
            missed.append(f"warm rescan of {image}")
        print(
            f"| warm rescan of {image}: cached reports read, merged, matched against "
            f"{feeds.get(image, '?'):,} advisories (median, in process) | | {ms(rescan)} | | "
            f"{'< 100 ms' if is_target else '(information)'} | {'' if met is None else ('met' if met else '**missed**')} |"
        )
        print(
            f"| warm rescan of {image}, whole process: start, feed import and index, rescan, exit (median) | | "
            f"{ms(process)} | | (information) | |"
        )
    if ("memory", "big", "slipway") in runs_of:
        s = max(r["maxrss_kib"] for r in runs_of[("memory", "big", "syft")])
        o = max(r["maxrss_kib"] for r in runs_of[("memory", "big", "slipway")])
        met = o * 1024 < 150 * MB
        if not met:
            missed.append("peak memory on the large image")
        print(
            f"| peak RSS scanning the large image (highest of {len(runs_of[('memory', 'big', 'slipway')])} runs) | "
            f"{mib(s)} | {mib(o)} | {o / s:.3f} | < 150 MB | {'met' if met else '**missed**'} |"
        )
        sw, ow = median("memory", "big", "syft", wall), median("memory", "big", "slipway", wall)
        print(f"| wall time on the large image (median, information) | {ms(sw)} | {ms(ow)} | {ow / sw:.3f} | | |")
    print()
    print(f"Targets missed: {', '.join(missed) if missed else 'none'}.\n")

    print("## Every run\n")
    print("| bench | image | tool | run | wall | CPU | peak RSS | load avg | others | analyzer's own timings |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---|")
    for record in records:
        if "tool" not in record:
            continue
        stats = record["stats"]
        own = ", ".join(
            f"{k.removesuffix('_ms')} {float(v):.1f} ms"
            for k, v in stats.items()
            if k.endswith("_ms") and float(v) > 0
        )
        if stats:
            own += f"; {stats.get('packages')} packages, {stats.get('cached')} of {stats.get('layers')} layers cached"
            if stats.get("findings") not in (None, "-"):
                own += f", {stats['findings']} findings"
        print(
            f"| {record['bench']} | {record['image']} | {record['tool']} | {record['run']} | "
            f"{ms(record['wall_s'])} | {ms(cpu(record))} | {mib(record['maxrss_kib'])} | "
            f"{record['loadavg']:.2f} | {record['others']} | {own} |"
        )
    print()
    print(f"Synthetic feed: {per_package} records per package (bench/scan-feed.py).")


if __name__ == "__main__":
    main()
