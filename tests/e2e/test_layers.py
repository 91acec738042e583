"""Layers (spec 5.10): CreateLayerVersion from a zip or the embedded OSS, the Layer object, the code download,
ListLayers / ListLayerVersions, Get by name and by ARN (V1 and V2), delete, PutLayerACL, package validation and
functions naming layers; on both backends. aliyun-fc2 (Python) has no layer methods, so /2016-08-15 is raw."""

import re
import uuid
from urllib.parse import quote

import pytest

import zips
from crc64 import crc64_str
from helpers import assert_recent, b64, unique
from resources_helpers import download, err, new_function, new_service, ok, update_function, wait_for_gc
from sdk import expect_api_error, present, raw_for, tea_call, tea_models, walk_pages

PKG = zips.make_zip({"python/lib/helper.py": b"X = 1\n", "README": b"layer one\n"})
PKG2 = zips.make_zip({"python/lib/helper.py": b"X = 2\n", "README": b"layer two, longer\n" * 5})
RUNTIMES = ["python3.10", "python3.9"]
LAYER_KEYS = {"layerName", "version", "description", "code", "codeSize", "codeChecksum", "createTime", "acl",
              "compatibleRuntime", "arn", "arnV2", "license"}


def layer_name(prefix="layer"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_raw(server, name, pkg=PKG, client="raw16", code_key="code", **fields):
    body = {code_key: {"zipFile": b64(pkg)}, "compatibleRuntime": RUNTIMES, **fields}
    return raw_for(server, client).post(f"/layers/{name}/versions", json=body)


def create(server, name, pkg=PKG, **fields):
    return ok(create_raw(server, name, pkg, **fields))


def arn_v2(server, name, version):
    return f"acs:fc:{server.region}:{server.account_id}:layers/{name}/versions/{version}"


def assert_layer(server, layer, name, version, pkg, description="", runtimes=RUNTIMES):
    assert layer["layerName"] == name
    assert layer["version"] == version and isinstance(layer["version"], int), layer["version"]
    assert layer["description"] == description
    assert layer["code"]["repositoryType"] == "OSS"
    assert layer["codeSize"] == len(pkg)
    assert layer["codeChecksum"] == crc64_str(pkg)
    assert_recent(layer["createTime"])
    assert layer["acl"] == 0
    assert layer["compatibleRuntime"] == runtimes
    assert re.fullmatch(r"[0-9a-f]{32}#" + re.escape(name) + f"#{version}", layer["arn"]), layer["arn"]
    assert layer["arnV2"] == arn_v2(server, name, version)


# --- create -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("client, code_key", [("raw16", "code"), ("raw16", "Code"), ("raw21", "code"),
                                              ("raw21", "Code")])
def test_create_layer_version(server, client, code_key):
    name = layer_name()
    layer = create(server, name, client=client, code_key=code_key, description="helpers", license="MIT")
    assert LAYER_KEYS <= set(layer), LAYER_KEYS - set(layer)
    assert_layer(server, layer, name, 1, PKG, description="helpers")
    assert layer["license"] == "MIT"
    data = download(layer["code"]["location"])
    assert data == PKG
    assert crc64_str(data) == layer["codeChecksum"]


def test_create_layer_version_with_the_2021_sdk(server):
    m = tea_models()
    name = layer_name()
    r = tea_call(server.fc21.create_layer_version, name, m.CreateLayerVersionRequest(
        code=m.Code(zip_file=b64(PKG2)), compatible_runtime=["nodejs14"], description="from tea"))
    body = r.body
    assert r.status == 200
    assert (body["layerName"], body["version"], body["description"]) == (name, 1, "from tea")
    assert body["codeChecksum"] == crc64_str(PKG2)
    assert body["codesize"] == len(PKG2)  # the 2021 model's spelling for CreateLayerVersion
    assert body["compatibleRuntime"] == ["nodejs14"]
    assert body["acl"] == 0
    assert body["code"]["repositoryType"] == "OSS"
    assert download(body["code"]["location"]) == PKG2
    got = tea_call(server.fc21.get_layer_version, name, "1").body
    assert got["arnV2"] == arn_v2(server, name, 1)
    assert got["codeSize"] == len(PKG2)


def test_create_layer_version_from_the_embedded_oss(server):
    bucket = "layers-" + uuid.uuid4().hex[:10]
    server.put_oss_object(bucket, "pkg/layer.zip", PKG2)
    name = layer_name()
    layer = ok(server.raw.post(f"/layers/{name}/versions", json={
        "code": {"ossBucketName": bucket, "ossObjectName": "pkg/layer.zip"}, "compatibleRuntime": RUNTIMES}))
    assert_layer(server, layer, name, 1, PKG2)
    assert download(layer["code"]["location"]) == PKG2


def test_layer_versions_count_up_and_are_never_reused(server):
    name = layer_name()
    assert create(server, name)["version"] == 1
    assert create(server, name, pkg=PKG2)["version"] == 2
    ok(server.raw.delete(f"/layers/{name}/versions/2"), 204)
    third = create(server, name)
    assert third["version"] == 3
    assert third["arnV2"] == arn_v2(server, name, 3)
    versions = ok(server.raw.get(f"/layers/{name}/versions"))["layers"]
    assert [v["version"] for v in versions] == [1, 3]


BAD_PACKAGES = {
    "zipFile not base64": {"code": {"zipFile": "%%% not base64 %%%"}, "compatibleRuntime": RUNTIMES},
    "not a zip": {"code": {"zipFile": b64(b"plain text, no zip")}, "compatibleRuntime": RUNTIMES},
    "no compatibleRuntime": {"code": {"zipFile": b64(PKG)}},
    "no code": {"compatibleRuntime": RUNTIMES},
    "missing OSS object": {"code": {"ossBucketName": "no-such-bucket-e2e", "ossObjectName": "x.zip"},
                           "compatibleRuntime": RUNTIMES},
    "symlink escaping the package": {"code": {"zipFile": b64(zips.symlink_zip())}, "compatibleRuntime": RUNTIMES},
}


@pytest.mark.parametrize("client", ["raw16", "raw21"])
@pytest.mark.parametrize("case", list(BAD_PACKAGES))
def test_invalid_layer_packages(server, client, case):
    name = layer_name()
    err(raw_for(server, client).post(f"/layers/{name}/versions", json=BAD_PACKAGES[case]), 400, "InvalidArgument")
    err(server.raw.get(f"/layers/{name}/versions"), 404, "LayerNotFound")


@pytest.mark.parametrize("backend_name", ["sqlite", "postgres"])
def test_layer_packages_survive_garbage_collection(start_server, backend_name):
    s = start_server(args=["--gc-interval", "1", "--gc-grace", "1"], backend=backend_name)
    name = layer_name("gc")
    create(s, name, pkg=PKG)
    create(s, name, pkg=PKG2)
    # Leave one unreferenced function package behind so that we can see the collector work.
    svc = new_service(s, "lgc")
    fn, _ = new_function(s, svc, pkg=zips.code_zip("layer-gc-1"))
    update_function(s, svc, fn, code={"zipFile": b64(zips.code_zip("layer-gc-2"))})
    wait_for_gc(s)
    for version, pkg in ((1, PKG), (2, PKG2)):
        layer = ok(s.raw.get(f"/layers/{name}/versions/{version}"))
        assert download(layer["code"]["location"]) == pkg


# --- get / by ARN / delete ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two(server):
    """A layer with versions 1 (PKG) and 2 (PKG2)."""
    name = layer_name("two")
    v1 = create(server, name, description="one")
    v2 = create(server, name, pkg=PKG2, description="two")
    return name, v1, v2


@pytest.mark.parametrize("client", ["raw16", "raw21", "fc21"])
def test_get_layer_version(server, two, client):
    name, _, v2 = two
    if client == "fc21":
        got = tea_call(server.fc21.get_layer_version, name, "2").body
    else:
        got = ok(raw_for(server, client).get(f"/layers/{name}/versions/2"))
    assert_layer(server, got, name, 2, PKG2, description="two")
    for k in ("arn", "arnV2", "codeChecksum", "createTime"):
        assert got[k] == v2[k], k
    assert download(got["code"]["location"]) == PKG2


@pytest.mark.parametrize("client", ["raw16", "raw21"])
@pytest.mark.parametrize("form", ["v2", "v1"])
def test_get_layer_version_by_arn(server, two, client, form):
    name, v1, _ = two
    arn = v1["arnV2"] if form == "v2" else v1["arn"]
    got = ok(raw_for(server, client).get(f"/layerarn/{quote(arn, safe='')}"))
    assert_layer(server, got, name, 1, PKG, description="one")
    assert got["arn"] == v1["arn"]


@pytest.mark.parametrize("client", ["raw16", "raw21"])
def test_get_layer_version_by_arn_of_a_missing_version(server, two, client):
    name, v1, _ = two
    arn = arn_v2(server, name, 99)
    err(raw_for(server, client).get(f"/layerarn/{quote(arn, safe='')}"), 404, "LayerVersionNotFound")
    v1_arn = v1["arn"].rsplit("#", 1)[0] + "#99"
    err(raw_for(server, client).get(f"/layerarn/{quote(v1_arn, safe='')}"), 404, "LayerVersionNotFound")


@pytest.mark.parametrize("client", ["raw16", "raw21"])
def test_get_unknown_layer_version(server, two, client):
    name, _, _ = two
    err(raw_for(server, client).get(f"/layers/{name}/versions/99"), 404, "LayerVersionNotFound")
    # A layer that does not exist at all: its version does not exist either.
    r = raw_for(server, client).get(f"/layers/{layer_name('none')}/versions/1")
    assert r.status_code == 404, r.text
    assert r.json()["ErrorCode"] in ("LayerVersionNotFound", "LayerNotFound"), r.text


@pytest.mark.parametrize("client", ["raw16", "raw21", "fc21"])
def test_delete_layer_version(server, client):
    name = layer_name()
    create(server, name)
    create(server, name, pkg=PKG2)
    if client == "fc21":
        assert tea_call(server.fc21.delete_layer_version, name, "1").status == 204
    else:
        ok(raw_for(server, client).delete(f"/layers/{name}/versions/1"), 204)
    err(server.raw.get(f"/layers/{name}/versions/1"), 404, "LayerVersionNotFound")
    err(server.raw.delete(f"/layers/{name}/versions/1"), 404, "LayerVersionNotFound")
    assert [v["version"] for v in ok(server.raw.get(f"/layers/{name}/versions"))["layers"]] == [2]
    assert ok(server.raw.get(f"/layers/{name}/versions/2"))["codeChecksum"] == crc64_str(PKG2)


# --- list ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def family(server):
    """Under a unique prefix: <p>a (versions 1, 2), <p>b (1), <p>c (1, public)."""
    p = f"fam{uuid.uuid4().hex[:8]}-"
    create(server, p + "a", description="a1")
    create(server, p + "a", pkg=PKG2, description="a2")
    create(server, p + "b", description="b1")
    create(server, p + "c", description="c1")
    r = server.raw.put(f"/layers/{p}c/acl", params={"public": "true"})
    assert r.status_code == 200, r.text
    return p


def names_versions(layers):
    return [(x["layerName"], x["version"]) for x in layers]


@pytest.mark.parametrize("client", ["raw16", "raw21", "fc21"])
def test_list_layers_shows_the_newest_version_of_each(server, family, client):
    p = family
    if client == "fc21":
        body = tea_call(server.fc21.list_layers, tea_models().ListLayersRequest(prefix=p)).body
    else:
        body = ok(raw_for(server, client).get("/layers", params={"prefix": p}))
    assert names_versions(body["layers"]) == [(p + "a", 2), (p + "b", 1), (p + "c", 1)]
    assert [x["description"] for x in body["layers"]] == ["a2", "b1", "c1"]
    assert body.get("nextToken") is None


def test_list_layers_pages(server, family):
    p = family
    pages = walk_pages(lambda token: ok(server.raw.get("/layers", params=present(prefix=p, limit=2, nextToken=token))),
                       "layers", max_pages=10)
    assert [[x["layerName"] for x in page] for page in pages] == [[p + "a", p + "b"], [p + "c"]]


def test_list_layers_start_key(server, family):
    p = family
    body = ok(server.raw.get("/layers", params={"prefix": p, "startKey": p + "b"}))
    assert names_versions(body["layers"]) == [(p + "b", 1), (p + "c", 1)]


@pytest.mark.parametrize("official", ["true", "True"])
def test_list_official_layers_is_empty(server, family, official):
    assert ok(server.raw.get("/layers", params={"official": official}))["layers"] == []
    assert ok(server.raw.get("/layers", params={"official": official, "prefix": family}))["layers"] == []


def test_list_official_layers_with_the_2021_sdk(server, family):
    m = tea_models()
    assert tea_call(server.fc21.list_layers, m.ListLayersRequest(official=True)).body["layers"] == []


@pytest.mark.parametrize("client", ["raw16", "raw21", "fc21"])
def test_list_public_layers(server, family, client):
    p = family
    if client == "fc21":
        body = tea_call(server.fc21.list_layers, tea_models().ListLayersRequest(prefix=p, public=True)).body
    else:
        body = ok(raw_for(server, client).get("/layers", params={"prefix": p, "public": "true"}))
    assert names_versions(body["layers"]) == [(p + "c", 1)]
    assert body["layers"][0]["acl"] == 1


@pytest.fixture(scope="module")
def three(server):
    name = layer_name("three")
    for pkg in (PKG, PKG2, PKG):
        create(server, name, pkg=pkg)
    return name


@pytest.mark.parametrize("client", ["raw16", "raw21", "fc21"])
@pytest.mark.parametrize("limit, start, versions, next_version", [
    (None, None, [1, 2, 3], None),
    (2, None, [1, 2], 3),
    (2, 3, [3], None),
    (1, 2, [2], 3),
    (5, 2, [2, 3], None),
])
def test_list_layer_versions(server, three, client, limit, start, versions, next_version):
    if client == "fc21":
        body = tea_call(server.fc21.list_layer_versions, three, tea_models().ListLayerVersionsRequest(
            limit=limit, start_version=start)).body
    else:
        params = {k: v for k, v in {"limit": limit, "startVersion": start}.items() if v is not None}
        body = ok(raw_for(server, client).get(f"/layers/{three}/versions", params=params))
    assert [x["version"] for x in body["layers"]] == versions
    assert body.get("nextVersion") == next_version
    assert all(x["layerName"] == three for x in body["layers"])


@pytest.mark.parametrize("client", ["raw16", "raw21"])
def test_list_versions_of_an_unknown_layer(server, client):
    err(raw_for(server, client).get(f"/layers/{layer_name('none')}/versions"), 404, "LayerNotFound")


# --- ACL ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("client", ["raw16", "raw21"])
@pytest.mark.parametrize("on, off", [("true", "false"), ("TRUE", "False")])
def test_put_layer_acl(server, client, on, off):
    name = layer_name()
    create(server, name)
    raw = raw_for(server, client)
    r = raw.put(f"/layers/{name}/acl", params={"public": on})
    assert r.status_code == 200, r.text
    assert ok(raw.get(f"/layers/{name}/versions/1"))["acl"] == 1
    r = raw.put(f"/layers/{name}/acl", params={"public": off})
    assert r.status_code == 200, r.text
    assert ok(raw.get(f"/layers/{name}/versions/1"))["acl"] == 0


def test_put_layer_acl_with_the_2021_sdk(server):
    m = tea_models()
    name = layer_name()
    create(server, name)
    assert tea_call(server.fc21.put_layer_acl, name, m.PutLayerACLRequest(public=True)).status == 200
    assert ok(server.raw.get(f"/layers/{name}/versions/1"))["acl"] == 1
    assert tea_call(server.fc21.put_layer_acl, name, m.PutLayerACLRequest(public=False)).status == 200
    assert ok(server.raw.get(f"/layers/{name}/versions/1"))["acl"] == 0


def test_put_acl_of_an_unknown_layer(server):
    err(server.raw.put(f"/layers/{layer_name('none')}/acl", params={"public": "true"}), 404, "LayerNotFound")
    m = tea_models()
    expect_api_error(404, "LayerNotFound", tea_call, server.fc21.put_layer_acl, layer_name("none"),
                     m.PutLayerACLRequest(public=True))


@pytest.mark.parametrize("value", ["maybe", "1", "yes"])
def test_put_layer_acl_invalid_value(server, value):
    name = layer_name()
    create(server, name)
    err(server.raw.put(f"/layers/{name}/acl", params={"public": value}), 400, "InvalidArgument")
    assert ok(server.raw.get(f"/layers/{name}/versions/1"))["acl"] == 0


# --- functions naming layers --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fsvc(server):
    return new_service(server, "lyrsvc")


def fn_body(layers):
    return {"functionName": unique("fn"), "runtime": "python3.10", "handler": "index.handler",
            "code": {"zipFile": b64(zips.code_zip("layers"))}, "layers": layers}


@pytest.mark.parametrize("client", ["raw16", "raw21"])
def test_function_with_existing_layers(server, two, fsvc, client):
    name, v1, v2 = two
    layers = [v2["arnV2"], v1["arnV2"]]
    raw = raw_for(server, client)
    f = ok(raw.post(f"/services/{fsvc}/functions", json=fn_body(layers)))
    assert f["layers"] == layers
    assert ok(raw.get(f"/services/{fsvc}/functions/{f['functionName']}"))["layers"] == layers
    u = ok(raw.put(f"/services/{fsvc}/functions/{f['functionName']}", json={"layers": [v1["arnV2"]]}))
    assert u["layers"] == [v1["arnV2"]]


@pytest.mark.parametrize("client", ["raw16", "raw21"])
@pytest.mark.parametrize("case", ["missing version", "missing layer", "another account", "not an arn"])
def test_function_with_a_missing_layer(server, two, fsvc, client, case):
    name, v1, _ = two
    bad = {
        "missing version": arn_v2(server, name, 99),
        "missing layer": arn_v2(server, layer_name("none"), 1),
        "another account": f"acs:fc:{server.region}:1111111111111111:layers/{name}/versions/1",
        "not an arn": "just-a-name",
    }[case]
    raw = raw_for(server, client)
    body = fn_body([v1["arnV2"], bad])
    err(raw.post(f"/services/{fsvc}/functions", json=body), 400, "InvalidArgument")
    err(raw.get(f"/services/{fsvc}/functions/{body['functionName']}"), 404, "FunctionNotFound")
    good = ok(raw.post(f"/services/{fsvc}/functions", json=fn_body([v1["arnV2"]])))
    err(raw.put(f"/services/{fsvc}/functions/{good['functionName']}", json={"layers": [bad]}), 400,
        "InvalidArgument")
    assert ok(raw.get(f"/services/{fsvc}/functions/{good['functionName']}"))["layers"] == [v1["arnV2"]]
