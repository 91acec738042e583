"""Two openfc nodes on one PostgreSQL database and one S3 bucket (containers.md §2.4): the node that takes the
CreateFunction pulls the image and copies its verified layer blobs to the bucket; another node builds the
image's tree from the bucket on its first cold start, so it never goes back to the registry — proven by stopping
the registry before the second node's first invocation."""

import shutil

import pytest

from conftest import Server, require_external
from images import Registry, images, parse_echo, ready_fn  # noqa: F401
from invoke_helpers import invoke, new_service

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def private_registry(tmp_path, images):
    """A registry of this test's own (it is stopped mid-test), holding the `web` image."""
    reg = Registry(tmp_path / "registry").start()
    ref = reg.push(images.set.layout, "web", "fc/shared", "v1")
    yield reg, ref
    reg.stop()


def second_node(first, workdir):
    """A node on the first one's database, bucket, master key and account."""
    require_external()
    node = Server("postgres", workdir, args=first.extra_args, name="openfc-node-b")
    node.database_url, node.bucket = first.database_url, first.bucket
    for name in ("master.key", "credentials.json"):
        shutil.copy(first.data_dir / name, node.data_dir / name)
    return node.start()


def test_a_second_node_runs_the_image_from_the_bucket_without_the_registry(server_factory, images, private_registry, tmp_path):
    reg, ref = private_registry
    a = server_factory.start("postgres", args=images.server_args(reg.host))
    b = second_node(a, tmp_path / "node-b")
    try:
        svc = new_service(a, "ccnodes")
        fn = ready_fn(a, svc, ref)
        reg.stop()
        inv = invoke(b, svc, fn, b"from node b")
        assert inv.status == 200 and inv.error_type is None, inv.describe()
        assert parse_echo(inv.body).event == b"from node b"
        blobs = list((b.data_dir / "images" / "blobs" / "sha256").iterdir())
        assert blobs, "node b holds no blob"
        hits = [line for line in b.metrics().splitlines() if line.startswith("openfc_image_blob_shared_hits_total")]
        assert hits and float(hits[0].split()[-1]) >= len(blobs), hits
    finally:
        b.close()
        a.close()
