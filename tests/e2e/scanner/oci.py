#!/usr/bin/env python3
"""OCI image layout chores for the scanner's test images.

    oci.py export LAYOUT TAG DEST   one tagged image of LAYOUT as its own layout in DEST
                                    (blobs hard-linked), so that every tool scans
                                    exactly one image
    oci.py layers LAYOUT            the layer digests of the only image in LAYOUT, in
                                    order, one a line
"""

import hashlib
import json
import os
import sys

REF_NAME = "org.opencontainers.image.ref.name"


def blob_path(layout, digest):
    algorithm, hexdigest = digest.split(":", 1)
    return os.path.join(layout, "blobs", algorithm, hexdigest)


def read_json_blob(layout, digest):
    with open(blob_path(layout, digest), "rb") as handle:
        data = handle.read()
    algorithm, hexdigest = digest.split(":", 1)
    if hashlib.new(algorithm, data).hexdigest() != hexdigest:
        sys.exit(f"{digest}: content does not match its digest")
    return json.loads(data)


def index(layout):
    with open(os.path.join(layout, "index.json"), encoding="utf-8") as handle:
        return json.load(handle)


def export(layout, tag, dest):
    wanted = [
        m
        for m in index(layout)["manifests"]
        if m.get("annotations", {}).get(REF_NAME) == tag
    ]
    if len(wanted) != 1:
        sys.exit(f"{layout}: {len(wanted)} manifests tagged {tag!r}")
    descriptor = wanted[0]
    manifest = read_json_blob(layout, descriptor["digest"])
    digests = [descriptor["digest"], manifest["config"]["digest"]]
    digests += [layer["digest"] for layer in manifest["layers"]]
    for digest in digests:
        target = blob_path(dest, digest)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):
            os.link(blob_path(layout, digest), target)
    with open(os.path.join(dest, "oci-layout"), "w", encoding="utf-8") as handle:
        json.dump({"imageLayoutVersion": "1.0.0"}, handle)
    descriptor = dict(descriptor, annotations={REF_NAME: "latest"})
    with open(os.path.join(dest, "index.json"), "w", encoding="utf-8") as handle:
        json.dump({"schemaVersion": 2, "manifests": [descriptor]}, handle)


def layers(layout):
    manifests = index(layout)["manifests"]
    if len(manifests) != 1:
        sys.exit(f"{layout}: {len(manifests)} manifests, expected one")
    for layer in read_json_blob(layout, manifests[0]["digest"])["layers"]:
        print(layer["digest"])


def main():
    match sys.argv[1:]:
        case ["export", layout, tag, dest]:
            export(layout, tag, dest)
        case ["layers", layout]:
            layers(layout)
        case _:
            sys.exit(__doc__)


if __name__ == "__main__":
    main()
