#!/usr/bin/env python3
"""Fills a directory with the bulk of the memory bench's large image.

    scan-bigdata.py DIR RANDOM_MB TEXT_MB

Writes, under DIR:
  blobs/     RANDOM_MB of incompressible files of 1 to 48 MiB (media, archives);
             every fourth one executable, so the analyzer sniffs it for ELF headers
  logs/      TEXT_MB of compressible text files of 64 KiB to 8 MiB
  small/     20,000 files of 1 to 8 KiB (tar headers and per-entry work dominate)
  app/node_modules/   600 npm packages (package.json), some nested
  app/venv/lib/python3.11/site-packages/   250 Python distributions (METADATA)
so that the layer is large in both compressed and unpacked size and the detectors
still have manifests to parse in it. Prints the bytes written.
"""

import json
import os
import random
import sys

MIB = 1 << 20


def write(path, data, executable=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
    if executable:
        os.chmod(path, 0o755)
    return len(data)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    root, random_mb, text_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(20261201)
    total = 0

    left, n = random_mb * MIB, 0
    while left > 0:
        size = min(left, rng.randint(1, 48) * MIB)
        # os.urandom rather than rng: the content must not compress at all.
        total += write(f"{root}/blobs/{n:04d}.bin", os.urandom(size), executable=n % 4 == 0)
        left -= size
        n += 1

    words = ["GET", "POST", "/api/v1/items", "200", "404", "latency_ms", "user", "cache", "miss", "hit"]
    left, n = text_mb * MIB, 0
    while left > 0:
        size = min(left, rng.randint(64 << 10, 8 * MIB))
        lines, length = [], 0
        while length < size:
            line = f"2026-12-01T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d} " + " ".join(
                rng.choice(words) for _ in range(8)
            ) + f" id={rng.randint(0, 10**9)}\n"
            lines.append(line)
            length += len(line)
        total += write(f"{root}/logs/{n:04d}.log", "".join(lines).encode()[:size])
        left -= size
        n += 1

    for n in range(20_000):
        total += write(f"{root}/small/{n // 1000:02d}/{n:05d}.dat", os.urandom(rng.randint(1024, 8192)))

    for n in range(600):
        name = f"bench-pkg-{n}"
        manifest = json.dumps({"name": name, "version": f"1.{n % 17}.{n % 5}", "main": "index.js"})
        prefix = f"{root}/app/node_modules"
        if n % 10 == 9:
            prefix = f"{root}/app/node_modules/bench-pkg-{n - 1}/node_modules"
        total += write(f"{prefix}/{name}/package.json", manifest.encode())
        total += write(f"{prefix}/{name}/index.js", b"module.exports = {};\n" * 50)

    site = f"{root}/app/venv/lib/python3.11/site-packages"
    for n in range(250):
        metadata = f"Metadata-Version: 2.1\nName: bench-dist-{n}\nVersion: 2.{n % 13}.0\n\nA description.\n"
        total += write(f"{site}/bench_dist_{n}-2.{n % 13}.0.dist-info/METADATA", metadata.encode())
        total += write(f"{site}/bench_dist_{n}/__init__.py", b"VALUE = 1\n" * 200)
    print(total)


if __name__ == "__main__":
    main()
