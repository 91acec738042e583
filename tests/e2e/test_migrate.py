"""`openfc migrate` (issue 10 item 4): an embedded data directory (SQLite + local code store), populated through
the official SDKs, copied into a fresh PostgreSQL database and S3 bucket; a node started on those with the same
master key answers the same (configurations, code checksums and bytes, invocations, the same AccessKey). Also:
a second run copies nothing, a run killed with SIGKILL is resumed by the next, rows missing from the target are
copied again, a row that differs in the target is refused (not overwritten), and the verification pass fails
when a package is gone from the bucket. Needs OPENFC_TEST_DATABASE_URL and OPENFC_TEST_S3_ENDPOINT."""

import json
import os
import re
import shutil
import sqlite3
import subprocess
import time

import pytest
import requests

from conftest import S3_KEY, S3_REGION, S3_SECRET, Server, create_pg_database, create_s3_bucket, openfc_bin, \
    psql_bin, require_external
from crc64 import crc64_str
from helpers import b64, unique
from invoke_helpers import py_zip
from resources_helpers import download
from sdk import tea_call, tea_models

pytestmark = pytest.mark.timeout(300)

ECHO_SRC = """
import json, os
def handler(event, context):
    p = "/opt/python/helper.py"
    layer = open(p).read() if os.path.exists(p) else None
    return json.dumps({"event": event.decode(), "version": "%s", "layer": layer})
"""
LAYER_PKG = py_zip("", module="README", **{"python/helper.py": "X = 'from the layer'\n"})
# moto refuses anonymous requests to objects; any (unverified) signature makes one authenticated.
S3_AUTH = {"Authorization": "AWS4-HMAC-SHA256 Credential=test/20200101/us-east-1/s3/aws4_request, "
                            "SignedHeaders=host, Signature=00"}


def fc2_zip(tmp, name, data):
    """aliyun-fc2 takes a zip file's path."""
    path = tmp / f"{name}.zip"
    path.write_bytes(data)
    return str(path)


def snapshot(srv, m):
    """Everything the SDKs read back about the populated resources, minus what names the server itself (signed
    URLs, its address); code checksums, and the bytes behind every code URL."""
    c, t = srv.fc2, srv.fc21
    out = {"services": {}, "functions": {}, "code": {}, "aliases": {}, "triggers": {}, "tags": {}}
    for svc in m["services"]:
        out["services"][svc] = c.get_service(svc).data
        out["aliases"][svc] = c.list_aliases(svc).data["aliases"]
        out["tags"][svc] = c.get_resource_tags(m["arns"][svc]).data["tags"]
        for fn in m["functions"][svc]:
            out["functions"][f"{svc}/{fn}"] = c.get_function(svc, fn).data
            out["triggers"][f"{svc}/{fn}"] = c.list_triggers(svc, fn).data["triggers"]
            for q in m["qualifiers"][svc]:
                code = c.get_function_code(svc, fn, qualifier=q).data
                data = download(code["url"])
                assert crc64_str(data) == code["checksum"], (svc, fn, q)
                out["code"][f"{svc}/{fn}@{q}"] = (code["checksum"], data)
    layer = tea_call(t.get_layer_version, m["layer"], "1").body
    out["layer"] = layer
    out["layer_bytes"] = download(layer["code"]["location"])
    out["invocations"] = {q: c.invoke_function(m["services"][0], "echo", payload=b"hello", qualifier=q).data.decode()
                          for q in ("LATEST", "1", "prod")}
    text = json.dumps(out, sort_keys=True, default=lambda b: b64(b))
    text = re.sub(r'"(url|location|urlInternet|urlIntranet)": "[^"]*"', r'"\1": "-"', text)
    return json.loads(text.replace(srv.endpoint_hostport, "HOST"))


@pytest.fixture(scope="module")
def source(server_factory, tmp_path_factory):
    """A stopped embedded node holding services, functions (zip code), a version, an alias, a trigger, a layer
    and tags; with the SDKs' view of all of it."""
    require_external()
    srv = server_factory.start("sqlite")
    tmp = tmp_path_factory.mktemp("migrate-src")
    c, tm = srv.fc2, tea_models()
    a, b = unique("mig_a"), unique("mig_b")
    layer = unique("miglayer")
    arns = {s: f"acs:fc:{srv.region}:{srv.account_id}:services/{s}" for s in (a, b)}
    c.create_service(a, description="migrated service A")
    c.create_service(b, description="migrated service B", internetAccess=False)
    lv = tea_call(srv.fc21.create_layer_version, layer, tm.CreateLayerVersionRequest(
        code=tm.Code(zip_file=b64(LAYER_PKG)), compatible_runtime=["python3.10"], description="helpers")).body
    tea_call(srv.fc21.create_function, a, tm.CreateFunctionRequest(
        function_name="echo", runtime="python3.10", handler="index.handler", memory_size=128,
        code=tm.Code(zip_file=b64(py_zip(ECHO_SRC % "v1"))), layers=[lv["arn"]],
        environment_variables={"STAGE": "one"}))
    c.create_function(a, "other", "python3.10", "index.handler", codeZipFile=fc2_zip(tmp, "o", py_zip(ECHO_SRC % "o")))
    c.create_function(b, "plain", "python3.10", "index.handler", codeZipFile=fc2_zip(tmp, "p", py_zip(ECHO_SRC % "p")),
                      description="in service B")
    assert c.publish_version(a, description="first").data["versionId"] == "1"
    c.create_alias(a, "prod", "1", description="production")
    c.update_function(a, "echo", codeZipFile=fc2_zip(tmp, "e2", py_zip(ECHO_SRC % "v2")))
    c.create_trigger(a, "echo", "web", "http", {"authType": "anonymous", "methods": ["GET", "POST"]}, None, None)
    c.tag_resource(arns[a], {"env": "prod", "team": "fc"})
    c.tag_resource(arns[b], {"env": "dev"})
    m = {"services": [a, b], "arns": arns, "layer": layer, "functions": {a: ["echo", "other"], b: ["plain"]},
         "qualifiers": {a: ["LATEST", "1", "prod"], b: ["LATEST"]}}
    m["expected"] = snapshot(srv, m)
    inv = m["expected"]["invocations"]
    assert '"v2"' in inv["LATEST"] and '"v1"' in inv["prod"] and "from the layer" in inv["prod"], inv
    srv.stop()
    yield srv, m
    srv.close()


def target():
    return create_pg_database(), create_s3_bucket()


def migrate_cmd(src, db, bucket, *extra):
    """`src`: a Server (its data dir) or a data dir."""
    data_dir = getattr(src, "data_dir", src)
    return [str(openfc_bin()), "migrate", "--from", str(data_dir), "--database-url", db,
            "--code-store", f"s3://{bucket}", "--s3-endpoint", os.environ["OPENFC_TEST_S3_ENDPOINT"],
            "--s3-region", S3_REGION, "--s3-access-key-id", S3_KEY, "--s3-secret-access-key", S3_SECRET, *extra]


def clean_env():
    return {k: v for k, v in os.environ.items() if not k.startswith("OPENFC_")}


def migrate(src, db, bucket, *extra, ok=True):
    p = subprocess.run(migrate_cmd(src, db, bucket, *extra), capture_output=True, text=True, timeout=240,
                       env=clean_env())
    if ok:
        assert p.returncode == 0, f"migrate -> {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p


def copied(out):
    """(rows copied, rows present, objects copied, objects present) from migrate's summary."""
    rows = re.search(r"^rows: (\d+) copied, (\d+) already in the database", out, re.M)
    objs = re.search(r"^code objects: (\d+) copied \([^)]*\), (\d+) already in the bucket", out, re.M)
    assert rows and objs, out
    return int(rows[1]), int(rows[2]), int(objs[1]), int(objs[2])


def psql(db, sql):
    p = subprocess.run([psql_bin(), db, "-qAtc", sql], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def delete_object(bucket, key):
    r = requests.delete(f"{os.environ['OPENFC_TEST_S3_ENDPOINT']}/{bucket}/{key}", headers=S3_AUTH, timeout=30)
    assert r.status_code == 204, (r.status_code, r.text)


def node_on(src, db, bucket, workdir):
    """A node on the migrated database and bucket, with the source's master key (by --master-key-file) and its
    AccessKey (the same credentials.json). Built as a sqlite Server so that it makes no database of its own."""
    node = Server("sqlite", workdir, args=["--master-key-file", str(src.data_dir / "master.key")],
                  name="openfc-migrated")
    node.database_url, node.bucket, node.s3_endpoint = db, bucket, os.environ["OPENFC_TEST_S3_ENDPOINT"]
    shutil.copy(src.data_dir / "credentials.json", node.data_dir / "credentials.json")
    return node.start()


def test_migrated_node_reads_back_the_same(source, tmp_path):
    src, m = source
    db, bucket = target()
    first = migrate(src, db, bucket)
    rows, present, objs, objs_present = copied(first.stdout)
    assert rows > 0 and present == 0 and objs_present == 0, first.stdout
    # Five distinct packages: echo v1 (in version 1) and v2, other, plain, the layer.
    assert objs == 5, first.stdout
    assert "verification passed" in first.stdout, first.stdout
    assert re.search(r"verified: 3 functions, 2 function versions, 1 layer versions: 5 code objects", first.stdout), first.stdout
    assert "_sqlx_migrations" in first.stdout and "skipped" in first.stdout, first.stdout
    key = (src.data_dir / "master.key").resolve()
    assert "--master-key-file" in first.stdout and str(key) in first.stdout, first.stdout
    assert "s3://" + bucket in first.stdout

    again = migrate(src, db, bucket)
    assert copied(again.stdout) == (0, rows, 0, objs), again.stdout
    assert "nothing new" in again.stdout, again.stdout

    # A cluster of two nodes on the migrated database and bucket: each reads back the same.
    node = node_on(src, db, bucket, tmp_path / "node")
    other = node_on(src, db, bucket, tmp_path / "node-b")
    try:
        for n in (node, other):
            health = requests.get(f"{n.endpoint}/health", timeout=10).json()
            assert (health["database"], health["codeStore"]) == ("postgres", f"s3://{bucket}"), health
            got = snapshot(n, m)
            assert got == m["expected"]
        # The code lives in the bucket now: the node's data dir holds none.
        assert not (node.data_dir / "code").exists() or not any((node.data_dir / "code").rglob("*.zip"))
        # The migrated root AccessKey signs writes too (its sealed secret was opened with the same master key),
        # and the other node sees the write.
        node.fc2.update_function(m["services"][0], "other", description="after")
        assert node.fc2.get_function(m["services"][0], "other").data["description"] == "after"
        deadline = time.time() + 2
        while other.fc2.get_function(m["services"][0], "other").data["description"] != "after":
            assert time.time() < deadline, "the other node did not see the write"
            time.sleep(0.01)
    finally:
        node.close()
        other.close()


def test_a_killed_migrate_is_resumed(source):
    src, _ = source
    db, bucket = target()
    # SIGKILL at a few points of a run (wherever it is by then), each run resuming what the one before left.
    for delay in (0.2, 0.5, 1.0):
        p = subprocess.Popen(migrate_cmd(src, db, bucket), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=clean_env())
        time.sleep(delay)
        p.kill()
        p.wait(timeout=30)
    done = migrate(src, db, bucket)
    assert "verification passed" in done.stdout, done.stdout
    rows, present, objs, objs_present = copied(done.stdout)
    total_rows, total_objs = rows + present, objs + objs_present

    # What a run cut short between batches leaves: some rows (children and parents) and an object missing.
    removed = 0
    for table, where in [("version_functions", "true"), ("layer_versions", "true"),
                         ("documents", "key IN (SELECT key FROM documents ORDER BY key LIMIT 3)")]:
        removed += int(psql(db, f"WITH d AS (DELETE FROM {table} WHERE {where} RETURNING 1) SELECT count(*) FROM d"))
    assert removed >= 4
    obj = psql(db, "SELECT code_key FROM functions WHERE name = 'other'")
    delete_object(bucket, obj)
    resumed = migrate(src, db, bucket)
    assert copied(resumed.stdout) == (removed, total_rows - removed, 1, total_objs - 1), resumed.stdout
    assert "verification passed" in resumed.stdout, resumed.stdout
    assert copied(migrate(src, db, bucket).stdout) == (0, total_rows, 0, total_objs)


def test_a_different_row_in_the_target_is_refused(source):
    src, m = source
    db, bucket = target()
    migrate(src, db, bucket)
    svc = m["services"][1]
    psql(db, f"UPDATE services SET etag = 'changed-elsewhere' WHERE name = '{svc}'")
    p = migrate(src, db, bucket, ok=False)
    assert p.returncode != 0, p.stdout
    assert "table services" in p.stderr and svc in p.stderr and "etag" in p.stderr, p.stderr
    assert "nothing was overwritten" in p.stderr, p.stderr
    assert psql(db, f"SELECT etag FROM services WHERE name = '{svc}'") == "changed-elsewhere"
    # A database a node already started on (its own first-start account) is refused before anything is copied.
    psql(db, "UPDATE bootstrap SET account_id = 'someone-else'")
    p = migrate(src, db, bucket, ok=False)
    assert p.returncode != 0 and "already belongs to another openfc installation" in p.stderr, p.stderr
    assert "code objects:" not in p.stdout, p.stdout


def test_verification_fails_when_a_package_is_gone(source):
    src, m = source
    db, bucket = target()
    migrate(src, db, bucket)
    svc = m["services"][1]
    key = psql(db, f"SELECT code_key FROM functions WHERE service_name = '{svc}' AND name = 'plain'")
    delete_object(bucket, key)
    p = migrate(src, db, bucket, "--verify-only", ok=False)
    assert p.returncode != 0, p.stdout
    assert f"function {svc}/plain: code object {key} is missing from the bucket" in p.stderr, p.stderr
    assert "verification failed: 1 problem" in p.stderr, p.stderr
    # A normal run copies it again and passes.
    fixed = migrate(src, db, bucket)
    assert copied(fixed.stdout)[2] == 1 and "verification passed" in fixed.stdout, fixed.stdout


def test_dialects_are_converted_and_sequences_advanced(source, tmp_path):
    """A table both sides have beyond openfc's own (as a later migration might add): SQLite's 0/1, JSON text and
    blobs become PostgreSQL's boolean, jsonb and bytea; the serial id's sequence ends past the copied ids. A
    table only the source has is skipped and named. An object above 8 MiB goes up as a multipart upload."""
    src, _ = source
    data = tmp_path / "data"
    shutil.copytree(src.data_dir, data)
    big = os.urandom(9 << 20)
    (data / "code" / "packages" / "sha256" / "big.zip").write_bytes(big)
    with sqlite3.connect(data / "meta.db") as con:
        con.execute("CREATE TABLE extra (id INTEGER PRIMARY KEY, flag INTEGER NOT NULL, doc TEXT, raw BLOB)")
        con.execute("INSERT INTO extra VALUES (1, 1, '{\"a\":  1}', x'00ff'), (41, 0, NULL, NULL)")
        con.execute("CREATE TABLE only_here (k TEXT PRIMARY KEY)")
    db, bucket = target()
    psql(db, "CREATE TABLE extra (id BIGSERIAL PRIMARY KEY, flag BOOLEAN NOT NULL, doc JSONB, raw BYTEA)")
    out = migrate(data, db, bucket).stdout
    assert re.search(r"^  extra +2 copied, 0 already there$", out, re.M), out
    assert re.search(r"^  only_here +skipped: not in the target's schema$", out, re.M), out
    assert psql(db, "SELECT id, flag, doc->>'a', encode(raw, 'hex') FROM extra ORDER BY id") == "1|t|1|00ff\n41|f||"
    assert psql(db, "SELECT nextval(pg_get_serial_sequence('extra', 'id'))") == "42"
    r = requests.get(f"{os.environ['OPENFC_TEST_S3_ENDPOINT']}/{bucket}/packages/sha256/big.zip", headers=S3_AUTH,
                     timeout=60)
    assert r.status_code == 200 and r.content == big, (r.status_code, len(r.content))
    # jsonb keeps no spelling ('{"a":  1}' is stored as {"a": 1}): the re-run still finds the rows equal.
    again = migrate(data, db, bucket).stdout
    assert re.search(r"^  extra +0 copied, 2 already there$", again, re.M), again
