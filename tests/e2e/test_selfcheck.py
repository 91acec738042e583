"""The suite's own tools, checked against the spec's vectors (no server needed)."""

import io
import zipfile

import pytest

import rawsign
import zips
from crc64 import crc64, crc64_str


@pytest.mark.parametrize("data, expected", [
    (b"", 0),
    (b"hello world", 5981764153023615706),
    (b"123456789", 11051210869376104954),
])
def test_crc64_xz_vectors(data, expected):
    assert crc64(data) == expected
    assert crc64_str(data) == str(expected)


def test_crc64_continues_over_concatenation():
    assert crc64(b" world", crc64(b"hello")) == crc64(b"hello world")


def test_fc_signer_matches_spec_vectors():
    a, b, d = rawsign.check_vectors()
    assert a == "FC LTAI5tTestAccessKey:gpPuHnyRAf4CW/1q/SRL20IoweSBw41UpSKfNW16R+Q="
    assert b == "FC LTAI5tTestAccessKey:DjJ+tZG3FodvRh+espDG2zuPtHGIwAftgV6D95LxCnw="
    assert d == "FC LTAI5tTestAccessKey:5k1Yxgut/NkKdI8N1a2Omtiq0VrHHWKWlBgPvggoNAs="


def test_fc_signer_matches_the_fc2_sdk():
    from fc2 import auth
    headers = {"content-type": "application/json", "date": "Mon, 02 Jan 2006 15:04:05 GMT",
               "x-fc-trace-id": "t1", "if-match": "abc"}
    path = "/2016-08-15/services/svc.LATEST/functions/f"
    assert rawsign.authorization("ak", "sk", "PUT", path, headers) == \
        auth.Auth("ak", "sk").sign_request("PUT", path, headers)


@pytest.mark.parametrize("name", ["/etc/x", "../x", "a/../../x"])
def test_zip_with_hostile_entry_name_keeps_the_raw_name(name):
    assert name in zips.entry_names(zips.zip_with_entry_name(name))


def test_symlink_zip_has_a_symlink_mode():
    data = zips.symlink_zip()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.getinfo("link").external_attr >> 16 == 0o120777


def test_declared_size_zip_declares_the_sizes():
    data = zips.declared_size_zip([0xFFFFFFF0])
    assert len(data) < 1024
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.infolist()[0].file_size == 0xFFFFFFF0


def test_identical_packages_are_byte_identical():
    assert zips.code_zip("a") == zips.code_zip("a")
    assert zips.code_zip("a") != zips.code_zip("b")
    assert zips.is_zip(zips.code_zip("a"))


@pytest.mark.parametrize("size", [200, 4096, 4097])
def test_zip_of_exact_size(size):
    data = zips.zip_of_exact_size(size)
    assert len(data) == size and zips.is_zip(data)
