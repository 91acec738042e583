#!/usr/bin/env python3
"""Writes the binary seeds of the fuzz corpora (zips, base64 zips, tar layers) under fuzz/corpus/.

Run from anywhere: python3 fuzz/make_seeds.py. Deterministic (fixed timestamps), so re-running changes
nothing. The text seeds (headers, requests, bodies, cron strings) are committed as written.
"""
import base64
import gzip
import io
import os
import tarfile
import zipfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
STAMP = (2020, 1, 1, 0, 0, 0)


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def zip_of(entries, symlink=None, compress=zipfile.ZIP_DEFLATED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compress) as z:
        for name, data in entries:
            info = zipfile.ZipInfo(name, STAMP)
            info.compress_type = compress
            z.writestr(info, data)
        if symlink:
            info = zipfile.ZipInfo(symlink[0], STAMP)
            info.external_attr = (0o120777 << 16)
            z.writestr(info, symlink[1])
    return buf.getvalue()


zips = {
    "python": zip_of([("index.py", b"def handler(event, context):\n    return 'hi'\n"), ("lib/a.py", b"x = 1\n")]),
    "stored": zip_of([("a", b"abc"), ("dir/", b"")], compress=zipfile.ZIP_STORED),
    "dotdot": zip_of([("../evil", b"x")]),
    "absolute": zip_of([("/etc/evil", b"x")]),
    "backslash": zip_of([("..\\evil", b"x")]),
    "symlink": zip_of([("ok", b"x")], symlink=("link", "/etc/passwd")),
    "bomb": zip_of([("zeros", bytes(200_000))]),
    "empty": zip_of([]),
}
for name, data in zips.items():
    write("zip", name, data)
for name in ("python", "stored", "dotdot"):
    b64 = base64.b64encode(zips[name])
    write("zip_base64", name, b64)
write("zip_base64", "wrapped", b"\n".join(base64.b64encode(zips["python"])[i:i + 76] for i in range(0, 200, 76)))


def tar_of(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for m in members:
            kind, name = m[0], m[1]
            info = tarfile.TarInfo(name)
            info.mtime = 1577836800
            if kind == "file":
                info.size = len(m[2])
                t.addfile(info, io.BytesIO(m[2]))
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                t.addfile(info)
            elif kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = m[2]
                t.addfile(info)
            elif kind == "hardlink":
                info.type = tarfile.LNKTYPE
                info.linkname = m[2]
                t.addfile(info)
    return buf.getvalue()


tars = {
    "basic": tar_of([("dir", "etc/"), ("file", "etc/passwd", b"root:x:0:0::/root:/bin/sh\n"), ("file", "bin/app", b"#!/bin/sh\n")]),
    "whiteout": tar_of([("dir", "a/"), ("file", "a/.wh.b", b""), ("file", "a/.wh..wh..opq", b"")]),
    "symlink_escape": tar_of([("symlink", "out", "../../.."), ("file", "out/escaped", b"x")]),
    "abs_symlink": tar_of([("symlink", "etc", "/etc"), ("file", "etc/shadow", b"x")]),
    "hardlink_escape": tar_of([("hardlink", "h", "../../outside"), ("file", "../dotdot", b"x")]),
    "deep": tar_of([("file", "/".join(["d"] * 40) + "/f", b"x")]),
}
for name, data in tars.items():
    write("tar", name, data)
write("tar", "basic.gz", gzip.compress(tars["basic"], mtime=0))
