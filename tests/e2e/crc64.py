"""CRC-64/XZ (a.k.a. CRC-64/GO-ECMA, OSS `x-oss-hash-crc64ecma`), spec fc-api.md section 7.

Reflected polynomial 0xC96C5795D7870F42, init and xorout all ones, result as an unsigned decimal string.
Pure Python, table driven; fine for the small packages the tests upload.
"""

_POLY = 0xC96C5795D7870F42
_MASK = 0xFFFFFFFFFFFFFFFF


def _make_table():
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _make_table()


def crc64(data: bytes, crc: int = 0) -> int:
    """CRC-64/XZ of `data`; pass a previous result as `crc` to continue over concatenated input."""
    crc ^= _MASK
    table = _TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ _MASK


def crc64_str(data: bytes) -> str:
    """The wire form: unsigned decimal, no padding."""
    return str(crc64(data))
