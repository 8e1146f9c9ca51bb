#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets, fuzz/corpus/<target>/<seed>.

The seeds are small, realistic inputs (a dpkg status stanza, an apk database, rpm
databases in all three formats, OCI manifests and indexes, CVSS vectors, the scanner's
own OSV test records...) in the framing each target expects: most targets read a first
byte that picks a mode, a content type or a path, then the file. They are committed;
rerun this after changing a target's framing:

    python3 fuzz/seeds.py

Only the standard library is used (sqlite3 for the rpm database). The structured modes
of dpkg_status, apk_installed, rpm_db, money and webhook_signature decode their input
with the `arbitrary` crate, whose encoding is not meant to be written by hand: those get
a few fixed pseudo-random inputs, from which libFuzzer finds its way.
"""

import gzip
import io
import json
import os
import random
import shutil
import sqlite3
import struct
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
REPO = FUZZ.parent
CORPUS = FUZZ / "corpus"
FEED = REPO / "crates/slipway-scanner/testdata/feed"

SHA_A = "sha256:" + "a" * 64
SHA_B = "sha256:" + "0123456789abcdef" * 4
SHA_C = "sha256:" + "c" * 64
SHA512 = "sha512:" + "e" * 128


def write(target, name, data):
    path = CORPUS / target / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


def pseudo_random(target, count, size, first=None):
    rng = random.Random(f"{target}-seeds")
    for i in range(count):
        data = bytes(rng.randrange(256) for _ in range(size))
        if first is not None:
            data = bytes([first[i % len(first)]]) + data[1:]
        write(target, f"random-{i}", data)


# ------------------------------------------------------------------- names, scopes

def reference():
    for name, text in [
        ("repo-deep", "acme/tools/builder"),
        ("repo-library", "library/ubuntu"),
        ("tag", "v1.0.0-rc_1"),
        ("digest-sha256", SHA_B),
        ("digest-sha512", SHA512),
        ("image-port-tag", "127.0.0.1:5000/acme/app:1.0"),
        ("image-digest", f"registry.example/app@{SHA_B}"),
        ("image-ipv6", f"[::1]:5000/acme/app:latest@{SHA_A}"),
        ("image-localhost", "localhost:5000/my-org/my_app.v2"),
    ]:
        write("reference", name, text)


def scope():
    for name, text in [
        ("registry-scope", "repository:acme/app:pull,push"),
        ("registry-scope-port", "repository:localhost:5000/acme/app:*"),
        ("catalog", "registry:catalog:*"),
        ("api-read", "api:read"),
        ("api-fulfillment", "api:fulfillment"),
        ("rule", "acme/*:pull,push,delete"),
        ("glob", "acme/*/app\nacme/ci/app"),
        ("glob-backtrack", "*a*a*a*a*b\naaaaaaaaaaaaaaaaab"),
    ]:
        write("scope", name, text)


def route():
    for name, text in [
        ("base", ""),
        ("catalog", "_catalog"),
        ("tags", "acme/app/tags/list"),
        ("manifest-deep", "a/blobs/b/manifests/latest"),
        ("blob", f"acme/app/blobs/{SHA_B}"),
        ("upload-start", "x/y/blobs/uploads/"),
        ("upload", "x/blobs/uploads/0b7d6f0e-52b5-4a5d-9d3c-1b2c3d4e5f60"),
        ("referrers", f"x/referrers/{SHA_A}"),
        ("built-blobs-name", f"acme/blobs/app\n{SHA_B}"),
        ("built-tags-name", "a/tags\nlist"),
    ]:
        write("route", name, text)


def content_range():
    size = struct.pack("<Q", 1 << 20)
    for name, text in [
        ("chunk", "0-1023"),
        ("next-chunk", "1024-2047"),
        ("range", "bytes=0-9"),
        ("suffix", "bytes=-10"),
        ("open", "bytes=90-"),
        ("multi", "bytes=0-1,5-6"),
    ]:
        write("content_range", name, size + text.encode())


# ------------------------------------------------------------------------ manifests

def manifest():
    content_types = {"none": 0, "oci-manifest": 1, "oci-index": 2, "docker-manifest": 3, "docker-list": 4}
    layer = "application/vnd.oci.image.layer.v1.tar+gzip"
    oci = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": SHA_A, "size": 1469},
        "layers": [
            {"mediaType": layer, "digest": SHA_B, "size": 3370706},
            {"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "digest": SHA_C, "size": 10,
             "urls": ["https://example.com/layer"]},
        ],
        "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    }
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": SHA_A, "size": 1024,
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": SHA_B, "size": 1024,
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": SHA_C, "size": 566,
             "platform": {"os": "unknown", "architecture": "unknown"},
             "annotations": {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": SHA_A}},
        ],
    }
    docker = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023, "digest": SHA_A},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 32654, "digest": SHA_B}],
    }
    docker_list = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [{"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 7143, "digest": SHA_C,
                       "platform": {"architecture": "ppc64le", "os": "linux"}}],
    }
    artifact = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.example.sbom.v1",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": SHA_C, "size": 2},
        "layers": [{"mediaType": "application/spdx+json", "digest": SHA_B, "size": 812}],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": SHA_A, "size": 1234},
    }
    config = {"architecture": "arm", "os": "linux", "variant": "v7",
              "rootfs": {"type": "layers", "diff_ids": [SHA_A, SHA_B]}}
    schema1 = {"schemaVersion": 1, "name": "acme/app", "tag": "latest", "fsLayers": [{"blobSum": SHA_A}]}
    for name, ct, doc in [
        ("oci-manifest", "oci-manifest", oci),
        ("oci-index", "oci-index", index),
        ("docker-manifest", "docker-manifest", docker),
        ("docker-list", "docker-list", docker_list),
        ("artifact-with-subject", "none", artifact),
        ("image-config", "none", config),
        ("schema1", "none", schema1),
    ]:
        write("manifest", name, bytes([content_types[ct]]) + json.dumps(doc, indent=1).encode())


# ---------------------------------------------------------------------------- layers

DPKG_STATUS = """\
Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 12985
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Replaces: libc6-amd64
Depends: libgcc-s1
Conffiles:
 /etc/ld.so.conf.d/x86_64-linux-gnu.conf d4e7a7b88a71b5ffd9e2644e71a0cfab
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.
Homepage: https://www.gnu.org/software/libc/libc.html

Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl (3.0.11-1~deb12u2)
Version: 3.0.11-1~deb12u2
Description: Secure Sockets Layer toolkit - shared libraries

Package: vim-tiny
Status: deinstall ok config-files
Architecture: amd64
Source: vim
Version: 2:9.0.1378-2
Description: Vi IMproved - enhanced vi editor - compact version
"""

OS_RELEASE = """\
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
"""

APK_INSTALLED = """\
C:Q1/kPaRSqPAthnaSVEQqDh/vqVcMJo=
P:musl
V:1.2.4-r2
A:x86_64
S:383152
I:622592
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Timo Teras <timo.teras@iki.fi>
t:1698699350
c:ca7f2ab5e88794e4e654b40776f8a92256f50639
p:so:libc.musl-x86_64.so.1=1
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1FZ3+WfPWhuo3C7m5/ctZGFLVUPA=
R:libc.musl-x86_64.so.1
a:0:0:777
Z:Q17yJ3JFNypA4mxhJJr0ou6CzsJVI=

C:Q1bLDJbHeEMNwRBHXi/ycawjJH9Oc=
P:busybox
V:1.36.1-r15
A:x86_64
o:busybox
F:bin
R:busybox
F:etc
R:securetty
R:udhcpd.conf

"""

PACKAGE_JSON = '{"name": "left-pad", "version": "1.3.0", "license": "WTFPL", "dependencies": {}}'
SCOPED_PACKAGE_JSON = '{"name": "@babel/core", "version": "7.23.2", "main": "./lib/index.js"}'
PYTHON_METADATA = ("Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nSummary: Python HTTP for Humans.\n"
                   "Requires-Python: >=3.7\nLicense: Apache 2.0\n\nLong description.\nName: not-this\n")
EGG_INFO = "Metadata-Version: 1.1\nName: six\nVersion: 1.16.0\nSummary: Python 2 and 3 compatibility utilities\n"
COMPOSER_V2 = json.dumps({
    "packages": [
        {"name": "guzzlehttp/guzzle", "version": "7.8.0", "version_normalized": "7.8.0.0", "type": "library"},
        {"name": "symfony/http-foundation", "version": "v6.3.4", "version_normalized": "6.3.4.0", "type": "library"},
    ],
    "dev": False,
    "dev-package-names": [],
}, indent=4)
COMPOSER_V1 = json.dumps([{"name": "monolog/monolog", "version": "1.27.1"}])
GEMSPEC = """\
# -*- encoding: utf-8 -*-
# stub: rack 2.2.8 ruby lib

Gem::Specification.new do |s|
  s.name = "rack".freeze
  s.version = "2.2.8".freeze
  s.required_rubygems_version = Gem::Requirement.new(">= 0".freeze) if s.respond_to? :required_rubygems_version=
  s.authors = ["Leah Neukirchen".freeze]
  s.summary = "A modular Ruby webserver interface".freeze
end
"""


def pom(group, artifact, version):
    return f"#Created by Apache Maven 3.9.5\ngroupId={group}\nartifactId={artifact}\nversion={version}\n".encode()


class Unseekable(io.RawIOBase):
    """A write-only stream without tell/seek: zipfile then writes data descriptors, as
    java.util.zip.ZipOutputStream does."""

    def __init__(self):
        self.data = bytearray()

    def writable(self):
        return True

    def write(self, b):
        self.data += b
        return len(b)


def jar(entries, streamed=False):
    out = Unseekable() if streamed else io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data, stored in entries:
            archive.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), data,
                             compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)
    return bytes(out.data) if streamed else out.getvalue()


def jars():
    log4j = jar([
        ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\r\n\r\n", False),
        ("META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties",
         pom("org.apache.logging.log4j", "log4j-core", "2.14.1"), False),
        ("org/apache/logging/log4j/core/Logger.class", bytes([0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 52]), False),
    ])
    commons = jar([("META-INF/MANIFEST.MF",
                    b"Manifest-Version: 1.0\r\nImplementation-Title: commons-text\r\nImplementation-Version: 1.9\r\n"
                    b"Implementation-Vendor-Id: org.apache.commons\r\n\r\n", False)])
    jackson = jar([
        ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\r\n\r\n", False),
        ("META-INF/maven/com.fasterxml.jackson.core/jackson-databind/pom.properties",
         pom("com.fasterxml.jackson.core", "jackson-databind", "2.13.0"), False),
    ], streamed=True)
    app = jar([
        ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\r\nMain-Class: org.springframework.boot.loader.JarLauncher\r\n\r\n", False),
        ("META-INF/maven/com.example/shop/pom.properties", pom("com.example", "shop", "1.4.0"), False),
        ("BOOT-INF/lib/log4j-core-2.14.1.jar", log4j, True),
        ("BOOT-INF/lib/commons-text-1.9.jar", commons, False),
        ("BOOT-INF/lib/jackson-databind-2.13.0.jar", jackson, True),
    ])
    war = jar([("WEB-INF/lib/jackson.jar", jackson, False)], streamed=True)
    return app, war


GO_START = b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6"
GO_END = b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2"


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def go_buildinfo():
    modinfo = (b"path\texample.com/app\nmod\texample.com/app\t(devel)\t\n"
               b"dep\texample.org/dep\tv1.2.3\th1:abc=\n"
               b"dep\texample.org/old\tv1.0.0\th1:def=\n=>\texample.org/new\tv1.1.0\th1:ghi=\n"
               b"build\t-compiler=gc\n")
    framed = GO_START + modinfo + GO_END
    header = b"\xff Go buildinf:" + bytes([8, 2])
    header += b"\0" * (32 - len(header))
    return header + varint(len(b"go1.22.1")) + b"go1.22.1" + varint(len(framed)) + framed


def elf(writable=b"", dep_v0=None):
    """A little-endian ELF64 executable: a text segment, a writable segment holding
    `writable` (Go's build info goes first there), and, after the segments, a `.dep-v0`
    section with the section names and table when `dep_v0` is given."""
    text_off, data_off = 0x200, 0x400
    data = writable.ljust(0x200, b"\0") if writable else b""
    phdrs = [(1, 5, 0, text_off)]  # PT_LOAD, R+X: offset 0, the headers and some code
    if writable:
        phdrs.append((1, 6, data_off, len(data)))  # PT_LOAD, R+W
    tail = data_off + len(data)
    body = bytearray(tail)
    body[text_off:text_off + 16] = b"\xc3" * 16
    body[data_off:data_off + len(data)] = data
    shoff, shnum, shstrndx = 0, 0, 0
    if dep_v0 is not None:
        names = b"\0.dep-v0\0.shstrtab\0"
        dep_at = len(body)
        body += dep_v0
        names_at = len(body)
        body += names
        body += b"\0" * (-len(body) % 8)
        shoff = len(body)
        sections = [
            (0, 0, 0, 0),
            (1, 1, dep_at, len(dep_v0)),  # .dep-v0, SHT_PROGBITS
            (9, 3, names_at, len(names)),  # .shstrtab, SHT_STRTAB
        ]
        for name, kind, offset, size in sections:
            body += struct.pack("<IIQQQQIIQQ", name, kind, 0, 0, offset, size, 0, 0, 1, 0)
        shnum, shstrndx = len(sections), 2
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    header = ident + struct.pack("<HHIQQQIHHHHHH", 2, 0x3E, 1, 0x401000, 64, shoff, 0, 64, 56, len(phdrs), 64, shnum, shstrndx)
    for kind, flags, offset, size in phdrs:
        header += struct.pack("<IIQQQQQQ", kind, flags, offset, 0x400000 + offset, 0x400000 + offset, size, size, 0x1000)
    body[:len(header)] = header
    return bytes(body)


def auditable_json():
    doc = {"packages": [
        {"name": "demo", "version": "0.1.0", "source": "local", "root": True, "dependencies": [1, 2]},
        {"name": "serde", "version": "1.0.197", "source": "crates.io"},
        {"name": "smallvec", "version": "1.11.0", "source": "crates.io"},
    ]}
    return zlib.compress(json.dumps(doc).encode(), 9)


def tar_layer(members, fmt=tarfile.GNU_FORMAT):
    """members: (name, kind, data) with kind file, exec, dir, symlink (data = target)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as archive:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                archive.addfile(info)
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, data
                archive.addfile(info)
            else:
                data = data if isinstance(data, bytes) else data.encode()
                info.size, info.mode = len(data), 0o755 if kind == "exec" else 0o644
                archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def rpm_header(tags):
    """tags: (tag, kind, value) with kind str, int32 (a list) or strings (a list)."""
    index, store = bytearray(), bytearray()
    for tag, kind, value in tags:
        if kind == "int32":
            store += b"\0" * (-len(store) % 4)
            code, count = 4, len(value)
        else:
            code, count = (6, 1) if kind == "str" else (8, len(value))
        index += struct.pack(">IIII", tag, code, len(store), count)
        if kind == "str":
            store += value.encode() + b"\0"
        elif kind == "int32":
            store += b"".join(struct.pack(">I", v) for v in value)
        else:
            store += b"".join(v.encode() + b"\0" for v in value)
    return struct.pack(">II", len(tags), len(store)) + bytes(index) + bytes(store)


OPENSSL = rpm_header([
    (1000, "str", "openssl-libs"), (1001, "str", "3.0.7"), (1002, "str", "24.el9"), (1003, "int32", [1]),
    (1022, "str", "x86_64"), (1044, "str", "openssl-3.0.7-24.el9.src.rpm"), (1116, "int32", [0, 1]),
    (1117, "strings", ["libssl.so.3", "openssl.cnf"]), (1118, "strings", ["/usr/lib64/", "/etc/pki/tls/"]),
])
BASH = rpm_header([
    (1000, "str", "bash"), (1001, "str", "4.2.46"), (1002, "str", "34.el7"), (1022, "str", "x86_64"),
    (1044, "str", "bash-4.2.46-34.el7.src.rpm"),
])
GLIBC = rpm_header([
    (1000, "str", "glibc"), (1001, "str", "2.17"), (1002, "str", "326.el7_9"), (1022, "str", "x86_64"),
    (1044, "str", "glibc-2.17-326.el7_9.src.rpm"), (1116, "int32", [0] * 40),
    (1117, "strings", [f"lib{n}.so" for n in range(40)]), (1118, "strings", ["/usr/lib64/"]),
])
GPG_KEY = rpm_header([(1000, "str", "gpg-pubkey"), (1001, "str", "fd431d51"), (1002, "str", "4ae0493b")])


def rpmdb_sqlite(headers):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "rpmdb.sqlite")
        db = sqlite3.connect(path)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)")
        for header in headers:
            db.execute("INSERT INTO Packages (blob) VALUES (?)", (header,))
        db.commit()
        db.close()
        return Path(path).read_bytes()


def bdb(small, large, big_endian):
    """rpm's Packages as a Berkeley DB hash file of 512-byte pages: metadata, a hash
    page (one value inline, one off-page), and the two-page overflow chain."""
    page_size = 512
    e = ">" if big_endian else "<"
    data = bytearray(page_size * 4)
    struct.pack_into(e + "I", data, 12, 0x00061561)
    struct.pack_into(e + "I", data, 20, page_size)
    data[25] = 8
    struct.pack_into(e + "I", data, 32, 3)
    items = [bytes([1, 1, 0, 0, 0]), b"\x01" + small, bytes([1, 2, 0, 0, 0]),
             b"\x03\0\0\0" + struct.pack(e + "II", 2, len(large))]
    page = page_size
    struct.pack_into(e + "H", data, page + 20, len(items))
    data[page + 25] = 13
    end = page_size
    for i, item in enumerate(items):
        start = end - len(item)
        data[page + start:page + end] = item
        struct.pack_into(e + "H", data, page + 26 + i * 2, start)
        end = start
    head, tail = large[:page_size - 26], large[page_size - 26:]
    for number, chunk, nxt in [(2, head, 3), (3, tail, 0)]:
        at = number * page_size
        struct.pack_into(e + "I", data, at + 16, nxt)
        struct.pack_into(e + "H", data, at + 22, len(chunk))
        data[at + 25] = 7
        data[at + 26:at + 26 + len(chunk)] = chunk
    return bytes(data)


def ndb(blobs):
    out = bytearray(b"RpmP" + struct.pack("<III", 0, 7, 1))
    out += b"\0" * (32 - len(out))
    blocks, slots = bytearray(), []
    for i, blob in enumerate(blobs):
        slots.append((i + 1, (4096 + len(blocks)) // 16))
        blocks += b"BlbS" + struct.pack("<III", i + 1, 0, len(blob)) + blob
        blocks += b"\0" * (-len(blocks) % 16)
    for slot in range((4096 - 32) // 16):
        package, offset = slots[slot] if slot < len(slots) else (0, 0)
        out += b"Slot" + struct.pack("<III", package, offset, 1)
    return bytes(out + blocks)


def layer_tar():
    app, _ = jars()
    debian = tar_layer([
        ("etc", "dir", None),
        ("etc/os-release", "symlink", "../usr/lib/os-release"),
        ("usr/lib/os-release", "file", OS_RELEASE),
        ("var/lib/dpkg/status", "file", DPKG_STATUS),
        ("var/lib/dpkg/info/libc6:amd64.list", "file", "/.\n/lib/x86_64-linux-gnu/libc.so.6\n"),
        ("usr/lib/python3/dist-packages/six-1.16.0.egg-info", "file", EGG_INFO),
        ("usr/bin/true", "exec", "#!/bin/sh\n"),
    ])
    upper = tar_layer([
        ("var/lib/dpkg/.wh.status", "file", ""),
        ("usr/lib/python3/dist-packages/.wh..wh..opq", "file", ""),
        ("./srv//shop.jar", "file", app),
        ("app/node_modules/left-pad/package.json", "file", PACKAGE_JSON),
    ])
    long_names = tar_layer([
        ("usr/lib/python3.11/site-packages/" + "a" * 120 + "/requests-2.31.0.dist-info/METADATA", "file", PYTHON_METADATA),
        ("lib/apk/db/installed", "file", APK_INSTALLED),
        ("usr/lib/sysimage/rpm/Packages.db", "file", ndb([BASH])),
    ], fmt=tarfile.PAX_FORMAT)
    write("layer_tar", "debian-plain", b"\0" + debian)
    write("layer_tar", "debian-gzipped-here", b"\2" + debian)
    write("layer_tar", "upper-zstd-here", b"\3" + upper)
    write("layer_tar", "upper-gzip-sniffed", b"\1" + gzip.compress(upper, 6, mtime=0))
    write("layer_tar", "pax-long-names", b"\0" + long_names)


def dpkg_status():
    # Odd first bytes: the file at PATHS[byte / 2 % 5].
    write("dpkg_status", "status", b"\x01" + DPKG_STATUS.encode())
    write("dpkg_status", "status-d-entry", b"\x03" + b"Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\n")
    write("dpkg_status", "info-list", b"\x05" + b"/.\n/lib\n/lib/x86_64-linux-gnu/libc.so.6\n")
    write("dpkg_status", "md5sums", b"\x07" + b"d41d8cd98f00b204e9800998ecf8427e  usr/share/doc/base-files/README\n")
    pseudo_random("dpkg_status", 3, 160, first=[0, 2, 4])


def apk_installed():
    write("apk_installed", "installed", b"\x01" + APK_INSTALLED.encode())
    write("apk_installed", "merged-usr", b"\x03" + b"P:zlib\nV:1.3.1-r0\nA:aarch64\no:zlib\nF:lib\nR:libz.so.1\n\n")
    pseudo_random("apk_installed", 3, 160, first=[0, 2, 4])


def rpm_db():
    write("rpm_db", "sqlite", b"\0" + rpmdb_sqlite([OPENSSL, BASH, GPG_KEY]))
    write("rpm_db", "bdb-le", b"\1" + bdb(BASH, GLIBC, False))
    write("rpm_db", "bdb-be", b"\1" + bdb(BASH, GLIBC, True))
    write("rpm_db", "ndb", b"\2" + ndb([BASH, GLIBC, OPENSSL]))
    pseudo_random("rpm_db", 4, 200, first=[3, 4, 8, 9])


def lang_manifests():
    app, war = jars()
    go = elf(writable=go_buildinfo())
    both = elf(writable=go_buildinfo(), dep_v0=auditable_json())
    rust = elf(dep_v0=auditable_json())
    for name, selector, data in [
        ("npm", 0, PACKAGE_JSON),
        ("npm-scoped", 1, SCOPED_PACKAGE_JSON),
        ("python-metadata", 2, PYTHON_METADATA),
        ("egg-info", 3, EGG_INFO),
        ("composer-v2", 4, COMPOSER_V2),
        ("composer-v1", 4, COMPOSER_V1),
        ("gemspec", 5, GEMSPEC),
        ("go-elf", 6, go),
        ("auditable-elf", 6, rust),
        ("go-and-auditable-elf", 6, both),
        ("spring-boot-jar", 7, app),
        ("streamed-war", 8, war),
        ("os-release", 9, OS_RELEASE),
    ]:
        write("lang_manifests", name, bytes([selector]) + (data if isinstance(data, bytes) else data.encode()))


def osv():
    for path in sorted(FEED.rglob("*.json")):
        name = f"{path.parent.name}-{path.name}"
        shutil.copyfile(path, CORPUS / "osv" / name)


def versions():
    schemes = {"dpkg": 0, "apk": 1, "rpm": 2, "pep440": 3, "semver": 4, "go": 5, "maven": 6, "rubygems": 7, "composer": 8}
    for name, scheme, values in [
        ("dpkg", "dpkg", ["1:2.36-9+deb12u4", "2.36-9+deb12u10", "2.36~rc1-1"]),
        ("apk", "apk", ["1.2.4-r2", "1.2.4_rc1-r0", "1.2.4_p1-r10"]),
        ("rpm", "rpm", ["1:3.0.7-24.el9", "3.0.7-24.el9_3.1", "3.0.7^20230101-1.el9"]),
        ("pep440", "pep440", ["2.31.0", "2.31.0rc1", "1!2.0.post3.dev4+local.7"]),
        ("semver", "semver", ["1.2.3-alpha.1", "1.2.3-alpha.beta", "1.2.3+build.5"]),
        ("semver-range", "semver", [">=1.2.7 <1.3.0 || ^2.0.0-rc.1", "1.2.8", "2.0.0-rc.2"]),
        ("go", "go", ["v1.2.3", "v0.0.0-20240101000000-abcdef123456", "v2.0.0+incompatible"]),
        ("maven", "maven", ["1.0-SNAPSHOT", "1.0.0.RELEASE", "1-sp-1"]),
        ("rubygems", "rubygems", ["2.2.8", "2.2.8.pre.1", "2.2.b"]),
        ("composer", "composer", ["v6.3.4", "6.3.4-beta2", "dev-main"]),
    ]:
        write("versions", name, bytes([schemes[scheme]]) + "\n".join(values).encode())


def cvss():
    for name, vector in [
        ("v3.1", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
        ("v3.1-changed-scope", "CVSS:3.1/AV:N/AC:L/PR:L/UI:R/S:C/C:L/I:L/A:N"),
        ("v3.0-temporal-environmental", "CVSS:3.0/AV:L/AC:H/PR:H/UI:R/S:U/C:N/I:L/A:N/E:P/RL:O/RC:C/CR:H/MAV:N"),
        ("v4.0", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"),
        ("v4.0-threat-environmental", "CVSS:4.0/AV:A/AC:H/AT:P/PR:L/UI:P/VC:L/VI:N/VA:N/SC:L/SI:L/SA:N/E:P/CR:H/MSI:S/S:P/U:Amber"),
        ("v4.0-no-impact", "CVSS:4.0/AV:P/AC:H/AT:P/PR:H/UI:A/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N"),
    ]:
        write("cvss", name, vector)


def main():
    if CORPUS.exists():
        shutil.rmtree(CORPUS)
    (CORPUS / "osv").mkdir(parents=True)
    for seeds in [reference, scope, route, content_range, manifest, layer_tar, dpkg_status, apk_installed, rpm_db,
                  lang_manifests, osv, versions, cvss]:
        seeds()
    pseudo_random("money", 4, 64)
    pseudo_random("webhook_signature", 4, 200)
    total = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
    print(f"{sum(1 for p in CORPUS.rglob('*') if p.is_file())} seeds, {total} bytes, in {CORPUS}")


if __name__ == "__main__":
    main()
