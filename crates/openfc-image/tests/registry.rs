//! Registry pulls against real registries (containers.md §7.2–§7.5): Debian's docker-registry on loopback,
//! images built with umoci and pushed with skopeo, indexes and odd manifests PUT by hand. No mocks.

mod registry_support;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use openfc_image::{
    ImageError, ImageRef, Limits, Mirrors, Registry, RegistryConfig, ResolvedImage,
};
use registry_support::{RegistryProc, auth_file, build_image, sha256};
use serde_json::{Value, json};

const DOCKER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const OCI_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A client for `reg`, plain HTTP allowed for it.
fn client(reg: &RegistryProc, auth_file: Option<PathBuf>) -> Registry {
    Registry::new(RegistryConfig {
        auth_file,
        insecure: vec![reg.host()],
        ..RegistryConfig::default()
    })
    .unwrap()
}

fn image(reg: &RegistryProc, name: &str) -> ImageRef {
    ImageRef::parse(&format!("{}/{name}", reg.host()), &Mirrors::default()).unwrap()
}

/// A registry holding `fc/hello:v1` (busybox, amd64) in `format`, and the layout it came from.
fn registry_with_hello(auth: bool, format: &str) -> (RegistryProc, PathBuf) {
    let reg = RegistryProc::start(auth);
    let layout = reg.dir.path().join("layout");
    build_image(&layout, "v1", "amd64", 0);
    reg.push(&layout, "v1", "fc/hello:v1", format);
    (reg, layout)
}

async fn resolve(registry: &Registry, reference: &ImageRef) -> Result<ResolvedImage, ImageError> {
    registry.resolve(reference, &Limits::default()).await
}

/// Fetches every layer into `dir`, checking each file against its digest and the progress reports.
async fn fetch_all(registry: &Registry, resolved: &ResolvedImage, dir: &Path) {
    for layer in &resolved.layers {
        let dest = dir.join(layer.digest.replace(':', "-"));
        let (last, calls) = (AtomicU64::new(0), AtomicUsize::new(0));
        let progress = |n: u64| {
            assert!(n >= last.load(Ordering::SeqCst), "progress went backwards");
            last.store(n, Ordering::SeqCst);
            calls.fetch_add(1, Ordering::SeqCst);
        };
        registry
            .fetch_blob(&resolved.reference, layer, &dest, &progress)
            .await
            .unwrap();
        assert_eq!(sha256(&std::fs::read(&dest).unwrap()), layer.digest);
        assert_eq!(last.load(Ordering::SeqCst), layer.size);
        assert!(calls.load(Ordering::SeqCst) >= 1);
    }
}

#[tokio::test]
async fn docker_v2s2_tag_resolves_to_the_pushed_manifest_and_blobs_stream_to_disk() {
    let (reg, _) = registry_with_hello(false, "v2s2");
    let registry = client(&reg, None);
    let resolved = resolve(&registry, &image(&reg, "fc/hello:v1"))
        .await
        .unwrap();

    let raw = reg.inspect_raw("fc/hello:v1");
    assert_eq!(resolved.manifest_digest, sha256(&raw));
    assert_eq!(resolved.index_digest, None);
    let manifest: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(resolved.config_digest, manifest["config"]["digest"]);
    let c = &resolved.config;
    assert_eq!((c.os.as_str(), c.architecture.as_str()), ("linux", "amd64"));
    assert_eq!(
        (c.entrypoint.clone(), c.cmd.clone()),
        (
            vec!["/bin/sh".to_string(), "-c".into()],
            vec!["echo hello".to_string()]
        )
    );
    assert!(c.env.contains(&"PATH=/bin".to_string()), "{:?}", c.env);
    assert_eq!((c.working_dir.as_str(), c.user.as_str()), ("/tmp", "app"));
    assert_eq!(resolved.layers.len(), 1);
    assert_eq!(c.diff_ids.len(), 1);
    assert_eq!(resolved.layers[0].media_type, DOCKER_GZIP);
    assert_eq!(resolved.layers[0].digest, manifest["layers"][0]["digest"]);

    let out = tempfile::tempdir().unwrap();
    fetch_all(&registry, &resolved, out.path()).await;
    // The destination is the caller's new file: an existing one is neither overwritten nor removed.
    let layer = &resolved.layers[0];
    let dest = out.path().join(layer.digest.replace(':', "-"));
    let err = registry
        .fetch_blob(&resolved.reference, layer, &dest, &|_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, ImageError::Io(_)), "{err:?}");
    assert_eq!(sha256(&std::fs::read(&dest).unwrap()), layer.digest);
    // The summary travels to the metadata store as JSON.
    let back: ResolvedImage =
        serde_json::from_str(&serde_json::to_string(&resolved).unwrap()).unwrap();
    assert_eq!(back, resolved);
}

#[tokio::test]
async fn oci_image_resolves_by_tag_by_digest_and_pinned() {
    let (reg, _) = registry_with_hello(false, "oci");
    let registry = client(&reg, None);
    let by_tag = resolve(&registry, &image(&reg, "fc/hello:v1"))
        .await
        .unwrap();
    assert_eq!(
        by_tag.manifest_digest,
        sha256(&reg.inspect_raw("fc/hello:v1"))
    );
    assert_eq!(by_tag.layers[0].media_type, OCI_GZIP);

    let by_digest_ref = image(&reg, &format!("fc/hello@{}", by_tag.manifest_digest));
    assert_eq!(by_digest_ref.tag, None);
    let by_digest = resolve(&registry, &by_digest_ref).await.unwrap();
    assert_eq!(
        (by_digest.manifest_digest.as_str(), &by_digest.layers),
        (by_tag.manifest_digest.as_str(), &by_tag.layers)
    );

    let tag_ref = image(&reg, "fc/hello:v1");
    let pinned = registry
        .resolve_pinned(&tag_ref, &by_tag.manifest_digest, &Limits::default())
        .await
        .unwrap();
    assert_eq!(pinned, by_tag);
    let out = tempfile::tempdir().unwrap();
    fetch_all(&registry, &pinned, out.path()).await;

    // A pin the repository does not hold is not found, even though the tag exists.
    let gone = format!("sha256:{}", "0".repeat(64));
    let err = registry
        .resolve_pinned(&tag_ref, &gone, &Limits::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ImageError::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn basic_auth_credentials_come_from_the_auth_file_and_are_reread() {
    let (reg, _) = registry_with_hello(true, "v2s2");
    let dir = tempfile::tempdir().unwrap();
    let file = auth_file(
        dir.path(),
        &reg.host(),
        &format!(r#"{{"auth":"{}"}}"#, registry_support::AUTH_OK),
    );
    let registry = client(&reg, Some(file.clone()));
    let resolved = resolve(&registry, &image(&reg, "fc/hello:v1"))
        .await
        .unwrap();
    assert_eq!(
        resolved.manifest_digest,
        sha256(&reg.inspect_raw("fc/hello:v1"))
    );
    let out = tempfile::tempdir().unwrap();
    fetch_all(&registry, &resolved, out.path()).await;

    // The operator breaks the password: the same client must now be refused, naming the file.
    auth_file(
        dir.path(),
        &reg.host(),
        &format!(r#"{{"auth":"{}"}}"#, registry_support::AUTH_WRONG),
    );
    match resolve(&registry, &image(&reg, "fc/hello:v1")).await {
        Err(ImageError::Denied {
            registry: host,
            repository,
            credentials,
        }) => {
            assert_eq!((host, repository), (reg.host(), "fc/hello".to_string()));
            assert_eq!(credentials, format!("from {}", file.display()));
        }
        other => panic!("expected Denied, got {other:?}"),
    }
    // And fixes it again, as username/password fields this time.
    auth_file(
        dir.path(),
        &reg.host(),
        r#"{"username":"fcuser","password":"fcpass"}"#,
    );
    resolve(&registry, &image(&reg, "fc/hello:v1"))
        .await
        .unwrap();
}

#[tokio::test]
async fn missing_or_unusable_credentials_are_refused() {
    let (reg, _) = registry_with_hello(true, "oci");
    let expect_none = |result: Result<ResolvedImage, ImageError>| match result {
        Err(e @ ImageError::Denied { .. }) => {
            assert!(!e.transient());
            assert!(e.to_string().contains("(credentials: none)"), "{e}");
        }
        other => panic!("expected Denied, got {other:?}"),
    };
    expect_none(resolve(&client(&reg, None), &image(&reg, "fc/hello:v1")).await);
    let dir = tempfile::tempdir().unwrap();
    let other_host = auth_file(
        dir.path(),
        "registry.example.com",
        r#"{"auth":"ZmN1c2VyOmZjcGFzcw=="}"#,
    );
    expect_none(resolve(&client(&reg, Some(other_host)), &image(&reg, "fc/hello:v1")).await);

    let token = auth_file(dir.path(), &reg.host(), r#"{"identitytoken":"abc"}"#);
    let err = resolve(&client(&reg, Some(token)), &image(&reg, "fc/hello:v1"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ImageError::Credentials { .. }) && !err.transient(),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("identity tokens are not supported; use username/password"),
        "{err}"
    );
}

#[tokio::test]
async fn missing_tag_and_missing_repository_are_not_found() {
    let (reg, _) = registry_with_hello(false, "v2s2");
    let registry = client(&reg, None);
    for name in ["fc/hello:nope", "fc/nothing:v1"] {
        let reference = image(&reg, name);
        let err = resolve(&registry, &reference).await.unwrap_err();
        assert!(
            matches!(err, ImageError::NotFound { .. }) && !err.transient(),
            "{name}: {err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "image '{}' not found in registry {}",
                reference.written,
                reg.host()
            )
        );
    }
}

#[tokio::test]
async fn arm64_single_manifest_is_refused() {
    let reg = RegistryProc::start(false);
    let layout = reg.dir.path().join("layout");
    build_image(&layout, "arm", "arm64", 0);
    reg.push(&layout, "arm", "fc/hello:arm", "v2s2");
    let err = resolve(&client(&reg, None), &image(&reg, "fc/hello:arm"))
        .await
        .unwrap_err();
    match &err {
        ImageError::Platform { platform, .. } => assert_eq!(platform, "linux/arm64"),
        other => panic!("expected Platform, got {other:?}"),
    }
    assert!(
        err.to_string()
            .ends_with("is linux/arm64; openfc runs linux/amd64 only"),
        "{err}"
    );
}

/// Pushes amd64 and arm64 builds, and returns each one's index entry.
fn push_platforms(reg: &RegistryProc) -> (Value, Value) {
    let layout = reg.dir.path().join("layout");
    let mut entries = Vec::new();
    for arch in ["amd64", "arm64"] {
        build_image(&layout, arch, arch, 0);
        reg.push(&layout, arch, &format!("fc/multi:{arch}"), "oci");
        let raw = reg.inspect_raw(&format!("fc/multi:{arch}"));
        entries.push(json!({
            "mediaType": OCI_MANIFEST, "digest": sha256(&raw), "size": raw.len(),
            "platform": {"os": "linux", "architecture": arch, "variant": if arch == "arm64" { "v8" } else { "v2" }},
        }));
    }
    let arm = entries.pop().unwrap();
    (entries.pop().unwrap(), arm)
}

#[tokio::test]
async fn index_resolves_to_its_amd64_manifest() {
    let reg = RegistryProc::start(false);
    let (amd, arm) = push_platforms(&reg);
    // arm64 first: the choice must be by platform, not by position.
    let index = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [arm, amd]}),
    )
    .unwrap();
    reg.put_manifest("fc/multi", "v1", OCI_INDEX, &index);
    let registry = client(&reg, None);
    let resolved = resolve(&registry, &image(&reg, "fc/multi:v1"))
        .await
        .unwrap();
    assert_eq!(resolved.manifest_digest, amd["digest"]);
    assert_eq!(resolved.index_digest, Some(sha256(&index)));
    assert_eq!(resolved.config.architecture, "amd64");
    // The pin is the platform manifest, which resolves on its own.
    let pinned = registry
        .resolve_pinned(
            &resolved.reference,
            &resolved.manifest_digest,
            &Limits::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        (pinned.manifest_digest, pinned.layers),
        (resolved.manifest_digest.clone(), resolved.layers.clone())
    );
}

#[tokio::test]
async fn index_without_amd64_is_refused_naming_its_platforms() {
    let reg = RegistryProc::start(false);
    let (_, arm) = push_platforms(&reg);
    let mut arm7 = arm.clone();
    arm7["platform"] = json!({"os": "linux", "architecture": "arm", "variant": "v7"});
    let index = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [arm, arm7]}),
    )
    .unwrap();
    reg.put_manifest("fc/multi", "armonly", OCI_INDEX, &index);
    match resolve(&client(&reg, None), &image(&reg, "fc/multi:armonly")).await {
        Err(ImageError::Platform { platform, .. }) => {
            assert_eq!(platform, "linux/arm64/v8, linux/arm/v7")
        }
        other => panic!("expected Platform, got {other:?}"),
    }
}

#[tokio::test]
async fn corrupt_blob_is_refused_and_leaves_no_file() {
    let (reg, _) = registry_with_hello(false, "v2s2");
    let registry = client(&reg, None);
    let resolved = resolve(&registry, &image(&reg, "fc/hello:v1"))
        .await
        .unwrap();
    let layer = &resolved.layers[0];
    // Same length, different bytes: only the digest can tell.
    let data = reg.blob_file(&layer.digest);
    let flipped: Vec<u8> = std::fs::read(&data)
        .unwrap()
        .iter()
        .map(|b| b ^ 0x5a)
        .collect();
    std::fs::write(&data, flipped).unwrap();

    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("blob");
    let err = registry
        .fetch_blob(&resolved.reference, layer, &dest, &|_| {})
        .await
        .unwrap_err();
    match &err {
        ImageError::Corrupt { what, .. } => assert_eq!(what, &format!("layer {}", layer.digest)),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(!err.transient());
    assert!(
        !dest.exists(),
        "a corrupt blob must not stay at its destination"
    );
}

#[tokio::test]
async fn stopped_registry_is_unreachable_before_and_during_a_pull() {
    let reg = RegistryProc::start(false);
    let layout = reg.dir.path().join("layout");
    // 32 MB of random bytes: far more than loopback socket buffers hold when the registry dies.
    build_image(&layout, "big", "amd64", 32 << 20);
    reg.push(&layout, "big", "fc/big:v1", "v2s2");
    let registry = client(&reg, None);
    let resolved = resolve(&registry, &image(&reg, "fc/big:v1")).await.unwrap();
    let big = resolved.layers.iter().max_by_key(|l| l.size).unwrap();
    assert!(big.size > 32 << 20);

    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("blob");
    // A caller that gives up mid-stream (its own timeout) drops the future: no partial file either.
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let started_tx = Mutex::new(Some(started_tx));
    let on_first_chunk = |_: u64| {
        if let Some(tx) = started_tx.lock().unwrap().take() {
            let _ = tx.send(());
        }
    };
    tokio::select! {
        result = registry.fetch_blob(&resolved.reference, big, &dest, &on_first_chunk) => panic!("not cancelled: {result:?}"),
        _ = started_rx => {}
    }
    assert!(!dest.exists(), "a cancelled fetch must not leave its file");

    let killer = reg.killer();
    let seen = Mutex::new(0u64);
    let progress = |n: u64| {
        let mut seen = seen.lock().unwrap();
        if *seen == 0 {
            killer();
        }
        *seen = n;
    };
    let err = registry
        .fetch_blob(&resolved.reference, big, &dest, &progress)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ImageError::Unreachable { .. }) && err.transient(),
        "{err:?}"
    );
    assert!(*seen.lock().unwrap() < big.size);
    assert!(
        !dest.exists(),
        "a partial blob must not stay at its destination"
    );

    let err = resolve(&registry, &image(&reg, "fc/big:v1"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ImageError::Unreachable { .. }) && err.transient(),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with(&format!("registry {} unreachable: ", reg.host())),
        "{err}"
    );
}

#[tokio::test]
async fn mirror_sends_an_acr_name_to_the_operators_registry() {
    let (reg, _) = registry_with_hello(false, "v2s2");
    let mirrors =
        Mirrors::parse(&[format!("registry.cn-hangzhou.aliyuncs.com={}", reg.host())]).unwrap();
    let registry = Registry::new(RegistryConfig {
        insecure: vec![reg.host()],
        mirrors,
        ..RegistryConfig::default()
    })
    .unwrap();
    let written = "registry.cn-hangzhou.aliyuncs.com/fc/hello:v1";
    let reference = registry.parse(written).unwrap();
    assert_eq!(
        (reference.written.as_str(), reference.registry.clone()),
        (written, reg.host())
    );
    let resolved = resolve(&registry, &reference).await.unwrap();
    assert_eq!(
        resolved.manifest_digest,
        sha256(&reg.inspect_raw("fc/hello:v1"))
    );
    assert_eq!(resolved.reference.written, written);
}

#[tokio::test]
async fn plain_http_only_for_listed_registries() {
    let (reg, _) = registry_with_hello(false, "v2s2");
    let registry = Registry::new(RegistryConfig::default()).unwrap();
    let err = resolve(&registry, &image(&reg, "fc/hello:v1"))
        .await
        .unwrap_err();
    // A configuration mistake: failed at once, never retried.
    assert!(matches!(err, ImageError::PlainHttp { .. }) && !err.transient(), "{err:?}");
    assert!(
        err.to_string().contains(&format!(
            "is it plain HTTP? add --insecure-registry {}",
            reg.host()
        )),
        "{err}"
    );
}

#[tokio::test]
async fn limits_refuse_before_any_layer_is_fetched() {
    let (reg, _) = registry_with_hello(false, "v2s2");
    let registry = client(&reg, None);
    let reference = image(&reg, "fc/hello:v1");
    let cases = [
        (
            Limits {
                max_layers: 0,
                ..Limits::default()
            },
            "the limit of 0 layers (1 layers)",
        ),
        (
            Limits {
                max_bytes: 1000,
                ..Limits::default()
            },
            "the size limit of 1000 bytes",
        ),
        (
            Limits {
                max_document_bytes: 100,
                ..Limits::default()
            },
            "the 100-byte limit for its manifest",
        ),
    ];
    for (limits, expected) in cases {
        let err = registry.resolve(&reference, &limits).await.unwrap_err();
        assert!(
            matches!(err, ImageError::TooLarge { .. }) && !err.transient(),
            "{err:?}"
        );
        assert!(err.to_string().contains(expected), "{err} lacks {expected}");
    }
}

/// The v1 manifest re-tagged with its layer claiming `media_type`.
fn retyped_manifest(reg: &RegistryProc, media_type: &str) -> Vec<u8> {
    let mut manifest: Value = serde_json::from_slice(&reg.inspect_raw("fc/hello:v1")).unwrap();
    manifest["layers"][0]["mediaType"] = json!(media_type);
    serde_json::to_vec(&manifest).unwrap()
}

#[tokio::test]
async fn layer_media_types_zstd_accepted_unknown_refused() {
    let (reg, _) = registry_with_hello(false, "oci");
    let registry = client(&reg, None);
    let zstd = "application/vnd.oci.image.layer.v1.tar+zstd";
    reg.put_manifest(
        "fc/hello",
        "zstd",
        OCI_MANIFEST,
        &retyped_manifest(&reg, zstd),
    );
    let resolved = resolve(&registry, &image(&reg, "fc/hello:zstd"))
        .await
        .unwrap();
    assert_eq!(resolved.layers[0].media_type, zstd);

    let odd = "application/vnd.example.layer.v1+tar";
    reg.put_manifest(
        "fc/hello",
        "odd",
        OCI_MANIFEST,
        &retyped_manifest(&reg, odd),
    );
    match resolve(&registry, &image(&reg, "fc/hello:odd")).await {
        Err(ImageError::MediaType(t)) => assert!(t.starts_with(odd), "{t}"),
        other => panic!("expected MediaType, got {other:?}"),
    }
}

#[tokio::test]
async fn a_silent_registry_times_out_instead_of_hanging() {
    // The kernel completes the handshake for a listener nobody accepts on: a registry that never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let registry = Registry::new(RegistryConfig {
        insecure: vec![host.clone()],
        read_timeout: std::time::Duration::from_millis(500),
        ..RegistryConfig::default()
    })
    .unwrap();
    let reference = ImageRef::parse(&format!("{host}/fc/hello:v1"), &Mirrors::default()).unwrap();
    let started = std::time::Instant::now();
    let err = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        resolve(&registry, &reference),
    )
    .await
    .expect("resolve must not hang")
    .unwrap_err();
    assert!(
        matches!(err, ImageError::Unreachable { .. }) && err.transient(),
        "{err:?}"
    );
    assert!(err.to_string().contains("timed out"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
