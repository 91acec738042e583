"""The official Node.js SDK (@alicloud/fc2 2.6.6, installed by scripts/test.sh into .testenv/node) against a real
openfc: one session that creates a service and a function from a zip, reads it, downloads its code through the
GetFunctionCode URL, invokes it with a log tail, publishes a version and invokes it through an alias after
LATEST changed, pages through ListFunctions, and reads two FC errors. tests/e2e/node/sdk_session.js does the
calls; this file checks what they printed."""

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from crc64 import crc64_str
from invoke_helpers import node_zip

HERE = Path(__file__).parent
ECHO = node_zip('''
    exports.handler = (event, context, callback) => {
        console.log("node sdk event: " + event.toString());
        callback(null, event);
    };
''')


def node_path():
    path = os.environ.get("OPENFC_TEST_NODE_PATH")
    if not path:
        if os.environ.get("OPENFC_REQUIRE_EXTERNAL") == "1":
            pytest.fail("OPENFC_TEST_NODE_PATH is not set (scripts/test.sh installs the Node.js SDK)")
        pytest.skip("the Node.js SDK is not installed (run through scripts/test.sh)")
    return path


@pytest.fixture(scope="module")
def session(server, tmp_path_factory):
    modules = node_path()
    zip_file = tmp_path_factory.mktemp("node-sdk") / "code.zip"
    zip_file.write_bytes(ECHO)
    service = "nodesdk_" + uuid.uuid4().hex[:12]
    env = dict(os.environ, NODE_PATH=modules, OPENFC_ENDPOINT=server.endpoint, OPENFC_ACCOUNT_ID=server.account_id,
               OPENFC_AK=server.ak, OPENFC_SK=server.secret, OPENFC_SERVICE=service, OPENFC_ZIP=str(zip_file))
    p = subprocess.run([shutil.which("node") or "node", str(HERE / "node" / "sdk_session.js")], env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, f"the Node.js session failed:\n{p.stderr}\n{p.stdout}"
    steps = {}
    for line in p.stdout.splitlines():
        if line.startswith("{"):
            step = json.loads(line)
            steps[step.pop("step")] = step
    return {"steps": steps, "service": service}


def test_create_and_read_a_function(session):
    s = session["steps"]
    assert s["createService"] == {"name": session["service"], "status": "has request id"}
    assert s["createFunction"]["name"] == "echo"
    assert s["createFunction"]["checksum"] == crc64_str(ECHO)
    assert s["createFunction"]["size"] == len(ECHO)
    assert s["getFunction"]["runtime"] == "nodejs18"
    assert s["getFunction"]["etag"]


def test_the_code_url_downloads_the_package(session):
    code = session["steps"]["getFunctionCode"]
    assert code["status"] == 200 and code["same"], code
    assert code["checksum"] == crc64_str(ECHO) == code["crc"]


def test_invoke_with_a_log_tail(session):
    inv = session["steps"]["invokeFunction"]
    assert inv["body"] == "hello from node"
    assert inv["errorType"] is None
    assert inv["requestId"] and f"FC Invoke Start RequestId: {inv['requestId']}" in inv["log"], inv["log"]
    assert "node sdk event: hello from node" in inv["log"]


def test_an_alias_runs_its_version(session):
    alias = session["steps"]["aliasInvoke"]
    assert alias["body"] == "via alias"
    assert alias["version"] == alias["versionId"]


def test_list_functions_pages_with_next_token(session):
    assert session["steps"]["listFunctions"]["pages"] == [["echo", "second"], ["third"]]


def test_errors_carry_fc_codes(session):
    missing = session["steps"]["getMissingFunction"]
    assert (missing["error"], missing["status"]) == ("FunctionNotFound", 404), missing
    assert missing["requestId"]
    in_use = session["steps"]["deleteServiceInUse"]
    assert in_use["error"] == "ServiceNotEmpty" and in_use["status"] == 409, in_use


def test_account_configs_and_the_oss_upload_path(session):
    """getAccountConfigs answers openfc's package limit; withoutCodeLimit (an upload to Alibaba Cloud OSS) is
    refused up front with what to do instead."""
    assert session["steps"]["getAccountConfigs"]["codeSizeLimit"] == 104857600
    refused = session["steps"]["createWithoutCodeLimit"]
    assert (refused["error"], refused["status"]) == ("PathNotSupported", 400), refused
    assert "code.zipFile" in refused["message"] and "104857600" in refused["message"], refused
