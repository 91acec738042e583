"""Fixtures for the custom-container tests (containers.md §7): OCI registries on loopback and tiny images built
without Docker, plus the helpers the test_custom_container*.py modules share.

* `Registry`: Debian's `docker-registry serve CONFIG` on 127.0.0.1 at a free port (never :5000), plain HTTP,
  storage in a temp dir; optionally behind htpasswd (bcrypt) Basic auth. `push` copies a tag of the OCI layout
  with skopeo (`--format v2s2` = Docker media types, as ACR and `docker push` make them, or `oci`).
* `SlowProxy`: a loopback HTTP proxy in front of a registry that holds manifest requests for a while, so a pull
  stays `Preparing` long enough to be seen.
* `ImageSet`: one umoci OCI layout holding every variant. Layer 0 is a busybox root (static /bin/busybox and
  its applet links, /etc/passwd and /etc/group with root, nobody and app(1000), /srv, /home/app; no /proc, /dev
  or /tmp, like busybox's own image); layer 1 holds the scripts (`fc-start`, `fc-handler`, `fc-oneshot`) and
  /etc/fc-flavour. The variants are `umoci config` changes of that image (no new layers), plus `flavour-b` (the
  same layer 0 under a different layer 1: two images sharing the base layer, and the "re-pushed tag" image) and
  a zstd copy of `web` (layers recompressed by hand when skopeo keeps them gzip, §7.5), and two image indexes
  (`multi`: arm64 then amd64; `multi-arm`: arm64 only).
* `images` (session fixture): both registries started and every variant pushed once per session.

Inside the images: `/bin/fc-start` exports FC_ARGV="$0 $*" (so the argv openfc ran is visible) and execs
`nc -ll -p "$FC_CUSTOM_LISTEN_PORT" -e /bin/fc-handler` (busybox's persistent forking server). `fc-handler` reads
one request (request line, headers with their \\r stripped, `head -c Content-Length` body) and answers 200 with a
line-based echo parsed by `parse_echo`: `method=`, `target=`, `path=`, `query=`, `uid=`, `gid=`, `cwd=`, `argv=`,
`flavour=` (a or b), `inits=` (how many /initialize calls this instance had), `rootwrite=` / `tmpwrite=` (ok or
fail: writing /fc-probe and /tmp/fc-probe), `env.NAME=value` per variable, `hdr.Name=value` per request header,
and last `event=` followed by the request body verbatim. It logs to stderr (the instance's log):
`fc-handler: initialize`, `fc-handler: pre-stop after N invocations`, and FC's Invoke Start/End lines.
`fc-oneshot` (webServerMode false) prints `oneshot event: $FC_CUSTOM_CONTAINER_EVENT` and exits 1 when the
event contains "fail", else 0.
"""

import base64
import gzip
import hashlib
import http.server
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from helpers import assert_ok, unique

BUSYBOX = "/bin/busybox"
APPLETS = ["sh", "nc", "head", "cat", "printf", "env", "id", "tr", "wc", "sleep", "pwd", "ls", "echo", "sed",
           "rm", "touch", "mkdir", "grep", "true", "false", "test", "["]
USER = ("fcuser", "fcpass")
MIRRORED_HOST = "registry.cn-hangzhou.aliyuncs.com"
MTIME = 1577836800  # 2020-01-01: layers are byte-identical from one session to the next

# Image Env of every variant: IMAGE_VAR only in the image, SHADOWED overridden by the tests' functions,
# FC_FUNCTION_NAME overridden by FC's own variable.
IMAGE_ENV = ["PATH=/bin", "IMAGE_VAR=from-image", "SHADOWED=from-image", "FC_FUNCTION_NAME=from-image"]
WEB_ENTRYPOINT = ["/bin/fc-start", "entry-arg"]
WEB_CMD = ["cmd-arg"]

MANIFEST_ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json"])


# --- the scripts inside the images ---------------------------------------------------------------------------------
FC_START = r'''#!/bin/sh
# The web variants' ENTRYPOINT: records its argv for fc-handler, then serves forever on $FC_CUSTOM_LISTEN_PORT.
export FC_ARGV="$0 $*"
exec nc -ll -p "${FC_CUSTOM_LISTEN_PORT:-9000}" -e /bin/fc-handler
'''

FC_HANDLER = r'''#!/bin/sh
# One HTTP request on stdin/stdout (busybox `nc -ll -e` forks this per connection), answered with a line-based
# echo of what the container sees; the request body comes last, verbatim. Logs go to stderr.
cr=$(printf '\r')
IFS=' ' read -r method target proto
len=0
hdrs=
rid=
while IFS= read -r line; do
    line=${line%"$cr"}
    [ -z "$line" ] && break
    name=${line%%:*}
    value=${line#*:}
    value=${value# }
    case "$name" in
        [Cc][Oo][Nn][Tt][Ee][Nn][Tt]-[Ll][Ee][Nn][Gg][Tt][Hh]) len=$value ;;
        [Xx]-[Ff][Cc]-[Rr][Ee][Qq][Uu][Ee][Ss][Tt]-[Ii][Dd]) rid=$value ;;
    esac
    hdrs="${hdrs}hdr.$name=$value
"
done
path=${target%%\?*}
query=
case "$target" in *\?*) query=${target#*\?} ;; esac
body=/tmp/fc-body.$$
resp=/tmp/fc-resp.$$
case "$len" in ''|0|*[!0-9]*) : > "$body" ;; *) head -c "$len" > "$body" ;; esac
count() { n=0; [ -f "$1" ] && read -r n < "$1"; n=$((n + 1)); echo "$n" > "$1"; }
case "$path" in
    /initialize) count /tmp/fc-inits; echo "fc-handler: initialize" >&2 ;;
    /pre-stop)
        n=0; [ -f /tmp/fc-invokes ] && read -r n < /tmp/fc-invokes
        echo "fc-handler: pre-stop after $n invocations" >&2 ;;
    /pre-freeze) echo "fc-handler: pre-freeze" >&2 ;;
    *) count /tmp/fc-invokes
       echo "FC Invoke Start RequestId: $rid" >&2
       echo "fc-handler: $method $target ($len bytes)" >&2
       echo "FC Invoke End RequestId: $rid" >&2 ;;
esac
inits=0; [ -f /tmp/fc-inits ] && read -r inits < /tmp/fc-inits
flavour=; [ -f /etc/fc-flavour ] && read -r flavour < /etc/fc-flavour
if { echo x > /fc-probe; } 2>&-; then rootwrite=ok; else rootwrite=fail; fi
if { echo x > /tmp/fc-probe; } 2>&-; then tmpwrite=ok; else tmpwrite=fail; fi
{
    echo "method=$method"
    echo "target=$target"
    echo "path=$path"
    echo "query=$query"
    echo "uid=$(id -u)"
    echo "gid=$(id -g)"
    echo "cwd=$(pwd)"
    echo "argv=$FC_ARGV"
    echo "flavour=$flavour"
    echo "inits=$inits"
    echo "rootwrite=$rootwrite"
    echo "tmpwrite=$tmpwrite"
    env | sed 's/^/env./'
    printf '%s' "$hdrs"
    printf 'event='
    cat "$body"
} > "$resp"
size=$(wc -c < "$resp")
printf 'HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %s\r\nX-Echo-Handler: busybox\r\nConnection: close\r\n\r\n' "$size"
cat "$resp"
rm -f "$body" "$resp"
'''

FC_ONESHOT = r'''#!/bin/sh
# webServerMode false: one process per event, the event in FC_CUSTOM_CONTAINER_EVENT; exit 1 when it says "fail".
echo "oneshot event: $FC_CUSTOM_CONTAINER_EVENT"
echo "oneshot uid=$(id -u) cwd=$(pwd) argv=$0 $*"
case "$FC_CUSTOM_CONTAINER_EVENT" in
    *fail*) echo "oneshot failing as asked" >&2; exit 1 ;;
esac
exit 0
'''

PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
          "app:x:1000:1000:app:/home/app:/bin/sh\n")
GROUP = "root:x:0:\nnogroup:x:65534:\napp:x:1000:\n"


# --- layer tars ----------------------------------------------------------------------------------------------------
def layer_tar(entries):
    """A layer tar from (name, kind, payload, mode, uid, gid) entries; kind 'dir', 'file' (payload bytes) or
    'symlink' (payload = target). Owners numeric, fixed mtime."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, payload, mode, uid, gid in entries:
            ti = tarfile.TarInfo(name)
            ti.mode, ti.uid, ti.gid, ti.mtime = mode, uid, gid, MTIME
            ti.uname = ti.gname = ""
            data = None
            if kind == "dir":
                ti.type = tarfile.DIRTYPE
            elif kind == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = payload
            else:
                data = payload if isinstance(payload, bytes) else payload.encode()
                ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def base_layer():
    entries = [("bin", "dir", None, 0o755, 0, 0), ("etc", "dir", None, 0o755, 0, 0),
               ("srv", "dir", None, 0o755, 0, 0), ("home", "dir", None, 0o755, 0, 0),
               ("home/app", "dir", None, 0o750, 1000, 1000), ("root", "dir", None, 0o700, 0, 0),
               ("bin/busybox", "file", Path(BUSYBOX).read_bytes(), 0o755, 0, 0)]
    entries += [(f"bin/{a}", "symlink", "busybox", 0o777, 0, 0) for a in APPLETS]
    entries += [("etc/passwd", "file", PASSWD, 0o644, 0, 0), ("etc/group", "file", GROUP, 0o644, 0, 0),
                ("srv/hello.txt", "file", "served from /srv\n", 0o644, 0, 0)]
    return layer_tar(entries)


def scripts_layer(flavour):
    return layer_tar([
        ("bin", "dir", None, 0o755, 0, 0), ("etc", "dir", None, 0o755, 0, 0),
        ("bin/fc-start", "file", FC_START, 0o755, 0, 0), ("bin/fc-handler", "file", FC_HANDLER, 0o755, 0, 0),
        ("bin/fc-oneshot", "file", FC_ONESHOT, 0o755, 0, 0),
        ("etc/fc-flavour", "file", f"{flavour}\n", 0o644, 0, 0)])


def run(cmd, timeout=120, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    assert p.returncode == 0, f"{cmd} -> {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p.stdout


def free_port():
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port != 5000:
            return port


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


# --- registries ----------------------------------------------------------------------------------------------------
REGISTRY_CONFIG = """version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:0
  secret: openfc-test
"""

HTPASSWD_AUTH = """auth:
  htpasswd:
    realm: openfc-test
    path: {path}
"""


class Registry:
    """`docker-registry serve` on 127.0.0.1:<free port> (REGISTRY_HTTP_ADDR overrides the config's addr)."""

    def __init__(self, workdir, auth=False):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.root = self.workdir / "storage"
        self.auth = USER if auth else None
        self.port = free_port()
        self.proc = None
        self.log_path = self.workdir / "registry.log"

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    @property
    def url(self):
        return f"http://{self.host}"

    def start(self):
        config = REGISTRY_CONFIG.format(root=self.root)
        if self.auth:
            htpasswd = self.workdir / "htpasswd"
            htpasswd.write_text(run(["htpasswd", "-Bbn", *self.auth]))
            config += HTPASSWD_AUTH.format(path=htpasswd)
        path = self.workdir / "config.yml"
        path.write_text(config)
        env = dict(os.environ, REGISTRY_HTTP_ADDR=self.host)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(["docker-registry", "serve", str(path)], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, env=env)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"docker-registry exited with {self.proc.returncode}: {self.log_path.read_text()}")
            try:
                r = requests.get(f"{self.url}/v2/", timeout=2)
                if r.status_code == (401 if self.auth else 200):
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        pytest.fail(f"docker-registry on {self.host} not ready: {self.log_path.read_text()}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def ref(self, repo, tag):
        return f"{self.host}/{repo}:{tag}"

    def push(self, layout, src_tag, repo, tag, fmt="v2s2", extra=()):
        """skopeo copy oci:LAYOUT:SRC_TAG docker://HOST/REPO:TAG; returns the reference."""
        cmd = ["skopeo", "--insecure-policy", "copy", "-q", "--dest-tls-verify=false", "--format", fmt, *extra]
        if self.auth:
            cmd += ["--dest-creds", ":".join(self.auth)]
        run(cmd + [f"oci:{layout}:{src_tag}", f"docker://{self.ref(repo, tag)}"])
        return self.ref(repo, tag)

    def inspect_raw(self, repo, tag):
        """`skopeo inspect --raw` of a pushed tag: the manifest as the registry serves it."""
        cmd = ["skopeo", "inspect", "--raw", "--tls-verify=false"]
        if self.auth:
            cmd += ["--creds", ":".join(self.auth)]
        return json.loads(run(cmd + [f"docker://{self.ref(repo, tag)}"]))

    def manifest_digest(self, repo, tag):
        """The digest the tag resolves to now (what openfc pins)."""
        r = requests.head(f"{self.url}/v2/{repo}/manifests/{tag}", headers={"Accept": MANIFEST_ACCEPT},
                          auth=self.auth, timeout=10)
        assert r.status_code == 200, (r.status_code, r.text)
        return r.headers["Docker-Content-Digest"]

    def blob_data(self, digest):
        """The registry's file for a blob (filesystem driver layout)."""
        hexd = digest.split(":", 1)[1]
        return self.root / "docker" / "registry" / "v2" / "blobs" / "sha256" / hexd[:2] / hexd / "data"

    def corrupt_blob(self, digest):
        """Flip every byte of a stored blob (same length), so a download no longer matches its digest."""
        path = self.blob_data(digest)
        data = path.read_bytes()
        path.write_bytes(bytes(b ^ 0xFF for b in data))


class SlowProxy:
    """A loopback HTTP proxy in front of `target` (host:port) that holds every manifest request `delay` seconds
    (blob requests pass at once), so a function's pull through it stays `Preparing` for that long."""

    def __init__(self, target, delay):
        self.target, self.delay = target, delay
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                if "/manifests/" in self.path:
                    time.sleep(proxy.delay)
                headers = {}
                for k, v in self.headers.items():
                    if k.lower() not in ("host", "connection"):
                        headers[k] = f"{headers[k]}, {v}" if k in headers else v
                try:
                    r = requests.request(self.command, f"http://{proxy.target}{self.path}", headers=headers,
                                         timeout=60, stream=True, allow_redirects=False)
                    data = r.raw.read(decode_content=False)
                except requests.RequestException as e:
                    self.send_error(502, str(e))
                    return
                self.send_response(r.status_code)
                for k, v in r.raw.headers.items():
                    if k.lower() not in ("content-length", "connection", "transfer-encoding", "date", "server"):
                        self.send_header(k, v)
                length = r.raw.headers.get("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_HEAD = do_GET

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def host(self):
        return f"127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# --- the images ----------------------------------------------------------------------------------------------------
@dataclass
class Variant:
    """A tag of the layout: `umoci config` flags applied to `base` (a tag)."""
    name: str
    base: str = "web"
    flags: list = field(default_factory=list)


CLEAR = ["--clear=config.entrypoint", "--clear=config.cmd"]
VARIANTS = [
    Variant("cmdonly", flags=CLEAR + ["--config.cmd=/bin/fc-start", "--config.cmd=only-cmd"]),
    Variant("entryonly", flags=CLEAR + ["--config.entrypoint=/bin/fc-start", "--config.entrypoint=only-entry"]),
    Variant("noentry", flags=CLEAR),
    Variant("app", flags=["--config.user=app"]),
    Variant("nobody", flags=["--config.user=65534:65534"]),
    Variant("ghost", flags=["--config.user=ghost"]),
    Variant("arm64", flags=["--architecture=arm64"]),
    Variant("workdir", flags=["--config.workingdir=/srv"]),
    Variant("oneshot", flags=CLEAR + ["--config.entrypoint=/bin/fc-oneshot"]),
    Variant("sleeper", flags=CLEAR + ["--config.entrypoint=/bin/sleep", "--config.cmd=3600"]),
]
WEB_FLAGS = ([f"--config.entrypoint={a}" for a in WEB_ENTRYPOINT] + [f"--config.cmd={a}" for a in WEB_CMD]
             + [f"--config.env={e}" for e in IMAGE_ENV] + ["--os=linux", "--architecture=amd64"])


class ImageSet:
    """One OCI layout with every variant (see the module docstring), built with umoci."""

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.layout = self.workdir / "layout"

    def umoci(self, *args):
        return run(["umoci", *args])

    def image(self, tag):
        return f"{self.layout}:{tag}"

    def add_layer(self, src, dst, tar_bytes):
        path = self.workdir / f"{dst}.tar"
        path.write_bytes(tar_bytes)
        self.umoci("raw", "add-layer", "--image", self.image(src), "--tag", dst, str(path))

    def build(self):
        self.umoci("init", "--layout", str(self.layout))
        self.umoci("new", "--image", self.image("empty"))
        self.add_layer("empty", "base", base_layer())
        self.add_layer("base", "web-a", scripts_layer("a"))
        self.add_layer("base", "web-b", scripts_layer("b"))
        self.umoci("config", "--image", self.image("web-a"), "--tag", "web", *WEB_FLAGS)
        self.umoci("config", "--image", self.image("web-b"), "--tag", "flavour-b", *WEB_FLAGS)
        for v in VARIANTS:
            self.umoci("config", "--image", self.image(v.base), "--tag", v.name, *v.flags)
        # Image indexes: arm64 listed first, then amd64 (openfc must pick amd64); arm64 alone.
        self.add_index("multi", [("arm64", "arm64"), ("web", "amd64")])
        self.add_index("multi-arm", [("arm64", "arm64")])
        return self

    # --- reading the layout ---
    def index(self):
        return json.loads((self.layout / "index.json").read_text())

    def blob(self, digest):
        return (self.layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()

    def manifest(self, tag):
        for m in self.index()["manifests"]:
            if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
                return json.loads(self.blob(m["digest"]))
        raise KeyError(tag)

    def layers(self, tag):
        """The layer digests of a tag as in the layout (gzip; skopeo keeps them on push)."""
        return [layer["digest"] for layer in self.manifest(tag)["layers"]]

    def write_blob(self, data):
        digest = "sha256:" + sha256_hex(data)
        (self.layout / "blobs" / "sha256" / digest.split(":", 1)[1]).write_bytes(data)
        return digest, len(data)

    def add_zstd_copy(self, tag, new_tag):
        """containers.md §7.5: the layers of `tag` recompressed with zstd by hand (DiffIDs unchanged) under a
        new OCI manifest tagged `new_tag`."""
        manifest = self.manifest(tag)
        layers = []
        for layer in manifest["layers"]:
            raw = gzip.decompress(self.blob(layer["digest"]))
            z = subprocess.run(["zstd", "-q", "-c"], input=raw, capture_output=True, check=True).stdout
            digest, size = self.write_blob(z)
            layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": digest,
                           "size": size})
        new = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
               "config": manifest["config"], "layers": layers}
        digest, size = self.write_blob(json.dumps(new).encode())
        index = self.index()
        index["manifests"].append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
                                   "size": size,
                                   "annotations": {"org.opencontainers.image.ref.name": new_tag}})
        (self.layout / "index.json").write_text(json.dumps(index))

    def add_index(self, new_tag, entries):
        """An OCI image index tagged `new_tag` over (tag, architecture) entries, in that order (skopeo cannot
        author one, §7.5)."""
        manifests = []
        for tag, arch in entries:
            ref = next(m for m in self.index()["manifests"]
                       if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)
            manifests.append({"mediaType": ref["mediaType"], "digest": ref["digest"], "size": ref["size"],
                              "platform": {"architecture": arch, "os": "linux"}})
        blob = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                           "manifests": manifests}).encode()
        digest, size = self.write_blob(blob)
        index = self.index()
        index["manifests"].append({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest,
                                   "size": size, "annotations": {"org.opencontainers.image.ref.name": new_tag}})
        (self.layout / "index.json").write_text(json.dumps(index))

    def add_unique_layer(self, src, dst, size=65536):
        """`src` plus one layer of random bytes (/etc/unique.bin): a layer no other image has."""
        self.add_layer(src, dst, layer_tar([("etc", "dir", None, 0o755, 0, 0),
                                            ("etc/unique.bin", "file", os.urandom(size), 0o644, 0, 0)]))
        return self.layers(dst)[-1]


class Images:
    """What the `images` fixture gives: the two registries, the layout and the references pushed."""

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.registry = Registry(self.workdir / "registry")
        self.auth_registry = Registry(self.workdir / "auth-registry", auth=True)
        self.set = ImageSet(self.workdir / "images")
        self.auth_file = self.workdir / "auth.json"
        self.zstd_by = None  # "skopeo" or "hand": how the zstd image was made
        self._lock = threading.Lock()

    def start(self):
        with ThreadPoolExecutor(3) as ex:
            started = [ex.submit(self.registry.start), ex.submit(self.auth_registry.start), ex.submit(self.set.build)]
            for f in started:
                f.result()
        token = base64.b64encode(":".join(USER).encode()).decode()
        self.auth_file.write_text(json.dumps({"auths": {self.auth_registry.host: {"auth": token}}}))
        # Base layers first (one copy of each blob), then every tag in parallel.
        self.registry.push(self.set.layout, "web", "fc/web", "v1")
        jobs = [(self.registry, v.name, f"fc/{v.name}", "v1", "v2s2") for v in VARIANTS]
        jobs += [(self.registry, "flavour-b", "fc/flavour-b", "v1", "v2s2"),
                 (self.registry, "web", "fc/web", "oci", "oci"),
                 (self.auth_registry, "web", "fc/web", "v1", "v2s2")]
        with ThreadPoolExecutor(4) as ex:
            for f in [ex.submit(reg.push, self.set.layout, src, repo, tag, fmt) for reg, src, repo, tag, fmt in jobs]:
                f.result()
        for tag in ("multi", "multi-arm"):
            self.registry.push(self.set.layout, tag, f"fc/{tag}", "v1", "oci", ["--multi-arch", "all"])
            assert self.registry.inspect_raw(f"fc/{tag}", "v1")["mediaType"].endswith("index.v1+json")
        self.push_zstd()
        return self

    def push_zstd(self):
        """fc/web:zstd with zstd layers: skopeo's --dest-compress-format first; skopeo 1.9.3 reuses the gzip blobs
        the registry already has, so when the manifest still says gzip the layers are recompressed by hand."""
        self.registry.push(self.set.layout, "web", "fc/web", "zstd", "oci", ["--dest-compress-format", "zstd"])
        if not self._is_zstd():
            self.set.add_zstd_copy("web", "web-zstd")
            self.registry.push(self.set.layout, "web-zstd", "fc/web", "zstd", "oci")
            self.zstd_by = "hand"
        else:
            self.zstd_by = "skopeo"
        assert self._is_zstd(), self.registry.inspect_raw("fc/web", "zstd")

    def _is_zstd(self):
        layers = self.registry.inspect_raw("fc/web", "zstd")["layers"]
        return all(layer["mediaType"].endswith("+zstd") for layer in layers)

    def stop(self):
        self.registry.stop()
        self.auth_registry.stop()

    # --- references ---
    def ref(self, variant="web", tag="v1"):
        """The plain registry's reference of a variant pushed at session start (`web` also has tags `oci` and
        `zstd`; `multi` and `multi-arm` are image indexes)."""
        return self.registry.ref(f"fc/{variant}", tag)

    @property
    def auth_ref(self):
        return self.auth_registry.ref("fc/web", "v1")

    @property
    def mirrored_ref(self):
        """An ACR-style name that reaches the plain registry through --registry-mirror."""
        return f"{MIRRORED_HOST}/fc/web:v1"

    def push(self, variant, repo, tag="v1", fmt="v2s2"):
        """Push a layout tag (a variant name, `web`, `flavour-b`...) to a new place in the plain registry."""
        return self.registry.push(self.set.layout, variant, repo, tag, fmt)

    def push_unique(self, repo, tag="v1"):
        """`web` plus a random layer, pushed to repo:tag; returns (reference, digest of the random layer)."""
        with self._lock:  # umoci edits index.json
            name = "u" + uuid.uuid4().hex[:10]
            digest = self.set.add_unique_layer("web", name)
        return self.push(name, repo, tag), digest

    def server_args(self, *extra_registries):
        """openfc flags for these registries: plain HTTP for both (and any extra host:port), credentials for
        the auth one, the ACR-style mirror."""
        args = []
        for host in (self.registry.host, self.auth_registry.host, *extra_registries):
            args += ["--insecure-registry", host]
        return args + ["--registry-auth-file", str(self.auth_file),
                       "--registry-mirror", f"{MIRRORED_HOST}={self.registry.host}"]


_IMAGES = {}


@pytest.fixture(scope="session")
def images(tmp_path_factory):
    """Both registries, every variant built and pushed; once per session even though several modules import
    this fixture (each import makes its own fixture definition, so the state is kept here)."""
    if "images" in _IMAGES:
        yield _IMAGES["images"]
        return
    for tool in ("docker-registry", "skopeo", "umoci", "htpasswd", "zstd"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is not installed (scripts/test.sh installs docker-registry, skopeo, umoci, "
                        f"busybox-static, apache2-utils, zstd)")
    if not Path(BUSYBOX).exists():
        pytest.fail(f"{BUSYBOX} missing (busybox-static)")
    imgs = Images(tmp_path_factory.mktemp("images"))
    _IMAGES["images"] = imgs
    try:
        imgs.start()
    except BaseException:
        imgs.stop()
        _IMAGES.pop("images", None)
        raise
    yield imgs
    imgs.stop()
    _IMAGES.pop("images", None)


# --- functions -----------------------------------------------------------------------------------------------------
def expected_uid(image_uid):
    """The uid (or gid) `id -u` prints inside an instance whose image user has `image_uid`. openfc runs images in
    a user namespace (containers.md §4.4), so the image's own ids show; an unprivileged mapping without one
    would show base + image uid instead: change it here."""
    return image_uid


def container_config(image, command=None, args=None, **extra):
    cfg = {"image": image}
    if command is not None:
        cfg["command"] = command if isinstance(command, str) else json.dumps(command)
    if args is not None:
        cfg["args"] = args if isinstance(args, str) else json.dumps(args)
    cfg.update(extra)
    return cfg


def function_body(name, image, command=None, args=None, config=None, **fields):
    body = {"functionName": name, "runtime": "custom-container", "handler": "not-used", "caPort": 9000,
            "memorySize": 128, "timeout": 30,
            "customContainerConfig": config or container_config(image, command, args)}
    body.update(fields)
    return body


def create_fn(server, svc, image, command=None, args=None, name=None, config=None, **fields):
    """CreateFunction (raw client) of a custom-container function; returns (name, response body)."""
    name = name or unique("cfn")
    body = assert_ok(server.raw.post(f"/services/{svc}/functions",
                                     json=function_body(name, image, command, args, config, **fields)))
    return name, body


def get_fn(server, svc, fn, qualifier=None):
    seg = f"{svc}.{qualifier}" if qualifier else svc
    return assert_ok(server.raw.get(f"/services/{seg}/functions/{fn}"))


def acceleration(server, svc, fn, qualifier=None):
    cfg = get_fn(server, svc, fn, qualifier).get("customContainerConfig") or {}
    return cfg.get("accelerationInfo")


def wait_pulled(server, svc, fn, qualifier=None, timeout=60):
    """Polls GetFunction until accelerationInfo.status is no longer Preparing; returns accelerationInfo."""
    deadline = time.time() + timeout
    info = None
    while time.time() < deadline:
        info = acceleration(server, svc, fn, qualifier)
        assert info and info.get("status") in ("Preparing", "Ready", "Failed"), info
        if info["status"] != "Preparing":
            return info
        time.sleep(0.1)
    raise AssertionError(f"{svc}/{fn} still Preparing after {timeout}s: {info}")


def wait_ready(server, svc, fn, qualifier=None, timeout=60):
    info = wait_pulled(server, svc, fn, qualifier, timeout)
    assert info["status"] == "Ready", info
    assert "reason" not in info, info
    return info


def wait_failed(server, svc, fn, *fragments, timeout=60):
    """The pull fails; its reason contains every fragment (case-insensitive). Returns the reason."""
    info = wait_pulled(server, svc, fn, timeout=timeout)
    assert info["status"] == "Failed", info
    reason = info.get("reason")
    assert isinstance(reason, str) and reason, info
    for frag in fragments:
        assert frag.lower() in reason.lower(), f"{frag!r} not in the reason {reason!r}"
    return reason


def ready_fn(server, svc, image, command=None, args=None, **fields):
    """A function created and pulled (Ready); returns its name."""
    fn, _ = create_fn(server, svc, image, command, args, **fields)
    wait_ready(server, svc, fn)
    return fn


@dataclass
class Echo:
    """fc-handler's answer, parsed."""
    fields: dict
    env: dict
    headers: dict  # lower-cased names
    event: bytes

    def __getitem__(self, key):
        return self.fields[key]

    @property
    def uid(self):
        return int(self.fields["uid"])

    @property
    def gid(self):
        return int(self.fields["gid"])


def parse_echo(data):
    head, sep, event = data.partition(b"\nevent=")
    if not sep and data.startswith(b"event="):
        head, event = b"", data[len(b"event="):]
    assert sep or data.startswith(b"event="), f"not fc-handler's answer: {data[:500]!r}"
    fields, env, headers = {}, {}, {}
    for line in head.decode("utf-8", "replace").split("\n"):
        key, _, value = line.partition("=")
        if key.startswith("env."):
            env[key[4:]] = value
        elif key.startswith("hdr."):
            headers[key[4:].lower()] = value
        else:
            fields[key] = value
    return Echo(fields, env, headers, event)


# The headers of a successful synchronous invocation (invoke_helpers.INVOKE_HEADERS without the code checksum:
# a custom-container function has no code package, containers.md §1.2).
CONTAINER_INVOKE_HEADERS = ("X-Fc-Request-Id", "X-Fc-Invocation-Duration", "X-Fc-Max-Memory-Usage",
                            "X-Fc-Invocation-Service-Version", "X-Fc-Instance-Id")


def invoke_echo_headers(inv):
    missing = [h for h in CONTAINER_INVOKE_HEADERS if not inv.h(h)]
    assert not missing, f"missing {missing}: {inv.describe()}"
    assert inv.h("X-Fc-Code-Checksum") is None, f"a custom-container function has no code checksum: {inv.describe()}"
