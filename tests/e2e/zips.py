"""ZIP builders for code packages, valid and hostile. All outputs are deterministic for the same input (fixed
timestamps), so "the same package twice" is byte-identical."""

import io
import os
import random
import struct
import zipfile

FIXED_TIME = (2020, 1, 1, 0, 0, 0)

# A tiny but real handler, so the package is a plausible function package.
INDEX_PY = b"def handler(event, context):\n    return event\n"


def _info(name, compress=zipfile.ZIP_DEFLATED, mode=0o100644):
    zi = zipfile.ZipInfo(name, date_time=FIXED_TIME)
    zi.compress_type = compress
    zi.create_system = 3  # Unix, so external_attr carries the mode
    zi.external_attr = (mode & 0xFFFF) << 16
    return zi


def make_zip(files=None, compress=zipfile.ZIP_DEFLATED):
    """files: {name: bytes}; names ending in '/' become directory entries."""
    if files is None:
        files = {"index.py": INDEX_PY}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            if name.endswith("/"):
                zf.writestr(_info(name, zipfile.ZIP_STORED, 0o40755), b"")
            else:
                zf.writestr(_info(name, compress), data)
    return buf.getvalue()


def code_zip(tag="v1", extra=b""):
    """A small valid package whose bytes depend on `tag` (different tags -> different checksums)."""
    return make_zip({
        "index.py": INDEX_PY,
        "lib/": b"",
        "lib/data.txt": f"tag={tag}\n".encode() + extra,
    })


def entry_names(data):
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [zi.filename for zi in zf.infolist()]


def zip_with_entry_name(name, data=b"x"):
    """One entry with a raw (unsanitised) name such as '/etc/x' or '../x'."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(_info("index.py"), INDEX_PY)
        zi = _info("placeholder")
        zi.filename = name  # bypass any normalisation a constructor might do
        zf.writestr(zi, data)
    out = buf.getvalue()
    assert name in entry_names(out), (name, entry_names(out))
    return out


def symlink_zip(target="/etc/passwd", name="link"):
    """A symlink entry (mode 0o120777, the content is the link target), as `zip --symlinks` writes it."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(_info("index.py"), INDEX_PY)
        zf.writestr(_info(name, zipfile.ZIP_STORED, 0o120777), target.encode())
    out = buf.getvalue()
    with zipfile.ZipFile(io.BytesIO(out)) as zf:
        assert (zf.getinfo(name).external_attr >> 16) == 0o120777
    return out


def declared_size_zip(declared_sizes):
    """Stored entries of 16 real bytes each whose local and central headers *declare* the given uncompressed sizes
    (each < 4 GiB). The archive is tiny; a server must refuse it from the declared sizes (or at the latest when
    the real data does not match)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i, _ in enumerate(declared_sizes):
            zf.writestr(_info(f"f{i}.bin", zipfile.ZIP_STORED), bytes(16))
    data = bytearray(buf.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        infos = zf.infolist()
    # Central directory: locate each record by its signature and patch the uncompressed size (offset 24).
    cd_pos = data.find(b"PK\x01\x02")
    for want, zi in zip(declared_sizes, infos):
        assert data[cd_pos:cd_pos + 4] == b"PK\x01\x02"
        struct.pack_into("<I", data, cd_pos + 24, want)
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, cd_pos + 28)
        # Local header of the same entry: uncompressed size at offset 22.
        struct.pack_into("<I", data, zi.header_offset + 22, want)
        cd_pos += 46 + name_len + extra_len + comment_len
    out = bytes(data)
    with zipfile.ZipFile(io.BytesIO(out)) as zf:
        assert [zi.file_size for zi in zf.infolist()] == list(declared_sizes)
    return out


_BOMB_CACHE = {}


def deflate_bomb(total_bytes):
    """An honest, highly compressible deflate entry of `total_bytes` zeros (about 1/1000 of that on disk)."""
    if total_bytes not in _BOMB_CACHE:
        buf = io.BytesIO()
        chunk = bytes(1 << 20)
        with zipfile.ZipFile(buf, "w", allowZip64=True) as zf:
            zf.writestr(_info("index.py"), INDEX_PY)
            with zf.open(_info("zeros.bin"), "w", force_zip64=True) as f:
                left = total_bytes
                while left:
                    n = min(left, len(chunk))
                    f.write(chunk[:n])
                    left -= n
        _BOMB_CACHE[total_bytes] = buf.getvalue()
    return _BOMB_CACHE[total_bytes]


def many_entries_zip(n):
    """n tiny stored entries (zip64 end records when n > 65535)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", allowZip64=True) as zf:
        for i in range(n):
            zf.writestr(_info(f"{i:x}", zipfile.ZIP_STORED), b"")
    return buf.getvalue()


def zip_of_exact_size(size, name="blob.bin", seed=1):
    """A valid single-entry stored zip of exactly `size` bytes (incompressible content)."""
    overhead = len(make_zip({name: b""}, zipfile.ZIP_STORED))
    payload_len = size - overhead
    assert payload_len >= 0, f"size {size} is below the zip overhead {overhead}"
    payload = random.Random(seed).randbytes(payload_len)
    out = make_zip({name: payload}, zipfile.ZIP_STORED)
    assert len(out) == size, (len(out), size)
    return out


def random_zip(approx_size, seed=7):
    """A valid package of roughly `approx_size` incompressible bytes."""
    return make_zip({"index.py": INDEX_PY, "blob.bin": random.Random(seed).randbytes(approx_size)},
                    zipfile.ZIP_STORED)


def is_zip(data):
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return zf.testzip() is None
    except zipfile.BadZipFile:
        return False


__all__ = [n for n in dir() if not n.startswith("_") and n not in ("io", "os", "random", "struct", "zipfile")]
