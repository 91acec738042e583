"""custom-container images for operators, on SQLite (containers.md §2.5, §6): `openfc images ls|pull|rm|gc`
against a running server's data directory, blobs stored once by digest however many images share them, GC of
what no function or version references, and the image store in /health and /metrics. The registry settings go
in the OPENFC_* environment so the CLI (run with the server's environment) reaches the same registries."""

import re

import pytest

from helpers import assert_ok
from images import images, invoke_echo_headers, parse_echo, ready_fn  # noqa: F401
from invoke_helpers import health, invoke, new_service

pytestmark = pytest.mark.timeout(240)

# Where openfc keeps blobs: <data-dir>/images/blobs/sha256/<hex> (containers.md §2.5).
BLOBS = ("images", "blobs", "sha256")
SIZE = re.compile(r"\b\d+(?:\.\d+)?\s?(?:B|KiB|MiB|GiB|kB|KB|MB|GB)\b")


@pytest.fixture(scope="module")
def srv(server_factory, images):
    env = {"OPENFC_INSECURE_REGISTRIES": f"{images.registry.host},{images.auth_registry.host}",
           "OPENFC_REGISTRY_AUTH_FILE": str(images.auth_file)}
    s = server_factory.start("sqlite", env=env)
    yield s
    s.close()


@pytest.fixture(scope="module")
def svc(srv):
    return new_service(srv, "ccops")


def images_cli(srv, *args, check=True):
    return srv.cli("images", *args, check=check)


def ls(srv):
    return images_cli(srv, "ls").stdout


def blob_path(srv, digest):
    return srv.data_dir.joinpath(*BLOBS, digest.split(":", 1)[1])


def copies(srv, digest):
    """Every regular file under the data dir named by this digest's hex (a layer kept twice shows twice)."""
    hexd = digest.split(":", 1)[1]
    return [p for p in srv.data_dir.rglob(f"*{hexd}*") if p.is_file()]


def lines_with(text, needle):
    return [line for line in text.splitlines() if needle in line]


def test_images_ls_shows_reference_digest_status_and_users(srv, svc, images):
    ref = images.ref("web")
    fn = ready_fn(srv, svc, ref)
    out = ls(srv)
    rows = lines_with(out, ref)
    assert rows, out
    digest = images.registry.manifest_digest("fc/web", "v1")
    short = digest[:len("sha256:") + 12]  # shown shortened, as docker does
    assert short in out, f"the pinned digest {digest} is not listed:\n{out}"
    assert "Ready" in out, out
    assert fn in out, f"the function using it is not listed:\n{out}"
    # Sizes: compressed and unpacked, on its row.
    assert any(len(SIZE.findall(row)) >= 2 for row in rows), rows


def test_two_images_sharing_the_base_layer_store_it_once(srv, svc, images):
    ready_fn(srv, svc, images.ref("web"))
    ready_fn(srv, svc, images.ref("flavour-b"))
    base, top_a = images.set.layers("web")
    base_b, top_b = images.set.layers("flavour-b")
    assert base == base_b and top_a != top_b
    for layer in (base, top_a, top_b):
        assert blob_path(srv, layer).is_file(), f"{layer} not at {blob_path(srv, layer)}"
    assert len(copies(srv, base)) == 1, copies(srv, base)
    assert blob_path(srv, base).stat().st_size == images.registry.blob_data(base).stat().st_size


def test_images_pull_then_rm_of_an_unreferenced_image(srv, images):
    ref, layer = images.push_unique(f"fc/cli-pull-{srv.port}")
    images_cli(srv, "pull", ref)
    assert lines_with(ls(srv), ref), ls(srv)
    assert blob_path(srv, layer).is_file()
    images_cli(srv, "rm", ref)
    assert not lines_with(ls(srv), ref), ls(srv)


def test_images_pull_of_a_missing_image_fails_with_the_reason(srv, images):
    ref = images.ref("web", "no-such-tag")
    p = images_cli(srv, "pull", ref, check=False)
    assert p.returncode != 0, p
    assert "not found" in (p.stdout + p.stderr), p


def test_images_rm_is_refused_while_a_function_uses_the_image(srv, svc, images):
    ref, _ = images.push_unique(f"fc/cli-rm-{srv.port}")
    fn = ready_fn(srv, svc, ref)
    p = images_cli(srv, "rm", ref, check=False)
    assert p.returncode != 0, p
    assert fn in (p.stdout + p.stderr), p
    assert lines_with(ls(srv), ref)
    r = invoke(srv, svc, fn, b"still here")
    assert r.status == 200 and parse_echo(r.body).event == b"still here", r.describe()


def test_images_gc_removes_what_nothing_references(srv, svc, images):
    ref, layer = images.push_unique(f"fc/cli-gc-{srv.port}")
    fn = ready_fn(srv, svc, ref)
    kept = ready_fn(srv, svc, images.ref("web"))
    assert blob_path(srv, layer).is_file()
    images_cli(srv, "gc")
    assert blob_path(srv, layer).is_file(), "gc removed a referenced image"
    assert_ok(srv.raw.delete(f"/services/{svc}/functions/{fn}"), 204)
    images_cli(srv, "gc")
    assert not lines_with(ls(srv), ref), ls(srv)
    assert not copies(srv, layer), copies(srv, layer)
    base = images.set.layers("web")[0]
    assert blob_path(srv, base).is_file(), "gc removed the base layer other images still use"
    r = invoke(srv, svc, kept, b"after gc")
    assert r.status == 200 and parse_echo(r.body).event == b"after gc", r.describe()


def test_health_and_metrics_show_the_image_store_and_the_pull(srv, svc, images):
    fn = ready_fn(srv, svc, images.ref("workdir"))
    inv = invoke(srv, svc, fn, b"m")
    assert inv.status == 200, inv.describe()
    invoke_echo_headers(inv)
    store = health(srv)["images"]
    assert store["images"] >= 1 and store["bytes"] > 1_000_000 and store["pulls_in_flight"] == 0, store
    metrics = srv.metrics()
    assert "openfc_image_pull_seconds_count" in metrics, [m for m in metrics.splitlines() if "image" in m]
    assert 'openfc_cold_start_seconds_count{phase="image"}' in metrics, \
        [m for m in metrics.splitlines() if "cold_start" in m]
