"""Pagination (spec section 6) for ListServices and ListFunctions, on both backends.

Every test lists under its own unique prefix, so services made by other tests never show up.
"""

import pytest

from helpers import assert_ok, b64, unique
from sdk import CLIENTS, api, walk_pages
import zips

PKG = zips.code_zip("pagination")


def make_services(server, names):
    a = api(server, "raw16")
    for n in names:
        a.create_service({"serviceName": n})
    return sorted(names)


@pytest.fixture(scope="module")
def ten(server):
    """10 services p_00..p_09 under a unique prefix."""
    prefix = unique("pg") + "_"
    return prefix, make_services(server, [f"{prefix}{i:02d}" for i in range(10)])


def names_of(body, key="services", name_key="serviceName"):
    assert key in body, body
    return [x[name_key] for x in body[key]]


def walk(a, limit, prefix, startKey=None):
    pages = walk_pages(lambda token: a.list_services(limit=limit, prefix=prefix, nextToken=token,
                                                     startKey=None if token else startKey).body, "services")
    return [[x["serviceName"] for x in page] for page in pages]


@pytest.mark.parametrize("client", CLIENTS)
def test_ten_items_limit_three_is_exactly_four_pages(server, ten, client):
    prefix, names = ten
    pages = walk(api(server, client), 3, prefix)
    assert [len(p) for p in pages] == [3, 3, 3, 1]
    assert sum(pages, []) == names


def test_last_page_has_no_next_token(server, ten):
    prefix, names = ten
    body = assert_ok(server.raw.get("/services", params={"prefix": prefix, "limit": 10}))
    assert names_of(body) == names
    assert body.get("nextToken") is None, body
    body = assert_ok(server.raw.get("/services", params={"prefix": prefix, "limit": 9}))
    assert len(body["services"]) == 9
    assert body.get("nextToken"), body


def test_exact_multiple_of_limit(server, ten):
    """10 items, limit 5: two full pages; whether page 2 carries a token, page 3 (if any) is empty."""
    prefix, names = ten
    a = api(server, "raw16")
    pages = walk(a, 5, prefix)
    assert sum(pages, []) == names
    assert pages[:2] == [names[:5], names[5:]]
    assert pages[2:] in ([], [[]])


@pytest.mark.parametrize("client", ["fc2", "fc21", "raw21"])
def test_default_limit_is_20(server, client):
    prefix = unique("pgdef") + "_"
    names = make_services(server, [f"{prefix}{i:02d}" for i in range(25)])
    a = api(server, client)
    first = a.list_services(prefix=prefix).body
    assert names_of(first) == names[:20]
    assert first.get("nextToken")
    second = a.list_services(prefix=prefix, nextToken=first["nextToken"]).body
    assert names_of(second) == names[20:]
    assert second.get("nextToken") is None
    everything = a.list_services(prefix=prefix, limit=100).body
    assert names_of(everything) == names
    assert everything.get("nextToken") is None


def test_prefix_filters(server, ten):
    prefix, names = ten
    a = api(server, "fc2")
    assert names_of(a.list_services(prefix=prefix + "0").body) == names
    assert names_of(a.list_services(prefix=prefix + "05").body) == [prefix + "05"]
    assert names_of(a.list_services(prefix=prefix + "1").body) == []


@pytest.mark.parametrize("client", ["fc2", "fc21", "raw16"])
def test_start_key_is_inclusive(server, ten, client):
    prefix, names = ten
    a = api(server, client)
    assert names_of(a.list_services(prefix=prefix, startKey=prefix + "03").body) == names[3:]
    # Between two names: starts at the next one.
    assert names_of(a.list_services(prefix=prefix, startKey=prefix + "03x").body) == names[4:]
    # With a limit.
    body = a.list_services(prefix=prefix, startKey=prefix + "03", limit=2).body
    assert names_of(body) == names[3:5]
    assert body.get("nextToken")
    # Past the end.
    assert names_of(a.list_services(prefix=prefix, startKey=prefix + "99").body) == []


def test_start_key_is_ignored_with_next_token(server, ten):
    prefix, names = ten
    a = api(server, "raw16")
    first = a.list_services(prefix=prefix, limit=3).body
    second = a.list_services(prefix=prefix, limit=3, nextToken=first["nextToken"], startKey=prefix + "08").body
    assert names_of(second) == names[3:6]


def test_prefix_still_applies_with_next_token(server, ten):
    prefix, names = ten
    a = api(server, "raw16")
    first = a.list_services(prefix=prefix, limit=3).body
    assert first.get("nextToken")
    assert names_of(a.list_services(prefix="x", nextToken=first["nextToken"]).body) == []
    assert names_of(a.list_services(prefix=prefix + "0", nextToken=first["nextToken"], limit=3).body) == names[3:6]


@pytest.mark.parametrize("client", CLIENTS)
def test_empty_list_has_the_key_and_no_token(server, client):
    body = api(server, client).list_services(prefix=unique("nothing")).body
    assert body.get("services") == [], body
    assert body.get("nextToken") is None


def test_order_is_byte_order(server):
    """Names sort by bytes ('-' < 'A'..'Z' < '_' < 'a'..'z'), not by a locale collation."""
    prefix = unique("pgord")
    suffixes = ["a", "B", "_x", "-y", "A", "b", "Z9", "z", "_", "a-b", "a_b", "aB", "ab"]
    names = [prefix + s for s in suffixes]
    make_services(server, names)
    expected = sorted(names, key=lambda n: n.encode())
    assert names_of(api(server, "raw16").list_services(prefix=prefix).body) == expected
    assert sum(walk(api(server, "raw16"), 4, prefix), []) == expected


@pytest.fixture(scope="module")
def fn_svc(server):
    """A service with functions f_0..f_4 and g_0, g_1."""
    svc = unique("pgfn")
    a = api(server, "raw16")
    a.create_service({"serviceName": svc})
    names = [f"f_{i}" for i in range(5)] + ["g_0", "g_1"]
    for n in names:
        a.create_function(svc, {"functionName": n, "runtime": "python3.10", "handler": "index.handler",
                                "code": {"zipFile": b64(PKG)}})
    return svc, sorted(names)


@pytest.mark.parametrize("client", CLIENTS)
def test_list_functions_pagination(server, fn_svc, client):
    svc, names = fn_svc
    a = api(server, client)
    pages = walk_pages(lambda token: a.list_functions(svc, prefix="f_", limit=2, nextToken=token).body, "functions",
                       max_pages=10)
    assert [[x["functionName"] for x in page] for page in pages] == [["f_0", "f_1"], ["f_2", "f_3"], ["f_4"]]
    assert names_of(a.list_functions(svc).body, "functions", "functionName") == names
    assert names_of(a.list_functions(svc, startKey="f_3").body, "functions", "functionName") == \
        ["f_3", "f_4", "g_0", "g_1"]
    assert names_of(a.list_functions(svc, prefix="g").body, "functions", "functionName") == ["g_0", "g_1"]
    assert names_of(a.list_functions(svc, prefix="h").body, "functions", "functionName") == []
