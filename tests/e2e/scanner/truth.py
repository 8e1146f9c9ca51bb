#!/usr/bin/env python3
"""What a test image's filesystem holds, as the ecosystems' own tools say.

    truth.py --root ROOTFS [--pip PIP --site DIR]... [--npm DIR]... [--go BIN]...
             [--cargo-manifest CARGO_TOML]... > STATE.tsv

Prints one `ecosystem<TAB>name<TAB>version` line per installed package, sorted, in
the tools' own spelling (Go versions with their `v`, the standard library as
`stdlib go1.x.y`): the Rust test normalises every source the same way. The sources
are the package managers themselves, never a reimplementation of the analyzer:
  deb        dpkg-query --admindir ROOTFS/var/lib/dpkg (installed packages only)
  PyPI       pip list --path ROOTFS/DIR
  npm        npm ls --all --json in ROOTFS/DIR
  Go         go version -m ROOTFS/BIN
  crates.io  cargo metadata of the crate the binary was built from: the registry
             packages its normal and build dependencies reach on this host (what
             cargo-auditable records; Cargo.lock also lists optional and other
             platforms' packages that were never built)
Paths after --site, --npm and --go are inside the root filesystem.
"""

import argparse
import json
import os
import subprocess
import sys

TIMEOUT = 300


def run(argv, **kwargs):
    return subprocess.run(
        argv, check=True, capture_output=True, text=True, timeout=TIMEOUT, **kwargs
    ).stdout


def inside(root, path):
    return os.path.join(root, path.lstrip("/"))


def deb(root):
    admin = inside(root, "var/lib/dpkg")
    if not os.path.isfile(os.path.join(admin, "status")):
        return
    out = run(
        [
            "dpkg-query",
            "--admindir",
            admin,
            "-W",
            "-f",
            "${db:Status-Status}\t${Package}\t${Version}\n",
        ]
    )
    for line in out.splitlines():
        status, name, version = line.split("\t")
        # Removed packages whose configuration files remain are not installed.
        if status == "installed":
            yield ("deb", name, version)


def pypi(pip, site):
    out = run(
        [pip, "list", "--path", site, "--format", "json", "--disable-pip-version-check"]
    )
    for item in json.loads(out):
        yield ("PyPI", item["name"], item["version"])


def npm(prefix):
    # npm ls exits 1 on problems it prints in the JSON (extraneous, missing): a tree
    # with problems is not a tree to test against.
    out = run(["npm", "ls", "--all", "--json", "--prefix", prefix])
    tree = json.loads(out)
    if tree.get("problems"):
        sys.exit(f"npm ls reports problems in {prefix}: {tree['problems']}")
    stack = [tree]
    while stack:
        node = stack.pop()
        for name, dep in node.get("dependencies", {}).items():
            yield ("npm", name, dep["version"])
            stack.append(dep)


def golang(binary):
    out = run(["go", "version", "-m", binary])
    lines = out.splitlines()
    # First line: "PATH: go1.22.5"; then tab-indented "path", "mod", "dep", "=>" lines.
    yield ("Go", "stdlib", lines[0].rsplit(": ", 1)[1].strip())
    previous = None
    for line in lines[1:]:
        fields = line.strip().split("\t")
        if fields[0] in ("mod", "dep"):
            previous = ("Go", fields[1], fields[2])
            yield previous
        elif fields[0] == "=>":
            sys.exit(f"{binary}: replaced modules are not expected in the test binary")


def cargo(manifest):
    host = next(
        line.split(":", 1)[1].strip()
        for line in run(["rustc", "-vV"]).splitlines()
        if line.startswith("host:")
    )
    metadata = json.loads(
        run(
            [
                "cargo", "metadata", "--format-version", "1", "--manifest-path", manifest,
                "--filter-platform", host, "--locked", "--offline",
            ]
        )
    )
    packages = {package["id"]: package for package in metadata["packages"]}
    nodes = {node["id"]: node for node in metadata["resolve"]["nodes"]}
    seen, stack = set(), [metadata["resolve"]["root"]]
    while stack:
        node = nodes[stack.pop()]
        if node["id"] in seen:
            continue
        seen.add(node["id"])
        for dep in node["deps"]:
            # Dev-dependencies are never built into the binary.
            if any(kind["kind"] != "dev" for kind in dep["dep_kinds"]):
                stack.append(dep["pkg"])
    for package_id in seen:
        package = packages[package_id]
        if (package.get("source") or "").startswith(("registry+", "sparse+")):
            yield ("crates.io", package["name"], package["version"])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--pip", default="pip")
    parser.add_argument("--site", action="append", default=[])
    parser.add_argument("--npm", action="append", default=[])
    parser.add_argument("--go", action="append", default=[])
    parser.add_argument("--cargo-manifest", action="append", default=[])
    args = parser.parse_args()

    found = set(deb(args.root))
    for site in args.site:
        found.update(pypi(args.pip, inside(args.root, site)))
    for prefix in args.npm:
        found.update(npm(inside(args.root, prefix)))
    for binary in args.go:
        found.update(golang(inside(args.root, binary)))
    for manifest in args.cargo_manifest:
        found.update(cargo(manifest))
    for row in sorted(found):
        print("\t".join(row))


if __name__ == "__main__":
    main()
