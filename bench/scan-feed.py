#!/usr/bin/env python3
"""A synthetic OSV feed for the warm-rescan bench, shaped like the image it is for.

    scan-feed.py INVENTORY.json PER_PACKAGE OUT.zip

INVENTORY.json is what `scan_oci --out` writes. For every package of it (Debian
packages by source package, as Debian's records name them) PER_PACKAGE records, each
an archive entry as osv.dev publishes them (`all.zip`): one in three affects the
installed version (`last_affected` = it), the others were fixed long before (`fixed`
0.0.1), so matching walks every range and finds some. Each record has two affected
entries (Debian:11 and Debian:12, or the language ecosystem twice with different
ranges) and a CVSS vector, like real ones. Prints how many records it wrote.
"""

import json
import sys
import zipfile

OSV_ECOSYSTEM = {
    "PyPI": "PyPI",
    "npm": "npm",
    "Go": "Go",
    "crates.io": "crates.io",
    "Maven": "Maven",
    "RubyGems": "RubyGems",
    "Packagist": "Packagist",
}
CVSS = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"


def targets(inventory):
    """(OSV ecosystem, name, installed version) for each distinct package."""
    os_release = inventory.get("os") or {}
    seen = set()
    for package in inventory["packages"]:
        ecosystem = package["ecosystem"]
        if ecosystem == "deb":
            if os_release.get("id") != "debian":
                continue
            name = package.get("source_name") or package["name"]
            version = package.get("source_version") or package["version"]
            target = (f"Debian:{os_release.get('version_id')}", name, version)
        elif ecosystem in OSV_ECOSYSTEM:
            target = (OSV_ECOSYSTEM[ecosystem], package["name"], package["version"])
        else:
            continue
        if target not in seen:
            seen.add(target)
            yield target


def record(number, ecosystem, name, version, affected):
    event = {"last_affected": version} if affected else {"fixed": "0.0.1"}
    other = "Debian:11" if ecosystem.startswith("Debian:") else ecosystem
    return {
        "schema_version": "1.6.0",
        "id": f"BENCH-{number:06d}",
        "modified": "2026-01-01T00:00:00Z",
        "published": "2025-01-01T00:00:00Z",
        "aliases": [f"CVE-2025-{number:05d}"],
        "details": f"Synthetic advisory {number} for {name}.",
        "severity": [{"type": "CVSS_V3", "score": CVSS}],
        "affected": [
            {
                "package": {"ecosystem": other, "name": name},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "0.0.1"}]}
                ],
            },
            {
                "package": {"ecosystem": ecosystem, "name": name},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, event]}],
            },
        ],
    }


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as handle:
        inventory = json.load(handle)
    per_package = int(sys.argv[2])
    number = 0
    with zipfile.ZipFile(sys.argv[3], "w", zipfile.ZIP_DEFLATED) as archive:
        for ecosystem, name, version in targets(inventory):
            for i in range(per_package):
                number += 1
                entry = record(number, ecosystem, name, version, affected=i % 3 == 0)
                archive.writestr(f"BENCH-{number:06d}.json", json.dumps(entry))
    print(number)


if __name__ == "__main__":
    main()
